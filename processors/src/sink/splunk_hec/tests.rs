#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use super::*;
use crate::sink::{gunzip, Method, Outcome, PayloadFormat, RetryAfter};

const NOW: SystemTime = SystemTime::UNIX_EPOCH;

fn config() -> HecConfig {
    serde_json::from_value(serde_json::json!({
        "endpoint": "https://splunk.example:8088/",
        "token": {"env": "HEC_TOKEN"},
    }))
    .unwrap()
}

fn sink_with(config: HecConfig) -> SplunkHecSink {
    SplunkHecSink::with_channel("hec", config, Secret::new("tok-abc"), "chan-1").unwrap()
}

fn acked_sink() -> SplunkHecSink {
    let mut c = config();
    c.indexer_acks = Some(HecAckConfig::default());
    sink_with(c)
}

fn rec(id: &str, payload: &str, format: PayloadFormat) -> SinkRecord {
    SinkRecord {
        event_id: Some(id.to_string()),
        tenant: Some("acme".to_string()),
        event_time_ms: Some(1_700_000_000_123),
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

fn request_for(sink: &SplunkHecSink, n: usize) -> HttpRequest {
    let batch: Vec<SinkRecord> = (0..n)
        .map(|i| rec(&format!("e{i}"), r#"{"a":1}"#, PayloadFormat::Ecs))
        .collect();
    let mut built = sink.build(&batch, NOW);
    assert_eq!(built.requests.len(), 1);
    built.requests.remove(0)
}

#[test]
fn config_yaml_shape() {
    let c: HecConfig = serde_yaml_ng::from_str(
        "endpoint: https://h:8088\ntoken: {env: HEC_TOKEN}\nindex: security\nindexer_acks: {}\n",
    )
    .unwrap();
    assert_eq!(c.index.as_deref(), Some("security"));
    assert_eq!(c.indexer_acks, Some(HecAckConfig::default()));
    assert_eq!(c.max_request_bytes, 1_000_000);
    let p = c.indexer_acks.unwrap().policy();
    assert_eq!(p.poll_interval, Duration::from_secs(10));
    assert_eq!(p.timeout, Duration::from_secs(300));
    assert!(serde_yaml_ng::from_str::<HecConfig>(
        "endpoint: https://h\ntoken: {env: T}\ntokn: x\n"
    )
    .is_err());
    assert!(serde_yaml_ng::from_str::<HecConfig>("endpoint: https://h\ntoken: plain\n").is_err());
}

#[test]
fn constructor_rejects_bad_endpoints() {
    for e in ["splunk:8088", "https://h:8088/services/collector/event"] {
        let mut c = config();
        c.endpoint = e.to_string();
        assert!(
            SplunkHecSink::new("hec", c, Secret::new("t")).is_err(),
            "{e}"
        );
    }
    let a = SplunkHecSink::new("hec", config(), Secret::new("t")).unwrap();
    let b = SplunkHecSink::new("hec", config(), Secret::new("t")).unwrap();
    assert_ne!(a.channel(), b.channel(), "a GUID per instance");
    assert!(uuid::Uuid::parse_str(&a.channel()).is_ok());
}

#[test]
fn time_has_a_millisecond_fraction() {
    assert_eq!(format_time(1_700_000_000_123), "1700000000.123");
    assert_eq!(format_time(5), "0.005");
    assert_eq!(format_time(0), "0.000");
    assert_eq!(format_time(-1_500), "-1.500");
}

#[test]
fn event_json_byte_for_byte() {
    let mut c = config();
    c.host = Some("sensor-1".into());
    c.source = Some("secflow".into());
    c.sourcetype = Some("ecs:json".into());
    c.index = Some("security".into());
    c.fields.insert("env".into(), "prod".into());
    c.fields.insert("tenant".into(), "overridden".into());
    let out = encode_event(&c, &rec("e1", "{\"a\": 1}\n", PayloadFormat::Ecs)).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"time":1700000000.123,"host":"sensor-1","source":"secflow","sourcetype":"ecs:json","index":"security","event":{"a": 1},"fields":{"env":"prod","event_id":"e1","tenant":"acme"}}"#
    );
}

#[test]
fn cef_is_a_string_and_minimal_events_have_no_optional_keys() {
    let mut r = rec(
        "e2",
        "CEF:0|secflow|x|1|sig|Name \"q\"|5|src=10.0.0.1\n",
        PayloadFormat::Cef,
    );
    r.event_time_ms = None;
    r.tenant = None;
    r.event_id = None;
    let out = encode_event(&config(), &r).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"event":"CEF:0|secflow|x|1|sig|Name \"q\"|5|src=10.0.0.1"}"#
    );
}

#[test]
fn pretty_json_is_compacted_and_bad_payloads_are_rejected() {
    let out = encode_event(
        &config(),
        &rec("e", "{\n  \"a\": [1, 2]\n}", PayloadFormat::Ocsf),
    )
    .unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains(r#""event":{"a":[1,2]}"#), "{s}");
    assert!(!s.contains('\n'));
    for (payload, format) in [
        ("{not json", PayloadFormat::Ecs),
        ("null", PayloadFormat::Ecs),
        ("\"\"", PayloadFormat::Ecs),
        ("\n", PayloadFormat::Cef),
    ] {
        assert!(
            encode_event(&config(), &rec("e", payload, format)).is_err(),
            "{payload}"
        );
    }
    let mut bad = rec("e", "", PayloadFormat::Cef);
    bad.payload = vec![0xff, 0xfe];
    assert!(encode_event(&config(), &bad).is_err());
}

#[test]
fn build_headers_url_body_and_rejections() {
    let sink = sink_with(config());
    let batch = vec![
        rec("e0", r#"{"a":0}"#, PayloadFormat::Ecs),
        rec("e1", "{oops", PayloadFormat::Ecs),
        rec("e2", "CEF:0|a|b|1|c|d|1|", PayloadFormat::Cef),
    ];
    let built = sink.build(&batch, NOW);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, 1);
    assert_eq!(built.rejected[0].1.class(), Some("invalid_payload"));
    assert!(matches!(built.rejected[0].1, Outcome::Permanent { .. }));
    let r = &built.requests[0];
    assert_eq!(r.method, Method::Post);
    assert_eq!(
        r.url,
        "https://splunk.example:8088/services/collector/event"
    );
    assert_eq!(r.records, vec![0, 2]);
    assert_eq!(
        r.headers,
        vec![
            ("Authorization".to_string(), "Splunk tok-abc".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
            ("X-Splunk-Request-Channel".to_string(), "chan-1".to_string()),
        ]
    );
    assert_eq!(
        String::from_utf8(r.body.clone()).unwrap(),
        concat!(
            r#"{"time":1700000000.123,"event":{"a":0},"fields":{"event_id":"e0","tenant":"acme"}}"#,
            "\n",
            r#"{"time":1700000000.123,"event":"CEF:0|a|b|1|c|d|1|","fields":{"event_id":"e2","tenant":"acme"}}"#
        )
    );
}

#[test]
fn batches_split_at_max_request_bytes() {
    let one = encode_event(&config(), &rec("e0", r#"{"a":0}"#, PayloadFormat::Ecs))
        .unwrap()
        .len();
    let mut c = config();
    c.max_request_bytes = one * 2 + 1; // two events and the newline between them
    let sink = sink_with(c);
    let mut batch: Vec<SinkRecord> = (0..5)
        .map(|i| rec(&format!("e{i}"), r#"{"a":0}"#, PayloadFormat::Ecs))
        .collect();
    batch.push(rec(
        "big",
        &format!(r#"{{"a":"{}"}}"#, "x".repeat(one * 3)),
        PayloadFormat::Ecs,
    ));
    let built = sink.build(&batch, NOW);
    let groups: Vec<Vec<usize>> = built.requests.iter().map(|r| r.records.clone()).collect();
    assert_eq!(groups, vec![vec![0, 1], vec![2, 3], vec![4]]);
    for r in &built.requests {
        assert!(r.body.len() <= one * 2 + 1);
    }
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, 5);
    assert_eq!(built.rejected[0].1.class(), Some("payload_too_large"));
}

#[test]
fn gzip_round_trip() {
    let batch = vec![
        rec("e0", r#"{"a":0}"#, PayloadFormat::Ecs),
        rec("e1", r#"{"a":1}"#, PayloadFormat::Ecs),
    ];
    let plain = sink_with(config()).build(&batch, NOW).requests.remove(0);
    let mut c = config();
    c.gzip = true;
    let zipped = sink_with(c).build(&batch, NOW).requests.remove(0);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&zipped.body, 1 << 20).unwrap(), plain.body);
    assert_eq!(plain.header("content-encoding"), None);
}

#[test]
fn traceparent_only_when_shared() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut a = rec("a", r#"{"a":0}"#, PayloadFormat::Ecs);
    a.traceparent = Some(tp.into());
    let mut b = a.clone();
    let sink = sink_with(config());
    let r = sink.build(&[a.clone(), b.clone()], NOW).requests.remove(0);
    assert_eq!(r.header("traceparent"), Some(tp));
    b.traceparent = None;
    let r = sink.build(&[a, b], NOW).requests.remove(0);
    assert_eq!(r.header("traceparent"), None);
}

#[test]
fn success_without_and_with_acks() {
    let sink = sink_with(config());
    let req = request_for(&sink, 2);
    let c = sink.classify(&req, &resp(200, &[], r#"{"text":"Success","code":0}"#));
    assert_eq!(c.outcomes, vec![Outcome::Delivered; 2]);
    assert!(c.sink_down.is_none() && c.ack_reset.is_none() && !c.split);

    let sink = acked_sink();
    let req = request_for(&sink, 2);
    let c = sink.classify(
        &req,
        &resp(200, &[], r#"{"text":"Success","code":0,"ackId":7}"#),
    );
    let token = AckToken {
        channel: "chan-1".into(),
        id: 7,
    };
    assert_eq!(c.outcomes, vec![Outcome::AwaitAck(token); 2]);
    // A token without useACK answers without ackId: HEC's 200 is all there is.
    let c = sink.classify(&req, &resp(200, &[], r#"{"text":"Success","code":0}"#));
    assert_eq!(c.outcomes, vec![Outcome::Delivered; 2]);
    assert!(sink.ack_policy().is_some());
    assert!(sink_with(config()).ack_policy().is_none());
}

#[test]
fn server_busy_retries_with_retry_after_and_marks_down() {
    let sink = sink_with(config());
    let req = request_for(&sink, 3);
    let c = sink.classify(
        &req,
        &resp(
            503,
            &[("Retry-After", "30")],
            r#"{"text":"Server is busy","code":9}"#,
        ),
    );
    assert_eq!(c.outcomes.len(), 3);
    match &c.outcomes[0] {
        Outcome::Retry {
            class,
            status,
            message,
            retry_after,
        } => {
            assert_eq!(class, "server_busy");
            assert_eq!(*status, Some(503));
            assert_eq!(message, "HTTP 503: Server is busy (code 9)");
            assert_eq!(
                *retry_after,
                Some(RetryAfter::Delay(Duration::from_secs(30)))
            );
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(c.sink_down.unwrap().class, "server_busy");
    // A load balancer's HTML 502: by status.
    let c = sink.classify(&req, &resp(502, &[], "<html>Bad Gateway</html>"));
    assert_eq!(c.outcomes[0].class(), Some("server_error"));
    assert!(c.sink_down.is_some());
}

#[test]
fn auth_errors_are_permanent_and_take_the_sink_down() {
    let sink = sink_with(config());
    let req = request_for(&sink, 2);
    for (status, body) in [
        (401, r#"{"text":"Token is required","code":2}"#),
        (401, r#"{"text":"Invalid authorization","code":3}"#),
        (403, r#"{"text":"Invalid token","code":4}"#),
        (403, r#"{"text":"Token disabled","code":1}"#),
    ] {
        let c = sink.classify(&req, &resp(status, &[], body));
        assert!(
            c.outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Permanent { class, .. } if class == "auth")),
            "{body}"
        );
        assert_eq!(c.sink_down.as_ref().map(|d| d.class.as_str()), Some("auth"));
    }
    // The token echoed back in a body never reaches an outcome.
    let c = sink.classify(
        &req,
        &resp(403, &[], r#"{"text":"Invalid token tok-abc","code":4}"#),
    );
    assert!(!format!("{c:?}").contains("tok-abc"));
}

#[test]
fn invalid_data_pinpoints_the_bad_event_or_splits() {
    let sink = sink_with(config());
    let req = request_for(&sink, 3);
    let c = sink.classify(
        &req,
        &resp(
            400,
            &[],
            r#"{"text":"Invalid data format","code":6,"invalid-event-number":1}"#,
        ),
    );
    assert!(
        matches!(&c.outcomes[0], Outcome::Retry { class, .. } if class == "hec_batch_rejected")
    );
    assert!(
        matches!(&c.outcomes[1], Outcome::Permanent { class, status: Some(400), .. } if class == "hec_invalid_data_format")
    );
    assert!(matches!(&c.outcomes[2], Outcome::Retry { .. }));
    assert!(c.sink_down.is_none() && !c.split);
    // No (or out-of-range) event number: split, down to one event.
    let c = sink.classify(
        &req,
        &resp(400, &[], r#"{"text":"Event field is required","code":12}"#),
    );
    assert!(c.split);
    assert!(c
        .outcomes
        .iter()
        .all(|o| matches!(o, Outcome::Retry { .. })));
    let c = sink.classify(
        &req,
        &resp(
            400,
            &[],
            r#"{"text":"Invalid data format","code":6,"invalid-event-number":9}"#,
        ),
    );
    assert!(c.split);
    let one = request_for(&sink, 1);
    let c = sink.classify(
        &one,
        &resp(400, &[], r#"{"text":"Invalid data format","code":6}"#),
    );
    assert!(!c.split);
    assert!(matches!(&c.outcomes[0], Outcome::Permanent { .. }));
}

#[test]
fn config_errors_take_the_sink_down() {
    let sink = sink_with(config());
    let req = request_for(&sink, 1);
    for (body, class) in [
        (
            r#"{"text":"Incorrect index","code":7}"#,
            "hec_incorrect_index",
        ),
        (
            r#"{"text":"ACK is disabled","code":14}"#,
            "hec_ack_disabled",
        ),
    ] {
        let c = sink.classify(&req, &resp(400, &[], body));
        assert_eq!(c.outcomes[0].class(), Some(class));
        assert!(matches!(c.outcomes[0], Outcome::Permanent { .. }));
        assert!(c.sink_down.is_some());
    }
    // 413 from a proxy: split.
    let two = request_for(&sink, 2);
    let c = sink.classify(&two, &resp(413, &[], "Request Entity Too Large"));
    assert!(c.split);
}

#[test]
fn invalid_channel_resets_it() {
    let sink = acked_sink();
    let req = request_for(&sink, 1);
    let c = sink.classify(
        &req,
        &resp(400, &[], r#"{"text":"Invalid data channel","code":11}"#),
    );
    assert_eq!(
        c.ack_reset,
        Some(AckReset {
            channel: "chan-1".into()
        })
    );
    assert!(
        matches!(&c.outcomes[0], Outcome::Retry { class, .. } if class == "hec_channel_invalid")
    );
    assert_ne!(sink.channel(), "chan-1");
    // A second answer for the old channel does not reset the new one.
    let new = sink.channel();
    let c = sink.classify(
        &req,
        &resp(400, &[], r#"{"text":"Invalid data channel","code":11}"#),
    );
    assert_eq!(c.ack_reset, None);
    assert_eq!(sink.channel(), new);
}

#[test]
fn cookie_change_resets_the_channel() {
    let sink = acked_sink();
    let req = request_for(&sink, 1);
    assert_eq!(req.header("cookie"), None);
    // First cookie: learnt, not a change.
    let ok = |id: u64, cookie: &str| {
        resp(
            200,
            &[("Set-Cookie", cookie)],
            &format!(r#"{{"text":"Success","code":0,"ackId":{id}}}"#),
        )
    };
    let c = sink.classify(
        &req,
        &ok(
            0,
            "AWSALB=node-a; Path=/; Expires=Tue, 01 Jan 2999 00:00:00 GMT",
        ),
    );
    assert!(c.ack_reset.is_none());
    assert!(matches!(c.outcomes[0], Outcome::AwaitAck(_)));
    let req2 = request_for(&sink, 1);
    assert_eq!(req2.header("cookie"), Some("AWSALB=node-a"));
    // Same value again: nothing.
    let c = sink.classify(&req2, &ok(1, "AWSALB=node-a; Path=/"));
    assert!(c.ack_reset.is_none());
    // Changed: the old channel's acks are void, this batch is re-sent on a new channel.
    let c = sink.classify(&req2, &ok(2, "AWSALB=node-b; Path=/"));
    assert_eq!(
        c.ack_reset,
        Some(AckReset {
            channel: "chan-1".into()
        })
    );
    assert!(matches!(&c.outcomes[0], Outcome::Retry { class, .. } if class == "hec_channel_reset"));
    let new_channel = sink.channel();
    assert_ne!(new_channel, "chan-1");
    let req3 = request_for(&sink, 1);
    assert_eq!(req3.header(CHANNEL_HEADER), Some(new_channel.as_str()));
    assert_eq!(req3.header("cookie"), Some("AWSALB=node-b"));
    // A late answer to a request on the old channel is retried too.
    let c = sink.classify(&req2, &ok(3, "AWSALB=node-b"));
    assert!(c.ack_reset.is_none());
    assert!(matches!(&c.outcomes[0], Outcome::Retry { class, .. } if class == "hec_channel_reset"));
    // An expired cookie is forgotten without a reset.
    let c = sink.classify(&req3, &ok(0, "AWSALB=; Max-Age=0"));
    assert!(c.ack_reset.is_none());
    assert_eq!(request_for(&sink, 1).header("cookie"), None);
}

#[test]
fn ack_poll_requests_per_channel() {
    let sink = acked_sink();
    let pending = vec![
        AckToken {
            channel: "chan-1".into(),
            id: 3,
        },
        AckToken {
            channel: "old".into(),
            id: 1,
        },
        AckToken {
            channel: "chan-1".into(),
            id: 1,
        },
    ];
    let polls = sink.ack_poll(&pending);
    assert_eq!(polls.len(), 2);
    assert_eq!(
        polls[0].url,
        "https://splunk.example:8088/services/collector/ack?channel=chan-1"
    );
    assert_eq!(polls[0].body, br#"{"acks":[1,3]}"#);
    assert_eq!(polls[0].header(CHANNEL_HEADER), Some("chan-1"));
    assert_eq!(polls[0].header("authorization"), Some("Splunk tok-abc"));
    assert!(polls[0].records.is_empty());
    assert_eq!(polls[1].header(CHANNEL_HEADER), Some("old"));
    let many: Vec<AckToken> = (0..2500)
        .map(|id| AckToken {
            channel: "c".into(),
            id,
        })
        .collect();
    assert_eq!(sink.ack_poll(&many).len(), 3);
    assert!(sink_with(config()).ack_poll(&pending).is_empty());
}

#[test]
fn parse_acks_answers() {
    let sink = acked_sink();
    let poll = sink
        .ack_poll(&[AckToken {
            channel: "chan-1".into(),
            id: 1,
        }])
        .remove(0);
    let r = sink
        .parse_acks(
            &poll,
            &resp(200, &[], r#"{"acks":{"1":true,"2":false,"x":true}}"#),
        )
        .unwrap();
    assert_eq!(
        r.acked,
        vec![AckToken {
            channel: "chan-1".into(),
            id: 1
        }]
    );
    assert!(r.ack_reset.is_none());
    for bad in ["", "[]", r#"{"acks":[1]}"#, "<html>"] {
        assert!(matches!(
            sink.parse_acks(&poll, &resp(200, &[], bad)),
            Err(SinkError::AckPoll { .. })
        ));
    }
    assert!(matches!(
        sink.parse_acks(
            &poll,
            &resp(503, &[], r#"{"text":"Server is busy","code":9}"#)
        ),
        Err(SinkError::AckPoll { status: 503, .. })
    ));
    // The answer came from another indexer (cookie changed): nothing acked, channel reset.
    sink.parse_acks(
        &poll,
        &resp(200, &[("Set-Cookie", "lb=1")], r#"{"acks":{}}"#),
    )
    .unwrap();
    let r = sink
        .parse_acks(
            &poll,
            &resp(200, &[("Set-Cookie", "lb=2")], r#"{"acks":{"1":true}}"#),
        )
        .unwrap();
    assert!(r.acked.is_empty());
    assert_eq!(
        r.ack_reset,
        Some(AckReset {
            channel: "chan-1".into()
        })
    );
    // Unknown channel on the server: its tokens are void.
    let poll2 = sink
        .ack_poll(&[AckToken {
            channel: sink.channel(),
            id: 1,
        }])
        .remove(0);
    let r = sink
        .parse_acks(
            &poll2,
            &resp(400, &[], r#"{"text":"Invalid data channel","code":11}"#),
        )
        .unwrap();
    assert!(r.ack_reset.is_some());
    assert!(matches!(
        sink_with(config()).parse_acks(&poll, &resp(200, &[], "{}")),
        Err(SinkError::AcksUnsupported)
    ));
}

#[test]
fn health_probe() {
    let sink = sink_with(config());
    let p = sink.health_probe().unwrap();
    assert_eq!(p.method, Method::Get);
    assert_eq!(
        p.url,
        "https://splunk.example:8088/services/collector/health/1.0"
    );
    assert!(p.header("authorization").is_none());
    assert!(sink.probe_ok(&resp(200, &[], r#"{"text":"HEC is healthy","code":17}"#)));
    assert!(!sink.probe_ok(&resp(
        503,
        &[],
        r#"{"text":"HEC is unhealthy, queues are full","code":18}"#
    )));
}

#[test]
fn transport_errors_retry_and_redact() {
    let sink = sink_with(config());
    let req = request_for(&sink, 2);
    let c = sink.classify_transport_error(
        &req,
        &crate::sink::TransportError {
            kind: crate::sink::TransportErrorKind::Timeout,
            message: "timed out sending tok-abc".into(),
        },
    );
    assert_eq!(c.outcomes.len(), 2);
    assert_eq!(c.outcomes[0].class(), Some("timeout"));
    assert!(c.sink_down.is_some());
    assert!(!format!("{c:?}").contains("tok-abc"));
}

#[test]
fn garbage_bodies_never_panic() {
    let sink = acked_sink();
    let req = request_for(&sink, 2);
    for status in [200, 201, 400, 401, 404, 413, 429, 500, 503, 999, 0] {
        for body in [
            &b""[..],
            b"\xff\xfe",
            b"{\"code\":\"x\"}",
            b"{\"ackId\":-1}",
            b"[1,2]",
        ] {
            let r = HttpResponse {
                status,
                headers: vec![("Set-Cookie".into(), "=;;".into())],
                body: body.to_vec(),
            };
            assert_eq!(sink.classify(&req, &r).outcomes.len(), 2);
            let _ = sink.parse_acks(&req, &r);
        }
    }
}
