//! The raw baseline: a plain consume → produce copy through the same broker, with the same
//! librdkafka settings as the stages (consumer group with stored offsets, idempotent lz4
//! producer), the same records (key, value, headers) and the same partition numbers. Runs as its
//! own process (`loadtest copy`), like a stage, and writes its completion figures as JSON.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use serde::{Deserialize, Serialize};

use crate::stats::Rate;

/// Options of `loadtest copy`.
#[derive(Debug, Clone, clap::Args)]
pub struct CopyArgs {
    /// Topology YAML (Kafka settings).
    #[arg(long)]
    pub topology: PathBuf,
    /// Topic to read.
    #[arg(long)]
    pub from: String,
    /// Topic to write (same partition count).
    #[arg(long)]
    pub to: String,
    /// Consumer group.
    #[arg(long)]
    pub group: String,
    /// Stop after this many records are copied and acknowledged.
    #[arg(long)]
    pub expect: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Where to write the result (JSON).
    #[arg(long)]
    pub result: PathBuf,
}

/// What the copy measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CopyResult {
    /// Records read.
    pub consumed: u64,
    /// Records written and acknowledged.
    pub acked: u64,
    /// Sends that failed.
    pub failed: u64,
    /// Payload bytes copied.
    pub bytes: u64,
    /// Completion (ack) rate.
    pub rate: Rate,
    /// Records over the time from the first record consumed to the last ack.
    #[serde(default)]
    pub wall_per_s: f64,
    /// CPU seconds (user + system) of the copy process.
    #[serde(default)]
    pub cpu_s: f64,
    /// When the first record was read (Unix ms).
    #[serde(default)]
    pub first_read_ms: i64,
    /// When the last record was acknowledged (Unix ms).
    #[serde(default)]
    pub last_ack_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `loadtest copy`.
pub async fn run(args: CopyArgs) -> Result<()> {
    let t = pipeline::topology::load(&args.topology)
        .with_context(|| args.topology.display().to_string())?
        .topology;
    let consumer: StreamConsumer =
        pipeline::kafka::consumer_config(&t.kafka, "loadtest-copy", &args.group, true)?.create()?;
    consumer.subscribe(&[args.from.as_str()])?;
    let consumer = std::sync::Arc::new(consumer);
    let producer = pipeline::kafka::idempotent_producer(&t.kafka, "loadtest-copy")?;

    // Acks are awaited in order by a second task, which stores the offset of each copied record
    // (committed by librdkafka's auto-commit, as the stages do) and notes the completion time.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(DeliveryFuture, String, i32, i64)>();
    let acks_consumer = consumer.clone();
    let expect = args.expect;
    let acks = tokio::spawn(async move {
        let mut times = Vec::with_capacity(expect as usize);
        let mut failed = 0u64;
        while let Some((f, topic, partition, offset)) = rx.recv().await {
            match f.await {
                Ok(Ok(_)) => {
                    times.push(now_ms());
                    let _ = acks_consumer.store_offset(&topic, partition, offset);
                }
                _ => failed += 1,
            }
            if times.len() as u64 + failed >= expect {
                break;
            }
        }
        (times, failed)
    });

    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut consumed = 0u64;
    let mut bytes = 0u64;
    let mut first_consumed_ms = None;
    while consumed < args.expect {
        if Instant::now() > deadline {
            bail!(
                "copied {consumed} of {} records before the timeout",
                args.expect
            );
        }
        let m = match tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "consume error");
                continue;
            }
            Ok(Ok(m)) => m,
        };
        consumed += 1;
        first_consumed_ms.get_or_insert_with(now_ms);
        bytes += m.payload_len() as u64;
        let headers = m.headers().map(|h| h.detach());
        loop {
            let mut rec: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&args.to).partition(m.partition());
            if let Some(k) = m.key() {
                rec = rec.key(k);
            }
            if let Some(p) = m.payload() {
                rec = rec.payload(p);
            }
            if let Some(h) = &headers {
                rec = rec.headers(h.clone());
            }
            match producer.send_result(rec) {
                Ok(f) => {
                    let _ = tx.send((f, m.topic().to_string(), m.partition(), m.offset()));
                    break;
                }
                // librdkafka's queue is full: let acks come back.
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    drop(tx);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let (times, failed) = tokio::time::timeout(remaining, acks)
        .await
        .context("waiting for the last acks")??;
    // The stored offsets are committed on close.
    let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
    let last_ack = times.iter().copied().max().unwrap_or(0);
    let wall_ms = (last_ack - first_consumed_ms.unwrap_or(last_ack)).max(1);
    let wall_per_s = times.len() as f64 * 1000.0 / wall_ms as f64;
    let result = CopyResult {
        wall_per_s,
        consumed,
        acked: times.len() as u64,
        failed,
        bytes,
        rate: Rate::of(times),
        cpu_s: crate::procs::cpu_ticks(std::process::id()).unwrap_or(0) as f64
            / crate::procs::ticks_per_s(),
        first_read_ms: first_consumed_ms.unwrap_or(last_ack),
        last_ack_ms: last_ack,
    };
    std::fs::write(&args.result, serde_json::to_vec_pretty(&result)?)
        .with_context(|| args.result.display().to_string())?;
    println!(
        "copied {} records ({} failed), {:.0}/s sustained",
        result.acked, result.failed, result.rate.sustained_per_s
    );
    Ok(())
}
