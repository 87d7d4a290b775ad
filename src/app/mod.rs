//! The commands: resolve arguments into the pieces the library needs, run, print, and decide
//! the exit code. Messages go to stderr; data (`describe`, `validate` reports) to stdout.

mod auth;

use std::path::PathBuf;
use std::time::Duration;

use crate::api::ApiClient;
use crate::cli::{Cli, Command, DescribeArgs, DiscoveryArgs, RunArgs, ValidateArgs};
use crate::discovery::source::CachePolicy;
use crate::discovery::{nearest, DiscoverySource};
use crate::error::Exit;
use crate::http::{build_client, may_carry_bearer, HyperClient};
use crate::plan::{plan, QueryPlan};
use crate::query::{load_queries, query_files, Problem, Query};
use crate::run::{run_query, Stop};

/// Timeout for fetching a Discovery document.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the parsed command line and returns the exit code.
pub async fn main(cli: Cli) -> Exit {
    let client = build_client();
    match cli.command {
        Command::Run(args) => run(args, client).await,
        Command::Validate(args) => validate(args, client).await,
        Command::Describe(args) => describe(args, client).await,
        Command::Auth(command) => auth::command(command, client).await,
    }
}

pub(crate) fn discovery_source(args: &DiscoveryArgs, client: HyperClient) -> DiscoverySource {
    let policy = if args.offline {
        CachePolicy::Offline
    } else if args.refresh_discovery {
        CachePolicy::Refresh
    } else {
        CachePolicy::Normal
    };
    let cache_dir = args
        .cache_dir
        .clone()
        .or_else(|| dirs::cache_dir().map(|d| d.join("gscrape")));
    DiscoverySource::new(
        client,
        args.discovery_url.clone(),
        cache_dir,
        policy,
        DISCOVERY_TIMEOUT,
    )
}

/// Loads the Discovery document of each query and checks the query against it.
/// All problems of all queries are returned together.
async fn plan_queries(
    queries: Vec<Query>,
    source: &DiscoverySource,
) -> Vec<Result<QueryPlan, Vec<Problem>>> {
    let mut plans = Vec::with_capacity(queries.len());
    for query in queries {
        let doc = match &query.discovery {
            Some(path) => source.load_file(path),
            None => source.load(&query.api, &query.version).await,
        };
        plans.push(match doc {
            Ok(doc) => plan(&query, doc),
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

/// Loads the queries named by `paths` and plans the ones that parsed: the plans, and every
/// problem of every file. A path that does not exist is reported at once.
pub(crate) async fn load_and_plan(
    paths: &[PathBuf],
    only: &[String],
    source: &DiscoverySource,
) -> Result<(Vec<QueryPlan>, Vec<Problem>), Exit> {
    let files = query_files(paths).map_err(|err| {
        eprintln!("error: {err}");
        Exit::Invalid
    })?;
    let (queries, mut problems) = load_queries(&files, only);
    let mut plans = Vec::new();
    for result in plan_queries(queries, source).await {
        match result {
            Ok(plan) => plans.push(plan),
            Err(found) => problems.extend(found),
        }
    }
    Ok((plans, problems))
}

async fn validate(args: ValidateArgs, client: HyperClient) -> Exit {
    let source = discovery_source(&args.discovery, client);
    let (plans, problems) = match load_and_plan(&args.paths, &[], &source).await {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    for problem in &problems {
        println!("error  {problem}");
    }
    for plan in &plans {
        println!(
            "ok     {}: {} → {} ({} columns, {})",
            plan.query.name,
            plan.method.id,
            plan.query.output.display(),
            plan.columns.len(),
            if plan.pagination.is_paginated() {
                "paginated"
            } else {
                "one page"
            }
        );
    }
    if problems.is_empty() {
        Exit::Success
    } else {
        Exit::Invalid
    }
}

async fn describe(args: DescribeArgs, client: HyperClient) -> Exit {
    let source = discovery_source(&args.discovery, client);
    let doc = match source.load(&args.api, &args.api_version).await {
        Ok(doc) => doc,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::Invalid;
        }
    };
    match &args.method {
        None => print!("{}", crate::describe::method_list(&doc)),
        Some(id) => match doc.method(id) {
            Some(method) => print!("{}", crate::describe::method_details(&doc, method)),
            None => {
                let hints = nearest(id, doc.methods().iter().map(|m| m.id.as_str()));
                let hint = if hints.is_empty() {
                    format!(
                        "run `gscrape describe {} {}` for the list",
                        args.api, args.api_version
                    )
                } else {
                    format!("did you mean {}?", hints.join(", "))
                };
                eprintln!("error: {} has no method {id:?}; {hint}", doc.label());
                return Exit::Invalid;
            }
        },
    }
    Exit::Success
}

async fn run(args: RunArgs, client: HyperClient) -> Exit {
    let source = discovery_source(&args.discovery, client.clone());
    let (plans, problems) = match load_and_plan(&args.paths, &args.only, &source).await {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        return Exit::Invalid;
    }
    for plan in &plans {
        let insecure = plan
            .request
            .url
            .parse()
            .map(|uri| !may_carry_bearer(&uri))
            .unwrap_or(true);
        if insecure {
            eprintln!(
                "error: {}: refusing to send a bearer token over plain http to {}: use https \
                 (plain http is allowed only to 127.0.0.1, ::1 or localhost)",
                plan.query.name, plan.request.url
            );
            return Exit::Invalid;
        }
    }
    let timeout = Duration::from_secs(args.timeout);
    let authorizers = match auth::authorizers_for(
        &plans,
        &args.credentials,
        &args.config,
        &client,
        timeout,
    )
    .await
    {
        Ok(authorizers) => authorizers,
        Err(exit) => return exit,
    };
    let api = ApiClient::new(client, timeout);
    let mut exit = Exit::Success;
    for (plan, authorizer) in plans.iter().zip(&authorizers) {
        let name = &plan.query.name;
        match run_query(plan, &api, authorizer, &args.out_dir).await {
            Ok(outcome) => {
                let cut = match outcome.stop {
                    Stop::Complete => String::new(),
                    Stop::MaxPages(n) => {
                        format!(" (stopped by max_pages = {n}; more pages were available)")
                    }
                    Stop::MaxRecords(n) => {
                        format!(" (stopped by max_records = {n}; more records were available)")
                    }
                };
                eprintln!(
                    "{name}: {}, {} → {}{cut}",
                    plural(outcome.records, "record"),
                    plural(outcome.pages, "page"),
                    outcome.output.display()
                );
            }
            Err(err) => {
                exit = Exit::QueryFailed;
                eprintln!(
                    "error: {name}: {err} ({} left unchanged)",
                    args.out_dir.join(&plan.query.output).display()
                );
            }
        }
    }
    exit
}

/// `1 page`, `2 pages`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
