//! Runs the controller did not start (e.g. `autosync run-profile` while
//! the service runs), found by looking at the store's run history after a
//! cursor: one in progress holds its MA's locks in the scheduler until it
//! ends; one that ended is handled as the controller's own (follow-ups,
//! thresholds, notifications). The cursor only passes a run once it is
//! handled, so none is missed and none handled twice.

use super::{Effect, Machine, Phase, SeenRun, ServiceEvent};
use autosync_model::RunStatus;
use chrono::{DateTime, Utc};

impl Machine {
    /// Asks for the runs after the cursor.
    pub(super) fn look_for_runs(&mut self) {
        self.chores.looking_for_runs = true;
        self.effects.push(Effect::LookForRuns {
            after: self.state.last_seen_run,
            known: self.seen.clone(),
            always: !self.unmanaged.is_empty(),
        });
    }

    /// The runs after the cursor, oldest first.
    pub(super) fn runs_seen(&mut self, runs: Result<Vec<SeenRun>, String>, now: DateTime<Utc>) {
        self.chores.looking_for_runs = false;
        let runs = match runs {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!("cannot read the runs started outside the controller: {e}");
                return;
            }
        };
        if self.phase != Phase::Running {
            return;
        }
        let mut cursor_blocked = false;
        let cursor_before = self.state.last_seen_run;
        for SeenRun { record: run, facts } in runs {
            self.newest_run = self.newest_run.max(run.id);
            let handled = self.seen.contains(&run.id);
            if run.status == RunStatus::InProgress {
                cursor_blocked = true;
                if !self.active.contains_key(&run.ma) && !handled {
                    if self.unmanaged.get(&run.ma).is_none_or(|u| u.id != run.id) {
                        tracing::info!(ma = %run.ma, profile = %run.profile, run_id = run.id, "a run started outside the controller is in progress; its MA's locks are held until it ends");
                        self.publish(ServiceEvent::RunStarted {
                            at: now,
                            ma: run.ma.clone(),
                            profile: run.profile.clone(),
                            request: None,
                            reason: run.reason.clone(),
                        });
                    }
                    self.unmanaged.insert(run.ma.clone(), run);
                }
                continue;
            }
            if !handled {
                let ours_in_flight = self.active.contains_key(&run.ma)
                    && self.unmanaged.get(&run.ma).is_none_or(|u| u.id != run.id);
                if ours_in_flight {
                    // Ours, ending now: its own end handles it.
                    cursor_blocked = true;
                    continue;
                }
                if self.unmanaged.get(&run.ma).is_some_and(|u| u.id == run.id) {
                    self.unmanaged.remove(&run.ma);
                }
                self.seen.insert(run.id);
                if run.status != RunStatus::NoStartMaAlreadyRunning {
                    super::runs::log_run_ended(&run);
                    tracing::info!(ma = %run.ma, profile = %run.profile, run_id = run.id, "that run was started outside the controller; its follow-ups are queued");
                    self.publish(ServiceEvent::run_ended(now, &run, None));
                    self.followed_up(&run, None, Vec::new(), &facts, now);
                    self.run_news(&run);
                }
            }
            if !cursor_blocked {
                self.state.last_seen_run = run.id;
                self.seen.retain(|id| *id > run.id);
            }
        }
        if self.state.last_seen_run != cursor_before {
            self.dirty = true;
        }
    }
}
