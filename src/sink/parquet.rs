//! Parquet files: one typed column per query column, written with the `parquet` crate's
//! low-level column writers (no arrow layer), zstd-compressed, with statistics per column
//! chunk and page.
//!
//! Types are the column schema's ([`ColumnSchema`], mapped by [`Kind::of`]): from the
//! Discovery schema, or a report's own headers (its first page, before the first row group),
//! as xlsx, Sheets and BigQuery type them; a column a file can hold whole — an object, a map,
//! an array, a path through an array — as JSON text (logical type `JSON`). One type holds a
//! whole column, where a spreadsheet types each
//! cell; so that nothing is lost, the first row group decides: a typed column one of whose
//! values there does not fit its type (a 21-digit `int64`, a date-time that does not parse)
//! is a string column, every value exact, as xlsx keeps such a cell as text. A value that does
//! not fit in a later row group (whose column is typed already) is null, counted, and said in
//! a warning when the file is complete.
//!
//! Rows are buffered as cell text per column and written out as a row group every
//! [`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] of buffered text, whichever comes first, so
//! memory stays flat. The bytes go through [`Stream`]: a temporary file renamed over the
//! target when complete, or one upload to a `gs://` object. A Parquet file is not taken up
//! mid-way (`--resume` starts it again: its footer, at the end, describes every row group).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical, ZstdLevel};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde_json::Value;

use super::file::{Stream, Written};
use super::{Sink, SinkError};
use crate::plan::Output;
use crate::plan::QueryPlan;
use crate::records::schema::{parse_date as parse_day, parse_local_date_time};
use crate::records::schema::{ColumnSchema, ColumnType, Values};
use crate::records::{Column, Row, Segment};

/// Rows of one row group, at most: 32 Ki, large enough that readers skip by statistics well
/// and the file stays small (1 M Drive rows: 10.3 MB, against 7.7 MB at 128 Ki), small enough
/// that the buffered group, its parsed values and the encoder's pages stay within the memory
/// budget (peak RSS of that export: 70 MiB at 32 Ki before the byte bound, 98 at 128 Ki).
/// `GSCRAPE_PARQUET_ROW_GROUP_ROWS` changes it (tests make several row groups of a few rows).
pub const ROW_GROUP_ROWS: usize = 32 * 1024;

/// Buffered cell text of one row group, at most: 8 MiB (a wide export reaches it before
/// [`ROW_GROUP_ROWS`]).
pub const ROW_GROUP_BYTES: usize = 8 * 1024 * 1024;

/// zstd's level: 3, its own default (level 1 was barely faster here, and larger).
const ZSTD_LEVEL: i32 = 3;

/// Warnings name this many values that did not fit, at most, per column.
const SHOWN: usize = 1;

/// [`ROW_GROUP_ROWS`], or what `GSCRAPE_PARQUET_ROW_GROUP_ROWS` says (read once).
fn row_group_rows() -> usize {
    static ROWS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| {
        std::env::var("GSCRAPE_PARQUET_ROW_GROUP_ROWS")
            .ok()
            .and_then(|rows| rows.trim().parse::<usize>().ok())
            .filter(|&rows| rows > 0)
            .unwrap_or(ROW_GROUP_ROWS)
    })
}

/// A column's type in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    /// JSON text (logical type `JSON`).
    Json,
    Int64,
    /// `INT64` holding a `uint64` (logical type `INTEGER(64, false)`).
    UInt64,
    Double,
    Bool,
    /// Microseconds since the epoch, UTC.
    Timestamp,
    /// Microseconds since the epoch of a local date and time (not adjusted to UTC).
    LocalTimestamp,
    /// Days since the epoch.
    Date,
}

impl Kind {
    /// A column of the schema as a file types it: the one mapping of [`ColumnType`] to
    /// Parquet's types.
    pub fn of(kind: ColumnType) -> Kind {
        match kind {
            ColumnType::Text => Kind::String,
            ColumnType::Json => Kind::Json,
            ColumnType::Integer => Kind::Int64,
            ColumnType::Unsigned => Kind::UInt64,
            ColumnType::Number => Kind::Double,
            ColumnType::Boolean => Kind::Bool,
            ColumnType::DateTime => Kind::Timestamp,
            ColumnType::LocalDateTime => Kind::LocalTimestamp,
            ColumnType::Date => Kind::Date,
        }
    }

    /// Its name in messages (as `parquet-tools` and DuckDB say them).
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "STRING",
            Kind::Json => "JSON",
            Kind::Int64 => "INT64",
            Kind::UInt64 => "UINT64",
            Kind::Double => "DOUBLE",
            Kind::Bool => "BOOLEAN",
            Kind::Timestamp => "TIMESTAMP",
            Kind::LocalTimestamp => "TIMESTAMP (local)",
            Kind::Date => "DATE",
        }
    }

    /// The schema field of a column `name` of this type (every one optional: null for a value
    /// the record lacks).
    fn field(self, name: &str) -> Result<Type, ParquetError> {
        let (physical, logical) = match self {
            Kind::String => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            Kind::Json => (Physical::BYTE_ARRAY, Some(LogicalType::Json)),
            Kind::Int64 => (Physical::INT64, None),
            Kind::UInt64 => (
                Physical::INT64,
                Some(LogicalType::Integer {
                    bit_width: 64,
                    is_signed: false,
                }),
            ),
            Kind::Double => (Physical::DOUBLE, None),
            Kind::Bool => (Physical::BOOLEAN, None),
            Kind::Timestamp => (
                Physical::INT64,
                Some(LogicalType::Timestamp {
                    is_adjusted_to_u_t_c: true,
                    unit: TimeUnit::MICROS,
                }),
            ),
            Kind::LocalTimestamp => (
                Physical::INT64,
                Some(LogicalType::Timestamp {
                    is_adjusted_to_u_t_c: false,
                    unit: TimeUnit::MICROS,
                }),
            ),
            Kind::Date => (Physical::INT32, Some(LogicalType::Date)),
        };
        Type::primitive_type_builder(name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()
    }

    /// True when `text` is a value of this type.
    fn fits(self, text: &[u8]) -> bool {
        match self {
            Kind::String | Kind::Json => true,
            Kind::Int64 | Kind::Timestamp | Kind::LocalTimestamp => parse_i64(self, text).is_some(),
            Kind::UInt64 => parse_i64(self, text).is_some(),
            Kind::Double => parse_double(text).is_some(),
            Kind::Bool => parse_bool(text).is_some(),
            Kind::Date => parse_date(text).is_some(),
        }
    }
}

/// True when `plan`'s Parquet file would have a `JSON` column, whose values are read from
/// the record: the rows must carry their records ([`Row::raw`]).
pub(super) fn json_columns(plan: &QueryPlan) -> bool {
    plan.column_schema()
        .columns()
        .iter()
        .any(|c| c.from.from_record())
}

/// One column's values of the row group being gathered: their text end to end, where each
/// ends, and which rows have one (Parquet's definition levels: 1 a value, 0 a null).
#[derive(Default)]
struct Buffer {
    text: Vec<u8>,
    ends: Vec<usize>,
    levels: Vec<i16>,
}

impl Buffer {
    fn values(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.text[start..end])
    }
}

/// One column of the file.
struct ParquetColumn {
    header: String,
    kind: Kind,
    from: Values,
    /// Values past the first row group that did not fit `kind`, written as null: how many,
    /// and the first few (their row, their text).
    unfit: u64,
    shown: Vec<(u64, String)>,
}

pub struct ParquetSink {
    target: PathBuf,
    query: String,
    /// The plan's columns and their shapes, for `begin` (a report's are named then).
    planned: (Vec<Column>, ColumnSchema),
    columns: Vec<ParquetColumn>,
    /// Some column is read from the record.
    reads_records: bool,
    /// The record's top-level keys those columns start from (`None`: a path that starts
    /// otherwise, and the whole record is parsed).
    record_keys: Option<Vec<String>>,
    /// Until the first row group is written: the stream the writer will take.
    stream: Option<Stream>,
    writer: Option<SerializedFileWriter<Stream>>,
    buffers: Vec<Buffer>,
    /// Rows and text bytes buffered.
    rows: usize,
    bytes: usize,
    /// Rows written out in earlier row groups.
    flushed: u64,
    group_rows: usize,
    /// Columns the first row group made strings: their type by the schema, a value that did
    /// not fit it.
    demoted: Vec<(String, Kind, String)>,
}

impl ParquetSink {
    /// A Parquet file for `output` (a file, or a Cloud Storage object), typed for `plan`.
    pub fn create(plan: &QueryPlan, output: &Output) -> Result<Self, SinkError> {
        Ok(ParquetSink {
            target: output.path().to_owned(),
            query: plan.query.name.clone(),
            planned: (plan.columns.clone(), plan.column_schema()),
            columns: Vec::new(),
            reads_records: false,
            record_keys: None,
            stream: Some(Stream::create_whole(output)?),
            writer: None,
            buffers: Vec::new(),
            rows: 0,
            bytes: 0,
            flushed: 0,
            group_rows: row_group_rows(),
            demoted: Vec::new(),
        })
    }

    fn error(&self, err: ParquetError) -> SinkError {
        SinkError::Write {
            path: self.target.clone(),
            source: std::io::Error::other(err.to_string()),
        }
    }

    /// Before the first row group: each typed column with a value that does not fit becomes
    /// a string column; then the writer, with the schema.
    fn open_writer(&mut self) -> Result<(), SinkError> {
        for (column, buffer) in self.columns.iter_mut().zip(&self.buffers) {
            if matches!(column.kind, Kind::String | Kind::Json) {
                continue;
            }
            if let Some(bad) = buffer.values().find(|v| !column.kind.fits(v)) {
                let bad = String::from_utf8_lossy(bad).into_owned();
                self.demoted.push((column.header.clone(), column.kind, bad));
                column.kind = Kind::String;
            }
        }
        let fields = self
            .columns
            .iter()
            .map(|c| c.kind.field(&c.header).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))?;
        let schema = Type::group_type_builder("schema")
            .with_fields(fields)
            .build()
            .map_err(|e| self.error(e))?;
        let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| self.error(e))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(format!("gscrape {}", env!("CARGO_PKG_VERSION")))
            .build();
        let Some(stream) = self.stream.take() else {
            return Ok(());
        };
        let writer = SerializedFileWriter::new(stream, Arc::new(schema), Arc::new(properties))
            .map_err(|e| self.error(e))?;
        self.writer = Some(writer);
        Ok(())
    }

    /// Writes the buffered rows out as one row group.
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.writer.is_none() {
            self.open_writer()?;
        }
        if self.rows == 0 {
            return Ok(());
        }
        let first_row = self.flushed + 1;
        let result = match self.writer.as_mut() {
            Some(writer) => write_group(writer, &mut self.columns, &self.buffers, first_row),
            None => Ok(()),
        };
        result.map_err(|e| self.error(e))?;
        self.flushed += self.rows as u64;
        for buffer in &mut self.buffers {
            buffer.text.clear();
            buffer.ends.clear();
            buffer.levels.clear();
        }
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }

    /// The warnings of a complete file: columns made strings, values written as null.
    fn warn(&self) {
        let target = self.target.display();
        for (header, kind, bad) in &self.demoted {
            crate::say!(
                "note: {}: {target}: the column `{header}` is a string column, not {}: its \
                 first row group holds {} (every value kept exact, as text)",
                self.query,
                kind.name(),
                crate::redact::quote(bad)
            );
        }
        for column in self.columns.iter().filter(|c| c.unfit > 0) {
            let shown: Vec<String> = column
                .shown
                .iter()
                .map(|(row, text)| format!("row {row}: {}", crate::redact::quote(text)))
                .collect();
            crate::say!(
                "warning: {}: {target}: {} value(s) of the {} column `{}` did not fit it and \
                 were written as null ({}{})",
                self.query,
                column.unfit,
                column.kind.name(),
                column.header,
                shown.join(", "),
                match column.unfit > column.shown.len() as u64 {
                    true => ", …",
                    false => "",
                }
            );
        }
    }
}

/// One row group of `buffers` to `writer`, column by column, each column's values parsed as
/// its type (a value that does not fit is null, counted in its column).
fn write_group(
    writer: &mut SerializedFileWriter<Stream>,
    columns: &mut [ParquetColumn],
    buffers: &[Buffer],
    first_row: u64,
) -> Result<(), ParquetError> {
    let mut group = writer.next_row_group()?;
    for (column, buffer) in columns.iter_mut().zip(buffers) {
        let Some(mut chunk) = group.next_column()? else {
            return Err(ParquetError::General(
                "fewer columns than the schema".into(),
            ));
        };
        let kind = column.kind;
        match chunk.untyped() {
            ColumnWriter::ByteArrayColumnWriter(out) => {
                // One copy of the column's text, sliced without a copy per value.
                let whole = Bytes::copy_from_slice(&buffer.text);
                let starts = std::iter::once(0).chain(buffer.ends.iter().copied());
                let values: Vec<ByteArray> = starts
                    .zip(&buffer.ends)
                    .map(|(start, &end)| ByteArray::from(whole.slice(start..end)))
                    .collect();
                out.write_batch(&values, Some(&buffer.levels), None)?;
            }
            ColumnWriter::Int64ColumnWriter(out) => {
                let (values, levels) =
                    column.parse(buffer, first_row, |text| parse_i64(kind, text));
                out.write_batch(&values, Some(&levels), None)?;
            }
            ColumnWriter::Int32ColumnWriter(out) => {
                let (values, levels) = column.parse(buffer, first_row, parse_date);
                out.write_batch(&values, Some(&levels), None)?;
            }
            ColumnWriter::DoubleColumnWriter(out) => {
                let (values, levels) = column.parse(buffer, first_row, parse_double);
                out.write_batch(&values, Some(&levels), None)?;
            }
            ColumnWriter::BoolColumnWriter(out) => {
                let (values, levels) = column.parse(buffer, first_row, parse_bool);
                out.write_batch(&values, Some(&levels), None)?;
            }
            _ => return Err(ParquetError::General("a column of no known type".into())),
        }
        chunk.close()?;
    }
    group.close()?;
    Ok(())
}

impl ParquetColumn {
    /// The values of `buffer` parsed by `parse`, and their definition levels: a value that
    /// does not parse is a null, counted (rows numbered from `first_row`).
    fn parse<T>(
        &mut self,
        buffer: &Buffer,
        first_row: u64,
        parse: impl Fn(&[u8]) -> Option<T>,
    ) -> (Vec<T>, Vec<i16>) {
        let mut levels = buffer.levels.clone();
        let mut values = Vec::with_capacity(buffer.ends.len());
        let mut texts = buffer.values();
        for (row, level) in levels.iter_mut().enumerate() {
            if *level == 0 {
                continue;
            }
            let parsed = texts.next().map(|text| (parse(text), text));
            match parsed {
                Some((Some(value), _)) => values.push(value),
                Some((None, text)) => {
                    *level = 0;
                    self.unfit += 1;
                    if self.shown.len() < SHOWN {
                        let text = String::from_utf8_lossy(text).into_owned();
                        self.shown.push((first_row + row as u64, text));
                    }
                }
                None => *level = 0,
            }
        }
        (values, levels)
    }
}

/// An integer's text (digits after an optional `-`), as `kind` stores it: an `INT64`, a
/// `UINT64` (its bits), or, for a timestamp, an RFC 3339 date-time's microseconds since the
/// epoch.
fn parse_i64(kind: Kind, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    match kind {
        Kind::Timestamp => {
            return chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|at| at.timestamp_micros());
        }
        Kind::LocalTimestamp => {
            return parse_local_date_time(text).map(|at| at.and_utc().timestamp_micros());
        }
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match kind {
        // Stored as its bits; the logical type says unsigned.
        Kind::UInt64 => text.parse::<u64>().ok().map(|n| n as i64),
        _ => text.parse::<i64>().ok(),
    }
}

/// A number's text (a JSON number, or Google's `"NaN"`, `"Infinity"`, `"-Infinity"`) as the
/// nearest double.
fn parse_double(text: &[u8]) -> Option<f64> {
    match text {
        b"NaN" => return Some(f64::NAN),
        b"Infinity" => return Some(f64::INFINITY),
        b"-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let text = std::str::from_utf8(text).ok()?;
    // Only JSON's number syntax (Rust's parser also takes `inf`, `+1`, `.5`).
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    if !unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_bool(text: &[u8]) -> Option<bool> {
    match text {
        b"true" => Some(true),
        b"false" => Some(false),
        _ => None,
    }
}

/// A `YYYY-MM-DD` date as days since 1970-01-01.
fn parse_date(text: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(text).ok()?;
    let day = parse_day(text)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((day - epoch).num_days()).ok()
}

/// The record `raw` as far as the JSON columns read it: with `keys`, an object of only those
/// top-level keys, each value parsed alone (the rest of the record is checked by the scan, not
/// built: a Drive record's other fields cost no allocation); else the whole record.
fn record_of(raw: &str, keys: Option<&[String]>) -> Option<Value> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    // Keys borrowed from the text: a key with an escape cannot be, and the record is parsed
    // whole. A repeated key keeps its last value, as serde_json's own reading does.
    let fields = keys.and_then(|_| serde_json::from_str::<BTreeMap<&str, &RawValue>>(raw).ok());
    let (Some(keys), Some(fields)) = (keys, fields) else {
        return serde_json::from_str(raw).ok();
    };
    let mut record = serde_json::Map::new();
    for key in keys {
        if let Some(value) = fields.get(key.as_str()) {
            // (A value that does not parse alone cannot be: the scan checked it.)
            record.insert(key.clone(), serde_json::from_str(value.get()).ok()?);
        }
    }
    Some(Value::Object(record))
}

impl Sink for ParquetSink {
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError> {
        let schema = match columns == self.planned.0.as_slice() {
            true => std::mem::take(&mut self.planned.1),
            // A report's columns, named by its response: strings until it types them.
            false => ColumnSchema::text(columns.len()),
        };
        self.columns = columns
            .iter()
            .zip(schema.columns())
            .enumerate()
            .map(|(i, (column, typed))| ParquetColumn {
                header: column.header.clone(),
                kind: Kind::of(schema.kind(i)),
                from: typed.from.clone(),
                unfit: 0,
                shown: Vec::new(),
            })
            .collect();
        self.reads_records = self.columns.iter().any(|c| c.from.from_record());
        self.record_keys = self
            .columns
            .iter()
            .filter(|c| c.from.from_record())
            .map(|c| match &c.from {
                Values::Whole(path) | Values::Spread(path) => match path.segments().first() {
                    Some(Segment::Key(key)) => Some(key.clone()),
                    _ => None,
                },
                Values::Cell => None,
            })
            .collect();
        self.buffers = columns.iter().map(|_| Buffer::default()).collect();
        Ok(())
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        let record = match self.reads_records {
            true => row
                .raw()
                .and_then(|raw| record_of(raw, self.record_keys.as_deref())),
            false => None,
        };
        let mut cells = row.cells().peekable();
        for (i, (column, buffer)) in self.columns.iter().zip(&mut self.buffers).enumerate() {
            let cell = match cells.peek() {
                Some(&(at, text)) if at == i => {
                    cells.next();
                    Some(text)
                }
                _ => None,
            };
            let start = buffer.text.len();
            let present = match (&column.from, &record) {
                (Values::Cell, _) => match cell {
                    Some(text) => {
                        buffer.text.extend_from_slice(text.as_bytes());
                        true
                    }
                    None => false,
                },
                // No record to read (it did not parse): the cell, as a JSON string.
                (_, None) => {
                    cell.is_some_and(|text| serde_json::to_writer(&mut buffer.text, text).is_ok())
                }
                (from, Some(record)) => match from.json_in(record) {
                    // Writing JSON to a Vec cannot fail.
                    Some(value) => serde_json::to_writer(&mut buffer.text, &value).is_ok(),
                    None => false,
                },
            };
            if present {
                buffer.ends.push(buffer.text.len());
                self.bytes += buffer.text.len() - start;
            }
            buffer.levels.push(i16::from(present));
        }
        self.rows += 1;
        if self.rows >= self.group_rows || self.bytes >= ROW_GROUP_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// A report's own types for its string columns, until the schema is fixed by the first
    /// row group (a value that does not fit its type then makes the column a string again,
    /// as for every typed column).
    fn report_types(&mut self, types: &[ColumnType]) {
        if self.writer.is_some() || types.len() != self.columns.len() {
            return;
        }
        for (column, &declared) in self.columns.iter_mut().zip(types) {
            if column.kind == Kind::String && column.from == Values::Cell {
                column.kind = Kind::of(declared);
            }
        }
    }

    fn commit(mut self: Box<Self>) -> Result<Written, SinkError> {
        self.flush()?;
        let Some(writer) = self.writer.take() else {
            return Err(self.error(ParquetError::General("no file was started".into())));
        };
        let stream = writer.into_inner().map_err(|e| self.error(e))?;
        let written = stream.finish()?;
        self.warn();
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_their_type_or_not_at_all() {
        assert_eq!(parse_i64(Kind::Int64, b"-42"), Some(-42));
        assert_eq!(
            parse_i64(Kind::Int64, b"9223372036854775807"),
            Some(i64::MAX)
        );
        assert_eq!(parse_i64(Kind::Int64, b"100000136831429000000"), None);
        assert_eq!(parse_i64(Kind::Int64, b"1.5"), None);
        assert_eq!(parse_i64(Kind::Int64, b"+1"), None);
        assert_eq!(parse_i64(Kind::Int64, b""), None);
        assert_eq!(
            parse_i64(Kind::UInt64, b"18446744073709551615"),
            Some(u64::MAX as i64)
        );
        assert_eq!(parse_i64(Kind::UInt64, b"-1"), None);
        assert_eq!(
            parse_i64(Kind::Timestamp, b"2024-03-01T10:00:00.5+01:00"),
            Some(1_709_283_600_500_000)
        );
        assert_eq!(parse_i64(Kind::Timestamp, b"soon"), None);
        assert_eq!(parse_double(b"1.50"), Some(1.5));
        assert_eq!(parse_double(b"-2e3"), Some(-2000.0));
        assert!(parse_double(b"NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_double(b"inf"), None);
        assert_eq!(parse_double(b"1e400"), None);
        assert_eq!(parse_double(b".5"), None);
        assert_eq!(parse_bool(b"true"), Some(true));
        assert_eq!(parse_bool(b"True"), None);
        assert_eq!(parse_date(b"1970-01-02"), Some(1));
        assert_eq!(parse_date(b"2023-02-29"), None);
    }

    #[test]
    fn a_record_is_read_as_far_as_its_json_columns_go() {
        let keys = ["parents".to_owned(), "owners".to_owned()];
        let raw = r#"{"id": "a", "parents": ["x"], "owners": [{"e": 15}], "parents": ["y"]}"#;
        assert_eq!(
            record_of(raw, Some(&keys)).unwrap(),
            serde_json::json!({"parents": ["y"], "owners": [{"e": 15}]}),
            "the last of a repeated key"
        );
        let escaped = r#"{"a\u0062": 1, "parents": ["x"]}"#;
        assert_eq!(
            record_of(escaped, Some(&keys)).unwrap(),
            serde_json::json!({"ab": 1, "parents": ["x"]}),
            "an escaped key: the whole record"
        );
        assert_eq!(record_of("{\"parents\": [", Some(&keys)), None);
    }

    #[test]
    fn a_value_that_does_not_fit_a_typed_column_is_a_counted_null() {
        let mut buffer = Buffer::default();
        for cell in [Some("5"), None, Some("100000136831429000000"), Some("-7")] {
            if let Some(text) = cell {
                buffer.text.extend_from_slice(text.as_bytes());
                buffer.ends.push(buffer.text.len());
            }
            buffer.levels.push(i16::from(cell.is_some()));
        }
        let mut column = ParquetColumn {
            header: "version".to_owned(),
            kind: Kind::Int64,
            from: Values::Cell,
            unfit: 0,
            shown: Vec::new(),
        };
        let (values, levels) = column.parse(&buffer, 101, |t| parse_i64(Kind::Int64, t));
        assert_eq!(values, [5, -7]);
        assert_eq!(levels, [1, 0, 0, 1]);
        assert_eq!(column.unfit, 1);
        assert_eq!(
            column.shown,
            [(103, "100000136831429000000".to_owned())],
            "its row, counted from the file's first"
        );
    }
}
