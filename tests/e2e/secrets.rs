//! Secrets never leave: credentials whose secrets would travel in clear are refused, a token
//! a header cannot carry is refused, and nothing gscrape prints holds a secret in use.

use crate::support::fake_oauth::{basic, encoded_forms, Echo, CLIENT_ID, CLIENT_SECRET, SA_EMAIL};
use crate::support::{finish, Run, Workdir};

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

/// A refresh token shaped as Google's are (`1//`), and a client secret holding the characters
/// that encodings change (`/`, `+`, a space).
const ENCODED_REFRESH: &str = "1//0g-abc/def+ghi=";
const ENCODED_SECRET: &str = "GOCSPX-se/cr+et never/printed";

/// Every string of `text` and, when it is JSON, every string in it decoded (an escaped form in
/// a JSON file reads as another form once decoded).
fn texts_of(text: &str) -> Vec<String> {
    fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut out = vec![text.to_owned()];
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        strings(&value, &mut out);
    }
    out
}

/// Fails when stdout, stderr or `files` hold any form of `secrets` (see `encoded_forms`) or
/// `extra` text.
fn assert_no_form_of(run: &Run, files: &[String], secrets: &[&str], extra: &[String]) {
    let mut forms: Vec<String> = secrets.iter().flat_map(|s| encoded_forms(s)).collect();
    forms.extend(extra.iter().cloned());
    let mut outputs = vec![
        ("stdout", run.stdout.clone()),
        ("stderr", run.stderr.clone()),
    ];
    for file in files {
        outputs.extend(texts_of(file).into_iter().map(|t| ("a file", t)));
    }
    for (name, text) in outputs {
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "{form:?} is in {name}: {text}"
            );
        }
    }
}

#[test]
fn a_token_endpoint_that_echoes_secrets_encoded_is_quoted_redacted() {
    for echo in Echo::ALL {
        let wd = Workdir::new();
        wd.write("queries/files.toml", QUERY);
        let user = serde_json::json!({
            "type": "authorized_user",
            "client_id": CLIENT_ID,
            "client_secret": ENCODED_SECRET,
            "refresh_token": ENCODED_REFRESH,
            "token_uri": wd.google.token_uri(),
        });
        wd.write("user.json", &user.to_string());
        // The first token works for one request; the refresh after the 401 is refused with
        // the secrets quoted, mid-run: the failure reaches the summary too.
        wd.google.configure(|c| {
            c.oauth.echo_form_as = Some(echo);
            c.oauth.echo_after = 1;
            c.oauth.token_uses = Some(1);
        });
        let run = wd.run_without_token(&[
            "-vv",
            "run",
            "--credentials",
            "user.json",
            "--summary-json",
            "summary.json",
        ]);
        assert_eq!(run.code, 1, "{echo:?}: {run:?}");
        let summary = wd.read("summary.json");
        assert_no_form_of(
            &run,
            std::slice::from_ref(&summary),
            &[ENCODED_REFRESH, ENCODED_SECRET],
            &[basic(CLIENT_ID, ENCODED_SECRET)],
        );
        let error = run
            .stderr
            .lines()
            .find(|l| l.starts_with("error: files: "))
            .unwrap_or_else(|| panic!("{echo:?}: {}", run.stderr));
        assert!(error.contains("(Bad request: "), "{echo:?}: {error}");
        // Every quoted form was shown, as REDACTED.
        let quoted = match echo {
            Echo::AsSent | Echo::JsonSlash => 2,
            Echo::LowerHex | Echo::JsonUnicode | Echo::Base64Url => 4,
            Echo::Base64 => 5,
        };
        assert!(
            error.matches("REDACTED").count() >= quoted,
            "{echo:?}: {error}"
        );
        assert!(summary.contains("REDACTED"), "{echo:?}: {summary}");
    }
}

#[test]
fn credential_files_holding_unexpected_values_are_named_not_quoted() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    let pem = include_str!("../fixtures/auth/sa-private-key.pem");
    let private = |path: &std::path::Path| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap()
    };
    let token_uri = wd.google.token_uri();
    // A private key in `type`.
    let key = serde_json::json!({
        "type": pem,
        "private_key": pem,
        "client_email": SA_EMAIL,
        "token_uri": token_uri,
    });
    private(&wd.write("sa-type.json", &key.to_string()));
    // A secret where a string of another shape was expected, or in a field's name.
    let key = serde_json::json!({
        "type": "service_account",
        "private_key": 31415926535897932384626433u128,
        "client_email": SA_EMAIL,
        "token_uri": token_uri,
    });
    private(&wd.write("sa-number.json", &key.to_string()));
    let key = serde_json::json!({
        "type": "service_account",
        "private_key": pem,
        "client_email": "ya29.a-token-where-the-email-goes",
        "token_uri": token_uri,
    });
    private(&wd.write("sa-email.json", &key.to_string()));
    let user = serde_json::json!({
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": { "1//0g-a-token-as-a-name": true },
        "refresh_token": ENCODED_REFRESH,
    });
    wd.write("user-name.json", &user.to_string());
    let user = serde_json::json!({
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": ENCODED_SECRET,
        "refresh_token": ENCODED_REFRESH,
        "token_uri": pem,
    });
    wd.write("user-uri.json", &user.to_string());
    let cases = [
        (
            "sa-type.json",
            "credentials of an unknown type (1704 chars) are not supported; use a service_account, authorized_user, impersonated_service_account, external_account or external_account_authorized_user file",
        ),
        (
            "sa-number.json",
            "not a complete service-account key (its `private_key` is a number, not a string)",
        ),
        (
            "sa-email.json",
            "not a complete service-account key (its `client_email` is not an email address (33 chars))",
        ),
        (
            "user-name.json",
            "not a complete authorized_user file (its `client_secret` is an object, not a string)",
        ),
        (
            "user-uri.json",
            "its token_uri is not a URL (1704 chars); an https URL was expected",
        ),
    ];
    let key_lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    let secrets = [
        ENCODED_REFRESH,
        ENCODED_SECRET,
        "ya29.a-token-where-the-email-goes",
    ];
    let mut extra = key_lines.clone();
    extra.extend([
        "31415926535897932384626433".to_owned(),
        "a-token-as-a-name".to_owned(),
    ]);
    for (file, message) in cases {
        let run = wd.run_without_token(&["run", "--credentials", file]);
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (2, format!("error: {file}: {message}\n").as_str())
        );
        assert_no_form_of(&run, &[], &secrets, &extra);
    }

    // A client secret file and a cached login, likewise.
    let secret = serde_json::json!({ "installed": {
        "client_id": CLIENT_ID,
        "client_secret": 27182818284590452353602874u128,
        "auth_uri": format!("{}o/oauth2/auth", wd.google.root_url()),
        "token_uri": token_uri,
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
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            "error: client_secret.json: incomplete client secret (its `installed.client_secret` is a number, not a string)\n"
        )
    );
    assert!(
        !run.stderr.contains("27182818284590452353602874"),
        "{}",
        run.stderr
    );
    let cache = "config/tokens/test-client__analyst@example.com.json";
    let login = serde_json::json!({
        "client_id": CLIENT_ID,
        "client_secret": ENCODED_SECRET,
        "token_uri": token_uri,
        "account": "analyst@example.com",
        "scopes": ["https://www.googleapis.com/auth/drive.readonly"],
        "refresh_token": ENCODED_REFRESH,
        "access_token": null,
        "expires_at": "ya29.a-token-in-the-wrong-field",
        "logged_in_at": 1,
    });
    wd.write(cache, &login.to_string());
    let run = wd.run_without_token(&["run"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            format!(
                "error: the token cache {} is corrupt (its `expires_at` is a string, not a number); run `gscrape auth login` again to replace it\n",
                wd.path().join(cache).display()
            )
            .as_str()
        )
    );
    assert_no_form_of(
        &run,
        &[],
        &secrets,
        &["a-token-in-the-wrong-field".to_owned()],
    );
}
