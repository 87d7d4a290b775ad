//! IAM Credentials: a service account's token made from another credential's
//! (`generateAccessToken`: an `impersonated_service_account` file, what `gcloud auth
//! application-default login --impersonate-service-account` writes, or
//! `--impersonate-service-account`), and a JWT the service account signs without a key
//! (`signJwt`, for keyless domain-wide delegation).

use std::time::{Duration, SystemTime};

use http::Request;
use serde_json::json;

use super::oauth::Grant;
use super::source::{ChainError, Http, TokenSource};
use super::{AuthError, Authorizer};

/// What a source credential's token is asked for when it only calls IAM Credentials (IAM
/// accepts it, and it is the usual access scope of a VM).
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The lifetime asked of a generated token (Google's default and most, without an org policy).
const LIFETIME: Duration = Duration::from_secs(3600);

/// What to grant when IAM Credentials refuses.
const GRANT_HINT: &str = "grant the caller the Service Account Token Creator role \
    (roles/iam.serviceAccountTokenCreator) on the service account (and on each delegate), \
    and enable the IAM Service Account Credentials API in its project";

/// `projects/-/serviceAccounts/EMAIL`, as the API names an account (gcloud's files and flags
/// give bare emails).
pub fn account_name(account: &str) -> String {
    match account.starts_with("projects/") {
        true => account.to_owned(),
        false => format!("projects/-/serviceAccounts/{account}"),
    }
}

/// The `generateAccessToken` URL of `target` at the IAM Credentials endpoint.
pub fn generate_url(target: &str) -> String {
    format!(
        "{}v1/{}:generateAccessToken",
        crate::endpoints::of(crate::endpoints::IAM_CREDENTIALS),
        account_name(target)
    )
}

/// A service account's tokens, made from the tokens of `caller` (the source credential).
pub struct Impersonated {
    pub caller: Authorizer,
    pub target: String,
    pub delegates: Vec<String>,
    /// Its `generateAccessToken` URL.
    pub url: String,
    pub quota_project: Option<String>,
    /// The source credential, as `auth status` names it.
    pub source: String,
}

/// The caller's token, or why there is none, as a link of the chain.
async fn caller_token(caller: &Authorizer, what: &str) -> Result<String, ChainError> {
    match caller.access_token().await {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(ChainError::new(
            what,
            "has no OAuth token to call IAM Credentials with",
            "use a credential that holds one",
        )),
        Err(AuthError::Chain(err)) => Err(err),
        Err(err) => Err(ChainError::new(
            what,
            format!("failed: {err}"),
            "fix the source credential",
        )),
    }
}

/// POSTs `body` to IAM Credentials at `url` with `token`: the JSON answer.
async fn call(
    http: &Http,
    link: &str,
    url: &str,
    token: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, ChainError> {
    let bearer = crate::http::bearer_header(token).ok_or_else(|| {
        ChainError::new(
            link,
            "got a token a header cannot carry",
            "fix the source credential",
        )
    })?;
    let request = Request::post(url)
        .header(http::header::AUTHORIZATION, bearer)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .map_err(|_| {
            ChainError::new(
                link,
                format!("has a URL that is not one ({})", crate::redact::quote(url)),
                "check the service account's email",
            )
        })?;
    let (response, retries) = http.send(link, request).await?;
    if !response.status.is_success() {
        let mut err = ChainError::refused(link, &response, retries, GRANT_HINT);
        if err.what.contains("ACCESS_TOKEN_SCOPE_INSUFFICIENT") {
            err.hint = "the source credential's token lacks the cloud-platform scope: log in \
                        with `gscrape auth login --scope cloud-platform`, or use gcloud's \
                        application-default login"
                .to_owned();
        }
        return Err(err);
    }
    serde_json::from_slice(&response.body).map_err(|_| {
        ChainError::new(
            link,
            "answered something that is not JSON",
            "check GSCRAPE_ENDPOINT_IAMCREDENTIALS",
        )
    })
}

#[async_trait::async_trait]
impl TokenSource for Impersonated {
    async fn fetch(&self, http: &Http, scopes: &[String]) -> Result<Grant, ChainError> {
        let link = format!("generateAccessToken for {}", self.target);
        let token = caller_token(&self.caller, &format!("the source credential of {link}")).await?;
        let delegates: Vec<String> = self.delegates.iter().map(|d| account_name(d)).collect();
        let body = json!({
            "delegates": delegates,
            "scope": scopes,
            "lifetime": format!("{}s", LIFETIME.as_secs()),
        });
        let answer = call(http, &link, &self.url, &token, body).await?;
        let Some(access_token) = answer["accessToken"].as_str().map(str::to_owned) else {
            return Err(ChainError::new(
                &link,
                "answered no accessToken",
                GRANT_HINT,
            ));
        };
        crate::redact::register(&access_token);
        let expires_at = answer["expireTime"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .or_else(|| Some(SystemTime::now() + LIFETIME));
        Ok(Grant {
            access_token,
            expires_at,
            refresh_token: None,
            scopes: None,
            id_token: None,
        })
    }

    fn service_account(&self) -> Option<String> {
        Some(self.target.clone())
    }

    fn quota_project(&self) -> Option<String> {
        self.quota_project.clone()
    }

    fn describe(&self) -> String {
        let through = match self.delegates.is_empty() {
            true => String::new(),
            false => format!(" through {}", self.delegates.join(", ")),
        };
        format!(
            "service account {} impersonated{through} with the {}",
            self.target, self.source
        )
    }
}

/// The delegation JWT of keyless domain-wide delegation: `claims` signed by `email` through
/// IAM Credentials `signJwt`, with the token of `caller` (the service account itself: it
/// needs the Token Creator role on itself).
pub async fn sign_jwt(
    http: &Http,
    caller: &Authorizer,
    email: &str,
    claims: &serde_json::Value,
) -> Result<String, ChainError> {
    let link = format!("signJwt for {email}");
    let token = caller_token(caller, &format!("the credential calling {link}")).await?;
    let url = format!(
        "{}v1/{}:signJwt",
        crate::endpoints::of(crate::endpoints::IAM_CREDENTIALS),
        account_name(email)
    );
    let answer = call(
        http,
        &link,
        &url,
        &token,
        json!({ "payload": claims.to_string() }),
    )
    .await?;
    let Some(signed) = answer["signedJwt"].as_str().map(str::to_owned) else {
        return Err(ChainError::new(&link, "answered no signedJwt", GRANT_HINT));
    };
    crate::redact::register(&signed);
    Ok(signed)
}
