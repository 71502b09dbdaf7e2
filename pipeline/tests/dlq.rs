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
