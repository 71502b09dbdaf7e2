//! The load test at a tiny scale, for real: `loadtest run` starts tansu, the registry, the
//! webhook simulator and the three `secflow run` stages, sends a few hundred generated events
//! through them, and writes a report whose counts add up. No timing is asserted.
//!
//! Needs the `secflow` and `devstack` binaries next to `loadtest` (a workspace build, as
//! `cargo test --workspace` does); when they are missing it builds them with cargo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf();
    if !dir.join("secflow").is_file() || !dir.join("devstack").is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build", "-p", "pipeline", "--bin", "secflow", "-p", "devstack", "--bin", "devstack",
        ]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build");
        assert!(status.success(), "building secflow and devstack");
    }
    dir
}

fn run(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .arg("run")
        .args(args)
        .arg("--bin-dir")
        .arg(bin_dir())
        .env("SECFLOW_LOG", "warn")
        .output()
        .expect("loadtest runs");
    assert!(
        out.status.success(),
        "loadtest {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn u(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} in {v:#}"))
}

#[test]
fn a_few_hundred_events_through_copy_and_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let report_s = report.to_str().unwrap();
    let work = dir.path().to_str().unwrap();
    let common = [
        "--indicators",
        "60",
        "--ioc-fraction",
        "0.1",
        "--report",
        report_s,
        "--work-dir",
        work,
        "--drain-timeout",
        "120",
        "--sample-ms",
        "200",
    ];

    // A backlog through the raw copy, then through the pipeline.
    let mut args = vec!["--scenario", "throughput", "--events", "400"];
    args.extend(common);
    run(&args);
    // Events at a rate through the running pipeline.
    let mut args = vec![
        "--scenario",
        "pipeline",
        "--rate",
        "100",
        "--duration",
        "2",
        "--warmup",
        "1",
    ];
    args.extend(common);
    run(&args);

    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let t = &r["scenarios"]["throughput"];
    assert_eq!(u(t, "/generation/acked"), 400, "{t:#}");
    assert_eq!(u(t, "/generation/failed"), 0);
    assert_eq!(u(t, "/baseline/acked"), 400, "the copy copied every record");
    assert_eq!(u(t, "/baseline/consumed"), 400);
    assert_eq!(u(t, "/delivery/expected"), 400);
    assert_eq!(u(t, "/delivery/received"), 400, "{t:#}");
    assert_eq!(u(t, "/delivery/missing"), 0);
    assert_eq!(u(t, "/delivery/foreign"), 0);
    let by_category: u64 = t["generation"]["by_category"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_category, 400);
    // Every planted indicator value was found by the enrich stage, and nothing else.
    assert_eq!(
        u(t, "/enrich/matched_events"),
        u(t, "/generation/planted"),
        "{t:#}"
    );
    assert!(t["ratio_to_baseline"].as_f64().is_some());
    for p in ["enrich", "transform", "sink", "simulator", "copy", "broker"] {
        assert!(
            t["processes"][p]["pid"].as_u64().is_some(),
            "process {p} in {:#}",
            t["processes"]
        );
    }

    let p = &r["scenarios"]["pipeline"];
    let acked = u(p, "/generation/acked");
    assert!(
        acked >= 300,
        "warm-up and 2 s at 100/s plus the primer: {acked}"
    );
    assert_eq!(u(p, "/delivery/received"), acked, "{p:#}");
    assert_eq!(u(p, "/delivery/missing"), 0);
    assert!(u(p, "/latency/count") >= 150, "{p:#}");
    assert_eq!(
        u(p, "/enrich/matched_events"),
        u(p, "/generation/planted"),
        "{p:#}"
    );
    assert_eq!(p["goals"].as_array().map(Vec::len), Some(1));

    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("## throughput") && md.contains("## pipeline"),
        "{md}"
    );
}
