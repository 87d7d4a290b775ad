//! Where an `external_account` gets its subject token (`credential_source`), as google-auth
//! reads it: a file (`identity_pool.py`), a URL (`identity_pool.py`), an executable
//! (`pluggable.py`, AIP-4117) or AWS ([`super::aws`]). Every token is registered with the
//! redactor as soon as it is read.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use http::Request;
use serde_json::Value;

use super::aws::Aws;
use super::source::{ChainError, Http};
use crate::redact::{quote, register, Quoted};

/// The bounds google-auth puts on an executable's `timeout_millis`, and its default.
pub const EXECUTABLE_TIMEOUT_MIN_MS: u64 = 5_000;
pub const EXECUTABLE_TIMEOUT_MAX_MS: u64 = 120_000;
pub const EXECUTABLE_TIMEOUT_DEFAULT_MS: u64 = 30_000;

/// The most an executable may print on stdout or stderr.
const OUTPUT_CAP: u64 = 1 << 20;

/// The variable that must be `1` before an executable runs (google-auth's name).
pub const ALLOW_EXECUTABLES: &str = "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES";

/// A credential source.
#[derive(Clone)]
pub enum Source {
    File {
        path: PathBuf,
        format: Format,
    },
    Url {
        url: String,
        /// Sent as given; their values are secrets (a GitHub Actions request token).
        headers: Vec<(String, String)>,
        format: Format,
    },
    Executable(Executable),
    Aws(Aws),
}

/// How a file's or a URL's content holds the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// All of it (surrounding whitespace trimmed).
    Text,
    /// The string under this top-level key of a JSON object.
    Json { field: String },
}

/// A program that prints the token (AIP-4117).
#[derive(Clone)]
pub struct Executable {
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// Where the program caches its answer; read before running it.
    pub output_file: Option<PathBuf>,
}

/// What a source is asked for: the pool provider and token type of the file, and the service
/// account it will be exchanged for (executables are told).
pub struct Context<'a> {
    pub audience: &'a str,
    pub token_type: &'a str,
    pub impersonated: Option<&'a str>,
}

impl Source {
    /// A few words for `auth status`: where the token comes from.
    pub fn describe(&self) -> String {
        match self {
            Source::File { path, .. } => format!("subject token from the file {}", path.display()),
            Source::Url { url, .. } => format!("subject token from {}", shown(url)),
            Source::Executable(exe) => {
                format!("subject token from the executable {}", program(&exe.argv))
            }
            Source::Aws(_) => "subject token: a signed AWS GetCallerIdentity request".to_owned(),
        }
    }

    /// A fresh subject token.
    pub async fn token(&self, http: &Http, context: &Context<'_>) -> Result<String, ChainError> {
        let token = match self {
            Source::File { path, format } => from_file(path, format).await?,
            Source::Url {
                url,
                headers,
                format,
            } => from_url(http, url, headers, format).await?,
            Source::Executable(exe) => exe.token(context).await?,
            Source::Aws(aws) => aws.subject_token(http, context.audience).await?,
        };
        register(&token);
        Ok(token)
    }
}

async fn from_file(path: &Path, format: &Format) -> Result<String, ChainError> {
    let link = format!("the subject-token file {}", path.display());
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        ChainError::new(
            &link,
            format!("cannot be read: {e}"),
            "check credential_source.file, and that what writes the token (a projected \
             service-account token, a sidecar) has written it",
        )
    })?;
    parse_token(&text, format).map_err(|why| {
        ChainError::new(
            &link,
            why,
            "check credential_source.format against what the file holds",
        )
    })
}

async fn from_url(
    http: &Http,
    url: &str,
    headers: &[(String, String)],
    format: &Format,
) -> Result<String, ChainError> {
    let link = format!("the subject-token URL {}", shown(url));
    let mut request = Request::get(url);
    for (name, value) in headers {
        let mut value = http::HeaderValue::from_str(value).map_err(|_| {
            ChainError::new(
                &link,
                format!(
                    "cannot be sent the header {}: its value is not valid in a header",
                    quote(name)
                ),
                "check credential_source.headers",
            )
        })?;
        value.set_sensitive(true);
        request = request.header(name.as_str(), value);
    }
    let request = request.body(String::new()).map_err(|_| {
        ChainError::new(
            &link,
            "cannot be asked: its URL or a header name is not valid",
            "check credential_source.url and credential_source.headers",
        )
    })?;
    let (response, retries) = http.send(&link, request).await?;
    if !response.status.is_success() {
        return Err(ChainError::refused(
            &link,
            &response,
            retries,
            "check credential_source.url and its headers (in GitHub Actions the job needs \
             `permissions: id-token: write`, and the request token lives only as long as the job)",
        ));
    }
    let text = String::from_utf8_lossy(&response.body);
    parse_token(&text, format).map_err(|why| {
        ChainError::new(
            &link,
            format!("answered {why}"),
            "check credential_source.format against what the URL answers",
        )
    })
}

/// The token in `content`. What is wrong never quotes the content (it may be a token).
pub fn parse_token(content: &str, format: &Format) -> Result<String, String> {
    let token = match format {
        Format::Text => content.trim().to_owned(),
        Format::Json { field } => {
            let value: Value = serde_json::from_str(content)
                .map_err(|_| format!("what is not JSON ({} bytes)", content.len()))?;
            match value.get(field) {
                Some(Value::String(token)) => token.trim().to_owned(),
                Some(other) => {
                    return Err(format!(
                        "JSON whose {} is {}, not a string",
                        quote(field),
                        super::fields::kind(other)
                    ))
                }
                None => return Err(format!("JSON without the field {}", quote(field))),
            }
        }
    };
    match token.is_empty() {
        true => Err("no token: it is empty".to_owned()),
        false => Ok(token),
    }
}

impl Executable {
    fn link(&self) -> String {
        format!("the executable {}", program(&self.argv))
    }

    async fn token(&self, context: &Context<'_>) -> Result<String, ChainError> {
        let link = self.link();
        if std::env::var(ALLOW_EXECUTABLES).ok().as_deref() != Some("1") {
            return Err(ChainError::new(
                &link,
                "was not run: the credentials file asks to run a program",
                format!("set {ALLOW_EXECUTABLES}=1 to allow it (as google-auth requires)"),
            ));
        }
        let now = unix_now();
        if let Some(file) = &self.output_file {
            if let Some(token) = self.cached(file, now)? {
                return Ok(token);
            }
        }
        let (stdout, stderr) = self.run(context).await?;
        let text = match (stdout.trim().is_empty(), &self.output_file) {
            (true, Some(file)) => tokio::fs::read_to_string(file).await.map_err(|e| {
                ChainError::new(
                    &link,
                    format!(
                        "printed nothing, and its output file {} cannot be read: {e}",
                        file.display()
                    ),
                    "the program must print its response (AIP-4117) or write it to output_file",
                )
            })?,
            _ => stdout,
        };
        let response: Value = serde_json::from_str(&text).map_err(|_| {
            ChainError::new(
                &link,
                format!(
                    "printed what is not JSON ({} bytes){}",
                    text.len(),
                    first_line_of(&stderr)
                ),
                "the program must print a JSON response (AIP-4117)",
            )
        })?;
        match parse_response(&response, now) {
            Ok(token) => Ok(token),
            Err(refusal) => Err(ChainError::new(&link, refusal.to_string(), refusal.hint())),
        }
    }

    /// The token of a still valid response in `file`; `None` when the program must run.
    fn cached(&self, file: &Path, now: u64) -> Result<Option<String>, ChainError> {
        let Ok(text) = std::fs::read_to_string(file) else {
            return Ok(None);
        };
        let Ok(response) = serde_json::from_str::<Value>(&text) else {
            return Ok(None);
        };
        match parse_response(&response, now) {
            Ok(_) if response.get("expiration_time").is_none() => Ok(None),
            Ok(token) => Ok(Some(token)),
            Err(refusal @ Refusal::Malformed(_)) => Err(ChainError::new(
                &self.link(),
                format!(
                    "left a response in its output file {} that {refusal}",
                    file.display()
                ),
                "fix or delete the output file",
            )),
            Err(_) => Ok(None),
        }
    }

    /// Runs the program (no shell, stdin closed, the AIP-4117 variables set): its stdout and
    /// stderr, each at most 1 MiB.
    async fn run(&self, context: &Context<'_>) -> Result<(String, String), ChainError> {
        use tokio::io::AsyncReadExt;
        let link = self.link();
        let mut command = tokio::process::Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .env("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", context.audience)
            .env("GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE", context.token_type)
            .env(
                "GOOGLE_EXTERNAL_ACCOUNT_ID",
                context.impersonated.unwrap_or(""),
            )
            .env("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0")
            .env("GOOGLE_EXTERNAL_ACCOUNT_REVOKE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(email) = context.impersonated {
            command.env("GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL", email);
        }
        if let Some(file) = &self.output_file {
            command.env("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", file);
        }
        let mut child = command.spawn().map_err(|e| {
            ChainError::new(
                &link,
                format!("cannot be started: {e}"),
                "check credential_source.executable.command (a path to a program and its \
                 arguments; no shell runs it)",
            )
        })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(ChainError::new(&link, "gave no output pipes", "try again"));
        };
        let ran = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (mut stdout, mut stderr) =
                (stdout.take(OUTPUT_CAP + 1), stderr.take(OUTPUT_CAP + 1));
            let (read_out, read_err) =
                tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
            if out.len() as u64 > OUTPUT_CAP || err.len() as u64 > OUTPUT_CAP {
                // It may be blocked writing the rest: it has printed enough.
                let _ = child.start_kill();
            }
            let status = child.wait().await;
            (status, read_out.and(read_err), out, err)
        };
        let (status, read, out, err) =
            tokio::time::timeout(self.timeout, ran).await.map_err(|_| {
                ChainError::new(
                    &link,
                    format!(
                        "did not finish within {} s and was stopped",
                        self.timeout.as_secs()
                    ),
                    format!(
                        "make it faster, or raise credential_source.executable.timeout_millis \
                         (at most {EXECUTABLE_TIMEOUT_MAX_MS})"
                    ),
                )
            })?;
        let status = status.and_then(|s| read.map(|_| s)).map_err(|e| {
            ChainError::new(&link, format!("could not be read from: {e}"), "try again")
        })?;
        let stdout = String::from_utf8_lossy(&out).into_owned();
        let stderr = String::from_utf8_lossy(&err).into_owned();
        if out.len() as u64 > OUTPUT_CAP || err.len() as u64 > OUTPUT_CAP {
            return Err(ChainError::new(
                &link,
                "printed more than 1 MiB",
                "the program must print only its JSON response (AIP-4117)",
            ));
        }
        if !status.success() {
            let code = status
                .code()
                .map(|c| format!("exit code {c}"))
                .unwrap_or_else(|| "a signal".to_owned());
            return Err(ChainError::new(
                &link,
                format!("failed ({code}){}", first_line_of(&stderr)),
                "run the command by hand to see why",
            ));
        }
        Ok((stdout, stderr))
    }
}

/// `: "the first line of stderr"`, when there is one.
fn first_line_of(stderr: &str) -> String {
    match stderr.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {:?}", Quoted::from(line)),
        None => String::new(),
    }
}

/// What is wrong with an executable's response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an AIP-4117 response (google-auth's `MalformedError`): a cached one is not rerun.
    #[error("is not an AIP-4117 response: {0}")]
    Malformed(&'static str),
    #[error("answered version {0}, newer than 1, the only one gscrape knows")]
    Version(String),
    #[error("answered it failed: code {code}, message {message}")]
    Unsuccessful { code: Quoted, message: Quoted },
    #[error("answered a token that expired already (expiration_time is in the past)")]
    Expired,
    #[error("answered a token_type other than jwt, id_token or saml2")]
    TokenType,
}

impl Refusal {
    fn hint(&self) -> String {
        match self {
            Refusal::Unsuccessful { .. } => "see the program's own documentation for the code",
            Refusal::Expired => "the program must print a token that is still valid",
            _ => {
                "the program must print {\"version\": 1, \"success\": true, \"token_type\": …, \
                  \"id_token\" or \"saml_response\": …, \"expiration_time\": …}"
            }
        }
        .to_owned()
    }
}

/// The token of an executable's response (AIP-4117, read as google-auth's `pluggable.py`
/// does), at unix time `now`.
pub fn parse_response(response: &Value, now: u64) -> Result<String, Refusal> {
    let version = response
        .get("version")
        .ok_or(Refusal::Malformed("no version"))?;
    match version.as_u64() {
        Some(0 | 1) => {}
        Some(v) => return Err(Refusal::Version(v.to_string())),
        None => return Err(Refusal::Malformed("its version is not a whole number")),
    }
    let success = response
        .get("success")
        .ok_or(Refusal::Malformed("no success"))?
        .as_bool()
        .ok_or(Refusal::Malformed("its success is not true or false"))?;
    if !success {
        let text = |name: &str| {
            response.get(name).map(|v| match v {
                Value::String(s) => Quoted::from(s.as_str()),
                other => Quoted::from(other.to_string()),
            })
        };
        return match (text("code"), text("message")) {
            (Some(code), Some(message)) => Err(Refusal::Unsuccessful { code, message }),
            _ => Err(Refusal::Malformed("it failed without a code and a message")),
        };
    }
    if let Some(expiration) = response.get("expiration_time") {
        let expiration = expiration
            .as_f64()
            .ok_or(Refusal::Malformed("its expiration_time is not a number"))?;
        if expiration < now as f64 {
            return Err(Refusal::Expired);
        }
    }
    let token_type = response
        .get("token_type")
        .ok_or(Refusal::Malformed("no token_type"))?
        .as_str()
        .ok_or(Refusal::Malformed("its token_type is not a string"))?;
    let field = match token_type {
        "urn:ietf:params:oauth:token-type:jwt" | "urn:ietf:params:oauth:token-type:id_token" => {
            "id_token"
        }
        "urn:ietf:params:oauth:token-type:saml2" => "saml_response",
        _ => return Err(Refusal::TokenType),
    };
    match response.get(field) {
        Some(Value::String(token)) if !token.trim().is_empty() => {
            register(token);
            Ok(token.trim().to_owned())
        }
        _ if field == "id_token" => Err(Refusal::Malformed("no id_token string")),
        _ => Err(Refusal::Malformed("no saml_response string")),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The program of a command, for messages (its arguments may hold anything).
fn program(argv: &[String]) -> String {
    format!(
        "{:?}",
        quote(argv.first().map(String::as_str).unwrap_or(""))
    )
}

/// A URL for messages: secret query parameters out, at most about 200 characters.
fn shown(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => crate::http::shown_url(&uri),
        Err(_) => quote(url).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn text_and_json_formats() {
        assert_eq!(parse_token("eyJ.a.b\n", &Format::Text).unwrap(), "eyJ.a.b");
        let json = Format::Json {
            field: "value".to_owned(),
        };
        assert_eq!(
            parse_token(r#"{"count": 1, "value": "eyJ.c.d"}"#, &json).unwrap(),
            "eyJ.c.d"
        );
        let refused = [
            ("  \n", Format::Text, "no token: it is empty"),
            ("eyJ.secret", json.clone(), "what is not JSON (10 bytes)"),
            (
                r#"{"other": "eyJ.secret"}"#,
                json.clone(),
                "JSON without the field value",
            ),
            (
                r#"{"value": 12}"#,
                json.clone(),
                "JSON whose value is a number, not a string",
            ),
            (r#"{"value": ""}"#, json.clone(), "no token: it is empty"),
        ];
        for (content, format, why) in refused {
            assert_eq!(
                parse_token(content, &format),
                Err(why.to_owned()),
                "{content}"
            );
        }
        // The field is a top-level key, not a path (as in google-auth).
        let dotted = Format::Json {
            field: "a.b".to_owned(),
        };
        assert!(parse_token(r#"{"a": {"b": "x"}}"#, &dotted).is_err());
        assert_eq!(parse_token(r#"{"a.b": "tok"}"#, &dotted).unwrap(), "tok");
    }

    #[test]
    fn executable_responses() {
        let ok = |r: Value| parse_response(&r, NOW);
        assert_eq!(
            ok(json!({"version": 1, "success": true,
                "token_type": "urn:ietf:params:oauth:token-type:jwt",
                "id_token": "eyJ.jwt", "expiration_time": NOW + 60})),
            Ok("eyJ.jwt".to_owned())
        );
        assert_eq!(
            ok(json!({"version": 1, "success": true,
                "token_type": "urn:ietf:params:oauth:token-type:id_token", "id_token": "eyJ.oidc"})),
            Ok("eyJ.oidc".to_owned()),
            "no expiration_time: valid (it only decides whether a cached one is reused)"
        );
        assert_eq!(
            ok(json!({"version": 1, "success": true,
                "token_type": "urn:ietf:params:oauth:token-type:saml2", "saml_response": "PHNhbWw+"})),
            Ok("PHNhbWw+".to_owned())
        );
        let refused = [
            (json!({"success": true}), Refusal::Malformed("no version")),
            (json!({"version": 1}), Refusal::Malformed("no success")),
            (
                json!({"version": 2, "success": true}),
                Refusal::Version("2".to_owned()),
            ),
            (
                json!({"version": 1, "success": false}),
                Refusal::Malformed("it failed without a code and a message"),
            ),
            (
                json!({"version": 1, "success": false, "code": "401", "message": "Caller not authorized."}),
                Refusal::Unsuccessful {
                    code: "401".into(),
                    message: "Caller not authorized.".into(),
                },
            ),
            (
                json!({"version": 1, "success": true, "expiration_time": NOW - 1,
                    "token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": "x"}),
                Refusal::Expired,
            ),
            (
                json!({"version": 1, "success": true, "id_token": "x"}),
                Refusal::Malformed("no token_type"),
            ),
            (
                json!({"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:access_token"}),
                Refusal::TokenType,
            ),
            (
                json!({"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt"}),
                Refusal::Malformed("no id_token string"),
            ),
        ];
        for (response, refusal) in refused {
            assert_eq!(ok(response.clone()), Err(refusal), "{response}");
        }
        assert_eq!(
            Refusal::Unsuccessful {
                code: "401".into(),
                message: "Caller not authorized.".into()
            }
            .to_string(),
            "answered it failed: code 401, message Caller not authorized."
        );
    }
}
