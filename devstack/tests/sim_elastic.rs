//! The Elasticsearch sink (processors) against the Elasticsearch simulator (devstack): bulk
//! requests built by our sink, sent over real HTTP, items classified by our sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use devstack::sim::{
    DropMode, ElasticSimConfig, Faults, ItemFault, SimConfig, SimKind, SimServer, StatusRule,
};
use processors::secret::Secret;
use processors::sink::elasticsearch::{ElasticsearchConfig, ElasticsearchSink};
use processors::sink::{
    Classification, Credentials, Outcome, PayloadFormat, RetryAfter, Sink, SinkRecord,
};

const API_KEY: &str = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";

/// The delivery engine's own HTTP executor, so these tests send exactly what a sink stage sends.
use pipeline::delivery::http::{send, Executor};

fn client() -> Executor {
    pipeline::delivery::http::client(Duration::from_secs(5)).unwrap()
}

fn records(prefix: &str, n: usize) -> Vec<SinkRecord> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let (payload, format) = match i % 3 {
                0 => (
                    format!(r#"{{"@timestamp":"2024-01-01T00:00:00Z","event":{{"id":"{id}"}}}}"#),
                    PayloadFormat::Ecs,
                ),
                1 => (
                    format!(
                        r#"{{"class_uid":2004,"metadata":{{"uid":"{id}"}},"time":1704067200000}}"#
                    ),
                    PayloadFormat::Ocsf,
                ),
                _ => (
                    format!("CEF:0|secflow|test|1|100|Event {id}|5|src=10.0.0.1"),
                    PayloadFormat::Cef,
                ),
            };
            SinkRecord {
                event_id: Some(id),
                tenant: Some(if i % 2 == 0 {
                    "Acme".into()
                } else {
                    "globex".into()
                }),
                event_time_ms: Some(1_704_067_200_000),
                key: None,
                payload: payload.into_bytes(),
                format,
                traceparent: None,
            }
        })
        .collect()
}

fn ids(batch: &[SinkRecord]) -> BTreeSet<String> {
    batch.iter().filter_map(|r| r.event_id.clone()).collect()
}

fn es_config(url: &str, extra: serde_json::Value) -> ElasticsearchConfig {
    let mut v = serde_json::json!({
        "endpoint": url,
        "index": "logs-secflow.{format}-{tenant}-{yyyy.MM.dd}",
        "auth": {"api_key": {"env": "ES_API_KEY"}},
    });
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            m.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

fn sink(url: &str, extra: serde_json::Value) -> ElasticsearchSink {
    ElasticsearchSink::new(
        "es",
        es_config(url, extra),
        Some(Credentials::ApiKey(Secret::new(API_KEY))),
    )
    .unwrap()
}

async fn start(config: ElasticSimConfig, sim: SimConfig) -> SimServer {
    SimServer::start(SimKind::Elastic(config), sim)
        .await
        .unwrap()
}

fn api_key_sim() -> ElasticSimConfig {
    ElasticSimConfig {
        api_key: Some(API_KEY.into()),
        basic: None,
    }
}

/// One attempt: build, send, classify; (batch index, outcome) per record, plus the
/// classifications.
async fn attempt(
    sink: &ElasticsearchSink,
    client: &Executor,
    batch: &[SinkRecord],
) -> (Vec<(usize, Outcome)>, Vec<Classification>) {
    let built = sink.build(batch, SystemTime::now());
    let mut outcomes = built.rejected.clone();
    let mut cs = Vec::new();
    for req in &built.requests {
        let c = match send(client, req).await {
            Ok(resp) => sink.classify(req, &resp),
            Err(e) => sink.classify_transport_error(req, &e),
        };
        assert_eq!(c.outcomes.len(), req.records.len());
        outcomes.extend(req.records.iter().copied().zip(c.outcomes.iter().cloned()));
        cs.push(c);
    }
    outcomes.sort_by_key(|(i, _)| *i);
    (outcomes, cs)
}

#[tokio::test]
async fn healthy_bulk_and_idempotent_resend() {
    let sim = start(api_key_sim(), SimConfig::default()).await;
    let sink = sink(
        &sim.url(),
        serde_json::json!({"gzip": true, "max_request_bytes": 3000}),
    );
    let client = client();
    let batch = records("ok", 90);
    let (outcomes, cs) = attempt(&sink, &client, &batch).await;
    assert!(cs.len() > 1, "split at max_request_bytes");
    assert_eq!(outcomes.len(), 90);
    assert!(
        outcomes.iter().all(|(_, o)| *o == Outcome::Delivered),
        "{outcomes:?}"
    );
    assert_eq!(sim.received_event_ids(), ids(&batch));
    // The data landed in the templated indices.
    let req = &sim.received_requests()[0];
    let first_action: serde_json::Value =
        serde_json::from_slice(req.body.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(
        first_action["create"]["_index"],
        "logs-secflow.ecs-acme-2024.01.01"
    );
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    // Sending the same batch again is harmless: every item is a duplicate (409 on create).
    let (again, _) = attempt(&sink, &client, &batch).await;
    assert!(again.iter().all(|(_, o)| *o == Outcome::Duplicate));
    let stats = sim.stats();
    assert_eq!(stats.conflicts, 90);
    assert_eq!(stats.duplicate_events, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn per_item_failures_retry_alone_and_mapping_errors_are_permanent() {
    let sim = start(api_key_sim(), SimConfig::default()).await;
    let sink = sink(&sim.url(), serde_json::json!({}));
    let client = client();
    let batch = records("item", 2000);
    sim.set_faults(Faults {
        item_faults: vec![
            ItemFault {
                status: 429,
                fraction: 0.05,
                event_ids: vec![],
                times: Some(1),
                seed: 1,
            },
            ItemFault {
                status: 400,
                fraction: 0.01,
                event_ids: vec![],
                times: None,
                seed: 2,
            },
            ItemFault {
                status: 503,
                fraction: 0.0,
                event_ids: vec!["item-7".into()],
                times: Some(1),
                seed: 0,
            },
        ],
        ..Faults::default()
    });
    let (outcomes, cs) = attempt(&sink, &client, &batch).await;
    assert!(
        cs.iter().all(|c| c.sink_down.is_none()),
        "partial failures are not an outage"
    );
    let retry: Vec<usize> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Retry { .. }))
        .map(|(i, _)| *i)
        .collect();
    let permanent: Vec<&(usize, Outcome)> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Permanent { .. }))
        .collect();
    assert!(
        (60..=140).contains(&retry.len()),
        "about 5% retried: {}",
        retry.len()
    );
    assert!(
        (5..=40).contains(&permanent.len()),
        "about 1% permanent: {}",
        permanent.len()
    );
    assert!(
        matches!(&outcomes[7].1, Outcome::Retry { class, status: Some(503), .. } if class == "unavailable_shards_exception")
    );
    for (_, o) in &permanent {
        match o {
            Outcome::Permanent {
                class,
                status,
                message,
            } => {
                assert_eq!(class, "mapper_parsing_exception");
                assert_eq!(*status, Some(400));
                assert!(message.contains("failed to parse field"), "{message}");
            }
            _ => unreachable!(),
        }
    }
    for (_, o) in outcomes.iter().filter(|(_, o)| {
        matches!(
            o,
            Outcome::Retry {
                status: Some(429),
                ..
            }
        )
    }) {
        assert_eq!(o.class(), Some("rate_limited"));
    }
    // The engine retries only the retryable records: they are delivered now.
    let retry_batch: Vec<SinkRecord> = retry.iter().map(|&i| batch[i].clone()).collect();
    let (second, _) = attempt(&sink, &client, &retry_batch).await;
    // Delivered now, unless the id is also among the 1% with a mapping error.
    let mut permanent_ids: BTreeSet<String> = permanent
        .iter()
        .map(|(i, _)| batch[*i].event_id.clone().unwrap())
        .collect();
    for (i, o) in &second {
        match o {
            Outcome::Delivered => {}
            Outcome::Permanent { class, .. } if class == "mapper_parsing_exception" => {
                permanent_ids.insert(retry_batch[*i].event_id.clone().unwrap());
            }
            o => panic!("{o:?}"),
        }
    }
    let mut expected = ids(&batch);
    expected.retain(|id| !permanent_ids.contains(id));
    assert_eq!(
        sim.received_event_ids(),
        expected,
        "everything else delivered, once"
    );
    assert_eq!(sim.stats().duplicate_events, 0);
    // After the fault clears, the dead-lettered records are delivered on replay.
    sim.clear_faults();
    let replay: Vec<SinkRecord> = batch
        .iter()
        .filter(|r| permanent_ids.contains(r.event_id.as_deref().unwrap()))
        .cloned()
        .collect();
    let (third, _) = attempt(&sink, &client, &replay).await;
    assert!(third.iter().all(|(_, o)| *o == Outcome::Delivered));
    assert_eq!(sim.received_event_ids(), ids(&batch));
    sim.shutdown().await;
}

#[tokio::test]
async fn whole_request_failures() {
    let sim = start(api_key_sim(), SimConfig::default()).await;
    let sink = sink(&sim.url(), serde_json::json!({}));
    let client = client();
    let batch = records("whole", 4);
    sim.set_faults(Faults {
        statuses: vec![
            StatusRule::times(503, 1),
            StatusRule::times(429, 1).with_retry_after("3"),
        ],
        ..Faults::default()
    });
    let (o, cs) = attempt(&sink, &client, &batch).await;
    assert!(o.iter().all(|(_, o)| matches!(o, Outcome::Retry { class, status: Some(503), .. } if class == "server_error")));
    assert!(
        matches!(&o[0].1, Outcome::Retry { message, .. } if message.contains("cluster_block_exception"))
    );
    assert!(cs[0].sink_down.is_some());
    let (o, cs) = attempt(&sink, &client, &batch).await;
    assert!(o.iter().all(|(_, o)| matches!(o, Outcome::Retry { retry_after: Some(RetryAfter::Delay(d)), .. } if *d == Duration::from_secs(3))));
    assert!(cs[0].sink_down.is_some());
    // Every item rejected inside a 200 is an outage too.
    sim.set_faults(Faults {
        item_faults: vec![ItemFault {
            status: 429,
            fraction: 1.0,
            event_ids: vec![],
            times: None,
            seed: 0,
        }],
        ..Faults::default()
    });
    let (_, cs) = attempt(&sink, &client, &batch).await;
    assert_eq!(cs[0].sink_down.as_ref().unwrap().class, "rate_limited");
    sim.clear_faults();
    let (o, _) = attempt(&sink, &client, &batch).await;
    assert!(o.iter().all(|(_, o)| *o == Outcome::Delivered));
    sim.shutdown().await;
}

#[tokio::test]
async fn authentication() {
    let sim = start(
        ElasticSimConfig {
            api_key: None,
            basic: Some(("elastic".into(), "changeme".into())),
        },
        SimConfig::default(),
    )
    .await;
    let client = client();
    let batch = records("auth", 2);
    // Wrong scheme (API key where basic is expected): permanent, the sink is down.
    let wrong = sink(&sim.url(), serde_json::json!({}));
    let (o, cs) = attempt(&wrong, &client, &batch).await;
    assert!(o.iter().all(|(_, o)| matches!(o, Outcome::Permanent { class, status: Some(401), message } if class == "auth" && message.contains("security_exception"))));
    assert!(cs[0].sink_down.is_some());
    assert!(!format!("{o:?}").contains(API_KEY));
    let basic = ElasticsearchSink::new(
        "es",
        es_config(&sim.url(), serde_json::json!({})),
        Some(Credentials::Basic {
            username: "elastic".into(),
            password: Secret::new("changeme"),
        }),
    )
    .unwrap();
    let (o, _) = attempt(&basic, &client, &batch).await;
    assert!(o.iter().all(|(_, o)| *o == Outcome::Delivered));
    assert_eq!(sim.stats().auth_failures, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn payload_too_large_splits_down_to_single_documents() {
    // The server accepts 1500 bytes; the sink thinks 1 MB is fine.
    let sim = start(
        api_key_sim(),
        SimConfig {
            max_body_bytes: 1500,
            ..SimConfig::default()
        },
    )
    .await;
    let sink = sink(&sim.url(), serde_json::json!({}));
    let client = client();
    let mut batch = records("big", 20);
    batch[5].payload = format!(
        r#"{{"@timestamp":"t","event":{{"id":"big-5"}},"pad":"{}"}}"#,
        "x".repeat(2000)
    )
    .into_bytes();
    // The engine's split loop: a request answered with `split` is re-sent as two halves.
    let mut queue: Vec<Vec<usize>> = vec![(0..batch.len()).collect()];
    let mut finals: Vec<(usize, Outcome)> = Vec::new();
    let mut splits = 0;
    while let Some(group) = queue.pop() {
        let sub: Vec<SinkRecord> = group.iter().map(|&i| batch[i].clone()).collect();
        let built = sink.build(&sub, SystemTime::now());
        for req in &built.requests {
            let resp = send(&client, req).await.unwrap();
            let c = sink.classify(req, &resp);
            let members: Vec<usize> = req.records.iter().map(|&r| group[r]).collect();
            if c.split {
                assert!(members.len() >= 2);
                splits += 1;
                let (a, b) = members.split_at(members.len() / 2);
                queue.push(a.to_vec());
                queue.push(b.to_vec());
            } else {
                finals.extend(members.into_iter().zip(c.outcomes));
            }
        }
    }
    assert!(splits > 0);
    finals.sort_by_key(|(i, _)| *i);
    assert_eq!(finals.len(), 20);
    for (i, o) in &finals {
        if *i == 5 {
            assert!(
                matches!(o, Outcome::Permanent { class, status: Some(413), .. } if class == "payload_too_large")
            );
        } else {
            assert_eq!(*o, Outcome::Delivered, "record {i}");
        }
    }
    assert_eq!(sim.received_event_ids().len(), 19);
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_after_processing_then_resent_is_a_duplicate_not_a_copy() {
    let sim = start(api_key_sim(), SimConfig::default()).await;
    let sink = sink(&sim.url(), serde_json::json!({}));
    let client = client();
    let batch = records("drop", 5);
    sim.set_faults(Faults {
        drop_connections: 1,
        drop_mode: DropMode::AfterProcessing,
        ..Faults::default()
    });
    let (o, cs) = attempt(&sink, &client, &batch).await;
    assert!(o
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Retry { class, .. } if class == "connection_closed")));
    assert!(cs[0].sink_down.is_some());
    let (o, _) = attempt(&sink, &client, &batch).await;
    assert!(o.iter().all(|(_, o)| *o == Outcome::Duplicate));
    assert_eq!(sim.received_event_ids(), ids(&batch));
    assert_eq!(sim.stats().duplicate_events, 0);
    assert_eq!(sim.stats().conflicts, 5);
    sim.shutdown().await;
}
