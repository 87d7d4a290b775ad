//! A plan's [`ColumnSchema`]: its columns typed from Discovery's types, where a report's
//! response completes it (see [`crate::records::schema`]).

use super::QueryPlan;
use crate::discovery::schema::resolve;
use crate::discovery::{Document, Schema};
use crate::records::schema::{ColumnSchema, ColumnType, SchemaColumn, Values};
use crate::records::{Column, ColumnSource, FieldPath, Segment};

impl QueryPlan {
    /// The types of its columns, from its record schema: a path typed as the schema types its
    /// field; a path that reaches an object, a map or an array, or steps through an array
    /// (but the one `explode` makes rows of), read whole from the record (JSON); a fallback
    /// column typed per path; a template column, a field the schema does not describe and
    /// every column of a report (until its response types them) text.
    pub fn column_schema(&self) -> ColumnSchema {
        self.schema_of(&self.columns)
    }

    /// The schema of `columns`: the plan's own ([`Self::column_schema`]), or any others (a
    /// report's, named by its response) text.
    pub fn schema_of(&self, columns: &[Column]) -> ColumnSchema {
        let record = self.record_schema();
        let (Some(record), true) = (record, columns == self.columns.as_slice()) else {
            return ColumnSchema::text(columns.len());
        };
        let at = |path: &FieldPath| {
            let keys: Vec<String> = path.keys().map(str::to_owned).collect();
            ColumnType::at(&self.doc, &record, &keys)
        };
        let explode = self.query.explode.as_ref().map(|e| &e.value);
        ColumnSchema(
            columns
                .iter()
                .map(|column| match &column.source {
                    ColumnSource::Path(path) => SchemaColumn {
                        paths: vec![at(path)],
                        from: values_of(&self.doc, &record, path, explode),
                    },
                    ColumnSource::FirstOf(paths) => SchemaColumn {
                        paths: paths.iter().map(at).collect(),
                        from: Values::Cell,
                    },
                    ColumnSource::Template(_) => SchemaColumn::cells(ColumnType::Text),
                })
                .collect(),
        )
    }
}

/// Where the values of a path into `record` come from: the record (JSON) for an object, a
/// map or an array ([`Values::Whole`]), or a path through an array but the one `explode`
/// makes rows of ([`Values::Spread`]); else the cell, as for a path the schema does not
/// describe.
fn values_of(
    doc: &Document,
    record: &Schema,
    path: &FieldPath,
    explode: Option<&FieldPath>,
) -> Values {
    let is_array = |s: &Schema| s.kind.as_deref() == Some("array") && s.items.is_some();
    let exploded: Vec<&str> = explode.map(|e| e.keys().collect()).unwrap_or_default();
    let mut current = resolve(doc, record);
    let mut keys: Vec<&str> = Vec::new();
    let mut spread = false;
    for segment in path.segments() {
        if is_array(current) {
            if let Some(items) = &current.items {
                // A key on an array reaches every element (but those `explode` makes rows of).
                if matches!(segment, Segment::Key(_)) && keys != exploded {
                    spread = true;
                }
                current = resolve(doc, items);
            }
        } else if !matches!(segment, Segment::Key(_)) {
            return Values::Cell;
        }
        if let Segment::Key(key) = segment {
            let Some(next) = current.properties.get(key) else {
                return Values::Cell;
            };
            current = resolve(doc, next);
            keys.push(key);
        }
    }
    let nested = is_array(current)
        || !current.properties.is_empty()
        || current.additional_properties.is_some()
        || current.kind.as_deref() == Some("object");
    match (nested, spread) {
        (_, true) => Values::Spread(path.clone()),
        (true, false) => Values::Whole(path.clone()),
        (false, false) => Values::Cell,
    }
}
