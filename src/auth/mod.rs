//! Credentials: which one a run uses ([`credentials`]), each a [`source::TokenSource`] in the
//! file of its kind (a given token or API key [`given`], a key or `authorized_user` file
//! [`oauth`], the cached login [`cache`], the metadata server [`metadata`], impersonation
//! [`impersonate`], federation [`external`]); the browser login ([`login`]), scope choice
//! ([`scopes`]), and the [`Authorizer`] that hands tokens to requests — fetched once before
//! requests fan out, refreshed before they expire, and refreshed once more when Google
//! answers 401. The [`Authorizers`] of a run make one per delegated subject, on first use.
//!
//! Secrets never reach stdout, stderr or logs: no type here that holds one derives `Debug`,
//! and yup-oauth2's `log` output (which does print tokens) is not wired to any logger.

pub mod aws;
pub mod cache;
pub mod credentials;
pub mod external;
pub mod fields;
pub mod given;
pub mod impersonate;
pub mod login;
pub mod metadata;
pub mod oauth;
pub mod scopes;
pub mod source;
pub mod sts;
pub mod subject;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;

pub use cache::TokenCache;
pub use credentials::Credential;
use source::{Delegator, Sends, TokenSource};

use crate::http::retry::RetryPolicy;
use crate::http::HyperClient;
use crate::redact::Quoted;

/// A refresh happens when less than this is left of a token's life (or half its life, for
/// tokens that live shorter than twice this).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials found. Without a key: on Google Cloud, run as a service account (the metadata \
             server, probed at GCE_METADATA_IP or 169.254.169.254, did not answer); elsewhere, workload \
             identity federation (an external_account file in GOOGLE_APPLICATION_CREDENTIALS or --credentials); \
             either with --impersonate-service-account to act as another account. Else: log in once with \
             `gscrape auth login --client-secret client_secret.json`, use a service-account key \
             (--credentials FILE or GOOGLE_APPLICATION_CREDENTIALS), or set GSCRAPE_ACCESS_TOKEN")]
    NoCredentials,
    #[error("no cached login for the account {account} in {}; run `gscrape auth login` with that account", .dir.display())]
    NoLoginForAccount { account: Quoted, dir: PathBuf },
    #[error("{}: {why}", .path.display())]
    BadCredentialFile { path: PathBuf, why: String },
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error("the saved login was refused by Google (invalid_grant: {description}). Usual causes: access was \
             revoked in the Google account settings; the OAuth app is in \"Testing\" status, whose refresh \
             tokens expire after 7 days; the system clock is wrong. Remedies: run `gscrape auth login \
             --client-secret FILE` again (publish the app to stop the 7-day expiry), or use a service account \
             for unattended runs")]
    InvalidGrant { description: Quoted },
    /// The refresh token of an `authorized_user` file (gcloud's, `GOOGLE_APPLICATION_CREDENTIALS`)
    /// refused: renewed where it came from, not by a gscrape login.
    #[error("the refresh token in {} (from {origin}) was refused by Google (invalid_grant: \
             {description}): it was revoked or has expired. Renew it where it came from — for \
             gcloud's file, `gcloud auth application-default login` — or use `gscrape auth login`", .path.display())]
    InvalidGrantInFile {
        path: PathBuf,
        origin: &'static str,
        description: Quoted,
    },
    #[error("cannot get an access token: {0}")]
    Token(String),
    #[error("the access token from {origin} is empty or holds a space or a control character (a line break?): give the token alone")]
    BadAccessToken { origin: &'static str },
    #[error("--subject (domain-wide delegation) needs a service account (a key, the metadata server's, or an impersonated one), but the credential is the {0}")]
    SubjectNeedsServiceAccount(String),
    #[error("{0}")]
    MissingScope(String),
    /// A link of a keyless credential failed.
    #[error(transparent)]
    Chain(source::ChainError),
}

impl AuthError {
    /// What kind of failure this is: a token endpoint that could not be reached is Google's
    /// failure; everything else needs a person.
    pub fn kind(&self) -> crate::error::Failure {
        match self {
            AuthError::Token(_) => crate::error::Failure::Remote,
            AuthError::Chain(err) if err.transient => crate::error::Failure::Remote,
            _ => crate::error::Failure::Auth,
        }
    }
}

/// One access token and when it stops working.
#[derive(Clone)]
struct Token {
    value: String,
    expires_at: Option<SystemTime>,
    /// When it was obtained, if by this process (to size the refresh margin).
    obtained_at: Option<SystemTime>,
}

impl Token {
    fn is_fresh(&self, now: SystemTime) -> bool {
        let Some(expires_at) = self.expires_at else {
            return true;
        };
        let margin = match self
            .obtained_at
            .and_then(|t| expires_at.duration_since(t).ok())
        {
            Some(life) => REFRESH_MARGIN.min(life / 2),
            None => REFRESH_MARGIN,
        };
        now + margin < expires_at
    }
}

/// The authorizers of a run, by delegated subject: each made on first use and then shared by
/// every query and request chain acting as that subject, so each subject costs one token (and
/// chains that start together wait for that one).
#[derive(Clone)]
pub struct Authorizers {
    inner: Arc<Shared>,
}

/// What every authorizer of a run is made from.
struct Shared {
    /// The credential (acting as itself).
    source: Arc<dyn TokenSource>,
    /// How it acts as a user, when it can: its key, read once for all subjects, or IAM.
    delegation: Option<Arc<dyn Delegator>>,
    /// `x-goog-user-project` of its API requests.
    quota_project: Option<String>,
    scopes: Vec<String>,
    http: source::Http,
    made: std::sync::Mutex<HashMap<Option<String>, Authorizer>>,
}

impl Authorizers {
    /// Sets up token handling for `credential`; `scopes` are asked of service accounts (user
    /// credentials carry the scopes they were granted); API requests name `quota_project`
    /// (`x-goog-user-project`). Token requests retry by `retry`.
    pub fn new(
        credential: Credential,
        scopes: Vec<String>,
        quota_project: Option<String>,
        client: HyperClient,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, AuthError> {
        let source = credential.source().clone();
        let http = source::Http {
            client,
            timeout,
            retry,
        };
        let delegation = source.delegator().or_else(|| {
            let email = source.service_account()?;
            let signer = source.signs_jwt_as().unwrap_or_else(|| source.clone());
            let caller = Self::caller(signer, &http);
            Some(Arc::new(impersonate::SignsJwt { email, caller }) as Arc<dyn Delegator>)
        });
        Ok(Authorizers {
            inner: Arc::new(Shared {
                quota_project,
                source,
                delegation,
                scopes,
                http,
                made: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The authorizer of `source` as a caller of IAM Credentials (impersonation, keyless
    /// delegation): cloud-platform tokens, no quota project, no subject.
    pub(crate) fn caller(source: Arc<dyn TokenSource>, http: &source::Http) -> Authorizer {
        let scopes = vec![impersonate::CLOUD_PLATFORM.to_owned()];
        Authorizer::new(source, None, scopes, http.clone(), true)
    }

    /// True when the credential can act as another user (a service account: its key, or a
    /// keyless one IAM Credentials signs for).
    pub fn can_delegate(&self) -> bool {
        self.inner.delegation.is_some()
    }

    /// The authorizer acting as `subject` (`None`: as the credential itself), the same one
    /// for every caller asking for that subject. No token is fetched here.
    pub fn for_subject(&self, subject: Option<&str>) -> Result<Authorizer, AuthError> {
        let shared = &self.inner;
        let mut made = shared
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = subject.map(str::to_owned);
        if let Some(authorizer) = made.get(&key) {
            return Ok(authorizer.clone());
        }
        let source = match (subject, &shared.delegation) {
            (None, _) => shared.source.clone(),
            (Some(subject), Some(delegation)) => delegation.acting_as(subject),
            (Some(_), None) => {
                return Err(AuthError::SubjectNeedsServiceAccount(
                    shared.source.describe(),
                ))
            }
        };
        let authorizer = Authorizer::new(
            source,
            shared.quota_project.clone(),
            shared.scopes.clone(),
            shared.http.clone(),
            subject.is_none(),
        );
        made.insert(key, authorizer.clone());
        Ok(authorizer)
    }
}

/// Hands out access tokens for one credential (and one delegated subject). Cheap to clone:
/// clones share the token.
#[derive(Clone)]
pub struct Authorizer {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    source: Arc<dyn TokenSource>,
    quota_project: Option<String>,
    scopes: Vec<String>,
    current: Mutex<Option<Token>>,
    http: source::Http,
}

impl Authorizer {
    /// `initial`: it starts with the source's own token (a given one, a cached login's).
    fn new(
        source: Arc<dyn TokenSource>,
        quota_project: Option<String>,
        scopes: Vec<String>,
        http: source::Http,
        initial: bool,
    ) -> Self {
        let current = match initial {
            true => source.initial().map(|grant| Token {
                value: grant.access_token,
                expires_at: grant.expires_at,
                obtained_at: None,
            }),
            false => None,
        };
        Authorizer {
            inner: std::sync::Arc::new(Inner {
                source,
                quota_project,
                scopes,
                current: Mutex::new(current),
                http,
            }),
        }
    }

    /// The project its API requests name for quota and billing (`x-goog-user-project`).
    pub fn quota_project(&self) -> Option<&str> {
        self.inner.quota_project.as_deref()
    }

    /// The Workspace user it acts as (domain-wide delegation); `None`: the credential's own
    /// account. Names the per-user quota bucket its requests draw on.
    pub fn acting_as(&self) -> Option<&str> {
        self.inner.source.acting_as()
    }

    /// What the credential is and where it came from, in one line without a secret (for the
    /// run's record).
    pub fn describe(&self) -> String {
        self.inner.source.describe()
    }

    /// The API key to send as `key=`, for an API-key credential.
    pub fn api_key(&self) -> Option<&str> {
        match self.inner.source.sends() {
            Sends::Key(key) => Some(key),
            _ => None,
        }
    }

    /// A valid access token (refreshed first when close to expiry); `None` for API keys.
    /// Concurrent callers wait for one refresh instead of each starting their own.
    pub async fn access_token(&self) -> Result<Option<String>, AuthError> {
        if !matches!(self.inner.source.sends(), Sends::Token { .. }) {
            return Ok(None);
        }
        let mut current = self.inner.current.lock().await;
        // A given token has no expiry: it stays fresh.
        if let Some(token) = current.as_ref().filter(|t| t.is_fresh(SystemTime::now())) {
            return Ok(Some(token.value.clone()));
        }
        let now = SystemTime::now();
        let grant = self
            .inner
            .source
            .fetch(&self.inner.http, &self.inner.scopes)
            .await?;
        let value = grant.access_token.clone();
        *current = Some(Token {
            value: grant.access_token,
            expires_at: grant.expires_at,
            obtained_at: Some(now),
        });
        Ok(Some(value))
    }

    /// Google rejected `rejected` (401): forget it so that the next call refreshes. Returns
    /// whether a retry can help (false for a token given as is).
    pub async fn reject(&self, rejected: &str) -> bool {
        if matches!(
            self.inner.source.sends(),
            Sends::Token { refreshable: false } | Sends::Key(_)
        ) {
            return false;
        }
        let mut current = self.inner.current.lock().await;
        if current.as_ref().is_some_and(|t| t.value == rejected) {
            *current = None;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let now = SystemTime::now();
        let token = |life: u64, left: u64| Token {
            value: String::new(),
            expires_at: Some(now + Duration::from_secs(left)),
            obtained_at: Some(now + Duration::from_secs(left) - Duration::from_secs(life)),
        };
        assert!(token(3600, 120).is_fresh(now));
        assert!(!token(3600, 59).is_fresh(now));
        assert!(
            token(4, 3).is_fresh(now),
            "short-lived: half the life is the margin"
        );
        assert!(!token(4, 1).is_fresh(now));
    }
}
