//! Records go in and come back out unchanged, with the offsets the writer reported.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use proptest::prelude::*;
use strata_core::{RandomAccessFile, Result};
use strata_wal::{LogEnd, LogReader, LogWriter, RecoveryMode, SyncPolicy};

use crate::common::{BLOCK, Env, HEADER, LOG_HEADER, MODES, bytes_of, log_header, on_both};

/// A record described by its length and the seed of its bytes.
#[derive(Clone)]
struct Spec(usize, u64);

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B#{}", self.0, self.1)
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    let len = prop_oneof![
        30 => 0usize..200,
        6 => 0usize..(3 * BLOCK),
        // Lengths around block boundaries, where padding and fragmentation happen.
        4 => (1usize..4).prop_flat_map(|b| (b * BLOCK - 40)..(b * BLOCK + 10)),
        1 => (1usize << 20)..(4 << 20),
    ];
    (len, any::<u64>()).prop_map(|(l, s)| Spec(l, s))
}

fn check_round_trip(env: &Env, specs: &[Spec]) {
    let records: Vec<Vec<u8>> = specs.iter().map(|s| bytes_of(s.0, s.1)).collect();
    let spans = env.write_log("rt.log", &records);
    let log_len = spans.last().map_or(0, |s| s.1);
    for mode in MODES {
        let out = env.read_log("rt.log", mode);
        assert!(out.error.is_none(), "{}: {:?}", env.name, out.error);
        assert_eq!(out.records.len(), records.len(), "{}", env.name);
        for ((offset, data), (want, span)) in out.records.iter().zip(records.iter().zip(&spans)) {
            assert_eq!(*offset, span.0);
            assert!(
                data[..] == want[..],
                "{}: record at {offset} differs",
                env.name
            );
        }
        assert_eq!(out.end, Some(LogEnd::Clean { len: log_len }));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_record_sequences_round_trip(specs in prop::collection::vec(spec(), 0..12)) {
        on_both(|env| check_round_trip(env, &specs));
    }
}

#[test]
fn empty_and_multi_mib_records_round_trip() {
    let specs = [
        Spec(0, 1),
        Spec(5 << 20, 2),
        Spec(0, 3),
        Spec(1, 4),
        Spec(3 * (BLOCK - HEADER), 5),
        Spec(0, 6),
    ];
    on_both(|env| check_round_trip(env, &specs));
}

#[test]
fn an_unwritten_log_and_a_header_only_log_end_cleanly() {
    on_both(|env| {
        drop(env.fs.create(&env.path("empty.log")).unwrap());
        env.write_log("no-records.log", &[]);
        env.put_raw("header-only.log", &log_header(1));
        env.write_log("one-empty.log", &[vec![]]);
        for mode in MODES {
            let out = env.read_log("empty.log", mode);
            assert!(out.records.is_empty() && out.error.is_none());
            assert_eq!(out.end, Some(LogEnd::Clean { len: 0 }));
            // A writer that never wrote a record leaves an empty file, not a header.
            let out = env.read_log("no-records.log", mode);
            assert_eq!(out.end, Some(LogEnd::Clean { len: 0 }));
            let out = env.read_log("header-only.log", mode);
            assert!(out.records.is_empty() && out.error.is_none());
            assert_eq!(
                out.end,
                Some(LogEnd::Clean {
                    len: LOG_HEADER as u64
                })
            );
            let out = env.read_log("one-empty.log", mode);
            assert_eq!(out.data(), [b""]);
            assert_eq!(
                out.end,
                Some(LogEnd::Clean {
                    len: (LOG_HEADER + HEADER) as u64
                })
            );
        }
    });
}

#[test]
fn a_resumed_writer_continues_the_same_log() {
    on_both(|env| {
        // Lengths chosen so the first writer stops 3 bytes short of a block end: the
        // resumed writer must pad, as the original would have.
        let first = [
            bytes_of(100, 1),
            bytes_of(BLOCK - LOG_HEADER - HEADER - 100 - HEADER - 3, 2),
        ];
        let spans = env.write_log("a.log", &first);
        let len = spans[1].1;
        assert_eq!(len, (BLOCK - 3) as u64);
        let old = env.get_raw("a.log");

        // The seam has no append-open, so stand in a new file holding the same bytes.
        let mut file = env.fs.create(&env.path("b.log")).unwrap();
        file.append(&old).unwrap();
        let mut w = LogWriter::resume(file, len, SyncPolicy::Never);
        assert_eq!(w.add_record(b"after resume").unwrap(), BLOCK as u64);
        w.add_record(&bytes_of(2 * BLOCK, 3)).unwrap();
        w.sync().unwrap();

        let out = env.read_log("b.log", RecoveryMode::Absolute);
        assert!(out.error.is_none(), "{:?}", out.error);
        let want: Vec<Vec<u8>> = vec![
            first[0].clone(),
            first[1].clone(),
            b"after resume".to_vec(),
            bytes_of(2 * BLOCK, 3),
        ];
        assert_eq!(out.data(), want.iter().map(|v| &v[..]).collect::<Vec<_>>());
        assert_eq!(out.end, Some(LogEnd::Clean { len: w.len() }));
    });
}

/// Counts positional reads, to show large records are read in big chunks.
#[derive(Debug)]
struct CountingReads {
    inner: Arc<dyn RandomAccessFile>,
    reads: AtomicUsize,
}

impl RandomAccessFile for CountingReads {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read_exact_at(offset, buf)
    }
    fn read_bytes(&self, offset: u64, len: usize) -> Result<Bytes> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read_bytes(offset, len)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn path(&self) -> &Path {
        self.inner.path()
    }
}

#[test]
fn a_multi_mib_record_is_read_in_a_few_large_reads() {
    on_both(|env| {
        let big = bytes_of(6 << 20, 9);
        env.write_log("big.log", &[b"small".to_vec(), big.clone()]);
        let file = Arc::new(CountingReads {
            inner: env.fs.open(&env.path("big.log")).unwrap(),
            reads: AtomicUsize::new(0),
        });
        let len = file.len();
        let mut reader = LogReader::new(file.clone(), RecoveryMode::TolerateTornTail);
        assert_eq!(&reader.next_record().unwrap().unwrap().data[..], b"small");
        assert!(reader.next_record().unwrap().unwrap().data[..] == big[..]);
        assert!(reader.next_record().unwrap().is_none());
        let reads = file.reads.load(Ordering::Relaxed);
        // One read per MiB of log, rounded up.
        assert!(
            reads as u64 <= len.div_ceil(1 << 20),
            "{reads} reads for {len} bytes"
        );
    });
}
