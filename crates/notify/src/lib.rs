//! Notifications: tells an operator, by email (SMTP) and webhooks, when a
//! run fails, an MA is marked failed after its retries, a staging threshold
//! is exceeded, a trigger fails, runs oscillate, a configuration reload is
//! rejected or the service stops by itself (its store file gone, replaced
//! or damaged, its store lease taken over).
//!
//! Repeats of the same failure are suppressed, a reminder goes out after
//! `reminder_after` while it keeps failing, and a run ending in an ignored
//! status (default `success`, `completed-no-objects`) resets suppression of
//! its MA and profile, so the next failure is notified again (optionally with
//! a "recovered" notice in between). The suppression state is pure data the
//! caller persists ([`Notifier::state`]).
//!
//! Each channel is independent and time-limited: the mail and each webhook
//! have their own queue and task, so a dead SMTP server or a webhook that
//! never answers delays only its own notices, and a failed send is a value
//! ([`Delivery`]), logged, never a panic. [`Notifier::submit`] decides and
//! queues at once; the channels' outcomes come later ([`Pending`]). Secrets (SMTP password, webhook URL paths and header
//! values) never appear in messages, logs or `Debug` output.

pub mod config;
pub mod event;
pub mod queue;
pub mod render;
pub mod send;
pub mod suppress;

pub use config::{
    ConfigProblem, KeySegment, NotifyConfig, Secret, Security, SmtpConfig, WebhookConfig,
};
pub use event::{Event, EventKind, ObjectErrorSummary, SuppressionKey};
pub use queue::{Closing, STOP_WITHIN};
pub use render::{Context, Rendered, render};
pub use send::{Channel, ChannelOutcome, SendError};
pub use suppress::{Decision, Entry, SuppressionState};

use autosync_model::{RunRecord, RunStatus};
use chrono::{DateTime, Utc};
use queue::{Outgoing, Queues, Wait};
use std::sync::{Arc, OnceLock};

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

/// What [`Notifier::submit`] did with an event.
#[derive(Debug)]
pub enum Submission {
    /// Decided at once, nothing queued: ignored or suppressed (or a
    /// notice with no channel configured).
    Done(Delivery),
    /// Queued on every channel: [`Pending::outcome`] waits for them.
    Queued(Pending),
}

/// A notice queued on its channels, whose outcomes are to come.
#[derive(Debug)]
pub struct Pending {
    kind: EventKind,
    reminder: bool,
    /// The problem it notifies (none: not suppressed, e.g. recovered).
    key: Option<SuppressionKey>,
    /// When it was decided (the event's time).
    at: DateTime<Utc>,
    waits: Vec<(Channel, Wait)>,
}

impl Pending {
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// Waits for every channel's outcome (as long as the slowest channel
    /// takes, each within its own `timeout`). Give the result to
    /// [`Notifier::settle`].
    pub async fn outcome(self) -> Settled {
        let channels = queue::outcomes(self.waits).await;
        Settled {
            key: self.key,
            at: self.at,
            delivery: Delivery::Sent {
                kind: self.kind,
                reminder: self.reminder,
                channels,
            },
        }
    }
}

/// A queued notice's outcome on every channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    key: Option<SuppressionKey>,
    at: DateTime<Utc>,
    delivery: Delivery,
}

impl Settled {
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    pub fn into_delivery(self) -> Delivery {
        self.delivery
    }
}

/// Sends notifications; owns the suppression state. Each channel sends
/// from its own queue, on tasks started (on the current tokio runtime) at
/// the first notice; they end when the notifier is dropped, once their
/// queue is sent, or as [`Notifier::close`] and [`Closing::finish`] say
/// (a stop: bounded, what is not sent by then is not taken as sent).
#[derive(Debug)]
pub struct Notifier {
    config: NotifyConfig,
    ignored: Vec<RunStatus>,
    state: SuppressionState,
    queues: OnceLock<Queues>,
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
            queues: OnceLock::new(),
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
    /// [`Event::RunFailed`] unless suppressed. Waits for the channels.
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
    /// `reminder_after` ago, and waits for every channel's outcome: this
    /// is [`Notifier::submit`], [`Pending::outcome`] and
    /// [`Notifier::settle`] in one (a caller that must not wait for slow
    /// channels uses those).
    pub async fn notify(&mut self, event: Event, now: DateTime<Utc>) -> Delivery {
        match self.submit(event, now) {
            Submission::Done(delivery) => delivery,
            Submission::Queued(pending) => {
                let settled = pending.outcome().await;
                self.settle(&settled);
                settled.delivery
            }
        }
    }

    /// Decides at once whether `event` is notified (unless it repeats a
    /// failure notified less than `reminder_after` ago), and queues it on
    /// every channel without waiting for any: `now` is the event's time,
    /// the notice's `sent_at` (and `first_seen` of a new failure). A
    /// [`Event::RunFailed`] whose status is ignored is handled as a success
    /// ([`Notifier::on_success`]). Must run within a tokio runtime.
    pub fn submit(&mut self, event: Event, now: DateTime<Utc>) -> Submission {
        if let Event::RunFailed { run, .. } = &event
            && self.is_ignored(run.status)
        {
            let (ma, profile) = (run.ma.clone(), run.profile.clone());
            return match self.on_success(&ma, &profile, now) {
                Some(recovered) => self.queue(&recovered, &Context::first(now), None, now),
                None => Submission::Done(Delivery::Ignored),
            };
        }
        let Some((key, fingerprint)) = event.suppression() else {
            return self.queue(&event, &Context::first(now), None, now);
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
                Submission::Done(Delivery::Suppressed {
                    key,
                    last_sent,
                    suppressed,
                })
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
                self.queue(&event, &ctx, Some(key), now)
            }
        }
    }

    /// A queued notice's outcome: when no channel delivered it, the next
    /// repeat of its failure is sent again (unless a later notice of the
    /// same problem went out meanwhile). Returns whether that was so. When
    /// one did, the problem's end is worth a `recovered` notice (the state
    /// changed: a caller that persists it saves it after a delivery too).
    pub fn settle(&mut self, settled: &Settled) -> bool {
        let Some(key) = &settled.key else {
            return false;
        };
        let Delivery::Sent { channels, .. } = &settled.delivery else {
            return false;
        };
        if channels.iter().any(|c| c.result.is_ok()) {
            self.state.delivered(key);
            return false;
        }
        if channels.is_empty() {
            return false;
        }
        let latest = self
            .state
            .get(key)
            .is_some_and(|e| e.last_sent == Some(settled.at));
        if latest {
            self.state.undelivered(key);
        }
        latest
    }

    /// A run of `ma` / `profile` ended well: the next failure is notified
    /// again. Returns the [`Event::Recovered`] to send (pass it to
    /// [`Notifier::notify`]) when a failure was ongoing and
    /// `notify_recovered` is on.
    pub fn on_success(&mut self, ma: &str, profile: &str, _now: DateTime<Utc>) -> Option<Event> {
        // Only a failure someone was told of has a recovery to tell.
        let cleared: Vec<_> = self
            .state
            .clear_run(ma, profile)
            .into_iter()
            .filter(|(_, e)| e.delivered)
            .collect();
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
    /// notice), and waits for every channel's outcome. Channels send
    /// concurrently, each within its own timeout, after what their queue
    /// already holds.
    pub async fn send(&self, event: &Event, ctx: &Context) -> Vec<ChannelOutcome> {
        queue::outcomes(self.push(event, ctx)).await
    }

    /// Stops taking notices on the channels started so far (none started:
    /// `None`): each sends what its queue holds, which [`Closing::finish`]
    /// bounds in time. Settle the outcomes of the notices still pending
    /// ([`Notifier::settle`]) after that, so those never delivered are not
    /// taken as sent. A notice submitted after this starts new channels.
    pub fn close(&mut self) -> Option<Closing> {
        self.queues.take().map(Queues::close)
    }

    /// [`Notifier::close`], then [`Closing::finish`] within `within` (at a
    /// stop: [`STOP_WITHIN`]). Returns whether it gave up on a notice.
    pub async fn stop(&mut self, within: std::time::Duration) -> bool {
        match self.close() {
            Some(closing) => closing.finish(tokio::time::Instant::now() + within).await,
            None => false,
        }
    }

    /// Renders `event` and queues it on every channel.
    fn push(&self, event: &Event, ctx: &Context) -> Vec<(Channel, Wait)> {
        let rendered = render(event, ctx);
        let body = serde_json::to_vec(&rendered.payload).unwrap_or_default();
        let notice = Arc::new(Outgoing {
            kind: event.kind(),
            rendered,
            body,
        });
        self.queues
            .get_or_init(|| Queues::start(&self.config))
            .push(&notice)
    }

    fn queue(
        &self,
        event: &Event,
        ctx: &Context,
        key: Option<SuppressionKey>,
        at: DateTime<Utc>,
    ) -> Submission {
        let waits = self.push(event, ctx);
        if waits.is_empty() {
            return Submission::Done(Delivery::Sent {
                kind: event.kind(),
                reminder: ctx.reminder,
                channels: Vec::new(),
            });
        }
        Submission::Queued(Pending {
            kind: event.kind(),
            reminder: ctx.reminder,
            key,
            at,
            waits,
        })
    }
}
