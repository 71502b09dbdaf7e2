//! STIX pattern parser and reducer against the reference data in `shared/validation/stix`:
//! `patterns.jsonl` (labelled by the OASIS validator, see `shared/validation/README.md`) and
//! the example bundles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::PathBuf;

use processors::intel::pattern::{
    analyze, parse, reduce, AtomicIoc, ComparisonExpr, IocType, ObservationExpr, Operator,
    PropTest, Reduction,
};
use serde_json::Value;

fn stix_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/validation/stix")
}

fn rows() -> Vec<Value> {
    let path = stix_dir().join("patterns.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(160).collect();
    if s.chars().nth(160).is_some() {
        out.push('…');
    }
    out
}

/// Minimum agreement with the validator's valid/invalid labels.
const MIN_AGREEMENT: f64 = 0.99;

#[test]
fn validity_agrees_with_the_oasis_validator() {
    let rows = rows();
    assert!(
        rows.len() >= 400,
        "expected the full corpus, got {} rows",
        rows.len()
    );
    let mut disagreements = Vec::new();
    for row in &rows {
        let pattern = row["pattern"].as_str().unwrap();
        let expected = row["valid"].as_bool().unwrap();
        let ours = parse(pattern);
        if ours.is_ok() != expected {
            disagreements.push(format!(
                "  pattern:  {}\n  expected: {} ({})\n  ours:     {}",
                short(pattern),
                if expected { "valid" } else { "invalid" },
                row["error"].as_str().unwrap_or("-"),
                match &ours {
                    Ok(_) => "valid".to_string(),
                    Err(e) => format!("invalid: {e}"),
                },
            ));
        }
    }
    let agreement = 1.0 - disagreements.len() as f64 / rows.len() as f64;
    println!(
        "validity agreement: {}/{} = {:.2}%",
        rows.len() - disagreements.len(),
        rows.len(),
        agreement * 100.0
    );
    for d in &disagreements {
        println!("DISAGREEMENT\n{d}");
    }
    assert!(
        agreement >= MIN_AGREEMENT,
        "agreement {:.2}% below {:.0}%",
        agreement * 100.0,
        MIN_AGREEMENT * 100.0
    );
}

/// The oracle's `atomic` entry (`{"path","value"}`, path as written) as our IOC, or `None`
/// when its hash algorithm is one we do not reduce.
fn expected_ioc(entry: &Value) -> Option<AtomicIoc> {
    let path = entry["path"].as_str().unwrap();
    let value = entry["value"].as_str().unwrap();
    let ioc_type = match path {
        "ipv4-addr:value" => IocType::Ipv4,
        "ipv6-addr:value" => IocType::Ipv6,
        "domain-name:value" => IocType::Domain,
        "url:value" => IocType::Url,
        "email-addr:value" => IocType::Email,
        other => {
            let algo = other
                .strip_prefix("file:hashes.")
                .expect("a file:hashes path");
            IocType::from_hash_algorithm(algo.trim_matches('\''))?
        }
    };
    Some(AtomicIoc {
        ioc_type,
        value: ioc_type.normalize(value),
    })
}

/// Whether the pattern uses `IN` anywhere: the lead's reduction rule reduces `path IN (…)`,
/// which the corpus's `atomic` definition leaves out.
fn uses_in(e: &ObservationExpr) -> bool {
    fn cmp(c: &ComparisonExpr) -> bool {
        match c {
            ComparisonExpr::Test(PropTest::Comparison(c)) => c.op == Operator::In,
            ComparisonExpr::Test(PropTest::Exists(_)) => false,
            ComparisonExpr::And(v) | ComparisonExpr::Or(v) => v.iter().any(cmp),
        }
    }
    match e {
        ObservationExpr::Observation(c) => cmp(c),
        ObservationExpr::Group(i) | ObservationExpr::Qualified(i, _) => uses_in(i),
        ObservationExpr::And(v) | ObservationExpr::Or(v) | ObservationExpr::FollowedBy(v) => {
            v.iter().any(uses_in)
        }
    }
}

#[test]
fn reductions_match_the_atomic_column() {
    let mut with_atomic = 0;
    let mut failures = Vec::new();
    let mut in_extensions = Vec::new();
    for row in rows() {
        let pattern = row["pattern"].as_str().unwrap();
        let Ok(parsed) = parse(pattern) else {
            assert!(
                row["atomic"].is_null(),
                "invalid pattern with atomic: {pattern}"
            );
            continue;
        };
        let ours = reduce(&parsed);
        match row["atomic"].as_array() {
            Some(entries) => {
                with_atomic += 1;
                let mapped: Option<Vec<AtomicIoc>> = entries.iter().map(expected_ioc).collect();
                let expected = match mapped {
                    // Deduplicated, first-seen order, as `reduce` promises.
                    Some(list) => {
                        let mut seen = HashSet::new();
                        let list: Vec<_> = list
                            .into_iter()
                            .filter(|i| seen.insert(i.clone()))
                            .collect();
                        Some(list)
                    }
                    None => None,
                };
                let ok = match (&expected, &ours) {
                    (Some(exp), Reduction::Atomic(got)) => exp == got,
                    (None, Reduction::NotJoinable(_)) => true,
                    _ => false,
                };
                if !ok {
                    failures.push(format!(
                        "{pattern}\n  expected {expected:?}\n  got {ours:?}"
                    ));
                }
            }
            None => {
                if let Reduction::Atomic(iocs) = &ours {
                    if uses_in(&parsed.expression) {
                        in_extensions.push(format!("{} -> {} IOCs", short(pattern), iocs.len()));
                    } else {
                        failures.push(format!("{pattern}\n  expected no IOCs, got {iocs:?}"));
                    }
                }
            }
        }
    }
    println!("rows with atomic: {with_atomic}");
    for line in &in_extensions {
        println!("reduced IN set (not in the corpus's atomic definition): {line}");
    }
    for f in &failures {
        println!("REDUCTION MISMATCH: {f}");
    }
    assert!(with_atomic >= 80, "too few rows with atomic: {with_atomic}");
    assert!(
        failures.is_empty(),
        "{} reduction mismatches",
        failures.len()
    );
}

#[test]
fn canonical_form_round_trips_on_the_corpus() {
    for row in rows() {
        let pattern = row["pattern"].as_str().unwrap();
        if let Ok(p) = parse(pattern) {
            let printed = p.to_string();
            let again = parse(&printed)
                .unwrap_or_else(|e| panic!("canonical form of {pattern:?} is {printed:?}: {e}"));
            assert_eq!(p, again, "round trip of {pattern:?} via {printed:?}");
            assert_eq!(reduce(&p), reduce(&again));
        }
    }
}

#[test]
fn bundle_indicators_parse_and_reduce() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(stix_dir().join("bundles"))
        .expect("bundles dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "expected three bundles, found {files:?}");
    let mut atomic = 0;
    let mut not_joinable = 0;
    for file in &files {
        let bundle: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for obj in bundle["objects"].as_array().unwrap() {
            if obj["type"] != "indicator" {
                continue;
            }
            if obj["pattern_type"].as_str().is_some_and(|t| t != "stix") {
                continue;
            }
            let pattern = obj["pattern"].as_str().unwrap();
            let parsed =
                parse(pattern).unwrap_or_else(|e| panic!("{name}: {pattern:?} rejected: {e}"));
            match reduce(&parsed) {
                Reduction::Atomic(iocs) => {
                    atomic += 1;
                    let list: Vec<String> = iocs
                        .iter()
                        .map(|i| format!("{}={}", i.ioc_type, i.value))
                        .collect();
                    println!("{name}: {pattern} => {}", list.join(", "));
                }
                Reduction::NotJoinable(reason) => {
                    not_joinable += 1;
                    println!("{name}: {pattern} => not joinable: {reason}");
                }
            }
        }
    }
    println!("bundle indicators: {atomic} atomic, {not_joinable} not joinable");
    // apt1: 4 CIDR, 3 domains, 3 md5 reduce, 2 x509 (AND) do not; C2: both reduce;
    // email: 2 MATCHES do not.
    assert_eq!((atomic, not_joinable), (12, 4));
}

#[test]
fn analyze_report_json_shape() {
    let r = analyze("[file:hashes.'SHA-256' = 'EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C']");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "pattern": "[file:hashes.'SHA-256' = 'EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C']",
            "valid": true,
            "error": null,
            "iocs": [{"type": "sha256", "value": "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"}],
            "not_joinable": null
        })
    );
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["pattern", "valid", "error", "iocs", "not_joinable"]);

    let r = analyze("[a:b = 1] FOLLOWEDBY [a:b = 2]");
    assert!(r.valid && r.iocs.is_none() && r.error.is_none());
    assert!(r.not_joinable.unwrap().contains("FOLLOWEDBY"));

    let r = analyze("[a:b = ");
    assert!(!r.valid && r.iocs.is_none() && r.not_joinable.is_none());
    assert!(r.error.unwrap().contains("at column 7"));
}
