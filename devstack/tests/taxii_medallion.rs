//! The TAXII 2.1 client (`processors::intel::taxii`) against a real TAXII server, OASIS
//! medallion 3.0.0 started by `devstack::taxii`, and against a small axum server for what
//! medallion cannot do (429 / 503 with `Retry-After`, oversized, slow and broken responses).
//!
//! medallion comes from the project venv (`$SECFLOW_VENV`, default `<workspace>/.tools/venv`,
//! made by `scripts/bootstrap.sh`). When it is missing the medallion tests fail, unless
//! `SECFLOW_SKIP_PYTHON=1`, in which case they say they skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use devstack::taxii::{
    find_medallion, taxii_timestamp, Medallion, MedallionSetup, TaxiiCollection, TAXII_MEDIA_TYPE,
};
use processors::intel::indicator::{
    map_objects, Deduplicator, Indicator, IndicatorDisposition, Markings, ReviewReason, SkipReason,
    Tlp, TombstoneReason,
};
use processors::intel::pattern::IocType;
use processors::intel::taxii::{
    CollectionConfig, Credentials, TaxiiClient, TaxiiError, TaxiiServerConfig,
};
use processors::secret::Secret;
use serde_json::{json, Value};

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const USER: &str = "admin";
const PASSWORD: &str = "Password0";
const COLLECTION: &str = "3f2c8a51-7f7e-4c6b-9d8e-1f3c2a4b5c6d";
const MARKING: &str = "marking-definition--aaaaaaaa-0000-4000-8000-000000000001";

/// Whether medallion can run; panics with the fix when it cannot (unless skipping is asked).
fn medallion_available(test: &str) -> bool {
    match find_medallion() {
        Ok(_) => true,
        Err(e) if std::env::var("SECFLOW_SKIP_PYTHON").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: {test} ({e}; SECFLOW_SKIP_PYTHON=1)");
            false
        }
        Err(e) => panic!(
            "{e}.\nThe TAXII integration tests need OASIS medallion from the project venv: run \
             `bash scripts/bootstrap.sh` (or set SECFLOW_VENV to a venv that has medallion 3.0.0; \
             SECFLOW_SKIP_PYTHON=1 skips these tests)."
        ),
    }
}

fn start(setup: &MedallionSetup) -> Medallion {
    Medallion::start(setup).unwrap_or_else(|e| panic!("medallion did not start: {e}"))
}

fn indicator_id(i: usize) -> String {
    format!("indicator--{i:08x}-0000-4000-8000-{i:012x}")
}

fn ip_of(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn ip_indicator(i: usize, modified: &str) -> Value {
    let mut o = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(i),
        "created": "2024-01-01T00:00:00.000Z",
        "modified": modified,
        "name": format!("C2 address {i}"),
        "indicator_types": ["malicious-activity"],
        "pattern": format!("[ipv4-addr:value = '{}']", ip_of(i)),
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z"
    });
    if i.is_multiple_of(2) {
        o["object_marking_refs"] = json!([MARKING]);
    }
    o
}

fn custom_tlp_marking() -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": MARKING,
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "tlp",
        "definition": {"tlp": "amber"}
    })
}

fn setup_with(collections: Vec<TaxiiCollection>) -> MedallionSetup {
    MedallionSetup {
        collections,
        ..MedallionSetup::default()
    }
}

fn server_config(url: String, page_size: u32) -> TaxiiServerConfig {
    let mut cfg = TaxiiServerConfig::new("medallion", url);
    cfg.allow_http = true;
    cfg.page_size = page_size;
    cfg.timeout_secs = 30;
    cfg
}

fn client_for(m: &Medallion, page_size: u32) -> TaxiiClient {
    client_with(server_config(m.discovery_url(), page_size), PASSWORD)
}

fn client_with(cfg: TaxiiServerConfig, password: &str) -> TaxiiClient {
    TaxiiClient::with_credentials(
        cfg,
        Some(Credentials::Basic {
            username: USER.into(),
            password: Secret::new(password),
        }),
    )
    .unwrap()
}

fn collection(id: &str) -> CollectionConfig {
    CollectionConfig {
        api_root: "/api1/".into(),
        id: id.into(),
        added_after: None,
    }
}

/// Everything one poll returned.
#[derive(Debug)]
struct Polled {
    objects: Vec<Value>,
    page_sizes: Vec<usize>,
    checkpoints: Vec<Option<String>>,
    dispositions: Vec<IndicatorDisposition>,
}

impl Polled {
    fn checkpoint(&self) -> Option<String> {
        self.checkpoints.last().cloned().flatten()
    }

    fn ids(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| o["id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn published(&self) -> Vec<&Indicator> {
        self.dispositions
            .iter()
            .filter_map(|d| match d {
                IndicatorDisposition::Publish(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    /// (publish, tombstone, review, skip).
    fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for d in &self.dispositions {
            match d {
                IndicatorDisposition::Publish(_) => c.0 += 1,
                IndicatorDisposition::Tombstone { .. } => c.1 += 1,
                IndicatorDisposition::Review(_) => c.2 += 1,
                IndicatorDisposition::Skip(_) => c.3 += 1,
            }
        }
        c
    }
}

/// Polls `coll` to the end from `checkpoint`, mapping every page through `from_stix` the way
/// `secflow intel poll` does (markings learned per collection).
async fn poll_all(
    client: &TaxiiClient,
    coll: &CollectionConfig,
    checkpoint: Option<String>,
) -> Polled {
    let mut poll = client.poll_collection(coll, checkpoint).unwrap();
    let mut markings = Markings::new();
    let now = T0 + 365 * 86_400_000;
    let mut out = Polled {
        objects: Vec::new(),
        page_sizes: Vec::new(),
        checkpoints: Vec::new(),
        dispositions: Vec::new(),
    };
    while let Some(page) = poll
        .next_page()
        .await
        .unwrap_or_else(|e| panic!("poll failed: {e}"))
    {
        out.dispositions.extend(map_objects(
            &page.objects,
            poll.source(),
            &mut markings,
            now,
        ));
        out.page_sizes.push(page.objects.len());
        out.checkpoints.push(page.checkpoint.clone());
        out.objects.extend(page.objects);
        assert!(out.page_sizes.len() < 1000, "runaway pagination");
    }
    assert!(poll.is_done());
    out
}

fn assert_each_once(ids: &[String], expected: &BTreeSet<String>) {
    let mut seen = BTreeMap::<&str, usize>::new();
    for id in ids {
        *seen.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "returned more than once: {twice:?}");
    let got: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(&got, expected, "returned ids differ");
}

#[tokio::test]
async fn discovery_api_root_and_collections() {
    if !medallion_available("discovery_api_root_and_collections") {
        return;
    }
    let mut intel = TaxiiCollection::new(COLLECTION, "Indicators");
    intel.push(ip_indicator(1, "2024-01-01T00:00:00.000Z"), T0);
    let m = start(&setup_with(vec![
        intel,
        TaxiiCollection::new("empty-one", "Empty"),
    ]));
    let client = client_for(&m, 100);

    let d = client.discovery().await.unwrap();
    assert_eq!(d.api_roots, vec![m.api_root_url()]);
    assert_eq!(d.default.as_deref(), Some(m.api_root_url().as_str()));
    assert!(d.title.contains("medallion"), "{d:?}");

    let root = client.api_root(&d.api_roots[0]).await.unwrap();
    assert!(
        root.versions.iter().any(|v| v == TAXII_MEDIA_TYPE),
        "{root:?}"
    );
    assert_eq!(
        root,
        client.api_root("/api1/").await.unwrap(),
        "relative API root"
    );

    let collections = client.collections(&d.api_roots[0]).await.unwrap();
    let ids: BTreeSet<&str> = collections.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from([COLLECTION, "empty-one"]));
    assert!(collections.iter().all(|c| c.can_read), "{collections:?}");

    assert!(matches!(
        client.api_root("/nope/").await,
        Err(TaxiiError::NotFound { .. })
    ));
    let err = client
        .get_objects("/api1/", "no-such-collection", &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TaxiiError::NotFound { .. }), "{err}");
    let empty = poll_all(&client, &collection("empty-one"), None).await;
    assert_eq!((empty.objects.len(), empty.checkpoint()), (0, None));
}

#[tokio::test]
async fn full_poll_paginates_and_incremental_poll_returns_only_new_objects() {
    if !medallion_available("full_poll_paginates_and_incremental_poll_returns_only_new_objects") {
        return;
    }
    // A TLP marking, 250 indicators and 3 other objects; `limit` 100, server cap 100.
    let mut intel = TaxiiCollection::new(COLLECTION, "Indicators");
    intel.push(custom_tlp_marking(), T0);
    for i in 0..250 {
        intel.push(
            ip_indicator(i, "2024-01-01T00:00:00.000Z"),
            T0 + (i as i64 + 1) * 1000,
        );
    }
    intel.push(json!({"type": "identity", "spec_version": "2.1", "id": "identity--00000000-0000-4000-8000-000000000001", "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "feed", "identity_class": "organization"}), T0 + 50_500);
    intel.push(json!({"type": "malware", "spec_version": "2.1", "id": "malware--00000000-0000-4000-8000-000000000001", "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "x", "is_family": false}), T0 + 150_500);
    intel.push(json!({"type": "relationship", "spec_version": "2.1", "id": "relationship--00000000-0000-4000-8000-000000000001", "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "relationship_type": "indicates", "source_ref": indicator_id(0), "target_ref": "malware--00000000-0000-4000-8000-000000000001"}), T0 + 260_000);
    let mut setup = setup_with(vec![intel.clone()]);
    let mut m = start(&setup);
    let coll = collection(COLLECTION);

    let first = poll_all(&client_for(&m, 100), &coll, None).await;
    let mut expected: BTreeSet<String> = (0..250).map(indicator_id).collect();
    expected.insert(MARKING.to_string());
    assert_each_once(&first.ids(), &expected);
    assert_eq!(
        first.page_sizes,
        vec![100, 100, 51],
        "pages of `limit` objects"
    );
    assert_eq!(
        first.checkpoints,
        vec![
            // 1 µs before X-TAXII-Date-Added-Last while more pages follow, then the header.
            Some("2024-01-01T00:01:38.999999Z".to_string()),
            Some("2024-01-01T00:03:18.999999Z".to_string()),
            Some(taxii_timestamp(T0 + 250_000)),
        ],
        "checkpoint of each page"
    );
    assert_eq!(taxii_timestamp(T0 + 99_000), "2024-01-01T00:01:39.000000Z");
    assert_eq!(first.counts(), (250, 0, 0, 1));
    for ind in first.published() {
        let n = usize::from_str_radix(&ind.id["indicator--".len()..][..8], 16).unwrap();
        assert_eq!(ind.iocs.len(), 1);
        assert_eq!(
            (ind.iocs[0].ioc_type, ind.iocs[0].value.as_str()),
            (IocType::Ipv4, ip_of(n).as_str())
        );
        let want = if n.is_multiple_of(2) {
            Some(Tlp::Amber)
        } else {
            None
        };
        assert_eq!(
            ind.tlp, want,
            "{}: TLP from the marking definition served with it",
            ind.id
        );
        assert_eq!(ind.source.api_root, m.api_root_url());
        assert_eq!(ind.source.collection, COLLECTION);
        assert_eq!(
            Indicator::from_avro_datum(&ind.to_avro_datum()).unwrap(),
            *ind
        );
    }
    let checkpoint = first.checkpoint();

    // 20 more indicators (and one more identity) are added; the server restarts.
    for i in 250..270 {
        intel.push(
            ip_indicator(i, "2024-01-01T00:00:00.000Z"),
            T0 + (i as i64 + 1) * 1000 + 5000,
        );
    }
    intel.push(json!({"type": "identity", "spec_version": "2.1", "id": "identity--00000000-0000-4000-8000-000000000002", "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "feed 2", "identity_class": "organization"}), T0 + 400_000);
    setup.collections = vec![intel];
    m.restart(&setup).unwrap();

    // A new client (a restarted poller) resumes from the stored checkpoint.
    let second = poll_all(&client_for(&m, 100), &coll, checkpoint.clone()).await;
    assert_each_once(&second.ids(), &(250..270).map(indicator_id).collect());
    assert_eq!(second.page_sizes, vec![20]);
    assert_eq!(
        second.checkpoint(),
        Some(taxii_timestamp(T0 + 270_000 + 5000))
    );
    assert_eq!(second.counts(), (20, 0, 0, 0));

    // Nothing new: one empty page, the checkpoint stays.
    let third = poll_all(&client_for(&m, 100), &coll, second.checkpoint()).await;
    assert_eq!(third.objects.len(), 0);
    assert_eq!(third.checkpoint(), second.checkpoint());
}

async fn post_objects(m: &Medallion, collection_id: &str, objects: Vec<Value>) {
    let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
    let resp = reqwest::Client::new()
        .post(m.objects_url(collection_id))
        .basic_auth(USER, Some(PASSWORD))
        .header("Accept", TAXII_MEDIA_TYPE)
        .header("Content-Type", TAXII_MEDIA_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, 202, "POST objects: {text}\n{}", m.log_tail(2000));
    let status: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["failure_count"], 0, "{text}");
}

#[tokio::test]
async fn added_modified_and_revoked_versions_come_in_the_incremental_poll() {
    if !medallion_available("added_modified_and_revoked_versions_come_in_the_incremental_poll") {
        return;
    }
    let mut intel = TaxiiCollection::new(COLLECTION, "Indicators");
    intel.push_all(
        (0..5).map(|i| ip_indicator(i, "2024-01-01T00:00:00.000Z")),
        T0,
        1000,
    );
    let m = start(&setup_with(vec![intel]));
    let coll = collection(COLLECTION);
    let client = client_for(&m, 2);

    let first = poll_all(&client, &coll, None).await;
    assert_eq!(first.page_sizes, vec![2, 2, 1]);
    let mut dedup = Deduplicator::new();
    assert_eq!(
        first.dispositions.iter().filter(|d| dedup.admit(d)).count(),
        5
    );

    // Added over TAXII (POST; medallion stamps date_added = now): a new indicator, a modified
    // version of indicator 0 (another pattern), a revoked version of indicator 1.
    let mut v2 = ip_indicator(0, "2024-06-01T00:00:00.000Z");
    v2["pattern"] = json!("[domain-name:value = 'Evil.Example']");
    let mut revoked = ip_indicator(1, "2024-06-01T00:00:00.000Z");
    revoked["revoked"] = json!(true);
    post_objects(
        &m,
        COLLECTION,
        vec![ip_indicator(5, "2024-01-01T00:00:00.000Z"), v2, revoked],
    )
    .await;

    let second = poll_all(&client, &coll, first.checkpoint()).await;
    assert_eq!(
        second.ids(),
        vec![indicator_id(5), indicator_id(0), indicator_id(1)]
    );
    assert!(second.checkpoint() > first.checkpoint());
    match &second.dispositions[..] {
        [IndicatorDisposition::Publish(new), IndicatorDisposition::Publish(modified), IndicatorDisposition::Tombstone {
            id,
            reason: TombstoneReason::Revoked,
            ..
        }] => {
            assert_eq!(new.id, indicator_id(5));
            assert_eq!(modified.id, indicator_id(0));
            assert_eq!(modified.modified, 1_717_200_000_000);
            assert_eq!(modified.iocs.len(), 1);
            assert_eq!(
                (modified.iocs[0].ioc_type, modified.iocs[0].value.as_str()),
                (IocType::Domain, "evil.example")
            );
            assert_eq!(id, &indicator_id(1));
        }
        other => panic!("unexpected dispositions {other:?}"),
    }
    assert_eq!(
        second
            .dispositions
            .iter()
            .filter(|d| dedup.admit(d))
            .count(),
        3
    );
    // The three share one date_added (one POST) across a page boundary: a poller that stopped
    // after the first page resumes from its checkpoint and still gets the revocation.
    assert_eq!(second.page_sizes, vec![2, 1]);
    let resumed = poll_all(&client, &coll, second.checkpoints[0].clone()).await;
    assert!(
        resumed.ids().contains(&indicator_id(1)),
        "{:?}",
        resumed.ids()
    );
    assert_eq!(
        resumed
            .dispositions
            .iter()
            .filter(|d| dedup.admit(d))
            .count(),
        0
    );

    // match[version]=all (the default): a full re-read returns every version, 5 + 3; what was
    // written already is not written again.
    let again = poll_all(&client, &coll, None).await;
    assert_eq!(again.objects.len(), 8);
    assert_eq!(
        again.dispositions.iter().filter(|d| dedup.admit(d)).count(),
        0
    );
    let mut fresh = Deduplicator::new();
    assert_eq!(
        again.dispositions.iter().filter(|d| fresh.admit(d)).count(),
        8
    );

    // match[version]=last: only the newest version of each indicator.
    let mut cfg = server_config(m.discovery_url(), 100);
    cfg.match_version = "last".into();
    let last = poll_all(&client_with(cfg, PASSWORD), &coll, None).await;
    assert_each_once(&last.ids(), &(0..6).map(indicator_id).collect());
    assert_eq!(last.counts(), (5, 1, 0, 0));
}

#[tokio::test]
async fn wrong_password_is_a_typed_auth_error() {
    if !medallion_available("wrong_password_is_a_typed_auth_error") {
        return;
    }
    let m = start(&setup_with(vec![TaxiiCollection::new(
        COLLECTION,
        "Indicators",
    )]));
    let bad = client_with(server_config(m.discovery_url(), 100), "not-the-password");
    let err = bad.discovery().await.unwrap_err();
    assert!(
        matches!(err, TaxiiError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"));
    assert!(!err.is_transient());
    let err = bad
        .poll_collection(&collection(COLLECTION), None)
        .unwrap()
        .next_page()
        .await
        .unwrap_err();
    assert!(
        matches!(err, TaxiiError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    let anonymous =
        TaxiiClient::with_credentials(server_config(m.discovery_url(), 100), None).unwrap();
    let err = anonymous.collections("/api1/").await.unwrap_err();
    assert!(
        matches!(err, TaxiiError::Unauthorized { status: 401, .. }),
        "{err}"
    );
}

fn bundle(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/validation/stix/bundles")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["objects"].as_array().unwrap().clone()
}

#[tokio::test]
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
    let mut bundles = BTreeMap::new();
    for (id, file) in names {
        let objects = bundle(file);
        let mut c = TaxiiCollection::new(id, file);
        c.push_all(objects.clone(), T0, 1000);
        bundles.insert(id, objects);
        collections.push(c);
    }
    let m = start(&setup_with(collections));
    // Every object type, small pages: every object must come back once and be classified.
    let mut cfg = server_config(m.discovery_url(), 25);
    cfg.object_types = Vec::new();
    let all_types = client_with(cfg, PASSWORD);
    let expected = [
        ("apt1", (10, 0, 2, 64)),
        ("c2-coa", (2, 0, 0, 6)),
        ("email", (0, 0, 2, 4)),
    ];
    let mut polled = BTreeMap::new();
    for (id, counts) in expected {
        let p = poll_all(&all_types, &collection(id), None).await;
        let want: BTreeSet<String> = bundles[id]
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        assert_each_once(&p.ids(), &want);
        assert_eq!(
            p.counts(),
            counts,
            "{id}: (publish, tombstone, review, skip)"
        );
        for d in &p.dispositions {
            if let IndicatorDisposition::Skip(reason) = d {
                assert!(
                    matches!(reason, SkipReason::NotAnIndicator(t) if t != "indicator"),
                    "{id}: {reason}"
                );
            }
            if let IndicatorDisposition::Publish(i) = d {
                assert_eq!(Indicator::from_avro_datum(&i.to_avro_datum()).unwrap(), *i);
            }
        }
        polled.insert(id, p);
    }

    let iocs = |id: &str, t: IocType| -> BTreeSet<String> {
        polled[id]
            .published()
            .iter()
            .flat_map(|i| i.iocs.iter())
            .filter(|i| i.ioc_type == t)
            .map(|i| i.value.clone())
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        iocs("apt1", IocType::Ipv4),
        set(&[
            "223.166.0.0/15",
            "58.246.0.0/15",
            "112.64.0.0/15",
            "139.226.0.0/15"
        ])
    );
    assert_eq!(
        iocs("apt1", IocType::Domain),
        set(&["hugesoft.org", "arrowservice.net", "msnhome.org"])
    );
    assert_eq!(
        iocs("apt1", IocType::Md5),
        set(&[
            "001dd76872d80801692ff942308c64e6",
            "002325a0a67fded0381b5648d7fe9b8e",
            "00dbb9e1c09dbdafb360f3163ba5a3de"
        ])
    );
    assert_eq!(iocs("c2-coa", IocType::Ipv4), set(&["10.0.0.0"]));
    assert_eq!(
        iocs("c2-coa", IocType::Sha256),
        set(&["ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"])
    );
    for i in polled["c2-coa"].published() {
        assert_eq!(
            i.created_by.as_deref(),
            Some("identity--f690c992-8e7d-4b9a-9303-3312616c0220")
        );
        assert_eq!(i.tlp, None);
    }
    for id in ["apt1", "email"] {
        for d in &polled[id].dispositions {
            if let IndicatorDisposition::Review(r) = d {
                assert_eq!(r.reason, ReviewReason::NotJoinable, "{id}: {r:?}");
                let construct = if id == "apt1" { "AND" } else { "MATCHES" };
                assert!(r.detail.contains(construct), "{id}: {}", r.detail);
                assert!(d.review_record().is_some() && d.indicator_record().is_some());
            }
        }
    }

    // The default filter (indicators and marking definitions) returns just the indicators.
    let default = client_for(&m, 100);
    for (id, n) in [("apt1", 12), ("c2-coa", 2), ("email", 2)] {
        let p = poll_all(&default, &collection(id), None).await;
        assert_eq!(p.objects.len(), n, "{id}");
        assert_eq!(p.counts().3, 0, "{id}");
    }
}

// ---------------------------------------------------------------------------------------------
// What medallion cannot produce: a small axum server with hostile and rate-limiting endpoints.

fn discovery_body() -> String {
    json!({"title": "fake", "api_roots": ["/api1/"]}).to_string()
}

fn taxii(status: StatusCode, headers: Vec<(&'static str, String)>, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert("content-type", TAXII_MEDIA_TYPE.parse().unwrap());
    for (k, v) in headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

fn fake_object(n: usize) -> Value {
    json!({"type": "indicator", "id": indicator_id(n), "modified": format!("2024-01-0{}T00:00:00.000Z", n + 1)})
}

async fn flaky(
    State(calls): State<Arc<AtomicUsize>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return taxii(
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "1".into())],
            "{}".into(),
        );
    }
    let filters_ok = q.get("added_after").map(String::as_str) == Some("2024-01-01T00:00:00Z")
        && q.get("match[type]").map(String::as_str) == Some("indicator,marking-definition")
        && q.get("match[version]").map(String::as_str) == Some("all")
        && q.get("limit").map(String::as_str) == Some("2");
    if !filters_ok {
        let body =
            json!({"title": "ProcessingError", "description": format!("params changed: {q:?}")});
        return taxii(StatusCode::BAD_REQUEST, vec![], body.to_string());
    }
    match q.get("next").map(String::as_str) {
        None => taxii(
            StatusCode::OK,
            vec![(
                "x-taxii-date-added-last",
                "2024-01-02T00:00:00.000000Z".into(),
            )],
            json!({"more": true, "next": "tok", "objects": [fake_object(0), fake_object(1)]})
                .to_string(),
        ),
        Some("tok") => taxii(
            StatusCode::OK,
            vec![(
                "x-taxii-date-added-last",
                "2024-01-03T00:00:00.000000Z".into(),
            )],
            json!({"more": false, "objects": [fake_object(2)]}).to_string(),
        ),
        Some(_) => taxii(StatusCode::BAD_REQUEST, vec![], "{}".into()),
    }
}

/// Paginates with `more` but never `next`: the client continues with `added_after`.
async fn no_next(Query(q): Query<BTreeMap<String, String>>) -> Response {
    let dates: Vec<String> = (0..5)
        .map(|i| format!("2024-02-0{}T00:00:00.000000Z", i + 1))
        .collect();
    let after = q.get("added_after").cloned().unwrap_or_default();
    let rest: Vec<usize> = (0..5).filter(|i| dates[*i] > after).collect();
    let page: Vec<usize> = rest.iter().copied().take(2).collect();
    let mut headers = vec![];
    if let Some(last) = page.last() {
        headers.push(("x-taxii-date-added-last", dates[*last].clone()));
    }
    let objects: Vec<Value> = page.iter().map(|i| fake_object(*i)).collect();
    taxii(
        StatusCode::OK,
        headers,
        json!({"more": rest.len() > page.len(), "objects": objects}).to_string(),
    )
}

async fn serve_fake() -> String {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/ratelimit/taxii2/",
            get(|| async {
                taxii(
                    StatusCode::TOO_MANY_REQUESTS,
                    vec![("retry-after", "7".into())],
                    "slow down".into(),
                )
            }),
        )
        .route(
            "/unavailable/taxii2/",
            get(|| async {
                taxii(
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec![("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".into())],
                    String::new(),
                )
            }),
        )
        .route(
            "/unavailable-bare/taxii2/",
            get(|| async { taxii(StatusCode::SERVICE_UNAVAILABLE, vec![], String::new()) }),
        )
        .route(
            "/garbage/taxii2/",
            get(|| async { taxii(StatusCode::OK, vec![], "<html>hello</html>".into()) }),
        )
        .route(
            "/wrongshape/taxii2/",
            get(|| async { taxii(StatusCode::OK, vec![], r#"{"api_roots": "nope"}"#.into()) }),
        )
        .route(
            "/deep/taxii2/",
            get(|| async { taxii(StatusCode::OK, vec![], "[".repeat(100_000)) }),
        )
        .route(
            "/big/taxii2/",
            get(|| async { taxii(StatusCode::OK, vec![], " ".repeat(2 << 20)) }),
        )
        .route(
            "/slow/taxii2/",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                taxii(StatusCode::OK, vec![], discovery_body())
            }),
        )
        .route(
            "/redirect/taxii2/",
            get(|headers: HeaderMap| async move {
                let host = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let port = host.rsplit(':').next().unwrap_or_default().to_string();
                taxii(
                    StatusCode::TEMPORARY_REDIRECT,
                    vec![(
                        "location",
                        format!("http://localhost:{port}/bearer/taxii2/"),
                    )],
                    String::new(),
                )
            }),
        )
        .route(
            "/server-error/taxii2/",
            get(|| async {
                taxii(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![],
                    json!({"title": "InternalError", "description": "token=tok-123 leaked"})
                        .to_string(),
                )
            }),
        )
        .route(
            "/bearer/taxii2/",
            get(|headers: HeaderMap| async move {
                if headers.get("authorization").and_then(|h| h.to_str().ok())
                    == Some("Bearer tok-123")
                {
                    taxii(StatusCode::OK, vec![], discovery_body())
                } else {
                    taxii(StatusCode::UNAUTHORIZED, vec![], "{}".into())
                }
            }),
        )
        .route(
            "/apikey/taxii2/",
            get(|headers: HeaderMap| async move {
                let ok = headers.get("x-api-key").and_then(|h| h.to_str().ok()) == Some("key-456")
                    && headers.get("accept").and_then(|h| h.to_str().ok())
                        == Some(TAXII_MEDIA_TYPE);
                if ok {
                    taxii(StatusCode::OK, vec![], discovery_body())
                } else {
                    taxii(StatusCode::FORBIDDEN, vec![], "{}".into())
                }
            }),
        )
        .route("/api1/collections/flaky/objects/", get(flaky))
        .route("/api1/collections/nonext/objects/", get(no_next))
        .route(
            "/api1/collections/stuck/objects/",
            get(|| async {
                taxii(
                    StatusCode::OK,
                    vec![],
                    json!({"more": true, "objects": [{"type": "indicator"}]}).to_string(),
                )
            }),
        )
        .route(
            "/api1/collections/empty-more/objects/",
            get(|| async {
                taxii(
                    StatusCode::OK,
                    vec![],
                    json!({"more": true, "next": "x"}).to_string(),
                )
            }),
        )
        .with_state(calls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A raw server that streams an endless chunked body (no Content-Length).
async fn serve_chunked() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: {TAXII_MEDIA_TYPE}\r\ntransfer-encoding: chunked\r\n\r\n");
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..256 {
                    let frame = format!("{:x}\r\n", chunk.len());
                    if sock.write_all(frame.as_bytes()).await.is_err()
                        || sock.write_all(&chunk).await.is_err()
                        || sock.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
                let _ = sock.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    format!("http://{addr}")
}

fn fake_client(url: String, credentials: Option<Credentials>) -> TaxiiClient {
    let mut cfg = TaxiiServerConfig::new("fake", url);
    cfg.allow_http = true;
    cfg.timeout_secs = 1;
    cfg.max_response_bytes = 1 << 20;
    cfg.page_size = 2;
    TaxiiClient::with_credentials(cfg, credentials).unwrap()
}

#[tokio::test]
async fn rate_limits_and_hostile_responses_are_typed_errors() {
    let base = serve_fake().await;
    let at = |path: &str| fake_client(format!("{base}/{path}/taxii2/"), None);

    let err = at("ratelimit").discovery().await.unwrap_err();
    assert!(
        matches!(err, TaxiiError::RateLimited { status: 429, .. }),
        "{err}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_transient());
    let err = at("unavailable").discovery().await.unwrap_err();
    assert!(
        matches!(err, TaxiiError::RateLimited { status: 503, .. }),
        "{err}"
    );
    assert_eq!(
        err.retry_after(),
        Some(Duration::ZERO),
        "an HTTP-date in the past"
    );
    let err = at("unavailable-bare").discovery().await.unwrap_err();
    assert_eq!((err.retry_after(), err.is_transient()), (None, true));

    for path in ["garbage", "wrongshape", "deep"] {
        let err = at(path).discovery().await.unwrap_err();
        assert!(matches!(err, TaxiiError::Decode { .. }), "{path}: {err}");
    }
    let err = at("big").discovery().await.unwrap_err();
    assert!(
        matches!(
            err,
            TaxiiError::TooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err}"
    );
    let chunked = serve_chunked().await;
    let err = fake_client(format!("{chunked}/taxii2/"), None)
        .discovery()
        .await
        .unwrap_err();
    assert!(
        matches!(err, TaxiiError::TooLarge { .. }),
        "streamed body: {err}"
    );
    let err = at("slow").discovery().await.unwrap_err();
    assert!(matches!(err, TaxiiError::Timeout { secs: 1, .. }), "{err}");
    let err = at("redirect").discovery().await.unwrap_err();
    assert!(
        matches!(err, TaxiiError::Status { status: 307, .. }),
        "cross-origin redirect: {err}"
    );
    let err = at("nothing-here").discovery().await.unwrap_err();
    assert!(matches!(err, TaxiiError::NotFound { .. }), "{err}");
    let err = fake_client("http://127.0.0.1:1/taxii2/".into(), None)
        .discovery()
        .await
        .unwrap_err();
    assert!(matches!(err, TaxiiError::Connect { .. }), "{err}");

    let bearer = Credentials::Bearer(Secret::new("tok-123"));
    let err = fake_client(format!("{base}/server-error/taxii2/"), Some(bearer.clone()))
        .discovery()
        .await
        .unwrap_err();
    assert!(
        matches!(err, TaxiiError::Status { status: 500, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("tok-123"), "secret echoed: {err}");
    assert!(err.to_string().contains("InternalError"), "{err}");

    // Bearer and API-key authentication.
    let d = fake_client(format!("{base}/bearer/taxii2/"), Some(bearer))
        .discovery()
        .await
        .unwrap();
    assert_eq!(d.api_roots, vec!["/api1/"]);
    let key = Credentials::ApiKey {
        header: "X-API-Key".into(),
        key: Secret::new("key-456"),
    };
    fake_client(format!("{base}/apikey/taxii2/"), Some(key))
        .discovery()
        .await
        .unwrap();
    let wrong = Credentials::ApiKey {
        header: "X-API-Key".into(),
        key: Secret::new("nope"),
    };
    let err = fake_client(format!("{base}/apikey/taxii2/"), Some(wrong))
        .discovery()
        .await
        .unwrap_err();
    assert!(
        matches!(err, TaxiiError::Unauthorized { status: 403, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn poll_waits_out_429_and_keeps_filters_and_limit_with_next() {
    let base = serve_fake().await;
    let client = fake_client(format!("{base}/taxii2/"), None);
    let coll = |id: &str| CollectionConfig {
        api_root: "/api1/".into(),
        id: id.into(),
        added_after: Some("2024-01-01T00:00:00+00:00".into()),
    };

    // 429 first: the caller waits Retry-After and calls again; the same request is repeated.
    let mut poll = client.poll_collection(&coll("flaky"), None).unwrap();
    assert_eq!(
        poll.checkpoint(),
        Some("2024-01-01T00:00:00Z"),
        "normalised to UTC `Z`"
    );
    let err = poll.next_page().await.unwrap_err();
    let wait = err.retry_after().expect("Retry-After");
    assert_eq!(wait, Duration::from_secs(1));
    tokio::time::sleep(wait).await;
    let p1 = poll.next_page().await.unwrap().unwrap();
    assert_eq!((p1.objects.len(), p1.more), (2, true));
    assert_eq!(
        p1.checkpoint.as_deref(),
        Some("2024-01-01T23:59:59.999999Z")
    );
    let p2 = poll.next_page().await.unwrap().unwrap();
    assert_eq!(
        (p2.objects.len(), p2.more),
        (1, false),
        "the server refuses changed filters or a missing limit"
    );
    assert_eq!(
        p2.checkpoint.as_deref(),
        Some("2024-01-03T00:00:00.000000Z")
    );
    assert!(poll.next_page().await.unwrap().is_none());

    // `more` without `next`: continue with added_after = the last date added.
    let mut poll = client.poll_collection(&coll("nonext"), None).unwrap();
    let mut ids = Vec::new();
    while let Some(page) = poll.next_page().await.unwrap() {
        ids.extend(
            page.objects
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(ids, (0..5).map(indicator_id).collect::<Vec<_>>());
    assert_eq!(poll.pages(), 3);
    assert_eq!(poll.checkpoint(), Some("2024-02-05T00:00:00.000000Z"));

    // Pagination that cannot advance ends with a protocol error, not a loop.
    for id in ["stuck", "empty-more"] {
        let mut poll = client.poll_collection(&coll(id), None).unwrap();
        assert!(poll.next_page().await.unwrap().is_some(), "{id}");
        let err = poll.next_page().await.unwrap_err();
        assert!(matches!(err, TaxiiError::Protocol { .. }), "{id}: {err}");
    }
}
