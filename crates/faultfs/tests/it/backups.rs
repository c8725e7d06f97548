//! Checkpoints and backups under crashes: each scenario runs once on a recording file
//! system; then the machine is crashed after every change the checkpoint, backup or
//! purge made (strict power loss, two random power losses, process crash), and:
//! - the source database reopens with exactly its state (every write was synced, so
//!   nothing may be missing, and the checkpoint or backup must not have damaged it);
//! - a checkpoint directory is either not a database (no `CURRENT`) or opens with
//!   exactly the checkpointed state — and once `checkpoint` returned, it is one;
//! - every backup listed verifies and restores to exactly the state it was taken at;
//!   earlier backups are always listed; the new one is listed once `create` returned,
//!   and never partially.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata::Db;
use strata::backup::Backup;
use strata_core::FileSystem;
use strata_faultfs::{CrashOptions, FaultFs, OpKind};

use crate::{open, tiny};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every keyspace's keys; those of a keyspace other than the default one as
/// `~name/key`.
fn read_all(db: &Db) -> Result<State, String> {
    let mut state = State::new();
    for name in db.list_keyspaces() {
        let (prefix, iter) = if name == "default" {
            (Vec::new(), db.iter())
        } else {
            let ks = db
                .keyspace(&name)
                .map_err(|e| format!("keyspace {name}: {e}"))?;
            (format!("~{name}/").into_bytes(), ks.iter())
        };
        for kv in iter {
            let (k, v) = kv.map_err(|e| format!("scan failed: {e}"))?;
            state.insert([&prefix[..], &k[..]].concat(), v.to_vec());
        }
    }
    Ok(state)
}

fn open_at(fs: &FaultFs, dir: &str) -> strata::Result<Db> {
    tiny(Db::builder(Path::new(dir)), true)
        .file_system(Arc::new(fs.clone()))
        .open()
}

/// 150 keys `a000`.. that no round touches: compacted to the bottom before the first
/// backup, their tables stay, so the second backup can share them.
fn write_static(db: &Db, model: &mut State) {
    for i in 0..150 {
        let (k, v) = (format!("a{i:03}"), format!("static-{i}-{}", "s".repeat(30)));
        db.put(&k, &v).unwrap();
        model.insert(k.into_bytes(), v.into_bytes());
    }
}

/// Synced puts and deletes over 30 keys, round `r`; updates `model`. With `side`, each
/// batch also writes keyspace `side` (every third key, so its MemTable fills at
/// another pace).
fn write_round(db: &Db, model: &mut State, r: usize) {
    write_round_in(db, None, model, r);
}

fn write_round_in(db: &Db, side: Option<&strata::Keyspace>, model: &mut State, r: usize) {
    for i in 0..30 {
        let k = format!("k{:02}", (i * 7 + r) % 30).into_bytes();
        let opts = strata::WriteOptions { sync: true };
        let mut batch = strata::WriteBatch::new();
        let side = side.filter(|_| i % 3 == 0);
        let side_key = |ks: &strata::Keyspace| [format!("~{}/", ks.name()).as_bytes(), &k].concat();
        if (i + r).is_multiple_of(5) {
            batch.delete(&k);
            model.remove(&k);
            if let Some(ks) = side {
                batch.delete_in(ks, &k);
                model.remove(&side_key(ks));
            }
        } else {
            let v = format!("r{r}-i{i}-{}", "x".repeat(40 * (i % 4))).into_bytes();
            batch.put(&k, &v);
            if let Some(ks) = side {
                batch.put_in(ks, &k, &v);
                model.insert(side_key(ks), v.clone());
            }
            model.insert(k, v);
        }
        db.write(batch, opts).unwrap();
    }
}

fn modes(k: usize) -> [CrashOptions; 4] {
    [
        CrashOptions::power_loss(),
        CrashOptions::random(k as u64),
        CrashOptions::random(!(k as u64) ^ 0x5eed),
        CrashOptions::process(),
    ]
}

/// The source at `/db` on the crashed machine holds exactly `want`.
fn check_source(after: &FaultFs, want: &State) -> Result<(), String> {
    let db = open(after, true).map_err(|e| format!("the source does not reopen: {e}"))?;
    let got = read_all(&db)?;
    db.close().map_err(|e| format!("closing the source: {e}"))?;
    if got != *want {
        return Err(format!(
            "the source lost or gained data: {} keys, want {}",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

fn context(fs: &FaultFs, k: usize, opts: &CrashOptions) -> String {
    let ops = fs.ops();
    let from = k.saturating_sub(4);
    let near: Vec<String> = ops
        .iter()
        .enumerate()
        .skip(from)
        .take(k - from + 2)
        .map(|(i, o)| format!("{}{i}: {o}", if i + 1 == k { "*" } else { " " }))
        .collect();
    format!(
        "crash after change {k} of {} ({opts:?}):\n{}",
        ops.len(),
        near.join("\n")
    )
}

#[test]
fn a_crash_at_every_step_of_a_checkpoint_damages_nothing_and_leaves_all_or_nothing() {
    checkpoint_sweep(false);
}

#[test]
fn a_crash_at_every_step_of_a_checkpoint_across_keyspaces_leaves_all_or_nothing() {
    checkpoint_sweep(true);
}

/// The checkpoint sweep, with a second keyspace written in the same batches if
/// `with_side`.
fn checkpoint_sweep(with_side: bool) {
    let fs = FaultFs::new();
    let db = open(&fs, true).unwrap();
    let side = with_side.then(|| db.keyspace("side").unwrap());
    let side = side.as_ref();
    let mut model = State::new();
    write_round_in(&db, side, &mut model, 0);
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    write_round_in(&db, side, &mut model, 1);
    db.flush().unwrap();
    // Left in the MemTables: the checkpoint must flush them first.
    write_round_in(&db, side, &mut model, 2);
    assert_eq!(
        model.keys().any(|k| k.starts_with(b"~side/")),
        with_side,
        "the second keyspace holds keys exactly when the sweep has one"
    );

    let start = fs.op_count();
    let info = db.checkpoint("/cp").unwrap();
    let end = fs.op_count();
    db.close().unwrap();
    assert_eq!(info.linked, info.tables, "FaultFs has hard links");
    let ops = fs.ops();
    assert!(
        ops[start..end].iter().any(|o| o.kind == OpKind::Link),
        "the sweep covers links"
    );

    let mut failures = Vec::new();
    for k in start..=end {
        for opts in modes(k) {
            let after = fs.crash_at(k, &opts);
            let check = (|| {
                check_source(&after, &model)?;
                let complete = after.exists(Path::new("/cp/CURRENT")).unwrap();
                if k == end && !complete {
                    return Err("checkpoint returned but its CURRENT is not durable".into());
                }
                if complete {
                    let cp = open_at(&after, "/cp")
                        .map_err(|e| format!("checkpoint does not open: {e}"))?;
                    let got = read_all(&cp)?;
                    if got != model {
                        return Err(format!(
                            "checkpoint holds {} keys, want {}",
                            got.len(),
                            model.len()
                        ));
                    }
                } else if tiny(Db::builder("/cp"), true)
                    .file_system(Arc::new(after.clone()))
                    .create_if_missing(false)
                    .open()
                    .is_ok()
                {
                    return Err("an incomplete checkpoint opened".into());
                }
                Ok::<(), String>(())
            })();
            if let Err(e) = check {
                failures.push(format!("{e}\n{}", context(&fs, k, &opts)));
            }
        }
        assert!(failures.len() < 3, "{}", failures.join("\n\n"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "checkpoint sweep (second keyspace: {with_side}): {} crash points × 4 modes",
        end - start + 1
    );
}

/// Every backup listed on `after` verifies and restores to its state in `states`
/// (by id); `must` are listed.
fn check_backups(
    after: &FaultFs,
    states: &BTreeMap<u64, State>,
    must: &[u64],
) -> Result<(), String> {
    let bk = Backup::open_on(Arc::new(after.clone()), "/bk")
        .map_err(|e| format!("the backup directory does not open: {e}"))?;
    let listed = bk.list().map_err(|e| format!("list failed: {e}"))?;
    let ids: Vec<u64> = listed.iter().map(|b| b.id).collect();
    for id in must {
        if !ids.contains(id) {
            return Err(format!("backup {id} is not listed: {ids:?}"));
        }
    }
    for id in ids {
        let want = states
            .get(&id)
            .ok_or_else(|| format!("backup {id} listed but never completed"))?;
        bk.verify(id)
            .map_err(|e| format!("backup {id} does not verify: {e}"))?;
        let target = format!("/restored-{id}");
        bk.restore(id, &target)
            .map_err(|e| format!("backup {id} does not restore: {e}"))?;
        let db =
            open_at(after, &target).map_err(|e| format!("restored {id} does not open: {e}"))?;
        let got = read_all(&db)?;
        if got != *want {
            return Err(format!(
                "restored backup {id} holds {} keys, want {}",
                got.len(),
                want.len()
            ));
        }
    }
    Ok(())
}

#[test]
fn a_crash_at_every_step_of_a_backup_or_purge_keeps_earlier_backups_and_lists_no_partial_one() {
    let fs = FaultFs::new();
    let db = open(&fs, true).unwrap();
    let bk = Backup::open_on(Arc::new(fs.clone()), "/bk").unwrap();
    let mut model = State::new();
    write_static(&db, &mut model);
    write_round(&db, &mut model, 0);
    db.compact_range::<&[u8], _>(..).unwrap();
    write_round(&db, &mut model, 1);
    let first = bk.create(&db).unwrap();
    let mut states = BTreeMap::from([(first.info.id, model.clone())]);
    write_round(&db, &mut model, 2);
    db.flush().unwrap();
    write_round(&db, &mut model, 3);

    let start = fs.op_count();
    let second = bk.create(&db).unwrap();
    let created = fs.op_count();
    states.insert(second.info.id, model.clone());
    assert!(second.copied_tables > 0, "{second:?}");
    assert!(
        second.copied_tables < second.info.tables.len(),
        "incremental: some tables come from the first backup: {second:?}"
    );
    let purged = bk.purge_old(1).unwrap();
    assert_eq!(purged.backups, [first.info.id]);
    let end = fs.op_count();
    drop(bk);
    db.close().unwrap();

    let mut failures = Vec::new();
    for k in start..=end {
        let must: Vec<u64> = if k < created {
            vec![first.info.id]
        } else {
            vec![second.info.id]
        };
        for opts in modes(k) {
            let after = fs.crash_at(k, &opts);
            let check =
                check_source(&after, &model).and_then(|()| check_backups(&after, &states, &must));
            if let Err(e) = check {
                failures.push(format!("{e}\n{}", context(&fs, k, &opts)));
            }
        }
        assert!(failures.len() < 3, "{}", failures.join("\n\n"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("backup sweep: {} crash points × 4 modes", end - start + 1);
}
