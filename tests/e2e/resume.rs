//! Checkpoints and `--resume`: an export stopped by `kill -9` or a quota wall is taken up where
//! it stood, byte for byte, asking the API only for the pages it lacks; one whose query
//! changed, or whose saved page token the API refuses, starts over with a message.

use std::time::{Duration, Instant};

use crate::support::fake_google::{Config, Seen};
use crate::support::{Run, Workdir};

const FILES: usize = 2000;
const PAGE: usize = 100;

fn query(output: &str) -> String {
    format!(
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\noutput = \"{output}\"\n\
         columns = [\"id\", \"name\", \"size\", \"owners.emailAddress\"]\n[params]\npageSize = {PAGE}\n"
    )
}

fn workdir(config: Config, output: &str) -> Workdir {
    let wd = Workdir::with_config(Config {
        drive_files: FILES,
        ..config
    });
    wd.write("queries/files.toml", &query(output));
    wd
}

fn drive_lists(wd: &Workdir) -> Vec<Seen> {
    wd.google.seen_under("/drive/v3/files")
}

/// The `pageToken` of each request, `None` for a first page.
fn tokens(seen: &[Seen]) -> Vec<Option<String>> {
    seen.iter().map(|s| s.param("pageToken")).collect()
}

/// The tokens of pages `from` (1-based) to the last, as the fake numbers them.
fn tokens_from(page: usize, epoch: &str) -> Vec<Option<String>> {
    (page..=FILES / PAGE)
        .map(|p| Some(format!("tok{epoch}-{}", (p - 1) * PAGE)))
        .collect()
}

/// What an uninterrupted export of the same query writes (on a server of its own with the
/// same data).
fn uninterrupted(output: &str) -> Vec<u8> {
    uninterrupted_query(&query(output), output)
}

fn uninterrupted_query(text: &str, output: &str) -> Vec<u8> {
    let wd = workdir(Config::default(), output);
    wd.write("queries/files.toml", text);
    let run = wd.run(&["run", "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::read(wd.path().join("output").join(output)).unwrap()
}

/// The checkpoint files of `wd`'s output directory.
fn checkpoints(wd: &Workdir) -> Vec<serde_json::Value> {
    let dir = wd.path().join("output/.gscrape/checkpoints");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    // Checkpoints only, not the temporary file a write is renamed from (a kill at that moment
    // leaves the checkpoint before it).
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|text| serde_json::from_slice(&text).ok())
        .collect()
}

/// The pages a chain's checkpoint has written.
fn pages_of(checkpoint: &serde_json::Value) -> Option<u64> {
    checkpoint["at"]["chain"]["cursor"]["pages"].as_u64()
}

/// The parent records a fan-out's checkpoint has done.
fn parents_done(checkpoint: &serde_json::Value) -> Option<u64> {
    checkpoint["at"]["parents"]["done"].as_u64()
}

/// Runs `args` and kills the run (SIGKILL: no cleanup runs) once `ready` says so of `wd`.
fn kill_once(wd: &Workdir, args: &[&str], ready: impl Fn(&Workdir) -> bool) {
    let mut child = wd.command(args).spawn().unwrap();
    let started = Instant::now();
    while !ready(wd) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs `args` a day later than the other runs.
fn run_next_day(wd: &Workdir, args: &[&str]) -> Run {
    let out = wd
        .command(args)
        .env("GSCRAPE_TODAY", "2024-03-16")
        .output()
        .unwrap();
    crate::support::finish(out)
}

/// Files in `output/` other than the export itself and gscrape's own directory.
/// The run succeeded, saying that it started over and why.
fn assert_started_over(run: &Run, why: &str) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(why), "{}", run.stderr);
}

fn leftovers(wd: &Workdir, output: &str) -> Vec<String> {
    wd.list("output")
        .into_iter()
        .filter(|name| name != output)
        .collect()
}

#[test]
fn kill_9_mid_export_then_resume_writes_the_same_bytes_asking_only_for_the_missing_pages() {
    let wd = workdir(
        Config {
            latency: Duration::from_millis(150),
            ..Config::default()
        },
        "files.csv",
    );
    kill_once(&wd, &["run", "--quiet"], |wd| {
        checkpoints(wd).first().and_then(pages_of) >= Some(3)
    });
    assert!(
        !wd.exists("output/files.csv"),
        "a killed export put a file in place"
    );
    // The checkpoint may have moved on between reading it and the kill: the last one counts.
    let pages = pages_of(&checkpoints(&wd)[0]).unwrap() as usize;
    assert!((3..FILES / PAGE).contains(&pages), "{pages}");

    let before = drive_lists(&wd).len();
    wd.google.configure(|c| c.latency = Duration::ZERO);
    let run = wd.run(&["run", "--resume", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "files: resuming after page {pages} ({} rows)",
            pages * PAGE
        )),
        "{}",
        run.stderr
    );
    let resumed = &drive_lists(&wd)[before..];
    assert_eq!(tokens(resumed), tokens_from(pages + 1, ""));
    assert_eq!(
        std::fs::read(wd.path().join("output/files.csv")).unwrap(),
        uninterrupted("files.csv")
    );
    assert!(checkpoints(&wd).is_empty());
    assert_eq!(leftovers(&wd, "files.csv"), Vec::<String>::new());
    // The summary counts every row of the file, and the pages this run fetched.
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    let files = &summary["queries"][0];
    assert_eq!(files["records"], FILES, "{summary}");
    assert_eq!(files["pages"], FILES / PAGE - pages, "{summary}");
}

#[test]
fn a_quota_wall_says_to_resume_and_resume_asks_only_for_the_missing_pages() {
    for output in ["files.csv", "files.ndjson"] {
        let wd = workdir(
            Config {
                drive_quota_page: Some(4),
                ..Config::default()
            },
            output,
        );
        wd.write(&format!("output/{output}"), "the previous export\n");
        let run = wd.run(&["run"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("403"), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("run `gscrape run --resume` once the quota resets"),
            "{}",
            run.stderr
        );
        assert_eq!(
            wd.read(&format!("output/{output}")),
            "the previous export\n"
        );
        assert_eq!(pages_of(&checkpoints(&wd)[0]), Some(3));

        let before = drive_lists(&wd).len();
        wd.google.configure(|c| c.drive_quota_page = None);
        let run = wd.run(&["run", "--resume"]);
        assert_eq!(run.code, 0, "{output}: {}", run.stderr);
        assert_eq!(tokens(&drive_lists(&wd)[before..]), tokens_from(4, ""));
        assert_eq!(
            std::fs::read(wd.path().join("output").join(output)).unwrap(),
            uninterrupted(output),
            "{output}"
        );
        assert!(checkpoints(&wd).is_empty());
        assert_eq!(leftovers(&wd, output), Vec::<String>::new());
    }
}

/// An export stopped by a quota wall after page 3, the wall lifted.
fn stopped_at_page_3() -> Workdir {
    let wd = workdir(
        Config {
            drive_quota_page: Some(4),
            ..Config::default()
        },
        "files.csv",
    );
    assert_eq!(wd.run(&["run"]).code, 1);
    assert_eq!(checkpoints(&wd).len(), 1);
    wd.google.configure(|c| c.drive_quota_page = None);
    wd
}

#[test]
fn a_query_changed_since_its_checkpoint_starts_over_with_a_message() {
    let wd = stopped_at_page_3();
    let changed = query("files.csv").replace("\"size\", ", "");
    wd.write("queries/files.toml", &changed);
    let before = drive_lists(&wd).len();
    let run = wd.run(&["run", "--resume"]);
    assert_started_over(
        &run,
        "files: starting over: its query or request changed since the checkpoint",
    );
    let again = &drive_lists(&wd)[before..];
    assert_eq!(tokens(again)[0], None);
    assert_eq!(again.len(), FILES / PAGE);
    let csv = wd.read("output/files.csv");
    assert!(
        csv.starts_with("id,name,owners.emailAddress\r\n"),
        "{csv:.80}"
    );
    assert_eq!(csv.as_bytes(), uninterrupted_query(&changed, "files.csv"));
    assert!(checkpoints(&wd).is_empty());
    assert_eq!(leftovers(&wd, "files.csv"), Vec::<String>::new());
}

#[test]
fn a_saved_page_token_the_api_refuses_starts_over_with_a_message() {
    let wd = stopped_at_page_3();
    // The tokens of the first run have expired.
    wd.google.configure(|c| c.drive_token_epoch = 1);
    let before = drive_lists(&wd).len();
    let run = wd.run(&["run", "--resume"]);
    assert_started_over(
        &run,
        "files: starting over: the API refused the saved position (HTTP 400",
    );
    let mut expected = vec![Some(format!("tok-{}", 3 * PAGE)), None];
    expected.extend(tokens_from(2, "1"));
    assert_eq!(tokens(&drive_lists(&wd)[before..]), expected);
    assert_eq!(
        std::fs::read(wd.path().join("output/files.csv")).unwrap(),
        uninterrupted("files.csv")
    );
    assert!(checkpoints(&wd).is_empty());
    assert_eq!(leftovers(&wd, "files.csv"), Vec::<String>::new());
}

#[test]
fn a_run_without_resume_starts_over_and_forgets_the_checkpoint() {
    let wd = stopped_at_page_3();
    let before = drive_lists(&wd).len();
    let run = wd.run(&["run", "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let again = &drive_lists(&wd)[before..];
    assert_eq!(tokens(again)[0], None);
    assert_eq!(again.len(), FILES / PAGE);
    assert_eq!(
        std::fs::read(wd.path().join("output/files.csv")).unwrap(),
        uninterrupted("files.csv")
    );
    assert!(checkpoints(&wd).is_empty());
    assert_eq!(leftovers(&wd, "files.csv"), Vec::<String>::new());
}

const MESSAGES: usize = 24;

/// A Gmail fan-out: the ids of `MESSAGES` messages (pages of 5), then each message, one chain
/// at a time.
fn fan_out(config: Config) -> Workdir {
    let wd = Workdir::with_config(Config {
        gmail_messages: MESSAGES,
        ..config
    });
    wd.write(
        "queries/ids.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\noutput = false\n\
         [params]\nuserId = \"me\"\nmaxResults = 5\n",
    );
    wd.write(
        "queries/messages.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\nfor_each = \"ids\"\n\
         concurrency = 1\ncolumns = [\"id\", \"snippet\", { name = \"thread\", value = \"{{ ids.threadId }}\" }]\n\
         [params]\nuserId = \"me\"\nid = \"{{ ids.id }}\"\n",
    );
    wd
}

/// The ids of the messages fetched one by one.
fn message_gets(wd: &Workdir) -> Vec<String> {
    wd.google
        .seen_under("/gmail/v1/users/me/messages/")
        .iter()
        .map(|s| s.path().rsplit('/').next().unwrap().to_owned())
        .collect()
}

/// Starts the fan-out and kills it (SIGKILL) once its checkpoint has `at_least` parent records
/// done; returns how many the last checkpoint has.
fn kill_fan_out_after(wd: &Workdir, at_least: u64) -> u64 {
    let done = |wd: &Workdir| checkpoints(wd).first().and_then(parents_done).unwrap_or(0);
    kill_once(wd, &["run", "--quiet"], |wd| done(wd) >= at_least);
    done(wd)
}

#[test]
fn a_killed_fan_out_resumes_at_the_next_parent_record() {
    let wd = fan_out(Config {
        latency: Duration::from_millis(100),
        ..Config::default()
    });
    let done = kill_fan_out_after(&wd, 4) as usize;
    assert!((4..MESSAGES).contains(&done), "{done}");
    assert!(!wd.exists("output/messages.csv"));

    let before = message_gets(&wd).len();
    wd.google.configure(|c| c.latency = Duration::ZERO);
    let run = wd.run(&["run", "--resume"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "messages: resuming after parent record {done} ({done} rows)"
        )),
        "{}",
        run.stderr
    );
    // The parent lists its ids again; the child asks only for the messages it lacks.
    let expected: Vec<String> = (done..MESSAGES)
        .map(crate::support::fake_google::gmail_message_id)
        .collect();
    assert_eq!(message_gets(&wd)[before..], expected);

    let fresh = fan_out(Config::default());
    assert_eq!(fresh.run(&["run", "--quiet"]).code, 0);
    assert_eq!(
        wd.read("output/messages.csv"),
        fresh.read("output/messages.csv")
    );
    assert!(checkpoints(&wd).is_empty());
    assert_eq!(wd.list("output"), ["messages.csv"]);
}

#[test]
fn a_fan_out_whose_parent_changed_drops_its_checkpoint_and_says_so() {
    let wd = fan_out(Config {
        latency: Duration::from_millis(100),
        ..Config::default()
    });
    let done = kill_fan_out_after(&wd, 4);
    // The parent now lists fewer records than the checkpoint has done.
    wd.google.configure(|c| {
        c.latency = Duration::ZERO;
        c.gmail_messages = 2;
    });
    let run = wd.run(&["run", "--resume"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: messages: its parent query `ids` no longer hands the records it did before \
             this export's checkpoint (after parent record {done}); the checkpoint is dropped: \
             run again to start over"
        )),
        "{}",
        run.stderr
    );
    assert!(checkpoints(&wd).is_empty());
    assert!(!wd.exists("output/messages.csv"));
    let run = wd.run(&["run", "--resume"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(wd.read("output/messages.csv").lines().count(), 3);
}

#[test]
fn a_report_paged_by_offset_in_its_body_resumes_at_its_next_offset() {
    let wd = Workdir::new();
    wd.google.configure(|c| {
        c.reports.ga4_rows = 10;
        c.reports.ga4_quota_from = Some(6);
    });
    let ga4 = "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
               [params]\nproperty = \"properties/123\"\n[body]\nlimit = \"3\"\n\
               dateRanges = [{ startDate = \"2024-03-01\", endDate = \"2024-03-14\" }]\n\
               dimensions = [{ name = \"date\" }, { name = \"country\" }]\nmetrics = [{ name = \"activeUsers\" }]\n";
    wd.write("queries/ga4.toml", ga4);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("once the quota resets"),
        "{}",
        run.stderr
    );

    let offsets = |wd: &Workdir| -> Vec<String> {
        wd.google
            .seen_under("/v1beta/properties/123:runReport")
            .iter()
            .map(|s| {
                serde_json::from_str::<serde_json::Value>(&s.body).unwrap()["offset"].to_string()
            })
            .collect()
    };
    let before = offsets(&wd).len();
    wd.google.configure(|c| c.reports.ga4_quota_from = None);
    let run = wd.run(&["run", "--resume"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("ga4: resuming after page 2 (6 rows)"),
        "{}",
        run.stderr
    );
    assert_eq!(offsets(&wd)[before..], ["\"6\"", "\"9\""]);

    let fresh = Workdir::new();
    fresh.google.configure(|c| c.reports.ga4_rows = 10);
    fresh.write("queries/ga4.toml", ga4);
    assert_eq!(fresh.run(&["run", "--quiet"]).code, 0);
    assert_eq!(wd.read("output/ga4.csv"), fresh.read("output/ga4.csv"));
    assert!(wd
        .read("output/ga4.csv")
        .starts_with("date,country,activeUsers\r\n"));
}

/// A template column (`{{ today }}`) renders into the fingerprint: a resume on another day
/// starts over rather than mix the two days in one file.
#[test]
fn a_template_column_that_renders_differently_starts_over() {
    let text = format!(
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\noutput = \"files.csv\"\n\
         columns = [\"id\", {{ name = \"day\", value = \"{{{{ today }}}}\" }}]\n[params]\npageSize = {PAGE}\n"
    );
    let wd = workdir(
        Config {
            drive_quota_page: Some(4),
            ..Config::default()
        },
        "files.csv",
    );
    wd.write("queries/files.toml", &text);
    assert_eq!(wd.run(&["run"]).code, 1);
    wd.google.configure(|c| c.drive_quota_page = None);
    let run = run_next_day(&wd, &["run", "--resume"]);
    assert_started_over(
        &run,
        "files: starting over: its query or request changed since the checkpoint",
    );
    let csv = wd.read("output/files.csv");
    let old = csv.matches("2024-03-15").count();
    let new = csv.matches("2024-03-16").count();
    assert!(
        old == 0,
        "resumed file mixes days: {old} rows of 2024-03-15, {new} of 2024-03-16; stderr: {}",
        run.stderr
    );
}

/// The same in a fan-out, whose templates render with the run's values (today, window,
/// variables, environment) into its fingerprint.
#[test]
fn a_fan_out_whose_templates_render_differently_starts_over() {
    let wd = fan_out(Config {
        latency: Duration::from_millis(100),
        ..Config::default()
    });
    wd.write(
        "queries/messages.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\nfor_each = \"ids\"\n\
         concurrency = 1\ncolumns = [\"id\", { name = \"day\", value = \"{{ today }}\" }]\n\
         [params]\nuserId = \"me\"\nid = \"{{ ids.id }}\"\n",
    );
    let done = kill_fan_out_after(&wd, 4);
    wd.google.configure(|c| c.latency = Duration::ZERO);
    let run = run_next_day(&wd, &["run", "--resume"]);
    assert_started_over(
        &run,
        "messages: starting over: its query or request changed",
    );
    let csv = wd.read("output/messages.csv");
    let old = csv.matches("2024-03-15").count();
    assert!(
        old == 0,
        "done={done}: {old} rows of the old day kept:\n{csv}\n{}",
        run.stderr
    );
}

/// A refused page token starts over, and the summary counts the rows of the file, not
/// those of the checkpoint as well.
#[test]
fn a_refused_token_counts_only_the_rows_of_the_file() {
    let wd = stopped_at_page_3();
    wd.google.configure(|c| c.drive_token_epoch = 1);
    let run = wd.run(&["run", "--resume", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(
        std::fs::read(wd.path().join("output/files.csv")).unwrap(),
        uninterrupted("files.csv")
    );
    assert_eq!(
        summary["queries"][0]["records"], FILES,
        "{summary} {}",
        run.stderr
    );
}

/// With a dated output name, yesterday's checkpoint and its temporary file are dropped by
/// the next run, with --resume or without (no export takes them up).
#[test]
fn yesterdays_checkpoint_of_a_dated_output_is_dropped() {
    let wd = workdir(
        Config {
            drive_quota_page: Some(4),
            ..Config::default()
        },
        "files_{{ today }}.csv",
    );
    assert_eq!(wd.run(&["run"]).code, 1);
    wd.google.configure(|c| c.drive_quota_page = None);
    for args in [&["run", "--resume"][..], &["run"][..]] {
        assert_eq!(run_next_day(&wd, args).code, 0);
    }
    let all: Vec<String> = std::fs::read_dir(wd.path().join("output"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        checkpoints(&wd).is_empty(),
        "{all:?} {:?}",
        checkpoints(&wd)
    );
    assert!(
        !all.iter().any(|n| n.ends_with(".tmp")),
        "leftover temp files: {all:?}"
    );
}

/// The checkpoint noted last is written out within a second while the next page is awaited:
/// a kill during a long retry (a flaky page backing off) keeps the pages done before it.
#[test]
fn a_kill_during_a_long_retry_keeps_the_pages_done_before_it() {
    let wd = workdir(
        Config {
            drive_fail_page: Some(3),
            ..Config::default()
        },
        "files.csv",
    );
    let mut child = wd
        .command(&["run", "--quiet"])
        .env("GSCRAPE_BACKOFF_SCALE", "1")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    child.kill().unwrap();
    child.wait().unwrap();
    let pages = checkpoints(&wd).first().and_then(pages_of);
    assert_eq!(pages, Some(2), "pages 1-2 were done 4 s before the kill");
}

/// A backfill appending to one file with a fan-out child: the windows share the target, and
/// window 1 (run again) must not take up window 2's checkpoint and temporary file; the
/// window renders into the fingerprint, and so does the appended file's state.
#[test]
fn an_appending_backfill_never_takes_up_another_windows_checkpoint() {
    let wd = fan_out(Config {
        latency: Duration::from_millis(100),
        ..Config::default()
    });
    // The list of each window (a backfill's every query reads its window).
    wd.write(
        "queries/ids.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\noutput = false\n\
         [params]\nuserId = \"me\"\nmaxResults = 5\nq = \"after:{{ window.start }}\"\n",
    );
    wd.write(
        "queries/messages.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\nfor_each = \"ids\"\n\
         concurrency = 1\nappend = true\noutput = \"messages.csv\"\n\
         columns = [\"id\", { name = \"window\", value = \"{{ window.start }}\" }]\n\
         [params]\nuserId = \"me\"\nid = \"{{ ids.id }}\"\n",
    );
    let args = [
        "run",
        "--quiet",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-02",
        "--step",
        "day",
    ];
    // Killed once window 1 is in place and window 2 has a checkpoint of 4 records or more.
    kill_once(&wd, &args, |wd| {
        wd.exists("output/messages.csv")
            && checkpoints(wd).first().and_then(parents_done) >= Some(4)
    });
    wd.google.configure(|c| c.latency = Duration::ZERO);
    let mut resume = args.to_vec();
    resume[1] = "--resume";
    let run = wd.run(&resume);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let csv = wd.read("output/messages.csv");
    // The window finished before the stop is in the file already: left out, not appended
    // again. The rows are in window order: never a 03-02 row before a 03-01 row.
    assert!(
        run.stderr
            .contains("messages 2024-03-01: already in output/messages.csv, skipped\n"),
        "{}",
        run.stderr
    );
    let windows: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    assert!(
        windows.windows(2).all(|w| w[0] <= w[1]),
        "window 2's rows inside window 1's: {windows:?}\n{}",
        run.stderr
    );
    for day in ["2024-03-01", "2024-03-02"] {
        let rows = windows.iter().filter(|w| **w == day).count();
        assert_eq!(rows, MESSAGES, "{day}: each window once\n{}", run.stderr);
    }
}

#[test]
fn a_checkpoint_that_cannot_be_written_leaves_no_temporary_file() {
    // As on a full disk: the checkpoints' folder cannot be made (a file is in its place).
    let wd = workdir(
        Config {
            drive_quota_page: Some(4),
            ..Config::default()
        },
        "files.csv",
    );
    wd.write("output/old.txt", "");
    wd.write("output/.gscrape/checkpoints", "not a folder");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("cannot write its checkpoint"),
        "{}",
        run.stderr
    );
    // Nothing names the rows written before the wall: they are not kept.
    let hidden: Vec<String> = wd
        .list("output")
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert_eq!(hidden, Vec::<String>::new());
    assert!(!run.stderr.contains("--resume"), "{}", run.stderr);
}

/// A fan-out below a fan-out: 2 users → each user's `MESSAGES` message ids (pages of 5) →
/// each message, one chain at a time, the message read as `users.primaryEmail` (two levels
/// up) and with `ids`' computed column.
fn grandchild_fan_out(config: Config) -> Workdir {
    let wd = Workdir::with_config(Config {
        gmail_messages: MESSAGES,
        directory_users: 2,
        ..config
    });
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\n\
         output = false\ncolumns = [\"id\"]\n[params]\ncustomer = \"my_customer\"\n",
    );
    wd.write(
        "queries/ids.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         for_each = \"users\"\noutput = false\n\
         columns = [\"id\", { name = \"owner\", value = \"{{ users.name.fullName }}\" }]\n\
         [params]\nuserId = \"{{ users.primaryEmail }}\"\nmaxResults = 5\n",
    );
    wd.write(
        "queries/messages.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\nfor_each = \"ids\"\n\
         concurrency = 1\ncolumns = [\"id\", { name = \"user\", value = \"{{ users.primaryEmail }}\" }, \
         { name = \"owner\", value = \"{{ ids.owner }}\" }]\n\
         [params]\nuserId = \"{{ users.primaryEmail }}\"\nid = \"{{ ids.id }}\"\n",
    );
    wd
}

#[test]
fn a_killed_grandchild_resumes_reading_the_records_above_its_parent() {
    let wd = grandchild_fan_out(Config {
        latency: Duration::from_millis(100),
        ..Config::default()
    });
    let at_least = MESSAGES as u64 + 3;
    let done = kill_fan_out_after(&wd, at_least) as usize;
    assert!((MESSAGES + 3..2 * MESSAGES).contains(&done), "{done}");

    let gets = |wd: &Workdir| -> Vec<String> {
        wd.google
            .seen_under("/gmail/v1/users/")
            .iter()
            .map(|s| s.path().to_owned())
            .filter(|p| !p.ends_with("/messages"))
            .collect()
    };
    let before = gets(&wd).len();
    wd.google.configure(|c| c.latency = Duration::ZERO);
    let run = wd.run(&["run", "--resume"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "messages: resuming after parent record {done} ({done} rows)"
        )),
        "{}",
        run.stderr
    );
    // The second user's messages it lacked, each asked for as that user.
    let expected: Vec<String> = (done - MESSAGES..MESSAGES)
        .map(|i| {
            format!(
                "/gmail/v1/users/user1%40example.com/messages/{}",
                crate::support::fake_google::gmail_message_id(i)
            )
        })
        .collect();
    assert_eq!(gets(&wd)[before..], expected);

    let fresh = grandchild_fan_out(Config::default());
    assert_eq!(fresh.run(&["run", "--quiet"]).code, 0);
    let csv = wd.read("output/messages.csv");
    assert_eq!(csv, fresh.read("output/messages.csv"));
    assert!(csv.ends_with(&format!(
        "{},user1@example.com,Given1 Family1\r\n",
        crate::support::fake_google::gmail_message_id(MESSAGES - 1)
    )));
    assert!(checkpoints(&wd).is_empty());
}
