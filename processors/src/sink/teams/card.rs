//! The Teams cards: an Adaptive Card 1.4 in a `message` activity (Workflows webhooks), or a
//! legacy connector `MessageCard`. Both show the same thing: a title with the severity, the
//! key facts of the top event, its message, the summary of the other events, link buttons and
//! a footer `secflow · N events · event <id>`.

use serde_json::{json, Value};

use super::TeamsSink;
use crate::sink::chat::{clip, facts, severity_label, time_text, Digest, UNTITLED};
use crate::sink::event_fields::Severity;

/// Teams refuses messages over about 28 KB.
pub const MAX_MESSAGE_BYTES: usize = 28_000;
/// Longest fact value we send.
const MAX_FACT_CHARS: usize = 300;
/// Longest event message we send.
const MAX_TEXT_CHARS: usize = 2_000;

/// Adaptive Card container style and text colour of a severity.
pub fn adaptive_style(s: Option<Severity>) -> (&'static str, &'static str) {
    match s {
        Some(Severity::Critical | Severity::High) => ("attention", "Attention"),
        Some(Severity::Medium) => ("warning", "Warning"),
        Some(Severity::Low) => ("accent", "Accent"),
        Some(Severity::Info) | None => ("emphasis", "Default"),
    }
}

/// MessageCard `themeColor` (hex without `#`) of a severity.
pub fn theme_color(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Critical) => "8B0000",
        Some(Severity::High) => "E01E5A",
        Some(Severity::Medium) => "ECB22E",
        Some(Severity::Low) => "36C5F0",
        Some(Severity::Info) | None => "9E9E9E",
    }
}

/// `secflow · 38 events · event <id>`.
pub fn footer_text(d: &Digest) -> String {
    let n = d.count();
    let events = if n == 1 { "event" } else { "events" };
    let mut out = format!("secflow · {n} {events}");
    if let Some(id) = &d.top_alert().event_id {
        out.push_str(&format!(" · event {}", clip(id, 200)));
    }
    if let Some(rule) = &d.top_alert().rule_id {
        out.push_str(&format!(" · rule {}", clip(rule, 200)));
    }
    out
}

/// What both cards show, computed once.
struct Content {
    title: String,
    severity: Option<Severity>,
    facts: Vec<(&'static str, String)>,
    text: Option<String>,
    summary: Option<(String, Vec<String>)>,
    links: Vec<(String, String)>,
    footer: String,
}

fn content(sink: &TeamsSink, d: &Digest, text_chars: usize) -> Content {
    let top = d.top_alert();
    let title = clip(sink.title.render(top).trim(), 300);
    let title = if title.is_empty() {
        UNTITLED.to_string()
    } else {
        title
    };
    let more = d.count() - 1;
    let summary = (more > 0).then(|| {
        let mut lines: Vec<String> = d.lines.iter().map(|l| l.text()).collect();
        if let Some(rest) = d.unlisted_text() {
            lines.push(rest);
        }
        (d.counts_text(), lines)
    });
    Content {
        title: format!("{}: {title}", severity_label(top.severity)),
        severity: top.severity,
        facts: facts(top, time_text)
            .into_iter()
            .map(|(k, v)| (k, clip(&v, MAX_FACT_CHARS)))
            .collect(),
        text: top
            .message
            .as_deref()
            .filter(|m| *m != title && text_chars > 0)
            .map(|m| clip(m, text_chars)),
        summary,
        links: sink
            .links
            .iter()
            .filter_map(|(t, u)| Some((t.clone(), u.render_url(top)?)))
            .collect(),
        footer: footer_text(d),
    }
}

fn adaptive(c: &Content) -> Value {
    let (style, color) = adaptive_style(c.severity);
    let mut body = vec![
        json!({
            "type": "Container",
            "style": style,
            "bleed": true,
            "items": [{
                "type": "TextBlock",
                "text": c.title,
                "weight": "Bolder",
                "size": "Medium",
                "color": color,
                "wrap": true,
            }],
        }),
        json!({
            "type": "FactSet",
            "facts": c.facts.iter().map(|(k, v)| json!({"title": k, "value": v})).collect::<Vec<_>>(),
        }),
    ];
    if let Some(t) = &c.text {
        body.push(json!({"type": "TextBlock", "text": t, "wrap": true}));
    }
    if let Some((counts, lines)) = &c.summary {
        body.push(json!({"type": "TextBlock", "text": counts, "weight": "Bolder", "wrap": true, "spacing": "Medium"}));
        for l in lines {
            body.push(json!({"type": "TextBlock", "text": format!("- {l}"), "wrap": true, "spacing": "None"}));
        }
    }
    body.push(json!({
        "type": "TextBlock",
        "text": c.footer,
        "isSubtle": true,
        "size": "Small",
        "wrap": true,
        "spacing": "Medium",
    }));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if !c.links.is_empty() {
        card["actions"] = c
            .links
            .iter()
            .map(|(t, u)| json!({"type": "Action.OpenUrl", "title": t, "url": u}))
            .collect();
    }
    json!({
        "type": "message",
        "summary": c.title,
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn message_card(c: &Content) -> Value {
    let mut sections = vec![json!({
        "activityTitle": c.title,
        "facts": c.facts.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "markdown": false,
    })];
    if let Some(t) = &c.text {
        sections.push(json!({"text": t, "markdown": false}));
    }
    if let Some((counts, lines)) = &c.summary {
        let mut text = counts.clone();
        for l in lines {
            text.push_str(&format!("\n- {l}"));
        }
        sections.push(json!({"text": text, "markdown": false}));
    }
    sections.push(json!({"text": c.footer, "markdown": false}));
    let mut card = json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": c.title,
        "themeColor": theme_color(c.severity),
        "title": c.title,
        "sections": sections,
    });
    if !c.links.is_empty() {
        card["potentialAction"] = c
            .links
            .iter()
            .map(|(t, u)| json!({"@type": "OpenUri", "name": t, "targets": [{"os": "default", "uri": u}]}))
            .collect();
    }
    card
}

/// The request body for one digest, at most [`MAX_MESSAGE_BYTES`]: the event's message is
/// shortened until it fits. `None` when even the shortest form is too large (it cannot be, with
/// the clipped fields; kept as a guard).
pub fn body(sink: &TeamsSink, d: &Digest) -> Option<Vec<u8>> {
    for text_chars in [MAX_TEXT_CHARS, 500, 0] {
        let c = content(sink, d, text_chars);
        let v = match sink.config.card {
            super::TeamsCard::AdaptiveCard => adaptive(&c),
            super::TeamsCard::MessageCard => message_card(&c),
        };
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        if bytes.len() <= MAX_MESSAGE_BYTES {
            return Some(bytes);
        }
    }
    None
}
