//! `--summary-json` on every exit: a monitor reads this run's outcome, never an earlier one's.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use crate::support::{finish, Workdir};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 25\n";

fn summary(wd: &Workdir) -> Value {
    serde_json::from_str(&wd.read("summary.json")).unwrap()
}

/// Yesterday's summary of a successful run, which each failing run below must replace.
fn yesterdays(wd: &Workdir) {
    wd.write("summary.json", "{\"exit_code\": 0}\n");
}

/// What every summary says of the run as a whole.
fn assert_run_fields(summary: &Value, exit: u64) {
    assert_eq!(summary["exit_code"], exit, "{summary:#}");
    assert_eq!(summary["version"], env!("CARGO_PKG_VERSION"));
    for key in ["started_at", "finished_at"] {
        let at = summary[key].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z'),
            "{key}: {at}"
        );
    }
    assert!(summary["duration_s"].as_f64().unwrap() >= 0.0);
}

#[test]
fn a_run_refused_before_any_request_writes_its_summary_with_the_error() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", &format!("{FILES}pageSiz = 3\n"));
    yesterdays(&wd);
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let said = summary(&wd);
    assert_run_fields(&said, 2);
    assert_eq!(said["failure"], "bad_input");
    assert_eq!(
        said["error"],
        "queries/files.toml:7: params.pageSiz: unknown parameter of drive.files.list; did you mean `pageSize`?"
    );
    assert_eq!(said["queries"], serde_json::json!([]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(wd.path().join("summary.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "readable by a monitor of another user");
    }

    // A broken config file: the flag's summary still tells.
    wd.write("queries/files.toml", FILES);
    wd.write("gscrape.toml", "[run]\nout-dir = 3\n");
    yesterdays(&wd);
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let said = summary(&wd);
    assert_run_fields(&said, 2);
    assert!(
        said["error"]
            .as_str()
            .unwrap()
            .starts_with("gscrape.toml: [run] "),
        "{said:#}"
    );
}

#[test]
fn a_busy_lock_writes_exit_75_and_the_window_and_since_are_said() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\ncolumns = [\"id\", \"modifiedTime\"]\n\
         output = \"files_{{ window.start }}.csv\"\n\
         [incremental]\ncursor = \"modifiedTime\"\ninitial = \"2024-01-01T00:00:00Z\"\n\
         [params]\nq = \"modifiedTime > '{{ since }}' and modifiedTime >= '{{ window.start }}'\"\n",
    );
    let backfill = ["--from", "2024-03-01", "--to", "2024-03-02"];
    std::fs::create_dir_all(wd.path().join("output/.gscrape")).unwrap();
    let mut lock = std::fs::File::create(wd.path().join("output/.gscrape/run.lock")).unwrap();
    lock.lock().unwrap();
    write!(lock, "4244").unwrap();
    yesterdays(&wd);
    let run = wd.run(&[&["run", "--summary-json", "summary.json"][..], &backfill].concat());
    assert_eq!(run.code, 75, "{run:?}");
    let said = summary(&wd);
    assert_run_fields(&said, 75);
    assert_eq!(said["failure"], "busy");
    assert_eq!(
        said["backfill"],
        serde_json::json!({"from": "2024-03-01", "to": "2024-03-02", "step": "day"})
    );

    // With a limit, the wait ends with 75 too, and the message does not ask for --wait-lock.
    let run = wd.run(
        &[
            &["run", "--wait-lock=1", "--summary-json", "summary.json"][..],
            &backfill,
        ]
        .concat(),
    );
    assert_eq!(run.code, 75, "{run:?}");
    assert_eq!(
        run.stderr,
        "waiting: another gscrape run (process 4244) is writing into output; wait for it to end, \
         or run with --wait-lock to wait here\n\
         error: another gscrape run (process 4244) still held output after waiting 1 s \
         (--wait-lock); it may be stuck: see that process, or wait longer\n"
    );
    drop(lock);

    let run = wd.run(
        &[
            &["run", "--wait-lock=30", "--summary-json", "summary.json"][..],
            &backfill,
        ]
        .concat(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let said = summary(&wd);
    assert_run_fields(&said, 0);
    assert!(said["error"].is_null());
    let queries = said["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 2);
    assert_eq!(
        queries[0]["window"],
        serde_json::json!({"start": "2024-03-01", "end": "2024-03-01"})
    );
    assert_eq!(queries[0]["since"], "2024-01-01T00:00:00Z");
    assert_eq!(queries[1]["window"]["start"], "2024-03-02");
}

#[test]
fn an_interrupted_run_writes_exit_130() {
    let wd = Workdir::with_config(crate::support::Config {
        drive_files: 2000,
        latency: Duration::from_millis(200),
        ..crate::support::Config::default()
    });
    wd.write("queries/files.toml", FILES);
    yesterdays(&wd);
    let child = wd
        .command(&["run", "--summary-json", "summary.json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while wd.google.seen_under("/drive/").is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 130, "{run:?}");
    let said = summary(&wd);
    assert_run_fields(&said, 130);
    assert_eq!(said["queries"][0]["status"], "interrupted");
}
