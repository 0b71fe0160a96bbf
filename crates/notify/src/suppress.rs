//! Suppression of repeated failures: pure (the clock is passed in) and
//! serialisable, so the service can persist it across restarts.
//!
//! Per [`SuppressionKey`] (one ongoing problem, e.g. an MA and run
//! profile), the first failure is notified; repeats of the same failure
//! (same fingerprint, e.g. the same status and first error type) are
//! suppressed until `reminder_after` has passed since the last notice, and
//! the next repeat after that goes out as a reminder. A different failure
//! under the same key is notified at once. Clearing a key (a successful run)
//! forgets it, so the next failure is notified again. Reminders ride on
//! repeats: no timer runs.

use crate::event::{EventKind, SuppressionKey};
use autosync_model::RunStatus;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What is known of one ongoing problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What identifies the current failure (see [`crate::Event::suppression`]).
    pub fingerprint: String,
    /// When the problem was first seen (across changes of fingerprint).
    pub failing_since: DateTime<Utc>,
    /// When the current fingerprint was first seen.
    pub first_seen: DateTime<Utc>,
    /// Occurrences since `failing_since`.
    pub occurrences: u64,
    /// When a notice last went out; `None` when its delivery failed (the
    /// next repeat is sent again).
    pub last_sent: Option<DateTime<Utc>>,
    /// Occurrences suppressed since the last notice.
    pub suppressed: u64,
    /// Whether a notice of this problem reached a channel: only then is
    /// its end worth a `recovered` notice (a recovery from a failure no
    /// one heard of says nothing). Entries saved before this was kept are
    /// taken as notified.
    #[serde(default = "notified_before")]
    pub delivered: bool,
}

fn notified_before() -> bool {
    true
}

impl Entry {
    /// The run status of a run-failed or ma-failed fingerprint.
    pub fn status(&self) -> Option<RunStatus> {
        self.fingerprint
            .split('|')
            .next()
            .and_then(RunStatus::parse)
    }
}

/// What to do with one occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Send {
        /// A repeat sent because `reminder_after` passed.
        reminder: bool,
        /// Repeats suppressed since the previous notice.
        suppressed: u64,
        /// When this failure was first seen.
        first_seen: DateTime<Utc>,
    },
    Suppress {
        last_sent: DateTime<Utc>,
        /// Repeats suppressed since then, this one included.
        suppressed: u64,
    },
}

/// Every ongoing problem, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StateRepr", into = "StateRepr")]
pub struct SuppressionState {
    entries: BTreeMap<SuppressionKey, Entry>,
}

/// The serialised form: a list (keys are structs).
#[derive(Serialize, Deserialize)]
struct StateRepr {
    entries: Vec<KeyedEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyedEntry {
    key: SuppressionKey,
    entry: Entry,
}

impl From<StateRepr> for SuppressionState {
    fn from(r: StateRepr) -> Self {
        SuppressionState {
            entries: r.entries.into_iter().map(|e| (e.key, e.entry)).collect(),
        }
    }
}

impl From<SuppressionState> for StateRepr {
    fn from(s: SuppressionState) -> Self {
        StateRepr {
            entries: s
                .entries
                .into_iter()
                .map(|(key, entry)| KeyedEntry { key, entry })
                .collect(),
        }
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl SuppressionState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &SuppressionKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&SuppressionKey, &Entry)> {
        self.entries.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records one occurrence of a failure and says whether to send it.
    /// A `Send` is recorded as sent at `now`; call
    /// [`SuppressionState::undelivered`] if no channel delivered it.
    pub fn observe(
        &mut self,
        key: &SuppressionKey,
        fingerprint: &str,
        now: DateTime<Utc>,
        reminder_after: Duration,
    ) -> Decision {
        let Some(e) = self.entries.get_mut(key) else {
            self.entries.insert(
                key.clone(),
                Entry {
                    fingerprint: fingerprint.to_owned(),
                    failing_since: now,
                    first_seen: now,
                    occurrences: 1,
                    last_sent: Some(now),
                    suppressed: 0,
                    delivered: false,
                },
            );
            return Decision::Send {
                reminder: false,
                suppressed: 0,
                first_seen: now,
            };
        };
        e.occurrences = e.occurrences.saturating_add(1);
        if e.fingerprint != fingerprint {
            e.fingerprint = fingerprint.to_owned();
            e.first_seen = now;
            e.last_sent = Some(now);
            e.suppressed = 0;
            return Decision::Send {
                reminder: false,
                suppressed: 0,
                first_seen: now,
            };
        }
        match e.last_sent {
            Some(last) if now.signed_duration_since(last) < delta(reminder_after) => {
                e.suppressed = e.suppressed.saturating_add(1);
                Decision::Suppress {
                    last_sent: last,
                    suppressed: e.suppressed,
                }
            }
            last => {
                let suppressed = e.suppressed;
                e.last_sent = Some(now);
                e.suppressed = 0;
                Decision::Send {
                    reminder: last.is_some(),
                    suppressed,
                    first_seen: e.first_seen,
                }
            }
        }
    }

    /// The last `Send` of `key` reached no one: the next repeat is sent.
    /// A notice of `key`'s problem reached a channel; returns whether
    /// that is news (the state changed).
    pub fn delivered(&mut self, key: &SuppressionKey) -> bool {
        match self.entries.get_mut(key) {
            Some(e) if !e.delivered => {
                e.delivered = true;
                true
            }
            _ => false,
        }
    }

    pub fn undelivered(&mut self, key: &SuppressionKey) {
        if let Some(e) = self.entries.get_mut(key) {
            e.last_sent = None;
        }
    }

    /// Forgets one problem (it cleared); returns what was known of it.
    pub fn clear(&mut self, key: &SuppressionKey) -> Option<Entry> {
        self.entries.remove(key)
    }

    /// A run of `ma` / `profile` ended well: forgets its run failures and
    /// its retries-exhausted failure. Returns what was cleared.
    pub fn clear_run(&mut self, ma: &str, profile: &str) -> Vec<(SuppressionKey, Entry)> {
        [EventKind::RunFailed, EventKind::MaFailed]
            .into_iter()
            .filter_map(|kind| {
                let key = SuppressionKey::new(kind, ma, profile);
                self.entries.remove(&key).map(|e| (key, e))
            })
            .collect()
    }
}
