//! The one column schema: what each column of a query holds ([`ColumnType`]) and where its
//! values come from ([`Values`]), whatever the output. Planning builds it from Discovery's
//! types ([`ColumnType::of`], `QueryPlan::column_schema`); a report's own first response
//! completes it ([`ColumnSchema::complete`], from GA4's metric types, YouTube Analytics'
//! `dataType`, BigQuery's schema, Search Console's metrics). Each typed sink maps a
//! [`ColumnType`] to its own types in one function: xlsx and Sheets cells
//! (`sink::cells::typed`), Parquet's `Kind::of`, BigQuery's `BqType::of`.

use chrono::{NaiveDate, NaiveDateTime};

use super::{path_values, FieldPath};
use crate::discovery::schema::{resolve, schema_at};
use crate::discovery::{Document, Schema};

/// What a column's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// A signed integer (Discovery's `integer`, an `int64` string).
    Integer,
    /// A `uint64` string: every one fits 64 bits unsigned, not all a signed integer.
    Unsigned,
    /// A double.
    Number,
    Boolean,
    /// An instant: RFC 3339 text with its offset.
    DateTime,
    /// A date and time of day in no time zone (GA4's `dateHour` as `2024063014`, in the
    /// property's time zone).
    LocalDateTime,
    /// A day: `2024-06-30`, or GA4's `20240630`.
    Date,
    /// A value read whole from the record (an object, a map, an array, or a path through an
    /// array): a table or a Parquet file keeps it as JSON, a cell holds its text.
    Json,
}

impl ColumnType {
    /// The type of a (resolved) Discovery schema: `int64` strings are integers (Google sends
    /// int64 values as JSON strings, so a string's format decides as much as its type),
    /// `uint64` strings unsigned, `date-time` and `google-datetime` strings instants, `date`
    /// strings days; anything else text.
    pub fn of(schema: &Schema) -> ColumnType {
        match (schema.kind.as_deref(), schema.format.as_deref()) {
            (Some("string"), Some("uint64")) => ColumnType::Unsigned,
            (Some("integer"), _) | (Some("string"), Some("int64")) => ColumnType::Integer,
            (Some("number"), _) => ColumnType::Number,
            (Some("boolean"), _) => ColumnType::Boolean,
            (Some("string"), Some("date-time" | "google-datetime")) => ColumnType::DateTime,
            (Some("string"), Some("date")) => ColumnType::Date,
            _ => ColumnType::Text,
        }
    }

    /// The type of the field at `keys` in `record` (arrays stepped into); text where the
    /// schema does not describe it.
    pub fn at(doc: &Document, record: &Schema, keys: &[String]) -> ColumnType {
        schema_at(doc, record, keys).map_or(ColumnType::Text, |s| ColumnType::of(resolve(doc, s)))
    }

    /// True for the integers (signed or not).
    pub fn is_integer(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Unsigned)
    }
}

/// A day as its text says it: `2024-06-30`, or eight digits `20240630` (GA4's `date`).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    match text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        true => NaiveDate::parse_from_str(text, "%Y%m%d").ok(),
        false => NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
    }
}

/// A date and time of day in no zone: `2024-06-30T14:05:00`, or GA4's digits `2024063014`
/// (`dateHour`) and `202406301405` (`dateHourMinute`).
pub fn parse_local_date_time(text: &str) -> Option<NaiveDateTime> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    match (digits, text.len()) {
        (true, 10) => NaiveDateTime::parse_from_str(&format!("{text}00"), "%Y%m%d%H%M").ok(),
        (true, 12) => NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M").ok(),
        _ => NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok(),
    }
}

/// Where a column's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// The row's cell text.
    Cell,
    /// The one value at the path (an object, a map, an array).
    Whole(FieldPath),
    /// Every value the path reaches through an array, as an array.
    Spread(FieldPath),
}

/// The value of a JSON column in one record: the one value its path reaches, or the array
/// of the values a path through an array reaches.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum JsonCell<'v> {
    One(&'v serde_json::Value),
    Many(Vec<&'v serde_json::Value>),
}

impl Values {
    /// True for a column whose values are read from the record (JSON), not from the cell.
    pub fn from_record(&self) -> bool {
        *self != Values::Cell
    }

    /// This column's value in `record` (`None`: the record has none, a null); `None` for a
    /// column whose values are its cells.
    pub fn json_in<'v>(&self, record: &'v serde_json::Value) -> Option<JsonCell<'v>> {
        match self {
            Values::Cell => None,
            Values::Whole(path) => {
                let mut found = path_values(record, path);
                match found.len() {
                    0 => None,
                    1 => found.pop().map(JsonCell::One),
                    _ => Some(JsonCell::Many(found)),
                }
            }
            Values::Spread(path) => {
                let found = path_values(record, path);
                (!found.is_empty()).then_some(JsonCell::Many(found))
            }
        }
    }
}

/// One column of the schema: the type of each path it reads (a fallback column has one per
/// path, and each cell takes the type of the path that answered), and where its values come
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaColumn {
    pub paths: Vec<ColumnType>,
    pub from: Values,
}

impl SchemaColumn {
    /// A column of cells all of `kind`.
    pub fn cells(kind: ColumnType) -> Self {
        SchemaColumn {
            paths: vec![kind],
            from: Values::Cell,
        }
    }

    /// The type of the whole column: JSON when read from the record, else the type its paths
    /// agree on, else text.
    pub fn kind(&self) -> ColumnType {
        if self.from.from_record() {
            return ColumnType::Json;
        }
        match self.paths.split_first() {
            Some((first, rest)) if rest.iter().all(|t| t == first) => *first,
            _ => ColumnType::Text,
        }
    }
}

/// The types of a query's columns, in column order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnSchema(pub Vec<SchemaColumn>);

impl ColumnSchema {
    /// `columns` columns of text (a report's, until its response types them).
    pub fn text(columns: usize) -> Self {
        ColumnSchema(vec![SchemaColumn::cells(ColumnType::Text); columns])
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn columns(&self) -> &[SchemaColumn] {
        &self.0
    }

    /// The type of a cell of `column` that its path number `answered` filled (0 but in a
    /// fallback column). A JSON column's cell is typed by the field its path reaches (the
    /// `;`-joined values of a path through an array stay text when they are several).
    pub fn of(&self, column: usize, answered: usize) -> ColumnType {
        self.0
            .get(column)
            .and_then(|c| c.paths.get(answered))
            .copied()
            .unwrap_or(ColumnType::Text)
    }

    /// The type of the whole of `column` ([`SchemaColumn::kind`]); text past the last.
    pub fn kind(&self, column: usize) -> ColumnType {
        self.0
            .get(column)
            .map_or(ColumnType::Text, SchemaColumn::kind)
    }

    /// The type of every cell of `column`, when its paths agree on one.
    pub fn common(&self, column: usize) -> Option<ColumnType> {
        let c = self.0.get(column)?;
        let first = *c.paths.first()?;
        c.paths.iter().all(|t| *t == first).then_some(first)
    }

    /// Completes the schema with the types a report's response declares for its columns (in
    /// column order): each text column takes its declared type. False, changing nothing, when
    /// they are not one per column.
    pub fn complete(&mut self, declared: &[ColumnType]) -> bool {
        if declared.len() != self.0.len() {
            return false;
        }
        for (column, &kind) in self.0.iter_mut().zip(declared) {
            if column.from == Values::Cell && column.paths == [ColumnType::Text] {
                column.paths = vec![kind];
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ga4_dates_and_hours_read_as_days_and_times() {
        let day = NaiveDate::from_ymd_opt(2024, 6, 30).unwrap();
        assert_eq!(parse_date("20240630"), Some(day));
        assert_eq!(parse_date("2024-06-30"), Some(day));
        assert_eq!(parse_date("20240631"), None);
        assert_eq!(parse_date("2024063"), None);
        assert_eq!(
            parse_local_date_time("2024063014"),
            day.and_hms_opt(14, 0, 0)
        );
        assert_eq!(
            parse_local_date_time("202406301405"),
            day.and_hms_opt(14, 5, 0)
        );
        assert_eq!(
            parse_local_date_time("2024-06-30T14:05:00"),
            day.and_hms_opt(14, 5, 0)
        );
        assert_eq!(parse_local_date_time("2024063025"), None);
    }

    #[test]
    fn a_report_completes_only_its_text_columns() {
        let mut schema = ColumnSchema(vec![
            SchemaColumn::cells(ColumnType::Text),
            SchemaColumn::cells(ColumnType::Date),
            SchemaColumn {
                paths: vec![ColumnType::Text],
                from: Values::Whole(FieldPath::key("x")),
            },
        ]);
        assert!(!schema.complete(&[ColumnType::Integer]));
        assert!(schema.complete(&[ColumnType::Integer, ColumnType::Number, ColumnType::Number]));
        assert_eq!(schema.kind(0), ColumnType::Integer);
        assert_eq!(
            schema.kind(1),
            ColumnType::Date,
            "typed by Discovery already"
        );
        assert_eq!(schema.kind(2), ColumnType::Json);
        assert_eq!(
            schema.of(2, 0),
            ColumnType::Text,
            "not completed: read from the record"
        );
        assert_eq!(schema.kind(9), ColumnType::Text);
    }

    #[test]
    fn fallback_columns_agree_or_are_text() {
        let column = SchemaColumn {
            paths: vec![ColumnType::DateTime, ColumnType::Date],
            from: Values::Cell,
        };
        assert_eq!(column.kind(), ColumnType::Text);
        let schema = ColumnSchema(vec![column]);
        assert_eq!(schema.of(0, 1), ColumnType::Date);
        assert_eq!(schema.common(0), None);
    }
}
