//! What the alerting simulators (PagerDuty, OpsGenie) remember: the incidents per dedup key or
//! alias, every accepted action with its receive time, and heartbeat pings. Tests read it to
//! assert "exactly one trigger per incident" and "resolved after the quiet window".

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

/// The history of one dedup key (PagerDuty) or alias (OpsGenie).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IncidentHistory {
    /// Triggers (creates) that opened an incident.
    pub opened: u64,
    /// Triggers (creates) that arrived while the incident was open: the vendor folded them
    /// into it. A sink that deduplicates well sends none.
    pub deduplicated: u64,
    /// Resolves (closes) of an open incident.
    pub resolved: u64,
    /// Resolves (closes) with no open incident (or another routing key): dropped by the vendor.
    pub resolves_ignored: u64,
    /// Whether an incident is open now.
    pub open: bool,
}

/// One accepted request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertAction {
    /// When it was received.
    pub at: SystemTime,
    /// `trigger`, `acknowledge` or `resolve` (PagerDuty); `create` or `close` (OpsGenie).
    pub action: String,
    /// The dedup key or alias.
    pub key: String,
    /// The request body.
    pub body: Value,
}

/// One heartbeat ping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatPing {
    /// When it was received.
    pub at: SystemTime,
    /// The heartbeat's name.
    pub name: String,
}

/// Incidents, actions and pings of one simulator.
#[derive(Debug, Default)]
pub(crate) struct AlertLog {
    keys: BTreeMap<String, IncidentHistory>,
    /// The scope an open incident was opened in (PagerDuty: its routing key).
    scopes: BTreeMap<String, String>,
    actions: Vec<AlertAction>,
    pings: Vec<HeartbeatPing>,
}

impl AlertLog {
    /// A trigger/create for `key` in `scope`; whether it opened an incident.
    pub fn open(&mut self, key: &str, scope: &str, action: &str, body: &Value) -> bool {
        self.record(key, action, body);
        let h = self.keys.entry(key.to_string()).or_default();
        if h.open && self.scopes.get(key).map(String::as_str) == Some(scope) {
            h.deduplicated += 1;
            false
        } else {
            h.open = true;
            h.opened += 1;
            self.scopes.insert(key.to_string(), scope.to_string());
            true
        }
    }

    /// A resolve/close for `key` in `scope`; whether it closed an incident.
    pub fn close(&mut self, key: &str, scope: &str, action: &str, body: &Value) -> bool {
        self.record(key, action, body);
        let h = self.keys.entry(key.to_string()).or_default();
        if h.open && self.scopes.get(key).map(String::as_str) == Some(scope) {
            h.open = false;
            h.resolved += 1;
            self.scopes.remove(key);
            true
        } else {
            h.resolves_ignored += 1;
            false
        }
    }

    /// Another action (acknowledge) is only recorded.
    pub fn record(&mut self, key: &str, action: &str, body: &Value) {
        self.actions.push(AlertAction {
            at: SystemTime::now(),
            action: action.to_string(),
            key: key.to_string(),
            body: body.clone(),
        });
    }

    pub fn ping(&mut self, name: &str) {
        self.pings.push(HeartbeatPing {
            at: SystemTime::now(),
            name: name.to_string(),
        });
    }

    pub fn keys(&self) -> BTreeMap<String, IncidentHistory> {
        self.keys.clone()
    }

    pub fn actions(&self) -> Vec<AlertAction> {
        self.actions.clone()
    }

    pub fn pings(&self) -> Vec<HeartbeatPing> {
        self.pings.clone()
    }

    pub fn clear(&mut self) {
        *self = AlertLog::default();
    }
}

/// Whether `text` looks like an ISO 8601 / RFC 3339 date-time as PagerDuty reads it:
/// `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or an offset (`+01:00` or `+0100`).
pub(crate) fn is_iso8601(text: &str) -> bool {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't' | b' ')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] | [b'+' | b'-', h1, h2, m1, m2] => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// A request id in OpsGenie's shape (a UUID).
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_open_dedup_and_close_per_scope() {
        let mut log = AlertLog::default();
        let v = Value::Null;
        assert!(log.open("k", "rk1", "trigger", &v));
        assert!(!log.open("k", "rk1", "trigger", &v));
        assert!(!log.close("k", "rk2", "resolve", &v), "another routing key");
        assert!(log.close("k", "rk1", "resolve", &v));
        assert!(!log.close("k", "rk1", "resolve", &v));
        assert!(log.open("k", "rk1", "trigger", &v));
        let h = &log.keys()["k"];
        assert_eq!(
            (
                h.opened,
                h.deduplicated,
                h.resolved,
                h.resolves_ignored,
                h.open
            ),
            (2, 1, 1, 2, true)
        );
        assert_eq!(log.actions().len(), 6);
    }

    #[test]
    fn iso8601_shapes() {
        for ok in [
            "2025-03-14T11:15:43.000Z",
            "2015-07-17T08:42:58.315+0000",
            "2015-07-17T08:42:58+01:00",
        ] {
            assert!(is_iso8601(ok), "{ok}");
        }
        for bad in [
            "yesterday",
            "2025-03-14",
            "2025-03-14T11:15:43",
            "2025-03-14T11:15:43.Z",
        ] {
            assert!(!is_iso8601(bad), "{bad}");
        }
    }
}
