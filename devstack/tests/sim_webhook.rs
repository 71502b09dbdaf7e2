//! The webhook sink (processors) against the webhook receiver simulator (devstack): signed
//! requests built by our sink, sent over real HTTP, verified by the simulator and, again, by an
//! independent HMAC-SHA256 written here from SHA-256 alone (RFC 2104).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use devstack::sim::{
    DropMode, Faults, SimConfig, SimKind, SimServer, StatusRule, WebhookSimConfig,
};
use processors::secret::Secret;
use processors::sink::webhook::{WebhookConfig, WebhookSink};
use processors::sink::{Credentials, Outcome, PayloadFormat, RetryAfter, Sink, SinkRecord};
use sha2::{Digest, Sha256};

const CURRENT: &str = "whsec_current_5f1c9a";
const PREVIOUS: &str = "whsec_previous_0b7e42";

/// HMAC-SHA256 per RFC 2104: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)), block size 64.
fn hmac_sha256_by_hand(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(t, [v1…])` from `t=…,v1=…,v1=…`.
fn parse_header(v: &str) -> (u64, Vec<String>) {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in v.split(',') {
        let (k, val) = part.split_once('=').unwrap();
        match k {
            "t" => t = Some(val.parse().unwrap()),
            "v1" => sigs.push(val.to_string()),
            other => panic!("unexpected scheme {other}"),
        }
    }
    (t.unwrap(), sigs)
}

/// Checks, independently of our signer and of the simulator, that `header` signs `body` with
/// each of `secrets`, in order.
fn verify_independently(header: &str, body: &[u8], secrets: &[&str]) {
    let (t, sigs) = parse_header(header);
    assert_eq!(sigs.len(), secrets.len());
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    for (sig, secret) in sigs.iter().zip(secrets) {
        assert_eq!(*sig, hex(&hmac_sha256_by_hand(secret.as_bytes(), &message)));
    }
}

/// The delivery engine's own HTTP executor, so these tests send exactly what a sink stage sends.
use pipeline::delivery::http::{send, Executor};

fn client() -> Executor {
    pipeline::delivery::http::client(Duration::from_secs(5)).unwrap()
}

fn records(prefix: &str, n: usize) -> Vec<SinkRecord> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let (payload, format) = if i % 5 == 4 {
                (
                    format!("CEF:0|secflow|test|1|100|Event {id}|5|src=10.0.0.1"),
                    PayloadFormat::Cef,
                )
            } else {
                (
                    format!(r#"{{"@timestamp":"2024-01-01T00:00:00Z","event":{{"id":"{id}"}}}}"#),
                    PayloadFormat::Ecs,
                )
            };
            SinkRecord {
                event_id: Some(id),
                tenant: Some("acme".into()),
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

fn hook_config(url: &str, extra: serde_json::Value) -> WebhookConfig {
    let mut v = serde_json::json!({
        "url": format!("{url}/hooks/secflow"),
        "signing_secrets": [{"env": "HOOK_SECRET"}, {"env": "HOOK_SECRET_OLD"}],
    });
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            m.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

fn secrets() -> Vec<Secret> {
    vec![Secret::new(CURRENT), Secret::new(PREVIOUS)]
}

async fn start(config: WebhookSimConfig) -> SimServer {
    SimServer::start(SimKind::Webhook(config), SimConfig::default())
        .await
        .unwrap()
}

/// One attempt at `now`: (batch index, outcome) per record.
async fn attempt(
    sink: &WebhookSink,
    batch: &[SinkRecord],
    now: SystemTime,
) -> Vec<(usize, Outcome)> {
    let client = client();
    let built = sink.build(batch, now);
    assert!(built.rejected.is_empty());
    let mut out = Vec::new();
    for req in &built.requests {
        let c = match send(&client, req).await {
            Ok(resp) => sink.classify(req, &resp),
            Err(e) => sink.classify_transport_error(req, &e),
        };
        out.extend(req.records.iter().copied().zip(c.outcomes));
    }
    out.sort_by_key(|(i, _)| *i);
    out
}

#[test]
fn the_hand_written_hmac_matches_rfc_4231() {
    // Test case 2.
    assert_eq!(
        hex(&hmac_sha256_by_hand(
            b"Jefe",
            b"what do ya want for nothing?"
        )),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Test case 6: a key longer than the block is hashed first.
    assert_eq!(
        hex(&hmac_sha256_by_hand(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[tokio::test]
async fn signed_batches_verify_during_a_rotation() {
    // The receiver still only knows the previous secret: the second `v1` carries the request.
    let sim = start(WebhookSimConfig::new(PREVIOUS)).await;
    let sink = WebhookSink::new(
        "hook",
        hook_config(
            &sim.url(),
            serde_json::json!({"max_events_per_request": 10, "headers": {"X-Team": "soc"}}),
        ),
        None,
        secrets(),
    )
    .unwrap();
    let batch = records("ok", 40);
    let outcomes = attempt(&sink, &batch, SystemTime::now()).await;
    assert!(
        outcomes.iter().all(|(_, o)| *o == Outcome::Delivered),
        "{outcomes:?}"
    );
    assert_eq!(sim.received_event_ids(), ids(&batch));
    let received = sim.received_requests();
    assert_eq!(received.len(), 4);
    for r in &received {
        assert_eq!(r.status, 200);
        assert_eq!(r.path, "/hooks/secflow");
        assert_eq!(r.header("x-team"), Some("soc"));
        verify_independently(
            r.header("x-secflow-signature").unwrap(),
            &r.body,
            &[CURRENT, PREVIOUS],
        );
    }
    assert_eq!(sim.stats().duplicate_events, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn event_mode_with_template_bearer_and_gzip() {
    let mut cfg = WebhookSimConfig::new(CURRENT);
    cfg.bearer = Some("hook-token".into());
    let sim = start(cfg).await;
    let sink = WebhookSink::new(
        "hook",
        hook_config(
            &sim.url(),
            serde_json::json!({
                "mode": "event",
                "gzip": true,
                "template": r#"{"source": "secflow", "event_id": {{event_id}}, "tenant": {{tenant}}, "event": {{event}}}"#,
                "auth": {"bearer": {"env": "HOOK_TOKEN"}},
            }),
        ),
        Some(Credentials::Bearer(Secret::new("hook-token"))),
        vec![Secret::new(CURRENT)],
    )
    .unwrap();
    let batch = records("ev", 6);
    let outcomes = attempt(&sink, &batch, SystemTime::now()).await;
    assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Delivered));
    assert_eq!(sim.received_event_ids(), ids(&batch));
    for r in sim.received_requests() {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        // The recorded body is the decompressed one, and that is what was signed.
        verify_independently(
            r.header("x-secflow-signature").unwrap(),
            &r.body,
            &[CURRENT],
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["source"], "secflow");
        assert_eq!(r.header("x-secflow-event-id"), v["event_id"].as_str());
    }
    // A wrong bearer token: 401, permanent, the sink is down.
    let wrong = WebhookSink::new(
        "hook",
        hook_config(&sim.url(), serde_json::json!({"mode": "event"})),
        Some(Credentials::Bearer(Secret::new("nope"))),
        vec![Secret::new(CURRENT)],
    )
    .unwrap();
    let outcomes = attempt(&wrong, &batch[..1], SystemTime::now()).await;
    assert!(
        matches!(&outcomes[0].1, Outcome::Permanent { class, status: Some(401), .. } if class == "auth")
    );
    assert_eq!(sim.stats().auth_failures, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn tampered_bodies_stale_timestamps_and_unknown_secrets_are_refused() {
    let sim = start(WebhookSimConfig::new(CURRENT)).await;
    let client = client();
    let sink = WebhookSink::new(
        "hook",
        hook_config(&sim.url(), serde_json::json!({})),
        None,
        secrets(),
    )
    .unwrap();
    let batch = records("t", 2);

    let mut req = sink.build(&batch, SystemTime::now()).requests.remove(0);
    let text = String::from_utf8(req.body.clone()).unwrap();
    req.body = text.replace("t-1", "t-9").into_bytes(); // still valid JSON, one byte changed
    assert_ne!(req.body, text.as_bytes());
    let resp = send(&client, &req).await.unwrap();
    assert_eq!(resp.status, 401);
    let c = sink.classify(&req, &resp);
    assert!(c.outcomes.iter().all(|o| matches!(
        o,
        Outcome::Permanent {
            status: Some(401),
            ..
        }
    )));
    // The independent check refuses it too.
    let (t, sigs) = parse_header(req.header("x-secflow-signature").unwrap());
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(&req.body);
    assert_ne!(
        sigs[0],
        hex(&hmac_sha256_by_hand(CURRENT.as_bytes(), &message))
    );

    // Signed ten minutes ago: outside the 300 s tolerance.
    let stale = attempt(&sink, &batch, SystemTime::now() - Duration::from_secs(600)).await;
    assert!(stale.iter().all(|(_, o)| matches!(
        o,
        Outcome::Permanent {
            status: Some(401),
            ..
        }
    )));

    // Signed with secrets the receiver does not know.
    let stranger = WebhookSink::new(
        "hook",
        hook_config(&sim.url(), serde_json::json!({})),
        None,
        vec![Secret::new("whsec_other")],
    )
    .unwrap();
    let o = attempt(&stranger, &batch, SystemTime::now()).await;
    assert!(o
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Permanent { .. })));

    // Unsigned.
    let unsigned = WebhookSink::new(
        "hook",
        hook_config(&sim.url(), serde_json::json!({"signing_secrets": []})),
        None,
        vec![],
    )
    .unwrap();
    let o = attempt(&unsigned, &batch, SystemTime::now()).await;
    assert!(o.iter().all(|(_, o)| matches!(
        o,
        Outcome::Permanent {
            status: Some(400),
            ..
        }
    )));

    assert_eq!(sim.stats().bad_signatures, 4);
    assert!(
        sim.received_event_ids().is_empty(),
        "nothing unverified is recorded"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn replays_are_refused_and_read_as_duplicates() {
    let sim = start(WebhookSimConfig::new(CURRENT)).await;
    let client = client();
    let sink = WebhookSink::new(
        "hook",
        hook_config(&sim.url(), serde_json::json!({})),
        None,
        secrets(),
    )
    .unwrap();
    let batch = records("r", 3);
    let req = sink.build(&batch, SystemTime::now()).requests.remove(0);
    let first = send(&client, &req).await.unwrap();
    assert_eq!(first.status, 200);
    let replay = send(&client, &req).await.unwrap();
    assert_eq!(replay.status, 409);
    assert_eq!(sim.stats().replays, 1);
    // The receiver has these exact bytes already: delivered, not lost, not dead-lettered.
    assert!(sink
        .classify(&req, &replay)
        .outcomes
        .iter()
        .all(|o| *o == Outcome::Duplicate));
    assert_eq!(sim.stats().duplicate_events, 0);
    // A re-send built for a later attempt carries a new signature and is accepted (visible as a
    // duplicate by event id, which is what at-least-once means).
    let later = SystemTime::now() + Duration::from_secs(2);
    let o = attempt(&sink, &batch, later).await;
    assert!(o.iter().all(|(_, o)| *o == Outcome::Delivered));
    assert_eq!(sim.stats().duplicate_events, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_faults() {
    let sim = start(WebhookSimConfig::new(CURRENT)).await;
    let sink = WebhookSink::new(
        "hook",
        hook_config(&sim.url(), serde_json::json!({})),
        None,
        secrets(),
    )
    .unwrap();
    let batch = records("f", 4);
    sim.set_faults(Faults {
        statuses: vec![
            StatusRule::times(500, 1).with_retry_after("2"),
            StatusRule::times(429, 1),
        ],
        ..Faults::default()
    });
    let o = attempt(&sink, &batch, SystemTime::now()).await;
    assert!(o.iter().all(|(_, o)| matches!(o, Outcome::Retry { class, retry_after: Some(RetryAfter::Delay(d)), .. } if class == "server_error" && *d == Duration::from_secs(2))));
    let o = attempt(&sink, &batch, SystemTime::now()).await;
    assert!(o
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Retry { class, .. } if class == "rate_limited")));
    sim.set_faults(Faults {
        drop_connections: 1,
        drop_mode: DropMode::BeforeProcessing,
        ..Faults::default()
    });
    let o = attempt(&sink, &batch, SystemTime::now()).await;
    assert!(o
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Retry { class, .. } if class == "connection_closed")));
    let o = attempt(&sink, &batch, SystemTime::now()).await;
    assert!(o.iter().all(|(_, o)| *o == Outcome::Delivered));
    assert_eq!(sim.received_event_ids(), ids(&batch));
    let stats = sim.stats();
    assert_eq!((stats.faulted, stats.dropped, stats.requests), (2, 1, 4));
    // Nothing listening: connection refused.
    let addr = sim.url();
    sim.shutdown().await;
    let gone = WebhookSink::new(
        "hook",
        hook_config(&addr, serde_json::json!({})),
        None,
        secrets(),
    )
    .unwrap();
    let o = attempt(&gone, &batch, SystemTime::now()).await;
    assert!(o
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Retry { class, .. } if class == "connect")));
}
