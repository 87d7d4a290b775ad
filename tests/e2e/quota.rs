//! Quota as a budget: the governor paces a run at Google's quota (per user, per project, in
//! units), waits out what Google refuses for rate, waits for GA4's hourly tokens, and stops at
//! `--max-units`. The fake enforces quotas as Google does (`support/fake_quota.rs`); each test
//! says which of its rules it relies on.

use std::time::Duration;

use serde_json::Value;

use crate::auth::{write_service_account_key, AUDIT_USERS};
use crate::support::fake_quota::{BucketRule, HourlyTokens, QuotaRules, Shape};
use crate::support::{Config, Workdir};

const MESSAGE_IDS: &str =
    "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
    output = false\ncolumns = [\"id\"]\n[params]\nuserId = \"me\"\nmaxResults = 500\n";
const MESSAGES: &str = "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
    for_each = \"ids\"\ncolumns = [\"id\", \"threadId\"]\n\
    [params]\nuserId = \"me\"\nid = \"{{ ids.id }}\"\nformat = \"minimal\"\n";

fn summary(wd: &Workdir) -> Value {
    serde_json::from_str(&wd.read("summary.json")).unwrap()
}

/// (admitted, refused) requests the fake's quota decided.
fn decided(wd: &Workdir) -> (usize, usize) {
    wd.google.quota(|q| {
        let admitted = q.decisions.iter().filter(|d| d.admitted).count();
        (admitted, q.decisions.len() - admitted)
    })
}

fn gmail_fan_out(messages: usize, rules: QuotaRules) -> Workdir {
    let wd = Workdir::with_config(Config {
        gmail_messages: messages,
        quota: rules,
        ..Config::default()
    });
    wd.write("queries/ids.toml", MESSAGE_IDS);
    wd.write("queries/messages.toml", MESSAGES);
    wd
}

/// Relies on: a per-user unit bucket (continuous refill, a burst of a quarter second),
/// Gmail's costs (5 units a list page and a get), refusals without `Retry-After`.
#[test]
fn a_gmail_fan_out_paces_at_the_users_quota_with_few_refusals() {
    for (concurrency, shape) in [("64", Shape::TooManyRequests), ("8", Shape::Forbidden)] {
        let rules = QuotaRules {
            per_user: Some(BucketRule {
                units_per_second: 1000.0,
                burst: 250.0,
            }),
            shape,
            ..QuotaRules::default()
        };
        let wd = gmail_fan_out(400, rules);
        let run = wd.run(&[
            "run",
            "--concurrency",
            concurrency,
            "--summary-json",
            "summary.json",
        ]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(wd.read("output/messages.csv").lines().count(), 401);
        let (admitted, refused) = decided(&wd);
        assert_eq!(
            admitted, 401,
            "one list page and 400 gets, each admitted once"
        );
        // (Quiet, 0.1–0.2 % are refused: bench/run.sh --quota. A loaded test machine makes
        // the measured rates jitter; the bound is what no pacing at all would miss by far.)
        assert!(
            refused * 10 <= admitted,
            "--concurrency {concurrency}: {refused} refused for {admitted} admitted (at most 10 %)"
        );
        let summary = summary(&wd);
        let queries = summary["queries"].as_array().unwrap();
        let units: u64 = queries
            .iter()
            .map(|q| q["quota_units"].as_u64().unwrap())
            .sum();
        let rejections: u64 = queries
            .iter()
            .map(|q| q["quota_rejections"].as_u64().unwrap())
            .sum();
        assert_eq!(
            units,
            wd.google.quota(|q| q.spent()),
            "units as Google counts them"
        );
        assert_eq!(units, 401 * 5);
        assert_eq!(rejections as usize, refused, "every refusal counted");
        assert!(
            queries.iter().all(|q| q["retries"] == 0),
            "a rate refusal is waited out, not retried: {queries:?}"
        );
    }
}

/// Relies on: per-user buckets keyed by the delegated subject of the token, so that three
/// users' requests draw on three buckets.
#[test]
fn three_delegated_users_page_their_mailboxes_side_by_side() {
    let wd = Workdir::with_config(Config {
        directory_users: 3,
        gmail_messages: 120,
        quota: QuotaRules {
            per_user: Some(BucketRule {
                units_per_second: 1000.0,
                burst: 100.0,
            }),
            ..QuotaRules::default()
        },
        ..Config::default()
    });
    write_service_account_key(&wd);
    wd.write("queries/users.toml", AUDIT_USERS);
    wd.write(
        "queries/ids.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         for_each = \"users\"\nsubject = \"{{ users.primaryEmail }}\"\noutput = false\n\
         columns = [\"id\"]\n[params]\nuserId = \"me\"\nmaxResults = 500\n",
    );
    // The grandchild acts as the user two levels up.
    wd.write(
        "queries/messages.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
         for_each = \"ids\"\nsubject = \"{{ users.primaryEmail }}\"\nconcurrency = 3\n\
         columns = [{ name = \"user\", value = \"{{ users.primaryEmail }}\" }, \"id\"]\n\
         [params]\nuserId = \"me\"\nid = \"{{ ids.id }}\"\nformat = \"minimal\"\n",
    );
    let validate = wd.run_without_token(&["validate", "--credentials", "sa.json"]);
    assert_eq!(validate.code, 0, "{validate:?}");
    assert!(
        validate
            .stdout
            .contains("; 5 quota units a request, at least 5 quota units a ids record"),
        "{}",
        validate.stdout
    );
    let run = wd.run_without_token(&["run", "--credentials", "sa.json", "--concurrency", "32"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/messages.csv").lines().count(), 1 + 3 * 120);
    let decisions = wd.google.quota(|q| q.decisions.clone());
    let users: Vec<String> = (0..3).map(|i| format!("user{i}@example.com")).collect();
    let spans: Vec<_> = users
        .iter()
        .map(|user| {
            let times: Vec<_> = decisions
                .iter()
                .filter(|d| d.admitted && &d.user == user)
                .map(|d| d.at)
                .collect();
            assert_eq!(times.len(), 121, "{user}: one list and 120 gets, as {user}");
            (*times.iter().min().unwrap(), *times.iter().max().unwrap())
        })
        .collect();
    let last_start = spans.iter().map(|s| s.0).max().unwrap();
    let first_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(
        last_start < first_end,
        "the three users' requests ran side by side, not one user after another"
    );
    let refused = decisions.iter().filter(|d| !d.admitted).count();
    assert!(refused * 20 <= 363, "{refused} refused");
}

/// Relies on: GA4's hourly property tokens (5 reports' worth, back whole a fixed time after the
/// first spend), `propertyQuota` in answers asked with `returnPropertyQuota`, and the 429
/// `RESOURCE_EXHAUSTED` "per hour" refusal.
#[test]
fn a_ga4_backfill_waits_for_the_hourly_tokens_and_writes_every_window() {
    let wd = Workdir::with_config(Config {
        quota: QuotaRules {
            ga4_hourly: Some(HourlyTokens {
                per_hour: 50,
                per_request: 10,
                refill_after: Duration::from_millis(400),
            }),
            ..QuotaRules::default()
        },
        ..Config::default()
    });
    wd.write(
        "queries/ga4.toml",
        "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
         output = \"ga4_{{ window.start }}.csv\"\n[params]\nproperty = \"properties/1234\"\n\
         [body]\ndateRanges = [{ startDate = \"{{ window.start }}\", endDate = \"{{ window.end }}\" }]\n\
         dimensions = [{ name = \"date\" }]\nmetrics = [{ name = \"activeUsers\" }]\n",
    );
    let run = wd.run(&[
        "run",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-12",
        "--step",
        "day",
        "--summary-json",
        "summary.json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    for day in 1..=12 {
        assert!(
            wd.exists(&format!("output/ga4_2024-03-{day:02}.csv")),
            "window {day}"
        );
    }
    let (admitted, refused) = decided(&wd);
    assert_eq!(admitted, 12);
    assert!(
        refused <= 2,
        "{refused} refused: the answers' propertyQuota paces the run"
    );
    assert!(
        run.stderr.contains(
            "analyticsdata: waiting up to 75 min for the hourly quota tokens of properties/1234"
        ),
        "{}",
        run.stderr
    );
    let sent: Value =
        serde_json::from_str(&wd.google.seen_under("/v1beta/properties/1234:runReport")[0].body)
            .unwrap();
    assert_eq!(
        sent["returnPropertyQuota"], true,
        "asked unless the query says"
    );
}

/// Relies on: a project's daily allowance (403 `dailyLimitExceeded`): a quota wall, checkpointed.
#[test]
fn a_daily_exhaustion_is_a_quota_wall_and_resumes() {
    let wd = gmail_fan_out(
        30,
        QuotaRules {
            daily_units: Some(5 * 12),
            ..QuotaRules::default()
        },
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("a quota wall"), "{}", run.stderr);
    assert!(!wd.exists("output/messages.csv"));
    wd.google.configure(|c| c.quota.daily_units = None);
    let resumed = wd.run(&["run", "--resume"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    let csv = wd.read("output/messages.csv");
    assert_eq!(csv.lines().count(), 31, "every message once:\n{csv}");
}

/// Relies on: Drive's cost of one unit a page (no quota enforced: the budget is gscrape's own).
#[test]
fn max_units_stops_at_the_budget_and_resume_completes_every_row_once() {
    let wd = Workdir::with_config(Config {
        drive_files: 100,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\ncolumns = [\"id\"]\n\
         [params]\npageSize = 10\n",
    );
    let full = wd.run(&["run"]);
    assert_eq!(full.code, 0, "{full:?}");
    let expected = wd.read("output/files.csv");
    std::fs::remove_file(wd.path().join("output/files.csv")).unwrap();
    let before = wd.google.seen_under("/drive/").len();

    let run = wd.run(&["run", "--max-units", "4", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "the budget of 4 quota units (--max-units) would be passed: 4 spent, the next request costs 1"
        ),
        "{}",
        run.stderr
    );
    assert!(!wd.exists("output/files.csv"), "no partial output");
    let summary = summary(&wd);
    assert_eq!(summary["queries"][0]["failure"], "quota_wall");
    assert_eq!(summary["queries"][0]["quota_units"], 4);

    let resumed = wd.run(&["run", "--resume", "--max-units", "100"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(wd.read("output/files.csv"), expected);
    let pages = wd.google.seen_under("/drive/").len() - before;
    assert_eq!(pages, 10, "4 pages, then the 6 left: none asked twice");
}

/// A configured limit is used as given: the run is paced at it, and Google never refuses.
/// Relies on: a per-project bucket just above the configured rate, refusing without
/// `Retry-After`.
#[test]
fn a_configured_quota_is_paced_at_without_refusals() {
    let wd = gmail_fan_out(
        60,
        QuotaRules {
            per_project: Some(BucketRule {
                units_per_second: 1100.0,
                burst: 100.0,
            }),
            ..QuotaRules::default()
        },
    );
    wd.write(
        "gscrape.toml",
        "[quota]\nper-project = { gmail = \"60000/min\" }\n",
    );
    let run = wd.run(&["run", "--concurrency", "16"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(decided(&wd), (61, 0));

    wd.write("gscrape.toml", "[quota]\nper-projet = \"1/s\"\n");
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "gscrape.toml: [quota] unknown key `per-projet`; did you mean `per-project`?"
        ),
        "{}",
        run.stderr
    );
}
