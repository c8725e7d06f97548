//! `bad_input` tests.
use crate::common::*;
