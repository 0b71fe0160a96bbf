//! Notifications: tells an operator, by email (SMTP) and webhooks, when a
//! run fails, an MA is marked failed after its retries, a staging threshold
//! is exceeded, a trigger fails, runs oscillate or a configuration reload is
//! rejected.
//!
//! Repeats of the same failure are suppressed, a reminder goes out after
//! `reminder_after` while it keeps failing, and a run ending in an ignored
//! status (default `success`, `completed-no-objects`) resets suppression of
//! its MA and profile, so the next failure is notified again (optionally with
//! a "recovered" notice in between). The suppression state is pure data the
//! caller persists ([`Notifier::state`]).
//!
//! Each channel is independent and time-limited: a dead SMTP server does
//! not stop webhooks, and a failed send is a value ([`Delivery`]), logged,
//! never a panic. Secrets (SMTP password, webhook URL paths and header
//! values) never appear in messages, logs or `Debug` output.

pub mod config;
pub mod event;
pub mod render;
pub mod send;
pub mod suppress;

pub use config::{
    ConfigProblem, KeySegment, NotifyConfig, Secret, Security, SmtpConfig, WebhookConfig,
};
pub use event::{Event, EventKind, ObjectErrorSummary, SuppressionKey};
pub use render::{Context, Rendered, render};
pub use send::{Channel, ChannelOutcome, SendError};
pub use suppress::{Decision, Entry, SuppressionState};

use autosync_model::{RunRecord, RunStatus};
use chrono::{DateTime, Utc};

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A run ended in an ignored status: nothing was sent (suppression of
    /// its MA and profile was reset; nothing had to recover).
    Ignored,
    /// A repeat within `reminder_after` of the last notice.
    Suppressed {
        key: SuppressionKey,
        last_sent: DateTime<Utc>,
        /// Repeats suppressed since then, this one included.
        suppressed: u64,
    },
    /// Sent (or tried) on every configured channel.
    Sent {
        kind: EventKind,
        reminder: bool,
        /// One per channel (empty when none is configured).
        channels: Vec<ChannelOutcome>,
    },
}

impl Delivery {
    /// The channels that failed.
    pub fn failures(&self) -> Vec<&ChannelOutcome> {
        match self {
            Delivery::Sent { channels, .. } => {
                channels.iter().filter(|c| c.result.is_err()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Whether a notice went out on at least one channel.
    pub fn delivered(&self) -> bool {
        match self {
            Delivery::Sent { channels, .. } => channels.iter().any(|c| c.result.is_ok()),
            _ => false,
        }
    }
}

/// Sends notifications; owns the suppression state.
#[derive(Debug)]
pub struct Notifier {
    config: NotifyConfig,
    ignored: Vec<RunStatus>,
    state: SuppressionState,
}

impl Notifier {
    /// `config` should have passed [`NotifyConfig::validate`] (a bad address
    /// or URL otherwise shows as a failure of its channel at each send).
    pub fn new(config: NotifyConfig, state: SuppressionState) -> Notifier {
        let ignored = config.ignored_statuses();
        Notifier {
            config,
            ignored,
            state,
        }
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// The suppression state, to persist.
    pub fn state(&self) -> &SuppressionState {
        &self.state
    }

    /// Whether runs ending in `status` are not notified.
    pub fn is_ignored(&self, status: RunStatus) -> bool {
        self.ignored.contains(&status)
    }

    /// Every finished run goes here: an ignored status resets suppression
    /// (and may send a recovered notice), any other is notified as
    /// [`Event::RunFailed`] unless suppressed.
    pub async fn run_finished(
        &mut self,
        run: RunRecord,
        first_errors: Vec<ObjectErrorSummary>,
        now: DateTime<Utc>,
    ) -> Delivery {
        self.notify(Event::RunFailed { run, first_errors }, now)
            .await
    }

    /// Notifies `event` unless it repeats a failure notified less than
    /// `reminder_after` ago. A [`Event::RunFailed`] whose status is ignored
    /// is handled as a success ([`Notifier::on_success`]).
    pub async fn notify(&mut self, event: Event, now: DateTime<Utc>) -> Delivery {
        if let Event::RunFailed { run, .. } = &event
            && self.is_ignored(run.status)
        {
            let (ma, profile) = (run.ma.clone(), run.profile.clone());
            return match self.on_success(&ma, &profile, now) {
                Some(recovered) => {
                    let channels = self.send(&recovered, &Context::first(now)).await;
                    Delivery::Sent {
                        kind: EventKind::Recovered,
                        reminder: false,
                        channels,
                    }
                }
                None => Delivery::Ignored,
            };
        }
        let Some((key, fingerprint)) = event.suppression() else {
            let channels = self.send(&event, &Context::first(now)).await;
            return Delivery::Sent {
                kind: event.kind(),
                reminder: false,
                channels,
            };
        };
        match self
            .state
            .observe(&key, &fingerprint, now, self.config.reminder_after.0)
        {
            Decision::Suppress {
                last_sent,
                suppressed,
            } => {
                tracing::debug!(
                    problem = %key,
                    %last_sent,
                    suppressed,
                    "notification suppressed (repeat of a failure already notified)"
                );
                Delivery::Suppressed {
                    key,
                    last_sent,
                    suppressed,
                }
            }
            Decision::Send {
                reminder,
                suppressed,
                first_seen,
            } => {
                let ctx = Context {
                    now,
                    reminder,
                    suppressed,
                    first_seen: Some(first_seen),
                };
                let channels = self.send(&event, &ctx).await;
                if !channels.is_empty() && channels.iter().all(|c| c.result.is_err()) {
                    self.state.undelivered(&key);
                }
                Delivery::Sent {
                    kind: event.kind(),
                    reminder,
                    channels,
                }
            }
        }
    }

    /// A run of `ma` / `profile` ended well: the next failure is notified
    /// again. Returns the [`Event::Recovered`] to send (pass it to
    /// [`Notifier::notify`]) when a failure was ongoing and
    /// `notify_recovered` is on.
    pub fn on_success(&mut self, ma: &str, profile: &str, _now: DateTime<Utc>) -> Option<Event> {
        let cleared = self.state.clear_run(ma, profile);
        if cleared.is_empty() || !self.config.notify_recovered {
            return None;
        }
        let failing_since = cleared.iter().map(|(_, e)| e.failing_since).min()?;
        let main = cleared
            .iter()
            .find(|(k, _)| k.kind == EventKind::RunFailed)
            .or_else(|| cleared.first())
            .map(|(_, e)| e)?;
        Some(Event::Recovered {
            ma: ma.to_owned(),
            profile: profile.to_owned(),
            failing_since,
            failures: main.occurrences,
            last_status: main.status(),
        })
    }

    /// Forgets one ongoing problem (e.g. a trigger works again), so its next
    /// failure is notified at once. Returns whether it was known.
    pub fn clear(&mut self, key: &SuppressionKey) -> bool {
        self.state.clear(key).is_some()
    }

    /// Sends `event` on every channel now, without suppression (e.g. a test
    /// notice). Channels run concurrently, each within its own timeout.
    pub async fn send(&self, event: &Event, ctx: &Context) -> Vec<ChannelOutcome> {
        let rendered = render(event, ctx);
        let body = serde_json::to_vec(&rendered.payload).unwrap_or_default();
        let hooks: Vec<_> = self
            .config
            .webhooks
            .iter()
            .enumerate()
            .map(|(index, hook)| {
                let channel = Channel::Webhook {
                    index,
                    target: hook.target(),
                };
                let hook = hook.clone();
                let body = body.clone();
                let task = tokio::spawn(async move { send::send_webhook(&hook, body).await });
                (channel, task)
            })
            .collect();
        let mut outcomes = Vec::new();
        if let Some(smtp) = &self.config.smtp {
            let channel = Channel::Email {
                server: format!("{}:{}", smtp.host, smtp.port()),
            };
            let result = send::send_email(smtp, &rendered).await;
            outcomes.push(ChannelOutcome { channel, result });
        }
        for (channel, task) in hooks {
            let result = match task.await {
                Ok(r) => r,
                Err(e) => Err(SendError::Webhook {
                    target: channel.to_string(),
                    message: format!("the sending task failed: {e}"),
                }),
            };
            outcomes.push(ChannelOutcome { channel, result });
        }
        for o in &outcomes {
            match &o.result {
                Ok(()) => tracing::info!(
                    event = %event.kind(),
                    channel = %o.channel,
                    subject = %rendered.subject,
                    "notification sent"
                ),
                Err(e) => tracing::warn!(
                    event = %event.kind(),
                    channel = %o.channel,
                    error = %e,
                    "notification not delivered"
                ),
            }
        }
        outcomes
    }
}
