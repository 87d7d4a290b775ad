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
use crate::plan::QueryPlan;
use crate::query::Problem;
use crate::report::bars::Bars;
use crate::report::{manifest, summary, Lines};
use crate::run::{run_all, Job, QueryReport, Reporter, RunOptions, Skip, Status};
use crate::settings::RunSettings;
use crate::sink::sheets::SheetsApi;

/// `gscrape run`, whatever its end: the summary (`--summary-json`) is written on every exit —
/// a usage error, a busy lock, a failed credential, an interrupt — so that a monitor never
/// reads an earlier run's as this one's.
pub(super) async fn run(
    args: RunArgs,
    sources: Option<&clap::ArgMatches>,
    client: HyperClient,
) -> Result<Exit, AppError> {
    let clock = Clock::start();
    // Before the config files are read, the summary's file is the flag's (or environment's).
    let flag_summary = args.summary_json.clone();
    let args = match crate::settings::config_files(&args.config) {
        Ok(files) => RunSettings::resolve(args, sources, &files),
        Err(err) => {
            let err = AppError::from(err);
            let info = clock.info(None, Some(&err));
            let target = flag_summary.as_deref().map(|p| rendered_path(p, None));
            let _ = write_summary(target.as_deref(), &[], err.kind().exit(), &info);
            return Err(err);
        }
    };
    // The summary's name, rendered once (`{{ today }}`, `{{ shard }}`, `{{ execution }}`): the
    // pre-flight checks it against the outputs, and it is written there on every exit.
    let args = with_summary_rendered(args);
    let interrupt = CancellationToken::new();
    let mut deadline = Deadline::start(args.max_duration, clock.started, &interrupt);
    let record = |reports: &[QueryReport], exit: Exit, info: &summary::RunInfo| {
        keep_record(&args, &clock, reports, exit, info)
    };
    let set_up = match (args.summary_json.as_deref().map(check_summary))
        .unwrap_or(Ok(()))
        .and_then(|()| super::install_endpoints(&args.discovery.endpoints))
    {
        Ok(()) => super::storage::set_up(&args, &client).await,
        Err(err) => Err(err),
    };
    if let Err(err) = set_up {
        let info = clock.info(Some(&args), Some(&err));
        let _ = write_summary(args.summary_json.as_deref(), &[], err.kind().exit(), &info);
        record(&[], err.kind().exit(), &info);
        return Err(err);
    }
    let (reports, ended) = run_windows(&args, &client, &interrupt).await;
    let (mut failures, error) = match ended {
        Ok(failures) => (failures, None),
        Err(err) => (Vec::new(), Some(err)),
    };
    // Stopped by the deadline: its kind, not an interrupt's; else the deadline is off (the
    // summary and record are written as any run's).
    let past_deadline = deadline.passed();
    if past_deadline {
        for failure in &mut failures {
            if *failure == Failure::Interrupted {
                *failure = Failure::Deadline;
            }
        }
    } else {
        deadline.stop();
    }
    let mut exit = match &error {
        Some(err) => err.kind().exit(),
        None => Exit::of_run(failures.iter().copied()),
    };
    let json_logs = crate::log_format::json();
    if !args.quiet && error.is_none() && !json_logs {
        crate::redact::to_stderr(&format!("\n{}", summary::table(&reports)));
    }
    let mut info = clock.info(Some(&args), error.as_ref());
    if past_deadline && info.failure.is_none() {
        info.failure = Some(Failure::Deadline);
    }
    // (Not over the output it was refused for naming.)
    let summary_json = args.summary_json.as_deref().filter(
        |_| !matches!(&error, Some(AppError::Problems(p)) if super::preflight::summary_clash(p)),
    );
    if write_summary(summary_json, &reports, exit, &info).is_err() && error.is_none() {
        // A monitor reading it would see nothing.
        exit = Exit::of_run(failures.into_iter().chain([Failure::LocalIo]));
    }
    if json_logs && !args.quiet {
        summary_line(&reports, exit, &info);
    }
    record(&reports, exit, &info);
    match error {
        Some(err) => Err(err),
        None => Ok(exit),
    }
}

/// `--log-format json`: the run's summary as one log line, `summary` holding what
/// `--summary-json` writes.
fn summary_line(reports: &[QueryReport], exit: Exit, info: &summary::RunInfo) {
    let json = summary::json(reports, exit as u8, info);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let severity = match exit {
        Exit::Success => "INFO",
        Exit::Busy | Exit::Interrupted | Exit::Deadline => "WARNING",
        Exit::QueryFailed | Exit::Invalid => "ERROR",
    };
    let ok = (reports.iter())
        .filter(|r| matches!(r.status, Status::Ok(_)))
        .count();
    let message = format!(
        "summary: {ok} of {} queries ok, exit {}",
        reports.len(),
        exit as u8
    );
    crate::redact::json_to_stderr(severity, &message, "summary", &value);
}

/// How long after its deadline a run that has not stopped (a storage server that does not
/// answer) is ended regardless: checkpoints written so far stay. `GSCRAPE_DEADLINE_GRACE`
/// (seconds) shortens it for the tests.
fn deadline_grace() -> std::time::Duration {
    let seconds = std::env::var("GSCRAPE_DEADLINE_GRACE")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(30);
    std::time::Duration::from_secs(seconds)
}

/// `--max-duration`: at its deadline the run is stopped as an interrupt stops it; one that has
/// not ended [`deadline_grace`] later exits 124 there and then.
struct Deadline {
    passed: Arc<std::sync::atomic::AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Deadline {
    fn start(
        max: Option<std::time::Duration>,
        started: std::time::Instant,
        interrupt: &CancellationToken,
    ) -> Self {
        let passed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = max.map(|max| {
            let (passed, interrupt) = (passed.clone(), interrupt.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until((started + max).into()).await;
                passed.store(true, std::sync::atomic::Ordering::SeqCst);
                crate::say!(
                    "error: --max-duration {}: time is up; stopping (unfinished queries keep their \
                     previous files and a checkpoint: `gscrape run --resume` continues them)",
                    humantime::format_duration(max)
                );
                interrupt.cancel();
                let grace = deadline_grace();
                tokio::time::sleep(grace).await;
                crate::say!(
                    "error: --max-duration: the run did not stop within {}s of its deadline; exiting",
                    grace.as_secs()
                );
                std::process::exit(i32::from(Exit::Deadline as u8));
            })
        });
        Deadline { passed, task }
    }

    /// True once the deadline has passed (and the run was told to stop).
    fn passed(&self) -> bool {
        self.passed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The run ended before its deadline: no deadline any more.
    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `args` with the summary's name rendered (`{{ today }}`, `{{ shard }}`, `{{ execution }}`).
pub(super) fn with_summary_rendered(mut args: RunSettings) -> RunSettings {
    let shard = shard_of(&args).ok().flatten();
    args.summary_json = (args.summary_json.as_deref()).map(|path| rendered_path(path, shard));
    args
}

/// `--summary-json`: a file, or a Cloud Storage object; any other URL is refused at start.
pub(super) fn check_summary(path: &std::path::Path) -> Result<(), AppError> {
    let text = path.to_string_lossy();
    if crate::gcs::is_gs(&text) {
        return crate::gcs::ObjectUrl::parse(&text)
            .map(drop)
            .map_err(|why| AppError::Usage(format!("--summary-json {why}")));
    }
    match text.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() && !scheme.contains('/') => {
            Err(AppError::Usage(format!(
                "--summary-json {}: a summary is written to a file or to Cloud Storage \
                 (gs://BUCKET/NAME), not to {scheme}://",
                crate::redact::quote(&text)
            )))
        }
        _ => Ok(()),
    }
}

/// A `gscrape run` whose command line or environment clap refused (an environment boolean
/// that is not one, say): its summary (`--summary-json FILE`, `GSCRAPE_SUMMARY_JSON`, read from
/// the arguments as given) is written all the same, exit 2 with clap's `message`, so that a
/// monitor never reads an earlier run's as this one's. A `gs://` summary cannot be reached
/// without the run's settings: left as it is.
pub fn refused_by_clap(message: &str) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let is_run = (args.iter())
        .find(|a| !a.starts_with('-'))
        .is_some_and(|a| a == "run");
    if !is_run {
        return;
    }
    let flag =
        args.iter()
            .enumerate()
            .find_map(|(i, arg)| match arg.strip_prefix("--summary-json") {
                Some(rest) if rest.starts_with('=') => Some(rest[1..].to_owned()),
                Some("") => args.get(i + 1).cloned(),
                _ => None,
            });
    let Some(path) = flag.or_else(|| std::env::var("GSCRAPE_SUMMARY_JSON").ok()) else {
        return;
    };
    let path = rendered_path(std::path::Path::new(&path), None);
    if crate::gcs::is_gs(&path.to_string_lossy()) {
        return;
    }
    let clock = Clock::start();
    let message = message.trim().lines().next().unwrap_or_default();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let err = AppError::Usage(message.to_owned());
    let info = clock.info(None, Some(&err));
    let _ = write_summary(Some(&path), &[], Exit::Invalid, &info);
}

/// When the run started, and its id, for its summary and record.
struct Clock {
    started_at: chrono::DateTime<chrono::Utc>,
    started: std::time::Instant,
    run_id: String,
}

impl Clock {
    fn start() -> Self {
        Clock {
            started_at: chrono::Utc::now(),
            started: std::time::Instant::now(),
            run_id: manifest::run_id(),
        }
    }

    /// The run's part of the summary, now that it ends (with `error`, if that ended it).
    fn info(&self, args: Option<&RunSettings>, error: Option<&AppError>) -> summary::RunInfo {
        let time = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let seconds = self.started.elapsed().as_secs_f64();
        summary::RunInfo {
            manifest_version: manifest::MANIFEST_VERSION,
            run_id: self.run_id.clone(),
            version: env!("CARGO_PKG_VERSION"),
            command: std::env::args().collect(),
            started_at: time(self.started_at),
            finished_at: time(chrono::Utc::now()),
            duration_s: (seconds * 1000.0).round() / 1000.0,
            backfill: args
                .and_then(|a| a.backfill)
                .map(|(from, to, step)| summary::BackfillInfo {
                    from: from.to_string(),
                    to: to.to_string(),
                    step: format!("{step:?}").to_lowercase(),
                }),
            since: args.and_then(|a| a.since.clone()),
            failure: error.map(AppError::kind),
            error: error.map(|e| crate::redact::for_display(&e.to_string()).into_owned()),
        }
    }
}

/// Keeps the run's record under the state directory's `runs/` (the newest `--keep-runs`),
/// whatever the run's end; a failure to is said on stderr, and is not the run's.
fn keep_record(
    args: &RunSettings,
    clock: &Clock,
    reports: &[QueryReport],
    exit: Exit,
    info: &summary::RunInfo,
) {
    if args.keep_runs == 0 || args.stdout {
        return;
    }
    let json = summary::json(reports, exit as u8, info);
    let json = crate::redact::redact(&json);
    let state = crate::state::of(&args.out_dir);
    let name = manifest::file_name(clock.started_at, &clock.run_id);
    let relative = format!("{}/{name}", manifest::RUNS_FOLDER);
    if let Err(err) = state.write(&relative, json.as_bytes()) {
        crate::say!(
            "warning: cannot keep the run's record {}: {err}",
            state.show(&relative)
        );
        return;
    }
    for old in manifest::beyond(state.list(manifest::RUNS_FOLDER), args.keep_runs) {
        state.remove(&format!("{}/{old}", manifest::RUNS_FOLDER));
    }
}

/// Writes the summary to `path` (when asked for; templates in its name rendered), atomically
/// and readable by all (it holds no secret: every text in it is redacted); a failure is said
/// on stderr.
fn write_summary(
    path: Option<&std::path::Path>,
    reports: &[QueryReport],
    exit: Exit,
    info: &summary::RunInfo,
) -> Result<(), ()> {
    let Some(path) = path else { return Ok(()) };
    // Refused at start, said there.
    if check_summary(path).is_err() {
        return Ok(());
    }
    let json = summary::json(reports, exit as u8, info);
    let json = crate::redact::redact(&json);
    let text = path.to_string_lossy();
    let written = match crate::gcs::ObjectUrl::parse(&text) {
        Ok(object) if crate::gcs::is_gs(&text) => {
            crate::state::write_object(object, json.as_bytes())
        }
        _ => crate::util::write_atomically_with_mode(path, json.as_bytes(), 0o644),
    };
    written.map_err(|err| {
        crate::say!("error: cannot write the summary {}: {err}", path.display());
    })
}

/// `path` with its templates rendered (`summary_{{ today }}.json`, `{{ shard }}`: the shard's
/// index in a sharded run, `{{ execution }}`: Cloud Run's `CLOUD_RUN_EXECUTION`; each empty
/// when there is none); as written when they do not render.
pub(super) fn rendered_path(
    path: &std::path::Path,
    shard: Option<crate::shard::Shard>,
) -> std::path::PathBuf {
    let text = path.to_string_lossy();
    if !crate::template::is_template(&text) {
        return path.to_owned();
    }
    let context = minijinja::context! {
        shard => shard.map(|s| s.index.to_string()).unwrap_or_default(),
        execution => std::env::var("CLOUD_RUN_EXECUTION").unwrap_or_default(),
    };
    crate::template::Templates::new()
        .ok()
        .and_then(|t| t.render(&text, &context).ok())
        .map_or_else(|| path.to_owned(), std::path::PathBuf::from)
}

/// The lock, then each window of the run in turn: the reports so far, and the failures of its
/// queries — or the error that stopped it before a window's queries ran.
async fn run_windows(
    args: &RunSettings,
    client: &HyperClient,
    interrupt: &CancellationToken,
) -> (Vec<QueryReport>, Result<Vec<Failure>, AppError>) {
    let mut reports = Vec::new();
    let windows = match windows(args) {
        Ok(windows) => windows,
        Err(err) => return (reports, Err(err)),
    };
    let shard = match shard_of(args) {
        Ok(shard) => shard,
        Err(err) => return (reports, Err(err)),
    };
    // One run at a time per output directory (per shard of a sharded run), held until this
    // function returns.
    let waiting = |busy: &crate::lock::LockError| crate::say!("waiting: {busy}");
    let locked = tokio::select! {
        locked = crate::lock::acquire_for(&args.out_dir, shard, args.wait_lock, waiting) => locked,
        () = interrupt.cancelled() => {
            let why = "--max-duration passed while waiting for the lock: nothing was run";
            return (reports, Err(AppError::Deadline(why.to_owned())));
        }
    };
    let _lock = match locked {
        Ok(lock) => lock,
        Err(err) => return (reports, Err(err.into())),
    };
    let reporter = reporter(args);
    tokio::spawn(stop_on_signal(interrupt.clone()));
    // One governor for every window: the buckets it learned and the budget outlive a window.
    let governor = Arc::new(crate::quota::Governor::new(args.quota.clone()));
    for &window in &windows {
        let ran = run_window(
            args,
            client,
            window,
            windows.len(),
            reporter.clone(),
            interrupt,
            &governor,
        )
        .await;
        let mut ran = match ran {
            Ok(ran) => ran,
            Err(err) => {
                reporter.done();
                return (reports, Err(err));
            }
        };
        if let Some(window) = window {
            ran = ran.into_iter().map(|r| in_window(r, window)).collect();
        }
        for line in ran.iter().flat_map(crate::report::caveat_lines) {
            crate::say!("{line}");
        }
        // (Advice: not under --quiet, which says errors only.)
        for line in (ran.iter().filter(|_| !args.quiet)).filter_map(crate::report::formula_line) {
            crate::say!("{line}");
        }
        reports.extend(ran);
        if interrupt.is_cancelled() || crate::lock::lost().is_cancelled() {
            break;
        }
    }
    reporter.done();
    let failures = failures(&reports, interrupt.is_cancelled());
    (reports, Ok(failures))
}

/// Beside each local part a sharded run finished, the run that wrote it (`.NAME.run`), for
/// `gscrape compose` to refuse a stale part; without a run id, any older record is removed.
fn record_parts(args: &RunSettings, shard: crate::shard::Shard, reports: &[QueryReport]) {
    let env = |name: &str| std::env::var(name).ok();
    let run = crate::shard::run_id(args.run_id.as_deref(), &env);
    let own = format!("-part-{:05}-of-{:05}", shard.index, shard.count);
    for report in reports.iter().filter(|r| matches!(r.status, Status::Ok(_))) {
        let Some(path) = &report.output else { continue };
        let shown = path.to_string_lossy();
        if !shown.contains(&own) {
            continue;
        }
        let recorded = match crate::gcs::is_gs(&shown) {
            true => match (crate::gcs::ObjectUrl::parse(&shown), crate::gcs::io::get()) {
                (Ok(url), Ok(gcs)) => crate::compose::object::record_run(gcs, &url, run.as_deref())
                    .map_err(|e| e.to_string()),
                _ => continue,
            },
            false => crate::shard::record_run(path, run.as_deref()).map_err(|e| e.to_string()),
        };
        if let Err(err) = recorded {
            crate::say!(
                "warning: cannot record the run beside {}: {err}; `gscrape compose` cannot tell it from a stale part",
                path.display()
            );
        }
    }
}

/// Bars only where a person watches a terminal that draws them; lines (and heartbeats) for
/// cron, systemd, CI, pipes and `TERM=dumb`.
fn reporter(args: &RunSettings) -> Arc<dyn Reporter> {
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let json = crate::log_format::json();
    if std::io::stderr().is_terminal() && !args.quiet && !dumb && !json {
        Bars::new(args.quiet)
    } else {
        Lines::new(args.quiet, args.progress_interval)
    }
}

/// The failures of the run's queries (`interrupted`: and the interrupt itself).
fn failures(reports: &[QueryReport], interrupted: bool) -> Vec<Failure> {
    let mut failures: Vec<Failure> = reports
        .iter()
        .filter_map(|r| match &r.status {
            Status::Failed { kind, .. } => Some(*kind),
            Status::Interrupted => Some(Failure::Interrupted),
            Status::Ok(_) | Status::Cancelled | Status::Skipped(_) => None,
        })
        .collect();
    if interrupted {
        failures.push(Failure::Interrupted);
    }
    failures
}

/// The windows of the run: one (`None`) unless it is a backfill (`--from`/`--to`).
pub(super) fn windows(args: &RunSettings) -> Result<Vec<Option<Window>>, AppError> {
    let Some((from, to, step)) = args.backfill else {
        return Ok(vec![None]);
    };
    let windows = crate::backfill::windows(from, to, step);
    if windows.is_empty() {
        return Err(AppError::Usage(format!("--from {from} is after --to {to}")));
    }
    Ok(windows.into_iter().map(Some).collect())
}

/// The shard of a sharded run (`--shard`, `GSCRAPE_SHARD`, `shard =`; `auto` reads the job
/// platform's variables), if it is one.
pub(super) fn shard_of(args: &RunSettings) -> Result<Option<crate::shard::Shard>, AppError> {
    let env = |name: &str| std::env::var(name).ok();
    Ok(crate::shard::resolve(&args.shard, &env)?)
}

/// The selected queries planned for `window` (one of `windows`) and put through the
/// pre-flight: the plans, every problem (none: the run may start), and the template engine.
/// `validate` stops here, so that it says what `run` with the same flags does.
pub(super) async fn checked_plans(
    args: &RunSettings,
    client: &HyperClient,
    window: Option<Window>,
    windows: usize,
) -> Result<
    (
        Vec<crate::plan::QueryPlan>,
        Vec<Problem>,
        crate::template::Templates,
    ),
    AppError,
> {
    let since = Since {
        value: args.since.clone(),
        full: args.full,
        out_dir: Some(args.out_dir.clone()),
    };
    let values = Values {
        vars: &args.vars,
        window,
        out_dir: &args.out_dir,
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
    // The project's CSV options, where the query's output takes them.
    for plan in &mut plans {
        let format = plan.output.as_ref().map(|o| o.format);
        plan.query.csv = plan.query.csv.or(&args.project_csv.fit_for(format));
    }
    // A shard writes parts of the fan-outs' outputs (and the pre-flight checks those names).
    if let (true, Some(shard)) = (problems.is_empty(), shard_of(args)?) {
        problems = crate::shard::check(&plans, shard, args.stdout, &args.csv);
        crate::shard::apply(&mut plans, shard, &args.out_dir);
    }
    if problems.is_empty() {
        let checks = Checks {
            windows: window.map(|_| windows),
            stdout: args.stdout,
            summary_json: args.summary_json.as_deref(),
            csv: args.csv.clone(),
        };
        problems = preflight(&mut plans, &checks, &templates);
    }
    if problems.is_empty() {
        connect_storage(args, client, &plans).await?;
    }
    // What the outputs hold (read, not changed): a run from the kept cursors must not replace
    // what they have passed (`--full` and `--since` re-export on purpose).
    if problems.is_empty() && !args.full && args.since.is_none() {
        problems = crate::incremental::replaced_records(&args.out_dir, &plans, &args.csv);
        problems.extend(super::preflight::replaced_tables(&plans));
    }
    Ok((plans, problems, templates))
}

/// An output in Cloud Storage: the connection, before anything reads or writes there.
async fn connect_storage(
    args: &RunSettings,
    client: &HyperClient,
    plans: &[QueryPlan],
) -> Result<(), AppError> {
    if !(plans.iter()).any(|p| p.output.as_ref().is_some_and(|o| o.object().is_some())) {
        return Ok(());
    }
    let http = crate::auth::source::Http {
        client: client.clone(),
        timeout: args.timeout,
        retry: args.retry.clone(),
    };
    super::storage::connect(&args.auth, &http).await
}

/// One run of the selected queries (in a backfill, for one window of `windows`): their
/// reports, or the error found before any request. Its stages: plan and pre-flight, prepare,
/// run, keep.
async fn run_window(
    args: &RunSettings,
    client: &HyperClient,
    window: Option<Window>,
    windows: usize,
    reporter: Arc<dyn Reporter>,
    interrupt: &CancellationToken,
    governor: &Arc<crate::quota::Governor>,
) -> Result<Vec<QueryReport>, AppError> {
    let (mut plans, problems, templates) = checked_plans(args, client, window, windows).await?;
    fail_on(problems)?;
    crate::log_format::set_queries((plans.iter()).map(|p| p.query.name.as_str()));
    let order: Vec<String> = plans.iter().map(|p| p.query.name.clone()).collect();
    let shard = shard_of(args)?;
    let (dealt, other_shard) = match shard {
        Some(shard) => crate::shard::deal(&mut plans, shard),
        None => (Vec::new(), Vec::new()),
    };
    let other_shard: Vec<QueryReport> = (other_shard.iter())
        .map(|name| QueryReport::left_out(name, None, Skip::OtherShard))
        .inspect(|report| reporter.finished(report))
        .collect();
    let (mut left_out, appending) = match window {
        Some(window) => leave_out_done(args, window, &mut plans, &reporter)?,
        None => (Vec::new(), Vec::new()),
    };
    left_out.extend(other_shard);
    if plans.is_empty() {
        return Ok(left_out);
    }
    let prepared = prepare_run(args, client, window, &plans, &templates, shard, governor).await?;
    let Prepared {
        authorizers,
        api,
        options,
        files,
    } = prepared;
    let asked = asked_of(args, &plans, &authorizers, &templates);
    let jobs: Vec<Job> = plans
        .into_iter()
        .zip(authorizers)
        .map(|(plan, auth)| Job {
            shard: shard.filter(|_| dealt.contains(&plan.query.name)),
            plan,
            auth,
        })
        .collect();
    let described: Vec<QueryPlan> = (jobs.iter())
        .filter(|j| (j.plan.query.describe_tables).unwrap_or(args.describe_tables))
        .map(|j| j.plan.clone())
        .filter(crate::datapackage::describable)
        .collect();
    let reports = run_all(jobs, api, options, templates, reporter, interrupt.clone()).await;
    if let Some(shard) = shard {
        record_parts(args, shard, &reports);
    }
    if !args.stdout {
        describe_tables(args, &described, &reports);
    }
    crate::run::resume::after_run(&args.out_dir, files);
    let ok = || reports.iter().filter(|r| matches!(r.status, Status::Ok(_)));
    let cursors = ok().filter_map(|r| Some((r.name.as_str(), r.cursor.as_deref()?)));
    crate::incremental::keep(&args.out_dir, cursors);
    if let Some(window) = window {
        let written = ok().filter_map(|r| Some((r.name.as_str(), r.written.as_ref()?.bytes)));
        crate::backfill::note_windows(&args.out_dir, window, &appending, written);
    }
    let mut reports: Vec<QueryReport> = reports.into_iter().chain(left_out).collect();
    reports.sort_by_key(|r| order.iter().position(|name| *name == r.name));
    for report in &mut reports {
        report.asked = asked.get(&report.name).cloned();
    }
    Ok(reports)
}

/// `--describe-tables`: the CSV and TSV files written, in the output directory's
/// `datapackage.json`; a failure to write it is said, and is not the run's.
fn describe_tables(args: &RunSettings, plans: &[QueryPlan], reports: &[QueryReport]) {
    let tables: Vec<crate::datapackage::Table<'_>> = (plans.iter())
        .filter_map(|plan| {
            let report = reports.iter().find(|r| r.name == plan.query.name)?;
            let written = report
                .written
                .as_ref()
                .filter(|_| matches!(report.status, Status::Ok(_)))?;
            Some(crate::datapackage::Table {
                plan,
                path: plan.output.as_ref()?.path(),
                bytes: written.bytes,
                sha256: &written.sha256,
            })
        })
        .collect();
    // Every file this run wrote: an entry for one it rewrote undescribed would be stale.
    let rewritten: Vec<&std::path::Path> = (reports.iter())
        .filter(|r| r.written.is_some() && matches!(r.status, Status::Ok(_)))
        .filter_map(|r| r.output.as_deref())
        .collect();
    let descriptor = args.out_dir.join(crate::datapackage::DESCRIPTOR);
    if tables.is_empty() && !descriptor.exists() {
        return;
    }
    if let Err(err) = crate::datapackage::describe(&args.out_dir, &tables, &rewritten, &args.csv) {
        crate::say!(
            "warning: cannot write {}: {err}",
            args.out_dir.join(crate::datapackage::DESCRIPTOR).display()
        );
    }
}

/// What each query asks of Google, by name, for the run's record.
fn asked_of(
    args: &RunSettings,
    plans: &[QueryPlan],
    authorizers: &[crate::run::JobAuth],
    templates: &crate::template::Templates,
) -> std::collections::HashMap<String, Arc<manifest::Asked>> {
    let lock = crate::discovery::lock::Lock::read(std::path::Path::new("."))
        .ok()
        .flatten();
    (plans.iter().zip(authorizers))
        .map(|(plan, auth)| {
            let mut asked = manifest::asked(plan, templates, &args.vars, lock.as_ref());
            if let crate::run::JobAuth::Fixed(authorizer) = auth {
                asked.credential = Some(authorizer.describe());
                asked.acting_as = authorizer.acting_as().map(str::to_owned);
                asked.quota_project = authorizer.quota_project().map(str::to_owned);
            }
            (plan.query.name.clone(), Arc::new(asked))
        })
        .collect()
}

/// `report` as a backfill's summary names it (`files 2024-03-01`), with its window.
fn in_window(mut report: QueryReport, window: Window) -> QueryReport {
    report.name = format!("{} {}", report.name, window.label());
    report.window = Some(window);
    report
}

/// The queries of `plans` that a backfill's `window` is done with already (left out, with a
/// report each, said as they are), and the files the others append the window to.
fn leave_out_done(
    args: &RunSettings,
    window: Window,
    plans: &mut Vec<QueryPlan>,
    reporter: &Arc<dyn Reporter>,
) -> Result<(Vec<QueryReport>, crate::backfill::Appending), AppError> {
    use crate::backfill::Done;
    let (done, appending) =
        crate::backfill::leave_out_done(&args.out_dir, &args.csv, args.quiet, window, plans)
            .map_err(AppError::Problems)?;
    let reports = (done.into_iter())
        .map(|left| {
            let skip = match left.done {
                Done::InOutput => Skip::InOutput,
                Done::FeedsNone => Skip::FeedsNone,
            };
            let report = QueryReport::left_out(&left.name, left.output, skip);
            reporter.finished(&in_window(report.clone(), window));
            report
        })
        .collect();
    Ok((reports, appending))
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
/// limits and the Sheets and BigQuery endpoints.
async fn prepare_run(
    args: &RunSettings,
    client: &HyperClient,
    window: Option<Window>,
    plans: &[crate::plan::QueryPlan],
    templates: &crate::template::Templates,
    shard: Option<crate::shard::Shard>,
    governor: &Arc<crate::quota::Governor>,
) -> Result<Prepared, AppError> {
    let files =
        crate::run::resume::before_run(&args.out_dir, plans, window.is_some(), args.resume, shard);
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
    let api = ApiClient::new(client.clone(), args.timeout, args.retry.clone(), limits)
        .with_governor(governor.clone());
    let options = RunOptions {
        out_dir: args.out_dir.clone(),
        fail_fast: args.fail_fast,
        resume: args.resume,
        fan_out: args.concurrency,
        csv: args.csv.clone(),
        sheets,
        bigquery: (plans.iter().any(|p| p.query.bigquery.is_some()))
            .then(crate::sink::bigquery::BigQueryApi::installed),
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

/// Where the Sheets API is, from its Discovery document (as any API's requests are made).
async fn sheets_api(
    args: &RunSettings,
    client: &HyperClient,
    retry: crate::http::retry::RetryPolicy,
) -> Result<SheetsApi, AppError> {
    let source = super::discovery_source(&args.discovery, client.clone(), retry)?;
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
