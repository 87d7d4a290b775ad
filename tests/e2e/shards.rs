//! Shards (`--shard INDEX/COUNT`, `--shard auto`) and `gscrape compose`: a fan-out split
//! across tasks, each fetching only its parents' chains, the parts joined into one run's rows.

use std::collections::BTreeSet;

use crate::support::{Config, Run, Workdir};

/// The parent: lists message ids (and writes them, so that who writes its output shows).
pub(crate) const MESSAGES: &str =
    "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
    columns = [\"id\", \"threadId\"]\n[params]\nuserId = \"me\"\nmaxResults = 100\n";

/// The fan-out: one get per listed message.
pub(crate) const DETAILS: &str =
    "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
    for_each = \"messages\"\n\
    columns = [\"id\", \"snippet\", { name = \"thread\", value = \"{{ messages.threadId }}\" }]\n\
    [params]\nuserId = \"me\"\nid = \"{{ messages.id }}\"\nformat = \"metadata\"\n";

/// A query that feeds no fan-out: it cannot be split.
pub(crate) const FILES: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 100\n";

pub(crate) const HEADER: &str = "id,snippet,thread\r\n";

fn workdir(messages: usize) -> Workdir {
    let wd = Workdir::with_config(Config {
        gmail_messages: messages,
        ..Config::default()
    });
    wd.write("queries/messages.toml", MESSAGES);
    wd.write("queries/message_details.toml", DETAILS);
    wd.write("queries/files.toml", FILES);
    wd
}

fn part(index: u32, count: u32) -> String {
    format!("output/message_details-part-{index:05}-of-{count:05}.csv")
}

/// The data rows of a CSV (its header checked and dropped).
pub(crate) fn rows(csv: &str) -> Vec<String> {
    let body = csv
        .strip_prefix(HEADER)
        .unwrap_or_else(|| panic!("no header: {csv:?}"));
    body.split_terminator("\r\n").map(str::to_owned).collect()
}

/// The message ids `wd`'s fake Google was asked to get since request number `since`.
fn gets_since(wd: &Workdir, since: usize) -> BTreeSet<String> {
    wd.google.seen()[since..]
        .iter()
        .filter_map(|s| {
            s.path()
                .strip_prefix("/gmail/v1/users/me/messages/")
                .map(str::to_owned)
        })
        .collect()
}

fn ids(rows: &[String]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r.split(',').next().unwrap().to_owned())
        .collect()
}

#[test]
fn three_shards_fetch_disjoint_parts_that_compose_into_one_runs_rows() {
    let whole = workdir(40);
    let run = whole.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = rows(&whole.read("output/message_details.csv"));
    assert_eq!(expected.len(), 40);
    expected.sort();

    let wd = workdir(40);
    wd.write("output/message_details.csv", "the previous output\r\n");
    let mut asked = Vec::new();
    // Shards 1 and 2 first: the parent's output and the unsplittable query are shard 0's.
    for index in [1, 2] {
        let before = wd.google.seen().len();
        let run = wd.run(&["run", "--shard", &format!("{index}/3")]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains("files: not run in this shard: a query that feeds no fan-out is not split, shard 0 runs it"),
            "{}",
            run.stderr
        );
        assert!(
            !wd.exists("output/messages.csv"),
            "only shard 0 writes the parent's output"
        );
        assert!(!wd.exists("output/files.csv"));
        asked.push(gets_since(&wd, before));
        assert!(
            wd.exists(&format!(
                "output/.gscrape/run-shard-{index:05}-of-00003.lock"
            )),
            "each shard has its own lock"
        );
    }
    // Not ready: shard 0's part is missing; the old output is left as it was.
    let compose = wd.run(&["compose", "output/message_details.csv"]);
    assert_eq!(compose.code, 75, "{compose:?}");
    assert_eq!(
        compose.stderr,
        format!("error: output/message_details.csv: 1 of 3 parts missing: 0 ({}); the task of each has not finished (or failed): run it, then compose again (output/message_details.csv left as it was)\n", part(0, 3))
    );
    assert_eq!(
        wd.read("output/message_details.csv"),
        "the previous output\r\n"
    );

    let before = wd.google.seen().len();
    let run = wd.run(&["run", "--shard", "0/3"]);
    assert_eq!(run.code, 0, "{run:?}");
    asked.insert(0, gets_since(&wd, before));
    assert_eq!(
        wd.read("output/messages.csv"),
        whole.read("output/messages.csv"),
        "shard 0 writes the parent's output whole"
    );
    assert!(
        wd.exists("output/files.csv"),
        "shard 0 runs what cannot be split"
    );

    // The parts: disjoint, together the unsharded run's rows; each shard asked for its own.
    let parts: Vec<Vec<String>> = (0..3).map(|i| rows(&wd.read(&part(i, 3)))).collect();
    let mut union = BTreeSet::new();
    for (i, part_rows) in parts.iter().enumerate() {
        assert!(!part_rows.is_empty(), "shard {i} got none of 40 records");
        assert_eq!(
            asked[i],
            ids(part_rows),
            "shard {i} asked only for its own parents' children"
        );
        for row in part_rows {
            assert!(union.insert(row.clone()), "{row} is in two parts");
        }
    }
    assert_eq!(union.into_iter().collect::<Vec<_>>(), expected);

    let compose = wd.run(&["compose", "output/message_details.csv"]);
    assert_eq!(compose.code, 0, "{compose:?}");
    let composed = wd.read("output/message_details.csv");
    // One header; shard 0's rows, then shard 1's, then shard 2's.
    assert_eq!(
        composed,
        format!(
            "{HEADER}{}",
            parts
                .concat()
                .iter()
                .map(|r| format!("{r}\r\n"))
                .collect::<String>()
        )
    );
    let mut sorted = rows(&composed);
    sorted.sort();
    assert_eq!(sorted, expected);
    let sha = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(composed.as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        compose.stdout,
        format!(
            "composed output/message_details.csv from 3 parts: 40 rows, {} bytes, sha256 {sha}\n",
            composed.len()
        )
    );
    // The parts are kept unless asked otherwise.
    assert!(wd.exists(&part(2, 3)));
    let compose = wd.run(&["compose", "output/message_details.csv", "--remove-parts"]);
    assert_eq!(compose.code, 0, "{compose:?}");
    assert!(
        compose.stdout.ends_with("; the parts removed\n"),
        "{}",
        compose.stdout
    );
    assert!(!wd.exists(&part(0, 3)) && !wd.exists(&part(2, 3)));
    assert_eq!(wd.read("output/message_details.csv"), composed);
}

/// The binary with the job platform's variables set.
fn run_with(wd: &Workdir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = wd.command(args);
    for (name, value) in env {
        command.env(name, value);
    }
    crate::support::finish(command.output().unwrap())
}

#[test]
fn shard_auto_reads_kubernetes_indexed_jobs_and_cloud_run_jobs() {
    let wd = workdir(12);
    let run = run_with(
        &wd,
        &["run", "--shard", "auto", "--shard-count", "3"],
        &[("JOB_COMPLETION_INDEX", "1")],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(wd.exists(&part(1, 3)), "{:?}", wd.list("output"));
    let run = run_with(
        &wd,
        &["run"],
        &[
            ("GSCRAPE_SHARD", "auto"),
            ("CLOUD_RUN_TASK_INDEX", "2"),
            ("CLOUD_RUN_TASK_COUNT", "3"),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(wd.exists(&part(2, 3)));
    // A config file's shard, with the Kubernetes index.
    wd.write("gscrape.toml", "[run]\nshard = \"auto\"\nshard-count = 3\n");
    let run = run_with(&wd, &["run"], &[("JOB_COMPLETION_INDEX", "0")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.list("output"),
        [
            "files.csv",
            "message_details-part-00000-of-00003.csv",
            "message_details-part-00001-of-00003.csv",
            "message_details-part-00002-of-00003.csv",
            "messages.csv"
        ]
    );
    let total: usize = (0..3).map(|i| rows(&wd.read(&part(i, 3))).len()).sum();
    assert_eq!(total, 12);
}

#[test]
fn a_shard_without_parent_records_writes_a_header_only_part() {
    let wd = workdir(1);
    for index in 0..2 {
        let run = wd.run(&[
            "run",
            "--shard",
            &format!("{index}/2"),
            "--only",
            "message_details",
        ]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let sizes: Vec<usize> = (0..2).map(|i| rows(&wd.read(&part(i, 2))).len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 1);
    assert!(sizes.contains(&0), "{sizes:?}");
    let compose = wd.run(&["compose", "output/message_details.csv"]);
    assert_eq!(compose.code, 0, "{compose:?}");
    assert_eq!(rows(&wd.read("output/message_details.csv")).len(), 1);
}

#[test]
fn validate_says_what_each_query_does_in_the_shard() {
    let wd = workdir(3);
    let run = wd.run(&["validate", "--shard", "2/3"]);
    assert_eq!(run.code, 0, "{run:?}");
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("ok     {name}:")))
            .unwrap_or_else(|| panic!("{name}: {}", run.stdout))
            .to_owned()
    };
    let details = line("message_details");
    assert!(
        details.contains("→ message_details-part-00002-of-00003.csv ("),
        "{details}"
    );
    assert!(details.ends_with("shard 2/3: the chains of the parent records of `messages` that hash to shard 2; compose the parts when every task is done"), "{details}");
    assert!(
        line("messages").contains("→ no file (output = false)"),
        "{}",
        run.stdout
    );
    assert!(line("messages")
        .ends_with("shard 2/3: runs whole to deal its records out; shard 0 writes its output"));
    assert!(line("files").ends_with(
        "shard 2/3: not run (a query that feeds no fan-out is not split; shard 0 runs it)"
    ));
}

#[test]
fn bad_shard_values_are_one_line_and_exit_2() {
    let wd = workdir(3);
    /// The arguments, the environment, and the line.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--shard", "3/3"], &[], "error: --shard \"3/3\": the index must be below the number of shards: the shards of 3 are 0/3 to 2/3 (0-based)"),
        (&[], &[("GSCRAPE_SHARD", "two")], "error: GSCRAPE_SHARD \"two\": write INDEX/COUNT (0-based, e.g. 3/10 for the fourth of ten tasks), or auto"),
        (&["--shard", "auto"], &[], "error: --shard auto: neither JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) nor CLOUD_RUN_TASK_INDEX (a Cloud Run Jobs task) is set; give --shard INDEX/COUNT"),
        (&["--shard", "auto"], &[("JOB_COMPLETION_INDEX", "1")], "error: --shard auto: JOB_COMPLETION_INDEX=1 (a Kubernetes Indexed Job) gives the index but not the number of shards: give --shard-count N (or GSCRAPE_SHARD_COUNT), the Job's spec.completions"),
        (&["--shard", "auto"], &[("GSCRAPE_SHARD_COUNT", "4"), ("CLOUD_RUN_TASK_INDEX", "0"), ("CLOUD_RUN_TASK_COUNT", "3")], "error: GSCRAPE_SHARD_COUNT 4 and CLOUD_RUN_TASK_COUNT=3 disagree on the number of shards: drop GSCRAPE_SHARD_COUNT"),
    ];
    for (args, env, line) in cases {
        for command in ["run", "validate"] {
            let mut all = vec![command];
            all.extend_from_slice(args);
            let run = run_with(&wd, &all, env);
            assert_eq!(run.code, 2, "{all:?} {env:?}: {run:?}");
            assert_eq!(run.stderr, format!("{line}\n"), "{all:?} {env:?}");
        }
    }
    wd.write("gscrape.toml", "[run]\nshard = \"5/2\"\n");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr, "error: gscrape.toml: [run] shard = \"5/2\": the index must be below the number of shards: the shards of 2 are 0/2 to 1/2 (0-based)\n");
    assert_eq!(wd.list("output"), Vec::<String>::new(), "nothing was run");
}

#[test]
fn what_a_part_cannot_be_is_refused_before_any_request() {
    let wd = workdir(3);
    wd.write(
        "queries/messages.toml",
        &format!("{MESSAGES}[incremental]\ncursor = \"id\"\ninitial = \"0\"\n"),
    );
    wd.write(
        "queries/message_details.toml",
        &DETAILS.replace("for_each", "max_records = 5\nfor_each"),
    );
    let run = wd.run(&["run", "--shard", "0/2"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("incremental: a sharded run (--shard 0/2) does not keep incremental cursors"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("queries/message_details.toml: max_records: a fan-out split by --shard 0/2 caps each part"), "{}", run.stderr);
    assert!(wd.google.seen_under("/gmail").is_empty());
}

#[test]
fn compose_refuses_parts_that_cannot_be_joined() {
    let wd = Workdir::new();
    wd.write("output/f.csv", "old\r\n");
    wd.write("output/f-part-00000-of-00002.csv", "id,name\r\n1,a\r\n");
    wd.write("output/f-part-00001-of-00002.csv", "id,size\r\n2,3\r\n");
    let run = wd.run(&["compose", "output/f.csv"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr, "error: output/f-part-00001-of-00002.csv: its header is not the one of output/f-part-00000-of-00002.csv: \"id,size\" against \"id,name\"; the shards ran other queries: run them again alike (output/f.csv left as it was)\n");
    assert_eq!(wd.read("output/f.csv"), "old\r\n");
    assert_eq!(
        wd.list("output").len(),
        3,
        "no temporary file left: {:?}",
        wd.list("output")
    );

    wd.write("output/f-part-00001-of-00003.csv", "id,name\r\n2,b\r\n");
    let run = wd.run(&["compose", "output/f.csv"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr, "error: output/f.csv: its parts disagree on the number of shards: 2 of 2, 1 of 3; remove the parts of the other run, or say which with --count\n");

    let run = wd.run(&["compose", "output/f.xlsx"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: output/f.xlsx: xlsx workbooks cannot be joined"),
        "{}",
        run.stderr
    );

    // gzip parts: one stream, one header.
    let gz = |text: &str| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(
        wd.path().join("output/g-part-00000-of-00002.csv.gz"),
        gz("id\r\n1\r\n"),
    )
    .unwrap();
    std::fs::write(
        wd.path().join("output/g-part-00001-of-00002.csv.gz"),
        gz("id\r\n2\r\n"),
    )
    .unwrap();
    let run = wd.run(&["compose", "output/g.csv.gz"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut text = String::new();
    use std::io::Read;
    flate2::read::MultiGzDecoder::new(
        std::fs::File::open(wd.path().join("output/g.csv.gz")).unwrap(),
    )
    .read_to_string(&mut text)
    .unwrap();
    assert_eq!(text, "id\r\n1\r\n2\r\n");
}

/// Each part records the run that wrote it (`--run-id`, `GSCRAPE_RUN_ID`; Cloud Run's
/// CLOUD_RUN_EXECUTION wins) beside it: `gscrape compose` refuses a part of another run (exit 2,
/// naming it) and, with the run named, a retried `compose --remove-parts` whose first try
/// composed and removed the parts is done already (exit 0).
#[test]
fn compose_refuses_a_stale_part_and_a_retried_compose_is_a_no_op() {
    let wd = workdir(30);
    // Yesterday's part 1, today's parts 0 and 2.
    let yesterday = run_with(
        &wd,
        &["run", "--shard", "1/3"],
        &[("CLOUD_RUN_EXECUTION", "daily-yesterday")],
    );
    assert_eq!(yesterday.code, 0, "{yesterday:?}");
    assert_eq!(
        wd.read("output/.message_details-part-00001-of-00003.csv.run")
            .trim(),
        "daily-yesterday"
    );
    for index in [0, 2] {
        let today = run_with(
            &wd,
            &["run", "--shard", &format!("{index}/3")],
            &[("CLOUD_RUN_EXECUTION", "daily-today")],
        );
        assert_eq!(today.code, 0, "{today:?}");
    }
    let stale = wd.run(&["compose", "output/message_details.csv"]);
    assert_eq!(stale.code, 2, "{stale:?}");
    assert_eq!(
        stale.stderr,
        format!("error: {}: written by run daily-yesterday, but the parts are of run daily-today: a stale part of another run; run its task again in run daily-today (output/message_details.csv left as it was)\n", part(1, 3))
    );
    assert!(!wd.exists("output/message_details.csv"));
    // Named by the compose step (over its own Cloud Run execution): every part must be of that run.
    let named = run_with(
        &wd,
        &[
            "compose",
            "output/message_details.csv",
            "--run-id",
            "daily-yesterday",
        ],
        &[("CLOUD_RUN_EXECUTION", "compose-step-1")],
    );
    assert_eq!(named.code, 2, "{named:?}");
    assert!(
        named.stderr.contains(&format!(
            "{}: written by run daily-today, but the parts are of run daily-yesterday",
            part(0, 3)
        )),
        "{named:?}"
    );

    // Part 1's task again, in today's run (by --run-id this time).
    let again = run_with(
        &wd,
        &["run", "--shard", "1/3", "--run-id", "daily-today"],
        &[],
    );
    assert_eq!(again.code, 0, "{again:?}");
    let compose = |env: &[(&str, &str)]| {
        run_with(
            &wd,
            &["compose", "output/message_details.csv", "--remove-parts"],
            env,
        )
    };
    let first = compose(&[("GSCRAPE_RUN_ID", "daily-today")]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first
            .stdout
            .starts_with("composed output/message_details.csv from 3 parts: "),
        "{first:?}"
    );
    assert_eq!(
        wd.read("output/.message_details.csv.run").trim(),
        "daily-today"
    );
    assert!(
        !wd.exists(&part(1, 3))
            && !wd.exists("output/.message_details-part-00001-of-00003.csv.run")
    );
    let composed = wd.read("output/message_details.csv");

    // The step retried: done already.
    let retried = compose(&[("GSCRAPE_RUN_ID", "daily-today")]);
    assert_eq!(retried.code, 0, "{retried:?}");
    assert_eq!(
        retried.stdout,
        "already composed output/message_details.csv from the parts of run daily-today; its parts were removed\n"
    );
    assert_eq!(wd.read("output/message_details.csv"), composed);
    // Tomorrow's compose, with no part of tomorrow's run: not done, still an error.
    let tomorrow = compose(&[("GSCRAPE_RUN_ID", "daily-tomorrow")]);
    assert_eq!(tomorrow.code, 2, "{tomorrow:?}");
    assert!(
        tomorrow.stderr.contains("no part of it found"),
        "{tomorrow:?}"
    );
}
