//! Endpoint overrides: `GSCRAPE_ENDPOINT_<API>`, `[endpoints]` in `gscrape.toml` and a query's
//! `endpoint` send an API's requests to another root (a second fake Google, which sees them,
//! while the first, whose Discovery documents name itself, sees none), in that order of
//! precedence; `GSCRAPE_ENDPOINT_OAUTH2` moves the default token endpoint;
//! `STORAGE_EMULATOR_HOST` is Cloud Storage's root; bad values are one line and exit 2; a
//! token never goes over plain http elsewhere than loopback.

use crate::support::fake_oauth::{CLIENT_ID, CLIENT_SECRET};
use crate::support::{finish, Config, FakeGoogle, Run, Workdir};

const DRIVE_QUERY: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 100\n";

/// Another fake Google: where an override points.
fn elsewhere() -> FakeGoogle {
    FakeGoogle::start_with(Config::default())
}

fn run_with(wd: &Workdir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = wd.command(args);
    command.envs(env.iter().copied());
    finish(command.output().unwrap())
}

/// How many Drive requests `google` answered.
fn drive_requests(google: &FakeGoogle) -> usize {
    google.seen_under("/drive/").len()
}

#[test]
fn gscrape_endpoint_drive_sends_drives_requests_to_its_root() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let other = elsewhere();
    let root = other.root_url();
    let run = run_with(&wd, &["run"], &[("GSCRAPE_ENDPOINT_DRIVE", &root)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(drive_requests(&other), 3, "250 files, pages of 100");
    assert_eq!(drive_requests(&wd.google), 0);
    assert_eq!(
        wd.google.seen_under("/discovery/").len(),
        1,
        "the document still comes from the Discovery service"
    );
    assert_eq!(wd.read("output/files.csv").lines().count(), 251);
}

#[test]
fn an_endpoints_table_of_the_project_or_the_user_sends_them_too() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let (project, user) = (elsewhere(), elsewhere());
    wd.write(
        "config/gscrape.toml",
        &format!("[endpoints]\ndrive = \"{}\"\n", user.root_url()),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(drive_requests(&user), 3, "the user's file");
    wd.write(
        "gscrape.toml",
        &format!(
            "[run]\nconcurrency = 2\n\n[endpoints]\ndrive = \"{}\"\n",
            project.root_url()
        ),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(drive_requests(&project), 3, "the project's over the user's");
    assert_eq!((drive_requests(&user), drive_requests(&wd.google)), (3, 0));
}

#[test]
fn a_querys_endpoint_moves_that_query_alone() {
    let wd = Workdir::new();
    let other = elsewhere();
    wd.write(
        "queries/moved.toml",
        &format!("endpoint = \"{}\"\n{DRIVE_QUERY}", other.root_url()),
    );
    wd.write("queries/stays.toml", DRIVE_QUERY);
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(drive_requests(&other), 3);
    assert_eq!(drive_requests(&wd.google), 3);
    assert_eq!(wd.read("output/moved.csv"), wd.read("output/stays.csv"));
}

#[test]
fn the_query_goes_over_the_variable_over_the_project_over_the_user_over_the_document() {
    let wd = Workdir::new();
    let [query, variable, project, user] = [elsewhere(), elsewhere(), elsewhere(), elsewhere()];
    let table = |google: &FakeGoogle| format!("[endpoints]\ndrive = \"{}\"\n", google.root_url());
    let with_endpoint = format!("endpoint = \"{}\"\n{DRIVE_QUERY}", query.root_url());
    let env = [("GSCRAPE_ENDPOINT_DRIVE", variable.root_url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let steps: [(&str, &FakeGoogle); 5] = [
        ("document", &wd.google),
        ("user", &user),
        ("project", &project),
        ("variable", &variable),
        ("query", &query),
    ];
    for (step, (name, expected)) in steps.iter().enumerate() {
        if step >= 1 {
            wd.write("config/gscrape.toml", &table(&user));
        }
        if step >= 2 {
            wd.write("gscrape.toml", &table(&project));
        }
        let text = if step >= 4 {
            &with_endpoint
        } else {
            DRIVE_QUERY
        };
        wd.write("queries/files.toml", text);
        let env = if step >= 3 { &env[..] } else { &[] };
        let before = drive_requests(expected);
        let run = run_with(&wd, &["run"], env);
        assert_eq!(run.code, 0, "{name}: {run:?}");
        assert_eq!(drive_requests(expected), before + 3, "{name} wins");
    }
    assert_eq!(
        [&wd.google, &user, &project, &variable, &query].map(drive_requests),
        [3; 5],
        "each step went to one root only"
    );
}

#[test]
fn describe_shows_the_url_in_force_and_validate_checks_with_it() {
    let wd = Workdir::new();
    let env = [("GSCRAPE_ENDPOINT_DRIVE", "https://drive.psc.example/")];
    let run = run_with(&wd, &["describe", "drive", "v3", "drive.files.list"], &env);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "  GET https://drive.psc.example/drive/v3/files\n  (the root URL of \
             GSCRAPE_ENDPOINT_DRIVE; the document's is {})\n",
            wd.google.root_url()
        )),
        "{}",
        run.stdout
    );
    let run = wd.run(&["describe", "drive", "v3", "drive.files.list"]);
    assert!(!run.stdout.contains("the root URL of"), "{}", run.stdout);

    wd.write("queries/files.toml", DRIVE_QUERY);
    let run = run_with(&wd, &["validate"], &env);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "ok     files: drive.files.list → files.csv (1 columns, paginated)\n"
    );
    let env = [("GSCRAPE_ENDPOINT_DRIVE", "http://drive.psc.example/")];
    let run = run_with(&wd, &["validate"], &env);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  files: refusing to send a bearer token over plain http to \
         http://drive.psc.example/drive/v3/files (the root URL of GSCRAPE_ENDPOINT_DRIVE): use \
         https (plain http is allowed only to 127.0.0.1, ::1 or localhost, and not through a \
         proxy on another host (name them in NO_PROXY))\n\
         ok     files: drive.files.list → files.csv (1 columns, paginated)\n",
        "(a refusal of the run as a whole, as for any plain-http root)"
    );
}

#[test]
fn a_token_never_goes_over_plain_http_elsewhere_than_loopback() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let run = run_with(
        &wd,
        &["run"],
        &[("GSCRAPE_ENDPOINT_DRIVE", "http://drive.example.com")],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: files: refusing to send a bearer token over plain http to \
             http://drive.example.com/drive/v3/files (the root URL of GSCRAPE_ENDPOINT_DRIVE): \
             use https"
        ),
        "{}",
        run.stderr
    );
    wd.write(
        "queries/files.toml",
        &format!("endpoint = \"http://10.0.0.8:8080/\"\n{DRIVE_QUERY}"),
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: files: refusing to send a bearer token over plain http to \
             http://10.0.0.8:8080/drive/v3/files (the root URL of queries/files.toml: endpoint)"
        ),
        "{}",
        run.stderr
    );
    // gscrape's own calls carry a secret every time: refused whether used or not.
    wd.write("queries/files.toml", DRIVE_QUERY);
    let run = run_with(
        &wd,
        &["run"],
        &[("GSCRAPE_ENDPOINT_OAUTH2", "http://oauth.example.com/")],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: GSCRAPE_ENDPOINT_OAUTH2: refusing to send credentials over plain http to \
         http://oauth.example.com/: use https (plain http is allowed only to 127.0.0.1, ::1 or \
         localhost, and not through a proxy on another host (name them in NO_PROXY))\n"
    );
    assert_eq!(drive_requests(&wd.google), 0);
}

#[test]
fn a_value_that_is_no_root_url_is_one_line_and_exit_2() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    for command in ["run", "validate"] {
        let run = run_with(
            &wd,
            &[command],
            &[("GSCRAPE_ENDPOINT_DRIVE", "drive.example.com")],
        );
        assert_eq!(run.code, 2, "{run:?}");
        assert_eq!(
            run.stderr,
            "error: GSCRAPE_ENDPOINT_DRIVE: \"drive.example.com\" is not a root URL (http or \
             https is needed): give one such as \"https://drive.example.com/\"\n"
        );
    }
    let run = run_with(
        &wd,
        &["describe", "drive", "v3"],
        &[("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "https://u.example/")],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with(
        "error: GOOGLE_CLOUD_UNIVERSE_DOMAIN: \"https://u.example/\" is not a domain name"
    ));
    wd.write("gscrape.toml", "[endpoints]\ndrive = 8080\n");
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: gscrape.toml: [endpoints] drive: must be a root URL in quotes, such as drive = \
         \"https://drive.example.com/\"\n"
    );
    std::fs::remove_file(wd.path().join("gscrape.toml")).unwrap();
    wd.write(
        "queries/files.toml",
        &format!("endpoint = \"ftp://drive.example.com/\"\n{DRIVE_QUERY}"),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout,
        "error  queries/files.toml:1: endpoint: \"ftp://drive.example.com/\" is not a root URL \
         (http or https is needed): give one such as \"https://drive.example.com/\"\n"
    );
    assert_eq!(drive_requests(&wd.google), 0);
}

#[test]
fn the_default_token_endpoint_follows_gscrape_endpoint_oauth2_and_a_files_own_wins() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let other = elsewhere();
    let refresh_token = other.seed_refresh_token("https://www.googleapis.com/auth/drive.readonly");
    let user = |token_uri: Option<String>| {
        let mut user = serde_json::json!({
            "type": "authorized_user",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": refresh_token,
        });
        if let Some(uri) = token_uri {
            user["token_uri"] = serde_json::json!(uri);
        }
        user.to_string()
    };
    // No token_uri (as gcloud writes them): the default, moved.
    wd.write("user.json", &user(None));
    let root = other.root_url();
    let env = [
        ("GSCRAPE_ENDPOINT_OAUTH2", root.as_str()),
        ("GSCRAPE_ENDPOINT_DRIVE", root.as_str()),
    ];
    let mut command = wd.command(&["run", "--credentials", "user.json"]);
    command.env_remove("GSCRAPE_ACCESS_TOKEN").envs(env);
    let run = finish(command.output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    let grants: Vec<String> = other.grants().into_iter().map(|g| g.grant_type).collect();
    assert_eq!(grants, ["refresh_token"]);
    assert!(wd.google.grants().is_empty());
    assert_eq!(drive_requests(&other), 3);

    // The file's own token_uri wins over the variable.
    wd.write("user.json", &user(Some(other.token_uri())));
    let env = [
        ("GSCRAPE_ENDPOINT_OAUTH2", "https://oauth2.unused.example/"),
        ("GSCRAPE_ENDPOINT_DRIVE", root.as_str()),
    ];
    let mut command = wd.command(&["run", "--credentials", "user.json"]);
    command.env_remove("GSCRAPE_ACCESS_TOKEN").envs(env);
    let run = finish(command.output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(other.grants().len(), 2);
}

/// A Cloud Storage document cut down to `objects.list`, with Google's root.
const STORAGE_DOCUMENT: &str = r#"{
  "kind": "discovery#restDescription", "name": "storage", "version": "v1",
  "rootUrl": "https://storage.googleapis.com/", "servicePath": "storage/v1/",
  "resources": {"objects": {"methods": {"list": {
    "id": "storage.objects.list", "path": "b/{bucket}/o", "httpMethod": "GET",
    "parameters": {"bucket": {"type": "string", "required": true, "location": "path"}},
    "parameterOrder": ["bucket"],
    "response": {"$ref": "Objects"},
    "scopes": ["https://www.googleapis.com/auth/devstorage.read_only"]
  }}}},
  "schemas": {
    "Objects": {"id": "Objects", "type": "object", "properties": {
      "items": {"type": "array", "items": {"$ref": "Object"}},
      "nextPageToken": {"type": "string"}}},
    "Object": {"id": "Object", "type": "object", "properties": {
      "name": {"type": "string"}, "bucket": {"type": "string"}, "size": {"type": "string"}}}
  }
}"#;

#[test]
fn storage_emulator_host_is_the_root_of_cloud_storage() {
    let wd = Workdir::new();
    let emulator = elsewhere();
    wd.write("queries/storage.json", STORAGE_DOCUMENT);
    wd.write(
        "queries/objects.toml",
        "api = \"storage\"\nversion = \"v1\"\nmethod = \"storage.objects.list\"\n\
         discovery = \"storage.json\"\ncolumns = [\"name\", \"size\"]\n[params]\nbucket = \"bkt\"\n",
    );
    // A host and port, as the emulators document it: plain http.
    let host = emulator.addr.to_string();
    let run = run_with(&wd, &["run"], &[("STORAGE_EMULATOR_HOST", &host)]);
    assert_eq!(run.code, 0, "{run:?}");
    let seen = emulator.seen_under("/storage/v1/b/bkt/o");
    assert_eq!(seen.len(), 1, "{:?}", emulator.seen());
    assert_eq!(
        wd.read("output/objects.csv"),
        "name,size\r\na.txt,3\r\nb.txt,5\r\n"
    );
    // GSCRAPE_ENDPOINT_STORAGE goes over it.
    let other = elsewhere();
    let root = other.root_url();
    let run = run_with(
        &wd,
        &["run"],
        &[
            ("STORAGE_EMULATOR_HOST", &host),
            ("GSCRAPE_ENDPOINT_STORAGE", &root),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(other.seen_under("/storage/").len(), 1);
    assert_eq!(emulator.seen_under("/storage/").len(), 1);
}

#[test]
fn the_sheets_destination_follows_the_sheets_override() {
    let wd = Workdir::new();
    let other = elsewhere();
    wd.write(
        "queries/files.toml",
        &format!("{DRIVE_QUERY}[sheet]\nspreadsheet = \"new\"\n"),
    );
    let root = other.root_url();
    let run = run_with(&wd, &["run"], &[("GSCRAPE_ENDPOINT_SHEETS", &root)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(other.sheets(|s| s.spreadsheets.len()), 1);
    assert_eq!(wd.google.sheets(|s| s.spreadsheets.len()), 0);
    assert_eq!(drive_requests(&wd.google), 3, "Drive stays where it was");

    let run = run_with(
        &wd,
        &["run"],
        &[("GSCRAPE_ENDPOINT_SHEETS", "http://sheets.example.com/")],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: files: refusing to send a bearer token over plain http to the Sheets API at \
             http://sheets.example.com/ (the root URL of GSCRAPE_ENDPOINT_SHEETS)"
        ),
        "{}",
        run.stderr
    );
}
