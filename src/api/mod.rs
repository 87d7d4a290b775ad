//! Calling a method: building its requests ([`request`]), following its pages ([`paginate`]),
//! and sending one page request with credentials ([`ApiClient`]).

pub mod paginate;
pub mod request;

use std::time::Duration;

use http::{header, Request, StatusCode, Uri};
use serde_json::Value;

use crate::auth::{AuthError, Authorizer};
use crate::http::{self as gh, GoogleError, HyperClient};
pub use paginate::{Cursor, Pagination, PaginationError, TokenField};
pub use request::{expand_path, RequestSpec};

/// Why a page could not be fetched. Every variant displays as one line without secrets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] gh::HttpError),
    #[error("HTTP {} {google} [{method} {url}]", .status.as_u16())]
    Status {
        status: StatusCode,
        google: GoogleError,
        method: http::Method,
        url: String,
    },
    #[error("the response of {url} is not JSON: {source}")]
    NotJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("refusing to send a bearer token over plain http to {url}: use https (plain http is allowed only to 127.0.0.1, ::1 or localhost)")]
    InsecureBearer { url: String },
    #[error("invalid request URL {url:?}")]
    BadUrl { url: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Sends API requests, with credentials from an [`Authorizer`].
#[derive(Clone)]
pub struct ApiClient {
    http: HyperClient,
    timeout: Duration,
}

impl ApiClient {
    pub fn new(http: HyperClient, timeout: Duration) -> Self {
        ApiClient { http, timeout }
    }

    /// Fetches one page and parses it as JSON (an empty body is `{}`). A 401 is answered once
    /// with a refreshed token and the same request.
    pub async fn fetch(&self, spec: &RequestSpec, auth: &Authorizer) -> Result<Value, ApiError> {
        match self.fetch_once(spec, auth).await {
            Err(Rejected(token)) if auth.reject(&token).await => {
                tracing::info!("access token rejected (401); refreshing it and retrying");
                match self.fetch_once(spec, auth).await {
                    Err(Rejected(_)) => Err(self.unauthorized(spec)),
                    Err(Failed(err)) => Err(err),
                    Ok(page) => Ok(page),
                }
            }
            Err(Rejected(_)) => Err(self.unauthorized(spec)),
            Err(Failed(err)) => Err(err),
            Ok(page) => Ok(page),
        }
    }

    fn unauthorized(&self, spec: &RequestSpec) -> ApiError {
        let url = spec
            .full_url()
            .parse::<Uri>()
            .map(|u| gh::redact_url(&u))
            .unwrap_or_default();
        ApiError::Status {
            status: StatusCode::UNAUTHORIZED,
            google: GoogleError {
                status: Some("UNAUTHENTICATED".to_owned()),
                reason: None,
                message:
                    "the access token was rejected; check the credential with `gscrape auth status`"
                        .to_owned(),
            },
            method: spec.http_method.clone(),
            url,
        }
    }

    async fn fetch_once(&self, spec: &RequestSpec, auth: &Authorizer) -> Result<Value, Attempt> {
        let mut spec = std::borrow::Cow::Borrowed(spec);
        if let Some(key) = auth.api_key() {
            spec.to_mut().set_query("key", key.to_owned());
        }
        let url = spec.full_url();
        let uri: Uri = url
            .parse()
            .map_err(|_| ApiError::BadUrl { url: url.clone() })?;
        let shown = gh::redact_url(&uri);
        if !gh::may_carry_bearer(&uri) {
            return Err(ApiError::InsecureBearer { url: shown }.into());
        }
        let mut builder = Request::builder()
            .method(spec.http_method.clone())
            .uri(uri)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("gscrape/", env!("CARGO_PKG_VERSION")),
            );
        let token = auth.access_token().await.map_err(ApiError::from)?;
        if let Some(value) = token.as_deref().and_then(gh::bearer_header) {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        let body = match &spec.body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                body.to_string()
            }
            None => String::new(),
        };
        let request = builder
            .body(body)
            .map_err(|_| ApiError::BadUrl { url: shown.clone() })?;
        tracing::debug!("{} {}", spec.http_method, shown);
        let response = gh::send(&self.http, request, self.timeout)
            .await
            .map_err(ApiError::from)?;
        if response.status == StatusCode::UNAUTHORIZED {
            if let Some(token) = token {
                return Err(Rejected(token));
            }
        }
        if !response.status.is_success() {
            return Err(ApiError::Status {
                status: response.status,
                google: GoogleError::from_body(&response.body),
                method: spec.http_method.clone(),
                url: shown,
            }
            .into());
        }
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(&response.body)
            .map_err(|source| ApiError::NotJson { url: shown, source }.into())
    }
}

/// How one attempt failed: the token was rejected (a refresh may help), or for good.
enum Attempt {
    Rejected(String),
    Failed(ApiError),
}
use Attempt::{Failed, Rejected};

impl From<ApiError> for Attempt {
    fn from(err: ApiError) -> Self {
        Failed(err)
    }
}
