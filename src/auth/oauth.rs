//! The OAuth token endpoint, spoken directly where yup-oauth2's handling does not fit an
//! unattended tool: the refresh-token grant (cached logins and `authorized_user` files), whose
//! `invalid_grant` must end a cron run with an explanation instead of starting a browser login,
//! and token revocation. Both go through [`crate::http::send`] and so ask for gzip, like every
//! request gscrape sends itself (yup-oauth2's token requests cannot: yup reads raw bodies).

use std::time::{Duration, SystemTime};

use http::{header, Request};
use serde::Deserialize;

use crate::http::{self as gh, HyperClient};

/// Google's token endpoint, for credentials that do not name one.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

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

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The refresh token is no longer valid: only a new login helps.
    #[error("the token endpoint refused the refresh token (invalid_grant: {description})")]
    InvalidGrant { description: String },
    #[error("the token endpoint {url} answered HTTP {status}: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        url: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error(transparent)]
    Http(#[from] gh::HttpError),
    #[error("invalid token endpoint URL {0:?}")]
    BadUrl(String),
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
) -> Result<Grant, OAuthError> {
    let form = url_form(&[
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("refresh_token", refresh_token),
    ]);
    let request = Request::post(token_uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .map_err(|_| OAuthError::BadUrl(token_uri.to_owned()))?;
    let response = gh::send(client, request, timeout).await?;
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
        }) if response.status.is_success() => Ok(Grant {
            access_token,
            expires_at: expires_in.map(|s| SystemTime::now() + Duration::from_secs(s)),
            refresh_token,
            scopes: scope.map(|s| s.split_whitespace().map(str::to_owned).collect()),
            id_token,
        }),
        Some(TokenResponse {
            error: Some(error),
            error_description,
            ..
        }) if error == "invalid_grant" => Err(OAuthError::InvalidGrant {
            description: error_description.unwrap_or_else(|| "no description".to_owned()),
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
                url: token_uri.to_owned(),
                status: response.status.as_u16(),
                error,
                description,
            })
        }
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
        .map_err(|_| OAuthError::BadUrl(url.clone()))?;
    let response = gh::send(client, request, timeout).await?;
    if response.status.is_success() {
        Ok(true)
    } else {
        Err(OAuthError::Refused {
            url,
            status: response.status.as_u16(),
            error: String::from_utf8_lossy(&response.body)
                .chars()
                .take(200)
                .collect(),
            description: None,
        })
    }
}

fn url_form(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
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
