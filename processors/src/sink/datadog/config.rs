//! Topology configuration of a Datadog Logs sink.

use serde::Deserialize;

use crate::sink::SecretSource;

/// Datadog Logs intake (`POST /api/v2/logs`): JSON arrays of log entries, gzip-compressed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatadogConfig {
    /// The Datadog site of the organisation (default `datadoghq.com`); logs go to
    /// `https://http-intake.logs.<site>/api/v2/logs`.
    #[serde(default)]
    pub site: DatadogSite,
    /// Base URL replacing the site's intake host, e.g. `http://127.0.0.1:8126` for the
    /// simulator or an egress proxy; `/api/v2/logs` is appended. Absent: the site's intake.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The API key, by reference (`{env: NAME}` or `{file: PATH}`); sent as `DD-API-KEY`.
    pub api_key: SecretSource,
    /// `ddsource` of every entry: selects the Datadog integration pipeline that parses the logs.
    #[serde(default = "default_ddsource")]
    pub ddsource: String,
    /// `service` of every entry; absent: not set.
    #[serde(default)]
    pub service: Option<String>,
    /// `hostname` of entries whose event names no host (ECS `host.name`, OCSF
    /// `device.hostname`, canonical `host.hostname`, CEF `dvchost`); absent: not set.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Tags added to every entry's `ddtags`, e.g. `env:prod` (no commas). `tenant:<tenant>` is
    /// always added for records that have a tenant.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Gzip request bodies (`Content-Encoding: gzip`), as Datadog recommends (default on).
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// Most entries per request (Datadog's limit, 1000, is also the default and the maximum).
    #[serde(default = "default_max_entries")]
    pub max_entries_per_request: usize,
    /// Largest request body before compression, in bytes (Datadog's limit, 5000000, is also the
    /// default and the maximum); larger batches are split.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Largest single entry, in bytes (Datadog's limit, 1000000, is also the default and the
    /// maximum). Datadog would silently truncate a larger log; secflow dead-letters it instead
    /// (`payload_too_large`), so nothing is cut without a trace.
    #[serde(default = "default_max_entry_bytes")]
    pub max_entry_bytes: usize,
}

/// A Datadog site, as written in the Datadog UI's URL (`app.<site>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum DatadogSite {
    /// US1 (`https://http-intake.logs.datadoghq.com`).
    #[default]
    #[serde(rename = "datadoghq.com")]
    Us1,
    /// US3 (`https://http-intake.logs.us3.datadoghq.com`).
    #[serde(rename = "us3.datadoghq.com")]
    Us3,
    /// US5 (`https://http-intake.logs.us5.datadoghq.com`).
    #[serde(rename = "us5.datadoghq.com")]
    Us5,
    /// EU1 (`https://http-intake.logs.datadoghq.eu`).
    #[serde(rename = "datadoghq.eu")]
    Eu1,
    /// AP1 (`https://http-intake.logs.ap1.datadoghq.com`).
    #[serde(rename = "ap1.datadoghq.com")]
    Ap1,
    /// AP2 (`https://http-intake.logs.ap2.datadoghq.com`).
    #[serde(rename = "ap2.datadoghq.com")]
    Ap2,
    /// US1-FED, the US government site (`https://http-intake.logs.ddog-gov.com`).
    #[serde(rename = "ddog-gov.com")]
    Gov,
}

impl DatadogSite {
    /// The site's domain, e.g. `us3.datadoghq.com`.
    pub fn domain(self) -> &'static str {
        match self {
            DatadogSite::Us1 => "datadoghq.com",
            DatadogSite::Us3 => "us3.datadoghq.com",
            DatadogSite::Us5 => "us5.datadoghq.com",
            DatadogSite::Eu1 => "datadoghq.eu",
            DatadogSite::Ap1 => "ap1.datadoghq.com",
            DatadogSite::Ap2 => "ap2.datadoghq.com",
            DatadogSite::Gov => "ddog-gov.com",
        }
    }

    /// Base URL of the site's log intake, e.g. `https://http-intake.logs.datadoghq.eu`.
    pub fn intake_base(self) -> String {
        format!("https://http-intake.logs.{}", self.domain())
    }
}

/// Datadog's limit on entries per request.
pub const MAX_ENTRIES: usize = 1_000;
/// Datadog's limit on the uncompressed request body, in bytes.
pub const MAX_REQUEST_BYTES: usize = 5_000_000;
/// Datadog's limit on one log entry, in bytes.
pub const MAX_ENTRY_BYTES: usize = 1_000_000;

fn default_ddsource() -> String {
    "secflow".to_string()
}

fn default_true() -> bool {
    true
}

fn default_max_entries() -> usize {
    MAX_ENTRIES
}

fn default_max_request_bytes() -> usize {
    MAX_REQUEST_BYTES
}

fn default_max_entry_bytes() -> usize {
    MAX_ENTRY_BYTES
}
