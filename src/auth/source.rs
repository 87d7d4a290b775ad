//! What every credential is: a [`TokenSource`] — a given token, a key, a login, the metadata
//! server, an impersonation, an STS exchange — that also says what it is, why it was chosen
//! and which account it acts as. The [`super::Authorizer`] around one keeps what every
//! credential shares: the token cache, refresh before expiry, one refresh for all waiters, a
//! retry after a 401. A link that needs a token of another credential (its *source*) holds an
//! `Authorizer` of its own for it, so each link refreshes by itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::http::retry::{send_retrying, RetryPolicy};
use crate::http::{GoogleError, HyperClient, Response};
use crate::redact::Quoted;

use super::AuthError;

/// What a link needs to speak HTTP: the run's client, timeout and retry policy (token
/// requests are retried like every other request).
#[derive(Clone)]
pub struct Http {
    pub client: HyperClient,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Http {
    /// Sends `request` with retries: the response, whatever its status, or a [`ChainError`]
    /// naming `link` when no response came.
    pub async fn send(
        &self,
        link: &str,
        request: http::Request<String>,
    ) -> Result<(Response, u32), ChainError> {
        let url = crate::http::redact_url(request.uri());
        let sent = send_retrying(&self.client, request, self.timeout, &self.retry).await;
        match sent.result {
            Ok(response) => Ok((response, sent.retries)),
            Err(err) => Err(ChainError::new(
                link,
                format!(
                    "could not be reached at {url}: {err}{}",
                    gave_up(sent.retries)
                ),
                "check the network, or the address it was given",
            )),
        }
    }
}

/// A fresh access token.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    pub access_token: String,
    pub expires_at: Option<SystemTime>,
    /// A new refresh token, when the server rotated it.
    pub refresh_token: Option<String>,
    /// Granted scopes, when the server says.
    pub scopes: Option<Vec<String>>,
    pub id_token: Option<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// A token alone, as a credential holds it.
    pub fn of(access_token: String, expires_at: Option<SystemTime>) -> Self {
        Grant {
            access_token,
            expires_at,
            refresh_token: None,
            scopes: None,
            id_token: None,
        }
    }
}

/// The account and scopes of a login.
pub struct Granted<'a> {
    pub account: Option<&'a str>,
    pub scopes: &'a [String],
}

/// How a credential's requests are authorized.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sends<'a> {
    /// `Authorization: Bearer` with the tokens it fetches; `refreshable` false for a token
    /// given as is (a 401 then ends the request).
    Token { refreshable: bool },
    /// No token: `key=`.
    Key(&'a str),
    /// Nothing: public methods only.
    Nothing,
}

/// A credential, as a run and `gscrape auth status` use it.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    /// A new access token for `scopes` (credentials whose tokens carry fixed scopes ignore
    /// them). Its secrets are registered with the redactor before it is returned. A link's
    /// failure is a [`ChainError`], which `?` makes an [`AuthError`].
    async fn fetch(&self, http: &Http, scopes: &[String]) -> Result<Grant, AuthError>;

    /// How requests carry it.
    fn sends(&self) -> Sends<'_> {
        Sends::Token { refreshable: true }
    }

    /// The token it starts with (a given one, a cached login's), before any fetch.
    fn initial(&self) -> Option<Grant> {
        None
    }

    /// How it acts as a Workspace user with its own key (domain-wide delegation); keyless
    /// service accounts ([`Self::service_account`]) are delegated through IAM instead.
    fn delegator(&self) -> Option<Arc<dyn Delegator>> {
        None
    }

    /// Who calls IAM's `signJwt` when this keyless service account acts as a user: itself
    /// (`None`; it then needs the Token Creator role on itself), or, for an impersonated
    /// account, the credential that impersonates it, as google-auth does.
    fn signs_jwt_as(&self) -> Option<Arc<dyn TokenSource>> {
        None
    }

    /// The Workspace user it acts as; `None`: its own account.
    fn acting_as(&self) -> Option<&str> {
        None
    }

    /// The service account the credential acts as, when IAM Credentials can sign a
    /// delegation JWT for it with this credential's own token (keyless domain-wide
    /// delegation): its email.
    fn service_account(&self) -> Option<String> {
        None
    }

    /// The project billed for its API calls (`x-goog-user-project`), when its file names one.
    fn quota_project(&self) -> Option<String> {
        None
    }

    /// The scopes a user granted once and for all (a cached login): a run checks them first.
    fn granted(&self) -> Option<Granted<'_>> {
        None
    }

    /// One line for `auth status` and messages: what it is, where it came from. No secret.
    fn describe(&self) -> String;

    /// `auth status`'s `why:`: why the resolution order chose it.
    fn why(&self) -> String {
        "it is the first credential found in the order".to_owned()
    }

    /// `auth status`'s lines after `why:` (the account it acts as — as `subject`, when
    /// delegating — its scopes, its token), each ending in a newline.
    fn status(&self, _subject: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(account) = self.service_account() {
            out += &format!("account: {}\n", crate::redact::quote(&account));
        }
        out + SCOPES_PER_RUN
    }
}

/// Makes the token source of a credential acting as a Workspace user.
pub trait Delegator: Send + Sync {
    fn acting_as(&self, subject: &str) -> Arc<dyn TokenSource>;
}

/// `auth status`'s account line of a user credential.
pub fn account_line(name: Option<&str>) -> String {
    format!(
        "account: {}\n",
        crate::redact::quote(name.unwrap_or("unknown"))
    )
}

/// `auth status`'s `why:` of a key file named by `origin`.
pub fn why_key_file(origin: &str) -> String {
    match origin {
        GCLOUD_ADC => "no access token, key file or gscrape login; gcloud's application-default credentials exist".to_owned(),
        _ => format!("no access token is given, and {origin} names a key file"),
    }
}

/// The origin of gcloud's application-default credentials file.
pub const GCLOUD_ADC: &str = "gcloud application-default credentials";

/// `auth status`'s scopes line of a credential that asks for scopes per run.
pub const SCOPES_PER_RUN: &str =
    "scopes: asked per run: the least-privilege scopes of its queries\n";

impl From<ChainError> for AuthError {
    fn from(err: ChainError) -> Self {
        AuthError::Chain(err)
    }
}

/// A link of a credential that failed: one line naming the link (metadata server, STS,
/// generateAccessToken, signJwt, token endpoint, a subject-token source), what it answered
/// (its HTTP status and Google's reason), and what to grant or set.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{link} {what}; {hint}")]
pub struct ChainError {
    pub link: String,
    pub what: String,
    pub hint: String,
    /// True when trying again later may help (no answer, 5xx, 429): the run's failure is
    /// Google's then, not the user's.
    pub transient: bool,
}

impl ChainError {
    pub fn new(link: &str, what: impl Into<String>, hint: impl Into<String>) -> Self {
        ChainError {
            link: link.to_owned(),
            what: what.into(),
            hint: hint.into(),
            transient: false,
        }
    }

    /// A response that is not a success, said as Google's error JSON (or an OAuth error's
    /// `error`/`error_description`) says it: `answered HTTP 403 PERMISSION_DENIED
    /// (IAM_PERMISSION_DENIED): Permission 'iam.serviceAccounts.getAccessToken' denied`.
    pub fn refused(link: &str, response: &Response, retries: u32, hint: impl Into<String>) -> Self {
        let status = response.status.as_u16();
        let said = refusal_words(&response.body);
        ChainError {
            link: link.to_owned(),
            what: format!("answered HTTP {status}{said}{}", gave_up(retries)),
            hint: hint.into(),
            transient: status == 429 || status >= 500,
        }
    }
}

/// Google's words in an error body: its status and reason, and its message; or an OAuth
/// error's code and description.
fn refusal_words(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct OAuth {
        error: String,
        error_description: Option<String>,
    }
    if let Ok(oauth) = serde_json::from_slice::<OAuth>(body) {
        let description = oauth
            .error_description
            .map(|d| format!(": {}", Quoted::from(d)))
            .unwrap_or_default();
        return format!(" {}{description}", Quoted::from(oauth.error));
    }
    let google = GoogleError::from_body(body);
    // IAM and STS give their reason in an ErrorInfo detail, not in `errors[]`.
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["error"]["details"]
                .as_array()?
                .iter()
                .find_map(|d| d["reason"].as_str().map(str::to_owned))
        });
    let mut words = String::new();
    if let Some(status) = &google.status {
        words += &format!(" {}", Quoted::from(status.as_str()));
    }
    if let Some(reason) = google.reason.as_ref().or(detail.as_ref()) {
        words += &format!(" ({})", Quoted::from(reason.as_str()));
    }
    if !google.message.is_empty() {
        words += &format!(": {}", Quoted::from(google.message.as_str()));
    }
    words
}

fn gave_up(retries: u32) -> String {
    match retries {
        0 => String::new(),
        n => format!(" (after {n} retries)"),
    }
}
