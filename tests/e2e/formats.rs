//! Output formats by name and `format`: TSV, NDJSON (records as sent, or typed columns), gzip,
//! standard output; each read back exactly, and the summary's proof of each file.

use std::io::Read;

use serde_json::Value;

use crate::support::fake_google::drive_file;
use crate::support::{Config, Workdir};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";

fn workdir(files: usize) -> Workdir {
    Workdir::with_config(Config {
        drive_files: files,
        ..Config::default()
    })
}

fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn ndjson_records_as_sent_and_typed_columns_gzip_tsv_and_the_proof() {
    let wd = workdir(5);
    wd.write(
        "queries/raw.toml",
        &format!("{FILES}output = \"raw.ndjson\"\n[params]\npageSize = 2\n"),
    );
    wd.write(
        "queries/typed.toml",
        &format!(
            "{FILES}output = \"typed.txt\"\nformat = \"ndjson\"\n\
             columns = [\"id\", \"size\", \"starred\", \"owners.emailAddress\", \"properties\", \
             {{ name = \"where\", value = \"fake\" }}]\n"
        ),
    );
    wd.write(
        "queries/zipped.toml",
        &format!("{FILES}output = \"zipped.jsonl.gz\"\ncolumns = [\"id\"]\n"),
    );
    wd.write(
        "queries/tabs.toml",
        &format!("{FILES}output = \"tabs.tsv.gz\"\ncolumns = [\"id\", \"name\"]\n"),
    );
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");

    // Each record exactly as the API sent it, one a line.
    let raw = wd.read("output/raw.ndjson");
    let expected: String = (0..5)
        .map(|i| format!("{}\n", serde_json::to_string(&drive_file(i)).unwrap()))
        .collect();
    assert_eq!(raw, expected);

    let typed = wd.read("output/typed.txt");
    let lines: Vec<Value> = typed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[0],
        serde_json::json!({"id": "f0000", "size": "7", "starred": true,
            "owners.emailAddress": "owner0@example.com", "properties": {"project": "p0"},
            "where": "fake"})
    );
    // Column order kept on every line.
    assert!(typed.starts_with("{\"id\":\"f0000\",\"size\":\"7\",\"starred\":true,"));

    let zipped = gunzip(&std::fs::read(wd.path().join("output/zipped.jsonl.gz")).unwrap());
    assert_eq!(
        zipped,
        (0..5)
            .map(|i| format!("{{\"id\":\"f{i:04}\"}}\n"))
            .collect::<String>()
    );
    let tabs = gunzip(&std::fs::read(wd.path().join("output/tabs.tsv.gz")).unwrap());
    assert!(
        tabs.starts_with("id\tname\r\nf0000\tReport, Q0\r\n"),
        "{tabs:?}"
    );

    // The summary proves each file.
    let summary: Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    for query in summary["queries"].as_array().unwrap() {
        let path = wd.path().join(query["output"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(query["rows"], 5, "{query}");
        assert_eq!(query["bytes"], bytes.len(), "{query}");
        assert_eq!(query["sha256"], sha256(&bytes), "{query}");
        let short = format!("{} bytes, sha256 {}", bytes.len(), &sha256(&bytes)[..12]);
        assert!(run.stderr.contains(&short), "{short} in {}", run.stderr);
    }
}

#[test]
fn stdout_for_one_query() {
    let wd = workdir(3);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"files.ndjson\"\ncolumns = [\"id\"]\n"),
    );
    let run = wd.run(&["run", "--output", "-", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "{\"id\":\"f0000\"}\n{\"id\":\"f0001\"}\n{\"id\":\"f0002\"}\n"
    );
    assert!(!wd.exists("output/files.ndjson"));
    let summary: Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(summary["queries"][0]["output"], "-");
    assert_eq!(summary["queries"][0]["bytes"], run.stdout.len());
    assert_eq!(
        summary["queries"][0]["sha256"],
        sha256(run.stdout.as_bytes())
    );

    // CSV by default.
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = false\ncolumns = [\"id\"]\n"),
    );
    let run = wd.run(&["run", "--output", "-"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "id\r\nf0000\r\nf0001\r\nf0002\r\n");

    // Refused for two queries.
    wd.write("queries/more.toml", &format!("{FILES}columns = [\"id\"]\n"));
    let run = wd.run(&["run", "--output", "-"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--output - writes one query"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty());
    let run = wd.run(&["run", "--output", "-", "--only", "more"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("id\r\n"));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let wd = workdir(400);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}columns = [\"id\", \"name\"]\n[params]\npageSize = 100\n"),
    );
    let mut child = wd
        .command(&["run", "--output", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 3];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"id,");
    drop(stdout);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn unknown_or_contradicting_formats_are_refused() {
    let wd = workdir(1);
    wd.write("queries/a.toml", &format!("{FILES}format = \"avro\"\n"));
    wd.write(
        "queries/b.toml",
        &format!("{FILES}output = \"b.csv\"\nformat = \"ndjson\"\n"),
    );
    wd.write(
        "queries/c.toml",
        &format!("{FILES}output = \"c.ndjson.gz\"\nappend = true\n"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("\"avro\" is not a format gscrape writes"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("\"b.csv\" names a csv file but `format = \"ndjson\"`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("only a plain CSV or TSV file is appended to"),
        "{}",
        run.stderr
    );
}
