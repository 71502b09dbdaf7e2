//! Building Slack messages: one Block Kit message per channel per batch.
//!
//! Shape: a `header` block with the severity emoji and the title; an attachment whose `color`
//! is the severity's colour bar, holding the key fields (`section` with up to 8 fields), the
//! event's message, the summary of the other events when there are several, the link buttons
//! (`actions`) and a `context` line (`secflow · N events · <event id>`); `text` is the plain
//! fallback shown in notifications. Every value is clipped to Block Kit's limits, so a message
//! is always valid whatever the event holds.

use serde_json::{json, Value};

use super::{Mode, SlackSink};
use crate::sink::chat::{clip, facts, severity_label, time_text, Digest};
use crate::sink::event_fields::Severity;

/// Longest `header` text (Block Kit).
pub const MAX_HEADER_CHARS: usize = 150;
/// Longest `section` text (Block Kit: 3000).
pub const MAX_SECTION_CHARS: usize = 3_000;
/// Longest section field text (Block Kit: 2000).
pub const MAX_FIELD_CHARS: usize = 2_000;
/// Longest fallback `text` we send (Slack truncates at 40,000).
pub const MAX_FALLBACK_CHARS: usize = 3_000;
/// Longest button URL (Block Kit: 3000).
pub const MAX_URL_CHARS: usize = 3_000;

/// The colour bar of a severity.
pub fn color(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Critical) => "#8B0000",
        Some(Severity::High) => "#E01E5A",
        Some(Severity::Medium) => "#ECB22E",
        Some(Severity::Low) => "#36C5F0",
        Some(Severity::Info) | None => "#9E9E9E",
    }
}

/// The header emoji of a severity.
pub fn emoji(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Critical) => ":red_circle:",
        Some(Severity::High) => ":large_orange_circle:",
        Some(Severity::Medium) => ":large_yellow_circle:",
        Some(Severity::Low) => ":large_blue_circle:",
        Some(Severity::Info) | None => ":white_circle:",
    }
}

/// Escapes the three characters Slack's `mrkdwn` treats as control characters.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack's date formatting token: shown in the reader's own time zone, the ISO time as
/// fallback.
fn slack_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    format!(
        "<!date^{secs}^{{date_short_pretty}} {{time_secs}}|{}>",
        time_text(ms)
    )
}

/// `secflow · 38 events · <event id>`: the count tests and people read.
pub fn context_text(d: &Digest) -> String {
    let n = d.count();
    let events = if n == 1 { "event" } else { "events" };
    let mut out = format!("secflow · {n} {events}");
    if let Some(id) = &d.top_alert().event_id {
        out.push_str(&format!(" · event {}", escape(&clip(id, 200))));
    }
    if let Some(rule) = &d.top_alert().rule_id {
        out.push_str(&format!(" · rule {}", escape(&clip(rule, 200))));
    }
    out
}

/// The message body (JSON) for one digest; `thread_ts` makes it a reply.
pub fn body(sink: &SlackSink, d: &Digest, thread_ts: Option<&str>) -> Value {
    let top = d.top_alert();
    let title = clip(sink.title.render(top).trim(), 1_000);
    let title = if title.is_empty() {
        crate::sink::chat::UNTITLED.to_string()
    } else {
        title
    };
    let label = severity_label(top.severity);
    let more = d.count() - 1;

    let mut fallback = format!("[{}] {title}", label.to_uppercase());
    if let Some(h) = &top.host {
        fallback.push_str(&format!(" on {h}"));
    }
    if more > 0 {
        fallback.push_str(&format!(" (+{more} more)"));
    }
    let fallback = escape(&clip(&fallback, MAX_FALLBACK_CHARS));

    let header = clip(
        &format!("{} {label}: {title}", emoji(top.severity)),
        MAX_HEADER_CHARS,
    );

    let fields: Vec<Value> = facts(top, slack_date)
        .into_iter()
        .map(|(name, value)| {
            // The date token is markup already; everything else is escaped.
            let v = if name == "Time" {
                value
            } else {
                escape(&clip(&value, 300))
            };
            json!({"type": "mrkdwn", "text": clip(&format!("*{name}*\n{v}"), MAX_FIELD_CHARS)})
        })
        .collect();
    let mut blocks = vec![json!({"type": "section", "fields": fields})];
    if let Some(m) = top
        .message
        .as_deref()
        .filter(|m| Some(*m) != Some(title.as_str()))
    {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&escape(m), MAX_SECTION_CHARS)}
        }));
    }
    if more > 0 {
        let mut text = format!("*{}*", escape(&d.counts_text()));
        for line in &d.lines {
            text.push_str(&format!("\n• {}", escape(&line.text())));
        }
        if let Some(rest) = d.unlisted_text() {
            text.push_str(&format!("\n• {}", escape(&rest)));
        }
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip(&text, MAX_SECTION_CHARS)}
        }));
    }
    let buttons: Vec<Value> = sink
        .links
        .iter()
        .filter_map(|(text, url)| {
            let url = url.render_url(top)?;
            (url.len() <= MAX_URL_CHARS).then(|| {
                json!({
                    "type": "button",
                    "text": {"type": "plain_text", "text": text, "emoji": true},
                    "url": url,
                })
            })
        })
        .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(&context_text(d), MAX_SECTION_CHARS)}]
    }));

    let mut msg = json!({
        "text": fallback,
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}],
        "attachments": [{"color": color(top.severity), "fallback": fallback, "blocks": blocks}],
        "unfurl_links": false,
        "unfurl_media": false,
    });
    if let Mode::Api { .. } = sink.mode {
        msg["channel"] = Value::from(d.channel.clone());
        if let Some(ts) = thread_ts {
            msg["thread_ts"] = Value::from(ts);
        }
    }
    msg
}
