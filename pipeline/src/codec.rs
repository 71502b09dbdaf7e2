//! The canonical event on the wire: Avro in the Confluent wire format (magic byte 0, 4-byte
//! big-endian schema id, Avro binary), schemas from the registry under TopicNameStrategy
//! (`<topic>-value`).
//!
//! [`RegistrySchemas`] keeps what the registry said: the schema id to write with per topic and,
//! per schema id met in a record, whether it is our current schema. Records written with our
//! schema (the normal case) are read and written by the hand-written codecs of `processors`
//! (~1 µs per event); only another version goes through `apache-avro`'s generic resolution.
//! The generic path for every record (`schema_registry_converter`'s decoder, `resolve`, value
//! conversion, and the value validation of its encoder) cost tens of µs per event and bounded
//! the enrich and transform stages (docs/benchmarks.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::types::Value;
use apache_avro::Schema;
use processors::event::{self, EventError, SecurityEvent};
use schema_registry_converter::async_impl::schema_registry::{
    get_schema_by_id, get_schema_by_subject, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::topology::{SchemaRegistryConfig, SecretError};

/// Why a record could not be decoded into a canonical event. Every class except
/// [`DecodeError::RegistryUnavailable`] is a property of the record: it goes to the DLQ.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DecodeError {
    /// Not in the Confluent wire format (empty, shorter than 5 bytes, or magic byte not 0).
    #[error("not Confluent-framed Avro: {0}")]
    NotFramed(String),
    /// The schema id is not known to the registry.
    #[error("schema id {id} is not in the registry: {message}")]
    UnknownSchema {
        /// The id from the record's header.
        id: u32,
        /// The registry's answer.
        message: String,
    },
    /// The writer schema is known but is not a `SecurityEvent` our schema can read.
    #[error("schema id {id} cannot be read as {}: {message}", event::SCHEMA_NAME)]
    ForeignSchema {
        /// The id from the record's header.
        id: u32,
        /// Why the value does not resolve.
        message: String,
    },
    /// The Avro bytes are truncated or corrupt for the writer schema.
    #[error("corrupt Avro for schema id {id}: {message}")]
    CorruptAvro {
        /// The id from the record's header.
        id: u32,
        /// The decoder's error.
        message: String,
    },
    /// It decoded, but the event breaks the canonical rules (bad IP, empty id, …).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The registry could not be reached: the record is fine, try again later.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
}

impl DecodeError {
    /// The `secflow.error.class` header value.
    pub fn class(&self) -> &'static str {
        match self {
            DecodeError::NotFramed(_) => "not_framed",
            DecodeError::UnknownSchema { .. } => "unknown_schema",
            DecodeError::ForeignSchema { .. } => "foreign_schema",
            DecodeError::CorruptAvro { .. } => "corrupt_avro",
            DecodeError::InvalidEvent(_) => "invalid_event",
            DecodeError::RegistryUnavailable(_) => "registry_unavailable",
        }
    }

    /// True when the record itself is fine and the operation should be retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::RegistryUnavailable(_))
    }
}

/// Why an event could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The event failed validation or Avro conversion.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The registry refused or could not be reached.
    #[error("schema registry: {0}")]
    Registry(String),
}

/// Setting up the codec failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecSetupError {
    /// The registry password could not be read.
    #[error("schema registry: {0}")]
    Secret(#[from] SecretError),
    /// The HTTP client could not be built.
    #[error("schema registry client: {0}")]
    Client(String),
}

/// Magic byte of the Confluent wire format.
pub const MAGIC_BYTE: u8 = 0;

/// Reads the schema id of a Confluent-framed record.
pub fn framed_schema_id(bytes: &[u8]) -> Result<u32, DecodeError> {
    match bytes {
        [] => Err(DecodeError::NotFramed("empty value".into())),
        [m, ..] if *m != MAGIC_BYTE => Err(DecodeError::NotFramed(format!(
            "magic byte {m}, expected {MAGIC_BYTE}"
        ))),
        [_, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(DecodeError::NotFramed(format!(
            "{} bytes, shorter than the 5-byte header",
            bytes.len()
        ))),
    }
}

/// The registry client settings of `cfg` (URL, timeout, basic auth), shared by every codec.
pub fn registry_settings(cfg: &SchemaRegistryConfig) -> Result<SrSettings, CodecSetupError> {
    let mut builder = SrSettings::new_builder(cfg.url.trim_end_matches('/').to_string());
    builder.set_timeout(Duration::from_secs(10)).no_proxy();
    let password = cfg.password.as_ref().map(|p| p.resolve()).transpose()?;
    if let Some(user) = &cfg.username {
        builder.set_basic_authorization(user, password.as_ref().map(|p| p.expose()));
    }
    builder
        .build()
        .map_err(|e| CodecSetupError::Client(e.to_string()))
}

/// Confluent framing of an Avro datum.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// Rewrites an Avro datum written with `writer` as a datum of `reader` (schema resolution:
/// fields matched by name, defaults filled in, missing ones refused).
pub fn resolve_datum(
    datum: &[u8],
    writer: &Schema,
    reader: &Schema,
) -> Result<Vec<u8>, apache_avro::Error> {
    let mut input = datum;
    let value = apache_avro::reader::datum::GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()?
        .read_value(&mut input)?;
    apache_avro::writer::datum::GenericDatumWriter::builder(reader)
        .build()?
        .write_value_to_vec(value)
}

/// One record type's schema, as `processors` defines it.
#[derive(Debug, Clone, Copy)]
pub struct OurSchema {
    /// Full name of the record (the registry's record name).
    pub name: &'static str,
    /// The schema text registered on auto-registration.
    pub json: &'static str,
    /// The parsed schema.
    pub schema: &'static Schema,
}

/// The schema a record was, or is to be, written with.
#[derive(Debug, Clone)]
pub enum WriterSchema {
    /// Our current schema (same canonical form): the hand-written codec reads and writes it.
    Current,
    /// Another version: `apache-avro` resolves between it and ours.
    Other(Arc<Schema>),
}

/// Why the registry could not give a schema.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    /// Not reachable (or a 5xx): the same lookup may work later.
    #[error("{0}")]
    Unavailable(String),
    /// It answered no: unknown id or subject, refused registration, or a schema that does not
    /// parse.
    #[error("{0}")]
    Refused(String),
}

impl LookupError {
    fn from_registry(e: &SRCError) -> Self {
        let text = match &e.cause {
            Some(c) => format!("{}: {c}", e.error),
            None => e.error.clone(),
        };
        if e.retriable {
            LookupError::Unavailable(text)
        } else {
            LookupError::Refused(text)
        }
    }
}

/// The registry's answers for one record type, cached: the writer schema id per topic
/// (registered on first use when auto-registration is on, else the latest version of
/// `<topic>-value`) and the reader per schema id. Failures are not cached: the next call asks
/// again.
pub struct RegistrySchemas {
    settings: SrSettings,
    auto_register: bool,
    ours: OurSchema,
    canonical: String,
    writers: Mutex<HashMap<String, (u32, WriterSchema)>>,
    readers: Mutex<HashMap<u32, WriterSchema>>,
}

impl std::fmt::Debug for RegistrySchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySchemas")
            .field("record", &self.ours.name)
            .field("auto_register", &self.auto_register)
            .finish_non_exhaustive()
    }
}

impl RegistrySchemas {
    /// The schemas of `ours` in the registry of `cfg`.
    pub fn new(cfg: &SchemaRegistryConfig, ours: OurSchema) -> Result<Self, CodecSetupError> {
        Ok(Self {
            settings: registry_settings(cfg)?,
            auto_register: cfg.auto_register,
            canonical: ours.schema.canonical_form(),
            ours,
            writers: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
        })
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        // A panic while holding the lock cannot leave a cache half-written (one insert).
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn classify(&self, schema: Schema) -> WriterSchema {
        if schema.canonical_form() == self.canonical {
            WriterSchema::Current
        } else {
            WriterSchema::Other(Arc::new(schema))
        }
    }

    /// The schema id to write with on `topic`, and that schema.
    pub async fn writer(&self, topic: &str) -> Result<(u32, WriterSchema), LookupError> {
        if let Some(w) = Self::lock(&self.writers).get(topic) {
            return Ok(w.clone());
        }
        let strategy = if self.auto_register {
            let supplied = SuppliedSchema::new(
                Some(self.ours.name.to_string()),
                SchemaType::Avro,
                self.ours.json.to_string(),
            );
            SubjectNameStrategy::TopicNameStrategyWithSchema(topic.to_string(), false, supplied)
        } else {
            SubjectNameStrategy::TopicNameStrategy(topic.to_string(), false)
        };
        let registered = get_schema_by_subject(&self.settings, &strategy)
            .await
            .map_err(|e| LookupError::from_registry(&e))?;
        let writer = if self.auto_register {
            WriterSchema::Current
        } else {
            let schema = Schema::parse_str(&registered.schema).map_err(|e| {
                LookupError::Refused(format!(
                    "schema id {} of {topic}-value does not parse: {e}",
                    registered.id
                ))
            })?;
            self.classify(schema)
        };
        Self::lock(&self.readers).insert(registered.id, writer.clone());
        Self::lock(&self.writers).insert(topic.to_string(), (registered.id, writer.clone()));
        Ok((registered.id, writer))
    }

    /// How to read a record written with schema `id`.
    pub async fn reader(&self, id: u32) -> Result<WriterSchema, LookupError> {
        if let Some(r) = Self::lock(&self.readers).get(&id) {
            return Ok(r.clone());
        }
        let registered = get_schema_by_id(id, &self.settings)
            .await
            .map_err(|e| LookupError::from_registry(&e))?;
        let schema = Schema::parse_str(&registered.schema)
            .map_err(|e| LookupError::Refused(format!("schema id {id} does not parse: {e}")))?;
        let reader = self.classify(schema);
        Self::lock(&self.readers).insert(id, reader.clone());
        Ok(reader)
    }
}

/// Encoder and decoder of canonical events, sharing one registry configuration.
#[derive(Debug)]
pub struct CanonicalCodec {
    schemas: RegistrySchemas,
}

/// The canonical event's schema.
pub fn canonical_schema() -> OurSchema {
    OurSchema {
        name: event::SCHEMA_NAME,
        json: event::SCHEMA_JSON,
        schema: event::schema(),
    }
}

impl CanonicalCodec {
    /// A codec for the registry in `cfg`.
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Self, CodecSetupError> {
        Ok(Self {
            schemas: RegistrySchemas::new(cfg, canonical_schema())?,
        })
    }

    /// Encodes `event` for `topic` (registering the canonical schema under `<topic>-value` on
    /// first use when auto-register is on; else written with the subject's latest version).
    pub async fn encode(&self, topic: &str, event: &SecurityEvent) -> Result<Vec<u8>, EncodeError> {
        event.validate()?;
        self.encode_validated(topic, event).await
    }

    /// [`CanonicalCodec::encode`] for an event the caller has validated already (the enrich
    /// stage: decoding validated it, and it checks the matches it appends), so it is not
    /// validated twice. The current schema is written straight into the framed buffer.
    pub async fn encode_validated(
        &self,
        topic: &str,
        event: &SecurityEvent,
    ) -> Result<Vec<u8>, EncodeError> {
        let (id, writer) = self
            .schemas
            .writer(topic)
            .await
            .map_err(|e| EncodeError::Registry(e.to_string()))?;
        match writer {
            WriterSchema::Current => {
                let mut out = frame(id, &[]);
                out.reserve(1024);
                event.write_avro_datum_unvalidated(&mut out);
                Ok(out)
            }
            WriterSchema::Other(schema) => {
                let mut ours = Vec::with_capacity(1024);
                event.write_avro_datum_unvalidated(&mut ours);
                let theirs =
                    resolve_datum(&ours, event::schema(), &schema).map_err(EventError::from)?;
                Ok(frame(id, &theirs))
            }
        }
    }

    /// Decodes a record value, resolving the writer's schema to ours (schema evolution).
    pub async fn decode(&self, bytes: Option<&[u8]>) -> Result<SecurityEvent, DecodeError> {
        let bytes = bytes.ok_or_else(|| DecodeError::NotFramed("null value (tombstone)".into()))?;
        let id = framed_schema_id(bytes)?;
        // The schema first, so a missing schema and a registry outage are told apart from
        // corrupt bytes.
        let reader = self.schemas.reader(id).await.map_err(|e| match e {
            LookupError::Unavailable(m) => DecodeError::RegistryUnavailable(m),
            LookupError::Refused(message) => DecodeError::UnknownSchema { id, message },
        })?;
        let mut datum = bytes.get(5..).unwrap_or_default();
        let corrupt = |message: String| DecodeError::CorruptAvro { id, message };
        let invalid = |e: EventError| DecodeError::InvalidEvent(e.to_string());
        match reader {
            WriterSchema::Current => SecurityEvent::from_avro_datum(datum).map_err(|e| match e {
                EventError::Decode { .. } => corrupt(e.to_string()),
                other => invalid(other),
            }),
            WriterSchema::Other(writer) => {
                let value = apache_avro::reader::datum::GenericDatumReader::builder(&writer)
                    .build()
                    .and_then(|r| r.read_value(&mut datum))
                    .map_err(|e| corrupt(e.to_string()))?;
                if !datum.is_empty() {
                    return Err(corrupt(format!(
                        "{} trailing bytes after the datum",
                        datum.len()
                    )));
                }
                let value: Value =
                    value
                        .resolve(event::schema())
                        .map_err(|e| DecodeError::ForeignSchema {
                            id,
                            message: e.to_string(),
                        })?;
                SecurityEvent::from_avro_value(value).map_err(invalid)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_checked_before_any_lookup() {
        assert!(matches!(
            framed_schema_id(&[]),
            Err(DecodeError::NotFramed(_))
        ));
        assert!(
            matches!(framed_schema_id(&[1, 0, 0, 0, 1, 2]), Err(DecodeError::NotFramed(m)) if m.contains("magic byte 1"))
        );
        assert!(
            matches!(framed_schema_id(&[0, 0, 1]), Err(DecodeError::NotFramed(m)) if m.contains("3 bytes"))
        );
        assert_eq!(framed_schema_id(&[0, 0, 0, 1, 2]).ok(), Some(258));
    }

    #[test]
    fn framing() {
        assert_eq!(frame(258, b"xy"), vec![0, 0, 0, 1, 2, b'x', b'y']);
        assert_eq!(framed_schema_id(&frame(7, b"")).ok(), Some(7));
    }
}
