//! ECS 9.4.0 transform: every document is checked against the official ECS field set
//! (`shared/validation/ecs/ecs_fields.json`, generated from elastic/ecs v9.4.0 `ecs_flat.yml`),
//! the examples are pinned by golden files, and arbitrary valid events must map to valid,
//! deterministic documents.
//!
//! Golden files (`tests/golden/<example>.ecs.json`) hold the document pretty-printed for review;
//! the test checks that the transform's bytes are exactly the compact serialisation of the
//! golden (same keys, order, values and escapes) and that the golden is the pretty form of those
//! bytes. `SECFLOW_BLESS=1` rewrites them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use processors::event::*;
use processors::transform::ecs::to_ecs;
use processors::transform::{Format, TransformError};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// The ECS field set
// ---------------------------------------------------------------------------------------------

struct FieldDef {
    ty: String,
    array: bool,
    allowed: Option<Vec<String>>,
    expected: Option<Vec<String>>,
    pattern: Option<String>,
    required: bool,
}

struct Ecs {
    fields: HashMap<String, FieldDef>,
    /// event.category → the event.type values ECS expects with it.
    expected_types: HashMap<String, Vec<String>>,
    /// Fields ECS marks `required` (`@timestamp`, `ecs.version`).
    required: Vec<String>,
}

fn validation_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/validation/ecs")
}

fn ecs() -> &'static Ecs {
    static ECS: OnceLock<Ecs> = OnceLock::new();
    ECS.get_or_init(|| {
        let path = validation_dir().join("ecs_fields.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let raw: Map<String, Value> = serde_json::from_str(&text).unwrap();
        let strings = |v: Option<&Value>| {
            v.and_then(Value::as_array).map(|a| {
                a.iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
        };
        let mut fields = HashMap::new();
        let mut expected_types = HashMap::new();
        for (name, def) in &raw {
            if let Some(map) = def.get("expected_event_types").and_then(Value::as_object) {
                for (cat, types) in map {
                    expected_types.insert(cat.clone(), strings(Some(types)).unwrap());
                }
            }
            fields.insert(
                name.clone(),
                FieldDef {
                    ty: def["type"].as_str().unwrap().to_owned(),
                    array: strings(def.get("normalize"))
                        .unwrap_or_default()
                        .iter()
                        .any(|n| n == "array"),
                    allowed: strings(def.get("allowed_values")),
                    expected: strings(def.get("expected_values")),
                    pattern: def
                        .get("pattern")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    required: def.get("required").and_then(Value::as_bool) == Some(true),
                },
            );
        }
        assert!(fields.len() > 2000, "ECS field set looks truncated");
        assert_eq!(
            std::fs::read_to_string(validation_dir().join("VERSION"))
                .unwrap()
                .trim(),
            "9.4.0"
        );
        let mut required: Vec<String> = fields
            .iter()
            .filter(|(_, d)| d.required)
            .map(|(n, _)| n.clone())
            .collect();
        required.sort();
        assert_eq!(required, ["@timestamp", "ecs.version"]);
        Ecs {
            fields,
            expected_types,
            required,
        }
    })
}

/// Fields whose ECS `expected_values` (which ECS itself does not enforce) this transform
/// promises to respect.
const ENFORCED_EXPECTED: &[&str] = &[
    "network.direction",
    "host.os.type",
    "threat.software.type",
    "threat.enrichments.indicator.confidence",
    "threat.enrichments.indicator.marking.tlp",
];

fn is_container(ty: &str) -> bool {
    matches!(ty, "object" | "nested" | "flattened")
}

/// `^[A-F0-9]{2}(-[A-F0-9]{2}){5,}$`, the only `pattern` in ECS 9.4.0 (MAC addresses).
fn matches_mac_pattern(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() >= 6
        && groups.iter().all(|g| {
            g.len() == 2
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        })
}

struct Validator<'a> {
    ecs: &'a Ecs,
    errors: Vec<String>,
    leaves: Vec<String>,
}

impl Validator<'_> {
    fn err(&mut self, path: &str, msg: impl std::fmt::Display) {
        self.errors.push(format!("{path}: {msg}"));
    }

    fn walk_object(&mut self, prefix: &str, obj: &Map<String, Value>) {
        if obj.is_empty() {
            self.err(prefix, "empty object");
        }
        for (k, v) in obj {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            self.walk(&path, v);
        }
    }

    fn walk(&mut self, path: &str, v: &Value) {
        let def = self.ecs.fields.get(path);
        match v {
            Value::Object(obj) => match def {
                // labels: an object of keyword values.
                Some(d) if d.ty == "object" && path == "labels" => {
                    for (k, lv) in obj {
                        if k.is_empty() || k.contains('.') {
                            self.err(path, format!("bad label key {k:?}"));
                        }
                        if !lv.is_string() {
                            self.err(&format!("{path}.{k}"), "label value must be a string");
                        }
                        self.leaves.push(format!("{path}.{k}"));
                    }
                }
                Some(d) if !is_container(&d.ty) => {
                    self.err(path, format!("object given for a `{}` field", d.ty))
                }
                _ => self.walk_object(path, obj),
            },
            Value::Array(items) => {
                let Some(d) = def else {
                    return self.err(path, "array for a field that is not in ECS 9.4.0");
                };
                if !d.array {
                    self.err(path, "array for a field ECS does not normalize to an array");
                }
                if items.is_empty() {
                    self.err(path, "empty array");
                }
                for item in items {
                    match item {
                        Value::Array(_) => self.err(path, "nested array"),
                        Value::Object(o) if is_container(&d.ty) => self.walk_object(path, o),
                        _ => self.scalar(path, item),
                    }
                }
            }
            _ => self.scalar(path, v),
        }
    }

    fn scalar(&mut self, path: &str, v: &Value) {
        self.leaves.push(path.to_owned());
        let Some(d) = self.ecs.fields.get(path) else {
            return self.err(path, "not a field of ECS 9.4.0");
        };
        let ty = d.ty.as_str();
        let ok = match v {
            Value::String(s) => {
                // ECS keeps a bare `?` as an empty url.query; nothing else may be empty.
                if s.is_empty() && path != "url.query" {
                    self.err(path, "empty string");
                }
                match ty {
                    "ip" => {
                        if s.parse::<IpAddr>().is_err() {
                            self.err(path, format!("{s:?} is not an IP address"));
                        }
                        true
                    }
                    "date" => {
                        if parse_rfc3339(s).is_err() || !s.ends_with('Z') || s.len() != 24 {
                            self.err(path, format!("{s:?} is not an RFC 3339 UTC millis date"));
                        }
                        true
                    }
                    "keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text"
                    | "geo_point" => true,
                    _ => false,
                }
            }
            Value::Number(n) => match ty {
                "long" | "integer" => n.is_i64() || n.is_u64(),
                "float" | "double" | "scaled_float" => true,
                _ => false,
            },
            Value::Bool(_) => ty == "boolean",
            Value::Null => {
                self.err(path, "null");
                true
            }
            _ => false,
        };
        if !ok {
            self.err(path, format!("JSON value {v} does not fit ECS type `{ty}`"));
        }
        if let (Some(allowed), Some(s)) = (&d.allowed, v.as_str()) {
            if !allowed.iter().any(|a| a == s) {
                self.err(path, format!("{s:?} is not an allowed value"));
            }
        }
        if ENFORCED_EXPECTED.contains(&path) {
            if let (Some(expected), Some(s)) = (&d.expected, v.as_str()) {
                if !expected.iter().any(|a| a == s) {
                    self.err(path, format!("{s:?} is not an expected value"));
                }
            }
        }
        if let Some(p) = &d.pattern {
            assert_eq!(
                p, "^[A-F0-9]{2}(-[A-F0-9]{2}){5,}$",
                "unchecked ECS pattern"
            );
            if !v.as_str().is_some_and(matches_mac_pattern) {
                self.err(path, format!("{v} does not match {p}"));
            }
        }
    }
}

fn strs(v: &Value) -> Vec<&str> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => vec![s.as_str()],
        _ => vec![],
    }
}

/// Every problem of `doc` as an ECS 9.4.0 document (empty = valid).
fn ecs_errors(doc: &Value) -> Vec<String> {
    let ecs = ecs();
    let mut v = Validator {
        ecs,
        errors: vec![],
        leaves: vec![],
    };
    match doc.as_object() {
        Some(o) => v.walk_object("", o),
        None => v.err("", "document is not an object"),
    }
    for name in &ecs.required {
        if !v.leaves.contains(name) {
            v.err(name, "required field missing");
        }
    }
    // event.* classification: one kind and outcome, categories and types from the allowed
    // values, every type expected by some category and every category given a type it expects.
    let event = &doc["event"];
    for f in ["kind", "outcome"] {
        if !event[f].is_string() {
            v.err(&format!("event.{f}"), "missing or not a single keyword");
        }
    }
    let cats = strs(&event["category"]);
    let types = strs(&event["type"]);
    if cats.is_empty() || types.is_empty() {
        v.err(
            "event",
            "event.category and event.type are required by this mapping",
        );
    }
    for t in &types {
        let ok = cats.iter().any(|c| {
            ecs.expected_types
                .get(*c)
                .is_some_and(|ts| ts.iter().any(|x| x == t))
        });
        if !ok {
            v.err(
                "event.type",
                format!("{t:?} is not expected for any of {cats:?}"),
            );
        }
    }
    for c in &cats {
        let ok = ecs
            .expected_types
            .get(*c)
            .is_some_and(|ts| types.iter().any(|t| ts.iter().any(|x| x == t)));
        if !ok {
            v.err(
                "event.category",
                format!("{c:?} has none of its types in {types:?}"),
            );
        }
    }
    for (i, a) in cats.iter().enumerate() {
        if cats[..i].contains(a) {
            v.err("event.category", format!("duplicate {a:?}"));
        }
    }
    for (i, a) in types.iter().enumerate() {
        if types[..i].contains(a) {
            v.err("event.type", format!("duplicate {a:?}"));
        }
    }
    // related.*: sorted and deduplicated.
    for f in ["hosts", "user", "hash"] {
        let vals = strs(&doc["related"][f]);
        if vals.windows(2).any(|w| w[0] >= w[1]) {
            v.err(&format!("related.{f}"), "not sorted and deduplicated");
        }
    }
    let ips: Vec<IpAddr> = strs(&doc["related"]["ip"])
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    if ips.windows(2).any(|w| w[0] >= w[1]) {
        v.err("related.ip", "not sorted and deduplicated");
    }
    v.errors
}

/// Transforms, checks the bytes are exactly serde_json's compact form of themselves (valid
/// JSON, no duplicate keys, same escapes) and validates against ECS.
fn transform_valid(e: &SecurityEvent) -> Value {
    let bytes = to_ecs(e).unwrap_or_else(|err| panic!("transform failed: {err}"));
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    let doc: Value = serde_json::from_str(text).expect("valid JSON");
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        text,
        "output is not in serde_json's compact form (duplicate key or odd escape?)"
    );
    let errors = ecs_errors(&doc);
    assert!(
        errors.is_empty(),
        "invalid ECS document:\n  {}\n{}",
        errors.join("\n  "),
        serde_json::to_string_pretty(&doc).unwrap()
    );
    doc
}

// ---------------------------------------------------------------------------------------------
// Golden files
// ---------------------------------------------------------------------------------------------

fn examples() -> Vec<(String, SecurityEvent)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples");
    let mut out: Vec<(String, SecurityEvent)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let e = SecurityEvent::from_json(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|err| panic!("{stem}: {err}"));
            (stem, e)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 13, "expected the example set");
    out
}

fn example(stem: &str) -> SecurityEvent {
    examples()
        .into_iter()
        .find(|(s, _)| s == stem)
        .unwrap_or_else(|| panic!("no example {stem}"))
        .1
}

#[test]
fn golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var("SECFLOW_BLESS").is_ok_and(|v| v == "1");
    let mut failures = vec![];
    for (stem, event) in examples() {
        let doc = transform_valid(&event);
        let bytes = to_ecs(&event).unwrap();
        let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        let path = dir.join(format!("{stem}.ecs.json"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &pretty).unwrap();
            continue;
        }
        let Ok(golden) = std::fs::read_to_string(&path) else {
            failures.push(format!("{stem}: missing {}", path.display()));
            continue;
        };
        let golden_doc: Value = serde_json::from_str(&golden).unwrap();
        if serde_json::to_vec(&golden_doc).unwrap() != bytes || golden != pretty {
            failures.push(format!(
                "{stem}: output differs from {}\n--- got:\n{pretty}",
                path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(rerun with SECFLOW_BLESS=1 to accept)",
        failures.join("\n")
    );
}

#[test]
fn every_example_goes_through_format_transform_and_avro() {
    for (stem, event) in examples() {
        let direct = to_ecs(&event).unwrap();
        assert_eq!(Format::Ecs.transform(&event).unwrap(), direct, "{stem}");
        let back = SecurityEvent::from_avro_datum(&event.to_avro_datum().unwrap()).unwrap();
        assert_eq!(
            to_ecs(&back).unwrap(),
            direct,
            "{stem}: after an Avro round trip"
        );
    }
}

#[test]
fn validator_rejects_what_it_should() {
    let ok = transform_valid(&example("process_alert_enriched"));
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut d = ok.clone();
        f(&mut d);
        let errors = ecs_errors(&d);
        assert!(!errors.is_empty(), "accepted: {d}");
    };
    bad(&|d| d["event"]["madeup"] = json!("x"));
    bad(&|d| d["event"]["severity"] = json!("73"));
    bad(&|d| d["event"]["kind"] = json!("finding"));
    bad(&|d| d["event"]["type"] = json!(["protocol"]));
    bad(&|d| d["event"]["category"] = json!(["threat"]));
    bad(&|d| d["event"]["outcome"] = json!(["success"]));
    bad(&|d| d["host"]["mac"] = json!(["00:50:56:a1:2b:3c"]));
    bad(&|d| d["host"]["ip"] = json!(["not-an-ip"]));
    bad(&|d| d["host"]["name"] = json!(["a", "b"]));
    bad(&|d| d["source"]["ip"] = json!("203.0.113.0/24"));
    bad(&|d| d["@timestamp"] = json!(1741950943000_i64));
    bad(&|d| d["process"]["pid"] = json!(1.5));
    bad(&|d| d["labels"]["a"] = json!({"b": "c"}));
    bad(&|d| d["threat"]["enrichments"][0]["indicator"]["confidence"] = json!("85"));
    bad(&|d| d["user"] = json!({}));
    bad(&|d| d["related"]["ip"] = json!(["203.0.113.50", "192.0.2.42"]));
    bad(&|d| {
        d.as_object_mut().unwrap().shift_remove("@timestamp");
    });
    bad(&|d| {
        d["ecs"].as_object_mut().unwrap().shift_remove("version");
    });
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_events_map_to_valid_deterministic_ecs(e in common::arbitrary::arb_event()) {
        let doc = transform_valid(&e);
        prop_assert_eq!(to_ecs(&e).unwrap(), to_ecs(&e.clone()).unwrap());
        // Spot checks that the values survive (escaping included).
        let (t, o) = (format_rfc3339(e.event_time), format_rfc3339(e.observed_time));
        prop_assert_eq!(doc["@timestamp"].as_str(), t.as_deref());
        prop_assert_eq!(doc["event"]["created"].as_str(), o.as_deref());
        prop_assert_eq!(doc["event"]["id"].as_str(), Some(e.event_id.as_str()));
        prop_assert_eq!(doc["message"].as_str(), Some(e.message.as_str()));
        prop_assert_eq!(doc["event"]["original"].as_str(), e.raw.as_deref());
        prop_assert_eq!(doc["organization"]["id"].as_str(), Some(e.tenant.as_str()));
        prop_assert_eq!(doc["threat"]["enrichments"].as_array().map_or(0, Vec::len), e.enrichments.len());
        prop_assert_eq!(doc["tags"].as_array().map_or(0, Vec::len), e.tags.len());
        if let Some(p) = &e.process {
            prop_assert_eq!(doc["process"]["command_line"].as_str(), p.command_line.as_deref());
        }
        if let Some(h) = &e.http {
            prop_assert_eq!(doc["url"]["original"].as_str(), Some(h.url.as_str()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Edge cases
// ---------------------------------------------------------------------------------------------

/// The smallest valid event: no optional group at all.
fn minimal() -> SecurityEvent {
    SecurityEvent::from_json(
        r#"{
          "event_id": "e-1", "event_time": 1741950943000, "observed_time": 1741950944000,
          "tenant": "t", "kind": "event", "category": "network", "activity": "traffic",
          "action": "flow", "outcome": "unknown", "severity": "info",
          "message": "m", "product": {"vendor": "V", "name": "P"},
          "network": {"src_hostname": "a.example"}
        }"#,
    )
    .unwrap()
}

#[test]
fn missing_optional_groups_leave_no_empty_objects() {
    let mut e = minimal();
    e.network = None; // not a valid network event any more, but the transform must still cope
    let doc = transform_valid(&e);
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "@timestamp",
            "ecs",
            "event",
            "message",
            "organization",
            "observer"
        ]
    );
    assert_eq!(
        doc["event"],
        json!({
            "kind": "event", "category": ["network"], "type": ["connection"],
            "action": "flow", "outcome": "unknown", "severity": 1, "id": "e-1",
            "created": "2025-03-14T11:15:44.000Z", "provider": "P", "dataset": "v.p"
        })
    );
    assert_eq!(doc["observer"], json!({"vendor": "V", "product": "P"}));

    let doc = transform_valid(&minimal());
    assert_eq!(
        doc["source"],
        json!({"address": "a.example", "domain": "a.example"})
    );
    assert!(doc.get("network").is_none());
    assert_eq!(doc["related"], json!({"hosts": ["a.example"]}));
}

#[test]
fn ipv6_endpoints() {
    let doc = transform_valid(&example("network_connection_ipv6"));
    assert_eq!(doc["network"]["type"], "ipv6");
    assert_eq!(doc["source"]["ip"], "2001:db8:beef::17");
    assert_eq!(doc["destination"]["ip"], "2001:db8:10::a");
    assert_eq!(doc["event"]["type"], json!(["connection", "denied"]));

    // Non-canonical IPv6 text is written in canonical form everywhere (and deduplicated).
    let mut e = minimal();
    let n = e.network.as_mut().unwrap();
    n.src_ip = Some("2001:DB8:0:0:0:0:0:1".into());
    n.dst_ip = Some("::ffff:192.0.2.1".into());
    e.host = Some(Host {
        hostname: "h".into(),
        ip: vec!["2001:db8::1".into(), "192.0.2.7".into()],
        ..Host::default()
    });
    e.http = Some(Http {
        url: "http://[2001:db8::1]:8080/x".into(),
        ..Http::default()
    });
    let doc = transform_valid(&e);
    assert_eq!(doc["source"]["ip"], "2001:db8::1");
    assert_eq!(doc["destination"]["ip"], "::ffff:192.0.2.1");
    assert_eq!(doc["network"]["type"], "ipv6");
    assert_eq!(doc["host"]["ip"], json!(["2001:db8::1", "192.0.2.7"]));
    assert_eq!(doc["url"]["domain"], "[2001:db8::1]");
    assert_eq!(doc["url"]["port"], 8080);
    assert_eq!(
        doc["related"]["ip"],
        json!(["192.0.2.7", "::ffff:192.0.2.1", "2001:db8::1"])
    );

    let mut e = minimal();
    e.network.as_mut().unwrap().dst_ip = Some("192.0.2.9".into());
    assert_eq!(transform_valid(&e)["network"]["type"], "ipv4");
}

fn enrichment(ioc_type: &str, value: &str, field: &str) -> Enrichment {
    Enrichment {
        indicator_id: format!("indicator--{ioc_type}"),
        ioc_type: ioc_type.into(),
        ioc_value: value.into(),
        matched_field: field.into(),
        confidence: None,
        tlp: None,
        valid_until: None,
        provider: "feed".into(),
    }
}

#[test]
fn enrichment_mapping() {
    let doc = transform_valid(&example("process_alert_enriched"));
    assert_eq!(
        doc["threat"]["enrichments"],
        json!([
            {
                "indicator": {
                    "type": "domain-name",
                    "name": "updates.example.org",
                    "provider": "taxii:acme-intel/collections/c2-domains",
                    "confidence": "High",
                    "marking": {"tlp": "AMBER"},
                    "url": {"domain": "updates.example.org"}
                },
                "matched": {
                    "atomic": "updates.example.org",
                    "field": "destination.domain",
                    "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                    "type": "indicator_match_rule"
                }
            },
            {
                "indicator": {
                    "type": "ipv4-addr",
                    "name": "203.0.113.0/24",
                    "provider": "taxii:acme-intel/collections/c2-infrastructure",
                    "confidence": "Medium",
                    "marking": {"tlp": "GREEN"}
                },
                "matched": {
                    "atomic": "203.0.113.0/24",
                    "field": "destination.ip",
                    "id": "indicator--2f9b4a6c-3d1e-4b7a-a0c5-6e8d9f1b2c3a",
                    "type": "indicator_match_rule"
                }
            }
        ])
    );

    let mut e = minimal();
    let sha = "9F914D42706FE215501044ACD85A32D58AAEF1419D404FDDFA5D3B48F66CCD9F";
    e.enrichments = vec![
        Enrichment {
            confidence: Some(0),
            tlp: Some("amber+strict".into()),
            ..enrichment("ipv6-addr", "2001:DB8::5", "network.src_ip")
        },
        Enrichment {
            confidence: Some(10),
            tlp: Some("clear".into()),
            ..enrichment("url", "https://evil.example/x", "http.url")
        },
        enrichment("email-addr", "bad@evil.example", "email.to[1]"),
        enrichment("file", sha, "file.sha256"),
        enrichment(
            "md5",
            "5d41402abc4b2a76b9719d911017c592",
            "email.attachments[0].md5",
        ),
        enrichment("ipv4", "198.51.100.7", "custom.path"),
        enrichment("x509-certificate", "ab:cd", "tls.server"),
    ];
    let doc = transform_valid(&e);
    let en = &doc["threat"]["enrichments"];
    assert_eq!(en[0]["indicator"]["ip"], "2001:db8::5");
    assert_eq!(en[0]["indicator"]["confidence"], "None");
    assert_eq!(en[0]["indicator"]["marking"]["tlp"], "AMBER+STRICT");
    assert_eq!(en[0]["matched"]["field"], "source.ip");
    assert_eq!(en[1]["indicator"]["type"], "url");
    assert_eq!(en[1]["indicator"]["url"]["full"], "https://evil.example/x");
    assert_eq!(en[1]["indicator"]["confidence"], "Low");
    assert_eq!(en[1]["indicator"]["marking"]["tlp"], "CLEAR");
    assert_eq!(en[1]["matched"]["field"], "url.full");
    assert_eq!(en[2]["indicator"]["email"]["address"], "bad@evil.example");
    assert_eq!(en[2]["matched"]["field"], "email.to.address");
    assert_eq!(en[3]["indicator"]["type"], "file");
    assert_eq!(
        en[3]["indicator"]["file"]["hash"]["sha256"],
        sha.to_ascii_lowercase()
    );
    assert_eq!(
        en[3]["matched"]["atomic"], sha,
        "atomic keeps the IOC as stored"
    );
    assert_eq!(en[4]["indicator"]["type"], "file");
    assert_eq!(
        en[4]["indicator"]["file"]["hash"]["md5"],
        "5d41402abc4b2a76b9719d911017c592"
    );
    assert_eq!(en[5]["indicator"]["type"], "ipv4-addr");
    assert_eq!(en[5]["indicator"]["ip"], "198.51.100.7");
    assert_eq!(en[5]["matched"]["field"], "custom.path");
    assert_eq!(en[6]["indicator"]["type"], "x509-certificate");
    assert!(en
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["matched"]["type"] == "indicator_match_rule"));
    // Enrichment IOCs are not values of the event itself: they do not go into related.*.
    assert!(doc["related"].get("ip").is_none());
}

#[test]
fn classification_is_valid_for_every_kind_category_activity_and_disposition() {
    let base = example("process_alert_enriched");
    // Dispositions only matter as allowed / denied / neither: one or two of each.
    let dispositions = [
        None,
        Some(Disposition::Allowed),
        Some(Disposition::Blocked),
        Some(Disposition::Dropped),
        Some(Disposition::Quarantined),
        Some(Disposition::Detected),
    ];
    let mut seen = BTreeMap::new();
    for &kind in EventKind::ALL {
        for &category in EventCategory::ALL {
            for &activity in Activity::ALL {
                for &disposition in &dispositions {
                    let e = SecurityEvent {
                        kind,
                        category,
                        activity,
                        disposition,
                        ..base.clone()
                    };
                    let doc = transform_valid(&e);
                    if allowed_activities(kind, category).contains(&activity) {
                        seen.insert(
                            format!("{kind}/{category}/{activity}/{disposition:?}"),
                            (
                                doc["event"]["category"].clone(),
                                doc["event"]["type"].clone(),
                            ),
                        );
                    }
                }
            }
        }
    }
    let get = |k: &str| seen[k].clone();
    assert_eq!(
        get("event/authentication/logon/None"),
        (json!(["authentication"]), json!(["start"]))
    );
    assert_eq!(
        get("event/authentication/logoff/Some(Blocked)"),
        (json!(["authentication"]), json!(["end"])),
        "authentication admits no denied"
    );
    assert_eq!(
        get("event/network/refuse/Some(Blocked)"),
        (json!(["network"]), json!(["connection", "denied"]))
    );
    assert_eq!(
        get("event/network/open/Some(Allowed)"),
        (
            json!(["network"]),
            json!(["connection", "start", "allowed"])
        )
    );
    assert_eq!(
        get("event/dns/query/Some(Dropped)"),
        (json!(["network"]), json!(["protocol", "denied"]))
    );
    assert_eq!(
        get("event/http/post/Some(Allowed)"),
        (json!(["web", "network"]), json!(["access", "allowed"]))
    );
    assert_eq!(
        get("event/file/rename/None"),
        (json!(["file"]), json!(["change"]))
    );
    assert_eq!(
        get("event/email/receive/Some(Allowed)"),
        (json!(["email"]), json!(["info"]))
    );
    assert_eq!(
        get("alert/malware/create/Some(Blocked)"),
        (
            json!(["malware", "intrusion_detection"]),
            json!(["info", "denied"])
        )
    );
    assert_eq!(
        get("alert/process/update/Some(Detected)"),
        (json!(["process", "intrusion_detection"]), json!(["info"]))
    );
}

#[test]
fn severity_and_outcome() {
    let mut e = minimal();
    for (s, n) in [
        (Severity::Info, 1),
        (Severity::Low, 21),
        (Severity::Medium, 47),
        (Severity::High, 73),
        (Severity::Critical, 99),
    ] {
        e.severity = s;
        assert_eq!(transform_valid(&e)["event"]["severity"], n);
    }
    for o in Outcome::ALL {
        e.outcome = *o;
        assert_eq!(transform_valid(&e)["event"]["outcome"], o.as_str());
    }
}

#[test]
fn labels_are_dedotted_without_clashes() {
    let mut e = minimal();
    e.labels = [
        ("a.b", "dotted"),
        ("a_b", "plain"),
        ("x.y.z", "deep"),
        ("k", "v"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let doc = transform_valid(&e);
    assert_eq!(
        serde_json::to_string(&doc["labels"]).unwrap(),
        r#"{"a_b":"plain","k":"v","x_y_z":"deep"}"#
    );
}

#[test]
fn host_details_and_appliances() {
    let doc = transform_valid(&example("authentication_logon_success"));
    assert_eq!(doc["host"]["mac"], json!(["00-50-56-A1-2B-3C"]));
    assert_eq!(doc["host"]["name"], "ws-fin-042.corp.example.com");
    assert!(
        doc["observer"].get("hostname").is_none(),
        "a desktop is not an observer"
    );

    let doc = transform_valid(&example("network_connection_ipv4"));
    assert_eq!(doc["observer"]["type"], "firewall");
    assert_eq!(doc["observer"]["hostname"], "pa-fw-edge-01");
    assert_eq!(doc["observer"]["ip"], json!(["192.0.2.1"]));
    assert_eq!(doc["network"]["bytes"], 48213 + 2310);
    assert_eq!(doc["source"]["bytes"], 2310);
    assert_eq!(doc["destination"]["bytes"], 48213);
    assert_eq!(doc["network"]["iana_number"], "6");

    let mut e = minimal();
    e.host = Some(Host {
        hostname: "h".into(),
        mac: Some("0a:1b:2c:3d:4e:5f".into()),
        os_type: Some(OsType::Other),
        ..Host::default()
    });
    let doc = transform_valid(&e);
    assert_eq!(doc["host"]["mac"], json!(["0A-1B-2C-3D-4E-5F"]));
    assert!(
        doc["host"].get("os").is_none(),
        "ECS has no `other` OS type"
    );
}

#[test]
fn files_processes_and_users() {
    let doc = transform_valid(&example("process_launch"));
    assert_eq!(doc["process"]["parent"]["name"], "WINWORD.EXE");
    assert_eq!(doc["process"]["start"], "2025-03-14T11:15:42.311Z");
    assert_eq!(doc["process"]["user"]["name"], "CORP\\alice");
    assert!(doc["process"].get("args").is_none());
    assert_eq!(doc["related"]["user"], json!(["alice"]));

    let doc = transform_valid(&example("authentication_account_switch"));
    assert_eq!(doc["user"]["name"], "bob");
    assert_eq!(doc["user"]["target"], json!({"name": "root", "id": "0"}));
    assert_eq!(doc["service"]["name"], "sudo");
    assert_eq!(doc["related"]["user"], json!(["0", "1001", "bob", "root"]));

    // The file name comes from the path when not given, for either separator.
    let mut e = example("file_create");
    let f = e.file.as_mut().unwrap();
    f.name = None;
    f.md5 = Some("5D41402ABC4B2A76B9719D911017C592".into());
    let doc = transform_valid(&e);
    assert_eq!(doc["file"]["name"], "upd4711.exe");
    assert_eq!(doc["file"]["extension"], "exe");
    assert_eq!(
        doc["file"]["hash"]["md5"],
        "5d41402abc4b2a76b9719d911017c592"
    );
    e.file.as_mut().unwrap().path = "/var/tmp/.hidden".into();
    let doc = transform_valid(&e);
    assert_eq!(doc["file"]["name"], ".hidden");
    assert!(doc["file"].get("extension").is_none());
}

#[test]
fn dns_and_urls() {
    let doc = transform_valid(&example("dns_query"));
    assert_eq!(doc["dns"]["type"], "answer");
    assert_eq!(doc["dns"]["resolved_ip"], json!(["203.0.113.50"]));
    assert_eq!(doc["network"]["protocol"], "dns");
    assert_eq!(
        doc["related"]["hosts"],
        json!([
            "cdn.example.net",
            "ns1.corp.example.com",
            "updates.example.org"
        ])
    );

    let mut e = example("dns_query");
    e.activity = Activity::Query;
    let d = e.dns.as_mut().unwrap();
    d.rcode = None;
    d.answers.clear();
    e.network.as_mut().unwrap().protocol = None;
    let doc = transform_valid(&e);
    assert_eq!(doc["dns"]["type"], "query");
    assert_eq!(doc["network"]["protocol"], "dns");
    assert!(doc["dns"].get("answers").is_none());

    let doc = transform_valid(&example("http_request"));
    assert_eq!(
        doc["url"],
        json!({
            "original": "https://updates.example.org/client/upd4711.exe?ref=mail",
            "full": "https://updates.example.org/client/upd4711.exe?ref=mail",
            "scheme": "https",
            "domain": "updates.example.org",
            "path": "/client/upd4711.exe",
            "query": "ref=mail",
            "extension": "exe"
        })
    );

    // A URL the splitter is not sure about keeps only original/full; user info never leaks
    // into url.username/password.
    let mut e = example("http_request");
    e.http.as_mut().unwrap().url = "https://host:99999/x".into();
    let doc = transform_valid(&e);
    assert_eq!(
        doc["url"],
        json!({"original": "https://host:99999/x", "full": "https://host:99999/x"})
    );
    e.http.as_mut().unwrap().url = "https://u:secret@Host.Example:8443?".into();
    let doc = transform_valid(&e);
    assert_eq!(doc["url"]["domain"], "host.example");
    assert_eq!(doc["url"]["port"], 8443);
    assert_eq!(doc["url"]["query"], "");
    assert!(doc["url"].get("username").is_none() && doc["url"].get("password").is_none());
}

#[test]
fn mitre_and_malware() {
    let doc = transform_valid(&example("process_alert_enriched"));
    assert_eq!(
        doc["threat"]["technique"]["subtechnique"]["reference"],
        json!([
            "https://attack.mitre.org/techniques/T1566/001/",
            "https://attack.mitre.org/techniques/T1059/001/"
        ])
    );
    let doc = transform_valid(&example("malware_alert"));
    assert_eq!(
        doc["threat"]["software"],
        json!({"name": "Trojan:Win32/Wacatac.B!ml", "type": "Malware", "alias": ["Wacatac"]})
    );
    assert!(
        doc["threat"].get("framework").is_none(),
        "no ATT&CK data, no framework"
    );
}

#[test]
fn hostile_text_is_escaped() {
    let mut e = minimal();
    e.message =
        "quote \" backslash \\ nl \n cr \r tab \t nul \u{0} del \u{7f} ls \u{2028} 🦀".into();
    e.raw = Some("{\"json\":\"inside\"}".into());
    e.tags = vec!["a|b=c".into(), "日本".into()];
    let doc = transform_valid(&e);
    assert_eq!(doc["message"].as_str().unwrap(), e.message);
    assert_eq!(doc["event"]["original"], "{\"json\":\"inside\"}");
    assert_eq!(doc["tags"], json!(["a|b=c", "日本"]));
}

#[test]
fn unmappable_values_are_reported_not_panicked_on() {
    let mut e = minimal();
    e.event_time = -1;
    assert_eq!(
        to_ecs(&e),
        Err(TransformError::Unmappable {
            format: "ecs",
            field: "event_time".into(),
            reason: "-1 ms is outside the years 1970-9999".into()
        })
    );
    let mut e = minimal();
    e.observed_time = i64::MAX;
    assert!(
        matches!(to_ecs(&e), Err(TransformError::Unmappable { field, .. }) if field == "observed_time")
    );
    let mut e = minimal();
    e.host = Some(Host {
        hostname: "h".into(),
        ip: vec!["192.0.2.1".into(), "300.1.1.1".into()],
        ..Host::default()
    });
    assert!(
        matches!(to_ecs(&e), Err(TransformError::Unmappable { field, .. }) if field == "host.ip[1]")
    );
    let mut e = minimal();
    e.network.as_mut().unwrap().dst_ip = Some("localhost".into());
    assert!(
        matches!(to_ecs(&e), Err(TransformError::Unmappable { field, .. }) if field == "network.dst_ip")
    );

    // Empty strings (which the gate refuses) are treated as absent, not emitted as "".
    let mut e = minimal();
    e.product.version = Some(String::new());
    e.tags = vec![String::new()];
    e.labels.insert("k".into(), String::new());
    let doc = transform_valid(&e);
    assert!(doc["observer"].get("version").is_none());
    assert!(doc.get("tags").is_none() && doc.get("labels").is_none());
}
