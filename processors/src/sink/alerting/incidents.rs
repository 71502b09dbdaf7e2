//! The open incidents an alert sink knows about, and how a batch becomes triggers, resolves and
//! suppressions.
//!
//! An incident is identified by its [`IncidentKey`] (PagerDuty: route and dedup key, because
//! PagerDuty deduplicates per routing key; OpsGenie: the alias). It is **open** once a trigger
//! for it was accepted (only [`IncidentBook::triggered`], called from `classify` on success,
//! opens one), and closed when a resolve for it was accepted. Records for an open incident are
//! suppressed (`incident_open`) and refresh its `last_seen`; the sink's tick resolves incidents
//! quiet for longer than the window.
//!
//! The sinks run one batch at a time (`max_concurrency() = Some(1)`), but ticks run beside the
//! batches: an incident whose quiet-window resolve is in flight is *closing*. A record for it
//! is sent as a new trigger (the resolve was sent first, so PagerDuty/OpsGenie open a new
//! incident for it); if that trigger is accepted, the incident stays open when the resolve
//! comes back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sink::{Outcome, SinkError};

/// Suppression reason: the record's incident is already open.
pub const INCIDENT_OPEN: &str = "incident_open";
/// Suppression reason: a resolution event for an incident that is not open.
pub const NO_OPEN_INCIDENT: &str = "no_open_incident";
/// Suppression reason: the event's severity is below the sink's `min_severity`.
pub const BELOW_MIN_SEVERITY: &str = "below_min_severity";

/// Version of the state file layout.
const STATE_VERSION: u32 = 1;

/// Identity of an incident.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IncidentKey {
    /// The route it was sent through (PagerDuty route name, `default`); empty where the target
    /// has one namespace (OpsGenie aliases).
    pub route: String,
    /// The dedup key or alias.
    pub key: String,
}

/// What secflow remembers about an open incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// When its trigger was sent (epoch ms).
    pub triggered_at_ms: i64,
    /// When a record for it was last seen (epoch ms).
    pub last_seen_ms: i64,
    /// Records for it: the ones in its trigger plus the suppressed ones.
    pub occurrences: u64,
    /// A quiet-window resolve is in flight since this time (not saved: after a restart the
    /// next tick decides again).
    #[serde(skip)]
    pub closing_since_ms: Option<i64>,
    /// A trigger was accepted while the resolve was in flight: keep it open when the resolve
    /// comes back.
    #[serde(skip)]
    pub reopened: bool,
}

/// What a record asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// The record is an alert (at or above the threshold) for this incident.
    Trigger(IncidentKey),
    /// The record says this incident is resolved.
    Resolve(IncidentKey),
    /// The record is finished without a request (below the threshold, unreadable).
    Done(Outcome),
}

/// Whether an action opens or closes an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Open (PagerDuty `trigger`, OpsGenie create).
    Trigger,
    /// Close (PagerDuty `resolve`, OpsGenie close).
    Resolve,
}

/// One request to make: its kind, its incident, and the records it carries (indices into the
/// batch, in batch order; the first is the one its content is built from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Trigger or resolve.
    pub kind: ActionKind,
    /// The incident.
    pub key: IncidentKey,
    /// The records, in batch order.
    pub records: Vec<usize>,
}

/// The actions for a batch and the records finished without one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Requests to make, in batch order (a trigger before the resolve that follows it).
    pub actions: Vec<Action>,
    /// Records finished without a request.
    pub done: Vec<(usize, Outcome)>,
}

/// The open incidents of one sink.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncidentBook {
    open: BTreeMap<IncidentKey, Incident>,
    /// When the last trigger for a key was built (epoch ms), for `triggered_at` once accepted
    /// (`classify` gets no clock).
    built_at: BTreeMap<IncidentKey, i64>,
    /// The latest time the book was given (a plan or a tick): the fallback for a trigger whose
    /// build time is gone (a second trigger for a key in one batch, after a resolve).
    latest_ms: i64,
}

/// The saved form.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    version: u32,
    incidents: Vec<SavedIncident>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedIncident {
    #[serde(flatten)]
    key: IncidentKey,
    #[serde(flatten)]
    incident: Incident,
}

/// Where a key stands while a batch is planned.
#[derive(Debug, Clone, Copy)]
enum KeyState {
    /// Open before this batch (and not closing).
    Open,
    /// Not open.
    Closed,
    /// Action `i` of this plan triggers it.
    Triggering(usize),
    /// Action `i` of this plan resolves it.
    Resolving(usize),
}

impl IncidentBook {
    /// No incidents.
    pub fn new() -> Self {
        IncidentBook::default()
    }

    /// The open incidents.
    pub fn open(&self) -> &BTreeMap<IncidentKey, Incident> {
        &self.open
    }

    /// Whether `key` is open and not closing.
    pub fn is_open(&self, key: &IncidentKey) -> bool {
        self.open
            .get(key)
            .is_some_and(|i| i.closing_since_ms.is_none())
    }

    /// Plans a batch: `intents` in batch order (record index, intent). Records for open
    /// incidents are suppressed here and refresh `last_seen` (`now_ms`); records sharing an
    /// incident share one trigger; a resolution after a trigger in the same batch resolves
    /// it. Marks every planned trigger as built at `now_ms`.
    pub fn plan(&mut self, intents: Vec<(usize, Intent)>, now_ms: i64) -> Plan {
        self.latest_ms = self.latest_ms.max(now_ms);
        let mut plan = Plan::default();
        let mut states: BTreeMap<IncidentKey, KeyState> = BTreeMap::new();
        for (idx, intent) in intents {
            let (is_trigger, key) = match intent {
                Intent::Done(outcome) => {
                    plan.done.push((idx, outcome));
                    continue;
                }
                Intent::Trigger(key) => (true, key),
                Intent::Resolve(key) => (false, key),
            };
            let state = *states.entry(key.clone()).or_insert_with(|| {
                if self.is_open(&key) {
                    KeyState::Open
                } else {
                    KeyState::Closed
                }
            });
            let new_state = match (is_trigger, state) {
                (true, KeyState::Open) => {
                    if let Some(inc) = self.open.get_mut(&key) {
                        inc.last_seen_ms = inc.last_seen_ms.max(now_ms);
                        inc.occurrences += 1;
                    }
                    plan.done.push((idx, Outcome::suppressed(INCIDENT_OPEN)));
                    state
                }
                (true, KeyState::Triggering(a)) | (false, KeyState::Resolving(a)) => {
                    plan.actions[a].records.push(idx);
                    state
                }
                (true, KeyState::Closed | KeyState::Resolving(_)) => {
                    plan.actions.push(Action {
                        kind: ActionKind::Trigger,
                        key: key.clone(),
                        records: vec![idx],
                    });
                    self.built_at.insert(key.clone(), now_ms);
                    KeyState::Triggering(plan.actions.len() - 1)
                }
                (false, KeyState::Open | KeyState::Triggering(_)) => {
                    plan.actions.push(Action {
                        kind: ActionKind::Resolve,
                        key: key.clone(),
                        records: vec![idx],
                    });
                    KeyState::Resolving(plan.actions.len() - 1)
                }
                (false, KeyState::Closed) => {
                    plan.done.push((idx, Outcome::suppressed(NO_OPEN_INCIDENT)));
                    state
                }
            };
            states.insert(key, new_state);
        }
        plan
    }

    /// A trigger for `key` carrying `records` records was accepted: the incident is open.
    pub fn triggered(&mut self, key: &IncidentKey, records: usize) {
        let at = self.built_at.remove(key).unwrap_or(self.latest_ms);
        let n = records as u64;
        match self.open.get_mut(key) {
            Some(inc) => {
                // Accepted while a quiet-window resolve was in flight: a new incident.
                inc.reopened = inc.closing_since_ms.is_some();
                inc.triggered_at_ms = at.max(inc.triggered_at_ms);
                inc.last_seen_ms = at.max(inc.last_seen_ms);
                inc.occurrences += n;
            }
            None => {
                self.open.insert(
                    key.clone(),
                    Incident {
                        triggered_at_ms: at,
                        last_seen_ms: at,
                        occurrences: n,
                        closing_since_ms: None,
                        reopened: false,
                    },
                );
            }
        }
    }

    /// A trigger for `key` failed: forget when it was built.
    pub fn trigger_failed(&mut self, key: &IncidentKey) {
        self.built_at.remove(key);
    }

    /// A resolve for `key` (from a resolution event) was accepted: the incident is closed.
    pub fn resolved(&mut self, key: &IncidentKey) {
        self.open.remove(key);
        self.built_at.remove(key);
    }

    /// Open incidents with no record for `quiet_ms` at `now_ms` and no resolve in flight, at
    /// most `limit`, oldest first; each is marked closing.
    pub fn start_quiet_resolves(
        &mut self,
        now_ms: i64,
        quiet_ms: i64,
        limit: usize,
    ) -> Vec<IncidentKey> {
        self.latest_ms = self.latest_ms.max(now_ms);
        let mut quiet: Vec<(&IncidentKey, &Incident)> = self
            .open
            .iter()
            .filter(|(_, i)| i.closing_since_ms.is_none())
            .filter(|(_, i)| now_ms.saturating_sub(i.last_seen_ms) >= quiet_ms)
            .collect();
        quiet.sort_by_key(|(k, i)| (i.last_seen_ms, (*k).clone()));
        let keys: Vec<IncidentKey> = quiet
            .into_iter()
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            if let Some(inc) = self.open.get_mut(k) {
                inc.closing_since_ms = Some(now_ms);
                inc.reopened = false;
            }
        }
        keys
    }

    /// The quiet-window resolve of `key` came back: `accepted` closes the incident (unless a
    /// trigger reopened it meanwhile); otherwise it stays open and the next tick tries again.
    /// `forget` drops it either way (the target refuses that resolve for good).
    pub fn quiet_resolve_done(&mut self, key: &IncidentKey, accepted: bool, forget: bool) {
        let Some(inc) = self.open.get_mut(key) else {
            return;
        };
        let reopened = inc.reopened;
        inc.closing_since_ms = None;
        inc.reopened = false;
        if (accepted || forget) && !reopened {
            self.open.remove(key);
            self.built_at.remove(key);
        }
    }

    /// The saved form (JSON, stable order), for [`crate::sink::Sink::snapshot`].
    pub fn snapshot(&self) -> Vec<u8> {
        let saved = Saved {
            version: STATE_VERSION,
            incidents: self
                .open
                .iter()
                .map(|(k, i)| SavedIncident {
                    key: k.clone(),
                    incident: i.clone(),
                })
                .collect(),
        };
        serde_json::to_vec(&saved).unwrap_or_default()
    }

    /// Loads a saved form, replacing what is known.
    ///
    /// # Errors
    /// [`SinkError::Config`] when the bytes are not a saved incident book of this version.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        let saved: Saved = serde_json::from_slice(bytes)
            .map_err(|e| SinkError::Config(format!("not an incident state file: {e}")))?;
        if saved.version != STATE_VERSION {
            return Err(SinkError::Config(format!(
                "incident state version {} (this secflow reads {STATE_VERSION})",
                saved.version
            )));
        }
        self.open = saved
            .incidents
            .into_iter()
            .map(|s| (s.key, s.incident))
            .collect();
        self.built_at.clear();
        Ok(())
    }
}
