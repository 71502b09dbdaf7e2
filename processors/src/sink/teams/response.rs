//! Reading Teams webhook answers.
//!
//! A Workflows webhook answers 202 Accepted (empty body) and errors with a status and a JSON
//! `{"error": {"code", "message"}}`. A legacy Office 365 connector answers 200 with the body
//! `1`, and reports failures **inside a 200**: `Webhook message delivery failed with error:
//! Microsoft Teams endpoint returned HTTP error 429 with ContextId …`; that status is read
//! and handled as if it were the answer's own.

use serde_json::Value;

use super::TeamsSink;
use crate::sink::classify::{body_snippet, by_status, message, retry_after, too_large};
use crate::sink::{Classification, HttpResponse, Outcome, SinkDown};

/// What a 2xx body says about delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    /// Nothing wrong (empty, `1`, or anything else a flow answers).
    Fine,
    /// The connector reports that Teams answered this status.
    Status(u16),
    /// The connector reports a failure without a status (`Error contacting Microsoft Teams
    /// endpoint`).
    Failed,
}

/// Reads a 2xx body for an embedded failure.
pub fn embedded(body: &[u8]) -> Embedded {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    const MARK: &str = "returned HTTP error ";
    if let Some(pos) = text.find(MARK) {
        let digits: String = text[pos + MARK.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(status) = digits.parse::<u16>() {
            if (100..=599).contains(&status) {
                return Embedded::Status(status);
            }
        }
        return Embedded::Failed;
    }
    if text.contains("delivery failed") || text.contains("Error contacting Microsoft Teams") {
        return Embedded::Failed;
    }
    Embedded::Fine
}

/// `code: message` of a Workflows (Logic Apps) error body.
pub fn flow_error(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let code = e.get("code").and_then(Value::as_str).unwrap_or("error");
    let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
    Some(
        format!("{code}: {msg}")
            .trim_end_matches([':', ' '])
            .to_string(),
    )
}

/// One outcome per record for an answer from webhook `name`.
pub(crate) fn classify(
    sink: &TeamsSink,
    name: &str,
    response: &HttpResponse,
    records: usize,
) -> Classification {
    let real = response.status;
    let (status, embedded_in) = match ((200..300).contains(&real), embedded(&response.body)) {
        (true, Embedded::Fine) => return Classification::uniform(Outcome::Delivered, records),
        (true, Embedded::Status(s)) if (200..300).contains(&s) => {
            return Classification::uniform(Outcome::Delivered, records)
        }
        (true, Embedded::Status(s)) => (s, true),
        (true, Embedded::Failed) => {
            let msg = message(
                &format!(
                    "HTTP {real}: Teams webhook `{name}` reports a failed delivery: {}",
                    body_snippet(&response.body)
                ),
                &sink.secrets,
            );
            return Classification::uniform(
                Outcome::retry("delivery_failed", Some(real), msg),
                records,
            );
        }
        (false, _) => (real, false),
    };
    let detail = flow_error(&response.body).unwrap_or_else(|| body_snippet(&response.body));
    let detail = detail.trim();
    let head = if embedded_in {
        format!("HTTP {real} (the connector reports HTTP {status})")
    } else {
        format!("HTTP {status}")
    };
    let what = match status {
        400 => "Teams refused the card",
        401 | 403 => {
            "the webhook refused the request: its URL (signature) is wrong or was regenerated, \
             or the flow is turned off; put the current URL in the secret"
        }
        404 => "no webhook at this URL: the flow or connector was deleted, or the URL is wrong",
        413 => "the message is too large (Teams takes about 28 KB)",
        429 => "Teams throttled the webhook",
        _ => "Teams webhook error",
    };
    let text = if detail.is_empty() {
        format!("{head}: {what} (webhook `{name}`)")
    } else {
        format!("{head}: {what} (webhook `{name}`): {detail}")
    };
    let msg = message(&text, &sink.secrets);
    let down = |class: &str| SinkDown {
        class: class.to_string(),
        status: Some(status),
        message: msg.clone(),
    };
    match status {
        413 => too_large(records, msg),
        400 => Classification::uniform(Outcome::permanent("rejected", Some(real), msg), records),
        401 | 403 | 404 => {
            let class = if status == 404 {
                "webhook_not_found"
            } else {
                "auth"
            };
            Classification {
                outcomes: vec![Outcome::permanent(class, Some(real), msg.clone()); records],
                // A dead webhook concerns every message only when it is the only one.
                sink_down: sink.single_destination().then(|| down(class)),
                ..Classification::default()
            }
        }
        429 | 500..=599 if status != 501 => {
            let class = if status == 429 {
                "rate_limited"
            } else {
                "server_error"
            };
            Classification {
                outcomes: vec![
                    Outcome::Retry {
                        class: class.to_string(),
                        status: Some(real),
                        message: msg.clone(),
                        retry_after: retry_after(response),
                    };
                    records
                ],
                sink_down: Some(down(class)),
                ..Classification::default()
            }
        }
        _ if embedded_in => {
            Classification::uniform(Outcome::permanent("rejected", Some(real), msg), records)
        }
        _ => by_status(
            response,
            records,
            (!detail.is_empty()).then_some(detail),
            &sink.secrets,
        ),
    }
}
