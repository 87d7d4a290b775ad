//! Fan-out: a query that runs once per record of its parent (`for_each`), with the parent's
//! record in its templates. Parent records arrive while the parent is still paging; up to
//! `concurrency` request chains run at once, and their rows are written in the parent's
//! order, so the output is the same on every run. The oldest chain writes straight through;
//! later ones wait in a [`Spool`] each, in memory up to a bound and then in a spill file.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::output::{rows_error, Output};
use super::pages::{Fetched, Pages};
use super::resume::{Checkpointer, ParentsDone};
use super::spool::{ChainEnd, Spool};
use super::{page_reader, render_columns, Feed, Job, QueryError, Shared, Stop};
use crate::api::{Accepts, ApiError, Call};
use crate::counters::Counters;
use crate::plan::{Ancestry, Lineage};
use crate::query::OnMissing;
use crate::records::{FieldPath, PageReader};
use crate::run::resume::store::Position;
use crate::sink::hex;

/// Chains that may wait for an earlier one to be written, per running chain.
const REORDER_ROOM: usize = 4;

/// Runs a fan-out: a request chain per parent record as `feed` hands them, written in parent
/// order, going on after the parents `resume` says are done.
pub(super) async fn run(
    job: &Job,
    feed: mpsc::Receiver<Feed>,
    output: &mut Output<'_>,
    resume: Option<ParentsDone>,
    mut checkpoints: Option<&mut Checkpointer>,
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
    // Once the parent has finished (its end of the feed dropped), the records still in the
    // feed tell the total, for the progress line (a shard's are known only at the end: it
    // takes some of them).
    let totals = (job.shard.is_none()).then(|| counters.clone());
    let feed = futures_util::stream::unfold(Some((feed, 0u64)), move |state| {
        let totals = totals.clone();
        async move {
            let (mut feed, received) = state?;
            let item = feed.recv().await;
            if let Some(counters) = totals.as_ref().filter(|_| feed.is_closed()) {
                // The records still in the feed (`Done` is its last message).
                let left = (feed.len() as u64).saturating_sub(1);
                let total = match &item {
                    Some(Feed::Record(..)) => received + 1 + left,
                    _ => received,
                };
                counters.parents_total(total);
            }
            match item {
                Some(Feed::Record(record, lineage)) => {
                    Some((Some(Ok((record, lineage))), Some((feed, received + 1))))
                }
                Some(Feed::Done) => Some((None, None)),
                None => Some((Some(Err(())), None)),
            }
        }
    });
    // Each record with the hash of the records up to it; those a checkpoint has written are
    // skipped (and checked).
    let skipped = resume.as_ref().map_or(0, |done| done.count);
    let reads = parent_reads(job, parent, shared);
    // A sharded run's first fan-out level takes only the records that hash to its shard
    // (`crate::shard`), by the same fields its checkpoint hashes; the log sees only those.
    let dealt = job.shard.map(|shard| (shard, reads.clone()));
    let mut log = ParentLog::new(parent, reads, resume, checkpoints.is_some());
    log.ancestor_reads = ancestor_reads(job, shared);
    let counted = counters.clone();
    let records = feed
        .filter(move |item| {
            std::future::ready(match (&dealt, item) {
                (Some((shard, reads)), Some(Ok((record, _)))) => {
                    shard.owns(record, reads.as_deref())
                }
                _ => true,
            })
        })
        .inspect(move |item| match item {
            Some(Ok(_)) => counted.parent_seen(),
            None => counted.parents_all(),
            Some(Err(())) => {}
        })
        .filter_map(move |item| std::future::ready(log.next(item)));
    let reader = page_reader(plan, output.feeds_children());
    let spill_dir = spill_dir(job);
    // Each chain's spool, in the parent's order, for the writer.
    let (spools_in, mut spools) = mpsc::unbounded_channel::<(Arc<Spool>, Option<Sha256>)>();
    // `width` chains run at once; finished ones may wait for an earlier one to be written
    // without holding a running slot, so one slow chain does not stall the others. A chain
    // leaves the window once written.
    let running = tokio::sync::Semaphore::new(width);
    let running = &running;
    let reader = &reader;
    let accepts = &Arc::new(Accepts::of(&plan.method));
    let chains = records
        .map(move |record| {
            let spool = Arc::new(Spool::new(spill_dir.clone()));
            let (record, digest) = match record {
                Ok((above, digest)) => (Ok(above), digest),
                Err(err) => (Err(err), None),
            };
            let _ = spools_in.send((spool.clone(), digest));
            async move {
                let end = async {
                    let record = record?;
                    let _slot = running
                        .acquire()
                        .await
                        .map_err(|e| QueryError::Task(e.to_string()))?;
                    chain(job, record, reader, accepts, &spool, counters, shared).await
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
        let mut done = skipped;
        counters.parents_done(skipped);
        while let Some((spool, digest)) = spools.recv().await {
            let end = spool.write_into(output).await?;
            spool.mark_written();
            let Some(end) = end else {
                return Ok(Stop::MaxRecords(output.written()));
            };
            capped |= end.capped;
            if let Some(url) = end.gone {
                tracing::info!(
                    "{}: {url} is gone (on_missing = \"skip\"): skipped",
                    plan.query.name
                );
                output.skip_gone(url);
            }
            done += 1;
            counters.parents_done(1);
            // Noted only when it is due to be written: marking flushes the output, and a
            // chain may be a single row.
            let due = checkpoints.as_deref_mut().filter(|c| c.due());
            if let (Some(checkpoints), Some(digest)) = (due, digest) {
                let at = Position::Parents {
                    done,
                    sha256: hex(&digest.finalize()),
                };
                checkpoints.save(output, at)?;
            }
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

/// The parent records as they arrive: each with the hash of all up to it (for a child that is
/// checkpointed), those a checkpoint has written skipped, and the parent checked to hand the
/// same ones again.
struct ParentLog<'a> {
    parent: &'a str,
    /// The fields of a parent record the child's templates read (`None`: the record whole).
    reads: Option<Vec<FieldPath>>,
    /// The fields of each query above the parent that the child's templates read (only the
    /// queries it reads), by query name; `None`: the record whole.
    ancestor_reads: Vec<(String, Option<Vec<FieldPath>>)>,
    /// `None` when the child is not checkpointed: nothing is hashed.
    hash: Option<Sha256>,
    seen: u64,
    resume: Option<ParentsDone>,
}

impl<'a> ParentLog<'a> {
    fn new(
        parent: &'a str,
        reads: Option<Vec<FieldPath>>,
        resume: Option<ParentsDone>,
        hashing: bool,
    ) -> Self {
        ParentLog {
            parent,
            reads,
            ancestor_reads: Vec::new(),
            hash: (hashing || resume.is_some()).then(Sha256::new),
            seen: 0,
            resume,
        }
    }

    /// What becomes of one item of the feed (`None`: the parent finished): the ancestry of
    /// the child's chain for it (the parent's record with its computed columns, below the
    /// records above the parent's chain).
    fn next(
        &mut self,
        item: Option<Result<(Value, Arc<Lineage>), ()>>,
    ) -> Option<Result<(Ancestry, Option<Sha256>), QueryError>> {
        let skip = self.resume.as_ref().map_or(0, |done| done.count);
        let above = match item {
            Some(Ok((record, lineage))) => lineage.child(self.parent, record),
            Some(Err(())) => return Some(Err(QueryError::ParentFailed(self.parent.to_owned()))),
            None if self.seen < skip => return Some(Err(self.changed())),
            None => return None,
        };
        if let Some(hash) = &mut self.hash {
            // Only what the child reads: a field it does not read may change between runs (a
            // modified time) without changing the export. The parent's first, then (when the
            // child reads them) the records above it, each in the same way.
            let parent = above.parent().unwrap_or(&Value::Null);
            hash_reads(hash, parent, self.reads.as_deref());
            for (name, reads) in &self.ancestor_reads {
                hash.update(name.as_bytes());
                hash.update(b"\t");
                let record = above.get(name).unwrap_or(&Value::Null);
                hash_reads(hash, record, reads.as_deref());
            }
            hash.update(b"\n");
        }
        self.seen += 1;
        if self.seen < skip {
            return None;
        }
        if self.seen == skip {
            let digest = self.hash.clone().map(|hash| hex(&hash.finalize()));
            let same = self
                .resume
                .as_ref()
                .is_some_and(|done| Some(&done.sha256) == digest.as_ref());
            return (!same).then(|| Err(self.changed()));
        }
        Some(Ok((above, self.hash.clone())))
    }

    fn changed(&self) -> QueryError {
        let done = self.resume.as_ref().map_or(0, |done| done.count);
        QueryError::ParentChanged {
            parent: self.parent.to_owned(),
            done,
        }
    }
}

/// Hashes the fields `reads` of `record` (`None`: the record whole).
fn hash_reads(hash: &mut Sha256, record: &Value, reads: Option<&[FieldPath]>) {
    match reads {
        None => {
            let _ = serde_json::to_writer(HashWriter(hash), record);
        }
        Some(paths) => {
            for path in paths {
                let value = path.lookup(record).unwrap_or(&Value::Null);
                let _ = serde_json::to_writer(HashWriter(hash), value);
                hash.update(b"\t");
            }
        }
    }
}

/// The fields of `parent`'s records that `job`'s templates read; `None` when one reads the
/// record whole (or a path that does not parse).
fn parent_reads(job: &Job, parent: &str, shared: &Shared) -> Option<Vec<FieldPath>> {
    let paths = read_paths(job, parent, shared);
    if paths.iter().any(String::is_empty) {
        return None;
    }
    paths.iter().map(|p| FieldPath::parse(p).ok()).collect()
}

/// The fields `job`'s templates read of the records above its parent, for each query above
/// that they read (as [`parent_reads`]).
fn ancestor_reads(job: &Job, shared: &Shared) -> Vec<(String, Option<Vec<FieldPath>>)> {
    job.plan
        .query
        .ancestors
        .iter()
        .filter(|name| !read_paths(job, name, shared).is_empty())
        .map(|name| (name.clone(), parent_reads(job, name, shared)))
        .collect()
}

/// The paths `job`'s templates read of the variable `root`, sorted, once each.
fn read_paths(job: &Job, root: &str, shared: &Shared) -> Vec<String> {
    let mut paths: Vec<String> = job
        .plan
        .templates()
        .into_iter()
        .flat_map(|text| shared.templates.reads(text, root))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Feeds what is written to a hash (a record serialized straight into it).
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a chain's spill file goes: beside the output, or the system's temporary directory
/// for `output = false`.
fn spill_dir(job: &Job) -> PathBuf {
    job.plan
        .output
        .as_ref()
        .and_then(|output| output.path().parent().map(PathBuf::from))
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

/// One request chain of the child, for one parent record (and acting as the subject it names,
/// when the query's `subject` is a template), its rows into `spool`. Its templates read the
/// records `above` it.
async fn chain(
    job: &Job,
    above: Ancestry,
    reader: &Arc<PageReader>,
    accepts: &Arc<Accepts>,
    spool: &Spool,
    counters: &Arc<Counters>,
    shared: &Shared,
) -> Result<ChainEnd, QueryError> {
    let plan = &job.plan;
    let context = plan.context(Some(&above));
    let request = plan
        .request
        .render(&|text| shared.templates.render(text, &context))
        .map_err(QueryError::Template)?;
    let call = Call {
        auth: job.auth.for_chain(&shared.templates, &context)?,
        api: Arc::from(plan.query.api.as_str()),
        counters: counters.clone(),
        accepts: accepts.clone(),
        quota: super::quota_tag(plan, &request, shared),
    };
    let rendered = render_columns(plan, &shared.templates, &context)?;
    // What its records carry to a fan-out below it.
    spool.set_lineage(Arc::new(Lineage {
        computed: plan.computed(&rendered),
        above,
    }));
    let url = request.url.clone();
    let mut pages = Pages::new(plan, request, None, &shared.api, call, reader.clone());
    let mut typed = false;
    loop {
        let Fetched { body, page, .. } = match pages.next().await {
            Ok(Some(fetched)) => fetched,
            Ok(None) => break,
            // Only the first request: a chain gone mid-way has written rows already.
            Err(QueryError::Api(err)) if pages.fetched() == 0 && is_gone(&err) => {
                return match plan.query.on_missing {
                    OnMissing::Skip => Ok(ChainEnd {
                        capped: false,
                        gone: Some(url),
                    }),
                    OnMissing::Fail => Err(QueryError::Gone(err)),
                };
            }
            Err(err) => return Err(err),
        };
        if let (false, Some(types)) = (std::mem::replace(&mut typed, true), pages.types()) {
            spool.set_types(types);
        }
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
        gone: None,
    })
}

/// True when `err` says a parent record's item is gone: HTTP 404 or 410.
fn is_gone(err: &ApiError) -> bool {
    matches!(err, ApiError::Status { status, .. } if matches!(status.as_u16(), 404 | 410))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A parent record as the feed hands it, from a root query without computed columns.
    fn fed(record: &Value) -> Option<Result<(Value, Arc<Lineage>), ()>> {
        Some(Ok((record.clone(), Arc::default())))
    }

    /// The digests a log gives `records` (reading `reads` of each).
    fn digests(reads: Option<Vec<FieldPath>>, records: &[Value]) -> Vec<String> {
        let mut log = ParentLog::new("users", reads, None, true);
        records
            .iter()
            .map(|r| match log.next(fed(r)) {
                Some(Ok((_, Some(hash)))) => hex(&hash.finalize()),
                _ => panic!("a record was not passed on"),
            })
            .collect()
    }

    #[test]
    fn a_parent_is_the_same_when_the_fields_its_child_reads_are() {
        let reads = || Some(vec![FieldPath::parse("primaryEmail").unwrap()]);
        let day1 = [json!({"primaryEmail": "a@x", "lastLoginTime": "1"})];
        let day2 = [json!({"primaryEmail": "a@x", "lastLoginTime": "2"})];
        let other = [json!({"primaryEmail": "b@x", "lastLoginTime": "1"})];
        assert_eq!(digests(reads(), &day1), digests(reads(), &day2));
        assert_ne!(digests(reads(), &day1), digests(reads(), &other));
        // A child that reads the record whole sees every field.
        assert_ne!(digests(None, &day1), digests(None, &day2));
    }

    #[test]
    fn a_grandchild_s_parents_are_the_same_when_what_it_reads_above_them_is() {
        // `messages` below `ids` below `users`, reading `ids.id` and `users.primaryEmail`.
        let digest = |user: Value| {
            let mut log = ParentLog::new(
                "ids",
                Some(vec![FieldPath::parse("id").unwrap()]),
                None,
                true,
            );
            log.ancestor_reads = vec![(
                "users".to_owned(),
                Some(vec![FieldPath::parse("primaryEmail").unwrap()]),
            )];
            let lineage = Lineage {
                above: Lineage::default().child("users", user),
                computed: Vec::new(),
            };
            match log.next(Some(Ok((json!({"id": "m1"}), Arc::new(lineage))))) {
                Some(Ok((above, Some(hash)))) => {
                    assert_eq!(above.get("ids"), Some(&json!({"id": "m1"})));
                    hex(&hash.finalize())
                }
                _ => panic!("the record was not passed on"),
            }
        };
        let day1 = digest(json!({"primaryEmail": "a@x", "lastLoginTime": "1"}));
        let day2 = digest(json!({"primaryEmail": "a@x", "lastLoginTime": "2"}));
        let other = digest(json!({"primaryEmail": "b@x", "lastLoginTime": "1"}));
        assert_eq!(day1, day2);
        assert_ne!(day1, other, "another user above: other messages");
    }

    #[test]
    fn a_resumed_log_skips_the_records_done_and_checks_them() {
        let records = [json!({"id": 1}), json!({"id": 2}), json!({"id": 3})];
        let done = digests(None, &records[..2]).pop().unwrap();
        let mut log = ParentLog::new(
            "ids",
            None,
            Some(ParentsDone {
                count: 2,
                sha256: done.clone(),
            }),
            true,
        );
        assert!(log.next(fed(&records[0])).is_none());
        assert!(log.next(fed(&records[1])).is_none());
        assert!(
            matches!(log.next(fed(&records[2])), Some(Ok((above, _))) if above.parent() == Some(&records[2]))
        );
        assert!(log.next(None).is_none());

        // Another second record: the parent changed.
        let mut log = ParentLog::new(
            "ids",
            None,
            Some(ParentsDone {
                count: 2,
                sha256: done,
            }),
            true,
        );
        assert!(log.next(fed(&records[0])).is_none());
        let changed = log.next(fed(&json!({"id": 9})));
        assert!(matches!(
            changed,
            Some(Err(QueryError::ParentChanged { done: 2, .. }))
        ));
    }
}
