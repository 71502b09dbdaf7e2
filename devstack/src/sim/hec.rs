//! Splunk HEC simulator: `/services/collector/event` (JSON batches), indexer acks per channel,
//! `/services/collector/ack`, `/services/collector/health`, an optional load-balancer cookie.

// Helpers return the vendor's error answer itself (built once per failing request).
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{json, Value};

use super::recorder::{event_id_of, ReceivedRequest};
use super::{decode_body, header, header_pairs, json as json_resp, Shared, SimError};

/// Settings of the HEC simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecSimConfig {
    /// The one valid token (`Authorization: Splunk <token>`).
    pub token: String,
    /// Indexer acknowledgement on the token (`useACK`): requests need a channel and get an
    /// `ackId`.
    pub acks: bool,
    /// Name of a load-balancer stickiness cookie to set (e.g. `AWSALB`); `None`: no cookies.
    pub cookie_name: Option<String>,
    /// Indexes the token may write to; empty: any.
    pub allowed_indexes: Vec<String>,
}

impl HecSimConfig {
    /// Acks on, no cookie, any index.
    pub fn new(token: impl Into<String>) -> Self {
        HecSimConfig {
            token: token.into(),
            acks: true,
            cookie_name: None,
            allowed_indexes: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct HecApp {
    config: HecSimConfig,
    shared: Arc<Shared>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Which "indexer" the load balancer routes to; the cookie value is `indexer-<n>`.
    generation: u64,
    channels: HashMap<String, Channel>,
}

#[derive(Debug, Default)]
struct Channel {
    next_id: u64,
    /// ackId → when it becomes true (`None`: never).
    pending: BTreeMap<u64, Option<Instant>>,
}

impl HecApp {
    pub fn new(config: HecSimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        if config.token.is_empty() {
            return Err(SimError::Config("HEC simulator token is empty".into()));
        }
        Ok(HecApp {
            config,
            shared,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Another indexer behind the load balancer: new cookie, pending acks gone.
    pub fn rotate_cookie(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.channels.clear();
    }

    fn cookie_value(&self) -> Option<(String, String)> {
        let name = self.config.cookie_name.clone()?;
        Some((name, format!("indexer-{}", self.inner().generation)))
    }
}

pub(crate) fn is_data_path(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "/services/collector" | "/services/collector/event" | "/services/collector/event/1.0"
    )
}

fn reply(status: u16, text: &str, code: i64) -> Response {
    json_resp(status, json!({ "text": text, "code": code }))
}

/// HEC's answer for an injected status.
pub(crate) fn fault_response(status: u16) -> Response {
    match status {
        503 | 429 => reply(status, "Server is busy", 9),
        401 => reply(401, "Token is required", 2),
        403 => reply(403, "Invalid token", 4),
        400 => reply(400, "Invalid data format", 6),
        _ => reply(status, "Internal server error", 8),
    }
}

pub(crate) fn router(app: Arc<HecApp>) -> Router {
    Router::new()
        .route("/services/collector", post(event))
        .route("/services/collector/event", post(event))
        .route("/services/collector/event/1.0", post(event))
        .route("/services/collector/ack", post(ack))
        .route("/services/collector/ack/1.0", post(ack))
        .route("/services/collector/health", get(health))
        .route("/services/collector/health/1.0", get(health))
        .route("/services/collector/{*rest}", any(not_found))
        .with_state(app)
}

async fn not_found() -> Response {
    reply(404, "The requested URL was not found on this server.", 404)
}

async fn health(State(app): State<Arc<HecApp>>) -> Response {
    match app.shared.faults().outage(Instant::now()) {
        Some(_) => reply(503, "HEC is unhealthy, queues are full", 18),
        None => reply(200, "HEC is healthy", 17),
    }
}

/// Checks `Authorization: Splunk <token>`.
fn check_token(app: &HecApp, headers: &HeaderMap) -> Result<(), Response> {
    let fail = |r: Response| {
        app.shared.rec().stats.auth_failures += 1;
        Err(r)
    };
    let Some(auth) = header(headers, "authorization") else {
        return fail(reply(401, "Token is required", 2));
    };
    let Some((scheme, token)) = auth.trim().split_once(' ') else {
        return fail(reply(401, "Invalid authorization", 3));
    };
    if !scheme.eq_ignore_ascii_case("splunk") {
        return fail(reply(401, "Invalid authorization", 3));
    }
    if token.trim() != app.config.token {
        return fail(reply(403, "Invalid token", 4));
    }
    Ok(())
}

/// The channel from the header or `?channel=`; `Err` answers for a missing/invalid one.
fn channel_of(
    app: &HecApp,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    required: bool,
) -> Result<Option<String>, Response> {
    let ch = header(headers, "x-splunk-request-channel")
        .map(str::to_string)
        .or_else(|| query.get("channel").cloned());
    match ch {
        None if required => {
            app.shared.rec().stats.bad_requests += 1;
            Err(reply(400, "Data channel is missing", 10))
        }
        None => Ok(None),
        Some(c) if uuid::Uuid::parse_str(c.trim()).is_err() => {
            app.shared.rec().stats.bad_requests += 1;
            Err(reply(400, "Invalid data channel", 11))
        }
        Some(c) => Ok(Some(c.trim().to_ascii_lowercase())),
    }
}

/// Adds `Set-Cookie` when the client's cookie is not the current one.
fn with_cookie(app: &HecApp, headers: &HeaderMap, mut resp: Response) -> Response {
    if let Some((name, value)) = app.cookie_value() {
        let current = format!("{name}={value}");
        let has =
            header(headers, "cookie").is_some_and(|c| c.split(';').any(|kv| kv.trim() == current));
        if !has {
            if let Ok(v) = HeaderValue::from_str(&format!("{current}; Path=/")) {
                resp.headers_mut().append("set-cookie", v);
            }
        }
    }
    resp
}

/// Parses a batch of concatenated event objects; `Err` is the HEC error answer.
fn parse_events(app: &HecApp, body: &[u8]) -> Result<Vec<Value>, Response> {
    let bad = |text: &str, code: i64, n: usize| {
        json_resp(
            400,
            json!({ "text": text, "code": code, "invalid-event-number": n }),
        )
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(reply(400, "No data", 5));
    }
    let mut events = Vec::new();
    for (n, item) in serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .enumerate()
    {
        let Ok(v) = item else {
            return Err(bad("Invalid data format", 6, n));
        };
        let Some(obj) = v.as_object() else {
            return Err(bad("Invalid data format", 6, n));
        };
        match obj.get("event") {
            None => return Err(bad("Event field is required", 12, n)),
            Some(Value::Null) => return Err(bad("Event field cannot be blank", 13, n)),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(bad("Event field cannot be blank", 13, n))
            }
            Some(_) => {}
        }
        if let Some(fields) = obj.get("fields") {
            let flat = fields
                .as_object()
                .is_some_and(|m| m.values().all(|v| !v.is_object()));
            if !flat {
                return Err(bad("Error in handling indexed fields", 15, n));
            }
        }
        if !app.config.allowed_indexes.is_empty() {
            if let Some(ix) = obj.get("index").and_then(Value::as_str) {
                if !app.config.allowed_indexes.iter().any(|a| a == ix) {
                    return Err(bad("Incorrect index", 7, n));
                }
            }
        }
        events.push(v);
    }
    Ok(events)
}

fn event_id(event: &Value) -> Option<String> {
    event
        .pointer("/fields/event_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| event.get("event").and_then(event_id_of))
}

async fn event(
    State(app): State<Arc<HecApp>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (resp, decoded) = event_inner(&app, &query, &headers, &body);
    let resp = with_cookie(&app, &headers, resp);
    app.shared.rec().request(ReceivedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        headers: header_pairs(&headers),
        body: decoded,
        status: resp.status().as_u16(),
    });
    resp
}

fn event_inner(
    app: &HecApp,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, Vec<u8>) {
    if let Err(r) = check_token(app, headers) {
        return (r, Vec::new());
    }
    let channel = match channel_of(app, headers, query, app.config.acks) {
        Ok(c) => c,
        Err(r) => return (r, Vec::new()),
    };
    let decoded = match decode_body(headers, body, app.shared.max_body_bytes) {
        Ok(b) => b,
        Err(_) => {
            app.shared.rec().stats.bad_requests += 1;
            return (reply(400, "Invalid data format", 6), Vec::new());
        }
    };
    let events = match parse_events(app, &decoded) {
        Ok(e) => e,
        Err(r) => {
            app.shared.rec().stats.bad_requests += 1;
            return (r, decoded);
        }
    };
    let ack = match (app.config.acks, channel) {
        (true, Some(ch)) => {
            let (withheld, delay, lose) = {
                let mut f = app.shared.faults();
                (f.take_withhold(), f.ack_delay(), f.lose_withheld())
            };
            let ready = (!withheld).then(|| Instant::now() + delay);
            let id = {
                let mut inner = app.inner();
                let c = inner.channels.entry(ch).or_default();
                let id = c.next_id;
                c.next_id += 1;
                c.pending.insert(id, ready);
                id
            };
            {
                let mut rec = app.shared.rec();
                rec.stats.acks_issued += 1;
                if withheld {
                    rec.stats.acks_withheld += 1;
                }
            }
            Some((id, withheld && lose))
        }
        _ => None,
    };
    let lost = ack.is_some_and(|(_, lost)| lost);
    if !lost {
        let mut rec = app.shared.rec();
        for e in &events {
            rec.accept(event_id(e).as_deref());
        }
    }
    let resp = match ack {
        Some((id, _)) => json_resp(200, json!({ "text": "Success", "code": 0, "ackId": id })),
        None => reply(200, "Success", 0),
    };
    (resp, decoded)
}

async fn ack(
    State(app): State<Arc<HecApp>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = ack_inner(&app, &query, &headers, &body);
    let resp = with_cookie(&app, &headers, resp);
    app.shared.rec().request(ReceivedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        headers: header_pairs(&headers),
        body: body.to_vec(),
        status: resp.status().as_u16(),
    });
    resp
}

fn ack_inner(
    app: &HecApp,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    app.shared.rec().stats.ack_polls += 1;
    if let Err(r) = check_token(app, headers) {
        return r;
    }
    if !app.config.acks {
        return reply(400, "ACK is disabled", 14);
    }
    let channel = match channel_of(app, headers, query, true) {
        Ok(Some(c)) => c,
        Ok(None) => return reply(400, "Data channel is missing", 10),
        Err(r) => return r,
    };
    let ids: Vec<u64> = match decode_body(headers, body, app.shared.max_body_bytes)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| {
            v.get("acks")?
                .as_array()?
                .iter()
                .map(Value::as_u64)
                .collect::<Option<Vec<u64>>>()
        }) {
        Some(ids) => ids,
        None => {
            app.shared.rec().stats.bad_requests += 1;
            return reply(400, "Invalid data format", 6);
        }
    };
    let now = Instant::now();
    let mut answers = serde_json::Map::new();
    let mut confirmed = 0;
    {
        let mut inner = app.inner();
        let Some(ch) = inner.channels.get_mut(&channel) else {
            return reply(400, "Invalid data channel", 11);
        };
        for id in ids {
            let ready = matches!(ch.pending.get(&id), Some(Some(at)) if *at <= now);
            if ready {
                ch.pending.remove(&id);
                confirmed += 1;
            }
            answers.insert(id.to_string(), Value::Bool(ready));
        }
    }
    app.shared.rec().stats.acks_confirmed += confirmed;
    json_resp(200, json!({ "acks": answers }))
}
