//! A plan's [`ColumnSchema`]: its columns typed from Discovery's types, where a report's
//! response completes it (see [`crate::records::schema`]); a fan-out's computed column that
//! reads a field of a query above is typed as that query types the field.

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
    /// every column of a report (until its response types them) text; but a template column
    /// that reads one field of a query above is typed as that query types it.
    pub fn column_schema(&self) -> ColumnSchema {
        self.schema_of(&self.columns)
    }

    /// The schema of `columns`: the plan's own ([`Self::column_schema`]), or any others (a
    /// report's, named by its response) text.
    pub fn schema_of(&self, columns: &[Column]) -> ColumnSchema {
        if columns != self.columns.as_slice() {
            return ColumnSchema::text(columns.len());
        }
        let read_type = |i: usize| {
            let kind = self.read_types.get(i).copied().flatten();
            SchemaColumn::cells(kind.unwrap_or(ColumnType::Text))
        };
        let Some(record) = self.record_schema() else {
            // A report: its own columns are typed by its response.
            return ColumnSchema(
                (0..columns.len())
                    .map(|i| match columns[i].source {
                        ColumnSource::Template(_) => read_type(i),
                        _ => SchemaColumn::cells(ColumnType::Text),
                    })
                    .collect(),
            );
        };
        let at = |path: &FieldPath| {
            let keys: Vec<String> = path.keys().map(str::to_owned).collect();
            ColumnType::at(&self.doc, &record, &keys)
        };
        let explode = self.query.explode.as_ref().map(|e| &e.value);
        ColumnSchema(
            columns
                .iter()
                .enumerate()
                .map(|(i, column)| match &column.source {
                    ColumnSource::Path(path) => SchemaColumn {
                        paths: vec![at(path)],
                        from: values_of(&self.doc, &record, path, explode),
                    },
                    ColumnSource::FirstOf(paths) => SchemaColumn {
                        paths: paths.iter().map(at).collect(),
                        from: Values::Cell,
                    },
                    ColumnSource::Template(_) => read_type(i),
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

/// Types each plan's computed columns that read one field of a query above it
/// ([`QueryPlan::read_types`]).
pub(super) fn type_reads_above(plans: &mut [QueryPlan]) {
    for i in 0..plans.len() {
        let types = (0..plans[i].columns.len())
            .map(|column| column_read_type(plans, i, column, 0))
            .collect();
        plans[i].read_types = types;
    }
}

/// The type of column `column` of `plans[at]` when it is a template reading one field of a
/// query above (`{{ users.creationTime }}`, nothing else in it); `None` otherwise. `depth`
/// stops a chain of computed columns reading each other at the number of plans.
fn column_read_type(
    plans: &[QueryPlan],
    at: usize,
    column: usize,
    depth: usize,
) -> Option<ColumnType> {
    let plan = &plans[at];
    let ColumnSource::Template(source) = &plans[at].columns.get(column)?.source else {
        return None;
    };
    let (name, keys) = one_read(source)?;
    let above = plan.query.for_each.iter().map(|f| &f.value);
    if depth > plans.len() || !above.chain(&plan.query.ancestors).any(|a| *a == name) {
        return None;
    }
    let read = plans.iter().position(|p| p.query.name == name)?;
    let read_plan = &plans[read];
    // A computed column of the query read is a field of its records, over a field of one name.
    if let [key] = keys.as_slice() {
        if let Some(computed) = read_plan
            .columns
            .iter()
            .position(|c| c.header == *key && matches!(c.source, ColumnSource::Template(_)))
        {
            return column_read_type(plans, read, computed, depth + 1);
        }
    }
    let record = read_plan.record_schema()?;
    scalar_at(&read_plan.doc, &record, &keys)
}

/// The type of the scalar field at `keys` of `record`, reached through objects only (a
/// template renders an array or an object as text of its own).
fn scalar_at(doc: &Document, record: &Schema, keys: &[String]) -> Option<ColumnType> {
    let mut current = resolve(doc, record);
    for key in keys {
        current = resolve(doc, current.properties.get(key)?);
    }
    let nested = current.kind.as_deref() == Some("array")
        || current.kind.as_deref() == Some("object")
        || !current.properties.is_empty()
        || current.additional_properties.is_some();
    (!nested).then(|| ColumnType::of(current))
}

/// The query name and field keys of a template that is one read and nothing else:
/// `{{ users.creationTime }}` → (`users`, [`creationTime`]).
fn one_read(source: &str) -> Option<(String, Vec<String>)> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let is_name = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut parts = inner.split('.');
    let name = parts.next().filter(|p| is_name(p))?.to_owned();
    let keys: Vec<String> = parts.map(str::to_owned).collect();
    (!keys.is_empty() && keys.iter().all(|k| is_name(k))).then_some((name, keys))
}

#[cfg(test)]
mod tests {
    use super::one_read;

    #[test]
    fn only_a_template_that_is_one_read_is_typed() {
        let read = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(
            one_read(" {{ users.creationTime }} "),
            Some(("users".to_owned(), read(&["creationTime"])))
        );
        assert_eq!(
            one_read("{{users.name.givenName}}"),
            Some(("users".to_owned(), read(&["name", "givenName"])))
        );
        assert_eq!(one_read("{{ users.id }}-x"), None);
        assert_eq!(one_read("{{ users.id | upper }}"), None);
        assert_eq!(one_read("{{ users }}"), None);
        assert_eq!(one_read("{{ users[\"id\"] }}"), None);
    }
}
