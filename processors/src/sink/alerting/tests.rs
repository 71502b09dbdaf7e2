//! Unit tests of the shared alerting pieces: field lookup in every format, templates, rules,
//! the batch planner and the incident state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::sink::event_fields::Severity;
use crate::sink::{Outcome, PayloadFormat, SinkRecord};

const ECS: &str = include_str!("../../../tests/golden/process_alert_enriched.ecs.json");
const OCSF: &str = include_str!("../../../tests/golden/process_alert_enriched.ocsf.json");
const CEF: &str = include_str!("../../../tests/golden/process_alert_enriched.cef");
const RULE: &str = "c9f8a2d1-7e3b-4c5a-9d0e-1f2a3b4c5d6e";
const HOST: &str = "ws-fin-042.corp.example.com";

fn rec(payload: &str, format: PayloadFormat) -> SinkRecord {
    SinkRecord {
        event_id: Some("4b5c".into()),
        tenant: Some("acme-corp".into()),
        event_time_ms: Some(1_741_950_943_000),
        key: None,
        payload: payload.as_bytes().to_vec(),
        format,
        traceparent: None,
    }
}

fn canonical(extra: serde_json::Value) -> SinkRecord {
    let mut doc = serde_json::json!({
        "event_id": "c1", "tenant": "t1", "action": "logon_failed", "severity": "medium",
        "message": "3 failed logons", "host": {"hostname": "srv-1"},
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    rec(&doc.to_string(), PayloadFormat::Canonical)
}

#[test]
fn secflow_fields_are_the_same_in_every_format() {
    for (payload, format) in [
        (ECS, PayloadFormat::Ecs),
        (OCSF, PayloadFormat::Ocsf),
        (CEF, PayloadFormat::Cef),
    ] {
        let r = rec(payload, format);
        let e = AlertEvent::parse(&r).unwrap();
        assert_eq!(
            e.field("secflow.rule_id").as_deref(),
            Some(RULE),
            "{format:?}"
        );
        assert_eq!(
            e.field("secflow.rule_name").as_deref(),
            Some("Suspicious PowerShell launched by Microsoft Office"),
            "{format:?}"
        );
        assert_eq!(e.field("secflow.host").as_deref(), Some(HOST), "{format:?}");
        assert_eq!(
            e.field("secflow.severity").as_deref(),
            Some("high"),
            "{format:?}"
        );
        assert_eq!(e.field("secflow.tenant").as_deref(), Some("acme-corp"));
        assert_eq!(e.field("secflow.event_id").as_deref(), Some("4b5c"));
        assert_eq!(e.field("secflow.format").as_deref(), Some(format.as_str()));
        assert_eq!(
            e.field("secflow.time").as_deref(),
            Some("2025-03-14T11:15:43.000Z")
        );
        assert!(e
            .field("secflow.message")
            .unwrap()
            .starts_with("Office application spawned encoded PowerShell"));
        assert_eq!(e.field("secflow.status"), None);
        assert_eq!(e.severity(), Some(Severity::High));
    }
    // Without a rule, the rule id is the action.
    let r = canonical(serde_json::json!({}));
    let e = AlertEvent::parse(&r).unwrap();
    assert_eq!(e.field("secflow.rule_id").as_deref(), Some("logon_failed"));
    assert_eq!(
        e.field("secflow.rule_name").as_deref(),
        Some("3 failed logons")
    );
}

#[test]
fn payload_paths_walk_objects_arrays_and_cef() {
    let r = rec(ECS, PayloadFormat::Ecs);
    let e = AlertEvent::parse(&r).unwrap();
    assert_eq!(e.field("rule.id").as_deref(), Some(RULE));
    assert_eq!(e.field("host.name").as_deref(), Some(HOST));
    assert_eq!(e.field("event.severity").as_deref(), Some("73"));
    assert_eq!(e.field("labels.env").as_deref(), Some("prod"));
    assert_eq!(
        e.field("host.ip").as_deref(),
        Some("192.0.2.42,fe80::250:56ff:fea1:2b3c")
    );
    assert_eq!(
        e.field("host.ip.1").as_deref(),
        Some("fe80::250:56ff:fea1:2b3c")
    );
    assert_eq!(e.field("nope.nothing"), None);
    assert!(
        e.field("host.os").unwrap().starts_with('{'),
        "objects are JSON"
    );
    // A key with dots (ECS labels written flat) is found too.
    let r = rec(
        r#"{"labels":{"secflow.status":"x"},"a":{"b.c":{"d":1}}}"#,
        PayloadFormat::Ecs,
    );
    let e = AlertEvent::parse(&r).unwrap();
    assert_eq!(e.field("labels.secflow.status").as_deref(), Some("x"));
    assert_eq!(e.field("a.b.c.d").as_deref(), Some("1"));
    // CEF header and extension keys.
    let r = rec(CEF, PayloadFormat::Cef);
    let e = AlertEvent::parse(&r).unwrap();
    assert_eq!(e.field("cef.vendor").as_deref(), Some("Elastic"));
    assert_eq!(e.field("cef.version").as_deref(), Some("0"));
    assert_eq!(e.field("cef.severity").as_deref(), Some("8"));
    assert_eq!(e.field("dvchost").as_deref(), Some(HOST));
    assert_eq!(e.field("cs1").as_deref(), Some("acme-corp"));
    assert_eq!(e.document(), serde_json::Value::from(CEF.trim_end()));
}

#[test]
fn unreadable_payloads_are_errors() {
    for (p, f) in [
        ("{nope", PayloadFormat::Ecs),
        ("[1]", PayloadFormat::Ocsf),
        ("\n", PayloadFormat::Cef),
    ] {
        assert!(AlertEvent::parse(&rec(p, f)).is_err(), "{p}");
    }
    let mut bin = rec("", PayloadFormat::Cef);
    bin.payload = vec![0xff, 0xfe];
    assert!(AlertEvent::parse(&bin).is_err());
}

#[test]
fn templates_render_alternatives_literals_and_escapes() {
    let r = rec(ECS, PayloadFormat::Ecs);
    let e = AlertEvent::parse(&r).unwrap();
    let t = FieldTemplate::parse("{rule.id}:{host.name}").unwrap();
    assert_eq!(t.render(&e), format!("{RULE}:{HOST}"));
    let t = FieldTemplate::parse("{missing.a|missing.b|'n/a | none'} {{x}}").unwrap();
    assert_eq!(t.render(&e), "n/a | none {x}");
    let t = FieldTemplate::parse("[{missing}]").unwrap();
    assert_eq!(t.render(&e), "[]");
    assert!(FieldTemplate::parse("constant").unwrap().is_constant());
    assert!(!FieldTemplate::parse("{a}").unwrap().is_constant());
    // URL rendering percent-encodes values, not the template's own text.
    let t = FieldTemplate::parse("https://siem.example/q?host={host.name}&m={secflow.message}")
        .unwrap();
    let url = t.render_url(&e);
    assert!(
        url.starts_with(
            "https://siem.example/q?host=ws-fin-042.corp.example.com&m=Office%20application"
        ),
        "{url}"
    );
    // Control characters in values become spaces.
    let r = rec(r#"{"m":"a\nb"}"#, PayloadFormat::Ecs);
    let e = AlertEvent::parse(&r).unwrap();
    assert_eq!(FieldTemplate::parse("{m}").unwrap().render(&e), "a b");
}

#[test]
fn bad_templates_are_refused() {
    for bad in [
        "{",
        "}",
        "{}",
        "{a|}",
        "{ a b }",
        "{a..b}",
        "{secflow.nope}",
        "{'unclosed}",
        "{'x' y}",
        "x\ny",
    ] {
        assert!(FieldTemplate::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn rules_threshold_and_resolution() {
    let rules = AlertRules::new(
        Severity::High,
        Severity::Info,
        &[ResolveCondition {
            field: "secflow.status|event.outcome".into(),
            equals: vec!["Resolved".into()],
        }],
    )
    .unwrap();
    let high = rec(ECS, PayloadFormat::Ecs);
    assert_eq!(
        rules.kind(&AlertEvent::parse(&high).unwrap()),
        AlertKind::Alert(Severity::High)
    );
    let medium = canonical(serde_json::json!({}));
    assert_eq!(
        rules.kind(&AlertEvent::parse(&medium).unwrap()),
        AlertKind::BelowThreshold(Severity::Medium)
    );
    // A resolution is one whatever its severity.
    let resolved = canonical(
        serde_json::json!({"severity": "info", "labels": {"secflow_status": "RESOLVED"}}),
    );
    assert_eq!(
        rules.kind(&AlertEvent::parse(&resolved).unwrap()),
        AlertKind::Resolution
    );
    let no_sev = rec(r#"{"event":{"id":"x"}}"#, PayloadFormat::Ecs);
    assert_eq!(
        rules.severity(&AlertEvent::parse(&no_sev).unwrap()),
        Severity::Info
    );
    for bad in [
        ResolveCondition {
            field: "{x}".into(),
            equals: vec!["a".into()],
        },
        ResolveCondition {
            field: "x".into(),
            equals: vec![" ".into()],
        },
        ResolveCondition {
            field: "secflow.x".into(),
            equals: vec!["a".into()],
        },
    ] {
        assert!(AlertRules::new(Severity::High, Severity::Info, &[bad]).is_err());
    }
}

fn key(k: &str) -> IncidentKey {
    IncidentKey {
        route: "r".into(),
        key: k.into(),
    }
}

#[test]
fn a_batch_shares_triggers_and_suppresses_open_incidents() {
    let mut book = IncidentBook::new();
    let plan = book.plan(
        vec![
            (0, Intent::Trigger(key("a"))),
            (1, Intent::Trigger(key("b"))),
            (2, Intent::Trigger(key("a"))),
            (3, Intent::Done(Outcome::suppressed(BELOW_MIN_SEVERITY))),
            (4, Intent::Resolve(key("c"))),
        ],
        1_000,
    );
    assert_eq!(plan.actions.len(), 2);
    assert_eq!(plan.actions[0].kind, ActionKind::Trigger);
    assert_eq!(plan.actions[0].records, vec![0, 2]);
    assert_eq!(plan.actions[1].records, vec![1]);
    assert_eq!(
        plan.done,
        vec![
            (3, Outcome::suppressed(BELOW_MIN_SEVERITY)),
            (4, Outcome::suppressed(NO_OPEN_INCIDENT)),
        ]
    );
    // Nothing is open before the trigger is accepted.
    assert!(book.open().is_empty());
    book.triggered(&key("a"), 2);
    book.trigger_failed(&key("b"));
    assert!(book.is_open(&key("a")) && !book.is_open(&key("b")));
    assert_eq!(book.open()[&key("a")].triggered_at_ms, 1_000);
    // The next batch: `a` is suppressed and refreshed, `b` is triggered again.
    let plan = book.plan(
        vec![
            (0, Intent::Trigger(key("a"))),
            (1, Intent::Trigger(key("b"))),
        ],
        5_000,
    );
    assert_eq!(plan.done, vec![(0, Outcome::suppressed(INCIDENT_OPEN))]);
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(plan.actions[0].key, key("b"));
    let a = &book.open()[&key("a")];
    assert_eq!((a.last_seen_ms, a.occurrences), (5_000, 3));
}

#[test]
fn resolutions_in_batch_order() {
    let mut book = IncidentBook::new();
    book.plan(vec![(0, Intent::Trigger(key("open")))], 0);
    book.triggered(&key("open"), 1);
    let plan = book.plan(
        vec![
            (0, Intent::Resolve(key("open"))),
            (1, Intent::Resolve(key("open"))),
            (2, Intent::Trigger(key("open"))),
            (3, Intent::Trigger(key("new"))),
            (4, Intent::Resolve(key("new"))),
        ],
        10,
    );
    let shape: Vec<(ActionKind, &str, Vec<usize>)> = plan
        .actions
        .iter()
        .map(|a| (a.kind, a.key.key.as_str(), a.records.clone()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (ActionKind::Resolve, "open", vec![0, 1]),
            (ActionKind::Trigger, "open", vec![2]),
            (ActionKind::Trigger, "new", vec![3]),
            (ActionKind::Resolve, "new", vec![4]),
        ]
    );
    assert!(plan.done.is_empty());
    book.resolved(&key("open"));
    book.triggered(&key("open"), 1);
    book.triggered(&key("new"), 1);
    book.resolved(&key("new"));
    assert!(book.is_open(&key("open")) && !book.is_open(&key("new")));
}

#[test]
fn quiet_incidents_are_resolved_once_and_retried_on_failure() {
    let mut book = IncidentBook::new();
    for (k, t) in [("old", 0), ("older", -5), ("fresh", 9_000)] {
        book.plan(vec![(0, Intent::Trigger(key(k)))], t);
        book.triggered(&key(k), 1);
    }
    let keys = book.start_quiet_resolves(10_000, 5_000, 10);
    assert_eq!(keys, vec![key("older"), key("old")], "oldest first");
    // In flight: not again, and not open for records.
    assert!(book.start_quiet_resolves(20_000, 5_000, 10) == vec![key("fresh")]);
    assert!(!book.is_open(&key("old")));
    book.quiet_resolve_done(&key("old"), true, false);
    book.quiet_resolve_done(&key("older"), false, false);
    assert!(!book.open().contains_key(&key("old")));
    assert!(book.is_open(&key("older")), "a failed resolve keeps it");
    assert_eq!(
        book.start_quiet_resolves(20_000, 5_000, 1),
        vec![key("older")]
    );
    book.quiet_resolve_done(&key("older"), false, true);
    assert!(!book.open().contains_key(&key("older")), "forgotten");
}

#[test]
fn a_trigger_during_a_quiet_resolve_opens_the_next_incident() {
    let mut book = IncidentBook::new();
    book.plan(vec![(0, Intent::Trigger(key("k")))], 0);
    book.triggered(&key("k"), 1);
    assert_eq!(book.start_quiet_resolves(100, 50, 10), vec![key("k")]);
    // A record arrives while the resolve is in flight: triggered, not suppressed.
    let plan = book.plan(vec![(0, Intent::Trigger(key("k")))], 120);
    assert_eq!(plan.actions.len(), 1);
    book.triggered(&key("k"), 1);
    book.quiet_resolve_done(&key("k"), true, false);
    assert!(book.is_open(&key("k")), "the new incident stays open");
    assert_eq!(book.open()[&key("k")].triggered_at_ms, 120);
}

#[test]
fn state_round_trips_and_refuses_other_bytes() {
    let mut book = IncidentBook::new();
    book.plan(vec![(0, Intent::Trigger(key("a:b")))], 42);
    book.triggered(&key("a:b"), 3);
    let saved = book.snapshot();
    let text = String::from_utf8(saved.clone()).unwrap();
    assert!(
        text.contains(r#""key":"a:b""#) && text.contains(r#""version":1"#),
        "{text}"
    );
    let mut again = IncidentBook::new();
    again.restore(&saved).unwrap();
    assert_eq!(again.open(), book.open());
    assert_eq!(again.snapshot(), saved, "stable bytes");
    for bad in [&b"nope"[..], br#"{"version":2,"incidents":[]}"#, b"{}"] {
        assert!(again.restore(bad).is_err());
    }
}

#[test]
fn bounded_keys_and_char_truncation() {
    assert_eq!(bounded_key("short", 10), "short");
    let a = bounded_key(&format!("{}a", "x".repeat(300)), 255);
    let b = bounded_key(&format!("{}b", "x".repeat(300)), 255);
    assert_eq!(a.chars().count(), 255);
    assert_ne!(a, b, "keys differing at the end stay different");
    assert_eq!(truncate_chars("héllo wörld", 5), "héll…");
    assert_eq!(truncate_chars("abc", 3), "abc");
    assert_eq!(truncate_chars("日本語のテキスト", 4).chars().count(), 4);
    assert_eq!(percent_decode(&percent_encode("a b/ü:%")), "a b/ü:%");
    assert_eq!(percent_decode("%zz%4"), "%zz%4");
}

#[test]
fn a_second_trigger_in_one_batch_after_a_resolve_is_dated_by_the_batch() {
    let mut book = IncidentBook::new();
    book.plan(vec![(0, Intent::Trigger(key("k")))], 0);
    book.triggered(&key("k"), 1);
    // Resolve, then a new occurrence, in one batch at 5 s: two actions for the key.
    let plan = book.plan(
        vec![
            (0, Intent::Resolve(key("k"))),
            (1, Intent::Trigger(key("k"))),
        ],
        5_000,
    );
    assert_eq!(plan.actions.len(), 2);
    book.resolved(&key("k"));
    book.triggered(&key("k"), 1);
    let inc = &book.open()[&key("k")];
    assert_eq!(inc.triggered_at_ms, 5_000);
    // Not quiet right after: the new incident is not resolved at the next tick.
    assert!(book.start_quiet_resolves(5_500, 2_000, 10).is_empty());
}
