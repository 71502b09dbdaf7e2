//! `secflow produce` → real broker + registry → the tap stage decodes every event back equal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;

use pipeline::stage::{self, tap};
use pipeline::topology::StageConfig;
use processors::event::SecurityEvent;

const STAGES: &str = "  - type: tap\n    name: readback\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_round_trip_through_secflow_produce() {
    let env = common::env(STAGES).await;
    let n = 10_000;
    let events = common::generated_events(n);
    let input = env.stack.dir().join("events.jsonl");
    common::write_jsonl(&input, &events);

    let out = Command::new(env!("CARGO_BIN_EXE_secflow"))
        .args(["produce", "--topology"])
        .arg(&env.topology_file)
        .arg(&input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "produce failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{n} lines, {n} accepted, 0 rejected, 0 failed")),
        "{stdout}"
    );

    let expected: HashMap<String, SecurityEvent> = events
        .iter()
        .map(|v| {
            let e = SecurityEvent::from_json(&v.to_string()).unwrap();
            (e.event_id.clone(), e)
        })
        .collect();
    let Some(StageConfig::Tap(tap_stage)) = env.topology.stage("readback").cloned() else {
        panic!("tap stage")
    };
    let mut seen: HashMap<String, SecurityEvent> = HashMap::new();
    let mut duplicates = 0;
    let limits = stage::RunLimits {
        max_records: Some(n as u64),
        idle_exit: Some(std::time::Duration::from_secs(30)),
    };
    let report = tap::run(&env.topology, &tap_stage, limits, stage::never(), |e| {
        if seen.insert(e.event_id.clone(), e.clone()).is_some() {
            duplicates += 1;
        }
    })
    .await
    .unwrap();
    assert_eq!(report.decoded, n as u64, "{report:?}");
    assert!(report.dead_lettered.is_empty(), "{report:?}");
    assert_eq!(duplicates, 0);
    assert_eq!(seen.len(), n);
    for (id, want) in &expected {
        assert_eq!(
            seen.get(id),
            Some(want),
            "event {id} differs after the round trip"
        );
    }
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_lines_are_reported_with_line_numbers_and_written_to_rejects() {
    let env = common::env("").await;
    let good = common::generated_events(3);
    let mut bad_ip = good[1].clone();
    bad_ip["event_id"] = "bad-ip".into();
    bad_ip["network"] = serde_json::json!({"src_ip": "999.1.2.3"});
    let text = format!(
        "{}\n\nnot json at all\n{}\n{}\n{}\n",
        good[0],
        serde_json::to_string(&bad_ip).unwrap(),
        good[1],
        good[2]
    );
    let input = env.stack.dir().join("mixed.jsonl");
    std::fs::write(&input, text).unwrap();
    let rejects = env.stack.dir().join("rejects.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_secflow"))
        .args(["produce", "--topology"])
        .arg(&env.topology_file)
        .arg("--rejects")
        .arg(&rejects)
        .arg(&input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("5 lines, 3 accepted, 2 rejected, 0 failed"),
        "{stdout}"
    );
    assert!(stderr.contains("line 3: "), "{stderr}");
    assert!(
        stderr.contains("line 4: ") && stderr.contains("src_ip"),
        "{stderr}"
    );
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["line"], 3);
    assert_eq!(rows[1]["line"], 4);
    assert_eq!(rows[0]["text"], "not json at all");
    env.stack.stop().await;
}
