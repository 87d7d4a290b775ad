//! `validate` says what `run` does (the same flags, the same pre-flight), queries only read
//! unless they say otherwise, and nothing a user asked for is ignored in silence: each case is
//! refused by both commands before any API request, or done.

use crate::support::{Run, Workdir};

const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";

/// The requests that were not for a Discovery document.
fn api_calls(wd: &Workdir) -> Vec<String> {
    wd.google
        .seen()
        .into_iter()
        .filter(|s| !s.path().starts_with("/discovery/"))
        .map(|s| format!("{} {}", s.method, s.target))
        .collect()
}

/// `validate` and `run` with `args`, both refusing with exit 2: validate's report (stdout)
/// and run's stderr, which say the same problems; nothing requested, nothing written.
fn refused_by_both(wd: &Workdir, args: &[&str]) -> (String, String) {
    let before = api_calls(wd).len();
    let validate = wd.run(&[&["validate"], args].concat());
    let run = wd.run(&[&["run"], args].concat());
    assert_eq!(validate.code, 2, "validate {args:?}: {validate:?}");
    assert_eq!(run.code, 2, "run {args:?}: {run:?}");
    let errors: String = validate
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("error  "))
        .map(|line| format!("error: {line}\n"))
        .collect();
    assert_eq!(errors, run.stderr, "validate and run say the same");
    assert_eq!(api_calls(wd).len(), before, "{:?}", api_calls(wd));
    assert!(wd.list("output").is_empty(), "{:?}", wd.list("output"));
    let said: String = validate
        .stdout
        .lines()
        .filter(|line| line.starts_with("error  "))
        .map(|line| format!("{line}\n"))
        .collect();
    (said, run.stderr)
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_method_that_writes_is_refused_unless_the_query_allows_writes() {
    let wd = Workdir::new();
    wd.write(
        "queries/delete.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.delete\"\noutput = false\n\
         columns = [\"id\"]\n[params]\nfileId = \"f1\"\n",
    );
    let (said, _) = refused_by_both(&wd, &[]);
    assert_eq!(
        said,
        "error  queries/delete.toml:3: method: drive.files.delete changes data in the account \
         (it is DELETE files/{fileId} and accepts no read-only scope); gscrape exports only \
         read: pick a list or get method, or set `allow_writes = true` if this query must write\n"
    );
    let run = wd.run(&["new", "drive", "v3", "drive.files.emptyTrash"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: drive.files.emptyTrash changes data in the account (it is DELETE files/trash \
         and accepts no read-only scope): `gscrape new --allow-writes` writes its query with \
         `allow_writes = true`\n"
    );
    assert!(run.stdout.is_empty());

    // Told, it runs; validate says that it writes.
    let written = wd.run(&[
        "new",
        "drive",
        "v3",
        "drive.files.emptyTrash",
        "--allow-writes",
    ]);
    ok(&written);
    assert!(
        written.stdout.contains("\nallow_writes = true\n"),
        "{}",
        written.stdout
    );
    wd.write(
        "queries/delete.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.delete\"\noutput = false\n\
         columns = [\"id\"]\nallow_writes = true\n[params]\nfileId = \"f1\"\n",
    );
    let validate = wd.run(&["validate"]);
    ok(&validate);
    assert_eq!(
        validate.stdout,
        "ok     delete: drive.files.delete → no file (output = false) (1 columns, one page); it WRITES to the account: it is DELETE files/{fileId} and accepts \
         no read-only scope (allow_writes = true)\n"
    );
}

#[test]
fn post_methods_that_read_are_reads() {
    let wd = Workdir::new();
    wd.write(
        "queries/report.toml",
        "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
         [params]\nproperty = \"properties/1\"\n[body]\ndimensions = [{ name = \"date\" }]\n\
         metrics = [{ name = \"activeUsers\" }]\ndateRanges = [{ startDate = \"7daysAgo\", endDate = \"today\" }]\n",
    );
    let validate = wd.run(&["validate"]);
    ok(&validate);
    assert!(!validate.stdout.contains("WRITES"), "{}", validate.stdout);
}

#[test]
fn placeholders_of_gscrape_new_are_refused() {
    let wd = Workdir::new();
    let scaffold = wd.run(&["new", "gmail", "v1", "gmail.users.messages.get"]);
    ok(&scaffold);
    assert!(scaffold.stdout.contains("\nid = \"REPLACE_ME\""));
    wd.write("queries/events.toml", &scaffold.stdout);
    let (said, _) = refused_by_both(&wd, &[]);
    let line = scaffold
        .stdout
        .lines()
        .position(|l| l.starts_with("id = "))
        .unwrap()
        + 1;
    assert_eq!(
        said,
        format!(
            "error  queries/events.toml:{line}: params.id: still \"REPLACE_ME\", the \
             placeholder `gscrape new` wrote: put the value in\n"
        )
    );
}

#[test]
fn booleans_and_numbers_of_vars_render_as_json_would() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!(
            "{FILES}columns = [\"id\"]\n[vars]\ntrash = false\nsize = 7\nratio = 0.5\n\
             [params]\nincludeItemsFromAllDrives = \"{{{{ trash }}}}\"\npageSize = \"{{{{ size }}}}\"\n\
             q = \"x = {{{{ ratio }}}} and {{{{ trash }}}}\"\n"
        ),
    );
    ok(&wd.run(&["validate"]));
    ok(&wd.run(&["run"]));
    let first = &wd.google.seen_under("/drive/v3/files")[0];
    assert_eq!(
        first.param("includeItemsFromAllDrives").as_deref(),
        Some("false")
    );
    assert_eq!(first.param("pageSize").as_deref(), Some("7"));
    assert_eq!(first.param("q").as_deref(), Some("x = 0.5 and false"));
}

#[test]
fn validate_takes_the_flags_of_run_and_a_window_needs_a_backfill() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!(
            "{FILES}columns = [\"id\"]\noutput = \"files-{{{{ window.start }}}}.csv\"\n\
             [params]\nq = \"modifiedTime >= '{{{{ window.start }}}}'\"\n"
        ),
    );
    let (said, _) = refused_by_both(&wd, &[]);
    assert_eq!(
        said,
        "error  queries/files.toml: its templates read `window`, which a backfill sets: run it \
         with --from DATE --to DATE\n"
    );
    let backfill = ["--from", "2024-03-01", "--to", "2024-03-02"];
    let validate = wd.run(&[&["validate"][..], &backfill].concat());
    ok(&validate);
    assert_eq!(
        validate.stdout,
        "ok     files: drive.files.list → files-2024-03-01.csv (1 columns, paginated)\n"
    );
    assert!(api_calls(&wd).is_empty());
    ok(&wd.run(&[&["run"][..], &backfill].concat()));
    assert_eq!(
        wd.list("output"),
        ["files-2024-03-01.csv", "files-2024-03-02.csv"]
    );
}

#[test]
fn a_backfill_of_a_query_that_ignores_the_window_is_refused() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!("{FILES}columns = [\"id\"]\n"),
    );
    let backfill = ["--from", "2024-03-01", "--to", "2024-03-03"];
    let (said, _) = refused_by_both(&wd, &backfill);
    assert_eq!(
        said,
        "error  queries/files.toml: its templates do not read `window`, so every window of the \
         backfill would ask for the same records: use {{ window.start }} and \
         {{ window.end }} in its [params] or [body], or leave it out of the backfill (--only NAME)\n"
    );
    // Reading it in the request but writing one file each window replaces.
    wd.write(
        "queries/files.toml",
        &format!(
            "{FILES}columns = [\"id\"]\n[params]\nq = \"modifiedTime >= '{{{{ window.start }}}}'\"\n"
        ),
    );
    let (said, _) = refused_by_both(&wd, &backfill);
    assert_eq!(
        said,
        "error  queries/files.toml: output: every window of the backfill would replace \
         \"files.csv\", keeping only the last: name it per window (\"…{{ window.start }}.csv\") \
         or set `append = true`\n"
    );
}

#[test]
fn a_var_no_query_reads_is_refused_with_a_hint() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!(
            "{FILES}columns = [\"id\"]\n[vars]\nlabel = \"inbox\"\n[params]\nq = \"'{{{{ label }}}}' in parents\"\n"
        ),
    );
    let (said, _) = refused_by_both(&wd, &["--var", "lable=sent"]);
    assert_eq!(
        said,
        "error  --var lable: no query of this run declares `lable` in [vars] or reads it, so it \
         would change nothing; did you mean `label`?\n"
    );
    ok(&wd.run(&["run", "--var", "label=sent"]));
    assert_eq!(
        wd.google.seen_under("/drive/v3/files")[0]
            .param("q")
            .as_deref(),
        Some("'sent' in parents")
    );
}

#[test]
fn an_output_name_of_no_known_format_is_refused() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!("{FILES}columns = [\"id\"]\noutput = \"x.xls\"\n"),
    );
    let (said, _) = refused_by_both(&wd, &[]);
    assert_eq!(
        said,
        "error  queries/files.toml: format: \"x.xls\": gscrape does not write .xls files; name \
         it .csv, .tsv, .ndjson or .jsonl (each may end in .gz), .xlsx or .parquet, or set \
         `format` to \"csv\", \"tsv\", \"ndjson\", \"xlsx\" or \"parquet\"\n"
    );
}

#[test]
fn csv_options_an_output_would_not_use_are_refused() {
    let wd = Workdir::new();
    wd.write(
        "queries/sheet.toml",
        &format!(
            "{FILES}columns = [\"id\"]\noutput = \"files.xlsx\"\nheader = false\nbom = true\n"
        ),
    );
    let (said, _) = refused_by_both(&wd, &[]);
    assert_eq!(
        said,
        "error  queries/sheet.toml: bom: `bom` is an option of CSV and TSV files, and this query \
         writes xlsx: remove it\n\
         error  queries/sheet.toml: header: `header` is an option of CSV and TSV files, and this \
         query writes xlsx: remove it\n"
    );
    wd.write(
        "queries/sheet.toml",
        &format!("{FILES}columns = [\"id\"]\noutput = \"files.xlsx\"\n"),
    );
    wd.write(
        "queries/lines.toml",
        &format!("{FILES}columns = [\"id\"]\noutput = \"files.ndjson\"\n"),
    );
    wd.write(
        "queries/table.toml",
        &format!("{FILES}columns = [\"id\"]\noutput = \"files.csv\"\n"),
    );
    for (flag, value, key) in [
        ("--null", Some("NA"), "null"),
        ("--no-header", None, "header"),
        ("--append", None, "append"),
        ("--bom", None, "bom"),
        ("--delimiter", Some(";"), "delimiter"),
    ] {
        let args: Vec<&str> = [flag].into_iter().chain(value).collect();
        let (said, _) = refused_by_both(&wd, &args);
        assert_eq!(
            said,
            format!(
                "error  {flag} is an option of CSV and TSV files, and lines writes ndjson, sheet \
                 writes xlsx: set `{key}` in the queries that need it instead, or run the others \
                 apart (--only NAME)\n"
            )
        );
        let dir = format!("apart-{key}");
        let apart = ["run", "--only", "table", "--out-dir", &dir];
        ok(&wd.run(&[&apart[..], &args].concat()));
    }
    let run = wd.run(&["run", "--only", "table", "--output", "-", "--append"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: --output - cannot append table's rows to a file: drop `append` (or --append) to \
         write them to standard output\n"
    );
}
