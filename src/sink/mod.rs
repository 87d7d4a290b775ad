//! Where a query's rows go. A [`Sink`] is told the columns first, then takes rows, then either
//! commits (the output appears whole, atomically) or is dropped (the previous output stays as
//! it was). [`open`] picks the implementation for a query: by its format for `output` — CSV
//! and TSV ([`csv`]), NDJSON ([`ndjson`]), xlsx ([`xlsx`]), Parquet ([`parquet`]) — and a Google Sheet ([`sheets`]) for `[sheet]`,
//! both when a query has both, and a BigQuery table ([`bigquery`]) for `[bigquery]`. What
//! every file shares (the atomic temporary file, gzip,
//! standard output, the proof of what was written) is in [`file`]. Another format is one file
//! beside them and one line in [`open`].

pub mod bigquery;
mod cells;
mod csv;
mod file;
pub mod merge;
mod ndjson;
pub mod object;
pub mod parquet;
pub mod sheets;
mod xlsx;

use std::path::{Path, PathBuf};

use crate::plan::{Output, QueryPlan};
use crate::query::{CsvSettings, Format};
use crate::records::{Column, Row};

use self::bigquery::{BigQueryContext, BigQueryError, BigQuerySink};
pub use self::csv::{CsvOptions, CsvSink};
pub use self::file::{
    hex, is_temp_of, remove_orphan_temp_files, remove_stale_temp_files, temp_files_of, Mark,
    Written,
};
// (`gscrape compose` writes its output the same way.)
pub use self::file::{persist, temp_beside};
pub use self::ndjson::NdjsonSink;
use self::sheets::{SheetContext, SheetError, SheetSink};

/// How a query's destinations other than files are reached, when it has them: its sheet
/// (`[sheet]`) and its table (`[bigquery]`).
#[derive(Clone, Default)]
pub struct Destinations {
    pub sheet: Option<SheetContext>,
    pub bigquery: Option<BigQueryContext>,
    /// Where a merge (`merge_key`) leaves its counts for the report.
    pub merged: std::sync::Arc<std::sync::OnceLock<merge::Merged>>,
}

/// One output being written.
pub trait Sink: Send {
    /// Starts the output with its columns (their names today; the types the Discovery schema
    /// gives them travel with the columns when a format needs them). Called once, before any
    /// row.
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError>;

    /// Adds one row: a cell for each field the record has, the null text for the others.
    fn write_row(&mut self, row: &Row) -> Result<(), SinkError>;

    /// The types a report's first response declares for its columns (after `begin`, before
    /// or among the first rows): a typed format that has not fixed its schema yet takes them.
    fn report_types(&mut self, _types: &[crate::records::schema::ColumnType]) {}

    /// Writes out the rows so far and says where the output stands, for a checkpoint (from
    /// then on, a dropped sink leaves its temporary file for a resumed run). `None`: this
    /// output cannot be taken up again mid-way (gzip, xlsx, a sheet, standard output).
    fn checkpoint(&mut self) -> Result<Option<Mark>, SinkError> {
        Ok(None)
    }

    /// Adds a row given as this format's own bytes, a whole line with its end (a merge
    /// keeping a row of the old output exactly as it was). Only the formats a merge reads
    /// back take it.
    fn write_encoded(&mut self, _line: &[u8]) -> Result<(), SinkError> {
        Err(merge::MergeError::Unsupported.into())
    }

    /// Puts the output in place, whole, and says what it holds. Dropping a sink instead leaves
    /// no trace of it (unless it was checkpointed).
    fn commit(self: Box<Self>) -> Result<Written, SinkError>;
}

/// True when `plan`'s output can be checkpointed and taken up again: a plain file of a
/// resumable format ([`Output::resumable`]), and no sheet or table.
pub fn resumable(plan: &QueryPlan) -> bool {
    let file = plan.output.as_ref().is_some_and(Output::resumable);
    let alone = plan.query.sheet.is_none() && plan.query.bigquery.is_none();
    // (A merge writes at its commit only: nothing to take up.)
    file && alone && plan.query.merge.is_none()
}

/// True when `plan`'s rows must carry their record's JSON text: its file's format asks for it
/// (NDJSON's lines, Parquet's JSON columns), or its table's JSON columns.
pub fn needs_record_text(plan: &QueryPlan) -> bool {
    let file = (plan.output.as_ref())
        .is_some_and(|output| output.needs_record_text(|| parquet::json_columns(plan)));
    file || bigquery::reads_records(plan)
}

/// The sink of `plan`'s file taken up where a checkpoint left it at `mark` (for a plan that is
/// [`resumable`]); why not, otherwise.
pub fn resume(
    plan: &QueryPlan,
    csv_defaults: &CsvSettings,
    mark: &Mark,
) -> Result<Box<dyn Sink>, String> {
    let Some(output) = plan.output.as_ref().filter(|_| resumable(plan)) else {
        return Err("its output cannot be taken up mid-way".to_owned());
    };
    let settings = plan.query.csv.or(csv_defaults);
    let options = csv_options(&settings, output);
    let raw = plan.query.columns.is_none();
    Ok(match output.format.format {
        Format::Ndjson => Box::new(NdjsonSink::resume(output, raw, mark)?),
        _ => Box::new(CsvSink::resume(output, &options.0, &options.1, mark)?),
    })
}

/// The sink of `plan`'s outputs: its file (none for `output = false`), its
/// options from the query and, where the query sets none, from `csv_defaults` (the command
/// line); its Google Sheet (`[sheet]`) and its BigQuery table (`[bigquery]`), reached through
/// `destinations`. `None` when it has none of them.
pub fn open(
    plan: &QueryPlan,
    csv_defaults: &CsvSettings,
    destinations: Destinations,
) -> Result<Option<Box<dyn Sink>>, SinkError> {
    if let Some(merge) = &plan.query.merge {
        return merge::open(plan, &merge.value, csv_defaults, destinations).map(Some);
    }
    let file = match &plan.output {
        Some(output) => Some(file_sink(plan, output, csv_defaults)?),
        None => None,
    };
    let sheet: Option<Box<dyn Sink>> = match &plan.query.sheet {
        Some(target) => {
            let context = destinations.sheet.ok_or(SheetError::NoEndpoint)?;
            Some(Box::new(SheetSink::new(
                plan,
                target.value.clone(),
                context,
            )))
        }
        None => None,
    };
    let table: Option<Box<dyn Sink>> = match &plan.query.bigquery {
        Some(target) => {
            let context = destinations.bigquery.ok_or(BigQueryError::NoEndpoint)?;
            Some(Box::new(BigQuerySink::new(
                plan,
                target.value.clone(),
                context,
            )?))
        }
        None => None,
    };
    // The table's job first: the likeliest to fail, and atomic; then the file, then the sheet.
    let proof = usize::from(table.is_some() && file.is_some());
    let mut sinks: Vec<Box<dyn Sink>> = table.into_iter().chain(file).chain(sheet).collect();
    Ok(match sinks.len() {
        0 => None,
        1 => sinks.pop(),
        _ => Some(Box::new(Tee { sinks, proof })),
    })
}

/// Several outputs of one query (a table, a file, a sheet): each gets every row. They commit
/// in order — the BigQuery job, the file, the sheet — and one that fails drops those after
/// it, which then stay as they were. What the file holds (else the first) is what the
/// summary proves (a sheet is proved by its URL, a table by its job).
struct Tee {
    sinks: Vec<Box<dyn Sink>>,
    /// The sink whose [`Written`] the tee reports.
    proof: usize,
}

impl Sink for Tee {
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError> {
        self.sinks.iter_mut().try_for_each(|s| s.begin(columns))
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        self.sinks.iter_mut().try_for_each(|s| s.write_row(row))
    }

    fn report_types(&mut self, types: &[crate::records::schema::ColumnType]) {
        self.sinks.iter_mut().for_each(|s| s.report_types(types));
    }

    fn commit(self: Box<Self>) -> Result<Written, SinkError> {
        let mut proof = Written {
            bytes: 0,
            sha256: String::new(),
            object: None,
            formula_cells: 0,
        };
        for (i, sink) in self.sinks.into_iter().enumerate() {
            let written = sink.commit()?;
            if i == self.proof {
                proof = written;
            }
        }
        Ok(proof)
    }
}

/// Runs a destination's requests from the synchronous [`Sink`] calls (`no_runtime` when
/// that cannot be done). The sink is driven by a task of the run's multi-threaded runtime,
/// whose worker hands its other tasks to another thread while this one waits. Never on the
/// main thread, which drives plain exports (`run_all`): waiting there would swallow their
/// wake-ups and stall them.
pub(crate) fn block<T, E>(
    work: impl std::future::Future<Output = Result<T, E>>,
    no_runtime: E,
) -> Result<T, E> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    debug_assert_ne!(
        std::thread::current().name(),
        Some("main"),
        "a query writing a sheet or a table must run on a worker"
    );
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(work))
        }
        _ => Err(no_runtime),
    }
}

/// The sink of `output` (a file, an object or standard output) in its format: one line a
/// format.
pub(crate) fn file_sink(
    plan: &QueryPlan,
    output: &Output,
    csv_defaults: &CsvSettings,
) -> Result<Box<dyn Sink>, SinkError> {
    let settings = plan.query.csv.or(csv_defaults);
    let (options, null) = csv_options(&settings, output);
    let raw = plan.query.columns.is_none();
    Ok(match output.format.format {
        Format::Csv | Format::Tsv => Box::new(CsvSink::create(output, &options, &null)?),
        Format::Ndjson => Box::new(NdjsonSink::create(output, raw)?),
        Format::Xlsx => Box::new(xlsx::XlsxSink::create(output, plan.column_schema())),
        Format::Parquet => Box::new(parquet::ParquetSink::create(plan, output)?),
    })
}

/// The CSV sink's options from a query's settings (unset ones at their defaults) as
/// `output`'s format takes them (its own delimiter; appending only to a plain file: a query
/// asking otherwise is refused earlier), and the null text.
fn csv_options(settings: &CsvSettings, output: &Output) -> (CsvOptions, String) {
    let default = CsvOptions::default();
    let options = CsvOptions {
        delimiter: (output.can().delimiter)
            .unwrap_or(settings.delimiter.unwrap_or(default.delimiter)),
        bom: settings.bom.unwrap_or(default.bom),
        excel_safe: settings.excel_safe.unwrap_or(default.excel_safe),
        append: settings.append.unwrap_or(default.append) && output.appendable(),
        header: settings.header.unwrap_or(default.header),
    };
    (options, settings.null.clone().unwrap_or_default())
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot replace {}: {source}", .path.display())]
    Persist {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot append to {}: its header is {} but this query writes {}; remove `append`, or move the old file away", .path.display(), crate::redact::quote(&format!("{:?}", .existing)), crate::redact::quote(&format!("{:?}", .new)))]
    HeaderMismatch {
        path: PathBuf,
        existing: Vec<String>,
        new: Vec<String>,
    },
    #[error(transparent)]
    Sheet(#[from] SheetError),
    #[error("cannot write {}: {source}", .path.display())]
    Object {
        path: PathBuf,
        #[source]
        source: Box<crate::gcs::StorageError>,
    },
    #[error(transparent)]
    BigQuery(#[from] BigQueryError),
    /// (Boxed: its messages carry paths and headers, and `SinkError` travels far.)
    #[error(transparent)]
    Merge(Box<merge::MergeError>),
}

impl From<merge::MergeError> for SinkError {
    fn from(err: merge::MergeError) -> Self {
        SinkError::Merge(Box::new(err))
    }
}

impl SinkError {
    /// A Cloud Storage failure writing `target`.
    pub fn object(target: &Path, source: crate::gcs::StorageError) -> SinkError {
        SinkError::Object {
            path: target.to_owned(),
            source: Box::new(source),
        }
    }
}
