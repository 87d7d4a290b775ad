//! Pages that are not what their status claims: each fails the query (after retries where the
//! fault may pass), keeps the previous file, and says what was wrong and where.

use crate::support::fake_google::{BadPage, PageFault};
use crate::support::{Config, Workdir};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\", \"name\"]\n[params]\npageSize = 25\n";

/// A work dir whose first run wrote `output/files.csv` (250 files); returns it and the CSV.
fn with_a_good_file() -> (Workdir, String) {
    let wd = Workdir::with_config(Config::default());
    wd.write("queries/files.toml", FILES);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/files.csv");
    assert_eq!(
        csv::Reader::from_reader(csv.as_bytes()).records().count(),
        250
    );
    (wd, csv)
}

/// Runs again with page 2 answered as `kind` `times` times; the run's stderr, checked to have
/// failed and kept the file.
fn fails_keeping_the_file(kind: BadPage, times: usize) -> (Workdir, String) {
    let (wd, before) = with_a_good_file();
    wd.google
        .configure(|c| c.drive_bad_page = Some(PageFault::new(2, kind, times)));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{kind:?}: {run:?}");
    assert_eq!(wd.read("output/files.csv"), before, "{kind:?}");
    assert_eq!(wd.list("output"), ["files.csv"], "no temporary file left");
    assert!(
        run.stderr.contains("output/files.csv  previous file kept"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.lines().all(|line| line.len() < 1000),
        "{}",
        run.stderr
    );
    (wd, run.stderr)
}

fn page_2_url(wd: &Workdir) -> String {
    format!(
        "http://127.0.0.1:{}/drive/v3/files?pageSize=25&supportsAllDrives=true&includeItemsFromAllDrives=true&fields=files%28id%2Cname%29%2CnextPageToken&pageToken=tok-25",
        wd.google.addr.port()
    )
}

#[test]
fn an_empty_200_is_retried_then_fails() {
    let (wd, stderr) = fails_keeping_the_file(BadPage::Empty, usize::MAX);
    let url = page_2_url(&wd);
    assert!(
        stderr.starts_with(&format!(
            "error: files: HTTP 200 with an empty body [GET {url}]: a page of records was expected (gave up after 5 retries)"
        )),
        "{stderr}"
    );
}

#[test]
fn a_204_is_retried_then_fails() {
    let (wd, stderr) = fails_keeping_the_file(BadPage::NoContent, usize::MAX);
    let url = page_2_url(&wd);
    assert!(
        stderr.starts_with(&format!(
            "error: files: HTTP 204 with an empty body [GET {url}]: a page of records was expected (gave up after 5 retries)"
        )),
        "{stderr}"
    );
}

#[test]
fn an_empty_page_that_passes_is_fetched_again() {
    let (wd, before) = with_a_good_file();
    wd.google.configure(|c| {
        c.drive_bad_page = Some(PageFault::new(2, BadPage::Empty, 1));
    });
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), before);
    let page_2 = wd
        .google
        .seen_under("/drive/")
        .iter()
        .filter(|s| s.target.ends_with("pageToken=tok-25"))
        .count();
    assert_eq!(
        page_2, 3,
        "page 2 of the first run, then twice in the second"
    );
}

#[test]
fn an_error_in_a_200_fails_at_once() {
    let (wd, stderr) = fails_keeping_the_file(BadPage::ErrorInBody, usize::MAX);
    let url = page_2_url(&wd);
    assert!(
        stderr.starts_with(&format!(
            "error: files: HTTP 200 with an error in its body: PERMISSION_DENIED/forbidden The caller does not have permission [GET {url}]; the export is checkpointed: `gscrape run --resume` continues it (output/files.csv left unchanged)"
        )),
        "{stderr}"
    );
}

#[test]
fn a_page_token_that_is_not_a_string_fails() {
    for (kind, found) in [
        (BadPage::TokenNumber, "the number 12345"),
        (BadPage::TokenObject, "an object"),
    ] {
        let (wd, stderr) = fails_keeping_the_file(kind, usize::MAX);
        let url = page_2_url(&wd);
        assert!(
            stderr.starts_with(&format!(
                "error: files: the next-page token `nextPageToken` is {found}, not a string; stopped rather than guess where the next page starts [{url}]"
            )),
            "{stderr}"
        );
    }
}

#[test]
fn records_that_are_not_objects_fail() {
    // The same words as the general path's (below): the scan hands such a page to its check.
    let (wd, stderr) = fails_keeping_the_file(BadPage::NotObjects, usize::MAX);
    let url = page_2_url(&wd);
    assert!(
        stderr.starts_with(&format!(
            "error: files: the response of {url} is not a page of records: record 1 of `files` is the number 1, not a JSON object"
        )),
        "{stderr}"
    );
}

#[test]
fn records_that_are_not_objects_fail_on_the_general_path_too() {
    // Default columns read whole records (serde_json), not cells from the page text.
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         explode = \"parents\"\n[params]\npageSize = 25\n",
    );
    wd.google.configure(|c| {
        c.drive_bad_page = Some(PageFault::new(1, BadPage::NotObjects, usize::MAX));
    });
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "is not a page of records: record 1 of `files` is the number 1, not a JSON object"
        ),
        "{}",
        run.stderr
    );
    assert!(wd.list("output").is_empty());
}

#[test]
fn long_urls_and_messages_are_cut_in_messages() {
    let wd = Workdir::new();
    let columns: Vec<String> = [
        "canAcceptOwnership",
        "canAddChildren",
        "canComment",
        "canCopy",
        "canDelete",
        "canDownload",
        "canEdit",
        "canListChildren",
        "canModifyContent",
        "canModifyLabels",
        "canReadLabels",
        "canReadRevisions",
        "canRemoveChildren",
        "canRename",
        "canShare",
    ]
    .iter()
    .map(|c| format!("\"capabilities.{c}\""))
    .collect();
    wd.write(
        "queries/files.toml",
        &format!(
            "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\ncolumns = [{}]\n",
            columns.join(", ")
        ),
    );
    let message = format!("Invalid value: {}", "x".repeat(5000));
    wd.google
        .configure(|c| c.drive_error = Some(message.clone()));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    let error = run.stderr.lines().next().unwrap();
    assert!(error.chars().count() < 1000, "{error}");
    let url = error
        .split(" [GET ")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap();
    assert_eq!(url.chars().count(), 201, "{url}");
    assert!(url.contains('…') && url.ends_with("nextPageToken"), "{url}");
    let sent = wd.google.seen_under("/drive/")[0].target.clone();
    assert!(sent.len() > 300, "the real request is longer: {sent}");
    assert!(
        error.contains(&format!("Invalid value: {}…(5015 bytes)", "x".repeat(285))),
        "{error}"
    );
}

#[test]
fn a_page_token_of_a_megabyte_fails_the_query_in_one_short_line() {
    // A server's fault in the middle of a run: exit 1, like the other bad pages, and a line
    // that quotes no more than a few hundred characters of the token.
    let wd = Workdir::new();
    wd.write("queries/files.toml", FILES);
    let token = "T".repeat(1 << 20);
    let page = format!(r#"{{"files":[{{"id":"f1","name":"one"}}],"nextPageToken":"{token}"}}"#);
    wd.google.configure(|c| c.drive_raw_page = Some(page));
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 1, "{}", &run.stderr[..run.stderr.len().min(2000)]);
    let first = run.stderr.lines().next().unwrap();
    assert!(first.chars().count() < 600, "{first}");
    assert!(
        first
            .starts_with("error: files: the next-page token `nextPageToken` is 1048576 bytes long"),
        "{first}"
    );
    assert!(
        run.stderr.lines().all(|line| line.chars().count() < 600),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    let summary = wd.read("summary.json");
    assert!(summary.len() < 5000, "{}", &summary[..2000]);
    assert!(summary.contains("\"failure\": \"remote\""), "{summary}");
    assert!(wd.list("output").is_empty());
}
