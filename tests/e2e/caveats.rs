//! Report caveats: what GA4, Search Console, BigQuery and YouTube Analytics responses say of
//! their own numbers is a warning line naming the query (and a backfill's window), a field of
//! the summary, and with `strict = true` a failure that writes nothing.

use serde_json::{json, Value};

use crate::support::fake_reports::ReportConfig;
use crate::support::{Config, Workdir};

const GA4: &str = r#"api = "analyticsdata"
version = "v1beta"
method = "analyticsdata.properties.runReport"
[params]
property = "properties/123"
[body]
dateRanges = [{ startDate = "{{ days_ago(7) }}", endDate = "{{ yesterday }}" }]
dimensions = [{ name = "date" }, { name = "country" }]
metrics = [{ name = "activeUsers" }]
limit = "3"
"#;

fn sampled_ga4() -> Workdir {
    Workdir::with_config(Config {
        reports: ReportConfig {
            ga4_metadata: Some(json!({
                "samplingMetadatas": [{"samplesReadCount": "2500", "samplingSpaceSize": "10000"}],
                "subjectToThresholding": true,
                "dataLossFromOtherRow": false,
                "currencyCode": "EUR"
            })),
            ..ReportConfig::default()
        },
        ..Config::default()
    })
}

fn summary(wd: &Workdir) -> Value {
    serde_json::from_str(&wd.read("summary.json")).unwrap()
}

const SAMPLED: &str = "sampled: 2500 of 10000 events read (25.00 %) (samplingMetadatas)";
const THRESHOLDED: &str =
    "thresholded: rows with few users may be withheld (subjectToThresholding)";

#[test]
fn a_sampled_report_is_written_with_a_warning_line_per_caveat_and_the_summary_lists_them() {
    let wd = sampled_ga4();
    wd.write("queries/traffic.toml", GA4);
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Once each, though each of the 3 pages said it.
    assert_eq!(
        wd.google
            .seen_under("/v1beta/properties/123:runReport")
            .len(),
        3
    );
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings,
        [
            format!("warning: traffic: {SAMPLED}"),
            format!("warning: traffic: {THRESHOLDED}"),
        ]
    );
    assert_eq!(
        wd.read("output/traffic.csv").lines().count(),
        8,
        "the rows as sent"
    );
    let query = &summary(&wd)["queries"][0];
    assert_eq!(
        query["caveats"],
        json!([
            {"kind": "sampled", "detail": "2500 of 10000 events read (25.00 %) (samplingMetadatas)"},
            {"kind": "thresholded", "detail": "rows with few users may be withheld (subjectToThresholding)"}
        ])
    );
    assert_eq!(query["caveats_unlisted"], 0);
    // Warnings are about the numbers written: --quiet still shows them.
    let quiet = wd.run(&["run", "--quiet"]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert_eq!(
        quiet.stderr,
        format!("warning: traffic: {SAMPLED}\nwarning: traffic: {THRESHOLDED}\n")
    );
}

#[test]
fn strict_refuses_a_sampled_report_at_its_first_page_and_keeps_the_previous_output() {
    let wd = sampled_ga4();
    wd.write("queries/traffic.toml", GA4);
    assert_eq!(wd.run(&["run"]).code, 0);
    let before = wd.read("output/traffic.csv");
    let requests = wd
        .google
        .seen_under("/v1beta/properties/123:runReport")
        .len();

    wd.write(
        "queries/traffic.toml",
        &GA4.replace("[params]", "strict = true\n[params]"),
    );
    let validate = wd.run(&["validate"]);
    assert_eq!(validate.code, 0, "{validate:?}");
    assert!(
        validate.stdout.contains("; strict: fails, writing nothing, if the report says its numbers are sampled, thresholded, truncated or not final"),
        "{validate:?}"
    );
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let url = "/v1beta/properties/123:runReport";
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: traffic: "))
        .unwrap_or_else(|| panic!("{run:?}"));
    assert!(
        error.starts_with(&format!(
            "error: traffic: strict = true, and the report says: {SAMPLED}; {THRESHOLDED} ["
        )) && error.contains(url)
            && error.ends_with("(output/traffic.csv left unchanged)"),
        "{error}"
    );
    assert!(
        !run.stderr.contains("warning:"),
        "the error says them: {run:?}"
    );
    assert_eq!(
        wd.read("output/traffic.csv"),
        before,
        "the previous output, exactly"
    );
    assert!(
        !run.stderr.contains("--resume"),
        "nothing to resume: {run:?}"
    );
    // The first page told; the fetcher, one page ahead at most, asked no further than the next.
    let asked = wd.google.seen_under(url).len() - requests;
    assert!((1..=2).contains(&asked), "{asked} requests");
    let query = &summary(&wd)["queries"][0];
    assert_eq!(query["status"], "failed");
    assert_eq!(query["failure"], "caveat");
    assert_eq!(query["written"], false);
    assert_eq!(query["caveats"][0]["kind"], "sampled");
}

#[test]
fn a_backfill_warns_per_window() {
    let wd = sampled_ga4();
    wd.write(
        "queries/traffic.toml",
        &GA4.replace(
            r#"{ startDate = "{{ days_ago(7) }}", endDate = "{{ yesterday }}" }"#,
            r#"{ startDate = "{{ window.start }}", endDate = "{{ window.end }}" }"#,
        )
        .replace(
            "[params]",
            "output = \"traffic_{{ window.start }}.csv\"\n[params]",
        ),
    );
    let run = wd.run(&["run", "--from", "2024-03-01", "--to", "2024-03-02"]);
    assert_eq!(run.code, 0, "{run:?}");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings,
        [
            format!("warning: traffic 2024-03-01: {SAMPLED}"),
            format!("warning: traffic 2024-03-01: {THRESHOLDED}"),
            format!("warning: traffic 2024-03-02: {SAMPLED}"),
            format!("warning: traffic 2024-03-02: {THRESHOLDED}"),
        ]
    );
}

#[test]
fn search_console_bigquery_and_youtube_say_theirs() {
    let wd = Workdir::with_config(Config {
        reports: ReportConfig {
            gsc_metadata: Some(json!({"firstIncompleteDate": "2024-02-27"})),
            bigquery_errors: Some(json!([
                {"reason": "invalidQuery", "location": "query", "message": "Field x is deprecated"}
            ])),
            youtube_errors: Some(json!({"error": [
                {"code": "quotaExceeded", "domain": "youtube.analytics", "externalErrorMessage": "Partial data"}
            ]})),
            ..ReportConfig::default()
        },
        ..Config::default()
    });
    wd.write(
        "queries/gsc.toml",
        "api = \"searchconsole\"\nversion = \"v1\"\nmethod = \"webmasters.searchanalytics.query\"\n\
         [params]\nsiteUrl = \"sc-domain:example.com\"\n[body]\nstartDate = \"2024-02-01\"\n\
         endDate = \"2024-02-29\"\ndimensions = [\"date\"]\ndataState = \"all\"\n",
    );
    wd.write(
        "queries/bq.toml",
        "api = \"bigquery\"\nversion = \"v2\"\nmethod = \"bigquery.jobs.query\"\n\
         [params]\nprojectId = \"proj\"\n[body]\nquery = \"SELECT 1\"\nuseLegacySql = false\n",
    );
    wd.write(
        "queries/yt.toml",
        "api = \"youtubeAnalytics\"\nversion = \"v2\"\nmethod = \"youtubeAnalytics.reports.query\"\n\
         [params]\nids = \"channel==MINE\"\nstartDate = \"2024-02-01\"\nendDate = \"2024-02-29\"\n\
         dimensions = \"day\"\nmetrics = \"views\"\n",
    );
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "warning: bq: warning: invalidQuery at query: Field x is deprecated (errors)",
            "warning: gsc: incomplete: the rows from 2024-02-27 on are not final and may still change (firstIncompleteDate)",
            "warning: yt: warning: quotaExceeded: Partial data (errors)",
        ]
    );
    let kinds: Vec<(String, String)> = summary(&wd)["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["name"].as_str().unwrap().to_owned(),
                q["caveats"][0]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("gsc".to_owned(), "incomplete".to_owned())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("bq".to_owned(), "warning".to_owned())),
        "{kinds:?}"
    );
}

#[test]
fn strict_on_a_method_whose_responses_say_nothing_is_refused_before_running() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\nstrict = true\n",
    );
    for command in ["validate", "run"] {
        let run = wd.run(&[command]);
        assert_eq!(run.code, 2, "{run:?}");
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(
            said.contains("files.toml: strict: drive.files.list's responses say nothing of sampled or unfinished numbers (GA4 runReport, Search Console, BigQuery and YouTube Analytics reports do), so `strict` has nothing to refuse: remove it"),
            "{said}"
        );
    }
    assert!(wd.google.seen_under("/drive/v3/files").is_empty());
}
