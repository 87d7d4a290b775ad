//! Command-line arguments (clap derive). The doc comments are the `--help` text.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Turn saved TOML query files into CSV exports of any Google API.
///
/// Queries name a method from Google's Discovery documents (`drive.files.list`,
/// `gmail.users.messages.list`, ...); gscrape builds the requests, follows every page and streams
/// the records into one CSV per query.
#[derive(Debug, Parser)]
#[command(name = "gscrape", version, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr: -v for progress, -vv for every request. Secrets are never shown.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// How stderr is written: `plain` lines, or `json`, one object per line with `severity`
    /// (as Cloud Logging reads it), `time`, `message` and `query`, for log platforms.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "plain",
        value_name = "FORMAT",
        env = "GSCRAPE_LOG_FORMAT"
    )]
    pub log_format: crate::log_format::LogFormat,
}

/// The exit codes, for `gscrape --help` (README, "Exit codes", says more).
const EXIT_CODES: &str = "\
Exit codes:
  0    every query succeeded, each file complete
  1    a query failed while running (the others finished; failed ones kept their old file)
  2    invalid usage, query files, credentials or setup: nothing was run
  75   another run holds the output directory (--wait-lock[=SECONDS] waits for it), or
       `compose` found a part missing (not ready: try again once every task is done)
  124  --max-duration passed: the run stopped as on an interrupt (checkpoints kept)
  130  interrupted (Ctrl-C, SIGTERM): unfinished queries kept their previous files";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run queries and write one CSV per query.
    #[command(after_help = "\
Examples:
  gscrape run                                  every query in queries/ → output/
  gscrape run queries/drive_files.toml         one query
  gscrape run --only files --out-dir reports   one query of queries/, into reports/
  gscrape run --var site=https://example.com/  a template variable
  gscrape run --quiet --summary-json output/summary.json   for cron")]
    Run(Box<RunArgs>),
    /// Check queries as `run` would, with the same flags, without calling any API.
    ///
    /// It plans the queries against their Discovery documents and runs the same pre-flight as
    /// `run`: what it says ok, `run` with the same flags starts; what it refuses, `run` refuses
    /// (exit 2). Nothing is written, locked, authorized or requested.
    #[command(after_help = "\
Examples:
  gscrape validate                             every query in queries/
  gscrape validate queries/drive_files.toml    one file
  gscrape validate --from 2024-03-01 --to 2024-03-31   a backfill, as it would run")]
    Validate(Box<RunArgs>),
    /// Join the parts a sharded run wrote (NAME-part-IIIII-of-CCCCC.EXT) into the one output.
    ///
    /// Once every part is present, they are joined in index order — one header for CSV and
    /// TSV (every part's must be the same), NDJSON lines as they are, gzip re-compressed as one
    /// stream — into a temporary file renamed over OUTPUT. A `gs://` OUTPUT is composed by
    /// Cloud Storage (parts past the first rewritten without their header first), replacing
    /// OUTPUT only if nobody wrote it meanwhile. A missing part is exit 75 (not ready: the
    /// previous OUTPUT stays as it was); parts that disagree are exit 2.
    #[command(after_help = "\
Examples:
  gscrape compose output/files.csv             output/files-part-*-of-*.csv → output/files.csv
  gscrape compose output/files.csv --count 10 --remove-parts
  gscrape compose gs://bucket/exports/files.csv   (Cloud Storage compose, server-side)")]
    Compose(ComposeArgs),
    /// Show an API's methods, or one method's parameters, pagination and default columns.
    #[command(after_help = "\
Examples:
  gscrape describe drive v3                    the methods of Drive v3
  gscrape describe drive v3 drive.files.list   what a query of files.list can say")]
    Describe(DescribeArgs),
    /// Print a commented query file for a method, to save under queries/ and edit.
    #[command(after_help = "\
Examples:
  gscrape new drive v3 drive.files.list --name files > queries/files.toml
  gscrape new gmail v1 gmail.users.messages.list > queries/messages.toml")]
    New(NewArgs),
    /// Pin the Discovery documents of the queries in gscrape.lock (documents in discovery-lock/).
    ///
    /// While gscrape.lock exists, run, validate, describe and new plan against the pinned
    /// documents: the default columns and parameters stay as they were when Google changes its
    /// document, and a run says in one line what changed for its queries. `run --locked`
    /// refuses a query whose API is not pinned.
    #[command(after_help = "\
Examples:
  gscrape lock                                 pin the APIs of queries/ (those not pinned yet)
  gscrape lock --update                        move every pin to Google's current document")]
    Lock(LockArgs),
    /// Repeat a run from its record and say whether each output has the same bytes.
    ///
    /// The record is one of the state directory's runs/ (output/.gscrape/runs/…json) or a
    /// --summary-json file. The same command runs again, with the same "today", into a
    /// directory of its own, after checking that each query file is the one the run read;
    /// then each output's SHA-256 is compared with the record's, and a text output that
    /// differs is named with its first differing line. Exit 0 when every output is the same,
    /// 1 when one differs.
    #[command(after_help = "\
Examples:
  gscrape rerun output/.gscrape/runs/20261208T060000.000000Z-3f9a1c2b.json
  gscrape rerun summary.json --out-dir /tmp/check")]
    Rerun(RerunArgs),
    /// Log in to Google, show which credential runs use, or log out.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print a shell completion script: bash, zsh, fish, powershell or elvish.
    #[command(after_help = "\
Install:
  bash:  gscrape completions bash > ~/.local/share/bash-completion/completions/gscrape
  zsh:   gscrape completions zsh > ~/.zfunc/_gscrape   (with fpath+=~/.zfunc before compinit)
  fish:  gscrape completions fish > ~/.config/fish/completions/gscrape.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): gscrape man > ~/.local/share/man/man1/gscrape.1
    Man,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in in the browser once; runs then refresh the token silently.
    ///
    /// The scopes asked for are the least-privilege ones the queries need (read-only where the
    /// API offers it), plus `openid email` to name the account.
    Login(LoginArgs),
    /// Show which credential a run would use and why, its account, scopes and expiry.
    Status(StatusArgs),
    /// Forget the cached login (and revoke its token).
    Logout(LogoutArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The OAuth client secret JSON downloaded from the Google Cloud console
    /// ("Desktop app", or "Web application" with a http://localhost:PORT redirect URI).
    #[arg(long, value_name = "FILE")]
    pub client_secret: PathBuf,

    /// Also ask for this scope (repeatable); a full URL or a short name such as `drive.readonly`.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,

    /// Local port of the redirect (for a "Web application" client, the port of its redirect URI).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Do not open a browser or listen for it: print the URL and read the code (or the whole
    /// redirected address) pasted on stdin. For SSH hosts.
    #[arg(long)]
    pub no_browser: bool,

    /// Seconds to wait for the browser (or the pasted code).
    #[arg(long, default_value_t = 300, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Query files or directories whose methods decide the scopes.
    #[arg(default_value = "queries")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,

    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also get a real token through the whole chain (metadata server, STS, IAM Credentials,
    /// token endpoint) and say that it worked — the token itself is never shown.
    #[arg(long)]
    pub check: bool,

    /// With --check: the scope to ask for (repeatable; a full URL or a short name such as
    /// `drive.readonly`) [default: cloud-platform].
    #[arg(long = "scope", value_name = "SCOPE", requires = "check")]
    pub scopes: Vec<String>,

    #[command(flatten)]
    pub credentials: CredentialArgs,

    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Log out this account (default: the login runs use).
    #[arg(long, value_name = "EMAIL")]
    pub account: Option<String>,

    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Where gscrape keeps its logins.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Directory of gscrape's token cache [default: the user config dir + /gscrape].
    #[arg(long, env = "GSCRAPE_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
}

/// Which credential to use (the first that is given wins; see `gscrape auth status`).
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// OAuth access token sent as is (e.g. from `gcloud auth print-access-token`).
    #[arg(
        long,
        env = "GSCRAPE_ACCESS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub access_token: Option<String>,

    /// A service-account key or an authorized_user JSON file [default: $GOOGLE_APPLICATION_CREDENTIALS].
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// Act as this Workspace user (domain-wide delegation), with a service account: a key,
    /// or keyless (the metadata server's, an impersonated one) through IAM signJwt.
    #[arg(long, value_name = "USER")]
    pub subject: Option<String>,

    /// Impersonate this service account with the credential found (IAM Credentials
    /// generateAccessToken); a comma-separated chain `A,B,TARGET` goes through delegates.
    #[arg(
        long,
        env = "GSCRAPE_IMPERSONATE_SERVICE_ACCOUNT",
        value_name = "SA[,SA...]"
    )]
    pub impersonate_service_account: Option<String>,

    /// Bill and count API calls to this project (`x-goog-user-project`), over a credential
    /// file's `quota_project_id`.
    #[arg(long, env = "GOOGLE_CLOUD_QUOTA_PROJECT", value_name = "PROJECT")]
    pub quota_project: Option<String>,

    /// Use the cached login of this account (default: the newest login).
    #[arg(long, value_name = "EMAIL")]
    pub account: Option<String>,

    /// API key sent as `key=`, for APIs that accept one; used when no other credential is found.
    #[arg(
        long,
        env = "GSCRAPE_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Query files, or directories whose *.toml files are all run (in name order).
    #[arg(default_value = "queries")]
    pub paths: Vec<PathBuf>,

    /// Directory the CSV files are written to, or a Cloud Storage prefix (gs://BUCKET/PREFIX/).
    #[arg(
        long,
        default_value = "output",
        value_name = "DIR",
        env = "GSCRAPE_OUT_DIR"
    )]
    pub out_dir: PathBuf,

    /// Where checkpoints, incremental cursors and the run lock are kept: a directory, or a
    /// Cloud Storage prefix (gs://BUCKET/PREFIX/) shared by every machine that runs the job.
    /// Default: <out-dir>/.gscrape/.
    #[arg(long, value_name = "DIR|gs://BUCKET/PREFIX/", env = "GSCRAPE_STATE", value_parser = parse_state)]
    pub state: Option<String>,

    /// `--output -`: write the one query run to standard output (its format from its output
    /// name or `format`, CSV by default) instead of a file.
    #[arg(long, value_name = "-", value_parser = parse_stdout)]
    pub output: Option<String>,

    /// Run only the query with this name (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,

    /// Refuse to run unless gscrape.lock pins the Discovery document of every query (as
    /// `cargo --locked` refuses without a lockfile).
    #[arg(long)]
    pub locked: bool,

    /// Most HTTP requests in flight at once, across all queries.
    #[arg(long, default_value_t = NonZeroUsize::new(8).expect("8 > 0"), value_name = "N", env = "GSCRAPE_CONCURRENCY")]
    pub concurrency: NonZeroUsize,

    /// Most requests a second to each API (a query's `qps` key wins for its API).
    #[arg(long, value_name = "N", value_parser = parse_qps, env = "GSCRAPE_QPS")]
    pub qps: Option<f64>,

    /// Retries of a request that failed transiently (429, 5xx, rate limits, network errors).
    #[arg(
        long,
        default_value_t = 5,
        value_name = "N",
        env = "GSCRAPE_MAX_RETRIES"
    )]
    pub max_retries: u32,

    /// The most quota units the run may spend (Google bills usage above a tier's allowance):
    /// it stops before passing N, checkpointed, exit 1; `--resume` goes on with a new budget.
    #[arg(long, value_name = "N", env = "GSCRAPE_MAX_UNITS")]
    pub max_units: Option<u64>,

    /// The longest a request waits for a quota Google refused it for (GA4's hourly property
    /// tokens, a rate limit), e.g. 75m or 2h; then it is a quota wall (exit 1, resumable).
    #[arg(long, value_name = "DURATION", default_value = "75m", env = "GSCRAPE_QUOTA_WAIT",
          value_parser = parse_wait)]
    pub quota_wait: std::time::Duration,

    /// Pace every user's requests at this quota instead of learning it from Google's refusals:
    /// [API=]UNITS/PERIOD, e.g. gmail=6000/min (repeatable; an API's own entry wins).
    #[arg(long, value_name = "[API=]UNITS/PERIOD")]
    pub quota_per_user: Vec<crate::quota::costs::ApiRate>,

    /// Pace the project's requests at this quota: [API=]UNITS/PERIOD, e.g. gmail=1200000/min.
    #[arg(long, value_name = "[API=]UNITS/PERIOD")]
    pub quota_per_project: Vec<crate::quota::costs::ApiRate>,

    /// Stop every query as soon as one fails.
    #[arg(long, env = "GSCRAPE_FAIL_FAST", action = clap::ArgAction::SetTrue, value_parser = EnvBool)]
    pub fail_fast: bool,

    /// Take up exports a killed or failed run left unfinished from their checkpoints (under
    /// <out-dir>/.gscrape/), asking only for the pages they lack; without it, they start over.
    #[arg(long, env = "GSCRAPE_RESUME", action = clap::ArgAction::SetTrue, value_parser = EnvBool)]
    pub resume: bool,

    /// Print errors and warnings only (no progress, no per-query lines, no summary).
    #[arg(short, long, env = "GSCRAPE_QUIET", action = clap::ArgAction::SetTrue, value_parser = EnvBool)]
    pub quiet: bool,

    /// Off a terminal (cron, systemd, CI): a progress line per running query every SECONDS
    /// (0: none).
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECONDS",
        env = "GSCRAPE_PROGRESS_INTERVAL"
    )]
    pub progress_interval: u64,

    /// When another run holds the output directory, wait for it instead of exiting with 75:
    /// as long as it takes, or at most SECONDS (then exit 75).
    #[arg(long, env = "GSCRAPE_WAIT_LOCK", value_name = "SECONDS", num_args = 0..=1,
          require_equals = true, default_missing_value = "true",
          value_parser = crate::lock::LockWait::parse)]
    pub wait_lock: Option<crate::lock::LockWait>,

    /// Also write the run's record (its summary and manifest, JSON) to this file or Cloud
    /// Storage object (gs://BUCKET/NAME), for schedulers; templates are rendered
    /// (`output/summary_{{ today }}.json`, `{{ shard }}`, `{{ execution }}`).
    #[arg(
        long,
        value_name = "FILE|gs://BUCKET/NAME",
        env = "GSCRAPE_SUMMARY_JSON"
    )]
    pub summary_json: Option<PathBuf>,

    /// Stop the run this long after it started (e.g. 50m, 2h), as an interrupt stops it
    /// (unfinished queries checkpointed, the lock released): exit 124.
    #[arg(long, value_name = "DURATION", env = "GSCRAPE_MAX_DURATION", value_parser = parse_max_duration)]
    pub max_duration: Option<std::time::Duration>,

    /// List each CSV or TSV file written in the output directory's datapackage.json (a
    /// Frictionless Data Package: column types, descriptions, primary key, dialect).
    #[arg(long, env = "GSCRAPE_DESCRIBE_TABLES", action = clap::ArgAction::SetTrue, value_parser = EnvBool)]
    pub describe_tables: bool,

    /// How many runs' records to keep under the state directory's runs/ (the newest).
    #[arg(
        long,
        default_value_t = 100,
        value_name = "N",
        env = "GSCRAPE_KEEP_RUNS"
    )]
    pub keep_runs: usize,

    #[command(flatten)]
    pub csv: CsvArgs,

    /// Run one shard of a run split across tasks: INDEX/COUNT (0-based, e.g. 3/10), or `auto`
    /// (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with --shard-count, or Cloud Run Jobs'
    /// CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT). Fan-outs write their part of the output.
    #[arg(long, value_name = "INDEX/COUNT|auto", env = "GSCRAPE_SHARD")]
    pub shard: Option<String>,

    /// With --shard auto in a Kubernetes Indexed Job: the number of shards (its completions).
    #[arg(long, value_name = "N", env = "GSCRAPE_SHARD_COUNT")]
    pub shard_count: Option<String>,

    /// The run the tasks of one execution share, recorded beside each part a sharded run
    /// writes so that `gscrape compose` refuses a stale part (Cloud Run's CLOUD_RUN_EXECUTION
    /// wins).
    #[arg(long, value_name = "ID", env = "GSCRAPE_RUN_ID")]
    pub run_id: Option<String>,

    /// Set a template variable, over the queries' [vars] (repeatable): --var site=example.com
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,

    /// Backfill: run the queries once per window from this date (YYYY-MM-DD), oldest first,
    /// with {{ window.start }} and {{ window.end }} in their templates.
    #[arg(long, value_name = "DATE", requires = "to", value_parser = parse_date)]
    pub from: Option<chrono::NaiveDate>,

    /// Backfill: the last date (included).
    #[arg(long, value_name = "DATE", requires = "from", value_parser = parse_date)]
    pub to: Option<chrono::NaiveDate>,

    /// Incremental queries: ask from this value instead of the cursor the last run kept.
    #[arg(long, value_name = "VALUE", conflicts_with = "full")]
    pub since: Option<String>,

    /// Incremental queries: ignore the kept cursor, ask from each query's `initial`.
    #[arg(long)]
    pub full: bool,

    /// Backfill: the length of one window.
    #[arg(long, value_enum, default_value = "day", value_name = "STEP")]
    pub step: crate::backfill::Step,

    /// Seconds to wait for one HTTP response before giving up on it.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..), env = "GSCRAPE_TIMEOUT")]
    pub timeout: u64,

    #[command(flatten)]
    pub credentials: CredentialArgs,

    #[command(flatten)]
    pub config: ConfigArgs,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The output to make, as the query names it under the output directory
    /// (`output/files.csv`: its parts are `output/files-part-IIIII-of-CCCCC.csv`).
    pub output: PathBuf,

    /// The number of parts (the run's shard count); without it, the parts found say it.
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::shard::MAX_COUNT)))]
    pub count: Option<u32>,

    /// Delete the parts once the output is in place (by default they are kept).
    #[arg(long)]
    pub remove_parts: bool,

    /// The run whose parts to join (as `run --run-id` gave it, or the Cloud Run execution;
    /// default: CLOUD_RUN_EXECUTION): a part of another run is refused, and with
    /// --remove-parts an output this run composed already is no error.
    #[arg(long, value_name = "ID", env = "GSCRAPE_RUN_ID")]
    pub run_id: Option<String>,

    /// The parts' format, when OUTPUT's name does not say it: csv, tsv or ndjson.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<crate::query::Format>,

    /// The parts have no header row (written with --no-header): join them as they are.
    #[arg(long)]
    pub no_header: bool,

    /// The credential of a `gs://` OUTPUT (the run's own, as its outputs were written with).
    #[command(flatten)]
    pub credentials: CredentialArgs,

    #[command(flatten)]
    pub config: ConfigArgs,
}

fn parse_format(text: &str) -> Result<crate::query::Format, String> {
    crate::query::Format::parse(text)
        .ok_or_else(|| format!("one of {}", crate::query::Format::NAMES))
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The run's record: a file of the state directory's runs/, or a --summary-json file.
    pub record: PathBuf,

    /// Where the rerun writes (default: rerun-RUN_ID/); it must be empty or new.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Query files, or directories of *.toml files.
    #[arg(default_value = "queries")]
    pub paths: Vec<PathBuf>,

    /// Fetch Google's current documents and move every pin (else only new APIs are pinned).
    #[arg(long)]
    pub update: bool,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// API name as in the Discovery directory, e.g. `drive`.
    pub api: String,
    /// API version, e.g. `v3`.
    #[arg(value_name = "VERSION")]
    pub api_version: String,
    /// The method id, e.g. `drive.files.list` (`gscrape describe API VERSION` lists them).
    pub method: String,
    /// The query's name (its `name` key; the file is best saved as NAME.toml).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Scaffold a method that changes data in the account (its query gets
    /// `allow_writes = true`); without it, only methods that read are scaffolded.
    #[arg(long)]
    pub allow_writes: bool,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// API name as in the Discovery directory, e.g. `drive`, `admin`, `searchconsole`.
    pub api: String,
    /// API version, e.g. `v3`, `directory_v1`.
    #[arg(value_name = "VERSION")]
    pub api_version: String,
    /// A method id, e.g. `drive.files.list`; without it, all methods are listed.
    pub method: Option<String>,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

/// CSV options for every query of the run (a query's own keys win).
#[derive(Debug, Default, Args)]
pub struct CsvArgs {
    /// Field delimiter: one character, e.g. ';' or '\t' (a tab).
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter_arg, env = "GSCRAPE_DELIMITER")]
    pub delimiter: Option<u8>,

    /// Start each new CSV with a UTF-8 byte order mark, so Excel reads it as UTF-8.
    #[arg(long, env = "GSCRAPE_BOM", action = clap::ArgAction::SetTrue, value_parser = EnvBool)]
    pub bom: bool,

    /// Prefix cells that a spreadsheet would run as a formula (=, +, -, @) with ' (numbers stay).
    #[arg(long, env = "GSCRAPE_EXCEL_SAFE", action = clap::ArgAction::SetTrue, value_parser = EnvBool)]
    pub excel_safe: bool,

    /// Text for missing and null fields (default: an empty cell).
    #[arg(long, value_name = "TEXT", env = "GSCRAPE_NULL")]
    pub null: Option<String>,

    /// Add rows to existing files instead of replacing them (their header must match).
    #[arg(long, env = "GSCRAPE_APPEND", action = clap::ArgAction::SetTrue, value_parser = EnvBool)]
    pub append: bool,

    /// Write no header row.
    #[arg(long, env = "GSCRAPE_NO_HEADER", action = clap::ArgAction::SetTrue, value_parser = EnvBool)]
    pub no_header: bool,
}

fn parse_delimiter_arg(text: &str) -> Result<u8, String> {
    let text = if text == "\\t" { "\t" } else { text };
    crate::query::parse_delimiter(text)
}

/// Where Discovery documents come from (over the config files' `cache-dir` and
/// `discovery-url`: `settings::DiscoverySettings::resolve`).
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// Use only cached Discovery documents; never fetch.
    #[arg(long, conflicts_with = "refresh_discovery")]
    pub offline: bool,

    /// Fetch Discovery documents even when the cached copy is fresh.
    #[arg(long)]
    pub refresh_discovery: bool,

    /// URL template of Discovery documents; `{api}` and `{version}` are filled in.
    #[arg(long, env = "GSCRAPE_DISCOVERY_URL", value_name = "URL",
          default_value = crate::discovery::source::DEFAULT_DISCOVERY_URL)]
    pub discovery_url: String,

    /// Cache directory for Discovery documents [default: the user cache dir + /gscrape].
    #[arg(long, env = "GSCRAPE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err("write it as NAME=VALUE, e.g. --var site=example.com".to_owned()),
    }
}

/// A date of `--from`/`--to`: `YYYY-MM-DD` only (not 03/31/2024, not 2024-3-31).
fn parse_date(text: &str) -> Result<chrono::NaiveDate, &'static str> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .ok_or("write the date as YYYY-MM-DD, e.g. 2024-03-31")
}

fn parse_qps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(qps) if qps > 0.0 && qps.is_finite() => Ok(qps),
        _ => Err("a number of requests a second above 0, e.g. 5 or 0.5".to_owned()),
    }
}

/// A duration as `--quota-wait` takes it: `75m`, `2h`, `90s`.
pub fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("invalid duration {text:?}: write it as 75m, 2h or 90s"))
}

/// `--max-duration`: a duration above zero.
pub fn parse_max_duration(text: &str) -> Result<std::time::Duration, String> {
    match parse_wait(text)? {
        d if d.is_zero() => Err("a duration above zero, e.g. 50m, 2h or 90s".to_owned()),
        d => Ok(d),
    }
}

/// A boolean flag's environment variable as people write it: `1`/`0`, `true`/`false`,
/// `yes`/`no`, `on`/`off` (any case). Anything else is a usage error naming the variable.
#[derive(Debug, Clone, Copy)]
pub struct EnvBool;

impl EnvBool {
    /// The value of `text`, if it is one of the words.
    pub fn parse(text: &str) -> Option<bool> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "y" | "t" => Some(true),
            "0" | "false" | "no" | "off" | "n" | "f" => Some(false),
            _ => None,
        }
    }
}

impl clap::builder::TypedValueParser for EnvBool {
    type Value = bool;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<bool, clap::Error> {
        let text = value.to_string_lossy();
        if let Some(value) = EnvBool::parse(&text) {
            return Ok(value);
        }
        let flag = arg
            .and_then(clap::Arg::get_long)
            .map(|long| format!("--{long}"))
            .unwrap_or_default();
        let var = arg
            .and_then(clap::Arg::get_env)
            .map(|v| v.to_string_lossy());
        let named = match var {
            Some(var) => format!("{var} (the variable of {flag})"),
            None => flag,
        };
        let text = crate::redact::quote(&text);
        Err(clap::Error::raw(
            clap::error::ErrorKind::InvalidValue,
            format!("invalid value '{text}' for {named}: write 1 or 0, true or false, yes or no, on or off\n"),
        ))
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        None
    }
}

/// `--output` takes `-` (standard output) only: files are named in the query files.
fn parse_state(text: &str) -> Result<String, String> {
    crate::state::check(text).map(|()| text.to_owned())
}

fn parse_stdout(text: &str) -> Result<String, String> {
    match text {
        "-" => Ok(text.to_owned()),
        _ => Err(
            "only `-` (standard output): name output files with each query's `output` key, \
                  and their directory with --out-dir"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (duplicate names and the like) for every subcommand.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
