//! Unit tests of the PagerDuty sink: event shape, thresholds, dedup, routing, resolves (by
//! event and by quiet window), classification, state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::*;
use crate::sink::{
    HttpResponse, Outcome, PayloadFormat, RetryAfter, Sink, SinkRecord, TransportError,
    TransportErrorKind,
};

const ECS: &str = include_str!("../../../tests/golden/process_alert_enriched.ecs.json");
const CEF: &str = include_str!("../../../tests/golden/process_alert_enriched.cef");
const KEY: &str = "R0UT1NGKEY0000000000000000000001";
const SOC_KEY: &str = "R0UT1NGKEY000000000000000000SOC2";
const RULE: &str = "c9f8a2d1-7e3b-4c5a-9d0e-1f2a3b4c5d6e";
const HOST: &str = "ws-fin-042.corp.example.com";
const NOW: SystemTime = SystemTime::UNIX_EPOCH;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000 + secs)
}

fn config(extra: Value) -> PagerDutyConfig {
    let mut base = json!({"routing_key": {"env": "PD_KEY"}, "endpoint": "http://127.0.0.1:9"});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn sink_with(c: PagerDutyConfig) -> PagerDutySink {
    let keys = c.routes.iter().map(|_| Secret::new(SOC_KEY)).collect();
    PagerDutySink::new("pd", c, Secret::new(KEY), keys).unwrap()
}

fn sink() -> PagerDutySink {
    sink_with(config(json!({
        "links": [{"href": "https://siem.example.com/app/events/{secflow.event_id}?host={host.name}", "text": "Event {secflow.event_id} in the SIEM"}],
        "client_url": "https://secflow.example.com",
        "component": "{process.name}",
    })))
}

/// An ECS alert (severity high) with this id, host and rule.
fn alert(id: &str, host: &str, rule: &str) -> SinkRecord {
    let mut doc: Value = serde_json::from_str(ECS).unwrap();
    doc["event"]["id"] = Value::from(id);
    doc["host"]["name"] = Value::from(host);
    doc["rule"]["id"] = Value::from(rule);
    SinkRecord {
        event_id: Some(id.to_string()),
        tenant: Some("acme-corp".into()),
        event_time_ms: Some(1_741_950_943_000),
        key: None,
        payload: doc.to_string().into_bytes(),
        format: PayloadFormat::Ecs,
        traceparent: None,
    }
}

fn with_severity(mut r: SinkRecord, ecs_severity: u64) -> SinkRecord {
    let mut doc: Value = serde_json::from_slice(&r.payload).unwrap();
    doc["event"]["severity"] = Value::from(ecs_severity);
    r.payload = doc.to_string().into_bytes();
    r
}

fn resolution(mut r: SinkRecord) -> SinkRecord {
    let mut doc: Value = serde_json::from_slice(&r.payload).unwrap();
    doc["labels"]["secflow_status"] = Value::from("resolved");
    doc["event"]["severity"] = Value::from(1);
    r.payload = doc.to_string().into_bytes();
    r
}

fn body(r: &HttpRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

const ACCEPTED: &str = r#"{"status":"success","message":"Event processed","dedup_key":"k"}"#;

fn accept(s: &PagerDutySink, r: &HttpRequest) {
    let c = s.classify(r, &resp(202, &[], ACCEPTED));
    assert!(c.outcomes.iter().all(|o| *o == Outcome::Delivered));
}

#[test]
fn config_defaults_and_unknown_keys() {
    let c: PagerDutyConfig = serde_yaml_ng::from_str("routing_key: {env: PD_KEY}\n").unwrap();
    assert_eq!(c.min_severity, crate::sink::event_fields::Severity::High);
    assert_eq!(
        c.dedup_key,
        "{secflow.tenant}:{secflow.rule_id}:{secflow.host}"
    );
    assert_eq!(c.auto_resolve_after_secs, 3600);
    assert_eq!(c.resolve_when.len(), 1);
    assert_eq!(c.resolve_when[0].field, "secflow.status");
    let s = PagerDutySink::new("pd", c, Secret::new(KEY), vec![]).unwrap();
    assert_eq!(s.url(), "https://events.pagerduty.com/v2/enqueue");
    assert_eq!(s.max_concurrency(), Some(1));
    for bad in [
        "routing_key: {env: K}\nrouting: []\n",
        "routing_key: plain-text-key\n",
        "routing_key: {env: K}\nmin_severity: severe\n",
        "routing_key: {env: K}\nroutes: [{name: x, routing_key: {env: Y}, hosts: [a]}]\n",
    ] {
        assert!(
            serde_yaml_ng::from_str::<PagerDutyConfig>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn construction_refuses_what_cannot_work() {
    let route = |name: &str, rules: Value, tenants: Value| json!({"name": name, "rule_ids": rules, "tenants": tenants, "routing_key": {"env": "X"}});
    for extra in [
        json!({"endpoint": "events.pagerduty.com"}),
        json!({"endpoint": "http://sim/v2/enqueue"}),
        json!({"dedup_key": "always-the-same"}),
        json!({"summary": "{unclosed"}),
        json!({"auto_resolve_after_secs": 0}),
        json!({"links": [{"href": "siem/{secflow.event_id}"}]}),
        json!({"resolve_when": [{"field": "x", "equals": []}]}),
        json!({"routes": [route("soc", json!([]), json!([]))]}),
        json!({"routes": [route("default", json!(["r"]), json!([]))]}),
        json!({"routes": [route("a", json!(["r"]), json!([])), route("a", json!([]), json!(["t"]))]}),
    ] {
        let c = config(extra.clone());
        let keys = c.routes.iter().map(|_| Secret::new(SOC_KEY)).collect();
        let e = PagerDutySink::new("pd", c, Secret::new(KEY), keys).unwrap_err();
        assert!(matches!(e, SinkError::Config(_)), "{extra}");
    }
    // A key count that does not match the routes.
    let c = config(json!({"routes": [route("a", json!(["r"]), json!([]))]}));
    assert!(PagerDutySink::new("pd", c, Secret::new(KEY), vec![]).is_err());
}

#[test]
fn a_trigger_carries_everything_the_responder_needs() {
    let s = sink();
    let built = s.build(&[alert("e1", HOST, RULE)], at(0));
    assert!(built.rejected.is_empty());
    assert_eq!(built.requests.len(), 1);
    let r = &built.requests[0];
    assert_eq!(r.url, "http://127.0.0.1:9/v2/enqueue");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.records, vec![0]);
    let b = body(r);
    assert_eq!(b["routing_key"], KEY);
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], format!("acme-corp:{RULE}:{HOST}"));
    let p = &b["payload"];
    assert_eq!(
        p["summary"],
        format!("Suspicious PowerShell launched by Microsoft Office on {HOST}")
    );
    assert_eq!(p["source"], HOST);
    assert_eq!(p["severity"], "error", "high → error");
    assert_eq!(p["timestamp"], "2025-03-14T11:15:43.000Z");
    assert_eq!(p["component"], "powershell.exe");
    assert_eq!(p["group"], "acme-corp");
    assert_eq!(
        p["class"],
        "Suspicious PowerShell launched by Microsoft Office"
    );
    assert_eq!(p["custom_details"]["event"]["rule"]["id"], RULE);
    assert_eq!(p["custom_details"]["secflow"]["event_ids"], json!(["e1"]));
    assert_eq!(p["custom_details"]["secflow"]["occurrences"], 1);
    assert_eq!(
        b["links"],
        json!([{"href": format!("https://siem.example.com/app/events/e1?host={HOST}"), "text": "Event e1 in the SIEM"}])
    );
    assert_eq!(b["client"], "secflow");
    assert_eq!(b["client_url"], "https://secflow.example.com");
    assert!(
        !format!("{r:?}").contains(KEY),
        "the key never shows in Debug"
    );
}

#[test]
fn severities_map_to_pagerduty_and_the_threshold_suppresses() {
    use crate::sink::event_fields::Severity;
    assert_eq!(pagerduty_severity(Severity::Critical), "critical");
    assert_eq!(pagerduty_severity(Severity::High), "error");
    assert_eq!(pagerduty_severity(Severity::Medium), "warning");
    assert_eq!(pagerduty_severity(Severity::Low), "info");
    assert_eq!(pagerduty_severity(Severity::Info), "info");
    let s = sink_with(config(json!({"min_severity": "medium"})));
    let batch = vec![
        with_severity(alert("crit", "h1", "r"), 99),
        with_severity(alert("med", "h2", "r"), 47),
        with_severity(alert("low", "h3", "r"), 21),
        with_severity(alert("info", "h4", "r"), 1),
    ];
    let built = s.build(&batch, at(0));
    let sev: Vec<Value> = built
        .requests
        .iter()
        .map(|r| body(r)["payload"]["severity"].clone())
        .collect();
    assert_eq!(sev, vec![json!("critical"), json!("warning")]);
    assert_eq!(
        built.rejected,
        vec![
            (2, Outcome::suppressed("below_min_severity")),
            (3, Outcome::suppressed("below_min_severity")),
        ]
    );
}

#[test]
fn unreadable_payloads_are_dead_lettered() {
    let s = sink();
    let mut bad = alert("bad", HOST, RULE);
    bad.payload = b"{not json".to_vec();
    let built = s.build(&[bad, alert("ok", HOST, RULE)], at(0));
    assert_eq!(built.requests.len(), 1);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, 0);
    assert_eq!(built.rejected[0].1.class(), Some("invalid_payload"));
}

#[test]
fn one_trigger_per_incident_then_suppression_once_accepted() {
    let s = sink();
    let batch = vec![
        alert("e1", "h1", RULE),
        alert("e2", "h2", RULE),
        with_severity(alert("e3", "h1", RULE), 99),
    ];
    let built = s.build(&batch, at(0));
    assert_eq!(built.requests.len(), 2, "h1 and h2 are two incidents");
    let h1 = &built.requests[0];
    assert_eq!(
        h1.records,
        vec![0, 2],
        "both h1 records ride on one trigger"
    );
    let b = body(h1);
    assert_eq!(
        b["payload"]["severity"], "critical",
        "the highest of its records"
    );
    assert_eq!(
        b["payload"]["custom_details"]["secflow"]["event_ids"],
        json!(["e1", "e3"])
    );
    // Before PagerDuty accepted it, a re-send builds the trigger again.
    let c = s.classify(h1, &resp(429, &[("Retry-After", "2")], r#"{"status":"throttle event","message":"Requests for this service are arriving too quickly.  Please retry later."}"#));
    assert!(
        matches!(&c.outcomes[0], Outcome::Retry { class, retry_after: Some(RetryAfter::Delay(d)), .. } if class == "rate_limited" && *d == Duration::from_secs(2))
    );
    assert!(c.sink_down.is_some());
    let again = s.build(&[batch[0].clone(), batch[2].clone()], at(1));
    assert_eq!(again.requests.len(), 1);
    assert_eq!(body(&again.requests[0])["event_action"], "trigger");
    accept(&s, &again.requests[0]);
    accept(&s, &built.requests[1]);
    assert_eq!(s.incidents().open().len(), 2);
    // Later records of open incidents are suppressed, no request.
    let later = s.build(&[alert("e4", "h1", RULE), alert("e5", "h2", RULE)], at(60));
    assert!(later.requests.is_empty());
    assert_eq!(
        later.rejected,
        vec![
            (0, Outcome::suppressed("incident_open")),
            (1, Outcome::suppressed("incident_open")),
        ]
    );
}

#[test]
fn routes_choose_the_key_by_rule_or_tenant() {
    let s = sink_with(config(json!({"routes": [
        {"name": "soc-rule", "rule_ids": ["rule-soc"], "routing_key": {"env": "SOC"}},
        {"name": "beta-tenant", "tenants": ["beta"], "routing_key": {"env": "SOC"}},
    ]})));
    let mut beta = alert("b", "h", "other");
    beta.tenant = Some("beta".into());
    let built = s.build(
        &[alert("a", "h", "rule-soc"), beta, alert("c", "h", "other")],
        at(0),
    );
    let keys: Vec<Value> = built
        .requests
        .iter()
        .map(|r| body(r)["routing_key"].clone())
        .collect();
    assert_eq!(keys, vec![json!(SOC_KEY), json!(SOC_KEY), json!(KEY)]);
    // The state remembers a fingerprint, never the key.
    for r in &built.requests {
        accept(&s, r);
    }
    let state = String::from_utf8(s.snapshot().unwrap()).unwrap();
    assert!(!state.contains(KEY) && !state.contains(SOC_KEY), "{state}");
    assert!(state.contains(&key_fingerprint(&Secret::new(KEY))));
}

#[test]
fn a_resolution_event_resolves_with_the_same_dedup_and_routing_key() {
    let s = sink();
    let trigger = s
        .build(&[alert("e1", HOST, RULE)], at(0))
        .requests
        .remove(0);
    accept(&s, &trigger);
    let built = s.build(&[resolution(alert("e2", HOST, RULE))], at(10));
    assert!(
        built.rejected.is_empty(),
        "an info-level resolution is not held back"
    );
    let r = &built.requests[0];
    assert_eq!(
        body(r),
        json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": body(&trigger)["dedup_key"]})
    );
    assert_eq!(r.records, vec![0]);
    accept(&s, r);
    assert!(s.incidents().open().is_empty());
    // A resolution for nothing open is suppressed; the next alert triggers again.
    let built = s.build(
        &[resolution(alert("e3", HOST, RULE)), alert("e4", HOST, RULE)],
        at(20),
    );
    assert_eq!(
        built.rejected,
        vec![(0, Outcome::suppressed("no_open_incident"))]
    );
    assert_eq!(body(&built.requests[0])["event_action"], "trigger");
}

#[test]
fn quiet_incidents_are_resolved_by_the_tick() {
    let s = sink_with(config(json!({"auto_resolve_after_secs": 60})));
    assert_eq!(s.tick_interval(), Some(Duration::from_secs(15)));
    for r in s
        .build(&[alert("a", "h1", RULE), alert("b", "h2", RULE)], at(0))
        .requests
    {
        accept(&s, &r);
    }
    // h2 recurs at 40 s: only h1 is quiet at 70 s.
    s.build(&[alert("c", "h2", RULE)], at(40));
    assert!(s.tick(at(30), true).is_empty());
    let ticks = s.tick(at(70), true);
    assert_eq!(ticks.len(), 1);
    let b = body(&ticks[0]);
    assert_eq!(b["event_action"], "resolve");
    assert_eq!(b["dedup_key"], format!("acme-corp:{RULE}:h1"));
    assert!(ticks[0].records.is_empty());
    assert!(
        s.tick(at(71), true).is_empty(),
        "one resolve in flight at a time"
    );
    // A failed resolve is tried again at the next tick; an accepted one forgets the incident.
    s.tick_done(&ticks[0], Ok(&resp(503, &[], "")), at(72));
    let again = s.tick(at(73), true);
    assert_eq!(again.len(), 1);
    s.tick_done(
        &again[0],
        Err(&TransportError {
            kind: TransportErrorKind::Timeout,
            message: "t".into(),
        }),
        at(74),
    );
    let again = s.tick(at(75), true);
    s.tick_done(&again[0], Ok(&resp(202, &[], ACCEPTED)), at(76));
    let open: Vec<String> = s.incidents().open().keys().map(|k| k.key.clone()).collect();
    assert_eq!(open, vec![format!("acme-corp:{RULE}:h2")]);
    // A 400 for a resolve is final: forgotten.
    let last = s.tick(at(200), true);
    s.tick_done(&last[0], Ok(&resp(400, &[], "")), at(201));
    assert!(s.incidents().open().is_empty());
}

#[test]
fn a_restart_with_saved_state_does_not_trigger_again() {
    let s = sink();
    let r = s
        .build(&[alert("e1", HOST, RULE)], at(0))
        .requests
        .remove(0);
    accept(&s, &r);
    let saved = s.snapshot().unwrap();
    let restarted = sink();
    restarted.restore(&saved).unwrap();
    let built = restarted.build(&[alert("e2", HOST, RULE)], at(5));
    assert!(built.requests.is_empty());
    assert_eq!(
        built.rejected,
        vec![(0, Outcome::suppressed("incident_open"))]
    );
    assert!(restarted.restore(b"garbage").is_err());
}

#[test]
fn pagerduty_answers_are_classified() {
    let s = sink();
    let r = s
        .build(&[alert("e1", HOST, RULE), alert("e2", HOST, RULE)], NOW)
        .requests
        .remove(0);
    let c = s.classify(&r, &resp(400, &[], r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]}"#));
    match &c.outcomes[0] {
        Outcome::Permanent {
            class,
            status,
            message,
        } => {
            assert_eq!((class.as_str(), *status), ("invalid_event", Some(400)));
            assert!(
                message.contains("Event object is invalid: 'payload.summary' is missing or blank"),
                "{message}"
            );
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(c.outcomes.len(), 2);
    assert!(c.sink_down.is_none());
    // A routing key PagerDuty refuses opens the circuit.
    let c = s.classify(&r, &resp(400, &[], &format!(r#"{{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters): {KEY}x"]}}"#)));
    assert_eq!(c.outcomes[0].class(), Some("invalid_routing_key"));
    let down = c.sink_down.unwrap();
    assert!(
        down.message.contains("circuit open") && !down.message.contains(KEY),
        "{}",
        down.message
    );
    for status in [401, 403] {
        let c = s.classify(&r, &resp(status, &[], "Forbidden"));
        assert_eq!(c.outcomes[0].class(), Some("auth"));
        assert!(matches!(c.outcomes[0], Outcome::Permanent { .. }));
        assert!(c.sink_down.is_some());
    }
    for status in [500, 502, 503] {
        let c = s.classify(&r, &resp(status, &[], "<html>"));
        assert!(matches!(c.outcomes[1], Outcome::Retry { .. }), "{status}");
        assert!(c.sink_down.is_some());
    }
    let c = s.classify(&r, &resp(202, &[], "not even json"));
    assert_eq!(c.outcomes, vec![Outcome::Delivered; 2]);
    // Garbage never panics and always yields one outcome per record.
    for status in [0, 100, 301, 404, 413, 999] {
        for body in ["", "\u{0}", "{\"errors\":[null]}", "[]"] {
            assert_eq!(s.classify(&r, &resp(status, &[], body)).outcomes.len(), 2);
        }
    }
    let c = s.classify_transport_error(
        &r,
        &TransportError {
            kind: TransportErrorKind::Connect,
            message: format!("refused {KEY}"),
        },
    );
    assert_eq!(c.outcomes[0].class(), Some("connect"));
    assert!(!format!("{c:?}").contains(KEY));
    assert_eq!(
        error_detail(br#"{"errors":["a","b"]}"#).as_deref(),
        Some("a; b")
    );
    assert_eq!(error_detail(b"nope"), None);
}

#[test]
fn oversized_events_drop_the_document_not_the_alert() {
    let s = sink();
    let mut r = alert("big", HOST, RULE);
    let mut doc: Value = serde_json::from_slice(&r.payload).unwrap();
    doc["message"] = Value::from("m".repeat(600 * 1024));
    r.payload = doc.to_string().into_bytes();
    let built = s.build(&[r], NOW);
    let req = &built.requests[0];
    assert!(req.body.len() <= MAX_EVENT_BYTES);
    let b = body(req);
    let note = b["payload"]["custom_details"]["event"].as_str().unwrap();
    assert!(note.contains("event document omitted"), "{note}");
    assert!(b["payload"]["summary"].as_str().unwrap().chars().count() <= MAX_SUMMARY_CHARS);
}

#[test]
fn long_dedup_keys_are_bounded_and_cef_works() {
    let s = sink_with(config(
        json!({"dedup_key": "{secflow.message}{secflow.message}{secflow.message}{secflow.message}"}),
    ));
    let built = s.build(&[alert("e", HOST, RULE)], NOW);
    let key = body(&built.requests[0])["dedup_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key.chars().count(), MAX_DEDUP_KEY_CHARS);
    let cef = SinkRecord {
        event_id: Some("c1".into()),
        tenant: Some("acme-corp".into()),
        event_time_ms: None,
        key: None,
        payload: CEF.as_bytes().to_vec(),
        format: PayloadFormat::Cef,
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    };
    let built = sink().build(&[cef], at(0));
    let r = &built.requests[0];
    let b = body(r);
    assert_eq!(b["dedup_key"], format!("acme-corp:{RULE}:{HOST}"));
    assert_eq!(
        b["payload"]["custom_details"]["event"],
        Value::from(CEF.trim_end())
    );
    assert_eq!(
        b["payload"]["timestamp"], "2025-06-15T15:06:40.000Z",
        "no event time: now"
    );
    assert!(r.header("traceparent").is_some());
}
