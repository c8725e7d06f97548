//! The events, spans and metrics operators see, through a capturing `tracing` layer and
//! an in-memory `metrics` recorder installed for the whole test binary; and the
//! statistics behind them (stalls, Bloom filters, block cache, several compaction
//! threads).
//!
//! Tests run in parallel in one process while the subscriber and recorder are global,
//! so each test opens its database at its own path and reads only what carries that
//! path (the `db` field or label).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use strata_core::MemFs;
use strata_faultfs::{CrashOptions, Fault, FaultFs, OpKind};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::slow_fs::SlowSyncFs;
use crate::{Db, DbBuilder, Error};

/// One event as a subscriber saw it: its own fields and those of every span around it.
#[derive(Clone, Debug)]
struct Event {
    level: tracing::Level,
    message: String,
    fields: HashMap<String, String>,
    spans: Vec<&'static str>,
    at: Instant,
}

/// A span that closed, with when it was opened and closed.
#[derive(Clone, Debug)]
struct Span {
    name: &'static str,
    fields: HashMap<String, String>,
    start: Instant,
    end: Instant,
}

#[derive(Default)]
struct Captured {
    events: Vec<Event>,
    spans: Vec<Span>,
}

/// Fields as strings (a `%display` field already is one; strings lose Debug's quotes).
struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// What a span carries while open.
struct Open {
    fields: HashMap<String, String>,
    start: Instant,
}

/// A `tracing` layer that keeps everything.
struct Collector(Arc<Mutex<Captured>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Collector {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Open {
                fields,
                start: Instant::now(),
            });
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(open) = span.extensions().get::<Open>() {
                    fields.extend(open.fields.clone());
                }
                spans.push(span.name());
            }
        }
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        self.0.lock().unwrap().events.push(Event {
            level: *event.metadata().level(),
            message,
            fields,
            spans,
            at: Instant::now(),
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(open) = span.extensions().get::<Open>()
        {
            self.0.lock().unwrap().spans.push(Span {
                name: span.name(),
                fields: open.fields.clone(),
                start: open.start,
                end: Instant::now(),
            });
        }
    }
}

/// A `metrics` recorder whose values can be read without resetting them (unlike
/// `metrics_util::debugging`, whose snapshots drain the counters other tests share).
struct TestRecorder {
    registry: Arc<Registry<Key, AtomicStorage>>,
    described: Arc<Mutex<HashSet<String>>>,
}

impl TestRecorder {
    fn describe(&self, name: KeyName) {
        self.described
            .lock()
            .unwrap()
            .insert(name.as_str().to_owned());
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, name: KeyName, _: Option<Unit>, _: SharedString) {
        self.describe(name);
    }
    fn describe_gauge(&self, name: KeyName, _: Option<Unit>, _: SharedString) {
        self.describe(name);
    }
    fn describe_histogram(&self, name: KeyName, _: Option<Unit>, _: SharedString) {
        self.describe(name);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registry
            .get_or_create_counter(key, |c| Counter::from_arc(Arc::clone(c)))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.registry
            .get_or_create_gauge(key, |g| Gauge::from_arc(Arc::clone(g)))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.registry
            .get_or_create_histogram(key, |h| Histogram::from_arc(Arc::clone(h)))
    }
}

/// The process-wide subscriber and recorder, installed on first use.
struct Observed {
    captured: Arc<Mutex<Captured>>,
    registry: Arc<Registry<Key, AtomicStorage>>,
    described: Arc<Mutex<HashSet<String>>>,
}

fn observed() -> &'static Observed {
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        let captured = Arc::new(Mutex::new(Captured::default()));
        let registry = Arc::new(Registry::atomic());
        let described = Arc::new(Mutex::new(HashSet::new()));
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(Collector(Arc::clone(&captured))),
        )
        .expect("no other subscriber in this binary");
        metrics::set_global_recorder(TestRecorder {
            registry: Arc::clone(&registry),
            described: Arc::clone(&described),
        })
        .expect("no other recorder in this binary");
        Observed {
            captured,
            registry,
            described,
        }
    })
}

/// Whether `key` is metric `name` of database `db` with every label in `labels`.
fn matches(key: &Key, name: &str, db: &str, labels: &[(&str, &str)]) -> bool {
    let has = |k: &str, v: &str| key.labels().any(|l| l.key() == k && l.value() == v);
    key.name() == name && has("db", db) && labels.iter().all(|(k, v)| has(k, v))
}

/// The sum of counter `name` over the series of `db` with `labels`.
fn counter(db: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    observed()
        .registry
        .get_counter_handles()
        .into_iter()
        .filter(|(k, _)| matches(k, name, db, labels))
        .map(|(_, c)| c.load(std::sync::atomic::Ordering::Relaxed))
        .sum()
}

/// Gauge `name` of `db` with `labels`.
fn gauge(db: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    observed()
        .registry
        .get_gauge_handles()
        .into_iter()
        .find(|(k, _)| matches(k, name, db, labels))
        .map(|(_, g)| f64::from_bits(g.load(std::sync::atomic::Ordering::Relaxed)))
}

/// Every value histogram `name` of `db` recorded.
fn histogram(db: &str, name: &str) -> Vec<f64> {
    observed()
        .registry
        .get_histogram_handles()
        .into_iter()
        .filter(|(k, _)| matches(k, name, db, &[]))
        .flat_map(|(_, h)| h.data())
        .collect()
}

/// The events of database `db`, oldest first.
fn events(db: &str) -> Vec<Event> {
    let captured = observed().captured.lock().unwrap();
    captured
        .events
        .iter()
        .filter(|e| e.fields.get("db").map(String::as_str) == Some(db))
        .cloned()
        .collect()
}

/// The closed spans called `name` of database `db`.
fn spans(db: &str, name: &str) -> Vec<Span> {
    let captured = observed().captured.lock().unwrap();
    captured
        .spans
        .iter()
        .filter(|s| s.name == name && s.fields.get("db").map(String::as_str) == Some(db))
        .cloned()
        .collect()
}

/// The events of `db` with `message`.
fn with_message(db: &str, message: &str) -> Vec<Event> {
    events(db)
        .into_iter()
        .filter(|e| e.message == message)
        .collect()
}

/// A numeric field of an event.
fn number(e: &Event, field: &str) -> f64 {
    e.fields
        .get(field)
        .unwrap_or_else(|| panic!("no field {field} in {e:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("field {field} of {e:?} is not a number"))
}

/// Options so small that a few hundred writes make several levels. A MemTable's arena
/// starts with a 64 KiB chunk, so 100 KiB holds a few hundred writes (a smaller budget
/// freezes one per write).
fn tiny(path: &str) -> DbBuilder {
    Db::builder(Path::new(path))
        .memtable_bytes(100 << 10)
        .table_file_bytes(8 << 10)
        .block_bytes(256)
        .level_base_bytes(16 << 10)
        .level_fanout(4)
        .l0_compaction_trigger(2)
        .block_cache_bytes(64 << 10)
}

/// Polls `done` for up to `limit`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn value(i: u32, round: u32) -> String {
    format!("value-{i:05}-{round}-{}", "x".repeat(40))
}

#[test]
fn a_failing_background_compaction_is_reported_within_a_second_without_another_write() {
    const DB: &str = "/observe/failing-compaction";
    observed();
    let fs = FaultFs::new();
    let db = tiny(DB).file_system(Arc::new(fs.clone())).open().unwrap();
    for i in 0..50 {
        db.put(format!("k{i:03}"), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    // Compactions read their inputs; flushes and writes read no table. Every table read
    // from now on fails, and the moment of the first failure is kept.
    let failed_at = Arc::new(OnceLock::new());
    fs.inject(Fault::when({
        let failed_at = Arc::clone(&failed_at);
        move |op| {
            let fails = op.kind == OpKind::Read && op.path.to_string_lossy().ends_with(".sst");
            if fails {
                failed_at.get_or_init(Instant::now);
            }
            fails
        }
    }));
    for i in 0..50 {
        db.put(format!("k{i:03}"), value(i, 1)).unwrap();
    }
    // The second L0 table reaches the compaction trigger; this is the last write. The
    // flush succeeds, but the compaction may fail before it returns.
    match db.flush() {
        Ok(()) => {}
        Err(Error::Poisoned { context, .. }) => {
            assert!(context.starts_with("compacting"), "{context}")
        }
        Err(e) => panic!("the flush failed: {e}"),
    }

    let reported = |e: &Event| {
        e.level == tracing::Level::ERROR
            && e.fields.get("context").map(String::as_str) == Some("compacting")
    };
    let seen = eventually(Duration::from_secs(5), || {
        failed_at.get().is_some()
            && events(DB).iter().any(reported)
            && counter(DB, super::ERRORS, &[("context", "compacting")]) == 1
    });
    let seen_at = Instant::now();
    assert!(
        seen,
        "no error event and error count for the failed compaction: failed {:?}, {:?}, {:#?}",
        failed_at.get(),
        db.stats(),
        events(DB)
    );
    let failed_at = *failed_at.get().unwrap();
    let event = events(DB).into_iter().find(reported).unwrap();
    assert!(
        event.at.duration_since(failed_at) < Duration::from_secs(1)
            && seen_at.duration_since(failed_at) < Duration::from_secs(1),
        "reported {:?} after the failure, counted by {:?}",
        event.at.duration_since(failed_at),
        seen_at.duration_since(failed_at)
    );
    assert!(event.fields["error"].contains("injected"), "{event:?}");
    // It is the failure writes now report.
    assert!(matches!(db.put("after", "v"), Err(Error::Poisoned { .. })));
}

#[test]
fn flushes_and_compactions_report_their_start_end_bytes_and_duration() {
    const DB: &str = "/observe/flush-and-compaction";
    observed();
    let db = tiny(DB).file_system(Arc::new(MemFs::new())).open().unwrap();
    for round in 0..4 {
        for i in 0..300 {
            db.put(format!("k{i:04}"), value(i, round)).unwrap();
        }
        db.flush().unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let stats = db.stats();
    assert!(stats.flushes >= 4 && stats.compactions >= 1, "{stats:?}");
    db.clone().close().unwrap();
    // Closed: nothing runs any more, so events, metrics and statistics agree.
    let stats = db.stats();

    let started = with_message(DB, "flush started");
    let finished = with_message(DB, "flush finished");
    assert_eq!(finished.len() as u64, stats.flushes);
    assert_eq!(started.len(), finished.len());
    for e in started.iter().chain(&finished) {
        assert_eq!(e.spans, ["strata.flush"]);
        assert!(number(e, "memtable_bytes") > 0.0 && e.fields.contains_key("wal"));
    }
    for e in &finished {
        assert_eq!(e.level, tracing::Level::INFO);
        assert!(
            number(e, "bytes") > 0.0 && number(e, "entries") > 0.0,
            "{e:?}"
        );
        assert!(e.fields.contains_key("table"));
        assert!(number(e, "duration_ms") >= 0.0);
    }
    let flushed: f64 = finished.iter().map(|e| number(e, "bytes")).sum();
    assert_eq!(flushed as u64, stats.flush_bytes_written);

    let started = with_message(DB, "compaction started");
    let finished = with_message(DB, "compaction finished");
    assert_eq!(finished.len() as u64, stats.compactions);
    assert_eq!(started.len(), finished.len());
    for e in &finished {
        assert_eq!(e.spans, ["strata.compaction"]);
        for field in ["level", "output_level", "reason", "input_files"] {
            assert!(e.fields.contains_key(field), "no {field} in {e:?}");
        }
        assert!(number(e, "read_bytes") > 0.0 && number(e, "duration_ms") >= 0.0);
    }
    let written: f64 = finished.iter().map(|e| number(e, "written_bytes")).sum();
    assert_eq!(written as u64, stats.compaction_bytes_written);
    assert_eq!(
        spans(DB, "strata.compaction").len() as u64,
        stats.compactions + stats.trivial_moves
    );

    // The same numbers through the recorder.
    assert_eq!(counter(DB, "strata_flushes_total", &[]), stats.flushes);
    assert_eq!(
        counter(DB, "strata_flush_written_bytes_total", &[]),
        stats.flush_bytes_written
    );
    assert_eq!(
        counter(DB, "strata_compactions_total", &[]),
        stats.compactions
    );
    assert_eq!(
        counter(DB, "strata_compaction_read_bytes_total", &[]),
        stats.compaction_bytes_read
    );
    assert_eq!(
        counter(DB, "strata_compaction_written_bytes_total", &[]),
        stats.compaction_bytes_written
    );
    assert_eq!(
        counter(DB, "strata_user_written_bytes_total", &[]),
        stats.user_bytes_written
    );
    assert_eq!(
        histogram(DB, super::FLUSH_DURATION).len() as u64,
        stats.flushes
    );
    assert_eq!(
        histogram(DB, super::COMPACTION_DURATION).len() as u64,
        stats.compactions
    );
    for (level, shape) in stats.levels.iter().enumerate() {
        let level = level.to_string();
        let labels = [("level", level.as_str())];
        assert_eq!(
            gauge(DB, super::LEVEL_BYTES, &labels),
            Some(shape.bytes as f64)
        );
        assert_eq!(
            gauge(DB, super::LEVEL_FILES, &labels),
            Some(shape.files as f64)
        );
    }
    assert_eq!(gauge(DB, super::COMPACTIONS_RUNNING, &[]), Some(0.0));
    // Everything is compacted: nothing is behind.
    assert_eq!(gauge(DB, super::BACKLOG, &[]), Some(0.0));
    // Writes were timed (one in LATENCY_SAMPLE, on this thread).
    let writes = histogram(DB, super::WRITE_DURATION);
    assert_eq!(writes.len() as u32, 1200 / super::LATENCY_SAMPLE);
    assert!(writes.iter().all(|&s| s > 0.0 && s < 10.0));
    // Every metric the database registered is described.
    let described = observed().described.lock().unwrap().clone();
    for (key, _) in observed().registry.get_counter_handles() {
        if matches(&key, key.name(), DB, &[]) {
            assert!(described.contains(key.name()), "{} undescribed", key.name());
        }
    }
}

#[test]
fn open_reports_each_recovery_step() {
    const DB: &str = "/observe/recovery";
    observed();
    let fs = FaultFs::new();
    let db = tiny(DB).file_system(Arc::new(fs.clone())).open().unwrap();
    db.put("a", "1").unwrap();
    // The process dies with "a" only in the WAL.
    let crashed = fs.crash(&CrashOptions::process());
    drop(db);
    let before = events(DB).len();
    let db = tiny(DB).file_system(Arc::new(crashed)).open().unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    let messages: Vec<String> = events(DB)[before..]
        .iter()
        .filter(|e| e.spans == ["strata.open"])
        .map(|e| e.message.clone())
        .collect();
    for step in [
        "recovered the manifest",
        "replayed a WAL",
        "wrote the replayed writes to an L0 table",
        "switched to a new WAL and manifest",
        "database open",
    ] {
        assert!(
            messages.iter().any(|m| m == step),
            "no {step:?} in {messages:?}"
        );
    }
    let table = with_message(DB, "wrote the replayed writes to an L0 table");
    assert_eq!(number(&table[0], "entries"), 1.0);
}

#[test]
fn stalls_are_counted_timed_and_labelled_with_their_cause() {
    const DB: &str = "/observe/stalls";
    observed();
    // Slow table syncs make flushes and compactions slower than the writer: L0 fills
    // to the slowdown trigger (2) and the frozen MemTables to their limit. A MemTable
    // under 64 KiB is frozen after every write, and 50 keys overwritten over and over
    // make compactions rewrite data (no trivial moves).
    let fs = SlowSyncFs::slow_tables(Duration::from_millis(5));
    let db = tiny(DB)
        .memtable_bytes(4 << 10)
        .l0_compaction_trigger(1)
        .max_frozen_memtables(1)
        .file_system(Arc::new(fs))
        .open()
        .unwrap();
    let mut i = 0;
    let l0_slowdowns = || counter(DB, super::STALLS, &[("cause", "l0_slowdown")]);
    while i < 3000 && (l0_slowdowns() == 0 || i < 100) {
        db.put(format!("k{:05}", i % 50), value(i, 0)).unwrap();
        i += 1;
    }
    let stats = db.stats();
    assert!(stats.slowdowns > 0, "{stats:?}");
    assert!(stats.stall_time >= Duration::from_millis(stats.slowdowns));
    assert!(l0_slowdowns() > 0);
    assert_eq!(
        l0_slowdowns() + counter(DB, super::STALLS, &[("cause", "memtable_slowdown")]),
        stats.slowdowns
    );
    let memtable_stalls = counter(DB, super::STALLS, &[("cause", "memtables")]);
    assert!(memtable_stalls > 0, "no write waited for a flush");
    // Every microsecond of stall time is in the metric, under one cause or another.
    assert_eq!(
        counter(DB, super::STALL_MICROS, &[]),
        stats.stall_time.as_micros() as u64
    );
    let stalled = with_message(DB, "write stalled");
    assert!(
        stalled.iter().all(|e| e.level == tracing::Level::WARN
            && ["l0_stop", "memtables"].contains(&e.fields["cause"].as_str())
            && number(e, "waited_ms") > 0.0)
            && !stalled.is_empty(),
        "{stalled:?}"
    );
    let slowed = with_message(DB, "write slowed down");
    assert!(
        slowed
            .iter()
            .all(|e| ["l0_slowdown", "memtable_slowdown"].contains(&e.fields["cause"].as_str())),
        "{slowed:?}"
    );
}

/// A writer that outruns a slow flush is slowed down, 1 ms per write, once the one
/// frozen MemTable allowed waits for its flush and the active one is half full; the
/// flush (200 ms) then finishes long before the other half could fill at that pace, so
/// no write ever stops for it.
#[test]
fn a_writer_outrunning_the_flush_is_slowed_down_before_it_would_stop() {
    const DB: &str = "/observe/memtable-slowdown";
    observed();
    let fs = SlowSyncFs::slow_tables(Duration::from_millis(200));
    let db = tiny(DB)
        .memtable_bytes(256 << 10)
        .max_frozen_memtables(1)
        .l0_compaction_trigger(100)
        .file_system(Arc::new(fs))
        .open()
        .unwrap();
    // Three MemTables' worth: two freezes, each followed by a flush the writer outruns.
    let mut i = 0;
    while db.stats().flushes < 2 {
        db.put(format!("k{i:06}"), value(i, 0)).unwrap();
        i += 1;
        assert!(i < 1_000_000, "no flush finished");
    }
    let slowed = counter(DB, super::STALLS, &[("cause", "memtable_slowdown")]);
    assert!(slowed > 0, "no write was slowed down");
    assert_eq!(slowed, db.stats().slowdowns);
    assert_eq!(counter(DB, super::STALLS, &[("cause", "l0_slowdown")]), 0);
    assert_eq!(
        counter(DB, super::STALLS, &[("cause", "memtables")]),
        0,
        "a write stopped for the flush"
    );
    assert!(with_message(DB, "write stalled").is_empty());
    let events = with_message(DB, "write slowed down");
    assert!(
        !events.is_empty()
            && events
                .iter()
                .all(|e| e.fields["cause"] == "memtable_slowdown")
    );
    // Every write is there.
    for j in (0..i).step_by(97) {
        assert_eq!(
            db.get(format!("k{j:06}")).unwrap().as_deref(),
            Some(value(j, 0).as_bytes())
        );
    }
}

/// A database with one table holding the even keys `k0000`, `k0002`, ... `k0398`.
fn even_keys(path: &str, builder: impl FnOnce(DbBuilder) -> DbBuilder) -> Db {
    let db = builder(Db::builder(Path::new(path)).file_system(Arc::new(MemFs::new())))
        .open()
        .unwrap();
    for i in (0..400).step_by(2) {
        db.put(format!("k{i:04}"), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    assert_eq!(db.stats().levels[0].files, 1);
    db
}

#[test]
fn bloom_filters_count_checks_useful_answers_and_false_positives() {
    const DB: &str = "/observe/bloom";
    observed();
    let db = even_keys(DB, |b| b);
    let before = db.stats();
    // The odd keys `k0001` ... `k0397` lie inside the table's range, so only its filter
    // can rule them out.
    for i in (1..398).step_by(2) {
        assert_eq!(db.get(format!("k{i:04}")).unwrap(), None);
    }
    let after = db.stats();
    let checks = after.bloom_checks - before.bloom_checks;
    let useful = after.bloom_useful - before.bloom_useful;
    let false_positives = after.bloom_false_positives - before.bloom_false_positives;
    assert_eq!(checks, 199);
    assert_eq!(useful + false_positives, 199);
    // 16 bits per key in L0 (10 + 6): about 0.1 % false positives.
    assert!(useful >= 190, "{useful} of 199 useful");
    // A present key consults the filter too, and is no false positive.
    assert!(db.get("k0010").unwrap().is_some());
    let present = db.stats();
    assert_eq!(present.bloom_checks, after.bloom_checks + 1);
    assert_eq!(present.bloom_false_positives, after.bloom_false_positives);

    // The mirrored counters catch up within the flush thread's one-second tick.
    assert!(eventually(Duration::from_secs(3), || {
        counter(DB, "strata_bloom_checks_total", &[]) == present.bloom_checks
            && counter(DB, "strata_bloom_useful_total", &[]) == present.bloom_useful
    }));

    // One bit per key (on every level, L0 included) answers "may be here" for most
    // absent keys.
    const SPARSE: &str = "/observe/bloom-1-bit";
    let db = even_keys(SPARSE, |b| b.bloom_bits_per_key_per_level(&[1]));
    for i in (1..398).step_by(2) {
        assert_eq!(db.get(format!("k{i:04}")).unwrap(), None);
    }
    let s = db.stats();
    assert_eq!(s.bloom_checks, 199);
    assert!(s.bloom_false_positives > 20, "{s:?}");
    assert_eq!(s.bloom_useful + s.bloom_false_positives, 199);
    // Every false positive cost a block read.
    assert_eq!(
        s.block_cache_hits + s.block_cache_misses,
        s.bloom_false_positives
    );
}

#[test]
fn the_block_cache_counts_a_miss_then_hits() {
    const DB: &str = "/observe/cache";
    observed();
    let db = even_keys(DB, |b| b.block_cache_bytes(1 << 20));
    let s = db.stats();
    assert_eq!((s.block_cache_hits, s.block_cache_misses), (0, 0));
    assert!(db.get("k0100").unwrap().is_some());
    let s = db.stats();
    assert_eq!((s.block_cache_hits, s.block_cache_misses), (0, 1));
    assert!(db.get("k0100").unwrap().is_some());
    assert!(db.get("k0100").unwrap().is_some());
    let s = db.stats();
    assert_eq!((s.block_cache_hits, s.block_cache_misses), (2, 1));
    assert!(eventually(Duration::from_secs(3), || {
        counter(DB, "strata_block_cache_hits_total", &[]) == 2
            && counter(DB, "strata_block_cache_misses_total", &[]) == 1
    }));

    // Without a cache every read is a miss.
    let db = even_keys("/observe/no-cache", |b| b.block_cache_bytes(0));
    for _ in 0..3 {
        assert!(db.get("k0100").unwrap().is_some());
    }
    let s = db.stats();
    assert_eq!((s.block_cache_hits, s.block_cache_misses), (0, 3));
}

#[test]
fn two_compaction_threads_compact_concurrently_and_lose_nothing() {
    const DB: &str = "/observe/two-threads";
    observed();
    // Slow table syncs make each compaction last long enough for another to start.
    let fs = SlowSyncFs::slow_tables(Duration::from_millis(5));
    let db = tiny(DB)
        .compaction_threads(2)
        .file_system(Arc::new(fs))
        .open()
        .unwrap();
    let mut model = BTreeMap::new();
    let overlapped = || {
        let spans = spans(DB, "strata.compaction");
        spans.iter().enumerate().any(|(i, a)| {
            spans[i + 1..]
                .iter()
                .any(|b| a.start < b.end && b.start < a.end)
        })
    };
    let mut round = 0;
    while round < 4 || (!overlapped() && round < 20) {
        for i in 0..400u32 {
            let key = format!("k{:05}", (i * 7919 + round * 13) % 2000);
            if i % 10 == 9 {
                db.delete(&key).unwrap();
                model.remove(&key);
            } else {
                let v = value(i, round);
                db.put(&key, &v).unwrap();
                model.insert(key, v);
            }
        }
        db.flush().unwrap();
        round += 1;
    }
    db.flush().unwrap();
    let stats = db.stats();
    assert!(stats.compactions > 0, "{stats:?}");
    assert!(
        overlapped(),
        "no two compactions ran at once in {round} rounds"
    );
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_bytes()), "{k}");
    }
    let all: Vec<(String, String)> = db
        .iter()
        .map(|kv| {
            let (k, v) = kv.unwrap();
            (
                String::from_utf8(k.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(all, model.into_iter().collect::<Vec<_>>());
}
