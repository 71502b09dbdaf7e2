//! Bad records interleaved with good ones: every bad one lands in the stage DLQ with the right
//! reason headers, every good one is decoded, and the stage keeps running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use pipeline::codec::CanonicalCodec;
use pipeline::kafka;
use pipeline::stage::{self, tap};
use pipeline::topology::{StageConfig, TopicRole};
use processors::event::SecurityEvent;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureRecord;

const STAGES: &str = "  - type: tap\n    name: guard\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_go_to_the_dlq_and_good_ones_flow() {
    let env = common::env(STAGES).await;
    let t = &env.topology;
    let topic = t.topics.resolved(TopicRole::Canonical).name;
    let codec = CanonicalCodec::new(&t.schema_registry).unwrap();
    let producer = kafka::idempotent_producer(&t.kafka, "test").unwrap();

    let events: Vec<SecurityEvent> = common::generated_events(40)
        .iter()
        .map(|v| SecurityEvent::from_json(&v.to_string()).unwrap())
        .collect();
    let good_bytes = codec.encode(&topic, &events[0]).await.unwrap();
    let mut truncated = good_bytes.clone();
    truncated.truncate(good_bytes.len() / 2);
    let mut unknown_id = good_bytes.clone();
    unknown_id[1..5].copy_from_slice(&9999u32.to_be_bytes());
    let mut wrong_magic = good_bytes.clone();
    wrong_magic[0] = 7;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("not_framed", b"this is not avro".to_vec()),
        ("not_framed", wrong_magic),
        ("unknown_schema", unknown_id),
        ("corrupt_avro", truncated),
        ("not_framed", vec![0, 0]),
    ];

    // Good, bad, good, bad, … all on one partition so the order is known.
    let mut expected_bad: HashMap<i64, (&str, &Vec<u8>)> = HashMap::new();
    let mut offset = 0i64;
    let mut good_ids = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let bytes = codec.encode(&topic, event).await.unwrap();
        send(&producer, &topic, &bytes).await;
        good_ids.push(event.event_id.clone());
        offset += 1;
        if i % 8 == 3 {
            let (class, bytes) = &bad[(i / 8) % bad.len()];
            send(&producer, &topic, bytes).await;
            expected_bad.insert(offset, (class, bytes));
            offset += 1;
        }
    }
    let total = (events.len() + expected_bad.len()) as u64;

    let Some(StageConfig::Tap(tap_stage)) = t.stage("guard").cloned() else {
        panic!("tap stage")
    };
    let mut decoded = Vec::new();
    let limits = stage::RunLimits {
        max_records: Some(total),
        idle_exit: Some(Duration::from_secs(30)),
    };
    let report = tap::run(t, &tap_stage, limits, stage::never(), |e| {
        decoded.push(e.event_id.clone())
    })
    .await
    .unwrap();
    assert_eq!(report.records, total, "{report:?}");
    assert_eq!(decoded, good_ids, "every good record, in order");
    assert_eq!(
        report.dead_lettered.values().sum::<u64>(),
        expected_bad.len() as u64
    );

    // Read the DLQ back and check every header.
    let consumer: StreamConsumer = kafka::consumer(&t.kafka, "dlq-reader", "dlq-reader").unwrap();
    consumer.subscribe(&["guard.dlq"]).unwrap();
    let mut found = 0;
    while found < expected_bad.len() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("DLQ record")
            .unwrap();
        let h: HashMap<String, String> = m
            .headers()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h.key.to_string(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect();
        let origin_offset: i64 = h["secflow.origin.offset"].parse().unwrap();
        let (class, original) = expected_bad[&origin_offset];
        assert_eq!(
            m.payload(),
            Some(original.as_slice()),
            "value kept unchanged"
        );
        assert_eq!(h["secflow.error.class"], class, "{h:?}");
        assert_eq!(h["secflow.origin.topic"], topic);
        assert_eq!(h["secflow.origin.partition"], "0");
        assert_eq!(h["secflow.stage"], "guard");
        assert_eq!(h["secflow.dlq.reason"], "undecodable");
        assert!(!h["secflow.error.message"].is_empty());
        assert!(h["secflow.first_failure_ms"].parse::<i64>().unwrap() > 0);
        assert_eq!(h["__connect.errors.offset"], origin_offset.to_string());
        found += 1;
    }
    env.stack.stop().await;
}

async fn send(producer: &rdkafka::producer::FutureProducer, topic: &str, bytes: &[u8]) {
    producer
        .send(
            FutureRecord::<[u8], [u8]>::to(topic)
                .partition(0)
                .payload(bytes),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

/// Registers `schema` under `subject` in the test registry and returns its id.
async fn register(registry: &str, subject: &str, schema: &str) -> u32 {
    let body = serde_json::json!({ "schema": schema });
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{registry}/subjects/{subject}/versions"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["id"].as_u64().unwrap() as u32
}

/// Producers on another (compatible) version of the canonical schema are read through schema
/// resolution, not the hand-written fast path; a record framed with the id of a schema that is
/// not a `SecurityEvent` at all is dead-lettered as `foreign_schema`; and a codec that may not
/// register writes with the subject's latest version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_another_schema_version_are_resolved_and_foreign_ones_dead_lettered() {
    let env = common::env(STAGES).await;
    let t = &env.topology;
    let topic = t.topics.resolved(TopicRole::Canonical).name;
    let registry = env.stack.registry_url();
    let codec = CanonicalCodec::new(&t.schema_registry).unwrap();
    let producer = kafka::idempotent_producer(&t.kafka, "test").unwrap();
    let events: Vec<SecurityEvent> = common::generated_events(12)
        .iter()
        .map(|v| SecurityEvent::from_json(&v.to_string()).unwrap())
        .collect();

    // v1 (ours) registered by the first encode, then the compatible v2 with one more field.
    let first = codec.encode(&topic, &events[0]).await.unwrap();
    let v1 = pipeline::codec::framed_schema_id(&first).unwrap();
    let v2_text = std::fs::read_to_string(
        common::workspace()
            .join("schemas/fixtures/security_event.compatible.new_optional_field.avsc"),
    )
    .unwrap();
    let v2 = register(&registry, &format!("{topic}-value"), &v2_text).await;
    assert_ne!(v1, v2);
    let v2_schema = apache_avro::Schema::parse_str(&v2_text).unwrap();
    let foreign = register(
        &registry,
        "someone-elses-topic-value",
        r#"{"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]}"#,
    )
    .await;

    // Even events on v2, odd ones on v1, and one foreign record after the sixth.
    let mut foreign_offset = None;
    let mut offset = 0i64;
    for (i, event) in events.iter().enumerate() {
        let bytes = if i % 2 == 0 {
            let value = event.to_avro_value().unwrap().resolve(&v2_schema).unwrap();
            let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&v2_schema)
                .build()
                .unwrap()
                .write_value_to_vec(value)
                .unwrap();
            pipeline::codec::frame(v2, &datum)
        } else {
            codec.encode(&topic, event).await.unwrap()
        };
        send(&producer, &topic, &bytes).await;
        offset += 1;
        if i == 5 {
            // A well-formed `Other` (x = 42, zig-zag varint) that no SecurityEvent reads.
            send(&producer, &topic, &pipeline::codec::frame(foreign, &[84])).await;
            foreign_offset = Some(offset);
            offset += 1;
        }
    }

    let Some(StageConfig::Tap(tap_stage)) = t.stage("guard").cloned() else {
        panic!("tap stage")
    };
    let mut decoded = Vec::new();
    let limits = stage::RunLimits {
        max_records: Some(offset as u64),
        idle_exit: Some(Duration::from_secs(30)),
    };
    let report = tap::run(t, &tap_stage, limits, stage::never(), |e| {
        decoded.push(e.clone())
    })
    .await
    .unwrap();
    assert_eq!(decoded, events, "every event, whichever version wrote it");
    assert_eq!(
        report.dead_lettered.get("foreign_schema"),
        Some(&1),
        "{report:?}"
    );
    let dlq = pipeline::dlq_tool::read_all(t, "guard.dlq").await.unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].header("secflow.error.class"), Some("foreign_schema"));
    assert_eq!(
        dlq[0].header("secflow.origin.offset"),
        foreign_offset.map(|o| o.to_string()).as_deref()
    );

    // Not allowed to register: it writes with the subject's latest version (v2), resolved.
    let mut fixed = t.schema_registry.clone();
    fixed.auto_register = false;
    let latest = CanonicalCodec::new(&fixed).unwrap();
    let bytes = latest.encode(&topic, &events[1]).await.unwrap();
    assert_eq!(pipeline::codec::framed_schema_id(&bytes).ok(), Some(v2));
    assert_eq!(codec.decode(Some(&bytes)).await.unwrap(), events[1]);
    env.stack.stop().await;
}
