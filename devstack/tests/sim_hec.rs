//! The Splunk HEC sink (processors) against the HEC simulator (devstack): requests built by our
//! sink, sent over real HTTP, answers classified by our sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use devstack::sim::{DropMode, Faults, HecSimConfig, SimConfig, SimKind, SimServer, StatusRule};
use processors::secret::Secret;
use processors::sink::splunk_hec::{HecConfig, SplunkHecSink};
use processors::sink::{
    AckToken, HttpRequest, Outcome, PayloadFormat, RetryAfter, Sink, SinkRecord,
};

const TOKEN: &str = "11111111-2222-3333-4444-555555555555";

/// The delivery engine's own HTTP executor, so these tests send exactly what a sink stage sends.
use pipeline::delivery::http::{send, Executor};

fn client() -> Executor {
    pipeline::delivery::http::client(Duration::from_secs(5)).unwrap()
}

fn records(prefix: &str, n: usize) -> Vec<SinkRecord> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let (payload, format) = if i % 4 == 3 {
                (
                    format!(
                        "CEF:0|secflow|test|1|100|Event {id}|5|src=10.0.0.{}",
                        i % 250
                    ),
                    PayloadFormat::Cef,
                )
            } else {
                (
                    format!(
                        r#"{{"@timestamp":"2024-01-01T00:00:00Z","event":{{"id":"{id}"}},"n":{i}}}"#
                    ),
                    PayloadFormat::Ecs,
                )
            };
            SinkRecord {
                event_id: Some(id),
                tenant: Some("acme".into()),
                event_time_ms: Some(1_704_067_200_000 + i as i64),
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

fn hec_config(url: &str, acks: bool, gzip: bool) -> HecConfig {
    let mut v = serde_json::json!({
        "endpoint": url,
        "token": {"env": "HEC_TOKEN"},
        "index": "security",
        "sourcetype": "secflow",
        "gzip": gzip,
        "max_request_bytes": 4000,
    });
    if acks {
        v["indexer_acks"] = serde_json::json!({"poll_interval_ms": 20, "timeout_ms": 500});
    }
    serde_json::from_value(v).unwrap()
}

async fn start(config: HecSimConfig) -> SimServer {
    SimServer::start(SimKind::Hec(config), SimConfig::default())
        .await
        .unwrap()
}

/// Sends every request of a build; returns (request, classification) pairs.
async fn send_all(
    sink: &SplunkHecSink,
    client: &Executor,
    batch: &[SinkRecord],
) -> Vec<(HttpRequest, processors::sink::Classification)> {
    let built = sink.build(batch, SystemTime::now());
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    let mut out = Vec::new();
    for req in built.requests {
        let c = match send(client, &req).await {
            Ok(resp) => sink.classify(&req, &resp),
            Err(e) => sink.classify_transport_error(&req, &e),
        };
        assert_eq!(c.outcomes.len(), req.records.len());
        out.push((req, c));
    }
    out
}

/// Polls until every token is acked or `deadline` passes; returns the acked ones.
async fn poll_acks(
    sink: &SplunkHecSink,
    client: &Executor,
    pending: &[AckToken],
    deadline: Duration,
) -> BTreeSet<AckToken> {
    let mut acked = BTreeSet::new();
    let until = std::time::Instant::now() + deadline;
    while acked.len() < pending.len() && std::time::Instant::now() < until {
        let open: Vec<AckToken> = pending
            .iter()
            .filter(|t| !acked.contains(*t))
            .cloned()
            .collect();
        for poll in sink.ack_poll(&open) {
            let resp = send(client, &poll).await.unwrap();
            let report = sink.parse_acks(&poll, &resp).unwrap();
            assert!(report.ack_reset.is_none());
            acked.extend(report.acked);
        }
        tokio::time::sleep(sink.ack_policy().unwrap().poll_interval).await;
    }
    acked
}

fn tokens(sent: &[(HttpRequest, processors::sink::Classification)]) -> Vec<AckToken> {
    let mut t: Vec<AckToken> = sent
        .iter()
        .flat_map(|(_, c)| c.outcomes.iter())
        .map(|o| match o {
            Outcome::AwaitAck(t) => t.clone(),
            o => panic!("expected AwaitAck, got {o:?}"),
        })
        .collect();
    t.dedup();
    t
}

#[tokio::test]
async fn healthy_batches_with_indexer_acks_and_gzip() {
    let sim = start(HecSimConfig::new(TOKEN)).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, true),
        Secret::new(TOKEN),
    )
    .unwrap();
    let client = client();
    let batch = records("ok", 60);
    let sent = send_all(&sink, &client, &batch).await;
    assert!(sent.len() > 1, "max_request_bytes splits the batch");
    let pending = tokens(&sent);
    assert_eq!(pending.len(), sent.len(), "one ackId per request");
    let acked = poll_acks(&sink, &client, &pending, Duration::from_secs(5)).await;
    assert_eq!(acked.len(), pending.len());
    assert_eq!(sim.received_event_ids(), ids(&batch));
    let stats = sim.stats();
    assert_eq!(stats.duplicate_events, 0);
    assert_eq!(stats.acks_confirmed as usize, pending.len());
    // What the simulator parsed is what we meant: time, index, sourcetype, fields, CEF as text.
    let req = &sim.received_requests()[0];
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    let first: serde_json::Value = serde_json::Deserializer::from_slice(&req.body)
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(first["time"], serde_json::json!(1_704_067_200.0));
    assert_eq!(first["index"], "security");
    assert_eq!(first["fields"]["tenant"], "acme");
    assert_eq!(first["event"]["event"]["id"], "ok-0");
    sim.shutdown().await;
}

#[tokio::test]
async fn without_acks_a_200_is_delivered() {
    let mut cfg = HecSimConfig::new(TOKEN);
    cfg.acks = false;
    let sim = start(cfg).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), false, false),
        Secret::new(TOKEN),
    )
    .unwrap();
    let batch = records("noack", 10);
    for (_, c) in send_all(&sink, &client(), &batch).await {
        assert!(c.outcomes.iter().all(|o| *o == Outcome::Delivered));
    }
    assert_eq!(sim.received_event_ids(), ids(&batch));
    sim.shutdown().await;
}

#[tokio::test]
async fn outage_503_retries_with_retry_after_then_recovers() {
    let sim = start(HecSimConfig::new(TOKEN)).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, false),
        Secret::new(TOKEN),
    )
    .unwrap();
    let client = client();
    sim.set_faults(Faults {
        statuses: vec![
            StatusRule::for_duration(503, Duration::from_millis(1500)).with_retry_after("1")
        ],
        ..Faults::default()
    });
    // The health probe says "down" during the outage.
    let probe = sink.health_probe().unwrap();
    assert!(!sink.probe_ok(&send(&client, &probe).await.unwrap()));
    let batch = records("outage", 8);
    for (_, c) in send_all(&sink, &client, &batch).await {
        let down = c.sink_down.as_ref().unwrap();
        assert_eq!(down.class, "server_busy");
        for o in &c.outcomes {
            match o {
                Outcome::Retry {
                    class,
                    status,
                    retry_after,
                    ..
                } => {
                    assert_eq!(class, "server_busy");
                    assert_eq!(*status, Some(503));
                    assert_eq!(
                        *retry_after,
                        Some(RetryAfter::Delay(Duration::from_secs(1)))
                    );
                }
                o => panic!("{o:?}"),
            }
        }
    }
    assert!(sim.received_event_ids().is_empty());
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(sink.probe_ok(&send(&client, &probe).await.unwrap()));
    let sent = send_all(&sink, &client, &batch).await;
    let pending = tokens(&sent);
    assert_eq!(
        poll_acks(&sink, &client, &pending, Duration::from_secs(5))
            .await
            .len(),
        pending.len()
    );
    assert_eq!(sim.received_event_ids(), ids(&batch));
    assert!(sim.stats().faulted >= 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_token_is_permanent_and_takes_the_sink_down() {
    let sim = start(HecSimConfig::new(TOKEN)).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, false),
        Secret::new("wrong-token"),
    )
    .unwrap();
    for (_, c) in send_all(&sink, &client(), &records("auth", 3)).await {
        assert!(c.outcomes.iter().all(
            |o| matches!(o, Outcome::Permanent { class, status: Some(403), .. } if class == "auth")
        ));
        assert_eq!(c.sink_down.unwrap().class, "auth");
        assert!(!format!("{:?}", c.outcomes).contains("wrong-token"));
    }
    assert_eq!(sim.stats().auth_failures, 1);
    assert!(sim.received_event_ids().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn incorrect_index_is_a_config_error() {
    let mut cfg = HecSimConfig::new(TOKEN);
    cfg.allowed_indexes = vec!["main".into()];
    let sim = start(cfg).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, false),
        Secret::new(TOKEN),
    )
    .unwrap();
    for (_, c) in send_all(&sink, &client(), &records("index", 2)).await {
        assert!(c.outcomes.iter().all(
            |o| matches!(o, Outcome::Permanent { class, .. } if class == "hec_incorrect_index")
        ));
        assert!(c.sink_down.is_some());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_and_latency_are_transport_failures() {
    let sim = start(HecSimConfig::new(TOKEN)).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, false),
        Secret::new(TOKEN),
    )
    .unwrap();
    let client = client();
    let batch = records("drop", 3);

    // Closed before processing: nothing recorded, retried.
    sim.set_faults(Faults {
        drop_connections: 1,
        ..Faults::default()
    });
    for (_, c) in send_all(&sink, &client, &batch).await {
        assert!(c
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Retry { class, .. } if class == "connection_closed")));
        assert!(c.sink_down.is_some());
    }
    assert!(sim.received_event_ids().is_empty());

    // Closed after processing: recorded, the client cannot know: the re-send is a duplicate.
    sim.set_faults(Faults {
        drop_connections: 1,
        drop_mode: DropMode::AfterProcessing,
        ..Faults::default()
    });
    for (_, c) in send_all(&sink, &client, &batch).await {
        assert!(c
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Retry { .. })));
    }
    assert_eq!(sim.received_event_ids(), ids(&batch));
    let sent = send_all(&sink, &client, &batch).await;
    let pending = tokens(&sent);
    assert_eq!(
        poll_acks(&sink, &client, &pending, Duration::from_secs(5))
            .await
            .len(),
        pending.len()
    );
    assert_eq!(sim.stats().duplicate_events, 3);
    assert_eq!(sim.duplicate_event_ids().len(), 3);
    assert_eq!(sim.stats().dropped, 2);

    // Slower than the client's timeout: a timeout, retried.
    sim.set_faults(Faults {
        latency_ms: 500,
        ..Faults::default()
    });
    let impatient = pipeline::delivery::http::client(Duration::from_millis(100)).unwrap();
    for (_, c) in send_all(&sink, &impatient, &batch).await {
        assert!(c
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Retry { class, .. } if class == "timeout")));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_acks_arrive_late() {
    let sim = start(HecSimConfig::new(TOKEN)).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, false),
        Secret::new(TOKEN),
    )
    .unwrap();
    let client = client();
    sim.set_faults(Faults {
        ack_delay_ms: 1500,
        ..Faults::default()
    });
    let sent = send_all(&sink, &client, &records("slow", 2)).await;
    let pending = tokens(&sent);
    let early = poll_acks(&sink, &client, &pending, Duration::from_millis(100)).await;
    assert!(early.is_empty(), "not acknowledged before the delay");
    let late = poll_acks(&sink, &client, &pending, Duration::from_secs(3)).await;
    assert_eq!(late.len(), pending.len());
    sim.shutdown().await;
}

#[tokio::test]
async fn withheld_ack_times_out_and_the_batch_is_resent() {
    let sim = start(HecSimConfig::new(TOKEN)).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, false),
        Secret::new(TOKEN),
    )
    .unwrap();
    let client = client();
    // The first batch is never acknowledged, and its events are lost by the "indexer".
    sim.set_faults(Faults {
        withhold_acks: 1,
        lose_withheld: true,
        ..Faults::default()
    });
    let a = records("a", 3);
    let b = records("b", 3);
    let sent_a = send_all(&sink, &client, &a).await;
    let sent_b = send_all(&sink, &client, &b).await;
    let (ta, tb) = (tokens(&sent_a), tokens(&sent_b));
    let timeout = sink.ack_policy().unwrap().timeout;
    let mut all = ta.clone();
    all.extend(tb.iter().cloned());
    let acked = poll_acks(&sink, &client, &all, timeout).await;
    assert!(tb.iter().all(|t| acked.contains(t)));
    assert!(ta.iter().all(|t| !acked.contains(t)), "batch a is withheld");
    assert!(
        ids(&a).is_disjoint(&sim.received_event_ids()),
        "batch a was lost"
    );
    // Ack timeout: the engine re-sends batch a (not drop).
    let resent = send_all(&sink, &client, &a).await;
    let tr = tokens(&resent);
    assert_eq!(
        poll_acks(&sink, &client, &tr, Duration::from_secs(5))
            .await
            .len(),
        tr.len()
    );
    let mut want = ids(&a);
    want.extend(ids(&b));
    assert_eq!(sim.received_event_ids(), want);
    assert_eq!(sim.stats().acks_withheld, 1);
    assert_eq!(sim.stats().duplicate_events, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn load_balancer_cookie_change_resets_the_channel() {
    let mut cfg = HecSimConfig::new(TOKEN);
    cfg.cookie_name = Some("AWSALB".into());
    let sim = start(cfg).await;
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, false),
        Secret::new(TOKEN),
    )
    .unwrap();
    let client = client();
    sim.set_faults(Faults {
        ack_delay_ms: 60_000,
        ..Faults::default()
    }); // acks pending for now
    let first_channel = sink.channel();
    let batch = records("lb", 3);
    let sent = send_all(&sink, &client, &batch).await;
    assert!(
        sent.iter().all(|(_, c)| c.ack_reset.is_none()),
        "first cookie: learnt, no reset"
    );
    let pending = tokens(&sent);
    assert!(pending.iter().all(|t| t.channel == first_channel));
    // The next request carries the cookie.
    let again = sink
        .build(&batch[..1], SystemTime::now())
        .requests
        .remove(0);
    assert_eq!(again.header("cookie"), Some("AWSALB=indexer-0"));

    // The load balancer moves us to another indexer: pending acks are gone there.
    sim.rotate_cookie();
    sim.clear_faults();
    let poll = sink.ack_poll(&pending).remove(0);
    let resp = send(&client, &poll).await.unwrap();
    let report = sink.parse_acks(&poll, &resp).unwrap();
    assert!(report.acked.is_empty());
    assert_eq!(report.ack_reset.unwrap().channel, first_channel);
    assert_ne!(sink.channel(), first_channel);

    // The engine re-sends the voided batch on the new channel, with the new cookie.
    let resent = send_all(&sink, &client, &batch).await;
    let tr = tokens(&resent);
    assert!(tr.iter().all(|t| t.channel == sink.channel()));
    assert_eq!(resent[0].0.header("cookie"), Some("AWSALB=indexer-1"));
    assert_eq!(
        poll_acks(&sink, &client, &tr, Duration::from_secs(5))
            .await
            .len(),
        tr.len()
    );
    assert_eq!(sim.received_event_ids(), ids(&batch));
    sim.shutdown().await;
}

#[tokio::test]
async fn control_endpoints_over_http() {
    let sim = start(HecSimConfig::new(TOKEN)).await;
    let executor = client();
    // Control endpoints are plain HTTP calls, not sink requests.
    let control = reqwest::Client::new();
    let r = control
        .post(format!("{}/_sim/faults", sim.url()))
        .body(r#"{"statuses":[{"status":503,"count":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(sim.faults().statuses.len(), 1);
    let bad = control
        .post(format!("{}/_sim/faults", sim.url()))
        .body(r#"{"nope":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let sink = SplunkHecSink::new(
        "hec",
        hec_config(&sim.url(), true, false),
        Secret::new(TOKEN),
    )
    .unwrap();
    let batch = records("ctl", 2);
    let first = send_all(&sink, &executor, &batch).await;
    assert!(matches!(first[0].1.outcomes[0], Outcome::Retry { .. }));
    let sent = send_all(&sink, &executor, &batch).await;
    poll_acks(&sink, &executor, &tokens(&sent), Duration::from_secs(5)).await;
    let got: serde_json::Value = control
        .get(format!("{}/_sim/received", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["event_ids"], serde_json::json!(["ctl-0", "ctl-1"]));
    assert_eq!(got["stats"]["faulted"], 1);
    assert_eq!(got["stats"]["duplicate_events"], 0);
    let r = control
        .post(format!("{}/_sim/rotate_cookie", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    control
        .post(format!("{}/_sim/reset", sim.url()))
        .send()
        .await
        .unwrap();
    assert!(sim.received_event_ids().is_empty());
    sim.shutdown().await;
}
