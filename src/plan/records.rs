//! What a query's records are and which columns it writes: the records array inferred or
//! checked, the record schema, the default columns, and the query's columns checked against
//! that schema (a report's columns come from its request).

use super::{quoted_list, Check};
use crate::api::Pagination;
use crate::discovery::{schema, Document, Method, Schema};
use crate::query::{Problem, Query};
use crate::records::schema::ColumnType;
use crate::records::{Column, ColumnSource, Decoder, FieldPath};
use crate::util::nearest;

/// What a method's records are when the query does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsGuess {
    /// The one array of objects in the response of a list-like method.
    Array(FieldPath),
    /// The whole response is one record.
    Whole,
    /// Several arrays could be the records; the query must choose.
    Ambiguous(Vec<String>),
}

/// Infers the records: for list-like methods (paginated, or `list*`/`search*`/`query*`) the
/// response's one array of objects — among several, `items` or the one named after the
/// resource (`files` for `drive.files.list`); otherwise the whole response.
pub fn infer_records(doc: &Document, method: &Method, pagination: &Pagination) -> RecordsGuess {
    let verb = method.id.rsplit('.').next().unwrap_or_default();
    let list_like = pagination.is_paginated()
        || ["list", "search", "query", "aggregatedList"]
            .iter()
            .any(|p| verb.starts_with(p));
    let candidates = match (&method.response, list_like) {
        (Some(response), true) => schema::record_array_candidates(doc, &response_schema(response)),
        _ => Vec::new(),
    };
    let resource = method.id.rsplit('.').nth(1).unwrap_or_default();
    let chosen = match candidates.as_slice() {
        [] => return RecordsGuess::Whole,
        [one] => Some(one),
        many => best_candidate(many, resource, verb),
    };
    match chosen {
        Some(name) => {
            RecordsGuess::Array(FieldPath::parse(name).expect("a property name is a valid path"))
        }
        None => RecordsGuess::Ambiguous(candidates),
    }
}

/// Among several arrays, the one that names what the method lists: `items` or the resource
/// (`sessions` → `session`), else a name ending in it (`jobs` → `matchingJobs`), else one
/// holding it (`messages` → `jobMessages`) or what the verb names (`fetchRows` → `rows`), else
/// the usual names of result lists. `None` when no single best one stands out.
fn best_candidate<'a>(candidates: &'a [String], resource: &str, verb: &str) -> Option<&'a String> {
    let resource = resource.to_ascii_lowercase();
    let verb = verb.to_ascii_lowercase();
    let stem = resource.trim_end_matches('s');
    let score = |candidate: &String| {
        let name = candidate.to_ascii_lowercase();
        let named = |n: &str| !n.is_empty() && name == n;
        if name == "items" || named(&resource) || named(stem) {
            4
        } else if !resource.is_empty() && name.ends_with(&resource) {
            3
        } else if (!stem.is_empty() && name.contains(stem)) || verb.contains(&name) {
            2
        } else if ["results", "rows", "data", "entries", "records"].contains(&name.as_str()) {
            1
        } else {
            0
        }
    };
    let best = candidates.iter().map(score).max()?;
    let mut top = candidates.iter().filter(|c| score(c) == best);
    match (top.next(), top.next()) {
        (Some(one), None) if best > 0 => Some(one),
        _ => None,
    }
}

/// The schema of one record (a `$ref` schema may come back; resolve it to read it).
pub fn record_schema(
    doc: &Document,
    method: &Method,
    records: Option<&FieldPath>,
) -> Option<Schema> {
    let response = response_schema(method.response.as_ref()?);
    match records {
        None => Some(response),
        Some(path) => {
            let keys: Vec<String> = path.keys().map(str::to_owned).collect();
            schema::schema_at(doc, &response, &keys).cloned()
        }
    }
}

fn response_schema(response: &crate::discovery::SchemaRef) -> Schema {
    Schema {
        reference: Some(response.reference.clone()),
        ..Schema::default()
    }
}

/// The names that identify a record, in the order they lead the default columns (each one the
/// record has, as its own scalar field).
pub const IDENTITY: &[&str] = &[
    "id",
    "name",
    "title",
    "displayName",
    "summary",
    "email",
    "emailAddress",
    "primaryEmail",
];

/// The default columns, in a readable order, the same for every run (`run`, `describe` and
/// `new` all show this list):
///
/// 1. identity: the record's own scalar fields named in [`IDENTITY`], in that order;
/// 2. the record's other own scalar fields, in schema order;
/// 3. with `explode`, the exploded element's own scalar fields, in schema order;
/// 4. nested fields (`a.b`), and the record's arrays and maps (one JSON cell each), in schema
///    order.
///
/// Left out: the leaves of an object that holds only flags or links — every leaf below it a
/// boolean (Drive's `capabilities`, `linkShareMetadata`), or named `…Link`, `…Links`, `…Url`,
/// `…Urls` or `…Uri` — and a map or object named `…Links` or `…Urls` (Drive's `exportLinks`).
/// A query asks for them by listing `prefix.*` in `columns` ([`expand_prefix`]). When the rule
/// would leave nothing, every leaf stays.
pub fn default_columns(
    doc: &Document,
    record: &Schema,
    explode: Option<&FieldPath>,
) -> Result<Vec<Column>, schema::TooManyColumns> {
    let leaves = ordered_leaves(doc, record, explode)?;
    let kept: Vec<&Leaf> = leaves.iter().filter(|l| l.left_out.is_none()).collect();
    let chosen: Vec<&Leaf> = match kept.is_empty() {
        true => leaves.iter().collect(),
        false => kept,
    };
    Ok(chosen
        .into_iter()
        .filter_map(|leaf| FieldPath::parse(&leaf.path).ok().map(Column::from_path))
        .collect())
}

/// The `prefix.*` columns that ask for what [`default_columns`] leaves out (flags and links),
/// in the default order, each once.
pub fn left_out_columns(
    doc: &Document,
    record: &Schema,
    explode: Option<&FieldPath>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let leaves = ordered_leaves(doc, record, explode).unwrap_or_default();
    if leaves.iter().all(|l| l.left_out.is_some()) {
        return out;
    }
    for ask in leaves.iter().filter_map(|l| l.left_out.as_ref()) {
        if !out.contains(ask) {
            out.push(ask.clone());
        }
    }
    out
}

/// `prefix.*` of `columns`: the leaves below `prefix` (or `prefix` itself when it is one
/// column: a map, an array), in the default columns' order, flags and links included.
pub fn expand_prefix(
    doc: &Document,
    record: &Schema,
    explode: Option<&FieldPath>,
    prefix: &FieldPath,
) -> Result<Vec<Column>, String> {
    let written = format!("{prefix}.*");
    if prefix.keys().count() != prefix.segments().len() {
        return Err(format!(
            "`{written}`: a `prefix.*` column takes a dotted path of field names (no `[...]`)"
        ));
    }
    check_path(doc, record, prefix)
        .map_err(|message| message.replacen(&format!("`{prefix}`"), &format!("`{written}`"), 1))?;
    let leaves = ordered_leaves(doc, record, explode).map_err(|e| e.to_string())?;
    let keys: Vec<&str> = prefix.keys().collect();
    let below: Vec<Column> = leaves
        .iter()
        .filter(|leaf| leaf.keys.len() >= keys.len() && leaf.keys[..keys.len()] == keys[..])
        .filter(|leaf| leaf.keys.len() > keys.len() || !leaf.scalar)
        .filter_map(|leaf| FieldPath::parse(&leaf.path).ok().map(Column::from_path))
        .collect();
    match below.is_empty() {
        true => Err(format!(
            "`{written}`: `{prefix}` is a single value, not an object; list it as `{prefix}`"
        )),
        false => Ok(below),
    }
}

/// One leaf of the record schema, for the default columns.
#[derive(Debug)]
struct Leaf {
    path: String,
    keys: Vec<String>,
    /// One value (not an array, a map or a free-form value).
    scalar: bool,
    /// Below an object of only flags or links (or a map of links): the `prefix.*` column
    /// that asks for it.
    left_out: Option<String>,
}

/// Every leaf of the record schema (an exploded array's elements walked too) in the default
/// columns' order, each marked when it is a flag or a link left out by default.
fn ordered_leaves(
    doc: &Document,
    record: &Schema,
    explode: Option<&FieldPath>,
) -> Result<Vec<Leaf>, schema::TooManyColumns> {
    use std::collections::HashMap;
    let paths = schema::leaf_columns(doc, record, explode.map(FieldPath::as_str))?;
    let explode_keys: Vec<String> = explode
        .map(|e| e.keys().map(str::to_owned).collect())
        .unwrap_or_default();
    struct Found {
        path: String,
        keys: Vec<String>,
        /// The keys below the record (or below the exploded element).
        own: usize,
        shape: Shape,
    }
    let found: Vec<Found> = paths
        .into_iter()
        .map(|path| {
            let keys: Vec<String> = path.split('.').map(str::to_owned).collect();
            let own = match keys.starts_with(&explode_keys) && !explode_keys.is_empty() {
                true => explode_keys.len(),
                false => 0,
            };
            let shape = shape(doc, record, &keys);
            Found {
                path,
                keys,
                own,
                shape,
            }
        })
        .collect();
    // Each object above a leaf (below the record): are all its leaves flags, all links?
    let mut objects: HashMap<String, (bool, bool)> = HashMap::new();
    for leaf in &found {
        let flag = leaf.shape == Shape::Scalar(ColumnType::Boolean);
        let link = is_link_name(leaf.keys.last().map_or("", String::as_str));
        for end in leaf.own + 1..leaf.keys.len() {
            let entry = objects
                .entry(leaf.keys[..end].join("."))
                .or_insert((true, true));
            entry.0 &= flag;
            entry.1 &= link;
        }
    }
    let named_links = |name: &str| name.ends_with("Links") || name.ends_with("Urls");
    let left_out = |leaf: &Found| {
        let object = (leaf.own + 1..leaf.keys.len()).find(|&end| {
            let (flags, links) = objects[&leaf.keys[..end].join(".")];
            flags || links || named_links(&leaf.keys[end - 1])
        });
        match object {
            Some(end) => Some(format!("{}.*", leaf.keys[..end].join("."))),
            None => {
                let last = leaf.keys.last().map_or("", String::as_str);
                (leaf.shape == Shape::Whole && named_links(last))
                    .then(|| format!("{}.*", leaf.path))
            }
        }
    };
    let rank = |leaf: &Found| {
        let own = leaf.keys.len() == leaf.own + 1;
        let name = leaf.keys.last().map_or("", String::as_str);
        match (own, &leaf.shape, leaf.own) {
            (true, Shape::Scalar(_), 0) => match IDENTITY.iter().position(|i| *i == name) {
                Some(at) => (0, at),
                None => (1, 0),
            },
            (true, Shape::Scalar(_), _) => (2, 0),
            _ => (3, 0),
        }
    };
    let mut leaves: Vec<(usize, usize, usize, Leaf)> = found
        .iter()
        .enumerate()
        .map(|(at, leaf)| {
            let (group, identity) = rank(leaf);
            let marked = Leaf {
                path: leaf.path.clone(),
                keys: leaf.keys.clone(),
                scalar: matches!(leaf.shape, Shape::Scalar(_)),
                left_out: left_out(leaf),
            };
            (group, identity, at, marked)
        })
        .collect();
    // Stable: the group, then the identity order, then the schema order.
    leaves.sort_by_key(|(group, identity, at, _)| (*group, *identity, *at));
    Ok(leaves.into_iter().map(|(.., leaf)| leaf).collect())
}

/// A field named as a link: `…Link`, `…Links`, `…Url`, `…Urls`, `…Uri` (or just `link`, `url`,
/// `uri`).
fn is_link_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["link", "links", "url", "urls", "uri"]
        .iter()
        .any(|end| lower == *end)
        || ["Link", "Links", "Url", "Urls", "Uri"]
            .iter()
            .any(|end| name.ends_with(end))
}

/// What a leaf of the record schema holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One value of this type.
    Scalar(ColumnType),
    /// An array, a map or a free-form value: one JSON cell.
    Whole,
}

/// The shape of the field at `keys` (arrays above it stepped into).
fn shape(doc: &Document, record: &Schema, keys: &[String]) -> Shape {
    let Some((last, parents)) = keys.split_last() else {
        return Shape::Whole;
    };
    let field = schema::schema_at(doc, record, parents)
        .and_then(|parent| schema::resolve(doc, parent).properties.get(last))
        .map(|field| schema::resolve(doc, field));
    match field {
        Some(field)
            if matches!(
                field.kind.as_deref(),
                Some("string" | "integer" | "number" | "boolean")
            ) =>
        {
            Shape::Scalar(ColumnType::of(field))
        }
        _ => Shape::Whole,
    }
}

pub(super) fn records_path(
    query: &Query,
    doc: &Document,
    method: &Method,
    pagination: &Pagination,
    problems: &mut Vec<Problem>,
) -> Option<FieldPath> {
    let Some(records) = &query.records else {
        return match infer_records(doc, method, pagination) {
            RecordsGuess::Array(path) => Some(path),
            RecordsGuess::Whole => None,
            RecordsGuess::Ambiguous(candidates) => {
                problems.push(query.problem(
                    None,
                    Some("records".to_owned()),
                    format!(
                        "the response of {} has several arrays of records ({}); set `records` to one of them",
                        method.id,
                        quoted_list(&candidates)
                    ),
                ));
                None
            }
        };
    };
    if method.response.is_some() && record_schema(doc, method, Some(&records.value)).is_none() {
        let candidates = method
            .response
            .as_ref()
            .map(|r| schema::record_array_candidates(doc, &response_schema(r)))
            .unwrap_or_default();
        let hint = match candidates.as_slice() {
            [] => "the response has no array of records".to_owned(),
            _ => format!(
                "arrays of records in the response: {}",
                quoted_list(&candidates)
            ),
        };
        problems.push(query.problem(
            records.line,
            Some("records".to_owned()),
            format!(
                "`{}` is not in the response of {}; {hint}",
                records.value, method.id
            ),
        ));
    }
    Some(records.value.clone())
}

pub(super) fn columns(
    query: &Query,
    doc: &Document,
    record: Option<&Schema>,
    check: &Check<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<Column> {
    let explode = query.explode.as_ref().map(|e| &e.value);
    if let Some(columns) = &query.columns {
        let mut out = Vec::new();
        for column in columns {
            if let Some(prefix) = wildcard_prefix(&column.value) {
                let expanded = match (prefix, record) {
                    (Err(message), _) => Err(message),
                    (Ok(prefix), Some(record)) => expand_prefix(doc, record, explode, &prefix),
                    (Ok(prefix), None) => Err(format!(
                        "`{prefix}.*`: the record schema is not known from the Discovery \
                         document, so its fields cannot be listed; name each column"
                    )),
                };
                match expanded {
                    Ok(columns) => out.extend(columns),
                    Err(message) => problems.push(query.problem(
                        column.line,
                        Some("columns".to_owned()),
                        message,
                    )),
                }
                continue;
            }
            let result = match (&column.value.source, record) {
                (ColumnSource::Template(source), _) => check(source),
                (ColumnSource::Path(path), Some(record)) => check_path(doc, record, path),
                (ColumnSource::FirstOf(paths), Some(record)) => paths
                    .iter()
                    .try_for_each(|path| check_path(doc, record, path)),
                (ColumnSource::Path(_) | ColumnSource::FirstOf(_), None) => Ok(()),
            };
            if let Err(message) = result {
                problems.push(query.problem(column.line, Some("columns".to_owned()), message));
            }
            out.push(column.value.clone());
        }
        return out;
    }
    let Some(record) = record else {
        problems.push(query.problem(
            None,
            Some("columns".to_owned()),
            "the record schema is not known from the Discovery document; list the `columns` to export",
        ));
        return Vec::new();
    };
    let columns = match default_columns(doc, record, explode) {
        Ok(columns) => columns,
        Err(too_many) => {
            problems.push(query.problem(None, Some("columns".to_owned()), too_many.to_string()));
            return Vec::new();
        }
    };
    if columns.is_empty() {
        problems.push(query.problem(
            None,
            Some("columns".to_owned()),
            "the record schema has no fields; list the `columns` to export",
        ));
    }
    columns
}

/// The prefix of a `prefix.*` column (a path whose last key is `*`), or why it cannot be one
/// (a `name`: it stands for several columns); `None` for any other column.
fn wildcard_prefix(column: &Column) -> Option<Result<FieldPath, String>> {
    let ColumnSource::Path(path) = &column.source else {
        return None;
    };
    let prefix = path.as_str().strip_suffix(".*")?;
    if column.header != path.as_str() {
        return Some(Err(format!(
            "`{path}` stands for several columns, each headed by its path: remove its `name`"
        )));
    }
    Some(FieldPath::parse(prefix).map_err(|err| err.to_string()))
}

/// The columns of a report: the query's, else the names its request gives (GA4's dimensions
/// and metrics, ...); none when only the response names them (BigQuery, Sheets).
pub(super) fn report_columns(
    query: &Query,
    decoder: &Decoder,
    check: &Check<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<Column> {
    if let Some(columns) = &query.columns {
        for column in columns {
            if let ColumnSource::Template(source) = &column.value.source {
                if let Err(message) = check(source) {
                    problems.push(query.problem(column.line, Some("columns".to_owned()), message));
                }
            }
        }
        return columns.iter().map(|c| c.value.clone()).collect();
    }
    let params: Vec<(String, String)> = query
        .params
        .iter()
        .filter_map(|p| p.value.as_str().map(|v| (p.name.clone(), v.to_owned())))
        .collect();
    decoder
        .columns_from_request(query.body.as_ref().map(|b| &b.value), &params)
        .unwrap_or_default()
        .iter()
        .map(|name| Column::from_path(FieldPath::key(name)))
        .collect()
}

/// Checks a column path against the record schema where the schema names its properties
/// (maps and free-form values accept any key).
pub(super) fn check_path(doc: &Document, record: &Schema, path: &FieldPath) -> Result<(), String> {
    let mut current = schema::resolve(doc, record);
    let mut walked = Vec::new();
    for key in path.keys() {
        while current.kind.as_deref() == Some("array") {
            match &current.items {
                Some(items) => current = schema::resolve(doc, items),
                None => return Ok(()),
            }
        }
        if current.properties.is_empty() {
            return Ok(());
        }
        let Some(next) = current.properties.get(key) else {
            let at = if walked.is_empty() {
                "the record".to_owned()
            } else {
                format!("`{}`", walked.join("."))
            };
            let hint = match nearest(key, current.properties.keys().map(String::as_str)).first() {
                Some(h) => format!("; did you mean `{h}`?"),
                None => String::new(),
            };
            return Err(format!("`{path}`: {at} has no field `{key}`{hint}"));
        };
        walked.push(key);
        current = schema::resolve(doc, next);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{best_candidate, default_columns, expand_prefix, left_out_columns};
    use crate::discovery::Document;
    use crate::records::FieldPath;

    fn record_doc() -> Document {
        Document::from_json(
            r#"{
            "name": "t", "version": "v1", "rootUrl": "http://x/", "servicePath": "",
            "schemas": {
              "Item": {"type": "object", "properties": {
                "abilities": {"type": "object", "properties": {
                  "canEdit": {"type": "boolean"},
                  "deep": {"type": "object", "properties": {"canShare": {"type": "boolean"}}}}},
                "alpha": {"type": "string"},
                "downloads": {"type": "object", "additionalProperties": {"type": "string"}},
                "email": {"type": "string"},
                "exportLinks": {"type": "object", "additionalProperties": {"type": "string"}},
                "icons": {"type": "object", "properties": {
                  "smallUrl": {"type": "string"}, "bigLink": {"type": "string"}}},
                "id": {"type": "string"},
                "name": {"type": "string"},
                "owner": {"type": "object", "properties": {
                  "me": {"type": "boolean"}, "name": {"type": "string"}}},
                "starred": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "webLink": {"type": "string"}
              }}
            }}"#,
        )
        .unwrap()
    }

    #[test]
    fn identity_first_then_own_scalars_then_nested_without_flags_or_links() {
        let doc = record_doc();
        let record = doc.schema("Item").unwrap();
        let headers: Vec<String> = default_columns(&doc, record, None)
            .unwrap()
            .into_iter()
            .map(|c| c.header)
            .collect();
        assert_eq!(
            headers,
            [
                "id",
                "name",
                "email",
                "alpha",
                "starred",
                "webLink",
                "downloads",
                "owner.me",
                "owner.name",
                "tags",
            ]
        );
        assert_eq!(
            left_out_columns(&doc, record, None),
            ["abilities.*", "exportLinks.*", "icons.*"]
        );
        let asked = |prefix: &str| {
            expand_prefix(&doc, record, None, &FieldPath::parse(prefix).unwrap())
                .map(|columns| columns.into_iter().map(|c| c.header).collect::<Vec<_>>())
        };
        assert_eq!(
            asked("abilities").unwrap(),
            ["abilities.canEdit", "abilities.deep.canShare"]
        );
        assert_eq!(asked("exportLinks").unwrap(), ["exportLinks"]);
        assert!(asked("name").unwrap_err().contains("is a single value"));
        assert!(asked("abilites")
            .unwrap_err()
            .contains("did you mean `abilities`?"));
    }

    fn best(candidates: &[&str], resource: &str, verb: &str) -> Option<String> {
        let candidates: Vec<String> = candidates.iter().map(|c| c.to_string()).collect();
        best_candidate(&candidates, resource, verb).cloned()
    }

    /// Cases from the corpus: the array that names what the method lists wins.
    #[test]
    fn the_array_named_after_the_resource_wins() {
        let pick = |c: &[&str], r, v| best(c, r, v);
        assert_eq!(
            pick(&["deletedSession", "session"], "sessions", "list").as_deref(),
            Some("session")
        );
        assert_eq!(
            pick(
                &["appliedJobLocationFilters", "matchingJobs"],
                "jobs",
                "search"
            )
            .as_deref(),
            Some("matchingJobs")
        );
        assert_eq!(
            pick(&["taskEvents", "events"], "events", "list").as_deref(),
            Some("events")
        );
        assert_eq!(
            pick(&["jobMessages", "jobMetrics"], "messages", "list").as_deref(),
            Some("jobMessages")
        );
        assert_eq!(
            pick(&["columns", "rows"], "tables", "fetchRows").as_deref(),
            Some("rows")
        );
        assert_eq!(pick(&["environments", "hosts"], "stats", "get"), None);
        assert_eq!(
            pick(
                &["deletedDataPoint", "insertedDataPoint"],
                "dataPointChanges",
                "list"
            ),
            None
        );
    }
}
