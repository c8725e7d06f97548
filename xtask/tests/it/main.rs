//! Integration tests of the `cargo xtask` commands, run as the built binary.
#![allow(clippy::unwrap_used)]

mod crashtest;
