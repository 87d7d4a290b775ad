//! The quota governor: every request to Google takes its cost in quota units from its
//! buckets before it is sent — the API's project bucket, the bucket of the user it acts as,
//! and for GA4 the property's hourly tokens — so that a run paces itself at Google's quota
//! instead of bouncing off it. A request refused for rate waits for its bucket and goes
//! again (it spends no retry meant for real failures); only a daily exhaustion, a budget
//! spent, or a wait longer than `--quota-wait` fails it, as a quota wall.
//!
//! [`bucket`] is one bucket's line and pace (configured, or learned from Google's refusals);
//! [`costs`] the units of a request and the rates as written. The call layer ([`crate::api::ApiClient`]) drives a
//! [`Request`] through [`Request::admit`], then [`Request::passed`] or [`Request::refused`].

pub mod bucket;
pub mod costs;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use crate::counters::Counters;
use crate::http::GoogleError;
use bucket::{Bucket, Reaction, Slot};
pub use costs::{CostTable, Limits};

/// How long a request refused for an hourly quota waits for it by default (`--quota-wait`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(75 * 60);
/// How often a bucket closed by an hourly quota lets one request probe whether tokens are back
/// ("hourly quotas refresh within an hour": a token bucket, not the top of the hour).
const PROBE_EVERY: Duration = Duration::from_secs(5 * 60);
/// The pause after a refusal when no rate is known yet (grows with refusals in a row).
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// The quota settings of a run.
#[derive(Debug, Clone)]
pub struct QuotaSettings {
    /// Configured limits (`--quota-per-user`, `--quota-per-project`, `[quota]`).
    pub limits: Limits,
    /// Cost overrides (`[quota.costs]`).
    pub costs: CostTable,
    /// `--max-units`: the run stops before spending more.
    pub max_units: Option<u64>,
    /// `--quota-wait`: the longest one request waits for an hourly quota.
    pub wait: Duration,
    /// Multiplies the governor's pauses and probes (`GSCRAPE_BACKOFF_SCALE`; tests shrink it).
    pub scale: f64,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings {
            limits: Limits::default(),
            costs: CostTable::default(),
            max_units: None,
            wait: DEFAULT_WAIT,
            scale: 1.0,
        }
    }
}

/// Why the governor will not let a request go.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QuotaError {
    #[error("the budget of {limit} quota units ({origin}) would be passed: {spent} spent, the next request costs {cost}; the export is checkpointed — run again with --resume (and a new budget) to go on")]
    Budget {
        limit: u64,
        spent: u64,
        cost: u32,
        origin: &'static str,
    },
    #[error("{bucket} was still refusing after waiting {} (--quota-wait): a quota wall; the export is checkpointed — run again with --resume once the quota is back", humantime::format_duration(*.waited))]
    WaitedTooLong { bucket: String, waited: Duration },
}

/// Which of Google's limits refused a request for rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user acted as (`userRateLimitExceeded`, or a bare 429: see [`refusal_of`]).
    User,
    /// The Cloud project (`rateLimitExceeded`, "… for consumer 'project_number:…'").
    Project,
    /// An hourly quota (GA4's property tokens): waited for, probing now and then.
    Hourly,
}

/// What a rate refusal says of its limit; `None` for any other answer. Call it only for an
/// answer [`crate::http::retry::classify`] does not call a quota wall (a daily exhaustion).
/// A bare 429 is taken as the user's limit, the narrowest: were it the project's, every
/// user's bucket is refused and slows, so their sum still settles at the project's rate,
/// while one user's limit never slows another.
pub fn refusal_of(status: StatusCode, google: &GoogleError) -> Option<Refusal> {
    let reason = google.reason.as_deref().unwrap_or_default();
    let message = google.message.to_ascii_lowercase();
    let exhausted = google.status.as_deref() == Some("RESOURCE_EXHAUSTED");
    if (exhausted || status == StatusCode::TOO_MANY_REQUESTS) && message.contains("per hour") {
        return Some(Refusal::Hourly);
    }
    match (status.as_u16(), reason) {
        (403 | 429, "userRateLimitExceeded") => Some(Refusal::User),
        (403 | 429, "rateLimitExceeded") if message.contains("user") => Some(Refusal::User),
        (403 | 429, "rateLimitExceeded") => Some(Refusal::Project),
        (429, _) if message.contains("per user") => Some(Refusal::User),
        (429, _) if message.contains("consumer") || message.contains("project") => {
            Some(Refusal::Project)
        }
        (429, _) => Some(Refusal::User),
        _ => None,
    }
}

/// Which of a request's buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Project,
    /// The user acted as (`None`: the credential's own account).
    User(Option<Arc<str>>),
    /// A resource with a quota of its own (a GA4 property).
    Resource(Arc<str>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    api: Arc<str>,
    holder: Holder,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.holder {
            Holder::Project => write!(f, "{}'s project quota", self.api),
            Holder::User(Some(user)) => write!(f, "{}'s quota of {user}", self.api),
            Holder::User(None) => write!(f, "{}'s per-user quota", self.api),
            Holder::Resource(name) => write!(f, "{}'s hourly quota of {name}", self.api),
        }
    }
}

/// What one request draws on, as the run sets it for a query (or a fan-out's chain).
#[derive(Debug, Clone, Default)]
pub struct Tag {
    /// Units of one request.
    pub cost: u32,
    /// A resource with its own quota (GA4: `properties/1234`).
    pub resource: Option<Arc<str>>,
    /// The query's own budget (`max_units`).
    pub max_units: Option<u64>,
    /// Reads what a successful response says of its quota (GA4's `propertyQuota`).
    pub hints: Option<ReadHints>,
}

/// Reads what an answer's body says of the quota left.
pub type ReadHints = fn(&[u8]) -> Option<Hint>;

/// What a response said of the quota left: GA4's `propertyQuota`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hint {
    /// What this request consumed of the hourly tokens.
    pub consumed: u64,
    /// The fewest hourly tokens left (per property, per project per property).
    pub remaining: u64,
    /// The property's concurrent requests allowed (consumed + remaining).
    pub concurrent: Option<u64>,
}

/// The governor of one run: the buckets, the budget, what has been spent.
#[derive(Debug)]
pub struct Governor {
    settings: QuotaSettings,
    buckets: Mutex<HashMap<Key, Arc<Bucket>>>,
    spent: AtomicU64,
}

impl Governor {
    pub fn new(settings: QuotaSettings) -> Self {
        Governor {
            settings,
            buckets: Mutex::new(HashMap::new()),
            spent: AtomicU64::new(0),
        }
    }

    /// Units one call of `method_id` of `api` costs (`query`: the query's `quota_cost`).
    pub fn cost(&self, api: &str, method_id: &str, query: Option<u32>) -> u32 {
        self.settings.costs.cost(api, method_id, query)
    }

    /// Units spent so far by the run.
    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }

    fn bucket(&self, key: &Key) -> Arc<Bucket> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets
            .entry(key.clone())
            .or_insert_with(|| {
                let limits = &self.settings.limits;
                let configured = match &key.holder {
                    Holder::Project => limits.per_project(&key.api),
                    Holder::User(_) => limits.per_user(&key.api),
                    Holder::Resource(_) => None,
                };
                Arc::new(Bucket::new(configured.map(|rate| rate.per_second())))
            })
            .clone()
    }

    /// One request of `api` acting as `user`, tagged `tag`: drive it with [`Request::admit`].
    pub fn request<'g>(
        &'g self,
        api: &Arc<str>,
        user: Option<&str>,
        tag: &Tag,
        counters: &'g Counters,
    ) -> Request<'g> {
        let mut keys = vec![
            Key {
                api: api.clone(),
                holder: Holder::Project,
            },
            Key {
                api: api.clone(),
                holder: Holder::User(user.map(Arc::from)),
            },
        ];
        if let Some(resource) = &tag.resource {
            keys.push(Key {
                api: api.clone(),
                holder: Holder::Resource(resource.clone()),
            });
        }
        Request {
            governor: self,
            counters,
            buckets: keys.into_iter().map(|k| (self.bucket(&k), k)).collect(),
            cost: tag.cost.max(1),
            tag: tag.clone(),
            slots: Mutex::new(Vec::new()),
            first_refusal: Mutex::new(None),
            charged: std::sync::atomic::AtomicBool::new(false),
            outstanding: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn scaled(&self, duration: Duration) -> Duration {
        duration.mul_f64(self.settings.scale)
    }
}

/// One request's way through the governor, across its attempts.
pub struct Request<'g> {
    governor: &'g Governor,
    counters: &'g Counters,
    buckets: Vec<(Arc<Bucket>, Key)>,
    cost: u32,
    tag: Tag,
    /// The slots of its last attempt, one per bucket.
    slots: Mutex<Vec<Slot>>,
    /// The first refusal: from then on the request waits at most `--quota-wait`.
    first_refusal: Mutex<Option<Instant>>,
    charged: std::sync::atomic::AtomicBool,
    /// It took units and has no answer yet: counted in flight by its buckets.
    outstanding: std::sync::atomic::AtomicBool,
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

impl Request<'_> {
    /// Its last attempt is over (answered, or failed another way): not in flight any more.
    fn release(&self) {
        if self.outstanding.swap(false, Ordering::Relaxed) {
            for (bucket, _) in &self.buckets {
                bucket.release();
            }
        }
    }

    /// Waits until every bucket has the request's units, within the budgets, and charges them.
    pub async fn admit(&self) -> Result<(), QuotaError> {
        self.release();
        self.check_budgets()?;
        let start = Instant::now();
        // The user's bucket (and a resource's) first, the project's last: the project's line
        // is shared by every user, and a request joins it only once its own units are there.
        let mut slots = Vec::with_capacity(self.buckets.len());
        let mut waited = false;
        for (bucket, key) in self.buckets.iter().rev() {
            let mut take = std::pin::pin!(bucket.take(self.cost));
            let now = std::future::poll_fn(|cx| std::task::Poll::Ready(take.as_mut().poll(cx)));
            let slot = match now.await {
                std::task::Poll::Ready(slot) => slot,
                // It has to wait: the progress line says for which bucket.
                std::task::Poll::Pending => {
                    waited = true;
                    self.counters.waiting_on(Some(format!("waiting for {key}")));
                    take.await
                }
            };
            slots.push(slot);
        }
        slots.reverse();
        *lock(&self.slots) = slots;
        self.outstanding.store(true, Ordering::Relaxed);
        if waited {
            self.counters.waiting_on(None);
        }
        self.counters.quota_wait(start.elapsed());
        // Charged once per request, whatever its attempts: a retry after a 5xx or a 401 is
        // the same request (a rate refusal gave its units back).
        if !self.charged.swap(true, Ordering::Relaxed) {
            self.governor
                .spent
                .fetch_add(u64::from(self.cost), Ordering::Relaxed);
            self.counters.quota_units(i64::from(self.cost));
        }
        Ok(())
    }

    /// The run's budget (`--max-units`) and the query's (`max_units`): the next request
    /// must fit in both.
    fn check_budgets(&self) -> Result<(), QuotaError> {
        let budgets = [
            (
                self.governor.settings.max_units,
                self.governor.spent(),
                "--max-units",
            ),
            (
                self.tag.max_units,
                self.counters.snapshot_quota().units,
                "the query's max_units",
            ),
        ];
        for (limit, spent, origin) in budgets {
            if let Some(limit) = limit.filter(|limit| spent + u64::from(self.cost) > *limit) {
                return Err(QuotaError::Budget {
                    limit,
                    spent,
                    cost: self.cost,
                    origin,
                });
            }
        }
        Ok(())
    }

    /// The request passed: the buckets learn it, and a GA4 answer's `propertyQuota` may close
    /// the property's bucket before the next request is refused.
    pub fn passed(&self, body: &[u8]) {
        self.release();
        for ((bucket, _), slot) in self.buckets.iter().zip(lock(&self.slots).iter()) {
            bucket.passed(*slot, self.cost);
        }
        let Some(hint) = self.tag.hints.and_then(|read| read(body)) else {
            return;
        };
        if hint.remaining < hint.consumed.max(1) {
            if let Some((bucket, key)) = self
                .buckets
                .iter()
                .find(|(_, k)| matches!(k.holder, Holder::Resource(_)))
            {
                let probe = self.governor.scaled(PROBE_EVERY);
                if bucket.closed().is_none() {
                    self.say_waiting(key);
                }
                bucket.close(Instant::now() + probe);
            }
        }
    }

    fn say_waiting(&self, key: &Key) {
        let waited = lock(&self.first_refusal).map_or(Duration::ZERO, |at| at.elapsed());
        let left = self.governor.settings.wait.saturating_sub(waited);
        crate::say!(
            "{}: {}",
            key.api,
            match &key.holder {
                Holder::Resource(name) => format!(
                    "waiting up to {} min for the hourly quota tokens of {name}",
                    left.as_secs().div_ceil(60)
                ),
                _ => format!(
                    "waiting up to {} min for {key}",
                    left.as_secs().div_ceil(60)
                ),
            }
        );
    }

    /// The request was refused for rate (`refusal`; `retry_after` if Google named a time):
    /// its units are given back and its bucket slows or closes. `Err` once it has waited
    /// longer than `--quota-wait`.
    pub fn refused(
        &self,
        refusal: Refusal,
        retry_after: Option<Duration>,
    ) -> Result<(), QuotaError> {
        self.release();
        if self.charged.swap(false, Ordering::Relaxed) {
            self.governor
                .spent
                .fetch_sub(u64::from(self.cost), Ordering::Relaxed);
            self.counters.quota_units(-i64::from(self.cost));
        }
        self.counters.quota_rejection();
        let index = self.bucket_for(refusal);
        let (bucket, key) = &self.buckets[index];
        let slot = lock(&self.slots).get(index).copied().unwrap_or(Slot {
            at: Instant::now(),
            epoch: 0,
        });
        let waited = lock(&self.first_refusal)
            .get_or_insert_with(Instant::now)
            .elapsed();
        if waited > self.governor.settings.wait {
            return Err(QuotaError::WaitedTooLong {
                bucket: key.to_string(),
                waited,
            });
        }
        if refusal == Refusal::Hourly {
            if bucket.closed().is_none() {
                self.say_waiting(key);
            }
            let probe = retry_after.unwrap_or(self.governor.scaled(PROBE_EVERY));
            bucket.close(Instant::now() + probe);
            return Ok(());
        }
        if let Some(after) = retry_after {
            bucket.close(Instant::now() + after.mul_f64(self.governor.settings.scale));
        }
        let pause = self.governor.scaled(FIRST_PAUSE);
        if let Reaction::Slowed { from, to } = bucket.refused(slot, self.cost, pause) {
            match from {
                None => tracing::info!("{key}: refused for rate; pacing at {to:.1} units/s"),
                Some(from) => {
                    tracing::info!(
                        "{key}: refused for rate; pacing at {to:.1} units/s (was {from:.1})"
                    )
                }
            }
        }
        Ok(())
    }

    /// The bucket a refusal names: the user's, the project's, or for an hourly quota the
    /// resource's (the project's when the request has none).
    fn bucket_for(&self, refusal: Refusal) -> usize {
        let wanted = |holder: &Holder| match refusal {
            Refusal::Project => matches!(holder, Holder::Project),
            Refusal::User => matches!(holder, Holder::User(_)),
            Refusal::Hourly => matches!(holder, Holder::Resource(_)),
        };
        self.buckets
            .iter()
            .position(|(_, k)| wanted(&k.holder))
            .unwrap_or(0)
    }
}

/// A std mutex's guard, whatever a panicking holder left (the values stay consistent).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn google(status: Option<&str>, reason: Option<&str>, message: &str) -> GoogleError {
        GoogleError {
            status: status.map(str::to_owned),
            reason: reason.map(str::to_owned),
            message: message.to_owned(),
        }
    }

    #[test]
    fn refusals_name_their_limit() {
        let s429 = StatusCode::TOO_MANY_REQUESTS;
        let s403 = StatusCode::FORBIDDEN;
        assert_eq!(
            refusal_of(s403, &google(None, Some("userRateLimitExceeded"), "")),
            Some(Refusal::User)
        );
        assert_eq!(
            refusal_of(
                s403,
                &google(None, Some("rateLimitExceeded"), "Rate Limit Exceeded")
            ),
            Some(Refusal::Project)
        );
        assert_eq!(
            refusal_of(
                s429,
                &google(
                    Some("RESOURCE_EXHAUSTED"),
                    None,
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'drive.googleapis.com' for consumer 'project_number:1'"
                )
            ),
            Some(Refusal::Project)
        );
        assert_eq!(
            refusal_of(s429, &google(None, None, "Too many requests")),
            Some(Refusal::User)
        );
        assert_eq!(
            refusal_of(
                s429,
                &google(
                    Some("RESOURCE_EXHAUSTED"),
                    None,
                    "Exhausted property tokens per hour. Try again later."
                )
            ),
            Some(Refusal::Hourly)
        );
        assert_eq!(
            refusal_of(StatusCode::SERVICE_UNAVAILABLE, &google(None, None, "")),
            None
        );
        assert_eq!(refusal_of(s403, &google(None, Some("forbidden"), "")), None);
    }

    fn tag(cost: u32) -> Tag {
        Tag {
            cost,
            ..Tag::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_users_refusals_never_slow_another_user() {
        let governor = Governor::new(QuotaSettings::default());
        let counters = Counters::default();
        let gmail: Arc<str> = Arc::from("gmail");
        for _ in 0..10 {
            let request = governor.request(&gmail, Some("alice"), &tag(5), &counters);
            request.admit().await.unwrap();
            request.passed(b"{}");
        }
        // Past the buckets' slow start.
        tokio::time::advance(Duration::from_secs(2)).await;
        let refused = governor.request(&gmail, Some("alice"), &tag(5), &counters);
        refused.admit().await.unwrap();
        refused.refused(Refusal::User, None).unwrap();
        let start = Instant::now();
        let bob = governor.request(&gmail, Some("bob"), &tag(5), &counters);
        bob.admit().await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "bob is not paced by alice");
        let alice = governor.request(&gmail, Some("alice"), &tag(5), &counters);
        alice.admit().await.unwrap();
        assert!(
            start.elapsed() > Duration::ZERO,
            "alice waits for her bucket"
        );
        let quota = counters.snapshot_quota();
        assert_eq!(quota.rejections, 1);
        assert_eq!(
            quota.units,
            12 * 5,
            "the refused request's units are given back"
        );
        assert_eq!(governor.spent(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_stops_before_it_is_passed() {
        let governor = Governor::new(QuotaSettings {
            max_units: Some(12),
            ..QuotaSettings::default()
        });
        let counters = Counters::default();
        let api: Arc<str> = Arc::from("gmail");
        for _ in 0..2 {
            let request = governor.request(&api, None, &tag(5), &counters);
            request.admit().await.unwrap();
            request.passed(b"{}");
        }
        let third = governor.request(&api, None, &tag(5), &counters);
        let err = third.admit().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the budget of 12 quota units (--max-units) would be passed: 10 spent, the next request costs 5; the export is checkpointed — run again with --resume (and a new budget) to go on"
        );
        assert_eq!(governor.spent(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn an_hourly_refusal_waits_then_gives_up_at_the_limit() {
        let governor = Governor::new(QuotaSettings {
            wait: Duration::from_secs(12 * 60),
            ..QuotaSettings::default()
        });
        let counters = Counters::default();
        let api: Arc<str> = Arc::from("analyticsdata");
        let tag = Tag {
            cost: 1,
            resource: Some(Arc::from("properties/1234")),
            ..Tag::default()
        };
        let start = Instant::now();
        let request = governor.request(&api, None, &tag, &counters);
        let mut attempts = 0;
        let err = loop {
            request.admit().await.unwrap();
            attempts += 1;
            if let Err(err) = request.refused(Refusal::Hourly, None) {
                break err;
            }
        };
        assert_eq!(attempts, 4, "probes at 0, 5, 10, 15 min");
        assert_eq!(start.elapsed(), Duration::from_secs(15 * 60));
        assert!(
            err.to_string()
                .starts_with("analyticsdata's hourly quota of properties/1234 was still refusing after waiting 15m"),
            "{err}"
        );
        // Another property is not held.
        let other = Tag {
            resource: Some(Arc::from("properties/99")),
            ..tag.clone()
        };
        let before = Instant::now();
        governor
            .request(&api, None, &other, &counters)
            .admit()
            .await
            .unwrap();
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
