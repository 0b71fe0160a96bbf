//! The interval trigger: asks for its profile every `every` (default 15 min),
//! each wait moved by a uniform random offset in ±`jitter` so that many MAs
//! do not all start together. The first request comes one interval after the
//! trigger starts (start-up reconciliation covers what is already pending).

use crate::config::{Ask, Common, check_positive, check_profile, default_profile, key_error};
use crate::duration::{HumanDuration, format_duration};
use crate::sink::RequestSink;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `{ type = "interval", every = "15m", jitter = "30s", profile = "delta-import" }`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalConfig {
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
    #[serde(default)]
    pub jitter: Option<HumanDuration>,
}

fn default_every() -> HumanDuration {
    HumanDuration::from_secs(15 * 60)
}

/// A validated interval trigger.
#[derive(Clone, Debug)]
pub struct IntervalTrigger {
    pub ask: Ask,
    pub every: Duration,
    pub jitter: Duration,
}

impl IntervalConfig {
    pub fn validate(
        &self,
        ma: &str,
        index: usize,
    ) -> Result<IntervalTrigger, crate::TriggerConfigError> {
        let kind = "interval";
        check_profile(ma, index, kind, &self.profile)?;
        check_positive(ma, index, kind, "every", self.every.0)?;
        let jitter = self.jitter.map(|j| j.0).unwrap_or_default();
        if jitter >= self.every.0 {
            return Err(key_error(
                ma,
                index,
                kind,
                "jitter",
                format!(
                    "must be shorter than `every` ({} >= {})",
                    format_duration(jitter),
                    self.every
                ),
            ));
        }
        let details = if jitter.is_zero() {
            format!("every {}", self.every)
        } else {
            format!("every {} ±{}", self.every, format_duration(jitter))
        };
        let common = Common {
            profile: &self.profile,
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
        };
        Ok(IntervalTrigger {
            ask: Ask::new(ma, kind, self.name.as_deref(), &details, common),
            every: self.every.0,
            jitter,
        })
    }
}

/// How long to wait before the next request: `every` plus a uniform offset in
/// `[-jitter, +jitter]` (millisecond resolution).
pub fn next_delay(every: Duration, jitter: Duration, rng: &mut impl Rng) -> Duration {
    let jitter_ms = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    if jitter_ms == 0 {
        return every;
    }
    let offset = rng.random_range(0..=jitter_ms.saturating_mul(2));
    (every + Duration::from_millis(offset)).saturating_sub(jitter)
}

impl IntervalTrigger {
    /// Asks every interval until cancelled or the sink closes. `rng` drives
    /// the jitter (seed it in tests).
    pub async fn run(self, sink: Arc<dyn RequestSink>, cancel: CancellationToken, mut rng: StdRng) {
        loop {
            let delay = next_delay(self.every, self.jitter, &mut rng);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            tracing::debug!(ma = %self.ask.ma, trigger = %self.ask.trigger, "interval elapsed");
            if sink.request(self.ask.request()).is_err() {
                return;
            }
        }
    }

    /// A random generator seeded from the operating system, for production.
    pub fn os_rng() -> StdRng {
        StdRng::from_os_rng()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TriggerRequest;
    use tokio::sync::mpsc;

    fn config(every: &str, jitter: Option<&str>) -> IntervalConfig {
        IntervalConfig {
            name: None,
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            every: every.parse().unwrap(),
            jitter: jitter.map(|j| j.parse().unwrap()),
        }
    }

    #[test]
    fn next_delay_without_jitter_should_be_exactly_the_interval() {
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(
            next_delay(Duration::from_secs(900), Duration::ZERO, &mut rng),
            Duration::from_secs(900)
        );
    }

    #[test]
    fn next_delay_with_jitter_should_stay_within_plus_or_minus_jitter_and_vary() {
        let mut rng = StdRng::seed_from_u64(42);
        let every = Duration::from_secs(900);
        let jitter = Duration::from_secs(30);
        let delays: Vec<_> = (0..200)
            .map(|_| next_delay(every, jitter, &mut rng))
            .collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= every - jitter && *d <= every + jitter)
        );
        assert!(delays.iter().any(|d| *d < every), "some waits are shorter");
        assert!(delays.iter().any(|d| *d > every), "some waits are longer");
    }

    #[test]
    fn a_jitter_as_long_as_the_interval_should_be_rejected() {
        let err = config("1m", Some("1m")).validate("hr", 3).unwrap_err();
        assert_eq!(err.key, "jitter");
        assert_eq!(err.index, 3);
        assert!(
            err.to_string().contains("must be shorter than `every`"),
            "{err}"
        );
        assert_eq!(
            config("0s", None).validate("hr", 0).unwrap_err().key,
            "every"
        );
    }

    #[test]
    fn the_trigger_description_should_say_the_interval_and_jitter() {
        let t = config("15m", Some("30s")).validate("hr", 0).unwrap();
        assert_eq!(t.ask.trigger, "interval (every 15m ±30s)");
    }

    #[tokio::test(start_paused = true)]
    async fn interval_trigger_should_ask_once_per_interval() {
        let trigger = config("15m", None).validate("hr", 0).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel::<TriggerRequest>();
        let cancel = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let task =
            tokio::spawn(trigger.run(Arc::new(tx), cancel.clone(), StdRng::seed_from_u64(1)));
        for n in 1..=3u32 {
            let request = rx.recv().await.unwrap();
            assert_eq!(request.profile, "delta-import");
            assert_eq!(request.ma, "hr");
            assert_eq!(started.elapsed(), Duration::from_secs(900) * n);
        }
        cancel.cancel();
        task.await.unwrap();
    }
}
