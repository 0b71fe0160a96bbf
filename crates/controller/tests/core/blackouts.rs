//! Blackout windows: wrap past midnight, day filters, DST gaps and overlaps
//! in Europe/Paris and America/New_York, cron windows, unions, config
//! errors, and the property that the status is constant until `next_change`.

use autosync_controller::{BlackoutConfig, BlackoutWindow, Blackouts};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn daily(start: &str, end: &str, days: Option<&[&str]>, tz: &str) -> BlackoutConfig {
    BlackoutConfig {
        start: Some(start.into()),
        end: Some(end.into()),
        days: days.map(|d| d.iter().map(|s| s.to_string()).collect()),
        time_zone: tz.into(),
        ..BlackoutConfig::default()
    }
}

fn window(config: &BlackoutConfig) -> BlackoutWindow {
    BlackoutWindow::from_config(config).unwrap()
}

fn error(config: &BlackoutConfig) -> String {
    BlackoutWindow::from_config(config).unwrap_err()
}

#[test]
fn a_window_whose_end_is_before_its_start_wraps_past_midnight() {
    let w = window(&daily("22:00", "02:30", None, "UTC"));
    assert!(!w.active_at(at("2026-06-10T21:59:59Z")));
    assert!(w.active_at(at("2026-06-10T22:00:00Z")));
    assert!(w.active_at(at("2026-06-10T23:30:00Z")));
    assert!(w.active_at(at("2026-06-11T02:29:59Z")));
    assert!(!w.active_at(at("2026-06-11T02:30:00Z")));
    assert_eq!(
        w.next_change(at("2026-06-10T12:00:00Z")),
        Some(at("2026-06-10T22:00:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-06-10T23:00:00Z")),
        Some(at("2026-06-11T02:30:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-06-11T02:30:00Z")),
        Some(at("2026-06-11T22:00:00Z"))
    );
}

#[test]
fn days_name_the_day_the_window_starts() {
    // 2026-06-12 is a Friday.
    let w = window(&daily("22:00", "02:30", Some(&["fri"]), "UTC"));
    assert!(
        !w.active_at(at("2026-06-12T01:00:00Z")),
        "Thursday's window is not listed"
    );
    assert!(w.active_at(at("2026-06-12T22:30:00Z")));
    assert!(
        w.active_at(at("2026-06-13T01:00:00Z")),
        "Friday's window runs into Saturday"
    );
    assert!(!w.active_at(at("2026-06-13T22:30:00Z")));
    assert_eq!(
        w.next_change(at("2026-06-13T03:00:00Z")),
        Some(at("2026-06-19T22:00:00Z"))
    );
}

#[test]
fn days_accept_full_names_ranges_and_weekends() {
    // 2026-06-13 is a Saturday, 2026-06-15 a Monday.
    let weekdays = window(&daily("09:00", "17:00", Some(&["Monday-fri"]), "UTC"));
    assert!(weekdays.active_at(at("2026-06-15T10:00:00Z")));
    assert!(!weekdays.active_at(at("2026-06-13T10:00:00Z")));
    let wrapping = window(&daily("09:00", "17:00", Some(&["sat-mon"]), "UTC"));
    assert!(wrapping.active_at(at("2026-06-13T10:00:00Z")));
    assert!(wrapping.active_at(at("2026-06-15T10:00:00Z")));
    assert!(!wrapping.active_at(at("2026-06-16T10:00:00Z")));
    let weekends = window(&daily("00:00", "24:00", Some(&["weekends"]), "UTC"));
    assert!(weekends.active_at(at("2026-06-14T23:59:00Z")));
    assert!(!weekends.active_at(at("2026-06-15T00:00:00Z")));
    assert_eq!(
        weekends.next_change(at("2026-06-13T05:00:00Z")),
        Some(at("2026-06-15T00:00:00Z"))
    );
}

#[test]
fn times_are_read_in_the_time_zone() {
    // Paris is UTC+2 in June.
    let w = window(&daily("22:00", "02:30", None, "Europe/Paris"));
    assert!(w.active_at(at("2026-06-10T20:00:00Z")));
    assert!(!w.active_at(at("2026-06-10T19:59:00Z")));
    assert_eq!(
        w.next_change(at("2026-06-10T20:00:00Z")),
        Some(at("2026-06-11T00:30:00Z"))
    );
}

#[test]
fn paris_spring_forward_a_start_in_the_gap_starts_when_the_clock_jumps() {
    // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    let w = window(&daily("02:30", "04:00", None, "Europe/Paris"));
    assert_eq!(
        w.next_change(at("2026-03-28T12:00:00Z")),
        Some(at("2026-03-29T01:00:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-03-29T01:00:00Z")),
        Some(at("2026-03-29T02:00:00Z"))
    );
    // The day before and after: 02:30 local as usual.
    assert_eq!(
        w.next_change(at("2026-03-27T12:00:00Z")),
        Some(at("2026-03-28T01:30:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-03-29T12:00:00Z")),
        Some(at("2026-03-30T00:30:00Z"))
    );
}

#[test]
fn paris_spring_forward_a_window_wholly_in_the_gap_does_not_happen() {
    let w = window(&daily("02:00", "02:45", None, "Europe/Paris"));
    assert_eq!(
        w.next_change(at("2026-03-28T12:00:00Z")),
        Some(at("2026-03-30T00:00:00Z"))
    );
    assert!(!w.active_at(at("2026-03-29T01:00:00Z")));
}

#[test]
fn paris_fall_back_a_window_covers_both_occurrences_of_its_times() {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:00-03:00 twice.
    let w = window(&daily("01:30", "02:30", None, "Europe/Paris"));
    // Starts 01:30 CEST (23:30 UTC), ends at the second 02:30 (CET, 01:30 UTC).
    assert_eq!(
        w.next_change(at("2026-10-24T12:00:00Z")),
        Some(at("2026-10-24T23:30:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-10-24T23:30:00Z")),
        Some(at("2026-10-25T01:30:00Z"))
    );
    assert!(w.active_at(at("2026-10-25T00:45:00Z")), "the first 02:15");
    assert!(w.active_at(at("2026-10-25T01:15:00Z")), "the second 02:15");
    // A start in the repeated hour starts at its first occurrence.
    let w = window(&daily("02:15", "04:00", None, "Europe/Paris"));
    assert_eq!(
        w.next_change(at("2026-10-24T12:00:00Z")),
        Some(at("2026-10-25T00:15:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-10-25T00:15:00Z")),
        Some(at("2026-10-25T03:00:00Z"))
    );
}

#[test]
fn new_york_transition_nights_are_an_hour_shorter_or_longer() {
    let w = window(&daily("22:00", "06:00", Some(&["sat"]), "America/New_York"));
    // 2026-03-08 02:00 EST -> 03:00 EDT: Saturday 22:00 EST to Sunday 06:00 EDT, 7 hours.
    assert_eq!(
        w.next_change(at("2026-03-07T12:00:00Z")),
        Some(at("2026-03-08T03:00:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-03-08T03:00:00Z")),
        Some(at("2026-03-08T10:00:00Z"))
    );
    // 2026-11-01 02:00 EDT -> 01:00 EST: Saturday 22:00 EDT to Sunday 06:00 EST, 9 hours.
    assert_eq!(
        w.next_change(at("2026-10-31T12:00:00Z")),
        Some(at("2026-11-01T02:00:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-11-01T02:00:00Z")),
        Some(at("2026-11-01T11:00:00Z"))
    );
    assert!(w.active_at(at("2026-11-01T10:59:59Z")));
}

#[test]
fn new_york_a_start_in_the_gap_starts_at_three() {
    let w = window(&daily("02:30", "05:00", None, "America/New_York"));
    // 2026-03-08: 02:30 does not exist; 03:00 EDT is 07:00 UTC.
    assert_eq!(
        w.next_change(at("2026-03-07T12:00:00Z")),
        Some(at("2026-03-08T07:00:00Z"))
    );
    assert_eq!(
        w.next_change(at("2026-03-08T07:00:00Z")),
        Some(at("2026-03-08T09:00:00Z"))
    );
}

#[test]
fn a_cron_window_lasts_its_duration() {
    // 2026-06-13 is a Saturday.
    let config = BlackoutConfig {
        cron: Some("0 22 * * 6".into()),
        duration: Some("3h".into()),
        ..BlackoutConfig::default()
    };
    let w = window(&config);
    assert_eq!(
        w.next_change(at("2026-06-10T00:00:00Z")),
        Some(at("2026-06-13T22:00:00Z"))
    );
    assert!(w.active_at(at("2026-06-14T00:59:00Z")));
    assert!(!w.active_at(at("2026-06-14T01:00:00Z")));
    assert_eq!(
        w.next_change(at("2026-06-13T23:00:00Z")),
        Some(at("2026-06-14T01:00:00Z"))
    );
}

#[test]
fn a_cron_window_duration_is_written_like_every_other_duration() {
    let lasting = |duration: &str| BlackoutConfig {
        cron: Some("0 22 * * 6".into()),
        duration: Some(duration.into()),
        ..BlackoutConfig::default()
    };
    for same in ["3h", "3hours", "180min", "2h 60m", "10800s"] {
        let w = window(&lasting(same));
        assert!(w.active_at(at("2026-06-14T00:59:00Z")), "{same}");
        assert!(!w.active_at(at("2026-06-14T01:00:00Z")), "{same}");
    }
    assert_eq!(
        error(&lasting("0m")),
        "`duration` = \"0m\" is not a duration: it must be longer than 0 (write e.g. \"3h\", \"90m\", \"1h30m\")"
    );
    assert!(error(&lasting("")).contains("`duration` = \"\" is not a duration: it is empty"));
}

#[test]
fn overlapping_cron_windows_make_one_blackout() {
    let config = BlackoutConfig {
        cron: Some("0 * * * *".into()),
        duration: Some("90m".into()),
        time_zone: "Europe/Paris".into(),
        ..BlackoutConfig::default()
    };
    let w = window(&config);
    assert!(w.active_at(at("2026-06-10T12:59:00Z")));
    assert_eq!(
        w.next_change(at("2026-06-10T12:00:00Z")),
        None,
        "never ends"
    );
}

#[test]
fn a_window_that_never_ends_has_no_next_change() {
    let w = window(&daily("00:00", "00:00", None, "Europe/Paris"));
    assert!(w.active_at(at("2026-03-29T01:30:00Z")));
    assert!(w.active_at(at("2026-10-25T01:30:00Z")));
    assert_eq!(w.next_change(at("2026-06-10T12:00:00Z")), None);
}

#[test]
fn blackouts_change_only_when_the_union_does() {
    let b = Blackouts::from_configs(&[
        daily("22:00", "23:00", None, "UTC"),
        daily("23:00", "01:00", None, "UTC"),
        daily("00:30", "00:45", None, "UTC"),
    ])
    .unwrap();
    assert!(b.active_at(at("2026-06-10T23:30:00Z")));
    assert_eq!(
        b.next_change(at("2026-06-10T22:30:00Z")),
        Some(at("2026-06-11T01:00:00Z"))
    );
    assert_eq!(
        b.next_change(at("2026-06-11T01:00:00Z")),
        Some(at("2026-06-11T22:00:00Z"))
    );
    assert!(!Blackouts::default().active_at(at("2026-06-10T23:30:00Z")));
    assert_eq!(
        Blackouts::default().next_change(at("2026-06-10T23:30:00Z")),
        None
    );
}

#[test]
fn bad_configs_are_explained() {
    assert_eq!(
        error(&daily("25:00", "02:00", None, "UTC")),
        "`start` = \"25:00\" is not a time of day: the hour must be 00 to 23 (write \"HH:MM\", e.g. \"22:00\")"
    );
    assert!(error(&daily("22:00", "2pm", None, "UTC")).contains("`end` = \"2pm\""));
    assert!(error(&daily("24:00", "02:00", None, "UTC")).contains("only allowed as an end"));
    assert!(
        error(&daily("22:00", "02:00", Some(&["funday"]), "UTC"))
            .starts_with("unknown day `funday`")
    );
    assert!(error(&daily("22:00", "02:00", Some(&[]), "UTC")).contains("`days` is empty"));
    assert_eq!(
        error(&daily("22:00", "02:00", None, "Europe/Pariss")),
        "unknown time zone `Europe/Pariss`; did you mean `Europe/Paris`?"
    );
    assert!(
        error(&daily("22:00", "02:00", None, "paris")).ends_with("did you mean `Europe/Paris`?")
    );
    assert!(error(&daily("22:00", "02:00", None, "Nowhere/Atall")).contains("use an IANA name"));
    let mixed = BlackoutConfig {
        cron: Some("0 22 * * 6".into()),
        ..daily("22:00", "02:00", None, "UTC")
    };
    assert!(error(&mixed).contains("not both"));
    let no_duration = BlackoutConfig {
        cron: Some("0 22 * * 6".into()),
        ..BlackoutConfig::default()
    };
    assert!(error(&no_duration).contains("needs `duration`"));
    let bad_duration = BlackoutConfig {
        duration: Some("3hrs".into()),
        ..no_duration.clone()
    };
    assert!(error(&bad_duration).contains("unknown unit `hrs`"));
    let bad_cron = BlackoutConfig {
        cron: Some("0 25 * * *".into()),
        duration: Some("1h".into()),
        ..BlackoutConfig::default()
    };
    assert!(error(&bad_cron).starts_with("invalid cron expression `0 25 * * *`"));
    let errors = Blackouts::from_configs(&[
        daily("22:00", "02:00", None, "UTC"),
        daily("22:00", "02:00", None, "Mars"),
    ])
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("blackouts[1]: unknown time zone `Mars`"),
        "{errors:?}"
    );
}

#[test]
fn the_config_reads_from_serde_and_refuses_unknown_keys() {
    let config: BlackoutConfig = serde_json::from_str(
        r#"{"start": "22:00", "end": "02:30", "days": ["sat", "sun"], "time_zone": "Europe/Paris"}"#,
    )
    .unwrap();
    assert_eq!(
        config,
        daily("22:00", "02:30", Some(&["sat", "sun"]), "Europe/Paris")
    );
    let defaulted: BlackoutConfig =
        serde_json::from_str(r#"{"start": "22:00", "end": "02:30"}"#).unwrap();
    assert_eq!(defaulted.time_zone, "UTC");
    let err = serde_json::from_str::<BlackoutConfig>(
        r#"{"start": "22:00", "end": "02:30", "day": ["sat"]}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `day`"), "{err}");
}

// --- properties ---

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Instants around the 2026 transitions of the zones above, and elsewhere.
const ANCHORS: [&str; 7] = [
    "2026-03-08T07:00:00Z",
    "2026-03-29T01:00:00Z",
    "2026-04-04T15:00:00Z",
    "2026-10-03T15:30:00Z",
    "2026-10-25T01:00:00Z",
    "2026-11-01T06:00:00Z",
    "2026-06-15T12:00:00Z",
];

fn any_daily() -> impl Strategy<Value = BlackoutConfig> {
    (
        0u32..24,
        prop::sample::select(vec![0u32, 15, 30, 45]),
        0u32..25,
        prop::sample::select(vec![0u32, 15, 30, 45]),
        prop::option::of(prop::collection::vec(
            prop::sample::select(DAYS.to_vec()),
            1..4,
        )),
        prop::sample::select(ZONES.to_vec()),
    )
        .prop_map(|(sh, sm, eh, em, days, tz)| {
            let end = if eh == 24 {
                "24:00".to_string()
            } else {
                format!("{eh:02}:{em:02}")
            };
            BlackoutConfig {
                start: Some(format!("{sh:02}:{sm:02}")),
                end: Some(end),
                days: days.map(|d| d.into_iter().map(String::from).collect()),
                time_zone: tz.into(),
                ..BlackoutConfig::default()
            }
        })
}

fn any_cron() -> impl Strategy<Value = BlackoutConfig> {
    (
        prop::sample::select(vec![
            "0 22 * * 6",
            "30 2 * * *",
            "0 */6 * * *",
            "15 1 1 * *",
        ]),
        prop::sample::select(vec!["30m", "2h", "7h", "1d"]),
        prop::sample::select(ZONES.to_vec()),
    )
        .prop_map(|(cron, duration, tz)| BlackoutConfig {
            cron: Some(cron.into()),
            duration: Some(duration.into()),
            time_zone: tz.into(),
            ..BlackoutConfig::default()
        })
}

fn any_config() -> impl Strategy<Value = BlackoutConfig> {
    prop_oneof![3 => any_daily(), 1 => any_cron()]
}

fn any_now() -> impl Strategy<Value = DateTime<Utc>> {
    (
        prop::sample::select(ANCHORS.to_vec()),
        -3 * 86_400i64..3 * 86_400,
    )
        .prop_map(|(anchor, offset)| at(anchor) + Duration::seconds(offset))
}

/// `active_at` is constant on `[now, next_change)` and differs at
/// `next_change`; checked at the ends and at sampled points in between.
fn check_constant_until_change(
    active_at: impl Fn(DateTime<Utc>) -> bool,
    next_change: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    samples: &[u32],
) -> Result<(), TestCaseError> {
    let status = active_at(now);
    let horizon = match next_change {
        Some(change) => {
            prop_assert!(change > now, "next change {change} is not after {now}");
            prop_assert_ne!(active_at(change), status, "no change at {}", change);
            prop_assert_eq!(active_at(change - Duration::seconds(1)), status);
            change
        }
        None => now + Duration::days(30),
    };
    let span = (horizon - now).num_seconds();
    for s in samples {
        let t = now + Duration::seconds(span * i64::from(*s) / i64::from(u32::MAX));
        prop_assert_eq!(
            active_at(t),
            status,
            "status changed at {} before {}",
            t,
            horizon
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_window_is_constant_until_its_next_change(
        config in any_config(),
        now in any_now(),
        samples in prop::collection::vec(any::<u32>(), 16),
    ) {
        let w = window(&config);
        check_constant_until_change(|t| w.active_at(t), w.next_change(now), now, &samples)?;
    }

    #[test]
    fn blackouts_are_constant_until_their_next_change(
        configs in prop::collection::vec(any_config(), 0..4),
        now in any_now(),
        samples in prop::collection::vec(any::<u32>(), 16),
    ) {
        let b = Blackouts::from_configs(&configs).unwrap();
        check_constant_until_change(|t| b.active_at(t), b.next_change(now), now, &samples)?;
    }

    #[test]
    fn following_next_change_alternates_the_status(config in any_daily(), now in any_now()) {
        let w = window(&config);
        let mut t = now;
        let mut status = w.active_at(t);
        for _ in 0..6 {
            let Some(next) = w.next_change(t) else { break };
            prop_assert!(next > t);
            prop_assert_ne!(w.active_at(next), status);
            status = !status;
            t = next;
        }
    }
}
