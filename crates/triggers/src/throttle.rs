//! The change-notification trigger's pacing: when changes ask for an
//! import ([`Throttle`]). Pure: its runner feeds it times.

use std::time::{Duration, Instant};

/// When to ask: at once, unless a request was made less than the gap
/// ago; then at the end of the gap. While a burst goes on (the changes
/// that waited came faster than [`BURST_RATE`]) the gap doubles, up to
/// [`GAP_GROWTH`] times the first: a sustained burst becomes fewer,
/// larger imports (each cycle of import, sync, export and confirming
/// import costs a few milliseconds whatever it carries). Changes that
/// came slower (a steady trickle that happens to fall inside gaps) make
/// the gap short again, and so does a change after a quiet gap, which
/// asks at once. Pure: the runner feeds it times.
#[derive(Clone, Debug)]
pub struct Throttle {
    base: Duration,
    gap: Duration,
    last: Option<Instant>,
    /// Changes waiting for the end of the gap.
    waiting: u32,
}

/// How many times its first length a gap grows to during a burst.
pub const GAP_GROWTH: u32 = 8;
/// Changes per second above which changes waiting are a burst (and the
/// next gap doubles); below, the gap is short again. A steady 20 changes
/// a second never lengthens it, so each of them asks at once.
pub const BURST_RATE: f64 = 100.0;

impl Throttle {
    pub fn new(gap: Duration) -> Self {
        Throttle {
            base: gap,
            gap,
            last: None,
            waiting: 0,
        }
    }

    /// A change came at `now`: true when it asks at once.
    pub fn on_change(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now < last + self.gap => {
                self.waiting = self.waiting.saturating_add(1);
                false
            }
            // Changes waited through the gap (the deadline passed while
            // this change was on its way): asks for them and this one.
            Some(last) if self.waiting > 0 => {
                let changes = self.waiting.saturating_add(1);
                self.asked(now, last, changes);
                true
            }
            _ => {
                self.last = Some(now);
                self.waiting = 0;
                self.gap = self.base;
                true
            }
        }
    }

    /// When the changes waiting ask; `None` when none waits.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.waiting, self.last) {
            (1.., Some(last)) => Some(last + self.gap),
            _ => None,
        }
    }

    /// True when changes wait and their time has come (then they asked).
    pub fn poll(&mut self, now: Instant) -> bool {
        match (self.deadline(), self.last) {
            (Some(d), Some(last)) if now >= d => {
                self.asked(now, last, self.waiting);
                true
            }
            _ => false,
        }
    }

    /// `changes` came since the request at `last` and asked at `now`: a
    /// burst doubles the next gap, a trickle makes it short again.
    fn asked(&mut self, now: Instant, last: Instant, changes: u32) {
        let secs = now.saturating_duration_since(last).as_secs_f64();
        let burst = changes >= 2 && f64::from(changes) >= BURST_RATE * secs;
        self.gap = if burst {
            (self.gap * 2).min(self.base * GAP_GROWTH)
        } else {
            self.base
        };
        self.last = Some(now);
        self.waiting = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_change_should_ask_at_once_and_a_burst_once_more_at_the_end_of_the_gap() {
        let t0 = Instant::now();
        let mut t = Throttle::new(25 * MS);
        assert_eq!(t.deadline(), None);
        assert!(t.on_change(t0), "the first change asks at once");
        assert!(!t.on_change(t0 + 5 * MS));
        assert!(!t.on_change(t0 + 20 * MS));
        assert_eq!(t.deadline(), Some(t0 + 25 * MS));
        assert!(!t.poll(t0 + 24 * MS));
        assert!(t.poll(t0 + 25 * MS), "the burst asks once more");
        assert!(!t.poll(t0 + 60 * MS), "once");
        // The burst doubled the gap (to 50 ms from its last request).
        assert!(t.on_change(t0 + 80 * MS), "a later change asks at once");
        let mut zero = Throttle::new(Duration::ZERO);
        assert!(zero.on_change(t0) && zero.on_change(t0));
    }

    #[test]
    fn a_sustained_burst_should_ask_less_often_and_a_quiet_gap_make_it_quick_again() {
        let t0 = Instant::now();
        let mut t = Throttle::new(25 * MS);
        assert!(t.on_change(t0));
        // A change every millisecond: each gap ends with changes waiting.
        let mut asked = Vec::new();
        for ms in 1..=800u32 {
            let now = t0 + ms * MS;
            if t.poll(now) {
                asked.push(ms);
            }
            assert!(!t.on_change(now), "{ms}: inside a gap");
        }
        // Gaps of 25, 50, 100, then 200 ms (eight times the first), no
        // longer.
        assert_eq!(asked, [25, 75, 175, 375, 575, 775]);
        // The last changes ask at the end of their gap: none is dropped.
        assert_eq!(t.deadline(), Some(t0 + 975 * MS));
        assert!(t.poll(t0 + 975 * MS));
        // A change after a quiet gap asks at once; the gap is short again.
        assert!(t.on_change(t0 + 1200 * MS));
        assert!(!t.on_change(t0 + 1201 * MS));
        assert_eq!(t.deadline(), Some(t0 + 1225 * MS));
        // A change that comes after the deadline passed, before the
        // deadline was seen (its waker and the change raced), asks for
        // those that waited; a burst (here 25 changes in 26 ms) still
        // doubles the gap.
        for ms in 1202..=1224u32 {
            assert!(!t.on_change(t0 + ms * MS));
        }
        assert!(t.on_change(t0 + 1226 * MS));
        assert!(!t.on_change(t0 + 1227 * MS));
        assert_eq!(t.deadline(), Some(t0 + 1276 * MS));
        assert!(t.poll(t0 + 1276 * MS));
        // Quiet for a whole gap: short again.
        assert!(t.on_change(t0 + 1500 * MS));
        assert!(!t.on_change(t0 + 1501 * MS));
        assert_eq!(t.deadline(), Some(t0 + 1525 * MS));
    }

    #[test]
    fn a_steady_trickle_should_never_lengthen_the_gap() {
        // As the runner does: a deadline is seen when it comes.
        fn change(t: &mut Throttle, now: Instant) -> bool {
            if let Some(d) = t.deadline().filter(|d| *d <= now) {
                assert!(t.poll(d));
            }
            t.on_change(now)
        }
        // 20 changes a second, with jitter that puts some inside a gap:
        // those wait for its end, and the gap stays short.
        let t0 = Instant::now();
        let mut t = Throttle::new(25 * MS);
        let mut at = 0u32;
        for i in 0..200u32 {
            at += if i % 3 == 0 { 20 } else { 65 };
            let now = t0 + at * MS;
            if !change(&mut t, now) {
                assert!(t.deadline() <= Some(now + 25 * MS), "{i}: {t:?}");
            }
        }
        // After a burst lengthened it to the most, a trickle makes it
        // short again within two gaps (the one the burst ended in, and
        // one of the trickle alone).
        for ms in 0..1000u32 {
            change(&mut t, t0 + (20_000 + ms) * MS);
        }
        let mut at = 21_000u32;
        let mut late = Vec::new();
        for i in 0..100u32 {
            at += if i % 2 == 0 { 45 } else { 55 };
            if !change(&mut t, t0 + at * MS) {
                late.push(i);
            }
        }
        assert!(
            late.iter().all(|i| *i < 8),
            "steady changes that waited for a gap: {late:?}"
        );
    }
}
