//! Start, reload and stop. At start the persisted state is reconciled with
//! the store (requests whose run completed before a crash are not run
//! again; the others are queued again), requests the configuration cannot
//! run are dropped, connector spaces are reconciled, and MAs whose rules
//! changed are told of. A reload plans the switch to a new configuration;
//! a stop cancels what runs and waits for it.

use super::config::{MaConfig, MachineConfig};
use super::{
    Answer, Effect, Machine, Notice, Phase, Refusal, RefusalCode, ReplyId, ServiceEvent,
    ServiceState, Startup, view_of,
};
use crate::decide::reconcile;
use crate::engine_api::CsState;
use crate::queue::QueuedRequest;
use crate::request::Request;
use autosync_model::{RunReason, RunRecord, RunStatus};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Whether `run` is the completed run of the interrupted request `r`: the
/// request's profile and reason, started when the request's run started
/// (or after it was queued, for a state that does not say) and created
/// after the newest run that existed then (same-second starts), and not
/// closed by the crash.
fn completes(run: &RunRecord, r: &QueuedRequest) -> bool {
    run.profile == r.profile
        && run.reason == r.reason
        && run.started_at >= r.started_at.unwrap_or(r.enqueued_at)
        && r.after_run.is_none_or(|after| run.id > after)
        && run.ended_at.is_some()
        && !matches!(
            run.status,
            RunStatus::StoppedServer
                | RunStatus::InProgress
                | RunStatus::NoStartMaAlreadyRunning
                | RunStatus::StoppedUserRequested
        )
}

impl Machine {
    /// Start-up: see the module documentation.
    pub(super) fn started(&mut self, startup: Startup, now: DateTime<Utc>) {
        self.publish(ServiceEvent::Service {
            at: now,
            state: ServiceState::Started,
        });
        self.state = startup.state;
        self.last_run = startup.last_runs;
        self.newest_run = self.newest_run.max(startup.newest_run);
        self.deletion_stops = startup.deletion_stops;
        // A crash (or a kill) is told: its runs ended `stopped-server`.
        for run in startup.closed {
            self.run_news(&run);
        }
        self.requeue_interrupted(&startup.recent_runs, now);
        // The configuration may have changed while the service was stopped.
        if !self.drop_stale_requests().is_empty() {
            self.dirty = true;
        }
        // Runs that exist now are history: reconciliation covers what they
        // left to do, so only later runs count as unmanaged.
        self.state.last_seen_run = self.state.last_seen_run.max(startup.newest_run);
        self.seen.clear();
        self.phase = super::Phase::Running;
        self.reconcile_with(startup.cs, now);
        self.check_rules_applied(startup.full_syncs_needed, now);
        for request in startup.initial {
            self.trigger_request(request, now);
        }
        // Changes made while the service was stopped: a watched file
        // written after its MA's last import (or an MA that never
        // imported) asks for its import, on MAs that start by themselves.
        for w in startup.watched {
            let starts = self
                .config
                .mas
                .get(&w.request.ma)
                .is_some_and(|m| m.auto_start);
            if starts && w.last_import.is_none_or(|l| w.modified > l) {
                self.trigger_request(w.request, now);
            }
        }
        self.schedule_chores(now);
    }

    /// Requests that were running when the last service ended without
    /// finishing them go back into their queues, unless the store shows
    /// their run completed (the process died after the run ended, before
    /// the state was written): what it left to do is found by
    /// reconciliation.
    fn requeue_interrupted(
        &mut self,
        recent: &BTreeMap<String, Vec<RunRecord>>,
        now: DateTime<Utc>,
    ) {
        let interrupted = std::mem::take(&mut self.state.running);
        let mut requests = Vec::new();
        for r in &interrupted {
            let completed = recent
                .get(&r.ma)
                .and_then(|runs| runs.iter().find(|run| completes(run, r)));
            match completed {
                Some(run) => tracing::info!(
                    ma = %r.ma, profile = %r.profile, run_id = run.id, status = %run.status,
                    "the run of an interrupted request had completed; not run again"
                ),
                None => requests.push(r.request()),
            }
        }
        if !interrupted.is_empty() {
            self.dirty = true;
        }
        self.push(requests, now);
    }

    /// Drops queued, deferred (paused triggers) and threshold-held
    /// requests whose MA or profile the configuration does not have
    /// (loudly); returns them as `MA profile`.
    fn drop_stale_requests(&mut self) -> Vec<String> {
        let mut dropped = Vec::new();
        let config = &self.config;
        let runnable = |r: &Request| {
            config
                .mas
                .get(&r.ma)
                .is_some_and(|m| m.info.steps(&r.profile).is_some())
        };
        for control in self.state.mas.values_mut() {
            let held = control.threshold.as_mut().map(|t| &mut t.held);
            for list in [Some(&mut control.deferred), held].into_iter().flatten() {
                list.retain(|r| {
                    let keep = runnable(r);
                    if !keep {
                        tracing::warn!(ma = %r.ma, profile = %r.profile, "dropped a waiting request: the configuration has no such management agent or run profile");
                        dropped.push(format!("{} {}", r.ma, r.profile));
                    }
                    keep
                });
            }
        }
        let names: Vec<String> = self
            .state
            .queues
            .iter()
            .map(|(n, _)| n.to_owned())
            .collect();
        for name in names {
            let stale: Vec<QueuedRequest> = self
                .state
                .queues
                .get(&name)
                .map(|q| {
                    q.iter()
                        .filter(|r| {
                            self.config
                                .mas
                                .get(&name)
                                .is_none_or(|m| m.info.steps(&r.profile).is_none())
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for r in stale {
                self.state.queues.get_mut(&name).remove(r.id);
                tracing::warn!(ma = %r.ma, profile = %r.profile, "dropped a queued request: the configuration has no such management agent or run profile");
                dropped.push(format!("{} {}", r.ma, r.profile));
            }
        }
        dropped
    }

    /// The counts asked for reconciliation came.
    pub(super) fn counts_read(
        &mut self,
        cs: BTreeMap<String, Option<CsState>>,
        now: DateTime<Utc>,
    ) {
        self.chores.reading_counts = false;
        if self.phase == Phase::Running {
            self.reconcile_with(cs, now);
        }
    }

    /// Queues what the connector spaces still need.
    fn reconcile_with(&mut self, cs: BTreeMap<String, Option<CsState>>, now: DateTime<Utc>) {
        for (ma, counts) in cs {
            if let Some(m) = self.view.mas.get_mut(&ma) {
                m.cs = counts;
            }
        }
        let decision = reconcile(&self.view);
        for report in &decision.reports {
            tracing::warn!("{report}");
        }
        self.push(decision.requests, now);
    }

    /// The MAs whose rules changed since their last full sync (a
    /// configuration edited while the service was stopped, or reloaded):
    /// with `full_sync_on_rule_change` their full syncs are queued; by
    /// default the service asks for them (in `status`, the log and a
    /// notification) and leaves the choice to an operator.
    pub(super) fn check_rules_applied(
        &mut self,
        needed: Result<Vec<(String, String)>, String>,
        now: DateTime<Utc>,
    ) {
        let needed = match needed {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("cannot tell which MAs need a full sync: {e}");
                return;
            }
        };
        // Rules put back as they were at an MA's last full sync (a reload
        // undone): no longer needed.
        self.full_sync_needed
            .retain(|ma, _| needed.iter().any(|(m, _)| m == ma));
        for (ma, because) in needed {
            let Some(config) = self.config.mas.get(&ma) else {
                continue;
            };
            match config.full_sync_profile() {
                Some(p) if self.config.full_sync_on_rule_change => {
                    tracing::info!(ma = %ma, profile = %p, "{because}: full sync queued");
                    self.push(
                        vec![Request {
                            ma: ma.clone(),
                            profile: p,
                            exclusive: false,
                            run_immediate: false,
                            reason: RunReason::Reconciliation {
                                because: because.clone(),
                            },
                            chain: Vec::new(),
                        }],
                        now,
                    );
                }
                profile => {
                    if self.full_sync_needed.get(&ma) == Some(&because) {
                        continue;
                    }
                    let how = match profile {
                        Some(p) => format!("`autosync queue {ma} {p}`"),
                        None => format!("a run profile with a full sync step on `{ma}`"),
                    };
                    tracing::warn!(ma = %ma, "{because}: a full sync re-applies the rules; queue one with {how}, or set `full_sync_on_rule_change = true`");
                    self.full_sync_needed.insert(ma.clone(), because.clone());
                    self.notify(Notice::FullSyncNeeded { ma, because });
                }
            }
        }
    }

    /// Switches to a new configuration. Running profiles finish; MAs whose
    /// definition changed, came or went get new triggers; changed and added
    /// sources are read once; requests for MAs or profiles that no longer
    /// exist are dropped with a warning; changed sync rules need full
    /// syncs. The answer says what changed; it is given once the engine
    /// said which MAs need a full sync ([`Machine::rules_checked`]).
    pub(super) fn reload(&mut self, reply: ReplyId, config: MachineConfig, now: DateTime<Utc>) {
        if self.phase != Phase::Running {
            self.reply(
                reply,
                Answer::Done(Err(Refusal::new(
                    RefusalCode::ServiceStopping,
                    "the service is stopping",
                ))),
            );
            return;
        }
        let old = std::mem::replace(&mut self.config, config);
        let (mut changed, mut added, mut removed, mut rules_changed) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (name, ma) in &self.config.mas {
            match old.mas.get(name) {
                None => added.push(name.clone()),
                Some(o) if o.fingerprint != ma.fingerprint => {
                    changed.push(name.clone());
                    if o.rules_fingerprint != ma.rules_fingerprint {
                        rules_changed.push(name.clone());
                    }
                }
                Some(_) => {}
            }
        }
        for name in old.mas.keys() {
            if !self.config.mas.contains_key(name) {
                removed.push(name.clone());
            }
        }
        self.view = view_of(&self.config, Some(&self.view));
        let dropped = self.drop_stale_requests();
        for name in &removed {
            self.state.mas.remove(name);
        }
        self.forget_retries_of_removed();
        for name in changed.iter().chain(&added).chain(&removed) {
            let start = self.config.mas.get(name).is_some_and(|m| m.enabled);
            self.effects.push(Effect::RestartTriggers {
                ma: name.clone(),
                start,
            });
        }
        // A changed source's triggers start again: a change the old ones
        // had seen and not yet asked for (a debounce window, a poll's next
        // read) would be lost; one import asks what changed (found by a
        // black-box review). An added source is read once too, as a start
        // reads a source that never imported (or changed while no trigger
        // of it ran): its triggers only see what changes from now on, and
        // a change poll learns its token without asking (a black-box
        // review: an added source was never imported until its data
        // changed).
        let mut asks = Vec::new();
        let mut imported_added = Vec::new();
        let added_from = changed.len();
        for (i, name) in changed.iter().chain(&added).enumerate() {
            let Some(m) = self.config.mas.get(name).filter(|m| m.enabled && m.imports) else {
                continue;
            };
            // Not while its triggers are paused or it is stopped (their
            // requests wait for the operator; an MA that does not start by
            // itself is not read at start either), nor when an import of
            // it waits already.
            let held =
                self.state.mas.get(name).is_some_and(|c| c.paused) || !self.started_flag(name);
            let waiting = self.state.queues.get(name).is_some_and(|q| {
                q.iter().any(|r| {
                    m.info.steps(&r.profile).is_some_and(|steps| {
                        steps.iter().any(|s| {
                            matches!(
                                s,
                                autosync_model::StepType::DeltaImport
                                    | autosync_model::StepType::FullImport
                            )
                        })
                    })
                })
            });
            if held || waiting {
                continue;
            }
            let why = if i < added_from {
                "reload (its triggers started again)"
            } else {
                "reload (management agent added)"
            };
            if let Ok(profile) =
                crate::profiles::resolve_profiles(&m.info, &m.profiles).confirming_import
            {
                asks.push(Request::trigger(name, &profile, why));
                if i >= added_from {
                    imported_added.push(name.clone());
                }
            }
        }
        self.push(asks, now);
        // An MA added again finds what its connector space still holds
        // (pending exports of an earlier definition of that name):
        // reconciliation queues it now, not at the next hourly one.
        if !added.is_empty() && !self.chores.reading_counts {
            self.read_counts_for_reconciliation();
        }
        let metaverse_changed = old.metaverse_fingerprint != self.config.metaverse_fingerprint;
        if !rules_changed.is_empty() || metaverse_changed {
            // A full sync running now runs on the rules before (another
            // MA's flows and the metaverse's count for every source; a
            // change of the metaverse alone, its precedence or deletion
            // rules, too: a code review).
            for name in self.config.mas.keys() {
                self.rules_since.insert(name.clone(), now);
            }
        }
        self.dirty = true;
        // Which MAs need a full sync is the engine's to say (the rules each
        // connector space was last synchronised under, in the store): the
        // answer waits for it, so that it names what the status and the
        // notifications name, and those full syncs are queued with
        // `full_sync_on_rule_change` (a target never synchronised needs
        // none: the sources' full syncs apply its outbound rules; the
        // answer named it and the status did not, found by a black-box
        // review).
        self.chores.checking_rules = true;
        self.effects.push(Effect::CheckRules);
        let mut parts = vec!["configuration reloaded".to_owned()];
        let list = |v: &[String]| v.join(", ");
        if !changed.is_empty() {
            parts.push(format!("changed: {}", list(&changed)));
        }
        if !added.is_empty() {
            // Only the sources actually read now are said to be (one
            // disabled, stopped or paused is not: a black-box review).
            let imported = if imported_added.is_empty() {
                String::new()
            } else {
                format!("; imported now: {}", list(&imported_added))
            };
            parts.push(format!(
                "added: {} (each one's connector space, new or left by an earlier definition of that name, is reconciled now{imported})",
                list(&added)
            ));
        }
        if !removed.is_empty() {
            parts.push(format!(
                "removed: {} (the connector space stays in the store, and so do its objects' links to the metaverse, until `autosync cs delete MA`; an MA renamed is a new MA with an empty connector space)",
                list(&removed)
            ));
        }
        if metaverse_changed {
            parts.push(
                "the metaverse changed (object types, precedence or deletion rules): the MAs it needs a full sync of are named next, and by `autosync status`"
                    .to_owned(),
            );
        }
        if changed.is_empty() && added.is_empty() && removed.is_empty() && !metaverse_changed {
            parts.push("no management agent changed".to_owned());
        }
        if !dropped.is_empty() {
            parts.push(format!("dropped queued requests: {}", list(&dropped)));
        }
        self.reloads_waiting.push((reply, parts.join("; ")));
    }

    /// The engine said which MAs need a full sync (asked by a reload):
    /// the status, the notifications and the full syncs queued follow it,
    /// and the oldest reload waiting is answered with them.
    pub(super) fn rules_checked(
        &mut self,
        needed: Result<Vec<(String, String)>, String>,
        now: DateTime<Utc>,
    ) {
        let waiting = (!self.reloads_waiting.is_empty()).then(|| self.reloads_waiting.remove(0));
        self.chores.checking_rules = !self.reloads_waiting.is_empty();
        let named: Result<Vec<String>, String> = match &needed {
            Ok(n) => Ok(n.iter().map(|(ma, _)| ma.clone()).collect()),
            Err(e) => Err(e.clone()),
        };
        self.check_rules_applied(needed, now);
        let Some((reply, mut message)) = waiting else {
            return;
        };
        match named {
            Ok(mut mas) => {
                mas.sort();
                let (mut queued, mut asked) = (Vec::new(), Vec::new());
                for ma in mas {
                    match self.config.mas.get(&ma).map(MaConfig::full_sync_profile) {
                        None => {}
                        Some(Some(p)) if self.config.full_sync_on_rule_change => {
                            queued.push(format!("{ma} {p}"));
                        }
                        Some(Some(p)) => asked.push(format!("{ma} {p}")),
                        Some(None) => asked.push(format!("{ma} (no full-sync profile)")),
                    }
                }
                let mut said = Vec::new();
                if !queued.is_empty() {
                    said.push(format!("full syncs queued: {}", queued.join(", ")));
                }
                if !asked.is_empty() {
                    said.push(format!(
                        "these need a full sync (queue them, or set `full_sync_on_rule_change = true`): {}",
                        asked.join(", ")
                    ));
                }
                if !said.is_empty() {
                    message.push_str("; sync rules changed since their last full sync; ");
                    message.push_str(&said.join("; "));
                }
            }
            Err(e) => message.push_str(&format!(
                "; which MAs need a full sync cannot be told now ({e})"
            )),
        }
        // Answered once what the reload changed is written.
        self.dirty = true;
        self.reply(reply, Answer::Done(Ok(message)));
    }

    /// Answers the reloads still waiting for the engine's word on full
    /// syncs (the service stops: it would never come).
    fn answer_waiting_reloads(&mut self) {
        for (reply, message) in std::mem::take(&mut self.reloads_waiting) {
            self.reply(
                reply,
                Answer::Done(Ok(format!(
                    "{message}; which MAs need a full sync is not known (the service is stopping)"
                ))),
            );
        }
    }

    /// Graceful stop: cancel running profiles at their next safe point;
    /// [`Effect::Stopped`] follows once they (and any approval or
    /// rejection the engine is carrying out) ended.
    pub(super) fn shutdown(&mut self) {
        if matches!(self.phase, Phase::Stopping | Phase::Stopped) {
            return;
        }
        self.answer_waiting_reloads();
        if !self.active.is_empty() {
            tracing::info!(
                running = self.active.len(),
                "stopping: cancelling running profiles"
            );
        }
        self.publish(ServiceEvent::Service {
            at: self.now,
            state: ServiceState::Stopping,
        });
        let mas: Vec<String> = self.active.keys().cloned().collect();
        for ma in mas {
            self.effects.push(Effect::Cancel { ma });
        }
        self.phase = Phase::Stopping;
    }
}
