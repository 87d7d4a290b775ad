//! `[bigquery]`: rows loaded into a table of the fake BigQuery by one load job, read back as
//! the double received them (schema, rows, dispositions), and the ways a job fails.

use serde_json::{json, Value};

use crate::support::fake_bigquery::FakeBigQuery;
use crate::support::fake_reports::ga4_row;
use crate::support::{finish, Run, Workdir};

const TABLE: &str = "my-project.exports.files";

/// Two Drive files as a page: a 21-digit id, an int64 past 2^53, text past ASCII, a
/// date-time with an offset, objects and arrays; the second lacks most fields.
const PAGE: &str = r#"{"files": [
  {"id": "100001368314290123456", "name": "Café ☕ \"q\"", "size": "9007199254740993",
   "starred": true, "createdTime": "2024-03-01T10:00:00.5+01:00",
   "owners": [{"emailAddress": "ann@example.com", "displayName": "Ann"}],
   "parents": ["root", "f1"], "properties": {"k": "v"},
   "imageMediaMetadata": {"location": {"latitude": 48.8566}}},
  {"id": "f2", "name": "bare"}
]}"#;

const COLUMNS: &str = r#"columns = ["id", "name", "size", "starred", "createdTime", "owners", "owners.emailAddress", "parents", "properties", "imageMediaMetadata.location.latitude"]
"#;

fn query(extra: &str, bigquery: &str) -> String {
    format!(
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n{COLUMNS}{extra}\
         [params]\npageSize = 5\n[bigquery]\n{bigquery}"
    )
}

fn setup(page: Option<&str>) -> (Workdir, FakeBigQuery) {
    let wd = Workdir::new();
    if let Some(page) = page {
        let page = page.to_owned();
        wd.google.configure(|c| c.drive_raw_page = Some(page));
    }
    (wd, FakeBigQuery::start())
}

fn run(wd: &Workdir, bq: &FakeBigQuery, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = wd.command(args);
    command.env("GSCRAPE_ENDPOINT_BIGQUERY", bq.root());
    for (name, value) in env {
        command.env(name, value);
    }
    finish(command.output().unwrap())
}

fn summary(wd: &Workdir) -> Value {
    serde_json::from_str(&wd.read("summary.json")).unwrap()
}

#[test]
fn a_replace_loads_typed_rows_with_one_job_and_the_summary_names_it() {
    let (wd, bq) = setup(Some(PAGE));
    wd.write(
        "queries/files.toml",
        &query("", &format!("table = \"{TABLE}\"\n")),
    );
    let ran = run(&wd, &bq, &["run", "--summary-json", "summary.json"], &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        wd.list("output").is_empty(),
        "no file unless `output` names one"
    );

    let jobs = bq.jobs();
    assert_eq!(jobs.len(), 1, "one load job");
    let job = &jobs[0];
    let field = |n: &str, t: &str| (n.to_owned(), t.to_owned(), "NULLABLE".to_owned());
    assert_eq!(
        job.schema(),
        [
            field("id", "STRING"),
            field("name", "STRING"),
            field("size", "INT64"),
            field("starred", "BOOL"),
            field("createdTime", "TIMESTAMP"),
            field("owners", "JSON"),
            field("owners_emailAddress", "JSON"),
            field("parents", "JSON"),
            field("properties", "JSON"),
            field("imageMediaMetadata_location_latitude", "FLOAT64"),
        ]
    );
    assert_eq!(job.load["writeDisposition"], "WRITE_TRUNCATE");
    assert_eq!(job.load["createDisposition"], "CREATE_IF_NEEDED");
    assert_eq!(job.load["sourceFormat"], "NEWLINE_DELIMITED_JSON");
    assert_eq!(
        job.load["destinationTable"],
        json!({"projectId": "my-project", "datasetId": "exports", "tableId": "files"})
    );
    assert_eq!(
        job.project, "my-project",
        "the table's project runs the job"
    );
    assert_eq!(job.upload, "multipart");
    assert!(job.id.starts_with("gscrape_files_"), "{}", job.id);
    assert!(job.data.is_ascii(), "the NDJSON is ASCII, the rest escaped");
    assert_eq!(
        job.rows(),
        [
            json!({
                "id": "100001368314290123456",
                "name": "Café ☕ \"q\"",
                "size": "9007199254740993",
                "starred": true,
                "createdTime": "2024-03-01T09:00:00.500000Z",
                "owners": [{"emailAddress": "ann@example.com", "displayName": "Ann"}],
                "owners_emailAddress": ["ann@example.com"],
                "parents": ["root", "f1"],
                "properties": {"k": "v"},
                "imageMediaMetadata_location_latitude": 48.8566,
            }),
            json!({
                "id": "f2", "name": "bare", "size": null, "starred": null,
                "createdTime": null, "owners": null, "owners_emailAddress": null,
                "parents": null, "properties": null,
                "imageMediaMetadata_location_latitude": null,
            }),
        ]
    );
    // The int64 is sent as text: exact past 2^53.
    assert!(
        job.data.contains(r#""size":"9007199254740993""#),
        "{}",
        job.data
    );
    assert_eq!(bq.table(TABLE).unwrap().len(), 2);

    // jobs.get until DONE, where the job runs.
    let gets: Vec<_> = bq
        .received()
        .into_iter()
        .filter(|s| s.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "RUNNING, then DONE");
    assert!(
        gets.iter().all(|g| g.target.ends_with("?location=US")),
        "{gets:?}"
    );

    let line = format!(
        "files: 2 records, 1 page; loaded 2 rows into {TABLE} (job {})",
        job.id
    );
    assert!(ran.stderr.contains(&line), "{}", ran.stderr);
    let summary = summary(&wd);
    let query = &summary["queries"][0];
    assert_eq!(
        query["bigquery"],
        json!({"table": TABLE, "job_id": job.id, "location": "US", "rows_loaded": 2})
    );
    assert_eq!(query["rows"], json!(2));
    assert_eq!(query["bytes"], json!(job.data.len()));
}

#[test]
fn append_adds_rows_and_the_file_is_written_too() {
    let (wd, bq) = setup(Some(PAGE));
    let bigquery = format!("table = \"{TABLE}\"\nmode = \"append\"\nlocation = \"EU\"\nproject = \"billing-project\"\n");
    wd.write(
        "queries/files.toml",
        &query("output = \"files.csv\"\n", &bigquery),
    );
    for _ in 0..2 {
        let ran = run(&wd, &bq, &["run"], &[]);
        assert_eq!(ran.code, 0, "{ran:?}");
    }
    let jobs = bq.jobs();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].load["writeDisposition"], "WRITE_APPEND");
    assert_eq!(
        jobs[0].load["schemaUpdateOptions"],
        json!(["ALLOW_FIELD_ADDITION"])
    );
    assert_eq!(jobs[0].project, "billing-project", "`project` runs the job");
    assert_eq!(bq.table(TABLE).unwrap().len(), 4, "two runs appended");
    assert!(wd.read("output/files.csv").starts_with("id,name,size"));
    let posts = bq.with(|s| s.received.iter().filter(|r| r.method == "POST").count());
    assert_eq!(posts, 2);
    let insert = bq
        .received()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(
        insert.body.contains(r#""location":"EU""#),
        "{}",
        insert.body
    );
}

#[test]
fn a_failed_job_is_exit_1_with_one_line_per_error_and_the_table_kept() {
    let (wd, bq) = setup(Some(PAGE));
    wd.write(
        "queries/files.toml",
        &query("", &format!("table = \"{TABLE}\"\n")),
    );
    let ran = run(&wd, &bq, &["run"], &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let before = bq.table(TABLE).unwrap();

    let errors: Vec<Value> = (1..=12)
        .map(|i| json!({"reason": "invalid", "location": format!("row {i}"), "message": format!("bad value {i}")}))
        .collect();
    bq.with(|s| s.faults.job_errors = Some(errors));
    let ran = run(&wd, &bq, &["run", "--summary-json", "summary.json"], &[]);
    assert_eq!(ran.code, 1, "{ran:?}");
    let job = bq.jobs()[1].id.clone();
    assert!(
        ran.stderr.contains(&format!(
            "BigQuery load job {job} into {TABLE} failed, and left the table as it was:\n  invalid at row 1: bad value 1\n  invalid at row 2: bad value 2\n"
        )),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("  invalid at row 10: bad value 10\nand 2 more"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("bad value 11"), "{}", ran.stderr);
    assert_eq!(bq.table(TABLE).unwrap(), before, "the table is as it was");
    let summary = summary(&wd);
    assert_eq!(summary["queries"][0]["failure"], "remote");
    assert_eq!(summary["queries"][0]["bigquery"], Value::Null);
}

#[test]
fn an_insert_answered_503_or_dropped_is_retried_and_loaded_once() {
    for drop in [false, true] {
        let (wd, bq) = setup(Some(PAGE));
        wd.write(
            "queries/files.toml",
            &query("", &format!("table = \"{TABLE}\"\n")),
        );
        bq.with(|s| match drop {
            true => s.faults.drop_once = true,
            false => s.faults.unavailable_once = true,
        });
        let ran = run(&wd, &bq, &["run", "--summary-json", "summary.json"], &[]);
        assert_eq!(ran.code, 0, "{ran:?}");
        let posts = bq
            .received()
            .into_iter()
            .filter(|r| r.method == "POST")
            .count();
        assert_eq!(posts, 2, "the insert was sent again");
        assert_eq!(
            bq.jobs().len(),
            1,
            "one job (the retry found it: 409 duplicate)"
        );
        assert_eq!(bq.table(TABLE).unwrap().len(), 2, "loaded once");
        assert_eq!(summary(&wd)["queries"][0]["retries"], json!(1));
    }
}

#[test]
fn a_large_export_goes_up_in_resumable_chunks_resumed_after_a_503() {
    let (wd, bq) = setup(None);
    wd.google.configure(|c| c.drive_files = 3000);
    let text = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
                columns = [\"id\", \"name\", \"size\", \"createdTime\", \"owners\"]\n\
                [params]\npageSize = 1000\n[bigquery]\ntable = \"my-project.exports.many\"\n";
    wd.write("queries/files.toml", text);
    bq.with(|s| s.faults.chunk_503_once = true);
    let ran = run(&wd, &bq, &["run"], &[("GSCRAPE_BIGQUERY_CHUNK_KIB", "256")]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let jobs = bq.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].upload, "resumable");
    assert!(
        jobs[0].data.len() > 2 * 256 * 1024,
        "{} bytes",
        jobs[0].data.len()
    );
    let rows = jobs[0].rows();
    assert_eq!(rows.len(), 3000);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["id"], json!(format!("f{i:04}")), "in order, none twice");
    }
    let puts: Vec<_> = bq
        .received()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    let statuses: Vec<_> = puts
        .iter()
        .filter(|p| {
            p.header("content-range")
                .is_some_and(|r| r.starts_with("bytes */"))
        })
        .collect();
    assert_eq!(
        statuses.len(),
        1,
        "the upload's status asked once, after the 503"
    );
    assert!(puts.len() >= 4, "{} PUTs", puts.len());
    assert_eq!(bq.table("my-project.exports.many").unwrap().len(), 3000);
}

#[test]
fn validate_says_the_query_writes_the_table_and_asks_nothing() {
    let (wd, bq) = setup(Some(PAGE));
    wd.write(
        "queries/files.toml",
        &query("", &format!("table = \"{TABLE}\"\n")),
    );
    let ran = run(&wd, &bq, &["validate"], &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stdout.contains(&format!(
            "ok     files: drive.files.list → the BigQuery table {TABLE} (10 columns, paginated); it WRITES to the BigQuery table {TABLE} (mode = \"replace\": one load job, WRITE_TRUNCATE"
        )),
        "{}",
        ran.stdout
    );
    assert!(bq.received().is_empty());

    // The shipped example is refused until its table names her project...
    let example = include_str!("../../queries/destinations/drive_files_to_bigquery.toml");
    wd.write("queries/destinations/drive_files_to_bigquery.toml", example);
    let ran = run(&wd, &bq, &["validate", "queries/destinations"], &[]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(
        ran.stdout.contains(
            "error  queries/destinations/drive_files_to_bigquery.toml:25: bigquery.table: still \"REPLACE_ME\", the placeholder `gscrape new` wrote: put the value in\n"
        ),
        "{}",
        ran.stdout
    );
    // ...then validates, and says what it loads.
    wd.write(
        "queries/destinations/drive_files_to_bigquery.toml",
        &example.replace("REPLACE_ME", "my-project"),
    );
    let ran = run(&wd, &bq, &["validate", "queries/destinations"], &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stdout.contains(
            "it WRITES to the BigQuery table my-project.exports.drive_files (mode = \"replace\""
        ),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_bad_table_mode_or_column_is_exit_2_naming_the_file_and_key() {
    let (wd, bq) = setup(Some(PAGE));
    for (bigquery, said) in [
        (
            "table = \"exports.files\"\n",
            "queries/files.toml:8: bigquery.table: \"exports.files\" is not a table: name it `project.dataset.table`",
        ),
        (
            "table = \"my-project.ex-ports.files\"\n",
            "queries/files.toml:8: bigquery.table: \"my-project.ex-ports.files\": the dataset \"ex-ports\" is not a dataset id",
        ),
        (
            "table = \"my-project.exports.files\"\nmode = \"upsert\"\n",
            "queries/files.toml:9: mode: `upsert` is not one of: replace, append",
        ),
        (
            "table = \"my-project.exports.files\"\nlocation = \"eu west\"\n",
            "queries/files.toml:9: bigquery.location: \"eu west\" is not a BigQuery location",
        ),
    ] {
        wd.write("queries/files.toml", &query("", bigquery));
        for command in ["validate", "run"] {
            let ran = run(&wd, &bq, &[command], &[]);
            assert_eq!(ran.code, 2, "{command} {bigquery}: {ran:?}");
            let said_where = format!("{}{}", ran.stdout, ran.stderr);
            assert!(said_where.contains(said), "{command} {bigquery}: {said_where}");
        }
    }
    // Two columns that BigQuery would name alike.
    let text = query("", &format!("table = \"{TABLE}\"\n")).replace(
        "\"imageMediaMetadata.location.latitude\"]",
        "{ name = \"Owners_EmailAddress\", path = \"id\" }]",
    );
    wd.write("queries/files.toml", &text);
    for command in ["validate", "run"] {
        let ran = run(&wd, &bq, &[command], &[]);
        assert_eq!(ran.code, 2, "{ran:?}");
        let said_where = format!("{}{}", ran.stdout, ran.stderr);
        assert!(
            said_where.contains("queries/files.toml:4: columns: the columns `owners.emailAddress` and `Owners_EmailAddress` would both be the BigQuery column `Owners_EmailAddress`"),
            "{said_where}"
        );
    }
    // A preview on standard output does not load a table.
    wd.write(
        "queries/files.toml",
        &query("", &format!("table = \"{TABLE}\"\n")),
    );
    let ran = run(&wd, &bq, &["run", "--output", "-"], &[]);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(
        ran.stderr
            .contains("--output - shows one query's rows, and files also loads the BigQuery table"),
        "{}",
        ran.stderr
    );
    assert!(bq.received().is_empty(), "nothing was sent");
}

#[test]
fn a_value_its_type_refuses_fails_before_any_upload() {
    let page =
        r#"{"files": [{"id": "a", "size": "12"}, {"id": "b", "size": "100000136831429000000"}]}"#;
    let (wd, bq) = setup(Some(page));
    let text = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
                columns = [\"id\", \"size\"]\n[bigquery]\ntable = \"my-project.exports.files\"\n";
    wd.write("queries/files.toml", text);
    let ran = run(&wd, &bq, &["run"], &[]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stderr
            .contains("BigQuery: row 2, column `size`: 100000136831429000000 is not a valid INT64"),
        "{}",
        ran.stderr
    );
    assert!(bq.received().is_empty(), "no job started");
}

#[test]
fn hostile_job_answers_fail_the_query_without_a_panic() {
    for (stateless, rows_off, said) in [
        (true, 0, "jobs.get answers a job without status.state"),
        (
            false,
            1,
            "loaded 3 rows into my-project.exports.files, but gscrape sent 2",
        ),
    ] {
        let (wd, bq) = setup(Some(PAGE));
        wd.write(
            "queries/files.toml",
            &query("", &format!("table = \"{TABLE}\"\n")),
        );
        bq.with(|s| {
            s.faults.stateless = stateless;
            s.faults.rows_off = rows_off;
        });
        let ran = run(&wd, &bq, &["run"], &[]);
        assert_eq!(ran.code, 1, "{ran:?}");
        assert!(ran.stderr.contains(said), "{}", ran.stderr);
    }
}

#[test]
fn a_ga4_report_loads_with_its_own_types() {
    let (wd, bq) = setup(None);
    wd.write(
        "queries/ga4.toml",
        &format!(
            "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
             [params]\nproperty = \"properties/123\"\n[body]\n\
             dateRanges = [{{ startDate = \"2024-01-01\", endDate = \"2024-01-07\" }}]\n\
             dimensions = [{{ name = \"date\" }}, {{ name = \"country\" }}]\n\
             metrics = [{{ name = \"activeUsers\" }}, {{ name = \"sessions\" }}]\n\
             [bigquery]\ntable = \"{TABLE}\"\n"
        ),
    );
    let ran = run(&wd, &bq, &["run"], &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let jobs = bq.jobs();
    assert_eq!(jobs.len(), 1, "one load job");
    let field = |n: &str, t: &str| (n.to_owned(), t.to_owned(), "NULLABLE".to_owned());
    assert_eq!(
        jobs[0].schema(),
        [
            field("date", "DATE"),
            field("country", "STRING"),
            field("activeUsers", "INT64"),
            field("sessions", "INT64"),
        ],
        "typed by the report's first response, before the load job"
    );
    let rows = jobs[0].rows();
    assert_eq!(rows.len(), 7);
    for (i, row) in rows.iter().enumerate() {
        let (_, country, users, sessions) = ga4_row(i);
        assert_eq!(
            *row,
            json!({"date": format!("2024-01-{:02}", i + 1), "country": country,
                   "activeUsers": users.to_string(), "sessions": sessions.to_string()}),
            "an INT64 goes as its exact text, a DATE as YYYY-MM-DD"
        );
    }
}
