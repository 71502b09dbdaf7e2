//! Topology configuration of a Splunk HEC sink.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::sink::{AckPolicy, SecretSource};

/// A Splunk HTTP Event Collector sink (`/services/collector/event`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecConfig {
    /// Base URL of the collector, without a path, e.g. `https://splunk.example.com:8088`.
    pub endpoint: String,
    /// The HEC token, by reference (`{env: NAME}` or `{file: PATH}`); sent as
    /// `Authorization: Splunk <token>`.
    pub token: SecretSource,
    /// `index` of every event; absent: the token's default index.
    #[serde(default)]
    pub index: Option<String>,
    /// `source` of every event; absent: Splunk's default (`http:<token name>`).
    #[serde(default)]
    pub source: Option<String>,
    /// `sourcetype` of every event; absent: the token's default.
    #[serde(default)]
    pub sourcetype: Option<String>,
    /// `host` of every event; absent: the sending host as Splunk sees it.
    #[serde(default)]
    pub host: Option<String>,
    /// Extra indexed fields (`fields`) on every event. `tenant` and `event_id` are always added
    /// from the record when it has them (and win over entries here).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Gzip request bodies (`Content-Encoding: gzip`).
    #[serde(default)]
    pub gzip: bool,
    /// Largest request body before compression, in bytes; larger batches are split, and an
    /// event larger than this alone is dead-lettered (`payload_too_large`). Keep it below the
    /// server's `max_content_length`.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Indexer acknowledgements (`useACK` on the token). Present (even empty, `{}`): a request
    /// is delivered only once its `ackId` is acknowledged; absent: a 200 is delivered.
    #[serde(default)]
    pub indexer_acks: Option<HecAckConfig>,
}

/// Indexer acknowledgement polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecAckConfig {
    /// Milliseconds between two polls of `/services/collector/ack` (Splunk recommends 10 s).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Milliseconds after which an unacknowledged request is sent again (never dropped).
    #[serde(default = "default_ack_timeout_ms")]
    pub timeout_ms: u64,
    /// Most requests awaiting acknowledgement at once; more, and sending waits (backpressure).
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
}

impl Default for HecAckConfig {
    fn default() -> Self {
        HecAckConfig {
            poll_interval_ms: default_poll_interval_ms(),
            timeout_ms: default_ack_timeout_ms(),
            max_pending: default_max_pending(),
        }
    }
}

impl HecAckConfig {
    /// The engine's view of these settings.
    pub fn policy(&self) -> AckPolicy {
        AckPolicy {
            poll_interval: Duration::from_millis(self.poll_interval_ms.max(1)),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            max_pending: self.max_pending.max(1),
        }
    }
}

fn default_max_request_bytes() -> usize {
    1_000_000
}

fn default_poll_interval_ms() -> u64 {
    10_000
}

fn default_ack_timeout_ms() -> u64 {
    300_000
}

fn default_max_pending() -> usize {
    1_000
}
