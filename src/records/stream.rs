//! The fast path of plain list exports: cells taken straight from a page's JSON text. Only the
//! fields the columns name become values; every other field is skipped by the parser, and no
//! record is built whole. Same cells as [`super::render_row`] on the whole record.
//!
//! Used when the records are one top-level array (`files`), the column paths have no `[n]`,
//! nothing is exploded and no fan-out reads the records.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Value};

use super::{fill_row, render_value, Column, ColumnSource, FieldPath, Segment, LIST_SEPARATOR};

/// The column paths as a tree of keys.
#[derive(Debug, Default)]
struct Node {
    /// Columns whose path ends here.
    ends: Vec<usize>,
    children: Vec<(String, Node)>,
    /// Every column below this node with the rest of its path (used when the value here is
    /// kept whole because a column also ends here).
    below: Vec<(usize, Vec<Segment>)>,
}

impl Node {
    fn insert(&mut self, column: usize, keys: &[Segment]) {
        match keys.split_first() {
            None => self.ends.push(column),
            Some((first, rest)) => {
                self.below.push((column, keys.to_vec()));
                let Segment::Key(key) = first else { return };
                let child = match self.children.iter().position(|(k, _)| k == key) {
                    Some(at) => &mut self.children[at].1,
                    None => {
                        self.children.push((key.clone(), Node::default()));
                        &mut self.children.last_mut().expect("just pushed").1
                    }
                };
                child.insert(column, rest);
            }
        }
    }

    fn child(&self, key: &str) -> Option<&Node> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }
}

/// Picks the cells of each record of a page.
#[derive(Debug)]
pub struct Selector {
    records: String,
    root: Node,
    columns: usize,
}

impl Selector {
    /// A selector for records at `records` (one key) and these columns; `None` when a path
    /// needs the general path (an index such as `owners[0]`).
    pub fn new(records: &FieldPath, columns: &[Column]) -> Option<Selector> {
        let [Segment::Key(records)] = records.segments() else {
            return None;
        };
        let mut root = Node::default();
        for (i, column) in columns.iter().enumerate() {
            if let ColumnSource::Path(path) = &column.source {
                if path
                    .segments()
                    .iter()
                    .any(|s| matches!(s, Segment::Index(_)))
                {
                    return None;
                }
                root.insert(i, path.segments());
            }
        }
        Some(Selector {
            records: records.clone(),
            root,
            columns: columns.len(),
        })
    }

    /// The page without its records, and how many records it has (for the cursor).
    pub fn outline(&self, json: &str) -> Result<(Value, usize), serde_json::Error> {
        // A quick scan; serde_json when the scan gives up, to say what is wrong with the page.
        if let Some(outline) = super::outline::outline(json, &self.records) {
            return Ok(outline);
        }
        let mut count = 0;
        let mut de = serde_json::Deserializer::from_str(json);
        let page = PageSeed {
            records: &self.records,
            each: RefCell::new(Each::Count(&mut count)),
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok((page, count))
    }

    /// Calls `row` with the cells found in each record, in order: per column, the non-null
    /// values its path reached. `row` returns false to skip the rest.
    pub fn rows<'de, E>(
        &self,
        json: &'de str,
        mut row: impl FnMut(&[Vec<Found<'de>>]) -> Result<bool, E>,
    ) -> Result<(), Stopped<E>> {
        let mut found: Vec<Vec<Found<'de>>> = (0..self.columns).map(|_| Vec::new()).collect();
        let mut failure = None;
        let mut on_record = |found: &[Vec<Found<'de>>]| match row(found) {
            Ok(more) => more,
            Err(err) => {
                failure = Some(err);
                false
            }
        };
        let mut de = serde_json::Deserializer::from_str(json);
        let result = PageSeed {
            records: &self.records,
            each: RefCell::new(Each::Select {
                root: &self.root,
                found: &mut found,
                row: &mut on_record,
                more: true,
            }),
        }
        .deserialize(&mut de);
        match (failure, result) {
            (Some(err), _) => Err(Stopped::Row(err)),
            (None, Err(err)) => Err(Stopped::Json(err)),
            (None, Ok(_)) => Ok(()),
        }
    }
}

/// Why [`Selector::rows`] stopped.
#[derive(Debug)]
pub enum Stopped<E> {
    Json(serde_json::Error),
    Row(E),
}

/// A value a column's path reached, borrowed from the page text where it can be (a string
/// without escapes), so that most cells cost no allocation.
#[derive(Debug, Clone)]
pub enum Found<'de> {
    Str(Cow<'de, str>),
    /// Any other value: a number, a boolean, an array or an object (never null).
    Value(Value),
}

/// What to do with each record.
enum Each<'a, 'de> {
    Count(&'a mut usize),
    Select {
        root: &'a Node,
        found: &'a mut Vec<Vec<Found<'de>>>,
        row: &'a mut dyn FnMut(&[Vec<Found<'de>>]) -> bool,
        more: bool,
    },
}

/// The page: the records array is handed to `each`, the other fields kept (outline) or skipped.
struct PageSeed<'a, 'de> {
    records: &'a str,
    each: RefCell<Each<'a, 'de>>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_, 'de> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_, 'de> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let keep = matches!(*self.each.borrow(), Each::Count(_));
        let mut rest = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == self.records {
                map.next_value_seed(RecordsSeed(&self.each))?;
            } else if keep {
                rest.insert(key, map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(rest))
    }
}

/// The records array (or null).
struct RecordsSeed<'s, 'a, 'de>(&'s RefCell<Each<'a, 'de>>);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut each = self.0.borrow_mut();
        match &mut *each {
            Each::Count(count) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    **count += 1;
                }
            }
            Each::Select {
                root,
                found,
                row,
                more,
            } => loop {
                if !*more {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    continue;
                }
                found.iter_mut().for_each(Vec::clear);
                if seq
                    .next_element_seed(NodeSeed { node: root, found })?
                    .is_none()
                {
                    break;
                }
                *more = row(found);
            },
        }
        Ok(())
    }
}

/// The value at one node of the column tree.
struct NodeSeed<'a, 'de> {
    node: &'a Node,
    found: &'a mut Vec<Vec<Found<'de>>>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.node.ends.is_empty() {
            return deserializer.deserialize_any(self);
        }
        if self.node.children.is_empty() {
            // Columns end here and none goes deeper: the value as it is, strings borrowed.
            if let Some(value) = deserializer.deserialize_any(FoundVisitor)? {
                push_each(self.found, &self.node.ends, value);
            }
            return Ok(());
        }
        // A column ends here and others go deeper: keep the value whole and read them from it.
        let value = Value::deserialize(deserializer)?;
        for (column, rest) in &self.node.below {
            let mut at = Vec::new();
            super::select(&value, rest, &mut at);
            self.found[*column].extend(at.into_iter().map(|v| Found::Value(v.clone())));
        }
        if !value.is_null() {
            push_each(self.found, &self.node.ends, Found::Value(value));
        }
        Ok(())
    }
}

/// Adds `value` to the found values of each of `columns`.
fn push_each<'de>(found: &mut [Vec<Found<'de>>], columns: &[usize], value: Found<'de>) {
    if let Some((last, others)) = columns.split_last() {
        for column in others {
            found[*column].push(value.clone());
        }
        found[*last].push(value);
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.node.child(&key) {
                Some(child) => map.next_value_seed(NodeSeed {
                    node: child,
                    found: &mut *self.found,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    /// A key applied to an array applies to each element.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(NodeSeed {
                node: self.node,
                found: &mut *self.found,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// An object key, borrowed from the text unless it has escapes (serde's own `Cow` always copies).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }
    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

/// One value as a [`Found`]; `None` for null.
struct FoundVisitor;

impl<'de> Visitor<'de> for FoundVisitor {
    type Value = Option<Found<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Found::Str(Cow::Borrowed(text))))
    }
    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Found::Str(Cow::Owned(text.to_owned()))))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Some(Found::Value(Value::Bool(b))))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Some(Found::Value(n.into())))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Some(Found::Value(n.into())))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Some(Found::Value(n.into())))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Some(Found::Value(Value::Array(items))))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        while let Some((key, value)) = map.next_entry()? {
            object.insert(key, value);
        }
        Ok(Some(Found::Value(Value::Object(object))))
    }
}

/// The cells of one record from what [`Selector::rows`] found, as `render_row` would make them.
pub fn render_selected(
    found: &[Vec<Found<'_>>],
    columns: &[Column],
    rendered: &[String],
    null: &str,
    row: &mut Vec<String>,
) {
    fill_row(columns, rendered, null, row, |i, _, cell| {
        render_found(&found[i], cell)
    });
}

/// The cell of the values one path reached, by the rules of [`super::render_found`]: one as
/// itself, several scalars joined, several with an array or object among them as a JSON array.
fn render_found(found: &[Found<'_>], out: &mut String) -> bool {
    match found {
        [] => return false,
        [Found::Str(text)] => out.push_str(text),
        [Found::Value(value)] => render_value(value, out),
        many if many
            .iter()
            .any(|f| matches!(f, Found::Value(Value::Array(_) | Value::Object(_)))) =>
        {
            let all: Vec<Value> = many
                .iter()
                .map(|f| match f {
                    Found::Str(text) => Value::String(text.to_string()),
                    Found::Value(value) => value.clone(),
                })
                .collect();
            out.push_str(&Value::Array(all).to_string());
        }
        many => {
            for (i, found) in many.iter().enumerate() {
                if i > 0 {
                    out.push_str(LIST_SEPARATOR);
                }
                match found {
                    Found::Str(text) => out.push_str(text),
                    Found::Value(value) => render_value(value, out),
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{render_row, take_records};
    use serde_json::json;

    /// The fast path makes exactly the cells of the general one.
    #[test]
    fn same_cells_as_the_whole_records() {
        let page = json!({
            "kind": "x",
            "files": [
                {"id": "a", "n": 1.5, "ok": false, "none": null, "tags": ["x", "y"],
                 "owners": [{"email": "p@x", "me": true}, {"email": "q@x"}],
                 "labels": {"k": "v"}, "deep": {"a": {"b": [1, 2]}}, "skip": {"big": [1, 2, 3]}},
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
        ]
        .iter()
        .map(|p| Column::from_path(FieldPath::parse(p).unwrap()))
        .collect();
        let text = page.to_string();
        let selector = Selector::new(&FieldPath::parse("files").unwrap(), &columns).unwrap();
        let (outline, count) = selector.outline(&text).unwrap();
        assert_eq!(count, 3);
        assert_eq!(outline, json!({"kind": "x", "nextPageToken": "t"}));

        let mut fast = Vec::new();
        let mut row = Vec::new();
        selector
            .rows::<()>(&text, |found| {
                render_selected(found, &columns, &[], "NULL", &mut row);
                fast.push(row.clone());
                Ok(true)
            })
            .unwrap();
        let mut slow = Vec::new();
        for record in take_records(page, Some(&FieldPath::parse("files").unwrap())) {
            render_row(&record, &columns, &[], "NULL", &mut row);
            slow.push(row.clone());
        }
        assert_eq!(fast, slow);
    }
}
