//! Syslog framing of a CEF line, for the syslog sink: RFC 5424 and RFC 3164 (BSD) headers, and
//! RFC 6587 octet counting for TCP. Pure functions of their arguments.
//!
//! The CEF line already holds no CR or LF (see [`super::to_cef`]), so one frame is one line.
//! Header fields that syslog restricts to printable US-ASCII (host name, app name) are
//! sanitised: every other character becomes `_`, and they are cut to the RFC's length. The
//! RFC 5424 MSG is written without a BOM: receivers detect CEF by the `CEF:` at the start of
//! MSG, and a BOM in front breaks that.

use chrono::{DateTime, Utc};

use crate::event::{format_rfc3339, Severity};

/// Syslog facility of every frame: 10, security/authorization (authpriv), the facility meant
/// for security messages that may carry private data.
pub const SYSLOG_FACILITY: u8 = 10;

/// Syslog severity of a canonical severity: critical → 2 Critical, high → 3 Error, medium →
/// 4 Warning, low → 5 Notice, info → 6 Informational.
pub fn syslog_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// The PRI value of a frame: facility × 8 + syslog severity (RFC 5424 §6.2.1).
pub fn syslog_pri(facility: u8, syslog_severity: u8) -> u8 {
    facility.min(23) * 8 + syslog_severity.min(7)
}

fn push_pri(out: &mut Vec<u8>, pri: u8) {
    out.push(b'<');
    out.extend_from_slice(pri.to_string().as_bytes());
    out.push(b'>');
}

fn default_pri(severity: Severity) -> u8 {
    syslog_pri(SYSLOG_FACILITY, syslog_severity(severity))
}

/// `s` as PRINTUSASCII (`!`..`~`), other characters replaced by `_`, at most `max` characters;
/// `-` (the NILVALUE) if empty.
fn push_printable(out: &mut Vec<u8>, s: &str, max: usize) {
    let mut n = 0;
    for c in s.chars().take(max) {
        let b = if c.is_ascii_graphic() { c as u8 } else { b'_' };
        out.push(b);
        n += 1;
    }
    if n == 0 {
        out.push(b'-');
    }
}

/// An RFC 5424 frame: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - MSG`, timestamp in UTC with
/// milliseconds (`-` if `ts_ms` is out of range), host name up to 255 and app name up to 48
/// printable ASCII characters, no PROCID, MSGID or structured data, MSG = `line` (no BOM).
pub fn frame_rfc5424(
    line: &[u8],
    host: &str,
    app: &str,
    ts_ms: i64,
    severity: Severity,
) -> Vec<u8> {
    frame_rfc5424_pri(line, host, app, ts_ms, default_pri(severity))
}

/// [`frame_rfc5424`] with a given PRI (see [`syslog_pri`]): for senders whose facility is
/// configurable (the syslog sink).
pub fn frame_rfc5424_pri(line: &[u8], host: &str, app: &str, ts_ms: i64, pri: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 96);
    push_pri(&mut out, pri);
    out.extend_from_slice(b"1 ");
    match format_rfc3339(ts_ms) {
        Some(ts) => out.extend_from_slice(ts.as_bytes()),
        None => out.push(b'-'),
    }
    out.push(b' ');
    push_printable(&mut out, host, 255);
    out.push(b' ');
    push_printable(&mut out, app, 48);
    out.extend_from_slice(b" - - - ");
    out.extend_from_slice(line);
    out
}

/// An RFC 3164 frame: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`, timestamp in UTC (day padded
/// with a space, e.g. `Mar  4`; left out if `ts_ms` is out of range), host name as printable
/// ASCII, TAG = `app` cut to 32 characters with anything but ASCII letters, digits, `-`, `_`
/// and `.` replaced by `_`.
pub fn frame_rfc3164(
    line: &[u8],
    host: &str,
    app: &str,
    ts_ms: i64,
    severity: Severity,
) -> Vec<u8> {
    frame_rfc3164_pri(line, host, app, ts_ms, default_pri(severity))
}

/// [`frame_rfc3164`] with a given PRI (see [`syslog_pri`]).
pub fn frame_rfc3164_pri(line: &[u8], host: &str, app: &str, ts_ms: i64, pri: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 80);
    push_pri(&mut out, pri);
    if let Some(t) = DateTime::<Utc>::from_timestamp_millis(ts_ms) {
        out.extend_from_slice(t.format("%b %e %H:%M:%S ").to_string().as_bytes());
    }
    push_printable(&mut out, host, 255);
    out.push(b' ');
    let mut tag = 0;
    for c in app.chars().take(32) {
        let b = if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c as u8
        } else {
            b'_'
        };
        out.push(b);
        tag += 1;
    }
    if tag == 0 {
        out.push(b'-');
    }
    out.extend_from_slice(b": ");
    out.extend_from_slice(line);
    out
}

/// RFC 6587 octet counting (syslog over TCP): the frame's length in bytes, a space, the frame.
pub fn octet_count(frame: &[u8]) -> Vec<u8> {
    let len = frame.len().to_string();
    let mut out = Vec::with_capacity(len.len() + 1 + frame.len());
    out.extend_from_slice(len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(frame);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const LINE: &[u8] = b"CEF:0|V|P|1|sig|name|5|rt=1";
    // 2025-03-04T05:06:07.089Z
    const TS: i64 = 1_741_064_767_089;

    #[test]
    fn rfc5424_frame() {
        let f = frame_rfc5424(LINE, "host-1.example.com", "secflow", TS, Severity::Medium);
        assert_eq!(
            String::from_utf8(f).unwrap(),
            "<84>1 2025-03-04T05:06:07.089Z host-1.example.com secflow - - - CEF:0|V|P|1|sig|name|5|rt=1"
        );
    }

    #[test]
    fn rfc5424_sanitises_header_fields() {
        let f = frame_rfc5424(LINE, "hôst name", "", TS, Severity::Critical);
        let s = String::from_utf8(f).unwrap();
        assert!(
            s.starts_with("<82>1 2025-03-04T05:06:07.089Z h_st_name - - - - CEF:0|"),
            "{s}"
        );
        let long = "h".repeat(300);
        let f = frame_rfc5424(LINE, &long, &"a".repeat(60), TS, Severity::Info);
        let s = String::from_utf8(f).unwrap();
        let fields: Vec<&str> = s.splitn(5, ' ').collect();
        assert_eq!(fields[2].len(), 255);
        assert_eq!(fields[3].len(), 48);
        assert!(s.starts_with("<86>"));
        // Out of range time: NILVALUE.
        let f = frame_rfc5424(LINE, "h", "a", i64::MAX, Severity::Low);
        assert!(String::from_utf8(f)
            .unwrap()
            .starts_with("<85>1 - h a - - - CEF:0|"));
    }

    #[test]
    fn rfc3164_frame() {
        let f = frame_rfc3164(LINE, "host-1", "secflow", TS, Severity::High);
        assert_eq!(
            String::from_utf8(f).unwrap(),
            "<83>Mar  4 05:06:07 host-1 secflow: CEF:0|V|P|1|sig|name|5|rt=1"
        );
        let f = frame_rfc3164(LINE, "h", "sec flow/ä", 1_700_000_000_000, Severity::Info);
        assert_eq!(
            String::from_utf8(f).unwrap(),
            "<86>Nov 14 22:13:20 h sec_flow__: CEF:0|V|P|1|sig|name|5|rt=1"
        );
        let f = frame_rfc3164(LINE, "", "", i64::MIN, Severity::Info);
        assert_eq!(
            String::from_utf8(f).unwrap(),
            "<86>- -: CEF:0|V|P|1|sig|name|5|rt=1"
        );
    }

    #[test]
    fn frames_with_a_given_pri() {
        assert_eq!(syslog_pri(16, 3), 131);
        assert_eq!(syslog_pri(99, 99), 191, "clamped to local7.debug");
        let f = frame_rfc5424_pri(LINE, "h", "a", TS, syslog_pri(20, 4));
        assert!(f.starts_with(b"<164>1 2025-03-04T05:06:07.089Z h a - - - CEF:0|"));
        let f = frame_rfc3164_pri(LINE, "h", "a", TS, 0);
        assert!(f.starts_with(b"<0>Mar  4 05:06:07 h a: CEF:0|"));
    }

    #[test]
    fn octet_counting_counts_bytes() {
        assert_eq!(octet_count(b"abc"), b"3 abc");
        assert_eq!(octet_count("é".as_bytes()), "2 é".as_bytes());
        assert_eq!(octet_count(b""), b"0 ");
        let frame = frame_rfc5424(LINE, "h", "a", TS, Severity::Info);
        let counted = octet_count(&frame);
        let (len, rest) = counted.split_at(counted.iter().position(|b| *b == b' ').unwrap());
        assert_eq!(
            std::str::from_utf8(len).unwrap().parse::<usize>().unwrap(),
            rest.len() - 1
        );
    }
}
