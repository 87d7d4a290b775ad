//! `[sheet]`: rows written to a Google Sheet (the fake's), read back cell by cell.

use serde_json::{json, Value};

use crate::support::fake_google::{drive_file, drive_file_name, drive_long_version};
use crate::support::fake_reports::ga4_row;
use crate::support::fake_sheets::Tab;
use crate::support::Workdir;

const COLUMNS: &str =
    "columns = [\"id\", \"name\", \"size\", \"starred\", \"createdTime\", \"version\"]\n";

fn query(sheet: &str) -> String {
    format!(
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n{COLUMNS}\
         [params]\npageSize = 5\n[sheet]\n{sheet}"
    )
}

fn workdir(files: usize) -> Workdir {
    let wd = Workdir::new();
    wd.google.configure(|c| {
        c.drive_files = files;
        c.drive_long_versions = true;
    });
    wd
}

/// Days since 1899-12-30 of the fake's `createdTime` of file `i`.
fn created_serial(i: usize) -> f64 {
    // 2024-01-01 is day 45292.
    let day = 45292 + (i % 28) as u64;
    day as f64 + (10.0 * 3600.0 + (i % 60) as f64) / 86400.0
}

fn tab(wd: &Workdir, id: &str, title: &str) -> Tab {
    wd.google.sheets(|s| {
        s.spreadsheets[id]
            .tab(title)
            .unwrap_or_else(|| panic!("no tab {title:?} in {id}"))
            .clone()
    })
}

/// The rows of files `range`, checked cell by cell: each JSON type as it should be.
fn assert_file_rows(rows: &[Vec<Value>], range: std::ops::Range<usize>) {
    assert_eq!(rows.len(), range.len());
    for (row, i) in rows.iter().zip(range) {
        let file = drive_file(i);
        assert_eq!(row[0], json!(format!("f{i:04}")));
        assert_eq!(
            row[1],
            json!(drive_file_name(i)),
            "strings stay strings (RAW)"
        );
        match file.get("size") {
            Some(size) => assert_eq!(
                row[2],
                json!(size.as_str().unwrap().parse::<i64>().unwrap())
            ),
            None => assert_eq!(row[2], json!("")),
        }
        assert_eq!(row[3], json!(i % 3 == 0));
        let serial = row[4].as_f64().expect("a date-time is a serial number");
        assert!(
            (serial - created_serial(i)).abs() < 1e-8,
            "{serial} for {i}"
        );
        assert_eq!(row[5], json!(drive_long_version(i)), "21 digits stay exact");
    }
}

#[test]
fn a_new_spreadsheet_gets_the_rows_typed_and_the_summary_names_it() {
    let wd = workdir(12);
    wd.write("queries/files.toml", &query("spreadsheet = \"new\"\n"));
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        wd.list("output").is_empty(),
        "no CSV unless `output` names one"
    );

    let (title, titles) = wd.google.sheets(|s| {
        let sheet = &s.spreadsheets["fake-sheet-1"];
        (sheet.title.clone(), s.titles("fake-sheet-1"))
    });
    assert_eq!(title, "files");
    assert_eq!(titles, ["files"]);
    let tab = tab(&wd, "fake-sheet-1", "files");
    assert_eq!(
        tab.rows[0],
        ["id", "name", "size", "starred", "createdTime", "version"].map(|h| json!(h))
    );
    assert_file_rows(&tab.rows[1..], 0..12);
    assert_eq!(tab.formats, [(4, 5, 1, "DATE_TIME".to_owned())]);

    let url = format!("{}spreadsheets/d/fake-sheet-1/edit", wd.google.root_url());
    assert!(run.stderr.contains(&url), "{}", run.stderr);
    let summary: Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(summary["queries"][0]["sheet"], json!(url));
    let writes: Vec<_> = wd
        .google
        .seen_under("/v4/spreadsheets/")
        .into_iter()
        .filter(|s| s.method == "PUT")
        .collect();
    assert_eq!(writes.len(), 1);
    assert!(writes[0].target.contains("valueInputOption=RAW"));
    // The proof: the rows, and the bytes of the values sent.
    assert_eq!(summary["queries"][0]["rows"], json!(12));
    assert_eq!(summary["queries"][0]["bytes"], json!(writes[0].body.len()));
}

#[test]
fn a_failed_replace_leaves_the_old_tab_and_removes_the_new_one() {
    let wd = workdir(6);
    let old = vec![vec![json!("old header")], vec![json!("old row")]];
    wd.google.sheets(|s| {
        s.seed(
            "kept",
            &[("files", old.clone()), ("Other", vec![vec![json!(1)]])],
        );
        s.fail_values_write = Some(1);
    });
    wd.write(
        "queries/files.toml",
        &query("spreadsheet = \"https://docs.google.com/spreadsheets/d/kept/edit#gid=0\"\n"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("fault injected"), "{}", run.stderr);
    assert_eq!(wd.google.sheets(|s| s.titles("kept")), ["files", "Other"]);
    assert_eq!(tab(&wd, "kept", "files").rows, old);

    // The next run replaces the tab in one step; the other tab is not touched.
    wd.google.sheets(|s| s.fail_values_write = None);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.google.sheets(|s| s.titles("kept")), ["Other", "files"]);
    assert_file_rows(&tab(&wd, "kept", "files").rows[1..], 0..6);
    assert_eq!(tab(&wd, "kept", "Other").rows, [[json!(1)]]);
    let swaps: Vec<Value> = wd
        .google
        .seen_under("/v4/spreadsheets/kept:batchUpdate")
        .iter()
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .collect();
    let last = &swaps.last().unwrap()["requests"];
    assert!(last[1]["deleteSheet"].is_object(), "{last}");
    assert_eq!(
        last[2]["updateSheetProperties"]["properties"]["title"],
        "files"
    );
}

#[test]
fn append_adds_rows_after_the_existing_ones_with_one_header() {
    let wd = workdir(3);
    wd.google
        .sheets(|s| s.seed("log-sheet", &[("Sheet1", vec![])]));
    wd.write(
        "queries/files.toml",
        &query("spreadsheet = \"log-sheet\"\ntab = \"log\"\nmode = \"append\"\n"),
    );
    assert_eq!(wd.run(&["run"]).code, 0);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let tab = tab(&wd, "log-sheet", "log");
    assert_eq!(tab.rows.len(), 7, "{:?}", tab.rows);
    assert_eq!(tab.rows[0][0], json!("id"));
    assert_file_rows(&tab.rows[1..4], 0..3);
    assert_file_rows(&tab.rows[4..7], 0..3);
}

/// The value of the padding column.
fn pad() -> String {
    "x".repeat(400)
}

/// A Drive export into the spreadsheet `spreadsheet`, each row padded with 400 bytes (so that
/// a few thousand rows make megabytes of requests).
fn padded_files(spreadsheet: &str) -> String {
    let pad = pad();
    format!(
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", {{ name = \"pad\", value = \"{pad}\" }}]\n\
         [params]\npageSize = 1000\n[sheet]\nspreadsheet = \"{spreadsheet}\"\n"
    )
}

#[test]
fn a_large_export_is_sent_in_requests_well_under_the_payload_limit() {
    let wd = workdir(30_000);
    wd.write("queries/files.toml", &padded_files("new"));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let writes: Vec<usize> = wd
        .google
        .seen_under("/v4/spreadsheets/")
        .into_iter()
        .filter(|s| s.method == "PUT")
        .map(|s| s.body.len())
        .collect();
    let total: usize = writes.iter().sum();
    assert!(total > 10 * 1024 * 1024, "{total} bytes in all");
    assert!(writes.len() >= 5, "{writes:?}");
    assert!(writes.iter().all(|&b| b < 3 * 1024 * 1024), "{writes:?}");
    let tab = tab(&wd, "fake-sheet-1", "files");
    assert_eq!(tab.rows.len(), 30_001);
    assert_eq!(tab.rows[30_000], [json!("f29999"), json!(pad())]);
}

#[test]
fn the_cell_limit_is_checked_before_writing() {
    let wd = workdir(6);
    wd.google.sheets(|s| {
        s.seed("full", &[("big", vec![])]);
        s.set_grid("full", "big", 9_999_990, 1);
    });
    wd.write("queries/files.toml", &query("spreadsheet = \"full\"\n"));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("above Google's limit of 10000000"),
        "{}",
        run.stderr
    );
    assert_eq!(wd.google.sheets(|s| s.titles("full")), ["big"]);
    let writes = wd.google.seen_under("/v4/spreadsheets/full/values/");
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn a_bad_sheet_table_is_a_usage_error() {
    let wd = Workdir::new();
    wd.write(
        "queries/a.toml",
        &query("spreadsheet = \"https://example.com/x\"\n"),
    );
    wd.write(
        "queries/b.toml",
        &query("spreadsheet = \"new\"\nmode = \"merge\"\n"),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains("a.toml:8: sheet.spreadsheet: \"https://example.com/x\" is not a spreadsheet"),
        "{out}"
    );
    assert!(
        out.contains("b.toml:9: mode: `merge` is not one of: replace, append"),
        "{out}"
    );
}

#[test]
fn a_query_failing_after_rows_were_sent_removes_the_new_tab() {
    let wd = workdir(8000);
    wd.google.configure(|c| c.drive_fail_page = Some(7));
    wd.google
        .sheets(|s| s.seed("kept", &[("files", vec![vec![json!("old")]])]));
    wd.write("queries/files.toml", &padded_files("kept"));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    let writes = wd.google.seen_under("/v4/spreadsheets/kept/values/");
    assert!(!writes.is_empty(), "rows were sent before the failure");
    assert_eq!(wd.google.sheets(|s| s.titles("kept")), ["files"]);
    assert_eq!(tab(&wd, "kept", "files").rows, [[json!("old")]]);
}

#[test]
fn two_queries_cannot_replace_one_tab() {
    let wd = Workdir::new();
    let sheet = "spreadsheet = \"abc\"\ntab = \"t\"\n";
    wd.write("queries/a.toml", &query(sheet));
    wd.write("queries/b.toml", &query(sheet));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("sheet.tab: tab \"t\" of spreadsheet abc is also written by"),
        "{}",
        run.stderr
    );
    assert!(wd.google.seen_under("/v4/").is_empty());
}

#[test]
fn a_fallback_column_is_typed_by_the_path_that_answered() {
    let wd = Workdir::new();
    wd.write(
        "queries/events.toml",
        "api = \"calendar\"\nversion = \"v3\"\nmethod = \"calendar.events.list\"\n\
         columns = [\"id\", { name = \"start\", path = [\"start.dateTime\", \"start.date\"] }]\n\
         [params]\ncalendarId = \"primary\"\n[sheet]\nspreadsheet = \"new\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let tab = tab(&wd, "fake-sheet-1", "events");
    // 2025-03-01 is day 45717; event 2 lasts all day (a date), the others start at 09:00.
    let starts: Vec<Value> = tab.rows[1..].iter().map(|row| row[1].clone()).collect();
    assert_eq!(
        starts,
        [
            json!(45717.375),
            json!(45718.375),
            json!(45719.0),
            json!(45720.375),
            json!(45721.375)
        ]
    );
    assert_eq!(
        tab.formats,
        [(1, 2, 1, "DATE_TIME".to_owned())],
        "a column holding date-times shows them"
    );
}

#[test]
fn a_ga4_report_sends_its_metrics_as_numbers_and_its_date_as_a_date() {
    let wd = Workdir::new();
    wd.write(
        "queries/ga4.toml",
        "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
         [params]\nproperty = \"properties/123\"\n[body]\n\
         dateRanges = [{ startDate = \"2024-01-01\", endDate = \"2024-01-07\" }]\n\
         dimensions = [{ name = \"date\" }, { name = \"country\" }]\n\
         metrics = [{ name = \"activeUsers\" }, { name = \"sessions\" }]\n\
         [sheet]\nspreadsheet = \"new\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let tab = tab(&wd, "fake-sheet-1", "ga4");
    assert_eq!(
        tab.rows[0],
        ["date", "country", "activeUsers", "sessions"].map(|h| json!(h))
    );
    assert_eq!(tab.rows.len(), 8, "a header and the fake's 7 rows");
    for (i, row) in tab.rows[1..].iter().enumerate() {
        let (_, country, users, sessions) = ga4_row(i);
        // 2024-01-01 is day 45292: the fake's `date` 202401{i+1} as a serial number.
        assert_eq!(row[0], json!(45292.0 + i as f64), "a date, not the text");
        assert_eq!(row[1], json!(country), "a dimension is text");
        assert_eq!(row[2], json!(users), "TYPE_INTEGER is a number");
        assert_eq!(row[3], json!(sessions));
    }
    assert_eq!(tab.formats, [(0, 1, 1, "DATE".to_owned())]);
    let writes: Vec<_> = wd
        .google
        .seen_under("/v4/spreadsheets/")
        .into_iter()
        .filter(|s| s.method == "PUT")
        .collect();
    assert!(writes[0].target.contains("valueInputOption=RAW"));
}
