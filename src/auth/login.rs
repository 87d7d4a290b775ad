//! `gscrape auth login`: yup-oauth2's installed-app flow, with a delegate that shows the URL on
//! stderr, opens the browser, and receives the loopback redirect itself — so that a click on
//! "Deny" or no answer at all ends the login with a message instead of waiting forever — or,
//! with `--no-browser`, takes the code (or the whole redirected URL) pasted on stdin.
//!
//! The sign-in URL carries a random `state` (RFC 6749 §10.12), which Google sends back with
//! the code: an answer without it did not come from this sign-in (another page posting a code
//! of its own to the listener, to log gscrape in to the wrong account) and is refused.
//!
//! PKCE cannot be added while yup-oauth2 exchanges the code: its exchange
//! (`InstalledFlow::request_token`, private) posts exactly `code`, `client_id`,
//! `client_secret`, `redirect_uri` and `grant_type`, form-encoding the code the delegate
//! returns as one value, so no `code_verifier` can travel with it; it would take gscrape's own
//! `authorization_code` grant instead (upstream yup-oauth2 issue #199).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use yup_oauth2::authenticator_delegate::InstalledFlowDelegate;
use yup_oauth2::storage::{TokenInfo, TokenStorage, TokenStorageError};
use yup_oauth2::{ApplicationSecret, InstalledFlowReturnMethod};

use super::cache::{self, CachedLogin, TokenCache};
use super::fields::{self, Field, Shape};
use super::oauth;
use crate::http::HyperClient;
use crate::redact::{quote, Quoted};

/// Scopes every login adds: they let gscrape name the account (id_token `email`).
pub const IDENTITY_SCOPES: &[&str] = &["openid", "email"];

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{}: {why}", .path.display())]
    BadClientSecret { path: PathBuf, why: String },
    #[error("cannot listen on 127.0.0.1:{port} for the browser's redirect: {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from the browser within {}s; run `gscrape auth login` again (with --no-browser on a machine without a browser)", .0.as_secs())]
    Timeout(Duration),
    /// yup-oauth2's words, or the token endpoint's: quoted.
    #[error("login failed: {0}")]
    Flow(Quoted),
    #[error("Google returned no refresh token; remove gscrape's access at https://myaccount.google.com/permissions and log in again")]
    NoRefreshToken,
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
}

impl LoginError {
    /// What kind of failure this is: a client secret or a port a person must fix, a cache
    /// that cannot be written, or a login that did not complete.
    pub fn kind(&self) -> crate::error::Failure {
        use crate::error::Failure;
        match self {
            LoginError::BadClientSecret { .. } | LoginError::Listen { .. } => Failure::BadInput,
            LoginError::Cache(_) => Failure::LocalIo,
            LoginError::Timeout(_) | LoginError::Flow(_) | LoginError::NoRefreshToken => {
                Failure::Remote
            }
        }
    }
}

/// What `gscrape auth login` was asked to do.
pub struct LoginRequest<'a> {
    pub client_secret: &'a Path,
    pub scopes: Vec<String>,
    pub port: Option<u16>,
    pub no_browser: bool,
    pub timeout: Duration,
    /// For the refresh that checks the new login.
    pub retry: crate::http::retry::RetryPolicy,
}

/// The result of a login.
pub struct LoggedIn {
    pub account: Option<String>,
    /// The scopes granted: those of the consent screen, and (Google adds them, asked with
    /// `include_granted_scopes`) those this account granted the client before.
    pub scopes: Vec<String>,
    /// The scopes asked for and not granted: unticked on the consent screen.
    pub unticked: Vec<String>,
    /// The scopes of the login saved before, asked for again so that a login only grows.
    pub kept: Vec<String>,
    pub path: PathBuf,
}

/// The fields of an OAuth client (yup-oauth2's `ApplicationSecret`).
const CLIENT_SECRET: &[Field] = &[
    fields::required("client_id", Shape::Text),
    fields::required("client_secret", Shape::Text),
    fields::required("token_uri", Shape::Text),
    fields::required("auth_uri", Shape::Text),
    fields::required("redirect_uris", Shape::TextList),
    fields::optional("project_id", Shape::Text),
    fields::optional("client_email", Shape::Text),
    fields::optional("auth_provider_x509_cert_url", Shape::Text),
    fields::optional("client_x509_cert_url", Shape::Text),
];

/// Reads a client secret file (`installed` or `web`), with one-line errors that name the file
/// and the field, never a value.
pub fn read_client_secret(path: &Path) -> Result<ApplicationSecret, LoginError> {
    let bad = |why: String| LoginError::BadClientSecret {
        path: path.to_owned(),
        why,
    };
    let text = crate::util::read_small(path, crate::util::MAX_CREDENTIAL_FILE)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    if value.get("type").and_then(|t| t.as_str()) == Some("service_account") {
        return Err(bad(
            "this is a service-account key, which needs no login: run with --credentials FILE"
                .to_owned(),
        ));
    }
    if value.get("installed").is_none() && value.get("web").is_none() {
        return Err(bad(
            "not an OAuth client secret: download the JSON of a \"Desktop app\" (or \"Web application\") \
             OAuth client from the Google Cloud console"
                .to_owned(),
        ));
    }
    // yup-oauth2 reads the `web` client when there is one, else `installed`.
    let (name, client) = match value.get("web") {
        Some(web) => ("web.", web),
        None => ("installed.", &value["installed"]),
    };
    let incomplete = |why: String| bad(format!("incomplete client secret ({why})"));
    fields::check(client, name, CLIENT_SECRET).map_err(incomplete)?;
    let secret = yup_oauth2::parse_application_secret(&text)
        .map_err(|_| incomplete("a field of an unexpected shape".to_owned()))?;
    super::credentials::secrets_only_to_safe("token_uri", &secret.token_uri).map_err(bad)?;
    crate::redact::register(&secret.client_secret);
    Ok(secret)
}

/// Runs the browser login and caches the result.
pub async fn login(
    request: LoginRequest<'_>,
    cache: &TokenCache,
    client: HyperClient,
) -> Result<LoggedIn, LoginError> {
    let secret = read_client_secret(request.client_secret)?;
    // The newest login of this client: its scopes are asked for again, so that a login for a
    // query's new scope does not lose those of the others.
    let kept: Vec<String> = (cache.all().into_iter())
        .filter_map(|(_, login)| login.ok())
        .filter(|login| login.client_id == secret.client_id)
        .max_by_key(|login| login.logged_in_at)
        .map(|login| login.scopes)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !request.scopes.contains(s) && !IDENTITY_SCOPES.contains(&s.as_str()))
        .collect();
    let state = random_state()?;
    let (delegate, redirect) = if request.no_browser {
        let port = request.port.unwrap_or(1);
        (
            LoginDelegate::paste(port, state),
            format!("http://localhost:{port}"),
        )
    } else {
        let port = request.port.unwrap_or(0);
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|source| LoginError::Listen { port, source })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        let redirect = format!("http://localhost:{port}");
        (
            LoginDelegate::browser(listener, redirect.clone(), state),
            redirect,
        )
    };
    tracing::info!("redirect URI {redirect}");
    let captured = Capture::default();
    let tokens = captured.0.clone();
    let yup_client =
        crate::http::build_login_client().map_err(|e| LoginError::Flow(e.to_string().into()))?;
    let auth = yup_oauth2::InstalledFlowAuthenticator::with_client(
        secret.clone(),
        InstalledFlowReturnMethod::Interactive,
        yup_oauth2::CustomHyperClientBuilder::from(yup_client),
    )
    .flow_delegate(Box::new(delegate))
    .force_account_selection(true)
    .with_storage(Box::new(captured))
    .build()
    .await
    .map_err(|e| LoginError::Flow(e.to_string().into()))?;

    let mut scopes = request.scopes.clone();
    scopes.extend(kept.iter().cloned());
    scopes.extend(IDENTITY_SCOPES.iter().map(|s| s.to_string()));
    match tokio::time::timeout(request.timeout, auth.token(&scopes)).await {
        Err(_) => return Err(LoginError::Timeout(request.timeout)),
        Ok(Err(yup_oauth2::Error::UserError(message))) => {
            return Err(LoginError::Flow(message.into()))
        }
        Ok(Err(err)) => return Err(LoginError::Flow(err.to_string().into())),
        Ok(Ok(_)) => {}
    }
    let info = tokens
        .lock()
        .ok()
        .and_then(|mut t| t.take())
        .ok_or_else(|| LoginError::Flow("the token endpoint sent no token".into()))?;
    let refresh_token = info.refresh_token.ok_or(LoginError::NoRefreshToken)?;
    crate::redact::register(&refresh_token);
    if let Some(access_token) = &info.access_token {
        crate::redact::register(access_token);
    }
    let account = info.id_token.as_deref().and_then(oauth::id_token_email);

    // One refresh tells which scopes were granted (the user may have unticked some), and
    // checks at once that the refresh token works.
    let grant = oauth::refresh(
        &client,
        &secret.token_uri,
        &secret.client_id,
        &secret.client_secret,
        &refresh_token,
        Duration::from_secs(60),
        &request.retry,
    )
    .await
    .map_err(|e| LoginError::Flow(e.to_string().into()))?;
    let granted = grant.scopes.clone().unwrap_or(scopes.clone());
    // Granular consent: a person may untick scopes. (Google names `email` and `openid` by
    // their URLs in a grant at times.)
    let unticked = scopes
        .iter()
        .filter(|asked| !granted.iter().any(|g| same_scope(g, asked)))
        .cloned()
        .collect();
    let login = CachedLogin {
        client_id: secret.client_id.clone(),
        client_secret: secret.client_secret.clone(),
        token_uri: secret.token_uri.clone(),
        account: account.clone(),
        scopes: granted.clone(),
        refresh_token: grant.refresh_token.unwrap_or(refresh_token),
        access_token: Some(grant.access_token),
        expires_at: grant.expires_at.map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        }),
        logged_in_at: cache::unix_now(),
    };
    let path = cache.path_for(&secret.client_id, account.as_deref());
    cache::save(&path, &login)?;
    Ok(LoggedIn {
        account,
        scopes: granted,
        unticked,
        kept,
        path,
    })
}

/// True when two scopes are the same: `email` is also
/// `https://www.googleapis.com/auth/userinfo.email` in a grant.
fn same_scope(a: &str, b: &str) -> bool {
    let long = |s: &str| match s {
        "email" => "https://www.googleapis.com/auth/userinfo.email".to_owned(),
        "profile" => "https://www.googleapis.com/auth/userinfo.profile".to_owned(),
        other => other.to_owned(),
    };
    long(a) == long(b)
}

/// Keeps the token yup-oauth2 obtained, so the refresh token can be cached our way.
#[derive(Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Option<TokenInfo>>>);

#[async_trait::async_trait]
impl TokenStorage for Capture {
    async fn set(&self, _scopes: &[&str], token: TokenInfo) -> Result<(), TokenStorageError> {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(token);
        }
        Ok(())
    }

    async fn get(&self, _scopes: &[&str]) -> Option<TokenInfo> {
        None
    }
}

/// How the authorization code comes back.
enum Answer {
    /// The browser is redirected to our listener.
    Browser(std::sync::Mutex<Option<std::net::TcpListener>>),
    /// The person pastes it.
    Paste,
}

struct LoginDelegate {
    redirect: String,
    answer: Answer,
    /// The `state` of this sign-in, which its answer must carry back.
    state: String,
}

impl LoginDelegate {
    fn browser(listener: std::net::TcpListener, redirect: String, state: String) -> Self {
        LoginDelegate {
            redirect,
            answer: Answer::Browser(std::sync::Mutex::new(Some(listener))),
            state,
        }
    }

    fn paste(port: u16, state: String) -> Self {
        LoginDelegate {
            redirect: format!("http://localhost:{port}"),
            answer: Answer::Paste,
            state,
        }
    }
}

/// 128 random bits, base64url: the `state` of one sign-in (ring's system generator, which
/// rustls already uses).
fn random_state() -> Result<String, LoginError> {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| {
            LoginError::Flow("the system has no random numbers for the sign-in's state".into())
        })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl InstalledFlowDelegate for LoginDelegate {
    fn redirect_uri(&self) -> Option<&str> {
        Some(&self.redirect)
    }

    fn present_user_url<'a>(
        &'a self,
        url: &'a str,
        _need_code: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            // yup-oauth2 builds the URL (always with a query) and lets the delegate show it:
            // the state is added here, and checked on the answer below; and
            // `include_granted_scopes`, so that the new grant keeps what was granted before.
            let url = &format!("{url}&include_granted_scopes=true&state={}", self.state);
            crate::say!("Sign in to Google and allow access:\n\n  {url}\n");
            let code = match &self.answer {
                Answer::Browser(listener) => {
                    let listener = listener
                        .lock()
                        .ok()
                        .and_then(|mut l| l.take())
                        .ok_or("the login was already answered")?;
                    if webbrowser::open(url).is_err() {
                        crate::say!(
                            "(No browser could be opened: open the address above yourself.)"
                        );
                    }
                    crate::say!("Waiting for the browser to return to {} ...", self.redirect);
                    wait_for_redirect(listener, &self.state).await
                }
                Answer::Paste => {
                    crate::say!(
                        "Open it in any browser. After you allow access, the browser goes to {} — a \
                         page that does not load. Copy that page's whole address (or its code) and \
                         paste it here:",
                        self.redirect
                    );
                    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
                    loop {
                        let mut line = String::new();
                        stdin
                            .read_line(&mut line)
                            .await
                            .map_err(|e| format!("cannot read the code: {e}"))?;
                        if answers(line.trim(), &self.state) {
                            break code_from_answer(line.trim());
                        }
                        crate::say!(
                            "That address is not from this sign-in (its state= does not match): \
                             paste the address this sign-in ended on:"
                        );
                    }
                }
            }?;
            // The code is a secret too, until the token endpoint has taken it.
            crate::redact::register(&code);
            Ok(code)
        })
    }
}

/// Serves the loopback redirect: answers the browser and returns the code, or the error, of
/// the first answer that carries `state`; others get a page saying so, and it waits on.
async fn wait_for_redirect(listener: std::net::TcpListener, state: &str) -> Result<String, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let listener = TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head);
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let has = |key: &str| query_value(query, key).is_some();
        if !has("code") && !has("error") {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        if !answers(target, state) {
            let page = "This answer is not from the sign-in gscrape started (its state does not \
                        match), so gscrape ignored it and is still waiting. You can close this tab.";
            let response = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            crate::say!(
                "Ignored an answer to the loopback listener that is not from this sign-in (its \
                 state= does not match); still waiting for the browser ..."
            );
            continue;
        }
        let result = code_from_answer(target);
        let page = match &result {
            Ok(_) => "gscrape is signed in. You can close this tab.",
            Err(_) => "gscrape was not given access. You can close this tab.",
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        return result;
    }
}

/// Whether `answer` — a redirected URL or target, or a pasted code — may be this sign-in's:
/// one with a query must carry its `state`. A bare code carries none and cannot be checked; it
/// is taken (a person pasted it from the sign-in they saw).
fn answers(answer: &str, state: &str) -> bool {
    match answer.split_once('?') {
        Some((_, query)) => query_value(query, "state").as_deref() == Some(state),
        None => true,
    }
}

/// The authorization code from a pasted code, a redirected URL, or a redirect target.
fn code_from_answer(answer: &str) -> Result<String, String> {
    let query = answer.split_once('?').map(|(_, q)| q);
    match query {
        Some(query) => {
            if let Some(error) = query_value(query, "error") {
                return Err(if error == "access_denied" {
                    "access was denied in the browser (error=access_denied); run `gscrape auth login` again and choose Allow".to_owned()
                } else {
                    format!("Google answered error={}", quote(&error))
                });
            }
            query_value(query, "code").ok_or_else(|| "the address has no code=".to_owned())
        }
        None if answer.is_empty() => Err("no code was pasted".to_owned()),
        None => Ok(answer.to_owned()),
    }
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_urls_or_as_pasted() {
        assert_eq!(code_from_answer("4/0Ab%2Fcd"), Ok("4/0Ab%2Fcd".into()));
        assert_eq!(
            code_from_answer("http://localhost:1/?state=x&code=4/0Ab%2Fcd&scope=email"),
            Ok("4/0Ab/cd".into())
        );
        assert!(code_from_answer("http://localhost:1/?error=access_denied")
            .unwrap_err()
            .contains("denied"));
        assert!(code_from_answer("").is_err());
    }

    #[test]
    fn an_answer_with_a_query_must_carry_the_state() {
        assert!(answers("http://localhost:1/?state=s1&code=c", "s1"));
        assert!(answers("/?code=c&state=s1", "s1"));
        assert!(!answers("/?code=c&state=s2", "s1"));
        assert!(!answers("/?code=c", "s1"));
        assert!(!answers("/?error=access_denied", "s1"));
        assert!(answers("4/0Ab-code", "s1"), "a bare code cannot be checked");
    }

    #[test]
    fn states_are_random() {
        let (a, b) = (random_state().unwrap(), random_state().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 22, "128 bits, base64url: {a}");
    }
}
