//! Typed cells for the spreadsheets (xlsx, Google Sheets): the column schema's type of a
//! cell ([`ColumnType`], from Discovery or a report's own headers) mapped to a spreadsheet
//! value ([`typed`]), the one mapping both sheets share.
//! A spreadsheet number is a double, so an integer of more than 15 significant digits (a
//! 21-digit Directory user id) stays text, exact; text that does not parse as its type stays
//! text. A fallback column (`path = ["start.dateTime", "start.date"]`) has a type per path,
//! and each cell takes the type of the path that answered
//! ([`Row::cells_answered`](crate::records::Row::cells_answered)).

use chrono::{NaiveDate, NaiveDateTime};

use crate::records::schema::{parse_date, parse_local_date_time};
pub use crate::records::schema::{ColumnSchema, ColumnType};

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

/// `text` read as `kind`, or as text when it does not parse (or would lose digits): an
/// integer (signed or not) of at most 15 digits a number, a local date-time as it is, a
/// JSON column's cell (its text) text.
pub fn typed(text: &str, kind: ColumnType) -> Cell<'_> {
    let cell = match kind {
        ColumnType::Text | ColumnType::Json => None,
        ColumnType::Integer | ColumnType::Unsigned => {
            let unsigned = text.strip_prefix('-').unwrap_or(text);
            let digits = unsigned.trim_start_matches('0');
            let plain = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
            match plain && digits.len() <= 15 {
                true => text.parse::<i64>().ok().map(Cell::Integer),
                false => None,
            }
        }
        ColumnType::Number => exact_double(text).map(Cell::Number),
        ColumnType::Boolean => match text {
            "true" => Some(Cell::Boolean(true)),
            "false" => Some(Cell::Boolean(false)),
            _ => None,
        },
        ColumnType::DateTime => chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Cell::DateTime(t.naive_utc())),
        ColumnType::LocalDateTime => parse_local_date_time(text).map(Cell::DateTime),
        ColumnType::Date => parse_date(text).map(Cell::Date),
    };
    cell.unwrap_or(Cell::Text(text))
}

/// `text`, a JSON number, as the double that holds it exactly: one whose shortest decimal form
/// has the same digits and scale (`0.1`, `1.50`, `2e3`, `0.30000000000000004`). A number with
/// more digits than a double keeps (`123456789012345678901234567890`, `1.00000000000000001`),
/// or past its range, has none: it stays text, as Google sent it.
fn exact_double(text: &str) -> Option<f64> {
    let n = text.parse::<f64>().ok().filter(|n| n.is_finite())?;
    (decimal(text)? == decimal(&format!("{n:e}"))?).then_some(n)
}

/// A decimal number's significant digits and the power of ten of its last digit, leading and
/// trailing zeros dropped (`-1.50e2` → `("15", 1)`, negative); `None` when it is not one.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    if trimmed.is_empty() {
        return Some((false, String::new(), 0)); // zero, whatever its sign
    }
    let scale = exponent - fraction.len() as i64 + (significant.len() - trimmed.len()) as i64;
    Some((negative, trimmed.to_owned(), scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_a_double_cannot_hold_stay_text() {
        for (text, number) in [
            ("1.5", Some(1.5)),
            ("1.50", Some(1.5)),
            ("2e3", Some(2000.0)),
            ("-0", Some(0.0)),
            ("0.1", Some(0.1)),
            ("0.30000000000000004", Some(0.30000000000000004)),
            ("1.5e+300", Some(1.5e300)),
            ("123456789012345678901234567890", None),
            ("1.00000000000000001", None),
            ("9007199254740993", None),
            ("1e400", None),
        ] {
            let cell = typed(text, ColumnType::Number);
            match number {
                Some(n) => assert_eq!(cell, Cell::Number(n), "{text}"),
                None => assert_eq!(cell, Cell::Text(text), "{text}"),
            }
        }
    }

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
        let day = NaiveDate::from_ymd_opt(2024, 6, 30).unwrap();
        assert_eq!(typed("20240630", ColumnType::Date), Cell::Date(day));
        assert_eq!(
            typed("2024063014", ColumnType::LocalDateTime),
            Cell::DateTime(day.and_hms_opt(14, 0, 0).unwrap())
        );
        assert_eq!(
            typed("18446744073709551615", ColumnType::Unsigned),
            Cell::Text("18446744073709551615")
        );
    }
}
