//! One JSON truth, end to end: a hostile server's page means the same on every path — cells
//! taken from the text by the scan (CSV and xlsx with plain columns), records parsed by
//! serde_json (NDJSON, `explode`, a `where` filter) — and what serde_json refuses, every
//! format refuses with the same line and exit 1, the previous output kept.

use crate::support::{Config, Run, Workdir};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";

/// The ways one page is read: by the scan (narrow columns, default columns) and by serde_json
/// (records as sent, typed columns, `explode`, a filter keeping every record).
const PATHS: &[(&str, &str)] = &[
    (
        "scan",
        "output = \"files.csv\"\ncolumns = [\"id\", \"name\", \"owners.emailAddress\", \"size\"]\n",
    ),
    ("default-columns", "output = \"files.csv\"\n"),
    (
        "tsv",
        "output = \"files.tsv\"\ncolumns = [\"id\", \"name\", \"owners.emailAddress\", \"size\"]\n",
    ),
    (
        "xlsx",
        "output = \"files.xlsx\"\ncolumns = [\"id\", \"name\", \"owners.emailAddress\", \"size\"]\n",
    ),
    ("ndjson", "output = \"files.ndjson\"\n"),
    (
        "typed-ndjson",
        "output = \"files.ndjson\"\ncolumns = [\"id\", \"name\", \"owners.emailAddress\", \"size\"]\n",
    ),
    (
        "explode",
        "output = \"files.csv\"\nexplode = \"owners\"\ncolumns = [\"id\", \"name\", \"owners.emailAddress\", \"size\"]\n",
    ),
    (
        "filter",
        "output = \"files.csv\"\nwhere = \"true\"\ncolumns = [\"id\", \"name\", \"owners.emailAddress\", \"size\"]\n",
    ),
];

/// A work dir whose fake Drive answers every list with `page`.
fn serving(page: &str) -> Workdir {
    Workdir::with_config(Config {
        drive_raw_page: Some(page.to_owned()),
        ..Config::default()
    })
}

/// Runs the query of `path` (one of [`PATHS`]) alone.
fn run_path(wd: &Workdir, path: &str) -> Run {
    let (_, settings) = PATHS.iter().find(|(name, _)| *name == path).unwrap();
    wd.write(
        &format!("q-{path}/files.toml"),
        &format!("{FILES}{settings}"),
    );
    wd.run(&["run", &format!("q-{path}")])
}

/// The first line of a failed run, without what is said of the output file, and with the URL
/// (whose `fields` differ with the columns) as `<url>` once it is checked.
fn reason(run: &Run) -> String {
    let line = run.stderr.lines().next().unwrap_or_default();
    let line = line.split(" (output/").next().unwrap();
    let line = line.split("; the export is checkpointed").next().unwrap();
    match line.split_once("the response of ") {
        Some((before, rest)) => {
            let (url, after) = rest.split_once(' ').unwrap();
            assert!(url.contains("/drive/v3/files?"), "names the URL: {line}");
            format!("{before}the response of <url> {after}")
        }
        None => line.to_owned(),
    }
}

/// A page for a message: its start, and its length.
fn short(page: &str) -> String {
    match page.char_indices().nth(120) {
        Some((at, _)) => format!("{}… ({} bytes)", &page[..at], page.len()),
        None => page.to_owned(),
    }
}

/// Every path fails on `page` with exit 1 and one and the same reason, which must contain
/// `expected`; returns it.
fn refused_alike(page: &str, expected: &str) -> String {
    let wd = serving(page);
    let mut reasons = Vec::new();
    for (path, _) in PATHS {
        let run = run_path(&wd, path);
        let page = short(page);
        assert_eq!(run.code, 1, "{path} on {page:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        let reason = reason(&run);
        assert!(reason.contains(expected), "{path} on {page:?}: {reason}");
        assert!(
            reason.len() < 400,
            "{path}: one short line: {} chars",
            reason.len()
        );
        reasons.push((path, reason));
    }
    let (_, first) = &reasons[0];
    for (path, reason) in &reasons {
        assert_eq!(
            reason,
            first,
            "{path} and scan disagree on {:?}",
            short(page)
        );
    }
    // Nothing was left behind but what a checkpoint names.
    let out = wd.path().join("output");
    let named = wd.checkpointed_temp_files(&out);
    for name in wd.list("output") {
        if name.ends_with(".tmp") {
            assert!(
                named.iter().any(|p| p.ends_with(&name)),
                "stray temp file {name}"
            );
        }
    }
    first.clone()
}

#[test]
fn nesting_a_million_deep_fails_in_one_line_on_every_path() {
    for depth in [60_000, 1_000_000] {
        let deep = format!("{}\"root\"{}", "[".repeat(depth), "]".repeat(depth));
        for page in [
            format!("{{\"files\":[{{\"id\":\"a\",\"parents\":{deep}}}]}}"),
            format!("{{\"files\":[{{\"id\":\"a\",\"owners\":{deep}}}]}}"),
        ] {
            refused_alike(&page, "nested more than 127 deep at line 1 column");
        }
    }
    // Just below the limit is read, above it refused, on every path alike.
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let page = |depth| {
        format!(
            "{{\"files\":[{{\"id\":\"a\",\"parents\":{}}}]}}",
            nested(depth)
        )
    };
    refused_alike(&page(125), "nested more than 127 deep");
    let wd = serving(&page(124));
    for path in ["scan", "default-columns", "ndjson"] {
        assert_eq!(run_path(&wd, path).code, 0, "{path}");
    }
}

#[test]
fn invalid_json_is_refused_alike_where_no_column_reads_it() {
    for (token, words) in [
        ("tru", "expected ident"),
        ("NaN", "expected value"),
        ("01", "invalid number"),
        ("[1}", "expected `,` or `]`"),
        ("[1,,2]", "expected value"),
        ("\"\\x41\"", "invalid escape"),
        (
            "\"a\u{1}b\"",
            "control character (\\u0000-\\u001F) found while parsing a string",
        ),
        ("\"\\ud800\"", "unexpected end of hex escape"),
        ("{\"a\" 1}", "expected `:`"),
    ] {
        // In a field no column reads, in the middle of the records.
        let page = format!(
            "{{\"files\":[{{\"id\":\"a\",\"name\":\"n\"}},{{\"id\":\"b\",\"skipped\":{token},\"name\":\"m\"}}]}}"
        );
        refused_alike(&page, words);
        // In a field the columns read.
        let page = format!("{{\"files\":[{{\"id\":\"a\",\"name\":{token}}}]}}");
        refused_alike(&page, words);
    }
}

#[test]
fn errors_are_placed_in_the_page_not_in_the_value() {
    let page = "{\"kind\":\"drive#fileList\",\"files\":[{\"id\":\"a\",\"name\":\"bad \\q\"}]}";
    // Where serde_json says, reading the whole page: past the `q`, not column 8 of the value.
    let whole = serde_json::from_str::<serde_json::Value>(page).unwrap_err();
    assert_eq!(whole.to_string(), "invalid escape at line 1 column 58");
    refused_alike(
        page,
        "is not a page of JSON records: invalid escape at line 1 column 58",
    );
}

#[test]
fn a_response_that_is_not_an_object_is_refused_alike() {
    for (page, words) in [
        (
            "[{\"id\":\"a\"}]",
            "the response is an array, not a JSON object",
        ),
        (
            "\"s\"",
            "the response is the string \"s\", not a JSON object",
        ),
        ("42", "the response is the number 42, not a JSON object"),
        ("null", "the response is null, not a JSON object"),
        (
            "true",
            "the response is the boolean true, not a JSON object",
        ),
        (
            "{\"files\":{\"id\":\"a\"}}",
            "`files` is an object, not an array of records",
        ),
        (
            "{\"files\":[{\"id\":\"a\"},7]}",
            "record 2 of `files` is the number 7, not a JSON object",
        ),
    ] {
        refused_alike(page, words);
    }
}

/// The output of each path on a page it accepts.
fn outputs(page: &str, paths: &[&str]) -> Vec<(String, String)> {
    let wd = serving(page);
    paths
        .iter()
        .map(|path| {
            let run = run_path(&wd, path);
            assert_eq!(run.code, 0, "{path}: {run:?}");
            let name = if path.contains("ndjson") {
                "output/files.ndjson"
            } else {
                "output/files.csv"
            };
            (path.to_string(), wd.read(name))
        })
        .collect()
}

#[test]
fn a_repeated_key_keeps_its_last_value_on_every_path() {
    let page = "{\"files\":[{\"id\":\"a\",\"name\":\"first\",\"size\":\"1\",\"name\":\"last\",\
        \"owners\":[{\"emailAddress\":\"x@a\",\"emailAddress\":\"y@a\"}]}],\"nextPageToken\":\"t\",\"nextPageToken\":null}";
    let expected = "id,name,owners.emailAddress,size\r\na,last,y@a,1\r\n";
    for (path, csv) in outputs(page, &["scan", "filter", "explode"]) {
        assert_eq!(csv, expected, "{path}");
    }
    // Records named twice: the last array is the page's records, as serde_json reads it.
    let page = "{\"files\":[{\"id\":\"old\"}],\"files\":[{\"id\":\"b\",\"name\":\"n\"}]}";
    for (path, csv) in outputs(page, &["scan", "filter"]) {
        assert_eq!(
            csv, "id,name,owners.emailAddress,size\r\nb,n,,\r\n",
            "{path}"
        );
    }
    let raw = &outputs(page, &["ndjson"])[0].1;
    assert_eq!(raw, "{\"id\":\"b\",\"name\":\"n\"}\n");
}

#[test]
fn numbers_are_written_as_google_sent_them() {
    let page = "{\"files\":[{\"id\":\"a\",\"size\":123456789012345678901234567890,\
        \"name\":-0,\"owners\":[{\"emailAddress\":1.50},{\"emailAddress\":18446744073709551616}]}]}";
    let csv = "id,name,owners.emailAddress,size\r\na,-0,1.50;18446744073709551616,123456789012345678901234567890\r\n";
    for (path, text) in outputs(page, &["scan", "filter", "explode", "typed-ndjson"]) {
        match path.as_str() {
            "explode" => assert_eq!(
                text,
                "id,name,owners.emailAddress,size\r\n\
                 a,-0,1.50,123456789012345678901234567890\r\n\
                 a,-0,18446744073709551616,123456789012345678901234567890\r\n"
            ),
            "typed-ndjson" => assert_eq!(
                text,
                "{\"id\":\"a\",\"name\":-0,\"owners.emailAddress\":[1.50,18446744073709551616],\
                 \"size\":123456789012345678901234567890}\n"
            ),
            _ => assert_eq!(text, csv, "{path}"),
        }
    }
    // An object cell keeps them too (default columns write `owners` whole).
    let wd = serving(page);
    let run = run_path(&wd, "default-columns");
    assert_eq!(run.code, 0, "{run:?}");
    let text = wd.read("output/files.csv");
    assert!(
        text.contains(
            "\"[{\"\"emailAddress\"\":1.50},{\"\"emailAddress\"\":18446744073709551616}]\""
        ),
        "{text}"
    );
    // xlsx: a double cannot hold the 30 digits, so the cell is their text.
    let run = run_path(&wd, "xlsx");
    assert_eq!(run.code, 0, "{run:?}");
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> = calamine::open_workbook(wd.path().join("output/files.xlsx")).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(
        range.get((1, 3)),
        Some(&Data::String("123456789012345678901234567890".into()))
    );
}
