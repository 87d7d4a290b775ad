//! The one HTTP client every request goes through, Google's error JSON turned into one line,
//! the retry policy ([`retry`]) and the shared request limits ([`limits`]).
//!
//! Only this module (and `auth`) touch hyper. Retries are the run engine's concern; this layer
//! sends one request and reads the whole body (a page is bounded; the export is not), inflating
//! gzip as it arrives ([`body`]). Connections go through the environment's proxy ([`proxy`]) and
//! trust the system's CA store plus Mozilla's (webpki-roots).

pub mod body;
mod connector;
pub mod limits;
pub mod proxy;
pub mod retry;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use body::{BodyError, Decoder, MAX_BODY_BYTES};
pub use connector::Connector;
use proxy::{Proxies, ProxyConnector};

/// The one hyper client type of gscrape's requests: API calls, Cloud Storage, Discovery,
/// tokens. Bodies are bytes (an upload's gzip is not text); [`send`] takes text too.
pub type HyperClient = Client<Connector, http_body_util::Full<Bytes>>;

/// The client yup-oauth2's browser login takes (it insists on `String` bodies), over the same
/// connector. It sends neither `Accept-Encoding` nor the gzip User-Agent: yup reads raw bodies
/// and could not inflate a compressed answer.
pub type LoginClient = Client<Connector, String>;

/// The User-Agent of every request [`send`] makes. Google compresses only for clients that
/// send `Accept-Encoding: gzip` *and* a User-Agent containing "gzip".
pub const USER_AGENT: &str = concat!("gscrape/", env!("CARGO_PKG_VERSION"), " (gzip)");

/// The proxy rules [`build_client`] read, for the `Proxy-Authorization` that [`send`] adds to
/// plain-http requests through an authenticating proxy (hyper's client has no hook for a
/// per-request header, and the clients stay hyper's type so that yup-oauth2 can take one).
static PROXIES: OnceLock<Proxies> = OnceLock::new();

/// Why one HTTP exchange produced no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {url}: {}", chain(.source.as_ref()))]
    Connect {
        url: String,
        #[source]
        source: Box<hyper_util::client::legacy::Error>,
    },
    #[error("cannot connect to {url}: the certificate of {host} is signed by an unknown authority (a private CA or a TLS-inspecting proxy?): point SSL_CERT_FILE at its CA certificate (PEM)")]
    UnknownIssuer { url: String, host: String },
    #[error("cannot connect to {url}: the certificate of {host} is refused ({why}); check the address, the system clock, or what answers there")]
    BadCertificate {
        url: String,
        host: String,
        why: String,
    },
    #[error("cannot connect to {url}: {why}")]
    Proxy { url: String, why: String },
    #[error("reading the response of {url} failed: {}", chain(.source))]
    Body {
        url: String,
        #[source]
        source: hyper::Error,
    },
    #[error("the response of {url} is larger than {} MiB once decompressed: stopped reading it so as not to run out of memory (ask for smaller pages, or check what answers at that address)", .cap >> 20)]
    TooLarge { url: String, cap: usize },
    #[error("cannot decode the response of {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: BodyError,
    },
    #[error("no response from {url} within {}s (raise it with --timeout)", .timeout.as_secs())]
    Timeout { url: String, timeout: Duration },
}

impl HttpError {
    /// Whether another try may succeed: not for an untrusted certificate or a body that is
    /// too large or cannot be decoded (the same request gets the same answer).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. } | HttpError::Body { .. } | HttpError::Timeout { .. }
        )
    }
}

/// An error and its causes on one line (`a: b: c`), the way hyper's errors need to be shown.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The failure of a connection that another try would meet again — a certificate refused, a
/// proxy gscrape cannot use — found anywhere in the chain of causes (hyper-rustls hides
/// rustls' error inside an `io::Error`, whose `source` skips it).
fn lasting_failure(
    err: &(dyn std::error::Error + 'static),
    url: &str,
    host: &str,
) -> Option<HttpError> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidCertificate(why)) = err.downcast_ref::<rustls::Error>() {
            return Some(match why {
                rustls::CertificateError::UnknownIssuer => HttpError::UnknownIssuer {
                    url: url.to_owned(),
                    host: host.to_owned(),
                },
                _ => HttpError::BadCertificate {
                    url: url.to_owned(),
                    host: host.to_owned(),
                    why: err.to_string(),
                },
            });
        }
        if let Some(unsupported @ proxy::ProxyError::Unsupported { .. }) =
            err.downcast_ref::<proxy::ProxyError>()
        {
            return Some(HttpError::Proxy {
                url: url.to_owned(),
                why: unsupported.to_string(),
            });
        }
        // hyper-util's `TunnelError` is private; its 407 is known by its text.
        if err.to_string() == "proxy authorization required" {
            return Some(HttpError::Proxy {
                url: url.to_owned(),
                why: "the proxy asks for a user name and password: give them in its URL \
                      (http://USER:PASSWORD@HOST:PORT)"
                    .to_owned(),
            });
        }
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let Some(found) = inner.and_then(|inner| lasting_failure(inner, url, host)) {
            return Some(found);
        }
        next = err.source();
    }
    None
}

/// A complete response.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Builds the shared client: HTTP/1.1 and HTTP/2, TLS on first use ([`Connector`]), through
/// the environment's proxy. The environment is read here, once.
pub fn build_client() -> Result<HyperClient, proxy::ProxyError> {
    build()
}

/// [`build_client`] for yup-oauth2's browser login ([`LoginClient`]).
pub fn build_login_client() -> Result<LoginClient, proxy::ProxyError> {
    build()
}

fn build<B>() -> Result<Client<Connector, B>, proxy::ProxyError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let proxies = Proxies::from_env()?;
    let _ = PROXIES.set(proxies.clone());
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = Connector::new(ProxyConnector::new(http, proxies));
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
}

/// Sends `request` and reads the whole body, all within `timeout`. Every request asks for gzip
/// here, and a gzip answer is inflated while it arrives, up to [`MAX_BODY_BYTES`].
pub async fn send(
    client: &HyperClient,
    request: Request<impl Into<Bytes>>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut request = request.map(|body| http_body_util::Full::new(body.into()));
    // For messages only: made when one is needed.
    let uri = request.uri().clone();
    let url = || shown_url(&uri);
    let headers = request.headers_mut();
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    if let Some(auth) = PROXIES
        .get()
        .and_then(|p| p.authorization_for(request.uri()))
    {
        request
            .headers_mut()
            .insert(header::PROXY_AUTHORIZATION, auth);
    }
    let exchange = async {
        let response = client.request(request).await.map_err(|source| {
            let host = uri.host().unwrap_or_default();
            lasting_failure(&source, &url(), host).unwrap_or_else(|| HttpError::Connect {
                url: url(),
                source: Box::new(source),
            })
        })?;
        let (mut parts, mut body) = response.into_parts();
        let decode = |source: BodyError| match source {
            BodyError::TooLarge(cap) => HttpError::TooLarge { url: url(), cap },
            source => HttpError::Decode { url: url(), source },
        };
        let mut decoder = Decoder::new(parts.headers.get(header::CONTENT_ENCODING), MAX_BODY_BYTES)
            .map_err(decode)?;
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
        {
            decoder.reserve(len);
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| HttpError::Body { url: url(), source })?;
            if let Some(data) = frame.data_ref() {
                decoder.push(data).map_err(decode)?;
            }
        }
        let body = decoder.finish().map_err(decode)?;
        // The headers now describe what the caller gets: the decoded bytes.
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout {
            url: url(),
            timeout,
        }),
    }
}

/// Query parameters that carry a credential.
pub const SECRET_PARAMETERS: &[&str] = &["key", "access_token", "oauth_token"];

/// The URL for messages and logs: query values of secret-bearing parameters are replaced.
pub fn redact_url(uri: &Uri) -> String {
    let text = uri.to_string();
    let Some((base, query)) = text.split_once('?') else {
        return text;
    };
    let secret = |pair: &str| SECRET_PARAMETERS.contains(&pair.split('=').next().unwrap_or(pair));
    if !query.split('&').any(secret) {
        return text;
    }
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMETERS.contains(&name) => format!("{name}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// The URL for messages: redacted, and at most about 200 characters (`fields` can make it
/// long): its start and its end (where the page token is), the middle cut.
pub fn shown_url(uri: &Uri) -> String {
    const HEAD: usize = 140;
    const TAIL: usize = 60;
    let url = redact_url(uri);
    let chars = url.chars().count();
    if chars <= HEAD + TAIL {
        return url;
    }
    let head: String = url.chars().take(HEAD).collect();
    let tail: String = url.chars().skip(chars - TAIL).collect();
    format!("{head}…{tail}")
}

/// True when a bearer token may be sent to `uri`: over https, or plain http to loopback only.
///
/// Plain http to loopback through a proxy elsewhere would hand the secret to that proxy in
/// clear, so it counts only when no proxy or a loopback one carries it.
pub fn may_carry_bearer(uri: &Uri) -> bool {
    match uri.scheme_str() {
        Some("https") => true,
        Some("http") => {
            let proxy = PROXIES.get().and_then(|proxies| proxies.proxy_for(uri));
            uri.host().is_some_and(is_loopback_host)
                && proxy.is_none_or(|proxy| proxy.host().is_some_and(is_loopback_host))
        }
        _ => false,
    }
}

/// Where a secret may go over plain http (for messages).
pub const PLAIN_HTTP_RULE: &str = "plain http is allowed only to 127.0.0.1, ::1 or localhost, \
     and not through a proxy on another host (name them in NO_PROXY)";

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `Authorization: Bearer <token>` as a header value marked sensitive (never shown in debug output).
pub fn bearer_header(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Google's error body: `{"error": {"code", "message", "status", "errors": [{"reason"}]}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoogleError {
    pub status: Option<String>,
    pub reason: Option<String>,
    pub message: String,
}

impl GoogleError {
    /// Reads Google's error JSON; any other body is summarised (first line, 200 chars).
    pub fn from_body(body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: Detail,
        }
        #[derive(Deserialize)]
        struct Detail {
            #[serde(default)]
            message: String,
            status: Option<String>,
            #[serde(default)]
            errors: Vec<Item>,
        }
        #[derive(Deserialize)]
        struct Item {
            reason: Option<String>,
        }
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => GoogleError {
                status: error.status,
                reason: error.errors.into_iter().find_map(|e| e.reason),
                message: error.message,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                GoogleError {
                    message: first.trim().chars().take(200).collect(),
                    ..GoogleError::default()
                }
            }
        }
    }
}

impl std::fmt::Display for GoogleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = [self.status.as_deref(), self.reason.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !labels.is_empty() {
            write!(f, "{} ", labels.join("/"))?;
        }
        if self.message.is_empty() {
            write!(f, "(no message)")
        } else {
            let message = self.message.replace(['\n', '\r'], " ");
            write!(f, "{}", crate::redact::shorten(&message, 500))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_only_over_https_or_loopback() {
        let ok = [
            "https://www.googleapis.com/x",
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://[::1]:8/x",
            "http://127.8.0.1/",
        ];
        for url in ok {
            assert!(may_carry_bearer(&url.parse().unwrap()), "{url}");
        }
        for url in [
            "http://www.googleapis.com/x",
            "http://10.0.0.1/x",
            "ftp://localhost/",
        ] {
            assert!(!may_carry_bearer(&url.parse().unwrap()), "{url}");
        }
    }

    #[test]
    fn google_error_json_becomes_one_line() {
        let body = br#"{"error":{"code":403,"message":"Insufficient\nPermission","status":"PERMISSION_DENIED","errors":[{"reason":"insufficientPermissions"}]}}"#;
        assert_eq!(
            GoogleError::from_body(body).to_string(),
            "PERMISSION_DENIED/insufficientPermissions Insufficient Permission"
        );
        assert_eq!(
            GoogleError::from_body(b"<html>\n<b>Bad gateway</b>").to_string(),
            "<html>"
        );
    }

    #[test]
    fn secret_query_values_are_redacted() {
        let uri: Uri = "https://h/p?key=abc&q=1&access_token=t".parse().unwrap();
        assert_eq!(
            redact_url(&uri),
            "https://h/p?key=REDACTED&q=1&access_token=REDACTED"
        );
    }
}
