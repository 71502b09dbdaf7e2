//! The `intel_poll` stage (and `secflow intel poll`): TAXII 2.1 collections → indicator,
//! review and checkpoint topics.
//!
//! On start it reads the compacted checkpoint topic (the `added_after` of every collection)
//! and the indicator topic (the newest `modified` per STIX id, to seed the deduplication).
//! Then, on every poll, for every configured collection:
//!
//! 1. pages through the objects added after the collection's checkpoint
//!    ([`processors::intel::taxii::CollectionPoll`]); a transient failure (connection, timeout,
//!    429, 5xx) is retried up to `max_attempts` times, after the server's `Retry-After` when
//!    it sends one;
//! 2. maps each page ([`processors::intel::indicator::map_objects`]) and writes every version
//!    not written before ([`processors::intel::indicator::Deduplicator`]): indicators as
//!    Confluent-framed Avro keyed by STIX id, tombstones for revoked and expired ones (and for
//!    ones that went to review), review records as JSON;
//! 3. waits for the broker's acknowledgement of all of them, and only then writes the page's
//!    checkpoint: a crash between the two re-reads the page, which the deduplication absorbs.
//!
//! A collection that fails (wrong credentials, unknown collection, a server that keeps
//! failing) is logged with its server and collection and skipped until the next poll; the
//! others go on.
//!
//! Metrics (`docs/metrics.md`): every poll of a collection counts in
//! `secflow_taxii_polls_total{server,collection,result}` (`ok` or the error class, see
//! [`taxii_error_class`]), every object read in `secflow_taxii_objects_total` by disposition
//! (`indicator`, `tombstone`, `review`, `duplicate`, `skipped`: they add up to the objects
//! fetched), retried requests in `secflow_taxii_retries_total`, and the records written in
//! `secflow_records_out_total{stage,topic}` once the broker acknowledged them. Nothing a feed sends can stop the stage; only Kafka failing for longer than
//! the producer's delivery timeout does (the stage then stops with an error, and a restart
//! resumes from the checkpoints).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use processors::intel::indicator::{
    map_objects, Deduplicator, IndicatorDisposition, Markings, SkipReason,
};
use processors::intel::taxii::{
    CheckpointRecord, CollectionConfig, TaxiiClient, TaxiiError, TaxiiServerConfig,
};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tracing::{error, info, warn};

use super::{Shutdown, StageError, TransientBackoff};
use crate::dead_letter::now_ms;
use crate::intel::{read_to_end, IndicatorCodec, IndicatorCodecError};
use crate::kafka;
use crate::telemetry;
use crate::topology::{IntelPollStage, TopicRole, Topology};

/// When the stage stops on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PollMode {
    /// Poll every collection once, then stop (`secflow intel poll --once`).
    Once,
    /// Poll every `interval_secs` until shut down.
    #[default]
    Forever,
}

/// What happened to one collection, summed over the polls of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionReport {
    /// Pages fetched.
    pub pages: u64,
    /// STIX objects received (all types, repeats included).
    pub objects: u64,
    /// Indicator records written.
    pub published: u64,
    /// Tombstones written for revoked or expired indicators.
    pub tombstones: u64,
    /// Review records written (each with a tombstone on the indicator topic).
    pub reviews: u64,
    /// Indicator versions already written before (same or older `modified`): not rewritten.
    pub duplicates: u64,
    /// Objects that are not indicators (marking definitions, …) or have no usable id.
    pub skipped: u64,
    /// Requests retried after a transient failure.
    pub retries: u64,
    /// The checkpoint stored last.
    pub checkpoint: Option<String>,
    /// Errors that ended a poll of this collection early (the checkpoint stayed put).
    pub errors: Vec<String>,
}

/// What an `intel_poll` run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Completed polls of every collection.
    pub polls: u64,
    /// Ids known to the deduplication at start (read back from the indicator topic).
    pub seeded: u64,
    /// Checkpoints read at start.
    pub checkpoints_read: u64,
    /// Per collection, keyed by its checkpoint key `<server>|<api_root>|<collection>` (or
    /// `<server>|<collection>` when the server could not be set up).
    pub collections: BTreeMap<String, CollectionReport>,
}

impl PollReport {
    /// Sum of one counter over the collections.
    pub fn total(&self, f: impl Fn(&CollectionReport) -> u64) -> u64 {
        self.collections.values().map(f).sum()
    }

    /// Every error, prefixed by its collection.
    pub fn errors(&self) -> Vec<String> {
        self.collections
            .iter()
            .flat_map(|(k, c)| c.errors.iter().map(move |e| format!("{k}: {e}")))
            .collect()
    }
}

/// Topic names and clients of a run.
struct Io<'a> {
    stage: &'a IntelPollStage,
    indicators: String,
    review: String,
    checkpoints: String,
    producer: FutureProducer,
    codec: IndicatorCodec,
}

/// The stage's memory across polls.
#[derive(Default)]
struct State {
    checkpoints: HashMap<String, String>,
    dedup: Deduplicator,
    markings: HashMap<String, Markings>,
}

/// Why polling one collection stopped early.
enum CollectionFailure {
    /// Feed or registry trouble: logged, the collection waits for the next poll. `class` is
    /// the `result` label of `secflow_taxii_polls_total`.
    Skip {
        class: &'static str,
        message: String,
    },
    /// Kafka did not take a write: the stage stops.
    Fatal(StageError),
    /// Shutdown requested.
    Stopped,
}

/// Runs the stage: one poll (`PollMode::Once`) or one every `interval_secs` until `shutdown`.
pub async fn run(
    topology: &Topology,
    stage: &IntelPollStage,
    mode: PollMode,
    mut shutdown: Shutdown,
) -> Result<PollReport, StageError> {
    let io = Io {
        stage,
        indicators: topology.topics.resolved(TopicRole::Indicators).name,
        review: topology.topics.resolved(TopicRole::Review).name,
        checkpoints: topology.topics.resolved(TopicRole::Checkpoints).name,
        producer: kafka::idempotent_producer(&topology.kafka, &stage.name)?,
        codec: IndicatorCodec::new(&topology.schema_registry)?,
    };
    kafka::require_topics(
        &topology.kafka,
        &[
            io.indicators.clone(),
            io.review.clone(),
            io.checkpoints.clone(),
        ],
    )
    .await?;
    let mut report = PollReport::default();
    let mut state = State::default();
    load_state(topology, &io, &mut state, &mut report).await?;
    info!(stage = %stage.name, checkpoints = report.checkpoints_read, seeded = report.seeded, servers = stage.servers.len(), "intel poll started");

    let interval = Duration::from_secs(stage.interval_secs.max(1));
    loop {
        let started = Instant::now();
        for server in &stage.servers {
            match poll_server(&io, server, &mut state, &mut report, &mut shutdown).await {
                Ok(()) => {}
                Err(CollectionFailure::Stopped) => return Ok(report),
                Err(CollectionFailure::Fatal(e)) => return Err(e),
                Err(CollectionFailure::Skip { .. }) => {}
            }
        }
        report.polls += 1;
        info!(stage = %stage.name, polls = report.polls, took = ?started.elapsed(), "poll complete");
        if mode == PollMode::Once {
            break;
        }
        let wait = interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    Ok(report)
}

/// Reads the checkpoints and seeds the deduplication from the indicator topic.
async fn load_state(
    topology: &Topology,
    io: &Io<'_>,
    state: &mut State,
    report: &mut PollReport,
) -> Result<(), StageError> {
    let k = topology.kafka.clone();
    let topic = io.checkpoints.clone();
    let role = format!("{}.checkpoints", io.stage.name);
    let checkpoints = tokio::task::spawn_blocking(move || {
        let mut latest: HashMap<String, Option<CheckpointRecord>> = HashMap::new();
        let read = read_to_end(&k, &role, &topic, |m| {
            let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                return;
            };
            let value =
                m.payload()
                    .and_then(|v| match serde_json::from_slice::<CheckpointRecord>(v) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            warn!(key, error = %e, "ignoring an unreadable checkpoint record");
                            None
                        }
                    });
            latest.insert(key.to_string(), value);
        })?;
        Ok::<_, kafka::KafkaSetupError>((read, latest))
    })
    .await
    .map_err(|e| kafka::KafkaSetupError::Join(e.to_string()))??;
    report.checkpoints_read = checkpoints.0;
    for (key, record) in checkpoints.1 {
        let Some(record) = record else {
            continue;
        };
        let markings = state.markings.entry(key.clone()).or_default();
        for (id, tlp) in &record.markings {
            markings.remember(id, *tlp);
        }
        state.checkpoints.insert(key, record.added_after);
    }

    // The newest version of every indicator already published: the datum starts with the id
    // and `modified`, read straight from the Avro bytes (no registry round trip needed).
    let k = topology.kafka.clone();
    let topic = io.indicators.clone();
    let role = format!("{}.seed", io.stage.name);
    let dedup = tokio::task::spawn_blocking(move || {
        let mut dedup = Deduplicator::new();
        read_to_end(&k, &role, &topic, |m| {
            if let Some((id, modified)) = m.payload().and_then(id_and_modified) {
                dedup.seed(&id, modified);
            }
        })?;
        Ok::<_, kafka::KafkaSetupError>(dedup)
    })
    .await
    .map_err(|e| kafka::KafkaSetupError::Join(e.to_string()))??;
    report.seeded = dedup.len() as u64;
    state.dedup = dedup;
    Ok(())
}

/// `id` and `modified` of a Confluent-framed indicator record: the first two fields of the
/// datum (a string and a long), whatever schema version wrote the rest.
pub fn id_and_modified(bytes: &[u8]) -> Option<(String, i64)> {
    fn long(b: &[u8], pos: &mut usize) -> Option<i64> {
        let mut n: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = *b.get(*pos)?;
            *pos += 1;
            n |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        Some(((n >> 1) as i64) ^ -((n & 1) as i64))
    }
    let datum = bytes.get(5..)?;
    if bytes.first() != Some(&0) {
        return None;
    }
    let mut pos = 0usize;
    let len = usize::try_from(long(datum, &mut pos)?).ok()?;
    let id = std::str::from_utf8(datum.get(pos..pos.checked_add(len)?)?).ok()?;
    pos += len;
    let modified = long(datum, &mut pos)?;
    Some((id.to_string(), modified))
}

/// Polls every collection of one server.
async fn poll_server(
    io: &Io<'_>,
    server: &TaxiiServerConfig,
    state: &mut State,
    report: &mut PollReport,
    shutdown: &mut Shutdown,
) -> Result<(), CollectionFailure> {
    let client = match TaxiiClient::new(server.clone()) {
        Ok(c) => c,
        Err(e) => {
            error!(stage = %io.stage.name, server = %server.name, error = %e, "TAXII server cannot be set up; its collections are skipped");
            for c in &server.collections {
                count_poll(&server.name, &c.id, taxii_error_class(&e));
                report
                    .collections
                    .entry(format!("{}|{}", server.name, c.id))
                    .or_default()
                    .errors
                    .push(e.to_string());
            }
            return Ok(());
        }
    };
    for collection in &server.collections {
        let key = match client.source(collection) {
            Ok(s) => s.checkpoint_key(),
            Err(_) => format!("{}|{}", server.name, collection.id),
        };
        let result = poll_collection(io, &client, collection, &key, state, report, shutdown).await;
        match &result {
            Ok(()) => count_poll(&server.name, &collection.id, "ok"),
            Err(CollectionFailure::Skip { class, .. }) => {
                count_poll(&server.name, &collection.id, class)
            }
            Err(CollectionFailure::Fatal(_)) => count_poll(&server.name, &collection.id, "kafka"),
            Err(CollectionFailure::Stopped) => {}
        }
        match result {
            Ok(()) => {}
            Err(CollectionFailure::Skip { message, .. }) => {
                error!(stage = %io.stage.name, server = %server.name, api_root = %collection.api_root, collection = %collection.id, error = %message, "TAXII poll of the collection failed; it is retried at the next poll");
                report
                    .collections
                    .entry(key)
                    .or_default()
                    .errors
                    .push(message);
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// Pages through one collection from its checkpoint, publishing each page before storing the
/// page's checkpoint.
async fn poll_collection(
    io: &Io<'_>,
    client: &TaxiiClient,
    collection: &CollectionConfig,
    key: &str,
    state: &mut State,
    report: &mut PollReport,
    shutdown: &mut Shutdown,
) -> Result<(), CollectionFailure> {
    let skip = |e: &TaxiiError| CollectionFailure::Skip {
        class: taxii_error_class(e),
        message: e.to_string(),
    };
    // The writer schema id first: once it is known, nothing but Kafka can fail after a version
    // has been admitted by the deduplication.
    retry_registry(io, shutdown).await?;
    let start = state.checkpoints.get(key).cloned();
    let mut poll = client
        .poll_collection(collection, start)
        .map_err(|e| skip(&e))?;
    let (server, collection_id) = (poll.source().server.clone(), collection.id.as_str());
    let labels = |what: (&'static str, &'static str)| {
        [
            ("server", server.as_str()),
            ("collection", collection_id),
            what,
        ]
    };
    let source = poll.source().clone();
    let stats = report.collections.entry(key.to_string()).or_default();
    loop {
        let mut backoff = TransientBackoff::new();
        let mut attempt = 1u32;
        let page = loop {
            match poll.next_page().await {
                Ok(p) => break p,
                Err(e) if e.is_transient() && attempt < io.stage.max_attempts => {
                    let delay = e.retry_after().unwrap_or_else(|| backoff.next_delay());
                    warn!(stage = %io.stage.name, server = %source.server, collection = %source.collection, error = %e, ?delay, attempt, "transient TAXII failure, retrying");
                    attempt += 1;
                    stats.retries += 1;
                    telemetry::count(
                        "secflow_taxii_retries_total",
                        &[("server", server.as_str()), ("collection", collection_id)],
                        1,
                    );
                    tokio::select! {
                        _ = &mut *shutdown => return Err(CollectionFailure::Stopped),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => {
                    return Err(CollectionFailure::Skip {
                        class: taxii_error_class(&e),
                        message: describe(&e, attempt),
                    })
                }
            }
        };
        let Some(page) = page else {
            return Ok(());
        };
        stats.pages += 1;
        stats.objects += page.objects.len() as u64;
        let markings = state.markings.entry(key.to_string()).or_default();
        let dispositions = map_objects(&page.objects, &source, markings, now_ms());
        let mut sends = Vec::new();
        // Objects by disposition, and records by topic, counted once the page is acknowledged.
        let mut objects: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut written: BTreeMap<&str, u64> = BTreeMap::new();
        for d in &dispositions {
            if let IndicatorDisposition::Skip(reason) = d {
                *objects.entry("skipped").or_default() += 1;
                stats.skipped += 1;
                if let SkipReason::Malformed(why) = reason {
                    warn!(stage = %io.stage.name, server = %source.server, collection = %source.collection, reason = %why, "malformed indicator skipped (no usable id)");
                }
                continue;
            }
            if !state.dedup.admit(d) {
                *objects.entry("duplicate").or_default() += 1;
                stats.duplicates += 1;
                continue;
            }
            match d {
                IndicatorDisposition::Publish(_) => {
                    *objects.entry("indicator").or_default() += 1;
                    stats.published += 1
                }
                IndicatorDisposition::Tombstone { .. } => {
                    *objects.entry("tombstone").or_default() += 1;
                    stats.tombstones += 1
                }
                IndicatorDisposition::Review(r) => {
                    *objects.entry("review").or_default() += 1;
                    stats.reviews += 1;
                    info!(stage = %io.stage.name, id = %r.id, reason = %r.reason, detail = %r.detail, "indicator sent to review");
                }
                IndicatorDisposition::Skip(_) => {}
            }
            if let Some((id, value)) = d.indicator_record() {
                let value = match (d, value) {
                    (IndicatorDisposition::Publish(i), Some(_)) => {
                        Some(io.codec.encode(&io.indicators, i).await.map_err(|e| {
                            CollectionFailure::Skip {
                                class: "registry",
                                message: e.to_string(),
                            }
                        })?)
                    }
                    _ => None,
                };
                sends.push(
                    enqueue(&io.producer, &io.indicators, id, value.as_deref())
                        .map_err(|e| fatal(io, e))?,
                );
                *written.entry(io.indicators.as_str()).or_default() += 1;
            }
            if let Some((id, value)) = d.review_record() {
                sends.push(
                    enqueue(&io.producer, &io.review, id, Some(&value))
                        .map_err(|e| fatal(io, e))?,
                );
                *written.entry(io.review.as_str()).or_default() += 1;
            }
        }
        acked(sends).await.map_err(|e| fatal(io, e))?;
        for (disposition, n) in objects {
            telemetry::count(
                "secflow_taxii_objects_total",
                &labels(("disposition", disposition)),
                n,
            );
        }
        for (topic, n) in written {
            telemetry::count(
                "secflow_records_out_total",
                &[("stage", io.stage.name.as_str()), ("topic", topic)],
                n,
            );
        }
        // Every record of the page is acknowledged: the checkpoint may move past it.
        if let Some(cp) = &page.checkpoint {
            if state.checkpoints.get(key) != Some(cp) {
                let learned = state
                    .markings
                    .get(key)
                    .map(Markings::learned)
                    .unwrap_or_default();
                let record = CheckpointRecord::new(&source, cp, now_ms()).with_markings(learned);
                let value = serde_json::to_vec(&record).unwrap_or_default();
                let d = enqueue(&io.producer, &io.checkpoints, key, Some(&value))
                    .map_err(|e| fatal(io, e))?;
                acked(vec![d]).await.map_err(|e| fatal(io, e))?;
                telemetry::count(
                    "secflow_records_out_total",
                    &[
                        ("stage", io.stage.name.as_str()),
                        ("topic", io.checkpoints.as_str()),
                    ],
                    1,
                );
                state.checkpoints.insert(key.to_string(), cp.clone());
            }
            stats.checkpoint = Some(cp.clone());
        }
    }
}

/// Counts one poll of a collection.
fn count_poll(server: &str, collection: &str, result: &str) {
    telemetry::count(
        "secflow_taxii_polls_total",
        &[
            ("server", server),
            ("collection", collection),
            ("result", result),
        ],
        1,
    );
}

/// The error class of a TAXII failure: the `result` label of a failed poll.
pub fn taxii_error_class(e: &TaxiiError) -> &'static str {
    match e {
        TaxiiError::Config(_) => "config",
        TaxiiError::Secret(_) => "credentials",
        TaxiiError::Connect { .. } => "transport",
        TaxiiError::Timeout { .. } => "timeout",
        TaxiiError::Unauthorized { .. } => "auth",
        TaxiiError::RateLimited { .. } => "rate_limited",
        TaxiiError::NotFound { .. } => "not_found",
        TaxiiError::Status { status, .. } if *status >= 500 => "server_error",
        TaxiiError::Status { .. } => "rejected",
        TaxiiError::TooLarge { .. } => "too_large",
        TaxiiError::Decode { .. } => "invalid_response",
        TaxiiError::Protocol { .. } => "protocol",
    }
}

fn fatal(io: &Io<'_>, source: KafkaError) -> CollectionFailure {
    CollectionFailure::Fatal(StageError::Client {
        stage: io.stage.name.clone(),
        source,
    })
}

/// The message of a TAXII failure, with the attempts made when it was retried.
fn describe(e: &TaxiiError, attempts: u32) -> String {
    if attempts > 1 {
        format!("{e} (gave up after {attempts} attempts)")
    } else {
        e.to_string()
    }
}

/// The indicator schema id, retried while the registry is unreachable.
async fn retry_registry(io: &Io<'_>, shutdown: &mut Shutdown) -> Result<u32, CollectionFailure> {
    let mut backoff = TransientBackoff::new();
    let mut attempt = 1u32;
    loop {
        match io.codec.writer_id(&io.indicators).await {
            Ok(id) => return Ok(id),
            Err(e @ IndicatorCodecError::RegistryUnavailable(_))
                if attempt < io.stage.max_attempts =>
            {
                let delay = backoff.next_delay();
                warn!(stage = %io.stage.name, error = %e, ?delay, "schema registry unavailable, retrying");
                attempt += 1;
                tokio::select! {
                    _ = &mut *shutdown => return Err(CollectionFailure::Stopped),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => {
                return Err(CollectionFailure::Skip {
                    class: "registry",
                    message: e.to_string(),
                })
            }
        }
    }
}

/// Queues one record (in call order; waiting while librdkafka's queue is full) and returns
/// its acknowledgement.
fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: Option<&[u8]>,
) -> Result<DeliveryFuture, rdkafka::error::KafkaError> {
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key);
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

/// Waits for acknowledgements (librdkafka retries each send until its delivery timeout).
async fn acked(deliveries: Vec<DeliveryFuture>) -> Result<(), KafkaError> {
    for d in deliveries {
        match d.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(e),
            Err(_) => return Err(KafkaError::Canceled),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use processors::intel::indicator::{Indicator, IndicatorSource};
    use processors::intel::pattern::{AtomicIoc, IocType};

    #[test]
    fn id_and_modified_from_the_datum() {
        let i = Indicator {
            id: "indicator--0b9a7c6c-55d8-4c94-9a37-7c8a6d5e8f01".into(),
            modified: 1_700_000_000_123,
            iocs: vec![AtomicIoc {
                ioc_type: IocType::Ipv4,
                value: "192.0.2.1".into(),
            }],
            name: None,
            description: None,
            confidence: None,
            indicator_types: vec![],
            labels: vec![],
            valid_from: 0,
            valid_until: None,
            tlp: None,
            source: IndicatorSource {
                server: "s".into(),
                api_root: "https://x/api1/".into(),
                collection: "c".into(),
            },
            created_by: None,
            pattern: "[ipv4-addr:value = '192.0.2.1']".into(),
        };
        let framed = crate::codec::frame(7, &i.to_avro_datum());
        assert_eq!(id_and_modified(&framed), Some((i.id.clone(), i.modified)));
        assert_eq!(id_and_modified(&framed[..9]), None);
        assert_eq!(id_and_modified(b"\x01\0\0\0\x07abc"), None);
        assert_eq!(id_and_modified(&[]), None);
    }
}
