//! The rows of one fan-out request chain on their way to the output. Chains run at once but
//! are written in the parent's order: the oldest chain (the head) writes straight through,
//! its fetching held back while the writer lags; each later chain keeps its first rows in
//! memory, up to [`MEMORY_BOUND`], and the rest in a spill file, replayed when its turn comes.
//! Memory stays bounded however many rows one chain returns, and the bytes written are those
//! an all-in-memory reorder would write.
//!
//! Spill files are anonymous (`tempfile::tempfile_in`): no name in any directory, gone when
//! closed, after a failure or a kill too.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::Notify;

use super::output::Output;
use super::QueryError;
use crate::plan::Lineage;
use crate::records::schema::ColumnType;
use crate::records::Row;

/// Rows a chain holds in memory (roughly, in bytes) before a later chain spills, or before
/// the head chain waits for the writer.
pub(super) const MEMORY_BOUND: usize = 256 * 1024;

/// What a record kept whole for a further fan-out is counted as in memory.
const RECORD_FOOTPRINT: usize = 512;

/// How a chain ended.
pub(super) struct ChainEnd {
    /// `max_pages` stopped it while the API had more.
    pub capped: bool,
    /// `on_missing = "skip"`: its first request found the item gone (404, 410); the URL of
    /// that request. It wrote no row.
    pub gone: Option<String>,
}

pub(super) struct Spool {
    state: Mutex<State>,
    /// Where a spill file goes.
    dir: PathBuf,
    /// Wakes the writer: rows came, or the chain ended.
    to_writer: Notify,
    /// Wakes the chain: the writer took rows, or wrote them all.
    to_chain: Notify,
}

#[derive(Default)]
struct State {
    /// Rows in memory, oldest first; before those in `spill` unless the chain is the head.
    rows: VecDeque<(Row, Option<Value>)>,
    bytes: usize,
    spill: Option<Spill>,
    /// The writer is writing this chain: no more spilling.
    head: bool,
    end: Option<Result<ChainEnd, QueryError>>,
    written: bool,
    /// What the chain's records carry to a further fan-out (set before its first row; not
    /// spilled: one for all its rows).
    lineage: Option<Arc<Lineage>>,
    /// The types a report's first page declared, until the writer hands them to the output.
    types: Option<Vec<ColumnType>>,
}

/// Rows past the memory bound of a chain that is not the head.
struct Spill {
    file: BufWriter<File>,
    rows: u64,
}

impl Spool {
    pub fn new(dir: PathBuf) -> Self {
        Spool {
            state: Mutex::default(),
            dir,
            to_writer: Notify::new(),
            to_chain: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The types a report's first page declares for its columns: the output takes them before
    /// the chain's rows, as a report that does not fan out does.
    pub fn set_types(&self, types: &[ColumnType]) {
        self.state().types = Some(types.to_vec());
    }

    /// Sets the lineage the chain's records carry to a further fan-out.
    pub fn set_lineage(&self, lineage: Arc<Lineage>) {
        self.state().lineage = Some(lineage);
    }

    /// Adds the row of the chain's next record (and the record, when a further fan-out reads
    /// it).
    pub fn push(&self, row: &Row, record: Option<Value>) -> Result<(), QueryError> {
        let footprint = row.footprint() + record.as_ref().map_or(0, |_| RECORD_FOOTPRINT);
        let mut state = self.state();
        let full = state.bytes + footprint > MEMORY_BOUND;
        if !state.head && (state.spill.is_some() || full) {
            if state.spill.is_none() {
                let file = tempfile::tempfile_in(&self.dir).map_err(|e| self.spill_error(e))?;
                tracing::debug!("a fan-out chain spills its rows past {MEMORY_BOUND} bytes");
                state.spill = Some(Spill {
                    file: BufWriter::new(file),
                    rows: 0,
                });
            }
            let spill = state.spill.as_mut().expect("made above");
            write_spilled(&mut spill.file, row, record.as_ref())
                .map_err(|e| self.spill_error(e))?;
            spill.rows += 1;
        } else {
            state.rows.push_back((row.clone(), record));
            state.bytes += footprint;
            drop(state);
            self.to_writer.notify_one();
        }
        Ok(())
    }

    /// Waits, when the chain is the head, until the writer has taken most of its rows.
    pub async fn room(&self) {
        loop {
            {
                let state = self.state();
                if !state.head || state.bytes <= MEMORY_BOUND {
                    return;
                }
            }
            self.to_chain.notified().await;
        }
    }

    /// Ends the chain, with how it ended.
    pub fn end(&self, end: Result<ChainEnd, QueryError>) {
        self.state().end = Some(end);
        self.to_writer.notify_one();
    }

    /// Waits until the writer has written every row of the chain.
    pub async fn written(&self) {
        while !self.state().written {
            self.to_chain.notified().await;
        }
    }

    /// Writes the chain's rows to `output` in order, as they come, until the chain ends.
    /// `Ok(None)`: `max_records` was reached before its last row.
    pub async fn write_into(
        &self,
        output: &mut Output<'_>,
    ) -> Result<Option<ChainEnd>, QueryError> {
        let (kept, spill) = {
            let mut state = self.state();
            state.head = true;
            state.bytes = 0;
            if let Some(lineage) = &state.lineage {
                output.set_lineage(lineage.clone());
            }
            if let Some(types) = state.types.take() {
                output.report_types(&types);
            }
            (std::mem::take(&mut state.rows), state.spill.take())
        };
        self.to_chain.notify_one();
        for (row, record) in kept {
            if !output.write_row(&row, record)? {
                return Ok(None);
            }
        }
        if let Some(spill) = spill {
            if !self.replay(spill, output)? {
                return Ok(None);
            }
        }
        output.feed_children().await;
        loop {
            let (rows, end) = {
                let mut state = self.state();
                state.bytes = 0;
                if let Some(lineage) = &state.lineage {
                    output.set_lineage(lineage.clone());
                }
                if let Some(types) = state.types.take() {
                    output.report_types(&types);
                }
                let rows = std::mem::take(&mut state.rows);
                let end = if rows.is_empty() {
                    state.end.take()
                } else {
                    None
                };
                (rows, end)
            };
            self.to_chain.notify_one();
            if rows.is_empty() {
                match end {
                    Some(end) => return end.map(Some),
                    None => self.to_writer.notified().await,
                }
                continue;
            }
            for (row, record) in rows {
                if !output.write_row(&row, record)? {
                    return Ok(None);
                }
            }
            output.feed_children().await;
        }
    }

    /// Says the chain's rows are written (its spot in the reorder window is free).
    pub fn mark_written(&self) {
        self.state().written = true;
        self.to_chain.notify_one();
    }

    /// Writes the spilled rows to `output`; false when `max_records` stopped it.
    fn replay(&self, spill: Spill, output: &mut Output<'_>) -> Result<bool, QueryError> {
        let mut file = spill
            .file
            .into_inner()
            .map_err(|e| self.spill_error(e.into_error()))?;
        file.rewind().map_err(|e| self.spill_error(e))?;
        let mut input = BufReader::with_capacity(256 * 1024, file);
        for _ in 0..spill.rows {
            let (row, record) = read_spilled(&mut input).map_err(|e| self.spill_error(e))?;
            if !output.write_row(&row, record)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn spill_error(&self, err: io::Error) -> QueryError {
        QueryError::Spill(format!(
            "cannot spill a fan-out chain's rows to a temporary file in {}: {err}",
            self.dir.display()
        ))
    }
}

/// No record follows the row.
const NO_RECORD: u32 = u32::MAX;

fn write_spilled(out: &mut impl Write, row: &Row, record: Option<&Value>) -> io::Result<()> {
    row.write_to(out)?;
    match record {
        None => out.write_all(&NO_RECORD.to_le_bytes()),
        Some(record) => {
            let json = serde_json::to_vec(record)?;
            out.write_all(&(json.len() as u32).to_le_bytes())?;
            out.write_all(&json)
        }
    }
}

fn read_spilled(input: &mut impl Read) -> io::Result<(Row, Option<Value>)> {
    let row = Row::read_from(input)?;
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let record = match u32::from_le_bytes(len) {
        NO_RECORD => None,
        len => {
            let mut json = vec![0; len as usize];
            input.read_exact(&mut json)?;
            Some(serde_json::from_slice(&json)?)
        }
    };
    Ok((row, record))
}
