//! Slack: Block Kit alert messages through `chat.postMessage` (bot token) or incoming webhooks.
//!
//! # Messages
//!
//! Each batch becomes **at most one message per channel** (see [`crate::sink::chat`]): a single
//! event is shown in full (header with the severity emoji and title, a colour bar, host, user,
//! source, destination, rule, tenant and time, the event's message, link buttons, a context line
//! `secflow · 1 event · event <id>`); several become one summary (the most severe event in
//! detail, then `38 events: 1 critical, 30 high, 7 medium` and lines such as `30 more
//! high-severity events from host ws-1`). The message's request carries all of its records, so
//! they are delivered, retried or dead-lettered together. Events route to channels by tenant
//! and severity; events below `min_severity` finish as suppressed.
//!
//! # Rate limit
//!
//! Slack takes one message per second per channel. [`Sink::pacing_key`] is the channel (API
//! mode) or a hash of the webhook URL (never the URL), [`Sink::pacing_interval`] is
//! `message_interval_ms` (default 1.1 s), and one batch is delivered at a time, so messages to a
//! channel are spaced by the engine across batches while a burst folds into summaries.
//!
//! # Threads (API mode)
//!
//! The dedup key template (default `{rule.id}:{host.name}`) is rendered for every event. The
//! first message that mentions a key starts its thread: its `ts` (from Slack's answer) is
//! remembered per channel and key for `thread_ttl_secs`, and a later message whose top event
//! has that key is posted with `thread_ts`. The table is the sink's durable state
//! ([`Sink::snapshot`]). A thread Slack says is gone (`thread_not_found`) is forgotten and the
//! message retried top-level.
//!
//! # Answers
//!
//! API mode reads the JSON body (`ok`, `error`): rate limits retried after `Retry-After`;
//! `internal_error`/`fatal_error` retried; auth errors (`invalid_auth`, `not_authed`,
//! `account_inactive`, `token_revoked`, `missing_scope`, …) permanent and the sink is down
//! (the circuit opens at once); channel errors (`channel_not_found`, `not_in_channel`,
//! `is_archived`, …) permanent, and the sink is down when that channel is the only destination;
//! message errors (`msg_too_long`, `invalid_blocks`, `no_text`, …) permanent. Webhook mode reads
//! the status and the text code: 2xx delivered; 400 permanent; 403/404/410 permanent (+ down
//! when it is the only webhook); 429 retried after `Retry-After`; 5xx retried.

mod config;
mod message;
mod response;
#[cfg(test)]
mod tests;
mod threads;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

pub use config::{SlackConfig, DEFAULT_API_URL};
pub use message::{color, context_text, emoji, escape};
pub use response::{error_kind, text_code, ErrorKind};
pub use threads::{ThreadEntry, Threads, MAX_THREADS};

use super::chat::{check_common, prepare, url_key, Router, Template};
use super::{
    BuildResult, Classification, HttpRequest, HttpResponse, Method, Sink, SinkError, SinkRecord,
    TransportError,
};
use crate::secret::Secret;
use crate::sink::SecretSource;

/// The Web API method messages are posted with.
pub const POST_MESSAGE: &str = "chat.postMessage";
/// The Web API method of the half-open probe (checks the token, posts nothing).
pub const AUTH_TEST: &str = "auth.test";

/// A Slack sink's secrets, resolved.
#[derive(Debug, Clone, Default)]
pub struct SlackSecrets {
    /// The bot token (API mode).
    pub token: Option<Secret>,
    /// Webhook URLs by name (webhook mode).
    pub webhooks: BTreeMap<String, Secret>,
}

impl SlackConfig {
    /// Resolves the referenced secrets with `resolve`.
    ///
    /// # Errors
    /// The first error of `resolve`.
    pub fn resolve_secrets<E>(
        &self,
        resolve: impl Fn(&SecretSource) -> Result<Secret, E>,
    ) -> Result<SlackSecrets, E> {
        let token = self.token.as_ref().map(&resolve).transpose()?;
        let webhooks = self
            .webhooks
            .iter()
            .map(|(k, v)| Ok((k.clone(), resolve(v)?)))
            .collect::<Result<_, E>>()?;
        Ok(SlackSecrets { token, webhooks })
    }
}

/// How messages are posted.
#[derive(Debug)]
enum Mode {
    /// `chat.postMessage`.
    Api {
        token: Secret,
        /// `<api_url>/chat.postMessage`.
        url: String,
        /// `<api_url>/auth.test`.
        probe_url: String,
    },
    /// Incoming webhooks by name.
    Webhooks(BTreeMap<String, Secret>),
}

/// A message in flight whose answer may start a thread.
#[derive(Debug, Clone)]
struct PendingPost {
    channel: String,
    keys: Vec<String>,
    thread_ts: Option<String>,
    built_ms: i64,
}

/// Mutable state: threads and the messages in flight.
#[derive(Debug, Default)]
struct State {
    threads: Threads,
    pending: HashMap<u64, PendingPost>,
}

/// Pending posts older than this are forgotten (their answer never came back to `classify`).
const PENDING_TTL_MS: i64 = 15 * 60 * 1000;

/// A Slack sink; see the module documentation.
#[derive(Debug)]
pub struct SlackSink {
    name: String,
    config: SlackConfig,
    mode: Mode,
    router: Router,
    title: Template,
    links: Vec<(String, Template)>,
    dedup_key: Template,
    /// Strings a message could echo: the token, the webhook URLs and their secret path parts.
    secrets: Vec<Secret>,
    state: Mutex<State>,
}

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn body_hash(body: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

#[derive(Debug, Deserialize)]
struct ChannelOnly {
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    thread_ts: Option<String>,
}

impl SlackSink {
    /// A sink named `name` with `secrets` resolved from `config`.
    ///
    /// # Errors
    /// [`SinkError::Config`]: both or neither of `token` and `webhooks`; a webhook URL that is
    /// not `http(s)://` (not shown: it is a secret); a channel or route naming no webhook; an
    /// `api_url` that is not `http(s)://`; a bad template, link or limit.
    pub fn new(
        name: impl Into<String>,
        config: SlackConfig,
        secrets: SlackSecrets,
    ) -> Result<Self, SinkError> {
        let err = |m: String| SinkError::Config(format!("slack: {m}"));
        let (links, title, dedup_key) = (
            check_common(
                &config.links,
                config.summary_lines,
                config.message_interval_ms,
            )
            .map_err(err)?,
            Template::parse(&config.title).map_err(|e| err(format!("title: {e}")))?,
            Template::parse(&config.dedup_key).map_err(|e| err(format!("dedup_key: {e}")))?,
        );
        if config.channel.trim().is_empty() {
            return Err(err("channel must name where events go".to_string()));
        }
        let router = Router::new(&config.channel, &config.routes, config.min_severity);
        let mut all_secrets = Vec::new();
        let mode = match (&secrets.token, secrets.webhooks.is_empty()) {
            (Some(token), true) => {
                let t = token.expose();
                if t.trim().is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(err(
                        "token must be a Slack bot token (value not shown: it is a secret)"
                            .to_string(),
                    ));
                }
                let base = config.api_url.trim().trim_end_matches('/');
                if !(base.starts_with("https://") || base.starts_with("http://")) {
                    return Err(err(format!(
                        "api_url must be an http(s):// URL, got `{base}`"
                    )));
                }
                all_secrets.push(token.clone());
                Mode::Api {
                    token: token.clone(),
                    url: format!("{base}/{POST_MESSAGE}"),
                    probe_url: format!("{base}/{AUTH_TEST}"),
                }
            }
            (None, false) => {
                for (name, url) in &secrets.webhooks {
                    let raw = url.expose();
                    let ok = (raw.starts_with("https://") || raw.starts_with("http://"))
                        && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
                    if !ok {
                        return Err(err(format!(
                            "webhooks.{name} must be the incoming webhook's http(s):// URL \
                             (value not shown: it is a secret)"
                        )));
                    }
                    all_secrets.push(url.clone());
                    // The last path segment is the webhook's secret; a message may quote it
                    // without the rest of the URL.
                    if let Some(tail) = raw.trim_end_matches('/').rsplit('/').next() {
                        if tail.len() >= 8 {
                            all_secrets.push(Secret::new(tail));
                        }
                    }
                }
                for ch in router.channels() {
                    if !secrets.webhooks.contains_key(ch) {
                        return Err(err(format!(
                            "channel `{ch}` names no webhook (webhooks: {})",
                            secrets
                                .webhooks
                                .keys()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
                Mode::Webhooks(secrets.webhooks.clone())
            }
            _ => {
                return Err(err(
                    "set exactly one of `token` (chat.postMessage) and `webhooks` (incoming \
                     webhooks)"
                        .to_string(),
                ))
            }
        };
        let ttl_ms = i64::try_from(config.thread_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Ok(SlackSink {
            name: name.into(),
            mode,
            router,
            title,
            links,
            dedup_key,
            secrets: all_secrets,
            state: Mutex::new(State {
                threads: Threads::new(ttl_ms),
                pending: HashMap::new(),
            }),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SlackConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether every message goes to one channel (a dead channel then means a dead sink).
    fn single_destination(&self) -> bool {
        self.router.channels().len() == 1
    }

    fn is_webhook_mode(&self) -> bool {
        matches!(self.mode, Mode::Webhooks(_))
    }

    fn threads_on(&self) -> bool {
        matches!(self.mode, Mode::Api { .. }) && self.config.thread_ttl_secs > 0
    }

    /// The threads remembered now (for tests and diagnostics).
    pub fn threads(&self) -> Threads {
        self.state().threads.clone()
    }

    /// The webhook name of a request's URL (webhook mode).
    fn webhook_name(&self, url: &str) -> Option<&str> {
        match &self.mode {
            Mode::Webhooks(w) => w
                .iter()
                .find(|(_, u)| u.expose() == url)
                .map(|(k, _)| k.as_str()),
            Mode::Api { .. } => None,
        }
    }
}

impl Sink for SlackSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
        let now_ms = epoch_ms(now);
        let prepared = prepare(batch, &self.router, self.config.summary_lines);
        let mut requests = Vec::with_capacity(prepared.digests.len());
        let mut state = self.state();
        if self.threads_on() {
            state.threads.prune(now_ms);
            state
                .pending
                .retain(|_, p| now_ms - p.built_ms < PENDING_TTL_MS);
        }
        for d in &prepared.digests {
            let (url, headers, thread_ts, keys) = match &self.mode {
                Mode::Api { token, url, .. } => {
                    let mut keys: Vec<String> = Vec::new();
                    if self.threads_on() {
                        // The top event's key first: it decides the thread.
                        let order = std::iter::once(d.top)
                            .chain((0..d.alerts.len()).filter(|i| *i != d.top));
                        for i in order {
                            let k = self.dedup_key.render(&d.alerts[i]);
                            if !keys.contains(&k) {
                                keys.push(k);
                            }
                        }
                    }
                    let thread_ts = keys
                        .first()
                        .and_then(|k| state.threads.live(&d.channel, k, now_ms))
                        .map(str::to_string);
                    let headers = vec![
                        (
                            "Content-Type".to_string(),
                            "application/json; charset=utf-8".to_string(),
                        ),
                        (
                            "Authorization".to_string(),
                            format!("Bearer {}", token.expose()),
                        ),
                    ];
                    (url.clone(), headers, thread_ts, keys)
                }
                Mode::Webhooks(hooks) => {
                    // `new` checked that every channel names a webhook.
                    let Some(url) = hooks.get(&d.channel) else {
                        continue;
                    };
                    let headers = vec![(
                        "Content-Type".to_string(),
                        "application/json; charset=utf-8".to_string(),
                    )];
                    (url.expose().to_string(), headers, None, Vec::new())
                }
            };
            let body = serde_json::to_vec(&message::body(self, d, thread_ts.as_deref()))
                .unwrap_or_default();
            if !keys.is_empty() {
                state.pending.insert(
                    body_hash(&body),
                    PendingPost {
                        channel: d.channel.clone(),
                        keys,
                        thread_ts,
                        built_ms: now_ms,
                    },
                );
            }
            let mut headers = headers;
            if let Some(tp) = super::common_traceparent(batch, &d.records) {
                headers.push(("traceparent".to_string(), tp.to_string()));
            }
            requests.push(HttpRequest {
                method: Method::Post,
                url,
                headers,
                body,
                records: d.records.clone(),
            });
        }
        BuildResult {
            requests,
            rejected: prepared.rejected,
        }
    }

    fn classify(&self, request: &HttpRequest, response: &HttpResponse) -> Classification {
        let n = request.records.len();
        match &self.mode {
            Mode::Webhooks(_) => {
                let name = self.webhook_name(&request.url).unwrap_or("?");
                response::classify_webhook(self, name, response, n)
            }
            Mode::Api { .. } => {
                let sent = serde_json::from_slice::<ChannelOnly>(&request.body).ok();
                let channel = sent
                    .as_ref()
                    .and_then(|s| s.channel.clone())
                    .unwrap_or_else(|| "?".to_string());
                let (cls, ts) = response::classify_api(self, &channel, response, n);
                let pending = self.state().pending.remove(&body_hash(&request.body));
                if let (Some(p), Some(ts)) = (pending, ts) {
                    // A reply joins its parent's thread; a top-level message starts one.
                    // The sink's clock is the `now` given to `build` (the engine's wall clock
                    // at that attempt), not a clock of its own.
                    let parent = p.thread_ts.clone().unwrap_or(ts);
                    self.state()
                        .threads
                        .register(&p.channel, &p.keys, &parent, p.built_ms, p.built_ms);
                }
                let thread_gone =
                    cls.outcomes.first().and_then(|o| o.class()) == Some("thread_gone");
                if thread_gone {
                    if let Some(ts) = sent.and_then(|s| s.thread_ts) {
                        self.state().threads.forget(&channel, &ts);
                    }
                }
                cls
            }
        }
    }

    fn classify_transport_error(
        &self,
        request: &HttpRequest,
        error: &TransportError,
    ) -> Classification {
        self.state().pending.remove(&body_hash(&request.body));
        super::classify::transport_error(error, request.records.len(), |m| self.redact(m))
    }

    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| s.redact(&t))
    }

    fn health_probe(&self) -> Option<HttpRequest> {
        match &self.mode {
            // auth.test checks the token without posting anything.
            Mode::Api {
                token, probe_url, ..
            } => Some(HttpRequest {
                method: Method::Post,
                url: probe_url.clone(),
                headers: vec![
                    (
                        "Authorization".to_string(),
                        format!("Bearer {}", token.expose()),
                    ),
                    (
                        "Content-Type".to_string(),
                        "application/x-www-form-urlencoded".to_string(),
                    ),
                ],
                body: Vec::new(),
                records: Vec::new(),
            }),
            Mode::Webhooks(_) => None,
        }
    }

    fn probe_ok(&self, response: &HttpResponse) -> bool {
        (200..300).contains(&response.status)
            && serde_json::from_slice::<response::ApiAnswer>(&response.body).is_ok_and(|a| a.ok)
    }

    fn max_concurrency(&self) -> Option<usize> {
        // Threads and per-channel pacing assume one batch at a time.
        Some(1)
    }

    fn pacing_key(&self, request: &HttpRequest) -> Option<String> {
        match &self.mode {
            Mode::Api { .. } => serde_json::from_slice::<ChannelOnly>(&request.body)
                .ok()
                .and_then(|c| c.channel)
                .map(|c| format!("channel:{c}")),
            Mode::Webhooks(_) => Some(url_key(&request.url)),
        }
    }

    fn pacing_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.config.message_interval_ms))
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        self.threads_on().then(|| self.state().threads.snapshot())
    }

    fn restore(&self, state: &[u8]) -> Result<(), SinkError> {
        self.state()
            .threads
            .restore(state)
            .map_err(|e| SinkError::Config(format!("slack `{}`: {e}", self.name)))
    }
}
