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
use crate::records::{write_compact_json, Column, Row, Segment};

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
    text: String,
    ends: Vec<usize>,
    levels: Vec<i16>,
}

impl Buffer {
    fn values(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.text.as_bytes()[start..end])
    }
}

/// One column of the file.
struct ParquetColumn {
    header: String,
    kind: Kind,
    from: Values,
    /// A JSON column read straight from the record's text ([`Reach`]); `None`: from its
    /// parsed record (a path that picks by a field's value, or starts otherwise than by a key).
    reach: Option<Reach>,
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
    /// The distinct top-level keys the [`Reach`]es of the JSON columns start from, and, per
    /// record, where each one's value is in its text.
    reach_keys: Vec<String>,
    reach_spans: Vec<Option<(usize, usize)>>,
    /// The values one column reached in one record (spans of its text), reused.
    found: Vec<(usize, usize)>,
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
            reach_keys: Vec::new(),
            reach_spans: Vec::new(),
            found: Vec::new(),
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
                let whole = Bytes::copy_from_slice(buffer.text.as_bytes());
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
            return rfc3339_micros(text.as_bytes()).or_else(|| {
                chrono::DateTime::parse_from_rfc3339(text)
                    .ok()
                    .map(|at| at.timestamp_micros())
            });
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

/// An RFC 3339 date-time in the form Google writes (`2024-01-05T10:00:07.000Z`: a fraction
/// of one to nine digits or none, `Z` or an offset `±HH:MM`) as microseconds since the epoch,
/// as chrono's parser gives them, without it; `None` for any other text (chrono reads it then,
/// and decides).
fn rfc3339_micros(t: &[u8]) -> Option<i64> {
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = t.get(from..from + n)?;
        part.iter().try_fold(0i64, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
        })
    };
    let punctuated = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if t.len() < 20 || punctuated.iter().any(|&(at, c)| t[at] != c) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut micros = 0;
    if t[at] == b'.' {
        let n = t[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=9).contains(&n) {
            return None;
        }
        // Nanoseconds, truncated to microseconds as chrono's `timestamp_micros` does.
        micros = digits(at + 1, n)? * 10i64.pow(9 - n as u32) / 1000;
        at += 1 + n;
    }
    let offset = match t.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of the civil date (Howard Hinnant's `days_from_civil`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(seconds * 1_000_000 + micros)
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

/// Writes `value` to `out` as compact JSON; true (writing JSON to a string cannot fail).
fn push_json(out: &mut String, value: &impl serde::Serialize) -> bool {
    match serde_json::to_string(value) {
        Ok(text) => {
            out.push_str(&text);
            true
        }
        Err(_) => false,
    }
}

/// The value of the JSON column `from` in `record`, the record parsed (`None`: it did not
/// parse, and the cell is written as a JSON string), as serde_json writes it: the reference
/// that [`Reach::write`] matches byte for byte. True when there is one (false: null).
fn write_parsed(
    from: &Values,
    record: Option<&Value>,
    cell: Option<&str>,
    out: &mut String,
) -> bool {
    match record {
        None => cell.is_some_and(|text| push_json(out, &text)),
        Some(record) => match from.json_in(record) {
            Some(value) => push_json(out, &value),
            None => false,
        },
    }
}

/// A JSON column read straight from the record's text: the value of its first key found by
/// [`top_level`], the rest of its path followed in that value's text, and each value reached
/// written as compact JSON from its span ([`write_compact_json`]), with no `serde_json::Value`
/// built. What it does not take on (a key repeated or escaped on the way, a value not in the
/// plain forms) it hands back, and the column's value comes from the parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reach {
    /// The first key's place in the sink's `reach_keys`.
    key: usize,
    /// The rest of the path (keys and indexes).
    rest: Vec<Segment>,
    /// Every value as an array ([`Values::Spread`]); else one value as itself, several as
    /// an array ([`Values::Whole`]).
    spread: bool,
}

impl Reach {
    /// The reach of a JSON column `from`, its first key added to `keys` if new; `None` for a
    /// column of cells, or a path this does not follow (picking by a field's value, or not
    /// starting by a key).
    fn of(from: &Values, keys: &mut Vec<String>) -> Option<Reach> {
        let (path, spread) = match from {
            Values::Cell => return None,
            Values::Whole(path) => (path, false),
            Values::Spread(path) => (path, true),
        };
        let (Segment::Key(first), rest) = path.segments().split_first()? else {
            return None;
        };
        if path.has_match() {
            return None;
        }
        let key = match keys.iter().position(|k| k == first) {
            Some(at) => at,
            None => {
                keys.push(first.clone());
                keys.len() - 1
            }
        };
        Some(Reach {
            key,
            rest: rest.to_vec(),
            spread,
        })
    }

    /// Writes this column's value in the record `raw` to `out`: `Some(true)` when it has one,
    /// `Some(false)` for none (null), `None` (`out` as it was) when the text is not taken on
    /// here and the record must be parsed. `span`: where the first key's value is in `raw`.
    fn write(
        &self,
        raw: &str,
        span: Option<(usize, usize)>,
        found: &mut Vec<(usize, usize)>,
        out: &mut String,
    ) -> Option<bool> {
        let Some((at, _)) = span else {
            return Some(false);
        };
        found.clear();
        follow(raw.as_bytes(), at, &self.rest, found)?;
        let start = out.len();
        let written = match (found.as_slice(), self.spread) {
            ([], _) => return Some(false),
            ([(from, to)], false) => write_compact_json(&raw[*from..*to], out),
            (many, _) => {
                out.push('[');
                let all = many.iter().enumerate().all(|(n, (from, to))| {
                    if n > 0 {
                        out.push(',');
                    }
                    write_compact_json(&raw[*from..*to], out)
                });
                out.push(']');
                all
            }
        };
        if !written {
            out.truncate(start);
            return None;
        }
        Some(true)
    }
}

/// Finds in the record `raw` (a JSON object) where the value of each of `keys` is, into
/// `spans` (`None`: the record lacks it); false when the record is not taken on here (not an
/// object, a key escaped or repeated at its top level).
fn top_level(raw: &str, keys: &[String], spans: &mut [Option<(usize, usize)>]) -> bool {
    spans.fill(None);
    let b = raw.as_bytes();
    let mut j = ws(b, 0);
    if b.get(j) != Some(&b'{') {
        return false;
    }
    j = ws(b, j + 1);
    if b.get(j) == Some(&b'}') {
        return true;
    }
    loop {
        let Some((key, value_at)) = field(b, j) else {
            return false;
        };
        let Some(end) = value_end(b, value_at) else {
            return false;
        };
        if let Some(at) = keys.iter().position(|k| k.as_bytes() == key) {
            if spans[at].replace((value_at, end)).is_some() {
                return false; // repeated: serde_json keeps the last, the parsed record says
            }
        }
        j = ws(b, end);
        match b.get(j) {
            Some(b',') => j = ws(b, j + 1),
            Some(b'}') => return true,
            _ => return false,
        }
    }
}

/// Adds to `found` the span of each value (not null) that `path` reaches from the value at
/// `i`, as [`crate::records::path_values`] finds them in the parsed value (a key applied to an
/// array applies to each element), in the same order; returns the index just past the value
/// at `i`, `None` when the text is not taken on here (a key escaped or repeated on the way).
fn follow(b: &[u8], i: usize, path: &[Segment], found: &mut Vec<(usize, usize)>) -> Option<usize> {
    let Some((first, rest)) = path.split_first() else {
        let end = value_end(b, i)?;
        if b[i] != b'n' {
            found.push((i, end));
        }
        return Some(end);
    };
    match (first, b.get(i)?) {
        (Segment::Key(key), b'{') => {
            let mut seen = false;
            let mut j = ws(b, i + 1);
            if b.get(j) == Some(&b'}') {
                return Some(j + 1);
            }
            loop {
                let (name, at) = field(b, j)?;
                let end = match name == key.as_bytes() {
                    true if std::mem::replace(&mut seen, true) => return None,
                    true => follow(b, at, rest, found)?,
                    false => value_end(b, at)?,
                };
                j = ws(b, end);
                match b.get(j)? {
                    b',' => j = ws(b, j + 1),
                    b'}' => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        (Segment::Key(_) | Segment::Index(_), b'[') => {
            let mut j = ws(b, i + 1);
            if b.get(j) == Some(&b']') {
                return Some(j + 1);
            }
            let mut index = 0;
            loop {
                let end = match first {
                    Segment::Key(_) => follow(b, j, path, found)?,
                    Segment::Index(n) if *n == index => follow(b, j, rest, found)?,
                    _ => value_end(b, j)?,
                };
                j = ws(b, end);
                match b.get(j)? {
                    b',' => j = ws(b, j + 1),
                    b']' => return Some(j + 1),
                    _ => return None,
                }
                index += 1;
            }
        }
        (Segment::Match { .. }, _) => None,
        _ => value_end(b, i),
    }
}

/// The key of the object field at `i` (written without escapes) and where its value starts;
/// `None` otherwise.
fn field(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let end = string_end(b, i)?;
    let key = &b[i + 1..end - 1];
    if key.contains(&b'\\') {
        return None;
    }
    let colon = ws(b, end);
    (b.get(colon) == Some(&b':')).then(|| (key, ws(b, colon + 1)))
}

/// The index just past the string that opens at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        match b[j] {
            b'"' => return Some(j + 1),
            _ => j += 2,
        }
    }
}

/// The index just past the value at `i` (the record's text is valid JSON: its scan or
/// serde_json checked it; this only finds where each value ends).
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'[' | b'{' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let end = i + b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len() - i);
            (end > i).then_some(end)
        }
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
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
                reach: None,
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
        self.reach_keys.clear();
        for column in &mut self.columns {
            column.reach = Reach::of(&column.from, &mut self.reach_keys);
        }
        self.reach_spans = vec![None; self.reach_keys.len()];
        self.buffers = columns.iter().map(|_| Buffer::default()).collect();
        Ok(())
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        let raw = row.raw().filter(|_| self.reads_records);
        // Where the JSON columns' top-level keys are in the record's text; `false`: the
        // record is read only parsed (a key repeated or escaped at its top level).
        let spanned =
            raw.is_some_and(|raw| top_level(raw, &self.reach_keys, &mut self.reach_spans));
        // The record parsed (for the JSON columns the text does not give), once a column
        // needs it.
        let mut parsed: Option<Option<Value>> = None;
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
            let present = match (&column.from, raw) {
                (Values::Cell, _) => match cell {
                    Some(text) => {
                        buffer.text.push_str(text);
                        true
                    }
                    None => false,
                },
                // No record to read: the cell, as a JSON string.
                (_, None) => cell.is_some_and(|text| push_json(&mut buffer.text, &text)),
                (from, Some(raw)) => {
                    let fast = match (&column.reach, spanned) {
                        (Some(reach), true) => {
                            let span = self.reach_spans[reach.key];
                            reach.write(raw, span, &mut self.found, &mut buffer.text)
                        }
                        _ => None,
                    };
                    match fast {
                        Some(present) => present,
                        None => {
                            let record = parsed
                                .get_or_insert_with(|| record_of(raw, self.record_keys.as_deref()));
                            write_parsed(from, record.as_ref(), cell, &mut buffer.text)
                        }
                    }
                }
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
    use crate::records::FieldPath;

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

    /// A JSON column's value in the record `raw` as the parsed record gives it (the
    /// reference), and as [`Reach`] writes it from the text (`None`: handed back).
    fn both_ways(raw: &str, from: &Values) -> (Option<String>, Option<Option<String>>) {
        let mut keys = Vec::new();
        let reach = Reach::of(from, &mut keys);
        let record_keys: Option<Vec<String>> = match from {
            Values::Whole(p) | Values::Spread(p) => match p.segments().first() {
                Some(Segment::Key(key)) => Some(vec![key.clone()]),
                _ => None,
            },
            Values::Cell => None,
        };
        let record = record_of(raw, record_keys.as_deref());
        let mut reference = String::new();
        let reference =
            write_parsed(from, record.as_ref(), None, &mut reference).then_some(reference);
        let fast = reach.and_then(|reach| {
            let mut spans = vec![None; keys.len()];
            if !top_level(raw, &keys, &mut spans) {
                return None;
            }
            let mut out = String::from("before|");
            let written = reach.write(raw, spans[reach.key], &mut Vec::new(), &mut out);
            if written.is_none() {
                assert_eq!(out, "before|", "handed back: nothing written");
            }
            written.map(|present| present.then(|| out["before|".len()..].to_owned()))
        });
        (reference, fast)
    }

    #[test]
    fn json_columns_are_written_from_the_text_as_serde_json_writes_them() {
        let raw = r#"{"id": "a", "owners": [{"e": "x", "n": 1}, {"e": "y", "z": {"b": [1, 2], "a": null}}],
            "parents": ["r", "f"], "none": null, "deep": {"list": [[{"e": 1}], {"e": [2]}]}}"#;
        for (from, expected) in [
            (
                Values::Whole(FieldPath::parse("owners").unwrap()),
                Some(r#"[{"e":"x","n":1},{"e":"y","z":{"a":null,"b":[1,2]}}]"#),
            ),
            (
                Values::Spread(FieldPath::parse("owners.e").unwrap()),
                Some(r#"["x","y"]"#),
            ),
            (
                Values::Whole(FieldPath::parse("owners.e").unwrap()),
                Some(r#"["x","y"]"#),
            ),
            (
                Values::Whole(FieldPath::parse("owners.n").unwrap()),
                Some("1"),
            ),
            (
                Values::Spread(FieldPath::parse("owners.n").unwrap()),
                Some("[1]"),
            ),
            (
                Values::Whole(FieldPath::parse("owners[1].z").unwrap()),
                Some(r#"{"a":null,"b":[1,2]}"#),
            ),
            (
                Values::Whole(FieldPath::parse("parents").unwrap()),
                Some(r#"["r","f"]"#),
            ),
            (
                Values::Whole(FieldPath::parse("deep.list.e").unwrap()),
                Some("[1,[2]]"),
            ),
            (Values::Whole(FieldPath::parse("none").unwrap()), None),
            (
                Values::Spread(FieldPath::parse("owners.missing").unwrap()),
                None,
            ),
            (Values::Whole(FieldPath::parse("missing").unwrap()), None),
        ] {
            let (reference, fast) = both_ways(raw, &from);
            assert_eq!(reference.as_deref(), expected, "{from:?}");
            assert_eq!(fast, Some(reference), "{from:?}");
        }
        // Handed back: a repeated key, an escaped one, a float.
        let owners = Values::Whole(FieldPath::parse("owners").unwrap());
        for raw in [
            r#"{"owners": [1], "owners": [2]}"#,
            r#"{"own\u0065rs": [1]}"#,
            r#"{"owners": [1.5]}"#,
            r#"{"owners": [{"a": 1, "a": 2}]}"#,
        ] {
            let (reference, fast) = both_ways(raw, &owners);
            assert!(reference.is_some(), "{raw}");
            assert_eq!(fast, None, "{raw}");
        }
    }

    /// Generated records (keys repeated and escaped, strings escaped, odd numbers, nulls,
    /// arrays in arrays, whitespace): a JSON column written from the text is the one the
    /// parsed record gives, whenever the text is taken on, and most records are.
    #[test]
    fn json_columns_from_the_text_agree_with_the_parsed_record() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed, TestRunner};
        const KEYS: &[&str] = &["\"a\"", "\"b\"", "\"e\"", "\"é\"", "\"a\\u0062\""];
        const SCALARS: &[&str] = &[
            "null",
            "true",
            "false",
            "0",
            "-0",
            "7",
            "-12",
            "1.5",
            "1.50",
            "1e5",
            "2E+10",
            "18446744073709551616",
            "123456789012345678901234567890",
            "\"x\"",
            "\"\"",
            "\"é字😀\"",
            "\"a\\nb\"",
            "\"\\u00e9\"",
            "\"\\\"q\"",
            "\"]},:\"",
        ];
        const PATHS: &[&str] = &[
            "a", "b", "e", "é", "ab", "a.b", "a.e", "a.a.a", "b.e", "a[0]", "a[1]", "a[0].b",
            "a[1].e", "a.b[0]", "e.e.e",
        ];
        let ws =
            || prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\n  "), 1 => Just("\t\r\n")];
        let scalar = prop::sample::select(SCALARS).prop_map(str::to_owned);
        let value = scalar.prop_recursive(4, 40, 5, move |inner| {
            prop_oneof![
                prop::collection::vec((ws(), inner.clone()), 0..5).prop_map(|items| {
                    let items: Vec<String> =
                        items.into_iter().map(|(w, v)| format!("{w}{v}")).collect();
                    format!("[{}]", items.join(","))
                }),
                prop::collection::vec((prop::sample::select(KEYS), ws(), inner), 0..5).prop_map(
                    |fields| {
                        let fields: Vec<String> = fields
                            .into_iter()
                            .map(|(k, w, v)| format!("{w}{k}{w}:{w}{v}"))
                            .collect();
                        format!("{{{}}}", fields.join(","))
                    }
                ),
            ]
        });
        let record = prop::collection::vec((prop::sample::select(KEYS), ws(), value), 0..6)
            .prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, w, v)| format!("{w}{k}{w}:{w}{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            });
        let case = (record, prop::sample::select(PATHS), any::<bool>());
        let config = Config {
            cases: 3000,
            rng_seed: RngSeed::Fixed(30),
            failure_persistence: None,
            ..Config::default()
        };
        let (taken, present) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
        TestRunner::new(config)
            .run(&case, |(raw, path, spread)| {
                let path = FieldPath::parse(path).unwrap();
                let from = match spread {
                    true => Values::Spread(path),
                    false => Values::Whole(path),
                };
                let (reference, fast) = both_ways(&raw, &from);
                if let Some(fast) = fast {
                    prop_assert_eq!(&fast, &reference, "record: {}, {:?}", raw, from);
                    taken.set(taken.get() + 1);
                    present.set(present.get() + u32::from(fast.is_some()));
                }
                Ok(())
            })
            .unwrap();
        let (taken, present) = (taken.get(), present.get());
        assert!(
            taken > 1000 && present > 30,
            "taken on: {taken}, with a value: {present}"
        );
    }

    /// Date-times of Google's form, and near misses: the quick reading is chrono's, or none
    /// (chrono reads those).
    #[test]
    fn date_times_read_quickly_as_chrono_reads_them() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed, TestRunner};
        let chrono_micros = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|at| at.timestamp_micros())
        };
        for t in [
            "2024-01-05T10:00:07.000Z",
            "1969-12-31T23:59:59.999999Z",
            "1970-01-01T00:00:00Z",
            "0000-03-01T00:00:00.5+23:59",
            "9999-12-31T23:59:59.123456789-23:59",
            "2024-02-29T12:00:00+01:00",
            "1900-02-28T12:00:00.1234567Z",
        ] {
            assert_eq!(rfc3339_micros(t.as_bytes()), chrono_micros(t), "{t}");
            assert!(rfc3339_micros(t.as_bytes()).is_some(), "{t}");
        }
        for t in [
            "2023-02-29T00:00:00Z",
            "2024-01-05T10:00:60Z",
            "2024-01-05t10:00:00Z",
            "2024-01-05T10:00:00.Z",
            "2024-01-05T10:00:00.0123456789Z",
            "2024-01-05T10:00:00z",
            "2024-01-05T10:00:00+24:00",
            "2024-13-05T10:00:00Z",
            "2024-01-05 10:00:00Z",
        ] {
            assert_eq!(rfc3339_micros(t.as_bytes()), None, "{t}");
        }
        let part = |lo: u32, hi: u32, width: usize| {
            prop_oneof![
                9 => (lo..=hi).prop_map(move |n| format!("{n:0width$}")),
                1 => "[0-9]{1,3}",
            ]
        };
        let case = (
            (part(0, 9999, 4), part(0, 13, 2), part(0, 32, 2)),
            (part(0, 24, 2), part(0, 60, 2), part(0, 61, 2)),
            prop_oneof![Just(String::new()), "\\.[0-9]{0,11}"],
            prop_oneof![Just("Z".to_owned()), "[+-][0-2][0-9]:[0-6][0-9]", "[zZ+ ]"],
            prop_oneof![8 => Just('T'), 1 => Just('t'), 1 => Just(' ')],
        );
        let config = Config {
            cases: 20_000,
            rng_seed: RngSeed::Fixed(30),
            failure_persistence: None,
            ..Config::default()
        };
        TestRunner::new(config)
            .run(&case, |((y, mo, d), (h, mi, s), fraction, zone, t)| {
                let text = format!("{y}-{mo}-{d}{t}{h}:{mi}:{s}{fraction}{zone}");
                if let Some(quick) = rfc3339_micros(text.as_bytes()) {
                    prop_assert_eq!(Some(quick), chrono_micros(&text), "{}", text);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_value_that_does_not_fit_a_typed_column_is_a_counted_null() {
        let mut buffer = Buffer::default();
        for cell in [Some("5"), None, Some("100000136831429000000"), Some("-7")] {
            if let Some(text) = cell {
                buffer.text.push_str(text);
                buffer.ends.push(buffer.text.len());
            }
            buffer.levels.push(i16::from(cell.is_some()));
        }
        let mut column = ParquetColumn {
            header: "version".to_owned(),
            kind: Kind::Int64,
            from: Values::Cell,
            reach: None,
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
