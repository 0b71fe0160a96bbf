//! Starting runs: what the scheduler allows (run modes, lock groups, no
//! starvation), held back by blackout windows, maintenance mode, MAs held
//! for a retry, and the start stagger; why each waiting MA waits; and the
//! periodic chores (reconciliation, looking for runs started elsewhere,
//! trimming history).

use super::{Active, Effect, FIRST_TRIM, Machine, ServiceEvent, TRIM_EVERY, UNMANAGED_POLL, after};
use crate::engine_api::ProgressState;
use crate::queue::QueuedRequest;
use crate::scheduler::{Running, Slot};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

impl Machine {
    /// Releases the MAs whose hold ended and queues the retries of
    /// per-object errors that are due.
    pub(super) fn release_due(&mut self, now: DateTime<Utc>) {
        self.held.retain(|_, h| h.until > now);
        self.release_object_retries(now);
    }

    /// Asks for the periodic reads that are due (one of each in flight).
    pub(super) fn chores_due(&mut self, now: DateTime<Utc>) {
        if self.chores.next_reconcile.is_some_and(|t| t <= now) && !self.chores.reading_counts {
            let every = self.jittered(self.config.reconcile_every);
            self.chores.next_reconcile = Some(after(now, every));
            self.read_counts_for_reconciliation();
        }
        if self.chores.next_poll.is_some_and(|t| t <= now) && !self.chores.looking_for_runs {
            self.chores.next_poll = Some(after(now, UNMANAGED_POLL));
            self.look_for_runs();
        }
        if self.chores.next_trim.is_some_and(|t| t <= now) {
            let every = self.jittered(TRIM_EVERY);
            self.chores.next_trim = Some(after(now, every));
            if let Ok(keep) = chrono::Duration::from_std(self.config.keep_history)
                && let Some(before) = now.checked_sub_signed(keep)
            {
                self.effects.push(Effect::TrimHistory { before });
            }
        }
    }

    /// The chores' first times, at start.
    pub(super) fn schedule_chores(&mut self, now: DateTime<Utc>) {
        let every = self.jittered(self.config.reconcile_every);
        self.chores.next_reconcile = Some(after(now, every));
        self.chores.next_poll = Some(after(now, UNMANAGED_POLL));
        self.chores.next_trim = (!self.once).then(|| after(now, FIRST_TRIM));
    }

    /// Reads every MA's counts; reconciliation follows ([`Machine::counts_read`]).
    pub(super) fn read_counts_for_reconciliation(&mut self) {
        self.chores.reading_counts = true;
        let mas = self.config.mas.keys().cloned().collect();
        self.effects.push(Effect::ReadCounts { mas });
    }

    /// The MAs in one of their blackout windows now.
    fn in_blackout(&self, now: DateTime<Utc>) -> BTreeSet<String> {
        self.config
            .mas
            .iter()
            .filter(|(_, m)| !m.blackouts.is_empty() && m.blackouts.active_at(now))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Just after the next blackout window of any MA starts or ends.
    pub(super) fn next_blackout_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = self
            .config
            .mas
            .values()
            .filter(|m| !m.blackouts.is_empty())
            .filter_map(|m| m.blackouts.next_change(now))
            .min()?;
        Some(after(next, std::time::Duration::from_millis(1)))
    }

    /// Why an MA that a hold keeps back waits.
    fn hold_reason(&self, ma: &str) -> Option<String> {
        self.held.get(ma).map(|h| h.describe())
    }

    /// Starts what the scheduler allows; returns when to look again if the
    /// start stagger holds a start back.
    pub(super) fn start_planned(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut running: Vec<Running> = self.active.values().map(|a| a.running.clone()).collect();
        for (ma, run) in &self.unmanaged {
            running.push(Running {
                ma: ma.clone(),
                profile: run.profile.clone(),
                has_sync: self
                    .config
                    .mas
                    .get(ma)
                    .is_some_and(|m| m.info.has_sync(&run.profile)),
                exclusive: false,
            });
        }
        let blackout = self.in_blackout(now);
        let maintenance = self.state.maintenance.is_some();
        let plan = {
            let slots: Vec<Slot<'_>> = self
                .config
                .mas
                .iter()
                .map(|(name, m)| {
                    let head = self.state.queues.peek(name);
                    Slot {
                        ma: name,
                        state: self.ma_state(name),
                        in_blackout: self.held.contains_key(name.as_str())
                            || maintenance
                            || blackout.contains(name.as_str()),
                        head,
                        head_has_sync: head.is_some_and(|h| m.info.has_sync(&h.profile)),
                    }
                })
                .collect();
            self.config.scheduler.plan(&running, &slots)
        };
        for (ma, reason) in &plan.waiting {
            tracing::debug!(ma = %ma, "{reason}");
        }
        self.waiting = plan
            .waiting
            .iter()
            .map(|(ma, r)| {
                let reason = if maintenance {
                    "maintenance mode".to_owned()
                } else if blackout.contains(ma) {
                    "in a blackout window".to_owned()
                } else if let Some(why) = self.hold_reason(ma) {
                    why
                } else {
                    r.to_string()
                };
                (ma.clone(), reason)
            })
            .collect();
        let stagger = chrono::Duration::from_std(self.config.start_stagger).unwrap_or_default();
        for start in plan.start {
            if !stagger.is_zero()
                && !self.active.is_empty()
                && let Some(last) = self.last_start
                && last + stagger > now
            {
                return Some(last + stagger);
            }
            let Some(request) = self.state.queues.pop(&start.ma) else {
                continue;
            };
            if request.id != start.request {
                tracing::error!(ma = %start.ma, "the queue head changed while planning; planning again");
                self.state
                    .queues
                    .push(request.request(), request.enqueued_at);
                return Some(now);
            }
            self.spawn(start.running(), request, now);
        }
        None
    }

    fn spawn(&mut self, running: Running, mut request: QueuedRequest, now: DateTime<Utc>) {
        request.started_at = Some(now);
        request.after_run = Some(self.newest_run);
        tracing::info!(ma = %request.ma, profile = %request.profile, reason = %request.reason, "starting");
        self.last_start = Some(now);
        self.effects.push(Effect::Start(request.clone()));
        self.publish(ServiceEvent::RunStarted {
            at: now,
            ma: request.ma.clone(),
            profile: request.profile.clone(),
            request: Some(request.id),
            reason: request.reason.clone(),
        });
        self.active.insert(
            running.ma.clone(),
            Active {
                running,
                request,
                began: now,
                progress: ProgressState::default(),
            },
        );
        self.dirty = true;
    }
}
