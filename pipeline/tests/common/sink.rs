//! The sink test kit: running a sink stage of a test topology, secret files, and the alerts and
//! channel routes the chat sinks' tests (Slack, Teams) share.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use pipeline::delivery::engine::{self, SinkReport};
use pipeline::stage::{self, RunLimits};
use pipeline::topology::{SinkStage, StageConfig, Topology};
use serde_json::Value;

/// The ECS topic of the test topologies.
pub const ECS_TOPIC: &str = "security-events.ecs.v1";

/// The sink stage `name` of `t`.
pub fn sink_stage(t: &Topology, name: &str) -> SinkStage {
    let Some(StageConfig::Sink(s)) = t.stage(name).cloned() else {
        panic!("sink stage {name}")
    };
    *s
}

/// Runs sink stage `s` until it has had nothing to do for `idle_secs`.
pub async fn run_sink_stage(t: &Topology, s: &SinkStage, idle_secs: u64) -> SinkReport {
    let limits = RunLimits {
        max_records: None,
        idle_exit: Some(Duration::from_secs(idle_secs)),
    };
    engine::run(t, s, limits, stage::never()).await.unwrap()
}

/// Runs the sink stage `name` of `t` until it has had nothing to do for `idle_secs`.
pub async fn run_sink(t: &Topology, name: &str, idle_secs: u64) -> SinkReport {
    run_sink_stage(t, &sink_stage(t, name), idle_secs).await
}

/// Writes `value` to `dir/name` (a secret the topology reads from a file); its path.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, value).unwrap();
    p.display().to_string()
}

/// The chat sinks' channels: `acme` for that tenant, `war-room` for critical, `soc` for the rest.
pub const CHANNELS: [&str; 3] = ["soc", "acme", "war-room"];
pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];
pub const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// The intrusion-detection alert of `schemas/examples/`.
pub fn base_alert() -> &'static Value {
    static BASE: OnceLock<Value> = OnceLock::new();
    BASE.get_or_init(|| {
        super::examples()
            .into_iter()
            .find(|e| e["event_id"] == "1a2b3c4d-5e6f-4a7b-9c8d-0e1f2a3b4c5d")
            .expect("intrusion_detection_alert example")
    })
}

/// An alert with these routing and grouping values.
pub fn alert(id: &str, tenant: &str, severity: &str, host: &str, rule: &str) -> Value {
    let mut v = base_alert().clone();
    v["event_id"] = Value::from(id);
    v["tenant"] = Value::from(tenant);
    v["severity"] = Value::from(severity);
    v["host"]["hostname"] = Value::from(host);
    v["rule"]["id"] = Value::from(rule);
    v["rule"]["name"] = Value::from(format!("Rule {rule}"));
    v
}

/// `n` alerts spread over tenants, severities, five hosts and three rules.
pub fn burst(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            alert(
                &format!("{prefix}-{i:05}"),
                TENANTS[i % 3],
                SEVERITIES[(i / 3) % 5],
                &format!("host-{}", i % 5),
                &format!("R{}", i % 3),
            )
        })
        .collect()
}

/// The channel the chat topologies' routes give an event.
pub fn expected_channel(e: &Value) -> &'static str {
    if e["tenant"] == "acme" {
        "acme"
    } else if e["severity"] == "critical" {
        "war-room"
    } else {
        "soc"
    }
}

/// How many of `events` each channel should account for.
pub fn expected_per_channel(events: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(expected_channel(e).to_string()).or_default() += 1;
    }
    out
}

/// No two messages of `channel` arrived within one second (`received_us`: receive times at the
/// simulator, in order).
pub fn assert_one_per_second(channel: &str, received_us: &[u64]) {
    for w in received_us.windows(2) {
        assert!(
            w[1] - w[0] >= 1_000_000,
            "{channel}: two messages {} µs apart",
            w[1] - w[0]
        );
    }
}
