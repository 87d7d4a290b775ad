//! `validate` refuses what the Discovery document already rules out (a parameter's pattern and
//! format, the shape and values of a body at any depth), says which table a misplaced key
//! belongs in, and `describe` / `new` show and write request bodies that run.

use crate::support::{csv_line, Workdir};

const GA4: &str = "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n";
const DRIVE: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";
const EVENTS: &str = "api = \"calendar\"\nversion = \"v3\"\nmethod = \"calendar.events.list\"\n";

/// Validates one query file: (exit code, stdout).
fn validate_one(contents: &str) -> (i32, String) {
    let wd = Workdir::new();
    wd.write("queries/q.toml", contents);
    let run = wd.run(&["validate"]);
    (run.code, run.stdout)
}

fn refused(contents: &str, expected: &str) {
    let (code, out) = validate_one(contents);
    assert_eq!((code, out.as_str()), (2, expected), "{contents}");
}

#[test]
fn a_parameter_that_misses_its_pattern_is_shown_in_the_form_it_takes() {
    refused(
        &format!("{GA4}[params]\nproperty = \"123456789\"\n[body]\nmetrics = [{{ name = \"activeUsers\" }}]\n"),
        "error  queries/q.toml:5: params.property: \"123456789\" does not match the pattern \
         ^properties/[^/]+$; did you mean \"properties/123456789\"?\n",
    );
}

#[test]
fn a_parameter_of_the_wrong_format_says_the_form_with_an_example() {
    refused(
        &format!("{EVENTS}[params]\ncalendarId = \"primary\"\ntimeMin = \"2025-01-01\"\n"),
        "error  queries/q.toml:6: params.timeMin: expected a date-time (RFC 3339) such as \
         \"2025-01-01T00:00:00Z\", found \"2025-01-01\"\n",
    );
    // A TOML date (no quotes) is the same mistake.
    refused(
        &format!("{EVENTS}[params]\ncalendarId = \"primary\"\ntimeMax = 2025-01-01\n"),
        "error  queries/q.toml:6: params.timeMax: expected a date-time (RFC 3339) such as \
         \"2025-01-01T00:00:00Z\", found \"2025-01-01\"\n",
    );
}

#[test]
fn a_template_is_checked_once_rendered() {
    // `{{ today }}` is a date (2024-03-15 here), not the date-time timeMin takes.
    refused(
        &format!("{EVENTS}[params]\ncalendarId = \"primary\"\ntimeMin = \"{{{{ today }}}}\"\n"),
        "error  queries/q.toml: params: `timeMin` rendered \"2024-03-15\": expected a date-time \
         (RFC 3339) such as \"2025-01-01T00:00:00Z\", found \"2024-03-15\"\n",
    );
    refused(
        &format!(
            "{GA4}[vars]\nrows = \"ten\"\n[params]\nproperty = \"properties/1\"\n[body]\n\
             metrics = [{{ name = \"activeUsers\" }}]\nlimit = \"{{{{ rows }}}}\"\n"
        ),
        "error  queries/q.toml:10: body.limit: expected an integer such as \"42\", found \"ten\"\n",
    );
}

#[test]
fn body_items_of_the_wrong_shape_show_the_shape_they_take() {
    let head = format!("{GA4}[params]\nproperty = \"properties/1\"\n[body]\n");
    refused(
        &format!("{head}dimensions = [\"date\"]\nmetrics = [{{ name = \"activeUsers\" }}]\n"),
        "error  queries/q.toml:7: body.dimensions[0]: expected a table such as { name = \"date\" }, \
         found the string \"date\"\n",
    );
    refused(
        &format!("{head}metrics = {{ name = \"activeUsers\" }}\n"),
        "error  queries/q.toml:7: body.metrics: expected a list such as [{ name = \"...\" }], found a table\n",
    );
    refused(
        &format!("{head}metrics = [{{ nme = \"activeUsers\" }}]\n"),
        "error  queries/q.toml:7: body.metrics[0].nme: not a field of Metric; did you mean `name`?\n",
    );
    refused(
        &format!("{head}metrics = [{{ name = \"activeUsers\" }}]\nmetricAggregations = [\"SUM\"]\n"),
        "error  queries/q.toml:8: body.metricAggregations[0]: \"SUM\" is not an allowed value; use \
         one of: METRIC_AGGREGATION_UNSPECIFIED, TOTAL, MINIMUM, MAXIMUM, COUNT\n",
    );
    refused(
        &format!("{head}metrics = [{{ name = \"activeUsers\" }}]\nlimit = \"ten\"\nkeepEmptyRows = \"yes\"\n"),
        "error  queries/q.toml:8: body.limit: expected an integer such as \"42\", found \"ten\"\n\
         error  queries/q.toml:9: body.keepEmptyRows: expected a boolean (true or false), found the string \"yes\"\n",
    );
}

#[test]
fn backfill_dates_say_the_form_they_take() {
    let wd = Workdir::new();
    wd.write("queries/q.toml", &format!("{DRIVE}columns = [\"id\"]\n"));
    let run = wd.run(&["validate", "--from", "2024-03-01", "--to", "03/31/2024"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "invalid value '03/31/2024' for '--to <DATE>': write the date as YYYY-MM-DD, e.g. 2024-03-31"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn every_key_above_params_is_said_to_belong_in_its_table() {
    refused(
        &format!("{DRIVE}q = \"trashed = false\"\npageSize = 10\nmax_page = 3\n[params]\nspaces = \"drive\"\n"),
        "error  queries/q.toml:4: q: `q` is a parameter of drive.files.list: put it under [params]\n\
         error  queries/q.toml:5: pageSize: `pageSize` is a parameter of drive.files.list: put it under [params]\n\
         error  queries/q.toml:6: max_page: unknown key `max_page`; did you mean `max_pages`?\n",
    );
    refused(
        &format!(
            "{GA4}dimensions = [{{ name = \"date\" }}]\n[params]\nproperty = \"properties/1\"\n"
        ),
        "error  queries/q.toml:4: dimensions: `dimensions` is a field of the request body \
         RunReportRequest: put it under [body]\n",
    );
}

#[test]
fn a_key_in_the_wrong_table_names_the_table_it_belongs_in() {
    refused(
        &format!(
            "{GA4}[params]\nproperty = \"properties/1\"\nmetrics = [{{ name = \"activeUsers\" }}]\n"
        ),
        "error  queries/q.toml:6: params.metrics: `metrics` is a field of the request body \
         RunReportRequest, not a parameter: put it under [body]\n",
    );
    refused(
        &format!(
            "{GA4}[params]\nproperty = \"properties/1\"\n[body]\nmetrics = [{{ name = \"activeUsers\" }}]\n\
             max_pages = 2\n"
        ),
        "error  queries/q.toml:8: body.max_pages: `max_pages` is a top-level key, not a body field: \
         move it above [body] (in TOML every key after a [table] header belongs to that table)\n",
    );
    refused(
        &format!("{DRIVE}[body]\n"),
        "error  queries/q.toml:4: body: drive.files.list takes no request body (it is GET files); \
         remove [body] or use [params]\n",
    );
    refused(
        "api = \"searchconsole\"\nversion = \"v1\"\nmethod = \"webmasters.searchanalytics.query\"\n\
         [params]\nsiteUrl = \"https://example.com/\"\n[body]\nstartDate = \"2024-01-01\"\n\
         endDate = \"2024-01-31\"\nfields = \"rows\"\n",
        "error  queries/q.toml:9: body.fields: `fields` is a parameter of \
         webmasters.searchanalytics.query, not a body field: put it under [params]\n",
    );
}

#[test]
fn describe_lists_the_fields_of_a_request_body() {
    let wd = Workdir::new();
    let run = wd.run(&[
        "describe",
        "analyticsdata",
        "v1beta",
        "analyticsdata.properties.runReport",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<String> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for expected in [
        "Request body: RunReportRequest",
        "dimensions[] list of Dimension The dimensions requested and displayed.",
        "name string The name of the dimension.",
        "metrics[] list of Metric The metrics requested and displayed.",
        "limit string (int64) The number of rows to return.",
        "metricAggregations[] list of string [one of: METRIC_AGGREGATION_UNSPECIFIED | TOTAL | MINIMUM | MAXIMUM | COUNT] Aggregation of metrics.",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected:?} in\n{}",
            run.stdout
        );
    }
}

#[test]
fn new_writes_a_ga4_body_that_validates_and_runs() {
    let wd = Workdir::new();
    let new = wd.run(&[
        "new",
        "analyticsdata",
        "v1beta",
        "analyticsdata.properties.runReport",
        "--name",
        "ga4",
    ]);
    assert_eq!(new.code, 0, "{new:?}");
    assert!(
        new.stdout.contains(
            "\ndimensions = [{ name = \"date\" }]\nmetrics = [{ name = \"activeUsers\" }]\n\
             dateRanges = [{ startDate = \"{{ days_ago(28) }}\", endDate = \"{{ today }}\" }]\n"
        ),
        "{}",
        new.stdout
    );
    // As printed, the property is a placeholder in the form the pattern asks for: refused.
    wd.write("queries/ga4.toml", &new.stdout);
    let line = new
        .stdout
        .lines()
        .position(|l| l.starts_with("property = \"properties/REPLACE_ME\""))
        .unwrap()
        + 1;
    let valid = wd.run(&["validate"]);
    assert_eq!(
        (valid.code, valid.stdout),
        (
            2,
            format!(
                "error  queries/ga4.toml:{line}: params.property: still \"REPLACE_ME\", the \
                 placeholder `gscrape new` wrote: put the value in\n"
            )
        )
    );
    wd.write(
        "queries/ga4.toml",
        &new.stdout
            .replace("properties/REPLACE_ME", "properties/123"),
    );
    let valid = wd.run(&["validate"]);
    assert_eq!(valid.code, 0, "{valid:?}");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let sent = &wd.google.seen_under("/v1beta/properties/123:runReport")[0];
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        body["dateRanges"],
        serde_json::json!([{"startDate": "2024-02-16", "endDate": "2024-03-15"}])
    );
    let csv = wd.read("output/ga4.csv");
    let (date, _, users, _) = crate::support::fake_reports::ga4_row(0);
    assert!(
        csv.starts_with(&format!(
            "{}{}",
            csv_line(&["date", "activeUsers"]),
            csv_line(&[&date, &users.to_string()])
        )),
        "{csv}"
    );
}

#[test]
fn new_fills_in_the_special_values_the_description_names() {
    let wd = Workdir::new();
    for (api, version, method, line) in [
        (
            "gmail",
            "v1",
            "gmail.users.messages.list",
            "userId = \"me\"",
        ),
        (
            "calendar",
            "v3",
            "calendar.events.list",
            "calendarId = \"primary\"",
        ),
        (
            "admin",
            "directory_v1",
            "directory.users.list",
            "customer = \"my_customer\"",
        ),
    ] {
        let new = wd.run(&["new", api, version, method, "--name", "q"]);
        assert_eq!(new.code, 0, "{new:?}");
        assert!(
            new.stdout.lines().any(|l| l.starts_with(line)),
            "{line} in\n{}",
            new.stdout
        );
        wd.write("queries/q.toml", &new.stdout);
        let valid = wd.run(&["validate"]);
        assert_eq!(valid.code, 0, "{method}: {valid:?}");
    }
    // A value of hers stays a placeholder, refused until filled.
    let new = wd.run(&["new", "gmail", "v1", "gmail.users.messages.get"]);
    assert!(new.stdout.contains("\nuserId = \"me\""), "{}", new.stdout);
    assert!(
        new.stdout.contains("\nid = \"REPLACE_ME\""),
        "{}",
        new.stdout
    );
    wd.write("queries/q.toml", &new.stdout);
    let valid = wd.run(&["validate"]);
    assert_eq!(valid.code, 2, "{valid:?}");
    assert!(
        valid.stdout.contains("params.id: still \"REPLACE_ME\""),
        "{}",
        valid.stdout
    );
}
