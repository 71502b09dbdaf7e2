//! Classification helpers shared by the sinks: HTTP status → outcome, `Retry-After`, messages
//! (redacted, bounded), transport failures.
//!
//! The rules (issue 4, DESIGN.md "Delivery semantics"):
//!
//! | status | outcome | class |
//! | --- | --- | --- |
//! | 2xx | delivered | — |
//! | 408 | retry | `timeout` |
//! | 429 | retry | `rate_limited` |
//! | 5xx except 501 | retry | `server_error` |
//! | 501 | permanent | `not_implemented` |
//! | 413 | split (2+ records) or permanent | `payload_too_large` |
//! | 401, 403, 407 | permanent | `auth` |
//! | other 4xx | permanent | `rejected` |
//! | 1xx, 3xx, other | permanent | `unexpected_status` |
//!
//! A whole-request 5xx, 429, 401, 403 or 407 also means the sink is down (circuit breaker).

use std::time::{Duration, SystemTime};

use super::{Classification, HttpResponse, Outcome, RetryAfter, SinkDown, TransportError};
use crate::secret::Secret;

/// Longest message kept in an outcome (bytes, cut at a character boundary).
pub const MAX_MESSAGE_BYTES: usize = 512;

/// What a status means for the records of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx.
    Delivered,
    /// Transient: try again.
    Retry,
    /// The request (or record) will not be accepted as it is.
    Permanent,
}

/// The outcome kind for an HTTP status.
pub fn status_class(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Delivered,
        408 | 429 => StatusClass::Retry,
        501 => StatusClass::Permanent,
        500..=599 => StatusClass::Retry,
        _ => StatusClass::Permanent,
    }
}

/// The error class name for a (non-2xx) status.
pub fn error_class(status: u16) -> &'static str {
    match status {
        408 => "timeout",
        429 => "rate_limited",
        413 => "payload_too_large",
        401 | 403 | 407 => "auth",
        501 => "not_implemented",
        500..=599 => "server_error",
        400..=499 => "rejected",
        _ => "unexpected_status",
    }
}

/// Whether a whole-request status means the sink is down: 5xx, 429, 401, 403, 407.
pub fn is_sink_down_status(status: u16) -> bool {
    matches!(status, 500..=599 | 429 | 401 | 403 | 407)
}

/// Parses a `Retry-After` value: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, also the obsolete RFC 850 and asctime forms).
pub fn parse_retry_after(value: &str) -> Option<RetryAfter> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long numbers saturate rather than fail.
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(RetryAfter::Delay(Duration::from_secs(secs)));
    }
    httpdate::parse_http_date(v).ok().map(RetryAfter::At)
}

/// The response's `Retry-After`, if present and readable.
pub fn retry_after(response: &HttpResponse) -> Option<RetryAfter> {
    response.header("retry-after").and_then(parse_retry_after)
}

/// Formats `t` as an IMF-fixdate (for `Retry-After` in simulators and tests).
pub fn format_http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// A message fit for an outcome or a header: secrets replaced by `***`, control characters
/// replaced by spaces, at most [`MAX_MESSAGE_BYTES`].
pub fn message(text: &str, secrets: &[Secret]) -> String {
    let mut s = text.to_string();
    for secret in secrets {
        s = secret.redact(&s);
    }
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(s.trim(), MAX_MESSAGE_BYTES)
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A body snippet for messages: lossy UTF-8, bounded.
pub fn body_snippet(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_MESSAGE_BYTES * 2)];
    String::from_utf8_lossy(cut).into_owned()
}

/// Classifies a whole response by status alone (every record gets the same outcome):
/// the generic rules of this module's table. `detail` (e.g. a parsed vendor error) is used for
/// the message when given, else a body snippet.
pub fn by_status(
    response: &HttpResponse,
    records: usize,
    detail: Option<&str>,
    secrets: &[Secret],
) -> Classification {
    let status = response.status;
    let text = match detail {
        Some(d) => format!("HTTP {status}: {d}"),
        None => {
            let snippet = body_snippet(&response.body);
            if snippet.trim().is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {snippet}")
            }
        }
    };
    let msg = message(&text, secrets);
    let class = error_class(status);
    let sink_down = is_sink_down_status(status).then(|| SinkDown {
        class: class.to_string(),
        status: Some(status),
        message: msg.clone(),
    });
    if status == 413 {
        return too_large(records, msg);
    }
    let outcome = match status_class(status) {
        StatusClass::Delivered => Outcome::Delivered,
        StatusClass::Retry => Outcome::Retry {
            class: class.to_string(),
            status: Some(status),
            message: msg,
            retry_after: retry_after(response),
        },
        StatusClass::Permanent => Outcome::permanent(class, Some(status), msg),
    };
    Classification {
        outcomes: vec![outcome; records],
        sink_down,
        split: false,
        ack_reset: None,
    }
}

/// A 413 (or any "too large" answer) for a request of `records` records: split when there are
/// two or more, else the one record is permanent.
pub fn too_large(records: usize, message: String) -> Classification {
    if records >= 2 {
        Classification {
            outcomes: vec![Outcome::retry("payload_too_large", Some(413), message); records],
            split: true,
            ..Classification::default()
        }
    } else {
        Classification::uniform(
            Outcome::permanent("payload_too_large", Some(413), message),
            records,
        )
    }
}

/// The default reading of a transport failure: every record is retried and the sink counts as
/// down. `redact` removes the sink's secrets from the client's message.
pub fn transport_error(
    error: &TransportError,
    records: usize,
    redact: impl Fn(&str) -> String,
) -> Classification {
    let class = error.kind.class();
    let msg = message(&redact(&error.message), &[]);
    Classification {
        outcomes: vec![Outcome::retry(class, None, msg.clone()); records],
        sink_down: Some(SinkDown {
            class: class.to_string(),
            status: None,
            message: msg,
        }),
        split: false,
        ack_reset: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::TransportErrorKind;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn status_table() {
        for s in [200, 201, 204, 299] {
            assert_eq!(status_class(s), StatusClass::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(status_class(s), StatusClass::Retry, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422, 501, 301, 100] {
            assert_eq!(status_class(s), StatusClass::Permanent, "{s}");
        }
        assert!(is_sink_down_status(503));
        assert!(is_sink_down_status(429));
        assert!(is_sink_down_status(401));
        assert!(is_sink_down_status(403));
        assert!(!is_sink_down_status(400));
        assert!(!is_sink_down_status(404));
        assert_eq!(error_class(429), "rate_limited");
        assert_eq!(error_class(503), "server_error");
        assert_eq!(error_class(400), "rejected");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(" 120 "),
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        for v in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
        ] {
            assert_eq!(parse_retry_after(v), Some(RetryAfter::At(at)), "{v}");
        }
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(RetryAfter::Delay(Duration::from_secs(u64::MAX)))
        );
        assert_eq!(format_http_date(at), "Wed, 21 Oct 2015 07:28:00 GMT");
    }

    #[test]
    fn messages_are_redacted_cleaned_and_bounded() {
        let secret = Secret::new("tok-123");
        let m = message("bad token tok-123\nline2", &[secret]);
        assert_eq!(m, "bad token *** line2");
        let long = "é".repeat(1000);
        let m = message(&long, &[]);
        assert!(m.len() <= MAX_MESSAGE_BYTES);
        assert!(m.ends_with('…'));
    }

    #[test]
    fn by_status_generic_rules() {
        let c = by_status(&resp(503, &[("Retry-After", "7")], "busy"), 3, None, &[]);
        assert_eq!(c.outcomes.len(), 3);
        assert!(c.sink_down.is_some());
        match &c.outcomes[0] {
            Outcome::Retry {
                class,
                status,
                retry_after,
                message,
            } => {
                assert_eq!(class, "server_error");
                assert_eq!(*status, Some(503));
                assert_eq!(
                    *retry_after,
                    Some(RetryAfter::Delay(Duration::from_secs(7)))
                );
                assert_eq!(message, "HTTP 503: busy");
            }
            o => panic!("{o:?}"),
        }
        let c = by_status(&resp(400, &[], ""), 1, None, &[]);
        assert_eq!(
            c.outcomes,
            vec![Outcome::permanent("rejected", Some(400), "HTTP 400")]
        );
        assert!(c.sink_down.is_none());
        let c = by_status(&resp(413, &[], ""), 2, None, &[]);
        assert!(c.split);
        let c = by_status(&resp(413, &[], ""), 1, None, &[]);
        assert!(!c.split);
        assert_eq!(c.outcomes[0].class(), Some("payload_too_large"));
        let c = by_status(&resp(200, &[], "ok"), 2, None, &[]);
        assert_eq!(c.outcomes, vec![Outcome::Delivered; 2]);
        // Binary garbage never panics.
        let c = by_status(
            &HttpResponse {
                status: 502,
                headers: vec![],
                body: vec![0xff, 0xfe, 0, 1, 2],
            },
            1,
            None,
            &[],
        );
        assert_eq!(c.outcomes.len(), 1);
    }

    #[test]
    fn transport_errors_retry_and_mark_down() {
        let e = TransportError {
            kind: TransportErrorKind::Connect,
            message: "connection refused to http://u:pw@host".into(),
        };
        let c = transport_error(&e, 2, |m| m.replace("pw", "***"));
        assert_eq!(c.outcomes.len(), 2);
        assert_eq!(c.outcomes[0].class(), Some("connect"));
        assert!(c.sink_down.is_some());
        assert!(!format!("{c:?}").contains("pw@"));
    }
}
