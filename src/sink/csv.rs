//! The CSV (or TSV) file of one query: RFC 4180 through the csv crate, written row by row into
//! a [`Stream`] (a temporary file beside the target, renamed over it only when the export is
//! complete; gzip-compressed for `.gz`; or standard output). A failed or interrupted export
//! leaves the previous file untouched and no partial file — also when appending: the old file
//! is copied, the copy appended to, and the copy renamed.
//!
//! The options that make a file open cleanly in a spreadsheet live here too: delimiter, BOM,
//! the formula guard (`excel_safe`), no header.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::file::{Mark, Stream, Written};
use super::{Sink, SinkError};
use crate::plan::Output;
use crate::records::{Column, Row};

/// The UTF-8 byte order mark: tells Excel the file is UTF-8.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Rows are encoded into a buffer written out when it holds this much.
const WRITE_AT: usize = 256 * 1024;

/// How the CSV is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    pub delimiter: u8,
    /// Start a new file with a UTF-8 BOM (for Excel).
    pub bom: bool,
    /// Cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) get
    /// a leading `'`; numbers are left alone.
    pub excel_safe: bool,
    /// Add to the existing file instead of replacing it (header only when it is new or empty).
    pub append: bool,
    /// Write a header row.
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            bom: false,
            excel_safe: false,
            append: false,
            header: true,
        }
    }
}

/// An export in progress. Dropping it without [`Sink::commit`] deletes the temporary file.
///
/// Rows are encoded here rather than field by field through `csv::Writer`: a run of absent
/// cells is a run of delimiters, and a present cell is copied as it is unless csv-core (the
/// csv crate's own rules) says it needs quotes. The bytes are the csv crate's: RFC 4180,
/// quotes only where needed, `""` for a line that would otherwise be empty, CRLF.
pub struct CsvSink {
    stream: Stream,
    options: CsvOptions,
    /// Decides which fields need quotes (nothing is written through it).
    quoting: csv_core::Writer,
    /// The null text as a field, written for each absent cell.
    null_field: Vec<u8>,
    /// The encoded rows not yet written to `file`.
    out: Vec<u8>,
    columns: usize,
    /// Taken up from a checkpoint: what `begin` writes is in the file already.
    resumed: bool,
    /// Without `excel_safe`: the cells written that a spreadsheet would run as a formula.
    formulas: u64,
}

impl CsvSink {
    /// Starts an export to `output` (a file's directory is created), gzip-compressed when its
    /// name says so. `null` is the text of an absent cell.
    pub fn create(output: &Output, options: &CsvOptions, null: &str) -> Result<Self, SinkError> {
        Ok(Self::on(Stream::create(output)?, options, null, false))
    }

    /// Takes up the export to `target` a checkpoint left at `mark` (its header, or the file it
    /// appends to, is written already); why not, otherwise.
    pub fn resume(
        output: &Output,
        options: &CsvOptions,
        null: &str,
        mark: &Mark,
    ) -> Result<Self, String> {
        Ok(Self::on(Stream::resume(output, mark)?, options, null, true))
    }

    fn on(stream: Stream, options: &CsvOptions, null: &str, resumed: bool) -> Self {
        let quoting = csv_core::WriterBuilder::new()
            .delimiter(options.delimiter)
            .terminator(csv_core::Terminator::CRLF)
            .build();
        let mut sink = CsvSink {
            stream,
            options: options.clone(),
            quoting,
            null_field: Vec::new(),
            out: Vec::with_capacity(WRITE_AT + 64 * 1024),
            columns: 0,
            resumed,
            formulas: 0,
        };
        encode_field(
            &mut sink.null_field,
            &sink.quoting,
            options.excel_safe,
            null,
        );
        sink
    }

    /// Appends one line of `self.columns` cells: those of `cells`, absent ones between them.
    fn encode_line<'a>(&mut self, cells: impl Iterator<Item = (usize, &'a str)>) {
        let (quoting, excel_safe) = (&self.quoting, self.options.excel_safe);
        let (delimiter, null) = (self.options.delimiter, &self.null_field[..]);
        let out = &mut self.out;
        let start = out.len();
        let mut next = 0;
        for (column, text) in cells {
            encode_absent(out, delimiter, null, next, column);
            if column > 0 {
                out.push(delimiter);
            }
            encode_field(out, quoting, excel_safe, text);
            // (The first byte decides for nearly every cell: the count costs no parse.)
            if !excel_safe && needs_guard(text) {
                self.formulas += 1;
            }
            next = column + 1;
        }
        encode_absent(out, delimiter, null, next, self.columns);
        if out.len() == start {
            // An empty line would read as no record: the csv crate writes one empty field.
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Writes out the encoded rows once enough are buffered (`all`: every one).
    fn write_out(&mut self, all: bool) -> Result<(), SinkError> {
        if self.out.len() >= WRITE_AT || (all && !self.out.is_empty()) {
            self.stream.put(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }
}

impl Sink for CsvSink {
    /// Checks the header of a file appended to and copies it, or starts a new file (BOM,
    /// header row).
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError> {
        let target = self.stream.target().to_owned();
        let create = |source| SinkError::Create {
            path: target.clone(),
            source,
        };
        let header: Vec<&str> = columns.iter().map(|c| c.header.as_str()).collect();
        self.columns = columns.len();
        if self.resumed {
            return Ok(());
        }
        let existing = if self.options.append {
            existing_content(&target).map_err(create)?
        } else {
            None
        };
        let fresh = existing.is_none();
        if let Some(mut old) = existing {
            if self.options.header {
                check_header(&target, &mut old, &header, self.options.delimiter)?;
            }
            old.seek(SeekFrom::Start(0)).map_err(create)?;
            std::io::copy(&mut old, &mut self.stream).map_err(create)?;
            if !ends_line(&mut old).map_err(create)? {
                self.stream.put(b"\r\n")?;
            }
        } else if self.options.bom {
            self.stream.put(BOM)?;
        }
        if fresh && self.options.header {
            let null = std::mem::take(&mut self.null_field);
            // (Every header cell is present: an empty name is an empty cell, not the null text.)
            self.encode_line(header.iter().copied().enumerate());
            self.null_field = null;
        }
        Ok(())
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        self.encode_line(row.cells());
        self.write_out(false)
    }

    fn write_encoded(&mut self, line: &[u8]) -> Result<(), SinkError> {
        self.out.extend_from_slice(line);
        self.write_out(false)
    }

    fn checkpoint(&mut self) -> Result<Option<Mark>, SinkError> {
        self.write_out(true)?;
        self.stream.mark()
    }

    /// Writes out, syncs and renames the temporary file over the target.
    fn commit(mut self: Box<Self>) -> Result<Written, SinkError> {
        self.write_out(true)?;
        let written = self.stream.finish()?;
        Ok(Written {
            formula_cells: self.formulas,
            ..written
        })
    }
}

/// Appends `cell` to `out` as one field: guarded against formulas when asked (`excel_safe`),
/// quoted when csv-core says it needs quotes.
fn encode_field(out: &mut Vec<u8>, quoting: &csv_core::Writer, excel_safe: bool, cell: &str) {
    let guard = excel_safe && needs_guard(cell);
    let quote = quoting.should_quote(cell.as_bytes()) || (guard && quoting.should_quote(b"'"));
    if quote {
        out.push(b'"');
    }
    if guard {
        out.push(b'\'');
    }
    if quote {
        let mut rest = cell.as_bytes();
        while let Some(at) = memchr::memchr(b'"', rest) {
            out.extend_from_slice(&rest[..=at]);
            out.push(b'"');
            rest = &rest[at + 1..];
        }
        out.extend_from_slice(rest);
        out.push(b'"');
    } else {
        out.extend_from_slice(cell.as_bytes());
    }
}

/// Appends the absent cells of columns `from..to` (with the delimiters before them): with an
/// empty null text, only the delimiters.
fn encode_absent(out: &mut Vec<u8>, delimiter: u8, null: &[u8], from: usize, to: usize) {
    if from >= to {
        return;
    }
    if null.is_empty() {
        out.resize(out.len() + to - from - usize::from(from == 0), delimiter);
    } else {
        for column in from..to {
            if column > 0 {
                out.push(delimiter);
            }
            out.extend_from_slice(null);
        }
    }
}

/// The existing file, when it has content to append to.
fn existing_content(target: &Path) -> std::io::Result<Option<File>> {
    match File::open(target) {
        Ok(file) if file.metadata()?.len() > 0 => Ok(Some(file)),
        Ok(_) => Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// The first record of `old` must be `header`.
fn check_header(
    target: &Path,
    old: &mut File,
    header: &[&str],
    delimiter: u8,
) -> Result<(), SinkError> {
    let mut start = [0u8; 3];
    let read = old.read(&mut start).unwrap_or(0);
    let skip = if read == 3 && start == *BOM { 3 } else { 0 };
    let _ = old.seek(SeekFrom::Start(skip));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(&mut *old);
    let existing: Vec<String> = reader
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    if existing == header {
        Ok(())
    } else {
        Err(SinkError::HeaderMismatch {
            path: target.to_owned(),
            existing,
            new: header.iter().map(|h| (*h).to_owned()).collect(),
        })
    }
}

/// True when the old file (not empty) ends its last line.
fn ends_line(file: &mut File) -> std::io::Result<bool> {
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// True for a cell a spreadsheet would read as a formula (numbers such as `-1.5` excepted).
fn needs_guard(cell: &str) -> bool {
    matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    ) && cell.trim().parse::<f64>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_guard_leaves_numbers_alone() {
        for cell in ["=SUM(A1)", "+1 555", "-x", "@user", "\tx", "\rx", "-"] {
            assert!(needs_guard(cell), "{cell:?}");
        }
        for cell in ["-12.5", "+3", "1e5", "plain", "", "a=b"] {
            assert!(!needs_guard(cell), "{cell:?}");
        }
    }

    /// Rows encoded here are byte for byte what `csv::Writer::write_record` writes, absent
    /// cells as the null text, for every delimiter, width and null text.
    #[test]
    fn same_bytes_as_the_csv_crate() {
        const CELLS: &[&str] = &[
            "",
            "a",
            "a,b",
            "say \"hi\"",
            "x\r\ny",
            "\n",
            "tab\t",
            "'q",
            ";",
            "=1",
        ];
        let mut rng = fastrand::Rng::with_seed(11);
        for round in 0..400 {
            let delimiter = [b',', b';', b'\t', b'\''][rng.usize(..4)];
            let null = ["", "NULL", "a;b", "\""][rng.usize(..4)];
            let width = rng.usize(0..5);
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("out.csv");
            let options = CsvOptions {
                delimiter,
                ..CsvOptions::default()
            };
            let output = Output::new(target.clone(), Default::default(), Path::new(""));
            let mut sink = CsvSink::create(&output, &options, null).unwrap();
            let columns: Vec<Column> = (0..width)
                .map(|i| Column::from_path(crate::records::FieldPath::key(&format!("c{i}"))))
                .collect();
            sink.begin(&columns).unwrap();
            let mut expected = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .delimiter(delimiter)
                .from_writer(Vec::new());
            expected
                .write_record(columns.iter().map(|c| &c.header))
                .unwrap();
            for _ in 0..rng.usize(0..4) {
                let mut row = Row::default();
                let mut cells = Vec::new();
                for column in 0..width {
                    if rng.bool() {
                        let cell = CELLS[rng.usize(..CELLS.len())];
                        row.push(column, cell);
                        cells.push(cell);
                    } else {
                        cells.push(null);
                    }
                }
                sink.write_row(&row).unwrap();
                expected.write_record(&cells).unwrap();
            }
            Box::new(sink).commit().unwrap();
            let expected = String::from_utf8(expected.into_inner().unwrap()).unwrap();
            assert_eq!(
                std::fs::read_to_string(&target).unwrap(),
                expected,
                "round {round}"
            );
        }
    }
}
