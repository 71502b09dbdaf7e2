//! Building Datadog Logs requests: one JSON entry per record, packed into arrays by Datadog's
//! count and size limits.

use serde_json::{Map, Value};

use super::{sanitize_tag_value, DatadogConfig, DatadogSink};
use crate::sink::event_fields::{
    cef_hostname, cef_severity, json_hostname, json_severity, Severity,
};
use crate::sink::{
    common_traceparent, gzip, pack, BuildResult, HttpRequest, Method, Outcome, SinkRecord,
};

/// Path of the v2 logs intake.
pub const LOGS_PATH: &str = "/api/v2/logs";
/// Header carrying the API key.
pub const API_KEY_HEADER: &str = "DD-API-KEY";

/// Attributes Datadog reads the log date from; when a document has one, secflow adds none.
const DATE_ATTRIBUTES: [&str; 3] = ["@timestamp", "timestamp", "date"];

/// The Datadog log `status` for a severity (the level shown and filtered on in the Log
/// Explorer): info → `info`, low → `notice`, medium → `warning`, high → `error`, critical →
/// `critical`.
pub fn datadog_status(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Low => "notice",
        Severity::Medium => "warning",
        Severity::High => "error",
        Severity::Critical => "critical",
    }
}

/// The `ddtags` value for a record: configured tags, then `tenant:<tenant>`.
fn ddtags(config: &DatadogConfig, record: &SinkRecord) -> Option<String> {
    let mut tags: Vec<String> = config.tags.iter().map(|t| t.trim().to_string()).collect();
    if let Some(t) = record.tenant.as_deref().filter(|t| !t.is_empty()) {
        tags.push(format!("tenant:{}", sanitize_tag_value(t)));
    }
    (!tags.is_empty()).then(|| tags.join(","))
}

/// One log entry (compact JSON, no line breaks); see the module documentation for its shape.
///
/// # Errors
/// Why the record cannot be a log entry (`invalid_payload`): JSON that is not an object, text
/// that is not UTF-8 or is empty.
pub fn encode_entry(config: &DatadogConfig, record: &SinkRecord) -> Result<Vec<u8>, String> {
    let mut entry = Map::new();
    let document: Option<Map<String, Value>>;
    let (host, severity, message): (Option<String>, Option<Severity>, Option<String>);
    if record.format.is_json() {
        let doc: Value = serde_json::from_slice(&record.payload)
            .map_err(|e| format!("payload is not JSON: {e}"))?;
        host = json_hostname(record.format, &doc).map(str::to_string);
        severity = json_severity(record.format, &doc);
        message = doc
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string);
        let Value::Object(map) = doc else {
            return Err("payload is JSON but not an object".to_string());
        };
        document = Some(map);
    } else {
        let text = std::str::from_utf8(&record.payload)
            .map_err(|e| format!("text payload is not UTF-8: {e}"))?
            .trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Err("text payload is empty".to_string());
        }
        host = cef_hostname(text);
        severity = cef_severity(text);
        message = Some(text.to_string());
        document = None;
    }

    entry.insert("ddsource".into(), Value::from(config.ddsource.trim()));
    if let Some(tags) = ddtags(config, record) {
        entry.insert("ddtags".into(), Value::from(tags));
    }
    if let Some(h) = host.or_else(|| config.hostname.clone()) {
        entry.insert("hostname".into(), Value::from(h));
    }
    if let Some(s) = &config.service {
        entry.insert("service".into(), Value::from(s.as_str()));
    }
    if let Some(s) = severity {
        entry.insert("status".into(), Value::from(datadog_status(s)));
    }
    if let Some(m) = message {
        entry.insert("message".into(), Value::from(m));
    }
    let has_date = document
        .as_ref()
        .is_some_and(|d| DATE_ATTRIBUTES.iter().any(|k| d.contains_key(*k)));
    if let (Some(ms), false) = (record.event_time_ms, has_date) {
        entry.insert("timestamp".into(), Value::from(ms));
    }

    let mut overridden = Map::new();
    for (key, value) in document.into_iter().flatten() {
        match entry.get(&key) {
            Some(ours) if *ours == value => {}
            Some(_) => {
                overridden.insert(key, value);
            }
            None if key == "secflow" => {
                overridden.insert(key, value);
            }
            None => {
                entry.insert(key, value);
            }
        }
    }

    let mut secflow = Map::new();
    if let Some(id) = &record.event_id {
        secflow.insert("event_id".into(), Value::from(id.as_str()));
    }
    if let Some(t) = &record.tenant {
        secflow.insert("tenant".into(), Value::from(t.as_str()));
    }
    secflow.insert("format".into(), Value::from(record.format.as_str()));
    if !overridden.is_empty() {
        secflow.insert("overridden".into(), Value::Object(overridden));
    }
    entry.insert("secflow".into(), Value::Object(secflow));
    // Serializing a Value to a Vec cannot fail; compact output has no line breaks.
    serde_json::to_vec(&Value::Object(entry)).map_err(|e| format!("cannot encode the entry: {e}"))
}

fn headers(sink: &DatadogSink, gzipped: bool) -> Vec<(String, String)> {
    let mut h = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            API_KEY_HEADER.to_string(),
            sink.api_key.expose().to_string(),
        ),
    ];
    if gzipped {
        h.push(("Content-Encoding".to_string(), "gzip".to_string()));
    }
    h
}

/// The requests for `batch`; entries over the entry limit are rejected (`payload_too_large`).
pub fn build(sink: &DatadogSink, batch: &[SinkRecord]) -> BuildResult {
    let config = &sink.config;
    let max_entry = config.max_entry_bytes;
    let max_request = config.max_request_bytes;
    let mut rejected = Vec::new();
    let mut encoded: Vec<(usize, Vec<u8>)> = Vec::with_capacity(batch.len());
    for (i, record) in batch.iter().enumerate() {
        match encode_entry(config, record) {
            Ok(e) if e.len() > max_entry || e.len() + 2 > max_request => rejected.push((
                i,
                Outcome::permanent(
                    "payload_too_large",
                    None,
                    format!(
                        "log entry is {} bytes, over the {} byte limit per entry \
                         (max_entry_bytes; Datadog truncates logs over 1 MB): dead-lettered \
                         instead of truncated",
                        e.len(),
                        max_entry.min(max_request.saturating_sub(2)),
                    ),
                ),
            )),
            Ok(e) => encoded.push((i, e)),
            Err(e) => rejected.push((i, Outcome::permanent("invalid_payload", None, e))),
        }
    }
    let sizes: Vec<(usize, usize)> = encoded
        .iter()
        .enumerate()
        .map(|(pos, (_, e))| (pos, e.len()))
        .collect();
    let requests = pack(&sizes, max_request, config.max_entries_per_request, 1, 2)
        .into_iter()
        .map(|chunk| {
            let records: Vec<usize> = chunk.iter().map(|&p| encoded[p].0).collect();
            let mut body = Vec::with_capacity(
                chunk.iter().map(|&p| encoded[p].1.len() + 1).sum::<usize>() + 2,
            );
            body.push(b'[');
            for (n, &p) in chunk.iter().enumerate() {
                if n > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&encoded[p].1);
            }
            body.push(b']');
            let mut headers = headers(sink, config.gzip);
            if let Some(tp) = common_traceparent(batch, &records) {
                headers.push(("traceparent".to_string(), tp.to_string()));
            }
            HttpRequest {
                method: Method::Post,
                url: sink.url.clone(),
                headers,
                body: if config.gzip { gzip(&body) } else { body },
                records,
            }
        })
        .collect();
    BuildResult { requests, rejected }
}

/// The half-open probe: an empty array posted to the intake with the key.
pub fn probe(sink: &DatadogSink) -> HttpRequest {
    HttpRequest {
        method: Method::Post,
        url: sink.url.clone(),
        headers: headers(sink, false),
        body: b"[]".to_vec(),
        records: Vec::new(),
    }
}
