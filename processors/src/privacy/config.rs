//! The `privacy:` section of a topology, as written in YAML.
//!
//! Every struct rejects unknown keys. Rules are internally tagged by `action` (serde_yaml_ng
//! cannot read externally tagged enums written as maps), and the HMAC key is a secret reference
//! with the same `{env: NAME}` / `{file: PATH}` shape as every other secret of a topology.

use serde::Deserialize;

/// Privacy rules of a topology, applied to every canonical event before it is transformed, so
/// that every output format and every sink sees the same redacted event. Without a `privacy:`
/// section the defaults apply: deny-list mode, no rules, and the `raw` payload dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyRules {
    /// `deny_list` (default): every field survives unless a rule drops or rewrites it.
    /// `allow_list`: only the fields under `allow` survive, plus the ones the event gate may
    /// require (`event_id`, `tenant`, the times, enums, `message`, the groups a category needs,
    /// the required field of each kept group, ...); every other optional field is removed.
    #[serde(default)]
    pub mode: PrivacyMode,
    /// Keep the original record (`raw`: the syslog line, vendor JSON...) in the event. Off by
    /// default: the raw payload holds everything the other rules redact.
    #[serde(default)]
    pub keep_raw: bool,
    /// Allow-list mode only: canonical field paths that survive (e.g. `host.hostname`,
    /// `network.src_ip`, `labels.env`). A group path (`host`) keeps the whole group; a field
    /// inside a group keeps the group with that field. `raw` is governed by `keep_raw`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Rules applied in both modes, at most one per field path: drop, mask, hash or replace.
    #[serde(default)]
    pub rules: Vec<PrivacyRule>,
}

/// How fields not named by a rule are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyMode {
    /// Every field survives unless a rule drops or rewrites it.
    #[default]
    DenyList,
    /// Only the fields under `allow` (and the ones the event gate may require) survive.
    AllowList,
}

/// One privacy rule. The `action` key selects the kind; `field` is a canonical field path such
/// as `user.name`, `process.parent.command_line`, `email.to` (every element of the list),
/// `labels.env` (one label) or `labels` (every label).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum PrivacyRule {
    /// Remove the field (or group, or list, or label). Refused on fields the event gate requires.
    Drop(DropRule),
    /// Replace every character but the last `keep_last` with `*` (text and identifier fields).
    Mask(MaskRule),
    /// Replace the value with a stable pseudonym: the first 128 bits of HMAC-SHA256 under a secret
    /// key, as 32 lowercase hex digits (text, identifier and lowercase token fields).
    Hash(HashRule),
    /// Replace the value with a fixed text, which must itself be valid for the field.
    Replace(ReplaceRule),
}

/// Settings of a `drop` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRule {
    /// Canonical field path to remove.
    pub field: String,
}

/// Settings of a `mask` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRule {
    /// Canonical field path to mask.
    pub field: String,
    /// Characters left in clear at the end (default 0: everything masked). A value of at most
    /// `keep_last` characters is masked entirely, so a short value is never shown in clear.
    #[serde(default)]
    pub keep_last: usize,
}

/// Settings of a `hash` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashRule {
    /// Canonical field path to pseudonymise.
    pub field: String,
    /// The HMAC key, by reference only (`{env: NAME}` or `{file: PATH}`), at least 16 bytes.
    /// The same key gives the same pseudonym for the same value in every field and every run.
    pub key: PrivacyKeyRef,
}

/// Settings of a `replace` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRule {
    /// Canonical field path to overwrite.
    pub field: String,
    /// The replacement; it must pass the field's own check (an IP address for an IP field, an
    /// absolute URL for a URL field, no whitespace in identifiers, not empty).
    pub with: String,
}

/// The HMAC key of a `hash` rule, by reference: `{env: NAME}` or `{file: PATH}`.
pub use crate::secret::SecretSource as PrivacyKeyRef;

impl PrivacyRule {
    /// The field path the rule applies to, as written.
    pub fn field(&self) -> &str {
        match self {
            PrivacyRule::Drop(r) => &r.field,
            PrivacyRule::Mask(r) => &r.field,
            PrivacyRule::Hash(r) => &r.field,
            PrivacyRule::Replace(r) => &r.field,
        }
    }

    /// The action name as written in YAML (`drop`, `mask`, `hash`, `replace`).
    pub fn action(&self) -> &'static str {
        match self {
            PrivacyRule::Drop(_) => "drop",
            PrivacyRule::Mask(_) => "mask",
            PrivacyRule::Hash(_) => "hash",
            PrivacyRule::Replace(_) => "replace",
        }
    }
}
