//! Operators' requests and controls, and trigger requests: queue a
//! profile, start/stop, cancel, clear a queue, pause/resume triggers
//! (their requests deferred, never lost), approve/reject what a threshold
//! stopped, maintenance mode. Each answer says what was done, or what is
//! wrong; each control carried out is published (`control`). During the
//! graceful stop, what would start work is refused (`service-stopping`).

use super::state::Since;
use super::{
    Answer, Effect, Machine, Phase, Refusal, RefusalCode, ReplyId, ServiceEvent, Stops, count_mas,
};
use crate::control::Control;
use crate::engine_api::EngineCallError;
use crate::request::Request;
use crate::scheduler::MaState;
use autosync_model::RunReason;
use chrono::{DateTime, Utc};

/// What a second `maintenance` answers: maintenance mode stays as the
/// first one turned it on (who, since when). The same sentence with and
/// without a service.
pub fn maintenance_already_on(since: &Since) -> String {
    format!(
        "maintenance mode is already on since {} (by {}): nothing changed",
        since.at.format("%Y-%m-%d %H:%M:%S UTC"),
        since.by
    )
}

/// The refusal of what would start work during the graceful stop.
fn stopping(then: &str) -> Refusal {
    Refusal::new(
        RefusalCode::ServiceStopping,
        format!("the service is stopping (a graceful stop): nothing new starts; {then}"),
    )
}

impl Machine {
    /// A trigger's request: queued, or deferred while the MA's triggers
    /// are paused.
    pub(super) fn trigger_request(&mut self, request: Request, now: DateTime<Utc>) {
        if let Some(m) = self.config.mas.get(&request.ma)
            && m.info.steps(&request.profile).is_none()
        {
            // A script trigger that names a profile the MA does not have:
            // the trigger's error, notified, never a run that cannot start
            // (and an error logged at every tick).
            let trigger = match &request.reason {
                RunReason::Trigger { trigger } => trigger.clone(),
                other => other.to_string(),
            };
            let message = Refusal::unknown_profile(&request.ma, &request.profile, &m.info).message;
            if self
                .bad_profiles
                .insert((request.ma.clone(), request.profile.clone()))
            {
                tracing::warn!(ma = %request.ma, trigger = %trigger, "the trigger asked for a run that cannot start: {message} (notified; not logged again)");
            }
            self.trigger_problems
                .failed(&request.ma, &trigger, &message, now);
            self.notify(super::Notice::TriggerError {
                ma: request.ma.clone(),
                trigger,
                message,
            });
            return;
        }
        // The trigger works (again): its last error, if any, is past.
        if let RunReason::Trigger { trigger } = &request.reason {
            self.trigger_problems.asked(&request.ma, trigger);
        }
        let paused = self.state.mas.get(&request.ma).is_some_and(|c| c.paused);
        self.publish(ServiceEvent::TriggerFired {
            at: now,
            ma: request.ma.clone(),
            trigger: match &request.reason {
                RunReason::Trigger { trigger } => trigger.clone(),
                other => other.to_string(),
            },
            profile: request.profile.clone(),
            deferred: paused,
        });
        let control = self.control_of(&request.ma);
        if control.paused {
            if !control
                .deferred
                .iter()
                .any(|d| d.profile == request.profile && d.exclusive == request.exclusive)
            {
                tracing::info!(ma = %request.ma, profile = %request.profile, reason = %request.reason, "triggers paused: the request waits for resume");
                control.deferred.push(request);
            }
            self.dirty = true;
            return;
        }
        self.retry_now_if_unavailable(&request.ma);
        self.push(vec![request], now);
    }

    /// An operator's request to queue a profile.
    pub(super) fn queue(&mut self, reply: ReplyId, request: Request, now: DateTime<Utc>) {
        let (ma, profile) = (request.ma.clone(), request.profile.clone());
        let answer = match self.config.mas.get(&ma) {
            _ if self.phase != Phase::Running => Err(stopping(
                "queue it again once the service has stopped (the request then waits in the store for the next start) or has started again",
            )),
            None => Err(Refusal::unknown_ma(
                &ma,
                self.config.mas.keys().map(String::as_str),
            )),
            Some(m) if m.info.steps(&profile).is_none() => {
                Err(Refusal::unknown_profile(&ma, &profile, &m.info))
            }
            // Queued, it would wait for ever, silently (a review).
            Some(_) if self.ma_state(&ma) == MaState::Disabled => Err(Refusal::new(
                RefusalCode::MaDisabled,
                format!(
                    "`{ma}` is disabled in the configuration (`enabled = false` under its `[ma.controller]`): no run of it starts; enable it and reload"
                ),
            )),
            Some(m)
                if m.info.has_sync(&profile)
                    && self
                        .state
                        .mas
                        .get(&ma)
                        .is_some_and(|c| c.threshold.is_some()) =>
            {
                Err(Refusal::new(
                    RefusalCode::HeldByThreshold,
                    format!(
                        "`{ma}` waits for an operator: an import went over a staging threshold, so its syncs are held; `autosync approve {ma}` lets the staged changes flow, `autosync reject {ma}` discards them"
                    ),
                ))
            }
            Some(_) => {
                self.retry_now_if_unavailable(&ma);
                self.push(vec![request], now).into_iter().next().ok_or_else(|| {
                    Refusal::new(
                        RefusalCode::HeldByThreshold,
                        format!("`{ma}` waits for an operator: the request is held with its staging threshold"),
                    )
                })
            }
        };
        self.reply(reply, Answer::Queued(answer));
    }

    /// The MAs an action applies to: the one named, or every MA.
    fn targets(&self, action: Control, ma: Option<&str>) -> Result<Vec<String>, Refusal> {
        match ma {
            Some(_) if action.global_only() => Err(Refusal::new(
                RefusalCode::GlobalOnly,
                format!("`{action}` applies to the whole service, not to one management agent"),
            )),
            Some(name) if self.config.mas.contains_key(name) => Ok(vec![name.to_owned()]),
            Some(name) => Err(Refusal::unknown_ma(
                name,
                self.config.mas.keys().map(String::as_str),
            )),
            None if action.needs_ma() => Err(Refusal::new(
                RefusalCode::NeedsMa,
                format!("`{action}` needs a management agent"),
            )),
            None => Ok(self.config.mas.keys().cloned().collect()),
        }
    }

    /// An operator's control: answered now, or (approve, reject) once the
    /// engine has answered.
    pub(super) fn control(
        &mut self,
        reply: ReplyId,
        action: Control,
        ma: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) {
        if self.phase != Phase::Running && action.starts_work() {
            let answer = Err(stopping(if action == Control::Resume {
                "ask again once it has started again"
            } else {
                "ask again once it has stopped (without a service, the command acts on the store) or started again"
            }));
            self.answer_control(reply, action, ma, by, answer);
            return;
        }
        let answer = match self.targets(action, ma) {
            Err(e) => Err(e),
            Ok(targets) => match action {
                Control::Approve => {
                    let one = targets.into_iter().next().unwrap_or_default();
                    self.chores
                        .calls
                        .insert(reply, (action, one.clone(), by.to_owned()));
                    self.effects.push(Effect::CheckApproval { reply, ma: one });
                    return;
                }
                Control::Reject => {
                    let one = targets.into_iter().next().unwrap_or_default();
                    match self.active.get(&one) {
                        Some(a) => Err(Refusal::new(
                            RefusalCode::Busy,
                            format!(
                                "`{one}` is running `{}`; reject again when it ends",
                                a.request.profile
                            ),
                        )),
                        None => {
                            self.chores
                                .calls
                                .insert(reply, (action, one.clone(), by.to_owned()));
                            self.effects.push(Effect::Reject { reply, ma: one });
                            return;
                        }
                    }
                }
                _ => self.act(action, ma, &targets, by, now),
            },
        };
        self.answer_control(reply, action, ma, by, answer);
    }

    /// Logs, publishes (when carried out) and sends a control's answer;
    /// the state is persisted first.
    fn answer_control(
        &mut self,
        reply: ReplyId,
        action: Control,
        ma: Option<&str>,
        by: &str,
        answer: Result<String, Refusal>,
    ) {
        match &answer {
            Ok(message) => {
                tracing::info!(by = %by, action = %action, "{message}");
                self.publish(ServiceEvent::Control {
                    at: self.now,
                    action,
                    ma: ma.map(str::to_owned),
                    by: by.to_owned(),
                    message: message.clone(),
                });
            }
            Err(message) => tracing::warn!(by = %by, action = %action, "refused: {message}"),
        }
        self.dirty = true;
        self.reply(reply, Answer::Done(answer));
    }

    /// Carries out a control that needs no engine call.
    fn act(
        &mut self,
        action: Control,
        ma: Option<&str>,
        targets: &[String],
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<String, Refusal> {
        let one = targets.first().cloned().unwrap_or_default();
        let which = || ma.map_or_else(|| count_mas(targets.len()), |m| format!("`{m}`"));
        match action {
            Control::Start => {
                if let Some(m) = ma
                    && self.ma_state(m) == MaState::Disabled
                {
                    return Err(Refusal::new(
                        RefusalCode::MaDisabled,
                        format!(
                            "`{m}` is disabled in the configuration (`enabled = false` under its `[ma.controller]`); enable it and reload"
                        ),
                    ));
                }
                // A disabled MA is not started (a review: "started 2"
                // counted it).
                let (enabled, disabled): (Vec<&String>, Vec<&String>) = targets
                    .iter()
                    .partition(|t| self.ma_state(t) != MaState::Disabled);
                for t in &enabled {
                    self.control_of(t).started = Some(true);
                    self.clear_retries(t);
                }
                let skipped = match disabled.len() {
                    0 => String::new(),
                    _ => format!(
                        " ({} disabled in the configuration, left as {}: {})",
                        disabled.len(),
                        if disabled.len() == 1 {
                            "it is"
                        } else {
                            "they are"
                        },
                        disabled
                            .iter()
                            .map(|d| format!("`{d}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                Ok(match ma {
                    Some(m) => format!("started `{m}`"),
                    None => format!("started {}{skipped}", count_mas(enabled.len())),
                })
            }
            Control::Stop => {
                for t in targets {
                    self.control_of(t).started = Some(false);
                }
                let running: Vec<String> = targets
                    .iter()
                    .filter_map(|t| {
                        self.active
                            .get(t)
                            .map(|a| format!("`{}` on `{t}`", a.request.profile))
                    })
                    .collect();
                let what = match ma {
                    Some(m) => format!("stopped `{m}`"),
                    None => format!("stopped {}", count_mas(targets.len())),
                };
                Ok(if running.is_empty() {
                    format!("{what}: no new run starts; queued requests are kept")
                } else {
                    format!(
                        "{what}: no new run starts; queued requests are kept; still running: {} (cancel with `autosync cancel MA`)",
                        running.join(", ")
                    )
                })
            }
            Control::Cancel => match self.active.get(&one) {
                Some(a) => {
                    let profile = a.request.profile.clone();
                    self.effects.push(Effect::Cancel { ma: one.clone() });
                    Ok(format!(
                        "cancelling `{profile}` on `{one}`: it stops at its next safe point, keeping what it committed"
                    ))
                }
                None => Err(Refusal::new(
                    RefusalCode::NotRunning,
                    format!("`{one}` is not running a profile"),
                )),
            },
            Control::ClearQueue => {
                let dropped = self.state.queues.get_mut(&one).clear();
                let deferred = std::mem::take(&mut self.control_of(&one).deferred);
                Ok(format!(
                    "dropped {} queued request(s) of `{one}`{}",
                    dropped.len() + deferred.len(),
                    if deferred.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} waiting for resume)", deferred.len())
                    }
                ))
            }
            Control::Pause => {
                for t in targets {
                    self.control_of(t).paused = true;
                }
                Ok(format!(
                    "paused the triggers of {}: their requests wait for resume; follow-ups still run",
                    which()
                ))
            }
            Control::Resume => {
                let mut deferred = Vec::new();
                for t in targets {
                    let c = self.control_of(t);
                    c.paused = false;
                    deferred.append(&mut c.deferred);
                }
                let n = deferred.len();
                self.push(deferred, now);
                Ok(format!(
                    "resumed the triggers of {}; {n} request(s) that waited are queued",
                    which()
                ))
            }
            Control::Maintenance => {
                // Who turned it on, and since when, stay the first's (a
                // review: a second `maintenance` overwrote them).
                if let Some(since) = &self.state.maintenance {
                    return Ok(maintenance_already_on(since));
                }
                self.state.maintenance = Some(Since {
                    by: by.to_owned(),
                    at: now,
                });
                Ok(format!(
                    "maintenance mode on: no run starts ({} running finish); triggers still queue",
                    self.active.len()
                ))
            }
            Control::EndMaintenance => {
                if self.state.maintenance.take().is_none() {
                    return Err(Refusal::new(
                        RefusalCode::NotInMaintenance,
                        "maintenance mode is not on",
                    ));
                }
                Ok("maintenance mode off: queued runs start".to_owned())
            }
            Control::Approve | Control::Reject => Err(Refusal::new(
                RefusalCode::EngineFailed,
                format!("`{action}` needs the engine"),
            )),
        }
    }

    /// Answers a control that waited for the engine.
    fn answer_call(&mut self, reply: ReplyId, answer: Result<String, Refusal>) {
        let (action, ma, by) = self.chores.calls.remove(&reply).unwrap_or((
            Control::Approve,
            String::new(),
            String::new(),
        ));
        self.answer_control(reply, action, Some(&ma), &by, answer);
    }

    /// What a threshold stopped on `ma` is known: approve it through the
    /// engine, or say that nothing waits for an approval.
    pub(super) fn approval_checked(
        &mut self,
        reply: ReplyId,
        ma: &str,
        found: Result<Stops, String>,
    ) {
        let threshold = self
            .state
            .mas
            .get(ma)
            .is_some_and(|c| c.threshold.is_some());
        let answer = match found {
            Err(e) => Err(Refusal::new(
                RefusalCode::EngineFailed,
                format!("cannot read what waits for an approval on `{ma}`: {e}"),
            )),
            Ok(stops) if !threshold && !stops.stopped_export && !stops.held_staging => {
                // The store has no stop standing (a sync cancelled its
                // deletes): the status stops saying one waits.
                self.deletion_stops.remove(ma);
                Err(Refusal::new(
                    RefusalCode::NothingToApprove,
                    autosync_model::threshold::nothing_waits(ma),
                ))
            }
            Ok(stops) => {
                self.effects.push(Effect::Approve {
                    reply,
                    ma: ma.to_owned(),
                    stopped_export: stops.stopped_export,
                });
                return;
            }
        };
        self.answer_call(reply, answer);
    }

    /// The engine approved: the held syncs are queued (run immediately),
    /// and an export stopped at the deletion threshold is queued again.
    pub(super) fn approved(
        &mut self,
        reply: ReplyId,
        ma: &str,
        stopped_export: bool,
        result: Result<String, EngineCallError>,
        now: DateTime<Utc>,
    ) {
        let result = result.map_err(|e| Refusal::of_engine(e, RefusalCode::NothingToApprove));
        let answer = result.map(|message| {
            if stopped_export {
                self.deletion_stops.remove(ma);
            }
            let threshold = self.control_of(ma).threshold.take();
            let mut queued: Vec<Request> = threshold.map(|t| t.held).unwrap_or_default();
            if stopped_export
                && let Some(export) = self
                    .view
                    .mas
                    .get(ma)
                    .and_then(|m| m.profiles.export.clone().ok())
            {
                queued.push(Request {
                    ma: ma.to_owned(),
                    profile: export,
                    exclusive: false,
                    run_immediate: true,
                    reason: RunReason::Manual {
                        by: "approve".to_owned(),
                    },
                    chain: Vec::new(),
                });
            }
            for r in &mut queued {
                r.run_immediate = true;
            }
            let n = queued.len();
            self.push(queued, now);
            format!("{message}; {n} request(s) queued")
        });
        self.answer_call(reply, answer);
    }

    /// The engine rejected: the staging threshold no longer holds; when the
    /// dropped deletes leave objects to be joined again, the MA's delta
    /// sync is queued; when an export stopped at the deletion threshold
    /// leaves other changes to send (updates, adds), its export is.
    pub(super) fn rejected(
        &mut self,
        reply: ReplyId,
        ma: &str,
        result: Result<(String, u64, u64), EngineCallError>,
        now: DateTime<Utc>,
    ) {
        if matches!(result, Err(EngineCallError::NothingWaits { .. })) {
            // The store has no stop standing (a sync cancelled its
            // deletes): the status stops saying one waits.
            self.deletion_stops.remove(ma);
        }
        let result = result.map_err(|e| Refusal::of_engine(e, RefusalCode::NothingToReject));
        let answer = result.map(|(message, pending_import, pending_export)| {
            let held = self.control_of(ma).threshold.take().is_some();
            let export_stopped = self.deletion_stops.remove(ma).is_some();
            // Objects left to join again: the delta sync. Nothing left
            // after a staging hold: what the held import read is gone, and
            // the source is read again (an import, as a confirming one).
            let profiles = self.view.mas.get(ma).map(|m| &m.profiles);
            let next = if pending_import > 0 {
                profiles.and_then(|p| p.delta_sync.clone().ok())
            } else if held {
                profiles.and_then(|p| p.confirming_import.clone().ok())
            } else {
                None
            };
            // The stopped export carried more than its deletes: what is
            // left goes now, as after an approval (it waited for the next
            // reconciliation: a black-box review).
            let export = (export_stopped && pending_export > 0)
                .then(|| profiles.and_then(|p| p.export.clone().ok()))
                .flatten();
            let exporting = export.is_some();
            let queued: Vec<Request> = next
                .into_iter()
                .chain(export)
                .map(|profile| Request {
                    ma: ma.to_owned(),
                    profile,
                    exclusive: false,
                    run_immediate: false,
                    reason: RunReason::Manual {
                        by: "reject".to_owned(),
                    },
                    chain: Vec::new(),
                })
                .collect();
            self.push(queued, now);
            if exporting {
                format!("{message}; its export is queued for the {pending_export} other pending export(s)")
            } else {
                message
            }
        });
        self.answer_call(reply, answer);
    }
}
