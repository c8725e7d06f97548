//! Incremental backups of a live database into a backup directory, with restore,
//! verification and purging of old backups.
//!
//! A backup directory holds every backup's table files once, shared between backups,
//! and one small checksummed *backup manifest* per backup:
//!
//! ```text
//! <backup dir>/LOCK                              held while a `Backup` handle is open
//! <backup dir>/tables/000012-3f9a1c0e5b7d2a44.sst   table 12 whose XXH3-64 is 3f9a…
//! <backup dir>/backups/000001.backup             backup 1 (docs/format/backup.md)
//! ```
//!
//! A table is identified by its file number *and* the checksum of its whole content,
//! both in its name, so a number reused with other content (a database restored from
//! an older backup allocates the numbers a newer one used) is a different file. A
//! backup copies only the tables the backup directory does not hold yet.
//!
//! Crash safety: nothing a listed backup references is ever written to again; a new
//! table is copied to a temporary name, synced and renamed; the backup manifest is
//! written last, with [`atomic_replace`] (temporary name, sync, rename, directory sync).
//! A backup interrupted at any point is therefore not listed, and leaves earlier ones
//! intact; what it copied is garbage that [`Backup::purge_old`] removes.
//!
//! ```
//! use strata::backup::Backup;
//!
//! let dir = tempfile::tempdir()?;
//! let db = strata::Db::open(dir.path().join("db"))?;
//! db.put("k", "v1")?;
//! let backups = Backup::open(dir.path().join("backups"))?;
//! let first = backups.create(&db)?;
//! db.put("k", "v2")?;
//! backups.create(&db)?;
//!
//! backups.verify(first.info.id)?;
//! backups.restore(first.info.id, dir.path().join("restored"))?;
//! let restored = strata::Db::open(dir.path().join("restored"))?;
//! assert_eq!(restored.get("k")?.as_deref(), Some(&b"v1"[..]));
//! assert_eq!(backups.list()?.len(), 2);
//! # Ok::<(), strata::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_core::varint::{read_u32_le, read_u64_le};
use strata_core::{Error, FileLock, FileSystem, Result, SequenceNumber, StdFs, atomic_replace};

use crate::checkpoint::{
    CheckpointTree, CopyProgress, Scope, check_empty_target, copy_file, hash_file,
    install_database, pin,
};
use crate::db::Db;
use crate::edit::{EditError, VersionEdit};
use crate::filename::table_path;
use crate::open::create_dir_durably;

/// First bytes of every backup manifest.
pub const BACKUP_MAGIC: [u8; 8] = *b"STRATABK";
/// The backup manifest format this build writes and the newest it reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;

const TABLES: &str = "tables";
const BACKUPS: &str = "backups";
const LOCK: &str = "LOCK";
const SUFFIX: &str = ".backup";

/// One table a backup holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupTable {
    /// Its file number in the database.
    pub number: u64,
    /// Its level in the database.
    pub level: u32,
    /// Its size in bytes.
    pub size: u64,
    /// XXH3-64 of its whole content.
    pub checksum: u64,
}

impl BackupTable {
    /// Its name in the backup directory's `tables/`: number and checksum.
    pub fn file_name(&self) -> String {
        format!("{:06}-{:016x}.sst", self.number, self.checksum)
    }
}

/// A backup, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    /// Its id: 1 for the first backup in a directory, one more for each next one.
    pub id: u64,
    /// The backup holds exactly the writes up to this sequence number.
    pub sequence: SequenceNumber,
    /// When it was taken (to the millisecond).
    pub created: SystemTime,
    /// Its tables.
    pub tables: Vec<BackupTable>,
}

impl BackupInfo {
    /// Total size of its tables.
    pub fn bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.size).sum()
    }
}

/// What [`Backup::create`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedBackup {
    /// The new backup.
    pub info: BackupInfo,
    /// Tables copied into the backup directory by this backup (the rest were already
    /// there, from earlier backups).
    pub copied_tables: usize,
    /// Their bytes.
    pub copied_bytes: u64,
    /// How long the call waited for the flush of the MemTable it froze (writers do not).
    pub flush_wait: Duration,
}

/// What [`Backup::purge_old`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Ids of the backups removed.
    pub backups: Vec<u64>,
    /// Table files removed (no kept backup references them).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// A backup directory, open and locked (one handle at a time, across processes).
#[derive(Debug)]
pub struct Backup {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    _lock: Box<dyn FileLock>,
    /// Held by every operation: the handle may be shared between threads, and two
    /// backups at once would take the same id (the second manifest replacing the
    /// first), a purge could delete a table a backup in progress copied but has not
    /// listed yet, and a verify or restore could see a purge's half-removed tables as
    /// damage.
    busy: Mutex<()>,
}

impl Backup {
    /// Opens the backup directory `dir` on the real file system, creating it if needed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Backup> {
        Self::open_on(Arc::new(StdFs), dir)
    }

    /// Opens the backup directory `dir` on `fs` (e.g. a [`MemFs`](crate::MemFs) in
    /// tests), creating it if needed. Takes the directory's lock
    /// ([`Error::Locked`] if another handle holds it) and removes temporary files an
    /// interrupted backup left.
    pub fn open_on(fs: Arc<dyn FileSystem>, dir: impl AsRef<Path>) -> Result<Backup> {
        let dir = dir.as_ref().to_path_buf();
        if dir.as_os_str().is_empty() {
            return Err(Error::InvalidArgument(
                "the backup directory path is empty".into(),
            ));
        }
        create_dir_durably(&*fs, &dir.join(TABLES))?;
        create_dir_durably(&*fs, &dir.join(BACKUPS))?;
        let lock = fs.lock(&dir.join(LOCK))?;
        let backup = Backup {
            fs,
            dir,
            _lock: lock,
            busy: Mutex::new(()),
        };
        for sub in [TABLES, BACKUPS] {
            let sub = backup.dir.join(sub);
            for name in backup.fs.list(&sub)? {
                if name.ends_with(".tmp") {
                    // Best effort: a leftover is only garbage, never listed.
                    let _ = backup.fs.remove(&sub.join(name));
                }
            }
        }
        Ok(backup)
    }

    /// The backup directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn manifest_path(&self, id: u64) -> PathBuf {
        self.dir.join(BACKUPS).join(format!("{id:06}{SUFFIX}"))
    }

    fn table_path(&self, table: &BackupTable) -> PathBuf {
        self.dir.join(TABLES).join(table.file_name())
    }

    /// Every complete backup, oldest first. A damaged backup manifest is
    /// [`Error::Corruption`] naming it.
    pub fn list(&self) -> Result<Vec<BackupInfo>> {
        let _busy = crate::db::lock(&self.busy);
        Ok(self
            .manifests()?
            .into_iter()
            .map(|m| m.info)
            .collect::<Vec<_>>())
    }

    fn ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = self
            .fs
            .list(&self.dir.join(BACKUPS))?
            .iter()
            .filter_map(|name| {
                let digits = name.strip_suffix(SUFFIX)?;
                (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| digits.parse().ok())
                    .flatten()
            })
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn manifests(&self) -> Result<Vec<Manifest>> {
        self.ids()?.into_iter().map(|id| self.read(id)).collect()
    }

    fn read(&self, id: u64) -> Result<Manifest> {
        let path = self.manifest_path(id);
        if !self.fs.exists(&path)? {
            return Err(Error::InvalidArgument(format!(
                "no backup {id} in {}",
                self.dir.display()
            )));
        }
        let file = self.fs.open(&path)?;
        let len = usize::try_from(file.len())
            .ok()
            .filter(|&l| l <= MAX_MANIFEST_BYTES)
            .ok_or_else(|| {
                Error::corruption(&path, 0, format!("{} bytes: too large", file.len()))
            })?;
        let bytes = file.read_bytes(0, len)?;
        let manifest = Manifest::decode(&bytes)
            .map_err(|(offset, reason)| Error::corruption(&path, offset as u64, reason))?;
        if manifest.info.id != id {
            return Err(Error::corruption(
                &path,
                12,
                format!("holds backup {}, not {id}", manifest.info.id),
            ));
        }
        Ok(manifest)
    }

    /// Backs up `db` (a writable handle; it keeps serving reads and writes): flushes
    /// its MemTable, copies the tables of that state that this directory does not hold
    /// yet, and writes the backup's manifest. The backup holds exactly the writes up
    /// to [`BackupInfo::sequence`], including every write acknowledged before the call.
    ///
    /// Every live table is read once to checksum it (a table whose number and size
    /// match one held is only read, not copied). Crash-safe: see the module docs.
    pub fn create(&self, db: &Db) -> Result<CreatedBackup> {
        self.create_with_progress(db, &mut |_| {})
    }

    /// [`create`](Self::create), calling `progress` as table bytes are read or copied.
    pub fn create_with_progress(
        &self,
        db: &Db,
        progress: &mut dyn FnMut(CopyProgress),
    ) -> Result<CreatedBackup> {
        let _busy = crate::db::lock(&self.busy);
        let manifests = self.manifests()?;
        let held: BTreeSet<(u64, u64, u64)> = manifests
            .iter()
            .flat_map(|m| &m.info.tables)
            .map(|t| (t.number, t.size, t.checksum))
            .collect();
        let id = manifests.last().map_or(1, |m| m.info.id + 1);

        let inner = db.inner();
        if inner.trees().len() > 1 {
            return Err(Error::NotSupported(
                "backups of a database with keyspaces besides the default one are not built yet (the backup format names one keyspace); take a checkpoint instead".into(),
            ));
        }
        let pinned = pin(inner, Scope::All)?;
        let [tree] = pinned.trees.as_slice() else {
            return Err(Error::NotSupported(
                "a keyspace was made while the backup started; backups hold the default keyspace only".into(),
            ));
        };
        let files = tree.files();
        let total_bytes = files.iter().map(|(_, m)| m.size_bytes).sum();
        let mut done_bytes = 0;
        progress(CopyProgress {
            done_bytes,
            total_bytes,
        });
        let (mut copied_tables, mut copied_bytes) = (0, 0);
        let mut tables = Vec::with_capacity(files.len());
        let tables_dir = self.dir.join(TABLES);
        for (level, meta) in &files {
            let src = table_path(&inner.dir, meta.number);
            let mut step = 0;
            let mut report = |n: u64| {
                step += n;
                progress(CopyProgress {
                    done_bytes: done_bytes + step,
                    total_bytes,
                });
            };
            // Held already? Only a table of the same number and size can be; its
            // checksum decides.
            let candidate = held
                .range((meta.number, meta.size_bytes, 0)..=(meta.number, meta.size_bytes, u64::MAX))
                .next()
                .is_some();
            let mut checksum = None;
            if candidate {
                let (len, sum) = hash_file(&*inner.fs, &src, &mut report)?;
                if held.contains(&(meta.number, len, sum)) {
                    checksum = Some(sum);
                }
            }
            let checksum = match checksum {
                Some(sum) => sum,
                None => {
                    let tmp = tables_dir.join(format!("{:06}.sst.tmp", meta.number));
                    let (len, sum) = copy_file(&*inner.fs, &src, &*self.fs, &tmp, &mut report)?;
                    if len != meta.size_bytes {
                        let _ = self.fs.remove(&tmp);
                        return Err(Error::corruption(
                            &src,
                            len,
                            format!("the manifest says {} bytes", meta.size_bytes),
                        ));
                    }
                    let table = BackupTable {
                        number: meta.number,
                        level: 0,
                        size: len,
                        checksum: sum,
                    };
                    self.fs.rename(&tmp, &self.table_path(&table))?;
                    copied_tables += 1;
                    copied_bytes += len;
                    sum
                }
            };
            done_bytes += meta.size_bytes;
            tables.push(BackupTable {
                number: meta.number,
                level: u32::try_from(*level).unwrap_or(u32::MAX),
                size: meta.size_bytes,
                checksum,
            });
        }
        // The copied tables' names are durable before a manifest names them.
        self.fs.sync_dir(&tables_dir)?;

        let created_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let manifest = Manifest {
            info: BackupInfo {
                id,
                sequence: pinned.last_sequence,
                created: UNIX_EPOCH + Duration::from_millis(created_ms),
                tables,
            },
            edit: VersionEdit {
                // The format its tables and counters are in: a build that reads only
                // older manifests (no range deletes) refuses the backup by name.
                format_version: Some(crate::edit::MANIFEST_FORMAT_VERSION),
                next_file_number: Some(pinned.next_file_number),
                last_sequence: Some(pinned.last_sequence),
                new_files: files,
                ..VersionEdit::default()
            },
        };
        // Temp name, sync, rename, directory sync: listed only once complete.
        atomic_replace(&*self.fs, &self.manifest_path(id), &manifest.encode())?;
        let flush_wait = pinned.flush_wait;
        drop(pinned);
        tracing::info!(
            backup = id,
            sequence = manifest.info.sequence,
            tables = manifest.info.tables.len(),
            copied_tables,
            copied_bytes,
            "backup created"
        );
        Ok(CreatedBackup {
            info: manifest.info,
            copied_tables,
            copied_bytes,
            flush_wait,
        })
    }

    /// Checks backup `id` whole: its manifest's checksum, and the size and XXH3-64 of
    /// every table it references. Damage is [`Error::Corruption`] naming the file (a
    /// missing table too); an unknown id is [`Error::InvalidArgument`].
    pub fn verify(&self, id: u64) -> Result<BackupInfo> {
        self.verify_with_progress(id, &mut |_| {})
    }

    /// [`verify`](Self::verify), calling `progress` as table bytes are read.
    pub fn verify_with_progress(
        &self,
        id: u64,
        progress: &mut dyn FnMut(CopyProgress),
    ) -> Result<BackupInfo> {
        let _busy = crate::db::lock(&self.busy);
        let manifest = self.read(id)?;
        let total_bytes = manifest.info.bytes();
        let mut done_bytes = 0;
        for table in &manifest.info.tables {
            let path = self.table_path(table);
            if !self.fs.exists(&path)? {
                return Err(Error::corruption(
                    &path,
                    0,
                    format!("backup {id} references this table but it is missing"),
                ));
            }
            let (len, sum) = hash_file(&*self.fs, &path, &mut |n| {
                done_bytes += n;
                progress(CopyProgress {
                    done_bytes,
                    total_bytes,
                });
            })?;
            check_table(&path, table, len, sum)?;
        }
        Ok(manifest.info)
    }

    /// Restores backup `id` into `target` (which must not exist, or be empty; on this
    /// backup directory's file system): a database holding exactly the backed-up state.
    ///
    /// Every table is checked (size and checksum) as it is copied; on damage the
    /// restore stops with [`Error::Corruption`] naming the backup's file, removes what
    /// it copied, and `target` never becomes a database (`CURRENT` is written last,
    /// after every table, WAL and manifest is fsynced with the directory).
    pub fn restore(&self, id: u64, target: impl AsRef<Path>) -> Result<BackupInfo> {
        self.restore_with_progress(id, target, &mut |_| {})
    }

    /// [`restore`](Self::restore), calling `progress` as table bytes are copied.
    pub fn restore_with_progress(
        &self,
        id: u64,
        target: impl AsRef<Path>,
        progress: &mut dyn FnMut(CopyProgress),
    ) -> Result<BackupInfo> {
        let _busy = crate::db::lock(&self.busy);
        let target = target.as_ref();
        let fs = &*self.fs;
        let manifest = self.read(id)?;
        check_empty_target(fs, target)?;
        create_dir_durably(fs, target)?;
        let total_bytes = manifest.info.bytes();
        let mut done_bytes = 0;
        let mut written = Vec::new();
        let copied = (|| {
            for table in &manifest.info.tables {
                let src = self.table_path(table);
                if !fs.exists(&src)? {
                    return Err(Error::corruption(
                        &src,
                        0,
                        format!("backup {id} references this table but it is missing"),
                    ));
                }
                let dst = table_path(target, table.number);
                written.push(dst.clone());
                let (len, sum) = copy_file(fs, &src, fs, &dst, &mut |n| {
                    done_bytes += n;
                    progress(CopyProgress {
                        done_bytes,
                        total_bytes,
                    });
                })?;
                check_table(&src, table, len, sum)?;
            }
            // Their names become durable with `install_database`'s directory sync.
            Ok(())
        })();
        if let Err(e) = copied {
            for path in written {
                let _ = fs.remove(&path);
            }
            return Err(e);
        }
        install_database(
            fs,
            target,
            &[CheckpointTree {
                id: crate::batch::DEFAULT_KEYSPACE,
                name: crate::tree::DEFAULT_NAME.to_owned(),
                files: manifest.edit.new_files,
            }],
            manifest.info.sequence,
            manifest.edit.next_file_number.unwrap_or(1),
            1,
        )?;
        Ok(manifest.info)
    }

    /// Removes every backup but the newest `keep`, then every table file no remaining
    /// backup references (including what interrupted backups left). Crash-safe: the
    /// manifests go first (and that is made durable), so a crash leaves unreferenced
    /// tables, never a listed backup missing one.
    pub fn purge_old(&self, keep: usize) -> Result<Purged> {
        let _busy = crate::db::lock(&self.busy);
        let ids = self.ids()?;
        let mut purged = Purged::default();
        let drop_count = ids.len().saturating_sub(keep);
        for &id in ids.iter().take(drop_count) {
            self.fs.remove(&self.manifest_path(id))?;
            purged.backups.push(id);
        }
        self.fs.sync_dir(&self.dir.join(BACKUPS))?;
        let referenced: BTreeSet<String> = self
            .manifests()?
            .iter()
            .flat_map(|m| &m.info.tables)
            .map(BackupTable::file_name)
            .collect();
        let tables_dir = self.dir.join(TABLES);
        for name in self.fs.list(&tables_dir)? {
            if !referenced.contains(&name) {
                let path = tables_dir.join(&name);
                let size = self.fs.open(&path).map_or(0, |f| f.len());
                self.fs.remove(&path)?;
                purged.files += 1;
                purged.bytes += size;
            }
        }
        self.fs.sync_dir(&tables_dir)?;
        Ok(purged)
    }
}

fn check_table(path: &Path, table: &BackupTable, len: u64, sum: u64) -> Result<()> {
    if len != table.size {
        return Err(Error::corruption(
            path,
            len.min(table.size),
            format!("{len} bytes; the backup manifest says {}", table.size),
        ));
    }
    if sum != table.checksum {
        return Err(Error::corruption(
            path,
            0,
            format!(
                "content checksum {sum:016x}; the backup manifest says {:016x}",
                table.checksum
            ),
        ));
    }
    Ok(())
}

/// A backup manifest larger than this is damage, not a backup (a million tables take
/// under 100 MiB).
const MAX_MANIFEST_BYTES: usize = 256 << 20;

/// Bytes of one table entry: number, level, size, checksum.
const TABLE_ENTRY: usize = 8 + 4 + 8 + 8;
/// Bytes before the table entries: magic, version, id, sequence, created, count.
const HEADER: usize = 8 + 4 + 8 + 8 + 8 + 4;

/// A backup manifest (`docs/format/backup.md`): the backup's identity and tables, and
/// the database manifest's snapshot of those tables (levels, key ranges, counters),
/// from which a restore writes the restored database's manifest.
#[derive(Debug, PartialEq, Eq)]
struct Manifest {
    info: BackupInfo,
    edit: VersionEdit,
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut edit = Vec::new();
        self.edit.encode(&mut edit);
        let mut out = Vec::with_capacity(HEADER + self.info.tables.len() * TABLE_ENTRY + 12);
        out.extend_from_slice(&BACKUP_MAGIC);
        out.extend_from_slice(&BACKUP_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.info.id.to_le_bytes());
        out.extend_from_slice(&self.info.sequence.to_le_bytes());
        let created_ms = self
            .info
            .created
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        out.extend_from_slice(&created_ms.to_le_bytes());
        let count = u32::try_from(self.info.tables.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for t in &self.info.tables {
            out.extend_from_slice(&t.number.to_le_bytes());
            out.extend_from_slice(&t.level.to_le_bytes());
            out.extend_from_slice(&t.size.to_le_bytes());
            out.extend_from_slice(&t.checksum.to_le_bytes());
        }
        let edit_len = u32::try_from(edit.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&edit_len.to_le_bytes());
        out.extend_from_slice(&edit);
        let sum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Decodes and checks a backup manifest; on failure, the offset of the damage and
    /// what is wrong.
    fn decode(bytes: &[u8]) -> std::result::Result<Manifest, (usize, String)> {
        let short = |at: usize| (at, format!("ends at {} bytes, inside a field", bytes.len()));
        if bytes.len() < 8 || bytes.get(..8) != Some(&BACKUP_MAGIC[..]) {
            return Err((0, "not a backup manifest (bad magic)".into()));
        }
        let body_len = bytes.len().checked_sub(8).ok_or_else(|| short(0))?;
        let stored = read_u64_le(bytes, body_len).ok_or_else(|| short(body_len))?;
        let body = bytes.get(..body_len).ok_or_else(|| short(body_len))?;
        // The version is read before the checksum is trusted only to report a newer
        // format as such; a damaged version field fails the checksum below otherwise.
        let version = read_u32_le(body, 8).ok_or_else(|| short(8))?;
        if xxhash_rust::xxh3::xxh3_64(body) != stored {
            return Err((body_len, "checksum mismatch".into()));
        }
        if version != BACKUP_FORMAT_VERSION {
            return Err((
                8,
                format!("format version {version}; this build reads {BACKUP_FORMAT_VERSION}"),
            ));
        }
        let u64_at = |at: usize| read_u64_le(body, at).ok_or_else(|| short(at));
        let u32_at = |at: usize| read_u32_le(body, at).ok_or_else(|| short(at));
        let id = u64_at(12)?;
        let sequence = u64_at(20)?;
        let created_ms = u64_at(28)?;
        let count = u32_at(36)? as usize;
        let entries_end = count
            .checked_mul(TABLE_ENTRY)
            .and_then(|n| n.checked_add(HEADER))
            .filter(|&end| end <= body.len())
            .ok_or((36, format!("{count} tables do not fit in the file")))?;
        let mut tables = Vec::with_capacity(count);
        for at in (HEADER..entries_end).step_by(TABLE_ENTRY) {
            tables.push(BackupTable {
                number: u64_at(at)?,
                level: u32_at(at + 8)?,
                size: u64_at(at + 12)?,
                checksum: u64_at(at + 20)?,
            });
        }
        let edit_len = u32_at(entries_end)? as usize;
        let edit_start = entries_end + 4;
        let edit_bytes = edit_start
            .checked_add(edit_len)
            .filter(|&end| end == body.len())
            .and_then(|end| body.get(edit_start..end))
            .ok_or((
                entries_end,
                format!("edit of {edit_len} bytes does not end the file"),
            ))?;
        let edit = VersionEdit::decode(edit_bytes).map_err(|e| match e {
            EditError::NewerVersion(v) => (edit_start, format!("edit of manifest version {v}")),
            EditError::Malformed(reason) => (edit_start, reason.to_string()),
        })?;
        // The two lists describe the same tables: a mismatch is a writer's bug or
        // damage the checksum missed, and a restore must not guess.
        let from_edit: BTreeMap<u64, (usize, u64)> = edit
            .new_files
            .iter()
            .map(|(level, m)| (m.number, (*level, m.size_bytes)))
            .collect();
        let listed: BTreeMap<u64, (usize, u64)> = tables
            .iter()
            .map(|t| (t.number, (t.level as usize, t.size)))
            .collect();
        if from_edit != listed || listed.len() != tables.len() {
            return Err((edit_start, "the table list and the edit disagree".into()));
        }
        if edit.last_sequence != Some(sequence) {
            return Err((
                edit_start,
                "the edit's last sequence is not the backup's".into(),
            ));
        }
        Ok(Manifest {
            info: BackupInfo {
                id,
                sequence,
                created: UNIX_EPOCH + Duration::from_millis(created_ms),
                tables,
            },
            edit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_compaction::FileMeta;
    use strata_core::{InternalKey, ValueKind};

    fn meta(number: u64, size: u64) -> FileMeta {
        FileMeta {
            number,
            size_bytes: size,
            smallest: InternalKey::new(b"a", 1, ValueKind::Put),
            largest: InternalKey::new(b"z", 2, ValueKind::Put),
            smallest_seq: 1,
            largest_seq: 2,
            entries: 2,
            tombstones: 0,
            range_tombstones: 0,
        }
    }

    fn sample() -> Manifest {
        let files = vec![(0, meta(7, 100)), (3, meta(12, 4096))];
        Manifest {
            info: BackupInfo {
                id: 3,
                sequence: 42,
                created: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
                tables: files
                    .iter()
                    .map(|(level, m)| BackupTable {
                        number: m.number,
                        level: *level as u32,
                        size: m.size_bytes,
                        checksum: m.number * 0x9e37_79b9,
                    })
                    .collect(),
            },
            edit: VersionEdit {
                next_file_number: Some(13),
                last_sequence: Some(42),
                new_files: files,
                ..VersionEdit::default()
            },
        }
    }

    #[test]
    fn a_manifest_round_trips() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn every_bit_flip_and_every_cut_is_refused_never_a_panic() {
        let bytes = sample().encode();
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                assert!(
                    Manifest::decode(&damaged).is_err(),
                    "flip at {at} bit {bit}"
                );
            }
        }
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Manifest::decode(&longer).is_err());
    }

    #[test]
    fn a_newer_format_is_named_as_such() {
        let mut bytes = sample().encode();
        bytes[8] = 2;
        let n = bytes.len() - 8;
        let sum = xxhash_rust::xxh3::xxh3_64(&bytes[..n]);
        bytes[n..].copy_from_slice(&sum.to_le_bytes());
        let (offset, reason) = Manifest::decode(&bytes).unwrap_err();
        assert_eq!(offset, 8);
        assert!(reason.contains("format version 2"), "{reason}");
    }

    #[test]
    fn a_table_list_that_disagrees_with_the_edit_is_refused_even_with_a_valid_checksum() {
        let mut m = sample();
        m.info.tables[1].size += 1;
        let (_, reason) = Manifest::decode(&m.encode()).unwrap_err();
        assert!(reason.contains("disagree"), "{reason}");
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = 0x1234_5678_u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect();
            let _ = Manifest::decode(&bytes);
        }
    }
}
