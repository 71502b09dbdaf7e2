//! A minimal streaming JSON writer for the ECS document.
//!
//! The document is written straight into one pre-sized `String`: no intermediate
//! `serde_json::Value`, no per-key allocation. Keys are written in the order the mapper calls
//! them, so the output is deterministic by construction. An object or array that ends up with no
//! member is removed again ([`JsonWriter::close`]), so the mapper can open a group speculatively
//! (`user`, `threat`, ...) without first checking whether any of its fields is present.

use std::fmt::Write as _;

use crate::event::{MAX_MILLIS, MIN_MILLIS};

/// Where an object or array was opened: enough to close it, or to take it back if it stayed
/// empty.
#[derive(Debug, Clone, Copy)]
#[must_use = "an opened object or array must be closed"]
pub(super) struct Mark {
    /// Length of the buffer before the separator and key of the opened value.
    len: usize,
    /// `first` of the enclosing container before the value was opened.
    first: bool,
}

/// Writes one JSON object; see the module docs.
#[derive(Debug)]
pub(super) struct JsonWriter {
    buf: String,
    /// No member has been written yet in the innermost open container (so no comma is due).
    first: bool,
}

impl JsonWriter {
    /// Starts the top-level object.
    pub(super) fn new(capacity: usize) -> Self {
        let mut buf = String::with_capacity(capacity);
        buf.push('{');
        JsonWriter { buf, first: true }
    }

    /// Closes the top-level object and returns the bytes.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.buf.push('}');
        self.buf.into_bytes()
    }

    fn sep(&mut self) {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
    }

    /// Separator and key. Keys passed here are ECS field names (ASCII letters, digits, `_`, `@`),
    /// which never need escaping; free-text keys go through [`JsonWriter::open_dyn`] /
    /// [`JsonWriter::str_dyn_key`].
    fn key(&mut self, k: &str) {
        self.sep();
        self.buf.push('"');
        self.buf.push_str(k);
        self.buf.push_str("\":");
    }

    /// Opens `"k":{` (or `[` when `array`).
    pub(super) fn open(&mut self, k: &str, array: bool) -> Mark {
        let m = Mark {
            len: self.buf.len(),
            first: self.first,
        };
        self.key(k);
        self.buf.push(if array { '[' } else { '{' });
        self.first = true;
        m
    }

    /// Opens an object as the next element of the current array.
    pub(super) fn open_elem(&mut self) -> Mark {
        let m = Mark {
            len: self.buf.len(),
            first: self.first,
        };
        self.sep();
        self.buf.push('{');
        self.first = true;
        m
    }

    /// Closes what `m` opened with `}` (or `]` when `array`); if nothing was written inside, the
    /// whole member (separator, key and bracket) is taken back instead.
    pub(super) fn close(&mut self, m: Mark, array: bool) {
        if self.first {
            self.buf.truncate(m.len);
            self.first = m.first;
        } else {
            self.buf.push(if array { ']' } else { '}' });
            self.first = false;
        }
    }

    /// `"k":"v"`.
    pub(super) fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        push_escaped(&mut self.buf, v);
    }

    /// `"k":"v"` when `v` is present and not empty (the canonical event never carries an empty
    /// string as a value: empty means unknown).
    pub(super) fn opt_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.str(k, v);
        }
    }

    /// `"k":"v"` with a key that is free text (label keys).
    pub(super) fn str_dyn_key(&mut self, k: &str, v: &str) {
        self.sep();
        push_escaped(&mut self.buf, k);
        self.buf.push(':');
        push_escaped(&mut self.buf, v);
    }

    /// `"k":` followed by the `Display` form of `v`, quoted. For values whose text never needs
    /// JSON escaping (IP addresses).
    pub(super) fn display<T: std::fmt::Display>(&mut self, k: &str, v: T) {
        self.key(k);
        self.buf.push('"');
        let _ = write!(self.buf, "{v}");
        self.buf.push('"');
    }

    /// `"k":n`.
    pub(super) fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        let _ = write!(self.buf, "{v}");
    }

    /// `"k":n` when present.
    pub(super) fn opt_int(&mut self, k: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.int(k, v);
        }
    }

    /// `"k":"2025-03-14T11:15:43.000Z"`; `false` (and nothing written) if `ms` is outside
    /// 1970-01-01T00:00:00.000Z..=9999-12-31T23:59:59.999Z.
    pub(super) fn timestamp(&mut self, k: &str, ms: i64) -> bool {
        if !(MIN_MILLIS..=MAX_MILLIS).contains(&ms) {
            return false;
        }
        self.key(k);
        push_rfc3339(&mut self.buf, ms);
        true
    }

    /// A string element of the current array.
    pub(super) fn elem_str(&mut self, v: &str) {
        self.sep();
        push_escaped(&mut self.buf, v);
    }

    /// A quoted `Display` element of the current array (see [`JsonWriter::display`]).
    pub(super) fn elem_display<T: std::fmt::Display>(&mut self, v: T) {
        self.sep();
        self.buf.push('"');
        let _ = write!(self.buf, "{v}");
        self.buf.push('"');
    }

    /// `"k":["a","b"]` from string slices; nothing if there is none.
    pub(super) fn str_array<'a>(&mut self, k: &str, items: impl IntoIterator<Item = &'a str>) {
        let m = self.open(k, true);
        for v in items {
            if !v.is_empty() {
                self.elem_str(v);
            }
        }
        self.close(m, true);
    }
}

/// Appends `s` as a JSON string: `"` and `\` escaped, control characters as `\n`, `\r`, `\t`,
/// `\b`, `\f` or `\u00XX`; everything else (all non-ASCII included) is copied as UTF-8.
pub(super) fn push_escaped(buf: &mut String, s: &str) {
    buf.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is the index of an ASCII byte, and ASCII bytes never occur inside a multi-byte
        // UTF-8 sequence, so both slices below are on character boundaries.
        buf.push_str(&s[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.push_str("\\u00");
            buf.push(char::from(HEX[usize::from(b >> 4)]));
            buf.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            buf.push_str(short);
        }
        start = i + 1;
    }
    buf.push_str(&s[start..]);
    buf.push('"');
}

/// Appends `"YYYY-MM-DDTHH:MM:SS.mmmZ"` for `ms` in `MIN_MILLIS..=MAX_MILLIS` (checked by the
/// caller). Hand-written (days → civil date, H. Hinnant's algorithm) because chrono's formatter
/// allocates and costs several times more, and the ECS transform writes two to five of these
/// per event.
fn push_rfc3339(buf: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Days since 0000-03-01 in 400-year eras; `days` is not negative here.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        buf,
        "\"{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z\"",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::event::format_rfc3339;

    fn ts(ms: i64) -> String {
        let mut s = String::new();
        push_rfc3339(&mut s, ms);
        s
    }

    #[test]
    fn timestamps_match_chrono() {
        let mut probes = vec![
            0,
            1,
            999,
            1000,
            86_399_999,
            86_400_000,
            951_782_400_000, // 2000-02-29
            951_868_800_000, // 2000-03-01
            4_107_542_400_000,
            1_741_946_400_250,
            MAX_MILLIS,
        ];
        // A deterministic spread over the whole range, including leap days and year ends.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            probes.push((x % (MAX_MILLIS as u64 + 1)) as i64);
        }
        for ms in probes {
            assert_eq!(
                ts(ms),
                format!("\"{}\"", format_rfc3339(ms).unwrap()),
                "{ms}"
            );
        }
    }

    #[test]
    fn escaping_matches_serde_json() {
        for s in [
            "",
            "plain",
            "a\"b\\c",
            "line\nbreak\r\ttab",
            "\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "é日本🦀\u{a0}\u{2028}",
            "C:\\Users\\alice",
        ] {
            let mut buf = String::new();
            push_escaped(&mut buf, s);
            assert_eq!(buf, serde_json::to_string(s).unwrap());
            let back: String = serde_json::from_str(&buf).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn empty_containers_are_taken_back() {
        let mut w = JsonWriter::new(64);
        w.str("a", "1");
        let m = w.open("empty", false);
        let n = w.open("inner", true);
        w.close(n, true);
        w.close(m, false);
        let m = w.open("obj", false);
        let n = w.open("empty", true);
        w.close(n, true);
        w.int("n", -5);
        w.close(m, false);
        let m = w.open("arr", true);
        let e = w.open_elem();
        w.close(e, false);
        let e = w.open_elem();
        w.int("b", 1);
        w.close(e, false);
        w.close(m, true);
        let out = String::from_utf8(w.finish()).unwrap();
        assert_eq!(out, r#"{"a":"1","obj":{"n":-5},"arr":[{"b":1}]}"#);

        let mut w = JsonWriter::new(8);
        let m = w.open("x", false);
        w.close(m, false);
        assert_eq!(w.finish(), b"{}");
    }
}
