//! CSV options, per query and run-wide: delimiter, BOM, the formula guard, null text, append,
//! no header.

use crate::support::{Config, Workdir};

fn files_query(extra: &str) -> String {
    format!(
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n{extra}\n\
         columns = [\"id\", \"name\", \"size\"]\n[params]\npageSize = 4\n"
    )
}

fn workdir(files: usize) -> Workdir {
    Workdir::with_config(Config {
        drive_files: files,
        ..Config::default()
    })
}

#[test]
fn delimiter_bom_and_no_header() {
    let wd = workdir(2);
    wd.write(
        "queries/semi.toml",
        &files_query("delimiter = \";\"\nbom = true"),
    );
    wd.write(
        "queries/tabs.toml",
        &files_query("delimiter = \"\\t\"\nheader = false"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.read("output/semi.csv"),
        "\u{feff}id;name;size\r\nf0000;Report, Q0;7\r\nf0001;\"Say \"\"hi\"\" 1\";1007\r\n"
    );
    assert_eq!(
        wd.read("output/tabs.csv"),
        "f0000\tReport, Q0\t7\r\nf0001\t\"Say \"\"hi\"\" 1\"\t1007\r\n"
    );
}

#[test]
fn excel_safe_guards_formulas_but_not_numbers() {
    let wd = workdir(5);
    wd.write(
        "queries/files.toml",
        &files_query("excel_safe = true").replace(
            "columns = [\"id\", \"name\", \"size\"]",
            "columns = [\"id\", \"name\", { name = \"negative\", value = \"-12.5\" }, { name = \"dash\", value = \"-\" }]",
        ),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/files.csv");
    assert!(csv.contains("\r\nf0004,'=SUM(A1:A4),-12.5,'-\r\n"), "{csv}");
    assert!(csv.contains("\r\nf0003,Café ☕ 3,-12.5,'-\r\n"), "{csv}");
}

#[test]
fn null_text_fills_missing_fields() {
    let wd = workdir(10);
    wd.write("queries/files.toml", &files_query("null = \"NULL\""));
    assert_eq!(wd.run(&["run"]).code, 0);
    let csv = wd.read("output/files.csv");
    assert!(
        csv.ends_with("\r\nf0009,\"line one\r\nline two 9\",NULL\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("\r\nf0008,\"Say \"\"hi\"\" 8\",8007\r\n"),
        "a present field is unchanged: {csv}"
    );
}

#[test]
fn append_adds_rows_under_one_header() {
    let wd = workdir(2);
    wd.write(
        "queries/files.toml",
        &files_query("append = true\nbom = true"),
    );
    assert_eq!(wd.run(&["run"]).code, 0);
    assert_eq!(wd.run(&["run"]).code, 0);
    let rows = "f0000,\"Report, Q0\",7\r\nf0001,\"Say \"\"hi\"\" 1\",1007\r\n";
    assert_eq!(
        wd.read("output/files.csv"),
        format!("\u{feff}id,name,size\r\n{rows}{rows}")
    );

    // An empty file gets the header; a file without a final line end gets one.
    wd.write("output/files.csv", "");
    assert_eq!(wd.run(&["run"]).code, 0);
    assert_eq!(
        wd.read("output/files.csv"),
        format!("\u{feff}id,name,size\r\n{rows}")
    );
    wd.write("output/files.csv", "id,name,size\r\nold,row,1");
    assert_eq!(wd.run(&["run"]).code, 0);
    assert_eq!(
        wd.read("output/files.csv"),
        format!("id,name,size\r\nold,row,1\r\n{rows}")
    );
}

#[test]
fn append_refuses_a_different_header_and_keeps_the_file() {
    let wd = workdir(2);
    wd.write("queries/files.toml", &files_query("append = true"));
    wd.write("output/files.csv", "id,title\r\nx,y\r\n");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with(
        "error: files: cannot append to output/files.csv: its header is [\"id\", \"title\"] but this query writes \
         [\"id\", \"name\", \"size\"]; remove `append`, or move the old file away"
    ), "{}", run.stderr);
    assert_eq!(wd.read("output/files.csv"), "id,title\r\nx,y\r\n");
    assert_eq!(wd.list("output"), ["files.csv"]);
}

#[test]
fn run_wide_flags_apply_unless_a_query_says_otherwise() {
    let wd = workdir(10);
    wd.write("queries/plain.toml", &files_query(""));
    wd.write(
        "queries/own.toml",
        &files_query("bom = false\ndelimiter = \",\"\nheader = true"),
    );
    let run = wd.run(&[
        "run",
        "--delimiter",
        "\\t",
        "--bom",
        "--no-header",
        "--null",
        "NA",
        "--excel-safe",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let plain = wd.read("output/plain.csv");
    assert!(
        plain.starts_with("\u{feff}f0000\tReport, Q0\t7\r\n"),
        "{plain:?}"
    );
    assert!(
        plain.contains("\r\nf0004\t'=SUM(A1:A4)\t4007\r\n"),
        "{plain:?}"
    );
    assert!(plain.ends_with("\tNA\r\n"), "{plain:?}");
    let own = wd.read("output/own.csv");
    assert!(
        own.starts_with("id,name,size\r\nf0000,\"Report, Q0\",7\r\n"),
        "{own:?}"
    );
    assert!(
        own.ends_with(",NA\r\n"),
        "the query did not set null: {own:?}"
    );
}

#[test]
fn a_bad_delimiter_is_a_validation_error() {
    let wd = workdir(1);
    wd.write("queries/files.toml", &files_query("delimiter = \";;\""));
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stdout,
        "error  queries/files.toml:4: delimiter: \";;\" cannot be a delimiter: use one ASCII character such as \",\", \";\" or \"\\t\" (not a quote or line break)\n"
    );
}

#[test]
fn a_projects_csv_options_apply_to_the_outputs_that_take_them_and_are_no_error_for_others() {
    let wd = workdir(2);
    wd.write("gscrape.toml", "[run]\nexcel-safe = true\nbom = true\n");
    wd.write("queries/files.toml", &files_query(""));
    wd.write(
        "queries/lines.toml",
        &files_query("output = \"lines.ndjson\""),
    );
    wd.write("queries/book.toml", &files_query("output = \"book.xlsx\""));
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(wd
        .read("output/files.csv")
        .starts_with("\u{feff}id,name,size\r\n"));
    assert!(wd
        .read("output/lines.ndjson")
        .starts_with("{\"id\":\"f0000\""));
    // The same options given as flags are still refused for the outputs they do not fit.
    let run = wd.run(&["validate", "--bom"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "--bom is an option of CSV and TSV files, and book writes xlsx, lines writes ndjson"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_csv_with_cells_a_spreadsheet_would_run_says_how_many_and_the_fix() {
    let wd = workdir(3);
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", { name = \"note\", value = \"=HYPERLINK(\\\"x\\\")\" }, \
         { name = \"n\", value = \"-12.5\" }]\n[params]\npageSize = 4\n",
    );
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "warning: files: output/files.csv has 3 cells a spreadsheet would run as a formula \
             (beginning with =, +, - or @): set `excel_safe = true` in queries/files.toml (or \
             --excel-safe), or write .xlsx\n"
        ),
        "{}",
        run.stderr
    );
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(
        summary["queries"][0]["formula_cells"], 3,
        "numbers are not counted"
    );
    // With the guard, the cells are safe and nothing is said.
    let run = wd.run(&["run", "--excel-safe"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("formula"), "{}", run.stderr);
    assert!(wd
        .read("output/files.csv")
        .contains(",\"'=HYPERLINK(\"\"x\"\")\",-12.5\r\n"));
}
