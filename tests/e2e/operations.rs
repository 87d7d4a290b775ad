//! What a scheduled job on a platform needs of a run: environment booleans as people write
//! them, the summary in the job's bucket, a deadline, and logs a log platform reads.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_gcs::FakeGcs;
use crate::support::{Config, Workdir, TOKEN};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\", \"size\"]\n[params]\npageSize = 100\n";

const USERS: &str = "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"id\"]\n";

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn summary(wd: &Workdir, path: &str) -> Value {
    serde_json::from_str(&wd.read(path)).unwrap()
}

#[test]
fn boolean_variables_take_1_0_true_false_yes_no_on_off_in_any_case() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let cases = [
        ("1", true),
        ("0", false),
        ("true", true),
        ("False", false),
        ("yes", true),
        ("NO", false),
        ("On", true),
        ("off", false),
    ];
    for (value, bom) in cases {
        let out = wd
            .command(&["run"])
            .env("GSCRAPE_BOM", value)
            .env("GSCRAPE_QUIET", value)
            .output()
            .unwrap();
        let run = crate::support::finish(out);
        assert_eq!(run.code, 0, "GSCRAPE_BOM={value}: {run:?}");
        let csv = std::fs::read(wd.path().join("output/files.csv")).unwrap();
        assert_eq!(csv.starts_with(BOM), bom, "GSCRAPE_BOM={value}");
        // Quiet: no per-query line and no summary table.
        assert_eq!(
            run.stderr.is_empty(),
            bom,
            "GSCRAPE_QUIET={value}: {}",
            run.stderr
        );
    }
    // The flags themselves stay bare.
    let run = wd.run(&["run", "--bom", "--quiet", "--fail-fast", "--no-header"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
    let csv = std::fs::read(wd.path().join("output/files.csv")).unwrap();
    assert!(csv.starts_with(BOM));
}

#[test]
fn a_boolean_variable_that_is_no_boolean_is_exit_2_naming_it_and_the_summary_says_so() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.write("summary.json", "{\"exit_code\": 0}");
    let out = wd
        .command(&["run"])
        .env("GSCRAPE_FAIL_FAST", "maybe")
        .env("GSCRAPE_SUMMARY_JSON", "summary.json")
        .output()
        .unwrap();
    let run = crate::support::finish(out);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: invalid value 'maybe' for GSCRAPE_FAIL_FAST (the variable of --fail-fast): \
         write 1 or 0, true or false, yes or no, on or off\n"
    );
    let said = summary(&wd, "summary.json");
    assert_eq!(
        said["exit_code"], 2,
        "yesterday's summary is not left: {said}"
    );
    assert_eq!(said["failure"], "bad_input");
    assert!(said["error"]
        .as_str()
        .unwrap()
        .contains("GSCRAPE_FAIL_FAST"));
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn summary_json_gs_lands_in_the_bucket_named_by_execution_shard_and_today() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let out = wd
        .command(&[
            "run",
            "--shard",
            "1/2",
            "--summary-json",
            "gs://jobs/runs/{{ execution }}-{{ shard }}-{{ today }}.json",
        ])
        .env("STORAGE_EMULATOR_HOST", &gcs.url)
        .env("CLOUD_RUN_EXECUTION", "nightly-x7k2p")
        .output()
        .unwrap();
    let run = crate::support::finish(out);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        gcs.names("jobs"),
        ["runs/nightly-x7k2p-1-2024-03-15.json"],
        "{run:?}"
    );
    let object = gcs
        .object("jobs", "runs/nightly-x7k2p-1-2024-03-15.json")
        .unwrap();
    let said: Value = serde_json::from_slice(&object.data).unwrap();
    assert_eq!(said["exit_code"], 0, "{said}");
    assert!(said["run_id"].is_string());
    assert!(!wd.exists("gs:"), "no local folder named gs:");
}

#[test]
fn a_summary_json_url_that_is_not_gs_is_refused_at_start() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    for (url, scheme) in [
        ("http://example.com/summary.json", "http"),
        ("s3://bucket/summary.json", "s3"),
    ] {
        let run = wd.run(&["run", "--summary-json", url]);
        assert_eq!(run.code, 2, "{run:?}");
        assert_eq!(
            run.stderr,
            format!(
                "error: --summary-json {url}: a summary is written to a file or to Cloud \
                 Storage (gs://BUCKET/NAME), not to {scheme}://\n"
            )
        );
    }
    assert!(wd.google.seen_under("/drive/").is_empty());
    assert!(!wd.exists("output/files.csv"));
    // `validate` refuses what `run` refuses.
    let run = wd.run(&["validate", "--summary-json", "s3://bucket/summary.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not to s3://"), "{}", run.stderr);
}

fn checkpoint_pages(wd: &Workdir) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(wd.path().join("output/.gscrape/checkpoints")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|text| serde_json::from_slice::<Value>(&text).ok())
        .filter_map(|c| c["at"]["chain"]["cursor"]["pages"].as_u64())
        .collect()
}

#[test]
fn max_duration_stops_a_slow_run_with_exit_124_keeping_the_old_file_and_a_checkpoint_resume_continues(
) {
    let wd = Workdir::with_config(Config {
        drive_files: 3000,
        latency: Duration::from_millis(250),
        ..Config::default()
    });
    wd.write("queries/files.toml", FILES);
    wd.write("output/files.csv", "yesterday's export\r\n");
    let started = Instant::now();
    let run = wd.run(&[
        "run",
        "--max-duration",
        "2s",
        "--summary-json",
        "summary.json",
    ]);
    let took = started.elapsed();
    assert_eq!(run.code, 124, "{run:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(
        run.stderr.contains(
            "error: --max-duration 2s: time is up; stopping (unfinished queries keep their \
             previous files and a checkpoint: `gscrape run --resume` continues them)\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(wd.read("output/files.csv"), "yesterday's export\r\n");
    let said = summary(&wd, "summary.json");
    assert_eq!(said["exit_code"], 124, "{said}");
    assert_eq!(said["failure"], "deadline", "{said}");
    let pages = checkpoint_pages(&wd);
    assert_eq!(pages.len(), 1, "one checkpoint: {run:?}");
    let pages = pages[0];
    assert!((1..30).contains(&pages), "{pages}");
    // The lock was released: a run with GSCRAPE_RESUME=1 (as README writes it) goes on from
    // the checkpoint.
    wd.google.configure(|c| c.latency = Duration::ZERO);
    let out = wd
        .command(&["run"])
        .env("GSCRAPE_RESUME", "1")
        .output()
        .unwrap();
    let run = crate::support::finish(out);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "files: resuming after page {pages} ({} rows)",
            pages * 100
        )),
        "{}",
        run.stderr
    );
    assert_eq!(wd.read("output/files.csv").lines().count(), 3001);
}

#[test]
fn max_duration_ends_a_run_hung_on_storage_within_its_grace_period() {
    // A storage server that takes connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.write("output/files.csv", "yesterday's export\r\n");
    let started = Instant::now();
    let out = wd
        .command(&[
            "run",
            "--state",
            "gs://jobs/state/",
            "--max-duration",
            "2s",
            "--summary-json",
            "summary.json",
        ])
        .env("STORAGE_EMULATOR_HOST", &url)
        .env("GSCRAPE_DEADLINE_GRACE", "3")
        .output()
        .unwrap();
    let took = started.elapsed();
    let run = crate::support::finish(out);
    assert_eq!(run.code, 124, "{run:?}");
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert!(
        run.stderr
            .contains("error: --max-duration 2s: time is up; stopping"),
        "{}",
        run.stderr
    );
    assert_eq!(wd.read("output/files.csv"), "yesterday's export\r\n");
    assert!(wd.google.seen_under("/drive/").is_empty());
    // Its summary was written before the record that hung: the deadline, while locking.
    let said = summary(&wd, "summary.json");
    assert_eq!(
        (said["exit_code"].as_u64(), said["failure"].as_str()),
        (Some(124), Some("deadline"))
    );
    assert_eq!(
        said["error"],
        "--max-duration passed while waiting for the lock: nothing was run"
    );
    drop(hung);
}

#[test]
fn max_duration_is_a_duration_above_zero() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    for bad in ["0s", "soon"] {
        let run = wd.run(&["run", "--max-duration", bad]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("--max-duration"), "{}", run.stderr);
    }
    wd.write("gscrape.toml", "[run]\nmax-duration = \"1h\"\n");
    let run = wd.run(&["run", "--quiet"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
}

#[test]
fn log_format_json_writes_one_object_a_line_with_severity_time_message_query_and_the_summary() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.write("queries/users.toml", USERS);
    let out = wd
        .command(&["run", "--summary-json", "summary.json"])
        .env("GSCRAPE_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let run = crate::support::finish(out);
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() >= 3, "{}", run.stderr);
    for line in &lines {
        let severity = line["severity"].as_str().unwrap();
        assert!(
            ["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR"].contains(&severity),
            "{line}"
        );
        let time = line["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{line}");
        assert!(time.ends_with('Z'), "UTC: {line}");
        assert!(line["message"].is_string(), "{line}");
    }
    let error = lines
        .iter()
        .find(|l| l["severity"] == "ERROR" && l["query"] == "users")
        .unwrap_or_else(|| panic!("an error line about users: {}", run.stderr));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("users: HTTP 400"),
        "{error}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["query"] == "files" && l["severity"] == "INFO"),
        "{}",
        run.stderr
    );
    let last = lines.last().unwrap();
    assert_eq!(last["severity"], "ERROR", "{last}");
    assert_eq!(last["summary"], summary(&wd, "summary.json"), "{last}");
    assert_eq!(last["summary"]["exit_code"], 1);
    // No table: the summary is that one line.
    assert!(!run.stderr.contains("files  ok"), "{}", run.stderr);

    // Secrets stay redacted (a server that echoes the token in its error).
    wd.google.configure(|c| c.echo_authorization = true);
    let run = wd.run(&["run", "--log-format=json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("Bearer REDACTED"), "{}", run.stderr);
    for line in run.stderr.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }

    // `-vv`'s logs (tracing) are lines of their own, DEBUG.
    wd.google.configure(|c| c.echo_authorization = false);
    let run = wd.run(&["-vv", "run", "--only", "files", "--log-format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<Value> = (run.stderr.lines())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["severity"] == "DEBUG"),
        "{}",
        run.stderr
    );

    // The flag, for a refused start too.
    let run = wd.run(&[
        "--log-format",
        "json",
        "run",
        "--summary-json",
        "s3://b/s.json",
    ]);
    assert_eq!(run.code, 2);
    let line: Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert_eq!(line["severity"], "ERROR");
}

#[test]
fn plain_logs_are_unchanged_by_the_json_format() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&["run", "--log-format", "plain"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.starts_with("files: "), "{}", run.stderr);
    assert!(!run.stderr.contains('{'), "{}", run.stderr);
}
