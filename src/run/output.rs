//! Where a query's rows go: its sink (unless `output = false`) and the queries that fan out
//! from it, with `max_records` applied.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::pages::Fetched;
use super::{Feed, QueryError};
use crate::api::Body;
use crate::counters::{Counters, Gone};
use crate::plan::{Lineage, QueryPlan};
use crate::query::{CsvSettings, OnMissing};
use crate::records::{Column, FieldPath, PageReader, Row, Stopped};
use crate::run::resume::store::Checkpoint;
use crate::sink::{self, Destinations, Mark, Sink, Written};
use crate::template::RecordFilter;

pub(super) struct Output<'a> {
    sink: Option<Box<dyn Sink>>,
    /// True once the sink has its columns.
    begun: bool,
    columns: Cow<'a, [Column]>,
    feeds: Vec<mpsc::Sender<Feed>>,
    /// Records written and not yet handed to the children, each with its chain's lineage.
    to_feed: Vec<(Value, Arc<Lineage>)>,
    /// The lineage of the chain whose rows are being written: what the children read above
    /// its records, and its computed columns.
    lineage: Arc<Lineage>,
    max_records: Option<u64>,
    written: u64,
    /// `where`: the records to keep.
    filter: Option<RecordFilter>,
    /// `[incremental]`: the cursor field, and its greatest value among the records written.
    cursor: Option<(FieldPath, Option<String>)>,
    /// `on_missing = "skip"`: the parent records whose item was gone.
    gone: Option<Gone>,
    counters: &'a Counters,
}

impl<'a> Output<'a> {
    /// Opens the sink of `plan` (its file, its sheet and table through `destinations`), its
    /// columns given when the plan knows them.
    pub fn create(
        plan: &'a QueryPlan,
        csv_defaults: &CsvSettings,
        destinations: Destinations,
        feeds: Vec<mpsc::Sender<Feed>>,
        counters: &'a Counters,
    ) -> Result<Self, QueryError> {
        let sink = sink::open(plan, csv_defaults, destinations)?;
        Output::on(plan, sink, feeds, counters)
    }

    /// The output of `plan` taken up where `checkpoint` left it, through `sink` (which
    /// [`sink::resume`] opened on the checkpoint's file).
    pub fn resumed(
        plan: &'a QueryPlan,
        sink: Box<dyn Sink>,
        checkpoint: &Checkpoint,
        counters: &'a Counters,
    ) -> Result<Self, QueryError> {
        let mut output = Output::on(plan, Some(sink), Vec::new(), counters)?;
        if let Some(names) = checkpoint
            .columns
            .as_deref()
            .filter(|_| output.needs_columns())
        {
            output.set_columns(names)?;
        }
        output.written = checkpoint.rows;
        counters.records(checkpoint.rows);
        if let Some((_, newest)) = &mut output.cursor {
            newest.clone_from(&checkpoint.newest);
        }
        if let (Some(gone), Some(kept)) = (&mut output.gone, &checkpoint.gone) {
            gone.clone_from(kept);
        }
        Ok(output)
    }

    fn on(
        plan: &'a QueryPlan,
        sink: Option<Box<dyn Sink>>,
        feeds: Vec<mpsc::Sender<Feed>>,
        counters: &'a Counters,
    ) -> Result<Self, QueryError> {
        let mut output = Output {
            sink,
            begun: false,
            columns: Cow::Borrowed(&plan.columns),
            feeds,
            to_feed: Vec::new(),
            lineage: Arc::default(),
            max_records: plan.query.max_records,
            written: 0,
            cursor: plan
                .query
                .incremental
                .as_ref()
                .map(|i| (i.value.cursor.clone(), None)),
            gone: (plan.query.on_missing == OnMissing::Skip).then(Gone::default),
            filter: match &plan.query.filter {
                Some(filter) => {
                    let record = plan
                        .record_schema()
                        .map(|record| (plan.doc.clone(), record));
                    Some(RecordFilter::new(&filter.value, record).map_err(QueryError::Template)?)
                }
                None => None,
            },
            counters,
        };
        if !plan.columns.is_empty() {
            output.begin()?;
        }
        Ok(output)
    }

    /// The column names a report's response gave (none when the plan had the columns).
    pub fn declared_columns(&self) -> Option<Vec<String>> {
        matches!(self.columns, Cow::Owned(_))
            .then(|| self.columns.iter().map(|c| c.header.clone()).collect())
    }

    /// The types a report's first page declares for its columns, for a typed sink.
    pub fn report_types(&mut self, types: &[crate::records::schema::ColumnType]) {
        if let Some(sink) = &mut self.sink {
            sink.report_types(types);
        }
    }

    /// True until the columns are known (a report that names them in its response).
    pub fn needs_columns(&self) -> bool {
        self.columns.is_empty()
    }

    /// Sets the columns a report's first page named, and begins the sink.
    pub fn set_columns(&mut self, names: &[String]) -> Result<(), QueryError> {
        self.columns = Cow::Owned(
            names
                .iter()
                .map(|n| Column::from_path(FieldPath::key(n)))
                .collect(),
        );
        self.begin()
    }

    fn begin(&mut self) -> Result<(), QueryError> {
        if let (Some(sink), false) = (&mut self.sink, self.begun) {
            sink.begin(&self.columns)?;
        }
        self.begun = true;
        Ok(())
    }

    /// Writes the rows of a fetched page (template columns from `rendered`), and hands their
    /// records to the fan-out children. Returns false when `max_records` left some out.
    pub async fn write_page(
        &mut self,
        reader: &PageReader,
        fetched: Fetched,
        rendered: &[String],
    ) -> Result<bool, QueryError> {
        let Fetched { body, page, .. } = fetched;
        // Without a sink (`output = false`: a query that only feeds a fan-out) no cell is read.
        let columns = match self.sink {
            Some(_) => self.columns.clone(),
            None => Cow::Borrowed(&[][..]),
        };
        let mut complete = true;
        reader
            .rows(body.text()?, page, &columns, rendered, |row, record| {
                let written = self.write_row(row, record)?;
                complete &= written;
                Ok::<_, QueryError>(written)
            })
            .map_err(|stopped| rows_error(&body, stopped))?;
        self.feed_children().await;
        Ok(complete)
    }

    /// Writes one row, keeping its record for the children. Returns false, writing nothing,
    /// when `max_records` has been reached.
    pub fn write_row(&mut self, row: &Row, record: Option<Value>) -> Result<bool, QueryError> {
        if self.is_full() {
            return Ok(false);
        }
        if let Some(filter) = &self.filter {
            // The reader keeps every record whole when the query has a filter.
            let keep = match &record {
                Some(record) => filter.keeps(record).map_err(QueryError::Template)?,
                None => true,
            };
            if !keep {
                self.counters.dropped(1);
                return Ok(true);
            }
        }
        if let (Some((path, newest)), Some(record)) = (&mut self.cursor, &record) {
            let value = path.lookup(record).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            if let Some(value) = value {
                let later = newest
                    .as_deref()
                    .is_none_or(|current| crate::incremental::is_later(&value, current));
                if later {
                    *newest = Some(value);
                }
            }
        }
        if let Some(sink) = &mut self.sink {
            sink.write_row(row)?;
        }
        self.written += 1;
        self.counters.records(1);
        if let (Some(record), true) = (record, self.feeds_children()) {
            self.to_feed.push((record, self.lineage.clone()));
        }
        Ok(true)
    }

    /// Passes the records written since the last call to every child still listening (a
    /// child that failed has hung up).
    pub async fn feed_children(&mut self) {
        for (record, lineage) in std::mem::take(&mut self.to_feed) {
            let mut gone = Vec::new();
            let last = self.feeds.len().saturating_sub(1);
            let mut record = Some(record);
            for (i, feed) in self.feeds.iter().enumerate() {
                // Each child its own copy; the last takes the record itself.
                let copy = match i == last {
                    true => record.take(),
                    false => record.clone(),
                };
                let Some(copy) = copy else { break };
                if feed
                    .send(Feed::Record(copy, lineage.clone()))
                    .await
                    .is_err()
                {
                    gone.push(i);
                }
            }
            for i in gone.into_iter().rev() {
                self.feeds.remove(i);
            }
        }
    }

    /// Writes out the rows so far and says where the file stands, for a checkpoint (`None`
    /// when the output cannot be taken up again).
    pub fn mark(&mut self) -> Result<Option<Mark>, QueryError> {
        match &mut self.sink {
            Some(sink) => Ok(sink.checkpoint()?),
            None => Ok(None),
        }
    }

    /// Sets the lineage of the chain whose rows come next (its records carry it to the
    /// children).
    pub fn set_lineage(&mut self, lineage: Arc<Lineage>) {
        self.lineage = lineage;
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

    /// Notes a parent record skipped because its item was gone (`url`, its request).
    pub fn skip_gone(&mut self, url: String) {
        self.gone.get_or_insert_default().add(url);
    }

    /// The parent records skipped as gone so far (`on_missing = "skip"`).
    pub fn gone(&self) -> Option<&Gone> {
        self.gone.as_ref()
    }

    /// The greatest cursor value among the records written (`[incremental]`).
    pub fn newest_cursor(&self) -> Option<String> {
        self.cursor.as_ref().and_then(|(_, newest)| newest.clone())
    }

    /// Tells the children that every record was sent, and commits the sink: what it wrote.
    pub async fn finish(mut self) -> Result<Option<Written>, QueryError> {
        // A report with no page of columns at all still leaves a (header-less) file.
        self.begin()?;
        self.feed_children().await;
        for feed in &self.feeds {
            let _ = feed.send(Feed::Done).await;
        }
        match self.sink {
            Some(sink) => Ok(Some(sink.commit()?)),
            None => Ok(None),
        }
    }
}

/// Why the rows of `body` could not all be written.
pub(super) fn rows_error(body: &Body, stopped: Stopped<QueryError>) -> QueryError {
    match stopped {
        Stopped::Row(err) => err,
        Stopped::Json(err) => body.not_json(err).into(),
    }
}
