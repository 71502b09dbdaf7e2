//! Reading PagerDuty's answers: per-record outcomes, and the incident state they change.

use serde_json::Value;

use super::{key_fingerprint, PagerDutySink};
use crate::secret::Secret;
use crate::sink::alerting::IncidentKey;
use crate::sink::classify::{self, message};
use crate::sink::{Classification, HttpRequest, HttpResponse, Outcome, SinkDown, TransportError};

/// PagerDuty's error text from a body like
/// `{"status":"invalid event","message":"Event object is invalid","errors":["…"]}`:
/// `message: error; error`, or whichever part is there.
pub fn error_detail(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let msg = v
        .get("message")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let errors: Vec<&str> = v
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match (msg, errors.is_empty()) {
        (Some(m), false) => Some(format!("{m}: {}", errors.join("; "))),
        (Some(m), true) => Some(m.to_string()),
        (None, false) => Some(errors.join("; ")),
        (None, true) => None,
    }
}

/// What a request we built was: its action and incident.
struct Sent {
    action: String,
    key: IncidentKey,
}

fn sent(request: &HttpRequest) -> Option<Sent> {
    let v: Value = serde_json::from_slice(&request.body).ok()?;
    let action = v.get("event_action")?.as_str()?.to_string();
    let dedup = v.get("dedup_key")?.as_str()?.to_string();
    let routing = v.get("routing_key")?.as_str()?;
    Some(Sent {
        action,
        key: IncidentKey {
            route: key_fingerprint(&Secret::new(routing)),
            key: dedup,
        },
    })
}

pub(super) fn classify(
    sink: &PagerDutySink,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Classification {
    let n = request.records.len();
    let status = response.status;
    let secrets = sink.secrets();
    let sent = sent(request);
    if (200..300).contains(&status) {
        if let Some(s) = &sent {
            let mut book = sink.book();
            match s.action.as_str() {
                "trigger" => book.triggered(&s.key, n),
                "resolve" => book.resolved(&s.key),
                _ => {}
            }
        }
        return Classification::uniform(Outcome::Delivered, n);
    }
    if let Some(s) = sent.as_ref().filter(|s| s.action == "trigger") {
        sink.book().trigger_failed(&s.key);
    }
    let detail = error_detail(&response.body);
    if status == 400 {
        let text = message(
            &format!(
                "HTTP 400 from {}: {}",
                sink.target,
                detail.as_deref().unwrap_or("invalid event")
            ),
            &secrets,
        );
        let about_key = detail
            .as_deref()
            .map(str::to_ascii_lowercase)
            .is_some_and(|d| d.contains("routing_key") || d.contains("routing key"));
        if about_key {
            // Every event sent with this key will be refused: say so and open the circuit.
            let text = message(
                &format!("{text} (the integration key is wrong or disabled; circuit open)"),
                &secrets,
            );
            return Classification {
                outcomes: vec![
                    Outcome::permanent("invalid_routing_key", Some(400), text.clone());
                    n
                ],
                sink_down: Some(SinkDown {
                    class: "invalid_routing_key".to_string(),
                    status: Some(400),
                    message: text,
                }),
                ..Classification::default()
            };
        }
        return Classification::uniform(Outcome::permanent("invalid_event", Some(400), text), n);
    }
    classify::by_status(response, n, detail.as_deref(), &secrets)
}

/// A transport failure: a trigger's build time is forgotten (the retry builds it again).
pub(super) fn transport_failed(sink: &PagerDutySink, request: &HttpRequest) {
    if let Some(s) = sent(request).filter(|s| s.action == "trigger") {
        sink.book().trigger_failed(&s.key);
    }
}

/// The answer to a quiet-window resolve: 2xx closes the incident; 400 (PagerDuty will never
/// take this resolve) forgets it; anything else keeps it for the next tick.
pub(super) fn quiet_resolve_done(
    sink: &PagerDutySink,
    request: &HttpRequest,
    response: Result<&HttpResponse, &TransportError>,
) {
    let Some(s) = sent(request).filter(|s| s.action == "resolve") else {
        return;
    };
    let (accepted, forget) = match response {
        Ok(r) => ((200..300).contains(&r.status), r.status == 400),
        Err(_) => (false, false),
    };
    sink.book().quiet_resolve_done(&s.key, accepted, forget);
}
