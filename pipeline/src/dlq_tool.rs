//! `secflow dlq list | inspect | replay`: how on-call reads dead letters and sends them back.
//!
//! Replay never writes to the shared input topic (other sinks would get duplicates): it writes
//! to the failing sink's own first retry tier with `secflow.due_ms = now`. Each filter gets its
//! own consumer group (`secflow.replay.<sink>.<filter hash>`), so an interrupted replay resumes
//! where it stopped and a second run with the same filter sends nothing new. Every run writes
//! an audit record to `secflow.audit`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::codec::CanonicalCodec;
use crate::dead_letter::{header, now_ms};
use crate::delivery::tiers;
use crate::kafka::{self, KafkaSetupError};
use crate::topology::{StageConfig, TopicRole, Topology};

/// Errors of the DLQ commands.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// Kafka set-up or a missing topic.
    #[error(transparent)]
    Kafka(#[from] KafkaSetupError),
    /// A Kafka call failed.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// No such sink in the topology.
    #[error("no sink stage named `{0}` in the topology")]
    UnknownSink(String),
    /// A filter argument is malformed.
    #[error("{0}")]
    BadFilter(String),
    /// A blocking task failed.
    #[error("{0}")]
    Join(String),
}

/// One dead letter as read.
#[derive(Debug, Clone, Serialize)]
pub struct DlqRecord {
    /// Partition of the DLQ topic.
    pub partition: i32,
    /// Offset in it.
    pub offset: i64,
    /// Key as text (lossy).
    pub key: Option<String>,
    /// Headers as text (lossy), in order.
    pub headers: Vec<(String, String)>,
    /// The original value bytes.
    #[serde(skip)]
    pub value: Option<Vec<u8>>,
}

impl DlqRecord {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header_i64(&self, name: &str) -> Option<i64> {
        self.header(name).and_then(|v| v.parse().ok())
    }
}

/// The DLQ topic of a sink (or stage) named in the topology.
pub fn dlq_topic_of(t: &Topology, name: &str) -> Result<String, DlqError> {
    match t.stage(name) {
        Some(StageConfig::Sink(_)) => Ok(tiers::dlq_topic(name)),
        Some(s) => Ok(t.stage_dlq(s).name),
        None => Err(DlqError::UnknownSink(name.to_string())),
    }
}

/// Reads every record of `topic` present when called (assign mode, no group, nothing committed).
pub async fn read_all(t: &Topology, topic: &str) -> Result<Vec<DlqRecord>, DlqError> {
    kafka::require_topics(&t.kafka, &[topic.to_string()]).await?;
    let mut c = kafka::base_config(&t.kafka, "dlq-reader")?;
    c.set("group.id", "secflow.dlq.reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = c.create().map_err(KafkaSetupError::from)?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || read_assigned(&consumer, &topic, None))
        .await
        .map_err(|e| DlqError::Join(e.to_string()))?
}

/// Reads `topic` from the given start positions (or the beginning) up to the high watermarks
/// taken at start.
fn read_assigned(
    consumer: &BaseConsumer,
    topic: &str,
    start: Option<&TopicPartitionList>,
) -> Result<Vec<DlqRecord>, DlqError> {
    let md = consumer.fetch_metadata(Some(topic), kafka::ADMIN_TIMEOUT)?;
    let partitions: Vec<i32> = md
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    let mut tpl = TopicPartitionList::new();
    let mut high = BTreeMap::new();
    for p in &partitions {
        let (_, hi) = consumer.fetch_watermarks(topic, *p, kafka::ADMIN_TIMEOUT)?;
        high.insert(*p, hi);
        let from = start
            .and_then(|s| s.find_partition(topic, *p))
            .map(|e| e.offset())
            .filter(|o| matches!(o, Offset::Offset(_)))
            .unwrap_or(Offset::Beginning);
        tpl.add_partition_offset(topic, *p, from)?;
    }
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    // Read until the partitions are quiet: watermarks are only a hint (some brokers report
    // them one short), so the end is "no record for a while after reaching them".
    let mut idle_since = Instant::now();
    let started = Instant::now();
    let reached = |c: &BaseConsumer| -> bool {
        c.position().is_ok_and(|pos| {
            pos.elements().iter().all(|e| match e.offset() {
                Offset::Offset(o) => o >= high.get(&e.partition()).copied().unwrap_or(0),
                _ => high.get(&e.partition()).copied().unwrap_or(0) == 0,
            })
        })
    };
    loop {
        let quiet = idle_since.elapsed();
        if quiet >= Duration::from_secs(5)
            || (quiet >= Duration::from_millis(1500) && reached(consumer))
            || started.elapsed() >= Duration::from_secs(300)
        {
            break;
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                idle_since = Instant::now();
                out.push(DlqRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    headers: m
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    value: m.payload().map(<[u8]>::to_vec),
                });
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    Ok(out)
}

/// `dlq list`: counts by reason, status and class; time range; oldest and newest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DlqSummary {
    /// The DLQ topic.
    pub topic: String,
    /// Records in it.
    pub total: u64,
    /// By `secflow.dlq.reason`.
    pub by_reason: BTreeMap<String, u64>,
    /// By `secflow.error.status` (`-` when there was none).
    pub by_status: BTreeMap<String, u64>,
    /// By `secflow.error.class`.
    pub by_class: BTreeMap<String, u64>,
    /// Earliest first failure, epoch ms.
    pub first_failure_ms: Option<i64>,
    /// Latest last failure, epoch ms.
    pub last_failure_ms: Option<i64>,
    /// (partition, offset) of the oldest and newest record by failure time.
    pub oldest: Option<(i32, i64)>,
    /// Newest.
    pub newest: Option<(i32, i64)>,
}

/// Summarises dead letters.
pub fn summarize(topic: &str, records: &[DlqRecord]) -> DlqSummary {
    let mut s = DlqSummary {
        topic: topic.to_string(),
        ..DlqSummary::default()
    };
    let mut oldest: Option<(i64, (i32, i64))> = None;
    let mut newest: Option<(i64, (i32, i64))> = None;
    for r in records {
        s.total += 1;
        *s.by_reason
            .entry(r.header(header::DLQ_REASON).unwrap_or("-").to_string())
            .or_default() += 1;
        *s.by_status
            .entry(r.header(header::ERROR_STATUS).unwrap_or("-").to_string())
            .or_default() += 1;
        *s.by_class
            .entry(r.header(header::ERROR_CLASS).unwrap_or("-").to_string())
            .or_default() += 1;
        if let Some(f) = r.header_i64(header::FIRST_FAILURE_MS) {
            s.first_failure_ms = Some(s.first_failure_ms.map_or(f, |x| x.min(f)));
        }
        if let Some(l) = r.header_i64(header::LAST_FAILURE_MS) {
            s.last_failure_ms = Some(s.last_failure_ms.map_or(l, |x| x.max(l)));
            let at = (r.partition, r.offset);
            if oldest.is_none_or(|(t, _)| l < t) {
                oldest = Some((l, at));
            }
            if newest.is_none_or(|(t, _)| l >= t) {
                newest = Some((l, at));
            }
        }
    }
    s.oldest = oldest.map(|(_, a)| a);
    s.newest = newest.map(|(_, a)| a);
    s
}

/// Which dead letters a replay (or inspect) takes.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, Hash)]
pub struct DlqFilter {
    /// Last failure at or after (epoch ms).
    pub since_ms: Option<i64>,
    /// Last failure before (epoch ms).
    pub until_ms: Option<i64>,
    /// `secflow.dlq.reason`.
    pub reason: Option<String>,
    /// `secflow.error.status`.
    pub status: Option<u16>,
    /// `FIELD=VALUE` on the JSON payload (dot path) or `header:NAME=VALUE`.
    pub matches: Vec<(String, String)>,
}

/// Parses `2026-11-22T10:00:00Z`, epoch milliseconds, or a relative `30m`/`2h` (ago).
pub fn parse_time(text: &str) -> Result<i64, DlqError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    tiers::parse_delay(text)
        .map(|d| now_ms() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|_| {
            DlqError::BadFilter(format!(
                "`{text}`: use RFC 3339, epoch milliseconds, or a duration ago like 30m"
            ))
        })
}

/// Parses `FIELD=VALUE`.
pub fn parse_match(text: &str) -> Result<(String, String), DlqError> {
    text.split_once('=')
        .filter(|(f, _)| !f.is_empty())
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .ok_or_else(|| DlqError::BadFilter(format!("`{text}`: expected FIELD=VALUE")))
}

fn json_path<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    // Try the dotted key as one flat key first (`event.id` in flat documents), then nested.
    if let Some(x) = v.get(path) {
        return Some(x);
    }
    path.split('.').try_fold(v, |cur, k| cur.get(k))
}

impl DlqFilter {
    /// Whether `r` passes, reading its value as JSON (see [`DlqFilter::accepts_with`] for
    /// values that need decoding first).
    pub fn accepts(&self, r: &DlqRecord) -> bool {
        let body: Option<serde_json::Value> = r
            .value
            .as_deref()
            .and_then(|v| serde_json::from_slice(v).ok());
        self.accepts_with(r, body.as_ref())
    }

    /// Whether some `--match` looks into the record's value (so it must be decoded).
    pub fn needs_body(&self) -> bool {
        self.matches.iter().any(|(f, _)| !f.starts_with("header:"))
    }

    /// Whether `r` passes, with `body` its value as JSON (decoded from canonical Avro where it
    /// was Avro), for the `FIELD=VALUE` matches.
    pub fn accepts_with(&self, r: &DlqRecord, body: Option<&serde_json::Value>) -> bool {
        let t = r.header_i64(header::LAST_FAILURE_MS).unwrap_or(0);
        if self.since_ms.is_some_and(|s| t < s) || self.until_ms.is_some_and(|u| t >= u) {
            return false;
        }
        if let Some(reason) = &self.reason {
            if r.header(header::DLQ_REASON) != Some(reason.as_str()) {
                return false;
            }
        }
        if let Some(status) = self.status {
            if r.header(header::ERROR_STATUS) != Some(status.to_string().as_str()) {
                return false;
            }
        }
        self.matches.iter().all(|(field, want)| {
            if let Some(h) = field.strip_prefix("header:") {
                return r.header(h) == Some(want.as_str());
            }
            match body.and_then(|b| json_path(b, field)) {
                Some(serde_json::Value::String(s)) => s == want,
                Some(other) => {
                    serde_json::from_str::<serde_json::Value>(want).is_ok_and(|w| w == *other)
                }
                None => false,
            }
        })
    }

    /// A short stable hash of the filter, for the replay consumer group.
    pub fn fingerprint(&self) -> String {
        // FNV-1a over the JSON form: stable across runs and builds (unlike std's hasher).
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// A record's value as JSON for `--match`: JSON as it is, Confluent-framed canonical Avro decoded
/// through the registry (the form `inspect` shows), anything else none.
async fn value_json(
    codec: Option<&CanonicalCodec>,
    value: Option<&[u8]>,
) -> Option<serde_json::Value> {
    let v = value?;
    if let Ok(json) = serde_json::from_slice(v) {
        return Some(json);
    }
    match codec {
        Some(c) if v.first() == Some(&0) && v.len() > 5 => {
            c.decode(Some(v)).await.ok().map(|e| e.to_json())
        }
        _ => None,
    }
}

/// Renders a record's value for people: JSON pretty-printed, canonical Avro decoded, text as
/// is, anything else as hex.
pub async fn render_value(t: &Topology, value: Option<&[u8]>) -> String {
    let Some(v) = value else {
        return "(null)".to_string();
    };
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(v) {
        return serde_json::to_string_pretty(&json).unwrap_or_default();
    }
    if v.first() == Some(&0) && v.len() > 5 {
        if let Ok(codec) = CanonicalCodec::new(&t.schema_registry) {
            if let Ok(e) = codec.decode(Some(v)).await {
                return serde_json::to_string_pretty(&e.to_json()).unwrap_or_default();
            }
        }
    }
    match std::str::from_utf8(v) {
        Ok(s) if !s.contains('\0') => s.to_string(),
        _ => v.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Options of a replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Which records.
    pub filter: DlqFilter,
    /// Records per second at most.
    pub rate: Option<f64>,
    /// Replay at most this many.
    pub limit: Option<u64>,
    /// Only report what would be replayed.
    pub dry_run: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    /// Run id (also in the audit record and on every replayed record).
    pub run_id: String,
    /// DLQ topic read.
    pub dlq: String,
    /// Tier topic written.
    pub target: String,
    /// Records read in this run.
    pub scanned: u64,
    /// Records that passed the filter.
    pub matched: u64,
    /// Records written to the tier (0 in a dry run).
    pub replayed: u64,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// (partition, offset) of the matched records (dry run: what would be replayed).
    pub offsets: Vec<(i32, i64)>,
}

/// Replays a sink's dead letters to its first retry tier, due now.
pub async fn replay(
    t: &Topology,
    sink: &str,
    opts: &ReplayOptions,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<ReplayReport, DlqError> {
    let Some(StageConfig::Sink(stage)) = t.stage(sink) else {
        return Err(DlqError::UnknownSink(sink.to_string()));
    };
    let dlq = tiers::dlq_topic(sink);
    let first_tier = tiers::tiers(sink, &stage.tiers)
        .map_err(DlqError::BadFilter)?
        .into_iter()
        .next()
        .map(|t| t.topic)
        .unwrap_or_else(|| dlq.clone());
    let audit = t.topics.resolved(TopicRole::Audit).name;
    kafka::require_topics(&t.kafka, &[dlq.clone(), first_tier.clone(), audit.clone()]).await?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let started = now_ms();
    let mut report = ReplayReport {
        run_id: run_id.clone(),
        dlq: dlq.clone(),
        target: first_tier.clone(),
        dry_run: opts.dry_run,
        ..ReplayReport::default()
    };
    let group = format!("secflow.replay.{sink}.{}", opts.filter.fingerprint());
    let mut c = kafka::base_config(&t.kafka, "dlq-replay")?;
    c.set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = c.create().map_err(KafkaSetupError::from)?;
    // Resume from the filter's group offsets (nothing committed yet → from the beginning).
    let records = {
        let dlq = dlq.clone();
        tokio::task::spawn_blocking(move || {
            let md = consumer.fetch_metadata(Some(&dlq), kafka::ADMIN_TIMEOUT)?;
            let mut parts = TopicPartitionList::new();
            for p in md
                .topics()
                .first()
                .map(|t| t.partitions())
                .unwrap_or_default()
            {
                parts.add_partition(&dlq, p.id());
            }
            let committed = consumer.committed_offsets(parts, kafka::ADMIN_TIMEOUT)?;
            let records = read_assigned(&consumer, &dlq, Some(&committed))?;
            Ok::<_, DlqError>((consumer, records))
        })
        .await
        .map_err(|e| DlqError::Join(e.to_string()))??
    };
    let (consumer, records) = records;
    let producer = kafka::idempotent_producer(&t.kafka, "dlq-replay")?;
    let total = records.len() as u64;
    let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let started_at = Instant::now();
    let codec = if opts.filter.needs_body() {
        CanonicalCodec::new(&t.schema_registry).ok()
    } else {
        None
    };
    for r in &records {
        if opts.limit.is_some_and(|l| report.matched >= l) {
            break;
        }
        report.scanned += 1;
        let body = if opts.filter.needs_body() {
            value_json(codec.as_ref(), r.value.as_deref()).await
        } else {
            None
        };
        if opts.filter.accepts_with(r, body.as_ref()) {
            report.matched += 1;
            report.offsets.push((r.partition, r.offset));
            if !opts.dry_run {
                if let Some(rate) = opts.rate.filter(|r| *r > 0.0) {
                    let due = Duration::from_secs_f64(report.replayed as f64 / rate);
                    let elapsed = started_at.elapsed();
                    if due > elapsed {
                        tokio::time::sleep(due - elapsed).await;
                    }
                }
                let mut h = OwnedHeaders::new();
                for (k, v) in &r.headers {
                    if k == header::DUE_MS
                        || k == header::DLQ_REASON
                        || k == REPLAY_HEADER
                        || k.starts_with(header::CONNECT_PREFIX)
                    {
                        continue;
                    }
                    h = h.insert(Header {
                        key: k,
                        value: Some(v.as_bytes()),
                    });
                }
                let now = now_ms().to_string();
                h = h
                    .insert(Header {
                        key: header::DUE_MS,
                        value: Some(now.as_bytes()),
                    })
                    .insert(Header {
                        key: REPLAY_HEADER,
                        value: Some(run_id.as_bytes()),
                    });
                let mut rec: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(&first_tier).headers(h);
                if let Some(k) = &r.key {
                    rec = rec.key(k.as_bytes());
                }
                if let Some(v) = &r.value {
                    rec = rec.payload(v.as_slice());
                }
                producer
                    .send(rec, Duration::from_secs(30))
                    .await
                    .map_err(|(e, _)| DlqError::Client(e))?;
                report.replayed += 1;
            }
        }
        next_offsets.insert(r.partition, r.offset + 1);
        progress(report.scanned, total);
    }
    if !opts.dry_run {
        // Commit only after every replayed record was acknowledged by the tier topic.
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &next_offsets {
            tpl.add_partition_offset(&dlq, *p, Offset::Offset(*o))?;
        }
        if tpl.count() > 0 {
            consumer.commit(&tpl, CommitMode::Sync)?;
        }
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".to_string());
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let audit_record = serde_json::json!({
            "type": "dlq_replay",
            "run_id": run_id,
            "user": user,
            "host": host,
            "started_ms": started,
            "finished_ms": now_ms(),
            "sink": sink,
            "dlq": dlq,
            "target": first_tier,
            "filter": opts.filter,
            "rate": opts.rate,
            "limit": opts.limit,
            "scanned": report.scanned,
            "matched": report.matched,
            "replayed": report.replayed,
        })
        .to_string();
        producer
            .send(
                FutureRecord::to(&audit)
                    .key(run_id.as_str())
                    .payload(audit_record.as_str()),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| DlqError::Client(e))?;
    }
    Ok(report)
}

/// Header naming the replay run on every replayed record.
pub const REPLAY_HEADER: &str = "secflow.replay.run";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(headers: &[(&str, &str)], value: &str) -> DlqRecord {
        DlqRecord {
            partition: 0,
            offset: 1,
            key: None,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value: Some(value.as_bytes().to_vec()),
        }
    }

    #[test]
    fn filters_by_reason_status_time_and_field() {
        let r = rec(
            &[
                ("secflow.dlq.reason", "permanent"),
                ("secflow.error.status", "400"),
                ("secflow.last_failure_ms", "1000"),
                ("secflow.sink", "es"),
            ],
            r#"{"event":{"id":"e1"},"host":{"name":"h"}}"#,
        );
        let mut f = DlqFilter {
            reason: Some("permanent".into()),
            status: Some(400),
            since_ms: Some(999),
            until_ms: Some(1001),
            matches: vec![
                ("event.id".into(), "e1".into()),
                ("header:secflow.sink".into(), "es".into()),
            ],
        };
        assert!(f.accepts(&r));
        f.status = Some(429);
        assert!(!f.accepts(&r));
        f.status = None;
        f.matches = vec![("host.name".into(), "other".into())];
        assert!(!f.accepts(&r));
        f.matches.clear();
        f.since_ms = Some(1001);
        assert!(!f.accepts(&r));
    }

    #[test]
    fn fingerprint_is_stable_and_filter_specific() {
        let a = DlqFilter {
            reason: Some("exhausted".into()),
            ..DlqFilter::default()
        };
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), DlqFilter::default().fingerprint());
    }

    #[test]
    fn summary_counts_and_ranges() {
        let rs = vec![
            rec(
                &[
                    ("secflow.dlq.reason", "permanent"),
                    ("secflow.error.status", "400"),
                    ("secflow.first_failure_ms", "5"),
                    ("secflow.last_failure_ms", "10"),
                ],
                "{}",
            ),
            rec(
                &[
                    ("secflow.dlq.reason", "exhausted"),
                    ("secflow.error.status", "503"),
                    ("secflow.first_failure_ms", "1"),
                    ("secflow.last_failure_ms", "20"),
                ],
                "{}",
            ),
        ];
        let s = summarize("x.dlq", &rs);
        assert_eq!(s.total, 2);
        assert_eq!(s.by_reason.get("permanent"), Some(&1));
        assert_eq!(s.first_failure_ms, Some(1));
        assert_eq!(s.last_failure_ms, Some(20));
    }

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("1000").unwrap(), 1000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(parse_time("30m").unwrap() < now_ms());
        assert!(parse_time("yesterday").is_err());
    }
}
