//! Loading a query's rows into a BigQuery table (`[bigquery]`) with one load job per run, as
//! `bq load` does: the rows are staged as NDJSON in an unnamed temporary file (flat memory,
//! gone with the process), typed by the column schema ([`schema`]), and uploaded at commit
//! ([`job`]).
//!
//! Replace is `WRITE_TRUNCATE`: BigQuery swaps the table's rows (and schema) when the job
//! succeeds, atomically; a job that fails leaves the table as it was. A sink dropped before
//! its commit has started no job. The job's errors fail the query, one line each; its
//! `outputRows` must be the rows written.

pub mod job;
pub mod schema;

use std::io::{BufWriter, Write};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use super::{hex, Sink, SinkError, Written};
use crate::api::{ApiClient, ApiError, Call};
use crate::error::Failure;
use crate::plan::QueryPlan;
use crate::query::{BigQueryTarget, LoadMode};
use crate::records::schema::{ColumnSchema, ColumnType};
use crate::records::{Column, Row};
pub use job::{BigQueryApi, Loaded};
pub use schema::{reads_records, table_columns, BqColumn, BqType};

#[derive(Debug, thiserror::Error)]
pub enum BigQueryError {
    #[error("BigQuery: {0}")]
    Api(Box<ApiError>),
    #[error("BigQuery: {url}: {why}")]
    BadResponse { url: String, why: String },
    #[error("BigQuery load job {job} into {table} failed, and left the table as it was:\n{lines}")]
    JobFailed {
        job: String,
        table: String,
        lines: String,
    },
    #[error("BigQuery load job {job} loaded {loaded} rows into {table}, but gscrape sent {sent}: check the table, which holds what the job loaded")]
    RowCount {
        job: String,
        table: String,
        loaded: u64,
        sent: u64,
    },
    #[error("BigQuery: row {row}, column `{column}`: {value} is not a valid {kind} (the API sent what its Discovery type does not allow); nothing was loaded")]
    Unfit {
        row: u64,
        column: String,
        value: String,
        kind: &'static str,
    },
    #[error("[bigquery]: {0}")]
    Columns(String),
    #[error("BigQuery: cannot stage the rows in a temporary file (TMPDIR): {0}")]
    Stage(#[source] std::io::Error),
    #[error("BigQuery: the table is loaded from gscrape's multi-threaded runtime only")]
    NoRuntime,
    #[error("BigQuery: no endpoint was prepared for the load job")]
    NoEndpoint,
}

impl BigQueryError {
    /// What kind of failure this is (for the exit code and the summary).
    pub fn kind(&self) -> Failure {
        match self {
            BigQueryError::Api(err) => err.kind(),
            BigQueryError::Columns(_) => Failure::BadInput,
            BigQueryError::Stage(_) => Failure::LocalIo,
            _ => Failure::Remote,
        }
    }
}

impl From<ApiError> for BigQueryError {
    fn from(err: ApiError) -> Self {
        BigQueryError::Api(Box::new(err))
    }
}

/// What the sink needs from the run: the client, credentials and counters of its requests,
/// where BigQuery is, and where to leave what the job loaded for the summary.
#[derive(Clone)]
pub struct BigQueryContext {
    pub api: ApiClient,
    pub call: Call,
    pub endpoint: BigQueryApi,
    pub loaded: Arc<OnceLock<Loaded>>,
}

/// The scopes a load job accepts (for the message of a token granted none).
pub fn accepts() -> crate::api::Accepts {
    crate::api::Accepts {
        method: "bigquery.jobs.insert".to_owned(),
        scopes: vec![
            crate::auth::scopes::BIGQUERY_WRITE.to_owned(),
            "https://www.googleapis.com/auth/cloud-platform".to_owned(),
        ],
    }
}

/// Rows staged for one load job.
pub struct BigQuerySink {
    target: BigQueryTarget,
    query: String,
    context: BigQueryContext,
    /// The plan's columns and their schema, for `begin` (a report's are named then).
    planned: (Vec<Column>, ColumnSchema),
    /// The columns' schema, which a report's first page completes before any row.
    schema: ColumnSchema,
    columns: Vec<BqColumn>,
    /// Some column is read from the record.
    reads_records: bool,
    file: BufWriter<std::fs::File>,
    line: Vec<u8>,
    rows: u64,
    bytes: u64,
    hash: Sha256,
    /// `merge_key`: the key's headers (their table names once begun).
    merge_key: Vec<String>,
}

impl BigQuerySink {
    pub fn new(
        plan: &QueryPlan,
        target: BigQueryTarget,
        context: BigQueryContext,
    ) -> Result<Self, SinkError> {
        let file = tempfile::tempfile().map_err(BigQueryError::Stage)?;
        Ok(BigQuerySink {
            target,
            query: plan.query.name.clone(),
            context,
            planned: (plan.columns.clone(), plan.column_schema()),
            schema: ColumnSchema::default(),
            columns: Vec::new(),
            reads_records: false,
            file: BufWriter::with_capacity(256 * 1024, file),
            line: Vec::new(),
            rows: 0,
            bytes: 0,
            hash: Sha256::new(),
            merge_key: (plan.query.merge.as_ref()).map_or_else(Vec::new, |m| m.value.key.clone()),
        })
    }
}

impl Sink for BigQuerySink {
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError> {
        self.schema = match columns == self.planned.0.as_slice() {
            true => std::mem::take(&mut self.planned.1),
            // A report's columns, named by its response: text until its response types them.
            false => ColumnSchema::text(columns.len()),
        };
        self.columns =
            schema::name_columns(columns, &self.schema).map_err(BigQueryError::Columns)?;
        for key in &mut self.merge_key {
            if let Some(column) = self.columns.iter().find(|c| c.header == *key) {
                column.name.clone_into(key);
            }
        }
        self.reads_records = self.columns.iter().any(BqColumn::reads_record);
        Ok(())
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        let record = match self.reads_records {
            true => row.raw().and_then(|raw| serde_json::from_str(raw).ok()),
            false => None,
        };
        self.line.clear();
        schema::encode_row(&mut self.line, &self.columns, row.cells(), record.as_ref()).map_err(
            |unfit| BigQueryError::Unfit {
                row: self.rows + 1,
                column: unfit.column,
                value: crate::redact::quote(&unfit.value).to_string(),
                kind: unfit.kind.name(),
            },
        )?;
        self.file
            .write_all(&self.line)
            .map_err(BigQueryError::Stage)?;
        self.hash.update(&self.line);
        self.bytes += self.line.len() as u64;
        self.rows += 1;
        Ok(())
    }

    /// A report's own types for its columns: the table's schema, known before the first row
    /// is staged (and fixed by the load job).
    fn report_types(&mut self, types: &[ColumnType]) {
        if self.rows == 0 && self.schema.complete(types) {
            for (i, column) in self.columns.iter_mut().enumerate() {
                column.kind = BqType::of(self.schema.kind(i));
            }
        }
    }

    /// Loads the staged rows (one job) and waits for it; what was staged is the proof.
    fn commit(self: Box<Self>) -> Result<Written, SinkError> {
        let BigQuerySink {
            target,
            query,
            context,
            columns,
            file,
            rows,
            bytes,
            hash,
            merge_key,
            ..
        } = *self;
        let mut file = file
            .into_inner()
            .map_err(|err| BigQueryError::Stage(err.into_error()))?;
        let schema = schema::schema_json(&columns);
        let loaded = match target.mode {
            LoadMode::Merge => {
                let job = job::MergeJob {
                    api: &context.api,
                    call: &context.call,
                    endpoint: &context.endpoint,
                    target: &target,
                    query: &query,
                    key: merge_key,
                };
                let merged = super::block(
                    job.run(schema, &mut file, bytes, rows),
                    BigQueryError::NoRuntime,
                )?;
                merged.0
            }
            LoadMode::Replace | LoadMode::Append => {
                let job = job::Job {
                    api: &context.api,
                    call: &context.call,
                    endpoint: &context.endpoint,
                    target: &target,
                    id: job::job_id(&query),
                };
                super::block(
                    job.run(schema, &mut file, bytes, rows),
                    BigQueryError::NoRuntime,
                )?
            }
        };
        let _ = context.loaded.set(loaded);
        Ok(Written {
            bytes,
            sha256: hex(&hash.finalize()),
            object: None,
            formula_cells: 0,
        })
    }
}
