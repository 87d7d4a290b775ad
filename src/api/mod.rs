//! Calling a method: building its requests ([`request`]), following its pages ([`paginate`]),
//! and sending one page request with credentials ([`ApiClient`]).

pub mod paginate;
pub mod request;

use std::sync::Arc;
use std::time::Duration;

use google_apis_common::GetToken;
use http::{header, Request, StatusCode, Uri};
use serde_json::Value;

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
    #[error("cannot get an access token: {0}")]
    Token(String),
}

/// Sends API requests with the run's credentials.
#[derive(Clone)]
pub struct ApiClient {
    http: HyperClient,
    token: Arc<dyn GetToken>,
    timeout: Duration,
}

impl ApiClient {
    pub fn new(http: HyperClient, token: Arc<dyn GetToken>, timeout: Duration) -> Self {
        ApiClient {
            http,
            token,
            timeout,
        }
    }

    /// Fetches one page and parses it as JSON. An empty body is `{}`.
    pub async fn fetch(&self, spec: &RequestSpec, scopes: &[&str]) -> Result<Value, ApiError> {
        let url = spec.full_url();
        let uri: Uri = url
            .parse()
            .map_err(|_| ApiError::BadUrl { url: url.clone() })?;
        let shown = gh::redact_url(&uri);
        let mut builder = Request::builder()
            .method(spec.http_method.clone())
            .uri(uri.clone())
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("gscrape/", env!("CARGO_PKG_VERSION")),
            );
        let token = self
            .token
            .get_token(scopes)
            .await
            .map_err(|e| ApiError::Token(e.to_string()))?;
        if let Some(token) = token {
            if !gh::may_carry_bearer(&uri) {
                return Err(ApiError::InsecureBearer { url: shown });
            }
            if let Some(value) = gh::bearer_header(&token) {
                builder = builder.header(header::AUTHORIZATION, value);
            }
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
        let response = gh::send(&self.http, request, self.timeout).await?;
        if !response.status.is_success() {
            return Err(ApiError::Status {
                status: response.status,
                google: GoogleError::from_body(&response.body),
                method: spec.http_method.clone(),
                url: shown,
            });
        }
        if response.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(&response.body)
            .map_err(|source| ApiError::NotJson { url: shown, source })
    }
}
