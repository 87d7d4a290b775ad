//! Shared request limits: one cap on HTTP requests in flight across every query of a run, and
//! an optional request rate per API. A request takes its permit before it is sent.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The limits of one run.
#[derive(Debug)]
pub struct Limits {
    in_flight: Arc<Semaphore>,
    rates: HashMap<String, RateLimiter>,
}

impl Limits {
    /// At most `concurrency` requests in flight at once.
    pub fn new(concurrency: NonZeroUsize) -> Self {
        Limits {
            in_flight: Arc::new(Semaphore::new(concurrency.get())),
            rates: HashMap::new(),
        }
    }

    /// Requests to `api` are spaced to at most `per_second` a second.
    pub fn set_rate(&mut self, api: &str, per_second: f64) {
        self.rates
            .insert(api.to_owned(), RateLimiter::new(per_second));
    }

    /// Waits for `api`'s rate, then for a free request slot; the slot is held until the
    /// permit is dropped (when the response has been read).
    pub async fn acquire(&self, api: &str) -> OwnedSemaphorePermit {
        if let Some(rate) = self.rates.get(api) {
            rate.wait().await;
        }
        self.in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the request semaphore is never closed")
    }
}

/// A token bucket holding one token, refilled every `1 / rate` seconds: requests leave evenly
/// spaced, never faster than the rate, whatever the number of tasks asking.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second.max(1e-6)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Returns when the caller may send its request.
    pub async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_spaces_requests_evenly() {
        let rate = Arc::new(RateLimiter::new(10.0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let rate = rate.clone();
            tasks.push(tokio::spawn(async move {
                rate.wait().await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap() - start);
        }
        times.sort();
        assert_eq!(times.last().copied(), Some(Duration::from_millis(400)));
        assert_eq!(times[0], Duration::ZERO);
    }
}
