//! One quota bucket: the pace of the requests that draw on one of Google's limits (an API's
//! project quota, one user's, one GA4 property's tokens).
//!
//! The pace is a GCRA schedule (each request is given the moment its units are free) at a
//! rate that is configured, or learned, congestion-control style, in three parts:
//! - **Start** like TCP's slow start: from [`START_REQUESTS`] requests a second, doubling at
//!   most every [`START_DOUBLING`] as requests pass, so that a fan-out at `--concurrency 256`
//!   does not send 256 requests into an empty bucket before the first refusal comes back (an
//!   unpaced start did: every request in flight at that moment is refused). A request with no
//!   other in flight goes at once (a list's pages, one after another, are never held), and
//!   the pace stops mattering within about half a second.
//! - **Decrease** at a refusal of a request sent at the current pace (refusals of requests
//!   already in flight at an older pace are the same congestion, answered once): to
//!   [`TARGET`] × the rate Google admitted since its previous refusal — Google's bucket was
//!   empty then and is empty now, so what it let through in between is its refill rate,
//!   exactly (BBR's delivery rate) — or, with too little seen since, by half.
//! - **Increase** by [`INCREASE`] a second while requests pass: gentle probing for more
//!   (another user of the quota may have stopped), which ends in the next refusal.
//!
//! Measured against a strict double, `bench/run.sh --quota` (README, "Quota").

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A learned rate is set to this share of the rate Google was seen to admit.
pub const TARGET: f64 = 0.95;
/// While requests pass, a learned rate below the rate of the last refusal closes this share of
/// the gap a second (quickly back to where Google refused, as CUBIC does)...
pub const APPROACH: f64 = 1.0;
/// ...and from there grows by this share a second (gentle probing beyond it).
pub const INCREASE: f64 = 0.03;
/// A refusal with too little seen since the previous one cuts the rate to this share.
pub const CUT: f64 = 0.7;
/// Requests a second a bucket starts at.
pub const START_REQUESTS: f64 = 100.0;
/// The starting pace doubles this often while requests pass.
pub const START_DOUBLING: Duration = Duration::from_millis(50);
/// Past this many requests a second, a starting bucket is unpaced.
const UNPACED_REQUESTS: f64 = 100_000.0;
/// The admitted rate is measured over at most this window.
const WINDOW: Duration = Duration::from_secs(1);
/// Requests admitted since the previous refusal needed to measure Google's rate from them.
const MEASURED: u32 = 4;

/// What a bucket's pace is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// No refusal yet: `rate` units a second, doubled at most every [`START_DOUBLING`] and
    /// only once a request sent at it has passed (so the pace grows by Google's answers, as
    /// TCP's slow start grows by round trip); unpaced from `unpaced_above`.
    Starting {
        rate: f64,
        doubled: Instant,
        unpaced_above: f64,
    },
    /// Learned from Google's refusals (units a second).
    Learned(f64),
    /// Configured (units a second): used as given, never changed.
    Configured(f64),
}

impl Pace {
    /// Units a second (`None`: unpaced).
    pub fn rate(&self) -> Option<f64> {
        match *self {
            Pace::Starting {
                rate,
                unpaced_above,
                ..
            } => (rate < unpaced_above).then_some(rate),
            Pace::Learned(rate) | Pace::Configured(rate) => Some(rate),
        }
    }
}

/// When a request took its units, and at which pace (epoch) it was sent.
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
    /// The line of requests waiting for units (tokio's mutex is fair: first come, first served).
    turn: tokio::sync::Mutex<()>,
    /// Told when the schedule changes (a refusal, a closing), so that the request at the head
    /// of the line looks again at once.
    changed: tokio::sync::Notify,
}

#[derive(Debug)]
struct State {
    /// `None` until the first request, whose cost sets the starting pace.
    pace: Option<Pace>,
    configured: Option<f64>,
    /// GCRA: the moment the next request's units are free.
    next: Instant,
    /// Bumped at each decrease: a refusal of a request sent at an older epoch is not new news.
    epoch: u64,
    /// No request leaves before this (an hourly quota spent; a pause after a refusal).
    closed_until: Option<Instant>,
    /// Units admitted in the last [`WINDOW`] (for the first refusal, with no previous one).
    admitted: VecDeque<(Instant, u32)>,
    /// The previous refusal, and the units and requests admitted since.
    since_refusal: Option<(Instant, u64, u32)>,
    /// The rate Google refused at last (measured, when it could be).
    ceiling: Option<f64>,
    /// When the learned rate last grew.
    grown: Instant,
    /// Refusals since the last request passed (the pause grows with them).
    refused_in_a_row: u32,
    /// Requests sent and not yet answered. A request with none beside it goes at once while
    /// the bucket starts: one request at a time (a list's pages) cannot make a burst.
    in_flight: usize,
}

impl Bucket {
    /// A bucket at a configured rate (units a second), or learning its own.
    pub fn new(configured: Option<f64>) -> Self {
        let now = Instant::now();
        Bucket {
            turn: tokio::sync::Mutex::new(()),
            changed: tokio::sync::Notify::new(),
            state: Mutex::new(State {
                pace: configured.map(Pace::Configured),
                configured,
                next: now,
                epoch: 0,
                closed_until: None,
                admitted: VecDeque::new(),
                since_refusal: None,
                ceiling: None,
                grown: now,
                refused_in_a_row: 0,
                in_flight: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    pub fn pace(&self) -> Option<Pace> {
        self.lock().pace
    }

    /// Waits for this bucket's turn (first come, first served) and then for `cost` units at
    /// its pace as it is then, and takes them. Nothing is reserved ahead: a request waiting in
    /// line goes at the pace of its turn, so a refusal or a faster pace counts at once for
    /// every request behind it.
    pub async fn take(&self, cost: u32) -> Slot {
        let _turn = self.turn.lock().await;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let at = {
                let mut state = self.lock();
                let pace = *state.pace.get_or_insert(Pace::Starting {
                    rate: START_REQUESTS * f64::from(cost),
                    doubled: now,
                    unpaced_above: UNPACED_REQUESTS * f64::from(cost),
                });
                let mut at = now;
                if let Some(until) = state.closed_until {
                    match until > now {
                        true => at = until,
                        false => state.closed_until = None,
                    }
                }
                let rate = pace.rate();
                let alone = state.in_flight == 0 && matches!(pace, Pace::Starting { .. });
                if rate.is_some() && !alone {
                    at = at.max(state.next);
                }
                if at <= now {
                    // GCRA: the next units are free one interval after these were due (a
                    // timer's lateness is not lost), or after now when the bucket was idle.
                    state.next = match rate {
                        Some(rate) => {
                            let interval = Duration::from_secs_f64(f64::from(cost) / rate);
                            let due = match alone {
                                true => now,
                                false => state.next.max(now.checked_sub(interval).unwrap_or(now)),
                            };
                            due + interval
                        }
                        None => now,
                    };
                    state.in_flight += 1;
                    return Slot {
                        at: now,
                        epoch: state.epoch,
                    };
                }
                at
            };
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = &mut changed => {}
            }
        }
    }

    /// A request that took its units was answered (or gave up): it is no longer in flight.
    pub fn release(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    /// Until when the bucket is closed (an hourly quota spent).
    pub fn closed(&self) -> Option<Instant> {
        let state = self.lock();
        state.closed_until.filter(|until| *until > Instant::now())
    }

    /// A request of `cost` units, sent at `slot`, passed.
    pub fn passed(&self, slot: Slot, cost: u32) {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(Pace::Starting { rate, doubled, .. }) = &mut state.pace {
            if slot.at >= *doubled && now.duration_since(*doubled) >= START_DOUBLING {
                *rate *= 2.0;
                *doubled = now;
            }
        }
        state.refused_in_a_row = 0;
        state.admitted.push_back((now, cost));
        while state
            .admitted
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            state.admitted.pop_front();
        }
        if let Some((_, units, passes)) = &mut state.since_refusal {
            *units += u64::from(cost);
            *passes += 1;
        }
        if let Some(Pace::Learned(rate)) = state.pace {
            let elapsed = now.duration_since(state.grown).as_secs_f64().min(1.0);
            let grown = match state.ceiling.filter(|c| *c > rate) {
                Some(ceiling) => rate + (ceiling - rate) * (APPROACH * elapsed).min(1.0),
                None => rate * (1.0 + INCREASE * elapsed),
            };
            state.pace = Some(Pace::Learned(grown));
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
        let before = state.pace.and_then(|p| p.rate());
        let window: u32 = state
            .admitted
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= WINDOW)
            .map(|(_, units)| units)
            .sum();
        let seen = window > 0 || state.since_refusal.is_some_and(|(_, units, _)| units > 0);
        let mut ceiling = before;
        let to = match (state.configured, state.since_refusal, before) {
            (Some(_), ..) => None,
            // Nothing admitted lately to learn from: a pause, longer each time.
            (None, ..) if !seen => None,
            // Google's refill rate, measured between its two refusals.
            (None, Some((at, units, passes)), _) if passes >= MEASURED => {
                let seconds = now.duration_since(at).as_secs_f64().max(1e-3);
                let measured = units as f64 / seconds;
                ceiling = Some(measured);
                Some(match before {
                    Some(rate) => (measured * TARGET).max(rate * CUT),
                    None => measured * TARGET,
                })
            }
            (None, _, Some(rate)) if state.since_refusal.is_some() => Some(rate * CUT),
            // The first refusal: what Google admitted in the last second (a burst it allowed
            // counts too, so the halvings above may follow).
            (None, None, _) if window >= cost => {
                let measured = f64::from(window) / WINDOW.as_secs_f64();
                ceiling = Some(measured);
                Some(before.map_or(measured, |rate| measured.min(rate)))
            }
            (None, _, _) => None,
        };
        state.since_refusal = Some((now, 0, 0));
        if to.is_some() {
            state.ceiling = ceiling;
        }
        self.changed.notify_waiters();
        // Google's bucket is empty: the next request waits at least one request's time at the
        // new rate (or `pause` when no rate is known yet, longer after each refusal in a row).
        let wait = match to.or(state.configured) {
            Some(rate) => Duration::from_secs_f64(f64::from(cost) / rate),
            None => pause.saturating_mul(state.refused_in_a_row.min(8)),
        };
        // Google's bucket is empty now: the schedule starts again from here.
        state.next = now + wait;
        if to.is_none() && state.configured.is_none() {
            state.closed_until = Some(now + wait);
        }
        match to {
            Some(to) => {
                state.pace = Some(Pace::Learned(to));
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
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_millis(100);

    #[tokio::test(start_paused = true)]
    async fn a_configured_pace_spaces_units_evenly() {
        let bucket = Bucket::new(Some(100.0));
        let start = Instant::now();
        let mut slots = Vec::new();
        for _ in 0..4 {
            slots.push(bucket.take(5).await.at - start);
        }
        assert_eq!(
            slots,
            [0, 50, 100, 150].map(Duration::from_millis).to_vec(),
            "5 units at 100 units/s: one every 50 ms"
        );
        let slot = bucket.take(5).await;
        assert_eq!(bucket.refused(slot, 5, PAUSE), Reaction::Paused);
        assert_eq!(
            bucket.pace(),
            Some(Pace::Configured(100.0)),
            "used as given"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_bucket_starts_slow_and_doubles_as_requests_pass() {
        let bucket = Bucket::new(None);
        let start = Instant::now();
        let first = bucket.take(5).await;
        assert_eq!(first.at, start);
        let second = bucket.take(5).await;
        assert_eq!(
            second.at - start,
            Duration::from_millis(10),
            "100 requests a second"
        );
        assert_eq!(bucket.pace().unwrap().rate(), Some(500.0));
        // No answer yet: the pace waits for one, however long.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(bucket.pace().unwrap().rate(), Some(500.0));
        bucket.passed(second, 5);
        assert_eq!(bucket.pace().unwrap().rate(), Some(1000.0));
        // A request sent before the doubling says nothing of the new pace.
        bucket.passed(first, 5);
        tokio::time::advance(START_DOUBLING).await;
        bucket.passed(second, 5);
        assert_eq!(bucket.pace().unwrap().rate(), Some(1000.0));
        for _ in 0..20 {
            let slot = bucket.take(5).await;
            tokio::time::advance(START_DOUBLING).await;
            bucket.passed(slot, 5);
        }
        assert_eq!(
            bucket.pace().unwrap().rate(),
            None,
            "unpaced after 10 doublings"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_request_at_a_time_is_never_held_by_the_start() {
        let bucket = Bucket::new(None);
        let start = Instant::now();
        for _ in 0..5 {
            let slot = bucket.take(1).await;
            assert_eq!(slot.at, start, "the pages of a list, one after another");
            bucket.release();
        }
        bucket.take(1).await;
        assert_eq!(
            bucket.take(1).await.at - start,
            Duration::from_millis(10),
            "two at once: paced"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn google_s_rate_is_measured_between_two_refusals() {
        let bucket = Bucket::new(None);
        for _ in 0..14 {
            let slot = bucket.take(5).await;
            tokio::time::advance(START_DOUBLING).await;
            bucket.passed(slot, 5);
        }
        assert_eq!(bucket.pace().unwrap().rate(), None);
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..50 {
            let slot = bucket.take(5).await;
            bucket.passed(slot, 5);
        }
        let slot = bucket.take(5).await;
        // The first refusal: the units admitted in the last second, 250.
        assert_eq!(
            bucket.refused(slot, 5, PAUSE),
            Reaction::Slowed {
                from: None,
                to: 250.0
            }
        );
        // A request in flight before the decrease, refused after it: the same congestion.
        assert_eq!(bucket.refused(slot, 5, PAUSE), Reaction::Paused);
        // Too little seen since: a cut.
        let next = bucket.take(5).await;
        assert_eq!(
            bucket.refused(next, 5, PAUSE),
            Reaction::Slowed {
                from: Some(250.0),
                to: 250.0 * CUT
            }
        );
        // Google admitted 40 requests of 5 units in the next second: 200 units a second.
        for _ in 0..40 {
            tokio::time::advance(Duration::from_millis(25)).await;
            bucket.passed(next, 5);
        }
        let slot = bucket.take(5).await;
        let Reaction::Slowed { to, .. } = bucket.refused(slot, 5, PAUSE) else {
            panic!("slowed")
        };
        let expected = 200.0 * TARGET;
        assert!((to - expected).abs() < expected * 0.05, "{to}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_learned_rate_grows_while_requests_pass() {
        let bucket = Bucket::new(None);
        let first = bucket.take(100).await;
        tokio::time::advance(Duration::from_secs(2)).await;
        bucket.passed(first, 100);
        let slot = bucket.take(100).await;
        bucket.refused(slot, 100, PAUSE);
        assert_eq!(bucket.pace(), Some(Pace::Learned(100.0)));
        // Cut below the rate refused at: back to it within a couple of seconds...
        let slot = bucket.take(1).await;
        bucket.refused(slot, 1, PAUSE);
        assert_eq!(bucket.pace(), Some(Pace::Learned(100.0 * CUT)));
        for _ in 0..8 {
            tokio::time::advance(Duration::from_millis(250)).await;
            bucket.passed(slot, 1);
        }
        let Some(Pace::Learned(rate)) = bucket.pace() else {
            panic!()
        };
        assert!(rate > 96.0 && rate <= 100.0, "{rate}");
        // ...then beyond it, gently.
        let bucket = Bucket::new(None);
        let first = bucket.take(100).await;
        tokio::time::advance(Duration::from_secs(2)).await;
        bucket.passed(first, 100);
        let slot = bucket.take(100).await;
        bucket.refused(slot, 100, PAUSE);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            bucket.passed(slot, 1);
        }
        let Some(Pace::Learned(rate)) = bucket.pace() else {
            panic!()
        };
        let expected = 100.0 * (1.0 + INCREASE).powi(10);
        assert!((rate - expected).abs() < 1e-6, "{rate} vs {expected}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_with_nothing_to_learn_from_pauses_longer_each_time() {
        let bucket = Bucket::new(None);
        let slot = bucket.take(1).await;
        assert_eq!(bucket.refused(slot, 1, PAUSE), Reaction::Paused);
        let start = Instant::now();
        let second = bucket.take(1).await;
        assert_eq!(second.at - start, PAUSE);
        bucket.refused(second, 1, PAUSE);
        assert_eq!(bucket.take(1).await.at - second.at, PAUSE * 2);
        assert!(
            matches!(bucket.pace(), Some(Pace::Starting { .. })),
            "nothing learned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_bucket_holds_every_request_until_it_opens() {
        let bucket = Bucket::new(Some(1e9));
        let until = Instant::now() + Duration::from_secs(120);
        bucket.close(until);
        assert!(bucket.closed().is_some());
        assert_eq!(bucket.take(1).await.at, until);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(bucket.closed().is_none());
        let now = Instant::now();
        assert_eq!(bucket.take(1).await.at, now);
    }
}
