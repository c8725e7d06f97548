//! Writer behaviour: one append per record, sync policies, poisoning after failures.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use strata_core::{Error, Result, WritableFile};
use strata_wal::{LogEnd, LogWriter, RecoveryMode, SyncPolicy};

use crate::common::{BLOCK, Env, bytes_of, on_both};

/// What the wrapped file saw, and which operation should fail next.
#[derive(Debug, Default)]
struct Probe {
    appends: AtomicUsize,
    syncs: AtomicUsize,
    fail_append: AtomicBool,
    fail_sync: AtomicBool,
}

/// A [`WritableFile`] that counts calls and fails on demand.
#[derive(Debug)]
struct ProbedFile {
    inner: Box<dyn WritableFile>,
    probe: Arc<Probe>,
}

impl WritableFile for ProbedFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        if self.probe.fail_append.load(Ordering::SeqCst) {
            // A short write before the failure, as a full disk gives.
            let _ = self.inner.append(&data[..data.len() / 2]);
            return Err(Error::io(
                "appending to probe",
                io::Error::other("disk full"),
            ));
        }
        self.probe.appends.fetch_add(1, Ordering::SeqCst);
        self.inner.append(data)
    }

    fn sync(&mut self) -> Result<()> {
        if self.probe.fail_sync.load(Ordering::SeqCst) {
            return Err(Error::io("syncing probe", io::Error::other("EIO")));
        }
        self.probe.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync()
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }
}

fn probed_writer(env: &Env, name: &str, policy: SyncPolicy) -> (LogWriter, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let file = ProbedFile {
        inner: env.fs.create(&env.path(name)).unwrap(),
        probe: Arc::clone(&probe),
    };
    (LogWriter::new(Box::new(file), policy), probe)
}

#[test]
fn every_record_is_one_append_whatever_its_size() {
    on_both(|env| {
        let (mut w, probe) = probed_writer(env, "a.log", SyncPolicy::Never);
        let sizes = [0, 10, BLOCK, 3 * BLOCK + 5, 1 << 20, 1];
        for (i, &n) in sizes.iter().enumerate() {
            w.add_record(&bytes_of(n, i as u64)).unwrap();
            assert_eq!(probe.appends.load(Ordering::SeqCst), i + 1);
        }
        assert_eq!(probe.syncs.load(Ordering::SeqCst), 0);
        let out = env.read_log("a.log", RecoveryMode::Absolute);
        assert_eq!(out.records.len(), sizes.len());
        assert_eq!(out.end, Some(LogEnd::Clean { len: w.len() }));
    });
}

#[test]
fn sync_policies_sync_when_they_promise() {
    on_both(|env| {
        let (mut w, probe) = probed_writer(env, "never.log", SyncPolicy::Never);
        for _ in 0..20 {
            w.add_record(&[1; 100]).unwrap();
        }
        assert_eq!(probe.syncs.load(Ordering::SeqCst), 0);
        w.sync().unwrap();
        assert_eq!(probe.syncs.load(Ordering::SeqCst), 1);

        let (mut w, probe) = probed_writer(env, "every.log", SyncPolicy::EveryWrite);
        for i in 0..20 {
            w.add_record(&[1; 100]).unwrap();
            assert_eq!(probe.syncs.load(Ordering::SeqCst), i + 1);
        }

        // EveryBytes: a sync after the record that brings unsynced bytes to the threshold,
        // checked against a model fed with the writer's own growth.
        let threshold = 1000;
        let (mut w, probe) = probed_writer(env, "bytes.log", SyncPolicy::EveryBytes(threshold));
        let (mut unsynced, mut expected_syncs) = (0, 0);
        for i in 0..200 {
            let before = w.len();
            w.add_record(&bytes_of(i * 7 % 300, i as u64)).unwrap();
            unsynced += w.len() - before;
            if unsynced >= threshold {
                expected_syncs += 1;
                unsynced = 0;
            }
            assert_eq!(
                probe.syncs.load(Ordering::SeqCst),
                expected_syncs,
                "record {i}"
            );
        }
        assert!(expected_syncs > 20, "the threshold was crossed many times");
        // An explicit sync resets the count.
        w.sync().unwrap();
        w.add_record(&bytes_of(100, 1)).unwrap();
        assert_eq!(probe.syncs.load(Ordering::SeqCst), expected_syncs + 1);
    });
}

#[test]
fn a_failed_sync_poisons_the_writer() {
    on_both(|env| {
        let (mut w, probe) = probed_writer(env, "s.log", SyncPolicy::Never);
        w.add_record(b"durable?").unwrap();
        probe.fail_sync.store(true, Ordering::SeqCst);
        assert!(matches!(w.sync(), Err(Error::Io { .. })));
        assert!(w.is_poisoned());
        // Even once the device "recovers", the writer never claims durability again.
        probe.fail_sync.store(false, Ordering::SeqCst);
        assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
        assert!(matches!(w.add_record(b"more"), Err(Error::Poisoned { .. })));
        assert_eq!(probe.syncs.load(Ordering::SeqCst), 0);
        assert_eq!(probe.appends.load(Ordering::SeqCst), 1);

        // With EveryWrite the record's own call reports the sync failure.
        let (mut w, probe) = probed_writer(env, "e.log", SyncPolicy::EveryWrite);
        w.add_record(b"one").unwrap();
        probe.fail_sync.store(true, Ordering::SeqCst);
        assert!(matches!(w.add_record(b"two"), Err(Error::Io { .. })));
        probe.fail_sync.store(false, Ordering::SeqCst);
        let err = w.add_record(b"three").unwrap_err();
        assert!(
            matches!(err, Error::Poisoned { ref context, ref cause }
                if context.contains("sync") && matches!(**cause, Error::Io { .. })),
            "{err}"
        );
    });
}

#[test]
fn a_failed_append_poisons_the_writer_and_leaves_a_readable_prefix() {
    on_both(|env| {
        let (mut w, probe) = probed_writer(env, "a.log", SyncPolicy::Never);
        let len_before = {
            w.add_record(b"kept").unwrap();
            w.len()
        };
        probe.fail_append.store(true, Ordering::SeqCst);
        assert!(matches!(w.add_record(&[9; 500]), Err(Error::Io { .. })));
        assert_eq!(w.len(), len_before, "a failed record is not counted");
        probe.fail_append.store(false, Ordering::SeqCst);
        assert!(matches!(
            w.add_record(b"after"),
            Err(Error::Poisoned { .. })
        ));
        assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));

        // The half-written record is a torn tail; the earlier record survives.
        let out = env.read_log("a.log", RecoveryMode::TolerateTornTail);
        assert_eq!(out.data(), [b"kept"]);
        assert!(matches!(out.end, Some(LogEnd::TornTail { offset, .. }) if offset == len_before));
    });
}
