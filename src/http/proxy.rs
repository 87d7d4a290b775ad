//! Proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, either
//! case, with curl's rules), as a connector under the TLS layer: https destinations go through
//! a CONNECT tunnel (TLS runs end to end inside it), plain-http destinations are sent to the
//! proxy in absolute form. Every request of the shared client takes this path, the browser
//! login's (yup-oauth2's) included.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxy rules, read once.
#[derive(Clone)]
pub struct Proxies {
    matcher: Arc<Matcher>,
}

impl Proxies {
    /// The rules of the environment. The proxy is used for loopback too unless `NO_PROXY`
    /// names it (curl does the same).
    /// A proxy gscrape cannot speak to (`socks5://`, `https://`) is refused here, before any
    /// request.
    pub fn from_env() -> Result<Self, ProxyError> {
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"] {
            for name in [name.to_owned(), name.to_ascii_lowercase()] {
                let Ok(url) = std::env::var(&name) else {
                    continue;
                };
                register_credentials(&url);
                if let Some((scheme, rest)) = url.split_once("://") {
                    if !scheme.eq_ignore_ascii_case("http") {
                        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                        return Err(ProxyError::Unsupported {
                            proxy: format!("{name}={scheme}://{host}"),
                        });
                    }
                }
            }
        }
        Ok(Proxies {
            matcher: Arc::new(Matcher::from_env()),
        })
    }

    #[cfg(test)]
    fn from_matcher(matcher: Matcher) -> Self {
        Proxies {
            matcher: Arc::new(matcher),
        }
    }

    fn intercept(&self, dst: &Uri) -> Option<Intercept> {
        // Instance metadata (Google's, AWS's) is on the machine's own link: a proxy cannot
        // reach it, and google-auth never sends it through one.
        if dst.host().is_some_and(is_instance_metadata) {
            return None;
        }
        self.matcher.intercept(dst)
    }

    /// The proxy that carries requests to `dst`, if one does.
    pub fn proxy_for(&self, dst: &Uri) -> Option<Uri> {
        Some(self.intercept(dst)?.uri().clone())
    }

    /// `Proxy-Authorization` for a request to a plain-http `dst` that goes through an
    /// authenticating proxy. (Requests to https destinations carry none: their credentials
    /// travel in the CONNECT request only, never inside the tunnel.)
    pub fn authorization_for(&self, dst: &Uri) -> Option<HeaderValue> {
        if dst.scheme_str() != Some("http") {
            return None;
        }
        self.intercept(dst)?.basic_auth().cloned()
    }
}

/// The metadata servers' hosts: link-local addresses, `metadata.google.internal`, and the
/// hosts `GCE_METADATA_HOST` / `GCE_METADATA_IP` name.
fn is_instance_metadata(host: &str) -> bool {
    let named = |var: &str| {
        std::env::var(var).is_ok_and(|v| v.split(':').next() == Some(host) && !host.is_empty())
    };
    host == "metadata.google.internal"
        || host.starts_with("169.254.")
        || host == "[fd00:ec2::254]"
        || named("GCE_METADATA_HOST")
        || named("GCE_METADATA_IP")
}

/// Makes the `user:password` of a proxy URL known to the redactor, as written, decoded and as
/// the `Proxy-Authorization` value carries it.
fn register_credentials(url: &str) {
    use base64::Engine;
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let Some((userinfo, _)) = after_scheme.split_once('@') else {
        return;
    };
    let decoded = percent_encoding::percent_decode_str(userinfo).decode_utf8_lossy();
    for text in [userinfo, decoded.as_ref()] {
        crate::redact::register(text);
        if let Some((_, password)) = text.split_once(':') {
            crate::redact::register(password);
        }
        crate::redact::register(&base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// Why a connection through a proxy failed. Shows the proxy without its credentials.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("through the proxy {proxy}")]
    Via {
        proxy: String,
        #[source]
        source: BoxError,
    },
    #[error("the proxy {proxy} is not supported: only http:// proxies are (set HTTPS_PROXY/HTTP_PROXY/ALL_PROXY to http://HOST:PORT, or name the destination in NO_PROXY)")]
    Unsupported { proxy: String },
}

/// Connects to the destination, or to the proxy the environment names for it.
#[derive(Clone)]
pub struct ProxyConnector {
    http: HttpConnector,
    proxies: Proxies,
}

impl ProxyConnector {
    /// `http` must accept https URIs (`enforce_http(false)`): TLS is layered on top.
    pub fn new(http: HttpConnector, proxies: Proxies) -> Self {
        ProxyConnector { http, proxies }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(intercept) = self.proxies.intercept(&dst) else {
            let connecting = self.http.call(dst);
            return Box::pin(async move {
                Ok(ProxyStream {
                    inner: connecting.await?,
                    absolute_form: false,
                })
            });
        };
        let proxy_uri = intercept.uri().clone();
        let proxy = proxy_uri.to_string();
        if proxy_uri.scheme_str() != Some("http") {
            return Box::pin(async move { Err(ProxyError::Unsupported { proxy }.into()) });
        }
        let via = move |source: BoxError| -> BoxError {
            ProxyError::Via {
                proxy: proxy.clone(),
                source,
            }
            .into()
        };
        if dst.scheme_str() == Some("https") {
            let mut tunnel = Tunnel::new(proxy_uri, self.http.clone());
            if let Some(auth) = intercept.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            Box::pin(async move {
                std::future::poll_fn(|cx| tunnel.poll_ready(cx))
                    .await
                    .map_err(|e| via(e.into()))?;
                let inner = tunnel.call(dst).await.map_err(|e| via(e.into()))?;
                Ok(ProxyStream {
                    inner,
                    absolute_form: false,
                })
            })
        } else {
            let connecting = self.http.call(proxy_uri);
            Box::pin(async move {
                let inner = connecting.await.map_err(|e| via(e.into()))?;
                Ok(ProxyStream {
                    inner,
                    absolute_form: true,
                })
            })
        }
    }
}

/// A connection to the destination, to a tunnel through the proxy, or to the proxy itself.
pub struct ProxyStream {
    inner: TokioIo<TcpStream>,
    /// Requests on it go in absolute form (`GET http://host/path`): it leads to a proxy.
    absolute_form: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.inner.connected().proxy(self.absolute_form)
    }
}

impl Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(url: &str, no: &str) -> Proxies {
        Proxies::from_matcher(Matcher::builder().all(url).no(no).build())
    }

    #[test]
    fn credentials_go_to_plain_http_requests_only() {
        let proxies = proxies("http://ann:p%40ss@proxy.corp:3128", "intranet.example");
        let auth = proxies
            .authorization_for(&"http://127.0.0.1:8080/token".parse().unwrap())
            .unwrap();
        // base64("ann:p@ss")
        assert_eq!(auth.to_str().unwrap(), "Basic YW5uOnBAc3M=");
        assert!(auth.is_sensitive(), "never shown in debug output");
        assert_eq!(
            proxies.authorization_for(&"https://oauth2.googleapis.com/token".parse().unwrap()),
            None,
            "https: the credentials travel in CONNECT only"
        );
        assert_eq!(
            proxies.authorization_for(&"http://www.intranet.example/x".parse().unwrap()),
            None,
            "NO_PROXY covers subdomains"
        );
    }

    #[tokio::test]
    async fn a_proxy_that_is_not_http_is_refused_by_name_without_credentials() {
        let mut connector = ProxyConnector::new(
            HttpConnector::new(),
            proxies("socks5://ann:secret@127.0.0.1:1080", ""),
        );
        let err = match connector
            .call("https://www.googleapis.com/".parse().unwrap())
            .await
        {
            Ok(_) => panic!("connected through a SOCKS proxy"),
            Err(err) => err.to_string(),
        };
        assert!(
            err.starts_with(
                "the proxy socks5://127.0.0.1:1080/ is not supported: only http:// proxies are"
            ),
            "{err}"
        );
        assert!(!err.contains("secret"));
    }
}
