//! Flags, environment and config files, resolved into the settings the commands run with: the
//! one place where they meet (ripgrep's low-level args → high-level args).
//!
//! Each setting comes from the first of: its flag, its environment variable
//! (`GSCRAPE_OUT_DIR`, ...), the project's `gscrape.toml` (in the current directory), the
//! user's `gscrape.toml` (in the config directory), the default. A config file's `[run]` table
//! takes `run`'s long flag names as keys, listed once, in the table of `config_keys!`; a key
//! applies to every command that has its flag: `run` resolves its own in
//! [`RunSettings::resolve`], the commands that load Discovery documents take `cache-dir` and
//! `discovery-url` in [`DiscoverySettings::resolve`]. Its `[endpoints]` table (API name → root
//! URL) goes to [`crate::endpoints`], under the `GSCRAPE_ENDPOINT_*` variables.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::credentials::{self, AuthSettings};
use crate::cli::{ConfigArgs, CredentialArgs, CsvArgs, DiscoveryArgs, RunArgs};
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
    /// The config files' `[endpoints]` tables (the project's first), for
    /// [`crate::endpoints::Endpoints::resolve`].
    pub endpoints: Vec<crate::endpoints::Table>,
    /// `--locked`: refuse a query whose API `gscrape.lock` does not pin (and a missing lock).
    pub locked: bool,
}

impl DiscoverySettings {
    /// The settings of a command other than `run`: its flags (`matches`, the command's own,
    /// tell a flag given from its default) over the config files' `cache-dir` and
    /// `discovery-url`, the user's file found under `config`.
    pub fn resolve(
        args: &DiscoveryArgs,
        matches: Option<&clap::ArgMatches>,
        config: &ConfigArgs,
    ) -> Result<Self, ConfigError> {
        let mut flags = args.clone();
        let files = config_files(config)?;
        flags.take_files(&|id| matches.is_none_or(|m| given(m, id)), &files);
        Ok(Self::from_flags(&flags).with_endpoints(&files))
    }

    /// With the `[endpoints]` tables of `files`.
    fn with_endpoints(self, files: &[ConfigFile]) -> Self {
        DiscoverySettings {
            endpoints: files.iter().map(|f| f.endpoints.clone()).collect(),
            ..self
        }
    }

    /// The settings of `flags` alone.
    pub fn from_flags(flags: &DiscoveryArgs) -> Self {
        let DiscoveryArgs {
            offline,
            refresh_discovery,
            discovery_url,
            cache_dir,
        } = flags;
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
            endpoints: Vec::new(),
            locked: false,
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
    /// The quota governor's settings: limits, costs, budget, longest wait.
    pub quota: crate::quota::QuotaSettings,
    pub timeout: Duration,
    pub fail_fast: bool,
    /// `--resume`: take up unfinished exports from their checkpoints.
    pub resume: bool,
    pub quiet: bool,
    /// Off a terminal, a progress line per running query this often (`None`: never).
    pub progress_interval: Option<Duration>,
    /// Wait for another run's lock of the output directory instead of exiting 75.
    pub wait_lock: crate::lock::LockWait,
    pub summary_json: Option<PathBuf>,
    /// `--max-duration`: the run stops this long after it started (exit 124).
    pub max_duration: Option<Duration>,
    /// Runs' records kept under the state directory's `runs/`.
    pub keep_runs: usize,
    /// List CSV and TSV outputs in the output directory's `datapackage.json`.
    pub describe_tables: bool,
    /// `--state`: where checkpoints, cursors and the lock are kept (`None`: `<out-dir>/.gscrape/`).
    pub state: Option<String>,
    /// CSV options for every query (a query's own keys win).
    pub csv: CsvSettings,
    /// The CSV options of the config files (`gscrape.toml`) not given as flags: each applies
    /// to the queries whose output takes it and does not set it, and is no error for others.
    pub project_csv: CsvSettings,
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
    /// `--shard`, `--shard-count` as given, with where from (`crate::shard::resolve`).
    pub shard: crate::shard::ShardSetting,
    /// `--run-id` / `GSCRAPE_RUN_ID` (`crate::shard::run_id`).
    pub run_id: Option<String>,
}

/// One `gscrape.toml`, read and checked.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub run: RunConfig,
    /// `[endpoints]`: root URLs by Discovery API name.
    pub endpoints: crate::endpoints::Table,
    /// `[quota]`: configured limits and costs.
    pub quota: QuotaConfig,
}

/// A config file's `[quota]` table: `per-user` and `per-project` limits (one rate for every
/// API, or a table of API names to rates) and `[quota.costs]` (a method id or API name to
/// units a request).
#[derive(Debug, Clone, Default)]
pub struct QuotaConfig {
    pub limits: crate::quota::Limits,
    pub costs: crate::quota::CostTable,
}

/// A config file that cannot be used: one line naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", .path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// The keys of a config file's `[run]` table, each once: the field of its flag in cli.rs
/// (the clap id; the key and the long flag are its kebab-case form), under the struct the
/// field is in, with the type a file gives and, for a field of another type, the conversion.
/// [`RunConfig`], the list of keys (`run_keys`, for a did-you-mean) and the merging of the
/// files under the flags not given (`FromFiles`) are made from this table. A unit test checks
/// that each key is a flag of `run` and reaches its settings.
macro_rules! config_keys {
    (@into $value:ident) => { $value };
    (@into $value:ident, $into:expr) => { $into($value) };
    ($($args:ident { $($(#[$doc:meta])* $field:ident: $ty:ty $(=> $into:expr)?,)* })*) => {
        /// The `[run]` table of a `gscrape.toml`: `run`'s long flag names as keys.
        #[derive(Debug, Clone, Default, serde::Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        pub struct RunConfig {
            $($($(#[$doc])* $field: Option<$ty>,)*)*
        }

        /// The fields of [`RunConfig`], which are the ids of their flags.
        fn run_fields() -> Vec<&'static str> {
            [$(<$args as FromFiles>::FIELDS),*].concat()
        }

        $(impl FromFiles for $args {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field),)*];

            fn take_files(&mut self, given: &dyn Fn(&str) -> bool, files: &[ConfigFile]) {
                $(if !given(stringify!($field)) {
                    if let Some(value) = files.iter().find_map(|f| f.run.$field.clone()) {
                        self.$field = config_keys!(@into value $(, $into)?);
                    }
                })*
            }
        })*
    };
}

config_keys! {
    RunArgs {
        out_dir: PathBuf,
        concurrency: NonZeroUsize,
        qps: f64 => Some,
        max_retries: u32,
        max_units: u64 => Some,
        /// A duration (`75m`; checked when the file is read).
        quota_wait: String => wait_text,
        timeout: u64,
        fail_fast: bool,
        quiet: bool,
        progress_interval: u64,
        /// `true`, `false` or a number of seconds.
        wait_lock: WaitLockSetting => WaitLockSetting::into_flag,
        summary_json: PathBuf => Some,
        /// A duration (`50m`; checked when the file is read).
        max_duration: String => max_duration_text,
        keep_runs: usize,
        describe_tables: bool,
        /// A directory or `gs://BUCKET/PREFIX/` (checked when the file is read).
        state: String => Some,
        /// `"INDEX/COUNT"` or `"auto"` (checked with the shard, naming the file).
        shard: String => Some,
        shard_count: u32 => count_text,
    }
    CsvArgs {
        /// One character; `\t` for a tab (checked when the file is read).
        delimiter: String => csv_delimiter,
        bom: bool,
        excel_safe: bool,
        null: String => Some,
        append: bool,
        no_header: bool,
    }
    // Also read by validate, describe, new and auth login (`DiscoverySettings::resolve`).
    DiscoveryArgs {
        discovery_url: String,
        cache_dir: PathBuf => Some,
    }
}

/// Flags a config file can set: each one not given (`given`, by its id) takes the first value
/// the files have.
trait FromFiles {
    /// The fields (flag ids) it takes from the files.
    const FIELDS: &'static [&'static str];

    fn take_files(&mut self, given: &dyn Fn(&str) -> bool, files: &[ConfigFile]);
}

/// The keys a `[run]` table may have.
fn run_keys() -> Vec<String> {
    run_fields().iter().map(|f| f.replace('_', "-")).collect()
}

/// Whether flag `id` was given on the command line or in its environment variable (a default
/// is not: a config file's value goes over it).
fn given(matches: &clap::ArgMatches, id: &str) -> bool {
    use clap::parser::ValueSource;
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// The config directory the environment names (`GSCRAPE_CONFIG_DIR`), for the commands that
/// have no `--config-dir`.
pub fn config_from_env() -> ConfigArgs {
    ConfigArgs {
        config_dir: std::env::var_os("GSCRAPE_CONFIG_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
    }
}

/// The project's and the user's `gscrape.toml`, in that order of precedence (absent ones
/// left out).
pub fn config_files(config: &ConfigArgs) -> Result<Vec<ConfigFile>, ConfigError> {
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

/// Reads one config file.
fn read_config(path: &std::path::Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_owned(),
        message: format!("cannot read: {e}"),
    })?;
    parse_config(path, &text)
}

/// The tables a config file may have.
const TABLES: &[&str] = &["run", "endpoints", "quota"];

/// A config file's text: a `[run]` table with known keys of the right types, and an
/// `[endpoints]` table of root URLs.
fn parse_config(path: &std::path::Path, text: &str) -> Result<ConfigFile, ConfigError> {
    let error = |message: String| ConfigError {
        path: path.to_owned(),
        message,
    };
    let keys = run_keys();
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| error(e.message().to_owned()))?;
    for (key, value) in &table {
        if !TABLES.contains(&key.as_str()) {
            let hint = match crate::util::nearest(key, TABLES.iter().copied()).first() {
                Some(near) => format!("did you mean `[{near}]`? "),
                None => String::new(),
            };
            return Err(error(format!(
                "unknown table `{key}`; {hint}a config file has a `[run]` table of `gscrape run`'s \
                 flags and an `[endpoints]` table of API root URLs"
            )));
        }
        if key == "endpoints" || key == "quota" {
            continue;
        }
        let Some(run) = value.as_table() else {
            return Err(error("`run` must be a table: `[run]`".to_owned()));
        };
        for key in run.keys() {
            if !keys.contains(key) {
                let hint = match crate::util::nearest(key, keys.iter().map(String::as_str)).first()
                {
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
    if let Some(wait) = &run.quota_wait {
        crate::cli::parse_wait(wait).map_err(|m| error(format!("[run] quota-wait: {m}")))?;
    }
    if let Some(max) = &run.max_duration {
        crate::cli::parse_max_duration(max)
            .map_err(|m| error(format!("[run] max-duration: {m}")))?;
    }
    if let Some(delimiter) = &run.delimiter {
        delimiter_byte(delimiter).map_err(|m| error(format!("[run] delimiter: {m}")))?;
    }
    let endpoints = crate::endpoints::Table {
        path: path.to_owned(),
        entries: match table.get("endpoints") {
            Some(endpoints) => endpoints_table(endpoints).map_err(error)?,
            None => Vec::new(),
        },
    };
    let quota = match table.get("quota") {
        Some(quota) => quota_table(quota).map_err(error)?,
        None => QuotaConfig::default(),
    };
    Ok(ConfigFile {
        run,
        endpoints,
        quota,
    })
}

/// `[quota]`: `per-user`, `per-project` and `[quota.costs]`, each checked.
fn quota_table(value: &toml::Value) -> Result<QuotaConfig, String> {
    use crate::quota::costs::ApiRate;
    let Some(table) = value.as_table() else {
        return Err("`quota` must be a table: `[quota]`".to_owned());
    };
    let mut config = QuotaConfig::default();
    for (key, value) in table {
        let rates = |value: &toml::Value| -> Result<Vec<ApiRate>, String> {
            let rate = |api: Option<&str>, value: &toml::Value| {
                let name = api.map_or(key.clone(), |api| format!("{key}.{api}"));
                let text = value.as_str().ok_or_else(|| {
                    format!("[quota] {name}: write a rate in quotes, as \"6000/min\"")
                })?;
                let rate = text.parse().map_err(|m| format!("[quota] {name}: {m}"))?;
                Ok::<_, String>(ApiRate {
                    api: api.map(str::to_owned),
                    rate,
                })
            };
            match value.as_table() {
                Some(apis) => apis.iter().map(|(api, v)| rate(Some(api), v)).collect(),
                None => Ok(vec![rate(None, value)?]),
            }
        };
        match key.as_str() {
            "per-user" => config.limits.per_user = rates(value)?,
            "per-project" => config.limits.per_project = rates(value)?,
            "costs" => {
                let Some(costs) = value.as_table() else {
                    return Err("[quota] costs must be a table: `[quota.costs]`".to_owned());
                };
                for (name, cost) in costs {
                    let units = cost
                        .as_integer()
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            format!("[quota.costs] {name}: must be a whole number of units above 0")
                        })?;
                    config.costs.0.insert(name.clone(), units);
                }
            }
            other => {
                let keys = ["per-user", "per-project", "costs"];
                let hint = match crate::util::nearest(other, keys.iter().copied()).first() {
                    Some(near) => format!("; did you mean `{near}`?"),
                    None => String::new(),
                };
                return Err(format!(
                    "[quota] unknown key `{other}`{hint} (it takes per-user, per-project and \
                     [quota.costs])"
                ));
            }
        }
    }
    Ok(config)
}

/// `[endpoints]`: Discovery API names (`drive`, `oauth2`, `storage`, ...) to root URLs.
fn endpoints_table(value: &toml::Value) -> Result<Vec<(String, String)>, String> {
    let Some(table) = value.as_table() else {
        return Err("`endpoints` must be a table: `[endpoints]`".to_owned());
    };
    let mut entries = Vec::new();
    for (api, root) in table {
        let name = !api.is_empty()
            && api
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name {
            return Err(format!(
                "[endpoints] {api:?} is not an API name: the keys are Discovery API names \
                 (drive, sheets, storage, oauth2 for the token endpoint, ...)"
            ));
        }
        let root = match root.as_str() {
            Some(root) => crate::endpoints::check_root(root),
            None => Err(format!(
                "must be a root URL in quotes, such as {api} = \"https://{api}.example.com/\""
            )),
        };
        entries.push((
            api.clone(),
            root.map_err(|m| format!("[endpoints] {api}: {m}"))?,
        ));
    }
    Ok(entries)
}

/// `wait-lock` as a config file writes it: `true`/`false`, or the most seconds to wait.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum WaitLockSetting {
    Flag(bool),
    Seconds(u64),
}

impl WaitLockSetting {
    fn into_flag(self) -> Option<crate::lock::LockWait> {
        use crate::lock::LockWait;
        Some(match self {
            WaitLockSetting::Flag(true) => LockWait::Forever,
            WaitLockSetting::Flag(false) | WaitLockSetting::Seconds(0) => LockWait::No,
            WaitLockSetting::Seconds(s) => LockWait::AtMost(Duration::from_secs(s)),
        })
    }
}

/// A delimiter as written in a config file (`\t` for a tab).
fn delimiter_byte(text: &str) -> Result<u8, String> {
    crate::query::parse_delimiter(if text == "\\t" { "\t" } else { text })
}

/// `quota-wait` from a config file (checked when it was read).
fn wait_text(text: String) -> std::time::Duration {
    crate::cli::parse_wait(&text).unwrap_or(crate::quota::DEFAULT_WAIT)
}

/// `max-duration` from a config file (checked when it was read).
fn max_duration_text(text: String) -> Option<std::time::Duration> {
    crate::cli::parse_max_duration(&text).ok()
}

/// `--shard-count` from a config file's `shard-count`.
fn count_text(count: u32) -> Option<String> {
    Some(count.to_string())
}

/// Where the value of flag `id` came from, for its messages: the flag, its variable, or the
/// first config file that sets it (`in_file`).
fn origin_of(
    sources: Option<&clap::ArgMatches>,
    id: &str,
    (flag, var, key): (&str, &str, &str),
    files: &[ConfigFile],
    in_file: impl Fn(&RunConfig) -> bool,
) -> String {
    use clap::parser::ValueSource;
    match sources.and_then(|m| m.value_source(id)) {
        Some(ValueSource::EnvVariable) => var.to_owned(),
        Some(ValueSource::CommandLine) => flag.to_owned(),
        _ => files
            .iter()
            .find(|f| in_file(&f.run))
            .map(|f| format!("{}: [run] {key} =", f.endpoints.path.display()))
            .unwrap_or_else(|| flag.to_owned()),
    }
}

/// `--delimiter` from a config file's `delimiter` (checked when the file was read).
fn csv_delimiter(text: String) -> Option<u8> {
    delimiter_byte(&text).ok()
}

/// The CSV options the flags (or a config file) set.
fn csv_settings(csv: CsvArgs) -> CsvSettings {
    CsvSettings {
        delimiter: csv.delimiter,
        bom: csv.bom.then_some(true),
        excel_safe: csv.excel_safe.then_some(true),
        null: csv.null,
        append: csv.append.then_some(true),
        header: csv.no_header.then_some(false),
    }
}

impl RunSettings {
    /// The settings of `gscrape run`: each from its flag or environment variable when
    /// `sources` says it was given there, else from the first config file that sets it, else
    /// the flag's default.
    pub fn resolve(
        args: RunArgs,
        sources: Option<&clap::ArgMatches>,
        files: &[ConfigFile],
    ) -> Self {
        let given = |id: &str| sources.is_some_and(|m| given(m, id));
        let mut args = args;
        args.take_files(&given, files);
        // A project's CSV options are defaults for the outputs that take them, not flags.
        let mut project_csv = CsvArgs::default();
        project_csv.take_files(&given, files);
        args.discovery.take_files(&given, files);
        let mut settings = Self::from_args(args);
        settings.project_csv = csv_settings(project_csv);
        settings.discovery = settings.discovery.with_endpoints(files);
        // The flags' limits first (an API's own entry wins wherever it is), then the files'.
        for file in files {
            let limits = &mut settings.quota.limits;
            limits
                .per_user
                .extend(file.quota.limits.per_user.iter().cloned());
            limits
                .per_project
                .extend(file.quota.limits.per_project.iter().cloned());
            for (name, units) in &file.quota.costs.0 {
                settings.quota.costs.0.entry(name.clone()).or_insert(*units);
            }
        }
        let shard = &mut settings.shard;
        if let Some(spec) = &mut shard.spec {
            let names = ("--shard", "GSCRAPE_SHARD", "shard");
            spec.origin = origin_of(sources, "shard", names, files, |r| r.shard.is_some());
        }
        if let Some(count) = &mut shard.count {
            let names = ("--shard-count", "GSCRAPE_SHARD_COUNT", "shard-count");
            count.origin = origin_of(sources, "shard_count", names, files, |r| {
                r.shard_count.is_some()
            });
        }
        settings
    }

    /// Destructured whole, so that a new flag cannot be forgotten here.
    fn from_args(args: RunArgs) -> Self {
        let RunArgs {
            paths,
            out_dir,
            output,
            only,
            locked,
            concurrency,
            qps,
            max_retries,
            max_units,
            quota_wait,
            quota_per_user,
            quota_per_project,
            fail_fast,
            resume,
            quiet,
            progress_interval,
            wait_lock,
            summary_json,
            max_duration,
            keep_runs,
            describe_tables,
            state,
            csv,
            shard,
            shard_count,
            run_id,
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
            quota: crate::quota::QuotaSettings {
                limits: crate::quota::Limits {
                    per_user: quota_per_user,
                    per_project: quota_per_project,
                },
                costs: crate::quota::CostTable::default(),
                max_units,
                wait: quota_wait,
                scale: retry_policy(None).scale,
            },
            timeout: Duration::from_secs(timeout),
            fail_fast,
            resume,
            quiet,
            progress_interval: (progress_interval > 0)
                .then(|| Duration::from_secs(progress_interval)),
            wait_lock: wait_lock.unwrap_or_default(),
            summary_json,
            max_duration,
            keep_runs,
            describe_tables,
            state,
            csv: csv_settings(csv),
            project_csv: CsvSettings::default(),
            backfill: from.zip(to).map(|(from, to)| (from, to, step)),
            since,
            full,
            auth: auth_settings(&credentials, &config),
            subject: credentials.subject,
            discovery: DiscoverySettings {
                locked,
                ..DiscoverySettings::from_flags(&discovery)
            },
            shard: crate::shard::ShardSetting {
                spec: shard.map(|value| crate::shard::Given {
                    value,
                    origin: "--shard".to_owned(),
                }),
                count: shard_count.map(|value| crate::shard::Given {
                    value,
                    origin: "--shard-count".to_owned(),
                }),
            },
            run_id,
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
    let impersonate = creds
        .impersonate_service_account
        .as_deref()
        .map(|chain| {
            chain
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|chain| !chain.is_empty())
        .map(|chain| {
            let origin = match std::env::var("GSCRAPE_IMPERSONATE_SERVICE_ACCOUNT") {
                Ok(v) if Some(v.as_str()) == creds.impersonate_service_account.as_deref() => {
                    "GSCRAPE_IMPERSONATE_SERVICE_ACCOUNT"
                }
                _ => "--impersonate-service-account",
            };
            (chain, origin)
        });
    let quota_project = creds
        .quota_project
        .clone()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let origin = if from_env("GOOGLE_CLOUD_QUOTA_PROJECT", &p) {
                "GOOGLE_CLOUD_QUOTA_PROJECT"
            } else {
                "--quota-project"
            };
            (p.trim().to_owned(), origin)
        });
    AuthSettings {
        impersonate,
        quota_project,
        access_token,
        credentials,
        api_key,
        config_dir: config_dir(config),
        account: creds.account.clone(),
        gcloud_adc: credentials::gcloud_adc_path(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, FromArgMatches, Parser};

    /// A value for each key that its flag's default is not.
    const VALUES: &[(&str, &str)] = &[
        ("out-dir", "\"reports\""),
        ("concurrency", "3"),
        ("qps", "2.5"),
        ("max-units", "5000"),
        ("quota-wait", "\"2h\""),
        ("max-retries", "1"),
        ("timeout", "7"),
        ("fail-fast", "true"),
        ("quiet", "true"),
        ("progress-interval", "0"),
        ("wait-lock", "true"),
        ("summary-json", "\"summary.json\""),
        ("max-duration", "\"50m\""),
        ("keep-runs", "7"),
        ("describe-tables", "true"),
        ("state", "\"gs://jobs-state/daily/\""),
        ("shard", "\"1/3\""),
        ("shard-count", "3"),
        ("delimiter", "\"\\\\t\""),
        ("bom", "true"),
        ("excel-safe", "true"),
        ("null", "\"NA\""),
        ("append", "true"),
        ("no-header", "true"),
        ("discovery-url", "\"http://127.0.0.1:1/{api}/{version}\""),
        ("cache-dir", "\"discovery-cache\""),
    ];

    /// `run`'s flags that are not config keys: what one run is asked to do (paths, only,
    /// output, vars, a backfill, incremental starts, resume), credentials (secrets stay out of
    /// files; the credential order has its own sources), the directory the user's file is in,
    /// and one-off Discovery modes.
    const NOT_KEYS: &[&str] = &[
        "paths",
        "output",
        "only",
        "resume",
        "vars",
        "from",
        "to",
        "since",
        "full",
        "step",
        "access_token",
        "credentials",
        "subject",
        "impersonate_service_account",
        "quota_project",
        "account",
        "api_key",
        "config_dir",
        "offline",
        "refresh_discovery",
        "locked",
        // `[quota]`'s per-user and per-project, a table of their own (`quota_table`).
        "quota_per_user",
        "quota_per_project",
        // One execution's, not a project's: a flag or GSCRAPE_RUN_ID.
        "run_id",
    ];

    fn run_args() -> RunArgs {
        match Cli::try_parse_from(["gscrape", "run"]).unwrap().command {
            Command::Run(args) => *args,
            other => panic!("{other:?}"),
        }
    }

    fn config(text: &str) -> ConfigFile {
        parse_config(std::path::Path::new("gscrape.toml"), text).unwrap()
    }

    #[test]
    fn every_key_of_a_config_file_reaches_the_settings() {
        let mut named: Vec<&str> = VALUES.iter().map(|(key, _)| *key).collect();
        let mut keys = run_keys();
        named.sort_unstable();
        keys.sort_unstable();
        assert_eq!(named, keys, "VALUES names every key");

        let defaults = format!("{:?}", RunSettings::resolve(run_args(), None, &[]));
        for (key, value) in VALUES {
            let file = config(&format!("[run]\n{key} = {value}\n"));
            let settings = RunSettings::resolve(run_args(), None, &[file]);
            assert_ne!(format!("{settings:?}"), defaults, "`{key}` changes nothing");
        }
        let every: String = VALUES.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        let settings =
            RunSettings::resolve(run_args(), None, &[config(&format!("[run]\n{every}"))]);
        assert_eq!(settings.project_csv.delimiter, Some(b'\t'));
        assert_eq!(
            settings.csv.delimiter, None,
            "a project's CSV options are not flags"
        );
        assert_eq!(
            settings.discovery.cache_dir,
            Some(PathBuf::from("discovery-cache"))
        );
    }

    #[test]
    fn an_endpoints_table_gives_checked_roots_and_one_line_errors() {
        let file = config(
            "[endpoints]\ndrive = \"http://127.0.0.1:9/psc\"\noauth2 = \"https://o.example/\"\n",
        );
        assert_eq!(
            file.endpoints.entries,
            [
                ("drive".to_owned(), "http://127.0.0.1:9/psc/".to_owned()),
                ("oauth2".to_owned(), "https://o.example/".to_owned())
            ]
        );
        assert_eq!(file.endpoints.path, PathBuf::from("gscrape.toml"));
        let settings = RunSettings::resolve(run_args(), None, std::slice::from_ref(&file));
        assert_eq!(settings.discovery.endpoints, [file.endpoints]);
        for (text, message) in [
            (
                "[endpoints]\ndrive = 3\n",
                "gscrape.toml: [endpoints] drive: must be a root URL in quotes, such as drive = \"https://drive.example.com/\"",
            ),
            (
                "[endpoints]\ndrive = \"drive.example.com\"\n",
                "gscrape.toml: [endpoints] drive: \"drive.example.com\" is not a root URL (http or https is needed): give one such as \"https://drive.example.com/\"",
            ),
            (
                "[endpoints]\n\"a b\" = \"https://x.example/\"\n",
                "gscrape.toml: [endpoints] \"a b\" is not an API name: the keys are Discovery API names (drive, sheets, storage, oauth2 for the token endpoint, ...)",
            ),
            (
                "endpoints = \"https://x.example/\"\n",
                "gscrape.toml: `endpoints` must be a table: `[endpoints]`",
            ),
            (
                "[endpoint]\ndrive = \"https://x.example/\"\n",
                "gscrape.toml: unknown table `endpoint`; did you mean `[endpoints]`? a config file has a `[run]` table of `gscrape run`'s flags and an `[endpoints]` table of API root URLs",
            ),
        ] {
            let err = parse_config(std::path::Path::new("gscrape.toml"), text).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn a_flag_given_wins_over_the_files() {
        let matches = Cli::command()
            .try_get_matches_from([
                "gscrape",
                "run",
                "--out-dir",
                "flag",
                "--cache-dir",
                "flag-cache",
            ])
            .unwrap();
        let Some(("run", sources)) = matches.subcommand() else {
            panic!("{matches:?}")
        };
        let args = match Cli::from_arg_matches(&matches).unwrap().command {
            Command::Run(args) => *args,
            other => panic!("{other:?}"),
        };
        let file = config("[run]\nout-dir = \"file\"\ncache-dir = \"file-cache\"\nbom = true\n");
        let settings = RunSettings::resolve(args, Some(sources), &[file]);
        assert_eq!(settings.out_dir, PathBuf::from("flag"));
        assert_eq!(
            settings.discovery.cache_dir,
            Some(PathBuf::from("flag-cache"))
        );
        assert_eq!(
            settings.project_csv.bom,
            Some(true),
            "the file under the flags not given"
        );
    }

    #[test]
    fn every_key_is_a_long_flag_of_the_commands_it_applies_to() {
        let cli = Cli::command();
        let command = |path: &[&str]| {
            path.iter().fold(cli.clone(), |cmd, name| {
                cmd.find_subcommand(name)
                    .unwrap_or_else(|| panic!("{name}"))
                    .clone()
            })
        };
        let flag_of = |cmd: &clap::Command, id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_long())
                .map(str::to_owned)
        };
        let run = command(&["run"]);
        for field in run_fields() {
            assert_eq!(
                flag_of(&run, field),
                Some(field.replace('_', "-")),
                "the key of `{field}` is a long flag of run"
            );
        }
        for path in [
            &["validate"][..],
            &["describe"],
            &["new"],
            &["auth", "login"],
        ] {
            for field in DiscoveryArgs::FIELDS {
                assert!(flag_of(&command(path), field).is_some(), "{path:?} {field}");
            }
        }
    }

    #[test]
    fn every_flag_of_run_is_a_key_or_said_not_to_be() {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").unwrap();
        let fields = run_fields();
        for arg in run.get_arguments() {
            let id = arg.get_id().as_str();
            assert!(
                fields.contains(&id) || NOT_KEYS.contains(&id),
                "`{id}`: add it to config_keys! (settings.rs) or to NOT_KEYS"
            );
            assert!(!(fields.contains(&id) && NOT_KEYS.contains(&id)), "{id}");
        }
    }
}
