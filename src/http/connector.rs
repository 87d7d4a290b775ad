//! The connector of [`super::HyperClient`]: TLS (rustls on ring, HTTP/2 by ALPN) over a
//! connection that goes through the environment's proxy when it names one.
//!
//! The TLS configuration is made on the first https connection, not at start: reading and
//! parsing the system's CA store and webpki-roots costs a few milliseconds that a run against
//! plain-http endpoints (a local emulator, the test fakes) never needs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::uri::Scheme;
use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use tower_service::Service;

use super::proxy::{ProxyConnector, ProxyStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects plain http itself, and https through hyper-rustls once TLS is set up.
#[derive(Clone)]
pub struct Connector {
    proxied: ProxyConnector,
    tls: Arc<OnceLock<HttpsConnector<ProxyConnector>>>,
}

impl Connector {
    pub fn new(proxied: ProxyConnector) -> Self {
        Connector {
            proxied,
            tls: Arc::default(),
        }
    }
}

impl Service<Uri> for Connector {
    type Response = MaybeHttpsStream<ProxyStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.proxied.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        if dst.scheme() == Some(&Scheme::HTTP) {
            let connecting = self.proxied.call(dst);
            return Box::pin(async move { Ok(MaybeHttpsStream::Http(connecting.await?)) });
        }
        let proxied = &self.proxied;
        let mut https = self
            .tls
            .get_or_init(|| {
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config())
                    .https_or_http()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(proxied.clone())
            })
            .clone();
        https.call(dst)
    }
}

/// Trusts the system's CA store (which honours `SSL_CERT_FILE` / `SSL_CERT_DIR`) and
/// webpki-roots (so that a container without a system store still reaches Google).
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!("CA certificates not loaded: {error} (check SSL_CERT_FILE / SSL_CERT_DIR)");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(
        "trusting {added} CA certificates of the system ({ignored} unusable) and webpki-roots"
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
