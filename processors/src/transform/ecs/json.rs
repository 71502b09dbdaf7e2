//! A minimal streaming JSON writer for the ECS document.
//!
//! The document is written straight into one pre-sized `String`: no intermediate
//! `serde_json::Value`, no per-key allocation. Keys are written in the order the mapper calls
//! them, so the output is deterministic by construction. An object or array that ends up with no
//! member is removed again ([`JsonWriter::close`]), so the mapper can open a group speculatively
//! (`user`, `threat`, ...) without first checking whether any of its fields is present.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::event::{MAX_MILLIS, MIN_MILLIS};

/// An object key, quoted and with its colon (`"kind":`). Only the mapper's `k!` macro builds
/// one (from a literal, at compile time), so a key can neither be left unquoted nor need
/// escaping, and writing it is one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key(pub(super) &'static str);

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

    /// Separator and key (see [`Key`]). Free-text keys go through [`JsonWriter::str_dyn_key`].
    fn key(&mut self, k: Key) {
        self.sep();
        self.buf.push_str(k.0);
    }

    /// Opens `k{` (or `k[` when `array`).
    pub(super) fn open(&mut self, k: Key, array: bool) -> Mark {
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
    pub(super) fn str(&mut self, k: Key, v: &str) {
        self.key(k);
        push_escaped(&mut self.buf, v);
    }

    /// `"k":"v"` when `v` is present and not empty (the canonical event never carries an empty
    /// string as a value: empty means unknown).
    pub(super) fn opt_str(&mut self, k: Key, v: Option<&str>) {
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

    /// `"k":"ip"`, the address in its canonical text form (`text` is what `ip` was parsed
    /// from; see [`push_ip`]).
    pub(super) fn ip(&mut self, k: Key, ip: IpAddr, text: &str) {
        self.key(k);
        push_ip(&mut self.buf, ip, text);
    }

    /// `"k":n`.
    pub(super) fn int(&mut self, k: Key, v: i64) {
        self.key(k);
        push_int(&mut self.buf, v);
    }

    /// `"k":n` when present.
    pub(super) fn opt_int(&mut self, k: Key, v: Option<i64>) {
        if let Some(v) = v {
            self.int(k, v);
        }
    }

    /// `"k":"2025-03-14T11:15:43.000Z"`; `false` (and nothing written) if `ms` is outside
    /// 1970-01-01T00:00:00.000Z..=9999-12-31T23:59:59.999Z.
    pub(super) fn timestamp(&mut self, k: Key, ms: i64) -> bool {
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

    /// An IP address element of the current array (see [`JsonWriter::ip`]).
    pub(super) fn elem_ip(&mut self, ip: IpAddr, text: &str) {
        self.sep();
        push_ip(&mut self.buf, ip, text);
    }

    /// A string element of the current array made of `parts` run together (each escaped), so
    /// that composed values need no temporary `String`.
    pub(super) fn elem_concat(&mut self, parts: &[&str]) {
        self.sep();
        self.buf.push('"');
        for p in parts {
            push_escaped_inner(&mut self.buf, p);
        }
        self.buf.push('"');
    }

    /// `"k":"..."` whose content `f` appends directly to the buffer; `f` must only append
    /// characters that need no JSON escaping. If it appends nothing, nothing is written.
    pub(super) fn str_with(&mut self, k: Key, f: impl FnOnce(&mut String)) {
        let (len, first) = (self.buf.len(), self.first);
        self.key(k);
        self.buf.push('"');
        let content = self.buf.len();
        f(&mut self.buf);
        if self.buf.len() == content {
            self.buf.truncate(len);
            self.first = first;
        } else {
            self.buf.push('"');
        }
    }

    /// `"k":["a","b"]` from string slices; nothing if there is none.
    pub(super) fn str_array<'a>(&mut self, k: Key, items: impl IntoIterator<Item = &'a str>) {
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
/// `\b`, `\f` or `\u00XX`; everything else (all non-ASCII included) is copied as UTF-8. This is
/// exactly what `serde_json` writes (checked by the tests), so the output is serde_json's compact
/// form.
pub(super) fn push_escaped(buf: &mut String, s: &str) {
    buf.push('"');
    push_escaped_inner(buf, s);
    buf.push('"');
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes is below 0x20, `"` or `\` (the classic "has zero byte" bit trick:
/// exact as an any-test, which is all that is needed to skip clean words).
fn word_needs_escape(w: [u8; 8]) -> bool {
    let x = u64::from_le_bytes(w);
    let ctl = x.wrapping_sub(LO * 0x20) & !x & HI;
    let q = x ^ (LO * u64::from(b'"'));
    let bs = x ^ (LO * u64::from(b'\\'));
    let quote = q.wrapping_sub(LO) & !q & HI;
    let backslash = bs.wrapping_sub(LO) & !bs & HI;
    (ctl | quote | backslash) != 0
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Index of the first byte of `bytes` that needs escaping.
fn find_escape(bytes: &[u8]) -> Option<usize> {
    // Free text rarely needs escaping: skip clean 8-byte words at once, then look at bytes.
    let mut clean = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(w) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        if word_needs_escape(w) {
            break;
        }
        clean += 8;
    }
    let tail = bytes.get(clean..)?;
    tail.iter()
        .position(|&b| needs_escape(b))
        .map(|p| clean + p)
}

fn push_escaped_inner(buf: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = find_escape(rest.as_bytes()) {
        // `i` is the index of an ASCII byte, and ASCII bytes never occur inside a multi-byte
        // UTF-8 sequence, so both slices are on character boundaries.
        let (clean, tail) = rest.split_at(i);
        buf.push_str(clean);
        let b = tail.as_bytes().first().copied().unwrap_or(0);
        match b {
            b'"' => buf.push_str("\\\""),
            b'\\' => buf.push_str("\\\\"),
            b'\n' => buf.push_str("\\n"),
            b'\r' => buf.push_str("\\r"),
            b'\t' => buf.push_str("\\t"),
            0x08 => buf.push_str("\\b"),
            0x0c => buf.push_str("\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.push_str("\\u00");
                buf.push(char::from(HEX[usize::from(b >> 4)]));
                buf.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        rest = tail.get(1..).unwrap_or("");
    }
    buf.push_str(rest);
}

/// Appends the decimal digits of `v` (std's formatter goes through `fmt::Formatter` padding
/// logic, which is several times slower for the dozen integers of a document).
fn push_int(buf: &mut String, v: i64) {
    if v < 0 {
        buf.push('-');
    }
    push_digits(buf, v.unsigned_abs());
}

fn push_digits(buf: &mut String, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in tmp.get(i..).unwrap_or(&[]) {
        buf.push(char::from(d));
    }
}

/// Appends `n` as exactly `width` digits (0-padded); `n` must fit.
fn push_padded(out: &mut [u8], n: i64, width: usize) {
    let mut n = n;
    for slot in out.iter_mut().take(width).rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `"ip"` in canonical text form. `text` is the string `ip` was parsed from: for IPv4
/// it is copied as it is, because std's parser accepts only the canonical dotted-quad form (no
/// leading zeros, no shorthand), so the text already is what `Display` would print; IPv6 goes
/// through std's formatter (zero compression, lower case).
fn push_ip(buf: &mut String, ip: IpAddr, text: &str) {
    buf.push('"');
    match ip {
        IpAddr::V4(_) => buf.push_str(text),
        IpAddr::V6(v6) => {
            let _ = write!(buf, "{v6}");
        }
    }
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
    let mut t = *b"\"0000-00-00T00:00:00.000Z\"";
    for (at, value, width) in [
        (1, year, 4),
        (6, month, 2),
        (9, day, 2),
        (12, sod / 3600, 2),
        (15, sod / 60 % 60, 2),
        (18, sod % 60, 2),
        (21, milli, 3),
    ] {
        if let Some(out) = t.get_mut(at..) {
            push_padded(out, value, width);
        }
    }
    buf.push_str(std::str::from_utf8(&t).unwrap_or("\"\""));
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
    fn escaping_long_strings_at_every_offset() {
        // The word-at-a-time scan must catch a special byte wherever it sits in the word.
        let specials = [
            '"', '\\', '\n', '\u{0}', '\u{1f}', '\u{7f}', 'é', '🦀', ' ', '~',
        ];
        for len in 0..40 {
            for pos in 0..len {
                for &c in &specials {
                    let mut t: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
                        .chars()
                        .take(len)
                        .collect();
                    t.insert(pos, c);
                    let mut buf = String::new();
                    push_escaped(&mut buf, &t);
                    assert_eq!(buf, serde_json::to_string(&t).unwrap(), "{t:?}");
                }
            }
        }
    }

    #[test]
    fn numbers_and_ips_match_std() {
        for v in [
            0,
            1,
            -1,
            9,
            10,
            99,
            100,
            65_535,
            i64::MAX,
            i64::MIN,
            -1_741_946_400_250,
        ] {
            let mut buf = String::new();
            push_int(&mut buf, v);
            assert_eq!(buf, v.to_string());
        }
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.42",
            "10.0.100.7",
            "2001:db8::1",
            "2001:DB8:0:0:0:0:0:1",
            "::ffff:192.0.2.1",
            "::",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            let mut buf = String::new();
            push_ip(&mut buf, ip, text);
            assert_eq!(buf, format!("\"{ip}\""));
        }
        // What push_ip relies on: std accepts IPv4 only in its canonical form.
        for odd in [
            "010.0.0.1",
            "1.2.3",
            "0x7f.0.0.1",
            "1.2.3.4 ",
            "127.1",
            "+1.2.3.4",
        ] {
            assert!(odd.parse::<std::net::Ipv4Addr>().is_err(), "{odd}");
        }
    }

    #[test]
    fn empty_containers_are_taken_back() {
        let mut w = JsonWriter::new(64);
        w.str(Key("\"a\":"), "1");
        let m = w.open(Key("\"empty\":"), false);
        let n = w.open(Key("\"inner\":"), true);
        w.close(n, true);
        w.close(m, false);
        let m = w.open(Key("\"obj\":"), false);
        let n = w.open(Key("\"empty\":"), true);
        w.close(n, true);
        w.int(Key("\"n\":"), -5);
        w.close(m, false);
        let m = w.open(Key("\"arr\":"), true);
        let e = w.open_elem();
        w.close(e, false);
        let e = w.open_elem();
        w.int(Key("\"b\":"), 1);
        w.close(e, false);
        w.close(m, true);
        let out = String::from_utf8(w.finish()).unwrap();
        assert_eq!(out, r#"{"a":"1","obj":{"n":-5},"arr":[{"b":1}]}"#);

        let mut w = JsonWriter::new(8);
        let m = w.open(Key("\"x\":"), false);
        w.close(m, false);
        assert_eq!(w.finish(), b"{}");
    }
}
