//! Merging by key (`merge_key`): the output keeps one row per key. This run's rows are held
//! in memory, keyed, in arrival order (memory grows with this run's rows, not the output's);
//! at the commit the old output is read row by row and written again into the new one — a row
//! whose key this run has is replaced in place, any other kept byte for byte — and the keys
//! the old output lacked are appended in arrival order. The new output goes in place as every
//! replace does (a temporary file renamed, an object under its generation precondition), so
//! any error leaves the old one exactly as it was.
//!
//! The formats meet the merge in two places: a reader of the old output ([`OldRows`]: each
//! row's key cells and its bytes) and [`Sink::write_encoded`] to write those bytes again. A
//! format is merged once it has both (CSV, TSV, NDJSON); `app::preflight` refuses the others.
//! A BigQuery table is merged by its own sink (a staging table and one `MERGE`), from the
//! rows deduplicated here.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;

use super::bigquery::BigQuerySink;
use super::{Destinations, Sink, SinkError, Written};
use crate::gcs::ObjectUrl;
use crate::plan::{Output, QueryPlan};
use crate::query::{CsvSettings, Format, Merge, MergeKeep};
use crate::records::{Column, ColumnSource, FieldPath, Row};

/// What a merge did, for the summary: rows of this run that were new keys (`added`), rows of
/// the old output replaced by this run's (`replaced`), and old rows kept as they were.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Merged {
    pub added: u64,
    pub replaced: u64,
    /// `None`: not known (a BigQuery table alone: its untouched rows are not counted).
    pub kept: Option<u64>,
}

impl Merged {
    /// The rows the merged file holds (`None`: a table alone).
    pub fn rows(&self) -> Option<u64> {
        self.kept.map(|kept| kept + self.added + self.replaced)
    }

    /// `3 added, 2 replaced, 40 kept` (for the run's line and the summary table).
    pub fn describe(&self) -> String {
        let kept = self
            .kept
            .map_or_else(String::new, |k| format!(", {k} kept"));
        format!("{} added, {} replaced{kept}", self.added, self.replaced)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{query}: merge_key: two rows of this run have the key {key} ({columns}); set `merge_keep = \"first\"` or `\"last\"` to say which one wins")]
    DuplicateKey {
        query: String,
        columns: String,
        key: String,
    },
    #[error("{query}: merge_key: a row of this run has no `{column}` (null or missing), so it has no key ({columns}: {key})")]
    MissingKey {
        query: String,
        column: String,
        columns: String,
        key: String,
    },
    #[error("{query}: merge_key: `{column}` is not one of the columns ({known})")]
    NoSuchColumn {
        query: String,
        column: String,
        known: String,
    },
    #[error("cannot merge into {}: its header is {old:?} but this query writes {new:?}; move the old file away to start it anew", .path.display())]
    Header {
        path: PathBuf,
        old: Vec<String>,
        new: Vec<String>,
    },
    #[error("cannot merge into {}: line {line} {why}; it was kept as it was", .path.display())]
    OldRow {
        path: PathBuf,
        line: u64,
        why: String,
    },
    #[error("cannot read {} to merge into it: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {} to merge into it: {source}", .path.display())]
    Object {
        path: PathBuf,
        #[source]
        source: Box<crate::gcs::StorageError>,
    },
    #[error("this output cannot be merged into")]
    Unsupported,
}

impl MergeError {
    /// What kind of failure this is: this run's rows (the API's answer) cannot be merged, or
    /// the old output cannot be read — both a failed query, exit 1.
    pub fn kind(&self) -> crate::error::Failure {
        use crate::error::Failure;
        match self {
            MergeError::DuplicateKey { .. } | MergeError::MissingKey { .. } => Failure::BadData,
            MergeError::NoSuchColumn { .. } => Failure::BadInput,
            MergeError::Object { source, .. } => source.kind(),
            MergeError::Header { .. }
            | MergeError::OldRow { .. }
            | MergeError::Read { .. }
            | MergeError::Unsupported => Failure::LocalIo,
        }
    }
}

/// The merging sink of `plan` (which has `merge_key`): its file and its table.
pub fn open(
    plan: &QueryPlan,
    merge: &Merge,
    csv_defaults: &CsvSettings,
    destinations: Destinations,
) -> Result<Box<dyn Sink>, SinkError> {
    let file = match &plan.output {
        Some(output) => {
            // The old output first: its generation is what the new one replaces.
            let old = OldSource::find(output)?;
            let sink = super::file_sink(plan, output, csv_defaults)?;
            let settings = plan.query.csv.or(csv_defaults);
            Some(FileMerge {
                target: output.path().to_owned(),
                old,
                sink,
                format: output.format.format,
                gzip: output.format.gzip,
                header: settings.header.unwrap_or(true),
                delimiter: (output.can().delimiter).unwrap_or(settings.delimiter.unwrap_or(b',')),
                raw: plan.query.columns.is_none(),
            })
        }
        None => None,
    };
    let loaded = (destinations.bigquery.as_ref()).map(|c| c.loaded.clone());
    let table = match &plan.query.bigquery {
        Some(target) => {
            let context = destinations
                .bigquery
                .ok_or(super::BigQueryError::NoEndpoint)?;
            Some(Box::new(BigQuerySink::new(plan, target.value.clone(), context)?) as Box<dyn Sink>)
        }
        None => None,
    };
    Ok(Box::new(MergeSink {
        query: plan.query.name.clone(),
        merge: merge.clone(),
        columns: Vec::new(),
        key_at: Vec::new(),
        rows: IndexMap::new(),
        file,
        table,
        loaded,
        merged: destinations.merged,
    }))
}

/// This run's rows by key, then the old output merged with them.
struct MergeSink {
    query: String,
    merge: Merge,
    columns: Vec<Column>,
    /// The index of each key column.
    key_at: Vec<usize>,
    rows: IndexMap<Vec<String>, Row>,
    file: Option<FileMerge>,
    table: Option<Box<dyn Sink>>,
    /// What the table's merge did (its inserted and updated rows).
    loaded: Option<Arc<OnceLock<super::bigquery::Loaded>>>,
    merged: Arc<OnceLock<Merged>>,
}

impl MergeSink {
    fn key_columns(&self) -> String {
        self.merge.key.join(", ")
    }
}

impl Sink for MergeSink {
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError> {
        let headers: Vec<&str> = columns.iter().map(|c| c.header.as_str()).collect();
        self.key_at = self
            .merge
            .key
            .iter()
            .map(|key| {
                headers
                    .iter()
                    .position(|h| h == key)
                    .ok_or_else(|| MergeError::NoSuchColumn {
                        query: self.query.clone(),
                        column: key.clone(),
                        known: headers.join(", "),
                    })
            })
            .collect::<Result<_, _>>()?;
        self.columns = columns.to_vec();
        if let Some(file) = &mut self.file {
            file.sink.begin(columns)?;
        }
        if let Some(table) = &mut self.table {
            table.begin(columns)?;
        }
        Ok(())
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        let cells: Vec<(usize, &str)> = row.cells().collect();
        let mut key = Vec::with_capacity(self.key_at.len());
        for (&at, name) in self.key_at.iter().zip(&self.merge.key) {
            match cells.iter().find(|(column, _)| *column == at) {
                Some((_, text)) => key.push((*text).to_owned()),
                None => {
                    let mut shown: Vec<String> = key.iter().map(|k| format!("{k:?}")).collect();
                    shown.push("null".to_owned());
                    return Err(MergeError::MissingKey {
                        query: self.query.clone(),
                        column: name.clone(),
                        columns: self.key_columns(),
                        key: crate::redact::quote(&shown.join(", ")).to_string(),
                    }
                    .into());
                }
            }
        }
        match (self.rows.get_index_of(&key), self.merge.keep) {
            (None, _) => {
                self.rows.insert(key, row.clone());
            }
            (Some(_), Some(MergeKeep::First)) => {}
            (Some(at), Some(MergeKeep::Last)) => self.rows[at] = row.clone(),
            (Some(_), None) => {
                let shown: Vec<String> = key.iter().map(|k| format!("{k:?}")).collect();
                return Err(MergeError::DuplicateKey {
                    query: self.query.clone(),
                    columns: self.key_columns(),
                    key: crate::redact::quote(&shown.join(", ")).to_string(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The table first (its job is atomic), then the file; what the file holds is the proof.
    fn commit(self: Box<Self>) -> Result<Written, SinkError> {
        let MergeSink {
            rows,
            file,
            table,
            merged,
            key_at,
            columns,
            loaded,
            ..
        } = *self;
        let mut proof = None;
        if let Some(mut table) = table {
            for row in rows.values() {
                table.write_row(row)?;
            }
            proof = Some(table.commit()?);
        }
        // Without a file, the table's counts (its untouched rows are not counted).
        let dml = loaded.and_then(|l| l.get().and_then(|l| l.merged));
        let (added, replaced) = dml.unwrap_or((rows.len() as u64, 0));
        let mut counts = Merged {
            added,
            replaced,
            kept: None,
        };
        if let Some(file) = file {
            let (written, file_counts) = file.merge(&rows, &key_at, &columns)?;
            counts = file_counts;
            proof = Some(written);
        }
        let _ = merged.set(counts);
        Ok(proof.unwrap_or(Written {
            bytes: 0,
            sha256: String::new(),
            object: None,
            formula_cells: 0,
        }))
    }
}

/// The old output of a file merge, as found when the export began.
enum OldSource {
    None,
    File,
    /// A Cloud Storage object at the generation the new one replaces.
    Object {
        url: ObjectUrl,
        generation: i64,
        size: u64,
    },
}

impl OldSource {
    fn find(output: &Output) -> Result<OldSource, SinkError> {
        let target = output.path();
        let Some(url) = output.object().cloned() else {
            return Ok(match target.exists() {
                true => OldSource::File,
                false => OldSource::None,
            });
        };
        let object_error = |source| MergeError::Object {
            path: target.to_owned(),
            source: Box::new(source),
        };
        let gcs = crate::gcs::io::get().map_err(object_error)?;
        let asked = url.clone();
        let meta = gcs
            .block(move |s| async move { s.meta(&asked).await })
            .map_err(object_error)?;
        Ok(match meta {
            Some(meta) => OldSource::Object {
                url,
                generation: meta.generation,
                size: meta.size,
            },
            None => OldSource::None,
        })
    }

    /// The old output's bytes, streamed (`None`: there is none).
    fn open(&self, target: &Path) -> Result<Option<Box<dyn Read>>, MergeError> {
        match self {
            OldSource::None => Ok(None),
            OldSource::File => match std::fs::File::open(target) {
                Ok(file) => Ok(Some(Box::new(file))),
                // Removed since the export began: nothing to keep.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(MergeError::Read {
                    path: target.to_owned(),
                    source,
                }),
            },
            OldSource::Object {
                url,
                generation,
                size,
            } => {
                let gcs = crate::gcs::io::get().map_err(|source| MergeError::Object {
                    path: target.to_owned(),
                    source: Box::new(source),
                })?;
                Ok(Some(Box::new(ObjectReader {
                    gcs,
                    url: url.clone(),
                    generation: *generation,
                    size: *size,
                    at: 0,
                    chunk: bytes::Bytes::new(),
                })))
            }
        }
    }
}

/// An object read a range at a time, at one generation (memory: one range).
struct ObjectReader {
    gcs: &'static crate::gcs::io::Gcs,
    url: ObjectUrl,
    generation: i64,
    size: u64,
    at: u64,
    chunk: bytes::Bytes,
}

/// The bytes of one ranged read of an old object.
const READ_CHUNK: u64 = 8 * 1024 * 1024;

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.chunk.is_empty() && self.at < self.size {
            let (url, generation, at) = (self.url.clone(), self.generation, self.at);
            let len = READ_CHUNK.min(self.size - at);
            let read = self
                .gcs
                .block(move |s| async move { s.read_range(&url, generation, at, len).await })
                .map_err(std::io::Error::other)?;
            self.chunk = read.ok_or_else(|| {
                std::io::Error::other(format!(
                    "generation {} was replaced while this run exported",
                    self.generation
                ))
            })?;
            if self.chunk.is_empty() {
                return Err(std::io::Error::other("the object ended early"));
            }
            self.at += self.chunk.len() as u64;
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

/// The file side of a merge: the new output's sink and how to read the old one.
struct FileMerge {
    target: PathBuf,
    old: OldSource,
    sink: Box<dyn Sink>,
    format: Format,
    gzip: bool,
    header: bool,
    delimiter: u8,
    /// NDJSON lines are the records as sent (no `columns`): keys are read by column path.
    raw: bool,
}

impl FileMerge {
    /// Writes the old rows (replaced in place, or kept), then the new keys, and commits.
    fn merge(
        mut self,
        rows: &IndexMap<Vec<String>, Row>,
        key_at: &[usize],
        columns: &[Column],
    ) -> Result<(Written, Merged), SinkError> {
        let mut used = vec![false; rows.len()];
        let mut counts = Merged {
            kept: Some(0),
            ..Merged::default()
        };
        if let Some(bytes) = self.old.open(&self.target)? {
            let bytes: Box<dyn Read> = match self.gzip {
                true => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
                false => bytes,
            };
            let mut old = self.old_rows(bytes, key_at, columns)?;
            while let Some(row) = old.next_row()? {
                let at = row.key.as_ref().and_then(|key| rows.get_index_of(key));
                match at {
                    Some(at) => {
                        // An old key held twice: the new row once, at the first's place.
                        // (The second is dropped: the output keeps one row per key.)
                        if !used[at] {
                            self.sink.write_row(&rows[at])?;
                            used[at] = true;
                            counts.replaced += 1;
                        }
                    }
                    None => {
                        self.sink.write_encoded(&row.encoded)?;
                        counts.kept = counts.kept.map(|k| k + 1);
                    }
                }
            }
        }
        for (row, used) in rows.values().zip(&used) {
            if !used {
                self.sink.write_row(row)?;
                counts.added += 1;
            }
        }
        Ok((self.sink.commit()?, counts))
    }

    fn old_rows(
        &self,
        bytes: Box<dyn Read>,
        key_at: &[usize],
        columns: &[Column],
    ) -> Result<Box<dyn OldRows>, MergeError> {
        let input = BufReader::with_capacity(256 * 1024, bytes);
        // (An exhaustive match: a format added later decides here how it is read back.)
        match self.format {
            Format::Csv | Format::Tsv => {
                let mut rows = CsvRows {
                    input,
                    path: self.target.clone(),
                    delimiter: self.delimiter,
                    key_at: key_at.to_vec(),
                    line: 0,
                    first: true,
                };
                if self.header {
                    rows.check_header(columns)?;
                }
                Ok(Box::new(rows))
            }
            Format::Ndjson => {
                let keys = key_at
                    .iter()
                    .map(|&at| {
                        let column = &columns[at];
                        match (&column.source, self.raw) {
                            (ColumnSource::Path(path), true) => path.clone(),
                            _ => FieldPath::key(&column.header),
                        }
                    })
                    .collect();
                Ok(Box::new(NdjsonRows {
                    input,
                    path: self.target.clone(),
                    keys,
                    line: 0,
                }))
            }
            // (Only a mergeable format is read back: `Abilities::mergeable`.)
            _ => Err(MergeError::Unsupported),
        }
    }
}

/// One row of the old output: its key (`None`: a key cell is missing, so no row of this run
/// replaces it) and its bytes, written again as they are.
pub struct OldRow {
    pub key: Option<Vec<String>>,
    pub encoded: Vec<u8>,
}

/// The old output's rows, one at a time (a format that merges reads itself back here).
pub trait OldRows {
    fn next_row(&mut self) -> Result<Option<OldRow>, MergeError>;
}

/// RFC 4180 records as gscrape writes them: a record ends at a line break outside quotes.
struct CsvRows {
    input: BufReader<Box<dyn Read>>,
    path: PathBuf,
    delimiter: u8,
    key_at: Vec<usize>,
    line: u64,
    first: bool,
}

impl CsvRows {
    /// The next record's bytes, its line end included (one added when the file lacks it).
    fn record(&mut self) -> Result<Option<Vec<u8>>, MergeError> {
        let mut bytes = Vec::new();
        loop {
            let read =
                self.input
                    .read_until(b'\n', &mut bytes)
                    .map_err(|source| MergeError::Read {
                        path: self.path.clone(),
                        source,
                    })?;
            self.line += 1;
            let quotes = bytes.iter().filter(|&&b| b == b'"').count();
            if read == 0 || quotes % 2 == 0 {
                break;
            }
        }
        if std::mem::take(&mut self.first) && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3);
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        if !bytes.ends_with(b"\n") {
            bytes.extend_from_slice(b"\r\n");
        }
        Ok(Some(bytes))
    }

    fn check_header(&mut self, columns: &[Column]) -> Result<(), MergeError> {
        let new: Vec<String> = columns.iter().map(|c| c.header.clone()).collect();
        let Some(record) = self.record()? else {
            return Ok(());
        };
        let old = self.fields(&record)?;
        match old == new {
            true => Ok(()),
            false => Err(MergeError::Header {
                path: self.path.clone(),
                old,
                new,
            }),
        }
    }

    /// The fields of one record, unquoted.
    fn fields(&self, record: &[u8]) -> Result<Vec<String>, MergeError> {
        let body = record
            .strip_suffix(b"\n")
            .map(|r| r.strip_suffix(b"\r").unwrap_or(r))
            .unwrap_or(record);
        let mut fields = Vec::new();
        let mut field = Vec::new();
        let (mut quoted, mut at) = (false, 0);
        while at < body.len() {
            let b = body[at];
            match (quoted, b) {
                (true, b'"') if body.get(at + 1) == Some(&b'"') => {
                    field.push(b'"');
                    at += 1;
                }
                (true, b'"') => quoted = false,
                (false, b'"') => quoted = true,
                (false, d) if d == self.delimiter => fields.push(std::mem::take(&mut field)),
                _ => field.push(b),
            }
            at += 1;
        }
        fields.push(field);
        fields
            .into_iter()
            .map(|f| {
                String::from_utf8(f).map_err(|_| MergeError::OldRow {
                    path: self.path.clone(),
                    line: self.line,
                    why: "is not UTF-8".to_owned(),
                })
            })
            .collect()
    }
}

impl OldRows for CsvRows {
    fn next_row(&mut self) -> Result<Option<OldRow>, MergeError> {
        let Some(encoded) = self.record()? else {
            return Ok(None);
        };
        let mut fields = self.fields(&encoded)?;
        let key = (self.key_at.iter())
            .map(|&at| fields.get_mut(at).map(std::mem::take))
            .collect();
        Ok(Some(OldRow { key, encoded }))
    }
}

/// NDJSON lines: each an object, its key read by name (or by path, for records as sent).
struct NdjsonRows {
    input: BufReader<Box<dyn Read>>,
    path: PathBuf,
    keys: Vec<FieldPath>,
    line: u64,
}

impl OldRows for NdjsonRows {
    fn next_row(&mut self) -> Result<Option<OldRow>, MergeError> {
        let mut encoded = Vec::new();
        let read = self
            .input
            .read_until(b'\n', &mut encoded)
            .map_err(|source| MergeError::Read {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        let value: serde_json::Value =
            serde_json::from_slice(&encoded).map_err(|err| MergeError::OldRow {
                path: self.path.clone(),
                line: self.line,
                why: format!("is not JSON ({err})"),
            })?;
        if !encoded.ends_with(b"\n") {
            encoded.push(b'\n');
        }
        let key = (self.keys.iter())
            .map(|path| path.lookup(&value).and_then(key_text))
            .collect();
        Ok(Some(OldRow { key, encoded }))
    }
}

/// A JSON value as its cell's text (a string unquoted, a number or boolean as written);
/// `None` for null.
fn key_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_rows(text: &str, key_at: Vec<usize>) -> CsvRows {
        let bytes: Box<dyn Read> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        CsvRows {
            input: BufReader::new(bytes),
            path: PathBuf::from("x.csv"),
            delimiter: b',',
            key_at,
            line: 0,
            first: true,
        }
    }

    #[test]
    fn csv_records_are_read_whole_with_their_bytes() {
        let mut rows = csv_rows(
            "\u{feff}a,b\r\n\"x,\"\"1\"\"\",\"two\r\nlines\"\r\nlast,row",
            vec![1, 0],
        );
        let columns = [
            Column::from_path(FieldPath::key("a")),
            Column::from_path(FieldPath::key("b")),
        ];
        rows.check_header(&columns).unwrap();
        let first = rows.next_row().unwrap().unwrap();
        assert_eq!(
            first.key,
            Some(vec!["two\r\nlines".to_owned(), "x,\"1\"".to_owned()])
        );
        assert_eq!(first.encoded, b"\"x,\"\"1\"\"\",\"two\r\nlines\"\r\n");
        let last = rows.next_row().unwrap().unwrap();
        assert_eq!(last.encoded, b"last,row\r\n", "a line end is added");
        assert!(rows.next_row().unwrap().is_none());
    }

    #[test]
    fn a_changed_header_is_not_merged_into() {
        let mut rows = csv_rows("a,c\r\n", vec![0]);
        let columns = [
            Column::from_path(FieldPath::key("a")),
            Column::from_path(FieldPath::key("b")),
        ];
        let err = rows.check_header(&columns).unwrap_err().to_string();
        assert!(err.contains("its header is [\"a\", \"c\"]"), "{err}");
    }
}
