//! The sink stage: one consumer group per sink (`secflow.sink.<name>`) reading the input topic
//! and the sink's retry tiers, batching records, and delivering each batch in its own task.
//!
//! The contract (DESIGN.md, "Delivery semantics"):
//! - an offset is committed only below the lowest record not yet finished (delivered, or acked
//!   by a retry/DLQ topic) — [`OffsetTracker`];
//! - a sink failing as a whole (refused connections, 5xx/429 for whole requests) opens the
//!   circuit and pauses the consumer: records of a whole-sink failure never move to the retry
//!   tiers, they wait in their batch until the sink is back, and the backlog stays in Kafka;
//! - a record failing on its own moves, after in-process retries, to the next tier
//!   `<sink>.retry.<delay>` (due time in a header) and after the last tier to `<sink>.dlq`;
//! - tier partitions whose head is not due are paused and resumed at the due time, never slept on.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use backoff::backoff::Backoff;
use processors::sink::{
    AckToken, Classification, HttpRequest, Outcome, PayloadFormat, Sink, SinkRecord,
};

use super::state::StateFile;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::circuit::{CircuitBreaker, CircuitConfig, CircuitState, Permit};
use super::offsets::OffsetTracker;
use super::rate_limit::TokenBucket;
use super::tiers::{dlq_topic, tiers, RetryTier};
use super::{build_sink, http};
use crate::codec::CanonicalCodec;
use crate::dead_letter::{header, now_ms, DeadLetter, DlqReason, Failer, OriginalRecord};
use crate::kafka::{self, KafkaSetupError};
use crate::stage::transform::{EVENT_ID_HEADER, FORMAT_HEADER};
use crate::stage::{RunLimits, Shutdown, StageError, TransientBackoff};
use crate::telemetry;
use crate::topology::{SinkStage, TopicRole, Topology};

/// Header with the event time (epoch ms) written by the transform stage.
pub const EVENT_TIME_HEADER: &str = "secflow.event_time_ms";
/// Header with the tenant written by the transform stage.
pub const TENANT_HEADER: &str = "secflow.tenant";

/// What a sink stage did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkReport {
    /// Records read (input and tiers).
    pub records: u64,
    /// Records the target accepted.
    pub delivered: u64,
    /// Records the target already had (idempotent re-send).
    pub duplicates: u64,
    /// Records finished without a request on purpose (below the alert threshold, incident
    /// already open).
    pub suppressed: u64,
    /// Requests the sink sent on its own schedule (heartbeats, auto-resolves).
    pub housekeeping: u64,
    /// Records moved to a retry tier, by tier topic.
    pub to_tiers: BTreeMap<String, u64>,
    /// Records dead-lettered, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// HTTP requests sent (deliveries and ack polls).
    pub requests: u64,
    /// Times the circuit opened.
    pub circuit_opened: u64,
}

/// The consumer group of a sink.
pub fn group_id(sink: &str) -> String {
    format!("secflow.sink.{sink}")
}

/// One record on its way to the sink.
#[derive(Debug, Clone)]
struct Envelope {
    original: OriginalRecord,
    record: SinkRecord,
    /// Tiers this record already went through.
    tiers_done: usize,
    first_failure_ms: Option<i64>,
    /// The record's `secflow.sink.deliver` span (traces on): ends when the batch is finished.
    span: telemetry::RecordSpan,
}

/// State shared by the consumer loop, the delivery tasks and the rebalance callback.
struct Shared {
    stage: SinkStage,
    sink: Arc<dyn Sink>,
    http: http::Executor,
    producer: FutureProducer,
    tiers: Vec<RetryTier>,
    dlq: String,
    circuit: Mutex<CircuitBreaker>,
    events_bucket: Option<Mutex<TokenBucket>>,
    requests_bucket: Option<Mutex<TokenBucket>>,
    tracker: Arc<Mutex<OffsetTracker>>,
    report: Mutex<SinkReport>,
    /// Earliest next send time per pacing key (Slack/Teams channel).
    pacing: Mutex<HashMap<String, Instant>>,
    /// Whether the last delivered request succeeded (for heartbeats).
    healthy: AtomicBool,
    /// Where the sink's durable state is saved, if it has any and the stage has a state dir.
    state: Option<Mutex<StateFile>>,
}

/// Locks a mutex, recovering from poisoning (a panicked task must not wedge the sink).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Rebalance handling: before partitions are revoked, wait (bounded) for their in-flight
/// records, commit what is finished, then let go.
struct SinkContext {
    tracker: Arc<Mutex<OffsetTracker>>,
    drain: Duration,
    revoked: Arc<AtomicBool>,
}

impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            info!(partitions = tpl.count(), "partitions assigned");
            debug!(assignment = ?tpl, "assignment");
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let start = Instant::now();
        while start.elapsed() < self.drain {
            let busy = {
                let t = lock(&self.tracker);
                parts.iter().any(|(topic, p)| t.in_flight_on(topic, *p) > 0)
            };
            if !busy {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut commit = TopicPartitionList::new();
        {
            let t = lock(&self.tracker);
            for (topic, p, o) in t.committable() {
                if parts.iter().any(|(tt, pp)| *tt == topic && *pp == p) {
                    let _ = commit.add_partition_offset(&topic, p, Offset::Offset(o));
                }
            }
        }
        if commit.count() > 0 {
            debug!(offsets = ?commit, "commit on revocation");
            if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                warn!(error = %e, "commit on revocation failed; the new owner re-reads from the last commit");
            }
        }
        let mut t = lock(&self.tracker);
        for (topic, p) in &parts {
            t.forget(topic, *p);
        }
        self.revoked.store(true, Ordering::SeqCst);
    }
}

fn header_str<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    m.headers().and_then(|h| {
        h.iter()
            .filter(|x| x.key == name)
            .last()
            .and_then(|x| x.value)
            .and_then(|v| std::str::from_utf8(v).ok())
    })
}

/// The format of a payload: its `secflow.format` header (`declared`) or the input topic's role.
fn payload_format(role: TopicRole, declared: Option<&str>) -> PayloadFormat {
    match declared {
        Some("ecs") => PayloadFormat::Ecs,
        Some("ocsf") => PayloadFormat::Ocsf,
        Some("cef") => PayloadFormat::Cef,
        _ => match role {
            TopicRole::Ecs => PayloadFormat::Ecs,
            TopicRole::Ocsf => PayloadFormat::Ocsf,
            TopicRole::Cef => PayloadFormat::Cef,
            _ => PayloadFormat::Canonical,
        },
    }
}

/// Runs a sink stage until `shutdown` fires or a limit is reached.
pub async fn run(
    topology: &Topology,
    stage: &SinkStage,
    limits: RunLimits,
    mut shutdown: Shutdown,
) -> Result<SinkReport, StageError> {
    let input = topology.topics.resolved(stage.input).name;
    let tiers = tiers(&stage.name, &stage.tiers).map_err(|e| {
        StageError::Kafka(KafkaSetupError::CreateTopic {
            topic: stage.name.clone(),
            reason: e,
        })
    })?;
    let dlq = dlq_topic(&stage.name);
    let mut needed = vec![input.clone(), dlq.clone()];
    needed.extend(tiers.iter().map(|t| t.topic.clone()));
    kafka::require_topics(&topology.kafka, &needed).await?;
    let sink = build_sink(stage).map_err(|e| StageError::Sink {
        stage: stage.name.clone(),
        message: e,
    })?;
    let state_file = match (&stage.state_dir, sink.snapshot()) {
        (Some(dir), Some(_)) => {
            let mut file = StateFile::open(dir, &stage.name).map_err(|e| StageError::Sink {
                stage: stage.name.clone(),
                message: e.to_string(),
            })?;
            if let Some(bytes) = file.load().map_err(|e| StageError::Sink {
                stage: stage.name.clone(),
                message: e.to_string(),
            })? {
                sink.restore(&bytes).map_err(|e| StageError::Sink {
                    stage: stage.name.clone(),
                    message: format!("state file {}: {e}", file.path().display()),
                })?;
                info!(stage = %stage.name, file = %file.path().display(), "sink state restored");
            }
            Some(Mutex::new(file))
        }
        (None, Some(_)) => {
            warn!(stage = %stage.name, "this sink keeps state (open incidents, threads) but the stage has no state_dir: a restart forgets it");
            None
        }
        _ => None,
    };
    let codec = match stage.input {
        TopicRole::Canonical | TopicRole::Enriched => {
            Some(CanonicalCodec::new(&topology.schema_registry)?)
        }
        _ => None,
    };

    let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
    let revoked = Arc::new(AtomicBool::new(false));
    let cc = kafka::consumer_config(&topology.kafka, &stage.name, &group_id(&stage.name), false)?;
    let consumer: Arc<StreamConsumer<SinkContext>> = Arc::new(
        cc.create_with_context(SinkContext {
            tracker: tracker.clone(),
            drain: Duration::from_millis(stage.drain_timeout_ms),
            revoked: revoked.clone(),
        })
        .map_err(KafkaSetupError::from)?,
    );
    let producer = kafka::idempotent_producer(&topology.kafka, &format!("{}.retry", stage.name))?;
    let client_err = |source| StageError::Client {
        stage: stage.name.clone(),
        source,
    };
    let mut topics: Vec<&str> = vec![input.as_str()];
    topics.extend(tiers.iter().map(|t| t.topic.as_str()));
    consumer.subscribe(&topics).map_err(client_err)?;

    let now = Instant::now();
    let shared = Arc::new(Shared {
        stage: stage.clone(),
        sink,
        http: http::client(Duration::from_millis(stage.timeout_ms)).map_err(|e| {
            StageError::Sink {
                stage: stage.name.clone(),
                message: format!("HTTP client: {e}"),
            }
        })?,
        producer,
        tiers: tiers.clone(),
        dlq,
        circuit: Mutex::new(CircuitBreaker::new(CircuitConfig {
            failure_threshold: stage.circuit.failure_threshold.max(1),
            open_for: Duration::from_millis(stage.circuit.open_ms),
        })),
        events_bucket: stage
            .rate_limit
            .events_per_sec
            .map(|r| Mutex::new(TokenBucket::new(r, r.max(1.0), now))),
        requests_bucket: stage
            .rate_limit
            .requests_per_sec
            .map(|r| Mutex::new(TokenBucket::new(r, r.max(1.0), now))),
        tracker: tracker.clone(),
        report: Mutex::new(SinkReport::default()),
        pacing: Mutex::new(HashMap::new()),
        healthy: AtomicBool::new(true),
        state: state_file,
    });
    info!(stage = %stage.name, %input, tiers = ?tiers.iter().map(|t| &t.topic).collect::<Vec<_>>(), "sink started");

    let in_flight = shared
        .sink
        .max_concurrency()
        .map_or(stage.max_in_flight, |m| m.min(stage.max_in_flight))
        .max(1);
    let permits = Arc::new(Semaphore::new(in_flight));
    let housekeeping_stop = Arc::new(tokio::sync::Notify::new());
    let housekeeping = shared
        .sink
        .tick_interval()
        .map(|every| tokio::spawn(housekeep(shared.clone(), every, housekeeping_stop.clone())));
    let mut tasks = tokio::task::JoinSet::new();
    let mut batch: Vec<Envelope> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut batch_started = Instant::now();
    let mut due_paused: HashMap<(String, i32), i64> = HashMap::new();
    let mut circuit_paused = false;
    let mut last_record = Instant::now();
    let mut read = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let max_wait = Duration::from_millis(stage.batch.max_wait_ms);
    // When the open batch is due: its first record's arrival + max_wait. Its own timer, so a
    // batch leaves on time instead of at the next housekeeping tick (up to 50 ms late).
    let batch_due = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(batch_due);
    let lag = crate::stage::LagReporter::start(consumer.clone(), &stage.name);
    telemetry::set_ready(&stage.name, false);

    loop {
        let at_limit = limits.max_records.is_some_and(|m| read >= m);
        let can_read = !at_limit && !circuit_paused && batch.len() < stage.batch.max_events;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                let now_wall = now_ms();
                // Resume tier partitions whose head is due.
                let due: Vec<(String, i32)> = due_paused
                    .iter()
                    .filter(|(_, d)| **d <= now_wall)
                    .map(|(k, _)| k.clone())
                    .collect();
                for (topic, p) in due {
                    due_paused.remove(&(topic.clone(), p));
                    if !circuit_paused {
                        let mut tpl = TopicPartitionList::new();
                        tpl.add_partition(&topic, p);
                        if let Err(e) = consumer.resume(&tpl) {
                            warn!(stage = %stage.name, error = %e, "resume failed");
                        }
                    }
                }
                // Backpressure: an open circuit pauses the whole consumer.
                let state = lock(&shared.circuit).state(Instant::now());
                telemetry::set_gauge("secflow_sink_circuit_state", &[("sink", stage.name.as_str())], state.as_metric() as f64);
                let assigned = consumer.assignment().map(|a| a.count() > 0).unwrap_or(false);
                telemetry::set_ready(&stage.name, assigned && state == CircuitState::Closed);
                // Backpressure: an open circuit stops this loop from taking records. Nothing is
                // paused at the broker on purpose: librdkafka drops prefetched messages of a
                // paused partition and resumes from its fetch position, which skipped records in
                // testing. Not polling keeps them queued (bounded by queued.max.messages.kbytes),
                // and the backlog stays in Kafka.
                if state == CircuitState::Open && !circuit_paused {
                    circuit_paused = true;
                    warn!(stage = %stage.name, reason = ?lock(&shared.circuit).last_reason, "circuit open: consumer paused");
                } else if state == CircuitState::Closed && circuit_paused {
                    circuit_paused = false;
                    info!(stage = %stage.name, "circuit closed: consumer resumed");
                }
                let full = batch.len() >= stage.batch.max_events || batch_bytes >= stage.batch.max_bytes;
                if !batch.is_empty() && (full || batch_started.elapsed() >= max_wait) {
                    dispatch(&shared, &permits, &mut tasks, &mut batch, &mut batch_bytes);
                }
                pass_markers(&consumer, &tracker, &input);
                commit(&consumer, &tracker);
                // Waiting on the sink (open circuit, batches in flight, records not yet due) is
                // not idleness: idle time starts when there is nothing left to do.
                if circuit_paused || !tasks.is_empty() || !batch.is_empty() || !due_paused.is_empty() {
                    last_record = Instant::now();
                }
                let idle = limits.idle_exit.is_some_and(|i| last_record.elapsed() >= i);
                let drained = batch.is_empty() && tasks.is_empty() && due_paused.is_empty();
                if drained && (idle || at_limit) {
                    break;
                }
            }
            // Only with a free delivery slot: else the elapsed timer would spin this loop; a
            // finishing batch (the arm below) brings it round again.
            _ = &mut batch_due, if !batch.is_empty() && permits.available_permits() > 0 => {
                dispatch(&shared, &permits, &mut tasks, &mut batch, &mut batch_bytes);
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = joined {
                    warn!(stage = %stage.name, error = %e, "delivery task failed");
                }
            }
            m = consumer.recv(), if can_read => {
                let m = match m {
                    Ok(m) => m,
                    Err(e) => {
                        warn!(stage = %stage.name, error = %e, "consume error");
                        continue;
                    }
                };
                if revoked.swap(false, Ordering::SeqCst) {
                    // Partitions were revoked while records sat in the batch: the new owner
                    // re-reads them from the committed offset, so drop ours.
                    if let Ok(a) = consumer.assignment() {
                        let owned: HashSet<(String, i32)> = a
                            .elements()
                            .iter()
                            .map(|e| (e.topic().to_string(), e.partition()))
                            .collect();
                        batch.retain(|e| owned.contains(&(e.original.topic.clone(), e.original.partition)));
                    }
                }
                last_record = Instant::now();
                let tier_idx = tiers.iter().position(|t| t.topic == m.topic());
                if tier_idx.is_some() {
                    let due = header_str(&m, header::DUE_MS).and_then(|d| d.parse::<i64>().ok()).unwrap_or(0);
                    if due > now_ms() {
                        // Not due: pause this partition only, rewind to this record, come back at
                        // the due time. No thread sleeps.
                        let mut tpl = TopicPartitionList::new();
                        tpl.add_partition(m.topic(), m.partition());
                        let _ = consumer.pause(&tpl);
                        if let Err(e) = consumer.seek(m.topic(), m.partition(), Offset::Offset(m.offset()), Duration::from_secs(5)) {
                            warn!(stage = %stage.name, error = %e, "seek failed");
                        }
                        due_paused.insert((m.topic().to_string(), m.partition()), due);
                        continue;
                    }
                }
                read += 1;
                lock(&shared.report).records += 1;
                telemetry::count("secflow_records_in_total", &[("stage", stage.name.as_str()), ("topic", m.topic())], 1);
                lock(&tracker).started(m.topic(), m.partition(), m.offset());
                // Headers are read from this copy: each lookup on the message itself walks its
                // headers through librdkafka again.
                let original = OriginalRecord::from_message(&m);
                let first_failure_ms = original.header_str(header::FIRST_FAILURE_MS).and_then(|v| v.parse().ok());
                let format = payload_format(stage.input, original.header_str(FORMAT_HEADER));
                let span = telemetry::RecordSpan::consumed("secflow.sink.deliver", telemetry::SpanKind::Client, &stage.name, &m);
                let mut record = SinkRecord {
                    event_id: original.header_str(EVENT_ID_HEADER).map(str::to_string),
                    tenant: original.header_str(TENANT_HEADER)
                        .map(str::to_string)
                        .or_else(|| m.key().and_then(|k| std::str::from_utf8(k).ok()).map(str::to_string)),
                    event_time_ms: original.header_str(EVENT_TIME_HEADER).and_then(|v| v.parse().ok()),
                    key: original.key.clone(),
                    payload: original.value.clone().unwrap_or_default(),
                    format,
                    traceparent: span.traceparent().or_else(|| original.header_str(header::TRACEPARENT)).map(str::to_string),
                };
                let envelope_fail = |class: &str, message: String, reason: DlqReason| DeadLetter {
                    original: original.clone(),
                    failer: Failer::Sink(stage.name.clone()),
                    reason: Some(reason),
                    error_class: class.to_string(),
                    status: None,
                    message,
                    attempt: 1,
                    first_failure_ms: now_ms(),
                    last_failure_ms: now_ms(),
                    due_ms: None,
                };
                let mut letter = None;
                if m.payload().is_none() {
                    letter = Some(envelope_fail("null_value", "record has no value".into(), DlqReason::Poison));
                } else if let Some(codec) = &codec {
                    match codec.decode(m.payload()).await {
                        Ok(e) => {
                            record.payload = e.to_json().to_string().into_bytes();
                            record.event_id = Some(e.event_id.clone());
                            record.tenant = Some(e.tenant.clone());
                            record.event_time_ms = Some(e.event_time);
                        }
                        Err(e) if e.is_transient() => {
                            // Registry outage: the record is fine. Rewind and try again later.
                            lock(&tracker).finished(m.topic(), m.partition(), m.offset());
                            let _ = consumer.seek(m.topic(), m.partition(), Offset::Offset(m.offset()), Duration::from_secs(5));
                            tokio::time::sleep(TransientBackoff::new().next_delay()).await;
                            continue;
                        }
                        Err(e) => letter = Some(envelope_fail(e.class(), e.to_string(), crate::stage::dlq_reason(&e))),
                    }
                }
                if let Some(letter) = letter {
                    span.fail(&letter.error_class);
                    write_durably(&shared, &letter, &shared.dlq).await;
                    count_dlq(&shared, letter.reason);
                    lock(&tracker).finished(m.topic(), m.partition(), m.offset());
                    continue;
                }
                if batch.is_empty() {
                    batch_started = Instant::now();
                    batch_due.as_mut().reset((batch_started + max_wait).into());
                }
                batch_bytes += record.payload.len();
                batch.push(Envelope {
                    original,
                    record,
                    tiers_done: tier_idx.map_or(0, |i| i + 1),
                    first_failure_ms,
                    span,
                });
                if batch.len() >= stage.batch.max_events || batch_bytes >= stage.batch.max_bytes {
                    dispatch(&shared, &permits, &mut tasks, &mut batch, &mut batch_bytes);
                }
            }
        }
    }

    // Drain: send what is batched, give in-flight batches a bounded time, commit, leave.
    let drain = Duration::from_millis(stage.drain_timeout_ms);
    let deadline = Instant::now() + drain;
    while !batch.is_empty() && Instant::now() < deadline {
        dispatch(&shared, &permits, &mut tasks, &mut batch, &mut batch_bytes);
        if !batch.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, tasks.join_next()).await;
        }
    }
    let _ = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
    housekeeping_stop.notify_one();
    if let Some(h) = housekeeping {
        let _ = h.await;
    }
    save_state(&shared);
    let mut report = lock(&shared.report).clone();
    report.circuit_opened = lock(&shared.circuit).opens();
    // The stop blocks: a synchronous commit, the lag reporter's last reading (broker round
    // trips), closing the consumer (it leaves its group) and the producers. Done on an async
    // worker, it held the tasks queued there — other stages' requests in flight — for up to
    // 16 s in testing (when the lag reading still took 6 s), long enough for their HTTP
    // timeouts to re-send answered requests.
    let closing = Instant::now();
    tokio::task::block_in_place(move || {
        pass_markers(&consumer, &tracker, &input);
        commit_sync(&consumer, &tracker);
        // After the final commit: the reporter's last reading is the lag left at stop.
        drop(lag);
        drop((consumer, shared));
    });
    info!(stage = %stage.name, records = report.records, delivered = report.delivered, closed_in = ?closing.elapsed(), "sink stopped");
    Ok(report)
}

/// Lets the input partitions' commit points pass offsets librdkafka consumed without handing
/// them out (transaction markers: the transform stage writes its topics in transactions). Only
/// the input topic: a retry tier's partition is rewound to a record that is not due yet, and
/// its position then runs ahead of a record this loop has not taken.
fn pass_markers(
    consumer: &StreamConsumer<SinkContext>,
    tracker: &Mutex<OffsetTracker>,
    input: &str,
) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    let mut tracker = lock(tracker);
    for e in positions.elements().iter().filter(|e| e.topic() == input) {
        if let Offset::Offset(position) = e.offset() {
            tracker.passed(input, e.partition(), position);
        }
    }
}

fn commit(consumer: &StreamConsumer<SinkContext>, tracker: &Mutex<OffsetTracker>) {
    let pending = lock(tracker).committable();
    if pending.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in &pending {
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
    }
    if consumer.commit(&tpl, CommitMode::Async).is_ok() {
        let mut tr = lock(tracker);
        for (t, p, o) in pending {
            debug!(topic = %t, partition = p, offset = o, "commit");
            tr.mark_committed(&t, p, o);
        }
    }
}

fn commit_sync(consumer: &StreamConsumer<SinkContext>, tracker: &Mutex<OffsetTracker>) {
    let pending = lock(tracker).committable();
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in &pending {
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
    }
    if tpl.count() > 0 {
        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            warn!(error = %e, "final commit failed");
        }
    }
}

/// Starts delivering the batch if a delivery slot is free; otherwise leaves it in place (the
/// consumer stops reading while the batch is full, and the next tick tries again). Never waits:
/// the consumer loop must keep ticking (commits, due tiers, circuit state).
fn dispatch(
    shared: &Arc<Shared>,
    permits: &Arc<Semaphore>,
    tasks: &mut tokio::task::JoinSet<()>,
    batch: &mut Vec<Envelope>,
    batch_bytes: &mut usize,
) {
    let Ok(permit) = permits.clone().try_acquire_owned() else {
        return;
    };
    let envelopes = std::mem::take(batch);
    *batch_bytes = 0;
    telemetry::observe(
        "secflow_batch_size",
        &[("stage", shared.stage.name.as_str())],
        envelopes.len() as f64,
    );
    let shared = shared.clone();
    tasks.spawn(async move {
        deliver(&shared, envelopes).await;
        save_state(&shared);
        drop(permit);
    });
}

/// The reason of a suppressed outcome, for the metric label.
fn outcome_reason(o: &Outcome) -> &str {
    match o {
        Outcome::Suppressed { reason } => reason,
        _ => "other",
    }
}

/// Writes the sink's state file when the state changed (errors are logged: the next save
/// tries again, and delivery does not stop for it).
fn save_state(shared: &Shared) {
    let Some(state) = &shared.state else {
        return;
    };
    let Some(bytes) = shared.sink.snapshot() else {
        return;
    };
    if let Err(e) = lock(state).save(&bytes) {
        warn!(stage = %shared.stage.name, error = %e, "saving the sink state failed");
    }
}

/// The sink's own schedule: every `every`, while the circuit is closed, sends what
/// [`Sink::tick`] asks for (heartbeats, auto-resolves) and reports each answer back.
async fn housekeep(shared: Arc<Shared>, every: Duration, stop: Arc<tokio::sync::Notify>) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = interval.tick() => {}
        }
        if lock(&shared.circuit).state(Instant::now()) != CircuitState::Closed {
            continue;
        }
        let healthy = shared.healthy.load(Ordering::SeqCst);
        for req in shared.sink.tick(SystemTime::now(), healthy) {
            pace(&shared, &req).await;
            {
                let mut r = lock(&shared.report);
                r.requests += 1;
                r.housekeeping += 1;
            }
            let result = http::send(&shared.http, &req).await;
            pace_done(&shared, &req);
            shared
                .sink
                .tick_done(&req, result.as_ref(), SystemTime::now());
        }
        save_state(&shared);
    }
}

/// The request's pacing key and interval, when its sink paces requests.
fn pacing(shared: &Shared, req: &HttpRequest) -> Option<(String, Duration)> {
    Some((shared.sink.pacing_key(req)?, shared.sink.pacing_interval()?))
}

/// Waits for the request's pacing slot (Slack/Teams: one message per channel per interval).
/// Slots are reserved in order, so concurrent batches queue up instead of bursting.
async fn pace(shared: &Shared, req: &HttpRequest) {
    let Some((key, gap)) = pacing(shared, req) else {
        return;
    };
    let slot = {
        let mut pacing = lock(&shared.pacing);
        let now = Instant::now();
        let next = pacing.entry(key).or_insert(now);
        let slot = (*next).max(now);
        *next = slot + gap;
        slot
    };
    tokio::time::sleep_until(tokio::time::Instant::from_std(slot)).await;
}

/// After a paced request's answer: the channel's next slot is at least `gap` from now. Slots
/// reserved by send time alone let a slow request arrive less than `gap` before the next one
/// (the Slack simulator refused 1-3 of those per run with 429); counted from the answer, two
/// requests always reach the target at least `gap` apart.
fn pace_done(shared: &Shared, req: &HttpRequest) {
    let Some((key, gap)) = pacing(shared, req) else {
        return;
    };
    let earliest = Instant::now() + gap;
    let mut pacing = lock(&shared.pacing);
    let next = pacing.entry(key).or_insert(earliest);
    *next = (*next).max(earliest);
}

/// A record the target accepted: counted, its latency observed, its offset freed.
fn delivered(shared: &Shared, env: &Envelope) {
    lock(&shared.report).delivered += 1;
    let name = shared.stage.name.as_str();
    telemetry::count(
        "secflow_records_out_total",
        &[("stage", name), ("topic", name)],
        1,
    );
    if let Some(t) = env.record.event_time_ms {
        let secs = (now_ms() - t).max(0) as f64 / 1000.0;
        telemetry::observe("secflow_delivery_latency_seconds", &[("sink", name)], secs);
    }
    finish(shared, env);
}

fn count_dlq(shared: &Shared, reason: Option<DlqReason>) {
    let r = reason.map_or("retry", DlqReason::as_str);
    telemetry::count(
        "secflow_dlq_writes_total",
        &[("stage", shared.stage.name.as_str()), ("reason", r)],
        1,
    );
    *lock(&shared.report)
        .dead_lettered
        .entry(r.to_string())
        .or_default() += 1;
}

/// Writes a letter and waits for the broker's ack, retrying until it succeeds: the source
/// offset must not move before the record is durable somewhere.
async fn write_durably(shared: &Shared, letter: &DeadLetter, topic: &str) {
    let mut backoff = TransientBackoff::new();
    while let Err(e) = letter.write(&shared.producer, topic).await {
        let delay = backoff.next_delay();
        warn!(sink = %shared.stage.name, %topic, error = %e, ?delay, "write to retry/DLQ topic failed, retrying");
        tokio::time::sleep(delay).await;
    }
}

fn finish(shared: &Shared, env: &Envelope) {
    lock(&shared.tracker).finished(
        &env.original.topic,
        env.original.partition,
        env.original.offset,
    );
}

/// Moves a record that failed on its own to the next tier, or to the DLQ after the last one
/// (`exhausted`) or for a permanent failure (`permanent`).
async fn fail_record(shared: &Shared, env: &Envelope, outcome: &Outcome, permanent: bool) {
    let (class, status, message) = match outcome {
        Outcome::Retry {
            class,
            status,
            message,
            ..
        }
        | Outcome::Permanent {
            class,
            status,
            message,
        } => (class.clone(), *status, message.clone()),
        _ => ("unknown".to_string(), None, String::new()),
    };
    env.span.fail(&class);
    let now = now_ms();
    let next = if permanent {
        None
    } else {
        shared.tiers.get(env.tiers_done)
    };
    let reason = match (permanent, next) {
        (true, _) => Some(DlqReason::Permanent),
        (false, None) => Some(DlqReason::Exhausted),
        (false, Some(_)) => None,
    };
    let letter = DeadLetter {
        original: env.original.clone(),
        failer: Failer::Sink(shared.stage.name.clone()),
        reason,
        error_class: class,
        status,
        message: shared.sink.redact(&message),
        attempt: u32::try_from(env.tiers_done + 1).unwrap_or(u32::MAX),
        first_failure_ms: env.first_failure_ms.unwrap_or(now),
        last_failure_ms: now,
        due_ms: next.map(|t| now + i64::try_from(t.delay.as_millis()).unwrap_or(i64::MAX)),
    };
    match next {
        Some(tier) => {
            write_durably(shared, &letter, &tier.topic).await;
            *lock(&shared.report)
                .to_tiers
                .entry(tier.topic.clone())
                .or_default() += 1;
            telemetry::count(
                "secflow_sink_retries_total",
                &[
                    ("sink", shared.stage.name.as_str()),
                    ("tier", tier.topic.as_str()),
                ],
                1,
            );
        }
        None => {
            write_durably(shared, &letter, &shared.dlq).await;
            count_dlq(shared, reason);
        }
    }
    finish(shared, env);
}

/// Waits until the circuit lets a request through; true when this request is the probe.
async fn wait_permit(shared: &Shared) -> bool {
    loop {
        let permit = lock(&shared.circuit).permit(Instant::now());
        match permit {
            Permit::Go => return false,
            Permit::Probe => return true,
            Permit::Wait(d) => tokio::time::sleep(d.min(Duration::from_millis(500))).await,
        }
    }
}

async fn take_tokens(bucket: &Option<Mutex<TokenBucket>>, n: f64) {
    let Some(bucket) = bucket else {
        return;
    };
    loop {
        let wait = lock(bucket).take(n, Instant::now());
        match wait {
            Ok(()) => return,
            Err(d) => tokio::time::sleep(d).await,
        }
    }
}

/// Sends one request and reads the answer. `retry_only` says every record in it already failed
/// on its own before: such a request cannot tell whether the sink is down (a bulk of only
/// previously rejected items is expected to fail as a whole), so it never moves the circuit
/// breaker and its failures stay per-record.
async fn send_classified(shared: &Shared, req: &HttpRequest, retry_only: bool) -> Classification {
    take_tokens(&shared.requests_bucket, 1.0).await;
    pace(shared, req).await;
    lock(&shared.report).requests += 1;
    let answer = http::send(&shared.http, req).await;
    pace_done(shared, req);
    let (mut cls, transport, status) = match answer {
        Ok(resp) => (shared.sink.classify(req, &resp), false, Some(resp.status)),
        Err(e) => (shared.sink.classify_transport_error(req, &e), true, None),
    };
    shared
        .healthy
        .store(cls.sink_down.is_none(), Ordering::SeqCst);
    telemetry::count(
        "secflow_sink_requests_total",
        &[
            ("sink", shared.stage.name.as_str()),
            ("status", telemetry::status_class(status)),
        ],
        1,
    );
    let auth = |d: &processors::sink::SinkDown| matches!(d.status, Some(401 | 403));
    if retry_only && !transport && cls.sink_down.as_ref().is_some_and(|d| !auth(d)) {
        cls.sink_down = None;
        return cls;
    }
    let mut circuit = lock(&shared.circuit);
    match &cls.sink_down {
        Some(down) => {
            let auth = matches!(down.status, Some(401 | 403));
            circuit.record_failure(Instant::now(), &down.message, auth);
        }
        None => circuit.record_success(),
    }
    cls
}

fn new_backoff(stage: &SinkStage) -> backoff::ExponentialBackoff {
    // randomization_factor 1.0: each wait is drawn from (0, 2×interval) — full jitter, so many
    // sink instances recovering together do not retry in lockstep.
    backoff::ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(stage.retry.initial_backoff_ms.max(1)))
        .with_max_interval(Duration::from_millis(stage.retry.max_backoff_ms.max(1)))
        .with_randomization_factor(1.0)
        .with_multiplier(2.0)
        .with_max_elapsed_time(None)
        .build()
}

/// Delivers one batch: builds requests, sends, classifies per record, retries in process,
/// waits out whole-sink outages, follows acknowledgements, and moves records that fail on
/// their own to the tiers or the DLQ. Returns when every record is finished.
async fn deliver(shared: &Shared, batch: Vec<Envelope>) {
    let n = batch.len();
    let mut queue: VecDeque<Vec<usize>> = VecDeque::from([(0..n).collect::<Vec<_>>()]);
    let mut attempts = vec![0u32; n];
    // Records that failed on their own at least once (a per-record Retry).
    let mut singled = vec![false; n];
    let mut backoff = new_backoff(&shared.stage);
    let max_attempts = shared.stage.retry.max_attempts.max(1);
    loop {
        let mut retry_next: Vec<usize> = Vec::new();
        let mut retry_after: Option<Duration> = None;
        let mut pending_acks: Vec<(AckToken, usize, Instant)> = Vec::new();
        while let Some(group) = queue.pop_front() {
            if group.is_empty() {
                continue;
            }
            if wait_permit(shared).await {
                // Half-open: check health first where the sink has a probe.
                if let Some(probe) = shared.sink.health_probe() {
                    lock(&shared.report).requests += 1;
                    let ok = matches!(http::send(&shared.http, &probe).await, Ok(r) if shared.sink.probe_ok(&r));
                    let mut c = lock(&shared.circuit);
                    if ok {
                        c.record_success();
                    } else {
                        c.record_failure(Instant::now(), "health probe failed", false);
                        drop(c);
                        queue.push_front(group);
                        continue;
                    }
                }
            }
            take_tokens(&shared.events_bucket, group.len() as f64).await;
            let records: Vec<SinkRecord> = group.iter().map(|&i| batch[i].record.clone()).collect();
            let built = shared.sink.build(&records, SystemTime::now());
            for (k, outcome) in &built.rejected {
                let Some(&i) = group.get(*k) else {
                    continue;
                };
                if outcome.is_success() {
                    lock(&shared.report).suppressed += 1;
                    telemetry::count(
                        "secflow_sink_suppressed_total",
                        &[
                            ("sink", shared.stage.name.as_str()),
                            ("reason", outcome_reason(outcome)),
                        ],
                        1,
                    );
                    finish(shared, &batch[i]);
                } else {
                    fail_record(shared, &batch[i], outcome, true).await;
                }
            }
            for req in &built.requests {
                let idx: Vec<usize> = req
                    .records
                    .iter()
                    .filter_map(|&k| group.get(k).copied())
                    .collect();
                let retry_only = !idx.is_empty() && idx.iter().all(|&i| singled[i]);
                let cls = send_classified(shared, req, retry_only).await;
                if let Some(reset) = &cls.ack_reset {
                    let (void, keep): (Vec<_>, Vec<_>) = pending_acks
                        .drain(..)
                        .partition(|(t, _, _)| t.channel == reset.channel);
                    pending_acks = keep;
                    retry_next.extend(void.into_iter().map(|(_, i, _)| i));
                }
                if cls.split && idx.len() > 1 {
                    let (a, b) = idx.split_at(idx.len() / 2);
                    queue.push_back(a.to_vec());
                    queue.push_back(b.to_vec());
                    continue;
                }
                let outage = cls.sink_down.is_some();
                for (&i, outcome) in idx.iter().zip(cls.outcomes.iter()) {
                    match outcome {
                        Outcome::Delivered => {
                            delivered(shared, &batch[i]);
                        }
                        Outcome::Duplicate => {
                            lock(&shared.report).duplicates += 1;
                            finish(shared, &batch[i]);
                        }
                        Outcome::Suppressed { .. } => {
                            lock(&shared.report).suppressed += 1;
                            telemetry::count(
                                "secflow_sink_suppressed_total",
                                &[
                                    ("sink", shared.stage.name.as_str()),
                                    ("reason", outcome_reason(outcome)),
                                ],
                                1,
                            );
                            finish(shared, &batch[i]);
                        }
                        Outcome::AwaitAck(token) => {
                            pending_acks.push((token.clone(), i, Instant::now()))
                        }
                        Outcome::Retry {
                            retry_after: ra, ..
                        } => {
                            if let Some(ra) = ra {
                                let d = ra.delay_from(SystemTime::now());
                                retry_after = Some(retry_after.map_or(d, |r| r.max(d)));
                            }
                            if outage {
                                // The sink is down as a whole: this record is not at fault.
                                // It waits for the sink; it never moves to a retry tier.
                                retry_next.push(i);
                            } else {
                                singled[i] = true;
                                attempts[i] += 1;
                                if attempts[i] < max_attempts {
                                    telemetry::count(
                                        "secflow_sink_retries_total",
                                        &[
                                            ("sink", shared.stage.name.as_str()),
                                            ("tier", "in_process"),
                                        ],
                                        1,
                                    );
                                    retry_next.push(i);
                                } else {
                                    fail_record(shared, &batch[i], outcome, false).await;
                                }
                            }
                        }
                        Outcome::Permanent { .. } => {
                            fail_record(shared, &batch[i], outcome, true).await
                        }
                    }
                }
                // Records a classification did not cover (a sink bug) are retried, never lost.
                for &i in idx.iter().skip(cls.outcomes.len()) {
                    retry_next.push(i);
                }
            }
        }
        if !pending_acks.is_empty() {
            retry_next.extend(follow_acks(shared, &batch, pending_acks).await);
        }
        if retry_next.is_empty() {
            return;
        }
        let wait = backoff
            .next_backoff()
            .unwrap_or(Duration::from_millis(shared.stage.retry.max_backoff_ms));
        tokio::time::sleep(retry_after.map_or(wait, |r| r.max(wait))).await;
        retry_next.sort_unstable();
        retry_next.dedup();
        queue.push_back(retry_next);
    }
}

/// Polls acknowledgements until every token is acked or timed out; returns the records to
/// re-send (timed out, or their channel was reset).
async fn follow_acks(
    shared: &Shared,
    batch: &[Envelope],
    mut pending: Vec<(AckToken, usize, Instant)>,
) -> Vec<usize> {
    let Some(policy) = shared.sink.ack_policy() else {
        // A sink that hands out tokens without an ack policy: treat them as delivered.
        for (_, i, _) in pending {
            delivered(shared, &batch[i]);
        }
        return Vec::new();
    };
    let mut resend = Vec::new();
    while !pending.is_empty() {
        tokio::time::sleep(policy.poll_interval).await;
        let mut tokens: Vec<AckToken> = pending.iter().map(|(t, _, _)| t.clone()).collect();
        tokens.sort();
        tokens.dedup();
        for req in shared.sink.ack_poll(&tokens) {
            lock(&shared.report).requests += 1;
            let Ok(resp) = http::send(&shared.http, &req).await else {
                continue;
            };
            let Ok(report) = shared.sink.parse_acks(&req, &resp) else {
                continue;
            };
            let acked: HashSet<AckToken> = report.acked.into_iter().collect();
            let mut keep = Vec::with_capacity(pending.len());
            for (t, i, sent) in pending.drain(..) {
                let reset = report
                    .ack_reset
                    .as_ref()
                    .is_some_and(|r| r.channel == t.channel);
                if acked.contains(&t) {
                    delivered(shared, &batch[i]);
                } else if reset {
                    resend.push(i);
                } else {
                    keep.push((t, i, sent));
                }
            }
            pending = keep;
        }
        // An ack that never comes means the data may be lost: re-send, never drop.
        let (expired, keep): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(_, _, sent)| sent.elapsed() >= policy.timeout);
        if !expired.is_empty() {
            warn!(sink = %shared.stage.name, records = expired.len(), "indexer ack timed out; re-sending");
        }
        resend.extend(expired.into_iter().map(|(_, i, _)| i));
        pending = keep;
    }
    resend
}
