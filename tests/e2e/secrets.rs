//! Secrets never leave: credentials whose secrets would travel in clear are refused, a token
//! a header cannot carry is refused, and nothing gscrape prints holds a secret in use.

use crate::support::fake_oauth::{CLIENT_ID, CLIENT_SECRET, SA_EMAIL};
use crate::support::{finish, Workdir};

const QUERY: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 100\n";

#[test]
fn an_authorized_user_file_with_a_plain_http_token_uri_is_refused() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    let user = serde_json::json!({
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": "1//refresh-would-leak",
        "token_uri": "http://oauth2.example.com/token",
    });
    wd.write("user.json", &user.to_string());
    let run = wd.run_without_token(&["run", "--credentials", "user.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: user.json: its token_uri \"http://oauth2.example.com/token\" is not https: the \
         credential's secrets would travel in clear; use https (plain http is allowed only to \
         127.0.0.1, ::1 or localhost, and not through a proxy on another host (name them in \
         NO_PROXY))\n"
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn a_client_secret_with_a_plain_http_token_uri_is_refused() {
    let wd = Workdir::new();
    let secret = serde_json::json!({ "installed": {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth_uri": format!("{}o/oauth2/auth", wd.google.root_url()),
        "token_uri": "http://oauth2.example.com/token",
        "redirect_uris": ["http://localhost"],
    }});
    wd.write("client_secret.json", &secret.to_string());
    let run = wd.run_without_token(&[
        "auth",
        "login",
        "--client-secret",
        "client_secret.json",
        "--scope",
        "drive.readonly",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: client_secret.json: its token_uri \"http://oauth2.example.com/token\" is not \
         https: the credential's secrets would travel in clear; use https (plain http is allowed \
         only to 127.0.0.1, ::1 or localhost, and not through a proxy on another host (name \
         them in NO_PROXY))\n"
    );
    assert!(wd.google.seen_under("/o/oauth2/auth").is_empty());
}

#[test]
fn a_service_account_key_that_cannot_sign_is_refused_naming_the_file() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    let key = serde_json::json!({
        "type": "service_account",
        "private_key": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        "client_email": SA_EMAIL,
        "token_uri": wd.google.token_uri(),
    });
    let path = wd.write("sa.json", &key.to_string());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = wd.run_without_token(&["run", "--credentials", "sa.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: sa.json: the service-account key cannot sign: "),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(wd.google.seen_under("/token").is_empty());
}

#[test]
fn an_access_token_with_a_line_break_is_refused() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    let output = wd
        .command(&["run"])
        .env("GSCRAPE_ACCESS_TOKEN", "ya29.first-half\r\nX-Injected: 1")
        .output()
        .unwrap();
    let run = finish(output);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: the access token from GSCRAPE_ACCESS_TOKEN is empty or holds a space or a control \
         character (a line break?): give the token alone\n"
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn a_server_that_echoes_the_token_is_quoted_redacted() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    wd.google.configure(|c| c.echo_authorization = true);
    let run = wd.run(&["-vv", "run", "--summary-json", "summary.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: files: HTTP 400 INVALID_ARGUMENT/badRequest Unexpected header Authorization: Bearer REDACTED ["
        ),
        "{}",
        run.stderr
    );
    let summary = wd.read("summary.json");
    assert!(summary.contains("Bearer REDACTED"), "{summary}");
    assert!(!summary.contains(crate::support::TOKEN), "{summary}");
}

#[test]
fn a_token_endpoint_that_echoes_the_form_is_quoted_redacted() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    let user = serde_json::json!({
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": "1//refresh-from-the-file",
        "token_uri": wd.google.token_uri(),
    });
    wd.write("user.json", &user.to_string());
    wd.google.configure(|c| c.oauth.echo_form = true);
    // `finish` (in run_without_token) fails the test if the secret or refresh token is printed.
    let run = wd.run_without_token(&["-vv", "run", "--credentials", "user.json"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("client_secret=REDACTED&grant_type=refresh_token&refresh_token=REDACTED"),
        "{}",
        run.stderr
    );
}

#[test]
fn templates_cannot_read_the_credentials() {
    let wd = Workdir::new();
    wd.write(
        "queries/files.toml",
        &format!("{QUERY}q = \"name = '{{{{ env.GSCRAPE_ACCESS_TOKEN }}}}'\"\n"),
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "params.q: \"name = '{{ env.GSCRAPE_ACCESS_TOKEN }}'\" reads GSCRAPE_ACCESS_TOKEN, a credential; templates cannot read gscrape's secrets"
        ),
        "{}",
        run.stdout
    );

    // A variable or another environment variable holding the token in use.
    wd.write(
        "queries/files.toml",
        &format!("{QUERY}q = \"name = '{{{{ t }}}}'\"\n[vars]\nt = \"x\"\n"),
    );
    let run = wd.run(&["run", "--var", &format!("t={}", crate::support::TOKEN)]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/files.toml: vars.t: its value is a credential in use; templates cannot read gscrape's secrets\n"
    );
    wd.write(
        "queries/files.toml",
        &format!("{QUERY}q = \"name = '{{{{ env.COPY }}}}'\"\n"),
    );
    let output = wd
        .command(&["run"])
        .env("COPY", crate::support::TOKEN)
        .output()
        .unwrap();
    let run = finish(output);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/files.toml: env: the environment variable COPY is a credential in use; templates cannot read gscrape's secrets\n"
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}
