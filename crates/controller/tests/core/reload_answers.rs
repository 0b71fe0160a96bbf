//! What a reload does for the MAs it adds (their sources are read once, as
//! a start reads them) and what its answer names (the full syncs the
//! engine says are needed: the ones the status and the notifications
//! show). Found by a black-box review of the release binary.

use crate::sim::Setup;
use crate::support::at;
use autosync_controller::machine::{
    Answer, Effect, Event, Machine, MachineConfig, Notice, Options, ReplyId, ServiceEvent,
};

/// A machine started on `config`, every read of its start answered.
fn started(config: MachineConfig) -> Machine {
    let mut machine = Machine::new(config, Options::default());
    let effects = machine.handle(Event::Started(Box::default()), at(100));
    for e in effects {
        let answer = match e {
            Effect::ReadCounts { .. } => Event::Counts(Default::default()),
            Effect::LookForRuns { .. } => Event::RunsSeen(Ok(Vec::new())),
            _ => continue,
        };
        machine.handle(answer, at(100));
    }
    machine
}

/// The requests queued (or merged), as `MA profile (reason)`.
fn queued(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(ServiceEvent::Queued {
                ma,
                profile,
                reason,
                ..
            }) => Some(format!("{ma} {profile} ({reason})")),
            _ => None,
        })
        .collect()
}

/// The reload's answer among `effects`, if given.
fn answer(effects: &[Effect], reply: ReplyId) -> Option<Result<String, String>> {
    effects.iter().find_map(|e| match e {
        Effect::Reply {
            reply: r,
            answer: Answer::Done(a),
        } if *r == reply => Some(a.clone().map_err(|refusal| refusal.message)),
        _ => None,
    })
}

fn reload(machine: &mut Machine, config: MachineConfig, reply: u64) -> Vec<Effect> {
    machine.handle(
        Event::Reload {
            reply: ReplyId(reply),
            config: Box::new(config),
        },
        at(110),
    )
}

/// A source added by a reload is read at once (a start reads a source that
/// never imported, and a change poll asks once as it starts); its file
/// watch or poll would see only what changes from now on, so the data
/// already there waited for ever. A target added (no import flows) and a
/// source that does not start by itself are not read.
#[test]
fn a_reload_that_adds_a_source_should_import_it_once_as_a_start_would() {
    let full = Setup::default().config(0);
    let mut without = full.clone();
    without.mas.remove("hr");
    without.mas.remove("app");
    let mut machine = started(without.clone());
    let effects = reload(&mut machine, full.clone(), 1);
    let asked = queued(&effects);
    assert!(
        asked
            .iter()
            .any(|q| q.starts_with("hr delta-import")
                && q.contains("reload (management agent added)")),
        "{asked:?}"
    );
    assert!(!asked.iter().any(|q| q.starts_with("app ")), "{asked:?}");
    // The answer says which added MAs are read now: the source, not the
    // target.
    let said = |machine: &mut autosync_controller::Machine| {
        let effects = machine.handle(Event::RulesChecked(Ok(vec![])), at(111));
        answer(&effects, ReplyId(1)).expect("answered").unwrap()
    };
    let message = said(&mut machine);
    assert!(
        message.contains("added: app, hr") && message.contains("imported now: hr)"),
        "{message}"
    );

    let mut stopped = full;
    stopped.mas.get_mut("hr").unwrap().auto_start = false;
    let mut machine = started(without);
    let asked = queued(&reload(&mut machine, stopped, 1));
    assert!(!asked.iter().any(|q| q.starts_with("hr ")), "{asked:?}");
    // An added source that does not start by itself is not said read.
    let message = said(&mut machine);
    assert!(
        message.contains("added: app, hr") && !message.contains("imported now"),
        "{message}"
    );
}

/// The answer names the full syncs the engine says are needed, as the
/// status and the notices do: a target whose rules changed but that was
/// never synchronised needs none (the sources' full syncs apply its
/// outbound flows). The answer named it and the status never showed it.
#[test]
fn a_reload_should_name_the_full_syncs_the_status_and_the_notices_name() {
    let config = Setup::default().config(0);
    let mut machine = started(config.clone());
    let mut next = config;
    let app = next.mas.get_mut("app").unwrap();
    app.fingerprint.push_str("-2");
    app.rules_fingerprint.push_str("-2");
    let effects = reload(&mut machine, next, 1);
    assert!(effects.iter().any(|e| matches!(e, Effect::CheckRules)));
    assert_eq!(
        answer(&effects, ReplyId(1)),
        None,
        "answered before the engine said which full syncs are needed"
    );
    let because = "its synchronisation rules changed since its last full sync";
    let effects = machine.handle(
        Event::RulesChecked(Ok(vec![("hr".into(), because.into())])),
        at(111),
    );
    let message = answer(&effects, ReplyId(1)).expect("answered").unwrap();
    assert!(message.contains("changed: app"), "{message}");
    assert!(
        message.contains("these need a full sync") && message.contains("hr full-sync"),
        "{message}"
    );
    assert!(!message.contains("app full-sync"), "{message}");
    let notified: Vec<&str> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Notice::FullSyncNeeded { ma, .. }) => Some(ma.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(notified, vec!["hr"]);
    let status = machine.status(|_| None);
    assert!(status.mas["hr"].full_sync_needed.is_some());
    assert_eq!(status.mas["app"].full_sync_needed, None);
}

/// With `full_sync_on_rule_change`, the full syncs queued are the ones the
/// engine names, and the answer says so; a check that fails says it
/// cannot tell, and a stop answers a reload still waiting.
#[test]
fn a_reload_should_queue_and_name_the_engines_full_syncs_or_say_it_cannot_tell() {
    let mut config = Setup::default().config(0);
    config.full_sync_on_rule_change = true;
    let mut machine = started(config.clone());
    let mut next = config.clone();
    let app = next.mas.get_mut("app").unwrap();
    app.fingerprint.push_str("-2");
    app.rules_fingerprint.push_str("-2");
    let effects = reload(&mut machine, next.clone(), 1);
    assert!(
        !queued(&effects).iter().any(|q| q.contains("full-sync")),
        "{:?}",
        queued(&effects)
    );
    let effects = machine.handle(
        Event::RulesChecked(Ok(vec![("hr".into(), "the rules changed".into())])),
        at(111),
    );
    let message = answer(&effects, ReplyId(1)).expect("answered").unwrap();
    assert!(
        message.contains("full syncs queued: hr full-sync"),
        "{message}"
    );
    let asked = queued(&effects);
    assert!(
        asked.iter().any(|q| q.starts_with("hr full-sync")),
        "{asked:?}"
    );
    assert!(!asked.iter().any(|q| q.starts_with("app full-sync")));

    let mut machine = started(config.clone());
    reload(&mut machine, next.clone(), 2);
    let effects = machine.handle(
        Event::RulesChecked(Err("the store is locked".into())),
        at(111),
    );
    let message = answer(&effects, ReplyId(2)).expect("answered").unwrap();
    assert!(
        message.contains("changed: app") && message.contains("the store is locked"),
        "{message}"
    );

    let mut machine = started(config);
    reload(&mut machine, next, 3);
    let effects = machine.handle(Event::Shutdown, at(111));
    let message = answer(&effects, ReplyId(3)).expect("answered").unwrap();
    assert!(message.contains("changed: app"), "{message}");
}
