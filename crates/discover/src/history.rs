//! The run history discovery reads (each MA's past imports) and the
//! import schedule it derives from it for a source whose connector offers
//! no change notification: an interval at the median gap between imports
//! (rounded to a sensible one), or a daily or weekly schedule at their
//! usual time.

use super::ProposedTrigger;
use autosync_config::Loaded;
use autosync_controller::MaInfo;
use autosync_model::{RunReason, RunStatus};
use autosync_store::{StoreError, StoreRead};
use autosync_triggers::duration::format_duration;
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Import interval of a source with no change notification and no usable
/// run history.
pub const DEFAULT_IMPORT_EVERY: Duration = Duration::from_secs(15 * 60);
/// At most this many past runs per MA are read.
pub const HISTORY_RUNS: usize = 1000;

/// Intervals a history-derived import schedule is rounded to.
const SENSIBLE_INTERVALS: &[u64] = &[
    60,
    2 * 60,
    5 * 60,
    10 * 60,
    15 * 60,
    20 * 60,
    30 * 60,
    3600,
    2 * 3600,
    3 * 3600,
    4 * 3600,
    6 * 3600,
    8 * 3600,
    12 * 3600,
    DAY,
    WEEK,
];
const DAY: u64 = 86_400;
const WEEK: u64 = 7 * DAY;

/// The past imports of each MA: the start times of runs with an import step
/// that a trigger or an operator asked for (not confirming imports, not
/// reconciliation), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub imports: BTreeMap<String, Vec<DateTime<Utc>>>,
}

/// Reads the import history of every MA of `loaded` (at most
/// [`HISTORY_RUNS`] runs each).
pub fn read_history(loaded: &Loaded, store: &mut dyn StoreRead) -> Result<History, StoreError> {
    let mut imports = BTreeMap::new();
    for ma in &loaded.system.mas {
        let info = MaInfo::from_def(ma);
        let mut times: Vec<DateTime<Utc>> = store
            .runs(Some(&ma.name), HISTORY_RUNS)?
            .into_iter()
            .filter(|r| {
                matches!(
                    r.reason,
                    RunReason::Manual { .. } | RunReason::Trigger { .. }
                ) && r.status != RunStatus::NoStartMaAlreadyRunning
                    && (r.steps.iter().any(|s| s.step_type.is_import())
                        || info
                            .steps(&r.profile)
                            .is_some_and(|s| s.iter().any(|t| t.is_import())))
            })
            .map(|r| r.started_at)
            .collect();
        times.sort();
        imports.insert(ma.name.clone(), times);
    }
    Ok(History { imports })
}

/// An MA's import history, summed up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistorySummary {
    pub imports: usize,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// Median time between two imports (with at least two).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_gap: Option<String>,
}

pub(super) fn summarise(imports: &[DateTime<Utc>]) -> Option<HistorySummary> {
    let (first, last) = (imports.first()?, imports.last()?);
    Some(HistorySummary {
        imports: imports.len(),
        first: *first,
        last: *last,
        median_gap: (imports.len() >= 2).then(|| format_duration(median_gap(imports))),
    })
}

/// The trigger of a source without change notification (`why_not` says
/// why it has none), from its past imports, and why.
pub(super) fn import_schedule(
    why_not: &str,
    profile: &str,
    imports: &[DateTime<Utc>],
    history: &Option<HistorySummary>,
) -> (Vec<ProposedTrigger>, String) {
    match (imports, history) {
        (
            [first, .., last],
            Some(HistorySummary {
                median_gap: Some(gap_text),
                ..
            }),
        ) => {
            let gap = median_gap(imports);
            let every = round_interval(gap);
            let n = imports.len();
            let span = format!(
                "{} to {} UTC",
                first.format("%Y-%m-%d %H:%M"),
                last.format("%Y-%m-%d %H:%M")
            );
            let basis =
                format!("{why_not}; its {n} past imports ({span}) came a median {gap_text} apart");
            let (trigger, how) = history_trigger(imports, every, profile);
            (vec![trigger], format!("{basis}: {how}"))
        }
        _ => {
            let every = format_duration(DEFAULT_IMPORT_EVERY);
            let because = match imports.len() {
                0 => "no import in its run history".to_owned(),
                _ => "a single import in its run history".to_owned(),
            };
            (
                vec![ProposedTrigger::Interval {
                    every: every.clone(),
                    profile: profile.to_owned(),
                }],
                format!("{why_not}; {because}: `{profile}` every {every} (the default)"),
            )
        }
    }
}

/// The median time between consecutive imports (sorted, at least two),
/// to the second.
fn median_gap(imports: &[DateTime<Utc>]) -> Duration {
    let mut gaps: Vec<i64> = imports
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds().max(0))
        .collect();
    gaps.sort_unstable();
    let n = gaps.len();
    let median = match n {
        0 => 0,
        _ if n % 2 == 1 => gaps[n / 2],
        _ => (gaps[n / 2 - 1] + gaps[n / 2]) / 2,
    };
    Duration::from_secs(u64::try_from(median).unwrap_or(0))
}

/// The sensible interval nearest to `gap` (by ratio): 1m, 2m, 5m, 10m, 15m,
/// 20m, 30m, 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d or 7d.
pub fn round_interval(gap: Duration) -> Duration {
    let secs = gap.as_secs().max(1) as f64;
    let best = SENSIBLE_INTERVALS
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = (secs / *a as f64).ln().abs();
            let db = (secs / *b as f64).ln().abs();
            da.total_cmp(&db)
        })
        .unwrap_or(DEFAULT_IMPORT_EVERY.as_secs());
    Duration::from_secs(best)
}

/// An interval below a day; a daily (or weekly) schedule at the imports'
/// usual time otherwise. Returns the trigger and how it was chosen.
fn history_trigger(
    imports: &[DateTime<Utc>],
    every: Duration,
    profile: &str,
) -> (ProposedTrigger, String) {
    let secs = every.as_secs();
    if secs < DAY {
        let every = format_duration(every);
        return (
            ProposedTrigger::Interval {
                every: every.clone(),
                profile: profile.to_owned(),
            },
            format!("`{profile}` every {every} (rounded)"),
        );
    }
    let mut minutes: Vec<u32> = imports.iter().map(|t| t.hour() * 60 + t.minute()).collect();
    minutes.sort_unstable();
    let minute_of_day = minutes.get(minutes.len() / 2).copied().unwrap_or(0);
    let (h, m) = (minute_of_day / 60, minute_of_day % 60);
    if secs < WEEK {
        return (
            ProposedTrigger::Schedule {
                cron: format!("{m} {h} * * *"),
                timezone: "UTC".into(),
                profile: profile.to_owned(),
            },
            format!("`{profile}` daily at {h:02}:{m:02} UTC (their median time of day)"),
        );
    }
    let mut days: Vec<u32> = imports
        .iter()
        .map(|t| t.weekday().num_days_from_sunday())
        .collect();
    days.sort_unstable();
    let day = days.get(days.len() / 2).copied().unwrap_or(0);
    let day_name = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ]
    .get(day as usize)
    .copied()
    .unwrap_or("Sunday");
    (
        ProposedTrigger::Schedule {
            cron: format!("{m} {h} * * {day}"),
            timezone: "UTC".into(),
            profile: profile.to_owned(),
        },
        format!(
            "`{profile}` weekly on {day_name} at {h:02}:{m:02} UTC (their median day and time)"
        ),
    )
}
