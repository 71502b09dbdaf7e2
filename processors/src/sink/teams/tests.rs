#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::*;
use crate::sink::{Outcome, PayloadFormat, RetryAfter};

const FLOW_SOC: &str = "https://prod-05.westeurope.logic.azure.com:443/workflows/0123456789abcdef0123456789abcdef/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SocSignatureSecret0123456789abcdefXYZ";
const FLOW_ACME: &str = "https://prod-05.westeurope.logic.azure.com:443/workflows/fedcba9876543210fedcba9876543210/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AcmeSignatureSecret0123456789abcdefXY";
const ECS: &str = include_str!("../../../tests/golden/process_alert_enriched.ecs.json");

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_741_950_000)
}

fn teams_config(extra: Value) -> TeamsConfig {
    let mut whole = json!({
        "webhooks": {"soc": {"env": "A"}, "acme": {"env": "B"}},
        "channel": "soc",
        "routes": [{"tenants": ["acme"], "channel": "acme"}],
        "links": [{"text": "Open case", "url": "https://soar.example/cases?event={event.id}"}],
    });
    for (k, x) in extra.as_object().unwrap() {
        whole[k] = x.clone();
    }
    serde_json::from_value(whole).unwrap()
}

fn hooks() -> BTreeMap<String, Secret> {
    BTreeMap::from([
        ("soc".to_string(), Secret::new(FLOW_SOC)),
        ("acme".to_string(), Secret::new(FLOW_ACME)),
    ])
}

fn sink(extra: Value) -> TeamsSink {
    TeamsSink::new("teams", teams_config(extra), hooks()).unwrap()
}

fn event(id: &str, tenant: &str, severity: &str, host: &str, rule: &str) -> SinkRecord {
    let doc = json!({
        "event_id": id, "tenant": tenant, "severity": severity,
        "message": format!("{rule} fired on {host}"),
        "host": {"hostname": host},
        "user": {"name": "bob"},
        "rule": {"id": rule, "name": format!("Rule {rule}")},
    });
    SinkRecord {
        event_id: Some(id.to_string()),
        tenant: Some(tenant.to_string()),
        event_time_ms: Some(1_741_950_943_000),
        key: None,
        payload: doc.to_string().into_bytes(),
        format: PayloadFormat::Canonical,
        traceparent: None,
    }
}

fn body_of(r: &HttpRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn resp(status: u16, body: &str, headers: &[(&str, &str)]) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn config_checks() {
    let e = TeamsSink::new("t", teams_config(json!({})), BTreeMap::new()).unwrap_err();
    assert!(e.to_string().contains("at least one"), "{e}");
    let e = TeamsSink::new("t", teams_config(json!({"channel": "nope"})), hooks()).unwrap_err();
    assert!(e.to_string().contains("`nope` names no webhook"), "{e}");
    let bad = BTreeMap::from([
        ("soc".to_string(), Secret::new("ftp://x/SECRETVALUE")),
        ("acme".to_string(), Secret::new(FLOW_ACME)),
    ]);
    let e = TeamsSink::new("t", teams_config(json!({})), bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("webhooks.soc") && !e.contains("SECRETVALUE"),
        "{e}"
    );
    for extra in [
        json!({"message_interval_ms": 10}),
        json!({"summary_lines": 100}),
        json!({"title": "{oops"}),
    ] {
        assert!(
            TeamsSink::new("t", teams_config(extra.clone()), hooks()).is_err(),
            "{extra}"
        );
    }
    assert!(serde_json::from_value::<TeamsConfig>(
        json!({"webhooks": {}, "channel": "a", "card": "hero"})
    )
    .is_err());
}

#[test]
fn an_adaptive_card_per_webhook_with_every_record() {
    let s = sink(json!({}));
    let mut batch = vec![event("c1", "globex", "critical", "db-1", "R9")];
    for i in 0..30 {
        batch.push(event(&format!("h{i}"), "globex", "high", "ws-1", "R1"));
    }
    batch.push(event("a1", "acme", "medium", "acme-1", "R5"));
    let built = s.build(&batch, now());
    assert!(built.rejected.is_empty());
    assert_eq!(built.requests.len(), 2);
    let soc = built.requests.iter().find(|r| r.url == FLOW_SOC).unwrap();
    assert_eq!(soc.records.len(), 31);
    assert_eq!(
        soc.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let b = body_of(soc);
    assert_eq!(b["type"], "message");
    let att = &b["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &att["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    let body = card["body"].as_array().unwrap();
    assert_eq!(body[0]["style"], "attention");
    assert_eq!(body[0]["items"][0]["text"], "Critical: Rule R9");
    let facts: Vec<(String, String)> = body[1]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["title"].as_str().unwrap().into(),
                f["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(facts[0], ("Severity".into(), "Critical".into()));
    assert_eq!(facts[1], ("Host".into(), "db-1".into()));
    assert!(facts.contains(&("Time".into(), "2025-03-14T11:15:43.000Z".into())));
    let texts: Vec<&str> = body.iter().filter_map(|b| b["text"].as_str()).collect();
    assert!(texts.contains(&"R9 fired on db-1"));
    assert!(texts.contains(&"31 events: 1 critical, 30 high"));
    assert!(texts.contains(&"- 30 more high-severity events from host ws-1"));
    assert_eq!(
        *texts.last().unwrap(),
        "secflow · 31 events · event c1 · rule R9"
    );
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(
        card["actions"][0]["url"],
        "https://soar.example/cases?event=c1"
    );

    let acme = built.requests.iter().find(|r| r.url == FLOW_ACME).unwrap();
    let b = body_of(acme);
    assert_eq!(
        b["attachments"][0]["content"]["body"][0]["style"],
        "warning"
    );
    assert_eq!(s.max_concurrency(), Some(1));
    assert_eq!(s.pacing_interval(), Some(Duration::from_millis(1100)));
    let k = s.pacing_key(acme).unwrap();
    assert!(k.starts_with("webhook:") && !k.contains("Acme"));
    assert_ne!(Some(k), s.pacing_key(soc));
    assert!(!format!("{acme:?}").contains("Signature"));
}

#[test]
fn the_message_card_fallback() {
    let s = sink(json!({"card": "message_card"}));
    let batch = vec![
        event("h1", "globex", "high", "ws-1", "R1"),
        event("h2", "globex", "low", "ws-2", "R1"),
    ];
    let built = s.build(&batch, now());
    let b = body_of(&built.requests[0]);
    assert_eq!(b["@type"], "MessageCard");
    assert_eq!(b["@context"], "https://schema.org/extensions");
    assert_eq!(b["themeColor"], "E01E5A");
    assert_eq!(b["summary"], "High: Rule R1");
    let sections = b["sections"].as_array().unwrap();
    assert_eq!(
        sections[0]["facts"][0],
        json!({"name": "Severity", "value": "High"})
    );
    assert!(sections.iter().any(
        |s| s["text"] == "2 events: 1 high, 1 low\n- 1 more low-severity event from host ws-2"
    ));
    assert_eq!(
        sections.last().unwrap()["text"],
        "secflow · 2 events · event h1 · rule R1"
    );
    assert_eq!(b["potentialAction"][0]["@type"], "OpenUri");
    assert_eq!(
        b["potentialAction"][0]["targets"][0]["uri"],
        "https://soar.example/cases?event=h1"
    );
}

#[test]
fn cards_stay_under_the_size_limit() {
    let s = sink(json!({}));
    let long = "y".repeat(100_000);
    let doc = json!({"severity": "high", "message": long, "rule": {"name": long}, "host": {"hostname": long}, "user": {"name": long}});
    let r = SinkRecord {
        payload: doc.to_string().into_bytes(),
        ..event("e", "t", "high", "h", "R")
    };
    let built = s.build(&[r], now());
    assert_eq!(built.requests.len(), 1);
    assert!(built.requests[0].body.len() <= MAX_MESSAGE_BYTES);
}

#[test]
fn ecs_ocsf_and_cef_give_the_same_card_title() {
    let s = sink(json!({}));
    for (payload, format) in [
        (ECS, PayloadFormat::Ecs),
        (
            include_str!("../../../tests/golden/process_alert_enriched.ocsf.json"),
            PayloadFormat::Ocsf,
        ),
        (
            include_str!("../../../tests/golden/process_alert_enriched.cef"),
            PayloadFormat::Cef,
        ),
    ] {
        let r = SinkRecord {
            payload: payload.as_bytes().to_vec(),
            format,
            ..event("e", "t", "high", "h", "R")
        };
        let built = s.build(&[r], now());
        let b = body_of(&built.requests[0]);
        assert_eq!(
            b["attachments"][0]["content"]["body"][0]["items"][0]["text"],
            "High: Suspicious PowerShell launched by Microsoft Office",
            "{format:?}"
        );
    }
}

fn three(s: &TeamsSink) -> HttpRequest {
    let batch: Vec<SinkRecord> = (0..3)
        .map(|i| event(&format!("e{i}"), "globex", "high", "h", "R"))
        .collect();
    s.build(&batch, now()).requests.remove(0)
}

fn only(c: &Classification) -> &Outcome {
    assert_eq!(c.outcomes.len(), 3);
    assert!(c.outcomes.iter().all(|o| o == &c.outcomes[0]));
    &c.outcomes[0]
}

#[test]
fn answers_and_the_errors_hidden_in_a_200() {
    let s = sink(json!({}));
    let req = three(&s);
    assert_eq!(
        *only(&s.classify(&req, &resp(202, "", &[]))),
        Outcome::Delivered
    );
    assert_eq!(
        *only(&s.classify(&req, &resp(200, "1", &[]))),
        Outcome::Delivered
    );
    // The legacy connector wraps Teams' own errors in a 200.
    let wrapped = |n: u16| {
        format!("Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error {n} with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,cv=deadbeef.0..")
    };
    let c = s.classify(&req, &resp(200, &wrapped(429), &[]));
    match only(&c) {
        Outcome::Retry {
            class,
            status,
            message,
            ..
        } => {
            assert_eq!(class, "rate_limited");
            assert_eq!(*status, Some(200));
            assert!(
                message.contains("the connector reports HTTP 429"),
                "{message}"
            );
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(c.sink_down.as_ref().unwrap().status, Some(429));
    assert_eq!(
        only(&s.classify(&req, &resp(200, &wrapped(400), &[]))).class(),
        Some("rejected")
    );
    assert!(s.classify(&req, &resp(200, &wrapped(413), &[])).split);
    assert_eq!(
        only(&s.classify(&req, &resp(200, &wrapped(502), &[]))).class(),
        Some("server_error")
    );
    assert_eq!(
        only(&s.classify(&req, &resp(200, "Webhook message delivery failed with error: Error contacting Microsoft Teams endpoint", &[]))).class(),
        Some("delivery_failed")
    );
    assert_eq!(embedded(b"1"), Embedded::Fine);
    assert_eq!(embedded(&wrapped(404).into_bytes()), Embedded::Status(404));

    // Workflows errors.
    let flow =
        |code: &str| json!({"error": {"code": code, "message": "The request failed."}}).to_string();
    let c = s.classify(&req, &resp(400, &flow("InvalidRequestContent"), &[]));
    match only(&c) {
        Outcome::Permanent { class, message, .. } => {
            assert_eq!(class, "rejected");
            assert!(
                message.contains("InvalidRequestContent: The request failed."),
                "{message}"
            );
        }
        o => panic!("{o:?}"),
    }
    assert!(c.sink_down.is_none());
    for (status, class) in [(401, "auth"), (403, "auth"), (404, "webhook_not_found")] {
        let c = s.classify(
            &req,
            &resp(status, &flow("DirectApiAuthorizationRequired"), &[]),
        );
        assert_eq!(only(&c).class(), Some(class));
        assert!(matches!(only(&c), Outcome::Permanent { .. }));
        assert!(
            c.sink_down.is_none(),
            "two webhooks: only this channel is affected"
        );
        match only(&c) {
            Outcome::Permanent { message, .. } => assert!(message.contains("webhook `soc`")),
            o => panic!("{o:?}"),
        }
    }
    let c = s.classify(
        &req,
        &resp(
            429,
            &flow("WorkflowRequestsThrottled"),
            &[("Retry-After", "4")],
        ),
    );
    assert!(
        matches!(only(&c), Outcome::Retry { retry_after: Some(RetryAfter::Delay(d)), .. } if *d == Duration::from_secs(4))
    );
    assert!(c.sink_down.is_some());
    assert_eq!(
        only(&s.classify(&req, &resp(503, "", &[]))).class(),
        Some("server_error")
    );
    assert!(s.classify(&req, &resp(413, "", &[])).split);
    let one = s
        .build(&[event("x", "globex", "high", "h", "R")], now())
        .requests
        .remove(0);
    let c = s.classify(&one, &resp(413, "", &[]));
    assert!(!c.split);
    assert_eq!(c.outcomes[0].class(), Some("payload_too_large"));

    // One webhook: a dead webhook is a dead sink.
    let single = TeamsSink::new(
        "teams",
        teams_config(json!({"routes": [], "webhooks": {"soc": {"env": "A"}}})),
        BTreeMap::from([("soc".to_string(), Secret::new(FLOW_SOC))]),
    )
    .unwrap();
    for status in [401, 403, 404] {
        let c = single.classify(&req, &resp(status, "", &[]));
        assert_eq!(c.sink_down.as_ref().unwrap().status, Some(status));
    }
}

#[test]
fn secrets_are_redacted() {
    let s = sink(json!({}));
    let text = format!("POST {FLOW_SOC} failed; sig SocSignatureSecret0123456789abcdefXYZ");
    let red = s.redact(&text);
    assert!(!red.contains("SocSignatureSecret"), "{red}");
    assert!(!red.contains("0123456789abcdef0123456789abcdef"), "{red}");
    let req = three(&s);
    let c = s.classify(
        &req,
        &resp(400, &format!("bad request for {FLOW_SOC}"), &[]),
    );
    match only(&c) {
        Outcome::Permanent { message, .. } => {
            assert!(!message.contains("SocSignature"), "{message}")
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn below_threshold_is_suppressed() {
    let s = sink(json!({"min_severity": "high"}));
    let built = s.build(
        &[
            event("l", "t", "low", "h", "R"),
            event("h", "t", "high", "h", "R"),
        ],
        now(),
    );
    assert_eq!(
        built.rejected,
        vec![(0, Outcome::suppressed("below_min_severity"))]
    );
    assert_eq!(built.requests[0].records, vec![1]);
}
