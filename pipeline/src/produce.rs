//! `secflow produce`: JSON lines → validated canonical events → Avro via the registry →
//! the canonical topic. Streams its input (constant memory for any number of lines) and keeps a
//! bounded number of sends in flight.
//!
//! Every record gets a W3C `traceparent` header, which starts the event's trace: with traces on
//! ([`crate::telemetry::init_traces`]) it names the record's `secflow.produce` span (which ends
//! at the broker's acknowledgement), otherwise a fresh random one.

use std::collections::VecDeque;
use std::time::Duration;

use processors::event::SecurityEvent;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::codec::{CanonicalCodec, CodecSetupError, EncodeError};
use crate::dead_letter::header;
use crate::kafka::{self, KafkaSetupError};
use crate::telemetry::RecordSpan;
use crate::topology::Topology;

/// Which event field becomes the record key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyField {
    /// The tenant: all of a tenant's events stay in order on one partition.
    Tenant,
    /// The event id: even spread, no ordering.
    EventId,
    /// No key (round-robin / sticky partitioning).
    None,
}

/// Options of one produce run.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Target topic name.
    pub topic: String,
    /// Key choice.
    pub key: KeyField,
    /// Sends awaiting an ack at most.
    pub max_in_flight: usize,
}

/// A rejected input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based line number.
    pub line: u64,
    /// Why (field path and reason).
    pub reason: String,
    /// The line as read.
    pub text: String,
}

/// Counts of a produce run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceReport {
    /// Non-blank lines read.
    pub lines: u64,
    /// Events acknowledged by the broker.
    pub accepted: u64,
    /// Lines rejected by validation.
    pub rejected: u64,
    /// Events that validated but could not be delivered.
    pub failed: u64,
}

impl ProduceReport {
    /// True when every line was accepted.
    pub fn all_accepted(&self) -> bool {
        self.rejected == 0 && self.failed == 0
    }
}

/// What stopped a produce run.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// Kafka setup failed or the topic is missing.
    #[error(transparent)]
    Kafka(#[from] KafkaSetupError),
    /// Registry client setup failed.
    #[error(transparent)]
    Codec(#[from] CodecSetupError),
    /// The registry refused our schema or is down: nothing can be encoded.
    #[error("{0}")]
    Registry(String),
    /// Reading the input failed.
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
}

/// A fresh W3C `traceparent` (version 00, sampled), so a trace starts at the producer when the
/// caller supplies none.
pub fn new_traceparent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

struct Pending {
    line: u64,
    delivery: DeliveryFuture,
    /// The record's span, ended when the broker acknowledged it (or refused it).
    span: RecordSpan,
}

/// Reads JSON lines from `input` and produces every valid event. `on_reject` is called for each
/// invalid line (the caller prints it and writes the rejects file).
pub async fn produce<R: AsyncBufRead + Unpin>(
    topology: &Topology,
    input: R,
    opts: &ProduceOptions,
    mut on_reject: impl FnMut(&Rejection),
) -> Result<ProduceReport, ProduceError> {
    kafka::require_topics(&topology.kafka, std::slice::from_ref(&opts.topic)).await?;
    let codec = CanonicalCodec::new(&topology.schema_registry)?;
    let producer = kafka::idempotent_producer(&topology.kafka, "produce")?;
    let mut report = ProduceReport::default();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut lines = input.lines();
    let mut line_no = 0u64;
    while let Some(line) = lines.next_line().await? {
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        report.lines += 1;
        let event = match SecurityEvent::from_json(&line) {
            Ok(e) => e,
            Err(e) => {
                report.rejected += 1;
                on_reject(&Rejection {
                    line: line_no,
                    reason: e.to_string(),
                    text: line,
                });
                continue;
            }
        };
        let payload = match codec.encode(&opts.topic, &event).await {
            Ok(p) => p,
            Err(EncodeError::Event(e)) => {
                report.rejected += 1;
                on_reject(&Rejection {
                    line: line_no,
                    reason: e.to_string(),
                    text: line,
                });
                continue;
            }
            Err(EncodeError::Registry(e)) => return Err(ProduceError::Registry(e)),
        };
        let key = match opts.key {
            KeyField::Tenant => Some(event.tenant.as_bytes().to_vec()),
            KeyField::EventId => Some(event.event_id.as_bytes().to_vec()),
            KeyField::None => None,
        };
        let span = RecordSpan::produced("secflow.produce", &opts.topic);
        span.set_attribute("secflow.event_id", event.event_id.clone());
        let traceparent = span
            .traceparent()
            .map_or_else(new_traceparent, str::to_string);
        let delivery = send(
            &producer,
            &opts.topic,
            key.as_deref(),
            &payload,
            &traceparent,
            &mut pending,
            &mut report,
        )
        .await;
        pending.push_back(Pending {
            line: line_no,
            delivery,
            span,
        });
        while pending.len() >= opts.max_in_flight.max(1) {
            settle_one(&mut pending, &mut report).await;
        }
    }
    while !pending.is_empty() {
        settle_one(&mut pending, &mut report).await;
    }
    Ok(report)
}

/// Enqueues one record, waiting for acks to free queue space when librdkafka's queue is full.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    payload: &[u8],
    traceparent: &str,
    pending: &mut VecDeque<Pending>,
    report: &mut ProduceReport,
) -> DeliveryFuture {
    let headers = OwnedHeaders::new().insert(Header {
        key: header::TRACEPARENT,
        value: Some(traceparent.as_bytes()),
    });
    loop {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .payload(payload)
            .headers(headers.clone());
        if let Some(k) = key {
            record = record.key(k);
        }
        match producer.send_result(record) {
            Ok(f) => return f,
            Err((e, _)) => {
                if pending.is_empty() {
                    tracing::warn!(error = %e, "producer queue refused a record, waiting");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                } else {
                    settle_one(pending, report).await;
                }
            }
        }
    }
}

async fn settle_one(pending: &mut VecDeque<Pending>, report: &mut ProduceReport) {
    if let Some(p) = pending.pop_front() {
        match p.delivery.await {
            Ok(Ok(_)) => report.accepted += 1,
            Ok(Err((e, _))) => {
                report.failed += 1;
                p.span.fail("kafka");
                tracing::error!(line = p.line, error = %e, "delivery failed");
            }
            Err(_) => {
                report.failed += 1;
                p.span.fail("kafka");
                tracing::error!(line = p.line, "delivery cancelled (producer closed)");
            }
        }
    }
}
