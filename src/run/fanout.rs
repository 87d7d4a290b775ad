//! Fan-out: a query that runs once per record of its parent (`for_each`), with the parent's
//! record in its templates. Parent records arrive while the parent is still paging; up to
//! `concurrency` request chains run at once, and their records are written in the parent's
//! order, so the CSV is the same on every run.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::output::Output;
use super::pages::{Batch, Pages};
use super::{render_columns, Feed, Job, QueryError, Shared, Stop};
use crate::api::Call;
use crate::counters::Counters;

/// Finished chains that may wait for an earlier one, per running chain.
const REORDER_ROOM: usize = 4;

/// The result of one request chain.
struct Chain {
    records: Vec<Value>,
    rendered: Vec<String>,
    capped: bool,
}

pub(super) async fn run(
    job: &Job,
    feed: mpsc::Receiver<Feed>,
    output: &mut Output<'_>,
    counters: &Arc<Counters>,
    shared: &Shared,
) -> Result<Stop, QueryError> {
    let plan = &job.plan;
    let parent = plan
        .query
        .for_each
        .as_ref()
        .map(|p| p.value.as_str())
        .unwrap_or_default();
    let width = plan
        .query
        .concurrency
        .unwrap_or(shared.options.fan_out)
        .get();
    // Parent records until `Done`; a feed that closes without it means the parent failed.
    let records = futures_util::stream::unfold(Some(feed), |feed| async move {
        let mut feed = feed?;
        match feed.recv().await {
            Some(Feed::Record(record)) => Some((Ok(record), Some(feed))),
            Some(Feed::Done) => None,
            None => Some((Err(()), None)),
        }
    });
    // `width` chains run at once; finished ones may wait for an earlier one to be written
    // without holding a running slot, so one slow chain does not stall the others.
    let running = tokio::sync::Semaphore::new(width);
    let running = &running;
    let chains = records
        .map(|record| async move {
            let record = record.map_err(|()| QueryError::ParentFailed(parent.to_owned()))?;
            let _slot = running
                .acquire()
                .await
                .map_err(|e| QueryError::Task(e.to_string()))?;
            chain(job, record, counters, shared).await
        })
        .buffered(width.saturating_mul(REORDER_ROOM));
    let mut chains = std::pin::pin!(chains.peekable());
    let mut capped = false;
    while let Some(done) = chains.next().await {
        let done = done?;
        capped |= done.capped;
        let complete = output.write(done.records, &done.rendered).await?;
        if !complete || (output.is_full() && chains.as_mut().peek().await.is_some()) {
            return Ok(Stop::MaxRecords(output.written()));
        }
    }
    Ok(match (capped, plan.query.max_pages) {
        (true, Some(max)) => Stop::MaxPages(max),
        _ => Stop::Complete,
    })
}

/// One request chain of the child, for one parent record (and acting as the subject it names,
/// when the query's `subject` is a template).
async fn chain(
    job: &Job,
    record: Value,
    counters: &Arc<Counters>,
    shared: &Shared,
) -> Result<Chain, QueryError> {
    let plan = &job.plan;
    let context = plan.context(Some(&record));
    let call = Call {
        auth: job.auth.for_chain(&shared.templates, &context)?,
        api: Arc::from(plan.query.api.as_str()),
        counters: counters.clone(),
    };
    let request = plan
        .request
        .render(&|text| shared.templates.render(text, &context))
        .map_err(QueryError::Template)?;
    let rendered = render_columns(plan, &shared.templates, &context)?;
    let mut pages = Pages::new(plan, request, &shared.api, call, None);
    let mut records = Vec::new();
    while let Some(batch) = pages.next().await? {
        if let Batch::Records(batch) = batch {
            records.extend(batch);
        }
    }
    Ok(Chain {
        records,
        rendered,
        capped: pages.capped(),
    })
}
