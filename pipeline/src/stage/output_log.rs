//! Exactly-once writes without broker transactions: the **output log** mode of the transform
//! stage.
//!
//! Some Kafka-protocol brokers accept transactional producers but cannot end a transaction (no
//! `EndTxn`: tansu 0.6.0 as published; ours is patched, see `devstack/tansu/`), so
//! read-process-write transactions are impossible there. This mode gets the same guarantee for
//! the output topics from three facts:
//!
//! 1. the transform is deterministic (same input record → same output bytes);
//! 2. every output record carries its input position in the [`ORIGIN_HEADER`]
//!    (`<input topic>/<partition>/<offset>`) and is written to the **same partition number** as
//!    its input, by the idempotent producer (no duplicates or reordering from producer
//!    retries within a partition). So output partition `T/p` has exactly one writer, the owner
//!    of input partition `p`, and its records are in input-offset order;
//! 3. when the stage takes an input partition, it reads the tail of each output partition and
//!    learns the last input offset already written there ([`ResumePoint`]). Records up to that
//!    offset are re-read (the committed consumer offset may be behind) but not written again.
//!
//! What it does not give: fencing of a *live* zombie (an instance paused past the session
//! timeout that wakes up and writes after its partitions moved); brokers with transactions
//! should use the `transactions` mode for that.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{self, KafkaSetupError};
use crate::topology::KafkaConfig;

/// Header carrying the input position of an output record: `<topic>/<partition>/<offset>`.
pub const ORIGIN_HEADER: &str = "secflow.origin";

/// How many records back from the end of an output partition the tail scan looks for the last
/// record of its input partition. The owner of input partition `p` is the only writer of output
/// partition `p`, so the last record is normally its own; the window covers records another
/// tool may have appended by hand (a replay, a test message).
const TAIL_WINDOW: i64 = 64;

/// The scan stops when the tail consumer has been quiet this long (watermarks reported by some
/// brokers lag behind the last record, so the end is found by silence, not by the watermark).
const QUIET: Duration = Duration::from_millis(700);

/// Upper bound of one tail scan.
const SCAN_LIMIT: Duration = Duration::from_secs(20);

/// The value of [`ORIGIN_HEADER`] for an input record.
pub fn origin(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

/// Parses an [`ORIGIN_HEADER`] value into (topic, partition, offset). Topic names cannot contain
/// `/`, so the last two fields are unambiguous.
pub fn parse_origin(value: &[u8]) -> Option<(&str, i32, i64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.rsplitn(3, '/');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?;
    Some((topic, partition, offset))
}

/// For one input partition: the last input offset already written to each output topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumePoint {
    written: HashMap<String, i64>,
}

impl ResumePoint {
    /// Whether the output of input offset `offset` is already in `topic`.
    pub fn already_written(&self, topic: &str, offset: i64) -> bool {
        self.written.get(topic).is_some_and(|&w| offset <= w)
    }

    /// The last input offset written to `topic`, if any was found.
    pub fn last_written(&self, topic: &str) -> Option<i64> {
        self.written.get(topic).copied()
    }

    /// Records that the output of `offset` is now in `topic`.
    pub fn advance(&mut self, topic: &str, offset: i64) {
        let e = self.written.entry(topic.to_string()).or_insert(offset);
        *e = (*e).max(offset);
    }
}

/// Reads the tails of `outputs`' partition `partition` of each input partition in `inputs`
/// (all at once, one consumer), returning the resume point of every input partition.
///
/// Blocking: call from `spawn_blocking` or `block_in_place`.
///
/// # Errors
/// The consumer could not be created or the watermarks could not be read.
pub fn scan_tails(
    k: &KafkaConfig,
    input_topic: &str,
    inputs: &[i32],
    outputs: &[String],
) -> Result<HashMap<i32, ResumePoint>, KafkaSetupError> {
    let mut points: HashMap<i32, ResumePoint> = inputs
        .iter()
        .map(|&p| (p, ResumePoint::default()))
        .collect();
    if inputs.is_empty() || outputs.is_empty() {
        return Ok(points);
    }
    let mut c = kafka::base_config(k, "tail-scan")?;
    // The scan assigns partitions directly and never commits; librdkafka still wants a
    // group.id for assign(), and this one never joins a group.
    c.set("group.id", "secflow.tail-scan")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = c.create()?;
    let mut tpl = TopicPartitionList::new();
    let mut expected = 0usize;
    for topic in outputs {
        for &p in inputs {
            let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            if high <= low {
                continue;
            }
            let start = (high - TAIL_WINDOW).max(low);
            tpl.add_partition_offset(topic, p, Offset::Offset(start))?;
            expected += 1;
        }
    }
    if expected == 0 {
        return Ok(points);
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let mut last_message = Instant::now();
    while last_message.elapsed() < QUIET && started.elapsed() < SCAN_LIMIT {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let Ok(m) = result else {
            continue;
        };
        last_message = Instant::now();
        let Some(value) = m
            .headers()
            .and_then(|h| h.iter().find(|x| x.key == ORIGIN_HEADER))
            .and_then(|x| x.value)
        else {
            continue;
        };
        let Some((topic, partition, offset)) = parse_origin(value) else {
            continue;
        };
        if topic != input_topic || partition != m.partition() {
            continue;
        }
        if let Some(point) = points.get_mut(&partition) {
            point.advance(m.topic(), offset);
        }
    }
    Ok(points)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn origin_round_trips_even_with_dots_and_dashes() {
        let o = origin("security-events.canonical.v1", 7, 12345);
        assert_eq!(o, "security-events.canonical.v1/7/12345");
        assert_eq!(
            parse_origin(o.as_bytes()),
            Some(("security-events.canonical.v1", 7, 12345))
        );
        assert_eq!(parse_origin(b"nope"), None);
        assert_eq!(parse_origin(b"t/x/1"), None);
        assert_eq!(parse_origin(&[0xff, b'/', b'1', b'/', b'2']), None);
    }

    #[test]
    fn resume_point_skips_only_what_each_topic_has() {
        let mut r = ResumePoint::default();
        r.advance("ecs", 10);
        r.advance("ecs", 8);
        r.advance("cef", 9);
        assert!(r.already_written("ecs", 10));
        assert!(!r.already_written("ecs", 11));
        assert!(r.already_written("cef", 9));
        assert!(!r.already_written("cef", 10));
        assert!(!r.already_written("ocsf", 0));
        assert_eq!(r.last_written("ecs"), Some(10));
    }
}
