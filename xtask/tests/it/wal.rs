//! `wal` tests.
use crate::common::*;
