//! 20,000 events through the transform stage into the ECS, CEF and OCSF topics; the stage
//! process is killed (SIGKILL, not a graceful stop) twice mid-run and restarted. A
//! read_committed consumer must see every event exactly once per topic.
//!
//! Both exactly-once modes are killed this way: `transactions` (the default: each batch and its
//! input offsets in one Kafka transaction; tansu runs transactions with the patches in
//! `devstack/tansu/`) and `output_log` (idempotent writes + resume points from the output tails,
//! for brokers without transactions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipeline::kafka;
use pipeline::produce::{self, KeyField, ProduceOptions};
use pipeline::topology::TopicRole;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};

const STAGES: &str = "  - type: transform\n    name: xform\n    input: canonical\n    instance_id: test-1\n    max_batch: 250\n";
const STAGES_OUTPUT_LOG: &str = "  - type: transform\n    name: xform\n    input: canonical\n    max_batch: 250\n    exactly_once: output_log\n";

static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Kills the stage process if the test fails before it does.
struct Stage(Option<Child>);

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_stage(file: &std::path::Path, until_idle: Option<u64>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secflow"));
    cmd.args(["run", "--topology"])
        .arg(file)
        .args(["--stage", "xform"]);
    if let Some(s) = until_idle {
        cmd.args(["--until-idle", &s.to_string()]);
    }
    // Each run's log goes to a file next to the test's topology, for diagnosis.
    let log = file.with_extension(format!(
        "stage-{}.log",
        std::process::id() as u64 * 1000 + RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    cmd.env("SECFLOW_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(&log)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .unwrap()
}

/// Committed records per topic, keyed by event id (header `secflow.event_id`).
async fn read_committed(
    t: &pipeline::topology::Topology,
    topics: &[String],
    expect_each: usize,
) -> HashMap<String, HashMap<String, u32>> {
    let consumer: StreamConsumer =
        kafka::consumer(&t.kafka, "verify", &format!("verify-{}", uuid())).unwrap();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs).unwrap();
    let mut seen: HashMap<String, HashMap<String, u32>> = HashMap::new();
    let mut total = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while total < expect_each * topics.len() && Instant::now() < deadline {
        let Ok(m) = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await else {
            break;
        };
        let m = m.unwrap();
        let id = m
            .headers()
            .and_then(|h| {
                h.iter()
                    .find(|x| x.key == "secflow.event_id")
                    .and_then(|x| x.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
            .expect("event id header");
        *seen
            .entry(m.topic().to_string())
            .or_default()
            .entry(id)
            .or_default() += 1;
        total += 1;
    }
    // Anything beyond the expected count would be a duplicate: give it a moment to show up.
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        let id = m
            .headers()
            .and_then(|h| {
                h.iter()
                    .find(|x| x.key == "secflow.event_id")
                    .and_then(|x| x.value)
            })
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        *seen
            .entry(m.topic().to_string())
            .or_default()
            .entry(id)
            .or_default() += 1;
    }
    seen
}

/// Per partition of each topic: watermarks, records read with `isolation`, and the highest
/// input offset named by `secflow.origin` (diagnostics printed when the check fails); and the
/// records read in all.
fn partition_report(
    t: &pipeline::topology::Topology,
    topics: &[String],
    isolation: &str,
) -> (String, u64) {
    use rdkafka::consumer::BaseConsumer;
    let mut out = String::new();
    let mut total = 0;
    for topic in topics {
        let mut c = kafka::base_config(&t.kafka, "diag").unwrap();
        c.set("group.id", format!("diag-{}", uuid()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", isolation);
        let consumer: BaseConsumer = c.create().unwrap();
        for p in 0..3 {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .unwrap_or((-1, -1));
            let mut tpl = rdkafka::TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
                .unwrap();
            consumer.assign(&tpl).unwrap();
            let (mut n, mut max_origin, mut last_offset) = (0u64, -1i64, -1i64);
            let mut quiet = Instant::now();
            // Read to the end: nothing more for 1 s (the local broker answers a fetch as soon as
            // it has records; its reported watermarks can lag the log, so they are no end mark).
            while quiet.elapsed() < Duration::from_secs(1) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    quiet = Instant::now();
                    n += 1;
                    last_offset = m.offset();
                    if let Some(o) = m
                        .headers()
                        .and_then(|h| h.iter().find(|x| x.key == "secflow.origin"))
                        .and_then(|x| x.value)
                        .and_then(|v| {
                            String::from_utf8_lossy(v)
                                .rsplit('/')
                                .next()
                                .map(str::to_string)
                        })
                        .and_then(|v| v.parse::<i64>().ok())
                    {
                        max_origin = max_origin.max(o);
                    }
                }
            }
            out.push_str(&format!(
                "{topic}/{p} [{isolation}]: watermarks {low}..{high}, read {n}, last offset {last_offset}, max origin {max_origin}\n"
            ));
            total += n;
        }
    }
    (out, total)
}

fn uuid() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The default mode: each batch in one Kafka transaction with its input offsets. The kills
/// land inside transactions, so the output topics hold aborted records that a
/// `read_committed` reader must not see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_per_topic_across_two_kills() {
    let aborted = killed_twice_then_exact(STAGES, 20_000).await;
    println!("records of aborted transactions, hidden from read_committed: {aborted}");
}

/// The `output_log` mode, for brokers without transactions (fewer events: the main test above
/// has the 20,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_log_exactly_once_per_topic_across_two_kills() {
    let aborted = killed_twice_then_exact(STAGES_OUTPUT_LOG, 8_000).await;
    assert_eq!(aborted, 0, "output_log writes no transactions");
}

/// Produces `n` events, kills the stage twice mid-run, lets a third run finish, and checks
/// that a read_committed reader sees each event exactly once per output topic. Returns how many
/// more records a read_uncommitted reader sees in the ECS topic (aborted transactions).
async fn killed_twice_then_exact(stages: &str, n: usize) -> usize {
    let env = common::env(stages).await;
    let t = &env.topology;
    let group = pipeline::stage::group_id("xform");
    let events = common::generated_events(n);
    let mut text = String::new();
    for e in &events {
        text.push_str(&e.to_string());
        text.push('\n');
    }
    let opts = ProduceOptions {
        topic: t.topics.resolved(TopicRole::Canonical).name,
        key: KeyField::Tenant,
        max_in_flight: 10_000,
    };
    let report = produce::produce(t, text.as_bytes(), &opts, |r| panic!("rejected: {r:?}"))
        .await
        .unwrap();
    assert_eq!(report.accepted, n as u64);

    // Kill the stage twice while it works, then let a third run finish.
    for kill in 0..2 {
        let mut stage = Stage(Some(start_stage(&env.topology_file, None)));
        let canonical = t.topics.resolved(TopicRole::Canonical).name;
        let at = (n as i64) * (3 + 6 * kill) / 20;
        let done = common::wait_for_progress(t, &group, &canonical, at).await;
        println!("kill {}: {done} input records committed", kill + 1);
        assert!(
            done < n as i64,
            "the kill must land mid-run ({done} of {n} done)"
        );
        let child = stage.0.as_mut().unwrap();
        assert!(child.try_wait().unwrap().is_none(), "stage exited early");
        child.kill().unwrap(); // SIGKILL: no drain, no commit
        child.wait().unwrap();
        // Restart once the group has noticed the death (session timeout 6 s): tansu 0.6.0's
        // coordinator keeps a dead member's partitions when its replacement joins earlier.
        tokio::time::sleep(Duration::from_secs(7)).await;
    }
    let last = start_stage(&env.topology_file, Some(8));
    let out = tokio::task::spawn_blocking(move || last.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let topics: Vec<String> = [TopicRole::Ecs, TopicRole::Cef, TopicRole::Ocsf]
        .iter()
        .map(|r| t.topics.resolved(*r).name)
        .collect();
    let seen = read_committed(t, &topics, n).await;
    let mut all = topics.clone();
    all.insert(0, t.topics.resolved(TopicRole::Canonical).name);
    let (diag, uncommitted_ecs) = {
        let t = t.clone();
        tokio::task::spawn_blocking(move || {
            let (committed, _) = partition_report(&t, &all, "read_committed");
            let (uncommitted, read) = partition_report(&t, &all[1..2], "read_uncommitted");
            (format!("{committed}{uncommitted}"), read)
        })
        .await
        .unwrap()
    };
    println!("{diag}");
    let expected: Vec<String> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    for topic in &topics {
        let per = seen.get(topic).cloned().unwrap_or_default();
        let missing = expected.iter().filter(|id| !per.contains_key(*id)).count();
        let dupes: u32 = per.values().map(|c| c.saturating_sub(1)).sum();
        assert_eq!(
            (missing, dupes),
            (0, 0),
            "{topic}: {missing} missing, {dupes} duplicated\n{diag}"
        );
        assert_eq!(per.len(), n, "{topic}");
    }
    env.stack.stop().await;
    (uncommitted_ecs as usize).saturating_sub(n)
}

/// SIGTERM during load: the stage stops consuming, finishes its batch and exits 0 within 10 s;
/// a restart then completes the run with every event exactly once per topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_promptly_and_restart_is_exact() {
    let env = common::env(STAGES).await;
    let t = &env.topology;
    let group = pipeline::stage::group_id("xform");
    let n = 8_000;
    let events = common::generated_events(n);
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    let opts = ProduceOptions {
        topic: t.topics.resolved(TopicRole::Canonical).name,
        key: KeyField::Tenant,
        max_in_flight: 10_000,
    };
    produce::produce(t, text.as_bytes(), &opts, |r| panic!("rejected: {r:?}"))
        .await
        .unwrap();
    let mut stage = Stage(Some(start_stage(&env.topology_file, None)));
    let canonical = t.topics.resolved(TopicRole::Canonical).name;
    let done = common::wait_for_progress(t, &group, &canonical, 2_000).await;
    println!("SIGTERM after {done} input records committed");
    let mut child = stage.0.take().unwrap();
    assert!(child.try_wait().unwrap().is_none(), "stage exited early");
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    let exited = tokio::task::spawn_blocking(move || {
        while signalled.elapsed() < Duration::from_secs(10) {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        None
    })
    .await
    .unwrap();
    let status = exited.expect("the stage must exit within 10 s of SIGTERM");
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    println!("SIGTERM → exit in {:?}", signalled.elapsed());

    let last = start_stage(&env.topology_file, Some(8));
    let out = tokio::task::spawn_blocking(move || last.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    let topics: Vec<String> = [TopicRole::Ecs, TopicRole::Cef, TopicRole::Ocsf]
        .iter()
        .map(|r| t.topics.resolved(*r).name)
        .collect();
    let seen = read_committed(t, &topics, n).await;
    for topic in &topics {
        let per = seen.get(topic).cloned().unwrap_or_default();
        let dupes: u32 = per.values().map(|c| c.saturating_sub(1)).sum();
        assert_eq!(
            (per.len(), dupes),
            (n, 0),
            "{topic}: distinct events, duplicates"
        );
    }
    env.stack.stop().await;
}
