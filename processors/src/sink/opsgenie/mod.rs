//! OpsGenie Alert API: create alerts (`POST /v2/alerts`), close them by alias
//! (`POST /v2/alerts/<alias>/close?identifierType=alias`), and ping a heartbeat
//! (`POST /v2/heartbeats/<name>/ping`), with `Authorization: GenieKey <key>`, on the US
//! (`api.opsgenie.com`) or EU (`api.eu.opsgenie.com`) instance.
//!
//! # What is sent
//!
//! - An event at or above `min_severity` creates an alert with a templated `alias`
//!   (OpsGenie's dedup key), `message` (≤ 130 characters, cut on a character boundary),
//!   `description`, `priority` from the severity (critical P1, high P2, medium P3, low P4,
//!   info P5), `responders` (by route), `tags`, `details`, `entity`, `source` — unless its
//!   alert is already open: then it is suppressed (`incident_open`). Records of one batch with
//!   the same alias share one create.
//! - A resolution event (`resolve_when`) closes the open alert with its alias; the tick closes
//!   alerts with no event for `auto_close_after_secs`.
//! - With a `heartbeat`, the tick pings it every `interval_secs` while delivery is healthy —
//!   and only then: a failing sink stops the pings, so OpsGenie alerts on a dead pipeline.
//!
//! An alert is open once OpsGenie accepted (202) its create; the open aliases are the sink's
//! state (saved by the engine with a `state_dir`). The sink runs one batch at a time.
//!
//! # Answers
//!
//! 202 delivered (OpsGenie processes requests asynchronously:
//! `{"result":"Request will be processed","took":…,"requestId":…}`); 400 and 422 permanent
//! (`invalid_alert`, with OpsGenie's errors); 401/403 permanent and the sink is down (`auth`);
//! 429 retried (`rate_limited`); 5xx retried.

mod config;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

pub use config::{
    OpsGenieConfig, OpsGenieHeartbeat, OpsGenieRegion, OpsGenieResponder, OpsGenieRoute,
    MAX_ALIAS_CHARS, MAX_DESCRIPTION_CHARS, MAX_DETAILS_CHARS, MAX_ENTITY_CHARS, MAX_MESSAGE_CHARS,
    MAX_SOURCE_CHARS, MAX_TAGS, MAX_TAG_CHARS,
};
pub use request::{priority, ALERTS_PATH, HEARTBEATS_PATH};
pub use response::error_detail;

use serde_json::Value;

use super::alerting::{AlertRules, FieldTemplate, IncidentBook};
use super::{
    BuildResult, Classification, HttpRequest, HttpResponse, Sink, SinkError, SinkRecord,
    TransportError,
};
use crate::secret::Secret;

/// Most quiet-window closes sent per tick (the rest wait for the next tick).
const MAX_CLOSES_PER_TICK: usize = 50;

/// A route with its responders as OpsGenie JSON.
#[derive(Debug)]
struct Route {
    tenants: Vec<String>,
    rule_ids: Vec<String>,
    responders: Vec<Value>,
}

/// The compiled templates.
#[derive(Debug)]
struct Templates {
    alias: FieldTemplate,
    message: FieldTemplate,
    description: Option<FieldTemplate>,
    entity: Option<FieldTemplate>,
    source: FieldTemplate,
    tags: Vec<FieldTemplate>,
    details: Vec<(String, FieldTemplate)>,
}

/// Sink state: open alerts and the heartbeat.
#[derive(Debug, Default)]
struct State {
    book: IncidentBook,
    /// When the last ping was sent (epoch ms); `None` before the first or after a failed one.
    last_ping_ms: Option<i64>,
}

/// An OpsGenie Alert API sink; see the module documentation.
#[derive(Debug)]
pub struct OpsGenieSink {
    name: String,
    config: OpsGenieConfig,
    api_key: Secret,
    base: String,
    target: String,
    rules: AlertRules,
    templates: Templates,
    default_responders: Vec<Value>,
    routes: Vec<Route>,
    state: Mutex<State>,
}

impl OpsGenieSink {
    /// A sink named `name`; `api_key` is `config.api_key`, resolved.
    ///
    /// # Errors
    /// [`SinkError::Config`] for an endpoint that is not an `http(s)://` URL, a bad template,
    /// responder or resolution condition, a route without tenants and rule ids, a constant
    /// alias, more than 20 tags, or zero intervals.
    pub fn new(
        name: impl Into<String>,
        config: OpsGenieConfig,
        api_key: Secret,
    ) -> Result<Self, SinkError> {
        let err = |m: String| SinkError::Config(format!("opsgenie: {m}"));
        let (base, target) = match &config.endpoint {
            Some(e) => {
                let base = e.trim().trim_end_matches('/').to_string();
                if !(base.starts_with("http://") || base.starts_with("https://")) {
                    return Err(err(format!(
                        "endpoint must be an http(s):// URL, got `{base}`"
                    )));
                }
                if base.ends_with(ALERTS_PATH) {
                    return Err(err(format!(
                        "endpoint is the base URL; `{ALERTS_PATH}` is appended, leave it out"
                    )));
                }
                (base.clone(), base)
            }
            None => {
                let base = config.region.base().to_string();
                let target = base.trim_start_matches("https://").to_string();
                (base, target)
            }
        };
        if config.auto_close_after_secs == 0 {
            return Err(err("auto_close_after_secs must be at least 1".to_string()));
        }
        if let Some(h) = &config.heartbeat {
            if h.name.trim().is_empty() {
                return Err(err("heartbeat name must not be empty".to_string()));
            }
            if h.interval_secs == 0 {
                return Err(err("heartbeat interval_secs must be at least 1".to_string()));
            }
        }
        if config.tags.len() > MAX_TAGS {
            return Err(err(format!(
                "{} tags, OpsGenie takes at most {MAX_TAGS}",
                config.tags.len()
            )));
        }
        let rules = AlertRules::new(
            config.min_severity,
            config.missing_severity,
            &config.resolve_when,
        )
        .map_err(err)?;
        let parse =
            |what: &str, t: &str| FieldTemplate::parse(t).map_err(|e| err(format!("{what}: {e}")));
        let parse_opt =
            |what: &str, t: &Option<String>| -> Result<Option<FieldTemplate>, SinkError> {
                t.as_deref().map(|t| parse(what, t)).transpose()
            };
        let mut details = Vec::new();
        for (k, v) in &config.details {
            if k.trim().is_empty() {
                return Err(err("a details name is empty".to_string()));
            }
            details.push((k.trim().to_string(), parse("details", v)?));
        }
        let templates = Templates {
            alias: parse("alias", &config.alias)?,
            message: parse("message", &config.message)?,
            description: parse_opt("description", &config.description)?,
            entity: parse_opt("entity", &config.entity)?,
            source: parse("source", &config.source)?,
            tags: config
                .tags
                .iter()
                .map(|t| parse("tags", t))
                .collect::<Result<_, _>>()?,
            details,
        };
        if templates.alias.is_constant() {
            return Err(err(format!(
                "alias `{}` has no placeholder: every alert would be one",
                config.alias
            )));
        }
        let default_responders =
            responders_json(&config.responders).map_err(|m| err(format!("responders: {m}")))?;
        let mut routes = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for r in &config.routes {
            let name = r.name.trim();
            if name.is_empty() || names.contains(&name) {
                return Err(err(format!("route name `{name}` is empty or used twice")));
            }
            names.push(name);
            if r.tenants.is_empty() && r.rule_ids.is_empty() {
                return Err(err(format!("route `{name}` needs tenants or rule_ids")));
            }
            if r.responders.is_empty() {
                return Err(err(format!("route `{name}` has no responders")));
            }
            routes.push(Route {
                tenants: r.tenants.iter().map(|s| s.trim().to_string()).collect(),
                rule_ids: r.rule_ids.iter().map(|s| s.trim().to_string()).collect(),
                responders: responders_json(&r.responders)
                    .map_err(|m| err(format!("route `{name}`: {m}")))?,
            });
        }
        Ok(OpsGenieSink {
            name: name.into(),
            base,
            target,
            rules,
            templates,
            default_responders,
            routes,
            config,
            api_key,
            state: Mutex::new(State::default()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OpsGenieConfig {
        &self.config
    }

    /// The API base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A copy of the open alerts.
    pub fn incidents(&self) -> IncidentBook {
        self.state().book.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn quiet_window(&self) -> Duration {
        Duration::from_secs(self.config.auto_close_after_secs)
    }

    /// The responders for a rule id and tenant: the first matching route's, else the default.
    fn responders_for(&self, rule_id: Option<&str>, tenant: Option<&str>) -> &[Value] {
        self.routes
            .iter()
            .find(|r| {
                let rule_ok = r.rule_ids.is_empty()
                    || rule_id.is_some_and(|id| r.rule_ids.iter().any(|x| x == id));
                let tenant_ok = r.tenants.is_empty()
                    || tenant.is_some_and(|t| r.tenants.iter().any(|x| x == t));
                rule_ok && tenant_ok
            })
            .map_or(self.default_responders.as_slice(), |r| {
                r.responders.as_slice()
            })
    }

    fn auth_header(&self) -> (String, String) {
        (
            "Authorization".to_string(),
            format!("GenieKey {}", self.api_key.expose()),
        )
    }
}

/// Responders as OpsGenie JSON: `{"type":"team","name":…}`, `{"type":"user","username":…}`,
/// `{"type":"escalation","name":…}`, `{"type":"schedule","name":…}`.
fn responders_json(responders: &[OpsGenieResponder]) -> Result<Vec<Value>, String> {
    responders
        .iter()
        .map(|r| {
            let set: Vec<(&str, &str)> = [
                ("team", r.team.as_deref()),
                ("user", r.user.as_deref()),
                ("escalation", r.escalation.as_deref()),
                ("schedule", r.schedule.as_deref()),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.trim())))
            .collect();
            match set.as_slice() {
                [(_, "")] => Err("a responder name is empty".to_string()),
                [("user", name)] => Ok(serde_json::json!({"type": "user", "username": name})),
                [(kind, name)] => Ok(serde_json::json!({"type": kind, "name": name})),
                _ => Err(
                    "each responder has exactly one of team, user, escalation, schedule"
                        .to_string(),
                ),
            }
        })
        .collect()
}

impl Sink for OpsGenieSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
        request::build(self, batch, now)
    }

    fn classify(&self, request: &HttpRequest, response: &HttpResponse) -> Classification {
        response::classify(self, request, response)
    }

    fn classify_transport_error(
        &self,
        request: &HttpRequest,
        error: &TransportError,
    ) -> Classification {
        response::transport_failed(self, request);
        super::classify::transport_error(error, request.records.len(), |m| self.redact(m))
    }

    fn redact(&self, text: &str) -> String {
        self.api_key.redact(text)
    }

    fn max_concurrency(&self) -> Option<usize> {
        Some(1)
    }

    fn tick_interval(&self) -> Option<Duration> {
        let closes =
            (self.quiet_window() / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
        let every = match &self.config.heartbeat {
            Some(h) => closes.min(Duration::from_secs(h.interval_secs)),
            None => closes,
        };
        Some(every)
    }

    fn tick(&self, now: SystemTime, healthy: bool) -> Vec<HttpRequest> {
        request::tick(self, now, healthy)
    }

    fn tick_done(
        &self,
        request: &HttpRequest,
        response: Result<&HttpResponse, &TransportError>,
        _now: SystemTime,
    ) {
        response::tick_done(self, request, response);
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(self.state().book.snapshot())
    }

    fn restore(&self, state: &[u8]) -> Result<(), SinkError> {
        self.state().book.restore(state)
    }
}
