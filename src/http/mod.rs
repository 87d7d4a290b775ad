//! The one HTTP client every request goes through, Google's error JSON turned into one line,
//! the retry policy ([`retry`]) and the shared request limits ([`limits`]).
//!
//! Only this module (and `auth`) touch hyper. Retries are the run engine's concern; this layer
//! sends one request and reads the whole body (a page is bounded; the export is not).

pub mod limits;
pub mod retry;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

/// The hyper client type shared by API calls, Discovery fetches and the OAuth flows.
pub type HyperClient = Client<HttpsConnector<HttpConnector>, String>;

/// Why one HTTP exchange produced no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {url}: {}", chain(.source.as_ref()))]
    Connect {
        url: String,
        #[source]
        source: Box<hyper_util::client::legacy::Error>,
    },
    #[error("reading the response of {url} failed: {}", chain(.source))]
    Body {
        url: String,
        #[source]
        source: hyper::Error,
    },
    #[error("no response from {url} within {}s (raise it with --timeout)", .timeout.as_secs())]
    Timeout { url: String, timeout: Duration },
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

/// A complete response.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Builds the shared client: rustls on `ring` with the webpki roots, HTTP/1.1 and HTTP/2.
pub fn build_client() -> HyperClient {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)
        .expect("the ring provider supports the default TLS versions")
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Sends `request` and reads the whole body, all within `timeout`.
pub async fn send(
    client: &HyperClient,
    request: Request<String>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let url = redact_url(request.uri());
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|source| HttpError::Connect {
                url: url.clone(),
                source: Box::new(source),
            })?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|source| HttpError::Body {
                url: url.clone(),
                source,
            })?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout {
            url: url.clone(),
            timeout,
        }),
    }
}

/// The URL for messages and logs: query values of secret-bearing parameters are replaced.
pub fn redact_url(uri: &Uri) -> String {
    const SECRET: &[&str] = &["key", "access_token", "oauth_token"];
    let text = uri.to_string();
    let Some((base, query)) = text.split_once('?') else {
        return text;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET.contains(&name) => format!("{name}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// True when a bearer token may be sent to `uri`: over https, or plain http to loopback only.
pub fn may_carry_bearer(uri: &Uri) -> bool {
    match uri.scheme_str() {
        Some("https") => true,
        Some("http") => uri.host().is_some_and(is_loopback_host),
        _ => false,
    }
}

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
            write!(f, "{}", self.message.replace(['\n', '\r'], " "))
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
