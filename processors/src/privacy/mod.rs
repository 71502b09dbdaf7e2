//! Privacy rules: what of a canonical event may leave the pipeline.
//!
//! A topology's `privacy:` section ([`PrivacyRules`]) is applied to every canonical event before
//! the transforms, so every output format and every sink sees the same redacted event:
//!
//! ```yaml
//! privacy:
//!   mode: deny_list          # or allow_list: only `allow` (and what the gate needs) survives
//!   keep_raw: false          # the `raw` payload is dropped unless true
//!   allow: [host.hostname]   # allow_list mode only
//!   rules:
//!     - {field: user.email, action: drop}
//!     - {field: user.name, action: mask, keep_last: 4}
//!     - {field: host.hostname, action: hash, key: {env: PRIVACY_HMAC_KEY}}
//!     - {field: process.command_line, action: replace, with: "[redacted]"}
//! ```
//!
//! Field paths are the canonical JSON paths: `user.name`, `process.parent.command_line`,
//! `email.to` (every element of the list), `dns.answers.data` (every answer), `labels.env` (one
//! label), `labels` (every label), or a group (`target_user`) for `drop`. [`PrivacyRules::check`]
//! refuses whatever could make a valid event invalid (see there), so [`CompiledPrivacy::apply`]
//! never fails: a valid event stays valid.
//!
//! [`CompiledPrivacy`] resolves the rules once (paths to accessor functions, HMAC keys to keyed
//! states) and then walks the event's structs directly, with no JSON round trip.

mod check;
mod config;
mod fields;

use std::collections::BTreeSet;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::event::SecurityEvent;
use crate::secret::Secret;

pub use config::{
    DropRule, HashRule, MaskRule, PrivacyKeyRef, PrivacyMode, PrivacyRule, PrivacyRules,
    ReplaceRule,
};
use fields::{resolve, within, Presence, Resolved, Visit, FIELDS, LABELS, RAW};

/// One problem found by [`PrivacyRules::check`]: `(index, path in the config, message)`, e.g.
/// `(2, "rules[2].field", "`user.mail` is not a canonical field path; did you mean `user.email`?")`.
pub type Issue = (usize, String, String);

/// The shortest HMAC key accepted, in bytes (128 bits).
pub const MIN_KEY_BYTES: usize = 16;

/// Hex digits of a pseudonym: the first 128 bits of the HMAC.
pub const PSEUDONYM_HEX_DIGITS: usize = 32;

/// Why privacy rules could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// [`PrivacyRules::check`] found problems.
    #[error("invalid privacy rules: {}", render_issues(.0))]
    Invalid(Vec<Issue>),
    /// The HMAC key of a `hash` rule could not be resolved.
    #[error("privacy rules[{rule}] (hash `{field}`): the HMAC key cannot be read: {source}")]
    Key {
        /// Index of the rule in `rules`.
        rule: usize,
        /// The rule's field path.
        field: String,
        /// What the resolver reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The HMAC key of a `hash` rule is too short to resist guessing.
    #[error(
        "privacy rules[{rule}] (hash `{field}`): the HMAC key has {len} bytes, at least \
         {MIN_KEY_BYTES} are required"
    )]
    WeakKey {
        /// Index of the rule in `rules`.
        rule: usize,
        /// The rule's field path.
        field: String,
        /// Length of the key in bytes.
        len: usize,
    },
}

fn render_issues(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|(_, path, msg)| format!("{path}: {msg}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Full HMAC-SHA256 of `data` under `key`, as 64 lowercase hex digits (RFC 2104 / RFC 4231).
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            hex(&mac.finalize().into_bytes())
        }
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Replace every character of `s` but the last `keep_last` with `*`; a value of at most
/// `keep_last` characters is masked entirely. Characters are Unicode scalar values.
pub fn mask(s: &mut String, keep_last: usize) {
    let count = s.chars().count();
    let keep = if count <= keep_last { 0 } else { keep_last };
    let masked = count - keep;
    let split = s.char_indices().nth(masked).map_or(s.len(), |(i, _)| i);
    let tail = s.get(split..).unwrap_or("");
    let mut out = String::with_capacity(masked + tail.len());
    out.extend(std::iter::repeat_n('*', masked));
    out.push_str(tail);
    *s = out;
}

/// What a compiled rule does to each value.
enum Action {
    Drop,
    Mask(usize),
    /// HMAC-SHA256 state already keyed (inner and outer pads absorbed), cloned per value.
    Hash(Box<Hmac<Sha256>>),
    Replace(String),
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Drop => f.write_str("Drop"),
            Action::Mask(n) => write!(f, "Mask({n})"),
            Action::Hash(_) => f.write_str("Hash(***)"),
            Action::Replace(w) => write!(f, "Replace({w:?})"),
        }
    }
}

impl Action {
    fn rewrite(&self, s: &mut String) {
        match self {
            Action::Drop => {}
            Action::Mask(n) => mask(s, *n),
            Action::Hash(mac) => {
                let mut m = (**mac).clone();
                m.update(s.as_bytes());
                let digest = m.finalize().into_bytes();
                s.clear();
                push_hex(s, digest.get(..PSEUDONYM_HEX_DIGITS / 2).unwrap_or(&[]));
            }
            Action::Replace(w) => {
                s.clear();
                s.push_str(w);
            }
        }
    }
}

/// Where a compiled rule applies.
enum Target {
    Field(Visit),
    Label(String),
}

/// One compiled rule.
struct Op {
    path: String,
    target: Target,
    action: Action,
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.path, self.action)
    }
}

/// Privacy rules ready to apply to events: paths resolved to accessors, keys to keyed HMAC
/// states. Cheap to share between threads (`Send + Sync`); its `Debug` never shows a key.
pub struct CompiledPrivacy {
    keep_raw: bool,
    /// Allow-list mode: the optional fields and groups that no `allow` entry keeps.
    allow_drops: Vec<(&'static str, Visit)>,
    /// Allow-list mode with `labels.<key>` entries and no `labels`: the label keys kept.
    keep_labels: Option<BTreeSet<String>>,
    ops: Vec<Op>,
}

impl fmt::Debug for CompiledPrivacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledPrivacy")
            .field("keep_raw", &self.keep_raw)
            .field(
                "allow_drops",
                &self.allow_drops.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .field("keep_labels", &self.keep_labels)
            .field("ops", &self.ops)
            .finish()
    }
}

impl CompiledPrivacy {
    /// Check `rules` ([`PrivacyRules::check`]) and compile them. `resolve_key` turns the key
    /// reference of each `hash` rule into the secret (the pipeline reads the environment variable
    /// or file); each distinct reference is resolved once. Keys shorter than [`MIN_KEY_BYTES`]
    /// are refused.
    pub fn new<E>(
        rules: &PrivacyRules,
        resolve_key: impl Fn(&PrivacyKeyRef) -> Result<Secret, E>,
    ) -> Result<CompiledPrivacy, PrivacyError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let issues = rules.check();
        if !issues.is_empty() {
            return Err(PrivacyError::Invalid(issues));
        }

        let mut keys: Vec<(&PrivacyKeyRef, Hmac<Sha256>)> = Vec::new();
        let mut ops = Vec::with_capacity(rules.rules.len());
        for (i, rule) in rules.rules.iter().enumerate() {
            let path = rule.field();
            let action = match rule {
                PrivacyRule::Drop(_) => Action::Drop,
                PrivacyRule::Mask(r) => Action::Mask(r.keep_last),
                PrivacyRule::Replace(r) => Action::Replace(r.with.clone()),
                PrivacyRule::Hash(r) => {
                    let mac = match keys.iter().find(|(k, _)| *k == &r.key) {
                        Some((_, mac)) => mac.clone(),
                        None => {
                            let secret = resolve_key(&r.key).map_err(|e| PrivacyError::Key {
                                rule: i,
                                field: path.to_owned(),
                                source: e.into(),
                            })?;
                            let key = secret.expose().as_bytes();
                            if key.len() < MIN_KEY_BYTES {
                                return Err(PrivacyError::WeakKey {
                                    rule: i,
                                    field: path.to_owned(),
                                    len: key.len(),
                                });
                            }
                            let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| {
                                PrivacyError::Key {
                                    rule: i,
                                    field: path.to_owned(),
                                    source: e.to_string().into(),
                                }
                            })?;
                            keys.push((&r.key, mac.clone()));
                            mac
                        }
                    };
                    Action::Hash(Box::new(mac))
                }
            };
            // `check` accepted the path, so it resolves; a field without accessor cannot carry
            // an accepted rule either. Skipping is the safe fallback.
            let target = match resolve(path) {
                Some(Resolved::Field(f)) => match f.visit {
                    Some(v) => Target::Field(v),
                    None => continue,
                },
                Some(Resolved::Label(key)) => Target::Label(key.to_owned()),
                None => continue,
            };
            ops.push(Op {
                path: path.to_owned(),
                target,
                action,
            });
        }

        let (allow_drops, keep_labels) = match rules.mode {
            PrivacyMode::DenyList => (Vec::new(), None),
            PrivacyMode::AllowList => allow_plan(&rules.allow),
        };
        Ok(CompiledPrivacy {
            keep_raw: rules.keep_raw,
            allow_drops,
            keep_labels,
            ops,
        })
    }

    /// Apply the rules to one event, in place: `raw` unless kept, the allow list, then each rule.
    /// Never fails and never panics; a valid event stays valid.
    pub fn apply(&self, event: &mut SecurityEvent) {
        if !self.keep_raw {
            event.raw = None;
        }
        for (_, visit) in &self.allow_drops {
            visit(event, &mut |slot| slot.clear());
        }
        if let Some(keep) = &self.keep_labels {
            event.labels.retain(|k, _| keep.contains(k));
        }
        for op in &self.ops {
            match (&op.target, &op.action) {
                (Target::Field(visit), Action::Drop) => visit(event, &mut |slot| slot.clear()),
                (Target::Field(visit), action) => visit(event, &mut |slot| {
                    slot.for_each_str(&mut |s| action.rewrite(s))
                }),
                (Target::Label(key), Action::Drop) => {
                    event.labels.remove(key);
                }
                (Target::Label(key), action) => {
                    if let Some(v) = event.labels.get_mut(key) {
                        action.rewrite(v);
                    }
                }
            }
        }
    }

    /// Whether applying changes nothing but `raw` (deny-list mode without rules).
    pub fn is_passthrough(&self) -> bool {
        self.allow_drops.is_empty() && self.keep_labels.is_none() && self.ops.is_empty()
    }
}

/// Allow-list mode: the optional fields and groups to remove (outermost only), and the label keys
/// to keep when `allow` names single labels but not `labels`.
fn allow_plan(allow: &[String]) -> (Vec<(&'static str, Visit)>, Option<BTreeSet<String>>) {
    let mut drops: Vec<(&'static str, Visit)> = Vec::new();
    for f in FIELDS {
        if f.path == RAW || f.path == LABELS || f.presence != Presence::Optional {
            continue;
        }
        if drops.iter().any(|(d, _)| within(f.path, d)) {
            continue; // inside a group already removed
        }
        // Kept if listed, inside a listed group, or holding a listed field.
        let kept = allow.iter().any(|a| within(f.path, a) || within(a, f.path));
        if kept {
            continue;
        }
        if let Some(visit) = f.visit {
            drops.push((f.path, visit));
        }
    }
    let labels = if allow.iter().any(|a| a == LABELS) {
        None
    } else {
        Some(
            allow
                .iter()
                .filter_map(|a| a.strip_prefix("labels."))
                .map(str::to_owned)
                .collect(),
        )
    };
    (drops, labels)
}

/// A field path rules can name, and what they may do with it (for documentation and tooling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// Canonical path, e.g. `process.parent.command_line`; `labels.<key>` stands for any label.
    pub path: &'static str,
    /// The actions a rule may use on it (`drop`, `mask`, `hash`, `replace`); empty when none.
    pub actions: Vec<&'static str>,
    /// Whether it survives in allow-list mode without being listed (the schema or the event gate
    /// may require it).
    pub always_kept: bool,
}

/// Every field path rules can name, groups before their fields, in schema order.
pub fn fields() -> Vec<FieldInfo> {
    let info = |path: &'static str, class: fields::Class, presence: Presence, visit: bool| {
        let mut actions: Vec<&'static str> = Vec::new();
        if visit {
            if presence == Presence::Optional && path != RAW {
                actions.push("drop");
            }
            actions.extend_from_slice(class.rewrites());
        }
        FieldInfo {
            path,
            actions,
            always_kept: presence != Presence::Optional,
        }
    };
    let mut out: Vec<FieldInfo> = FIELDS
        .iter()
        .map(|f| info(f.path, f.class, f.presence, f.visit.is_some()))
        .collect();
    out.push(info(
        "labels.<key>",
        fields::Class::Text,
        Presence::Optional,
        true,
    ));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn compile(rules: &PrivacyRules) -> CompiledPrivacy {
        CompiledPrivacy::new(rules, |_| Ok::<_, String>(Secret::new("k".repeat(32)))).unwrap()
    }

    #[test]
    fn mask_keeps_the_last_characters() {
        let cases = [
            ("alice", 0, "*****"),
            ("alice", 2, "***ce"),
            ("alice", 5, "*****"),
            ("alice", 9, "*****"),
            ("a", 0, "*"),
            ("", 3, ""),
            ("héllo日本", 2, "*****日本"),
            ("🦀🦀🦀", 1, "**🦀"),
        ];
        for (input, n, want) in cases {
            let mut s = input.to_owned();
            mask(&mut s, n);
            assert_eq!(s, want, "mask({input:?}, {n})");
        }
    }

    #[test]
    fn hex_and_hmac() {
        assert_eq!(hex(&[0x00, 0xff, 0x1a]), "00ff1a");
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn probe_event_is_valid_and_has_every_field() {
        let event = check::probe_event().unwrap();
        for f in FIELDS {
            let Some(visit) = f.visit else { continue };
            let mut e = event.clone();
            let mut slots = 0;
            let mut strings = 0;
            visit(&mut e, &mut |slot| {
                slots += 1;
                slot.for_each_str(&mut |_| strings += 1);
            });
            assert!(slots > 0, "probe event lacks {}", f.path);
            // Every field a rewrite may touch holds strings (some fixed ones do too).
            let textual = !f.class.rewrites().is_empty();
            assert!(!textual || strings > 0, "{}: no strings", f.path);
            // Optional values are present in the probe: clearing them changes the event.
            if f.presence != Presence::Required {
                visit(&mut e, &mut |slot| slot.clear());
                assert_ne!(&e, event, "clearing {} changed nothing", f.path);
            }
        }
        assert!(!event.labels.is_empty() && event.raw.is_some());
    }

    #[test]
    fn allow_plan_drops_outermost_groups_only() {
        let (drops, labels) = allow_plan(&["host.hostname".into(), "labels.env".into()]);
        let paths: Vec<&str> = drops.iter().map(|(p, _)| *p).collect();
        assert!(paths.contains(&"target_user"));
        assert!(!paths.contains(&"target_user.id"));
        assert!(paths.contains(&"host.id") && !paths.contains(&"host"));
        assert!(!paths.contains(&"network.src_ip"), "gate field kept");
        assert!(paths.contains(&"network.src_port"));
        assert!(paths.contains(&"mitre") && !paths.contains(&"mitre.tactics"));
        assert_eq!(labels, Some(BTreeSet::from(["env".to_owned()])));
        let (drops, labels) = allow_plan(&["host".into(), "labels".into()]);
        assert!(!drops.iter().any(|(p, _)| p.starts_with("host")));
        assert_eq!(labels, None);
    }

    #[test]
    fn compiled_debug_hides_keys() {
        let rules: PrivacyRules = PrivacyRules {
            rules: vec![PrivacyRule::Hash(HashRule {
                field: "user.name".into(),
                key: PrivacyKeyRef::Env("K".into()),
            })],
            ..PrivacyRules::default()
        };
        let c = compile(&rules);
        let dbg = format!("{c:?}");
        assert!(dbg.contains("user.name Hash(***)"), "{dbg}");
        assert!(!dbg.contains("kkkk"), "{dbg}");
        assert!(!c.is_passthrough());
        assert!(compile(&PrivacyRules::default()).is_passthrough());
    }

    #[test]
    fn every_field_is_described() {
        let all = fields();
        assert_eq!(all.len(), FIELDS.len() + 1);
        let get = |p: &str| all.iter().find(|f| f.path == p).unwrap();
        assert_eq!(get("user.email").actions, ["drop", "replace"]);
        assert_eq!(get("user.name").actions, ["mask", "hash", "replace"]);
        assert_eq!(get("event_id").actions, Vec::<&str>::new());
        assert_eq!(get("raw").actions, ["mask", "hash", "replace"]);
        assert!(get("network.src_ip").always_kept);
        assert!(!get("target_user").always_kept);
    }
}
