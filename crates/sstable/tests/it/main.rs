//! Integration tests of strata-sstable: one binary, one module per concern.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod bloom;
mod builder;
mod common;
mod corruption;
mod merge;
mod range_del;
mod readahead;
mod roundtrip;
