//! Test doubles of Google Cloud's keyless links, on 127.0.0.1 (port 0): the metadata server
//! (`GCE_METADATA_HOST`/`GCE_METADATA_IP`) and IAM Credentials (`generateAccessToken`,
//! `signJwt`; `GSCRAPE_ENDPOINT_IAMCREDENTIALS`). They record what they received. Tokens they
//! issue are handed to the fake Google ([`super::FakeGoogle::accept_token`]) so API requests
//! with them pass, and `signJwt` signs with the test service account's key, which the fake
//! token endpoint verifies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::fake_oauth::SA_EMAIL;

/// The metadata server's token (accepted by the fake Google for API calls).
pub const METADATA_TOKEN: &str = "ya29.metadata-token-never-printed";
/// The token `generateAccessToken` hands out.
pub const IMPERSONATED_TOKEN: &str = "ya29.impersonated-token-never-printed";

/// One request a double received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// What the doubles answer.
#[derive(Debug, Clone, Default)]
pub struct CloudConfig {
    /// IAM Credentials refuses with 403 PERMISSION_DENIED (IAM_PERMISSION_DENIED).
    pub iam_denied: bool,
}

pub struct FakeCloud {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    pub config: Arc<Mutex<CloudConfig>>,
}

impl FakeCloud {
    pub fn start(google: &super::FakeGoogle) -> Self {
        google.accept_token(METADATA_TOKEN, None);
        google.accept_token(IMPERSONATED_TOKEN, None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let config = Arc::new(Mutex::new(CloudConfig::default()));
        let (log, conf) = (received.clone(), config.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, log, conf));
        });
        FakeCloud {
            addr,
            received,
            config,
        }
    }

    /// `http://127.0.0.1:PORT/`, for `GSCRAPE_ENDPOINT_IAMCREDENTIALS`.
    pub fn root(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The requests whose path starts with `prefix`.
    pub fn received(&self, prefix: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.target.starts_with(prefix))
            .cloned()
            .collect()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    log: Arc<Mutex<Vec<Received>>>,
    config: Arc<Mutex<CloudConfig>>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (log, config) = (log.clone(), config.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| answer(req, log.clone(), config.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
    config: Arc<Mutex<CloudConfig>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let target = req.uri().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let received = Received {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().unwrap().push(received.clone());
    let config = config.lock().unwrap().clone();
    let path = received
        .target
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let flavored = received.header("metadata-flavor") == Some("Google");
    let bearer = received
        .header("authorization")
        .unwrap_or_default()
        .to_owned();
    let (status, text) = match path.as_str() {
        "/" => (200, String::new()),
        _ if path.starts_with("/computeMetadata/") && !flavored => (403, "Missing Metadata-Flavor".into()),
        "/computeMetadata/v1/instance/service-accounts/default/token" => (
            200,
            json!({"access_token": METADATA_TOKEN, "expires_in": 3599, "token_type": "Bearer"}).to_string(),
        ),
        "/computeMetadata/v1/instance/service-accounts/default/email" => (200, SA_EMAIL.to_owned()),
        "/computeMetadata/v1/project/project-id" => (200, "test-project".to_owned()),
        _ if path.starts_with("/v1/projects/-/serviceAccounts/") && config.iam_denied => (
            403,
            json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
                "message": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED"}]}})
            .to_string(),
        ),
        _ if path.starts_with("/v1/projects/-/serviceAccounts/") && !bearer.starts_with("Bearer ya29.") => (
            401,
            json!({"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "no token"}}).to_string(),
        ),
        _ if path.ends_with(":generateAccessToken") => (
            200,
            json!({"accessToken": IMPERSONATED_TOKEN, "expireTime": "2099-01-01T00:00:00Z"}).to_string(),
        ),
        _ if path.ends_with(":signJwt") => {
            let payload = received.json()["payload"].as_str().unwrap_or_default().to_owned();
            (200, json!({"keyId": "k1", "signedJwt": sign_rs256(&payload)}).to_string())
        }
        _ => (404, "not found".into()),
    };
    let mut response = Response::builder()
        .status(status)
        .header("metadata-flavor", "Google");
    if text.starts_with('{') {
        response = response.header("content-type", "application/json");
    }
    Ok(response.body(Full::new(Bytes::from(text))).unwrap())
}

/// `payload` as a JWT signed RS256 by the test service account's key.
fn sign_rs256(payload: &str) -> String {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let pem = include_str!("../../fixtures/auth/sa-private-key.pem");
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(payload.as_bytes())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", b64(&signature))
}
