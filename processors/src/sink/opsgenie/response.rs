//! Reading OpsGenie's answers: per-record outcomes, open-alert state, heartbeat results.

use serde_json::Value;

use super::{OpsGenieSink, ALERTS_PATH, HEARTBEATS_PATH};
use crate::sink::alerting::{percent_decode, IncidentKey};
use crate::sink::classify::{self, message};
use crate::sink::{Classification, HttpRequest, HttpResponse, Outcome, TransportError};

/// OpsGenie's error text from a body like
/// `{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty."},"took":0.001,"requestId":"…"}`:
/// `message (field: error; …)`, or whichever part is there.
pub fn error_detail(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let msg = v
        .get("message")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let errors: Vec<String> = match v.get("errors") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    match (msg, errors.is_empty()) {
        (Some(m), false) => Some(format!("{m} ({})", errors.join("; "))),
        (Some(m), true) => Some(m.to_string()),
        (None, false) => Some(errors.join("; ")),
        (None, true) => None,
    }
}

/// What a request we built was.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Create(IncidentKey),
    Close(IncidentKey),
    Ping,
    Other,
}

fn sent(sink: &OpsGenieSink, request: &HttpRequest) -> Sent {
    let Some(path) = request.url.strip_prefix(&sink.base) else {
        return Sent::Other;
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.starts_with(HEARTBEATS_PATH) && path.ends_with("/ping") {
        return Sent::Ping;
    }
    let key = |alias: String| IncidentKey {
        route: String::new(),
        key: alias,
    };
    if path == ALERTS_PATH {
        let alias = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|v| v.get("alias").and_then(Value::as_str).map(str::to_string));
        return alias.map_or(Sent::Other, |a| Sent::Create(key(a)));
    }
    if let Some(alias) = path
        .strip_prefix(ALERTS_PATH)
        .and_then(|p| p.strip_prefix('/'))
        .and_then(|p| p.strip_suffix("/close"))
    {
        return Sent::Close(key(percent_decode(alias)));
    }
    Sent::Other
}

pub(super) fn classify(
    sink: &OpsGenieSink,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Classification {
    let n = request.records.len();
    let status = response.status;
    let secrets = [sink.api_key.clone()];
    let sent = sent(sink, request);
    if (200..300).contains(&status) {
        let mut state = sink.state();
        match &sent {
            Sent::Create(k) => state.book.triggered(k, n),
            Sent::Close(k) => state.book.resolved(k),
            Sent::Ping | Sent::Other => {}
        }
        return Classification::uniform(Outcome::Delivered, n);
    }
    if let Sent::Create(k) = &sent {
        sink.state().book.trigger_failed(k);
    }
    let detail = error_detail(&response.body);
    if matches!(status, 400 | 422) {
        let text = message(
            &format!(
                "HTTP {status} from {}: {}",
                sink.target,
                detail.as_deref().unwrap_or("the alert was refused")
            ),
            &secrets,
        );
        return Classification::uniform(Outcome::permanent("invalid_alert", Some(status), text), n);
    }
    classify::by_status(response, n, detail.as_deref(), &secrets)
}

/// A transport failure: a create's build time is forgotten (the retry builds it again).
pub(super) fn transport_failed(sink: &OpsGenieSink, request: &HttpRequest) {
    if let Sent::Create(k) = sent(sink, request) {
        sink.state().book.trigger_failed(&k);
    }
}

/// The answer to a tick request: a quiet close (2xx closes; 400/404/422 — OpsGenie will never
/// take it — forgets; else the next tick tries again) or a heartbeat ping (a failed ping is
/// sent again at the next tick).
pub(super) fn tick_done(
    sink: &OpsGenieSink,
    request: &HttpRequest,
    response: Result<&HttpResponse, &TransportError>,
) {
    let ok = matches!(response, Ok(r) if (200..300).contains(&r.status));
    match sent(sink, request) {
        Sent::Close(k) => {
            let forget = matches!(response, Ok(r) if matches!(r.status, 400 | 404 | 422));
            sink.state().book.quiet_resolve_done(&k, ok, forget);
        }
        Sent::Ping if !ok => sink.state().last_ping_ms = None,
        _ => {}
    }
}
