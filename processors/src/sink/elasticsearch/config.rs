//! Topology configuration of an Elasticsearch sink.

use serde::Deserialize;

use crate::sink::{BasicAuthConfig, Credentials, SecretError, SecretSource};

/// An Elasticsearch (or OpenSearch) sink using the `_bulk` API with `create` actions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URL of the cluster, e.g. `https://es.example.com:9200`.
    pub endpoint: String,
    /// Index or data stream name, templated per event: `{tenant}` (lower-cased, characters
    /// other than `a-z 0-9 _` become `_`), `{format}` (`ecs`, `ocsf`, `cef`, `canonical`) and
    /// dates from the event time in UTC (the time of sending when the event has none):
    /// `{yyyy}`, `{MM}`, `{dd}`, `{HH}`, or a pattern such as `{yyyy.MM.dd}`.
    /// Default: the data stream `logs-secflow.{format}-{tenant}`.
    #[serde(default = "default_index")]
    pub index: String,
    /// `{tenant}` for events without a tenant.
    #[serde(default = "default_tenant")]
    pub default_tenant: String,
    /// Credentials: `{api_key: {env: NAME}}` (the API key's `encoded` value, sent as
    /// `Authorization: ApiKey …`) or `{basic: {username: U, password: {env: NAME}}}`.
    #[serde(default)]
    pub auth: Option<EsAuthConfig>,
    /// Gzip request bodies (`Content-Encoding: gzip`).
    #[serde(default)]
    pub gzip: bool,
    /// Largest bulk body before compression, in bytes; larger batches are split, and a document
    /// larger than this alone is dead-lettered (`payload_too_large`). A 413 from the server
    /// splits the request further.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Ingest pipeline to run (`?pipeline=`); absent: the index's default pipeline.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Add `@timestamp` (from the event time) to JSON documents that lack one; data streams
    /// reject documents without it.
    #[serde(default = "default_true")]
    pub add_timestamp: bool,
}

/// Elasticsearch credentials, by reference: exactly one of `api_key` or `basic`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "EsAuthFields")]
pub enum EsAuthConfig {
    /// `api_key: {env: NAME}`: the API key's `encoded` value (base64 of `id:api_key`).
    ApiKey(SecretSource),
    /// `basic: {username: U, password: {env: NAME}}`.
    Basic(BasicAuthConfig),
}

/// The YAML shape of [`EsAuthConfig`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EsAuthFields {
    #[serde(default)]
    api_key: Option<SecretSource>,
    #[serde(default)]
    basic: Option<BasicAuthConfig>,
}

impl TryFrom<EsAuthFields> for EsAuthConfig {
    type Error = String;

    fn try_from(f: EsAuthFields) -> Result<Self, Self::Error> {
        match (f.api_key, f.basic) {
            (Some(k), None) => Ok(EsAuthConfig::ApiKey(k)),
            (None, Some(b)) => Ok(EsAuthConfig::Basic(b)),
            _ => Err(
                "auth is `{api_key: …}` or `{basic: {username, password}}`, exactly one"
                    .to_string(),
            ),
        }
    }
}

impl EsAuthConfig {
    /// Reads the referenced secret.
    ///
    /// # Errors
    /// [`SecretError`] when it cannot be read.
    pub fn resolve(&self) -> Result<Credentials, SecretError> {
        Ok(match self {
            EsAuthConfig::ApiKey(k) => Credentials::ApiKey(k.resolve()?),
            EsAuthConfig::Basic(b) => Credentials::Basic {
                username: b.username.clone(),
                password: b.password.resolve()?,
            },
        })
    }
}

fn default_index() -> String {
    "logs-secflow.{format}-{tenant}".to_string()
}

fn default_tenant() -> String {
    "default".to_string()
}

fn default_max_request_bytes() -> usize {
    5_000_000
}

fn default_true() -> bool {
    true
}
