//! `cargo xtask checkpoint-bench`: what writers see while a large database is
//! checkpointed and backed up, and what a second backup copies. The figures in
//! `docs/backup.md` come from here; CI does not run it.
//!
//! Method: load `--gib` of data (random keys, `--value-bytes` values, unsynced puts);
//! then `--writers` threads put random keys, each timing every put. Three windows of
//! `--seconds` each: nothing else running (baseline), a checkpoint started 1 s in, a
//! backup started 1 s in. Reported: the longest put and the 99.9th percentile in each
//! window (and for the checkpoint, within the call itself); then a second backup
//! after the writers changed a few keys, with its copied bytes against the total.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata::Db;
use strata::backup::Backup;

/// Arguments of `checkpoint-bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Working directory (a temporary one if omitted); must be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Size of the data loaded before measuring, in GiB.
    #[arg(long, default_value_t = 1.0)]
    gib: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1000)]
    value_bytes: usize,
    /// Writer threads during the measurements.
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Puts per second per writer (0: as fast as they go, which measures the stalls of
    /// a saturated tree more than anything a checkpoint does).
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Fraction of the keys the writers overwrite between the first and the second
    /// backup.
    #[arg(long, default_value_t = 0.01)]
    churn: f64,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
}

/// A small fast generator, so key choice costs nothing next to a put.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

struct Window {
    /// (when the put started, relative to the window's start; how long it took)
    puts: Vec<(Duration, Duration)>,
}

impl Window {
    fn summary(&self, from: Duration, to: Duration) -> (usize, Duration, Duration) {
        let mut lat: Vec<Duration> = self
            .puts
            .iter()
            .filter(|(at, d)| *at + *d >= from && *at <= to)
            .map(|(_, d)| *d)
            .collect();
        lat.sort_unstable();
        let max = lat.last().copied().unwrap_or_default();
        let p999 = lat
            .get(lat.len().saturating_mul(999) / 1000)
            .copied()
            .unwrap_or(max);
        (lat.len(), max, p999)
    }
}

/// Runs writers for `seconds`, calling `during` after 1 s (from the main thread);
/// returns every put's timing and when `during` ran.
fn with_writers<T>(
    db: &Db,
    keys: u64,
    args: &Args,
    during: impl FnOnce() -> T,
) -> (Window, Duration, Duration, T) {
    let stop = Arc::new(AtomicBool::new(false));
    let puts = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let value = vec![b'w'; args.value_bytes];
    let rate = args.rate;
    let threads: Vec<_> = (0..args.writers)
        .map(|t| {
            let (db, stop, puts, value) = (db.clone(), stop.clone(), puts.clone(), value.clone());
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1);
                let mut mine = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    if rate > 0 {
                        let due = Duration::from_secs_f64(n as f64 / rate as f64);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let k = next(&mut rng) % keys;
                    let at = start.elapsed();
                    let t0 = Instant::now();
                    db.put(format!("key{k:012}"), &value).expect("put");
                    mine.push((at, t0.elapsed()));
                }
                puts.lock().unwrap_or_else(|p| p.into_inner()).extend(mine);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let from = start.elapsed();
    let result = during();
    let to = start.elapsed();
    let rest = Duration::from_secs_f64(args.seconds).saturating_sub(start.elapsed());
    std::thread::sleep(rest);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let puts = std::mem::take(&mut *puts.lock().unwrap_or_else(|p| p.into_inner()));
    (Window { puts }, from, to, result)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs the benchmark.
pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let db = Db::open(dir.join("db"))?;
    let entry = args.value_bytes as u64 + 15;
    let keys = ((args.gib * (1u64 << 30) as f64) / entry as f64) as u64;
    let load_start = Instant::now();
    let value = vec![b'v'; args.value_bytes];
    // Sequential keys: the load is the setup, not the measurement (random keys would
    // only make it slower).
    for k in 0..keys {
        db.put(format!("key{k:012}"), &value)?;
    }
    db.flush()?;
    db.wait_for_compaction()?;
    let table_bytes: u64 = db.stats().levels.iter().map(|l| l.bytes).sum();
    println!(
        "loaded {keys} keys ({:.2} GiB of tables) in {:.1} s",
        table_bytes as f64 / (1u64 << 30) as f64,
        load_start.elapsed().as_secs_f64()
    );

    let (base, from, to, ()) = with_writers(&db, keys, args, || {});
    let (n, max, p999) = base.summary(from, to + Duration::from_secs(3600));
    println!(
        "baseline ({} writers): {n} puts, longest {}, p99.9 {}",
        args.writers,
        ms(max),
        ms(p999)
    );

    // A plain flush for comparison: what any MemTable switch and flush costs writers.
    let (w, from, to, flushed) = with_writers(&db, keys, args, || db.flush());
    flushed?;
    let (n_in, max_in, p999_in) = w.summary(from, to);
    println!(
        "flush() alone: {} ; puts during the call: {n_in}, longest {}, p99.9 {}",
        ms(to - from),
        ms(max_in),
        ms(p999_in)
    );

    let (w, from, to, info) = with_writers(&db, keys, args, || db.checkpoint(dir.join("cp")));
    let info = info?;
    let (n_in, max_in, p999_in) = w.summary(from, to);
    let (n, max, p999) = w.summary(Duration::ZERO, Duration::from_secs(3600));
    println!(
        "checkpoint: {} tables ({:.2} GiB, {} linked) at sequence {} in {} (flush wait {}, write lock held {}); \
         puts during the call: {n_in}, longest {}, p99.9 {}; whole window: {n} puts, longest {}, p99.9 {}",
        info.tables,
        info.table_bytes as f64 / (1u64 << 30) as f64,
        info.linked,
        info.sequence,
        ms(to - from),
        ms(info.flush_wait),
        ms(info.writer_pause),
        ms(max_in),
        ms(p999_in),
        ms(max),
        ms(p999)
    );

    let backups = Backup::open(dir.join("backups"))?;
    let (w, from, to, first) = with_writers(&db, keys, args, || backups.create(&db));
    let first = first?;
    let (n_in, max_in, p999_in) = w.summary(from, to);
    println!(
        "first backup: {} tables, {:.2} GiB copied in {}; puts during the call: {n_in}, longest {}, p99.9 {}",
        first.info.tables.len(),
        first.copied_bytes as f64 / (1u64 << 30) as f64,
        ms(to - from),
        ms(max_in),
        ms(p999_in)
    );
    // Between the backups: overwrite `churn` of the keys (random ones, all over the key
    // space), let compactions settle, and back up again.
    let changed = (keys as f64 * args.churn) as u64;
    let mut rng = 0x5eed_u64;
    let value = vec![b'c'; args.value_bytes];
    for _ in 0..changed {
        let k = next(&mut rng) % keys;
        db.put(format!("key{k:012}"), &value)?;
    }
    db.flush()?;
    db.wait_for_compaction()?;
    println!(
        "between the backups: {changed} random keys overwritten ({:.1} MiB)",
        (changed * entry) as f64 / (1u64 << 20) as f64
    );
    let t0 = Instant::now();
    let second = backups.create(&db)?;
    println!(
        "second backup: {} tables, {:.1} MiB of {:.1} MiB copied ({:.1}%) in {}",
        second.info.tables.len(),
        second.copied_bytes as f64 / (1u64 << 20) as f64,
        second.info.bytes() as f64 / (1u64 << 20) as f64,
        100.0 * second.copied_bytes as f64 / second.info.bytes().max(1) as f64,
        ms(t0.elapsed())
    );
    db.close()?;
    let t0 = Instant::now();
    backups.restore(second.info.id, dir.join("restored"))?;
    let restored = Db::open(dir.join("restored"))?;
    let original = Db::open(dir.join("db"))?;
    // Nothing was written after the second backup: the restored copy and the source
    // must hold the same entries.
    let same = restored
        .iter()
        .map(|kv| kv.ok())
        .eq(original.iter().map(|kv| kv.ok()));
    println!(
        "restore of the second backup: {} ; same keys as the source: {same}",
        ms(t0.elapsed())
    );
    Ok(())
}
