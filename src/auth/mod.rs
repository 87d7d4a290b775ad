//! Credentials: which one a run uses ([`credentials`]), the cached login ([`cache`]), the
//! browser login ([`login`]), the token endpoint ([`oauth`]), scope choice ([`scopes`]), and the
//! [`Authorizer`] that hands tokens to requests — fetched once before requests fan out,
//! refreshed before they expire, and refreshed once more when Google answers 401. The
//! [`Authorizers`] of a run make one per delegated subject, on first use.
//!
//! Secrets never reach stdout, stderr or logs: no type here that holds one derives `Debug`,
//! and yup-oauth2's `log` output (which does print tokens) is not wired to any logger.

pub mod aws;
pub mod cache;
pub mod credentials;
pub mod external;
pub mod fields;
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

pub use cache::{CachedLogin, TokenCache};
pub use credentials::Credential;

use crate::http::retry::RetryPolicy;
use crate::http::HyperClient;
use crate::redact::Quoted;

/// A refresh happens when less than this is left of a token's life (or half its life, for
/// tokens that live shorter than twice this).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials found: log in once with `gscrape auth login --client-secret client_secret.json`, \
             or use a service-account key (--credentials FILE or GOOGLE_APPLICATION_CREDENTIALS), \
             or set GSCRAPE_ACCESS_TOKEN")]
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

/// How new tokens are obtained.
#[derive(Clone)]
enum Source {
    /// A token given as is: it cannot be refreshed.
    Fixed,
    /// The service-account (JWT-bearer) grant, acting as `subject` when given.
    ServiceAccount {
        signer: Arc<oauth::ServiceAccountSigner>,
        subject: Option<String>,
    },
    /// The refresh-token grant (cached login, `authorized_user`); refreshed tokens of a cached
    /// login are written back so the next run can reuse them.
    RefreshToken {
        client_id: String,
        client_secret: String,
        refresh_token: String,
        token_uri: String,
        cache_file: Option<(PathBuf, Box<CachedLogin>)>,
    },
    /// No token: requests carry `key=`.
    ApiKey(String),
    /// No token and no key: public methods only.
    Public,
    /// A credential of links (metadata server, impersonation, STS).
    Chain(Arc<dyn source::TokenSource>),
    /// Keyless domain-wide delegation: a JWT for `subject` signed by `email` through IAM
    /// Credentials with `caller`'s token, exchanged at the token endpoint.
    Delegated {
        email: String,
        subject: String,
        caller: Authorizer,
    },
}

/// How a credential acts as a Workspace user (domain-wide delegation).
enum Delegation {
    /// Its private key signs the delegation JWT.
    Key(Arc<oauth::ServiceAccountSigner>),
    /// IAM Credentials signs it for the service account `email`, called with `caller`'s token
    /// (the account itself: it needs the Token Creator role on itself).
    Iam { email: String, caller: Authorizer },
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
    /// The credential's own source (acting as itself), made once: the key read, the links
    /// of a keyless credential made.
    source: Source,
    /// The token it starts with (a given token, a cached login's).
    initial: Option<Token>,
    /// The credential's `describe`, for the error of a subject it cannot act as.
    describe: String,
    /// How it acts as a user, when it can: the key, read once for all subjects, or IAM.
    delegation: Option<Delegation>,
    /// `x-goog-user-project` of its API requests.
    quota_project: Option<String>,
    scopes: Vec<String>,
    client: HyperClient,
    timeout: Duration,
    retry: RetryPolicy,
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
        Self::build(
            credential,
            scopes,
            quota_project,
            client,
            timeout,
            retry,
            true,
        )
    }

    /// `new`, with `delegating` false for the inner authorizers of a chain (a caller of IAM
    /// Credentials delegates nothing itself).
    fn build(
        credential: Credential,
        scopes: Vec<String>,
        quota_project: Option<String>,
        client: HyperClient,
        timeout: Duration,
        retry: RetryPolicy,
        delegating: bool,
    ) -> Result<Self, AuthError> {
        let inner_of = |credential: Credential| {
            let scopes = vec![impersonate::CLOUD_PLATFORM.to_owned()];
            Self::build(
                credential,
                scopes,
                None,
                client.clone(),
                timeout,
                retry.clone(),
                false,
            )?
            .for_subject(None)
        };
        let mut initial = None;
        let source = match &credential {
            Credential::AccessToken { token, .. } => {
                initial = Some(Token {
                    value: token.clone(),
                    expires_at: None,
                    obtained_at: None,
                });
                Source::Fixed
            }
            Credential::ServiceAccount { key, path, .. } => Source::ServiceAccount {
                signer: Arc::new(oauth::ServiceAccountSigner::new(key).map_err(|e| {
                    AuthError::BadCredentialFile {
                        path: path.clone(),
                        why: e.to_string(),
                    }
                })?),
                subject: None,
            },
            Credential::AuthorizedUser { user, .. } => Source::RefreshToken {
                client_id: user.client_id.clone(),
                client_secret: user.client_secret.clone(),
                refresh_token: user.refresh_token.clone(),
                token_uri: user
                    .token_uri
                    .clone()
                    .unwrap_or_else(oauth::google_token_uri),
                cache_file: None,
            },
            Credential::CachedLogin { login, path } => {
                initial = login.access_token.clone().map(|value| Token {
                    value,
                    expires_at: login.expires_at(),
                    obtained_at: None,
                });
                Source::RefreshToken {
                    client_id: login.client_id.clone(),
                    client_secret: login.client_secret.clone(),
                    refresh_token: login.refresh_token.clone(),
                    token_uri: login.token_uri.clone(),
                    cache_file: Some((path.clone(), Box::new(login.clone()))),
                }
            }
            Credential::ApiKey { key, .. } => Source::ApiKey(key.clone()),
            Credential::Public => Source::Public,
            Credential::Chain { source, .. } => Source::Chain(source.clone()),
            Credential::Impersonated(imp) => Source::Chain(Arc::new(impersonate::Impersonated {
                caller: inner_of(imp.source.clone())?,
                target: imp.target.clone(),
                delegates: imp.delegates.clone(),
                url: imp.url.clone(),
                quota_project: imp.quota_project.clone(),
                source: imp.source.describe(),
            })),
        };
        let delegation = match &source {
            Source::ServiceAccount { signer, .. } => Some(Delegation::Key(signer.clone())),
            Source::Chain(chain) if delegating => match chain.service_account() {
                Some(email) => Some(Delegation::Iam {
                    email,
                    caller: inner_of(credential.clone())?,
                }),
                None => None,
            },
            _ => None,
        };
        Ok(Authorizers {
            inner: Arc::new(Shared {
                quota_project,
                describe: credential.describe(),
                source,
                initial,
                delegation,
                scopes,
                client,
                timeout,
                retry,
                made: std::sync::Mutex::new(HashMap::new()),
            }),
        })
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
        let authorizer = Authorizer::new(shared, subject)?;
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
    source: Source,
    quota_project: Option<String>,
    scopes: Vec<String>,
    current: Mutex<Option<Token>>,
    client: HyperClient,
    timeout: Duration,
    retry: RetryPolicy,
}

impl Authorizer {
    fn new(shared: &Shared, subject: Option<&str>) -> Result<Self, AuthError> {
        let source = match (subject, &shared.delegation) {
            (None, _) => shared.source.clone(),
            (Some(subject), Some(Delegation::Key(signer))) => Source::ServiceAccount {
                signer: signer.clone(),
                subject: Some(subject.to_owned()),
            },
            (Some(subject), Some(Delegation::Iam { email, caller })) => Source::Delegated {
                email: email.clone(),
                subject: subject.to_owned(),
                caller: caller.clone(),
            },
            (Some(_), None) => {
                return Err(AuthError::SubjectNeedsServiceAccount(
                    shared.describe.clone(),
                ))
            }
        };
        let current = match subject {
            None => shared.initial.clone(),
            Some(_) => None,
        };
        Ok(Authorizer {
            inner: std::sync::Arc::new(Inner {
                source,
                quota_project: shared.quota_project.clone(),
                scopes: shared.scopes.clone(),
                current: Mutex::new(current),
                client: shared.client.clone(),
                timeout: shared.timeout,
                retry: shared.retry.clone(),
            }),
        })
    }

    /// The project its API requests name for quota and billing (`x-goog-user-project`).
    pub fn quota_project(&self) -> Option<&str> {
        self.inner.quota_project.as_deref()
    }

    /// The Workspace user it acts as (domain-wide delegation); `None`: the credential's own
    /// account. Names the per-user quota bucket its requests draw on.
    pub fn acting_as(&self) -> Option<&str> {
        match &self.inner.source {
            Source::ServiceAccount { subject, .. } => subject.as_deref(),
            Source::Delegated { subject, .. } => Some(subject),
            _ => None,
        }
    }

    /// The API key to send as `key=`, for an API-key credential.
    pub fn api_key(&self) -> Option<&str> {
        match &self.inner.source {
            Source::ApiKey(key) => Some(key),
            _ => None,
        }
    }

    /// A valid access token (refreshed first when close to expiry); `None` for API keys.
    /// Concurrent callers wait for one refresh instead of each starting their own.
    pub async fn access_token(&self) -> Result<Option<String>, AuthError> {
        if matches!(self.inner.source, Source::ApiKey(_) | Source::Public) {
            return Ok(None);
        }
        let mut current = self.inner.current.lock().await;
        if let Some(token) = current.as_ref() {
            if matches!(self.inner.source, Source::Fixed) || token.is_fresh(SystemTime::now()) {
                return Ok(Some(token.value.clone()));
            }
        }
        let token = self.obtain().await?;
        let value = token.value.clone();
        *current = Some(token);
        Ok(Some(value))
    }

    /// Google rejected `rejected` (401): forget it so that the next call refreshes. Returns
    /// whether a retry can help (false for a token given as is).
    pub async fn reject(&self, rejected: &str) -> bool {
        if matches!(self.inner.source, Source::Fixed | Source::ApiKey(_)) {
            return false;
        }
        let mut current = self.inner.current.lock().await;
        if current.as_ref().is_some_and(|t| t.value == rejected) {
            *current = None;
        }
        true
    }

    /// Boxed, and declared `Send`: a chain's links are authorizers too, so the future would
    /// otherwise be recursive.
    fn obtain(&self) -> futures_util::future::BoxFuture<'_, Result<Token, AuthError>> {
        Box::pin(self.obtain_now())
    }

    async fn obtain_now(&self) -> Result<Token, AuthError> {
        let now = SystemTime::now();
        match &self.inner.source {
            Source::Fixed | Source::ApiKey(_) | Source::Public => {
                Err(AuthError::Token("nothing to refresh".into()))
            }
            Source::ServiceAccount { signer, subject } => {
                let grant = oauth::service_account(
                    &self.inner.client,
                    signer,
                    &self.inner.scopes,
                    subject.as_deref(),
                    self.inner.timeout,
                    &self.inner.retry,
                )
                .await
                .map_err(|e| match e {
                    oauth::OAuthError::InvalidGrant { description } => AuthError::Token(format!(
                        "the token endpoint refused the service account{} (invalid_grant: \
                         {description}); check the key, and for a subject its domain-wide \
                         delegation in the Admin console",
                        subject
                            .as_deref()
                            .map(|s| format!(" acting as {}", crate::redact::quote(s)))
                            .unwrap_or_default()
                    )),
                    other => AuthError::Token(other.to_string()),
                })?;
                Ok(Token {
                    value: grant.access_token,
                    expires_at: grant.expires_at,
                    obtained_at: Some(now),
                })
            }
            Source::Chain(source) => {
                let grant = source
                    .fetch(&self.http(), &self.inner.scopes)
                    .await
                    .map_err(AuthError::Chain)?;
                Ok(Token {
                    value: grant.access_token,
                    expires_at: grant.expires_at,
                    obtained_at: Some(now),
                })
            }
            Source::Delegated {
                email,
                subject,
                caller,
            } => {
                let token_uri = format!("{}token", crate::endpoints::of(crate::endpoints::OAUTH2));
                let iat = to_unix(now);
                let claims = serde_json::json!({
                    "iss": email,
                    "sub": subject,
                    "scope": self.inner.scopes.join(" "),
                    "aud": token_uri,
                    "iat": iat,
                    "exp": iat + 3600,
                });
                let http = self.http();
                let assertion = impersonate::sign_jwt(&http, caller, email, &claims)
                    .await
                    .map_err(AuthError::Chain)?;
                let grant = oauth::jwt_grant(
                    &http.client,
                    &token_uri,
                    &assertion,
                    http.timeout,
                    &http.retry,
                )
                .await
                .map_err(|e| match e {
                    oauth::OAuthError::InvalidGrant { description } => AuthError::Token(format!(
                        "the token endpoint refused {email} acting as {} (invalid_grant: \
                             {description}); give the service account's client ID domain-wide \
                             delegation of these scopes in the Admin console",
                        crate::redact::quote(subject)
                    )),
                    other => AuthError::Token(other.to_string()),
                })?;
                Ok(Token {
                    value: grant.access_token,
                    expires_at: grant.expires_at,
                    obtained_at: Some(now),
                })
            }
            Source::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
                cache_file,
            } => {
                let grant = oauth::refresh(
                    &self.inner.client,
                    token_uri,
                    client_id,
                    client_secret,
                    refresh_token,
                    self.inner.timeout,
                    &self.inner.retry,
                )
                .await
                .map_err(|e| match e {
                    oauth::OAuthError::InvalidGrant { description } => {
                        AuthError::InvalidGrant { description }
                    }
                    other => AuthError::Token(other.to_string()),
                })?;
                if let Some((path, login)) = cache_file {
                    let mut login = (**login).clone();
                    login.access_token = Some(grant.access_token.clone());
                    login.expires_at = grant.expires_at.map(to_unix);
                    if let Some(rotated) = &grant.refresh_token {
                        login.refresh_token = rotated.clone();
                    }
                    if let Err(err) = cache::save(path, &login) {
                        tracing::warn!("{err}");
                    }
                }
                Ok(Token {
                    value: grant.access_token,
                    expires_at: grant.expires_at,
                    obtained_at: Some(now),
                })
            }
        }
    }
}

impl Authorizer {
    /// What a link of its chain needs to speak HTTP.
    fn http(&self) -> source::Http {
        source::Http {
            client: self.inner.client.clone(),
            timeout: self.inner.timeout,
            retry: self.inner.retry.clone(),
        }
    }
}

fn to_unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
