//! Configuration shared by the alert sinks (PagerDuty, OpsGenie).

use serde::Deserialize;

/// A condition that makes an event a **resolution**: the incident it belongs to (same dedup
/// key or alias) is resolved instead of triggered. Matches when the value at `field` equals
/// one of `equals` (case-insensitive, trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveCondition {
    /// Where to look, in template placeholder syntax without braces: a payload path
    /// (`event.outcome`, `labels.secflow_status`), a `secflow.` value (`secflow.status` is the
    /// producer's `secflow_status` label in every format), or alternatives (`a|b`).
    pub field: String,
    /// The values that mean "resolved", e.g. `[resolved]`.
    pub equals: Vec<String>,
}

/// The default resolution rule: the producer set the label `secflow_status: resolved`.
pub fn default_resolve_when() -> Vec<ResolveCondition> {
    vec![ResolveCondition {
        field: "secflow.status".to_string(),
        equals: vec!["resolved".to_string()],
    }]
}
