//! Topology configuration of a Slack sink.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sink::chat::{ChannelRoute, LinkConfig};
use crate::sink::event_fields::Severity;
use crate::sink::SecretSource;

/// Slack: Block Kit messages with a severity colour bar, routed to channels by severity and
/// tenant, at most one message per channel per second (bursts folded into summaries), threads
/// per dedup key. Two ways to post: `chat.postMessage` with a bot token (`token`; any channel
/// the bot is in, threads), or incoming webhooks (`webhooks`; one channel per URL, no threads).
/// Set exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Bot token (`xoxb-…`) for `chat.postMessage`, by reference (`{env: NAME}` or
    /// `{file: PATH}`). The app needs the `chat:write` scope and must be a member of every
    /// channel it posts to.
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// Base URL of Slack's Web API (default `https://slack.com/api`; the simulator's
    /// `<url>/api` in tests). `chat.postMessage` is appended.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Incoming webhooks: a channel name of your choice → the webhook URL, by reference (the
    /// URL is the credential). Routes and `channel` name these keys.
    #[serde(default)]
    pub webhooks: BTreeMap<String, SecretSource>,
    /// Where events go that no route matches: a channel name (`#soc-alerts`) or ID
    /// (`C0123ABCD`) with `token`; a key of `webhooks` with webhooks.
    pub channel: String,
    /// Channel rules, tried in order; the first that matches an event picks its channel.
    #[serde(default)]
    pub routes: Vec<ChannelRoute>,
    /// Events below this severity are not posted (finished as suppressed, counted in the
    /// stage report); events of unknown severity count as below. Absent: every event.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Message title template (default `{title}`: the rule name, else the event's message).
    #[serde(default = "default_title")]
    pub title: String,
    /// Buttons under every message (at most 5), URL templates filled from the top event.
    #[serde(default)]
    pub links: Vec<LinkConfig>,
    /// Thread key template (default `{rule.id}:{host.name}`). With `token`, a message whose
    /// top event has the key of an earlier message in the same channel is posted as a reply
    /// in that message's thread, within `thread_ttl_secs`. Not used with webhooks.
    #[serde(default = "default_dedup_key")]
    pub dedup_key: String,
    /// How long a thread takes replies, in seconds from its first message (default 86400, a
    /// day); after that the key starts a new thread. 0 turns threads off.
    #[serde(default = "default_thread_ttl_secs")]
    pub thread_ttl_secs: u64,
    /// Smallest time between two messages to one channel (or webhook), in milliseconds
    /// (default 1100, at least 1000): Slack takes one message per second per channel; the
    /// extra 100 ms keep network jitter from putting two in one second.
    #[serde(default = "default_message_interval_ms")]
    pub message_interval_ms: u64,
    /// Most "N more events from host X" lines in a summary message (default 5, at most 20);
    /// the remaining events are counted in one more line.
    #[serde(default = "default_summary_lines")]
    pub summary_lines: usize,
}

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}

fn default_title() -> String {
    "{title}".to_string()
}

fn default_dedup_key() -> String {
    "{rule.id}:{host.name}".to_string()
}

fn default_thread_ttl_secs() -> u64 {
    86_400
}

fn default_message_interval_ms() -> u64 {
    1_100
}

fn default_summary_lines() -> usize {
    5
}
