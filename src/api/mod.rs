//! Calling a method: building its requests ([`request`]), following its pages ([`paginate`]),
//! and the one call layer every request to Google goes through ([`ApiClient`]: credentials,
//! the run's limits, the one retry loop, one reading of Google's refusals), Google's resumable
//! uploads among them ([`upload`]).

pub mod fields;
pub mod paginate;
pub mod request;
pub mod upload;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use serde_json::Value;

use crate::auth::{AuthError, Authorizer};
use crate::counters::Counters;
use crate::error::Failure;
use crate::http::limits::Limits;
use crate::http::retry::{self, RetryPolicy, Try, Verdict};
use crate::http::{self as gh, GoogleError, HyperClient};
use crate::quota::{Governor, QuotaSettings};
use crate::redact::Quoted;
pub use fields::FieldMask;
pub use paginate::{
    ApiNext, ApiPaging, Cursor, CursorState, OffsetEnd, OffsetPaging, PageNumberPaging, Pagination,
    PaginationError, RequestField, TOTAL_FIELDS,
};
pub use request::{RequestSpec, RequestTemplate, ValueKind, ValueRule};

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
            ApiError::Status { status, google, .. } => kind_of_status(*status, google),
            ApiError::InsecureBearer { .. } | ApiError::BadUrl { .. } => Failure::BadInput,
            ApiError::GaveUp { source, .. } => source.kind(),
            ApiError::Http(_)
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

/// One request to send (and to send again on a retry), without its credentials: those are
/// added at each try, so that a refreshed token is the one sent.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: http::Method,
    pub url: String,
    pub headers: Vec<(http::HeaderName, String)>,
    pub body: Bytes,
}

impl Outgoing {
    pub fn new(method: http::Method, url: impl Into<String>) -> Self {
        Outgoing {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn header(mut self, name: http::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

/// The one table from Google's refusal to a kind of failure. A 401 or 403 that is not a rate
/// or quota limit is the credential refused (a person must grant access); a 404 is Remote:
/// the name may be right and the resource gone, which only the caller can tell.
pub fn kind_of_status(status: StatusCode, google: &GoogleError) -> Failure {
    match retry::classify(status, google) {
        Verdict::QuotaWall => Failure::QuotaWall,
        Verdict::Retry => Failure::Remote,
        Verdict::Fatal if matches!(status.as_u16(), 401 | 403) => Failure::Auth,
        Verdict::Fatal => Failure::Remote,
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
    /// with backoff, an empty body among them; a 401 is answered once with a refreshed token.
    pub async fn fetch(&self, spec: &RequestSpec, call: &Call) -> Result<Body, ApiError> {
        let mut spec = std::borrow::Cow::Borrowed(spec);
        if let Some(key) = call.auth.api_key() {
            spec.to_mut().set_query("key", key.to_owned());
        }
        let mut out = Outgoing::new(spec.http_method.clone(), spec.full_url())
            .header(header::ACCEPT, "application/json");
        if let Some(body) = &spec.body {
            out = out
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let method = &out.method;
        let judge = |response: gh::Response, shown: &str, bearer: bool| {
            if response.status == StatusCode::UNAUTHORIZED && bearer {
                return Try::Done(Err(unauthorized(method, shown)));
            }
            if !response.status.is_success() {
                return refused(&response, method, shown, call);
            }
            let status = response.status;
            if status == StatusCode::NO_CONTENT || response.body.iter().all(u8::is_ascii_whitespace)
            {
                // A page lost on the way (a proxy, a backend hiccup): worth another try.
                let error = ApiError::EmptyBody {
                    status,
                    method: method.clone(),
                    url: shown.into(),
                };
                return Try::Transient {
                    why: error.to_string(),
                    last: Err(error),
                    retry_after: None,
                };
            }
            if is_error_envelope(&response.body) {
                return Try::Done(Err(ApiError::ErrorInBody {
                    google: google_error(&response.body),
                    method: method.clone(),
                    url: shown.into(),
                }));
            }
            Try::Done(Ok(Body {
                bytes: response.body,
                url: shown.to_owned(),
            }))
        };
        let (result, retries) = self.tries(&out, call, &self.retry, judge).await;
        gave_up(result, retries)
    }

    /// Sends `out` with `call`'s credentials, retrying transient failures (a dropped
    /// connection, 429, 5xx) by the run's policy and a 401 once with a refreshed token. A
    /// success, or a status in `expect` (a protocol's `308`, a `404` that means "absent", a
    /// `409`), is the caller's to read; any other is an [`ApiError`].
    pub async fn send(
        &self,
        out: &Outgoing,
        call: &Call,
        expect: &[StatusCode],
    ) -> Result<gh::Response, ApiError> {
        let judge = |response: gh::Response, shown: &str, _bearer: bool| {
            if response.status.is_success() || expect.contains(&response.status) {
                Try::Done(Ok(response))
            } else {
                refused(&response, &out.method, shown, call)
            }
        };
        let (result, retries) = self.tries(out, call, &self.retry, judge).await;
        gave_up(result, retries)
    }

    /// [`ApiClient::send`] that returns the last answer whatever its status (a transient one
    /// when the tries ran out), with the retries before it: for callers that word refusals
    /// themselves (Cloud Storage). At most `max_retries` retries.
    pub async fn exchange(
        &self,
        out: &Outgoing,
        call: &Call,
        max_retries: u32,
    ) -> (Result<gh::Response, ApiError>, u32) {
        let policy = RetryPolicy {
            max_retries,
            ..self.retry.clone()
        };
        let judge = |response: gh::Response, shown: &str, _bearer: bool| {
            let status = response.status;
            let google = GoogleError::from_body(&response.body);
            if status.is_success()
                || status == RESUME_INCOMPLETE
                || retry::classify(status, &google) != Verdict::Retry
            {
                return Try::Done(Ok(response));
            }
            Try::Transient {
                why: format!("{} {shown} answered HTTP {}", out.method, status.as_u16()),
                retry_after: retry::retry_after(&response.headers),
                last: Ok(response),
            }
        };
        self.tries(out, call, &policy, judge).await
    }

    /// The error of `response` (not a success), as [`ApiClient::send`] would give it.
    pub fn refusal(
        response: &gh::Response,
        method: &http::Method,
        url: &str,
        call: &Call,
    ) -> ApiError {
        let shown = url
            .parse::<Uri>()
            .map(|u| gh::shown_url(&u))
            .unwrap_or_default();
        match refused::<()>(response, method, &shown, call) {
            Try::Done(Err(error))
            | Try::Transient {
                last: Err(error), ..
            } => error,
            _ => unreachable!("a refusal is an error"),
        }
    }

    /// The run's retry policy (its pacing, for a job's polls).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Every try of `out` under `policy`, through the one retry loop ([`retry::retrying`]):
    /// a failure to connect is transient; a 401 to a token is answered once with a fresh one;
    /// any other answer is `judge`d (the response, its URL as messages show it, and whether a
    /// token was sent).
    async fn tries<T>(
        &self,
        out: &Outgoing,
        call: &Call,
        policy: &RetryPolicy,
        judge: impl Fn(gh::Response, &str, bool) -> Try<Result<T, ApiError>>,
    ) -> (Result<T, ApiError>, u32) {
        let Ok(uri) = out.url.parse::<Uri>() else {
            return (
                Err(ApiError::BadUrl {
                    url: out.url.as_str().into(),
                }),
                0,
            );
        };
        let shown = gh::shown_url(&uri);
        if !gh::may_carry_bearer(&uri) {
            return (Err(ApiError::InsecureBearer { url: shown.into() }), 0);
        }
        let refreshed = std::sync::atomic::AtomicBool::new(false);
        let quota = self.governor.request(
            &call.api,
            call.auth.acting_as(),
            &call.quota,
            &call.counters,
        );
        let (uri, shown, refreshed, judge) = (&uri, shown.as_str(), &refreshed, &judge);
        let quota = &quota;
        let attempt = move || async move {
            // The request's quota units, waited for in its buckets' lines.
            if let Err(err) = quota.admit().await {
                return Try::Done(Err(err.into()));
            }
            let token = match call.auth.access_token().await {
                Ok(token) => token,
                Err(err) => return Try::Done(Err(err.into())),
            };
            let request = match self.request(out, uri, token.as_deref(), call) {
                Ok(request) => request,
                Err(err) => return Try::Done(Err(err)),
            };
            match self.attempt(request, call).await {
                Err(error) if error.is_transient() => Try::Transient {
                    why: error.to_string(),
                    last: Err(error.into()),
                    retry_after: None,
                },
                Err(error) => Try::Done(Err(error.into())),
                Ok(response) => {
                    if let (StatusCode::UNAUTHORIZED, Some(token)) = (response.status, &token) {
                        if !refreshed.load(Relaxed) && call.auth.reject(token).await {
                            tracing::info!(
                                "access token rejected (401); refreshing it and retrying"
                            );
                            refreshed.store(true, Relaxed);
                            return Try::Again;
                        }
                    }
                    // Refused for rate: waited out in the quota's line, not a retry.
                    if let Some((refusal, retry_after)) = rate_refusal(&response) {
                        tracing::debug!(
                            "{shown} answered HTTP {}: waiting for the quota",
                            response.status.as_u16()
                        );
                        return match quota.refused(refusal, retry_after) {
                            Ok(()) => Try::Again,
                            Err(err) => Try::Done(Err(err.into())),
                        };
                    }
                    if response.status.is_success() {
                        quota.passed(&response.body);
                    }
                    judge(response, shown, token.is_some())
                }
            }
        };
        retry::retrying(policy, attempt, || call.counters.retry()).await
    }

    /// `out` as a request with `token` (a bearer) and the quota project.
    fn request(
        &self,
        out: &Outgoing,
        uri: &Uri,
        token: Option<&str>,
        call: &Call,
    ) -> Result<Request<Bytes>, ApiError> {
        let mut builder = Request::builder()
            .method(out.method.clone())
            .uri(uri.clone());
        for (name, value) in &out.headers {
            builder = builder.header(name, value);
        }
        if let Some(token) = token {
            // A token a header cannot carry must not become a request without credentials.
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
        builder
            .body(out.body.clone())
            .map_err(|_| ApiError::BadUrl {
                url: gh::shown_url(uri).into(),
            })
    }

    /// Every request to Google made through an `ApiClient` passes here, once per try: the
    /// run's limits, the request counted, the exchange.
    async fn attempt(
        &self,
        request: Request<Bytes>,
        call: &Call,
    ) -> Result<gh::Response, gh::HttpError> {
        // The quota governor's part is in `tries`, around every attempt: units before, the
        // answer read after (a refusal for rate, GA4's propertyQuota).
        let permit = self.limits.acquire(&call.api).await;
        tracing::debug!("{} {}", request.method(), gh::shown_url(request.uri()));
        if tracing::enabled!(tracing::Level::DEBUG) {
            log_body(&request);
        }
        call.counters.request();
        let response = gh::send(&self.http, request, self.timeout).await;
        drop(permit);
        response
    }
}

/// `-vv`: a request's JSON body as sent (a GA4 report's date window is in it), up to 64 KiB;
/// other bodies (uploads) by their size. Printed through the redactor, as every line is.
fn log_body(request: &Request<Bytes>) {
    const SHOWN: usize = 64 * 1024;
    let body = request.body();
    if body.is_empty() {
        return;
    }
    let json = (request.headers().get(http::header::CONTENT_TYPE))
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    match std::str::from_utf8(body) {
        Ok(text) if json && body.len() <= SHOWN => tracing::debug!("  body: {text}"),
        _ => tracing::debug!("  body: {} bytes", body.len()),
    }
}

/// A refusal for rate (not a daily quota wall): which limit, and `Retry-After` if given.
fn rate_refusal(response: &gh::Response) -> Option<(crate::quota::Refusal, Option<Duration>)> {
    if response.status.is_success() {
        return None;
    }
    let google = GoogleError::from_body(&response.body);
    if retry::classify(response.status, &google) != Verdict::Retry {
        return None;
    }
    let refusal = crate::quota::refusal_of(response.status, &google)?;
    Some((refusal, retry::retry_after(&response.headers)))
}

/// `308 Resume Incomplete`: an upload session's "go on" (HTTP's 308 by another name).
pub const RESUME_INCOMPLETE: StatusCode = StatusCode::PERMANENT_REDIRECT;

/// `result`, its failure said to have come after `retries` retries.
pub fn gave_up<T>(result: Result<T, ApiError>, retries: u32) -> Result<T, ApiError> {
    result.map_err(|failure| match retries {
        0 => failure,
        retries => ApiError::GaveUp {
            retries,
            source: Box::new(failure),
        },
    })
}

/// A response that is not a success as one try's outcome: the one classification of Google's
/// refusals (a rate limit or 5xx to retry, a quota wall, a missing scope or quota project).
fn refused<T>(
    response: &gh::Response,
    method: &http::Method,
    shown: &str,
    call: &Call,
) -> Try<Result<T, ApiError>> {
    let google = google_error(&response.body);
    let (status, method, url) = (response.status, method.clone(), Quoted::from(shown));
    match retry::classify(status, &google) {
        Verdict::Retry => {
            let error = ApiError::Status {
                status,
                google,
                method,
                url,
            };
            Try::Transient {
                why: error.to_string(),
                last: Err(error),
                retry_after: retry::retry_after(&response.headers),
            }
        }
        Verdict::QuotaWall => Try::Done(Err(ApiError::Quota {
            status,
            google,
            method,
            url,
        })),
        Verdict::Fatal if lacks_scope(status, &google, &response.body) => {
            Try::Done(Err(ApiError::MissingScope {
                refused: Box::new(ApiError::Status {
                    status,
                    google,
                    method,
                    url,
                }),
                accepts: call.accepts.clone(),
            }))
        }
        Verdict::Fatal
            if status == StatusCode::FORBIDDEN
                && google.message.contains("requires a quota project") =>
        {
            Try::Done(Err(ApiError::NeedsQuotaProject {
                refused: Box::new(ApiError::Status {
                    status,
                    google,
                    method,
                    url,
                }),
            }))
        }
        Verdict::Fatal => Try::Done(Err(ApiError::Status {
            status,
            google,
            method,
            url,
        })),
    }
}

/// The error of a token refused again after a refresh (or that cannot be refreshed).
fn unauthorized(method: &http::Method, shown: &str) -> ApiError {
    ApiError::Status {
        status: StatusCode::UNAUTHORIZED,
        google: GoogleError {
            status: Some("UNAUTHENTICATED".to_owned()),
            reason: None,
            message:
                "the access token was rejected; check the credential with `gscrape auth status`"
                    .to_owned(),
        },
        method: method.clone(),
        url: shown.into(),
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
