//! `gscrape run`: plan the queries, check everything that can be checked before a request,
//! take the output directory's lock, get tokens, run, and report — once, or once per window of
//! a backfill (`--from`/`--to`), oldest first.

use std::io::IsTerminal;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::preflight::{preflight, Checks};
use super::{auth, prepare, AppError, Since, Values};
use crate::api::ApiClient;
use crate::backfill::Window;
use crate::cli::RunArgs;
use crate::error::{Exit, Failure};
use crate::http::limits::Limits;
use crate::http::HyperClient;
use crate::query::Problem;
use crate::report::bars::Bars;
use crate::report::{summary, Lines};
use crate::run::{run_all, Job, QueryReport, Reporter, RunOptions, Status};
use crate::settings::RunSettings;
use crate::sink::sheets::SheetsApi;

pub(super) async fn run(
    args: RunArgs,
    sources: Option<&clap::ArgMatches>,
    client: HyperClient,
) -> Result<Exit, AppError> {
    let files = crate::settings::config_files(&args.config)?;
    let args = RunSettings::resolve(args, sources, &files);
    let windows: Vec<Option<Window>> = match args.backfill {
        None => vec![None],
        Some((from, to, step)) => {
            let windows = crate::backfill::windows(from, to, step);
            if windows.is_empty() {
                return Err(AppError::Usage(format!("--from {from} is after --to {to}")));
            }
            windows.into_iter().map(Some).collect()
        }
    };
    // One run at a time per output directory, held until this function returns.
    let waiting = |busy: &crate::lock::LockError| crate::say!("waiting: {busy}");
    let _lock = crate::lock::acquire(&args.out_dir, args.wait_lock, waiting).await?;
    // Bars only where a person watches a terminal that draws them; lines (and heartbeats)
    // for cron, systemd, CI, pipes and `TERM=dumb`.
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let reporter: Arc<dyn Reporter> = if std::io::stderr().is_terminal() && !args.quiet && !dumb {
        Bars::new(args.quiet)
    } else {
        Lines::new(args.quiet, args.progress_interval)
    };
    let interrupt = CancellationToken::new();
    tokio::spawn(stop_on_signal(interrupt.clone()));
    let mut reports = Vec::new();
    for window in windows {
        let mut ran = run_window(&args, &client, window, reporter.clone(), &interrupt).await?;
        if let Some(window) = window {
            for report in &mut ran {
                report.name = format!("{} {}", report.name, window.label());
            }
        }
        reports.extend(ran);
        if interrupt.is_cancelled() {
            break;
        }
    }
    reporter.done();

    let mut failures: Vec<Failure> = reports
        .iter()
        .filter_map(|r| match &r.status {
            Status::Failed { kind, .. } => Some(*kind),
            Status::Interrupted => Some(Failure::Interrupted),
            Status::Ok(_) | Status::Cancelled => None,
        })
        .collect();
    if interrupt.is_cancelled() {
        failures.push(Failure::Interrupted);
    }
    let mut exit = Exit::of_run(failures.iter().copied());
    if !args.quiet {
        crate::redact::to_stderr(&format!("\n{}", summary::table(&reports)));
    }
    if let Some(path) = &args.summary_json {
        let json = summary::json(&reports, exit as u8);
        let json = crate::redact::redact(&json);
        if let Err(err) = crate::util::write_atomically(path, json.as_bytes()) {
            crate::say!("error: cannot write the summary {}: {err}", path.display());
            // A monitor reading it would see nothing.
            failures.push(Failure::LocalIo);
            exit = Exit::of_run(failures);
        }
    }
    Ok(exit)
}

/// One run of the selected queries (in a backfill, for one window): their reports, or the
/// error found before any request. Its stages: plan, pre-flight, prepare, run, keep.
async fn run_window(
    args: &RunSettings,
    client: &HyperClient,
    window: Option<Window>,
    reporter: Arc<dyn Reporter>,
    interrupt: &CancellationToken,
) -> Result<Vec<QueryReport>, AppError> {
    let since = Since {
        value: args.since.clone(),
        full: args.full,
        out_dir: Some(args.out_dir.clone()),
    };
    let values = Values {
        vars: &args.vars,
        window,
        since: &since,
    };
    let (mut plans, mut problems, templates) = prepare(
        &args.paths,
        &args.only,
        &values,
        &args.discovery,
        client.clone(),
        args.retry.clone(),
    )
    .await?;
    if problems.is_empty() {
        let checks = Checks {
            backfill: Some(window.is_some()),
            stdout: args.stdout,
            summary_json: args.summary_json.as_deref(),
            out_dir: args.out_dir.clone(),
        };
        problems = preflight(&mut plans, &checks, &templates);
    }
    fail_on(problems)?;
    // What the outputs hold, before any request: a run from the kept cursors must not replace
    // what they have passed (`--full` and `--since` re-export on purpose).
    if !args.full && args.since.is_none() {
        fail_on(crate::incremental::replaced_records(
            &args.out_dir,
            &plans,
            &args.csv,
        ))?;
    }
    let prepared = prepare_run(args, client, window, &plans, &templates).await?;
    let Prepared {
        authorizers,
        api,
        options,
        files,
    } = prepared;
    let jobs = plans
        .into_iter()
        .zip(authorizers)
        .map(|(plan, auth)| Job { plan, auth })
        .collect();
    let reports = run_all(jobs, api, options, templates, reporter, interrupt.clone()).await;
    crate::run::resume::after_run(&args.out_dir, files);
    keep_cursors(&args.out_dir, &reports);
    Ok(reports)
}

/// What a run needs besides its plans, made once the pre-flight passed.
struct Prepared {
    authorizers: Vec<crate::run::JobAuth>,
    api: ApiClient,
    options: RunOptions,
    /// The temporary files beside the outputs before the run (`resume::before_run`).
    files: crate::run::resume::TempFiles,
}

/// The side effects before the first request: checkpoints kept or dropped, files of killed
/// runs removed, credentials (a token for each), the templates checked against them, the rate
/// limits and the Sheets endpoint.
async fn prepare_run(
    args: &RunSettings,
    client: &HyperClient,
    window: Option<Window>,
    plans: &[crate::plan::QueryPlan],
    templates: &crate::template::Templates,
) -> Result<Prepared, AppError> {
    let files = crate::run::resume::before_run(&args.out_dir, plans, window.is_some(), args.resume);
    let authorizers = auth::authorizers_for(
        plans,
        &args.auth,
        args.subject.as_deref(),
        client,
        args.timeout,
        args.retry.clone(),
        templates,
    )
    .await?;
    // The credential is known now: no template may carry one of its secrets to a server.
    fail_on(
        plans
            .iter()
            .flat_map(|p| p.secret_reads(templates))
            .collect(),
    )?;
    let sheets = match plans.iter().any(|p| p.query.sheet.is_some()) {
        true => Some(sheets_api(args, client, args.retry.clone()).await?),
        false => None,
    };
    let limits = Arc::new(rate_limits(args, plans));
    let api = ApiClient::new(client.clone(), args.timeout, args.retry.clone(), limits);
    let options = RunOptions {
        out_dir: args.out_dir.clone(),
        fail_fast: args.fail_fast,
        resume: args.resume,
        fan_out: args.concurrency,
        csv: args.csv.clone(),
        sheets,
    };
    Ok(Prepared {
        authorizers,
        api,
        options,
        files,
    })
}

/// The request limits: `--concurrency` overall, and per API the lowest `qps` of its queries
/// (else `--qps`).
fn rate_limits(args: &RunSettings, plans: &[crate::plan::QueryPlan]) -> Limits {
    let mut limits = Limits::new(args.concurrency);
    for plan in plans {
        let api = &plan.query.api;
        let rate = plans
            .iter()
            .filter(|p| &p.query.api == api)
            .filter_map(|p| p.query.qps.as_ref().map(|q| q.value))
            .reduce(f64::min)
            .or(args.qps);
        if let Some(rate) = rate {
            limits.set_rate(api, rate);
        }
    }
    limits
}

/// An incremental query that succeeded moves its cursor; one that did not leaves it.
fn keep_cursors(out_dir: &std::path::Path, reports: &[QueryReport]) {
    for report in reports {
        if let (Status::Ok(_), Some(newest)) = (&report.status, &report.cursor) {
            if let Err(err) = crate::incremental::save(out_dir, &report.name, newest) {
                crate::say!(
                    "warning: {}: cannot keep its cursor {:?}: {err}",
                    report.name,
                    crate::redact::quote(newest)
                );
            }
        }
    }
}

/// Where the Sheets API is, from its Discovery document (as any API's requests are made).
async fn sheets_api(
    args: &RunSettings,
    client: &HyperClient,
    retry: crate::http::retry::RetryPolicy,
) -> Result<SheetsApi, AppError> {
    let source = super::discovery_source(&args.discovery, client.clone(), retry);
    match source.load("sheets", "v4").await {
        Ok(doc) => Ok(SheetsApi::new(&doc)),
        Err(err) => Err(AppError::Discovery(format!(
            "[sheet]: cannot load the Sheets API's Discovery document: {err}"
        ))),
    }
}

/// Problems found before any request: the error that says them all.
fn fail_on(problems: Vec<Problem>) -> Result<(), AppError> {
    match problems.is_empty() {
        true => Ok(()),
        false => Err(AppError::Problems(problems)),
    }
}

/// Ctrl-C or SIGTERM: stop issuing requests; the run winds down and reports.
async fn stop_on_signal(interrupt: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            interrupt.cancel();
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    crate::say!("interrupted: stopping; files of unfinished queries are left as they were");
    interrupt.cancel();
}
