//! Datadog Logs intake simulator: `POST /api/v2/logs` with `DD-API-KEY`, gzip, a JSON array of
//! log entries (or one entry), Datadog's limits (5 MB uncompressed per request, 1000 entries,
//! 1 MB per entry) and its error shape `{"errors": [{"status", "title", "detail"}]}`.
//!
//! Like the real intake, an entry over 1 MB is accepted and truncated (counted in
//! [`DatadogApp::truncated`], logged); the sink under test is expected never to send one.
//! Beyond what Datadog documents: a request with more than 1000 entries is answered 413, as a
//! too-large payload.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::recorder::{event_id_of, ReceivedRequest};
use super::{decode_body, header, header_pairs, json as json_resp, Shared, SimError};

/// Path of the v2 logs intake.
pub const LOGS_PATH: &str = "/api/v2/logs";

/// Settings of the Datadog Logs simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatadogSimConfig {
    /// The one valid API key (`DD-API-KEY`).
    pub api_key: String,
    /// Largest uncompressed body; larger → 413 (Datadog: 5 MB).
    pub max_request_bytes: usize,
    /// Most entries per request; more → 413 (Datadog: 1000).
    pub max_entries: usize,
    /// Larger entries are accepted but truncated (Datadog: 1 MB).
    pub max_entry_bytes: usize,
}

impl DatadogSimConfig {
    /// Datadog's limits, accepting `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        DatadogSimConfig {
            api_key: api_key.into(),
            max_request_bytes: 5_000_000,
            max_entries: 1_000,
            max_entry_bytes: 1_000_000,
        }
    }
}

#[derive(Debug)]
pub(crate) struct DatadogApp {
    config: DatadogSimConfig,
    shared: Arc<Shared>,
    truncated: AtomicU64,
}

impl DatadogApp {
    pub fn new(config: DatadogSimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        if config.api_key.is_empty() {
            return Err(SimError::Config(
                "Datadog simulator API key is empty".into(),
            ));
        }
        Ok(DatadogApp {
            config,
            shared,
            truncated: AtomicU64::new(0),
        })
    }

    /// Entries accepted over the per-entry limit (Datadog truncates them).
    pub fn truncated(&self) -> u64 {
        self.truncated.load(Ordering::Relaxed)
    }
}

pub(crate) fn is_data_path(path: &str) -> bool {
    path.trim_end_matches('/') == LOGS_PATH
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// Datadog's error body: `{"errors":[{"status":"403","title":"Forbidden","detail":…}]}`.
fn error(status: u16, detail: &str) -> Response {
    json_resp(
        status,
        json!({"errors": [{
            "status": status.to_string(),
            "title": reason(status),
            "detail": detail,
        }]}),
    )
}

/// Datadog's answer for an injected status.
pub(crate) fn fault_response(status: u16) -> Response {
    let detail = match status {
        403 => "API key is invalid",
        429 => "Rate limit exceeded, retry later",
        _ => "simulated fault",
    };
    error(status, detail)
}

pub(crate) fn router(app: Arc<DatadogApp>) -> Router {
    Router::new()
        .route(LOGS_PATH, post(logs))
        .route("/api/v2/logs/", post(logs))
        .with_state(app)
}

async fn logs(
    State(app): State<Arc<DatadogApp>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (resp, decoded) = logs_inner(&app, &headers, &body);
    app.shared.rec().request(ReceivedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        headers: header_pairs(&headers),
        body: decoded,
        status: resp.status().as_u16(),
    });
    resp
}

fn logs_inner(app: &DatadogApp, headers: &HeaderMap, body: &[u8]) -> (Response, Vec<u8>) {
    match header(headers, "dd-api-key").map(str::trim) {
        None | Some("") => {
            app.shared.rec().stats.auth_failures += 1;
            return (error(401, "API key is missing"), Vec::new());
        }
        Some(k) if k != app.config.api_key => {
            app.shared.rec().stats.auth_failures += 1;
            return (error(403, "API key is invalid"), Vec::new());
        }
        Some(_) => {}
    }
    let decoded = match decode_body(headers, body, app.shared.max_body_bytes) {
        Ok(b) => b,
        Err(e) => {
            app.shared.rec().stats.bad_requests += 1;
            return (error(400, &e), Vec::new());
        }
    };
    if decoded.len() > app.config.max_request_bytes {
        app.shared.rec().stats.bad_requests += 1;
        let detail = format!(
            "payload is {} bytes uncompressed, over the {} byte limit",
            decoded.len(),
            app.config.max_request_bytes
        );
        return (error(413, &detail), decoded);
    }
    let entries: Vec<Value> = match serde_json::from_slice::<Value>(&decoded) {
        Ok(Value::Array(items)) => items,
        Ok(v @ Value::Object(_)) => vec![v],
        _ => {
            app.shared.rec().stats.bad_requests += 1;
            return (
                error(400, "body is not a JSON array of log entries"),
                decoded,
            );
        }
    };
    if entries.len() > app.config.max_entries {
        app.shared.rec().stats.bad_requests += 1;
        let detail = format!(
            "{} entries, over the limit of {} per request",
            entries.len(),
            app.config.max_entries
        );
        return (error(413, &detail), decoded);
    }
    if entries.iter().any(|e| !e.is_object()) {
        app.shared.rec().stats.bad_requests += 1;
        return (error(400, "every log entry must be a JSON object"), decoded);
    }
    let mut rec = app.shared.rec();
    for e in &entries {
        let size = serde_json::to_vec(e).map(|b| b.len()).unwrap_or(0);
        if size > app.config.max_entry_bytes {
            app.truncated.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(size, "Datadog simulator: entry over the limit, truncated");
        }
        let id = e
            .pointer("/secflow/event_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| event_id_of(e));
        rec.accept(id.as_deref());
    }
    drop(rec);
    (json_resp(202, json!({})), decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_path_and_error_shape() {
        assert!(is_data_path("/api/v2/logs") && is_data_path("/api/v2/logs/"));
        assert!(!is_data_path("/api/v1/validate"));
        assert_eq!(reason(413), "Request Entity Too Large");
        assert_eq!(fault_response(403).status().as_u16(), 403);
    }
}
