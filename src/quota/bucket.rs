//! One quota bucket: the pace of the requests that draw on one of Google's limits (an API's
//! project quota, one user's, one GA4 property's tokens).
//!
//! The pace is a GCRA schedule (each request is given the moment its units are free) at a
//! rate that is either configured or learned. Learning is AIMD, as TCP learns a path: unpaced
//! until Google refuses a request for rate; then the rate of the units Google admitted in the
//! last second, times [`DECREASE`]; again ×[`DECREASE`] at each later refusal of a request
//! sent at the current rate (refusals of requests already in flight at the previous one are
//! the same congestion, counted once); and [`INCREASE`] more per second while requests pass.
//! Why AIMD: Google's buckets are token buckets of unknown size and rate, shared with
//! whatever else spends the quota; a multiplicative decrease finds the rate in a few
//! refusals, a gentle increase keeps probing for more without a burst, and the admitted rate
//! measured at the first refusal starts it near the answer (`bench/run.sh --quota`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A refusal sets the rate to this share of the rate that was refused.
pub const DECREASE: f64 = 0.9;
/// While requests pass, the learned rate grows by this share a second.
pub const INCREASE: f64 = 0.05;
/// The admitted rate is measured over this window.
const WINDOW: Duration = Duration::from_secs(1);

/// What a bucket's pace is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// No refusal yet: requests go as fast as the run's limits allow.
    Unpaced,
    /// Learned from Google's refusals (units a second).
    Learned(f64),
    /// Configured (units a second): used as given, never changed.
    Configured(f64),
}

impl Pace {
    pub fn rate(&self) -> Option<f64> {
        match *self {
            Pace::Unpaced => None,
            Pace::Learned(rate) | Pace::Configured(rate) => Some(rate),
        }
    }
}

/// A place in the schedule: when the request may be sent and which pace it was sent at.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub at: Instant,
    pub epoch: u64,
}

/// What a refusal did to the bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reaction {
    /// The rate went down (from, to; units a second).
    Slowed { from: Option<f64>, to: f64 },
    /// The rate stayed (configured, or this congestion was already answered); the bucket pauses.
    Paused,
}

#[derive(Debug)]
pub struct Bucket {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    pace: Pace,
    /// GCRA: the moment the next request's units are free.
    next: Instant,
    /// Bumped at each decrease: a refusal of a request sent at an older epoch is not new news.
    epoch: u64,
    /// No request leaves before this (an hourly quota spent; a pause after a refusal).
    closed_until: Option<Instant>,
    /// Units admitted (sent and passed) in the last [`WINDOW`], to measure the rate Google allows.
    admitted: VecDeque<(Instant, u32)>,
    /// When the learned rate last grew.
    grown: Instant,
    /// Refusals since the last request passed (the pause grows with them).
    refused_in_a_row: u32,
}

impl Bucket {
    pub fn new(pace: Pace) -> Self {
        let now = Instant::now();
        Bucket {
            state: Mutex::new(State {
                pace,
                next: now,
                epoch: 0,
                closed_until: None,
                admitted: VecDeque::new(),
                grown: now,
                refused_in_a_row: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn pace(&self) -> Pace {
        self.lock().pace
    }

    /// Reserves `cost` units: the moment the request may leave (now when unpaced).
    pub fn reserve(&self, cost: u32) -> Slot {
        let now = Instant::now();
        let mut state = self.lock();
        let mut at = now;
        if let Some(until) = state.closed_until {
            if until > now {
                at = until;
            } else {
                state.closed_until = None;
            }
        }
        if let Some(rate) = state.pace.rate() {
            at = at.max(state.next);
            state.next = at + Duration::from_secs_f64(f64::from(cost) / rate);
        }
        Slot {
            at,
            epoch: state.epoch,
        }
    }

    /// True while the bucket is closed (an hourly quota spent): a request woken from its slot
    /// reserves again.
    pub fn closed(&self) -> Option<Instant> {
        let state = self.lock();
        state.closed_until.filter(|until| *until > Instant::now())
    }

    /// A request of `cost` units sent at `slot` passed.
    pub fn passed(&self, cost: u32) {
        let now = Instant::now();
        let mut state = self.lock();
        state.refused_in_a_row = 0;
        state.admitted.push_back((now, cost));
        while state
            .admitted
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            state.admitted.pop_front();
        }
        if let Pace::Learned(rate) = state.pace {
            let elapsed = now.duration_since(state.grown).as_secs_f64();
            state.pace = Pace::Learned(rate * (1.0 + INCREASE * elapsed.min(1.0)));
            state.grown = now;
        }
    }

    /// A request of `cost` units sent at `slot` was refused for rate. `pause` is how long
    /// the bucket waits when it has nothing to learn from (no request admitted lately).
    pub fn refused(&self, slot: Slot, cost: u32, pause: Duration) -> Reaction {
        let now = Instant::now();
        let mut state = self.lock();
        state.refused_in_a_row += 1;
        if slot.epoch != state.epoch {
            return Reaction::Paused;
        }
        state.epoch += 1;
        let admitted: u32 = state
            .admitted
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= WINDOW)
            .map(|(_, units)| units)
            .sum();
        let measured = f64::from(admitted) / WINDOW.as_secs_f64();
        let before = state.pace.rate();
        let to = match state.pace {
            Pace::Configured(_) => None,
            Pace::Unpaced if admitted >= cost => Some(measured * DECREASE),
            Pace::Unpaced => None,
            Pace::Learned(rate) => Some(rate * DECREASE),
        };
        // The refused units are not spent: Google's bucket is empty, so the next request
        // waits at least one request's time at the new rate (or `pause` when no rate is
        // known yet, longer after each refusal in a row).
        let wait = match to.or(before) {
            Some(rate) => Duration::from_secs_f64(f64::from(cost) / rate),
            None => pause.saturating_mul(state.refused_in_a_row.min(8)),
        };
        state.next = state.next.max(now + wait);
        if to.is_none() && before.is_none() {
            state.closed_until = Some(now + wait);
        }
        match to {
            Some(to) => {
                state.pace = Pace::Learned(to);
                state.grown = now;
                Reaction::Slowed { from: before, to }
            }
            None => Reaction::Paused,
        }
    }

    /// Closes the bucket until `until` (an hourly quota spent): requests wait, then one probes.
    pub fn close(&self, until: Instant) {
        let mut state = self.lock();
        state.closed_until = Some(state.closed_until.map_or(until, |u| u.max(until)));
        state.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_configured_pace_spaces_units_evenly() {
        let bucket = Bucket::new(Pace::Configured(100.0));
        let start = Instant::now();
        let slots: Vec<_> = (0..4).map(|_| bucket.reserve(5).at - start).collect();
        assert_eq!(
            slots,
            [0, 50, 100, 150].map(Duration::from_millis).to_vec(),
            "5 units at 100 units/s: one every 50 ms"
        );
        let slot = bucket.reserve(5);
        assert_eq!(
            bucket.refused(slot, 5, Duration::from_secs(1)),
            Reaction::Paused
        );
        assert_eq!(bucket.pace(), Pace::Configured(100.0), "used as given");
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_refusal_starts_near_the_admitted_rate() {
        let bucket = Bucket::new(Pace::Unpaced);
        for _ in 0..50 {
            let slot = bucket.reserve(5);
            assert_eq!(slot.at, Instant::now(), "unpaced");
            bucket.passed(5);
        }
        let slot = bucket.reserve(5);
        let reaction = bucket.refused(slot, 5, Duration::from_secs(1));
        assert_eq!(
            reaction,
            Reaction::Slowed {
                from: None,
                to: 250.0 * DECREASE
            }
        );
        // A request in flight before the decrease, refused after it: the same congestion.
        assert_eq!(
            bucket.refused(slot, 5, Duration::from_secs(1)),
            Reaction::Paused
        );
        let next = bucket.reserve(5);
        let refused = bucket.refused(next, 5, Duration::from_secs(1));
        assert_eq!(
            refused,
            Reaction::Slowed {
                from: Some(225.0),
                to: 225.0 * DECREASE
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_learned_rate_grows_while_requests_pass() {
        let bucket = Bucket::new(Pace::Unpaced);
        bucket.passed(100);
        let slot = bucket.reserve(100);
        bucket.refused(slot, 100, Duration::from_secs(1));
        assert_eq!(bucket.pace(), Pace::Learned(90.0));
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            bucket.passed(1);
        }
        let Pace::Learned(rate) = bucket.pace() else {
            panic!()
        };
        let expected = 90.0 * (1.0 + INCREASE).powi(10);
        assert!((rate - expected).abs() < 1e-6, "{rate} vs {expected}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_with_nothing_to_learn_from_pauses_longer_each_time() {
        let bucket = Bucket::new(Pace::Unpaced);
        let pause = Duration::from_millis(100);
        let slot = bucket.reserve(1);
        assert_eq!(bucket.refused(slot, 1, pause), Reaction::Paused);
        let start = Instant::now();
        let second = bucket.reserve(1);
        assert_eq!(second.at - start, pause);
        bucket.refused(second, 1, pause);
        assert_eq!(bucket.reserve(1).at - start, pause * 2);
        assert_eq!(bucket.pace(), Pace::Unpaced);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_bucket_holds_every_request_until_it_opens() {
        let bucket = Bucket::new(Pace::Unpaced);
        let until = Instant::now() + Duration::from_secs(120);
        bucket.close(until);
        assert_eq!(bucket.reserve(1).at, until);
        assert!(bucket.closed().is_some());
        tokio::time::advance(Duration::from_secs(121)).await;
        assert!(bucket.closed().is_none());
        assert_eq!(bucket.reserve(1).at, Instant::now());
    }
}
