//! Checking a [`Query`] against its Discovery document and resolving everything a run needs:
//! the method, the first request, the pagination style, the records path and the columns.
//! Every problem is collected, so one `validate` shows them all.

mod fields;

use std::sync::Arc;

use serde_json::Value;

use crate::api::{
    OffsetEnd, OffsetPaging, PageNumberPaging, Pagination, RequestField, RequestTemplate,
    ValueKind, ValueRule,
};
use crate::discovery::{nearest, schema, Document, Location, Method, Parameter, Schema};
use crate::query::{Located, PaginateTable, Param, Problem, Query};
use crate::records::{Column, ColumnSource, Decoder, FieldPath};
use crate::template::{is_template, Templates};
pub use fields::{add_child_reads, PartialResponse};

/// A query ready to run.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    pub query: Query,
    pub doc: Arc<Document>,
    pub method: Method,
    /// The request of the first page, values as written (templates not yet rendered).
    pub request: RequestTemplate,
    pub pagination: Pagination,
    /// How the records are found in each response.
    pub decoder: Decoder,
    /// The CSV columns; empty when a report names them only in its response.
    pub columns: Vec<Column>,
    /// The least-privilege OAuth scope of the method, if it lists any.
    pub scope: Option<String>,
    /// The CSV under the output directory (its name rendered); `None` for `output = false`.
    pub output: Option<std::path::PathBuf>,
    /// The partial response asked for (`fields`), if the method takes one.
    pub fields: Option<PartialResponse>,
}

impl QueryPlan {
    /// The templates rendered while the query runs: request values, body strings, template
    /// columns and the subject.
    pub fn templates(&self) -> Vec<&str> {
        let request = &self.request;
        let columns = self.columns.iter().filter_map(|c| match &c.source {
            ColumnSource::Template(source) => Some(source.as_str()),
            ColumnSource::Path(_) => None,
        });
        request
            .path_params
            .iter()
            .chain(&request.query)
            .map(|(_, value)| value.as_str())
            .chain(request.body.iter().flat_map(strings_in))
            .chain(columns)
            .chain(self.query.subject.as_deref())
            .filter(|text| is_template(text))
            .collect()
    }

    /// Problems where a template could read a secret in use: a variable whose value holds
    /// one, or an environment variable it reads that does (known only once the credential
    /// is, so checked before the run rather than by `validate`).
    pub fn secret_reads(&self, templates: &Templates) -> Vec<Problem> {
        let query = &self.query;
        let problem = |key: String, what: String| {
            query.problem(
                None,
                Some(key),
                format!("{what} is a credential in use; templates cannot read gscrape's secrets"),
            )
        };
        let mut problems: Vec<Problem> = query
            .vars
            .value
            .iter()
            .filter(|(_, value)| crate::redact::holds_secret(&value.to_string()))
            .map(|(name, _)| problem(format!("vars.{name}"), "its value".to_owned()))
            .collect();
        let mut read: Vec<String> = self
            .templates()
            .into_iter()
            .flat_map(|text| templates.reads(text, "env"))
            .collect();
        read.sort();
        read.dedup();
        for name in read {
            let secret = std::env::var(&name).is_ok_and(|v| crate::redact::holds_secret(&v));
            if secret {
                problems.push(problem(
                    "env".to_owned(),
                    format!("the environment variable {name}"),
                ));
            }
        }
        problems
    }
    /// Puts the partial response into the request (replacing a written `fields`).
    pub(crate) fn send_fields(&mut self) {
        if let Some(fields) = &self.fields {
            let text = fields.mask.to_string();
            match self
                .request
                .query
                .iter_mut()
                .find(|(name, _)| name == "fields")
            {
                Some((_, value)) => *value = text,
                None => self.request.query.push(("fields".to_owned(), text)),
            }
        }
    }

    /// The template context of one request chain: the query's variables, and in a fan-out
    /// the parent's record under the parent query's name.
    pub fn context(&self, parent: Option<&Value>) -> minijinja::Value {
        let mut context = self.query.vars.value.clone();
        if let (Some(record), Some(name)) = (parent, &self.query.for_each) {
            context.insert(name.value.clone(), record.clone());
        }
        minijinja::Value::from(minijinja::value::Serde(Value::Object(context)))
    }
}

/// Checks `query` against `doc`; all problems found are returned.
pub fn plan(
    query: &Query,
    doc: Arc<Document>,
    templates: &Templates,
) -> Result<QueryPlan, Vec<Problem>> {
    let Some(method) = doc.method(&query.method.value) else {
        let hints = doc.similar_method_ids(&query.method.value);
        let hint = match hints.as_slice() {
            [] => format!("see `gscrape describe {} {}`", query.api, query.version),
            _ => format!("did you mean {}?", quoted_list(&hints)),
        };
        return Err(vec![query.problem(
            query.method.line,
            Some("method".to_owned()),
            format!(
                "{} has no method {:?}; {hint}",
                doc.label(),
                query.method.value
            ),
        )]);
    };
    let mut problems = Vec::new();
    let known = template_variables(query);
    let check = |text: &str| templates.check(text, &known);
    let request = build_request(query, &doc, method, &check, &mut problems);
    let pagination = match &query.paginate {
        Some(table) => configured_pagination(query, method, table, &mut problems),
        None => Pagination::detect(&doc, method),
    };
    let report = match &query.records {
        Some(_) => None,
        None => Decoder::for_method(
            &method.id,
            query.body.as_ref().map(|b| &b.value),
            query.csv.header.unwrap_or(true),
        ),
    };
    let (decoder, columns, record) = match report {
        Some(decoder) => {
            let columns = report_columns(query, &decoder, &check, &mut problems);
            (decoder, columns, None)
        }
        None => {
            let before = problems.len();
            let records = records_path(query, &doc, method, &pagination, &mut problems);
            // Columns depend on the records: with those in doubt, checking them would only add noise.
            let record = record_schema(&doc, method, records.as_ref());
            let columns = if problems.len() == before {
                columns(query, &doc, record.as_ref(), &check, &mut problems)
            } else {
                Vec::new()
            };
            (Decoder::Records(records), columns, record)
        }
    };
    if columns.is_empty() && query.for_each.is_some() && problems.is_empty() {
        problems.push(query.problem(
            None,
            Some("columns".to_owned()),
            "this report names its columns only in its responses; a fan-out of it must list its `columns`",
        ));
    }
    let output = output_path(query, templates, &mut problems);
    // Rendered per parent record in a fan-out, else once before the run (app::auth).
    if let Some(subject) = query.subject.as_deref().filter(|s| is_template(s)) {
        if let Err(message) = check(subject) {
            problems.push(query.problem(None, Some("subject".to_owned()), message));
        }
    }
    let fields = match problems.is_empty() {
        true => fields::partial_response(
            query,
            &doc,
            method,
            &decoder,
            record.as_ref(),
            &columns,
            &pagination,
            &mut problems,
        ),
        false => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut plan = QueryPlan {
        output,
        fields,
        query: query.clone(),
        scope: method.preferred_scope().map(str::to_owned),
        method: method.clone(),
        doc,
        request,
        pagination,
        decoder,
        columns,
    };
    plan.send_fields();
    Ok(plan)
}

/// Two queries writing one file would lose one export: a problem for the later one.
pub fn shared_outputs(plans: &[QueryPlan]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let Some(output) = &plan.output else { continue };
        // (Two queries of one name are reported as such already.)
        let first = plans[..i].iter().find(|other| {
            other.output.as_ref() == Some(output) && other.query.name != plan.query.name
        });
        if let Some(first) = first {
            problems.push(plan.query.problem(
                None,
                Some("output".to_owned()),
                format!(
                    "{:?} is also the output of {}; give one of them another `output`",
                    output.display().to_string(),
                    first.query.file.display()
                ),
            ));
        }
    }
    problems
}

/// The variables the templates of `query` may use (besides the built-ins): its `[vars]`, and
/// the parent query of a fan-out.
pub fn template_variables(query: &Query) -> Vec<&str> {
    query
        .vars
        .value
        .keys()
        .map(String::as_str)
        .chain(query.for_each.iter().map(|f| f.value.as_str()))
        .collect()
}

/// The output file name, rendered (it may use the variables and dates, not a parent record).
fn output_path(
    query: &Query,
    templates: &Templates,
    problems: &mut Vec<Problem>,
) -> Option<std::path::PathBuf> {
    let raw = query.output.as_ref()?;
    let text = raw.to_string_lossy();
    if !crate::template::is_template(&text) {
        return Some(raw.clone());
    }
    let known: Vec<&str> = query.vars.value.keys().map(String::as_str).collect();
    let rendered = templates.check(&text, &known).and_then(|()| {
        let context = minijinja::Value::from(minijinja::value::Serde(Value::Object(
            query.vars.value.clone(),
        )));
        templates.render(&text, &context)
    });
    match rendered {
        Ok(name) if crate::query::is_plain_relative(std::path::Path::new(&name)) => {
            Some(name.into())
        }
        Ok(name) => {
            problems.push(query.problem(
                None,
                Some("output".to_owned()),
                format!("{name:?} must be a relative file name under the output directory (no `..`, not absolute)"),
            ));
            None
        }
        Err(message) => {
            problems.push(query.problem(None, Some("output".to_owned()), message));
            None
        }
    }
}

/// A template check: `Ok` or what is wrong with it.
type Check<'a> = dyn Fn(&str) -> Result<(), String> + 'a;

fn build_request(
    query: &Query,
    doc: &Document,
    method: &Method,
    check: &Check<'_>,
    problems: &mut Vec<Problem>,
) -> RequestTemplate {
    let mut path_values: Vec<(String, String)> = Vec::new();
    let mut query_values = Vec::new();
    let mut rules = Vec::new();
    for param in &query.params {
        let key = Some(format!("params.{}", param.name));
        let Some(spec) = method.parameter(doc, &param.name) else {
            if crate::query::TOP_LEVEL_KEYS.contains(&param.name.as_str()) {
                problems.push(query.problem(
                    param.line,
                    key,
                    format!(
                        "`{}` is a top-level key, not a parameter: move it above [params] \
                         (in TOML every key after a [table] header belongs to that table)",
                        param.name
                    ),
                ));
                continue;
            }
            let names = method.parameters.keys().chain(doc.parameters.keys());
            let hint = match nearest(&param.name, names.map(String::as_str)).first() {
                Some(h) => format!("did you mean `{h}`?"),
                None => format!(
                    "see `gscrape describe {} {} {}`",
                    query.api, query.version, method.id
                ),
            };
            problems.push(query.problem(
                param.line,
                key,
                format!("unknown parameter of {}; {hint}", method.id),
            ));
            continue;
        };
        if has_template(&param.value) {
            rules.push((param.name.clone(), value_rule(spec)));
        }
        match param_values(param, spec, check) {
            Ok(values) if spec.location == Location::Path => {
                path_values.extend(values.into_iter().map(|v| (param.name.clone(), v)));
            }
            Ok(values) => {
                query_values.extend(values.into_iter().map(|v| (param.name.clone(), v)));
            }
            Err(message) => problems.push(query.problem(param.line, key, message)),
        }
    }
    for (name, spec) in &method.parameters {
        if spec.required && !query.params.iter().any(|p| &p.name == name) {
            let location = match spec.location {
                Location::Path => "path",
                Location::Query => "query",
            };
            problems.push(query.problem(
                None,
                Some(format!("params.{name}")),
                format!(
                    "missing required {location} parameter of {}: add `{name} = ...` under [params] ({})",
                    method.id,
                    first_sentence(&spec.description)
                ),
            ));
        }
    }
    let body = match (&query.body, &method.request) {
        (Some(body), None) => {
            problems.push(query.problem(
                body.line,
                Some("body".to_owned()),
                format!(
                    "{} takes no request body (it is {} {}); remove [body] or use [params]",
                    method.id, method.http_method, method.path
                ),
            ));
            None
        }
        (Some(body), Some(request)) => {
            check_body_keys(
                query,
                doc,
                &body.value,
                &request.reference,
                body.line,
                problems,
            );
            for text in strings_in(&body.value) {
                if let Err(message) = check(text) {
                    problems.push(query.problem(body.line, Some("body".to_owned()), message));
                }
            }
            Some(body.value.clone())
        }
        (None, _) => None,
    };
    for (name, value) in default_params(method) {
        if !query.params.iter().any(|p| p.name == name) {
            query_values.push((name.to_owned(), value.to_owned()));
        }
    }
    RequestTemplate {
        http_method: method.http_method.parse().unwrap_or(http::Method::GET),
        base_url: doc.base_url(),
        path: method.path.clone(),
        path_params: path_values,
        query: query_values,
        body,
        rules,
    }
}

/// True when a parameter's value (or one of its values) is a template.
fn has_template(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(text) => is_template(text),
        toml::Value::Array(items) => items.iter().any(has_template),
        _ => false,
    }
}

/// What a templated value of `spec` must render to.
fn value_rule(spec: &Parameter) -> ValueRule {
    let int_format = matches!(
        spec.format.as_deref(),
        Some("int64" | "uint64" | "int32" | "uint32")
    );
    let kind = match spec.kind.as_str() {
        "integer" => ValueKind::Integer,
        "number" => ValueKind::Number,
        "boolean" => ValueKind::Boolean,
        "string" if int_format => ValueKind::Integer,
        _ => ValueKind::Text,
    };
    ValueRule {
        kind,
        allowed: spec.enum_values.clone(),
    }
}

/// Parameters gscrape sends unless the query sets them, where the API's own default is a trap:
/// Sheets would send dates as serial numbers, and Drive lists would miss shared drives.
fn default_params(method: &Method) -> Vec<(&'static str, &'static str)> {
    let has = |name: &str| method.parameters.contains_key(name);
    let mut defaults = Vec::new();
    if method.id.starts_with("sheets.spreadsheets.values.") {
        if has("valueRenderOption") {
            defaults.push(("valueRenderOption", "FORMATTED_VALUE"));
        }
        if has("dateTimeRenderOption") {
            defaults.push(("dateTimeRenderOption", "FORMATTED_STRING"));
        }
    }
    if method.id.starts_with("drive.") && method.id.ends_with(".list") {
        for name in ["supportsAllDrives", "includeItemsFromAllDrives"] {
            if has(name) {
                defaults.push((name, "true"));
            }
        }
    }
    defaults
}

/// Every string inside a JSON value.
fn strings_in(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings_in).collect(),
        Value::Object(map) => map.values().flat_map(strings_in).collect(),
        _ => Vec::new(),
    }
}

/// The string values of a parameter, checked against its declared type, enum and repetition.
/// A template is checked for the variables it uses; its value is known only when it runs.
fn param_values(param: &Param, spec: &Parameter, check: &Check<'_>) -> Result<Vec<String>, String> {
    let items = match &param.value {
        toml::Value::Array(items) if spec.repeated => items.as_slice(),
        toml::Value::Array(_) => {
            return Err("takes one value, not a list (the parameter is not repeated)".to_owned())
        }
        one => std::slice::from_ref(one),
    };
    items
        .iter()
        .map(|value| match value {
            toml::Value::String(text) if is_template(text) => check(text).map(|()| text.clone()),
            value => scalar_value(value, spec),
        })
        .collect()
}

fn scalar_value(value: &toml::Value, spec: &Parameter) -> Result<String, String> {
    let int_format = matches!(
        spec.format.as_deref(),
        Some("int64" | "uint64" | "int32" | "uint32")
    );
    let text = match (spec.kind.as_str(), value) {
        ("integer", toml::Value::Integer(i)) => i.to_string(),
        ("number", toml::Value::Integer(i)) => i.to_string(),
        ("number", toml::Value::Float(f)) => f.to_string(),
        ("boolean", toml::Value::Boolean(b)) => b.to_string(),
        ("string", toml::Value::String(s)) => s.clone(),
        ("string", toml::Value::Integer(i)) if int_format => i.to_string(),
        ("string", toml::Value::Datetime(d)) => d.to_string(),
        ("any", toml::Value::String(s)) => s.clone(),
        ("any", toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)) => {
            value.to_string()
        }
        (kind, other) => {
            let expected = match kind {
                "integer" => "an integer",
                "number" => "a number",
                "boolean" => "a boolean (true or false)",
                "string" if int_format => "a string or an integer",
                _ => "a string",
            };
            return Err(format!(
                "expected {expected}, found {}",
                describe_toml(other)
            ));
        }
    };
    if !spec.enum_values.is_empty() && !spec.enum_values.contains(&text) {
        return Err(format!(
            "{text:?} is not an allowed value; use one of: {}",
            spec.enum_values.join(", ")
        ));
    }
    Ok(text)
}

fn describe_toml(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(f) => format!("the number {f}"),
        toml::Value::Boolean(b) => format!("the boolean {b}"),
        toml::Value::Datetime(d) => format!("the date {d}"),
        toml::Value::Array(_) => "a list".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

fn check_body_keys(
    query: &Query,
    doc: &Document,
    body: &Value,
    schema_name: &str,
    line: Option<usize>,
    problems: &mut Vec<Problem>,
) {
    let (Some(schema), Value::Object(map)) = (doc.schema(schema_name), body) else {
        return;
    };
    if schema.properties.is_empty() {
        return;
    }
    for key in map.keys() {
        if !schema.properties.contains_key(key) {
            let hint = match nearest(key, schema.properties.keys().map(String::as_str)).first() {
                Some(h) => format!("; did you mean `{h}`?"),
                None => String::new(),
            };
            problems.push(query.problem(
                line,
                Some(format!("body.{key}")),
                format!("not a field of the request body {schema_name}{hint}"),
            ));
        }
    }
}

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

fn records_path(
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

fn columns(
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
                (ColumnSource::Path(_), None) => Ok(()),
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
fn report_columns(
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

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first sentence of a description, for one-line messages.
pub fn first_sentence(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.find(". ") {
        Some(end) => text[..=end].to_owned(),
        None => text,
    }
}

/// The pagination a query's `[paginate]` table describes.
fn configured_pagination(
    query: &Query,
    method: &Method,
    table: &Located<PaginateTable>,
    problems: &mut Vec<Problem>,
) -> Pagination {
    let t = &table.value;
    let mut fail = |message: String| {
        problems.push(query.problem(table.line, Some("paginate".to_owned()), message));
        Pagination::None
    };
    let location = match t.location.as_deref() {
        None => None,
        Some("query") => Some(false),
        Some("body") => Some(true),
        Some(other) => return fail(format!("`in = {other:?}`: use \"query\" or \"body\"")),
    };
    let field = |name: &str| {
        let in_body = location
            .unwrap_or_else(|| !method.parameters.contains_key(name) && method.request.is_some());
        if in_body {
            RequestField::Body(name.to_owned())
        } else {
            RequestField::Query(name.to_owned())
        }
    };
    let response_path = |text: &str| FieldPath::parse(text).map_err(|e| e.to_string());
    match t.style.as_str() {
        "none" => Pagination::None,
        "token" => match response_path(t.next.as_deref().unwrap_or("nextPageToken")) {
            Ok(response) => Pagination::Token {
                request: field(t.token.as_deref().unwrap_or("pageToken")),
                response,
            },
            Err(message) => fail(format!("next: {message}")),
        },
        "offset" => {
            let (Some(offset), Some(limit)) = (&t.offset, &t.limit) else {
                return fail("the offset style needs `offset` and `limit` (the request fields of the offset and the page size)".to_owned());
            };
            let end = match (&t.total, &t.next_offset) {
                (Some(total), _) => response_path(total).map(OffsetEnd::Total),
                (None, Some(next)) => response_path(next).map(OffsetEnd::NextOffset),
                (None, None) => Ok(OffsetEnd::ShortPage),
            };
            match end {
                Ok(end) => Pagination::Offset(OffsetPaging {
                    offset: field(offset),
                    limit: field(limit),
                    first: t.first.unwrap_or(0),
                    page_size: t.page_size.map_or(100, |n| n.get()),
                    as_string: false,
                    end,
                }),
                Err(message) => fail(message),
            }
        }
        "page" => {
            let Some(page) = &t.page else {
                return fail(
                    "the page style needs `page` (the request field of the page number)".to_owned(),
                );
            };
            Pagination::PageNumber(PageNumberPaging {
                page: field(page),
                first: t.first.unwrap_or(1),
                limit: t
                    .limit
                    .as_ref()
                    .map(|limit| (field(limit), t.page_size.map_or(100, |n| n.get()))),
            })
        }
        other => fail(format!(
            "style {other:?} is not one of: token, offset, page, none"
        )),
    }
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
