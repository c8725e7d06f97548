//! Integration tests of the record log. Every suite runs on the in-memory and the real
//! file system (see [`common::on_both`]).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
mod damage;
mod round_trip;
mod writer;
