//! The `enrich` stage: canonical events + the indicator table → enriched events.
//!
//! **The table.** A background thread keeps the whole indicator topic in a RocksDB
//! [`IndicatorStore`]: it assigns every partition itself (no consumer group: every instance
//! holds every indicator), starts each partition at the offset checkpointed inside the table
//! (so a restart reads only what is newer; a fresh directory reads everything), and applies
//! the records in batches, each batch atomically with its offsets. A tombstone removes the
//! indicator and its IOCs; a modified indicator replaces its IOCs. It keeps following the
//! topic for as long as the stage runs.
//!
//! **The events.** Only once the table has caught up with the indicator topic as it was at
//! start (the high watermarks then, see [`crate::intel::CatchUp`]) does the stage join its
//! consumer group `secflow.stage.<name>` and read events, so that no event is matched against
//! a half-restored table. Each event is matched ([`IndicatorStore::match_event`]: IPs and
//! CIDRs, domains and their parents, URLs, hashes, e-mail addresses; `valid_until` checked at
//! match time), the new matches are appended to `enrichments`, and the event is written to the
//! enriched topic with the input's key and headers (`traceparent` included). A batch is
//! written, acknowledged by the broker, and only then are its input offsets stored for commit:
//! at least once. A record that does not decode (or an event that cannot be re-encoded) goes to
//! the stage's dead-letter topic with the `secflow.*` headers, acknowledged before its offset
//! moves.
//!
//! **Telemetry.** `secflow_indicators{stage}` is the table's size, kept current by the table
//! thread, which also counts the indicator records it reads in `secflow_records_in_total` (topic
//! = the indicator topic) and the undecodable ones in `secflow_records_failed_total`
//! (`undecodable_indicator`). Events count in `secflow_records_in_total` / `_out_total` /
//! `_failed_total`, `secflow_dlq_writes_total`, `secflow_batch_size`, and the matches in
//! `secflow_enrich_matched_total` (events with a new enrichment) and
//! `secflow_enrich_matches_total` (enrichments added); `secflow_consumer_lag` is refreshed every
//! 10 s. With traces on, each event gets a `secflow.enrich` span, the child of its
//! `traceparent`, and the enriched record carries that span's `traceparent` instead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use processors::intel::indicator::Indicator;
use processors::intel::store::{
    normalize_tlp, Change, IndicatorStore, StoreOptions, StoredIndicator,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{dlq_reason, group_id, RunLimits, Shutdown, StageError, TransientBackoff};
use crate::codec::{CanonicalCodec, EncodeError};
use crate::dead_letter::{DeadLetter, DlqReason, OriginalRecord};
use crate::intel::{assign_all, table_consumer, CatchUp, IndicatorCodec};
use crate::kafka;
use crate::telemetry::{self, RecordSpan, SpanKind};
use crate::topology::{EnrichStage, IndicatorStoreConfig, StageConfig, TopicRole, Topology};

/// Indicator records applied to the table in one write at most.
const TABLE_BATCH: usize = 5000;

/// What an enrich run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrichReport {
    /// Input records consumed and committed (written or dead-lettered).
    pub records: u64,
    /// Events written to the enriched topic.
    pub written: u64,
    /// Events that got at least one new enrichment.
    pub matched_events: u64,
    /// Enrichments added.
    pub matches: u64,
    /// Dead-lettered records by error class.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Records of the indicator topic read by this run (a restart reads only what is newer
    /// than the table's checkpoint).
    pub indicator_records_read: u64,
    /// Indicator records that could not be decoded (logged and skipped).
    pub undecodable_indicators: u64,
    /// Indicators in the table when the stage stopped.
    pub indicators: u64,
    /// Time from start until the table had caught up, in milliseconds.
    pub catch_up_ms: u64,
}

/// The table thread's state, watched by the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TableState {
    Restoring,
    Ready,
    Failed(String),
}

/// The store options of a stage's configuration.
pub fn store_options(c: &IndicatorStoreConfig) -> StoreOptions {
    StoreOptions {
        block_cache_bytes: c.block_cache_mb.saturating_mul(1 << 20),
        write_buffer_bytes: c.write_buffer_mb.saturating_mul(1 << 20),
        front_cache_entries: c.front_cache_entries,
        min_prefix_v4: c.min_prefix_v4,
        min_prefix_v6: c.min_prefix_v6,
        ..StoreOptions::default()
    }
}

/// An indicator record as the table keeps it. The provider is the TAXII server's name.
pub fn stored_indicator(i: Indicator) -> StoredIndicator {
    StoredIndicator {
        tlp: i
            .tlp
            .and_then(|t| normalize_tlp(&t.as_str().replace('_', "+"))),
        id: i.id,
        modified_ms: i.modified,
        iocs: i.iocs.into_iter().map(|a| (a.ioc_type, a.value)).collect(),
        valid_until_ms: i.valid_until,
        confidence: i.confidence,
        provider: i.source.server,
        name: i.name,
    }
}

/// The background reader of the indicator topic.
struct Table {
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
    undecodable: Arc<AtomicU64>,
    state: watch::Receiver<TableState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Table {
    fn start(
        topology: &Topology,
        stage: &EnrichStage,
        store: Arc<IndicatorStore>,
    ) -> Result<Table, StageError> {
        let topic = topology.topics.resolved(TopicRole::Indicators).name;
        let consumer = table_consumer(&topology.kafka, &format!("{}.table", stage.name))?;
        let codec = IndicatorCodec::new(&topology.schema_registry)?;
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(AtomicU64::new(0));
        let undecodable = Arc::new(AtomicU64::new(0));
        let (tx, rx) = watch::channel(TableState::Restoring);
        let follower = Follower {
            stage: stage.name.clone(),
            topic,
            consumer,
            codec,
            store,
            handle: tokio::runtime::Handle::current(),
            stop: stop.clone(),
            read: read.clone(),
            undecodable: undecodable.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("{}-table", stage.name))
            .spawn(move || {
                let result = follower.run(&tx);
                if let Err(message) = result {
                    let _ = tx.send(TableState::Failed(message));
                }
            })
            .map_err(|e| StageError::Intel {
                stage: stage.name.clone(),
                message: format!("starting the indicator table thread: {e}"),
            })?;
        Ok(Table {
            stop,
            read,
            undecodable,
            state: rx,
            thread: Some(thread),
        })
    }

    fn failure(&self) -> Option<String> {
        match &*self.state.borrow() {
            TableState::Failed(m) => Some(m.clone()),
            _ => None,
        }
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        self.shut();
    }
}

struct Follower {
    stage: String,
    topic: String,
    consumer: BaseConsumer,
    codec: IndicatorCodec,
    store: Arc<IndicatorStore>,
    handle: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
    undecodable: Arc<AtomicU64>,
}

impl Follower {
    fn run(&self, tx: &watch::Sender<TableState>) -> Result<(), String> {
        let from = self.store.offsets().map_err(|e| e.to_string())?;
        let high = assign_all(&self.consumer, &self.topic, &from).map_err(|e| e.to_string())?;
        let behind: i64 = high
            .iter()
            .map(|(p, hi)| (hi - from.get(p).copied().unwrap_or(0)).max(0))
            .sum();
        info!(stage = %self.stage, topic = %self.topic, indicators = self.store.count(), behind, "restoring the indicator table from its checkpoint");
        let started = Instant::now();
        let mut progress = CatchUp::new(high, &from);
        let mut ready = false;
        // Records read already counted in `secflow_records_in_total`.
        let mut counted = self.read.load(Ordering::Relaxed);
        telemetry::set_gauge(
            "secflow_indicators",
            &[("stage", self.stage.as_str())],
            self.store.count() as f64,
        );
        while !self.stop.load(Ordering::Acquire) {
            let mut changes = Vec::new();
            let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
            let deadline = Instant::now() + Duration::from_millis(200);
            while changes.len() < TABLE_BATCH && !self.stop.load(Ordering::Acquire) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.consumer.poll(left.min(Duration::from_millis(100))) {
                    Some(Ok(m)) => {
                        progress.saw(m.partition(), m.offset());
                        offsets.insert(m.partition(), m.offset() + 1);
                        self.read.fetch_add(1, Ordering::Relaxed);
                        if let Some(change) = self.change(&m) {
                            changes.push(change);
                        }
                    }
                    Some(Err(e)) => {
                        warn!(stage = %self.stage, topic = %self.topic, error = %e, "indicator topic read error");
                        break;
                    }
                    None => break,
                }
            }
            if !offsets.is_empty() {
                let offsets: Vec<(i32, i64)> = offsets.into_iter().collect();
                let stats = self
                    .store
                    .apply(&changes, &offsets)
                    .map_err(|e| format!("indicator table write failed: {e}"))?;
                let read = self.read.load(Ordering::Relaxed);
                telemetry::count(
                    "secflow_records_in_total",
                    &[
                        ("stage", self.stage.as_str()),
                        ("topic", self.topic.as_str()),
                    ],
                    read - counted,
                );
                counted = read;
                telemetry::set_gauge(
                    "secflow_indicators",
                    &[("stage", self.stage.as_str())],
                    self.store.count() as f64,
                );
                for r in &stats.rejected {
                    warn!(stage = %self.stage, id = %r.id, reason = %r.reason, "indicator refused by the table");
                }
                for s in stats.skipped_iocs.iter().take(10) {
                    warn!(stage = %self.stage, id = %s.indicator_id, value = %s.value, reason = %s.reason, "IOC not indexed");
                }
            }
            if !ready && progress.done() {
                ready = true;
                info!(stage = %self.stage, indicators = self.store.count(), read = self.read.load(Ordering::Relaxed), took = ?started.elapsed(), "indicator table caught up");
                let _ = tx.send(TableState::Ready);
            }
        }
        Ok(())
    }

    /// The change a record makes, or `None` (logged, counted) when it cannot be read.
    fn change(&self, m: &BorrowedMessage<'_>) -> Option<Change> {
        let bad = |why: String| {
            self.undecodable.fetch_add(1, Ordering::Relaxed);
            telemetry::count(
                "secflow_records_failed_total",
                &[
                    ("stage", self.stage.as_str()),
                    ("reason", "undecodable_indicator"),
                ],
                1,
            );
            warn!(stage = %self.stage, topic = %self.topic, partition = m.partition(), offset = m.offset(), reason = %why, "undecodable indicator record skipped");
            None
        };
        let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            return bad("no UTF-8 key (the key is the STIX id)".to_string());
        };
        let Some(bytes) = m.payload() else {
            return Some(Change::Delete {
                id: key.to_string(),
            });
        };
        let mut backoff = TransientBackoff::new();
        let decoded = loop {
            match self.handle.block_on(self.codec.decode(bytes)) {
                Err(e) if e.is_transient() && !self.stop.load(Ordering::Acquire) => {
                    let delay = backoff.next_delay();
                    warn!(stage = %self.stage, error = %e, ?delay, "schema registry unavailable, retrying");
                    std::thread::sleep(delay);
                }
                other => break other,
            }
        };
        match decoded {
            Ok(i) if i.id == key => Some(Change::Upsert(stored_indicator(i))),
            Ok(i) => bad(format!("record id {} differs from its key {key}", i.id)),
            Err(e) => bad(e.to_string()),
        }
    }
}

/// Copies every header of the input record; `traceparent`, when given (the record's span), replaces
/// the input's.
fn copy_headers(m: &BorrowedMessage<'_>, traceparent: Option<&str>) -> OwnedHeaders {
    let mut h = OwnedHeaders::new();
    if let Some(hs) = m.headers() {
        for x in hs.iter() {
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
    h
}

/// Queues one record (in call order; waiting while librdkafka's queue is full).
fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: OwnedHeaders,
) -> Result<DeliveryFuture, KafkaError> {
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(v) = value {
        record = record.payload(v);
    }
    loop {
        match producer.send_result(record) {
            Ok(d) => return Ok(d),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(20));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Opens the table directory (blocking work off the runtime threads).
async fn open_store(stage: &EnrichStage) -> Result<Arc<IndicatorStore>, StageError> {
    let path = stage.store.path.clone();
    let opts = store_options(&stage.store);
    let name = stage.name.clone();
    tokio::task::spawn_blocking(move || IndicatorStore::open(&path, opts))
        .await
        .map_err(|e| StageError::Intel {
            stage: name.clone(),
            message: e.to_string(),
        })?
        .map(Arc::new)
        .map_err(|e| StageError::Intel {
            stage: name,
            message: format!(
                "opening the indicator table {}: {e}",
                stage.store.path.display()
            ),
        })
}

/// Runs the stage until `shutdown` fires or a limit is reached.
pub async fn run(
    topology: &Topology,
    stage: &EnrichStage,
    limits: RunLimits,
    mut shutdown: Shutdown,
) -> Result<EnrichReport, StageError> {
    let input = topology.topics.resolved(stage.input).name;
    let output = topology.topics.resolved(TopicRole::Enriched).name;
    let indicators = topology.topics.resolved(TopicRole::Indicators).name;
    let dlq = topology
        .stage_dlq(&StageConfig::Enrich(Box::new(stage.clone())))
        .name;
    kafka::require_topics(
        &topology.kafka,
        &[input.clone(), output.clone(), indicators, dlq.clone()],
    )
    .await?;
    let client_err = |source| StageError::Client {
        stage: stage.name.clone(),
        source,
    };
    telemetry::set_ready(&stage.name, false);
    let store = open_store(stage).await?;
    let started = Instant::now();
    let mut table = Table::start(topology, stage, store.clone())?;
    let mut report = EnrichReport::default();

    // Events wait for the table.
    let mut state = table.state.clone();
    let outcome = tokio::select! {
        _ = &mut shutdown => None,
        r = state.wait_for(|s| *s != TableState::Restoring) => Some(r.is_ok()),
    };
    if let Some(message) = table.failure() {
        return Err(StageError::Intel {
            stage: stage.name.clone(),
            message,
        });
    }
    if outcome == Some(false) {
        return Err(StageError::Intel {
            stage: stage.name.clone(),
            message: "the indicator table thread ended unexpectedly".to_string(),
        });
    }
    report.catch_up_ms = started.elapsed().as_millis() as u64;
    if outcome.is_none() {
        table.shut();
        report.indicator_records_read = table.read.load(Ordering::Relaxed);
        report.indicators = store.count();
        return Ok(report);
    }

    let codec = CanonicalCodec::new(&topology.schema_registry)?;
    let consumer = Arc::new(kafka::consumer(
        &topology.kafka,
        &stage.name,
        &group_id(&stage.name),
    )?);
    let producer = kafka::idempotent_producer(&topology.kafka, &stage.name)?;
    consumer.subscribe(&[input.as_str()]).map_err(client_err)?;
    info!(stage = %stage.name, %input, %output, %dlq, indicators = store.count(), "enrich started");

    let mut last_record = Instant::now();
    let lag = super::LagReporter::start(consumer.clone(), &stage.name);
    let mut failure = None;
    // At most one batch waits for its acknowledgements while the next is read and processed.
    let mut in_flight: Option<InFlight<'_>> = None;
    'outer: loop {
        let counted = report.records + in_flight.as_ref().map_or(0, |f| f.batch.len() as u64);
        if limits.max_records.is_some_and(|max| counted >= max) {
            break;
        }
        let assigned = consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false);
        telemetry::set_ready(&stage.name, assigned);
        if let Some(message) = table.failure() {
            failure = Some(StageError::Intel {
                stage: stage.name.clone(),
                message,
            });
            break;
        }
        let next = super::next_batch(
            &consumer,
            &stage.name,
            stage.max_batch,
            Duration::from_millis(stage.max_wait_ms),
            &limits,
            counted,
            &mut last_record,
            &mut shutdown,
        )
        .await;
        let batch = match next {
            super::NextBatch::Batch(b) => b,
            other => {
                // Nothing new: settle the batch in flight so its offsets move while quiet.
                if let Some(f) = in_flight.take() {
                    f.settle(&consumer, &stage.name, &input, &output, &mut report)
                        .await
                        .map_err(client_err)?;
                }
                match other {
                    super::NextBatch::Stop => break,
                    _ => continue,
                }
            }
        };

        let mut deliveries = Vec::with_capacity(batch.len());
        let mut dead: Vec<(String, &'static str)> = Vec::new();
        let (mut matched, mut added) = (0u64, 0u64);
        // One span per record, ended once the batch is acknowledged (dropped with the vector).
        let mut spans: Vec<RecordSpan> = Vec::with_capacity(batch.len());
        for m in &batch {
            let span = RecordSpan::consumed("secflow.enrich", SpanKind::Consumer, &stage.name, m);
            let mut backoff = TransientBackoff::new();
            let decoded = loop {
                match codec.decode(m.payload()).await {
                    Err(e) if e.is_transient() => {
                        let delay = backoff.next_delay();
                        warn!(stage = %stage.name, error = %e, ?delay, "transient decode failure, retrying");
                        tokio::select! {
                            _ = &mut shutdown => break 'outer,
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                    other => break other,
                }
            };
            let letter = match decoded {
                Ok(mut event) => {
                    let found = match store.match_event(&event, crate::dead_letter::now_ms()) {
                        Ok(f) => f,
                        Err(e) => {
                            failure = Some(StageError::Intel {
                                stage: stage.name.clone(),
                                message: format!("indicator table lookup failed: {e}"),
                            });
                            break 'outer;
                        }
                    };
                    let before = event.enrichments.len();
                    for e in found {
                        if !event.enrichments.contains(&e) {
                            event.enrichments.push(e);
                        }
                    }
                    let new = (event.enrichments.len() - before) as u64;
                    let mut backoff = TransientBackoff::new();
                    // Decoding validated the event; only the appended matches are new.
                    let encoded = match event.validate_enrichments_from(before) {
                        Err(e) => Err(EncodeError::from(e)),
                        Ok(()) => loop {
                            match codec.encode_validated(&output, &event).await {
                                Err(EncodeError::Registry(e)) => {
                                    let delay = backoff.next_delay();
                                    warn!(stage = %stage.name, error = %e, ?delay, "schema registry unavailable, retrying");
                                    tokio::select! {
                                        _ = &mut shutdown => break 'outer,
                                        _ = tokio::time::sleep(delay) => {}
                                    }
                                }
                                other => break other,
                            }
                        },
                    };
                    match encoded {
                        Ok(bytes) => {
                            matched += u64::from(new > 0);
                            added += new;
                            span.set_attribute("secflow.enrichments.added", new as i64);
                            let headers = copy_headers(m, span.traceparent());
                            let d = enqueue(&producer, &output, m.key(), Some(&bytes), headers)
                                .map_err(client_err)?;
                            deliveries.push(d);
                            None
                        }
                        Err(e) => Some(DeadLetter::stage_failure(
                            OriginalRecord::from_message(m),
                            &stage.name,
                            DlqReason::Poison,
                            "enrich_failed",
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
                warn!(stage = %stage.name, partition = m.partition(), offset = m.offset(), class = %letter.error_class, error = %letter.message, "record dead-lettered");
                let d = enqueue(
                    &producer,
                    &dlq,
                    letter.original.key.as_deref(),
                    letter.original.value.as_deref(),
                    letter.headers(),
                )
                .map_err(client_err)?;
                deliveries.push(d);
                span.fail(&letter.error_class);
                dead.push((
                    letter.error_class.clone(),
                    letter.reason.map_or("poison", DlqReason::as_str),
                ));
            }
            spans.push(span);
        }
        // This batch is queued; the previous one is settled now, so its acknowledgements came
        // back while this one was read and processed (the producer keeps the order).
        if let Some(f) = in_flight.take() {
            f.settle(&consumer, &stage.name, &input, &output, &mut report)
                .await
                .map_err(client_err)?;
        }
        in_flight = Some(InFlight {
            batch,
            deliveries,
            spans,
            dead,
            matched,
            added,
        });
    }
    if let Some(f) = in_flight.take() {
        if let Err(e) = f
            .settle(&consumer, &stage.name, &input, &output, &mut report)
            .await
        {
            match failure {
                None => return Err(client_err(e)),
                Some(_) => {
                    warn!(stage = %stage.name, error = %e, "the last batch was not fully written; it is read again")
                }
            }
        }
    }
    // The stop blocks (a synchronous commit, the lag reporter's last reading, closing the
    // consumer and the producer): off the async workers, so the other stages of this process keep running.
    tokio::task::block_in_place(|| {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                warn!(stage = %stage.name, error = %e, "final commit failed; the last records may be read again")
            }
        }
        // After the final commit: the reporter's last reading is the lag left at stop.
        drop(lag);
        drop((consumer, producer));
    });
    telemetry::set_ready(&stage.name, false);
    table.shut();
    report.indicator_records_read = table.read.load(Ordering::Relaxed);
    report.undecodable_indicators = table.undecodable.load(Ordering::Relaxed);
    report.indicators = store.count();
    info!(stage = %stage.name, records = report.records, matches = report.matches, indicators = report.indicators, "enrich stopped");
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// A batch whose records are queued to the producer but not all acknowledged yet.
struct InFlight<'a> {
    batch: Vec<BorrowedMessage<'a>>,
    deliveries: Vec<DeliveryFuture>,
    /// One per record, ended when the batch is settled (dropped with it).
    spans: Vec<RecordSpan>,
    /// Error class and DLQ reason of each dead letter.
    dead: Vec<(String, &'static str)>,
    matched: u64,
    added: u64,
}

impl InFlight<'_> {
    /// Waits for every output and dead letter of the batch; then its offsets may move.
    async fn settle<C: rdkafka::consumer::ConsumerContext>(
        self,
        consumer: &rdkafka::consumer::StreamConsumer<C>,
        stage: &str,
        input: &str,
        output: &str,
        report: &mut EnrichReport,
    ) -> Result<(), KafkaError> {
        for d in self.deliveries {
            match d.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(e),
                Err(_) => return Err(KafkaError::Canceled),
            }
        }
        for m in &self.batch {
            if let Err(e) = consumer.store_offset_from_message(m) {
                // Lost the partition in a rebalance: its new owner reads the record again.
                warn!(stage, partition = m.partition(), offset = m.offset(), error = %e, "offset not stored");
            }
        }
        drop(self.spans);
        let n = self.batch.len();
        report.records += n as u64;
        report.written += (n - self.dead.len()) as u64;
        report.matched_events += self.matched;
        report.matches += self.added;
        count_batch(
            stage,
            input,
            output,
            n,
            self.matched,
            self.added,
            &self.dead,
        );
        for (class, _) in self.dead {
            *report.dead_lettered.entry(class).or_default() += 1;
        }
        Ok(())
    }
}

/// Counts an acknowledged batch in the `secflow_*` metrics. `dead` holds the error class and the
/// DLQ reason of each dead letter.
fn count_batch(
    stage: &str,
    input: &str,
    output: &str,
    n: usize,
    matched: u64,
    added: u64,
    dead: &[(String, &'static str)],
) {
    let s = ("stage", stage);
    telemetry::count("secflow_records_in_total", &[s, ("topic", input)], n as u64);
    telemetry::count(
        "secflow_records_out_total",
        &[s, ("topic", output)],
        (n - dead.len()) as u64,
    );
    telemetry::observe("secflow_batch_size", &[s], n as f64);
    telemetry::count("secflow_enrich_matched_total", &[s], matched);
    telemetry::count("secflow_enrich_matches_total", &[s], added);
    for (class, reason) in dead {
        telemetry::count(
            "secflow_records_failed_total",
            &[s, ("reason", class.as_str())],
            1,
        );
        telemetry::count("secflow_dlq_writes_total", &[s, ("reason", reason)], 1);
    }
}

/// The distinct indicator ids of a set of enrichments (for reports and tests).
pub fn indicator_ids(e: &[processors::event::Enrichment]) -> BTreeSet<String> {
    e.iter().map(|x| x.indicator_id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use processors::intel::indicator::{IndicatorSource, Tlp};
    use processors::intel::pattern::{AtomicIoc, IocType};

    #[test]
    fn indicator_to_table_record() {
        let i = Indicator {
            id: "indicator--1".into(),
            modified: 5,
            iocs: vec![AtomicIoc {
                ioc_type: IocType::Domain,
                value: "evil.example".into(),
            }],
            name: Some("n".into()),
            description: None,
            confidence: Some(70),
            indicator_types: vec![],
            labels: vec![],
            valid_from: 0,
            valid_until: Some(99),
            tlp: Some(Tlp::AmberStrict),
            source: IndicatorSource {
                server: "isac".into(),
                api_root: "https://x/api1/".into(),
                collection: "c".into(),
            },
            created_by: None,
            pattern: "[domain-name:value = 'evil.example']".into(),
        };
        let s = stored_indicator(i);
        assert_eq!(s.tlp.as_deref(), Some("amber+strict"));
        assert_eq!(s.provider, "isac");
        assert_eq!(s.iocs, vec![(IocType::Domain, "evil.example".to_string())]);
        assert_eq!(s.valid_until_ms, Some(99));
        assert_eq!(s.modified_ms, 5);
    }
}
