//! A query's columns as a BigQuery table schema, and its rows as the NDJSON a load job reads.
//!
//! Types are the column schema's ([`ColumnSchema`]: from the Discovery schema, or a report's
//! own headers, read from its first page before any row is staged), mapped by [`BqType::of`],
//! with what a table can say and a sheet cannot: a path that reaches an object, a map or an
//! array, or steps through an array, is a `JSON` column (the value taken from the record, not
//! the `;`-joined cell); a `uint64` is `NUMERIC` (every one fits, where `INT64` stops at
//! 2^63); a local date-time (GA4's `dateHour`) a `DATETIME`. A column whose paths disagree (a
//! fallback) is `STRING`. Every field is `NULLABLE`.
//!
//! A value that does not parse as its column's type fails the query here, naming the row and
//! the column, rather than failing the job after the upload. The NDJSON is ASCII (every
//! other character `\u`-escaped), so that any byte offset is a character boundary for the
//! chunks of a resumable upload.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use crate::plan::QueryPlan;
pub use crate::records::schema::Values;
use crate::records::schema::{parse_date, parse_local_date_time, ColumnSchema, ColumnType};
use crate::records::Column;

/// BigQuery's limit of columns per table.
pub const MAX_COLUMNS: usize = 10_000;

/// Column names BigQuery reserves (case-insensitive prefixes).
const RESERVED_PREFIXES: &[&str] = &[
    "_TABLE_",
    "_FILE_",
    "_PARTITION",
    "_ROW_TIMESTAMP",
    "__ROOT__",
    "_COLUMN_",
];

/// A column's BigQuery type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BqType {
    String,
    Int64,
    Numeric,
    Float64,
    Bool,
    Timestamp,
    Datetime,
    Date,
    Json,
}

impl BqType {
    pub fn name(self) -> &'static str {
        match self {
            BqType::String => "STRING",
            BqType::Int64 => "INT64",
            BqType::Numeric => "NUMERIC",
            BqType::Float64 => "FLOAT64",
            BqType::Bool => "BOOL",
            BqType::Timestamp => "TIMESTAMP",
            BqType::Datetime => "DATETIME",
            BqType::Date => "DATE",
            BqType::Json => "JSON",
        }
    }

    /// A column of the schema as a table types it: the one mapping of [`ColumnType`] to
    /// BigQuery's types.
    pub fn of(kind: ColumnType) -> BqType {
        match kind {
            ColumnType::Text => BqType::String,
            ColumnType::Integer => BqType::Int64,
            ColumnType::Unsigned => BqType::Numeric,
            ColumnType::Number => BqType::Float64,
            ColumnType::Boolean => BqType::Bool,
            ColumnType::DateTime => BqType::Timestamp,
            ColumnType::LocalDateTime => BqType::Datetime,
            ColumnType::Date => BqType::Date,
            ColumnType::Json => BqType::Json,
        }
    }
}

/// One column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BqColumn {
    /// The name in the table (letters, digits, underscores).
    pub name: String,
    /// The column as the query names it.
    pub header: String,
    pub kind: BqType,
    from: Values,
}

/// The table's columns for `columns` (the plan's own typed, a report's text until its
/// response types them): why not, when two columns would have one name (or one cannot be
/// named).
pub fn table_columns(plan: &QueryPlan, columns: &[Column]) -> Result<Vec<BqColumn>, String> {
    name_columns(columns, &plan.schema_of(columns))
}

/// `columns` named for BigQuery (no two alike) and typed by `schema`.
pub fn name_columns(columns: &[Column], schema: &ColumnSchema) -> Result<Vec<BqColumn>, String> {
    if columns.len() > MAX_COLUMNS {
        return Err(format!(
            "{} columns, more than a BigQuery table may have ({MAX_COLUMNS}): list fewer `columns`",
            columns.len()
        ));
    }
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut out = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let name = column_name(&column.header)?;
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), &column.header) {
            return Err(format!(
                "the columns `{first}` and `{}` would both be the BigQuery column `{name}` \
                 (names are letters, digits and underscores, and case-insensitive): name one \
                 of them with {{ name = \"...\", path = \"...\" }}",
                column.header
            ));
        }
        let typed = schema.columns().get(i);
        out.push(BqColumn {
            name,
            header: column.header.clone(),
            kind: BqType::of(schema.kind(i)),
            from: typed.map_or(Values::Cell, |c| c.from.clone()),
        });
    }
    Ok(out)
}

impl BqColumn {
    /// Its values are read from the record (a `JSON` column), not from the cell.
    pub fn reads_record(&self) -> bool {
        self.from.from_record()
    }
}

/// True when some column takes its values from the record (a `JSON` column): the rows must
/// carry their records ([`crate::records::Row::raw`]).
pub fn reads_records(plan: &QueryPlan) -> bool {
    plan.query.bigquery.is_some()
        && table_columns(plan, &plan.columns)
            .is_ok_and(|columns| columns.iter().any(BqColumn::reads_record))
}

/// The table schema of a load job.
pub fn schema_json(columns: &[BqColumn]) -> Value {
    let fields: Vec<Value> = columns
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "type": c.kind.name(), "mode": "NULLABLE"}))
        .collect();
    serde_json::json!({ "fields": fields })
}

/// A column header as a BigQuery column name: each run of other characters one underscore
/// (`owners.emailAddress` → `owners_emailAddress`, `owners[0].id` → `owners_0_id`), an
/// underscore before a leading digit. Refused: a header with no letter or digit, a reserved
/// prefix, more than 300 characters.
pub fn column_name(header: &str) -> Result<String, String> {
    let mut name = String::with_capacity(header.len());
    let mut gap = false;
    for c in header.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            if gap && !name.is_empty() {
                name.push('_');
            }
            gap = false;
            name.push(c);
        } else {
            gap = true;
        }
    }
    if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "the column `{header}` has no ASCII letter or digit to name a BigQuery column by: \
             name it with {{ name = \"...\", path = \"...\" }}"
        ));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    let upper = name.to_ascii_uppercase();
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| upper.starts_with(*p)) {
        return Err(format!(
            "the column `{header}` would be the BigQuery column `{name}`, whose prefix \
             `{prefix}` BigQuery reserves: name it otherwise with {{ name = \"...\", path = \"...\" }}"
        ));
    }
    if name.len() > 300 {
        return Err(format!(
            "the column `{header}` is longer than BigQuery's 300 characters: name it with {{ name = \"...\", path = \"...\" }}"
        ));
    }
    Ok(name)
}

/// A value that does not fit its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    pub column: String,
    pub value: String,
    pub kind: BqType,
}

/// Appends the NDJSON line of one row: its cells by column (`cells`, column order), the
/// values of `JSON` columns from `record`. A missing cell is `null`.
pub fn encode_row<'a>(
    out: &mut Vec<u8>,
    columns: &[BqColumn],
    cells: impl Iterator<Item = (usize, &'a str)>,
    record: Option<&Value>,
) -> Result<(), Unfit> {
    let mut cells = cells.peekable();
    out.push(b'{');
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(column.name.as_bytes());
        out.extend_from_slice(b"\":");
        let cell = match cells.peek() {
            Some(&(at, text)) if at == i => {
                cells.next();
                Some(text)
            }
            _ => None,
        };
        match (&column.from, record) {
            (Values::Cell, _) => match cell {
                None => out.extend_from_slice(b"null"),
                Some(text) => typed(out, text, column.kind).map_err(|()| Unfit {
                    column: column.header.clone(),
                    value: text.to_owned(),
                    kind: column.kind,
                })?,
            },
            (from, Some(record)) => match from.json_in(record) {
                None => out.extend_from_slice(b"null"),
                Some(value) => ascii(out, &value),
            },
            // No record kept (cannot happen: the reader keeps them): the cell as a string.
            (_, None) => match cell {
                None => out.extend_from_slice(b"null"),
                Some(text) => ascii(out, &text),
            },
        }
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// `text` as the JSON value a `kind` column loads exactly; `Err` when it is not one.
fn typed(out: &mut Vec<u8>, text: &str, kind: BqType) -> Result<(), ()> {
    match kind {
        BqType::String => ascii(out, &text),
        // As strings: BigQuery reads them exactly (a JSON number past 2^53 may not be).
        BqType::Int64 => {
            let value = plain_integer(text)?.parse::<i64>().map_err(drop)?;
            ascii(out, &value.to_string())
        }
        BqType::Numeric => {
            let digits = plain_integer(text)?;
            let value = digits.parse::<i128>().map_err(drop)?;
            if value.unsigned_abs() >= 10u128.pow(29) {
                return Err(());
            }
            ascii(out, &value.to_string())
        }
        BqType::Float64 => match text {
            "NaN" | "Infinity" | "-Infinity" => ascii(out, &text),
            _ => {
                let number: serde_json::Number = serde_json::from_str(text).map_err(drop)?;
                number.as_f64().filter(|n| n.is_finite()).ok_or(())?;
                out.extend_from_slice(text.as_bytes());
            }
        },
        BqType::Bool => match text {
            "true" | "false" => out.extend_from_slice(text.as_bytes()),
            _ => return Err(()),
        },
        BqType::Timestamp => {
            let at = chrono::DateTime::parse_from_rfc3339(text).map_err(drop)?;
            let utc = at.to_utc().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            ascii(out, &utc)
        }
        BqType::Datetime => {
            let at = parse_local_date_time(text).ok_or(())?;
            ascii(out, &at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        }
        BqType::Date => {
            let day = parse_date(text).ok_or(())?;
            ascii(out, &day.format("%Y-%m-%d").to_string())
        }
        BqType::Json => ascii(out, &text),
    }
    Ok(())
}

/// An integer's text without sign noise: digits, after an optional `-`.
fn plain_integer(text: &str) -> Result<&str, ()> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    match !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(text),
        false => Err(()),
    }
}

/// Writes `value` as JSON, every character past ASCII `\u`-escaped.
fn ascii(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    let mut serializer = serde_json::Serializer::with_formatter(out, Ascii);
    // Writing to a Vec cannot fail, and a JSON value or a string always serializes.
    let _ = value.serialize(&mut serializer);
}

/// serde_json's compact form, with `\uXXXX` for every character past ASCII.
struct Ascii;

impl serde_json::ser::Formatter for Ascii {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_column_names() {
        assert_eq!(
            column_name("owners.emailAddress").unwrap(),
            "owners_emailAddress"
        );
        assert_eq!(
            column_name("owners[0].emailAddress").unwrap(),
            "owners_0_emailAddress"
        );
        assert_eq!(
            column_name("start.dateTime|start.date").unwrap(),
            "start_dateTime_start_date"
        );
        assert_eq!(column_name("1st").unwrap(), "_1st");
        assert_eq!(column_name("a__b").unwrap(), "a__b");
        assert!(column_name("日本").is_err());
        assert!(column_name("_PARTITIONTIME").is_err());
        assert!(column_name("_table_x").is_err());
    }

    fn line(kind: BqType, text: &str) -> Result<String, Unfit> {
        let columns = [BqColumn {
            name: "c".to_owned(),
            header: "c".to_owned(),
            kind,
            from: Values::Cell,
        }];
        let mut out = Vec::new();
        encode_row(&mut out, &columns, [(0, text)].into_iter(), None)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn values_are_written_as_their_column_loads_them() {
        let ok = |kind, text| line(kind, text).unwrap();
        assert_eq!(
            ok(BqType::Int64, "9007199254740993"),
            "{\"c\":\"9007199254740993\"}\n"
        );
        assert_eq!(ok(BqType::Int64, "-5"), "{\"c\":\"-5\"}\n");
        assert!(line(BqType::Int64, "100000136831429000000").is_err());
        assert!(line(BqType::Int64, "1.5").is_err());
        assert_eq!(
            ok(BqType::Numeric, "18446744073709551615"),
            "{\"c\":\"18446744073709551615\"}\n"
        );
        assert_eq!(ok(BqType::Float64, "1.50"), "{\"c\":1.50}\n");
        assert_eq!(ok(BqType::Float64, "NaN"), "{\"c\":\"NaN\"}\n");
        assert!(line(BqType::Float64, "abc").is_err());
        assert_eq!(ok(BqType::Bool, "true"), "{\"c\":true}\n");
        assert_eq!(
            ok(BqType::Timestamp, "2024-03-01T10:00:00.5+01:00"),
            "{\"c\":\"2024-03-01T09:00:00.500000Z\"}\n"
        );
        assert_eq!(ok(BqType::Date, "2024-02-29"), "{\"c\":\"2024-02-29\"}\n");
        assert_eq!(ok(BqType::Date, "20240630"), "{\"c\":\"2024-06-30\"}\n");
        assert_eq!(
            ok(BqType::Datetime, "2024063014"),
            "{\"c\":\"2024-06-30T14:00:00.000000\"}\n"
        );
        assert!(line(BqType::Date, "2023-02-29").is_err());
        assert_eq!(
            ok(BqType::String, "Café ☕ \u{1F600}\n"),
            "{\"c\":\"Caf\\u00e9 \\u2615 \\ud83d\\ude00\\n\"}\n"
        );
        let mut out = Vec::new();
        let columns = [BqColumn {
            name: "c".to_owned(),
            header: "c".to_owned(),
            kind: BqType::String,
            from: Values::Cell,
        }];
        encode_row(&mut out, &columns, std::iter::empty(), None).unwrap();
        assert_eq!(out, b"{\"c\":null}\n");
    }
}
