//! Thread grouping state: the `ts` of the message that started a thread, per channel and dedup
//! key, for `thread_ttl_secs`; saved through the engine's state file.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Most threads remembered; the oldest are forgotten beyond this.
pub const MAX_THREADS: usize = 50_000;

/// One remembered thread (also the state file's entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadEntry {
    /// Channel as configured (name or ID).
    pub channel: String,
    /// Dedup key.
    pub key: String,
    /// `ts` of the thread's parent message.
    pub ts: String,
    /// When the parent was posted (epoch ms); the thread takes replies until `started_ms + ttl`.
    pub started_ms: i64,
}

/// The state file's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StateFile {
    /// Format version.
    version: u32,
    threads: Vec<ThreadEntry>,
}

const STATE_VERSION: u32 = 1;

/// Threads by (channel, key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Threads {
    map: HashMap<(String, String), (String, i64)>,
    ttl_ms: i64,
}

impl Threads {
    /// An empty table whose threads live `ttl_ms`.
    pub fn new(ttl_ms: i64) -> Self {
        Threads {
            map: HashMap::new(),
            ttl_ms,
        }
    }

    /// Number of threads remembered (live or not yet pruned).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The parent `ts` of the live thread of `key` in `channel`.
    pub fn live(&self, channel: &str, key: &str, now_ms: i64) -> Option<&str> {
        let (ts, started) = self.map.get(&(channel.to_string(), key.to_string()))?;
        (now_ms - *started < self.ttl_ms).then_some(ts.as_str())
    }

    /// Remembers `ts` as the thread of each of `keys` that has no live thread in `channel`.
    pub fn register(
        &mut self,
        channel: &str,
        keys: &[String],
        ts: &str,
        started_ms: i64,
        now_ms: i64,
    ) {
        for key in keys {
            if self.live(channel, key, now_ms).is_none() {
                self.map.insert(
                    (channel.to_string(), key.clone()),
                    (ts.to_string(), started_ms),
                );
            }
        }
        if self.map.len() > MAX_THREADS {
            self.prune(now_ms);
        }
        if self.map.len() > MAX_THREADS {
            let mut by_age: Vec<((String, String), i64)> =
                self.map.iter().map(|(k, (_, s))| (k.clone(), *s)).collect();
            by_age.sort_by_key(|(_, s)| *s);
            let extra = self.map.len() - MAX_THREADS;
            for (k, _) in by_age.into_iter().take(extra) {
                self.map.remove(&k);
            }
        }
    }

    /// Forgets every thread of `channel` whose parent is `ts` (Slack says it is gone).
    pub fn forget(&mut self, channel: &str, ts: &str) {
        self.map.retain(|(c, _), (t, _)| !(c == channel && t == ts));
    }

    /// Drops expired threads.
    pub fn prune(&mut self, now_ms: i64) {
        let ttl = self.ttl_ms;
        self.map.retain(|_, (_, started)| now_ms - *started < ttl);
    }

    /// The table as the state file's JSON (sorted, so equal tables give equal bytes).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut threads: Vec<ThreadEntry> = self
            .map
            .iter()
            .map(|((channel, key), (ts, started_ms))| ThreadEntry {
                channel: channel.clone(),
                key: key.clone(),
                ts: ts.clone(),
                started_ms: *started_ms,
            })
            .collect();
        threads.sort_by(|a, b| (&a.channel, &a.key).cmp(&(&b.channel, &b.key)));
        serde_json::to_vec(&StateFile {
            version: STATE_VERSION,
            threads,
        })
        .unwrap_or_default()
    }

    /// Replaces the table with the state file's threads.
    ///
    /// # Errors
    /// The bytes are not this sink's state (not JSON, another shape or version).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let file: StateFile = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a Slack thread state file: {e}"))?;
        if file.version != STATE_VERSION {
            return Err(format!(
                "Slack thread state version {} (this build reads {STATE_VERSION})",
                file.version
            ));
        }
        self.map = file
            .threads
            .into_iter()
            .map(|t| ((t.channel, t.key), (t.ts, t.started_ms)))
            .collect();
        Ok(())
    }
}
