//! Scheduled jobs: one run at a time per output directory, and heartbeat lines off a terminal.

use std::io::Write;
use std::time::Duration;

use crate::support::{finish, Config, Workdir};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 25\n";

/// Holds the run lock of `output/` as another run would, with `pid` in it.
fn hold_the_lock(wd: &Workdir, pid: u32) -> std::fs::File {
    std::fs::create_dir_all(wd.path().join("output/.gscrape")).unwrap();
    let mut file = std::fs::File::create(wd.path().join("output/.gscrape/run.lock")).unwrap();
    file.lock().unwrap();
    write!(file, "{pid}").unwrap();
    file
}

#[test]
fn an_overlapping_run_exits_75_naming_the_holder() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let lock = hold_the_lock(&wd, 4242);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 75, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: another gscrape run (process 4242) is writing into output; wait for it to end, \
         or run with --wait-lock to wait here\n"
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
    drop(lock);
    assert_eq!(wd.run(&["run"]).code, 0, "the lock went with its holder");
}

#[test]
fn wait_lock_waits_for_the_other_run() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let lock = hold_the_lock(&wd, 4243);
    let child = wd
        .command(&["run", "--wait-lock"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(wd.google.seen_under("/drive/").is_empty(), "it waits");
    drop(lock);
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .starts_with("waiting: another gscrape run (process 4243) is writing into output; "),
        "{}",
        run.stderr
    );
    assert!(wd.exists("output/files.csv"));
}

#[test]
fn off_a_terminal_a_heartbeat_line_shows_each_running_query() {
    let wd = Workdir::with_config(Config {
        drive_files: 100,
        latency: Duration::from_millis(450),
        ..Config::default()
    });
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&["run", "--progress-interval", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
    let beats: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("files: ") && l.contains(" running "))
        .collect();
    assert!(!beats.is_empty(), "{}", run.stderr);
    let beat = beats[0];
    assert!(
        beat.contains(" pages, ") || beat.contains(" page, "),
        "{beat}"
    );
    assert!(beat.contains(" records/s, running "), "{beat}");
    assert!(beat.ends_with('s'), "an elapsed time: {beat}");
    assert!(!run.stderr.contains('\u{1b}'), "no control characters");

    let run = wd.run(&["run", "--progress-interval", "0"]);
    assert!(!run.stderr.contains(" running "), "{}", run.stderr);
}

#[test]
fn a_fan_outs_heartbeat_says_how_many_parent_records_are_done_of_how_many_and_when_it_ends() {
    let wd = Workdir::with_config(Config {
        gmail_messages: 12,
        latency: Duration::from_millis(300),
        ..Config::default()
    });
    wd.write(
        "queries/messages.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         output = false\n[params]\nuserId = \"me\"\n",
    );
    wd.write(
        "queries/details.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
         for_each = \"messages\"\nconcurrency = 1\ncolumns = [\"id\"]\n\
         [params]\nuserId = \"me\"\nid = \"{{ messages.id }}\"\n",
    );
    let run = wd.run(&["run", "--progress-interval", "1"]);
    assert_eq!(run.code, 0, "{run:?}");
    // One message at a time, 0.3 s each: beats at 1 s, 2 s and 3 s find the list done.
    let beats: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("details: ") && l.contains(" of 12 parent records ("))
        .collect();
    assert!(!beats.is_empty(), "{}", run.stderr);
    let beat = beats[0];
    assert!(beat.contains("%), ETA "), "{beat}");
    assert!(beat.ends_with('s'), "{beat}");
}

#[test]
fn a_backfill_runs_once_per_window_oldest_first() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\"]\noutput = \"files_{{ window.start }}.csv\"\nmax_pages = 1\n\
         [params]\npageSize = 10\nq = \"modifiedTime >= '{{ window.start }}' and modifiedTime <= '{{ window.end }}T23:59:59'\"\n",
    );
    let run = wd.run(&["run", "--from", "2024-03-01", "--to", "2024-03-03"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.list("output"),
        [
            "files_2024-03-01.csv",
            "files_2024-03-02.csv",
            "files_2024-03-03.csv"
        ]
    );
    let sent: Vec<String> = wd
        .google
        .seen_under("/drive/")
        .iter()
        .map(|s| s.param("q").unwrap())
        .collect();
    assert_eq!(
        sent,
        [
            "modifiedTime >= '2024-03-01' and modifiedTime <= '2024-03-01T23:59:59'",
            "modifiedTime >= '2024-03-02' and modifiedTime <= '2024-03-02T23:59:59'",
            "modifiedTime >= '2024-03-03' and modifiedTime <= '2024-03-03T23:59:59'",
        ]
    );
    let rows: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("files 2024-03-0"))
        .collect();
    assert_eq!(rows.len(), 3, "one summary row per window: {}", run.stderr);
    assert!(
        rows[0].contains("output/files_2024-03-01.csv  ")
            && rows[0].ends_with("; cut short by max_pages"),
        "{}",
        rows[0]
    );

    // Without --from/--to, `window` has no value: refused before any request.
    let before = wd.google.seen_under("/drive/").len();
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/files.toml: its templates read `window`, which a backfill sets: run it \
         with --from DATE --to DATE\n"
    );
    assert_eq!(wd.google.seen_under("/drive/").len(), before);
    // validate says the same, and ok with the backfill's flags.
    let validate = wd.run(&["validate"]);
    assert_eq!(validate.code, 2, "{validate:?}");
    assert_eq!(
        validate.stdout.replace("error  ", "error: "),
        run.stderr,
        "validate refuses what run refuses"
    );
    let validate = wd.run(&["validate", "--from", "2024-03-01", "--to", "2024-03-03"]);
    assert_eq!(validate.code, 0, "{validate:?}");
}

/// The `q` each Drive request carried.
fn drive_q(wd: &Workdir) -> Vec<String> {
    wd.google
        .seen_under("/drive/")
        .iter()
        .filter_map(|s| s.param("q"))
        .collect()
}

#[test]
fn an_incremental_query_asks_from_the_newest_value_of_its_last_successful_run() {
    let wd = Workdir::with_config(Config {
        drive_files: 30,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        // Appended: each run adds what is new (replacing the file would lose what it holds).
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\ncolumns = [\"id\"]\n\
         append = true\n[params]\nq = \"createdTime > '{{ since }}'\"\n\
         [incremental]\ncursor = \"createdTime\"\ninitial = \"2000-01-01T00:00:00Z\"\n",
    );
    assert_eq!(wd.run(&["validate"]).code, 0);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    // The greatest createdTime of files 0..30 is file 27's (2024-01-28, second 27).
    let newest = "2024-01-28T10:00:27.000Z";
    assert_eq!(
        wd.read("output/.gscrape/cursors/files.txt"),
        newest,
        "kept for the next run"
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        drive_q(&wd),
        [
            "createdTime > '2000-01-01T00:00:00Z'".to_owned(),
            format!("createdTime > '{newest}'"),
        ]
    );
    let fields = wd.google.seen_under("/drive/")[0].param("fields").unwrap();
    assert_eq!(
        fields, "files(id,createdTime),nextPageToken",
        "the cursor is asked for"
    );

    // A failed run does not move the cursor.
    wd.google.configure(|c| c.drive_fail_page = Some(1));
    assert_eq!(wd.run(&["run", "--since", "2030-01-01T00:00:00Z"]).code, 1);
    assert_eq!(wd.read("output/.gscrape/cursors/files.txt"), newest);
    wd.google.configure(|c| c.drive_fail_page = None);

    // --since overrides the kept cursor, --full starts from `initial`.
    assert_eq!(wd.run(&["run", "--full"]).code, 0);
    let sent = drive_q(&wd);
    assert_eq!(sent.last().unwrap(), "createdTime > '2000-01-01T00:00:00Z'");
    assert!(
        sent.iter()
            .any(|q| q == "createdTime > '2030-01-01T00:00:00Z'"),
        "{sent:?}"
    );
}
