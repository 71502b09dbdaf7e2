//! The `transform` stage: canonical (or enriched) Avro events → ECS, CEF and OCSF topics,
//! exactly once within Kafka. Each batch is read, transformed, and written in one transaction
//! together with the consumer offsets (`send_offsets_to_transaction`), so a crash at any point
//! either commits the whole batch or none of it; readers use `isolation.level=read_committed`.
//! A record that cannot be decoded or transformed goes to the stage DLQ inside the same
//! transaction, so it is dead-lettered exactly once too and never blocks its partition.
//!
//! On brokers without transactions the stage can run in the `output_log` mode instead (see
//! [`super::output_log`]): same batches, idempotent writes to the input's partition number with
//! the input position in a header, and a resume point read from the output tails on assignment.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use processors::transform::Format;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::output_log::{self, ResumePoint, ORIGIN_HEADER};
use super::{dlq_reason, group_id, RunLimits, Shutdown, StageError, TransientBackoff};
use crate::codec::CanonicalCodec;
use crate::dead_letter::{DeadLetter, DlqReason, OriginalRecord};
use crate::kafka::{self, KafkaSetupError};
use crate::topology::{ExactlyOnceMode, StageConfig, TopicRole, Topology, TransformStage};
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
    /// Input partition and offset this record comes from.
    input_partition: i32,
    input_offset: i64,
    /// Partition to write to (`output_log` mode: the input's); `None`: by key.
    partition: Option<i32>,
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

/// The `output_log` producer: idempotent, and one request in flight per connection, so an
/// output partition's records land in send order even on a broker that does not check the
/// idempotent producer's sequence numbers — the resume point relies on that order.
fn output_log_producer(
    topology: &Topology,
    stage: &TransformStage,
) -> Result<FutureProducer, KafkaSetupError> {
    let mut c = kafka::base_config(&topology.kafka, &stage.name)?;
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4");
    for (k, v) in &topology.kafka.properties {
        c.set(k, v);
    }
    c.set("max.in.flight.requests.per.connection", "1");
    Ok(c.create()?)
}

/// Headers this stage sets on its outputs (replacing any the input carried).
const OWN_HEADERS: [&str; 4] = [
    FORMAT_HEADER,
    EVENT_ID_HEADER,
    crate::delivery::engine::EVENT_TIME_HEADER,
    crate::delivery::engine::TENANT_HEADER,
];

/// `traceparent`, when given (the record's span, traces on), replaces the input's.
fn copy_headers(
    m: &BorrowedMessage<'_>,
    format: Format,
    event: &processors::event::SecurityEvent,
    traceparent: Option<&str>,
) -> OwnedHeaders {
    let mut h = OwnedHeaders::new();
    if let Some(hs) = m.headers() {
        for x in hs.iter() {
            if OWN_HEADERS.contains(&x.key) || x.key == ORIGIN_HEADER {
                continue;
            }
            if traceparent.is_some() && x.key == crate::dead_letter::header::TRACEPARENT {
                continue;
            }
            h = h.insert(Header {
                key: x.key,
                value: x.value,
            });
        }
    }
    if let Some(tp) = traceparent {
        h = h.insert(Header {
            key: crate::dead_letter::header::TRACEPARENT,
            value: Some(tp),
        });
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
    .insert(Header {
        key: ORIGIN_HEADER,
        value: Some(output_log::origin(m.topic(), m.partition(), m.offset()).as_bytes()),
    })
}

/// Counts rebalances, so the `output_log` mode knows its resume points may be stale.
#[derive(Clone, Default)]
struct RebalanceEpoch(Arc<AtomicU64>);

impl ClientContext for RebalanceEpoch {}

impl ConsumerContext for RebalanceEpoch {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            info!(partitions = tpl.count(), "partitions assigned");
        }
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How the batches are made durable.
enum Writer {
    /// One Kafka transaction per batch.
    Transactional(FutureProducer),
    /// Idempotent writes + resume points (see [`super::output_log`]).
    OutputLog {
        producer: FutureProducer,
        /// Resume point per input partition, read from the output tails when first needed.
        points: HashMap<i32, ResumePoint>,
        /// The rebalance count the points were read under.
        epoch: u64,
        /// Topics whose partition `p` is written only by input partition `p`'s owner.
        scanned: Vec<String>,
    },
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
    let epoch = RebalanceEpoch::default();
    let consumer: Arc<StreamConsumer<RebalanceEpoch>> = Arc::new(
        cc.create_with_context(epoch.clone())
            .map_err(KafkaSetupError::from)?,
    );
    let client_err = |source| StageError::Client {
        stage: stage.name.clone(),
        source,
    };
    let mut writer = match stage.exactly_once {
        ExactlyOnceMode::Transactions => {
            let producer = transactional_producer(topology, stage)?;
            // Fences any earlier incarnation with the same transactional id and aborts its
            // open transaction, so its half-written batch is never visible to read_committed
            // readers.
            tokio::task::block_in_place(|| producer.init_transactions(TXN_TIMEOUT))
                .map_err(client_err)?;
            info!(stage = %stage.name, %input, transactional_id = %transactional_id(topology, stage), "transform started (transactions)");
            Writer::Transactional(producer)
        }
        ExactlyOnceMode::OutputLog => {
            let inputs = kafka::partition_count(&topology.kafka, &input).await?;
            let mut scanned = Vec::new();
            for (_, topic) in &outputs {
                let n = kafka::partition_count(&topology.kafka, topic).await?;
                if n < inputs {
                    return Err(StageError::Sink {
                        stage: stage.name.clone(),
                        message: format!(
                            "exactly_once: output_log writes each record to its input's partition number, but {topic} has {n} partitions and {input} has {inputs}; give {topic} at least {inputs}"
                        ),
                    });
                }
                scanned.push(topic.clone());
            }
            if kafka::partition_count(&topology.kafka, &dlq).await? >= inputs {
                scanned.push(dlq.clone());
            } else {
                warn!(stage = %stage.name, %dlq, "the DLQ has fewer partitions than the input: dead letters are written at least once (not exactly once) across a crash");
            }
            info!(stage = %stage.name, %input, "transform started (output log)");
            Writer::OutputLog {
                producer: output_log_producer(topology, stage)?,
                points: HashMap::new(),
                epoch: u64::MAX,
                scanned,
            }
        }
    };
    consumer.subscribe(&[input.as_str()]).map_err(client_err)?;

    let mut report = TransformReport::default();
    let mut last_record = Instant::now();
    let lag = super::LagReporter::start(consumer.clone(), &stage.name);
    crate::telemetry::set_ready(&stage.name, false);
    'outer: loop {
        if limits.max_records.is_some_and(|max| report.records >= max) {
            break;
        }
        let assigned = consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false);
        crate::telemetry::set_ready(&stage.name, assigned);
        // Collect a batch: wait for the first record, then up to max_wait for more. Idle time
        // counts from the last record, so consume errors (broker gone) do not reset it.
        let batch = match super::next_batch(
            &consumer,
            &stage.name,
            stage.max_batch,
            Duration::from_millis(stage.max_wait_ms),
            &limits,
            report.records,
            &mut last_record,
            &mut shutdown,
        )
        .await
        {
            super::NextBatch::Batch(b) => b,
            super::NextBatch::Stop => break,
            super::NextBatch::Retry | super::NextBatch::Quiet => continue,
        };

        // Transform the batch before opening the transaction: a registry outage is waited out
        // here, with no transaction (and its timeout) running.
        let mut outgoing: Vec<Outgoing> = Vec::with_capacity(batch.len() * outputs.len());
        let mut written: HashMap<Format, u64> = HashMap::new();
        let mut dead: Vec<(String, &'static str, u64)> = Vec::new();
        // One span per record (traces on), ended with this iteration: after the batch is written.
        let mut spans = Vec::with_capacity(batch.len());
        for m in &batch {
            let span = crate::telemetry::RecordSpan::consumed(
                "secflow.transform",
                crate::telemetry::SpanKind::Consumer,
                &stage.name,
                m,
            );
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
                                input_partition: m.partition(),
                                input_offset: m.offset(),
                                partition: None,
                                key: m.key().map(<[u8]>::to_vec),
                                payload: bytes,
                                headers: copy_headers(m, *format, &event, span.traceparent()),
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
                span.fail(&letter.error_class);
                dead.push((
                    letter.error_class.clone(),
                    letter
                        .reason
                        .map_or(DlqReason::Undecodable.as_str(), DlqReason::as_str),
                    1,
                ));
                outgoing.push(Outgoing {
                    topic: dlq.clone(),
                    input_partition: m.partition(),
                    input_offset: m.offset(),
                    partition: None,
                    key: letter.original.key.clone(),
                    payload: letter.original.value.clone().unwrap_or_default(),
                    headers: letter.headers().insert(Header {
                        key: ORIGIN_HEADER,
                        value: Some(
                            output_log::origin(m.topic(), m.partition(), m.offset()).as_bytes(),
                        ),
                    }),
                });
            }
            spans.push(span);
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

        let producer = match &mut writer {
            Writer::Transactional(p) => p,
            Writer::OutputLog {
                producer,
                points,
                epoch: seen,
                scanned,
            } => {
                // Write until every record of the batch that is still ours is in the outputs.
                // The batch is never dropped: a record read is written (or left to the
                // partition's new owner), never skipped.
                loop {
                    let now = epoch.0.load(Ordering::SeqCst);
                    if *seen != now {
                        // Partitions moved: what another owner wrote since is only in the
                        // tails, so the resume points are read again.
                        points.clear();
                        *seen = now;
                        let assigned = consumer.assignment().map_err(client_err)?;
                        let before = outgoing.len();
                        outgoing.retain(|o| {
                            assigned.find_partition(&input, o.input_partition).is_some()
                        });
                        if outgoing.len() < before {
                            info!(stage = %stage.name, dropped = before - outgoing.len(), "records of partitions that moved are left to their new owner");
                        }
                    }
                    match write_output_log(
                        topology,
                        &input,
                        producer,
                        &consumer,
                        points,
                        scanned,
                        &mut outgoing,
                    )
                    .await
                    {
                        Ok(()) => break,
                        Err(e) => {
                            report.aborted += 1;
                            warn!(stage = %stage.name, error = %e, "batch not fully written; writing what the output tails lack again");
                            points.clear();
                            tokio::select! {
                                _ = &mut shutdown => break 'outer,
                                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            }
                        }
                    }
                }
                report.transactions += 1;
                report.records += batch.len() as u64;
                count_batch(&stage.name, &input, batch.len(), &written, &dead, &outputs);
                for (f, n) in written {
                    *report.written.entry(f.as_str().to_string()).or_default() += n;
                }
                for (class, _, n) in dead {
                    *report.dead_lettered.entry(class).or_default() += n;
                }
                continue 'outer;
            }
        };
        let mut attempt = TransientBackoff::new();
        loop {
            match commit_batch(producer, &consumer, &outgoing, &offsets).await {
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
        count_batch(&stage.name, &input, batch.len(), &written, &dead, &outputs);
        for (f, n) in written {
            *report.written.entry(f.as_str().to_string()).or_default() += n;
        }
        for (class, _, n) in dead {
            *report.dead_lettered.entry(class).or_default() += n;
        }
    }
    // The stop blocks (the lag reporter's last reading, the consumer leaving its group, the
    // producer closing): off the async workers, so the other stages of this process (sinks
    // with requests in flight) keep running meanwhile. Offsets are committed with each batch,
    // so the reporter's last reading is the lag at stop.
    let closing = Instant::now();
    tokio::task::block_in_place(move || drop((lag, consumer, writer)));
    info!(stage = %stage.name, records = report.records, transactions = report.transactions, closed_in = ?closing.elapsed(), "transform stopped");
    Ok(report)
}

/// Counts a written batch in the `secflow_*` metrics.
fn count_batch(
    stage: &str,
    input: &str,
    n: usize,
    written: &HashMap<Format, u64>,
    dead: &[(String, &'static str, u64)],
    outputs: &[(Format, String)],
) {
    use crate::telemetry;
    telemetry::count(
        "secflow_records_in_total",
        &[("stage", stage), ("topic", input)],
        n as u64,
    );
    telemetry::observe("secflow_batch_size", &[("stage", stage)], n as f64);
    for (format, topic) in outputs {
        if let Some(k) = written.get(format) {
            telemetry::count(
                "secflow_records_out_total",
                &[("stage", stage), ("topic", topic.as_str())],
                *k,
            );
        }
    }
    for (class, reason, k) in dead {
        telemetry::count(
            "secflow_records_failed_total",
            &[("stage", stage), ("reason", class.as_str())],
            *k,
        );
        // By dead-letter reason (poison | undecodable), as docs/metrics.md and the sinks have it.
        telemetry::count(
            "secflow_dlq_writes_total",
            &[("stage", stage), ("reason", reason)],
            *k,
        );
    }
}

/// True when the broker lacks the transaction APIs (librdkafka reports it as an unsupported
/// request), which no retry can fix.
fn transactions_unsupported(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::UnsupportedVersion)
        || e.to_string().contains("not supported by broker")
}

/// Queues every record of `outgoing` on `producer` (waiting while its queue is full).
fn send_all<'a>(
    producer: &FutureProducer,
    outgoing: impl IntoIterator<Item = &'a Outgoing>,
) -> Result<Vec<rdkafka::producer::DeliveryFuture>, KafkaError> {
    let mut deliveries = Vec::new();
    for o in outgoing {
        let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&o.topic)
            .payload(o.payload.as_slice())
            .headers(o.headers.clone());
        if let Some(k) = &o.key {
            r = r.key(k.as_slice());
        }
        if let Some(p) = o.partition {
            r = r.partition(p);
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
    Ok(deliveries)
}

/// `output_log` mode: writes what the output tails do not have yet, to the input's partition
/// number, waits for every acknowledgement, then commits the input offsets (an optimisation:
/// the resume points alone make a restart exact).
#[allow(clippy::too_many_arguments)]
async fn write_output_log(
    topology: &Topology,
    input: &str,
    producer: &FutureProducer,
    consumer: &StreamConsumer<RebalanceEpoch>,
    points: &mut HashMap<i32, ResumePoint>,
    scanned: &[String],
    outgoing: &mut [Outgoing],
) -> Result<(), KafkaError> {
    let mut missing: Vec<i32> = outgoing
        .iter()
        .map(|o| o.input_partition)
        .filter(|p| !points.contains_key(p))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        let found = tokio::task::block_in_place(|| {
            output_log::scan_tails(&topology.kafka, input, &missing, scanned)
        })
        .map_err(|e| KafkaError::Subscription(format!("reading the output tails: {e}")))?;
        for (p, point) in found {
            info!(partition = p, ?point, "resume point from the output tails");
            points.insert(p, point);
        }
    }
    let total = outgoing.len();
    let mut todo = Vec::with_capacity(total);
    for o in outgoing.iter_mut() {
        let exact = scanned.contains(&o.topic);
        if exact {
            o.partition = Some(o.input_partition);
            if points
                .get(&o.input_partition)
                .is_some_and(|r| r.already_written(&o.topic, o.input_offset))
            {
                continue;
            }
        }
        todo.push(&*o);
    }
    if todo.len() < total {
        info!(
            skipped = total - todo.len(),
            "records already in the outputs (re-read after a restart or rebalance) not written again"
        );
    }
    let deliveries = send_all(producer, todo.iter().copied())?;
    for d in deliveries {
        match d.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(e),
            Err(_) => return Err(KafkaError::Canceled),
        }
    }
    for o in &todo {
        if let Some(point) = points.get_mut(&o.input_partition) {
            point.advance(&o.topic, o.input_offset);
        }
    }
    // Commit only past records this call wrote or found written (never past records dropped
    // because their partition moved). Only an optimisation — the resume points make a restart
    // exact — so a refused commit is not a write failure.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for o in outgoing.iter() {
        let e = next.entry(o.input_partition).or_insert(o.input_offset + 1);
        *e = (*e).max(o.input_offset + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for (p, o) in next {
        offsets.add_partition_offset(input, p, Offset::Offset(o))?;
    }
    if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
        warn!(error = %e, "offset commit refused; the resume points cover it");
    }
    Ok(())
}

/// One transaction: every output record, then the input offsets, then commit.
async fn commit_batch(
    producer: &FutureProducer,
    consumer: &StreamConsumer<RebalanceEpoch>,
    outgoing: &[Outgoing],
    offsets: &TopicPartitionList,
) -> Result<(), KafkaError> {
    producer.begin_transaction()?;
    let deliveries = send_all(producer, outgoing)?;
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
