//! Building PagerDuty events: triggers for new incidents, resolves for resolution events and
//! quiet incidents.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::{PagerDutySink, Route, MAX_DEDUP_KEY_CHARS, MAX_EVENT_BYTES, MAX_SUMMARY_CHARS};
use crate::sink::alerting::{
    bounded_key, epoch_ms, rfc3339, truncate_chars, Action, ActionKind, AlertEvent, AlertKind,
    IncidentKey, Intent, BELOW_MIN_SEVERITY,
};
use crate::sink::event_fields::Severity;
use crate::sink::{common_traceparent, BuildResult, HttpRequest, Method, Outcome, SinkRecord};

/// Path of the Events API v2 endpoint.
pub const ENQUEUE_PATH: &str = "/v2/enqueue";

/// Most event ids listed in a trigger's `custom_details.secflow.event_ids`.
const MAX_LISTED_IDS: usize = 50;

/// PagerDuty's `payload.severity` for ours: critical → `critical`, high → `error`, medium →
/// `warning`, low and info → `info`.
pub fn pagerduty_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "info",
    }
}

pub(super) fn build(sink: &PagerDutySink, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
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
        let route = sink.route_for(
            event.field("secflow.rule_id").as_deref(),
            event.record().tenant.as_deref(),
        );
        let key = IncidentKey {
            route: route.fingerprint.clone(),
            key: dedup_key(sink, event),
        };
        intents.push((
            i,
            match kind {
                AlertKind::Resolution => Intent::Resolve(key),
                _ => Intent::Trigger(key),
            },
        ));
    }
    let plan = sink.book().plan(intents, now_ms);
    let mut result = BuildResult {
        requests: Vec::with_capacity(plan.actions.len()),
        rejected: plan.done,
    };
    for action in plan.actions {
        let Some(route) = sink.route_by_fingerprint(&action.key.route) else {
            // Cannot happen (the key was just computed from a configured route); never drop
            // the records silently.
            for i in action.records {
                result.rejected.push((
                    i,
                    Outcome::permanent("no_route", None, "no routing key for this incident"),
                ));
            }
            continue;
        };
        match action.kind {
            ActionKind::Resolve => {
                let body = resolve_body(route, &action.key.key);
                result
                    .requests
                    .push(request(sink, body, action.records.clone(), batch));
            }
            ActionKind::Trigger => match trigger_body(sink, route, &action, &events, now_ms) {
                Ok(body) => result
                    .requests
                    .push(request(sink, body, action.records, batch)),
                Err(message) => {
                    sink.book().trigger_failed(&action.key);
                    for i in action.records {
                        result.rejected.push((
                            i,
                            Outcome::permanent("payload_too_large", None, message.clone()),
                        ));
                    }
                }
            },
        }
    }
    result
}

/// The dedup key of an event: the template, else the event id, bounded to 255 characters.
fn dedup_key(sink: &PagerDutySink, event: &AlertEvent<'_>) -> String {
    let rendered = sink.templates.dedup_key.render(event);
    let key = if rendered.is_empty() {
        event
            .record()
            .event_id
            .clone()
            .unwrap_or_else(|| "secflow".to_string())
    } else {
        rendered
    };
    bounded_key(&key, MAX_DEDUP_KEY_CHARS)
}

fn request(
    sink: &PagerDutySink,
    body: Vec<u8>,
    records: Vec<usize>,
    batch: &[SinkRecord],
) -> HttpRequest {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if let Some(tp) = common_traceparent(batch, &records) {
        headers.push(("traceparent".to_string(), tp.to_string()));
    }
    HttpRequest {
        method: Method::Post,
        url: sink.url.clone(),
        headers,
        body,
        records,
    }
}

fn resolve_body(route: &Route, dedup_key: &str) -> Vec<u8> {
    json!({
        "routing_key": route.key.expose(),
        "event_action": "resolve",
        "dedup_key": dedup_key,
    })
    .to_string()
    .into_bytes()
}

/// The trigger for `action`, built from its first record; the severity is the highest among
/// its records. The event document goes into `custom_details.event` unless the event would
/// exceed PagerDuty's 512 KB, then a note replaces it.
fn trigger_body(
    sink: &PagerDutySink,
    route: &Route,
    action: &Action,
    events: &[Result<AlertEvent<'_>, String>],
    now_ms: i64,
) -> Result<Vec<u8>, String> {
    let members: Vec<&AlertEvent<'_>> = action
        .records
        .iter()
        .filter_map(|&i| events.get(i).and_then(|e| e.as_ref().ok()))
        .collect();
    let Some(first) = members.first().copied() else {
        return Err("no readable record for this trigger".to_string());
    };
    let severity = members
        .iter()
        .map(|e| sink.rules.severity(e))
        .max()
        .unwrap_or(Severity::Info);
    let t = &sink.templates;
    let mut summary = truncate_chars(&t.summary.render(first), MAX_SUMMARY_CHARS);
    if summary.is_empty() {
        summary = "secflow alert".to_string();
    }
    let mut source = t.source.render(first);
    if source.is_empty() {
        source = "unknown".to_string();
    }
    let time_ms = first.record().event_time_ms.unwrap_or(now_ms);
    let mut payload = Map::new();
    payload.insert("summary".into(), Value::from(summary));
    payload.insert("source".into(), Value::from(source));
    payload.insert("severity".into(), Value::from(pagerduty_severity(severity)));
    if let Some(ts) = rfc3339(time_ms) {
        payload.insert("timestamp".into(), Value::from(ts));
    }
    for (name, template) in [
        ("component", &t.component),
        ("group", &t.group),
        ("class", &t.class),
    ] {
        if let Some(v) = template
            .as_ref()
            .map(|t| t.render(first))
            .filter(|v| !v.is_empty())
        {
            payload.insert(name.into(), Value::from(v));
        }
    }
    let ids: Vec<&str> = members
        .iter()
        .filter_map(|e| e.record().event_id.as_deref())
        .take(MAX_LISTED_IDS)
        .collect();
    let mut secflow = Map::new();
    for (k, v) in [
        ("event_id", first.field("secflow.event_id")),
        ("tenant", first.field("secflow.tenant")),
        ("format", first.field("secflow.format")),
        ("severity", Some(severity.as_str().to_string())),
        ("rule_id", first.field("secflow.rule_id")),
        ("rule_name", first.field("secflow.rule_name")),
        ("host", first.field("secflow.host")),
    ] {
        if let Some(v) = v {
            secflow.insert(k.into(), Value::from(v));
        }
    }
    secflow.insert("occurrences".into(), Value::from(members.len()));
    secflow.insert("event_ids".into(), json!(ids));
    let mut details = Map::new();
    details.insert("secflow".into(), Value::Object(secflow));
    details.insert("event".into(), first.document());
    payload.insert("custom_details".into(), Value::Object(details));

    let mut event = Map::new();
    event.insert("routing_key".into(), Value::from(route.key.expose()));
    event.insert("event_action".into(), Value::from("trigger"));
    event.insert("dedup_key".into(), Value::from(action.key.key.as_str()));
    event.insert("payload".into(), Value::Object(payload));
    let links: Vec<Value> = t
        .links
        .iter()
        .filter_map(|(href, text)| {
            let href = href.render_url(first);
            if !(href.starts_with("http://") || href.starts_with("https://")) {
                return None;
            }
            let mut link = Map::new();
            link.insert("href".into(), Value::from(href));
            if let Some(text) = text
                .as_ref()
                .map(|t| t.render(first))
                .filter(|t| !t.is_empty())
            {
                link.insert("text".into(), Value::from(text));
            }
            Some(Value::Object(link))
        })
        .collect();
    if !links.is_empty() {
        event.insert("links".into(), Value::Array(links));
    }
    event.insert("client".into(), Value::from(sink.config.client.trim()));
    if let Some(url) = t
        .client_url
        .as_ref()
        .map(|t| t.render(first))
        .filter(|u| !u.is_empty())
    {
        event.insert("client_url".into(), Value::from(url));
    }
    let mut event = Value::Object(event);
    let body = event.to_string().into_bytes();
    if body.len() <= MAX_EVENT_BYTES {
        return Ok(body);
    }
    let note = format!(
        "event document omitted: the PagerDuty event would be {} bytes, over the {MAX_EVENT_BYTES} byte limit; find it by secflow.event_id",
        body.len()
    );
    if let Some(slot) = event.pointer_mut("/payload/custom_details/event") {
        *slot = Value::from(note);
    }
    let body = event.to_string().into_bytes();
    if body.len() <= MAX_EVENT_BYTES {
        Ok(body)
    } else {
        Err(format!(
            "PagerDuty event is {} bytes even without the event document, over the {MAX_EVENT_BYTES} byte limit",
            body.len()
        ))
    }
}

/// Resolves for incidents quiet for longer than the window (marked closing in the book).
pub(super) fn quiet_resolves(sink: &PagerDutySink, now: SystemTime) -> Vec<HttpRequest> {
    let quiet_ms = i64::try_from(sink.quiet_window().as_millis()).unwrap_or(i64::MAX);
    let keys =
        sink.book()
            .start_quiet_resolves(epoch_ms(now), quiet_ms, super::MAX_RESOLVES_PER_TICK);
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        match sink.route_by_fingerprint(&key.route) {
            Some(route) => out.push(request(
                sink,
                resolve_body(route, &key.key),
                Vec::new(),
                &[],
            )),
            // Its key is no longer configured: PagerDuty would drop a resolve sent with another
            // key, so the incident is forgotten.
            None => sink.book().quiet_resolve_done(&key, false, true),
        }
    }
    out
}
