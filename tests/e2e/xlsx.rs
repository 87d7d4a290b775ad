//! Excel workbooks, read back cell by cell with calamine: typed cells from the Discovery
//! schema, 21-digit ids exact as text, date-times as real dates, text never a formula.

use calamine::{open_workbook, Data, DataType, Reader, Xlsx};

use crate::support::fake_google::{drive_file, drive_file_name, drive_long_version};
use crate::support::fake_reports::ga4_row;
use crate::support::Workdir;

#[test]
fn an_xlsx_export_has_typed_cells_and_exact_ids() {
    let wd = Workdir::new();
    wd.google.configure(|c| {
        c.drive_files = 30;
        c.drive_long_versions = true;
    });
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\noutput = \"files.xlsx\"\n\
         columns = [\"id\", \"name\", \"size\", \"starred\", \"createdTime\", \"version\"]\n",
    );
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut book: Xlsx<_> = open_workbook(wd.path().join("output/files.xlsx")).unwrap();
    let sheets = book.sheet_names();
    assert_eq!(sheets.len(), 1);
    let range = book.worksheet_range(&sheets[0]).unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 31, "a header and 30 files");
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        ["id", "name", "size", "starred", "createdTime", "version"]
    );
    for (i, row) in rows[1..].iter().enumerate() {
        let file = drive_file(i);
        assert_eq!(row[0], Data::String(format!("f{i:04}")));
        assert_eq!(
            row[1],
            Data::String(drive_file_name(i)),
            "text stays text, never a formula"
        );
        match file.get("size").and_then(|s| s.as_str()) {
            Some(size) => assert_eq!(row[2], Data::Float(size.parse().unwrap()), "a number"),
            None => assert_eq!(row[2], Data::Empty),
        }
        assert_eq!(row[3], Data::Bool(i % 3 == 0));
        let created = row[4].as_datetime().expect("a date-time cell");
        let expected = chrono::DateTime::parse_from_rfc3339(file["createdTime"].as_str().unwrap())
            .unwrap()
            .naive_utc();
        assert_eq!(created, expected);
        assert_eq!(
            row[5],
            Data::String(drive_long_version(i)),
            "21 digits stay exact text"
        );
    }
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    let bytes = std::fs::metadata(wd.path().join("output/files.xlsx"))
        .unwrap()
        .len();
    assert_eq!(summary["queries"][0]["bytes"], bytes);
    assert_eq!(summary["queries"][0]["rows"], 30);
    assert_eq!(wd.list("output"), ["files.xlsx"], "no temporary file left");
}

/// Days since 1899-12-30 (the spreadsheet epoch) of a UTC date and time.
fn serial(day: u32, hour: u32) -> f64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2025, 3, day).unwrap();
    (date - epoch).num_days() as f64 + hour as f64 / 24.0
}

#[test]
fn a_fallback_column_is_typed_by_the_path_that_answered() {
    let wd = Workdir::new();
    wd.write(
        "queries/events.toml",
        "api = \"calendar\"\nversion = \"v3\"\nmethod = \"calendar.events.list\"\noutput = \"events.xlsx\"\n\
         columns = [\"id\", { name = \"start\", path = [\"start.dateTime\", \"start.date\"] }, \
         { name = \"end\", path = [\"end.dateTime\", \"end.date\"] }]\n\
         [params]\ncalendarId = \"primary\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut book: Xlsx<_> = open_workbook(wd.path().join("output/events.xlsx")).unwrap();
    let range = book.worksheet_range("Sheet1").unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 6, "a header and 5 events");
    let cell = |row: usize, column: usize| match &rows[row][column] {
        Data::DateTime(at) => at.as_f64(),
        other => panic!("row {row}, column {column}: {other:?} is not a date cell"),
    };
    // Event 2 lasts all day: its start and end are dates, the others' date-times.
    assert_eq!((cell(1, 1), cell(1, 2)), (serial(1, 9), serial(1, 10)));
    assert_eq!((cell(3, 1), cell(3, 2)), (serial(3, 0), serial(4, 0)));
    assert_eq!((cell(5, 1), cell(5, 2)), (serial(5, 9), serial(5, 10)));
}

#[test]
fn a_ga4_report_has_numbers_for_its_metrics_and_dates_for_its_date() {
    let wd = Workdir::new();
    wd.write(
        "queries/ga4.toml",
        "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
         output = \"ga4.xlsx\"\n[params]\nproperty = \"properties/123\"\n[body]\n\
         dateRanges = [{ startDate = \"2024-01-01\", endDate = \"2024-01-07\" }]\n\
         dimensions = [{ name = \"date\" }, { name = \"country\" }]\n\
         metrics = [{ name = \"activeUsers\" }, { name = \"sessions\" }]\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut book: Xlsx<_> = open_workbook(wd.path().join("output/ga4.xlsx")).unwrap();
    let sheets = book.sheet_names();
    let range = book.worksheet_range(&sheets[0]).unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 8, "a header and the fake's 7 rows");
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(header, ["date", "country", "activeUsers", "sessions"]);
    for (i, row) in rows[1..].iter().enumerate() {
        let (_, country, users, sessions) = ga4_row(i);
        // The fake's `date` of row i is 202401{i+1}: a date cell, not the text.
        let day = row[0].as_date().expect("a date cell");
        assert_eq!(
            day,
            chrono::NaiveDate::from_ymd_opt(2024, 1, i as u32 + 1).unwrap()
        );
        assert_eq!(
            row[1],
            Data::String(country.to_owned()),
            "a dimension is text"
        );
        assert_eq!(
            row[2],
            Data::Float(users as f64),
            "TYPE_INTEGER is a number"
        );
        assert_eq!(row[3], Data::Float(sessions as f64));
    }
}

#[test]
fn a_fan_out_column_from_its_parent_is_typed_as_the_parent_types_it() {
    let wd = Workdir::new();
    wd.google.configure(|c| {
        c.drive_files = 3;
        c.gmail_messages = 2;
    });
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\noutput = false\n\
         columns = [\"id\", { name = \"label\", value = \"{{ team }}\" }]\n[vars]\nteam = \"ops\"\n",
    );
    wd.write(
        "queries/messages.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         for_each = \"files\"\noutput = \"messages.xlsx\"\n\
         columns = [\"id\", { name = \"file\", value = \"{{ files.id }}\" }, \
         { name = \"size\", value = \"{{ files.size }}\" }, \
         { name = \"created\", value = \"{{ files.createdTime }}\" }, \
         { name = \"starred\", value = \"{{ files.starred }}\" }, \
         { name = \"label\", value = \"{{ files.label }}\" }, \
         { name = \"size text\", value = \"{{ files.size }} bytes\" }]\n\
         [params]\nuserId = \"me\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut book: Xlsx<_> = open_workbook(wd.path().join("output/messages.xlsx")).unwrap();
    let range = book.worksheet_range("Sheet1").unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 7, "a header and 2 messages for each of 3 files");
    for row in &rows[1..] {
        let Data::String(id) = &row[1] else {
            panic!("the file id is text: {row:?}")
        };
        let i: usize = id.trim_start_matches('f').parse().unwrap();
        let file = drive_file(i);
        let size: f64 = file["size"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            row[2],
            Data::Float(size),
            "an int64 of the parent: a number"
        );
        let created = row[3].as_datetime().expect("a date-time cell");
        let expected = chrono::DateTime::parse_from_rfc3339(file["createdTime"].as_str().unwrap())
            .unwrap()
            .naive_utc();
        assert_eq!(created, expected, "a date-time of the parent");
        assert_eq!(
            row[4],
            Data::Bool(i.is_multiple_of(3)),
            "a boolean of the parent"
        );
        assert_eq!(
            row[5],
            Data::String("ops".to_owned()),
            "the parent's computed column: text, as it reads a variable"
        );
        assert_eq!(
            row[6],
            Data::String(format!("{} bytes", size)),
            "a template that is more than one read stays text"
        );
    }
}

#[test]
fn a_fan_out_report_is_typed_like_the_report() {
    let wd = Workdir::new();
    wd.google.configure(|c| c.drive_files = 2);
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\noutput = false\n",
    );
    wd.write(
        "queries/ga4.toml",
        "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
         for_each = \"files\"\noutput = \"ga4.xlsx\"\n[params]\nproperty = \"properties/123\"\n[body]\n\
         dateRanges = [{ startDate = \"2024-01-01\", endDate = \"2024-01-07\" }]\n\
         dimensions = [{ name = \"date\" }, { name = \"country\" }]\n\
         metrics = [{ name = \"activeUsers\" }, { name = \"sessions\" }]\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut book: Xlsx<_> = open_workbook(wd.path().join("output/ga4.xlsx")).unwrap();
    let sheets = book.sheet_names();
    let range = book.worksheet_range(&sheets[0]).unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(
        rows.len(),
        15,
        "a header and the fake's 7 rows for each of 2 files"
    );
    for row in &rows[1..] {
        assert!(row[0].as_date().is_some(), "a date cell: {row:?}");
        assert!(matches!(row[1], Data::String(_)), "a dimension is text");
        assert!(matches!(row[2], Data::Float(_)), "TYPE_INTEGER is a number");
        assert!(matches!(row[3], Data::Float(_)));
    }
}
