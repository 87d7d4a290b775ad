//! The run engine: retries under faults, the concurrency cap, rate limits, fan-out, failure
//! semantics, interruption, the summary and its JSON.

use std::process::Stdio;
use std::time::Duration;

use crate::support::fake_google::{drive_file, gmail_message, Fault};
use crate::support::{csv_line, finish, Config, OutputOf, Workdir};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\", \"name\", \"owners.emailAddress\"]\n[params]\npageSize = 25\n";

const MESSAGE_IDS: &str =
    "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
    output = false\n[params]\nuserId = \"me\"\nmaxResults = 100\n";

const MESSAGES: &str = "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
    for_each = \"messages\"\n\
    columns = [\"id\", \"snippet\", \"payload.headers.value\", { name = \"listed in thread\", value = \"{{ messages.threadId }}\" }]\n\
    [params]\nuserId = \"me\"\nid = \"{{ messages.id }}\"\nformat = \"metadata\"\n";

/// The expected CSV of `MESSAGES` for messages `0..n`.
fn expected_messages(n: usize) -> String {
    let mut csv = csv_line(&["id", "snippet", "payload.headers.value", "listed in thread"]);
    for i in 0..n {
        let m = gmail_message(i);
        let headers = format!("Subject {i};Ann <ann@example.com>");
        csv.push_str(&csv_line(&[
            m["id"].as_str().unwrap(),
            m["snippet"].as_str().unwrap(),
            &headers,
            m["threadId"].as_str().unwrap(),
        ]));
    }
    csv
}

fn fan_out_workdir(messages: usize) -> Workdir {
    let wd = Workdir::with_config(Config {
        gmail_messages: messages,
        ..Config::default()
    });
    wd.write("queries/messages.toml", MESSAGE_IDS);
    wd.write("queries/message_details.toml", MESSAGES);
    wd
}

#[test]
fn a_fan_out_fetches_every_listed_message_in_order() {
    let wd = fan_out_workdir(520);
    let run = wd.run(&["run", "--concurrency", "16"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.read("output/message_details.csv"),
        expected_messages(520)
    );
    assert_eq!(
        wd.list("output"),
        ["message_details.csv"],
        "output = false writes no CSV"
    );
    let gets = wd.google.seen_under("/gmail/v1/users/me/messages/");
    assert_eq!(gets.len(), 520);
    assert!(
        gets[0]
            .target
            .ends_with("?format=metadata&fields=id%2Csnippet%2Cpayload%2Fheaders%2Fvalue"),
        "{}",
        gets[0].target
    );
    assert_eq!(
        wd.google.seen_under("/gmail/v1/users/me/messages").len() - gets.len(),
        6,
        "the list paged 6 times"
    );
    assert!(
        run.stderr
            .contains("messages: 520 records, 6 pages (output = false)\n"),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("message_details: 520 records, 520 pages → output/message_details.csv\n"));
}

#[test]
fn faults_are_retried_without_changing_a_byte() {
    let clean = fan_out_workdir(40);
    clean.write("queries/files.toml", FILES);
    assert_eq!(clean.run(&["run"]).code, 0);
    let files = clean.read("output/files.csv");
    let details = clean.read("output/message_details.csv");
    assert_eq!(details, expected_messages(40));

    for fault in [
        Fault::TooManyRequests { retry_after: 2 },
        Fault::Unavailable,
        Fault::RateLimited,
    ] {
        let wd = fan_out_workdir(40);
        wd.write("queries/files.toml", FILES);
        wd.google.configure(|c| c.faults = Some((3, fault)));
        let run = wd.run(&["run", "--summary-json", "summary.json"]);
        assert_eq!(run.code, 0, "{fault:?}: {run:?}");
        assert_eq!(wd.read("output/files.csv"), files, "{fault:?}");
        assert_eq!(wd.read("output/message_details.csv"), details, "{fault:?}");
        let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
        let sum = |key: &str| -> u64 {
            summary["queries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q[key].as_u64().unwrap())
                .sum()
        };
        let distinct: std::collections::HashSet<String> = wd
            .google
            .seen()
            .iter()
            .filter(|s| !s.path().starts_with("/discovery"))
            .map(|s| format!("{} {}", s.method, s.target))
            .collect();
        let faults = distinct.len() / 3;
        // A refusal for rate is waited out by the quota governor, not retried: it spends
        // none of --max-retries, and the summary counts it apart.
        let (retries, refused) = match fault {
            Fault::Unavailable => (faults, 0),
            _ => (0, faults),
        };
        assert_eq!(
            (sum("retries") as usize, sum("quota_rejections") as usize),
            (retries, refused),
            "{fault:?}: one retry, or one refusal waited out, per injected fault"
        );
    }
}

#[test]
fn a_quota_wall_fails_at_once_and_says_so() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.google
        .configure(|c| c.faults = Some((2, Fault::QuotaExhausted)));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1);
    let port = wd.google.addr.port();
    assert!(run.stderr.starts_with(&format!(
        "error: files: HTTP 403 PERMISSION_DENIED/dailyLimitExceeded Daily Limit Exceeded \
         [GET http://127.0.0.1:{port}/drive/v3/files?pageSize=25&supportsAllDrives=true&includeItemsFromAllDrives=true&fields=files%28id%2Cname%2Cowners%2FemailAddress%29%2CnextPageToken&pageToken=tok-25] — a quota wall, not a passing \
         error: the API's quota is used up until it resets (or is raised in the Google Cloud console)"
    )), "{}", run.stderr);
    assert_eq!(
        wd.google.seen_under("/drive/").len(),
        2,
        "no retry of a quota wall"
    );
    assert!(
        run.stderr
            .trim_end()
            .ends_with("output/files.csv  no file written (quota wall)"),
        "the summary names the kind: {}",
        run.stderr
    );
}

#[test]
fn a_token_without_the_scope_a_method_needs_is_told_which_scopes_it_accepts() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.google.configure(|c| c.insufficient_scopes = true);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    let port = wd.google.addr.port();
    let scopes = [
        "drive",
        "drive.appdata",
        "drive.file",
        "drive.meet.readonly",
        "drive.metadata",
        "drive.metadata.readonly",
        "drive.photos.readonly",
        "drive.readonly",
    ]
    .map(|s| format!("https://www.googleapis.com/auth/{s}"))
    .join(", ");
    let said = format!(
        "error: files: HTTP 403 PERMISSION_DENIED/insufficientPermissions Request had insufficient \
         authentication scopes. [GET http://127.0.0.1:{port}/drive/v3/files?pageSize=25&supportsAllDrives=true&includeItemsFromAllDrives=true&fields=files%28id%2Cname%2Cowners%2FemailAddress%29%2CnextPageToken] \
         — the access token was granted none of the scopes drive.files.list accepts: {scopes}; \
         log in again with `gscrape auth login` (it asks for the scopes your queries need), or \
         give a token granted one of them (output/files.csv left unchanged)\n"
    );
    assert!(run.stderr.starts_with(&said), "{}", run.stderr);
    assert_eq!(wd.google.seen_under("/drive/").len(), 1, "no retry");
}

#[test]
fn retries_give_up_after_max_retries() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    wd.google
        .configure(|c| c.faults = Some((1, Fault::Unavailable)));
    let run = wd.run(&["run", "--max-retries", "2"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("The service is currently unavailable. [GET "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(gave up after 2 retries)"),
        "{}",
        run.stderr
    );
    assert_eq!(wd.google.seen_under("/drive/").len(), 3);
}

#[test]
fn the_server_never_sees_more_requests_than_the_cap() {
    for cap in [1, 4] {
        let wd = fan_out_workdir(40);
        wd.google
            .configure(|c| c.latency = Duration::from_millis(25));
        wd.write("queries/files.toml", FILES);
        let run = wd.run(&["run", "--concurrency", &cap.to_string()]);
        assert_eq!(run.code, 0, "{run:?}");
        let max = wd.google.max_in_flight();
        assert!(max <= cap, "cap {cap}: the server saw {max} at once");
        if cap > 1 {
            assert!(max >= 2, "cap {cap}: requests did run concurrently ({max})");
        }
        assert_eq!(wd.read("output/message_details.csv"), expected_messages(40));
    }
}

#[test]
fn a_rate_limit_spaces_requests_to_an_api() {
    let wd = Workdir::with_config(Config {
        drive_files: 100,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &FILES
            .replace("[params]", "qps = 20\n[params]")
            .replace("pageSize = 25", "pageSize = 10"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let requests = wd.google.seen_under("/drive/");
    assert_eq!(requests.len(), 10);
    let spread = requests[9].at - requests[0].at;
    assert!(
        spread >= Duration::from_millis(9 * 50 * 9 / 10),
        "10 requests at 20/s took only {spread:?}"
    );
}

#[test]
fn a_failed_parent_fails_its_fan_out_and_keeps_its_file() {
    let wd = fan_out_workdir(30);
    wd.write("output/message_details.csv", "old export\r\n");
    wd.write(
        "queries/messages.toml",
        &MESSAGE_IDS.replace("maxResults = 100", "maxResults = 10"),
    );
    wd.google
        .configure(|c| c.faults = Some((1, Fault::QuotaExhausted)));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(
        "error: message_details: its parent query `messages` did not finish, so this export would be incomplete \
         (output/message_details.csv left unchanged)"
    ), "{}", run.stderr);
    assert_eq!(wd.read("output/message_details.csv"), "old export\r\n");
}

#[test]
fn fail_fast_stops_the_other_queries() {
    let wd = Workdir::new();
    wd.google
        .configure(|c| c.latency = Duration::from_millis(100));
    wd.write("queries/files.toml", FILES);
    wd.write("queries/users.toml", "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"id\"]\n");
    let run = wd.run(&["run", "--fail-fast"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        // (and, when a page was in before the cancel, checkpointed for `--resume`)
        run.stderr
            .contains("files: cancelled (--fail-fast); previous output kept"),
        "{}",
        run.stderr
    );
    assert!(wd.google.seen_under("/drive/").len() < 10);
    assert!(wd.list("output").is_empty());
}

#[test]
fn the_summary_says_what_happened_to_each_query() {
    let wd = Workdir::with_config(Config {
        gmail_messages: 7,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &FILES.replace("[params]", "max_pages = 2\n[params]"),
    );
    wd.write("queries/ids.toml", "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\ncolumns = [\"id\"]\n[params]\nuserId = \"me\"\nmaxResults = 5\n");
    wd.write("queries/users.toml", "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"id\"]\n");
    wd.write("output/users.csv", "id\r\nyesterday\r\n");
    wd.google.configure(|c| c.gmail_messages = 7);
    let run = wd.run(&["run", "--summary-json", "reports/summary.json"]);
    assert_eq!(run.code, 1);
    let table: Vec<&str> = run
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("query "))
        .collect();
    assert_eq!(
        table[0],
        "query  status  records  pages  requests  retries  seconds  output"
    );
    assert!(
        table[1].starts_with("files  ok           50      2         2        0 "),
        "{}",
        table[1]
    );
    assert!(
        table[1].contains("output/files.csv  ")
            && table[1].contains(" bytes, sha256 ")
            && table[1].ends_with("; cut short by max_pages"),
        "{}",
        table[1]
    );
    assert!(
        table[2].starts_with("ids    ok            7      2         2        0 "),
        "{}",
        table[2]
    );
    assert!(
        table[2].contains("output/ids.csv  ") && table[2].contains(" bytes, sha256 "),
        "the estimate matches: no note: {}",
        table[2]
    );
    assert!(
        table[3].ends_with("output/users.csv  previous file kept (remote error)"),
        "{}",
        table[3]
    );
    assert_eq!(wd.read("output/users.csv"), "id\r\nyesterday\r\n");

    let summary: serde_json::Value =
        serde_json::from_str(&wd.read("reports/summary.json")).unwrap();
    assert_eq!(summary["exit_code"], 1);
    let queries = summary["queries"].as_array().unwrap();
    let files = &queries[0];
    assert_eq!(
        (
            files["name"].as_str(),
            files["status"].as_str(),
            files["records"].as_u64(),
            files["pages"].as_u64()
        ),
        (Some("files"), Some("ok"), Some(50), Some(2))
    );
    assert_eq!(files["stopped_by"], "max_pages");
    assert_eq!(files["written"], true);
    assert_eq!(files["output"], "output/files.csv");
    assert_eq!(
        queries[1]["api_total"],
        serde_json::json!({"field": "resultSizeEstimate", "value": 7})
    );
    assert_eq!(queries[2]["status"], "failed");
    assert_eq!(queries[2]["failure"], "remote");
    assert_eq!(queries[2]["written"], false);
    assert!(queries[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("HTTP 400 INVALID_ARGUMENT/badRequest"));
    assert!(
        !run.stderr.contains('\u{1b}'),
        "no escape codes when stderr is not a terminal"
    );
}

#[test]
fn a_templated_output_is_reported_by_its_rendered_name() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &FILES.replace("[params]", "output = \"files_{{ today }}.csv\"\n[params]"),
    );
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let rendered = "output/files_2024-03-15.csv";
    assert!(wd.exists(rendered));
    assert!(
        run.stderr
            .lines()
            .any(|l| l == format!("files: 250 records, 10 pages → {rendered}")),
        "{}",
        run.stderr
    );
    let row = run
        .stderr
        .lines()
        .find(|l| l.starts_with("files  ok"))
        .unwrap();
    assert!(row.contains(&format!("{rendered}  ")), "{row}");
    assert!(!run.stderr.contains("{{"), "{}", run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(summary["queries"][0]["output"], rendered);
}

#[test]
fn quiet_prints_errors_only() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&["run", "--quiet"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    wd.write("queries/users.toml", "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"id\"]\n");
    let run = wd.run(&["run", "-q"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: users: HTTP 400"));
}

#[test]
fn an_interrupt_stops_the_run_and_keeps_every_previous_file() {
    let wd = Workdir::new();
    wd.google
        .configure(|c| c.latency = Duration::from_millis(150));
    wd.write("queries/files.toml", FILES);
    wd.write("output/files.csv", "yesterday's export\r\n");
    let child = wd
        .command(&["run", "--summary-json", "summary.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while wd.google.seen_under("/drive/").len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 130, "{run:?}");
    assert!(
        run.stderr.contains(
            "files: interrupted; previous output kept; checkpointed: `gscrape run --resume` continues it\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(wd.read("output/files.csv"), "yesterday's export\r\n");
    assert_eq!(
        wd.list("output"),
        ["files.csv"],
        "no temporary file is left"
    );
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(summary["exit_code"], 130);
    assert_eq!(summary["queries"][0]["status"], "interrupted");
    assert!(wd.google.seen_under("/drive/").len() < 10);
}

#[test]
fn fan_out_mistakes_are_caught_before_running() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "for_each = \"mesages\"",
            "{{ messages.id }}",
            "error: queries/message_details.toml:4: for_each: no query is named \"mesages\"; did you mean \"messages\"?",
        ),
        (
            "for_each = \"messages\"",
            "{{ message.id }}",
            "error: queries/message_details.toml:8: params.id: \"{{ message.id }}\" uses the undefined variable `message`; this query has `messages`",
        ),
    ];
    for (for_each, id, expected) in cases {
        let wd = fan_out_workdir(3);
        wd.write(
            "queries/message_details.toml",
            &MESSAGES
                .replace("for_each = \"messages\"", for_each)
                .replace("{{ messages.id }}", id),
        );
        let run = wd.run(&["run"]);
        assert_eq!(run.code, 2);
        assert_eq!(run.stderr.lines().next(), Some(*expected), "{}", run.stderr);
    }

    let wd = fan_out_workdir(3);
    wd.write(
        "queries/messages.toml",
        &MESSAGE_IDS.replace(
            "output = false",
            "output = false\nfor_each = \"message_details\"",
        ),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains(
        "error  queries/message_details.toml:4: for_each: a fan-out cycle: message_details → messages → message_details\n"
    ), "{}", run.stdout);
}

#[test]
fn a_terminal_gets_progress_bars_that_clear_into_the_summary() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: `script` (util-linux) is not installed to give the run a terminal");
        return;
    }
    let wd = Workdir::new();
    wd.google
        .configure(|c| c.latency = Duration::from_millis(120));
    wd.write("queries/files.toml", FILES);
    let binary = env!("CARGO_BIN_EXE_gscrape");
    // `script` runs the binary on a pseudo-terminal and copies what it drew to stdout.
    let output = wd
        .command(&[])
        .env("TERM", "xterm")
        .env("COLUMNS", "100")
        .output_of_program("script", &["-qec", &format!("{binary} run"), "/dev/null"]);
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{screen}");
    assert!(screen.contains("files"), "{screen}");
    assert!(
        screen.contains(" pages · "),
        "a progress line was drawn: {screen:?}"
    );
    assert!(
        screen.contains('\u{1b}'),
        "drawn with terminal control codes: {screen:?}"
    );
    let summary = screen.rsplit("query  status").next().unwrap();
    assert!(summary.contains("files  ok          250"), "{screen:?}");
    assert!(
        !summary.contains(" pages · "),
        "the bars were cleared before the summary"
    );
    assert_eq!(wd.read("output/files.csv").matches("\r\nf0").count(), 250);
}

/// A fan-out whose every chain lists `files` Drive files, in pages of 1,000, with the parent
/// message's id as a last column.
fn spilling_workdir(messages: usize, files: usize) -> Workdir {
    let wd = Workdir::with_config(Config {
        gmail_messages: messages,
        drive_files: files,
        ..Config::default()
    });
    wd.write("queries/messages.toml", MESSAGE_IDS);
    wd.write(
        "queries/files_of.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\nfor_each = \"messages\"\n\
         columns = [\"id\", \"name\", \"owners.emailAddress\", { name = \"message\", value = \"{{ messages.id }}\" }]\n\
         [params]\npageSize = 1000\nq = \"'{{ messages.id }}' in parents\"\n",
    );
    wd
}

#[test]
fn chains_past_the_memory_bound_spill_and_give_the_same_bytes() {
    let (messages, files) = (3, 6000);
    let wd = spilling_workdir(messages, files);
    let run = wd.run(&["run", "-vv", "--concurrency", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("a fan-out chain spills its rows"),
        "the later chains outgrew memory: {}",
        run.stderr
    );
    let mut expected = csv_line(&["id", "name", "owners.emailAddress", "message"]);
    for m in 0..messages {
        let message = gmail_message(m);
        for i in 0..files {
            let file = drive_file(i);
            expected.push_str(&csv_line(&[
                file["id"].as_str().unwrap(),
                file["name"].as_str().unwrap(),
                file["owners"][0]["emailAddress"].as_str().unwrap(),
                message["id"].as_str().unwrap(),
            ]));
        }
    }
    assert!(wd.read("output/files_of.csv") == expected, "rows differ");
    assert_eq!(wd.list("output"), ["files_of.csv"], "no spill file is left");
}

#[test]
fn a_failed_fan_out_that_spilled_leaves_no_file() {
    let wd = spilling_workdir(3, 6000);
    wd.google.configure(|c| c.drive_fail_page = Some(5));
    let run = wd.run(&["run", "-vv", "--concurrency", "3"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("a fan-out chain spills its rows"),
        "{}",
        run.stderr
    );
    assert!(wd.list("output").is_empty(), "{:?}", wd.list("output"));
}

#[test]
fn a_terminal_bar_shows_a_percentage_and_eta_when_the_api_tells_the_total() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: `script` (util-linux) is not installed to give the run a terminal");
        return;
    }
    let wd = Workdir::with_config(Config {
        gmail_messages: 9,
        latency: Duration::from_millis(150),
        ..Config::default()
    });
    wd.write(
        "queries/messages.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         columns = [\"id\"]\n[params]\nuserId = \"me\"\nmaxResults = 2\n",
    );
    let binary = env!("CARGO_BIN_EXE_gscrape");
    let output = wd
        .command(&[])
        .env("TERM", "xterm")
        .env("COLUMNS", "120")
        .output_of_program("script", &["-qec", &format!("{binary} run"), "/dev/null"]);
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{screen}");
    assert!(
        screen.contains("% of 9 · ETA "),
        "resultSizeEstimate = 9 gives a percentage: {screen:?}"
    );
}
