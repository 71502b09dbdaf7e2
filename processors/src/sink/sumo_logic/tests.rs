#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::*;
use crate::sink::{
    gunzip, Method, Outcome, PayloadFormat, RetryAfter, TransportError, TransportErrorKind,
};

const TOKEN: &str = "ZaVnC4dhaV1-qmW0TokenTokenToken==";
const ECS: &str = include_str!("../../../tests/golden/process_alert_enriched.ecs.json");
const OCSF: &str = include_str!("../../../tests/golden/network_connection_ipv4.ocsf.json");
const CEF: &str = include_str!("../../../tests/golden/process_alert_enriched.cef");
const NOW: SystemTime = SystemTime::UNIX_EPOCH;

fn url() -> String {
    format!("https://endpoint4.collection.us2.sumologic.com/receiver/v1/http/{TOKEN}")
}

fn config(extra: Value) -> SumoLogicConfig {
    let mut v = json!({"url": {"env": "SUMO_URL"}});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn sink_with(c: SumoLogicConfig) -> SumoLogicSink {
    SumoLogicSink::new("sumo", c, Secret::new(url())).unwrap()
}

/// Category routes: acme's high-and-above events to their own category, any critical event to
/// the war room, the rest by tenant and severity.
fn routed() -> SumoLogicSink {
    sink_with(config(json!({
        "category": "security/{tenant}/{severity}",
        "routes": [
            {"tenants": ["acme"], "min_severity": "high", "category": "acme/alerts"},
            {"min_severity": "critical", "category": "security/war-room"},
        ],
        "source_name": "secflow-{format}",
        "source_host": "{host}",
        "fields": {"tenant": "{tenant}", "pipeline": "secflow"},
    })))
}

fn rec(id: &str, tenant: Option<&str>, payload: &str, format: PayloadFormat) -> SinkRecord {
    SinkRecord {
        event_id: Some(id.to_string()),
        tenant: tenant.map(str::to_string),
        event_time_ms: Some(1_741_950_943_000),
        key: None,
        payload: payload.as_bytes().to_vec(),
        format,
        traceparent: None,
    }
}

/// A canonical-JSON event of `severity` for `tenant`.
fn canonical(id: &str, tenant: &str, severity: &str) -> SinkRecord {
    rec(
        id,
        Some(tenant),
        &format!(
            r#"{{"event_id":"{id}","tenant":"{tenant}","severity":"{severity}","host":{{"hostname":"h1"}}}}"#
        ),
        PayloadFormat::Canonical,
    )
}

fn body(req: &HttpRequest) -> String {
    let b = if req.header("content-encoding") == Some("gzip") {
        gunzip(&req.body, 4 << 20).unwrap()
    } else {
        req.body.clone()
    };
    String::from_utf8(b).unwrap()
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

fn request_for(sink: &SumoLogicSink, n: usize) -> HttpRequest {
    let batch: Vec<SinkRecord> = (0..n)
        .map(|i| canonical(&format!("e{i}"), "acme", "low"))
        .collect();
    sink.build(&batch, NOW).requests.remove(0)
}

#[test]
fn config_yaml_defaults_and_refusals() {
    let c: SumoLogicConfig = serde_yaml_ng::from_str("url: {env: SUMO_URL}\n").unwrap();
    assert!(c.gzip);
    assert_eq!(c.max_request_bytes, 1_000_000);
    assert!(c.category.is_none() && c.routes.is_empty() && c.fields.is_empty());
    let c: SumoLogicConfig = serde_yaml_ng::from_str(
        "url: {file: /run/secrets/sumo}\nroutes:\n  - {tenants: [acme], min_severity: high, category: x}\n",
    )
    .unwrap();
    assert_eq!(c.routes[0].min_severity, Some(Severity::High));
    for bad in [
        // The URL is a secret: never inline.
        "url: https://collectors.sumologic.com/receiver/v1/http/abc\n",
        "url: {env: U}\nroutes: [{min_severity: severe, category: x}]\n",
        "url: {env: U}\nroutes: [{tenants: [a]}]\n",
        "url: {env: U}\ncategroy: x\n",
    ] {
        assert!(
            serde_yaml_ng::from_str::<SumoLogicConfig>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn construction_refuses_bad_urls_without_showing_them() {
    for bad in [
        "endpoint4.collection.sumologic.com/receiver/v1/http/abc",
        "ftp://x/y",
        "https://host-only",
        "https:///path",
        "https://host/recv ier/abc",
    ] {
        let e = SumoLogicSink::new("s", config(json!({})), Secret::new(bad)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("value not shown"), "{text}");
        assert!(!text.contains(bad), "{text}");
    }
    for extra in [
        json!({"max_request_bytes": 1_000_001}),
        json!({"max_request_bytes": 0}),
        json!({"category": "a/{tenat}"}),
        json!({"category": "a/{tenant"}),
        json!({"category": ""}),
        json!({"source_host": "a\nb"}),
        json!({"fields": {"bad name": "x"}}),
        json!({"fields": {"a=b": "x"}}),
        json!({"routes": [{"category": "}"}]}),
    ] {
        let r = SumoLogicSink::new("s", config(extra.clone()), Secret::new(url()));
        assert!(matches!(r, Err(SinkError::Config(_))), "{extra}");
    }
}

#[test]
fn lines_headers_and_gzip() {
    let s = routed();
    let batch = vec![
        rec("ecs", Some("acme"), ECS, PayloadFormat::Ecs),
        rec(
            "ecs2",
            Some("acme"),
            &ECS.replace("4b5c6d7e", "5c6d7e8f"),
            PayloadFormat::Ecs,
        ),
    ];
    let built = s.build(&batch, NOW);
    assert!(built.rejected.is_empty());
    assert_eq!(built.requests.len(), 1, "same headers: one request");
    let req = &built.requests[0];
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url, url());
    assert_eq!(req.records, vec![0, 1]);
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    assert_eq!(req.header(CLIENT_HEADER), Some("secflow"));
    // ECS severity 73 is high, acme: the first route.
    assert_eq!(req.header(CATEGORY_HEADER), Some("acme/alerts"));
    assert_eq!(req.header(NAME_HEADER), Some("secflow-ecs"));
    assert_eq!(req.header(HOST_HEADER), Some("ws-fin-042.corp.example.com"));
    assert_eq!(
        req.header(FIELDS_HEADER),
        Some("pipeline=secflow,tenant=acme")
    );
    // One compact JSON document per line, exactly the payloads.
    let text = body(req);
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), 2);
    for (line, rec) in lines.iter().zip(&batch) {
        let got: Value = serde_json::from_str(line).unwrap();
        let want: Value = serde_json::from_slice(&rec.payload).unwrap();
        assert_eq!(got, want);
    }
    // The URL (the secret) never shows in Debug, of the sink or of a request.
    assert!(!format!("{s:?}").contains(TOKEN));
    assert!(!format!("{req:?}").contains(TOKEN));
    let plain = sink_with(config(json!({"gzip": false})));
    let req = plain.build(&batch, NOW).requests.remove(0);
    assert_eq!(req.header("content-encoding"), None);
    assert_eq!(req.header(CATEGORY_HEADER), None, "no category configured");
    assert!(req.header(FIELDS_HEADER).is_none());
}

#[test]
fn category_routes_by_tenant_and_severity_group_requests() {
    let s = routed();
    let batch = vec![
        canonical("a-high", "acme", "high"),               // route 0
        canonical("b-crit", "globex", "critical"),         // route 1
        canonical("a-low", "acme", "low"),                 // default
        canonical("a-crit", "acme", "critical"),           // route 0 (first match)
        canonical("b-low", "globex", "low"),               // default
        canonical("a-low2", "acme", "low"),                // default, same as a-low
        rec("cef", Some("acme"), CEF, PayloadFormat::Cef), // CEF 8: high → route 0
        rec("ocsf", None, OCSF, PayloadFormat::Ocsf),      // informational, no tenant
    ];
    let built = s.build(&batch, NOW);
    assert!(built.rejected.is_empty());
    let got: Vec<(Option<&str>, Vec<usize>)> = built
        .requests
        .iter()
        .map(|r| (r.header(CATEGORY_HEADER), r.records.clone()))
        .collect();
    // Grouped by the whole header set: host and name differ per event here, so compare the
    // category each record got.
    let mut category_of = vec![""; batch.len()];
    for (cat, recs) in &got {
        for &i in recs {
            category_of[i] = cat.unwrap();
        }
    }
    assert_eq!(
        category_of,
        vec![
            "acme/alerts",
            "security/war-room",
            "security/acme/low",
            "acme/alerts",
            "security/globex/low",
            "security/acme/low",
            "acme/alerts",
            "security/unknown/info",
        ]
    );
    // Records sharing every header value share a request.
    let s = sink_with(config(json!({
        "category": "security/{tenant}/{severity}",
        "routes": [{"tenants": ["acme"], "min_severity": "high", "category": "acme/alerts"}],
    })));
    let built = s.build(&batch[..6], NOW);
    let groups: Vec<(String, Vec<usize>)> = built
        .requests
        .iter()
        .map(|r| {
            (
                r.header(CATEGORY_HEADER).unwrap().to_string(),
                r.records.clone(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            ("acme/alerts".to_string(), vec![0, 3]),
            ("security/globex/critical".to_string(), vec![1]),
            ("security/acme/low".to_string(), vec![2, 5]),
            ("security/globex/low".to_string(), vec![4]),
        ]
    );
}

#[test]
fn field_values_cannot_break_the_header() {
    let s = sink_with(config(json!({"fields": {"tenant": "{tenant}"}})));
    let r = canonical("x", "a,b=c", "low");
    let req = s.build(&[r], NOW).requests.remove(0);
    assert_eq!(req.header(FIELDS_HEADER), Some("tenant=a_b_c"));
    let mut r = canonical("y", "t", "low");
    r.tenant = Some("evil\r\nX-Injected: 1".to_string());
    let req = s.build(&[r], NOW).requests.remove(0);
    let v = req.header(FIELDS_HEADER).unwrap();
    assert!(!v.contains('\n') && !v.contains('\r'), "{v}");
}

#[test]
fn requests_split_at_max_request_bytes_and_oversized_events_are_dead_lettered() {
    let s = sink_with(config(json!({"max_request_bytes": 1000})));
    let ev = |i: usize, n: usize| {
        rec(
            &format!("e{i}"),
            Some("t"),
            &format!(r#"{{"event_id":"e{i}","blob":"{}"}}"#, "x".repeat(n)),
            PayloadFormat::Canonical,
        )
    };
    let mut batch: Vec<SinkRecord> = (0..7).map(|i| ev(i, 280)).collect();
    batch.push(ev(7, 2000));
    let built = s.build(&batch, NOW);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, 7);
    assert_eq!(built.rejected[0].1.class(), Some("payload_too_large"));
    let sizes: Vec<usize> = built.requests.iter().map(|r| r.records.len()).collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    for r in &built.requests {
        assert!(body(r).len() <= 1000);
    }
}

#[test]
fn unusable_payloads_are_rejected() {
    let s = sink_with(config(json!({})));
    let batch = vec![
        rec("ok", None, "CEF:0|a|b|1|x|n|3|k=v\n", PayloadFormat::Cef),
        rec(
            "multi",
            None,
            "CEF:0|a|b|1|x|n|3|k=v\nsecond line",
            PayloadFormat::Cef,
        ),
        rec("nojson", None, "{", PayloadFormat::Ecs),
        rec("null", None, "null", PayloadFormat::Ocsf),
        rec("blank", None, " \n", PayloadFormat::Cef),
    ];
    let built = s.build(&batch, NOW);
    assert_eq!(built.requests.len(), 1);
    assert_eq!(body(&built.requests[0]), "CEF:0|a|b|1|x|n|3|k=v");
    let rejected: Vec<usize> = built.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, vec![1, 2, 3, 4]);
    assert!(built
        .rejected
        .iter()
        .all(|(_, o)| o.class() == Some("invalid_payload")));
    // JSON with line breaks is re-encoded on one line.
    let pretty = rec("p", None, "{\n  \"a\": 1\n}", PayloadFormat::Ecs);
    let req = s.build(&[pretty], NOW).requests.remove(0);
    assert_eq!(body(&req), r#"{"a":1}"#);
}

#[test]
fn delivered_and_retried_answers() {
    let s = routed();
    let req = request_for(&s, 3);
    let c = s.classify(&req, &resp(200, &[], ""));
    assert_eq!(c.outcomes, vec![Outcome::Delivered; 3]);
    assert!(c.sink_down.is_none());
    let c = s.classify(
        &req,
        &resp(429, &[("Retry-After", "2")], "Too Many Requests"),
    );
    match &c.outcomes[0] {
        Outcome::Retry {
            class, retry_after, ..
        } => {
            assert_eq!(class, "rate_limited");
            assert_eq!(
                *retry_after,
                Some(RetryAfter::Delay(Duration::from_secs(2)))
            );
        }
        o => panic!("{o:?}"),
    }
    assert!(c.sink_down.is_some());
    for status in [503, 504, 500] {
        let c = s.classify(&req, &resp(status, &[], ""));
        assert!(matches!(c.outcomes[2], Outcome::Retry { .. }));
        assert!(c.sink_down.is_some());
    }
    let c = s.classify(&req, &resp(408, &[], ""));
    assert_eq!(c.outcomes[0].class(), Some("timeout"));
    assert!(c.sink_down.is_none());
}

#[test]
fn bad_or_deleted_source_url_is_permanent_and_takes_the_sink_down() {
    let s = routed();
    let req = request_for(&s, 2);
    for (status, class, says) in [
        (401, "auth", "token is missing or invalid"),
        (403, "auth", "token is missing or invalid"),
        (404, "source_not_found", "source was deleted"),
    ] {
        let echo = format!("no source for {}", url());
        let c = s.classify(&req, &resp(status, &[], &echo));
        let down = c.sink_down.clone().unwrap();
        assert_eq!((down.class.as_str(), down.status), (class, Some(status)));
        assert!(down.message.contains(says), "{}", down.message);
        assert!(down.message.contains("current upload URL"));
        for o in &c.outcomes {
            assert!(
                matches!(o, Outcome::Permanent { class: c, status: Some(s), .. } if c == class && *s == status)
            );
        }
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains(TOKEN) && !dbg.contains("sumologic.com/receiver"),
            "{dbg}"
        );
    }
    // The token alone is redacted too.
    assert_eq!(s.redact(&format!("token {TOKEN} bad")), "token *** bad");
}

#[test]
fn bad_request_is_permanent_and_too_large_splits() {
    let s = routed();
    let c = s.classify(&request_for(&s, 2), &resp(400, &[], "bad request"));
    assert_eq!(
        c.outcomes,
        vec![Outcome::permanent("rejected", Some(400), "HTTP 400: bad request"); 2]
    );
    assert!(c.sink_down.is_none() && !c.split);
    let c = s.classify(&request_for(&s, 2), &resp(413, &[], ""));
    assert!(c.split);
    let c = s.classify(&request_for(&s, 1), &resp(413, &[], ""));
    assert!(!c.split);
    assert_eq!(c.outcomes[0].class(), Some("payload_too_large"));
}

#[test]
fn transport_errors_never_show_the_url() {
    let s = routed();
    let c = s.classify_transport_error(
        &request_for(&s, 2),
        &TransportError {
            kind: TransportErrorKind::Timeout,
            message: format!("operation timed out for url ({})", url()),
        },
    );
    assert_eq!(c.outcomes[0].class(), Some("timeout"));
    assert!(!format!("{c:?}").contains(TOKEN));
}

#[test]
fn garbage_answers_never_panic() {
    let s = routed();
    let req = request_for(&s, 2);
    for status in [0, 100, 204, 302, 400, 401, 404, 405, 413, 429, 500, 999] {
        for body in ["", "\u{0}\u{1}", "<html>", "{\"x\":"] {
            assert_eq!(s.classify(&req, &resp(status, &[], body)).outcomes.len(), 2);
        }
    }
}

#[test]
fn templates_render_unknown_for_missing_values() {
    let t = HeaderTemplate::parse("sec/{tenant}/{severity}/{format}/{host}").unwrap();
    let meta = EventMeta {
        tenant: Some(" "),
        severity: None,
        format: "cef",
        host: Some("h1"),
    };
    assert_eq!(t.render(&meta), "sec/unknown/unknown/cef/h1");
    assert!(HeaderTemplate::parse("{x}").is_err());
}
