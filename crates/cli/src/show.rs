//! How keys, values and sizes are shown, and how keys are read from the command line.
//!
//! A key is shown as UTF-8 when it is printable text, else as `0x` and hex. On the
//! command line a key is UTF-8, or hex when it starts with `0x`; so a printable key that
//! itself starts with `0x` is shown in hex, and every key shown can be typed back.

use serde::Serialize;
use strata_core::{MAX_SEQUENCE, ParsedInternalKey, ValueKind};

/// Longest value prefix shown in text output.
const VALUE_PREVIEW_BYTES: usize = 24;

fn printable(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.starts_with("0x") && !s.chars().any(char::is_control))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The key as typed on a command line: text, or `0x…` hex. For JSON.
pub fn plain(key: &[u8]) -> String {
    printable(key).map_or_else(|| hex(key), str::to_owned)
}

/// The key for text output: `'text'` (quoted, so spaces and emptiness show), or
/// `0x…` hex.
pub fn key(key: &[u8]) -> String {
    printable(key).map_or_else(|| hex(key), |s| format!("'{s}'"))
}

/// [`key`] of a key held as [`plain`] text (as reports store keys for JSON).
pub fn key_from_plain(plain_key: &str) -> String {
    parse_key(plain_key).map_or_else(|_| plain_key.to_owned(), |k| key(&k))
}

/// [`key`], cut to about `max` characters with an ellipsis (for pictures).
pub fn key_short(k: &[u8], max: usize) -> String {
    let s = key(k);
    if s.chars().count() <= max {
        return s;
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A value's first bytes, shown like a key, with `…` when cut.
pub fn value_preview(value: &[u8]) -> String {
    match value.get(..VALUE_PREVIEW_BYTES) {
        Some(head) if value.len() > VALUE_PREVIEW_BYTES => {
            // Cut at a character boundary so printable values stay printable.
            let head = match std::str::from_utf8(head) {
                Ok(_) => head,
                Err(e) => head.get(..e.valid_up_to()).unwrap_or(head),
            };
            format!("{}…", key(head))
        }
        _ => key(value),
    }
}

/// A value's first bytes, for reports: serialised (JSON) in the command-line form
/// (text, or `0x…` hex) without quotes, shown (text output) quoted with `…` when cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    plain: String,
    text: String,
}

impl Preview {
    /// The preview of `value`.
    pub fn of(value: &[u8]) -> Self {
        let head = match value.get(..VALUE_PREVIEW_BYTES) {
            Some(head) => match std::str::from_utf8(head) {
                Ok(_) => head,
                Err(e) => head.get(..e.valid_up_to()).unwrap_or(head),
            },
            None => value,
        };
        Preview {
            plain: plain(head),
            text: value_preview(value),
        }
    }
}

impl std::fmt::Display for Preview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Preview {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.plain)
    }
}

/// Reads a key given on the command line: `0x…` is hex, anything else is UTF-8.
pub fn parse_key(arg: &str) -> Result<Vec<u8>, String> {
    let Some(digits) = arg.strip_prefix("0x") else {
        return Ok(arg.as_bytes().to_vec());
    };
    if digits.len() % 2 != 0 {
        return Err(format!("key {arg}: odd number of hex digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("key {arg}: not hex after 0x"))
        })
        .collect()
}

/// A value kind's name.
pub fn kind(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Put => "put",
        ValueKind::Delete => "del",
        ValueKind::Merge => "merge",
        ValueKind::ExpiringPut => "put-ttl",
    }
}

/// A write-batch entry's kind: `put`, `del`, `merge` or `delrange`.
pub fn batch_kind(op: strata::inspect::BatchOp) -> &'static str {
    match op {
        strata::inspect::BatchOp::Put => "put",
        strata::inspect::BatchOp::Delete => "del",
        strata::inspect::BatchOp::DeleteRange => "delrange",
        strata::inspect::BatchOp::Merge => "merge",
        strata::inspect::BatchOp::PutExpiring => "put-ttl",
        // Never decoded from a WAL (the writer gives it its expiry first).
        strata::inspect::BatchOp::PutTtl => "put-ttl-unresolved",
        // Never decoded from a WAL (the writer gives it an end first).
        strata::inspect::BatchOp::DeleteRangeToEnd => "delrange-open",
    }
}

/// A sequence number, `max` for the largest (separators and seek keys use it).
pub fn seq(seq: u64) -> String {
    if seq == MAX_SEQUENCE {
        "max".to_owned()
    } else {
        seq.to_string()
    }
}

/// A decoded internal key, for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct IKey {
    /// The user key ([`plain`]).
    pub user_key: String,
    /// Sequence number.
    pub seq: u64,
    /// `put` or `del`.
    pub kind: &'static str,
    #[serde(skip)]
    raw_user_key: Vec<u8>,
}

impl IKey {
    /// Decodes an encoded internal key; `None` if malformed.
    pub fn parse(encoded: &[u8]) -> Option<Self> {
        ParsedInternalKey::parse(encoded).map(|p| IKey {
            user_key: plain(p.user_key),
            seq: p.seq,
            kind: kind(p.kind),
            raw_user_key: p.user_key.to_vec(),
        })
    }

    /// `'key' seq:N put`, for text output.
    pub fn text(&self) -> String {
        format!(
            "{} seq:{} {}",
            key(&self.raw_user_key),
            seq(self.seq),
            self.kind
        )
    }
}

/// An encoded internal key for text output (`<malformed …>` if it does not parse).
pub fn ikey(encoded: &[u8]) -> String {
    IKey::parse(encoded).map_or_else(
        || format!("<malformed internal key {}>", hex(encoded)),
        |k| k.text(),
    )
}

/// `1 entry`, `2 entries`: a count with its noun.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A byte count for people: `812 B`, `62.1 KiB`, `3.4 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_as_text_or_hex_and_parse_back() {
        for k in [
            &b"user:1"[..],
            b"",
            b"\x00\x01\xff",
            b"0xabc",
            b"tab\there",
            "caf\u{e9}".as_bytes(),
        ] {
            assert_eq!(parse_key(&plain(k)).unwrap(), k, "{}", plain(k));
        }
        assert_eq!(key(b"user:1"), "'user:1'");
        assert_eq!(key(b"\x00\xff"), "0x00ff");
        assert_eq!(
            plain(b"0xab"),
            "0x30786162",
            "text that looks like hex is hex"
        );
        assert!(parse_key("0xabc").is_err());
        assert!(parse_key("0xzz").is_err());
    }

    #[test]
    fn previews_cut_long_values_at_a_character_boundary() {
        assert_eq!(value_preview(b"short"), "'short'");
        let long = "é".repeat(20);
        let shown = value_preview(long.as_bytes());
        assert!(shown.ends_with('…') && shown.starts_with("'é"), "{shown}");
        let p = Preview::of(long.as_bytes());
        assert_eq!(p.to_string(), shown);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            format!("\"{}\"", "é".repeat(12))
        );
    }

    #[test]
    fn sizes_pick_a_unit() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(63_590), "62.1 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }
}
