//! `manifest` tests.
use crate::common::*;
