//! Checkpoints and `--resume` for one query's export ([`store`] keeps the files):
//! whether the export is taken up where a checkpoint left it, and where it stands after each
//! page (or, in a fan-out, each parent record's chain). That is written out at most once per
//! [`INTERVAL`] (a file per page would cost a fast export a tenth of its CPU), and whenever the
//! export stops short (a failure, Ctrl-C: the checkpointer is dropped): a `kill -9` loses at
//! most a second of pages. A fan-out notes where it stands only when that is due (noting
//! flushes the output, and a chain may be one row), so any stop loses up to a second of
//! chains. Only a plain file export whose records feed no fan-out is
//! checkpointed: a parent taken up mid-way would not hand its children the records it skips.

pub(crate) mod store;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use self::store::{fingerprint, Checkpoint, Position, Store};
use super::output::Output;
use super::pages;
use super::{Feed, QueryError, Shared};
use crate::api::RequestSpec;
use crate::counters::Counters;
use crate::http::SECRET_PARAMETERS;
use crate::plan::QueryPlan;
use crate::sink::Destinations;
use crate::sink::{self, Sink};

/// The checkpoints of one export.
pub(super) struct Checkpointer {
    store: Store,
    query: String,
    target: PathBuf,
    fingerprint: String,
    /// A fan-out: its checkpoints count parent records, not pages.
    fan_out: bool,
    /// Off once a checkpoint could not be written (said once).
    on: bool,
    /// Where the export stands, not yet written out.
    pending: Option<Checkpoint>,
    last_written: Instant,
    /// How often a checkpoint is written out: [`INTERVAL`], or [`OBJECT_INTERVAL`] for a
    /// Cloud Storage output.
    interval: Duration,
    /// A Cloud Storage output: noting where it stands finishes an uploaded part, so it is
    /// noted only when due, not after every page.
    costly_marks: bool,
}

/// The longest a checkpoint waits to be written out while an export runs.
const INTERVAL: Duration = Duration::from_secs(1);

/// The same for an export to Cloud Storage, where each checkpoint finishes a part of the
/// object (a request, and one more source to compose): a `kill -9` loses at most this much of
/// its pages. `GSCRAPE_OBJECT_CHECKPOINT_SECONDS` changes it.
const OBJECT_INTERVAL: Duration = Duration::from_secs(15);

fn object_interval() -> Duration {
    std::env::var("GSCRAPE_OBJECT_CHECKPOINT_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(OBJECT_INTERVAL)
}

/// The temporary files beside a run's outputs before its exports start (absolute paths), and
/// its outputs: what [`after_run`] leaves alone, and where it looks.
pub(crate) struct TempFiles {
    before: Vec<PathBuf>,
    targets: Vec<PathBuf>,
}

/// Before a run's exports start: each query keeps only the checkpoint of the output it writes
/// now, if that can be resumed (a backfill's windows each keep theirs); the temporary files a
/// killed run left beside the outputs are removed, but those a checkpoint names when the run
/// resumes (without `--resume`, they start over).
pub(crate) fn before_run(
    out_dir: &Path,
    plans: &[QueryPlan],
    backfill: bool,
    resume: bool,
    shard: Option<crate::shard::Shard>,
) -> TempFiles {
    let store = Store::new(out_dir);
    if !backfill {
        store.retain(
            |query, target| match plans.iter().find(|plan| plan.query.name == query) {
                Some(plan) => {
                    let output = plan.output.as_ref().map(|o| o.path());
                    // (Another shard's part is that shard's to take up.)
                    let theirs = (output.zip(shard))
                        .is_some_and(|(own, s)| crate::shard::is_sibling_part(own, target, s));
                    theirs || (sink::resumable(plan) && output == Some(target))
                }
                None => true,
            },
        );
    }
    let checkpointed = match resume {
        true => store.temp_files(),
        false => Vec::new(),
    };
    let outputs: Vec<&crate::plan::Output> = (plans.iter())
        .filter_map(|plan| plan.output.as_ref())
        .filter(|o| !o.is_stdout())
        .collect();
    let targets: Vec<PathBuf> = outputs.iter().map(|o| o.path().to_owned()).collect();
    let minute_ago = std::time::SystemTime::now() - Duration::from_secs(60);
    for output in outputs {
        let target = output.path();
        if let Some(object) = output.object() {
            let keep: Vec<String> = checkpointed
                .iter()
                .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                .collect();
            for stale in sink::object::remove_stale_parts(object, &keep) {
                tracing::info!("removed {stale}, left by an earlier run that was killed");
            }
            continue;
        }
        let left = |changed| changed < minute_ago;
        for stale in sink::remove_stale_temp_files(target, &checkpointed, left) {
            tracing::info!(
                "removed {}, left by an earlier run that was killed",
                stale.display()
            );
        }
    }
    // Then those of outputs no query of this run writes (yesterday's dated name, another
    // window's), unless a checkpoint still names them.
    let named = store.temp_files();
    let mut dirs: Vec<&Path> = (plans.iter())
        .filter_map(|plan| plan.output.as_ref())
        .filter(|o| !o.is_stdout() && o.object().is_none())
        .filter_map(|o| o.path().parent())
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        for stale in sink::remove_orphan_temp_files(dir, &named, |changed| changed < minute_ago) {
            tracing::info!(
                "removed {}, left by an earlier run that was killed",
                stale.display()
            );
        }
    }
    let before = targets
        .iter()
        .flat_map(|t| sink::temp_files_of(t))
        .collect();
    TempFiles { before, targets }
}

/// After a run: a temporary file it made stays only if a checkpoint names it (one whose
/// checkpoint could not be written, on a full disk, would otherwise keep the disk full).
pub(crate) fn after_run(out_dir: &Path, files: TempFiles) {
    let mut keep = Store::new(out_dir).temp_files();
    keep.extend(files.before);
    for target in &files.targets {
        sink::remove_stale_temp_files(target, &keep, |_| true);
    }
}

/// Where an export's requests begin: from the start, or where its checkpoint left them.
pub(super) enum Begin {
    Start,
    /// A chain of pages, at its next page.
    Chain(pages::Position),
    /// A fan-out, after its first parent records.
    Parents(ParentsDone),
}

/// The parent records a fan-out's checkpoint says are done: their count, and the SHA-256 of
/// the fields its children read of them (a parent that changed since gives other children).
pub(super) struct ParentsDone {
    pub count: u64,
    pub sha256: String,
}

/// Opens `plan`'s output: fresh, or (`--resume`, when `checkpoints` takes it up) where its
/// checkpoint left it; and says where its requests begin. The one place an export starts.
pub(super) fn open_output<'a>(
    checkpoints: Option<&mut Checkpointer>,
    plan: &'a QueryPlan,
    shared: &Shared,
    destinations: Destinations,
    feeds_out: Vec<mpsc::Sender<Feed>>,
    counters: &'a Counters,
) -> Result<(Output<'a>, Begin), QueryError> {
    let start = match checkpoints {
        Some(checkpoints) => checkpoints.start(plan, shared),
        None => Start::Fresh,
    };
    let (checkpoint, sink) = match start {
        Start::Fresh => {
            let options = &shared.options;
            let output = Output::create(plan, &options.csv, destinations, feeds_out, counters)?;
            return Ok((output, Begin::Start));
        }
        Start::Resumed(checkpoint, sink) => (checkpoint, sink),
    };
    let output = Output::resumed(plan, sink, &checkpoint, counters)?;
    let begin = match &checkpoint.at {
        Position::Parents { done, sha256 } => Begin::Parents(ParentsDone {
            count: *done,
            sha256: sha256.clone(),
        }),
        // (`Checkpointer::start` took up only a chain's position that reads back.)
        Position::Chain {
            next,
            cursor,
            returned,
        } => match next.to_request() {
            Some(next) => Begin::Chain(pages::Position {
                next,
                cursor: *cursor,
                returned: *returned,
            }),
            None => {
                return Err(QueryError::Task(
                    "its checkpoint names no next page".to_owned(),
                ))
            }
        },
    };
    Ok((output, begin))
}

/// Where an export starts.
enum Start {
    Fresh,
    /// From a checkpoint, with its file's sink opened where it left off.
    Resumed(Box<Checkpoint>, Box<dyn Sink>),
}

/// What must match for a checkpoint to be taken up: every setting of the query as resolved
/// for this run. The query is taken apart field by field, so that a key added to `Query`
/// does not compile until it is placed here, counted or said not to matter.
fn export_fingerprint(
    plan: &QueryPlan,
    first: Option<&RequestSpec>,
    shared: &Shared,
    target: &std::path::Path,
) -> String {
    let crate::query::Query {
        name,
        api,
        version,
        method,
        records,
        columns: _,         // resolved: `plan.columns`
        output: _,          // resolved: the target
        format: _,          // resolved: the output's format
        params: _,          // rendered: the first request
        body: _,            // rendered: the first request
        body_lines: _,      // where the body's keys are written
        stray: _,           // refused by the plan
        describe_tables: _, // read after the export, by the data package
        vars: _,            // read only through the templates, rendered below
        max_pages,
        max_records,
        subject,
        for_each,
        ancestors: _, // their names: what is read of their records is in the parents' hash
        csv,
        paginate,
        explode,
        filter,
        sheet,
        bigquery,
        incremental,
        on_missing,
        file: _,         // where the query is kept, not what it asks
        discovery: _,    // the document: its method is `plan.method`, and `plan.request` below
        endpoint: _,     // the root: in the URL of the request below
        allow_writes: _, // whether it may run, not what it asks
        concurrency: _,  // how fast, not what
        qps: _,          // how fast, not what
        quota_cost: _,   // how fast, not what
        max_units: _,    // when it stops, not what: a budget run resumes under a new one
        strict: _, // checked on every page fetched, resumed or not (a report's every page says its caveats)
        merge: _,  // a merged output is never checkpointed (`sink::resumable`)
        lookback: _, // rendered: in `since`, a template value
    } = &plan.query;
    let csv = csv.or(&shared.options.csv);
    // Every template of the query, rendered with the run's values (today, variables,
    // environment, the backfill window, `since`; a parent record's fields render empty):
    // what the first request alone does not show, such as a column reading today's date.
    let context = plan.context(None);
    let rendered: Vec<Result<String, String>> = plan
        .templates()
        .into_iter()
        .map(|text| shared.templates.render(text, &context))
        .collect();
    // An export appended to the file as it was: a file that changed since (another run
    // appended) makes the kept prefix wrong.
    let appended_to = csv.append.unwrap_or(false).then(|| {
        std::fs::metadata(target)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    });
    fingerprint(&[
        &env!("CARGO_PKG_VERSION"),
        name,
        api,
        version,
        &method.value,
        &first.ok_or(&plan.request),
        &rendered,
        &plan.columns,
        &plan
            .output
            .as_ref()
            .map_or_else(Default::default, |o| o.format),
        &plan.decoder.describe(),
        &records.as_ref().map(|r| &r.value),
        &csv,
        &target,
        &appended_to,
        &(max_records, max_pages),
        &filter.as_ref().map(|f| &f.value),
        &explode.as_ref().map(|e| &e.value),
        &paginate.as_ref().map(|p| &p.value),
        &incremental.as_ref().map(|i| &i.value),
        &sheet.as_ref().map(|s| &s.value),
        &bigquery.as_ref().map(|b| &b.value),
        subject,
        &for_each.as_ref().map(|f| &f.value),
        on_missing,
    ])
}

impl Checkpointer {
    /// For `plan`'s export, whose first request is `first` (`None` for a fan-out, whose
    /// requests are rendered per parent record); `None` when it cannot be taken up again (not
    /// a plain file, or its records feed a fan-out), or must not be written down (its request
    /// carries a credential in a parameter).
    pub fn for_plan(
        plan: &QueryPlan,
        first: Option<&RequestSpec>,
        feeds_children: bool,
        shared: &Shared,
    ) -> Option<Self> {
        if !sink::resumable(plan) || feeds_children {
            return None;
        }
        // (So that a credential a template put in a parameter never reaches the disk.)
        let secret = |(name, _): &(String, String)| SECRET_PARAMETERS.contains(&name.as_str());
        if first.is_some_and(|request| request.query.iter().any(secret)) {
            return None;
        }
        let out_dir = &shared.options.out_dir;
        let output = plan.output.as_ref()?;
        let target = output.path().to_owned();
        let fingerprint = export_fingerprint(plan, first, shared, &target);
        let costly_marks = output.object().is_some();
        // (Cloud Storage takes about one write a second per object: a checkpoint kept there is
        // written as seldom as an object's.)
        let in_cloud = costly_marks || crate::state::in_cloud(out_dir);
        Some(Checkpointer {
            interval: match in_cloud {
                true => object_interval(),
                false => INTERVAL,
            },
            costly_marks,
            store: Store::new(out_dir),
            query: plan.query.name.clone(),
            target,
            fingerprint,
            fan_out: first.is_none(),
            on: true,
            pending: None,
            last_written: Instant::now(),
        })
    }

    /// Where the export starts: with `resume` (`--resume`), from the checkpoint it left when
    /// that matches this export and its file; otherwise fresh, any checkpoint discarded (with
    /// a line saying why, when `--resume` asked for it).
    fn start(&mut self, plan: &QueryPlan, shared: &Shared) -> Start {
        let Some(loaded) = self.store.load(&self.query, &self.target) else {
            return Start::Fresh;
        };
        if !shared.options.resume {
            self.store.discard(&self.query, &self.target);
            return Start::Fresh;
        }
        let taken = loaded.and_then(|checkpoint| {
            if checkpoint.request != self.fingerprint {
                return Err("its query or request changed since the checkpoint".to_owned());
            }
            let usable = match &checkpoint.at {
                Position::Chain { next, .. } => !self.fan_out && next.to_request().is_some(),
                Position::Parents { .. } => self.fan_out,
            };
            if !usable {
                return Err("its checkpoint cannot be read".to_owned());
            }
            let sink = sink::resume(plan, &shared.options.csv, &checkpoint.file)?;
            Ok((checkpoint, sink))
        });
        match taken {
            Ok((checkpoint, sink)) => {
                crate::say!(
                    "{}: resuming after {} ({} rows)",
                    self.query,
                    checkpoint.at.describe(),
                    checkpoint.rows
                );
                Start::Resumed(Box::new(checkpoint), sink)
            }
            Err(why) => {
                self.starting_over(&why);
                Start::Fresh
            }
        }
    }

    /// Drops the checkpoint, saying why the export starts over from its first page.
    pub fn starting_over(&mut self, why: &str) {
        crate::say!("{}: starting over: {why}", self.query);
        self.drop_checkpoint();
    }

    /// Notes where the export stands once a page (or a parent record's chain) is in its file,
    /// and writes it out when the last was written [`INTERVAL`] ago. A checkpoint that cannot
    /// be written is said once; the export goes on without.
    pub fn save(&mut self, output: &mut Output<'_>, at: Position) -> Result<(), super::QueryError> {
        if !self.on || (self.costly_marks && !self.due()) {
            return Ok(());
        }
        let Some(mark) = output.mark()? else {
            self.on = false;
            return Ok(());
        };
        self.pending = Some(Checkpoint {
            version: crate::run::resume::store::VERSION,
            query: self.query.clone(),
            request: self.fingerprint.clone(),
            target: self.target.clone(),
            file: mark,
            rows: output.written(),
            at,
            newest: output.newest_cursor(),
            columns: output.declared_columns(),
            gone: output.gone().cloned(),
        });
        if self.last_written.elapsed() >= self.interval {
            self.write_out();
        }
        Ok(())
    }

    /// True when a checkpoint noted now would be written out at once.
    pub fn due(&self) -> bool {
        self.on && self.last_written.elapsed() >= self.interval
    }

    /// How long until the checkpoint noted last is due to be written out (`None`: none waits).
    pub fn pending_due_in(&self) -> Option<Duration> {
        self.pending
            .as_ref()
            .map(|_| self.interval.saturating_sub(self.last_written.elapsed()))
    }

    /// Ctrl-C or SIGTERM: writes out where the export stands (`at`, after its last page in
    /// the file) now, even when not due — for a Cloud Storage output, finishing its part
    /// object — so that `--resume` goes on from its last page.
    pub fn flush(&mut self, output: &mut Output<'_>, at: Position) {
        if !self.on {
            return;
        }
        // (Noted now, due or not, and written out below.)
        self.costly_marks = false;
        match self.save(output, at) {
            Ok(()) => self.write_out(),
            Err(err) => tracing::warn!("{}: cannot write its checkpoint ({err})", self.query),
        }
    }

    /// Writes out the checkpoint noted last, if it was not.
    pub fn write_out(&mut self) {
        let Some(checkpoint) = self.pending.take() else {
            return;
        };
        self.last_written = Instant::now();
        if let Err(err) = self.store.save(&checkpoint) {
            tracing::warn!(
                "{}: cannot write its checkpoint ({err}); it goes on without, and would start over if stopped",
                self.query
            );
            self.on = false;
        }
    }

    /// Forgets the checkpoint and its file (an export that cannot go on from it).
    pub fn drop_checkpoint(&mut self) {
        self.pending = None;
        self.store.discard(&self.query, &self.target);
    }

    /// Forgets the checkpoint of the export now finished.
    pub fn finished(&mut self) {
        self.pending = None;
        self.store.finished(&self.query, &self.target);
    }

    /// Writes out where the stopped export stands; true when it left a checkpoint to resume
    /// from.
    pub fn left(&mut self) -> bool {
        self.write_out();
        self.store.exists(&self.query, &self.target)
    }
}

impl Drop for Checkpointer {
    /// An export dropped mid-way (Ctrl-C, `--fail-fast`) leaves where it stood.
    fn drop(&mut self) {
        self.write_out();
    }
}
