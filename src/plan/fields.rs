//! The partial response a query asks for (`fields`): derived from what it writes, or checked
//! when written by hand.
//!
//! Google sends only a default set of fields for many methods (Drive's `files.list`: `kind,
//! id, name, mimeType` per file) unless `fields` names more, so a column nobody asked for comes
//! back empty. gscrape asks for: the fields of its columns (all of the records for default
//! columns), the `explode` array, the fields a fan-out child reads of each record, the paging
//! fields and the API's totals. Report methods (GA4, BigQuery, ...) are sent no `fields`: their
//! default response is the whole report, all of which the decoder reads.

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
    /// Makes sure the records' fields at `path` come back: added to a derived selection; for
    /// one written by hand, `Err` with the selection path it lacks.
    pub fn require(
        &mut self,
        doc: &Document,
        record: Option<&Schema>,
        path: &FieldPath,
    ) -> Result<(), String> {
        let inside = selectable_keys(doc, record, path);
        self.need(inside.into_iter().map(str::to_owned).collect())
    }

    /// Makes sure the whole records come back.
    fn require_whole_record(&mut self) -> Result<(), String> {
        self.need(Vec::new())
    }

    /// Selects (or checks, for a written selection) `inside`, a path within each record.
    fn need(&mut self, inside: Vec<String>) -> Result<(), String> {
        let mut full: Vec<String> = self.records.iter().cloned().chain(inside).collect();
        if full.is_empty() {
            full.push("*".to_owned()); // the response is the record, and all of it is read
        }
        let full = full.iter().map(String::as_str);
        if self.written.is_none() {
            self.mask.insert(full);
            Ok(())
        } else if self.mask.covers(full.clone()) {
            Ok(())
        } else {
            Err(full.collect::<Vec<_>>().join("/"))
        }
    }

    /// The message for fields a written selection lacks.
    pub fn missing(&self, what: &str, missing: &[String]) -> String {
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

/// True when the method accepts `fields` (every Google API lists it among its global
/// parameters; a document that does not is sent none).
fn accepts_fields(doc: &Document, method: &Method) -> bool {
    doc.parameters.contains_key("fields") || method.parameters.contains_key("fields")
}

/// The partial response of `query`, or `None` when none is sent (the method takes no
/// `fields`, a report, or a templated `fields` sent as written). Problems with a written
/// `fields` go to `problems`.
#[allow(clippy::too_many_arguments)]
pub(super) fn partial_response(
    query: &Query,
    doc: &Document,
    method: &Method,
    decoder: &Decoder,
    record: Option<&Schema>,
    columns: &[Column],
    pagination: &Pagination,
    problems: &mut Vec<Problem>,
) -> Option<PartialResponse> {
    if !accepts_fields(doc, method) {
        return None;
    }
    let param = query.params.iter().find(|p| p.name == "fields");
    let written = match param.map(|p| &p.value) {
        None => None,
        Some(toml::Value::String(text)) if is_template(text) => return None,
        Some(toml::Value::String(text)) => Some(text.clone()),
        Some(_) => return None, // the parameter check reports a value that is not a string
    };
    let line = param.and_then(|p| p.line);
    let problem = |message: String| query.problem(line, Some("params.fields".to_owned()), message);
    let records = match decoder {
        Decoder::Records(records) => records
            .as_ref()
            .map(|p| p.keys().map(str::to_owned).collect())
            .unwrap_or_default(),
        // The whole report is what a report method sends by default, and what it needs.
        _ if written.is_none() => return None,
        _ => Vec::new(),
    };
    let mask = match &written {
        Some(text) => match FieldMask::parse(text) {
            Ok(mask) => mask,
            Err(err) => {
                problems.push(problem(err.to_string()));
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
    if matches!(decoder, Decoder::Records(_)) {
        let everything = query.columns.is_none() && selection.written.is_none();
        if everything && selection.records.is_empty() {
            selection.mask.insert(["*"]);
        } else if everything {
            // Default columns: every field of the records.
            selection
                .mask
                .insert(selection.records.iter().map(String::as_str));
        }
        let needs: Vec<FieldPath> = match everything {
            true => Vec::new(),
            false => columns
                .iter()
                .filter_map(path_of)
                .chain(query.explode.as_ref().map(|e| e.value.clone()))
                .collect(),
        };
        let mut missing = Vec::new();
        for path in &needs {
            if let Err(lacking) = selection.require(doc, record, path) {
                missing.push(lacking);
            }
        }
        if !missing.is_empty() {
            problems.push(problem(selection.missing("the columns read", &missing)));
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
            if response.is_some_and(|r| has_path(doc, r, total)) {
                selection.mask.insert(total.split('.'));
            }
        }
    }
    Some(selection)
}

fn path_of(column: &Column) -> Option<FieldPath> {
    match &column.source {
        ColumnSource::Path(path) => Some(path.clone()),
        ColumnSource::Template(_) => None,
    }
}

/// True when `schema` has the dotted property path `dotted`.
fn has_path(doc: &Document, schema: &Schema, dotted: &str) -> bool {
    let mut current = schema;
    for key in dotted.split('.') {
        match schema::resolve(doc, current).properties.get(key) {
            Some(next) => current = next,
            None => return false,
        }
    }
    true
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
    for key in path.keys() {
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
/// users.primaryEmail }}` → `users/primaryEmail`). A parent whose `fields` is written by hand
/// must already ask for them: a problem otherwise.
pub fn add_child_reads(plans: &mut [QueryPlan], templates: &Templates) -> Vec<Problem> {
    let mut problems = Vec::new();
    for child in 0..plans.len() {
        let Some(parent_name) = plans[child]
            .query
            .for_each
            .as_ref()
            .map(|f| f.value.clone())
        else {
            continue;
        };
        let Some(parent) = plans.iter().position(|p| p.query.name == parent_name) else {
            continue;
        };
        let reads = child_reads(&plans[child], &parent_name, templates);
        let child_name = plans[child].query.name.clone();
        let plan = &mut plans[parent];
        let Some(selection) = plan.fields.as_mut() else {
            continue;
        };
        let records = match &plan.decoder {
            Decoder::Records(records) => records.as_ref(),
            _ => continue,
        };
        let record = record_schema(&plan.doc, &plan.method, records);
        let mut missing = Vec::new();
        for read in reads {
            let path = match read.as_str() {
                "" => None,
                text => FieldPath::parse(text).ok(),
            };
            let result = match &path {
                Some(path) => selection.require(&plan.doc, record.as_ref(), path),
                None => selection.require_whole_record(),
            };
            if let Err(lacking) = result {
                missing.push(lacking);
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
    problems
}

/// The fields of the parent record that a fan-out child's templates read.
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
