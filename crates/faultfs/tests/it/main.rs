//! Engine tests on the fault-injecting file system.
#![allow(clippy::unwrap_used)]
