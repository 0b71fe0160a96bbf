//! Reading a configured blackout window: times of day, days, the time
//! zone (with a suggestion for a misspelt one) and a cron window's
//! duration. Every error names the key and shows how to write it.

use super::{BlackoutConfig, BlackoutWindow, Kind};
use autosync_model::{duration, suggest};
use chrono::{DateTime, Duration, NaiveTime, Weekday};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;

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
