#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use super::*;
use crate::sink::{gunzip, Method, Outcome, PayloadFormat, RetryAfter};

/// 2024-03-05T06:07:08.009Z
const T: i64 = 1_709_618_828_009;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_710_000_000_000)
}

fn config(index: &str) -> ElasticsearchConfig {
    serde_json::from_value(serde_json::json!({
        "endpoint": "http://es:9200",
        "index": index,
    }))
    .unwrap()
}

fn sink(index: &str) -> ElasticsearchSink {
    ElasticsearchSink::new(
        "es",
        config(index),
        Some(Credentials::ApiKey(Secret::new("a2V5aWQ6c2VjcmV0"))),
    )
    .unwrap()
}

fn rec(id: Option<&str>, payload: &str, format: PayloadFormat) -> SinkRecord {
    SinkRecord {
        event_id: id.map(str::to_string),
        tenant: Some("Acme-Corp".to_string()),
        event_time_ms: Some(T),
        key: None,
        payload: payload.as_bytes().to_vec(),
        format,
        traceparent: None,
    }
}

fn resp(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

fn request(s: &ElasticsearchSink, n: usize) -> HttpRequest {
    let batch: Vec<SinkRecord> = (0..n)
        .map(|i| {
            rec(
                Some(&format!("e{i}")),
                r#"{"@timestamp":"x"}"#,
                PayloadFormat::Ecs,
            )
        })
        .collect();
    s.build(&batch, now()).requests.remove(0)
}

#[test]
fn config_yaml_and_auth_shapes() {
    let c: ElasticsearchConfig =
        serde_yaml_ng::from_str("endpoint: https://es:9200\nauth: {api_key: {env: ES_KEY}}\n")
            .unwrap();
    assert_eq!(c.index, "logs-secflow.{format}-{tenant}");
    assert_eq!(
        c.auth,
        Some(EsAuthConfig::ApiKey(crate::sink::SecretSource::Env(
            "ES_KEY".into()
        )))
    );
    let c: ElasticsearchConfig = serde_yaml_ng::from_str(
        "endpoint: https://es:9200\nauth:\n  basic: {username: elastic, password: {file: /run/pw}}\n",
    )
    .unwrap();
    assert!(matches!(c.auth, Some(EsAuthConfig::Basic(_))));
    for bad in [
        "endpoint: e\nauth: {api_key: {env: A}, basic: {username: u, password: {env: B}}}\n",
        "endpoint: e\nauth: {}\n",
        "endpoint: e\nauth: {bearer: {env: A}}\n",
        "endpoint: e\nindx: a\n",
    ] {
        assert!(
            serde_yaml_ng::from_str::<ElasticsearchConfig>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn index_templates() {
    let t = IndexTemplate::parse("logs-secflow.{tenant}-{yyyy.MM.dd}").unwrap();
    assert_eq!(t.render("acme", "ecs", T), "logs-secflow.acme-2024.03.05");
    let t = IndexTemplate::parse("secflow-{format}-{yyyy}-{MM}-{dd}t{HH}").unwrap();
    assert_eq!(t.render("acme", "ocsf", T), "secflow-ocsf-2024-03-05t06");
    for bad in [
        "logs-{tenant",
        "logs-}x",
        "logs-{region}",
        "Logs-{tenant}",
        "_x{tenant}",
        "a{}",
        "a b",
    ] {
        assert!(IndexTemplate::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(sanitize_tenant("Acme-Corp.EU"), Some("acme_corp_eu".into()));
    assert_eq!(sanitize_tenant(""), None);
    assert!(validate_index_name(&"a".repeat(256)).is_err());
    assert!(validate_index_name("..").is_err());
}

#[test]
fn bulk_body_byte_for_byte() {
    let s = sink("logs-secflow.{tenant}-{yyyy.MM.dd}");
    let mut no_tenant = rec(None, "CEF:0|a|b|1|c|d|5|src=1.2.3.4\n", PayloadFormat::Cef);
    no_tenant.tenant = None;
    let batch = vec![
        rec(
            Some("e1"),
            r#"{"@timestamp":"2024-03-05T06:07:08.009Z","event":{"id":"e1"}}"#,
            PayloadFormat::Ecs,
        ),
        no_tenant,
    ];
    let built = s.build(&batch, now());
    assert!(built.rejected.is_empty());
    let r = &built.requests[0];
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.url, "http://es:9200/_bulk");
    assert_eq!(r.records, vec![0, 1]);
    assert_eq!(
        r.headers,
        vec![
            (
                "Content-Type".to_string(),
                "application/x-ndjson".to_string()
            ),
            (
                "Authorization".to_string(),
                "ApiKey a2V5aWQ6c2VjcmV0".to_string()
            ),
        ]
    );
    assert_eq!(
        String::from_utf8(r.body.clone()).unwrap(),
        concat!(
            r#"{"create":{"_index":"logs-secflow.acme_corp-2024.03.05","_id":"e1"}}"#,
            "\n",
            r#"{"@timestamp":"2024-03-05T06:07:08.009Z","event":{"id":"e1"}}"#,
            "\n",
            r#"{"create":{"_index":"logs-secflow.default-2024.03.05"}}"#,
            "\n",
            r#"{"@timestamp":"2024-03-05T06:07:08.009Z","message":"CEF:0|a|b|1|c|d|5|src=1.2.3.4"}"#,
            "\n",
        )
    );
}

#[test]
fn documents_get_a_timestamp_and_stay_on_one_line() {
    let s = sink("{format}-{yyyy}");
    let mut ocsf = rec(
        Some("o1"),
        "{\n \"time\": 1,\n \"class_uid\": 2004\n}",
        PayloadFormat::Ocsf,
    );
    ocsf.event_time_ms = None; // falls back to `now` for both the index and @timestamp
    let body = String::from_utf8(s.build(&[ocsf], now()).requests.remove(0).body).unwrap();
    assert_eq!(
        body,
        concat!(
            r#"{"create":{"_index":"ocsf-2024","_id":"o1"}}"#,
            "\n",
            r#"{"time":1,"class_uid":2004,"@timestamp":"2024-03-09T16:00:00.000Z"}"#,
            "\n",
        )
    );
    let mut c = config("x");
    c.add_timestamp = false;
    let s = ElasticsearchSink::new("es", c, None).unwrap();
    let body = s
        .build(&[rec(Some("a"), r#"{"k":1}"#, PayloadFormat::Ocsf)], now())
        .requests
        .remove(0);
    assert!(String::from_utf8(body.body.clone())
        .unwrap()
        .ends_with("{\"k\":1}\n"));
    assert_eq!(body.header("authorization"), None);
}

#[test]
fn unencodable_records_are_rejected() {
    let s = sink("logs-{tenant}");
    let mut long_tenant = rec(Some("t"), r#"{"a":1}"#, PayloadFormat::Ecs);
    long_tenant.tenant = Some("x".repeat(300));
    let batch = vec![
        rec(Some("a"), "[1,2]", PayloadFormat::Ecs),
        rec(Some("b"), "{bad", PayloadFormat::Ecs),
        long_tenant,
        rec(Some("ok"), r#"{"a":1}"#, PayloadFormat::Ecs),
    ];
    let built = s.build(&batch, now());
    let classes: Vec<(usize, Option<&str>)> = built
        .rejected
        .iter()
        .map(|(i, o)| (*i, o.class()))
        .collect();
    assert_eq!(
        classes,
        vec![
            (0, Some("invalid_payload")),
            (1, Some("invalid_payload")),
            (2, Some("invalid_index"))
        ]
    );
    assert_eq!(built.requests[0].records, vec![3]);
}

#[test]
fn split_by_max_request_bytes_and_gzip() {
    let mut c = config("x");
    c.max_request_bytes = 120;
    c.gzip = true;
    let s = ElasticsearchSink::new("es", c, None).unwrap();
    let batch: Vec<SinkRecord> = (0..5)
        .map(|i| {
            rec(
                Some(&format!("id-{i}")),
                r#"{"@timestamp":"t","n":1}"#,
                PayloadFormat::Ecs,
            )
        })
        .collect();
    // One entry is 43 + 25 + 2 = 70 bytes: one per request at 120.
    let built = s.build(&batch, now());
    assert_eq!(built.requests.len(), 5);
    for r in &built.requests {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        let plain = gunzip(&r.body, 1000).unwrap();
        assert!(plain.len() <= 120);
        assert_eq!(plain.iter().filter(|&&b| b == b'\n').count(), 2);
    }
    let mut big = batch[0].clone();
    big.payload = format!(r#"{{"@timestamp":"t","x":"{}"}}"#, "y".repeat(200)).into_bytes();
    let built = s.build(&[big], now());
    assert_eq!(built.rejected[0].1.class(), Some("payload_too_large"));
}

#[test]
fn basic_auth_and_pipeline() {
    let mut c = config("x");
    c.pipeline = Some("secflow-geoip".into());
    let s = ElasticsearchSink::new(
        "es",
        c.clone(),
        Some(Credentials::Basic {
            username: "elastic".into(),
            password: Secret::new("changeme"),
        }),
    )
    .unwrap();
    let r = request(&s, 1);
    assert_eq!(r.url, "http://es:9200/_bulk?pipeline=secflow-geoip");
    assert_eq!(
        r.header("authorization"),
        Some("Basic ZWxhc3RpYzpjaGFuZ2VtZQ==")
    );
    c.pipeline = Some("a&b=c".into());
    assert!(ElasticsearchSink::new("es", c, None).is_err());
    assert!(ElasticsearchSink::new("es", config("{nope}"), None).is_err());
}

#[test]
fn all_created() {
    let s = sink("x");
    let r = request(&s, 2);
    let body = r#"{"took":3,"errors":false,"items":[{"create":{"_index":"x","_id":"e0","_version":1,"result":"created","status":201}},{"create":{"_index":"x","_id":"e1","_version":1,"result":"created","status":201}}]}"#;
    let c = s.classify(&r, &resp(200, body));
    assert_eq!(c.outcomes, vec![Outcome::Delivered; 2]);
    assert!(c.sink_down.is_none());
}

#[test]
fn per_item_outcomes() {
    let s = sink("x");
    let r = request(&s, 6);
    let body = r#"{"took":5,"errors":true,"items":[
      {"create":{"_index":"x","_id":"e0","status":201,"result":"created"}},
      {"create":{"_index":"x","_id":"e1","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[e1]: version conflict, document already exists (current version [1])"}}},
      {"create":{"_index":"x","_id":"e2","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}},
      {"create":{"_index":"x","_id":"e3","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [source.port] of type [long]","caused_by":{"type":"number_format_exception","reason":"For input string: \"http\""}}}},
      {"create":{"_index":"x","_id":"e4","status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}},
      {"create":{"_index":"x","_id":"e5","status":404,"error":{"type":"index_not_found_exception","reason":"no such index [x]"}}}
    ]}"#;
    let c = s.classify(&r, &resp(200, body));
    assert_eq!(c.outcomes[0], Outcome::Delivered);
    assert_eq!(c.outcomes[1], Outcome::Duplicate);
    assert!(
        matches!(&c.outcomes[2], Outcome::Retry { class, status: Some(429), .. } if class == "rate_limited")
    );
    match &c.outcomes[3] {
        Outcome::Permanent {
            class,
            status,
            message,
        } => {
            assert_eq!(class, "mapper_parsing_exception");
            assert_eq!(*status, Some(400));
            assert_eq!(
                message,
                "item HTTP 400: mapper_parsing_exception: failed to parse field [source.port] of type [long] (caused by number_format_exception: For input string: \"http\")"
            );
        }
        o => panic!("{o:?}"),
    }
    assert!(
        matches!(&c.outcomes[4], Outcome::Retry { class, status: Some(503), .. } if class == "unavailable_shards_exception")
    );
    assert!(
        matches!(&c.outcomes[5], Outcome::Permanent { class, .. } if class == "index_not_found_exception")
    );
    assert!(c.sink_down.is_none(), "a partial failure is not an outage");
}

#[test]
fn every_item_rejected_is_an_outage() {
    let s = sink("x");
    let r = request(&s, 2);
    let item = r#"{"create":{"_index":"x","_id":"e","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}"#;
    let c = s.classify(
        &r,
        &resp(
            200,
            &format!(r#"{{"took":1,"errors":true,"items":[{item},{item}]}}"#),
        ),
    );
    assert!(c
        .outcomes
        .iter()
        .all(|o| matches!(o, Outcome::Retry { .. })));
    assert_eq!(c.sink_down.unwrap().class, "rate_limited");
}

#[test]
fn unreadable_or_mismatched_responses_retry_everything() {
    let s = sink("x");
    let r = request(&s, 2);
    for body in [
        "<html>oops</html>",
        r#"{"took":1,"errors":true}"#,
        r#"{"took":1,"errors":false,"items":[{"create":{"status":201}}]}"#,
        r#"{"took":1,"errors":true,"items":[{"create":{"status":201}},"x"]}"#,
    ] {
        let c = s.classify(&r, &resp(200, body));
        assert_eq!(c.outcomes.len(), 2, "{body}");
        assert!(
            c.outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Retry { .. })),
            "{body}"
        );
        assert!(
            !c.outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Permanent { .. })),
            "{body}"
        );
    }
}

#[test]
fn whole_request_errors() {
    let s = sink("x");
    let r = request(&s, 2);
    let c = s.classify(&r, &resp(413, ""));
    assert!(c.split);
    let one = request(&s, 1);
    let c = s.classify(&one, &resp(413, ""));
    assert!(!c.split);
    assert_eq!(c.outcomes[0].class(), Some("payload_too_large"));
    let c = s.classify(
        &r,
        &resp(401, r#"{"error":{"root_cause":[],"type":"security_exception","reason":"unable to authenticate with provided credentials a2V5aWQ6c2VjcmV0"},"status":401}"#),
    );
    assert!(
        matches!(&c.outcomes[0], Outcome::Permanent { class, message, .. }
        if class == "auth" && message.contains("security_exception") && !message.contains("a2V5aWQ6c2VjcmV0"))
    );
    assert!(c.sink_down.is_some());
    let c = s.classify(
        &r,
        &HttpResponse {
            status: 429,
            headers: vec![("Retry-After".into(), "2".into())],
            body: br#"{"error":"circuit_breaking_exception"}"#.to_vec(),
        },
    );
    assert!(
        matches!(&c.outcomes[0], Outcome::Retry { retry_after: Some(RetryAfter::Delay(d)), .. } if *d == Duration::from_secs(2))
    );
    assert!(c.sink_down.is_some());
    let c = s.classify(&r, &resp(400, r#"{"error":{"type":"illegal_argument_exception","reason":"Malformed action/metadata line [1]"},"status":400}"#));
    assert!(
        matches!(&c.outcomes[1], Outcome::Permanent { message, .. } if message.contains("Malformed action"))
    );
}
