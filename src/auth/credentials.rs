//! Which credential a run uses, in a fixed order, and reading credential files.
//!
//! 1. an access token (`--access-token`, `GSCRAPE_ACCESS_TOKEN`), used as is;
//! 2. a key file (`--credentials`, else `GOOGLE_APPLICATION_CREDENTIALS`): a service-account key
//!    or an `authorized_user` file, by its `"type"`;
//! 3. the login cached by `gscrape auth login`;
//! 4. gcloud's application-default credentials file;
//! 5. an API key (`--api-key`, `GSCRAPE_API_KEY`), sent as `key=`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use yup_oauth2::ServiceAccountKey;

use super::cache::{CachedLogin, TokenCache};
use super::fields::{self, Field, Shape};
use super::AuthError;
use crate::redact::quote;

/// Where the pieces of a resolution come from (flags and environment, already read).
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// The token and where it came from (`--access-token` or `GSCRAPE_ACCESS_TOKEN`).
    pub access_token: Option<(String, &'static str)>,
    /// A key file and where its name came from.
    pub credentials: Option<(PathBuf, &'static str)>,
    pub api_key: Option<(String, &'static str)>,
    /// The gscrape config directory (token cache).
    pub config_dir: PathBuf,
    /// Use the cached login of this account, not the newest.
    pub account: Option<String>,
    /// gcloud's application-default credentials file, if there is one.
    pub gcloud_adc: Option<PathBuf>,
    /// `--impersonate-service-account` (or `GSCRAPE_IMPERSONATE_SERVICE_ACCOUNT`): the
    /// delegation chain, the target last, and where it came from.
    pub impersonate: Option<(Vec<String>, &'static str)>,
    /// `--quota-project` (or `GOOGLE_CLOUD_QUOTA_PROJECT`), over a credential file's.
    pub quota_project: Option<(String, &'static str)>,
}

impl AuthSettings {
    /// The project API requests name for quota (`x-goog-user-project`): `--quota-project` (or
    /// `GOOGLE_CLOUD_QUOTA_PROJECT`) over `credential`'s file, and where it came from.
    pub fn quota_project_of(&self, credential: &Credential) -> Option<(String, &'static str)> {
        self.quota_project.clone().or_else(|| {
            credential
                .quota_project()
                .map(|p| (p, "the credential file"))
        })
    }
}

/// The credential a run would use.
#[derive(Clone)]
pub enum Credential {
    AccessToken {
        token: String,
        origin: &'static str,
    },
    ServiceAccount {
        key: Box<ServiceAccountKey>,
        path: PathBuf,
        origin: &'static str,
    },
    AuthorizedUser {
        user: AuthorizedUser,
        path: PathBuf,
        origin: &'static str,
    },
    CachedLogin {
        login: CachedLogin,
        path: PathBuf,
    },
    ApiKey {
        key: String,
        origin: &'static str,
    },
    /// None: every method the run calls is public (its Discovery entry lists no scope), such
    /// as Google's API directory.
    Public,
    /// A service account impersonated with another credential's tokens.
    Impersonated(Box<Impersonation>),
    /// A credential of links, each fetching its token from another service (the metadata
    /// server, IAM Credentials, STS): see [`super::source`]. It says itself what it is.
    Chain {
        source: std::sync::Arc<dyn super::source::TokenSource>,
        /// Its secrets (client secrets, refresh tokens), for the redactor.
        secrets: Vec<String>,
    },
}

impl Credential {
    /// The secret values this credential holds.
    fn secrets(&self) -> Vec<&str> {
        match self {
            Credential::AccessToken { token, .. } => vec![token],
            Credential::ServiceAccount { key, .. } => vec![&key.private_key],
            Credential::AuthorizedUser { user, .. } => {
                vec![&user.client_secret, &user.refresh_token]
            }
            Credential::CachedLogin { login, .. } => [
                Some(login.client_secret.as_str()),
                Some(login.refresh_token.as_str()),
                login.access_token.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Credential::ApiKey { key, .. } => vec![key],
            Credential::Public => Vec::new(),
            Credential::Chain { secrets, .. } => secrets.iter().map(String::as_str).collect(),
            Credential::Impersonated(imp) => imp.source.secrets(),
        }
    }

    /// The project its file names for quota and billing (`quota_project_id`).
    pub fn quota_project(&self) -> Option<String> {
        match self {
            Credential::AuthorizedUser { user, .. } => user.quota_project_id.clone(),
            Credential::Impersonated(imp) => imp.quota_project.clone(),
            Credential::Chain { source, .. } => source.quota_project(),
            _ => None,
        }
    }

    /// One line for `auth status` and messages: what, and why it was chosen. No secret.
    pub fn describe(&self) -> String {
        match self {
            Credential::AccessToken { origin, .. } => format!("access token from {origin}"),
            Credential::ServiceAccount { key, path, origin } => format!(
                "service account {} (key {} from {origin})",
                key.client_email,
                path.display()
            ),
            Credential::AuthorizedUser { path, origin, .. } => {
                format!(
                    "authorized_user credentials {} (from {origin})",
                    path.display()
                )
            }
            Credential::CachedLogin { login, path } => format!(
                "login of {} cached by `gscrape auth login` ({})",
                login.account.as_deref().unwrap_or("an unknown account"),
                path.display()
            ),
            Credential::ApiKey { origin, .. } => format!("API key from {origin} (sent as key=)"),
            Credential::Public => {
                "no credential (every method of the run is public: it lists no scope)".to_owned()
            }
            Credential::Chain { source, .. } => source.describe(),
            Credential::Impersonated(imp) => {
                let through = match imp.delegates.is_empty() {
                    true => String::new(),
                    false => format!(" through {}", imp.delegates.join(", ")),
                };
                format!(
                    "service account {} impersonated{through} ({}) with the {}",
                    imp.target,
                    imp.origin,
                    imp.source.describe()
                )
            }
        }
    }
}

impl Credential {
    /// `auth status`'s `why:`: why the resolution order chose it.
    pub fn why(&self) -> String {
        match self {
            Credential::AccessToken { .. } => {
                "an access token is given, and it comes first".to_owned()
            }
            Credential::ServiceAccount { origin, .. } | Credential::AuthorizedUser { origin, .. }
                if *origin == "gcloud application-default credentials" =>
            {
                "no access token, key file or gscrape login; gcloud's application-default credentials exist".to_owned()
            }
            Credential::ServiceAccount { origin, .. } | Credential::AuthorizedUser { origin, .. } => {
                format!("no access token is given, and {origin} names a key file")
            }
            Credential::CachedLogin { .. } => {
                "no access token or key file is given (--access-token, GSCRAPE_ACCESS_TOKEN, --credentials, \
                 GOOGLE_APPLICATION_CREDENTIALS); this is the newest `gscrape auth login`"
                    .to_owned()
            }
            Credential::ApiKey { .. } => "no OAuth credential was found".to_owned(),
            Credential::Public => "no credential was found".to_owned(),
            Credential::Chain { source, .. } => source.why(),
            Credential::Impersonated(imp) => format!("impersonation is asked for ({})", imp.origin),
        }
    }

    /// `auth status`'s lines after `why:` — the account it acts as (as `subject`, when
    /// delegating), its scopes, its token — each ending in a newline.
    pub fn status(&self, subject: Option<&str>) -> String {
        use super::source::SCOPES_PER_RUN;
        let account =
            |name: Option<&str>| format!("account: {}\n", quote(name.unwrap_or("unknown")));
        match self {
            Credential::ServiceAccount { key, .. } => {
                let acting = match subject {
                    Some(subject) => {
                        format!("acting as: {} (domain-wide delegation)\n", quote(subject))
                    }
                    None => "acting as: the service account itself\n".to_owned(),
                };
                format!("account: {}\n{acting}{SCOPES_PER_RUN}", key.client_email)
            }
            Credential::AuthorizedUser { user, .. } => {
                account(user.account.as_deref()) + "scopes: those granted when the file was made\n"
            }
            Credential::CachedLogin { login, .. } => format!(
                "{}scopes: {}\ntoken: {}\n",
                account(login.account.as_deref()),
                quote(&login.scopes.join(" ")),
                expiry(login.expires_at())
            ),
            Credential::Chain { source, .. } => source.status(),
            Credential::Impersonated(imp) => account(Some(&imp.target)) + SCOPES_PER_RUN,
            Credential::AccessToken { .. } | Credential::ApiKey { .. } | Credential::Public => {
                String::new()
            }
        }
    }

    /// False for an API key and for no credential: nothing to write with.
    pub fn gives_tokens(&self) -> bool {
        !matches!(self, Credential::ApiKey { .. } | Credential::Public)
    }

    /// The cached login, whose granted scopes a run checks before any request.
    pub fn cached_login(&self) -> Option<&CachedLogin> {
        match self {
            Credential::CachedLogin { login, .. } => Some(login),
            _ => None,
        }
    }
}

fn expiry(expires_at: Option<std::time::SystemTime>) -> String {
    let Some(at) = expires_at else {
        return "none cached yet; the next run gets one".to_owned();
    };
    let when = humantime::format_rfc3339_seconds(at);
    match at.duration_since(std::time::SystemTime::now()) {
        Ok(left) => format!("valid until {when} (in {} min)", left.as_secs() / 60),
        Err(_) => format!("expired at {when}; the next run refreshes it"),
    }
}

/// An `authorized_user` credential (gcloud's application-default login, or a saved user login).
#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// Honoured when present; Google's endpoint otherwise.
    pub token_uri: Option<String>,
    pub account: Option<String>,
    /// The project gcloud named for quota (`x-goog-user-project`).
    pub quota_project_id: Option<String>,
}

/// A service account to impersonate, and the credential whose tokens make its own.
#[derive(Clone)]
pub struct Impersonation {
    pub source: Credential,
    pub target: String,
    /// The accounts in between, in order (each impersonates the next).
    pub delegates: Vec<String>,
    /// Its `generateAccessToken` URL.
    pub url: String,
    pub quota_project: Option<String>,
    /// Where it was asked for: a file, or the flag.
    pub origin: String,
}

/// Resolves the credential by the documented order — the metadata server last, when it
/// answers (`http` probes it) — and wraps it in `--impersonate-service-account`'s chain; its
/// secrets become known to the redactor.
pub async fn resolve(
    settings: &AuthSettings,
    http: &super::source::Http,
) -> Result<Credential, AuthError> {
    let credential = match choose(settings) {
        Err(AuthError::NoCredentials) => match super::metadata::detect(http).await {
            Some(server) => Credential::Chain {
                source: std::sync::Arc::new(server),
                secrets: Vec::new(),
            },
            None => return Err(AuthError::NoCredentials),
        },
        other => other?,
    };
    for secret in credential.secrets() {
        crate::redact::register(secret);
    }
    let Some((chain, origin)) = &settings.impersonate else {
        return Ok(credential);
    };
    let Some((target, delegates)) = chain.split_last() else {
        return Ok(credential);
    };
    Ok(Credential::Impersonated(Box::new(Impersonation {
        target: target.clone(),
        delegates: delegates.to_vec(),
        url: super::impersonate::generate_url(target),
        quota_project: credential.quota_project(),
        origin: (*origin).to_owned(),
        source: credential,
    })))
}

fn choose(settings: &AuthSettings) -> Result<Credential, AuthError> {
    if let Some((token, origin)) = &settings.access_token {
        if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(AuthError::BadAccessToken { origin });
        }
        return Ok(Credential::AccessToken {
            token: token.clone(),
            origin,
        });
    }
    if let Some((path, origin)) = &settings.credentials {
        return read_key_file(path, origin);
    }
    let cache = TokenCache::new(&settings.config_dir);
    if let Some((path, login)) = cache.current(settings.account.as_deref())? {
        secrets_only_to_safe(&login.token_uri).map_err(|why| AuthError::BadCredentialFile {
            path: path.clone(),
            why,
        })?;
        return Ok(Credential::CachedLogin { login, path });
    }
    if let Some(account) = &settings.account {
        return Err(AuthError::NoLoginForAccount {
            account: account.as_str().into(),
            dir: cache.dir().to_owned(),
        });
    }
    if let Some(path) = settings.gcloud_adc.as_ref().filter(|p| p.is_file()) {
        return read_key_file(path, "gcloud application-default credentials");
    }
    if let Some((key, origin)) = &settings.api_key {
        return Ok(Credential::ApiKey {
            key: key.clone(),
            origin,
        });
    }
    Err(AuthError::NoCredentials)
}

/// gcloud's application-default credentials file: `$CLOUDSDK_CONFIG/…` or `~/.config/gcloud/…`
/// (`%APPDATA%\gcloud\…` on Windows).
pub fn gcloud_adc_path() -> Option<PathBuf> {
    const FILE: &str = "application_default_credentials.json";
    if let Some(dir) = std::env::var_os("CLOUDSDK_CONFIG") {
        return Some(PathBuf::from(dir).join(FILE));
    }
    if cfg!(windows) {
        std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join("gcloud").join(FILE))
    } else {
        dirs::home_dir().map(|h| h.join(".config").join("gcloud").join(FILE))
    }
}

/// The fields of a service-account key (yup-oauth2's `ServiceAccountKey`).
const SERVICE_ACCOUNT: &[Field] = &[
    fields::optional("project_id", Shape::Text),
    fields::optional("private_key_id", Shape::Text),
    fields::required("private_key", Shape::Text),
    fields::required("client_email", Shape::Email),
    fields::optional("client_id", Shape::Text),
    fields::optional("auth_uri", Shape::Text),
    fields::required("token_uri", Shape::Text),
    fields::optional("auth_provider_x509_cert_url", Shape::Text),
    fields::optional("client_x509_cert_url", Shape::Text),
];

/// The fields of an `authorized_user` file ([`AuthorizedUser`]).
const AUTHORIZED_USER: &[Field] = &[
    fields::required("client_id", Shape::Text),
    fields::required("client_secret", Shape::Text),
    fields::required("refresh_token", Shape::Text),
    fields::optional("token_uri", Shape::Text),
    fields::optional("account", Shape::Text),
    fields::optional("quota_project_id", Shape::Text),
];

/// The fields of an `impersonated_service_account` file (gcloud's).
const IMPERSONATED: &[Field] = &[
    fields::required("service_account_impersonation_url", Shape::Text),
    fields::optional("delegates", Shape::TextList),
    fields::optional("quota_project_id", Shape::Text),
];

/// Reads a service-account key or an `authorized_user` file, dispatching on `"type"`. Its
/// problems name the file and the field, never a value (see [`fields`]).
pub fn read_key_file(path: &Path, origin: &'static str) -> Result<Credential, AuthError> {
    let bad = |why: String| AuthError::BadCredentialFile {
        path: path.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    // A syntax error says where, never what (serde_json's messages of this kind quote nothing).
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    read_key_value(value, path, origin)
}

/// [`read_key_file`] of the file's JSON `value` (also a file's `source_credentials`).
fn read_key_value(
    value: serde_json::Value,
    path: &Path,
    origin: &'static str,
) -> Result<Credential, AuthError> {
    let bad = |why: String| AuthError::BadCredentialFile {
        path: path.to_owned(),
        why,
    };
    fields::check(&value, "", &[]).map_err(bad)?;
    match value.get("type") {
        Some(serde_json::Value::String(kind)) if kind == "impersonated_service_account" => {
            let incomplete = |why: String| {
                bad(format!("not a complete impersonated_service_account file ({why})"))
            };
            fields::check(&value, "", IMPERSONATED).map_err(incomplete)?;
            let url = value["service_account_impersonation_url"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            secrets_only_to_safe(&url).map_err(bad)?;
            let target = url
                .rsplit_once('/')
                .and_then(|(_, last)| last.strip_suffix(":generateAccessToken"))
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    incomplete(
                        "its service_account_impersonation_url does not end in \
                         /serviceAccounts/EMAIL:generateAccessToken"
                            .to_owned(),
                    )
                })?;
            let delegates = value["delegates"]
                .as_array()
                .map(|d| d.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let quota_project = value["quota_project_id"].as_str().map(str::to_owned);
            let source = match value.get("source_credentials") {
                Some(source) if source.is_object() => source.clone(),
                _ => return Err(incomplete("no `source_credentials` object".to_owned())),
            };
            let source = read_key_value(source, path, origin).map_err(|err| match err {
                AuthError::BadCredentialFile { path, why } => AuthError::BadCredentialFile {
                    path,
                    why: format!("its source_credentials: {why}"),
                },
                other => other,
            })?;
            Ok(Credential::Impersonated(Box::new(Impersonation {
                source,
                target,
                delegates,
                url,
                quota_project,
                origin: format!("{} from {origin}", path.display()),
            })))
        }
        Some(serde_json::Value::String(kind)) if kind == "service_account" => {
            let incomplete = |why: String| bad(format!("not a complete service-account key ({why})"));
            fields::check(&value, "", SERVICE_ACCOUNT).map_err(incomplete)?;
            let key: ServiceAccountKey = serde_json::from_value(value)
                .map_err(|_| incomplete("a field of an unexpected shape".to_owned()))?;
            secrets_only_to_safe(&key.token_uri).map_err(bad)?;
            super::oauth::ServiceAccountSigner::new(&key).map_err(|e| bad(e.to_string()))?;
            warn_if_readable_by_others(path);
            Ok(Credential::ServiceAccount {
                key: Box::new(key),
                path: path.to_owned(),
                origin,
            })
        }
        Some(serde_json::Value::String(kind)) if kind == "authorized_user" => {
            let incomplete =
                |why: String| bad(format!("not a complete authorized_user file ({why})"));
            fields::check(&value, "", AUTHORIZED_USER).map_err(incomplete)?;
            let user: AuthorizedUser = serde_json::from_value(value)
                .map_err(|_| incomplete("a field of an unexpected shape".to_owned()))?;
            if let Some(uri) = &user.token_uri {
                secrets_only_to_safe(uri).map_err(bad)?;
            }
            Ok(Credential::AuthorizedUser {
                user,
                path: path.to_owned(),
                origin,
            })
        }
        Some(serde_json::Value::String(kind))
            if kind == "external_account" || kind == "external_account_authorized_user" =>
        {
            let (source, secrets) = super::external::read(&value, path, origin).map_err(bad)?;
            Ok(Credential::Chain { source, secrets })
        }
        Some(serde_json::Value::String(kind)) => Err(bad(format!(
            "credentials of {} are not supported; use a service_account, authorized_user, impersonated_service_account, external_account or external_account_authorized_user file",
            fields::type_for_message(kind)
        ))),
        Some(other) if !other.is_null() => Err(bad(format!(
            "its `type` is {}, not a string: expected a service-account key or an authorized_user file",
            fields::kind(other)
        ))),
        _ if value.get("installed").is_some() || value.get("web").is_some() => Err(bad(
            "this is an OAuth client secret, not a credential: log in with `gscrape auth login --client-secret FILE`"
                .to_owned(),
        )),
        _ => Err(bad(
            "no \"type\" field: expected a service-account key or an authorized_user file".to_owned(),
        )),
    }
}

/// A token endpoint receives secrets (a refresh token and client secret, or a signed
/// assertion): only over https, or plain http to loopback, like bearer tokens. The URL is
/// quoted only when it is one (a file in the wrong place may hold anything in `token_uri`).
pub(super) fn secrets_only_to_safe(token_uri: &str) -> Result<(), String> {
    let uri = token_uri.parse::<http::Uri>().ok().filter(|uri| {
        uri.scheme().is_some()
            && uri.host().is_some()
            && !uri.authority().is_some_and(|a| a.as_str().contains('@'))
    });
    match uri {
        Some(uri) if crate::http::may_carry_bearer(&uri) => Ok(()),
        Some(_) => Err(format!(
            "its token_uri {:?} is not https: the credential's secrets would travel in \
             clear; use https ({})",
            crate::redact::quote(token_uri),
            crate::http::PLAIN_HTTP_RULE
        )),
        None => Err(format!(
            "its token_uri is not a URL ({} chars); the https URL of the token endpoint was expected",
            token_uri.chars().count()
        )),
    }
}

/// A private key others can read gets a warning — when the user running gscrape could fix it:
/// not for a file owned by someone else (a Kubernetes Secret, owned by root and made readable
/// to the pod's group by `fsGroup`) nor one on a read-only mount, where `chmod` cannot work.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let fixable = meta.uid() == rustix::process::geteuid().as_raw()
            && !rustix::fs::statvfs(path)
                .is_ok_and(|fs| fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
        if meta.permissions().mode() & 0o077 != 0 && fixable {
            tracing::warn!(
                "the private key {} is readable by other users; restrict it with `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}
