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

/// One part of an xlsx (a zip), as text.
fn part(path: &std::path::Path, name: &str) -> String {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The `<col>` widths of a sheet's XML, by first column (1-based), in character units.
fn column_widths(sheet: &str) -> Vec<(u32, f64)> {
    let attribute = |element: &str, name: &str| -> Option<String> {
        let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
        let end = element[start..].find('"')? + start;
        Some(element[start..end].to_owned())
    };
    sheet
        .split("<col ")
        .skip(1)
        .map(|element| {
            let element = &format!(" {}", &element[..element.find("/>").unwrap()]);
            let min = attribute(element, "min").unwrap().parse().unwrap();
            let width = attribute(element, "width").unwrap().parse().unwrap();
            (min, width)
        })
        .collect()
}

/// A Drive export of `files` files, its query as `files.xlsx`.
fn drive_xlsx(wd: &Workdir, files: usize, extra_env: &[(&str, &str)]) -> Vec<u8> {
    wd.google.configure(|c| c.drive_files = files);
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\noutput = \"files.xlsx\"\n\
         columns = [\"id\", \"name\", \"size\", \"starred\", \"createdTime\", \"mimeType\"]\n",
    );
    let mut command = wd.command(&["run"]);
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let run = crate::support::finish(command.output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    std::fs::read(wd.path().join("output/files.xlsx")).unwrap()
}

#[test]
fn an_xlsx_opens_with_widths_from_its_content_a_frozen_filtered_header_and_formats() {
    let wd = Workdir::new();
    drive_xlsx(&wd, 30, &[]);
    let path = wd.path().join("output/files.xlsx");
    let sheet = part(&path, "xl/worksheets/sheet1.xml");

    let widths = column_widths(&sheet);
    let columns: Vec<u32> = widths.iter().map(|(min, _)| *min).collect();
    assert_eq!(
        columns,
        [1, 2, 3, 4, 5, 6],
        "every column has a width: {sheet}"
    );
    let width = |column: u32| widths.iter().find(|(c, _)| *c == column).unwrap().1;
    // createdTime displays `yyyy-mm-dd hh:mm:ss`: 19 characters and a margin, never ########.
    assert!(width(5) >= 20.0, "date-time column {}", width(5));
    // The widest name (the longest of the 30 the fake sends) fits.
    let longest = (0..30)
        .map(|i| drive_file_name(i).chars().count())
        .max()
        .unwrap();
    assert!(
        width(2) >= (longest.min(60) + 1) as f64,
        "name column {} for {longest} characters",
        width(2)
    );
    assert!(width(2) <= 61.0, "capped: {}", width(2));
    // `id` (f0000, 5 characters) is as wide as its header and filter button, not 60.
    assert!(width(1) < 10.0, "id column {}", width(1));
    // `starred` is as wide as its header: a boolean is narrower.
    assert!(width(4) >= ("starred".len() + 2) as f64);

    // The header row frozen, with a filter over the columns.
    assert!(
        sheet.contains(
            r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#
        ),
        "{sheet}"
    );
    assert!(sheet.contains(r#"<autoFilter ref="A1:F"#), "{sheet}");

    // Formats: date-times and integers (every digit) display as such.
    let styles = part(&path, "xl/styles.xml");
    assert!(
        styles.contains(r#"formatCode="yyyy\-mm\-dd\ hh:mm:ss""#)
            || styles.contains(r#"formatCode="yyyy-mm-dd hh:mm:ss""#),
        "{styles}"
    );
    assert!(
        styles.contains(r#"formatCode="0"/>"#),
        "integers as `0`: {styles}"
    );
    let mut book: Xlsx<_> = open_workbook(&path).unwrap();
    let range = book.worksheet_range("Sheet1").unwrap();
    let row = range.rows().nth(1).unwrap();
    assert!(row[4].as_datetime().is_some(), "a date-time cell");
}

#[test]
fn the_same_data_gives_the_same_xlsx_bytes() {
    let (first, second) = (Workdir::new(), Workdir::new());
    let one = drive_xlsx(&first, 12, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let two = drive_xlsx(&second, 12, &[]);
    assert!(one == two, "the same data, different bytes");
    let core = part(&first.path().join("output/files.xlsx"), "docProps/core.xml");
    assert!(
        core.contains(
            r#"<dcterms:created xsi:type="dcterms:W3CDTF">2000-01-01T00:00:00Z</dcterms:created>"#
        ),
        "a fixed creation time without SOURCE_DATE_EPOCH: {core}"
    );

    // SOURCE_DATE_EPOCH sets it: 1700000000 is 2023-11-14T22:13:20Z.
    let third = Workdir::new();
    let dated = drive_xlsx(&third, 12, &[("SOURCE_DATE_EPOCH", "1700000000")]);
    let core = part(&third.path().join("output/files.xlsx"), "docProps/core.xml");
    assert!(
        core.contains(
            r#"<dcterms:created xsi:type="dcterms:W3CDTF">2023-11-14T22:13:20Z</dcterms:created>"#
        ),
        "{core}"
    );
    let fourth = Workdir::new();
    let again = drive_xlsx(&fourth, 12, &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert!(dated == again, "the same data and epoch, different bytes");
    assert!(dated != one, "the epoch is in the document");
}
