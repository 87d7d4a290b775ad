//! What a query's records are and which columns it writes: the records array inferred or
//! checked, the record schema, the default columns, and the query's columns checked against
//! that schema (a report's columns come from its request).

use super::{quoted_list, Check};
use crate::api::Pagination;
use crate::discovery::{schema, Document, Method, Schema};
use crate::query::{Problem, Query};
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

/// The default columns: the scalar leaves of the record schema (an exploded array's elements
/// walked too).
pub fn default_columns(
    doc: &Document,
    record: &Schema,
    explode: Option<&FieldPath>,
) -> Result<Vec<Column>, schema::TooManyColumns> {
    let leaves = schema::leaf_columns(doc, record, explode.map(FieldPath::as_str))?;
    Ok(leaves
        .iter()
        .filter_map(|leaf| FieldPath::parse(leaf).ok().map(Column::from_path))
        .collect())
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
    if let Some(columns) = &query.columns {
        for column in columns {
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
        }
        return columns.iter().map(|c| c.value.clone()).collect();
    }
    let Some(record) = record else {
        problems.push(query.problem(
            None,
            Some("columns".to_owned()),
            "the record schema is not known from the Discovery document; list the `columns` to export",
        ));
        return Vec::new();
    };
    let columns = match default_columns(doc, record, query.explode.as_ref().map(|e| &e.value)) {
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
    use super::best_candidate;

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
