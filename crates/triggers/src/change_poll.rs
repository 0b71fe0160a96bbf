//! The change-poll trigger: asks the MA connector whether its data moved.
//! The connector provides the probe (a changelog's last sequence number,
//! the largest value of a change-tracking column: see
//! `autosync_connector::ChangeProbe`); the trigger reads its token once at
//! start (to learn it) and then every `every` (default 30 s), and asks for
//! its profile when the token differs from the one read before. A probe
//! that fails is reported and polled again at the next tick; the token
//! learnt before the failure stays, so a change made meanwhile is seen.
//!
//! What the probe reads is the connector's knowledge: this trigger names no
//! system. A connector that offers no poll makes `type = "change-poll"` a
//! configuration error on its MAs.

use crate::TriggerError;
use crate::clock::Clock;
use crate::config::{Ask, Common, check_positive, check_profile, default_profile, key_error};
use crate::duration::HumanDuration;
use crate::provided::Provided;
use crate::sink::RequestSink;
use autosync_connector::{ChangeProbe, ConnectorError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a change poll asks by default.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(30);

/// `{ type = "change-poll", every = "30s", profile = "delta-import" }`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePollConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_profile")]
    pub profile: String,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub run_immediate: bool,
    #[serde(default = "default_every")]
    pub every: HumanDuration,
    /// The MA connector's probe (from its poll offer). Not a key of the
    /// file: whoever reads the configuration provides it.
    #[serde(skip)]
    pub probe: Provided<dyn ChangeProbe>,
}

fn default_every() -> HumanDuration {
    HumanDuration(DEFAULT_EVERY)
}

/// A validated change-poll trigger.
#[derive(Clone, Debug)]
pub struct ChangePollTrigger {
    pub ask: Ask,
    pub every: Duration,
    pub probe: Arc<dyn ChangeProbe>,
}

impl ChangePollConfig {
    pub fn validate(
        &self,
        ma: &str,
        index: usize,
    ) -> Result<ChangePollTrigger, crate::TriggerConfigError> {
        let kind = "change-poll";
        check_profile(ma, index, kind, &self.profile)?;
        check_positive(ma, index, kind, "every", self.every.0)?;
        let Some(probe) = self.probe.get() else {
            return Err(key_error(
                ma,
                index,
                kind,
                "",
                "this MA's connector offers nothing to poll (`autosync discover` says what it offers)",
            ));
        };
        let common = Common {
            profile: &self.profile,
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
        };
        Ok(ChangePollTrigger {
            ask: Ask::new(
                ma,
                kind,
                self.name.as_deref(),
                &format!("every {}", self.every),
                common,
            ),
            every: self.every.0,
            probe: probe.clone(),
        })
    }
}

/// What the poll remembers: the token last read (`None` before the first
/// successful read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen(Option<Option<String>>);

impl Seen {
    /// Takes the token just read; true when it moved since the last one
    /// (the first read only learns it).
    pub fn moved(&mut self, token: Option<String>) -> bool {
        let moved = matches!(&self.0, Some(before) if *before != token);
        self.0 = Some(token);
        moved
    }
}

impl ChangePollTrigger {
    /// Reads the token on a blocking thread.
    async fn read(&self) -> Result<Option<String>, ConnectorError> {
        let probe = self.probe.clone();
        match tokio::task::spawn_blocking(move || probe.token()).await {
            Ok(result) => result,
            Err(e) => Err(ConnectorError::new(
                autosync_connector::ConnectorErrorKind::Other,
                format!("the probe's task failed: {e}"),
            )),
        }
    }

    /// Reads the token once, then every interval, asking when it moved,
    /// until cancelled or the sink closes.
    pub async fn run(
        self,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn RequestSink>,
        cancel: CancellationToken,
    ) {
        let mut seen = Seen::default();
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(self.every) => {}
                }
            }
            first = false;
            match self.read().await {
                Ok(token) => {
                    if seen.moved(token) {
                        tracing::info!(ma = %self.ask.ma, trigger = %self.ask.trigger, "the source changed");
                        if sink.request(self.ask.request()).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => sink.error(TriggerError {
                    ma: self.ask.ma.clone(),
                    trigger: self.ask.trigger.clone(),
                    message: format!("cannot ask the connector whether its data changed: {e}"),
                    stopped: false,
                    at: clock.now(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::sink::TriggerEvent;
    use autosync_connector::ConnectorErrorKind;
    use std::path::PathBuf;
    use tokio::sync::mpsc;

    /// A probe whose token is a file's text (a missing file: an error).
    #[derive(Debug)]
    struct FileProbe(PathBuf);

    impl ChangeProbe for FileProbe {
        fn token(&self) -> Result<Option<String>, ConnectorError> {
            std::fs::read_to_string(&self.0)
                .map(Some)
                .map_err(|e| ConnectorError::new(ConnectorErrorKind::ServerDown, e.to_string()))
        }
    }

    fn config(probe: Option<Arc<dyn ChangeProbe>>) -> ChangePollConfig {
        let table: toml::Table = toml::from_str(r#"t = { every = "30s" }"#).unwrap();
        let mut c: ChangePollConfig =
            serde_json::from_value(serde_json::to_value(&table["t"]).unwrap()).unwrap();
        c.probe = Provided(probe);
        c
    }

    #[test]
    fn the_first_read_should_learn_and_later_ones_ask_when_the_token_moved() {
        let mut seen = Seen::default();
        assert!(
            !seen.moved(Some("5".into())),
            "first read: nothing to compare"
        );
        assert!(!seen.moved(Some("5".into())));
        assert!(seen.moved(Some("6".into())));
        assert!(seen.moved(None), "emptied");
        assert!(!seen.moved(None));
        assert!(seen.moved(Some("1".into())));
    }

    #[test]
    fn a_poll_without_a_probe_should_be_a_configuration_error() {
        let e = config(None).validate("hr", 2).unwrap_err();
        assert_eq!((e.index, e.kind.as_str()), (2, "change-poll"));
        assert!(e.to_string().contains("offers nothing to poll"), "{e}");
        let probe: Arc<dyn ChangeProbe> = Arc::new(FileProbe("x".into()));
        let t = config(Some(probe)).validate("hr", 0).unwrap();
        assert_eq!(t.every, DEFAULT_EVERY);
        assert_eq!(t.ask.profile, "delta-import");
        assert_eq!(t.ask.trigger, "change-poll (every 30s)");
    }

    #[tokio::test(start_paused = true)]
    async fn the_poll_should_ask_once_per_move_and_report_a_failing_probe() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "1").unwrap();
        let probe: Arc<dyn ChangeProbe> = Arc::new(FileProbe(file.clone()));
        let trigger = config(Some(probe)).validate("hr", 0).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel::<TriggerEvent>();
        let cancel = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(trigger.run(Arc::new(SystemClock), Arc::new(tx), cancel.clone()));
        // Let the first read (at start) learn "1", then move the token.
        tokio::time::sleep(Duration::from_secs(1)).await;
        std::fs::write(&file, "2").unwrap();
        let Some(TriggerEvent::Request(r)) = rx.recv().await else {
            panic!("expected a request")
        };
        assert_eq!(r.profile, "delta-import");
        assert_eq!(start.elapsed(), DEFAULT_EVERY, "asked at the first tick");

        std::fs::remove_file(&file).unwrap();
        let Some(TriggerEvent::Error(e)) = rx.recv().await else {
            panic!("expected an error")
        };
        assert!(!e.stopped);
        assert!(
            e.message.contains("whether its data changed"),
            "{}",
            e.message
        );
        // Back with the token last learnt: nothing moved.
        std::fs::write(&file, "2").unwrap();
        tokio::time::sleep(DEFAULT_EVERY * 3).await;
        assert!(rx.try_recv().is_err(), "no request for an unchanged token");
        std::fs::write(&file, "3").unwrap();
        let Some(TriggerEvent::Request(_)) = rx.recv().await else {
            panic!("expected a request")
        };
        cancel.cancel();
        task.await.unwrap();
    }
}
