//! The delivery engine shared by every sink: batching, offsets that only move over finished
//! records, in-process retries, circuit breaking, retry-topic tiers, dead letters and rate
//! limits. Sinks (in `processors::sink`) only build requests and classify responses.

pub mod circuit;
pub mod engine;
pub mod http;
pub mod offsets;
pub mod rate_limit;
pub mod state;
pub mod syslog_transport;
pub mod tiers;

use std::sync::Arc;

use processors::secret::Secret;
use processors::sink::datadog::DatadogSink;
use processors::sink::elasticsearch::ElasticsearchSink;
use processors::sink::splunk_hec::SplunkHecSink;
use processors::sink::sumo_logic::SumoLogicSink;
use processors::sink::webhook::WebhookSink;
use processors::sink::{Credentials, SecretSource, Sink};

use crate::topology::{SinkStage, SinkTarget};

/// Builds the sink of a stage, reading its secrets now.
pub fn build_sink(stage: &SinkStage) -> Result<Arc<dyn Sink>, String> {
    build(stage, &|s: &SecretSource| {
        s.resolve().map_err(|e| e.to_string())
    })
}

/// Builds the sink with placeholder secrets: checks URLs, templates and limits at
/// `secflow validate` time, where the secrets need not be present.
pub fn build_sink_unresolved(stage: &SinkStage) -> Result<Arc<dyn Sink>, String> {
    // Shaped like a URL because some secrets are URLs (a Sumo Logic source URL).
    build(stage, &|_| {
        Ok(Secret::new("https://validation-placeholder.invalid/secret"))
    })
}

type Resolver<'a> = &'a dyn Fn(&SecretSource) -> Result<Secret, String>;

fn build(stage: &SinkStage, resolve: Resolver<'_>) -> Result<Arc<dyn Sink>, String> {
    let name = stage.name.clone();
    let sink: Arc<dyn Sink> = match &stage.sink {
        SinkTarget::SplunkHec(c) => {
            let token = resolve(&c.token)?;
            Arc::new(SplunkHecSink::new(name, c.clone(), token).map_err(|e| e.to_string())?)
        }
        SinkTarget::Elasticsearch(c) => {
            let creds = match &c.auth {
                Some(a) => Some(resolve_credentials_es(a, resolve)?),
                None => None,
            };
            Arc::new(ElasticsearchSink::new(name, c.clone(), creds).map_err(|e| e.to_string())?)
        }
        SinkTarget::Webhook(c) => {
            let creds = match &c.auth {
                Some(a) => Some(resolve_credentials_webhook(a, resolve)?),
                None => None,
            };
            let secrets = c
                .signing_secrets
                .iter()
                .map(resolve)
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(WebhookSink::new(name, c.clone(), creds, secrets).map_err(|e| e.to_string())?)
        }
        SinkTarget::Datadog(c) => {
            let key = resolve(&c.api_key)?;
            Arc::new(DatadogSink::new(name, c.clone(), key).map_err(|e| e.to_string())?)
        }
        SinkTarget::SumoLogic(c) => {
            let url = resolve(&c.url)?;
            Arc::new(SumoLogicSink::new(name, c.clone(), url).map_err(|e| e.to_string())?)
        }
        SinkTarget::SyslogCef(c) => {
            if stage.input != crate::topology::TopicRole::Cef {
                return Err(format!(
                    "syslog_cef sends CEF lines: the stage must read `input: cef` (it reads `{}`)",
                    stage.input.key()
                ));
            }
            Arc::new(
                processors::sink::syslog::SyslogSink::new(name, c.clone())
                    .map_err(|e| e.to_string())?,
            )
        }
        SinkTarget::PagerDuty(c) => {
            let key = resolve(&c.routing_key)?;
            let route_keys = c
                .routes
                .iter()
                .map(|r| resolve(&r.routing_key))
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(
                processors::sink::pagerduty::PagerDutySink::new(name, c.clone(), key, route_keys)
                    .map_err(|e| e.to_string())?,
            )
        }
        SinkTarget::OpsGenie(c) => {
            let key = resolve(&c.api_key)?;
            Arc::new(
                processors::sink::opsgenie::OpsGenieSink::new(name, c.clone(), key)
                    .map_err(|e| e.to_string())?,
            )
        }
        SinkTarget::Slack(c) => {
            let secrets = c.resolve_secrets(resolve)?;
            Arc::new(
                processors::sink::slack::SlackSink::new(name, c.clone(), secrets)
                    .map_err(|e| e.to_string())?,
            )
        }
        SinkTarget::Teams(c) => {
            let webhooks = c.resolve_webhooks(resolve)?;
            Arc::new(
                processors::sink::teams::TeamsSink::new(name, c.clone(), webhooks)
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    Ok(sink)
}

fn resolve_credentials_es(
    a: &processors::sink::elasticsearch::EsAuthConfig,
    resolve: Resolver<'_>,
) -> Result<Credentials, String> {
    use processors::sink::elasticsearch::EsAuthConfig;
    Ok(match a {
        EsAuthConfig::ApiKey(s) => Credentials::ApiKey(resolve(s)?),
        EsAuthConfig::Basic(b) => Credentials::Basic {
            username: b.username.clone(),
            password: resolve(&b.password)?,
        },
    })
}

fn resolve_credentials_webhook(
    a: &processors::sink::webhook::WebhookAuthConfig,
    resolve: Resolver<'_>,
) -> Result<Credentials, String> {
    use processors::sink::webhook::WebhookAuthConfig;
    Ok(match a {
        WebhookAuthConfig::Bearer(s) => Credentials::Bearer(resolve(s)?),
        WebhookAuthConfig::Basic(b) => Credentials::Basic {
            username: b.username.clone(),
            password: resolve(&b.password)?,
        },
    })
}
