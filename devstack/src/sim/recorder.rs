//! What a simulator received: accepted event ids (with repeats), recent requests, counters.
//!
//! Receipt log: when `SECFLOW_SIM_RECEIPT_LOG` names a file at start, every accepted event is
//! also appended to it as a line `<unix ms>\t<event id>\n` (repeats included, `-` when the
//! event has no id), flushed after each request. The load test reads it for end-to-end latency
//! (event time → receipt); without the variable nothing is written.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// Counters of a simulator. Fields that do not apply to a kind stay 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Data requests received (including faulted and dropped ones).
    pub requests: u64,
    /// Data requests answered with an injected status.
    pub faulted: u64,
    /// Data requests whose connection was dropped.
    pub dropped: u64,
    /// Requests refused for missing/wrong credentials.
    pub auth_failures: u64,
    /// Requests refused as malformed (bad body, bad header, gzip…).
    pub bad_requests: u64,
    /// Events accepted (stored), repeats included.
    pub events: u64,
    /// Distinct event ids accepted.
    pub unique_events: u64,
    /// Events accepted although their id was accepted before (visible duplicates).
    pub duplicate_events: u64,
    /// Elasticsearch: `create` of an existing `_id` answered 409 (re-sends suppressed).
    pub conflicts: u64,
    /// Elasticsearch: items failed by an injected item fault.
    pub item_faults: u64,
    /// HEC: ackIds issued.
    pub acks_issued: u64,
    /// HEC: ackIds never to be acknowledged (withheld batches).
    pub acks_withheld: u64,
    /// HEC: ackIds answered `true`.
    pub acks_confirmed: u64,
    /// HEC: ack poll requests.
    pub ack_polls: u64,
    /// Webhook: requests refused for a wrong signature or stale timestamp.
    pub bad_signatures: u64,
    /// Webhook: requests refused as replays of a signature seen before.
    pub replays: u64,
}

/// One request as the simulator saw it (body decompressed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body, decompressed.
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
}

impl ReceivedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub(crate) struct Recorder {
    pub stats: SimStats,
    counts: HashMap<String, u64>,
    requests: VecDeque<ReceivedRequest>,
    keep: usize,
    receipts: Option<std::io::BufWriter<std::fs::File>>,
}

/// The environment variable naming the receipt log (see the module doc).
pub const RECEIPT_LOG_ENV: &str = "SECFLOW_SIM_RECEIPT_LOG";

fn open_receipt_log() -> Option<std::io::BufWriter<std::fs::File>> {
    let path = std::env::var_os(RECEIPT_LOG_ENV).filter(|p| !p.is_empty())?;
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(f) => Some(std::io::BufWriter::with_capacity(256 * 1024, f)),
        Err(e) => {
            tracing::warn!(path = %std::path::Path::new(&path).display(), error = %e, "receipt log not opened");
            None
        }
    }
}

impl Recorder {
    pub fn new(keep: usize) -> Self {
        Recorder {
            stats: SimStats::default(),
            counts: HashMap::new(),
            requests: VecDeque::new(),
            keep,
            receipts: open_receipt_log(),
        }
    }

    /// An event was accepted (stored).
    pub fn accept(&mut self, id: Option<&str>) {
        if let Some(log) = self.receipts.as_mut() {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            if writeln!(log, "{ms}\t{}", id.unwrap_or("-")).is_err() {
                self.receipts = None;
            }
        }
        self.stats.events += 1;
        if let Some(id) = id {
            let n = self.counts.entry(id.to_string()).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.stats.unique_events += 1;
            } else {
                self.stats.duplicate_events += 1;
            }
        }
    }

    pub fn request(&mut self, r: ReceivedRequest) {
        if let Some(log) = self.receipts.as_mut() {
            if log.flush().is_err() {
                self.receipts = None;
            }
        }
        if self.keep == 0 {
            return;
        }
        if self.requests.len() >= self.keep {
            self.requests.pop_front();
        }
        self.requests.push_back(r);
    }

    pub fn event_ids(&self) -> BTreeSet<String> {
        self.counts.keys().cloned().collect()
    }

    pub fn duplicates(&self) -> BTreeMap<String, u64> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }

    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.requests.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.stats = SimStats::default();
        self.counts.clear();
        self.requests.clear();
    }
}

/// An event id inside an event document: ECS `event.id`, OCSF `metadata.uid`, or top-level
/// `event_id` / `id`.
pub fn event_id_of(doc: &Value) -> Option<String> {
    ["/event/id", "/metadata/uid", "/event_id", "/id"]
        .iter()
        .find_map(|p| doc.pointer(p).and_then(Value::as_str))
        .map(str::to_string)
}
