//! Sumo Logic HTTP Logs and Metrics Source: newline-delimited events POSTed to the source's
//! upload URL (the URL embeds the source's token: the whole URL is the secret), gzip, metadata
//! headers (`X-Sumo-Category`, `X-Sumo-Name`, `X-Sumo-Host`, `X-Sumo-Fields`) rendered per
//! event from templates, with category routes by tenant and severity.
//!
//! One batch becomes one request per distinct set of header values (a request's headers apply
//! to every line in it), each split to at most `max_request_bytes` (1 MB, Sumo's limit). JSON
//! payloads are sent as one compact line each (Sumo's JSON auto-parsing sees the document);
//! a CEF line as it is. A text payload with a line break inside would become several Sumo
//! messages, so it is dead-lettered (`invalid_payload`).
//!
//! Answers: 2xx delivered; 401/403/404 permanent and the sink is down (the source URL is wrong,
//! regenerated, or the source was deleted: the message says so); 400 permanent; 413 split (one
//! record: permanent); 408, 429 and 5xx retried with `Retry-After`. Sumo's 408 means "accepted
//! but timed out processing": the retry may duplicate those events (at-least-once).

mod config;
mod request;
mod response;
mod template;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

pub use config::{SumoLogicConfig, SumoRoute, MAX_REQUEST_BYTES};
pub use request::{
    encode_line, CATEGORY_HEADER, CLIENT_HEADER, FIELDS_HEADER, HOST_HEADER, NAME_HEADER,
};
pub use template::{EventMeta, HeaderTemplate, UNKNOWN};

use super::event_fields::Severity;
use super::{BuildResult, Classification, HttpRequest, HttpResponse, Sink, SinkError, SinkRecord};
use crate::secret::Secret;

/// A compiled category rule.
#[derive(Debug, Clone)]
struct Route {
    tenants: Vec<String>,
    min_severity: Option<Severity>,
    category: HeaderTemplate,
}

impl Route {
    fn matches(&self, tenant: Option<&str>, severity: Option<Severity>) -> bool {
        let tenant_ok =
            self.tenants.is_empty() || tenant.is_some_and(|t| self.tenants.iter().any(|x| x == t));
        let severity_ok = match self.min_severity {
            None => true,
            Some(min) => severity.is_some_and(|s| s >= min),
        };
        tenant_ok && severity_ok
    }
}

/// A Sumo Logic HTTP Source sink; see the module documentation.
#[derive(Debug)]
pub struct SumoLogicSink {
    name: String,
    config: SumoLogicConfig,
    /// The upload URL.
    url: Secret,
    /// Strings a server or client message could echo: the URL and its token.
    secrets: Vec<Secret>,
    category: Option<HeaderTemplate>,
    routes: Vec<Route>,
    source_name: Option<HeaderTemplate>,
    source_host: Option<HeaderTemplate>,
    fields: Vec<(String, HeaderTemplate)>,
}

impl SumoLogicSink {
    /// A sink named `name`; `url` is `config.url`, resolved.
    ///
    /// # Errors
    /// [`SinkError::Config`] when the URL is not an `http(s)://` URL with a path (the message
    /// never shows it), a template or field name is invalid, or `max_request_bytes` is 0 or over
    /// 1 MB.
    pub fn new(
        name: impl Into<String>,
        config: SumoLogicConfig,
        url: Secret,
    ) -> Result<Self, SinkError> {
        let err = |m: String| SinkError::Config(format!("sumo_logic: {m}"));
        let raw = url.expose();
        let rest = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"));
        let has_path = rest.is_some_and(|r| {
            r.split_once('/')
                .is_some_and(|(h, p)| !h.is_empty() && !p.is_empty())
        });
        if !has_path || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                "url must be the source's http(s):// upload URL (value not shown: it is a \
                 secret)"
                    .to_string(),
            ));
        }
        if !(1..=MAX_REQUEST_BYTES).contains(&config.max_request_bytes) {
            return Err(err(format!(
                "max_request_bytes must be 1..={MAX_REQUEST_BYTES}, got {}",
                config.max_request_bytes
            )));
        }
        let parse =
            |what: &str, t: &str| HeaderTemplate::parse(t).map_err(|e| err(format!("{what}: {e}")));
        let category = config
            .category
            .as_deref()
            .map(|t| parse("category", t))
            .transpose()?;
        let routes = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(Route {
                    tenants: r.tenants.clone(),
                    min_severity: r.min_severity,
                    category: parse(&format!("routes[{i}].category"), &r.category)?,
                })
            })
            .collect::<Result<Vec<_>, SinkError>>()?;
        let source_name = config
            .source_name
            .as_deref()
            .map(|t| parse("source_name", t))
            .transpose()?;
        let source_host = config
            .source_host
            .as_deref()
            .map(|t| parse("source_host", t))
            .transpose()?;
        let mut fields = Vec::with_capacity(config.fields.len());
        for (k, v) in &config.fields {
            let name_ok = !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !name_ok {
                return Err(err(format!(
                    "field name `{k}`: use letters, digits, `_`, `-` and `.`"
                )));
            }
            fields.push((k.clone(), parse(&format!("fields.{k}"), v)?));
        }
        let mut secrets = vec![url.clone()];
        // The token is the last path segment; a message may quote it without the host.
        if let Some(token) = raw.rsplit('/').next().filter(|t| t.len() >= 8) {
            secrets.push(Secret::new(token));
        }
        Ok(SumoLogicSink {
            name: name.into(),
            config,
            url,
            secrets,
            category,
            routes,
            source_name,
            source_host,
            fields,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SumoLogicConfig {
        &self.config
    }

    /// The `X-Sumo-Category` for an event: the first matching route, else `category`.
    pub fn category_for(&self, meta: &EventMeta<'_>, severity: Option<Severity>) -> Option<String> {
        self.routes
            .iter()
            .find(|r| r.matches(meta.tenant, severity))
            .map(|r| &r.category)
            .or(self.category.as_ref())
            .map(|t| t.render(meta))
    }
}

impl Sink for SumoLogicSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, batch: &[SinkRecord], _now: SystemTime) -> BuildResult {
        request::build(self, batch)
    }

    fn classify(&self, request: &HttpRequest, response: &HttpResponse) -> Classification {
        response::classify(self, request, response)
    }

    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| s.redact(&t))
    }
}
