//! Datadog Logs: JSON arrays of log entries to `POST /api/v2/logs` on the organisation's site,
//! `DD-API-KEY`, gzip; at most 1000 entries and 5 MB (uncompressed) per request, 1 MB per entry.
//!
//! # What an entry looks like
//!
//! A JSON payload (ECS, OCSF, canonical) is **merged** into the entry: its top-level fields
//! become the entry's attributes, so analysts facet on `@event.action`, `@source.ip`… as with
//! any JSON log. secflow sets the reserved attributes around it: `ddsource`, `ddtags`
//! (configured tags + `tenant:<tenant>`), `hostname` (from the event, else configured),
//! `service`, `status` (from the event's severity), `message` (the event's own `message`), and
//! `secflow` (`event_id`, `tenant`, `format`). A document field whose name secflow sets with a
//! different value is kept under `secflow.overridden.<name>`, never dropped. A CEF line becomes
//! the entry's `message` (a string) with the same reserved attributes. Events whose document
//! has no `@timestamp`, `timestamp` or `date` get `timestamp` (epoch milliseconds) from the
//! record's event time, so Datadog dates them by the event, not by arrival.
//!
//! # Answers
//!
//! 2xx delivered; 401/403 permanent and the sink is down (bad API key: the circuit opens at
//! once and the message says so); 400 permanent; 413 split (one record: permanent); 408, 429
//! and 5xx retried, honouring `Retry-After`. Entries over 1 MB are dead-lettered at build time
//! (Datadog would accept and truncate them).
//!
//! The half-open probe posts an empty array to the intake: 2xx or 400 means the intake answers
//! and took the key; 401/403, 429, 5xx or no answer keep the circuit open, so a revoked key does
//! not dead-letter a batch every time the circuit half-opens.

mod config;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

pub use config::{DatadogConfig, DatadogSite, MAX_ENTRIES, MAX_ENTRY_BYTES, MAX_REQUEST_BYTES};
pub use request::{datadog_status, encode_entry, API_KEY_HEADER, LOGS_PATH};
pub use response::error_detail;

use super::{BuildResult, Classification, HttpRequest, HttpResponse, Sink, SinkError, SinkRecord};
use crate::secret::Secret;

/// Longest Datadog tag.
const MAX_TAG_CHARS: usize = 200;

/// A Datadog Logs sink; see the module documentation.
#[derive(Debug)]
pub struct DatadogSink {
    name: String,
    config: DatadogConfig,
    api_key: Secret,
    /// Full intake URL (`…/api/v2/logs`).
    url: String,
    /// Where logs go, for messages: the site's domain or the endpoint override.
    target: String,
}

impl DatadogSink {
    /// A sink named `name`; `api_key` is `config.api_key`, resolved.
    ///
    /// # Errors
    /// [`SinkError::Config`] for an endpoint that is not an `http(s)://` URL, limits of zero or
    /// beyond Datadog's, an empty `ddsource`, or a tag that is empty, too long or has a comma.
    pub fn new(
        name: impl Into<String>,
        config: DatadogConfig,
        api_key: Secret,
    ) -> Result<Self, SinkError> {
        let err = |m: String| Err(SinkError::Config(format!("datadog: {m}")));
        let (base, target) = match &config.endpoint {
            Some(e) => {
                let base = e.trim().trim_end_matches('/').to_string();
                if !(base.starts_with("http://") || base.starts_with("https://")) {
                    return err(format!("endpoint must be an http(s):// URL, got `{base}`"));
                }
                if base.ends_with(LOGS_PATH) {
                    return err(format!(
                        "endpoint is the base URL; `{LOGS_PATH}` is appended, leave it out"
                    ));
                }
                (base.clone(), base)
            }
            None => (config.site.intake_base(), config.site.domain().to_string()),
        };
        if !(1..=MAX_ENTRIES).contains(&config.max_entries_per_request) {
            return err(format!(
                "max_entries_per_request must be 1..={MAX_ENTRIES}, got {}",
                config.max_entries_per_request
            ));
        }
        if !(1..=MAX_REQUEST_BYTES).contains(&config.max_request_bytes) {
            return err(format!(
                "max_request_bytes must be 1..={MAX_REQUEST_BYTES}, got {}",
                config.max_request_bytes
            ));
        }
        if !(1..=MAX_ENTRY_BYTES).contains(&config.max_entry_bytes) {
            return err(format!(
                "max_entry_bytes must be 1..={MAX_ENTRY_BYTES}, got {}",
                config.max_entry_bytes
            ));
        }
        if config.ddsource.trim().is_empty() {
            return err("ddsource must not be empty".to_string());
        }
        for tag in &config.tags {
            if tag.trim().is_empty() || tag.contains(',') || tag.chars().count() > MAX_TAG_CHARS {
                return err(format!(
                    "tag `{tag}` must be non-empty, without commas, at most {MAX_TAG_CHARS} \
                     characters"
                ));
            }
        }
        for (key, value) in [("service", &config.service), ("hostname", &config.hostname)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return err(format!("{key} must not be empty when set"));
            }
        }
        Ok(DatadogSink {
            name: name.into(),
            url: format!("{base}{LOGS_PATH}"),
            target,
            config,
            api_key,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DatadogConfig {
        &self.config
    }

    /// The intake URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A tag value as Datadog keeps it: lower case; characters other than letters, digits, `_`,
/// `-`, `:`, `.`, `/` replaced by `_`; at most 200 characters.
pub fn sanitize_tag_value(value: &str) -> String {
    value
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TAG_CHARS)
        .collect()
}

impl Sink for DatadogSink {
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
        self.api_key.redact(text)
    }

    fn health_probe(&self) -> Option<HttpRequest> {
        Some(request::probe(self))
    }

    fn probe_ok(&self, response: &HttpResponse) -> bool {
        // An empty array may be refused as a bad request; either way the intake answered and
        // the key passed (the key is checked first).
        (200..300).contains(&response.status) || response.status == 400
    }
}
