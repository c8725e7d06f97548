//! What a simulated crash keeps.

/// What happens to bytes handed to the OS but not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsyncedData {
    /// All of them are lost (the strictest power loss).
    Drop,
    /// All of them survive (a process crash: the OS keeps its page cache).
    Keep,
    /// Per file, a random-length prefix of the unsynced tail survives (the OS wrote
    /// part of it back before the power went).
    RandomPrefix,
}

/// What happens to directory changes (creations, renames, removals) whose directory
/// was not synced after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsyncedDirs {
    /// They all survive.
    Keep,
    /// They are all reverted: a created file disappears, a renamed one is back under its
    /// old name, a removed one reappears.
    Revert,
    /// A random prefix of them (in the order they were made) survives, as on a
    /// journaling file system that committed some of its journal.
    RandomPrefix,
}

/// How a crash treats what was not synced. The random choices are drawn from `seed`,
/// so a seed reproduces the crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashOptions {
    /// File contents past the last sync.
    pub data: UnsyncedData,
    /// Directory entries past the last directory sync.
    pub dirs: UnsyncedDirs,
    /// Seed of the random choices.
    pub seed: u64,
}

impl CrashOptions {
    /// A process crash (kill -9): everything handed to the OS survives.
    pub fn process() -> Self {
        CrashOptions {
            data: UnsyncedData::Keep,
            dirs: UnsyncedDirs::Keep,
            seed: 0,
        }
    }

    /// The strictest power loss: only synced bytes and synced directory entries survive.
    pub fn power_loss() -> Self {
        CrashOptions {
            data: UnsyncedData::Drop,
            dirs: UnsyncedDirs::Revert,
            seed: 0,
        }
    }

    /// A power loss where a random part of what was not synced made it to disk: a
    /// random prefix of each file's unsynced tail and of the unsynced directory changes.
    pub fn random(seed: u64) -> Self {
        CrashOptions {
            data: UnsyncedData::RandomPrefix,
            dirs: UnsyncedDirs::RandomPrefix,
            seed,
        }
    }

    /// Whether this crash keeps everything handed to the OS (so invariant I5 applies).
    pub fn is_process_crash(&self) -> bool {
        self.data == UnsyncedData::Keep && self.dirs == UnsyncedDirs::Keep
    }
}
