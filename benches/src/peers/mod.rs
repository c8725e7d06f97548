//! The peer engines, each behind its own cargo feature so that no default build (and no
//! `cargo test --workspace`) compiles them. Each is configured for the durability and
//! memory budget described in `docs/benchmarks.md`.

#[cfg(feature = "fjall")]
pub mod fjall;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "rocksdb")]
pub mod rocksdb;
#[cfg(feature = "sled")]
pub mod sled;
