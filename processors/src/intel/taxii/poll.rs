//! Polling one collection page by page, with the checkpoint after each page.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{ObjectsQuery, TaxiiClient, TaxiiError};
use super::config::CollectionConfig;
use crate::intel::indicator::{IndicatorSource, Tlp};

/// One page of a poll: the objects and the checkpoint to store once they are published.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPage {
    /// The STIX objects of this page, as received.
    pub objects: Vec<Value>,
    /// The `added_after` to resume from once this page (and every earlier one) is published.
    /// Based on the server's `X-TAXII-Date-Added-Last` (or, when it sends none, the newest
    /// `date_added` / `modified` / `created` among the objects): on the last page that value
    /// itself; on a page with more to come, one microsecond before it, because objects added
    /// in the same instant as this page's last one (a batch added in one request shares its
    /// `date_added`) may continue on the next page and `added_after` is exclusive. Resuming
    /// there re-reads those few objects (deduplicated by (`id`, `modified`)) rather than
    /// losing them. Never earlier than the checkpoint the poll started from; `None` only while
    /// nothing at all was seen.
    pub checkpoint: Option<String>,
    /// The server announced more objects for this poll.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ready,
    Done,
    Stalled(String),
}

/// A poll of one collection: `GET …/objects/` with `added_after` = the checkpoint it started
/// from, `match[type]`, `match[version]` and `limit` from the server configuration, then
/// `next` with the same filters and `limit` while the server says `more`.
///
/// Objects come sorted by `date_added` (TAXII 2.1), so the checkpoint of each page (see
/// [`PollPage::checkpoint`]) is safe to store as soon as the page is published: a restart
/// resumes there without losing anything. A failed
/// [`CollectionPoll::next_page`] changes nothing; calling it again repeats the same request
/// (after the `Retry-After` of a [`TaxiiError::RateLimited`], for instance). If the server
/// forgot the `next` token meanwhile, start a new poll from the last stored checkpoint.
///
/// `added_after` is exclusive: an object that a server stamps with exactly the `date_added`
/// of the final checkpoint, but adds after the poll, is not seen (servers stamp the time of
/// the request, so this needs two writes in the same instant). A server that paginates with
/// `more` but without `next` is followed with `added_after` = the last `date_added`; there,
/// objects sharing the `date_added` of a page's last object cannot be told apart.
#[derive(Debug)]
pub struct CollectionPoll {
    client: TaxiiClient,
    api_root: String,
    collection: String,
    source: IndicatorSource,
    query: ObjectsQuery,
    /// The checkpoint the poll started from (the floor of every checkpoint it reports).
    start: Option<String>,
    /// The newest `date_added` seen (exact).
    high_water: Option<String>,
    /// The last checkpoint reported.
    checkpoint: Option<String>,
    state: State,
    pages: u64,
}

/// One microsecond before `text` (RFC 3339 UTC with microseconds), or `text` unchanged when it
/// does not parse.
fn just_before(text: &str) -> String {
    match parse_time(text) {
        Some(t) => (t.with_timezone(&Utc) - chrono::Duration::microseconds(1))
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        None => text.to_string(),
    }
}

fn parse_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text.trim()).ok()
}

/// The later of two checkpoints (by time; an unparsable one loses against a parsable one).
fn later(current: Option<String>, candidate: Option<String>) -> Option<String> {
    match (current, candidate) {
        (None, c) => c,
        (c, None) => c,
        (Some(cur), Some(cand)) => match (parse_time(&cur), parse_time(&cand)) {
            (Some(a), Some(b)) if b > a => Some(cand),
            (Some(_), _) => Some(cur),
            (None, Some(_)) => Some(cand),
            (None, None) => Some(cur),
        },
    }
}

/// The newest `date_added` (some servers put it on objects), else `modified`, else `created`
/// among `objects`, as written.
fn newest_seen(objects: &[Value]) -> Option<String> {
    objects
        .iter()
        .filter_map(|o| {
            ["date_added", "modified", "created"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))
                .and_then(|s| parse_time(s).map(|t| (t, s)))
        })
        .max_by_key(|(t, _)| *t)
        .map(|(_, s)| s.to_string())
}

impl CollectionPoll {
    pub(crate) fn new(
        client: TaxiiClient,
        collection: &CollectionConfig,
        checkpoint: Option<String>,
    ) -> Result<CollectionPoll, TaxiiError> {
        let source = client.source(collection)?;
        if collection.id.is_empty() {
            return Err(TaxiiError::Config("collection id is empty".to_string()));
        }
        let checkpoint = match checkpoint.filter(|c| !c.trim().is_empty()) {
            Some(c) => Some(c),
            None => match &collection.added_after {
                None => None,
                // TAXII timestamps are UTC with `Z`; some servers parse nothing else.
                Some(text) => Some(
                    parse_time(text)
                        .ok_or_else(|| {
                            TaxiiError::Config(format!(
                                "collection {}: added_after `{text}` is not an RFC 3339 timestamp",
                                collection.id
                            ))
                        })?
                        .with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::AutoSi, true),
                ),
            },
        };
        let config = client.config();
        let query = ObjectsQuery {
            added_after: checkpoint.clone(),
            types: config.object_types.clone(),
            version: Some(config.match_version.clone()).filter(|v| !v.is_empty()),
            limit: Some(config.page_size),
            next: None,
        };
        Ok(CollectionPoll {
            api_root: source.api_root.clone(),
            collection: collection.id.clone(),
            client,
            source,
            query,
            start: checkpoint.clone(),
            high_water: checkpoint.clone(),
            checkpoint,
            state: State::Ready,
            pages: 0,
        })
    }

    /// Where the objects come from (for [`crate::intel::indicator::from_stix`]); its
    /// [`IndicatorSource::checkpoint_key`] keys the checkpoint record.
    pub fn source(&self) -> &IndicatorSource {
        &self.source
    }

    /// The checkpoint of the last page fetched ([`PollPage::checkpoint`]); before the first
    /// page, the one the poll started from.
    pub fn checkpoint(&self) -> Option<&str> {
        self.checkpoint.as_deref()
    }

    /// Pages fetched so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// True once the server said there is nothing more.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Fetches the next page (exactly one request); `Ok(None)` when the poll is complete.
    pub async fn next_page(&mut self) -> Result<Option<PollPage>, TaxiiError> {
        match &self.state {
            State::Done => return Ok(None),
            State::Stalled(reason) => {
                return Err(TaxiiError::Protocol {
                    url: format!("{}collections/{}/objects/", self.api_root, self.collection),
                    reason: reason.clone(),
                })
            }
            State::Ready => {}
        }
        let page = self
            .client
            .get_objects(&self.api_root, &self.collection, &self.query)
            .await?;
        self.pages += 1;
        let candidate = page
            .date_added_last
            .clone()
            .filter(|h| parse_time(h).is_some())
            .or_else(|| newest_seen(&page.objects));
        self.high_water = later(self.high_water.take(), candidate);
        let resume = if page.more {
            self.high_water.as_deref().map(just_before)
        } else {
            self.high_water.clone()
        };
        self.checkpoint = later(self.start.clone(), resume);
        if !page.more {
            self.state = State::Done;
        } else if page.objects.is_empty() {
            self.state = State::Stalled("the server says `more` but sent an empty page".into());
        } else if let Some(next) = page.next.clone() {
            self.query.next = Some(next);
        } else {
            // `more` without `next`: continue with added_after = the new checkpoint, if it moved.
            let moved = match (&self.high_water, &self.query.added_after) {
                (Some(h), Some(a)) => {
                    later(Some(a.clone()), Some(h.clone())).as_deref() != Some(a.as_str())
                }
                (Some(_), None) => true,
                _ => false,
            };
            if moved {
                self.query.added_after = self.high_water.clone();
                self.query.next = None;
            } else {
                self.state = State::Stalled(
                    "the server says `more` but sends no `next` and the date added does not advance"
                        .into(),
                );
            }
        }
        Ok(Some(PollPage {
            objects: page.objects,
            checkpoint: self.checkpoint.clone(),
            more: page.more,
        }))
    }
}

/// The value of a `secflow.intel.checkpoints` record (JSON, compacted topic, key =
/// [`IndicatorSource::checkpoint_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Server name.
    pub server: String,
    /// API root URL.
    pub api_root: String,
    /// Collection id.
    pub collection: String,
    /// The `added_after` to resume from, as the server wrote it.
    pub added_after: String,
    /// When it was stored, RFC 3339 UTC.
    pub updated_at: String,
    /// TLP marking definitions learned from the collection so far (id → level), so that an
    /// indicator polled after a restart still resolves a marking defined in an earlier poll.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub markings: BTreeMap<String, Tlp>,
}

impl CheckpointRecord {
    /// The record for `source` after a page whose checkpoint is `added_after`.
    pub fn new(source: &IndicatorSource, added_after: &str, now_ms: i64) -> CheckpointRecord {
        CheckpointRecord {
            server: source.server.clone(),
            api_root: source.api_root.clone(),
            collection: source.collection.clone(),
            added_after: added_after.to_string(),
            updated_at: DateTime::<Utc>::from_timestamp_millis(now_ms)
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            markings: BTreeMap::new(),
        }
    }

    /// The same record carrying the collection's learned TLP markings
    /// ([`crate::intel::indicator::Markings::learned`]).
    pub fn with_markings(mut self, markings: BTreeMap<String, Tlp>) -> CheckpointRecord {
        self.markings = markings;
        self
    }

    /// The Kafka key.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.server, self.api_root, self.collection)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn checkpoints_never_go_back() {
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            later(None, s("2024-01-01T00:00:00Z")),
            s("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            later(s("2024-01-02T00:00:00Z"), s("2024-01-01T00:00:00Z")),
            s("2024-01-02T00:00:00Z")
        );
        assert_eq!(
            later(
                s("2024-01-01T00:00:00.000001Z"),
                s("2024-01-01T00:00:00.000002Z")
            ),
            s("2024-01-01T00:00:00.000002Z")
        );
        assert_eq!(
            later(s("garbage"), s("2024-01-01T00:00:00Z")),
            s("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            later(s("2024-01-01T00:00:00Z"), s("garbage")),
            s("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            later(s("2024-01-01T00:00:00Z"), None),
            s("2024-01-01T00:00:00Z")
        );
    }

    #[test]
    fn just_before_steps_back_one_microsecond() {
        assert_eq!(
            just_before("2024-01-01T00:01:39.000000Z"),
            "2024-01-01T00:01:38.999999Z"
        );
        assert_eq!(
            just_before("2024-01-01T00:00:00Z"),
            "2023-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            just_before("2024-01-01T00:00:00.5+01:00"),
            "2023-12-31T23:00:00.499999Z"
        );
        assert_eq!(just_before("junk"), "junk");
    }

    #[test]
    fn fallback_checkpoint_is_the_newest_object() {
        let objs = vec![
            json!({"modified": "2024-01-01T00:00:00Z"}),
            json!({"modified": "2024-03-01T00:00:00.5Z"}),
            json!({"created": "2024-02-01T00:00:00Z"}),
            json!({"modified": "nonsense"}),
            json!(17),
        ];
        assert_eq!(
            newest_seen(&objs).as_deref(),
            Some("2024-03-01T00:00:00.5Z")
        );
        assert_eq!(newest_seen(&[]), None);
    }

    #[test]
    fn checkpoint_record_json() {
        let src = IndicatorSource {
            server: "s".into(),
            api_root: "https://x/api1/".into(),
            collection: "c".into(),
        };
        let r = CheckpointRecord::new(&src, "2024-01-01T00:00:00.000001Z", 0);
        assert_eq!(r.key(), src.checkpoint_key());
        assert_eq!(r.updated_at, "1970-01-01T00:00:00.000Z");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["added_after"], "2024-01-01T00:00:00.000001Z");
        assert!(v.get("markings").is_none(), "no markings, no field");
        let r = r.with_markings(BTreeMap::from([(
            "marking-definition--x".to_string(),
            Tlp::Red,
        )]));
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.contains(r#""markings":{"marking-definition--x":"red"}"#),
            "{text}"
        );
        let back: CheckpointRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        // Records written before the field existed still read.
        let old: CheckpointRecord = serde_json::from_str(
            r#"{"server":"s","api_root":"a","collection":"c","added_after":"x","updated_at":"y"}"#,
        )
        .unwrap();
        assert!(old.markings.is_empty());
    }
}
