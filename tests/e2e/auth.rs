//! Authentication end to end: browser login (followed by the test), the paste flow, cached
//! tokens, refresh before expiry and after a 401, service accounts with delegation,
//! authorized_user files, invalid_grant, status, logout, bad files — and no secret in any output.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::fake_oauth::{CLIENT_ID, CLIENT_SECRET, LOGIN_EMAIL, SA_EMAIL};
use crate::support::{finish, Run, Workdir, TOKEN};

const DRIVE_QUERY: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 25\n";
const DRIVE_READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";
const CACHE_FILE: &str = "config/tokens/test-client__analyst@example.com.json";

pub(crate) fn write_client_secret(wd: &Workdir, kind: &str) {
    let root = wd.google.root_url();
    let secret = serde_json::json!({ kind: {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth_uri": format!("{root}o/oauth2/auth"),
        "token_uri": format!("{root}token"),
        "redirect_uris": ["http://localhost"],
    }});
    wd.write("client_secret.json", &secret.to_string());
}

pub(crate) fn write_service_account_key(wd: &Workdir) {
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "k1",
        "private_key": include_str!("../fixtures/auth/sa-private-key.pem"),
        "client_email": SA_EMAIL,
        "client_id": "1234",
        "token_uri": wd.google.token_uri(),
    });
    let path = wd.write("sa.json", &key.to_string());
    set_mode(&path, 0o600);
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A GET over plain HTTP to loopback: status, `Location` header.
pub(crate) fn http_get(url: &str) -> (u16, Option<String>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, target) = rest
        .split_once('/')
        .map(|(h, t)| (h, format!("/{t}")))
        .unwrap_or((rest, "/".into()));
    let port = host.rsplit_once(':').map(|(_, p)| p).unwrap_or("80");
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let location = response
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .map(str::to_owned);
    (status, location)
}

/// Starts `gscrape auth login ...` and returns the child and the sign-in URL it printed.
/// The caller waits for the child (`end_login`).
#[allow(clippy::zombie_processes)]
pub(crate) fn start_login(
    wd: &Workdir,
    extra: &[&str],
    stdin: Stdio,
) -> (Child, String, BufReader<std::process::ChildStderr>, String) {
    let mut args = vec!["auth", "login", "--client-secret", "client_secret.json"];
    args.extend_from_slice(extra);
    let mut child = wd
        .command(&args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("login ended before printing a URL: {seen}");
        }
        seen.push_str(&line);
        if let Some(url) = line
            .trim()
            .strip_prefix("http")
            .filter(|_| line.contains("/o/oauth2/auth"))
        {
            return (child, format!("http{url}"), stderr, seen);
        }
    }
}

/// Waits for the login to end and gathers what it printed.
pub(crate) fn end_login(
    child: Child,
    mut stderr: BufReader<std::process::ChildStderr>,
    mut printed: String,
) -> Run {
    stderr.read_to_string(&mut printed).unwrap();
    let mut output = child.wait_with_output().unwrap();
    output.stderr = printed.into_bytes();
    finish(output)
}

/// A complete browser login, the test playing the browser.
pub(crate) fn login(wd: &Workdir) -> Run {
    login_with(wd, &[])
}

/// `login`, with more arguments (the query files to log in for).
fn login_with(wd: &Workdir, extra: &[&str]) -> Run {
    write_client_secret(wd, "installed");
    let (child, url, stderr, printed) = start_login(wd, extra, Stdio::null());
    let (status, location) = http_get(&url);
    assert_eq!(status, 302);
    let (status, _) = http_get(&location.unwrap());
    assert_eq!(status, 200, "the loopback listener answers the browser");
    end_login(child, stderr, printed)
}

pub(crate) fn cached_login(wd: &Workdir) -> serde_json::Value {
    serde_json::from_str(&wd.read(CACHE_FILE)).unwrap()
}

const GA4_QUERY: &str = "api = \"analyticsdata\"\nversion = \"v1beta\"\n\
    method = \"analyticsdata.properties.runReport\"\n[params]\nproperty = \"properties/123\"\n\
    [body]\nmetrics = [{ name = \"activeUsers\" }]\n";
const ANALYTICS_READONLY: &str = "https://www.googleapis.com/auth/analytics.readonly";

/// The query string of the last sign-in URL the login opened.
fn last_sign_in(wd: &Workdir) -> std::collections::HashMap<String, String> {
    let seen = wd.google.seen_under("/o/oauth2/auth");
    seen.last().unwrap().query().into_iter().collect()
}

#[test]
fn a_login_for_one_querys_new_scope_keeps_the_scopes_of_the_saved_login() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    // As gscrape's advice for a query that needs a new scope says: log in with that query.
    wd.write("reports/ga4.toml", GA4_QUERY);
    let run = login_with(&wd, &["reports/ga4.toml"]);
    assert_eq!(run.code, 0, "{run:?}");
    let asked = last_sign_in(&wd);
    assert_eq!(
        asked["scope"],
        format!("{ANALYTICS_READONLY} {DRIVE_READONLY} openid email"),
        "the union with the saved login's scopes"
    );
    assert_eq!(asked["include_granted_scopes"], "true");
    assert!(
        run.stderr.contains(
            "(Asked again for the 1 scope of the login saved before, so that it only grows.)\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        cached_login(&wd)["scopes"],
        serde_json::json!([ANALYTICS_READONLY, DRIVE_READONLY, "openid", "email"])
    );
    // The Drive query still runs on the saved login.
    let run = wd.run_without_token(&["run", "queries"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_scope_unticked_on_the_consent_screen_is_named_with_the_queries_that_need_it() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    wd.write("queries/ga4.toml", GA4_QUERY);
    wd.google
        .configure(|c| c.oauth.untick = vec![ANALYTICS_READONLY.to_owned()]);
    let run = login(&wd);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "warning: {ANALYTICS_READONLY} was not granted (unticked on the consent screen): ga4 \
             cannot run without it; run `gscrape auth login` again and leave it ticked\n"
        )),
        "{}",
        run.stderr
    );
    // What was granted before stays granted.
    assert_eq!(
        cached_login(&wd)["scopes"],
        serde_json::json!([DRIVE_READONLY, "openid", "email"])
    );
}

#[test]
fn login_follows_the_browser_and_caches_the_token_privately() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let run = login(&wd);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("Logged in as analyst@example.com.\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("Scopes:\n  {DRIVE_READONLY}\n  openid\n  email\n")),
        "{}",
        run.stderr
    );

    let auth = &wd.google.seen_under("/o/oauth2/auth")[0];
    let query: std::collections::HashMap<_, _> = auth.query().into_iter().collect();
    assert_eq!(
        query["scope"],
        format!("{DRIVE_READONLY} openid email"),
        "least privilege from the queries"
    );
    assert!(query["redirect_uri"].starts_with("http://localhost:"));
    assert_eq!(query["access_type"], "offline");

    let path = wd.path().join(CACHE_FILE);
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(path.parent().unwrap()), 0o700);
    let cached = cached_login(&wd);
    assert_eq!(cached["account"], LOGIN_EMAIL);
    assert_eq!(
        cached["scopes"],
        serde_json::json!([DRIVE_READONLY, "openid", "email"])
    );
    let grants: Vec<String> = wd
        .google
        .grants()
        .into_iter()
        .map(|g| g.grant_type)
        .collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);

    // A run reuses the cached token: no request to the token endpoint.
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.google.grants().len(), 2);
    let drive = wd.google.seen_under("/drive/");
    assert_eq!(
        drive[0].authorization.as_deref(),
        Some(&*format!(
            "Bearer {}",
            cached["access_token"].as_str().unwrap()
        ))
    );
}

#[test]
fn a_web_client_logs_in_on_its_registered_port() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    write_client_secret(&wd, "web");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (child, url, stderr, printed) =
        start_login(&wd, &["--port", &port.to_string()], Stdio::null());
    assert!(
        url.contains(&format!("redirect_uri=http://localhost:{port}&")),
        "{url}"
    );
    let (_, location) = http_get(&url);
    http_get(&location.unwrap());
    let run = end_login(child, stderr, printed);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_denied_login_ends_with_a_message() {
    let wd = Workdir::new();
    wd.google.configure(|c| c.oauth.deny = true);
    wd.write("queries/files.toml", DRIVE_QUERY);
    write_client_secret(&wd, "installed");
    let (child, url, stderr, printed) = start_login(&wd, &[], Stdio::null());
    let (_, location) = http_get(&url);
    assert!(location
        .as_deref()
        .unwrap()
        .contains("/?error=access_denied&state="));
    http_get(&location.unwrap());
    let run = end_login(child, stderr, printed);
    assert_eq!(run.code, 1);
    assert!(run.stderr.ends_with(
        "error: login failed: access was denied in the browser (error=access_denied); run `gscrape auth login` again and choose Allow\n"
    ), "{}", run.stderr);
    assert!(!wd.exists(CACHE_FILE));
}

#[test]
fn a_login_nobody_answers_times_out() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    write_client_secret(&wd, "installed");
    let (child, _url, stderr, printed) = start_login(&wd, &["--timeout", "1"], Stdio::null());
    let run = end_login(child, stderr, printed);
    assert_eq!(run.code, 1);
    assert!(run.stderr.ends_with(
        "error: no answer from the browser within 1s; run `gscrape auth login` again (with --no-browser on a machine without a browser)\n"
    ), "{}", run.stderr);
}

#[test]
fn no_browser_accepts_the_pasted_address_or_code() {
    for paste_whole_url in [true, false] {
        let wd = Workdir::new();
        write_client_secret(&wd, "installed");
        let (mut child, url, stderr, printed) = start_login(
            &wd,
            &["--no-browser", "--scope", "drive.readonly"],
            Stdio::piped(),
        );
        assert!(url.contains("redirect_uri=http://localhost:1&"), "{url}");
        let (_, location) = http_get(&url);
        let location = location.unwrap();
        let answer = if paste_whole_url {
            location.clone()
        } else {
            let code = location
                .split("code=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap();
            percent_encoding::percent_decode_str(code)
                .decode_utf8()
                .unwrap()
                .into_owned()
        };
        writeln!(child.stdin.take().unwrap(), "{answer}").unwrap();
        let run = end_login(child, stderr, printed);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(
            cached_login(&wd)["scopes"],
            serde_json::json!([DRIVE_READONLY, "openid", "email"])
        );
    }
}

#[test]
fn tokens_are_refreshed_before_they_expire_during_a_long_export() {
    let wd = Workdir::new();
    wd.google.configure(|c| {
        c.oauth.token_lifetime = Duration::from_secs(2);
        c.latency = Duration::from_millis(300);
    });
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    let before = wd.google.grants().len();
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.google.seen_under("/drive/").len(), 10);
    assert_eq!(
        wd.google.unauthorized(),
        0,
        "no request went out with an expired token"
    );
    let refreshes = wd.google.grants().len() - before;
    assert!(
        refreshes >= 2,
        "refreshed at the start and during the export: {refreshes}"
    );
    assert!(wd.read("output/files.csv").ends_with("f0249\r\n"));
}

#[test]
fn a_401_is_answered_with_one_refresh_and_a_retry() {
    let wd = Workdir::new();
    wd.google.configure(|c| c.oauth.token_uses = Some(3));
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.google.unauthorized(), 3);
    let csv = wd.read("output/files.csv");
    assert_eq!(csv.lines().count(), 251, "no page lost or repeated");
    let mut expected = String::from("id\r\n");
    for i in 0..250 {
        expected.push_str(&format!("f{i:04}\r\n"));
    }
    assert_eq!(csv, expected);
}

#[test]
fn a_service_account_acts_for_the_subject() {
    let wd = Workdir::new();
    write_service_account_key(&wd);
    wd.write(
        "queries/files.toml",
        &format!("subject = \"boss@example.com\"\n{DRIVE_QUERY}"),
    );
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"id\"]\n\
         [params]\ncustomer = \"my_customer\"\n",
    );
    let run = wd.run_without_token(&[
        "run",
        "--credentials",
        "sa.json",
        "--subject",
        "admin@example.com",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let grants = wd.google.grants();
    assert_eq!(grants.len(), 2, "one token per subject: {grants:?}");
    let claims: Vec<&serde_json::Value> =
        grants.iter().map(|g| g.claims.as_ref().unwrap()).collect();
    assert_eq!(claims[0]["sub"], "boss@example.com");
    assert_eq!(claims[1]["sub"], "admin@example.com");
    assert_eq!(claims[0]["iss"], SA_EMAIL);
    assert_eq!(
        claims[0]["scope"],
        "https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/drive.readonly"
    );
    let token = |prefix: &str| {
        wd.google.seen_under(prefix)[0]
            .authorization
            .clone()
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_owned()
    };
    assert_eq!(
        wd.google.subject_of(&token("/drive/")).as_deref(),
        Some("boss@example.com")
    );
    assert_eq!(
        wd.google.subject_of(&token("/admin/")).as_deref(),
        Some("admin@example.com")
    );

    // The same key through GOOGLE_APPLICATION_CREDENTIALS.
    let output = wd
        .command(&["run", "--only", "users"])
        .env_remove("GSCRAPE_ACCESS_TOKEN")
        .env("GOOGLE_APPLICATION_CREDENTIALS", wd.path().join("sa.json"))
        .output()
        .unwrap();
    assert_eq!(finish(output).code, 0);
}

#[test]
fn an_authorized_user_file_is_refreshed_at_its_token_uri() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    let cached = cached_login(&wd);
    let user = serde_json::json!({
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": cached["refresh_token"],
        "token_uri": wd.google.token_uri(),
    });
    wd.write("user.json", &user.to_string());
    std::fs::remove_file(wd.path().join(CACHE_FILE)).unwrap();
    let before = wd.google.grants().len();
    let run = wd.run_without_token(&["run", "--credentials", "user.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let grants = wd.google.grants();
    assert_eq!(grants.len(), before + 1);
    assert_eq!(grants.last().unwrap().grant_type, "refresh_token");

    // Revoked, it is named as the file it is, to be renewed where it came from.
    wd.google.configure(|c| c.oauth.invalid_grant = true);
    let run = wd.run_without_token(&["run", "--credentials", "user.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: the refresh token in user.json (from --credentials) was refused by Google \
         (invalid_grant: Token has been expired or revoked.): it was revoked or has expired. \
         Renew it where it came from — for gcloud's file, `gcloud auth application-default \
         login` — or use `gscrape auth login`\n"
    );
}

#[test]
fn invalid_grant_in_a_cron_run_explains_what_to_do() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    let mut cached = cached_login(&wd);
    cached["expires_at"] = serde_json::json!(1);
    wd.write(CACHE_FILE, &cached.to_string());
    wd.google.configure(|c| c.oauth.invalid_grant = true);
    let logins_before = wd.google.seen_under("/o/oauth2/auth").len();
    let tokens_before = wd.google.seen_under("/token").len();
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        wd.google.seen_under("/token").len(),
        tokens_before + 1,
        "invalid_grant is not retried"
    );
    assert_eq!(
        run.stderr,
        "error: the saved login was refused by Google (invalid_grant: Token has been expired or revoked.). \
         Usual causes: access was revoked in the Google account settings; the OAuth app is in \"Testing\" status, \
         whose refresh tokens expire after 7 days; the system clock is wrong. Remedies: run `gscrape auth login \
         --client-secret FILE` again (publish the app to stop the 7-day expiry), or use a service account for \
         unattended runs\n"
    );
    assert_eq!(
        wd.google.seen_under("/o/oauth2/auth").len(),
        logins_before,
        "no browser flow started"
    );
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn a_login_without_the_needed_scope_says_so_before_running() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    wd.write(
        "queries/mail.toml",
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n[params]\nuserId = \"me\"\n",
    );
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: mail: the login of analyst@example.com was not granted a scope that gmail.users.messages.list \
         accepts (https://www.googleapis.com/auth/gmail.readonly); log in again: gscrape auth login --client-secret FILE\n"
    );
    assert!(wd.google.seen_under("/gmail/").is_empty());
}

#[test]
fn status_says_which_credential_and_why() {
    let wd = Workdir::new();
    let run = wd.run_without_token(&["auth", "status"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.starts_with("error: no credentials found"),
        "{}",
        run.stderr
    );

    let run = wd.run(&["auth", "status"]);
    assert_eq!(
        run.stdout,
        "credential: access token from GSCRAPE_ACCESS_TOKEN\nwhy: an access token is given, and it comes first\n"
    );

    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    let run = wd.run_without_token(&["auth", "status"]);
    assert_eq!(run.code, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "credential: login of analyst@example.com cached by `gscrape auth login` ({})",
            wd.path().join(CACHE_FILE).display()
        )
    );
    assert!(lines[1].starts_with("why: no access token or key file is given"));
    assert_eq!(lines[2], "account: analyst@example.com");
    assert_eq!(
        lines[3..7],
        [
            "scopes:",
            &format!("  {DRIVE_READONLY}"),
            "  openid",
            "  email"
        ],
        "every scope in full, one a line"
    );
    assert!(
        lines[7].starts_with("token: valid until ") && lines[7].ends_with("(in 59 min)"),
        "{}",
        lines[7]
    );

    write_service_account_key(&wd);
    let run = wd.run_without_token(&[
        "auth",
        "status",
        "--credentials",
        "sa.json",
        "--subject",
        "boss@example.com",
    ]);
    assert_eq!(
        run.stdout,
        format!(
            "credential: service account {SA_EMAIL} (key sa.json from --credentials)\n\
             why: no access token is given, and --credentials names a key file\n\
             account: {SA_EMAIL}\nacting as: boss@example.com (domain-wide delegation)\n\
             scopes: asked per run: the least-privilege scopes of its queries\n"
        )
    );
}

#[test]
fn logout_revokes_and_forgets_the_login() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    let refresh_token = cached_login(&wd)["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = wd.run_without_token(&["auth", "logout"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "Revoked the token of analyst@example.com.\nRemoved the login of analyst@example.com ({}).\n",
            wd.path().join(CACHE_FILE).display()
        )
    );
    assert!(wd.google.revoked(&refresh_token));
    assert!(!wd.exists(CACHE_FILE));
    assert_eq!(wd.run_without_token(&["auth", "status"]).code, 2);
}

#[test]
fn a_corrupt_cache_is_reported_and_replaced_by_the_next_login() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    wd.write(CACHE_FILE, "{ half a file");
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.starts_with(&format!(
            "error: the token cache {} is corrupt (",
            wd.path().join(CACHE_FILE).display()
        )),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .ends_with("); run `gscrape auth login` again to replace it\n"));
    assert_eq!(login(&wd).code, 0);
    assert_eq!(wd.run_without_token(&["run"]).code, 0);
}

#[test]
fn bad_credential_files_are_one_line_errors() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    write_client_secret(&wd, "installed");
    wd.write("notjson.json", "hello");
    wd.write("other.json", "{\"type\": \"gdch_service_account\"}");
    wd.write(
        "partial.json",
        "{\"type\": \"service_account\", \"client_email\": \"x@y\"}",
    );
    let cases = [
        ("missing.json", "missing.json: cannot read it: No such file or directory (os error 2)"),
        ("notjson.json", "notjson.json: not JSON (expected value at line 1 column 1)"),
        ("other.json", "other.json: credentials of type \"gdch_service_account\" are not supported; use a service_account, authorized_user, impersonated_service_account, external_account or external_account_authorized_user file"),
        ("partial.json", "partial.json: not a complete service-account key (missing field `private_key`)"),
        ("client_secret.json", "client_secret.json: this is an OAuth client secret, not a credential: log in with `gscrape auth login --client-secret FILE`"),
    ];
    for (file, message) in cases {
        let run = wd.run_without_token(&["run", "--credentials", file]);
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (2, format!("error: {message}\n").as_str())
        );
    }
    let run = wd.run_without_token(&["auth", "login", "--client-secret", "notjson.json"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            "error: notjson.json: not JSON (expected value at line 1 column 1)\n"
        )
    );

    write_service_account_key(&wd);
    set_mode(&wd.path().join("sa.json"), 0o644);
    let run = wd.run_without_token(&["run", "--credentials", "sa.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.starts_with(
        "warning: the private key sa.json is readable by other users; restrict it with `chmod 600 sa.json`\n"
    ), "{}", run.stderr);

    // A key someone else owns (a Kubernetes Secret: root's, 0440 for the pod's fsGroup) cannot
    // be restricted by this user: no warning. (Giving a file away needs root; a test run by
    // another user checks the warning only.)
    let key = wd.path().join("sa.json");
    set_mode(&key, 0o440);
    if std::os::unix::fs::chown(&key, Some(65532), Some(65532)).is_ok() {
        let run = wd.run_without_token(&["run", "--credentials", "sa.json"]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            !run.stderr.contains("readable by other users"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn an_api_key_is_sent_as_key_and_never_shown() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    wd.write("queries/users.toml", "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\ncolumns = [\"id\"]\n");
    let output = wd
        .command(&["run", "-vv"])
        .env_remove("GSCRAPE_ACCESS_TOKEN")
        .env("GSCRAPE_API_KEY", crate::support::fake_google::API_KEY)
        .output()
        .unwrap();
    let run = finish(output);
    assert_eq!(
        run.code, 1,
        "users fails (no customer), files works: {run:?}"
    );
    let drive = wd.google.seen_under("/drive/");
    assert!(drive[0]
        .target
        .ends_with(&format!("&key={}", crate::support::fake_google::API_KEY)));
    assert!(drive[0].authorization.is_none());
    assert!(
        run.stderr
            .contains("/admin/directory/v1/users?fields=users%2Fid%2CnextPageToken&key=REDACTED]"),
        "{}",
        run.stderr
    );
}

#[test]
fn verbose_output_never_shows_a_token() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let run = wd.run(&["run", "-vv"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.contains("debug: GET http://127.0.0.1:"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(TOKEN));

    // A POST's body is shown as sent: a report's window, rendered.
    wd.write("queries/ga4.toml", GA4_QUERY);
    let run = wd.run(&["run", "-vv", "--only", "ga4"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("debug:   body: {\"limit\":\"100000\",\"metrics\":[{\"name\":\"activeUsers\"}],\"offset\":\"0\",\"returnPropertyQuota\":true}\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn gcloud_application_default_credentials_come_after_a_gscrape_login() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    let refresh_token = cached_login(&wd)["refresh_token"].clone();
    let adc = serde_json::json!({
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
        "token_uri": wd.google.token_uri(),
    });
    // HOME is the work dir: this is where gcloud keeps them.
    wd.write(
        ".config/gcloud/application_default_credentials.json",
        &adc.to_string(),
    );
    let run = wd.run_without_token(&["auth", "status"]);
    assert!(
        run.stdout
            .starts_with("credential: login of analyst@example.com"),
        "{}",
        run.stdout
    );

    std::fs::remove_file(wd.path().join(CACHE_FILE)).unwrap();
    let run = wd.run_without_token(&["auth", "status"]);
    assert_eq!(
        run.stdout.lines().take(2).collect::<Vec<_>>(),
        [
            format!(
                "credential: authorized_user credentials {} (from gcloud application-default credentials)",
                wd.path().join(".config/gcloud/application_default_credentials.json").display()
            )
            .as_str(),
            "why: no access token, key file or gscrape login; gcloud's application-default credentials exist",
        ]
    );
    assert_eq!(wd.run_without_token(&["run"]).code, 0);
}

#[test]
fn a_token_endpoint_outage_is_retried_for_a_service_account() {
    let wd = Workdir::new();
    write_service_account_key(&wd);
    wd.write("queries/files.toml", DRIVE_QUERY);
    wd.google.configure(|c| c.oauth.unavailable = 2);
    let run = wd.run_without_token(&["run", "--credentials", "sa.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        wd.google.seen_under("/token").len(),
        3,
        "two 503s, then the grant"
    );
    assert_eq!(wd.google.grants().len(), 1);
    assert_eq!(wd.read("output/files.csv").lines().count(), 251);
}

#[test]
fn a_token_endpoint_outage_is_retried_for_a_saved_login() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    let mut cached = cached_login(&wd);
    cached["expires_at"] = serde_json::json!(1);
    wd.write(CACHE_FILE, &cached.to_string());
    let before = wd.google.seen_under("/token").len();
    wd.google.configure(|c| c.oauth.unavailable = before + 2);
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.google.seen_under("/token").len(), before + 3);
    assert_eq!(wd.read("output/files.csv").lines().count(), 251);
}

#[test]
fn a_token_endpoint_that_stays_down_fails_the_run_with_a_clear_message() {
    let wd = Workdir::new();
    write_service_account_key(&wd);
    wd.write("queries/files.toml", DRIVE_QUERY);
    wd.google.configure(|c| c.oauth.unavailable = 1000);
    let run = wd.run_without_token(&["run", "--credentials", "sa.json", "--max-retries", "2"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: cannot get an access token: the token endpoint {} answered HTTP 503: \
             temporarily_unavailable (Try again later.) (gave up after 2 retries)\n",
            wd.google.token_uri()
        )
    );
    assert_eq!(wd.google.seen_under("/token").len(), 3);
    assert!(wd.google.seen_under("/drive/").is_empty());
}

#[test]
fn a_fan_out_acts_as_each_user_its_subject_template_names() {
    let wd = Workdir::with_config(crate::support::Config {
        drive_files: 3,
        directory_users: 4,
        ..crate::support::Config::default()
    });
    write_service_account_key(&wd);
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\n\
         subject = \"admin@example.com\"\noutput = false\ncolumns = [\"id\"]\n\
         [params]\ncustomer = \"my_customer\"\n",
    );
    // Two fan-outs over the same users: their chains for one user share that user's token.
    wd.write(
        "queries/user_files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\nfor_each = \"users\"\n\
         subject = \"{{ users.primaryEmail }}\"\n\
         columns = [{ name = \"user\", value = \"{{ users.primaryEmail }}\" }, \"id\"]\n\
         [params]\nq = \"'{{ users.primaryEmail }}' in owners\"\n",
    );
    wd.write(
        "queries/user_events.toml",
        "api = \"calendar\"\nversion = \"v3\"\nmethod = \"calendar.events.list\"\nfor_each = \"users\"\n\
         subject = \"{{ users.primaryEmail }}\"\ncolumns = [\"id\"]\n\
         [params]\ncalendarId = \"{{ users.primaryEmail }}\"\n",
    );
    let run = wd.run_without_token(&["run", "--credentials", "sa.json"]);
    assert_eq!(run.code, 0, "{run:?}");

    let users: Vec<String> = (0..4).map(|i| format!("user{i}@example.com")).collect();
    let mut subjects: Vec<String> = wd
        .google
        .grants()
        .iter()
        .map(|g| {
            g.claims.as_ref().unwrap()["sub"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    subjects.sort();
    let mut expected = users.clone();
    expected.push("admin@example.com".to_owned());
    expected.sort();
    assert_eq!(subjects, expected, "one grant per subject");

    let subject_of = |seen: &crate::support::fake_google::Seen| {
        let token = seen.authorization.as_deref().unwrap();
        wd.google
            .subject_of(token.trim_start_matches("Bearer "))
            .unwrap()
    };
    let files = wd.google.seen_under("/drive/");
    assert_eq!(files.len(), 4);
    for seen in &files {
        let (_, q) = seen.query().into_iter().find(|(k, _)| k == "q").unwrap();
        assert_eq!(q, format!("'{}' in owners", subject_of(seen)));
    }
    let events = wd.google.seen_under("/calendar/");
    assert_eq!(events.len(), 4);
    for seen in &events {
        let calendar = format!("/calendar/v3/calendars/{}/events", subject_of(seen));
        assert_eq!(seen.path(), calendar.replace('@', "%40"));
    }
    let users_seen = wd.google.seen_under("/admin/");
    assert_eq!(subject_of(&users_seen[0]), "admin@example.com");
    assert!(wd
        .read("output/user_files.csv")
        .contains("user3@example.com,f0002\r\n"));
}

#[test]
fn a_subject_template_needs_a_service_account_and_known_variables() {
    let wd = Workdir::new();
    wd.write(
        "queries/users.toml",
        "api = \"admin\"\nversion = \"directory_v1\"\nmethod = \"directory.users.list\"\n\
         columns = [\"primaryEmail\"]\n[params]\ncustomer = \"my_customer\"\n",
    );
    wd.write(
        "queries/user_files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\nfor_each = \"users\"\n\
         subject = \"{{ users.primaryEmail }}\"\ncolumns = [\"id\"]\n",
    );
    let run = wd.run(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: queries/user_files.toml: subject: acting as a user (domain-wide delegation) needs a \
         service account — a key (--credentials FILE or GOOGLE_APPLICATION_CREDENTIALS), the \
         metadata server's, or an impersonated one (--impersonate-service-account) — but the \
         credential is the access token from GSCRAPE_ACCESS_TOKEN\n"
    );
    assert!(wd.google.seen_under("/admin/").is_empty());

    wd.write(
        "queries/user_files.toml",
        "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\nfor_each = \"users\"\n\
         subject = \"{{ user.primaryEmail }}\"\ncolumns = [\"id\"]\n",
    );
    let run = wd.run(&["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains(
            "error  queries/user_files.toml: subject: \"{{ user.primaryEmail }}\" uses the \
             undefined variable `user`; this query has `users`\n"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn the_sheets_write_scope_is_asked_for_only_for_queries_with_a_sheet() {
    const SHEETS: &str = "https://www.googleapis.com/auth/spreadsheets";
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    assert_eq!(
        cached_login(&wd)["scopes"],
        serde_json::json!([DRIVE_READONLY, "openid", "email"])
    );
    wd.write(
        "queries/to_sheet.toml",
        &format!("{DRIVE_QUERY}[sheet]\nspreadsheet = \"new\"\n"),
    );
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "error: to_sheet: [sheet]: the login of analyst@example.com may not write Google Sheets ({SHEETS}); \
             log in again with this query: gscrape auth login --client-secret FILE "
        )),
        "{}",
        run.stderr
    );
    assert!(wd.google.seen_under("/drive/").is_empty());

    assert_eq!(login(&wd).code, 0);
    assert_eq!(
        cached_login(&wd)["scopes"],
        serde_json::json!([DRIVE_READONLY, SHEETS, "openid", "email"])
    );
    let run = wd.run_without_token(&["run"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// The canonical Workspace audit: users → each user's message ids → each message, acting as
/// that user. The grandchild reads its grandparent (`users`) by name, in `subject` and
/// `[params]`, and its parent's computed column (`ids.owner`).
pub(crate) const AUDIT_USERS: &str = "api = \"admin\"\nversion = \"directory_v1\"\n\
    method = \"directory.users.list\"\nsubject = \"admin@example.com\"\noutput = false\n\
    columns = [\"id\"]\n[params]\ncustomer = \"my_customer\"\n";
const AUDIT_IDS: &str =
    "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.list\"\n\
    for_each = \"users\"\nsubject = \"{{ users.primaryEmail }}\"\noutput = false\n\
    columns = [\"id\", { name = \"owner\", value = \"{{ users.primaryEmail }}\" }]\n\
    [params]\nuserId = \"me\"\n";

fn audit_messages(user_read: &str) -> String {
    format!(
        "api = \"gmail\"\nversion = \"v1\"\nmethod = \"gmail.users.messages.get\"\n\
         for_each = \"ids\"\nsubject = \"{{{{ {user_read} }}}}\"\n\
         columns = [{{ name = \"user\", value = \"{{{{ ids.owner }}}}\" }}, \"id\", \"snippet\"]\n\
         [params]\nuserId = \"{{{{ users.primaryEmail }}}}\"\nid = \"{{{{ ids.id }}}}\"\n\
         format = \"metadata\"\n"
    )
}

#[test]
fn a_grandchild_fetches_each_message_as_the_user_two_levels_up() {
    let wd = Workdir::with_config(crate::support::Config {
        directory_users: 3,
        gmail_messages: 4,
        ..crate::support::Config::default()
    });
    write_service_account_key(&wd);
    wd.write("queries/users.toml", AUDIT_USERS);
    wd.write("queries/ids.toml", AUDIT_IDS);
    wd.write(
        "queries/messages.toml",
        &audit_messages("users.primaryEmail"),
    );
    let validate = wd.run_without_token(&["validate", "--credentials", "sa.json"]);
    assert_eq!(validate.code, 0, "{validate:?}");
    let run = wd.run_without_token(&["run", "--credentials", "sa.json", "--concurrency", "4"]);
    assert_eq!(run.code, 0, "{run:?}");

    let subject_of = |seen: &crate::support::fake_google::Seen| {
        let token = seen.authorization.as_deref().unwrap();
        wd.google
            .subject_of(token.trim_start_matches("Bearer "))
            .unwrap()
    };
    let users: Vec<String> = (0..3).map(|i| format!("user{i}@example.com")).collect();
    let gmail = wd.google.seen_under("/gmail/");
    let lists: Vec<_> = gmail
        .iter()
        .filter(|s| s.path().ends_with("/messages"))
        .collect();
    assert_eq!(lists.len(), 3, "one list per user");
    let mut listed_as: Vec<String> = lists.iter().map(|s| subject_of(s)).collect();
    listed_as.sort();
    assert_eq!(listed_as, users);
    // Each message is fetched once per user, as the user whose mailbox it is in.
    let mut fetched: Vec<(String, String)> = Vec::new();
    for seen in gmail.iter().filter(|s| !s.path().ends_with("/messages")) {
        let rest = seen.path().strip_prefix("/gmail/v1/users/").unwrap();
        let (user, id) = rest.split_once("/messages/").unwrap();
        let user = user.replace("%40", "@");
        assert_eq!(
            subject_of(seen),
            user,
            "{} fetched as another user",
            seen.path()
        );
        fetched.push((user, id.to_owned()));
    }
    fetched.sort();
    let mut expected: Vec<(String, String)> = users
        .iter()
        .flat_map(|u| {
            (0..4).map(move |i| (u.clone(), crate::support::fake_google::gmail_message_id(i)))
        })
        .collect();
    expected.sort();
    assert_eq!(fetched, expected);
    // The rows, in the parents' order, each with its user through `ids`' computed column.
    let csv = wd.read("output/messages.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "user,id,snippet");
    assert_eq!(lines.len(), 1 + 12, "{csv}");
    for (n, line) in lines[1..].iter().enumerate() {
        let (user, id) = (n / 4, n % 4);
        let prefix = format!(
            "user{user}@example.com,{},",
            crate::support::fake_google::gmail_message_id(id)
        );
        assert!(line.starts_with(&prefix), "row {n}: {line}");
    }
}

#[test]
fn validate_refuses_a_misspelled_read_of_a_grandparent() {
    let wd = Workdir::new();
    write_service_account_key(&wd);
    wd.write("queries/users.toml", AUDIT_USERS);
    wd.write("queries/ids.toml", AUDIT_IDS);
    wd.write(
        "queries/messages.toml",
        &audit_messages("users.primaryEmial"),
    );
    let run = wd.run_without_token(&["validate", "--credentials", "sa.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "error  queries/messages.toml: for_each: reads `users.primaryEmial`, but \
             `primaryEmial`: the record has no field `primaryEmial`; did you mean `primaryEmail`?\n"
        ),
        "{}",
        run.stdout
    );
    // A query name that is no query above it.
    wd.write(
        "queries/messages.toml",
        &audit_messages("user.primaryEmail"),
    );
    let run = wd.run_without_token(&["validate", "--credentials", "sa.json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stdout.contains(
            "error  queries/messages.toml: subject: \"{{ user.primaryEmail }}\" uses the \
             undefined variable `user`; this query has `ids`, `users`\n"
        ),
        "{}",
        run.stdout
    );
    assert!(wd.google.seen_under("/admin/").is_empty());
}

#[test]
fn a_credential_file_that_never_ends_is_refused_not_read() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    let run = wd.run_without_token(&["run", "--credentials", "/dev/zero"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "/dev/zero: cannot read it: it is larger than 1024 KiB, which no such file is"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn status_check_does_not_call_a_given_token_ok() {
    let wd = Workdir::new();
    let run = wd.run(&["auth", "status", "--check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.ends_with(
            "check: not done: the token is given as is, so gscrape cannot tell whether Google \
             still takes it (an access token lasts about an hour) until an API call answers; a \
             run fails at once with 401 if it does not\n"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("check: ok"));
}
