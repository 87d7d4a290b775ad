//! Typed cells for the formats that have types (xlsx, Google Sheets): what each column holds,
//! as the Discovery schema types its field, and a cell's text read as that type. A spreadsheet
//! number is a double, so an integer of more than 15 significant digits (a 21-digit Directory
//! user id) stays text, exact; text that does not parse as its type stays text.

use chrono::{NaiveDate, NaiveDateTime};

use crate::discovery::schema;
use crate::plan::{record_schema, QueryPlan};
use crate::records::{ColumnSource, Decoder};

/// What a column holds, as the Discovery schema types its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    Number,
    Boolean,
    DateTime,
    Date,
}

impl ColumnType {
    /// The type of a schema field (`int64` strings are integers, `date-time` strings dates).
    fn of_schema(kind: Option<&str>, format: Option<&str>) -> ColumnType {
        match (kind, format) {
            (Some("integer"), _) | (Some("string"), Some("int64" | "uint64")) => {
                ColumnType::Integer
            }
            (Some("number"), _) => ColumnType::Number,
            (Some("boolean"), _) => ColumnType::Boolean,
            (Some("string"), Some("date-time" | "google-datetime")) => ColumnType::DateTime,
            (Some("string"), Some("date")) => ColumnType::Date,
            _ => ColumnType::Text,
        }
    }
}

/// The type of each of `plan`'s columns, from its record schema. A template column, a field
/// the schema does not describe, fallbacks, or a report's columns are text.
pub fn column_types(plan: &QueryPlan) -> Vec<ColumnType> {
    let records = match &plan.decoder {
        Decoder::Records(records) => records.as_ref(),
        _ => return vec![ColumnType::Text; plan.columns.len()],
    };
    let record = record_schema(&plan.doc, &plan.method, records);
    plan.columns
        .iter()
        .map(|column| match (&column.source, &record) {
            (ColumnSource::Path(path), Some(record)) => {
                let keys: Vec<String> = path.keys().map(str::to_owned).collect();
                schema::schema_at(&plan.doc, record, &keys)
                    .map(|s| schema::resolve(&plan.doc, s))
                    .map_or(ColumnType::Text, |s| {
                        ColumnType::of_schema(s.kind.as_deref(), s.format.as_deref())
                    })
            }
            _ => ColumnType::Text,
        })
        .collect()
}

/// A cell's value, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Text(&'a str),
    Integer(i64),
    Number(f64),
    Boolean(bool),
    /// UTC.
    DateTime(NaiveDateTime),
    Date(NaiveDate),
}

/// `text` read as `kind`, or as text when it does not parse (or would lose digits).
pub fn typed(text: &str, kind: ColumnType) -> Cell<'_> {
    let cell = match kind {
        ColumnType::Text => None,
        ColumnType::Integer => {
            let unsigned = text.strip_prefix('-').unwrap_or(text);
            let digits = unsigned.trim_start_matches('0');
            let plain = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
            match plain && digits.len() <= 15 {
                true => text.parse::<i64>().ok().map(Cell::Integer),
                false => None,
            }
        }
        ColumnType::Number => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Cell::Number),
        ColumnType::Boolean => match text {
            "true" => Some(Cell::Boolean(true)),
            "false" => Some(Cell::Boolean(false)),
            _ => None,
        },
        ColumnType::DateTime => chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Cell::DateTime(t.naive_utc())),
        ColumnType::Date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(Cell::Date),
    };
    cell.unwrap_or(Cell::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_longer_than_15_digits_stay_text() {
        assert_eq!(
            typed("123456789012345", ColumnType::Integer),
            Cell::Integer(123456789012345)
        );
        let id = "100001368314290123456";
        assert_eq!(typed(id, ColumnType::Integer), Cell::Text(id));
        assert_eq!(typed("-42", ColumnType::Integer), Cell::Integer(-42));
        assert_eq!(typed("00123", ColumnType::Text), Cell::Text("00123"));
        assert_eq!(typed("1.5", ColumnType::Integer), Cell::Text("1.5"));
        assert_eq!(
            typed("2024-03-01T10:00:00.000+01:00", ColumnType::DateTime),
            Cell::DateTime(
                NaiveDate::from_ymd_opt(2024, 3, 1)
                    .unwrap()
                    .and_hms_opt(9, 0, 0)
                    .unwrap()
            )
        );
        assert_eq!(typed("soon", ColumnType::Date), Cell::Text("soon"));
    }
}
