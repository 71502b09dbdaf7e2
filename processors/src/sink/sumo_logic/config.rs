//! Topology configuration of a Sumo Logic HTTP Source sink.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sink::event_fields::Severity;
use crate::sink::SecretSource;

/// A Sumo Logic HTTP Logs and Metrics Source: newline-delimited events, gzip, metadata
/// headers, category routing by tenant and severity.
///
/// Header values are templates: `{tenant}`, `{severity}` (`info` … `critical`), `{format}`
/// (`ecs`, `ocsf`, `cef`, `canonical`) and `{host}` (the event's host name) are replaced per
/// event (`unknown` when the event has none). One batch becomes one request per distinct set
/// of header values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumoLogicConfig {
    /// The source's upload URL, by reference (`{env: NAME}` or `{file: PATH}`). The URL embeds
    /// the source's token, so the whole URL is the secret: it is never logged or written to a
    /// header.
    pub url: SecretSource,
    /// `X-Sumo-Category` template for events no route matches, e.g. `security/{tenant}`;
    /// absent: the header is not sent and the source's own category applies.
    #[serde(default)]
    pub category: Option<String>,
    /// Category rules, tried in order; the first that matches an event sets its
    /// `X-Sumo-Category` (else `category` applies).
    #[serde(default)]
    pub routes: Vec<SumoRoute>,
    /// `X-Sumo-Name` (source name) template; absent: not sent.
    #[serde(default)]
    pub source_name: Option<String>,
    /// `X-Sumo-Host` (source host) template, e.g. `{host}`; absent: not sent.
    #[serde(default)]
    pub source_host: Option<String>,
    /// `X-Sumo-Fields`: field name → value template, sent as `name=value,…` (names: letters,
    /// digits, `_`, `-`, `.`; `,` and `=` in values become `_`). Sumo keeps only fields defined
    /// in its field schema.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Gzip request bodies (`Content-Encoding: gzip`), as Sumo Logic recommends (default on).
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// Largest request body before compression, in bytes. Sumo Logic recommends 100 KB to
    /// 1 MB and accepts at most 1 MB, which is the default and the maximum; larger batches are
    /// split, and an event larger than this alone is dead-lettered (`payload_too_large`).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

/// One category rule: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumoRoute {
    /// Tenants this rule applies to (exact match); empty: any tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Lowest severity this rule applies to (`info`, `low`, `medium`, `high`, `critical`);
    /// events of unknown severity never match a rule that sets it. Absent: any severity.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// `X-Sumo-Category` template for the events this rule matches.
    pub category: String,
}

/// Sumo Logic's limit on the uncompressed request body, in bytes.
pub const MAX_REQUEST_BYTES: usize = 1_000_000;

fn default_true() -> bool {
    true
}

fn default_max_request_bytes() -> usize {
    MAX_REQUEST_BYTES
}
