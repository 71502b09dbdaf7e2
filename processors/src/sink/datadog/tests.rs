#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::*;
use crate::sink::{
    gunzip, Method, Outcome, PayloadFormat, RetryAfter, SinkRecord, TransportError,
    TransportErrorKind,
};

const KEY: &str = "dd-key-0123456789abcdef";
const ECS: &str = include_str!("../../../tests/golden/process_alert_enriched.ecs.json");
const OCSF: &str = include_str!("../../../tests/golden/process_alert_enriched.ocsf.json");
const CEF: &str = include_str!("../../../tests/golden/process_alert_enriched.cef");
/// 2025-03-14T11:15:43Z
const T: i64 = 1_741_950_943_000;
const NOW: SystemTime = SystemTime::UNIX_EPOCH;

fn config(extra: Value) -> DatadogConfig {
    let mut v = json!({"api_key": {"env": "DD_API_KEY"}});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn sink_with(c: DatadogConfig) -> DatadogSink {
    DatadogSink::new("dd", c, Secret::new(KEY)).unwrap()
}

fn sink() -> DatadogSink {
    sink_with(config(
        json!({"tags": ["env:prod", "team:soc"], "service": "secflow-siem"}),
    ))
}

fn rec(id: &str, payload: &str, format: PayloadFormat) -> SinkRecord {
    SinkRecord {
        event_id: Some(id.to_string()),
        tenant: Some("Acme Corp".to_string()),
        event_time_ms: Some(T),
        key: None,
        payload: payload.as_bytes().to_vec(),
        format,
        traceparent: None,
    }
}

fn small(i: usize) -> SinkRecord {
    rec(
        &format!("e{i}"),
        &format!(r#"{{"@timestamp":"2025-03-14T11:15:43Z","event":{{"id":"e{i}"}}}}"#),
        PayloadFormat::Ecs,
    )
}

fn entry(sink: &DatadogSink, r: &SinkRecord) -> Value {
    serde_json::from_slice(&encode_entry(sink.config(), r).unwrap()).unwrap()
}

/// The entries of a request body (gunzipped when needed).
fn entries(req: &HttpRequest) -> Vec<Value> {
    let body = if req.header("content-encoding") == Some("gzip") {
        gunzip(&req.body, 10 << 20).unwrap()
    } else {
        req.body.clone()
    };
    serde_json::from_slice::<Vec<Value>>(&body).unwrap()
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

fn request_for(sink: &DatadogSink, n: usize) -> HttpRequest {
    let batch: Vec<SinkRecord> = (0..n).map(small).collect();
    sink.build(&batch, NOW).requests.remove(0)
}

#[test]
fn config_yaml_defaults_and_sites() {
    let c: DatadogConfig = serde_yaml_ng::from_str("api_key: {env: DD_API_KEY}\n").unwrap();
    assert_eq!(c.site, DatadogSite::Us1);
    assert_eq!(c.ddsource, "secflow");
    assert!(c.gzip);
    assert_eq!(
        (
            c.max_entries_per_request,
            c.max_request_bytes,
            c.max_entry_bytes
        ),
        (1000, 5_000_000, 1_000_000)
    );
    for (site, url) in [
        (
            "datadoghq.com",
            "https://http-intake.logs.datadoghq.com/api/v2/logs",
        ),
        (
            "datadoghq.eu",
            "https://http-intake.logs.datadoghq.eu/api/v2/logs",
        ),
        (
            "us3.datadoghq.com",
            "https://http-intake.logs.us3.datadoghq.com/api/v2/logs",
        ),
        (
            "us5.datadoghq.com",
            "https://http-intake.logs.us5.datadoghq.com/api/v2/logs",
        ),
        (
            "ap1.datadoghq.com",
            "https://http-intake.logs.ap1.datadoghq.com/api/v2/logs",
        ),
        (
            "ap2.datadoghq.com",
            "https://http-intake.logs.ap2.datadoghq.com/api/v2/logs",
        ),
        (
            "ddog-gov.com",
            "https://http-intake.logs.ddog-gov.com/api/v2/logs",
        ),
    ] {
        let c: DatadogConfig =
            serde_yaml_ng::from_str(&format!("site: {site}\napi_key: {{env: K}}\n")).unwrap();
        assert_eq!(c.site.domain(), site);
        assert_eq!(sink_with(c).url(), url, "{site}");
    }
    for bad in [
        "site: datadoghq.org\napi_key: {env: K}\n",
        "api_key: {env: K}\ntag: [a]\n",
        "site: datadoghq.com\n",
        "api_key: hunter2\n",
    ] {
        assert!(
            serde_yaml_ng::from_str::<DatadogConfig>(bad).is_err(),
            "{bad}"
        );
    }
    let c = config(json!({"endpoint": "http://127.0.0.1:8126/"}));
    assert_eq!(sink_with(c).url(), "http://127.0.0.1:8126/api/v2/logs");
}

#[test]
fn construction_refuses_what_cannot_work() {
    for extra in [
        json!({"endpoint": "127.0.0.1:8126"}),
        json!({"endpoint": "https://proxy/api/v2/logs"}),
        json!({"max_entries_per_request": 1001}),
        json!({"max_entries_per_request": 0}),
        json!({"max_request_bytes": 5_000_001}),
        json!({"max_entry_bytes": 1_000_001}),
        json!({"ddsource": " "}),
        json!({"tags": ["env:prod,team:x"]}),
        json!({"tags": [""]}),
        json!({"service": ""}),
    ] {
        let e = DatadogSink::new("dd", config(extra.clone()), Secret::new(KEY)).unwrap_err();
        assert!(matches!(e, SinkError::Config(_)), "{extra}");
    }
}

#[test]
fn ecs_document_is_merged_with_reserved_attributes() {
    let e = entry(&sink(), &rec("4b5c", ECS, PayloadFormat::Ecs));
    let doc: Value = serde_json::from_str(ECS).unwrap();
    assert_eq!(e["ddsource"], "secflow");
    assert_eq!(e["ddtags"], "env:prod,team:soc,tenant:acme_corp");
    assert_eq!(e["hostname"], "ws-fin-042.corp.example.com");
    assert_eq!(e["service"], "secflow-siem");
    assert_eq!(e["status"], "error", "ECS severity 73 is high");
    assert_eq!(e["message"], doc["message"]);
    // The document's fields are top-level attributes, unchanged.
    for key in ["@timestamp", "event", "host", "process", "threat", "rule"] {
        assert_eq!(e[key], doc[key], "{key}");
    }
    // ECS has @timestamp: no second date.
    assert!(e.get("timestamp").is_none());
    assert_eq!(
        e["secflow"],
        json!({"event_id": "4b5c", "tenant": "Acme Corp", "format": "ecs"})
    );
}

#[test]
fn ocsf_collisions_are_kept_under_secflow_overridden() {
    let e = entry(&sink(), &rec("4b5c", OCSF, PayloadFormat::Ocsf));
    let doc: Value = serde_json::from_str(OCSF).unwrap();
    // OCSF `status` is the outcome ("Success"); Datadog's `status` is the log level.
    assert_eq!(e["status"], "error");
    assert_eq!(e["secflow"]["overridden"]["status"], doc["status"]);
    assert_eq!(e["hostname"], "ws-fin-042.corp.example.com");
    assert_eq!(e["severity_id"], 4);
    // OCSF `time` is not a Datadog date attribute: the event time is added.
    assert_eq!(e["timestamp"], T);
}

#[test]
fn cef_line_is_the_message() {
    let e = entry(&sink(), &rec("4b5c", CEF, PayloadFormat::Cef));
    assert_eq!(e["message"], CEF.trim_end());
    assert_eq!(e["hostname"], "ws-fin-042.corp.example.com");
    assert_eq!(e["status"], "error", "CEF severity 8 is high");
    assert_eq!(e["timestamp"], T);
    assert_eq!(e["secflow"]["format"], "cef");
    assert!(e.get("event").is_none());
}

#[test]
fn configured_hostname_is_the_fallback_and_tenantless_records_get_no_tenant_tag() {
    let s = sink_with(config(json!({"hostname": "collector-1"})));
    let mut r = rec("x", r#"{"event":{"id":"x"}}"#, PayloadFormat::Ecs);
    r.tenant = None;
    r.event_time_ms = None;
    let e = entry(&s, &r);
    assert_eq!(e["hostname"], "collector-1");
    assert!(e.get("ddtags").is_none());
    assert!(e.get("service").is_none() && e.get("status").is_none());
    assert!(e.get("timestamp").is_none());
    assert_eq!(e["secflow"], json!({"event_id": "x", "format": "ecs"}));
}

#[test]
fn unusable_payloads_are_rejected_not_sent() {
    let s = sink();
    let batch = vec![
        rec("ok", r#"{"event":{"id":"ok"}}"#, PayloadFormat::Ecs),
        rec("notjson", "{not json", PayloadFormat::Ecs),
        rec("array", "[1,2]", PayloadFormat::Ocsf),
        rec("empty", "\n", PayloadFormat::Cef),
        SinkRecord {
            payload: vec![0xff, 0xfe],
            ..rec("bin", "", PayloadFormat::Cef)
        },
    ];
    let built = s.build(&batch, NOW);
    assert_eq!(built.requests.len(), 1);
    assert_eq!(built.requests[0].records, vec![0]);
    let rejected: Vec<usize> = built.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, vec![1, 2, 3, 4]);
    for (_, o) in &built.rejected {
        assert_eq!(o.class(), Some("invalid_payload"));
        assert!(matches!(o, Outcome::Permanent { status: None, .. }));
    }
}

#[test]
fn request_shape_headers_and_gzip() {
    let s = sink();
    let batch: Vec<SinkRecord> = (0..3).map(small).collect();
    let built = s.build(&batch, NOW);
    assert!(built.rejected.is_empty());
    let req = &built.requests[0];
    assert_eq!(req.method, Method::Post);
    assert_eq!(
        req.url,
        "https://http-intake.logs.datadoghq.com/api/v2/logs"
    );
    assert_eq!(req.header("dd-api-key"), Some(KEY));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    assert_eq!(req.records, vec![0, 1, 2]);
    let ids: Vec<Value> = entries(req)
        .iter()
        .map(|e| e["secflow"]["event_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("e0"), json!("e1"), json!("e2")]);
    // Without gzip the body is the plain array.
    let plain = sink_with(config(json!({"gzip": false})));
    let req = plain.build(&batch, NOW).requests.remove(0);
    assert_eq!(req.header("content-encoding"), None);
    assert!(req.body.starts_with(b"[{") && req.body.ends_with(b"}]"));
    // The key never shows in Debug.
    assert!(!format!("{req:?}").contains(KEY));
}

#[test]
fn batches_split_at_1000_entries() {
    let batch: Vec<SinkRecord> = (0..2500).map(small).collect();
    let built = sink().build(&batch, NOW);
    let sizes: Vec<usize> = built.requests.iter().map(|r| r.records.len()).collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);
    let all: Vec<usize> = built
        .requests
        .iter()
        .flat_map(|r| r.records.clone())
        .collect();
    assert_eq!(all, (0..2500).collect::<Vec<_>>());
    assert_eq!(entries(&built.requests[1]).len(), 1000);
}

#[test]
fn batches_split_at_5_mb_and_oversized_entries_are_dead_lettered() {
    // 12 entries of ~900 kB: at most 5 fit under 5 MB.
    let big = |i: usize, n: usize| {
        rec(
            &format!("big{i}"),
            &format!(
                r#"{{"event":{{"id":"big{i}"}},"blob":"{}"}}"#,
                "x".repeat(n)
            ),
            PayloadFormat::Ecs,
        )
    };
    let mut batch: Vec<SinkRecord> = (0..12).map(|i| big(i, 900_000)).collect();
    batch.insert(3, big(99, 1_000_000));
    let built = sink().build(&batch, NOW);
    assert_eq!(built.rejected.len(), 1);
    let (idx, outcome) = &built.rejected[0];
    assert_eq!(*idx, 3);
    match outcome {
        Outcome::Permanent {
            class,
            status,
            message,
        } => {
            assert_eq!(class, "payload_too_large");
            assert_eq!(*status, None);
            assert!(message.contains("over the 1000000 byte limit"), "{message}");
            assert!(message.contains("dead-lettered instead of truncated"));
        }
        o => panic!("{o:?}"),
    }
    let sizes: Vec<usize> = built.requests.iter().map(|r| r.records.len()).collect();
    assert_eq!(sizes, vec![5, 5, 2]);
    for r in &built.requests {
        let body = gunzip(&r.body, 10 << 20).unwrap();
        assert!(body.len() <= MAX_REQUEST_BYTES, "{}", body.len());
        assert!(!r.records.contains(&3));
    }
    // A lower configured limit applies too.
    let s = sink_with(config(
        json!({"max_entry_bytes": 500, "max_request_bytes": 1000}),
    ));
    let built = s.build(&[small(0), big(1, 1000)], NOW);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, 1);
}

#[test]
fn traceparent_only_when_shared() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut a = small(0);
    a.traceparent = Some(tp.into());
    let mut b = small(1);
    b.traceparent = Some(tp.into());
    let r = sink()
        .build(&[a.clone(), b.clone()], NOW)
        .requests
        .remove(0);
    assert_eq!(r.header("traceparent"), Some(tp));
    b.traceparent = None;
    let r = sink().build(&[a, b], NOW).requests.remove(0);
    assert_eq!(r.header("traceparent"), None);
}

#[test]
fn accepted_is_delivered() {
    let s = sink();
    let req = request_for(&s, 3);
    for status in [200, 202] {
        let c = s.classify(&req, &resp(status, &[], "{}"));
        assert_eq!(c.outcomes, vec![Outcome::Delivered; 3]);
        assert!(c.sink_down.is_none() && !c.split);
    }
}

#[test]
fn bad_key_is_permanent_opens_the_circuit_and_says_so() {
    let s = sink();
    let req = request_for(&s, 2);
    let body = format!(
        r#"{{"errors":[{{"status":"403","title":"Forbidden","detail":"API key {KEY} is invalid"}}]}}"#
    );
    let c = s.classify(&req, &resp(403, &[], &body));
    assert_eq!(c.outcomes.len(), 2);
    let down = c.sink_down.clone().unwrap();
    assert_eq!((down.class.as_str(), down.status), ("auth", Some(403)));
    assert!(
        down.message.contains("API key is invalid or revoked")
            && down.message.contains("circuit open")
            && down.message.contains("datadoghq.com")
            && down.message.contains("Forbidden: API key *** is invalid"),
        "{}",
        down.message
    );
    for o in &c.outcomes {
        assert!(
            matches!(o, Outcome::Permanent { class, status: Some(403), .. } if class == "auth")
        );
    }
    assert!(!format!("{c:?}").contains(KEY));
    let c = s.classify(&req, &resp(401, &[], r#"{"errors":["Unauthorized"]}"#));
    assert!(c.sink_down.is_some());
    assert!(
        matches!(&c.outcomes[0], Outcome::Permanent { class, status: Some(401), message } if class == "auth" && message.contains("missing DD-API-KEY"))
    );
}

#[test]
fn bad_request_is_permanent_with_datadog_detail() {
    let s = sink();
    let req = request_for(&s, 2);
    let c = s.classify(
        &req,
        &resp(
            400,
            &[],
            r#"{"errors":[{"status":"400","title":"Bad Request","detail":"invalid JSON"}]}"#,
        ),
    );
    assert_eq!(
        c.outcomes,
        vec![Outcome::permanent("rejected", Some(400), "HTTP 400: Bad Request: invalid JSON"); 2]
    );
    assert!(c.sink_down.is_none() && !c.split);
}

#[test]
fn too_large_splits_then_dead_letters_a_single_entry() {
    let s = sink();
    let c = s.classify(&request_for(&s, 2), &resp(413, &[], ""));
    assert!(c.split);
    assert!(c
        .outcomes
        .iter()
        .all(|o| matches!(o, Outcome::Retry { .. })));
    let c = s.classify(&request_for(&s, 1), &resp(413, &[], ""));
    assert!(!c.split);
    assert!(
        matches!(&c.outcomes[0], Outcome::Permanent { class, status: Some(413), .. } if class == "payload_too_large")
    );
}

#[test]
fn throttling_timeouts_and_server_errors_are_retried() {
    let s = sink();
    let req = request_for(&s, 2);
    let c = s.classify(
        &req,
        &resp(
            429,
            &[("Retry-After", "3")],
            r#"{"errors":[{"status":"429","title":"Too Many Requests"}]}"#,
        ),
    );
    match &c.outcomes[0] {
        Outcome::Retry {
            class,
            status,
            message,
            retry_after,
        } => {
            assert_eq!(class, "rate_limited");
            assert_eq!(*status, Some(429));
            assert_eq!(message, "HTTP 429: Too Many Requests");
            assert_eq!(
                *retry_after,
                Some(RetryAfter::Delay(Duration::from_secs(3)))
            );
        }
        o => panic!("{o:?}"),
    }
    assert!(c.sink_down.is_some());
    let c = s.classify(&req, &resp(408, &[], ""));
    assert_eq!(c.outcomes[0].class(), Some("timeout"));
    assert!(matches!(c.outcomes[0], Outcome::Retry { .. }));
    assert!(c.sink_down.is_none(), "a request timeout is not an outage");
    for status in [500, 502, 503, 504] {
        let c = s.classify(&req, &resp(status, &[], "<html>bad gateway</html>"));
        assert!(matches!(c.outcomes[1], Outcome::Retry { .. }), "{status}");
        assert!(c.sink_down.is_some(), "{status}");
    }
}

#[test]
fn probe_posts_an_empty_array_with_the_key() {
    let s = sink();
    let p = s.health_probe().unwrap();
    assert_eq!(p.method, Method::Post);
    assert_eq!(p.url, s.url());
    assert_eq!(p.body, b"[]");
    assert_eq!(p.header("dd-api-key"), Some(KEY));
    assert!(p.records.is_empty());
    assert!(s.probe_ok(&resp(202, &[], "{}")));
    assert!(s.probe_ok(&resp(400, &[], "")));
    for status in [401, 403, 429, 500, 503] {
        assert!(!s.probe_ok(&resp(status, &[], "")), "{status}");
    }
}

#[test]
fn transport_errors_retry_and_redact() {
    let s = sink();
    let c = s.classify_transport_error(
        &request_for(&s, 2),
        &TransportError {
            kind: TransportErrorKind::Connect,
            message: format!("connection refused, key {KEY}"),
        },
    );
    assert_eq!(c.outcomes[0].class(), Some("connect"));
    assert!(c.sink_down.is_some());
    assert!(!format!("{c:?}").contains(KEY));
    assert_eq!(s.redact(&format!("x{KEY}y")), "x***y");
}

#[test]
fn error_bodies_of_every_shape_and_garbage_never_panic() {
    assert_eq!(
        error_detail(br#"{"errors":["Forbidden","Bad key"]}"#).as_deref(),
        Some("Forbidden; Bad key")
    );
    assert_eq!(
        error_detail(br#"{"errors":[{"detail":"d"},{"title":"t"},{},3]}"#).as_deref(),
        Some("d; t")
    );
    for body in [&b""[..], b"{}", b"[]", b"{\"errors\":{}}", b"\xff\xfe"] {
        assert_eq!(error_detail(body), None);
    }
    let s = sink();
    let req = request_for(&s, 2);
    for status in [
        0, 100, 200, 301, 400, 401, 403, 404, 408, 413, 429, 500, 503, 999,
    ] {
        for body in ["", "\u{0}", "{\"errors\":[null]}", "<html>"] {
            assert_eq!(s.classify(&req, &resp(status, &[], body)).outcomes.len(), 2);
        }
    }
}

#[test]
fn tag_values_are_sanitized_like_datadog_does() {
    assert_eq!(sanitize_tag_value("Acme Corp/EU#1"), "acme_corp/eu_1");
    assert_eq!(sanitize_tag_value(&"a".repeat(300)).len(), 200);
    assert_eq!(
        datadog_status(crate::sink::event_fields::Severity::Medium),
        "warning"
    );
}
