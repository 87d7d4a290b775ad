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
