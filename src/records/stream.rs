//! The fast path of plain list exports: cells taken straight from a page's JSON text. Only the
//! fields the columns name become values; every other field is skipped by the parser, and no
//! record is built whole. Same cells as [`super::render_row`] on the whole record.
//!
//! Used when the records are one top-level array (`files`), the column paths have no `[n]`,
//! nothing is exploded and no fan-out reads the records.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{fill_row, render_found, Column, ColumnSource, FieldPath, Segment};

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
    pub fn rows<E>(
        &self,
        json: &str,
        mut row: impl FnMut(&[Vec<Value>]) -> Result<bool, E>,
    ) -> Result<(), Stopped<E>> {
        let mut found: Vec<Vec<Value>> = vec![Vec::new(); self.columns];
        let mut failure = None;
        let mut on_record = |found: &[Vec<Value>]| match row(found) {
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

/// What to do with each record.
enum Each<'a> {
    Count(&'a mut usize),
    Select {
        root: &'a Node,
        found: &'a mut Vec<Vec<Value>>,
        row: &'a mut dyn FnMut(&[Vec<Value>]) -> bool,
        more: bool,
    },
}

/// The page: the records array is handed to `each`, the other fields kept (outline) or skipped.
struct PageSeed<'a> {
    records: &'a str,
    each: RefCell<Each<'a>>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
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
struct RecordsSeed<'s, 'a>(&'s RefCell<Each<'a>>);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
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
struct NodeSeed<'a> {
    node: &'a Node,
    found: &'a mut Vec<Vec<Value>>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.node.ends.is_empty() {
            return deserializer.deserialize_any(self);
        }
        // A column ends here: keep the value whole; deeper columns are read from it.
        let value = Value::deserialize(deserializer)?;
        for (column, rest) in &self.node.below {
            let mut at = Vec::new();
            super::select(&value, rest, &mut at);
            self.found[*column].extend(at.into_iter().cloned());
        }
        if !value.is_null() {
            for column in &self.node.ends {
                self.found[*column].push(value.clone());
            }
        }
        Ok(())
    }
}

use serde::Deserialize;

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
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

/// The cells of one record from what [`Selector::rows`] found, as `render_row` would make them.
pub fn render_selected(
    found: &[Vec<Value>],
    columns: &[Column],
    rendered: &[String],
    null: &str,
    row: &mut Vec<String>,
) {
    fill_row(columns, rendered, null, row, |i, _, cell| {
        render_found(&found[i], cell)
    });
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
