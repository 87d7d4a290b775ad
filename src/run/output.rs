//! Where a query's records go: its CSV (unless `output = false`) and the queries that fan out
//! from it, with `max_records` applied.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::sync::mpsc;

use super::{Feed, QueryError};
use crate::api::Body;
use crate::counters::Counters;
use crate::plan::QueryPlan;
use crate::query::CsvSettings;
use crate::records::stream::{render_selected, Selector, Stopped};
use crate::records::{render_row, Column, FieldPath};
use crate::sink::{CsvOptions, CsvSink};

pub(super) struct Output<'a> {
    sink: Option<CsvSink>,
    /// The CSV still to open, when the columns come with the first page.
    pending: Option<(PathBuf, CsvOptions)>,
    null: String,
    columns: Cow<'a, [Column]>,
    feeds: Vec<mpsc::Sender<Feed>>,
    max_records: Option<u64>,
    written: u64,
    row: Vec<String>,
    counters: &'a Counters,
}

impl<'a> Output<'a> {
    /// Opens the CSV (header first) of `plan` under `out_dir`.
    pub fn create(
        plan: &'a QueryPlan,
        out_dir: &Path,
        csv_defaults: &CsvSettings,
        feeds: Vec<mpsc::Sender<Feed>>,
        counters: &'a Counters,
    ) -> Result<Self, QueryError> {
        let (options, null) = plan.query.csv.or(csv_defaults).resolve();
        let mut output = Output {
            sink: None,
            pending: None,
            null,
            columns: Cow::Borrowed(&plan.columns),
            feeds,
            max_records: plan.query.max_records,
            written: 0,
            row: Vec::with_capacity(plan.columns.len()),
            counters,
        };
        if let Some(file) = &plan.output {
            output.pending = Some((out_dir.join(file), options));
            if !plan.columns.is_empty() {
                output.open()?;
            }
        }
        Ok(output)
    }

    /// True until the columns are known (a report that names them in its response).
    pub fn needs_columns(&self) -> bool {
        self.columns.is_empty()
    }

    /// Sets the columns a report's first page named, and opens the CSV.
    pub fn set_columns(&mut self, names: &[String]) -> Result<(), QueryError> {
        self.columns = Cow::Owned(
            names
                .iter()
                .map(|n| Column::from_path(FieldPath::key(n)))
                .collect(),
        );
        self.open()
    }

    fn open(&mut self) -> Result<(), QueryError> {
        if let Some((path, options)) = self.pending.take() {
            let header: Vec<String> = self.columns.iter().map(|c| c.header.clone()).collect();
            self.sink = Some(CsvSink::create(&path, &header, &options)?);
        }
        Ok(())
    }

    /// Writes `records` (template columns from `rendered`) and hands each to the fan-out
    /// children. Returns false when `max_records` left some of them out.
    pub async fn write(
        &mut self,
        records: Vec<Value>,
        rendered: &[String],
    ) -> Result<bool, QueryError> {
        for record in records {
            if self.is_full() {
                return Ok(false);
            }
            if let Some(sink) = &mut self.sink {
                render_row(&record, &self.columns, rendered, &self.null, &mut self.row);
                sink.write_row(&self.row)?;
            }
            self.written += 1;
            self.counters.records(1);
            self.feed(record).await;
        }
        Ok(true)
    }

    /// Writes the records of a page's JSON text, the cells taken by `selector` (no fan-out
    /// reads these records). Returns false when `max_records` left some of them out.
    pub fn write_raw(
        &mut self,
        body: &Body,
        selector: &Selector,
        rendered: &[String],
    ) -> Result<bool, QueryError> {
        let mut complete = true;
        selector
            .rows(body.text()?, |found| -> Result<bool, QueryError> {
                if self.is_full() {
                    complete = false;
                    return Ok(false);
                }
                if let Some(sink) = &mut self.sink {
                    render_selected(found, &self.columns, rendered, &self.null, &mut self.row);
                    sink.write_row(&self.row)?;
                }
                self.written += 1;
                self.counters.records(1);
                Ok(true)
            })
            .map_err(|stopped| match stopped {
                Stopped::Row(err) => err,
                Stopped::Json(err) => body.not_json(err).into(),
            })?;
        Ok(complete)
    }

    /// Passes a record to every child still listening (a child that failed has hung up).
    async fn feed(&mut self, record: Value) {
        let mut gone = Vec::new();
        for (i, feed) in self.feeds.iter().enumerate() {
            if feed.send(Feed::Record(record.clone())).await.is_err() {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.feeds.remove(i);
        }
    }

    /// True when fan-out queries read this query's records.
    pub fn feeds_children(&self) -> bool {
        !self.feeds.is_empty()
    }

    /// True when `max_records` has been reached.
    pub fn is_full(&self) -> bool {
        self.max_records.is_some_and(|max| self.written >= max)
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Tells the children that every record was sent, and puts the CSV in place.
    pub async fn finish(mut self) -> Result<(), QueryError> {
        // A report with no page of columns at all still leaves a (header-less) file.
        self.open()?;
        for feed in &self.feeds {
            let _ = feed.send(Feed::Done).await;
        }
        if let Some(sink) = self.sink {
            sink.finish()?;
        }
        Ok(())
    }
}
