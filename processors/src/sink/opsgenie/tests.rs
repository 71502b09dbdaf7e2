//! Unit tests of the OpsGenie sink: alert shape and limits, priorities, responders by route,
//! dedup by alias, closes (by event and by quiet window), heartbeats, classification, state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::*;
use crate::sink::event_fields::Severity;
use crate::sink::{
    HttpResponse, Method, Outcome, PayloadFormat, Sink, SinkRecord, TransportError,
    TransportErrorKind,
};

const ECS: &str = include_str!("../../../tests/golden/process_alert_enriched.ecs.json");
const KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";
const RULE: &str = "c9f8a2d1-7e3b-4c5a-9d0e-1f2a3b4c5d6e";
const HOST: &str = "ws-fin-042.corp.example.com";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000 + secs)
}

fn config(extra: Value) -> OpsGenieConfig {
    let mut base = json!({"api_key": {"env": "OG_KEY"}, "endpoint": "http://127.0.0.1:9"});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn sink_with(c: OpsGenieConfig) -> OpsGenieSink {
    OpsGenieSink::new("og", c, Secret::new(KEY)).unwrap()
}

fn sink() -> OpsGenieSink {
    sink_with(config(json!({
        "responders": [{"team": "SOC"}],
        "routes": [{"name": "beta", "tenants": ["beta"], "responders": [{"team": "Beta SOC"}, {"user": "oncall@beta.example"}]}],
        "details": {"process": "{process.name}"},
        "user": "secflow",
        "heartbeat": {"name": "secflow-prod", "interval_secs": 30},
    })))
}

fn alert(id: &str, host: &str) -> SinkRecord {
    let mut doc: Value = serde_json::from_str(ECS).unwrap();
    doc["event"]["id"] = Value::from(id);
    doc["host"]["name"] = Value::from(host);
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

fn edit(mut r: SinkRecord, f: impl FnOnce(&mut Value)) -> SinkRecord {
    let mut doc: Value = serde_json::from_slice(&r.payload).unwrap();
    f(&mut doc);
    r.payload = doc.to_string().into_bytes();
    r
}

fn body(r: &HttpRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn resp(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

const ACCEPTED: &str = r#"{"result":"Request will be processed","took":0.107,"requestId":"43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}"#;

fn accept(s: &OpsGenieSink, r: &HttpRequest) {
    let c = s.classify(r, &resp(202, ACCEPTED));
    assert!(c.outcomes.iter().all(|o| *o == Outcome::Delivered));
}

#[test]
fn config_defaults_regions_and_unknown_keys() {
    let c: OpsGenieConfig = serde_yaml_ng::from_str("api_key: {env: OG}\n").unwrap();
    assert_eq!(c.region, OpsGenieRegion::Us);
    assert_eq!(c.min_severity, Severity::High);
    assert_eq!(c.tags.len(), 3);
    assert!(c.heartbeat.is_none());
    let s = OpsGenieSink::new("og", c, Secret::new(KEY)).unwrap();
    assert_eq!(s.base_url(), "https://api.opsgenie.com");
    let c: OpsGenieConfig =
        serde_yaml_ng::from_str("api_key: {env: OG}\nregion: eu\nheartbeat: {name: hb}\n").unwrap();
    assert_eq!(c.heartbeat.as_ref().unwrap().interval_secs, 60);
    let s = OpsGenieSink::new("og", c, Secret::new(KEY)).unwrap();
    assert_eq!(s.base_url(), "https://api.eu.opsgenie.com");
    assert_eq!(s.max_concurrency(), Some(1));
    for bad in [
        "api_key: {env: OG}\nregion: apac\n",
        "api_key: {env: OG}\npriority: P1\n",
        "api_key: {env: OG}\nresponders: [{squad: x}]\n",
        "api_key: raw\n",
    ] {
        assert!(
            serde_yaml_ng::from_str::<OpsGenieConfig>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn construction_refuses_what_cannot_work() {
    for extra in [
        json!({"endpoint": "api.opsgenie.com"}),
        json!({"endpoint": "http://sim/v2/alerts"}),
        json!({"alias": "constant"}),
        json!({"message": "{oops"}),
        json!({"auto_close_after_secs": 0}),
        json!({"heartbeat": {"name": " "}}),
        json!({"heartbeat": {"name": "hb", "interval_secs": 0}}),
        json!({"tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
        json!({"responders": [{"team": "a", "user": "b"}]}),
        json!({"responders": [{}]}),
        json!({"responders": [{"team": ""}]}),
        json!({"routes": [{"name": "r", "responders": [{"team": "a"}]}]}),
        json!({"routes": [{"name": "r", "tenants": ["t"], "responders": []}]}),
        json!({"details": {"": "x"}}),
    ] {
        let e = OpsGenieSink::new("og", config(extra.clone()), Secret::new(KEY)).unwrap_err();
        assert!(matches!(e, SinkError::Config(_)), "{extra}");
    }
}

#[test]
fn an_alert_carries_what_the_responder_needs_within_limits() {
    let s = sink();
    let built = s.build(&[alert("e1", HOST)], at(0));
    assert!(built.rejected.is_empty());
    let r = &built.requests[0];
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.url, "http://127.0.0.1:9/v2/alerts");
    assert_eq!(
        r.header("authorization"),
        Some(format!("GenieKey {KEY}").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let b = body(r);
    assert_eq!(b["alias"], format!("acme-corp:{RULE}:{HOST}"));
    let message = b["message"].as_str().unwrap();
    assert!(message.chars().count() <= 130);
    assert!(
        message.starts_with("Suspicious PowerShell launched by Microsoft Office on ws-fin"),
        "{message}"
    );
    assert!(b["description"]
        .as_str()
        .unwrap()
        .starts_with("Office application spawned"));
    assert_eq!(b["priority"], "P2", "high → P2");
    assert_eq!(b["responders"], json!([{"type": "team", "name": "SOC"}]));
    assert_eq!(
        b["tags"],
        json!(["secflow", "severity:high", "tenant:acme-corp"])
    );
    assert_eq!(b["entity"], HOST);
    assert_eq!(b["source"], "secflow");
    assert_eq!(b["user"], "secflow");
    let d = b["details"].as_object().unwrap();
    assert!(
        d.values().all(Value::is_string),
        "OpsGenie details are strings"
    );
    assert_eq!(d["event_id"], "e1");
    assert_eq!(d["rule_id"], RULE);
    assert_eq!(d["process"], "powershell.exe");
    assert_eq!(d["occurrences"], "1");
    let event: Value = serde_json::from_str(d["event"].as_str().unwrap()).unwrap();
    assert_eq!(event["event"]["id"], "e1");
    let total: usize = d
        .iter()
        .map(|(k, v)| k.chars().count() + v.as_str().unwrap().chars().count())
        .sum();
    assert!(total <= MAX_DETAILS_CHARS, "{total}");
    assert!(!format!("{r:?}").contains(KEY));
}

#[test]
fn long_texts_are_cut_on_character_boundaries() {
    let s = sink_with(config(
        json!({"message": "{secflow.message}", "tags": ["{secflow.message}"]}),
    ));
    let r = edit(alert("e", HOST), |d| {
        d["message"] = Value::from("é🙂".repeat(200));
        d["rule"]["name"] = Value::from("x");
    });
    let b = body(&s.build(&[r], at(0)).requests[0]);
    let m = b["message"].as_str().unwrap();
    assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS);
    assert!(m.ends_with('…'));
    assert_eq!(
        b["tags"][0].as_str().unwrap().chars().count(),
        MAX_TAG_CHARS
    );
    // A big event does not fit the details: a note says so.
    let big = edit(alert("big", HOST), |d| {
        d["padding"] = Value::from("p".repeat(9000))
    });
    let b = body(&s.build(&[big], at(0)).requests[0]);
    assert!(b["details"].get("event").is_none());
    assert!(b["details"]["event_omitted"]
        .as_str()
        .unwrap()
        .contains("characters"));
}

#[test]
fn priorities_threshold_and_routes() {
    assert_eq!(
        [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info
        ]
        .map(priority),
        ["P1", "P2", "P3", "P4", "P5"]
    );
    let s = sink_with(config(json!({
        "min_severity": "low",
        "responders": [{"team": "SOC"}],
        "routes": [{"name": "beta", "tenants": ["beta"], "responders": [{"team": "Beta"}, {"user": "a@b.example"}, {"escalation": "esc"}, {"schedule": "sch"}]}],
    })));
    let mut beta = edit(alert("b", "h2"), |d| {
        d["event"]["severity"] = Value::from(99)
    });
    beta.tenant = Some("beta".into());
    let batch = vec![
        edit(alert("a", "h1"), |d| {
            d["event"]["severity"] = Value::from(21)
        }),
        beta,
        edit(alert("c", "h3"), |d| {
            d["event"]["severity"] = Value::from(1)
        }),
    ];
    let built = s.build(&batch, at(0));
    assert_eq!(
        built.rejected,
        vec![(2, Outcome::suppressed("below_min_severity"))]
    );
    let b0 = body(&built.requests[0]);
    let b1 = body(&built.requests[1]);
    assert_eq!(b0["priority"], "P4");
    assert_eq!(b1["priority"], "P1");
    assert_eq!(b0["responders"], json!([{"type": "team", "name": "SOC"}]));
    assert_eq!(
        b1["responders"],
        json!([
            {"type": "team", "name": "Beta"},
            {"type": "user", "username": "a@b.example"},
            {"type": "escalation", "name": "esc"},
            {"type": "schedule", "name": "sch"},
        ])
    );
}

#[test]
fn one_create_per_alias_then_suppression_and_close_by_alias() {
    let s = sink();
    let built = s.build(&[alert("e1", HOST), alert("e2", HOST)], at(0));
    assert_eq!(built.requests.len(), 1);
    assert_eq!(built.requests[0].records, vec![0, 1]);
    // Not open until OpsGenie accepted it.
    let c = s.classify(
        &built.requests[0],
        &resp(
            429,
            r#"{"message":"Rate limit exceeded","took":0.0,"requestId":"x"}"#,
        ),
    );
    assert_eq!(c.outcomes[0].class(), Some("rate_limited"));
    assert!(s.incidents().open().is_empty());
    accept(&s, &built.requests[0]);
    let later = s.build(&[alert("e3", HOST)], at(10));
    assert_eq!(
        later.rejected,
        vec![(0, Outcome::suppressed("incident_open"))]
    );
    // A resolution closes it by alias, whatever its severity.
    let res = edit(alert("e4", HOST), |d| {
        d["labels"]["secflow_status"] = Value::from("resolved");
        d["event"]["severity"] = Value::from(1);
    });
    let close = s.build(&[res], at(20)).requests.remove(0);
    let alias = format!("acme-corp:{RULE}:{HOST}");
    assert_eq!(
        close.url,
        format!(
            "http://127.0.0.1:9/v2/alerts/{}/close?identifierType=alias",
            crate::sink::alerting::percent_encode(&alias)
        )
    );
    assert!(close.url.contains("acme-corp%3Ac9f8"));
    let b = body(&close);
    assert_eq!(b["source"], "secflow");
    assert_eq!(b["note"], "Closed by secflow: resolution event e4");
    accept(&s, &close);
    assert!(s.incidents().open().is_empty());
}

#[test]
fn the_tick_closes_quiet_alerts_and_pings_only_while_healthy() {
    let s = sink_with(config(
        json!({"auto_close_after_secs": 120, "heartbeat": {"name": "secflow prod", "interval_secs": 10}}),
    ));
    assert_eq!(s.tick_interval(), Some(Duration::from_secs(10)));
    let ping_url = "http://127.0.0.1:9/v2/heartbeats/secflow%20prod/ping";
    let t = s.tick(at(0), true);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].url, ping_url);
    assert_eq!(
        t[0].header("authorization"),
        Some(format!("GenieKey {KEY}").as_str())
    );
    s.tick_done(
        &t[0],
        Ok(&resp(
            202,
            r#"{"result":"PONG - Heartbeat received","took":0.006,"requestId":"r"}"#,
        )),
        at(0),
    );
    assert!(s.tick(at(5), true).is_empty(), "not due yet");
    assert!(
        s.tick(at(10), false).is_empty(),
        "no ping while the sink fails"
    );
    assert!(s.tick(at(20), false).is_empty());
    let t = s.tick(at(21), true);
    assert_eq!(t.len(), 1, "pings resume with health");
    // A failed ping is sent again at the next tick.
    s.tick_done(
        &t[0],
        Err(&TransportError {
            kind: TransportErrorKind::Connect,
            message: "refused".into(),
        }),
        at(21),
    );
    assert_eq!(s.tick(at(22), true).len(), 1);

    accept(&s, &s.build(&[alert("e1", HOST)], at(100)).requests[0]);
    let t = s.tick(at(230), true);
    let closes: Vec<&HttpRequest> = t.iter().filter(|r| r.url.contains("/close")).collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(
        body(closes[0])["note"],
        "Closed by secflow: no recurrence for 120 s"
    );
    s.tick_done(closes[0], Ok(&resp(503, "")), at(231));
    assert_eq!(s.incidents().open().len(), 1, "kept after a failure");
    let t = s.tick(at(232), true);
    let close = t.iter().find(|r| r.url.contains("/close")).unwrap();
    s.tick_done(close, Ok(&resp(202, ACCEPTED)), at(233));
    assert!(s.incidents().open().is_empty());
}

#[test]
fn opsgenie_answers_are_classified() {
    let s = sink();
    let r = s
        .build(&[alert("e1", HOST), alert("e2", HOST)], at(0))
        .requests
        .remove(0);
    let c = s.classify(&r, &resp(422, r#"{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty."},"took":0.001,"requestId":"r"}"#));
    match &c.outcomes[1] {
        Outcome::Permanent {
            class,
            status,
            message,
        } => {
            assert_eq!((class.as_str(), *status), ("invalid_alert", Some(422)));
            assert!(
                message.contains("Please check the errors. (message: Message can not be empty.)"),
                "{message}"
            );
        }
        o => panic!("{o:?}"),
    }
    assert!(c.sink_down.is_none());
    let c = s.classify(
        &r,
        &resp(
            400,
            r#"{"message":"Could not parse the request body","took":0.0,"requestId":"r"}"#,
        ),
    );
    assert_eq!(c.outcomes[0].class(), Some("invalid_alert"));
    for status in [401, 403] {
        let c = s.classify(
            &r,
            &resp(
                status,
                &format!(
                    r#"{{"message":"Could not authenticate {KEY}","took":0.0,"requestId":"r"}}"#
                ),
            ),
        );
        assert_eq!(c.outcomes[0].class(), Some("auth"));
        let down = c.sink_down.unwrap();
        assert!(!down.message.contains(KEY));
    }
    for status in [429, 500, 503] {
        let c = s.classify(&r, &resp(status, ""));
        assert!(matches!(c.outcomes[0], Outcome::Retry { .. }), "{status}");
        assert!(c.sink_down.is_some());
    }
    for status in [0, 100, 301, 404, 413, 999] {
        for body in ["", "\u{0}", "{\"errors\":[1]}", "[]"] {
            assert_eq!(s.classify(&r, &resp(status, body)).outcomes.len(), 2);
        }
    }
    assert_eq!(
        error_detail(br#"{"errors":{"a":1}}"#).as_deref(),
        Some("a: 1")
    );
    assert_eq!(error_detail(b"{}"), None);
    let c = s.classify_transport_error(
        &r,
        &TransportError {
            kind: TransportErrorKind::Timeout,
            message: format!("GenieKey {KEY}"),
        },
    );
    assert!(!format!("{c:?}").contains(KEY));
}

#[test]
fn a_restart_with_saved_state_does_not_create_again() {
    let s = sink();
    accept(&s, &s.build(&[alert("e1", HOST)], at(0)).requests[0]);
    let restarted = sink();
    restarted.restore(&s.snapshot().unwrap()).unwrap();
    let built = restarted.build(&[alert("e2", HOST)], at(1));
    assert!(built.requests.is_empty());
    assert_eq!(
        built.rejected,
        vec![(0, Outcome::suppressed("incident_open"))]
    );
}
