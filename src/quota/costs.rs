//! What a request costs in quota units, and quota rates as written (`6000/min`).
//!
//! Google publishes per-method costs for a few APIs (Gmail, YouTube Data); everything else is
//! one unit a request. Every figure can be overridden: per query (`quota_cost`), per method or
//! API in `[quota.costs]` of `gscrape.toml`.

use std::collections::HashMap;
use std::time::Duration;

/// Gmail's published costs (developers.google.com/gmail/api/reference/quota), by method id.
const GMAIL: &[(&str, u32)] = &[
    ("gmail.users.getProfile", 1),
    ("gmail.users.labels.list", 1),
    ("gmail.users.labels.get", 1),
    ("gmail.users.history.list", 2),
    ("gmail.users.messages.list", 5),
    ("gmail.users.messages.get", 5),
    ("gmail.users.messages.attachments.get", 5),
    ("gmail.users.drafts.list", 5),
    ("gmail.users.drafts.get", 5),
    ("gmail.users.threads.list", 10),
    ("gmail.users.threads.get", 10),
    ("gmail.users.settings.filters.list", 1),
    ("gmail.users.settings.forwardingAddresses.list", 1),
    ("gmail.users.settings.sendAs.list", 1),
    ("gmail.users.settings.delegates.list", 1),
];

/// YouTube Data API's published costs: a list is 1, a search 100.
const YOUTUBE: &[(&str, u32)] = &[("youtube.search.list", 100)];

/// Google's published cost of one call of `method_id`, else one unit.
pub fn published(method_id: &str) -> u32 {
    GMAIL
        .iter()
        .chain(YOUTUBE)
        .find(|(id, _)| *id == method_id)
        .map_or(1, |(_, cost)| *cost)
}

/// The cost overrides of `[quota.costs]`: a method id (`gmail.users.messages.get`) or an API
/// name (`gmail`), the method's entry winning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostTable(pub HashMap<String, u32>);

impl CostTable {
    /// The cost of one call of `method_id` of `api`: the query's own `quota_cost`, else this
    /// table's method entry, its API's, else Google's published figure.
    pub fn cost(&self, api: &str, method_id: &str, query: Option<u32>) -> u32 {
        query
            .or_else(|| self.0.get(method_id).copied())
            .or_else(|| self.0.get(api).copied())
            .unwrap_or_else(|| published(method_id))
    }
}

/// A rate as written in a flag or config file: `UNITS/PERIOD` (`6000/min`, `250/s`,
/// `1200000/minute`, `40000/hour`, `10000/day`, `50/10s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub units: f64,
    pub period: Duration,
}

impl Rate {
    pub fn per_second(&self) -> f64 {
        self.units / self.period.as_secs_f64()
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.units,
            humantime::format_duration(self.period)
        )
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid quota rate {text:?}: write UNITS/PERIOD, as `6000/min`, `250/s` or \
                 `40000/hour`"
            )
        };
        let (units, period) = text.trim().split_once('/').ok_or_else(bad)?;
        let units: f64 = units.trim().replace('_', "").parse().map_err(|_| bad())?;
        if !(units > 0.0 && units.is_finite()) {
            return Err(bad());
        }
        let period = period.trim();
        let period = match period {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            other => humantime::parse_duration(other).map_err(|_| bad())?,
        };
        if period.is_zero() {
            return Err(bad());
        }
        Ok(Rate { units, period })
    }
}

/// A limit for every API (`6000/min`) or for one (`gmail=6000/min`), as `--quota-per-user`
/// and `--quota-per-project` take it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRate {
    pub api: Option<String>,
    pub rate: Rate,
}

impl std::str::FromStr for ApiRate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((api, rate)) if !api.trim().is_empty() => Ok(ApiRate {
                api: Some(api.trim().to_owned()),
                rate: rate.parse()?,
            }),
            _ => Ok(ApiRate {
                api: None,
                rate: text.parse()?,
            }),
        }
    }
}

/// The configured limits of a run, each either for one API or for all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub per_user: Vec<ApiRate>,
    pub per_project: Vec<ApiRate>,
}

impl Limits {
    /// The configured per-user rate of `api` (its own entry over an entry for every API).
    pub fn per_user(&self, api: &str) -> Option<Rate> {
        pick(&self.per_user, api)
    }

    pub fn per_project(&self, api: &str) -> Option<Rate> {
        pick(&self.per_project, api)
    }
}

fn pick(rates: &[ApiRate], api: &str) -> Option<Rate> {
    rates
        .iter()
        .find(|r| r.api.as_deref() == Some(api))
        .or_else(|| rates.iter().find(|r| r.api.is_none()))
        .map(|r| r.rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_published_tables_and_overrides() {
        assert_eq!(published("gmail.users.messages.get"), 5);
        assert_eq!(published("gmail.users.threads.list"), 10);
        assert_eq!(published("youtube.search.list"), 100);
        assert_eq!(published("drive.files.list"), 1);
        let table = CostTable(HashMap::from([
            ("gmail".to_owned(), 3),
            ("gmail.users.threads.get".to_owned(), 20),
        ]));
        assert_eq!(table.cost("gmail", "gmail.users.messages.get", None), 3);
        assert_eq!(table.cost("gmail", "gmail.users.threads.get", None), 20);
        assert_eq!(table.cost("gmail", "gmail.users.threads.get", Some(7)), 7);
        assert_eq!(table.cost("drive", "drive.files.list", None), 1);
    }

    #[test]
    fn rates_as_written() {
        let rate: Rate = "6000/min".parse().unwrap();
        assert_eq!(rate.per_second(), 100.0);
        assert_eq!("250/s".parse::<Rate>().unwrap().per_second(), 250.0);
        assert_eq!("1_200_000/minute".parse::<Rate>().unwrap().units, 1.2e6);
        assert_eq!("50/10s".parse::<Rate>().unwrap().per_second(), 5.0);
        assert_eq!(
            "40000/hour".parse::<Rate>().unwrap().period,
            Duration::from_secs(3600)
        );
        for bad in ["6000", "0/min", "x/min", "10/fortnight", "-1/s", "5/0s"] {
            let err = bad.parse::<Rate>().unwrap_err();
            assert!(err.contains("UNITS/PERIOD"), "{bad}: {err}");
        }
        let gmail: ApiRate = "gmail=6000/min".parse().unwrap();
        assert_eq!(gmail.api.as_deref(), Some("gmail"));
        let limits = Limits {
            per_user: vec![gmail, "100/s".parse().unwrap()],
            per_project: Vec::new(),
        };
        assert_eq!(limits.per_user("gmail").unwrap().per_second(), 100.0);
        assert_eq!(limits.per_user("drive").unwrap().units, 100.0);
        assert_eq!(limits.per_project("drive"), None);
    }
}
