//! Configuration pieces shared by the chat sinks (Slack, Microsoft Teams).

use serde::Deserialize;

use crate::sink::event_fields::Severity;

/// A channel routing rule of a chat sink (Slack, Teams): every condition given must hold; the
/// first rule that matches an event picks its channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRoute {
    /// Tenants this rule applies to (exact match); empty: any tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Lowest severity this rule applies to (`info`, `low`, `medium`, `high`, `critical`);
    /// events of unknown severity never match a rule that sets it. Absent: any severity.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Where the matching events go: for Slack `chat.postMessage` a channel name (`#soc-alerts`)
    /// or ID (`C0123ABCD`); for Slack incoming webhooks and Teams a key of `webhooks`.
    pub channel: String,
}

/// A button under every message of a chat sink (Slack, Teams).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Button text, e.g. `Open in Kibana` (at most 75 characters, Slack's limit for a button).
    pub text: String,
    /// URL template, e.g. `https://kibana.example/app/security/alerts?query={event.id}`:
    /// placeholders are replaced by the top event's values, percent-encoded. A link whose
    /// template names a value the event does not have is left out of that message.
    pub url: String,
}
