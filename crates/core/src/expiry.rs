//! Values with an expiry time (TTL), and the clock that decides when they expire.
//!
//! An entry of kind [`ValueKind::ExpiringPut`](crate::ValueKind::ExpiringPut) stores its
//! expiry before the user's value:
//!
//! ```text
//! +------------------------------------+----------------------+
//! | expires at: u64 LE, ms since epoch | the user's value     |
//! +------------------------------------+----------------------+
//! ```
//!
//! A read at time `now` sees the value while `now < expires at`, and a tombstone from
//! then on — at every snapshot, since time only moves forward: an expired value is
//! invisible to every reader, so compaction turns it into a tombstone in any stripe.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of the expiry before an expiring value.
pub const EXPIRY_LEN: usize = 8;

/// The stored form of `value` expiring at `expires_at_ms`.
pub fn encode_expiring(expires_at_ms: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(EXPIRY_LEN + value.len());
    out.extend_from_slice(&expires_at_ms.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// The expiry and the user's value of a stored expiring value; `None` if it is too
/// short to hold an expiry (damage: callers report it as such).
pub fn split_expiring(stored: &[u8]) -> Option<(u64, &[u8])> {
    let (expiry, value) = stored.split_first_chunk::<EXPIRY_LEN>()?;
    Some((u64::from_le_bytes(*expiry), value))
}

/// Whether a value expiring at `expires_at_ms` is gone at `now_ms`.
pub fn is_expired(expires_at_ms: u64, now_ms: u64) -> bool {
    now_ms >= expires_at_ms
}

/// Where the time comes from for expiry: reads hide values whose time has come,
/// compaction removes them. Must never go backwards (an expired value would come
/// back).
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the UNIX epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told: for tests of expiry.
///
/// ```
/// use strata_core::expiry::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(500);
/// assert_eq!(clock.now_ms(), 1_500);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        ManualClock(AtomicU64::new(now_ms))
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}

/// A user's hook on every value compaction writes out: keep it, remove it, or change
/// it. It sees only values no snapshot can read (the newest of each key, written after
/// every live snapshot), so it never changes what a snapshot reads; a removed value
/// becomes a tombstone, so an older value below it cannot come back.
///
/// ```
/// use strata_core::expiry::{CompactionFilter, FilterDecision};
///
/// /// Deletes keys whose value is empty.
/// struct DropEmpty;
///
/// impl CompactionFilter for DropEmpty {
///     fn name(&self) -> &str {
///         "drop-empty"
///     }
///
///     fn filter(&self, _level: usize, _key: &[u8], value: &[u8]) -> FilterDecision {
///         if value.is_empty() { FilterDecision::Remove } else { FilterDecision::Keep }
///     }
/// }
/// assert_eq!(DropEmpty.filter(1, b"k", b""), FilterDecision::Remove);
/// ```
pub trait CompactionFilter: Send + Sync + 'static {
    /// A name for logs and tools.
    fn name(&self) -> &str;

    /// What to do with `value` of `key`, being written to `level` (the user's value:
    /// without an expiry, which a changed value keeps).
    fn filter(&self, level: usize, key: &[u8], value: &[u8]) -> FilterDecision;
}

/// A [`CompactionFilter`]'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterDecision {
    /// Write the value out unchanged.
    Keep,
    /// Delete the key (a tombstone takes the value's place).
    Remove,
    /// Write this value instead.
    Change(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiring_value_round_trips_and_a_short_one_is_refused() {
        let stored = encode_expiring(42, b"v");
        assert_eq!(split_expiring(&stored), Some((42, &b"v"[..])));
        assert_eq!(split_expiring(&stored[..7]), None);
        assert!(!is_expired(42, 41));
        assert!(is_expired(42, 42));
    }
}
