//! Telemetry of a running `secflow run`: the `/metrics` counters match what was produced and
//! delivered, `/healthz` and `/readyz` answer, and the W3C `traceparent` that `secflow produce`
//! put on each canonical record arrives at the sink with the same trace id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use devstack::sim::{SimConfig, SimKind, SimServer, WebhookSimConfig};
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
/// `secflow run --topology FILE ARGS…` with its metrics listener on `port`, quiet.
fn run_with_metrics(topology: &std::path::Path, port: u16, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_secflow"))
        .args(["run", "--topology"])
        .arg(topology)
        .args(args)
        .env("SECFLOW_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .env("SECFLOW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

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
    common::produce_generated(t, n).await;
    let canonical = t.topics.resolved(TopicRole::Canonical).name;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = run_with_metrics(&env.topology_file, port, &["--until-idle", "10"]);

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

/// One W3C `traceparent`'s trace id and parent span id.
fn trace_and_span(tp: &str) -> (String, String) {
    let parts: Vec<&str> = tp.split('-').collect();
    assert!(
        parts.len() == 4 && parts[0] == "00" && parts[3] == "01",
        "traceparent {tp}"
    );
    (parts[1].to_string(), parts[2].to_string())
}

/// Every `traceparent` on `topic`, by the record's event id (`secflow.event_id` header on
/// transform outputs, the index of production order on the canonical topic otherwise).
fn traceparents_on_topic(
    t: &pipeline::topology::Topology,
    topic: &str,
) -> Vec<(Option<String>, String)> {
    let mut c = pipeline::kafka::base_config(&t.kafka, "otlp-check").unwrap();
    c.set("group.id", format!("otlp-check-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let mut quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(5) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            quiet = Instant::now();
            let header = |name: &str| {
                m.headers()
                    .and_then(|h| h.iter().find(|x| x.key == name))
                    .and_then(|x| x.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            out.push((
                header("secflow.event_id"),
                header("traceparent").expect("a traceparent on every record"),
            ));
        }
    }
    out
}

/// With traces on, `secflow produce` starts one trace per event (its `secflow.produce` span is
/// named by the record's `traceparent`), the enrich stage's `secflow.enrich` span is that span's
/// child and is named by the enriched record's `traceparent`, the transform stage's
/// `secflow.transform` span is the enrich span's child and is named by the output record's
/// `traceparent`, and the sink's `secflow.sink.deliver` span is the transform span's child and
/// is named by the `traceparent` of the webhook request: one trace, four linked spans, per event
/// — as received by a real OTLP/HTTP endpoint (protobuf). The produce process reads the
/// standard `OTEL_*` environment; the run process reads the topology's `telemetry` section.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn otlp_spans_follow_each_event_from_produce_to_the_sink_request() {
    use devstack::sim::OtlpReceiver;
    use std::collections::BTreeMap;

    let otlp = OtlpReceiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
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
        "  - type: enrich\n    name: enrich\n    store: {{path: {}, block_cache_mb: 8, write_buffer_mb: 8}}\n\
         \x20 - type: transform\n    name: xform\n    input: enriched\n    outputs: [ecs]\n    exactly_once: output_log\n\
         \x20 - type: sink\n    name: hook\n    input: ecs\n    batch: {{max_events: 1}}\n    sink:\n      kind: webhook\n      url: {}/hook\n      signing_secrets: [{{file: {}}}]\n",
        dir.path().join("store").display(),
        hook.url(),
        whsec.display()
    );
    let env = common::env(&stages).await;
    let t = &env.topology;
    // The run reads its receiver from the file; produce from the environment.
    let run_file = dir.path().join("traced.yaml");
    let text = std::fs::read_to_string(&env.topology_file).unwrap();
    std::fs::write(
        &run_file,
        format!(
            "{text}\ntelemetry:\n  otlp_endpoint: {}\n  service_name: secflow-run\n",
            otlp.url()
        ),
    )
    .unwrap();

    let n = 40usize;
    let events = dir.path().join("events.jsonl");
    common::write_jsonl(&events, &common::generated_events(n));
    let started = Instant::now();
    let produce = Command::new(env!("CARGO_BIN_EXE_secflow"))
        .args(["produce", "--topology"])
        .arg(&env.topology_file)
        .arg(&events)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url())
        .env("OTEL_SERVICE_NAME", "secflow-produce")
        .env("SECFLOW_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        produce.status.success(),
        "{}",
        String::from_utf8_lossy(&produce.stderr)
    );
    let run = Command::new(env!("CARGO_BIN_EXE_secflow"))
        .args(["run", "--topology"])
        .arg(&run_file)
        .args(["--until-idle", "8", "--metrics-addr", "off"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("OTEL_BSP_SCHEDULE_DELAY", "500")
        .env("SECFLOW_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let took = started.elapsed();

    let spans = otlp.spans();
    let stats = otlp.stats();
    eprintln!(
        "OTLP receiver: {} spans in {} protobuf / {} JSON requests ({} refused); produce + run took {took:?}",
        stats.spans, stats.protobuf_requests, stats.json_requests, stats.rejected
    );
    assert_eq!(stats.rejected, 0);
    assert!(stats.protobuf_requests > 0, "the exporter sends protobuf");
    let by_id: BTreeMap<(String, String), _> = spans
        .iter()
        .map(|s| ((s.trace_id.clone(), s.span_id.clone()), s))
        .collect();
    assert_eq!(by_id.len(), spans.len(), "span ids are unique");
    for name in [
        "secflow.produce",
        "secflow.enrich",
        "secflow.transform",
        "secflow.sink.deliver",
    ] {
        assert_eq!(
            spans.iter().filter(|s| s.name == name).count(),
            n,
            "{name}: one span per event"
        );
    }

    // Canonical records: their traceparent names the produce span, a root.
    let canonical = t.topics.resolved(TopicRole::Canonical).name;
    let enriched = t.topics.resolved(TopicRole::Enriched).name;
    let ecs = t.topics.resolved(TopicRole::Ecs).name;
    let (t1, t2, t3) = (t.clone(), t.clone(), t.clone());
    let on_canonical = tokio::task::spawn_blocking(move || traceparents_on_topic(&t1, &canonical))
        .await
        .unwrap();
    let on_enriched = tokio::task::spawn_blocking(move || traceparents_on_topic(&t3, &enriched))
        .await
        .unwrap();
    let on_ecs = tokio::task::spawn_blocking(move || traceparents_on_topic(&t2, &ecs))
        .await
        .unwrap();
    assert_eq!(on_canonical.len(), n);
    assert_eq!(on_ecs.len(), n);
    let mut produce_span_of_trace = BTreeMap::new();
    for (_, tp) in &on_canonical {
        let (trace, span) = trace_and_span(tp);
        let s = by_id
            .get(&(trace.clone(), span.clone()))
            .unwrap_or_else(|| panic!("no span for canonical traceparent {tp}"));
        assert_eq!(s.name, "secflow.produce");
        assert_eq!(s.parent_span_id, None, "produce starts the trace");
        assert_eq!(s.kind, 4, "producer");
        assert_eq!(s.service_name.as_deref(), Some("secflow-produce"));
        assert!(s.attr("secflow.event_id").is_some());
        produce_span_of_trace.insert(trace, span);
    }
    assert_eq!(produce_span_of_trace.len(), n, "one trace per event");
    // Enriched records: their traceparent names the enrich span, the produce span's child.
    assert_eq!(on_enriched.len(), n);
    let mut enrich_span_of_trace = BTreeMap::new();
    for (_, tp) in &on_enriched {
        let (trace, span) = trace_and_span(tp);
        let s = by_id
            .get(&(trace.clone(), span.clone()))
            .unwrap_or_else(|| panic!("no span for enriched traceparent {tp}"));
        assert_eq!(s.name, "secflow.enrich");
        assert_eq!(s.parent_span_id.as_ref(), produce_span_of_trace.get(&trace));
        assert_eq!(s.kind, 5, "consumer");
        assert_eq!(s.attr("secflow.stage"), Some("enrich"));
        assert_eq!(s.attr("secflow.enrichments.added"), Some("0"));
        enrich_span_of_trace.insert(trace, span);
    }
    // Transform outputs: their traceparent names the transform span, the enrich span's child.
    let mut transform_span_of_event = BTreeMap::new();
    for (event_id, tp) in &on_ecs {
        let (trace, span) = trace_and_span(tp);
        let s = by_id
            .get(&(trace.clone(), span.clone()))
            .unwrap_or_else(|| panic!("no span for ECS traceparent {tp}"));
        assert_eq!(s.name, "secflow.transform");
        assert_eq!(s.parent_span_id.as_ref(), enrich_span_of_trace.get(&trace));
        assert_eq!(s.kind, 5, "consumer");
        assert_eq!(s.service_name.as_deref(), Some("secflow-run"));
        assert_eq!(s.attr("secflow.stage"), Some("xform"));
        assert_eq!(s.attr("messaging.system"), Some("kafka"));
        transform_span_of_event.insert(event_id.clone().expect("secflow.event_id"), (trace, span));
    }
    // Webhook requests: their traceparent names the sink span, the transform span's child.
    let delivered: Vec<_> = hook
        .received_requests()
        .into_iter()
        .filter(|r| r.status < 300)
        .collect();
    assert_eq!(delivered.len(), n);
    let mut traces_at_sink = BTreeSet::new();
    for r in &delivered {
        let tp = r.header("traceparent").expect("traceparent at the sink");
        let (trace, span) = trace_and_span(tp);
        let s = by_id
            .get(&(trace.clone(), span.clone()))
            .unwrap_or_else(|| panic!("no span for the webhook request's traceparent {tp}"));
        assert_eq!(s.name, "secflow.sink.deliver");
        assert_eq!(s.kind, 3, "client");
        assert_eq!(s.attr("secflow.stage"), Some("hook"));
        let parent = by_id
            .get(&(trace.clone(), s.parent_span_id.clone().expect("a parent")))
            .expect("the parent span was exported");
        assert_eq!(parent.name, "secflow.transform");
        // Up the chain to the root: transform → enrich → produce.
        let mut names = vec![s.name.clone(), parent.name.clone()];
        let mut at = *parent;
        while let Some(p) = &at.parent_span_id {
            at = by_id
                .get(&(trace.clone(), p.clone()))
                .expect("every ancestor span was exported");
            names.push(at.name.clone());
        }
        assert_eq!(
            names,
            [
                "secflow.sink.deliver",
                "secflow.transform",
                "secflow.enrich",
                "secflow.produce"
            ],
            "the path of one event"
        );
        assert!(s.start_unix_nano >= at.start_unix_nano);
        traces_at_sink.insert(trace);
    }
    let produced: BTreeSet<String> = produce_span_of_trace.keys().cloned().collect();
    assert_eq!(
        traces_at_sink, produced,
        "every trace reaches the sink once"
    );
    let transformed: BTreeSet<String> = transform_span_of_event
        .values()
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(transformed, produced);

    env.stack.stop().await;
    hook.shutdown().await;
    otlp.shutdown().await;
}

/// A transform stage whose input is quiet still reports ready once it has its partitions: the
/// stage comes round every second while it waits for records (it used to wait for a record
/// before looking at its assignment, so an idle stage never became ready).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stage_becomes_ready() {
    let stages = "  - type: transform\n    name: xform\n    input: canonical\n    outputs: [ecs]\n    exactly_once: output_log\n";
    let env = common::env(stages).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = run_with_metrics(&env.topology_file, port, &[]);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (0u16, String::new());
    while Instant::now() < deadline {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            last = (r.status().as_u16(), r.text().await.unwrap_or_default());
            if last.0 == 200 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(last.0, 200, "never ready with no input: {}", last.1);
    env.stack.stop().await;
}
