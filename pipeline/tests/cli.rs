//! The `secflow` binary: validate, topics create/check, and the missing-topic check at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

fn secflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secflow"))
        .args(args)
        .env("SECFLOW_LOG", "error")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn validate_accepts_the_shipped_topologies() {
    let dir = common::workspace().join("topologies");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let o = secflow(&["validate", path.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", path.display(), text(&o));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn validate_reports_every_problem_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: bad\nkafka:\n  bootstrap_servers: localhost\nschema_registry:\n  url: ftp://x\ntopics:\n  canonical: {partitions: 0}\nstages:\n  - type: tap\n    name: a\n  - type: tap\n    name: a\n    input: ecs\n",
    )
    .unwrap();
    let o = secflow(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    let f = file.display().to_string();
    for expected in [
        format!("{f}:3:3: kafka.bootstrap_servers: `localhost` is not host:port"),
        format!("{f}:5:3: schema_registry.url: `ftp://x` is not an http(s) URL"),
        format!("{f}:7:15: topics.canonical.partitions: must be at least 1"),
        format!("{f}:12:5: stages[1].name: stage name `a` is used twice"),
        format!("{f}:13:5: stages[1].input: a tap reads canonical Avro"),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }

    std::fs::write(&file, "name: bad\nkafka:\n  bootstrap_servers: localhost:9092\n  linger: 5\nschema_registry:\n  url: http://x:1\n").unwrap();
    let o = secflow(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(&format!("{f}:4:3: kafka: unknown field `linger`")),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_create_is_idempotent_and_stages_refuse_missing_topics() {
    let stack = devstack::testkit::TestStack::start().await.unwrap();
    let file = stack.dir().join("t.yaml");
    std::fs::write(
        &file,
        stack.topology_yaml("  - type: tap\n    name: probe\n"),
    )
    .unwrap();
    let f = file.to_str().unwrap();

    let o = secflow(&["topics", "check", "--topology", f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("missing security-events.canonical.v1"),
        "{}",
        text(&o)
    );

    // A stage whose topics are missing fails at once and names them.
    let o = secflow(&[
        "run",
        "--topology",
        f,
        "--stage",
        "probe",
        "--until-idle",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let out = text(&o);
    assert!(
        out.contains("missing topics: security-events.canonical.v1, probe.dlq"),
        "{out}"
    );

    let o = secflow(&["topics", "create", "--topology", f]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("created intel.indicators.v1"));
    assert!(text(&o).contains("created probe.dlq"));
    let o = secflow(&["topics", "create", "--topology", f]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("exists  intel.indicators.v1"),
        "{}",
        text(&o)
    );
    let o = secflow(&["topics", "check", "--topology", f]);
    assert!(o.status.success(), "{}", text(&o));
    stack.stop().await;
}

#[test]
fn intel_pattern_prints_one_report_per_pattern() {
    let o = secflow(&[
        "intel",
        "pattern",
        "[ipv4-addr:value = '198.51.100.7' OR domain-name:value = 'Evil.Example.com']",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["not_joinable"], serde_json::Value::Null);
    assert_eq!(
        v["iocs"],
        serde_json::json!([{"type": "ipv4", "value": "198.51.100.7"}, {"type": "domain", "value": "evil.example.com"}])
    );

    let o = secflow(&["intel", "pattern", "[file:name = 'a' AND file:size > 10]"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["iocs"], serde_json::Value::Null);
    assert!(v["not_joinable"].as_str().unwrap().len() > 3, "{v}");

    let o = secflow(&["intel", "pattern", "file:name = 'a'"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("column"), "{v}");
}
