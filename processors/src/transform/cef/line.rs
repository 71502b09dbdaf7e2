//! Writing one CEF line: the two escaping schemes, length limits and the extension separator.
//!
//! The header and the extension escape differently (ArcSight "Implementing ArcSight CEF",
//! rev. 25, "Character Encoding"):
//! - header fields: `\` → `\\`, `|` → `\|`; a header may not hold a line break, so CR, LF and
//!   CR LF each become one space; `=` stays literal;
//! - extension values: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r`; `|` stays literal.
//!
//! Limits are counted in UTF-16 code units, as ArcSight (Java) counts string length, so a value
//! accepted here is never over the limit on the consumer side; a character is never split. The
//! value is cut BEFORE it is escaped, so an escape sequence is never split either, and a value
//! that is cut is a prefix of the (header: line-break normalised) original.

use std::fmt::Write as _;

/// The longest prefix of `s` that is at most `limit` UTF-16 code units long.
pub fn prefix_utf16(s: &str, limit: usize) -> &str {
    // UTF-8 is never shorter than UTF-16 in code units, so short byte strings need no scan.
    if s.len() <= limit {
        return s;
    }
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > limit {
            return &s[..i];
        }
    }
    s
}

/// One CEF line being written: header fields first, then extension pairs.
#[derive(Debug)]
pub struct Line {
    buf: String,
    /// No extension pair written yet (the first one is not preceded by a space).
    first_pair: bool,
}

impl Line {
    /// A line starting with `CEF:0|`, with room for `capacity` bytes.
    pub fn new(capacity: usize) -> Line {
        let mut buf = String::with_capacity(capacity);
        buf.push_str("CEF:0|");
        Line {
            buf,
            first_pair: true,
        }
    }

    /// Append a header field limited to `limit` UTF-16 units, then its `|` separator.
    pub fn header(&mut self, value: &str, limit: usize) {
        if value.len() <= limit {
            // Fits whatever its characters (bytes >= UTF-16 units, and a line break only
            // shrinks): copy the runs between special bytes whole.
            let bytes = value.as_bytes();
            let mut start = 0;
            let mut i = 0;
            while i < bytes.len() {
                let (escaped, skip) = match bytes[i] {
                    b'\\' => ("\\\\", 1),
                    b'|' => ("\\|", 1),
                    b'\r' if bytes.get(i + 1) == Some(&b'\n') => (" ", 2),
                    b'\r' | b'\n' => (" ", 1),
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                self.buf.push_str(value.get(start..i).unwrap_or_default());
                self.buf.push_str(escaped);
                i += skip;
                start = i;
            }
            self.buf.push_str(value.get(start..).unwrap_or_default());
        } else {
            let mut units = 0;
            let mut chars = value.chars().peekable();
            while let Some(c) = chars.next() {
                let c = match c {
                    '\r' => {
                        // CR LF is one line break: one space.
                        if chars.peek() == Some(&'\n') {
                            chars.next();
                        }
                        ' '
                    }
                    '\n' => ' ',
                    c => c,
                };
                units += c.len_utf16();
                if units > limit {
                    break;
                }
                if matches!(c, '\\' | '|') {
                    self.buf.push('\\');
                }
                self.buf.push(c);
            }
        }
        self.buf.push('|');
    }

    /// Append an integer header field (the severity) and its `|` separator.
    pub fn header_int(&mut self, n: u8) {
        let _ = write!(self.buf, "{n}|");
    }

    fn key(&mut self, key: &str) {
        if self.first_pair {
            self.first_pair = false;
        } else {
            self.buf.push(' ');
        }
        self.buf.push_str(key);
        self.buf.push('=');
    }

    /// Append `key=value`, the value cut to `limit` UTF-16 units and escaped.
    pub fn text(&mut self, key: &str, value: &str, limit: usize) {
        self.key(key);
        let value = prefix_utf16(value, limit);
        // Copy the runs between special bytes whole: they are ASCII, so every cut is on a
        // character boundary.
        let mut start = 0;
        for (i, b) in value.bytes().enumerate() {
            let escaped = match b {
                b'\\' => "\\\\",
                b'=' => "\\=",
                b'\n' => "\\n",
                b'\r' => "\\r",
                _ => continue,
            };
            self.buf.push_str(value.get(start..i).unwrap_or_default());
            self.buf.push_str(escaped);
            start = i + 1;
        }
        self.buf.push_str(value.get(start..).unwrap_or_default());
    }

    /// Append `key=value` for a value that needs no escaping and has no length limit (numbers,
    /// IP and MAC addresses).
    pub fn plain(&mut self, key: &str, value: impl std::fmt::Display) {
        self.key(key);
        let _ = write!(self.buf, "{value}");
    }

    /// Append a custom field with its label, label first: `keyLabel=label key=value`.
    pub fn custom(&mut self, key: &str, label_key: &str, label: &str, value: &str, limit: usize) {
        self.text(label_key, label, LABEL_LIMIT);
        self.text(key, value, limit);
    }

    /// Like [`Line::custom`] for a number.
    pub fn custom_int(&mut self, key: &str, label_key: &str, label: &str, value: i64) {
        self.text(label_key, label, LABEL_LIMIT);
        self.plain(key, value);
    }

    /// The finished line, without a trailing newline.
    pub fn finish(self) -> Vec<u8> {
        self.buf.into_bytes()
    }
}

/// Length limit of the `cs*Label`, `cn*Label` and `c6a*Label` keys.
const LABEL_LIMIT: usize = 1023;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn header(v: &str, limit: usize) -> String {
        let mut l = Line::new(16);
        l.header(v, limit);
        String::from_utf8(l.finish()).unwrap()
    }

    fn ext(v: &str, limit: usize) -> String {
        let mut l = Line::new(16);
        l.text("k", v, limit);
        String::from_utf8(l.finish()).unwrap()
    }

    #[test]
    fn header_escaping() {
        assert_eq!(header(r"a|b\c=d", 63), r"CEF:0|a\|b\\c=d|");
        assert_eq!(header("a\r\nb\nc\rd", 63), "CEF:0|a b c d|");
        assert_eq!(header("", 63), "CEF:0||");
    }

    #[test]
    fn extension_escaping() {
        assert_eq!(ext(r"a|b\c=d", 63), r"CEF:0|k=a|b\\c\=d");
        assert_eq!(ext("a\r\nb", 63), r"CEF:0|k=a\r\nb");
    }

    #[test]
    fn truncation_counts_utf16_and_never_splits_escapes() {
        assert_eq!(prefix_utf16("héllo", 2), "hé");
        assert_eq!(prefix_utf16("a🦀b", 2), "a");
        assert_eq!(prefix_utf16("a🦀b", 3), "a🦀");
        // The cut is made on the value, then the kept part is escaped whole.
        assert_eq!(header(r"ab\|", 3), r"CEF:0|ab\\|");
        assert_eq!(ext(r"ab\=", 3), r"CEF:0|k=ab\\");
        // A line break counts as the one space it becomes.
        assert_eq!(header("a\r\nbc", 3), "CEF:0|a b|");
    }
}
