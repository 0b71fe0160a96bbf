//! Coalescing of change notifications into runs: a burst of events becomes
//! one request, fired when no new event came for the debounce window
//! (default 1 s), and at the latest `max_delay` (default 5 s) after the
//! burst's first event, so a steady stream of changes still fires regularly.
//! No event is ever dropped: an event after a fire starts the next burst.
//! (The original dropped changes that came inside a trigger's minimum
//! interval.) Pure state machine; the runners feed it times.

use std::time::Duration;
use tokio::time::Instant;

/// The coalescer's state.
#[derive(Clone, Debug)]
pub struct Coalescer {
    debounce: Duration,
    max_delay: Duration,
    burst: Option<Burst>,
}

#[derive(Clone, Copy, Debug)]
struct Burst {
    first: Instant,
    last: Instant,
    events: u64,
}

/// A burst that is ready to become one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fire {
    /// How many events the request covers.
    pub events: u64,
    pub first: Instant,
    pub last: Instant,
}

impl Coalescer {
    /// `max_delay` shorter than `debounce` is treated as `debounce`.
    pub fn new(debounce: Duration, max_delay: Duration) -> Self {
        Coalescer {
            debounce,
            max_delay: max_delay.max(debounce),
            burst: None,
        }
    }

    /// An event happened at `now`.
    pub fn on_event(&mut self, now: Instant) {
        match &mut self.burst {
            Some(burst) => {
                burst.last = burst.last.max(now);
                burst.events += 1;
            }
            None => {
                self.burst = Some(Burst {
                    first: now,
                    last: now,
                    events: 1,
                });
            }
        }
    }

    /// When [`Coalescer::poll`] should next be called; `None` while idle.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.burst
            .map(|b| (b.last + self.debounce).min(b.first + self.max_delay))
    }

    /// The burst to fire, if its deadline has come; the coalescer is then idle.
    pub fn poll(&mut self, now: Instant) -> Option<Fire> {
        let deadline = self.next_deadline()?;
        if now < deadline {
            return None;
        }
        let burst = self.burst.take()?;
        Some(Fire {
            events: burst.events,
            first: burst.first,
            last: burst.last,
        })
    }

    /// Whether events are waiting to fire.
    pub fn is_pending(&self) -> bool {
        self.burst.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_single_event_should_fire_once_the_debounce_window_is_quiet() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(SEC, 5 * SEC);
        assert_eq!(c.next_deadline(), None);
        c.on_event(t0);
        assert_eq!(c.next_deadline(), Some(t0 + SEC));
        assert_eq!(c.poll(t0 + SEC / 2), None);
        let fire = c.poll(t0 + SEC).unwrap();
        assert_eq!(fire.events, 1);
        assert!(!c.is_pending());
        assert_eq!(c.poll(t0 + 10 * SEC), None, "fires once");
    }

    #[test]
    fn events_inside_the_window_should_coalesce_into_one_fire() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(SEC, 5 * SEC);
        for ms in [0, 200, 400, 900] {
            c.on_event(t0 + Duration::from_millis(ms));
        }
        assert_eq!(
            c.poll(t0 + Duration::from_millis(1800)),
            None,
            "window restarts at each event"
        );
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_millis(1900)));
        assert_eq!(c.poll(t0 + Duration::from_millis(1900)).unwrap().events, 4);
    }

    #[test]
    fn a_steady_stream_of_events_should_still_fire_every_max_delay_and_lose_none() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(SEC, 5 * SEC);
        let mut fires = Vec::new();
        let mut total = 0;
        // An event every 500 ms for 12 s: the window is never quiet.
        for step in 0..=24u64 {
            let now = t0 + Duration::from_millis(step * 500);
            if let Some(fire) = c.poll(now) {
                fires.push((now - t0, fire.events));
            }
            c.on_event(now);
            total += 1;
        }
        let end = t0 + Duration::from_secs(13);
        if let Some(fire) = c.poll(end) {
            fires.push((end - t0, fire.events));
        }
        let times: Vec<_> = fires.iter().map(|f| f.0).collect();
        assert_eq!(
            times,
            vec![
                5 * SEC,
                Duration::from_millis(10_000),
                Duration::from_secs(13)
            ]
        );
        assert_eq!(
            fires.iter().map(|f| f.1).sum::<u64>(),
            total,
            "every event is covered by a fire"
        );
    }

    #[test]
    fn an_event_after_a_fire_should_start_a_new_burst() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(SEC, 5 * SEC);
        c.on_event(t0);
        assert!(c.poll(t0 + SEC).is_some());
        c.on_event(t0 + SEC);
        assert_eq!(c.next_deadline(), Some(t0 + 2 * SEC));
        assert_eq!(c.poll(t0 + 2 * SEC).unwrap().events, 1);
    }
}
