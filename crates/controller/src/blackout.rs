//! Blackout windows: "no runs on this MA between these times". Pure: the
//! caller passes the time in, asks [`Blackouts::active_at`] to fill
//! [`Slot::in_blackout`](crate::Slot) and sleeps until
//! [`Blackouts::next_change`] instead of polling.
//!
//! A window is either a daily one (`start`, `end`, optional `days`) or a
//! cron one (`cron`, `duration`), read in an IANA time zone (default UTC).
//! Each occurrence is a half-open interval `[start, end)` of instants.
//!
//! Rules (each has a test):
//! - `days` names the day a window **starts**; a window whose `end` is at or
//!   before its `start` wraps past midnight (`22:00`–`02:30` on `fri` runs
//!   from Friday 22:00 to Saturday 02:30; `start == end` is 24 hours).
//!   `end = "24:00"` is midnight at the end of the day.
//! - **DST gap** (spring forward): a start or end time that does not exist
//!   that day is read as the first instant after the gap (02:30 in
//!   Europe/Paris on the last Sunday of March is 03:00 CEST). A window that
//!   lies wholly in the gap does not happen that day: the clock never shows
//!   its times.
//! - **DST overlap** (fall back): a time that the clock shows twice starts a
//!   window at its **first** occurrence and ends one at its **last**, so the
//!   window covers every moment the clock shows a time inside it (a window
//!   `01:30`–`02:30` in Paris on the last Sunday of October lasts 2 hours).
//! - Cron windows start at croner's slots (the schedule trigger's DST rules)
//!   and last `duration` of real time.
//! - Overlapping or touching occurrences form one blackout: `next_change`
//!   gives the instant the status really changes.
//!
//! This file computes occurrences; `parse` reads and checks a window's
//! configuration.

mod parse;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};

/// One entry of `[ma.controller] blackouts = [...]`:
/// `{ start = "22:00", end = "02:30", days = ["sat", "sun"], time_zone = "Europe/Paris" }`
/// or `{ cron = "0 22 * * 6", duration = "3h", time_zone = "Europe/Paris" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackoutConfig {
    /// Local time the window starts, `"HH:MM"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Local time the window ends, `"HH:MM"` (or `"24:00"`); at or before
    /// `start` means the next day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Days the window starts on (`mon` … `sun`, full names, ranges such as
    /// `mon-fri`, or `weekdays` / `weekends`); default every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<String>>,
    /// A cron expression (as in schedule triggers) giving when windows start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// How long a cron window lasts (`"3h"`, `"90m"`, `"1h30m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// IANA time zone the times are read in; default `UTC`.
    #[serde(default = "default_time_zone", alias = "timezone")]
    pub time_zone: String,
}

fn default_time_zone() -> String {
    "UTC".into()
}

impl Default for BlackoutConfig {
    /// Nothing set, in UTC (not a valid window until times or a cron are set).
    fn default() -> Self {
        BlackoutConfig {
            start: None,
            end: None,
            days: None,
            cron: None,
            duration: None,
            time_zone: default_time_zone(),
        }
    }
}

/// A validated blackout window.
#[derive(Clone, Debug)]
pub struct BlackoutWindow {
    kind: Kind,
    tz: Tz,
}

#[derive(Clone, Debug)]
enum Kind {
    Daily {
        start: NaiveTime,
        end: NaiveTime,
        /// Days between the start's date and the end's date (0 or 1).
        end_days: i64,
        /// Indexed by `Weekday::num_days_from_monday`.
        days: [bool; 7],
    },
    Cron {
        cron: Box<Cron>,
        duration: Duration,
    },
}

/// One occurrence: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Occurrence {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// How far (in days) a daily window's occurrences are searched; a window
/// on one day a week that falls in a DST gap is found again within it.
const DAILY_SEARCH_DAYS: i64 = 400;
/// Occurrences merged at most when looking for the end of a blackout; a
/// window that never ends (every day, 24 hours) has no next change.
const MAX_MERGED: usize = 2_000;

impl BlackoutWindow {
    /// The time zone the window is read in.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Whether `now` is inside one of the window's occurrences.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.latest_at_or_before(now).is_some_and(|o| o.end > now)
    }

    /// The first instant after `now` at which [`active_at`](Self::active_at)
    /// changes: the end of the blackout `now` is in, or the start of the next
    /// one. `None` when there is no change in sight (a window that never
    /// ends, or a cron expression with no further slot).
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Some(current) = self.latest_at_or_before(now).filter(|o| o.end > now) else {
            return self.next_after(now).map(|o| o.start);
        };
        // Occurrences starting before the current blackout ends extend it.
        let mut end = current.end;
        let mut from = current.start;
        for _ in 0..MAX_MERGED {
            match self.next_after(from) {
                Some(next) if next.start <= end => {
                    end = end.max(next.end);
                    from = next.start;
                }
                _ => return Some(end),
            }
        }
        None
    }

    /// The latest occurrence starting at or before `t` (ends are monotone
    /// in starts, so it is the one that ends last).
    fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<Occurrence> {
        match &self.kind {
            Kind::Cron { cron, duration } => cron
                .find_previous_occurrence(&t.with_timezone(&self.tz), true)
                .ok()
                .map(|s| {
                    let start = s.with_timezone(&Utc);
                    Occurrence {
                        start,
                        end: start + *duration,
                    }
                }),
            Kind::Daily { .. } => {
                let today = t.with_timezone(&self.tz).date_naive();
                (-DAILY_SEARCH_DAYS..=1)
                    .rev()
                    .filter_map(|offset| self.daily(today + Duration::days(offset)))
                    .find(|o| o.start <= t)
            }
        }
    }

    /// The earliest non-empty occurrence starting strictly after `t`.
    fn next_after(&self, t: DateTime<Utc>) -> Option<Occurrence> {
        match &self.kind {
            Kind::Cron { cron, duration } => cron
                .find_next_occurrence(&t.with_timezone(&self.tz), false)
                .ok()
                .map(|s| {
                    let start = s.with_timezone(&Utc);
                    Occurrence {
                        start,
                        end: start + *duration,
                    }
                }),
            Kind::Daily { .. } => {
                let today = t.with_timezone(&self.tz).date_naive();
                (-1..=DAILY_SEARCH_DAYS)
                    .filter_map(|offset| self.daily(today + Duration::days(offset)))
                    .find(|o| o.start > t && o.end > o.start)
            }
        }
    }

    /// The daily window's occurrence starting on local `date`, if `date` is
    /// one of its days.
    fn daily(&self, date: NaiveDate) -> Option<Occurrence> {
        let Kind::Daily {
            start,
            end,
            end_days,
            days,
        } = &self.kind
        else {
            return None;
        };
        if !days[date.weekday().num_days_from_monday() as usize] {
            return None;
        }
        let start = resolve(self.tz, date, *start, Pick::First)?;
        let end = resolve(self.tz, date + Duration::days(*end_days), *end, Pick::Last)?;
        Some(Occurrence {
            start,
            end: end.max(start),
        })
    }
}

#[derive(Clone, Copy)]
enum Pick {
    First,
    Last,
}

/// A local date and time as an instant: in a gap, the first instant after
/// it; in an overlap, the first or last of the two.
fn resolve(tz: Tz, date: NaiveDate, time: NaiveTime, pick: Pick) -> Option<DateTime<Utc>> {
    let local = date.and_time(time);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, last) => Some(match pick {
            Pick::First => first.with_timezone(&Utc),
            Pick::Last => last.with_timezone(&Utc),
        }),
        LocalResult::None => {
            // The first local minute after the gap is where the clock jumped
            // to; gaps are whole minutes and at most a day (Samoa, 2011).
            (1..=26 * 60).find_map(|minutes| {
                tz.from_local_datetime(&(local + Duration::minutes(minutes)))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            })
        }
    }
}

/// All the blackout windows of one MA: blacked out when any window is.
#[derive(Clone, Debug, Default)]
pub struct Blackouts(pub Vec<BlackoutWindow>);

/// Status changes followed at most when windows' changes cancel out.
const MAX_UNION_STEPS: usize = 1_000;

impl Blackouts {
    /// Validates every window; each error names the window (`blackouts[1]`).
    pub fn from_configs(configs: &[BlackoutConfig]) -> Result<Blackouts, Vec<String>> {
        let mut windows = Vec::with_capacity(configs.len());
        let mut errors = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            match BlackoutWindow::from_config(config) {
                Ok(window) => windows.push(window),
                Err(e) => errors.push(format!("blackouts[{i}]: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(Blackouts(windows))
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any window is active at `now`.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.0.iter().any(|w| w.active_at(now))
    }

    /// The first instant after `now` at which [`active_at`](Self::active_at)
    /// changes (one window ending while another goes on is no change);
    /// `None` when there is none in sight.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let status = self.active_at(now);
        if !status {
            // Every window is inactive: the first to start starts the blackout.
            return self.0.iter().filter_map(|w| w.next_change(now)).min();
        }
        let mut t = now;
        for _ in 0..MAX_UNION_STEPS {
            let mut next = None::<DateTime<Utc>>;
            for w in &self.0 {
                match (w.active_at(t), w.next_change(t)) {
                    // An active window that never ends: neither does the union.
                    (true, None) => return None,
                    (_, Some(change)) => next = Some(next.map_or(change, |n| n.min(change))),
                    (false, None) => {}
                }
            }
            let next = next?;
            if self.active_at(next) != status {
                return Some(next);
            }
            t = next;
        }
        None
    }
}
