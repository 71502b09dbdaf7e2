//! Topology configuration of a PagerDuty Events API v2 sink.

use serde::Deserialize;

use crate::sink::alerting::{default_resolve_when, ResolveCondition};
use crate::sink::event_fields::Severity;
use crate::sink::SecretSource;

/// PagerDuty Events API v2 (`POST /v2/enqueue`): one `trigger` per incident for alerts at or
/// above `min_severity`, deduplicated by a templated `dedup_key`, and a `resolve` when a
/// resolution event arrives or the incident has been quiet for `auto_resolve_after_secs`.
/// Templates use the syntax in `docs/sinks/pagerduty.md` (`{rule.id}`, `{secflow.host}`,
/// `{a|b|'text'}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// Base URL replacing `https://events.pagerduty.com`, e.g. the simulator or an egress
    /// proxy; `/v2/enqueue` is appended.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The default integration (routing) key, by reference (`{env: NAME}` or `{file: PATH}`):
    /// used when no route matches.
    pub routing_key: SecretSource,
    /// Routes choosing another integration key by rule id or tenant; the first match wins.
    #[serde(default)]
    pub routes: Vec<PagerDutyRoute>,
    /// Lowest severity that triggers (default `high`); lower ones are suppressed
    /// (`below_min_severity`). Resolution events are never held back by it.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Severity assumed for events that state none (default `info`).
    #[serde(default = "default_missing_severity")]
    pub missing_severity: Severity,
    /// Template of the `dedup_key` (stable per incident; at most 255 characters, longer keys
    /// end in a hash). Default `{secflow.tenant}:{secflow.rule_id}:{secflow.host}`; empty →
    /// the event id.
    #[serde(default = "default_dedup_key")]
    pub dedup_key: String,
    /// Template of `payload.summary` (cut at 1024 characters). Default
    /// `{secflow.rule_name|secflow.message|'secflow alert'} on {secflow.host|'unknown host'}`.
    #[serde(default = "default_summary")]
    pub summary: String,
    /// Template of `payload.source`, the affected system (default
    /// `{secflow.host|'unknown'}`).
    #[serde(default = "default_source")]
    pub source: String,
    /// Template of `payload.component`, omitted when it renders empty.
    #[serde(default)]
    pub component: Option<String>,
    /// Template of `payload.group`, omitted when it renders empty (default
    /// `{secflow.tenant}`).
    #[serde(default = "default_group")]
    pub group: Option<String>,
    /// Template of `payload.class`, omitted when it renders empty (default
    /// `{secflow.rule_name}`).
    #[serde(default = "default_class")]
    pub class: Option<String>,
    /// Links attached to the incident, e.g. to the event in the SIEM.
    #[serde(default)]
    pub links: Vec<PagerDutyLink>,
    /// `client` shown in PagerDuty (default `secflow`).
    #[serde(default = "default_client")]
    pub client: String,
    /// `client_url` shown in PagerDuty (a template), omitted when absent.
    #[serde(default)]
    pub client_url: Option<String>,
    /// Conditions making an event a resolution (any matches). Default: the producer's label
    /// `secflow_status` is `resolved` (`field: secflow.status`).
    #[serde(default = "default_resolve_when")]
    pub resolve_when: Vec<ResolveCondition>,
    /// An incident with no event for this many seconds is resolved by secflow (default 3600).
    /// It also bounds how long an incident resolved by a human in PagerDuty keeps suppressing
    /// new triggers.
    #[serde(default = "default_auto_resolve_after_secs")]
    pub auto_resolve_after_secs: u64,
}

/// A route: events matching it go to its integration key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyRoute {
    /// Name of the route (unique; in the state file and messages instead of the key).
    pub name: String,
    /// Rule ids (`secflow.rule_id`) this route takes; empty: any rule.
    #[serde(default)]
    pub rule_ids: Vec<String>,
    /// Tenants this route takes; empty: any tenant. A route needs rule ids or tenants.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// The integration key of this route, by reference.
    pub routing_key: SecretSource,
}

/// A link on the incident.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyLink {
    /// URL template; placeholder values are percent-encoded, e.g.
    /// `https://siem.example.com/app/events/{secflow.event_id}`.
    pub href: String,
    /// Link text template, omitted when absent.
    #[serde(default)]
    pub text: Option<String>,
}

/// Longest `dedup_key` PagerDuty accepts, in characters.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// Longest `payload.summary` PagerDuty accepts, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// Largest event PagerDuty accepts, in bytes.
pub const MAX_EVENT_BYTES: usize = 512 * 1024;

fn default_min_severity() -> Severity {
    Severity::High
}

fn default_missing_severity() -> Severity {
    Severity::Info
}

fn default_dedup_key() -> String {
    "{secflow.tenant}:{secflow.rule_id}:{secflow.host}".to_string()
}

fn default_summary() -> String {
    "{secflow.rule_name|secflow.message|'secflow alert'} on {secflow.host|'unknown host'}"
        .to_string()
}

fn default_source() -> String {
    "{secflow.host|'unknown'}".to_string()
}

fn default_group() -> Option<String> {
    Some("{secflow.tenant}".to_string())
}

fn default_class() -> Option<String> {
    Some("{secflow.rule_name}".to_string())
}

fn default_client() -> String {
    "secflow".to_string()
}

fn default_auto_resolve_after_secs() -> u64 {
    3600
}
