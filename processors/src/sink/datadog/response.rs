//! Reading Datadog's answers. The logs intake answers a whole request (no per-entry results):
//! `202 {}` when accepted, else an error body `{"errors": [...]}` whose items are either
//! strings or `{"status", "title", "detail"}` objects.

use serde_json::Value;

use super::DatadogSink;
use crate::sink::classify::{by_status, message};
use crate::sink::{Classification, HttpRequest, HttpResponse, Outcome, SinkDown};

/// The readable part of a Datadog error body: the `errors` items (`title: detail` for
/// objects, the text for strings) joined by `; `. `None` when the body has none.
pub fn error_detail(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let items = v.get("errors")?.as_array()?;
    let parts: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => {
                let text = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
                match (text("title"), text("detail")) {
                    (Some(t), Some(d)) => Some(format!("{t}: {d}")),
                    (Some(t), None) => Some(t.to_string()),
                    (None, Some(d)) => Some(d.to_string()),
                    (None, None) => None,
                }
            }
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// One outcome per record of `request`; see the module documentation of the sink.
pub fn classify(
    sink: &DatadogSink,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Classification {
    let n = request.records.len();
    let status = response.status;
    let secrets = std::slice::from_ref(&sink.api_key);
    let detail = error_detail(&response.body);
    match status {
        200..=299 => Classification::uniform(Outcome::Delivered, n),
        401 | 403 => {
            let what = if status == 401 {
                "no API key was accepted (missing DD-API-KEY?)"
            } else {
                "the API key is invalid or revoked"
            };
            let text = format!(
                "HTTP {status}: Datadog refused the request for {}: {what} ({}). Delivery is \
                 stopped (circuit open) until DD-API-KEY holds a valid key for this site",
                sink.target,
                detail.as_deref().unwrap_or("no detail"),
            );
            let msg = message(&text, secrets);
            Classification {
                outcomes: vec![Outcome::permanent("auth", Some(status), msg.clone()); n],
                sink_down: Some(SinkDown {
                    class: "auth".to_string(),
                    status: Some(status),
                    message: msg,
                }),
                ..Classification::default()
            }
        }
        _ => by_status(response, n, detail.as_deref(), secrets),
    }
}
