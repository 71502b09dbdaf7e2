//! Building OpsGenie requests: alert creates, closes by alias, heartbeat pings.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::{
    OpsGenieSink, MAX_ALIAS_CHARS, MAX_DESCRIPTION_CHARS, MAX_DETAILS_CHARS, MAX_ENTITY_CHARS,
    MAX_MESSAGE_CHARS, MAX_SOURCE_CHARS, MAX_TAGS, MAX_TAG_CHARS,
};
use crate::sink::alerting::{
    bounded_key, epoch_ms, percent_encode, truncate_chars, Action, ActionKind, AlertEvent,
    AlertKind, IncidentKey, Intent, BELOW_MIN_SEVERITY,
};
use crate::sink::event_fields::Severity;
use crate::sink::{common_traceparent, BuildResult, HttpRequest, Method, Outcome, SinkRecord};

/// Path of the alerts API.
pub const ALERTS_PATH: &str = "/v2/alerts";
/// Path of the heartbeats API.
pub const HEARTBEATS_PATH: &str = "/v2/heartbeats";

/// OpsGenie's priority for our severity: critical P1, high P2, medium P3, low P4, info P5.
pub fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "P1",
        Severity::High => "P2",
        Severity::Medium => "P3",
        Severity::Low => "P4",
        Severity::Info => "P5",
    }
}

pub(super) fn build(sink: &OpsGenieSink, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
    let now_ms = epoch_ms(now);
    let events: Vec<Result<AlertEvent<'_>, String>> = batch.iter().map(AlertEvent::parse).collect();
    let mut intents = Vec::with_capacity(batch.len());
    for (i, parsed) in events.iter().enumerate() {
        let event = match parsed {
            Ok(e) => e,
            Err(m) => {
                intents.push((
                    i,
                    Intent::Done(Outcome::permanent("invalid_payload", None, m.clone())),
                ));
                continue;
            }
        };
        let kind = sink.rules.kind(event);
        if let AlertKind::BelowThreshold(_) = kind {
            intents.push((i, Intent::Done(Outcome::suppressed(BELOW_MIN_SEVERITY))));
            continue;
        }
        // Aliases are one namespace per OpsGenie account: no route in the key.
        let key = IncidentKey {
            route: String::new(),
            key: alias(sink, event),
        };
        intents.push((
            i,
            match kind {
                AlertKind::Resolution => Intent::Resolve(key),
                _ => Intent::Trigger(key),
            },
        ));
    }
    let plan = sink.state().book.plan(intents, now_ms);
    let mut result = BuildResult {
        requests: Vec::with_capacity(plan.actions.len()),
        rejected: plan.done,
    };
    for action in plan.actions {
        let req = match action.kind {
            ActionKind::Trigger => create(sink, &action, &events, batch),
            ActionKind::Resolve => {
                let note = match action
                    .records
                    .first()
                    .and_then(|&i| batch.get(i))
                    .and_then(|r| r.event_id.as_deref())
                {
                    Some(id) => format!("Closed by secflow: resolution event {id}"),
                    None => "Closed by secflow: resolution event".to_string(),
                };
                close(sink, &action.key.key, &note, action.records.clone(), batch)
            }
        };
        result.requests.push(req);
    }
    result
}

/// The alias of an event: the template, else the event id, bounded to 512 characters.
fn alias(sink: &OpsGenieSink, event: &AlertEvent<'_>) -> String {
    let rendered = sink.templates.alias.render(event);
    let alias = if rendered.is_empty() {
        event
            .record()
            .event_id
            .clone()
            .unwrap_or_else(|| "secflow".to_string())
    } else {
        rendered
    };
    bounded_key(&alias, MAX_ALIAS_CHARS)
}

fn headers(
    sink: &OpsGenieSink,
    json_body: bool,
    records: &[usize],
    batch: &[SinkRecord],
) -> Vec<(String, String)> {
    let mut headers = vec![sink.auth_header()];
    if json_body {
        headers.push(("Content-Type".to_string(), "application/json".to_string()));
    }
    if let Some(tp) = common_traceparent(batch, records) {
        headers.push(("traceparent".to_string(), tp.to_string()));
    }
    headers
}

/// The create for `action`, built from its first record; the priority comes from the highest
/// severity among its records.
fn create(
    sink: &OpsGenieSink,
    action: &Action,
    events: &[Result<AlertEvent<'_>, String>],
    batch: &[SinkRecord],
) -> HttpRequest {
    let members: Vec<&AlertEvent<'_>> = action
        .records
        .iter()
        .filter_map(|&i| events.get(i).and_then(|e| e.as_ref().ok()))
        .collect();
    let body = match members.first() {
        Some(first) => create_body(sink, &action.key.key, first, &members),
        None => json!({"message": "secflow alert", "alias": action.key.key}),
    };
    HttpRequest {
        method: Method::Post,
        url: format!("{}{ALERTS_PATH}", sink.base),
        headers: headers(sink, true, &action.records, batch),
        body: body.to_string().into_bytes(),
        records: action.records.clone(),
    }
}

fn create_body(
    sink: &OpsGenieSink,
    alias: &str,
    first: &AlertEvent<'_>,
    members: &[&AlertEvent<'_>],
) -> Value {
    let t = &sink.templates;
    let severity = members
        .iter()
        .map(|e| sink.rules.severity(e))
        .max()
        .unwrap_or(Severity::Info);
    let mut message = truncate_chars(&t.message.render(first), MAX_MESSAGE_CHARS);
    if message.is_empty() {
        message = "secflow alert".to_string();
    }
    let mut body = Map::new();
    body.insert("message".into(), Value::from(message));
    body.insert("alias".into(), Value::from(alias));
    if let Some(d) = t
        .description
        .as_ref()
        .map(|t| t.render(first))
        .filter(|d| !d.is_empty())
    {
        body.insert(
            "description".into(),
            Value::from(truncate_chars(&d, MAX_DESCRIPTION_CHARS)),
        );
    }
    let responders = sink.responders_for(
        first.field("secflow.rule_id").as_deref(),
        first.record().tenant.as_deref(),
    );
    if !responders.is_empty() {
        body.insert("responders".into(), Value::Array(responders.to_vec()));
    }
    let mut tags: Vec<String> = Vec::new();
    for tag in &t.tags {
        let v = truncate_chars(&tag.render(first), MAX_TAG_CHARS);
        // A tag whose placeholder was empty ("tenant:") says nothing.
        if !v.is_empty() && !v.ends_with(':') && !tags.contains(&v) && tags.len() < MAX_TAGS {
            tags.push(v);
        }
    }
    if !tags.is_empty() {
        body.insert("tags".into(), json!(tags));
    }
    body.insert(
        "details".into(),
        Value::Object(details(sink, first, members, severity)),
    );
    if let Some(e) = t
        .entity
        .as_ref()
        .map(|t| t.render(first))
        .filter(|e| !e.is_empty())
    {
        body.insert(
            "entity".into(),
            Value::from(truncate_chars(&e, MAX_ENTITY_CHARS)),
        );
    }
    let source = truncate_chars(&t.source.render(first), MAX_SOURCE_CHARS);
    if !source.is_empty() {
        body.insert("source".into(), Value::from(source));
    }
    body.insert("priority".into(), Value::from(priority(severity)));
    if let Some(u) = sink
        .config
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        body.insert(
            "user".into(),
            Value::from(truncate_chars(u, MAX_SOURCE_CHARS)),
        );
    }
    Value::Object(body)
}

/// `details` (string values only, at most 8000 characters in all): secflow's fields, the
/// configured ones, then the event itself when it still fits.
fn details(
    sink: &OpsGenieSink,
    first: &AlertEvent<'_>,
    members: &[&AlertEvent<'_>],
    severity: Severity,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut used = 0usize;
    let mut fields: Vec<(String, Option<String>)> = vec![
        ("event_id".into(), first.field("secflow.event_id")),
        ("tenant".into(), first.field("secflow.tenant")),
        ("severity".into(), Some(severity.as_str().to_string())),
        ("rule_id".into(), first.field("secflow.rule_id")),
        ("rule_name".into(), first.field("secflow.rule_name")),
        ("host".into(), first.field("secflow.host")),
        ("format".into(), first.field("secflow.format")),
        ("occurrences".into(), Some(members.len().to_string())),
    ];
    for (k, t) in &sink.templates.details {
        fields.push((k.clone(), Some(t.render(first)).filter(|v| !v.is_empty())));
    }
    for (k, v) in fields {
        if let Some(v) = v {
            // A long value is cut (at 1000 characters, or what is left) rather than dropped.
            let room = MAX_DETAILS_CHARS
                .saturating_sub(used)
                .saturating_sub(k.chars().count());
            put_detail(&mut out, &mut used, &k, truncate_chars(&v, room.min(1000)));
        }
    }
    let event = match first.document() {
        Value::String(s) => s,
        doc => doc.to_string(),
    };
    let size = event.chars().count();
    if !put_detail(&mut out, &mut used, "event", event) {
        put_detail(
            &mut out,
            &mut used,
            "event_omitted",
            format!("the event is {size} characters, over what OpsGenie details hold"),
        );
    }
    out
}

/// Adds `k: v` when it fits in what is left of the details limit; whether it was added.
fn put_detail(out: &mut Map<String, Value>, used: &mut usize, k: &str, v: String) -> bool {
    let cost = k.chars().count() + v.chars().count();
    if v.is_empty() || *used + cost > MAX_DETAILS_CHARS {
        return false;
    }
    *used += cost;
    out.insert(k.to_string(), Value::from(v));
    true
}

/// A close by alias.
fn close(
    sink: &OpsGenieSink,
    alias: &str,
    note: &str,
    records: Vec<usize>,
    batch: &[SinkRecord],
) -> HttpRequest {
    let mut body = Map::new();
    body.insert("source".into(), Value::from("secflow"));
    if let Some(u) = sink
        .config
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        body.insert(
            "user".into(),
            Value::from(truncate_chars(u, MAX_SOURCE_CHARS)),
        );
    }
    body.insert("note".into(), Value::from(note));
    HttpRequest {
        method: Method::Post,
        url: format!(
            "{}{ALERTS_PATH}/{}/close?identifierType=alias",
            sink.base,
            percent_encode(alias)
        ),
        headers: headers(sink, true, &records, batch),
        body: Value::Object(body).to_string().into_bytes(),
        records,
    }
}

/// Closes for quiet alerts, and the heartbeat ping when it is due and delivery is healthy.
pub(super) fn tick(sink: &OpsGenieSink, now: SystemTime, healthy: bool) -> Vec<HttpRequest> {
    let now_ms = epoch_ms(now);
    let quiet_ms = i64::try_from(sink.quiet_window().as_millis()).unwrap_or(i64::MAX);
    let mut state = sink.state();
    let keys = state
        .book
        .start_quiet_resolves(now_ms, quiet_ms, super::MAX_CLOSES_PER_TICK);
    let secs = sink.config.auto_close_after_secs;
    let mut out: Vec<HttpRequest> = keys
        .iter()
        .map(|k| {
            close(
                sink,
                &k.key,
                &format!("Closed by secflow: no recurrence for {secs} s"),
                Vec::new(),
                &[],
            )
        })
        .collect();
    if let Some(h) = &sink.config.heartbeat {
        let every_ms = i64::try_from(h.interval_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let due = state
            .last_ping_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= every_ms);
        if healthy && due {
            state.last_ping_ms = Some(now_ms);
            out.push(HttpRequest {
                method: Method::Post,
                url: format!(
                    "{}{HEARTBEATS_PATH}/{}/ping",
                    sink.base,
                    percent_encode(h.name.trim())
                ),
                headers: vec![sink.auth_header()],
                body: Vec::new(),
                records: Vec::new(),
            });
        }
    }
    out
}
