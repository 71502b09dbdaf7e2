//! Building Sumo Logic requests: one line per record, grouped by header values, split by size.

use std::collections::HashMap;

use serde_json::Value;

use super::template::EventMeta;
use super::SumoLogicSink;
use crate::sink::event_fields::{
    cef_hostname, cef_severity, json_hostname, json_severity, Severity,
};
use crate::sink::{
    common_traceparent, gzip, pack, BuildResult, HttpRequest, Method, Outcome, SinkRecord,
};

/// Source category header.
pub const CATEGORY_HEADER: &str = "X-Sumo-Category";
/// Source name header.
pub const NAME_HEADER: &str = "X-Sumo-Name";
/// Source host header.
pub const HOST_HEADER: &str = "X-Sumo-Host";
/// Fields header (`name=value,…`).
pub const FIELDS_HEADER: &str = "X-Sumo-Fields";
/// Names the sending client in Sumo's collection status.
pub const CLIENT_HEADER: &str = "X-Sumo-Client";

/// One encoded line and what routing needs to know about its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line (no line break).
    pub bytes: Vec<u8>,
    /// The event's severity, if it says.
    pub severity: Option<Severity>,
    /// The event's host name, if it says.
    pub host: Option<String>,
}

/// The line for `record`: compact JSON for JSON payloads, the text for CEF.
///
/// # Errors
/// Why the record cannot be one line (`invalid_payload`): JSON that does not parse, text that
/// is not UTF-8, is empty, or has a line break inside.
pub fn encode_line(record: &SinkRecord) -> Result<Line, String> {
    if record.format.is_json() {
        let doc: Value = serde_json::from_slice(&record.payload)
            .map_err(|e| format!("payload is not JSON: {e}"))?;
        if doc.is_null() {
            return Err("payload is JSON null".to_string());
        }
        let raw = record.payload.trim_ascii();
        let bytes = if raw.contains(&b'\n') || raw.contains(&b'\r') {
            serde_json::to_vec(&doc).map_err(|e| format!("cannot encode the payload: {e}"))?
        } else {
            raw.to_vec()
        };
        Ok(Line {
            bytes,
            severity: json_severity(record.format, &doc),
            host: json_hostname(record.format, &doc).map(str::to_string),
        })
    } else {
        let text = std::str::from_utf8(&record.payload)
            .map_err(|e| format!("text payload is not UTF-8: {e}"))?
            .trim_end_matches(['\r', '\n']);
        if text.trim().is_empty() {
            return Err("text payload is empty".to_string());
        }
        if text.contains(['\n', '\r']) {
            return Err(
                "text payload has a line break inside: Sumo Logic would split it into several \
                 messages"
                    .to_string(),
            );
        }
        Ok(Line {
            bytes: text.as_bytes().to_vec(),
            severity: cef_severity(text),
            host: cef_hostname(text),
        })
    }
}

/// A field value fit for `X-Sumo-Fields`: `,` and `=` (the separators) become `_`.
fn field_value(v: &str) -> String {
    v.chars()
        .map(|c| if matches!(c, ',' | '=') { '_' } else { c })
        .collect()
}

/// The metadata headers of one event, in a fixed order: the grouping key of requests.
type HeaderSet = Vec<(String, String)>;

/// Records that share one [`HeaderSet`]: (index in the batch, line).
#[derive(Debug)]
struct Group {
    headers: HeaderSet,
    lines: Vec<(usize, Vec<u8>)>,
}

/// The metadata headers of one event.
fn header_set(sink: &SumoLogicSink, record: &SinkRecord, line: &Line) -> HeaderSet {
    let meta = EventMeta {
        tenant: record.tenant.as_deref(),
        severity: line.severity.map(Severity::as_str),
        format: record.format.as_str(),
        host: line.host.as_deref(),
    };
    let mut headers = Vec::with_capacity(4);
    if let Some(c) = sink.category_for(&meta, line.severity) {
        headers.push((CATEGORY_HEADER.to_string(), c));
    }
    if let Some(t) = &sink.source_name {
        headers.push((NAME_HEADER.to_string(), t.render(&meta)));
    }
    if let Some(t) = &sink.source_host {
        headers.push((HOST_HEADER.to_string(), t.render(&meta)));
    }
    if !sink.fields.is_empty() {
        let fields: Vec<String> = sink
            .fields
            .iter()
            .map(|(k, t)| format!("{k}={}", field_value(&t.render(&meta))))
            .collect();
        headers.push((FIELDS_HEADER.to_string(), fields.join(",")));
    }
    headers
}

/// The requests for `batch`: grouped by header values (groups in order of first appearance),
/// each group split to at most `max_request_bytes`.
pub fn build(sink: &SumoLogicSink, batch: &[SinkRecord]) -> BuildResult {
    let max = sink.config.max_request_bytes;
    let mut rejected = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<HeaderSet, usize> = HashMap::new();
    for (i, record) in batch.iter().enumerate() {
        let line = match encode_line(record) {
            Ok(l) => l,
            Err(e) => {
                rejected.push((i, Outcome::permanent("invalid_payload", None, e)));
                continue;
            }
        };
        if line.bytes.len() > max {
            rejected.push((
                i,
                Outcome::permanent(
                    "payload_too_large",
                    None,
                    format!(
                        "event is {} bytes, more than max_request_bytes {max} (Sumo Logic \
                         accepts at most 1 MB per request)",
                        line.bytes.len()
                    ),
                ),
            ));
            continue;
        }
        let headers = header_set(sink, record, &line);
        let g = *group_of.entry(headers.clone()).or_insert_with(|| {
            groups.push(Group {
                headers,
                lines: Vec::new(),
            });
            groups.len() - 1
        });
        groups[g].lines.push((i, line.bytes));
    }
    let mut requests = Vec::new();
    for Group {
        headers: meta_headers,
        lines,
    } in groups
    {
        let sizes: Vec<(usize, usize)> = lines
            .iter()
            .enumerate()
            .map(|(pos, (_, l))| (pos, l.len()))
            .collect();
        for chunk in pack(&sizes, max, usize::MAX, 1, 0) {
            let records: Vec<usize> = chunk.iter().map(|&p| lines[p].0).collect();
            let mut body =
                Vec::with_capacity(chunk.iter().map(|&p| lines[p].1.len() + 1).sum::<usize>());
            for (n, &p) in chunk.iter().enumerate() {
                if n > 0 {
                    body.push(b'\n');
                }
                body.extend_from_slice(&lines[p].1);
            }
            let mut headers = vec![
                (
                    "Content-Type".to_string(),
                    "text/plain; charset=utf-8".to_string(),
                ),
                (CLIENT_HEADER.to_string(), "secflow".to_string()),
            ];
            headers.extend(meta_headers.iter().cloned());
            if sink.config.gzip {
                headers.push(("Content-Encoding".to_string(), "gzip".to_string()));
            }
            if let Some(tp) = common_traceparent(batch, &records) {
                headers.push(("traceparent".to_string(), tp.to_string()));
            }
            requests.push(HttpRequest {
                method: Method::Post,
                url: sink.url.expose().to_string(),
                headers,
                body: if sink.config.gzip { gzip(&body) } else { body },
                records,
            });
        }
    }
    BuildResult { requests, rejected }
}
