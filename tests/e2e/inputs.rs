//! Hostile or mistaken inputs are refused with one line and exit 2, never read without bound.

use crate::support::Workdir;

const DRIVE: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";

#[test]
fn a_query_file_must_be_a_small_regular_file() {
    let wd = Workdir::new();
    std::os::unix::fs::symlink("/dev/zero", wd.path().join("queries/zero.toml")).unwrap();
    let run = wd.run(&["validate", "queries/zero.toml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/zero.toml: is not a regular file; name a .toml query file\n"
    );

    let big = format!("{DRIVE}# {}\n", "x".repeat(5 << 20));
    wd.write("queries/big.toml", &big);
    let run = wd.run(&["validate", "queries/big.toml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/big.toml: is larger than 4 MiB; a query file is a few lines of TOML\n"
    );
}

#[test]
fn control_characters_in_name_or_output_are_refused_and_shown_escaped() {
    let wd = Workdir::new();
    wd.write(
        "queries/a.toml",
        &format!("{DRIVE}name = \"bad\\u0000name\"\n"),
    );
    wd.write(
        "queries/b.toml",
        &format!("{DRIVE}output = \"x\\ny.csv\"\n"),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/a.toml:4: name: \"bad\\0name\" is not a usable query name: use letters, digits, `_`, `-` or `.`\n\
         error  queries/b.toml:4: output: \"x\\ny.csv\" holds a control character; name the file without one\n"
    );
    assert!(!run.stdout.contains('\0'));
}

#[test]
fn too_many_columns_are_refused() {
    let wd = Workdir::new();
    let columns: Vec<String> = (0..10_001).map(|i| format!("\"c{i}\"")).collect();
    wd.write(
        "queries/wide.toml",
        &format!("{DRIVE}columns = [{}]\n", columns.join(",")),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/wide.toml: columns: lists 10001 columns; at most 10000 are allowed\n"
    );
}

#[test]
fn default_columns_of_a_multiplying_schema_are_refused() {
    // Seven schemas of ten fields, each of the next: ten million default columns.
    let wd = Workdir::new();
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/discovery/drive.v3.json")).unwrap();
    doc["rootUrl"] = serde_json::json!(wd.google.root_url());
    for level in 0..7 {
        let field = match level {
            6 => serde_json::json!({"type": "string"}),
            _ => serde_json::json!({"$ref": format!("S{}", level + 1)}),
        };
        let properties: serde_json::Map<String, serde_json::Value> =
            (0..10).map(|i| (format!("f{i}"), field.clone())).collect();
        doc["schemas"][format!("S{level}")] =
            serde_json::json!({"type": "object", "properties": properties});
    }
    doc["schemas"]["File"]["properties"]["deep"] = serde_json::json!({"$ref": "S0"});
    wd.write("queries/drive.json", &doc.to_string());
    wd.write(
        "queries/files.toml",
        &format!("{DRIVE}discovery = \"drive.json\"\n"),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/files.toml: columns: the record schema has more than 10000 fields; list the `columns` to export\n"
    );
}

#[test]
fn temporary_files_of_a_killed_run_are_removed_unless_held() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!("{DRIVE}columns = [\"id\"]\n[params]\npageSize = 100\n"),
    );
    // Left by a run killed ten minutes ago (a file younger than a minute may be a live
    // export's, not yet locked).
    let old = |relative: &str, text: &str| {
        let path = wd.write(relative, text);
        let ten_minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(ten_minutes_ago).unwrap();
        path
    };
    old("output/.files.csv.Ab3dE9.tmp", "half an export");
    // Of an output no query writes now (yesterday's dated name), which no checkpoint names.
    old("output/.files_2024-03-14.csv.Zz0000.tmp", "an orphan");
    old("output/notes.tmp", "not ours");
    wd.write("output/.files.csv.New001.tmp", "just made");
    let held = old("output/.files.csv.Held01.tmp", "a live run's");
    let lock = std::fs::File::open(&held).unwrap();
    lock.lock().unwrap();
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let left = [
        ".files.csv.Held01.tmp",
        ".files.csv.New001.tmp",
        "files.csv",
        "notes.tmp",
    ];
    assert_eq!(wd.list("output"), left);
    drop(lock);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.list("output"),
        [".files.csv.New001.tmp", "files.csv", "notes.tmp"]
    );
}

#[test]
fn two_queries_writing_one_file_are_refused() {
    let wd = Workdir::new();
    let query = format!("{DRIVE}columns = [\"id\"]\noutput = \"files_{{{{ today }}}}.csv\"\n");
    wd.write("queries/a.toml", &query);
    wd.write(
        "queries/b.toml",
        &query.replace("files_{{ today }}", "files_2024-03-15"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/b.toml: output: \"files_2024-03-15.csv\" is also the output of queries/a.toml; give one of them another `output`\n"
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn the_summary_is_not_an_output_and_must_be_written() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!("{DRIVE}columns = [\"id\"]\n"),
    );
    let run = wd.run(&["run", "--summary-json", "output/files.csv"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: --summary-json output/files.csv is the output of queries/files.toml; write the summary elsewhere\n"
    );
    wd.write("blocker", "a file where a directory should be");
    let run = wd.run(&["run", "--summary-json", "blocker/summary.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("error: cannot write the summary blocker/summary.json: "),
        "{}",
        run.stderr
    );
    assert!(wd.exists("output/files.csv"));
}

#[test]
fn stdout_that_closes_or_fills_never_panics() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE);
    for args in [
        &["describe", "drive", "v3"][..],
        &["describe", "drive", "v3", "drive.files.list"],
        &["validate"],
        &["auth", "status"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = wd.command(args).stdout(writer).output().unwrap();
        let run = crate::support::finish(output);
        assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{args:?}");

        let full = std::fs::File::create("/dev/full").unwrap();
        let output = wd.command(args).stdout(full).output().unwrap();
        let run = crate::support::finish(output);
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (
                1,
                "error: cannot write to stdout: No space left on device (os error 28)\n"
            ),
            "{args:?}"
        );
    }
}

#[test]
fn templated_parameters_are_checked_after_rendering() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!(
            "{DRIVE}columns = [\"id\"]\n[params]\npageSize = \"{{{{ size }}}}\"\n\
             corpus = \"{{{{ corpus }}}}\"\n[vars]\nsize = \"100\"\ncorpus = \"user\"\n"
        ),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = wd.run(&["run", "--var", "size=100&q=secret"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/files.toml: params: `pageSize` rendered \"100&q=secret\", which is not an integer\n"
    );
    let run = wd.run(&["run", "--var", "corpus=everything"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/files.toml: params: `corpus` rendered \"everything\", which is not an \
         allowed value; use one of: domain, user\n"
    );
    assert_eq!(
        wd.google.seen_under("/drive/").len(),
        3,
        "only the first run's pages"
    );
}
