//! `sst` tests.
use crate::common::*;
