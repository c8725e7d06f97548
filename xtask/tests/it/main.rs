//! The inspection commands, run as the built `xtask` binary on databases and files the
//! tests make (through the engine and the format crates), intact and damaged.
//!
//! Golden outputs are insta snapshots in `snapshots/`; update them with
//! `INSTA_UPDATE=always cargo test -p xtask` and review the diff. Commands run with the
//! temporary directory as their working directory and relative paths, so outputs hold
//! no temporary paths; the one random field (a table's file id) is scrubbed.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod bad_input;
mod common;
mod crashtest;
mod keyspaces;
mod manifest;
mod merge;
mod range_del;
mod sst;
mod tree;
mod verify;
mod wal;
