//! A fake of workload identity federation's services on 127.0.0.1 (port 0): Google's STS
//! (`POST /v1/token`, the token exchange; `POST /v1/oauth/token`, a workforce login's
//! refresh), IAM Credentials' generateAccessToken, a subject-token URL (text and JSON), and
//! AWS's instance metadata (IMDSv2). It checks what Google would check — the exchange's
//! fields, the subject token, an AWS request's SigV4 signature recomputed here — records every
//! request, and adds the tokens it issues to the fake Google's accepted list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

pub use super::loopback::Seen;
use serde_json::{json, Value};

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const AWS_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";
pub const AUDIENCE: &str =
    "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/providers/gh";
/// The subject token the fake expects (and serves at `/subject-token*`).
pub const SUBJECT_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.subject-token-never-printed.c2ln";
/// What an issued token starts with (`ya29.sts-issued-1`, `ya29.iam-issued-2`, …): none
/// may be printed.
pub const ISSUED: &str = "-issued-";
/// The service account of the impersonation URL.
pub const SA: &str = "runner@ci-project.iam.gserviceaccount.com";
/// AWS: the region the IMDS availability zone names, and the URL signed.
pub const AWS_REGION: &str = "us-east-2";
pub const AWS_URL: &str =
    "https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";
pub const AWS_ROLE: &str = "gscrape-runner-role";
pub const IMDS_SESSION_TOKEN: &str = "imds-session-token-never-printed";

/// What the fake should do; tests change it before running the binary.
#[derive(Debug, Clone)]
pub struct StsConfig {
    pub audience: String,
    pub subject_token: String,
    /// The header the subject-token URL requires.
    pub subject_header: Option<(String, String)>,
    /// The subject-token URL refuses (403), quoting the Authorization header it got.
    pub subject_refuse_echo: bool,
    /// The OAuth client STS requires as HTTP Basic (id, secret).
    pub client: Option<(String, String)>,
    /// STS refuses exchanges: status, OAuth error, description (`{subject}` in it becomes
    /// the subject token received, decoded).
    pub sts_error: Option<(u16, String, String)>,
    /// generateAccessToken answers 403 PERMISSION_DENIED.
    pub iam_deny: bool,
    /// The AWS keys the subject token must be signed with (`aws` sources).
    pub aws: AwsKeys,
    /// A workforce login's refresh token, and whether STS rotates it.
    pub refresh_token: String,
    pub rotate: bool,
    /// `expires_in` of STS tokens.
    pub lifetime: u64,
}

#[derive(Debug, Clone)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Default for StsConfig {
    fn default() -> Self {
        StsConfig {
            audience: AUDIENCE.to_owned(),
            subject_token: SUBJECT_TOKEN.to_owned(),
            subject_header: None,
            subject_refuse_echo: false,
            client: None,
            sts_error: None,
            iam_deny: false,
            aws: AwsKeys {
                access_key_id: "AKIDFAKEEXAMPLE00001".to_owned(),
                secret_access_key: "aws-secret-key/never+printed0123456789".to_owned(),
                session_token: Some("aws-session-token-never-printed+/=".to_owned()),
            },
            refresh_token: "1//wf-refresh-token-never-printed".to_owned(),
            rotate: false,
            lifetime: 3600,
        }
    }
}

/// What an issued token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// A federated token of STS, for these scopes.
    Federated(String),
    /// A workforce login's token.
    Workforce,
    /// A service account's token from generateAccessToken.
    ServiceAccount(String),
}

struct State {
    config: Mutex<StsConfig>,
    seen: Mutex<Vec<Seen>>,
    issued: Mutex<HashMap<String, Issued>>,
    accepted: Arc<Mutex<Vec<String>>>,
    /// What was wrong with each AWS subject token checked (empty: it verified).
    aws_checks: Mutex<Vec<Result<(), String>>>,
}

pub struct FakeSts {
    state: Arc<State>,
    root_url: String,
}

impl FakeSts {
    /// Starts the fake; what it issues is accepted by the API fake that owns `accepted`
    /// ([`super::FakeGoogle::accepted_tokens`]).
    pub fn start(config: StsConfig, accepted: Arc<Mutex<Vec<String>>>) -> Self {
        let state = Arc::new(State {
            config: Mutex::new(config),
            seen: Mutex::new(Vec::new()),
            issued: Mutex::new(HashMap::new()),
            accepted,
            aws_checks: Mutex::new(Vec::new()),
        });
        let served = state.clone();
        let addr = super::loopback::serve(move |seen| respond(seen, served.clone()));
        FakeSts {
            state,
            root_url: format!("http://{addr}/"),
        }
    }

    /// `http://127.0.0.1:PORT/`
    pub fn root_url(&self) -> String {
        self.root_url.clone()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests seen whose path is `path`.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path() == path)
            .collect()
    }

    /// What a token handed out is.
    pub fn issued(&self, token: &str) -> Option<Issued> {
        self.state.issued.lock().unwrap().get(token).cloned()
    }

    /// The verdict on each AWS subject token STS received.
    pub fn aws_checks(&self) -> Vec<Result<(), String>> {
        self.state.aws_checks.lock().unwrap().clone()
    }

    /// The generateAccessToken path of `email`.
    pub fn generate_path(email: &str) -> String {
        format!("/v1/projects/-/serviceAccounts/{email}:generateAccessToken")
    }
}

async fn respond(seen: Seen, state: Arc<State>) -> Response<Full<Bytes>> {
    state.seen.lock().unwrap().push(seen.clone());
    let config = state.config.lock().unwrap().clone();
    let (status, body) = route(&seen, &config, &state);
    let (content_type, bytes) = match body {
        Body::Json(value) => ("application/json; charset=UTF-8", value.to_string()),
        Body::Text(text) => ("text/plain", text),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(bytes)))
        .unwrap()
}

enum Body {
    Json(Value),
    Text(String),
}

fn oauth_error(status: u16, error: &str, description: &str) -> (StatusCode, Body) {
    (
        StatusCode::from_u16(status).unwrap(),
        Body::Json(json!({"error": error, "error_description": description})),
    )
}

fn route(seen: &Seen, config: &StsConfig, state: &State) -> (StatusCode, Body) {
    let imds_session_ok = || seen.header("x-aws-ec2-metadata-token") == Some(IMDS_SESSION_TOKEN);
    let unauthorized = || (StatusCode::UNAUTHORIZED, Body::Text(String::new()));
    match (seen.method.as_str(), seen.path()) {
        ("POST", "/v1/token") => exchange(seen, config, state),
        ("POST", "/v1/oauth/token") => refresh(seen, config, state),
        ("POST", path) if path.ends_with(":generateAccessToken") => {
            generate_access_token(seen, config, state)
        }
        ("GET", "/subject-token" | "/subject-token.json") if config.subject_refuse_echo => {
            let got = seen.header("authorization").unwrap_or("none");
            (
                StatusCode::FORBIDDEN,
                Body::Json(json!({"message": format!("The request token {got} has expired")})),
            )
        }
        ("GET", "/subject-token" | "/subject-token.json") => {
            if let Some((name, value)) = &config.subject_header {
                if seen.header(name) != Some(value.as_str()) {
                    return (
                        StatusCode::FORBIDDEN,
                        Body::Json(json!({"message": "missing the request token"})),
                    );
                }
            }
            match seen.path() {
                "/subject-token" => (
                    StatusCode::OK,
                    Body::Text(format!("{}\n", config.subject_token)),
                ),
                _ => (
                    StatusCode::OK,
                    Body::Json(json!({"count": 1, "value": config.subject_token})),
                ),
            }
        }
        ("PUT", "/latest/api/token") => match seen.header("x-aws-ec2-metadata-token-ttl-seconds") {
            Some("300") => (StatusCode::OK, Body::Text(IMDS_SESSION_TOKEN.to_owned())),
            _ => (StatusCode::BAD_REQUEST, Body::Text(String::new())),
        },
        ("GET", "/latest/meta-data/placement/availability-zone") if imds_session_ok() => {
            (StatusCode::OK, Body::Text(format!("{AWS_REGION}b")))
        }
        ("GET", "/latest/meta-data/iam/security-credentials") if imds_session_ok() => {
            (StatusCode::OK, Body::Text(AWS_ROLE.to_owned()))
        }
        ("GET", path)
            if imds_session_ok()
                && path == format!("/latest/meta-data/iam/security-credentials/{AWS_ROLE}") =>
        {
            (
                StatusCode::OK,
                Body::Json(json!({
                    "Code": "Success",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": config.aws.access_key_id,
                    "SecretAccessKey": config.aws.secret_access_key,
                    "Token": config.aws.session_token,
                    "Expiration": "2099-01-01T00:00:00Z",
                })),
            )
        }
        ("GET", path) if path.starts_with("/latest/") => unauthorized(),
        _ => (StatusCode::NOT_FOUND, Body::Text("not found".to_owned())),
    }
}

fn issue(state: &State, kind: &str, what: Issued) -> String {
    let mut issued = state.issued.lock().unwrap();
    let token = format!("ya29.{kind}{ISSUED}{}", issued.len() + 1);
    issued.insert(token.clone(), what);
    state.accepted.lock().unwrap().push(token.clone());
    token
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn exchange(seen: &Seen, config: &StsConfig, state: &State) -> (StatusCode, Body) {
    if let Some((status, error, description)) = &config.sts_error {
        // `{subject}`: the subject token received, decoded (servers quote what they got).
        let subject = seen.field("subject_token").unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(&subject).decode_utf8_lossy();
        return oauth_error(*status, error, &description.replace("{subject}", &decoded));
    }
    let field = |name: &str| seen.field(name).unwrap_or_default();
    if field("grant_type") != TOKEN_EXCHANGE {
        return oauth_error(400, "unsupported_grant_type", "not a token exchange");
    }
    if field("requested_token_type") != ACCESS_TOKEN_TYPE {
        return oauth_error(400, "invalid_request", "requested_token_type");
    }
    if field("audience") != config.audience {
        return oauth_error(
            400,
            "invalid_target",
            "The target service indicated by the \"audience\" parameters is invalid.",
        );
    }
    if let Some((id, secret)) = &config.client {
        if seen.header("authorization") != Some(basic(id, secret).as_str()) {
            return oauth_error(401, "invalid_client", "The client is unknown.");
        }
    }
    let subject = field("subject_token");
    if field("subject_token_type") == AWS_TYPE {
        let verdict = verify_aws(&subject, &config.aws, &config.audience);
        state.aws_checks.lock().unwrap().push(verdict.clone());
        if let Err(why) = verdict {
            return oauth_error(400, "invalid_grant", &why);
        }
    } else if subject != config.subject_token {
        return oauth_error(400, "invalid_grant", "The subject token is not valid.");
    }
    let token = issue(state, "sts", Issued::Federated(field("scope")));
    (
        StatusCode::OK,
        Body::Json(json!({
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            // As a string, as some services send it.
            "expires_in": config.lifetime.to_string(),
        })),
    )
}

fn refresh(seen: &Seen, config: &StsConfig, state: &State) -> (StatusCode, Body) {
    let Some((id, secret)) = &config.client else {
        return oauth_error(401, "invalid_client", "no client configured");
    };
    if seen.header("authorization") != Some(basic(id, secret).as_str()) {
        return oauth_error(401, "invalid_client", "The client is unknown.");
    }
    if seen.field("grant_type").as_deref() != Some("refresh_token")
        || seen.field("refresh_token").as_deref() != Some(config.refresh_token.as_str())
    {
        return oauth_error(400, "invalid_grant", "Token has been expired or revoked.");
    }
    let token = issue(state, "wf", Issued::Workforce);
    let mut answer =
        json!({"access_token": token, "expires_in": config.lifetime, "token_type": "Bearer"});
    if config.rotate {
        answer["refresh_token"] = json!(format!("{}-rotated", config.refresh_token));
    }
    (StatusCode::OK, Body::Json(answer))
}

fn generate_access_token(seen: &Seen, config: &StsConfig, state: &State) -> (StatusCode, Body) {
    let email = seen
        .path()
        .trim_start_matches("/v1/projects/-/serviceAccounts/")
        .trim_end_matches(":generateAccessToken")
        .to_owned();
    let bearer = seen
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !matches!(
        state.issued.lock().unwrap().get(bearer),
        Some(Issued::Federated(_))
    ) {
        return (
            StatusCode::UNAUTHORIZED,
            Body::Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
                "message": "Request had invalid authentication credentials."}})),
        );
    }
    if config.iam_deny {
        let message = "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).";
        return (
            StatusCode::FORBIDDEN,
            Body::Json(
                json!({"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                    "metadata": {"permission": "iam.serviceAccounts.getAccessToken"}}]}}),
            ),
        );
    }
    let body = seen.json();
    let lifetime = body["lifetime"]
        .as_str()
        .and_then(|l| l.strip_suffix('s'))
        .and_then(|l| l.parse::<u64>().ok());
    let Some(lifetime) = lifetime else {
        return (
            StatusCode::BAD_REQUEST,
            Body::Json(
                json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "lifetime"}}),
            ),
        );
    };
    let token = issue(state, "iam", Issued::ServiceAccount(email));
    let expire = SystemTime::now() + Duration::from_secs(lifetime);
    (
        StatusCode::OK,
        Body::Json(json!({
            "accessToken": token,
            "expireTime": humantime::format_rfc3339_seconds(expire).to_string(),
        })),
    )
}

/// Checks an AWS subject token as Google's STS would before sending it on to AWS: the
/// serialised request, its headers, and its SigV4 signature, recomputed with the secret.
fn verify_aws(subject: &str, keys: &AwsKeys, audience: &str) -> Result<(), String> {
    let json = percent_encoding::percent_decode_str(subject)
        .decode_utf8()
        .map_err(|_| "not UTF-8".to_owned())?;
    let request: Value = serde_json::from_str(&json).map_err(|e| format!("not JSON: {e}"))?;
    if request["url"] != AWS_URL || request["method"] != "POST" {
        return Err(format!("url or method: {}", request["url"]));
    }
    let headers: Vec<(String, String)> = request["headers"]
        .as_array()
        .ok_or("no headers")?
        .iter()
        .map(|h| {
            (
                h["key"].as_str().unwrap_or_default().to_owned(),
                h["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(format!("no {name} header"))
    };
    let mut order: Vec<&str> = vec!["Authorization", "host", "x-amz-date"];
    if keys.session_token.is_some() {
        order.push("x-amz-security-token");
    }
    order.push("x-goog-cloud-target-resource");
    let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    if names != order {
        return Err(format!("headers {names:?}"));
    }
    if get("x-goog-cloud-target-resource")? != audience {
        return Err("x-goog-cloud-target-resource is not the audience".to_owned());
    }
    let host = get("host")?;
    if host != "sts.us-east-2.amazonaws.com" {
        return Err(format!("host {host}"));
    }
    let amz_date = get("x-amz-date")?;
    let date = amz_date.get(..8).ok_or("x-amz-date")?;
    let mut canonical_headers = format!("host:{host}\nx-amz-date:{amz_date}\n");
    let mut signed = "host;x-amz-date".to_owned();
    if let Some(token) = &keys.session_token {
        if get("x-amz-security-token")? != *token {
            return Err("x-amz-security-token is not the session token".to_owned());
        }
        canonical_headers += &format!("x-amz-security-token:{token}\n");
        signed += ";x-amz-security-token";
    }
    let sha = |b: &[u8]| hex(ring::digest::digest(&ring::digest::SHA256, b).as_ref());
    let canonical = format!(
        "POST\n/\nAction=GetCallerIdentity&Version=2011-06-15\n{canonical_headers}\n{signed}\n{}",
        sha(b"")
    );
    let scope = format!("{date}/{AWS_REGION}/sts/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha(canonical.as_bytes())
    );
    let hmac = |key: &[u8], msg: &str| {
        ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            msg.as_bytes(),
        )
        .as_ref()
        .to_vec()
    };
    let mut key = hmac(format!("AWS4{}", keys.secret_access_key).as_bytes(), date);
    for part in [AWS_REGION, "sts", "aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={}",
        keys.access_key_id,
        hex(&hmac(&key, &to_sign))
    );
    let authorization = get("Authorization")?;
    match authorization == expected {
        true => Ok(()),
        false => Err(format!(
            "signature: got {authorization}, expected {expected}"
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
