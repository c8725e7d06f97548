//! YCSB's core workloads A–F on the harness's keys and values: the operation mixes,
//! the request distributions and the timed loop.
//!
//! The parameters are those of YCSB's `workloads/workloada` .. `workloadf` and of its
//! `CoreWorkload` (brianfrankcooper/YCSB): the proportions of reads, updates, inserts,
//! scans and read-modify-writes, a scrambled zipfian (constant 0.99) request
//! distribution, "latest" for D, scan lengths uniform in `1..=100` for E. The code is
//! our own; where it follows YCSB's generators closely, the comment names the class.
//!
//! Records are the harness's keys `0..records` ([`fill_key`]); inserts take the keys
//! after them, `records, records + 1, ...` (YCSB's `insertorder=ordered`), from one
//! counter shared by the threads. A read, update or scan only asks for a key whose
//! insert has been acknowledged, as YCSB's `AcknowledgedCounterGenerator` ensures, so
//! every record asked for must be there: a missing one, or a value of the wrong size,
//! fails the run.
//!
//! Every operation's draws come from its own generator, seeded from `--seed` and the
//! operation's number, so every engine and every split of the operations among
//! threads gets the same operations. With more than one thread, which inserts are
//! acknowledged when a D read or an E scan draws its key depends on the interleaving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::engine::{Engine, Res};
use crate::workload::{Outcome, Rng, Values, fill_key, progress, run_ops};

/// YCSB's `ZipfianGenerator.ZIPFIAN_CONSTANT` (θ).
pub const ZIPFIAN_CONSTANT: f64 = 0.99;

/// The item count of the zipfian behind YCSB's `ScrambledZipfianGenerator`
/// (`ITEM_COUNT`): it draws a rank among 10^10 items and hashes it onto the records,
/// so which records are popular does not depend on how many there are.
pub const SCRAMBLED_ITEMS: u64 = 10_000_000_000;

/// ζ(10^10, 0.99), precomputed by YCSB (`ScrambledZipfianGenerator.ZETAN`): summing
/// 10^10 terms would take a minute per run. A test checks it.
pub const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

/// Workload E's `maxscanlength` (with `minscanlength` 1 and
/// `scanlengthdistribution=uniform`).
pub const MAX_SCAN_LENGTH: u64 = 100;

/// A redraw limit for a scrambled key beyond the acknowledged records (see
/// [`Chooser::key`]).
const MAX_REDRAWS: u32 = 1000;

/// One of YCSB's core workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Update heavy: 50 % reads, 50 % updates, zipfian.
    A,
    /// Read mostly: 95 % reads, 5 % updates, zipfian.
    B,
    /// Read only: 100 % reads, zipfian.
    C,
    /// Read latest: 95 % reads, 5 % inserts, "latest".
    D,
    /// Short ranges: 95 % scans, 5 % inserts, zipfian start key.
    E,
    /// Read-modify-write: 50 % reads, 50 % read-modify-writes, zipfian.
    F,
}

/// What one operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A get of a record; its value is checked.
    Read,
    /// A put of a new value over a record.
    Update,
    /// A put of the next new record.
    Insert,
    /// A seek to a record and up to 99 more entries after it, each checked.
    Scan,
    /// A get of a record (checked), then a put of a new value: two calls, not a
    /// transaction, as in YCSB.
    ReadModifyWrite,
}

/// The workloads' names, as `--benchmarks` takes them, in the order of [`ALL`].
pub const NAMES: [&str; 6] = ["ycsba", "ycsbb", "ycsbc", "ycsbd", "ycsbe", "ycsbf"];

/// The workloads, A to F.
const ALL: [Workload; 6] = [
    Workload::A,
    Workload::B,
    Workload::C,
    Workload::D,
    Workload::E,
    Workload::F,
];

impl Workload {
    /// The workload named `ycsba` .. `ycsbf`.
    pub fn from_name(name: &str) -> Option<Workload> {
        let i = NAMES.iter().position(|&n| n == name)?;
        ALL.get(i).copied()
    }

    /// The operation proportions, in `CoreWorkload`'s order (read, update, insert, scan,
    /// read-modify-write), from YCSB's `workloads/workloada` .. `workloadf`.
    pub fn mix(self) -> &'static [(Op, f64)] {
        match self {
            Workload::A => &[(Op::Read, 0.5), (Op::Update, 0.5)],
            Workload::B => &[(Op::Read, 0.95), (Op::Update, 0.05)],
            Workload::C => &[(Op::Read, 1.0)],
            Workload::D => &[(Op::Read, 0.95), (Op::Insert, 0.05)],
            Workload::E => &[(Op::Insert, 0.05), (Op::Scan, 0.95)],
            Workload::F => &[(Op::Read, 0.5), (Op::ReadModifyWrite, 0.5)],
        }
    }

    /// The operation for a uniform draw `u` in `[0, 1)` (YCSB's `DiscreteGenerator`).
    pub fn op(self, u: f64) -> Op {
        let mut left = u;
        let mix = self.mix();
        for &(op, p) in mix {
            if left < p {
                return op;
            }
            left -= p;
        }
        // Rounding can leave u just past the sum of the proportions.
        mix.last().map_or(Op::Read, |&(op, _)| op)
    }

    /// The share of operations of kind `op`.
    pub fn proportion(self, op: Op) -> f64 {
        self.mix()
            .iter()
            .filter(|&&(o, _)| o == op)
            .map(|&(_, p)| p)
            .sum()
    }

    /// Whether the workload writes (C only reads).
    pub fn writes(self) -> bool {
        self != Workload::C
    }

    /// Whether the workload adds records (D and E).
    pub fn inserts(self) -> bool {
        self.mix().iter().any(|&(op, _)| op == Op::Insert)
    }

    fn index(self) -> u64 {
        self as u64
    }
}

/// A uniform draw in `[0, 1)` with 53 random bits (as Java's `nextDouble`).
pub fn uniform(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The generator of operation `j`'s draws (its kind, its key, a scan's length).
fn op_rng(seed: u64, j: u64) -> Rng {
    // Hashing the position first gives each operation an unrelated stream: a splitmix
    // stream started at `seed + j·γ` would repeat operation j + 1's draws one step on.
    let mut pos = Rng::new(seed.wrapping_add(j.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    Rng::new(pos.next_u64())
}

/// A scan's length: uniform in `1..=MAX_SCAN_LENGTH`.
pub fn scan_length(rng: &mut Rng) -> u64 {
    1 + rng.next_u64() % MAX_SCAN_LENGTH
}

/// ζ(n, θ) continued from ζ(from, θ) = `initial`: `initial + Σ_{i=from+1..=n} i^-θ`
/// (YCSB's `zetastatic`).
pub fn zeta(from: u64, n: u64, initial: f64) -> f64 {
    (from..n).fold(initial, |sum, i| {
        sum + 1.0 / ((i + 1) as f64).powf(ZIPFIAN_CONSTANT)
    })
}

/// The zipfian generator of Gray et al., "Quickly generating billion-record synthetic
/// databases" (SIGMOD 1994), as YCSB's `ZipfianGenerator` implements it: rank 0 is the
/// most popular of `items`, rank r drawn with probability close to
/// `(r + 1)^-θ / ζ(items, θ)` (exact for ranks 0 and 1; a continuous approximation
/// beyond, which is what YCSB draws).
#[derive(Clone, Copy, Debug)]
pub struct Zipfian {
    items: u64,
    zetan: f64,
    eta: f64,
    /// ζ(2, θ) = 1 + 0.5^θ: below `u · ζ(n)` = this, the rank is 1.
    zeta2: f64,
}

impl Zipfian {
    /// A generator over `items` ranks whose ζ(items, θ) is already known.
    pub fn with_zeta(items: u64, zetan: f64) -> Zipfian {
        let theta = ZIPFIAN_CONSTANT;
        let zeta2 = 1.0 + 0.5f64.powf(theta);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipfian {
            items,
            zetan,
            eta,
            zeta2,
        }
    }

    /// The rank for a uniform draw `u` in `[0, 1)`.
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < self.zeta2 {
            return 1;
        }
        let alpha = 1.0 / (1.0 - ZIPFIAN_CONSTANT);
        let r = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(alpha)) as u64;
        // u < 1 keeps r below items, unless rounding says otherwise.
        r.min(self.items.saturating_sub(1))
    }
}

/// FNV-1a 64 over the eight bytes of `x`, least significant first, made non-negative as
/// YCSB's `Utils.fnvhash64` does (Java's `Math.abs` of a `long`).
pub fn fnv1a64(x: u64) -> u64 {
    (fnv1a64_bytes(&x.to_le_bytes()) as i64).unsigned_abs()
}

/// FNV-1a 64 of `bytes`: from the offset basis, each byte xored in, then multiplied
/// by the prime.
fn fnv1a64_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// YCSB's `ScrambledZipfianGenerator`: a zipfian rank among [`SCRAMBLED_ITEMS`],
/// hashed (FNV-1a 64) onto `0..items`, so the popular records are spread over the key
/// space instead of being the first keys.
#[derive(Clone, Copy, Debug)]
pub struct ScrambledZipfian {
    ranks: Zipfian,
    items: u64,
}

impl ScrambledZipfian {
    /// Keys in `0..items`.
    pub fn new(items: u64) -> ScrambledZipfian {
        ScrambledZipfian {
            ranks: Zipfian::with_zeta(SCRAMBLED_ITEMS, SCRAMBLED_ZETAN),
            items: items.max(1),
        }
    }

    /// The key for a uniform draw `u`.
    pub fn key(&self, u: f64) -> u64 {
        fnv1a64(self.ranks.rank(u)) % self.items
    }
}

/// YCSB's `SkewedLatestGenerator`: with records `0..count`, key `count - 1 - r` for a
/// zipfian rank `r` over `count` items, so the newest record is the most popular.
/// The count grows with each acknowledged insert, and ζ(count) with it; ζ is computed
/// once for the starting count and extended, one term per record an insert may add,
/// before the timed phase (YCSB extends it incrementally as the count grows).
pub struct Latest {
    first: u64,
    /// `zetas[k]` = ζ(first + k, θ).
    zetas: Vec<f64>,
}

impl Latest {
    /// For `records` records now and up to `inserts` more.
    pub fn new(records: u64, inserts: u64) -> Latest {
        let first = records.max(1);
        let mut zetas = Vec::with_capacity(inserts as usize + 1);
        let mut z = zeta(0, first, 0.0);
        zetas.push(z);
        for n in first..first + inserts {
            z = zeta(n, n + 1, z);
            zetas.push(z);
        }
        Latest { first, zetas }
    }

    /// A key among `0..count` for a uniform draw `u` (`count` at most `records +
    /// inserts` of [`new`](Self::new)).
    pub fn key(&self, u: f64, count: u64) -> u64 {
        let count = count.max(1);
        let zetan = match self.zetas.get(count.saturating_sub(self.first) as usize) {
            Some(&z) => z,
            // Not reached (the table covers every insert); correct, only slower.
            None => zeta(0, count, 0.0),
        };
        let rank = Zipfian::with_zeta(count, zetan).rank(u);
        count - 1 - rank.min(count - 1)
    }
}

/// How an operation picks its record.
enum Chooser {
    /// Scrambled zipfian over the records and the inserts expected (A, B, C, E, F).
    Scrambled(ScrambledZipfian),
    /// Zipfian distance back from the newest record (D).
    Latest(Latest),
}

impl Chooser {
    /// A record among the `count` whose inserts are acknowledged. A scrambled draw
    /// beyond them is drawn again (YCSB's `nextKeynum`): E's generator spans the
    /// records plus twice the inserts expected, so that inserting does not change which
    /// keys are popular.
    fn key(&self, rng: &mut Rng, count: u64) -> u64 {
        match self {
            Chooser::Latest(l) => l.key(uniform(rng), count),
            Chooser::Scrambled(z) => {
                for _ in 0..MAX_REDRAWS {
                    let k = z.key(uniform(rng));
                    if k < count {
                        return k;
                    }
                }
                // Only with far fewer records than inserts expected: fold rather than
                // spin.
                z.key(uniform(rng)) % count.max(1)
            }
        }
    }
}

/// YCSB's `AcknowledgedCounterGenerator`: inserts take keys from a shared counter,
/// and a key is offered to reads only once it and every key before it are written.
pub struct Inserts {
    first: u64,
    next: AtomicU64,
    /// Keys `0..limit` are all written.
    limit: AtomicU64,
    /// `acked[k]`: key `first + k` is written.
    acked: Vec<AtomicBool>,
}

impl Inserts {
    /// Keys `0..first` exist; up to `capacity` inserts follow.
    pub fn new(first: u64, capacity: u64) -> Inserts {
        Inserts {
            first,
            next: AtomicU64::new(first),
            limit: AtomicU64::new(first),
            acked: (0..capacity).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// The key the next insert writes.
    pub fn claim(&self) -> Res<u64> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        if k - self.first >= self.acked.len() as u64 {
            return Err(format!("insert {}: more inserts than planned", k - self.first).into());
        }
        Ok(k)
    }

    /// Key `k` (from [`claim`](Self::claim)) is written: move the limit past it and
    /// past every written key after it.
    pub fn acknowledge(&self, k: u64) {
        if let Some(a) = self.acked.get((k - self.first) as usize) {
            a.store(true, Ordering::SeqCst);
        }
        // Whoever sees the key at the limit written moves the limit on. A thread whose
        // key is past the limit stored its flag before reading the limit, so the thread
        // that moves the limit up to that key then sees the flag (SeqCst), or this
        // thread sees the moved limit: no written key is left behind the limit.
        loop {
            let l = self.limit.load(Ordering::SeqCst);
            let written = self
                .acked
                .get((l - self.first) as usize)
                .is_some_and(|a| a.load(Ordering::SeqCst));
            if !written {
                break;
            }
            let _ = self
                .limit
                .compare_exchange(l, l + 1, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// The records a read may ask for: keys `0..count()`.
    pub fn count(&self) -> u64 {
        self.limit.load(Ordering::SeqCst)
    }

    /// Inserts claimed so far.
    pub fn claimed(&self) -> u64 {
        self.next.load(Ordering::Relaxed) - self.first
    }
}

/// How many operations of each kind a run does (the draws are known in advance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Gets.
    pub reads: u64,
    /// Puts over records.
    pub updates: u64,
    /// Puts of new records.
    pub inserts: u64,
    /// Seeks with up to 99 nexts.
    pub scans: u64,
    /// Get then put.
    pub rmw: u64,
}

impl Counts {
    /// The operations that write.
    pub fn writes(&self) -> u64 {
        self.updates + self.inserts + self.rmw
    }

    /// The operations that read a record that must exist.
    pub fn reads_checked(&self) -> u64 {
        self.reads + self.scans + self.rmw
    }
}

/// The seed of workload `w`'s operations: its own stream, the same for every engine.
fn ops_seed(seed: u64, w: Workload) -> u64 {
    seed ^ (0x7C5B_0000 + w.index())
}

/// The kinds of workload `w`'s `ops` operations, counted.
pub fn plan(w: Workload, seed: u64, ops: u64) -> Counts {
    let seed = ops_seed(seed, w);
    let mut c = Counts::default();
    for j in 0..ops {
        match w.op(uniform(&mut op_rng(seed, j))) {
            Op::Read => c.reads += 1,
            Op::Update => c.updates += 1,
            Op::Insert => c.inserts += 1,
            Op::Scan => c.scans += 1,
            Op::ReadModifyWrite => c.rmw += 1,
        }
    }
    c
}

/// What a YCSB workload is run with.
pub struct Setup<'a> {
    /// Which workload.
    pub workload: Workload,
    /// The database holds keys `0..records`.
    pub records: u64,
    /// Operations (`--reads`).
    pub ops: u64,
    /// `--threads`: each takes a contiguous share of the operations.
    pub threads: usize,
    /// `--key_size`.
    pub key_size: usize,
    /// `--value_size`: every value written has it, every value read must.
    pub value_size: usize,
    /// `--seed`.
    pub seed: u64,
    /// The values written.
    pub values: &'a Values,
    /// The write round (values differ from the ones already stored).
    pub round: u64,
    /// The progress bar's label.
    pub label: &'a str,
}

/// What a YCSB workload did.
pub struct Ran {
    /// The timed phase: every operation in the histogram; `found` counts the reads,
    /// read-modify-writes and scans (each must find its record); `writes` the updates,
    /// inserts and read-modify-writes.
    pub outcome: Outcome,
    /// `( reads:R updates:U inserts:I scans:S rmw:M found:F)`.
    pub note: String,
    /// Records inserted (keys `records..records + inserted`).
    pub inserted: u64,
}

/// A get of record `i`, which must exist with a value of `value_size` bytes.
fn read_record(db: &dyn Engine, key: &[u8], i: u64, value_size: usize) -> Res<()> {
    match db.get(key)? {
        Some(len) if len == value_size => Ok(()),
        Some(len) => Err(format!("record {i}: a value of {len} bytes, not {value_size}").into()),
        None => Err(format!("record {i} was inserted but a read did not find it").into()),
    }
}

/// Runs workload `s.workload` on `db`, timed.
pub fn run(db: &dyn Engine, s: &Setup<'_>) -> Res<Ran> {
    let w = s.workload;
    let seed = ops_seed(s.seed, w);
    // Untimed, but in the CPU figure (as readrandom's permutation is): counting the
    // operations, and for D ζ of the record count.
    let counts = plan(w, s.seed, s.ops);
    let inserts = Inserts::new(s.records, counts.inserts);
    let chooser = if w == Workload::D {
        Chooser::Latest(Latest::new(s.records, counts.inserts))
    } else {
        // CoreWorkload's `expectednewkeys`: twice the inserts the proportion expects.
        let expected = (s.ops as f64 * w.proportion(Op::Insert) * 2.0) as u64;
        Chooser::Scrambled(ScrambledZipfian::new(s.records + expected))
    };
    let (values, round, value_size) = (s.values, s.round, s.value_size);
    let pb = progress(s.ops, s.label);
    let mut outcome = run_ops(
        s.threads,
        s.ops,
        s.key_size,
        &pb,
        |key, j| {
            let mut rng = op_rng(seed, j);
            match w.op(uniform(&mut rng)) {
                Op::Insert => {
                    let i = inserts.claim()?;
                    fill_key(key, i, false);
                    db.put(key, values.get(i, round), false)?;
                    inserts.acknowledge(i);
                    Ok(false)
                }
                Op::Read => {
                    let i = chooser.key(&mut rng, inserts.count());
                    fill_key(key, i, false);
                    read_record(db, key, i, value_size)?;
                    Ok(true)
                }
                Op::Update => {
                    let i = chooser.key(&mut rng, inserts.count());
                    fill_key(key, i, false);
                    db.put(key, values.get(i, round), false)?;
                    Ok(false)
                }
                Op::ReadModifyWrite => {
                    let i = chooser.key(&mut rng, inserts.count());
                    fill_key(key, i, false);
                    read_record(db, key, i, value_size)?;
                    db.put(key, values.get(i, round), false)?;
                    Ok(true)
                }
                Op::Scan => {
                    let i = chooser.key(&mut rng, inserts.count());
                    let len = scan_length(&mut rng);
                    fill_key(key, i, false);
                    // The seek reads the record and up to len - 1 entries after it
                    // (fewer at the end of the key space), each checked.
                    if !db.seek(key, (len - 1) as usize)? {
                        return Err(format!("scan from record {i}: the record is missing").into());
                    }
                    Ok(true)
                }
            }
        },
        None,
    )?;
    let inserted = inserts.claimed();
    if inserted != counts.inserts || outcome.found != counts.reads_checked() {
        return Err(format!(
            "{}: {inserted} inserts and {} reads found, {} and {} planned",
            s.label,
            outcome.found,
            counts.inserts,
            counts.reads_checked()
        )
        .into());
    }
    outcome.writes = Some(counts.writes());
    let mut note = format!(
        "( reads:{} updates:{} inserts:{} scans:{} rmw:{} found:{})",
        counts.reads, counts.updates, counts.inserts, counts.scans, counts.rmw, outcome.found
    );
    if inserted > 0 {
        note.push_str(&format!(
            " (records {} → {})",
            s.records,
            s.records + inserted
        ));
    }
    Ok(Ran {
        outcome,
        note,
        inserted,
    })
}

/// Where the harness notes how many records D and E inserted after `--num` in
/// `engine`'s database, so a later run with `--use_existing_db` knows they are there.
fn marker(base: &Path, engine: &str) -> PathBuf {
    base.join(format!("{engine}.ycsbinserted"))
}

/// The records inserted after `num` by earlier runs on `engine`'s database (0 if none,
/// or if they were noted for another `--num`).
pub fn saved_inserted(base: &Path, engine: &str, num: u64) -> u64 {
    let text = std::fs::read_to_string(marker(base, engine)).unwrap_or_default();
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(n)), Some(Ok(inserted))) if n == num => inserted,
        _ => 0,
    }
}

/// Notes that `engine`'s database holds `inserted` records after keys `0..num`.
pub fn save_inserted(base: &Path, engine: &str, num: u64, inserted: u64) -> Res<()> {
    std::fs::write(marker(base, engine), format!("{num} {inserted}\n"))?;
    Ok(())
}

/// Forgets the inserted records (the database was wiped or reloaded).
pub fn forget_inserted(base: &Path, engine: &str) {
    let _ = std::fs::remove_file(marker(base, engine));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(n: usize, seed: u64) -> impl Iterator<Item = f64> {
        let mut rng = Rng::new(seed);
        (0..n).map(move |_| uniform(&mut rng))
    }

    /// Gray's generator over 10 items: rank 0 is the most frequent, and each of the
    /// top ranks is drawn about as often as zipf(0.99) says — ranks 0 and 1 exactly
    /// (within sampling noise: 10^6 draws, < 0.5 %), ranks 2..6 within the error of
    /// the formula's continuous approximation (≈ 8 % at rank 2 with 10 items).
    #[test]
    fn zipfian_frequencies_follow_zipf_099() {
        let n = 10u64;
        let z = Zipfian::with_zeta(n, zeta(0, n, 0.0));
        let total = 1_000_000;
        let mut seen = vec![0u64; n as usize];
        for u in draws(total, 11) {
            seen[z.rank(u) as usize] += 1;
        }
        let zetan = zeta(0, n, 0.0);
        for (r, &drawn) in seen.iter().enumerate().take(6) {
            let want = 1.0 / ((r + 1) as f64).powf(ZIPFIAN_CONSTANT) / zetan;
            let got = drawn as f64 / total as f64;
            let tolerance = if r < 2 { 0.01 } else { 0.12 };
            assert!(
                (got / want - 1.0).abs() < tolerance,
                "rank {r}: {got:.4} drawn, zipf says {want:.4}"
            );
        }
        assert!(seen.iter().skip(1).all(|&c| c < seen[0]), "{seen:?}");
        assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
        // A generator over a larger set: every rank in range, rank 0 still the mode.
        let z = Zipfian::with_zeta(1000, zeta(0, 1000, 0.0));
        let mut big = vec![0u64; 1000];
        for u in draws(200_000, 12) {
            big[z.rank(u) as usize] += 1;
        }
        let top = big
            .iter()
            .enumerate()
            .max_by_key(|&(_, c)| *c)
            .map(|(r, _)| r);
        assert_eq!(top, Some(0));
    }

    /// ζ(10^10, 0.99), which YCSB hard-codes, agrees with the Euler–Maclaurin sum
    /// (exact terms to 1000, then the integral and two correction terms).
    #[test]
    fn the_scrambled_zeta_constant_is_zeta_of_ten_billion() {
        let (t, m, n) = (ZIPFIAN_CONSTANT, 1000f64, SCRAMBLED_ITEMS as f64);
        let f = |x: f64| x.powf(-t);
        let df = |x: f64| -t * x.powf(-t - 1.0);
        let head = zeta(0, 999, 0.0);
        let tail = (n.powf(1.0 - t) - m.powf(1.0 - t)) / (1.0 - t)
            + (f(m) + f(n)) / 2.0
            + (df(n) - df(m)) / 12.0;
        assert!(
            ((head + tail) - SCRAMBLED_ZETAN).abs() < 1e-8,
            "{}",
            head + tail
        );
        // And the incremental form extends a sum exactly.
        assert!((zeta(500, 1000, zeta(0, 500, 0.0)) - zeta(0, 1000, 0.0)).abs() < 1e-12);
    }

    /// FNV-1a 64 gives the published test vectors, and YCSB's `fnvhash64` is it over
    /// the eight bytes least significant first, made non-negative.
    #[test]
    fn fnv_is_fnv1a_64() {
        assert_eq!(fnv1a64_bytes(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64_bytes(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64_bytes(b"foobar"), 0x8594_4171_f739_67e8);
        let x = 0x0102_0304_0506_0708u64;
        let h = fnv1a64_bytes(&[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(fnv1a64(x), (h as i64).unsigned_abs());
        assert!(fnv1a64(x) <= 1 << 63);
    }

    /// Scrambling spreads the popular records over the whole key range (every key
    /// drawn, the hottest not key 0), is the same for the same draws, and keeps zipf's
    /// skew: the hottest key is the hash of rank 0, drawn about 1/ζ(10^10) of the time.
    #[test]
    fn scrambled_keys_cover_the_range_reproducibly() {
        let n = 1000u64;
        let z = ScrambledZipfian::new(n);
        let keys: Vec<u64> = draws(300_000, 13).map(|u| z.key(u)).collect();
        assert_eq!(
            keys,
            draws(300_000, 13).map(|u| z.key(u)).collect::<Vec<_>>()
        );
        let mut seen = vec![0u64; n as usize];
        for &k in &keys {
            seen[k as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 0), "a key never drawn");
        let hottest = seen
            .iter()
            .enumerate()
            .max_by_key(|&(_, c)| *c)
            .map(|(k, _)| k as u64);
        assert_eq!(hottest, Some(fnv1a64(0) % n));
        assert_ne!(hottest, Some(0));
        let share = seen[(fnv1a64(0) % n) as usize] as f64 / keys.len() as f64;
        // Rank 0's 1/26.47 = 3.8 %, plus the few other ranks that hash to that key.
        assert!((0.037..0.045).contains(&share), "{share}");
        // The first keys are not favoured: the lowest tenth gets about a tenth.
        let low: u64 = seen[..100].iter().sum();
        let low = low as f64 / keys.len() as f64;
        assert!((0.05..0.2).contains(&low), "{low}");
    }

    /// "latest": the newest record is the most popular, the newest ten take most of
    /// the draws, no draw is past the newest, and growing the count moves the hot spot
    /// with it.
    #[test]
    fn latest_favours_the_newest_records() {
        let l = Latest::new(1000, 100);
        let mut at_newest = 0;
        let mut newest_ten = 0;
        let total = 100_000;
        for u in draws(total, 14) {
            let k = l.key(u, 1000);
            assert!(k < 1000);
            at_newest += u64::from(k == 999);
            newest_ten += u64::from(k >= 990);
        }
        let want = 1.0 / zeta(0, 1000, 0.0);
        let got = at_newest as f64 / total as f64;
        assert!((got / want - 1.0).abs() < 0.03, "{got} vs {want}");
        assert!(newest_ten as f64 / total as f64 > 0.35, "{newest_ten}");
        // Fifty inserts later the hot spot is the new newest, ζ extended to 1050.
        let moved = draws(10_000, 15)
            .filter(|&u| l.key(u, 1050) == 1049)
            .count();
        assert!(moved > 1000, "{moved}");
        assert!(draws(10_000, 16).all(|u| l.key(u, 1100) < 1100));
        assert!((l.zetas[100] - zeta(0, 1100, 0.0)).abs() < 1e-9);
    }

    /// Each workload's operations come in YCSB's published proportions (within 0.01
    /// over 100,000 operations: > 6 standard deviations), and the plan is the same
    /// for the same seed.
    #[test]
    fn operation_mixes_match_the_published_proportions() {
        let ops = 100_000u64;
        let expect = [
            (Workload::A, [0.5, 0.5, 0.0, 0.0, 0.0]),
            (Workload::B, [0.95, 0.05, 0.0, 0.0, 0.0]),
            (Workload::C, [1.0, 0.0, 0.0, 0.0, 0.0]),
            (Workload::D, [0.95, 0.0, 0.05, 0.0, 0.0]),
            (Workload::E, [0.0, 0.0, 0.05, 0.95, 0.0]),
            (Workload::F, [0.5, 0.0, 0.0, 0.0, 0.5]),
        ];
        for (w, want) in expect {
            let c = plan(w, 301, ops);
            let got = [c.reads, c.updates, c.inserts, c.scans, c.rmw];
            assert_eq!(got.iter().sum::<u64>(), ops, "{w:?}");
            for (g, p) in got.iter().zip(want) {
                let share = *g as f64 / ops as f64;
                assert!((share - p).abs() < 0.01, "{w:?}: {got:?}");
                // An operation kind the workload does not have never occurs.
                assert_eq!(*g == 0, p == 0.0, "{w:?}: {got:?}");
            }
            assert_eq!(plan(w, 301, ops), c);
            assert_eq!(Workload::from_name(NAMES[w.index() as usize]), Some(w));
        }
        assert_ne!(plan(Workload::A, 301, 1000), plan(Workload::A, 302, 1000));
    }

    /// E's scan lengths are uniform in 1..=100: both ends occur, nothing outside, the
    /// mean about 50.5.
    #[test]
    fn scan_lengths_are_uniform_up_to_100() {
        let mut rng = Rng::new(17);
        let lens: Vec<u64> = (0..100_000).map(|_| scan_length(&mut rng)).collect();
        assert!(lens.iter().all(|l| (1..=MAX_SCAN_LENGTH).contains(l)));
        assert!(lens.contains(&1) && lens.contains(&MAX_SCAN_LENGTH));
        let mean = lens.iter().sum::<u64>() as f64 / lens.len() as f64;
        assert!((mean - 50.5).abs() < 0.5, "{mean}");
    }

    /// Inserts acknowledged out of order: the limit stops at the first key not yet
    /// written and jumps once it is; from threads, every key ends up acknowledged.
    #[test]
    fn inserts_are_offered_only_once_every_earlier_one_is_written() {
        let ins = Inserts::new(10, 3);
        let (a, b, c) = (
            ins.claim().unwrap(),
            ins.claim().unwrap(),
            ins.claim().unwrap(),
        );
        assert_eq!((a, b, c), (10, 11, 12));
        assert!(ins.claim().is_err());
        ins.acknowledge(b);
        ins.acknowledge(c);
        assert_eq!(ins.count(), 10);
        ins.acknowledge(a);
        assert_eq!(ins.count(), 13);

        let ins = Inserts::new(0, 40_000);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        let k = ins.claim().unwrap();
                        assert!(ins.count() <= k);
                        ins.acknowledge(k);
                    }
                });
            }
        });
        assert_eq!(ins.count(), 40_000);
        assert_eq!(ins.claimed(), 40_000);
    }

    /// The note of inserted records is read back only for the same --num.
    #[test]
    fn the_inserted_records_are_remembered_for_the_same_num() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(saved_inserted(dir.path(), "strata", 100), 0);
        save_inserted(dir.path(), "strata", 100, 7).unwrap();
        assert_eq!(saved_inserted(dir.path(), "strata", 100), 7);
        assert_eq!(saved_inserted(dir.path(), "strata", 200), 0);
        assert_eq!(saved_inserted(dir.path(), "fjall", 100), 0);
        forget_inserted(dir.path(), "strata");
        assert_eq!(saved_inserted(dir.path(), "strata", 100), 0);
    }
}
