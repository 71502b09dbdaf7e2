//! Fault injection: what the simulator does wrong, and when.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The faults a simulator injects. Replaced as a whole by [`SimServer::set_faults`] or
/// `POST /_sim/faults` (this struct as JSON; every field optional).
///
/// "Data requests" are the ones carrying events (HEC `/services/collector/event`, ES `_bulk`,
/// any webhook path); HEC ack polls and health checks are not affected by `statuses`,
/// `latency_ms` or `drop_connections` (the health endpoint reports unhealthy while a 5xx/429
/// rule is active).
///
/// [`SimServer::set_faults`]: super::SimServer::set_faults
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Status rules, in order: the first applies until it is used up (`count` requests) or
    /// expired (`for_ms` after it became first), then the next. The answer carries the
    /// vendor's error body for that status.
    pub statuses: Vec<StatusRule>,
    /// Milliseconds added before answering each data request.
    pub latency_ms: u64,
    /// The next N data requests get their connection closed without an answer.
    pub drop_connections: u32,
    /// Whether a dropped request is processed first (recorded, then no answer: the client
    /// cannot know it was delivered) or not at all.
    pub drop_mode: DropMode,
    /// Elasticsearch: per-item failures inside a successful `_bulk`.
    pub item_faults: Vec<ItemFault>,
    /// HEC: acknowledgements become true this many milliseconds after the batch.
    pub ack_delay_ms: u64,
    /// HEC: the next N batches (with acks) are never acknowledged.
    pub withhold_acks: u32,
    /// HEC: the events of a withheld batch are not recorded (lost, as if the indexer died
    /// before indexing them); otherwise they are recorded and a re-send is a duplicate.
    pub lose_withheld: bool,
}

/// Answer data requests with `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRule {
    /// The status to answer with, e.g. 503.
    pub status: u16,
    /// For this many requests; absent: no limit.
    #[serde(default)]
    pub count: Option<u32>,
    /// For this many milliseconds from when the rule became first; absent: no limit.
    #[serde(default)]
    pub for_ms: Option<u64>,
    /// `Retry-After` header value to send, e.g. `"1"`.
    #[serde(default)]
    pub retry_after: Option<String>,
}

impl StatusRule {
    /// `status` for the next `count` requests.
    pub fn times(status: u16, count: u32) -> Self {
        StatusRule {
            status,
            count: Some(count),
            for_ms: None,
            retry_after: None,
        }
    }

    /// `status` for `duration`.
    pub fn for_duration(status: u16, duration: Duration) -> Self {
        StatusRule {
            status,
            count: None,
            for_ms: Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
            retry_after: None,
        }
    }

    /// With a `Retry-After` header.
    pub fn with_retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }
}

/// When a dropped connection is dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropMode {
    /// Before anything is processed.
    #[default]
    BeforeProcessing,
    /// After the request was processed and recorded.
    AfterProcessing,
}

/// Elasticsearch: fail bulk items with `status`, chosen by event id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemFault {
    /// Item status: 429 (`es_rejected_execution_exception`), 400 (`mapper_parsing_exception`),
    /// 503, 500…
    pub status: u16,
    /// This fraction (0–1) of all ids, chosen by a hash of the id and `seed` (deterministic).
    #[serde(default)]
    pub fraction: f64,
    /// These ids.
    #[serde(default)]
    pub event_ids: Vec<String>,
    /// Each chosen id fails this many times, then goes through; absent: always.
    #[serde(default)]
    pub times: Option<u32>,
    /// Seed of the hash choosing the fraction.
    #[serde(default)]
    pub seed: u64,
}

impl ItemFault {
    /// Whether `id` is chosen by this fault.
    pub fn selects(&self, id: &str) -> bool {
        if self.event_ids.iter().any(|e| e == id) {
            return true;
        }
        if self.fraction <= 0.0 {
            return false;
        }
        // FNV-1a over seed and id: stable across runs and processes.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.seed.to_le_bytes().iter().chain(id.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // FNV alone mixes the last bytes poorly into the high bits: finish with fmix64.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        // Top 53 bits as a fraction in [0, 1).
        let x = (h >> 11) as f64 / (1u64 << 53) as f64;
        x < self.fraction
    }
}

/// What to do with one data request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestFault {
    pub latency: Duration,
    pub drop: Option<DropMode>,
    pub status: Option<(u16, Option<String>)>,
}

/// The faults and their progress.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    faults: Faults,
    rules: VecDeque<StatusRule>,
    head_since: Option<Instant>,
    drops_left: u32,
    withhold_left: u32,
    item_hits: HashMap<(usize, String), u32>,
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        let mut s = FaultState::default();
        s.set(faults);
        s
    }

    pub fn set(&mut self, faults: Faults) {
        self.rules = faults.statuses.iter().cloned().collect();
        self.head_since = None;
        self.drops_left = faults.drop_connections;
        self.withhold_left = faults.withhold_acks;
        self.item_hits.clear();
        self.faults = faults;
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Drops expired or used-up rules; the active one, if any.
    fn active_rule(&mut self, now: Instant) -> Option<&mut StatusRule> {
        loop {
            let since = *self.head_since.get_or_insert(now);
            let head = self.rules.front()?;
            let expired = head
                .for_ms
                .is_some_and(|ms| now.duration_since(since) >= Duration::from_millis(ms));
            if expired || head.count == Some(0) {
                self.rules.pop_front();
                self.head_since = None;
                continue;
            }
            return self.rules.front_mut();
        }
    }

    /// The fault for the next data request (consumes counts).
    pub fn next_request(&mut self, now: Instant) -> RequestFault {
        let latency = Duration::from_millis(self.faults.latency_ms);
        if self.drops_left > 0 {
            self.drops_left -= 1;
            return RequestFault {
                latency,
                drop: Some(self.faults.drop_mode),
                status: None,
            };
        }
        let status = self.active_rule(now).map(|rule| {
            if let Some(c) = rule.count.as_mut() {
                *c -= 1;
            }
            (rule.status, rule.retry_after.clone())
        });
        RequestFault {
            latency,
            drop: None,
            status,
        }
    }

    /// The status of an active 5xx/429 rule (without consuming it), for health endpoints.
    pub fn outage(&mut self, now: Instant) -> Option<u16> {
        self.active_rule(now)
            .map(|r| r.status)
            .filter(|s| *s >= 500 || *s == 429)
    }

    /// The item status to inject for `id`, if any (counts the hit).
    pub fn item_fault(&mut self, id: &str) -> Option<u16> {
        for (i, f) in self.faults.item_faults.iter().enumerate() {
            if !f.selects(id) {
                continue;
            }
            let hits = self.item_hits.entry((i, id.to_string())).or_insert(0);
            if f.times.is_some_and(|t| *hits >= t) {
                continue;
            }
            *hits += 1;
            return Some(f.status);
        }
        None
    }

    /// Whether the next acked batch is withheld (consumes one).
    pub fn take_withhold(&mut self) -> bool {
        if self.withhold_left > 0 {
            self.withhold_left -= 1;
            true
        } else {
            false
        }
    }

    pub fn ack_delay(&self) -> Duration {
        Duration::from_millis(self.faults.ack_delay_ms)
    }

    pub fn lose_withheld(&self) -> bool {
        self.faults.lose_withheld
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_in_order_by_count_and_time() {
        let t0 = Instant::now();
        let mut s = FaultState::new(Faults {
            statuses: vec![
                StatusRule::times(503, 2),
                StatusRule::for_duration(429, Duration::from_millis(100)),
                StatusRule::times(500, 1),
            ],
            ..Faults::default()
        });
        assert_eq!(s.next_request(t0).status, Some((503, None)));
        assert_eq!(s.next_request(t0).status, Some((503, None)));
        assert_eq!(s.outage(t0), Some(429));
        assert_eq!(s.next_request(t0).status, Some((429, None)));
        let later = t0 + Duration::from_millis(150);
        assert_eq!(s.next_request(later).status, Some((500, None)));
        assert_eq!(s.next_request(later).status, None);
        assert_eq!(s.outage(later), None);
    }

    #[test]
    fn drops_then_statuses() {
        let now = Instant::now();
        let mut s = FaultState::new(Faults {
            drop_connections: 1,
            statuses: vec![StatusRule::times(503, 1)],
            ..Faults::default()
        });
        assert_eq!(s.next_request(now).drop, Some(DropMode::BeforeProcessing));
        assert_eq!(s.next_request(now).status, Some((503, None)));
        assert_eq!(s.next_request(now), RequestFault::default());
    }

    #[test]
    fn item_faults_by_fraction_and_id_with_times() {
        let f = ItemFault {
            status: 429,
            fraction: 0.05,
            event_ids: vec![],
            times: Some(1),
            seed: 7,
        };
        let chosen = (0..20_000)
            .filter(|i| f.selects(&format!("evt-{i}")))
            .count();
        assert!((800..1200).contains(&chosen), "{chosen}");
        let mut s = FaultState::new(Faults {
            item_faults: vec![
                ItemFault {
                    status: 400,
                    fraction: 0.0,
                    event_ids: vec!["bad".into()],
                    times: None,
                    seed: 0,
                },
                f,
            ],
            ..Faults::default()
        });
        assert_eq!(s.item_fault("bad"), Some(400));
        assert_eq!(s.item_fault("bad"), Some(400));
        let id = (0..1000)
            .map(|i| format!("evt-{i}"))
            .find(|id| s.faults().item_faults[1].selects(id))
            .unwrap();
        assert_eq!(s.item_fault(&id), Some(429));
        assert_eq!(s.item_fault(&id), None, "times: 1");
    }

    #[test]
    fn faults_json_shape() {
        let f: Faults = serde_json::from_str(
            r#"{"statuses":[{"status":503,"for_ms":30000,"retry_after":"1"}],"item_faults":[{"status":429,"fraction":0.05,"times":1}],"drop_mode":"after_processing"}"#,
        )
        .unwrap();
        assert_eq!(f.statuses[0].for_ms, Some(30_000));
        assert_eq!(f.drop_mode, DropMode::AfterProcessing);
        assert!(serde_json::from_str::<Faults>(r#"{"latency":1}"#).is_err());
    }
}
