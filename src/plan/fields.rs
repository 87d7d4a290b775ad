//! The partial response a query asks for (`fields`): derived from what it writes, or checked
//! when written by hand.
//!
//! Google sends only a default set of fields for many methods (Drive's `files.list`: `kind,
//! id, name, mimeType` per file) unless `fields` names more, so a column nobody asked for comes
//! back empty. gscrape asks for: the fields of its columns (all of the records for default
//! columns), the `explode` array, the fields a fan-out child reads of each record, the paging
//! fields and the API's totals. Report methods (GA4, BigQuery, ...) are sent no `fields`: their
//! default response is the whole report, all of which the decoder reads.

use super::records::check_path;
use super::{record_schema, QueryPlan};
use crate::api::{FieldMask, Pagination, TOTAL_FIELDS};
use crate::discovery::{schema, Document, Method, Schema};
use crate::query::{Problem, Query};
use crate::records::{Column, ColumnSource, Decoder, FieldPath};
use crate::template::{is_template, Templates};

/// The `fields` of a query's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialResponse {
    /// What is sent.
    pub mask: FieldMask,
    /// The query's own `fields` text, when it has one: then its selection is kept (checked to
    /// cover the columns) and only the paging fields are added.
    pub written: Option<String>,
    /// The keys of the records array (`files`), empty when the response is the record.
    records: Vec<String>,
}

impl PartialResponse {
    /// Asks for the records' field at `path` (up to a map, which is asked for whole); a
    /// written selection is only checked: `false` when it lacks the field.
    pub fn require(&mut self, doc: &Document, record: Option<&Schema>, path: &FieldPath) -> bool {
        match self.written {
            None => {
                let keys = selectable_keys(doc, record, path);
                self.mask.insert(in_records(&self.records, keys));
                true
            }
            Some(_) => self
                .mask
                .covers(in_records(&self.records, path.keys().collect())),
        }
    }

    /// Asks for (or checks) the whole records.
    fn require_whole_record(&mut self) -> bool {
        let whole = in_records(&self.records, Vec::new());
        match self.written {
            None => {
                self.mask.insert(whole);
                true
            }
            Some(_) => self.mask.covers(whole),
        }
    }

    /// The message for what a written selection lacks (`what`: who reads it).
    fn missing(&self, what: &str, missing: &[String]) -> String {
        let shown: Vec<String> = missing.iter().take(5).map(|m| format!("`{m}`")).collect();
        let more = match missing.len() {
            n if n > 5 => format!(" and {} more", n - 5),
            _ => String::new(),
        };
        format!(
            "`fields = {:?}` does not ask for {}{more}, which {what} (Google would send them \
             empty): add them to `fields`, or remove `fields` and gscrape asks for what is needed",
            self.written.as_deref().unwrap_or_default(),
            shown.join(", ")
        )
    }
}

/// The selection path of `keys` inside each record of `records` (`*` for the whole
/// response).
fn in_records<'a>(records: &'a [String], keys: Vec<&'a str>) -> Vec<&'a str> {
    let full: Vec<&str> = records.iter().map(String::as_str).chain(keys).collect();
    match full.is_empty() {
        true => vec!["*"],
        false => full,
    }
}

/// True when the method accepts `fields` (every Google API lists it among its global
/// parameters; a document that does not is sent none).
fn accepts_fields(doc: &Document, method: &Method) -> bool {
    doc.parameters.contains_key("fields") || method.parameters.contains_key("fields")
}

/// The partial response of `query`, or `None` when none is sent (the method takes no
/// `fields`, or it is a report). Problems with a written `fields` go to `problems`.
#[allow(clippy::too_many_arguments)]
pub(super) fn partial_response(
    query: &Query,
    doc: &Document,
    method: &Method,
    decoder: &Decoder,
    record: Option<&Schema>,
    columns: &[Column],
    filter_reads: &[FieldPath],
    pagination: &Pagination,
    problems: &mut Vec<Problem>,
) -> Option<PartialResponse> {
    if !accepts_fields(doc, method) {
        return None;
    }
    let param = query.params.iter().find(|p| p.name == "fields");
    let line = param.and_then(|p| p.line);
    let mut problem = |message: String| {
        problems.push(query.problem(line, Some("params.fields".to_owned()), message))
    };
    let written = match param.map(|p| &p.value) {
        None => None,
        Some(toml::Value::String(text)) if is_template(text) => {
            problem("`fields` cannot be a template: gscrape checks it against the columns \
                     before the run; write it out, or remove it and gscrape asks for what is needed"
                .to_owned());
            return None;
        }
        Some(toml::Value::String(text)) => Some(text.clone()),
        Some(_) => return None, // the parameter check reports a value that is not a string
    };
    let records = match decoder {
        Decoder::Records(records) => records
            .as_ref()
            .map(|p| p.keys().map(str::to_owned).collect())
            .unwrap_or_default(),
        // A report's default response is the whole report, and its decoder reads all of it.
        _ if written.is_some() => {
            problem(format!(
                "{} is a report, read whole ({}): remove `fields`",
                method.id,
                decoder.describe()
            ));
            return None;
        }
        _ => return None,
    };
    let mask = match &written {
        Some(text) => match FieldMask::parse(text) {
            Ok(mask) => mask,
            Err(err) => {
                problem(err.to_string());
                return None;
            }
        },
        None => FieldMask::default(),
    };
    let mut selection = PartialResponse {
        mask,
        written,
        records,
    };
    if query.columns.is_none() && selection.written.is_none() {
        // Default columns: every field of the records.
        selection.require_whole_record();
    } else {
        let needs: Vec<FieldPath> = columns
            .iter()
            .flat_map(paths_of)
            .chain(query.explode.as_ref().map(|e| e.value.clone()))
            .chain(filter_reads.iter().cloned())
            .collect();
        let mut missing: Vec<String> = Vec::new();
        if needs.is_empty() && !selection.require_whole_record() {
            missing.push("the records".to_owned());
        }
        for path in &needs {
            if !selection.require(doc, record, path) && !missing.iter().any(|m| m == path.as_str())
            {
                missing.push(path.as_str().to_owned());
            }
        }
        if !missing.is_empty() {
            problem(selection.missing("the columns read", &missing));
        }
    }
    // Paging fields are added even to a written selection: without them the first page
    // would look like the last.
    for path in pagination.response_fields() {
        selection.mask.insert(path.keys());
    }
    if selection.written.is_none() {
        let response = method
            .response
            .as_ref()
            .and_then(|r| doc.schema(&r.reference));
        for total in TOTAL_FIELDS {
            let keys: Vec<String> = total.split('.').map(str::to_owned).collect();
            if response.is_some_and(|r| schema::schema_at(doc, r, &keys).is_some()) {
                selection.mask.insert(total.split('.'));
            }
        }
    }
    Some(selection)
}

/// The record fields a column reads (each fallback path of a `FirstOf`).
fn paths_of(column: &Column) -> Vec<FieldPath> {
    match &column.source {
        ColumnSource::Path(path) => vec![path.clone()],
        ColumnSource::FirstOf(paths) => paths.clone(),
        ColumnSource::Template(_) => Vec::new(),
    }
}

/// The keys of `path` a selection can name: up to and including a map or free-form field
/// (its keys are data, not fields: the whole field is selected).
fn selectable_keys<'a>(
    doc: &Document,
    record: Option<&Schema>,
    path: &'a FieldPath,
) -> Vec<&'a str> {
    let mut keys = Vec::new();
    let mut current = record.map(|r| schema::resolve(doc, r));
    for key in path.selection_keys() {
        keys.push(key);
        let Some(schema) = current else { continue };
        let mut next = schema.properties.get(key).map(|s| schema::resolve(doc, s));
        while let Some(array) = next.filter(|s| s.kind.as_deref() == Some("array")) {
            next = array.items.as_deref().map(|s| schema::resolve(doc, s));
        }
        match next {
            Some(s) if !s.properties.is_empty() => current = Some(s),
            // A map, a free-form object or a scalar: nothing below it is a named field.
            _ => break,
        }
    }
    keys
}

/// Makes each fan-out parent ask for the fields its child reads of every record (`{{
/// users.primaryEmail }}` → `users/primaryEmail`), and so each query above the parent, which
/// a child below reads by its name too. A query whose `fields` is written by hand must
/// already ask for them: a problem otherwise. A read of a computed column (a template
/// `value`) of the query read asks for nothing: the column is not in the response.
pub fn add_child_reads(plans: &mut [QueryPlan], templates: &Templates) -> Vec<Problem> {
    super::schema::type_reads_above(plans);
    let mut problems = Vec::new();
    let mut unknown: Vec<(usize, String)> = Vec::new();
    for child in 0..plans.len() {
        let query = &plans[child].query;
        let above: Vec<String> = (query.for_each.iter().map(|f| f.value.clone()))
            .chain(query.ancestors.iter().cloned())
            .collect();
        for read_name in above {
            let Some(read) = plans.iter().position(|p| p.query.name == read_name) else {
                continue;
            };
            let computed: Vec<String> = plans[read].computed_names().map(str::to_owned).collect();
            let reads: Vec<String> = child_reads(&plans[child], &read_name, templates)
                .into_iter()
                .filter(|path| !reads_computed(path, &computed))
                .collect();
            if reads.is_empty() {
                continue;
            }
            let child_name = plans[child].query.name.clone();
            let plan = &mut plans[read];
            let Some(selection) = plan.fields.as_mut() else {
                continue;
            };
            let records = match &plan.decoder {
                Decoder::Records(records) => records.as_ref(),
                _ => continue,
            };
            let record = record_schema(&plan.doc, &plan.method, records);
            let mut missing: Vec<String> = Vec::new();
            for read in reads {
                let covered = match read.as_str() {
                    "" => selection.require_whole_record(),
                    text => match FieldPath::parse(text) {
                        Err(_) => selection.require_whole_record(),
                        Ok(path) => {
                            // A field the records do not have is the child's mistake.
                            if let Some(Err(why)) =
                                record.as_ref().map(|r| check_path(&plan.doc, r, &path))
                            {
                                unknown.push((
                                    child,
                                    format!("reads `{read_name}.{text}`, but {why}"),
                                ));
                                continue;
                            }
                            selection.require(&plan.doc, record.as_ref(), &path)
                        }
                    },
                };
                if !covered {
                    missing.push(format!("{read_name}.{read}"));
                }
            }
            if !missing.is_empty() {
                let what = format!("the fan-out query `{child_name}` reads");
                let line = plan.query.params.iter().find(|p| p.name == "fields");
                problems.push(plan.query.problem(
                    line.and_then(|p| p.line),
                    Some("params.fields".to_owned()),
                    selection.missing(&what, &missing),
                ));
            }
            plan.send_fields();
        }
    }
    for (child, message) in unknown {
        let query = &plans[child].query;
        problems.push(query.problem(None, Some("for_each".to_owned()), message));
    }
    problems
}

/// True when `path` (read of a record) is one of `computed`, the names of its query's
/// computed columns, or a path inside one.
fn reads_computed(path: &str, computed: &[String]) -> bool {
    computed.iter().any(|name| {
        path.strip_prefix(name.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

/// The fields of the record of the query `parent` (above it) that a fan-out child's
/// templates read.
fn child_reads(child: &QueryPlan, parent: &str, templates: &Templates) -> Vec<String> {
    let mut reads: Vec<String> = child
        .templates()
        .into_iter()
        .flat_map(|text| templates.reads(text, parent))
        .collect();
    reads.sort();
    reads.dedup();
    reads
}
