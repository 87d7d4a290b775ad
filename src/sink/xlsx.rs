//! Excel workbooks (rust_xlsxwriter in its constant-memory mode: rows go to disk as they are
//! written, so memory stays flat). Cells are typed by the column schema ([`super::cells`]: from
//! the Discovery schema, or a report's own headers): numbers, booleans, real dates and
//! date-times (UTC); an id of more than 15 digits and everything else stay text, and text is
//! never a formula. The header row is bold and frozen,
//! with an autofilter; past Excel's 1,048,576 rows a sheet continues on the next one.
//!
//! As opened:
//! - **Column widths from the whole content.** In constant-memory mode rust_xlsxwriter writes
//!   rows to a temporary file as they come, but it writes a sheet's `<cols>` element (the
//!   widths) only when the workbook is saved, so a width can be set after the last row. The
//!   sink keeps one number per column — the widest cell it has written, in characters, as the
//!   cell displays (a date-time 19, a date 10, a boolean 5, a number its digits, text its
//!   characters), at least the header and its filter button — and sets every sheet's widths
//!   at commit, capped at [`MAX_WIDTH`] characters. Memory stays flat.
//! - **Formats that display**: date-times `yyyy-mm-dd hh:mm:ss`, dates `yyyy-mm-dd`, integers
//!   `0` (all their digits: Excel's General shows 12 or more as `1.23457E+11`), other
//!   numbers General; the widths are wide enough that none shows as `########`.
//! - **The same data gives the same bytes.** The document's creation time (`docProps/core.xml`,
//!   the only varying part: zip entries are dated 1980-01-01 by rust_xlsxwriter) is
//!   `SOURCE_DATE_EPOCH` (seconds since 1970, UTC) when set, else the fixed
//!   2000-01-01T00:00:00Z ([`FIXED_CREATED`]), never the clock.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet, XlsxError};
use sha2::{Digest, Sha256};

use super::cells::{typed, Cell, ColumnSchema, ColumnType};
use super::file::{hex, persist, temp_beside, Written};
use super::{Sink, SinkError};
use crate::plan::Output;
use crate::records::{Column, Row};

/// Rows of one sheet below its header (Excel's limit, less the header).
const ROWS_PER_SHEET: u32 = 1_048_575;

/// The widest a column is made, in characters (longer text is cut at the next cell, whole
/// in the cell).
pub const MAX_WIDTH: usize = 60;

/// The document's creation time when `SOURCE_DATE_EPOCH` is not set: 2000-01-01T00:00:00Z.
pub const FIXED_CREATED: i64 = 946_684_800;

/// Characters a date-time cell displays (`yyyy-mm-dd hh:mm:ss`).
const DATE_TIME_WIDTH: usize = 19;
/// Characters a date cell displays (`yyyy-mm-dd`).
const DATE_WIDTH: usize = 10;
/// Characters a boolean cell displays (`FALSE`).
const BOOLEAN_WIDTH: usize = 5;
/// Room for the autofilter's drop-down button beside a header.
const FILTER_BUTTON: usize = 2;

pub struct XlsxSink {
    target: PathBuf,
    /// The Cloud Storage object it is uploaded as, when it is one.
    object: Option<crate::gcs::ObjectUrl>,
    workbook: Workbook,
    types: ColumnSchema,
    /// Rows written, across sheets.
    rows: u64,
    header: Vec<String>,
    bold: Format,
    date_time: Format,
    date: Format,
    integer: Format,
    /// The widest cell of each column so far, in characters (its header's to start).
    widths: Vec<usize>,
    /// The sheet being filled, and its next row.
    sheet: usize,
    row: u32,
}

impl XlsxSink {
    /// A workbook for `output`, its columns typed by `types` (the plan's column schema).
    pub fn create(output: &Output, types: ColumnSchema) -> Self {
        XlsxSink {
            target: output.path().to_owned(),
            object: output.object().cloned(),
            workbook: Workbook::new(),
            types,
            rows: 0,
            header: Vec::new(),
            bold: Format::new().set_bold(),
            date_time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            integer: Format::new().set_num_format("0"),
            widths: Vec::new(),
            sheet: 0,
            row: 0,
        }
    }

    fn error(&self, source: XlsxError) -> SinkError {
        SinkError::Write {
            path: self.target.clone(),
            source: std::io::Error::other(source.to_string()),
        }
    }

    /// Starts a sheet: the header, bold and frozen, with an autofilter over the columns.
    fn new_sheet(&mut self) -> Result<(), XlsxError> {
        let bold = self.bold.clone();
        let header = self.header.clone();
        let sheet: &mut Worksheet = self.workbook.add_worksheet_with_constant_memory();
        for (column, name) in header.iter().enumerate() {
            sheet.write_string_with_format(0, column as u16, name, &bold)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        if !header.is_empty() {
            sheet.autofilter(0, 0, ROWS_PER_SHEET, header.len() as u16 - 1)?;
        }
        self.sheet = self.workbook.worksheets().len() - 1;
        self.row = 1;
        Ok(())
    }

    fn write(&mut self, row: &Row) -> Result<(), XlsxError> {
        if self.row > ROWS_PER_SHEET {
            self.new_sheet()?;
        }
        let at = self.row;
        let (date_time, date, integer) = (&self.date_time, &self.date, &self.integer);
        let types = &self.types;
        let widths = &mut self.widths;
        let sheet = self.workbook.worksheet_from_index(self.sheet)?;
        for (column, text, answered) in row.cells_answered() {
            let col = column as u16;
            let cell = typed(text, types.of(column, answered));
            match cell {
                Cell::Text(text) => sheet.write_string(at, col, text)?,
                Cell::Integer(n) => sheet.write_number_with_format(at, col, n as f64, integer)?,
                Cell::Number(n) => sheet.write_number(at, col, n)?,
                Cell::Boolean(b) => sheet.write_boolean(at, col, b)?,
                Cell::DateTime(t) => sheet.write_datetime_with_format(at, col, t, date_time)?,
                Cell::Date(d) => sheet.write_datetime_with_format(at, col, d, date)?,
            };
            if let Some(width) = widths.get_mut(column) {
                *width = (*width).max(display_width(&cell, text));
            }
        }
        self.row += 1;
        self.rows += 1;
        Ok(())
    }
}

impl Sink for XlsxSink {
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError> {
        self.header = columns.iter().map(|c| c.header.clone()).collect();
        self.widths = (self.header.iter())
            .map(|name| name.chars().count() + FILTER_BUTTON)
            .collect();
        if self.types.len() != columns.len() {
            // A report's columns, named by its response: text until it types them.
            self.types = ColumnSchema::text(columns.len());
        }
        self.new_sheet().map_err(|e| self.error(e))
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        self.write(row).map_err(|e| self.error(e))
    }

    /// A report's own types for its columns, before its first row.
    fn report_types(&mut self, types: &[ColumnType]) {
        if self.rows == 0 {
            self.types.complete(types);
        }
    }

    fn commit(mut self: Box<Self>) -> Result<Written, SinkError> {
        self.finish().map_err(|e| self.error(e))?;
        if let Some(object) = self.object.take() {
            return self.commit_object(object);
        }
        let mut file = temp_beside(&self.target)?;
        let saved = self.workbook.save_to_writer(file.as_file_mut());
        saved.map_err(|e| self.error(e))?;
        let written = proof(file.as_file_mut()).map_err(|source| SinkError::Write {
            path: self.target.clone(),
            source,
        })?;
        persist(file, &self.target)?;
        Ok(written)
    }
}

impl XlsxSink {
    /// Before saving: every sheet's column widths from the content, and the document's
    /// creation time from `SOURCE_DATE_EPOCH` or fixed.
    fn finish(&mut self) -> Result<(), XlsxError> {
        let widths = self.widths.clone();
        for sheet in self.workbook.worksheets_mut() {
            for (column, width) in widths.iter().enumerate() {
                sheet.set_column_width(column as u16, column_width(*width) as f64)?;
            }
        }
        let created = ExcelDateTime::from_timestamp(creation_timestamp())?;
        let properties = DocProperties::new().set_creation_datetime(&created);
        self.workbook.set_properties(&properties);
        Ok(())
    }

    /// Saves the workbook to a local temporary file (a zip is written with seeks), then
    /// uploads it as the object in one upload.
    fn commit_object(
        mut self: Box<Self>,
        object: crate::gcs::ObjectUrl,
    ) -> Result<Written, SinkError> {
        let write = |source| SinkError::Write {
            path: self.target.clone(),
            source,
        };
        let mut file = tempfile::tempfile().map_err(write)?;
        let saved = self.workbook.save_to_writer(&mut file);
        saved.map_err(|e| self.error(e))?;
        let mut written = proof(&mut file).map_err(write)?;
        let gcs = crate::gcs::io::get().map_err(|e| SinkError::object(&self.target, e))?;
        let mut upload = super::object::ObjectWriter::create(gcs, object, false)
            .map_err(|e| SinkError::object(&self.target, e))?;
        file.seek(SeekFrom::Start(0)).map_err(write)?;
        std::io::copy(&mut file, &mut upload).map_err(write)?;
        let meta = upload
            .finish(written.bytes)
            .map_err(|e| SinkError::object(&self.target, e))?;
        written.object = Some(super::object::ObjectProof::from(&meta));
        Ok(written)
    }
}

/// The characters a cell displays: its type's fixed width, or its text's.
fn display_width(cell: &Cell<'_>, text: &str) -> usize {
    match cell {
        Cell::DateTime(_) => DATE_TIME_WIDTH,
        Cell::Date(_) => DATE_WIDTH,
        Cell::Boolean(_) => BOOLEAN_WIDTH,
        // No need to count past the cap (a byte is at most a character).
        _ if text.len() > MAX_WIDTH => text.chars().take(MAX_WIDTH).count(),
        _ => text.chars().count(),
    }
}

/// A column's width in Excel's character units for its widest cell: one character of
/// margin, at most [`MAX_WIDTH`].
fn column_width(widest: usize) -> usize {
    (widest + 1).min(MAX_WIDTH)
}

/// The document's creation time, seconds since 1970 UTC: `SOURCE_DATE_EPOCH` when it is set
/// (and a number), else [`FIXED_CREATED`].
fn creation_timestamp() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(FIXED_CREATED)
}

/// The size and SHA-256 of the saved workbook (a zip written with seeks, so hashed once
/// written rather than as it streams).
fn proof(file: &mut std::fs::File) -> std::io::Result<Written> {
    file.seek(SeekFrom::Start(0))?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok(Written {
        bytes,
        sha256: hex(&hash.finalize()),
        object: None,
        formula_cells: 0,
    })
}
