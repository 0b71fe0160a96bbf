//! One queue and one task per channel (the mail, each webhook): a channel
//! that is slow or does not answer delays only its own notices, never the
//! other channels' nor the caller. Each channel sends its notices one at a
//! time, in the order they were queued.

use crate::config::{NotifyConfig, SmtpConfig, WebhookConfig};
use crate::event::EventKind;
use crate::render::Rendered;
use crate::send::{self, Channel, ChannelOutcome, SendError};
use std::fmt;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Notices that may wait for one channel; a notice beyond that fails on
/// that channel at once (a channel that has not answered for that long is
/// not helped by a longer queue, and memory stays bounded).
pub const QUEUE_LIMIT: usize = 100;

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
}

/// The channels' queues, each with its task (the tasks end when this is
/// dropped, once their queue is sent).
pub(crate) struct Queues {
    queues: Vec<Queue>,
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
                let tx = runtime.as_ref().map(|rt| {
                    let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
                    rt.spawn(work(target, channel.clone(), rx));
                    tx
                });
                Queue { channel, tx }
            })
            .collect();
        Queues { queues }
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

/// One channel's task: sends its notices one after the other.
async fn work(target: Target, channel: Channel, mut rx: mpsc::Receiver<Job>) {
    while let Some(job) = rx.recv().await {
        let result = match &target {
            Target::Email(smtp) => send::send_email(smtp, &job.notice.rendered).await,
            Target::Webhook(hook) => send::send_webhook(hook, job.notice.body.clone()).await,
        };
        log(&job.notice, &channel, &result);
        let _ = job.reply.send(result);
    }
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
