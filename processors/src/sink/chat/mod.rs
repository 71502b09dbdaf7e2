//! What the chat sinks (Slack, Microsoft Teams) share: reading an event's headline fields from
//! any payload format ([`Alert`]), text and URL templates, routing events to channels by
//! severity and tenant, and folding a batch into **one message per channel** ([`Digest`]).
//!
//! Chat channels take about one message per second, so a burst must not become a thousand
//! messages: each batch gives at most one message per channel. A single event is shown in
//! full; several become a summary: the most severe event in detail and the others counted by
//! severity and host ("37 more high-severity events from host X"). The message's request
//! carries every one of those records, so they finish (delivered, retried, dead-lettered)
//! together. The sinks pace messages per channel with [`crate::sink::Sink::pacing_key`], and
//! deliver one batch at a time ([`crate::sink::Sink::max_concurrency`]), so the next batch's
//! message per channel waits its turn instead of racing.

mod alert;
mod config;
mod digest;
mod template;
#[cfg(test)]
mod tests;

pub use alert::{endpoint, Alert, UNTITLED};
pub use config::{ChannelRoute, LinkConfig};
pub use digest::{prepare, Digest, Prepared, Router, SummaryLine, BELOW_MIN_SEVERITY};
pub use template::{percent_encode, Template, UNKNOWN};

use sha2::{Digest as _, Sha256};

use crate::event::format_rfc3339;
use crate::sink::event_fields::Severity;

/// Longest button text (Slack's limit).
pub const MAX_LINK_TEXT_CHARS: usize = 75;
/// Most buttons per message.
pub const MAX_LINKS: usize = 5;
/// Most summary lines per message.
pub const MAX_SUMMARY_LINES: usize = 20;
/// The shortest allowed time between two messages to one channel: both services take about
/// one message per second per channel.
pub const MIN_MESSAGE_INTERVAL_MS: u64 = 1_000;

/// `High`, `Critical`, … (`Unknown` for none).
pub fn severity_label(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Info) => "Info",
        Some(Severity::Low) => "Low",
        Some(Severity::Medium) => "Medium",
        Some(Severity::High) => "High",
        Some(Severity::Critical) => "Critical",
        None => "Unknown",
    }
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Event time as `2025-03-14T11:15:43.000Z`.
pub fn time_text(ms: i64) -> String {
    format_rfc3339(ms).unwrap_or_else(|| ms.to_string())
}

/// The facts of a message about `alert`, label and value, in display order; absent values are
/// left out. `time` renders the event time.
pub fn facts(alert: &Alert, time: impl Fn(i64) -> String) -> Vec<(&'static str, String)> {
    let mut out = vec![("Severity", severity_label(alert.severity).to_string())];
    let mut push = |label: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            out.push((label, v.clone()));
        }
    };
    push("Host", &alert.host);
    push("User", &alert.user);
    push("Source", &alert.source);
    push("Destination", &alert.destination);
    push(
        "Rule",
        &alert.rule_name.clone().or_else(|| alert.rule_id.clone()),
    );
    push("Tenant", &alert.tenant);
    if let Some(ms) = alert.time_ms {
        out.push(("Time", time(ms)));
    }
    out
}

/// A pacing key for a webhook URL that does not reveal it: `webhook:` and the first 16 hex
/// digits of its SHA-256 (two names for one URL share the key, so they share the channel's
/// rate limit).
pub fn url_key(url: &str) -> String {
    let hash = Sha256::digest(url.as_bytes());
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("webhook:{hex}")
}

/// Checks the settings both chat sinks share.
///
/// # Errors
/// A message naming the bad setting.
pub fn check_common(
    links: &[LinkConfig],
    summary_lines: usize,
    message_interval_ms: u64,
) -> Result<Vec<(String, Template)>, String> {
    if links.len() > MAX_LINKS {
        return Err(format!("at most {MAX_LINKS} links, got {}", links.len()));
    }
    if summary_lines > MAX_SUMMARY_LINES {
        return Err(format!(
            "summary_lines must be at most {MAX_SUMMARY_LINES}, got {summary_lines}"
        ));
    }
    if message_interval_ms < MIN_MESSAGE_INTERVAL_MS {
        return Err(format!(
            "message_interval_ms must be at least {MIN_MESSAGE_INTERVAL_MS} (one message per \
             second per channel), got {message_interval_ms}"
        ));
    }
    links
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let text = l.text.trim();
            if text.is_empty() || text.chars().count() > MAX_LINK_TEXT_CHARS {
                return Err(format!(
                    "links[{i}].text must be 1 to {MAX_LINK_TEXT_CHARS} characters"
                ));
            }
            let url = Template::parse_url(&l.url).map_err(|e| format!("links[{i}].url: {e}"))?;
            Ok((text.to_string(), url))
        })
        .collect()
}
