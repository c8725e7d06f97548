//! Output: db_bench-style lines while running, then a table, JSON, and an SVG bar chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::setup::Setup;
use crate::tails::Tails;
use crate::workload::Outcome;

/// One workload on one engine.
#[derive(Serialize, Clone, Debug)]
pub struct Row {
    /// db_bench workload name.
    pub workload: String,
    /// Engine name.
    pub engine: String,
    /// Operations timed.
    pub ops: u64,
    /// Reads that found their key, or entries a scan visited.
    pub found: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Throughput.
    pub ops_per_sec: f64,
    /// 1e6 / ops_per_sec.
    pub micros_per_op: f64,
    /// Latency percentiles in microseconds.
    pub p50_us: f64,
    /// 75th percentile (µs).
    pub p75_us: f64,
    /// 99th percentile (µs).
    pub p99_us: f64,
    /// 99.9th percentile (µs).
    pub p999_us: f64,
    /// 99.99th percentile (µs).
    pub p9999_us: f64,
    /// User bytes moved per second (keys + values written, or found by reads), in MB/s.
    pub mb_per_sec: f64,
    /// Device bytes written (`/proc/self/io`) ÷ user bytes, for write workloads.
    pub write_amp: Option<f64>,
    /// Allocated directory size after settling ÷ live user bytes, for fills and overwrite.
    pub space_amp: Option<f64>,
    /// Peak resident memory of the process during the workload, MiB.
    pub peak_rss_mib: f64,
    /// Resident memory at the end of the workload, anonymous (the engine's own: heap,
    /// stacks) and file-backed (mapped files' pages, page cache), MiB.
    pub rss_anon_mib: f64,
    /// See `rss_anon_mib`.
    pub rss_file_mib: f64,
    /// CPU time of the whole process (workload and engine threads) during the timed
    /// phase, per operation, µs.
    pub cpu_us_per_op: f64,
    /// The same until the engine settled (flushes and compactions the workload caused),
    /// for write workloads.
    pub cpu_us_per_op_settled: Option<f64>,
    /// Wall time from the workload's start until the engine settled (its flushes and
    /// compactions done, the last quiet window not counted), for write workloads.
    pub seconds_to_settled: Option<f64>,
    /// The database had deleterange's keys removed (range-deleted, or never written by a
    /// baseline twin) when this workload ran.
    pub range_deleted: bool,
    /// On a read row of engine `e` after deleterange: its µs/op ÷ `e-baseline`'s on the
    /// same workload (the same survivors without range tombstones;
    /// `--range_delete_baseline`).
    pub vs_baseline: Option<f64>,
    /// The same ratio of CPU µs/op (steadier than wall time on a busy machine).
    pub vs_baseline_cpu: Option<f64>,
    /// incrtxn: commits refused for a conflict and retried (every increment is retried
    /// until it commits).
    pub conflicts: Option<u64>,
    /// incrmerge / incrtxn: µs per get of the untimed read-back of every counter after
    /// settling (merged counters are folded by these reads).
    pub read_back_us_per_get: Option<f64>,
    /// Found counts, background writer, and the like.
    pub note: String,
    /// Strata's ops/s ÷ the best peer's (on Strata's row, when peers ran).
    pub strata_vs_best_peer: Option<f64>,
    /// Strata's ops/s ÷ each peer's (on Strata's row).
    pub strata_vs: BTreeMap<String, f64>,
    /// Operations that wrote, timed (the workload's, and readwhilewriting's writer's);
    /// `None` when nothing wrote. The stall counts below are among these.
    pub writes_timed: Option<u64>,
    /// Writes that took more than 1 ms (measured by the harness around each call).
    pub writes_over_1ms: Option<u64>,
    /// Writes that took more than 10 ms.
    pub writes_over_10ms: Option<u64>,
    /// Stall time: the summed latency of the writes that took more than 1 ms, ms.
    pub write_stall_ms: Option<f64>,
    /// Latency per window (`--timeline`), written as CSV and SVG rather than JSON.
    #[serde(skip)]
    pub timeline: Tails,
}

impl Row {
    /// Builds a row from a timed phase.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        workload: &str,
        engine: &str,
        o: &Outcome,
        bytes: u64,
        note: String,
        write_amp: Option<f64>,
        space_amp: Option<f64>,
        peak_rss: u64,
    ) -> Row {
        let secs = o.elapsed.as_secs_f64().max(1e-9);
        let ops_per_sec = o.ops as f64 / secs;
        let q = |p: f64| o.hist.value_at_quantile(p) as f64 / 1e3;
        let stalls = o.tails.write_stalls();
        Row {
            workload: workload.into(),
            engine: engine.into(),
            ops: o.ops,
            found: o.found,
            seconds: secs,
            ops_per_sec,
            micros_per_op: 1e6 / ops_per_sec.max(1e-9),
            p50_us: q(0.50),
            p75_us: q(0.75),
            p99_us: q(0.99),
            p999_us: q(0.999),
            p9999_us: q(0.9999),
            mb_per_sec: bytes as f64 / 1e6 / secs,
            write_amp,
            space_amp,
            peak_rss_mib: peak_rss as f64 / (1 << 20) as f64,
            rss_anon_mib: 0.0,
            rss_file_mib: 0.0,
            cpu_us_per_op: 0.0,
            cpu_us_per_op_settled: None,
            seconds_to_settled: None,
            range_deleted: false,
            vs_baseline: None,
            vs_baseline_cpu: None,
            conflicts: None,
            read_back_us_per_get: None,
            note,
            strata_vs_best_peer: None,
            strata_vs: BTreeMap::new(),
            writes_timed: stalls.map(|s| s.writes),
            writes_over_1ms: stalls.map(|s| s.over_1ms),
            writes_over_10ms: stalls.map(|s| s.over_10ms),
            write_stall_ms: stalls.map(|s| s.stall_ns as f64 / 1e6),
            timeline: o.tails.clone(),
        }
    }
}

impl Row {
    /// Records the process's CPU time over the timed phase (and until settled).
    /// Records the resident memory at the end of the workload (bytes, anonymous and
    /// file-backed).
    pub fn set_rss(&mut self, (anon, file): (u64, u64)) {
        self.rss_anon_mib = anon as f64 / (1 << 20) as f64;
        self.rss_file_mib = file as f64 / (1 << 20) as f64;
    }

    pub fn set_cpu(&mut self, timed: std::time::Duration, settled: Option<std::time::Duration>) {
        let ops = self.ops.max(1) as f64;
        self.cpu_us_per_op = timed.as_secs_f64() * 1e6 / ops;
        self.cpu_us_per_op_settled = settled.map(|d| d.as_secs_f64() * 1e6 / ops);
    }
}

/// Whether `engine` is a `--range_delete_baseline` twin.
fn is_baseline(engine: &str) -> bool {
    engine.ends_with("-baseline")
}

/// The db_bench-style line for a workload an engine did not run.
pub fn skipped(workload: &str, engine: &str, why: &str, json: bool) {
    let s = format!("{workload:<12} : skipped [{engine}] {why}");
    if json {
        eprintln!("{s}");
    } else {
        println!("{s}");
    }
}

/// Prints `row` as db_bench does (to stderr when stdout carries JSON).
pub fn line(r: &Row, json: bool) {
    let mut s = format!(
        "{:<12} : {:>11.3} micros/op {:>8} ops/sec {:>8.3} seconds {:>9} operations; {:>6.1} MB/s [{}]",
        r.workload,
        r.micros_per_op,
        r.ops_per_sec.round() as u64,
        r.seconds,
        r.ops,
        r.mb_per_sec,
        r.engine
    );
    if !r.note.is_empty() {
        s.push(' ');
        s.push_str(&r.note);
    }
    let _ = write!(
        s,
        "\nPercentiles: P50: {:.2} P75: {:.2} P99: {:.2} P99.9: {:.2} P99.99: {:.2}",
        r.p50_us, r.p75_us, r.p99_us, r.p999_us, r.p9999_us
    );
    let _ = write!(
        s,
        "\nCPU: {:.3} micros/op (process, all threads)",
        r.cpu_us_per_op
    );
    if let Some(c) = r.cpu_us_per_op_settled {
        let _ = write!(s, "; {c:.3} micros/op until settled");
    }
    if let Some(t) = r.seconds_to_settled {
        let _ = write!(
            s,
            "\nSettled after {t:.1} s (wall; timed phase {:.1} s)",
            r.seconds
        );
    }
    if let Some(w) = r.write_amp {
        let _ = write!(s, "\nWriteAmp: {w:.2}");
        if let Some(sp) = r.space_amp {
            let _ = write!(s, " SpaceAmp: {sp:.2}");
        }
        let _ = write!(s, " PeakRSS: {:.0} MiB", r.peak_rss_mib);
    }
    if r.rss_anon_mib > 0.0 {
        let _ = write!(
            s,
            "\nRSS at the end: {:.0} MiB anonymous, {:.0} MiB file-backed (mapped pages)",
            r.rss_anon_mib, r.rss_file_mib
        );
    }
    if let Some(line) = stall_line(r) {
        let _ = write!(s, "\n{line}");
    }
    if json {
        eprintln!("{s}");
    } else {
        println!("{s}");
    }
}

/// The stall counts of a row that wrote, as the db_bench line's last line.
fn stall_line(r: &Row) -> Option<String> {
    let (writes, over1, over10, ms) = (
        r.writes_timed?,
        r.writes_over_1ms?,
        r.writes_over_10ms?,
        r.write_stall_ms?,
    );
    Some(format!(
        "Stalls: {over1} of {writes} writes over 1 ms, {over10} over 10 ms; \
         {ms:.1} ms in writes over 1 ms"
    ))
}

/// A whole run.
#[derive(Serialize)]
pub struct Report {
    /// The parameters, as flags.
    pub parameters: String,
    /// CPU, cores, memory, kernel.
    pub machine: String,
    /// Engines in the order they ran.
    pub engines: Vec<String>,
    /// One row per workload and engine.
    pub results: Vec<Row>,
    /// Each engine's write buffer, cache, write durability and compression.
    pub setup: Vec<Setup>,
}

impl Report {
    /// Collects the rows and fills in Strata's ratios against the peers.
    pub fn new(parameters: &str, machine: String, engines: Vec<String>, rows: Vec<Row>) -> Self {
        let mut rows = rows;
        // Each row's repetition: how many rows of the same workload and engine came before
        // it (`--benchmarks readrandom,readrandom` runs every engine twice).
        let repetition: Vec<usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                rows.iter()
                    .take(i)
                    .filter(|o| o.workload == r.workload && o.engine == r.engine)
                    .count()
            })
            .collect();
        let by_workload: Vec<(String, String, usize, f64)> = rows
            .iter()
            .zip(&repetition)
            .filter(|(r, _)| !is_baseline(&r.engine))
            .map(|(r, &n)| (r.workload.clone(), r.engine.clone(), n, r.ops_per_sec))
            .collect();
        // Reads only, and only where the twin and the engine hold the same survivors.
        let paired = |r: &Row| {
            r.range_deleted && (r.workload.starts_with("read") || r.workload == "seekrandom")
        };
        let baselines: Vec<(String, String, f64, f64)> = rows
            .iter()
            .filter(|r| is_baseline(&r.engine) && paired(r))
            .map(|r| {
                let (w, e) = (r.workload.clone(), r.engine.clone());
                (w, e, r.micros_per_op, r.cpu_us_per_op)
            })
            .collect();
        for r in rows
            .iter_mut()
            .filter(|r| !is_baseline(&r.engine) && paired(r))
        {
            let twin = format!("{}-baseline", r.engine);
            let base = baselines
                .iter()
                .find(|(w, e, _, _)| *w == r.workload && *e == twin);
            r.vs_baseline = base.filter(|b| b.2 > 0.0).map(|b| r.micros_per_op / b.2);
            r.vs_baseline_cpu = base.filter(|b| b.3 > 0.0).map(|b| r.cpu_us_per_op / b.3);
        }
        for (r, &n) in rows
            .iter_mut()
            .zip(&repetition)
            .filter(|(r, _)| r.engine == "strata")
        {
            // A workload may run several times; compare with the peers' run of the same
            // repetition (the one that follows this one).
            let peers: Vec<&(String, String, usize, f64)> = by_workload
                .iter()
                .filter(|(w, e, m, _)| *w == r.workload && e != "strata" && *m == n)
                .collect();
            for (_, e, _, ops) in &peers {
                if *ops > 0.0 {
                    r.strata_vs.insert(e.clone(), r.ops_per_sec / ops);
                }
            }
            let best = peers.iter().map(|(_, _, _, o)| *o).fold(0.0, f64::max);
            if best > 0.0 {
                r.strata_vs_best_peer = Some(r.ops_per_sec / best);
            }
        }
        Report {
            parameters: parameters.to_string(),
            machine,
            engines,
            results: rows,
            setup: Vec::new(),
        }
    }

    /// A readable table (Markdown, so it pastes into docs), then Strata ÷ each peer.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| workload | engine | ops/s | µs/op | CPU µs/op | p50 µs | p99 µs | p99.9 µs | MB/s | write amp | space amp | peak RSS MiB | Strata ÷ best peer |"
        );
        let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "".into());
        for r in &self.results {
            let ratio = match r.strata_vs_best_peer {
                Some(x) => {
                    let best = r
                        .strata_vs
                        .iter()
                        .min_by(|a, b| a.1.total_cmp(b.1))
                        .map(|(e, _)| e.as_str())
                        .unwrap_or("");
                    format!("**{x:.2}×** ({best})")
                }
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {:.0} | {} |",
                r.workload,
                r.engine,
                thousands(r.ops_per_sec),
                r.micros_per_op,
                r.cpu_us_per_op,
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.mb_per_sec,
                opt(r.write_amp),
                opt(r.space_amp),
                r.peak_rss_mib,
                ratio
            );
        }
        let with_twin: Vec<&Row> = self
            .results
            .iter()
            .filter(|r| r.vs_baseline.is_some())
            .collect();
        if !with_twin.is_empty() {
            let _ = writeln!(
                s,
                "\nWith range tombstones ÷ without (µs/op of `e` ÷ `e-baseline`, the same \
                 surviving keys; < 1.20 keeps the issue's bound)\n"
            );
            let _ = writeln!(
                s,
                "| workload | engine | µs/op | baseline µs/op | ratio | CPU µs/op | baseline CPU µs/op | CPU ratio |"
            );
            let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|");
            for r in with_twin {
                let ratio = r.vs_baseline.unwrap_or(0.0);
                let cpu_ratio = r.vs_baseline_cpu.unwrap_or(0.0);
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.3} | {:.3} | {:.2} | {:.3} | {:.3} | {:.2} |",
                    r.workload,
                    r.engine,
                    r.micros_per_op,
                    r.micros_per_op / ratio.max(1e-12),
                    ratio,
                    r.cpu_us_per_op,
                    r.cpu_us_per_op / cpu_ratio.max(1e-12),
                    cpu_ratio
                );
            }
        }
        self.counter_ratios(&mut s);
        let peers: Vec<&String> = self
            .engines
            .iter()
            .filter(|e| *e != "strata" && !is_baseline(e))
            .collect();
        if !peers.is_empty() && self.engines.iter().any(|e| e == "strata") {
            let _ = writeln!(
                s,
                "\nStrata's ops/s ÷ each peer's (> 1: Strata is faster)\n"
            );
            let _ = write!(s, "| workload |");
            for p in &peers {
                let _ = write!(s, " {p} |");
            }
            let _ = write!(s, "\n|---|");
            for _ in &peers {
                let _ = write!(s, "--:|");
            }
            s.push('\n');
            for r in self.results.iter().filter(|r| r.engine == "strata") {
                let _ = write!(s, "| {} |", r.workload);
                for p in &peers {
                    match r.strata_vs.get(*p) {
                        Some(x) => {
                            let _ = write!(s, " {x:.2} |");
                        }
                        None => s.push_str(" |"),
                    }
                }
                s.push('\n');
            }
        }
        self.stall_table(&mut s);
        s
    }

    /// For each engine that ran both counter workloads: what an increment costs through
    /// a transaction ÷ through the merge operator (the same increments, the same
    /// verified totals), in wall time, CPU over the timed phase, and CPU until settled.
    fn counter_ratios(&self, s: &mut String) {
        let find = |w: &str, e: &str| {
            self.results
                .iter()
                .find(|r| r.workload == w && r.engine == e)
        };
        let pairs: Vec<(&Row, &Row)> = self
            .engines
            .iter()
            .filter_map(|e| Some((find("incrmerge", e)?, find("incrtxn", e)?)))
            .collect();
        if pairs.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "\nCounter increments: transaction ÷ merge (> 1: the merge is cheaper)\n"
        );
        let _ = writeln!(
            s,
            "| engine | merge µs/op | txn µs/op | wall ratio | merge CPU µs/op | txn CPU µs/op | CPU ratio | CPU ratio until settled | txn conflicts | read-back µs/get (merge / txn) |"
        );
        let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for (m, t) in pairs {
            let settled = match (m.cpu_us_per_op_settled, t.cpu_us_per_op_settled) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {:.2} | {:.3} | {:.3} | {:.2} | {} | {} | {:.2} / {:.2} |",
                m.engine,
                m.micros_per_op,
                t.micros_per_op,
                t.micros_per_op / m.micros_per_op.max(1e-12),
                m.cpu_us_per_op,
                t.cpu_us_per_op,
                t.cpu_us_per_op / m.cpu_us_per_op.max(1e-12),
                settled,
                t.conflicts.unwrap_or(0),
                m.read_back_us_per_get.unwrap_or(0.0),
                t.read_back_us_per_get.unwrap_or(0.0)
            );
        }
    }

    /// The writes over 1 ms and 10 ms per workload and engine, for the rows that wrote.
    fn stall_table(&self, s: &mut String) {
        let rows: Vec<&Row> = self
            .results
            .iter()
            .filter(|r| r.writes_timed.is_some())
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "\nWrite stalls (writes timed by the harness; readwhilewriting: its writer's)\n"
        );
        let _ = writeln!(
            s,
            "| workload | engine | writes | > 1 ms | > 10 ms | ms in writes > 1 ms |"
        );
        let _ = writeln!(s, "|---|---|--:|--:|--:|--:|");
        for r in rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.1} |",
                r.workload,
                r.engine,
                r.writes_timed.unwrap_or(0),
                r.writes_over_1ms.unwrap_or(0),
                r.writes_over_10ms.unwrap_or(0),
                r.write_stall_ms.unwrap_or(0.0)
            );
        }
    }

    /// A grouped bar chart, as SVG: per workload, each engine's ops/s divided by
    /// RocksDB's (or the first engine's, without RocksDB) on a linear axis, with every
    /// engine's configuration and durability written under it.
    pub fn svg(&self) -> String {
        let colors = [
            "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
        ];
        // Every engine against one reference, on a linear axis: RocksDB when it ran (the
        // engine users compare with), else the first engine.
        let reference = self
            .engines
            .iter()
            .find(|e| e.as_str() == "rocksdb")
            .or(self.engines.first())
            .cloned()
            .unwrap_or_default();
        let find = |w: &str, e: &str| {
            self.results
                .iter()
                .find(|r| r.workload == w && r.engine == e && r.ops_per_sec > 0.0)
        };
        let mut workloads: Vec<&str> = Vec::new();
        for r in &self.results {
            if r.workload != "reopen"
                && find(&r.workload, &reference).is_some()
                && !workloads.contains(&r.workload.as_str())
            {
                workloads.push(&r.workload);
            }
        }
        let ratio = |w: &str, e: &str| -> Option<f64> {
            Some(find(w, e)?.ops_per_sec / find(w, &reference)?.ops_per_sec)
        };
        let engines = &self.engines;
        let top_ratio = workloads
            .iter()
            .flat_map(|w| engines.iter().filter_map(move |e| ratio(w, e)))
            .fold(1.0f64, f64::max);
        // Gridlines every 0.5 up to the next whole number above the largest ratio.
        let y_max = (top_ratio * 1.05).ceil().max(1.0);
        let bar = 16.0;
        let group = bar * engines.len() as f64 + 24.0;
        let (left, top, plot_h) = (60.0, 58.0, 360.0);
        let width = (left + group * workloads.len() as f64 + 20.0).max(760.0);
        // What each engine was given, wrapped to the image's width (about 6 px a character
        // at 11 px) so no engine's setup runs off its edge.
        let wrap_at = ((width - left - 10.0) / 6.0) as usize;
        let setup_text: Vec<String> = self
            .setup
            .iter()
            .flat_map(|e| {
                wrap_at_commas(
                    &format!(
                        "{}: write buffer {}, cache {}, a write returns after {}, compression {}",
                        e.engine, e.write_buffer, e.cache, e.write_returns_after, e.compression
                    ),
                    wrap_at,
                )
            })
            .collect();
        let setup_lines = setup_text.len().max(1) as f64;
        let height = top + plot_h + 110.0 + 16.0 * setup_lines;
        let y = |v: f64| top + plot_h * (1.0 - v / y_max);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            s,
            r##"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="22" font-size="15">ops/s of each engine ÷ {}'s, per workload (linear; higher is faster; {} = 1)</text>"##,
            xml(&reference),
            xml(&reference)
        );
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="38" font-size="11" fill="#555">{}</text><text x="{left}" y="52" font-size="11" fill="#555">{}</text>"##,
            xml(&self.parameters),
            xml(&self.machine)
        );
        let mut g = 0.0;
        while g <= y_max + 1e-9 {
            let yy = y(g);
            let stroke = if (g - 1.0).abs() < 1e-9 {
                "#333"
            } else {
                "#ddd"
            };
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{:.0}" y1="{yy:.1}" y2="{yy:.1}" stroke="{stroke}"/><text x="{:.0}" y="{:.1}" text-anchor="end">{g:.1}×</text>"##,
                width - 20.0,
                left - 6.0,
                yy + 4.0,
            );
            g += if y_max > 6.0 { 1.0 } else { 0.5 };
        }
        for (gi, w) in workloads.iter().enumerate() {
            let gx = left + group * gi as f64 + 12.0;
            for (ei, eng) in engines.iter().enumerate() {
                let (Some(q), Some(r)) = (ratio(w, eng), find(w, eng)) else {
                    continue;
                };
                let x = gx + bar * ei as f64;
                let yy = y(q);
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {} ops/s, {q:.2}× {}</title></rect>"#,
                    bar - 2.0,
                    (top + plot_h - yy).max(0.0),
                    colors.get(ei % colors.len()).unwrap_or(&"#000"),
                    xml(eng),
                    w,
                    thousands(r.ops_per_sec),
                    xml(&reference)
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="start" transform="rotate(-90 {:.1} {:.1})">{q:.2}</text>"#,
                    x + bar / 2.0 + 3.0,
                    yy - 3.0,
                    x + bar / 2.0 + 3.0,
                    yy - 3.0
                );
            }
            let cx = gx + bar * engines.len() as f64 / 2.0;
            let _ = writeln!(
                s,
                r#"<text x="{cx:.1}" y="{:.1}" text-anchor="end" transform="rotate(-35 {cx:.1} {:.1})">{w}</text>"#,
                top + plot_h + 16.0,
                top + plot_h + 16.0
            );
        }
        let legend_y = top + plot_h + 84.0;
        for (ei, eng) in engines.iter().enumerate() {
            let x = left + 110.0 * ei as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.0}" y="{:.0}" width="12" height="12" fill="{}"/><text x="{:.0}" y="{legend_y:.0}">{}</text>"#,
                legend_y - 10.0,
                colors.get(ei % colors.len()).unwrap_or(&"#000"),
                x + 16.0,
                xml(eng)
            );
        }
        // What each engine was given, on the image itself.
        for (i, line) in setup_text.iter().enumerate() {
            let _ = writeln!(
                s,
                r##"<text x="{left}" y="{:.0}" font-size="11" fill="#333">{}</text>"##,
                legend_y + 22.0 + 16.0 * i as f64,
                xml(line),
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// `text` cut into lines of at most `width` characters after its commas (a part longer
/// than `width` gets a line of its own); lines after the first are indented.
fn wrap_at_commas(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for part in text.split_inclusive(", ") {
        let Some(line) = lines.last_mut() else {
            break;
        };
        if !line.trim().is_empty() && line.chars().count() + part.trim_end().chars().count() > width
        {
            lines.push(format!("    {part}"));
        } else {
            line.push_str(part);
        }
    }
    lines.iter().map(|l| l.trim_end().to_string()).collect()
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// 1234567.8 → "1,234,568".
fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn setup_lines_wrap_after_a_comma() {
        let text =
            "strata: write buffer 64 MiB, cache 32 MiB, a write returns after X, compression none";
        assert_eq!(super::wrap_at_commas(text, 200), vec![text.to_string()]);
        let lines = super::wrap_at_commas(text, 45);
        assert_eq!(
            lines,
            vec![
                "strata: write buffer 64 MiB, cache 32 MiB,",
                "    a write returns after X, compression none",
            ]
        );
        // Nothing is lost, and a part longer than the width stands alone.
        let lines = super::wrap_at_commas(text, 10);
        assert_eq!(lines.len(), 4);
        let rejoined: Vec<&str> = lines.iter().map(|l| l.trim_start()).collect();
        assert_eq!(rejoined.join(" "), text);
    }

    use super::*;

    /// A row of `ops` operations in one second.
    fn row(workload: &str, engine: &str, ops: u64) -> Row {
        let o = crate::workload::Outcome {
            ops,
            found: ops,
            elapsed: std::time::Duration::from_secs(1),
            hist: crate::workload::histogram().unwrap(),
            background_ops: 0,
            writes: None,
            tails: Default::default(),
        };
        Row::new(workload, engine, &o, 0, String::new(), None, None, 0)
    }

    #[test]
    fn a_repeated_workload_is_compared_with_the_peers_same_repetition() {
        let engines = ["strata", "rocksdb", "redb"];
        let report = Report::new(
            "--num=1",
            "test machine".into(),
            engines.iter().map(|e| e.to_string()).collect(),
            vec![
                row("readrandom", "strata", 600),
                row("readrandom", "rocksdb", 200),
                row("readrandom", "redb", 400),
                row("readrandom", "strata", 500),
                row("readrandom", "rocksdb", 250),
                row("readrandom", "redb", 200),
            ],
        );
        let strata: Vec<&Row> = report
            .results
            .iter()
            .filter(|r| r.engine == "strata")
            .collect();
        assert_eq!(strata[0].strata_vs.get("redb"), Some(&1.5));
        assert_eq!(strata[0].strata_vs.get("rocksdb"), Some(&3.0));
        assert_eq!(strata[0].strata_vs_best_peer, Some(1.5));
        assert_eq!(strata[1].strata_vs.get("redb"), Some(&2.5));
        assert_eq!(strata[1].strata_vs.get("rocksdb"), Some(&2.0));
        assert_eq!(strata[1].strata_vs_best_peer, Some(2.0));
    }

    #[test]
    fn the_chart_shows_each_engine_against_rocksdb_with_its_setup() {
        let engines = ["strata", "rocksdb", "redb"];
        let mut report = Report::new(
            "--num=1",
            "test machine".into(),
            engines.iter().map(|e| e.to_string()).collect(),
            vec![
                row("readrandom", "strata", 300),
                row("readrandom", "rocksdb", 100),
                row("readrandom", "redb", 150),
                // RocksDB did not run this one: no bar can be relative to it.
                row("ycsbe", "strata", 5),
            ],
        );
        let cfg = crate::engine::Config {
            cache_bytes: 32 << 20,
            write_buffer_bytes: 64 << 20,
            compression: "none",
            bloom_filter_budget: None,
            subcompactions: 1,
            mmap_reads: true,
            range_delete_compactions: true,
            purpose: crate::engine::Purpose::Plain,
        };
        report.setup = crate::setup::all(&engines, &cfg);
        let svg = report.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("÷ rocksdb"), "{svg}");
        // Strata 3×, redb 1.5×, RocksDB 1×, on a linear axis up to 4×.
        assert!(
            svg.contains(">3.00</text>") && svg.contains(">1.50</text>"),
            "{svg}"
        );
        assert!(svg.contains(">1.00</text>"), "{svg}");
        assert!(
            svg.contains(">4.0×</text>") && !svg.contains(">4.5×</text>"),
            "{svg}"
        );
        assert!(!svg.contains("ycsbe"), "{svg}");
        for e in engines {
            assert!(svg.contains(&format!("{e}: write buffer")), "{e}: {svg}");
        }
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }
}
