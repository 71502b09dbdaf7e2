//! Dead letters: a record that a stage or sink cannot handle, written unchanged (key, value,
//! original headers) to a DLQ topic with `secflow.*` headers saying where it came from and why,
//! plus Kafka Connect's `__connect.errors.*` headers so existing DLQ tooling can read it.

use std::time::Duration;

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Header names written on every retry and dead-letter record.
pub mod header {
    /// Topic the record was first read from.
    pub const ORIGIN_TOPIC: &str = "secflow.origin.topic";
    /// Its partition.
    pub const ORIGIN_PARTITION: &str = "secflow.origin.partition";
    /// Its offset.
    pub const ORIGIN_OFFSET: &str = "secflow.origin.offset";
    /// The stage that gave up on it.
    pub const STAGE: &str = "secflow.stage";
    /// The sink that gave up on it.
    pub const SINK: &str = "secflow.sink";
    /// Attempts so far.
    pub const ATTEMPT: &str = "secflow.attempt";
    /// First failure, epoch ms.
    pub const FIRST_FAILURE_MS: &str = "secflow.first_failure_ms";
    /// Latest failure, epoch ms.
    pub const LAST_FAILURE_MS: &str = "secflow.last_failure_ms";
    /// When a retry tier may deliver it again, epoch ms.
    pub const DUE_MS: &str = "secflow.due_ms";
    /// Error class (`not_framed`, `unknown_schema`, `corrupt_avro`, `invalid_event`, `http_4xx`, …).
    pub const ERROR_CLASS: &str = "secflow.error.class";
    /// HTTP status, when there was one.
    pub const ERROR_STATUS: &str = "secflow.error.status";
    /// Human-readable error, secrets redacted.
    pub const ERROR_MESSAGE: &str = "secflow.error.message";
    /// Why it is in a DLQ: `permanent`, `exhausted`, `poison` or `undecodable`.
    pub const DLQ_REASON: &str = "secflow.dlq.reason";
    /// The headers describing a failure; a new failure replaces them.
    pub const FAILURE_HEADERS: [&str; 14] = [
        ORIGIN_TOPIC,
        ORIGIN_PARTITION,
        ORIGIN_OFFSET,
        STAGE,
        SINK,
        ATTEMPT,
        FIRST_FAILURE_MS,
        LAST_FAILURE_MS,
        DUE_MS,
        ERROR_CLASS,
        ERROR_STATUS,
        ERROR_MESSAGE,
        DLQ_REASON,
        "secflow.replay.run",
    ];
    /// Prefix of Kafka Connect's error headers.
    pub const CONNECT_PREFIX: &str = "__connect.errors.";
    /// W3C trace context, carried from the canonical record to the sink request.
    pub const TRACEPARENT: &str = "traceparent";
}

/// Why a record is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqReason {
    /// The target rejected it for good (a 4xx other than 408/429).
    Permanent,
    /// Every retry tier failed.
    Exhausted,
    /// It decoded but cannot be processed (a transform or request-building failure).
    Poison,
    /// It could not be decoded at all.
    Undecodable,
}

impl DlqReason {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            DlqReason::Permanent => "permanent",
            DlqReason::Exhausted => "exhausted",
            DlqReason::Poison => "poison",
            DlqReason::Undecodable => "undecodable",
        }
    }

    /// Parses a header value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "permanent" => Some(DlqReason::Permanent),
            "exhausted" => Some(DlqReason::Exhausted),
            "poison" => Some(DlqReason::Poison),
            "undecodable" => Some(DlqReason::Undecodable),
            _ => None,
        }
    }
}

/// A record as it was read, kept whole so it can be written again unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRecord {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// All headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl OriginalRecord {
    /// Copies what is needed out of a consumed message.
    pub fn from_message(m: &BorrowedMessage<'_>) -> Self {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    /// A header's value as text.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Who gave up on the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failer {
    /// A pipeline stage (decode, enrich, transform).
    Stage(String),
    /// A sink's delivery engine.
    Sink(String),
}

/// A failed record with everything on-call needs to understand and replay it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The record as read.
    pub original: OriginalRecord,
    /// Who failed it.
    pub failer: Failer,
    /// Why it goes to a DLQ (absent for a retry-tier record).
    pub reason: Option<DlqReason>,
    /// Machine-readable class.
    pub error_class: String,
    /// HTTP status, if any.
    pub status: Option<u16>,
    /// Human-readable message, already redacted.
    pub message: String,
    /// Attempts so far.
    pub attempt: u32,
    /// First failure, epoch ms.
    pub first_failure_ms: i64,
    /// This failure, epoch ms.
    pub last_failure_ms: i64,
    /// Due time for a retry tier.
    pub due_ms: Option<i64>,
}

/// Longest error message we put in a header: enough to diagnose, bounded so a huge server
/// response cannot bloat every DLQ record.
const MAX_MESSAGE: usize = 2048;

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl DeadLetter {
    /// A dead letter for a stage failure happening now (first and only attempt).
    pub fn stage_failure(
        original: OriginalRecord,
        stage: &str,
        reason: DlqReason,
        error_class: &str,
        message: &str,
    ) -> Self {
        let now = now_ms();
        Self {
            original,
            failer: Failer::Stage(stage.to_string()),
            reason: Some(reason),
            error_class: error_class.to_string(),
            status: None,
            message: message.to_string(),
            attempt: 1,
            first_failure_ms: now,
            last_failure_ms: now,
            due_ms: None,
        }
    }

    /// The headers of the record to write: the original headers minus any earlier
    /// `secflow.*` / `__connect.errors.*` ones, then ours.
    pub fn headers(&self) -> OwnedHeaders {
        let mut h = OwnedHeaders::new();
        for (k, v) in &self.original.headers {
            // Replace the failure headers of an earlier failure; keep everything else, including
            // `secflow.*` headers that describe the record (event id, format, tenant).
            if header::FAILURE_HEADERS.contains(&k.as_str())
                || k.starts_with(header::CONNECT_PREFIX)
            {
                continue;
            }
            h = h.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let message = truncate(&self.message, MAX_MESSAGE);
        let (stage_key, stage_name) = match &self.failer {
            Failer::Stage(s) => (header::STAGE, s.as_str()),
            Failer::Sink(s) => (header::SINK, s.as_str()),
        };
        let mut pairs: Vec<(&str, String)> = vec![
            (header::ORIGIN_TOPIC, self.original.topic.clone()),
            (
                header::ORIGIN_PARTITION,
                self.original.partition.to_string(),
            ),
            (header::ORIGIN_OFFSET, self.original.offset.to_string()),
            (stage_key, stage_name.to_string()),
            (header::ATTEMPT, self.attempt.to_string()),
            (header::FIRST_FAILURE_MS, self.first_failure_ms.to_string()),
            (header::LAST_FAILURE_MS, self.last_failure_ms.to_string()),
            (header::ERROR_CLASS, self.error_class.clone()),
            (header::ERROR_MESSAGE, message.to_string()),
        ];
        if let Some(s) = self.status {
            pairs.push((header::ERROR_STATUS, s.to_string()));
        }
        if let Some(d) = self.due_ms {
            pairs.push((header::DUE_MS, d.to_string()));
        }
        if let Some(r) = self.reason {
            pairs.push((header::DLQ_REASON, r.as_str().to_string()));
            // Kafka Connect's dead-letter headers (errors.deadletterqueue.context.headers.enable).
            pairs.extend([
                ("__connect.errors.topic", self.original.topic.clone()),
                (
                    "__connect.errors.partition",
                    self.original.partition.to_string(),
                ),
                ("__connect.errors.offset", self.original.offset.to_string()),
                (
                    "__connect.errors.connector.name",
                    format!("secflow.{stage_name}"),
                ),
                ("__connect.errors.task.id", "0".to_string()),
                (
                    "__connect.errors.stage",
                    match self.failer {
                        Failer::Stage(_) => "VALUE_CONVERTER".to_string(),
                        Failer::Sink(_) => "TASK_PUT".to_string(),
                    },
                ),
                (
                    "__connect.errors.class.name",
                    format!("secflow.{}", self.error_class),
                ),
                (
                    "__connect.errors.exception.class.name",
                    format!("secflow.{}", r.as_str()),
                ),
                ("__connect.errors.exception.message", message.to_string()),
            ]);
        }
        for (k, v) in &pairs {
            h = h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        h
    }

    /// Writes the record to `topic` and waits for the broker's ack: only then may the source
    /// offset be committed.
    pub async fn write(
        &self,
        producer: &FutureProducer,
        topic: &str,
    ) -> Result<(i32, i64), rdkafka::error::KafkaError> {
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(topic).headers(self.headers());
        if let Some(k) = &self.original.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &self.original.value {
            record = record.payload(v.as_slice());
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| e)
    }
}

/// Wall-clock epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn header_map(h: &OwnedHeaders) -> Vec<(String, String)> {
        h.iter()
            .map(|x| {
                (
                    x.key.to_string(),
                    String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn keeps_original_headers_and_replaces_old_failure_headers() {
        let original = OriginalRecord {
            topic: "in".into(),
            partition: 2,
            offset: 41,
            key: Some(b"k".to_vec()),
            value: Some(b"\x01garbage".to_vec()),
            headers: vec![
                ("traceparent".into(), Some(b"00-abc-def-01".to_vec())),
                ("secflow.attempt".into(), Some(b"7".to_vec())),
                ("secflow.event_id".into(), Some(b"e-1".to_vec())),
            ],
        };
        let dl = DeadLetter::stage_failure(
            original,
            "tap",
            DlqReason::Undecodable,
            "not_framed",
            "magic byte 1, expected 0",
        );
        let h = header_map(&dl.headers());
        let get = |k: &str| {
            h.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("traceparent"), ["00-abc-def-01"]);
        assert_eq!(get("secflow.attempt"), ["1"]);
        assert_eq!(
            get("secflow.event_id"),
            ["e-1"],
            "describing headers are kept"
        );
        assert_eq!(get("secflow.dlq.reason"), ["undecodable"]);
        assert_eq!(get("secflow.origin.offset"), ["41"]);
        assert_eq!(get("secflow.stage"), ["tap"]);
        assert_eq!(get("__connect.errors.topic"), ["in"]);
        assert_eq!(
            get("__connect.errors.exception.message"),
            ["magic byte 1, expected 0"]
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let s = "é".repeat(3000);
        let t = truncate(&s, MAX_MESSAGE);
        assert!(t.len() <= MAX_MESSAGE && t.chars().all(|c| c == 'é'));
    }
}
