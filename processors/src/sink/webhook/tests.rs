#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;
use crate::sink::{gunzip, Outcome, PayloadFormat, RetryAfter};

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn config(extra: serde_json::Value) -> WebhookConfig {
    let mut v = serde_json::json!({ "url": "https://hooks.example/in" });
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            m.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

fn secrets() -> Vec<Secret> {
    vec![Secret::new("whsec_current"), Secret::new("whsec_previous")]
}

fn rec(id: &str, payload: &str, format: PayloadFormat) -> SinkRecord {
    SinkRecord {
        event_id: Some(id.to_string()),
        tenant: Some("acme".into()),
        event_time_ms: Some(1_700_000_000_000),
        key: None,
        payload: payload.as_bytes().to_vec(),
        format,
        traceparent: None,
    }
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

#[test]
fn hmac_known_answers() {
    // RFC 4231 test case 2, through the same crate types the signer uses.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
    mac.update(b"what do ya want for nothing?");
    assert_eq!(
        signing::hex(&mac.finalize().into_bytes()),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Computed independently (Python's hmac module) for t=1700000000, body [{"id":"e1"}].
    let body = br#"[{"id":"e1"}]"#;
    assert_eq!(
        signing::signature(&Secret::new("whsec_current"), 1_700_000_000, body),
        "f452038c39a0baca7a2eb696387694412cc3e21bbd8db96939db1988c066973a"
    );
    assert_eq!(
        signing::header_value(&secrets(), 1_700_000_000, body),
        "t=1700000000,\
         v1=f452038c39a0baca7a2eb696387694412cc3e21bbd8db96939db1988c066973a,\
         v1=83e1ee7767d3ca57ab1d86a5df17047e107b627b04782f908a8d7205301ce089"
    );
}

#[test]
fn batch_request_byte_for_byte_with_signature_and_headers() {
    let c = config(serde_json::json!({
        "headers": {"X-Team": "soc"},
        "auth": {"bearer": {"env": "HOOK_TOKEN"}},
    }));
    let sink = WebhookSink::new(
        "hook",
        c,
        Some(Credentials::Bearer(Secret::new("bt-1"))),
        vec![Secret::new("whsec_current")],
    )
    .unwrap();
    let batch = vec![rec("e1", r#"{"id":"e1"}"#, PayloadFormat::Ecs)];
    let built = sink.build(&batch, at(1_700_000_000));
    let r = &built.requests[0];
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.url, "https://hooks.example/in");
    assert_eq!(r.body, br#"[{"id":"e1"}]"#);
    assert_eq!(
        r.headers,
        vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("X-Team".to_string(), "soc".to_string()),
            ("Authorization".to_string(), "Bearer bt-1".to_string()),
            (
                "X-Secflow-Signature".to_string(),
                "t=1700000000,v1=f452038c39a0baca7a2eb696387694412cc3e21bbd8db96939db1988c066973a"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn rotation_sends_both_signatures_and_time_is_an_input() {
    let sink = WebhookSink::new("hook", config(serde_json::json!({})), None, secrets()).unwrap();
    let batch = vec![rec("e1", r#"{"id":"e1"}"#, PayloadFormat::Ecs)];
    let a = sink.build(&batch, at(1_700_000_000)).requests.remove(0);
    let b = sink.build(&batch, at(1_700_000_000)).requests.remove(0);
    assert_eq!(a, b, "pure: same input, same request");
    let sig = a.header("x-secflow-signature").unwrap();
    assert_eq!(sig.matches("v1=").count(), 2);
    let later = sink.build(&batch, at(1_700_000_060)).requests.remove(0);
    assert!(later
        .header("x-secflow-signature")
        .unwrap()
        .starts_with("t=1700000060,v1="));
}

#[test]
fn batches_split_by_count_and_size() {
    let sink = WebhookSink::new(
        "hook",
        config(serde_json::json!({"max_events_per_request": 2})),
        None,
        vec![],
    )
    .unwrap();
    let batch: Vec<SinkRecord> = (0..5)
        .map(|i| rec(&format!("e{i}"), r#"{"n":1}"#, PayloadFormat::Ecs))
        .collect();
    let built = sink.build(&batch, at(0));
    let groups: Vec<Vec<usize>> = built.requests.iter().map(|r| r.records.clone()).collect();
    assert_eq!(groups, vec![vec![0, 1], vec![2, 3], vec![4]]);
    assert_eq!(built.requests[0].body, br#"[{"n":1},{"n":1}]"#);
    assert!(built.requests[0].header("x-secflow-signature").is_none());
    // `[` + 3 × 7 + 2 commas + `]` = 25 bytes.
    let sink = WebhookSink::new(
        "hook",
        config(serde_json::json!({"max_request_bytes": 25})),
        None,
        vec![],
    )
    .unwrap();
    let built = sink.build(&batch, at(0));
    let groups: Vec<Vec<usize>> = built.requests.iter().map(|r| r.records.clone()).collect();
    assert_eq!(groups, vec![vec![0, 1, 2], vec![3, 4]]);
    assert!(built.requests.iter().all(|r| r.body.len() <= 25));
    let big = rec(
        "big",
        &format!(r#"{{"x":"{}"}}"#, "a".repeat(40)),
        PayloadFormat::Ecs,
    );
    let built = sink.build(&[big], at(0));
    assert_eq!(built.rejected[0].1.class(), Some("payload_too_large"));
}

#[test]
fn event_mode_one_request_each_with_event_id_header() {
    let sink = WebhookSink::new(
        "hook",
        config(serde_json::json!({"mode": "event", "method": "put"})),
        None,
        vec![],
    )
    .unwrap();
    let batch = vec![
        rec("e1", r#"{"a":1}"#, PayloadFormat::Ecs),
        rec("e2", "{broken", PayloadFormat::Ecs),
        rec("e3", "CEF:0|a|b|1|c|d|5|", PayloadFormat::Cef),
    ];
    let built = sink.build(&batch, at(0));
    assert_eq!(built.requests.len(), 2);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, 1);
    assert_eq!(built.requests[0].method, Method::Put);
    assert_eq!(built.requests[0].body, br#"{"a":1}"#);
    assert_eq!(built.requests[0].header(EVENT_ID_HEADER), Some("e1"));
    assert_eq!(
        built.requests[1].body,
        br#"{"event_id":"e3","tenant":"acme","message":"CEF:0|a|b|1|c|d|5|"}"#
    );
    assert_eq!(built.requests[1].records, vec![2]);
}

#[test]
fn templates() {
    let sink = WebhookSink::new(
        "hook",
        config(serde_json::json!({
            "mode": "event",
            "template": r#"{"text": {{event}}, "id": {{ event_id }}, "tenant": {{tenant}}, "t": {{time_ms}}, "f": {{format}}}"#
        })),
        None,
        vec![],
    )
    .unwrap();
    let mut cef = rec("e1", "CEF:0|a|b|1|c|\"d\"|5|\n", PayloadFormat::Cef);
    cef.tenant = None;
    let built = sink.build(
        &[cef, rec("e2", r#"{"k":[1]}"#, PayloadFormat::Ocsf)],
        at(0),
    );
    assert_eq!(
        String::from_utf8(built.requests[0].body.clone()).unwrap(),
        r#"{"text": "CEF:0|a|b|1|c|\"d\"|5|", "id": "e1", "tenant": null, "t": 1700000000000, "f": "cef"}"#
    );
    assert_eq!(
        String::from_utf8(built.requests[1].body.clone()).unwrap(),
        r#"{"text": {"k":[1]}, "id": "e2", "tenant": "acme", "t": 1700000000000, "f": "ocsf"}"#
    );
    for bad in [
        r#"{"a": {{nope}}}"#,
        r#"{"a": {{event}"#,
        r#"{"a": {{event}} "#,
        r#"{{event}} {{event}}"#,
    ] {
        let c = config(serde_json::json!({ "template": bad }));
        assert!(WebhookSink::new("hook", c, None, vec![]).is_err(), "{bad}");
    }
}

#[test]
fn gzip_signs_the_uncompressed_body() {
    let sink = WebhookSink::new(
        "hook",
        config(serde_json::json!({"gzip": true})),
        None,
        secrets(),
    )
    .unwrap();
    let r = sink
        .build(
            &[rec("e1", r#"{"id":"e1"}"#, PayloadFormat::Ecs)],
            at(1_700_000_000),
        )
        .requests
        .remove(0);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let plain = gunzip(&r.body, 1 << 20).unwrap();
    assert_eq!(plain, br#"[{"id":"e1"}]"#);
    assert_eq!(
        r.header("x-secflow-signature"),
        Some(signing::header_value(&secrets(), 1_700_000_000, &plain).as_str())
    );
}

#[test]
fn config_checks() {
    let bad_configs = [
        serde_json::json!({"url": "ftp://x"}),
        serde_json::json!({"headers": {"Content-Type": "text/plain"}}),
        serde_json::json!({"headers": {"x-secflow-signature": "forged"}}),
        serde_json::json!({"headers": {"X-Evil": "a\r\nInjected: 1"}}),
        serde_json::json!({"headers": {"Bad Name": "x"}}),
        serde_json::json!({"signature_header": "bad header"}),
    ];
    for extra in bad_configs {
        let c = config(extra.clone());
        assert!(
            WebhookSink::new("hook", c, None, vec![]).is_err(),
            "{extra}"
        );
    }
    let three = vec![Secret::new("a"), Secret::new("b"), Secret::new("c")];
    assert!(WebhookSink::new("hook", config(serde_json::json!({})), None, three).is_err());
    // Authorization as a custom header is fine without `auth`, refused with it.
    let c = config(serde_json::json!({"headers": {"Authorization": "Token x"}}));
    assert!(WebhookSink::new("hook", c.clone(), None, vec![]).is_ok());
    assert!(WebhookSink::new(
        "hook",
        c,
        Some(Credentials::Bearer(Secret::new("t"))),
        vec![]
    )
    .is_err());
    let y: WebhookConfig = serde_yaml_ng::from_str(
        "url: https://h/x\nmode: event\nauth: {basic: {username: u, password: {env: P}}}\nsigning_secrets: [{env: S1}, {file: /run/s2}]\n",
    )
    .unwrap();
    assert_eq!(y.mode, WebhookMode::Event);
    assert_eq!(y.signing_secrets.len(), 2);
    assert!(serde_yaml_ng::from_str::<WebhookConfig>("url: https://h\nmode: stream\n").is_err());
    assert!(
        serde_yaml_ng::from_str::<WebhookConfig>("url: https://h\nauth: {token: x}\n").is_err()
    );
}

#[test]
fn classification_by_status() {
    let sink = WebhookSink::new(
        "hook",
        config(serde_json::json!({})),
        Some(Credentials::Basic {
            username: "u".into(),
            password: Secret::new("pw-9"),
        }),
        secrets(),
    )
    .unwrap();
    let batch = vec![
        rec("e1", "{}", PayloadFormat::Ecs),
        rec("e2", "{}", PayloadFormat::Ecs),
    ];
    let r = sink.build(&batch, at(0)).requests.remove(0);
    assert_eq!(
        sink.classify(&r, &resp(202, &[], "")).outcomes,
        vec![Outcome::Delivered; 2]
    );
    let c = sink.classify(
        &r,
        &resp(429, &[("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")], ""),
    );
    assert!(
        matches!(&c.outcomes[0], Outcome::Retry { retry_after: Some(RetryAfter::At(_)), class, .. } if class == "rate_limited")
    );
    assert!(c.sink_down.is_some());
    let c = sink.classify(
        &r,
        &resp(500, &[], "whsec_current leaked; auth dTpwdy05 pw-9"),
    );
    let text = format!("{c:?}");
    assert!(
        !text.contains("whsec_current") && !text.contains("pw-9") && !text.contains("dTpwdy05"),
        "{text}"
    );
    let c = sink.classify(&r, &resp(400, &[], "bad"));
    assert!(matches!(&c.outcomes[0], Outcome::Permanent { class, .. } if class == "rejected"));
    assert!(c.sink_down.is_none());
    let c = sink.classify(&r, &resp(413, &[], ""));
    assert!(c.split);
    assert_eq!(
        sink.classify(&r, &resp(409, &[], "replay")).outcomes,
        vec![Outcome::Duplicate; 2]
    );
    let strict = WebhookSink::new(
        "hook",
        config(serde_json::json!({"conflict_is_duplicate": false})),
        None,
        vec![],
    )
    .unwrap();
    let c = strict.classify(&r, &resp(409, &[], "conflict"));
    assert!(matches!(&c.outcomes[0], Outcome::Permanent { class, .. } if class == "rejected"));
    assert_eq!(sink.redact("x whsec_previous y"), "x *** y");
}
