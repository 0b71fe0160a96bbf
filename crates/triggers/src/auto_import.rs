//! The auto-import trigger: "import every N when nothing else imported"
//! (default 60 min). The controller tells it when the MA last imported
//! (whatever caused that import) through [`crate::TriggerSet::record_import`];
//! it asks for its profile once `now - max(last import, last request) >= N`.
//! With no import known yet, N is counted from when the trigger started.

use crate::clock::{Clock, wait_until};
use crate::config::{Ask, Common, check_positive, check_profile, default_profile};
use crate::duration::HumanDuration;
use crate::sink::RequestSink;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// `{ type = "auto-import", every = "60m", profile = "delta-import" }`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoImportConfig {
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
}

fn default_every() -> HumanDuration {
    HumanDuration::from_secs(60 * 60)
}

/// A validated auto-import trigger.
#[derive(Clone, Debug)]
pub struct AutoImportTrigger {
    pub ask: Ask,
    pub every: Duration,
}

impl AutoImportConfig {
    pub fn validate(
        &self,
        ma: &str,
        index: usize,
    ) -> Result<AutoImportTrigger, crate::TriggerConfigError> {
        let kind = "auto-import";
        check_profile(ma, index, kind, &self.profile)?;
        check_positive(ma, index, kind, "every", self.every.0)?;
        let common = Common {
            profile: &self.profile,
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
        };
        let details = format!("no import for {}", self.every);
        Ok(AutoImportTrigger {
            ask: Ask::new(ma, kind, self.name.as_deref(), &details, common),
            every: self.every.0,
        })
    }
}

/// When the trigger is next due: N after the later of the last import and
/// the last request, or N after `armed_at` when neither is known.
pub fn due_at(
    every: Duration,
    last_import: Option<DateTime<Utc>>,
    last_request: Option<DateTime<Utc>>,
    armed_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let base = match (last_import, last_request) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => armed_at,
    };
    base + TimeDelta::from_std(every).unwrap_or(TimeDelta::MAX)
}

/// Whether to ask now.
pub fn is_due(
    every: Duration,
    last_import: Option<DateTime<Utc>>,
    last_request: Option<DateTime<Utc>>,
    armed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    now >= due_at(every, last_import, last_request, armed_at)
}

const MAX_NAP: Duration = Duration::from_secs(60);

impl AutoImportTrigger {
    /// Runs until cancelled or the sink closes; `last_import` carries the
    /// MA's last import time from the controller.
    pub async fn run(
        self,
        mut last_import: watch::Receiver<Option<DateTime<Utc>>>,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn RequestSink>,
        cancel: CancellationToken,
    ) {
        let armed_at = clock.now();
        let mut last_request = None;
        let mut listening = true;
        loop {
            let now = clock.now();
            let imported = *last_import.borrow_and_update();
            if is_due(self.every, imported, last_request, armed_at, now) {
                tracing::info!(ma = %self.ask.ma, trigger = %self.ask.trigger, "no import for a while");
                if sink.request(self.ask.request()).is_err() {
                    return;
                }
                last_request = Some(now);
                continue;
            }
            let delay = wait_until(
                now,
                due_at(self.every, imported, last_request, armed_at),
                MAX_NAP,
            );
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
                changed = last_import.changed(), if listening => listening = changed.is_ok(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TriggerRequest;
    use crate::clock::TokioWallClock;
    use tokio::sync::mpsc;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn auto_import_should_be_due_once_n_has_passed_since_the_last_import() {
        let armed = utc("2024-05-01T00:00:00Z");
        let import = Some(utc("2024-05-01T09:00:00Z"));
        assert!(!is_due(
            HOUR,
            import,
            None,
            armed,
            utc("2024-05-01T09:59:59Z")
        ));
        assert!(is_due(
            HOUR,
            import,
            None,
            armed,
            utc("2024-05-01T10:00:00Z")
        ));
    }

    #[test]
    fn auto_import_should_count_from_its_own_last_request_when_no_import_followed() {
        let armed = utc("2024-05-01T00:00:00Z");
        let import = Some(utc("2024-05-01T09:00:00Z"));
        let asked = Some(utc("2024-05-01T10:00:00Z"));
        assert!(!is_due(
            HOUR,
            import,
            asked,
            armed,
            utc("2024-05-01T10:30:00Z")
        ));
        assert!(is_due(
            HOUR,
            import,
            asked,
            armed,
            utc("2024-05-01T11:00:00Z")
        ));
    }

    #[test]
    fn auto_import_with_no_known_import_should_count_from_its_start() {
        let armed = utc("2024-05-01T00:00:00Z");
        assert_eq!(due_at(HOUR, None, None, armed), utc("2024-05-01T01:00:00Z"));
    }

    #[test]
    fn an_old_import_should_make_the_trigger_due_right_at_start() {
        let armed = utc("2024-05-01T12:00:00Z");
        assert!(is_due(
            HOUR,
            Some(utc("2024-05-01T09:00:00Z")),
            None,
            armed,
            armed
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn running_auto_import_should_wait_again_after_each_reported_import() {
        let config = AutoImportConfig {
            name: None,
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            every: HumanDuration::from_secs(3600),
        };
        let trigger = config.validate("hr", 0).unwrap();
        let clock = Arc::new(TokioWallClock::new(utc("2024-05-01T00:00:00Z")));
        let (import_tx, import_rx) = watch::channel(None);
        let (tx, mut rx) = mpsc::unbounded_channel::<TriggerRequest>();
        let cancel = CancellationToken::new();
        tokio::spawn(trigger.run(import_rx, clock.clone(), Arc::new(tx), cancel.clone()));

        // Something else imports at 00:30: the first request waits until 01:30.
        tokio::time::sleep(Duration::from_secs(1800)).await;
        import_tx.send(Some(clock.now())).unwrap();
        let request = rx.recv().await.unwrap();
        assert_eq!(clock.now(), utc("2024-05-01T01:30:00Z"));
        assert_eq!(request.trigger, "auto-import (no import for 1h)");
        // Nothing imports after: the next request comes an hour later.
        rx.recv().await.unwrap();
        assert_eq!(clock.now(), utc("2024-05-01T02:30:00Z"));
        cancel.cancel();
    }
}
