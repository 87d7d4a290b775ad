//! Command-line arguments (clap derive). The doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Turn saved TOML query files into CSV exports of any Google API.
///
/// Queries name a method from Google's Discovery documents (`drive.files.list`,
/// `gmail.users.messages.list`, ...); gscrape builds the requests, follows every page and streams
/// the records into one CSV per query.
#[derive(Debug, Parser)]
#[command(name = "gscrape", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr: -v for progress, -vv for every request. Secrets are never shown.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run queries and write one CSV per query.
    Run(RunArgs),
    /// Check queries against their Discovery documents without calling any API.
    Validate(ValidateArgs),
    /// Show an API's methods, or one method's parameters, pagination and default columns.
    Describe(DescribeArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Query files, or directories whose *.toml files are all run (in name order).
    #[arg(default_value = "queries")]
    pub paths: Vec<PathBuf>,

    /// Directory the CSV files are written to.
    #[arg(long, default_value = "output", value_name = "DIR")]
    pub out_dir: PathBuf,

    /// Run only the query with this name (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,

    /// OAuth access token sent as a bearer token (e.g. from `gcloud auth print-access-token`).
    #[arg(
        long,
        env = "GSCRAPE_ACCESS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub access_token: Option<String>,

    /// Seconds to wait for one HTTP response before giving up on it.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Query files, or directories of *.toml query files.
    #[arg(default_value = "queries")]
    pub paths: Vec<PathBuf>,

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

/// Where Discovery documents come from.
#[derive(Debug, Args)]
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
