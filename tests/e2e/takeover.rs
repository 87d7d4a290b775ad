//! The run lock in a bucket as a job platform retries: a later attempt of the same Cloud Run
//! task takes it over at once (the platform starts one only after the last ended); any other
//! holder is still waited for (exit 75); a run whose lock was taken over stops writing and
//! fails (`lock lost`). Against the strict Cloud Storage double.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::gcs::{local_export, FILES};
use crate::support::fake_gcs::FakeGcs;
use crate::support::{finish, Config, Workdir, TOKEN};

const QUERY: &str =
    "columns = [\"id\", \"name\", \"mimeType\", \"size\"]\n[params]\npageSize = 100\n";

fn task(
    wd: &Workdir,
    gcs: &FakeGcs,
    dir: &Path,
    execution: &str,
    attempt: u32,
    args: &[&str],
) -> Command {
    let mut all = vec!["run", "--state", "gs://reports/state/"];
    all.extend(args);
    let mut command = wd.command(&all);
    command
        .current_dir(dir)
        .env("STORAGE_EMULATOR_HOST", &gcs.url)
        .env("GSCRAPE_UPLOAD_CHUNK_KIB", "256")
        .env("GSCRAPE_OBJECT_CHECKPOINT_SECONDS", "0.3")
        .env("CLOUD_RUN_EXECUTION", execution)
        .env("CLOUD_RUN_TASK_INDEX", "0")
        .env("CLOUD_RUN_TASK_ATTEMPT", attempt.to_string())
        .env_remove("GSCRAPE_LOCK_LEASE_SECONDS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Attempt 0 of a Cloud Run task is killed (`kill -9`) with its 3-minute lease live; attempt 1
/// of the same execution and task takes the lock at once, naming the attempt it took it from,
/// and resumes: the object is the export's, byte for byte. A task of another execution meets
/// a live lock and exits 75, naming its holder.
#[test]
fn a_cloud_run_retry_takes_over_at_once_and_another_execution_waits() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = Workdir::with_config(Config {
        drive_files: 6000,
        latency: Duration::from_millis(60),
        ..Config::default()
    });
    let file = format!("{FILES}output = \"gs://reports/files.csv\"\n{QUERY}");
    wd.write("queries/files.toml", &file);
    let mut first = task(&wd, &gcs, wd.path(), "daily-x7k2p", 0, &[])
        .spawn()
        .unwrap();
    wait_for("no checkpoint", || {
        gcs.names("reports")
            .iter()
            .any(|n| n.starts_with("state/checkpoints/"))
    });
    first.kill().unwrap();
    let _ = first.wait_with_output().unwrap();
    let lock = gcs
        .object("reports", "state/run.lock")
        .expect("the lock is left");
    let held: serde_json::Value = serde_json::from_slice(&lock.data).unwrap();
    assert_eq!(
        held["platform"],
        serde_json::json!({"kind": "cloud_run", "execution": "daily-x7k2p", "task": 0, "attempt": 0})
    );

    // Another execution (tomorrow's, or one started by hand): the live lease is waited for.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("queries")).unwrap();
    std::fs::write(other.path().join("queries/files.toml"), &file).unwrap();
    let busy = finish(
        task(&wd, &gcs, other.path(), "daily-q9w3z", 1, &["--resume"])
            .output()
            .unwrap(),
    );
    assert_eq!(busy.code, 75, "{busy:?}");
    assert!(
        busy.stderr.contains(
            "another gscrape run (Cloud Run execution daily-x7k2p, task 0, attempt 0; host "
        ),
        "{}",
        busy.stderr
    );

    // The platform's retry: attempt 1 of the same execution and task.
    let started = Instant::now();
    let retry = finish(
        task(&wd, &gcs, other.path(), "daily-x7k2p", 1, &["--resume"])
            .output()
            .unwrap(),
    );
    assert_eq!(retry.code, 0, "{retry:?}");
    assert!(
        retry.stderr.contains(
            "took over the run lock gs://reports/state/run.lock at once from Cloud Run execution daily-x7k2p, task 0, attempt 0; host "
        ) && retry.stderr.contains(
            "this is attempt 1 of the same Cloud Run task (execution daily-x7k2p, task 0), which Cloud Run starts only after attempt 0 ended"
        ),
        "{}",
        retry.stderr
    );
    assert!(
        retry.stderr.contains("files: resuming after page"),
        "{}",
        retry.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(
        gcs.object("reports", "files.csv").unwrap().data,
        local_export(6000, QUERY)
    );
    assert!(
        gcs.object("reports", "state/run.lock").is_none(),
        "released"
    );
}

/// While a run writes, another takes its lock over (here: written over, as a run that found
/// the lease run out would): at its next renewal the run stops writing, the query fails
/// `lock lost` (exit 1), the summary says so, and the other run's lock is left to it.
#[test]
fn a_run_that_loses_its_lock_stops_and_fails() {
    let gcs = FakeGcs::start(TOKEN);
    gcs.put("reports", "files.csv", b"yesterday\r\n");
    let wd = Workdir::with_config(Config {
        drive_files: 3000,
        latency: Duration::from_millis(300),
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/files.csv\"\n{QUERY}"),
    );
    let child = task(
        &wd,
        &gcs,
        wd.path(),
        "daily-x7k2p",
        0,
        &["--summary-json", "summary.json"],
    )
    .env("GSCRAPE_LOCK_LEASE_SECONDS", "1")
    .spawn()
    .unwrap();
    wait_for("no lock", || {
        gcs.object("reports", "state/run.lock").is_some()
    });
    let now = chrono::Utc::now();
    let theirs = serde_json::json!({
        "host": "other-host", "pid": 7, "run": "0123456789abcdef",
        "started_at": now.to_rfc3339(), "renewed_at": now.to_rfc3339(),
        "expires_at": (now + chrono::Duration::minutes(3)).to_rfc3339(),
    });
    gcs.put("reports", "state/run.lock", theirs.to_string().as_bytes());
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: lost the run lock gs://reports/state/run.lock: another run (host other-host, process 7) took it over (this run's lease was not renewed in time); this run stopped writing"
        ),
        "{}",
        run.stderr
    );
    let said: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wd.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(said["exit_code"], 1, "{said}");
    assert_eq!(said["queries"][0]["failure"], "lock_lost", "{said}");
    assert!(
        said["queries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("files was not written"),
        "{said}"
    );
    assert_eq!(
        gcs.object("reports", "files.csv").unwrap().data,
        b"yesterday\r\n"
    );
    let lock = gcs.object("reports", "state/run.lock").unwrap();
    assert_eq!(lock.data, theirs.to_string().as_bytes(), "their lock stays");
}

/// A run whose query fails (a 500 on page 3, after its retries) releases its lock in the bucket:
/// the next run, of any execution, takes it at once.
#[test]
fn a_run_that_fails_releases_its_lock() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = Workdir::with_config(Config {
        drive_files: 1000,
        drive_fail_page: Some(3),
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &format!("{FILES}output = \"gs://reports/files.csv\"\n{QUERY}"),
    );
    let failed = finish(
        task(&wd, &gcs, wd.path(), "daily-x7k2p", 0, &[])
            .env("GSCRAPE_BACKOFF_SCALE", "0")
            .output()
            .unwrap(),
    );
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(
        gcs.object("reports", "state/run.lock").is_none(),
        "released: {:?}",
        gcs.names("reports")
    );
}
