//! The retry policy: which failures are worth another try, and how long to wait first
//! (truncated exponential backoff with jitter, or what `Retry-After` says).

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Request, StatusCode};

use super::{GoogleError, HttpError, HyperClient, Response};

/// Reasons Google gives for a per-minute rate limit: retry after a pause.
const RATE_LIMIT_REASONS: &[&str] = &["rateLimitExceeded", "userRateLimitExceeded"];
/// Reasons that mean the quota is used up: retrying will not help.
const QUOTA_REASONS: &[&str] = &["dailyLimitExceeded", "quotaExceeded"];

/// What to do about a failed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transient: try again after a pause.
    Retry,
    /// The API's quota is exhausted.
    QuotaWall,
    /// Permanent: fail the query with Google's message.
    Fatal,
}

/// Classifies an HTTP error response.
pub fn classify(status: StatusCode, error: &GoogleError) -> Verdict {
    let reason = error.reason.as_deref().unwrap_or_default();
    if QUOTA_REASONS.contains(&reason) || is_daily_exhaustion(error) {
        return Verdict::QuotaWall;
    }
    match status.as_u16() {
        429 | 500 | 502 | 503 | 504 => Verdict::Retry,
        403 if RATE_LIMIT_REASONS.contains(&reason) => Verdict::Retry,
        _ => Verdict::Fatal,
    }
}

/// The newer APIs' form of a daily quota wall: no legacy reason, status `RESOURCE_EXHAUSTED`
/// and a message naming a per-day limit (GA4: "Exhausted property tokens per day"; Cloud
/// quotas: "... limit 'Queries per day'"). Per-minute and per-hour exhaustion stays a retry.
fn is_daily_exhaustion(error: &GoogleError) -> bool {
    error.status.as_deref() == Some("RESOURCE_EXHAUSTED")
        && error.message.to_ascii_lowercase().contains("per day")
}

/// How many times and how long to wait.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// The first delay; each retry doubles it.
    pub base: Duration,
    /// No delay is longer (truncation), `Retry-After` included.
    pub max_delay: Duration,
    /// Multiplies every delay: 1.0 normally; tests shrink it (`GSCRAPE_BACKOFF_SCALE`).
    pub scale: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(64),
            scale: 1.0,
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (0-based): `Retry-After` when the server gave
    /// one, else `base · 2^attempt` with jitter in [½, 1], never above `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let delay = match retry_after {
            Some(after) => after,
            None => {
                let exp = self.base.saturating_mul(1u32 << attempt.min(16));
                exp.mul_f64(0.5 + fastrand::f64() / 2.0)
            }
        };
        delay.min(self.max_delay).mul_f64(self.scale)
    }
}

/// What one try came to, for [`retrying`].
pub enum Try<T> {
    /// The answer: a success, or a failure another try would meet again.
    Done(T),
    /// Try again at once, not counted as a retry (the token was refreshed).
    Again,
    /// A failure another try may fix: `last` is the answer should the tries run out, `why`
    /// says what failed (logged).
    Transient {
        last: T,
        retry_after: Option<Duration>,
        why: String,
    },
}

/// The one retry loop of gscrape: runs `attempt` until it is done, retrying a transient
/// failure after [`RetryPolicy::delay`] at most `policy.max_retries` times (`on_retry` is told
/// of each). The answer, and how many retries came before it.
pub async fn retrying<T, Fut>(
    policy: &RetryPolicy,
    mut attempt: impl FnMut() -> Fut,
    mut on_retry: impl FnMut(),
) -> (T, u32)
where
    Fut: std::future::Future<Output = Try<T>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Try::Done(answer) => return (answer, retries),
            Try::Again => continue,
            Try::Transient { last, .. } if retries >= policy.max_retries => return (last, retries),
            Try::Transient {
                retry_after, why, ..
            } => {
                let delay = policy.delay(retries, retry_after);
                tracing::info!("{why}; retrying in {} ms", delay.as_millis());
                retries += 1;
                on_retry();
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// What [`send_retrying`] ended with: the last answer (of any status) or the last failure to
/// get one, and how many retries came before it.
pub struct Retried {
    pub result: Result<Response, HttpError>,
    pub retries: u32,
}

/// Sends `request`, and sends it again after a pause (`Retry-After`, else backoff) while the
/// failure is transient — no connection, a timeout, 429 or 5xx — at most `policy.max_retries`
/// times. For the requests around the API calls (tokens, Discovery), so that a passing
/// outage there does not end a run that an API call would have survived.
pub async fn send_retrying(
    client: &HyperClient,
    request: Request<String>,
    timeout: Duration,
    policy: &RetryPolicy,
) -> Retried {
    let request = &request;
    let attempt = move || async move {
        let result = super::send(client, copy_request(request), timeout).await;
        let (retry_after, why) = match &result {
            Err(err) if err.is_transient() => (None, err.to_string()),
            Err(_) => return Try::Done(result),
            Ok(response) if response.status.is_success() => return Try::Done(result),
            Ok(response) => {
                let google = GoogleError::from_body(&response.body);
                if classify(response.status, &google) != Verdict::Retry {
                    return Try::Done(result);
                }
                let why = format!(
                    "{} answered HTTP {}",
                    super::redact_url(request.uri()),
                    response.status.as_u16()
                );
                (retry_after(&response.headers), why)
            }
        };
        Try::Transient {
            last: result,
            retry_after,
            why,
        }
    };
    let (result, retries) = retrying(policy, attempt, || {}).await;
    Retried { result, retries }
}

/// Another request like `request` (`http::Request` is not `Clone`).
fn copy_request(request: &Request<String>) -> Request<String> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// `(gave up after N retries)` for messages, or nothing when there was no retry.
pub fn gave_up_note(retries: u32) -> String {
    match retries {
        0 => String::new(),
        1 => " (gave up after 1 retry)".to_owned(),
        n => format!(" (gave up after {n} retries)"),
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(reason: &str) -> GoogleError {
        GoogleError {
            reason: Some(reason.to_owned()),
            ..GoogleError::default()
        }
    }

    #[test]
    fn classification() {
        let none = GoogleError::default();
        for code in [429, 500, 502, 503, 504] {
            assert_eq!(
                classify(StatusCode::from_u16(code).unwrap(), &none),
                Verdict::Retry
            );
        }
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &error("rateLimitExceeded")),
            Verdict::Retry
        );
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &error("userRateLimitExceeded")),
            Verdict::Retry
        );
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &error("dailyLimitExceeded")),
            Verdict::QuotaWall
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &error("quotaExceeded")),
            Verdict::QuotaWall
        );
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &error("insufficientPermissions")),
            Verdict::Fatal
        );
        let exhausted = |message: &str| GoogleError {
            status: Some("RESOURCE_EXHAUSTED".to_owned()),
            reason: None,
            message: message.to_owned(),
        };
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                &exhausted("Exhausted property tokens per day. Try again tomorrow.")
            ),
            Verdict::QuotaWall
        );
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                &exhausted("Exhausted property tokens per hour.")
            ),
            Verdict::Retry
        );
        assert_eq!(classify(StatusCode::NOT_FOUND, &none), Verdict::Fatal);
        assert_eq!(classify(StatusCode::BAD_REQUEST, &none), Verdict::Fatal);
    }

    #[test]
    fn delays_grow_with_jitter_and_are_truncated() {
        let policy = RetryPolicy::default();
        for attempt in 0..4 {
            let d = policy.delay(attempt, None);
            let full = Duration::from_secs(1 << attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert_eq!(
            policy.delay(10, None).min(Duration::from_secs(64)),
            policy.delay(10, None)
        );
        assert!(policy.delay(10, None) <= Duration::from_secs(64));
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(700))),
            Duration::from_secs(64)
        );
        let fast = RetryPolicy {
            scale: 0.001,
            ..RetryPolicy::default()
        };
        assert_eq!(
            fast.delay(0, Some(Duration::from_secs(7))),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(http::header::RETRY_AFTER, later.parse().unwrap());
        let after = retry_after(&headers).unwrap();
        assert!(
            after > Duration::from_secs(110) && after <= Duration::from_secs(120),
            "{after:?}"
        );
    }
}
