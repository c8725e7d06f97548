//! A fault-injecting in-memory file system for Strata's crash, fault and corruption
//! tests.
//!
//! [`FaultFs`] implements [`strata_core::FileSystem`] and keeps, besides what the
//! running process sees, what a crash would keep: file bytes up to each file's last
//! `sync`, and directory entries as of their directory's last `sync_dir`.
//!
//! - **Crashes**: [`FaultFs::crash`] returns the file system after a reboot, under
//!   [`CrashOptions`]: a process crash keeps everything handed to the OS; a power loss
//!   drops unsynced bytes and reverts unsynced directory changes, or (seeded) keeps a
//!   random prefix of each.
//! - **Crash points**: every change is recorded ([`FaultFs::ops`]), and
//!   [`FaultFs::crash_at`] gives the state after any prefix of them, so one run of a
//!   scenario yields every crash point.
//! - **Faults**: [`FaultFs::inject`] fails the N-th operation of a kind, or every
//!   operation a predicate picks, with an I/O error; [`FaultFs::flip_bit_on_read`]
//!   damages what a read returns.
//!
//! ```
//! use std::path::Path;
//! use strata_core::FileSystem;
//! use strata_faultfs::{CrashOptions, FaultFs};
//!
//! # fn main() -> strata_core::Result<()> {
//! let fs = FaultFs::new();
//! fs.create_dir_all(Path::new("/d"))?;
//! fs.sync_dir(Path::new("/"))?;
//! let mut f = fs.create(Path::new("/d/f"))?;
//! f.append(b"durable")?;
//! f.sync()?;
//! fs.sync_dir(Path::new("/d"))?;
//! f.append(b" and not")?;
//!
//! let after = fs.crash(&CrashOptions::power_loss());
//! assert_eq!(after.read_file("/d/f").as_deref(), Some(&b"durable"[..]));
//! assert!(f.append(b"x").is_err(), "the crashed process can do nothing more");
//! # Ok(())
//! # }
//! ```

mod crash;
mod fault;
mod fs;
mod machine;
mod rng;

pub use crash::{CrashOptions, UnsyncedData, UnsyncedDirs};
pub use fault::{Fault, FaultPredicate, OpInfo, OpKind, OpRecord};
pub use fs::FaultFs;
pub use rng::Rng;
