//! A run ended: its follow-ups (`decide`), the staging threshold that may
//! hold its MA's syncs for an operator, its retries, the after hook's
//! decision, and, during a graceful stop, its request queued again.

use super::retries::HoldWhy;
use super::state::HeldThreshold;
use super::{
    Effect, Machine, Notice, Phase, RunCounts, RunEnd, RunFacts, RunOutcome, ServiceEvent,
};
use crate::decide::{Report, decide};
use crate::queue::QueuedRequest;
use crate::request::{ChainLink, Request};
use autosync_model::{RunReason, RunRecord, RunStatus, StepType};
use chrono::{DateTime, Utc};

impl Machine {
    /// A run that [`Effect::Start`] asked for ended.
    pub(super) fn run_ended(&mut self, end: RunEnd, now: DateTime<Utc>) {
        let Some(active) = self.active.remove(&end.ma) else {
            tracing::warn!(ma = %end.ma, "a run ended that the controller does not know of");
            return;
        };
        let request = active.request;
        let began = active.began;
        self.dirty = true;
        let not_run = |message: String| ServiceEvent::RunEnded {
            at: now,
            ma: request.ma.clone(),
            profile: request.profile.clone(),
            request: Some(request.id),
            run_id: None,
            status: None,
            message: Some(message),
            counts: RunCounts::default(),
        };
        let record = match end.outcome {
            RunOutcome::Skipped(why) => {
                tracing::info!(ma = %request.ma, profile = %request.profile, "not run: the before hook skipped it ({why})");
                self.publish(not_run(format!("the before hook skipped it ({why})")));
                return;
            }
            RunOutcome::Ran(record) => {
                self.not_started.remove(&request.ma);
                record
            }
            RunOutcome::NotStarted(e) if e.is_retryable() => {
                self.publish(not_run(format!("the run could not start: {e}")));
                self.after_hook(&request.ma, end.after);
                let count = self
                    .not_started
                    .entry(request.ma.clone())
                    .or_insert((0, String::new()));
                count.0 += 1;
                count.1 = e.to_string();
                let times = count.0;
                if self.once && times == super::ONCE_NOT_STARTED {
                    self.summary
                        .unavailable
                        .push((request.ma.clone(), e.to_string()));
                }
                // Another process's run of the MA ends soon: a moment. A
                // store that cannot be written (a full disk) may take
                // long: the retry policy's growing backoff, not a try (and
                // three log lines) every few seconds.
                let delay = match &e {
                    crate::engine_api::EngineCallError::Unavailable { .. } => {
                        let jitter = self.jitter_unit();
                        self.config
                            .mas
                            .get(&request.ma)
                            .map_or(super::HOLD_BACK, |m| m.retry.delay(times, jitter))
                            .max(super::HOLD_BACK)
                    }
                    _ => super::HOLD_BACK,
                };
                self.hold_back_for(
                    request,
                    HoldWhy::Unavailable(e.to_string()),
                    delay,
                    times,
                    now,
                );
                return;
            }
            RunOutcome::NotStarted(e) => {
                self.publish(not_run(format!("the run could not start: {e}")));
                self.after_hook(&request.ma, end.after);
                tracing::error!(ma = %request.ma, profile = %request.profile, "the run could not start: {e}");
                return;
            }
        };
        self.newest_run = self.newest_run.max(record.id);
        self.publish(ServiceEvent::run_ended(now, &record, Some(request.id)));
        self.after_hook(&request.ma, end.after);
        self.seen.insert(record.id);
        if record.status == RunStatus::NoStartMaAlreadyRunning {
            self.hold_back(request, HoldWhy::Busy, now);
            return;
        }
        log_run_ended(&record);
        self.followed_up(&record, Some(began), request.chain.clone(), &end.facts, now);
        self.retry(&record, &request, now);
        // A run the service's own stop cancelled (a planned restart, an
        // upgrade) is no failure: it runs again at the next start, and
        // nobody is paged for it.
        let stopped_by_us =
            self.phase == Phase::Stopping && record.status == RunStatus::StoppedUserRequested;
        if !stopped_by_us {
            self.run_news(&record);
        }
        if stopped_by_us {
            // What the cancelled run did not get to must run at the next
            // start: its request goes back to the front.
            let mut again = request.request();
            again.run_immediate = true;
            self.push(vec![again], now);
        }
        self.summary.ended += 1;
        if !self.once && self.summary.runs.len() >= super::SUMMARY_RUNS {
            self.summary.runs.remove(0);
        }
        self.summary.runs.push(record);
    }

    /// What a run that ended (the controller's or not) is to operators: a
    /// `run-failed` when its status is news (not one of
    /// `ignore_statuses`); else, when runs of its profile failed, a
    /// `recovered`, but only once no threshold stop waits on its MA. While
    /// one waits (an import over a staging threshold holds its syncs, an
    /// export stopped at the deletion threshold), a run that ends well is
    /// no recovery: nothing the MA imports flows, or its deletes wait (an
    /// import after the one that went over, the confirming import of an
    /// export); the failure goes on, and the first good run of the
    /// profile once `approve` or `reject` ended the stop says it ended.
    pub(super) fn run_news(&mut self, record: &RunRecord) {
        let (ma, profile, now) = (&record.ma, &record.profile, self.now);
        if !self.config.ignore_statuses.contains(&record.status) {
            let failing = &mut self.control_of(ma).failing;
            if !failing.contains_key(profile) {
                failing.insert(profile.clone(), now);
                self.dirty = true;
            }
            self.notify(Notice::RunFailed(record.clone()));
            return;
        }
        let failing = self
            .state
            .mas
            .get(ma)
            .is_some_and(|c| c.failing.contains_key(profile));
        if !failing {
            // The notifier may still hold a failure of the profile that the
            // machine does not know (noted before an upgrade, before the
            // MA was removed and added back, or before a crash between
            // their two saves): it forgets it, and says the profile
            // recovered if it notified that failure. Not published: the
            // machine saw no failure.
            if !self.threshold_waits(ma) {
                self.effects.push(Effect::Notify(Notice::Recovered {
                    ma: ma.clone(),
                    profile: profile.clone(),
                    run_id: record.id,
                    status: record.status,
                    failing_since: now,
                }));
            }
            return;
        }
        if self.threshold_waits(ma) {
            tracing::info!(ma = %ma, profile = %profile, run_id = record.id, status = %record.status, "not recovered: a threshold stop still waits for `autosync approve {ma}` or `autosync reject {ma}`");
            return;
        }
        let Some(failing_since) = self
            .state
            .mas
            .get_mut(ma)
            .and_then(|c| c.failing.remove(profile))
        else {
            return;
        };
        self.dirty = true;
        tracing::info!(ma = %ma, profile = %profile, run_id = record.id, status = %record.status, "recovered: the profile's runs failed since {failing_since}");
        self.notify(Notice::Recovered {
            ma: ma.clone(),
            profile: profile.clone(),
            run_id: record.id,
            status: record.status,
            failing_since,
        });
    }

    /// Whether a threshold stop waits on `ma` for an operator: an import
    /// over a staging threshold, or an export at the deletion threshold.
    pub(super) fn threshold_waits(&self, ma: &str) -> bool {
        self.state
            .mas
            .get(ma)
            .is_some_and(|c| c.threshold.is_some())
            || self.deletion_stops.contains_key(ma)
    }

    /// What the after hook decided about the MA or the service.
    fn after_hook(&mut self, ma: &str, after: super::AfterDecision) {
        match after {
            super::AfterDecision::Continue => {}
            super::AfterDecision::StopMa { reason } => {
                tracing::warn!(ma, "the after hook stopped the MA: {reason}");
                self.control_of(ma).started = Some(false);
            }
            super::AfterDecision::StopService { reason } => {
                tracing::warn!(ma, "the after hook stops the service: {reason}");
                self.effects.push(Effect::StopService { reason });
            }
        }
    }

    /// What follows a run that ended (the controller's or not): triggers
    /// learn of its import, `decide` queues its follow-ups, staging
    /// thresholds may hold its MA's syncs.
    /// `began`: when the machine started the run (`None`: another process
    /// did; its record's start counts).
    pub(super) fn followed_up(
        &mut self,
        record: &RunRecord,
        began: Option<DateTime<Utc>>,
        chain: Vec<ChainLink>,
        facts: &RunFacts,
        now: DateTime<Utc>,
    ) {
        self.last_run.insert(record.ma.clone(), record.clone());
        let steps: Vec<StepType> = self
            .config
            .mas
            .get(&record.ma)
            .and_then(|m| m.info.steps(&record.profile))
            .map(<[StepType]>::to_vec)
            .unwrap_or_default();
        for (ma, cs) in &facts.cs {
            if let Some(m) = self.view.mas.get_mut(ma) {
                m.cs = *cs;
            }
        }
        if let Some(m) = self.view.mas.get_mut(&record.ma) {
            m.chain = chain;
        }
        let decision = decide(record, &steps, &self.view);
        for report in &decision.reports {
            tracing::warn!("{report}");
            if let Report::Oscillation { ma, .. } = report {
                self.summary.oscillations.push(ma.clone());
                self.notify(Notice::Oscillation {
                    ma: ma.clone(),
                    detail: report.to_string(),
                });
            }
        }
        // A full sync that started before the rules in force took effect
        // (a reload during it) ran on the earlier ones: still needed.
        let on_these_rules = self
            .rules_since
            .get(&record.ma)
            .is_none_or(|since| began.unwrap_or(record.started_at) >= *since);
        if on_these_rules
            && record
                .steps
                .iter()
                .any(|s| s.step_type == StepType::FullSync && !s.status.is_stopped())
        {
            self.full_sync_needed.remove(&record.ma);
        }
        if record.steps.iter().any(|s| s.step_type.is_import()) {
            self.effects.push(Effect::ImportSeen {
                ma: record.ma.clone(),
                at: record.started_at,
            });
        }
        if facts.staging_hold_gone {
            self.hold_lifted(record, now);
        }
        self.check_thresholds(record, &facts.staging_exceeded, now);
        self.check_deletion_stop(record, facts);
        for ma in &facts.deletion_stops_gone {
            if ma != &record.ma || facts.deletion_stop.is_none() {
                self.deletion_stops.remove(ma);
            }
        }
        self.push(decision.requests, now);
    }

    /// After a run: whether it stopped at a staging threshold of its MA
    /// (its import went over one, or a sync found one holding). If so the
    /// MA's syncs (a sync that found the hold, and any queued) are held for
    /// an operator, and the follow-up syncs pushed after this are held too.
    fn check_thresholds(&mut self, record: &RunRecord, exceeded: &[String], now: DateTime<Utc>) {
        let Some(config) = self.config.mas.get(&record.ma) else {
            return;
        };
        let stopped_sync = record.steps.iter().any(|s| {
            s.status == RunStatus::StoppedStagingThresholdExceeded && s.step_type.is_sync()
        });
        let stopped = record
            .steps
            .iter()
            .any(|s| s.status == RunStatus::StoppedStagingThresholdExceeded);
        if !stopped {
            return;
        }
        let mut held: Vec<Request> = Vec::new();
        if stopped_sync {
            // A sync that found the hold waits with it, as queued ones do.
            held.push(Request {
                ma: record.ma.clone(),
                profile: record.profile.clone(),
                exclusive: false,
                run_immediate: false,
                reason: record.reason.clone(),
                chain: Vec::new(),
            });
        }
        let waiting = self
            .state
            .mas
            .get(&record.ma)
            .is_some_and(|c| c.threshold.is_some());
        if waiting && stopped_sync {
            // Already waiting for an operator: nothing new to announce.
            if let Some(t) = self.control_of(&record.ma).threshold.as_mut() {
                for r in held {
                    if !t
                        .held
                        .iter()
                        .any(|h| h.profile == r.profile && h.exclusive == r.exclusive)
                    {
                        t.held.push(r);
                    }
                }
            }
            return;
        }
        if waiting && !exceeded.is_empty() {
            // An import while the MA waits: the hold stands, with the
            // figures of what is staged now (announced once, when it began).
            tracing::info!(ma = %record.ma, run_id = record.id, "the staging threshold still holds: {}", exceeded.join(", "));
            if let Some(t) = self.control_of(&record.ma).threshold.as_mut() {
                t.exceeded = exceeded.to_vec();
            }
            self.dirty = true;
            return;
        }
        tracing::error!(
            ma = %record.ma, run_id = record.id,
            "staging threshold exceeded ({}): the MA's syncs wait for `autosync approve {}` or `autosync reject {}`",
            exceeded.join(", "), record.ma, record.ma
        );
        // Syncs already queued for this MA are held too.
        let queued_syncs: Vec<QueuedRequest> = self
            .state
            .queues
            .get(&record.ma)
            .map(|q| {
                q.iter()
                    .filter(|r| config.info.has_sync(&r.profile))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for q in queued_syncs {
            self.state.queues.get_mut(&record.ma).remove(q.id);
            held.push(q.request());
        }
        let threshold = self
            .control_of(&record.ma)
            .threshold
            .get_or_insert_with(|| HeldThreshold {
                run_id: record.id,
                profile: record.profile.clone(),
                exceeded: Vec::new(),
                held: Vec::new(),
                since: now,
            });
        threshold.exceeded.extend(exceeded.iter().cloned());
        for r in held {
            if !threshold
                .held
                .iter()
                .any(|h| h.profile == r.profile && h.exclusive == r.exclusive)
            {
                threshold.held.push(r);
            }
        }
        self.dirty = true;
        self.notify(Notice::ThresholdExceeded {
            ma: record.ma.clone(),
            run_id: record.id,
            exceeded: exceeded.to_vec(),
        });
    }
}

impl Machine {
    /// An import of an MA held by a staging threshold ended and the store
    /// holds no hold any more (the import read the source again and what is
    /// staged is under the thresholds, or an operator settled it from a
    /// shell): the held syncs run, for what is staged now.
    fn hold_lifted(&mut self, record: &RunRecord, now: DateTime<Utc>) {
        let Some(threshold) = self.control_of(&record.ma).threshold.take() else {
            return;
        };
        tracing::info!(
            ma = %record.ma, run_id = record.id,
            "the staging threshold of run {} ({}) no longer holds after run {}: its held syncs run",
            threshold.run_id, threshold.exceeded.join(", "), record.id
        );
        let because = format!(
            "run {} read the source again: what run {} staged over the staging threshold is no longer staged",
            record.id, threshold.run_id
        );
        let mut held = threshold.held;
        for r in &mut held {
            r.run_immediate = true;
            r.reason = RunReason::Reconciliation {
                because: because.clone(),
            };
        }
        self.dirty = true;
        self.push(held, now);
    }

    /// After a run with an export step: whether its export stopped at the
    /// deletion threshold (the MA then waits for an operator, as the status
    /// says) or ran (whatever stopped an earlier one is over).
    fn check_deletion_stop(&mut self, record: &RunRecord, facts: &RunFacts) {
        let exported = record.steps.iter().any(|s| s.step_type == StepType::Export);
        if !exported {
            return;
        }
        let stopped = record
            .steps
            .iter()
            .find(|s| s.status == RunStatus::StoppedDeletionThresholdExceeded);
        match stopped {
            Some(step) => {
                let what = facts.deletion_stop.clone().unwrap_or_else(|| {
                    step.message
                        .clone()
                        .unwrap_or_else(|| "export stopped at the deletion threshold".to_owned())
                });
                self.deletion_stops
                    .insert(record.ma.clone(), (record.id, what));
            }
            None => {
                self.deletion_stops.remove(&record.ma);
            }
        }
    }
}

/// Logs the end of a run the service started. A run that stopped is a
/// WARN with why (the first step's error text; see [`stop_reason`]),
/// except an operator's cancel or a graceful stop (`stopped-user-requested`:
/// INFO, it was asked for); one that completed with per-object errors is a
/// WARN with their count and where to read them; any other end is INFO.
pub fn log_run_ended(record: &RunRecord) {
    let errors: u64 = record.steps.iter().map(|s| s.errors).sum();
    if record.status == RunStatus::StoppedUserRequested {
        tracing::info!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status, "run ended: {}", stop_reason(record)
        );
    } else if record.status.is_stopped() {
        tracing::warn!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status, "run stopped: {}", stop_reason(record)
        );
    } else if matches!(
        record.status,
        RunStatus::CompletedImportErrors
            | RunStatus::CompletedSyncErrors
            | RunStatus::CompletedExportErrors
    ) {
        tracing::warn!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status,
            "run ended with {errors} per-object error(s) (`autosync history {}` lists them)",
            record.id
        );
    } else {
        tracing::info!(
            ma = %record.ma, profile = %record.profile, run_id = record.id,
            status = %record.status, "run ended"
        );
    }
}

/// The error text of the step that stopped a run (else of the first step
/// that has one), with the step: `step 1 delta-import: cannot open ...`.
pub fn run_error(record: &RunRecord) -> Option<String> {
    let (i, step) = record
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.status.is_stopped() && s.message.is_some())
        .or_else(|| {
            record
                .steps
                .iter()
                .enumerate()
                .find(|(_, s)| s.message.is_some())
        })?;
    Some(format!(
        "step {} {}: {}",
        i + 1,
        step.step_type,
        step.message.as_deref().unwrap_or_default()
    ))
}

/// Why a run stopped, in words: its status, then the error text of the
/// step that stopped it (else of the first step that has one), else where
/// to look.
pub fn stop_reason(record: &RunRecord) -> String {
    match run_error(record) {
        Some(error) => format!("{} at {error}", record.status),
        None => format!(
            "{} (no error text recorded; `autosync history {}` shows the run)",
            record.status, record.id
        ),
    }
}
