//! The fast path of plain list exports: cells taken straight from a page's JSON text by a
//! structural scan ([`super::scan`]). Only the values the columns reach are read; every other
//! field is skipped, and no record is built whole. Same cells as [`super::render_row`] on the
//! whole record.
//!
//! Used when the records are one top-level array (`files`), nothing is exploded and no
//! fan-out reads the records.

use serde_json::Value;

use super::compact;
use super::scan::{self, Outline, Record, RowsError};
use super::strict;
use super::tree::{Found, Node, Reached};
use super::{render_value, Column, ColumnSource, FieldPath, Row, Segment, LIST_SEPARATOR};

/// Picks the cells of each record of a page.
#[derive(Debug)]
pub(super) struct Selector {
    records: String,
    root: Node,
    columns: usize,
    /// The nodes of `root`'s tree.
    nodes: usize,
    /// The template columns (their cells are the same in every row), in column order.
    templates: Vec<usize>,
}

impl Selector {
    /// A selector for records at `records` (one top-level key) and these columns; `None` for
    /// records deeper in the page, which take the general path.
    pub(super) fn new(records: &FieldPath, columns: &[Column]) -> Option<Selector> {
        let [Segment::Key(records)] = records.segments() else {
            return None;
        };
        // Columns that pick an element by a field's value, or fall back between paths, take
        // the general path.
        let general = columns.iter().any(|c| match &c.source {
            ColumnSource::Path(path) => path.has_match(),
            ColumnSource::FirstOf(_) => true,
            ColumnSource::Template(_) => false,
        });
        if general {
            return None;
        }
        let mut root = Node::default();
        for (i, column) in columns.iter().enumerate() {
            if let ColumnSource::Path(path) = &column.source {
                root.insert(i, path.segments());
            }
        }
        let nodes = root.number(0);
        let templates = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.source, ColumnSource::Template(_)))
            .map(|(i, _)| i)
            .collect();
        Some(Selector {
            records: records.clone(),
            root,
            columns: columns.len(),
            nodes,
            templates,
        })
    }

    /// The page without its records, how many records it has (for the cursor) and where they
    /// are; `None` when the scan does not take this page on (serde_json reads it then).
    pub(super) fn outline(&self, json: &str) -> Option<Outline> {
        scan::outline(json, &self.records)
    }

    /// Calls `row` with each record of the array at `records_at` (from the outline), in
    /// order: what the columns reached, or the record parsed whole; and the record's JSON
    /// text as the API sent it. `row` returns false to skip the rest.
    pub(super) fn rows<'de, E>(
        &self,
        json: &'de str,
        records_at: usize,
        mut row: impl FnMut(Record<'_, 'de>, &'de str) -> Result<bool, E>,
    ) -> Result<(), Stopped<E>> {
        let mut found = Reached::new(self.columns, self.nodes);
        let mut failure = None;
        let mut on_record = |record: Record<'_, 'de>, text: &'de str| match row(record, text) {
            Ok(more) => more,
            Err(err) => {
                failure = Some(err);
                false
            }
        };
        let result = scan::rows(json, records_at, &self.root, &mut found, &mut on_record);
        match (failure, result) {
            (Some(err), _) => Err(Stopped::Row(err)),
            (None, Ok(())) => Ok(()),
            (None, Err(RowsError::Invalid)) => Err(Stopped::Json(strict::page_error(json))),
        }
    }
}

/// Why [`Selector::rows`] stopped.
#[derive(Debug)]
pub enum Stopped<E> {
    Json(serde_json::Error),
    Row(E),
}

impl Selector {
    /// The row of one record from what [`Selector::rows`] found, as `render_row` would make
    /// it: only the columns the record reached are visited, with the template columns
    /// (`rendered`, by column index) merged in by column order.
    pub(super) fn render(&self, found: &mut Reached<'_>, rendered: &[String], row: &mut Row) {
        row.clear();
        let mut templates = self.templates.iter().copied().peekable();
        let template = |row: &mut Row, i: usize| {
            row.push(i, rendered.get(i).map_or("", String::as_str));
        };
        found.sort();
        for &column in found.columns() {
            while let Some(i) = templates.next_if(|&i| i < column) {
                template(row, i);
            }
            row.push_with(column, |cell| render_found(found.values(column), cell));
        }
        for i in templates {
            template(row, i);
        }
    }
}

/// The cell of the values one path reached, by the rules of [`super::render_found`]: one as
/// itself, several scalars joined, several with an array or object among them as a JSON array.
fn render_found(found: &[Found<'_>], out: &mut String) -> bool {
    match found {
        [] => return false,
        [Found::Str(text)] => out.push_str(text),
        [Found::Strs(items)] => join(items, out),
        [Found::Rendered { cell, .. }] => out.push_str(cell),
        [Found::Value(value)] => render_value(value, out),
        many if many.iter().any(|f| {
            matches!(
                f,
                Found::Strs(_)
                    | Found::Rendered { .. }
                    | Found::Value(Value::Array(_) | Value::Object(_))
            )
        }) =>
        {
            // As `Value::Array(values).to_string()` writes it, each value's JSON text.
            out.push('[');
            for (i, found) in many.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_text(found, out);
            }
            out.push(']');
        }
        many => {
            for (i, found) in many.iter().enumerate() {
                if i > 0 {
                    out.push_str(LIST_SEPARATOR);
                }
                match found {
                    Found::Str(text) => out.push_str(text),
                    Found::Strs(items) => join(items, out),
                    Found::Rendered { cell, .. } => out.push_str(cell),
                    Found::Value(value) => render_value(value, out),
                }
            }
        }
    }
    true
}

/// The compact JSON of one value found, as serde_json writes it.
fn json_text(found: &Found<'_>, out: &mut String) {
    match found {
        Found::Str(text) => push_json(&Value::from(text.as_ref()), out),
        Found::Strs(items) => {
            // Strings without escapes or control characters: serde_json writes them as they are.
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(item);
                out.push('"');
            }
            out.push(']');
        }
        Found::Rendered { json, .. } => {
            if !compact::write_json(json, out) {
                // Checked JSON, so serde_json reads it; its text as sent if ever it did not.
                match serde_json::from_str::<Value>(json) {
                    Ok(value) => push_json(&value, out),
                    Err(_) => out.push_str(json),
                }
            }
        }
        Found::Value(value) => push_json(value, out),
    }
}

/// `value` as compact JSON, by serde_json's writer (its `Display` goes through a formatter,
/// several times slower).
fn push_json(value: &Value, out: &mut String) {
    match serde_json::to_string(value) {
        Ok(text) => out.push_str(&text),
        Err(_) => out.push_str(&value.to_string()),
    }
}

/// Strings joined with [`LIST_SEPARATOR`], as an array of scalars is written.
fn join(items: &[&str], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(LIST_SEPARATOR);
        }
        out.push_str(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{render_row, take_records};
    use serde_json::json;

    /// The rows of `text` by the fast path and by the general one (on the page parsed from the
    /// same text: serde_json's float parsing does not give back every f64 exactly, and both
    /// paths share it), and the page's outline.
    type Rows = Vec<Row>;
    fn both_paths(text: &str, records: &str, columns: &[Column]) -> (Rows, Rows, (Value, usize)) {
        let path = FieldPath::parse(records).unwrap();
        let selector = Selector::new(&path, columns).unwrap();
        let mut row = Row::default();
        let mut fast = Vec::new();
        let outline = selector.outline(text).unwrap();
        if let Some(at) = outline.records_at {
            selector
                .rows::<()>(text, at, |record, _| {
                    match record {
                        Record::Scanned(found) => selector.render(found, &[], &mut row),
                        Record::Parsed(record) => render_row(&record, columns, &[], &mut row),
                    }
                    fast.push(row.clone());
                    Ok(true)
                })
                .unwrap();
        }
        let mut slow = Vec::new();
        for record in take_records(serde_json::from_str(text).unwrap(), Some(&path)) {
            render_row(&record, columns, &[], &mut row);
            slow.push(row.clone());
        }
        (fast, slow, (outline.fields, outline.count))
    }

    /// The fast path makes exactly the cells of the general one.
    #[test]
    fn same_cells_as_the_whole_records() {
        let page = json!({
            "kind": "x",
            "files": [
                {"id": "a", "n": 1.5, "ok": false, "none": null, "tags": ["x", "y"],
                 "owners": [{"email": "p@x", "me": true}, {"email": "q@x"}],
                 "labels": {"k": "v"}, "deep": {"a": {"b": [1, 2]}}, "skip": {"big": [1, 2, 3]},
                 "nested": [[{"k": "in"}], {"k": "out"}]},
                {"id": "b", "owners": []},
                {"id": "c", "owners": {"email": "single@x"}, "deep": null}
            ],
            "nextPageToken": "t"
        });
        let columns: Vec<Column> = [
            "id",
            "n",
            "ok",
            "none",
            "tags",
            "owners",
            "owners.email",
            "owners.me",
            "labels",
            "labels.k",
            "deep.a.b",
            "missing.x",
            "owners[0].email",
            "owners[1]",
            "tags[1]",
            "deep.a.b[0]",
            "nested[0]",
            "nested.k",
        ]
        .iter()
        .map(|p| Column::from_path(FieldPath::parse(p).unwrap()))
        .collect();
        let (fast, slow, outline) = both_paths(&page.to_string(), "files", &columns);
        assert_eq!(outline, (json!({"kind": "x", "nextPageToken": "t"}), 3));
        assert_eq!(fast.len(), 3);
        assert_eq!(fast, slow);
    }

    /// A random JSON value: nested objects and arrays, escapes, non-ASCII, every scalar kind.
    fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
        const KEYS: &[&str] = &["a", "b", "c", "q\"k", "é"];
        const STRINGS: &[&str] = &[
            "x",
            "",
            "comma, \"quoted\"",
            "line\r\nbreak",
            "tab\tctl\u{1}",
            "ünï 字",
            "back\\slash",
            "=1+2",
        ];
        match rng.u32(0..if depth == 0 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.bool()),
            2 => json!(rng.i64(-1_000_000..1_000_000)),
            3 => json!(rng.f64() * 1e6 - 5e5),
            4 | 5 => json!(STRINGS[rng.usize(..STRINGS.len())]),
            6 => Value::Array(
                (0..rng.usize(0..4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.usize(0..5))
                    .map(|_| {
                        (
                            KEYS[rng.usize(..KEYS.len())].to_owned(),
                            random_value(rng, depth - 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// The scan and the general path agree on random pages, compact and pretty-printed.
    #[test]
    fn same_cells_as_the_whole_records_on_random_pages() {
        const PATHS: &[&str] = &[
            "a",
            "b",
            "c",
            "a.b",
            "a.c",
            "b.a.c",
            "é",
            "a.é",
            "c.a.b",
            "q\"k",
            "a.q\"k",
            "a[0]",
            "a[1].b",
            "b.a[0]",
            "a[0].c",
            "c[2]",
            "a[0][1]",
            "b[0].a[1].c",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..20000 {
            let columns: Vec<Column> = (0..rng.usize(1..6))
                .map(|_| {
                    let path = PATHS[rng.usize(..PATHS.len())];
                    let path = FieldPath::parse(&path.replace('"', "")).unwrap();
                    Column::from_path(path)
                })
                .collect();
            // Records are objects (a page with anything else is refused).
            let records: Vec<Value> = (0..rng.usize(0..6))
                .map(|_| match random_value(&mut rng, 3) {
                    Value::Object(record) => Value::Object(record),
                    other => json!({ "a": other }),
                })
                .collect();
            let page = json!({"kind": "k", "items": records, "nextPageToken": format!("t{round}")});
            for text in [
                page.to_string(),
                serde_json::to_string_pretty(&page).unwrap(),
            ] {
                let (fast, slow, outline) = both_paths(&text, "items", &columns);
                let rest = json!({"kind": "k", "nextPageToken": format!("t{round}")});
                assert_eq!(outline, (rest, slow.len()));
                assert_eq!(fast, slow, "round {round}: {text}");
            }
        }
    }

    /// Records that list their fields in different orders, or lack some, get the same cells
    /// (the scan looks for a key first where the last record had it).
    #[test]
    fn fields_in_any_order_reach_their_columns() {
        let text = r#"{"files": [{"a": "1", "b": "2", "c": "3"}, {"c": "4", "a": "5"},
            {"b": "6", "x": {"a": "no"}, "a": "7", "c": "8"}, {"c": "9"},
            {"a": "12", "b" : "13"}, {"a": "10", "bb": "no", "b": "11"},
            {"\u0061": "14", "b": "15"}, {"a" : "16","b":"17"}]}"#;
        let columns: Vec<Column> = ["a", "b", "c"]
            .iter()
            .map(|p| Column::from_path(FieldPath::parse(p).unwrap()))
            .collect();
        let (fast, slow, _) = both_paths(text, "files", &columns);
        let cells = |row: &Row| -> Vec<(usize, String)> {
            row.cells().map(|(i, t)| (i, t.to_owned())).collect()
        };
        let fast: Vec<_> = fast.iter().map(cells).collect();
        assert_eq!(fast, slow.iter().map(cells).collect::<Vec<_>>());
        assert_eq!(
            fast[1],
            [(0, "5".to_owned()), (2, "4".to_owned())],
            "missing and reordered fields"
        );
        // A longer key where the last record had a shorter one, and a key written with an
        // escape, are read whole.
        assert_eq!(fast[5], [(0, "10".to_owned()), (1, "11".to_owned())]);
        assert_eq!(fast[6], [(0, "14".to_owned()), (1, "15".to_owned())]);
    }

    /// A page cut short is an error, never a short export.
    #[test]
    fn a_truncated_page_is_an_error() {
        let columns = [Column::from_path(FieldPath::parse("id").unwrap())];
        let selector = Selector::new(&FieldPath::parse("files").unwrap(), &columns).unwrap();
        let page = r#"{"files": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "nextPageToken": "t"}"#;
        let records_end = page.find(']').unwrap();
        let records_at = page.find('[').unwrap();
        for cut in 1..page.len() {
            let text = &page[..cut];
            assert!(selector.outline(text).is_none(), "{text}");
            if (records_at..=records_end).contains(&cut) {
                // (The page's tail is checked by the outline, which every page goes through.)
                let rows = selector.rows::<()>(text, records_at, |_, _| Ok(true));
                assert!(matches!(rows, Err(Stopped::Json(_))), "{text}");
            }
        }
    }
}
