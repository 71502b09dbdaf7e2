//! What the alert sinks (PagerDuty, OpsGenie) share: reading a record as an alert
//! ([`AlertEvent`]), field templates for dedup keys and texts ([`FieldTemplate`]), the
//! threshold and resolution rules ([`AlertRules`]), and the open-incident state that turns a
//! batch into triggers, resolves and suppressions ([`IncidentBook`]).

pub mod config;
pub mod event;
pub mod incidents;
pub mod template;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub use config::{default_resolve_when, ResolveCondition};
pub use event::{rfc3339, AlertEvent, SECFLOW_FIELDS};
pub use incidents::{
    Action, ActionKind, Incident, IncidentBook, IncidentKey, Intent, Plan, BELOW_MIN_SEVERITY,
    INCIDENT_OPEN, NO_OPEN_INCIDENT,
};
pub use template::{percent_encode, FieldTemplate};

use super::event_fields::Severity;

/// What an event is for an alert sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A resolution event (matches `resolve_when`), whatever its severity.
    Resolution,
    /// An alert at or above the threshold, with its severity.
    Alert(Severity),
    /// Below the threshold.
    BelowThreshold(Severity),
}

/// The threshold and the resolution conditions of an alert sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRules {
    min_severity: Severity,
    missing_severity: Severity,
    resolve_when: Vec<(FieldTemplate, Vec<String>)>,
}

impl AlertRules {
    /// Rules: alerts at or above `min_severity`; events without a severity count as
    /// `missing_severity`; resolution events match one of `resolve_when`.
    ///
    /// # Errors
    /// A condition whose `field` is not a valid placeholder, or has no values.
    pub fn new(
        min_severity: Severity,
        missing_severity: Severity,
        resolve_when: &[ResolveCondition],
    ) -> Result<Self, String> {
        let mut conditions = Vec::new();
        for c in resolve_when {
            let field = c.field.trim();
            if field.contains(['{', '}']) {
                return Err(format!(
                    "resolve_when field `{field}` is a path, written without braces"
                ));
            }
            let template = FieldTemplate::parse(&format!("{{{field}}}"))
                .map_err(|e| format!("resolve_when: {e}"))?;
            let values: Vec<String> = c
                .equals
                .iter()
                .map(|v| v.trim().to_lowercase())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(format!(
                    "resolve_when field `{field}` has no `equals` values"
                ));
            }
            conditions.push((template, values));
        }
        Ok(AlertRules {
            min_severity,
            missing_severity,
            resolve_when: conditions,
        })
    }

    /// The severity used for `event` (its own, else the configured one for events without).
    pub fn severity(&self, event: &AlertEvent<'_>) -> Severity {
        event.severity().unwrap_or(self.missing_severity)
    }

    /// Whether `event` is a resolution.
    pub fn is_resolution(&self, event: &AlertEvent<'_>) -> bool {
        self.resolve_when.iter().any(|(field, values)| {
            let v = field.render(event).to_lowercase();
            !v.is_empty() && values.contains(&v)
        })
    }

    /// What `event` is: a resolution, an alert, or below the threshold.
    pub fn kind(&self, event: &AlertEvent<'_>) -> AlertKind {
        if self.is_resolution(event) {
            return AlertKind::Resolution;
        }
        let s = self.severity(event);
        if s >= self.min_severity {
            AlertKind::Alert(s)
        } else {
            AlertKind::BelowThreshold(s)
        }
    }
}

/// `text` cut to at most `max` characters (not bytes), with `…` as the last one when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// An identifier (dedup key, alias) of at most `max` characters. A longer one keeps its start
/// and ends with `~` and 16 hex digits of its SHA-256, so two long keys that differ only at the
/// end still name different incidents.
pub fn bounded_key(key: &str, max: usize) -> String {
    if key.chars().count() <= max {
        return key.to_string();
    }
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let keep = max.saturating_sub(hex.len() + 1);
    let head: String = key.chars().take(keep).collect();
    format!("{head}~{hex}")
}

/// Decodes `%XX` escapes (as written by [`percent_encode`]); other bytes are kept.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Milliseconds since the epoch of `t` (0 before the epoch).
pub fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
