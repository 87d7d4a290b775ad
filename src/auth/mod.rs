//! Credentials: which one a run uses ([`credentials`]), the cached login ([`cache`]), the
//! browser login ([`login`]), the token endpoint ([`oauth`]), scope choice ([`scopes`]), and the
//! [`Authorizer`] that hands tokens to requests — fetched once before requests fan out,
//! refreshed before they expire, and refreshed once more when Google answers 401.
//!
//! Secrets never reach stdout, stderr or logs: no type here that holds one derives `Debug`,
//! and yup-oauth2's `log` output (which does print tokens) is not wired to any logger.

pub mod cache;
pub mod credentials;
pub mod login;
pub mod oauth;
pub mod scopes;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use yup_oauth2::authenticator::Authenticator;

pub use cache::{CachedLogin, TokenCache};
pub use credentials::{AuthSettings, Credential};

use crate::http::HyperClient;

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
    NoLoginForAccount { account: String, dir: PathBuf },
    #[error("{}: {why}", .path.display())]
    BadCredentialFile { path: PathBuf, why: String },
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error("the saved login was refused by Google (invalid_grant: {description}). Usual causes: access was \
             revoked in the Google account settings; the OAuth app is in \"Testing\" status, whose refresh \
             tokens expire after 7 days; the system clock is wrong. Remedies: run `gscrape auth login \
             --client-secret FILE` again (publish the app to stop the 7-day expiry), or use a service account \
             for unattended runs")]
    InvalidGrant { description: String },
    #[error("cannot get an access token: {0}")]
    Token(String),
    #[error("--subject (domain-wide delegation) needs a service-account key, but the credential is the {0}")]
    SubjectNeedsServiceAccount(String),
    #[error("{0}")]
    MissingScope(String),
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

/// yup-oauth2 on the shared client: its token requests go through the same proxy and trust
/// the same CAs, but ask for no gzip (yup reads raw bodies; see [`HyperClient`]).
type ServiceAccountAuth = Authenticator<crate::http::Connector>;

/// How new tokens are obtained.
enum Source {
    /// A token given as is: it cannot be refreshed.
    Fixed,
    /// yup-oauth2's service-account flow (JWT bearer grant).
    ServiceAccount(Box<ServiceAccountAuth>),
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
}

/// Hands out access tokens for one credential (and one delegated subject). Cheap to clone:
/// clones share the token.
#[derive(Clone)]
pub struct Authorizer {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    source: Source,
    scopes: Vec<String>,
    current: Mutex<Option<Token>>,
    client: HyperClient,
    timeout: Duration,
    describe: String,
}

impl Authorizer {
    /// Sets up token handling for `credential`; `scopes` are asked of service accounts (user
    /// credentials carry the scopes they were granted).
    pub async fn new(
        credential: &Credential,
        subject: Option<&str>,
        scopes: Vec<String>,
        client: HyperClient,
        timeout: Duration,
    ) -> Result<Self, AuthError> {
        let describe = credential.describe();
        if subject.is_some() && !matches!(credential, Credential::ServiceAccount { .. }) {
            return Err(AuthError::SubjectNeedsServiceAccount(describe));
        }
        let mut current = None;
        let source = match credential {
            Credential::AccessToken { token, .. } => {
                current = Some(Token {
                    value: token.clone(),
                    expires_at: None,
                    obtained_at: None,
                });
                Source::Fixed
            }
            Credential::ServiceAccount { key, .. } => {
                let mut builder = yup_oauth2::ServiceAccountAuthenticator::with_client(
                    (**key).clone(),
                    yup_oauth2::CustomHyperClientBuilder::from(client.clone()),
                );
                if let Some(subject) = subject {
                    builder = builder.subject(subject);
                }
                let auth = builder
                    .build()
                    .await
                    .map_err(|e| AuthError::Token(format!("invalid service-account key: {e}")))?;
                Source::ServiceAccount(Box::new(auth))
            }
            Credential::AuthorizedUser { user, .. } => Source::RefreshToken {
                client_id: user.client_id.clone(),
                client_secret: user.client_secret.clone(),
                refresh_token: user.refresh_token.clone(),
                token_uri: user
                    .token_uri
                    .clone()
                    .unwrap_or_else(|| oauth::GOOGLE_TOKEN_URI.to_owned()),
                cache_file: None,
            },
            Credential::CachedLogin { login, path } => {
                current = login.access_token.clone().map(|value| Token {
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
        };
        Ok(Authorizer {
            inner: std::sync::Arc::new(Inner {
                source,
                scopes,
                current: Mutex::new(current),
                client,
                timeout,
                describe,
            }),
        })
    }

    /// What this authorizer uses, for messages.
    pub fn describe(&self) -> &str {
        &self.inner.describe
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
        if matches!(self.inner.source, Source::ApiKey(_)) {
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

    async fn obtain(&self) -> Result<Token, AuthError> {
        let now = SystemTime::now();
        match &self.inner.source {
            Source::Fixed | Source::ApiKey(_) => Err(AuthError::Token("nothing to refresh".into())),
            Source::ServiceAccount(auth) => {
                let token = auth
                    .force_refreshed_token(&self.inner.scopes)
                    .await
                    .map_err(|e| AuthError::Token(describe_yup_error(&e)))?;
                let value = token
                    .token()
                    .ok_or_else(|| {
                        AuthError::Token("the token endpoint sent no access token".into())
                    })?
                    .to_owned();
                Ok(Token {
                    value,
                    expires_at: token.expiration_time().map(SystemTime::from),
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

/// yup-oauth2's errors, without the parts that are not for users.
fn describe_yup_error(err: &yup_oauth2::Error) -> String {
    match err {
        yup_oauth2::Error::AuthError(e) => format!("the token endpoint refused: {e}"),
        other => other.to_string(),
    }
}

fn to_unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl google_apis_common::GetToken for Authorizer {
    fn get_token<'a>(
        &'a self,
        _scopes: &'a [&str],
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>,
                > + Send
                + 'a,
        >,
    > {
        Box::pin(async move { self.access_token().await.map_err(Into::into) })
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
