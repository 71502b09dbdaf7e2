//! Which offsets may be committed. A sink finishes records out of order (batches in flight,
//! retries, DLQ writes); a partition's committed offset may only move to the lowest offset not
//! yet finished, so a later success never commits past an earlier record still in flight.

use std::collections::{BTreeMap, BTreeSet};

/// Offsets of one partition that were read but are not finished yet.
#[derive(Debug, Default, Clone)]
pub struct PartitionTracker {
    pending: BTreeSet<i64>,
    /// One past the highest offset read so far.
    next: Option<i64>,
    /// What was last committed (to avoid committing the same offset again).
    committed: Option<i64>,
}

impl PartitionTracker {
    /// A record was read and is now in flight.
    pub fn started(&mut self, offset: i64) {
        self.pending.insert(offset);
        self.next = Some(self.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// A record is finished: delivered, or acknowledged by a retry/DLQ topic.
    pub fn finished(&mut self, offset: i64) {
        self.pending.remove(&offset);
    }

    /// The consumer's position is `position`: every offset below it was either handed to the
    /// sink (and is tracked) or consumed by librdkafka without being handed out — the COMMIT or
    /// ABORT marker a transactional producer writes to each partition at the end of every
    /// transaction, or offsets removed by compaction. Those are finished by definition;
    /// counting them lets the commit point pass them, else a caught-up sink reading a
    /// transactional topic shows a lag of one per partition for ever.
    pub fn passed(&mut self, position: i64) {
        if self.next.is_none_or(|n| position > n) {
            self.next = Some(position);
        }
    }

    /// The offset to commit now (the lowest unfinished offset, or one past the last read),
    /// if it moved since the last commit.
    pub fn committable(&self) -> Option<i64> {
        let at = match self.pending.first() {
            Some(lowest) => *lowest,
            None => self.next?,
        };
        (self.committed != Some(at)).then_some(at)
    }

    /// Records that `offset` was committed.
    pub fn mark_committed(&mut self, offset: i64) {
        self.committed = Some(offset);
    }

    /// Records in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

/// Trackers for every (topic, partition) a sink reads.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    partitions: BTreeMap<(String, i32), PartitionTracker>,
}

impl OffsetTracker {
    /// A record was read.
    pub fn started(&mut self, topic: &str, partition: i32, offset: i64) {
        self.partitions
            .entry((topic.to_string(), partition))
            .or_insert_with(|| {
                tracing::debug!(
                    topic,
                    partition,
                    offset,
                    "first record of the partition since its assignment"
                );
                PartitionTracker::default()
            })
            .started(offset);
    }

    /// The consumer's position on a partition (see [`PartitionTracker::passed`]).
    pub fn passed(&mut self, topic: &str, partition: i32, position: i64) {
        self.partitions
            .entry((topic.to_string(), partition))
            .or_default()
            .passed(position);
    }

    /// A record is finished.
    pub fn finished(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_string(), partition)) {
            p.finished(offset);
        }
    }

    /// Every partition whose commit point moved: (topic, partition, offset to commit).
    pub fn committable(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|((t, p), tr)| tr.committable().map(|o| (t.clone(), *p, o)))
            .collect()
    }

    /// Records a successful commit.
    pub fn mark_committed(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&(topic.to_string(), partition)) {
            p.mark_committed(offset);
        }
    }

    /// Records in flight across all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions
            .values()
            .map(PartitionTracker::in_flight)
            .sum()
    }

    /// In flight on one partition.
    pub fn in_flight_on(&self, topic: &str, partition: i32) -> usize {
        self.partitions
            .get(&(topic.to_string(), partition))
            .map_or(0, PartitionTracker::in_flight)
    }

    /// Forgets a partition (after it was revoked and drained).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn later_success_never_commits_past_an_earlier_record_in_flight() {
        let mut t = PartitionTracker::default();
        for o in 10..15 {
            t.started(o);
        }
        t.finished(12);
        t.finished(14);
        assert_eq!(t.committable(), Some(10));
        t.finished(10);
        assert_eq!(t.committable(), Some(11));
        t.finished(11);
        assert_eq!(t.committable(), Some(13));
        t.mark_committed(13);
        assert_eq!(t.committable(), None);
        t.finished(13);
        assert_eq!(t.committable(), Some(15));
    }

    #[test]
    fn the_commit_point_passes_transaction_markers_but_not_records_in_flight() {
        let mut t = PartitionTracker::default();
        t.started(10);
        t.started(11);
        // Offset 12 is a COMMIT marker: librdkafka consumed it, the position is 13.
        t.passed(13);
        assert_eq!(t.committable(), Some(10), "10 and 11 are still in flight");
        t.finished(10);
        t.finished(11);
        assert_eq!(t.committable(), Some(13));
        t.mark_committed(13);
        // A position behind what was read (a stale reading) moves nothing.
        t.passed(12);
        assert_eq!(t.committable(), None);
        // A partition whose only new offset is a marker commits past it.
        let mut o = OffsetTracker::default();
        o.passed("ecs", 1, 101);
        assert_eq!(o.committable(), vec![("ecs".to_string(), 1, 101)]);
    }

    #[test]
    fn nothing_read_means_nothing_to_commit() {
        let t = OffsetTracker::default();
        assert!(t.committable().is_empty());
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        t.started("a", 0, 5);
        t.started("a", 1, 7);
        t.finished("a", 1, 7);
        assert_eq!(
            t.committable(),
            vec![("a".to_string(), 0, 5), ("a".to_string(), 1, 8)]
        );
        assert_eq!(t.in_flight(), 1);
    }
}
