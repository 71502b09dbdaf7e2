//! What a chat message shows about one event, read from any payload format (ECS, OCSF,
//! canonical JSON, CEF): title, severity, host, user, both ends of a connection, rule, tenant,
//! time, message. Templates look values up here, by a normalised name that works for every
//! format (`rule.id`, `host.name`, …) or by the payload's own field path.

use serde_json::Value;

use crate::event::parse_rfc3339;
use crate::sink::event_fields::{
    cef_extension, cef_header, cef_hostname, cef_severity, json_hostname, json_severity, Severity,
};
use crate::sink::{PayloadFormat, SinkRecord};

/// The title of an event that names neither a rule nor a message.
pub const UNTITLED: &str = "Security event";

/// The fields a chat message shows about one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Normalised severity, when the event says.
    pub severity: Option<Severity>,
    /// Headline: the rule name, else the event's message, else its action, else
    /// [`UNTITLED`].
    pub title: String,
    /// Detection rule id.
    pub rule_id: Option<String>,
    /// Detection rule name.
    pub rule_name: Option<String>,
    /// The host the event happened on.
    pub host: Option<String>,
    /// The user involved.
    pub user: Option<String>,
    /// Source end of a connection: `ip[:port]` and the host name if there is one.
    pub source: Option<String>,
    /// Destination end of a connection, like `source`.
    pub destination: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Event time, epoch milliseconds.
    pub time_ms: Option<i64>,
    /// The event's own message.
    pub message: Option<String>,
    /// Event id.
    pub event_id: Option<String>,
    /// Payload format.
    pub format: PayloadFormat,
    doc: Doc,
}

#[derive(Debug, Clone, PartialEq)]
enum Doc {
    Json(Value),
    Cef(String),
}

/// A non-empty trimmed string (numbers and booleans as text) at `pointer`.
fn text_at(doc: &Value, pointer: &str) -> Option<String> {
    scalar_text(doc.pointer(pointer)?)
}

fn scalar_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        // A list of scalars (ECS `event.category`, `related.ip`) reads as `a, b`.
        Value::Array(items) => items
            .iter()
            .filter_map(scalar_text)
            .collect::<Vec<_>>()
            .join(", "),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// The first of `pointers` that has a value.
fn first_text(doc: &Value, pointers: &[&str]) -> Option<String> {
    pointers.iter().find_map(|p| text_at(doc, p))
}

/// `ip:port` (`[ip]:port` for IPv6), with ` (name)` when a host name other than the address is
/// known.
pub fn endpoint(
    addr: Option<String>,
    port: Option<String>,
    name: Option<String>,
) -> Option<String> {
    let base = match (addr, &name) {
        (Some(a), _) => a,
        (None, Some(n)) => n.clone(),
        (None, None) => return None,
    };
    let mut out = match port {
        Some(p) if base.contains(':') => format!("[{base}]:{p}"),
        Some(p) => format!("{base}:{p}"),
        None => base.clone(),
    };
    if let Some(n) = name.filter(|n| *n != base) {
        out.push_str(&format!(" ({n})"));
    }
    Some(out)
}

fn opt_nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Alert {
    /// Reads `record`.
    ///
    /// # Errors
    /// Why the payload cannot be read: JSON that does not parse or is not an object, a text
    /// payload that is not UTF-8 or is empty.
    pub fn from_record(record: &SinkRecord) -> Result<Alert, String> {
        let mut alert = if record.format.is_json() {
            let doc: Value = serde_json::from_slice(&record.payload)
                .map_err(|e| format!("payload is not JSON: {e}"))?;
            if !doc.is_object() {
                return Err("payload is not a JSON object".to_string());
            }
            Self::from_json(record.format, doc)
        } else {
            let text = std::str::from_utf8(&record.payload)
                .map_err(|e| format!("text payload is not UTF-8: {e}"))?
                .trim();
            if text.is_empty() {
                return Err("text payload is empty".to_string());
            }
            Self::from_cef(text)
        };
        // The record's own metadata (from the transform stage's headers) wins over the payload.
        if let Some(id) = opt_nonempty(record.event_id.as_deref()) {
            alert.event_id = Some(id);
        }
        if let Some(t) = opt_nonempty(record.tenant.as_deref()) {
            alert.tenant = Some(t);
        }
        if record.event_time_ms.is_some() {
            alert.time_ms = record.event_time_ms;
        }
        Ok(alert)
    }

    fn blank(format: PayloadFormat, doc: Doc) -> Alert {
        Alert {
            severity: None,
            title: String::new(),
            rule_id: None,
            rule_name: None,
            host: None,
            user: None,
            source: None,
            destination: None,
            tenant: None,
            time_ms: None,
            message: None,
            event_id: None,
            format,
            doc,
        }
    }

    fn from_json(format: PayloadFormat, doc: Value) -> Alert {
        let mut a = Alert::blank(format, Doc::Json(Value::Null));
        a.severity = json_severity(format, &doc);
        a.host = json_hostname(format, &doc).map(str::to_string);
        a.message = text_at(&doc, "/message");
        let action;
        match format {
            PayloadFormat::Ecs => {
                a.event_id = text_at(&doc, "/event/id");
                a.rule_id = text_at(&doc, "/rule/id");
                a.rule_name = text_at(&doc, "/rule/name");
                a.user = text_at(&doc, "/user/name");
                a.source = endpoint(
                    first_text(&doc, &["/source/ip", "/source/address"]),
                    text_at(&doc, "/source/port"),
                    text_at(&doc, "/source/domain"),
                );
                a.destination = endpoint(
                    first_text(&doc, &["/destination/ip", "/destination/address"]),
                    text_at(&doc, "/destination/port"),
                    text_at(&doc, "/destination/domain"),
                );
                a.tenant = text_at(&doc, "/organization/id");
                a.time_ms = text_at(&doc, "/@timestamp").and_then(|t| parse_rfc3339(&t).ok());
                action = text_at(&doc, "/event/action");
            }
            PayloadFormat::Ocsf => {
                a.event_id = first_text(&doc, &["/metadata/uid", "/finding_info/uid"]);
                a.rule_id = text_at(&doc, "/finding_info/analytic/uid");
                a.rule_name = first_text(
                    &doc,
                    &["/finding_info/analytic/name", "/finding_info/title"],
                );
                a.user = first_text(
                    &doc,
                    &["/actor/user/name", "/user/name", "/evidences/0/user/name"],
                );
                let end = |prefixes: &[&str]| {
                    prefixes.iter().find_map(|p| {
                        endpoint(
                            text_at(&doc, &format!("{p}/ip")),
                            text_at(&doc, &format!("{p}/port")),
                            text_at(&doc, &format!("{p}/hostname")),
                        )
                    })
                };
                a.source = end(&["/src_endpoint", "/evidences/0/src_endpoint"]);
                a.destination = end(&["/dst_endpoint", "/evidences/0/dst_endpoint"]);
                a.tenant = text_at(&doc, "/metadata/tenant_uid");
                a.time_ms = doc.get("time").and_then(Value::as_i64);
                action = first_text(
                    &doc,
                    &["/finding_info/title", "/activity_name", "/class_name"],
                );
            }
            PayloadFormat::Canonical | PayloadFormat::Cef => {
                a.event_id = text_at(&doc, "/event_id");
                a.rule_id = text_at(&doc, "/rule/id");
                a.rule_name = text_at(&doc, "/rule/name");
                a.user = text_at(&doc, "/user/name");
                a.source = endpoint(
                    text_at(&doc, "/network/src_ip"),
                    text_at(&doc, "/network/src_port"),
                    text_at(&doc, "/network/src_hostname"),
                );
                a.destination = endpoint(
                    text_at(&doc, "/network/dst_ip"),
                    text_at(&doc, "/network/dst_port"),
                    text_at(&doc, "/network/dst_hostname"),
                );
                a.tenant = text_at(&doc, "/tenant");
                a.time_ms = match doc.get("event_time") {
                    Some(Value::Number(n)) => n.as_i64(),
                    Some(Value::String(s)) => parse_rfc3339(s).ok(),
                    _ => None,
                };
                action = text_at(&doc, "/action");
            }
        }
        a.title = a
            .rule_name
            .clone()
            .or_else(|| a.message.clone())
            .or(action)
            .unwrap_or_else(|| UNTITLED.to_string());
        a.doc = Doc::Json(doc);
        a
    }

    fn from_cef(line: &str) -> Alert {
        let mut a = Alert::blank(PayloadFormat::Cef, Doc::Cef(line.to_string()));
        let ext = |k: &str| cef_extension(line, k).filter(|v| !v.trim().is_empty());
        if let Some((header, _)) = cef_header(line) {
            a.rule_id = header.get(4).and_then(|s| opt_nonempty(Some(s)));
            a.rule_name = header.get(5).and_then(|s| opt_nonempty(Some(s)));
        }
        a.severity = cef_severity(line);
        a.host = cef_hostname(line);
        a.user = ext("suser").or_else(|| ext("duser"));
        a.source = endpoint(ext("src"), ext("spt"), ext("shost"));
        a.destination = endpoint(ext("dst"), ext("dpt"), ext("dhost"));
        a.event_id = ext("externalId");
        a.time_ms = ext("rt").and_then(|t| t.trim().parse::<i64>().ok());
        a.message = ext("msg");
        // secflow's CEF carries the tenant in a labelled custom string.
        a.tenant = (1..=6).find_map(|n| {
            let label = ext(&format!("cs{n}Label"))?;
            label
                .eq_ignore_ascii_case("tenant")
                .then(|| ext(&format!("cs{n}")))
                .flatten()
        });
        a.title = a
            .rule_name
            .clone()
            .or_else(|| a.message.clone())
            .unwrap_or_else(|| UNTITLED.to_string());
        a
    }

    /// The value a template placeholder names: a normalised name (`event.id`, `tenant`,
    /// `severity`, `format`, `title`, `rule.id`, `rule.name`, `host.name`, `user.name`,
    /// `source`, `destination`, `message`, `time`; also as the alert sinks' `secflow.event_id`,
    /// `secflow.tenant`, `secflow.severity`, `secflow.format`, `secflow.rule_id`,
    /// `secflow.rule_name`, `secflow.host`, `secflow.message`, `secflow.time`), else the payload's own field by dotted path (JSON:
    /// `process.name`, `threat.enrichments.0.indicator.name`; CEF: an extension key such as
    /// `cs6`). `None` when the event has no such value.
    pub fn value(&self, name: &str) -> Option<String> {
        // `secflow.*` are the names the PagerDuty/OpsGenie templates use for the same values.
        let normalised = match name {
            "event.id" | "event_id" | "secflow.event_id" => Some(self.event_id.clone()),
            "tenant" | "secflow.tenant" => Some(self.tenant.clone()),
            "severity" | "secflow.severity" => Some(self.severity.map(|s| s.as_str().to_string())),
            "format" | "secflow.format" => Some(Some(self.format.as_str().to_string())),
            "title" => Some(Some(self.title.clone())),
            "rule.id" | "secflow.rule_id" => Some(self.rule_id.clone()),
            "rule.name" | "secflow.rule_name" => Some(self.rule_name.clone()),
            "host.name" | "host" | "secflow.host" => Some(self.host.clone()),
            "user.name" | "user" => Some(self.user.clone()),
            "source" => Some(self.source.clone()),
            "destination" => Some(self.destination.clone()),
            "message" | "secflow.message" => Some(self.message.clone()),
            "time" | "secflow.time" => Some(self.time_ms.and_then(crate::event::format_rfc3339)),
            _ => None,
        };
        if let Some(v) = normalised {
            return v;
        }
        match &self.doc {
            Doc::Json(doc) => {
                let pointer: String = name.split('.').fold(String::new(), |mut p, part| {
                    p.push('/');
                    p.push_str(&part.replace('~', "~0").replace('/', "~1"));
                    p
                });
                text_at(doc, &pointer)
            }
            Doc::Cef(line) => cef_extension(line, name).filter(|v| !v.trim().is_empty()),
        }
    }
}
