//! Stage runners: the loops that move records between topics. Each stage owns its consumer
//! group, stores an offset only once a record is finished (processed, or acknowledged in the
//! stage DLQ), and checks at start that every topic it touches exists.

pub mod enrich;
pub mod intel_poll;
pub mod output_log;
pub mod tap;
pub mod transform;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::codec::{CodecSetupError, DecodeError};
use crate::kafka::KafkaSetupError;

/// Why a stage stopped with an error (bad records never stop a stage: they are dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Kafka setup or a topic check failed.
    #[error(transparent)]
    Kafka(#[from] KafkaSetupError),
    /// The registry client could not be set up.
    #[error(transparent)]
    Codec(#[from] CodecSetupError),
    /// A sink could not be set up.
    #[error("stage {stage}: {message}")]
    Sink {
        /// The stage.
        stage: String,
        /// Why.
        message: String,
    },
    /// The threat-intel stages: the indicator table could not be opened, written or read.
    #[error("stage {stage}: {message}")]
    Intel {
        /// The stage.
        stage: String,
        /// Why.
        message: String,
    },
    /// A Kafka call failed in a way the stage cannot ride out.
    #[error("stage {stage}: {source}")]
    Client {
        /// The stage.
        stage: String,
        /// The error.
        source: rdkafka::error::KafkaError,
    },
}

/// Refreshes `secflow_consumer_lag{stage,topic,partition}` for the consumer's assigned
/// partitions: high watermark minus committed offset (never negative: some brokers report the
/// watermark one short). Blocking broker calls with short timeouts (on [`LagReporter`]'s
/// thread); a failed read leaves the last value.
fn lag_now<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::StreamConsumer<C>,
    stage: &str,
) {
    use rdkafka::consumer::Consumer;
    let timeout = Duration::from_secs(2);
    let Ok(committed) = consumer.committed(timeout) else {
        return;
    };
    let elements: Vec<(String, i32, rdkafka::Offset)> = committed
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition(), e.offset()))
        .collect();
    // One watermark query is a broker round trip that took ~0.5 s on the local broker: asked
    // one after another, a sink's 12 partitions (input and three tiers) took 6 s, and so did
    // every stop (the last reading). A few at a time in parallel take about one round trip.
    let mut watermarks = Vec::with_capacity(elements.len());
    for chunk in elements.chunks(16) {
        std::thread::scope(|scope| {
            let queries: Vec<_> = chunk
                .iter()
                .map(|(topic, partition, _)| {
                    scope.spawn(|| consumer.fetch_watermarks(topic, *partition, timeout))
                })
                .collect();
            watermarks.extend(
                queries
                    .into_iter()
                    .map(|q| q.join().ok().and_then(Result::ok)),
            );
        });
    }
    for ((topic, partition, offset), watermarks) in elements.iter().zip(watermarks) {
        let Some((low, high)) = watermarks else {
            continue;
        };
        let from = match offset {
            rdkafka::Offset::Offset(o) => *o,
            _ => low,
        };
        let partition = partition.to_string();
        crate::telemetry::set_gauge(
            "secflow_consumer_lag",
            &[
                ("stage", stage),
                ("topic", topic.as_str()),
                ("partition", partition.as_str()),
            ],
            (high - from).max(0) as f64,
        );
    }
}

/// How often [`LagReporter`] refreshes `secflow_consumer_lag`.
pub const LAG_EVERY: Duration = Duration::from_secs(10);

/// Refreshes `secflow_consumer_lag` every [`LAG_EVERY`] from a thread of its own. The lag
/// takes blocking broker round trips (committed offsets, then watermarks per partition); made
/// from a stage's loop they stalled it every 10 s, which the load test saw as a p99 latency
/// spike in every other 5 s slice. When dropped it reports once more (so the gauge holds the lag
/// left after the stage's last commit: drop it after that commit) and joins the thread.
#[derive(Debug)]
pub struct LagReporter {
    stop: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LagReporter {
    /// Starts reporting for `consumer`'s assigned partitions under `stage`.
    pub fn start<C>(
        consumer: std::sync::Arc<rdkafka::consumer::StreamConsumer<C>>,
        stage: &str,
    ) -> LagReporter
    where
        C: rdkafka::consumer::ConsumerContext + 'static,
    {
        let stop = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let signal = stop.clone();
        let name = stage.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("{stage}-lag"))
            .spawn(move || {
                let (lock, wake) = &*signal;
                loop {
                    let stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    let (stopped, _) = wake
                        .wait_timeout_while(stopped, LAG_EVERY, |s| !*s)
                        .unwrap_or_else(|e| e.into_inner());
                    if *stopped {
                        drop(stopped);
                        lag_now(&consumer, &name);
                        return;
                    }
                    drop(stopped);
                    lag_now(&consumer, &name);
                }
            })
            .ok();
        if thread.is_none() {
            tracing::warn!(
                stage,
                "could not start the consumer lag thread; lag not reported"
            );
        }
        LagReporter { stop, thread }
    }
}

impl Drop for LagReporter {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What [`next_batch`] got.
pub(crate) enum NextBatch<'a> {
    /// Records to process (at least one).
    Batch(Vec<rdkafka::message::BorrowedMessage<'a>>),
    /// The stop signal fired, or no record came for the idle limit: end the loop.
    Stop,
    /// The first receive failed (logged); try again.
    Retry,
    /// No record within a second (and the idle limit not reached): come round and try again.
    Quiet,
}

/// How long [`next_batch`] waits for a first record before letting its caller come round.
const QUIET_SLICE: Duration = Duration::from_secs(1);

/// Collects the next batch of a consuming stage: waits for a first record (until `shutdown`
/// or the idle limit, counted from `last_record` so consume errors do not reset it), then up to
/// `max_wait` for more, at most `max_batch` records and never past `limits.max_records` (with
/// `done` already processed).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn next_batch<'a, C: rdkafka::consumer::ConsumerContext + 'static>(
    consumer: &'a rdkafka::consumer::StreamConsumer<C>,
    stage: &str,
    max_batch: usize,
    max_wait: Duration,
    limits: &RunLimits,
    done: u64,
    last_record: &mut std::time::Instant,
    shutdown: &mut Shutdown,
) -> NextBatch<'a> {
    use futures::FutureExt as _;
    use std::time::Instant;
    // Wait for the first record in slices of at most a second, so the caller's loop comes
    // round while the input is quiet (readiness, lag) instead of only when a record arrives.
    let slice = match limits.idle_exit {
        Some(idle) => idle.saturating_sub(last_record.elapsed()).min(QUIET_SLICE),
        None => QUIET_SLICE,
    };
    let first = tokio::select! {
        _ = shutdown => return NextBatch::Stop,
        m = tokio::time::timeout(slice, consumer.recv()) => m.ok(),
    };
    let Some(first) = first else {
        if limits
            .idle_exit
            .is_some_and(|idle| last_record.elapsed() >= idle)
        {
            tracing::info!(stage, "idle, stopping");
            return NextBatch::Stop;
        }
        return NextBatch::Quiet;
    };
    let mut batch = Vec::with_capacity(max_batch);
    match first {
        Ok(m) => batch.push(m),
        Err(e) => {
            tracing::warn!(stage, error = %e, "consume error");
            tokio::time::sleep(Duration::from_millis(100)).await;
            return NextBatch::Retry;
        }
    }
    *last_record = Instant::now();
    let wait = tokio::time::sleep(max_wait);
    tokio::pin!(wait);
    let room =
        |n: usize| n < max_batch && limits.max_records.is_none_or(|max| done + (n as u64) < max);
    while room(batch.len()) {
        // Records librdkafka has already fetched are taken at once; only when none is ready
        // does the batch wait, on one timer for the whole batch. (A timeout per record cost a
        // timer registration and clock reads for every record under a backlog.)
        let next = match consumer.recv().now_or_never() {
            Some(m) => m,
            None => tokio::select! {
                biased;
                m = consumer.recv() => m,
                _ = &mut wait => break,
            },
        };
        match next {
            Ok(m) => batch.push(m),
            Err(e) => tracing::warn!(stage, error = %e, "consume error"),
        }
    }
    NextBatch::Batch(batch)
}

/// When a stage stops on its own (the demo and tests use these; a deployment runs until
/// signalled).
#[derive(Debug, Clone, Default)]
pub struct RunLimits {
    /// Stop after this many input records (processed or dead-lettered).
    pub max_records: Option<u64>,
    /// Stop when no record arrived for this long.
    pub idle_exit: Option<Duration>,
}

/// Resolves when the stage should stop (signal, test, or caller's condition).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A shutdown that never fires.
pub fn never() -> Shutdown {
    Box::pin(std::future::pending())
}

/// The consumer group of a stage.
pub fn group_id(stage: &str) -> String {
    format!("secflow.stage.{stage}")
}

/// Backoff for transient failures (registry outage, DLQ write failure): doubling from 100 ms,
/// capped at 30 s, with full jitter so many instances do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct TransientBackoff {
    attempt: u32,
}

impl TransientBackoff {
    /// Fresh backoff.
    pub fn new() -> Self {
        Self { attempt: 0 }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let base_ms = 100u64.saturating_mul(1 << self.attempt.min(9)).min(30_000);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = u64::from(uuid_random_u32()) % (base_ms + 1);
        Duration::from_millis(jitter.max(10))
    }
}

impl Default for TransientBackoff {
    fn default() -> Self {
        Self::new()
    }
}

fn uuid_random_u32() -> u32 {
    // std has no RNG; the nanosecond clock is plenty for jitter.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// DLQ reason for a decode failure: bytes we cannot read are `undecodable`; an event that
/// decodes but breaks the canonical rules is `poison`.
pub fn dlq_reason(e: &DecodeError) -> crate::dead_letter::DlqReason {
    match e {
        DecodeError::InvalidEvent(_) => crate::dead_letter::DlqReason::Poison,
        _ => crate::dead_letter::DlqReason::Undecodable,
    }
}
