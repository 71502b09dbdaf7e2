//! Kafka over TLS, as managed clusters (MSK, Confluent Cloud) require: the broker behind a TLS
//! front with a private CA (`devstack::broker::TlsBroker`), a topology with
//! `security: {protocol: ssl, ca_location: …}`. Topics are created, events produced, a transform
//! stage reads and writes them and every event is read back — every connection through TLS (the
//! broker advertises only the TLS address). A client that does not trust the CA is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use devstack::broker::TlsBroker;
use devstack::testkit::TestStack;
use pipeline::stage::{self, transform, RunLimits};
use pipeline::topology::{self, StageConfig, TopicRole, Topology};
use rdkafka::consumer::{BaseConsumer, Consumer};

/// A topology on `bootstrap` over TLS; `ca` is the CA file line (empty: the system store).
fn topology_yaml(bootstrap: &str, ca: &str, registry: &str) -> String {
    format!(
        "name: tls\nkafka:\n  bootstrap_servers: {bootstrap}\n  session_timeout_ms: 6000\n  security:\n    protocol: ssl\n{ca}schema_registry:\n  url: {registry}\nstages:\n  - type: transform\n    name: to-ecs\n    input: canonical\n    outputs: [ecs]\n    exactly_once: output_log\n"
    )
}

fn load(dir: &std::path::Path, name: &str, yaml: &str) -> Topology {
    let file = dir.join(name);
    std::fs::write(&file, yaml).unwrap();
    topology::load(&file).unwrap().topology
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topics_produce_transform_and_consume_over_tls() {
    // The plain stack for its schema registry; Kafka is the TLS broker.
    let stack = TestStack::start().await.expect("test stack");
    let dir = stack.dir();
    let tls = TlsBroker::start(&dir.join("tansu-tls.log")).await.unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, tls.ca_pem()).unwrap();
    let t = load(
        &dir,
        "tls.yaml",
        &topology_yaml(
            &tls.bootstrap(),
            &format!("    ca_location: {}\n", ca.display()),
            &stack.registry_url(),
        ),
    );

    pipeline::kafka::create_topics(&t.kafka, &t.all_topics())
        .await
        .unwrap();
    let n = 200;
    common::produce_generated(&t, n).await;

    let Some(StageConfig::Transform(s)) = t.stage("to-ecs").cloned() else {
        panic!("transform stage")
    };
    let limits = RunLimits {
        max_records: Some(n as u64),
        idle_exit: Some(Duration::from_secs(20)),
    };
    let r = transform::run(&t, &s, limits, stage::never())
        .await
        .unwrap();
    assert_eq!(r.records, n as u64, "{r:?}");

    let ecs = t.topics.resolved(TopicRole::Ecs).name;
    let read = {
        let t = t.clone();
        tokio::task::spawn_blocking(move || common::index_by_event_id(&t, &ecs))
            .await
            .unwrap()
    };
    assert_eq!(read.len(), n, "every event read back over TLS");

    // Without the CA (the system store), the broker's certificate is not trusted: refused.
    let untrusting = load(
        &dir,
        "untrusting.yaml",
        &topology_yaml(&tls.bootstrap(), "", &stack.registry_url()),
    );
    let mut c = pipeline::kafka::base_config(&untrusting.kafka, "untrusting").unwrap();
    c.set("group.id", "untrusting");
    let consumer: BaseConsumer = c.create().unwrap();
    let refused =
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, Duration::from_secs(5)))
            .await
            .unwrap();
    assert!(refused.is_err(), "metadata from an untrusted broker");
    stack.stop().await;
}
