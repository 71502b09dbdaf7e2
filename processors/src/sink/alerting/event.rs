//! One record as an alert sees it: the parsed payload, its normalised severity and host, and
//! field lookup by path for templates and resolution conditions.

use serde_json::Value;

use crate::sink::event_fields::{
    cef_extension, cef_header, cef_hostname, cef_severity, json_hostname, json_severity, Severity,
};
use crate::sink::SinkRecord;

/// The names under `secflow.` that every payload format answers (see [`AlertEvent::field`]).
pub const SECFLOW_FIELDS: [&str; 10] = [
    "tenant",
    "event_id",
    "format",
    "severity",
    "host",
    "rule_id",
    "rule_name",
    "message",
    "status",
    "time",
];

/// A record parsed for alerting.
#[derive(Debug, Clone)]
pub struct AlertEvent<'a> {
    record: &'a SinkRecord,
    body: Body,
    severity: Option<Severity>,
    host: Option<String>,
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Cef(String),
}

impl<'a> AlertEvent<'a> {
    /// Parses the record's payload.
    ///
    /// # Errors
    /// Why the payload cannot be read (`invalid_payload`): not JSON (JSON formats), not UTF-8 or
    /// empty (CEF).
    pub fn parse(record: &'a SinkRecord) -> Result<Self, String> {
        let (body, severity, host) = if record.format.is_json() {
            let doc: Value = serde_json::from_slice(&record.payload)
                .map_err(|e| format!("payload is not JSON: {e}"))?;
            if !doc.is_object() {
                return Err("payload is JSON but not an object".to_string());
            }
            let severity = json_severity(record.format, &doc);
            let host = json_hostname(record.format, &doc).map(str::to_string);
            (Body::Json(doc), severity, host)
        } else {
            let text = std::str::from_utf8(&record.payload)
                .map_err(|e| format!("text payload is not UTF-8: {e}"))?
                .trim_end_matches(['\r', '\n']);
            if text.trim().is_empty() {
                return Err("text payload is empty".to_string());
            }
            (
                Body::Cef(text.to_string()),
                cef_severity(text),
                cef_hostname(text),
            )
        };
        Ok(AlertEvent {
            record,
            body,
            severity,
            host,
        })
    }

    /// The record.
    pub fn record(&self) -> &SinkRecord {
        self.record
    }

    /// The event's severity, if it states one.
    pub fn severity(&self) -> Option<Severity> {
        self.severity
    }

    /// The host the event happened on, if it names one.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The event as JSON for `custom_details`/`details`: the document itself, or a CEF line as
    /// a string.
    pub fn document(&self) -> Value {
        match &self.body {
            Body::Json(v) => v.clone(),
            Body::Cef(line) => Value::from(line.as_str()),
        }
    }

    /// The value at `path`, as text; `None` when absent, null or empty.
    ///
    /// - `secflow.<name>` are secflow's normalised values, the same in every format: `tenant`,
    ///   `event_id`, `format`, `severity` (`info` … `critical`), `host`, `rule_id` (ECS and
    ///   canonical `rule.id`, OCSF `finding_info.analytic.uid`, CEF signature id; else the
    ///   event's action), `rule_name` (`rule.name`, OCSF analytic name or finding title, CEF
    ///   name; else the message), `message`, `status` (the producer's `secflow_status` label:
    ///   ECS/canonical `labels.secflow_status`, OCSF `unmapped.labels.secflow_status`), `time`
    ///   (the event time, RFC 3339).
    /// - any other path is looked up in the payload: dotted keys through JSON objects (a key
    ///   that itself contains dots, like an ECS label, is found too), numeric segments index
    ///   arrays; an array or object value is rendered as compact JSON, except an array of
    ///   scalars, rendered comma-separated. In a CEF line, `cef.vendor`, `cef.product`,
    ///   `cef.version`, `cef.signature_id`, `cef.name` and `cef.severity` are header fields and
    ///   any other name is an extension key (`dvchost`, `cs1`…).
    pub fn field(&self, path: &str) -> Option<String> {
        let value = match path.strip_prefix("secflow.") {
            Some(name) => self.secflow_field(name),
            None => self.payload_field(path),
        }?;
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_string())
    }

    fn secflow_field(&self, name: &str) -> Option<String> {
        let r = self.record;
        match name {
            "tenant" => r.tenant.clone(),
            "event_id" => r.event_id.clone(),
            "format" => Some(r.format.as_str().to_string()),
            "severity" => self.severity.map(|s| s.as_str().to_string()),
            "host" => self.host.clone(),
            "rule_id" => self.first(&[
                ("ecs", "rule.id"),
                ("canonical", "rule.id"),
                ("ocsf", "finding_info.analytic.uid"),
                ("cef", "cef.signature_id"),
                ("ecs", "event.action"),
                ("canonical", "action"),
                ("ocsf", "metadata.event_code"),
            ]),
            "rule_name" => self
                .first(&[
                    ("ecs", "rule.name"),
                    ("canonical", "rule.name"),
                    ("ocsf", "finding_info.analytic.name"),
                    ("ocsf", "finding_info.title"),
                    ("cef", "cef.name"),
                ])
                .or_else(|| self.secflow_field("message")),
            "message" => self.first(&[
                ("ecs", "message"),
                ("canonical", "message"),
                ("ocsf", "message"),
                ("cef", "msg"),
                ("cef", "cef.name"),
            ]),
            "status" => self.first(&[
                ("ecs", "labels.secflow_status"),
                ("canonical", "labels.secflow_status"),
                ("ocsf", "unmapped.labels.secflow_status"),
            ]),
            "time" => r.event_time_ms.and_then(rfc3339),
            _ => None,
        }
    }

    /// The first present path among those for this record's format.
    fn first(&self, candidates: &[(&str, &str)]) -> Option<String> {
        let format = self.record.format.as_str();
        candidates
            .iter()
            .filter(|(f, _)| *f == format)
            .filter_map(|(_, p)| self.payload_field(p))
            .find(|v| !v.trim().is_empty())
    }

    fn payload_field(&self, path: &str) -> Option<String> {
        match &self.body {
            Body::Json(doc) => {
                let segments: Vec<&str> = path.split('.').collect();
                lookup(doc, &segments).and_then(render_value)
            }
            Body::Cef(line) => cef_field(line, path),
        }
    }
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds, e.g. `2025-03-14T11:15:43.000Z`.
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Walks `segments` through objects (trying the longest dotted key first, so `labels` keys
/// with dots are found) and arrays (numeric segments).
fn lookup<'v>(value: &'v Value, segments: &[&str]) -> Option<&'v Value> {
    if segments.is_empty() {
        return Some(value);
    }
    match value {
        Value::Object(map) => (1..=segments.len()).rev().find_map(|n| {
            let key = segments[..n].join(".");
            map.get(&key).and_then(|v| lookup(v, &segments[n..]))
        }),
        Value::Array(items) => {
            let idx: usize = segments[0].parse().ok()?;
            items.get(idx).and_then(|v| lookup(v, &segments[1..]))
        }
        _ => None,
    }
}

fn render_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        Value::Array(items) if items.iter().all(|v| !v.is_array() && !v.is_object()) => {
            let parts: Vec<String> = items.iter().filter_map(render_value).collect();
            (!parts.is_empty()).then(|| parts.join(","))
        }
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

fn cef_field(line: &str, path: &str) -> Option<String> {
    let header_index = match path {
        "cef.version" => Some(0),
        "cef.vendor" => Some(1),
        "cef.product" => Some(2),
        "cef.device_version" => Some(3),
        "cef.signature_id" => Some(4),
        "cef.name" => Some(5),
        "cef.severity" => Some(6),
        _ => None,
    };
    match header_index {
        Some(i) => {
            let (header, _) = cef_header(line)?;
            let v = header.get(i)?.clone();
            // The first field is `CEF:0`: the version is what follows the colon.
            Some(if i == 0 {
                v.trim_start_matches("CEF:").to_string()
            } else {
                v
            })
        }
        None => cef_extension(line, path),
    }
}
