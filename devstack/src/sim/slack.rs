//! Slack simulator: the Web API's `chat.postMessage` and `auth.test` (`POST /api/<method>`,
//! `Authorization: Bearer <token>`, JSON bodies, answers `200 {"ok": …}`), and incoming
//! webhooks (`POST /services/<team>/<bot>/<secret>`, answers `200 ok` or an HTTP error with
//! the code as text).
//!
//! What it checks, with Slack's own error codes: the token (`not_authed`, `invalid_auth`); the
//! channel, by name (`#soc`, `soc`) or ID (`channel_not_found`, `is_archived`,
//! `not_in_channel`); that the message has text, blocks or attachments (`no_text`), text up to
//! 40,000 characters (`msg_too_long`), at most 50 blocks and 100 attachments, and the Block
//! Kit limits of the blocks we use (`invalid_blocks`: header text 150, section text 3000, up
//! to 10 fields of 2000, context up to 10 elements, up to 25 buttons with text 75 and URL
//! 3000); `thread_ts` must be a message of the channel (`invalid_thread_ts`,
//! `thread_not_found`). A webhook answers 404 `no_service` for an unknown URL, 403
//! `invalid_token` when revoked, 410 `channel_is_archived`, 400 `invalid_payload`/`no_text`/
//! `invalid_blocks`.
//!
//! **Rate limit**: at most one message per channel per `min_interval` (default 1 s), counting
//! API and webhook posts together; a message sooner is refused with 429 and `Retry-After: 1`
//! (API body `{"ok":false,"error":"ratelimited"}`, webhook body `rate_limited`) and recorded
//! as throttled. Accepted messages are recorded per channel with their receive time (wall
//! clock, microseconds), `ts` and `thread_ts`.
//!
//! Faults: the common status rules, latency and drops (`POST /_sim/faults`) apply to
//! `chat.postMessage` and webhook posts; [`SlackApp::fail_api_calls`] answers the next API
//! calls with `200 {"ok": false, "error": <code>}` (`ratelimited` as a 429); channels can be
//! archived, the bot removed, webhooks revoked and messages deleted at run time.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::recorder::ReceivedRequest;
use super::{header, header_pairs, json as json_resp, Shared, SimError};

/// Team and bot ids in simulated webhook URLs.
const TEAM: &str = "T0SIMTEAM";
const BOT: &str = "B0SIMBOT";

/// Settings of the Slack simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackSimConfig {
    /// The bot token `chat.postMessage` accepts.
    pub bot_token: String,
    /// Channels that exist (names without `#`); the bot is a member of all of them.
    pub channels: Vec<String>,
    /// Incoming webhooks: the URL's secret part → the channel it posts to.
    pub webhooks: BTreeMap<String, String>,
    /// Smallest time between two accepted messages to one channel (Slack: one per second).
    pub min_interval: Duration,
}

impl SlackSimConfig {
    /// A workspace with these channels, accepting `bot_token`, one message per second per
    /// channel.
    pub fn new(bot_token: impl Into<String>, channels: &[&str]) -> Self {
        SlackSimConfig {
            bot_token: bot_token.into(),
            channels: channels
                .iter()
                .map(|c| c.trim_start_matches('#').to_string())
                .collect(),
            webhooks: BTreeMap::new(),
            min_interval: Duration::from_secs(1),
        }
    }

    /// Adds an incoming webhook posting to `channel`; `secret` is the URL's last segment.
    pub fn with_webhook(mut self, secret: impl Into<String>, channel: &str) -> Self {
        self.webhooks
            .insert(secret.into(), channel.trim_start_matches('#').to_string());
        self
    }

    /// The Web API base URL for a simulator at `base` (`<base>/api`).
    pub fn api_url(base: &str) -> String {
        format!("{}/api", base.trim_end_matches('/'))
    }

    /// The URL of the webhook whose secret is `secret`.
    pub fn webhook_url(base: &str, secret: &str) -> String {
        format!(
            "{}/services/{TEAM}/{BOT}/{secret}",
            base.trim_end_matches('/')
        )
    }
}

/// How a message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// `chat.postMessage`.
    Api,
    /// An incoming webhook.
    Webhook,
}

/// A message the simulator accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackMessage {
    /// Channel name (without `#`).
    pub channel: String,
    /// The message's `ts`.
    pub ts: String,
    /// The thread it replies to, if any.
    pub thread_ts: Option<String>,
    /// When it arrived: microseconds since the Unix epoch (wall clock).
    pub received_us: u64,
    /// How it arrived.
    pub via: Via,
    /// The request body (JSON).
    pub body: Value,
}

impl SlackMessage {
    /// Every `text` in the message (fallback, blocks, attachment blocks, fields, elements),
    /// joined by line breaks: what a reader sees, for assertions.
    pub fn all_text(&self) -> String {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        match (k.as_str(), x) {
                            ("text", Value::String(s)) => out.push(s.clone()),
                            _ => walk(x, out),
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.body, &mut out);
        out.join("\n")
    }
}

/// A message refused by the per-channel rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Throttled {
    /// Channel name.
    pub channel: String,
    /// When it arrived, microseconds since the Unix epoch.
    pub received_us: u64,
}

#[derive(Debug)]
struct ChannelState {
    id: String,
    archived: bool,
    bot_member: bool,
    last_accepted: Option<Instant>,
}

#[derive(Debug, Default)]
struct Workspace {
    channels: BTreeMap<String, ChannelState>,
    revoked: Vec<String>,
    messages: Vec<SlackMessage>,
    deleted: Vec<(String, String)>,
    throttled: Vec<Throttled>,
    api_errors: VecDeque<(String, u32)>,
    last_ts_us: u64,
}

/// The running Slack simulator (see the module documentation).
#[derive(Debug)]
pub struct SlackApp {
    config: SlackSimConfig,
    shared: Arc<Shared>,
    state: Mutex<Workspace>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl SlackApp {
    pub(crate) fn new(config: SlackSimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        if config.bot_token.is_empty() {
            return Err(SimError::Config(
                "Slack simulator bot token is empty".into(),
            ));
        }
        let mut channels = BTreeMap::new();
        for (i, name) in config.channels.iter().enumerate() {
            channels.insert(
                name.clone(),
                ChannelState {
                    id: format!("C{:08X}", 0x5EC0_0000_u32 + u32::try_from(i).unwrap_or(0)),
                    archived: false,
                    bot_member: true,
                    last_accepted: None,
                },
            );
        }
        for ch in config.webhooks.values() {
            if !channels.contains_key(ch) {
                return Err(SimError::Config(format!(
                    "Slack simulator webhook posts to unknown channel `{ch}`"
                )));
            }
        }
        Ok(SlackApp {
            config,
            shared,
            state: Mutex::new(Workspace {
                channels,
                ..Workspace::default()
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, Workspace> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every accepted message, in arrival order.
    pub fn messages(&self) -> Vec<SlackMessage> {
        self.state().messages.clone()
    }

    /// The accepted messages of `channel` (name with or without `#`).
    pub fn messages_in(&self, channel: &str) -> Vec<SlackMessage> {
        let c = channel.trim_start_matches('#');
        self.state()
            .messages
            .iter()
            .filter(|m| m.channel == c)
            .cloned()
            .collect()
    }

    /// Messages refused by the rate limit.
    pub fn throttled(&self) -> Vec<Throttled> {
        self.state().throttled.clone()
    }

    /// The channel's ID.
    pub fn channel_id(&self, channel: &str) -> Option<String> {
        self.state()
            .channels
            .get(channel.trim_start_matches('#'))
            .map(|c| c.id.clone())
    }

    /// Archives `channel`: posts get `is_archived` / 410 `channel_is_archived`.
    pub fn archive(&self, channel: &str) {
        if let Some(c) = self
            .state()
            .channels
            .get_mut(channel.trim_start_matches('#'))
        {
            c.archived = true;
        }
    }

    /// Removes the bot from `channel`: API posts get `not_in_channel`.
    pub fn remove_bot(&self, channel: &str) {
        if let Some(c) = self
            .state()
            .channels
            .get_mut(channel.trim_start_matches('#'))
        {
            c.bot_member = false;
        }
    }

    /// Revokes the webhook with this secret: 403 `invalid_token`.
    pub fn revoke_webhook(&self, secret: &str) {
        self.state().revoked.push(secret.to_string());
    }

    /// Deletes a message: replies to it get `thread_not_found`.
    pub fn delete_message(&self, channel: &str, ts: &str) {
        self.state()
            .deleted
            .push((channel.trim_start_matches('#').to_string(), ts.to_string()));
    }

    /// Answers the next `count` `chat.postMessage` calls with `{"ok": false, "error": code}`
    /// (`ratelimited`: HTTP 429 with `Retry-After: 1`, as Slack does).
    pub fn fail_api_calls(&self, code: &str, count: u32) {
        self.state().api_errors.push_back((code.to_string(), count));
    }

    /// Forgets messages and throttles (channels, faults and revocations stay).
    pub fn clear(&self) {
        let mut s = self.state();
        s.messages.clear();
        s.throttled.clear();
    }
}

pub(crate) fn is_data_path(path: &str) -> bool {
    path == "/api/chat.postMessage" || path.starts_with("/services/")
}

fn text(status: u16, body: &str) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html"),
    );
    resp
}

/// The answer for an injected status: a webhook's text code.
pub(crate) fn fault_response(status: u16) -> Response {
    let code = match status {
        400 => "invalid_payload",
        403 => "invalid_token",
        404 => "channel_not_found",
        410 => "channel_is_archived",
        429 => "rate_limited",
        500 => "rollup_error",
        _ => "service_unavailable",
    };
    text(status, code)
}

pub(crate) fn router(app: Arc<SlackApp>) -> Router {
    Router::new()
        .route("/api/{method}", post(api))
        .route("/services/{team}/{bot}/{secret}", post(webhook))
        .route("/_sim/slack/messages", get(list_messages))
        .route("/_sim/slack/api_errors", post(set_api_errors))
        .with_state(app)
}

async fn list_messages(State(app): State<Arc<SlackApp>>) -> Response {
    Json(json!({"messages": app.messages(), "throttled": app.throttled()})).into_response()
}

#[derive(Debug, Deserialize)]
struct ApiErrorRule {
    error: String,
    count: u32,
}

async fn set_api_errors(State(app): State<Arc<SlackApp>>, body: Bytes) -> Response {
    match serde_json::from_slice::<ApiErrorRule>(&body) {
        Ok(r) => {
            app.fail_api_calls(&r.error, r.count);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => json_resp(400, json!({"error": e.to_string()})),
    }
}

fn api_answer(value: Value) -> Response {
    json_resp(200, value)
}

fn api_error(code: &str) -> Response {
    api_answer(json!({"ok": false, "error": code}))
}

fn throttled_api() -> Response {
    let mut r = json_resp(429, json!({"ok": false, "error": "ratelimited"}));
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    r
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    header(headers, "authorization")?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn api(
    State(app): State<Arc<SlackApp>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_us = now_us();
    let resp = match method.as_str() {
        "auth.test" => auth_test(&app, &headers),
        "chat.postMessage" => post_message(&app, &headers, &body, received_us),
        _ => api_error("unknown_method"),
    };
    app.shared.rec().request(ReceivedRequest {
        method: "POST".to_string(),
        path: format!("/api/{method}"),
        headers: header_pairs(&headers),
        body: body.to_vec(),
        status: resp.status().as_u16(),
    });
    resp
}

/// Checks the bot token; the Slack error code when it is missing or wrong.
fn token_ok(app: &SlackApp, headers: &HeaderMap) -> Result<(), &'static str> {
    use subtle::ConstantTimeEq as _;
    let code = match bearer(headers) {
        None => "not_authed",
        Some(t) => {
            let ok = t.len() == app.config.bot_token.len()
                && bool::from(t.as_bytes().ct_eq(app.config.bot_token.as_bytes()));
            if ok {
                return Ok(());
            }
            "invalid_auth"
        }
    };
    app.shared.rec().stats.auth_failures += 1;
    Err(code)
}

fn auth_test(app: &SlackApp, headers: &HeaderMap) -> Response {
    // While an outage is injected the probe fails too, as the real API would.
    if let Some(status) = app.shared.faults().outage(Instant::now()) {
        return fault_response(status);
    }
    if let Err(code) = token_ok(app, headers) {
        return api_error(code);
    }
    api_answer(json!({
        "ok": true,
        "url": "https://secflow-sim.slack.com/",
        "team": "secflow sim",
        "user": "secflow",
        "team_id": TEAM,
        "user_id": "U0SIMUSER",
        "bot_id": BOT,
    }))
}

/// Why a message body is refused: the Slack error code.
fn check_message(body: &Value) -> Result<(), &'static str> {
    let Some(obj) = body.as_object() else {
        return Err("json_not_object");
    };
    let text = obj.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = obj.get("blocks").and_then(Value::as_array);
    let attachments = obj.get("attachments").and_then(Value::as_array);
    if text.trim().is_empty()
        && blocks.is_none_or(Vec::is_empty)
        && attachments.is_none_or(Vec::is_empty)
    {
        return Err("no_text");
    }
    if text.chars().count() > 40_000 {
        return Err("msg_too_long");
    }
    if let Some(b) = obj.get("blocks") {
        check_blocks(b)?;
    }
    if let Some(a) = obj.get("attachments") {
        let Some(list) = a.as_array() else {
            return Err("invalid_attachments");
        };
        if list.len() > 100 {
            return Err("too_many_attachments");
        }
        for att in list {
            if !att.is_object() {
                return Err("invalid_attachments");
            }
            if let Some(c) = att.get("color") {
                if !c.is_string() {
                    return Err("invalid_attachments");
                }
            }
            if let Some(b) = att.get("blocks") {
                check_blocks(b)?;
            }
        }
    }
    Ok(())
}

fn text_object(v: &Value, max: usize, plain_only: bool) -> bool {
    let ty = v.get("type").and_then(Value::as_str);
    let ty_ok = match ty {
        Some("plain_text") => true,
        Some("mrkdwn") => !plain_only,
        _ => false,
    };
    let t = v.get("text").and_then(Value::as_str).unwrap_or("");
    ty_ok && !t.is_empty() && t.chars().count() <= max
}

fn check_blocks(blocks: &Value) -> Result<(), &'static str> {
    let Some(list) = blocks.as_array() else {
        return Err("invalid_blocks_format");
    };
    if list.len() > 50 {
        return Err("invalid_blocks");
    }
    for b in list {
        let ok = match b.get("type").and_then(Value::as_str) {
            Some("header") => b.get("text").is_some_and(|t| text_object(t, 150, true)),
            Some("section") => {
                let text = b.get("text");
                let fields = b.get("fields").and_then(Value::as_array);
                (text.is_some() || fields.is_some())
                    && text.is_none_or(|t| text_object(t, 3000, false))
                    && fields.is_none_or(|f| {
                        !f.is_empty()
                            && f.len() <= 10
                            && f.iter().all(|x| text_object(x, 2000, false))
                    })
            }
            Some("context") => b
                .get("elements")
                .and_then(Value::as_array)
                .is_some_and(|e| {
                    !e.is_empty() && e.len() <= 10 && e.iter().all(|x| text_object(x, 3000, false))
                }),
            Some("actions") => b
                .get("elements")
                .and_then(Value::as_array)
                .is_some_and(|e| {
                    !e.is_empty()
                        && e.len() <= 25
                        && e.iter().all(|x| {
                            x.get("type").and_then(Value::as_str) == Some("button")
                                && x.get("text").is_some_and(|t| text_object(t, 75, true))
                                && x.get("url").is_none_or(|u| {
                                    u.as_str().is_some_and(|u| u.len() <= 3000 && !u.is_empty())
                                })
                        })
                }),
            Some("divider") => true,
            _ => false,
        };
        if !ok {
            return Err("invalid_blocks");
        }
    }
    Ok(())
}

/// Accepts a message into `channel` unless the rate limit refuses it; the message's `ts`.
fn accept(
    app: &SlackApp,
    state: &mut Workspace,
    channel: &str,
    thread_ts: Option<String>,
    via: Via,
    body: Value,
    received_us: u64,
) -> Result<String, ()> {
    let now = Instant::now();
    let interval = app.config.min_interval;
    let Some(ch) = state.channels.get_mut(channel) else {
        return Err(());
    };
    if ch
        .last_accepted
        .is_some_and(|last| now.duration_since(last) < interval)
    {
        state.throttled.push(Throttled {
            channel: channel.to_string(),
            received_us,
        });
        return Err(());
    }
    ch.last_accepted = Some(now);
    let ts_us = received_us.max(state.last_ts_us + 1);
    state.last_ts_us = ts_us;
    let ts = format!("{}.{:06}", ts_us / 1_000_000, ts_us % 1_000_000);
    state.messages.push(SlackMessage {
        channel: channel.to_string(),
        ts: ts.clone(),
        thread_ts,
        received_us,
        via,
        body,
    });
    app.shared.rec().accept(None);
    Ok(ts)
}

fn post_message(app: &SlackApp, headers: &HeaderMap, body: &[u8], received_us: u64) -> Response {
    if let Err(code) = token_ok(app, headers) {
        return api_error(code);
    }
    let injected = {
        let mut s = app.state();
        match s.api_errors.front_mut() {
            Some((code, n)) if *n > 0 => {
                *n -= 1;
                let code = code.clone();
                if *n == 0 {
                    s.api_errors.pop_front();
                }
                Some(code)
            }
            _ => None,
        }
    };
    if let Some(code) = injected {
        app.shared.rec().stats.faulted += 1;
        return if code == "ratelimited" {
            throttled_api()
        } else {
            api_error(&code)
        };
    }
    let content_type = header(headers, "content-type").unwrap_or("");
    if !content_type.starts_with("application/json") {
        app.shared.rec().stats.bad_requests += 1;
        return api_error("invalid_post_type");
    }
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        app.shared.rec().stats.bad_requests += 1;
        return api_error("invalid_json");
    };
    let Some(channel_arg) = doc.get("channel").and_then(Value::as_str) else {
        return api_error("channel_not_found");
    };
    if let Err(code) = check_message(&doc) {
        app.shared.rec().stats.bad_requests += 1;
        return api_error(code);
    }
    let mut state = app.state();
    let wanted = channel_arg.trim_start_matches('#');
    let Some(name) = state
        .channels
        .iter()
        .find(|(name, c)| name.as_str() == wanted || c.id == channel_arg)
        .map(|(name, _)| name.clone())
    else {
        return api_error("channel_not_found");
    };
    let (archived, member, id) = {
        let c = &state.channels[&name];
        (c.archived, c.bot_member, c.id.clone())
    };
    if archived {
        return api_error("is_archived");
    }
    if !member {
        return api_error("not_in_channel");
    }
    let thread_ts = doc
        .get("thread_ts")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(t) = &thread_ts {
        let well_formed = t.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit())
        });
        if !well_formed {
            return api_error("invalid_thread_ts");
        }
        let exists = state
            .messages
            .iter()
            .any(|m| m.channel == name && &m.ts == t)
            && !state.deleted.iter().any(|(c, d)| *c == name && d == t);
        if !exists {
            return api_error("thread_not_found");
        }
    }
    let missing_charset = !content_type.to_ascii_lowercase().contains("charset");
    let text_field = doc.get("text").cloned().unwrap_or(Value::Null);
    match accept(
        app,
        &mut state,
        &name,
        thread_ts.clone(),
        Via::Api,
        doc,
        received_us,
    ) {
        Ok(ts) => {
            let mut message = json!({
                "type": "message",
                "subtype": "bot_message",
                "text": text_field,
                "ts": ts,
                "bot_id": BOT,
            });
            if let Some(t) = thread_ts {
                message["thread_ts"] = Value::from(t);
            }
            let mut answer = json!({"ok": true, "channel": id, "ts": ts, "message": message});
            if missing_charset {
                answer["warning"] = Value::from("missing_charset");
                answer["response_metadata"] = json!({"warnings": ["missing_charset"]});
            }
            api_answer(answer)
        }
        Err(()) => throttled_api(),
    }
}

async fn webhook(
    State(app): State<Arc<SlackApp>>,
    Path((_team, _bot, secret)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_us = now_us();
    let resp = webhook_inner(&app, &secret, &headers, &body, received_us);
    app.shared.rec().request(ReceivedRequest {
        method: "POST".to_string(),
        // The secret is the credential: recorded masked, as a careful proxy logs it.
        path: format!("/services/{TEAM}/{BOT}/***"),
        headers: header_pairs(&headers),
        body: body.to_vec(),
        status: resp.status().as_u16(),
    });
    resp
}

fn webhook_inner(
    app: &SlackApp,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    received_us: u64,
) -> Response {
    let Some(channel) = app.config.webhooks.get(secret).cloned() else {
        app.shared.rec().stats.auth_failures += 1;
        return text(404, "no_service");
    };
    if app.state().revoked.iter().any(|r| r == secret) {
        app.shared.rec().stats.auth_failures += 1;
        return text(403, "invalid_token");
    }
    let json_type =
        header(headers, "content-type").is_some_and(|c| c.starts_with("application/json"));
    let doc = match serde_json::from_slice::<Value>(body) {
        Ok(d) if json_type && d.is_object() => d,
        _ => {
            app.shared.rec().stats.bad_requests += 1;
            return text(400, "invalid_payload");
        }
    };
    if let Err(code) = check_message(&doc) {
        app.shared.rec().stats.bad_requests += 1;
        let code = match code {
            "json_not_object" | "invalid_blocks_format" => "invalid_payload",
            c => c,
        };
        return text(400, code);
    }
    let mut state = app.state();
    match state.channels.get(&channel) {
        None => return text(404, "channel_not_found"),
        Some(c) if c.archived => return text(410, "channel_is_archived"),
        Some(_) => {}
    }
    match accept(
        app,
        &mut state,
        &channel,
        None,
        Via::Webhook,
        doc,
        received_us,
    ) {
        Ok(_) => text(200, "ok"),
        Err(()) => {
            let mut r = text(429, "rate_limited");
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            r
        }
    }
}
