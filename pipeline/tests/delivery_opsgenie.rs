//! The OpsGenie sink through the real broker to the OpsGenie simulator: every qualifying alert
//! accounted for (one create per alias, the rest suppressed, the counts add up) with the
//! fields responders see, a 429 burst retried without a duplicate create, a refused alert
//! (422) dead-lettered with its headers, a resolution event closing by alias, and the
//! heartbeat: pings arrive while delivery is healthy and stop while alerts fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::sink::{run_sink, sink_stage, ECS_TOPIC};
use devstack::sim::{
    Faults, IncidentHistory, OpsGenieApp, OpsGenieSimConfig, SimConfig, SimKind, SimServer,
    StatusRule,
};
use pipeline::delivery::engine::{self};
use pipeline::stage::{self, RunLimits};
use serde_json::Value;

const KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";
const HEARTBEAT: &str = "secflow-test";

/// An OpsGenie simulator (heartbeat `secflow-test`), the key in a secret file, and a stack
/// whose topology has one OpsGenie sink `opsgenie` reading the ECS topic: the SOC team
/// responds, `tenant-3` goes to its own team. `settings` are extra stage lines (four spaces),
/// `sink_extra` extra sink lines (six spaces).
async fn og_env(settings: &str, sink_extra: &str) -> (SimServer, tempfile::TempDir, common::Env) {
    let sim = SimServer::start(
        SimKind::OpsGenie(OpsGenieSimConfig::new(KEY, &[HEARTBEAT])),
        SimConfig {
            keep_requests: 100_000,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("og-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let stages = format!(
        "  - type: sink\n    name: opsgenie\n    input: ecs\n{settings}    sink:\n      kind: opsgenie\n      endpoint: {}\n      api_key: {{file: {}}}\n      responders: [{{team: SOC}}]\n      routes:\n        - {{name: t3, tenants: [tenant-3], responders: [{{team: Tenant 3 SOC}}, {{user: oncall@tenant3.example}}]}}\n{sink_extra}",
        sim.url(),
        key_file.display()
    );
    let env = common::env(&stages).await;
    (sim, dir, env)
}

fn og(sim: &SimServer) -> Arc<OpsGenieApp> {
    sim.opsgenie().unwrap()
}

/// The alias the default template gives a canonical event.
fn alias(e: &Value) -> String {
    let rule = e["rule"]["id"]
        .as_str()
        .or_else(|| e["action"].as_str())
        .unwrap_or("");
    let host = e["host"]["hostname"].as_str().unwrap_or("");
    format!("{}:{rule}:{host}", e["tenant"].as_str().unwrap())
}

fn is_alert(e: &Value) -> bool {
    matches!(e["severity"].as_str(), Some("high" | "critical"))
}

fn alert(id: &str, tenant: &str, host: &str) -> Value {
    let mut e = common::examples()
        .into_iter()
        .find(|e| e["action"] == "suspicious_process")
        .unwrap();
    e["event_id"] = Value::from(id);
    e["tenant"] = Value::from(tenant);
    e["host"]["hostname"] = Value::from(host);
    e
}

fn opened_once(h: &IncidentHistory) -> bool {
    h.opened == 1 && h.deduplicated == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_alert_is_one_create_per_alias_or_suppressed_with_what_responders_need() {
    let (sim, _secrets, env) = og_env("    batch: {max_events: 200}\n", "").await;
    let t = &env.topology;
    let events = common::generated_events(2_000);
    common::produce_ecs(t, &events).await;
    let report = run_sink(t, "opsgenie", 5).await;
    println!("healthy: {report:?}");
    assert!(
        report.dead_lettered.is_empty() && report.to_tiers.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.delivered + report.suppressed, 2_000);

    let alerts: Vec<&Value> = events.iter().filter(|e| is_alert(e)).collect();
    let below = (events.len() - alerts.len()) as u64;
    let want: BTreeSet<String> = alerts.iter().map(|e| alias(e)).collect();
    let aliases = og(&sim).alerts();
    assert_eq!(aliases.keys().cloned().collect::<BTreeSet<_>>(), want);
    for (a, h) in &aliases {
        assert!(opened_once(h) && h.open, "{a}: {h:?}");
    }
    let creates = og(&sim).actions();
    let in_creates: u64 = creates
        .iter()
        .map(|c| {
            c.body["details"]["occurrences"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(report.delivered, in_creates);
    assert_eq!(
        in_creates + (report.suppressed - below),
        alerts.len() as u64
    );
    assert_eq!(sim.stats().bad_requests + sim.stats().auth_failures, 0);

    let by_id: BTreeMap<&str, &Value> = events
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e))
        .collect();
    for c in &creates {
        let b = &c.body;
        let first = by_id[b["details"]["event_id"].as_str().unwrap()];
        let tenant = first["tenant"].as_str().unwrap();
        assert_eq!(b["alias"], alias(first));
        assert!(b["message"].as_str().unwrap().chars().count() <= 130);
        let priority = match first["severity"].as_str().unwrap() {
            "critical" => "P1",
            _ => "P2",
        };
        assert_eq!(b["priority"], priority);
        let team = if tenant == "tenant-3" {
            "Tenant 3 SOC"
        } else {
            "SOC"
        };
        assert_eq!(b["responders"][0]["name"], team);
        assert_eq!(b["responders"][0]["type"], "team");
        let tags: Vec<&str> = b["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(tags.contains(&"secflow") && tags.contains(&format!("tenant:{tenant}").as_str()));
        assert_eq!(b["details"]["tenant"], tenant);
        assert_eq!(b["source"], "secflow");
        if let Some(host) = first["host"]["hostname"].as_str() {
            assert_eq!(b["entity"], host);
        }
    }
    assert_eq!(
        common::group_lag(t, &engine::group_id("opsgenie"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_burst_is_retried_and_still_one_create_per_alias() {
    let (sim, _secrets, env) = og_env(
        "    batch: {max_events: 100}\n    retry: {max_attempts: 5, initial_backoff_ms: 50, max_backoff_ms: 400}\n    circuit: {failure_threshold: 3, open_ms: 300}\n",
        "",
    )
    .await;
    let t = &env.topology;
    let events = common::generated_events(1_000);
    common::produce_ecs(t, &events).await;
    sim.set_faults(Faults {
        statuses: vec![StatusRule::times(429, 4)],
        ..Faults::default()
    });
    let report = run_sink(t, "opsgenie", 5).await;
    println!("429 burst: {report:?}, sim {:?}", sim.stats());
    assert_eq!(sim.stats().faulted, 4);
    assert!(
        report.dead_lettered.is_empty() && report.to_tiers.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.delivered + report.suppressed, 1_000);
    let want: BTreeSet<String> = events.iter().filter(|e| is_alert(e)).map(alias).collect();
    let aliases = og(&sim).alerts();
    assert_eq!(aliases.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(aliases.values().all(opened_once), "{aliases:?}");
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_alert_is_dead_lettered_and_a_resolution_closes_by_alias() {
    let (sim, _secrets, env) = og_env("    batch: {max_events: 50}\n", "").await;
    let t = &env.topology;
    let mut resolved = alert("b-2", "tenant-0", "h2");
    resolved["labels"]["secflow_status"] = Value::from("resolved");
    resolved["severity"] = Value::from("info");
    let events = vec![
        alert("a-1", "tenant-0", "h1"),
        alert("b-1", "tenant-0", "h2"),
        resolved,
    ];
    common::produce_ecs(t, &events).await;
    sim.set_faults(Faults {
        statuses: vec![StatusRule::times(422, 1)],
        ..Faults::default()
    });
    let report = run_sink(t, "opsgenie", 5).await;
    println!("422: {report:?}");
    let dlq = pipeline::dlq_tool::read_all(t, "opsgenie.dlq")
        .await
        .unwrap();
    assert_eq!(dlq.len(), 1);
    let r = &dlq[0];
    assert_eq!(r.header("secflow.event_id"), Some("a-1"));
    assert_eq!(r.header("secflow.sink"), Some("opsgenie"));
    assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
    assert_eq!(r.header("secflow.error.class"), Some("invalid_alert"));
    assert_eq!(r.header("secflow.error.status"), Some("422"));
    let msg = r.header("secflow.error.message").unwrap();
    assert!(msg.contains("Request body is not processable"), "{msg}");
    assert!(!msg.contains(KEY));
    // h2 was created, then closed by its alias.
    let aliases = og(&sim).alerts();
    let h2 = &aliases["tenant-0:c9f8a2d1-7e3b-4c5a-9d0e-1f2a3b4c5d6e:h2"];
    assert_eq!((h2.opened, h2.resolved, h2.open), (1, 1, false));
    assert_eq!(aliases.len(), 1, "h1 never reached OpsGenie");
    let close = og(&sim)
        .actions()
        .into_iter()
        .find(|a| a.action == "close")
        .unwrap();
    assert_eq!(
        close.body["note"],
        "Closed by secflow: resolution event b-2"
    );
    assert_eq!(report.delivered, 2, "the h2 create and its close");
    assert_eq!(
        common::group_lag(t, &engine::group_id("opsgenie"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

/// Polls `cond` every 100 ms until it holds or `limit` passes; whether it held.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_heartbeat_pings_while_healthy_and_stops_while_alerts_fail() {
    let (sim, _secrets, env) = og_env(
        "    batch: {max_events: 20, max_wait_ms: 50}\n    retry: {max_attempts: 3, initial_backoff_ms: 100, max_backoff_ms: 500}\n    circuit: {failure_threshold: 2, open_ms: 500}\n",
        &format!("      heartbeat: {{name: {HEARTBEAT}, interval_secs: 1}}\n"),
    )
    .await;
    let t = env.topology.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = {
        let t = t.clone();
        tokio::spawn(async move {
            let s = sink_stage(&t, "opsgenie");
            let shutdown: stage::Shutdown = Box::pin(async move {
                let _ = stop_rx.await;
            });
            engine::run(&t, &s, RunLimits::default(), shutdown)
                .await
                .unwrap()
        })
    };
    let app = og(&sim);

    // Healthy and idle: pings arrive.
    assert!(
        eventually(Duration::from_secs(20), || app.pings().len() >= 3).await,
        "pings while healthy: {:?}",
        app.pings()
    );
    assert!(app.pings().iter().all(|p| p.name == HEARTBEAT));

    // Alerts fail (every create answered 503): delivery is unhealthy, pings stop.
    sim.set_faults(Faults {
        statuses: vec![StatusRule {
            status: 503,
            count: None,
            for_ms: None,
            retry_after: None,
        }],
        ..Faults::default()
    });
    let events: Vec<Value> = (0..10)
        .map(|i| alert(&format!("f-{i}"), "tenant-0", &format!("host-{i}")))
        .collect();
    common::produce_ecs(&t, &events).await;
    assert!(
        eventually(Duration::from_secs(20), || sim.stats().faulted >= 1).await,
        "the alerts reached the failing simulator"
    );
    let failing_since = SystemTime::now();
    // Four heartbeat intervals of failure.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let failing_until = SystemTime::now();
    sim.clear_faults();
    // A ping already decided when the first create failed may still land just after it.
    let grace = failing_since + Duration::from_millis(1500);
    let during: Vec<_> = app
        .pings()
        .into_iter()
        .filter(|p| p.at > grace && p.at < failing_until)
        .collect();
    assert!(during.is_empty(), "no ping while alerts fail: {during:?}");
    assert!(
        sim.stats().faulted >= 2,
        "the sink kept trying: {:?}",
        sim.stats()
    );

    // The simulator recovers: the alerts are delivered and the pings resume.
    assert!(
        eventually(Duration::from_secs(30), || app.alerts().len() == 10).await,
        "alerts delivered after recovery: {:?}",
        app.alerts().keys()
    );
    assert!(
        eventually(Duration::from_secs(20), || app
            .pings()
            .iter()
            .filter(|p| p.at > failing_until)
            .count()
            >= 2)
        .await,
        "pings resume: {:?}",
        app.pings()
    );
    let _ = stop_tx.send(());
    let report = run.await.unwrap();
    println!("heartbeat: {report:?}, sim {:?}", sim.stats());
    assert_eq!(report.delivered, 10);
    assert!(
        report.dead_lettered.is_empty() && report.to_tiers.is_empty(),
        "{report:?}"
    );
    assert!(app.alerts().values().all(opened_once));
    env.stack.stop().await;
}
