//! Topology configuration of a Microsoft Teams sink.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sink::chat::{ChannelRoute, LinkConfig};
use crate::sink::event_fields::Severity;
use crate::sink::SecretSource;

/// Microsoft Teams: alert cards posted to channel webhooks (a Workflows "when a Teams webhook
/// request is received" flow, or a legacy Office 365 connector), routed by severity and tenant,
/// at most one message per webhook per second (bursts folded into summaries).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// Channel webhooks: a channel name of your choice → the webhook URL, by reference
    /// (`{env: NAME}` or `{file: PATH}`; the URL carries its signature, it is the credential).
    /// Routes and `channel` name these keys.
    pub webhooks: BTreeMap<String, SecretSource>,
    /// The key of `webhooks` events go to when no route matches.
    pub channel: String,
    /// Channel rules, tried in order; the first that matches an event picks its webhook.
    #[serde(default)]
    pub routes: Vec<ChannelRoute>,
    /// Events below this severity are not posted (finished as suppressed, counted in the
    /// stage report); events of unknown severity count as below. Absent: every event.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// The card format: `adaptive_card` (default; Workflows webhooks) or `message_card` (the
    /// legacy Office 365 connector card).
    #[serde(default)]
    pub card: TeamsCard,
    /// Card title template (default `{title}`: the rule name, else the event's message).
    #[serde(default = "default_title")]
    pub title: String,
    /// Buttons under every card (at most 5), URL templates filled from the top event.
    #[serde(default)]
    pub links: Vec<LinkConfig>,
    /// Smallest time between two messages to one webhook, in milliseconds (default 1100, at
    /// least 1000): one message per second per channel, with 100 ms for network jitter.
    #[serde(default = "default_message_interval_ms")]
    pub message_interval_ms: u64,
    /// Most "N more events from host X" lines in a summary card (default 5, at most 20); the
    /// remaining events are counted in one more line.
    #[serde(default = "default_summary_lines")]
    pub summary_lines: usize,
}

/// Which card a Teams message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamsCard {
    /// An Adaptive Card 1.4 in a `message` (Workflows webhooks; connectors take it too).
    #[default]
    AdaptiveCard,
    /// A legacy Office 365 connector `MessageCard` (`themeColor`, sections with facts).
    MessageCard,
}

fn default_title() -> String {
    "{title}".to_string()
}

fn default_message_interval_ms() -> u64 {
    1_100
}

fn default_summary_lines() -> usize {
    5
}
