//! Parquet files, read back with real readers — pyarrow and DuckDB from PyPI
//! (`support/pytools.rs`; skipped with a SKIPPED line where they cannot be installed): the
//! column types from the Discovery schema, exact values, nulls where a record has no value,
//! row groups with statistics, the atomic replace, `gs://` objects, and what is refused.

use serde_json::{json, Value};

use crate::support::fake_gcs::FakeGcs;
use crate::support::fake_google::{drive_file, drive_long_version};
use crate::support::pytools::{self, PyTools};
use crate::support::{Config, Run, Workdir, TOKEN};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";

/// Prints one JSON object about the Parquet file argv[1]: rows, row groups, each column's
/// arrow type and Parquet logical type, its values (date-times and dates in ISO form), the
/// statistics of each row group's column chunks, and DuckDB's `typeof` of each column.
const READ: &str = r#"
import json, sys, datetime
import pyarrow.parquet as pq
import duckdb
path = sys.argv[1]
f = pq.ParquetFile(path)
table = f.read()
def plain(v):
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode()
    return v
out = {
    "rows": table.num_rows,
    "row_groups": f.metadata.num_row_groups,
    "types": {field.name: str(field.type) for field in table.schema},
    "logical": {f.schema.column(i).name: str(f.schema.column(i).logical_type) for i in range(len(f.schema))},
    "values": {name: [plain(v) for v in table.column(name).to_pylist()] for name in table.column_names},
    "stats": [[{"min_max": c.statistics is not None and c.statistics.has_min_max,
                "nulls": c.statistics.null_count if c.statistics is not None else None,
                "min": plain(c.statistics.min) if c.statistics is not None and c.statistics.has_min_max else None,
                "compression": c.compression}
               for c in (f.metadata.row_group(g).column(j) for j in range(f.metadata.num_columns))]
              for g in range(f.metadata.num_row_groups)],
}
con = duckdb.connect()
quoted = lambda n: '"' + n.replace('"', '""') + '"'
cols = ", ".join("typeof(%s)" % quoted(n) for n in table.column_names)
out["duckdb_types"] = list(con.execute("SELECT %s FROM read_parquet(?) LIMIT 1" % cols, [path]).fetchone()) if table.num_rows else []
out["duckdb_count"] = con.execute("SELECT count(*) FROM read_parquet(?)", [path]).fetchone()[0]
print(json.dumps(out))
"#;

fn tools(test: &str) -> Option<PyTools> {
    pytools::require(test, &["pyarrow", "duckdb"])
}

/// What [`READ`] says of the Parquet file `path`.
fn read_back(tools: &PyTools, path: &std::path::Path) -> Value {
    let output = std::process::Command::new(tools.python())
        .arg("-c")
        .arg(READ)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the reader failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn run_env(wd: &Workdir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = wd.command(args);
    for (key, value) in env {
        command.env(key, value);
    }
    crate::support::finish(command.output().unwrap())
}

#[test]
fn a_parquet_export_has_typed_columns_exact_values_and_nulls() {
    let Some(tools) = tools("a_parquet_export_has_typed_columns_exact_values_and_nulls") else {
        return;
    };
    let wd = Workdir::new();
    wd.google.configure(|c| {
        c.drive_files = 30;
        c.drive_long_versions = true;
    });
    wd.write(
        "queries/files.toml",
        &format!(
            "{FILES}output = \"files.parquet\"\ncolumns = [\"id\", \"name\", \"size\", \"starred\", \
             \"createdTime\", \"version\", \"owners.emailAddress\", \"parents\", \
             \"imageMediaMetadata.aperture\"]\n"
        ),
    );
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "the column `version` is a string column, not INT64: its first row group holds \
             100000136831429000000 (every value kept exact, as text)"
        ),
        "the user is told why: {}",
        run.stderr
    );
    let path = wd.path().join("output/files.parquet");
    let file = read_back(&tools, &path);
    assert_eq!(file["rows"], 30);
    assert_eq!(file["duckdb_count"], 30);
    assert_eq!(
        file["types"],
        json!({
            "id": "string", "name": "string", "size": "int64", "starred": "bool",
            "createdTime": "timestamp[us, tz=UTC]", "version": "string",
            "owners.emailAddress": file["types"]["parents"].clone(), "parents": file["types"]["parents"].clone(),
            "imageMediaMetadata.aperture": "double",
        })
    );
    let json_type = file["types"]["parents"].as_str().unwrap();
    assert!(
        json_type == "string" || json_type.contains("json"),
        "JSON text: {json_type}"
    );
    assert_eq!(file["logical"]["parents"], "JSON");
    assert_eq!(file["logical"]["owners.emailAddress"], "JSON");
    assert_eq!(file["logical"]["id"], "String");
    assert_eq!(
        file["duckdb_types"],
        json!([
            "VARCHAR",
            "VARCHAR",
            "BIGINT",
            "BOOLEAN",
            "TIMESTAMP WITH TIME ZONE",
            "VARCHAR",
            "JSON",
            "JSON",
            "DOUBLE"
        ])
    );
    let values = &file["values"];
    for i in 0..30 {
        let expected = drive_file(i);
        assert_eq!(values["id"][i], format!("f{i:04}"));
        assert_eq!(values["name"][i], expected["name"]);
        match expected.get("size").and_then(Value::as_str) {
            Some(size) => assert_eq!(values["size"][i], size.parse::<i64>().unwrap()),
            None => assert_eq!(values["size"][i], Value::Null, "absent: null"),
        }
        assert_eq!(values["starred"][i], i % 3 == 0);
        let created =
            chrono::DateTime::parse_from_rfc3339(expected["createdTime"].as_str().unwrap())
                .unwrap()
                .to_utc();
        assert_eq!(
            values["createdTime"][i],
            created.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
        );
        assert_eq!(
            values["version"][i],
            drive_long_version(i),
            "21 digits stay exact, as text"
        );
        let owners: Value =
            serde_json::from_str(values["owners.emailAddress"][i].as_str().unwrap()).unwrap();
        assert_eq!(owners, json!([format!("owner{}@example.com", i % 5)]));
        let parents: Value = serde_json::from_str(values["parents"][i].as_str().unwrap()).unwrap();
        assert_eq!(parents, expected["parents"]);
        assert_eq!(values["imageMediaMetadata.aperture"][i], Value::Null);
    }
    let summary: Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    assert_eq!(summary["queries"][0]["bytes"], bytes);
    assert_eq!(summary["queries"][0]["rows"], 30);
    assert_eq!(file["stats"][0][0]["compression"], "ZSTD");
    assert_eq!(
        wd.list("output"),
        ["files.parquet"],
        "no temporary file left"
    );
}

#[test]
fn dates_and_date_times_of_calendar_events_and_format_by_key() {
    let Some(tools) = tools("dates_and_date_times_of_calendar_events_and_format_by_key") else {
        return;
    };
    let wd = Workdir::new();
    wd.write(
        "queries/events.toml",
        "api = \"calendar\"\nversion = \"v3\"\nmethod = \"calendar.events.list\"\n\
         output = \"events\"\nformat = \"parquet\"\n\
         columns = [\"id\", \"start.date\", \"start.dateTime\", \"attendees\"]\n\
         [params]\ncalendarId = \"primary\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let file = read_back(&tools, &wd.path().join("output/events"));
    assert_eq!(file["rows"], 5);
    assert_eq!(file["types"]["start.date"], "date32[day]");
    assert_eq!(file["types"]["start.dateTime"], "timestamp[us, tz=UTC]");
    let values = &file["values"];
    assert_eq!(
        values["start.date"],
        json!([null, null, "2025-03-03", null, null]),
        "event 2 lasts all day"
    );
    assert_eq!(values["start.dateTime"][0], "2025-03-01T09:00:00+00:00");
    assert_eq!(values["start.dateTime"][2], Value::Null);
    let attendees: Value = serde_json::from_str(values["attendees"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        attendees,
        json!([{"email": "a@example.com"}, {"email": "b@example.com"}])
    );
}

#[test]
fn row_groups_are_bounded_and_each_has_statistics() {
    let Some(tools) = tools("row_groups_are_bounded_and_each_has_statistics") else {
        return;
    };
    let wd = Workdir::with_config(Config {
        drive_files: 25,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"files.parquet\"\ncolumns = [\"id\", \"size\", \"createdTime\"]\n[params]\npageSize = 4\n"),
    );
    let run = run_env(&wd, &["run"], &[("GSCRAPE_PARQUET_ROW_GROUP_ROWS", "10")]);
    assert_eq!(run.code, 0, "{run:?}");
    let file = read_back(&tools, &wd.path().join("output/files.parquet"));
    assert_eq!(file["rows"], 25);
    assert_eq!(file["row_groups"], 3, "10 + 10 + 5 rows");
    for (g, group) in file["stats"].as_array().unwrap().iter().enumerate() {
        for (c, chunk) in group.as_array().unwrap().iter().enumerate() {
            assert_eq!(chunk["min_max"], true, "row group {g}, column {c}");
        }
    }
    // Sizes: 7, 1007, … (file 9, 19 have none): the second group starts at file 10.
    assert_eq!(file["stats"][1][0]["min"], "f0010");
    assert_eq!(file["stats"][1][1]["min"], 10007);
    assert_eq!(file["stats"][1][1]["nulls"], 1, "file 19 has no size");
    let sizes: Vec<Value> = (0..25)
        .map(
            |i| match drive_file(i).get("size").and_then(Value::as_str) {
                Some(size) => json!(size.parse::<i64>().unwrap()),
                None => Value::Null,
            },
        )
        .collect();
    assert_eq!(file["values"]["size"], json!(sizes));
}

#[test]
fn a_failed_run_leaves_the_previous_parquet_file_byte_identical() {
    let wd = Workdir::with_config(Config {
        drive_files: 60,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"files.parquet\"\ncolumns = [\"id\", \"size\"]\n[params]\npageSize = 10\n"),
    );
    let env = [("GSCRAPE_PARQUET_ROW_GROUP_ROWS", "5")];
    let run = run_env(&wd, &["run"], &env);
    assert_eq!(run.code, 0, "{run:?}");
    let before = std::fs::read(wd.path().join("output/files.parquet")).unwrap();
    assert_eq!(&before[..4], b"PAR1");
    assert_eq!(&before[before.len() - 4..], b"PAR1");
    // Row groups of the second run are written before its fourth page fails.
    wd.google.configure(|c| c.drive_fail_page = Some(4));
    let run = run_env(&wd, &["run"], &env);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("(output/files.parquet left unchanged)"),
        "{}",
        run.stderr
    );
    let after = std::fs::read(wd.path().join("output/files.parquet")).unwrap();
    assert!(after == before, "the old file is kept byte for byte");
    assert_eq!(
        wd.list("output"),
        ["files.parquet"],
        "no temporary file left"
    );
    // --resume starts a Parquet file again (it cannot be taken up mid-way), and completes it.
    wd.google.configure(|c| c.drive_fail_page = None);
    let run = run_env(&wd, &["run", "--resume"], &env);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(std::fs::read(wd.path().join("output/files.parquet")).unwrap() == before);
}

#[test]
fn a_parquet_object_goes_up_as_one_upload() {
    let gcs = FakeGcs::start(TOKEN);
    let old = gcs.put("reports", "files.parquet", b"old");
    let wd = Workdir::with_config(Config {
        drive_files: 40,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/files.parquet\"\ncolumns = [\"id\", \"size\", \"starred\"]\n"),
    );
    let run = run_env(
        &wd,
        &["run", "--summary-json", "summary.json"],
        &[
            ("STORAGE_EMULATOR_HOST", &gcs.url),
            ("GSCRAPE_UPLOAD_CHUNK_KIB", "256"),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let object = gcs.object("reports", "files.parquet").unwrap();
    assert_ne!(object.generation, old, "replaced");
    assert!(!object.composite, "one upload, no parts");
    assert_eq!(object.content_type, "application/vnd.apache.parquet");
    assert_eq!(&object.data[..4], b"PAR1");
    let summary: Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(summary["queries"][0]["bytes"], object.data.len());
    assert_eq!(
        summary["queries"][0]["sha256"],
        crate::gcs::sha256(&object.data)
    );
    let Some(tools) = tools("a_parquet_object_goes_up_as_one_upload") else {
        return;
    };
    let local = wd.path().join("downloaded.parquet");
    std::fs::write(&local, &object.data).unwrap();
    let file = read_back(&tools, &local);
    assert_eq!(file["rows"], 40);
    assert_eq!(file["types"]["size"], "int64");
    assert_eq!(file["values"]["starred"][3], true);
}

#[test]
fn a_report_is_typed_by_its_own_headers() {
    let Some(tools) = tools("a_report_is_typed_by_its_own_headers") else {
        return;
    };
    let wd = Workdir::new();
    wd.write(
        "queries/ga4.toml",
        "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
         output = \"ga4.parquet\"\n[params]\nproperty = \"properties/123\"\n[body]\n\
         dateRanges = [{ startDate = \"2024-03-01\", endDate = \"2024-03-07\" }]\n\
         dimensions = [{ name = \"date\" }, { name = \"country\" }]\n\
         metrics = [{ name = \"activeUsers\" }, { name = \"sessions\" }]\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    wd.write(
        "queries/csv.toml",
        &wd.read("queries/ga4.toml")
            .replace("ga4.parquet", "ga4.csv")
            .replace("runReport\"\n", "runReport\"\nname = \"csv\"\n"),
    );
    assert_eq!(wd.run(&["run", "--only", "csv"]).code, 0);
    let csv = wd.read("output/ga4.csv");
    let file = read_back(&tools, &wd.path().join("output/ga4.parquet"));
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header, ["date", "country", "activeUsers", "sessions"]);
    // GA4's `date` (20240101) is a date, other dimensions strings; the metrics' headers say
    // TYPE_INTEGER.
    let types: Vec<&str> = header
        .iter()
        .map(|n| file["types"][n].as_str().unwrap())
        .collect();
    assert_eq!(types, ["date32[day]", "string", "int64", "int64"]);
    for (i, line) in csv.lines().skip(1).enumerate() {
        for (j, cell) in line.split(',').enumerate() {
            let value = &file["values"][header[j]][i];
            match j {
                0 => assert_eq!(
                    value,
                    &json!(format!("{}-{}-{}", &cell[..4], &cell[4..6], &cell[6..])),
                    "row {i}, column {j}"
                ),
                1 => assert_eq!(value, cell, "row {i}, column {j}"),
                _ => assert_eq!(
                    value,
                    &serde_json::json!(cell.parse::<i64>().unwrap()),
                    "row {i}, column {j}"
                ),
            }
        }
    }
    assert_eq!(file["rows"], csv.lines().count() - 1);
}

#[test]
fn what_a_parquet_file_cannot_do_is_refused_before_anything_runs() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"files.parquet\"\nappend = true\ncolumns = [\"id\"]\n"),
    );
    for command in ["validate", "run"] {
        let run = wd.run(&[command]);
        assert_eq!(run.code, 2, "{run:?}");
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(text.contains("append"), "{command}: {text}");
        assert!(text.contains("parquet"), "{command}: {text}");
    }
    assert!(
        wd.google.seen_under("/drive/v3/files").is_empty(),
        "no API request"
    );

    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"files.parquet.gz\"\ncolumns = [\"id\"]\n"),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout
            .contains("a parquet file is compressed already; drop the `.gz`"),
        "{run:?}"
    );

    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"files.parquet\"\ncolumns = [\"id\"]\n"),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("→ files.parquet (1 columns"), "{run:?}");
    let run = wd.run(&["run", "queries/files.toml", "--output", "-"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("Parquet file"), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");

    let run = wd.run(&["compose", "output/f.parquet"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: output/f.parquet: Parquet files cannot be joined by their bytes (each has its own \
         footer): write the sharded query's output as .csv, .tsv or .ndjson (each may end in .gz)\n"
    );
}
