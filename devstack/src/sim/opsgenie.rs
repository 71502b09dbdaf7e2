//! OpsGenie Alert API simulator: create alerts (`POST /v2/alerts`), close them
//! (`POST /v2/alerts/<identifier>/close?identifierType=alias|id`), and heartbeat pings
//! (`GET|POST|PUT /v2/heartbeats/<name>/ping`), with `Authorization: GenieKey <key>`.
//!
//! Answers are OpsGenie's: 202 `{"result":"Request will be processed","took":…,"requestId":…}`
//! for creates and closes (OpsGenie processes them asynchronously), 202
//! `{"result":"PONG - Heartbeat received",…}` for pings; 401 `{"message":"Could not
//! authenticate",…}` for a missing or wrong key; 400 `{"message":"Could not parse the request
//! body",…}` for a body that is not a JSON object; 422 `{"message":"Request body is not
//! processable. Please check the errors.","errors":{field: reason},…}` for an alert breaking
//! the documented limits: `message` blank or over 130 characters, `alias` over 512,
//! `description` over 15000, more than 20 tags or a tag over 50, `details` not a map of strings
//! or over 8000 characters in all, `entity` over 512, `source` or `user` over 100, `note` over
//! 25000, `priority` other than P1–P5, responders without a known `type` (team, user,
//! escalation, schedule) and an `id`/`name`/`username`; 404 for an unknown heartbeat.
//! (OpsGenie itself truncates some over-long fields; refusing them shows a sink that does not
//! cut them.)
//!
//! Alerts are kept per alias: a create opens one or, while it is open, is deduplicated into it
//! (counted); a close by alias closes it (a close for nothing open is counted as ignored).
//! Pings are recorded with their receive time. Event ids in `details.event_id` count as
//! received events.
//!
//! `GET /_sim/opsgenie` returns alerts, actions and pings as JSON.
//!
//! Faults: the common status rules, latency and drops apply to `/v2/alerts` requests only —
//! never to heartbeat pings, so a test sees whether the *sink* stops pinging while alerts fail.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::alerts::{request_id, AlertAction, AlertLog, HeartbeatPing, IncidentHistory};
use super::recorder::ReceivedRequest;
use super::{header, header_pairs, json as json_resp, Shared, SimError};

/// Path of the alerts API.
pub const ALERTS_PATH: &str = "/v2/alerts";

/// Settings of the OpsGenie simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsGenieSimConfig {
    /// The API integration key (`Authorization: GenieKey <key>`).
    pub api_key: String,
    /// Heartbeats that exist, by name.
    pub heartbeats: Vec<String>,
}

impl OpsGenieSimConfig {
    /// An account with this key and these heartbeats.
    pub fn new(api_key: impl Into<String>, heartbeats: &[&str]) -> Self {
        OpsGenieSimConfig {
            api_key: api_key.into(),
            heartbeats: heartbeats.iter().map(|h| h.to_string()).collect(),
        }
    }
}

/// The running OpsGenie simulator: alerts, actions, pings.
#[derive(Debug)]
pub struct OpsGenieApp {
    config: OpsGenieSimConfig,
    shared: Arc<Shared>,
    log: Mutex<AlertLog>,
}

impl OpsGenieApp {
    pub(crate) fn new(config: OpsGenieSimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        if config.api_key.trim().is_empty() {
            return Err(SimError::Config(
                "OpsGenie simulator API key is empty".into(),
            ));
        }
        Ok(OpsGenieApp {
            config,
            shared,
            log: Mutex::new(AlertLog::default()),
        })
    }

    fn log(&self) -> MutexGuard<'_, AlertLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The history of every alias.
    pub fn alerts(&self) -> BTreeMap<String, IncidentHistory> {
        self.log().keys()
    }

    /// Every accepted create and close with its receive time.
    pub fn actions(&self) -> Vec<AlertAction> {
        self.log().actions()
    }

    /// Every heartbeat ping received, in order.
    pub fn pings(&self) -> Vec<HeartbeatPing> {
        self.log().pings()
    }

    /// Forgets alerts, actions and pings.
    pub fn clear(&self) {
        self.log().clear();
    }
}

pub(crate) fn is_data_path(path: &str) -> bool {
    path == ALERTS_PATH || path.starts_with("/v2/alerts/")
}

fn took() -> Value {
    json!(0.004)
}

fn error(status: u16, message: &str) -> Response {
    json_resp(
        status,
        json!({"message": message, "took": took(), "requestId": request_id()}),
    )
}

fn accepted(result: &str) -> Response {
    json_resp(
        202,
        json!({"result": result, "took": took(), "requestId": request_id()}),
    )
}

/// OpsGenie's answer for an injected status.
pub(crate) fn fault_response(status: u16) -> Response {
    match status {
        401 => error(401, "Could not authenticate"),
        403 => error(403, "You do not have the permission to do this action"),
        422 => json_resp(
            422,
            json!({"message": "Request body is not processable. Please check the errors.", "errors": {"simulated": "fault"}, "took": took(), "requestId": request_id()}),
        ),
        429 => error(
            429,
            "You are making too many requests! To avoid errors, we recommend you limit requests.",
        ),
        s => error(s, "simulated fault"),
    }
}

pub(crate) fn router(app: Arc<OpsGenieApp>) -> Router {
    Router::new()
        .route(ALERTS_PATH, post(create))
        .route("/v2/alerts/{identifier}/close", post(close))
        .route("/v2/heartbeats/{name}/ping", any(ping))
        .route("/_sim/opsgenie", get(control))
        .with_state(app)
}

/// `GET /_sim/opsgenie`: `{"alerts": {alias: history}, "actions": [...], "pings": [...]}`.
async fn control(State(app): State<Arc<OpsGenieApp>>) -> Response {
    json_resp(
        200,
        json!({"alerts": app.alerts(), "actions": app.actions(), "pings": app.pings()}),
    )
}

/// `Some(response)` when the key is missing or wrong.
fn refuse_auth(app: &OpsGenieApp, headers: &HeaderMap) -> Option<Response> {
    let ok = header(headers, "authorization")
        .and_then(|v| v.trim().strip_prefix("GenieKey "))
        .is_some_and(|k| k.trim() == app.config.api_key);
    if ok {
        None
    } else {
        app.shared.rec().stats.auth_failures += 1;
        Some(error(401, "Could not authenticate"))
    }
}

fn record(
    app: &OpsGenieApp,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    resp: &Response,
) {
    app.shared.rec().request(ReceivedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        headers: header_pairs(headers),
        body: body.to_vec(),
        status: resp.status().as_u16(),
    });
}

fn unprocessable(errors: Map<String, Value>) -> Response {
    json_resp(
        422,
        json!({"message": "Request body is not processable. Please check the errors.", "errors": errors, "took": took(), "requestId": request_id()}),
    )
}

fn chars(v: &Value, key: &str) -> usize {
    v.get(key)
        .and_then(Value::as_str)
        .map_or(0, |s| s.chars().count())
}

/// The problems OpsGenie would report for a create, by field.
fn validate_create(alert: &Value) -> Map<String, Value> {
    let mut e = Map::new();
    let mut err = |k: &str, m: String| {
        e.insert(k.to_string(), Value::from(m));
    };
    match alert.get("message").and_then(Value::as_str) {
        None => err("message", "Message can not be empty.".into()),
        Some(m) if m.trim().is_empty() => err("message", "Message can not be empty.".into()),
        Some(m) if m.chars().count() > 130 => err(
            "message",
            "Message can not be longer than 130 characters.".into(),
        ),
        _ => {}
    }
    for (field, max) in [
        ("alias", 512),
        ("description", 15_000),
        ("entity", 512),
        ("source", 100),
        ("user", 100),
        ("note", 25_000),
    ] {
        if alert.get(field).is_some_and(|v| !v.is_string()) {
            err(field, format!("{field} must be a string."));
        } else if chars(alert, field) > max {
            err(
                field,
                format!("{field} can not be longer than {max} characters."),
            );
        }
    }
    if let Some(p) = alert.get("priority") {
        if !matches!(p.as_str(), Some("P1" | "P2" | "P3" | "P4" | "P5")) {
            err(
                "priority",
                "Priority should be one of [P1, P2, P3, P4, P5].".into(),
            );
        }
    }
    if let Some(tags) = alert.get("tags") {
        match tags.as_array() {
            Some(t) if t.len() > 20 => err("tags", "Tags can not be more than 20.".into()),
            Some(t)
                if t.iter()
                    .any(|x| x.as_str().is_none_or(|s| s.chars().count() > 50)) =>
            {
                err(
                    "tags",
                    "Each tag must be a string of at most 50 characters.".into(),
                )
            }
            Some(_) => {}
            None => err("tags", "Tags must be a list.".into()),
        }
    }
    if let Some(details) = alert.get("details") {
        match details.as_object() {
            Some(d) if d.values().any(|v| !v.is_string()) => {
                err("details", "Details values must be strings.".into())
            }
            Some(d) => {
                let total: usize = d
                    .iter()
                    .map(|(k, v)| k.chars().count() + v.as_str().map_or(0, |s| s.chars().count()))
                    .sum();
                if total > 8_000 {
                    err(
                        "details",
                        "Details can not be longer than 8000 characters in total.".into(),
                    );
                }
            }
            None => err("details", "Details must be a map.".into()),
        }
    }
    if let Some(responders) = alert.get("responders") {
        let ok = responders.as_array().is_some_and(|rs| {
            rs.iter().all(|r| {
                let kind = r.get("type").and_then(Value::as_str);
                let named = ["id", "name", "username"].iter().any(|k| {
                    r.get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.trim().is_empty())
                });
                matches!(kind, Some("team" | "user" | "escalation" | "schedule")) && named
            })
        });
        if !ok {
            err(
                "responders",
                "Responders must have a type (team, user, escalation, schedule) and an id, name or username.".into(),
            );
        }
    }
    e
}

async fn create(
    State(app): State<Arc<OpsGenieApp>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = create_inner(&app, &headers, &body);
    record(&app, &method, &uri, &headers, &body, &resp);
    resp
}

fn create_inner(app: &OpsGenieApp, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Some(r) = refuse_auth(app, headers) {
        return r;
    }
    let alert: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            app.shared.rec().stats.bad_requests += 1;
            return error(400, "Could not parse the request body");
        }
    };
    let errors = validate_create(&alert);
    if !errors.is_empty() {
        app.shared.rec().stats.bad_requests += 1;
        return unprocessable(errors);
    }
    // Without an alias OpsGenie uses a generated one: every such create is a new alert.
    let alias = alert
        .get("alias")
        .and_then(Value::as_str)
        .filter(|a| !a.trim().is_empty())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    app.log().open(&alias, "", "create", &alert);
    if let Some(id) = alert.pointer("/details/event_id").and_then(Value::as_str) {
        app.shared.rec().accept(Some(id));
    }
    accepted("Request will be processed")
}

async fn close(
    State(app): State<Arc<OpsGenieApp>>,
    Path(identifier): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = close_inner(&app, &identifier, &query, &headers, &body);
    record(&app, &method, &uri, &headers, &body, &resp);
    resp
}

fn close_inner(
    app: &OpsGenieApp,
    identifier: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Some(r) = refuse_auth(app, headers) {
        return r;
    }
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                app.shared.rec().stats.bad_requests += 1;
                return error(400, "Could not parse the request body");
            }
        }
    };
    let mut errors = Map::new();
    for (field, max) in [("source", 100), ("user", 100), ("note", 25_000)] {
        if chars(&payload, field) > max {
            errors.insert(
                field.to_string(),
                Value::from(format!("{field} can not be longer than {max} characters.")),
            );
        }
    }
    let kind = query.get("identifierType").map_or("id", String::as_str);
    if !matches!(kind, "id" | "alias" | "tiny") {
        errors.insert(
            "identifierType".to_string(),
            Value::from("identifierType should be one of [id, alias, tiny]."),
        );
    }
    if !errors.is_empty() {
        app.shared.rec().stats.bad_requests += 1;
        return unprocessable(errors);
    }
    // Only aliases are tracked here; a close by id or tiny id is recorded and ignored.
    let key = if kind == "alias" {
        identifier.to_string()
    } else {
        format!("{kind}:{identifier}")
    };
    app.log().close(&key, "", "close", &payload);
    accepted("Request will be processed")
}

async fn ping(
    State(app): State<Arc<OpsGenieApp>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = if !matches!(method, Method::GET | Method::POST | Method::PUT) {
        error(405, "Method not allowed")
    } else if let Some(r) = refuse_auth(&app, &headers) {
        r
    } else if !app.config.heartbeats.contains(&name) {
        error(
            404,
            &format!("Heartbeat with name [{name}] does not exist."),
        )
    } else {
        app.log().ping(&name);
        accepted("PONG - Heartbeat received")
    };
    record(&app, &method, &uri, &headers, &body, &resp);
    resp
}
