//! Where a query's rows go. A [`Sink`] is told the columns first, then takes rows, then either
//! commits (the output appears whole, atomically) or is dropped (the previous output stays as
//! it was). [`open`] picks the implementation for a query by its format: CSV and TSV
//! ([`csv`]), NDJSON ([`ndjson`]). What every file shares (the atomic temporary file, gzip,
//! standard output, the proof of what was written) is in [`file`]. Another format is one file
//! beside them and one line in [`open`].

mod csv;
mod file;
mod ndjson;

use std::path::{Path, PathBuf};

use crate::plan::QueryPlan;
use crate::query::{CsvSettings, Format};
use crate::records::{Column, Row};

pub use self::csv::{CsvOptions, CsvSink};
pub use self::file::{is_stdout, remove_stale_temp_files, Written, STDOUT};
pub use self::ndjson::NdjsonSink;

/// One output being written.
pub trait Sink: Send {
    /// Starts the output with its columns (their names today; the types the Discovery schema
    /// gives them travel with the columns when a format needs them). Called once, before any
    /// row.
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError>;

    /// Adds one row: a cell for each field the record has, the null text for the others.
    fn write_row(&mut self, row: &Row) -> Result<(), SinkError>;

    /// Puts the output in place, whole, and says what it holds. Dropping a sink instead leaves
    /// no trace of it.
    fn commit(self: Box<Self>) -> Result<Written, SinkError>;
}

/// The sink of `plan`'s output under `out_dir` (`None` for `output = false`), its options from
/// the query and, where the query sets none, from `csv_defaults` (the command line).
pub fn open(
    plan: &QueryPlan,
    out_dir: &Path,
    csv_defaults: &CsvSettings,
) -> Result<Option<Box<dyn Sink>>, SinkError> {
    let Some(file) = &plan.output else {
        return Ok(None);
    };
    let target = match is_stdout(file) {
        true => PathBuf::from(STDOUT),
        false => out_dir.join(file),
    };
    let settings = plan.query.csv.or(csv_defaults);
    let gzip = plan.format.gzip;
    let (mut options, null) = csv_options(&settings);
    Ok(Some(match plan.format.format {
        Format::Csv | Format::Tsv => {
            if plan.format.format == Format::Tsv {
                options.delimiter = b'\t';
            }
            // (Only a plain CSV is appended to; a query asking otherwise is refused earlier.)
            options.append &= !gzip && !is_stdout(&target);
            Box::new(CsvSink::create(&target, &options, &null, gzip)?)
        }
        Format::Ndjson => Box::new(NdjsonSink::create(
            &target,
            gzip,
            plan.query.columns.is_none(),
        )?),
        Format::Xlsx => return Err(SinkError::Unsupported(Format::Xlsx)),
    }))
}

/// The CSV sink's options from a query's settings (unset ones at their defaults), and the
/// null text.
fn csv_options(settings: &CsvSettings) -> (CsvOptions, String) {
    let default = CsvOptions::default();
    let options = CsvOptions {
        delimiter: settings.delimiter.unwrap_or(default.delimiter),
        bom: settings.bom.unwrap_or(default.bom),
        excel_safe: settings.excel_safe.unwrap_or(default.excel_safe),
        append: settings.append.unwrap_or(default.append),
        header: settings.header.unwrap_or(default.header),
    };
    (options, settings.null.clone().unwrap_or_default())
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("gscrape cannot write {0} files yet")]
    Unsupported(Format),
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
    #[error("cannot append to {}: its header is {existing:?} but this query writes {new:?}; remove `append`, or move the old file away", .path.display())]
    HeaderMismatch {
        path: PathBuf,
        existing: Vec<String>,
        new: Vec<String>,
    },
}
