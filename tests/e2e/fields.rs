//! Partial responses: gscrape asks for the fields its columns need, because the fake (like
//! Google) sends Drive's four default fields per file unless `fields` names more.

use crate::support::fake_google::{directory_user, drive_file, drive_file_name};
use crate::support::{csv_line, Config, Workdir};

/// The README's quick-start query, as written there.
const QUICK_START: &str = r#"
api = "drive"
version = "v3"
method = "drive.files.list"
columns = ["id", "name", "mimeType", "size", "owners[0].emailAddress"]

[params]
q = "trashed = false"
pageSize = 1000
"#;

/// The `fields` of each request the fake saw under `prefix`.
fn fields_sent(wd: &Workdir, prefix: &str) -> Vec<Option<String>> {
    wd.google
        .seen_under(prefix)
        .iter()
        .map(|seen| seen.param("fields"))
        .collect()
}

#[test]
fn the_fake_sends_drives_default_fields_unless_asked() {
    let wd = Workdir::new();
    let (status, page) = wd.google.get_json("/drive/v3/files?pageSize=2");
    assert_eq!(status, 200);
    assert_eq!(
        page["files"][0],
        serde_json::json!({"kind": "drive#file", "id": "f0000", "name": "Report, Q0",
                           "mimeType": "application/pdf"})
    );
    let (_, page) = wd
        .google
        .get_json("/drive/v3/files?pageSize=2&fields=files(id,size,owners/emailAddress)");
    assert_eq!(
        page,
        serde_json::json!({"files": [
            {"id": "f0000", "size": "7", "owners": [{"emailAddress": "owner0@example.com"}]},
            {"id": "f0001", "size": "1007", "owners": [{"emailAddress": "owner1@example.com"}]},
        ]}),
        "only what `fields` names, and no nextPageToken unless named"
    );
    let (status, page) = wd.google.get_json("/drive/v3/files?fields=files(id");
    assert_eq!(status, 400, "{page}");
}

#[test]
fn the_quick_start_query_fills_every_column() {
    let wd = Workdir::with_config(Config {
        drive_files: 2500,
        ..Config::default()
    });
    wd.write("queries/my_files.toml", QUICK_START);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = csv_line(&["id", "name", "mimeType", "size", "owners[0].emailAddress"]);
    for i in 0..2500 {
        let file = drive_file(i);
        expected.push_str(&csv_line(&[
            &format!("f{i:04}"),
            &drive_file_name(i),
            file["mimeType"].as_str().unwrap(),
            file["size"].as_str().unwrap_or(""),
            &format!("owner{}@example.com", i % 5),
        ]));
    }
    assert_eq!(wd.read("output/my_files.csv"), expected);
    let asked = Some("files(id,name,mimeType,size,owners/emailAddress),nextPageToken".to_owned());
    assert_eq!(
        fields_sent(&wd, "/drive/"),
        vec![asked; 3],
        "every page asks"
    );
    let (wire, json) = wd.google.api_bytes();
    assert!(
        wire * 4 < json,
        "gzip: {wire} bytes sent for {json} of JSON"
    );
}

#[test]
fn default_columns_ask_for_whole_records() {
    let wd = Workdir::with_config(Config {
        drive_files: 3,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        fields_sent(&wd, "/drive/"),
        [Some("files,nextPageToken".to_owned())]
    );
    let csv = wd.read("output/files.csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cell = |row: usize, name: &str| {
        let at = header.iter().position(|h| h == name).unwrap();
        rows[row][at].to_owned()
    };
    assert_eq!(rows.len(), 3);
    assert_eq!(cell(1, "size"), "1007");
    assert_eq!(cell(1, "createdTime"), drive_file(1)["createdTime"]);
    assert_eq!(cell(2, "starred"), "false");
    assert_eq!(cell(0, "properties"), "{\"project\":\"p0\"}");
}

#[test]
fn a_written_fields_keeps_the_page_token() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", \"name\"]\n[params]\npageSize = 25\nfields = \"files(id,name)\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("files: 250 records, 10 pages"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fields_sent(&wd, "/drive/"),
        vec![Some("files(id,name),nextPageToken".to_owned()); 10]
    );
}

#[test]
fn a_written_fields_must_cover_the_columns() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", \"size\", \"owners[0].emailAddress\", \"properties.project\"]\n\
         [params]\nfields = \"files(id,owners)\"\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/files.toml:6: params.fields: `fields = \"files(id,owners)\"` does not ask \
         for `size`, `properties.project`, which the columns read (Google would send them \
         empty): add them to `fields`, or remove `fields` and gscrape asks for what is needed\n"
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(wd.google.seen_under("/drive/").is_empty());

    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         [params]\nfields = \"files(id\"\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/files.toml:5: params.fields: `fields = \"files(id\"` is not a field \
         selection: missing `)` at character 9 (write it as `a,b/c,d(e,f)`)\n"
    );
}

#[test]
fn a_fan_out_parent_asks_for_the_fields_its_child_reads() {
    let wd = Workdir::with_config(Config {
        directory_users: 3,
        gmail_messages: 1,
        ..Config::default()
    });
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\n\
         columns = [\"id\"]\n[params]\ncustomer = \"my_customer\"\n",
    );
    wd.write(
        "queries/mail.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         for_each = \"users\"\n\
         columns = [{ name = \"user\", value = \"{{ users.name.fullName }}\" }, \"id\"]\n\
         [params]\nuserId = \"{{ users.primaryEmail }}\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        fields_sent(&wd, "/admin/"),
        [Some(
            "users(id,name/fullName,primaryEmail),nextPageToken".to_owned()
        )]
    );
    let mut expected = csv_line(&["user", "id"]);
    for i in 0..3 {
        let user = directory_user(i);
        expected.push_str(&csv_line(&[
            user["name"]["fullName"].as_str().unwrap(),
            "m01000",
        ]));
    }
    assert_eq!(wd.read("output/mail.csv"), expected);
    let paths: Vec<String> = wd
        .google
        .seen_under("/gmail/")
        .iter()
        .map(|s| s.path().to_owned())
        .collect();
    let mut paths = paths;
    paths.sort();
    assert_eq!(
        paths,
        [0, 1, 2].map(|i| format!("/gmail/v1/users/user{i}%40example.com/messages"))
    );
}

#[test]
fn a_written_parent_fields_must_cover_what_the_child_reads() {
    let wd = Workdir::new();
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\n\
         columns = [\"id\"]\n[params]\ncustomer = \"my_customer\"\nfields = \"users(id)\"\n",
    );
    wd.write(
        "queries/mail.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         for_each = \"users\"\n[params]\nuserId = \"{{ users.primaryEmail }}\"\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "error  queries/users.toml:7: params.fields: `fields = \"users(id)\"` does not ask \
             for `users.primaryEmail`, which the fan-out query `mail` reads"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn fields_is_sent_only_where_the_document_lists_it() {
    let wd = Workdir::new();
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/discovery/drive.v3.json")).unwrap();
    doc["rootUrl"] = serde_json::json!(wd.google.root_url());
    doc["parameters"].as_object_mut().unwrap().remove("fields");
    wd.write("queries/drive.json", &doc.to_string());
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         discovery = \"drive.json\"\ncolumns = [\"id\"]\n[params]\npageSize = 100\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(fields_sent(&wd, "/drive/"), [None, None, None]);
}

#[test]
fn columns_that_read_no_field_still_ask_for_the_records() {
    // A fan-out child that only counts: one row per message, its columns from the parent.
    let wd = Workdir::with_config(Config {
        directory_users: 2,
        gmail_messages: 3,
        ..Config::default()
    });
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\n\
         output = false\ncolumns = [\"id\"]\n[params]\ncustomer = \"my_customer\"\n",
    );
    wd.write(
        "queries/mail.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         for_each = \"users\"\ncolumns = [{ name = \"user\", value = \"{{ users.primaryEmail }}\" }]\n\
         [params]\nuserId = \"{{ users.primaryEmail }}\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        fields_sent(&wd, "/gmail/"),
        vec![Some("messages,nextPageToken,resultSizeEstimate".to_owned()); 2]
    );
    let mut expected = csv_line(&["user"]);
    for user in ["user0@example.com", "user1@example.com"] {
        for _ in 0..3 {
            expected.push_str(&csv_line(&[user]));
        }
    }
    assert_eq!(wd.read("output/mail.csv"), expected);
}

#[test]
fn a_written_fields_may_name_a_key_of_a_map() {
    let wd = Workdir::with_config(Config {
        drive_files: 3,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", \"properties.project\"]\n[params]\nfields = \"files(id,properties/project)\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = csv_line(&["id", "properties.project"]);
    for i in 0..3 {
        expected.push_str(&csv_line(&[&format!("f{i:04}"), &format!("p{i}")]));
    }
    assert_eq!(wd.read("output/files.csv"), expected);
}

#[test]
fn fields_that_cannot_be_checked_are_refused() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         [params]\nfields = \"{{ f }}\"\n[vars]\nf = \"files(id)\"\n",
    );
    wd.write(
        "queries/ga4.toml",
        "api = \"analyticsdata\"\nversion = \"v1beta\"\nmethod = \"analyticsdata.properties.runReport\"\n\
         [params]\nproperty = \"properties/1\"\nfields = \"rows(dimensionValues)\"\n\
         [body]\ndimensions = [{ name = \"date\" }]\nmetrics = [{ name = \"activeUsers\" }]\n\
         dateRanges = [{ startDate = \"7daysAgo\", endDate = \"today\" }]\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/files.toml:5: params.fields: `fields` cannot be a template: gscrape \
         checks it against the columns before the run; write it out, or remove it and gscrape \
         asks for what is needed\n\
         error  queries/ga4.toml:6: params.fields: analyticsdata.properties.runReport is a report, \
         read whole (GA4 rows: one column per requested dimension, then per metric): remove `fields`\n"
    );
}

#[test]
fn a_child_reading_a_field_its_parent_lacks_is_refused() {
    let wd = Workdir::new();
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\n\
         columns = [\"id\"]\n[params]\ncustomer = \"my_customer\"\n",
    );
    wd.write(
        "queries/mail.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         for_each = \"users\"\n[params]\nuserId = \"{{ users.primaryEmal }}\"\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.starts_with(
            "error  queries/mail.toml: for_each: reads `users.primaryEmal`, but `primaryEmal`: \
             the record has no field `primaryEmal`; did you mean `primaryEmail`?\n"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_where_filter_keeps_the_records_it_is_true_for_and_the_summary_counts_the_rest() {
    let wd = Workdir::with_config(Config {
        drive_files: 20,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
         columns = [\"id\", \"name\"]\nwhere = \"mimeType != 'text/csv' and starred\"\n",
    );
    let run = wd.run(&["run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = csv_line(&["id", "name"]);
    for i in (0..20).filter(|i| i % 2 == 0 && i % 3 == 0) {
        expected.push_str(&csv_line(&[&format!("f{i:04}"), &drive_file_name(i)]));
    }
    assert_eq!(wd.read("output/files.csv"), expected);
    assert!(
        run.stderr.contains("; 16 left out by `where`"),
        "{}",
        run.stderr
    );
    let summary: serde_json::Value = serde_json::from_str(&wd.read("summary.json")).unwrap();
    assert_eq!(summary["queries"][0]["dropped"], 16);
    assert_eq!(
        fields_sent(&wd, "/drive/"),
        [Some(
            "files(id,name,mimeType,starred),nextPageToken".to_owned()
        )],
        "the fields the filter reads are asked for"
    );

    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\nwhere = \"mimeType !=\"\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout
            .starts_with("error  queries/files.toml:4: where: invalid expression \"mimeType !=\""),
        "{}",
        run.stdout
    );
}
