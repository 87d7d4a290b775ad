//! Checking a [`Query`] against its Discovery document and resolving everything a run needs,
//! one job per module: the first request ([`request`]), the pagination ([`pagination`]), the
//! records and columns ([`records`]), the output file ([`output`]) and the partial response
//! ([`fields`]). Every problem is collected, so one `validate` shows them all.

mod ancestry;
mod body;
mod fields;
mod output;
mod pagination;
mod records;
mod request;
mod schema;

use std::sync::Arc;

use serde_json::Value;

use crate::api::{Pagination, RequestTemplate};
use crate::discovery::{Document, Method};
use crate::query::{Problem, Query};
use crate::records::{Column, ColumnSource, Decoder, FieldPath};
use crate::template::{is_template, Templates};
pub use ancestry::{Ancestry, Lineage};
pub use body::check_rendered_body;

/// A TOML example of a value of a body field's schema (`[{ name = "date" }]`).
pub fn body_example(doc: &Document, schema: &crate::discovery::Schema) -> String {
    body::example(doc, schema, None, 0)
}
pub use fields::{add_child_reads, PartialResponse};
pub use output::{shared_outputs, Output, Target, STDOUT};
pub use pagination::method_pagination;
pub use records::{default_columns, infer_records, left_out_columns, record_schema, RecordsGuess};

/// A query ready to run. What the plan resolves (request, pagination, decoder, columns,
/// output, fields) is read from it, never from `query`, which is kept for what is used as
/// written (name, file, variables, CSV settings, limits, fan-out parent, explode).
#[derive(Debug, Clone)]
pub struct QueryPlan {
    pub query: Query,
    /// The method's document: a fan-out child's reads are checked against this plan's records
    /// once every plan is made ([`add_child_reads`]).
    pub doc: Arc<Document>,
    pub method: Method,
    /// The request of the first page, values as written (templates not yet rendered).
    pub request: RequestTemplate,
    pub pagination: Pagination,
    /// How the records are found in each response.
    pub decoder: Decoder,
    /// The CSV columns; empty when a report names them only in its response.
    pub columns: Vec<Column>,
    /// The file under the output directory (its name rendered, its format from its name and
    /// `format`), an object, or standard output; `None` for `output = false`.
    pub output: Option<Output>,
    /// The partial response asked for (`fields`), if the method takes one.
    pub fields: Option<PartialResponse>,
    /// By column index, the type of a computed column that reads one field of a query above
    /// (`{{ users.creationTime }}`), as that query types it; set once every plan is made
    /// ([`add_child_reads`]).
    pub read_types: Vec<Option<crate::records::schema::ColumnType>>,
}

impl QueryPlan {
    /// The schema of one record: `None` for a report (whose records gscrape makes) or a
    /// method whose response the document does not describe.
    pub fn record_schema(&self) -> Option<crate::discovery::Schema> {
        match &self.decoder {
            Decoder::Records(records) => record_schema(&self.doc, &self.method, records.as_ref()),
            Decoder::Report(_) => None,
        }
    }

    /// The templates rendered while the query runs: request values, body strings, template
    /// columns and the subject.
    pub fn templates(&self) -> Vec<&str> {
        let request = &self.request;
        let columns = self.columns.iter().filter_map(|c| match &c.source {
            ColumnSource::Template(source) => Some(source.as_str()),
            ColumnSource::Path(_) | ColumnSource::FirstOf(_) => None,
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
    /// the record of every query above the chain under its query's name (the parent's, the
    /// parent's parent's, ...).
    pub fn context(&self, above: Option<&Ancestry>) -> minijinja::Value {
        use crate::template::json_value;
        let mut context: std::collections::BTreeMap<String, minijinja::Value> = (self.query.vars)
            .value
            .iter()
            .map(|(name, value)| (name.clone(), json_value(value)))
            .collect();
        if let (Some(above), Some(_)) = (above, &self.query.for_each) {
            for (name, record) in above.iter() {
                context.insert(name.to_owned(), json_value(record));
            }
        }
        minijinja::Value::from(context)
    }

    /// The computed columns (a template `value`) by name, with their text for one chain
    /// (`rendered`: each column's text, by column index, as the run renders them).
    pub fn computed(&self, rendered: &[String]) -> Vec<(String, String)> {
        self.columns
            .iter()
            .zip(rendered)
            .filter(|(column, _)| matches!(column.source, ColumnSource::Template(_)))
            .map(|(column, text)| (column.header.clone(), text.clone()))
            .collect()
    }

    /// The names of its computed columns (a template `value`), which its fan-out children
    /// read as fields of its records.
    pub fn computed_names(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|column| matches!(column.source, ColumnSource::Template(_)))
            .map(|column| column.header.as_str())
    }
}

/// Checks `query` against `doc`; all problems found are returned. Its output is placed as
/// named (relative to the working directory): see [`plan_in`].
pub fn plan(
    query: &Query,
    doc: Arc<Document>,
    templates: &Templates,
) -> Result<QueryPlan, Vec<Problem>> {
    plan_in(query, doc, templates, std::path::Path::new(""))
}

/// Checks `query` against `doc`, its output under `out_dir` (a directory or a `gs://`
/// prefix); all problems found are returned.
pub fn plan_in(
    query: &Query,
    doc: Arc<Document>,
    templates: &Templates,
    out_dir: &std::path::Path,
) -> Result<QueryPlan, Vec<Problem>> {
    let Some(method) = doc.method(&query.method.value) else {
        let hints = doc.similar_method_ids(&query.method.value);
        let hint = match hints.as_slice() {
            [] => format!("see `gscrape describe {} {}`", query.api, query.version),
            _ => format!("did you mean {}?", quoted_list(&hints)),
        };
        let mut problems: Vec<Problem> = (query.stray.iter())
            .map(|p| {
                let message = crate::query::unknown_key_message(&p.name);
                query.problem(p.line, Some(p.name.clone()), message)
            })
            .collect();
        problems.push(query.problem(
            query.method.line,
            Some("method".to_owned()),
            format!(
                "{} has no method {:?}; {hint}",
                doc.label(),
                query.method.value
            ),
        ));
        return Err(problems);
    };
    let mut problems = request::stray_keys(query, &doc, method);
    if let (crate::discovery::Access::Write(why), false) = (method.access(), query.allow_writes) {
        problems.push(query.problem(
            query.method.line,
            Some("method".to_owned()),
            format!(
                "{} changes data in the account ({why}); gscrape exports only read: pick a \
                 list or get method, or set `allow_writes = true` if this query must write",
                method.id
            ),
        ));
    }
    let known = template_variables(query);
    let check = |text: &str| templates.check(text, &known);
    let request = request::build_request(query, &doc, method, &check, &mut problems);
    let pagination = match &query.paginate {
        Some(table) => pagination::configured_pagination(method, &table.value),
        None => method_pagination(&doc, method),
    };
    let report = match &query.records {
        Some(_) => None,
        None => crate::apis::for_method(&method.id).report(
            &method.id,
            query.body.as_ref().map(|b| &b.value),
            query.csv.header.unwrap_or(true),
        ),
    };
    let (decoder, columns, record) = match report {
        Some(report) => {
            let decoder = Decoder::Report(report);
            let columns = records::report_columns(query, &decoder, &check, &mut problems);
            (decoder, columns, None)
        }
        None => {
            let before = problems.len();
            let records = records::records_path(query, &doc, method, &pagination, &mut problems);
            // Columns depend on the records: with those in doubt, checking them would only add noise.
            let record = record_schema(&doc, method, records.as_ref());
            let columns = if problems.len() == before {
                records::columns(query, &doc, record.as_ref(), &check, &mut problems)
            } else {
                Vec::new()
            };
            (Decoder::Records(records), columns, record)
        }
    };
    if query.strict && !decoder.tells_caveats() {
        problems.push(query.problem(
            None,
            Some("strict".to_owned()),
            format!(
                "{}'s responses say nothing of sampled or unfinished numbers (GA4 runReport, Search Console, BigQuery and YouTube Analytics reports do), so `strict` has nothing to refuse: remove it",
                method.id
            ),
        ));
    }
    if columns.is_empty() && query.for_each.is_some() && problems.is_empty() {
        problems.push(query.problem(
            None,
            Some("columns".to_owned()),
            "this report names its columns only in its responses; a fan-out of it must list its `columns`",
        ));
    }
    let output = output::output_path(query, templates, &mut problems);
    let reads_header = crate::apis::for_method(&method.id).reads_header(&method.id);
    let format = output::output_format(query, output.as_deref(), reads_header, &mut problems);
    // Rendered per parent record in a fan-out, else once before the run (app::auth).
    if let Some(subject) = query.subject.as_deref().filter(|s| is_template(s)) {
        if let Err(message) = check(subject) {
            problems.push(query.problem(None, Some("subject".to_owned()), message));
        }
    }
    // The fields a `where` filter reads come back too (it reads the record's own fields), and
    // an incremental query's cursor.
    let mut filter_reads = where_reads(query, &doc, record.as_ref(), templates, &mut problems);
    filter_reads.extend(query.incremental.as_ref().map(|i| i.value.cursor.clone()));
    let fields = match problems.is_empty() {
        true => fields::partial_response(
            query,
            &doc,
            method,
            &decoder,
            record.as_ref(),
            &columns,
            &filter_reads,
            &pagination,
            &mut problems,
        ),
        false => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut plan = QueryPlan {
        output: output::resolve(output, format, out_dir),
        fields,
        query: query.clone(),
        method: method.clone(),
        doc,
        request,
        pagination,
        decoder,
        columns,
        read_types: Vec::new(),
    };
    plan.send_fields();
    Ok(plan)
}

/// The record fields the `where` of `query` reads, each checked against the record schema
/// where there is one: a name it lacks would be undefined in every record, so a typo would
/// silently keep none. Names of the expression's own globals (`range`) are not fields.
fn where_reads(
    query: &Query,
    doc: &Document,
    record: Option<&crate::discovery::Schema>,
    templates: &Templates,
    problems: &mut Vec<Problem>,
) -> Vec<FieldPath> {
    let Some(filter) = &query.filter else {
        return Vec::new();
    };
    let problem = |message| query.problem(filter.line, Some("where".to_owned()), message);
    let names = match templates.expression_reads(&filter.value) {
        Ok(names) => names,
        Err(message) => {
            problems.push(problem(message));
            return Vec::new();
        }
    };
    let mut reads = Vec::new();
    for name in &names {
        let Ok(path) = FieldPath::parse(name) else {
            continue;
        };
        let global = crate::template::is_filter_global(name.split('.').next().unwrap_or(name));
        match record.map(|record| records::check_path(doc, record, &path)) {
            None if global => {}
            None | Some(Ok(())) => reads.push(path),
            Some(Err(_)) if global => {}
            Some(Err(message)) => problems.push(problem(message)),
        }
    }
    reads
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
        .chain(query.ancestors.iter().map(String::as_str))
        .collect()
}

/// A template check: `Ok` or what is wrong with it.
type Check<'a> = dyn Fn(&str) -> Result<(), String> + 'a;

/// Every string inside a JSON value.
fn strings_in(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings_in).collect(),
        Value::Object(map) => map.values().flat_map(strings_in).collect(),
        _ => Vec::new(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(extra: &str) -> Result<QueryPlan, Vec<Problem>> {
        let doc = include_str!("../../tests/fixtures/discovery/drive.v3.json");
        let doc = Arc::new(Document::from_json(doc).unwrap());
        let text = format!(
            "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\ncolumns = [\"id\"]\n{extra}"
        );
        let query = crate::query::parse(std::path::Path::new("q.toml"), &text).unwrap();
        let templates = Templates::for_date(chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
        plan(&query, doc, &templates)
    }

    /// Plans Drive `files.list` queries `(name, text after the method)`, with the ancestors
    /// `load_queries` would note, and adds the fan-out reads: the plans, or the problems.
    fn plans_of(queries: &[(&str, &str)]) -> Result<Vec<QueryPlan>, Vec<String>> {
        let doc = include_str!("../../tests/fixtures/discovery/drive.v3.json");
        let doc = Arc::new(Document::from_json(doc).unwrap());
        let templates = Templates::for_date(chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
        let mut parsed: Vec<Query> = queries
            .iter()
            .map(|(name, extra)| {
                let text = format!(
                    "name = \"{name}\"\napi = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n{extra}"
                );
                crate::query::parse(std::path::Path::new(&format!("{name}.toml")), &text).unwrap()
            })
            .collect();
        for i in 0..parsed.len() {
            let mut above = Vec::new();
            let mut next = parsed[i].for_each.as_ref().map(|f| f.value.clone());
            while let Some(name) = next {
                next = (parsed.iter().find(|q| q.name == name))
                    .and_then(|q| q.for_each.as_ref().map(|f| f.value.clone()));
                above.push(name);
            }
            parsed[i].ancestors = above.split_off(1.min(above.len()));
        }
        let mut plans: Vec<QueryPlan> = parsed
            .iter()
            .map(|q| {
                plan(q, doc.clone(), &templates)
                    .map_err(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>())
            })
            .collect::<Result<_, _>>()?;
        let problems = add_child_reads(&mut plans, &templates);
        match problems.is_empty() {
            true => Ok(plans),
            false => Err(problems.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn a_grandchild_reads_its_grandparent_and_the_computed_columns_above_it() {
        let chain = |leaf_q: &str| {
            plans_of(&[
                (
                    "top",
                    "columns = [\"id\", { name = \"day\", value = \"{{ today }}\" }]\n",
                ),
                (
                    "mid",
                    "for_each = \"top\"\ncolumns = [\"id\", { name = \"top_id\", value = \"{{ top.id }}\" }]\n",
                ),
                (
                    "leaf",
                    &format!("for_each = \"mid\"\ncolumns = [\"id\"]\n[params]\nq = \"{leaf_q}\"\n"),
                ),
            ])
        };
        let plans =
            chain("{{ top.name }} {{ top.day }} {{ mid.top_id }} {{ mid.mimeType }}").unwrap();
        let mask = |i: usize| plans[i].fields.as_ref().unwrap().mask.to_string();
        // `top` is asked for the field its grandchild reads; computed columns are not asked for.
        assert_eq!(mask(0), "files(id,name),nextPageToken");
        assert_eq!(mask(1), "files(id,mimeType),nextPageToken");

        let problems = chain("{{ top.nmae }}").unwrap_err();
        assert_eq!(
            problems,
            ["leaf.toml: for_each: reads `top.nmae`, but `nmae`: the record has no field `nmae`; did you mean `name`?"]
        );
        let problems = chain("{{ tpo.name }}").unwrap_err();
        assert_eq!(
            problems,
            ["leaf.toml:8: params.q: \"{{ tpo.name }}\" uses the undefined variable `tpo`; this query has `mid`, `top`"]
        );
    }

    #[test]
    fn a_where_reads_record_fields_and_its_own_globals() {
        let plan = plan_of("where = \"size > 1 and (range(3) | length) > 2\"\n").unwrap();
        assert_eq!(
            plan.fields.unwrap().mask.to_string(),
            "files(id,size),nextPageToken",
            "`range` is no field"
        );
        let problems = plan_of("where = \"sise > 1\"\n").unwrap_err();
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            ["q.toml:5: where: `sise`: the record has no field `sise`; did you mean `size`?"]
        );
    }
}
