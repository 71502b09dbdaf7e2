//! Reading `_bulk` answers per item.
//!
//! | item status | outcome |
//! | --- | --- |
//! | 200, 201 | delivered |
//! | 409 `version_conflict_engine_exception` | duplicate (the `create` found the `_id`: delivered before) |
//! | 429 | retry `rate_limited` |
//! | 5xx | retry `server_error` (or the error type) |
//! | 400, other 4xx | permanent, class = the error `type` (e.g. `mapper_parsing_exception`), message = `reason` |
//!
//! A response whose items cannot be matched to the request (unreadable, wrong count) retries
//! every record: `create` with `_id` makes that safe. When every item failed with 429/5xx the
//! sink counts as down. Whole-request errors follow [`crate::sink::classify`] (413 splits).

use serde_json::Value;

use super::ElasticsearchSink;
use crate::sink::classify::{self, message};
use crate::sink::{Classification, HttpRequest, HttpResponse, Outcome, SinkDown};

/// `type: reason` of an Elasticsearch error object (or string), with `caused_by` when present.
pub fn error_text(error: &Value) -> (Option<String>, String) {
    match error {
        Value::String(s) => (None, s.clone()),
        Value::Object(m) => {
            let ty = m.get("type").and_then(Value::as_str).map(str::to_string);
            let reason = m
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut text = match &ty {
                Some(t) if !reason.is_empty() => format!("{t}: {reason}"),
                Some(t) => t.clone(),
                None => reason,
            };
            if let Some(cause) = m.get("caused_by") {
                let (_, c) = error_text(cause);
                if !c.is_empty() {
                    text.push_str(&format!(" (caused by {c})"));
                }
            }
            (ty, text)
        }
        _ => (None, String::new()),
    }
}

/// Classifies one `_bulk` response.
pub fn classify(
    sink: &ElasticsearchSink,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Classification {
    let n = request.records.len();
    let status = response.status;
    let secrets = &sink.secrets;
    if !(200..300).contains(&status) {
        let detail = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("error").map(error_text))
            .map(|(_, text)| text)
            .filter(|t| !t.is_empty());
        return classify::by_status(response, n, detail.as_deref(), secrets);
    }
    let unreadable = |why: &str| {
        Classification::uniform(
            Outcome::retry(
                "bulk_response_unreadable",
                Some(status),
                message(
                    &format!("{why}: {}", classify::body_snippet(&response.body)),
                    secrets,
                ),
            ),
            n,
        )
    };
    let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
        return unreadable("bulk response is not JSON");
    };
    if body.get("errors").and_then(Value::as_bool) == Some(false)
        && body.get("items").and_then(Value::as_array).map(Vec::len) == Some(n)
    {
        return Classification::uniform(Outcome::Delivered, n);
    }
    let Some(items) = body.get("items").and_then(Value::as_array) else {
        return unreadable("bulk response has no items");
    };
    if items.len() != n {
        return unreadable(&format!(
            "bulk response has {} items for {n} actions",
            items.len()
        ));
    }
    let retry_after = classify::retry_after(response);
    let outcomes: Vec<Outcome> = items
        .iter()
        .map(|it| item_outcome(it, retry_after, secrets))
        .collect();
    let retryable = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Retry { .. }))
        .count();
    let sink_down = (n > 0 && retryable == n).then(|| {
        let (class, st, msg) = match &outcomes[0] {
            Outcome::Retry {
                class,
                status,
                message,
                ..
            } => (class.clone(), *status, message.clone()),
            _ => (String::new(), None, String::new()),
        };
        SinkDown {
            class,
            status: st,
            message: format!("every bulk item failed, e.g. {msg}"),
        }
    });
    Classification {
        outcomes,
        sink_down,
        split: false,
        ack_reset: None,
    }
}

fn item_outcome(
    item: &Value,
    retry_after: Option<crate::sink::RetryAfter>,
    secrets: &[crate::secret::Secret],
) -> Outcome {
    // `{"create": {...}}` (or index/update/delete): the one value of the object.
    let Some(inner) = item.as_object().and_then(|m| m.values().next()) else {
        return Outcome::retry(
            "bulk_response_unreadable",
            None,
            "bulk item is not an object",
        );
    };
    let status = inner
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let Some(status) = status else {
        return Outcome::retry("bulk_response_unreadable", None, "bulk item has no status");
    };
    if (200..300).contains(&status) {
        return Outcome::Delivered;
    }
    let (ty, text) = inner.get("error").map(error_text).unwrap_or_default();
    let msg = message(
        &if text.is_empty() {
            format!("item HTTP {status}")
        } else {
            format!("item HTTP {status}: {text}")
        },
        secrets,
    );
    match status {
        409 if ty.as_deref() == Some("version_conflict_engine_exception") => Outcome::Duplicate,
        429 | 408 => Outcome::Retry {
            class: classify::error_class(status).to_string(),
            status: Some(status),
            message: msg,
            retry_after,
        },
        500..=599 if status != 501 => Outcome::Retry {
            class: ty.unwrap_or_else(|| "server_error".to_string()),
            status: Some(status),
            message: msg,
            retry_after,
        },
        _ => Outcome::Permanent {
            class: ty.unwrap_or_else(|| classify::error_class(status).to_string()),
            status: Some(status),
            message: msg,
        },
    }
}
