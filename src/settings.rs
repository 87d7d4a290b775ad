//! Flags, environment and config files, resolved into the settings the commands run with: the
//! one place where they meet (ripgrep's low-level args → high-level args).
//!
//! `gscrape run`'s settings come, for each one, from the first of: its flag, its environment
//! variable (`GSCRAPE_OUT_DIR`, ...), the project's `gscrape.toml` (in the current directory),
//! the user's `gscrape.toml` (in the config directory), the default. A config file's `[run]`
//! table takes `run`'s long flag names as keys.

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
    /// `--output -`: the one query's rows to standard output.
    pub stdout: bool,
    pub concurrency: NonZeroUsize,
    pub qps: Option<f64>,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub fail_fast: bool,
    /// `--resume`: take up unfinished exports from their checkpoints.
    pub resume: bool,
    pub quiet: bool,
    /// Off a terminal, a progress line per running query this often (`None`: never).
    pub progress_interval: Option<Duration>,
    /// Wait for another run's lock of the output directory instead of exiting 75.
    pub wait_lock: bool,
    pub summary_json: Option<PathBuf>,
    /// CSV options for every query (a query's own keys win).
    pub csv: CsvSettings,
    /// `--since`: an incremental query's `since`, over its kept cursor.
    pub since: Option<String>,
    /// `--full`: incremental queries start from `initial`.
    pub full: bool,
    /// `--from`, `--to`, `--step`: one run per window.
    pub backfill: Option<(chrono::NaiveDate, chrono::NaiveDate, crate::backfill::Step)>,
    pub auth: AuthSettings,
    /// `--subject`: the user a service account acts as (a query's `subject` wins).
    pub subject: Option<String>,
    pub discovery: DiscoverySettings,
}

/// A config file that cannot be used: one line naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", .path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// The `[run]` table of a `gscrape.toml`: `run`'s long flag names as keys.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunConfig {
    out_dir: Option<PathBuf>,
    concurrency: Option<NonZeroUsize>,
    qps: Option<f64>,
    max_retries: Option<u32>,
    timeout: Option<u64>,
    fail_fast: Option<bool>,
    quiet: Option<bool>,
    progress_interval: Option<u64>,
    wait_lock: Option<bool>,
    summary_json: Option<PathBuf>,
    /// One character; `\t` for a tab (checked when the file is read).
    delimiter: Option<String>,
    bom: Option<bool>,
    excel_safe: Option<bool>,
    null: Option<String>,
    append: Option<bool>,
    no_header: Option<bool>,
}

/// The keys a `[run]` table may have (for a did-you-mean).
const RUN_KEYS: &[&str] = &[
    "out-dir",
    "concurrency",
    "qps",
    "max-retries",
    "timeout",
    "fail-fast",
    "quiet",
    "progress-interval",
    "wait-lock",
    "summary-json",
    "delimiter",
    "bom",
    "excel-safe",
    "null",
    "append",
    "no-header",
];

/// The project's and the user's `gscrape.toml`, in that order of precedence (absent ones
/// left out).
pub fn config_files(config: &ConfigArgs) -> Result<Vec<RunConfig>, ConfigError> {
    let candidates = [
        PathBuf::from("gscrape.toml"),
        config_dir(config).join("gscrape.toml"),
    ];
    let mut found = Vec::new();
    for path in candidates {
        if path.is_file() {
            found.push(read_config(&path)?);
        }
    }
    Ok(found)
}

/// Reads one config file: only a `[run]` table with known keys of the right types.
fn read_config(path: &std::path::Path) -> Result<RunConfig, ConfigError> {
    let error = |message: String| ConfigError {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| error(e.message().to_owned()))?;
    for (key, value) in &table {
        if key != "run" {
            return Err(error(format!(
                "unknown table `{key}`; a config file has a `[run]` table of `gscrape run`'s flags"
            )));
        }
        let Some(run) = value.as_table() else {
            return Err(error("`run` must be a table: `[run]`".to_owned()));
        };
        for key in run.keys() {
            if !RUN_KEYS.contains(&key.as_str()) {
                let hint = match crate::util::nearest(key, RUN_KEYS.iter().copied()).first() {
                    Some(near) => format!("; did you mean `{near}`?"),
                    None => String::new(),
                };
                return Err(error(format!("[run] unknown key `{key}`{hint}")));
            }
        }
    }
    let run = table
        .get("run")
        .cloned()
        .unwrap_or(toml::Value::Table(Default::default()));
    let run: RunConfig = run
        .try_into()
        .map_err(|e: toml::de::Error| error(format!("[run] {}", e.message())))?;
    if run.timeout == Some(0) {
        return Err(error("[run] timeout: must be at least 1 second".to_owned()));
    }
    if run.qps.is_some_and(|q| !(q > 0.0 && q.is_finite())) {
        return Err(error(
            "[run] qps: must be a number of requests a second above 0".to_owned(),
        ));
    }
    if let Some(delimiter) = &run.delimiter {
        delimiter_byte(delimiter).map_err(|m| error(format!("[run] delimiter: {m}")))?;
    }
    Ok(run)
}

/// A delimiter as written in a config file (`\t` for a tab).
fn delimiter_byte(text: &str) -> Result<u8, String> {
    crate::query::parse_delimiter(if text == "\\t" { "\t" } else { text })
}

impl RunSettings {
    /// The settings of `gscrape run`: each from its flag or environment variable when
    /// `sources` says it was given there, else from the first config file that sets it, else
    /// the flag's default.
    pub fn resolve(args: RunArgs, sources: Option<&clap::ArgMatches>, files: &[RunConfig]) -> Self {
        use clap::parser::ValueSource;
        let given = |id: &str| {
            sources.is_some_and(|m| {
                matches!(
                    m.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
        };
        // The value of flag `id`: given, else from a file, else the flag's (default) value.
        fn pick<T>(given: bool, flag: T, from_files: Option<T>) -> T {
            match (given, from_files) {
                (false, Some(value)) => value,
                _ => flag,
            }
        }
        macro_rules! setting {
            ($id:literal, $field:ident, $flag:expr) => {
                pick(
                    given($id),
                    $flag,
                    files.iter().find_map(|f| f.$field.clone()),
                )
            };
        }
        let mut args = args;
        args.out_dir = setting!("out_dir", out_dir, args.out_dir);
        args.concurrency = setting!("concurrency", concurrency, args.concurrency);
        args.qps = pick(
            given("qps"),
            args.qps,
            files.iter().find_map(|f| f.qps.map(Some)),
        );
        args.max_retries = setting!("max_retries", max_retries, args.max_retries);
        args.timeout = setting!("timeout", timeout, args.timeout);
        args.fail_fast = setting!("fail_fast", fail_fast, args.fail_fast);
        args.quiet = setting!("quiet", quiet, args.quiet);
        args.progress_interval = setting!(
            "progress_interval",
            progress_interval,
            args.progress_interval
        );
        args.wait_lock = setting!("wait_lock", wait_lock, args.wait_lock);
        args.summary_json = pick(
            given("summary_json"),
            args.summary_json,
            files.iter().find_map(|f| f.summary_json.clone().map(Some)),
        );
        args.csv.bom = setting!("bom", bom, args.csv.bom);
        args.csv.excel_safe = setting!("excel_safe", excel_safe, args.csv.excel_safe);
        args.csv.append = setting!("append", append, args.csv.append);
        args.csv.no_header = setting!("no_header", no_header, args.csv.no_header);
        args.csv.null = pick(
            given("null"),
            args.csv.null,
            files.iter().find_map(|f| f.null.clone().map(Some)),
        );
        args.csv.delimiter = pick(
            given("delimiter"),
            args.csv.delimiter,
            files
                .iter()
                .find_map(|f| f.delimiter.as_deref())
                .and_then(|d| delimiter_byte(d).ok())
                .map(Some),
        );
        Self::from_args(args)
    }

    /// Destructured whole, so that a new flag cannot be forgotten here.
    fn from_args(args: RunArgs) -> Self {
        let RunArgs {
            paths,
            out_dir,
            output,
            only,
            concurrency,
            qps,
            max_retries,
            fail_fast,
            resume,
            quiet,
            progress_interval,
            wait_lock,
            summary_json,
            csv,
            vars,
            from,
            to,
            step,
            since,
            full,
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
            stdout: output.is_some(),
            concurrency,
            qps,
            retry: retry_policy(Some(max_retries)),
            timeout: Duration::from_secs(timeout),
            fail_fast,
            resume,
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
            backfill: from.zip(to).map(|(from, to)| (from, to, step)),
            since,
            full,
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
