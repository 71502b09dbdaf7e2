//! Building `_bulk` requests: one `create` action per record (`_id` = event id).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::template::{sanitize_tenant, validate_index_name};
use super::ElasticsearchSink;
use crate::sink::{
    common_traceparent, gzip, pack, push_json_str, BuildResult, HttpRequest, Method, Outcome,
    SinkRecord,
};

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn rfc3339_ms(ms: i64) -> String {
    let dt: DateTime<Utc> = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    dt.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The index a record goes to.
///
/// # Errors
/// The rendered name is not a valid index name.
pub fn index_for(
    sink: &ElasticsearchSink,
    record: &SinkRecord,
    now_ms: i64,
) -> Result<String, String> {
    let tenant = record
        .tenant
        .as_deref()
        .and_then(sanitize_tenant)
        .unwrap_or_else(|| sink.default_tenant.clone());
    let name = sink.template.render(
        &tenant,
        record.format.as_str(),
        record.event_time_ms.unwrap_or(now_ms),
    );
    validate_index_name(&name).map(|()| name)
}

/// The document line (one line of JSON, no trailing newline).
///
/// # Errors
/// Why the payload cannot be a document (`invalid_payload`).
pub fn document(
    sink: &ElasticsearchSink,
    record: &SinkRecord,
    now_ms: i64,
) -> Result<Vec<u8>, String> {
    let ts = || rfc3339_ms(record.event_time_ms.unwrap_or(now_ms));
    if record.format.is_json() {
        let mut map: Map<String, Value> = match serde_json::from_slice::<Value>(&record.payload) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("payload is JSON but not an object".into()),
            Err(e) => return Err(format!("payload is not JSON: {e}")),
        };
        let mut changed = false;
        if sink.config.add_timestamp && !map.contains_key("@timestamp") {
            map.insert("@timestamp".to_string(), Value::String(ts()));
            changed = true;
        }
        let raw = record.payload.trim_ascii();
        if !changed && !raw.contains(&b'\n') && !raw.contains(&b'\r') {
            return Ok(raw.to_vec());
        }
        serde_json::to_vec(&map).map_err(|e| format!("cannot serialize the document: {e}"))
    } else {
        let text = std::str::from_utf8(&record.payload)
            .map_err(|e| format!("text payload is not UTF-8: {e}"))?
            .trim_end_matches(['\r', '\n']);
        let mut out = Vec::with_capacity(text.len() + 64);
        out.extend_from_slice(b"{\"@timestamp\":");
        push_json_str(&mut out, &ts());
        out.extend_from_slice(b",\"message\":");
        push_json_str(&mut out, text);
        out.push(b'}');
        Ok(out)
    }
}

/// The action line: `{"create":{"_index":"…","_id":"…"}}` (no `_id` without an event id: then
/// Elasticsearch generates one and re-sends are not idempotent).
pub fn action(index: &str, id: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + index.len());
    out.extend_from_slice(b"{\"create\":{\"_index\":");
    push_json_str(&mut out, index);
    if let Some(id) = id {
        out.extend_from_slice(b",\"_id\":");
        push_json_str(&mut out, id);
    }
    out.extend_from_slice(b"}}");
    out
}

/// The bulk requests for `batch`, split at `max_request_bytes`.
pub fn build(sink: &ElasticsearchSink, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
    let now_ms = millis(now);
    let max = sink.config.max_request_bytes.max(1);
    let mut rejected = Vec::new();
    let mut encoded: Vec<(usize, Vec<u8>)> = Vec::with_capacity(batch.len());
    for (i, record) in batch.iter().enumerate() {
        let index = match index_for(sink, record, now_ms) {
            Ok(ix) => ix,
            Err(e) => {
                rejected.push((i, Outcome::permanent("invalid_index", None, e)));
                continue;
            }
        };
        let doc = match document(sink, record, now_ms) {
            Ok(d) => d,
            Err(e) => {
                rejected.push((i, Outcome::permanent("invalid_payload", None, e)));
                continue;
            }
        };
        let mut pair = action(&index, record.event_id.as_deref());
        pair.push(b'\n');
        pair.extend_from_slice(&doc);
        pair.push(b'\n');
        if pair.len() > max {
            rejected.push((
                i,
                Outcome::permanent(
                    "payload_too_large",
                    None,
                    format!(
                        "bulk entry is {} bytes, more than max_request_bytes {max}",
                        pair.len()
                    ),
                ),
            ));
            continue;
        }
        encoded.push((i, pair));
    }
    let sizes: Vec<(usize, usize)> = encoded
        .iter()
        .enumerate()
        .map(|(pos, (_, b))| (pos, b.len()))
        .collect();
    let requests = pack(&sizes, max, usize::MAX, 0, 0)
        .into_iter()
        .map(|chunk| {
            let mut body = Vec::with_capacity(chunk.iter().map(|&p| encoded[p].1.len()).sum());
            let mut records = Vec::with_capacity(chunk.len());
            for &pos in &chunk {
                body.extend_from_slice(&encoded[pos].1);
                records.push(encoded[pos].0);
            }
            let mut headers = vec![(
                "Content-Type".to_string(),
                "application/x-ndjson".to_string(),
            )];
            if let Some(auth) = &sink.auth_header {
                headers.push(("Authorization".to_string(), auth.expose().to_string()));
            }
            if sink.config.gzip {
                body = gzip(&body);
                headers.push(("Content-Encoding".to_string(), "gzip".to_string()));
            }
            if let Some(tp) = common_traceparent(batch, &records) {
                headers.push(("traceparent".to_string(), tp.to_string()));
            }
            HttpRequest {
                method: Method::Post,
                url: sink.bulk_url.clone(),
                headers,
                body,
                records,
            }
        })
        .collect();
    BuildResult { requests, rejected }
}
