//! Triggers that fail, remembered for the status: a trigger that cannot
//! do its work often carries on retrying (a change listener that cannot
//! listen opens it again after a backoff, for ever), its notification is
//! sent once (the notifier keeps repeats quiet), and the MA's state stays
//! `idle`: without this, nothing an operator looks at says that nothing
//! listens (a black-box review). Kept in memory only: a trigger built
//! again (a restart, a reload) has not failed yet.
//!
//! A trigger's problem goes when that trigger next asks for a run (it
//! works again), or when its MA's triggers are rebuilt.

use super::status::TriggerProblem;
use super::{Effect, Machine, Notice, trigger_error_reason};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The failing triggers of each MA, by MA then trigger name.
#[derive(Clone, Debug, Default)]
pub(super) struct TriggerProblems(BTreeMap<String, BTreeMap<String, TriggerProblem>>);

impl TriggerProblems {
    /// `trigger` of `ma` failed at `now` with `message`.
    pub(super) fn failed(&mut self, ma: &str, trigger: &str, message: &str, now: DateTime<Utc>) {
        let problems = self.0.entry(ma.to_owned()).or_default();
        match problems.get_mut(trigger) {
            Some(p) => {
                p.message = message.to_owned();
                p.last = now;
                p.count = p.count.saturating_add(1);
            }
            None => {
                problems.insert(
                    trigger.to_owned(),
                    TriggerProblem {
                        trigger: trigger.to_owned(),
                        message: message.to_owned(),
                        since: now,
                        last: now,
                        count: 1,
                    },
                );
            }
        }
    }

    /// A trigger of `ma` asked for a run as `asked`: the failing trigger
    /// it is works again. A request may name its trigger with a note
    /// after it (the change-notification trigger's catch-up asks as
    /// `change-notification (every change) (catch-up after listening
    /// again)`): the trigger is its name, or its name then a space.
    pub(super) fn asked(&mut self, ma: &str, asked: &str) {
        let Some(problems) = self.0.get_mut(ma) else {
            return;
        };
        problems.retain(|trigger, _| !is_named(asked, trigger));
        if problems.is_empty() {
            self.0.remove(ma);
        }
    }

    /// `ma`'s triggers are stopped or built again: none has failed yet.
    pub(super) fn forget(&mut self, ma: &str) {
        self.0.remove(ma);
    }

    /// `ma`'s failing triggers, by name.
    pub(super) fn of(&self, ma: &str) -> Vec<TriggerProblem> {
        self.0
            .get(ma)
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Whether a request made as `asked` comes from the trigger `trigger`.
fn is_named(asked: &str, trigger: &str) -> bool {
    asked
        .strip_prefix(trigger)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

impl Machine {
    /// A trigger failed: notified, and remembered for the status.
    pub(super) fn trigger_failed(
        &mut self,
        ma: String,
        trigger: String,
        message: &str,
        now: DateTime<Utc>,
    ) {
        let message = trigger_error_reason(&ma, &trigger, message);
        self.trigger_problems.failed(&ma, &trigger, &message, now);
        self.notify(Notice::TriggerError {
            message,
            ma,
            trigger,
        });
    }

    /// The MAs whose triggers this event stops or builds again (a reload
    /// that changed, added or removed them) forget their failing ones.
    pub(super) fn forget_restarted_triggers(&mut self) {
        for effect in &self.effects {
            if let Effect::RestartTriggers { ma, .. } = effect {
                self.trigger_problems.forget(ma);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_should_come_from_the_trigger_it_names_or_names_with_a_note() {
        let t = "change-notification (every change)";
        assert!(is_named(t, t));
        assert!(is_named(
            "change-notification (every change) (catch-up after listening again)",
            t
        ));
        assert!(!is_named("change-notification (every change)x", t));
        assert!(!is_named("interval (every 15m)", t));
        assert!(!is_named("change-notification", t));
    }
}
