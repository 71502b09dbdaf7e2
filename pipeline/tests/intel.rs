//! Threat intel through real protocols: OASIS medallion (TAXII 2.1) → the `intel_poll` stage →
//! tansu (indicator, review and checkpoint topics) → the `enrich` stage (RocksDB table) → the
//! enriched topic.
//!
//! medallion comes from the project venv (`scripts/bootstrap.sh`); without it these tests fail
//! with the fix, unless `SECFLOW_SKIP_PYTHON=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use devstack::taxii::{find_medallion, Medallion, MedallionSetup, TaxiiCollection};
use pipeline::codec::CanonicalCodec;
use pipeline::intel::{read_to_end, IndicatorCodec};
use pipeline::stage::enrich::{self, EnrichReport};
use pipeline::stage::intel_poll::{self, PollMode, PollReport};
use pipeline::stage::{self, RunLimits};
use pipeline::topology::{StageConfig, TopicRole, Topology};
use processors::event::SecurityEvent;
use processors::intel::indicator::{Indicator, IndicatorSource, Review, Tlp};
use processors::intel::pattern::{AtomicIoc, IocType};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::{json, Value};
use sha2::Digest;

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const USER: &str = "admin";
const PASSWORD: &str = "Password0";
const COLLECTION: &str = "6a1e3c55-2f0b-4f1e-9d1a-5b7c9e2d4f60";
/// TLP:AMBER (STIX 2.1 TLP 1.0 marking, fixed id).
const TLP_AMBER: &str = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";
/// A TLP:RED marking definition of the feed's own (not one of the fixed ids).
const CUSTOM_RED: &str = "marking-definition--aaaaaaaa-0000-4000-8000-00000000beef";

fn medallion_available(test: &str) -> bool {
    match find_medallion() {
        Ok(_) => true,
        Err(e) if std::env::var("SECFLOW_SKIP_PYTHON").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: {test} ({e}; SECFLOW_SKIP_PYTHON=1)");
            false
        }
        Err(e) => panic!(
            "{e}.\nThe TAXII integration tests need OASIS medallion from the project venv: run \
             `bash scripts/bootstrap.sh` (SECFLOW_SKIP_PYTHON=1 skips these tests)."
        ),
    }
}

fn start_medallion(setup: MedallionSetup) -> Medallion {
    Medallion::start(&setup).unwrap_or_else(|e| panic!("medallion did not start: {e}"))
}

fn ts(ms: i64) -> String {
    processors::event::format_rfc3339(ms).unwrap()
}

fn indicator_id(i: usize) -> String {
    format!("indicator--{i:08x}-0000-4000-8000-{i:012x}")
}

fn ip_of(i: usize) -> String {
    format!("10.66.{}.{}", i / 200, i % 200)
}

fn stix_indicator(i: usize, modified_ms: i64, pattern: &str) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(i),
        "created": ts(T0),
        "modified": ts(modified_ms),
        "name": format!("C2 address {i}"),
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": ts(T0),
        "confidence": 80,
        "object_marking_refs": [TLP_AMBER],
    })
}

fn ip_indicator(i: usize) -> Value {
    stix_indicator(i, T0, &format!("[ipv4-addr:value = '{}']", ip_of(i)))
}

/// The stages of these tests: a poller on `url` (basic auth, password from a file) for the
/// given collections, and an enricher with its table in `store`.
fn intel_stages(url: &str, collections: &[&str], dir: &Path) -> String {
    let password = dir.join("taxii-password");
    std::fs::write(&password, PASSWORD).unwrap();
    let mut text = format!(
        "  - type: intel_poll\n    name: feeds\n    max_attempts: 3\n    servers:\n      - name: lab\n        url: {url}\n        allow_http: true\n        timeout_secs: 30\n        page_size: 100\n        auth: {{basic: {{username: {USER}, password: {{file: {}}}}}}}\n        collections:\n",
        password.display()
    );
    for c in collections {
        text.push_str(&format!("          - {{api_root: /api1/, id: {c}}}\n"));
    }
    text.push_str(&format!(
        "  - type: enrich\n    name: enrich\n    max_batch: 500\n    store: {{path: {}, block_cache_mb: 8, write_buffer_mb: 8}}\n",
        dir.join("store").display()
    ));
    text
}

fn poll_stage(t: &Topology) -> pipeline::topology::IntelPollStage {
    match t.stage("feeds") {
        Some(StageConfig::IntelPoll(s)) => (**s).clone(),
        other => panic!("no intel_poll stage: {other:?}"),
    }
}

fn enrich_stage(t: &Topology) -> pipeline::topology::EnrichStage {
    match t.stage("enrich") {
        Some(StageConfig::Enrich(s)) => (**s).clone(),
        other => panic!("no enrich stage: {other:?}"),
    }
}

async fn poll_once(t: &Topology) -> PollReport {
    intel_poll::run(t, &poll_stage(t), PollMode::Once, stage::never())
        .await
        .unwrap()
}

async fn run_enrich(t: &Topology, stage: &pipeline::topology::EnrichStage, n: u64) -> EnrichReport {
    let limits = RunLimits {
        max_records: Some(n),
        idle_exit: Some(Duration::from_secs(120)),
    };
    enrich::run(t, stage, limits, stage::never()).await.unwrap()
}

/// One record of a topic, as read back.
#[derive(Debug, Clone)]
struct Read {
    key: Option<String>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
}

async fn read_topic(t: &Topology, topic: &str) -> Vec<Read> {
    let k = t.kafka.clone();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        read_to_end(&k, "test-reader", &topic, |m| {
            out.push(Read {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        })
        .unwrap();
        out
    })
    .await
    .unwrap()
}

/// The indicator topic compacted by hand: the latest value per key (`None` = tombstone).
async fn indicator_table(t: &Topology) -> BTreeMap<String, Option<Indicator>> {
    let codec = IndicatorCodec::new(&t.schema_registry).unwrap();
    let mut table = BTreeMap::new();
    for r in read_topic(t, &t.topics.resolved(TopicRole::Indicators).name).await {
        let value = match &r.value {
            Some(v) => Some(codec.decode(v).await.unwrap()),
            None => None,
        };
        table.insert(r.key.unwrap(), value);
    }
    table
}

/// Enriched events by id: the indicator ids and fields matched.
async fn enriched(t: &Topology) -> (Vec<Read>, BTreeMap<String, SecurityEvent>) {
    let codec = CanonicalCodec::new(&t.schema_registry).unwrap();
    let records = read_topic(t, &t.topics.resolved(TopicRole::Enriched).name).await;
    let mut events = BTreeMap::new();
    for r in &records {
        let e = codec.decode(r.value.as_deref()).await.unwrap();
        events.insert(e.event_id.clone(), e);
    }
    (records, events)
}

fn matched(e: &SecurityEvent) -> BTreeSet<(String, String)> {
    e.enrichments
        .iter()
        .map(|x| (x.indicator_id.clone(), x.matched_field.clone()))
        .collect()
}

fn base_event(id: &str) -> Value {
    json!({
        "event_id": id,
        "event_time": T0 + 3_600_000,
        "observed_time": T0 + 3_600_000,
        "tenant": "acme",
        "kind": "event",
        "category": "network",
        "activity": "traffic",
        "action": "allowed",
        "outcome": "success",
        "severity": "info",
        "message": "connection",
        "product": {"vendor": "secflow", "name": "intel-test"},
        "network": {"src_ip": "192.0.2.10", "dst_ip": "192.0.2.20"},
    })
}

fn traceparent(i: usize) -> String {
    format!("00-{:032x}-{:016x}-01", i + 1, i + 1)
}

/// Produces canonical events (key = tenant, a `traceparent` header each).
async fn produce_events(t: &Topology, events: &[Value]) {
    let codec = CanonicalCodec::new(&t.schema_registry).unwrap();
    let topic = t.topics.resolved(TopicRole::Canonical).name;
    let producer = pipeline::kafka::idempotent_producer(&t.kafka, "test-events").unwrap();
    let mut pending = Vec::new();
    for (i, v) in events.iter().enumerate() {
        let e = SecurityEvent::from_json(&v.to_string())
            .unwrap_or_else(|err| panic!("test event {v}: {err}"));
        let bytes = codec.encode(&topic, &e).await.unwrap();
        let tp = traceparent(i);
        let rec = FutureRecord::to(&topic)
            .key(e.tenant.as_str())
            .payload(&bytes)
            .headers(OwnedHeaders::new().insert(Header {
                key: "traceparent",
                value: Some(tp.as_str()),
            }));
        pending.push(producer.send_result(rec).map_err(|(e, _)| e).unwrap());
        if pending.len() >= 5000 {
            for p in pending.drain(..) {
                p.await.unwrap().unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
}

/// Adds objects to a running medallion (`date_added` = now).
async fn post_objects(m: &Medallion, collection: &str, objects: Vec<Value>) {
    let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
    let resp = reqwest::Client::new()
        .post(m.objects_url(collection))
        .basic_auth(USER, Some(PASSWORD))
        .header("Accept", devstack::taxii::TAXII_MEDIA_TYPE)
        .header("Content-Type", devstack::taxii::TAXII_MEDIA_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, 202, "POST objects: {text}\n{}", m.log_tail(2000));
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("secflow-intel-")
        .tempdir()
        .unwrap()
}

/// Full poll with pagination, incremental poll of only the new objects after a restart of the
/// poller (checkpoint), a modified indicator whose old IOC stops matching, a revoked one that
/// becomes a tombstone, and the enricher seeing all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxii_poll_paginates_resumes_and_follows_changes() {
    if !medallion_available("taxii_poll_paginates_resumes_and_follows_changes") {
        return;
    }
    let n = 250;
    let mut c = TaxiiCollection::new(COLLECTION, "lab feed");
    // A TLP marking of the feed's own, defined once, before any indicator uses it.
    c.push(
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": CUSTOM_RED,
            "created": ts(T0 - 1000),
            "definition_type": "tlp",
            "definition": {"tlp": "red"},
        }),
        T0 - 1000,
    );
    c.push_all((0..n).map(ip_indicator), T0, 1000);
    let medallion = start_medallion(MedallionSetup {
        max_page_size: 100,
        collections: vec![c],
        ..MedallionSetup::default()
    });
    let dir = scratch();
    let env = common::env(&intel_stages(
        &medallion.discovery_url(),
        &[COLLECTION],
        dir.path(),
    ))
    .await;
    let t = &env.topology;

    // 1. First poll: 250 indicators in three pages of at most 100.
    let first = poll_once(t).await;
    let key = first.collections.keys().next().cloned().unwrap();
    let c1 = &first.collections[&key];
    assert!(first.errors().is_empty(), "{first:?}");
    assert_eq!(
        (c1.pages, c1.objects, c1.published, c1.skipped),
        (3, 251, 250, 1),
        "{c1:?}"
    );
    let last_added = devstack::taxii::taxii_timestamp(T0 + (n as i64 - 1) * 1000);
    assert_eq!(c1.checkpoint.as_deref(), Some(last_added.as_str()));
    let table = indicator_table(t).await;
    assert_eq!(table.len(), n);
    let i7 = table[&indicator_id(7)].clone().unwrap();
    assert_eq!(
        i7.iocs,
        vec![AtomicIoc {
            ioc_type: IocType::Ipv4,
            value: ip_of(7)
        }]
    );
    assert_eq!(i7.tlp, Some(Tlp::Amber));
    assert_eq!(i7.source.server, "lab");
    assert_eq!(i7.source.collection, COLLECTION);
    let checkpoints = read_topic(t, &t.topics.resolved(TopicRole::Checkpoints).name).await;
    assert_eq!(checkpoints.len(), 3, "one checkpoint per page");
    let cp: Value = serde_json::from_slice(checkpoints[2].value.as_ref().unwrap()).unwrap();
    assert_eq!(cp["added_after"], last_added.as_str());
    assert_eq!(checkpoints[2].key.as_deref(), Some(key.as_str()));

    // 2. New objects on the server: 20 new indicators, a modified version of 5 (another
    // address) and a revoked version of 6.
    let t1 = T0 + 86_400_000;
    let mut added: Vec<Value> = (n..n + 20).map(ip_indicator).collect();
    added[0]["object_marking_refs"] = json!([CUSTOM_RED]);
    added.push(stix_indicator(5, t1, "[ipv4-addr:value = '10.77.0.5']"));
    let mut revoked = ip_indicator(6);
    revoked["modified"] = json!(ts(t1));
    revoked["revoked"] = json!(true);
    added.push(revoked);
    post_objects(&medallion, COLLECTION, added).await;

    // 3. A new run (a restart): resumes from the checkpoint, reads only the 22 new objects,
    // writes nothing twice.
    let second = poll_once(t).await;
    let c2 = &second.collections[&key];
    assert!(second.errors().is_empty(), "{second:?}");
    assert_eq!(second.checkpoints_read, 3);
    assert_eq!(second.seeded, 250);
    assert_eq!(c2.objects, 22, "only the new objects: {c2:?}");
    assert_eq!(
        (c2.published, c2.tombstones, c2.duplicates),
        (21, 1, 0),
        "{c2:?}"
    );
    let table = indicator_table(t).await;
    assert_eq!(table.len(), n + 20);
    assert!(table[&indicator_id(6)].is_none(), "revoked → tombstone");
    let i5 = table[&indicator_id(5)].clone().unwrap();
    assert_eq!(i5.iocs[0].value, "10.77.0.5");
    assert_eq!(i5.modified, t1);
    // The marking was defined in the first run's poll: the checkpoint carried it over.
    assert_eq!(table[&indicator_id(n)].clone().unwrap().tlp, Some(Tlp::Red));

    // 4. Nothing new: nothing fetched, nothing written.
    let third = poll_once(t).await;
    let c3 = &third.collections[&key];
    assert_eq!(
        (c3.objects, c3.published, c3.tombstones),
        (0, 0, 0),
        "{c3:?}"
    );

    // 5. The enricher: the old address of 5 and the revoked 6 no longer match.
    let events: Vec<Value> = [
        ("old-ioc-of-5", "10.66.0.5"),
        ("new-ioc-of-5", "10.77.0.5"),
        ("revoked-6", &ip_of(6)),
        ("plain-7", &ip_of(7)),
        ("page-3-215", &ip_of(215)),
        ("new-260", &ip_of(260)),
        ("benign", "192.0.2.99"),
    ]
    .iter()
    .map(|(id, ip)| {
        let mut e = base_event(id);
        e["network"]["dst_ip"] = json!(ip);
        e
    })
    .collect();
    produce_events(t, &events).await;
    let report = run_enrich(t, &enrich_stage(t), events.len() as u64).await;
    assert_eq!(report.records, 7, "{report:?}");
    assert_eq!(report.indicators, (n + 20 - 1) as u64, "{report:?}");
    let (_, out) = enriched(t).await;
    let want = |ids: &[usize]| -> BTreeSet<(String, String)> {
        ids.iter()
            .map(|i| (indicator_id(*i), "network.dst_ip".to_string()))
            .collect()
    };
    assert_eq!(matched(&out["old-ioc-of-5"]), want(&[]));
    assert_eq!(matched(&out["new-ioc-of-5"]), want(&[5]));
    assert_eq!(matched(&out["revoked-6"]), want(&[]));
    assert_eq!(matched(&out["plain-7"]), want(&[7]));
    assert_eq!(matched(&out["page-3-215"]), want(&[215]));
    assert_eq!(matched(&out["new-260"]), want(&[260]));
    assert_eq!(matched(&out["benign"]), want(&[]));
    let e7 = &out["plain-7"].enrichments[0];
    assert_eq!(
        (e7.tlp.as_deref(), e7.confidence, e7.provider.as_str()),
        (Some("amber"), Some(80), "lab")
    );
    drop(medallion);
    env.stack.stop().await;
}

fn bundle(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/validation/stix/bundles")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["objects"].as_array().unwrap().clone()
}

/// The three real bundles, one collection each: 12 indicators published, 4 patterns that are
/// not joinable to review with the reason, and events matching the published ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_bundles_ingest_end_to_end() {
    if !medallion_available("real_bundles_ingest_end_to_end") {
        return;
    }
    let names = [
        ("apt1", "apt1.json"),
        ("c2-coa", "indicators-for-C2-with-COA.json"),
        ("email", "malicious-email-indicator-with-attachment.json"),
    ];
    let mut collections = Vec::new();
    for (id, file) in names {
        let mut c = TaxiiCollection::new(id, file);
        c.push_all(bundle(file), T0, 1000);
        collections.push(c);
    }
    let medallion = start_medallion(MedallionSetup {
        collections,
        ..MedallionSetup::default()
    });
    let dir = scratch();
    let env = common::env(&intel_stages(
        &medallion.discovery_url(),
        &["apt1", "c2-coa", "email"],
        dir.path(),
    ))
    .await;
    let t = &env.topology;
    let report = poll_once(t).await;
    assert!(report.errors().is_empty(), "{report:?}");
    let per: BTreeMap<&str, (u64, u64)> = report
        .collections
        .iter()
        .map(|(k, c)| (k.rsplit('|').next().unwrap(), (c.published, c.reviews)))
        .collect();
    assert_eq!(
        per,
        BTreeMap::from([("apt1", (10, 2)), ("c2-coa", (2, 0)), ("email", (0, 2))]),
        "{report:?}"
    );
    let table = indicator_table(t).await;
    let live: BTreeSet<&str> = table
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(live.len(), 12);
    let reviews = read_topic(t, &t.topics.resolved(TopicRole::Review).name).await;
    assert_eq!(reviews.len(), 4);
    for r in &reviews {
        let review: Review = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        assert_eq!(r.key.as_deref(), Some(review.id.as_str()));
        assert_eq!(review.reason.as_str(), "not_joinable", "{review:?}");
        assert!(!review.detail.is_empty());
        assert!(
            table[&review.id].is_none(),
            "a reviewed indicator is a tombstone"
        );
    }

    let mut events = Vec::new();
    let mut e = base_event("apt1-cidr");
    e["network"]["dst_ip"] = json!("223.167.10.20");
    events.push(e);
    let mut e = base_event("apt1-domain");
    e["network"]["dst_hostname"] = json!("mail.hugesoft.org");
    events.push(e);
    let mut e = base_event("apt1-md5");
    e["file"] = json!({"path": "/tmp/dropper.exe", "md5": "001DD76872D80801692FF942308C64E6"});
    events.push(e);
    let mut e = base_event("c2-ip");
    e["network"]["src_ip"] = json!("10.0.0.0");
    events.push(e);
    let mut e = base_event("c2-sha256");
    e["file"] = json!({"path": "/tmp/x", "sha256": "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"});
    events.push(e);
    let mut e = base_event("nothing");
    e["network"]["dst_hostname"] = json!("nothugesoft.org");
    events.push(e);
    produce_events(t, &events).await;
    let report = run_enrich(t, &enrich_stage(t), events.len() as u64).await;
    assert_eq!(report.records, 6, "{report:?}");
    assert_eq!(report.indicators, 12, "{report:?}");
    let (_, out) = enriched(t).await;
    let m = |id: &str| matched(&out[id]);
    let one = |ind: &str, field: &str| BTreeSet::from([(ind.to_string(), field.to_string())]);
    assert_eq!(
        m("apt1-cidr"),
        one(
            "indicator--031778a4-057f-48e6-9db9-c8d72b81ccd5",
            "network.dst_ip"
        )
    );
    assert_eq!(
        m("apt1-domain"),
        one(
            "indicator--3f3ff9f1-bb4e-4392-89e5-1991179042ba",
            "network.dst_hostname"
        )
    );
    assert_eq!(
        m("apt1-md5"),
        one(
            "indicator--8d12f44f-8ac0-4b12-8b4a-3699ca8c9691",
            "file.md5"
        )
    );
    assert_eq!(
        m("c2-ip"),
        one(
            "indicator--53fe3b22-0201-47cf-85d0-97c02164528d",
            "network.src_ip"
        )
    );
    assert_eq!(
        m("c2-sha256"),
        one(
            "indicator--a932fcc6-e032-476c-826f-cb970a5a1ade",
            "file.sha256"
        )
    );
    assert!(m("nothing").is_empty());
    drop(medallion);
    env.stack.stop().await;
}

/// A collection whose server fails is reported with its server and collection and skipped;
/// the others are polled. Through the CLI: `secflow intel poll --once` exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_collections_are_reported_and_skipped() {
    if !medallion_available("failing_collections_are_reported_and_skipped") {
        return;
    }
    let mut c = TaxiiCollection::new(COLLECTION, "lab feed");
    c.push_all((0..3).map(ip_indicator), T0, 1000);
    let medallion = start_medallion(MedallionSetup {
        collections: vec![c],
        ..MedallionSetup::default()
    });
    let dir = scratch();
    let mut stages = intel_stages(
        &medallion.discovery_url(),
        &[COLLECTION, "no-such-collection"],
        dir.path(),
    );
    let wrong = dir.path().join("wrong-password");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let insert_at = stages.find("  - type: enrich").unwrap();
    stages.insert_str(
        insert_at,
        &format!(
            "      - name: locked\n        url: {}\n        allow_http: true\n        auth: {{basic: {{username: {USER}, password: {{file: {}}}}}}}\n        collections:\n          - {{api_root: /api1/, id: {COLLECTION}}}\n",
            medallion.discovery_url(),
            wrong.display()
        ),
    );
    let env = common::env(&stages).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secflow"))
        .env("SECFLOW_LOG_FORMAT", "json")
        .args(["intel", "poll", "--once", "--topology"])
        .arg(&env.topology_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 indicators"), "{stdout}");
    assert!(
        stdout.contains("no-such-collection") && stdout.contains("not found (HTTP 404)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("locked|") && stdout.contains("HTTP 401"),
        "{stdout}"
    );
    // The logs name the server and the collection.
    assert!(
        stderr.contains("\"server\":\"locked\"") && stderr.contains(COLLECTION),
        "{stderr}"
    );
    assert_eq!(indicator_table(&env.topology).await.len(), 3);
    drop(medallion);
    env.stack.stop().await;
}

/// A TAXII server answering 429 with `Retry-After` before serving the page: the poller waits
/// and retries the same request (a small axum server speaking TAXII, as medallion cannot
/// rate-limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_server_is_retried_after_retry_after() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;

    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let objects = move || {
        let h = h.clone();
        async move {
            if h.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut headers = HeaderMap::new();
                headers.insert("Retry-After", "1".parse().unwrap());
                return (StatusCode::TOO_MANY_REQUESTS, headers, String::new()).into_response();
            }
            let mut headers = HeaderMap::new();
            headers.insert(
                "Content-Type",
                devstack::taxii::TAXII_MEDIA_TYPE.parse().unwrap(),
            );
            headers.insert(
                "X-TAXII-Date-Added-Last",
                "2024-01-01T00:00:01.000000Z".parse().unwrap(),
            );
            let body = json!({"more": false, "objects": [ip_indicator(1), ip_indicator(2)]});
            (StatusCode::OK, headers, body.to_string()).into_response()
        }
    };
    let app = axum::Router::new().route("/api1/collections/{id}/objects/", get(objects));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = scratch();
    let env = common::env(&intel_stages(
        &format!("http://{addr}/taxii2/"),
        &[COLLECTION],
        dir.path(),
    ))
    .await;
    let report = poll_once(&env.topology).await;
    let c = report.collections.values().next().unwrap();
    assert!(report.errors().is_empty(), "{report:?}");
    assert_eq!((c.retries, c.published), (1, 2), "{c:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(c.checkpoint.as_deref(), Some("2024-01-01T00:00:01.000000Z"));
    server.abort();
    env.stack.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The enricher at scale: 1,000 indicators and 50,000 events through the broker.

const LIVE: usize = 1000;
/// Indicators 1000..1050 are published then tombstoned, 1050..1100 expired (valid_until in
/// the past): events carrying their values must not be enriched.
const DELETED: std::ops::Range<usize> = 1000..1050;
const EXPIRED: std::ops::Range<usize> = 1050..1100;

fn gen_id(k: usize) -> String {
    format!("indicator--{k:08x}-1111-4000-8000-{k:012x}")
}

fn sha256_hex(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The IOC of generated indicator `k` (six kinds in turn).
fn gen_ioc(k: usize) -> (IocType, String) {
    match k % 6 {
        0 => (IocType::Ipv4, format!("198.18.{}.{}", k / 256, k % 256)),
        1 => (
            IocType::Ipv4,
            format!("100.{}.{}.0/24", 64 + k / 256, k % 256),
        ),
        2 => (IocType::Domain, format!("evil-{k}.test")),
        3 => (IocType::Url, format!("http://mal-{k}.test/payload/{k}")),
        4 => (IocType::Sha256, sha256_hex(&format!("ioc-{k}"))),
        _ => (IocType::Email, format!("bad-{k}@phish.test")),
    }
}

fn gen_indicator(k: usize, valid_until: Option<i64>) -> Indicator {
    let (ioc_type, value) = gen_ioc(k);
    Indicator {
        id: gen_id(k),
        modified: T0,
        iocs: vec![AtomicIoc { ioc_type, value }],
        name: Some(format!("generated {k}")),
        description: None,
        confidence: Some(60),
        indicator_types: vec!["malicious-activity".into()],
        labels: vec![],
        valid_from: T0,
        valid_until,
        tlp: Some(Tlp::Green),
        source: IndicatorSource {
            server: "gen".into(),
            api_root: "https://intel.invalid/api1/".into(),
            collection: "c".into(),
        },
        created_by: None,
        pattern: String::new(),
    }
}

/// Writes indicators (`Some`) and tombstones (`None`) keyed by id.
async fn produce_indicators(t: &Topology, records: &[(String, Option<Indicator>)]) {
    let codec = IndicatorCodec::new(&t.schema_registry).unwrap();
    let topic = t.topics.resolved(TopicRole::Indicators).name;
    let producer = pipeline::kafka::idempotent_producer(&t.kafka, "test-indicators").unwrap();
    let mut pending = Vec::new();
    for (key, value) in records {
        let bytes = match value {
            Some(i) => Some(codec.encode(&topic, i).await.unwrap()),
            None => None,
        };
        let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(&topic).key(key.as_str());
        if let Some(b) = &bytes {
            rec = rec.payload(b.as_slice());
        }
        pending.push(producer.send_result(rec).map_err(|(e, _)| e).unwrap());
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
}

/// Event `i`: background values that match nothing, near misses, and every 25th event a
/// planted value of generated indicator `k`. Returns the event and the expected matches.
fn gen_event(i: usize, prefix: &str, plant: Option<usize>) -> (Value, BTreeSet<(String, String)>) {
    let mut e = base_event(&format!("{prefix}-{i:06}"));
    e["tenant"] = json!(format!("tenant-{}", i % 7));
    e["network"] = json!({
        "src_ip": format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        "dst_ip": format!("172.16.{}.{}", (i >> 8) & 255, i & 255),
        "dst_hostname": format!("host-{i}.corp.example"),
    });
    if i % 25 == 13 {
        // Near misses: a suffix that is not a parent, an address outside every network.
        let k = (i / 25) % LIVE;
        e["network"]["dst_hostname"] = json!(format!("xevil-{k}.test"));
        e["network"]["src_ip"] = json!("100.68.0.1");
        e["http"] = json!({"url": format!("http://mal-{k}.test/payload/{k}/more")});
    }
    let mut want = BTreeSet::new();
    if let Some(k) = plant {
        let (t, value) = gen_ioc(k);
        let field = match (k % 6, t) {
            (0, _) => {
                e["network"]["dst_ip"] = json!(value);
                "network.dst_ip"
            }
            (1, _) => {
                let base = value.trim_end_matches(".0/24");
                e["network"]["src_ip"] = json!(format!("{base}.77"));
                "network.src_ip"
            }
            (2, _) => {
                e["network"]["dst_hostname"] = json!(format!("www.{value}"));
                "network.dst_hostname"
            }
            (3, _) => {
                e["http"] = json!({"url": value.replace("http://", "HTTP://")});
                "http.url"
            }
            (4, _) => {
                e["file"] = json!({"path": format!("/tmp/f{i}"), "sha256": value});
                "file.sha256"
            }
            _ => {
                e["email"] = json!({"from": value, "to": ["soc@corp.example"]});
                "email.from"
            }
        };
        if !(LIVE..2000).contains(&k) {
            want.insert((gen_id(k), field.to_string()));
        }
    }
    (e, want)
}

/// 1,000 live indicators (plus 50 deleted and 50 expired) and 50,000 events with 2,000 planted
/// matches go through the broker: precision and recall are both 1.0, keys and `traceparent`
/// are kept, an undecodable record is dead-lettered. Then a restart with the table on disk
/// reads only the 10 indicators added meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enricher_precision_recall_and_restart() {
    let dir = scratch();
    let stages = format!(
        "  - type: enrich\n    name: enrich\n    max_batch: 1000\n    store: {{path: {}, block_cache_mb: 16}}\n",
        dir.path().join("store").display()
    );
    let env = common::env(&stages).await;
    let t = &env.topology;
    let stage = enrich_stage(t);

    let mut records: Vec<(String, Option<Indicator>)> = (0..LIVE)
        .chain(DELETED)
        .map(|k| (gen_id(k), Some(gen_indicator(k, None))))
        .collect();
    records.extend(DELETED.map(|k| (gen_id(k), None)));
    records.extend(EXPIRED.map(|k| (gen_id(k), Some(gen_indicator(k, Some(T0 + 1000))))));
    produce_indicators(t, &records).await;

    let n = 50_000;
    let mut events = Vec::with_capacity(n);
    let mut expected: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for i in 0..n {
        let plant = (i % 25 == 0).then_some((i / 25) % 1100);
        let (e, want) = gen_event(i, "evt", plant);
        expected.insert(e["event_id"].as_str().unwrap().to_string(), want);
        events.push(e);
    }
    produce_events(t, &events).await;
    // One record that is not Avro at all.
    let producer = pipeline::kafka::idempotent_producer(&t.kafka, "test-garbage").unwrap();
    producer
        .send(
            FutureRecord::to(&t.topics.resolved(TopicRole::Canonical).name)
                .key("tenant-x")
                .payload("this is not avro")
                .headers(OwnedHeaders::new().insert(Header {
                    key: "traceparent",
                    value: Some("00-0000000000000000000000000000abcd-00000000000000ab-01"),
                })),
            Duration::from_secs(30),
        )
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let report = run_enrich(t, &stage, n as u64 + 1).await;
    let took = started.elapsed();
    // A figure for docs/benchmarks.md, not an assertion.
    println!(
        "enrich stage: {} records in {took:?} ({:.0}/s) including the table catch-up of {} indicator records in {} ms",
        report.records,
        report.records as f64 / took.as_secs_f64(),
        report.indicator_records_read,
        report.catch_up_ms
    );
    assert_eq!(report.records, n as u64 + 1, "{report:?}");
    assert_eq!(report.written, n as u64, "{report:?}");
    assert_eq!(
        report.dead_lettered,
        BTreeMap::from([("not_framed".to_string(), 1)])
    );
    assert_eq!(report.indicator_records_read, records.len() as u64);
    assert_eq!(report.indicators, (LIVE + EXPIRED.len()) as u64);
    assert_eq!(report.undecodable_indicators, 0);

    let (raw, out) = enriched(t).await;
    assert_eq!(out.len(), n, "every event written once");
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (id, want) in &expected {
        let got = matched(&out[id]);
        tp += got.intersection(want).count();
        fp += got.difference(want).count();
        fneg += want.difference(&got).count();
        if got != *want && fp + fneg < 10 {
            eprintln!("event {id}: expected {want:?}, got {got:?}");
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fneg).max(1) as f64;
    println!("enricher: {tp} true matches, {fp} false, {fneg} missed: precision {precision}, recall {recall}");
    let planted: usize = expected.values().map(BTreeSet::len).sum();
    assert_eq!(planted, 1900, "planted matches of live indicators");
    assert_eq!(tp, planted);
    assert_eq!((fp, fneg), (0, 0));
    // Keys and headers are kept.
    let by_id: BTreeMap<String, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e["event_id"].as_str().unwrap().to_string(), i))
        .collect();
    let codec = CanonicalCodec::new(&t.schema_registry).unwrap();
    for r in raw.iter().step_by(97) {
        let e = codec.decode(r.value.as_deref()).await.unwrap();
        let i = by_id[&e.event_id];
        assert_eq!(r.key.as_deref(), Some(format!("tenant-{}", i % 7).as_str()));
        let tps: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k == "traceparent")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tps, [traceparent(i).as_str()]);
    }
    let dlq = read_topic(t, "enrich.dlq").await;
    assert_eq!(dlq.len(), 1);
    let h = |k: &str| {
        dlq[0]
            .headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(h("secflow.error.class").as_deref(), Some("not_framed"));
    assert_eq!(h("secflow.stage").as_deref(), Some("enrich"));
    assert_eq!(
        h("traceparent").as_deref(),
        Some("00-0000000000000000000000000000abcd-00000000000000ab-01")
    );
    assert_eq!(
        dlq[0].value.as_deref(),
        Some(b"this is not avro".as_slice())
    );

    // Restart with the table on disk: 10 new indicators and 100 new events, 10 of them planted.
    let fresh: Vec<(String, Option<Indicator>)> = (2000..2010)
        .map(|k| (gen_id(k), Some(gen_indicator(k, None))))
        .collect();
    produce_indicators(t, &fresh).await;
    let mut more = Vec::new();
    let mut expected_more = BTreeMap::new();
    for i in 0..100 {
        let plant = (i % 10 == 0).then_some(2000 + i / 10);
        let (e, want) = gen_event(i, "again", plant);
        expected_more.insert(e["event_id"].as_str().unwrap().to_string(), want);
        more.push(e);
    }
    produce_events(t, &more).await;
    let report = run_enrich(t, &stage, 100).await;
    assert_eq!(
        report.indicator_records_read, 10,
        "only the records after the table's checkpoint are read: {report:?}"
    );
    assert_eq!(report.indicators, (LIVE + EXPIRED.len() + 10) as u64);
    assert_eq!(report.records, 100);
    let (_, out) = enriched(t).await;
    for (id, want) in &expected_more {
        assert_eq!(&matched(&out[id]), want, "{id}");
    }
    assert_eq!(expected_more.values().filter(|w| !w.is_empty()).count(), 10);
    env.stack.stop().await;
}

/// The intel stages' settings are checked at load time, each problem with its position.
#[test]
fn intel_stage_settings_are_validated_with_positions() {
    let text = "\
name: t
kafka: {bootstrap_servers: '127.0.0.1:9092'}
schema_registry: {url: 'http://127.0.0.1:8081'}
stages:
  - type: intel_poll
    name: feeds
    interval_secs: 0
    servers:
      - name: isac
        url: http://taxii.example/taxii2/
        page_size: 0
        collections:
          - {api_root: /api1/, id: a, added_after: yesterday}
          - {api_root: /api1/, id: a}
      - name: isac
        url: https://taxii.example/taxii2/
        collections: []
  - type: enrich
    name: enrich
    input: enriched
    store: {path: /tmp/x, min_prefix_v4: 33}
";
    let err = pipeline::topology::load_str(Path::new("t.yaml"), text, |_| None).unwrap_err();
    let lines: Vec<String> = err.diagnostics.iter().map(|d| d.to_string()).collect();
    let has = |prefix: &str, needle: &str| {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(needle)),
            "no `{prefix}…{needle}` in {lines:#?}"
        )
    };
    has("t.yaml:7:", "stages[0].interval_secs: must be at least 1");
    has("t.yaml:10:", "plain http");
    has("t.yaml:11:", "page_size: must be at least 1");
    has("t.yaml:13:", "is not an RFC 3339 timestamp");
    has("t.yaml:14:", "listed twice");
    has("t.yaml:15:", "server name `isac` is used twice");
    has("t.yaml:17:", "name at least one collection");
    has(
        "t.yaml:20:",
        "stages[1].input: an enrich stage reads canonical events",
    );
    has("t.yaml:21:", "at most 32");
    // No dead-letter topic for the poller, one for the enricher.
    let ok = text
        .replace("interval_secs: 0", "interval_secs: 60")
        .replace("http://taxii", "https://taxii")
        .replace("page_size: 0", "page_size: 10")
        .replace("yesterday", "'2024-01-01T00:00:00Z'")
        .replace("{api_root: /api1/, id: a}", "{api_root: /api1/, id: b}")
        .replace("      - name: isac\n        url: https://taxii.example/taxii2/\n        collections: []\n", "")
        .replace("input: enriched", "input: canonical")
        .replace(", min_prefix_v4: 33", "");
    let t = pipeline::topology::load_str(Path::new("t.yaml"), &ok, |_| None)
        .unwrap_or_else(|e| panic!("{e}\n{ok}"))
        .topology;
    let names: Vec<String> = t.all_topics().into_iter().map(|t| t.name).collect();
    assert!(names.contains(&"enrich.dlq".to_string()), "{names:?}");
    assert!(!names.contains(&"feeds.dlq".to_string()), "{names:?}");
}

// ---------------------------------------------------------------------------------------------
// Metrics of the threat-intel stages.

/// The value of one series in a Prometheus text exposition (`name{labels} value`).
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

/// A real poll against medallion and an enrich run, then `/metrics` (served by this process,
/// scraped over HTTP): the TAXII poll results, objects by disposition, records written by the
/// poller, the indicator table's size and the records it read, and the enrich stage's events in,
/// out, matched and dead-lettered all equal what the stages reported and what the topics hold.
/// The stage, server and collection names are this test's own, so the other tests of this
/// binary (same process, same registry) do not touch these series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_and_enrich_metrics_match_what_was_published_and_matched() {
    if !medallion_available("poll_and_enrich_metrics_match_what_was_published_and_matched") {
        return;
    }
    const FEED: &str = "7b2f4d66-3a1c-4e2f-8b3d-6c8d0e3f5a71";
    const MISSING: &str = "metrics-no-such-collection";
    let mut c = TaxiiCollection::new(FEED, "metrics feed");
    c.push(
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": CUSTOM_RED,
            "created": ts(T0 - 1000),
            "definition_type": "tlp",
            "definition": {"tlp": "red"},
        }),
        T0 - 1000,
    );
    c.push_all((0..20).map(ip_indicator), T0, 1000);
    let mut revoked = ip_indicator(100);
    revoked["revoked"] = json!(true);
    c.push(revoked, T0 + 5000);
    c.push(stix_indicator(101, T0, "[ipv4-addr:value = "), T0 + 6000);
    let medallion = start_medallion(MedallionSetup {
        max_page_size: 10,
        collections: vec![c],
        ..MedallionSetup::default()
    });
    let dir = scratch();
    let stages = intel_stages(&medallion.discovery_url(), &[FEED, MISSING], dir.path())
        .replace("name: feeds\n", "name: feeds-m\n")
        .replace("name: lab\n", "name: lab-m\n")
        .replace("name: enrich\n", "name: enrich-m\n");
    let env = common::env(&stages).await;
    let t = &env.topology;
    let addr = pipeline::telemetry::serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let scrape = || async move {
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    let poller = match t.stage("feeds-m") {
        Some(StageConfig::IntelPoll(s)) => (**s).clone(),
        other => panic!("{other:?}"),
    };
    let report = intel_poll::run(t, &poller, PollMode::Once, stage::never())
        .await
        .unwrap();
    let key = report
        .collections
        .keys()
        .find(|k| k.ends_with(FEED))
        .unwrap()
        .clone();
    let cr = &report.collections[&key];
    assert_eq!(
        (
            cr.objects,
            cr.published,
            cr.tombstones,
            cr.reviews,
            cr.skipped
        ),
        (23, 20, 1, 1, 1),
        "{report:?}"
    );
    assert_eq!(report.errors().len(), 1, "{report:?}");

    let indicators_topic = t.topics.resolved(TopicRole::Indicators).name;
    let review_topic = t.topics.resolved(TopicRole::Review).name;
    let on_indicators = read_topic(t, &indicators_topic).await.len();
    let on_review = read_topic(t, &review_topic).await.len();
    let m = scrape().await;
    let poll = |collection: &str, result: &str| {
        series(
            &m,
            &format!("secflow_taxii_polls_total{{server=\"lab-m\",collection=\"{collection}\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(poll(FEED, "ok"), Some(1.0), "{m}");
    assert_eq!(poll(MISSING, "not_found"), Some(1.0), "{m}");
    let objects = |d: &str| {
        series(
            &m,
            &format!("secflow_taxii_objects_total{{server=\"lab-m\",collection=\"{FEED}\",disposition=\"{d}\"}}"),
        )
        .unwrap_or(0.0) as u64
    };
    assert_eq!(objects("indicator"), cr.published, "{m}");
    assert_eq!(objects("tombstone"), cr.tombstones, "{m}");
    assert_eq!(objects("review"), cr.reviews, "{m}");
    assert_eq!(objects("skipped"), cr.skipped, "{m}");
    assert_eq!(objects("duplicate"), cr.duplicates, "{m}");
    assert_eq!(
        ["indicator", "tombstone", "review", "skipped", "duplicate"]
            .iter()
            .map(|d| objects(d))
            .sum::<u64>(),
        cr.objects,
        "the dispositions add up to the objects fetched"
    );
    let out = |topic: &str| {
        series(
            &m,
            &format!("secflow_records_out_total{{stage=\"feeds-m\",topic=\"{topic}\"}}"),
        )
    };
    assert_eq!(out(&indicators_topic), Some(on_indicators as f64), "{m}");
    assert_eq!(out(&review_topic), Some(on_review as f64), "{m}");

    // Events: 5 carry an indicator's address, 3 do not, 1 is not even Avro.
    let mut events = Vec::new();
    for i in 0..8 {
        let mut e = base_event(&format!("metrics-{i}"));
        if i < 5 {
            e["network"]["dst_ip"] = json!(ip_of(i));
        }
        events.push(e);
    }
    produce_events(t, &events).await;
    let producer = pipeline::kafka::idempotent_producer(&t.kafka, "test-garbage").unwrap();
    let canonical = t.topics.resolved(TopicRole::Canonical).name;
    producer
        .send_result(
            FutureRecord::to(&canonical)
                .key("acme")
                .payload(b"not confluent-framed avro".as_slice()),
        )
        .map_err(|(e, _)| e)
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    let enricher = match t.stage("enrich-m") {
        Some(StageConfig::Enrich(s)) => (**s).clone(),
        other => panic!("{other:?}"),
    };
    let er = run_enrich(t, &enricher, 9).await;
    assert_eq!(
        (er.records, er.written, er.matched_events, er.matches),
        (9, 8, 5, 5),
        "{er:?}"
    );
    assert_eq!(er.dead_lettered.values().sum::<u64>(), 1, "{er:?}");
    let enriched_topic = t.topics.resolved(TopicRole::Enriched).name;
    let m = scrape().await;
    let s = |name_labels: &str| series(&m, name_labels);
    assert_eq!(
        s("secflow_indicators{stage=\"enrich-m\"}"),
        Some(er.indicators as f64),
        "{m}"
    );
    assert_eq!(er.indicators, 20);
    assert_eq!(
        s(&format!(
            "secflow_records_in_total{{stage=\"enrich-m\",topic=\"{indicators_topic}\"}}"
        )),
        Some(er.indicator_records_read as f64),
        "{m}"
    );
    assert_eq!(er.indicator_records_read, on_indicators as u64);
    assert_eq!(
        s(&format!(
            "secflow_records_in_total{{stage=\"enrich-m\",topic=\"{canonical}\"}}"
        )),
        Some(9.0),
        "{m}"
    );
    assert_eq!(
        s(&format!(
            "secflow_records_out_total{{stage=\"enrich-m\",topic=\"{enriched_topic}\"}}"
        )),
        Some(8.0),
        "{m}"
    );
    assert_eq!(
        s("secflow_enrich_matched_total{stage=\"enrich-m\"}"),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        s("secflow_enrich_matches_total{stage=\"enrich-m\"}"),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        s("secflow_records_failed_total{stage=\"enrich-m\",reason=\"not_framed\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        s("secflow_dlq_writes_total{stage=\"enrich-m\",reason=\"undecodable\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        s("secflow_batch_size_sum{stage=\"enrich-m\"}"),
        Some(9.0),
        "{m}"
    );
    // The lag of every assigned partition, reported when the stage stopped: all caught up.
    let lag: Vec<f64> = m
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "secflow_consumer_lag{{stage=\"enrich-m\",topic=\"{canonical}\""
            ))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(!lag.is_empty(), "no lag series for enrich-m\n{m}");
    assert_eq!(lag.iter().sum::<f64>(), 0.0, "{m}");
    drop(medallion);
    env.stack.stop().await;
}
