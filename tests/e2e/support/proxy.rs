//! A small forward proxy on 127.0.0.1 (port 0) for the end-to-end tests: CONNECT tunnels and
//! absolute-form requests (`GET http://host/path`), forwarded to their destination, with a log
//! of what it carried and the `Proxy-Authorization` each request came with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The password in the proxy URLs the tests hand to the binary (checked never to be printed).
pub const PROXY_PASSWORD: &str = "proxy-pass-never-printed";

/// One request the proxy carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub method: String,
    /// The CONNECT authority (`127.0.0.1:PORT`) or the absolute URL.
    pub target: String,
    pub proxy_authorization: Option<String>,
}

/// A running proxy; it lives as long as the test process.
pub struct Proxy {
    pub addr: SocketAddr,
    carried: Arc<Mutex<Vec<Carried>>>,
}

impl Proxy {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let carried = Arc::new(Mutex::new(Vec::new()));
        let log = carried.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, log));
        });
        Proxy { addr, carried }
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`, for `HTTPS_PROXY` / `HTTP_PROXY`.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// Everything carried so far.
    pub fn carried(&self) -> Vec<Carried> {
        self.carried.lock().unwrap().clone()
    }
}

async fn serve(listener: std::net::TcpListener, log: Arc<Mutex<Vec<Carried>>>) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let log = log.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| carry(req, log.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn carry(
    req: Request<Incoming>,
    log: Arc<Mutex<Vec<Carried>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let proxy_authorization = req
        .headers()
        .get("proxy-authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let target = if req.method() == Method::CONNECT {
        req.uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default()
    } else {
        req.uri().to_string()
    };
    log.lock().unwrap().push(Carried {
        method: req.method().to_string(),
        target: target.clone(),
        proxy_authorization,
    });
    if req.method() == Method::CONNECT {
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut server).await;
        });
        return Ok(Response::new(Full::default()));
    }
    Ok(forward(req).await.unwrap_or_else(|why| {
        Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::from(why)))
            .unwrap()
    }))
}

/// Sends an absolute-form request on to its destination in origin form.
async fn forward(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
    let authority = req
        .uri()
        .authority()
        .ok_or("not an absolute URL")?
        .to_string();
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let (mut parts, body) = req.into_parts();
    parts.uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|_| "bad path")?;
    parts.headers.remove("proxy-authorization");
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| e.to_string())?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    parts.headers.remove("transfer-encoding");
    parts.headers.remove("content-length");
    Ok(Response::from_parts(parts, Full::new(body)))
}
