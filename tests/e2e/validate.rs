//! `gscrape validate`, and the same checks stopping `gscrape run` before any API call.

use crate::support::Workdir;

fn drive(extra: &str) -> String {
    format!("api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n{extra}")
}

/// Validates one query file and returns (exit code, stdout).
fn validate_one(contents: &str) -> (i32, String) {
    let wd = Workdir::new();
    wd.write("queries/q.toml", contents);
    let run = wd.run(&["validate"]);
    (run.code, run.stdout)
}

#[test]
fn a_valid_query_is_ok() {
    let (code, out) = validate_one(&drive("columns = [\"id\", \"owners[0].emailAddress\"]\n[params]\npageSize = 10\nq = \"trashed = false\"\nfields = \"*\"\n"));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "ok     q: drive.files.list → q.csv (2 columns, paginated)\n"
    );
}

#[test]
fn each_problem_is_one_line_naming_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.lst\"\n",
            "error  queries/q.toml:3: method: drive:v3 has no method \"drive.files.lst\"; did you mean `drive.files.list`, `drive.files.get`, `drive.files.delete`?\n",
        ),
        (
            &drive("[params]\npagesize = 10\n"),
            "error  queries/q.toml:5: params.pagesize: unknown parameter of drive.files.list; did you mean `pageSize`?\n",
        ),
        (
            &drive("[params]\npageSize = \"ten\"\n"),
            "error  queries/q.toml:5: params.pageSize: expected an integer, found the string \"ten\"\n",
        ),
        (
            &drive("[params]\ncorpus = \"everything\"\n"),
            "error  queries/q.toml:5: params.corpus: \"everything\" is not an allowed value; use one of: domain, user\n",
        ),
        (
            &drive("[params]\nq = [\"a\", \"b\"]\n"),
            "error  queries/q.toml:5: params.q: takes one value, not a list (the parameter is not repeated)\n",
        ),
        (
            &drive("[params]\nsupportsAllDrives = \"yes\"\n"),
            "error  queries/q.toml:5: params.supportsAllDrives: expected a boolean (true or false), found the string \"yes\"\n",
        ),
        (
            &drive("[body]\nname = \"x\"\n"),
            "error  queries/q.toml:4: body: drive.files.list takes no request body (it is GET files); remove [body] or use [params]\n",
        ),
        (
            &drive("max_page = 3\n"),
            "error  queries/q.toml:4: max_page: unknown key `max_page`; did you mean `max_pages`?\n",
        ),
        (
            &drive("max_pages = 0\n"),
            "error  queries/q.toml:4: max_pages: invalid value: integer `0`, expected a nonzero u64\n",
        ),
        (
            &drive("columns = [\"id\", \"owners.emailAdress\"]\n"),
            "error  queries/q.toml:4: columns: `owners.emailAdress`: `owners` has no field `emailAdress`; did you mean `emailAddress`?\n",
        ),
        (
            &drive("records = \"items\"\n"),
            "error  queries/q.toml:4: records: `items` is not in the response of drive.files.list; arrays of records in the response: `files`\n",
        ),
        (
            "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n[params]\nuserId = \"me\"\n",
            "error  queries/q.toml: params.id: missing required path parameter of gmail.users.messages.get: add `id = ...` under [params] (The ID of the message to retrieve.)\n",
        ),
        (
            "api = \"drive\"\nversion = \"v3\"\n",
            "error  queries/q.toml: missing required key `method` (every query names `api`, `version` and `method`)\n",
        ),
        (
            "api = \"drive\"\nversion = \"v3\nmethod = \"x\"\n",
            "error  queries/q.toml:2: version: invalid basic string\n",
        ),
        (
            &drive("columns = [{ name = \"{{ today }}\", path = \"id\" }]\n"),
            "error  queries/q.toml:4: columns: \"{{ today }}\" is used as written here, braces and all: templates are rendered only in [params], [body], `output`, `subject` and column `value`s; write the value out\n",
        ),
        (
            &drive("[vars]\nsince = \"{{ days_ago(7) }}\"\n"),
            "error  queries/q.toml:5: vars: \"{{ days_ago(7) }}\" is used as written here, braces and all: templates are rendered only in [params], [body], `output`, `subject` and column `value`s; write the value out\n",
        ),
        (
            &drive("subject = \"{{ user }}@example.com\"\n"),
            "error  queries/q.toml: subject: \"{{ user }}@example.com\" uses the undefined variable `user`; this query has no variables of its own (add a [vars] table or --var)\n",
        ),
        (
            "api = \"nope\"\nversion = \"v9\"\nmethod = \"nope.x.list\"\n",
            "error  queries/q.toml: api: the Discovery service has no document nope:v9 (HTTP 404 Not Found from http://127.0.0.1:PORT/discovery/v1/apis/nope/v9/rest); check `api` and `version`\n",
        ),
    ];
    for (contents, expected) in cases {
        let wd = Workdir::new();
        wd.write("queries/q.toml", contents);
        let run = wd.run(&["validate"]);
        let expected = expected.replace("PORT", &wd.google.addr.port().to_string());
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (2, expected.as_str()),
            "for:\n{contents}"
        );
    }
}

#[test]
fn all_problems_of_all_files_are_reported_and_nothing_runs() {
    let wd = Workdir::new();
    wd.write(
        "queries/a.toml",
        &drive("[params]\npageSize = \"ten\"\nspaces = 1\n"),
    );
    wd.write(
        "queries/b.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n",
    );
    wd.write("queries/c.toml", &drive(""));
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/a.toml:5: params.pageSize: expected an integer, found the string \"ten\"\n\
         error: queries/a.toml:6: params.spaces: expected a string, found the integer 1\n\
         error: queries/b.toml: params.userId: missing required path parameter of gmail.users.messages.list: add `userId = ...` under [params] (The user's email address.)\n"
    );
    let api_calls: Vec<_> = wd
        .google
        .seen()
        .into_iter()
        .filter(|s| !s.path().starts_with("/discovery/"))
        .collect();
    assert!(
        api_calls.is_empty(),
        "no API request before every query is valid: {api_calls:?}"
    );
    assert!(wd.list("output").is_empty());
}

#[test]
fn duplicate_names_and_missing_paths_are_usage_errors() {
    let wd = Workdir::new();
    wd.write("queries/a.toml", &drive("name = \"same\"\n"));
    wd.write("queries/b.toml", &drive("name = \"same\"\n"));
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stdout,
        "error  queries/b.toml: name: the query name \"same\" is also used by queries/a.toml; give one of them another `name`\n\
         ok     same: drive.files.list → same.csv (111 columns, paginated)\n"
    );

    let run = wd.run(&["validate", "nowhere"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (2, "error: nowhere: no such file or directory\n")
    );
}

#[test]
fn discovery_documents_are_cached_for_offline_use() {
    let wd = Workdir::new();
    wd.write("queries/q.toml", &drive(""));
    let run = wd.run(&["validate", "--offline"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout
            .contains("--offline: no cached Discovery document drive:v3 in"),
        "{}",
        run.stdout
    );

    assert_eq!(wd.run(&["validate"]).code, 0);
    assert_eq!(wd.run(&["validate"]).code, 0);
    assert_eq!(
        wd.google.seen_under("/discovery/").len(),
        1,
        "the second run used the cache"
    );
    assert_eq!(wd.run(&["validate", "--offline"]).code, 0);
    assert_eq!(wd.run(&["validate", "--refresh-discovery"]).code, 0);
    assert_eq!(wd.google.seen_under("/discovery/").len(), 2);
}
