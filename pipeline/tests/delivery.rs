//! The delivery contract against the real broker and the vendor simulators: healthy delivery
//! to three sinks, a whole-sink outage, per-item failures through tiers and DLQ, withheld HEC
//! acks, and DLQ replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::sink::{run_sink, secret_file};
use devstack::sim::{
    ElasticSimConfig, HecSimConfig, SimConfig, SimKind, SimServer, WebhookSimConfig,
};
use devstack::sim::{Faults, ItemFault, StatusRule};
use pipeline::delivery::engine::{self};
use sha2::{Digest, Sha256};

const TOKEN: &str = "hec-token-0123";
const SECRET: &str = "whsec-current";

async fn sim(kind: SimKind) -> SimServer {
    SimServer::start(kind, SimConfig::default()).await.unwrap()
}

/// A HEC simulator, its token in a secret file, and a test stack whose topology has one HEC
/// sink stage `splunk` reading the ECS topic. `settings` are extra stage lines (YAML, each
/// indented four spaces and ending in a newline); `acks` the `indexer_acks` mapping's body.
async fn hec_env(settings: &str, acks: &str) -> (SimServer, tempfile::TempDir, common::Env) {
    let hec = sim(SimKind::Hec(HecSimConfig::new(TOKEN))).await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "token", TOKEN);
    let stages = format!(
        "  - type: sink\n    name: splunk\n    input: ecs\n{settings}    sink:\n      kind: splunk_hec\n      endpoint: {}\n      token: {{file: {token}}}\n      indexer_acks: {{{acks}}}\n",
        hec.url()
    );
    let env = common::env(&stages).await;
    (hec, dir, env)
}

/// HMAC-SHA256 written out from RFC 2104 on top of plain SHA-256, independent of the `hmac`
/// crate the sink uses.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn verifies(signature_header: &str, body: &[u8], secret: &str) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in signature_header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut msg = t.into_bytes();
    msg.push(b'.');
    msg.extend_from_slice(body);
    let want: String = hmac_sha256(secret.as_bytes(), &msg)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sigs.contains(&want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthy_delivery_to_hec_elastic_and_signed_webhook() {
    let hec = sim(SimKind::Hec(HecSimConfig::new(TOKEN))).await;
    let es = sim(SimKind::Elastic(ElasticSimConfig::default())).await;
    let hook = sim(SimKind::Webhook(WebhookSimConfig::new(SECRET))).await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "token", TOKEN);
    let whsec = secret_file(dir.path(), "whsec", SECRET);
    let stages = format!(
        "  - type: sink\n    name: splunk\n    input: ecs\n    sink:\n      kind: splunk_hec\n      endpoint: {}\n      token: {{file: {token}}}\n      gzip: true\n      indexer_acks: {{poll_interval_ms: 100}}\n\
         \x20 - type: sink\n    name: elastic\n    input: ecs\n    sink:\n      kind: elasticsearch\n      endpoint: {}\n\
         \x20 - type: sink\n    name: hook\n    input: ecs\n    sink:\n      kind: webhook\n      url: {}/hook\n      signing_secrets: [{{file: {whsec}}}]\n",
        hec.url(),
        es.url(),
        hook.url()
    );
    let env = common::env(&stages).await;
    let n = 20_000;
    let ids: BTreeSet<String> = common::produce_ecs(&env.topology, &common::generated_events(n))
        .await
        .into_iter()
        .collect();
    assert_eq!(ids.len(), n);
    let t = &env.topology;
    let (a, b, c) = tokio::join!(
        run_sink(t, "splunk", 5),
        run_sink(t, "elastic", 5),
        run_sink(t, "hook", 5)
    );
    for (name, r, s) in [
        ("splunk", &a, &hec),
        ("elastic", &b, &es),
        ("hook", &c, &hook),
    ] {
        assert_eq!(r.delivered + r.duplicates, n as u64, "{name}: {r:?}");
        assert!(
            r.dead_lettered.is_empty() && r.to_tiers.is_empty(),
            "{name}: {r:?}"
        );
        assert_eq!(
            s.received_event_ids(),
            ids,
            "{name}: every event id arrives"
        );
        let dupes = s.duplicate_event_ids();
        println!("{name}: {} duplicates reported", dupes.len());
        assert!(dupes.is_empty(), "{name}: duplicates {dupes:?}");
        assert_eq!(
            common::group_lag(t, &engine::group_id(name), "security-events.ecs.v1"),
            0
        );
        // The stage's last lag reading, taken after its final commit: nothing left, on every
        // partition it had.
        let metrics = pipeline::telemetry::global().render();
        let prefix =
            format!("secflow_consumer_lag{{stage=\"{name}\",topic=\"security-events.ecs.v1\"");
        let lag: Vec<f64> = metrics
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        assert!(!lag.is_empty(), "{name}: no lag series\n{metrics}");
        assert_eq!(lag.iter().sum::<f64>(), 0.0, "{name}\n{metrics}");
    }
    // Every webhook request verifies with an independent HMAC; a tampered body does not.
    let requests = hook.received_requests();
    assert!(!requests.is_empty());
    for r in &requests {
        let sig = r.header("X-Secflow-Signature").expect("signature header");
        assert!(verifies(sig, &r.body, SECRET), "signature must verify");
        let mut tampered = r.body.clone();
        tampered[0] ^= 0x01;
        assert!(!verifies(sig, &tampered, SECRET), "tampered body must fail");
    }
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_sink_outage_opens_the_circuit_and_loses_nothing() {
    let (hec, _secrets, env) = hec_env("    batch: {max_events: 100}\n    max_in_flight: 1\n    circuit: {failure_threshold: 3, open_ms: 1000}\n    retry: {max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 500}\n    tiers: [1s]\n", "poll_interval_ms: 100").await;
    let t = env.topology.clone();
    let n = 10_000;
    let ids: BTreeSet<String> = common::produce_ecs(&t, &common::generated_events(n))
        .await
        .into_iter()
        .collect();
    // Throttle the sink so the outage lands mid-run.
    hec.set_faults(Faults {
        latency_ms: 50,
        ..Faults::default()
    });
    let runner = tokio::spawn({
        let t = t.clone();
        async move { run_sink(&t, "splunk", 20).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = hec.received_event_ids().len();
    hec.set_faults(Faults {
        statuses: vec![StatusRule::for_duration(503, Duration::from_secs(30))],
        latency_ms: 50,
        ..Faults::default()
    });
    let report = runner.await.unwrap();
    println!("outage: {report:?}, {before} delivered before the outage");
    let got = hec.received_event_ids();
    let missing: Vec<_> = ids.difference(&got).collect();
    let dupes: Vec<_> = hec.duplicate_event_ids().into_keys().collect();
    println!(
        "sim stats: {:?}; missing {} ids: {:?}; duplicated: {:?}",
        hec.stats(),
        missing.len(),
        missing.iter().take(8).collect::<Vec<_>>(),
        dupes.iter().take(8).collect::<Vec<_>>()
    );
    assert!(before < n, "the outage must start mid-run");
    assert!(report.circuit_opened >= 1, "{report:?}");
    let via_tiers: u64 = report.to_tiers.values().sum();
    assert!(
        via_tiers * 100 < n as u64,
        "{via_tiers} records went through retry tiers"
    );
    assert!(report.dead_lettered.is_empty(), "{report:?}");
    assert_eq!(
        hec.received_event_ids(),
        ids,
        "all delivered after recovery"
    );
    assert_eq!(
        common::group_lag(&t, &engine::group_id("splunk"), "security-events.ecs.v1"),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_item_failures_go_through_tiers_and_dlq_and_replay_works() {
    let es = sim(SimKind::Elastic(ElasticSimConfig::default())).await;
    let stages = format!(
        "  - type: sink\n    name: elastic\n    input: ecs\n    retry: {{max_attempts: 2, initial_backoff_ms: 20, max_backoff_ms: 100}}\n    tiers: [1s, 2s]\n    sink:\n      kind: elasticsearch\n      endpoint: {}\n",
        es.url()
    );
    let env = common::env(&stages).await;
    let t = env.topology.clone();
    let n = 4_000;
    let ids: Vec<String> = common::produce_ecs(&t, &common::generated_events(n)).await;
    // 5% of items: 429 three times (more than the in-process attempts: they must take a tier);
    // 1% of items: 400 mapping error, always.
    let bad400 = ItemFault {
        status: 400,
        fraction: 0.01,
        event_ids: vec![],
        times: None,
        seed: 7,
    };
    let slow429 = ItemFault {
        status: 429,
        fraction: 0.05,
        event_ids: vec![],
        times: Some(3),
        seed: 11,
    };
    let rejected: BTreeSet<String> = ids.iter().filter(|i| bad400.selects(i)).cloned().collect();
    let throttled = ids
        .iter()
        .filter(|i| slow429.selects(i) && !bad400.selects(i))
        .count();
    assert!(!rejected.is_empty() && throttled > 0);
    es.set_faults(Faults {
        item_faults: vec![bad400.clone(), slow429],
        ..Faults::default()
    });
    let report = run_sink(&t, "elastic", 6).await;
    println!("items: {report:?}");
    let got = es.received_event_ids();
    let want: BTreeSet<String> = ids
        .iter()
        .filter(|i| !rejected.contains(*i))
        .cloned()
        .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    if !missing.is_empty() {
        for r in pipeline::dlq_tool::read_all(&t, "elastic.dlq")
            .await
            .unwrap()
        {
            if missing
                .iter()
                .any(|m| Some(m.as_str()) == r.header("secflow.event_id"))
            {
                println!("DLQ: {:?}", r.headers);
            }
        }
    }
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    assert!(es.duplicate_event_ids().is_empty());
    assert!(
        report
            .to_tiers
            .get("elastic.retry.1s")
            .copied()
            .unwrap_or(0)
            >= throttled as u64,
        "{report:?}"
    );
    assert_eq!(
        report.dead_lettered.get("permanent").copied(),
        Some(rejected.len() as u64)
    );

    // The DLQ holds exactly the 400s, with their headers.
    let dlq = pipeline::dlq_tool::read_all(&t, "elastic.dlq")
        .await
        .unwrap();
    assert_eq!(dlq.len(), rejected.len());
    for r in &dlq {
        assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
        assert_eq!(r.header("secflow.error.status"), Some("400"));
        assert_eq!(r.header("secflow.sink"), Some("elastic"));
        assert_eq!(
            r.header("secflow.origin.topic"),
            Some("security-events.ecs.v1")
        );
        assert!(rejected.contains(r.header("secflow.event_id").unwrap()));
        assert!(r.header("__connect.errors.exception.message").is_some());
    }

    // Replay after the fault is fixed: dry run changes nothing, the real one delivers, a second
    // one with the same filter sends nothing new, and an audit record is written.
    es.clear_faults();
    let secflow = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_secflow"))
            .args(args)
            .env("SECFLOW_LOG", "error")
            .output()
            .unwrap()
    };
    let f = env.topology_file.to_str().unwrap();
    let dry = secflow(&[
        "dlq",
        "replay",
        "--topology",
        f,
        "--sink",
        "elastic",
        "--reason",
        "permanent",
        "--dry-run",
    ]);
    let dry_out = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(dry.status.success(), "{dry_out}");
    assert!(
        dry_out.contains(&format!("{} match, nothing changed", rejected.len())),
        "{dry_out}"
    );
    assert_eq!(
        pipeline::dlq_tool::read_all(&t, "elastic.retry.1s")
            .await
            .unwrap()
            .len() as u64,
        report
            .to_tiers
            .get("elastic.retry.1s")
            .copied()
            .unwrap_or(0),
        "dry run wrote nothing"
    );
    let first = secflow(&[
        "dlq",
        "replay",
        "--topology",
        f,
        "--sink",
        "elastic",
        "--reason",
        "permanent",
        "--rate",
        "500/s",
    ]);
    let first_out = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(first.status.success(), "{first_out}");
    assert!(
        first_out.contains(&format!(
            "{} matched, {} re-queued",
            rejected.len(),
            rejected.len()
        )),
        "{first_out}"
    );
    let second = secflow(&[
        "dlq",
        "replay",
        "--topology",
        f,
        "--sink",
        "elastic",
        "--reason",
        "permanent",
    ]);
    let second_out = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(
        second_out.contains("0 matched, 0 re-queued"),
        "{second_out}"
    );
    let report2 = run_sink(&t, "elastic", 5).await;
    assert_eq!(report2.delivered, rejected.len() as u64, "{report2:?}");
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(es.received_event_ids(), all, "replayed records delivered");
    let audit = pipeline::dlq_tool::read_all(&t, "secflow.audit")
        .await
        .unwrap();
    assert_eq!(audit.len(), 2, "one audit record per real replay run");
    // Audit records are keyed by run id, so they may sit on different partitions: sort by time.
    let mut recs: Vec<serde_json::Value> = audit
        .iter()
        .map(|a| serde_json::from_slice(a.value.as_deref().unwrap()).unwrap())
        .collect();
    recs.sort_by_key(|r| r["started_ms"].as_i64().unwrap_or(0));
    for r in &recs {
        assert_eq!(r["sink"], "elastic");
        assert_eq!(r["filter"]["reason"], "permanent");
        assert!(r["user"].as_str().is_some_and(|u| !u.is_empty()));
    }
    assert_eq!(recs[0]["replayed"], rejected.len());
    assert_eq!(recs[1]["replayed"], 0);
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn withheld_hec_acks_are_resent_not_dropped() {
    let (hec, _secrets, env) = hec_env(
        "    batch: {max_events: 100}\n",
        "poll_interval_ms: 100, timeout_ms: 1500",
    )
    .await;
    let t = env.topology.clone();
    let ids: BTreeSet<String> = common::produce_ecs(&t, &common::generated_events(1_000))
        .await
        .into_iter()
        .collect();
    hec.set_faults(Faults {
        withhold_acks: 1,
        lose_withheld: true,
        ..Faults::default()
    });
    let report = run_sink(&t, "splunk", 5).await;
    println!("acks: {report:?}");
    assert_eq!(
        hec.received_event_ids(),
        ids,
        "the withheld batch was re-sent"
    );
    assert!(report.delivered >= ids.len() as u64);
    env.stack.stop().await;
}

/// Kills the sink process if the test fails first.
struct Child(Option<std::process::Child>);

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sink_killed_twice_under_load_loses_nothing() {
    let (hec, _secrets, env) =
        hec_env("    batch: {max_events: 100}\n", "poll_interval_ms: 50").await;
    hec.set_faults(Faults {
        latency_ms: 80,
        ..Faults::default()
    });
    let ids: BTreeSet<String> =
        common::produce_ecs(&env.topology, &common::generated_events(8_000))
            .await
            .into_iter()
            .collect();
    let start = |idle: Option<&str>, run: u64| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_secflow"));
        cmd.args(["run", "--topology"])
            .arg(&env.topology_file)
            .args(["--stage", "splunk"])
            .env("SECFLOW_LOG", "info,pipeline::delivery=debug")
            .stdout(std::process::Stdio::piped())
            .stderr(
                std::fs::File::create(
                    std::env::temp_dir().join(format!("secflow-kill-test-run-{run}.log")),
                )
                .map(std::process::Stdio::from)
                .unwrap_or_else(|_| std::process::Stdio::null()),
            );
        if let Some(i) = idle {
            cmd.args(["--until-idle", i]);
        }
        Child(Some(cmd.spawn().unwrap()))
    };
    for round in 0..2u64 {
        let mut c = start(None, round);
        // Kill mid-run by progress, not by a clock: the machine's speed varies.
        let target = 2_000 + 2_500 * round as usize;
        let waiting = std::time::Instant::now();
        while hec.received_event_ids().len() < target
            && waiting.elapsed() < Duration::from_secs(180)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let p = c.0.as_mut().unwrap();
        assert!(p.try_wait().unwrap().is_none(), "sink exited early");
        p.kill().unwrap(); // SIGKILL
        p.wait().unwrap();
        // Restart once the group has noticed the death (session timeout 6 s): tansu 0.6.0's
        // coordinator keeps a dead member's partitions when its replacement joins earlier.
        tokio::time::sleep(Duration::from_secs(7)).await;
        println!(
            "after kill {}: {} received",
            round + 1,
            hec.received_event_ids().len()
        );
    }
    let before_last = hec.received_event_ids().len();
    assert!(
        (4_500..ids.len()).contains(&before_last),
        "both kills must land mid-run ({before_last} received before the last run)"
    );
    // Longer than the session timeout, so the killed member's partitions come back first.
    let mut last = start(Some("25"), 2);
    let out = last.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let received = hec.received_event_ids();
    if received != ids {
        let index = common::index_by_event_id(&env.topology, "security-events.ecs.v1");
        let mut lost: Vec<(i32, i64)> = ids
            .difference(&received)
            .map(|id| index.get(id).copied().unwrap_or((-1, -1)))
            .collect();
        lost.sort_unstable();
        println!(
            "{} of {} in the topic; lost (partition, offset): {lost:?}",
            index.len(),
            ids.len()
        );
    }
    assert_eq!(received, ids, "0 lost");
    let dupes: u64 = hec.duplicate_event_ids().values().sum();
    println!("kill -9 twice: 0 lost, {dupes} duplicates (at-least-once)");
    assert_eq!(
        common::group_lag(
            &env.topology,
            &engine::group_id("splunk"),
            "security-events.ecs.v1"
        ),
        0
    );
    env.stack.stop().await;
}
