//! Fan-out: a query that runs once per record of its parent (`for_each`), with the parent's
//! record in its templates. Parent records arrive while the parent is still paging; up to
//! `concurrency` request chains run at once, and their rows are written in the parent's
//! order, so the output is the same on every run. The oldest chain writes straight through;
//! later ones wait in a [`Spool`] each, in memory up to a bound and then in a spill file.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::output::{rows_error, Output};
use super::pages::{Fetched, Pages};
use super::spool::{ChainEnd, Spool};
use super::{page_reader, render_columns, Feed, Job, QueryError, Shared, Stop};
use crate::api::Call;
use crate::counters::Counters;
use crate::records::PageReader;

/// Chains that may wait for an earlier one to be written, per running chain.
const REORDER_ROOM: usize = 4;

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
    let reader = page_reader(plan, output.feeds_children());
    let spill_dir = spill_dir(job, shared);
    // Each chain's spool, in the parent's order, for the writer.
    let (spools_in, mut spools) = mpsc::unbounded_channel::<Arc<Spool>>();
    // `width` chains run at once; finished ones may wait for an earlier one to be written
    // without holding a running slot, so one slow chain does not stall the others. A chain
    // leaves the window once written.
    let running = tokio::sync::Semaphore::new(width);
    let running = &running;
    let reader = &reader;
    let chains = records
        .map(move |record| {
            let spool = Arc::new(Spool::new(spill_dir.clone()));
            let _ = spools_in.send(spool.clone());
            async move {
                let end = async {
                    let record =
                        record.map_err(|()| QueryError::ParentFailed(parent.to_owned()))?;
                    let _slot = running
                        .acquire()
                        .await
                        .map_err(|e| QueryError::Task(e.to_string()))?;
                    chain(job, record, reader, &spool, counters, shared).await
                }
                .await;
                spool.end(end);
                spool.written().await;
            }
        })
        .buffered(width.saturating_mul(REORDER_ROOM))
        .for_each(|()| async {});
    // Done, it drops the stream and with it the spools' sender: the writer's loop then ends.
    let chains = async move {
        chains.await;
    };
    let write = async {
        let mut capped = false;
        while let Some(spool) = spools.recv().await {
            let end = spool.write_into(output).await?;
            spool.mark_written();
            let Some(end) = end else {
                return Ok(Stop::MaxRecords(output.written()));
            };
            capped |= end.capped;
            if output.is_full() && spools.recv().await.is_some() {
                return Ok(Stop::MaxRecords(output.written()));
            }
        }
        Ok(match (capped, plan.query.max_pages) {
            (true, Some(max)) => Stop::MaxPages(max),
            _ => Stop::Complete,
        })
    };
    let mut write = std::pin::pin!(write);
    let mut chains = std::pin::pin!(chains);
    let mut chains_done = false;
    loop {
        tokio::select! {
            stop = &mut write => return stop,
            () = &mut chains, if !chains_done => chains_done = true,
        }
    }
}

/// Where a chain's spill file goes: beside the output, or the system's temporary directory
/// for `output = false`.
fn spill_dir(job: &Job, shared: &Shared) -> PathBuf {
    job.plan
        .output
        .as_ref()
        .and_then(|file| {
            shared
                .options
                .out_dir
                .join(file)
                .parent()
                .map(PathBuf::from)
        })
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

/// One request chain of the child, for one parent record (and acting as the subject it names,
/// when the query's `subject` is a template), its rows into `spool`.
async fn chain(
    job: &Job,
    record: Value,
    reader: &Arc<PageReader>,
    spool: &Spool,
    counters: &Arc<Counters>,
    shared: &Shared,
) -> Result<ChainEnd, QueryError> {
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
    let mut pages = Pages::new(plan, request, None, &shared.api, call, reader.clone());
    while let Some(Fetched { body, page, .. }) = pages.next().await? {
        reader
            .rows(
                body.text()?,
                page,
                &plan.columns,
                &rendered,
                |row, record| spool.push(row, record).map(|()| true),
            )
            .map_err(|stopped| rows_error(&body, stopped))?;
        spool.room().await;
    }
    Ok(ChainEnd {
        capped: pages.capped(),
    })
}
