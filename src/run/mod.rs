//! Running planned queries: all at once, under the run's shared request limits, each into its
//! own outputs ([`output`]), page by page ([`pages`]). A fan-out query (`for_each`) runs once
//! per record of its parent while the parent is still paging ([`fanout`]). A plain file export
//! is checkpointed as it goes, and taken up from its checkpoint with `--resume` ([`resume`]).
//!
//! One failing query does not stop the others (unless `fail_fast`); an interrupt stops them
//! all. Either way, a query that did not finish leaves its previous file as it was.

mod fanout;
mod output;
mod pages;
mod reporter;
pub(crate) mod resume;
mod spool;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{Accepts, ApiClient, ApiError, Call, PaginationError};
use crate::auth::{Authorizer, Authorizers};
use crate::counters::{Counters, Gone, Snapshot};
use crate::error::Failure;
use crate::plan::QueryPlan;
use crate::query::CsvSettings;
use crate::run::resume::store as checkpoint;
use crate::sink::bigquery::{BigQueryApi, BigQueryContext, Loaded};
use crate::sink::sheets::{SheetContext, SheetError, SheetsApi};
use crate::sink::{Destinations, SinkError};
use crate::template::Templates;

use crate::records::PageReader;
use output::Output;
use pages::Pages;
pub use reporter::Reporter;
use resume::{Begin, Checkpointer};

/// Records waiting between a parent and one child; the parent waits when the child lags, so
/// neither holds the parent's records whole.
const FEED_CAPACITY: usize = 256;

/// Why an export ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The API had no more pages.
    Complete,
    /// `max_pages` was reached while more pages were available.
    MaxPages(u64),
    /// `max_records` was reached while more records were available.
    MaxRecords(u64),
}

/// How a query ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok(Stop),
    Failed {
        kind: Failure,
        message: String,
    },
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Stopped by `--fail-fast` after another query failed.
    Cancelled,
    /// Left out of a backfill's window, which it has done already.
    Skipped(Skip),
}

/// Why a query was left out of a backfill's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Its output holds the window: an earlier backfill appended it.
    InOutput,
    /// It writes no file, and every query it feeds was left out.
    FeedsNone,
    /// A sharded run's query that cannot be split: shard 0 runs it, not this shard.
    OtherShard,
}

/// A count the API reported about the whole result (`resultSizeEstimate`, `rowCount`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTotal {
    pub field: String,
    pub value: u64,
}

/// What happened to one query.
#[derive(Debug, Clone)]
pub struct QueryReport {
    pub name: String,
    pub status: Status,
    pub counters: Snapshot,
    pub seconds: f64,
    /// The file it writes (written only when the status is `Ok`; `-`: standard output).
    pub output: Option<PathBuf>,
    /// What the output holds, once written.
    pub written: Option<crate::sink::Written>,
    /// The Google Sheet it wrote (`[sheet]`), once written.
    pub sheet_url: Option<String>,
    /// What its BigQuery load job loaded (`[bigquery]`), once done.
    pub loaded: Option<Loaded>,
    /// `merge_key`: the rows added, replaced and kept, once merged.
    pub merged: Option<crate::sink::merge::Merged>,
    pub api_total: Option<ApiTotal>,
    /// `[incremental]`: the greatest cursor value the export wrote (kept when it succeeded).
    pub cursor: Option<String>,
    /// It did not finish and left a checkpoint: `--resume` takes it up.
    pub checkpointed: bool,
    /// `[incremental]`: the `since` it asked from.
    pub since: Option<String>,
    /// In a backfill, the window it ran for (set by the caller, which runs the windows).
    pub window: Option<crate::backfill::Window>,
    /// `on_missing = "skip"`: the parent records skipped because their item was gone.
    pub gone: Option<Gone>,
    /// What the report's pages said of their numbers (sampled, not final, ...).
    pub caveats: crate::records::Caveats,
    /// What it asked of Google, for the run's manifest (set by the caller, which plans).
    pub asked: Option<std::sync::Arc<crate::report::manifest::Asked>>,
}

impl QueryReport {
    /// The report of a query left out of a backfill's window (`output`: its file).
    pub fn left_out(name: &str, output: Option<PathBuf>, skip: Skip) -> Self {
        QueryReport {
            name: name.to_owned(),
            status: Status::Skipped(skip),
            counters: Snapshot::default(),
            seconds: 0.0,
            output,
            written: None,
            sheet_url: None,
            loaded: None,
            merged: None,
            api_total: None,
            cursor: None,
            checkpointed: false,
            gone: None,
            since: None,
            window: None,
            caveats: Default::default(),
            asked: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Api(Box<ApiError>),
    #[error("{source} [{url}]")]
    Page {
        url: String,
        #[source]
        source: PaginationError,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Template(String),
    #[error("its parent query `{0}` did not finish, so this export would be incomplete")]
    ParentFailed(String),
    #[error("its parent query `{parent}` no longer hands the records it did before this export's checkpoint (after parent record {done}); the checkpoint is dropped: run again to start over")]
    ParentChanged { parent: String, done: u64 },
    #[error("a page fetch ended abnormally: {0}")]
    Task(String),
    #[error("{0}")]
    Spill(String),
    /// The first page of a resumed chain failed: the API no longer takes the saved position.
    #[error(transparent)]
    ResumeRefused(Box<ApiError>),
    /// A fan-out's item was gone (404, 410) and the query does not skip such items.
    #[error("{0}; the item is gone: if items may be deleted between the parent's list and this request, set `on_missing = \"skip\"` in the query to skip them")]
    Gone(Box<ApiError>),
    /// `strict = true`, and a page of the report has caveats: nothing of it is written.
    #[error("strict = true, and the report says: {} [{url}]", caveats.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Strict {
        url: String,
        caveats: Vec<crate::records::Caveat>,
    },
    /// A failure after the export was checkpointed: `--resume` takes it up.
    #[error("{0}; {hint}", hint = resume_hint(.0))]
    Checkpointed(Box<QueryError>),
    /// Ctrl-C or SIGTERM, seen between pages: the export wrote where it stood and stopped.
    #[error("interrupted")]
    Interrupted,
}

/// What to do about a checkpointed export that failed with `err`.
fn resume_hint(err: &QueryError) -> &'static str {
    match err.kind() {
        Failure::QuotaWall => {
            "the export is checkpointed: run `gscrape run --resume` once the quota resets to continue it"
        }
        _ => "the export is checkpointed: `gscrape run --resume` continues it",
    }
}

impl QueryError {
    /// What kind of failure this is (for the exit code and the summary).
    pub fn kind(&self) -> Failure {
        match self {
            QueryError::Api(err) => err.kind(),
            QueryError::Page { .. }
            | QueryError::Task(_)
            | QueryError::ParentFailed(_)
            | QueryError::ParentChanged { .. } => Failure::Remote,
            QueryError::Sink(SinkError::Sheet(err)) => err.kind(),
            QueryError::Sink(SinkError::Object { source, .. }) => source.kind(),
            QueryError::Sink(SinkError::BigQuery(err)) => err.kind(),
            QueryError::Sink(SinkError::Merge(err)) => err.kind(),
            QueryError::Sink(_) | QueryError::Spill(_) => Failure::LocalIo,
            QueryError::Template(_) => Failure::BadInput,
            QueryError::Strict { .. } => Failure::Caveat,
            QueryError::ResumeRefused(err) | QueryError::Gone(err) => err.kind(),
            QueryError::Checkpointed(err) => err.kind(),
            QueryError::Interrupted => Failure::Interrupted,
        }
    }
}

impl From<ApiError> for QueryError {
    fn from(err: ApiError) -> Self {
        QueryError::Api(Box::new(err))
    }
}

/// Run-wide settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    /// Stop every query when one fails.
    pub fail_fast: bool,
    /// Request chains of one fan-out query at once, unless the query sets `concurrency`.
    pub fan_out: NonZeroUsize,
    /// CSV options from the command line, for what a query does not set.
    pub csv: CsvSettings,
    /// The Sheets API, when a query writes a sheet.
    pub sheets: Option<SheetsApi>,
    /// BigQuery, when a query loads a table.
    pub bigquery: Option<BigQueryApi>,
    /// `--resume`: take up unfinished exports from their checkpoints.
    pub resume: bool,
}

/// A planned query with the credentials it runs with.
pub struct Job {
    pub plan: QueryPlan,
    pub auth: JobAuth,
    /// A fan-out of a sharded run that takes only this shard's records of its parent
    /// (`crate::shard::Role::Split { deals: true }`).
    pub shard: Option<crate::shard::Shard>,
}

/// Whom a query's requests act for.
pub enum JobAuth {
    /// The same credential (and subject) for every request.
    Fixed(Authorizer),
    /// A fan-out whose `subject` is a template: rendered for each parent record, each chain
    /// acting as its rendered subject.
    PerRecord {
        subject: String,
        authorizers: Authorizers,
    },
}

impl JobAuth {
    /// The authorizer of the request chain whose templates read `context`.
    fn for_chain(
        &self,
        templates: &Templates,
        context: &minijinja::Value,
    ) -> Result<Authorizer, QueryError> {
        match self {
            JobAuth::Fixed(auth) => Ok(auth.clone()),
            JobAuth::PerRecord {
                subject,
                authorizers,
            } => {
                let rendered = templates
                    .render(subject, context)
                    .map_err(QueryError::Template)?;
                if rendered.trim().is_empty() {
                    return Err(QueryError::Template(format!(
                        "subject {subject:?} is empty for a parent record: every record must name the user to act as"
                    )));
                }
                authorizers
                    .for_subject(Some(rendered.trim()))
                    .map_err(|e| ApiError::Auth(e).into())
            }
        }
    }
}

/// How long an export has, after Ctrl-C or SIGTERM, to write where it stands (Cloud Run gives
/// a task 10 s between SIGTERM and SIGKILL; Kubernetes, 30 s by default).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(8);

/// What every query task shares.
struct Shared {
    api: ApiClient,
    options: RunOptions,
    reporter: Arc<dyn Reporter>,
    templates: Templates,
    /// Cancelled on Ctrl-C / SIGTERM.
    interrupt: CancellationToken,
    /// Cancelled on an interrupt, or by `fail_fast`.
    stop: CancellationToken,
}

/// A message from a parent query to a fan-out child.
enum Feed {
    /// A record, with what its chain read above it and its computed columns.
    Record(Value, Arc<crate::plan::Lineage>),
    /// The parent finished: no record is missing.
    Done,
}

/// Runs every job to its end and reports each, in the order given.
pub async fn run_all(
    jobs: Vec<Job>,
    api: ApiClient,
    options: RunOptions,
    templates: Templates,
    reporter: Arc<dyn Reporter>,
    interrupt: CancellationToken,
) -> Vec<QueryReport> {
    let shared = Arc::new(Shared {
        api,
        options,
        reporter,
        templates,
        stop: interrupt.child_token(),
        interrupt,
    });
    let index: HashMap<String, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| (job.plan.query.name.clone(), i))
        .collect();
    let mut feeds_out: Vec<Vec<mpsc::Sender<Feed>>> = jobs.iter().map(|_| Vec::new()).collect();
    let mut feeds_in: Vec<Option<mpsc::Receiver<Feed>>> = jobs.iter().map(|_| None).collect();
    for (child, job) in jobs.iter().enumerate() {
        if let Some(parent) = job
            .plan
            .query
            .for_each
            .as_ref()
            .and_then(|p| index.get(&p.value))
        {
            let (tx, rx) = mpsc::channel(FEED_CAPACITY);
            feeds_out[*parent].push(tx);
            feeds_in[child] = Some(rx);
        }
    }
    // Where each query runs. A plain export to files is driven here, on the caller's thread
    // (the main thread, in `block_on`): its rows are made and written here while a worker
    // fetches and reads its next pages. A fan-out and the query feeding it run on a worker,
    // with their requests: they make one small request after another, and every hop between
    // threads (a wake-up, a park) cost more than the request (a quarter of a Gmail fan-out's
    // CPU). So does an export to a Sheet or a BigQuery table: its sink waits for the API in
    // place (`block_in_place`), which on this thread would swallow the wake-ups of the
    // queries driven here and stall them.
    let jobs = jobs
        .into_iter()
        .zip(feeds_out)
        .zip(feeds_in)
        .map(|((job, feeds_out), feed_in)| {
            let shared = shared.clone();
            let name = job.plan.query.name.clone();
            let destination = job.plan.query.sheet.is_some() || job.plan.query.bigquery.is_some();
            let on_worker = feed_in.is_some() || !feeds_out.is_empty() || destination;
            let run = run_job(job, feed_in, feeds_out, shared);
            async move {
                let done = match on_worker {
                    true => tokio::spawn(run).await.map_err(drop),
                    false => AssertUnwindSafe(run).catch_unwind().await.map_err(drop),
                };
                done.map_err(|()| tracing::error!("the query {name} ended abnormally (a panic)"))
                    .ok()
            }
        });
    futures_util::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn run_job(
    job: Job,
    feed_in: Option<mpsc::Receiver<Feed>>,
    feeds_out: Vec<mpsc::Sender<Feed>>,
    shared: Arc<Shared>,
) -> QueryReport {
    let name = job.plan.query.name.clone();
    let counters = Arc::new(Counters::default());
    shared.reporter.started(&name, counters.clone());
    let started = Instant::now();
    // The rendered name (`files_2024-03-15.csv`), as the CSV is written, not the template.
    let output = job.plan.output.as_ref().map(|o| o.path().to_owned());
    let sheet_url = Arc::new(std::sync::OnceLock::new());
    let loaded = Arc::new(std::sync::OnceLock::new());
    let merged = Arc::new(std::sync::OnceLock::new());
    let landed = Landed {
        sheet_url: &sheet_url,
        loaded: &loaded,
        merged: &merged,
    };
    let lost = crate::lock::lost();
    // A plain export sees an interrupt itself, between pages, and writes where it stands (for a
    // Cloud Storage output, finishing the part object) before it stops: it is given
    // [`STOP_GRACE`] for that. Any other is stopped at once.
    let flushes = feed_in.is_none();
    let execute = execute(&job, feed_in, feeds_out, counters.clone(), landed, &shared);
    tokio::pin!(execute);
    let result = tokio::select! {
        result = &mut execute => Some(result),
        () = shared.stop.cancelled() => match flushes && shared.interrupt.is_cancelled() {
            true => tokio::select! {
                result = tokio::time::timeout(STOP_GRACE, &mut execute) => result.ok(),
                () = lost.cancelled() => None,
            },
            false => None,
        },
        () = lost.cancelled() => None,
    };
    let (mut written, mut cursor, mut gone) = (None, None, None);
    let (status, api_total) = match result {
        Some(Ok(finished)) => {
            written = finished.written;
            cursor = finished.newest;
            gone = finished.gone;
            (Status::Ok(finished.stop), finished.total)
        }
        Some(Err(err)) if err.kind() == Failure::Interrupted && shared.interrupt.is_cancelled() => {
            (Status::Interrupted, None)
        }
        Some(Err(err)) => {
            if shared.options.fail_fast {
                shared.stop.cancel();
            }
            let (kind, message) = (err.kind(), err.to_string());
            (Status::Failed { kind, message }, None)
        }
        None if lost.is_cancelled() => {
            let why = crate::lock::lost_why().unwrap_or("lost the run lock");
            let message =
                format!("{why}: {name} was not written (its previous output is left as it was)");
            (
                Status::Failed {
                    kind: crate::error::Failure::LockLost,
                    message,
                },
                None,
            )
        }
        None if shared.interrupt.is_cancelled() => (Status::Interrupted, None),
        None => (Status::Cancelled, None),
    };
    let checkpointed = !matches!(status, Status::Ok(_))
        && output.as_ref().is_some_and(|target| {
            crate::run::resume::store::Store::new(&shared.options.out_dir).exists(&name, target)
        });
    let since = job.plan.query.incremental.as_ref().and_then(|_| {
        let since = job.plan.query.vars.value.get("since")?;
        Some(
            since
                .as_str()
                .map_or_else(|| since.to_string(), str::to_owned),
        )
    });
    let report = QueryReport {
        checkpointed,
        since,
        window: None,
        name,
        status,
        counters: counters.snapshot(),
        seconds: started.elapsed().as_secs_f64(),
        output,
        written,
        sheet_url: sheet_url.get().cloned(),
        loaded: loaded.get().cloned(),
        merged: merged.get().copied(),
        api_total,
        cursor,
        gone,
        caveats: counters.noted_caveats(),
        asked: None,
    };
    shared.reporter.finished(&report);
    report
}

/// Where a query's destinations leave what they wrote, for its report: a sheet's URL, what a
/// load job loaded.
#[derive(Clone, Copy)]
struct Landed<'a> {
    sheet_url: &'a Arc<std::sync::OnceLock<String>>,
    loaded: &'a Arc<std::sync::OnceLock<Loaded>>,
    merged: &'a Arc<std::sync::OnceLock<crate::sink::merge::Merged>>,
}

/// Runs one query: one request chain, or one per parent record for a fan-out. Its sheet
/// and its table leave what they wrote in `landed`.
async fn execute(
    job: &Job,
    feed_in: Option<mpsc::Receiver<Feed>>,
    feeds_out: Vec<mpsc::Sender<Feed>>,
    counters: Arc<Counters>,
    landed: Landed<'_>,
    shared: &Shared,
) -> Result<Finished, QueryError> {
    let plan = &job.plan;
    let sheet = match &plan.query.sheet {
        Some(_) => Some(sheet_context(job, &counters, landed.sheet_url, shared)?),
        None => None,
    };
    let bigquery = match &plan.query.bigquery {
        Some(_) => Some(bigquery_context(job, &counters, landed.loaded, shared)?),
        None => None,
    };
    let destinations = Destinations {
        sheet,
        bigquery,
        merged: landed.merged.clone(),
    };
    let Some(feed) = feed_in else {
        return export_chain(job, destinations, feeds_out, &counters, shared).await;
    };
    let feeds_children = !feeds_out.is_empty();
    let mut checkpoints = Checkpointer::for_plan(plan, None, feeds_children, shared);
    let (mut output, begin) = resume::open_output(
        checkpoints.as_mut(),
        plan,
        shared,
        destinations,
        feeds_out,
        &counters,
    )?;
    let resume = match begin {
        Begin::Start => None,
        Begin::Parents(done) => Some(done),
        Begin::Chain(_) => {
            return Err(QueryError::Task(
                "a fan-out's checkpoint names a page".to_owned(),
            ))
        }
    };
    let ran = fanout::run(
        job,
        feed,
        &mut output,
        resume,
        checkpoints.as_mut(),
        &counters,
        shared,
    )
    .await;
    let stop = match ran {
        Ok(stop) => stop,
        Err(err @ QueryError::ParentChanged { .. }) => {
            drop(output);
            if let Some(checkpoints) = &mut checkpoints {
                checkpoints.drop_checkpoint();
            }
            return Err(err);
        }
        Err(err) => return Err(checkpointed(err, checkpoints.as_mut())),
    };
    finish(output, checkpoints.as_mut(), stop, None).await
}

/// Runs a query of one request chain, checkpointed after each page when its output can be
/// taken up again, and taken up from its checkpoint with `--resume`. A resumed chain whose
/// saved position the API refuses starts over.
async fn export_chain(
    job: &Job,
    destinations: Destinations,
    feeds_out: Vec<mpsc::Sender<Feed>>,
    counters: &Arc<Counters>,
    shared: &Shared,
) -> Result<Finished, QueryError> {
    let plan = &job.plan;
    let context = plan.context(None);
    let rendered = render_columns(plan, &shared.templates, &context)?;
    let lineage = crate::plan::Lineage {
        above: crate::plan::Ancestry::default(),
        computed: plan.computed(&rendered),
    };
    let request = plan
        .request
        .render(&|text| shared.templates.render(text, &context))
        .map_err(QueryError::Template)?;
    let first = pages::first_request(plan, request);
    let feeds_children = !feeds_out.is_empty();
    let mut checkpoints = Checkpointer::for_plan(plan, Some(&first), feeds_children, shared);
    let (mut output, begin) = resume::open_output(
        checkpoints.as_mut(),
        plan,
        shared,
        destinations.clone(),
        feeds_out.clone(),
        counters,
    )?;
    let resume = match begin {
        Begin::Start => None,
        Begin::Chain(position) => Some(position),
        Begin::Parents(_) => {
            return Err(QueryError::Task(
                "its checkpoint names no next page".to_owned(),
            ))
        }
    };
    output.set_lineage(Arc::new(lineage));
    let resumed = resume.is_some();
    let restored = output.written();
    let call = Call {
        auth: job.auth.for_chain(&shared.templates, &context)?,
        api: Arc::from(plan.query.api.as_str()),
        counters: counters.clone(),
        accepts: Arc::new(Accepts::of(&plan.method)),
        quota: quota_tag(plan, &first, shared),
    };
    let reader = page_reader(plan, output.feeds_children());
    let mut pages = Pages::new(plan, first, resume, &shared.api, call, reader.clone());
    let mut stop = Stop::Complete;
    let mut typed = false;
    // Where the export stood after its last page in the file: what an interrupt writes out.
    let mut stood: Option<checkpoint::Position> = None;
    let exported: Result<(), QueryError> = async {
        while let Some(mut fetched) =
            next_page(&mut pages, checkpoints.as_mut(), &shared.interrupt).await?
        {
            if output.needs_columns() {
                if let Some(columns) = pages.columns() {
                    output.set_columns(columns)?;
                }
            }
            if let (false, Some(types)) = (std::mem::replace(&mut typed, true), pages.types()) {
                output.report_types(types);
            }
            let position = fetched.position.take();
            let complete = output.write_page(&reader, fetched, &rendered).await?;
            if !complete {
                stop = Stop::MaxRecords(output.written());
                break;
            }
            if output.is_full() && pages.has_more() {
                stop = Stop::MaxRecords(output.written());
                break;
            }
            if let (Some(checkpoints), Some(position)) = (&mut checkpoints, position) {
                let at = checkpoint::Position::Chain {
                    next: checkpoint::SavedRequest::of(&position.next),
                    cursor: position.cursor,
                    returned: position.returned,
                };
                stood = Some(at.clone());
                checkpoints.save(&mut output, at)?;
            }
            if shared.interrupt.is_cancelled() {
                return Err(QueryError::Interrupted);
            }
        }
        Ok(())
    }
    .await;
    if let (Err(QueryError::Interrupted), Some(checkpoints), Some(at)) =
        (&exported, &mut checkpoints, stood)
    {
        checkpoints.flush(&mut output, at);
    }
    match exported {
        Err(QueryError::ResumeRefused(err)) if resumed => {
            drop(output);
            counters.unrecord(restored);
            if let Some(checkpoints) = &mut checkpoints {
                checkpoints.starting_over(&format!("the API refused the saved position ({err})"));
            }
            // Not resumed again: the checkpoint is gone.
            return Box::pin(export_chain(job, destinations, feeds_out, counters, shared)).await;
        }
        Err(err) => return Err(checkpointed(err, checkpoints.as_mut())),
        Ok(()) => {}
    }
    if stop == Stop::Complete && pages.capped() {
        stop = Stop::MaxPages(pages.fetched());
    }
    let total = pages.api_total().cloned();
    finish(output, checkpoints.as_mut(), stop, total).await
}

/// Commits an export that ran to its end, and forgets its checkpoint.
async fn finish(
    output: Output<'_>,
    checkpoints: Option<&mut Checkpointer>,
    stop: Stop,
    total: Option<ApiTotal>,
) -> Result<Finished, QueryError> {
    let newest = output.newest_cursor();
    let gone = output.gone().cloned();
    let written = output.finish().await?;
    if let Some(checkpoints) = checkpoints {
        checkpoints.finished();
    }
    Ok(Finished {
        stop,
        total,
        written,
        newest,
        gone,
    })
}

/// The next page of `pages`; while it is awaited (a slow server, retries), the checkpoint
/// noted last is written out when due, so that a `kill -9` then loses no more than that.
async fn next_page(
    pages: &mut Pages,
    mut checkpoints: Option<&mut Checkpointer>,
    interrupt: &CancellationToken,
) -> Result<Option<pages::Fetched>, QueryError> {
    loop {
        let Some(wait) = checkpoints
            .as_deref()
            .and_then(Checkpointer::pending_due_in)
        else {
            return tokio::select! {
                next = pages.next() => next,
                () = interrupt.cancelled() => Err(QueryError::Interrupted),
            };
        };
        tokio::select! {
            () = interrupt.cancelled() => return Err(QueryError::Interrupted),
            next = pages.next() => return next,
            () = tokio::time::sleep(wait) => {
                if let Some(checkpoints) = checkpoints.as_deref_mut() {
                    checkpoints.write_out();
                }
            }
        }
    }
}

/// `err`, saying that `--resume` takes the export up when it left a checkpoint.
fn checkpointed(err: QueryError, checkpoints: Option<&mut Checkpointer>) -> QueryError {
    // A report refused for its caveats is not resumed: its numbers would be the same.
    if matches!(err, QueryError::Strict { .. }) {
        return err;
    }
    match checkpoints.is_some_and(Checkpointer::left) {
        true => QueryError::Checkpointed(Box::new(err)),
        false => err,
    }
}

/// How a query that ran to its end ended.
struct Finished {
    stop: Stop,
    total: Option<ApiTotal>,
    written: Option<crate::sink::Written>,
    /// `[incremental]`: the greatest cursor value written.
    newest: Option<String>,
    /// `on_missing = "skip"`: the parent records skipped as gone.
    gone: Option<Gone>,
}

/// The reader of `plan`'s pages; `keep_records` when a fan-out reads the records (a `where`
/// filter reads them too).
/// What each request of `plan` (as `request` asks it) costs of the quota and draws on.
fn quota_tag(
    plan: &QueryPlan,
    request: &crate::api::RequestSpec,
    shared: &Shared,
) -> crate::quota::Tag {
    let method = &plan.method.id;
    let api = crate::apis::for_method(method);
    crate::quota::Tag {
        cost: shared
            .api
            .governor()
            .cost(&plan.query.api, method, plan.query.quota_cost),
        resource: api.quota_resource(method, request),
        max_units: plan.query.max_units,
        hints: api.quota_hints(method),
    }
}

fn page_reader(plan: &QueryPlan, keep_records: bool) -> Arc<PageReader> {
    let explode = plan.query.explode.as_ref().map(|path| &path.value);
    Arc::new(PageReader::new(
        &plan.decoder,
        explode,
        &plan.columns,
        keep_records || plan.query.filter.is_some() || plan.query.incremental.is_some(),
        crate::sink::needs_record_text(plan),
    ))
}

/// How `job` writes its sheet: the run's client, one account for every request (a subject
/// rendered per parent record has none to give), and the Sheets API.
fn sheet_context(
    job: &Job,
    counters: &Arc<Counters>,
    url: &Arc<std::sync::OnceLock<String>>,
    shared: &Shared,
) -> Result<SheetContext, QueryError> {
    let endpoint = shared
        .options
        .sheets
        .clone()
        .ok_or(SinkError::Sheet(SheetError::NoEndpoint))?;
    let auth = one_account(job, "[sheet] is written")?;
    Ok(SheetContext {
        api: shared.api.clone(),
        call: Call {
            auth,
            api: Arc::from("sheets"),
            counters: counters.clone(),
            accepts: endpoint.accepts(),
            quota: crate::quota::Tag::default(),
        },
        endpoint,
        url: url.clone(),
    })
}

/// How `job` loads its table: the run's client, one account, and BigQuery's endpoint.
fn bigquery_context(
    job: &Job,
    counters: &Arc<Counters>,
    loaded: &Arc<std::sync::OnceLock<Loaded>>,
    shared: &Shared,
) -> Result<BigQueryContext, QueryError> {
    let endpoint = (shared.options.bigquery.clone()).ok_or(SinkError::BigQuery(
        crate::sink::bigquery::BigQueryError::NoEndpoint,
    ))?;
    Ok(BigQueryContext {
        api: shared.api.clone(),
        call: Call {
            auth: one_account(job, "[bigquery] is loaded")?,
            api: Arc::from("bigquery"),
            counters: counters.clone(),
            accepts: Arc::new(crate::sink::bigquery::accepts()),
            quota: crate::quota::Tag::default(),
        },
        endpoint,
        loaded: loaded.clone(),
    })
}

/// The one account a destination (`what`: "[sheet] is written") is written with; a subject
/// rendered per parent record has none to give.
fn one_account(job: &Job, what: &str) -> Result<Authorizer, QueryError> {
    match &job.auth {
        JobAuth::Fixed(auth) => Ok(auth.clone()),
        JobAuth::PerRecord { .. } => Err(QueryError::Template(format!(
            "{what} with one account, but `subject` is a per-record template: name one subject, or write a CSV"
        ))),
    }
}

/// The value of each template column (by column index), for one context.
fn render_columns(
    plan: &QueryPlan,
    templates: &Templates,
    context: &minijinja::Value,
) -> Result<Vec<String>, QueryError> {
    plan.columns
        .iter()
        .map(|column| match &column.source {
            crate::records::ColumnSource::Template(source) => templates
                .render(source, context)
                .map_err(QueryError::Template),
            crate::records::ColumnSource::Path(_) | crate::records::ColumnSource::FirstOf(_) => {
                Ok(String::new())
            }
        })
        .collect()
}
