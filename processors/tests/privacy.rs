//! Privacy rules: YAML shape, every action on every kind of path, allow-list mode, the `raw`
//! payload, HMAC pseudonyms, every check error, and the promise that a valid event stays valid
//! (every example, every accepted single rule, a rich rule set, arbitrary events).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use processors::event::SecurityEvent;
use processors::privacy::{
    fields, hmac_sha256_hex, CompiledPrivacy, DropRule, HashRule, MaskRule, PrivacyError,
    PrivacyKeyRef, PrivacyMode, PrivacyRule, PrivacyRules, ReplaceRule, MIN_KEY_BYTES,
};
use processors::secret::Secret;
use proptest::prelude::*;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const OTHER_KEY: &str = "fedcba9876543210fedcba9876543210";

fn examples() -> Vec<(String, SecurityEvent)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples");
    let mut out: Vec<(String, SecurityEvent)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            (name, SecurityEvent::from_json(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 12, "expected the example set");
    out
}

fn example(name: &str) -> SecurityEvent {
    examples()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no example {name}"))
        .1
}

fn yaml(text: &str) -> PrivacyRules {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn yaml_err(text: &str) -> String {
    serde_yaml_ng::from_str::<PrivacyRules>(text)
        .expect_err(text)
        .to_string()
}

/// Resolves `{env: NAME}` from a fixed table, never from the process environment.
fn keys(r: &PrivacyKeyRef) -> Result<Secret, String> {
    match r {
        PrivacyKeyRef::Env(n) if n == "KEY" => Ok(Secret::new(KEY)),
        PrivacyKeyRef::Env(n) if n == "OTHER_KEY" => Ok(Secret::new(OTHER_KEY)),
        PrivacyKeyRef::Env(n) if n == "RFC4231_1" => Ok(Secret::new("\x0b".repeat(20))),
        PrivacyKeyRef::Env(n) if n == "SHORT" => Ok(Secret::new("Jefe")),
        other => Err(format!("no such key {other:?}")),
    }
}

fn compile(rules: &PrivacyRules) -> CompiledPrivacy {
    CompiledPrivacy::new(rules, keys).unwrap_or_else(|e| panic!("{e}"))
}

fn apply(rules: &PrivacyRules, event: &SecurityEvent) -> SecurityEvent {
    let mut e = event.clone();
    compile(rules).apply(&mut e);
    e.validate()
        .unwrap_or_else(|err| panic!("{err} after {rules:?}"));
    e
}

fn one(rule: PrivacyRule) -> PrivacyRules {
    PrivacyRules {
        rules: vec![rule],
        keep_raw: true,
        ..PrivacyRules::default()
    }
}

fn drop(field: &str) -> PrivacyRule {
    PrivacyRule::Drop(DropRule {
        field: field.into(),
    })
}

fn mask(field: &str, keep_last: usize) -> PrivacyRule {
    PrivacyRule::Mask(MaskRule {
        field: field.into(),
        keep_last,
    })
}

fn hash(field: &str, key: &str) -> PrivacyRule {
    PrivacyRule::Hash(HashRule {
        field: field.into(),
        key: PrivacyKeyRef::Env(key.into()),
    })
}

fn replace(field: &str, with: &str) -> PrivacyRule {
    PrivacyRule::Replace(ReplaceRule {
        field: field.into(),
        with: with.into(),
    })
}

fn pseudonym(key: &str, value: &str) -> String {
    hmac_sha256_hex(key.as_bytes(), value.as_bytes())[..32].to_owned()
}

// ---------------------------------------------------------------------------------------------
// YAML

const EXAMPLE_YAML: &str = r#"
mode: allow_list
keep_raw: false
allow: [host.hostname, network.src_ip, labels.env]
rules:
  - field: user.email
    action: drop
  - field: user.name
    action: mask
    keep_last: 4
  - field: host.hostname
    action: hash
    key: {env: PRIVACY_HMAC_KEY}
  - field: process.command_line
    action: replace
    with: "[redacted]"
"#;

#[test]
fn yaml_example_parses() {
    let rules = yaml(EXAMPLE_YAML);
    assert_eq!(
        rules,
        PrivacyRules {
            mode: PrivacyMode::AllowList,
            keep_raw: false,
            allow: vec![
                "host.hostname".into(),
                "network.src_ip".into(),
                "labels.env".into()
            ],
            rules: vec![
                drop("user.email"),
                mask("user.name", 4),
                hash("host.hostname", "PRIVACY_HMAC_KEY"),
                replace("process.command_line", "[redacted]"),
            ],
        }
    );
    assert_eq!(rules.check(), vec![]);
    let file = yaml("rules: [{field: user.name, action: hash, key: {file: /run/secrets/k}}]");
    assert_eq!(
        file.rules[0],
        PrivacyRule::Hash(HashRule {
            field: "user.name".into(),
            key: PrivacyKeyRef::File("/run/secrets/k".into())
        })
    );
}

#[test]
fn yaml_defaults() {
    let rules = yaml("{}");
    assert_eq!(rules, PrivacyRules::default());
    assert_eq!(rules.mode, PrivacyMode::DenyList);
    assert!(!rules.keep_raw && rules.allow.is_empty() && rules.rules.is_empty());
    assert_eq!(
        yaml("rules: [{field: user.name, action: mask}]").rules,
        [mask("user.name", 0)]
    );
}

#[test]
fn yaml_typos_are_errors() {
    let cases = [
        ("keep_row: true", "unknown field `keep_row`"),
        ("mode: allowlist", "unknown variant `allowlist`"),
        (
            "rules: [{feild: user.name, action: drop}]",
            "unknown field `feild`",
        ),
        (
            "rules: [{field: user.name, action: hsh}]",
            "unknown variant `hsh`",
        ),
        ("rules: [{field: user.name}]", "missing field `action`"),
        (
            "rules: [{field: user.name, action: mask, keep_lats: 2}]",
            "unknown field `keep_lats`",
        ),
        (
            "rules: [{field: user.name, action: drop, with: x}]",
            "unknown field `with`",
        ),
        (
            "rules: [{field: user.name, action: hash}]",
            "missing field `key`",
        ),
        (
            "rules: [{field: user.name, action: replace}]",
            "missing field `with`",
        ),
        (
            "rules: [{field: user.name, action: hash, key: {env: A, file: b}}]",
            "exactly one",
        ),
        (
            "rules: [{field: user.name, action: hash, key: {env: ''}}]",
            "exactly one",
        ),
        (
            "rules: [{field: user.name, action: hash, key: {envv: A}}]",
            "unknown field `envv`",
        ),
        ("rules: [{field: user.name, action: hash, key: secret}]", ""),
        (
            "rules: [{field: user.name, action: mask, keep_last: -1}]",
            "",
        ),
    ];
    for (text, want) in cases {
        let err = yaml_err(text);
        assert!(err.contains(want), "{text}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Actions

#[test]
fn drop_nested_group_array_and_labels() {
    let e = example("process_alert_enriched.json");
    assert!(e.user.as_ref().unwrap().id.is_some());

    let out = apply(&one(drop("user.id")), &e);
    assert_eq!(out.user.as_ref().unwrap().id, None);
    assert_eq!(out.user.as_ref().unwrap().name, "alice");

    let out = apply(&one(drop("process.parent.executable")), &e);
    let parent = out.process.as_ref().unwrap().parent.as_ref().unwrap();
    assert_eq!(parent.executable, None);
    assert_eq!(parent.pid, Some(5120));

    let out = apply(&one(drop("host.ip")), &e);
    assert!(out.host.as_ref().unwrap().ip.is_empty());

    let out = apply(&one(drop("mitre.techniques.subtechnique")), &e);
    assert!(out
        .mitre
        .as_ref()
        .unwrap()
        .techniques
        .iter()
        .all(|t| t.subtechnique.is_none()));

    let out = apply(&one(drop("enrichments.confidence")), &e);
    assert!(out.enrichments.iter().all(|x| x.confidence.is_none()));
    assert_eq!(out.enrichments.len(), 2);

    let out = apply(&one(drop("labels.env")), &e);
    assert_eq!(out.labels.keys().collect::<Vec<_>>(), ["site"]);
    let out = apply(&one(drop("labels")), &e);
    assert!(out.labels.is_empty());
    let out = apply(&one(drop("labels.absent")), &e);
    assert_eq!(out.labels, e.labels);

    let auth = example("authentication_account_switch.json");
    assert!(auth.target_user.is_some());
    let out = apply(&one(drop("target_user")), &auth);
    assert_eq!(out.target_user, None);

    let mail = example("email_with_attachment.json");
    let out = apply(&one(drop("email.attachments")), &mail);
    assert!(out.email.as_ref().unwrap().attachments.is_empty());
}

#[test]
fn mask_nested_array_and_labels() {
    let e = example("process_alert_enriched.json");
    let out = apply(&one(mask("user.name", 2)), &e);
    assert_eq!(out.user.as_ref().unwrap().name, "***ce");
    let out = apply(&one(mask("user.name", 5)), &e);
    assert_eq!(
        out.user.as_ref().unwrap().name,
        "*****",
        "short values never in clear"
    );

    let out = apply(&one(mask("process.parent.name", 4)), &e);
    let parent = out.process.as_ref().unwrap().parent.as_ref().unwrap();
    assert_eq!(parent.name.as_deref(), Some("*******.EXE"));

    let out = apply(&one(mask("tags", 0)), &e);
    assert_eq!(out.tags, ["***", "************"]);

    let out = apply(&one(mask("labels.site", 1)), &e);
    assert_eq!(out.labels["site"], "**a");
    assert_eq!(out.labels["env"], "prod");
    let out = apply(&one(mask("labels", 0)), &e);
    assert_eq!(out.labels["env"], "****");
    assert_eq!(out.labels["site"], "***");

    let out = apply(&one(mask("host.hostname", 11)), &e);
    assert_eq!(
        out.host.as_ref().unwrap().hostname,
        "****************example.com"
    );

    let dns = example("dns_query.json");
    let out = apply(&one(mask("dns.answers.data", 0)), &dns);
    let answers = &out.dns.as_ref().unwrap().answers;
    assert!(!answers.is_empty());
    for (a, orig) in answers.iter().zip(&dns.dns.as_ref().unwrap().answers) {
        assert_eq!(a.data, "*".repeat(orig.data.chars().count()));
    }
}

#[test]
fn hash_nested_array_and_labels() {
    let e = example("process_alert_enriched.json");
    let out = apply(&one(hash("host.hostname", "KEY")), &e);
    assert_eq!(
        out.host.as_ref().unwrap().hostname,
        pseudonym(KEY, "ws-fin-042.corp.example.com")
    );

    let out = apply(&one(hash("process.parent.command_line", "KEY")), &e);
    assert_eq!(
        out.process
            .as_ref()
            .unwrap()
            .parent
            .as_ref()
            .unwrap()
            .command_line,
        None,
        "absent values stay absent"
    );
    let out = apply(&one(hash("process.parent.executable", "KEY")), &e);
    assert_eq!(
        out.process
            .as_ref()
            .unwrap()
            .parent
            .as_ref()
            .unwrap()
            .executable,
        Some(pseudonym(
            KEY,
            r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE"
        ))
    );

    let out = apply(&one(hash("tags", "KEY")), &e);
    assert_eq!(
        out.tags,
        [pseudonym(KEY, "edr"), pseudonym(KEY, "office-macro")]
    );

    let out = apply(&one(hash("labels.env", "KEY")), &e);
    assert_eq!(out.labels["env"], pseudonym(KEY, "prod"));
    assert_eq!(out.labels["site"], "fra");

    let out = apply(&one(hash("enrichments.ioc_value", "KEY")), &e);
    assert_eq!(
        out.enrichments[1].ioc_value,
        pseudonym(KEY, "203.0.113.0/24")
    );

    let out = apply(&one(hash("action", "KEY")), &e);
    assert_eq!(out.action, pseudonym(KEY, "suspicious_process"));
}

#[test]
fn replace_nested_array_and_labels() {
    let e = example("process_alert_enriched.json");
    let out = apply(&one(replace("process.command_line", "[redacted]")), &e);
    assert_eq!(
        out.process.as_ref().unwrap().command_line.as_deref(),
        Some("[redacted]")
    );
    let out = apply(&one(replace("network.src_ip", "192.0.2.0")), &e);
    assert_eq!(
        out.network.as_ref().unwrap().src_ip.as_deref(),
        Some("192.0.2.0")
    );
    let out = apply(&one(replace("host.ip", "2001:db8::")), &e);
    assert_eq!(out.host.as_ref().unwrap().ip, ["2001:db8::", "2001:db8::"]);
    let out = apply(&one(replace("labels.env", "x")), &e);
    assert_eq!(out.labels["env"], "x");

    let mail = example("email_with_attachment.json");
    let out = apply(&one(replace("email.to", "redacted@example.invalid")), &mail);
    assert_eq!(out.email.as_ref().unwrap().to, ["redacted@example.invalid"]);
    assert_eq!(
        out.email.as_ref().unwrap().cc,
        ["accounts-payable@example.com"]
    );
}

#[test]
fn rules_compose() {
    let e = example("authentication_account_switch.json");
    let rules = PrivacyRules {
        rules: vec![
            drop("user.id"),
            mask("user.name", 1),
            hash("target_user.name", "KEY"),
            replace("message", "[redacted]"),
        ],
        ..PrivacyRules::default()
    };
    let out = apply(&rules, &e);
    let u = out.user.as_ref().unwrap();
    let orig = e.user.as_ref().unwrap();
    assert_eq!(u.id, None);
    assert_eq!(u.name.chars().count(), orig.name.chars().count());
    assert!(u.name.starts_with('*') && u.name.ends_with(orig.name.chars().last().unwrap()));
    assert_eq!(
        out.target_user.as_ref().unwrap().name,
        pseudonym(KEY, &e.target_user.as_ref().unwrap().name)
    );
    assert_eq!(out.message, "[redacted]");
}

// ---------------------------------------------------------------------------------------------
// Allow list and raw

#[test]
fn allow_list_keeps_only_listed_and_required_fields() {
    let e = example("process_alert_enriched.json");
    let rules = yaml("mode: allow_list\nallow: [host.hostname, process.name, labels.env]");
    let out = apply(&rules, &e);

    // Required and gate-required survive.
    assert_eq!(out.event_id, e.event_id);
    assert_eq!(out.tenant, e.tenant);
    assert_eq!(out.event_time, e.event_time);
    assert_eq!(out.message, e.message);
    assert_eq!(out.product.name, e.product.name);
    assert_eq!(out.product.version, None);
    assert!(out.rule.is_some(), "alerts need rule");
    assert_eq!(
        out.rule.as_ref().unwrap().name,
        e.rule.as_ref().unwrap().name
    );
    assert_eq!(out.rule.as_ref().unwrap().description, None);
    let n = out.network.as_ref().unwrap();
    assert_eq!(
        n.src_ip,
        e.network.as_ref().unwrap().src_ip,
        "endpoints are gate fields"
    );
    assert_eq!(n.dst_port, None);
    assert_eq!(n.transport, None);
    let p = out.process.as_ref().unwrap();
    assert_eq!(p.pid, Some(7316));
    assert_eq!(p.name.as_deref(), Some("powershell.exe"), "listed");
    assert_eq!(p.command_line, None);
    assert_eq!(p.parent.as_ref().unwrap().pid, Some(5120));
    assert_eq!(p.parent.as_ref().unwrap().executable, None);

    // Listed fields survive, everything else optional is gone.
    let h = out.host.as_ref().unwrap();
    assert_eq!(h.hostname, "ws-fin-042.corp.example.com");
    assert_eq!((h.id.as_ref(), h.ip.len(), h.mac.as_ref()), (None, 0, None));
    assert_eq!(out.user.as_ref().unwrap().name, "alice");
    assert_eq!(out.user.as_ref().unwrap().id, None);
    assert_eq!(out.disposition, None);
    assert_eq!(out.mitre, None);
    assert!(out.tags.is_empty() && out.enrichments.is_empty());
    assert_eq!(out.labels.keys().collect::<Vec<_>>(), ["env"]);
    assert_eq!(out.raw, None);
}

#[test]
fn allow_list_group_entries_keep_the_whole_group() {
    let e = example("process_alert_enriched.json");
    let out = apply(
        &yaml("mode: allow_list\nallow: [host, mitre.techniques, labels]"),
        &e,
    );
    assert_eq!(out.host, e.host);
    assert_eq!(out.labels, e.labels);
    let m = out.mitre.as_ref().unwrap();
    assert_eq!(m.techniques, e.mitre.as_ref().unwrap().techniques);
    assert_eq!(
        m.tactics,
        e.mitre.as_ref().unwrap().tactics,
        "tactic_ids refer to them"
    );
}

#[test]
fn allow_list_with_nothing_listed_keeps_every_example_valid() {
    let rules = yaml("mode: allow_list");
    for (name, e) in examples() {
        let out = apply(&rules, &e);
        assert!(out.labels.is_empty() && out.tags.is_empty(), "{name}");
        assert_eq!(out.target_user, None, "{name}");
        assert_eq!(out.raw, None, "{name}");
    }
}

#[test]
fn raw_is_dropped_by_default_and_kept_with_keep_raw() {
    let e = example("process_alert_enriched.json");
    assert!(e.raw.is_some());
    assert_eq!(apply(&PrivacyRules::default(), &e).raw, None);
    assert_eq!(apply(&yaml("{}"), &e).raw, None);
    assert_eq!(apply(&yaml("keep_raw: true"), &e).raw, e.raw);
    assert_eq!(
        apply(&yaml("mode: allow_list\nkeep_raw: true"), &e).raw,
        e.raw
    );
    let out = apply(
        &yaml("keep_raw: true\nrules: [{field: raw, action: replace, with: gone}]"),
        &e,
    );
    assert_eq!(out.raw.as_deref(), Some("gone"));
    // Without a rule or raw, nothing else changes.
    let mut expected = e.clone();
    expected.raw = None;
    assert_eq!(apply(&PrivacyRules::default(), &e), expected);
}

// ---------------------------------------------------------------------------------------------
// HMAC

#[test]
fn hmac_known_answers_rfc4231() {
    // Test case 1: key = 20 x 0x0b, data = "Hi There".
    assert_eq!(
        hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    // Test case 2: key = "Jefe".
    assert_eq!(
        hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Test case 3: key = 20 x 0xaa, data = 50 x 0xdd.
    assert_eq!(
        hmac_sha256_hex(&[0xaa; 20], &[0xdd; 50]),
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
    );
    // Through a compiled rule: the pseudonym is the first 128 bits.
    let mut e = example("authentication_logon_success.json");
    e.user.as_mut().unwrap().name = "Hi There".into();
    let out = apply(&one(hash("user.name", "RFC4231_1")), &e);
    assert_eq!(out.user.unwrap().name, "b0344c61d8db38535ca8afceaf0bf12b");
}

#[test]
fn pseudonyms_are_stable_and_keyed() {
    let e = example("process_alert_enriched.json");
    let with_key = |key: &str| {
        let rules = PrivacyRules {
            rules: vec![hash("user.name", key), hash("process.user", key)],
            ..PrivacyRules::default()
        };
        apply(&rules, &e)
    };
    let a = with_key("KEY");
    let b = with_key("KEY");
    let c = with_key("OTHER_KEY");
    let name = |e: &SecurityEvent| e.user.as_ref().unwrap().name.clone();
    assert_eq!(name(&a), name(&b), "same key, same pseudonym");
    assert_ne!(name(&a), name(&c), "other key, other pseudonym");
    assert_eq!(name(&a).len(), 32);
    assert!(name(&a)
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // Same value in another field: same pseudonym (correlation survives).
    let mut e2 = e.clone();
    e2.process.as_mut().unwrap().user = Some("alice".into());
    let rules = PrivacyRules {
        rules: vec![hash("user.name", "KEY"), hash("process.user", "KEY")],
        ..PrivacyRules::default()
    };
    let out = apply(&rules, &e2);
    assert_eq!(out.process.unwrap().user.unwrap(), name(&a));
    // Compiling twice gives the same output (no per-instance salt).
    let mut x = e.clone();
    let mut y = e.clone();
    compile(&rules).apply(&mut x);
    compile(&rules).apply(&mut y);
    assert_eq!(x, y);
}

#[test]
fn compiled_rules_are_shared_between_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<CompiledPrivacy>();
    send_sync::<PrivacyRules>();
}

#[test]
fn key_errors() {
    let err = CompiledPrivacy::new(&one(hash("user.name", "MISSING")), keys).unwrap_err();
    assert!(matches!(err, PrivacyError::Key { rule: 0, .. }), "{err}");
    assert!(err.to_string().contains("no such key"), "{err}");

    let err = CompiledPrivacy::new(&one(hash("user.name", "SHORT")), keys).unwrap_err();
    assert!(
        matches!(
            err,
            PrivacyError::WeakKey {
                rule: 0,
                len: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&MIN_KEY_BYTES.to_string()));
    assert!(!err.to_string().contains("Jefe"));

    // Each distinct reference is resolved once.
    let calls = std::cell::Cell::new(0);
    let rules = PrivacyRules {
        rules: vec![hash("user.name", "KEY"), hash("host.hostname", "KEY")],
        ..PrivacyRules::default()
    };
    CompiledPrivacy::new(&rules, |r| {
        calls.set(calls.get() + 1);
        keys(r)
    })
    .unwrap();
    assert_eq!(calls.get(), 1);
}

// ---------------------------------------------------------------------------------------------
// Check

fn issues(text: &str) -> Vec<(usize, String, String)> {
    yaml(text).check()
}

/// The single issue of `text`, as (index, path, message).
fn issue(text: &str) -> (usize, String, String) {
    let mut all = issues(text);
    assert_eq!(all.len(), 1, "{text}: {all:?}");
    all.remove(0)
}

#[test]
fn check_unknown_paths() {
    let (i, path, msg) =
        issue("rules: [{field: user.id, action: drop}, {field: user.mail, action: drop}]");
    assert_eq!((i, path.as_str()), (1, "rules[1].field"));
    assert!(
        msg.contains("`user.mail` is not a canonical field path"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `user.email`?"), "{msg}");

    for bad in [
        "labels.",
        "host.ip[0]",
        "User.name",
        "",
        "nonsense.path.here",
    ] {
        let (_, _, msg) = issue(&format!("rules: [{{field: '{bad}', action: drop}}]"));
        assert!(
            msg.contains("is not a canonical field path"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn check_drop_of_required_fields() {
    for field in [
        "event_id",
        "tenant",
        "event_time",
        "observed_time",
        "kind",
        "category",
        "activity",
        "action",
        "severity",
        "outcome",
        "message",
        "product",
        "product.name",
        "host.hostname",
        "user.name",
        "file.path",
        "dns.query",
        "http.url",
        "email.from",
        "rule.name",
        "dns.answers.data",
        "mitre.tactics.id",
        "enrichments.provider",
    ] {
        let (_, path, msg) = issue(&format!("rules: [{{field: {field}, action: drop}}]"));
        assert_eq!(path, "rules[0].field");
        assert!(
            msg.contains("is required by the schema") && msg.contains("cannot be dropped"),
            "{field}: {msg}"
        );
    }
    let (_, _, msg) = issue("rules: [{field: user.name, action: drop}]");
    assert!(
        msg.contains("in `user`") && msg.contains("allowed here: mask, hash, replace"),
        "{msg}"
    );
    let (_, _, msg) = issue("rules: [{field: event_id, action: drop}]");
    assert!(msg.contains("no privacy action applies"), "{msg}");
}

#[test]
fn check_drop_of_fields_the_gate_needs() {
    for (field, why) in [
        ("user", "authentication events need user"),
        ("host", "process and file events need host"),
        ("process", "process events need process"),
        ("process.pid", "needs pid or entity_id"),
        ("process.parent", "as the actor"),
        ("file", "file events need file"),
        ("network", "source or destination"),
        ("network.src_ip", "source or destination"),
        ("network.dst_hostname", "source or destination"),
        ("auth.service", "auth.service"),
        ("dns", "dns events need dns"),
        ("http", "http events need http"),
        ("email", "email events need email"),
        ("email.to", "recipient"),
        ("email.cc", "recipient"),
        ("rule", "alerts need rule"),
        ("malware", "malware alerts need malware"),
        ("mitre.tactics", "tactic_ids"),
    ] {
        let (_, _, msg) = issue(&format!("rules: [{{field: {field}, action: drop}}]"));
        assert!(
            msg.contains(&format!("`{field}` cannot be dropped")) && msg.contains(why),
            "{field}: {msg}"
        );
    }
    let (_, _, msg) = issue("rules: [{field: network.src_ip, action: drop}]");
    assert!(msg.ends_with("allowed here: replace"), "{msg}");
}

#[test]
fn check_rewrites_need_text() {
    let cases = [
        ("network.src_ip", "mask", "an IP address"),
        ("network.dst_ip", "hash", "an IP address"),
        ("host.ip", "mask", "an IP address"),
        ("host.mac", "hash", "a MAC address"),
        ("user.email", "hash", "an e-mail address"),
        ("email.to", "mask", "an e-mail address"),
        ("http.url", "mask", "an absolute URL"),
        ("rule.reference", "hash", "an absolute URL"),
        ("file.md5", "mask", "an MD5"),
        ("file.sha1", "hash", "a SHA-1"),
        ("process.sha256", "hash", "a SHA-256"),
        ("dns.query_type", "hash", "uppercase mnemonic"),
        ("enrichments.tlp", "mask", "a TLP marking"),
        ("network.transport", "mask", "lowercase token"),
        ("action", "mask", "lowercase token"),
        ("network.src_port", "mask", "a number"),
        ("process.start_time", "hash", "a time"),
        ("event_time", "replace", "a time"),
        ("event_id", "hash", "idempotency key"),
        ("tenant", "mask", "tenant"),
        ("host.os_type", "replace", "enum"),
        ("auth.mfa", "replace", "a boolean"),
        ("http.method", "replace", "must agree with activity"),
        ("mitre.techniques.id", "replace", "ATT&CK id"),
        ("host", "mask", "group"),
        ("dns.answers", "hash", "group"),
    ];
    for (field, action, why) in cases {
        let extra = match action {
            "hash" => ", key: {env: KEY}",
            "replace" => ", with: x",
            _ => "",
        };
        let (_, path, msg) = issue(&format!(
            "rules: [{{field: {field}, action: {action}{extra}}}]"
        ));
        assert_eq!(path, "rules[0].field");
        assert!(
            msg.contains(&format!("`{action}` cannot apply to `{field}`")) && msg.contains(why),
            "{field} {action}: {msg}"
        );
    }
}

#[test]
fn check_replacement_values() {
    for (field, bad, why) in [
        ("network.src_ip", "10.0.0", "not an IPv4 or IPv6 address"),
        ("host.ip", "redacted", "not an IPv4 or IPv6 address"),
        ("user.email", "redacted", "not an e-mail address"),
        ("http.url", "redacted", "not an absolute URL"),
        ("process.sha256", "00", "SHA-256"),
        ("host.hostname", "a b", "whitespace"),
        ("user.name", "  ", "must not be empty"),
        ("labels.env", "", "must not be empty"),
        ("network.protocol", "HTTPS", "lowercase token"),
        ("dns.rcode", "nxdomain", "uppercase token"),
        ("enrichments.tlp", "purple", "TLP"),
    ] {
        let (i, path, msg) = issue(&format!(
            "rules: [{{field: {field}, action: replace, with: '{bad}'}}]"
        ));
        assert_eq!((i, path.as_str()), (0, "rules[0].with"));
        assert!(
            msg.contains(&format!("is not a valid value for `{field}`")) && msg.contains(why),
            "{field} {bad:?}: {msg}"
        );
    }
    for (field, good) in [
        ("network.src_ip", "192.0.2.0"),
        ("network.dst_ip", "2001:db8::"),
        ("user.email", "redacted@example.invalid"),
        ("http.url", "https://redacted.invalid/"),
        ("host.mac", "00:00:00:00:00:00"),
        ("process.sha256", &"0".repeat(64)),
        ("host.hostname", "redacted"),
        ("dns.rcode", "REDACTED"),
        ("enrichments.tlp", "red"),
    ] {
        assert_eq!(
            issues(&format!(
                "rules: [{{field: {field}, action: replace, with: '{good}'}}]"
            )),
            vec![],
            "{field}"
        );
    }
}

#[test]
fn check_duplicate_and_overlapping_rules() {
    let (i, path, msg) =
        issue("rules: [{field: user.id, action: drop}, {field: user.id, action: mask}]");
    assert_eq!((i, path.as_str()), (1, "rules[1].field"));
    assert!(msg.contains("already has a rule (rules[0])"), "{msg}");

    let (_, _, msg) =
        issue("rules: [{field: target_user, action: drop}, {field: target_user.id, action: mask}]");
    assert!(msg.contains("overlaps rules[0] on `target_user`"), "{msg}");
    let (_, _, msg) =
        issue("rules: [{field: labels.env, action: drop}, {field: labels, action: mask}]");
    assert!(msg.contains("overlaps rules[0] on `labels.env`"), "{msg}");

    // Similar names are not overlaps.
    assert_eq!(
        issues("rules: [{field: user.id, action: drop}, {field: target_user.id, action: drop}]"),
        vec![]
    );
    assert_eq!(
        issues("rules: [{field: labels.a, action: drop}, {field: labels.ab, action: drop}]"),
        vec![]
    );
}

#[test]
fn check_raw_and_allow() {
    let (_, path, msg) = issue("rules: [{field: raw, action: mask}]");
    assert_eq!(path, "rules[0].field");
    assert!(msg.contains("keep_raw: true"), "{msg}");
    let (_, _, msg) = issue("keep_raw: true\nrules: [{field: raw, action: drop}]");
    assert!(msg.contains("leaving `keep_raw` off"), "{msg}");
    assert_eq!(
        issues("keep_raw: true\nrules: [{field: raw, action: mask}]"),
        vec![]
    );

    let (i, path, msg) = issue("allow: [host.hostname]");
    assert_eq!((i, path.as_str()), (0, "allow"));
    assert!(msg.contains("mode: allow_list"), "{msg}");

    let all = issues("mode: allow_list\nallow: [host.hostname, host.hostnam, raw, host.hostname]");
    let got: Vec<(usize, &str)> = all.iter().map(|(i, p, _)| (*i, p.as_str())).collect();
    assert_eq!(got, [(1, "allow[1]"), (2, "allow[2]"), (3, "allow[3]")]);
    assert!(
        all[0].2.contains("did you mean `host.hostname`?"),
        "{all:?}"
    );
    assert!(all[1].2.contains("keep_raw"), "{all:?}");
    assert!(all[2].2.contains("already listed (allow[0])"), "{all:?}");
}

#[test]
fn check_reports_every_problem_in_order() {
    let all = issues(
        "rules:\n\
         - {field: user.mail, action: drop}\n\
         - {field: event_id, action: drop}\n\
         - {field: user.id, action: drop}\n\
         - {field: network.src_ip, action: mask}\n\
         - {field: network.dst_ip, action: replace, with: nope}\n\
         - {field: user.id, action: mask}\n",
    );
    let got: Vec<(usize, &str)> = all.iter().map(|(i, p, _)| (*i, p.as_str())).collect();
    assert_eq!(
        got,
        [
            (0, "rules[0].field"),
            (1, "rules[1].field"),
            (3, "rules[3].field"),
            (4, "rules[4].with"),
            (5, "rules[5].field"),
        ]
    );
    // Compiling refuses the same rules with the same messages.
    let rules = yaml("rules: [{field: user.mail, action: drop}]");
    match CompiledPrivacy::new(&rules, keys) {
        Err(PrivacyError::Invalid(v)) => assert_eq!(v, rules.check()),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A valid event stays valid

/// A replacement value valid for `path`.
fn valid_replacement(path: &str) -> String {
    match path {
        p if p.ends_with("_ip") || p == "host.ip" => "192.0.2.0".into(),
        "user.email" | "target_user.email" | "email.from" | "email.to" | "email.cc" => {
            "redacted@example.invalid".into()
        }
        "http.url" | "rule.reference" => "https://redacted.invalid/".into(),
        "host.mac" => "00:00:00:00:00:00".into(),
        "file.md5" => "0".repeat(32),
        "file.sha1" => "0".repeat(40),
        p if p.ends_with("sha256") => "0".repeat(64),
        "dns.query_type" | "dns.rcode" | "dns.answers.type" => "REDACTED".into(),
        "enrichments.tlp" => "red".into(),
        _ => "redacted".into(),
    }
}

/// Every accepted (path, action) pair as a one-rule rule set, and the refused ones.
fn single_rules() -> (Vec<PrivacyRules>, Vec<PrivacyRules>) {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for info in fields() {
        let path = info.path.replace("<key>", "env");
        for action in ["drop", "mask", "hash", "replace"] {
            let rule = match action {
                "drop" => drop(&path),
                "mask" => mask(&path, 3),
                "hash" => hash(&path, "KEY"),
                _ => replace(&path, &valid_replacement(&path)),
            };
            let rules = one(rule);
            if info.actions.contains(&action) {
                assert_eq!(rules.check(), vec![], "{path} {action} should be accepted");
                accepted.push(rules);
            } else {
                assert_ne!(rules.check(), vec![], "{path} {action} should be refused");
                refused.push(rules);
            }
        }
    }
    (accepted, refused)
}

#[test]
fn every_accepted_rule_keeps_every_example_valid() {
    let (accepted, refused) = single_rules();
    assert!(accepted.len() > 150, "{}", accepted.len());
    assert!(refused.len() > 150, "{}", refused.len());
    let examples = examples();
    for rules in &accepted {
        let compiled = compile(rules);
        for (name, e) in &examples {
            let mut out = e.clone();
            compiled.apply(&mut out);
            if let Err(err) = out.validate() {
                panic!("{name} after {:?}: {err}", rules.rules);
            }
        }
    }
}

/// A rich deny-list rule set touching every kind of path and every action.
fn rich_rules() -> PrivacyRules {
    yaml(
        r#"
keep_raw: true
rules:
  - {field: user.email, action: drop}
  - {field: target_user, action: drop}
  - {field: host.ip, action: drop}
  - {field: host.mac, action: drop}
  - {field: process.sha256, action: drop}
  - {field: file.md5, action: drop}
  - {field: dns.answers.ttl, action: drop}
  - {field: email.attachments, action: drop}
  - {field: mitre.techniques.tactic_ids, action: drop}
  - {field: labels.site, action: drop}
  - {field: network.src_port, action: drop}
  - {field: user.name, action: mask, keep_last: 2}
  - {field: process.user, action: mask, keep_last: 4}
  - {field: labels.env, action: mask, keep_last: 1}
  - {field: dns.answers.data, action: mask}
  - {field: tags, action: mask, keep_last: 3}
  - {field: raw, action: mask, keep_last: 10}
  - {field: email.subject, action: mask}
  - {field: host.hostname, action: hash, key: {env: KEY}}
  - {field: host.id, action: hash, key: {env: KEY}}
  - {field: user.id, action: hash, key: {env: KEY}}
  - {field: user.domain, action: hash, key: {env: OTHER_KEY}}
  - {field: network.src_hostname, action: hash, key: {env: KEY}}
  - {field: network.dst_hostname, action: hash, key: {env: KEY}}
  - {field: network.protocol, action: hash, key: {env: KEY}}
  - {field: process.entity_id, action: hash, key: {env: KEY}}
  - {field: process.parent.entity_id, action: hash, key: {env: KEY}}
  - {field: dns.query, action: hash, key: {env: KEY}}
  - {field: enrichments.ioc_value, action: hash, key: {env: KEY}}
  - {field: enrichments.indicator_id, action: hash, key: {env: KEY}}
  - {field: action, action: hash, key: {env: KEY}}
  - {field: process.command_line, action: replace, with: "[redacted]"}
  - {field: process.parent.command_line, action: replace, with: "[redacted]"}
  - {field: network.src_ip, action: replace, with: 192.0.2.0}
  - {field: network.dst_ip, action: replace, with: "2001:db8::"}
  - {field: email.from, action: replace, with: redacted@example.invalid}
  - {field: email.to, action: replace, with: redacted@example.invalid}
  - {field: email.cc, action: replace, with: redacted@example.invalid}
  - {field: http.url, action: replace, with: "https://redacted.invalid/"}
  - {field: message, action: replace, with: "[redacted]"}
  - {field: file.path, action: replace, with: /redacted}
"#,
    )
}

#[test]
fn rich_rule_set_keeps_every_example_valid() {
    let rules = rich_rules();
    assert_eq!(rules.check(), vec![]);
    for (name, e) in examples() {
        let out = apply(&rules, &e);
        assert_eq!(out.event_id, e.event_id, "{name}");
        assert_eq!(out.message, "[redacted]", "{name}");
        assert!(out.target_user.is_none(), "{name}");
        if let Some(n) = &out.network {
            if e.network.as_ref().unwrap().src_ip.is_some() {
                assert_eq!(n.src_ip.as_deref(), Some("192.0.2.0"), "{name}");
            }
        }
        // The rules are idempotent on the redacted fields except hash, which re-hashes:
        // applying twice must still leave a valid event.
        apply(&rules, &out);
    }
}

#[test]
fn allow_list_with_rules_keeps_every_example_valid() {
    let mut rules = rich_rules();
    rules.mode = PrivacyMode::AllowList;
    rules.allow = vec![
        "host.hostname".into(),
        "process.name".into(),
        "labels.env".into(),
        "dns".into(),
        "email.subject".into(),
    ];
    assert_eq!(rules.check(), vec![]);
    for (_, e) in examples() {
        apply(&rules, &e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_events_stay_valid(event in common::arbitrary::arb_event()) {
        let deny = compile(&rich_rules());
        let mut out = event.clone();
        deny.apply(&mut out);
        prop_assert!(out.validate().is_ok(), "{:?}", out.validate());

        let mut allow_rules = rich_rules();
        allow_rules.mode = PrivacyMode::AllowList;
        allow_rules.allow = vec!["host.hostname".into(), "labels.env".into()];
        let allow = compile(&allow_rules);
        let mut out = event.clone();
        allow.apply(&mut out);
        prop_assert!(out.validate().is_ok(), "{:?}", out.validate());

        let empty_allow = compile(&yaml("mode: allow_list"));
        let mut out = event;
        empty_allow.apply(&mut out);
        prop_assert!(out.validate().is_ok(), "{:?}", out.validate());
    }
}
