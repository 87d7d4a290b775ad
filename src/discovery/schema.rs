//! Walking Discovery schemas: following `$ref`s (cycle-safe), finding the array of records in a
//! response, and deriving the default CSV columns from a record schema.

use super::{Document, Schema};

/// Response properties that are never the records of a list (metadata, headers, totals).
const NOT_RECORDS: &[&str] = &[
    "kind",
    "etag",
    "unreachable",
    "totals",
    "warnings",
    "errors",
];

/// Follows a `$ref` to its named schema; a schema without one is returned as is.
/// An unknown reference yields an empty schema (treated as "any value").
pub fn resolve<'a>(doc: &'a Document, schema: &'a Schema) -> &'a Schema {
    static ANY: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(Schema::default);
    match &schema.reference {
        Some(name) => doc.schema(name).unwrap_or(&ANY),
        None => schema,
    }
}

/// True for a schema whose values are JSON objects with named properties.
pub fn is_object_with_properties(doc: &Document, schema: &Schema) -> bool {
    !resolve(doc, schema).properties.is_empty()
}

/// The names of the response's top-level arrays of objects: the candidates for `records`.
pub fn record_array_candidates(doc: &Document, response: &Schema) -> Vec<String> {
    resolve(doc, response)
        .properties
        .iter()
        .filter(|(name, _)| !NOT_RECORDS.contains(&name.as_str()) && !name.ends_with("Headers"))
        .filter(|(_, prop)| {
            let prop = resolve(doc, prop);
            prop.kind.as_deref() == Some("array")
                && prop
                    .items
                    .as_deref()
                    .is_some_and(|items| is_object_with_properties(doc, items))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The schema found by following dotted property names from `root`; arrays are stepped into
/// (a records path names the array, its elements are the records). May be a `$ref`.
pub fn schema_at<'a>(doc: &'a Document, root: &'a Schema, keys: &[String]) -> Option<&'a Schema> {
    let mut current = element_schema(doc, root);
    for key in keys {
        current = element_schema(doc, resolve(doc, current).properties.get(key)?);
    }
    Some(current)
}

/// For an array, the schema of its elements; otherwise the schema itself.
pub fn element_schema<'a>(doc: &'a Document, schema: &'a Schema) -> &'a Schema {
    let resolved = resolve(doc, schema);
    match (&resolved.kind, &resolved.items) {
        (Some(kind), Some(items)) if kind == "array" => items,
        _ => schema,
    }
}

/// The default CSV columns of a record schema: every scalar leaf as a dotted path, in schema
/// order. Arrays and maps stay one column (one cell); a `$ref` that recurs is cut and kept as
/// one column, so recursive schemas (Gmail's `MessagePart.parts`) end.
///
/// With `explode` (a dotted path to an array), that array's elements are walked like a nested
/// object, since each becomes its own row.
///
/// A schema whose leaves would exceed [`MAX_DEFAULT_COLUMNS`] (schemas that fan out into each
/// other multiply) is refused rather than walked to the end; nesting deeper than
/// [`MAX_DEPTH`] is kept as one column.
pub fn leaf_columns(
    doc: &Document,
    record: &Schema,
    explode: Option<&str>,
) -> Result<Vec<String>, TooManyColumns> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    walk_leaves(doc, record, "", explode, &mut stack, &mut out);
    match out.len() > MAX_DEFAULT_COLUMNS {
        true => Err(TooManyColumns),
        false => Ok(out),
    }
}

/// The most default columns a record may have (Google's widest record has 6,379).
pub const MAX_DEFAULT_COLUMNS: usize = 10_000;

/// Nesting below this depth is one column (a JSON cell).
const MAX_DEPTH: usize = 32;

/// A record schema with more than [`MAX_DEFAULT_COLUMNS`] leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the record schema has more than {MAX_DEFAULT_COLUMNS} fields; list the `columns` to export"
)]
pub struct TooManyColumns;

fn walk_leaves<'a>(
    doc: &'a Document,
    schema: &'a Schema,
    prefix: &str,
    explode: Option<&str>,
    stack: &mut Vec<&'a str>,
    out: &mut Vec<String>,
) {
    if out.len() > MAX_DEFAULT_COLUMNS {
        return;
    }
    if stack.len() >= MAX_DEPTH || prefix.matches('.').count() >= MAX_DEPTH {
        out.push(prefix.to_owned());
        return;
    }
    let reference = schema.reference.as_deref();
    if let Some(name) = reference {
        if stack.contains(&name) {
            out.push(prefix.to_owned());
            return;
        }
        stack.push(name);
    }
    let resolved = resolve(doc, schema);
    if resolved.kind.as_deref() == Some("array") && explode == Some(prefix) {
        if let Some(items) = &resolved.items {
            walk_leaves(doc, items, prefix, None, stack, out);
            if reference.is_some() {
                stack.pop();
            }
            return;
        }
    }
    if resolved.properties.is_empty() || resolved.kind.as_deref() == Some("array") {
        if !prefix.is_empty() {
            out.push(prefix.to_owned());
        }
    } else {
        for (name, prop) in &resolved.properties {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            walk_leaves(doc, prop, &path, explode, stack, out);
        }
    }
    if reference.is_some() {
        stack.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Document {
        Document::from_json(
            r#"{
            "name": "t", "version": "v1", "rootUrl": "http://x/", "servicePath": "",
            "schemas": {
              "List": {"type": "object", "properties": {
                "kind": {"type": "string"},
                "nextPageToken": {"type": "string"},
                "items": {"type": "array", "items": {"$ref": "Item"}},
                "tags": {"type": "array", "items": {"type": "string"}}
              }},
              "Item": {"type": "object", "properties": {
                "id": {"type": "string"},
                "owner": {"type": "object", "properties": {
                  "name": {"type": "string"}, "age": {"type": "integer"}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "children": {"type": "array", "items": {"$ref": "Item"}},
                "parent": {"$ref": "Item"}
              }}
            }}"#,
        )
        .unwrap()
    }

    #[test]
    fn finds_the_one_array_of_objects() {
        let doc = doc();
        let list = doc.schema("List").unwrap();
        assert_eq!(record_array_candidates(&doc, list), vec!["items"]);
    }

    #[test]
    fn leaves_flatten_objects_and_cut_cycles() {
        let doc = doc();
        let record = schema_at(&doc, doc.schema("List").unwrap(), &["items".into()]).unwrap();
        assert_eq!(
            leaf_columns(&doc, record, None).unwrap(),
            [
                "id",
                "owner.name",
                "owner.age",
                "labels",
                "children",
                "parent"
            ]
        );
    }

    /// Seven schemas of ten fields each of the next would make ten million columns.
    #[test]
    fn schemas_that_multiply_are_refused() {
        let mut schemas = serde_json::Map::new();
        for level in 0..7 {
            let field = match level {
                6 => serde_json::json!({"type": "string"}),
                _ => serde_json::json!({"$ref": format!("S{}", level + 1)}),
            };
            let properties: serde_json::Map<String, serde_json::Value> =
                (0..10).map(|i| (format!("f{i}"), field.clone())).collect();
            schemas.insert(
                format!("S{level}"),
                serde_json::json!({"type": "object", "properties": properties}),
            );
        }
        let doc = Document::from_json(
            &serde_json::json!({"name": "t", "version": "v1", "rootUrl": "http://x/",
                                "schemas": schemas})
            .to_string(),
        )
        .unwrap();
        let record = Schema {
            reference: Some("S0".into()),
            ..Schema::default()
        };
        assert_eq!(leaf_columns(&doc, &record, None), Err(TooManyColumns));
        let record = Schema {
            reference: Some("S4".into()),
            ..Schema::default()
        };
        assert_eq!(leaf_columns(&doc, &record, None).unwrap().len(), 1000);
    }
}
