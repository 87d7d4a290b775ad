//! The columns' paths as a tree, which the structural scan ([`super::scan`]) walks a record
//! with, and the values it finds. (Its own file so that the scan and the selector that drives
//! it ([`super::stream`]) do not import each other.)

use std::borrow::Cow;

use serde_json::Value;

use super::Segment;

/// The column paths as a tree of keys and indexes.
#[derive(Debug, Default)]
pub(super) struct Node {
    /// This node's number in its tree ([`Node::number`]), for [`Reached::first_visit`].
    pub(super) id: usize,
    /// Reached by a key that a page writes without escapes (no `"`, `\\` or control
    /// character in it): the scan may match it byte for byte.
    pub(super) plain_key: bool,
    /// Columns whose path ends here.
    pub(super) ends: Vec<usize>,
    /// Where the paths go on by a key (`owners` → `emailAddress`).
    pub(super) keys: Vec<(String, Node)>,
    /// Where they go on by an array index (`owners` → `[0]`).
    pub(super) indexes: Vec<(usize, Node)>,
    /// Every column below this node with the rest of its path (used when the value here is
    /// kept whole because a column also ends here).
    below: Vec<(usize, Vec<Segment>)>,
}

impl Node {
    /// Adds the column `column`, whose path goes on from here by `path`.
    pub(super) fn insert(&mut self, column: usize, path: &[Segment]) {
        match path.split_first() {
            None => self.ends.push(column),
            Some((first, rest)) => {
                self.below.push((column, path.to_vec()));
                let child = match first {
                    Segment::Key(key) => {
                        let child = child_at(&mut self.keys, key);
                        child.plain_key = !key.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20);
                        child
                    }
                    Segment::Index(index) => child_at(&mut self.indexes, index),
                    // Picking by a field's value is the general path's: `Selector::new`
                    // declines such columns, so none comes here.
                    Segment::Match { .. } => return,
                };
                child.insert(column, rest);
            }
        }
    }

    /// Numbers this node and those below it from `next` on; returns the next free number.
    pub(super) fn number(&mut self, mut next: usize) -> usize {
        self.id = next;
        next += 1;
        let children = self.keys.iter_mut().map(|(_, child)| child);
        for child in children.chain(self.indexes.iter_mut().map(|(_, child)| child)) {
            next = child.number(next);
        }
        next
    }

    /// True when no path goes on from here.
    pub(super) fn is_leaf(&self) -> bool {
        self.keys.is_empty() && self.indexes.is_empty()
    }

    /// The child under `key` and its place among the keys, tried first at `hint` (where the
    /// last record had the key at this field position).
    pub(super) fn child(&self, key: &str, hint: Option<usize>) -> Option<(usize, &Node)> {
        if let Some((k, node)) = hint.and_then(|at| self.keys.get(at)) {
            if k == key {
                return hint.map(|at| (at, node));
            }
        }
        // (Most keys differ from a column's in length or first byte: no byte comparison then.)
        let first = key.as_bytes().first();
        let at = self
            .keys
            .iter()
            .position(|(k, _)| k.len() == key.len() && k.as_bytes().first() == first && k == key)?;
        Some((at, &self.keys[at].1))
    }

    pub(super) fn index_child(&self, index: usize) -> Option<&Node> {
        self.indexes
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, n)| n)
    }

    /// Adds what the columns reach in `value`, the whole value at this node: the columns that
    /// end here take it as it is, the deeper ones read their part of it.
    pub(super) fn take_whole<'de>(&self, value: Value, found: &mut Reached<'de>) {
        for (column, rest) in &self.below {
            let mut at = Vec::new();
            super::select(&value, rest, &mut at);
            for v in at {
                found.push(*column, Found::Value(v.clone()));
            }
        }
        if !value.is_null() {
            found.push_each(&self.ends, Found::Value(value));
        }
    }
}

/// The child of `children` under `label`, made if new.
fn child_at<'a, L: PartialEq + Clone>(children: &'a mut Vec<(L, Node)>, label: &L) -> &'a mut Node {
    let at = match children.iter().position(|(l, _)| l == label) {
        Some(at) => at,
        None => {
            children.push((label.clone(), Node::default()));
            children.len() - 1
        }
    };
    &mut children[at].1
}

/// What the columns' paths reached in one record: the values, per column, and which columns
/// reached any. A record touches only its own columns, so that its cost follows the fields it
/// has, not the columns of the file (default columns are every scalar of a schema, most of
/// them absent from any one record).
#[derive(Debug)]
pub(super) struct Reached<'de> {
    values: Vec<Vec<Found<'de>>>,
    /// The columns with values, in the order they were first reached.
    touched: Vec<usize>,
    /// For each field position of a record, the root key found there in the last record
    /// (`usize::MAX`: none): records of one API list their fields in one order.
    order: Vec<usize>,
    /// For each node of the tree, the object in which a key last reached it (objects are
    /// numbered as the scan enters them), to see a key repeated in one object.
    seen: Vec<u64>,
    objects: u64,
}

impl<'de> Reached<'de> {
    /// Room for `columns` columns and a tree of `nodes` nodes, none reached.
    pub(super) fn new(columns: usize, nodes: usize) -> Self {
        Reached {
            values: (0..columns).map(|_| Vec::new()).collect(),
            touched: Vec::new(),
            order: Vec::new(),
            seen: vec![0; nodes],
            objects: 0,
        }
    }

    /// The number of the object the scan enters.
    pub(super) fn begin_object(&mut self) -> u64 {
        self.objects += 1;
        self.objects
    }

    /// False when a key of `object` already reached the node `id` (a repeated key).
    pub(super) fn first_visit(&mut self, id: usize, object: u64) -> bool {
        let seen = &mut self.seen[id];
        if *seen == object {
            return false;
        }
        *seen = object;
        true
    }

    /// Forgets the last record's values.
    pub(super) fn clear(&mut self) {
        for column in self.touched.drain(..) {
            self.values[column].clear();
        }
    }

    /// The root key the last record had at field `position`.
    pub(super) fn order_hint(&self, position: usize) -> Option<usize> {
        self.order
            .get(position)
            .copied()
            .filter(|&at| at != usize::MAX)
    }

    /// Notes that the root key `at` is at field `position` of this record.
    pub(super) fn set_order(&mut self, position: usize, at: usize) {
        if self.order.len() <= position {
            self.order.resize(position + 1, usize::MAX);
        }
        self.order[position] = at;
    }

    /// Adds `value` to the values of `column`.
    pub(super) fn push(&mut self, column: usize, value: Found<'de>) {
        let values = &mut self.values[column];
        if values.is_empty() {
            self.touched.push(column);
        }
        values.push(value);
    }

    /// Adds `value` to the values of each of `columns`.
    pub(super) fn push_each(&mut self, columns: &[usize], value: Found<'de>) {
        if let Some((last, others)) = columns.split_last() {
            for column in others {
                self.push(*column, value.clone());
            }
            self.push(*last, value);
        }
    }

    /// Puts [`Reached::columns`] in column order.
    pub(super) fn sort(&mut self) {
        self.touched.sort_unstable();
    }

    /// The columns that reached a value (in column order after [`Reached::sort`]).
    pub(super) fn columns(&self) -> &[usize] {
        &self.touched
    }

    /// The values `column` reached (none when it reached nothing).
    pub(super) fn values(&self, column: usize) -> &[Found<'de>] {
        &self.values[column]
    }
}

/// A value a column's path reached, borrowed from the page text where it can be (a string
/// without escapes), so that most cells cost no allocation.
#[derive(Debug, Clone)]
pub enum Found<'de> {
    Str(Cow<'de, str>),
    /// An array of strings without escapes, borrowed: a cell like an array value's, without
    /// building one.
    Strs(Vec<&'de str>),
    /// An array or object in its plain form, with its cell already written
    /// ([`super::compact`]); `json` is its text, for a cell that holds several values.
    Rendered {
        json: &'de str,
        cell: String,
    },
    /// Any other value: a number, a boolean, an array or an object (never null).
    Value(Value),
}
