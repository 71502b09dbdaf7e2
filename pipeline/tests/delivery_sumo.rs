//! The Sumo Logic sink through the real broker to the Sumo Logic simulator: healthy delivery
//! of every event with its metadata headers, a 429/503 burst retried, a rejected source URL
//! (401) dead-lettered with its headers while the circuit opens, and category routing by tenant
//! and severity observed at the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::sink::{run_sink, ECS_TOPIC};
use devstack::sim::{Faults, SimConfig, SimKind, SimServer, StatusRule, SumoSimConfig};
use pipeline::delivery::engine::{self};
use serde_json::Value;

const TOKEN: &str = "ZaVnC4dhaV2yJm0Sumo-Source-Token_0123456789==";

/// A Sumo Logic simulator, its upload URL in a secret file, and a test stack whose topology has
/// one Sumo Logic sink stage `sumo` reading the ECS topic. `settings` are extra stage lines and
/// `sink_extra` extra sink lines (YAML, indented four and six spaces, each ending in a newline).
async fn sumo_env(settings: &str, sink_extra: &str) -> (SimServer, tempfile::TempDir, common::Env) {
    let config = SumoSimConfig::new(TOKEN);
    let sim = SimServer::start(
        SimKind::SumoLogic(config.clone()),
        SimConfig {
            keep_requests: 100_000,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("sumo-url");
    std::fs::write(&url_file, config.upload_url(&sim.url())).unwrap();
    let stages = format!(
        "  - type: sink\n    name: sumo\n    input: ecs\n{settings}    sink:\n      kind: sumo_logic\n      url: {{file: {}}}\n      source_name: \"secflow-{{format}}\"\n      source_host: \"{{host}}\"\n      fields: {{tenant: \"{{tenant}}\"}}\n{sink_extra}",
        url_file.display()
    );
    let env = common::env(&stages).await;
    (sim, dir, env)
}

/// Every message the simulator accepted: (event id, the request's headers).
fn messages(sim: &SimServer) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for r in sim.received_requests().iter().filter(|r| r.status == 200) {
        let headers: BTreeMap<String, String> = r
            .headers
            .iter()
            .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-sumo-"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        let text = String::from_utf8(r.body.clone()).unwrap();
        for line in text.split('\n') {
            let doc: Value = serde_json::from_str(line).unwrap();
            let id = doc["event"]["id"].as_str().unwrap().to_string();
            out.push((id, headers.clone()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_arrives_as_one_line_with_its_metadata_headers() {
    let (sim, _secrets, env) = sumo_env("", "").await;
    let t = &env.topology;
    let events = common::generated_events(2_000);
    let ids: BTreeSet<String> = common::produce_ecs(t, &events).await.into_iter().collect();
    let report = run_sink(t, "sumo", 5).await;
    println!("healthy: {report:?}");
    assert_eq!(report.delivered, 2_000, "{report:?}");
    assert!(report.dead_lettered.is_empty() && report.to_tiers.is_empty());
    assert_eq!(sim.received_event_ids(), ids, "every event id arrives");
    assert!(sim.duplicate_event_ids().is_empty());
    assert_eq!(sim.stats().auth_failures + sim.stats().bad_requests, 0);

    let by_id: BTreeMap<&str, &Value> = events
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e))
        .collect();
    for r in sim.received_requests() {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("x-sumo-client"), Some("secflow"));
        assert!(r.body.len() <= 1_000_000, "{}", r.body.len());
        assert!(!r.path.contains(TOKEN));
    }
    let msgs = messages(&sim);
    assert_eq!(msgs.len(), 2_000, "one message per event, no re-sends");
    for (id, headers) in &msgs {
        let canonical = by_id[id.as_str()];
        let host = canonical["host"]["hostname"].as_str().unwrap_or("unknown");
        assert_eq!(headers["x-sumo-name"], "secflow-ecs");
        assert_eq!(headers["x-sumo-host"], host, "{id}");
        assert_eq!(
            headers["x-sumo-fields"],
            format!("tenant={}", canonical["tenant"].as_str().unwrap())
        );
        assert!(!headers.contains_key("x-sumo-category"), "none configured");
    }
    assert_eq!(
        common::group_lag(t, &engine::group_id("sumo"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_429_and_503_is_retried_until_everything_is_delivered() {
    let (sim, _secrets, env) = sumo_env(
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
    let report = run_sink(t, "sumo", 5).await;
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
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejected_source_url_dead_letters_that_request_and_opens_the_circuit() {
    let (sim, _secrets, env) = sumo_env(
        "    batch: {max_events: 200}\n    max_in_flight: 1\n    circuit: {failure_threshold: 5, open_ms: 500}\n",
        "",
    )
    .await;
    let t = &env.topology;
    let all: BTreeSet<String> = common::produce_ecs(t, &common::generated_events(1_000))
        .await
        .into_iter()
        .collect();
    // The source refuses its token once (a regenerated URL, then the current one configured).
    sim.set_faults(Faults {
        statuses: vec![StatusRule::times(401, 1)],
        ..Faults::default()
    });
    let report = run_sink(t, "sumo", 5).await;
    println!("401: {report:?}");
    assert!(
        report.circuit_opened >= 1,
        "a refused URL opens the circuit at once"
    );
    let dlq = pipeline::dlq_tool::read_all(t, "sumo.dlq").await.unwrap();
    assert!(!dlq.is_empty() && dlq.len() <= 200, "{}", dlq.len());
    assert_eq!(
        report.dead_lettered.get("permanent").copied(),
        Some(dlq.len() as u64)
    );
    let mut dead = BTreeSet::new();
    for r in &dlq {
        assert_eq!(r.header("secflow.sink"), Some("sumo"));
        assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
        assert_eq!(r.header("secflow.error.class"), Some("auth"));
        assert_eq!(r.header("secflow.error.status"), Some("401"));
        let msg = r.header("secflow.error.message").unwrap();
        assert!(
            msg.contains("token is missing or invalid") && msg.contains("current upload URL"),
            "{msg}"
        );
        for (name, value) in &r.headers {
            assert!(!value.contains(TOKEN), "{name} leaks the source URL");
        }
        dead.insert(r.header("secflow.event_id").unwrap().to_string());
    }
    let delivered = sim.received_event_ids();
    assert!(dead.is_disjoint(&delivered));
    let union: BTreeSet<String> = dead.union(&delivered).cloned().collect();
    assert_eq!(union, all, "every event is delivered or dead-lettered");
    assert_eq!(
        common::group_lag(t, &engine::group_id("sumo"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

/// The category the routes below give an event.
fn expected_category(tenant: &str, severity: &str) -> String {
    let rank = |s: &str| {
        ["info", "low", "medium", "high", "critical"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    if tenant == "tenant-0" && rank(severity) >= rank("high") {
        "tenant-0/alerts".to_string()
    } else if rank(severity) >= rank("critical") {
        "security/war-room".to_string()
    } else {
        format!("security/{tenant}/{severity}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn categories_are_routed_by_tenant_and_severity() {
    let (sim, _secrets, env) = sumo_env(
        "    batch: {max_events: 500}\n",
        "      category: \"security/{tenant}/{severity}\"\n      routes:\n        - {tenants: [tenant-0], min_severity: high, category: tenant-0/alerts}\n        - {min_severity: critical, category: security/war-room}\n",
    )
    .await;
    let t = &env.topology;
    let events = common::generated_events(2_000);
    let ids: BTreeSet<String> = common::produce_ecs(t, &events).await.into_iter().collect();
    let report = run_sink(t, "sumo", 5).await;
    println!("routing: {report:?}");
    assert_eq!(sim.received_event_ids(), ids);
    let expected: BTreeMap<&str, String> = events
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap(),
                expected_category(
                    e["tenant"].as_str().unwrap(),
                    e["severity"].as_str().unwrap(),
                ),
            )
        })
        .collect();
    let msgs = messages(&sim);
    assert_eq!(msgs.len(), 2_000);
    let mut per_category: BTreeMap<String, usize> = BTreeMap::new();
    for (id, headers) in &msgs {
        let got = &headers["x-sumo-category"];
        assert_eq!(got, &expected[id.as_str()], "{id}");
        *per_category.entry(got.clone()).or_default() += 1;
    }
    println!("messages per category: {per_category:?}");
    for must in ["tenant-0/alerts", "security/war-room"] {
        assert!(per_category.contains_key(must), "{must}: {per_category:?}");
    }
    assert!(per_category.len() > 5, "{per_category:?}");
    env.stack.stop().await;
}
