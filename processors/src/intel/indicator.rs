//! STIX 2.1 indicators as secflow records: the `Indicator` of `schemas/indicator.v1.avsc`
//! (topic `intel.indicators.v1`), the [`Review`] record of `intel.review.v1`, and
//! [`from_stix`], which decides what one STIX object polled from TAXII becomes.
//!
//! What an object becomes ([`IndicatorDisposition`]):
//!
//! | the object | disposition |
//! | --- | --- |
//! | not `"type": "indicator"` (marking definitions, identities, relationships, …) | `Skip` |
//! | an indicator without a usable `id` | `Skip` (malformed; nothing to key a record on) |
//! | `"revoked": true` | `Tombstone` (revoked) |
//! | `valid_until` at or before `now` | `Tombstone` (expired) |
//! | missing / unparsable `modified`, `valid_from` or `pattern` | `Review` (malformed) |
//! | `pattern_type` other than `stix` | `Review` (unsupported pattern type) |
//! | a pattern the parser refuses | `Review` (invalid pattern, with the parse error) |
//! | a valid pattern that does not reduce to atomic IOCs | `Review` (not joinable, with the reason) |
//! | a pattern that reduces to atomic IOCs | `Publish` |
//!
//! Nothing is dropped silently: every indicator ends up as a record on one of the two topics.
//! A `Review` also means a tombstone on `intel.indicators.v1` (see
//! [`IndicatorDisposition::indicator_record`]): when a newer version of an indicator is no
//! longer joinable, the IOCs of its older version must stop matching.
//!
//! TLP comes from `object_marking_refs`: the four STIX 2.1 TLP 1.0 marking definitions and the
//! five TLP 2.0 ones (fixed ids, see [`well_known_tlp`]), or a TLP marking definition seen in
//! the same bundle or TAXII collection ([`Markings::learn`]). With several, the most
//! restrictive wins; with none, `tlp` is `None` (unknown, which is not the same as clear).
//!
//! Deduplication is by (`id`, `modified`) ([`IndicatorDisposition::version`],
//! [`Deduplicator`]): a version is written once, and an older version that arrives after a
//! newer one is not written at all (it would overwrite the newer one in the compacted topic).
//!
//! The Avro codec is hand-written ([`Indicator::to_avro_datum`],
//! [`Indicator::from_avro_datum`]): plain Avro binary datum of [`SCHEMA_JSON`], no Confluent
//! framing. It is cross-checked byte for byte against `apache-avro` by the tests.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use apache_avro::Schema;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pattern::{analyze, AtomicIoc, IocType};

/// The Avro schema of an indicator record (`schemas/indicator.v1.avsc`), as text.
pub const SCHEMA_JSON: &str = include_str!("../../../schemas/indicator.v1.avsc");

/// Full name of the record in [`SCHEMA_JSON`] (also the schema registry record name).
pub const SCHEMA_NAME: &str = "io.secflow.intel.v1.Indicator";

/// The parsed schema, parsed once.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // Compiled into the binary and covered by the tests: failing to parse it is a bug in
        // this repository, not a runtime condition.
        #[allow(clippy::expect_used)]
        Schema::parse_str(SCHEMA_JSON)
            .expect("schemas/indicator.v1.avsc compiled into processors does not parse")
    })
}

/// Traffic Light Protocol level, ordered from the most permissive to the most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tlp {
    /// TLP:CLEAR (TLP 2.0), TLP:WHITE (TLP 1.0).
    Clear,
    /// TLP:GREEN.
    Green,
    /// TLP:AMBER.
    Amber,
    /// TLP:AMBER+STRICT (TLP 2.0 only).
    AmberStrict,
    /// TLP:RED.
    Red,
}

impl Tlp {
    /// The Avro enum symbols, in schema order.
    pub const SYMBOLS: &'static [&'static str] =
        &["clear", "green", "amber", "amber_strict", "red"];
    const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The Avro symbol (`"amber_strict"`, …).
    pub fn as_str(self) -> &'static str {
        Self::SYMBOLS[self as usize]
    }

    /// A TLP level as written in a marking definition: TLP 1.0 `white|green|amber|red`
    /// (`definition.tlp`), TLP 2.0 `clear|green|amber|amber+strict|red` (`tlp_2_0`), with or
    /// without a `TLP:` prefix, any case.
    pub fn from_marking_text(text: &str) -> Option<Tlp> {
        let t = text.trim().to_ascii_lowercase();
        let t = t.strip_prefix("tlp:").unwrap_or(&t);
        match t {
            "white" | "clear" => Some(Tlp::Clear),
            "green" => Some(Tlp::Green),
            "amber" => Some(Tlp::Amber),
            "amber+strict" | "amber_strict" => Some(Tlp::AmberStrict),
            "red" => Some(Tlp::Red),
            _ => None,
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The STIX 2.1 TLP 1.0 marking definitions (spec section 7.2.1.4) and the TLP 2.0 ones of the
/// OASIS TLP 2.0 extension (`extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d`).
const WELL_KNOWN_TLP: &[(&str, Tlp)] = &[
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        Tlp::Clear,
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        Tlp::Green,
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        Tlp::Amber,
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        Tlp::Red,
    ),
    (
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        Tlp::Clear,
    ),
    (
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        Tlp::Green,
    ),
    (
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        Tlp::Amber,
    ),
    (
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::AmberStrict,
    ),
    (
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        Tlp::Red,
    ),
];

/// The id of the OASIS TLP 2.0 marking extension.
pub const TLP2_EXTENSION_ID: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// The TLP level of one of the fixed STIX TLP marking-definition ids (TLP 1.0 and 2.0).
pub fn well_known_tlp(marking_id: &str) -> Option<Tlp> {
    WELL_KNOWN_TLP
        .iter()
        .find(|(id, _)| *id == marking_id)
        .map(|(_, tlp)| *tlp)
}

/// The TLP marking definitions known besides the fixed ones: those seen in the same bundle or
/// TAXII collection. The fixed ids always win over a definition that reuses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markings {
    learned: HashMap<String, Tlp>,
}

impl Markings {
    /// Only the fixed TLP ids.
    pub fn new() -> Markings {
        Markings::default()
    }

    /// Remembers `obj` if it is a TLP marking definition (`definition_type: "tlp"` with
    /// `definition.tlp`, or the TLP 2.0 extension's `tlp_2_0`) and returns its level; anything
    /// else is ignored (`None`).
    pub fn learn(&mut self, obj: &Value) -> Option<Tlp> {
        if obj.get("type").and_then(Value::as_str) != Some("marking-definition") {
            return None;
        }
        let id = obj.get("id").and_then(Value::as_str)?;
        let tlp2 = obj
            .get("extensions")
            .and_then(|e| e.get(TLP2_EXTENSION_ID))
            .and_then(|e| e.get("tlp_2_0"))
            .and_then(Value::as_str)
            .and_then(Tlp::from_marking_text);
        let tlp1 = if obj.get("definition_type").and_then(Value::as_str) == Some("tlp") {
            obj.get("definition")
                .and_then(|d| d.get("tlp"))
                .and_then(Value::as_str)
                .and_then(Tlp::from_marking_text)
        } else {
            None
        };
        let tlp = tlp2.or(tlp1)?;
        if well_known_tlp(id).is_none() {
            self.learned.insert(id.to_string(), tlp);
        }
        Some(tlp)
    }

    /// Learns every TLP marking definition among `objects`.
    pub fn learn_all<'a>(&mut self, objects: impl IntoIterator<Item = &'a Value>) {
        for obj in objects {
            self.learn(obj);
        }
    }

    /// The learned (not fixed) TLP marking definitions, by id: what a poller stores with its
    /// checkpoint, so that indicators polled after a restart still resolve markings defined
    /// in earlier polls.
    pub fn learned(&self) -> std::collections::BTreeMap<String, Tlp> {
        self.learned
            .iter()
            .map(|(id, tlp)| (id.clone(), *tlp))
            .collect()
    }

    /// Remembers a TLP marking definition learned earlier (see [`Markings::learned`]); the
    /// fixed ids keep their level.
    pub fn remember(&mut self, marking_id: &str, tlp: Tlp) {
        if well_known_tlp(marking_id).is_none() {
            self.learned.insert(marking_id.to_string(), tlp);
        }
    }

    /// The TLP level of a marking-definition id, if it is a known TLP marking.
    pub fn tlp(&self, marking_id: &str) -> Option<Tlp> {
        well_known_tlp(marking_id).or_else(|| self.learned.get(marking_id).copied())
    }

    /// The most restrictive TLP among the `object_marking_refs` of a STIX object.
    pub fn tlp_of(&self, obj: &Value) -> Option<Tlp> {
        obj.get("object_marking_refs")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|id| self.tlp(id))
            .max()
    }
}

/// Where an indicator was polled from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IndicatorSource {
    /// Name of the TAXII server in the secflow configuration.
    pub server: String,
    /// Absolute URL of the API root, with a trailing slash.
    pub api_root: String,
    /// TAXII collection id.
    pub collection: String,
}

impl IndicatorSource {
    /// The key of this collection's record in `secflow.intel.checkpoints`:
    /// `<server>|<api_root>|<collection>`.
    pub fn checkpoint_key(&self) -> String {
        format!("{}|{}|{}", self.server, self.api_root, self.collection)
    }
}

/// One STIX indicator version reduced to atomic IOCs: a record of `intel.indicators.v1`
/// (`schemas/indicator.v1.avsc`, fields in schema order; see the schema for the field docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    /// STIX id, `indicator--<uuid>`; the Kafka key.
    pub id: String,
    /// STIX `modified`, UTC epoch milliseconds.
    pub modified: i64,
    /// The atomic IOCs (never empty when made by [`from_stix`]).
    pub iocs: Vec<AtomicIoc>,
    /// STIX `name`.
    pub name: Option<String>,
    /// STIX `description`.
    pub description: Option<String>,
    /// STIX `confidence`, 0–100.
    pub confidence: Option<i32>,
    /// STIX `indicator_types`.
    pub indicator_types: Vec<String>,
    /// STIX `labels`.
    pub labels: Vec<String>,
    /// STIX `valid_from`, UTC epoch milliseconds.
    pub valid_from: i64,
    /// STIX `valid_until`, UTC epoch milliseconds.
    pub valid_until: Option<i64>,
    /// TLP level from the markings; `None` = unknown.
    pub tlp: Option<Tlp>,
    /// TAXII server, API root and collection.
    pub source: IndicatorSource,
    /// STIX `created_by_ref`.
    pub created_by: Option<String>,
    /// The original pattern text.
    pub pattern: String,
}

/// Why an indicator went to review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The pattern does not parse or fails the validator's checks; `detail` has the error.
    InvalidPattern,
    /// The pattern is valid but does not reduce to atomic IOCs (AND, FOLLOWEDBY, qualifiers,
    /// LIKE/MATCHES, other object paths, …); `detail` names the construct.
    NotJoinable,
    /// `pattern_type` is not `stix` (sigma, snort, yara, …); `detail` has the type.
    UnsupportedPatternType,
    /// A required property is missing or unusable (`modified`, `valid_from`, `pattern`);
    /// `detail` says which and why.
    Malformed,
}

impl ReviewReason {
    /// The JSON name (`"not_joinable"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewReason::InvalidPattern => "invalid_pattern",
            ReviewReason::NotJoinable => "not_joinable",
            ReviewReason::UnsupportedPatternType => "unsupported_pattern_type",
            ReviewReason::Malformed => "malformed",
        }
    }
}

impl fmt::Display for ReviewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record of `intel.review.v1` (JSON, key = the STIX id): an indicator that cannot be
/// matched value by value, with the reason, for an analyst to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// STIX id of the indicator.
    pub id: String,
    /// STIX `modified` as written in the object (empty when absent).
    pub modified: String,
    /// The pattern text, if the object has one.
    pub pattern: Option<String>,
    /// Why it cannot be published as atomic IOCs.
    pub reason: ReviewReason,
    /// The details: parse error, the construct that is not joinable, the missing property.
    pub detail: String,
    /// TAXII server, API root and collection.
    pub source: IndicatorSource,
    /// TLP level from the markings (the review topic must honour it too); `None` = unknown.
    pub tlp: Option<Tlp>,
    /// The whole STIX indicator object, as received.
    pub indicator: Value,
}

impl Review {
    /// The JSON value written to `intel.review.v1`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing plain strings, enums and a `Value` cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Why an indicator is removed from the indicator topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TombstoneReason {
    /// `"revoked": true`.
    Revoked,
    /// `valid_until` is not after now.
    Expired,
}

/// Why an object produces no record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The object is not an indicator (its `type`; empty when it has none).
    NotAnIndicator(String),
    /// An indicator without an id that could key a record; says what is wrong.
    Malformed(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotAnIndicator(t) => write!(f, "not an indicator (type `{t}`)"),
            SkipReason::Malformed(why) => write!(f, "malformed indicator: {why}"),
        }
    }
}

/// What one STIX object becomes (see the module docs for the rules).
#[derive(Debug, Clone, PartialEq)]
pub enum IndicatorDisposition {
    /// An indicator record for `intel.indicators.v1`.
    Publish(Indicator),
    /// A tombstone (null value) under `id` on `intel.indicators.v1`.
    Tombstone {
        /// STIX id.
        id: String,
        /// STIX `modified` of the version that was revoked or expired, epoch milliseconds
        /// (`i64::MIN` if it was unparsable).
        modified: i64,
        /// Revoked or expired.
        reason: TombstoneReason,
    },
    /// A review record for `intel.review.v1`, plus a tombstone on `intel.indicators.v1`.
    Review(Review),
    /// Nothing to write.
    Skip(SkipReason),
}

impl IndicatorDisposition {
    /// The STIX id, unless skipped.
    pub fn id(&self) -> Option<&str> {
        match self {
            IndicatorDisposition::Publish(i) => Some(&i.id),
            IndicatorDisposition::Tombstone { id, .. } => Some(id),
            IndicatorDisposition::Review(r) => Some(&r.id),
            IndicatorDisposition::Skip(_) => None,
        }
    }

    /// The deduplication key (`id`, `modified` in epoch milliseconds), unless skipped. An
    /// unparsable `modified` (only possible for a review) counts as `i64::MIN`.
    pub fn version(&self) -> Option<(&str, i64)> {
        match self {
            IndicatorDisposition::Publish(i) => Some((&i.id, i.modified)),
            IndicatorDisposition::Tombstone { id, modified, .. } => Some((id, *modified)),
            IndicatorDisposition::Review(r) => {
                Some((&r.id, parse_millis(&r.modified).unwrap_or(i64::MIN)))
            }
            IndicatorDisposition::Skip(_) => None,
        }
    }

    /// The record for `intel.indicators.v1`: `(key, Some(avro datum))` for `Publish`,
    /// `(key, None)` — a tombstone — for `Tombstone` and `Review`, nothing for `Skip`.
    pub fn indicator_record(&self) -> Option<(&str, Option<Vec<u8>>)> {
        match self {
            IndicatorDisposition::Publish(i) => Some((&i.id, Some(i.to_avro_datum()))),
            IndicatorDisposition::Tombstone { id, .. } => Some((id, None)),
            IndicatorDisposition::Review(r) => Some((&r.id, None)),
            IndicatorDisposition::Skip(_) => None,
        }
    }

    /// The record for `intel.review.v1`: `(key, JSON)` for `Review`, nothing otherwise.
    pub fn review_record(&self) -> Option<(&str, Vec<u8>)> {
        match self {
            IndicatorDisposition::Review(r) => Some((&r.id, r.to_json_bytes())),
            _ => None,
        }
    }
}

/// Deduplication by (`id`, `modified`): remembers the newest version written per id and
/// admits only versions newer than that. Holds one entry per indicator id (about 100 bytes
/// each); seed it from the indicator topic on start ([`Deduplicator::seed`]) to avoid
/// re-writing what a previous run wrote.
#[derive(Debug, Clone, Default)]
pub struct Deduplicator {
    newest: HashMap<String, i64>,
}

impl Deduplicator {
    /// An empty one.
    pub fn new() -> Deduplicator {
        Deduplicator::default()
    }

    /// Records that version `modified` of `id` is already written (e.g. read back from the
    /// topic).
    pub fn seed(&mut self, id: &str, modified: i64) {
        let slot = self.newest.entry(id.to_string()).or_insert(modified);
        if *slot < modified {
            *slot = modified;
        }
    }

    /// True when `d` must be written: not skipped, and newer than every version of its id
    /// admitted (or seeded) so far; it is then remembered. False for a `Skip`, a repeat of the
    /// same (`id`, `modified`) and an older version.
    pub fn admit(&mut self, d: &IndicatorDisposition) -> bool {
        let Some((id, modified)) = d.version() else {
            return false;
        };
        match self.newest.get_mut(id) {
            Some(seen) if *seen >= modified => false,
            Some(seen) => {
                *seen = modified;
                true
            }
            None => {
                self.newest.insert(id.to_string(), modified);
                true
            }
        }
    }

    /// Number of ids remembered.
    pub fn len(&self) -> usize {
        self.newest.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }
}

/// An RFC 3339 timestamp (STIX timestamps are RFC 3339 in UTC with `Z`) as epoch milliseconds;
/// digits below the millisecond are truncated.
pub fn parse_millis(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn str_field<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str)
}

fn non_empty(obj: &Value, name: &str) -> Option<String> {
    str_field(obj, name)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn string_list(obj: &Value, name: &str) -> Vec<String> {
    obj.get(name)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Maps one STIX object (from a bundle or a TAXII envelope) to what secflow writes; see the
/// module docs for the rules. `markings` resolves TLP marking definitions that are not one of
/// the fixed ids (learn them from the same bundle or collection first, e.g. with
/// [`map_objects`]); `now_ms` decides expiry. Never panics on any input.
pub fn from_stix(
    obj: &Value,
    source: &IndicatorSource,
    markings: &Markings,
    now_ms: i64,
) -> IndicatorDisposition {
    let object_type = str_field(obj, "type").unwrap_or("");
    if object_type != "indicator" {
        return IndicatorDisposition::Skip(SkipReason::NotAnIndicator(object_type.to_string()));
    }
    let id = match str_field(obj, "id") {
        Some(id) if id.starts_with("indicator--") && id.len() > "indicator--".len() => id,
        Some(id) => {
            return IndicatorDisposition::Skip(SkipReason::Malformed(format!(
                "id `{id}` is not an indicator id"
            )))
        }
        None => return IndicatorDisposition::Skip(SkipReason::Malformed("no id".to_string())),
    };
    let modified_text = str_field(obj, "modified").unwrap_or("");
    let modified = parse_millis(modified_text);
    let tlp = markings.tlp_of(obj);
    let pattern = str_field(obj, "pattern");
    let review = |reason: ReviewReason, detail: String| {
        IndicatorDisposition::Review(Review {
            id: id.to_string(),
            modified: modified_text.to_string(),
            pattern: pattern.map(str::to_string),
            reason,
            detail,
            source: source.clone(),
            tlp,
            indicator: obj.clone(),
        })
    };

    if obj.get("revoked").and_then(Value::as_bool) == Some(true) {
        return IndicatorDisposition::Tombstone {
            id: id.to_string(),
            modified: modified.unwrap_or(i64::MIN),
            reason: TombstoneReason::Revoked,
        };
    }
    let valid_until = match obj.get("valid_until") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str().and_then(parse_millis) {
            Some(ms) => Some(ms),
            None => {
                return review(
                    ReviewReason::Malformed,
                    format!("valid_until {v} is not an RFC 3339 timestamp"),
                )
            }
        },
    };
    if let Some(until) = valid_until {
        if until <= now_ms {
            return IndicatorDisposition::Tombstone {
                id: id.to_string(),
                modified: modified.unwrap_or(i64::MIN),
                reason: TombstoneReason::Expired,
            };
        }
    }
    let Some(modified) = modified else {
        return review(
            ReviewReason::Malformed,
            if modified_text.is_empty() {
                "no modified timestamp".to_string()
            } else {
                format!("modified `{modified_text}` is not an RFC 3339 timestamp")
            },
        );
    };
    match str_field(obj, "pattern_type") {
        None | Some("stix") => {}
        Some(other) => {
            return review(
                ReviewReason::UnsupportedPatternType,
                format!("pattern_type `{other}`"),
            )
        }
    }
    let Some(pattern) = pattern else {
        return review(ReviewReason::Malformed, "no pattern".to_string());
    };
    let valid_from = match str_field(obj, "valid_from") {
        Some(text) => match parse_millis(text) {
            Some(ms) => ms,
            None => {
                return review(
                    ReviewReason::Malformed,
                    format!("valid_from `{text}` is not an RFC 3339 timestamp"),
                )
            }
        },
        None => return review(ReviewReason::Malformed, "no valid_from".to_string()),
    };
    let report = analyze(pattern);
    let iocs = match (report.error, report.iocs, report.not_joinable) {
        (Some(error), _, _) => return review(ReviewReason::InvalidPattern, error),
        (None, Some(iocs), _) if !iocs.is_empty() => iocs,
        (None, _, Some(reason)) => return review(ReviewReason::NotJoinable, reason),
        (None, _, None) => return review(ReviewReason::NotJoinable, "no values".to_string()),
    };
    let confidence = obj
        .get("confidence")
        .and_then(Value::as_i64)
        .filter(|c| (0..=100).contains(c))
        .and_then(|c| i32::try_from(c).ok());
    IndicatorDisposition::Publish(Indicator {
        id: id.to_string(),
        modified,
        iocs,
        name: non_empty(obj, "name"),
        description: non_empty(obj, "description"),
        confidence,
        indicator_types: string_list(obj, "indicator_types"),
        labels: string_list(obj, "labels"),
        valid_from,
        valid_until,
        tlp,
        source: source.clone(),
        created_by: non_empty(obj, "created_by_ref"),
        pattern: pattern.to_string(),
    })
}

/// Maps a batch of objects (a bundle's `objects`, or one TAXII page): first learns the TLP
/// marking definitions among them into `markings` (kept for the following batches of the
/// same collection), then maps each object with [`from_stix`], in order.
pub fn map_objects(
    objects: &[Value],
    source: &IndicatorSource,
    markings: &mut Markings,
    now_ms: i64,
) -> Vec<IndicatorDisposition> {
    markings.learn_all(objects);
    objects
        .iter()
        .map(|o| from_stix(o, source, markings, now_ms))
        .collect()
}

/// Why an Avro datum does not decode as an [`Indicator`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable indicator at `{field}`: {reason}")]
pub struct IndicatorDecodeError {
    /// The field being decoded (`iocs[2].value`, …; empty for the record itself).
    pub field: String,
    /// What went wrong.
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------
// Avro binary codec

fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // A `str` never exceeds isize::MAX bytes, so its length fits in an i64.
    write_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

fn write_opt_str(out: &mut Vec<u8>, s: &Option<String>) {
    match s {
        None => write_long(out, 0),
        Some(s) => {
            write_long(out, 1);
            write_str(out, s);
        }
    }
}

fn write_str_array(out: &mut Vec<u8>, items: &[String]) {
    if !items.is_empty() {
        write_long(out, items.len() as i64);
        for s in items {
            write_str(out, s);
        }
    }
    write_long(out, 0);
}

fn ioc_type_index(t: IocType) -> i64 {
    match t {
        IocType::Ipv4 => 0,
        IocType::Ipv6 => 1,
        IocType::Domain => 2,
        IocType::Url => 3,
        IocType::Email => 4,
        IocType::Md5 => 5,
        IocType::Sha1 => 6,
        IocType::Sha256 => 7,
        IocType::Sha512 => 8,
    }
}

const IOC_TYPES: [IocType; 9] = [
    IocType::Ipv4,
    IocType::Ipv6,
    IocType::Domain,
    IocType::Url,
    IocType::Email,
    IocType::Md5,
    IocType::Sha1,
    IocType::Sha256,
    IocType::Sha512,
];

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    field: String,
}

impl Reader<'_> {
    fn err(&self, reason: impl Into<String>) -> IndicatorDecodeError {
        IndicatorDecodeError {
            field: self.field.clone(),
            reason: reason.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8, IndicatorDecodeError> {
        let b = self
            .buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err("unexpected end of data"))?;
        self.pos += 1;
        Ok(b)
    }

    fn long(&mut self) -> Result<i64, IndicatorDecodeError> {
        let mut acc: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(self.err("varint does not fit in 64 bits"));
            }
            acc |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(self.err("varint longer than 10 bytes"));
            }
        }
        Ok(((acc >> 1) as i64) ^ -((acc & 1) as i64))
    }

    fn int(&mut self) -> Result<i32, IndicatorDecodeError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| self.err(format!("int out of range: {v}")))
    }

    fn string(&mut self) -> Result<String, IndicatorDecodeError> {
        let len = self.long()?;
        let len =
            usize::try_from(len).map_err(|_| self.err(format!("negative string length {len}")))?;
        if len > self.remaining() {
            return Err(self.err(format!(
                "string length {len} exceeds the {} bytes left",
                self.remaining()
            )));
        }
        let end = self.pos + len;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("unexpected end of data"))?;
        let s = std::str::from_utf8(bytes)
            .map_err(|e| self.err(format!("string is not valid UTF-8: {e}")))?
            .to_owned();
        self.pos = end;
        Ok(s)
    }

    /// Union branch index of an optional value: `false` for null (branch 0).
    fn present(&mut self) -> Result<bool, IndicatorDecodeError> {
        match self.long()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(format!(
                "union branch {b} does not exist (0 = null, 1 = value)"
            ))),
        }
    }

    fn opt_string(&mut self) -> Result<Option<String>, IndicatorDecodeError> {
        if self.present()? {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Item count of the next array block (0 = end); skips the byte size that follows a
    /// negative count; refuses counts larger than the bytes left (every item takes one byte or
    /// more).
    fn block_len(&mut self) -> Result<usize, IndicatorDecodeError> {
        let count = self.long()?;
        let count = if count < 0 {
            let _byte_size = self.long()?;
            count
                .checked_neg()
                .ok_or_else(|| self.err("invalid block count"))?
        } else {
            count
        };
        let count = usize::try_from(count).map_err(|_| self.err("invalid block count"))?;
        if count > self.remaining() {
            return Err(self.err(format!(
                "block of {count} items exceeds the {} bytes left",
                self.remaining()
            )));
        }
        Ok(count)
    }

    fn array<T>(
        &mut self,
        field: &str,
        mut item: impl FnMut(&mut Self) -> Result<T, IndicatorDecodeError>,
    ) -> Result<Vec<T>, IndicatorDecodeError> {
        let mut out = Vec::new();
        loop {
            self.field = field.to_string();
            let n = self.block_len()?;
            if n == 0 {
                return Ok(out);
            }
            out.reserve(n);
            for _ in 0..n {
                self.field = format!("{field}[{}]", out.len());
                out.push(item(self)?);
            }
        }
    }

    fn at(&mut self, field: &str) -> &mut Self {
        self.field = field.to_string();
        self
    }
}

impl Indicator {
    /// Encodes as a plain Avro binary datum of [`SCHEMA_JSON`] (no Confluent framing).
    pub fn to_avro_datum(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.pattern.len() * 2);
        write_str(&mut out, &self.id);
        write_long(&mut out, self.modified);
        if !self.iocs.is_empty() {
            write_long(&mut out, self.iocs.len() as i64);
            for ioc in &self.iocs {
                write_long(&mut out, ioc_type_index(ioc.ioc_type));
                write_str(&mut out, &ioc.value);
            }
        }
        write_long(&mut out, 0);
        write_opt_str(&mut out, &self.name);
        write_opt_str(&mut out, &self.description);
        match self.confidence {
            None => write_long(&mut out, 0),
            Some(c) => {
                write_long(&mut out, 1);
                write_long(&mut out, i64::from(c));
            }
        }
        write_str_array(&mut out, &self.indicator_types);
        write_str_array(&mut out, &self.labels);
        write_long(&mut out, self.valid_from);
        match self.valid_until {
            None => write_long(&mut out, 0),
            Some(t) => {
                write_long(&mut out, 1);
                write_long(&mut out, t);
            }
        }
        match self.tlp {
            None => write_long(&mut out, 0),
            Some(t) => {
                write_long(&mut out, 1);
                write_long(&mut out, t as i64);
            }
        }
        write_str(&mut out, &self.source.server);
        write_str(&mut out, &self.source.api_root);
        write_str(&mut out, &self.source.collection);
        write_opt_str(&mut out, &self.created_by);
        write_str(&mut out, &self.pattern);
        out
    }

    /// Decodes a plain Avro binary datum written with [`SCHEMA_JSON`], refusing trailing
    /// bytes. `from_avro_datum(&i.to_avro_datum()) == Ok(i)` for every indicator.
    pub fn from_avro_datum(bytes: &[u8]) -> Result<Indicator, IndicatorDecodeError> {
        let mut r = Reader {
            buf: bytes,
            pos: 0,
            field: String::new(),
        };
        let id = r.at("id").string()?;
        let modified = r.at("modified").long()?;
        let iocs = r.array("iocs", |r| {
            let base = r.field.clone();
            r.field = format!("{base}.type");
            let index = r.int()?;
            let ioc_type = usize::try_from(index)
                .ok()
                .and_then(|i| IOC_TYPES.get(i).copied())
                .ok_or_else(|| r.err(format!("IocType symbol {index} does not exist")))?;
            r.field = format!("{base}.value");
            let value = r.string()?;
            Ok(AtomicIoc { ioc_type, value })
        })?;
        let name = r.at("name").opt_string()?;
        let description = r.at("description").opt_string()?;
        let confidence = if r.at("confidence").present()? {
            Some(r.int()?)
        } else {
            None
        };
        let indicator_types = r.array("indicator_types", Reader::string)?;
        let labels = r.array("labels", Reader::string)?;
        let valid_from = r.at("valid_from").long()?;
        let valid_until = if r.at("valid_until").present()? {
            Some(r.long()?)
        } else {
            None
        };
        let tlp = if r.at("tlp").present()? {
            let index = r.int()?;
            let tlp = usize::try_from(index)
                .ok()
                .and_then(|i| Tlp::ALL.get(i).copied())
                .ok_or_else(|| r.err(format!("Tlp symbol {index} does not exist")))?;
            Some(tlp)
        } else {
            None
        };
        let source = IndicatorSource {
            server: r.at("source.server").string()?,
            api_root: r.at("source.api_root").string()?,
            collection: r.at("source.collection").string()?,
        };
        let created_by = r.at("created_by").opt_string()?;
        let pattern = r.at("pattern").string()?;
        if r.remaining() != 0 {
            r.field.clear();
            return Err(r.err(format!(
                "{} trailing bytes after the indicator (written with another schema?)",
                r.remaining()
            )));
        }
        Ok(Indicator {
            id,
            modified,
            iocs,
            name,
            description,
            confidence,
            indicator_types,
            labels,
            valid_from,
            valid_until,
            tlp,
            source,
            created_by,
            pattern,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use apache_avro::types::Value as Avro;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    fn source() -> IndicatorSource {
        IndicatorSource {
            server: "test".into(),
            api_root: "https://taxii.example/api1/".into(),
            collection: "91a7b528-80eb-42ed-a74d-c6fbd5a26116".into(),
        }
    }

    fn indicator(pattern: &str) -> Value {
        json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2023-01-01T00:00:00.000Z",
            "modified": "2023-01-02T03:04:05.678Z",
            "name": "bad host",
            "indicator_types": ["malicious-activity"],
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": "2023-01-01T00:00:00Z"
        })
    }

    fn map(obj: &Value) -> IndicatorDisposition {
        from_stix(obj, &source(), &Markings::new(), NOW)
    }

    fn publish(obj: &Value) -> Indicator {
        match map(obj) {
            IndicatorDisposition::Publish(i) => i,
            other => panic!("expected Publish, got {other:?}"),
        }
    }

    fn review(obj: &Value) -> Review {
        match map(obj) {
            IndicatorDisposition::Review(r) => r,
            other => panic!("expected Review, got {other:?}"),
        }
    }

    fn full() -> Indicator {
        Indicator {
            id: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into(),
            modified: 1_672_628_645_678,
            iocs: vec![
                AtomicIoc {
                    ioc_type: IocType::Ipv4,
                    value: "198.51.100.0/24".into(),
                },
                AtomicIoc {
                    ioc_type: IocType::Sha512,
                    value: "ab".repeat(64),
                },
                AtomicIoc {
                    ioc_type: IocType::Email,
                    value: "évil@example.com".into(),
                },
            ],
            name: Some("bad host".into()),
            description: Some("x".repeat(300)),
            confidence: Some(85),
            indicator_types: vec!["malicious-activity".into(), "attribution".into()],
            labels: vec!["apt".into()],
            valid_from: 1_672_531_200_000,
            valid_until: Some(i64::MAX),
            tlp: Some(Tlp::AmberStrict),
            source: source(),
            created_by: Some("identity--f690c992-8e7d-4b9a-9303-3312616c0220".into()),
            pattern: "[ipv4-addr:value = '198.51.100.0/24']".into(),
        }
    }

    fn minimal() -> Indicator {
        Indicator {
            id: "indicator--1".into(),
            modified: -5,
            iocs: vec![],
            name: None,
            description: None,
            confidence: None,
            indicator_types: vec![],
            labels: vec![],
            valid_from: 0,
            valid_until: None,
            tlp: None,
            source: IndicatorSource {
                server: String::new(),
                api_root: String::new(),
                collection: String::new(),
            },
            created_by: None,
            pattern: String::new(),
        }
    }

    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Avro) -> Avro {
        match v {
            None => Avro::Union(0, Box::new(Avro::Null)),
            Some(x) => Avro::Union(1, Box::new(f(x))),
        }
    }

    fn strings(v: &[String]) -> Avro {
        Avro::Array(v.iter().map(|s| Avro::String(s.clone())).collect())
    }

    /// The same record built as an `apache-avro` value, independently of the hand-written codec.
    fn as_avro_value(i: &Indicator) -> Avro {
        let ioc_symbols = [
            "ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256", "sha512",
        ];
        Avro::Record(vec![
            ("id".into(), Avro::String(i.id.clone())),
            ("modified".into(), Avro::TimestampMillis(i.modified)),
            (
                "iocs".into(),
                Avro::Array(
                    i.iocs
                        .iter()
                        .map(|ioc| {
                            let s = ioc.ioc_type.as_str();
                            let idx = ioc_symbols.iter().position(|x| *x == s).unwrap() as u32;
                            Avro::Record(vec![
                                ("type".into(), Avro::Enum(idx, s.into())),
                                ("value".into(), Avro::String(ioc.value.clone())),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("name".into(), opt(i.name.clone(), Avro::String)),
            (
                "description".into(),
                opt(i.description.clone(), Avro::String),
            ),
            ("confidence".into(), opt(i.confidence, Avro::Int)),
            ("indicator_types".into(), strings(&i.indicator_types)),
            ("labels".into(), strings(&i.labels)),
            ("valid_from".into(), Avro::TimestampMillis(i.valid_from)),
            (
                "valid_until".into(),
                opt(i.valid_until, Avro::TimestampMillis),
            ),
            (
                "tlp".into(),
                opt(i.tlp, |t| Avro::Enum(t as u32, t.as_str().into())),
            ),
            (
                "source".into(),
                Avro::Record(vec![
                    ("server".into(), Avro::String(i.source.server.clone())),
                    ("api_root".into(), Avro::String(i.source.api_root.clone())),
                    (
                        "collection".into(),
                        Avro::String(i.source.collection.clone()),
                    ),
                ]),
            ),
            ("created_by".into(), opt(i.created_by.clone(), Avro::String)),
            ("pattern".into(), Avro::String(i.pattern.clone())),
        ])
    }

    #[test]
    fn codec_round_trip_is_exact_and_matches_apache_avro() {
        for ind in [full(), minimal()] {
            let bytes = ind.to_avro_datum();
            assert_eq!(Indicator::from_avro_datum(&bytes).unwrap(), ind);
            let mut reference = Vec::new();
            apache_avro::writer::datum::GenericDatumWriter::builder(schema())
                .build()
                .unwrap()
                .write_value(&mut reference, as_avro_value(&ind))
                .unwrap();
            assert_eq!(
                bytes, reference,
                "hand-written bytes differ from apache-avro"
            );
            let mut input = &bytes[..];
            let decoded = apache_avro::reader::datum::GenericDatumReader::builder(schema())
                .build()
                .unwrap()
                .read_value(&mut input)
                .unwrap();
            assert!(input.is_empty());
            assert_eq!(decoded, as_avro_value(&ind));
        }
    }

    #[test]
    fn codec_refuses_bad_data_without_panicking() {
        let bytes = full().to_avro_datum();
        for cut in 0..bytes.len() {
            assert!(
                Indicator::from_avro_datum(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        let err = Indicator::from_avro_datum(&trailing).unwrap_err();
        assert!(err.reason.contains("trailing"), "{err}");
        // Pseudo-random garbage and single-byte corruptions: errors or values, never a panic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..300usize {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = Indicator::from_avro_datum(&garbage);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = Indicator::from_avro_datum(&b);
        }
        // A huge array count is refused before allocating.
        let mut huge = Vec::new();
        write_str(&mut huge, "indicator--1");
        write_long(&mut huge, 0);
        write_long(&mut huge, i64::MAX / 4);
        let err = Indicator::from_avro_datum(&huge).unwrap_err();
        assert_eq!(err.field, "iocs");
    }

    #[test]
    fn schema_has_the_name_docs_and_symbols_the_code_uses() {
        let Schema::Record(r) = schema() else {
            panic!("not a record")
        };
        assert_eq!(r.name.fullname(None), SCHEMA_NAME);
        fn walk(
            s: &Schema,
            path: &str,
            missing: &mut Vec<String>,
            enums: &mut Vec<(String, Vec<String>)>,
        ) {
            match s {
                Schema::Record(r) => {
                    for f in &r.fields {
                        let p = format!("{path}.{}", f.name);
                        if f.doc.as_deref().unwrap_or("").trim().is_empty() {
                            missing.push(p.clone());
                        }
                        walk(&f.schema, &p, missing, enums);
                    }
                }
                Schema::Union(u) => u
                    .variants()
                    .iter()
                    .for_each(|v| walk(v, path, missing, enums)),
                Schema::Array(a) => walk(&a.items, path, missing, enums),
                Schema::Enum(e) => enums.push((e.name.name().to_string(), e.symbols.clone())),
                _ => {}
            }
        }
        let (mut missing, mut enums) = (Vec::new(), Vec::new());
        walk(schema(), "", &mut missing, &mut enums);
        assert!(missing.is_empty(), "fields without doc: {missing:?}");
        let ioc: Vec<String> = IOC_TYPES.iter().map(|t| t.as_str().to_string()).collect();
        assert!(enums.contains(&("IocType".to_string(), ioc)), "{enums:?}");
        let tlp: Vec<String> = Tlp::SYMBOLS.iter().map(|s| s.to_string()).collect();
        assert!(enums.contains(&("Tlp".to_string(), tlp)), "{enums:?}");
        for (i, t) in Tlp::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i);
        }
    }

    #[test]
    fn atomic_indicator_is_published_with_its_properties() {
        let mut obj =
            indicator("[ipv4-addr:value = '223.166.0.0/15' OR domain-name:value = 'Evil.EXAMPLE']");
        obj["description"] = json!("");
        obj["confidence"] = json!(70);
        obj["labels"] = json!(["apt1", 5, ""]);
        obj["created_by_ref"] = json!("identity--f690c992-8e7d-4b9a-9303-3312616c0220");
        obj["valid_until"] = json!("2030-01-01T00:00:00Z");
        let i = publish(&obj);
        assert_eq!(i.id, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
        assert_eq!(i.modified, 1_672_628_645_678);
        assert_eq!(
            i.iocs,
            vec![
                AtomicIoc {
                    ioc_type: IocType::Ipv4,
                    value: "223.166.0.0/15".into()
                },
                AtomicIoc {
                    ioc_type: IocType::Domain,
                    value: "evil.example".into()
                },
            ]
        );
        assert_eq!(i.name.as_deref(), Some("bad host"));
        assert_eq!(i.description, None, "an empty string is not a value");
        assert_eq!(i.confidence, Some(70));
        assert_eq!(i.indicator_types, vec!["malicious-activity"]);
        assert_eq!(i.labels, vec!["apt1"]);
        assert_eq!(i.valid_from, 1_672_531_200_000);
        assert_eq!(i.valid_until, Some(1_893_456_000_000));
        assert_eq!(i.tlp, None);
        assert_eq!(i.source, source());
        assert_eq!(
            i.created_by.as_deref(),
            Some("identity--f690c992-8e7d-4b9a-9303-3312616c0220")
        );
        assert_eq!(i.pattern, obj["pattern"].as_str().unwrap());
        assert_eq!(Indicator::from_avro_datum(&i.to_avro_datum()).unwrap(), i);

        obj["confidence"] = json!(101);
        assert_eq!(publish(&obj).confidence, None);
        // Sub-millisecond digits are truncated; pattern_type may be absent (STIX 2.0).
        obj["modified"] = json!("2023-01-02T03:04:05.678999Z");
        obj.as_object_mut().unwrap().remove("pattern_type");
        assert_eq!(publish(&obj).modified, 1_672_628_645_678);
    }

    #[test]
    fn tlp_from_fixed_marking_ids_tlp1_and_tlp2() {
        let cases = [
            (
                "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
                Tlp::Clear,
            ),
            (
                "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
                Tlp::Green,
            ),
            (
                "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
                Tlp::Amber,
            ),
            (
                "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
                Tlp::Red,
            ),
            (
                "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
                Tlp::Clear,
            ),
            (
                "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
                Tlp::Green,
            ),
            (
                "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
                Tlp::Amber,
            ),
            (
                "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
                Tlp::AmberStrict,
            ),
            (
                "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
                Tlp::Red,
            ),
        ];
        for (id, tlp) in cases {
            let mut obj = indicator("[domain-name:value = 'a.example']");
            obj["object_marking_refs"] = json!([
                "marking-definition--00000000-0000-4000-8000-000000000000",
                id
            ]);
            assert_eq!(publish(&obj).tlp, Some(tlp), "{id}");
        }
        // Several: the most restrictive wins.
        let mut obj = indicator("[domain-name:value = 'a.example']");
        obj["object_marking_refs"] = json!([
            "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
        ]);
        assert_eq!(publish(&obj).tlp, Some(Tlp::Red));
        // Not a list, or unknown ids: unknown TLP.
        obj["object_marking_refs"] =
            json!("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1");
        assert_eq!(publish(&obj).tlp, None);
    }

    #[test]
    fn tlp_from_marking_definitions_in_the_same_bundle() {
        let tlp1 = json!({
            "type": "marking-definition", "spec_version": "2.1",
            "id": "marking-definition--11111111-1111-4111-8111-111111111111",
            "created": "2020-01-01T00:00:00.000Z",
            "definition_type": "tlp", "definition": {"tlp": "amber"}
        });
        let tlp2 = json!({
            "type": "marking-definition", "spec_version": "2.1",
            "id": "marking-definition--22222222-2222-4222-8222-222222222222",
            "created": "2022-10-01T00:00:00.000Z", "name": "TLP:AMBER+STRICT",
            "extensions": {TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": "amber+strict"}}
        });
        let statement = json!({
            "type": "marking-definition", "spec_version": "2.1",
            "id": "marking-definition--33333333-3333-4333-8333-333333333333",
            "created": "2020-01-01T00:00:00.000Z",
            "definition_type": "statement", "definition": {"statement": "Copyright"}
        });
        // A bundle that redefines a fixed id cannot change its meaning.
        let spoof = json!({
            "type": "marking-definition",
            "id": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
            "definition_type": "tlp", "definition": {"tlp": "white"}
        });
        let mut a = indicator("[domain-name:value = 'a.example']");
        a["object_marking_refs"] =
            json!(["marking-definition--11111111-1111-4111-8111-111111111111"]);
        let mut b = indicator("[domain-name:value = 'b.example']");
        b["id"] = json!("indicator--00000000-0000-4000-8000-00000000000b");
        b["object_marking_refs"] = json!([
            "marking-definition--33333333-3333-4333-8333-333333333333",
            "marking-definition--22222222-2222-4222-8222-222222222222"
        ]);
        let mut c = indicator("[domain-name:value = 'c.example']");
        c["id"] = json!("indicator--00000000-0000-4000-8000-00000000000c");
        c["object_marking_refs"] =
            json!(["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"]);
        // Indicators before the markings: map_objects learns first.
        let objects = vec![a, b, c, tlp1, tlp2, statement, spoof];
        let mut markings = Markings::new();
        let out = map_objects(&objects, &source(), &mut markings, NOW);
        let tlps: Vec<Option<Tlp>> = out
            .iter()
            .filter_map(|d| match d {
                IndicatorDisposition::Publish(i) => Some(i.tlp),
                _ => None,
            })
            .collect();
        assert_eq!(
            tlps,
            vec![Some(Tlp::Amber), Some(Tlp::AmberStrict), Some(Tlp::Red)]
        );
        assert_eq!(out.iter().filter(|d| matches!(d, IndicatorDisposition::Skip(SkipReason::NotAnIndicator(t)) if t == "marking-definition")).count(), 4);
        // The markings stay learned for the next page of the collection.
        assert_eq!(
            markings.tlp("marking-definition--11111111-1111-4111-8111-111111111111"),
            Some(Tlp::Amber)
        );
        assert_eq!(
            markings.tlp("marking-definition--33333333-3333-4333-8333-333333333333"),
            None
        );
    }

    #[test]
    fn revoked_and_expired_become_tombstones() {
        let mut obj = indicator("[domain-name:value = 'a.example']");
        obj["revoked"] = json!(true);
        assert_eq!(
            map(&obj),
            IndicatorDisposition::Tombstone {
                id: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f".into(),
                modified: 1_672_628_645_678,
                reason: TombstoneReason::Revoked
            }
        );
        // Revoked wins even over a pattern that would go to review.
        obj["pattern"] = json!("[a:b = 'c' AND d:e = 'f']");
        assert!(matches!(
            map(&obj),
            IndicatorDisposition::Tombstone {
                reason: TombstoneReason::Revoked,
                ..
            }
        ));
        obj["revoked"] = json!(false);
        obj["pattern"] = json!("[domain-name:value = 'a.example']");
        obj["valid_until"] = json!("2023-11-14T22:13:20Z"); // exactly now
        let d = map(&obj);
        assert!(
            matches!(
                d,
                IndicatorDisposition::Tombstone {
                    reason: TombstoneReason::Expired,
                    ..
                }
            ),
            "{d:?}"
        );
        assert_eq!(
            d.indicator_record(),
            Some(("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", None))
        );
        assert_eq!(d.review_record(), None);
        obj["valid_until"] = json!("2023-11-14T22:13:20.001Z");
        assert_eq!(publish(&obj).valid_until, Some(NOW + 1));
    }

    #[test]
    fn review_reasons() {
        let r = review(&indicator("[email-message:subject MATCHES '^[IMPORTANT]']"));
        assert_eq!(r.reason, ReviewReason::NotJoinable);
        assert!(r.detail.contains("MATCHES"), "{}", r.detail);
        assert_eq!(r.modified, "2023-01-02T03:04:05.678Z");
        assert_eq!(
            r.pattern.as_deref(),
            Some("[email-message:subject MATCHES '^[IMPORTANT]']")
        );

        let r = review(&indicator(
            "[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'x.example']",
        ));
        assert_eq!(r.reason, ReviewReason::NotJoinable);
        assert!(r.detail.contains("AND"), "{}", r.detail);

        let r = review(&indicator("[file:hashes.'SHA-256' = 'f00']"));
        assert_eq!(r.reason, ReviewReason::InvalidPattern);
        let r = review(&indicator("ipv4-addr:value = '1.2.3.4'"));
        assert_eq!(r.reason, ReviewReason::InvalidPattern);
        assert!(r.detail.contains("column"), "{}", r.detail);

        let mut obj = indicator("alert tcp any any -> any any");
        obj["pattern_type"] = json!("snort");
        let r = review(&obj);
        assert_eq!(r.reason, ReviewReason::UnsupportedPatternType);
        assert!(r.detail.contains("snort"));

        let mut obj = indicator("[domain-name:value = 'a.example']");
        obj.as_object_mut().unwrap().remove("pattern");
        let r = review(&obj);
        assert_eq!(
            (r.reason, r.pattern.clone()),
            (ReviewReason::Malformed, None)
        );
        let mut obj = indicator("[domain-name:value = 'a.example']");
        obj.as_object_mut().unwrap().remove("valid_from");
        assert_eq!(review(&obj).reason, ReviewReason::Malformed);
        let mut obj = indicator("[domain-name:value = 'a.example']");
        obj["modified"] = json!("yesterday");
        let r = review(&obj);
        assert_eq!(r.reason, ReviewReason::Malformed);
        assert!(r.detail.contains("yesterday"));
        let mut obj = indicator("[domain-name:value = 'a.example']");
        obj["valid_until"] = json!(17);
        assert_eq!(review(&obj).reason, ReviewReason::Malformed);

        // A review carries the TLP and writes a tombstone for the old IOCs of the id.
        let mut obj = indicator("[x509-certificate:issuer = 'CN=WEBMAIL']");
        obj["object_marking_refs"] =
            json!(["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]);
        let d = map(&obj);
        assert_eq!(
            d.indicator_record(),
            Some(("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", None))
        );
        let (key, json_bytes) = d.review_record().unwrap();
        assert_eq!(key, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
        let v: Value = serde_json::from_slice(&json_bytes).unwrap();
        assert_eq!(v["reason"], "not_joinable");
        assert_eq!(v["tlp"], "red");
        assert_eq!(v["modified"], "2023-01-02T03:04:05.678Z");
        assert_eq!(v["pattern"], "[x509-certificate:issuer = 'CN=WEBMAIL']");
        assert_eq!(
            v["source"]["collection"],
            "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
        );
        assert_eq!(
            v["indicator"]["id"],
            "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
        );
        let back: Review = serde_json::from_slice(&json_bytes).unwrap();
        assert_eq!(IndicatorDisposition::Review(back), d);
    }

    #[test]
    fn skips_what_is_not_an_indicator() {
        assert_eq!(
            map(&json!({"type": "malware", "id": "malware--1"})),
            IndicatorDisposition::Skip(SkipReason::NotAnIndicator("malware".into()))
        );
        for v in [
            json!(null),
            json!(5),
            json!("indicator"),
            json!([]),
            json!({}),
        ] {
            assert!(
                matches!(
                    map(&v),
                    IndicatorDisposition::Skip(SkipReason::NotAnIndicator(_))
                ),
                "{v}"
            );
        }
        let mut obj = indicator("[domain-name:value = 'a.example']");
        obj.as_object_mut().unwrap().remove("id");
        assert!(matches!(
            map(&obj),
            IndicatorDisposition::Skip(SkipReason::Malformed(_))
        ));
        obj["id"] = json!("malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
        assert!(matches!(
            map(&obj),
            IndicatorDisposition::Skip(SkipReason::Malformed(_))
        ));
        let d = map(&obj);
        assert_eq!(
            (d.indicator_record(), d.review_record(), d.version()),
            (None, None, None)
        );
    }

    #[test]
    fn dedup_by_id_and_modified_never_goes_back() {
        let v1 = indicator("[domain-name:value = 'a.example']");
        let mut v2 = v1.clone();
        v2["modified"] = json!("2023-02-01T00:00:00.000Z");
        v2["pattern"] = json!("[domain-name:value = 'b.example']");
        let mut v3 = v2.clone();
        v3["modified"] = json!("2023-03-01T00:00:00.000Z");
        v3["revoked"] = json!(true);
        let mut d = Deduplicator::new();
        assert!(d.admit(&map(&v1)));
        assert!(!d.admit(&map(&v1)), "same (id, modified) twice");
        assert!(d.admit(&map(&v2)));
        assert!(!d.admit(&map(&v1)), "older version after a newer one");
        assert!(d.admit(&map(&v3)));
        assert!(!d.admit(&map(&json!({"type": "identity"}))));
        assert_eq!(d.len(), 1);
        let mut seeded = Deduplicator::new();
        seeded.seed(
            "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            1_675_209_600_000,
        );
        assert!(!seeded.admit(&map(&v2)));
        assert!(seeded.admit(&map(&v3)));
    }

    #[test]
    fn never_panics_on_odd_objects() {
        let odd = [
            json!({"type": "indicator", "id": "indicator--x", "modified": 5, "pattern": [1], "valid_from": {}}),
            json!({"type": "indicator", "id": "indicator--x", "modified": "2023-01-01T00:00:00Z", "pattern": "[", "valid_from": "2023-01-01T00:00:00Z", "object_marking_refs": [null, 3]}),
            json!({"type": "indicator", "id": "indicator--x", "modified": "9999-12-31T23:59:59.999Z", "pattern": "[a:b = 'c']", "valid_from": "0001-01-01T00:00:00Z", "confidence": -3, "valid_until": null, "revoked": "yes"}),
            json!({"type": "indicator", "id": "indicator--"}),
        ];
        for o in &odd {
            let _ = map(o);
        }
        assert!(matches!(
            map(&odd[0]),
            IndicatorDisposition::Review(Review {
                reason: ReviewReason::Malformed,
                ..
            })
        ));
        assert!(matches!(
            map(&odd[1]),
            IndicatorDisposition::Review(Review {
                reason: ReviewReason::InvalidPattern,
                ..
            })
        ));
        assert!(matches!(
            map(&odd[2]),
            IndicatorDisposition::Review(Review {
                reason: ReviewReason::NotJoinable,
                ..
            })
        ));
        assert!(matches!(
            map(&odd[3]),
            IndicatorDisposition::Skip(SkipReason::Malformed(_))
        ));
    }
}
