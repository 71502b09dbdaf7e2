//! Topology configuration of a generic webhook sink.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sink::{BasicAuthConfig, Credentials, SecretError, SecretSource};

/// A generic HTTPS webhook: JSON per event or per batch, signed with HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL requests are sent to.
    pub url: String,
    /// HTTP method: `post` (default) or `put`.
    #[serde(default)]
    pub method: WebhookMethod,
    /// `batch` (default): one request per batch, the body a JSON array of events; `event`: one
    /// request per event, the body the event.
    #[serde(default)]
    pub mode: WebhookMode,
    /// Optional JSON template wrapping each event, with placeholders replaced by JSON values:
    /// `{{event}}` (the payload: JSON as is, a CEF line as a string), `{{event_id}}`,
    /// `{{tenant}}`, `{{time_ms}}` (number), `{{format}}` (`null` when unknown), e.g.
    /// `{"text": {{event}}, "id": {{event_id}}}`. Absent: JSON payloads as they are, text
    /// payloads as `{"event_id": …, "tenant": …, "message": "<line>"}`.
    #[serde(default)]
    pub template: Option<String>,
    /// Extra request headers (not `Content-Type`, `Content-Length`, `Content-Encoding`, `Host`,
    /// the signature header, nor `Authorization` when `auth` is set).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Credentials: `{bearer: {env: NAME}}` or `{basic: {username: U, password: {env: NAME}}}`.
    #[serde(default)]
    pub auth: Option<WebhookAuthConfig>,
    /// HMAC-SHA256 signing secrets, by reference; at most two (the current one first, plus the
    /// previous one during a rotation: both signatures are sent). Empty: requests are not signed.
    #[serde(default)]
    pub signing_secrets: Vec<SecretSource>,
    /// Header carrying `t=<unix seconds>,v1=<hex hmac_sha256(secret, t + "." + body)>[,v1=…]`.
    /// The body signed is the uncompressed one.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// Gzip request bodies (`Content-Encoding: gzip`).
    #[serde(default)]
    pub gzip: bool,
    /// Batch mode: largest body before compression, in bytes (larger batches are split; an
    /// event larger than this alone is dead-lettered as `payload_too_large`). Also the largest
    /// single event in event mode.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Batch mode: most events per request.
    #[serde(default = "default_max_events")]
    pub max_events_per_request: usize,
    /// Read a `409 Conflict` as "already received" (replay protection or an idempotency check
    /// on the receiver: the records count as delivered, duplicates). Turn off for receivers
    /// that use 409 for other errors: then it is permanent, like other 4xx.
    #[serde(default = "default_true")]
    pub conflict_is_duplicate: bool,
}

/// HTTP method of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookMethod {
    /// `POST`.
    #[default]
    Post,
    /// `PUT`.
    Put,
}

/// One request per event or per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookMode {
    /// One request per event; the body is the (templated) event.
    Event,
    /// One request per batch; the body is a JSON array of (templated) events.
    #[default]
    Batch,
}

/// Webhook credentials, by reference: exactly one of `bearer` or `basic`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "WebhookAuthFields")]
pub enum WebhookAuthConfig {
    /// `bearer: {env: NAME}`: `Authorization: Bearer <token>`.
    Bearer(SecretSource),
    /// `basic: {username: U, password: {env: NAME}}`.
    Basic(BasicAuthConfig),
}

/// The YAML shape of [`WebhookAuthConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookAuthFields {
    #[serde(default)]
    bearer: Option<SecretSource>,
    #[serde(default)]
    basic: Option<BasicAuthConfig>,
}

impl TryFrom<WebhookAuthFields> for WebhookAuthConfig {
    type Error = String;

    fn try_from(f: WebhookAuthFields) -> Result<Self, Self::Error> {
        match (f.bearer, f.basic) {
            (Some(t), None) => Ok(WebhookAuthConfig::Bearer(t)),
            (None, Some(b)) => Ok(WebhookAuthConfig::Basic(b)),
            _ => Err(
                "auth is `{bearer: …}` or `{basic: {username, password}}`, exactly one".to_string(),
            ),
        }
    }
}

impl WebhookAuthConfig {
    /// Reads the referenced secret.
    ///
    /// # Errors
    /// [`SecretError`] when it cannot be read.
    pub fn resolve(&self) -> Result<Credentials, SecretError> {
        Ok(match self {
            WebhookAuthConfig::Bearer(t) => Credentials::Bearer(t.resolve()?),
            WebhookAuthConfig::Basic(b) => Credentials::Basic {
                username: b.username.clone(),
                password: b.password.resolve()?,
            },
        })
    }
}

/// The default signature header name.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Secflow-Signature";

fn default_signature_header() -> String {
    DEFAULT_SIGNATURE_HEADER.to_string()
}

fn default_max_request_bytes() -> usize {
    1_000_000
}

fn default_max_events() -> usize {
    500
}

fn default_true() -> bool {
    true
}
