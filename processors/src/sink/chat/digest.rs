//! Routing a batch to channels and folding each channel's events into one message: a single
//! event is shown in full; several become a summary of the top event in detail plus counts by
//! severity and host ("37 more high-severity events from host X").

use std::collections::{BTreeSet, HashMap};

use super::alert::Alert;
use super::config::ChannelRoute;
use crate::sink::event_fields::Severity;
use crate::sink::{Outcome, SinkRecord};

/// Why an event below the sink's `min_severity` is not sent.
pub const BELOW_MIN_SEVERITY: &str = "below_min_severity";

/// Picks each event's channel: the first matching route, else the default.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<ChannelRoute>,
    default: String,
    min_severity: Option<Severity>,
}

impl Router {
    /// A router sending to `default` what no route in `routes` matches, and nothing below
    /// `min_severity`.
    pub fn new(default: &str, routes: &[ChannelRoute], min_severity: Option<Severity>) -> Self {
        Router {
            routes: routes.to_vec(),
            default: default.trim().to_string(),
            min_severity,
        }
    }

    /// The channel of `alert`; `None` when it is below `min_severity` (events of unknown
    /// severity count as below when a minimum is set).
    pub fn route(&self, alert: &Alert) -> Option<&str> {
        if let Some(min) = self.min_severity {
            if alert.severity.is_none_or(|s| s < min) {
                return None;
            }
        }
        let tenant = alert.tenant.as_deref();
        let matched = self.routes.iter().find(|r| {
            let tenant_ok =
                r.tenants.is_empty() || tenant.is_some_and(|t| r.tenants.iter().any(|x| x == t));
            let severity_ok = r
                .min_severity
                .is_none_or(|min| alert.severity.is_some_and(|s| s >= min));
            tenant_ok && severity_ok
        });
        Some(matched.map_or(self.default.as_str(), |r| r.channel.trim()))
    }

    /// Every channel a message can go to.
    pub fn channels(&self) -> BTreeSet<&str> {
        let mut all: BTreeSet<&str> = self.routes.iter().map(|r| r.channel.trim()).collect();
        all.insert(self.default.as_str());
        all
    }
}

/// Events of one severity from one host, beyond the top event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryLine {
    /// Their severity (`None`: unknown).
    pub severity: Option<Severity>,
    /// Their host (`None`: unknown).
    pub host: Option<String>,
    /// How many.
    pub count: usize,
}

impl SummaryLine {
    /// `37 more high-severity events from host ws-1`.
    pub fn text(&self) -> String {
        let events = if self.count == 1 { "event" } else { "events" };
        let what = match self.severity {
            Some(s) => format!("{}-severity {events}", s.as_str()),
            None => format!("{events} of unknown severity"),
        };
        match &self.host {
            Some(h) => format!("{} more {what} from host {h}", self.count),
            None => format!("{} more {what} from an unknown host", self.count),
        }
    }
}

/// One channel's events of a batch, as one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// The channel (route destination).
    pub channel: String,
    /// Batch indices of the events, in batch order.
    pub records: Vec<usize>,
    /// The events, parallel to `records`.
    pub alerts: Vec<Alert>,
    /// Position in `alerts` of the event shown in detail: the most severe, the first of those.
    pub top: usize,
    /// Events per severity, most severe first (`None`, unknown, last).
    pub severity_counts: Vec<(Option<Severity>, usize)>,
    /// The other events by severity and host, largest groups of the most severe first, at most
    /// the configured number of lines.
    pub lines: Vec<SummaryLine>,
    /// Other events not in `lines`, and in how many severity/host groups.
    pub unlisted: (usize, usize),
}

impl Digest {
    /// The event shown in detail.
    pub fn top_alert(&self) -> &Alert {
        &self.alerts[self.top]
    }

    /// Events in this message.
    pub fn count(&self) -> usize {
        self.alerts.len()
    }

    /// `38 events: 1 critical, 30 high, 7 medium`.
    pub fn counts_text(&self) -> String {
        let parts: Vec<String> = self
            .severity_counts
            .iter()
            .map(|(s, n)| format!("{n} {}", s.map_or("unknown", Severity::as_str)))
            .collect();
        format!("{} events: {}", self.count(), parts.join(", "))
    }

    /// `and 12 more events in 4 other severity/host groups`, when some are not listed.
    pub fn unlisted_text(&self) -> Option<String> {
        let (events, groups) = self.unlisted;
        (events > 0).then(|| {
            let g = if groups == 1 { "group" } else { "groups" };
            let e = if events == 1 { "event" } else { "events" };
            format!("and {events} more {e} in {groups} other severity/host {g}")
        })
    }
}

/// What a batch becomes: one digest per channel (in order of first appearance) and the records
/// finished without a message.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// One per channel.
    pub digests: Vec<Digest>,
    /// Unreadable payloads ([`Outcome::Permanent`], `invalid_payload`) and events below the
    /// minimum severity ([`Outcome::Suppressed`]).
    pub rejected: Vec<(usize, Outcome)>,
}

fn rank(s: Option<Severity>) -> u8 {
    match s {
        None => 0,
        Some(Severity::Info) => 1,
        Some(Severity::Low) => 2,
        Some(Severity::Medium) => 3,
        Some(Severity::High) => 4,
        Some(Severity::Critical) => 5,
    }
}

/// Reads, routes and groups `batch`; `summary_lines` bounds [`Digest::lines`].
pub fn prepare(batch: &[SinkRecord], router: &Router, summary_lines: usize) -> Prepared {
    let mut rejected = Vec::new();
    let mut by_channel: Vec<(String, Vec<(usize, Alert)>)> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    for (i, record) in batch.iter().enumerate() {
        let alert = match Alert::from_record(record) {
            Ok(a) => a,
            Err(e) => {
                rejected.push((i, Outcome::permanent("invalid_payload", None, e)));
                continue;
            }
        };
        let Some(channel) = router.route(&alert) else {
            rejected.push((i, Outcome::suppressed(BELOW_MIN_SEVERITY)));
            continue;
        };
        let s = *slot.entry(channel.to_string()).or_insert_with(|| {
            by_channel.push((channel.to_string(), Vec::new()));
            by_channel.len() - 1
        });
        by_channel[s].1.push((i, alert));
    }
    let digests = by_channel
        .into_iter()
        .map(|(channel, events)| digest(channel, events, summary_lines))
        .collect();
    Prepared { digests, rejected }
}

fn digest(channel: String, events: Vec<(usize, Alert)>, summary_lines: usize) -> Digest {
    let (records, alerts): (Vec<usize>, Vec<Alert>) = events.into_iter().unzip();
    // Most severe; the first of those (max_by_key keeps the last maximum, so compare reversed
    // positions).
    let top = alerts
        .iter()
        .enumerate()
        .max_by_key(|(i, a)| (rank(a.severity), std::cmp::Reverse(*i)))
        .map_or(0, |(i, _)| i);
    let mut sev: HashMap<u8, (Option<Severity>, usize)> = HashMap::new();
    for a in &alerts {
        sev.entry(rank(a.severity)).or_insert((a.severity, 0)).1 += 1;
    }
    let mut severity_counts: Vec<(u8, (Option<Severity>, usize))> = sev.into_iter().collect();
    severity_counts.sort_by_key(|(rank, _)| std::cmp::Reverse(*rank));
    let severity_counts = severity_counts.into_iter().map(|(_, v)| v).collect();

    // The others by (severity, host), in order of first appearance, then sorted.
    let mut groups: Vec<SummaryLine> = Vec::new();
    let mut group_of: HashMap<(u8, Option<String>), usize> = HashMap::new();
    for (i, a) in alerts.iter().enumerate() {
        if i == top {
            continue;
        }
        let key = (rank(a.severity), a.host.clone());
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push(SummaryLine {
                severity: a.severity,
                host: a.host.clone(),
                count: 0,
            });
            groups.len() - 1
        });
        groups[g].count += 1;
    }
    // Stable: equal groups keep their order of first appearance.
    groups.sort_by(|a, b| {
        rank(b.severity)
            .cmp(&rank(a.severity))
            .then(b.count.cmp(&a.count))
    });
    let shown = groups.len().min(summary_lines);
    let rest = &groups[shown..];
    let unlisted = (rest.iter().map(|g| g.count).sum(), rest.len());
    groups.truncate(shown);
    Digest {
        channel,
        records,
        alerts,
        top,
        severity_counts,
        lines: groups,
        unlisted,
    }
}
