//! IAM Credentials: a service account's token made from another credential's
//! (`generateAccessToken`: an `impersonated_service_account` file, what `gcloud auth
//! application-default login --impersonate-service-account` writes, or
//! `--impersonate-service-account`), and a JWT the service account signs without a key
//! (`signJwt`, for keyless domain-wide delegation).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use http::Request;
use serde_json::json;

use super::source::{ChainError, Delegator, Grant, Http, TokenSource, SCOPES_PER_RUN};
use super::{AuthError, Authorizer, Authorizers};

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

/// A service account's tokens, made from the tokens of the source credential.
pub struct Impersonated {
    pub source: Arc<dyn TokenSource>,
    pub target: String,
    /// The accounts in between, in order (each impersonates the next).
    pub delegates: Vec<String>,
    /// Its `generateAccessToken` URL.
    pub url: String,
    pub quota_project: Option<String>,
    /// Where it was asked for: a file, or the flag.
    pub origin: String,
    /// The source's authorizer, made with the first fetch's HTTP settings (the run's).
    pub caller: OnceLock<Authorizer>,
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

/// POSTs `body` to IAM Credentials at `url` with `token`: the JSON answer; a refusal says
/// `hint(status)` (what to grant).
async fn call(
    http: &Http,
    link: &str,
    url: &str,
    token: &str,
    body: serde_json::Value,
    hint: &(dyn Fn(u16) -> String + Sync),
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
        let status = response.status.as_u16();
        let mut err = ChainError::refused(link, &response, retries, hint(status));
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

/// One `generateAccessToken`: a token of `email` for `scopes`, living `lifetime`, made with
/// `bearer` (the caller's token) through `delegates`; a refusal says `hint(status)`.
pub struct Generate<'a> {
    pub email: &'a str,
    /// Its `generateAccessToken` URL.
    pub url: &'a str,
    pub bearer: &'a str,
    pub delegates: &'a [String],
    pub scopes: &'a [String],
    pub lifetime: Duration,
    pub hint: &'a (dyn Fn(u16) -> String + Sync),
}

/// IAM Credentials `generateAccessToken` (for impersonation, and after an STS exchange).
pub async fn generate_access_token(http: &Http, ask: Generate<'_>) -> Result<Grant, ChainError> {
    let link = format!(
        "generateAccessToken for {}",
        crate::redact::quote(ask.email)
    );
    let scopes = match ask.scopes.is_empty() {
        true => vec![CLOUD_PLATFORM.to_owned()],
        false => ask.scopes.to_vec(),
    };
    let mut body = json!({
        "scope": scopes,
        "lifetime": format!("{}s", ask.lifetime.as_secs()),
    });
    if !ask.delegates.is_empty() {
        let delegates: Vec<String> = ask.delegates.iter().map(|d| account_name(d)).collect();
        body["delegates"] = json!(delegates);
    }
    let obtained = SystemTime::now();
    let answer = call(http, &link, ask.url, ask.bearer, body, ask.hint).await?;
    let Some(access_token) = answer["accessToken"].as_str().filter(|t| !t.is_empty()) else {
        return Err(ChainError::new(
            &link,
            "answered no accessToken",
            "try again later",
        ));
    };
    let access_token = access_token.to_owned();
    crate::redact::register(&access_token);
    let expires_at = answer["expireTime"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .unwrap_or(obtained + ask.lifetime);
    Ok(Grant {
        access_token,
        expires_at: Some(expires_at),
        refresh_token: None,
        scopes: Some(scopes),
        id_token: None,
    })
}

#[async_trait::async_trait]
impl TokenSource for Impersonated {
    async fn fetch(&self, http: &Http, scopes: &[String]) -> Result<Grant, AuthError> {
        let what = format!(
            "the source credential of generateAccessToken for {}",
            self.target
        );
        let caller = self
            .caller
            .get_or_init(|| Authorizers::caller(self.source.clone(), http));
        let bearer = caller_token(caller, &what).await?;
        let ask = Generate {
            email: &self.target,
            url: &self.url,
            bearer: &bearer,
            delegates: &self.delegates,
            scopes,
            lifetime: LIFETIME,
            hint: &|_| GRANT_HINT.to_owned(),
        };
        Ok(generate_access_token(http, ask).await?)
    }

    fn service_account(&self) -> Option<String> {
        Some(self.target.clone())
    }

    /// The impersonating credential calls `signJwt` on the target, as google-auth does: the
    /// target needs no Token Creator role on itself (a self-grant security tools flag).
    fn signs_jwt_as(&self) -> Option<Arc<dyn TokenSource>> {
        Some(self.source.clone())
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
            "service account {} impersonated{through} ({}) with the {}",
            self.target,
            self.origin,
            self.source.describe()
        )
    }

    fn why(&self) -> String {
        format!("impersonation is asked for ({})", self.origin)
    }

    fn status(&self, _: Option<&str>) -> String {
        super::source::account_line(Some(&self.target)) + SCOPES_PER_RUN
    }
}

/// Keyless domain-wide delegation of the service account `email`: IAM Credentials signs its
/// delegation JWTs, called with `caller`'s token (the account itself: it needs the Token
/// Creator role on itself).
pub struct SignsJwt {
    pub email: String,
    pub caller: Authorizer,
}

impl Delegator for SignsJwt {
    fn acting_as(&self, subject: &str) -> Arc<dyn TokenSource> {
        Arc::new(Delegated {
            email: self.email.clone(),
            subject: subject.to_owned(),
            caller: self.caller.clone(),
        })
    }
}

/// `email` acting as `subject`: a JWT signed by IAM, exchanged at the token endpoint.
struct Delegated {
    email: String,
    subject: String,
    caller: Authorizer,
}

#[async_trait::async_trait]
impl TokenSource for Delegated {
    async fn fetch(&self, http: &Http, scopes: &[String]) -> Result<Grant, AuthError> {
        let (email, subject) = (&self.email, &self.subject);
        let token_uri = format!("{}token", crate::endpoints::of(crate::endpoints::OAUTH2));
        let iat = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = json!({
            "iss": email,
            "sub": subject,
            "scope": scopes.join(" "),
            "aud": token_uri,
            "iat": iat,
            "exp": iat + 3600,
        });
        let assertion = sign_jwt(http, &self.caller, email, &claims).await?;
        super::oauth::jwt_grant(
            &http.client,
            &token_uri,
            &assertion,
            http.timeout,
            &http.retry,
        )
        .await
        .map_err(|e| match e {
            super::oauth::OAuthError::InvalidGrant { description } => AuthError::Token(format!(
                "the token endpoint refused {email} acting as {} (invalid_grant: \
                 {description}); give the service account's client ID domain-wide \
                 delegation of these scopes in the Admin console",
                crate::redact::quote(subject)
            )),
            other => AuthError::Token(other.to_string()),
        })
    }

    fn acting_as(&self) -> Option<&str> {
        Some(&self.subject)
    }

    fn describe(&self) -> String {
        format!(
            "service account {} acting as {} (keyless domain-wide delegation)",
            self.email,
            crate::redact::quote(&self.subject)
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
    let body = json!({ "payload": claims.to_string() });
    let answer = call(http, &link, &url, &token, body, &|_| GRANT_HINT.to_owned()).await?;
    let Some(signed) = answer["signedJwt"].as_str().map(str::to_owned) else {
        return Err(ChainError::new(&link, "answered no signedJwt", GRANT_HINT));
    };
    crate::redact::register(&signed);
    Ok(signed)
}
