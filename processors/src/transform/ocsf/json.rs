//! A minimal streaming JSON writer for the OCSF transform.
//!
//! The transform writes every event straight into one pre-sized byte buffer instead of building a
//! `serde_json::Value` tree first: no per-field allocation, no map hashing, and the field order is
//! simply the order of the calls, which keeps the output deterministic. Strings are escaped exactly
//! like `serde_json` does, so `serde_json::to_vec(&serde_json::from_slice(out))` gives back the same
//! bytes (the tests rely on that to compare pretty-printed goldens byte for byte).

/// Writer state: the buffer and whether the next value in the current container needs a comma.
#[derive(Debug)]
pub(super) struct Json {
    buf: Vec<u8>,
    comma: bool,
}

/// Where an optional object was opened, to drop it again if nothing was written into it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    start: usize,
    inner: usize,
    comma: bool,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The bytes that need an escape inside a JSON string: control characters, `"` and `\`.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

impl Json {
    /// An empty writer with `capacity` bytes reserved, positioned inside a fresh top-level object.
    pub(super) fn object(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(b'{');
        Json { buf, comma: false }
    }

    /// Closes the top-level object and returns the bytes.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }

    /// `"key":<value>` with the value serialized by serde (canonical groups kept verbatim in
    /// `unmapped`). serde_json escapes strings exactly like this writer does.
    pub(super) fn serde<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        self.key(key);
        serde_json::to_writer(&mut self.buf, value)
    }

    #[inline]
    fn sep(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
    }

    /// Writes `"key":` for a key known to need no escaping (all static OCSF attribute names).
    #[inline]
    pub(super) fn key(&mut self, key: &str) {
        self.buf
            .extend_from_slice(if self.comma { b",\"" } else { b"\"" });
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.comma = true;
    }

    /// `"key":{` — the caller writes members and then calls [`Json::end_obj`].
    pub(super) fn obj(&mut self, key: &str) {
        self.key(key);
        self.buf.push(b'{');
        self.comma = false;
    }

    /// `"key":[` — the caller writes elements and then calls [`Json::end_arr`].
    pub(super) fn arr(&mut self, key: &str) {
        self.key(key);
        self.buf.push(b'[');
        self.comma = false;
    }

    /// `{` as an array element.
    pub(super) fn elem_obj(&mut self) {
        self.sep();
        self.buf.push(b'{');
        self.comma = false;
    }

    /// Closes an object.
    pub(super) fn end_obj(&mut self) {
        self.buf.push(b'}');
        self.comma = true;
    }

    /// Closes an array.
    pub(super) fn end_arr(&mut self) {
        self.buf.push(b']');
        self.comma = true;
    }

    /// Opens `"key":{` that is removed again by [`Json::end_opt_obj`] if it stays empty.
    pub(super) fn opt_obj(&mut self, key: &str) -> Mark {
        let start = self.buf.len();
        let comma = self.comma;
        self.obj(key);
        Mark {
            start,
            inner: self.buf.len(),
            comma,
        }
    }

    /// Closes an object opened with [`Json::opt_obj`], or removes it if nothing was written.
    pub(super) fn end_opt_obj(&mut self, mark: Mark) {
        if self.buf.len() == mark.inner {
            self.buf.truncate(mark.start);
            self.comma = mark.comma;
        } else {
            self.end_obj();
        }
    }

    /// `"key":"value"`.
    pub(super) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.escaped(value);
    }

    /// `"key":"value"` if there is a value.
    pub(super) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    /// `"key":123`.
    pub(super) fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        self.int_value(value);
    }

    /// `"key":123` if there is a value.
    pub(super) fn opt_int(&mut self, key: &str, value: Option<i64>) {
        if let Some(v) = value {
            self.int(key, v);
        }
    }

    /// `"key":true|false`.
    pub(super) fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// `"key":"<a>.<b>"`: an OCSF attribute path made of two static parts.
    pub(super) fn path(&mut self, key: &str, a: &str, b: &str) {
        self.key(key);
        self.buf.push(b'"');
        self.escape_body(a);
        self.buf.push(b'.');
        self.escape_body(b);
        self.buf.push(b'"');
    }

    /// `"key":"<a><sep><b>"` (e.g. `type_name`, `"<class>: <activity>"`).
    pub(super) fn str_joined(&mut self, key: &str, a: &str, sep: &str, b: &str) {
        self.key(key);
        self.buf.push(b'"');
        self.escape_body(a);
        self.escape_body(sep);
        self.escape_body(b);
        self.buf.push(b'"');
    }

    /// `"key":"value"` with a key that may need escaping (producer label names).
    pub(super) fn dyn_str(&mut self, key: &str, value: &str) {
        self.sep();
        self.escaped(key);
        self.buf.push(b':');
        self.escaped(value);
        self.comma = true;
    }

    /// A string array element.
    pub(super) fn elem_str(&mut self, value: &str) {
        self.sep();
        self.escaped(value);
        self.comma = true;
    }

    /// An integer array element.
    pub(super) fn elem_int(&mut self, value: i64) {
        self.sep();
        self.int_value(value);
        self.comma = true;
    }

    fn int_value(&mut self, value: i64) {
        // Hand-rolled itoa: `write!` through `fmt` is several times slower on this hot path.
        let mut tmp = [0u8; 20];
        let mut pos = tmp.len();
        let negative = value < 0;
        let mut n = value.unsigned_abs();
        loop {
            pos -= 1;
            if let Some(slot) = tmp.get_mut(pos) {
                *slot = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || pos == 0 {
                break;
            }
        }
        if negative {
            self.buf.push(b'-');
        }
        self.buf.extend_from_slice(tmp.get(pos..).unwrap_or(&[]));
    }

    fn escaped(&mut self, s: &str) {
        self.buf.push(b'"');
        self.escape_body(s);
        self.buf.push(b'"');
    }

    /// JSON string body with the escapes `serde_json` uses: `\"`, `\\`, `\b \t \n \f \r`, other
    /// control characters as `\u00XX`; everything else (including non-ASCII) as is.
    fn escape_body(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            // Eight bytes at a time while there is nothing to escape (most text).
            if let Some(chunk) = bytes.get(i..i + 8) {
                let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or([b'"'; 8]));
                if !needs_escape(word) {
                    i += 8;
                    continue;
                }
            }
            let b = bytes.get(i).copied().unwrap_or(b' ');
            i += 1;
            if !NEEDS_ESCAPE[usize::from(b)] {
                continue;
            }
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                0x0c => b"\\f",
                b'\r' => b"\\r",
                _ => b"",
            };
            self.buf
                .extend_from_slice(bytes.get(start..i - 1).unwrap_or(&[]));
            if esc.is_empty() {
                self.buf.extend_from_slice(b"\\u00");
                self.buf.push(HEX[usize::from(b >> 4)]);
                self.buf.push(HEX[usize::from(b & 0xf)]);
            } else {
                self.buf.extend_from_slice(esc);
            }
            start = i;
        }
        self.buf
            .extend_from_slice(bytes.get(start..).unwrap_or(&[]));
    }
}

/// Whether any of the eight bytes of `word` is a control character, `"` or `\` (the classic
/// "has a byte less than n" / "has a zero byte" bit tricks; exact, no false negatives).
const fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let q = word ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let bs = word ^ (ONES * b'\\' as u64);
    let backslash = bs.wrapping_sub(ONES) & !bs & HIGH;
    (control | quote | backslash) != 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn escapes_like_serde_json() {
        let nasty = "a\"b\\c\u{0}\u{1f}\u{8}\u{c}\n\r\t|=é😀\u{7f}\u{2028}";
        let mut w = Json::object(16);
        w.str("k", nasty);
        let out = w.finish();
        let expected = serde_json::to_vec(&serde_json::json!({ "k": nasty })).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[test]
    fn escapes_every_byte_at_every_position() {
        for special in (0u8..0x20).chain([b'"', b'\\', b'/', 0x7f, b'a']) {
            for pos in 0..20 {
                let mut s = "abcdefghijklmnopqrst".to_owned().into_bytes();
                s[pos] = special;
                let text = String::from_utf8(s).unwrap() + "é日🦀 tail";
                let mut w = Json::object(64);
                w.str("k", &text);
                let expected = serde_json::to_vec(&serde_json::json!({ "k": text })).unwrap();
                assert_eq!(w.finish(), expected, "byte {special:#x} at {pos}");
            }
        }
    }

    #[test]
    fn integers_and_empty_optional_objects() {
        let mut w = Json::object(16);
        w.int("min", i64::MIN);
        w.int("max", i64::MAX);
        w.int("zero", 0);
        let m = w.opt_obj("gone");
        w.end_opt_obj(m);
        w.arr("a");
        w.elem_int(-5);
        w.elem_str("x");
        w.end_arr();
        let m = w.opt_obj("kept");
        w.bool("b", true);
        w.end_opt_obj(m);
        let out = String::from_utf8(w.finish()).unwrap();
        assert_eq!(
            out,
            format!(
                "{{\"min\":{},\"max\":{},\"zero\":0,\"a\":[-5,\"x\"],\"kept\":{{\"b\":true}}}}",
                i64::MIN,
                i64::MAX
            )
        );
    }
}
