//! The WAL payload (write group) decoder on arbitrary bytes: never panics, and what
//! decodes has consecutive sequence numbers and fits in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::inspect::decode_wal_batch;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = decode_wal_batch(data) {
        let bytes: usize = entries.iter().map(|e| e.key.len() + e.value.len()).sum();
        assert!(
            bytes <= data.len(),
            "decoded more bytes than the input holds"
        );
        for w in entries.windows(2) {
            assert_eq!(w[0].seq + 1, w[1].seq, "sequence numbers are consecutive");
        }
    }
});
