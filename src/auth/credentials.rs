//! Which credential a run uses, in a fixed order, and reading credential files.
//!
//! 1. an access token (`--access-token`, `GSCRAPE_ACCESS_TOKEN`), used as is;
//! 2. a key file (`--credentials`, else `GOOGLE_APPLICATION_CREDENTIALS`): a service-account key
//!    or an `authorized_user` file, by its `"type"`;
//! 3. the login cached by `gscrape auth login`;
//! 4. gcloud's application-default credentials file;
//! 5. an API key (`--api-key`, `GSCRAPE_API_KEY`), sent as `key=`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use yup_oauth2::ServiceAccountKey;

use super::cache::{Login, TokenCache};
use super::fields::{self, Field, Shape};
use super::given::{AccessToken, ApiKey};
use super::impersonate::Impersonated;
use super::oauth::{AuthorizedUser, AuthorizedUserFile, ServiceAccount, ServiceAccountSigner};
use super::source::{Granted, Sends, TokenSource, GCLOUD_ADC};
use super::AuthError;

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

/// The credential a run would use: what fetches its tokens (and says what it is), and its
/// secrets for the redactor.
#[derive(Clone)]
pub struct Credential {
    source: Arc<dyn TokenSource>,
    secrets: Vec<String>,
}

impl Credential {
    pub fn new(source: Arc<dyn TokenSource>, secrets: Vec<String>) -> Self {
        Credential { source, secrets }
    }

    /// None: every method the run calls is public.
    pub fn public() -> Self {
        Credential::new(Arc::new(super::given::Public), Vec::new())
    }

    /// What fetches its tokens.
    pub fn source(&self) -> &Arc<dyn TokenSource> {
        &self.source
    }

    /// The project its file names for quota and billing (`quota_project_id`).
    pub fn quota_project(&self) -> Option<String> {
        self.source.quota_project()
    }

    /// One line for `auth status` and messages: what, and where it came from. No secret.
    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// `auth status`'s `why:`: why the resolution order chose it.
    pub fn why(&self) -> String {
        self.source.why()
    }

    /// `auth status`'s lines after `why:`, for `subject` when delegating.
    pub fn status(&self, subject: Option<&str>) -> String {
        self.source.status(subject)
    }

    /// False for an API key and for no credential: nothing to write with.
    pub fn gives_tokens(&self) -> bool {
        matches!(self.source.sends(), Sends::Token { .. })
    }

    /// The scopes of a cached login, which a run checks before any request.
    pub fn granted(&self) -> Option<Granted<'_>> {
        self.source.granted()
    }
}

/// Resolves the credential by the documented order — the metadata server last, when it
/// answers (`http` probes it) — and wraps it in `--impersonate-service-account`'s chain; its
/// secrets become known to the redactor.
pub async fn resolve(
    settings: &AuthSettings,
    http: &super::source::Http,
) -> Result<Credential, AuthError> {
    let credential = match choose(settings) {
        Err(AuthError::NoCredentials) => match super::metadata::detect(http).await? {
            Some(server) => Credential::new(Arc::new(server), Vec::new()),
            None => return Err(AuthError::NoCredentials),
        },
        other => other?,
    };
    for secret in &credential.secrets {
        crate::redact::register(secret);
    }
    let Some((chain, origin)) = &settings.impersonate else {
        return Ok(credential);
    };
    let Some((target, delegates)) = chain.split_last() else {
        return Ok(credential);
    };
    Ok(impersonated(
        credential.clone(),
        Impersonated {
            quota_project: credential.quota_project(),
            source: credential.source,
            target: target.clone(),
            delegates: delegates.to_vec(),
            url: super::impersonate::generate_url(target),
            origin: (*origin).to_owned(),
            caller: OnceLock::new(),
        },
    ))
}

/// `impersonation` of `source`'s service account, holding `source`'s secrets.
fn impersonated(source: Credential, impersonation: Impersonated) -> Credential {
    Credential::new(Arc::new(impersonation), source.secrets)
}

fn choose(settings: &AuthSettings) -> Result<Credential, AuthError> {
    if let Some((token, origin)) = &settings.access_token {
        if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
            return Err(AuthError::BadAccessToken { origin });
        }
        let given = AccessToken {
            token: token.clone(),
            origin,
        };
        return Ok(Credential::new(Arc::new(given), vec![token.clone()]));
    }
    if let Some((path, origin)) = &settings.credentials {
        return read_key_file(path, origin);
    }
    let cache = TokenCache::new(&settings.config_dir);
    if let Some((path, login)) = cache.current(settings.account.as_deref())? {
        secrets_only_to_safe("token_uri", &login.token_uri).map_err(|why| {
            AuthError::BadCredentialFile {
                path: path.clone(),
                why,
            }
        })?;
        let mut secrets = vec![login.client_secret.clone(), login.refresh_token.clone()];
        secrets.extend(login.access_token.clone());
        return Ok(Credential::new(Arc::new(Login { login, path }), secrets));
    }
    if let Some(account) = &settings.account {
        return Err(AuthError::NoLoginForAccount {
            account: account.as_str().into(),
            dir: cache.dir().to_owned(),
        });
    }
    if let Some(path) = settings.gcloud_adc.as_ref().filter(|p| p.is_file()) {
        return read_key_file(path, GCLOUD_ADC);
    }
    if let Some((key, origin)) = &settings.api_key {
        let given = ApiKey {
            key: key.clone(),
            origin,
        };
        return Ok(Credential::new(Arc::new(given), vec![key.clone()]));
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
    let text = crate::util::read_small(path, crate::util::MAX_CREDENTIAL_FILE)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
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
            secrets_only_to_safe("service_account_impersonation_url", &url).map_err(bad)?;
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
            Ok(impersonated(
                source.clone(),
                Impersonated {
                    source: source.source,
                    target,
                    delegates,
                    url,
                    quota_project,
                    origin: format!("{} from {origin}", path.display()),
                    caller: OnceLock::new(),
                },
            ))
        }
        Some(serde_json::Value::String(kind)) if kind == "service_account" => {
            let incomplete = |why: String| bad(format!("not a complete service-account key ({why})"));
            fields::check(&value, "", SERVICE_ACCOUNT).map_err(incomplete)?;
            let key: ServiceAccountKey = serde_json::from_value(value)
                .map_err(|_| incomplete("a field of an unexpected shape".to_owned()))?;
            secrets_only_to_safe("token_uri", &key.token_uri).map_err(bad)?;
            let signer = ServiceAccountSigner::new(&key).map_err(|e| bad(e.to_string()))?;
            warn_if_readable_by_others(path);
            let key_source = ServiceAccount {
                signer: Arc::new(signer),
                subject: None,
                path: path.to_owned(),
                origin,
            };
            Ok(Credential::new(Arc::new(key_source), vec![key.private_key]))
        }
        Some(serde_json::Value::String(kind)) if kind == "authorized_user" => {
            let incomplete =
                |why: String| bad(format!("not a complete authorized_user file ({why})"));
            fields::check(&value, "", AUTHORIZED_USER).map_err(incomplete)?;
            let user: AuthorizedUser = serde_json::from_value(value)
                .map_err(|_| incomplete("a field of an unexpected shape".to_owned()))?;
            if let Some(uri) = &user.token_uri {
                secrets_only_to_safe("token_uri", uri).map_err(bad)?;
            }
            let secrets = vec![user.client_secret.clone(), user.refresh_token.clone()];
            let file = AuthorizedUserFile {
                user,
                path: path.to_owned(),
                origin,
            };
            Ok(Credential::new(Arc::new(file), secrets))
        }
        Some(serde_json::Value::String(kind))
            if kind == "external_account" || kind == "external_account_authorized_user" =>
        {
            let (source, secrets) = super::external::read(&value, path, origin).map_err(bad)?;
            Ok(Credential::new(source, secrets))
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
pub(super) fn secrets_only_to_safe(field: &str, url: &str) -> Result<(), String> {
    let uri = url.parse::<http::Uri>().ok().filter(|uri| {
        uri.scheme().is_some()
            && uri.host().is_some()
            && !uri.authority().is_some_and(|a| a.as_str().contains('@'))
    });
    match uri {
        Some(uri) if crate::http::may_carry_bearer(&uri) => Ok(()),
        Some(_) => Err(format!(
            "its {field} {:?} is not https: the credential's secrets would travel in \
             clear; use https ({})",
            crate::redact::quote(url),
            crate::http::PLAIN_HTTP_RULE
        )),
        None => Err(format!(
            "its {field} is not a URL ({} chars); an https URL was expected",
            url.chars().count()
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
