//! The manifest's version-edit decoder on arbitrary bytes: never panics, and whatever
//! decodes re-encodes to something that decodes to the same edit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::inspect::VersionEdit;

fuzz_target!(|data: &[u8]| {
    if let Ok(edit) = VersionEdit::decode(data) {
        let mut again = Vec::new();
        edit.encode(&mut again);
        assert_eq!(VersionEdit::decode(&again), Ok(edit), "round trip");
    }
});
