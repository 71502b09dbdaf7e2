//! Topology configuration of an OpsGenie Alerts API sink.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sink::alerting::{default_resolve_when, ResolveCondition};
use crate::sink::event_fields::Severity;
use crate::sink::SecretSource;

/// OpsGenie Alert API (`POST /v2/alerts`, `GenieKey` auth): one alert per incident for events
/// at or above `min_severity`, deduplicated by a templated `alias`, closed by alias on a
/// resolution event or after `auto_close_after_secs` without recurrence; optionally pings a
/// heartbeat while delivery is healthy. Templates use the syntax in `docs/sinks/opsgenie.md`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsGenieConfig {
    /// The OpsGenie instance: `us` (default, `https://api.opsgenie.com`) or `eu`
    /// (`https://api.eu.opsgenie.com`).
    #[serde(default)]
    pub region: OpsGenieRegion,
    /// Base URL replacing the region's API host, e.g. the simulator or an egress proxy;
    /// `/v2/alerts` and `/v2/heartbeats` are appended.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The API key of an API integration, by reference (`{env: NAME}` or `{file: PATH}`);
    /// sent as `Authorization: GenieKey <key>`.
    pub api_key: SecretSource,
    /// Lowest severity that creates an alert (default `high`); lower ones are suppressed
    /// (`below_min_severity`). Resolution events are never held back by it.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Severity assumed for events that state none (default `info`).
    #[serde(default = "default_missing_severity")]
    pub missing_severity: Severity,
    /// Template of the `alias` (OpsGenie's dedup key; at most 512 characters, longer ones end
    /// in a hash). Default `{secflow.tenant}:{secflow.rule_id}:{secflow.host}`; empty → the
    /// event id.
    #[serde(default = "default_alias")]
    pub alias: String,
    /// Template of `message`, the alert title (cut at 130 characters). Default
    /// `{secflow.rule_name|secflow.message|'secflow alert'} on {secflow.host|'unknown host'}`.
    #[serde(default = "default_message")]
    pub message: String,
    /// Template of `description` (cut at 15000 characters), omitted when it renders empty
    /// (default `{secflow.message}`).
    #[serde(default = "default_description")]
    pub description: Option<String>,
    /// Template of `entity`, the domain of the alert (default `{secflow.host}`).
    #[serde(default = "default_entity")]
    pub entity: Option<String>,
    /// Template of `source` (cut at 100 characters; default `secflow`).
    #[serde(default = "default_source")]
    pub source: String,
    /// Tag templates (at most 20 tags of 50 characters; empty ones are dropped). Default
    /// `[secflow, "severity:{secflow.severity}", "tenant:{secflow.tenant}"]`.
    #[serde(default = "default_tags")]
    pub tags: Vec<String>,
    /// Extra `details` (name → template), beside the ones secflow always sets (`event_id`,
    /// `tenant`, `severity`, `rule_id`, `rule_name`, `host`, `format`, `occurrences`, and the
    /// event itself as `event` when the 8000-character limit allows).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    /// Who is notified when no route matches.
    #[serde(default)]
    pub responders: Vec<OpsGenieResponder>,
    /// Routes choosing other responders by tenant or rule id; the first match wins.
    #[serde(default)]
    pub routes: Vec<OpsGenieRoute>,
    /// `user` (display name of the request owner), omitted when absent.
    #[serde(default)]
    pub user: Option<String>,
    /// Conditions making an event a resolution (any matches); its alert is closed by alias.
    /// Default: the producer's label `secflow_status` is `resolved` (`field: secflow.status`).
    #[serde(default = "default_resolve_when")]
    pub resolve_when: Vec<ResolveCondition>,
    /// An alert with no event for this many seconds is closed by secflow (default 3600). It
    /// also bounds how long an alert closed by a human in OpsGenie keeps suppressing new ones.
    #[serde(default = "default_auto_close_after_secs")]
    pub auto_close_after_secs: u64,
    /// A heartbeat to ping while delivery is healthy; OpsGenie alerts when the pings stop.
    #[serde(default)]
    pub heartbeat: Option<OpsGenieHeartbeat>,
}

/// An OpsGenie instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpsGenieRegion {
    /// `https://api.opsgenie.com`.
    #[default]
    Us,
    /// `https://api.eu.opsgenie.com`.
    Eu,
}

impl OpsGenieRegion {
    /// The API base URL of the region.
    pub fn base(self) -> &'static str {
        match self {
            OpsGenieRegion::Us => "https://api.opsgenie.com",
            OpsGenieRegion::Eu => "https://api.eu.opsgenie.com",
        }
    }
}

/// A responder of an alert: exactly one of `team`, `user`, `escalation`, `schedule` (by name;
/// a user by user name, i.e. e-mail address).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsGenieResponder {
    /// A team name.
    #[serde(default)]
    pub team: Option<String>,
    /// A user name (e-mail address).
    #[serde(default)]
    pub user: Option<String>,
    /// An escalation name.
    #[serde(default)]
    pub escalation: Option<String>,
    /// A schedule name.
    #[serde(default)]
    pub schedule: Option<String>,
}

/// A route: events matching it notify its responders instead of the default ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsGenieRoute {
    /// Name of the route (unique; for messages).
    pub name: String,
    /// Tenants this route takes; empty: any tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Rule ids (`secflow.rule_id`) this route takes; empty: any rule. A route needs tenants
    /// or rule ids.
    #[serde(default)]
    pub rule_ids: Vec<String>,
    /// The responders of matching alerts.
    pub responders: Vec<OpsGenieResponder>,
}

/// The heartbeat secflow pings (`POST /v2/heartbeats/<name>/ping`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsGenieHeartbeat {
    /// The heartbeat's name, as created in OpsGenie.
    pub name: String,
    /// Seconds between pings (default 60); keep it below the heartbeat's interval in
    /// OpsGenie.
    #[serde(default = "default_heartbeat_interval_secs")]
    pub interval_secs: u64,
}

/// Longest `message`, in characters.
pub const MAX_MESSAGE_CHARS: usize = 130;
/// Longest `alias`, in characters.
pub const MAX_ALIAS_CHARS: usize = 512;
/// Longest `description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 15_000;
/// Longest `entity`, in characters.
pub const MAX_ENTITY_CHARS: usize = 512;
/// Longest `source` and `user`, in characters.
pub const MAX_SOURCE_CHARS: usize = 100;
/// Most tags per alert.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 50;
/// Most characters in `details` (keys and values together).
pub const MAX_DETAILS_CHARS: usize = 8_000;

fn default_min_severity() -> Severity {
    Severity::High
}

fn default_missing_severity() -> Severity {
    Severity::Info
}

fn default_alias() -> String {
    "{secflow.tenant}:{secflow.rule_id}:{secflow.host}".to_string()
}

fn default_message() -> String {
    "{secflow.rule_name|secflow.message|'secflow alert'} on {secflow.host|'unknown host'}"
        .to_string()
}

fn default_description() -> Option<String> {
    Some("{secflow.message}".to_string())
}

fn default_entity() -> Option<String> {
    Some("{secflow.host}".to_string())
}

fn default_source() -> String {
    "secflow".to_string()
}

fn default_tags() -> Vec<String> {
    vec![
        "secflow".to_string(),
        "severity:{secflow.severity}".to_string(),
        "tenant:{secflow.tenant}".to_string(),
    ]
}

fn default_auto_close_after_secs() -> u64 {
    3600
}

fn default_heartbeat_interval_secs() -> u64 {
    60
}
