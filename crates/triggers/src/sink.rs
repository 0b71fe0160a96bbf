//! Where triggers send what they ask for. [`RequestSink`] is implemented for
//! tokio channels of [`TriggerRequest`] (requests only; errors are logged) and
//! of [`TriggerEvent`] (requests, errors and state changes: what the
//! controller uses).

use crate::{TriggerError, TriggerRequest, TriggerState};
use tokio::sync::mpsc;

/// The receiving side is gone: the trigger has nobody to ask any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the controller no longer receives trigger requests")]
pub struct SinkClosed;

/// Everything a trigger tells the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerEvent {
    Request(TriggerRequest),
    Error(TriggerError),
    /// Persist this state for trigger `key` of MA `ma` (see
    /// [`crate::set::TriggerSet::build`]). Sent *before* the request it
    /// belongs to, so a crash in between can miss a slot but never repeat one.
    State {
        ma: String,
        key: String,
        state: TriggerState,
    },
}

/// What triggers send to. Implementations must not block for long.
pub trait RequestSink: Send + Sync {
    /// Asks for a run.
    fn request(&self, request: TriggerRequest) -> Result<(), SinkClosed>;

    /// A trigger failed; the controller notifies about it.
    fn error(&self, error: TriggerError) {
        tracing::warn!(ma = %error.ma, trigger = %error.trigger, stopped = error.stopped, "{}", error.message);
    }

    /// A trigger's persisted state changed.
    fn state_changed(&self, ma: &str, key: &str, state: &TriggerState) {
        tracing::debug!(ma, key, ?state, "trigger state changed");
    }
}

impl RequestSink for mpsc::UnboundedSender<TriggerRequest> {
    fn request(&self, request: TriggerRequest) -> Result<(), SinkClosed> {
        self.send(request).map_err(|_| SinkClosed)
    }
}

impl RequestSink for mpsc::Sender<TriggerRequest> {
    fn request(&self, request: TriggerRequest) -> Result<(), SinkClosed> {
        match self.try_send(request) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SinkClosed),
            Err(mpsc::error::TrySendError::Full(request)) => {
                // Never drop a request: wait for room on a task of its own.
                let tx = self.clone();
                tokio::spawn(async move {
                    if tx.send(request).await.is_err() {
                        tracing::warn!("trigger request lost: the controller stopped receiving");
                    }
                });
                Ok(())
            }
        }
    }
}

impl RequestSink for mpsc::UnboundedSender<TriggerEvent> {
    fn request(&self, request: TriggerRequest) -> Result<(), SinkClosed> {
        self.send(TriggerEvent::Request(request))
            .map_err(|_| SinkClosed)
    }

    fn error(&self, error: TriggerError) {
        tracing::warn!(ma = %error.ma, trigger = %error.trigger, "{}", error.message);
        let _ = self.send(TriggerEvent::Error(error));
    }

    fn state_changed(&self, ma: &str, key: &str, state: &TriggerState) {
        let _ = self.send(TriggerEvent::State {
            ma: ma.to_owned(),
            key: key.to_owned(),
            state: state.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(profile: &str) -> TriggerRequest {
        TriggerRequest {
            ma: "hr".into(),
            profile: profile.into(),
            exclusive: false,
            run_immediate: false,
            trigger: "test".into(),
        }
    }

    #[tokio::test]
    async fn a_full_bounded_channel_should_delay_requests_never_drop_them() {
        let (tx, mut rx) = mpsc::channel::<TriggerRequest>(1);
        let sink: &dyn RequestSink = &tx;
        for profile in ["a", "b", "c"] {
            sink.request(request(profile)).unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.recv().await.unwrap().profile);
        }
        got.sort();
        assert_eq!(got, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_closed_channel_should_tell_the_trigger() {
        let (tx, rx) = mpsc::unbounded_channel::<TriggerRequest>();
        drop(rx);
        assert_eq!(tx.request(request("a")), Err(SinkClosed));
    }
}
