//! PagerDuty Events API v2 simulator: `POST /v2/enqueue`, one JSON event per request.
//!
//! It validates events the way the real API does and answers with its bodies: 202
//! `{"status":"success","message":"Event processed","dedup_key":…}`; 400
//! `{"status":"invalid event","message":"Event object is invalid","errors":[…]}` for a body
//! that is not a JSON object, a `routing_key` that is missing, not 32 characters or not one of
//! the configured integration keys, an `event_action` other than `trigger`, `acknowledge`,
//! `resolve`, a `dedup_key` over 255 characters (or missing on acknowledge/resolve), and for
//! triggers a missing `payload`, a blank `payload.summary` or one over 1024 characters, a blank
//! `payload.source`, a `payload.severity` outside `critical|error|warning|info`, a
//! `payload.timestamp` that is not ISO 8601, `custom_details` that is not an object, `links`
//! or `images` that are not lists of objects with `href`/`src`; an event over 512 KB. A
//! trigger without `dedup_key` gets a generated one, as PagerDuty does.
//!
//! Incidents are kept per dedup key and routing key: a trigger opens one or, while it is open,
//! is deduplicated into it (counted: a well-behaved sink causes none); a resolve closes it
//! (a resolve for no open incident is dropped, counted). [`PagerDutyApp::incidents`] and
//! [`PagerDutyApp::actions`] let tests assert exactly one trigger per incident. Event ids in
//! `payload.custom_details.secflow.event_ids` count as received events.
//!
//! `GET /_sim/pagerduty` returns the incidents and events as JSON.
//!
//! Faults: the common status rules (e.g. a 429 burst: PagerDuty's throttle body), latency and
//! drops apply to `/v2/enqueue`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::alerts::{is_iso8601, AlertAction, AlertLog, IncidentHistory};
use super::recorder::ReceivedRequest;
use super::{header_pairs, json as json_resp, Shared, SimError};

/// Path of the Events API v2 endpoint.
pub const ENQUEUE_PATH: &str = "/v2/enqueue";

/// Settings of the PagerDuty simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutySimConfig {
    /// The integration (routing) keys that exist; each 32 characters.
    pub routing_keys: Vec<String>,
    /// Largest event in bytes (PagerDuty: 512 KB).
    pub max_event_bytes: usize,
}

impl PagerDutySimConfig {
    /// A service with these integration keys and PagerDuty's size limit.
    pub fn new(routing_keys: &[&str]) -> Self {
        PagerDutySimConfig {
            routing_keys: routing_keys.iter().map(|k| k.to_string()).collect(),
            max_event_bytes: 512 * 1024,
        }
    }
}

/// The running PagerDuty simulator: incidents and accepted events.
#[derive(Debug)]
pub struct PagerDutyApp {
    config: PagerDutySimConfig,
    shared: Arc<Shared>,
    log: Mutex<AlertLog>,
}

impl PagerDutyApp {
    pub(crate) fn new(config: PagerDutySimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        if config.routing_keys.is_empty()
            || config.routing_keys.iter().any(|k| k.chars().count() != 32)
        {
            return Err(SimError::Config(
                "PagerDuty simulator needs routing keys of 32 characters".into(),
            ));
        }
        Ok(PagerDutyApp {
            config,
            shared,
            log: Mutex::new(AlertLog::default()),
        })
    }

    fn log(&self) -> MutexGuard<'_, AlertLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The history of every dedup key.
    pub fn incidents(&self) -> BTreeMap<String, IncidentHistory> {
        self.log().keys()
    }

    /// Every accepted event (`trigger`, `acknowledge`, `resolve`) with its receive time.
    pub fn actions(&self) -> Vec<AlertAction> {
        self.log().actions()
    }

    /// Forgets incidents and events.
    pub fn clear(&self) {
        self.log().clear();
    }
}

pub(crate) fn is_data_path(path: &str) -> bool {
    path.trim_end_matches('/') == ENQUEUE_PATH
}

fn invalid(errors: &[String]) -> Response {
    json_resp(
        400,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

/// PagerDuty's answer for an injected status.
pub(crate) fn fault_response(status: u16) -> Response {
    match status {
        429 => json_resp(
            429,
            json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly.  Please retry later."}),
        ),
        400 => invalid(&["simulated fault".to_string()]),
        s => json_resp(s, json!({"status": "error", "message": "simulated fault"})),
    }
}

pub(crate) fn router(app: Arc<PagerDutyApp>) -> Router {
    Router::new()
        .route(ENQUEUE_PATH, post(enqueue))
        .route("/v2/enqueue/", post(enqueue))
        .route("/_sim/pagerduty", get(control))
        .with_state(app)
}

/// `GET /_sim/pagerduty`: `{"incidents": {dedup_key: history}, "actions": [...]}`.
async fn control(State(app): State<Arc<PagerDutyApp>>) -> Response {
    json_resp(
        200,
        json!({"incidents": app.incidents(), "actions": app.actions()}),
    )
}

async fn enqueue(
    State(app): State<Arc<PagerDutyApp>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = enqueue_inner(&app, &body);
    app.shared.rec().request(ReceivedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        headers: header_pairs(&headers),
        body: body.to_vec(),
        status: resp.status().as_u16(),
    });
    resp
}

fn str_field<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn blank(v: Option<&str>) -> bool {
    v.is_none_or(|s| s.trim().is_empty())
}

/// The problems PagerDuty would report for `event`, in its words.
fn validate(app: &PagerDutyApp, event: &Value, size: usize) -> Vec<String> {
    let mut errors = Vec::new();
    if size > app.config.max_event_bytes {
        errors.push(format!(
            "Event object is too large (maximum is {} bytes)",
            app.config.max_event_bytes
        ));
    }
    match event.get("routing_key").and_then(Value::as_str) {
        None | Some("") => errors.push("'routing_key' is missing or blank".to_string()),
        Some(k) if k.chars().count() != 32 => errors
            .push("Length of 'routing_key' is incorrect (should be 32 characters)".to_string()),
        Some(k) if !app.config.routing_keys.iter().any(|x| x == k) => {
            errors.push("Invalid routing key".to_string())
        }
        Some(_) => {}
    }
    let action = event
        .get("event_action")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        errors.push(
            "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')"
                .to_string(),
        );
    }
    match event.get("dedup_key") {
        None | Some(Value::Null) if action != "trigger" => {
            errors.push("'dedup_key' is missing or blank".to_string())
        }
        Some(Value::String(k)) if k.chars().count() > 255 => {
            errors.push("Length of 'dedup_key' is too long (maximum is 255 characters)".to_string())
        }
        Some(Value::String(k)) if k.trim().is_empty() && action != "trigger" => {
            errors.push("'dedup_key' is missing or blank".to_string())
        }
        Some(v) if !v.is_string() && !v.is_null() => {
            errors.push("'dedup_key' must be a string".to_string())
        }
        _ => {}
    }
    if action == "trigger" {
        match event.get("payload") {
            Some(Value::Object(_)) => {
                let summary = str_field(event, "/payload/summary");
                if blank(summary) {
                    errors.push("'payload.summary' is missing or blank".to_string());
                } else if summary.is_some_and(|s| s.chars().count() > 1024) {
                    errors.push(
                        "Length of 'payload.summary' is too long (maximum is 1024 characters)"
                            .to_string(),
                    );
                }
                if blank(str_field(event, "/payload/source")) {
                    errors.push("'payload.source' is missing or blank".to_string());
                }
                if !matches!(
                    str_field(event, "/payload/severity"),
                    Some("critical" | "error" | "warning" | "info")
                ) {
                    errors.push("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')".to_string());
                }
                if let Some(ts) = event.pointer("/payload/timestamp") {
                    if !ts.as_str().is_some_and(is_iso8601) {
                        errors.push("'payload.timestamp' is invalid".to_string());
                    }
                }
                if event
                    .pointer("/payload/custom_details")
                    .is_some_and(|d| !d.is_object() && !d.is_null())
                {
                    errors.push("'payload.custom_details' must be an object".to_string());
                }
            }
            _ => errors.push("'payload' is missing or not an object".to_string()),
        }
        for (list, field) in [("links", "href"), ("images", "src")] {
            if let Some(v) = event.get(list) {
                let ok = v.as_array().is_some_and(|items| {
                    items.iter().all(|i| {
                        i.get(field)
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                    })
                });
                if !ok {
                    errors.push(format!("'{list}' is invalid (each needs a '{field}')"));
                }
            }
        }
    }
    errors
}

fn enqueue_inner(app: &PagerDutyApp, body: &[u8]) -> Response {
    let event: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            app.shared.rec().stats.bad_requests += 1;
            return invalid(&["Event object is not a JSON object".to_string()]);
        }
    };
    let errors = validate(app, &event, body.len());
    if !errors.is_empty() {
        let mut rec = app.shared.rec();
        if errors.iter().any(|e| e.contains("routing")) {
            rec.stats.auth_failures += 1;
        } else {
            rec.stats.bad_requests += 1;
        }
        return invalid(&errors);
    }
    let action = str_field(&event, "/event_action").unwrap_or("").to_string();
    let routing_key = str_field(&event, "/routing_key").unwrap_or("").to_string();
    let dedup_key = str_field(&event, "/dedup_key")
        .filter(|k| !k.trim().is_empty())
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string);
    {
        let mut log = app.log();
        match action.as_str() {
            "trigger" => {
                log.open(&dedup_key, &routing_key, &action, &event);
            }
            "resolve" => {
                log.close(&dedup_key, &routing_key, &action, &event);
            }
            _ => log.record(&dedup_key, &action, &event),
        }
    }
    if action == "trigger" {
        let ids: Vec<&str> = event
            .pointer("/payload/custom_details/secflow/event_ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut rec = app.shared.rec();
        for id in ids {
            rec.accept(Some(id));
        }
    }
    json_resp(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key}),
    )
}
