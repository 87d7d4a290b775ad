//! Google's quotas, as strict as Google enforces them, for the fake server (emulators enforce
//! none). What each test relies on:
//! - **Unit buckets** per (API, user acted as) and per (API, project): token buckets refilled
//!   continuously ("250 units per user per second, moving average, short bursts allowed"),
//!   holding at most `burst` units; a request takes its method's units or is refused whole
//!   (a refused request costs nothing), with **no `Retry-After`**: 429 `RESOURCE_EXHAUSTED`
//!   "… per user …", or as the older APIs, 403 `userRateLimitExceeded` / `rateLimitExceeded`.
//! - **Unit costs**: Gmail's published table (`messages.list` 5, `messages.get` 5, ...), one
//!   unit a request elsewhere.
//! - **A daily allowance** per project: past it, 403 `dailyLimitExceeded`.
//! - **GA4's hourly property tokens**: each `runReport` spends tokens of its property; the
//!   property's bucket is refilled whole a fixed interval after its first spend (a token
//!   bucket refilled at intervals, not at the top of the hour); refused with 429
//!   `RESOURCE_EXHAUSTED` "Exhausted property tokens per hour"; an answer asked with
//!   `returnPropertyQuota` carries `propertyQuota`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

/// A bucket's refill rate and size, in units.
#[derive(Debug, Clone, Copy)]
pub struct BucketRule {
    pub units_per_second: f64,
    pub burst: f64,
}

/// How a rate refusal is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// 429 `RESOURCE_EXHAUSTED`, as Google's newer front end answers.
    TooManyRequests,
    /// 403 `userRateLimitExceeded` / `rateLimitExceeded`, as the older APIs answer.
    Forbidden,
}

/// GA4's hourly tokens of each property.
#[derive(Debug, Clone, Copy)]
pub struct HourlyTokens {
    pub per_hour: u64,
    /// What one `runReport` spends.
    pub per_request: u64,
    /// The "hour": how long after its first spend a property's tokens come back whole.
    pub refill_after: Duration,
}

#[derive(Debug, Clone)]
pub struct QuotaRules {
    pub per_user: Option<BucketRule>,
    pub per_project: Option<BucketRule>,
    pub shape: Shape,
    /// Units a project may spend in all (its day).
    pub daily_units: Option<u64>,
    pub ga4_hourly: Option<HourlyTokens>,
}

impl Default for QuotaRules {
    fn default() -> Self {
        QuotaRules {
            per_user: None,
            per_project: None,
            shape: Shape::TooManyRequests,
            daily_units: None,
            ga4_hourly: None,
        }
    }
}

/// Google's units of a request (Gmail's published costs; one elsewhere).
pub fn cost(method: &str, path: &str) -> u64 {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["gmail", "v1", "users", _, "messages"]) => 5,
        ("GET", ["gmail", "v1", "users", _, "messages", _]) => 5,
        ("GET", ["gmail", "v1", "users", _, "messages", _, "attachments", _]) => 5,
        ("GET", ["gmail", "v1", "users", _, "threads"]) => 10,
        ("GET", ["gmail", "v1", "users", _, "threads", _]) => 10,
        ("GET", ["gmail", "v1", "users", _, "history"]) => 2,
        _ => 1,
    }
}

fn api_of(path: &str) -> String {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "v1beta" => "analyticsdata".to_owned(),
        other => other.to_owned(),
    }
}

#[derive(Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, rule: BucketRule, units: f64, now: Instant) -> bool {
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * rule.units_per_second).min(rule.burst);
        self.at = now;
        if self.level >= units {
            self.level -= units;
            true
        } else {
            false
        }
    }
}

/// One request the quota saw.
#[derive(Debug, Clone)]
pub struct Decision {
    pub at: Instant,
    pub user: String,
    pub admitted: bool,
}

/// The buckets, and every decision, for the tests to read.
#[derive(Debug, Default)]
pub struct QuotaState {
    users: HashMap<(String, String), Bucket>,
    projects: HashMap<String, Bucket>,
    spent: u64,
    /// Per property: tokens left and when they come back whole.
    properties: HashMap<String, (u64, Option<Instant>)>,
    pub decisions: Vec<Decision>,
}

impl QuotaState {
    /// Whether `user`'s request may go; `Err` with Google's refusal when not. `body` is the
    /// request's (GA4's `returnPropertyQuota`); the property's quota is added to the answer
    /// by [`QuotaState::annotate`].
    pub fn admit(
        &mut self,
        rules: &QuotaRules,
        method: &str,
        path: &str,
        user: &str,
    ) -> Result<(), (StatusCode, Value)> {
        let now = Instant::now();
        let units = cost(method, path);
        let api = api_of(path);
        let result = self.decide(rules, &api, path, user, units, now);
        self.decisions.push(Decision {
            at: now,
            user: user.to_owned(),
            admitted: result.is_ok(),
        });
        result
    }

    fn decide(
        &mut self,
        rules: &QuotaRules,
        api: &str,
        path: &str,
        user: &str,
        units: u64,
        now: Instant,
    ) -> Result<(), (StatusCode, Value)> {
        if let Some(daily) = rules.daily_units {
            if self.spent + units > daily {
                return Err(refusal(
                    403,
                    "dailyLimitExceeded",
                    &format!("Quota exceeded for quota metric 'Queries' and limit 'Queries per day' of service '{api}.googleapis.com' for consumer 'project_number:1234'."),
                ));
            }
        }
        if let (Some(hourly), true) = (rules.ga4_hourly, path.contains(":runReport")) {
            let property = property_of(path);
            let entry = self
                .properties
                .entry(property)
                .or_insert((hourly.per_hour, None));
            if entry.1.is_some_and(|at| now >= at) {
                *entry = (hourly.per_hour, None);
            }
            if entry.0 < hourly.per_request {
                return Err((
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                        "message": "Exhausted property tokens per hour for a property. This property will have more tokens soon; try again later."}}),
                ));
            }
        }
        let user_bucket = |state: &mut Self, rule: BucketRule| {
            state
                .users
                .entry((api.to_owned(), user.to_owned()))
                .or_insert(Bucket {
                    level: rule.burst,
                    at: now,
                })
                .take(rule, units as f64, now)
        };
        // Both buckets must hold the units; the user's is asked first (a refusal takes none).
        if let Some(rule) = rules.per_user {
            let peek = self.users.get(&(api.to_owned(), user.to_owned())).map(|b| {
                let level =
                    b.level + now.duration_since(b.at).as_secs_f64() * rule.units_per_second;
                level.min(rule.burst)
            });
            if peek.unwrap_or(rule.burst) < units as f64 {
                return Err(match rules.shape {
                    Shape::TooManyRequests => (
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                            "message": format!("Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service '{api}.googleapis.com' for consumer 'project_number:1234'.")}}),
                    ),
                    Shape::Forbidden => {
                        refusal(403, "userRateLimitExceeded", "User-rate limit exceeded")
                    }
                });
            }
        }
        if let Some(rule) = rules.per_project {
            let bucket = self.projects.entry(api.to_owned()).or_insert(Bucket {
                level: rule.burst,
                at: now,
            });
            if !bucket.take(rule, units as f64, now) {
                return Err(match rules.shape {
                    Shape::TooManyRequests => (
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                            "message": format!("Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service '{api}.googleapis.com' for consumer 'project_number:1234'.")}}),
                    ),
                    Shape::Forbidden => refusal(403, "rateLimitExceeded", "Rate Limit Exceeded"),
                });
            }
        }
        if let Some(rule) = rules.per_user {
            assert!(user_bucket(self, rule), "peeked");
        }
        if let (Some(hourly), true) = (rules.ga4_hourly, path.contains(":runReport")) {
            let entry = self
                .properties
                .get_mut(&property_of(path))
                .expect("entered");
            entry.0 -= hourly.per_request;
            entry.1.get_or_insert(now + hourly.refill_after);
        }
        self.spent += units;
        Ok(())
    }

    /// GA4: the property's tokens in an answer asked with `returnPropertyQuota`.
    pub fn annotate(&self, rules: &QuotaRules, path: &str, request: &str, answer: &mut Value) {
        let Some(hourly) = rules.ga4_hourly else {
            return;
        };
        let asked = serde_json::from_str::<Value>(request)
            .is_ok_and(|b| b["returnPropertyQuota"] == json!(true));
        if !path.contains(":runReport") || !asked || !answer.is_object() {
            return;
        }
        let left = self
            .properties
            .get(&property_of(path))
            .map_or(hourly.per_hour, |p| p.0);
        answer["propertyQuota"] = json!({
            "tokensPerDay": {"consumed": hourly.per_request, "remaining": 200000},
            "tokensPerHour": {"consumed": hourly.per_request, "remaining": left},
            "tokensPerProjectPerHour": {"consumed": hourly.per_request, "remaining": left},
            "concurrentRequests": {"consumed": 0, "remaining": 10},
        });
    }

    /// Units spent in all.
    pub fn spent(&self) -> u64 {
        self.spent
    }
}

fn property_of(path: &str) -> String {
    let at = path.find("properties/").unwrap_or(0);
    path[at..].split(':').next().unwrap_or("").to_owned()
}

fn refusal(code: u16, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"error": {"code": code, "message": message,
            "errors": [{"domain": "usageLimits", "reason": reason, "message": message}]}}),
    )
}
