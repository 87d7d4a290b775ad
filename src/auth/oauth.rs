//! The OAuth token endpoint, spoken directly where yup-oauth2's handling does not fit an
//! unattended tool: the refresh-token grant (cached logins and `authorized_user` files), whose
//! `invalid_grant` must end a cron run with an explanation instead of starting a browser login;
//! the service-account (JWT-bearer) grant, whose HTTP status yup-oauth2 does not show, so a
//! passing 503 could not be told from a refusal; and token revocation. Both grants retry
//! transient failures (no connection, timeouts, 429, 5xx) like API calls do, and go through
//! [`crate::http::send`], so they ask for gzip like every request gscrape sends itself.

use std::time::{Duration, SystemTime};

use http::{header, Request};
use serde::Deserialize;

use std::path::PathBuf;
use std::sync::Arc;

use super::source::{
    account_line, why_key_file, Delegator, Grant, Http, TokenSource, SCOPES_PER_RUN,
};
use super::AuthError;
use crate::http::retry::{gave_up_note, send_retrying, RetryPolicy};
use crate::http::{self as gh, HyperClient};
use crate::redact::Quoted;

/// Google's token endpoint, for credentials that do not name one: `token` under the root of
/// `oauth2` in force (`GSCRAPE_ENDPOINT_OAUTH2`, `[endpoints] oauth2`, the universe domain).
pub fn google_token_uri() -> String {
    format!("{}token", crate::endpoints::of(crate::endpoints::OAUTH2))
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The refresh token is no longer valid: only a new login helps.
    #[error("the token endpoint refused the refresh token (invalid_grant: {description})")]
    InvalidGrant { description: Quoted },
    #[error("the token endpoint {url} answered HTTP {status}: {error}{}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(), gave_up_note(*.retries))]
    Refused {
        url: Quoted,
        status: u16,
        /// The server's words (or ours, when it said nothing useful).
        error: Quoted,
        description: Option<Quoted>,
        /// Retries before this answer (a 5xx or 429 that did not pass).
        retries: u32,
    },
    #[error("{source}{}", gave_up_note(*.retries))]
    Http {
        #[source]
        source: gh::HttpError,
        retries: u32,
    },
    #[error("the service-account key cannot sign: {0}")]
    BadKey(String),
    #[error("invalid token endpoint URL {0:?}")]
    BadUrl(Quoted),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    scope: Option<String>,
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Exchanges a refresh token for an access token (RFC 6749 §6).
pub async fn refresh(
    client: &HyperClient,
    token_uri: &str,
    client_id: &str,
    client_secret: &str,
    refresh_token: &str,
    timeout: Duration,
    retry: &RetryPolicy,
) -> Result<Grant, OAuthError> {
    let form = url_form(&[
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("refresh_token", refresh_token),
    ]);
    token_request(client, token_uri, form, timeout, retry).await
}

/// Signs the assertions of a service-account key (RS256, as Google's JWT-bearer grant wants).
pub struct ServiceAccountSigner {
    client_email: String,
    token_uri: String,
    signer: Box<dyn rustls::sign::Signer>,
}

impl ServiceAccountSigner {
    /// Reads the key's PEM private key; a key that cannot sign is reported before any request.
    pub fn new(key: &yup_oauth2::ServiceAccountKey) -> Result<Self, OAuthError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::PrivateKeyDer;
        let der = PrivateKeyDer::from_pem_slice(key.private_key.as_bytes())
            .map_err(|_| OAuthError::BadKey("its private_key is not a PEM private key".into()))?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| OAuthError::BadKey(e.to_string()))?
            .choose_scheme(&[rustls::SignatureScheme::RSA_PKCS1_SHA256])
            .ok_or_else(|| OAuthError::BadKey("its private_key is not an RSA key".into()))?;
        Ok(ServiceAccountSigner {
            client_email: key.client_email.clone(),
            token_uri: key.token_uri.clone(),
            signer,
        })
    }

    /// The signed JWT asking for `scopes`, acting as `subject` when given.
    fn assertion(&self, scopes: &[String], subject: Option<&str>) -> Result<String, OAuthError> {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scopes.join(" "),
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        if let Some(subject) = subject {
            claims["sub"] = serde_json::Value::from(subject);
        }
        let mut jwt = format!(
            "{}.{}",
            b64(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        );
        let signature = self
            .signer
            .sign(jwt.as_bytes())
            .map_err(|e| OAuthError::BadKey(e.to_string()))?;
        jwt.push('.');
        jwt.push_str(&b64(&signature));
        Ok(jwt)
    }
}

/// Gets an access token for a service account (the JWT-bearer grant, RFC 7523), acting as
/// `subject` (domain-wide delegation) when given.
pub async fn service_account(
    client: &HyperClient,
    signer: &ServiceAccountSigner,
    scopes: &[String],
    subject: Option<&str>,
    timeout: Duration,
    retry: &RetryPolicy,
) -> Result<Grant, OAuthError> {
    let assertion = signer.assertion(scopes, subject)?;
    let form = url_form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", &assertion),
    ]);
    token_request(client, &signer.token_uri, form, timeout, retry).await
}

/// The JWT-bearer grant of an `assertion` signed elsewhere (IAM Credentials `signJwt`, for
/// keyless domain-wide delegation).
pub async fn jwt_grant(
    client: &HyperClient,
    token_uri: &str,
    assertion: &str,
    timeout: Duration,
    retry: &RetryPolicy,
) -> Result<Grant, OAuthError> {
    let form = url_form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion),
    ]);
    token_request(client, token_uri, form, timeout, retry).await
}

/// Posts a grant to the token endpoint, retrying transient failures, and reads the answer.
async fn token_request(
    client: &HyperClient,
    token_uri: &str,
    form: String,
    timeout: Duration,
    retry: &RetryPolicy,
) -> Result<Grant, OAuthError> {
    let request = Request::post(token_uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .map_err(|_| OAuthError::BadUrl(token_uri.into()))?;
    let sent = send_retrying(client, request, timeout, retry).await;
    let retries = sent.retries;
    let response = sent
        .result
        .map_err(|source| OAuthError::Http { source, retries })?;
    let parsed: Option<TokenResponse> = serde_json::from_slice(&response.body).ok();
    match parsed {
        Some(TokenResponse {
            access_token: Some(access_token),
            error: None,
            expires_in,
            refresh_token,
            scope,
            id_token,
            ..
        }) if response.status.is_success() => {
            crate::redact::register(&access_token);
            if let Some(refresh_token) = &refresh_token {
                crate::redact::register(refresh_token);
            }
            Ok(Grant {
                access_token,
                expires_at: expires_in.map(|s| SystemTime::now() + Duration::from_secs(s)),
                refresh_token,
                scopes: scope.map(|s| s.split_whitespace().map(str::to_owned).collect()),
                id_token,
            })
        }
        Some(TokenResponse {
            error: Some(error),
            error_description,
            ..
        }) if error == "invalid_grant" => Err(OAuthError::InvalidGrant {
            description: error_description
                .unwrap_or_else(|| "no description".to_owned())
                .into(),
        }),
        other => {
            let (error, description) = match other {
                Some(r) => (
                    r.error.unwrap_or_else(|| "no access_token".to_owned()),
                    r.error_description,
                ),
                None => ("the answer is not JSON".to_owned(), None),
            };
            Err(OAuthError::Refused {
                url: token_uri.into(),
                status: response.status.as_u16(),
                error: error.into(),
                description: description.map(Quoted::from),
                retries,
            })
        }
    }
}

/// A service-account key's credential: the JWT-bearer grant, acting as `subject` when given.
#[derive(Clone)]
pub struct ServiceAccount {
    pub signer: Arc<ServiceAccountSigner>,
    pub subject: Option<String>,
    /// The key file and where its name came from.
    pub path: PathBuf,
    pub origin: &'static str,
}

#[async_trait::async_trait]
impl TokenSource for ServiceAccount {
    async fn fetch(&self, http: &Http, scopes: &[String]) -> Result<Grant, AuthError> {
        let subject = self.subject.as_deref();
        service_account(
            &http.client,
            &self.signer,
            scopes,
            subject,
            http.timeout,
            &http.retry,
        )
        .await
        .map_err(|e| match e {
            OAuthError::InvalidGrant { description } => AuthError::Token(format!(
                "the token endpoint refused the service account{} (invalid_grant: \
                 {description}); check the key, and for a subject its domain-wide \
                 delegation in the Admin console",
                subject
                    .map(|s| format!(" acting as {}", crate::redact::quote(s)))
                    .unwrap_or_default()
            )),
            other => AuthError::Token(other.to_string()),
        })
    }

    fn delegator(&self) -> Option<Arc<dyn Delegator>> {
        Some(Arc::new(self.clone()))
    }

    fn acting_as(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    fn describe(&self) -> String {
        format!(
            "service account {} (key {} from {})",
            self.signer.client_email,
            self.path.display(),
            self.origin
        )
    }

    fn why(&self) -> String {
        why_key_file(self.origin)
    }

    fn status(&self, subject: Option<&str>) -> String {
        let acting = match subject {
            Some(subject) => format!(
                "acting as: {} (domain-wide delegation)\n",
                crate::redact::quote(subject)
            ),
            None => "acting as: the service account itself\n".to_owned(),
        };
        format!(
            "account: {}\n{acting}{SCOPES_PER_RUN}",
            self.signer.client_email
        )
    }
}

impl Delegator for ServiceAccount {
    fn acting_as(&self, subject: &str) -> Arc<dyn TokenSource> {
        Arc::new(ServiceAccount {
            subject: Some(subject.to_owned()),
            ..self.clone()
        })
    }
}

/// An `authorized_user` credential (gcloud's application-default login, or a saved user login).
#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// Honoured when present; Google's endpoint otherwise.
    pub token_uri: Option<String>,
    pub account: Option<String>,
    /// The project gcloud named for quota (`x-goog-user-project`).
    pub quota_project_id: Option<String>,
}

/// An `authorized_user` file's credential: the refresh-token grant.
pub struct AuthorizedUserFile {
    pub user: AuthorizedUser,
    pub path: PathBuf,
    pub origin: &'static str,
}

#[async_trait::async_trait]
impl TokenSource for AuthorizedUserFile {
    async fn fetch(&self, http: &Http, _: &[String]) -> Result<Grant, AuthError> {
        let user = &self.user;
        let token_uri = user.token_uri.clone().unwrap_or_else(google_token_uri);
        let refreshed = Refresh {
            token_uri: &token_uri,
            client_id: &user.client_id,
            client_secret: &user.client_secret,
            refresh_token: &user.refresh_token,
        };
        refreshed.grant(http).await.map_err(|e| match e {
            // Not "the saved login": this file is someone else's to renew.
            AuthError::InvalidGrant { description } => AuthError::InvalidGrantInFile {
                path: self.path.clone(),
                origin: self.origin,
                description,
            },
            other => other,
        })
    }

    fn quota_project(&self) -> Option<String> {
        self.user.quota_project_id.clone()
    }

    fn describe(&self) -> String {
        format!(
            "authorized_user credentials {} (from {})",
            self.path.display(),
            self.origin
        )
    }

    fn why(&self) -> String {
        why_key_file(self.origin)
    }

    fn status(&self, _: Option<&str>) -> String {
        account_line(self.user.account.as_deref())
            + "scopes: those granted when the file was made\n"
    }
}

/// One refresh-token grant of a user credential.
pub struct Refresh<'a> {
    pub token_uri: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub refresh_token: &'a str,
}

impl Refresh<'_> {
    /// The new token; `invalid_grant` says that only a new login helps.
    pub async fn grant(&self, http: &Http) -> Result<Grant, AuthError> {
        refresh(
            &http.client,
            self.token_uri,
            self.client_id,
            self.client_secret,
            self.refresh_token,
            http.timeout,
            &http.retry,
        )
        .await
        .map_err(|e| match e {
            OAuthError::InvalidGrant { description } => AuthError::InvalidGrant { description },
            other => AuthError::Token(other.to_string()),
        })
    }
}

/// Revokes a token at the revocation endpoint beside `token_uri` (`…/token` → `…/revoke`).
/// Returns `Ok(false)` when no such endpoint can be derived.
pub async fn revoke(
    client: &HyperClient,
    token_uri: &str,
    token: &str,
    timeout: Duration,
) -> Result<bool, OAuthError> {
    let Some(base) = token_uri.strip_suffix("/token") else {
        return Ok(false);
    };
    let url = format!("{base}/revoke");
    let request = Request::post(&url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(url_form(&[("token", token)]))
        .map_err(|_| OAuthError::BadUrl(url.as_str().into()))?;
    let response = gh::send(client, request, timeout)
        .await
        .map_err(|source| OAuthError::Http { source, retries: 0 })?;
    if response.status.is_success() {
        Ok(true)
    } else {
        Err(OAuthError::Refused {
            url: url.into(),
            status: response.status.as_u16(),
            error: String::from_utf8_lossy(&response.body).into_owned().into(),
            description: None,
            retries: 0,
        })
    }
}

/// An `application/x-www-form-urlencoded` body.
fn url_form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The `email` claim of an OpenID id_token (read, not verified: it only names the account in
/// messages and file names; the token itself came straight from the token endpoint over TLS).
pub fn id_token_email(id_token: &str) -> Option<String> {
    use base64::Engine;
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("email")?.as_str().map(str::to_owned)
}
