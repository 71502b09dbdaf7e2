//! The `tap` stage: reads canonical Avro events, decodes them through the registry, counts
//! them, and dead-letters what it cannot decode. The demo reads events back with it; it is
//! also the smallest complete example of the stage contract the other stages follow.

use std::collections::BTreeMap;

use processors::event::SecurityEvent;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use tracing::{info, warn};

use super::{dlq_reason, group_id, RunLimits, Shutdown, StageError, TransientBackoff};
use crate::codec::CanonicalCodec;
use crate::dead_letter::{DeadLetter, OriginalRecord};
use crate::kafka;
use crate::topology::{TapStage, Topology};

/// What a tap saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapReport {
    /// Records read (decoded + dead-lettered).
    pub records: u64,
    /// Events decoded.
    pub decoded: u64,
    /// Dead-lettered records by error class.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Decoded events by `kind/category`.
    pub by_category: BTreeMap<String, u64>,
    /// Decoded events by tenant.
    pub by_tenant: BTreeMap<String, u64>,
}

/// Runs a tap until `shutdown` fires or a limit is reached. `on_event` sees every decoded event
/// in partition order.
pub async fn run(
    topology: &Topology,
    stage: &TapStage,
    limits: RunLimits,
    mut shutdown: Shutdown,
    mut on_event: impl FnMut(&SecurityEvent) + Send,
) -> Result<TapReport, StageError> {
    let input = topology.topics.resolved(stage.input).name;
    let dlq = topology
        .stage_dlq(&crate::topology::StageConfig::Tap(stage.clone()))
        .name;
    kafka::require_topics(&topology.kafka, &[input.clone(), dlq.clone()]).await?;
    let codec = CanonicalCodec::new(&topology.schema_registry)?;
    let consumer = kafka::consumer(&topology.kafka, &stage.name, &group_id(&stage.name))?;
    let producer = kafka::idempotent_producer(&topology.kafka, &format!("{}.dlq", stage.name))?;
    let client_err = |source| StageError::Client {
        stage: stage.name.clone(),
        source,
    };
    consumer.subscribe(&[input.as_str()]).map_err(client_err)?;
    info!(stage = %stage.name, %input, %dlq, "tap started");

    let mut report = TapReport::default();
    let mut last_record = std::time::Instant::now();
    loop {
        if limits.max_records.is_some_and(|max| report.records >= max) {
            break;
        }
        let next = async {
            match limits.idle_exit {
                Some(idle) => {
                    let left = idle.saturating_sub(last_record.elapsed());
                    tokio::time::timeout(left, consumer.recv()).await.ok()
                }
                None => Some(consumer.recv().await),
            }
        };
        let msg = tokio::select! {
            _ = &mut shutdown => break,
            m = next => m,
        };
        let Some(msg) = msg else {
            info!(stage = %stage.name, "idle, stopping");
            break;
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                warn!(stage = %stage.name, error = %e, "consume error");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        last_record = std::time::Instant::now();
        report.records += 1;
        let mut backoff = TransientBackoff::new();
        loop {
            match codec.decode(msg.payload()).await {
                Ok(event) => {
                    report.decoded += 1;
                    *report
                        .by_category
                        .entry(format!(
                            "{}/{}",
                            event.kind.as_str(),
                            event.category.as_str()
                        ))
                        .or_default() += 1;
                    *report.by_tenant.entry(event.tenant.clone()).or_default() += 1;
                    on_event(&event);
                    break;
                }
                Err(e) if e.is_transient() => {
                    let delay = backoff.next_delay();
                    warn!(stage = %stage.name, error = %e, ?delay, "transient decode failure, retrying the same record");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    let letter = DeadLetter::stage_failure(
                        OriginalRecord::from_message(&msg),
                        &stage.name,
                        dlq_reason(&e),
                        e.class(),
                        &e.to_string(),
                    );
                    // The offset may only move once the DLQ has acknowledged the record.
                    let mut dlq_backoff = TransientBackoff::new();
                    while let Err(err) = letter.write(&producer, &dlq).await {
                        let delay = dlq_backoff.next_delay();
                        warn!(stage = %stage.name, error = %err, ?delay, "DLQ write failed, retrying");
                        tokio::time::sleep(delay).await;
                    }
                    warn!(stage = %stage.name, partition = msg.partition(), offset = msg.offset(), class = e.class(), error = %e, "record dead-lettered");
                    *report
                        .dead_lettered
                        .entry(e.class().to_string())
                        .or_default() += 1;
                    break;
                }
            }
        }
        consumer
            .store_offset_from_message(&msg)
            .map_err(client_err)?;
    }
    // Commit what is stored before leaving, so a restart starts after the last finished record.
    match consumer.commit_consumer_state(CommitMode::Sync) {
        // NoOffset: nothing stored since the last auto-commit, so nothing is owed.
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => return Err(client_err(e)),
    }
    info!(stage = %stage.name, records = report.records, decoded = report.decoded, "tap stopped");
    Ok(report)
}
