//! The timeline as CSV and as a hand-written SVG line plot (as `report.rs` draws its bar
//! chart: a few hundred lines of text need no plotting crate).

use std::fmt::Write as _;

use crate::report::{Report, Row};
use crate::tails::{Series, Tails};

/// The CSV's header line.
pub const CSV_HEADER: &str = "engine,workload,series,second,ops,p50_us,p99_us,p999_us,max_us";

/// A workload that ran more than once on an engine is told apart by `#2`, `#3`, ...
fn labelled(rows: &[Row]) -> Vec<(String, &Row)> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    rows.iter()
        .map(|r| {
            seen.push((&r.engine, &r.workload));
            let n = seen
                .iter()
                .filter(|(e, w)| *e == r.engine && *w == r.workload)
                .count();
            let label = if n > 1 {
                format!("{}#{n}", r.workload)
            } else {
                r.workload.clone()
            };
            (label, r)
        })
        .collect()
}

/// `ms` milliseconds as seconds: `3`, `0.25`.
fn seconds(ms: u128) -> String {
    let frac = format!("{:03}", ms % 1000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{frac}", ms / 1000)
    }
}

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn us(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e3)
}

/// Every row's timeline, one line per window: `second` is the window's start from the
/// start of the timed phase; a window in which nothing completed has `ops` 0 and empty
/// latencies.
pub fn csv(report: &Report) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for (label, r) in labelled(&report.results) {
        let t = &r.timeline;
        let step = t.interval.as_millis();
        for series in &t.series {
            for (i, w) in series.windows.iter().enumerate() {
                let lat = match w.latency {
                    Some(l) => format!("{},{},{},{}", us(l.p50), us(l.p99), us(l.p999), us(l.max)),
                    None => ",,,".to_string(),
                };
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{lat}",
                    field(&r.engine),
                    field(&label),
                    series.name,
                    seconds(step * i as u128),
                    w.ops
                );
            }
        }
    }
    s
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// 1 → "1 µs", 1000 → "1 ms".
fn latency_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{} ms", us / 1e3)
    } else {
        format!("{us} µs")
    }
}

/// A tick step for `span` seconds: about 5 to 10 ticks.
fn tick_step(span: f64) -> f64 {
    for s in [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
        3600.0,
    ] {
        if span / s <= 10.0 {
            return s;
        }
    }
    7200.0
}

/// A panel: one workload's series, every engine that ran it.
struct Panel<'r> {
    workload: String,
    series: &'static str,
    lines: Vec<(&'r str, &'r Tails, &'r Series)>,
}

fn panels(report: &Report) -> Vec<Panel<'_>> {
    let mut out: Vec<Panel> = Vec::new();
    for (label, r) in labelled(&report.results) {
        for s in &r.timeline.series {
            let i = match out
                .iter()
                .position(|p| p.workload == label && p.series == s.name)
            {
                Some(i) => i,
                None => {
                    out.push(Panel {
                        workload: label.clone(),
                        series: s.name,
                        lines: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            if let Some(p) = out.get_mut(i) {
                p.lines.push((&r.engine, &r.timeline, s));
            }
        }
    }
    out
}

/// The timeline as a line plot: one panel per workload and series, x = seconds from
/// the start of the timed phase, y = p99 (solid) and max (dashed) latency per window on
/// a log scale, one colour per engine; each engine's configuration is written above.
pub fn svg(report: &Report) -> String {
    let engines = &report.engines;
    let color = |e: &str| {
        let i = engines.iter().position(|x| x == e).unwrap_or(0);
        COLORS.get(i % COLORS.len()).copied().unwrap_or("#000")
    };
    let panels = panels(report);
    let (left, width) = (80.0, 980.0);
    let plot_w = width - left - 30.0;
    // A panel: its title, a line per engine that wrote (its stalls), the plot, the axis.
    let plot_h = 185.0;
    let header = |p: &Panel| {
        24.0 + 13.0
            * p.lines
                .iter()
                .filter(|l| tails_stalls(l.2).is_some())
                .count() as f64
    };
    let panel_h = |p: &Panel| header(p) + plot_h + 45.0;
    let setup_lines = report.setup.len().max(engines.len());
    let top = 70.0 + 30.0 * setup_lines as f64;
    let height = top + panels.iter().map(panel_h).sum::<f64>() + 20.0;
    let interval = report
        .results
        .first()
        .map(|r| r.timeline.interval.as_secs_f64())
        .unwrap_or(1.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="22" font-size="15">Latency over time: p99 (solid) and max (dashed) per {} window, log scale</text>"##,
        xml(&latency_label(interval * 1e6))
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="40" font-size="11" fill="#555">{}</text>"##,
        xml(&report.parameters)
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="56" font-size="11" fill="#555">A window alone is a dot (filled: p99, hollow: max). Ticks under an axis: windows in which no operation completed.</text>"##
    );
    for (i, e) in engines.iter().enumerate() {
        let y = 76.0 + 30.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{:.0}" width="12" height="12" fill="{}"/><text x="{:.0}" y="{y:.0}" font-weight="bold">{}</text>"#,
            y - 10.0,
            color(e),
            left + 16.0,
            xml(e)
        );
        if let Some(st) = report.setup.iter().find(|st| &st.engine == e) {
            let _ = writeln!(
                s,
                r##"<text x="{:.0}" y="{y:.0}" font-size="11">write buffer: {}; cache: {}; compression: {}</text><text x="{:.0}" y="{:.0}" font-size="11" fill="#333">a write returns after: {}</text>"##,
                left + 110.0,
                xml(&st.write_buffer),
                xml(&st.cache),
                xml(&st.compression),
                left + 110.0,
                y + 13.0,
                xml(&st.write_returns_after)
            );
        }
    }
    let mut py = top;
    for p in &panels {
        let (ptop, pbottom) = (py + header(p), py + header(p) + plot_h);
        let stall_y = py + 30.0;
        let span = p
            .lines
            .iter()
            .map(|(_, t, se)| t.interval.as_secs_f64() * se.windows.len() as f64)
            .fold(0.0, f64::max)
            .max(1e-3);
        let (mut lo, mut hi) = (f64::MAX, 0.0f64);
        for (_, _, se) in &p.lines {
            for l in se.windows.iter().filter_map(|w| w.latency) {
                lo = lo.min(l.p99 as f64 / 1e3);
                hi = hi.max(l.max as f64 / 1e3);
            }
        }
        if hi <= 0.0 {
            (lo, hi) = (1.0, 10.0);
        }
        let lo_exp = lo.max(0.01).log10().floor();
        let hi_exp = hi.max(0.01).log10().ceil().max(lo_exp + 1.0);
        let x = |sec: f64| left + plot_w * sec / span;
        let y = |us: f64| {
            pbottom - plot_h * (us.max(10f64.powf(lo_exp)).log10() - lo_exp) / (hi_exp - lo_exp)
        };
        let what = if p.series == crate::tails::WRITER {
            "the background writer's puts"
        } else {
            "the workload's operations"
        };
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{:.0}" font-size="13" font-weight="bold">{} — {} ({what}), latency µs (log)</text>"#,
            py + 16.0,
            xml(&p.workload),
            p.series
        );
        let mut e = lo_exp;
        while e <= hi_exp {
            let v = 10f64.powf(e);
            let yy = y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{:.0}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
                left + plot_w,
                left - 6.0,
                yy + 4.0,
                xml(&latency_label(v))
            );
            e += 1.0;
        }
        let step = tick_step(span);
        let mut t = 0.0;
        while t <= span + 1e-9 {
            let xx = x(t);
            let _ = writeln!(
                s,
                r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{pbottom:.1}" y2="{:.1}" stroke="#999"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
                pbottom + 4.0,
                pbottom + 16.0,
                // Ticks are multiples of the step; whole seconds print without a point.
                if step >= 1.0 {
                    format!("{t:.0}")
                } else {
                    format!("{t:.1}")
                }
            );
            t += step;
        }
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.0}" text-anchor="end" font-size="11">seconds</text><rect x="{left}" y="{ptop:.1}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#888"/>"##,
            left + plot_w,
            pbottom + 30.0
        );
        let mut stall_line = 0.0;
        for (li, (engine, tails, se)) in p.lines.iter().enumerate() {
            let c = color(engine);
            let step = tails.interval.as_secs_f64();
            for (dash, pick) in [("", 0usize), (r#" stroke-dasharray="4 3""#, 1)] {
                // Runs of windows with a latency; a window without one breaks the line.
                let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                for (i, w) in se.windows.iter().enumerate() {
                    match w.latency {
                        Some(l) => {
                            let v = if pick == 0 { l.p99 } else { l.max };
                            if let Some(run) = runs.last_mut() {
                                run.push((x((i as f64 + 0.5) * step), y(v as f64 / 1e3)));
                            }
                        }
                        None => runs.push(Vec::new()),
                    }
                }
                for run in runs.iter().filter(|r| !r.is_empty()) {
                    // A lone window: a dot, filled for p99, hollow for max.
                    if let [(px, py)] = run.as_slice() {
                        let fill = if pick == 0 { c } else { "white" };
                        let _ = writeln!(
                            s,
                            r#"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{fill}" stroke="{c}" stroke-width="1.5"/>"#
                        );
                        continue;
                    }
                    let pts: Vec<String> =
                        run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
                    let _ = writeln!(
                        s,
                        r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5"{dash}/>"#,
                        pts.join(" ")
                    );
                }
            }
            for (i, w) in se.windows.iter().enumerate() {
                if w.ops == 0 {
                    let xx = x((i as f64 + 0.5) * step);
                    let yy = pbottom + 2.0 + 3.0 * li as f64;
                    let _ = writeln!(
                        s,
                        r#"<line x1="{:.1}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="{c}" stroke-width="2"><title>{}: no operation completed</title></line>"#,
                        xx - 3.0,
                        xx + 3.0,
                        xml(engine)
                    );
                }
            }
            if let Some(st) = tails_stalls(se) {
                let _ = writeln!(
                    s,
                    r#"<text x="{left}" y="{:.0}" font-size="11" fill="{c}">{}: {st}</text>"#,
                    stall_y + stall_line,
                    xml(engine)
                );
                stall_line += 13.0;
            }
        }
        py += panel_h(p);
    }
    s.push_str("</svg>\n");
    s
}

/// A series' write stalls in words, if it wrote.
fn tails_stalls(se: &Series) -> Option<String> {
    let st = se.stalls;
    (st.writes > 0).then(|| {
        format!(
            "{} writes > 1 ms, {} > 10 ms, {:.1} ms in them",
            st.over_1ms,
            st.over_10ms,
            st.stall_ns as f64 / 1e6
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_print_without_needless_decimals() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(3000), "3");
        assert_eq!(seconds(250), "0.25");
        assert_eq!(seconds(1100), "1.1");
    }

    #[test]
    fn tick_steps_keep_ten_ticks_or_fewer() {
        for span in [0.3, 1.0, 7.0, 59.0, 600.0, 3000.0] {
            assert!(span / tick_step(span) <= 10.0, "{span}");
        }
    }
}
