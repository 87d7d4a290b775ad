//! Test doubles of Google Cloud's keyless links, on 127.0.0.1 (port 0): the metadata server
//! (`GCE_METADATA_HOST`/`GCE_METADATA_IP`) and IAM Credentials (`generateAccessToken`,
//! `signJwt`; `GSCRAPE_ENDPOINT_IAMCREDENTIALS`). They record what they received. Tokens they
//! issue are added to the fake Google's accepted tokens ([`super::FakeGoogle::accepted_tokens`]) so API requests
//! with them pass, and `signJwt` signs with the test service account's key, which the fake
//! token endpoint verifies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;
use serde_json::json;

use super::loopback::Seen;

use super::fake_oauth::SA_EMAIL;

/// The metadata server's token (accepted by the fake Google for API calls).
pub const METADATA_TOKEN: &str = "ya29.metadata-token-never-printed";
/// The token `generateAccessToken` hands out.
pub const IMPERSONATED_TOKEN: &str = "ya29.impersonated-token-never-printed";

/// What the doubles answer.
#[derive(Debug, Clone, Default)]
pub struct CloudConfig {
    /// IAM Credentials refuses with 403 PERMISSION_DENIED (IAM_PERMISSION_DENIED).
    pub iam_denied: bool,
    /// The probe (`/`) answers after this long, as a metadata server at a pod's start may.
    pub probe_delay: std::time::Duration,
    /// The probe answers 503 this many times before it answers 200.
    pub probe_failures: usize,
}

pub struct FakeCloud {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Seen>>>,
    pub config: Arc<Mutex<CloudConfig>>,
}

impl FakeCloud {
    pub fn start(google: &super::FakeGoogle) -> Self {
        google
            .accepted_tokens()
            .lock()
            .unwrap()
            .extend([METADATA_TOKEN.to_owned(), IMPERSONATED_TOKEN.to_owned()]);
        let received = Arc::new(Mutex::new(Vec::new()));
        let config = Arc::new(Mutex::new(CloudConfig::default()));
        let (log, conf) = (received.clone(), config.clone());
        let addr = super::loopback::serve(move |seen| answer(seen, log.clone(), conf.clone()));
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
    pub fn received(&self, prefix: &str) -> Vec<Seen> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.target.starts_with(prefix))
            .cloned()
            .collect()
    }
}

async fn answer(
    received: Seen,
    log: Arc<Mutex<Vec<Seen>>>,
    config: Arc<Mutex<CloudConfig>>,
) -> Response<Full<Bytes>> {
    log.lock().unwrap().push(received.clone());
    let (config, failing) = {
        let mut shared = config.lock().unwrap();
        let failing = received.target == "/" && shared.probe_failures > 0;
        if failing {
            shared.probe_failures -= 1;
        }
        (shared.clone(), failing)
    };
    if received.target == "/" && !config.probe_delay.is_zero() {
        tokio::time::sleep(config.probe_delay).await;
    }
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
        "/" if failing => (503, "starting".into()),
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
    response.body(Full::new(Bytes::from(text))).unwrap()
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
