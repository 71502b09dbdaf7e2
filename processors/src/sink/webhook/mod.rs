//! Generic webhook: JSON per event or per batch (optionally templated), HMAC-SHA256 signed
//! (`X-Secflow-Signature`, two secrets during a rotation), custom headers, bearer/basic auth.
//!
//! Responses are read by status alone ([`crate::sink::classify`]): every record of a request
//! shares its outcome; a 413 for a batch splits it; a 409 is a duplicate (the receiver already
//! has this exact request, e.g. its replay protection saw the signature) unless
//! `conflict_is_duplicate` is off. Every attempt is built anew (the signature
//! timestamp is the attempt's `now`), so a receiver's replay protection never rejects a
//! legitimate retry.

mod config;
mod request;
pub mod signing;
mod template;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

pub use config::{
    WebhookAuthConfig, WebhookConfig, WebhookMethod, WebhookMode, DEFAULT_SIGNATURE_HEADER,
};
pub use request::{unix_seconds, EVENT_ID_HEADER};
pub use template::BodyTemplate;

use super::{
    classify, BuildResult, Classification, Credentials, HttpRequest, HttpResponse, Method, Outcome,
    Sink, SinkError, SinkRecord,
};
use crate::secret::Secret;

/// Headers a config may not set (the sink sets them).
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "content-encoding",
    "host",
    "transfer-encoding",
];

/// A webhook sink; see the module documentation.
#[derive(Debug)]
pub struct WebhookSink {
    name: String,
    config: WebhookConfig,
    method: Method,
    template: Option<BodyTemplate>,
    auth_header: Option<Secret>,
    signing: Vec<Secret>,
    secrets: Vec<Secret>,
}

impl WebhookSink {
    /// A sink named `name`; `credentials` is `config.auth` resolved, `signing_secrets` is
    /// `config.signing_secrets` resolved (same order: current first).
    ///
    /// # Errors
    /// [`SinkError::Config`] for a bad URL, template, header, or more than two secrets.
    pub fn new(
        name: impl Into<String>,
        config: WebhookConfig,
        credentials: Option<Credentials>,
        signing_secrets: Vec<Secret>,
    ) -> Result<Self, SinkError> {
        let url = config.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SinkError::Config(format!(
                "webhook url must be an http(s):// URL, got `{url}`"
            )));
        }
        if signing_secrets.len() > 2 {
            return Err(SinkError::Config(
                "webhook: at most two signing secrets (current and previous)".to_string(),
            ));
        }
        if signing_secrets.iter().any(|s| s.expose().is_empty()) {
            return Err(SinkError::Config(
                "webhook: empty signing secret".to_string(),
            ));
        }
        if !valid_header_name(&config.signature_header) {
            return Err(SinkError::Config(format!(
                "webhook signature_header `{}` is not a header name",
                config.signature_header
            )));
        }
        for (name, value) in &config.headers {
            let lower = name.to_ascii_lowercase();
            if !valid_header_name(name) || value.contains(['\r', '\n', '\0']) {
                return Err(SinkError::Config(format!(
                    "webhook header `{name}` is not valid"
                )));
            }
            if RESERVED_HEADERS.contains(&lower.as_str())
                || lower == config.signature_header.to_ascii_lowercase()
                || (lower == "authorization" && credentials.is_some())
            {
                return Err(SinkError::Config(format!(
                    "webhook header `{name}` is set by the sink"
                )));
            }
        }
        let template = match &config.template {
            Some(t) => Some(BodyTemplate::parse(t).map_err(SinkError::Config)?),
            None => None,
        };
        let method = match config.method {
            WebhookMethod::Post => Method::Post,
            WebhookMethod::Put => Method::Put,
        };
        let (auth_header, mut secrets) = match &credentials {
            Some(c) => (Some(c.header_value()), c.secrets()),
            None => (None, Vec::new()),
        };
        secrets.extend(signing_secrets.iter().cloned());
        Ok(WebhookSink {
            name: name.into(),
            config,
            method,
            template,
            auth_header,
            signing: signing_secrets,
            secrets,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
        request::build(self, batch, now)
    }

    fn classify(&self, request: &HttpRequest, response: &HttpResponse) -> Classification {
        if response.status == 409 && self.config.conflict_is_duplicate {
            return Classification::uniform(Outcome::Duplicate, request.records.len());
        }
        classify::by_status(response, request.records.len(), None, &self.secrets)
    }

    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| s.redact(&t))
    }
}
