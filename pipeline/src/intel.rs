//! Threat-intel plumbing shared by the `intel_poll` and `enrich` stages: the Confluent-framed
//! Avro codec of `intel.indicators.v1` records, and reading a (compacted) topic to its end
//! without a consumer group.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use processors::intel::indicator::{self, Indicator};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::codec::{
    frame, framed_schema_id, resolve_datum, CodecSetupError, LookupError, OurSchema,
    RegistrySchemas, WriterSchema,
};
use crate::kafka::{self, KafkaSetupError};
use crate::topology::{KafkaConfig, SchemaRegistryConfig};

/// Why an indicator record could not be encoded or decoded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IndicatorCodecError {
    /// The registry could not be reached: try again later.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The registry refused the schema, or does not know the record's schema id.
    #[error("schema registry: {0}")]
    Registry(String),
    /// Not Confluent-framed, or the Avro does not decode as an indicator.
    #[error("undecodable indicator record: {0}")]
    Undecodable(String),
}

impl IndicatorCodecError {
    /// True when the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, IndicatorCodecError::RegistryUnavailable(_))
    }
}

/// Encoder and decoder of indicator records: Confluent wire format (magic byte 0, 4-byte schema
/// id) around the Avro datum of `schemas/indicator.v1.avsc`, the schema registered under
/// `<topic>-value` (TopicNameStrategy) when the topology's registry allows auto-registration.
#[derive(Debug)]
pub struct IndicatorCodec {
    schemas: RegistrySchemas,
}

fn registry_error(e: LookupError) -> IndicatorCodecError {
    match e {
        LookupError::Unavailable(m) => IndicatorCodecError::RegistryUnavailable(m),
        LookupError::Refused(m) => IndicatorCodecError::Registry(m),
    }
}

impl IndicatorCodec {
    /// A codec for the registry in `cfg`.
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Self, CodecSetupError> {
        let ours = OurSchema {
            name: indicator::SCHEMA_NAME,
            json: indicator::SCHEMA_JSON,
            schema: indicator::schema(),
        };
        Ok(Self {
            schemas: RegistrySchemas::new(cfg, ours)?,
        })
    }

    /// The schema id indicator records are written with on `topic` (registered on first use
    /// when auto-registration is on, else the latest version of `<topic>-value`). Cached.
    pub async fn writer_id(&self, topic: &str) -> Result<u32, IndicatorCodecError> {
        let (id, _) = self.writer(topic).await?;
        Ok(id)
    }

    async fn writer(&self, topic: &str) -> Result<(u32, WriterSchema), IndicatorCodecError> {
        self.schemas.writer(topic).await.map_err(registry_error)
    }

    /// The record value of `indicator` for `topic`.
    pub async fn encode(
        &self,
        topic: &str,
        indicator: &Indicator,
    ) -> Result<Vec<u8>, IndicatorCodecError> {
        let (id, writer) = self.writer(topic).await?;
        let datum = indicator.to_avro_datum();
        match writer {
            WriterSchema::Current => Ok(frame(id, &datum)),
            // Our datum read as a value of our schema, resolved to the subject's version.
            WriterSchema::Other(schema) => {
                let refused = |e: apache_avro::Error| {
                    IndicatorCodecError::Registry(format!(
                        "{topic}-value (schema id {id}) cannot hold an {}: {e}",
                        indicator::SCHEMA_NAME
                    ))
                };
                let theirs =
                    resolve_datum(&datum, indicator::schema(), &schema).map_err(refused)?;
                Ok(frame(id, &theirs))
            }
        }
    }

    /// Decodes a record value (not a tombstone).
    pub async fn decode(&self, bytes: &[u8]) -> Result<Indicator, IndicatorCodecError> {
        let id =
            framed_schema_id(bytes).map_err(|e| IndicatorCodecError::Undecodable(e.to_string()))?;
        let datum = bytes.get(5..).unwrap_or_default();
        match self.schemas.reader(id).await.map_err(registry_error)? {
            WriterSchema::Current => Indicator::from_avro_datum(datum)
                .map_err(|e| IndicatorCodecError::Undecodable(e.to_string())),
            WriterSchema::Other(writer) => {
                let undecodable = |e: apache_avro::Error| {
                    IndicatorCodecError::Undecodable(format!(
                        "schema id {id} does not resolve to {}: {e}",
                        indicator::SCHEMA_NAME
                    ))
                };
                let ours =
                    resolve_datum(datum, &writer, indicator::schema()).map_err(undecodable)?;
                Indicator::from_avro_datum(&ours)
                    .map_err(|e| IndicatorCodecError::Undecodable(e.to_string()))
            }
        }
    }
}

/// A consumer that reads by assignment: no consumer group membership, nothing committed
/// (`group.id` is set only because librdkafka wants one).
pub fn table_consumer(k: &KafkaConfig, role: &str) -> Result<BaseConsumer, KafkaSetupError> {
    let mut c = kafka::base_config(k, role)?;
    c.set("group.id", format!("secflow.table.{role}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed");
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    Ok(c.create()?)
}

/// Assigns every partition of `topic`, each from `from[partition]` (the next offset to read)
/// or the beginning, and returns the high watermarks at that moment: what "caught up" means.
pub fn assign_all(
    consumer: &BaseConsumer,
    topic: &str,
    from: &BTreeMap<i32, i64>,
) -> Result<BTreeMap<i32, i64>, KafkaSetupError> {
    let md = consumer.fetch_metadata(Some(topic), kafka::ADMIN_TIMEOUT)?;
    let partitions: Vec<i32> = md
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(KafkaSetupError::MissingTopics(vec![topic.to_string()]));
    }
    let mut tpl = TopicPartitionList::new();
    let mut high = BTreeMap::new();
    for p in partitions {
        let (_, hi) = consumer.fetch_watermarks(topic, p, kafka::ADMIN_TIMEOUT)?;
        high.insert(p, hi);
        let start = match from.get(&p) {
            Some(o) if *o >= 0 => Offset::Offset(*o),
            _ => Offset::Beginning,
        };
        tpl.add_partition_offset(topic, p, start)?;
    }
    consumer.assign(&tpl)?;
    Ok(high)
}

/// Tracks when a reader has caught up with the high watermarks taken at start. Watermarks are
/// only a hint (some brokers report them one short), so caught up means: every partition's
/// next offset has reached its watermark and no record arrived for [`CatchUp::QUIET`], or no
/// record arrived for [`CatchUp::IDLE`] at all.
#[derive(Debug, Clone)]
pub struct CatchUp {
    high: BTreeMap<i32, i64>,
    next: BTreeMap<i32, i64>,
    last_record: Instant,
}

impl CatchUp {
    /// Quiet time after reaching the watermarks.
    pub const QUIET: Duration = Duration::from_millis(1000);
    /// Quiet time that counts as caught up whatever the watermarks say.
    pub const IDLE: Duration = Duration::from_secs(5);

    /// Watermarks at start and the offsets reading starts from.
    pub fn new(high: BTreeMap<i32, i64>, from: &BTreeMap<i32, i64>) -> Self {
        let next = high
            .keys()
            .map(|p| (*p, from.get(p).copied().unwrap_or(0).max(0)))
            .collect();
        Self {
            high,
            next,
            last_record: Instant::now(),
        }
    }

    /// A record at `offset` of `partition` was read.
    pub fn saw(&mut self, partition: i32, offset: i64) {
        self.next.insert(partition, offset + 1);
        self.last_record = Instant::now();
    }

    /// Whether every partition reached its watermark.
    pub fn reached(&self) -> bool {
        self.high
            .iter()
            .all(|(p, hi)| self.next.get(p).copied().unwrap_or(0) >= *hi)
    }

    /// Whether reading can be considered complete now.
    pub fn done(&self) -> bool {
        let quiet = self.last_record.elapsed();
        (self.reached() && quiet >= Self::QUIET) || quiet >= Self::IDLE
    }
}

/// Reads every record of `topic` present when called (assign mode, from the beginning, no
/// group) and hands each to `on_record`; returns the number read. Blocking: call it from
/// `spawn_blocking`.
pub fn read_to_end(
    k: &KafkaConfig,
    role: &str,
    topic: &str,
    mut on_record: impl FnMut(&BorrowedMessage<'_>),
) -> Result<u64, KafkaSetupError> {
    let consumer = table_consumer(k, role)?;
    let from = BTreeMap::new();
    let high = assign_all(&consumer, topic, &from)?;
    let mut progress = CatchUp::new(high, &from);
    let mut n = 0u64;
    while !progress.done() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                progress.saw(m.partition(), m.offset());
                n += 1;
                on_record(&m);
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_needs_every_partition() {
        let high = BTreeMap::from([(0, 3), (1, 0), (2, 5)]);
        let mut c = CatchUp::new(high, &BTreeMap::from([(2, 5)]));
        assert!(!c.reached());
        c.saw(0, 1);
        assert!(!c.reached());
        c.saw(0, 2);
        assert!(c.reached());
        assert!(!c.done(), "a record just arrived");
    }
}
