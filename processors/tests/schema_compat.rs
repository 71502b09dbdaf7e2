//! The compatibility gate: the current canonical schema must read everything written with every
//! released version kept in `schemas/history/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use processors::event::SCHEMA_JSON;
use processors::schema_compat::{check_backward, CompatError};

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn history() -> PathBuf {
    schemas().join("history")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(schemas().join("fixtures").join(name)).unwrap()
}

#[test]
fn current_schema_is_backward_compatible_with_all_history() {
    check_backward(SCHEMA_JSON, &history()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn released_v1_0_is_kept_in_history() {
    assert!(history().join("security_event.v1.0.avsc").is_file());
}

#[test]
fn new_required_field_without_default_fails_with_a_readable_message() {
    let err = check_backward(
        &fixture("security_event.incompatible.new_required_field.avsc"),
        &history(),
    )
    .unwrap_err();
    let CompatError::Incompatible { problems } = &err else {
        panic!("unexpected error: {err}");
    };
    assert_eq!(problems.len(), 1, "{err}");
    assert_eq!(problems[0].field, "source_region");
    let msg = err.to_string();
    assert!(msg.contains("security_event.v1.0.avsc"), "{msg}");
    assert!(msg.contains("field source_region"), "{msg}");
    assert!(msg.contains("has no default"), "{msg}");
}

#[test]
fn narrowed_field_type_fails_with_a_readable_message() {
    let err = check_backward(
        &fixture("security_event.incompatible.type_change.avsc"),
        &history(),
    )
    .unwrap_err();
    let CompatError::Incompatible { problems } = &err else {
        panic!("unexpected error: {err}");
    };
    assert_eq!(problems.len(), 1, "{err}");
    assert_eq!(problems[0].field, "process.pid");
    let msg = err.to_string();
    assert!(msg.contains("security_event.v1.0.avsc"), "{msg}");
    assert!(
        msg.contains("field process.pid: type changed from long to int"),
        "{msg}"
    );
}

#[test]
fn new_optional_field_with_default_passes() {
    check_backward(
        &fixture("security_event.compatible.new_optional_field.avsc"),
        &history(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn removing_a_field_is_backward_compatible_but_a_removed_enum_symbol_is_not() {
    // Readers ignore writer fields they do not know: dropping `raw` keeps BACKWARD.
    let mut v: serde_json::Value = serde_json::from_str(SCHEMA_JSON).unwrap();
    let fields = v["fields"].as_array_mut().unwrap();
    fields.retain(|f| f["name"] != "raw");
    check_backward(&v.to_string(), &history()).unwrap_or_else(|e| panic!("{e}"));

    // Severity has no enum default: dropping `critical` breaks old records.
    let mut v: serde_json::Value = serde_json::from_str(SCHEMA_JSON).unwrap();
    for f in v["fields"].as_array_mut().unwrap() {
        if f["name"] == "severity" {
            f["type"]["symbols"] = serde_json::json!(["info", "low", "medium", "high"]);
        }
    }
    let msg = check_backward(&v.to_string(), &history())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("field severity"), "{msg}");
    assert!(msg.contains("lost symbols [critical]"), "{msg}");
}

#[test]
fn missing_or_empty_history_is_an_error_not_a_pass() {
    let err = check_backward(SCHEMA_JSON, Path::new("/nonexistent/secflow/history")).unwrap_err();
    assert!(matches!(err, CompatError::ReadDir { .. }), "{err}");
    // The fixtures directory has schemas but an empty one must not pass vacuously.
    let empty = std::env::temp_dir().join(format!("secflow-empty-history-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let err = check_backward(SCHEMA_JSON, &empty).unwrap_err();
    std::fs::remove_dir_all(&empty).unwrap();
    assert!(matches!(err, CompatError::EmptyHistory { .. }), "{err}");
}

#[test]
fn broken_current_schema_is_reported() {
    let err = check_backward("{\"type\": \"record\"", &history()).unwrap_err();
    assert!(matches!(err, CompatError::CurrentSchema(_)), "{err}");
}
