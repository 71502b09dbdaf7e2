#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::*;
use crate::sink::{Outcome, PayloadFormat, RetryAfter, TransportErrorKind};

const TOKEN: &str = "xoxb-1111-2222-SECRETtokenVALUE";
const HOOK_SOC: &str = "https://hooks.slack.com/services/T0001/B0001/SocWebhookSecret123";
const HOOK_ACME: &str = "https://hooks.slack.com/services/T0001/B0002/AcmeWebhookSecret45";
const ECS: &str = include_str!("../../../tests/golden/process_alert_enriched.ecs.json");

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_741_950_000)
}

fn config(extra: Value) -> SlackConfig {
    let mut v = json!({"channel": "#soc"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

/// API mode: #soc by default, acme's high-and-above to #acme, critical to #war-room; `extra`
/// replaces top-level keys.
fn api_config(extra: Value) -> SlackConfig {
    let mut whole = json!({
        "token": {"env": "SLACK_TOKEN"},
        "api_url": "https://slack.example/api/",
        "channel": "#soc",
        "routes": [
            {"tenants": ["acme"], "min_severity": "high", "channel": "#acme"},
            {"min_severity": "critical", "channel": "#war-room"},
        ],
        "links": [{"text": "Open in Kibana", "url": "https://kibana.example/app/security?id={event.id}"}],
    });
    for (k, x) in extra.as_object().unwrap() {
        whole[k] = x.clone();
    }
    serde_json::from_value(whole).unwrap()
}

fn token_secrets() -> SlackSecrets {
    SlackSecrets {
        token: Some(Secret::new(TOKEN)),
        webhooks: BTreeMap::new(),
    }
}

fn api_sink(extra: Value) -> SlackSink {
    SlackSink::new("slack", api_config(extra), token_secrets()).unwrap()
}

fn webhook_secrets() -> SlackSecrets {
    SlackSecrets {
        token: None,
        webhooks: BTreeMap::from([
            ("soc".to_string(), Secret::new(HOOK_SOC)),
            ("acme".to_string(), Secret::new(HOOK_ACME)),
        ]),
    }
}

fn webhook_sink() -> SlackSink {
    let c = config(json!({
        "channel": "soc",
        "webhooks": {"soc": {"env": "A"}, "acme": {"env": "B"}},
        "routes": [{"tenants": ["acme"], "channel": "acme"}],
    }));
    SlackSink::new("slack", c, webhook_secrets()).unwrap()
}

fn event(id: &str, tenant: &str, severity: &str, host: &str, rule: &str) -> SinkRecord {
    let doc = json!({
        "event_id": id, "tenant": tenant, "severity": severity,
        "message": format!("{rule} fired on {host} <script>&"),
        "host": {"hostname": host},
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

fn ok(ts: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![],
        body: json!({"ok": true, "channel": "C0SOC", "ts": ts})
            .to_string()
            .into_bytes(),
    }
}

fn api_error(code: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![],
        body: json!({"ok": false, "error": code}).to_string().into_bytes(),
    }
}

fn text_resp(status: u16, body: &str, headers: &[(&str, &str)]) -> HttpResponse {
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
fn config_needs_exactly_one_way_to_post_and_known_channels() {
    let none = SlackSink::new("s", config(json!({})), SlackSecrets::default());
    assert!(none.unwrap_err().to_string().contains("exactly one"));
    let both = SlackSecrets {
        token: Some(Secret::new(TOKEN)),
        ..webhook_secrets()
    };
    assert!(SlackSink::new("s", config(json!({})), both).is_err());
    // A route naming no webhook.
    let c = config(json!({"channel": "soc", "routes": [{"channel": "nope"}]}));
    let e = SlackSink::new("s", c, webhook_secrets())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`nope` names no webhook"), "{e}");
    // A webhook that is not a URL: the message does not show it.
    let c = config(json!({"channel": "soc"}));
    let secrets = SlackSecrets {
        token: None,
        webhooks: BTreeMap::from([("soc".to_string(), Secret::new("not-a-url-SECRET"))]),
    };
    let e = SlackSink::new("s", c, secrets).unwrap_err().to_string();
    assert!(e.contains("webhooks.soc") && !e.contains("SECRET"), "{e}");
    // Limits.
    for bad in [
        json!({"message_interval_ms": 500}),
        json!({"summary_lines": 50}),
        json!({"title": "{"}),
        json!({"dedup_key": "{}"}),
        json!({"links": [{"text": "x", "url": "javascript:alert(1)"}]}),
        json!({"api_url": "slack.com/api"}),
        json!({"channel": " "}),
    ] {
        assert!(
            SlackSink::new("s", api_config(bad.clone()), token_secrets()).is_err(),
            "{bad}"
        );
    }
    assert!(serde_json::from_value::<SlackConfig>(json!({"channel": "#a", "colour": 1})).is_err());
}

#[test]
fn api_mode_builds_one_message_per_channel_with_every_record() {
    let sink = api_sink(json!({}));
    let mut batch = vec![event("crit-1", "globex", "critical", "db-1", "R9")];
    for i in 0..37 {
        batch.push(event(&format!("h-{i}"), "globex", "high", "ws-1", "R1"));
    }
    batch.push(event("acme-1", "acme", "high", "acme-ws", "R2"));
    batch.push(event("low-1", "globex", "low", "ws-2", "R3"));
    let built = sink.build(&batch, now());
    assert!(built.rejected.is_empty());
    assert_eq!(built.requests.len(), 3, "war-room, soc, acme");
    let mut covered: Vec<usize> = built
        .requests
        .iter()
        .flat_map(|r| r.records.clone())
        .collect();
    covered.sort_unstable();
    assert_eq!(covered, (0..batch.len()).collect::<Vec<_>>());

    let by_channel: BTreeMap<String, &HttpRequest> = built
        .requests
        .iter()
        .map(|r| (body_of(r)["channel"].as_str().unwrap().to_string(), r))
        .collect();
    let soc = by_channel["#soc"];
    assert_eq!(soc.url, "https://slack.example/api/chat.postMessage");
    assert_eq!(
        soc.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        soc.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(soc.records.len(), 38);
    let b = body_of(soc);
    assert_eq!(b["text"], "[HIGH] Rule R1 on ws-1 (+37 more)");
    assert!(b.get("thread_ts").is_none());
    let header = b["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(header, ":large_orange_circle: High: Rule R1");
    let att = &b["attachments"][0];
    assert_eq!(att["color"], "#E01E5A");
    let blocks = att["blocks"].as_array().unwrap();
    let fields: Vec<&str> = blocks[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(fields[0], "*Severity*\nHigh");
    assert_eq!(fields[1], "*Host*\nws-1");
    assert!(fields.contains(&"*Tenant*\nglobex"));
    let time = fields.iter().find(|f| f.starts_with("*Time*")).unwrap();
    assert!(
        time.contains("<!date^1741950943^") && time.contains("|2025-03-14T11:15:43.000Z>"),
        "{time}"
    );
    // The event's message is escaped for mrkdwn.
    assert_eq!(
        blocks[1]["text"]["text"],
        "R1 fired on ws-1 &lt;script&gt;&amp;"
    );
    let summary = blocks[2]["text"]["text"].as_str().unwrap();
    assert_eq!(
        summary,
        "*38 events: 37 high, 1 low*\n• 36 more high-severity events from host ws-1\n• 1 more low-severity event from host ws-2"
    );
    assert_eq!(blocks[3]["type"], "actions");
    assert_eq!(
        blocks[3]["elements"][0]["url"],
        "https://kibana.example/app/security?id=h-0"
    );
    assert_eq!(
        blocks[4]["elements"][0]["text"],
        "secflow · 38 events · event h-0 · rule R1"
    );

    let war = body_of(by_channel["#war-room"]);
    assert_eq!(war["attachments"][0]["color"], "#8B0000");
    assert_eq!(war["text"], "[CRITICAL] Rule R9 on db-1");
    assert_eq!(
        war["attachments"][0]["blocks"].as_array().unwrap().len(),
        4,
        "fields, message, links, context: no summary for one event"
    );
    assert_eq!(sink.max_concurrency(), Some(1));
    assert_eq!(sink.pacing_interval(), Some(Duration::from_millis(1100)));
    assert_eq!(sink.pacing_key(soc).as_deref(), Some("channel:#soc"));
}

#[test]
fn values_are_clipped_to_block_kit_limits() {
    let sink = api_sink(json!({}));
    let long = "x".repeat(10_000);
    let doc = json!({"severity": "high", "message": long, "rule": {"name": long}, "host": {"hostname": long}});
    let r = SinkRecord {
        payload: doc.to_string().into_bytes(),
        ..event("e", "t", "high", "h", "R")
    };
    let built = sink.build(&[r], now());
    let b = body_of(&built.requests[0]);
    assert!(
        b["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= 150
    );
    assert!(b["text"].as_str().unwrap().chars().count() <= 3000);
    for block in b["attachments"][0]["blocks"].as_array().unwrap() {
        if let Some(t) = block["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000);
        }
        for f in block["fields"].as_array().into_iter().flatten() {
            assert!(f["text"].as_str().unwrap().chars().count() <= 2000);
        }
    }
}

#[test]
fn below_threshold_and_unreadable_records_finish_without_a_message() {
    let sink = api_sink(json!({"min_severity": "medium"}));
    let batch = vec![
        event("i", "t", "info", "h", "R"),
        SinkRecord {
            payload: b"{broken".to_vec(),
            ..event("x", "t", "high", "h", "R")
        },
        event("m", "t", "medium", "h", "R"),
    ];
    let built = sink.build(&batch, now());
    assert_eq!(built.requests.len(), 1);
    assert_eq!(built.requests[0].records, vec![2]);
    assert_eq!(built.rejected.len(), 2);
    assert_eq!(
        built.rejected[0],
        (0, Outcome::suppressed("below_min_severity"))
    );
    assert_eq!(built.rejected[1].1.class(), Some("invalid_payload"));
}

#[test]
fn webhook_mode_posts_to_the_channels_url_without_channel_or_thread() {
    let sink = webhook_sink();
    let batch = vec![
        event("a", "acme", "high", "h1", "R1"),
        event("g", "globex", "low", "h2", "R2"),
    ];
    let built = sink.build(&batch, now());
    assert_eq!(built.requests.len(), 2);
    let acme = built.requests.iter().find(|r| r.url == HOOK_ACME).unwrap();
    assert_eq!(acme.records, vec![0]);
    assert!(acme.header("authorization").is_none());
    let b = body_of(acme);
    assert!(b.get("channel").is_none() && b.get("thread_ts").is_none());
    let key = sink.pacing_key(acme).unwrap();
    assert!(
        key.starts_with("webhook:") && !key.contains("Acme"),
        "{key}"
    );
    assert_ne!(
        key,
        sink.pacing_key(built.requests.iter().find(|r| r.url == HOOK_SOC).unwrap())
            .unwrap()
    );
    assert_eq!(sink.snapshot(), None, "no threads with webhooks");
    assert!(sink.health_probe().is_none());
    // Secrets are redacted from any message, whole or by their secret part.
    let red = sink.redact(&format!("failed {HOOK_SOC} and AcmeWebhookSecret45"));
    assert!(!red.contains("SocWebhookSecret123") && !red.contains("AcmeWebhookSecret45"));
    assert!(!format!("{acme:?}").contains("Acme"));
}

#[test]
fn threads_group_later_messages_by_dedup_key_within_the_ttl() {
    let sink = api_sink(json!({"thread_ttl_secs": 3600}));
    let t0 = now();
    let first = sink.build(&[event("a1", "t", "high", "ws-1", "R1")], t0);
    let req = &first.requests[0];
    assert!(body_of(req).get("thread_ts").is_none());
    assert_eq!(
        sink.classify(req, &ok("1741950000.000100")).outcomes,
        vec![Outcome::Delivered]
    );
    // Same key, later batch: a reply in the thread; the summary's other keys join it too.
    let second = sink.build(
        &[
            event("a2", "t", "high", "ws-1", "R1"),
            event("b1", "t", "medium", "ws-2", "R2"),
        ],
        t0 + Duration::from_secs(60),
    );
    let req = &second.requests[0];
    assert_eq!(body_of(req)["thread_ts"], "1741950000.000100");
    sink.classify(req, &ok("1741950060.000200"));
    let threads = sink.threads();
    let now_ms = 1_741_950_060_000;
    assert_eq!(
        threads.live("#soc", "R1:ws-1", now_ms),
        Some("1741950000.000100")
    );
    assert_eq!(
        threads.live("#soc", "R2:ws-2", now_ms),
        Some("1741950000.000100"),
        "keys first seen in a reply join that reply's parent thread"
    );
    // Another key: top-level. Another channel, same key: its own thread.
    let third = sink.build(
        &[event("c1", "t", "high", "ws-9", "R1")],
        t0 + Duration::from_secs(61),
    );
    assert!(body_of(&third.requests[0]).get("thread_ts").is_none());
    // After the TTL: a new thread.
    let late = sink.build(
        &[event("a3", "t", "high", "ws-1", "R1")],
        t0 + Duration::from_secs(3601),
    );
    assert!(body_of(&late.requests[0]).get("thread_ts").is_none());
}

#[test]
fn thread_state_survives_a_restart_and_a_gone_thread_is_forgotten() {
    let sink = api_sink(json!({}));
    let t0 = now();
    let first = sink.build(&[event("a1", "t", "high", "ws-1", "R1")], t0);
    sink.classify(&first.requests[0], &ok("1741950000.000100"));
    let saved = sink.snapshot().unwrap();
    let v: Value = serde_json::from_slice(&saved).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["threads"][0]["key"], "R1:ws-1");
    assert_eq!(v["threads"][0]["channel"], "#soc");

    let restarted = api_sink(json!({}));
    restarted.restore(&saved).unwrap();
    let again = restarted.build(
        &[event("a2", "t", "high", "ws-1", "R1")],
        t0 + Duration::from_secs(5),
    );
    let req = &again.requests[0];
    assert_eq!(body_of(req)["thread_ts"], "1741950000.000100");
    // Slack says the parent is gone: retried top-level.
    let c = restarted.classify(req, &api_error("thread_not_found"));
    assert_eq!(c.outcomes[0].class(), Some("thread_gone"));
    assert!(matches!(c.outcomes[0], Outcome::Retry { .. }));
    assert!(c.sink_down.is_none());
    let retry = restarted.build(
        &[event("a2", "t", "high", "ws-1", "R1")],
        t0 + Duration::from_secs(6),
    );
    assert!(body_of(&retry.requests[0]).get("thread_ts").is_none());
    assert!(restarted.restore(b"not json").is_err());
    assert!(restarted.restore(br#"{"version":9,"threads":[]}"#).is_err());
    // Threads off: no state.
    assert_eq!(api_sink(json!({"thread_ttl_secs": 0})).snapshot(), None);
}

#[test]
fn a_failed_post_starts_no_thread() {
    let sink = api_sink(json!({}));
    let first = sink.build(&[event("a1", "t", "high", "ws-1", "R1")], now());
    sink.classify(&first.requests[0], &text_resp(503, "", &[]));
    let e = crate::sink::TransportError {
        kind: TransportErrorKind::Timeout,
        message: "timed out".into(),
    };
    let c = sink.classify_transport_error(&first.requests[0], &e);
    assert!(c.sink_down.is_some());
    assert!(sink.threads().is_empty());
}

fn only(c: &Classification) -> &Outcome {
    assert_eq!(c.outcomes.len(), 3);
    assert!(c.outcomes.iter().all(|o| o == &c.outcomes[0]));
    &c.outcomes[0]
}

fn three_record_request(sink: &SlackSink) -> HttpRequest {
    let batch: Vec<SinkRecord> = (0..3)
        .map(|i| event(&format!("e{i}"), "t", "high", "h", "R"))
        .collect();
    sink.build(&batch, now()).requests.remove(0)
}

#[test]
fn api_answers_are_read_from_the_json_body() {
    let sink = api_sink(json!({}));
    let req = three_record_request(&sink);
    assert_eq!(*only(&sink.classify(&req, &ok("1.2"))), Outcome::Delivered);

    // Rate limits: Retry-After honoured (1 s when only the body says so), the sink is down.
    let c = sink.classify(
        &req,
        &text_resp(
            429,
            r#"{"ok":false,"error":"ratelimited"}"#,
            &[("Retry-After", "3")],
        ),
    );
    match only(&c) {
        Outcome::Retry {
            class, retry_after, ..
        } => {
            assert_eq!(class, "rate_limited");
            assert_eq!(
                *retry_after,
                Some(RetryAfter::Delay(Duration::from_secs(3)))
            );
        }
        o => panic!("{o:?}"),
    }
    assert!(c.sink_down.is_some());
    let c = sink.classify(&req, &api_error("ratelimited"));
    assert!(
        matches!(only(&c), Outcome::Retry { retry_after: Some(RetryAfter::Delay(d)), .. } if *d == Duration::from_secs(1))
    );

    // Auth: permanent, down, and the breaker sees a credentials refusal.
    for code in [
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
    ] {
        let c = sink.classify(&req, &api_error(code));
        let o = only(&c);
        assert_eq!(o.class(), Some("auth"), "{code}");
        assert!(
            matches!(
                o,
                Outcome::Permanent {
                    status: Some(200),
                    ..
                }
            ),
            "{code}"
        );
        let down = c.sink_down.as_ref().unwrap();
        assert_eq!(down.status, Some(403), "{code}");
        assert!(down.message.contains(code));
    }
    // Channel errors: permanent; not down while other channels exist.
    for code in ["channel_not_found", "not_in_channel", "is_archived"] {
        let c = sink.classify(&req, &api_error(code));
        assert_eq!(only(&c).class(), Some(code));
        assert!(matches!(only(&c), Outcome::Permanent { .. }));
        assert!(c.sink_down.is_none(), "{code}");
    }
    let c = sink.classify(&req, &api_error("not_in_channel"));
    match only(&c) {
        Outcome::Permanent { message, .. } => {
            assert!(
                message.contains("#soc") && message.contains("/invite"),
                "{message}"
            )
        }
        o => panic!("{o:?}"),
    }
    // Message errors: permanent, never down.
    for code in [
        "msg_too_long",
        "invalid_blocks",
        "no_text",
        "too_many_attachments",
    ] {
        let c = sink.classify(&req, &api_error(code));
        assert_eq!(only(&c).class(), Some(code));
        assert!(matches!(only(&c), Outcome::Permanent { .. }));
        assert!(c.sink_down.is_none());
    }
    // Slack-side trouble: retried.
    for code in ["internal_error", "fatal_error", "service_unavailable"] {
        let c = sink.classify(&req, &api_error(code));
        assert_eq!(only(&c).class(), Some("server_error"));
        assert!(c.sink_down.is_some());
    }
    let c = sink.classify(&req, &text_resp(503, "<html>down</html>", &[]));
    assert_eq!(only(&c).class(), Some("server_error"));
    // Unknown codes are permanent; unreadable 200s are retried.
    assert_eq!(
        only(&sink.classify(&req, &api_error("brand_new_error"))).class(),
        Some("rejected")
    );
    assert_eq!(
        only(&sink.classify(&req, &text_resp(200, "<html>proxy</html>", &[]))).class(),
        Some("unreadable_response")
    );
    // A garbage body never panics.
    let c = sink.classify(
        &req,
        &HttpResponse {
            status: 200,
            headers: vec![],
            body: vec![0xff, 0, 1],
        },
    );
    assert_eq!(c.outcomes.len(), 3);
}

#[test]
fn a_dead_channel_is_a_dead_sink_when_it_is_the_only_one() {
    let sink = api_sink(json!({"routes": []}));
    let req = three_record_request(&sink);
    let c = sink.classify(&req, &api_error("channel_not_found"));
    assert_eq!(c.sink_down.as_ref().unwrap().status, Some(404));
    let c = sink.classify(&req, &api_error("is_archived"));
    assert_eq!(c.sink_down.as_ref().unwrap().status, Some(410));
}

#[test]
fn webhook_answers_are_read_from_status_and_text_code() {
    let sink = webhook_sink();
    let batch: Vec<SinkRecord> = (0..3)
        .map(|i| event(&format!("e{i}"), "globex", "high", "h", "R"))
        .collect();
    let req = sink.build(&batch, now()).requests.remove(0);
    assert_eq!(req.url, HOOK_SOC);
    assert_eq!(
        *only(&sink.classify(&req, &text_resp(200, "ok", &[]))),
        Outcome::Delivered
    );
    for code in [
        "invalid_payload",
        "no_text",
        "invalid_blocks",
        "too_many_attachments",
    ] {
        let c = sink.classify(&req, &text_resp(400, code, &[]));
        assert_eq!(only(&c).class(), Some(code));
        assert!(matches!(
            only(&c),
            Outcome::Permanent {
                status: Some(400),
                ..
            }
        ));
        assert!(c.sink_down.is_none());
    }
    // 403/404/410: permanent; with two webhooks only this channel is affected.
    for (status, code, class) in [
        (403, "invalid_token", "auth"),
        (403, "action_prohibited", "auth"),
        (404, "channel_not_found", "channel_not_found"),
        (404, "no_service", "auth"),
        (410, "channel_is_archived", "channel_is_archived"),
    ] {
        let c = sink.classify(&req, &text_resp(status, code, &[]));
        assert_eq!(only(&c).class(), Some(class), "{code}");
        assert!(matches!(only(&c), Outcome::Permanent { status: Some(s), .. } if *s == status));
        assert!(c.sink_down.is_none(), "{code}");
        match only(&c) {
            Outcome::Permanent { message, .. } => {
                assert!(
                    message.contains("webhook `soc`") && !message.contains("SocWebhookSecret123")
                )
            }
            o => panic!("{o:?}"),
        }
    }
    let c = sink.classify(
        &req,
        &text_resp(429, "rate_limited", &[("Retry-After", "2")]),
    );
    assert!(
        matches!(only(&c), Outcome::Retry { retry_after: Some(RetryAfter::Delay(d)), .. } if *d == Duration::from_secs(2))
    );
    assert!(c.sink_down.is_some());
    let c = sink.classify(&req, &text_resp(500, "rollup_error", &[]));
    assert_eq!(only(&c).class(), Some("server_error"));
    let c = sink.classify(&req, &text_resp(413, "", &[]));
    assert!(c.split);

    // A single webhook: its 403/404/410 take the whole sink down.
    let c = config(json!({"channel": "soc", "webhooks": {"soc": {"env": "A"}}}));
    let secrets = SlackSecrets {
        token: None,
        webhooks: BTreeMap::from([("soc".to_string(), Secret::new(HOOK_SOC))]),
    };
    let single = SlackSink::new("slack", c, secrets).unwrap();
    for (status, code) in [
        (403, "invalid_token"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ] {
        let c = single.classify(&req, &text_resp(status, code, &[]));
        assert_eq!(c.sink_down.as_ref().unwrap().status, Some(status), "{code}");
    }
}

#[test]
fn the_half_open_probe_checks_the_token_with_auth_test() {
    let sink = api_sink(json!({}));
    let p = sink.health_probe().unwrap();
    assert_eq!(p.url, "https://slack.example/api/auth.test");
    assert_eq!(
        p.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(p.records.is_empty());
    assert!(sink.probe_ok(&ok("1")));
    assert!(!sink.probe_ok(&api_error("invalid_auth")));
    assert!(!sink.probe_ok(&text_resp(503, "", &[])));
    assert!(!format!("{p:?}").contains("SECRET"));
    assert_eq!(sink.redact(&format!("token {TOKEN}")), "token ***");
}

#[test]
fn every_format_builds_a_message() {
    let sink = api_sink(json!({}));
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
            event_id: None,
            tenant: None,
            event_time_ms: None,
            key: None,
            payload: payload.as_bytes().to_vec(),
            format,
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        };
        let built = sink.build(&[r], now());
        assert!(built.rejected.is_empty(), "{format:?}");
        let req = &built.requests[0];
        assert!(req.header("traceparent").is_some());
        let b = body_of(req);
        assert_eq!(
            b["text"], "[HIGH] Suspicious PowerShell launched by Microsoft Office on ws-fin-042.corp.example.com",
            "{format:?}"
        );
        // acme-corp is not the `acme` tenant of the route: default channel.
        assert_eq!(b["channel"], "#soc");
    }
}
