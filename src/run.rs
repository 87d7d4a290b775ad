//! Running planned queries: page after page from the API into each query's CSV sink.
//! One failing query does not stop the others; each outcome is reported back.

use std::path::{Path, PathBuf};

use crate::api::{ApiClient, ApiError, Cursor, PaginationError};
use crate::auth::Authorizer;
use crate::plan::QueryPlan;
use crate::records::{render_row, take_records};
use crate::sink::{CsvSink, SinkError};

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

/// A finished export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutcome {
    pub output: PathBuf,
    pub records: u64,
    pub pages: u64,
    pub stop: Stop,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Pagination(#[from] PaginationError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Runs one query to the end (or to its caps) and replaces its CSV with the complete export.
pub async fn run_query(
    plan: &QueryPlan,
    api: &ApiClient,
    auth: &Authorizer,
    out_dir: &Path,
) -> Result<QueryOutcome, QueryError> {
    let target = out_dir.join(&plan.query.output);
    let header: Vec<String> = plan.columns.iter().map(|c| c.header.clone()).collect();
    let mut sink = CsvSink::create(&target, &header)?;
    let mut cursor = Cursor::new(plan.pagination.clone());
    let mut request = plan.request.clone();
    let mut row = Vec::with_capacity(plan.columns.len());
    let mut pages = 0;
    let max_records = plan.query.max_records;
    let stop = loop {
        let page = api.fetch(&request, auth).await?;
        pages += 1;
        let next = cursor.advance(&page)?;
        // Capped: the limit is reached while a record or a page is still waiting.
        let full = |sink: &CsvSink| max_records.is_some_and(|max| sink.rows() >= max);
        let mut capped = false;
        for record in take_records(page, plan.records.as_ref()) {
            if full(&sink) {
                capped = true;
                break;
            }
            render_row(&record, &plan.columns, &mut row);
            sink.write_row(&row)?;
        }
        if capped || (full(&sink) && next.is_some()) {
            break Stop::MaxRecords(sink.rows());
        }
        match next {
            None => break Stop::Complete,
            Some(_) if plan.query.max_pages.is_some_and(|max| pages >= max) => {
                break Stop::MaxPages(pages);
            }
            Some(token) => cursor.apply(&token, &mut request),
        }
    };
    let records = sink.rows();
    let output = sink.finish()?;
    Ok(QueryOutcome {
        output,
        records,
        pages,
        stop,
    })
}
