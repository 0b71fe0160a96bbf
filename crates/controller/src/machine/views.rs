//! What the machine shows: every MA's status, computed in one place
//! ([`Machine::status`]), and the `state-changed` events published when an
//! MA's state (by name) changes, compared with that same computation.

use super::*;

impl Machine {
    /// Every MA's state and queue, from memory. `progress` gives the
    /// progress of the run on an MA (the service's shared cells).
    pub fn status(&self, progress: impl Fn(&str) -> Option<ProgressState>) -> Status {
        let mas = self
            .config
            .mas
            .keys()
            .map(|name| {
                let queue: Vec<QueuedRequest> = self
                    .state
                    .queues
                    .get(name)
                    .map(|q| q.iter().cloned().collect())
                    .unwrap_or_default();
                let control = self.state.mas.get(name);
                let status = MaStatus {
                    state: self.state_of(name, &progress),
                    queue,
                    paused: control.is_some_and(|c| c.paused),
                    deferred: control.map(|c| c.deferred.clone()).unwrap_or_default(),
                    last_run: self.last_run.get(name).cloned(),
                    full_sync_needed: self.full_sync_needed.get(name).cloned(),
                    objects_with_errors: 0,
                    pending_exports: 0,
                    trigger_errors: self.trigger_problems.of(name),
                };
                (name.clone(), status)
            })
            .collect();
        Status {
            service: true,
            stopping: matches!(self.phase, Phase::Stopping | Phase::Stopped),
            maintenance: self.state.maintenance.clone(),
            mas,
        }
    }

    /// One MA's state, as the status shows it and `state-changed` names it.
    pub(super) fn state_of(
        &self,
        name: &str,
        progress: &impl Fn(&str) -> Option<ProgressState>,
    ) -> MaStateView {
        let control = self.state.mas.get(name);
        state_view(StateFacts {
            running: self.running_view(name, progress),
            enabled: self.config.mas.get(name).is_some_and(|m| m.enabled),
            control,
            started: self.started_flag(name),
            queued: self.state.queues.get(name).is_some_and(|q| !q.is_empty()),
            maintenance: self.state.maintenance.is_some(),
            waiting: self.waiting.get(name).map(String::as_str),
            next_retry: self.held.get(name).map(|h| h.until),
            service: true,
            threshold_stop: self
                .deletion_stops
                .get(name)
                .map(|(run, what)| (*run, what.as_str())),
        })
    }

    /// Publishes the MAs whose state changed since it was last published
    /// (compared by name: a new waiting reason is not a change; a running
    /// MA's next profile is, so that `state-changed` replayed gives the
    /// profile `status` shows).
    pub(super) fn publish_state_changes(&mut self) {
        if self.phase == Phase::Starting {
            return;
        }
        let mut changes = Vec::new();
        for name in self.config.mas.keys() {
            let view = self.state_of(name, &|_| None);
            let to = view.name();
            let from = self.published_states.get(name).copied();
            let detail = view.detail();
            let next_profile =
                to == MaStateName::Running && self.published_profiles.get(name) != detail.as_ref();
            if from != Some(to) || next_profile {
                changes.push((name.clone(), from, Some(to), detail));
            }
        }
        for (name, from) in &self.published_states {
            if !self.config.mas.contains_key(name) {
                changes.push((name.clone(), Some(*from), None, None));
            }
        }
        for (ma, from, to, detail) in changes {
            match to {
                Some(to) => self.published_states.insert(ma.clone(), to),
                None => self.published_states.remove(&ma),
            };
            match (&to, &detail) {
                (Some(MaStateName::Running), Some(profile)) => {
                    self.published_profiles.insert(ma.clone(), profile.clone());
                }
                _ => {
                    self.published_profiles.remove(&ma);
                }
            }
            self.publish(ServiceEvent::StateChanged {
                at: self.now,
                ma,
                from,
                to,
                detail,
            });
        }
    }

    /// The progress of the runs in progress: each that changed since it
    /// was last published is published.
    pub(super) fn progressed(&mut self, progress: Vec<(String, ProgressState)>) {
        let now = self.now;
        let mut events = Vec::new();
        for (ma, p) in progress {
            if let Some(a) = self.active.get_mut(&ma)
                && a.progress != p
            {
                events.push(ServiceEvent::progress(now, &ma, &a.request.profile, &p));
                a.progress = p;
            }
        }
        for event in events {
            self.publish(event);
        }
    }

    pub(super) fn running_view(
        &self,
        ma: &str,
        progress: &impl Fn(&str) -> Option<ProgressState>,
    ) -> Option<MaStateView> {
        if let Some(u) = self.unmanaged.get(ma) {
            return Some(MaStateView::Running {
                profile: u.profile.clone(),
                reason: format!("started outside the controller (run {})", u.id),
                step: None,
                step_index: None,
                processed: 0,
                expected: None,
            });
        }
        let a = self.active.get(ma)?;
        let p = progress(ma).unwrap_or_default();
        Some(MaStateView::Running {
            profile: a.request.profile.clone(),
            reason: a.request.reason.to_string(),
            step: p.step.map(|s| s.to_string()),
            step_index: p.step_index,
            processed: p.processed,
            expected: p.expected,
        })
    }
}
