//! The `transform` stage: canonical (or enriched) Avro events → ECS, CEF and OCSF topics,
//! exactly once within Kafka. Each batch is read, transformed, and written in one transaction
//! together with the consumer offsets (`send_offsets_to_transaction`), so a crash at any point
//! either commits the whole batch or none of it; readers use `isolation.level=read_committed`.
//! A record that cannot be decoded or transformed goes to the stage DLQ inside the same
//! transaction, so it is dead-lettered exactly once too and never blocks its partition.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use processors::transform::Format;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::{dlq_reason, group_id, RunLimits, Shutdown, StageError, TransientBackoff};
use crate::codec::CanonicalCodec;
use crate::dead_letter::{DeadLetter, DlqReason, OriginalRecord};
use crate::kafka::{self, KafkaSetupError};
use crate::topology::{StageConfig, TopicRole, Topology, TransformStage};
use processors::privacy::{CompiledPrivacy, PrivacyKeyRef};

/// How long one transaction call may block.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Header naming the output format on every record this stage writes.
pub const FORMAT_HEADER: &str = "secflow.format";

/// Header carrying the canonical event id on every output record, so sinks can deduplicate
/// (Elasticsearch `_id`, PagerDuty `dedup_key`) without parsing the payload.
pub const EVENT_ID_HEADER: &str = "secflow.event_id";

/// What a transform run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransformReport {
    /// Input records consumed and committed.
    pub records: u64,
    /// Records written per output format.
    pub written: BTreeMap<String, u64>,
    /// Dead-lettered records by error class.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Transactions committed.
    pub transactions: u64,
    /// Transactions aborted and retried.
    pub aborted: u64,
}

/// One record to write in the current transaction.
struct Outgoing {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: OwnedHeaders,
}

/// The transactional id of an instance of a stage.
pub fn transactional_id(topology: &Topology, stage: &TransformStage) -> String {
    let instance = stage
        .instance_id
        .clone()
        .or_else(|| std::env::var("SECFLOW_INSTANCE_ID").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "0".to_string());
    format!("secflow.{}.{}.{}", topology.name, stage.name, instance)
}

fn transactional_producer(
    topology: &Topology,
    stage: &TransformStage,
) -> Result<FutureProducer, KafkaSetupError> {
    let mut c = kafka::base_config(&topology.kafka, &stage.name)?;
    c.set("transactional.id", transactional_id(topology, stage))
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("transaction.timeout.ms", "60000");
    for (k, v) in &topology.kafka.properties {
        c.set(k, v);
    }
    Ok(c.create()?)
}

/// Headers this stage sets on its outputs (replacing any the input carried).
const OWN_HEADERS: [&str; 4] = [
    FORMAT_HEADER,
    EVENT_ID_HEADER,
    crate::delivery::engine::EVENT_TIME_HEADER,
    crate::delivery::engine::TENANT_HEADER,
];

fn copy_headers(
    m: &BorrowedMessage<'_>,
    format: Format,
    event: &processors::event::SecurityEvent,
) -> OwnedHeaders {
    let mut h = OwnedHeaders::new();
    if let Some(hs) = m.headers() {
        for x in hs.iter() {
            if OWN_HEADERS.contains(&x.key) {
                continue;
            }
            h = h.insert(Header {
                key: x.key,
                value: x.value,
            });
        }
    }
    h.insert(Header {
        key: FORMAT_HEADER,
        value: Some(format.as_str().as_bytes()),
    })
    .insert(Header {
        key: EVENT_ID_HEADER,
        value: Some(event.event_id.as_bytes()),
    })
    .insert(Header {
        key: crate::delivery::engine::EVENT_TIME_HEADER,
        value: Some(event.event_time.to_string().as_bytes()),
    })
    .insert(Header {
        key: crate::delivery::engine::TENANT_HEADER,
        value: Some(event.tenant.as_bytes()),
    })
}

/// Runs the stage until `shutdown` fires or a limit is reached.
pub async fn run(
    topology: &Topology,
    stage: &TransformStage,
    limits: RunLimits,
    mut shutdown: Shutdown,
) -> Result<TransformReport, StageError> {
    let input = topology.topics.resolved(stage.input).name;
    let dlq = topology
        .stage_dlq(&StageConfig::Transform(Box::new(stage.clone())))
        .name;
    let outputs: Vec<(Format, String)> = stage
        .outputs
        .iter()
        .map(|f| (*f, topology.topics.resolved(TopicRole::of_format(*f)).name))
        .collect();
    let mut needed = vec![input.clone(), dlq.clone()];
    needed.extend(outputs.iter().map(|(_, t)| t.clone()));
    kafka::require_topics(&topology.kafka, &needed).await?;

    let codec = CanonicalCodec::new(&topology.schema_registry)?;
    let privacy =
        CompiledPrivacy::new(&stage.privacy, |k: &PrivacyKeyRef| k.resolve()).map_err(|e| {
            StageError::Sink {
                stage: stage.name.clone(),
                message: format!("privacy rules: {e}"),
            }
        })?;
    let cc = kafka::consumer_config(&topology.kafka, &stage.name, &group_id(&stage.name), false)?;
    let consumer: StreamConsumer = cc.create().map_err(KafkaSetupError::from)?;
    let producer = transactional_producer(topology, stage)?;
    let client_err = |source| StageError::Client {
        stage: stage.name.clone(),
        source,
    };
    // Fences any earlier incarnation with the same transactional id and aborts its open
    // transaction, so its half-written batch is never visible to read_committed readers.
    tokio::task::block_in_place(|| producer.init_transactions(TXN_TIMEOUT)).map_err(client_err)?;
    consumer.subscribe(&[input.as_str()]).map_err(client_err)?;
    info!(stage = %stage.name, %input, transactional_id = %transactional_id(topology, stage), "transform started");

    let mut report = TransformReport::default();
    let mut last_record = Instant::now();
    'outer: loop {
        if limits.max_records.is_some_and(|max| report.records >= max) {
            break;
        }
        // Collect a batch: wait for the first record, then up to max_wait for more. Idle time
        // counts from the last record, so consume errors (broker gone) do not reset it.
        let first = async {
            match limits.idle_exit {
                Some(idle) => {
                    let left = idle.saturating_sub(last_record.elapsed());
                    tokio::time::timeout(left, consumer.recv()).await.ok()
                }
                None => Some(consumer.recv().await),
            }
        };
        let first = tokio::select! {
            _ = &mut shutdown => break,
            m = first => m,
        };
        let Some(first) = first else {
            info!(stage = %stage.name, "idle, stopping");
            break;
        };
        let mut batch: Vec<BorrowedMessage<'_>> = Vec::with_capacity(stage.max_batch);
        match first {
            Ok(m) => batch.push(m),
            Err(e) => {
                warn!(stage = %stage.name, error = %e, "consume error");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        last_record = Instant::now();
        let deadline = Instant::now() + Duration::from_millis(stage.max_wait_ms);
        let room = |b: &Vec<BorrowedMessage<'_>>, done: u64| {
            b.len() < stage.max_batch
                && limits
                    .max_records
                    .is_none_or(|max| done + (b.len() as u64) < max)
        };
        while room(&batch, report.records) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m),
                Ok(Err(e)) => warn!(stage = %stage.name, error = %e, "consume error"),
                Err(_) => break,
            }
        }

        // Transform the batch before opening the transaction: a registry outage is waited out
        // here, with no transaction (and its timeout) running.
        let mut outgoing: Vec<Outgoing> = Vec::with_capacity(batch.len() * outputs.len());
        let mut written: HashMap<Format, u64> = HashMap::new();
        let mut dead: Vec<(String, u64)> = Vec::new();
        for m in &batch {
            let mut backoff = TransientBackoff::new();
            let decoded = loop {
                match codec.decode(m.payload()).await {
                    Err(e) if e.is_transient() => {
                        let delay = backoff.next_delay();
                        warn!(stage = %stage.name, error = %e, ?delay, "transient decode failure, retrying");
                        tokio::time::sleep(delay).await;
                    }
                    other => break other,
                }
            };
            let letter = match decoded {
                Ok(mut event) => {
                    privacy.apply(&mut event);
                    let mut failure = None;
                    let mut produced = Vec::with_capacity(outputs.len());
                    for (format, topic) in &outputs {
                        match format.transform(&event) {
                            Ok(bytes) => produced.push(Outgoing {
                                topic: topic.clone(),
                                key: m.key().map(<[u8]>::to_vec),
                                payload: bytes,
                                headers: copy_headers(m, *format, &event),
                            }),
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
                        }
                    }
                    match failure {
                        None => {
                            for o in &produced {
                                if let Some((f, _)) = outputs.iter().find(|(_, t)| *t == o.topic) {
                                    *written.entry(*f).or_default() += 1;
                                }
                            }
                            outgoing.extend(produced);
                            None
                        }
                        // All formats or none: a record is either transformed everywhere or
                        // dead-lettered once, so the three topics stay consistent.
                        Some(e) => Some(DeadLetter::stage_failure(
                            OriginalRecord::from_message(m),
                            &stage.name,
                            DlqReason::Poison,
                            "transform_failed",
                            &e.to_string(),
                        )),
                    }
                }
                Err(e) => Some(DeadLetter::stage_failure(
                    OriginalRecord::from_message(m),
                    &stage.name,
                    dlq_reason(&e),
                    e.class(),
                    &e.to_string(),
                )),
            };
            if let Some(letter) = letter {
                dead.push((letter.error_class.clone(), 1));
                outgoing.push(Outgoing {
                    topic: dlq.clone(),
                    key: letter.original.key.clone(),
                    payload: letter.original.value.clone().unwrap_or_default(),
                    headers: letter.headers(),
                });
            }
        }

        // Offsets to commit with the batch: one past the last record per partition.
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for m in &batch {
            let k = (m.topic().to_string(), m.partition());
            let e = next.entry(k).or_insert(m.offset() + 1);
            *e = (*e).max(m.offset() + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for ((t, p), o) in &next {
            offsets
                .add_partition_offset(t, *p, Offset::Offset(*o))
                .map_err(client_err)?;
        }

        let mut attempt = TransientBackoff::new();
        loop {
            match commit_batch(&producer, &consumer, &outgoing, &offsets).await {
                Ok(()) => break,
                Err(e) if transactions_unsupported(&e) => {
                    return Err(StageError::Sink {
                        stage: stage.name.clone(),
                        message: format!(
                            "the broker does not support Kafka transactions ({e}); the transform stage needs a broker with EndTxn (Apache Kafka 0.11+, Redpanda, MSK, Confluent)"
                        ),
                    });
                }
                Err(e) => {
                    report.aborted += 1;
                    let fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
                    let _ = tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT));
                    if fatal {
                        // Fenced by a newer instance with our transactional id, or the producer
                        // is unusable: stop; the batch stays uncommitted and is re-read.
                        return Err(client_err(e));
                    }
                    if matches!(consumer.assignment(), Ok(a) if a.count() == 0) {
                        warn!(stage = %stage.name, error = %e, "transaction failed after losing the partitions; the new owner re-reads the batch");
                        continue 'outer;
                    }
                    let delay = attempt.next_delay();
                    warn!(stage = %stage.name, error = %e, ?delay, "transaction aborted, retrying the batch");
                    // A stop request wins over retrying: the aborted batch is not committed, so
                    // the next run reads it again.
                    tokio::select! {
                        _ = &mut shutdown => break 'outer,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        report.transactions += 1;
        report.records += batch.len() as u64;
        for (f, n) in written {
            *report.written.entry(f.as_str().to_string()).or_default() += n;
        }
        for (class, n) in dead {
            *report.dead_lettered.entry(class).or_default() += n;
        }
    }
    info!(stage = %stage.name, records = report.records, transactions = report.transactions, "transform stopped");
    Ok(report)
}

/// True when the broker lacks the transaction APIs (librdkafka reports it as an unsupported
/// request), which no retry can fix.
fn transactions_unsupported(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::UnsupportedVersion)
        || e.to_string().contains("not supported by broker")
}

/// One transaction: every output record, then the input offsets, then commit.
async fn commit_batch(
    producer: &FutureProducer,
    consumer: &StreamConsumer,
    outgoing: &[Outgoing],
    offsets: &TopicPartitionList,
) -> Result<(), KafkaError> {
    producer.begin_transaction()?;
    let mut deliveries = Vec::with_capacity(outgoing.len());
    for o in outgoing {
        let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&o.topic)
            .payload(o.payload.as_slice())
            .headers(o.headers.clone());
        if let Some(k) = &o.key {
            r = r.key(k.as_slice());
        }
        loop {
            match producer.send_result(r) {
                Ok(d) => {
                    deliveries.push(d);
                    break;
                }
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    r = back;
                    tokio::task::block_in_place(|| producer.poll(Duration::from_millis(50)));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
    let metadata = consumer
        .group_metadata()
        .ok_or_else(|| KafkaError::Subscription("no consumer group metadata yet".to_string()))?;
    // commit_transaction flushes every send first and fails if any of them failed, so the
    // delivery futures need no separate check.
    drop(deliveries);
    tokio::task::block_in_place(|| {
        producer.send_offsets_to_transaction(offsets, &metadata, TXN_TIMEOUT)?;
        producer.commit_transaction(TXN_TIMEOUT)
    })
}
