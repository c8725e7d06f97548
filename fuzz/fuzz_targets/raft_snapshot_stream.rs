//! The Raft snapshot stream's decoder (format 2: a checkpoint's files) on arbitrary
//! bytes: never panics, never accepts a file name that leaves its directory, and
//! whatever decodes re-encodes to a stream that decodes the same. Each input is tried
//! as it is and with a valid checksum appended, so that mutations reach the fields
//! behind the checksum check.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_raft::fuzzing::snapshot_stream_round_trip(data);
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    strata_raft::fuzzing::snapshot_stream_round_trip(&sealed);
});
