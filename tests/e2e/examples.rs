//! The example queries shipped in `queries/` validate and run against the fake Google.

use crate::support::Workdir;

fn copy_examples(wd: &Workdir) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            wd.write(
                &format!("queries/{name}"),
                &std::fs::read_to_string(&path).unwrap(),
            );
            names.push(name);
        }
    }
    names.sort();
    names
}

/// The `--var`s the examples that need her own ids are run with here.
pub(crate) const HER_IDS: [&str; 6] = [
    "--var",
    "property=123456789",
    "--var",
    "site=sc-domain:example.com",
    "--var",
    "project=my-project",
];

#[test]
fn shipped_examples_validate() {
    let wd = Workdir::new();
    let names = copy_examples(&wd);
    assert!(names.len() >= 5, "{names:?}");
    // Those that need an id of hers are refused until she gives it: `gscrape run` never
    // sends Google made-up ids.
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    let refused: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(
        refused,
        [
            "error  queries/bigquery_daily_visits.toml:11: vars.project: still \"REPLACE_ME\": put your value in, or run with --var project=VALUE",
            "error  queries/ga4_daily_users.toml:11: vars.property: still \"REPLACE_ME\": put your value in, or run with --var property=VALUE",
            "error  queries/search_console_queries.toml:12: vars.site: still \"REPLACE_ME\": put your value in, or run with --var site=VALUE",
        ],
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.lines().count(), names.len());
    let run = wd.run(&[&["validate"][..], &HER_IDS].concat());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), names.len());
    assert!(
        run.stdout.lines().all(|l| l.starts_with("ok ")),
        "{}",
        run.stdout
    );
}

#[test]
fn shipped_examples_run() {
    let wd = Workdir::new();
    copy_examples(&wd);
    let run = wd.run(&[&["run"][..], &HER_IDS].concat());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.list("output"),
        [
            "bigquery_daily_visits.csv",
            "calendar_events.csv",
            "drive_files.csv",
            "drive_files.ndjson.gz",
            "drive_files.xlsx",
            "ga4_daily_users_2024-03-15.csv",
            "gmail_message_headers.csv",
            "gmail_messages.csv",
            "google_apis.csv",
            "search_console_2024-02.csv",
            "sheets_range.csv",
            "workspace_users.csv",
            "youtube_daily_views.csv",
        ]
    );
    // The examples only read: nothing was written to the account.
    assert!(wd.google.sheets(|s| s.spreadsheets.is_empty()));
    let mut posts: Vec<String> = wd
        .google
        .seen()
        .into_iter()
        .filter(|s| s.method != "GET")
        .map(|s| format!("{} {}", s.method, s.path()))
        .collect();
    posts.sort();
    posts.dedup();
    assert_eq!(
        posts,
        [
            "POST /bigquery/v2/projects/my-project/queries",
            "POST /v1beta/properties/123456789:runReport",
            "POST /webmasters/v3/sites/sc-domain%3Aexample.com/searchAnalytics/query",
        ],
        "only the POST methods that read"
    );
    assert!(wd
        .read("output/workspace_users.csv")
        .starts_with("id,primaryEmail,name.fullName,isAdmin,suspended,orgUnitPath,lastLoginTime\r\n100,user0@example.com,Given0 Family0,true,false,/,\r\n"));
}

#[test]
fn the_fan_out_example_fetches_each_listed_message() {
    let wd = Workdir::new();
    copy_examples(&wd);
    let run = wd.run(&["run", "--only", "gmail_message_headers"]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/gmail_message_headers.csv");
    assert_eq!(
        csv.lines().count(),
        8,
        "a header and the 7 listed messages: {csv}"
    );
    assert!(
        csv.starts_with(
            "id,threadId,internalDate,snippet,subject,from,date\r\n\
             m01000,t0,1700000000000,\"Hello, number 0 — ünïcode\",Subject 0,Ann <ann@example.com>,\r\n\
             m01001,t0,1700000001000,\"Hello, number 1 — ünïcode\",Subject 1,Ann <ann@example.com>,\r\n"
        ),
        "each header picked by its name: {csv}"
    );
    // The chains run concurrently: find the first message's request by its path.
    let gets = wd.google.seen_under("/gmail/v1/users/me/messages/m01000");
    assert_eq!(
        gets[0].target,
        "/gmail/v1/users/me/messages/m01000?format=metadata&metadataHeaders=Subject&metadataHeaders=From&metadataHeaders=Date&fields=id%2CthreadId%2CinternalDate%2Csnippet%2Cpayload%2Fheaders"
    );
}

#[test]
fn the_first_run_needs_no_google_account() {
    let wd = Workdir::new();
    let example = include_str!("../../queries/google_apis.toml");
    wd.write("queries/google_apis.toml", example);
    let output = wd
        .command(&["run"])
        .env_remove("GSCRAPE_ACCESS_TOKEN")
        .output()
        .unwrap();
    let run = crate::support::finish(output);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/google_apis.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("name,version,title,preferred,documentationLink")
    );
    assert!(
        csv.contains(
            "\r\ndrive,v3,Google Drive API,true,https://developers.google.com/workspace/drive/"
        ),
        "{csv}"
    );
    let listed = wd.google.seen_under("/discovery/v1/apis");
    let list = listed
        .iter()
        .find(|s| s.path() == "/discovery/v1/apis")
        .unwrap();
    assert_eq!(list.authorization, None, "no credential was sent");

    // A method that needs a scope still fails at once without a credential.
    wd.write(
        "queries/files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n",
    );
    let output = wd
        .command(&["run"])
        .env_remove("GSCRAPE_ACCESS_TOKEN")
        .output()
        .unwrap();
    let run = crate::support::finish(output);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with("error: no credentials found"),
        "{}",
        run.stderr
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn the_calendar_example_keeps_all_day_events() {
    let wd = Workdir::new();
    copy_examples(&wd);
    let run = wd.run(&["run", "--only", "calendar_events"]);
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/calendar_events.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,status,summary,start,end,attendees");
    assert_eq!(
        lines[1],
        "ev0,confirmed,Meeting 0,2025-03-01T09:00:00Z,2025-03-01T10:00:00Z,a@example.com;b@example.com"
    );
    assert_eq!(
        lines[3], "ev2,confirmed,Meeting 2,2025-03-03,2025-03-04,a@example.com;b@example.com",
        "an all-day event's start.date, where start.dateTime is absent"
    );
    let fields = wd.google.seen_under("/calendar/")[0]
        .param("fields")
        .unwrap();
    assert_eq!(
        fields,
        "items(id,status,summary,start(dateTime,date),end(dateTime,date),attendees/email),nextPageToken"
    );
}

#[test]
fn the_examples_ask_only_for_read_only_scopes() {
    let wd = Workdir::new();
    copy_examples(&wd);
    let run = crate::auth::login(&wd);
    assert_eq!(run.code, 0, "{run:?}");
    let scopes = crate::auth::cached_login(&wd)["scopes"].clone();
    let scopes: Vec<&str> = scopes
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(scopes.len() >= 8, "{scopes:?}");
    assert!(
        scopes.iter().all(|s| s.ends_with(".readonly")
            || s.ends_with(".read-only")
            || ["openid", "email"].contains(s)),
        "{scopes:?}"
    );
}

#[test]
fn the_destination_example_writes_a_sheet_when_run_on_purpose() {
    let wd = Workdir::new();
    let example = include_str!("../../queries/destinations/drive_files_to_sheet.toml");
    wd.write("queries/destinations/drive_files_to_sheet.toml", example);
    let run = wd.run(&["run", "queries/destinations"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (titles, rows) = wd.google.sheets(|s| {
        let sheet = &s.spreadsheets["fake-sheet-1"];
        (s.titles(&sheet.id), sheet.tabs[0].rows.len())
    });
    assert_eq!(titles, ["Drive files"]);
    assert_eq!(rows, 251, "a header and the 250 files");
}

#[test]
fn the_workspace_audit_example_fetches_each_message_as_its_user() {
    let wd = Workdir::with_config(crate::support::Config {
        directory_users: 2,
        gmail_messages: 3,
        ..crate::support::Config::default()
    });
    crate::auth::write_service_account_key(&wd);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/workspace_audit");
    for name in ["audit_users", "audit_message_ids", "audit_messages"] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
        wd.write(&format!("queries/workspace_audit/{name}.toml"), &text);
    }
    let args = [
        "queries/workspace_audit",
        "--credentials",
        "sa.json",
        "--var",
        "admin=admin@example.com",
    ];
    let validate = wd.run_without_token(&[&["validate"][..], &args].concat());
    assert_eq!(validate.code, 0, "{validate:?}");
    let run = wd.run_without_token(&[&["run"][..], &args].concat());
    assert_eq!(run.code, 0, "{run:?}");
    let csv = wd.read("output/audit_messages.csv");
    assert!(
        csv.starts_with(
            "user,id,threadId,internalDate,subject,from,date\r\nuser0@example.com,m01000,"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 2 * 3, "{csv}");
    for seen in wd.google.seen_under("/gmail/v1/users/me/messages/") {
        let token = seen.authorization.as_deref().unwrap();
        let user = wd.google.subject_of(token.trim_start_matches("Bearer "));
        assert!(
            user.is_some_and(|u| u.starts_with("user")),
            "{}",
            seen.path()
        );
    }
}
