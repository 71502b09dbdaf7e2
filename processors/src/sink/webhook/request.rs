//! Building webhook requests: one per event, or JSON arrays split by size and count.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use super::template::{json_payload, text};
use super::{signing, WebhookMode, WebhookSink};
use crate::sink::{
    common_traceparent, gzip, pack, push_json_str, BuildResult, HttpRequest, Outcome, SinkRecord,
};

/// Header naming the one event of an event-mode request (receivers can deduplicate on it).
pub const EVENT_ID_HEADER: &str = "X-Secflow-Event-Id";

/// The JSON element for one record (templated, or the default shape).
///
/// # Errors
/// Why the record cannot be encoded (`invalid_payload`).
pub fn element<'r>(sink: &WebhookSink, record: &'r SinkRecord) -> Result<Cow<'r, [u8]>, String> {
    // A JSON payload is the element as it is (checked, not copied into a buffer).
    if sink.template.is_none() && record.format.is_json() {
        return json_payload(record).map(Cow::Borrowed);
    }
    let mut out = Vec::with_capacity(record.payload.len() + 64);
    match &sink.template {
        Some(t) => t.render(record, &mut out)?,
        None => {
            out.push(b'{');
            if let Some(id) = &record.event_id {
                out.extend_from_slice(b"\"event_id\":");
                push_json_str(&mut out, id);
                out.push(b',');
            }
            if let Some(t) = &record.tenant {
                out.extend_from_slice(b"\"tenant\":");
                push_json_str(&mut out, t);
                out.push(b',');
            }
            out.extend_from_slice(b"\"message\":");
            push_json_str(&mut out, text(record)?);
            out.push(b'}');
        }
    }
    Ok(Cow::Owned(out))
}

/// Unix seconds of `now` (0 before the epoch).
pub fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The requests for `batch`, signed with timestamp `now`.
pub fn build(sink: &WebhookSink, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
    let config = &sink.config;
    let max = config.max_request_bytes.max(1);
    let ts = unix_seconds(now);
    let mut rejected = Vec::new();
    let mut encoded: Vec<(usize, Cow<'_, [u8]>)> = Vec::with_capacity(batch.len());
    for (i, record) in batch.iter().enumerate() {
        match element(sink, record) {
            Ok(e) if e.len() + 2 > max => rejected.push((
                i,
                Outcome::permanent(
                    "payload_too_large",
                    None,
                    format!(
                        "event is {} bytes, more than max_request_bytes {max}",
                        e.len()
                    ),
                ),
            )),
            Ok(e) => encoded.push((i, e)),
            Err(e) => rejected.push((i, Outcome::permanent("invalid_payload", None, e))),
        }
    }
    let chunks: Vec<Vec<usize>> = match config.mode {
        WebhookMode::Event => (0..encoded.len()).map(|p| vec![p]).collect(),
        WebhookMode::Batch => {
            let sizes: Vec<(usize, usize)> = encoded
                .iter()
                .enumerate()
                .map(|(pos, (_, b))| (pos, b.len()))
                .collect();
            pack(&sizes, max, config.max_events_per_request, 1, 2)
        }
    };
    let requests = chunks
        .into_iter()
        .map(|chunk| {
            let records: Vec<usize> = chunk.iter().map(|&p| encoded[p].0).collect();
            let body = match config.mode {
                WebhookMode::Event => chunk
                    .first()
                    .map(|&p| encoded[p].1.to_vec())
                    .unwrap_or_default(),
                WebhookMode::Batch => {
                    let mut b = Vec::with_capacity(
                        chunk.iter().map(|&p| encoded[p].1.len() + 1).sum::<usize>() + 2,
                    );
                    b.push(b'[');
                    for (n, &p) in chunk.iter().enumerate() {
                        if n > 0 {
                            b.push(b',');
                        }
                        b.extend_from_slice(&encoded[p].1);
                    }
                    b.push(b']');
                    b
                }
            };
            let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
            headers.extend(config.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
            if let Some(auth) = &sink.auth_header {
                headers.push(("Authorization".to_string(), auth.expose().to_string()));
            }
            if config.mode == WebhookMode::Event {
                if let Some(id) = records
                    .first()
                    .and_then(|&i| batch.get(i))
                    .and_then(|r| r.event_id.as_deref())
                {
                    headers.push((EVENT_ID_HEADER.to_string(), id.to_string()));
                }
            }
            if !sink.signing.is_empty() {
                headers.push((
                    config.signature_header.clone(),
                    signing::header_value(&sink.signing, ts, &body),
                ));
            }
            if let Some(tp) = common_traceparent(batch, &records) {
                headers.push(("traceparent".to_string(), tp.to_string()));
            }
            let body = if config.gzip {
                headers.push(("Content-Encoding".to_string(), "gzip".to_string()));
                gzip(&body)
            } else {
                body
            };
            HttpRequest {
                method: sink.method,
                url: config.url.clone(),
                headers,
                body,
                records,
            }
        })
        .collect();
    BuildResult { requests, rejected }
}
