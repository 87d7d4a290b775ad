//! The OAuth side of the fake Google: an authorization endpoint that redirects with a code (or
//! `error=access_denied`) and the request's `state`, a token endpoint for the
//! `authorization_code`, `refresh_token` and JWT-bearer grants (RS256 checked against the test
//! key's public half), token revocation, and the check of bearer tokens on API requests.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine;
use hyper::StatusCode;
use serde_json::{json, Value};

/// The client in `client_secret.json` files written by the tests.
pub const CLIENT_ID: &str = "test-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "test-client-secret-never-printed";
/// The account a browser login signs in as.
pub const LOGIN_EMAIL: &str = "analyst@example.com";
/// The service account of `sa-private-key.pem`.
pub const SA_EMAIL: &str = "exporter@test-project.iam.gserviceaccount.com";
/// The public half of the test service-account key (PKCS#1 DER).
const SA_PUBLIC_KEY: &[u8] = include_bytes!("../../fixtures/auth/sa-public-key.der");

/// A token the server handed out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub expires: Instant,
    pub subject: Option<String>,
}

/// One request to the token endpoint, as understood by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub grant_type: String,
    /// JWT claims (JWT-bearer grant only).
    pub claims: Option<Value>,
}

#[derive(Debug, Default)]
pub struct OAuthState {
    next: usize,
    codes: HashMap<String, (String, String)>, // code → (redirect_uri, scope)
    refresh_tokens: HashMap<String, String>,  // refresh token → scope
    pub access: HashMap<String, Issued>,
    pub revoked: HashSet<String>,
    pub grants: Vec<Grant>,
    /// How many API requests each access token was used for.
    pub uses: HashMap<String, usize>,
    /// How many API requests were answered 401.
    pub unauthorized: usize,
    /// Requests to the token endpoint so far.
    token_requests: usize,
    /// The scopes the (one) user has granted the client so far: Google adds them to a new
    /// grant asked with `include_granted_scopes=true` (incremental authorization).
    granted_before: Vec<String>,
}

/// Knobs of the OAuth side.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The authorization endpoint answers `error=access_denied`.
    pub deny: bool,
    /// `expires_in` of the access tokens handed out.
    pub token_lifetime: Duration,
    /// Every refresh-token grant fails with `invalid_grant`.
    pub invalid_grant: bool,
    /// An issued access token is refused (401) after this many API requests.
    pub token_uses: Option<usize>,
    /// The token endpoint answers its first N requests with 503 (an outage that passes).
    pub unavailable: usize,
    /// The token endpoint refuses every grant, quoting the request's form in its error (as
    /// some servers do): secrets a client must not print.
    pub echo_form: bool,
    /// The token endpoint refuses grants quoting the secrets of their form in this encoding
    /// (after answering its first `echo_after` grants with a token, whatever they carry).
    pub echo_form_as: Option<Echo>,
    pub echo_after: usize,
    /// Scopes the user unticks on the consent screen (granular consent): not granted.
    pub untick: Vec<String>,
}

/// How a token endpoint quotes the secrets of a request it refuses: every form a secret
/// travels in, which a client must redact as well as the raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// The form body as sent (`application/x-www-form-urlencoded`: `%2F`, `+` for a space).
    AsSent,
    /// Percent-encoded in lower-case hex: the form's encoding, and every byte but letters and
    /// digits.
    LowerHex,
    /// JSON-escaped: `\/` for `/`.
    JsonSlash,
    /// JSON-escaped: `\u00XX` for every character but letters and digits, in upper and in lower
    /// case.
    JsonUnicode,
    /// base64 of each secret (padded and not), and HTTP Basic of the client id and secret.
    Base64,
    /// base64url of each secret (padded and not).
    Base64Url,
}

impl Echo {
    pub const ALL: [Echo; 6] = [
        Echo::AsSent,
        Echo::LowerHex,
        Echo::JsonSlash,
        Echo::JsonUnicode,
        Echo::Base64,
        Echo::Base64Url,
    ];

    /// The words of the refusal, quoting `form`'s secrets.
    fn quote(self, form: &HashMap<String, String>) -> String {
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        let (id, secret, refresh) = (
            field("client_id"),
            field("client_secret"),
            field("refresh_token"),
        );
        let both = |encode: &dyn Fn(&str) -> Vec<String>| {
            format!(
                "client_secret={} refresh_token={}",
                encode(&secret).join(" "),
                encode(&refresh).join(" ")
            )
        };
        match self {
            Echo::AsSent => {
                let mut pairs: Vec<(&String, &String)> = form.iter().collect();
                pairs.sort();
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish()
            }
            Echo::LowerHex => both(&|s| {
                vec![
                    lower_hex(&form_encoded(s)),
                    lower_hex(&every_byte_encoded(s)),
                ]
            }),
            Echo::JsonSlash => both(&|s| vec![s.replace('/', "\\/")]),
            Echo::JsonUnicode => both(&|s| vec![json_unicode(s, false), json_unicode(s, true)]),
            Echo::Base64 => format!(
                "{} Authorization: Basic {}",
                both(&|s| vec![b64_std(s.as_bytes()), b64_std_no_pad(s.as_bytes())]),
                basic(&id, &secret)
            ),
            Echo::Base64Url => both(&|s| vec![b64_url_padded(s.as_bytes()), b64(s.as_bytes())]),
        }
    }
}

/// `text` as `application/x-www-form-urlencoded` writes it.
fn form_encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `text` with every byte but letters and digits percent-encoded (upper-case hex).
fn every_byte_encoded(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Percent-encoding with lower-case hex.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::new();
    let mut rest = encoded;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let hex = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&hex.to_ascii_lowercase());
        rest = &rest[at + hex.len()..];
    }
    out.push_str(rest);
    out
}

/// JSON's `\u00XX` for every character but letters and digits.
fn json_unicode(text: &str, upper: bool) -> String {
    text.chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_string(),
            false if upper => format!("\\u{:04X}", c as u32),
            false => format!("\\u{:04x}", c as u32),
        })
        .collect()
}

fn b64_std(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn b64_std_no_pad(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

fn b64_url_padded(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// The credentials of HTTP Basic authentication: base64 of `id:secret`.
pub fn basic(id: &str, secret: &str) -> String {
    b64_std(format!("{id}:{secret}").as_bytes())
}

/// Every form `secret` travels in (for checking that none is printed): as is, percent-encoded
/// (the form's way and every byte, upper- and lower-case hex), JSON-escaped (`\/`, `\u00XX` in
/// either case), base64 and base64url (padded and not).
pub fn encoded_forms(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut forms = vec![
        secret.to_owned(),
        form_encoded(secret),
        lower_hex(&form_encoded(secret)),
        every_byte_encoded(secret),
        lower_hex(&every_byte_encoded(secret)),
        secret.replace('/', "\\/"),
        json_unicode(secret, true),
        json_unicode(secret, false),
        b64_std(bytes),
        b64_std_no_pad(bytes),
        b64_url_padded(bytes),
        b64(bytes),
    ];
    forms.sort();
    forms.dedup();
    forms
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            deny: false,
            token_lifetime: Duration::from_secs(3600),
            invalid_grant: false,
            token_uses: None,
            unavailable: 0,
            echo_form: false,
            echo_form_as: None,
            echo_after: 0,
            untick: Vec::new(),
        }
    }
}

impl OAuthState {
    /// A refresh token for `scope`, as if a login had happened (for tests that need a
    /// refresh-token grant without driving the browser flow).
    pub fn seed_refresh_token(&mut self, scope: &str) -> String {
        self.next += 1;
        let refresh = format!("1//refresh-{}", self.next);
        self.refresh_tokens
            .insert(refresh.clone(), scope.to_owned());
        refresh
    }

    fn issue(&mut self, lifetime: Duration, subject: Option<String>) -> String {
        self.next += 1;
        let token = format!("ya29.issued-{}", self.next);
        self.access.insert(
            token.clone(),
            Issued {
                expires: Instant::now() + lifetime,
                subject,
            },
        );
        token
    }

    /// The subject of a token this server knows (`None`: unknown).
    pub fn subject_of(&self, token: &str) -> Option<Option<String>> {
        self.access.get(token).map(|i| i.subject.clone())
    }

    /// Whether an API request with `authorization` may proceed (and counts the use).
    pub fn authorize(
        &mut self,
        authorization: Option<&str>,
        static_token: &str,
        config: &OAuthConfig,
    ) -> bool {
        let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
            return false;
        };
        if token == static_token {
            return true;
        }
        let Some(issued) = self.access.get(token) else {
            return false;
        };
        if issued.expires <= Instant::now() || self.revoked.contains(token) {
            return false;
        }
        let uses = self.uses.entry(token.to_owned()).or_default();
        *uses += 1;
        config.token_uses.is_none_or(|max| *uses <= max)
    }

    /// `GET /o/oauth2/auth`: a redirect to `redirect_uri` with a code or an error.
    pub fn authorize_endpoint(
        &mut self,
        query: &HashMap<String, String>,
        config: &OAuthConfig,
    ) -> (StatusCode, Option<String>, Value) {
        let redirect = query.get("redirect_uri").cloned().unwrap_or_default();
        if query.get("client_id").map(String::as_str) != Some(CLIENT_ID) || redirect.is_empty() {
            return (
                StatusCode::BAD_REQUEST,
                None,
                json!({"error": "invalid_request"}),
            );
        }
        // Google sends the request's `state` back unchanged, after the code or error.
        let state = match query.get("state") {
            Some(state) => format!(
                "&state={}",
                percent_encoding::utf8_percent_encode(state, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => String::new(),
        };
        if config.deny {
            return (
                StatusCode::FOUND,
                Some(format!("{redirect}/?error=access_denied{state}")),
                json!({}),
            );
        }
        self.next += 1;
        let code = format!("4/code-{}", self.next);
        let mut granted: Vec<String> = (query.get("scope").map(String::as_str))
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty() && !config.untick.iter().any(|u| u == s))
            .map(str::to_owned)
            .collect();
        if query.get("include_granted_scopes").map(String::as_str) == Some("true") {
            for before in &self.granted_before {
                if !granted.contains(before) {
                    granted.push(before.clone());
                }
            }
        }
        for scope in &granted {
            if !self.granted_before.contains(scope) {
                self.granted_before.push(scope.clone());
            }
        }
        let scope = granted.join(" ");
        self.codes
            .insert(code.clone(), (redirect.clone(), scope.clone()));
        let location = format!(
            "{redirect}/?code={}&scope={}{state}",
            percent_encoding::utf8_percent_encode(&code, percent_encoding::NON_ALPHANUMERIC),
            percent_encoding::utf8_percent_encode(&scope, percent_encoding::NON_ALPHANUMERIC)
        );
        (StatusCode::FOUND, Some(location), json!({}))
    }

    /// `POST /token`.
    pub fn token_endpoint(
        &mut self,
        form: &HashMap<String, String>,
        token_uri: &str,
        config: &OAuthConfig,
    ) -> (StatusCode, Value) {
        self.token_requests += 1;
        if self.token_requests <= config.unavailable {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "temporarily_unavailable", "error_description": "Try again later."}),
            );
        }
        if let Some(echo) = config.echo_form_as {
            if self.token_requests > config.echo_after {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": "invalid_request",
                           "error_description": format!("Bad request: {}", echo.quote(form))}),
                );
            }
            let access = self.issue(config.token_lifetime, None);
            return (
                StatusCode::OK,
                json!({"access_token": access, "expires_in": config.token_lifetime.as_secs(),
                       "token_type": "Bearer"}),
            );
        }
        if config.echo_form {
            let mut fields: Vec<String> = form.iter().map(|(k, v)| format!("{k}={v}")).collect();
            fields.sort();
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request",
                       "error_description": format!("Bad request: {}", fields.join("&"))}),
            );
        }
        let grant_type = form.get("grant_type").cloned().unwrap_or_default();
        let lifetime = config.token_lifetime;
        let client_ok = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
        match grant_type.as_str() {
            "authorization_code" => {
                self.grants.push(Grant {
                    grant_type,
                    claims: None,
                });
                let code = form.get("code").cloned().unwrap_or_default();
                let Some((redirect, scope)) = self.codes.remove(&code) else {
                    return invalid_grant("Malformed auth code.");
                };
                if !client_ok || form.get("redirect_uri") != Some(&redirect) {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!({"error": "redirect_uri_mismatch"}),
                    );
                }
                self.next += 1;
                let refresh = format!("1//refresh-{}", self.next);
                self.refresh_tokens.insert(refresh.clone(), scope.clone());
                let access = self.issue(lifetime, None);
                let mut out = json!({"access_token": access, "expires_in": lifetime.as_secs(),
                    "refresh_token": refresh, "scope": scope, "token_type": "Bearer"});
                if scope.split(' ').any(|s| s == "openid") {
                    out["id_token"] = json!(id_token(LOGIN_EMAIL));
                }
                (StatusCode::OK, out)
            }
            "refresh_token" => {
                self.grants.push(Grant {
                    grant_type,
                    claims: None,
                });
                let refresh = form.get("refresh_token").cloned().unwrap_or_default();
                if !client_ok {
                    return (StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
                }
                if config.invalid_grant || self.revoked.contains(&refresh) {
                    return invalid_grant("Token has been expired or revoked.");
                }
                let Some(scope) = self.refresh_tokens.get(&refresh).cloned() else {
                    return invalid_grant("Bad Request");
                };
                let access = self.issue(lifetime, None);
                (
                    StatusCode::OK,
                    json!({"access_token": access, "expires_in": lifetime.as_secs(),
                    "scope": scope, "token_type": "Bearer"}),
                )
            }
            "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
                let assertion = form.get("assertion").cloned().unwrap_or_default();
                let claims = match verify_jwt(&assertion) {
                    Ok(claims) => claims,
                    Err(why) => {
                        self.grants.push(Grant {
                            grant_type,
                            claims: None,
                        });
                        return (
                            StatusCode::BAD_REQUEST,
                            json!({"error": "invalid_grant", "error_description": why}),
                        );
                    }
                };
                self.grants.push(Grant {
                    grant_type,
                    claims: Some(claims.clone()),
                });
                if claims["iss"] != SA_EMAIL || claims["aud"] != token_uri {
                    return invalid_grant("Invalid JWT: wrong iss or aud.");
                }
                let subject = claims["sub"].as_str().map(str::to_owned);
                let access = self.issue(lifetime, subject);
                (
                    StatusCode::OK,
                    json!({"access_token": access, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}),
                )
            }
            _ => (
                StatusCode::BAD_REQUEST,
                json!({"error": "unsupported_grant_type"}),
            ),
        }
    }

    /// `POST /revoke`.
    pub fn revoke_endpoint(&mut self, form: &HashMap<String, String>) -> (StatusCode, Value) {
        match form.get("token") {
            Some(token) => {
                self.revoked.insert(token.clone());
                (StatusCode::OK, json!({}))
            }
            None => (StatusCode::BAD_REQUEST, json!({"error": "invalid_request"})),
        }
    }
}

fn invalid_grant(description: &str) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({"error": "invalid_grant", "error_description": description}),
    )
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An (unsigned) OpenID id_token naming `email`.
fn id_token(email: &str) -> String {
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(
        json!({"iss": "https://accounts.google.com", "email": email})
            .to_string()
            .as_bytes(),
    );
    format!("{header}.{payload}.")
}

/// Checks an RS256 JWT against the test service account's public key; returns its claims.
fn verify_jwt(jwt: &str) -> Result<Value, String> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT".into());
    };
    let decode = |part: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|e| e.to_string())
    };
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {} is not RS256", header["alg"]));
    }
    let signed = &jwt[..jwt.rfind('.').unwrap()];
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        SA_PUBLIC_KEY,
    );
    key.verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| "Invalid JWT Signature.".to_string())?;
    serde_json::from_slice(&decode(payload)?).map_err(|e| e.to_string())
}
