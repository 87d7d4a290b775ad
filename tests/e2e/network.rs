//! Networks: gzip on every request gscrape sends (and a gzip bomb refused), https with a private
//! CA named by SSL_CERT_FILE (HTTP/2 by ALPN), and proxies from the environment — for
//! Discovery, the refresh-token grant and the API pages alike.

use std::process::Stdio;
use std::time::Instant;

use base64::Engine;

use crate::support::fake_google::{drive_file, drive_file_name};
use crate::support::fake_oauth::{CLIENT_ID, CLIENT_SECRET};
use crate::support::proxy::{Proxy, PROXY_PASSWORD};
use crate::support::{csv_line, finish, Config, Run, Workdir};

/// Columns that Drive sends by default, so that the CSV does not depend on `fields`.
const QUERY: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\", \"name\", \"mimeType\"]\n[params]\npageSize = 100\n";

const USER_AGENT: &str = concat!("gscrape/", env!("CARGO_PKG_VERSION"), " (gzip)");

/// The CSV of `QUERY` for the fake's 250 files.
fn expected_csv() -> String {
    let mut csv = csv_line(&["id", "name", "mimeType"]);
    for i in 0..250 {
        let file = drive_file(i);
        csv.push_str(&csv_line(&[
            &format!("f{i:04}"),
            &drive_file_name(i),
            file["mimeType"].as_str().unwrap(),
        ]));
    }
    csv
}

/// An `authorized_user` file the fake accepts: each run makes a refresh-token grant, sent by
/// gscrape itself (not by yup-oauth2).
fn write_user_credentials(wd: &Workdir) {
    let refresh = wd
        .google
        .seed_refresh_token("https://www.googleapis.com/auth/drive.readonly");
    let user = serde_json::json!({
        "type": "authorized_user",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh,
        "token_uri": wd.google.token_uri(),
    });
    wd.write("user.json", &user.to_string());
}

/// `gscrape ARGS run --credentials user.json` with `env` added.
fn run_as_user(wd: &Workdir, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = args.to_vec();
    all.extend(["run", "--credentials", "user.json"]);
    let mut command = wd.command(&all);
    command.env_remove("GSCRAPE_ACCESS_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    finish(command.stdin(Stdio::null()).output().unwrap())
}

/// The fake saw one Discovery fetch, one refresh-token grant and three pages.
fn assert_requests_of_one_run(wd: &Workdir) {
    let seen = wd.google.seen();
    let mut paths: Vec<&str> = seen.iter().map(|s| s.path()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/discovery/v1/apis/drive/v3/rest",
            "/drive/v3/files",
            "/drive/v3/files",
            "/drive/v3/files",
            "/token",
        ]
    );
    let grants = wd.google.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].grant_type, "refresh_token");
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[test]
fn every_request_asks_for_gzip_and_the_csv_is_unchanged() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    write_user_credentials(&wd);
    let run = run_as_user(&wd, &[], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), expected_csv());
    assert_requests_of_one_run(&wd);
    for request in wd.google.seen() {
        assert_eq!(
            request.accept_encoding.as_deref(),
            Some("gzip"),
            "{}",
            request.target
        );
        assert_eq!(
            request.user_agent.as_deref(),
            Some(USER_AGENT),
            "{}",
            request.target
        );
    }
}

#[test]
fn a_gzip_bomb_fails_the_query_and_keeps_the_previous_file() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    assert_eq!(wd.run(&["run"]).code, 0);
    let before = wd.read("output/files.csv");
    let pages_before = wd.google.seen_under("/drive/v3/files").len();

    wd.google.configure(|c| c.gzip_bomb = true);
    let started = Instant::now();
    let run = wd.run(&["run"]);
    eprintln!("the bomb was refused in {:?}", started.elapsed());
    assert_eq!(run.code, 1, "{run:?}");
    let port = wd.google.addr.port();
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].starts_with(&format!(
            "error: files: the response of http://127.0.0.1:{port}/drive/v3/files?pageSize=100&"
        )) && lines[0].ends_with(
            " is larger than 256 MiB once decompressed: stopped reading it so as not to run out \
             of memory (ask for smaller pages, or check what answers at that address) \
             (output/files.csv left unchanged)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        wd.google.seen_under("/drive/v3/files").len(),
        pages_before + 1,
        "not retried: the same request gets the same bomb"
    );
    assert_eq!(wd.read("output/files.csv"), before);
    assert_eq!(wd.list("output"), ["files.csv"]);
}

#[test]
fn https_with_the_private_ca_in_ssl_cert_file_gives_the_same_csv_over_http2() {
    let wd = Workdir::with_config(Config {
        tls: true,
        ..Config::default()
    });
    assert!(wd.google.root_url().starts_with("https://127.0.0.1:"));
    wd.write("queries/files.toml", QUERY);
    write_user_credentials(&wd);
    let ca = wd.write("ca.pem", wd.google.ca_pem());
    let run = run_as_user(&wd, &[], &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), expected_csv());
    assert_requests_of_one_run(&wd);
    for request in wd.google.seen() {
        assert_eq!(
            request.version,
            hyper::Version::HTTP_2,
            "{}",
            request.target
        );
        assert_eq!(request.accept_encoding.as_deref(), Some("gzip"));
    }
}

#[test]
fn an_unknown_certificate_authority_is_explained_with_ssl_cert_file() {
    let wd = Workdir::with_config(Config {
        tls: true,
        ..Config::default()
    });
    wd.write("queries/files.toml", QUERY);
    let run = wd.run(&["run"]);
    // Exit 2, as for any Discovery document that cannot be fetched: nothing ran.
    assert_eq!(run.code, 2, "{run:?}");
    let port = wd.google.addr.port();
    assert_eq!(
        run.stderr,
        format!(
            "error: queries/files.toml: api: cannot fetch the Discovery document drive:v3: \
             cannot connect to https://127.0.0.1:{port}/discovery/v1/apis/drive/v3/rest: the \
             certificate of 127.0.0.1 is signed by an unknown authority (a private CA or a \
             TLS-inspecting proxy?): point SSL_CERT_FILE at its CA certificate (PEM)\n"
        )
    );
    assert!(wd.google.seen().is_empty());
    assert!(!wd.exists("output/files.csv"));

    // A misspelt SSL_CERT_FILE is named before the same error.
    let mut command = wd.command(&["run"]);
    command.env("SSL_CERT_FILE", wd.path().join("no-such-ca.pem"));
    let again = finish(command.output().unwrap());
    assert_eq!(again.code, 2, "{again:?}");
    let first = again.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("warning: CA certificates not loaded: ")
            && first.contains("no-such-ca.pem")
            && first.ends_with(" (check SSL_CERT_FILE / SSL_CERT_DIR)"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.ends_with(&run.stderr), "{}", again.stderr);
}

#[test]
fn discovery_token_and_api_requests_go_through_the_proxy_with_its_credentials() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    write_user_credentials(&wd);
    let proxy = Proxy::start();
    let url = proxy.url_with("analyst", PROXY_PASSWORD);
    // Debug logging too: the password must not show up in any of it.
    let run = run_as_user(
        &wd,
        &["-vv"],
        &[("HTTP_PROXY", &url), ("https_proxy", &url)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), expected_csv());
    assert_requests_of_one_run(&wd);

    // Every request the fake saw came through the proxy, in absolute form.
    let root = wd.google.root_url();
    let mut carried: Vec<String> = proxy.carried().iter().map(|c| c.target.clone()).collect();
    let mut seen: Vec<String> = wd
        .google
        .seen()
        .iter()
        .map(|s| format!("{}{}", root.trim_end_matches('/'), s.target))
        .collect();
    carried.sort();
    seen.sort();
    assert_eq!(carried, seen);
    for request in proxy.carried() {
        assert_ne!(request.method, "CONNECT");
        assert_eq!(
            request.proxy_authorization,
            Some(basic("analyst", PROXY_PASSWORD)),
            "{}",
            request.target
        );
    }
    for request in wd.google.seen() {
        assert_eq!(request.accept_encoding.as_deref(), Some("gzip"));
    }
}

#[test]
fn no_proxy_naming_the_host_bypasses_the_proxy() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    write_user_credentials(&wd);
    let proxy = Proxy::start();
    let url = proxy.url_with("analyst", PROXY_PASSWORD);
    let run = run_as_user(
        &wd,
        &[],
        &[
            ("HTTP_PROXY", &url),
            ("HTTPS_PROXY", &url),
            ("NO_PROXY", "example.com, 127.0.0.1"),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), expected_csv());
    assert_requests_of_one_run(&wd);
    assert_eq!(proxy.carried(), []);
}

#[test]
fn https_goes_through_a_connect_tunnel_of_the_proxy() {
    let wd = Workdir::with_config(Config {
        tls: true,
        ..Config::default()
    });
    wd.write("queries/files.toml", QUERY);
    write_user_credentials(&wd);
    let ca = wd.write("ca.pem", wd.google.ca_pem());
    let proxy = Proxy::start();
    let url = proxy.url_with("analyst", PROXY_PASSWORD);
    let run = run_as_user(
        &wd,
        &["-vv"],
        &[
            ("HTTPS_PROXY", &url),
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), expected_csv());
    assert_requests_of_one_run(&wd);
    let carried = proxy.carried();
    assert!(!carried.is_empty());
    for request in carried {
        assert_eq!(request.method, "CONNECT");
        assert_eq!(
            request.target,
            format!("127.0.0.1:{}", wd.google.addr.port())
        );
        assert_eq!(
            request.proxy_authorization,
            Some(basic("analyst", PROXY_PASSWORD))
        );
    }
    for request in wd.google.seen() {
        assert_eq!(
            request.version,
            hyper::Version::HTTP_2,
            "TLS end to end, ALPN included"
        );
    }
}

#[test]
fn an_unreachable_proxy_is_named_without_its_password() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://analyst:{PROXY_PASSWORD}@127.0.0.1:{port}");
    let run = {
        let mut command = wd.command(&["run"]);
        command.env("ALL_PROXY", &url);
        finish(command.output().unwrap())
    };
    assert_eq!(run.code, 2, "{run:?}");
    let fake = wd.google.addr.port();
    assert_eq!(
        run.stderr,
        format!(
            "error: queries/files.toml: api: cannot fetch the Discovery document drive:v3: \
             cannot connect to http://127.0.0.1:{fake}/discovery/v1/apis/drive/v3/rest: client \
             error (Connect): through the proxy http://127.0.0.1:{port}/: tcp connect error: \
             Connection refused (os error 111) (gave up after 5 retries)\n"
        )
    );
    assert!(wd.google.seen().is_empty());
}

#[test]
fn service_account_grants_go_through_the_proxy_too() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "k1",
        "private_key": include_str!("../fixtures/auth/sa-private-key.pem"),
        "client_email": crate::support::fake_oauth::SA_EMAIL,
        "client_id": "1234",
        "token_uri": wd.google.token_uri(),
    });
    let path = wd.write("sa.json", &key.to_string());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let proxy = Proxy::start();
    let url = proxy.url_with("analyst", PROXY_PASSWORD);
    let mut command = wd.command(&["run", "--credentials", "sa.json"]);
    command
        .env_remove("GSCRAPE_ACCESS_TOKEN")
        .env("HTTP_PROXY", &url);
    let run = finish(command.output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(wd.read("output/files.csv"), expected_csv());
    let grants = wd.google.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0].grant_type,
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    // The JWT grant goes through `send` like every request gscrape makes: through the proxy,
    // asking for gzip.
    let token = wd.google.seen_under("/token");
    assert_eq!(token.len(), 1);
    assert_eq!(token[0].accept_encoding.as_deref(), Some("gzip"));
    let carried: Vec<String> = proxy.carried().into_iter().map(|c| c.target).collect();
    assert!(carried.contains(&wd.google.token_uri()), "{carried:?}");
    assert_eq!(carried.len(), wd.google.seen().len(), "{carried:?}");
}

#[test]
fn a_proxy_gscrape_cannot_use_is_refused_before_any_request() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", QUERY);
    let mut command = wd.command(&["run"]);
    command.env(
        "all_proxy",
        format!("socks5://analyst:{PROXY_PASSWORD}@127.0.0.1:1080"),
    );
    let run = finish(command.output().unwrap());
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: the proxy all_proxy=socks5://127.0.0.1:1080 is not supported: only http:// \
         proxies are (set HTTPS_PROXY/HTTP_PROXY/ALL_PROXY to http://HOST:PORT, or name the \
         destination in NO_PROXY)\n"
    );
    assert!(wd.google.seen().is_empty());
}

#[test]
fn no_secret_goes_in_clear_to_a_proxy_on_another_host() {
    // The API is plain http on loopback, but a proxy elsewhere would carry the token in clear.
    let wd = Workdir::new();
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/discovery/drive.v3.json")).unwrap();
    doc["rootUrl"] = serde_json::json!(wd.google.root_url());
    wd.write("queries/drive.json", &doc.to_string());
    wd.write(
        "queries/files.toml",
        &QUERY.replace("[params]", "discovery = \"drive.json\"\n[params]"),
    );
    let mut command = wd.command(&["run"]);
    command.env("HTTP_PROXY", "http://192.0.2.1:3128");
    let run = finish(command.output().unwrap());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.starts_with(
            "error: files: refusing to send a bearer token over plain http to http://127.0.0.1:"
        ),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("not through a proxy on another host (name them in NO_PROXY)"));
}
