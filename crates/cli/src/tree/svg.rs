//! The `db tree` picture as an SVG file: the same rows as the terminal picture (the
//! MemTable's unflushed keys, L0 files one row each, each deeper level one row), bars
//! placed along the key space (labelled at its ends and at up to three file boundaries
//! between), the lookup key as a vertical line, the files it visits numbered in lookup
//! order and coloured by what the lookup did there (the Bloom filter ruled the file out,
//! a block was read, the lookup stopped there; a file it never reached is not
//! numbered), and the steps written underneath. Hovering a bar shows the file's details
//! (`<title>`).

use std::fmt::Write as _;

use super::{DbTree, show};

const WIDTH: f64 = 1160.0;
const LABEL_W: f64 = 140.0;
const AXIS_W: f64 = 600.0;
const ROW_H: f64 = 24.0;
const BAR_H: f64 = 16.0;
const TOP: f64 = 70.0;
const LINE_H: f64 = 16.0;

/// Neighbouring files alternate two blues.
const COLOR_EVEN: &str = "#9ecae1";
const COLOR_ODD: &str = "#6baed6";
/// A block of the file was read.
const HIGHLIGHT: &str = "#fd8d3c";
const ANSWERED: &str = "#e6550d";
const HIGHLIGHT_STROKE: &str = "#a63603";
const NOT_VISITED: &str = "#fdd0a2";
/// The Bloom filter ruled the file out: visited, but no block read (drawn hatched).
const FILTERED: &str = "url(#filtered)";

/// Escapes text for XML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn x_of(pos: f64) -> f64 {
    LABEL_W + pos * AXIS_W
}

struct Row {
    label: String,
    info: String,
    step: Option<usize>,
    shapes: String,
}

/// Renders the tree (and the lookup, if any) as a standalone SVG document.
pub(super) fn render(t: &DbTree) -> String {
    let mut rows: Vec<Row> = Vec::new();
    // How the lookup treated a file: answered (stopped there), read a block, ruled
    // out by the Bloom filter, or never reached.
    let role = |f: &super::TreeFile| -> Option<&'static str> {
        if f.not_visited {
            return Some("not-visited");
        }
        let l = t.lookup.as_ref()?;
        let n = f.lookup_step?;
        let s = l.steps.iter().find(|s| s.step == Some(n))?;
        Some(if l.answered_by == Some(n) {
            "answered"
        } else if s.bloom == Some("absent") {
            "filtered"
        } else {
            "read"
        })
    };
    let memtable_answered = t.lookup.as_ref().is_some_and(|l| {
        l.answered_by
            .is_some_and(|n| t.memtable.iter().any(|w| w.lookup_step == Some(n)))
    });

    for w in &t.memtable {
        let mut shapes = String::new();
        for &p in &w.positions {
            let _ = write!(
                shapes,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#31a354"/>"##,
                x_of(p),
                BAR_H / 2.0
            );
        }
        if memtable_answered && w.lookup_step == t.lookup.as_ref().and_then(|l| l.answered_by) {
            let _ = write!(
                shapes,
                r#"<rect class="memtable-answered" x="{LABEL_W}" y="-3" width="{AXIS_W}" height="{:.1}" fill="none" stroke="{ANSWERED}" stroke-width="2"/>"#,
                BAR_H + 6.0
            );
        }
        rows.push(Row {
            label: "memtable".into(),
            info: format!(
                "{}: {} unflushed ({}, {})",
                w.file,
                show::count(w.entries as u64, "entry", "entries"),
                show::count(w.puts as u64, "put", "puts"),
                show::count(w.deletes as u64, "delete", "deletes")
            ),
            step: w.lookup_step,
            shapes,
        });
    }
    for l in &t.levels {
        let groups: Vec<Vec<(usize, &super::TreeFile)>> = if l.level == 0 {
            l.files.iter().enumerate().map(|f| vec![f]).collect()
        } else {
            vec![l.files.iter().enumerate().collect()]
        };
        for group in groups {
            let mut shapes = String::new();
            let mut step = None;
            for (i, f) in &group {
                let x0 = x_of(f.x0);
                let w = (x_of(f.x1) - x0).max(2.0);
                let (fill, stroke) = match role(f) {
                    Some("answered") => (ANSWERED, HIGHLIGHT_STROKE),
                    Some("not-visited") => (NOT_VISITED, HIGHLIGHT_STROKE),
                    Some("filtered") => (FILTERED, HIGHLIGHT_STROKE),
                    Some(_) => (HIGHLIGHT, HIGHLIGHT_STROKE),
                    None if i.is_multiple_of(2) => (COLOR_EVEN, "#2171b5"),
                    None => (COLOR_ODD, "#2171b5"),
                };
                let key = |k: &Option<show::IKey>| {
                    k.as_ref()
                        .map_or_else(|| "?".to_owned(), |k| show::key_from_plain(&k.user_key))
                };
                let title = format!(
                    "L{} {:06}.sst: {}, {} entries, {} tombstones{}, seq {}..{}, {} .. {}",
                    l.level,
                    f.meta.number,
                    show::size(f.meta.size_bytes),
                    f.meta.entries,
                    f.meta.tombstones,
                    super::range_count(
                        f.meta.range_tombstones,
                        "range tombstone",
                        "range tombstones"
                    ),
                    f.meta.smallest_seq,
                    f.meta.largest_seq,
                    key(&f.meta.smallest),
                    key(&f.meta.largest)
                );
                let _ = write!(
                    shapes,
                    r#"<rect class="file" data-level="{}" data-file="{}" x="{x0:.1}" y="0" width="{w:.1}" height="{BAR_H}" fill="{fill}" stroke="{stroke}" stroke-width="{}"><title>{}</title></rect>"#,
                    l.level,
                    f.meta.number,
                    if f.covers_key { 1.5 } else { 0.5 },
                    esc(&title)
                );
                step = step.or(f.lookup_step);
            }
            let (label, info) = if l.level == 0 {
                let f = group.first().map(|(_, f)| *f);
                (
                    format!("L0 {:06}", f.map_or(0, |f| f.meta.number)),
                    f.map_or_else(String::new, |f| {
                        format!(
                            "{}, {}, {}{}",
                            show::size(f.meta.size_bytes),
                            show::count(f.meta.entries, "entry", "entries"),
                            show::count(f.meta.tombstones, "tombstone", "tombstones"),
                            super::range_count(
                                f.meta.range_tombstones,
                                "range tombstone",
                                "range tombstones"
                            )
                        )
                    }),
                )
            } else {
                (
                    format!(
                        "L{} ({})",
                        l.level,
                        show::count(l.files.len() as u64, "file", "files")
                    ),
                    format!(
                        "{}, {}, {}{}",
                        show::size(l.size_bytes),
                        show::count(l.entries, "entry", "entries"),
                        show::count(l.tombstones, "tombstone", "tombstones"),
                        super::range_count(
                            l.range_tombstones,
                            "range tombstone",
                            "range tombstones"
                        )
                    ),
                )
            };
            rows.push(Row {
                label,
                info,
                step,
                shapes,
            });
        }
    }

    let steps_lines = t.lookup.as_ref().map_or(0, |l| l.steps.len() + 4);
    let rows_h = rows.len() as f64 * ROW_H;
    let height = TOP + rows_h + 30.0 + steps_lines as f64 * LINE_H + 20.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="monospace" font-size="12">"#
    );
    // The hatch of files the Bloom filter ruled out: orange stripes on white, so they
    // read as "visited" yet clearly not as "a block was read".
    let _ = write!(
        s,
        r#"<defs><pattern id="filtered" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="white"/><rect width="2.5" height="6" fill="{HIGHLIGHT}"/></pattern></defs>"#
    );
    s.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    let c = &t.counters;
    let _ = write!(
        s,
        r#"<text class="title" x="10" y="20" font-size="14" font-weight="bold">database {} ({}): log number {}, next file {}, last sequence {}</text>"#,
        esc(&t.database),
        esc(&t.manifest),
        c.log_number,
        c.next_file_number,
        c.last_sequence
    );
    if let (Some(ks), false) = (&t.key_space, rows.is_empty()) {
        let _ = write!(
            s,
            r#"<text x="{LABEL_W}" y="{}" text-anchor="start">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            TOP - 12.0,
            esc(&show::key_from_plain(&ks.smallest)),
            LABEL_W + AXIS_W,
            TOP - 12.0,
            esc(&show::key_from_plain(&ks.largest))
        );
        for (p, key) in &t.axis_ticks {
            let x = x_of(*p);
            let _ = write!(
                s,
                r##"<line class="axis-tick" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text class="axis-label" x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
                TOP - 9.0,
                TOP - 3.0,
                TOP - 12.0,
                esc(&show::key_from_plain(key))
            );
        }
    } else {
        let _ = write!(
            s,
            r#"<text x="10" y="{TOP}">empty: no tables and no unflushed data</text>"#
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW_H;
        let _ = write!(
            s,
            r##"<g transform="translate(0,{y:.1})"><text x="10" y="{:.1}">{}</text><line x1="{LABEL_W}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/>{}<text x="{:.1}" y="{:.1}">{}</text>"##,
            BAR_H - 3.0,
            esc(&row.label),
            BAR_H / 2.0,
            LABEL_W + AXIS_W,
            BAR_H / 2.0,
            row.shapes,
            LABEL_W + AXIS_W + 10.0,
            BAR_H - 3.0,
            esc(&row.info)
        );
        if let Some(n) = row.step {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="8" fill="{HIGHLIGHT_STROKE}"/><text x="{:.1}" y="{:.1}" fill="white" text-anchor="middle" font-size="10">{n}</text>"#,
                LABEL_W - 14.0,
                BAR_H / 2.0,
                LABEL_W - 14.0,
                BAR_H / 2.0 + 3.5
            );
        }
        s.push_str("</g>");
    }
    if let Some(l) = &t.lookup {
        let x = x_of(l.position);
        let _ = write!(
            s,
            r##"<line class="lookup-key" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e6550d" stroke-width="1.5" stroke-dasharray="4 3"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#e6550d">▼ {}</text>"##,
            TOP - 8.0,
            TOP + rows_h,
            TOP - 26.0,
            esc(&show::key_from_plain(&l.key))
        );
        let mut y = TOP + rows_h + 30.0;
        let _ = write!(
            s,
            r#"<text x="10" y="{y:.1}" font-weight="bold">lookup of {}, newest data first</text>"#,
            esc(&show::key_from_plain(&l.key))
        );
        for st in &l.steps {
            y += LINE_H;
            let bloom = st
                .bloom
                .map(|b| format!("Bloom: {b}; "))
                .unwrap_or_default();
            let _ = write!(
                s,
                r#"<text class="step" x="20" y="{y:.1}">{} {} {} {}{}</text>"#,
                st.step.map_or_else(|| "-".to_owned(), |n| format!("{n}.")),
                esc(&st.source),
                esc(&st.file),
                esc(&bloom),
                esc(&st.detail)
            );
        }
        y += LINE_H;
        let result = match (l.result, &l.value_preview) {
            ("found", Some(v)) => format!("found {v} ({} B)", l.value_bytes.unwrap_or(0)),
            ("deleted", _) => match &l.deleted_by_range {
                Some(d) => format!(
                    "not found (deleted by range tombstone {} in {})",
                    d.tombstone.text(),
                    d.file
                ),
                None => "not found (deleted by a tombstone)".to_owned(),
            },
            ("absent", _) => "not found".to_owned(),
            (other, _) => other.to_owned(),
        };
        let _ = write!(
            s,
            r#"<text x="10" y="{y:.1}" font-weight="bold">result: {}</text>"#,
            esc(&result)
        );
        y += LINE_H + 4.0;
        let legend = [
            (HIGHLIGHT, "a block was read"),
            (FILTERED, "ruled out by the Bloom filter"),
            (ANSWERED, "answered (the lookup stopped)"),
            (NOT_VISITED, "covers the key, never reached"),
        ];
        let mut x = 10.0;
        for (fill, text) in legend {
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="12" height="10" fill="{fill}" stroke="{HIGHLIGHT_STROKE}" stroke-width="0.5"/><text x="{:.1}" y="{y:.1}">{text}</text>"#,
                y - 9.0,
                x + 16.0
            );
            x += 16.0 + 7.3 * text.len() as f64 + 18.0;
        }
        if memtable_answered {
            y += LINE_H;
            let _ = write!(
                s,
                r#"<text class="memtable-answer" x="10" y="{y:.1}">the MemTable (unflushed writes) answered: no table was read</text>"#
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(
            esc(r#"<a & 'b' "c">"#),
            "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;"
        );
    }
}
