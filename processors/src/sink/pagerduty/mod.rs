//! PagerDuty Events API v2: `POST /v2/enqueue`, one event per request.
//!
//! # What is sent
//!
//! - An alert at or above `min_severity` becomes a `trigger` with a `dedup_key` rendered from
//!   a template (stable per incident), unless its incident is already open: then it is
//!   suppressed (`incident_open`) and refreshes the incident's `last_seen`. Records of one
//!   batch with the same incident go into **one** trigger (all of them are its records).
//! - Alerts below the threshold are suppressed (`below_min_severity`).
//! - A resolution event (`resolve_when`) sends a `resolve` with the same dedup key and routing
//!   key, if the incident is open (else it is suppressed: `no_open_incident`).
//! - The tick resolves incidents with no event for `auto_resolve_after_secs`.
//!
//! An incident is open once PagerDuty accepted (202) its trigger, never before; the open
//! incidents are the sink's state (saved by the engine when the stage has a `state_dir`, so a
//! restart does not trigger them again). The sink runs one batch at a time.
//!
//! The routing key of an incident is remembered as a fingerprint (16 hex digits of its
//! SHA-256), never as the key itself.
//!
//! # Answers
//!
//! 202 delivered; 400 permanent (`invalid_event`, with PagerDuty's error list; a 400 about the
//! routing key also opens the circuit: `invalid_routing_key`); 401/403 permanent and the sink
//! is down (`auth`); 429 retried (`rate_limited`, honouring `Retry-After`); 5xx retried.

mod config;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

pub use config::{
    PagerDutyConfig, PagerDutyLink, PagerDutyRoute, MAX_DEDUP_KEY_CHARS, MAX_EVENT_BYTES,
    MAX_SUMMARY_CHARS,
};
pub use request::{pagerduty_severity, ENQUEUE_PATH};
pub use response::error_detail;

use sha2::{Digest, Sha256};

use super::alerting::{AlertRules, FieldTemplate, IncidentBook};
use super::{
    BuildResult, Classification, HttpRequest, HttpResponse, Sink, SinkError, SinkRecord,
    TransportError,
};
use crate::secret::Secret;

/// The public Events API host.
pub const DEFAULT_BASE: &str = "https://events.pagerduty.com";
/// Most quiet-window resolves sent per tick (PagerDuty allows about 120 events a minute per
/// integration key; the rest wait for the next tick).
const MAX_RESOLVES_PER_TICK: usize = 50;

/// A route with its resolved key.
#[derive(Debug)]
struct Route {
    name: String,
    rule_ids: Vec<String>,
    tenants: Vec<String>,
    key: Secret,
    fingerprint: String,
}

/// The compiled templates.
#[derive(Debug)]
struct Templates {
    dedup_key: FieldTemplate,
    summary: FieldTemplate,
    source: FieldTemplate,
    component: Option<FieldTemplate>,
    group: Option<FieldTemplate>,
    class: Option<FieldTemplate>,
    links: Vec<(FieldTemplate, Option<FieldTemplate>)>,
    client_url: Option<FieldTemplate>,
}

/// A PagerDuty Events API v2 sink; see the module documentation.
#[derive(Debug)]
pub struct PagerDutySink {
    name: String,
    config: PagerDutyConfig,
    url: String,
    target: String,
    default_route: Route,
    routes: Vec<Route>,
    rules: AlertRules,
    templates: Templates,
    book: Mutex<IncidentBook>,
}

/// The fingerprint of a routing key: 16 hex digits of its SHA-256.
pub fn key_fingerprint(key: &Secret) -> String {
    let digest = Sha256::digest(key.expose().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl PagerDutySink {
    /// A sink named `name`; `routing_key` is `config.routing_key` resolved, `route_keys` the
    /// keys of `config.routes`, resolved, in order.
    ///
    /// # Errors
    /// [`SinkError::Config`] for an endpoint that is not an `http(s)://` URL, a bad template or
    /// resolution condition, a route without rule ids and tenants, duplicate route names, a
    /// key count that does not match the routes, or a zero quiet window.
    pub fn new(
        name: impl Into<String>,
        config: PagerDutyConfig,
        routing_key: Secret,
        route_keys: Vec<Secret>,
    ) -> Result<Self, SinkError> {
        let err = |m: String| SinkError::Config(format!("pagerduty: {m}"));
        let (base, target) = match &config.endpoint {
            Some(e) => {
                let base = e.trim().trim_end_matches('/').to_string();
                if !(base.starts_with("http://") || base.starts_with("https://")) {
                    return Err(err(format!(
                        "endpoint must be an http(s):// URL, got `{base}`"
                    )));
                }
                if base.ends_with(ENQUEUE_PATH) {
                    return Err(err(format!(
                        "endpoint is the base URL; `{ENQUEUE_PATH}` is appended, leave it out"
                    )));
                }
                (base.clone(), base)
            }
            None => (DEFAULT_BASE.to_string(), "events.pagerduty.com".to_string()),
        };
        if route_keys.len() != config.routes.len() {
            return Err(err(format!(
                "{} routes but {} resolved keys",
                config.routes.len(),
                route_keys.len()
            )));
        }
        let mut routes = Vec::new();
        for (r, key) in config.routes.iter().zip(route_keys) {
            let name = r.name.trim();
            if name.is_empty() || name == "default" {
                return Err(err(format!(
                    "route name `{name}` must be non-empty and not `default`"
                )));
            }
            if routes.iter().any(|x: &Route| x.name == name) {
                return Err(err(format!("route name `{name}` is used twice")));
            }
            if r.rule_ids.is_empty() && r.tenants.is_empty() {
                return Err(err(format!(
                    "route `{name}` needs rule_ids or tenants (the default key takes the rest)"
                )));
            }
            routes.push(Route {
                name: name.to_string(),
                rule_ids: r.rule_ids.iter().map(|s| s.trim().to_string()).collect(),
                tenants: r.tenants.iter().map(|s| s.trim().to_string()).collect(),
                fingerprint: key_fingerprint(&key),
                key,
            });
        }
        if config.auto_resolve_after_secs == 0 {
            return Err(err("auto_resolve_after_secs must be at least 1".to_string()));
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
        if config.client.trim().is_empty() {
            return Err(err("client must not be empty".to_string()));
        }
        let mut links = Vec::new();
        for l in &config.links {
            let href = parse("links.href", &l.href)?;
            let start = href.as_str().trim_start();
            if !(start.starts_with("http://") || start.starts_with("https://")) {
                return Err(err(format!(
                    "link href `{}` must start with http:// or https://",
                    l.href
                )));
            }
            links.push((href, parse_opt("links.text", &l.text)?));
        }
        let templates = Templates {
            dedup_key: parse("dedup_key", &config.dedup_key)?,
            summary: parse("summary", &config.summary)?,
            source: parse("source", &config.source)?,
            component: parse_opt("component", &config.component)?,
            group: parse_opt("group", &config.group)?,
            class: parse_opt("class", &config.class)?,
            links,
            client_url: parse_opt("client_url", &config.client_url)?,
        };
        if templates.dedup_key.is_constant() {
            return Err(err(format!(
                "dedup_key `{}` has no placeholder: every alert would be one incident",
                config.dedup_key
            )));
        }
        Ok(PagerDutySink {
            name: name.into(),
            url: format!("{base}{ENQUEUE_PATH}"),
            target,
            default_route: Route {
                name: "default".to_string(),
                rule_ids: Vec::new(),
                tenants: Vec::new(),
                fingerprint: key_fingerprint(&routing_key),
                key: routing_key,
            },
            routes,
            rules,
            templates,
            config,
            book: Mutex::new(IncidentBook::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PagerDutyConfig {
        &self.config
    }

    /// The URL events go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A copy of the open incidents.
    pub fn incidents(&self) -> IncidentBook {
        self.book().clone()
    }

    fn book(&self) -> MutexGuard<'_, IncidentBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn quiet_window(&self) -> Duration {
        Duration::from_secs(self.config.auto_resolve_after_secs)
    }

    /// The route for a rule id and tenant: the first matching route, else the default.
    fn route_for(&self, rule_id: Option<&str>, tenant: Option<&str>) -> &Route {
        self.routes
            .iter()
            .find(|r| {
                let rule_ok = r.rule_ids.is_empty()
                    || rule_id.is_some_and(|id| r.rule_ids.iter().any(|x| x == id));
                let tenant_ok = r.tenants.is_empty()
                    || tenant.is_some_and(|t| r.tenants.iter().any(|x| x == t));
                rule_ok && tenant_ok
            })
            .unwrap_or(&self.default_route)
    }

    /// The route whose key has this fingerprint.
    fn route_by_fingerprint(&self, fingerprint: &str) -> Option<&Route> {
        std::iter::once(&self.default_route)
            .chain(self.routes.iter())
            .find(|r| r.fingerprint == fingerprint)
    }

    fn secrets(&self) -> Vec<Secret> {
        std::iter::once(&self.default_route)
            .chain(self.routes.iter())
            .map(|r| r.key.clone())
            .collect()
    }
}

impl Sink for PagerDutySink {
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
        self.secrets()
            .iter()
            .fold(text.to_string(), |t, s| s.redact(&t))
    }

    fn max_concurrency(&self) -> Option<usize> {
        Some(1)
    }

    fn tick_interval(&self) -> Option<Duration> {
        // A quarter of the quiet window, between 250 ms and 30 s: resolves go out at most a
        // quarter window late.
        Some((self.quiet_window() / 4).clamp(Duration::from_millis(250), Duration::from_secs(30)))
    }

    fn tick(&self, now: SystemTime, _healthy: bool) -> Vec<HttpRequest> {
        request::quiet_resolves(self, now)
    }

    fn tick_done(
        &self,
        request: &HttpRequest,
        response: Result<&HttpResponse, &TransportError>,
        _now: SystemTime,
    ) {
        response::quiet_resolve_done(self, request, response);
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(self.book().snapshot())
    }

    fn restore(&self, state: &[u8]) -> Result<(), SinkError> {
        self.book().restore(state)
    }
}
