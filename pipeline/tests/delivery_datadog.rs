//! The Datadog Logs sink through the real broker to the Datadog simulator: healthy delivery of
//! every event with the attributes analysts see, a 429/503 burst retried, a revoked API key
//! (403) dead-lettered with its headers while the circuit opens, and Datadog's size limits
//! (1000 entries and 5 MB per request, 1 MB per entry).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::sink::{run_sink, ECS_TOPIC};
use devstack::sim::{DatadogSimConfig, Faults, SimConfig, SimKind, SimServer, StatusRule};
use pipeline::delivery::engine::{self};
use pipeline::topology::{self};
use serde_json::Value;

const KEY: &str = "dd-api-key-0f1e2d3c4b5a";

async fn datadog_sim() -> SimServer {
    SimServer::start(
        SimKind::Datadog(DatadogSimConfig::new(KEY)),
        SimConfig {
            keep_requests: 100_000,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap()
}

/// A Datadog simulator, the API key in a secret file, and a test stack whose topology has one
/// Datadog sink stage `datadog` reading the ECS topic. `settings` are extra stage lines (YAML,
/// indented four spaces, each ending in a newline). `properties` are extra librdkafka
/// properties for every client (YAML flow mapping body), e.g. for messages over 1 MB.
async fn dd_env(settings: &str, properties: &str) -> (SimServer, tempfile::TempDir, common::Env) {
    let sim = datadog_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("dd-api-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let stages = format!(
        "  - type: sink\n    name: datadog\n    input: ecs\n{settings}    sink:\n      kind: datadog\n      endpoint: {}\n      api_key: {{file: {}}}\n      service: secflow-test\n      hostname: fallback-host\n      tags: [\"env:test\"]\n",
        sim.url(),
        key_file.display()
    );
    let stack = devstack::testkit::TestStack::start().await.unwrap();
    let topology_file = stack.dir().join("topology.yaml");
    let mut yaml = stack.topology_yaml(&stages);
    if !properties.is_empty() {
        yaml = yaml.replacen(
            "  session_timeout_ms: 6000\n",
            &format!("  session_timeout_ms: 6000\n  properties: {{{properties}}}\n"),
            1,
        );
    }
    std::fs::write(&topology_file, yaml).unwrap();
    let topology = topology::load(&topology_file).unwrap().topology;
    pipeline::kafka::create_topics(&topology.kafka, &topology.all_topics())
        .await
        .unwrap();
    let env = common::Env {
        stack,
        topology_file,
        topology,
    };
    (sim, dir, env)
}

/// The log entries of every request the simulator answered with `status`, with the request's
/// decoded body size.
fn entries_by_request(sim: &SimServer, status: u16) -> Vec<(usize, Vec<Value>)> {
    sim.received_requests()
        .iter()
        .filter(|r| r.status == status)
        .map(|r| {
            let entries: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
            (r.body.len(), entries)
        })
        .collect()
}

/// What Datadog's `status` should be for a canonical severity.
fn expected_status(severity: &str) -> &'static str {
    match severity {
        "info" => "info",
        "low" => "notice",
        "medium" => "warning",
        "high" => "error",
        "critical" => "critical",
        other => panic!("severity {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_arrives_with_the_attributes_analysts_search_on() {
    let (sim, _secrets, env) = dd_env("", "").await;
    let t = &env.topology;
    let events = common::generated_events(2_000);
    let ids: BTreeSet<String> = common::produce_ecs(t, &events).await.into_iter().collect();
    assert_eq!(ids.len(), 2_000);
    let report = run_sink(t, "datadog", 5).await;
    println!("healthy: {report:?}");
    assert_eq!(report.delivered, 2_000, "{report:?}");
    assert!(report.dead_lettered.is_empty() && report.to_tiers.is_empty());
    assert_eq!(sim.received_event_ids(), ids, "every event id arrives");
    assert!(sim.duplicate_event_ids().is_empty());
    assert_eq!(sim.truncated_entries(), 0);
    assert_eq!(sim.stats().auth_failures + sim.stats().bad_requests, 0);

    // Each entry is what an analyst expects from its canonical event.
    let by_id: BTreeMap<&str, &Value> = events
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e))
        .collect();
    let requests = sim.received_requests();
    assert!(!requests.is_empty());
    let mut seen = 0;
    for r in &requests {
        assert_eq!(r.path, "/api/v2/logs");
        assert_eq!(r.header("dd-api-key"), Some(KEY));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        let entries: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
        assert!(entries.len() <= 1000);
        for e in &entries {
            let id = e["secflow"]["event_id"].as_str().unwrap();
            let canonical = by_id[id];
            let tenant = canonical["tenant"].as_str().unwrap();
            assert_eq!(e["ddsource"], "secflow");
            assert_eq!(e["service"], "secflow-test");
            assert_eq!(
                e["ddtags"].as_str().unwrap(),
                format!("env:test,tenant:{tenant}")
            );
            let host = canonical["host"]["hostname"]
                .as_str()
                .unwrap_or("fallback-host");
            assert_eq!(e["hostname"], host, "{id}");
            assert_eq!(
                e["status"],
                expected_status(canonical["severity"].as_str().unwrap())
            );
            assert_eq!(e["message"], canonical["message"]);
            assert_eq!(e["event"]["id"], id, "the ECS document is merged");
            assert_eq!(e["secflow"]["tenant"], tenant);
            assert_eq!(e["secflow"]["format"], "ecs");
            assert!(e.get("@timestamp").is_some());
            seen += 1;
        }
    }
    assert_eq!(seen, 2_000, "no re-sends on a healthy run");
    assert_eq!(
        common::group_lag(t, &engine::group_id("datadog"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_429_and_503_is_retried_until_everything_is_delivered() {
    let (sim, _secrets, env) = dd_env(
        "    batch: {max_events: 200}\n    retry: {max_attempts: 5, initial_backoff_ms: 50, max_backoff_ms: 400}\n    circuit: {failure_threshold: 3, open_ms: 300}\n",
        "",
    )
    .await;
    let t = &env.topology;
    let ids: BTreeSet<String> = common::produce_ecs(t, &common::generated_events(2_000))
        .await
        .into_iter()
        .collect();
    sim.set_faults(Faults {
        statuses: vec![
            StatusRule::times(429, 3).with_retry_after("1"),
            StatusRule::times(503, 3),
        ],
        ..Faults::default()
    });
    let report = run_sink(t, "datadog", 5).await;
    println!("burst: {report:?}, sim {:?}", sim.stats());
    assert_eq!(sim.stats().faulted, 6, "every injected fault was hit");
    assert_eq!(
        sim.received_event_ids(),
        ids,
        "all delivered after the burst"
    );
    assert!(report.dead_lettered.is_empty(), "{report:?}");
    assert!(
        report.to_tiers.is_empty(),
        "an outage never moves records to tiers"
    );
    assert_eq!(report.delivered, 2_000);
    assert_eq!(
        common::group_lag(t, &engine::group_id("datadog"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_api_key_dead_letters_that_request_and_opens_the_circuit() {
    let (sim, _secrets, env) = dd_env(
        "    batch: {max_events: 200}\n    max_in_flight: 1\n    circuit: {failure_threshold: 5, open_ms: 500}\n",
        "",
    )
    .await;
    let t = &env.topology;
    let all: BTreeSet<String> = common::produce_ecs(t, &common::generated_events(1_000))
        .await
        .into_iter()
        .collect();
    // The key is refused once (revoked, then a valid one is back in place).
    sim.set_faults(Faults {
        statuses: vec![StatusRule::times(403, 1)],
        ..Faults::default()
    });
    let report = run_sink(t, "datadog", 5).await;
    println!("403: {report:?}");
    assert!(
        report.circuit_opened >= 1,
        "a bad key opens the circuit at once"
    );
    let dlq = pipeline::dlq_tool::read_all(t, "datadog.dlq")
        .await
        .unwrap();
    assert!(!dlq.is_empty() && dlq.len() <= 200, "{}", dlq.len());
    assert_eq!(
        report.dead_lettered.get("permanent").copied(),
        Some(dlq.len() as u64)
    );
    let mut dead = BTreeSet::new();
    for r in &dlq {
        assert_eq!(r.header("secflow.sink"), Some("datadog"));
        assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
        assert_eq!(r.header("secflow.error.class"), Some("auth"));
        assert_eq!(r.header("secflow.error.status"), Some("403"));
        assert_eq!(r.header("secflow.origin.topic"), Some(ECS_TOPIC));
        let msg = r.header("secflow.error.message").unwrap();
        assert!(
            msg.contains("API key is invalid or revoked") && msg.contains("circuit open"),
            "{msg}"
        );
        assert!(!msg.contains(KEY));
        dead.insert(r.header("secflow.event_id").unwrap().to_string());
    }
    let delivered = sim.received_event_ids();
    assert!(dead.is_disjoint(&delivered));
    let union: BTreeSet<String> = dead.union(&delivered).cloned().collect();
    assert_eq!(union, all, "every event is delivered or dead-lettered");
    assert_eq!(
        common::group_lag(t, &engine::group_id("datadog"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

/// An example event whose ECS document is about `bytes` long (a long `message`).
fn big_event(i: usize, bytes: usize) -> Value {
    let mut e = common::examples()[0].clone();
    e["event_id"] = Value::from(format!("big-{i:03}"));
    e["tenant"] = Value::from("acme");
    e["message"] = Value::from("m".repeat(bytes));
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn size_limits_split_requests_and_dead_letter_an_oversized_entry() {
    // Kafka's default 1 MB message limit would refuse the oversized event before it reaches
    // the sink: raise it for this test's clients.
    let (sim, _secrets, env) = dd_env(
        "    batch: {max_events: 2500, max_bytes: 100000000, max_wait_ms: 10000}\n    max_in_flight: 1\n",
        "message.max.bytes: \"4000000\"",
    )
    .await;
    let t = &env.topology;

    // 2,500 small events in one batch: requests of at most 1000 entries.
    let small: BTreeSet<String> = common::produce_ecs(t, &common::generated_events(2_500))
        .await
        .into_iter()
        .collect();
    let report = run_sink(t, "datadog", 5).await;
    println!("count split: {report:?}");
    assert_eq!(sim.received_event_ids(), small);
    let counts: Vec<usize> = entries_by_request(&sim, 202)
        .iter()
        .map(|(_, e)| e.len())
        .collect();
    println!("entries per request: {counts:?}");
    assert!(counts.iter().all(|&c| c <= 1000), "{counts:?}");
    assert!(
        counts.iter().filter(|&&c| c == 1000).count() >= 2,
        "a 2,500-record batch is sent as 1000 + 1000 + 500: {counts:?}"
    );
    assert_eq!(
        sim.stats().bad_requests,
        0,
        "the simulator never saw a request over a limit"
    );
    sim.reset();

    // 12 entries of ~900 kB (at most 5 fit in 5 MB) and one of ~1.2 MB.
    let mut events: Vec<Value> = (0..12).map(|i| big_event(i, 900_000)).collect();
    events.insert(5, big_event(99, 1_200_000));
    let ids = common::produce_ecs(t, &events).await;
    let report = run_sink(t, "datadog", 5).await;
    println!("byte split: {report:?}");
    let want: BTreeSet<String> = ids.iter().filter(|i| *i != "big-099").cloned().collect();
    assert_eq!(
        sim.received_event_ids(),
        want,
        "every entry under 1 MB arrives"
    );
    assert_eq!(
        sim.truncated_entries(),
        0,
        "nothing was left for Datadog to truncate"
    );
    let sizes: Vec<usize> = entries_by_request(&sim, 202)
        .iter()
        .map(|(bytes, _)| *bytes)
        .collect();
    println!("request bytes: {sizes:?}");
    assert!(sizes.iter().all(|&b| b <= 5_000_000), "{sizes:?}");
    assert!(
        sizes.iter().any(|&b| b > 4_000_000),
        "requests are filled up to the 5 MB limit: {sizes:?}"
    );
    assert_eq!(sim.stats().bad_requests, 0);

    let dlq = pipeline::dlq_tool::read_all(t, "datadog.dlq")
        .await
        .unwrap();
    assert_eq!(dlq.len(), 1, "only the oversized entry is dead-lettered");
    let r = &dlq[0];
    assert_eq!(r.header("secflow.event_id"), Some("big-099"));
    assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
    assert_eq!(r.header("secflow.error.class"), Some("payload_too_large"));
    assert_eq!(r.header("secflow.error.status"), None);
    let msg = r.header("secflow.error.message").unwrap();
    assert!(
        msg.contains("over the 1000000 byte limit per entry")
            && msg.contains("dead-lettered instead of truncated"),
        "{msg}"
    );
    assert!(
        r.value.as_ref().map_or(0, Vec::len) > 1_000_000,
        "the DLQ keeps the original bytes"
    );
    assert_eq!(
        common::group_lag(t, &engine::group_id("datadog"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}
