//! The schedule trigger: a cron expression read in an IANA time zone.
//!
//! Rules (each has a test in `schedule/tests.rs`):
//! - **DST gap** (spring forward): a fixed-time slot that does not exist that
//!   day (02:30 in Europe/Paris on the last Sunday of March) fires **once, at
//!   the first instant after the gap** (03:00 local). Wildcard or stepped
//!   hours (`0 * * * *`) simply have no slot in the missing hour.
//! - **DST overlap** (fall back): a fixed-time slot in the repeated hour fires
//!   **once, at its first occurrence** (02:30 CEST, not again at 02:30 CET).
//!   A wildcard-hour schedule fires on every real hour, both 02:00s included:
//!   they are an hour apart.
//! - **Never twice for one slot**: the last fired slot (UTC) is kept in the
//!   trigger's persisted [`TriggerState`]; a slot at or before it is never
//!   fired again, even when the wall clock is moved backwards.
//! - **Catch-up** (`catch_up = true`): at start, if a slot passed after the
//!   persisted last fired slot while the service was down, fire once for the
//!   most recent such slot, never more. Without a persisted slot (first start)
//!   there is nothing to catch up. Without `catch_up`, missed slots are skipped.
//! - While running, if several slots pass at once (suspend, clock jumped
//!   forward), one request is made, for the most recent slot.
//!
//! The slot computations are croner's (OCPS rules for DST); the decisions are
//! pure functions of (schedule, state, now); the runner re-reads the wall
//! clock at least every minute so clock corrections are followed.

use crate::TriggerState;
use crate::clock::{Clock, wait_until};
use crate::config::{Ask, Common, check_profile, default_profile, key_error};
use crate::sink::RequestSink;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[cfg(test)]
mod tests;

/// `{ type = "schedule", name = "hr-nightly", cron = "0 2 * * *", timezone = "Europe/Paris", profile = "full-import", catch_up = true }`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_profile")]
    pub profile: String,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub run_immediate: bool,
    /// Five fields (minute hour day-of-month month day-of-week), optionally a
    /// leading seconds field and a trailing year; `@daily`-style nicknames.
    pub cron: String,
    /// IANA time zone name (`Europe/Paris`, `America/New_York`, `UTC`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Fire once at start for a slot missed while the service was down.
    #[serde(default)]
    pub catch_up: bool,
}

fn default_timezone() -> String {
    "UTC".into()
}

/// A cron expression in a time zone: computes slots, as UTC instants.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

/// A slot computation failed (croner's search limit).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot compute the schedule's slots: {0}")]
pub struct SlotError(String);

impl Schedule {
    /// Parses `cron` and `timezone`; errors say which one is wrong and why.
    pub fn parse(cron: &str, timezone: &str) -> Result<Schedule, (&'static str, String)> {
        let parsed = Cron::from_str(cron)
            .map_err(|e| ("cron", format!("invalid cron expression `{cron}`: {e}")))?;
        let tz = Tz::from_str(timezone).map_err(|e| {
            (
                "timezone",
                format!("unknown time zone `{timezone}` ({e}); use an IANA name such as Europe/Paris or UTC"),
            )
        })?;
        Ok(Schedule { cron: parsed, tz })
    }

    /// The first slot strictly after `t`.
    pub fn next_slot_after(&self, t: DateTime<Utc>) -> Result<DateTime<Utc>, SlotError> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| SlotError(e.to_string()))
    }

    /// The latest slot at or before `t`.
    pub fn last_slot_at_or_before(&self, t: DateTime<Utc>) -> Result<DateTime<Utc>, SlotError> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| SlotError(e.to_string()))
    }

    /// Slots are searched after this instant: the later of when the trigger
    /// was armed and the last fired slot.
    fn horizon(state: &TriggerState, armed_at: DateTime<Utc>) -> DateTime<Utc> {
        state
            .last_fired_slot
            .map_or(armed_at, |last| last.max(armed_at))
    }

    /// The slot to fire now, if one is due: a slot after both `armed_at` and
    /// the last fired slot, at or before `now` (the most recent one when
    /// several are due).
    pub fn due_slot(
        &self,
        state: &TriggerState,
        armed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SlotError> {
        let horizon = Self::horizon(state, armed_at);
        let first = self.next_slot_after(horizon)?;
        if first > now {
            return Ok(None);
        }
        let latest = self.last_slot_at_or_before(now)?;
        Ok(Some(if latest > horizon {
            latest.max(first)
        } else {
            first
        }))
    }

    /// When the next slot is due (the runner sleeps until then).
    pub fn next_wake(
        &self,
        state: &TriggerState,
        armed_at: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, SlotError> {
        self.next_slot_after(Self::horizon(state, armed_at))
    }

    /// At start-up: the one slot to catch up, if a slot passed after the
    /// persisted last fired slot. `None` without a persisted slot.
    pub fn catch_up_slot(
        &self,
        state: &TriggerState,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SlotError> {
        let Some(last) = state.last_fired_slot else {
            return Ok(None);
        };
        let latest = match self.last_slot_at_or_before(now) {
            Ok(latest) => latest,
            // No slot ever before now: nothing was missed.
            Err(_) => return Ok(None),
        };
        Ok((latest > last).then_some(latest))
    }

    /// The slot in the schedule's own time zone, for messages.
    pub fn local(&self, slot: DateTime<Utc>) -> String {
        slot.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }
}

/// A validated schedule trigger.
#[derive(Clone, Debug)]
pub struct ScheduleTrigger {
    pub ask: Ask,
    pub schedule: Schedule,
    pub catch_up: bool,
}

impl ScheduleConfig {
    pub fn validate(
        &self,
        ma: &str,
        index: usize,
    ) -> Result<ScheduleTrigger, crate::TriggerConfigError> {
        let kind = "schedule";
        check_profile(ma, index, kind, &self.profile)?;
        let schedule = Schedule::parse(&self.cron, &self.timezone)
            .map_err(|(key, msg)| key_error(ma, index, kind, key, msg))?;
        if let Err(e) = schedule.next_slot_after(Utc::now()) {
            return Err(key_error(
                ma,
                index,
                kind,
                "cron",
                format!("`{}` never matches: {e}", self.cron),
            ));
        }
        let details = format!("{}, {}", self.cron.trim(), self.timezone);
        let common = Common {
            profile: &self.profile,
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
        };
        Ok(ScheduleTrigger {
            ask: Ask::new(ma, kind, self.name.as_deref(), &details, common),
            schedule,
            catch_up: self.catch_up,
        })
    }
}

/// The runner re-reads the wall clock at least this often.
const MAX_NAP: Duration = Duration::from_secs(60);

impl ScheduleTrigger {
    /// Fires slots until cancelled or the sink closes. `state` is shared with
    /// the owner so a stop/start resumes from the last fired slot.
    pub async fn run(
        self,
        state: Arc<Mutex<TriggerState>>,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn RequestSink>,
        cancel: CancellationToken,
    ) {
        let armed_at = clock.now();
        if self.catch_up {
            let current = snapshot(&state);
            match self.schedule.catch_up_slot(&current, armed_at) {
                Ok(Some(slot)) => {
                    let note = format!("catch-up of missed slot {}", self.schedule.local(slot));
                    if self.fire(slot, &note, &state, sink.as_ref()).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => self.report(sink.as_ref(), &clock, &e),
            }
        }
        loop {
            let now = clock.now();
            let current = snapshot(&state);
            let wake = match self.schedule.due_slot(&current, armed_at, now) {
                Ok(Some(slot)) => {
                    if self.fire(slot, "", &state, sink.as_ref()).is_err() {
                        return;
                    }
                    continue;
                }
                Ok(None) => self.schedule.next_wake(&current, armed_at),
                Err(e) => Err(e),
            };
            let delay = match wake {
                Ok(at) => wait_until(now, at, MAX_NAP),
                Err(e) => {
                    self.report(sink.as_ref(), &clock, &e);
                    MAX_NAP
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn fire(
        &self,
        slot: DateTime<Utc>,
        note: &str,
        state: &Mutex<TriggerState>,
        sink: &dyn RequestSink,
    ) -> Result<(), crate::SinkClosed> {
        let updated = {
            let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
            guard.last_fired_slot = Some(slot);
            guard.clone()
        };
        tracing::info!(ma = %self.ask.ma, trigger = %self.ask.trigger, slot = %self.schedule.local(slot), "schedule slot due");
        sink.state_changed(&self.ask.ma, &self.ask.key, &updated);
        let request = if note.is_empty() {
            self.ask.request()
        } else {
            self.ask.request_with_note(note)
        };
        sink.request(request)
    }

    fn report(&self, sink: &dyn RequestSink, clock: &Arc<dyn Clock>, e: &SlotError) {
        sink.error(crate::TriggerError {
            ma: self.ask.ma.clone(),
            trigger: self.ask.trigger.clone(),
            message: e.to_string(),
            stopped: false,
            at: clock.now(),
        });
    }
}

fn snapshot(state: &Mutex<TriggerState>) -> TriggerState {
    state.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
