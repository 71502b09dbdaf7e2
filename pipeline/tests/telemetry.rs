//! Telemetry of a running `secflow run`: the `/metrics` counters match what was produced and
//! delivered, `/healthz` and `/readyz` answer, and the W3C `traceparent` that `secflow produce`
//! put on each canonical record arrives at the sink with the same trace id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use devstack::sim::{SimConfig, SimKind, SimServer, WebhookSimConfig};
use pipeline::produce::{self, KeyField, ProduceOptions};
use pipeline::topology::TopicRole;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

const SECRET: &str = "whsec-telemetry-test";

/// The value of one series in a Prometheus text exposition (`name{labels} value`).
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

/// Trace ids (the 32 hex digits of a `traceparent`) on every record of `topic`.
fn trace_ids_on_topic(t: &pipeline::topology::Topology, topic: &str) -> BTreeSet<String> {
    let mut c = pipeline::kafka::base_config(&t.kafka, "trace-check").unwrap();
    c.set("group.id", "trace-check")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut ids = BTreeSet::new();
    let mut quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(5) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            quiet = Instant::now();
            let tp = m
                .headers()
                .and_then(|h| h.iter().find(|x| x.key == "traceparent"))
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .expect("every produced record has a traceparent");
            ids.insert(trace_id(&tp).expect("W3C traceparent").to_string());
        }
    }
    ids
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
fn trace_id(tp: &str) -> Option<&str> {
    let mut parts = tp.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (version.len() == 2 && trace.len() == 32 && span.len() == 16 && flags.len() == 2)
        .then_some(trace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_what_flowed_and_traceparent_reaches_the_sink() {
    let hook = SimServer::start(
        SimKind::Webhook(WebhookSimConfig::new(SECRET)),
        SimConfig::default(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let whsec = dir.path().join("whsec");
    std::fs::write(&whsec, SECRET).unwrap();
    let stages = format!(
        "  - type: transform\n    name: xform\n    input: canonical\n    outputs: [ecs]\n    exactly_once: output_log\n\
         \x20 - type: sink\n    name: hook\n    input: ecs\n    batch: {{max_events: 1}}\n    sink:\n      kind: webhook\n      url: {}/hook\n      signing_secrets: [{{file: {}}}]\n",
        hook.url(),
        whsec.display()
    );
    let env = common::env(&stages).await;
    let t = &env.topology;
    let n = 300usize;
    let text: String = common::generated_events(n)
        .iter()
        .map(|e| format!("{e}\n"))
        .collect();
    let canonical = t.topics.resolved(TopicRole::Canonical).name;
    let opts = ProduceOptions {
        topic: canonical.clone(),
        key: KeyField::Tenant,
        max_in_flight: 1000,
    };
    let report = produce::produce(t, text.as_bytes(), &opts, |r| panic!("rejected: {r:?}"))
        .await
        .unwrap();
    assert_eq!(report.accepted, n as u64);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_secflow"))
        .args(["run", "--topology"])
        .arg(&env.topology_file)
        .args(["--until-idle", "10"])
        .env("SECFLOW_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .env("SECFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Scrape while it runs, until the sink has delivered everything.
    let http = reqwest::Client::new();
    let sink_out = "secflow_records_out_total{stage=\"hook\",topic=\"hook\"}";
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/metrics")).send().await {
            metrics = r.text().await.unwrap_or_default();
            if series(&metrics, sink_out) == Some(n as f64) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    let ready_status = ready.status();
    let ready_body = ready.text().await.unwrap();
    assert_eq!(ready_status, 200, "{ready_body}");

    let ecs = t.topics.resolved(TopicRole::Ecs).name;
    for (series_name, want) in [
        (
            format!("secflow_records_in_total{{stage=\"xform\",topic=\"{canonical}\"}}"),
            n,
        ),
        (
            format!("secflow_records_out_total{{stage=\"xform\",topic=\"{ecs}\"}}"),
            n,
        ),
        (
            format!("secflow_records_in_total{{stage=\"hook\",topic=\"{ecs}\"}}"),
            n,
        ),
        (sink_out.to_string(), n),
        (
            "secflow_delivery_latency_seconds_count{sink=\"hook\"}".to_string(),
            n,
        ),
        (
            "secflow_sink_requests_total{sink=\"hook\",status=\"2xx\"}".to_string(),
            n,
        ),
        ("secflow_sink_circuit_state{sink=\"hook\"}".to_string(), 0),
    ] {
        assert_eq!(
            series(&metrics, &series_name),
            Some(want as f64),
            "{series_name}\n{metrics}"
        );
    }
    assert!(metrics.contains("# TYPE secflow_delivery_latency_seconds histogram"));
    assert!(metrics.contains("secflow_build_info{version=\""));

    let out = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(out.success());

    // The trace ids the sink saw are exactly those `secflow produce` started.
    let produced = {
        let t = t.clone();
        tokio::task::spawn_blocking(move || trace_ids_on_topic(&t, &canonical))
            .await
            .unwrap()
    };
    assert_eq!(produced.len(), n, "one trace per produced event");
    let at_sink: BTreeSet<String> = hook
        .received_requests()
        .iter()
        .filter(|r| r.status < 300)
        .map(|r| {
            let tp = r.header("traceparent").expect("traceparent at the sink");
            trace_id(tp).expect("W3C traceparent").to_string()
        })
        .collect();
    assert_eq!(at_sink, produced);
    env.stack.stop().await;
    hook.shutdown().await;
}
