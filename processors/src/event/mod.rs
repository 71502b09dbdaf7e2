//! The canonical security event: `schemas/security_event.v1.avsc` as Rust types, the JSON input
//! form of `secflow produce`, the producer gate ([`SecurityEvent::validate`]) and the Avro
//! conversions.
//!
//! - JSON ([`SecurityEvent::from_json`], [`SecurityEvent::to_json`]): natural JSON, not Avro
//!   JSON. Optional groups are absent or `null`, enums are their lowercase symbols, times are
//!   RFC 3339 strings with any offset (converted to UTC milliseconds) or integer epoch
//!   milliseconds, unknown fields are refused with their path.
//! - Avro binary ([`SecurityEvent::to_avro_datum`], [`SecurityEvent::from_avro_datum`]): plain
//!   Avro datum of the current schema, no Confluent framing (the pipeline adds and strips the
//!   magic byte and schema id). Encoded and decoded by a hand-written codec that walks the
//!   structs directly; it is cross-checked against `apache-avro` by the tests. Data written with
//!   another (older or newer) schema goes through
//!   [`SecurityEvent::from_avro_datum_with_writer_schema`], which uses `apache-avro` schema
//!   resolution.
//! - Avro values ([`SecurityEvent::to_avro_value`], [`SecurityEvent::from_avro_value`]):
//!   `apache_avro::types::Value` in the resolved form.
//!
//! Every way in validates, every way out validates first: secflow never writes an event it would
//! refuse to read.

#[macro_use]
mod codec;
mod model;
mod time;
mod validate;

use std::sync::OnceLock;

use apache_avro::types::Value;
use apache_avro::Schema;

use codec::{AvroCodec, DecodeError, Reader};

pub use model::*;
pub use time::{format_rfc3339, parse_rfc3339, MAX_MILLIS, MIN_MILLIS};
pub use validate::{allowed_activities, http_method_activity};

/// The Avro schema of the canonical event (`schemas/security_event.v1.avsc`), as text.
pub const SCHEMA_JSON: &str = include_str!("../../../schemas/security_event.v1.avsc");

/// Full name of the record in [`SCHEMA_JSON`] (also the schema registry record name).
pub const SCHEMA_NAME: &str = "io.secflow.event.v1.SecurityEvent";

/// The parsed schema, parsed once.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // The schema is compiled into the binary and covered by the tests: failing to parse it
        // is a bug in this repository, not a runtime condition.
        #[allow(clippy::expect_used)]
        Schema::parse_str(SCHEMA_JSON)
            .expect("schemas/security_event.v1.avsc compiled into processors does not parse")
    })
}

/// Why an event was refused or could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The input is not well-formed JSON (syntax error, truncated input, trailing characters).
    #[error("malformed JSON at `{}`: {reason}", show_path(field))]
    Json {
        /// Path of the value being read when the error happened (empty at the top level).
        field: String,
        /// The parser's message, with line and column.
        reason: String,
    },
    /// The event does not satisfy the schema or the producer gate: missing or unknown field,
    /// wrong type, bad enum symbol, bad time, bad IP, rule broken...
    #[error("invalid event field `{}`: {reason}", show_path(field))]
    Invalid {
        /// Dotted path of the offending field, e.g. `network.src_ip`, `host.ip[1]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An Avro datum or value does not decode as a canonical event.
    #[error("undecodable Avro at `{}`: {reason}", show_path(field))]
    Decode {
        /// Dotted path of the field being decoded.
        field: String,
        /// What went wrong.
        reason: String,
    },
    /// `apache-avro` refused the data (schema resolution of another writer schema).
    #[error("Avro: {0}")]
    Avro(#[from] apache_avro::Error),
}

fn show_path(field: &str) -> &str {
    if field.is_empty() {
        "<event>"
    } else {
        field
    }
}

impl EventError {
    /// The dotted field path the error is about, if it has one (empty = the whole event).
    pub fn field(&self) -> Option<&str> {
        match self {
            EventError::Json { field, .. }
            | EventError::Invalid { field, .. }
            | EventError::Decode { field, .. } => Some(field),
            EventError::Avro(_) => None,
        }
    }
}

impl From<DecodeError> for EventError {
    fn from(e: DecodeError) -> Self {
        EventError::Decode {
            field: e.path(),
            reason: e.reason,
        }
    }
}

/// Turn a serde error with its path into an [`EventError`]: data errors (missing, unknown or
/// mistyped fields, bad enum symbols, bad times) are `Invalid`, the rest `Json`.
fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> EventError {
    let path = e.path().to_string();
    let mut field = if path == "." { String::new() } else { path };
    let inner = e.into_inner();
    let full = inner.to_string();
    if !inner.is_data() {
        return EventError::Json {
            field,
            reason: full,
        };
    }
    // serde_json appends " at line L column C"; the path says more for data errors.
    let reason = match full.rsplit_once(" at line ") {
        Some((msg, pos)) if pos.contains(" column ") => msg.to_owned(),
        _ => full,
    };
    // A missing field is reported on its parent (an unknown one already on itself): name the
    // field itself in both cases.
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = reason.strip_prefix(prefix) {
            if let Some((name, _)) = rest.split_once('`') {
                let last = field.rsplit('.').next().unwrap_or("");
                if prefix.starts_with("missing") || last != name {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(name);
                }
            }
            break;
        }
    }
    EventError::Invalid { field, reason }
}

impl SecurityEvent {
    /// Parse one JSON object (the input format of `secflow produce`) and validate it.
    pub fn from_json(text: &str) -> Result<SecurityEvent, EventError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let event: SecurityEvent = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
        de.end().map_err(|e| EventError::Json {
            field: String::new(),
            reason: e.to_string(),
        })?;
        event.validate()?;
        Ok(event)
    }

    /// Like [`SecurityEvent::from_json`], from an already parsed JSON value.
    pub fn from_json_value(v: serde_json::Value) -> Result<SecurityEvent, EventError> {
        let event: SecurityEvent = serde_path_to_error::deserialize(v).map_err(json_error)?;
        event.validate()?;
        Ok(event)
    }

    /// The natural JSON form that [`SecurityEvent::from_json`] accepts: absent optional values
    /// are left out, times are RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.000Z`),
    /// fields in schema order.
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing these types cannot fail: string map keys only, no fallible serializers.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The event as an `apache-avro` value in resolved form (enums as `Enum`, times as
    /// `TimestampMillis`, optional fields as `Union`), after validation.
    pub fn to_avro_value(&self) -> Result<Value, EventError> {
        self.validate()?;
        Ok(AvroCodec::to_value(self))
    }

    /// Convert an `apache-avro` value (for example from `apache_avro::from_avro_datum` with the
    /// current schema as reader schema) and validate it.
    pub fn from_avro_value(v: Value) -> Result<SecurityEvent, EventError> {
        let event = <SecurityEvent as AvroCodec>::from_value(v)?;
        event.validate()?;
        Ok(event)
    }

    /// Validate and encode as a plain Avro binary datum of the current schema (no Confluent
    /// framing).
    pub fn to_avro_datum(&self) -> Result<Vec<u8>, EventError> {
        self.validate()?;
        let mut out = Vec::with_capacity(512);
        self.encode(&mut out);
        Ok(out)
    }

    /// Append the Avro binary datum of the current schema to `out` **without validating**: for
    /// an event already validated as a whole (decoded with [`SecurityEvent::from_avro_datum`],
    /// then only extended with checked parts), where a second full validation is wasted work.
    pub fn write_avro_datum_unvalidated(&self, out: &mut Vec<u8>) {
        self.encode(out);
    }

    /// Decode a plain Avro binary datum written with the current schema, refusing trailing
    /// bytes, and validate it.
    pub fn from_avro_datum(bytes: &[u8]) -> Result<SecurityEvent, EventError> {
        let mut r = Reader::new(bytes);
        let event = <SecurityEvent as AvroCodec>::decode(&mut r)?;
        if r.remaining() != 0 {
            return Err(EventError::Decode {
                field: String::new(),
                reason: format!(
                    "{} trailing bytes after the event (written with another schema?)",
                    r.remaining()
                ),
            });
        }
        event.validate()?;
        Ok(event)
    }

    /// Decode a datum written with another version of the schema (`writer`, e.g. fetched from
    /// the schema registry by the id in the Confluent header), resolving it against the current
    /// schema with `apache-avro`, and validate it. Slower than
    /// [`SecurityEvent::from_avro_datum`]; use that one when the writer schema is the current one.
    pub fn from_avro_datum_with_writer_schema(
        bytes: &[u8],
        writer: &Schema,
    ) -> Result<SecurityEvent, EventError> {
        let mut input = bytes;
        let value = apache_avro::reader::datum::GenericDatumReader::builder(writer)
            .reader_schema(schema())
            .build()?
            .read_value(&mut input)?;
        if !input.is_empty() {
            return Err(EventError::Decode {
                field: String::new(),
                reason: format!("{} trailing bytes after the event", input.len()),
            });
        }
        Self::from_avro_value(value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use apache_avro::schema::RecordSchema;

    #[test]
    fn schema_parses_and_has_the_documented_name() {
        let Schema::Record(RecordSchema { name, .. }) = schema() else {
            panic!("not a record");
        };
        assert_eq!(name.fullname(None), SCHEMA_NAME);
    }

    /// Find the enum schema named `name` anywhere in the schema.
    fn find_enum<'a>(s: &'a Schema, name: &str) -> Option<&'a [String]> {
        match s {
            Schema::Enum(e) if e.name.name() == name => Some(&e.symbols),
            Schema::Record(r) => r.fields.iter().find_map(|f| find_enum(&f.schema, name)),
            Schema::Union(u) => u.variants().iter().find_map(|v| find_enum(v, name)),
            Schema::Array(a) => find_enum(&a.items, name),
            Schema::Map(m) => find_enum(&m.types, name),
            _ => None,
        }
    }

    #[test]
    fn rust_enums_match_schema_symbols() {
        let s = schema();
        let check = |name: &str, symbols: &[&str]| {
            let schema_symbols = find_enum(s, name).unwrap_or_else(|| panic!("no enum {name}"));
            assert_eq!(schema_symbols, symbols, "enum {name}");
        };
        check("EventKind", EventKind::SYMBOLS);
        check("EventCategory", EventCategory::SYMBOLS);
        check("Activity", Activity::SYMBOLS);
        check("Outcome", Outcome::SYMBOLS);
        check("Severity", Severity::SYMBOLS);
        check("Disposition", Disposition::SYMBOLS);
        check("HostType", HostType::SYMBOLS);
        check("OsType", OsType::SYMBOLS);
        check("AuthProtocol", AuthProtocol::SYMBOLS);
        check("LogonType", LogonType::SYMBOLS);
        check("FileType", FileType::SYMBOLS);
        check("Direction", Direction::SYMBOLS);
        check("MalwareClass", MalwareClass::SYMBOLS);
    }

    #[test]
    fn every_field_has_a_doc() {
        fn walk(s: &Schema, path: &str, missing: &mut Vec<String>) {
            match s {
                Schema::Record(r) => {
                    for f in &r.fields {
                        let p = format!("{path}.{}", f.name);
                        if f.doc.as_deref().unwrap_or("").trim().is_empty() {
                            missing.push(p.clone());
                        }
                        walk(&f.schema, &p, missing);
                    }
                }
                Schema::Union(u) => u.variants().iter().for_each(|v| walk(v, path, missing)),
                Schema::Array(a) => walk(&a.items, path, missing),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        walk(schema(), "", &mut missing);
        assert!(missing.is_empty(), "fields without doc: {missing:?}");
    }

    #[test]
    fn every_activity_belongs_to_some_category() {
        let mut seen = std::collections::BTreeSet::new();
        for k in EventKind::ALL {
            for c in EventCategory::ALL {
                seen.extend(allowed_activities(*k, *c).iter().copied());
            }
        }
        assert_eq!(seen.len(), Activity::ALL.len());
    }
}
