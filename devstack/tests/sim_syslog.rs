//! The syslog simulator driven through the delivery engine's executor (the syslog transport of
//! `pipeline::delivery::http::send`), with requests built by the syslog CEF sink: TCP with
//! both framings, TLS with certificate verification (CA file, wrong CA, verification off),
//! UDP datagrams, refused connections, and reconnection after the receiver restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use devstack::sim::syslog::{SyslogFraming, SyslogHeader};
use devstack::sim::{SyslogSim, SyslogSimConfig, SyslogSimTransport};
use pipeline::delivery::http::{client, send, Executor};
use processors::sink::syslog::{SyslogConfig, SyslogSink};
use processors::sink::{HttpRequest, PayloadFormat, Sink, SinkRecord, TransportErrorKind};

fn executor() -> Executor {
    client(Duration::from_secs(5)).unwrap()
}

fn sink(yaml: &str) -> SyslogSink {
    let config: SyslogConfig = serde_yaml_ng::from_str(yaml).unwrap();
    SyslogSink::new("siem", config).unwrap()
}

fn cef(i: usize) -> String {
    format!(
        "CEF:0|secflow|test|1|sig-{i}|Event \\| {i}|{}|externalId=evt-{i:05} dvchost=host-{} msg=line {i} a\\=b",
        i % 11,
        i % 3
    )
}

fn records(range: std::ops::Range<usize>) -> Vec<SinkRecord> {
    range
        .map(|i| SinkRecord {
            event_id: Some(format!("evt-{i:05}")),
            tenant: None,
            event_time_ms: Some(1_741_064_767_089),
            key: None,
            payload: cef(i).into_bytes(),
            format: PayloadFormat::Cef,
            traceparent: None,
        })
        .collect()
}

fn requests(sink: &SyslogSink, range: std::ops::Range<usize>) -> Vec<HttpRequest> {
    let built = sink.build(&records(range), SystemTime::now());
    assert!(built.rejected.is_empty());
    built.requests
}

async fn send_all(ex: &Executor, reqs: &[HttpRequest]) {
    for r in reqs {
        let resp = send(ex, r).await.unwrap();
        assert_eq!(resp.status, 200);
    }
}

/// Waits (bounded) until the simulator has `n` messages.
async fn wait_for(sim: &SyslogSim, n: usize) {
    for _ in 0..200 {
        if sim.message_count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "only {} of {n} messages arrived; problems: {:?}",
        sim.message_count(),
        sim.problems()
    );
}

#[tokio::test]
async fn tcp_octet_counted_and_lf_framed_messages_arrive_intact_on_one_connection() {
    let sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tcp))
        .await
        .unwrap();
    let ex = executor();
    let counted = sink(&format!(
        "address: {}\nmax_message_bytes: 1000\nmax_request_bytes: 2000",
        sim.address()
    ));
    let reqs = requests(&counted, 0..100);
    assert!(reqs.len() > 3, "several writes");
    send_all(&ex, &reqs).await;
    let lf = sink(&format!(
        "address: {}\nframing: lf\nformat: rfc3164\nfacility: local4",
        sim.address()
    ));
    send_all(&ex, &requests(&lf, 100..150)).await;
    wait_for(&sim, 150).await;
    let msgs = sim.messages();
    assert!(sim.problems().is_empty(), "{:?}", sim.problems());
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.parsed.cef, cef(i), "intact and in order");
        assert_eq!(m.event_id.as_deref(), Some(format!("evt-{i:05}").as_str()));
        assert_eq!(m.parsed.hostname, format!("host-{}", i % 3));
        if i < 100 {
            assert_eq!(m.framing, SyslogFraming::OctetCounting);
            assert_eq!(m.parsed.header, SyslogHeader::Rfc5424);
            assert_eq!(m.parsed.facility, 10);
            assert_eq!(
                m.parsed.timestamp.as_deref(),
                Some("2025-03-04T05:06:07.089Z")
            );
        } else {
            assert_eq!(m.framing, SyslogFraming::Lf);
            assert_eq!(m.parsed.header, SyslogHeader::Rfc3164);
            assert_eq!(m.parsed.facility, 20);
            assert_eq!(m.parsed.timestamp.as_deref(), Some("Mar  4 05:06:07"));
        }
    }
    // Both sinks name the same target URL (framing is not part of it): one connection.
    assert_eq!(sim.connections(), 1);
}

#[tokio::test]
async fn a_restarted_receiver_gets_a_new_connection_and_nothing_is_lost() {
    let mut sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tcp))
        .await
        .unwrap();
    let ex = executor();
    let s = sink(&format!("address: {}", sim.address()));
    send_all(&ex, &requests(&s, 0..10)).await;
    wait_for(&sim, 10).await;

    sim.stop().await;
    // Down: the connection check notices the closed connection and the reconnect is refused.
    let err = send(&ex, &requests(&s, 10..20)[0]).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Connect, "{err:?}");
    assert!(err.message.contains(&sim.address()), "{}", err.message);
    let probe = s.health_probe().unwrap();
    assert!(
        send(&ex, &probe).await.is_err(),
        "the probe fails while down"
    );

    sim.restart().await.unwrap();
    assert!(send(&ex, &probe).await.is_ok(), "the probe connects");
    send_all(&ex, &requests(&s, 10..20)).await;
    wait_for(&sim, 20).await;
    let ids: Vec<String> = sim
        .messages()
        .iter()
        .map(|m| m.event_id.clone().unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("evt-{i:05}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(sim.connections(), 2);
    assert!(sim.problems().is_empty());
}

#[tokio::test]
async fn tls_verifies_the_receiver_against_the_ca_file() {
    let sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tls))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let port = sim.local_addr().port();
    let ex = executor();

    // By name, with the simulator's certificate as CA.
    let trusted = sink(&format!(
        "address: localhost:{port}\ntransport: tls\ntls: {{ca_file: {}}}",
        ca.display()
    ));
    send_all(&ex, &requests(&trusted, 0..30)).await;
    // By IP address with server_name.
    let by_ip = sink(&format!(
        "address: 127.0.0.1:{port}\ntransport: tls\nframing: lf\ntls: {{ca_file: {}, server_name: localhost}}",
        ca.display()
    ));
    send_all(&ex, &requests(&by_ip, 30..40)).await;
    wait_for(&sim, 40).await;
    for (i, m) in sim.messages().iter().enumerate() {
        assert_eq!(m.parsed.cef, cef(i));
    }

    // Verification on, no CA for this self-signed certificate: refused, nothing written.
    let untrusted = sink(&format!("address: localhost:{port}\ntransport: tls"));
    let err = send(&ex, &requests(&untrusted, 40..41)[0])
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Tls, "{err:?}");
    assert!(err.message.contains("TLS handshake"), "{}", err.message);
    // The wrong name: refused too.
    let wrong_name = sink(&format!(
        "address: 127.0.0.1:{port}\ntransport: tls\ntls: {{ca_file: {}, server_name: siem.example.com}}",
        ca.display()
    ));
    let err = send(&ex, &requests(&wrong_name, 40..41)[0])
        .await
        .unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Tls, "{err:?}");
    // A missing CA file says which.
    let missing = sink(&format!(
        "address: localhost:{port}\ntransport: tls\ntls: {{ca_file: /nonexistent/ca.pem}}"
    ));
    let err = send(&ex, &requests(&missing, 40..41)[0]).await.unwrap_err();
    assert!(
        err.message.contains("/nonexistent/ca.pem"),
        "{}",
        err.message
    );
    // Verification off: accepted (encrypted, not authenticated).
    let insecure = sink(&format!(
        "address: localhost:{port}\ntransport: tls\ntls: {{verify: false}}"
    ));
    send_all(&ex, &requests(&insecure, 40..45)).await;
    wait_for(&sim, 45).await;
    assert_eq!(
        sim.message_count(),
        45,
        "nothing from the refused handshakes"
    );
}

#[tokio::test]
async fn udp_sends_one_datagram_per_message() {
    let sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Udp))
        .await
        .unwrap();
    let ex = executor();
    let s = sink(&format!("address: {}\ntransport: udp", sim.address()));
    send_all(&ex, &requests(&s, 0..50)).await;
    wait_for(&sim, 50).await;
    for m in sim.messages() {
        assert_eq!(m.framing, SyslogFraming::Datagram);
    }
    let mut ids: Vec<String> = sim
        .messages()
        .iter()
        .map(|m| m.event_id.clone().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 50);
    assert!(sim.problems().is_empty());
}

#[tokio::test]
async fn a_receiver_that_is_not_there_is_a_connect_error() {
    // Bind and release a port so nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = sink(&format!("address: 127.0.0.1:{port}"));
    let err = send(&executor(), &requests(&s, 0..1)[0]).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Connect);
    assert!(err
        .message
        .starts_with(&format!("syslog tcp 127.0.0.1:{port}: cannot connect")));
}

#[tokio::test]
async fn garbage_is_recorded_as_a_problem_and_the_connection_closed() {
    use tokio::io::AsyncWriteExt;
    let sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tcp))
        .await
        .unwrap();
    let mut raw = tokio::net::TcpStream::connect(sim.local_addr())
        .await
        .unwrap();
    let good = format!("<83>1 - h app - - - {}", cef(1));
    raw.write_all(
        format!(
            "{} {good}<13>1 - h app - - - not cef\nGET / HTTP/1.1\r\n",
            good.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    for _ in 0..200 {
        if sim.problems().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let problems = sim.problems();
    assert_eq!(sim.message_count(), 1);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].reason.contains("not a CEF line"),
        "{problems:?}"
    );
    assert!(
        problems[1].reason.contains("neither an octet count"),
        "{problems:?}"
    );
}
