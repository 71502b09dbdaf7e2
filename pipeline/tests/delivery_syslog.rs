//! The syslog CEF sink through the real broker to the syslog simulator: every CEF line arrives
//! intact over TCP (octet counting, RFC 5424) and over TLS (LF framing, RFC 3164, CA file
//! verified); a receiver that is down at the start is waited for (circuit breaker, backoff,
//! reconnect) and then gets everything; oversized messages are dead-lettered with their
//! headers; and a receiver restarted in the middle of a run gets everything (at-least-once,
//! duplicates counted and printed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use common::sink::run_sink;
use devstack::sim::syslog::{SyslogFraming, SyslogHeader};
use devstack::sim::{SyslogSim, SyslogSimConfig, SyslogSimTransport};
use pipeline::delivery::engine::{self};
use pipeline::topology::Topology;
use processors::sink::event_fields::{cef_hostname, cef_severity, Severity};
use serde_json::Value;

const CEF_TOPIC: &str = "security-events.cef.v1";

/// A test stack whose topology has one syslog sink stage `siem` reading the CEF topic and
/// sending to `address`. `settings` are extra stage lines and `sink_extra` extra sink lines
/// (YAML, indented four and six spaces, each ending in a newline).
async fn syslog_env(address: &str, settings: &str, sink_extra: &str) -> common::Env {
    let stages = format!(
        "  - type: sink\n    name: siem\n    input: cef\n{settings}    sink:\n      kind: syslog_cef\n      address: \"{address}\"\n{sink_extra}"
    );
    common::env(&stages).await
}

/// Writes the CEF form of `events` to the CEF topic with the headers the transform stage sets.
/// Returns event id → CEF line.
async fn produce_cef(t: &Topology, events: &[Value]) -> BTreeMap<String, String> {
    use processors::event::SecurityEvent;
    use processors::transform::Format;
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::FutureRecord;
    let topic = t.topics.resolved(pipeline::topology::TopicRole::Cef).name;
    assert_eq!(topic, CEF_TOPIC);
    let producer = pipeline::kafka::idempotent_producer(&t.kafka, "test-cef").unwrap();
    let mut lines = BTreeMap::new();
    let mut pending = Vec::new();
    for v in events {
        let e = SecurityEvent::from_json(&v.to_string()).unwrap();
        let line = Format::Cef.transform(&e).unwrap();
        let time = e.event_time.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "secflow.format",
                value: Some("cef"),
            })
            .insert(Header {
                key: "secflow.event_id",
                value: Some(e.event_id.as_str()),
            })
            .insert(Header {
                key: "secflow.event_time_ms",
                value: Some(time.as_str()),
            })
            .insert(Header {
                key: "secflow.tenant",
                value: Some(e.tenant.as_str()),
            });
        let rec = FutureRecord::to(&topic)
            .key(e.tenant.as_str())
            .payload(&line)
            .headers(headers);
        pending.push(producer.send_result(rec).map_err(|(e, _)| e).unwrap());
        lines.insert(e.event_id.clone(), String::from_utf8(line).unwrap());
        if pending.len() >= 5000 {
            for p in pending.drain(..) {
                p.await.unwrap().unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
    lines
}

/// Syslog severity the sink gives a CEF line (RFC 5424: 2 critical … 6 informational).
fn syslog_severity(line: &str) -> u8 {
    match cef_severity(line) {
        Some(Severity::Critical) => 2,
        Some(Severity::High) => 3,
        Some(Severity::Medium) => 4,
        Some(Severity::Low) => 5,
        Some(Severity::Info) => 6,
        None => 5,
    }
}

/// How often each event id arrived at the simulator.
fn arrivals(sim: &SyslogSim) -> HashMap<String, u64> {
    sim.event_counts()
}

/// Every message is valid and carries exactly the CEF line of its event.
fn assert_intact(sim: &SyslogSim, lines: &BTreeMap<String, String>) {
    assert!(sim.problems().is_empty(), "{:?}", sim.problems());
    for m in sim.messages() {
        let id = m.event_id.clone().expect("externalId");
        let line = &lines[&id];
        assert_eq!(
            &m.parsed.cef, line,
            "{id}: the CEF line arrives byte for byte"
        );
        let host = cef_hostname(line).unwrap_or_else(|| "-".to_string());
        assert_eq!(m.parsed.hostname, host, "{id}");
        assert_eq!(m.parsed.severity, syslog_severity(line), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_cef_line_arrives_intact_over_one_tcp_connection() {
    let sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tcp))
        .await
        .unwrap();
    let env = syslog_env(&sim.address(), "    batch: {max_events: 250}\n", "").await;
    let t = &env.topology;
    let lines = produce_cef(t, &common::generated_events(2_000)).await;
    let report = run_sink(t, "siem", 5).await;
    println!("healthy tcp: {report:?}, connections {}", sim.connections());
    assert_eq!(report.delivered, 2_000, "{report:?}");
    assert!(report.dead_lettered.is_empty() && report.to_tiers.is_empty());
    assert_eq!(
        sim.message_count(),
        2_000,
        "one message per event, no re-sends"
    );
    let got = arrivals(&sim);
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        lines.keys().cloned().collect::<BTreeSet<_>>()
    );
    assert!(got.values().all(|n| *n == 1));
    assert_intact(&sim, &lines);
    for m in sim.messages() {
        assert_eq!(m.framing, SyslogFraming::OctetCounting);
        assert_eq!(m.parsed.header, SyslogHeader::Rfc5424);
        assert_eq!(m.parsed.facility, 10, "authpriv");
        assert_eq!(m.parsed.app_name, "secflow");
        assert!(m.parsed.timestamp.is_some());
    }
    assert_eq!(
        sim.connections(),
        1,
        "one persistent connection for every batch"
    );
    assert_eq!(
        common::group_lag(t, &engine::group_id("siem"), CEF_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_with_lf_framing_and_rfc3164_delivers_every_line() {
    let sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tls))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("siem-ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let address = format!("localhost:{}", sim.local_addr().port());
    let env = syslog_env(
        &address,
        "",
        &format!(
            "      transport: tls\n      framing: lf\n      format: rfc3164\n      facility: local4\n      app_name: secflow-cef\n      tls: {{ca_file: \"{}\"}}\n",
            ca.display()
        ),
    )
    .await;
    let t = &env.topology;
    let lines = produce_cef(t, &common::generated_events(500)).await;
    let report = run_sink(t, "siem", 5).await;
    println!("healthy tls: {report:?}");
    assert_eq!(report.delivered, 500, "{report:?}");
    assert_eq!(sim.message_count(), 500);
    assert_intact(&sim, &lines);
    for m in sim.messages() {
        assert_eq!(m.framing, SyslogFraming::Lf);
        assert_eq!(m.parsed.header, SyslogHeader::Rfc3164);
        assert_eq!(m.parsed.facility, 20, "local4");
        assert_eq!(m.parsed.app_name, "secflow-cef");
    }
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_down_at_the_start_is_waited_for_and_then_gets_everything() {
    let mut sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tcp))
        .await
        .unwrap();
    sim.stop().await;
    let env = syslog_env(
        &sim.address(),
        "    batch: {max_events: 200}\n    retry: {max_attempts: 5, initial_backoff_ms: 50, max_backoff_ms: 400}\n    circuit: {failure_threshold: 3, open_ms: 300}\n",
        "",
    )
    .await;
    let t = &env.topology;
    let lines = produce_cef(t, &common::generated_events(1_000)).await;
    let (report, ()) = tokio::join!(run_sink(t, "siem", 5), async {
        // The receiver comes up while the sink is retrying with the circuit open.
        tokio::time::sleep(Duration::from_secs(3)).await;
        sim.restart().await.unwrap();
    });
    println!(
        "down at start: {report:?}, connections {}",
        sim.connections()
    );
    assert!(
        report.circuit_opened >= 1,
        "refused connections open the circuit"
    );
    assert!(report.dead_lettered.is_empty(), "{report:?}");
    assert!(
        report.to_tiers.is_empty(),
        "an outage never moves records to tiers"
    );
    let got = arrivals(&sim);
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        lines.keys().cloned().collect::<BTreeSet<_>>(),
        "every event arrives once the receiver is up"
    );
    assert!(got.values().all(|n| *n == 1), "nothing was written twice");
    assert_intact(&sim, &lines);
    assert_eq!(
        common::group_lag(t, &engine::group_id("siem"), CEF_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_messages_are_dead_lettered_with_their_headers() {
    let sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tcp))
        .await
        .unwrap();
    let env = syslog_env(&sim.address(), "", "      max_message_bytes: 2048\n").await;
    let t = &env.topology;
    let mut events = common::generated_events(600);
    // Every 7th event carries a 3,000-character original record (CEF rawEvent).
    for (i, e) in events.iter_mut().enumerate() {
        if i % 7 == 3 {
            e["raw"] = Value::from(format!("<13>Mar  4 05:06:07 fw01 {}", "x".repeat(3_000)));
        }
    }
    let lines = produce_cef(t, &events).await;
    // A syslog header is at most ~200 bytes (dvchost ≤ 100): lines below 1,800 fit, lines above
    // 2,048 cannot; none falls in between.
    let big: BTreeSet<String> = lines
        .iter()
        .filter(|(_, l)| l.len() > 2_048)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(lines.values().all(|l| l.len() < 1_800 || l.len() > 2_048));
    assert!(big.len() > 50, "{}", big.len());
    let report = run_sink(t, "siem", 5).await;
    println!("oversized: {report:?}");
    let dlq = pipeline::dlq_tool::read_all(t, "siem.dlq").await.unwrap();
    assert_eq!(dlq.len(), big.len());
    assert_eq!(
        report.dead_lettered.get("permanent").copied(),
        Some(big.len() as u64)
    );
    let mut dead = BTreeSet::new();
    for r in &dlq {
        let id = r.header("secflow.event_id").unwrap().to_string();
        assert_eq!(r.header("secflow.sink"), Some("siem"));
        assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
        assert_eq!(r.header("secflow.error.class"), Some("payload_too_large"));
        assert_eq!(r.header("secflow.format"), Some("cef"));
        let msg = r.header("secflow.error.message").unwrap();
        assert!(msg.contains("more than max_message_bytes 2048"), "{msg}");
        assert_eq!(
            r.value.as_deref(),
            Some(lines[&id].as_bytes()),
            "the original CEF line is kept"
        );
        dead.insert(id);
    }
    assert_eq!(dead, big);
    let delivered: BTreeSet<String> = arrivals(&sim).keys().cloned().collect();
    assert!(dead.is_disjoint(&delivered));
    assert_eq!(delivered.len() + dead.len(), lines.len());
    assert_intact(&sim, &lines);
    assert_eq!(
        common::group_lag(t, &engine::group_id("siem"), CEF_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sink_reconnects_after_the_receiver_restarts_mid_run() {
    let mut sim = SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tcp))
        .await
        .unwrap();
    let env = syslog_env(
        &sim.address(),
        "    batch: {max_events: 100, max_wait_ms: 50}\n    rate_limit: {events_per_sec: 1500}\n    retry: {max_attempts: 5, initial_backoff_ms: 50, max_backoff_ms: 400}\n    circuit: {failure_threshold: 3, open_ms: 300}\n",
        "",
    )
    .await;
    let t = &env.topology;
    let lines = produce_cef(t, &common::generated_events(6_000)).await;
    let mut stopped_at = 0;
    let (report, ()) = tokio::join!(run_sink(t, "siem", 5), async {
        // Wait (bounded) until a quarter has arrived, then restart the receiver.
        for _ in 0..600 {
            if sim.message_count() >= 1_500 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sim.stop().await;
        stopped_at = sim.message_count();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        sim.restart().await.unwrap();
    });
    let got = arrivals(&sim);
    let duplicates: u64 = got.values().map(|n| n - 1).sum();
    println!(
        "restart mid-run: stopped after {stopped_at} messages, {} messages in all, {} connections, \
         {duplicates} duplicate(s), report {report:?}",
        sim.message_count(),
        sim.connections()
    );
    assert!(
        (1_500..6_000).contains(&stopped_at),
        "the restart happened mid-run ({stopped_at})"
    );
    assert!(sim.connections() >= 2, "a new connection after the restart");
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        lines.keys().cloned().collect::<BTreeSet<_>>(),
        "every event arrives (at-least-once)"
    );
    assert_eq!(sim.message_count() as u64, 6_000 + duplicates);
    assert!(report.dead_lettered.is_empty(), "{report:?}");
    assert!(report.to_tiers.is_empty(), "{report:?}");
    assert_intact(&sim, &lines);
    assert_eq!(
        common::group_lag(t, &engine::group_id("siem"), CEF_TOPIC),
        0
    );
    env.stack.stop().await;
}
