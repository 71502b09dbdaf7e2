//! Sumo Logic HTTP Source simulator: `POST /receiver/v1/http/<token>`, newline-delimited
//! messages, gzip, the `X-Sumo-*` metadata headers, Sumo's 1 MB request limit.
//!
//! An unknown token is answered 401 (as Sumo does for an invalid URL token), another path 404.
//! Every accepted line is one message; its event id is read from JSON (`event_id`, ECS
//! `event.id`, OCSF `metadata.uid`) or from a CEF line's `externalId`. What category each
//! message got is in the recorded requests (headers and body).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use super::recorder::{event_id_of, ReceivedRequest};
use super::{decode_body, header_pairs, Shared, SimError};

/// Path prefix of upload URLs; the token follows.
pub const UPLOAD_PREFIX: &str = "/receiver/v1/http/";

/// Settings of the Sumo Logic simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumoSimConfig {
    /// The source's token: the upload URL is `<base>/receiver/v1/http/<token>`.
    pub token: String,
    /// Largest uncompressed body; larger → 413 (Sumo Logic: 1 MB).
    pub max_request_bytes: usize,
}

impl SumoSimConfig {
    /// A source with this token and Sumo's 1 MB limit.
    pub fn new(token: impl Into<String>) -> Self {
        SumoSimConfig {
            token: token.into(),
            max_request_bytes: 1_000_000,
        }
    }

    /// The upload URL for a simulator at `base` (e.g. [`super::SimServer::url`]).
    pub fn upload_url(&self, base: &str) -> String {
        format!(
            "{}{UPLOAD_PREFIX}{}",
            base.trim_end_matches('/'),
            self.token
        )
    }
}

#[derive(Debug)]
pub(crate) struct SumoApp {
    config: SumoSimConfig,
    shared: Arc<Shared>,
}

impl SumoApp {
    pub fn new(config: SumoSimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        if config.token.is_empty() || config.token.contains('/') {
            return Err(SimError::Config(
                "Sumo Logic simulator token must be non-empty, without `/`".into(),
            ));
        }
        Ok(SumoApp { config, shared })
    }
}

pub(crate) fn is_data_path(path: &str) -> bool {
    path.starts_with(UPLOAD_PREFIX)
}

fn text(status: u16, body: &str) -> Response {
    let mut resp = Response::new(axum::body::Body::from(body.to_string()));
    *resp.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The source's answer for an injected status.
pub(crate) fn fault_response(status: u16) -> Response {
    let body = match status {
        401 => "Unauthorized: invalid URL token",
        404 => "Not Found",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests: ingestion throttled",
        503 => "Service Unavailable",
        _ => "simulated fault",
    };
    text(status, body)
}

pub(crate) fn router(app: Arc<SumoApp>) -> Router {
    Router::new()
        .route("/receiver/v1/http/{token}", post(upload))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found() -> Response {
    text(404, "Not Found")
}

/// The event id of one message line.
fn line_id(line: &str) -> Option<String> {
    match serde_json::from_str::<Value>(line) {
        Ok(v) => v
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| event_id_of(&v)),
        Err(_) => processors::sink::event_fields::cef_extension(line, "externalId"),
    }
}

async fn upload(
    State(app): State<Arc<SumoApp>>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (resp, decoded) = upload_inner(&app, &token, &headers, &body);
    app.shared.rec().request(ReceivedRequest {
        method: method.to_string(),
        // The path holds the token: record it masked, as a careful proxy would log it.
        path: format!("{UPLOAD_PREFIX}***"),
        headers: header_pairs(&headers),
        body: decoded,
        status: resp.status().as_u16(),
    });
    resp
}

fn upload_inner(
    app: &SumoApp,
    token: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, Vec<u8>) {
    use subtle::ConstantTimeEq as _;
    let known = token.len() == app.config.token.len()
        && bool::from(token.as_bytes().ct_eq(app.config.token.as_bytes()));
    if !known {
        app.shared.rec().stats.auth_failures += 1;
        return (text(401, "Unauthorized: invalid URL token"), Vec::new());
    }
    let decoded = match decode_body(headers, body, app.shared.max_body_bytes) {
        Ok(b) => b,
        Err(e) => {
            app.shared.rec().stats.bad_requests += 1;
            return (text(400, &e), Vec::new());
        }
    };
    if decoded.len() > app.config.max_request_bytes {
        app.shared.rec().stats.bad_requests += 1;
        return (text(413, "Request Entity Too Large"), decoded);
    }
    let Ok(body_text) = std::str::from_utf8(&decoded) else {
        app.shared.rec().stats.bad_requests += 1;
        return (text(400, "body is not UTF-8"), decoded);
    };
    let mut rec = app.shared.rec();
    for line in body_text.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.trim().is_empty() {
            continue;
        }
        rec.accept(line_id(line).as_deref());
    }
    drop(rec);
    (text(200, ""), decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_from_json_and_cef_lines() {
        assert_eq!(line_id(r#"{"event_id":"a"}"#).as_deref(), Some("a"));
        assert_eq!(line_id(r#"{"event":{"id":"b"}}"#).as_deref(), Some("b"));
        assert_eq!(
            line_id(r"CEF:0|v|p|1|x|n|5|externalId=c msg=a\=b").as_deref(),
            Some("c")
        );
        assert_eq!(line_id("plain text"), None);
        assert!(is_data_path("/receiver/v1/http/tok"));
        assert!(!is_data_path("/_sim/received"));
        assert_eq!(
            SumoSimConfig::new("tok").upload_url("http://h:1/"),
            "http://h:1/receiver/v1/http/tok"
        );
    }
}
