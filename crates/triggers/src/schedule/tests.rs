//! Tests of the schedule trigger's rules: DST, one fire per slot, catch-up.

use super::*;
use crate::clock::TokioWallClock;
use crate::sink::TriggerEvent;
use chrono::TimeDelta;
use tokio::sync::mpsc;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn schedule(cron: &str, tz: &str) -> Schedule {
    Schedule::parse(cron, tz).unwrap()
}

/// Every slot in `[from, to)`.
fn slots_between(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from - TimeDelta::seconds(1);
    loop {
        let next = s.next_slot_after(t).unwrap();
        if next >= to {
            return out;
        }
        out.push(next);
        t = next;
    }
}

fn fired(slot: &str) -> TriggerState {
    TriggerState {
        last_fired_slot: Some(utc(slot)),
    }
}

#[test]
fn daily_0230_in_paris_on_spring_forward_day_should_fire_once_at_0300_local() {
    let s = schedule("30 2 * * *", "Europe/Paris");
    // Local day 2024-03-31 runs from 23:00 UTC the day before to 22:00 UTC.
    let slots = slots_between(&s, utc("2024-03-30T23:00:00Z"), utc("2024-03-31T22:00:00Z"));
    assert_eq!(
        slots,
        vec![utc("2024-03-31T01:00:00Z")],
        "03:00 CEST, the first instant after the gap"
    );
    assert_eq!(s.local(slots[0]), "2024-03-31 03:00:00 CEST");
    // And the day after is back to 02:30 local.
    assert_eq!(
        s.next_slot_after(slots[0]).unwrap(),
        utc("2024-04-01T00:30:00Z")
    );
}

#[test]
fn daily_0230_in_paris_on_fall_back_day_should_fire_exactly_once_not_for_the_repeated_hour() {
    let s = schedule("30 2 * * *", "Europe/Paris");
    // Local day 2024-10-27 runs from 22:00 UTC the day before to 23:00 UTC.
    let slots = slots_between(&s, utc("2024-10-26T22:00:00Z"), utc("2024-10-27T23:00:00Z"));
    assert_eq!(
        slots,
        vec![utc("2024-10-27T00:30:00Z")],
        "02:30 CEST only, not 02:30 CET"
    );
    assert_eq!(
        s.next_slot_after(slots[0]).unwrap(),
        utc("2024-10-28T01:30:00Z")
    );
    // Standing in the repeated hour, after the first 02:30, nothing is due again.
    let state = fired("2024-10-27T00:30:00Z");
    assert_eq!(
        s.due_slot(
            &state,
            utc("2024-10-26T12:00:00Z"),
            utc("2024-10-27T01:45:00Z")
        )
        .unwrap(),
        None
    );
}

#[test]
fn hourly_schedule_in_paris_on_spring_forward_day_should_skip_the_missing_hour_without_doubling() {
    let s = schedule("0 * * * *", "Europe/Paris");
    let slots = slots_between(&s, utc("2024-03-30T23:00:00Z"), utc("2024-03-31T22:00:00Z"));
    assert_eq!(slots.len(), 23, "a 23-hour local day has 23 hourly slots");
    assert!(
        slots.windows(2).all(|w| w[1] - w[0] == TimeDelta::hours(1)),
        "one per real hour, none doubled"
    );
    let locals: Vec<String> = slots[1..3].iter().map(|t| s.local(*t)).collect();
    assert_eq!(
        locals,
        ["2024-03-31 01:00:00 CET", "2024-03-31 03:00:00 CEST"]
    );
}

#[test]
fn hourly_schedule_in_paris_on_fall_back_day_should_fire_on_every_real_hour_including_both_0200s() {
    let s = schedule("0 * * * *", "Europe/Paris");
    let slots = slots_between(&s, utc("2024-10-26T22:00:00Z"), utc("2024-10-27T23:00:00Z"));
    assert_eq!(slots.len(), 25, "a 25-hour local day has 25 hourly slots");
    assert!(slots.windows(2).all(|w| w[1] - w[0] == TimeDelta::hours(1)));
    let locals: Vec<String> = slots[2..4].iter().map(|t| s.local(*t)).collect();
    assert_eq!(
        locals,
        ["2024-10-27 02:00:00 CEST", "2024-10-27 02:00:00 CET"]
    );
}

#[test]
fn daily_schedules_in_new_york_should_follow_its_own_dst_days() {
    let s = schedule("30 2 * * *", "America/New_York");
    // Spring forward 2024-03-10 02:00 EST -> 03:00 EDT: fires once, at 03:00 EDT.
    let spring = slots_between(&s, utc("2024-03-10T05:00:00Z"), utc("2024-03-11T04:00:00Z"));
    assert_eq!(spring, vec![utc("2024-03-10T07:00:00Z")]);
    assert_eq!(s.local(spring[0]), "2024-03-10 03:00:00 EDT");
    // Fall back 2024-11-03 02:00 EDT -> 01:00 EST: 01:30 happens twice, fires once.
    let s = schedule("30 1 * * *", "America/New_York");
    let fall = slots_between(&s, utc("2024-11-03T04:00:00Z"), utc("2024-11-04T05:00:00Z"));
    assert_eq!(fall, vec![utc("2024-11-03T05:30:00Z")], "01:30 EDT only");
}

#[test]
fn a_slot_already_fired_should_never_fire_again_after_the_clock_moves_back_an_hour() {
    let s = schedule("0 2 * * *", "UTC");
    let state = fired("2024-05-01T02:00:00Z");
    let armed = utc("2024-04-30T12:00:00Z");
    // The clock is corrected from 02:00:05 back to 01:00:05, then passes 02:00 again.
    for now in [
        "2024-05-01T01:00:05Z",
        "2024-05-01T02:00:00Z",
        "2024-05-01T02:00:05Z",
    ] {
        assert_eq!(
            s.due_slot(&state, armed, utc(now)).unwrap(),
            None,
            "at {now}"
        );
    }
    assert_eq!(
        s.next_wake(&state, armed).unwrap(),
        utc("2024-05-02T02:00:00Z")
    );
}

#[test]
fn due_slot_should_pick_the_most_recent_slot_when_several_passed_at_once() {
    let s = schedule("*/10 * * * *", "UTC");
    let armed = utc("2024-05-01T00:00:00Z");
    let due = s
        .due_slot(&TriggerState::default(), armed, utc("2024-05-01T00:35:00Z"))
        .unwrap();
    assert_eq!(due, Some(utc("2024-05-01T00:30:00Z")));
    assert_eq!(
        s.due_slot(&TriggerState::default(), armed, utc("2024-05-01T00:09:59Z"))
            .unwrap(),
        None
    );
}

#[test]
fn catch_up_should_give_one_slot_the_most_recent_after_downtime_spanning_several_slots() {
    let s = schedule("0 2 * * *", "Europe/Paris");
    let state = fired("2024-05-01T00:00:00Z"); // 02:00 CEST on 1 May
    let now = utc("2024-05-04T08:00:00Z"); // down for three slots
    let slot = s.catch_up_slot(&state, now).unwrap();
    assert_eq!(slot, Some(utc("2024-05-04T00:00:00Z")));
    // Once that slot is recorded, there is nothing more to catch up.
    let after = TriggerState {
        last_fired_slot: slot,
    };
    assert_eq!(s.catch_up_slot(&after, now).unwrap(), None);
}

#[test]
fn catch_up_should_give_nothing_without_a_persisted_slot_or_when_nothing_was_missed() {
    let s = schedule("0 2 * * *", "UTC");
    assert_eq!(
        s.catch_up_slot(&TriggerState::default(), utc("2024-05-04T08:00:00Z"))
            .unwrap(),
        None
    );
    let state = fired("2024-05-04T02:00:00Z");
    assert_eq!(
        s.catch_up_slot(&state, utc("2024-05-04T08:00:00Z"))
            .unwrap(),
        None
    );
}

#[test]
fn a_bad_cron_expression_should_be_rejected_with_crons_message() {
    let config = ScheduleConfig {
        name: None,
        profile: "full-import".into(),
        exclusive: false,
        run_immediate: false,
        cron: "61 * * * *".into(),
        timezone: "Europe/Paris".into(),
        catch_up: false,
    };
    let err = config.validate("hr", 1).unwrap_err();
    assert_eq!(err.key, "cron");
    assert!(
        err.message
            .starts_with("invalid cron expression `61 * * * *`: "),
        "{err}"
    );
    let bad_tz = ScheduleConfig {
        cron: "0 2 * * *".into(),
        timezone: "Europe/Pariss".into(),
        ..config
    };
    let err = bad_tz.validate("hr", 1).unwrap_err();
    assert_eq!(err.key, "timezone");
    assert!(
        err.message.contains("unknown time zone `Europe/Pariss`"),
        "{err}"
    );
}

#[test]
fn the_request_should_name_the_schedule_its_cron_and_time_zone() {
    let t = config("0 2 * * *", "Europe/Paris", false)
        .validate("hr", 0)
        .unwrap();
    assert_eq!(
        t.ask.trigger,
        "schedule hr-nightly (0 2 * * *, Europe/Paris)"
    );
    assert_eq!(t.ask.key, "schedule:hr-nightly");
}

fn config(cron: &str, tz: &str, catch_up: bool) -> ScheduleConfig {
    ScheduleConfig {
        name: Some("hr-nightly".into()),
        profile: "full-import".into(),
        exclusive: false,
        run_immediate: false,
        cron: cron.into(),
        timezone: tz.into(),
        catch_up,
    }
}

struct Running {
    clock: Arc<TokioWallClock>,
    state: Arc<Mutex<TriggerState>>,
    events: mpsc::UnboundedReceiver<TriggerEvent>,
    cancel: CancellationToken,
}

fn start(cron: &str, tz: &str, catch_up: bool, start: &str, state: TriggerState) -> Running {
    let trigger = config(cron, tz, catch_up).validate("hr", 0).unwrap();
    let clock = Arc::new(TokioWallClock::new(utc(start)));
    let state = Arc::new(Mutex::new(state));
    let (tx, events) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(trigger.run(state.clone(), clock.clone(), Arc::new(tx), cancel.clone()));
    Running {
        clock,
        state,
        events,
        cancel,
    }
}

impl Running {
    /// The next request, with the wall-clock time it was made at.
    /// Fails (instead of hanging) when no request comes within 30 days of
    /// paused tokio time.
    async fn next_request(&mut self) -> (TriggerRequest, DateTime<Utc>) {
        let wait = async {
            loop {
                match self.events.recv().await.unwrap() {
                    TriggerEvent::Request(r) => return r,
                    TriggerEvent::State { .. } | TriggerEvent::Error(_) => {}
                }
            }
        };
        let request = tokio::time::timeout(std::time::Duration::from_secs(30 * 86_400), wait)
            .await
            .expect("a request");
        (request, self.clock.now())
    }
}

use crate::TriggerRequest;

#[tokio::test(start_paused = true)]
async fn running_schedule_should_fire_the_spring_forward_slot_once_then_the_next_day_normally() {
    let mut run = start(
        "30 2 * * *",
        "Europe/Paris",
        false,
        "2024-03-30T12:00:00Z",
        TriggerState::default(),
    );
    let (request, at) = run.next_request().await;
    assert_eq!(at, utc("2024-03-31T01:00:00Z"));
    assert_eq!(
        request.trigger,
        "schedule hr-nightly (30 2 * * *, Europe/Paris)"
    );
    assert_eq!(request.profile, "full-import");
    let (_, at) = run.next_request().await;
    assert_eq!(at, utc("2024-04-01T00:30:00Z"));
    run.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn running_schedule_should_not_fire_again_when_the_clock_is_moved_back_an_hour_after_a_fire()
{
    let mut run = start(
        "0 2 * * *",
        "UTC",
        false,
        "2024-05-01T01:59:00Z",
        TriggerState::default(),
    );
    let (_, at) = run.next_request().await;
    assert_eq!(at, utc("2024-05-01T02:00:00Z"));
    run.clock.shift(TimeDelta::hours(-1));
    let (_, at) = run.next_request().await;
    assert_eq!(
        at,
        utc("2024-05-02T02:00:00Z"),
        "the 02:00 slot of 1 May is not fired twice"
    );
    run.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn running_schedule_should_persist_the_slot_before_asking() {
    let mut run = start(
        "0 2 * * *",
        "UTC",
        false,
        "2024-05-01T01:59:00Z",
        TriggerState::default(),
    );
    match run.events.recv().await.unwrap() {
        TriggerEvent::State { ma, key, state } => {
            assert_eq!((ma.as_str(), key.as_str()), ("hr", "schedule:hr-nightly"));
            assert_eq!(state.last_fired_slot, Some(utc("2024-05-01T02:00:00Z")));
        }
        other => panic!("expected the state first, got {other:?}"),
    }
    assert!(matches!(
        run.events.recv().await.unwrap(),
        TriggerEvent::Request(_)
    ));
    assert_eq!(
        run.state.lock().unwrap().last_fired_slot,
        Some(utc("2024-05-01T02:00:00Z"))
    );
    run.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn running_schedule_with_catch_up_should_fire_once_at_start_after_downtime_over_several_slots()
 {
    let state = fired("2024-05-01T02:00:00Z");
    let mut run = start("0 2 * * *", "UTC", true, "2024-05-04T10:00:00Z", state);
    let (request, at) = run.next_request().await;
    assert_eq!(at, utc("2024-05-04T10:00:00Z"), "right at start");
    assert!(
        request
            .trigger
            .ends_with("catch-up of missed slot 2024-05-04 02:00:00 UTC"),
        "{}",
        request.trigger
    );
    let (request, at) = run.next_request().await;
    assert_eq!(
        at,
        utc("2024-05-05T02:00:00Z"),
        "then the next slot, no second catch-up"
    );
    assert!(!request.trigger.contains("catch-up"));
    run.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn running_schedule_without_catch_up_should_skip_slots_missed_while_down() {
    let state = fired("2024-05-01T02:00:00Z");
    let mut run = start("0 2 * * *", "UTC", false, "2024-05-04T10:00:00Z", state);
    let (_, at) = run.next_request().await;
    assert_eq!(at, utc("2024-05-05T02:00:00Z"));
    run.cancel.cancel();
}

#[test]
fn catch_up_over_the_spring_forward_night_should_give_the_shifted_slot() {
    let s = schedule("30 2 * * *", "Europe/Paris");
    let state = fired("2024-03-30T01:30:00Z"); // 02:30 CET on 30 March
    let slot = s
        .catch_up_slot(&state, utc("2024-03-31T10:00:00Z"))
        .unwrap();
    assert_eq!(
        slot,
        Some(utc("2024-03-31T01:00:00Z")),
        "03:00 CEST, as the forward search gives"
    );
}

#[test]
fn due_slot_inside_the_fall_back_hour_should_fire_a_fixed_time_only_once() {
    let s = schedule("30 2 * * *", "Europe/Paris");
    let armed = utc("2024-10-26T12:00:00Z");
    let first = s
        .due_slot(&TriggerState::default(), armed, utc("2024-10-27T00:30:00Z"))
        .unwrap();
    assert_eq!(first, Some(utc("2024-10-27T00:30:00Z")));
    let state = TriggerState {
        last_fired_slot: first,
    };
    // 02:30 CET, the second time the wall clock shows 02:30.
    assert_eq!(
        s.due_slot(&state, armed, utc("2024-10-27T01:30:00Z"))
            .unwrap(),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn running_schedule_should_fire_the_fall_back_day_once_then_the_next_day() {
    let mut run = start(
        "30 2 * * *",
        "Europe/Paris",
        false,
        "2024-10-26T12:00:00Z",
        TriggerState::default(),
    );
    let (_, at) = run.next_request().await;
    assert_eq!(at, utc("2024-10-27T00:30:00Z"));
    let (_, at) = run.next_request().await;
    assert_eq!(
        at,
        utc("2024-10-28T01:30:00Z"),
        "not at 02:30 CET on 27 October"
    );
    run.cancel.cancel();
}
