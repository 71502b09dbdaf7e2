//! The topology model: what a data engineer writes in `topologies/*.yaml`.
//!
//! Every struct rejects unknown keys, so a typo is an error at `secflow validate` time instead of
//! a silently ignored setting. `docs/topology.md` is checked against these types by a test.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use processors::transform::Format;
use serde::Deserialize;

/// A whole topology: where Kafka and the schema registry are, the topics, and the stages to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Name of this deployment, used in client ids, logs and metrics.
    pub name: String,
    /// How to reach the Kafka cluster.
    pub kafka: KafkaConfig,
    /// How to reach the Confluent-compatible schema registry.
    pub schema_registry: SchemaRegistryConfig,
    /// Topic names, partition counts and configs. Every key has a default from the design.
    #[serde(default)]
    pub topics: Topics,
    /// The stages this topology runs (`secflow run`). Each has a unique `name`.
    #[serde(default)]
    pub stages: Vec<StageConfig>,
}

/// Kafka connection settings shared by every client a stage creates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list (librdkafka `bootstrap.servers`).
    pub bootstrap_servers: String,
    /// Prefix of every client id; the stage name is appended.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Consumer group session timeout. Around 6000 ms keeps group joins fast on small brokers.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u32,
    /// TLS / SASL settings; plaintext when absent.
    #[serde(default)]
    pub security: KafkaSecurity,
    /// Extra librdkafka properties passed through unchanged (e.g. `linger.ms: "5"`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_client_id() -> String {
    "secflow".to_string()
}

fn default_session_timeout_ms() -> u32 {
    6000
}

/// Transport security towards the brokers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSecurity {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default)]
    pub protocol: SecurityProtocol,
    /// SASL mechanism when the protocol uses SASL.
    #[serde(default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name.
    #[serde(default)]
    pub username: Option<String>,
    /// SASL password, by reference only (`{env: NAME}` or `{file: PATH}`).
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// PEM file of the CA that signed the brokers' certificates (system store when absent).
    #[serde(default)]
    pub ca_location: Option<PathBuf>,
}

/// librdkafka `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL (local development only).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

/// librdkafka `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// `PLAIN`.
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

/// A secret given by reference, never inline: `{env: NAME}` or `{file: PATH}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SecretRefFields")]
pub enum SecretRef {
    /// Read from this environment variable when the stage starts.
    Env(String),
    /// Read from this file (trailing newline trimmed), e.g. a mounted Kubernetes secret.
    File(PathBuf),
}

/// The YAML shape of a [`SecretRef`]: a mapping with exactly one of `env` or `file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRefFields {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<PathBuf>,
}

impl TryFrom<SecretRefFields> for SecretRef {
    type Error = String;

    fn try_from(f: SecretRefFields) -> Result<Self, Self::Error> {
        match (f.env, f.file) {
            (Some(e), None) if !e.is_empty() => Ok(SecretRef::Env(e)),
            (None, Some(p)) if !p.as_os_str().is_empty() => Ok(SecretRef::File(p)),
            _ => Err(
                "a secret is given by reference: `{env: NAME}` or `{file: PATH}`, exactly one"
                    .to_string(),
            ),
        }
    }
}

/// Where the schema registry is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// Basic-auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password, by reference.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Register the canonical schema under `<topic>-value` when producing (TopicNameStrategy).
    /// Turn off where the registry is managed by a schema pipeline of its own.
    #[serde(default = "default_true")]
    pub auto_register: bool,
}

fn default_true() -> bool {
    true
}

/// Per-topic overrides. Every field is optional; [`Topics::resolved`] fills in the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    /// Canonical Avro events written by producers (`security-events.canonical.v1`).
    #[serde(default)]
    pub canonical: TopicSpec,
    /// Canonical events with threat-intel enrichments (`security-events.enriched.v1`).
    #[serde(default)]
    pub enriched: TopicSpec,
    /// ECS JSON documents (`security-events.ecs.v1`).
    #[serde(default)]
    pub ecs: TopicSpec,
    /// CEF lines (`security-events.cef.v1`).
    #[serde(default)]
    pub cef: TopicSpec,
    /// OCSF JSON documents (`security-events.ocsf.v1`).
    #[serde(default)]
    pub ocsf: TopicSpec,
    /// STIX indicators reduced to atomic IOCs, compacted (`intel.indicators.v1`).
    #[serde(default)]
    pub indicators: TopicSpec,
    /// Indicators that cannot be joined, with the reason (`intel.review.v1`).
    #[serde(default)]
    pub review: TopicSpec,
    /// TAXII poll checkpoints per collection, compacted (`secflow.intel.checkpoints`).
    #[serde(default)]
    pub checkpoints: TopicSpec,
    /// Audit records of DLQ replays (`secflow.audit`).
    #[serde(default)]
    pub audit: TopicSpec,
}

/// One topic's settings; absent fields take the defaults of its role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Topic name.
    #[serde(default)]
    pub name: Option<String>,
    /// Partition count (default 3).
    #[serde(default)]
    pub partitions: Option<i32>,
    /// Replication factor (default 1; use 3 in production).
    #[serde(default)]
    pub replication_factor: Option<i32>,
    /// Topic configs passed to the broker at creation (e.g. `retention.ms`).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// A stage of the topology. The `type` key selects the kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StageConfig {
    /// Reads canonical Avro events, decodes and counts them. Undecodable records go to the
    /// stage's dead-letter topic. Used by the demo to read events back, and as a health probe.
    Tap(TapStage),
    /// Transforms canonical (or enriched) events into ECS, CEF and OCSF topics, exactly once:
    /// each batch is read, transformed and written in one Kafka transaction with its offsets.
    Transform(TransformStage),
}

impl StageConfig {
    /// The stage's unique name (consumer group `secflow.stage.<name>`, DLQ `<name>.dlq`).
    pub fn name(&self) -> &str {
        match self {
            StageConfig::Tap(t) => &t.name,
            StageConfig::Transform(t) => &t.name,
        }
    }
}

/// Settings of a `tap` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapStage {
    /// Unique stage name.
    pub name: String,
    /// Which topic to read, by role (`canonical` or `enriched`). Default `canonical`.
    #[serde(default = "default_tap_input")]
    pub input: TopicRole,
    /// Dead-letter topic; default `<name>.dlq`.
    #[serde(default)]
    pub dlq_topic: Option<String>,
}

/// Settings of a `transform` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformStage {
    /// Unique stage name.
    pub name: String,
    /// Which topic to read, by role: `enriched` (default) or `canonical`.
    #[serde(default = "default_transform_input")]
    pub input: TopicRole,
    /// Formats to write (`ecs`, `cef`, `ocsf`; default all three); each goes to the topic of the
    /// same role under `topics:`.
    #[serde(default = "default_formats")]
    pub outputs: Vec<Format>,
    /// Dead-letter topic; default `<name>.dlq`.
    #[serde(default)]
    pub dlq_topic: Option<String>,
    /// Records per transaction at most (default 500).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Longest wait to fill a batch, in milliseconds (default 100).
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// This instance's part of the transactional id `secflow.<topology>.<stage>.<instance>`.
    /// A restarted instance with the same id fences its predecessor's open transaction. Default:
    /// `$SECFLOW_INSTANCE_ID`, else the host name.
    #[serde(default)]
    pub instance_id: Option<String>,
}

fn default_transform_input() -> TopicRole {
    TopicRole::Enriched
}

fn default_formats() -> Vec<Format> {
    Format::ALL.to_vec()
}

fn default_max_batch() -> usize {
    500
}

fn default_max_wait_ms() -> u64 {
    100
}

fn default_tap_input() -> TopicRole {
    TopicRole::Canonical
}

/// A topic named by its role in the topology (resolved through `topics:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicRole {
    /// `topics.canonical`.
    Canonical,
    /// `topics.enriched`.
    Enriched,
    /// `topics.ecs`.
    Ecs,
    /// `topics.cef`.
    Cef,
    /// `topics.ocsf`.
    Ocsf,
    /// `topics.indicators`.
    Indicators,
    /// `topics.review`.
    Review,
    /// `topics.checkpoints`.
    Checkpoints,
    /// `topics.audit`.
    Audit,
}
