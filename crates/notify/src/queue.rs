//! One queue and one task per channel (the mail, each webhook): a channel
//! that is slow or does not answer delays only its own notices, never the
//! other channels' nor the caller. Each channel sends its notices one at a
//! time, in the order they were queued. A stop ([`Closing::finish`]) gives
//! the channels until a deadline, then gives up on what they have not
//! sent: each such notice is logged as an error and fails on its channel
//! ([`SendError::Abandoned`]), so it is not taken as sent.

use crate::config::{NotifyConfig, SmtpConfig, WebhookConfig};
use crate::event::EventKind;
use crate::render::Rendered;
use crate::send::{self, Channel, ChannelOutcome, SendError};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Notices that may wait for one channel; a notice beyond that fails on
/// that channel at once (a channel that has not answered for that long is
/// not helped by a longer queue, and memory stays bounded).
pub const QUEUE_LIMIT: usize = 100;

/// How long a stop of the service waits, in all, for the channels to send
/// what their queues hold (each send within its channel's `timeout`, which
/// may be up to 5 minutes for a webhook); then it gives up on the rest,
/// which is logged as not delivered and is not taken as sent (the next
/// equal notice goes out). Well within systemd's `TimeoutStopSec=120`
/// (deploy/autosync.service), which also covers the runs' stop.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);

/// One notice, rendered once for every channel.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) kind: EventKind,
    pub(crate) rendered: Rendered,
    /// The webhook JSON document.
    pub(crate) body: Vec<u8>,
}

struct Job {
    notice: Arc<Outgoing>,
    reply: oneshot::Sender<Result<(), SendError>>,
}

#[derive(Clone)]
enum Target {
    Email(SmtpConfig),
    Webhook(WebhookConfig),
}

struct Queue {
    channel: Channel,
    /// None: there was no async runtime to start the channel's task on.
    tx: Option<mpsc::Sender<Job>>,
    task: Option<JoinHandle<()>>,
}

/// The channels' queues, each with its task (the tasks end when this is
/// dropped, once their queue is sent; or as [`Queues::close`] says).
pub(crate) struct Queues {
    queues: Vec<Queue>,
    /// Set at a stop's deadline: the tasks give up what they hold.
    give_up: watch::Sender<bool>,
}

/// The channels of a notifier that takes no more notices: their tasks send
/// what their queues hold, until [`Closing::finish`]'s deadline. Dropped
/// without `finish`, the tasks go on sending what they hold, unbounded.
pub struct Closing {
    tasks: Vec<(Channel, JoinHandle<()>)>,
    give_up: watch::Sender<bool>,
}

impl fmt::Debug for Closing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.tasks.iter().map(|(c, _)| c.to_string()))
            .finish()
    }
}

impl Closing {
    /// Whether every channel has sent what it held (nothing is left to
    /// wait for).
    pub fn is_finished(&self) -> bool {
        self.tasks.iter().all(|(_, t)| t.is_finished())
    }

    /// Waits until every channel has sent (or failed to send) what its
    /// queue holds, but not beyond `deadline`: then each channel gives up.
    /// Every notice it has not delivered is logged as an error (channel,
    /// event, subject) and fails on that channel with
    /// [`SendError::Abandoned`]: its [`crate::Pending::outcome`] comes at
    /// once, and [`crate::Notifier::settle`] does not take it as sent.
    /// Returns when every channel's task has ended: by `deadline`, or just
    /// after (giving up takes no I/O). Returns whether it gave up.
    pub async fn finish(self, deadline: tokio::time::Instant) -> bool {
        let Closing { mut tasks, give_up } = self;
        let all = async {
            while let Some((_, task)) = tasks.last_mut() {
                let _ = task.await;
                tasks.pop();
            }
        };
        if tokio::time::timeout_at(deadline, all).await.is_ok() {
            return false;
        }
        let _ = give_up.send(true);
        for (channel, task) in tasks {
            if let Err(e) = task.await {
                tracing::error!(channel = %channel, "the channel's sending task failed: {e}");
            }
        }
        true
    }
}

impl fmt::Debug for Queues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.queues.iter().map(|q| q.channel.to_string()))
            .finish()
    }
}

/// One channel's outcome, known now or to come.
#[derive(Debug)]
pub(crate) enum Wait {
    Ready(Result<(), SendError>),
    Waiting(oneshot::Receiver<Result<(), SendError>>),
}

impl Queues {
    /// Starts one task per channel of `config` on the current tokio
    /// runtime (none: every notice fails, saying so).
    pub(crate) fn start(config: &NotifyConfig) -> Queues {
        let runtime = tokio::runtime::Handle::try_current().ok();
        let (give_up, give_up_rx) = watch::channel(false);
        let mut targets = Vec::new();
        if let Some(smtp) = &config.smtp {
            targets.push((
                Channel::Email {
                    server: format!("{}:{}", smtp.host, smtp.port()),
                },
                Target::Email(smtp.clone()),
            ));
        }
        for (index, hook) in config.webhooks.iter().enumerate() {
            targets.push((
                Channel::Webhook {
                    index,
                    target: hook.target(),
                },
                Target::Webhook(hook.clone()),
            ));
        }
        let queues = targets
            .into_iter()
            .map(|(channel, target)| {
                let (tx, task) = match runtime.as_ref() {
                    Some(rt) => {
                        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
                        let task = rt.spawn(work(target, channel.clone(), rx, give_up_rx.clone()));
                        (Some(tx), Some(task))
                    }
                    None => (None, None),
                };
                Queue { channel, tx, task }
            })
            .collect();
        Queues { queues, give_up }
    }

    /// Takes no more notices: each channel's task sends what its queue
    /// holds, then ends ([`Closing::finish`] bounds that).
    pub(crate) fn close(self) -> Closing {
        let tasks = self
            .queues
            .into_iter()
            .filter_map(|q| q.task.map(|t| (q.channel, t)))
            .collect();
        Closing {
            tasks,
            give_up: self.give_up,
        }
    }

    /// Queues `notice` on every channel; returns each channel's outcome to
    /// come (or already known when it could not be queued).
    pub(crate) fn push(&self, notice: &Arc<Outgoing>) -> Vec<(Channel, Wait)> {
        self.queues
            .iter()
            .map(|q| {
                let not_queued = |reason: String| {
                    let result = Err(SendError::NotQueued {
                        channel: q.channel.to_string(),
                        reason,
                    });
                    log(notice, &q.channel, &result);
                    Wait::Ready(result)
                };
                let wait = match &q.tx {
                    None => not_queued("no async runtime to send on".into()),
                    Some(tx) => {
                        let (reply, rx) = oneshot::channel();
                        let job = Job {
                            notice: notice.clone(),
                            reply,
                        };
                        match tx.try_send(job) {
                            Ok(()) => Wait::Waiting(rx),
                            Err(mpsc::error::TrySendError::Full(_)) => not_queued(format!(
                                "{QUEUE_LIMIT} notices are already waiting for this channel"
                            )),
                            Err(mpsc::error::TrySendError::Closed(_)) => {
                                not_queued("the channel's sending task has ended".into())
                            }
                        }
                    }
                };
                (q.channel.clone(), wait)
            })
            .collect()
    }
}

/// Waits for every channel's outcome (they are sent concurrently: this
/// takes as long as the slowest).
pub(crate) async fn outcomes(waits: Vec<(Channel, Wait)>) -> Vec<ChannelOutcome> {
    let mut outcomes = Vec::with_capacity(waits.len());
    for (channel, wait) in waits {
        let result = match wait {
            Wait::Ready(result) => result,
            Wait::Waiting(rx) => rx.await.unwrap_or_else(|_| {
                Err(SendError::NotQueued {
                    channel: channel.to_string(),
                    reason: "the channel's sending task ended before sending it".into(),
                })
            }),
        };
        outcomes.push(ChannelOutcome { channel, result });
    }
    outcomes
}

/// Resolves once the channels are told to give up (never when the sender
/// is gone without saying so: the queue is then sent to its end).
async fn given_up(give_up: &mut watch::Receiver<bool>) {
    if give_up.wait_for(|g| *g).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One channel's task: sends its notices one after the other, until its
/// queue is closed and empty, or until it is told to give up: then the
/// notice being sent and those queued are abandoned.
async fn work(
    target: Target,
    channel: Channel,
    mut rx: mpsc::Receiver<Job>,
    mut give_up: watch::Receiver<bool>,
) {
    loop {
        let job = tokio::select! {
            biased;
            () = given_up(&mut give_up) => break,
            job = rx.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let notice = job.notice.clone();
        let send = async {
            match &target {
                Target::Email(smtp) => send::send_email(smtp, &notice.rendered).await,
                Target::Webhook(hook) => send::send_webhook(hook, notice.body.clone()).await,
            }
        };
        let result = tokio::select! {
            biased;
            () = given_up(&mut give_up) => {
                abandon(job, &channel);
                break;
            }
            result = send => result,
        };
        log(&notice, &channel, &result);
        let _ = job.reply.send(result);
    }
    rx.close();
    while let Ok(job) = rx.try_recv() {
        abandon(job, &channel);
    }
}

/// A notice the channel gave up at a stop: an error, and a failure on
/// this channel.
fn abandon(job: Job, channel: &Channel) {
    tracing::error!(
        event = %job.notice.kind,
        channel = %channel,
        subject = %job.notice.rendered.subject,
        "notification not delivered: the service stopped before this channel could send it (it is not taken as sent)"
    );
    let _ = job.reply.send(Err(SendError::Abandoned {
        channel: channel.to_string(),
    }));
}

fn log(notice: &Outgoing, channel: &Channel, result: &Result<(), SendError>) {
    match result {
        Ok(()) => tracing::info!(
            event = %notice.kind,
            channel = %channel,
            subject = %notice.rendered.subject,
            "notification sent"
        ),
        Err(e) => tracing::warn!(
            event = %notice.kind,
            channel = %channel,
            error = %e,
            "notification not delivered"
        ),
    }
}
