//! The record every run keeps (`runs/` under the state directory, and `--summary-json`): what
//! each query asked of Google, beside what it got, valid against docs/manifest.schema.json.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::pytools;
use crate::support::{Workdir, TODAY};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
                     columns = [\"id\", \"name\"]\noutput = \"files_{{ today }}.csv\"\n\
                     [vars]\nkind = \"application/pdf\"\nsize = \"100\"\n\
                     [params]\npageSize = \"{{ size }}\"\nq = \"mimeType = '{{ kind }}'\"\n";

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The records kept under `output/.gscrape/runs/`, oldest first.
fn kept(wd: &Workdir) -> Vec<Value> {
    let mut names = wd.list("output/.gscrape/runs");
    names.sort();
    names
        .iter()
        .map(|n| serde_json::from_str(&wd.read(&format!("output/.gscrape/runs/{n}"))).unwrap())
        .collect()
}

/// Validates `record` against docs/manifest.schema.json with Python's `jsonschema`.
fn assert_valid(test: &str, record: &Value) {
    let Some(tools) = pytools::require(test, &["jsonschema"]) else {
        return;
    };
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/manifest.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.json");
    std::fs::write(&path, record.to_string()).unwrap();
    let output = std::process::Command::new(tools.python())
        .arg("-c")
        .arg(
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(json.load(open(sys.argv[2])))\n",
        )
        .arg(&schema)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the record does not match its schema: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_run_keeps_a_record_of_what_each_query_asked_and_got() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&[
        "run",
        "--var",
        "size=50",
        "--summary-json",
        "output/summary_{{ today }}.json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // The summary's name is rendered; the same record is kept under runs/.
    let summary: Value =
        serde_json::from_str(&wd.read(&format!("output/summary_{TODAY}.json"))).unwrap();
    let records = kept(&wd);
    assert_eq!(records, std::slice::from_ref(&summary));
    assert_eq!(summary["manifest_version"], 1);
    assert_eq!(summary["exit_code"], 0);
    let command: Vec<&str> = summary["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command[1..3], ["run", "--var"]);
    let name = &wd.list("output/.gscrape/runs")[0];
    let run_id = summary["run_id"].as_str().unwrap();
    assert!(name.ends_with(&format!("-{run_id}.json")), "{name}");

    let query = &summary["queries"][0];
    let output = wd.read(&format!("output/files_{TODAY}.csv"));
    assert_eq!(query["sha256"], sha256(output.as_bytes()));
    let asked = &query["asked"];
    assert_eq!(asked["file"], "queries/files.toml");
    assert_eq!(asked["file_sha256"], sha256(FILES.as_bytes()));
    assert_eq!(asked["method"], "drive.files.list");
    assert_eq!(asked["discovery"]["revision"], "20261106");
    assert_eq!(asked["discovery"]["pinned"], false);
    assert_eq!(asked["discovery"]["sha256"].as_str().unwrap().len(), 64);
    assert!(asked["request"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/drive/v3/files"));
    assert_eq!(asked["request"]["rendered"], true);
    let params = &asked["request"]["params"];
    assert!(
        params
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == &serde_json::json!(["pageSize", "50"])),
        "{params}"
    );
    assert!(
        (params.as_array().unwrap().iter())
            .any(|p| p == &serde_json::json!(["q", "mimeType = 'application/pdf'"])),
        "{params}"
    );
    assert_eq!(asked["columns"], serde_json::json!(["id", "name"]));
    assert_eq!(
        asked["vars"]["size"],
        serde_json::json!({"value": "50", "from": "--var"})
    );
    assert_eq!(
        asked["vars"]["kind"],
        serde_json::json!({"value": "application/pdf", "from": "vars"})
    );
    assert_eq!(asked["today"], TODAY);
    assert_eq!(
        asked["credential"], "access token from GSCRAPE_ACCESS_TOKEN",
        "what the credential is, never its secret"
    );
    assert_valid(
        "every_run_keeps_a_record_of_what_each_query_asked_and_got",
        &summary,
    );
}

#[test]
fn a_run_that_fails_early_keeps_its_record_and_only_the_newest_records_are_kept() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&["run", "--from", "2024-03-02", "--to", "2024-03-01"]);
    assert_eq!(run.code, 2, "{run:?}");
    let records = kept(&wd);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["exit_code"], 2);
    assert_eq!(records[0]["failure"], "bad_input");
    assert_eq!(
        records[0]["error"],
        "--from 2024-03-02 is after --to 2024-03-01"
    );
    assert_valid(
        "a_run_that_fails_early_keeps_its_record_and_only_the_newest_records_are_kept",
        &records[0],
    );
    for _ in 0..3 {
        assert_eq!(wd.run(&["run", "--keep-runs", "2"]).code, 0);
    }
    let records = kept(&wd);
    assert_eq!(records.len(), 2, "the newest two");
    assert!(records.iter().all(|r| r["exit_code"] == 0));
}

#[test]
fn rerun_of_a_record_says_each_output_is_the_same_or_names_its_first_differing_row() {
    let wd = crate::support::Workdir::with_config(crate::support::Config {
        drive_files: 30,
        ..crate::support::Config::default()
    });
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&["run", "--var", "size=10", "--summary-json", "record.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let record: Value = serde_json::from_str(&wd.read("record.json")).unwrap();
    let sha = record["queries"][0]["sha256"].as_str().unwrap().to_owned();

    // Over the same data: every output the same, written apart.
    let rerun = wd.run(&["rerun", "record.json", "--out-dir", "again"]);
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(
        rerun
            .stderr
            .contains(&format!("same      files: sha256 {sha}\n")),
        "{}",
        rerun.stderr
    );
    assert_eq!(
        wd.read(&format!("again/files_{TODAY}.csv")),
        wd.read(&format!("output/files_{TODAY}.csv"))
    );

    // Over changed data: the output and its first differing row are named.
    wd.google.configure(|c| c.drive_files = 31);
    let rerun = wd.run(&["rerun", "record.json", "--out-dir", "changed"]);
    assert_eq!(rerun.code, 1, "{rerun:?}");
    let said = rerun
        .stderr
        .lines()
        .find(|l| l.starts_with("DIFFERENT files: "))
        .unwrap_or_else(|| panic!("{}", rerun.stderr));
    // (The fake's 31st file is new at the end: the record's file ends where it begins.)
    assert!(
        said.contains(&format!("the record's {sha}; first difference at line "))
            && said.contains(": the record's \"\", now \"f0030,"),
        "{said}"
    );

    // A query file changed since the run is refused: it would not be the same run.
    wd.write("queries/files.toml", &FILES.replace("100", "200"));
    let rerun = wd.run(&["rerun", "record.json", "--out-dir", "edited"]);
    assert_eq!(rerun.code, 2, "{rerun:?}");
    assert!(
        rerun.stderr.starts_with(
            "error: queries/files.toml is not the file the run read (its SHA-256 was "
        ),
        "{}",
        rerun.stderr
    );
}

#[test]
fn a_described_csv_is_a_data_package_that_frictionless_validates_typed() {
    let wd = crate::support::Workdir::with_config(crate::support::Config {
        drive_files: 25,
        ..crate::support::Config::default()
    });
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", \"name\", \"size\", \"starred\", \"createdTime\"]\n\
         merge_key = [\"id\"]\n[params]\npageSize = 10\n",
    );
    let run = wd.run(&["run", "--describe-tables"]);
    assert_eq!(run.code, 0, "{run:?}");
    let package: Value = serde_json::from_str(&wd.read("output/datapackage.json")).unwrap();
    let resource = &package["resources"][0];
    assert_eq!(resource["path"], "files.csv");
    assert_eq!(
        resource["hash"],
        format!("sha256:{}", sha256(wd.read("output/files.csv").as_bytes()))
    );
    let types: Vec<(&str, &str)> = resource["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", "string"),
            ("name", "string"),
            ("size", "integer"),
            ("starred", "boolean"),
            ("createdTime", "datetime")
        ]
    );
    assert_eq!(resource["schema"]["primaryKey"], serde_json::json!(["id"]));
    assert!(
        resource["schema"]["fields"][2]["description"]
            .as_str()
            .is_some_and(|d| d.contains("bytes")),
        "the field's Discovery description: {resource}"
    );
    let test = "a_described_csv_is_a_data_package_that_frictionless_validates_typed";
    let Some(tools) = pytools::require(test, &["frictionless"]) else {
        return;
    };
    let output = std::process::Command::new(tools.venv.join("bin/frictionless"))
        .args(["validate", "--json", "datapackage.json"])
        .current_dir(wd.path().join("output"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(report["valid"], true, "{report:#}");
    // Its rows read back typed: an integer, a boolean, a date-time.
    let read = std::process::Command::new(tools.python())
        .arg("-c")
        .arg(
            "import json, frictionless\n\
             rows = frictionless.Package('datapackage.json').get_resource('files').read_rows()\n\
             r = rows[1]\n\
             print(json.dumps([type(r['size']).__name__, type(r['starred']).__name__, type(r['createdTime']).__name__, len(rows)]))\n",
        )
        .current_dir(wd.path().join("output"))
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let read: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(read, serde_json::json!(["int", "bool", "datetime", 25]));
}

#[test]
fn a_query_says_whether_its_table_is_described_over_the_run() {
    let wd = crate::support::Workdir::new();
    let query = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
                 columns = [\"id\", \"size\"]\n";
    wd.write(
        "queries/a.toml",
        &format!("{query}describe_tables = true\n"),
    );
    wd.write("queries/b.toml", query);
    assert_eq!(wd.run(&["run"]).code, 0);
    let package: Value = serde_json::from_str(&wd.read("output/datapackage.json")).unwrap();
    let paths: Vec<&str> = (package["resources"].as_array().unwrap().iter())
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["a.csv"], "only the query that asks");
    wd.write(
        "queries/a.toml",
        &format!("{query}describe_tables = false\n"),
    );
    assert_eq!(wd.run(&["run", "--describe-tables"]).code, 0);
    let package: Value = serde_json::from_str(&wd.read("output/datapackage.json")).unwrap();
    let paths: Vec<&str> = (package["resources"].as_array().unwrap().iter())
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["b.csv"],
        "b is listed now; a, rewritten undescribed, is no longer (its hash would be stale)"
    );
}
