//! The sample events in `schemas/examples/` and the producer gate.
//!
//! Every example must parse, validate, round-trip through the Avro datum and through `to_json`,
//! and agree byte for byte with `apache-avro`'s generic encoder and decoder. Each kind of input
//! error is reported with its field path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use processors::event::{
    schema, Activity, EventCategory, EventError, EventKind, SecurityEvent, SCHEMA_JSON,
};
use serde_json::{json, Value as Json};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples")
}

fn examples() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 12,
        "expected the example set, found {}",
        out.len()
    );
    out
}

fn example(name: &str) -> Json {
    let text = std::fs::read_to_string(examples_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn apache_encode(schema: &Schema, v: apache_avro::types::Value) -> Vec<u8> {
    GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(v)
        .unwrap()
}

fn apache_decode(bytes: &[u8]) -> apache_avro::types::Value {
    let mut input = bytes;
    let v = GenericDatumReader::builder(schema())
        .build()
        .unwrap()
        .read_value(&mut input)
        .unwrap();
    assert!(input.is_empty(), "apache-avro left {} bytes", input.len());
    v
}

#[test]
fn every_example_parses_validates_and_round_trips() {
    for (name, text) in examples() {
        let e = SecurityEvent::from_json(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
        e.validate().unwrap();

        // Avro datum, our codec both ways.
        let bytes = e.to_avro_datum().unwrap();
        assert_eq!(SecurityEvent::from_avro_datum(&bytes).unwrap(), e, "{name}");

        // Avro value: resolved form, valid against the schema, round-trips.
        let v = e.to_avro_value().unwrap();
        assert!(v.validate(schema()), "{name}: value does not validate");
        assert_eq!(
            v.clone().resolve(schema()).unwrap(),
            v,
            "{name}: not in resolved form"
        );
        assert_eq!(
            SecurityEvent::from_avro_value(v.clone()).unwrap(),
            e,
            "{name}"
        );

        // Cross-check with apache-avro's generic codec.
        let apache_bytes = apache_encode(schema(), v);
        assert_eq!(
            SecurityEvent::from_avro_datum(&apache_bytes).unwrap(),
            e,
            "{name}"
        );
        assert_eq!(
            SecurityEvent::from_avro_value(apache_decode(&bytes)).unwrap(),
            e,
            "{name}"
        );
        if e.labels.len() <= 1 {
            // apache-avro writes maps in HashMap order, so only compare bytes when that is moot.
            assert_eq!(bytes, apache_bytes, "{name}: bytes differ from apache-avro");
        } else {
            assert_eq!(bytes.len(), apache_bytes.len(), "{name}");
        }

        // JSON: to_json is the input form.
        let j = e.to_json();
        assert_eq!(
            SecurityEvent::from_json_value(j.clone()).unwrap(),
            e,
            "{name}"
        );
        assert_eq!(
            SecurityEvent::from_json(&serde_json::to_string_pretty(&j).unwrap()).unwrap(),
            e,
            "{name}"
        );
    }
}

#[test]
fn examples_cover_every_category_both_kinds_and_ipv6() {
    let events: Vec<SecurityEvent> = examples()
        .iter()
        .map(|(_, t)| SecurityEvent::from_json(t).unwrap())
        .collect();
    let categories: BTreeSet<EventCategory> = events.iter().map(|e| e.category).collect();
    assert_eq!(categories.len(), EventCategory::ALL.len(), "{categories:?}");
    assert!(events.iter().any(|e| e.kind == EventKind::Alert));
    assert!(events.iter().any(|e| e.kind == EventKind::Event));
    let ipv6 = events.iter().any(|e| {
        e.network
            .as_ref()
            .and_then(|n| n.src_ip.as_deref())
            .is_some_and(|ip| ip.contains(':'))
    });
    assert!(ipv6, "no IPv6 network example");
    assert!(events.iter().any(|e| !e.enrichments.is_empty()));
    assert!(events
        .iter()
        .any(|e| e.mitre.as_ref().is_some_and(|m| !m.techniques.is_empty())));
}

#[test]
fn to_json_writes_utc_millis_and_leaves_out_absent_values() {
    let e = SecurityEvent::from_json_value(example("authentication_logon_failure.json")).unwrap();
    let j = e.to_json();
    // Input was 10:02:11.507+01:00.
    assert_eq!(j["event_time"], json!("2025-03-14T09:02:11.507Z"));
    assert_eq!(e.event_time, 1_741_942_931_507);
    assert!(j.get("rule").is_none());
    assert!(j["user"].get("domain").is_none());
    assert_eq!(j["kind"], json!("event"));
    // Field order is schema order.
    let keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        &keys[..4],
        &["event_id", "event_time", "observed_time", "tenant"]
    );
}

#[test]
fn integer_epoch_millis_are_accepted() {
    let e = SecurityEvent::from_json_value(example("authentication_account_switch.json")).unwrap();
    assert_eq!(e.event_time, 1_741_946_400_250);
    assert_eq!(e.to_json()["event_time"], json!("2025-03-14T10:00:00.250Z"));
}

#[test]
fn encoding_is_deterministic() {
    let e = SecurityEvent::from_json_value(example("process_alert_enriched.json")).unwrap();
    assert!(e.labels.len() > 1);
    assert_eq!(
        e.to_avro_datum().unwrap(),
        e.clone().to_avro_datum().unwrap()
    );
}

#[test]
fn schema_const_is_the_file() {
    let on_disk = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/security_event.v1.avsc"),
    )
    .unwrap();
    assert_eq!(SCHEMA_JSON, on_disk);
}

// ---------------------------------------------------------------- errors with field paths

/// Apply `edit` to the IPv4 network example and return the error of `from_json_value`.
fn error_after(base: &str, edit: impl FnOnce(&mut Json)) -> EventError {
    let mut j = example(base);
    edit(&mut j);
    match SecurityEvent::from_json_value(j.clone()) {
        Ok(_) => panic!("accepted: {j}"),
        Err(e) => {
            // The text form must give the same verdict.
            let from_text = SecurityEvent::from_json(&j.to_string()).unwrap_err();
            assert_eq!(from_text.field(), e.field(), "{from_text} vs {e}");
            e
        }
    }
}

fn assert_invalid(e: &EventError, field: &str, reason_part: &str) {
    match e {
        EventError::Invalid { field: f, reason } => {
            assert_eq!(f, field, "{e}");
            assert!(
                reason.contains(reason_part),
                "reason `{reason}` lacks `{reason_part}`"
            );
            assert!(e.to_string().contains(field), "{e}");
        }
        other => panic!("expected Invalid at {field}, got {other:?}"),
    }
}

const NET: &str = "network_connection_ipv4.json";

#[test]
fn bad_ip_names_the_field() {
    let e = error_after(NET, |j| j["network"]["src_ip"] = json!("192.0.2.300"));
    assert_invalid(&e, "network.src_ip", "not an IPv4 or IPv6 address");
    let e = error_after(NET, |j| {
        j["host"]["ip"] = json!(["192.0.2.1", "2001:db8::zz"])
    });
    assert_invalid(&e, "host.ip[1]", "2001:db8::zz");
}

#[test]
fn bad_enum_names_the_field() {
    let e = error_after(NET, |j| j["severity"] = json!("urgent"));
    assert_invalid(&e, "severity", "unknown variant `urgent`");
    let e = error_after(NET, |j| j["network"]["direction"] = json!("sideways"));
    assert_invalid(&e, "network.direction", "sideways");
    let e = error_after(NET, |j| j["kind"] = json!("Alert"));
    assert_invalid(&e, "kind", "Alert");
}

#[test]
fn bad_time_names_the_field() {
    let e = error_after(NET, |j| j["event_time"] = json!("yesterday"));
    assert_invalid(&e, "event_time", "RFC 3339");
    let e = error_after(NET, |j| j["observed_time"] = json!("1969-12-31T23:59:59Z"));
    assert_invalid(&e, "observed_time", "outside 1970");
    let e = error_after(NET, |j| j["event_time"] = json!(-5));
    assert_invalid(&e, "event_time", "outside 1970");
    let e = error_after(NET, |j| j["event_time"] = json!(1.5e12));
    assert_invalid(&e, "event_time", "RFC 3339");
    let e = error_after("process_launch.json", |j| {
        j["process"]["start_time"] = json!("2025-13-01T00:00:00Z")
    });
    assert_invalid(&e, "process.start_time", "RFC 3339");
}

#[test]
fn missing_required_names_the_field() {
    let e = error_after(NET, |j| {
        j.as_object_mut().unwrap().remove("tenant");
    });
    assert_invalid(&e, "tenant", "missing field");
    let e = error_after(NET, |j| {
        j["product"].as_object_mut().unwrap().remove("vendor");
    });
    assert_invalid(&e, "product.vendor", "missing field");
    let e = error_after(NET, |j| j["message"] = json!("  "));
    assert_invalid(&e, "message", "must not be empty");
    let e = error_after(NET, |j| j["event_id"] = json!(""));
    assert_invalid(&e, "event_id", "must not be empty");
    let e = error_after(NET, |j| j["tenant"] = Json::Null);
    assert_invalid(&e, "tenant", "invalid type");
}

#[test]
fn unknown_field_names_the_field() {
    let e = error_after(NET, |j| j["colour"] = json!("blue"));
    assert_invalid(&e, "colour", "unknown field `colour`");
    let e = error_after(NET, |j| j["network"]["vlan"] = json!(12));
    assert_invalid(&e, "network.vlan", "unknown field `vlan`");
    let e = error_after("dns_query.json", |j| {
        j["dns"]["answers"][1]["class"] = json!("IN")
    });
    assert_invalid(&e, "dns.answers[1].class", "unknown field `class`");
}

#[test]
fn wrong_types_and_ranges_name_the_field() {
    let e = error_after(NET, |j| j["network"]["dst_port"] = json!(70000));
    assert_invalid(&e, "network.dst_port", "outside 0-65535");
    let e = error_after(NET, |j| j["network"]["dst_port"] = json!("443"));
    assert_invalid(&e, "network.dst_port", "invalid type");
    let e = error_after(NET, |j| j["network"]["bytes_in"] = json!(-1));
    assert_invalid(&e, "network.bytes_in", "negative");
    let e = error_after("file_create.json", |j| {
        j["file"]["sha256"] = json!("abc123")
    });
    assert_invalid(&e, "file.sha256", "SHA-256");
    let e = error_after("file_create.json", |j| {
        j["file"]["md5"] = json!("zz".repeat(16))
    });
    assert_invalid(&e, "file.md5", "MD5");
    let e = error_after("http_request.json", |j| j["http"]["status"] = json!(99));
    assert_invalid(&e, "http.status", "100-599");
    let e = error_after("http_request.json", |j| {
        j["http"]["url"] = json!("/no/scheme")
    });
    assert_invalid(&e, "http.url", "absolute URL");
    let e = error_after("email_with_attachment.json", |j| {
        j["email"]["to"] = json!(["alice"])
    });
    assert_invalid(&e, "email.to[0]", "e-mail address");
    let e = error_after(NET, |j| j["action"] = json!("Connection Allowed"));
    assert_invalid(&e, "action", "lowercase token");
    let e = error_after(NET, |j| j["host"]["mac"] = json!("00:50:56:a1:2b"));
    assert_invalid(&e, "host.mac", "MAC address");
    let e = error_after(NET, |j| j["labels"]["env"] = json!(""));
    assert_invalid(&e, "labels.env", "must not be empty");
}

#[test]
fn semantic_rules_name_the_field() {
    let e = error_after("malware_alert.json", |j| {
        j.as_object_mut().unwrap().remove("rule");
    });
    assert_invalid(&e, "rule", "kind `alert`");
    let e = error_after("malware_alert.json", |j| {
        j.as_object_mut().unwrap().remove("malware");
    });
    assert_invalid(&e, "malware", "category `malware`");
    let e = error_after("malware_alert.json", |j| j["kind"] = json!("event"));
    assert_invalid(&e, "kind", "only as a detection");
    let e = error_after(NET, |j| j["activity"] = json!("logon"));
    assert_invalid(
        &e,
        "activity",
        "not an activity of kind `event` category `network`",
    );
    let e = error_after("http_request.json", |j| j["activity"] = json!("post"));
    assert_invalid(&e, "activity", "http.method `GET`");
    let e = error_after("authentication_logon_success.json", |j| {
        j.as_object_mut().unwrap().remove("user");
    });
    assert_invalid(&e, "user", "category `authentication`");
    let e = error_after("authentication_logon_success.json", |j| {
        j.as_object_mut().unwrap().remove("network");
        j["auth"].as_object_mut().unwrap().remove("service");
    });
    assert_invalid(&e, "auth.service", "what was authenticated to");
    let e = error_after("process_launch.json", |j| {
        j.as_object_mut().unwrap().remove("user");
        j["process"].as_object_mut().unwrap().remove("parent");
    });
    assert_invalid(&e, "process.parent", "actor");
    let e = error_after("process_launch.json", |j| {
        let p = j["process"].as_object_mut().unwrap();
        p.remove("pid");
        p.remove("entity_id");
    });
    assert_invalid(&e, "process", "pid or entity_id");
    let e = error_after(NET, |j| j["network"] = json!({"transport": "tcp"}));
    assert_invalid(&e, "network", "source or destination");
    let e = error_after("intrusion_detection_alert.json", |j| {
        j["mitre"]["techniques"][0]["subtechnique"]["id"] = json!("T1059.001")
    });
    assert_invalid(
        &e,
        "mitre.techniques[0].subtechnique.id",
        "does not belong to technique",
    );
    let e = error_after("intrusion_detection_alert.json", |j| {
        j["mitre"]["techniques"][0]["tactic_ids"] = json!(["TA0002"])
    });
    assert_invalid(
        &e,
        "mitre.techniques[0].tactic_ids[0]",
        "not one of mitre.tactics",
    );
    let e = error_after("process_alert_enriched.json", |j| {
        j["enrichments"][1]["confidence"] = json!(101)
    });
    assert_invalid(&e, "enrichments[1].confidence", "0-100");
    let e = error_after("email_with_attachment.json", |j| {
        j["email"]["to"] = json!([]);
        j["email"]["cc"] = json!([]);
    });
    assert_invalid(&e, "email.to", "at least one recipient");
}

#[test]
fn malformed_json_is_a_json_error() {
    let e = SecurityEvent::from_json("{\"event_id\": ").unwrap_err();
    assert!(matches!(e, EventError::Json { .. }), "{e:?}");
    let mut text = serde_json::to_string(&example(NET)).unwrap();
    text.push_str(" {}");
    let e = SecurityEvent::from_json(&text).unwrap_err();
    assert!(matches!(e, EventError::Json { .. }), "{e:?}");
    let e = SecurityEvent::from_json("[1, 2]").unwrap_err();
    assert!(matches!(e, EventError::Invalid { .. }), "{e:?}");
}

// ---------------------------------------------------------------- Avro decoding is defensive

fn sample_datum() -> (SecurityEvent, Vec<u8>) {
    let e = SecurityEvent::from_json_value(example("process_alert_enriched.json")).unwrap();
    let bytes = e.to_avro_datum().unwrap();
    (e, bytes)
}

#[test]
fn every_truncation_is_an_error() {
    let (_, bytes) = sample_datum();
    for len in 0..bytes.len() {
        assert!(
            SecurityEvent::from_avro_datum(&bytes[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let (_, mut bytes) = sample_datum();
    bytes.push(0);
    let e = SecurityEvent::from_avro_datum(&bytes).unwrap_err();
    assert!(e.to_string().contains("trailing"), "{e}");
}

#[test]
fn corrupted_datums_never_panic() {
    let (e, bytes) = sample_datum();
    let mut seed: u64 = 0x5eed_f10e;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    let mut rejected = 0;
    for _ in 0..5_000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let i = next() % b.len();
            b[i] = next() as u8;
        }
        match SecurityEvent::from_avro_datum(&b) {
            Ok(decoded) => {
                // Whatever decodes passed the gate, so it encodes and decodes again unchanged.
                let again = decoded.to_avro_datum().unwrap();
                assert_eq!(SecurityEvent::from_avro_datum(&again).unwrap(), decoded);
            }
            Err(_) => rejected += 1,
        }
    }
    assert!(rejected > 0);
    assert_eq!(SecurityEvent::from_avro_datum(&bytes).unwrap(), e);
}

#[test]
fn decode_errors_carry_the_field_path() {
    let e = SecurityEvent::from_json_value(example(NET)).unwrap();
    let mut bytes = e.to_avro_datum().unwrap();
    // The kind enum is the first byte after event_id, event_time, observed_time and tenant.
    let mut pos = 0;
    let mut r = bytes.as_slice();
    // event_id: length-prefixed string (length < 64 so one varint byte).
    let id_len = (r[0] >> 1) as usize;
    pos += 1 + id_len;
    r = &bytes[pos..];
    // two timestamps: varints
    for _ in 0..2 {
        let mut n = 0;
        while r[n] & 0x80 != 0 {
            n += 1;
        }
        pos += n + 1;
        r = &bytes[pos..];
    }
    let tenant_len = (r[0] >> 1) as usize;
    pos += 1 + tenant_len;
    bytes[pos] = 0x7e; // kind index 63
    let err = SecurityEvent::from_avro_datum(&bytes).unwrap_err();
    match &err {
        EventError::Decode { field, reason } => {
            assert_eq!(field, "kind");
            assert!(reason.contains("EventKind index 63"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_events_are_not_encoded() {
    let mut e = SecurityEvent::from_json_value(example(NET)).unwrap();
    e.network.as_mut().unwrap().dst_ip = Some("not-an-ip".into());
    let err = e.to_avro_datum().unwrap_err();
    assert_eq!(err.field(), Some("network.dst_ip"));
    assert!(e.to_avro_value().is_err());
}

#[test]
fn avro_value_errors_carry_the_field_path() {
    let e = SecurityEvent::from_json_value(example(NET)).unwrap();
    let mut v = e.to_avro_value().unwrap();
    if let apache_avro::types::Value::Record(fields) = &mut v {
        let activity = fields.iter_mut().find(|(n, _)| n == "activity").unwrap();
        activity.1 = apache_avro::types::Value::Enum(99, "teleport".into());
    }
    let err = SecurityEvent::from_avro_value(v).unwrap_err();
    assert_eq!(err.field(), Some("activity"), "{err}");
    assert!(err.to_string().contains("teleport"));
    // Sanity: the symbol list the error would have needed.
    assert!(Activity::from_symbol("traffic").is_some());
}

#[test]
fn data_from_a_newer_compatible_writer_schema_is_read() {
    // A producer on a later minor version (one more optional field) writes; we read with v1.
    let fixture = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../schemas/fixtures/security_event.compatible.new_optional_field.avsc"),
    )
    .unwrap();
    let writer = Schema::parse_str(&fixture).unwrap();
    let e = SecurityEvent::from_json_value(example("dns_query.json")).unwrap();
    let mut v = e.to_avro_value().unwrap();
    if let apache_avro::types::Value::Record(fields) = &mut v {
        fields.push((
            "source_region".into(),
            apache_avro::types::Value::Union(
                1,
                Box::new(apache_avro::types::Value::String("eu-central-1".into())),
            ),
        ));
    }
    let bytes = apache_encode(&writer, v);
    assert!(
        SecurityEvent::from_avro_datum(&bytes).is_err(),
        "fast path must notice"
    );
    let read = SecurityEvent::from_avro_datum_with_writer_schema(&bytes, &writer).unwrap();
    assert_eq!(read, e);
    // And with the current schema as writer the slow path agrees with the fast one.
    let bytes = e.to_avro_datum().unwrap();
    assert_eq!(
        SecurityEvent::from_avro_datum_with_writer_schema(&bytes, schema()).unwrap(),
        e
    );
}
