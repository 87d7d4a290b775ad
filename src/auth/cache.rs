//! The token cache of `gscrape auth login`: one JSON file per OAuth client and account under
//! `<config dir>/tokens/`, written atomically (temp file + rename) with mode 0600.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::fields::{self, Field, Shape};
use super::oauth::Refresh;
use super::source::{account_line, Grant, Granted, Http, TokenSource};
use super::AuthError;

/// What a login leaves behind: enough to refresh silently for months.
#[derive(Clone, Serialize, Deserialize)]
pub struct CachedLogin {
    pub client_id: String,
    pub client_secret: String,
    pub token_uri: String,
    /// The account's email, when the login returned an id_token.
    pub account: Option<String>,
    /// The scopes granted.
    pub scopes: Vec<String>,
    pub refresh_token: String,
    pub access_token: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// Unix seconds; the newest login is the one runs use.
    pub logged_in_at: u64,
}

impl std::fmt::Debug for CachedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedLogin")
            .field("client_id", &self.client_id)
            .field("account", &self.account)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl CachedLogin {
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at.map(|s| UNIX_EPOCH + Duration::from_secs(s))
    }
}

/// The cached login as a credential: its refreshed tokens are written back, so the next run
/// reuses them.
pub struct Login {
    pub login: CachedLogin,
    pub path: PathBuf,
}

#[async_trait::async_trait]
impl TokenSource for Login {
    async fn fetch(&self, http: &Http, _: &[String]) -> Result<Grant, AuthError> {
        let login = &self.login;
        let refresh = Refresh {
            token_uri: &login.token_uri,
            client_id: &login.client_id,
            client_secret: &login.client_secret,
            refresh_token: &login.refresh_token,
        };
        let grant = refresh.grant(http).await?;
        let mut login = login.clone();
        login.access_token = Some(grant.access_token.clone());
        login.expires_at = grant.expires_at.map(|t| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        if let Some(rotated) = &grant.refresh_token {
            login.refresh_token = rotated.clone();
        }
        if let Err(err) = save(&self.path, &login) {
            tracing::warn!("{err}");
        }
        Ok(grant)
    }

    fn initial(&self) -> Option<Grant> {
        let token = self.login.access_token.clone()?;
        Some(Grant::of(token, self.login.expires_at()))
    }

    fn granted(&self) -> Option<Granted<'_>> {
        Some(Granted {
            account: self.login.account.as_deref(),
            scopes: &self.login.scopes,
        })
    }

    fn describe(&self) -> String {
        format!(
            "login of {} cached by `gscrape auth login` ({})",
            self.login
                .account
                .as_deref()
                .unwrap_or("an unknown account"),
            self.path.display()
        )
    }

    fn why(&self) -> String {
        "no access token or key file is given (--access-token, GSCRAPE_ACCESS_TOKEN, --credentials, \
         GOOGLE_APPLICATION_CREDENTIALS); this is the newest `gscrape auth login`"
            .to_owned()
    }

    /// The scopes in full, one a line: a list cut short hides the one that is missing.
    fn status(&self, _: Option<&str>) -> String {
        let scopes: String = (self.login.scopes.iter())
            .map(|s| format!("  {}\n", crate::redact::quote(s)))
            .collect();
        format!(
            "{}scopes:\n{scopes}token: {}\n",
            account_line(self.login.account.as_deref()),
            expiry(self.login.expires_at())
        )
    }
}

fn expiry(expires_at: Option<SystemTime>) -> String {
    let Some(at) = expires_at else {
        return "none cached yet; the next run gets one".to_owned();
    };
    let when = humantime::format_rfc3339_seconds(at);
    match at.duration_since(SystemTime::now()) {
        Ok(left) => format!("valid until {when} (in {} min)", left.as_secs() / 60),
        Err(_) => format!("expired at {when}; the next run refreshes it"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot read the token cache {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `why` names the field, never its value (a cache holds secrets: see `super::fields`).
    #[error("the token cache {} is corrupt ({why}); run `gscrape auth login` again to replace it", .path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot write the token cache {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The directory of cached logins.
#[derive(Debug, Clone)]
pub struct TokenCache {
    dir: PathBuf,
}

impl TokenCache {
    pub fn new(config_dir: &Path) -> Self {
        TokenCache {
            dir: config_dir.join("tokens"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one client and account.
    pub fn path_for(&self, client_id: &str, account: Option<&str>) -> PathBuf {
        let client = client_id.split('.').next().unwrap_or(client_id);
        let name = format!(
            "{}__{}.json",
            safe(client),
            safe(account.unwrap_or("account"))
        );
        self.dir.join(name)
    }

    /// Every cache file, each loaded or with its problem.
    pub fn all(&self) -> Vec<(PathBuf, Result<CachedLogin, CacheError>)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let loaded = load(&p);
                (p, loaded)
            })
            .collect()
    }

    /// The login a run uses: the given account's, else the newest. A corrupt file is an error
    /// (it is reported, and the next login replaces it).
    pub fn current(
        &self,
        account: Option<&str>,
    ) -> Result<Option<(PathBuf, CachedLogin)>, CacheError> {
        let mut best: Option<(PathBuf, CachedLogin)> = None;
        for (path, loaded) in self.all() {
            let login = loaded?;
            if account.is_some_and(|a| login.account.as_deref() != Some(a)) {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|(_, b)| login.logged_in_at >= b.logged_in_at)
            {
                best = Some((path, login));
            }
        }
        Ok(best)
    }
}

pub fn load(path: &Path) -> Result<CachedLogin, CacheError> {
    let text =
        crate::util::read_small(path, crate::util::MAX_CREDENTIAL_FILE).map_err(|source| {
            CacheError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
    let corrupt = |why: String| CacheError::Corrupt {
        path: path.to_owned(),
        why,
    };
    // A syntax error says where, never what; a field is named, never its value.
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    fields::check(&value, "", CACHED_LOGIN).map_err(corrupt)?;
    serde_json::from_value(value).map_err(|_| corrupt("a field of an unexpected shape".to_owned()))
}

/// The fields of a [`CachedLogin`].
const CACHED_LOGIN: &[Field] = &[
    fields::required("client_id", Shape::Text),
    fields::required("client_secret", Shape::Text),
    fields::required("token_uri", Shape::Text),
    fields::optional("account", Shape::Email),
    fields::required("scopes", Shape::TextList),
    fields::required("refresh_token", Shape::Text),
    fields::optional("access_token", Shape::Text),
    fields::optional("expires_at", Shape::Count),
    fields::required("logged_in_at", Shape::Count),
];

/// Writes `login` to `path` atomically with mode 0600 (the directory 0700).
pub fn save(path: &Path, login: &CachedLogin) -> Result<(), CacheError> {
    let write = |source| CacheError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(write)?;
    // The temporary file is made 0600, so the secret is never readable by others, not even
    // briefly.
    let json = serde_json::to_vec_pretty(login).expect("a login serializes");
    crate::util::write_atomically(path, &json).map_err(write)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
