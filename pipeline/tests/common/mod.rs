//! Shared set-up for pipeline integration tests: a private broker and registry, a topology
//! file pointing at them, and the topics created.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod sink;

use std::path::{Path, PathBuf};

use devstack::testkit::TestStack;
use pipeline::topology::{self, Topology};
use serde_json::Value;

pub struct Env {
    pub stack: TestStack,
    pub topology_file: PathBuf,
    pub topology: Topology,
}

/// Starts a stack, writes a topology with `stages_yaml`, creates its topics.
pub async fn env(stages_yaml: &str) -> Env {
    let stack = TestStack::start()
        .await
        .expect("test stack (run scripts/bootstrap.sh)");
    let topology_file = stack.dir().join("topology.yaml");
    std::fs::write(&topology_file, stack.topology_yaml(stages_yaml)).unwrap();
    let topology = topology::load(&topology_file).unwrap().topology;
    pipeline::kafka::create_topics(&topology.kafka, &topology.all_topics())
        .await
        .unwrap();
    Env {
        stack,
        topology_file,
        topology,
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The example events, as JSON values, sorted by file name.
pub fn examples() -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(workspace().join("schemas/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples");
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// `n` example-shaped events with unique ids, spread over tenants and times.
pub fn generated_events(n: usize) -> Vec<Value> {
    let examples = examples();
    (0..n)
        .map(|i| {
            let mut v = examples[i % examples.len()].clone();
            v["event_id"] = Value::from(format!("evt-{i:06}-{}", uuid_like(i)));
            v["tenant"] = Value::from(format!("tenant-{}", i % 7));
            v
        })
        .collect()
}

fn uuid_like(i: usize) -> String {
    format!(
        "{:08x}",
        (i as u64).wrapping_mul(2_654_435_761) & 0xffff_ffff
    )
}

/// Writes values as JSON lines.
pub fn write_jsonl(path: &Path, values: &[Value]) {
    let mut text = String::new();
    for v in values {
        text.push_str(&serde_json::to_string(v).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Writes the ECS form of `events` to the ECS topic with the headers the transform stage sets
/// (so sink tests need not run the transform stage).
pub async fn produce_ecs(t: &Topology, events: &[Value]) -> Vec<String> {
    use processors::event::SecurityEvent;
    use processors::transform::Format;
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::FutureRecord;
    let topic = t.topics.resolved(pipeline::topology::TopicRole::Ecs).name;
    let producer = pipeline::kafka::idempotent_producer(&t.kafka, "test-ecs").unwrap();
    let mut ids = Vec::with_capacity(events.len());
    let mut pending = Vec::new();
    for v in events {
        let e = SecurityEvent::from_json(&v.to_string()).unwrap();
        let doc = Format::Ecs.transform(&e).unwrap();
        let time = e.event_time.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "secflow.format",
                value: Some("ecs"),
            })
            .insert(Header {
                key: "secflow.event_id",
                value: Some(e.event_id.as_str()),
            })
            .insert(Header {
                key: "secflow.event_time_ms",
                value: Some(time.as_str()),
            })
            .insert(Header {
                key: "secflow.tenant",
                value: Some(e.tenant.as_str()),
            });
        let rec = FutureRecord::to(&topic)
            .key(e.tenant.as_str())
            .payload(&doc)
            .headers(headers);
        pending.push(producer.send_result(rec).map_err(|(e, _)| e).unwrap());
        ids.push(e.event_id);
        if pending.len() >= 5000 {
            for p in pending.drain(..) {
                p.await.unwrap().unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
    ids
}

/// A consumer in `group` and the offsets the group has committed on each partition of `topic`
/// (0 where it has none).
fn committed_offsets(
    t: &Topology,
    group: &str,
    topic: &str,
) -> rdkafka::error::KafkaResult<(rdkafka::consumer::BaseConsumer, Vec<(i32, i64)>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let mut c = pipeline::kafka::base_config(&t.kafka, "lag").unwrap();
    c.set("group.id", group);
    let consumer: BaseConsumer = c.create()?;
    let md = consumer.fetch_metadata(Some(topic), std::time::Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition(topic, p.id());
    }
    let committed = consumer.committed_offsets(tpl, std::time::Duration::from_secs(10))?;
    let offsets = committed
        .elements()
        .iter()
        .map(|e| {
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            (e.partition(), at)
        })
        .collect();
    Ok((consumer, offsets))
}

/// Consumer lag of `group` on `topic`: high watermark minus committed offset, summed.
pub fn group_lag(t: &Topology, group: &str, topic: &str) -> i64 {
    use rdkafka::consumer::Consumer;
    let (consumer, committed) = committed_offsets(t, group, topic).unwrap();
    let mut lag = 0;
    for (partition, at) in committed {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, std::time::Duration::from_secs(10))
            .unwrap();
        // A committed offset at or past the end means nothing is left to consume.
        lag += (high - at).max(0);
    }
    lag
}

/// Every record of `topic` by its `secflow.event_id` header: (partition, offset), read from the
/// beginning of each partition until it stays quiet. For diagnosing what a run lost.
pub fn index_by_event_id(
    t: &Topology,
    topic: &str,
) -> std::collections::HashMap<String, (i32, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use std::time::{Duration, Instant};
    let mut c = pipeline::kafka::base_config(&t.kafka, "diag").unwrap();
    c.set("group.id", format!("diag-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create().unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = std::collections::HashMap::new();
    let mut quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            quiet = Instant::now();
            if let Some(id) = m
                .headers()
                .and_then(|h| h.iter().find(|x| x.key == "secflow.event_id"))
                .and_then(|x| x.value)
            {
                out.insert(
                    String::from_utf8_lossy(id).into_owned(),
                    (m.partition(), m.offset()),
                );
            }
        }
    }
    out
}

/// Offsets `group` has committed on `topic`, summed over its partitions (0 where none, or
/// while the broker cannot say yet).
pub fn group_committed(t: &Topology, group: &str, topic: &str) -> i64 {
    committed_offsets(t, group, topic)
        .map(|(_, offsets)| offsets.iter().map(|(_, o)| o).sum())
        .unwrap_or(0)
}

/// Waits (up to three minutes) until `group` has committed at least `at_least` offsets on
/// `topic`: tests kill a stage by progress, not by a clock, since the machine's speed varies.
pub async fn wait_for_progress(t: &Topology, group: &str, topic: &str, at_least: i64) -> i64 {
    let started = std::time::Instant::now();
    loop {
        let (t2, g, tp) = (t.clone(), group.to_string(), topic.to_string());
        let done = tokio::task::spawn_blocking(move || group_committed(&t2, &g, &tp))
            .await
            .unwrap();
        if done >= at_least || started.elapsed() > std::time::Duration::from_secs(180) {
            return done;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `n` generated events through `secflow produce`'s path (JSON lines → canonical Avro, keyed
/// by tenant) to the canonical topic; all must be accepted.
pub async fn produce_generated(t: &Topology, n: usize) {
    use pipeline::produce::{self, KeyField, ProduceOptions};
    use pipeline::topology::TopicRole;
    let text: String = generated_events(n)
        .iter()
        .map(|e| format!("{e}\n"))
        .collect();
    let opts = ProduceOptions {
        topic: t.topics.resolved(TopicRole::Canonical).name,
        key: KeyField::Tenant,
        max_in_flight: 1000,
    };
    let report = produce::produce(t, text.as_bytes(), &opts, |r| panic!("rejected: {r:?}"))
        .await
        .unwrap();
    assert_eq!(report.accepted, n as u64);
}
