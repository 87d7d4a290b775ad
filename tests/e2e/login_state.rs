//! The browser login's `state`: random per sign-in, sent on the sign-in URL, and required on
//! the answer — a redirect to the loopback listener without it (a page of someone else's
//! posting their own code) is refused with a page saying so, and the login waits on for the
//! real one; in `--no-browser` mode a pasted address with another state is asked again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use crate::auth::{cached_login, end_login, http_get, login, start_login, write_client_secret};
use crate::support::fake_oauth::LOGIN_EMAIL;
use crate::support::Workdir;

const DRIVE_QUERY: &str = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n\
    columns = [\"id\"]\n[params]\npageSize = 25\n";
const REFUSED: &str = "Ignored an answer to the loopback listener that is not from this sign-in \
    (its state= does not match); still waiting for the browser ...\n";

/// A GET to loopback: the status and the body.
fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, target) = rest.split_once('/').expect("a path");
    let port = host.rsplit_once(':').map(|(_, p)| p).unwrap();
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(
        stream,
        "GET /{target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The `state` of the sign-in URL the fake was sent.
fn states(wd: &Workdir) -> Vec<Option<String>> {
    wd.google
        .seen_under("/o/oauth2/auth")
        .iter()
        .map(|seen| seen.param("state"))
        .collect()
}

#[test]
fn a_redirect_without_this_logins_state_is_refused_and_the_login_waits_for_the_real_one() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    write_client_secret(&wd, "installed");
    let (child, url, stderr, printed) = start_login(&wd, &[], Stdio::null());
    let state = url.split("&state=").nth(1).expect("the URL has a state");
    let (status, location) = http_get(&url);
    assert_eq!(status, 302);
    let location = location.unwrap();
    // (The fake percent-encodes what it echoes, `_` and `-` included, as a server may.)
    let echoed = location.rsplit_once("&state=").map(|(_, s)| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .unwrap()
            .into_owned()
    });
    assert_eq!(echoed.as_deref(), Some(state), "{location}");
    let listener = location.split("/?").next().unwrap();
    for forged in [
        format!("{listener}/?code=4/forged&state=not-{state}"),
        format!("{listener}/?code=4/forged"),
        format!("{listener}/?error=access_denied"),
    ] {
        let (status, page) = get(&forged);
        assert_eq!(status, 400, "{forged}");
        assert_eq!(
            page,
            "This answer is not from the sign-in gscrape started (its state does not match), \
             so gscrape ignored it and is still waiting. You can close this tab."
        );
    }
    let (status, page) = get(&location);
    assert_eq!(
        (status, page.as_str()),
        (200, "gscrape is signed in. You can close this tab.")
    );
    let run = end_login(child, stderr, printed);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr.matches(REFUSED).count(), 3, "{}", run.stderr);
    assert_eq!(cached_login(&wd)["account"], LOGIN_EMAIL);
    let grants: Vec<String> = wd
        .google
        .grants()
        .into_iter()
        .map(|g| g.grant_type)
        .collect();
    assert_eq!(
        grants,
        ["authorization_code", "refresh_token"],
        "only the real code was exchanged"
    );
}

#[test]
fn each_login_sends_a_state_of_its_own() {
    let wd = Workdir::new();
    wd.write("queries/files.toml", DRIVE_QUERY);
    assert_eq!(login(&wd).code, 0);
    assert_eq!(login(&wd).code, 0);
    let states = states(&wd);
    assert_eq!(states.len(), 2);
    let (first, second) = (states[0].clone().unwrap(), states[1].clone().unwrap());
    assert_ne!(first, second);
    for state in [first, second] {
        assert_eq!(state.len(), 22, "128 random bits, base64url: {state}");
        assert!(state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}

#[test]
fn no_browser_asks_again_for_a_pasted_address_of_another_sign_in() {
    let wd = Workdir::new();
    write_client_secret(&wd, "installed");
    let (mut child, url, stderr, printed) = start_login(
        &wd,
        &["--no-browser", "--scope", "drive.readonly"],
        Stdio::piped(),
    );
    let (_, location) = http_get(&url);
    let location = location.unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        "http://localhost:1/?code=4/forged&scope=email&state=another"
    )
    .unwrap();
    writeln!(stdin, "{location}").unwrap();
    drop(stdin);
    let run = end_login(child, stderr, printed);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr
            .matches(
                "That address is not from this sign-in (its state= does not match): paste the \
                 address this sign-in ended on:\n"
            )
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(cached_login(&wd)["account"], LOGIN_EMAIL);
}
