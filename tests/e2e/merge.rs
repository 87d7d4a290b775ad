//! `lookback` and `merge_key`: daily runs that ask again for the days Google still revises,
//! merged by key into one output that ends up as a full re-export would be.

use serde_json::Value;

use crate::support::fake_gcs::FakeGcs;
use crate::support::{finish, Run, Workdir, TOKEN};

/// A Search Console report by date and country, from the cursor (less three days) to today.
fn daily(output: &str, extra: &str) -> String {
    format!(
        r#"api = "searchconsole"
version = "v1"
method = "webmasters.searchanalytics.query"
output = "{output}"
merge_key = ["date", "country"]
lookback = "3d"
{extra}
[params]
siteUrl = "sc-domain:example.com"
[body]
startDate = "{{{{ since }}}}"
endDate = "{{{{ today }}}}"
dimensions = ["date", "country"]
[incremental]
cursor = "date"
initial = "2024-03-01"
"#
    )
}

/// `gscrape run` on the day `today`, with the summary in `summary.json`.
fn run_on(wd: &Workdir, today: &str, args: &[&str]) -> Run {
    let mut all = vec!["run", "--summary-json", "summary.json"];
    all.extend_from_slice(args);
    let output = wd
        .command(&all)
        .env("GSCRAPE_TODAY", today)
        .output()
        .unwrap();
    finish(output)
}

fn summary(wd: &Workdir) -> Value {
    serde_json::from_str(&wd.read("summary.json")).unwrap()
}

/// The `startDate` of each Search Console request so far.
fn start_dates(wd: &Workdir) -> Vec<String> {
    wd.google
        .seen_under("/webmasters/")
        .iter()
        .map(|seen| {
            let body: Value = serde_json::from_str(&seen.body).unwrap();
            body["startDate"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn daily_runs_with_a_lookback_merge_into_what_a_full_re_export_gives() {
    for output in ["gsc.csv", "gsc.tsv", "gsc.ndjson", "gsc.csv.gz"] {
        let wd = Workdir::new();
        wd.write("queries/gsc.toml", &daily(output, ""));
        let first = run_on(&wd, "2024-03-10", &[]);
        assert_eq!(first.code, 0, "{output}: {first:?}");
        let after_first = std::fs::read(wd.path().join("output").join(output)).unwrap();
        for today in ["2024-03-11", "2024-03-12", "2024-03-13"] {
            let run = run_on(&wd, today, &[]);
            assert_eq!(run.code, 0, "{output} {today}: {run:?}");
        }
        // Each run asked from its last cursor less three days.
        assert_eq!(
            start_dates(&wd),
            ["2024-03-01", "2024-03-07", "2024-03-08", "2024-03-09"],
            "{output}"
        );
        // The last run: 03-09..03-13, 5 days of 2 countries; the output held 03-01..03-12.
        let query = &summary(&wd)["queries"][0];
        assert_eq!(
            query["merge"],
            serde_json::json!({"added": 2, "replaced": 8, "kept": 16}),
            "{output}"
        );
        assert_eq!(query["rows"], 26, "{output}: 13 days of 2 countries");

        let merged = std::fs::read(wd.path().join("output").join(output)).unwrap();
        let full = Workdir::new();
        full.write("queries/gsc.toml", &daily(output, ""));
        let run = run_on(&full, "2024-03-13", &[]);
        assert_eq!(run.code, 0, "{run:?}");
        let expected = std::fs::read(full.path().join("output").join(output)).unwrap();
        assert_eq!(merged, expected, "{output}: merged = a full re-export");
        assert_ne!(
            after_first, expected,
            "{output}: the days revised since the first run changed"
        );
    }
}

#[test]
fn the_human_line_and_validate_say_what_the_merge_does() {
    let wd = Workdir::new();
    wd.write("queries/gsc.toml", &daily("gsc.csv", ""));
    assert_eq!(run_on(&wd, "2024-03-10", &[]).code, 0);
    let run = run_on(&wd, "2024-03-11", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("merged: 2 added, 8 replaced, 12 kept"),
        "{}",
        run.stderr
    );
    let validate = wd.run(&["validate"]);
    assert_eq!(validate.code, 0, "{validate:?}");
    assert!(
        validate.stdout.contains(
            "; merges by merge_key = [date, country] (this run's rows replace the old ones with \
             their key, the others are kept; two rows of one run with one key fail it); asks \
             again for 3days before its kept cursor (lookback)"
        ),
        "{}",
        validate.stdout
    );
}

#[test]
fn two_rows_of_one_key_fail_the_query_and_leave_the_output_as_it_was() {
    let wd = Workdir::new();
    wd.write("queries/gsc.toml", &daily("gsc.csv", ""));
    assert_eq!(run_on(&wd, "2024-03-10", &[]).code, 0);
    let before = std::fs::read(wd.path().join("output/gsc.csv")).unwrap();
    let cursor = wd.read("output/.gscrape/cursors/gsc.txt");
    // Keyed by date alone, each date has two rows (one per country).
    wd.write(
        "queries/gsc.toml",
        &daily("gsc.csv", "").replace(
            "merge_key = [\"date\", \"country\"]",
            "merge_key = [\"date\"]",
        ),
    );
    let run = run_on(&wd, "2024-03-11", &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "gsc: merge_key: two rows of this run have the key \"2024-03-07\" (date); set \
             `merge_keep = \"first\"` or `\"last\"` to say which one wins"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(wd.path().join("output/gsc.csv")).unwrap(),
        before
    );
    assert_eq!(wd.read("output/.gscrape/cursors/gsc.txt"), cursor);
    assert_eq!(summary(&wd)["queries"][0]["failure"], "bad_data");

    // `merge_keep = "last"`: the usa row of each date wins, in the fra row's place.
    wd.write(
        "queries/gsc.toml",
        &daily("gsc.csv", "merge_keep = \"last\"").replace(
            "merge_key = [\"date\", \"country\"]",
            "merge_key = [\"date\"]",
        ),
    );
    let run = run_on(&wd, "2024-03-11", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/gsc.csv");
    for day in 7..=11 {
        let rows: Vec<&str> = csv
            .lines()
            .filter(|l| l.starts_with(&format!("2024-03-{day:02},")))
            .collect();
        assert_eq!(rows.len(), 1, "{day}: {csv}");
        assert!(rows[0].contains(",usa,"), "{csv}");
    }
    let merge = &summary(&wd)["queries"][0]["merge"];
    // Old rows 03-07..03-10 (4 dates × 2): each date's first replaced, its second dropped.
    assert_eq!(
        *merge,
        serde_json::json!({"added": 1, "replaced": 4, "kept": 12})
    );
}

#[test]
fn a_row_without_its_key_fails_the_query() {
    let wd = crate::gcs::workdir(12);
    wd.write(
        "queries/files.toml",
        &format!(
            "{}columns = [\"id\", \"size\"]\nmerge_key = [\"size\"]\n",
            crate::gcs::FILES
        ),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "files: merge_key: a row of this run has no `size` (null or missing), so it has no \
             key (size: null)"
        ),
        "{}",
        run.stderr
    );
    assert!(!wd.exists("output/files.csv"));
}

#[test]
fn lookback_and_merge_key_are_refused_where_they_cannot_work() {
    let wd = Workdir::new();
    let plain = format!(
        "{}columns = [\"id\"]\n{{}}[params]\nq = \"x\"\n",
        crate::gcs::FILES
    );
    let refused = |extra: &str, line: &str| {
        wd.write("queries/files.toml", &plain.replace("{}", extra));
        let run = wd.run(&["validate"]);
        assert_eq!(run.code, 2, "{extra}: {run:?}");
        assert!(run.stdout.contains(line), "{extra}: {}", run.stdout);
        let run = wd.run(&["run"]);
        assert_eq!(run.code, 2, "{extra}: {run:?}");
    };
    refused(
        "lookback = \"3d\"\n",
        "error  queries/files.toml:5: lookback: asks again for what came before the cursor of an \
         incremental query ([incremental]) or the last windows of a backfill (--from/--to), and \
         this query is neither",
    );
    refused(
        "lookback = \"3d\"\nappend = true\n[incremental]\ncursor = \"createdTime\"\ninitial = \"2024-01-01T00:00:00Z\"\n",
        "lookback: asks again for rows the output holds, and appending them would write them \
         twice: set `merge_key = [...]`",
    );
    refused(
        "merge_key = [\"name\"]\n",
        "merge_key: `name` is not one of the columns (id)",
    );
    refused(
        "merge_key = [\"id\"]\noutput = \"files.xlsx\"\n",
        "merge_key: files.xlsx is not merged into",
    );
    refused(
        "merge_key = [\"id\"]\nmerge_keep = \"newest\"\n",
        "merge_keep: \"newest\" is not a choice",
    );
    refused(
        "lookback = \"soon\"\n",
        "lookback: \"soon\" is not a duration",
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn a_cloud_storage_object_is_merged_under_its_generation() {
    let gcs = FakeGcs::start(TOKEN);
    let wd = Workdir::new();
    wd.write("queries/gsc.toml", &daily("gs://reports/gsc.csv", ""));
    let run_gcs = |today: &str| {
        let output = wd
            .command(&["run", "--summary-json", "summary.json"])
            .env("GSCRAPE_TODAY", today)
            .env("STORAGE_EMULATOR_HOST", &gcs.url)
            .output()
            .unwrap();
        finish(output)
    };
    let run = run_gcs("2024-03-10");
    assert_eq!(run.code, 0, "{run:?}");
    let old = gcs.object("reports", "gsc.csv").unwrap().generation;
    let run = run_gcs("2024-03-11");
    assert_eq!(run.code, 0, "{run:?}");
    let object = gcs.object("reports", "gsc.csv").unwrap();
    assert!(object.generation > old);
    // The old object was read at its generation, and replaced only if still that one.
    let requests = gcs.requests();
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.target.contains("alt=media")
            && r.target.contains(&format!("generation={old}"))),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.target.contains(&format!("ifGenerationMatch={old}"))),
        "{requests:?}"
    );
    let full = Workdir::new();
    full.write("queries/gsc.toml", &daily("gsc.csv", ""));
    assert_eq!(run_on(&full, "2024-03-11", &[]).code, 0);
    assert_eq!(
        object.data,
        std::fs::read(full.path().join("output/gsc.csv")).unwrap()
    );
    assert_eq!(
        summary(&wd)["queries"][0]["merge"],
        serde_json::json!({"added": 2, "replaced": 8, "kept": 12})
    );
}

#[test]
fn a_bigquery_table_is_merged_through_a_staging_table_and_one_merge_job() {
    use crate::support::fake_bigquery::FakeBigQuery;
    let bq = FakeBigQuery::start();
    // No file: the rows go to the table only.
    let query = |wd: &Workdir| {
        let text = daily("x", "[bigquery]\ntable = \"my-project.exports.gsc\"\n");
        wd.write("queries/gsc.toml", &text.replace("output = \"x\"\n", ""));
    };
    let run_bq = |wd: &Workdir, today: &str| {
        let output = wd
            .command(&["run", "--summary-json", "summary.json"])
            .env("GSCRAPE_TODAY", today)
            .env("GSCRAPE_ENDPOINT_BIGQUERY", bq.root())
            .output()
            .unwrap();
        finish(output)
    };
    let wd = Workdir::new();
    query(&wd);
    let run = run_bq(&wd, "2024-03-10");
    assert_eq!(run.code, 0, "{run:?}");
    // No table yet: loaded directly, every row new.
    let jobs = bq.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].table(), "my-project.exports.gsc");
    assert!(bq.with(|s| s.queries.is_empty()));
    assert_eq!(bq.table("my-project.exports.gsc").unwrap().len(), 20);

    let run = run_bq(&wd, "2024-03-11");
    assert_eq!(run.code, 0, "{run:?}");
    let jobs = bq.jobs();
    assert_eq!(jobs.len(), 2, "one staging load");
    let staging = jobs[1].table();
    assert!(
        staging.starts_with("my-project.exports.gsc_gscrape_staging_"),
        "{staging}"
    );
    assert_eq!(jobs[1].load["writeDisposition"], "WRITE_TRUNCATE");
    assert_eq!(jobs[1].rows().len(), 10, "03-07..03-11, two countries");
    let queries = bq.with(|s| s.queries.clone());
    assert_eq!(
        queries,
        [format!(
            "MERGE `my-project.exports.gsc` AS target USING `{staging}` AS source ON \
             target.`date` = source.`date` AND target.`country` = source.`country` WHEN MATCHED \
             THEN UPDATE SET `date` = source.`date`, `country` = source.`country`, `clicks` = \
             source.`clicks`, `impressions` = source.`impressions`, `ctr` = source.`ctr`, \
             `position` = source.`position` WHEN NOT MATCHED THEN INSERT (`date`, `country`, \
             `clicks`, `impressions`, `ctr`, `position`) VALUES (source.`date`, \
             source.`country`, source.`clicks`, source.`impressions`, source.`ctr`, \
             source.`position`)"
        )]
    );
    assert_eq!(
        bq.with(|s| s.dropped.clone()),
        std::slice::from_ref(&staging)
    );
    assert!(bq.table(&staging).is_none(), "the staging table is gone");
    let query_summary = &summary(&wd)["queries"][0];
    assert_eq!(
        query_summary["merge"],
        serde_json::json!({"added": 2, "replaced": 8, "kept": null})
    );

    // The table holds what a full load on 03-11 would: one row per key, the latest values.
    let full_bq = FakeBigQuery::start();
    let full = Workdir::new();
    query(&full);
    let output = full
        .command(&["run"])
        .env("GSCRAPE_TODAY", "2024-03-11")
        .env("GSCRAPE_ENDPOINT_BIGQUERY", full_bq.root())
        .output()
        .unwrap();
    assert_eq!(finish(output).code, 0);
    let sorted = |mut rows: Vec<Value>| {
        rows.sort_by_key(|r| (r["date"].to_string(), r["country"].to_string()));
        rows
    };
    let merged = sorted(bq.table("my-project.exports.gsc").unwrap());
    assert_eq!(merged.len(), 22);
    assert_eq!(
        merged,
        sorted(full_bq.table("my-project.exports.gsc").unwrap())
    );
}

#[test]
fn a_backfill_with_a_lookback_asks_again_for_its_last_windows_and_merges_them() {
    let wd = Workdir::new();
    wd.write(
        "queries/gsc.toml",
        r#"api = "searchconsole"
version = "v1"
method = "webmasters.searchanalytics.query"
output = "gsc.csv"
merge_key = ["date", "country"]
lookback = "2d"
[params]
siteUrl = "sc-domain:example.com"
[body]
startDate = "{{ window.start }}"
endDate = "{{ window.end }}"
dimensions = ["date", "country"]
"#,
    );
    let backfill = |to: &str| wd.run(&["run", "--from", "2024-03-01", "--to", to, "--step", "day"]);
    let first = backfill("2024-03-05");
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(start_dates(&wd).len(), 5);
    let second = backfill("2024-03-06");
    assert_eq!(second.code, 0, "{second:?}");
    // 03-01..03-03 are held and left out; the last two days it holds are asked again.
    assert_eq!(
        start_dates(&wd)[5..],
        ["2024-03-04", "2024-03-05", "2024-03-06"]
    );
    let csv = wd.read("output/gsc.csv");
    assert_eq!(csv.lines().count(), 1 + 6 * 2, "one row per key: {csv}");
}
