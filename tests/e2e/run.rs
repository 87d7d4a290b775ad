//! `gscrape run`: pagination, CSV bytes, caps, failures and what the server observed.

use crate::support::fake_google::{drive_file, drive_file_name};
use crate::support::{csv_line, Config, Workdir, TOKEN};

const DRIVE_QUERY: &str = r#"
api = "drive"
version = "v3"
method = "drive.files.list"

columns = [
  "id",
  "name",
  "size",
  "starred",
  "owners.emailAddress",
  { name = "first parent", path = "parents[0]" },
  "parents",
  "properties",
]

[params]
pageSize = 25

"#;

/// The expected CSV of Drive files `0..n` for `DRIVE_QUERY`, built from the same data.
fn expected_drive_csv(n: usize) -> String {
    let mut csv = csv_line(&[
        "id",
        "name",
        "size",
        "starred",
        "owners.emailAddress",
        "first parent",
        "parents",
        "properties",
    ]);
    for i in 0..n {
        let file = drive_file(i);
        let size = file["size"].as_str().unwrap_or("");
        csv.push_str(&csv_line(&[
            &format!("f{i:04}"),
            &drive_file_name(i),
            size,
            if i % 3 == 0 { "true" } else { "false" },
            &format!("owner{}@example.com", i % 5),
            "root",
            &format!("root;folder{}", i % 3),
            &format!("{{\"project\":\"p{}\"}}", i % 4),
        ]));
    }
    csv
}

#[test]
fn follows_every_page_and_writes_exact_csv() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("files: 250 records, 10 pages → output/files.csv"),
        "{}",
        run.stderr
    );

    let csv = wd.read("output/files.csv");
    // The first rows, written out by hand: quoting of commas, quotes and CR/LF, and non-ASCII.
    let head = concat!(
        "id,name,size,starred,owners.emailAddress,first parent,parents,properties\r\n",
        "f0000,\"Report, Q0\",7,true,owner0@example.com,root,root;folder0,\"{\"\"project\"\":\"\"p0\"\"}\"\r\n",
        "f0001,\"Say \"\"hi\"\" 1\",1007,false,owner1@example.com,root,root;folder1,\"{\"\"project\"\":\"\"p1\"\"}\"\r\n",
        "f0002,\"line one\r\nline two 2\",2007,false,owner2@example.com,root,root;folder2,\"{\"\"project\"\":\"\"p2\"\"}\"\r\n",
        "f0003,Café ☕ 3,3007,true,owner3@example.com,root,root;folder0,\"{\"\"project\"\":\"\"p3\"\"}\"\r\n",
        "f0004,=SUM(A1:A4),4007,false,owner4@example.com,root,root;folder1,\"{\"\"project\"\":\"\"p0\"\"}\"\r\n",
    );
    assert!(csv.starts_with(head), "{}", &csv[..600.min(csv.len())]);
    assert_eq!(csv, expected_drive_csv(250));
    // A file without `size` has an empty cell.
    assert!(csv.contains("\r\nf0009,\"line one\r\nline two 9\",,true,"));

    let requests = wd.google.seen_under("/drive/v3/files");
    assert_eq!(requests.len(), 10);
    assert_eq!(
        requests[0].target,
        "/drive/v3/files?pageSize=25&supportsAllDrives=true&includeItemsFromAllDrives=true&fields=files%28id%2Cname%2Csize%2Cstarred%2Cowners%2FemailAddress%2Cparents%2Cproperties%29%2CnextPageToken"
    );
    assert_eq!(
        requests[1].target,
        "/drive/v3/files?pageSize=25&supportsAllDrives=true&includeItemsFromAllDrives=true&fields=files%28id%2Cname%2Csize%2Cstarred%2Cowners%2FemailAddress%2Cparents%2Cproperties%29%2CnextPageToken&pageToken=tok-25"
    );
    assert_eq!(
        requests[9].target,
        "/drive/v3/files?pageSize=25&supportsAllDrives=true&includeItemsFromAllDrives=true&fields=files%28id%2Cname%2Csize%2Cstarred%2Cowners%2FemailAddress%2Cparents%2Cproperties%29%2CnextPageToken&pageToken=tok-225"
    );
    for request in &requests {
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
    }
    assert_eq!(
        wd.list("output"),
        ["files.csv"],
        "no temporary file is left"
    );
}

#[test]
fn default_columns_come_from_the_schema() {
    let wd = Workdir::new();
    wd.write(
        "queries/message.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
         [params]\nuserId = \"me\"\nid = \"m01002\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Identity (`id`) first, then the message's own scalars, then its arrays and nested fields,
    // each group in schema order.
    let expected = concat!(
        "id,historyId,internalDate,raw,sizeEstimate,snippet,threadId,",
        "classificationLabelValues,labelIds,",
        "payload.body.attachmentId,payload.body.data,payload.body.size,payload.filename,",
        "payload.headers,payload.mimeType,payload.partId,payload.parts\r\n",
        "m01002,9002,1700000002000,,1002,\"Hello, number 2 — ünïcode\",t1,,INBOX;UNREAD,,SGVsbG8=,12,,",
        "\"[{\"\"name\"\":\"\"Subject\"\",\"\"value\"\":\"\"Subject 2\"\"},{\"\"name\"\":\"\"From\"\",\"\"value\"\":\"\"Ann <ann@example.com>\"\"}]\",",
        "text/plain,,\r\n",
    );
    assert_eq!(wd.read("output/message.csv"), expected);
}

#[test]
fn list_records_use_the_schema_header_even_when_sparse() {
    let wd = Workdir::with_config(Config {
        gmail_messages: 3,
        ..Config::default()
    });
    wd.write(
        "queries/ids.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
         columns = [\"id\", \"threadId\", \"snippet\"]\n\
         [params]\nuserId = \"me@example.com\"\nlabelIds = [\"INBOX\", \"UNREAD\"]\nmaxResults = 2\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.read("output/ids.csv"),
        "id,threadId,snippet\r\nm01000,t0,\r\nm01001,t0,\r\nm01002,t1,\r\n"
    );
    let requests = wd.google.seen_under("/gmail/");
    assert_eq!(
        requests[0].target,
        "/gmail/v1/users/me%40example.com/messages?labelIds=INBOX&labelIds=UNREAD&maxResults=2&fields=messages%28id%2CthreadId%2Csnippet%29%2CnextPageToken%2CresultSizeEstimate"
    );
    assert_eq!(requests.len(), 2);
}

#[test]
fn calendar_and_directory_examples_of_paths_into_arrays() {
    let wd = Workdir::new();
    wd.write(
        "queries/events.toml",
        "api = \"calendar\"\nversion = \"v3\"\nmethod = \"calendar.events.list\"\n\
         columns = [\"id\", \"summary\", \"start.dateTime\", \"attendees.email\"]\n\
         [params]\ncalendarId = \"team/room #1\"\nmaxResults = 2\nsingleEvents = true\n",
    );
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\n\
         output = \"people/users.csv\"\n\
         columns = [\"primaryEmail\", { name = \"Full name\", path = \"name.fullName\" }, \"isAdmin\"]\n\
         [params]\ncustomer = \"my_customer\"\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut expected = String::from("id,summary,start.dateTime,attendees.email\r\n");
    for i in 0..5 {
        // Event 2 lasts all day: it has no start.dateTime.
        let start = match i {
            2 => String::new(),
            _ => format!("2025-03-{:02}T09:00:00Z", i + 1),
        };
        expected.push_str(&format!(
            "ev{i},Meeting {i},{start},a@example.com;b@example.com\r\n"
        ));
    }
    assert_eq!(wd.read("output/events.csv"), expected);
    assert_eq!(
        wd.read("output/people/users.csv"),
        "primaryEmail,Full name,isAdmin\r\n\
         user0@example.com,Given0 Family0,true\r\n\
         user1@example.com,Given1 Family1,false\r\n\
         user2@example.com,Given2 Family2,false\r\n\
         user3@example.com,Given3 Family3,false\r\n"
    );
    let events = wd.google.seen_under("/calendar/");
    assert_eq!(events.len(), 3, "5 events in pages of 2");
    assert_eq!(
        events[0].target,
        "/calendar/v3/calendars/team%2Froom%20%231/events?maxResults=2&singleEvents=true&fields=items%28id%2Csummary%2Cstart%2FdateTime%2Cattendees%2Femail%29%2CnextPageToken"
    );
}

#[test]
fn caps_stop_early_and_say_so() {
    let wd = Workdir::new();
    wd.write(
        "queries/pages.toml",
        &DRIVE_QUERY.replace("[params]", "max_pages = 3\n[params]"),
    );
    wd.write(
        "queries/records.toml",
        &DRIVE_QUERY.replace("[params]", "max_records = 30\n[params]"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains(
        "pages: 75 records, 3 pages → output/pages.csv (stopped by max_pages = 3; more pages were available)"
    ), "{}", run.stderr);
    assert!(run.stderr.contains(
        "records: 30 records, 2 pages → output/records.csv (stopped by max_records = 30; more records were available)"
    ), "{}", run.stderr);
    assert_eq!(wd.read("output/pages.csv"), expected_drive_csv(75));
    assert_eq!(wd.read("output/records.csv"), expected_drive_csv(30));
    assert_eq!(wd.google.seen_under("/drive/").len(), 5);
}

#[test]
fn a_cap_that_is_not_reached_is_not_reported() {
    let wd = Workdir::with_config(Config {
        drive_files: 50,
        ..Config::default()
    });
    wd.write(
        "queries/files.toml",
        &DRIVE_QUERY.replace("[params]", "max_records = 50\nmax_pages = 2\n[params]"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("files: 50 records, 2 pages → output/files.csv\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failure_mid_export_keeps_the_previous_file() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    wd.write("queries/users.toml", "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"primaryEmail\"]\n[params]\ndomain = \"example.com\"\n");
    assert_eq!(wd.run(&["run"]).code, 0);
    let before = wd.read("output/files.csv");

    wd.google.configure(|c| {
        c.drive_fail_page = Some(4);
        c.directory_users = 1;
    });
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    let port = wd.google.addr.port();
    // The URL is cut in its middle (it is long with `fields`); its end names the page.
    let error = run
        .stderr
        .lines()
        .find(|line| line.starts_with("error: files: "))
        .unwrap();
    assert!(
        error.starts_with(&format!(
            "error: files: HTTP 500 INTERNAL/backendError Internal error encountered. \
             [GET http://127.0.0.1:{port}/drive/v3/files?pageSize=25&supportsAllDrives=true&"
        )) && error.ends_with(
            "%2Cproperties%29%2CnextPageToken&pageToken=tok-75] (gave up after 5 retries); \
             the export is checkpointed: `gscrape run --resume` continues it \
             (output/files.csv left unchanged)"
        ) && error.contains('…'),
        "{}",
        run.stderr
    );
    assert_eq!(
        wd.read("output/files.csv"),
        before,
        "the previous export is intact"
    );
    assert_eq!(
        wd.read("output/users.csv"),
        "primaryEmail\r\nuser0@example.com\r\n",
        "the other query still ran"
    );
    assert_eq!(
        wd.list("output"),
        ["files.csv", "users.csv"],
        "no partial file is left"
    );
}

#[test]
fn google_errors_become_one_line() {
    let wd = Workdir::new();
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"id\"]\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1);
    let port = wd.google.addr.port();
    assert_eq!(
        run.stderr.lines().next().unwrap(),
        format!(
            "error: users: HTTP 400 INVALID_ARGUMENT/badRequest Bad Request \
             [GET http://127.0.0.1:{port}/admin/directory/v1/users?fields=users%2Fid%2CnextPageToken] (output/users.csv left unchanged)"
        )
    );
    assert!(run.stderr.ends_with(
        "\nquery  status  records  pages  requests  retries  seconds  output\n\
         users  failed        0      0         1        0      0.0  output/users.csv  no file written (remote error)\n"
    ), "{}", run.stderr);
    assert!(!wd.exists("output/users.csv"));
}

#[test]
fn a_repeating_page_token_stops_the_query() {
    let wd = Workdir::with_config(Config {
        drive_repeat_token: true,
        ..Config::default()
    });
    wd.write("queries/files.toml", DRIVE_QUERY);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(
        "error: files: the API returned the page token \"the-same-token\" a second time (after 2 pages); stopped to avoid an endless loop"
    ), "{}", run.stderr);
    assert_eq!(wd.google.seen_under("/drive/").len(), 2);
    assert!(wd.list("output").is_empty());
}

#[test]
fn a_bearer_token_is_never_sent_over_plain_http_to_another_host() {
    let wd = Workdir::new();
    let doc = include_str!("../fixtures/discovery/drive.v3.json").replace(
        "\"rootUrl\": \"https://www.googleapis.com/\"",
        "\"rootUrl\": \"http://www.googleapis.com/\"",
    );
    assert!(doc.contains("http://www.googleapis.com/"));
    wd.write("queries/drive.json", &doc);
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\ndiscovery = \"drive.json\"\n",
    );
    let run = wd.run(&["run", "queries/files.toml"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: files: refusing to send a bearer token over plain http to \
         http://www.googleapis.com/drive/v3/files: use https (plain http is allowed only to 127.0.0.1, ::1 or localhost, and not through a proxy on another host (name them in NO_PROXY))\n"
    );
}

#[test]
fn without_a_token_nothing_runs() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let output = wd
        .command(&["run"])
        .env_remove("GSCRAPE_ACCESS_TOKEN")
        .output()
        .unwrap();
    let run = crate::support::finish(output);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
"error: no credentials found. Without a key: on Google Cloud, run as a service account (the metadata \
         server, probed at GCE_METADATA_IP or 169.254.169.254, did not answer); elsewhere, workload \
         identity federation (an external_account file in GOOGLE_APPLICATION_CREDENTIALS or --credentials); \
         either with --impersonate-service-account to act as another account. Else: log in once with \
         `gscrape auth login --client-secret client_secret.json`, use a service-account key \
         (--credentials FILE or GOOGLE_APPLICATION_CREDENTIALS), or set GSCRAPE_ACCESS_TOKEN\n"
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn only_and_out_dir_select_queries_and_destination() {
    let wd = Workdir::with_config(Config {
        drive_files: 3,
        ..Config::default()
    });
    wd.write("queries/files.toml", DRIVE_QUERY);
    wd.write("queries/users.toml", "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"id\"]\n");
    let run = wd.run(&[
        "run",
        "queries",
        "--only",
        "files",
        "--out-dir",
        "exports/today",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("exports/today/files.csv"), expected_drive_csv(3));
    assert!(wd.google.seen_under("/admin/").is_empty());

    let run = wd.run(&["run", "--only", "filez"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: --only: no query is named \"filez\"; did you mean \"files\"?\n"
    );
}

#[test]
fn a_post_method_sends_its_body_and_yields_one_record() {
    let wd = Workdir::new();
    wd.write(
        "queries/create.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.create\"\n\
         allow_writes = true\ncolumns = [\"id\", \"name\", \"parents\", \"appProperties.batch\"]\n\
         [body]\nname = \"Quarterly, \\\"final\\\"\"\nparents = [\"folder1\"]\nappProperties = { batch = 7 }\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    let requests = wd.google.seen_under("/drive/");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&requests[0].body).unwrap(),
        serde_json::json!({"name": "Quarterly, \"final\"", "parents": ["folder1"], "appProperties": {"batch": 7}})
    );
    assert_eq!(
        wd.read("output/create.csv"),
        "id,name,parents,appProperties.batch\r\nnew-file-1,\"Quarterly, \"\"final\"\"\",folder1,7\r\n"
    );
}

#[test]
fn another_discovery_endpoint_never_gets_a_cached_document_of_the_first() {
    let first = Workdir::new();
    let second = Workdir::with_config(Config {
        drive_files: 3,
        ..Config::default()
    });
    for wd in [&first, &second] {
        wd.write("queries/files.toml", DRIVE_QUERY);
    }
    let shared_cache = first.path().join("cache");
    let run_with_shared_cache = |wd: &Workdir| {
        let output = wd
            .command(&["run"])
            .env("GSCRAPE_CACHE_DIR", &shared_cache)
            .output()
            .unwrap();
        crate::support::finish(output)
    };
    assert_eq!(run_with_shared_cache(&first).code, 0);
    let run = run_with_shared_cache(&second);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        second.google.seen_under("/discovery/").len(),
        1,
        "the second endpoint was asked for its own document"
    );
    assert_eq!(
        second.read("output/files.csv"),
        expected_drive_csv(3),
        "rows from the second server"
    );
    assert_eq!(
        first.google.seen_under("/drive/").len(),
        10,
        "the second run sent nothing to the first server"
    );
    // Each endpoint's document stays cached: a third run asks neither.
    assert_eq!(run_with_shared_cache(&first).code, 0);
    assert_eq!(first.google.seen_under("/discovery/").len(), 1);
}

#[test]
fn a_discovery_outage_is_retried() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    wd.google.fail_discovery(2);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.google.seen_under("/discovery/").len(),
        3,
        "two 503s, then the document"
    );
    assert_eq!(wd.read("output/files.csv"), expected_drive_csv(250));
}

#[test]
fn a_discovery_service_that_stays_down_is_reported() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    wd.google.fail_discovery(1000);
    let run = wd.run(&["run", "--max-retries", "1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: queries/files.toml: api: the Discovery service answered HTTP 503 for drive:v3 \
             ({}discovery/v1/apis/drive/v3/rest) (gave up after 1 retry); try again later\n",
            wd.google.root_url()
        )
    );
    assert_eq!(wd.google.seen_under("/discovery/").len(), 2);
}
