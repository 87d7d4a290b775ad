//! A fake Google on 127.0.0.1 (port 0) for the end-to-end tests: Discovery documents (real ones,
//! trimmed, with `rootUrl` pointing here), paginated list methods with deterministic data,
//! Google-style error JSON, and a log of every request it saw.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use super::fake_oauth::{Grant, OAuthConfig, OAuthState};
use super::fake_quota::{QuotaRules, QuotaState};
use super::fake_reports::{self, ReportConfig};
use super::fake_sheets::Sheets;
use super::partial;

/// The Discovery documents served, by `api.version`.
macro_rules! documents {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../fixtures/discovery/", $name, ".json")))),*]
    };
}

const DOCUMENTS: &[(&str, &str)] = documents![
    "drive.v3",
    "gmail.v1",
    "calendar.v3",
    "admin.directory_v1",
    "analyticsdata.v1beta",
    "searchconsole.v1",
    "youtubeAnalytics.v2",
    "bigquery.v2",
    "sheets.v4",
    "customsearch.v1",
    "discovery.v1",
];

/// The API key the server accepts as `key=`.
pub const API_KEY: &str = "AIza-test-api-key-never-printed";

/// What the server should do; tests change it before running the binary.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many Drive files exist.
    pub drive_files: usize,
    /// How many Gmail messages exist.
    pub gmail_messages: usize,
    /// How many calendar events exist.
    pub calendar_events: usize,
    /// How many directory users exist.
    pub directory_users: usize,
    /// Answer this Drive page (1-based) with HTTP 500.
    pub drive_fail_page: Option<usize>,
    /// Drive pages always answer the same `nextPageToken`.
    pub drive_repeat_token: bool,
    /// Answer this Drive page (1-based) with Google's daily-limit error, 403
    /// `dailyLimitExceeded` (a quota wall: retrying does not help until it resets).
    pub drive_quota_page: Option<usize>,
    /// The generation of Drive's page tokens (`tok-N`, then `tok1-N`, ...): tokens of another
    /// generation are refused with 400, as Google refuses expired ones.
    pub drive_token_epoch: u32,
    /// A Drive list page answered wrongly (a misbehaving server or network).
    pub drive_bad_page: Option<PageFault>,
    /// Drive files carry a 21-digit int64 `version` (a double cannot hold its digits).
    pub drive_long_versions: bool,
    /// Drive lists are refused (400) with this message.
    pub drive_error: Option<String>,
    /// API requests are refused as Google refuses a token granted none of the method's
    /// scopes: 403 `PERMISSION_DENIED`, `ACCESS_TOKEN_SCOPE_INSUFFICIENT`.
    pub insufficient_scopes: bool,
    /// API requests without `x-goog-user-project` get the 403 user ADC gets from an API that
    /// bills a project for a user's calls.
    pub requires_quota_project: bool,
    /// API requests are refused with an error that quotes their Authorization header (as
    /// some proxies and servers do).
    pub echo_authorization: bool,
    /// Delay before answering each API request.
    pub latency: std::time::Duration,
    /// Serve Drive file lists from a string builder (for benchmarks: the server must not be
    /// the bottleneck).
    pub fast_drive: bool,
    /// Drive file lists are answered with this text, whatever is asked (a hostile server:
    /// invalid JSON, odd numbers, repeated keys); gzipped when gzip is accepted.
    pub drive_raw_page: Option<String>,
    /// The first attempt of every Nth distinct API request gets this fault instead of its
    /// answer (so a retry succeeds); with N = 1, every attempt of every request.
    pub faults: Option<(usize, Fault)>,
    pub oauth: OAuthConfig,
    /// Google's quotas, enforced on API requests (none by default).
    pub quota: QuotaRules,
    pub reports: ReportConfig,
    /// Serve https (HTTP/2 or HTTP/1.1 by ALPN) with a certificate for 127.0.0.1 signed by a CA
    /// made at start ([`FakeGoogle::ca_pem`]); read when the server starts.
    pub tls: bool,
    /// Answer API requests (not Discovery or OAuth) with a gzip bomb: a small body that
    /// inflates past gscrape's 256 MiB cap.
    pub gzip_bomb: bool,
    /// Drive files carry a `modifiedTime` that grows with their number
    /// ([`drive_modified_time`]), so that files added later are newer.
    pub drive_modified: bool,
    /// Gmail messages listed but gone when fetched (deleted between list and get): their
    /// number and the status their get answers (404 or 410).
    pub gmail_gone: Vec<(usize, u16)>,
    /// Bearer tokens issued by another fake (`fake_sts`: STS, IAM Credentials) that API
    /// requests accept too; shared, so that fake adds what it issues.
    pub accepted_tokens: Arc<Mutex<Vec<String>>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            drive_files: 250,
            gmail_messages: 7,
            calendar_events: 5,
            directory_users: 4,
            drive_fail_page: None,
            drive_repeat_token: false,
            drive_quota_page: None,
            drive_token_epoch: 0,
            drive_bad_page: None,
            drive_long_versions: false,
            echo_authorization: false,
            drive_error: None,
            insufficient_scopes: false,
            requires_quota_project: false,
            latency: std::time::Duration::ZERO,
            fast_drive: false,
            drive_raw_page: None,
            faults: None,
            oauth: OAuthConfig::default(),
            quota: QuotaRules::default(),
            reports: ReportConfig::default(),
            tls: false,
            gzip_bomb: false,
            drive_modified: false,
            gmail_gone: Vec::new(),
            accepted_tokens: Arc::default(),
        }
    }
}

/// An injected failure.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// 429 with `Retry-After: N`.
    TooManyRequests { retry_after: u64 },
    /// 503.
    Unavailable,
    /// 403 `rateLimitExceeded`.
    RateLimited,
    /// 403 `dailyLimitExceeded`.
    QuotaExhausted,
}

/// Drive list page `page` (1-based) answered as `kind` says, the first `times` times it is
/// asked for; then rightly.
#[derive(Debug, Clone)]
pub struct PageFault {
    pub page: usize,
    pub kind: BadPage,
    pub times: usize,
    served: Arc<std::sync::atomic::AtomicUsize>,
}

impl PageFault {
    pub fn new(page: usize, kind: BadPage, times: usize) -> Self {
        PageFault {
            page,
            kind,
            times,
            served: Arc::default(),
        }
    }
}

/// How a page can be wrong while its status says it is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPage {
    /// 200 with an empty body.
    Empty,
    /// 204 No Content.
    NoContent,
    /// 200 whose body is Google's error JSON.
    ErrorInBody,
    /// `nextPageToken` is a number.
    TokenNumber,
    /// `nextPageToken` is an object.
    TokenObject,
    /// `files` holds values that are not objects.
    NotObjects,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, exactly as sent (still percent-encoded).
    pub target: String,
    pub authorization: Option<String>,
    pub accept_encoding: Option<String>,
    pub user_agent: Option<String>,
    /// `x-goog-user-project` (the quota project).
    pub user_project: Option<String>,
    pub version: hyper::Version,
    pub body: String,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Seen {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The first value of the query parameter `name`, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value)
    }

    /// Decoded query parameters in order.
    pub fn query(&self) -> Vec<(String, String)> {
        parse_query(self.target.split_once('?').map(|(_, q)| q).unwrap_or(""))
    }
}

struct State {
    root_url: String,
    config: Mutex<Config>,
    seen: Mutex<Vec<Seen>>,
    oauth: Mutex<OAuthState>,
    /// API requests: distinct ones seen so far, in flight now, most in flight at once.
    api_requests: Mutex<(usize, usize, usize)>,
    /// Each distinct API request: its number (1-based) and how often it was tried.
    attempts: Mutex<HashMap<String, (usize, usize)>>,
    /// Bytes of API response bodies: as sent (gzipped when asked), and before compression.
    api_bytes: Mutex<(u64, u64)>,
    /// The spreadsheets gscrape wrote (or tests seeded).
    sheets: Mutex<Sheets>,
    /// The quota buckets and what they decided.
    quota: Mutex<QuotaState>,
}

/// A running fake server; it lives as long as the test process.
pub struct FakeGoogle {
    pub addr: SocketAddr,
    state: Arc<State>,
    /// The CA of the server's certificate (PEM), when it serves https.
    ca_pem: Option<String>,
}

impl FakeGoogle {
    pub fn start_with(config: Config) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tls, ca_pem) = match config.tls {
            true => {
                let (acceptor, ca_pem) = tls_acceptor();
                (Some(acceptor), Some(ca_pem))
            }
            false => (None, None),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(State {
            root_url: format!("{scheme}://{addr}/"),
            config: Mutex::new(config),
            seen: Mutex::new(Vec::new()),
            oauth: Mutex::new(OAuthState::default()),
            api_requests: Mutex::new((0, 0, 0)),
            attempts: Mutex::new(HashMap::new()),
            api_bytes: Mutex::new((0, 0)),
            sheets: Mutex::new(Sheets::default()),
            quota: Mutex::new(QuotaState::default()),
        });
        let served = state.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, served, tls));
        });
        FakeGoogle {
            addr,
            state,
            ca_pem,
        }
    }

    /// The PEM of the CA that signed the server's certificate (for `SSL_CERT_FILE`).
    pub fn ca_pem(&self) -> &str {
        self.ca_pem
            .as_deref()
            .expect("the fake serves https (Config::tls)")
    }

    /// A refresh token the token endpoint accepts, as a login would have left.
    pub fn seed_refresh_token(&self, scope: &str) -> String {
        self.state.oauth.lock().unwrap().seed_refresh_token(scope)
    }

    /// `http://127.0.0.1:PORT/`
    pub fn root_url(&self) -> String {
        self.state.root_url.clone()
    }

    /// The value for `GSCRAPE_DISCOVERY_URL`.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}discovery/v1/apis/{{api}}/{{version}}/rest",
            self.root_url()
        )
    }

    pub fn configure(&self, change: impl FnOnce(&mut Config)) {
        change(&mut self.state.config.lock().unwrap());
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The most API requests the server had in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.api_requests.lock().unwrap().2
    }

    /// Bytes of API response bodies so far: as sent on the wire, and before compression.
    pub fn api_bytes(&self) -> (u64, u64) {
        *self.state.api_bytes.lock().unwrap()
    }

    /// The list of tokens issued elsewhere that API requests accept ([`Config::accepted_tokens`]).
    pub fn accepted_tokens(&self) -> Arc<Mutex<Vec<String>>> {
        self.state.config.lock().unwrap().accepted_tokens.clone()
    }

    /// The token endpoint's grants so far.
    pub fn grants(&self) -> Vec<Grant> {
        self.state.oauth.lock().unwrap().grants.clone()
    }

    /// How many API requests were answered 401.
    /// The subject an issued token acts as, if the server issued the token.
    pub fn token_subject(&self, token: &str) -> Option<Option<String>> {
        self.state.oauth.lock().unwrap().subject_of(token)
    }

    pub fn unauthorized(&self) -> usize {
        self.state.oauth.lock().unwrap().unauthorized
    }

    /// Whether the server revoked `token`.
    pub fn revoked(&self, token: &str) -> bool {
        self.state.oauth.lock().unwrap().revoked.contains(token)
    }

    /// The subject (`sub`) an issued access token was granted for.
    pub fn subject_of(&self, token: &str) -> Option<String> {
        self.state
            .oauth
            .lock()
            .unwrap()
            .access
            .get(token)
            .and_then(|t| t.subject.clone())
    }

    /// `http://127.0.0.1:PORT/token`
    pub fn token_uri(&self) -> String {
        format!("{}token", self.root_url())
    }

    /// What the server answers a plain GET of `target` (with the test token): status and JSON.
    /// For checking what the fake itself sends, apart from gscrape.
    pub fn get_json(&self, target: &str) -> (u16, Value) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.addr).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.addr,
            super::TOKEN
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap())
    }

    /// Works on the fake's spreadsheets: read back what a run wrote, seed one, set a fault.
    pub fn sheets<T>(&self, with: impl FnOnce(&mut Sheets) -> T) -> T {
        with(&mut self.state.sheets.lock().unwrap())
    }

    /// What the quota buckets decided, and what they hold.
    pub fn quota<T>(&self, with: impl FnOnce(&QuotaState) -> T) -> T {
        with(&self.state.quota.lock().unwrap())
    }

    /// Requests seen whose path starts with `prefix`.
    pub fn seen_under(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path().starts_with(prefix))
            .collect()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| respond(req, state.clone()));
            match tls {
                None => {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                }
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                }
            }
        });
    }
}

/// `handle`, with Google's compression: a response is gzipped when the request asked for gzip
/// *and* its User-Agent contains "gzip" (Google's rule). In `gzip_bomb` mode API requests get
/// the bomb instead.
async fn respond(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let wants_gzip = header("accept-encoding")
        .split(',')
        .any(|e| e.trim().split(';').next() == Some("gzip"))
        && header("user-agent").contains("gzip");
    let path = req.uri().path().to_owned();
    let api = !matches!(path.as_str(), "/o/oauth2/auth" | "/token" | "/revoke")
        && !path.starts_with("/discovery/");
    let (bomb, fast) = {
        let config = state.config.lock().unwrap();
        (api && config.gzip_bomb, config.fast_drive)
    };
    let counted = state.clone();
    let response = handle(req, state).await?;
    if bomb {
        return Ok(Response::builder()
            .header("content-type", "application/json; charset=UTF-8")
            .header("content-encoding", "gzip")
            .body(Full::new(gzip_bomb()))
            .unwrap());
    }
    let (mut parts, body) = response.into_parts();
    let plain = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    // The benchmarks (`fast_drive`) measure gscrape, not the fake's compressor.
    let sent = if wants_gzip && !fast {
        parts
            .headers
            .insert("content-encoding", "gzip".parse().unwrap());
        parts.headers.remove("content-length");
        gzip(&plain)
    } else {
        plain.clone()
    };
    if api {
        let mut bytes = counted.api_bytes.lock().unwrap();
        bytes.0 += sent.len() as u64;
        bytes.1 += plain.len() as u64;
    }
    Ok(Response::from_parts(parts, Full::new(sent)))
}

fn gzip(data: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    Bytes::from(encoder.finish().unwrap())
}

/// One gzip member that inflates to 257 MiB of zeros (1 MiB past gscrape's cap) from about
/// 1.2 MB; made once per test process.
fn gzip_bomb() -> Bytes {
    static BOMB: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..257 {
            encoder.write_all(&zeros).unwrap();
        }
        Bytes::from(encoder.finish().unwrap())
    })
    .clone()
}

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it; ALPN offers h2
/// and http/1.1, as Google does. Returns the acceptor and the CA's PEM.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    use tokio_rustls::rustls;
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gscrape test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "fake google");
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_cert.pem(),
    )
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let accept_encoding = header("accept-encoding");
    let user_agent = header("user-agent");
    let user_project = header("x-goog-user-project");
    let version = req.version();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        at: std::time::Instant::now(),
        method,
        target,
        authorization,
        accept_encoding,
        user_agent,
        user_project,
        version,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    state.seen.lock().unwrap().push(seen.clone());
    let config = state.config.lock().unwrap().clone();
    let form: HashMap<String, String> = parse_query(&seen.body).into_iter().collect();
    let query: HashMap<String, String> = seen.query().into_iter().collect();
    let token_uri = format!("{}token", state.root_url);
    let (status, body, location) = match seen.path() {
        "/o/oauth2/auth" => {
            let (status, location, body) = state
                .oauth
                .lock()
                .unwrap()
                .authorize_endpoint(&query, &config.oauth);
            (status, body, location)
        }
        "/token" => {
            let (status, body) =
                state
                    .oauth
                    .lock()
                    .unwrap()
                    .token_endpoint(&form, &token_uri, &config.oauth);
            (status, body, None)
        }
        "/revoke" => {
            let (status, body) = state.oauth.lock().unwrap().revoke_endpoint(&form);
            (status, body, None)
        }
        path if path.starts_with("/discovery/") => {
            let (status, body) = route(&seen, &config, &state.root_url);
            (status, body, None)
        }
        _ => {
            let (number, attempt) = {
                let mut counts = state.api_requests.lock().unwrap();
                counts.1 += 1;
                counts.2 = counts.2.max(counts.1);
                let key = format!("{} {} {}", seen.method, seen.target, seen.body);
                let mut attempts = state.attempts.lock().unwrap();
                let next = attempts.len() + 1;
                let entry = attempts.entry(key).or_insert((next, 0));
                entry.1 += 1;
                *entry
            };
            if !config.latency.is_zero() {
                // A thread's sleep, to the tenth of a millisecond: tokio's timer ticks by the
                // millisecond and would add up to two to every answer (and so to benchmarks).
                let latency = config.latency;
                let _ = tokio::task::spawn_blocking(move || std::thread::sleep(latency)).await;
            }
            state.api_requests.lock().unwrap().1 -= 1;
            if config.fast_drive && seen.path() == "/drive/v3/files" {
                let body = fast_drive_page(&query, &config);
                return Ok(Response::builder()
                    .header("content-type", "application/json; charset=UTF-8")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap());
            }
            if let (Some(page), "/drive/v3/files") = (&config.drive_raw_page, seen.path()) {
                return Ok(Response::builder()
                    .header("content-type", "application/json; charset=UTF-8")
                    .body(Full::new(Bytes::from(page.clone())))
                    .unwrap());
            }
            let faulty = |every: usize| every == 1 || (number % every == 0 && attempt == 1);
            if let Some((_, fault)) = config.faults.filter(|(every, _)| faulty(*every)) {
                return Ok(fault_response(fault));
            }
            let accepted = seen
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
                .is_some_and(|t| {
                    config
                        .accepted_tokens
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|a| a == t)
                });
            let allowed = accepted
                || query.get("key").is_some_and(|k| k == API_KEY)
                || state.oauth.lock().unwrap().authorize(
                    seen.authorization.as_deref(),
                    super::TOKEN,
                    &config.oauth,
                );
            let (status, body) = if config.echo_authorization {
                let header = seen.authorization.as_deref().unwrap_or("none");
                google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "badRequest",
                    &format!("Unexpected header Authorization: {header}"),
                )
            } else if allowed && config.insufficient_scopes {
                insufficient_scopes()
            } else if allowed && config.requires_quota_project && seen.user_project.is_none() {
                google_error(
                    403,
                    "PERMISSION_DENIED",
                    "forbidden",
                    "Your application is authenticating by using local Application Default \
                     Credentials. The drive.googleapis.com API requires a quota project, which \
                     is not set by default.",
                )
            } else if let Some(refused) = allowed
                .then(|| quota_refusal(&state, &seen, &config))
                .flatten()
            {
                refused
            } else if allowed {
                let path = seen.path().to_owned();
                let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                let sheets = state.sheets.lock().unwrap().route(
                    &seen.method,
                    &parts,
                    &query,
                    &seen.body,
                    &state.root_url,
                );
                let (status, mut body) =
                    sheets.unwrap_or_else(|| route(&seen, &config, &state.root_url));
                let quota = state.quota.lock().unwrap();
                quota.annotate(&config.quota, seen.path(), &seen.body, &mut body);
                (status, body)
            } else {
                state.oauth.lock().unwrap().unauthorized += 1;
                google_error(
                    401,
                    "UNAUTHENTICATED",
                    "authError",
                    "Request had invalid authentication credentials.",
                )
            };
            (status, body, None)
        }
    };
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8");
    if let Some(location) = location {
        response = response.header("location", location);
    }
    // `null` stands for no body (no Google answer is a bare `null`).
    let body = match body {
        Value::Null => Bytes::new(),
        body => Bytes::from(body.to_string()),
    };
    Ok(response.body(Full::new(body)).unwrap())
}

/// Google's refusal of `seen` by its quotas (the user is the delegated subject of its token,
/// else `me`), or `None` when it may go.
fn quota_refusal(state: &State, seen: &Seen, config: &Config) -> Option<(StatusCode, Value)> {
    let token = seen
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default();
    let user = state
        .oauth
        .lock()
        .unwrap()
        .subject_of(token)
        .flatten()
        .unwrap_or_else(|| "me".to_owned());
    let mut quota = state.quota.lock().unwrap();
    quota
        .admit(&config.quota, &seen.method, seen.path(), &user)
        .err()
}

/// The answer to `seen`, cut down to the fields it asked for (or the method's default set), as
/// Google does.
fn route(seen: &Seen, config: &Config, root_url: &str) -> (StatusCode, Value) {
    let (status, body) = route_whole(seen, config, root_url);
    let document = seen.path().starts_with("/discovery/") && seen.path().ends_with("/rest");
    if !status.is_success() || document || body.get("error").is_some() {
        return (status, body);
    }
    let fields = seen.param("fields");
    let default = match seen.path() {
        "/drive/v3/files" if seen.method == "GET" => Some(partial::DRIVE_FILES_DEFAULT),
        _ => None,
    };
    match fields.as_deref().or(default).map(partial::Selection::parse) {
        None => (status, body),
        Some(Ok(selection)) => (status, selection.apply(&body)),
        Some(Err(message)) => google_error(400, "INVALID_ARGUMENT", "invalidParameter", &message),
    }
}

fn route_whole(seen: &Seen, config: &Config, root_url: &str) -> (StatusCode, Value) {
    let path = seen.path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query: HashMap<String, String> = seen.query().into_iter().collect();
    if let ["discovery", "v1", "apis", api, version, "rest"] = parts.as_slice() {
        return discovery_document(api, version, root_url);
    }
    if let ["discovery", "v1", "apis"] = parts.as_slice() {
        return api_directory(root_url);
    }
    match parts.as_slice() {
        ["drive", "v3", "files"] if seen.method == "POST" => {
            // files.create: echo the metadata sent, as the created file.
            let mut file: Value = serde_json::from_str(&seen.body).unwrap_or(json!({}));
            file["id"] = json!("new-file-1");
            file["kind"] = json!("drive#file");
            (StatusCode::OK, file)
        }
        ["drive", "v3", "files"] => drive_files_list(&query, config),
        ["gmail", "v1", "users", _user, "messages"] => {
            let items: Vec<Value> = (0..config.gmail_messages).map(gmail_message_ref).collect();
            page_of(&items, &query, "maxResults", 100, |page, next| {
                let mut out =
                    json!({"messages": page, "resultSizeEstimate": config.gmail_messages});
                if let Some(next) = next {
                    out["nextPageToken"] = json!(next);
                }
                out
            })
        }
        ["gmail", "v1", "users", _user, "messages", id] => {
            // Ids are `m` + hex of 0x1000 + n: read n back (a search would make the server slow).
            let index = id
                .strip_prefix('m')
                .and_then(|hex| usize::from_str_radix(hex, 16).ok())
                .and_then(|n| n.checked_sub(0x1000))
                .filter(|n| *n < config.gmail_messages && gmail_message_id(*n) == *id);
            let gone = index.and_then(|i| config.gmail_gone.iter().find(|(n, _)| *n == i));
            match index {
                Some(_) if gone.is_some() => {
                    let status = gone.map_or(404, |(_, status)| *status);
                    let word = if status == 410 { "GONE" } else { "NOT_FOUND" };
                    google_error(status, word, "notFound", "Requested entity was not found.")
                }
                Some(i) => (StatusCode::OK, gmail_message(i)),
                None => google_error(
                    404,
                    "NOT_FOUND",
                    "notFound",
                    "Requested entity was not found.",
                ),
            }
        }
        ["calendar", "v3", "calendars", _calendar, "events"] => {
            let items: Vec<Value> = (0..config.calendar_events).map(calendar_event).collect();
            page_of(&items, &query, "maxResults", 250, |page, next| {
                let mut out = json!({"kind": "calendar#events", "summary": "Team", "items": page});
                match next {
                    Some(next) => out["nextPageToken"] = json!(next),
                    None => out["nextSyncToken"] = json!("sync-1"),
                }
                out
            })
        }
        ["admin", "directory", "v1", "users"] => {
            if !query.contains_key("customer") && !query.contains_key("domain") {
                return google_error(400, "INVALID_ARGUMENT", "badRequest", "Bad Request");
            }
            let items: Vec<Value> = (0..config.directory_users).map(directory_user).collect();
            page_of(&items, &query, "maxResults", 100, |page, next| {
                let mut out = json!({"kind": "admin#directory#users", "users": page});
                if let Some(next) = next {
                    out["nextPageToken"] = json!(next);
                }
                out
            })
        }
        // Cloud Storage `objects.list` (as an emulator serves it), two objects in any bucket.
        ["storage", "v1", "b", bucket, "o"] => (
            StatusCode::OK,
            json!({"kind": "storage#objects", "items": [
                {"kind": "storage#object", "bucket": bucket, "name": "a.txt", "size": "3"},
                {"kind": "storage#object", "bucket": bucket, "name": "b.txt", "size": "5"},
            ]}),
        ),
        _ => fake_reports::route(&seen.method, &parts, &query, &seen.body, &config.reports)
            .unwrap_or_else(|| google_error(404, "NOT_FOUND", "notFound", "Not Found")),
    }
}

/// Discovery requests each server (by root URL) still answers 503. Kept here because
/// `discovery_document` is reached from `route`, which carries no server state to count in.
static DISCOVERY_OUTAGES: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

/// Documents each server (by root URL) serves revised, as Google revises its own: the API
/// (`drive.v3`), a new revision, and a field added to a schema (`schema`, `field`, its type).
static DISCOVERY_REVISIONS: Mutex<Vec<(String, String, Revision)>> = Mutex::new(Vec::new());

/// A revision of a Discovery document: a new `revision` and one field added to a schema.
#[derive(Debug, Clone)]
pub struct Revision {
    pub revision: &'static str,
    pub schema: &'static str,
    pub field: &'static str,
    pub field_type: &'static str,
}

impl FakeGoogle {
    /// From now on, the Discovery document of `api` (`drive.v3`) is served revised.
    pub fn revise_discovery(&self, api: &str, revision: Revision) {
        let mut revisions = DISCOVERY_REVISIONS.lock().unwrap();
        revisions.retain(|(root, name, _)| !(*root == self.state.root_url && name == api));
        revisions.push((self.state.root_url.clone(), api.to_owned(), revision));
    }

    /// The next `n` Discovery requests are answered 503.
    pub fn fail_discovery(&self, n: usize) {
        let mut outages = DISCOVERY_OUTAGES.lock().unwrap();
        outages.retain(|(root, _)| *root != self.state.root_url);
        outages.push((self.state.root_url.clone(), n));
    }
}

/// `discovery.apis.list`: Google's public directory of APIs (here: the documents served).
fn api_directory(root_url: &str) -> (StatusCode, Value) {
    let items: Vec<Value> = DOCUMENTS
        .iter()
        .map(|(key, text)| {
            let doc: Value = serde_json::from_str(text).unwrap();
            let (name, version) = key.split_once('.').unwrap();
            json!({
                "kind": "discovery#directoryItem",
                "id": format!("{name}:{version}"),
                "name": name,
                "version": version,
                "title": doc["title"],
                "preferred": true,
                "documentationLink": doc["documentationLink"],
                "discoveryRestUrl": format!("{root_url}discovery/v1/apis/{name}/{version}/rest"),
            })
        })
        .collect();
    (
        StatusCode::OK,
        json!({"kind": "discovery#directoryList", "discoveryVersion": "v1", "items": items}),
    )
}

fn discovery_document(api: &str, version: &str, root_url: &str) -> (StatusCode, Value) {
    if let Some((_, left)) = DISCOVERY_OUTAGES
        .lock()
        .unwrap()
        .iter_mut()
        .find(|(root, left)| root == root_url && *left > 0)
    {
        *left -= 1;
        return google_error(
            503,
            "UNAVAILABLE",
            "backendError",
            "The service is currently unavailable.",
        );
    }
    let key = format!("{api}.{version}");
    let Some((_, text)) = DOCUMENTS.iter().find(|(k, _)| *k == key) else {
        return google_error(
            404,
            "NOT_FOUND",
            "notFound",
            "Requested entity was not found.",
        );
    };
    let mut doc: Value = serde_json::from_str(text).unwrap();
    doc["rootUrl"] = json!(root_url);
    let revised = DISCOVERY_REVISIONS
        .lock()
        .unwrap()
        .iter()
        .find_map(|(root, name, r)| (root == root_url && *name == key).then(|| r.clone()));
    if let Some(r) = revised {
        doc["revision"] = json!(r.revision);
        doc["schemas"][r.schema]["properties"][r.field] = json!({ "type": r.field_type });
    }
    (StatusCode::OK, doc)
}

fn drive_files_list(query: &HashMap<String, String>, config: &Config) -> (StatusCode, Value) {
    let size: usize = query
        .get("pageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let epoch = match config.drive_token_epoch {
        0 => "tok-".to_owned(),
        n => format!("tok{n}-"),
    };
    let offset: usize = match query.get("pageToken") {
        None => 0,
        Some(token) => match token.strip_prefix(&epoch).and_then(|n| n.parse().ok()) {
            Some(offset) => offset,
            None if config.drive_repeat_token => size,
            None => return google_error(400, "INVALID_ARGUMENT", "invalid", "Invalid page token."),
        },
    };
    let page_number = offset / size.max(1) + 1;
    if let Some(message) = &config.drive_error {
        return google_error(400, "INVALID_ARGUMENT", "badRequest", message);
    }
    if config.drive_quota_page == Some(page_number) {
        return google_error(
            403,
            "PERMISSION_DENIED",
            "dailyLimitExceeded",
            "The quota has been exceeded for today.",
        );
    }
    if config.drive_fail_page == Some(page_number) {
        return google_error(
            500,
            "INTERNAL",
            "backendError",
            "Internal error encountered.",
        );
    }
    let file = |i: usize| {
        let mut file = drive_file(i);
        if config.drive_long_versions {
            file["version"] = json!(drive_long_version(i));
        }
        if config.drive_modified {
            file["modifiedTime"] = json!(drive_modified_time(i));
        }
        file
    };
    // The files `q` asks for (only a newer-than filter is read), paged from `offset`; without
    // one, only the page is made (some tests list many files).
    let (files, more) = match query.get("q").and_then(|q| newer_than(q)) {
        Some((field, since)) => {
            let newer: Vec<Value> = (0..config.drive_files)
                .map(file)
                .filter(|f| {
                    f.get(field)
                        .and_then(Value::as_str)
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|at| at > since)
                })
                .collect();
            let end = (offset + size).min(newer.len());
            (newer[offset.min(end)..end].to_vec(), end < newer.len())
        }
        None => {
            let end = (offset + size).min(config.drive_files);
            ((offset..end).map(file).collect(), end < config.drive_files)
        }
    };
    let end = offset + files.len();
    let mut out = json!({"kind": "drive#fileList", "incompleteSearch": false, "files": files});
    if more {
        out["nextPageToken"] = if config.drive_repeat_token {
            json!("the-same-token")
        } else {
            json!(format!("{epoch}{end}"))
        };
    }
    let fault = config.drive_bad_page.as_ref().filter(|f| {
        use std::sync::atomic::Ordering;
        f.page == page_number && f.served.fetch_add(1, Ordering::SeqCst) < f.times
    });
    match fault.map(|f| f.kind) {
        None => (StatusCode::OK, out),
        // `null` is sent as no body at all (see `handle`).
        Some(BadPage::Empty) => (StatusCode::OK, Value::Null),
        Some(BadPage::NoContent) => (StatusCode::NO_CONTENT, Value::Null),
        Some(BadPage::ErrorInBody) => {
            let (_, error) = google_error(
                403,
                "PERMISSION_DENIED",
                "forbidden",
                "The caller does not have permission",
            );
            (StatusCode::OK, error)
        }
        Some(BadPage::TokenNumber) => {
            out["nextPageToken"] = json!(12345);
            (StatusCode::OK, out)
        }
        Some(BadPage::TokenObject) => {
            out["nextPageToken"] = json!({"token": "tok-50"});
            (StatusCode::OK, out)
        }
        Some(BadPage::NotObjects) => {
            out["files"] = json!([1, "a", null]);
            (StatusCode::OK, out)
        }
    }
}

/// The field and time of a Drive query `q` of the form `FIELD > 'RFC 3339 TIME'`, as an
/// incremental query sends it (only what is newer; a file without the field does not match).
fn newer_than(q: &str) -> Option<(&str, chrono::DateTime<chrono::FixedOffset>)> {
    let (field, time) = q.split_once(" > ")?;
    let field = field.trim();
    let time = time.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    let since = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    field
        .chars()
        .all(|c| c.is_ascii_alphanumeric())
        .then_some((field, since))
}

/// The `modifiedTime` of Drive file `i` ([`Config::drive_modified`]): a second after file
/// `i - 1`'s, from 2024-03-01.
pub fn drive_modified_time(i: usize) -> String {
    format!(
        "2024-03-01T{:02}:{:02}:{:02}.000Z",
        i / 3600,
        i / 60 % 60,
        i % 60
    )
}

/// The Drive page of `drive_files_list`, written straight into a string: the same shape of
/// records (ten fields, nested owners, a list of parents), a fraction of the cost.
fn fast_drive_page(query: &HashMap<String, String>, config: &Config) -> String {
    use std::fmt::Write;
    let size: usize = query
        .get("pageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let offset: usize = query
        .get("pageToken")
        .and_then(|t| t.strip_prefix("tok-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let end = (offset + size).min(config.drive_files);
    let mut out = String::with_capacity((end - offset.min(end)) * 420 + 100);
    out.push_str(r#"{"kind":"drive#fileList","incompleteSearch":false,"files":["#);
    for i in offset.min(end)..end {
        if i > offset {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"kind":"drive#file","id":"f{i:07}","name":"Quarterly report {i}, \"final\"","mimeType":"{}","size":"{}","starred":{},"createdTime":"2024-01-{:02}T10:00:{:02}.000Z","modifiedTime":"2024-02-{:02}T11:30:00.000Z","owners":[{{"kind":"drive#user","displayName":"Owner {}","emailAddress":"owner{}@example.com","me":{}}}],"parents":["root","folder{}"],"webViewLink":"https://drive.example.com/file/d/f{i:07}/view"}}"#,
            if i.is_multiple_of(2) {
                "application/pdf"
            } else {
                "text/csv"
            },
            i * 1000 + 7,
            i % 3 == 0,
            i % 28 + 1,
            i % 60,
            i % 28 + 1,
            i % 5,
            i % 5,
            i % 5 == 0,
            i % 3,
        );
    }
    out.push(']');
    if end < config.drive_files {
        let _ = write!(out, r#","nextPageToken":"tok-{end}""#);
    }
    out.push('}');
    out
}

/// A page of `items` by `pageToken` (`tok-OFFSET`) and a page-size parameter.
fn page_of(
    items: &[Value],
    query: &HashMap<String, String>,
    size_param: &str,
    default_size: usize,
    shape: impl Fn(&[Value], Option<String>) -> Value,
) -> (StatusCode, Value) {
    let size: usize = query
        .get(size_param)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_size)
        .max(1);
    let offset: usize = query
        .get("pageToken")
        .and_then(|t| t.strip_prefix("tok-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let end = (offset + size).min(items.len());
    let next = (end < items.len()).then(|| format!("tok-{end}"));
    (StatusCode::OK, shape(&items[offset.min(end)..end], next))
}

fn google_error(code: u16, status: &str, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"error": {"code": code, "message": message, "status": status,
                         "errors": [{"message": message, "domain": "global", "reason": reason}]}}),
    )
}

/// Google's answer to a token granted none of the scopes of the method called.
fn insufficient_scopes() -> (StatusCode, Value) {
    let message = "Request had insufficient authentication scopes.";
    (
        StatusCode::FORBIDDEN,
        json!({"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED",
                         "errors": [{"message": "Insufficient Permission", "domain": "global",
                                     "reason": "insufficientPermissions"}],
                         "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                      "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                                      "domain": "googleapis.com",
                                      "metadata": {"service": "drive.googleapis.com"}}]}}),
    )
}

/// The tricky file names: commas, quotes, CR/LF, non-ASCII, formula-like, spaces.
pub fn drive_file_name(i: usize) -> String {
    match i % 7 {
        0 => format!("Report, Q{i}"),
        1 => format!("Say \"hi\" {i}"),
        2 => format!("line one\r\nline two {i}"),
        3 => format!("Café ☕ {i}"),
        4 => format!("=SUM(A1:A{i})"),
        5 => format!("plain {i}"),
        _ => format!("  spaced {i} "),
    }
}

/// Drive file number `i`.
/// The 21-digit `version` of file `i` ([`Config::drive_long_versions`]).
pub fn drive_long_version(i: usize) -> String {
    (100_000_136_831_429_000_000u128 + i as u128).to_string()
}

pub fn drive_file(i: usize) -> Value {
    let mut file = json!({
        "kind": "drive#file",
        "id": format!("f{i:04}"),
        "name": drive_file_name(i),
        "mimeType": if i.is_multiple_of(2) { "application/pdf" } else { "text/csv" },
        "size": format!("{}", i * 1000 + 7),
        "starred": i.is_multiple_of(3),
        "createdTime": format!("2024-01-{:02}T10:00:{:02}.000Z", i % 28 + 1, i % 60),
        "owners": [{"kind": "drive#user", "displayName": format!("Owner {}", i % 5),
                    "emailAddress": format!("owner{}@example.com", i % 5), "me": i.is_multiple_of(5)}],
        "parents": ["root", format!("folder{}", i % 3)],
        "properties": {"project": format!("p{}", i % 4)},
    });
    if i % 10 == 9 {
        file.as_object_mut().unwrap().remove("size");
    }
    file
}

pub fn gmail_message_id(i: usize) -> String {
    format!("m{:05x}", 0x1000 + i)
}

fn gmail_message_ref(i: usize) -> Value {
    json!({"id": gmail_message_id(i), "threadId": format!("t{}", i / 2)})
}

pub fn gmail_message(i: usize) -> Value {
    json!({
        "id": gmail_message_id(i),
        "threadId": format!("t{}", i / 2),
        "labelIds": ["INBOX", if i.is_multiple_of(2) { "UNREAD" } else { "IMPORTANT" }],
        "snippet": format!("Hello, number {i} — ünïcode"),
        "historyId": format!("{}", 9000 + i),
        "internalDate": format!("{}", 1_700_000_000_000u64 + i as u64 * 1000),
        "sizeEstimate": 1000 + i,
        "payload": {
            "partId": "",
            "mimeType": "text/plain",
            "filename": "",
            "headers": [
                {"name": "Subject", "value": format!("Subject {i}")},
                {"name": "From", "value": "Ann <ann@example.com>"}
            ],
            "body": {"size": 10 + i, "data": "SGVsbG8="}
        }
    })
}

/// Calendar event number `i`; every fifth, from the third, lasts all day (Google then sends
/// `start.date`, not `start.dateTime`).
pub fn calendar_event(i: usize) -> Value {
    let (start, end) = match i % 5 == 2 {
        true => (
            json!({"date": format!("2025-03-{:02}", i + 1)}),
            json!({"date": format!("2025-03-{:02}", i + 2)}),
        ),
        false => (
            json!({"dateTime": format!("2025-03-{:02}T09:00:00Z", i + 1)}),
            json!({"dateTime": format!("2025-03-{:02}T10:00:00Z", i + 1)}),
        ),
    };
    json!({
        "kind": "calendar#event",
        "id": format!("ev{i}"),
        "status": "confirmed",
        "summary": format!("Meeting {i}"),
        "start": start,
        "end": end,
        "attendees": [{"email": "a@example.com"}, {"email": "b@example.com"}]
    })
}

pub fn directory_user(i: usize) -> Value {
    json!({
        "kind": "admin#directory#user",
        "id": format!("{}", 100 + i),
        "primaryEmail": format!("user{i}@example.com"),
        "name": {"givenName": format!("Given{i}"), "familyName": format!("Family{i}"),
                 "fullName": format!("Given{i} Family{i}")},
        "isAdmin": i == 0,
        "suspended": false,
        "orgUnitPath": "/"
    })
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn fault_response(fault: Fault) -> Response<Full<Bytes>> {
    let (status, retry_after) = match fault {
        Fault::TooManyRequests { retry_after } => (
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "rateLimitExceeded",
                "Too many requests.",
            ),
            Some(retry_after),
        ),
        Fault::Unavailable => (
            google_error(
                503,
                "UNAVAILABLE",
                "backendError",
                "The service is currently unavailable.",
            ),
            None,
        ),
        Fault::RateLimited => (
            google_error(
                403,
                "PERMISSION_DENIED",
                "rateLimitExceeded",
                "Rate Limit Exceeded",
            ),
            None,
        ),
        Fault::QuotaExhausted => (
            google_error(
                403,
                "PERMISSION_DENIED",
                "dailyLimitExceeded",
                "Daily Limit Exceeded",
            ),
            None,
        ),
    };
    let mut response = Response::builder()
        .status(status.0)
        .header("content-type", "application/json; charset=UTF-8");
    if let Some(seconds) = retry_after {
        response = response.header("retry-after", seconds.to_string());
    }
    response
        .body(Full::new(Bytes::from(status.1.to_string())))
        .unwrap_or_default()
}
