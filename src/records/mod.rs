//! Records and columns: a page's text into rows ([`PageReader`], the one way in), the records
//! pulled out of a response page, and one record turned into one [`Row`] by its columns.
//!
//! Flattening rules: nested objects are reached with dotted paths; arrays of scalars become one
//! cell joined with `;`; arrays of objects and maps become one cell of compact JSON unless a path
//! picks into them; missing or null is an empty cell; numbers and booleans are their JSON text;
//! strings (int64-as-string too) are unchanged.

pub mod caveat;
mod compact;
pub mod decode;
mod page;
pub mod path;
mod row;
mod scan;
pub mod schema;
mod skip;
mod stream;
mod strict;
mod tree;

use serde_json::Value;

pub use caveat::{Caveat, CaveatKind, Caveats};
pub use decode::Decoder;
pub use page::{Page, PageError, PageReader};
pub use path::{FieldPath, PathError, Segment};
pub use row::Row;
pub use stream::Stopped;

/// serde_json's words for what is wrong with a page, the depth named where it refused the
/// nesting (its "recursion limit exceeded" does not say how deep).
pub fn json_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.strip_prefix("recursion limit exceeded") {
        Some(at) => format!(
            "arrays and objects nested more than {} deep{at} (the limit of serde_json, and of every JSON path here)",
            strict::MAX_DEPTH - 1
        ),
        None => text,
    }
}

/// Joins the values of an array of scalars in one cell.
pub const LIST_SEPARATOR: &str = ";";

/// Writes `json`, the text of one valid JSON value (starting at its first byte), to `out` as
/// compact JSON exactly as serde_json writes that value parsed (object keys sorted); false,
/// and `out` as it was, when it is not in the plain forms this takes (an escape, a float, a
/// repeated key): the caller parses it.
pub fn write_compact_json(json: &str, out: &mut String) -> bool {
    compact::write_json(json, out)
}

/// One CSV column: its header and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub header: String,
    pub source: ColumnSource,
}

/// Where a column's cells come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    /// A field of the record.
    Path(FieldPath),
    /// The first of these fields that is present and not empty (`start.dateTime`, else
    /// `start.date` for an all-day event).
    FirstOf(Vec<FieldPath>),
    /// A template (e.g. `{{ messages.id }}`, a field of the parent record in a fan-out),
    /// rendered once per request chain and the same for each of its records.
    Template(String),
}

impl Column {
    /// A column whose header is its path (the default columns, and bare path strings).
    pub fn from_path(path: FieldPath) -> Self {
        Column {
            header: path.as_str().to_owned(),
            source: ColumnSource::Path(path),
        }
    }
}

/// Takes the records out of a response page: the array at `records` (each element a record;
/// an absent array — Google omits empty ones — is no record), or the whole page as one record.
pub fn take_records(mut page: Value, records: Option<&FieldPath>) -> Vec<Value> {
    let Some(path) = records else {
        return vec![page];
    };
    let mut node = &mut page;
    for segment in path.segments() {
        let next = match (segment, node) {
            (Segment::Key(key), Value::Object(map)) => map.get_mut(key),
            (Segment::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return Vec::new(),
        }
    }
    match node.take() {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// One record per element of the array at `path` (keys only), the rest of the record repeated
/// on each; a record whose array is missing or empty stays, with null there.
pub fn explode(records: Vec<Value>, path: &FieldPath) -> Vec<Value> {
    let keys: Vec<&str> = path.keys().collect();
    let Some((last, parents)) = keys.split_last() else {
        return records;
    };
    let mut out = Vec::with_capacity(records.len());
    for mut record in records {
        let items = parents
            .iter()
            .try_fold(&mut record, |node, key| node.get_mut(*key))
            .and_then(|parent| parent.get_mut(*last))
            .map(Value::take);
        match items {
            Some(Value::Array(items)) if !items.is_empty() => {
                for item in items {
                    let mut copy = record.clone();
                    if let Some(slot) = parents
                        .iter()
                        .try_fold(&mut copy, |node, key| node.get_mut(*key))
                        .and_then(|parent| parent.get_mut(*last))
                    {
                        *slot = item;
                    }
                    out.push(copy);
                }
            }
            Some(Value::Array(_)) | None => out.push(record),
            Some(other) => {
                // Not an array: put it back, one row as it is.
                if let Some(slot) = parents
                    .iter()
                    .try_fold(&mut record, |node, key| node.get_mut(*key))
                    .and_then(|parent| parent.get_mut(*last))
                {
                    *slot = other;
                }
                out.push(record);
            }
        }
    }
    out
}

/// What a JSON value is, for messages: `the number 1`, `the string "a"`, `an array`.
pub fn json_kind(value: &Value) -> String {
    use crate::redact::quote;
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {}", quote(n.as_str())),
        Value::String(s) => format!("the string {:?}", quote(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Refuses a page that is not a JSON object (every Google response is one), or whose records
/// are not an array of JSON objects (`[1, "a", null]`, or one object where the array should
/// be): written, they would be blank rows, or a guess, in an export that looks complete. The
/// same refusal on every path: the scan hands such pages to this check.
pub fn check_records(page: &Value, records: Option<&FieldPath>) -> Result<(), String> {
    if !page.is_object() {
        return Err(format!(
            "the response is {}, not a JSON object",
            json_kind(page)
        ));
    }
    let Some(path) = records else {
        return Ok(());
    };
    match path.lookup(page) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) => match items.iter().position(|v| !v.is_object()) {
            None => Ok(()),
            Some(i) => Err(format!(
                "record {} of `{path}` is {}, not a JSON object",
                i + 1,
                json_kind(&items[i])
            )),
        },
        Some(other) => Err(format!(
            "`{path}` is {}, not an array of records",
            json_kind(other)
        )),
    }
}

/// How many records `take_records` would take from `page`, without taking them.
pub fn count_records(page: &Value, records: Option<&FieldPath>) -> usize {
    let Some(path) = records else {
        return 1;
    };
    match path.lookup(page) {
        Some(Value::Array(items)) => items.len(),
        None | Some(Value::Null) => 0,
        Some(_) => 1,
    }
}

/// Fills `row` with the cells of `record`, one per column (the buffer is reused across
/// records). `rendered` holds the value of each template column, by column index; a field that
/// is missing or null gets no cell.
pub(crate) fn render_row(record: &Value, columns: &[Column], rendered: &[String], row: &mut Row) {
    fill_row(columns, rendered, row, |_, path, cell| {
        render_cell(record, path.segments(), cell)
    });
}

/// Fills `row` column by column: a path column from `cell_of(index, path, cell)` (false: the
/// field is missing, no cell), a template column from `rendered`.
fn fill_row(
    columns: &[Column],
    rendered: &[String],
    row: &mut Row,
    mut cell_of: impl FnMut(usize, &FieldPath, &mut String) -> bool,
) {
    row.clear();
    for (i, column) in columns.iter().enumerate() {
        match &column.source {
            ColumnSource::Path(path) => {
                row.push_with(i, |cell| cell_of(i, path, cell));
            }
            ColumnSource::FirstOf(paths) => {
                let mut answered = 0;
                let found = row.push_with(i, |text| {
                    // `text` is the row's buffer: each try writes after what is there, and a
                    // try that finds nothing is cut back off.
                    let start = text.len();
                    paths.iter().enumerate().any(|(n, path)| {
                        text.truncate(start);
                        answered = n;
                        cell_of(i, path, text) && text.len() > start
                    })
                });
                if found {
                    row.answered_by(answered);
                }
            }
            ColumnSource::Template(_) => row.push(i, rendered.get(i).map_or("", String::as_str)),
        }
    }
}

/// Writes the cell for `path` in `record` into `out`; false when the field is missing or null.
fn render_cell(record: &Value, path: &[Segment], out: &mut String) -> bool {
    // The common case: the path reaches one value without crossing an array.
    let mut node = record;
    let mut direct = true;
    for segment in path {
        node = match (segment, node) {
            (Segment::Key(key), Value::Object(map)) => match map.get(key) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Index(i), Value::Array(items)) => match items.get(*i) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Match { key, value }, node) => match path::matching(node, key, value) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Key(_), Value::Array(_)) => {
                direct = false;
                break;
            }
            _ => return false,
        };
    }
    if direct {
        if node.is_null() {
            return false;
        }
        render_value(node, out);
        return true;
    }
    let mut found = Vec::new();
    select(record, path, &mut found);
    render_found(&found, out)
}

/// Writes the cell of the values a path reached (one as itself, several joined); false when
/// there are none.
fn render_found(found: &[&Value], out: &mut String) -> bool {
    match found {
        [] => return false,
        [one] => render_value(one, out),
        many => join_scalars_or_json(many.iter().copied(), out),
    }
    true
}

/// The values `path` reaches in `record` (none when missing or null; a key applied to an
/// array applies to each element).
pub fn path_values<'a>(record: &'a Value, path: &FieldPath) -> Vec<&'a Value> {
    let mut found = Vec::new();
    select(record, path.segments(), &mut found);
    found
}

/// Collects the values at `path`; a key applied to an array applies to each element.
fn select<'a>(value: &'a Value, path: &[Segment], found: &mut Vec<&'a Value>) {
    let Some((first, rest)) = path.split_first() else {
        if !value.is_null() {
            found.push(value);
        }
        return;
    };
    match (first, value) {
        (Segment::Key(key), Value::Object(map)) => {
            if let Some(next) = map.get(key) {
                select(next, rest, found);
            }
        }
        (Segment::Key(_), Value::Array(items)) => {
            for item in items {
                select(item, path, found);
            }
        }
        (Segment::Index(i), Value::Array(items)) => {
            if let Some(next) = items.get(*i) {
                select(next, rest, found);
            }
        }
        (Segment::Match { key, value }, node) => {
            if let Some(next) = path::matching(node, key, value) {
                select(next, rest, found);
            }
        }
        _ => {}
    }
}

fn render_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            use std::fmt::Write;
            let _ = write!(out, "{n}");
        }
        Value::Array(items) => join_scalars_or_json(items.iter(), out),
        Value::Object(_) => match serde_json::to_string(value) {
            Ok(text) => out.push_str(&text),
            Err(_) => out.push_str(&value.to_string()), // (never: a `Value` serializes)
        },
    }
}

/// Scalars joined with [`LIST_SEPARATOR`]; anything holding an object or array as compact JSON.
fn join_scalars_or_json<'a>(items: impl Iterator<Item = &'a Value> + Clone, out: &mut String) {
    if items
        .clone()
        .any(|v| matches!(v, Value::Object(_) | Value::Array(_)))
    {
        let all: Vec<&Value> = items.collect();
        match serde_json::to_string(&all) {
            Ok(text) => out.push_str(&text),
            // (A `Value` always serializes; its `Display` writes the same text, slower.)
            Err(_) => out.push_str(&Value::Array(all.into_iter().cloned().collect()).to_string()),
        }
        return;
    }
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(LIST_SEPARATOR);
        }
        render_value(item, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cell(record: &Value, path: &str) -> String {
        let mut out = String::new();
        render_cell(record, FieldPath::parse(path).unwrap().segments(), &mut out);
        out
    }

    #[test]
    fn flattening_rules() {
        let r = json!({
            "id": "a", "size": "123", "n": 1.5, "ok": false, "none": null,
            "tags": ["x", "y"],
            "owners": [{"email": "p@x", "me": true}, {"email": "q@x"}],
            "labels": {"k": "v"},
            "nested": {"deep": {"x": 1}}
        });
        assert_eq!(cell(&r, "id"), "a");
        assert_eq!(cell(&r, "size"), "123");
        assert_eq!(cell(&r, "n"), "1.5");
        assert_eq!(cell(&r, "ok"), "false");
        assert_eq!(cell(&r, "none"), "");
        assert_eq!(cell(&r, "missing.x"), "");
        assert_eq!(cell(&r, "tags"), "x;y");
        assert_eq!(
            cell(&r, "owners"),
            r#"[{"email":"p@x","me":true},{"email":"q@x"}]"#
        );
        assert_eq!(cell(&r, "owners.email"), "p@x;q@x");
        assert_eq!(cell(&r, "owners[1].email"), "q@x");
        assert_eq!(cell(&r, "owners[5].email"), "");
        assert_eq!(cell(&r, "labels"), r#"{"k":"v"}"#);
        assert_eq!(cell(&r, "nested.deep.x"), "1");
    }

    #[test]
    fn explode_makes_a_row_per_element() {
        let path = FieldPath::parse("payload.headers").unwrap();
        let records = vec![
            json!({"id": 1, "payload": {"headers": [{"n": "a"}, {"n": "b"}]}}),
            json!({"id": 2, "payload": {"headers": []}}),
            json!({"id": 3}),
        ];
        assert_eq!(
            explode(records, &path),
            [
                json!({"id": 1, "payload": {"headers": {"n": "a"}}}),
                json!({"id": 1, "payload": {"headers": {"n": "b"}}}),
                json!({"id": 2, "payload": {"headers": null}}),
                json!({"id": 3}),
            ]
        );
    }

    #[test]
    fn records_are_taken_from_the_page() {
        let path = FieldPath::parse("files").unwrap();
        let page = json!({"files": [{"id": 1}, {"id": 2}], "nextPageToken": "t"});
        assert_eq!(take_records(page, Some(&path)).len(), 2);
        assert!(take_records(json!({"kind": "x"}), Some(&path)).is_empty());
        assert_eq!(take_records(json!({"id": 1}), None), vec![json!({"id": 1})]);
    }
}
