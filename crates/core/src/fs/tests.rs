//! One suite, run against every [`FileSystem`] implementation.

use super::*;
use crate::Error;

/// Runs `check` against a fresh `MemFs` rooted at `/db` and a `StdFs` in a temp dir.
fn on_both(check: impl Fn(&dyn FileSystem, &Path)) {
    let mem = MemFs::new();
    mem.create_dir_all(Path::new("/db")).unwrap();
    check(&mem, Path::new("/db"));

    let tmp = tempfile::tempdir().unwrap();
    check(&StdFs, tmp.path());
}

#[test]
fn written_bytes_read_back_at_any_offset() {
    on_both(|fs, dir| {
        let p = dir.join("f");
        let mut w = fs.create(&p).unwrap();
        w.append(b"hello ").unwrap();
        w.append(b"world").unwrap();
        w.sync().unwrap();
        assert_eq!(w.len(), 11);
        drop(w);
        let r = fs.open(&p).unwrap();
        assert_eq!(r.len(), 11);
        let mut buf = [0; 5];
        r.read_exact_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"world");
        assert_eq!(&r.read_bytes(0, 5).unwrap()[..], b"hello");
        assert_eq!(r.path(), p.as_path());
    });
}

#[test]
fn reading_past_the_end_is_an_error_not_a_short_read() {
    on_both(|fs, dir| {
        let p = dir.join("f");
        fs.create(&p).unwrap().append(b"abc").unwrap();
        let r = fs.open(&p).unwrap();
        let mut buf = [0; 2];
        let err = r.read_exact_at(2, &mut buf).unwrap_err();
        assert!(
            matches!(err, Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof)
        );
        assert!(r.read_exact_at(u64::MAX, &mut buf).is_err());
    });
}

#[test]
fn create_truncates_and_rename_replaces() {
    on_both(|fs, dir| {
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs.create(&a).unwrap().append(b"old contents").unwrap();
        fs.create(&a).unwrap().append(b"new").unwrap();
        assert_eq!(fs.open(&a).unwrap().len(), 3);
        fs.create(&b).unwrap().append(b"bb").unwrap();
        fs.rename(&a, &b).unwrap();
        assert!(!fs.exists(&a).unwrap());
        assert_eq!(&fs.open(&b).unwrap().read_bytes(0, 3).unwrap()[..], b"new");
        fs.sync_dir(dir).unwrap();
    });
}

#[test]
fn list_and_remove() {
    on_both(|fs, dir| {
        for name in ["x", "y"] {
            fs.create(&dir.join(name)).unwrap();
        }
        fs.create_dir_all(&dir.join("sub/deeper")).unwrap();
        let mut names = fs.list(dir).unwrap();
        names.sort();
        assert_eq!(names, ["sub", "x", "y"]);
        fs.remove(&dir.join("x")).unwrap();
        assert!(fs.remove(&dir.join("x")).is_err());
        assert!(fs.open(&dir.join("x")).is_err());
        assert_eq!(fs.list(&dir.join("sub")).unwrap(), ["deeper"]);
        assert!(fs.list(&dir.join("missing")).is_err());
    });
}

#[test]
fn an_open_reader_outlives_removal() {
    on_both(|fs, dir| {
        let p = dir.join("f");
        fs.create(&p).unwrap().append(b"still here").unwrap();
        let r = fs.open(&p).unwrap();
        fs.remove(&p).unwrap();
        assert_eq!(&r.read_bytes(0, 10).unwrap()[..], b"still here");
    });
}

#[test]
fn creating_in_a_missing_directory_fails() {
    on_both(|fs, dir| {
        assert!(fs.create(&dir.join("nope/f")).is_err());
    });
}

#[test]
fn lock_is_exclusive_until_dropped() {
    on_both(|fs, dir| {
        let p = dir.join("LOCK");
        let guard = fs.lock(&p).unwrap();
        assert_eq!(guard.path(), p.as_path());
        assert!(matches!(fs.lock(&p), Err(Error::Locked { .. })));
        drop(guard);
        let _again = fs.lock(&p).unwrap();
    });
}

#[test]
fn atomic_replace_installs_new_contents_and_leaves_no_temp() {
    on_both(|fs, dir| {
        let p = dir.join("CURRENT");
        atomic_replace(fs, &p, b"MANIFEST-000001\n").unwrap();
        atomic_replace(fs, &p, b"MANIFEST-000002\n").unwrap();
        let r = fs.open(&p).unwrap();
        assert_eq!(
            &r.read_bytes(0, r.len() as usize).unwrap()[..],
            b"MANIFEST-000002\n"
        );
        assert_eq!(fs.list(dir).unwrap(), ["CURRENT"]);
    });
}

#[test]
fn atomic_replace_into_a_missing_directory_fails_cleanly() {
    on_both(|fs, dir| {
        assert!(atomic_replace(fs, &dir.join("missing/CURRENT"), b"x").is_err());
        assert!(fs.list(dir).unwrap().is_empty());
    });
}

/// `CURRENT` is replaced while a reader (another process's read-only open, say) may have
/// it open; on Windows that works only because every handle shares delete access.
#[test]
fn rename_replaces_a_file_that_is_open_for_reading() {
    on_both(|fs, dir| {
        let (tmp, current) = (dir.join("CURRENT.tmp"), dir.join("CURRENT"));
        fs.create(&current).unwrap().append(b"old").unwrap();
        let reader = fs.open(&current).unwrap();
        let mut w = fs.create(&tmp).unwrap();
        w.append(b"new!").unwrap();
        w.sync().unwrap();
        drop(w);
        fs.rename(&tmp, &current).unwrap();
        fs.sync_dir(dir).unwrap();
        assert_eq!(&reader.read_bytes(0, 3).unwrap()[..], b"old");
        assert_eq!(
            &fs.open(&current).unwrap().read_bytes(0, 4).unwrap()[..],
            b"new!"
        );
    });
}

#[test]
fn syncing_a_missing_directory_fails() {
    on_both(|fs, dir| {
        assert!(fs.sync_dir(&dir.join("missing")).is_err());
    });
}

#[test]
fn a_link_is_a_second_name_for_the_same_bytes() {
    on_both(|fs, dir| {
        let (a, b) = (dir.join("a"), dir.join("b"));
        let mut w = fs.create(&a).unwrap();
        w.append(b"shared").unwrap();
        w.sync().unwrap();
        drop(w);
        fs.link(&a, &b).unwrap();
        fs.sync_dir(dir).unwrap();
        assert_eq!(
            &fs.open(&b).unwrap().read_bytes(0, 6).unwrap()[..],
            b"shared"
        );
        // Removing one name leaves the other.
        fs.remove(&a).unwrap();
        assert_eq!(
            &fs.open(&b).unwrap().read_bytes(0, 6).unwrap()[..],
            b"shared"
        );
        let mut names = fs.list(dir).unwrap();
        names.sort();
        assert_eq!(names, ["b"]);
    });
}

#[test]
fn linking_fails_onto_an_existing_name_from_a_missing_file_or_into_a_missing_directory() {
    on_both(|fs, dir| {
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs.create(&a).unwrap().append(b"a").unwrap();
        fs.create(&b).unwrap().append(b"b").unwrap();
        let exists = fs.link(&a, &b).unwrap_err();
        assert!(
            matches!(exists, Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{exists:?}"
        );
        assert!(
            !is_link_unavailable(&exists),
            "a real failure, not a reason to copy"
        );
        assert_eq!(&fs.open(&b).unwrap().read_bytes(0, 1).unwrap()[..], b"b");
        assert!(fs.link(&dir.join("missing"), &dir.join("c")).is_err());
        assert!(fs.link(&a, &dir.join("nope/c")).is_err());
    });
}

#[test]
fn a_file_system_without_links_says_so_in_a_way_callers_can_fall_back_on() {
    /// A file system written before `link` existed: it inherits the default.
    #[derive(Debug)]
    struct Old(MemFs);
    impl FileSystem for Old {
        fn create(&self, p: &Path) -> crate::Result<Box<dyn WritableFile>> {
            self.0.create(p)
        }
        fn open(&self, p: &Path) -> crate::Result<Arc<dyn RandomAccessFile>> {
            self.0.open(p)
        }
        fn rename(&self, f: &Path, t: &Path) -> crate::Result<()> {
            self.0.rename(f, t)
        }
        fn remove(&self, p: &Path) -> crate::Result<()> {
            self.0.remove(p)
        }
        fn list(&self, d: &Path) -> crate::Result<Vec<String>> {
            self.0.list(d)
        }
        fn exists(&self, p: &Path) -> crate::Result<bool> {
            self.0.exists(p)
        }
        fn create_dir_all(&self, d: &Path) -> crate::Result<()> {
            self.0.create_dir_all(d)
        }
        fn sync_dir(&self, d: &Path) -> crate::Result<()> {
            self.0.sync_dir(d)
        }
        fn lock(&self, p: &Path) -> crate::Result<Box<dyn FileLock>> {
            self.0.lock(p)
        }
    }
    let fs = Old(MemFs::new());
    fs.create(Path::new("/a")).unwrap();
    let err = fs.link(Path::new("/a"), Path::new("/b")).unwrap_err();
    assert!(is_link_unavailable(&err), "{err:?}");
    assert!(!fs.exists(Path::new("/b")).unwrap());
}

#[test]
fn mapped_files_read_like_opened_ones() {
    on_both(|fs, dir| {
        let p = dir.join("mapped");
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = fs.create(&p).unwrap();
        w.append(&bytes).unwrap();
        w.sync().unwrap();
        drop(w);
        let (mapped, opened) = (fs.open_mapped(&p).unwrap(), fs.open(&p).unwrap());
        assert_eq!(mapped.len(), opened.len());
        // Small reads (through the mapping where there is one) and large ones (pread).
        for (offset, len) in [(0, 1), (4090, 4096), (99_000, 1000), (1, 80_000)] {
            let (mut a, mut b) = (vec![0; len], vec![0; len]);
            mapped.read_exact_at(offset, &mut a).unwrap();
            opened.read_exact_at(offset, &mut b).unwrap();
            assert_eq!(a, b);
            assert_eq!(&a[..], &bytes[offset as usize..offset as usize + len]);
            // `read_bytes` copies out of the mapping without zeroing a buffer first.
            assert_eq!(mapped.read_bytes(offset, len).unwrap(), a);
            assert_eq!(opened.read_bytes(offset, len).unwrap(), a);
        }
        let eof = |err: &Error| matches!(err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof);
        let err = mapped.read_exact_at(99_999, &mut [0; 2]).unwrap_err();
        assert!(eof(&err), "{err}");
        let err = mapped.read_bytes(99_999, 2).unwrap_err();
        assert!(eof(&err), "{err}");
        let err = mapped.read_bytes(u64::MAX, 2).unwrap_err();
        assert!(eof(&err), "{err}");
    });
}

/// A file shortened by someone else while mapped: reading past its new end would raise
/// SIGBUS and kill the process; the handler turns it into a Corruption error naming the
/// file and offset (this test would crash, not fail, without it).
#[cfg(all(unix, target_pointer_width = "64"))]
#[test]
fn a_mapped_file_shortened_under_the_mapping_is_corruption_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("000009.sst");
    std::fs::write(&p, vec![7u8; 64 << 10]).unwrap();
    let r = StdFs.open_mapped(&p).unwrap();
    // A second mapping, to see the fault during `read_bytes`' copy too (the first
    // mapping's damage mark would answer before any copy).
    let r2 = StdFs.open_mapped(&p).unwrap();
    let mut buf = [0u8; 4096];
    r.read_exact_at(40 << 10, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 7));
    assert!(
        r2.read_bytes(40 << 10, 4096)
            .unwrap()
            .iter()
            .all(|&b| b == 7)
    );

    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(8 << 10)
        .unwrap();
    let err = r.read_exact_at(40 << 10, &mut buf).unwrap_err();
    match &err {
        Error::Corruption {
            file,
            offset,
            reason,
        } => {
            assert_eq!(file, &p);
            assert_eq!(*offset, 40 << 10);
            assert!(reason.contains("shortened"), "{reason}");
        }
        other => panic!("{other}"),
    }
    let err = r2.read_bytes(40 << 10, 4096).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, offset, .. } if file == &p && *offset == 40 << 10),
        "{err}"
    );
    // The mapping stays marked: every later read of it says so too (its bytes can no
    // longer be trusted), while a fresh open sees the file as it is now.
    assert!(r.read_exact_at(0, &mut buf).unwrap_err().is_corruption());
    let again = StdFs.open_mapped(&p).unwrap();
    assert_eq!(again.len(), 8 << 10);
    again.read_exact_at(0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 7));
}

/// A fault in a mapping Strata did not make keeps its usual meaning: the handler Strata
/// installs passes it on, and the process ends by SIGBUS.
#[cfg(all(unix, target_pointer_width = "64"))]
#[test]
fn a_fault_in_someone_elses_mapping_still_ends_the_process() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours");
    std::fs::write(&ours, [1u8; 4096]).unwrap();
    // Installs the handler (in this process, inherited by the child below).
    let _mapped = StdFs.open_mapped(&ours).unwrap();
    // A mapping of the application's own, of a file then shortened to nothing.
    let theirs = tmp.path().join("theirs");
    std::fs::write(&theirs, [2u8; 16384]).unwrap();
    let file = std::fs::File::open(&theirs).unwrap();
    // SAFETY: test-only mapping; its pages are touched only by the child below, which
    // is meant to die of it.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&theirs)
        .unwrap()
        .set_len(0)
        .unwrap();
    let past_end = map.as_ptr().wrapping_add(8192);
    // SAFETY: the child only reads memory and calls _exit (async-signal-safe) before it
    // ends, as a child of a multi-threaded process must.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: see above; the read faults (the file has no page there any more).
        unsafe {
            std::ptr::read_volatile(past_end);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGBUS,
        "the child was not ended by SIGBUS (status {status:#x})"
    );
    drop(map);
}

/// A log whose zeros ahead are mapped for appends, shortened under the mapping by
/// someone else: the append that touches a missing page is an error (never reported
/// written), the process goes on, and what was appended before is intact.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
fn an_append_into_a_mapped_log_shortened_under_it_is_an_error_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("000007.log");
    let mut w = StdFs.create(&p).unwrap();
    w.append(&[1u8; 100]).unwrap();
    w.zero_ahead(64 << 10).unwrap();
    w.append(&[2u8; 100]).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(4096)
        .unwrap();
    // Into pages past the new end: they are gone.
    let err = w.append(&vec![3u8; 16 << 10]).unwrap_err();
    assert!(err.to_string().contains("shortened"), "{err}");
    assert_eq!(w.len(), 200, "a failed append is not counted");
    let bytes = std::fs::read(&p).unwrap();
    assert!(bytes[..100].iter().all(|&b| b == 1));
    assert!(bytes[100..200].iter().all(|&b| b == 2));
}

/// What a process crash leaves of appends copied into a mapped log: all of them, as
/// with `pwrite` (the page cache holds them; only a power loss needs `sync`). A forked
/// child appends and dies without syncing or unmapping.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
fn appends_copied_into_a_mapped_log_survive_the_process_dying() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("000008.log");
    let mut w = StdFs.create(&p).unwrap();
    w.append(b"header").unwrap();
    w.zero_ahead(1 << 20).unwrap();
    // SAFETY: the child only copies memory (appends that fit the mapping make no system
    // call and allocate nothing) and calls _exit, as a child of a multi-threaded
    // process must.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut ok = true;
        for i in 0..1000u32 {
            ok &= w.append(&[(i % 251) as u8; 100]).is_ok();
        }
        // SAFETY: see above.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(&bytes[..6], b"header");
    for i in 0..1000usize {
        let record = &bytes[6 + i * 100..6 + (i + 1) * 100];
        assert!(record.iter().all(|&b| b == (i % 251) as u8), "record {i}");
    }
    assert!(bytes[6 + 100_000..].iter().all(|&b| b == 0));
}

/// After `preallocate` (a log synced often) appends go through `pwrite`, and
/// `zero_ahead(0)` takes the mapping up again: seen through a file shortened under its
/// window, where only an append through the mapping fails.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
fn preallocating_switches_appends_to_pwrite_until_the_next_zero_ahead() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("000009.log");
    let mut w = StdFs.create(&p).unwrap();
    w.append(&[1u8; 100]).unwrap();
    w.zero_ahead(64 << 10).unwrap();
    // Already zeroed, so this writes nothing; it only switches appends to `pwrite`.
    w.preallocate(4096).unwrap();
    let shorten = |to: u64| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(to)
            .unwrap()
    };
    shorten(4096);
    w.append(&[2u8; 16 << 10]).unwrap();
    assert_eq!(std::fs::read(&p).unwrap().len(), 100 + (16 << 10));
    // Back to the window (still mapped over the first 64 KiB): past the file's end now.
    w.zero_ahead(0).unwrap();
    let err = w.append(&[3u8; 32 << 10]).unwrap_err();
    assert!(err.to_string().contains("shortened"), "{err}");
}
