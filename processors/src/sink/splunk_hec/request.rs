//! Building HEC requests: the event batch, the ack poll, the health probe.

use std::collections::BTreeMap;

use super::{HecConfig, SplunkHecSink};
use crate::sink::{
    common_traceparent, gzip, pack, push_json_str, AckToken, BuildResult, HttpRequest, Method,
    Outcome, SinkRecord,
};

/// Path of the JSON event endpoint.
pub const EVENT_PATH: &str = "/services/collector/event";
/// Path of the acknowledgement endpoint.
pub const ACK_PATH: &str = "/services/collector/ack";
/// Path of the health endpoint.
pub const HEALTH_PATH: &str = "/services/collector/health/1.0";
/// Header carrying the channel GUID.
pub const CHANNEL_HEADER: &str = "X-Splunk-Request-Channel";
/// Most `ackId`s asked about in one poll request.
pub const MAX_ACKS_PER_POLL: usize = 1_000;

/// HEC `time`: seconds since the epoch with a millisecond fraction, e.g. `1700000000.123`.
pub fn format_time(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// One event object: `{"time":…,"host":…,"source":…,"sourcetype":…,"index":…,"event":…,
/// "fields":{…}}` (absent settings left out). JSON payloads are embedded as JSON (checked, and
/// re-serialized compactly only when they contain line breaks), CEF lines as a string.
///
/// # Errors
/// Why the record cannot be sent at all (`invalid_payload`).
pub fn encode_event(config: &HecConfig, record: &SinkRecord) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(record.payload.len() + 256);
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, k: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        push_json_str(out, k);
        out.push(b':');
    };
    if let Some(ms) = record.event_time_ms {
        key(&mut out, "time");
        out.extend_from_slice(format_time(ms).as_bytes());
    }
    for (k, v) in [
        ("host", &config.host),
        ("source", &config.source),
        ("sourcetype", &config.sourcetype),
        ("index", &config.index),
    ] {
        if let Some(v) = v {
            key(&mut out, k);
            push_json_str(&mut out, v);
        }
    }
    key(&mut out, "event");
    if record.format.is_json() {
        let value: serde_json::Value = serde_json::from_slice(&record.payload)
            .map_err(|e| format!("payload is not JSON: {e}"))?;
        match &value {
            serde_json::Value::Null => return Err("payload is JSON null".into()),
            serde_json::Value::String(s) if s.is_empty() => {
                return Err("payload is an empty string".into())
            }
            _ => {}
        }
        let raw = record.payload.trim_ascii();
        if raw.contains(&b'\n') || raw.contains(&b'\r') {
            // serde_json::Value to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, &value);
        } else {
            out.extend_from_slice(raw);
        }
    } else {
        let text = std::str::from_utf8(&record.payload)
            .map_err(|e| format!("text payload is not UTF-8: {e}"))?;
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Err("text payload is empty".into());
        }
        push_json_str(&mut out, text);
    }
    let mut fields: BTreeMap<&str, &str> = config
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(t) = &record.tenant {
        fields.insert("tenant", t);
    }
    if let Some(id) = &record.event_id {
        fields.insert("event_id", id);
    }
    if !fields.is_empty() {
        key(&mut out, "fields");
        out.push(b'{');
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(&mut out, k);
            out.push(b':');
            push_json_str(&mut out, v);
        }
        out.push(b'}');
    }
    out.push(b'}');
    Ok(out)
}

/// Headers every HEC request carries: auth, channel, cookies.
fn base_headers(
    sink: &SplunkHecSink,
    channel: &str,
    cookie: Option<String>,
) -> Vec<(String, String)> {
    let mut h = vec![
        (
            "Authorization".to_string(),
            format!("Splunk {}", sink.token.expose()),
        ),
        ("Content-Type".to_string(), "application/json".to_string()),
        (CHANNEL_HEADER.to_string(), channel.to_string()),
    ];
    if let Some(c) = cookie {
        h.push(("Cookie".to_string(), c));
    }
    h
}

/// The event requests for `batch` (events joined by `\n`, split at `max_request_bytes`).
pub fn build(sink: &SplunkHecSink, batch: &[SinkRecord]) -> BuildResult {
    let config = &sink.config;
    let max = config.max_request_bytes.max(1);
    let mut rejected = Vec::new();
    let mut encoded: Vec<(usize, Vec<u8>)> = Vec::with_capacity(batch.len());
    for (i, record) in batch.iter().enumerate() {
        match encode_event(config, record) {
            Ok(bytes) if bytes.len() > max => rejected.push((
                i,
                Outcome::permanent(
                    "payload_too_large",
                    None,
                    format!(
                        "event is {} bytes, more than max_request_bytes {max}",
                        bytes.len()
                    ),
                ),
            )),
            Ok(bytes) => encoded.push((i, bytes)),
            Err(reason) => rejected.push((i, Outcome::permanent("invalid_payload", None, reason))),
        }
    }
    let sizes: Vec<(usize, usize)> = encoded
        .iter()
        .enumerate()
        .map(|(pos, (_, b))| (pos, b.len()))
        .collect();
    let (channel, cookie) = sink.channel_and_cookie();
    let url = format!("{}{EVENT_PATH}", sink.base);
    let requests = pack(&sizes, max, usize::MAX, 1, 0)
        .into_iter()
        .map(|chunk| {
            let mut body = Vec::with_capacity(chunk.iter().map(|&p| encoded[p].1.len() + 1).sum());
            let mut records = Vec::with_capacity(chunk.len());
            for (n, &pos) in chunk.iter().enumerate() {
                if n > 0 {
                    body.push(b'\n');
                }
                body.extend_from_slice(&encoded[pos].1);
                records.push(encoded[pos].0);
            }
            let mut headers = base_headers(sink, &channel, cookie.clone());
            if config.gzip {
                body = gzip(&body);
                headers.push(("Content-Encoding".to_string(), "gzip".to_string()));
            }
            if let Some(tp) = common_traceparent(batch, &records) {
                headers.push(("traceparent".to_string(), tp.to_string()));
            }
            HttpRequest {
                method: Method::Post,
                url: url.clone(),
                headers,
                body,
                records,
            }
        })
        .collect();
    BuildResult { requests, rejected }
}

/// Ack poll requests: one per channel (at most [`MAX_ACKS_PER_POLL`] ids each), in the order
/// the channels first appear in `pending`.
pub fn ack_poll(sink: &SplunkHecSink, pending: &[AckToken]) -> Vec<HttpRequest> {
    let mut by_channel: Vec<(&str, Vec<u64>)> = Vec::new();
    for t in pending {
        match by_channel.iter_mut().find(|(c, _)| *c == t.channel) {
            Some((_, ids)) => ids.push(t.id),
            None => by_channel.push((&t.channel, vec![t.id])),
        }
    }
    let (_, cookie) = sink.channel_and_cookie();
    let mut out = Vec::new();
    for (channel, mut ids) in by_channel {
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(MAX_ACKS_PER_POLL) {
            let body = serde_json::json!({ "acks": chunk });
            out.push(HttpRequest {
                method: Method::Post,
                url: format!("{}{ACK_PATH}?channel={}", sink.base, query_escape(channel)),
                headers: base_headers(sink, channel, cookie.clone()),
                body: body.to_string().into_bytes(),
                records: Vec::new(),
            });
        }
    }
    out
}

/// `GET /services/collector/health/1.0` (no token: it is not needed and not worth exposing).
pub fn health(sink: &SplunkHecSink) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: format!("{}{HEALTH_PATH}", sink.base),
        headers: Vec::new(),
        body: Vec::new(),
        records: Vec::new(),
    }
}

/// Percent-encodes everything but unreserved characters (channels are GUIDs, but be safe).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
