//! The canonical event on the wire: Avro in the Confluent wire format (magic byte 0, 4-byte
//! big-endian schema id, Avro binary), schemas from the registry under TopicNameStrategy
//! (`<topic>-value`), encoded and decoded with `schema_registry_converter` (which caches
//! schemas by id and subject).

use std::time::Duration;

use apache_avro::types::Value;
use processors::event::{self, EventError, SecurityEvent};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
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

/// Encoder and decoder of canonical events, sharing one registry configuration.
pub struct CanonicalCodec {
    encoder: AvroEncoder,
    decoder: AvroDecoder,
    auto_register: bool,
}

impl std::fmt::Debug for CanonicalCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanonicalCodec")
            .field("auto_register", &self.auto_register)
            .finish_non_exhaustive()
    }
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

impl CanonicalCodec {
    /// A codec for the registry in `cfg`.
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Self, CodecSetupError> {
        let settings = registry_settings(cfg)?;
        Ok(Self {
            encoder: AvroEncoder::new(settings.clone()),
            decoder: AvroDecoder::new(settings),
            auto_register: cfg.auto_register,
        })
    }

    fn strategy(&self, topic: &str) -> SubjectNameStrategy {
        if self.auto_register {
            let supplied = SuppliedSchema::new(
                Some(event::SCHEMA_NAME.to_string()),
                SchemaType::Avro,
                event::SCHEMA_JSON.to_string(),
            );
            SubjectNameStrategy::TopicNameStrategyWithSchema(topic.to_string(), false, supplied)
        } else {
            SubjectNameStrategy::TopicNameStrategy(topic.to_string(), false)
        }
    }

    /// Encodes `event` for `topic` (registering the canonical schema under `<topic>-value` on
    /// first use when auto-register is on).
    pub async fn encode(&self, topic: &str, event: &SecurityEvent) -> Result<Vec<u8>, EncodeError> {
        let value = event.to_avro_value()?;
        self.encoder
            .encode_value(value, &self.strategy(topic))
            .await
            .map_err(|e| EncodeError::Registry(e.to_string()))
    }

    /// Decodes a record value, resolving the writer's schema to ours (schema evolution).
    pub async fn decode(&self, bytes: Option<&[u8]>) -> Result<SecurityEvent, DecodeError> {
        let bytes = bytes.ok_or_else(|| DecodeError::NotFramed("null value (tombstone)".into()))?;
        let id = framed_schema_id(bytes)?;
        // Look the schema up first, so a missing schema and a registry outage are told apart
        // from corrupt bytes.
        self.decoder.get_schema(id).await.map_err(|e| {
            if e.retriable {
                DecodeError::RegistryUnavailable(e.to_string())
            } else {
                DecodeError::UnknownSchema {
                    id,
                    message: e.error.clone(),
                }
            }
        })?;
        let decoded =
            self.decoder
                .decode(Some(bytes))
                .await
                .map_err(|e| DecodeError::CorruptAvro {
                    id,
                    message: e.cause.clone().unwrap_or_else(|| e.error.clone()),
                })?;
        let value: Value = match decoded.value.resolve(event::schema()) {
            Ok(v) => v,
            Err(e) => {
                return Err(DecodeError::ForeignSchema {
                    id,
                    message: e.to_string(),
                })
            }
        };
        SecurityEvent::from_avro_value(value).map_err(|e| DecodeError::InvalidEvent(e.to_string()))
    }

    /// Forgets cached lookup failures (after a schema has been registered late).
    pub fn forget_errors(&self) {
        self.decoder.remove_errors_from_cache();
        self.encoder.remove_errors_from_cache();
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
}
