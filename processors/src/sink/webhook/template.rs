//! The per-event body template: JSON text with `{{placeholder}}`s replaced by JSON values.

use crate::sink::{push_json_str, PayloadFormat, SinkRecord};

/// A parsed body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Event,
    EventId,
    Tenant,
    TimeMs,
    Format,
}

impl BodyTemplate {
    /// Parses `template` and checks that it gives valid JSON for JSON and text payloads.
    ///
    /// # Errors
    /// Unknown or unclosed placeholders, or a template that is not JSON once filled in.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("webhook template: unclosed `{{{{` in `{template}`"))?;
            parts.push(match after[..end].trim() {
                "event" => Part::Event,
                "event_id" => Part::EventId,
                "tenant" => Part::Tenant,
                "time_ms" => Part::TimeMs,
                "format" => Part::Format,
                other => {
                    return Err(format!(
                        "webhook template: unknown placeholder `{{{{{other}}}}}` (known: event, \
                         event_id, tenant, time_ms, format)"
                    ))
                }
            });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        let t = BodyTemplate { parts };
        for (format, payload) in [
            (PayloadFormat::Ecs, &br#"{"a":[1,"x"]}"#[..]),
            (
                PayloadFormat::Cef,
                &b"CEF:0|v|p|1|sig|name|5|src=10.0.0.1"[..],
            ),
        ] {
            let sample = SinkRecord {
                event_id: Some("id-1".into()),
                tenant: None,
                event_time_ms: Some(1),
                key: None,
                payload: payload.to_vec(),
                format,
                traceparent: None,
            };
            let mut out = Vec::new();
            t.render(&sample, &mut out)?;
            serde_json::from_slice::<serde::de::IgnoredAny>(&out)
                .map_err(|e| format!("webhook template is not JSON once filled in: {e}"))?;
        }
        Ok(t)
    }

    /// Appends the filled-in template for `record` to `out`.
    ///
    /// # Errors
    /// The payload is not what its format says (invalid JSON, text not UTF-8).
    pub fn render(&self, record: &SinkRecord, out: &mut Vec<u8>) -> Result<(), String> {
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Event => push_event(record, out)?,
                Part::EventId => push_opt_str(out, record.event_id.as_deref()),
                Part::Tenant => push_opt_str(out, record.tenant.as_deref()),
                Part::TimeMs => match record.event_time_ms {
                    Some(ms) => out.extend_from_slice(ms.to_string().as_bytes()),
                    None => out.extend_from_slice(b"null"),
                },
                Part::Format => push_json_str(out, record.format.as_str()),
            }
        }
        Ok(())
    }
}

fn push_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// The payload as a JSON value: JSON payloads checked and embedded as they are, text payloads
/// as a string (trailing line break removed).
///
/// # Errors
/// Invalid JSON, or text that is not UTF-8.
pub fn push_event(record: &SinkRecord, out: &mut Vec<u8>) -> Result<(), String> {
    if record.format.is_json() {
        out.extend_from_slice(json_payload(record)?);
    } else {
        push_json_str(out, text(record)?);
    }
    Ok(())
}

/// A JSON payload, checked to be one JSON value, without surrounding white space.
///
/// # Errors
/// Invalid JSON.
pub fn json_payload(record: &SinkRecord) -> Result<&[u8], String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(&record.payload)
        .map_err(|e| format!("payload is not JSON: {e}"))?;
    Ok(record.payload.trim_ascii())
}

/// A text payload as `str`.
///
/// # Errors
/// Not UTF-8.
pub fn text(record: &SinkRecord) -> Result<&str, String> {
    Ok(std::str::from_utf8(&record.payload)
        .map_err(|e| format!("text payload is not UTF-8: {e}"))?
        .trim_end_matches(['\r', '\n']))
}
