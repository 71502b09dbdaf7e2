//! Microsoft Teams: alert cards posted to channel webhooks — a Workflows (Power Automate) flow
//! "when a Teams webhook request is received" with an Adaptive Card 1.4, or a legacy Office 365
//! connector with a `MessageCard` (`card: message_card`).
//!
//! # Messages
//!
//! As Slack (see [`crate::sink::chat`]): at most one card per webhook per batch; a single
//! event in full (title with severity, facts: severity, host, user, source, destination, rule,
//! tenant, time; the event's message; link buttons; footer `secflow · 1 event · event <id>`),
//! several as one summary (the most severe event in detail, `38 events: 1 critical, 30 high,
//! 7 medium`, and lines such as `30 more high-severity events from host ws-1`). The request
//! carries all of the card's records. The Adaptive Card's top container has the severity's
//! style (`attention` for high and critical, `warning` for medium, `accent` for low); the
//! MessageCard's `themeColor` is the severity colour. Cards stay under Teams' 28 KB limit
//! (values are clipped; the event's message is shortened if needed).
//!
//! # Rate limit
//!
//! [`Sink::pacing_key`] is a hash of the webhook URL (never the URL), [`Sink::pacing_interval`]
//! is `message_interval_ms` (default 1.1 s), one batch at a time.
//!
//! # Answers
//!
//! 200/202 delivered — except a 200 whose body says `Microsoft Teams endpoint returned HTTP
//! error <n>` (legacy connectors wrap Teams' errors in a 200), read as status `<n>`; 400
//! permanent; 401/403/404 permanent, and the sink is down when that webhook is the only
//! destination (401/403 open the circuit at once); 413 split (one record: permanent); 429
//! retried after `Retry-After`; 5xx retried.

mod card;
mod config;
mod response;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub use card::{adaptive_style, footer_text, theme_color, MAX_MESSAGE_BYTES};
pub use config::{TeamsCard, TeamsConfig};
pub use response::{embedded, flow_error, Embedded};

use super::chat::{check_common, prepare, url_key, Router, Template};
use super::{
    BuildResult, Classification, HttpRequest, HttpResponse, Method, Outcome, Sink, SinkError,
    SinkRecord,
};
use crate::secret::Secret;
use crate::sink::SecretSource;

impl TeamsConfig {
    /// Resolves the webhook URLs with `resolve`.
    ///
    /// # Errors
    /// The first error of `resolve`.
    pub fn resolve_webhooks<E>(
        &self,
        resolve: impl Fn(&SecretSource) -> Result<Secret, E>,
    ) -> Result<BTreeMap<String, Secret>, E> {
        self.webhooks
            .iter()
            .map(|(k, v)| Ok((k.clone(), resolve(v)?)))
            .collect()
    }
}

/// A Teams sink; see the module documentation.
#[derive(Debug)]
pub struct TeamsSink {
    name: String,
    config: TeamsConfig,
    webhooks: BTreeMap<String, Secret>,
    router: Router,
    title: Template,
    links: Vec<(String, Template)>,
    /// The URLs and their signatures (`sig=` query values), for redaction.
    secrets: Vec<Secret>,
}

impl TeamsSink {
    /// A sink named `name`; `webhooks` are `config.webhooks`, resolved.
    ///
    /// # Errors
    /// [`SinkError::Config`]: no webhooks; a URL that is not `http(s)://` (not shown: it is a
    /// secret); a channel or route naming no webhook; a bad template, link or limit.
    pub fn new(
        name: impl Into<String>,
        config: TeamsConfig,
        webhooks: BTreeMap<String, Secret>,
    ) -> Result<Self, SinkError> {
        let err = |m: String| SinkError::Config(format!("teams: {m}"));
        let links = check_common(
            &config.links,
            config.summary_lines,
            config.message_interval_ms,
        )
        .map_err(err)?;
        let title = Template::parse(&config.title).map_err(|e| err(format!("title: {e}")))?;
        if webhooks.is_empty() {
            return Err(err(
                "webhooks must name at least one channel webhook".to_string()
            ));
        }
        let mut secrets = Vec::new();
        for (name, url) in &webhooks {
            let raw = url.expose();
            let ok = (raw.starts_with("https://") || raw.starts_with("http://"))
                && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(err(format!(
                    "webhooks.{name} must be the webhook's http(s):// URL (value not shown: it \
                     is a secret)"
                )));
            }
            secrets.push(url.clone());
            // A message may quote the signature or the connector's id path without the host.
            for part in raw.split(['?', '&', '/']) {
                let value = part.strip_prefix("sig=").unwrap_or(part);
                let id_like = value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@'));
                if value.len() >= 16 && id_like {
                    secrets.push(Secret::new(value));
                }
            }
        }
        let router = Router::new(&config.channel, &config.routes, config.min_severity);
        for ch in router.channels() {
            if !webhooks.contains_key(ch) {
                return Err(err(format!(
                    "channel `{ch}` names no webhook (webhooks: {})",
                    webhooks
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(TeamsSink {
            name: name.into(),
            config,
            webhooks,
            router,
            title,
            links,
            secrets,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TeamsConfig {
        &self.config
    }

    /// Whether every message goes to one webhook.
    fn single_destination(&self) -> bool {
        self.router.channels().len() == 1
    }

    fn webhook_name(&self, url: &str) -> &str {
        self.webhooks
            .iter()
            .find(|(_, u)| u.expose() == url)
            .map_or("?", |(k, _)| k.as_str())
    }
}

impl Sink for TeamsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, batch: &[SinkRecord], _now: SystemTime) -> BuildResult {
        let prepared = prepare(batch, &self.router, self.config.summary_lines);
        let mut rejected = prepared.rejected;
        let mut requests = Vec::with_capacity(prepared.digests.len());
        for d in &prepared.digests {
            let Some(url) = self.webhooks.get(&d.channel) else {
                continue;
            };
            let Some(body) = card::body(self, d) else {
                rejected.extend(d.records.iter().map(|&i| {
                    (
                        i,
                        Outcome::permanent(
                            "payload_too_large",
                            None,
                            format!("the card is over Teams' {MAX_MESSAGE_BYTES}-byte limit"),
                        ),
                    )
                }));
                continue;
            };
            let mut headers = vec![(
                "Content-Type".to_string(),
                "application/json; charset=utf-8".to_string(),
            )];
            if let Some(tp) = super::common_traceparent(batch, &d.records) {
                headers.push(("traceparent".to_string(), tp.to_string()));
            }
            requests.push(HttpRequest {
                method: Method::Post,
                url: url.expose().to_string(),
                headers,
                body,
                records: d.records.clone(),
            });
        }
        BuildResult { requests, rejected }
    }

    fn classify(&self, request: &HttpRequest, response: &HttpResponse) -> Classification {
        response::classify(
            self,
            self.webhook_name(&request.url),
            response,
            request.records.len(),
        )
    }

    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| s.redact(&t))
    }

    fn max_concurrency(&self) -> Option<usize> {
        // Per-webhook pacing and one card per webhook per batch assume one batch at a time.
        Some(1)
    }

    fn pacing_key(&self, request: &HttpRequest) -> Option<String> {
        Some(url_key(&request.url))
    }

    fn pacing_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.config.message_interval_ms))
    }
}
