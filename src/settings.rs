//! Flags and environment, resolved into the settings the commands run with: the one place
//! where they meet (ripgrep's low-level args → high-level args). A project config file would
//! join here, below flags and the environment.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::credentials::{self, AuthSettings};
use crate::cli::{ConfigArgs, CredentialArgs, DiscoveryArgs, RunArgs};
use crate::discovery::source::CachePolicy;
use crate::http::retry::RetryPolicy;
use crate::query::CsvSettings;

/// Where Discovery documents come from.
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    /// URL template (`{api}`, `{version}`): `--discovery-url`, else `GSCRAPE_DISCOVERY_URL`.
    pub url: String,
    /// `--cache-dir`, else `GSCRAPE_CACHE_DIR`, else the user cache dir + `/gscrape`.
    pub cache_dir: Option<PathBuf>,
    pub policy: CachePolicy,
}

impl DiscoverySettings {
    pub fn from_args(args: &DiscoveryArgs) -> Self {
        let DiscoveryArgs {
            offline,
            refresh_discovery,
            discovery_url,
            cache_dir,
        } = args;
        let policy = if *offline {
            CachePolicy::Offline
        } else if *refresh_discovery {
            CachePolicy::Refresh
        } else {
            CachePolicy::Normal
        };
        DiscoverySettings {
            url: discovery_url.clone(),
            cache_dir: cache_dir
                .clone()
                .or_else(|| dirs::cache_dir().map(|d| d.join("gscrape"))),
            policy,
        }
    }
}

/// Everything `gscrape run` needs besides the query files' contents.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub paths: Vec<PathBuf>,
    pub only: Vec<String>,
    pub vars: Vec<(String, String)>,
    pub out_dir: PathBuf,
    pub concurrency: NonZeroUsize,
    pub qps: Option<f64>,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub fail_fast: bool,
    pub quiet: bool,
    /// Off a terminal, a progress line per running query this often (`None`: never).
    pub progress_interval: Option<Duration>,
    /// Wait for another run's lock of the output directory instead of exiting 75.
    pub wait_lock: bool,
    pub summary_json: Option<PathBuf>,
    /// CSV options for every query (a query's own keys win).
    pub csv: CsvSettings,
    pub auth: AuthSettings,
    /// `--subject`: the user a service account acts as (a query's `subject` wins).
    pub subject: Option<String>,
    pub discovery: DiscoverySettings,
}

impl RunSettings {
    /// Destructured whole, so that a new flag cannot be forgotten here.
    pub fn from_args(args: RunArgs) -> Self {
        let RunArgs {
            paths,
            out_dir,
            only,
            concurrency,
            qps,
            max_retries,
            fail_fast,
            quiet,
            progress_interval,
            wait_lock,
            summary_json,
            csv,
            vars,
            timeout,
            credentials,
            config,
            discovery,
        } = args;
        RunSettings {
            paths,
            only,
            vars,
            out_dir,
            concurrency,
            qps,
            retry: retry_policy(Some(max_retries)),
            timeout: Duration::from_secs(timeout),
            fail_fast,
            quiet,
            progress_interval: (progress_interval > 0)
                .then(|| Duration::from_secs(progress_interval)),
            wait_lock,
            summary_json,
            csv: CsvSettings {
                delimiter: csv.delimiter,
                bom: csv.bom.then_some(true),
                excel_safe: csv.excel_safe.then_some(true),
                null: csv.null,
                append: csv.append.then_some(true),
                header: csv.no_header.then_some(false),
            },
            auth: auth_settings(&credentials, &config),
            subject: credentials.subject,
            discovery: DiscoverySettings::from_args(&discovery),
        }
    }
}

/// The retry policy: `--max-retries` (default 5) and `GSCRAPE_BACKOFF_SCALE`, which multiplies
/// every delay (tests make them short).
pub fn retry_policy(max_retries: Option<u32>) -> RetryPolicy {
    let default = RetryPolicy::default();
    let scale = std::env::var("GSCRAPE_BACKOFF_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    RetryPolicy {
        max_retries: max_retries.unwrap_or(default.max_retries),
        scale,
        ..default
    }
}

/// gscrape's config directory (saved logins): `--config-dir`, else `GSCRAPE_CONFIG_DIR`, else
/// the user config dir + `/gscrape`.
pub fn config_dir(config: &ConfigArgs) -> PathBuf {
    config
        .config_dir
        .clone()
        .or_else(|| dirs::config_dir().map(|d| d.join("gscrape")))
        .unwrap_or_else(|| PathBuf::from(".gscrape"))
}

/// Flags and environment → the inputs of the credential order, each with where it came from.
pub fn auth_settings(creds: &CredentialArgs, config: &ConfigArgs) -> AuthSettings {
    let from_env = |var: &str, value: &str| std::env::var(var).is_ok_and(|v| v == value);
    let access_token = creds
        .access_token
        .clone()
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let origin = if from_env("GSCRAPE_ACCESS_TOKEN", &t) {
                "GSCRAPE_ACCESS_TOKEN"
            } else {
                "--access-token"
            };
            (t, origin)
        });
    let credentials = match &creds.credentials {
        Some(path) => Some((path.clone(), "--credentials")),
        None => std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
            .filter(|v| !v.is_empty())
            .map(|v| (PathBuf::from(v), "GOOGLE_APPLICATION_CREDENTIALS")),
    };
    let api_key = creds.api_key.clone().filter(|k| !k.is_empty()).map(|k| {
        let origin = if from_env("GSCRAPE_API_KEY", &k) {
            "GSCRAPE_API_KEY"
        } else {
            "--api-key"
        };
        (k, origin)
    });
    AuthSettings {
        access_token,
        credentials,
        api_key,
        config_dir: config_dir(config),
        account: creds.account.clone(),
        gcloud_adc: credentials::gcloud_adc_path(),
    }
}
