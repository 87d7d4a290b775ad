//! Analyst reports: every pagination style, every report decoder, explode, templates with a
//! pinned date, and the shipped report examples.

use crate::support::fake_google::gmail_message_id;
use crate::support::fake_reports::{bigquery_seconds, ga4_row, gsc_row};
use crate::support::{csv_line, Config, Workdir};

fn bodies(wd: &Workdir, prefix: &str) -> Vec<serde_json::Value> {
    wd.google
        .seen_under(prefix)
        .iter()
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .collect()
}

const GA4: &str = r#"api = "analyticsdata"
version = "v1beta"
method = "analyticsdata.properties.runReport"
[params]
property = "properties/123"
[body]
dateRanges = [{ startDate = "{{ days_ago(7) }}", endDate = "{{ yesterday }}" }]
dimensions = [{ name = "date" }, { name = "country" }]
metrics = [{ name = "activeUsers" }, { name = "sessions" }]
"#;

#[test]
fn ga4_reports_page_by_offset_until_the_row_count() {
    let wd = Workdir::new();
    wd.write("queries/ga4.toml", &format!("{GA4}limit = \"3\"\n"));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = csv_line(&["date", "country", "activeUsers", "sessions"]);
    for i in 0..7 {
        let (date, country, users, sessions) = ga4_row(i);
        expected.push_str(&csv_line(&[
            &date,
            country,
            &users.to_string(),
            &sessions.to_string(),
        ]));
    }
    assert_eq!(wd.read("output/ga4.csv"), expected);
    let sent = bodies(&wd, "/v1beta/properties/123:runReport");
    let offsets: Vec<&str> = sent.iter().map(|b| b["offset"].as_str().unwrap()).collect();
    assert_eq!(
        offsets,
        ["0", "3", "6"],
        "int64 offsets as strings, until rowCount = 7"
    );
    assert_eq!(sent[0]["limit"], "3");
    assert_eq!(
        sent[0]["dateRanges"],
        serde_json::json!([{"startDate": "2024-03-08", "endDate": "2024-03-14"}]),
        "dates from the pinned today (2024-03-15)"
    );

    // Without `limit`, gscrape asks for big pages itself.
    wd.write("queries/ga4.toml", GA4);
    assert_eq!(wd.run(&["run"]).code, 0);
    let sent = bodies(&wd, "/v1beta/properties/123:runReport");
    assert_eq!(sent.last().unwrap()["limit"], "100000");
    assert_eq!(wd.read("output/ga4.csv"), expected);
}

#[test]
fn search_console_keys_are_named_after_the_dimensions() {
    let wd = Workdir::new();
    wd.write(
        "queries/gsc.toml",
        r#"api = "searchconsole"
version = "v1"
method = "webmasters.searchanalytics.query"
[params]
siteUrl = "sc-domain:example.com"
[body]
startDate = "2024-02-01"
endDate = "2024-02-29"
dimensions = ["query", "page"]
rowLimit = 2
"#,
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = csv_line(&["query", "page", "clicks", "impressions", "ctr", "position"]);
    for i in 0..5 {
        let (clicks, impressions) = (i as f64, (10 * i + 10) as f64);
        expected.push_str(&csv_line(&[
            &gsc_row(i, "query"),
            &gsc_row(i, "page"),
            &format!("{clicks:?}"),
            &format!("{impressions:?}"),
            &format!("{:?}", clicks / impressions),
            &format!("{:?}", 1.5 + i as f64),
        ]));
    }
    assert_eq!(wd.read("output/gsc.csv"), expected);
    let seen = wd.google.seen_under("/webmasters/");
    assert_eq!(
        seen[0].path(),
        "/webmasters/v3/sites/sc-domain%3Aexample.com/searchAnalytics/query"
    );
    let starts: Vec<u64> = bodies(&wd, "/webmasters/")
        .iter()
        .map(|b| b["startRow"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [0, 2, 4], "until a short page");
}

#[test]
fn youtube_rows_are_named_by_column_headers() {
    let wd = Workdir::new();
    wd.write(
        "queries/yt.toml",
        "api = \"youtubeAnalytics\"\nversion = \"v2\"\nmethod = \"youtubeAnalytics.reports.query\"\n\
         [params]\nids = \"channel==MINE\"\nstartDate = \"2024-02-01\"\nendDate = \"2024-02-29\"\n\
         dimensions = \"day\"\nmetrics = \"views,likes\"\nmaxResults = 2\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = String::from("day,views,likes\r\n");
    for i in 0..5 {
        expected.push_str(&format!(
            "2024-02-{:02},{},{}\r\n",
            i + 1,
            (i + 1) * 100,
            (i + 1) * 100 + 1
        ));
    }
    assert_eq!(wd.read("output/yt.csv"), expected);
    let starts: Vec<String> = wd
        .google
        .seen_under("/v2/reports")
        .iter()
        .map(|s| {
            s.query()
                .into_iter()
                .find(|(k, _)| k == "startIndex")
                .unwrap()
                .1
        })
        .collect();
    assert_eq!(starts, ["1", "3", "5"], "1-based, until a short page");
}

fn bigquery_expected(rows: usize) -> String {
    let mut expected = csv_line(&["name", "visits", "at", "tags", "owner"]);
    for i in 0..rows {
        let at = chrono::DateTime::from_timestamp(bigquery_seconds(i), 0).unwrap();
        let tags: Vec<String> = (0..i % 3).map(|t| format!("t{t}")).collect();
        expected.push_str(&csv_line(&[
            &format!("row, {i}"),
            &if i == 2 {
                "NULL".to_owned()
            } else {
                (i * 7).to_string()
            },
            &at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            &tags.join(";"),
            &format!("{{\"email\":\"u{i}@example.com\"}}"),
        ]));
    }
    expected
}

const BIGQUERY: &str = "api = \"bigquery\"\nversion = \"v2\"\nmethod = \"bigquery.jobs.query\"\nnull = \"NULL\"\n\
    [params]\nprojectId = \"proj\"\n[body]\nquery = \"SELECT 1\"\nuseLegacySql = false\nmaxResults = 2\n";

#[test]
fn bigquery_results_follow_the_job_and_decode_cells() {
    let wd = Workdir::new();
    wd.write("queries/bq.toml", BIGQUERY);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/bq.csv"), bigquery_expected(5));
    let seen = wd.google.seen_under("/bigquery/");
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/bigquery/v2/projects/proj/queries",
            "/bigquery/v2/projects/proj/queries/job_1?location=EU&maxResults=2&pageToken=bq-2",
            "/bigquery/v2/projects/proj/queries/job_1?location=EU&maxResults=2&pageToken=bq-4",
        ]
    );
}

#[test]
fn a_bigquery_job_still_running_is_polled() {
    let wd = Workdir::new();
    wd.google.configure(|c| c.reports.bigquery_pending = true);
    wd.write("queries/bq.toml", BIGQUERY);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/bq.csv"), bigquery_expected(5));
    let seen = wd.google.seen_under("/bigquery/");
    assert_eq!(
        seen[1].target,
        "/bigquery/v2/projects/proj/queries/job_1?location=EU&maxResults=2"
    );
    assert_eq!(seen.len(), 4);
}

const SHEETS: &str =
    "api = \"sheets\"\nversion = \"v4\"\nmethod = \"sheets.spreadsheets.values.get\"\n\
    [params]\nspreadsheetId = \"sheet-1\"\nrange = \"Sheet1!A1:D\"\n";

#[test]
fn a_sheet_range_uses_its_first_row_as_header() {
    let wd = Workdir::new();
    wd.write(
        "queries/sheet.toml",
        &SHEETS.replace("[params]", "excel_safe = true\n[params]"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.read("output/sheet.csv"),
        "Name,Joined,Score,column_4\r\nAnn,2024-01-02,3,\r\n\"Bob, Jr.\",2024-02-02,,\r\n'=Cy,2024-03-02,5,extra\r\n"
    );
    let seen = &wd.google.seen_under("/v4/")[0];
    assert_eq!(
        seen.target,
        "/v4/spreadsheets/sheet-1/values/Sheet1%21A1%3AD?valueRenderOption=FORMATTED_VALUE&dateTimeRenderOption=FORMATTED_STRING"
    );
}

#[test]
fn a_sheet_without_header_numbers_its_columns() {
    let wd = Workdir::new();
    wd.write(
        "queries/sheet.toml",
        &SHEETS.replace("[params]", "header = false\ncolumns = [\"1\", \"3\"]\n[params]\nvalueRenderOption = \"UNFORMATTED_VALUE\""),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.read("output/sheet.csv"),
        "Name,Score\r\nAnn,3\r\n\"Bob, Jr.\",\r\n=Cy,5\r\n"
    );
    assert!(wd.google.seen_under("/v4/")[0]
        .target
        .contains("valueRenderOption=UNFORMATTED_VALUE&"));
}

#[test]
fn custom_search_follows_next_page_start_index() {
    let wd = Workdir::new();
    wd.write(
        "queries/search.toml",
        "api = \"customsearch\"\nversion = \"v1\"\nmethod = \"search.cse.list\"\ncolumns = [\"title\", \"link\"]\n\
         [params]\ncx = \"engine\"\nq = \"gscrape\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/search.csv");
    assert_eq!(csv.lines().count(), 26, "{csv}");
    assert!(csv.ends_with("Result 25,https://example.com/r/25\r\n"));
    let starts: Vec<String> = wd
        .google
        .seen_under("/customsearch/")
        .iter()
        .map(|s| s.query().into_iter().find(|(k, _)| k == "start").unwrap().1)
        .collect();
    assert_eq!(starts, ["1", "11", "21"]);
}

#[test]
fn a_paginate_table_describes_an_unknown_style() {
    let wd = Workdir::new();
    wd.write(
        "queries/yt.toml",
        "api = \"youtubeAnalytics\"\nversion = \"v2\"\nmethod = \"youtubeAnalytics.reports.query\"\n\
         [paginate]\nstyle = \"offset\"\noffset = \"startIndex\"\nlimit = \"maxResults\"\nfirst = 1\npage_size = 3\n\
         [params]\nids = \"channel==MINE\"\ndimensions = \"day\"\nmetrics = \"views\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/yt.csv").lines().count(), 6);
    assert_eq!(wd.google.seen_under("/v2/reports").len(), 2);

    wd.write("queries/yt.toml", "api = \"youtubeAnalytics\"\nversion = \"v2\"\nmethod = \"youtubeAnalytics.reports.query\"\n[paginate]\nstyle = \"offset\"\n");
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stdout,
        "error  queries/yt.toml:4: paginate: the offset style needs `offset` and `limit` (the request fields of the offset and the page size)\n"
    );
}

#[test]
fn explode_writes_a_row_per_nested_element() {
    let wd = Workdir::with_config(Config {
        gmail_messages: 2,
        ..Config::default()
    });
    wd.write(
        "queries/headers.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\nexplode = \"payload.headers\"\n\
         [params]\nuserId = \"me\"\nid = \"m01001\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/headers.csv");
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains(",payload.headers.name,payload.headers.value,"),
        "{header}"
    );
    let mut lines = csv.lines().skip(1);
    let first = lines.next().unwrap();
    let second = lines.next().unwrap();
    assert!(
        first.contains(",Subject,Subject 1,") && first.contains(&gmail_message_id(1)),
        "{first}"
    );
    assert!(
        second.contains(",From,Ann <ann@example.com>,") && second.contains(&gmail_message_id(1)),
        "{second}"
    );
    assert_eq!(lines.next(), None);
}

#[test]
fn templates_read_vars_env_and_dates() {
    let wd = Workdir::new();
    wd.write(
        "queries/gsc.toml",
        r#"api = "searchconsole"
version = "v1"
method = "webmasters.searchanalytics.query"
output = "gsc_{{ today | date('%Y%m%d') }}_{{ site_name }}.csv"
columns = ["query", { name = "site", value = "{{ site }}" }, { name = "who", value = "{{ env.GSCRAPE_TEST_WHO }}" }]
[vars]
site = "https://example.com/"
site_name = "example"
[params]
siteUrl = "{{ site }}"
[body]
startDate = "{{ first_day_of_last_month }}"
endDate = "{{ last_day_of_last_month }}"
dimensions = ["query", "date"]
type = "{{ kind }}"
"#,
    );
    let output = wd
        .command(&[
            "run",
            "--var",
            "site=sc-domain:example.org",
            "--var",
            "kind=web",
        ])
        .env("GSCRAPE_TEST_WHO", "cron")
        .output()
        .unwrap();
    let run = crate::support::finish(output);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/gsc_20240315_example.csv");
    assert!(
        csv.starts_with(
            "query,site,who\r\n\"how to export, part 0\",sc-domain:example.org,cron\r\n"
        ),
        "{csv}"
    );
    let body = &bodies(&wd, "/webmasters/")[0];
    assert_eq!(body["startDate"], "2024-02-01");
    assert_eq!(body["endDate"], "2024-02-29");
    assert_eq!(body["type"], "web");
    assert_eq!(
        wd.google.seen_under("/webmasters/")[0].path(),
        "/webmasters/v3/sites/sc-domain%3Aexample.org/searchAnalytics/query"
    );

    let run = wd.run(&["validate", "--var", "site=x"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains(
            "\"{{ kind }}\" uses the undefined variable `kind`; this query has `site`, `site_name`"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("reads the environment variable GSCRAPE_TEST_WHO, which is not set"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_report_examples_validate_and_run() {
    let wd = Workdir::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    for name in [
        "ga4_daily_users",
        "search_console_queries",
        "youtube_daily_views",
        "bigquery_daily_visits",
        "sheets_range",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
        wd.write(&format!("queries/{name}.toml"), &text);
    }
    let run = wd.run(&[&["run"][..], &crate::examples::HER_IDS].concat());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.list("output"),
        [
            "bigquery_daily_visits.csv",
            "ga4_daily_users_2024-03-15.csv",
            "search_console_2024-02.csv",
            "sheets_range.csv",
            "youtube_daily_views.csv"
        ]
    );
    assert!(wd
        .read("output/ga4_daily_users_2024-03-15.csv")
        .starts_with("date,country,activeUsers,sessions\r\n20240101,France,10,20\r\n"));
    assert!(wd
        .read("output/youtube_daily_views.csv")
        .starts_with("\u{feff}day,views,estimatedMinutesWatched,subscribersGained\r\n"));
    assert!(wd
        .read("output/bigquery_daily_visits.csv")
        .starts_with("name,visits,at,tags,owner\r\n"));
    assert!(wd
        .read("output/sheets_range.csv")
        .starts_with("Name,Joined,Score,column_4\r\n"));
    assert!(wd
        .read("output/search_console_2024-02.csv")
        .starts_with("query,page,clicks,impressions,ctr,position\r\n"));
}

#[test]
fn drive_defaults_yield_to_the_query() {
    let wd = Workdir::with_config(Config {
        drive_files: 1,
        ..Config::default()
    });
    wd.write(
        "queries/mine.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\ncolumns = [\"id\"]\n\
         [params]\nsupportsAllDrives = false\n",
    );
    assert_eq!(wd.run(&["run"]).code, 0);
    assert_eq!(
        wd.google.seen_under("/drive/")[0].target,
        "/drive/v3/files?supportsAllDrives=false&includeItemsFromAllDrives=true&fields=files%2Fid%2CnextPageToken"
    );
}

#[test]
fn describe_explains_a_report() {
    let wd = Workdir::new();
    let run = wd.run(&[
        "describe",
        "searchconsole",
        "v1",
        "webmasters.searchanalytics.query",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(
        "Pagination: offset: body field `startRow` from 0 by body field `rowLimit` (default 25000), until a short page\n\
         Records: Search Console rows: `keys` named after the request's `dimensions`, then clicks, impressions, ctr, position\n"
    ), "{}", run.stdout);
}
