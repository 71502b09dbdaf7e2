#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::sink::event_fields::Severity;
use crate::sink::{Outcome, PayloadFormat, SinkRecord};

const ECS: &str = include_str!("../../../tests/golden/process_alert_enriched.ecs.json");
const OCSF: &str = include_str!("../../../tests/golden/process_alert_enriched.ocsf.json");
const OCSF_NET: &str = include_str!("../../../tests/golden/network_connection_ipv4.ocsf.json");
const CEF: &str = include_str!("../../../tests/golden/process_alert_enriched.cef");
const CEF_NET: &str = include_str!("../../../tests/golden/network_connection_ipv4.cef");

fn rec(payload: &str, format: PayloadFormat) -> SinkRecord {
    SinkRecord {
        event_id: None,
        tenant: None,
        event_time_ms: None,
        key: None,
        payload: payload.as_bytes().to_vec(),
        format,
        traceparent: None,
    }
}

fn canonical(id: &str, tenant: &str, severity: &str, host: &str, rule: &str) -> SinkRecord {
    let doc = json!({
        "event_id": id, "tenant": tenant, "severity": severity,
        "event_time": "2025-03-14T11:15:43.000Z",
        "message": format!("{rule} on {host}"),
        "host": {"hostname": host},
        "user": {"name": "alice"},
        "rule": {"id": rule, "name": format!("Rule {rule}")},
        "network": {"src_ip": "10.0.0.1", "src_port": 5000, "dst_ip": "2001:db8::1", "dst_port": 443, "dst_hostname": "c2.example"},
    });
    SinkRecord {
        event_id: Some(id.to_string()),
        tenant: Some(tenant.to_string()),
        ..rec(&doc.to_string(), PayloadFormat::Canonical)
    }
}

#[test]
fn ecs_alert_fields() {
    let a = Alert::from_record(&rec(ECS, PayloadFormat::Ecs)).unwrap();
    assert_eq!(a.severity, Some(Severity::High));
    assert_eq!(
        a.title,
        "Suspicious PowerShell launched by Microsoft Office"
    );
    assert_eq!(
        a.rule_id.as_deref(),
        Some("c9f8a2d1-7e3b-4c5a-9d0e-1f2a3b4c5d6e")
    );
    assert_eq!(a.host.as_deref(), Some("ws-fin-042.corp.example.com"));
    assert_eq!(a.user.as_deref(), Some("alice"));
    assert_eq!(a.source.as_deref(), Some("192.0.2.42"));
    assert_eq!(
        a.destination.as_deref(),
        Some("203.0.113.50:443 (updates.example.org)")
    );
    assert_eq!(a.tenant.as_deref(), Some("acme-corp"));
    assert_eq!(a.time_ms, Some(1_741_950_943_000));
    assert_eq!(
        a.event_id.as_deref(),
        Some("4b5c6d7e-8f90-4a1b-b2c3-d4e5f6a7b8c9")
    );
    assert!(a
        .message
        .as_deref()
        .unwrap()
        .starts_with("Office application"));
    // Payload paths and normalised names.
    assert_eq!(a.value("process.name").as_deref(), Some("powershell.exe"));
    assert_eq!(
        a.value("event.category").as_deref(),
        Some("process, intrusion_detection")
    );
    assert_eq!(
        a.value("threat.enrichments.0.indicator.name").as_deref(),
        Some("updates.example.org"),
        "numeric segments index arrays"
    );
}

#[test]
fn ocsf_and_cef_read_the_same_headline() {
    let ecs = Alert::from_record(&rec(ECS, PayloadFormat::Ecs)).unwrap();
    let ocsf = Alert::from_record(&rec(OCSF, PayloadFormat::Ocsf)).unwrap();
    let cef = Alert::from_record(&rec(CEF, PayloadFormat::Cef)).unwrap();
    for a in [&ocsf, &cef] {
        assert_eq!(a.title, ecs.title, "{:?}", a.format);
        assert_eq!(a.rule_id, ecs.rule_id, "{:?}", a.format);
        assert_eq!(a.host, ecs.host, "{:?}", a.format);
        assert_eq!(a.user, ecs.user, "{:?}", a.format);
        assert_eq!(a.severity, ecs.severity, "{:?}", a.format);
        assert_eq!(a.tenant, ecs.tenant, "{:?}", a.format);
        assert_eq!(a.time_ms, ecs.time_ms, "{:?}", a.format);
        assert_eq!(a.event_id, ecs.event_id, "{:?}", a.format);
    }
    assert_eq!(
        ocsf.destination.as_deref(),
        Some("203.0.113.50:443 (updates.example.org)")
    );
    assert_eq!(
        cef.destination.as_deref(),
        Some("203.0.113.50:443 (updates.example.org)")
    );
    assert_eq!(cef.value("cs6Label").as_deref(), Some("commandLine"));
    // A network event: OCSF endpoints at the top level, CEF ports.
    let n = Alert::from_record(&rec(OCSF_NET, PayloadFormat::Ocsf)).unwrap();
    assert_eq!(
        n.source.as_deref(),
        Some("192.0.2.42:52144 (ws-fin-042.corp.example.com)")
    );
    assert_eq!(n.severity, Some(Severity::Info));
    let c = Alert::from_record(&rec(CEF_NET, PayloadFormat::Cef)).unwrap();
    assert_eq!(c.source, n.source);
    assert_eq!(c.host.as_deref(), Some("pa-fw-edge-01"));
    assert_eq!(c.tenant.as_deref(), Some("acme-corp"));
}

#[test]
fn record_metadata_wins_and_canonical_reads() {
    let mut r = canonical("e-1", "acme", "critical", "h1", "R1");
    r.event_time_ms = Some(42);
    let a = Alert::from_record(&r).unwrap();
    assert_eq!(a.time_ms, Some(42));
    assert_eq!(a.severity, Some(Severity::Critical));
    assert_eq!(a.title, "Rule R1");
    assert_eq!(a.source.as_deref(), Some("10.0.0.1:5000"));
    assert_eq!(
        a.destination.as_deref(),
        Some("[2001:db8::1]:443 (c2.example)")
    );
    let mut r = rec(ECS, PayloadFormat::Ecs);
    r.tenant = Some("other".into());
    r.event_id = Some("hdr-id".into());
    let a = Alert::from_record(&r).unwrap();
    assert_eq!(a.tenant.as_deref(), Some("other"));
    assert_eq!(a.event_id.as_deref(), Some("hdr-id"));
}

#[test]
fn unreadable_payloads_are_refused_without_panicking() {
    for (p, f) in [
        ("{not json", PayloadFormat::Ecs),
        ("[1,2]", PayloadFormat::Ocsf),
        ("   ", PayloadFormat::Cef),
    ] {
        assert!(Alert::from_record(&rec(p, f)).is_err(), "{p}");
    }
    let bad_utf8 = SinkRecord {
        payload: vec![0xff, 0xfe],
        ..rec("", PayloadFormat::Cef)
    };
    assert!(Alert::from_record(&bad_utf8).is_err());
    // A JSON object with nothing we know still makes a message.
    let a = Alert::from_record(&rec("{}", PayloadFormat::Ecs)).unwrap();
    assert_eq!(a.title, UNTITLED);
    assert_eq!(a.severity, None);
    // Text that is not CEF is titled by nothing.
    let a = Alert::from_record(&rec("just a line", PayloadFormat::Cef)).unwrap();
    assert_eq!(a.title, UNTITLED);
}

#[test]
fn templates_render_text_and_urls() {
    let a = Alert::from_record(&rec(ECS, PayloadFormat::Ecs)).unwrap();
    let t = Template::parse("{rule.id}:{host.name}").unwrap();
    assert_eq!(
        t.render(&a),
        "c9f8a2d1-7e3b-4c5a-9d0e-1f2a3b4c5d6e:ws-fin-042.corp.example.com"
    );
    let t = Template::parse("{secflow.rule_id}/{missing.field}").unwrap();
    assert_eq!(t.render(&a), "c9f8a2d1-7e3b-4c5a-9d0e-1f2a3b4c5d6e/unknown");

    let u = Template::parse_url("https://kibana.example/app?q={title}&id={event.id}").unwrap();
    assert_eq!(
        u.render_url(&a).unwrap(),
        "https://kibana.example/app?q=Suspicious%20PowerShell%20launched%20by%20Microsoft%20Office&id=4b5c6d7e-8f90-4a1b-b2c3-d4e5f6a7b8c9"
    );
    let u = Template::parse_url("https://x.example/{no.such.field}").unwrap();
    assert_eq!(u.render_url(&a), None, "a link missing a value is left out");
    // A value cannot add a query parameter or change the host.
    let mut out = String::new();
    percent_encode("a&b=c/d?#", &mut out);
    assert_eq!(out, "a%26b%3Dc%2Fd%3F%23");

    for bad in ["", "{", "}", "{}", "{a b}", "x{y", "{\n}"] {
        assert!(Template::parse(bad).is_err(), "{bad:?}");
    }
    for bad in ["{host.name}/x", "ftp://x/{a}", "https://", "kibana/{a}"] {
        assert!(Template::parse_url(bad).is_err(), "{bad:?}");
    }
}

fn router() -> Router {
    Router::new(
        "soc",
        &[
            ChannelRoute {
                tenants: vec!["acme".into()],
                min_severity: Some(Severity::High),
                channel: "acme-alerts".into(),
            },
            ChannelRoute {
                tenants: vec![],
                min_severity: Some(Severity::Critical),
                channel: "war-room".into(),
            },
        ],
        Some(Severity::Low),
    )
}

#[test]
fn routing_by_tenant_and_severity_with_a_threshold() {
    let r = router();
    let route = |tenant: &str, sev: &str| {
        let a = Alert::from_record(&canonical("e", tenant, sev, "h", "R")).unwrap();
        r.route(&a).map(str::to_string)
    };
    assert_eq!(route("acme", "high").as_deref(), Some("acme-alerts"));
    assert_eq!(route("acme", "critical").as_deref(), Some("acme-alerts"));
    assert_eq!(route("globex", "critical").as_deref(), Some("war-room"));
    assert_eq!(route("globex", "medium").as_deref(), Some("soc"));
    assert_eq!(route("acme", "medium").as_deref(), Some("soc"));
    assert_eq!(route("acme", "info"), None, "below min_severity");
    let unknown = Alert::from_record(&rec("{}", PayloadFormat::Ecs)).unwrap();
    assert_eq!(
        r.route(&unknown),
        None,
        "unknown severity is below a minimum"
    );
    assert_eq!(
        r.channels().into_iter().collect::<Vec<_>>(),
        vec!["acme-alerts", "soc", "war-room"]
    );
}

#[test]
fn a_batch_folds_into_one_digest_per_channel() {
    let mut batch = Vec::new();
    // soc: 1 medium from h2, then 30 high from h1, 6 high from h3, 2 medium from h2.
    batch.push(canonical("m0", "globex", "medium", "h2", "R2"));
    for i in 0..30 {
        batch.push(canonical(&format!("h1-{i}"), "globex", "high", "h1", "R1"));
    }
    for i in 0..6 {
        batch.push(canonical(&format!("h3-{i}"), "globex", "high", "h3", "R1"));
    }
    batch.push(canonical("m1", "globex", "medium", "h2", "R2"));
    batch.push(canonical("m2", "globex", "medium", "h2", "R2"));
    // war-room: one critical. Below threshold: one info. Unreadable: one.
    batch.push(canonical("c0", "globex", "critical", "h9", "R9"));
    batch.push(canonical("i0", "globex", "info", "h1", "R1"));
    batch.push(rec("{oops", PayloadFormat::Canonical));
    let p = prepare(&batch, &router(), 5);
    assert_eq!(p.digests.len(), 2);
    let soc = &p.digests[0];
    assert_eq!(soc.channel, "soc");
    assert_eq!(soc.count(), 39);
    assert_eq!(soc.records.len(), 39);
    assert_eq!(
        soc.top_alert().event_id.as_deref(),
        Some("h1-0"),
        "the first of the most severe"
    );
    assert_eq!(soc.counts_text(), "39 events: 36 high, 3 medium");
    let lines: Vec<String> = soc.lines.iter().map(SummaryLine::text).collect();
    assert_eq!(
        lines,
        vec![
            "29 more high-severity events from host h1",
            "6 more high-severity events from host h3",
            "3 more medium-severity events from host h2",
        ]
    );
    assert_eq!(soc.unlisted, (0, 0));
    assert_eq!(soc.unlisted_text(), None);
    let war = &p.digests[1];
    assert_eq!((war.channel.as_str(), war.count()), ("war-room", 1));
    assert!(war.lines.is_empty());
    // Every record is in exactly one digest or rejected.
    let mut seen: Vec<usize> = p.digests.iter().flat_map(|d| d.records.clone()).collect();
    seen.extend(p.rejected.iter().map(|(i, _)| *i));
    seen.sort_unstable();
    assert_eq!(seen, (0..batch.len()).collect::<Vec<_>>());
    assert_eq!(p.rejected.len(), 2);
    assert!(p
        .rejected
        .iter()
        .any(|(_, o)| *o == Outcome::suppressed(BELOW_MIN_SEVERITY)));
    assert!(p
        .rejected
        .iter()
        .any(|(_, o)| o.class() == Some("invalid_payload")));
}

#[test]
fn summary_lines_are_bounded_and_the_rest_counted() {
    let batch: Vec<SinkRecord> = (0..12)
        .map(|i| canonical(&format!("e{i}"), "t", "high", &format!("host-{i}"), "R"))
        .collect();
    let p = prepare(&batch, &router(), 3);
    let d = &p.digests[0];
    assert_eq!(d.lines.len(), 3);
    assert_eq!(d.unlisted, (8, 8));
    assert_eq!(
        d.unlisted_text().as_deref(),
        Some("and 8 more events in 8 other severity/host groups")
    );
    let shown: usize = d.lines.iter().map(|l| l.count).sum();
    assert_eq!(1 + shown + d.unlisted.0, 12, "top + lines + rest = all");
    let one = SummaryLine {
        severity: None,
        host: None,
        count: 1,
    };
    assert_eq!(
        one.text(),
        "1 more event of unknown severity from an unknown host"
    );
}

#[test]
fn common_checks_and_helpers() {
    let link = |t: &str, u: &str| LinkConfig {
        text: t.into(),
        url: u.into(),
    };
    assert!(check_common(&[link("Open", "https://x.example/{event.id}")], 5, 1000).is_ok());
    assert!(check_common(&[], 5, 999).is_err());
    assert!(check_common(&[], 21, 1000).is_err());
    assert!(check_common(&[link("", "https://x.example/")], 5, 1000).is_err());
    assert!(check_common(&[link(&"x".repeat(76), "https://x.example/")], 5, 1000).is_err());
    assert!(check_common(&vec![link("a", "https://x.example/"); 6], 5, 1000).is_err());
    assert_eq!(clip("abcdef", 4), "abc…");
    assert_eq!(clip("abc", 4), "abc");
    let k = url_key("https://hooks.slack.com/services/T1/B2/secret");
    assert!(k.starts_with("webhook:") && k.len() == 24 && !k.contains("secret"));
    assert_eq!(k, url_key("https://hooks.slack.com/services/T1/B2/secret"));
    assert_eq!(time_text(1_741_950_943_000), "2025-03-14T11:15:43.000Z");
    let a = Alert::from_record(&rec(ECS, PayloadFormat::Ecs)).unwrap();
    let f = facts(&a, time_text);
    let labels: Vec<&str> = f.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        labels,
        vec![
            "Severity",
            "Host",
            "User",
            "Source",
            "Destination",
            "Rule",
            "Tenant",
            "Time"
        ]
    );
}
