#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::*;
use crate::sink::{PayloadFormat, TransportErrorKind};

const LINE: &str = r"CEF:0|Elastic|Elastic Defend|8.17.3|c9f8|Suspicious \| PowerShell|8|rt=1741064767089 msg=a\=b dvchost=ws-fin-042.corp.example.com externalId=evt-1";
// 2025-03-04T05:06:07.089Z
const TS: i64 = 1_741_064_767_089;

fn config(yaml: &str) -> SyslogConfig {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn sink(yaml: &str) -> SyslogSink {
    SyslogSink::new("siem", config(yaml)).unwrap()
}

fn record(payload: &str) -> SinkRecord {
    SinkRecord {
        event_id: Some("evt-1".into()),
        tenant: Some("acme".into()),
        event_time_ms: Some(TS),
        key: None,
        payload: payload.as_bytes().to_vec(),
        format: PayloadFormat::Cef,
        traceparent: None,
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000)
}

fn text(body: &[u8]) -> String {
    String::from_utf8(body.to_vec()).unwrap()
}

#[test]
fn config_defaults() {
    let c = config("address: siem.example.com:514");
    assert_eq!(c.transport, SyslogTransport::Tcp);
    assert_eq!(c.framing, None);
    assert_eq!(c.format, SyslogFormat::Rfc5424);
    assert_eq!(c.app_name, "secflow");
    assert_eq!(c.facility, SyslogFacility::Authpriv);
    assert_eq!(c.facility.code(), 10);
    assert!(c.tls.verify);
    assert_eq!(c.max_message_bytes, 8192);
    assert_eq!(c.max_request_bytes, 65_536);
    assert!(serde_yaml_ng::from_str::<SyslogConfig>("address: a:1\nport: 2").is_err());
    assert!(serde_yaml_ng::from_str::<SyslogConfig>("address: a:1\nframing: nul").is_err());
    let s = sink("address: siem.example.com:514");
    assert_eq!(s.framing(), SyslogFraming::OctetCounting);
}

#[test]
fn facility_codes_follow_rfc5424() {
    let all = [
        ("kern", 0),
        ("auth", 4),
        ("authpriv", 10),
        ("audit", 13),
        ("clock", 15),
        ("local0", 16),
        ("local4", 20),
        ("local7", 23),
    ];
    for (name, code) in all {
        let f: SyslogFacility = serde_yaml_ng::from_str(name).unwrap();
        assert_eq!(f.code(), code, "{name}");
    }
}

#[test]
fn bad_configs_are_refused_with_reasons() {
    for (yaml, expect) in [
        ("address: siem.example.com", "no port"),
        ("address: ''", "empty"),
        ("address: tcp://siem:514", "no scheme"),
        ("address: siem:0", "port 0"),
        ("address: siem:70000", "not host:port"),
        (
            "address: siem:514\ntransport: udp\nframing: lf",
            "framing does not apply to udp",
        ),
        (
            "address: siem:514\ntls: {verify: false}",
            "need `transport: tls`",
        ),
        ("address: siem:514\napp_name: 'sec flow'", "app_name"),
        ("address: siem:514\nhostname: ''", "hostname"),
        ("address: siem:514\nmax_message_bytes: 0", "at least 1"),
        (
            "address: siem:514\ntransport: udp\nmax_message_bytes: 70000\nmax_request_bytes: 100000",
            "UDP datagram",
        ),
        (
            "address: siem:514\nmax_message_bytes: 8192\nmax_request_bytes: 8192",
            "smaller than one framed message",
        ),
        (
            "address: siem:6514\ntransport: tls\ntls: {server_name: 'a b'}",
            "server_name",
        ),
    ] {
        let e = SyslogSink::new("s", config(yaml)).unwrap_err().to_string();
        assert!(e.contains(expect), "{yaml}: {e}");
        assert!(e.starts_with("sink config: syslog_cef:"), "{e}");
    }
}

#[test]
fn rfc5424_octet_counted_message() {
    let s = sink("address: siem.example.com:514");
    let built = s.build(&[record(LINE)], now());
    assert!(built.rejected.is_empty());
    assert_eq!(built.requests.len(), 1);
    let req = &built.requests[0];
    assert_eq!(req.url, "syslog+tcp://siem.example.com:514");
    assert_eq!(req.records, vec![0]);
    assert!(req.headers.is_empty());
    // authpriv (10) × 8 + error (3, CEF severity 8 = high).
    let msg =
        format!("<83>1 2025-03-04T05:06:07.089Z ws-fin-042.corp.example.com secflow - - - {LINE}");
    assert_eq!(text(&req.body), format!("{} {msg}", msg.len()));
    assert_eq!(
        split_octet_counted(&req.body).unwrap(),
        vec![msg.as_bytes()]
    );
}

#[test]
fn rfc3164_lf_framed_with_facility_app_and_host_fallback() {
    let s = sink(
        "address: 10.0.0.5:1514\nframing: lf\nformat: rfc3164\nfacility: local4\napp_name: soc-feed\nhostname: secflow-01",
    );
    let no_host = "CEF:0|V|P|1|sig|name|3|msg=hello";
    let built = s.build(&[record(no_host), record(LINE)], now());
    assert_eq!(built.requests.len(), 1);
    let body = text(&built.requests[0].body);
    // local4 (20) × 8 + notice (5, CEF 3 = low) = 165; high → 163.
    assert_eq!(
        body,
        format!(
            "<165>Mar  4 05:06:07 secflow-01 soc-feed: {no_host}\n<163>Mar  4 05:06:07 ws-fin-042.corp.example.com soc-feed: {LINE}\n"
        )
    );
    assert_eq!(built.requests[0].records, vec![0, 1]);
}

#[test]
fn severity_and_time_fallbacks() {
    let s = sink("address: siem:514");
    let mut r = record("CEF:0|V|P|1|sig|name|Very-High|msg=x");
    r.event_time_ms = None;
    let m = text(&s.message(&r, now()).unwrap());
    // Critical → 2; no event time → the send time; no host → NILVALUE.
    assert_eq!(
        m,
        "<82>1 2027-01-15T08:00:00.000Z - secflow - - - CEF:0|V|P|1|sig|name|Very-High|msg=x"
    );
    let m = text(
        &s.message(&record("CEF:0|V|P|1|sig|name|bogus|"), now())
            .unwrap(),
    );
    assert!(m.starts_with("<85>1 "), "unreadable severity → notice: {m}");
    let m = text(
        &s.message(&record("CEF:0|V|P|1|sig|name|0|"), now())
            .unwrap(),
    );
    assert!(m.starts_with("<86>1 "), "info → informational: {m}");
}

#[test]
fn records_that_are_not_cef_lines_are_dead_lettered() {
    let s = sink("address: siem:514");
    let mut json = record(r#"{"event":{"id":"x"}}"#);
    json.format = PayloadFormat::Ecs;
    let batch = vec![
        record(LINE),
        json,
        record("<134>1 - - - - - - CEF:0|V|P|1|s|n|1|"),
        record("CEF:0|V|P|1|s|n|1|msg=a\nb"),
        SinkRecord {
            payload: vec![b'C', b'E', b'F', b':', 0xff],
            ..record("")
        },
        record("CEF:0|V|P|1|s|n|1|msg=trailing newline is fine\r\n"),
    ];
    let built = s.build(&batch, now());
    let rejected: Vec<usize> = built.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, vec![1, 2, 3, 4]);
    for (i, o) in &built.rejected {
        assert_eq!(o.class(), Some("invalid_payload"), "{i}: {o:?}");
    }
    let msg = |i: usize| match &built.rejected[i].1 {
        Outcome::Permanent { message, .. } => message.clone(),
        o => panic!("{o:?}"),
    };
    assert!(msg(0).contains("read the `cef` topic"), "{}", msg(0));
    assert!(msg(1).contains("does not start with `CEF:`"));
    assert!(msg(2).contains("line break"));
    assert!(msg(3).contains("UTF-8"));
    assert_eq!(built.requests.len(), 1);
    assert_eq!(built.requests[0].records, vec![0, 5]);
    assert!(text(&built.requests[0].body).ends_with("msg=trailing newline is fine"));
}

#[test]
fn oversized_messages_are_permanent_and_the_rest_is_chunked() {
    let s = sink("address: siem:514\nframing: lf\nmax_message_bytes: 300\nmax_request_bytes: 700");
    let small = |n: usize| format!("CEF:0|V|P|1|s|n|5|msg={}", "a".repeat(n));
    // Header "<84>1 2025-03-04T05:06:07.089Z - secflow - - - " is 47 bytes, CEF prefix 22.
    let batch = vec![
        record(&small(200)),
        record(&small(200)),
        record(&small(400)),
        record(&small(200)),
        record(&small(231)),
        record(&small(232)),
    ];
    let built = s.build(&batch, now());
    let lens: Vec<usize> = batch
        .iter()
        .map(|r| s.message(r, now()).unwrap().len())
        .collect();
    assert_eq!(lens[4], 300, "exactly the limit is fine");
    assert_eq!(built.rejected.len(), 2);
    for ((i, o), expect) in built.rejected.iter().zip([2, 5]) {
        assert_eq!(*i, expect);
        match o {
            Outcome::Permanent {
                class,
                status,
                message,
            } => {
                assert_eq!(class, "payload_too_large");
                assert_eq!(*status, None);
                assert!(
                    message.contains("more than max_message_bytes 300"),
                    "{message}"
                );
            }
            o => panic!("{o:?}"),
        }
    }
    let chunks: Vec<Vec<usize>> = built.requests.iter().map(|r| r.records.clone()).collect();
    assert_eq!(chunks, vec![vec![0, 1], vec![3, 4]]);
    for r in &built.requests {
        assert!(r.body.len() <= 700);
        let lines: Vec<&str> = std::str::from_utf8(&r.body).unwrap().lines().collect();
        assert_eq!(lines.len(), r.records.len());
    }
}

#[test]
fn udp_bodies_are_octet_counted_for_the_transport_to_split() {
    let s = sink("address: '[2001:db8::7]:514'\ntransport: udp");
    assert_eq!(s.framing(), SyslogFraming::OctetCounting);
    let built = s.build(&[record(LINE), record(LINE)], now());
    let req = &built.requests[0];
    assert_eq!(req.url, "syslog+udp://[2001:db8::7]:514");
    let msgs = split_octet_counted(&req.body).unwrap();
    assert_eq!(msgs.len(), 2);
    assert!(msgs[0].starts_with(b"<83>1 "));
    assert_eq!(s.target().host, "2001:db8::7");
    assert_eq!(s.target().address(), "[2001:db8::7]:514");
}

#[test]
fn target_urls_round_trip() {
    let s = sink(
        "address: 192.0.2.10:6514\ntransport: tls\ntls: {ca_file: '/etc/secflow/qradar ca.pem', server_name: qradar.example.com, verify: true}",
    );
    let url = s.build(&[record(LINE)], now()).requests[0].url.clone();
    assert!(url.starts_with("syslog+tls://192.0.2.10:6514?"), "{url}");
    assert!(!url.contains(' '), "{url}");
    let t = SyslogTarget::from_url(&url).unwrap();
    assert_eq!(&t, s.target());
    assert_eq!(t.ca_file, Some(PathBuf::from("/etc/secflow/qradar ca.pem")));
    assert_eq!(t.tls_name(), "qradar.example.com");
    assert!(t.verify);

    let insecure = sink("address: siem.example.com:6514\ntransport: tls\ntls: {verify: false}");
    let t = SyslogTarget::from_url(&insecure.target().to_url()).unwrap();
    assert!(!t.verify);
    assert_eq!(t.tls_name(), "siem.example.com");
    assert_eq!(
        SyslogTarget::from_url("syslog+tcp://h:514")
            .unwrap()
            .transport,
        SyslogTransport::Tcp
    );
    for bad in [
        "https://h:514",
        "syslog+tcp://h",
        "syslog+sctp://h:1",
        "syslog+tcp://h:1?x=1",
    ] {
        assert!(SyslogTarget::from_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn octet_counted_splitting_refuses_garbage() {
    assert_eq!(
        split_octet_counted(b"3 abc1 d").unwrap(),
        vec![&b"abc"[..], &b"d"[..]]
    );
    assert!(split_octet_counted(b"").unwrap().is_empty());
    assert_eq!(split_octet_counted(b"0 ").unwrap(), vec![&b""[..]]);
    for bad in [
        &b"abc"[..],
        b"5 abc",
        b"x3 abc",
        b" 3 abc",
        b"99999999999 a",
    ] {
        assert!(split_octet_counted(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn written_is_delivered_and_transport_failures_retry_with_the_sink_down() {
    let s = sink("address: siem:514");
    let req = s.build(&[record(LINE), record(LINE)], now()).requests[0].clone();
    let ok = HttpResponse {
        status: 200,
        ..HttpResponse::default()
    };
    assert_eq!(
        s.classify(&req, &ok).outcomes,
        vec![Outcome::Delivered, Outcome::Delivered]
    );
    for kind in [
        TransportErrorKind::Connect,
        TransportErrorKind::Closed,
        TransportErrorKind::Tls,
        TransportErrorKind::Timeout,
    ] {
        let c = s.classify_transport_error(
            &req,
            &TransportError {
                kind,
                message: "syslog tcp siem:514: connection refused".into(),
            },
        );
        assert_eq!(c.outcomes.len(), 2);
        for o in &c.outcomes {
            assert!(matches!(o, Outcome::Retry { .. }), "{o:?}");
            assert_eq!(o.class(), Some(kind.class()));
        }
        let down = c.sink_down.expect("sink down");
        assert!(down.message.contains("connection refused"));
        assert!(!c.split);
    }
}

#[test]
fn health_probe_is_an_empty_write_to_the_target() {
    let s = sink("address: siem:514\ntransport: tls");
    let probe = s.health_probe().unwrap();
    assert_eq!(probe.url, "syslog+tls://siem:514");
    assert!(probe.body.is_empty() && probe.records.is_empty());
    assert!(s.probe_ok(&HttpResponse {
        status: 200,
        ..HttpResponse::default()
    }));
}

#[test]
fn every_record_is_in_exactly_one_request_or_rejected() {
    let s = sink("address: siem:514\nmax_message_bytes: 200\nmax_request_bytes: 1000");
    let batch: Vec<SinkRecord> = (0..200)
        .map(|i| record(&format!("CEF:0|V|P|1|s|n|5|msg={}", "x".repeat(i % 190))))
        .collect();
    let built = s.build(&batch, now());
    let mut seen: Vec<usize> = built.rejected.iter().map(|(i, _)| *i).collect();
    for r in &built.requests {
        assert!(r.body.len() <= 1000);
        assert_eq!(split_octet_counted(&r.body).unwrap().len(), r.records.len());
        seen.extend(&r.records);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
    assert!(!built.rejected.is_empty());
}
