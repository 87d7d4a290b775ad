//! The commands: resolve arguments into the pieces the library needs, run, print, and decide
//! the exit code. Messages go to stderr; data (`describe`, `validate` reports) to stdout.

mod auth;
mod compose;
mod error;
mod lock;
mod preflight;
mod rerun;
mod run;
mod storage;

pub use error::AppError;
pub use run::refused_by_clap;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::CommandFactory;

use crate::backfill::Window;
use crate::cli::{AuthCommand, Cli, Command, DescribeArgs, NewArgs, RunArgs};
use crate::discovery::DiscoverySource;
use crate::error::Exit;
use crate::http::retry::RetryPolicy;
use crate::http::{build_client, HyperClient};
use crate::plan::{add_child_reads, plan_in, shared_outputs, QueryPlan};
use crate::query::{load_queries, query_files, Problem, Query};
use crate::settings::{config_from_env, retry_policy, DiscoverySettings};
use crate::template::Templates;
use crate::util::nearest;

/// Timeout for fetching a Discovery document.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the parsed command line and returns the exit code: a command's own, or the one its
/// error's kind has in the exit table ([`crate::error::Failure::exit`]), printed once here.
pub async fn main(cli: Cli, matches: &clap::ArgMatches) -> Exit {
    match command(cli, matches).await {
        Ok(exit) => exit,
        Err(err) => {
            // `say!` redacts; each problem of a query is a line of its own.
            crate::say!("error: {err}");
            err.kind().exit()
        }
    }
}

async fn command(cli: Cli, matches: &clap::ArgMatches) -> Result<Exit, AppError> {
    // The shared HTTP client, for the commands that use the network (the environment's proxy
    // settings are checked here).
    let client = || build_client().map_err(AppError::from);
    // The command's own matches tell a flag given from its default, under which a config
    // file's setting goes.
    let sub = |name| matches.subcommand_matches(name);
    match cli.command {
        Command::Run(args) => run::run(*args, sub("run"), client()?).await,
        Command::Validate(args) => validate(*args, sub("validate"), client()?).await,
        Command::Compose(args) => compose::compose(args).await,
        Command::Describe(args) => describe(args, sub("describe"), client()?).await,
        Command::New(args) => new_query(args, sub("new"), client()?).await,
        Command::Lock(args) => lock::lock(args, sub("lock"), client()?).await,
        Command::Rerun(args) => rerun::rerun(args).await,
        Command::Auth(command) => {
            let matches = sub("auth").and_then(|m| m.subcommand_matches("login"));
            let client = client()?;
            // (`auth login` reads the config files, and installs their endpoints with its
            // Discovery settings; `status` and `logout` read none.)
            if !matches!(command, AuthCommand::Login(_)) {
                install_endpoints(&[])?;
            }
            auth::command(command, matches, client).await
        }
        Command::Completions { shell } => completions(shell),
        Command::Man => man_page(),
    }
}

/// `gscrape completions SHELL`: the completion script, from the same definition as `--help`.
fn completions(shell: clap_complete::Shell) -> Result<Exit, AppError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gscrape", &mut script);
    to_stdout(&String::from_utf8_lossy(&script), Exit::Success)
}

/// `gscrape man`: the manual page (roff), from the same definition as `--help`.
fn man_page() -> Result<Exit, AppError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|err| AppError::io("cannot render the manual page", err))?;
    to_stdout(&String::from_utf8_lossy(&page), Exit::Success)
}

/// Resolves the endpoint overrides — the environment's over the config files' `[endpoints]`
/// `tables` — and installs them for the process ([`crate::endpoints`]); every command that
/// reaches Google does so first, after the proxies are known. gscrape's own calls (the token
/// endpoint, STS, IAM Credentials) always carry a secret, so an override of theirs to plain
/// http elsewhere than loopback is refused here; an API's, by the pre-flight of the queries
/// that use it (an unused one stops nothing).
pub(crate) fn install_endpoints(tables: &[crate::endpoints::Table]) -> Result<(), AppError> {
    let endpoints = crate::endpoints::Endpoints::resolve(tables)?;
    for (api, _) in crate::endpoints::OWN_CALLS {
        if let Some((root, origin)) = endpoints.overridden(api) {
            let safe = root
                .parse()
                .is_ok_and(|uri| crate::http::may_carry_bearer(&uri));
            if !safe {
                return Err(AppError::Usage(format!(
                    "{origin}: refusing to send credentials over plain http to {root}: use https \
                     ({})",
                    crate::http::PLAIN_HTTP_RULE
                )));
            }
        }
    }
    crate::endpoints::install(endpoints);
    Ok(())
}

/// Where Discovery documents come from: the project's `gscrape.lock` for the APIs it pins,
/// else the cache or the service. `--locked` without a lock is a usage error.
pub(crate) fn discovery_source(
    settings: &DiscoverySettings,
    client: HyperClient,
    retry: RetryPolicy,
) -> Result<DiscoverySource, AppError> {
    let source = DiscoverySource::new(
        client,
        settings.url.clone(),
        settings.cache_dir.clone(),
        settings.policy,
        DISCOVERY_TIMEOUT,
        retry,
    );
    let dir = PathBuf::from(".");
    match crate::discovery::lock::Lock::read(&dir) {
        Ok(Some(lock)) => Ok(source.with_lock(lock, dir)),
        Ok(None) if settings.locked => Err(AppError::Usage(format!(
            "--locked: there is no {} here: run `gscrape lock` to pin the Discovery documents \
             of the queries",
            crate::discovery::lock::LOCK_FILE
        ))),
        Ok(None) => Ok(source),
        Err(err) => Err(AppError::Discovery(err.to_string())),
    }
}

/// Loads the Discovery document of each query and checks the query against it.
/// All problems of all queries are returned together.
async fn plan_queries(
    queries: Vec<Query>,
    setup: &Setup<'_>,
) -> Vec<Result<QueryPlan, Vec<Problem>>> {
    let source = setup.source;
    let mut plans = Vec::with_capacity(queries.len());
    for mut query in queries {
        for (name, value) in setup.values.vars {
            query
                .vars
                .value
                .insert(name.clone(), serde_json::Value::String(value.clone()));
        }
        if let Some(window) = setup.values.window {
            query
                .vars
                .value
                .insert("window".to_owned(), window.to_json());
        }
        if let Some(incremental) = &query.incremental {
            let since = match setup.values.since.of(&query, &incremental.value.initial) {
                Ok(since) => since,
                Err(why) => {
                    let line = query.lookback.as_ref().and_then(|l| l.line);
                    plans.push(Err(vec![query.problem(
                        line,
                        Some("lookback".to_owned()),
                        why,
                    )]));
                    continue;
                }
            };
            query
                .vars
                .value
                .insert("since".to_owned(), serde_json::Value::String(since));
        }
        let doc = match &query.discovery {
            Some(path) => source.load_file(path),
            None => source.load(&query.api, &query.version).await,
        };
        plans.push(match doc {
            Ok(doc) => plan_in(&query, doc, setup.templates, setup.values.out_dir),
            Err(err) => {
                let key = if query.discovery.is_some() {
                    "discovery"
                } else {
                    "api"
                };
                Err(vec![query.problem(
                    None,
                    Some(key.to_owned()),
                    err.to_string(),
                )])
            }
        });
    }
    plans
}

/// What planning needs besides the query files.
struct Setup<'a> {
    source: &'a DiscoverySource,
    /// `--locked`: every query's API must be pinned by `gscrape.lock`.
    locked: bool,
    templates: &'a Templates,
    /// The values the command line gives the templates.
    values: &'a Values<'a>,
}

/// What the queries' templates get from the command line: `--var`s (over every query's
/// `[vars]`), a backfill's window (the variable `window`), incremental queries' `since`.
pub(crate) struct Values<'a> {
    pub vars: &'a [(String, String)],
    pub window: Option<Window>,
    /// Where the outputs go (`--out-dir`): a directory or a `gs://` prefix.
    pub out_dir: &'a std::path::Path,
    pub since: &'a Since,
}

/// The `{{ since }}` of incremental queries: `--since`, else (unless `--full`) the cursor the
/// last successful run kept under the output directory, else the query's `initial`.
#[derive(Debug, Default)]
pub(crate) struct Since {
    pub value: Option<String>,
    pub full: bool,
    /// The output directory (`None` for `validate`, which uses `initial`).
    pub out_dir: Option<PathBuf>,
}

impl Since {
    /// A kept cursor is moved back by the query's `lookback` (`--since` and `initial` are
    /// taken as given: they say where to start on purpose); why it cannot be, otherwise.
    fn of(&self, query: &Query, initial: &str) -> Result<String, String> {
        if let Some(value) = &self.value {
            return Ok(value.clone());
        }
        let saved = match (&self.out_dir, self.full) {
            (Some(dir), false) => crate::incremental::saved(dir, &query.name),
            _ => None,
        };
        match (saved, &query.lookback) {
            (Some(saved), Some(lookback)) => lookback.value.before(&saved),
            (Some(saved), None) => Ok(saved),
            (None, _) => Ok(initial.to_owned()),
        }
    }
}

/// Loads the queries named by `paths` and plans the ones that parsed: the plans, and every
/// problem of every file. A path that does not exist is an error at once.
async fn load_and_plan(
    paths: &[PathBuf],
    only: &[String],
    setup: &Setup<'_>,
) -> Result<(Vec<QueryPlan>, Vec<Problem>), AppError> {
    let files = query_files(paths)?;
    let (queries, mut problems) = load_queries(&files, only);
    // The `[vars]` the files declare, before `--var` sets them.
    let declared: std::collections::BTreeSet<String> = queries
        .iter()
        .flat_map(|q| q.vars.value.keys().cloned())
        .collect();
    for query in &queries {
        problems.extend(crate::query::placeholder_vars(query, setup.values.vars));
        problems.extend(lock::unpinned(query, setup.source, setup.locked));
    }
    let mut plans = Vec::new();
    for result in plan_queries(queries, setup).await {
        match result {
            Ok(plan) => plans.push(plan),
            Err(found) => problems.extend(found),
        }
    }
    if problems.is_empty() {
        lock::say_drift(&plans, setup.source, setup.templates, setup.values.out_dir).await;
    }
    problems.extend(add_child_reads(&mut plans, setup.templates));
    problems.extend(shared_outputs(&plans));
    if problems.is_empty() {
        // (Only when every query planned: one that did not could be the one that reads it.)
        problems.extend(preflight::unknown_vars(
            setup.values.vars,
            &declared,
            &plans,
            setup.templates,
        ));
    }
    Ok((plans, problems))
}

/// The queries of `paths`, planned with the run's Discovery source, template engine and
/// `--var`s: the plans, every problem, and the engine (the run renders with it).
async fn prepare(
    paths: &[PathBuf],
    only: &[String],
    values: &Values<'_>,
    discovery: &DiscoverySettings,
    client: HyperClient,
    retry: RetryPolicy,
) -> Result<(Vec<QueryPlan>, Vec<Problem>, Templates), AppError> {
    let source = discovery_source(discovery, client, retry)?;
    let templates = Templates::new()?;
    let setup = Setup {
        source: &source,
        locked: discovery.locked,
        templates: &templates,
        values,
    };
    let (plans, problems) = load_and_plan(paths, only, &setup).await?;
    Ok((plans, problems, templates))
}

/// `gscrape validate`: the run's own settings, planning and pre-flight (for the first window
/// of a backfill), and a line for each query or problem; nothing is locked, authorized,
/// written or requested.
async fn validate(
    args: RunArgs,
    matches: Option<&clap::ArgMatches>,
    client: HyperClient,
) -> Result<Exit, AppError> {
    let files = crate::settings::config_files(&args.config)?;
    let args = crate::settings::RunSettings::resolve(args, matches, &files);
    // The summary's name as `run` renders and checks it (a URL that is not gs:// refused).
    let args = run::with_summary_rendered(args);
    if let Some(summary) = args.summary_json.as_deref() {
        run::check_summary(summary)?;
    }
    install_endpoints(&args.discovery.endpoints)?;
    storage::set_up(&args, &client).await?;
    let windows = run::windows(&args)?;
    let shard = run::shard_of(&args)?;
    let (plans, problems, _) =
        run::checked_plans(&args, &client, windows[0], windows.len()).await?;
    let mut out = String::new();
    for problem in &problems {
        out += &format!("error  {problem}\n");
    }
    // A query with a problem of its own is not ok; one refused only for the run's flags is.
    for plan in plans
        .iter()
        .filter(|plan| !problems.iter().any(|p| p.file == plan.query.file))
    {
        let role = shard.map(|s| {
            let role = crate::shard::role(&plans, plan, s);
            format!("; {}", crate::shard::describe(role, plan, s))
        });
        out += &format!(
            "ok     {}{}{}\n",
            plan_line(plan),
            quota_note(plan, &args.quota),
            role.unwrap_or_default()
        );
    }
    // The problems are the report (on stdout); the exit code is theirs in the table.
    let exit = match problems.is_empty() {
        true => Exit::Success,
        false => crate::error::Failure::BadInput.exit(),
    };
    to_stdout(&out, exit)
}

/// What `validate` says of a planned query: its method, where its rows go, its columns, its
/// pages, and that it writes to the account when it does.
fn plan_line(plan: &QueryPlan) -> String {
    let table = plan.query.bigquery.as_ref().map(|t| &t.value);
    let output = match (&plan.output, &plan.query.sheet, table) {
        (Some(output), _, _) => output.name().display().to_string(),
        (None, Some(_), _) => "a Google Sheet".to_owned(),
        (None, None, Some(target)) => format!("the BigQuery table {}", target.table),
        (None, None, None) => "no file (output = false)".to_owned(),
    };
    let columns = match plan.columns.len() {
        0 => "columns named by the response".to_owned(),
        n => format!("{n} columns"),
    };
    let pages = match plan.pagination.is_paginated() {
        true => "paginated",
        false => "one page",
    };
    let writes = match plan.method.access() {
        crate::discovery::Access::Read => String::new(),
        crate::discovery::Access::Write(why) => {
            format!("; it WRITES to the account: {why} (allow_writes = true)")
        }
    };
    let loads = table.map_or_else(String::new, |target| {
        let (mode, how) = match target.mode {
            crate::query::LoadMode::Replace => (
                "replace",
                "WRITE_TRUNCATE: swapped whole when the job succeeds",
            ),
            crate::query::LoadMode::Append => ("append", "WRITE_APPEND"),
            crate::query::LoadMode::Merge => (
                "merge",
                "into a staging table, then one MERGE query job by merge_key",
            ),
        };
        format!(
            "; it WRITES to the BigQuery table {} (mode = \"{mode}\": one load job, {how})",
            target.table
        )
    });
    let strict = match plan.query.strict {
        true => "; strict: fails, writing nothing, if the report says its numbers are sampled, thresholded, truncated or not final",
        false => "",
    };
    format!(
        "{}: {} → {output} ({columns}, {pages}){writes}{loads}{}{strict}",
        plan.query.name,
        plan.method.id,
        crate::merge::describe(plan)
    )
}

/// What a query costs of the quota, when it is worth saying: a request that costs more than
/// one unit (Gmail's, YouTube's search, `quota_cost`), a fan-out's units per parent record (at
/// least one request each), a query's budget.
fn quota_note(plan: &QueryPlan, quota: &crate::quota::QuotaSettings) -> String {
    let cost = quota
        .costs
        .cost(&plan.query.api, &plan.method.id, plan.query.quota_cost);
    let mut note = String::new();
    let units = |n: u32| match n {
        1 => "1 quota unit".to_owned(),
        n => format!("{n} quota units"),
    };
    match &plan.query.for_each {
        Some(parent) => {
            note = format!(
                "; {} a request, at least {} a {} record",
                units(cost),
                units(cost),
                parent.value
            );
        }
        None if cost != 1 => note = format!("; {} a request", units(cost)),
        None => {}
    }
    if let Some(max) = plan.query.max_units {
        note += &format!("; stops before spending {max} units (max_units)");
    }
    note
}

/// Writes a command's report to stdout (redacted): a closed pipe (`| head`) ends quietly with
/// the command's own exit code; any other failure (a full disk) is a local I/O error.
fn to_stdout(text: &str, exit: Exit) -> Result<Exit, AppError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(crate::redact::redact(text).as_bytes())
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(exit),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit),
        Err(err) => Err(AppError::io("cannot write to stdout", err)),
    }
}

/// Where the Discovery documents of a command other than `run` come from: its flags over the
/// config files'.
fn discovery_settings(
    args: &crate::cli::DiscoveryArgs,
    matches: Option<&clap::ArgMatches>,
    config: &crate::cli::ConfigArgs,
) -> Result<DiscoverySettings, AppError> {
    let settings = DiscoverySettings::resolve(args, matches, config)?;
    install_endpoints(&settings.endpoints)?;
    Ok(settings)
}

/// The Discovery document of `api` `version` (for `describe` and `new`).
async fn document(
    discovery: &crate::cli::DiscoveryArgs,
    matches: Option<&clap::ArgMatches>,
    api: &str,
    version: &str,
    client: HyperClient,
) -> Result<Arc<crate::discovery::Document>, AppError> {
    let settings = discovery_settings(discovery, matches, &config_from_env())?;
    let source = discovery_source(&settings, client, retry_policy(None))?;
    source
        .load(api, version)
        .await
        .map_err(|err| AppError::Discovery(err.to_string()))
}

/// `gscrape new`: a commented query file for one method, on stdout.
async fn new_query(
    args: NewArgs,
    matches: Option<&clap::ArgMatches>,
    client: HyperClient,
) -> Result<Exit, AppError> {
    let doc = document(
        &args.discovery,
        matches,
        &args.api,
        &args.api_version,
        client,
    )
    .await?;
    let method = doc
        .method(&args.method)
        .ok_or_else(|| AppError::Usage(unknown_method(&doc, &args.method)))?;
    if let (crate::discovery::Access::Write(why), false) = (method.access(), args.allow_writes) {
        return Err(AppError::Usage(format!(
            "{} changes data in the account ({why}): `gscrape new --allow-writes` writes its \
             query with `allow_writes = true`",
            method.id
        )));
    }
    to_stdout(
        &crate::scaffold::query_file(&doc, method, args.name.as_deref()),
        Exit::Success,
    )
}

/// `drive:v3 has no method "x"; did you mean ...?`
fn unknown_method(doc: &crate::discovery::Document, id: &str) -> String {
    let hints = nearest(id, doc.methods().iter().map(|m| m.id.as_str()));
    let hint = if hints.is_empty() {
        format!(
            "run `gscrape describe {} {}` for the list",
            doc.name, doc.version
        )
    } else {
        format!("did you mean {}?", hints.join(", "))
    };
    format!("{} has no method {id:?}; {hint}", doc.label())
}

async fn describe(
    args: DescribeArgs,
    matches: Option<&clap::ArgMatches>,
    client: HyperClient,
) -> Result<Exit, AppError> {
    let doc = document(
        &args.discovery,
        matches,
        &args.api,
        &args.api_version,
        client,
    )
    .await?;
    let text = match &args.method {
        None => crate::describe::method_list(&doc),
        Some(id) => {
            let method = doc
                .method(id)
                .ok_or_else(|| AppError::Usage(unknown_method(&doc, id)))?;
            crate::describe::method_details(&doc, method)
        }
    };
    to_stdout(&text, Exit::Success)
}
