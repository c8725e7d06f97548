//! `verify` tests.
use crate::common::*;
