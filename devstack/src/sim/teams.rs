//! Microsoft Teams webhook simulator: Workflows (Power Automate) webhooks
//! (`POST /workflows/<id>/triggers/manual/paths/invoke?api-version=…&sp=…&sv=1.0&sig=<sig>`,
//! answering `202 Accepted` with an empty body, errors as `{"error": {"code", "message"}}`) and
//! legacy Office 365 connector webhooks (`POST /webhookb2/<group>@<tenant>/IncomingWebhook/<id>/
//! <owner>`, answering `200` with the body `1`).
//!
//! Every channel in the config gets one URL of each kind ([`TeamsSimConfig::workflow_url`],
//! [`TeamsSimConfig::connector_url`]), derived from its name.
//!
//! What it checks: the signature (`401 DirectApiAuthorizationRequired` when missing,
//! `DirectApiInvalidAuthorizationSignature` when wrong), unknown workflows (`404
//! WorkflowNotFound`), the body is JSON (`400 InvalidRequestContent`), and the card's shape:
//! a Workflows body must be `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "version":
//! "1.x", "body": [...]}}]}` with known elements (`TextBlock` with `text`, `FactSet` with string
//! `title`/`value` facts, `Container` with `items`, `ColumnSet`, `Image` with `url`) and
//! `Action.OpenUrl` actions with `title` and `url` (`400 TriggerInputSchemaMismatch`: a real
//! flow accepts and fails in its run; rejecting at the trigger is what a flow with a schema
//! does, and it makes card bugs visible); a connector takes that or a `MessageCard`
//! (`@type`, `summary` or `text` required — `400 Summary or Text is required.` — at most 10
//! sections, facts with `name`/`value`, `OpenUri` actions). Messages over `max_message_bytes`
//! (28 KB) are refused (Workflows `413`; connector `200` with the wrapped error).
//!
//! Like the real connector, a connector reports Teams' own errors **inside a 200**: `Webhook
//! message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with
//! ContextId …`. [`TeamsApp::wrap_next`] makes the next connector posts answer that way.
//!
//! **Rate limit** (optional, `min_interval`): a second message to one channel sooner than that
//! is refused (Workflows `429` with `Retry-After: 1`; connector the wrapped 429) and recorded
//! as throttled. Accepted messages are recorded per channel with their receive time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::recorder::ReceivedRequest;
use super::{header, header_pairs, json as json_resp, Shared, SimError};

/// Settings of the Teams simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamsSimConfig {
    /// Channels; each has a Workflows URL and a connector URL.
    pub channels: Vec<String>,
    /// Smallest time between two accepted messages to one channel; `None`: not enforced.
    pub min_interval: Option<Duration>,
    /// Largest message body (Teams: about 28 KB).
    pub max_message_bytes: usize,
}

fn hex(data: &str, len: usize) -> String {
    Sha256::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..len]
        .to_string()
}

fn guid(data: &str) -> String {
    let h = hex(data, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl TeamsSimConfig {
    /// These channels, Teams' 28 KB limit, no rate limit.
    pub fn new(channels: &[&str]) -> Self {
        TeamsSimConfig {
            channels: channels.iter().map(|c| c.to_string()).collect(),
            min_interval: None,
            max_message_bytes: 28 * 1024,
        }
    }

    /// With a per-channel rate limit.
    pub fn with_min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = Some(interval);
        self
    }

    fn workflow_id(channel: &str) -> String {
        hex(&format!("workflow:{channel}"), 32)
    }

    fn signature(channel: &str) -> String {
        hex(&format!("sig:{channel}"), 43)
    }

    fn connector_path(channel: &str) -> String {
        format!(
            "{}@{}/IncomingWebhook/{}/{}",
            guid(&format!("group:{channel}")),
            guid("tenant"),
            hex(&format!("connector:{channel}"), 32),
            guid(&format!("owner:{channel}"))
        )
    }

    /// The Workflows webhook URL of `channel` for a simulator at `base`.
    pub fn workflow_url(base: &str, channel: &str) -> String {
        format!(
            "{}/workflows/{}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={}",
            base.trim_end_matches('/'),
            Self::workflow_id(channel),
            Self::signature(channel)
        )
    }

    /// The legacy connector webhook URL of `channel` for a simulator at `base`.
    pub fn connector_url(base: &str, channel: &str) -> String {
        format!(
            "{}/webhookb2/{}",
            base.trim_end_matches('/'),
            Self::connector_path(channel)
        )
    }
}

/// How a message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamsVia {
    /// A Workflows webhook.
    Workflow,
    /// A legacy connector.
    Connector,
}

/// A message the simulator accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamsMessage {
    /// Channel.
    pub channel: String,
    /// When it arrived: microseconds since the Unix epoch (wall clock).
    pub received_us: u64,
    /// How it arrived.
    pub via: TeamsVia,
    /// The request body (JSON).
    pub body: Value,
}

impl TeamsMessage {
    /// The card: an Adaptive Card's `content`, or the `MessageCard` itself.
    pub fn card(&self) -> &Value {
        self.body
            .pointer("/attachments/0/content")
            .unwrap_or(&self.body)
    }

    /// Every `text`, `title`, `value`, `summary` and `activityTitle` string of the card,
    /// joined by line breaks: what a reader sees, for assertions.
    pub fn all_text(&self) -> String {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        match (k.as_str(), x) {
                            ("text" | "title" | "value" | "activityTitle", Value::String(s)) => {
                                out.push(s.clone())
                            }
                            _ => walk(x, out),
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self.card(), &mut out);
        out.join("\n")
    }
}

/// A message refused by the rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamsThrottled {
    /// Channel.
    pub channel: String,
    /// When it arrived, microseconds since the Unix epoch.
    pub received_us: u64,
}

#[derive(Debug, Default)]
struct Channels {
    last_accepted: HashMap<String, Instant>,
    messages: Vec<TeamsMessage>,
    throttled: Vec<TeamsThrottled>,
    wrap: VecDeque<(u16, u32)>,
}

/// The running Teams simulator (see the module documentation).
#[derive(Debug)]
pub struct TeamsApp {
    config: TeamsSimConfig,
    shared: Arc<Shared>,
    by_workflow: HashMap<String, String>,
    by_connector: HashMap<String, String>,
    state: Mutex<Channels>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl TeamsApp {
    pub(crate) fn new(config: TeamsSimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        if config.channels.is_empty() {
            return Err(SimError::Config("Teams simulator needs a channel".into()));
        }
        let by_workflow = config
            .channels
            .iter()
            .map(|c| (TeamsSimConfig::workflow_id(c), c.clone()))
            .collect();
        let by_connector = config
            .channels
            .iter()
            .map(|c| (TeamsSimConfig::connector_path(c), c.clone()))
            .collect();
        Ok(TeamsApp {
            config,
            shared,
            by_workflow,
            by_connector,
            state: Mutex::new(Channels::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, Channels> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every accepted message, in arrival order.
    pub fn messages(&self) -> Vec<TeamsMessage> {
        self.state().messages.clone()
    }

    /// The accepted messages of `channel`.
    pub fn messages_in(&self, channel: &str) -> Vec<TeamsMessage> {
        self.state()
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    /// Messages refused by the rate limit.
    pub fn throttled(&self) -> Vec<TeamsThrottled> {
        self.state().throttled.clone()
    }

    /// The next `count` connector posts are answered `200` with `Microsoft Teams endpoint
    /// returned HTTP error <status>` and not recorded.
    pub fn wrap_next(&self, status: u16, count: u32) {
        self.state().wrap.push_back((status, count));
    }
}

pub(crate) fn is_data_path(path: &str) -> bool {
    path.starts_with("/workflows/") || path.starts_with("/webhookb2/")
}

fn flow_error(status: u16, code: &str, message: &str) -> Response {
    json_resp(status, json!({"error": {"code": code, "message": message}}))
}

/// The answer for an injected status: a Workflows error.
pub(crate) fn fault_response(status: u16) -> Response {
    let code = match status {
        400 => "InvalidRequestContent",
        401 => "DirectApiAuthorizationRequired",
        403 => "AuthorizationFailed",
        404 => "WorkflowNotFound",
        413 => "MessageTooLarge",
        429 => "WorkflowRequestsThrottled",
        _ => "ServiceUnavailable",
    };
    flow_error(status, code, "Simulated fault.")
}

fn text(status: u16, body: &str) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The connector's 200 that reports an error Teams answered.
fn wrapped(status: u16) -> Response {
    text(
        200,
        &format!(
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP \
             error {status} with ContextId tcid=0,server=msgapi-sim-0,cv=c2VjZmxvdw.0.."
        ),
    )
}

pub(crate) fn router(app: Arc<TeamsApp>) -> Router {
    Router::new()
        .route(
            "/workflows/{id}/triggers/manual/paths/invoke",
            post(workflow),
        )
        .route("/webhookb2/{*path}", post(connector))
        .route("/_sim/teams/messages", get(list_messages))
        .with_state(app)
}

async fn list_messages(State(app): State<Arc<TeamsApp>>) -> Response {
    Json(json!({"messages": app.messages(), "throttled": app.throttled()})).into_response()
}

fn is_str(v: Option<&Value>) -> bool {
    v.is_some_and(|x| x.as_str().is_some_and(|s| !s.is_empty()))
}

/// Checks Adaptive Card elements; the reason when one is malformed.
fn check_elements(items: &Value) -> Result<(), String> {
    let Some(list) = items.as_array() else {
        return Err("body/items must be an array".into());
    };
    for e in list {
        match e.get("type").and_then(Value::as_str) {
            Some("TextBlock") if is_str(e.get("text")) => {}
            Some("FactSet") => {
                let facts = e.get("facts").and_then(Value::as_array);
                let ok = facts.is_some_and(|f| {
                    f.iter().all(|x| {
                        x.get("title").is_some_and(Value::is_string)
                            && x.get("value").is_some_and(Value::is_string)
                    })
                });
                if !ok {
                    return Err("FactSet facts need string title and value".into());
                }
            }
            Some("Container") => check_elements(e.get("items").unwrap_or(&Value::Null))?,
            Some("ColumnSet") => {
                for col in e
                    .get("columns")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    check_elements(col.get("items").unwrap_or(&Value::Null))?;
                }
            }
            Some("Image") if is_str(e.get("url")) => {}
            other => return Err(format!("unsupported or incomplete element {other:?}")),
        }
    }
    Ok(())
}

fn check_adaptive(content: &Value) -> Result<(), String> {
    if content.get("type").and_then(Value::as_str) != Some("AdaptiveCard") {
        return Err("content.type must be AdaptiveCard".into());
    }
    let version_ok = content
        .get("version")
        .and_then(Value::as_str)
        .and_then(|v| v.strip_prefix("1."))
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m <= 6);
    if !version_ok {
        return Err("content.version must be 1.0 to 1.6".into());
    }
    check_elements(content.get("body").unwrap_or(&Value::Null))?;
    for a in content
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ok = a.get("type").and_then(Value::as_str) == Some("Action.OpenUrl")
            && is_str(a.get("title"))
            && a.get("url")
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
        if !ok {
            return Err("actions must be Action.OpenUrl with title and an http(s) url".into());
        }
    }
    Ok(())
}

/// A Workflows message body: `type: message` with Adaptive Card attachments.
fn check_message(doc: &Value) -> Result<(), String> {
    if doc.get("type").and_then(Value::as_str) != Some("message") {
        return Err("type must be \"message\"".into());
    }
    let Some(atts) = doc.get("attachments").and_then(Value::as_array) else {
        return Err("attachments must be an array".into());
    };
    if atts.is_empty() {
        return Err("attachments is empty".into());
    }
    for a in atts {
        if a.get("contentType").and_then(Value::as_str)
            != Some("application/vnd.microsoft.card.adaptive")
        {
            return Err(
                "attachment contentType must be application/vnd.microsoft.card.adaptive".into(),
            );
        }
        check_adaptive(a.get("content").unwrap_or(&Value::Null))?;
    }
    Ok(())
}

/// A connector `MessageCard`; `Err(true)` when it has neither summary nor text.
fn check_message_card(doc: &Value) -> Result<(), (bool, String)> {
    if !(is_str(doc.get("summary")) || is_str(doc.get("text"))) {
        return Err((true, "Summary or Text is required.".into()));
    }
    if let Some(c) = doc.get("themeColor") {
        let ok = c.as_str().is_some_and(|c| {
            c.trim_start_matches('#').len() == 6
                && c.trim_start_matches('#')
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
        });
        if !ok {
            return Err((false, "themeColor must be a hex colour".into()));
        }
    }
    let sections = doc.get("sections").and_then(Value::as_array);
    if sections.is_some_and(|s| s.len() > 10) {
        return Err((false, "at most 10 sections".into()));
    }
    for s in sections.into_iter().flatten() {
        for f in s
            .get("facts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !(f.get("name").is_some_and(Value::is_string)
                && f.get("value").is_some_and(Value::is_string))
            {
                return Err((false, "facts need string name and value".into()));
            }
        }
    }
    for a in doc
        .get("potentialAction")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ok = a.get("@type").and_then(Value::as_str) == Some("OpenUri")
            && is_str(a.get("name"))
            && a.get("targets")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty() && t.iter().all(|x| is_str(x.get("uri"))));
        if !ok {
            return Err((
                false,
                "potentialAction must be OpenUri with name and targets".into(),
            ));
        }
    }
    Ok(())
}

/// Records an accepted message unless the rate limit refuses it.
fn accept(app: &TeamsApp, channel: &str, via: TeamsVia, body: Value, received_us: u64) -> bool {
    let mut s = app.state();
    let now = Instant::now();
    if let (Some(min), Some(last)) = (app.config.min_interval, s.last_accepted.get(channel)) {
        if now.duration_since(*last) < min {
            s.throttled.push(TeamsThrottled {
                channel: channel.to_string(),
                received_us,
            });
            return false;
        }
    }
    s.last_accepted.insert(channel.to_string(), now);
    s.messages.push(TeamsMessage {
        channel: channel.to_string(),
        received_us,
        via,
        body,
    });
    drop(s);
    app.shared.rec().accept(None);
    true
}

fn record(app: &TeamsApp, path: String, headers: &HeaderMap, body: &[u8], status: u16) {
    app.shared.rec().request(ReceivedRequest {
        method: "POST".to_string(),
        path,
        headers: header_pairs(headers),
        body: body.to_vec(),
        status,
    });
}

async fn workflow(
    State(app): State<Arc<TeamsApp>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_us = now_us();
    let resp = workflow_inner(&app, &id, &query, &headers, &body, received_us);
    // The signature is the credential: recorded masked.
    record(
        &app,
        format!("/workflows/{id}/triggers/manual/paths/invoke?sig=***"),
        &headers,
        &body,
        resp.status().as_u16(),
    );
    resp
}

fn workflow_inner(
    app: &TeamsApp,
    id: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
    received_us: u64,
) -> Response {
    use subtle::ConstantTimeEq as _;
    let Some(channel) = app.by_workflow.get(id).cloned() else {
        app.shared.rec().stats.auth_failures += 1;
        return flow_error(
            404,
            "WorkflowNotFound",
            &format!("The workflow '{id}' could not be found in resource group 'sim'."),
        );
    };
    let Some(sig) = query.get("sig") else {
        app.shared.rec().stats.auth_failures += 1;
        return flow_error(
            401,
            "DirectApiAuthorizationRequired",
            "The request must be authenticated only by Shared Access scheme.",
        );
    };
    let want = TeamsSimConfig::signature(&channel);
    if !(sig.len() == want.len() && bool::from(sig.as_bytes().ct_eq(want.as_bytes()))) {
        app.shared.rec().stats.auth_failures += 1;
        return flow_error(
            401,
            "DirectApiInvalidAuthorizationSignature",
            "The provided authentication token is not valid.",
        );
    }
    if !header(headers, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        app.shared.rec().stats.bad_requests += 1;
        return flow_error(
            400,
            "InvalidRequestContent",
            "The request content type must be JSON.",
        );
    }
    let doc = match serde_json::from_slice::<Value>(body) {
        Ok(d) => d,
        Err(e) => {
            app.shared.rec().stats.bad_requests += 1;
            return flow_error(
                400,
                "InvalidRequestContent",
                &format!("The request content is not valid JSON: {e}"),
            );
        }
    };
    if body.len() > app.config.max_message_bytes {
        app.shared.rec().stats.bad_requests += 1;
        return flow_error(413, "MessageTooLarge", "Request Entity Too Large");
    }
    if let Err(why) = check_message(&doc) {
        app.shared.rec().stats.bad_requests += 1;
        return flow_error(400, "TriggerInputSchemaMismatch", &why);
    }
    if accept(app, &channel, TeamsVia::Workflow, doc, received_us) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::ACCEPTED;
        r
    } else {
        let mut r = flow_error(
            429,
            "WorkflowRequestsThrottled",
            "Number of requests exceeded the limit.",
        );
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        r
    }
}

async fn connector(
    State(app): State<Arc<TeamsApp>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_us = now_us();
    let resp = connector_inner(&app, &path, &headers, &body, received_us);
    record(
        &app,
        "/webhookb2/***".to_string(),
        &headers,
        &body,
        resp.status().as_u16(),
    );
    resp
}

fn connector_inner(
    app: &TeamsApp,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    received_us: u64,
) -> Response {
    let Some(channel) = app.by_connector.get(path.trim_end_matches('/')).cloned() else {
        app.shared.rec().stats.auth_failures += 1;
        return text(404, "Not Found");
    };
    {
        let mut s = app.state();
        if let Some((status, n)) = s.wrap.front_mut() {
            let status = *status;
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.wrap.pop_front();
            }
            drop(s);
            app.shared.rec().stats.faulted += 1;
            return wrapped(status);
        }
    }
    let json_type =
        header(headers, "content-type").is_some_and(|c| c.starts_with("application/json"));
    let doc = match serde_json::from_slice::<Value>(body) {
        Ok(d) if json_type && d.is_object() => d,
        _ => {
            app.shared.rec().stats.bad_requests += 1;
            return text(400, "Bad payload received by generic incoming webhook.");
        }
    };
    if body.len() > app.config.max_message_bytes {
        app.shared.rec().stats.bad_requests += 1;
        return wrapped(413);
    }
    let shape = if doc.get("@type").and_then(Value::as_str) == Some("MessageCard")
        || doc.get("type").is_none()
    {
        check_message_card(&doc)
    } else {
        check_message(&doc).map_err(|e| (false, e))
    };
    match shape {
        Ok(()) => {}
        Err((true, why)) => {
            app.shared.rec().stats.bad_requests += 1;
            return text(400, &why);
        }
        Err((false, _)) => {
            app.shared.rec().stats.bad_requests += 1;
            return wrapped(400);
        }
    }
    if accept(app, &channel, TeamsVia::Connector, doc, received_us) {
        text(200, "1")
    } else {
        wrapped(429)
    }
}
