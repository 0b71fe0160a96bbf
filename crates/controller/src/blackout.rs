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

use autosync_model::{duration, suggest};
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

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
    /// Validates one configured window. Errors say which key is wrong and
    /// how to write it.
    pub fn from_config(config: &BlackoutConfig) -> Result<BlackoutWindow, String> {
        let tz = parse_time_zone(&config.time_zone)?;
        let kind = match (&config.start, &config.end, &config.cron, &config.duration) {
            (Some(start), Some(end), None, None) => {
                let start_time = parse_time(start, "start", false)?;
                let (end_time, end_is_24) = match parse_time(end, "end", true)? {
                    None24::Time(t) => (t, false),
                    None24::Midnight24 => (NaiveTime::MIN, true),
                };
                let start_time = match start_time {
                    None24::Time(t) => t,
                    None24::Midnight24 => NaiveTime::MIN,
                };
                let end_days = if end_is_24 || end_time <= start_time {
                    1
                } else {
                    0
                };
                let days = match &config.days {
                    None => [true; 7],
                    Some(list) => parse_days(list)?,
                };
                Kind::Daily {
                    start: start_time,
                    end: end_time,
                    end_days,
                    days,
                }
            }
            (None, None, Some(cron), Some(duration)) => {
                if config.days.is_some() {
                    return Err(
                        "`days` applies to start/end windows; write the days in the cron expression"
                            .into(),
                    );
                }
                let parsed = Cron::from_str(cron)
                    .map_err(|e| format!("invalid cron expression `{cron}`: {e}"))?;
                let duration = parse_duration(duration)?;
                Kind::Cron {
                    cron: Box::new(parsed),
                    duration,
                }
            }
            (Some(_), None, None, None) => {
                return Err("a window with `start` needs `end` too (e.g. end = \"06:00\")".into());
            }
            (None, Some(_), None, None) => {
                return Err(
                    "a window with `end` needs `start` too (e.g. start = \"22:00\")".into(),
                );
            }
            (None, None, Some(_), None) => {
                return Err("a cron window needs `duration` (e.g. duration = \"3h\")".into());
            }
            (None, None, None, Some(_)) => {
                return Err("`duration` needs `cron` (e.g. cron = \"0 22 * * 6\")".into());
            }
            (None, None, None, None) => {
                return Err(
                    "a blackout window needs `start` and `end` (e.g. start = \"22:00\", end = \"02:30\") or `cron` and `duration`"
                        .into(),
                );
            }
            _ => {
                return Err(
                    "a blackout window is either `start`/`end` (with optional `days`) or `cron`/`duration`, not both"
                        .into(),
                );
            }
        };
        let window = BlackoutWindow { kind, tz };
        if let Kind::Cron { cron, .. } = &window.kind
            && cron
                .find_next_occurrence(&DateTime::UNIX_EPOCH.with_timezone(&tz), false)
                .is_err()
        {
            return Err(format!(
                "cron expression `{}` never matches",
                config.cron.as_deref().unwrap_or_default()
            ));
        }
        Ok(window)
    }

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

enum None24 {
    Time(NaiveTime),
    Midnight24,
}

fn parse_time(text: &str, key: &str, allow_24: bool) -> Result<None24, String> {
    let bad = |why: &str| {
        format!(
            "`{key}` = \"{text}\" is not a time of day: {why} (write \"HH:MM\", e.g. \"22:00\")"
        )
    };
    let (h, m) = text.trim().split_once(':').ok_or_else(|| bad("no `:`"))?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || m.len() != 2 || !digits(m) {
        return Err(bad("expected two numbers"));
    }
    let hour: u32 = h.parse().map_err(|_| bad("bad hour"))?;
    let minute: u32 = m.parse().map_err(|_| bad("bad minute"))?;
    if hour == 24 && minute == 0 {
        return if allow_24 {
            Ok(None24::Midnight24)
        } else {
            Err(bad("24:00 is only allowed as an end; start at \"00:00\""))
        };
    }
    if hour > 23 {
        return Err(bad("the hour must be 00 to 23"));
    }
    if minute > 59 {
        return Err(bad("the minute must be 00 to 59"));
    }
    NaiveTime::from_hms_opt(hour, minute, 0)
        .map(None24::Time)
        .ok_or_else(|| bad("out of range"))
}

const DAY_NAMES: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Mon),
    ("tue", "tuesday", Weekday::Tue),
    ("wed", "wednesday", Weekday::Wed),
    ("thu", "thursday", Weekday::Thu),
    ("fri", "friday", Weekday::Fri),
    ("sat", "saturday", Weekday::Sat),
    ("sun", "sunday", Weekday::Sun),
];

fn parse_day(text: &str) -> Result<Weekday, String> {
    let lower = text.trim().to_lowercase();
    DAY_NAMES
        .iter()
        .find(|(short, long, _)| lower == *short || lower == *long)
        .map(|(_, _, day)| *day)
        .ok_or_else(|| {
            format!(
                "unknown day `{text}` in `days` (use mon, tue, wed, thu, fri, sat, sun, a range such as mon-fri, weekdays or weekends)"
            )
        })
}

fn parse_days(list: &[String]) -> Result<[bool; 7], String> {
    if list.is_empty() {
        return Err(
            "`days` is empty, so the window would never apply: list days or leave `days` out for every day"
                .into(),
        );
    }
    let mut days = [false; 7];
    for entry in list {
        match entry.trim().to_lowercase().as_str() {
            "weekdays" => days[..5].iter_mut().for_each(|d| *d = true),
            "weekends" => days[5..].iter_mut().for_each(|d| *d = true),
            _ => {
                if let Some((from, to)) = entry.split_once('-') {
                    let mut day = parse_day(from)?;
                    let to = parse_day(to)?;
                    days[day.num_days_from_monday() as usize] = true;
                    while day != to {
                        day = day.succ();
                        days[day.num_days_from_monday() as usize] = true;
                    }
                } else {
                    days[parse_day(entry)?.num_days_from_monday() as usize] = true;
                }
            }
        }
    }
    Ok(days)
}

fn parse_time_zone(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = Tz::from_str(name) {
        return Ok(tz);
    }
    let mut message = format!("unknown time zone `{name}`");
    if let Some(suggestion) = suggest_time_zone(name) {
        message.push_str(&format!("; did you mean `{suggestion}`?"));
    } else {
        message.push_str("; use an IANA name such as Europe/Paris, America/New_York or UTC");
    }
    Err(message)
}

/// The closest IANA name: same name in another case, a name whose city
/// is `name`, or one a few edits away (the shared "did you mean" rule).
fn suggest_time_zone(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_lowercase().replace(' ', "_");
    let names = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    if let Some(found) = names().find(|n| n.to_lowercase() == lower) {
        return Some(found);
    }
    if let Some(found) = names().find(|n| {
        n.rsplit('/')
            .next()
            .is_some_and(|city| city.to_lowercase() == lower)
    }) {
        return Some(found);
    }
    suggest::closest(&lower, names())
}

/// `"3h"`, `"90m"`, `"1h30m"`, `"45s"`, `"2d"`: a positive duration, in the
/// form every duration of the configuration is written
/// (`autosync_model::duration`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "`duration` = \"{text}\" is not a duration: {why} (write e.g. \"3h\", \"90m\", \"1h30m\")"
        )
    };
    let parsed = duration::parse_duration(text).map_err(|e| bad(&e.reason))?;
    let total = Duration::from_std(parsed).map_err(|_| bad("it is too long"))?;
    if total <= Duration::zero() {
        return Err(bad("it must be longer than 0"));
    }
    Ok(total)
}
