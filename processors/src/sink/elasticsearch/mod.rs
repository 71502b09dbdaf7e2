//! Elasticsearch `_bulk`: NDJSON `create` actions with `_id` = event id (re-sends are
//! idempotent: a second `create` answers 409, read as [`Outcome::Duplicate`]), index or data
//! stream templated per event, per-item results, API key or basic auth.
//!
//! Splitting: the sink splits proactively at `max_request_bytes` (uncompressed); if the server
//! still answers 413, the classification asks the engine to split (`split: true`), down to
//! single documents, where 413 is permanent.
//!
//! [`Outcome::Duplicate`]: crate::sink::Outcome::Duplicate

mod config;
mod request;
mod response;
mod template;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

pub use config::{ElasticsearchConfig, EsAuthConfig};
pub use request::action;
pub use response::error_text;
pub use template::{sanitize_tenant, validate_index_name, IndexTemplate};

use super::{
    BuildResult, Classification, Credentials, HttpRequest, HttpResponse, Sink, SinkError,
    SinkRecord,
};
use crate::secret::Secret;

/// An Elasticsearch bulk sink; see the module documentation.
#[derive(Debug)]
pub struct ElasticsearchSink {
    name: String,
    config: ElasticsearchConfig,
    template: IndexTemplate,
    default_tenant: String,
    bulk_url: String,
    auth_header: Option<Secret>,
    secrets: Vec<Secret>,
}

impl ElasticsearchSink {
    /// A sink named `name`; `credentials` is `config.auth`, resolved.
    ///
    /// # Errors
    /// [`SinkError::Config`] for a bad endpoint, index template or default tenant.
    pub fn new(
        name: impl Into<String>,
        config: ElasticsearchConfig,
        credentials: Option<Credentials>,
    ) -> Result<Self, SinkError> {
        let base = config.endpoint.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SinkError::Config(format!(
                "elasticsearch endpoint must be an http(s):// URL, got `{base}`"
            )));
        }
        let template = IndexTemplate::parse(&config.index).map_err(SinkError::Config)?;
        let default_tenant = sanitize_tenant(&config.default_tenant).ok_or_else(|| {
            SinkError::Config("elasticsearch default_tenant is empty".to_string())
        })?;
        let mut bulk_url = format!("{base}/_bulk");
        if let Some(p) = &config.pipeline {
            let ok = !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(SinkError::Config(format!(
                    "elasticsearch pipeline name `{p}`: use letters, digits, - _ ."
                )));
            }
            bulk_url.push_str("?pipeline=");
            bulk_url.push_str(p);
        }
        let (auth_header, secrets) = match &credentials {
            Some(c) => (Some(c.header_value()), c.secrets()),
            None => (None, Vec::new()),
        };
        Ok(ElasticsearchSink {
            name: name.into(),
            config,
            template,
            default_tenant,
            bulk_url,
            auth_header,
            secrets,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ElasticsearchConfig {
        &self.config
    }
}

impl Sink for ElasticsearchSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
        request::build(self, batch, now)
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
