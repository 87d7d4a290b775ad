//! Workload identity federation: `external_account` files (a subject token from a file, a
//! URL, an executable or AWS, exchanged at STS, then optionally for a service account's token
//! through IAM Credentials) and `external_account_authorized_user` files (workforce identity).
//! The files are google-auth's (`external_account.py`, `identity_pool.py`, `pluggable.py`,
//! `aws.py`, `external_account_authorized_user.py`), read field by field so that a problem
//! names the field and never quotes a value.
//!
//! URLs: a file's `token_url` and `service_account_impersonation_url` are used as written,
//! except that Google's own root in them (`https://sts.googleapis.com/`,
//! `https://iamcredentials.googleapis.com/`) follows `GSCRAPE_ENDPOINT_STS` /
//! `GSCRAPE_ENDPOINT_IAMCREDENTIALS` and the universe domain, so that the files
//! google-github-actions/auth and gcloud write work behind Private Service Connect too.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use super::aws::Aws;
use super::fields::{self, Field, Shape};
use super::source::{ChainError, Grant, Http, TokenSource};
use super::sts::{self, ClientAuth};
use super::subject::{self, Executable, Format, Source};
use super::AuthError;
use crate::endpoints;
use crate::redact::{quote, register};

/// The scope of the federated token when it only calls IAM Credentials (impersonation).
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The subject token type of an AWS source.
pub const AWS_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";

/// A generated token's life when the file does not say (google-auth's default), and the
/// longest IAM Credentials grants (with the org policy that allows more than an hour).
const DEFAULT_LIFETIME_SECONDS: u64 = 3600;
const MAX_LIFETIME_SECONDS: u64 = 43_200;

/// The fields of an `external_account` file besides `credential_source` and
/// `service_account_impersonation` (objects, checked apart).
const EXTERNAL_ACCOUNT: &[Field] = &[
    fields::required("type", Shape::Text),
    fields::required("audience", Shape::Text),
    fields::required("subject_token_type", Shape::Text),
    fields::optional("token_url", Shape::Text),
    fields::optional("token_info_url", Shape::Text),
    fields::optional("service_account_impersonation_url", Shape::Text),
    fields::optional("client_id", Shape::Text),
    fields::optional("client_secret", Shape::Text),
    fields::optional("quota_project_id", Shape::Text),
    fields::optional("workforce_pool_user_project", Shape::Text),
    fields::optional("universe_domain", Shape::Text),
];

/// Every top-level field google-auth reads from an `external_account` file.
const EXTERNAL_ACCOUNT_NAMES: &[&str] = &[
    "type",
    "audience",
    "subject_token_type",
    "token_url",
    "token_info_url",
    "service_account_impersonation_url",
    "service_account_impersonation",
    "client_id",
    "client_secret",
    "credential_source",
    "quota_project_id",
    "workforce_pool_user_project",
    "universe_domain",
    "trust_boundary",
];

const IMPERSONATION_OPTIONS: &[Field] = &[fields::optional("token_lifetime_seconds", Shape::Count)];

const FILE_SOURCE: &[Field] = &[fields::required("file", Shape::Text)];
const URL_SOURCE: &[Field] = &[fields::required("url", Shape::Text)];
const FORMAT: &[Field] = &[
    fields::optional("type", Shape::Text),
    fields::optional("subject_token_field_name", Shape::Text),
];
const EXECUTABLE: &[Field] = &[
    fields::required("command", Shape::Text),
    fields::optional("timeout_millis", Shape::Count),
    fields::optional("interactive_timeout_millis", Shape::Count),
    fields::optional("output_file", Shape::Text),
];
const AWS_SOURCE: &[Field] = &[
    fields::required("environment_id", Shape::Text),
    fields::optional("region_url", Shape::Text),
    fields::optional("url", Shape::Text),
    fields::required("regional_cred_verification_url", Shape::Text),
    fields::optional("imdsv2_session_token_url", Shape::Text),
];

/// The fields of an `external_account_authorized_user` file.
const AUTHORIZED_USER: &[Field] = &[
    fields::required("type", Shape::Text),
    fields::optional("audience", Shape::Text),
    fields::required("refresh_token", Shape::Text),
    fields::required("token_url", Shape::Text),
    fields::optional("token_info_url", Shape::Text),
    fields::required("client_id", Shape::Text),
    fields::required("client_secret", Shape::Text),
    fields::optional("revoke_url", Shape::Text),
    fields::optional("quota_project_id", Shape::Text),
    fields::optional("universe_domain", Shape::Text),
    fields::optional("token", Shape::Text),
    fields::optional("expiry", Shape::Text),
    fields::optional("scopes", Shape::TextList),
];

/// The credential of an `external_account` or `external_account_authorized_user` file
/// (`value`, checked JSON of `path`), with its secrets for the redactor; what is wrong with
/// the file otherwise (one line, naming the field, never a value).
pub fn read(
    value: &serde_json::Value,
    path: &Path,
    origin: &'static str,
) -> Result<(Arc<dyn TokenSource>, Vec<String>), String> {
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    let (source, secrets): (Arc<dyn TokenSource>, Vec<String>) = match kind {
        "external_account" => {
            let (external, secrets) = External::read(value, path, origin)
                .map_err(|why| format!("not a usable external_account file ({why})"))?;
            (Arc::new(external), secrets)
        }
        "external_account_authorized_user" => {
            let (user, secrets) = ExternalUser::read(value, path, origin).map_err(|why| {
                format!("not a usable external_account_authorized_user file ({why})")
            })?;
            (Arc::new(user), secrets)
        }
        _ => {
            return Err(format!(
                "credentials of {} are not workload identity federation",
                fields::type_for_message(kind)
            ))
        }
    };
    for secret in &secrets {
        register(secret);
    }
    Ok((source, secrets))
}

/// An `external_account`: a subject token, exchanged at STS, then (with
/// `service_account_impersonation_url`) for a service account's token.
struct External {
    audience: String,
    subject_token_type: String,
    token_url: String,
    client: Option<ClientAuth>,
    workforce_pool_user_project: Option<String>,
    source: Source,
    impersonation: Option<Impersonation>,
    quota_project: Option<String>,
    path: PathBuf,
    origin: &'static str,
}

/// generateAccessToken of a service account, with the federated token.
struct Impersonation {
    url: String,
    email: String,
    lifetime: u64,
}

impl External {
    fn read(
        value: &Value,
        path: &Path,
        origin: &'static str,
    ) -> Result<(Self, Vec<String>), String> {
        fields::check(value, "", EXTERNAL_ACCOUNT)?;
        let map = value.as_object().ok_or("it is not a JSON object")?;
        no_unknown(map, "", EXTERNAL_ACCOUNT_NAMES)?;
        let text = |name: &str| {
            map.get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let audience = text("audience").ok_or("its `audience` is empty")?;
        let subject_token_type =
            text("subject_token_type").ok_or("its `subject_token_type` is empty")?;
        let universe = text("universe_domain");
        let token_url = match text("token_url") {
            Some(url) => reroot(endpoints::STS, universe.as_deref(), &url),
            None => format!("{}v1/token", sts_root(universe.as_deref())),
        };
        safe_url("token_url", &token_url, false)?;

        let mut secrets = Vec::new();
        let client = match (
            text("client_id"),
            map.get("client_secret").and_then(Value::as_str),
        ) {
            (Some(id), secret) => {
                let secret = secret.unwrap_or_default().to_owned();
                secrets.push(secret.clone());
                Some(ClientAuth { id, secret })
            }
            (None, Some(_)) => return Err("it has a `client_secret` without a `client_id`".into()),
            (None, None) => None,
        };
        let workforce_pool_user_project = text("workforce_pool_user_project");
        if workforce_pool_user_project.is_some() && !is_workforce_pool(&audience) {
            return Err(
                "its `workforce_pool_user_project` is set, but its audience is not a \
                        workforce pool's (//iam.googleapis.com/locations/…/workforcePools/…)"
                    .into(),
            );
        }

        let impersonation = match text("service_account_impersonation_url") {
            None => None,
            Some(url) => {
                let url = reroot(endpoints::IAM_CREDENTIALS, universe.as_deref(), &url);
                safe_url("service_account_impersonation_url", &url, false)?;
                let email = impersonated_email(&url).ok_or(
                    "its `service_account_impersonation_url` does not end in \
                     serviceAccounts/EMAIL:generateAccessToken",
                )?;
                let options = map.get("service_account_impersonation");
                let lifetime = match options.filter(|o| !o.is_null()) {
                    None => DEFAULT_LIFETIME_SECONDS,
                    Some(options) => {
                        fields::check(
                            options,
                            "service_account_impersonation.",
                            IMPERSONATION_OPTIONS,
                        )?;
                        if let Some(map) = options.as_object() {
                            no_unknown(
                                map,
                                "service_account_impersonation.",
                                &["token_lifetime_seconds"],
                            )?;
                        }
                        match options
                            .get("token_lifetime_seconds")
                            .and_then(Value::as_u64)
                        {
                            None | Some(0) => DEFAULT_LIFETIME_SECONDS,
                            Some(s) if s <= MAX_LIFETIME_SECONDS => s,
                            Some(_) => {
                                return Err(format!(
                                    "its `service_account_impersonation.token_lifetime_seconds` \
                                     is over {MAX_LIFETIME_SECONDS} (12 hours), the most IAM grants"
                                ))
                            }
                        }
                    }
                };
                Some(Impersonation {
                    url,
                    email,
                    lifetime,
                })
            }
        };
        if impersonation.is_none()
            && map
                .get("service_account_impersonation")
                .is_some_and(|o| !o.is_null())
        {
            return Err("it has `service_account_impersonation` without a \
                        `service_account_impersonation_url`"
                .into());
        }

        let credential_source = map
            .get("credential_source")
            .filter(|v| !v.is_null())
            .ok_or("missing field `credential_source`")?;
        let source = read_source(credential_source, &subject_token_type, &mut secrets)?;

        Ok((
            External {
                audience,
                subject_token_type,
                token_url,
                client,
                workforce_pool_user_project,
                source,
                impersonation,
                quota_project: text("quota_project_id"),
                path: path.to_owned(),
                origin,
            },
            secrets,
        ))
    }
}

#[async_trait::async_trait]
impl TokenSource for External {
    async fn fetch(&self, http: &Http, scopes: &[String]) -> Result<Grant, AuthError> {
        let context = subject::Context {
            audience: &self.audience,
            token_type: &self.subject_token_type,
            impersonated: self.impersonation.as_ref().map(|i| i.email.as_str()),
        };
        let subject_token = self.source.token(http, &context).await?;
        // Impersonating, the federated token only calls IAM Credentials; the run's scopes are
        // the generated token's.
        let cloud_platform = [CLOUD_PLATFORM.to_owned()];
        let sts_scopes = match self.impersonation {
            Some(_) => &cloud_platform[..],
            None => scopes,
        };
        let federated = sts::exchange(
            http,
            &self.token_url,
            self.client.as_ref(),
            &sts::Exchange {
                audience: &self.audience,
                scopes: sts_scopes,
                subject_token: &subject_token,
                subject_token_type: &self.subject_token_type,
                user_project: self.workforce_pool_user_project.as_deref(),
            },
        )
        .await?;
        match &self.impersonation {
            None => Ok(federated),
            Some(impersonation) => {
                Ok(
                    generate_access_token(http, impersonation, &federated.access_token, scopes)
                        .await?,
                )
            }
        }
    }

    fn service_account(&self) -> Option<String> {
        self.impersonation.as_ref().map(|i| i.email.clone())
    }

    fn quota_project(&self) -> Option<String> {
        self.quota_project.clone()
    }

    fn describe(&self) -> String {
        let target = match &self.impersonation {
            Some(i) => format!("as the service account {}", quote(&i.email)),
            None => "its federated token used directly".to_owned(),
        };
        format!(
            "workload identity federation ({} from {}): pool provider {}, {}, {target}",
            self.path.display(),
            self.origin,
            quote(&self.audience),
            self.source.describe()
        )
    }
}

/// IAM Credentials' generateAccessToken for the impersonated account, called with the
/// federated token (`{scope, lifetime}`; no delegates).
async fn generate_access_token(
    http: &Http,
    impersonation: &Impersonation,
    bearer: &str,
    scopes: &[String],
) -> Result<Grant, ChainError> {
    let email = quote(&impersonation.email);
    let hint = |status: u16| {
        match status {
        403 => format!(
            "grant the pool's principals the Workload Identity User role \
             (roles/iam.workloadIdentityUser) on {email}, and enable the IAM Service Account \
             Credentials API (iamcredentials.googleapis.com) in its project"
        ),
        404 => format!("check service_account_impersonation_url: {email} does not exist"),
        400 => "check service_account_impersonation.token_lifetime_seconds (more than 3600 \
                needs the org policy constraints/iam.allowServiceAccountCredentialLifetimeExtension)"
            .to_owned(),
        429 | 500.. => "IAM Credentials is unavailable; try again later".to_owned(),
        _ => "check the pool provider and service_account_impersonation_url".to_owned(),
    }
    };
    let ask = super::impersonate::Generate {
        email: &impersonation.email,
        url: &impersonation.url,
        bearer,
        delegates: &[],
        scopes,
        lifetime: Duration::from_secs(impersonation.lifetime),
        hint: &hint,
    };
    super::impersonate::generate_access_token(http, ask).await
}

/// An `external_account_authorized_user`: a workforce identity login, refreshed at STS.
struct ExternalUser {
    audience: Option<String>,
    token_url: String,
    client: ClientAuth,
    /// Rotated when STS answers a new one (kept in memory; the file is not rewritten).
    refresh_token: Mutex<String>,
    quota_project: Option<String>,
    path: PathBuf,
    origin: &'static str,
}

impl ExternalUser {
    fn read(
        value: &Value,
        path: &Path,
        origin: &'static str,
    ) -> Result<(Self, Vec<String>), String> {
        fields::check(value, "", AUTHORIZED_USER)?;
        let map = value.as_object().ok_or("it is not a JSON object")?;
        let mut known: Vec<&str> = AUTHORIZED_USER.iter().map(|f| f.name).collect();
        known.push("trust_boundary");
        no_unknown(map, "", &known)?;
        let text = |name: &str| {
            map.get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let universe = text("universe_domain");
        let token_url = reroot(
            endpoints::STS,
            universe.as_deref(),
            &text("token_url").ok_or("its `token_url` is empty")?,
        );
        safe_url("token_url", &token_url, false)?;
        if let Some(revoke_url) = text("revoke_url") {
            safe_url("revoke_url", &revoke_url, false)?;
        }
        let refresh_token = text("refresh_token").ok_or("its `refresh_token` is empty")?;
        let client = ClientAuth {
            id: text("client_id").ok_or("its `client_id` is empty")?,
            secret: map
                .get("client_secret")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        let mut secrets = vec![refresh_token.clone(), client.secret.clone()];
        secrets.extend(text("token"));
        Ok((
            ExternalUser {
                audience: text("audience"),
                token_url,
                client,
                refresh_token: Mutex::new(refresh_token),
                quota_project: text("quota_project_id"),
                path: path.to_owned(),
                origin,
            },
            secrets,
        ))
    }
}

#[async_trait::async_trait]
impl TokenSource for ExternalUser {
    async fn fetch(&self, http: &Http, _scopes: &[String]) -> Result<Grant, AuthError> {
        let refresh_token = self
            .refresh_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let grant = sts::refresh(http, &self.token_url, &self.client, &refresh_token).await?;
        if let Some(rotated) = &grant.refresh_token {
            *self
                .refresh_token
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = rotated.clone();
        }
        Ok(grant)
    }

    fn quota_project(&self) -> Option<String> {
        self.quota_project.clone()
    }

    fn describe(&self) -> String {
        let pool = match &self.audience {
            Some(audience) => format!(": pool provider {}", quote(audience)),
            None => String::new(),
        };
        format!(
            "workforce identity login ({} from {}){pool}; its scopes are those of the login",
            self.path.display(),
            self.origin
        )
    }
}

/// The `credential_source` of an `external_account`, dispatched as google-auth does: AWS by
/// the token type, then an executable, then a file or a URL.
fn read_source(
    value: &Value,
    subject_token_type: &str,
    secrets: &mut Vec<String>,
) -> Result<Source, String> {
    const PREFIX: &str = "credential_source.";
    fields::check(value, PREFIX, &[])?;
    let map = value
        .as_object()
        .ok_or("its `credential_source` is not an object")?;
    let text = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_owned);
    if subject_token_type == AWS_TOKEN_TYPE {
        fields::check(value, PREFIX, AWS_SOURCE)?;
        no_unknown(map, PREFIX, &names(AWS_SOURCE))?;
        let environment = text("environment_id").unwrap_or_default();
        match environment.strip_prefix("aws") {
            Some("1") => {}
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(
                    "its `credential_source.environment_id` names an AWS version other \
                            than 1, the only one there is (aws1)"
                        .into(),
                )
            }
            _ => return Err("its `credential_source.environment_id` is not aws1".into()),
        }
        for name in ["region_url", "url", "imdsv2_session_token_url"] {
            if let Some(url) = text(name) {
                safe_url(&format!("{PREFIX}{name}"), &url, true)?;
            }
        }
        let verification_url = text("regional_cred_verification_url").unwrap_or_default();
        if !verification_url.starts_with("https://") {
            return Err(
                "its `credential_source.regional_cred_verification_url` is not an https URL".into(),
            );
        }
        return Ok(Source::Aws(Aws {
            region_url: text("region_url"),
            credentials_url: text("url"),
            verification_url,
            imdsv2_session_token_url: text("imdsv2_session_token_url"),
        }));
    }
    if let Some(executable) = map.get("executable").filter(|v| !v.is_null()) {
        no_unknown(map, PREFIX, &["executable"])?;
        return read_executable(executable).map(Source::Executable);
    }
    let format = read_format(map)?;
    match (text("file"), text("url")) {
        (Some(_), Some(_)) => Err("its `credential_source` has both `file` and `url`".into()),
        (Some(file), None) => {
            fields::check(value, PREFIX, FILE_SOURCE)?;
            no_unknown(map, PREFIX, &["file", "format"])?;
            if file.trim().is_empty() {
                return Err("its `credential_source.file` is empty".into());
            }
            Ok(Source::File {
                path: PathBuf::from(file),
                format,
            })
        }
        (None, Some(url)) => {
            fields::check(value, PREFIX, URL_SOURCE)?;
            no_unknown(map, PREFIX, &["url", "headers", "format"])?;
            safe_url("credential_source.url", &url, true)?;
            let headers = read_headers(map.get("headers"), secrets)?;
            Ok(Source::Url {
                url,
                headers,
                format,
            })
        }
        (None, None) if map.contains_key("certificate") => Err(
            "its `credential_source.certificate` asks for x509 workload certificates (mTLS), \
             which gscrape does not support"
                .into(),
        ),
        (None, None) if map.contains_key("environment_id") => Err(format!(
            "its `credential_source` is an AWS one (environment_id), but its \
             `subject_token_type` is not {AWS_TOKEN_TYPE}"
        )),
        (None, None) if map.contains_key("file") || map.contains_key("url") => {
            // Present, but not strings: say so by the field.
            fields::check(
                value,
                PREFIX,
                &[
                    fields::optional("file", Shape::Text),
                    fields::optional("url", Shape::Text),
                ],
            )?;
            Err("its `credential_source` has no file or url".into())
        }
        (None, None) => Err(
            "its `credential_source` has none of file, url, executable or \
                             environment_id (aws)"
                .into(),
        ),
    }
}

fn read_format(map: &Map<String, Value>) -> Result<Format, String> {
    let Some(format) = map.get("format").filter(|v| !v.is_null()) else {
        return Ok(Format::Text);
    };
    fields::check(format, "credential_source.format.", FORMAT)?;
    if let Some(map) = format.as_object() {
        no_unknown(map, "credential_source.format.", &names(FORMAT))?;
    }
    let kind = format.get("type").and_then(Value::as_str).unwrap_or("text");
    match kind {
        "text" => Ok(Format::Text),
        "json" => match format
            .get("subject_token_field_name")
            .and_then(Value::as_str)
        {
            Some(field) if !field.is_empty() => Ok(Format::Json {
                field: field.to_owned(),
            }),
            _ => Err("its `credential_source.format` is json without a \
                      `subject_token_field_name`"
                .into()),
        },
        _ => Err("its `credential_source.format.type` is neither text nor json".into()),
    }
}

fn read_headers(
    headers: Option<&Value>,
    secrets: &mut Vec<String>,
) -> Result<Vec<(String, String)>, String> {
    let Some(headers) = headers.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(map) = headers.as_object() else {
        return Err(format!(
            "its `credential_source.headers` is {}, not an object",
            fields::kind(headers)
        ));
    };
    let mut out = Vec::new();
    for (name, value) in map {
        let field = field_name("credential_source.headers.", name);
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("{field} is not a header name"));
        }
        let Some(value) = value.as_str() else {
            return Err(format!("{field} is {}, not a string", fields::kind(value)));
        };
        if http::HeaderValue::from_str(value).is_err() {
            return Err(format!(
                "{field} holds a character a header cannot carry (a line break?)"
            ));
        }
        // `Bearer <token>`: the token alone is a secret too (a server may echo it alone).
        secrets.push(value.to_owned());
        if let Some(last) = value.split_whitespace().last() {
            secrets.push(last.to_owned());
        }
        out.push((name.clone(), value.to_owned()));
    }
    Ok(out)
}

fn read_executable(value: &Value) -> Result<Executable, String> {
    const PREFIX: &str = "credential_source.executable.";
    fields::check(value, PREFIX, EXECUTABLE)?;
    if let Some(map) = value.as_object() {
        no_unknown(map, PREFIX, &names(EXECUTABLE))?;
    }
    let command = value
        .get("command")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let argv = shlex::split(&command)
        .ok_or("its `credential_source.executable.command` has unbalanced quotes")?;
    if argv.first().is_none_or(|p| p.is_empty()) {
        return Err("its `credential_source.executable.command` is empty".into());
    }
    let millis = match value.get("timeout_millis").and_then(Value::as_u64) {
        None | Some(0) => subject::EXECUTABLE_TIMEOUT_DEFAULT_MS,
        Some(ms)
            if (subject::EXECUTABLE_TIMEOUT_MIN_MS..=subject::EXECUTABLE_TIMEOUT_MAX_MS)
                .contains(&ms) =>
        {
            ms
        }
        Some(_) => {
            return Err(format!(
                "its `credential_source.executable.timeout_millis` is not between {} and {} \
                 (5 s to 2 min)",
                subject::EXECUTABLE_TIMEOUT_MIN_MS,
                subject::EXECUTABLE_TIMEOUT_MAX_MS
            ))
        }
    };
    let output_file = value
        .get("output_file")
        .and_then(Value::as_str)
        .filter(|f| !f.trim().is_empty())
        .map(PathBuf::from);
    Ok(Executable {
        argv,
        timeout: Duration::from_millis(millis),
        output_file,
    })
}

fn names(fields: &[Field]) -> Vec<&'static str> {
    fields.iter().map(|f| f.name).collect()
}

/// Refuses a field the file format does not have: a misspelt `headers` would silently send
/// none. Named when it looks like a field name, otherwise only counted.
fn no_unknown(map: &Map<String, Value>, prefix: &str, known: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(name) => Err(format!(
            "{} is not a field of this file format; expected some of: {}",
            field_name(prefix, name).replacen("its ", "", 1),
            known.join(", ")
        )),
    }
}

/// `its \`prefix.name\`` when `name` looks like a field name, else its length only (a file
/// given by mistake may hold anything in its keys).
fn field_name(prefix: &str, name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    match plain {
        true => format!("its `{prefix}{name}`"),
        false => format!(
            "a field of {} chars in `{}`",
            name.chars().count(),
            match prefix.trim_end_matches('.') {
                "" => "the file",
                p => p,
            }
        ),
    }
}

/// A URL that receives a secret (a subject token, a client secret, a header's value):
/// https, or plain http to loopback — or, for `link_local`, to the instance metadata
/// addresses (169.254.169.254, fd00:ec2::254: AWS's and Azure's metadata services, which
/// never leave the host).
fn safe_url(field: &str, url: &str, link_local: bool) -> Result<(), String> {
    let uri = url.parse::<http::Uri>().ok().filter(|uri| {
        uri.scheme().is_some()
            && uri.host().is_some()
            && !uri.authority().is_some_and(|a| a.as_str().contains('@'))
    });
    let Some(uri) = uri else {
        return Err(format!(
            "its `{field}` is not a URL ({} chars)",
            url.chars().count()
        ));
    };
    let metadata = || {
        let host = uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        uri.scheme_str() == Some("http")
            && (host == "169.254.169.254" || host.eq_ignore_ascii_case("fd00:ec2::254"))
    };
    if crate::http::may_carry_bearer(&uri) || (link_local && metadata()) {
        return Ok(());
    }
    let allowed = match link_local {
        true => {
            "; the instance metadata addresses 169.254.169.254 and fd00:ec2::254 are \
                 allowed too"
        }
        false => "",
    };
    Err(format!(
        "its `{field}` {:?} is not https: secrets would travel in clear; use https ({}{allowed})",
        quote(url),
        crate::http::PLAIN_HTTP_RULE
    ))
}

/// STS's root for a file of `universe` (the universe domain).
fn sts_root(universe: Option<&str>) -> String {
    let (api, _) = endpoints::STS;
    match universe {
        Some(universe) => endpoints::root_url(api, &format!("https://{api}.{universe}/")),
        None => endpoints::of(endpoints::STS),
    }
}

/// `url` with Google's default root of `api` (in the file's universe) replaced by the
/// configured one; any other URL as written.
fn reroot((api, default): (&str, &str), universe: Option<&str>, url: &str) -> String {
    let default = match universe {
        Some(universe) => format!("https://{api}.{universe}/"),
        None => default.to_owned(),
    };
    match url.strip_prefix(&default) {
        Some(rest) => format!("{}{rest}", endpoints::root_url(api, &default)),
        None => url.to_owned(),
    }
}

/// The service account of `…/serviceAccounts/EMAIL:generateAccessToken` (as google-auth
/// finds it: after the last `/`, before `:generateAccessToken`), percent-decoded.
fn impersonated_email(url: &str) -> Option<String> {
    let start = url.rfind('/')? + 1;
    let end = url.find(":generateAccessToken")?;
    let email = url.get(start..end).filter(|e| !e.is_empty())?;
    let email = percent_encoding::percent_decode_str(email)
        .decode_utf8()
        .ok()?
        .into_owned();
    email.contains('@').then_some(email)
}

/// True for a workforce pool's audience:
/// `//iam.googleapis.com/locations/LOCATION/workforcePools/…`.
fn is_workforce_pool(audience: &str) -> bool {
    audience
        .strip_prefix("//iam.googleapis.com/locations/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(location, rest)| !location.is_empty() && rest.starts_with("workforcePools/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AUDIENCE: &str =
        "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/gh";
    const SA_URL: &str = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/\
                          runner@proj.iam.gserviceaccount.com:generateAccessToken";

    fn github_file() -> Value {
        json!({
            "type": "external_account",
            "audience": AUDIENCE,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": "https://sts.googleapis.com/v1/token",
            "service_account_impersonation_url": SA_URL,
            "credential_source": {
                "url": "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0&audience=x",
                "headers": {"Authorization": "Bearer gha-request-token-unit-0123"},
                "format": {"type": "json", "subject_token_field_name": "value"}
            }
        })
    }

    fn problem(value: Value) -> String {
        match External::read(&value, Path::new("f.json"), "--credentials") {
            Ok(_) => panic!("accepted: {value}"),
            Err(why) => why,
        }
    }

    #[test]
    fn reads_the_file_google_github_actions_writes() {
        let (external, secrets) =
            External::read(&github_file(), Path::new("gha-creds.json"), "--credentials").unwrap();
        assert_eq!(
            external.service_account().as_deref(),
            Some("runner@proj.iam.gserviceaccount.com")
        );
        assert!(secrets.contains(&"Bearer gha-request-token-unit-0123".to_owned()));
        assert!(secrets.contains(&"gha-request-token-unit-0123".to_owned()));
        assert!(matches!(
            &external.source,
            Source::Url { format: Format::Json { field }, headers, .. }
                if field == "value" && headers.len() == 1
        ));
        let impersonation = external.impersonation.as_ref().unwrap();
        assert_eq!(impersonation.lifetime, 3600);
        let line = external.describe();
        assert!(line.contains(AUDIENCE), "{line}");
        assert!(
            line.contains("as the service account runner@proj.iam.gserviceaccount.com"),
            "{line}"
        );
        assert!(!line.contains("gha-request-token"), "{line}");
    }

    #[test]
    fn problems_name_the_field_never_the_value() {
        let mut file = github_file();
        file["credential_source"]["header"] = json!("ya29.secret-value");
        assert_eq!(
            problem(file),
            "`credential_source.header` is not a field of this file format; expected some of: \
             url, headers, format"
        );
        let mut file = github_file();
        file["ya29.0123/secret=="] = json!(1);
        let why = problem(file);
        assert!(
            why.starts_with("a field of 18 chars in `the file` is not a field"),
            "{why}"
        );
        let mut file = github_file();
        file.as_object_mut().unwrap().remove("audience");
        assert_eq!(problem(file), "missing field `audience`");
        let mut file = github_file();
        file["credential_source"]["headers"]["Authorization"] = json!(42);
        assert_eq!(
            problem(file),
            "its `credential_source.headers.Authorization` is a number, not a string"
        );
        let mut file = github_file();
        file["credential_source"]["url"] = json!("http://example.com/token?secret=1");
        let why = problem(file);
        assert!(
            why.starts_with(
                "its `credential_source.url` \"http://example.com/token?secret=1\" is not https"
            ),
            "{why}"
        );
        let mut file = github_file();
        file["token_url"] = json!("http://sts.example.com/v1/token");
        assert!(problem(file).starts_with("its `token_url` "));
        let mut file = github_file();
        file["service_account_impersonation_url"] =
            json!("https://iamcredentials.googleapis.com/v1/x");
        assert!(problem(file).contains("serviceAccounts/EMAIL:generateAccessToken"));
        let mut file = github_file();
        file["credential_source"] =
            json!({"certificate": {"use_default_certificate_config": true}});
        assert!(problem(file).contains("x509"));
        let mut file = github_file();
        file["credential_source"] =
            json!({"executable": {"command": "/bin/tok", "timeout_millis": 1000}});
        assert!(problem(file).contains(
            "`credential_source.executable.timeout_millis` is not between 5000 and 120000"
        ));
        let mut file = github_file();
        file["workforce_pool_user_project"] = json!("p");
        assert!(problem(file).contains("workforce_pool_user_project"));
        let mut file = github_file();
        file["subject_token_type"] = json!(AWS_TOKEN_TYPE);
        file["credential_source"] = json!({
            "environment_id": "aws2",
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
        });
        assert!(problem(file).contains("other than 1"));
    }

    #[test]
    fn aws_and_executable_sources() {
        let mut file = github_file();
        file["subject_token_type"] = json!(AWS_TOKEN_TYPE);
        file["credential_source"] = json!({
            "environment_id": "aws1",
            "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
            "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials",
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "imdsv2_session_token_url": "http://[fd00:ec2::254]/latest/api/token"
        });
        let (external, _) = External::read(&file, Path::new("aws.json"), "--credentials").unwrap();
        assert!(matches!(external.source, Source::Aws(_)));

        file["credential_source"] = json!({"executable": {
            "command": "/usr/bin/token-helper --audience 'a b'",
            "output_file": "/tmp/cache.json"
        }});
        file["subject_token_type"] = json!("urn:ietf:params:oauth:token-type:id_token");
        let (external, _) = External::read(&file, Path::new("exe.json"), "--credentials").unwrap();
        let Source::Executable(exe) = &external.source else {
            panic!("not an executable");
        };
        assert_eq!(exe.argv, ["/usr/bin/token-helper", "--audience", "a b"]);
        assert_eq!(exe.timeout, Duration::from_secs(30));
    }

    #[test]
    fn service_account_urls_and_pools() {
        assert_eq!(
            impersonated_email(SA_URL).as_deref(),
            Some("runner@proj.iam.gserviceaccount.com")
        );
        assert_eq!(
            impersonated_email(
                "https://x/v1/projects/-/serviceAccounts/a%40b.iam:generateAccessToken"
            )
            .as_deref(),
            Some("a@b.iam")
        );
        assert_eq!(
            impersonated_email("https://x/serviceAccounts/:generateAccessToken"),
            None
        );
        assert!(is_workforce_pool(
            "//iam.googleapis.com/locations/global/workforcePools/p/providers/q"
        ));
        assert!(!is_workforce_pool(AUDIENCE));
    }
}
