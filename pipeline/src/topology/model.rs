//! The topology model: what a data engineer writes in `topologies/*.yaml`.
//!
//! Every struct rejects unknown keys, so a typo is an error at `secflow validate` time instead of
//! a silently ignored setting. `docs/topology.md` is checked against these types by a test.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use processors::intel::taxii::TaxiiServerConfig;
pub use processors::secret::{SecretError, SecretSource as SecretRef};
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
    /// Traces of the processes that use this file (`secflow run`, `secflow produce`,
    /// `secflow intel poll`). Off unless an OTLP endpoint is given here or in the environment.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// OpenTelemetry traces: one span per record and stage (`secflow.produce`, `secflow.enrich`,
/// `secflow.transform`, `secflow.sink.deliver`), each the child of the span named by the
/// record's W3C `traceparent` header, exported with OTLP over HTTP (protobuf) to a collector.
/// Off unless `otlp_endpoint` or the environment (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
/// `OTEL_EXPORTER_OTLP_ENDPOINT`) names a receiver; `OTEL_SDK_DISABLED=true` or
/// `OTEL_TRACES_EXPORTER=none` turn it off whatever this says. `OTEL_EXPORTER_OTLP_HEADERS` adds
/// request headers (e.g. an API key) and `OTEL_BSP_*` tune the span batches. Logs and metrics
/// are set per process (`SECFLOW_LOG`, `SECFLOW_LOG_FORMAT`, `SECFLOW_METRICS_ADDR`); see
/// `docs/metrics.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver, e.g. `http://otel-collector:4318`; spans are posted to
    /// `<otlp_endpoint>/v1/traces`. Takes precedence over `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the spans (default: `OTEL_SERVICE_NAME`, else `secflow`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// Fraction of new traces kept, 0.0 to 1.0 (a record without a `traceparent` starts one).
    /// A record that carries a `traceparent` follows its sampled flag, so a trace is kept or
    /// dropped as a whole.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: None,
            sample_ratio: default_sample_ratio(),
        }
    }
}

fn default_sample_ratio() -> f64 {
    1.0
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
    Transform(Box<TransformStage>),
    /// Delivers a topic to a SIEM/SOAR sink: batching, in-process retries, a circuit breaker,
    /// retry-topic tiers and a dead-letter topic (consumer group `secflow.sink.<name>`).
    Sink(Box<SinkStage>),
    /// Polls TAXII 2.1 collections on an interval and publishes their STIX indicators: atomic
    /// IOCs to the compacted `indicators` topic (Avro, key = STIX id; tombstones for revoked
    /// and expired ones), the rest to `review` with the reason; then the collection's
    /// checkpoint to `checkpoints`, only after the indicator writes are acknowledged. Also
    /// `secflow intel poll`. Has no dead-letter topic: nothing a feed sends is dropped.
    IntelPoll(Box<IntelPollStage>),
    /// Adds threat-intel matches to events: keeps the whole `indicators` topic in a local
    /// RocksDB table (read from every partition by every instance, no consumer group, offsets
    /// checkpointed in the table), and once it has caught up with the topic reads the input in
    /// consumer group `secflow.stage.<name>`, appends the matches to `enrichments` and writes
    /// to `enriched` (key and headers kept), at least once. Undecodable records go to the DLQ.
    Enrich(Box<EnrichStage>),
}

impl StageConfig {
    /// The stage's unique name (consumer group `secflow.stage.<name>`, DLQ `<name>.dlq`).
    pub fn name(&self) -> &str {
        match self {
            StageConfig::Tap(t) => &t.name,
            StageConfig::Transform(t) => &t.name,
            StageConfig::Sink(t) => &t.name,
            StageConfig::IntelPoll(t) => &t.name,
            StageConfig::Enrich(t) => &t.name,
        }
    }

    /// Whether the stage has a dead-letter topic (`intel_poll` has none).
    pub fn has_dlq(&self) -> bool {
        !matches!(self, StageConfig::IntelPoll(_))
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
    /// Privacy rules applied to every event before it is transformed (drop, mask, keyed hash,
    /// replace; allow-list mode). The `raw` payload is dropped unless `keep_raw` is set.
    #[serde(default)]
    pub privacy: processors::privacy::PrivacyRules,
    /// This instance's part of the transactional id `secflow.<topology>.<stage>.<instance>`.
    /// A restarted instance with the same id fences its predecessor's open transaction. Default:
    /// `$SECFLOW_INSTANCE_ID`, else the host name.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// How the stage writes exactly once: `transactions` (default; read-process-write Kafka
    /// transactions, readers use `read_committed`) or `output_log` (for brokers without
    /// transactions: outputs carry their input position in `secflow.origin`, go to the input's
    /// partition number, and a restarted stage resumes after the last position found in each
    /// output partition; needs output topics with at least the input's partition count).
    #[serde(default)]
    pub exactly_once: ExactlyOnceMode,
}

/// How a transform stage makes its writes exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExactlyOnceMode {
    /// Kafka transactions with `send_offsets_to_transaction`; fences zombies.
    #[default]
    Transactions,
    /// Idempotent producer + input position headers + tail scan on partition assignment; for
    /// brokers without transactions (no `EndTxn`). Does not fence a live zombie.
    OutputLog,
}

/// Settings of an `intel_poll` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelPollStage {
    /// Unique stage name.
    pub name: String,
    /// Seconds from the start of one poll of every collection to the start of the next
    /// (default 300). `secflow intel poll --once` polls once and stops.
    #[serde(default = "default_poll_interval_secs")]
    pub interval_secs: u64,
    /// Attempts per TAXII request when the server fails transiently (connection error,
    /// timeout, 429, 5xx), waiting the server's `Retry-After` or an exponential backoff in
    /// between (default 5). A collection that still fails is skipped until the next poll; its
    /// checkpoint stays where it was.
    #[serde(default = "default_taxii_attempts")]
    pub max_attempts: u32,
    /// The TAXII 2.1 servers and the collections to poll on each.
    pub servers: Vec<TaxiiServerConfig>,
}

/// Settings of an `enrich` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichStage {
    /// Unique stage name.
    pub name: String,
    /// Which topic to read, by role: `canonical` (default). The output is always `enriched`.
    #[serde(default = "default_tap_input")]
    pub input: TopicRole,
    /// Dead-letter topic; default `<name>.dlq`.
    #[serde(default)]
    pub dlq_topic: Option<String>,
    /// The local RocksDB indicator table.
    pub store: IndicatorStoreConfig,
    /// Events per batch at most (default 500): a batch is written, acknowledged, then its
    /// input offsets are committed.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Longest wait to fill a batch, in milliseconds (default 100).
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

/// The enrich stage's RocksDB indicator table: a local cache of the `indicators` topic,
/// rebuilt from the topic when deleted. Memory is bounded by these settings plus the table's
/// index and filter blocks (about 6 MiB per million indicators).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorStoreConfig {
    /// Directory of the table (created when missing). One per running instance: RocksDB locks
    /// it. On start only the records after its checkpointed offsets are read.
    pub path: PathBuf,
    /// RocksDB block cache (data blocks of every column family), in MiB (default 64).
    #[serde(default = "default_block_cache_mb")]
    pub block_cache_mb: usize,
    /// Memtables of all column families together, in MiB (default 32).
    #[serde(default = "default_write_buffer_mb")]
    pub write_buffer_mb: usize,
    /// Entries of the in-process cache of lookup results (default 262144; 0 turns it off).
    #[serde(default = "default_front_cache_entries")]
    pub front_cache_entries: usize,
    /// IPv4 networks shorter than this prefix are not indexed (default 8): a `0.0.0.0/0`
    /// indicator is a feed error that would flag every event.
    #[serde(default = "default_min_prefix_v4")]
    pub min_prefix_v4: u8,
    /// IPv6 networks shorter than this prefix are not indexed (default 16).
    #[serde(default = "default_min_prefix_v6")]
    pub min_prefix_v6: u8,
}

fn default_poll_interval_secs() -> u64 {
    300
}

fn default_taxii_attempts() -> u32 {
    5
}

fn default_block_cache_mb() -> usize {
    64
}

fn default_write_buffer_mb() -> usize {
    32
}

fn default_front_cache_entries() -> usize {
    1 << 18
}

fn default_min_prefix_v4() -> u8 {
    8
}

fn default_min_prefix_v6() -> u8 {
    16
}

/// Settings of a `sink` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkStage {
    /// Unique stage name; also names the sink's topics (`<name>.retry.<delay>`, `<name>.dlq`).
    pub name: String,
    /// Which topic to deliver, by role: `ecs`, `cef`, `ocsf`, or `canonical`/`enriched` (Avro,
    /// delivered as canonical JSON).
    pub input: TopicRole,
    /// The target and its settings; `kind` selects it.
    pub sink: SinkTarget,
    /// How records are grouped into requests.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Batches being delivered at once at most (default 4).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// In-process retries of transient failures.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Retry-topic tiers a record moves through when it keeps failing on its own (default
    /// `[30s, 5m, 30m]`); after the last one it goes to the DLQ.
    #[serde(default = "default_tiers")]
    pub tiers: Vec<String>,
    /// When the sink counts as down as a whole.
    #[serde(default)]
    pub circuit: CircuitSettings,
    /// Upper bounds on what is sent.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// HTTP timeout per request in milliseconds (default 10000).
    #[serde(default = "default_http_timeout_ms")]
    pub timeout_ms: u64,
    /// On shutdown or partition revocation, how long in-flight batches may take to finish
    /// before the stage commits what is done and lets go (default 10000).
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Directory for the sink's durable state, for sinks that keep some (PagerDuty and
    /// OpsGenie open incidents for dedup and auto-resolve, Slack threads): saved as
    /// `<state_dir>/<name>.state.json` after every change, loaded at start. Without it the state
    /// lives in memory only and a restart forgets it.
    #[serde(default)]
    pub state_dir: Option<std::path::PathBuf>,
}

/// The target of a sink stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkTarget {
    /// Splunk HTTP Event Collector, with indexer acknowledgements.
    SplunkHec(processors::sink::splunk_hec::HecConfig),
    /// Elasticsearch `_bulk` API.
    Elasticsearch(processors::sink::elasticsearch::ElasticsearchConfig),
    /// Any HTTP endpoint, HMAC-signed.
    Webhook(processors::sink::webhook::WebhookConfig),
    /// Datadog Logs intake (`/api/v2/logs`) on the organisation's site.
    Datadog(processors::sink::datadog::DatadogConfig),
    /// Sumo Logic HTTP Logs and Metrics Source (the upload URL is the secret).
    SumoLogic(processors::sink::sumo_logic::SumoLogicConfig),
    /// Syslog over TCP, TLS or UDP with CEF messages (ArcSight, QRadar, Sentinel AMA); reads
    /// the `cef` topic.
    SyslogCef(processors::sink::syslog::SyslogConfig),
    /// PagerDuty Events API v2: deduplicated triggers, resolves by event and after a quiet
    /// window.
    #[serde(rename = "pagerduty")]
    PagerDuty(processors::sink::pagerduty::PagerDutyConfig),
    /// OpsGenie Alert API: alerts deduplicated by alias, closes, heartbeat pings.
    #[serde(rename = "opsgenie")]
    OpsGenie(processors::sink::opsgenie::OpsGenieConfig),
    /// Slack: Block Kit messages through `chat.postMessage` or incoming webhooks, routed by
    /// severity and tenant, one message per channel per second (bursts summarised), threads.
    Slack(processors::sink::slack::SlackConfig),
    /// Microsoft Teams: Adaptive Cards (or legacy MessageCards) to Workflows or connector
    /// webhooks, routed by severity and tenant, one message per webhook per second.
    Teams(processors::sink::teams::TeamsConfig),
}

/// Batching.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Records per batch at most (default 500).
    #[serde(default = "default_batch_events")]
    pub max_events: usize,
    /// Payload bytes per batch at most (default 1 MiB).
    #[serde(default = "default_batch_bytes")]
    pub max_bytes: usize,
    /// Longest time a record waits for its batch to fill, in milliseconds (default 200).
    #[serde(default = "default_batch_wait_ms")]
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_events: default_batch_events(),
            max_bytes: default_batch_bytes(),
            max_wait_ms: default_batch_wait_ms(),
        }
    }
}

/// In-process retries (exponential backoff with full jitter, honouring `Retry-After`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per record before it moves to the first retry tier (default 4).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First backoff in milliseconds (default 200).
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Largest backoff in milliseconds (default 10000).
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        }
    }
}

/// Circuit breaker settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitSettings {
    /// Consecutive whole-sink failures that open the circuit (default 5).
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// How long the circuit stays open before a probe, in milliseconds (default 5000).
    #[serde(default = "default_open_ms")]
    pub open_ms: u64,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        Self {
            failure_threshold: default_failure_threshold(),
            open_ms: default_open_ms(),
        }
    }
}

/// Token-bucket limits; absent means unlimited.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Events per second at most.
    #[serde(default)]
    pub events_per_sec: Option<f64>,
    /// Requests per second at most.
    #[serde(default)]
    pub requests_per_sec: Option<f64>,
}

fn default_max_in_flight() -> usize {
    4
}

fn default_tiers() -> Vec<String> {
    vec!["30s".to_string(), "5m".to_string(), "30m".to_string()]
}

fn default_http_timeout_ms() -> u64 {
    10_000
}

fn default_drain_timeout_ms() -> u64 {
    10_000
}

fn default_batch_events() -> usize {
    500
}

fn default_batch_bytes() -> usize {
    1024 * 1024
}

fn default_batch_wait_ms() -> u64 {
    200
}

fn default_attempts() -> u32 {
    4
}

fn default_initial_backoff_ms() -> u64 {
    200
}

fn default_max_backoff_ms() -> u64 {
    10_000
}

fn default_failure_threshold() -> u32 {
    5
}

fn default_open_ms() -> u64 {
    5000
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
