//! The service's event stream through the real service: a subscriber sees
//! the start, a queued run's life and the MA's state changes in order,
//! numbered without a gap, then the graceful stop, and the stream ends;
//! a long run's progress is sampled and published while it runs.

use crate::support::*;
use autosync_service::{Command, MaStateName, Published, ServiceEvent, ServiceState};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// The next event (bounded by [`EVENT_TIMEOUT`]; `None` once the stream
/// ended).
async fn next(events: &mut broadcast::Receiver<Published>) -> Option<Published> {
    match tokio::time::timeout(EVENT_TIMEOUT, events.recv()).await {
        Ok(Ok(published)) => Some(published),
        Ok(Err(RecvError::Closed)) => None,
        Ok(Err(RecvError::Lagged(n))) => panic!("the test lagged {n} events behind"),
        Err(_) => panic!("no event within {EVENT_TIMEOUT:?}"),
    }
}

/// Events until `last` holds for one (included).
async fn until(
    events: &mut broadcast::Receiver<Published>,
    seen: &mut Vec<Published>,
    last: impl Fn(&ServiceEvent) -> bool,
) {
    loop {
        let published = next(events).await.expect("the stream ended early");
        let done = last(&published.event);
        seen.push(published);
        if done {
            return;
        }
    }
}

/// One MA's events, in a word or two each (progress left out).
fn story(seen: &[Published], ma: &str) -> Vec<String> {
    seen.iter()
        .filter(|p| p.event.ma() == Some(ma))
        .filter_map(|p| match &p.event {
            ServiceEvent::Queued { profile, .. } => Some(format!("queued {profile}")),
            ServiceEvent::RunStarted { profile, .. } => Some(format!("run-started {profile}")),
            ServiceEvent::RunEnded {
                profile, status, ..
            } => Some(format!(
                "run-ended {profile} {}",
                status.map(|s| s.to_string()).unwrap_or_default()
            )),
            ServiceEvent::StateChanged { from, to, .. } => Some(format!(
                "state-changed {}->{}",
                from.map_or("none", |s| s.as_str()),
                to.map_or("none", |s| s.as_str())
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_should_see_a_queued_runs_life_and_the_state_changes_in_order() {
    let dir = converged_quickstart().await;
    let (service, _store) = service(dir.path());
    let mut events = service.subscribe();
    let commands = service.commands();
    let stop = service.shutdown_token();
    let running = tokio::spawn(service.run(false));
    let mut seen = Vec::new();
    // The start: the service, then every MA's first state.
    until(
        &mut events,
        &mut seen,
        |e| matches!(e, ServiceEvent::StateChanged { ma, .. } if ma == "hr"),
    )
    .await;
    assert!(matches!(
        seen[0].event,
        ServiceEvent::Service {
            state: ServiceState::Started,
            ..
        }
    ));
    for ma in ["app", "directory", "hr"] {
        assert_eq!(story(&seen, ma), ["state-changed none->idle"], "{ma}");
    }

    let (reply, answer) = tokio::sync::oneshot::channel();
    commands
        .send(Command::Queue {
            ma: "app".into(),
            profile: "full-import".into(),
            exclusive: false,
            run_immediate: false,
            by: "test".into(),
            reply,
        })
        .unwrap();
    let request = answer.await.unwrap().unwrap().id();
    until(&mut events, &mut seen, |e| {
        matches!(
            e,
            ServiceEvent::StateChanged { ma, to: Some(MaStateName::Idle), .. } if ma == "app"
        )
    })
    .await;
    assert_eq!(
        story(&seen, "app"),
        [
            "state-changed none->idle",
            "queued full-import",
            "run-started full-import",
            "state-changed idle->running",
            "run-ended full-import success",
            "state-changed running->idle",
        ]
    );
    for p in &seen {
        match &p.event {
            ServiceEvent::Queued { request: r, .. }
            | ServiceEvent::RunStarted {
                request: Some(r), ..
            } if p.event.ma() == Some("app") => {
                assert_eq!(*r, request, "{p:?}");
            }
            _ => {}
        }
    }

    stop.cancel();
    while let Some(published) = next(&mut events).await {
        seen.push(published);
    }
    let service: Vec<ServiceState> = seen
        .iter()
        .filter_map(|p| match p.event {
            ServiceEvent::Service { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    assert_eq!(
        service,
        [
            ServiceState::Started,
            ServiceState::Stopping,
            ServiceState::Stopped
        ]
    );
    // Numbered from 1, without a gap.
    for (i, p) in seen.iter().enumerate() {
        assert_eq!(p.seq, i as u64 + 1, "{p:?}");
    }
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_runs_progress_should_be_published_while_it_runs() {
    let dir = quickstart();
    // A source big enough that the import runs for more than a second.
    let mut text =
        String::from("employee_id,first_name,last_name,email,department,title,manager_id,status\n");
    for i in 0..300_000 {
        text.push_str(&format!(
            "E{i:07},Ann,Lee{i},ann.lee{i}@example.com,Ops,Clerk,,active\n"
        ));
    }
    std::fs::write(dir.path().join("data/hr.csv"), text).unwrap();
    let (service, _store) = service(dir.path());
    let mut events = service.subscribe();
    let stop = service.shutdown_token();
    let running = tokio::spawn(service.run(false));
    let mut seen = Vec::new();
    // The import (or, on a machine fast enough to import it in under a
    // second, one of the runs over its 300,000 objects that follow).
    until(
        &mut events,
        &mut seen,
        |e| matches!(e, ServiceEvent::StepProgress { processed, .. } if *processed > 0),
    )
    .await;
    let Some(ServiceEvent::StepProgress {
        ma,
        profile,
        step,
        step_index,
        ..
    }) = seen.last().map(|p| &p.event)
    else {
        panic!("{:?}", seen.last());
    };
    assert!(step.is_some() && step_index.is_some(), "{seen:?}");
    // It is the progress of a run that started and has not ended.
    let started = seen.iter().rposition(|p| {
        matches!(&p.event, ServiceEvent::RunStarted { ma: m, profile: pr, .. } if m == ma && pr == profile)
    });
    let ended = seen.iter().rposition(
        |p| matches!(&p.event, ServiceEvent::RunEnded { ma: m, profile: pr, .. } if m == ma && pr == profile),
    );
    assert!(started.is_some(), "{seen:?}");
    assert!(ended < started, "{seen:?}");
    stop.cancel();
    running.await.unwrap().unwrap();
}
