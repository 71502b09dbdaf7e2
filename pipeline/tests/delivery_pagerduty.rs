//! The PagerDuty sink through the real broker to the PagerDuty simulator: every qualifying
//! alert accounted for (one trigger per incident, the rest suppressed as open incidents, the
//! counts add up), a 429 burst retried without a duplicate trigger, a refused event
//! dead-lettered with its headers, and the incident lifecycle: a resolution event resolves,
//! a restart with `state_dir` keeps open incidents (no re-trigger), a quiet window resolves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::sink::{run_sink, run_sink_stage, sink_stage, ECS_TOPIC};
use devstack::sim::{
    Faults, IncidentHistory, PagerDutySimConfig, SimConfig, SimKind, SimServer, StatusRule,
};
use pipeline::delivery::engine::{self};
use pipeline::topology::SinkTarget;
use serde_json::Value;

/// The default integration key and the SOC route's key (32 characters each).
const KEY: &str = "R0UT1NGKEY0000000000000000000001";
const SOC_KEY: &str = "R0UT1NGKEY000000000000000000SOC2";

/// A PagerDuty simulator, the keys in secret files, and a stack whose topology has one
/// PagerDuty sink `pagerduty` reading the ECS topic: alerts of `tenant-3` go to the SOC key,
/// a link points at the SIEM. `settings` are extra stage lines (four spaces), `sink_extra`
/// extra sink lines (six spaces).
async fn pd_env(settings: &str, sink_extra: &str) -> (SimServer, tempfile::TempDir, common::Env) {
    let sim = SimServer::start(
        SimKind::PagerDuty(PagerDutySimConfig::new(&[KEY, SOC_KEY])),
        SimConfig {
            keep_requests: 100_000,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("pd-key");
    let soc_file = dir.path().join("pd-soc-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    std::fs::write(&soc_file, format!("{SOC_KEY}\n")).unwrap();
    let stages = format!(
        "  - type: sink\n    name: pagerduty\n    input: ecs\n{settings}    sink:\n      kind: pagerduty\n      endpoint: {}\n      routing_key: {{file: {}}}\n      routes:\n        - {{name: soc, tenants: [tenant-3], routing_key: {{file: {}}}}}\n      links:\n        - {{href: \"https://siem.example.com/app/events/{{secflow.event_id}}\", text: \"Event in the SIEM\"}}\n{sink_extra}",
        sim.url(),
        key_file.display(),
        soc_file.display()
    );
    let env = common::env(&stages).await;
    (sim, dir, env)
}

fn pd(sim: &SimServer) -> std::sync::Arc<devstack::sim::PagerDutyApp> {
    sim.pagerduty().unwrap()
}

/// The dedup key the default template gives a canonical event.
fn dedup_key(e: &Value) -> String {
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

/// The high-severity process alert example with this id, tenant and host.
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

/// A resolution for the incident of `alert(_, tenant, host)`: label `secflow_status: resolved`,
/// severity info.
fn resolution(id: &str, tenant: &str, host: &str) -> Value {
    let mut e = alert(id, tenant, host);
    e["labels"]["secflow_status"] = Value::from("resolved");
    e["severity"] = Value::from("info");
    e
}

fn history(opened: u64, resolved: u64, open: bool) -> IncidentHistory {
    IncidentHistory {
        opened,
        deduplicated: 0,
        resolved,
        resolves_ignored: 0,
        open,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_alert_is_one_trigger_per_incident_or_suppressed_and_the_counts_add_up() {
    let (sim, _secrets, env) = pd_env("    batch: {max_events: 200}\n", "").await;
    let t = &env.topology;
    let events = common::generated_events(2_000);
    common::produce_ecs(t, &events).await;
    let report = run_sink(t, "pagerduty", 5).await;
    println!("healthy: {report:?}");
    assert!(
        report.dead_lettered.is_empty() && report.to_tiers.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.delivered + report.suppressed, 2_000, "{report:?}");

    let alerts: Vec<&Value> = events.iter().filter(|e| is_alert(e)).collect();
    let below = (events.len() - alerts.len()) as u64;
    let want_keys: BTreeSet<String> = alerts.iter().map(|e| dedup_key(e)).collect();
    let incidents = pd(&sim).incidents();
    assert_eq!(
        incidents.keys().cloned().collect::<BTreeSet<_>>(),
        want_keys,
        "one incident per tenant, rule and host"
    );
    for (key, h) in &incidents {
        assert_eq!(
            *h,
            history(1, 0, true),
            "{key}: exactly one trigger, no duplicate"
        );
    }
    // Every trigger carries its records: delivered = the records in triggers, and the
    // suppressed ones are the below-threshold events plus the open-incident repeats.
    let actions = pd(&sim).actions();
    assert!(actions.iter().all(|a| a.action == "trigger"));
    let in_triggers: u64 = actions
        .iter()
        .map(|a| {
            a.body["payload"]["custom_details"]["secflow"]["occurrences"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(report.delivered, in_triggers);
    let repeats = report.suppressed - below;
    assert_eq!(
        in_triggers + repeats,
        alerts.len() as u64,
        "every alert accounted for"
    );
    assert_eq!(sim.stats().bad_requests + sim.stats().auth_failures, 0);

    // What the responder sees.
    let by_id: BTreeMap<&str, &Value> = events
        .iter()
        .map(|e| (e["event_id"].as_str().unwrap(), e))
        .collect();
    for a in &actions {
        let b = &a.body;
        let first = by_id[b["payload"]["custom_details"]["secflow"]["event_id"]
            .as_str()
            .unwrap()];
        let tenant = first["tenant"].as_str().unwrap();
        let want_key = if tenant == "tenant-3" { SOC_KEY } else { KEY };
        assert_eq!(
            b["routing_key"], want_key,
            "tenant-3 is routed to the SOC key"
        );
        assert_eq!(b["dedup_key"], dedup_key(first));
        let p = &b["payload"];
        let severity = match first["severity"].as_str().unwrap() {
            "critical" => "critical",
            _ => "error",
        };
        assert_eq!(p["severity"], severity);
        assert_eq!(p["group"], tenant);
        assert_eq!(
            p["source"],
            first["host"]["hostname"].as_str().unwrap_or("unknown")
        );
        assert!(p["summary"].as_str().unwrap().contains(" on "));
        assert!(p["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            p["custom_details"]["event"]["event"]["id"],
            first["event_id"]
        );
        assert_eq!(
            b["links"][0]["href"],
            format!(
                "https://siem.example.com/app/events/{}",
                first["event_id"].as_str().unwrap()
            )
        );
    }
    assert_eq!(
        common::group_lag(t, &engine::group_id("pagerduty"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_burst_is_retried_and_still_one_trigger_per_incident() {
    let (sim, _secrets, env) = pd_env(
        "    batch: {max_events: 100}\n    retry: {max_attempts: 5, initial_backoff_ms: 50, max_backoff_ms: 400}\n    circuit: {failure_threshold: 3, open_ms: 300}\n",
        "",
    )
    .await;
    let t = &env.topology;
    let events = common::generated_events(1_000);
    common::produce_ecs(t, &events).await;
    sim.set_faults(Faults {
        statuses: vec![StatusRule::times(429, 4).with_retry_after("1")],
        ..Faults::default()
    });
    let report = run_sink(t, "pagerduty", 5).await;
    println!("429 burst: {report:?}, sim {:?}", sim.stats());
    assert_eq!(sim.stats().faulted, 4, "every injected 429 was hit");
    assert!(
        report.dead_lettered.is_empty() && report.to_tiers.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.delivered + report.suppressed, 1_000);
    let want: BTreeSet<String> = events
        .iter()
        .filter(|e| is_alert(e))
        .map(dedup_key)
        .collect();
    let incidents = pd(&sim).incidents();
    assert_eq!(incidents.keys().cloned().collect::<BTreeSet<_>>(), want);
    for (key, h) in &incidents {
        assert_eq!(*h, history(1, 0, true), "{key}");
    }
    assert_eq!(
        common::group_lag(t, &engine::group_id("pagerduty"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_pagerduty_refuses_is_dead_lettered_with_its_headers() {
    let (sim, _secrets, env) = pd_env("    batch: {max_events: 50}\n", "").await;
    let t = &env.topology;
    // Three incidents, the first trigger refused with 400.
    let events = vec![
        alert("a-1", "tenant-0", "h1"),
        alert("a-2", "tenant-0", "h1"),
        alert("b-1", "tenant-0", "h2"),
        alert("c-1", "tenant-0", "h3"),
    ];
    common::produce_ecs(t, &events).await;
    sim.set_faults(Faults {
        statuses: vec![StatusRule::times(400, 1)],
        ..Faults::default()
    });
    let report = run_sink(t, "pagerduty", 5).await;
    println!("400: {report:?}");
    let dlq = pipeline::dlq_tool::read_all(t, "pagerduty.dlq")
        .await
        .unwrap();
    assert_eq!(dlq.len(), 2, "the refused trigger carried both h1 records");
    for r in &dlq {
        assert_eq!(r.header("secflow.sink"), Some("pagerduty"));
        assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
        assert_eq!(r.header("secflow.error.class"), Some("invalid_event"));
        assert_eq!(r.header("secflow.error.status"), Some("400"));
        assert_eq!(r.header("secflow.origin.topic"), Some(ECS_TOPIC));
        let msg = r.header("secflow.error.message").unwrap();
        assert!(
            msg.contains("Event object is invalid: simulated fault"),
            "{msg}"
        );
        assert!(!msg.contains(KEY));
    }
    let dead: BTreeSet<&str> = dlq
        .iter()
        .map(|r| r.header("secflow.event_id").unwrap())
        .collect();
    assert_eq!(dead, BTreeSet::from(["a-1", "a-2"]));
    assert_eq!(report.dead_lettered.get("permanent"), Some(&2));
    assert_eq!(report.delivered, 2);
    let incidents = pd(&sim).incidents();
    assert_eq!(
        incidents.len(),
        2,
        "h2 and h3 opened; h1 never reached PagerDuty"
    );
    assert!(incidents.values().all(|h| *h == history(1, 0, true)));
    assert_eq!(
        common::group_lag(t, &engine::group_id("pagerduty"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

fn state_file(dir: &std::path::Path) -> PathBuf {
    dir.join("pagerduty.state.json")
}

fn open_in_state(dir: &std::path::Path) -> BTreeSet<String> {
    let v: Value = serde_json::from_slice(&std::fs::read(state_file(dir)).unwrap()).unwrap();
    v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incidents_resolve_by_event_survive_a_restart_and_resolve_when_quiet() {
    let state = tempfile::tempdir().unwrap();
    let (sim, _secrets, env) = pd_env(
        &format!(
            "    batch: {{max_events: 3, max_wait_ms: 50}}\n    state_dir: {}\n",
            state.path().display()
        ),
        "",
    )
    .await;
    let t = &env.topology;
    let key = |host: &str| format!("tenant-1:c9f8a2d1-7e3b-4c5a-9d0e-1f2a3b4c5d6e:{host}");

    // Run 1: two incidents, repeated over several batches: two triggers.
    let run1: Vec<Value> = (0..12)
        .map(|i| {
            alert(
                &format!("r1-{i}"),
                "tenant-1",
                if i % 2 == 0 { "h1" } else { "h2" },
            )
        })
        .collect();
    common::produce_ecs(t, &run1).await;
    let report = run_sink(t, "pagerduty", 4).await;
    println!("run 1: {report:?}");
    assert_eq!(report.delivered + report.suppressed, 12);
    assert_eq!(report.suppressed, 12 - report.delivered);
    let incidents = pd(&sim).incidents();
    assert_eq!(incidents[&key("h1")], history(1, 0, true));
    assert_eq!(incidents[&key("h2")], history(1, 0, true));
    assert_eq!(
        open_in_state(state.path()),
        BTreeSet::from([key("h1"), key("h2")])
    );

    // Run 2 (a restart): more of both, then h1 is resolved by a resolution event. The saved
    // state says both are open: no new trigger.
    let mut run2: Vec<Value> = (0..6)
        .map(|i| {
            alert(
                &format!("r2-{i}"),
                "tenant-1",
                if i % 2 == 0 { "h1" } else { "h2" },
            )
        })
        .collect();
    run2.push(resolution("r2-resolved", "tenant-1", "h1"));
    common::produce_ecs(t, &run2).await;
    let report = run_sink(t, "pagerduty", 4).await;
    println!("run 2: {report:?}");
    assert_eq!(report.suppressed, 6, "all repeats of open incidents");
    assert_eq!(report.delivered, 1, "the resolution");
    let incidents = pd(&sim).incidents();
    assert_eq!(
        incidents[&key("h1")],
        history(1, 1, false),
        "resolved by the event"
    );
    assert_eq!(
        incidents[&key("h2")],
        history(1, 0, true),
        "not triggered again"
    );
    let resolve = pd(&sim)
        .actions()
        .into_iter()
        .find(|a| a.action == "resolve")
        .unwrap();
    assert_eq!(resolve.key, key("h1"));
    assert_eq!(
        resolve.body["routing_key"], KEY,
        "resolved through the key it was opened with"
    );
    assert_eq!(open_in_state(state.path()), BTreeSet::from([key("h2")]));

    // Run 3 with a 2 s quiet window: a new incident h3 opens; h2 (restored) and then h3 get no
    // more events and are resolved by the tick.
    let mut s = sink_stage(t, "pagerduty");
    if let SinkTarget::PagerDuty(c) = &mut s.sink {
        c.auto_resolve_after_secs = 2;
    }
    common::produce_ecs(t, &[alert("r3-0", "tenant-1", "h3")]).await;
    let report = run_sink_stage(t, &s, 8).await;
    println!("run 3: {report:?}");
    assert_eq!(report.delivered, 1);
    assert!(report.housekeeping >= 2, "{report:?}");
    let incidents = pd(&sim).incidents();
    assert_eq!(
        incidents[&key("h2")],
        history(1, 1, false),
        "quiet: resolved"
    );
    assert_eq!(
        incidents[&key("h3")],
        history(1, 1, false),
        "quiet: resolved"
    );
    assert_eq!(incidents[&key("h1")], history(1, 1, false));
    assert!(open_in_state(state.path()).is_empty());
    let resolves = pd(&sim)
        .actions()
        .into_iter()
        .filter(|a| a.action == "resolve")
        .count();
    assert_eq!(resolves, 3, "one resolve per incident");
    assert_eq!(
        common::group_lag(t, &engine::group_id("pagerduty"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}
