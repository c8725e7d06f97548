use std::path::Path;

use strata_core::{Error, FileSystem};

use crate::{CrashOptions, Fault, FaultFs, OpKind, UnsyncedData, UnsyncedDirs};

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// `/d` created and durable.
fn with_dir() -> FaultFs {
    let fs = FaultFs::new();
    fs.create_dir_all(p("/d")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    fs
}

fn read_all(fs: &FaultFs, path: &str) -> Vec<u8> {
    let f = fs.open(p(path)).unwrap();
    let mut buf = vec![0; f.len() as usize];
    f.read_exact_at(0, &mut buf).unwrap();
    buf
}

#[test]
fn behaves_like_a_file_system_while_running() {
    let fs = with_dir();
    let mut w = fs.create(p("/d/a")).unwrap();
    w.append(b"hello ").unwrap();
    w.append(b"world").unwrap();
    assert_eq!(w.len(), 11);
    assert_eq!(read_all(&fs, "/d/a"), b"hello world");
    let reader = fs.open(p("/d/a")).unwrap();
    fs.rename(p("/d/a"), p("/d/b")).unwrap();
    assert!(!fs.exists(p("/d/a")).unwrap());
    assert_eq!(read_all(&fs, "/d/b"), b"hello world");
    // An open reader keeps its file after a rename and a remove.
    fs.remove(p("/d/b")).unwrap();
    let mut buf = [0; 5];
    reader.read_exact_at(6, &mut buf).unwrap();
    assert_eq!(&buf, b"world");
    assert!(reader.read_exact_at(8, &mut buf).is_err(), "past the end");
    assert!(fs.open(p("/d/b")).is_err());
    assert!(fs.create(p("/nope/x")).is_err(), "missing parent");
    assert!(fs.remove(p("/d/zz")).is_err());
    let mut names = fs.list(p("/d")).unwrap();
    names.sort();
    assert!(names.is_empty(), "{names:?}");
    let lock = fs.lock(p("/d/LOCK")).unwrap();
    assert!(matches!(fs.lock(p("/d/LOCK")), Err(Error::Locked { .. })));
    drop(lock);
    fs.lock(p("/d/LOCK")).unwrap();
    assert_eq!(fs.list(p("/d")).unwrap(), ["LOCK"]);
}

#[test]
fn power_loss_keeps_only_synced_bytes_and_entries() {
    let fs = with_dir();
    let mut a = fs.create(p("/d/a")).unwrap();
    a.append(b"one").unwrap();
    a.sync().unwrap();
    fs.sync_dir(p("/d")).unwrap();
    a.append(b"two").unwrap();
    let mut b = fs.create(p("/d/b")).unwrap(); // entry never synced
    b.append(b"bbb").unwrap();
    b.sync().unwrap();
    assert_eq!(fs.unsynced_bytes(), 3);
    assert_eq!(fs.unsynced_dir_ops(), 1);

    let after = fs.crash(&CrashOptions::power_loss());
    assert_eq!(after.read_file("/d/a").unwrap(), b"one");
    assert_eq!(
        after.read_file("/d/b"),
        None,
        "its directory was not synced"
    );
    assert!(after.exists(p("/d")).unwrap());
    // The crashed machine's handles are dead; the new one works and is all durable.
    assert!(a.append(b"x").is_err());
    assert!(fs.create(p("/d/c")).is_err());
    assert_eq!(after.unsynced_bytes(), 0);
    assert_eq!(after.op_count(), 0);
}

#[test]
fn process_crash_keeps_everything_handed_to_the_os() {
    let fs = with_dir();
    let mut a = fs.create(p("/d/a")).unwrap();
    a.append(b"never synced").unwrap();
    fs.rename(p("/d/a"), p("/d/b")).unwrap();
    let after = fs.crash(&CrashOptions::process());
    assert_eq!(after.read_file("/d/b").unwrap(), b"never synced");
    assert_eq!(after.read_file("/d/a"), None);
}

#[test]
fn unsynced_rename_and_remove_are_reverted() {
    let fs = with_dir();
    for (name, body) in [("/d/old", &b"old"[..]), ("/d/tmp", b"new")] {
        let mut f = fs.create(p(name)).unwrap();
        f.append(body).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(p("/d")).unwrap();
    fs.rename(p("/d/tmp"), p("/d/old")).unwrap();
    let mut gone = fs.create(p("/d/gone")).unwrap();
    gone.sync().unwrap();
    let at = fs.op_count();
    fs.sync_dir(p("/d")).unwrap();
    fs.remove(p("/d/gone")).unwrap();

    // Before the second directory sync: the rename did not happen.
    let before = fs.crash_at(at, &CrashOptions::power_loss());
    assert_eq!(before.read_file("/d/old").unwrap(), b"old");
    assert_eq!(before.read_file("/d/tmp").unwrap(), b"new");
    assert_eq!(before.read_file("/d/gone"), None);
    // After it: renamed; the later remove was not synced, so the file is back.
    let after = fs.crash_at(at + 1, &CrashOptions::power_loss());
    assert_eq!(after.read_file("/d/old").unwrap(), b"new");
    assert_eq!(after.read_file("/d/tmp"), None);
    assert_eq!(after.read_file("/d/gone").unwrap(), b"");
    // Keeping directory changes but dropping data: the remove sticks.
    let keep_dirs = CrashOptions {
        data: UnsyncedData::Drop,
        dirs: UnsyncedDirs::Keep,
        seed: 0,
    };
    assert_eq!(
        fs.crash_at(usize::MAX, &keep_dirs).read_file("/d/gone"),
        None
    );
}

#[test]
fn an_unsynced_directory_loses_its_files() {
    let fs = FaultFs::new();
    fs.create_dir_all(p("/db/sub")).unwrap();
    let mut f = fs.create(p("/db/sub/f")).unwrap();
    f.append(b"x").unwrap();
    f.sync().unwrap();
    fs.sync_dir(p("/db/sub")).unwrap();
    let lost = fs.crash_at(usize::MAX, &CrashOptions::power_loss());
    assert!(!lost.exists(p("/db")).unwrap());
    assert_eq!(lost.read_file("/db/sub/f"), None);
    fs.sync_dir(p("/")).unwrap();
    fs.sync_dir(p("/db")).unwrap();
    let kept = fs.crash_at(usize::MAX, &CrashOptions::power_loss());
    assert_eq!(kept.read_file("/db/sub/f").unwrap(), b"x");
}

#[test]
fn crash_at_every_point_replays_the_journal() {
    let fs = with_dir();
    let mut f = fs.create(p("/d/f")).unwrap();
    for chunk in [&b"ab"[..], b"cd", b"ef"] {
        f.append(chunk).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(p("/d")).unwrap();
    let ops = fs.ops();
    assert_eq!(ops.len(), fs.op_count());
    let kinds: Vec<OpKind> = ops.iter().map(|o| o.kind).collect();
    use OpKind::*;
    assert_eq!(
        kinds,
        [
            CreateDir, SyncDir, Create, Write, Sync, Write, Sync, Write, Sync, SyncDir
        ]
    );
    assert_eq!(ops[3].len, 2);
    assert_eq!(ops[2].to_string(), "Create /d/f");
    let process = CrashOptions::process();
    let strict = CrashOptions::power_loss();
    for k in 0..=ops.len() {
        let written = ops[..k].iter().filter(|o| o.kind == Write).count();
        let synced = ops[..k].iter().filter(|o| o.kind == Sync).count();
        let full = &b"abcdef"[..];
        let seen = fs.crash_at(k, &process).read_file("/d/f");
        assert_eq!(seen.as_deref(), (k >= 3).then(|| &full[..2 * written]));
        let durable = fs.crash_at(k, &strict).read_file("/d/f");
        assert_eq!(durable.as_deref(), (k >= 10).then(|| &full[..2 * synced]));
    }
    // The running file system is unaffected by crash_at.
    f.append(b"g").unwrap();
    assert_eq!(fs.read_file("/d/f").unwrap(), b"abcdefg");
}

#[test]
fn random_crashes_keep_a_prefix_of_the_unsynced_tail() {
    let fs = with_dir();
    let mut f = fs.create(p("/d/f")).unwrap();
    f.append(b"0123").unwrap();
    f.sync().unwrap();
    fs.sync_dir(p("/d")).unwrap();
    f.append(b"456789").unwrap();
    let mut lens = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let c = fs.crash_at(usize::MAX, &CrashOptions::random(seed));
        let got = c.read_file("/d/f").unwrap();
        assert!(b"0123456789".starts_with(&got) && got.len() >= 4, "{got:?}");
        lens.insert(got.len());
        let again = fs.crash_at(usize::MAX, &CrashOptions::random(seed));
        assert_eq!(again.read_file("/d/f").unwrap(), got, "a seed reproduces");
    }
    assert_eq!(
        lens.len(),
        7,
        "every tail length from 0 to 6 comes up: {lens:?}"
    );
}

#[test]
fn random_directory_crashes_keep_a_prefix_of_the_changes() {
    let fs = with_dir();
    for name in ["/d/1", "/d/2", "/d/3"] {
        fs.create(p(name)).unwrap();
    }
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..100 {
        let c = fs.crash_at(usize::MAX, &CrashOptions::random(seed));
        let mut names = c.list(p("/d")).unwrap();
        names.sort();
        let n = names.len();
        assert_eq!(names, ["1", "2", "3"][..n], "in order, no holes");
        outcomes.insert(n);
    }
    assert_eq!(outcomes.len(), 4);
}

#[test]
fn nth_fault_fails_exactly_one_operation() {
    let fs = with_dir();
    let mut f = fs.create(p("/d/f")).unwrap();
    fs.inject(Fault::nth(OpKind::Sync, 2));
    f.sync().unwrap();
    let e = f.sync().unwrap_err();
    assert!(e.to_string().contains("injected fault"), "{e}");
    f.sync().unwrap();
    assert_eq!(fs.count(OpKind::Sync), 3);
    // The failed sync changed nothing: only two syncs are recorded.
    assert_eq!(
        fs.ops().iter().filter(|o| o.kind == OpKind::Sync).count(),
        2
    );
}

#[test]
fn a_fault_can_fail_with_a_chosen_error_kind() {
    let fs = with_dir();
    let mut f = fs.create(p("/d/f")).unwrap();
    fs.inject_error(
        Fault::nth(OpKind::Write, 1),
        std::io::ErrorKind::StorageFull,
    );
    fs.inject(Fault::nth(OpKind::Write, 2));
    let kinds: Vec<_> = (0..3)
        .map(|_| match f.append(b"x") {
            Ok(()) => None,
            Err(Error::Io { source, .. }) => Some(source.kind()),
            Err(e) => panic!("{e}"),
        })
        .collect();
    use std::io::ErrorKind::{Other, StorageFull};
    assert_eq!(kinds, [Some(StorageFull), Some(Other), None]);
    assert_eq!(f.len(), 1);
}

#[test]
fn predicate_faults_hit_every_match_until_cleared() {
    let fs = with_dir();
    fs.inject(Fault::when(|op| {
        op.kind == OpKind::Create && op.path.extension().is_some_and(|e| e == "sst")
    }));
    assert!(fs.create(p("/d/1.sst")).is_err());
    assert!(fs.create(p("/d/2.sst")).is_err());
    assert!(
        !fs.exists(p("/d/1.sst")).unwrap(),
        "a failed create creates nothing"
    );
    let mut log = fs.create(p("/d/3.log")).unwrap();
    fs.inject(Fault::when(|op| op.kind == OpKind::Write && op.len > 3));
    log.append(b"abc").unwrap();
    assert!(log.append(b"abcd").is_err());
    assert_eq!(log.len(), 3, "a failed append appends nothing");
    fs.inject(Fault::nth(OpKind::Rename, 1));
    assert!(fs.rename(p("/d/3.log"), p("/d/4.log")).is_err());
    fs.inject(Fault::nth(OpKind::SyncDir, 1));
    assert!(fs.sync_dir(p("/d")).is_err());
    fs.inject(Fault::nth(OpKind::Read, 1));
    let r = fs.open(p("/d/3.log")).unwrap();
    assert!(r.read_exact_at(0, &mut [0; 3]).is_err());
    r.read_exact_at(0, &mut [0; 3]).unwrap();
    fs.clear_faults();
    fs.create(p("/d/1.sst")).unwrap();
    log.append(b"abcd").unwrap();
}

#[test]
fn bit_flips_show_in_every_read_covering_the_byte() {
    let fs = with_dir();
    let mut f = fs.create(p("/d/f")).unwrap();
    f.append(&[0u8; 16]).unwrap();
    fs.flip_bit_on_read("/d/f", 5, 3);
    let r = fs.open(p("/d/f")).unwrap();
    let mut buf = [0; 16];
    r.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(buf[5], 8);
    assert_eq!(buf.iter().filter(|b| **b != 0).count(), 1);
    let mut four = [0; 4];
    r.read_exact_at(4, &mut four).unwrap();
    assert_eq!(four, [0, 8, 0, 0]);
    r.read_exact_at(6, &mut four).unwrap();
    assert_eq!(four, [0; 4]);
    assert_eq!(
        fs.read_file("/d/f").unwrap(),
        [0; 16],
        "the stored bytes are intact"
    );
    fs.clear_faults();
    r.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(buf, [0; 16]);
}

#[test]
fn write_file_rebases_and_create_over_a_name_makes_a_new_file() {
    let fs = with_dir();
    let mut f = fs.create(p("/d/f")).unwrap();
    f.append(b"first").unwrap();
    let reader = fs.open(p("/d/f")).unwrap();
    let mut g = fs.create(p("/d/f")).unwrap();
    g.append(b"2").unwrap();
    let mut buf = [0; 5];
    reader.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"first", "the old reader keeps the old file");
    assert_eq!(fs.read_file("/d/f").unwrap(), b"2");
    fs.write_file("/d/damaged", b"xyz".to_vec());
    assert_eq!(fs.op_count(), 0);
    let c = fs.crash_at(0, &CrashOptions::power_loss());
    assert_eq!(c.read_file("/d/damaged").unwrap(), b"xyz");
    assert_eq!(c.read_file("/d/f").unwrap(), b"2");
}

#[test]
fn halted_file_system_refuses_everything() {
    let fs = with_dir();
    let mut f = fs.create(p("/d/f")).unwrap();
    let r = fs.open(p("/d/f")).unwrap();
    fs.halt();
    assert!(f.append(b"x").is_err());
    assert!(f.sync().is_err());
    assert!(r.read_exact_at(0, &mut []).is_err());
    assert!(fs.list(p("/d")).is_err());
    assert!(fs.lock(p("/d/LOCK")).is_err());
    assert!(fs.sync_dir(p("/d")).is_err());
}

#[test]
fn a_link_shares_bytes_and_is_lost_with_its_unsynced_directory() {
    let fs = with_dir();
    fs.create_dir_all(p("/e")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    let mut w = fs.create(p("/d/a")).unwrap();
    w.append(b"table").unwrap();
    w.sync().unwrap();
    fs.sync_dir(p("/d")).unwrap();
    let before = fs.op_count();
    fs.link(p("/d/a"), p("/e/b")).unwrap();
    assert_eq!(read_all(&fs, "/e/b"), b"table");
    assert!(fs.link(p("/d/a"), p("/e/b")).is_err(), "the name exists");
    assert!(fs.link(p("/d/zz"), p("/e/c")).is_err(), "no such file");
    let ops = fs.ops();
    assert_eq!(ops.len(), before + 1, "one recorded change");
    assert_eq!(ops[before].kind, OpKind::Link);
    assert!(
        fs.crash_at(before + 1, &CrashOptions::power_loss())
            .read_file("/e/b")
            .is_none()
    );
    assert_eq!(
        fs.crash_at(before + 1, &CrashOptions::process())
            .read_file("/e/b")
            .as_deref(),
        Some(&b"table"[..])
    );
    fs.sync_dir(p("/e")).unwrap();
    fs.remove(p("/d/a")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
    let after = fs.crash(&CrashOptions::power_loss());
    assert_eq!(after.read_file("/e/b").as_deref(), Some(&b"table"[..]));
    assert!(after.read_file("/d/a").is_none());
}

#[test]
fn a_link_fault_fails_it_and_changes_nothing() {
    let fs = with_dir();
    fs.create(p("/d/a")).unwrap();
    fs.inject(Fault::Nth {
        kind: OpKind::Link,
        n: 1,
    });
    assert!(fs.link(p("/d/a"), p("/d/b")).is_err());
    assert!(!fs.exists(p("/d/b")).unwrap());
}
