//! Checkpoints and `--resume` for one query's export ([`crate::checkpoint`] keeps the files):
//! whether the export is taken up where a checkpoint left it, and a checkpoint after each page.
//! Only a plain file export whose records feed no fan-out is checkpointed: a parent taken up
//! mid-way would not hand its children the records of the pages it skips.

use std::path::PathBuf;

use super::output::Output;
use super::Shared;
use crate::api::RequestSpec;
use crate::checkpoint::{fingerprint, Checkpoint, Position, Store};
use crate::plan::QueryPlan;
use crate::sink::{self, Mark, Sink};

/// The checkpoints of one export.
pub(super) struct Checkpointer {
    store: Store,
    query: String,
    target: PathBuf,
    fingerprint: String,
    /// Off once a checkpoint could not be written (said once).
    on: bool,
}

/// Where an export starts.
pub(super) enum Start {
    Fresh,
    /// From a checkpoint, with its file's sink opened where it left off.
    Resumed(Box<Checkpoint>, Box<dyn Sink>),
}

impl Checkpointer {
    /// For `plan`'s export, whose first request is `first` (`None` for a fan-out, whose
    /// requests are rendered per parent record); `None` when it cannot be taken up again (not
    /// a plain file, or its records feed a fan-out).
    pub fn for_plan(
        plan: &QueryPlan,
        first: Option<&RequestSpec>,
        feeds_children: bool,
        shared: &Shared,
    ) -> Option<Self> {
        if !sink::resumable(plan) || feeds_children {
            return None;
        }
        let out_dir = &shared.options.out_dir;
        let target = out_dir.join(plan.output.as_ref()?);
        let q = &plan.query;
        let csv = q.csv.or(&shared.options.csv);
        let fingerprint = fingerprint(&[
            &q.name,
            &first.ok_or(&plan.request),
            &plan.columns,
            &plan.format,
            &csv,
            &target,
            &(q.max_records, q.max_pages),
            &q.filter.as_ref().map(|f| &f.value),
            &q.explode.as_ref().map(|e| &e.value),
        ]);
        Some(Checkpointer {
            store: Store::new(out_dir),
            query: q.name.clone(),
            target,
            fingerprint,
            on: true,
        })
    }

    /// Where the export starts: with `resume` (`--resume`), from the checkpoint it left when
    /// that matches this export and its file; otherwise fresh, any checkpoint discarded (with
    /// a line saying why, when `--resume` asked for it).
    pub fn start(&self, plan: &QueryPlan, shared: &Shared) -> Start {
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
            let mark = Mark {
                temp: checkpoint.temp.clone(),
                bytes: checkpoint.bytes,
                sha256: checkpoint.sha256.clone(),
            };
            let sink = sink::resume(plan, &shared.options.out_dir, &shared.options.csv, &mark)?;
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
    pub fn starting_over(&self, why: &str) {
        crate::say!("{}: starting over: {why}", self.query);
        self.drop_checkpoint();
    }

    /// Saves where the export stands once a page (or a parent record's chain) is in its file.
    /// A checkpoint that cannot be written is said once; the export goes on without.
    pub fn save(&mut self, output: &mut Output<'_>, at: Position) -> Result<(), super::QueryError> {
        if !self.on {
            return Ok(());
        }
        let Some(mark) = output.mark()? else {
            self.on = false;
            return Ok(());
        };
        let checkpoint = Checkpoint {
            version: crate::checkpoint::VERSION,
            query: self.query.clone(),
            request: self.fingerprint.clone(),
            target: self.target.clone(),
            temp: mark.temp,
            bytes: mark.bytes,
            sha256: mark.sha256,
            rows: output.written(),
            at,
            newest: output.newest_cursor(),
        };
        if let Err(err) = self.store.save(&checkpoint) {
            tracing::warn!(
                "{}: cannot write its checkpoint ({err}); it goes on without, and would start over if stopped",
                self.query
            );
            self.on = false;
        }
        Ok(())
    }

    /// Forgets the checkpoint and its file (an export that cannot go on from it).
    pub fn drop_checkpoint(&self) {
        self.store.discard(&self.query, &self.target);
    }

    /// Forgets the checkpoint of the export now finished.
    pub fn finished(&self) {
        self.store.finished(&self.query, &self.target);
    }

    /// True when the export left a checkpoint to resume from.
    pub fn left(&self) -> bool {
        self.store.exists(&self.query, &self.target)
    }
}
