//! Schedules that lose nothing: an incremental query never replaces the records its cursor
//! has passed, a backfill run again does not append its windows twice, and a fan-out can skip
//! the items deleted between its parent's list and its own request (`on_missing = "skip"`).

use crate::support::fake_google::{drive_modified_time, gmail_message};
use crate::support::{csv_line, Config, Workdir};

/// An incremental Drive query of README's pattern: a file per day, only what changed since the
/// cursor its last run kept.
const CHANGES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\", \"modifiedTime\"]\noutput = \"changes_{{ today }}.csv\"\n\
    [params]\nq = \"modifiedTime > '{{ since }}'\"\n\
    [incremental]\ncursor = \"modifiedTime\"\ninitial = \"2000-01-01T00:00:00Z\"\n";

/// The CSV of `CHANGES` holding Drive files `files`.
fn changes(files: std::ops::Range<usize>) -> String {
    let mut csv = csv_line(&["id", "modifiedTime"]);
    for i in files {
        csv += &csv_line(&[&format!("f{i:04}"), &drive_modified_time(i)]);
    }
    csv
}

/// Files whose `modifiedTime` grows with their number: adding some makes newer ones.
fn changing_drive(files: usize) -> Workdir {
    let wd = Workdir::with_config(Config {
        drive_files: files,
        drive_modified: true,
        ..Config::default()
    });
    wd.write("queries/changes.toml", CHANGES);
    wd
}

#[test]
fn an_incremental_run_never_replaces_the_records_its_cursor_passed() {
    let wd = changing_drive(3);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let today = "output/changes_2024-03-15.csv";
    assert_eq!(wd.read(today), changes(0..3));
    let cursor = wd.read("output/.gscrape/cursors/changes.txt");
    assert_eq!(cursor, drive_modified_time(2));

    // Two files are added; a second run the same day would replace today's file with them
    // alone, and the first three would be lost: refused before any request.
    wd.google.configure(|c| c.drive_files = 5);
    let asked = wd.google.seen_under("/drive/").len();
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: queries/changes.toml: output: {today} exists, and this run asks only for \
             what is newer than the cursor its last run kept (\"2024-03-01T00:00:02.000Z\"): \
             replacing the file would lose the records it holds; set `append = true` (or \
             --append), give each run an output of its own, or re-export on purpose with \
             --full or --since VALUE\n"
        )
    );
    let validate = wd.run(&["validate"]);
    assert_eq!(validate.code, 2, "validate says so too: {validate:?}");
    assert_eq!(validate.stdout.replace("error  ", "error: "), run.stderr);
    assert_eq!(wd.google.seen_under("/drive/").len(), asked, "no request");
    assert_eq!(wd.read(today), changes(0..3), "the file is as it was");
    assert_eq!(wd.read("output/.gscrape/cursors/changes.txt"), cursor);

    // Appended, the new rows go on after the old ones and the cursor moves.
    let run = wd.run(&["run", "--append"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read(today), changes(0..5));
    assert_eq!(
        wd.google.seen_under("/drive/").last().unwrap().param("q"),
        Some(format!("modifiedTime > '{cursor}'"))
    );
    assert_eq!(
        wd.read("output/.gscrape/cursors/changes.txt"),
        drive_modified_time(4)
    );

    // The next day's file is another one: it holds what is new since.
    wd.google.configure(|c| c.drive_files = 6);
    let next_day = |args: &[&str]| {
        let output = wd
            .command(args)
            .env("GSCRAPE_TODAY", "2024-03-16")
            .output()
            .unwrap();
        crate::support::finish(output)
    };
    let tomorrow = "output/changes_2024-03-16.csv";
    let run = next_day(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read(tomorrow), changes(5..6));
    assert_eq!(next_day(&["run"]).code, 2, "and is not replaced either");

    // --full and --since re-export on purpose: the new file holds everything from that point.
    let run = next_day(&["run", "--full"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read(tomorrow), changes(0..6));
    let run = next_day(&["run", "--since", &drive_modified_time(3)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read(tomorrow), changes(4..6));
    assert_eq!(
        wd.read(today),
        changes(0..5),
        "the day before is left alone"
    );
}

/// A backfill appending each day to one file, two files a day.
const DAILY: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\", { name = \"day\", value = \"{{ window.start }}\" }]\n\
    output = \"files.csv\"\nappend = true\n\
    [params]\npageSize = 2\nq = \"modifiedTime >= '{{ window.start }}'\"\n";

/// The CSV of `DAILY` after appending `days` (`2024-03-DD`).
fn daily(days: &[u32]) -> String {
    let mut csv = csv_line(&["id", "day"]);
    for day in days {
        for id in ["f0000", "f0001"] {
            csv += &csv_line(&[id, &format!("2024-03-{day:02}")]);
        }
    }
    csv
}

fn backfill(wd: &Workdir, to: &str, more: &[&str]) -> crate::support::Run {
    let mut args = vec!["run", "--from", "2024-03-01", "--to", to];
    args.extend_from_slice(more);
    wd.run(&args)
}

#[test]
fn an_appending_backfill_run_again_skips_the_windows_its_file_holds() {
    let wd = Workdir::with_config(Config {
        drive_files: 2,
        ..Config::default()
    });
    wd.write("queries/files.toml", DAILY);
    let run = backfill(&wd, "2024-03-03", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), daily(&[1, 2, 3]));
    let asked = wd.google.seen_under("/drive/").len();
    assert_eq!(asked, 3);

    // Again: every window is in the file already. Nothing is asked, nothing appended.
    let run = backfill(&wd, "2024-03-03", &["--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), daily(&[1, 2, 3]));
    assert_eq!(wd.google.seen_under("/drive/").len(), asked);
    for day in 1..=3 {
        let line = format!("files 2024-03-0{day}: already in output/files.csv, skipped");
        assert!(
            run.stderr.lines().any(|l| l == line),
            "{line}\n{}",
            run.stderr
        );
        let row = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("files 2024-03-0{day}  ")))
            .unwrap_or_else(|| panic!("no summary row:\n{}", run.stderr));
        assert!(
            row.contains("  skipped  ")
                && row.ends_with("output/files.csv  the window is in the file already"),
            "{row}"
        );
    }
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    let statuses: Vec<(&str, &str, bool)> = summary["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let name = q["name"].as_str().unwrap();
            (name, q["status"].as_str().unwrap(), q["written"] == true)
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("files 2024-03-01", "skipped", false),
            ("files 2024-03-02", "skipped", false),
            ("files 2024-03-03", "skipped", false),
        ]
    );
    assert_eq!(summary["exit_code"], 0);

    // A longer period: only the new window is asked for and appended.
    let run = backfill(&wd, "2024-03-04", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), daily(&[1, 2, 3, 4]));
    assert_eq!(wd.google.seen_under("/drive/").len(), asked + 1);
}

#[test]
fn a_backfilled_file_changed_since_is_not_trusted_to_hold_its_windows() {
    let wd = Workdir::with_config(Config {
        drive_files: 2,
        ..Config::default()
    });
    wd.write("queries/files.toml", DAILY);
    assert_eq!(backfill(&wd, "2024-03-02", &[]).code, 0);
    let kept = daily(&[1, 2]);
    let asked = wd.google.seen_under("/drive/").len();

    // Edited by hand: gscrape cannot tell which windows it still holds. Refused, as it was.
    let edited = format!("{kept}f9999,by hand\r\n");
    wd.write("output/files.csv", &edited);
    let run = backfill(&wd, "2024-03-02", &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: queries/files.toml: output: output/files.csv is not as this query's backfill \
             left it ({} bytes then, {} now), so which windows it holds is not known: move it \
             away to export them all again, or remove output/.gscrape/backfills/files.json to \
             append to it as it is\n",
            kept.len(),
            edited.len()
        )
    );
    assert_eq!(wd.google.seen_under("/drive/").len(), asked, "no request");
    assert_eq!(wd.read("output/files.csv"), edited);

    // A file that is gone holds no window: every window is exported again.
    std::fs::remove_file(wd.path().join("output/files.csv")).unwrap();
    let run = backfill(&wd, "2024-03-02", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), kept);

    // Windows of another size that hold a day the file has, and days it has not: neither
    // skipping nor appending would be right.
    let run = backfill(&wd, "2024-03-07", &["--step", "week"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/files.toml: output: output/files.csv holds 2024-03-01..2024-03-02 of an \
         earlier backfill, part of the window 2024-03-01..2024-03-07: appending it would repeat \
         those rows and skipping it would leave out the rest; backfill with the windows of \
         before (--step), or move the file away\n"
    );
    assert_eq!(wd.read("output/files.csv"), kept);
}

/// A parent and a fan-out child each appending a backfill's windows to a file of its own.
#[test]
fn a_backfilled_parent_whose_child_lacks_the_window_is_read_again_not_appended() {
    let wd = Workdir::with_config(Config {
        gmail_messages: 2,
        ..Config::default()
    });
    let window = "{ name = \"day\", value = \"{{ window.start }}\" }";
    wd.write(
        "queries/ids.toml",
        &format!(
            "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
             columns = [\"id\", {window}]\nappend = true\n[params]\nuserId = \"me\"\n"
        ),
    );
    wd.write(
        "queries/details.toml",
        &format!(
            "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
             for_each = \"ids\"\ncolumns = [\"id\", {window}]\nappend = true\n\
             [params]\nuserId = \"me\"\nid = \"{{{{ ids.id }}}}\"\n"
        ),
    );
    let day = |wd: &Workdir, only: &str| {
        wd.run(&[
            "run",
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-01",
            "--only",
            only,
        ])
    };
    assert_eq!(day(&wd, "ids").code, 0);
    let ids = "id,day\r\nm01000,2024-03-01\r\nm01001,2024-03-01\r\n";
    assert_eq!(wd.read("output/ids.csv"), ids);

    let run = day(&wd, "details");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "ids 2024-03-01: already in output/ids.csv; its records are read again for the \
             queries it feeds, not written\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(wd.read("output/ids.csv"), ids, "not appended twice");
    assert_eq!(wd.read("output/details.csv"), ids, "the child has them all");

    // Both hold the window now: nothing runs.
    let asked = wd.google.seen_under("/gmail/").len();
    let run = day(&wd, "details");
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.google.seen_under("/gmail/").len(), asked);
    assert!(
        run.stderr
            .contains("details 2024-03-01: already in output/details.csv, skipped\n"),
        "{}",
        run.stderr
    );
}

/// The ids of `messages` messages, feeding `DETAILS`.
const MESSAGE_IDS: &str =
    "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
    output = false\n[params]\nuserId = \"me\"\n";

/// Gets each listed message; `{on_missing}` is replaced.
const DETAILS: &str = "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
    for_each = \"messages\"\ncolumns = [\"id\", \"snippet\"]\n{on_missing}\
    [params]\nuserId = \"me\"\nid = \"{{ messages.id }}\"\n";

fn details_workdir(messages: usize, gone: Vec<(usize, u16)>, on_missing: &str) -> Workdir {
    let wd = Workdir::with_config(Config {
        gmail_messages: messages,
        gmail_gone: gone,
        ..Config::default()
    });
    wd.write("queries/messages.toml", MESSAGE_IDS);
    wd.write(
        "queries/details.toml",
        &DETAILS.replace("{on_missing}", on_missing),
    );
    wd
}

/// The CSV of `DETAILS` for the messages `kept`.
fn details(kept: impl Iterator<Item = usize>) -> String {
    let mut csv = csv_line(&["id", "snippet"]);
    for i in kept {
        let m = gmail_message(i);
        csv += &csv_line(&[m["id"].as_str().unwrap(), m["snippet"].as_str().unwrap()]);
    }
    csv
}

/// The entry of query `name` in a JSON summary.
fn query_named<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let queries = summary["queries"].as_array().unwrap();
    queries.iter().find(|q| q["name"] == name).unwrap()
}

#[test]
fn a_fan_out_skips_the_items_gone_since_its_parent_listed_them_when_told_to() {
    let skip = "on_missing = \"skip\"\n";
    let wd = details_workdir(7, vec![(2, 404), (5, 410)], skip);
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.read("output/details.csv"),
        details([0, 1, 3, 4, 6].into_iter())
    );
    let url = |i: usize| {
        format!(
            "{}gmail/v1/users/me/messages/{}",
            wd.google.root_url(),
            gmail_message(i)["id"].as_str().unwrap()
        )
    };
    assert!(
        run.stderr.lines().any(|l| {
            l
            == "details: 5 records, 5 pages → output/details.csv (2 skipped: gone, HTTP 404 or 410)"
        }),
        "{}",
        run.stderr
    );
    let row = run
        .stderr
        .lines()
        .find(|l| l.starts_with("details ") && l.contains("  ok  "))
        .unwrap();
    assert!(
        row.ends_with(&format!(
            "; 2 skipped as gone (HTTP 404 or 410): {}, {}",
            url(2),
            url(5)
        )),
        "{row}"
    );
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(
        query_named(&summary, "details")["skipped"],
        serde_json::json!({"count": 2, "items": [url(2), url(5)]})
    );
    assert_eq!(
        query_named(&summary, "messages")["skipped"],
        serde_json::Value::Null
    );

    // Many gone: all counted, the first 20 listed (in the parent's order), 3 in the table.
    let gone: Vec<(usize, u16)> = (0..30).filter(|i| i % 6 != 0).map(|i| (i, 404)).collect();
    let wd = details_workdir(30, gone, skip);
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.read("output/details.csv"),
        details((0..30).filter(|i| i % 6 == 0))
    );
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    let skipped = &query_named(&summary, "details")["skipped"];
    assert_eq!(skipped["count"], 25);
    let listed: Vec<&str> = skipped["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let first: Vec<usize> = (0..30).filter(|i| i % 6 != 0).take(20).collect();
    assert_eq!(listed.len(), 20);
    assert!(listed
        .iter()
        .zip(&first)
        .all(|(l, i)| l.ends_with(gmail_message(*i)["id"].as_str().unwrap())));
    let row = run
        .stderr
        .lines()
        .find(|l| l.starts_with("details ") && l.contains("  ok  "))
        .unwrap();
    assert!(row.ends_with(" and 22 more"), "{row}");
}

#[test]
fn a_missing_item_fails_its_fan_out_by_default_and_the_key_is_checked() {
    let wd = details_workdir(7, vec![(2, 404)], "");
    wd.write("output/details.csv", "old\r\n");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("error: details: HTTP 404 NOT_FOUND/notFound"),
        "{}",
        run.stderr
    );
    // The failure says how to skip such items.
    assert!(
        run.stderr.contains(
            "; the item is gone: if items may be deleted between the parent's list and this \
             request, set `on_missing = \"skip\"` in the query to skip them"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(wd.read("output/details.csv"), "old\r\n");
    let explicit = details_workdir(7, vec![(2, 404)], "on_missing = \"fail\"\n");
    assert_eq!(explicit.run(&["run"]).code, 1);

    let wd = details_workdir(7, vec![], "on_missing = \"ignore\"\n");
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "error  queries/details.toml:6: on_missing: \"ignore\" is not a choice: use \"fail\" \
             (the default) or \"skip\"\n"
        ),
        "{}",
        run.stdout
    );
    // A query of its own has one request: its item gone is an error, so that its previous
    // file is kept.
    wd.write(
        "queries/details.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
         on_missing = \"skip\"\n[params]\nuserId = \"me\"\nid = \"m1002\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/details.toml:4: on_missing: \"skip\" is for a fan-out query \
         (for_each), one of whose many requests may find its item gone; a query of its own \
         that gets 404 or 410 fails and keeps its previous file: remove the key\n"
    );
    assert!(wd.google.seen_under("/gmail/").is_empty());
}
