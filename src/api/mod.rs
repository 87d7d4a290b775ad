//! Calling a method: building its requests ([`request`]), following its pages ([`paginate`]),
//! and sending one page request with credentials ([`ApiClient`]).

pub mod fields;
pub mod paginate;
pub mod request;

use std::sync::Arc;
use std::time::Duration;

use http::{header, Request, StatusCode, Uri};
use serde_json::Value;

use crate::auth::{AuthError, Authorizer};
use crate::counters::Counters;
use crate::error::Failure;
use crate::http::limits::Limits;
use crate::http::retry::{self, RetryPolicy, Verdict};
use crate::http::{self as gh, GoogleError, HyperClient};
use crate::quota::{Governor, QuotaSettings};
use crate::redact::Quoted;
pub use fields::FieldMask;
pub use paginate::{
    ApiNext, ApiPaging, Cursor, CursorState, OffsetEnd, OffsetPaging, PageNumberPaging, Pagination,
    PaginationError, RequestField, TOTAL_FIELDS,
};
pub use request::{expand_path, RequestSpec, RequestTemplate, ValueKind, ValueRule};

/// Why a page could not be fetched. Every variant displays as one line without secrets; the
/// input it quotes (URLs, Google's words) is [`Quoted`], so that no message prints it whole.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] gh::HttpError),
    #[error("HTTP {} {google} [{method} {url}]", .status.as_u16())]
    Status {
        status: StatusCode,
        google: GoogleError,
        method: http::Method,
        url: Quoted,
    },
    #[error(
        "the response of {url} is not a page of JSON records: {}",
        crate::records::json_error(source)
    )]
    NotJson {
        url: Quoted,
        #[source]
        source: serde_json::Error,
    },
    #[error("HTTP {} with an empty body [{method} {url}]: a page of records was expected", .status.as_u16())]
    EmptyBody {
        status: StatusCode,
        method: http::Method,
        url: Quoted,
    },
    #[error("HTTP 200 with an error in its body: {google} [{method} {url}]")]
    ErrorInBody {
        google: GoogleError,
        method: http::Method,
        url: Quoted,
    },
    #[error("the response of {url} is not a page of records: {why}")]
    BadPage { url: Quoted, why: String },
    #[error(
        "refusing to send a bearer token over plain http to {url}: use https ({})",
        gh::PLAIN_HTTP_RULE
    )]
    InsecureBearer { url: Quoted },
    #[error("invalid request URL {url:?}")]
    BadUrl { url: Quoted },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("HTTP {} {google} [{method} {url}] — a quota wall, not a passing error: the API's quota is used up until it resets (or is raised in the Google Cloud console)", .status.as_u16())]
    Quota {
        status: StatusCode,
        google: GoogleError,
        method: http::Method,
        url: Quoted,
    },
    /// Google's refusal (a [`ApiError::Status`]) of a token granted none of the method's scopes.
    #[error("{refused} — the access token was granted none of the scopes {accepts}; log in again with `gscrape auth login` (it asks for the scopes your queries need), or give a token granted one of them")]
    MissingScope {
        refused: Box<ApiError>,
        accepts: Arc<Accepts>,
    },
    /// Google's refusal of a user credential's call that names no quota project (user ADC).
    #[error("{refused} — this API bills a project for a user's calls: name one with --quota-project PROJECT, GOOGLE_CLOUD_QUOTA_PROJECT, or `quota_project_id` in the credential file (`gcloud auth application-default set-quota-project PROJECT`)")]
    NeedsQuotaProject { refused: Box<ApiError> },
    /// The quota governor would not send it: a budget spent, or a quota that stayed refused.
    #[error(transparent)]
    QuotaGovernor(#[from] crate::quota::QuotaError),
    #[error("{source} (gave up after {retries} {})", if *.retries == 1 { "retry" } else { "retries" })]
    GaveUp {
        retries: u32,
        #[source]
        source: Box<ApiError>,
    },
}

impl ApiError {
    /// What kind of failure this is (for the exit code and the summary).
    pub fn kind(&self) -> Failure {
        match self {
            ApiError::Quota { .. } | ApiError::QuotaGovernor(_) => Failure::QuotaWall,
            ApiError::Auth(err) => err.kind(),
            ApiError::MissingScope { .. } | ApiError::NeedsQuotaProject { .. } => Failure::Auth,
            ApiError::Status { status, .. } if *status == StatusCode::UNAUTHORIZED => Failure::Auth,
            ApiError::InsecureBearer { .. } | ApiError::BadUrl { .. } => Failure::BadInput,
            ApiError::GaveUp { source, .. } => source.kind(),
            ApiError::Http(_)
            | ApiError::Status { .. }
            | ApiError::NotJson { .. }
            | ApiError::EmptyBody { .. }
            | ApiError::ErrorInBody { .. }
            | ApiError::BadPage { .. } => Failure::Remote,
        }
    }
}

/// Sends API requests: credentials from an [`Authorizer`], the run's shared [`Limits`], and
/// retries by the [`RetryPolicy`].
#[derive(Clone)]
pub struct ApiClient {
    http: HyperClient,
    timeout: Duration,
    retry: RetryPolicy,
    limits: Arc<Limits>,
    governor: Arc<Governor>,
}

/// Who a request is for: its credentials, its API (for the rate limit), its counters, and
/// the scopes its method accepts (named when Google says the token has none of them).
/// Cheap to clone, so that a page can be fetched ahead by another task.
#[derive(Clone)]
pub struct Call {
    pub auth: Authorizer,
    pub api: Arc<str>,
    pub counters: Arc<Counters>,
    pub accepts: Arc<Accepts>,
    /// What each request costs of the quota, and what else it draws on.
    pub quota: crate::quota::Tag,
}

/// A method and the OAuth scopes it accepts, from its Discovery document; displayed as
/// `drive.files.list accepts: https://www.googleapis.com/auth/drive, ...`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepts {
    pub method: String,
    pub scopes: Vec<String>,
}

impl Accepts {
    pub fn of(method: &crate::discovery::Method) -> Accepts {
        Accepts {
            method: method.id.clone(),
            scopes: method.scopes.clone(),
        }
    }
}

impl std::fmt::Display for Accepts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scopes.as_slice() {
            [] => write!(f, "of {} (its document lists none)", self.method),
            scopes => write!(f, "{} accepts: {}", self.method, scopes.join(", ")),
        }
    }
}

impl ApiClient {
    pub fn new(
        http: HyperClient,
        timeout: Duration,
        retry: RetryPolicy,
        limits: Arc<Limits>,
    ) -> Self {
        ApiClient {
            http,
            timeout,
            retry,
            limits,
            governor: Arc::new(Governor::new(QuotaSettings::default())),
        }
    }

    /// With the run's quota governor.
    pub fn with_governor(self, governor: Arc<Governor>) -> Self {
        ApiClient { governor, ..self }
    }

    /// The run's quota governor.
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// Fetches one page (its JSON text; an empty body is `{}`). Transient failures are retried
    /// with backoff; a 401 is answered once with a refreshed token.
    pub async fn fetch(&self, spec: &RequestSpec, call: &Call) -> Result<Body, ApiError> {
        let mut retries = 0;
        let mut refreshed = false;
        let mut quota =
            self.governor
                .request(&call.api, call.auth.acting_as(), &call.quota, &call.counters);
        loop {
            quota.admit().await?;
            let failure = match self.fetch_once(spec, call).await {
                Ok(page) => {
                    quota.passed(&page.bytes);
                    return Ok(page);
                }
                Err(RateRefused {
                    refusal,
                    retry_after,
                    error,
                }) => {
                    tracing::debug!("{error}; waiting for the quota");
                    quota.refused(refusal, retry_after)?;
                    continue;
                }
                Err(Rejected(token)) if !refreshed && call.auth.reject(&token).await => {
                    tracing::info!("access token rejected (401); refreshing it and retrying");
                    refreshed = true;
                    continue;
                }
                Err(Rejected(_)) => return Err(self.unauthorized(spec)),
                Err(Transient { error, retry_after }) if retries < self.retry.max_retries => {
                    let delay = self.retry.delay(retries, retry_after);
                    tracing::info!("{error}; retrying in {} ms", delay.as_millis());
                    retries += 1;
                    call.counters.retry();
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err(Transient { error, .. }) => error,
                Err(Failed(error)) => error,
            };
            return Err(if retries > 0 {
                ApiError::GaveUp {
                    retries,
                    source: Box::new(failure),
                }
            } else {
                failure
            });
        }
    }

    /// The run's retry policy, for callers with a retry loop of their own (an upload, whose
    /// statuses mean more than success or failure).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Sends one request with `call`'s credentials (bearer, quota project) under the run's
    /// limits and returns the response whatever its status, headers and all: for protocols
    /// that [`ApiClient::fetch`] does not speak (an upload's `308` and `Location`). No retry:
    /// the caller decides, with [`ApiClient::retry_policy`] and [`ApiClient::refusal`].
    pub async fn send_once(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(http::HeaderName, String)],
        body: String,
        call: &Call,
    ) -> Result<gh::Response, ApiError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ApiError::BadUrl { url: url.into() })?;
        let shown = gh::shown_url(&uri);
        if !gh::may_carry_bearer(&uri) {
            return Err(ApiError::InsecureBearer { url: shown.into() });
        }
        let mut builder = Request::builder().method(method.clone()).uri(uri);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        if let Some(token) = call.auth.access_token().await?.as_deref() {
            let value = gh::bearer_header(token).ok_or_else(|| {
                ApiError::Auth(AuthError::Token(
                    "the token endpoint gave a token with characters a header cannot carry"
                        .to_owned(),
                ))
            })?;
            builder = builder.header(header::AUTHORIZATION, value);
        }
        if let Some(project) = call.auth.quota_project() {
            builder = builder.header("x-goog-user-project", project);
        }
        let request = builder.body(body).map_err(|_| ApiError::BadUrl {
            url: shown.as_str().into(),
        })?;
        let permit = self.limits.acquire(&call.api).await;
        tracing::debug!("{method} {shown}");
        call.counters.request();
        let response = gh::send(&self.http, request, self.timeout).await;
        drop(permit);
        Ok(response?)
    }

    /// The error of a response that is not a success, as [`ApiClient::fetch`] would give it,
    /// and whether another try may succeed (a 429, a 5xx).
    pub fn refusal(
        response: &gh::Response,
        method: &http::Method,
        url: &str,
        call: &Call,
    ) -> (ApiError, bool) {
        let google = google_error(&response.body);
        let status = response.status;
        let url = Quoted::from(
            url.parse::<Uri>()
                .map(|u| gh::shown_url(&u))
                .unwrap_or_default(),
        );
        let refused = ApiError::Status {
            status,
            google: google.clone(),
            method: method.clone(),
            url: url.clone(),
        };
        match retry::classify(status, &google) {
            Verdict::Retry => (refused, true),
            Verdict::QuotaWall => (
                ApiError::Quota {
                    status,
                    google,
                    method: method.clone(),
                    url,
                },
                false,
            ),
            Verdict::Fatal if lacks_scope(status, &google, &response.body) => (
                ApiError::MissingScope {
                    refused: Box::new(refused),
                    accepts: call.accepts.clone(),
                },
                false,
            ),
            Verdict::Fatal => (refused, false),
        }
    }

    fn unauthorized(&self, spec: &RequestSpec) -> ApiError {
        let url = spec
            .full_url()
            .parse::<Uri>()
            .map(|u| gh::shown_url(&u))
            .unwrap_or_default()
            .into();
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

    async fn fetch_once(&self, spec: &RequestSpec, call: &Call) -> Result<Body, Attempt> {
        let auth = &call.auth;
        let mut spec = std::borrow::Cow::Borrowed(spec);
        if let Some(key) = auth.api_key() {
            spec.to_mut().set_query("key", key.to_owned());
        }
        let url = spec.full_url();
        let uri: Uri = url.parse().map_err(|_| ApiError::BadUrl {
            url: url.as_str().into(),
        })?;
        let shown = gh::shown_url(&uri);
        if !gh::may_carry_bearer(&uri) {
            return Err(ApiError::InsecureBearer { url: shown.into() }.into());
        }
        let mut builder = Request::builder()
            .method(spec.http_method.clone())
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        let token = auth.access_token().await.map_err(ApiError::from)?;
        if let Some(token) = token.as_deref() {
            // A token a header cannot carry must not become a request without credentials.
            let value = gh::bearer_header(token).ok_or_else(|| {
                ApiError::Auth(AuthError::Token(
                    "the token endpoint gave a token with characters a header cannot carry"
                        .to_owned(),
                ))
            })?;
            builder = builder.header(header::AUTHORIZATION, value);
        }
        if let Some(project) = auth.quota_project() {
            builder = builder.header("x-goog-user-project", project);
        }
        let body = match &spec.body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                body.to_string()
            }
            None => String::new(),
        };
        let request = builder.body(body).map_err(|_| ApiError::BadUrl {
            url: shown.as_str().into(),
        })?;
        let permit = self.limits.acquire(&call.api).await;
        tracing::debug!("{} {shown}", spec.http_method);
        call.counters.request();
        let response = gh::send(&self.http, request, self.timeout).await;
        drop(permit);
        let response = response.map_err(|error| {
            if error.is_transient() {
                Transient {
                    error: error.into(),
                    retry_after: None,
                }
            } else {
                Failed(error.into())
            }
        })?;
        if response.status == StatusCode::UNAUTHORIZED {
            if let Some(token) = token {
                return Err(Rejected(token));
            }
        }
        if !response.status.is_success() {
            let google = google_error(&response.body);
            let verdict = retry::classify(response.status, &google);
            let (status, method, url) = (
                response.status,
                spec.http_method.clone(),
                Quoted::from(shown),
            );
            if verdict == Verdict::Retry {
                if let Some(refusal) = crate::quota::refusal_of(status, &google) {
                    return Err(RateRefused {
                        refusal,
                        retry_after: retry::retry_after(&response.headers),
                        error: ApiError::Status {
                            status,
                            google,
                            method,
                            url,
                        },
                    });
                }
            }
            return Err(match verdict {
                Verdict::Retry => Transient {
                    error: ApiError::Status {
                        status,
                        google,
                        method,
                        url,
                    },
                    retry_after: retry::retry_after(&response.headers),
                },
                Verdict::QuotaWall => Failed(ApiError::Quota {
                    status,
                    google,
                    method,
                    url,
                }),
                Verdict::Fatal if lacks_scope(status, &google, &response.body) => {
                    Failed(ApiError::MissingScope {
                        refused: Box::new(ApiError::Status {
                            status,
                            google,
                            method,
                            url,
                        }),
                        accepts: call.accepts.clone(),
                    })
                }
                Verdict::Fatal
                    if status == StatusCode::FORBIDDEN
                        && google.message.contains("requires a quota project") =>
                {
                    Failed(ApiError::NeedsQuotaProject {
                        refused: Box::new(ApiError::Status {
                            status,
                            google,
                            method,
                            url,
                        }),
                    })
                }
                Verdict::Fatal => Failed(ApiError::Status {
                    status,
                    google,
                    method,
                    url,
                }),
            });
        }
        let (status, method) = (response.status, spec.http_method.clone());
        if status == StatusCode::NO_CONTENT || response.body.iter().all(u8::is_ascii_whitespace) {
            // A page lost on the way (a proxy, a backend hiccup): worth another try.
            return Err(Transient {
                error: ApiError::EmptyBody {
                    status,
                    method,
                    url: shown.into(),
                },
                retry_after: None,
            });
        }
        if is_error_envelope(&response.body) {
            return Err(Failed(ApiError::ErrorInBody {
                google: google_error(&response.body),
                method,
                url: shown.into(),
            }));
        }
        Ok(Body {
            bytes: response.body,
            url: shown,
        })
    }
}

/// Google's error in `body`, its labels quoted as messages quote input (its message is cut
/// where it is shown, by `GoogleError`'s `Display`).
fn google_error(body: &[u8]) -> GoogleError {
    let mut google = GoogleError::from_body(body);
    let quoted = |label: String| crate::redact::quote(&label).to_string();
    google.status = google.status.map(quoted);
    google.reason = google.reason.map(quoted);
    google
}

/// True for Google's refusal of a token granted none of the scopes the method accepts: a 403
/// whose `ErrorInfo` says `ACCESS_TOKEN_SCOPE_INSUFFICIENT`, or whose message says so as the
/// older APIs do ("Request had insufficient authentication scopes.", "Insufficient
/// Permission" with the reason `insufficientPermissions`).
fn lacks_scope(status: StatusCode, google: &GoogleError, body: &[u8]) -> bool {
    if status != StatusCode::FORBIDDEN {
        return false;
    }
    let message = google.message.to_ascii_lowercase();
    let said = message.contains("insufficient authentication scopes")
        || (google.reason.as_deref() == Some("insufficientPermissions")
            && message.trim_end_matches('.') == "insufficient permission");
    said || serde_json::from_slice::<Value>(body).is_ok_and(|body| {
        body["error"]["details"].as_array().is_some_and(|details| {
            details
                .iter()
                .any(|d| d["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
        })
    })
}

/// True for a body that is Google's error JSON (`{"error": {...}}`), which some servers send
/// with a 200: read as a page, it would be an empty one.
fn is_error_envelope(body: &[u8]) -> bool {
    let text = body.trim_ascii_start();
    let Some(rest) = text.strip_prefix(b"{") else {
        return false;
    };
    rest.trim_ascii_start().starts_with(b"\"error\"")
        && serde_json::from_slice::<serde_json::Map<String, Value>>(body)
            .is_ok_and(|page| page.len() == 1 && page.get("error").is_some_and(Value::is_object))
}

/// A successful response: JSON text, parsed by whoever reads it.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: bytes::Bytes,
    /// The request's URL (secrets redacted), for messages.
    pub url: String,
}

impl Body {
    /// The whole response as a JSON tree.
    pub fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.bytes).map_err(|source| self.not_json(source))
    }

    /// The body as text (JSON is UTF-8), checked once for the whole page, with SIMD: pages are
    /// hundreds of KiB and this check touches every byte.
    pub fn text(&self) -> Result<&str, ApiError> {
        simdutf8::basic::from_utf8(&self.bytes).map_err(|_| ApiError::NotJson {
            url: self.url.as_str().into(),
            source: serde::de::Error::custom("the response is not UTF-8"),
        })
    }

    /// The error for a page whose records are not what a page of records holds.
    pub fn bad_page(&self, why: String) -> ApiError {
        ApiError::BadPage {
            url: self.url.as_str().into(),
            why,
        }
    }

    /// The error for a response that is not the JSON expected.
    pub fn not_json(&self, source: serde_json::Error) -> ApiError {
        ApiError::NotJson {
            url: self.url.as_str().into(),
            source,
        }
    }
}

/// How one attempt failed: the token was rejected (a refresh may help), a transient failure
/// (a retry may help), or for good.
enum Attempt {
    Rejected(String),
    Transient {
        error: ApiError,
        retry_after: Option<Duration>,
    },
    Failed(ApiError),
    /// Refused for rate: waited out by the quota governor, not retried.
    RateRefused {
        refusal: crate::quota::Refusal,
        retry_after: Option<Duration>,
        error: ApiError,
    },
}
use Attempt::{Failed, RateRefused, Rejected, Transient};

impl From<ApiError> for Attempt {
    fn from(err: ApiError) -> Self {
        Failed(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_without_the_methods_scope_is_told_from_other_refusals() {
        let lacks = |status: u16, body: &str| {
            let status = StatusCode::from_u16(status).unwrap();
            lacks_scope(status, &google_error(body.as_bytes()), body.as_bytes())
        };
        let error = |status: &str, reason: &str, message: &str| {
            format!(
                r#"{{"error": {{"code": 403, "status": "{status}", "message": "{message}",
                    "errors": [{{"reason": "{reason}", "message": "{message}"}}]}}}}"#
            )
        };
        assert!(lacks(
            403,
            &error(
                "PERMISSION_DENIED",
                "insufficientPermissions",
                "Request had insufficient authentication scopes."
            )
        ));
        assert!(lacks(
            403,
            &error("", "insufficientPermissions", "Insufficient Permission")
        ));
        let details = r#"{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "Denied.",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                         "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT"}]}}"#;
        assert!(lacks(403, details));
        assert!(!lacks(400, details), "a 403 only");
        assert!(!lacks(
            403,
            &error(
                "PERMISSION_DENIED",
                "insufficientFilePermissions",
                "The user does not have sufficient permissions for file f1."
            )
        ));
        assert!(!lacks(
            403,
            &error(
                "",
                "forbidden",
                "Not Authorized to access this resource/api"
            )
        ));
    }
}
