//! The engine part of `cargo xtask demo`: a small load through the public API, checked.

use std::path::Path;
use std::time::Instant;

use strata::Db;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(b"strata!!");
    k
}

fn value(i: u64, round: u64) -> Vec<u8> {
    let mut v = format!("value-{i}-{round}-").into_bytes();
    v.resize(100, b'.');
    v
}

/// A permutation of `0..n` (a full-period LCG step over the next power of two, skipping
/// values out of range), so random-order loads need no extra crate.
fn shuffled(n: u64) -> impl Iterator<Item = u64> {
    let m = n.next_power_of_two().max(2);
    let mut x = 0u64;
    (0..m).filter_map(move |_| {
        // Multiplier = 1 (mod 4) and odd increment: full period modulo a power of two.
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            & (m - 1);
        (x < n).then_some(x)
    })
}

fn rate(n: u64, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    format!("{:>9.0} ops/s ({:.2} s)", n as f64 / secs, secs)
}

/// Loads `n` keys sequentially, overwrites them in random order, reads them back at
/// random, scans them forwards and backwards, reopens and checks again.
pub fn run(dir: &Path, n: u64) -> Result<()> {
    println!("Strata demo (engine, in {})", dir.display());
    println!(
        "{n} keys of 16 bytes, values of 100 bytes, default options, written to the OS (no fsync per write)\n"
    );
    let db = Db::open(dir)?;

    let t = Instant::now();
    for i in 0..n {
        db.put(key(i), value(i, 0))?;
    }
    println!("  fillseq     {}", rate(n, t));

    let t = Instant::now();
    let mut count = 0;
    for i in shuffled(n) {
        db.put(key(i), value(i, 1))?;
        count += 1;
    }
    if count != n {
        return Err(format!("permutation produced {count} keys, not {n}").into());
    }
    println!("  overwrite   {}", rate(n, t));
    db.flush()?;

    let t = Instant::now();
    for i in shuffled(n) {
        match db.get(key(i))? {
            Some(v) if v == value(i, 1) => {}
            other => return Err(format!("key {i}: read {other:?}").into()),
        }
    }
    println!("  readrandom  {}", rate(n, t));

    let t = Instant::now();
    let mut seen = 0;
    for kv in db.iter() {
        let (k, _) = kv?;
        if k[..] != key(seen)[..] {
            return Err(format!("scan: expected key {seen} next").into());
        }
        seen += 1;
    }
    if seen != n {
        return Err(format!("scan saw {seen} keys, not {n}").into());
    }
    println!("  readseq     {}", rate(n, t));
    let t = Instant::now();
    let back = db.iter().rev().count() as u64;
    if back != n {
        return Err(format!("reverse scan saw {back} keys, not {n}").into());
    }
    println!("  readreverse {}", rate(n, t));

    let stats = db.stats();
    db.close()?;
    let t = Instant::now();
    let db = Db::open(dir)?;
    let reopen = t.elapsed();
    let mut i = 0;
    for kv in db.iter() {
        let (k, v) = kv?;
        if k[..] != key(i)[..] || v != value(i, 1) {
            return Err(format!("key {i} wrong after reopen").into());
        }
        i += 1;
    }
    if i != n {
        return Err(format!("{i} keys after reopen, not {n}").into());
    }
    println!(
        "  reopen      {:.1} ms; a full scan then found all {n} keys with their last values",
        reopen.as_secs_f64() * 1e3
    );

    println!("\n  tree after the load:");
    for (level, l) in stats.levels.iter().enumerate().filter(|(_, l)| l.files > 0) {
        println!(
            "    L{level}: {:>3} files {:>8.1} MiB {:>9} entries {:>7} tombstones",
            l.files,
            l.bytes as f64 / (1 << 20) as f64,
            l.entries,
            l.tombstones
        );
    }
    println!(
        "  flushes {}, compactions {}, trivial moves {}, write amplification {:.2}, stall {:?}",
        stats.flushes,
        stats.compactions,
        stats.trivial_moves,
        stats.write_amplification(),
        stats.stall_time
    );
    db.close()?;
    Ok(())
}
