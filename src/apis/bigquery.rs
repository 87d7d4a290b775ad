//! BigQuery, `bigquery.jobs.query` and `jobs.getQueryResults`: the rows come as `rows[].f[].v`
//! cells named by the response's `schema.fields` (nested for RECORD and REPEATED fields); the
//! pages after the first of `jobs.query` (and the results of a job still running) come from
//! `jobs.getQueryResults` for the job the first response names.

use std::sync::Arc;

use serde_json::Value;

use super::Api;
use crate::api::paginate::{path, token_at};
use crate::api::request::encode_path_segment;
use crate::api::{ApiNext, ApiPaging, Pagination, PaginationError, RequestField, RequestSpec};
use crate::discovery::{Document, Method};
use crate::records::decode::{rows, ReportRows};
use crate::records::schema::ColumnType;
use crate::records::Caveat;

pub(super) struct BigQuery;

impl Api for BigQuery {
    fn handles(&self, method_id: &str) -> bool {
        matches!(
            method_id,
            "bigquery.jobs.query" | "bigquery.jobs.getQueryResults"
        )
    }

    /// `getQueryResults` pages by `pageToken`, which Discovery shows.
    fn pagination(&self, _doc: &Document, method: &Method) -> Option<Pagination> {
        (method.id == "bigquery.jobs.query").then(|| Pagination::Api(Arc::new(JobResults)))
    }

    fn report(&self, _: &str, _: Option<&Value>, _: bool) -> Option<Arc<dyn ReportRows>> {
        Some(Arc::new(BigQueryRows))
    }
}

/// `jobs.query`, then `jobs.getQueryResults` of its job until the job is complete and no
/// `pageToken` follows.
#[derive(Debug)]
struct JobResults;

impl ApiPaging for JobResults {
    fn describe(&self) -> String {
        "BigQuery job: later pages from jobs.getQueryResults with `pageToken`".to_owned()
    }

    fn next(
        &self,
        page: &Value,
        request: &RequestSpec,
        first: bool,
    ) -> Result<Option<ApiNext>, PaginationError> {
        let complete = page
            .get("jobComplete")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let token = token_at(page, &path("pageToken"))?.map(str::to_owned);
        if complete && token.is_none() {
            return Ok(None);
        }
        // Later requests are already the job's getQueryResults.
        let url = match first {
            false => request.url.clone(),
            true => {
                let job = page
                    .pointer("/jobReference/jobId")
                    .and_then(Value::as_str)
                    .ok_or_else(|| PaginationError::Api("the BigQuery response names no job (jobReference.jobId); cannot fetch the rest of the results".to_owned()))?;
                format!("{}/{}", request.url, encode_path_segment(job))
            }
        };
        let location = page
            .pointer("/jobReference/location")
            .and_then(Value::as_str);
        // The page size of jobs.query's body carries over to getQueryResults.
        let max_results = request
            .body
            .as_ref()
            .and_then(|b| b.get("maxResults"))
            .map(|v| v.to_string().trim_matches('"').to_owned())
            .or_else(|| RequestField::Query("maxResults".into()).get(request));
        let mut next = request.clone();
        next.http_method = http::Method::GET;
        next.body = None;
        next.url = url;
        next.query
            .retain(|(name, _)| !["pageToken", "location", "maxResults"].contains(&name.as_str()));
        if let Some(location) = location {
            next.set_query("location", location.to_owned());
        }
        if let Some(max) = max_results {
            next.set_query("maxResults", max);
        }
        if let Some(token) = &token {
            next.set_query("pageToken", token.clone());
        }
        Ok(Some(ApiNext {
            token,
            request: next,
        }))
    }
}

#[derive(Debug)]
struct BigQueryRows;

impl ReportRows for BigQueryRows {
    fn describe(&self) -> &'static str {
        "BigQuery rows, named by the result's schema (f/v cells decoded)"
    }

    fn columns_from_response(&self, page: &Value) -> Option<Vec<String>> {
        page.pointer("/schema/fields")
            .map(|_| bigquery_fields(page).into_iter().map(|f| f.name).collect())
    }

    fn tells_caveats(&self) -> bool {
        true
    }

    /// The result's schema: a REPEATED or RECORD field (a JSON cell) and the types without a
    /// typed column here (NUMERIC, BYTES, GEOGRAPHY, ...) are strings.
    fn column_types(&self, page: &Value) -> Option<Vec<ColumnType>> {
        page.pointer("/schema/fields")?;
        let fields = bigquery_fields(page);
        Some(
            fields
                .iter()
                .map(|f| match (f.repeated, f.kind.as_str()) {
                    (true, _) => ColumnType::Text,
                    (false, "INTEGER" | "INT64") => ColumnType::Integer,
                    (false, "FLOAT" | "FLOAT64") => ColumnType::Number,
                    (false, "BOOLEAN" | "BOOL") => ColumnType::Boolean,
                    (false, "TIMESTAMP") => ColumnType::DateTime,
                    (false, "DATE") => ColumnType::Date,
                    (false, "DATETIME") => ColumnType::LocalDateTime,
                    _ => ColumnType::Text,
                })
                .collect(),
        )
    }

    /// `errors`: "the first errors or warnings encountered during the running of the job",
    /// which do not mean it failed; each is a caveat.
    fn caveats(&self, page: &Value) -> Vec<Caveat> {
        super::error_caveats(page.get("errors"), "message")
    }

    fn decode(&self, page: Value) -> Vec<Value> {
        let fields = bigquery_fields(&page);
        rows(&page)
            .iter()
            .map(|row| bigquery_record(&fields, row))
            .collect()
    }
}

/// A BigQuery field: its name, type, mode and subfields.
struct BqField {
    name: String,
    kind: String,
    repeated: bool,
    fields: Vec<BqField>,
}

fn bigquery_fields(page: &Value) -> Vec<BqField> {
    fn parse(fields: Option<&Value>) -> Vec<BqField> {
        fields
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|f| BqField {
                        name: f
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        kind: f
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        repeated: f.get("mode").and_then(Value::as_str) == Some("REPEATED"),
                        fields: parse(f.get("fields")),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    parse(page.pointer("/schema/fields"))
}

/// A row `{"f": [{"v": ...}, ...]}` as an object of the schema's field names.
fn bigquery_record(fields: &[BqField], row: &Value) -> Value {
    let cells = row
        .get("f")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    Value::Object(
        fields
            .iter()
            .zip(cells.iter().map(|c| c.get("v").unwrap_or(&Value::Null)))
            .map(|(field, value)| (field.name.clone(), bigquery_value(field, value)))
            .collect(),
    )
}

/// A cell: RECORDs become objects, REPEATED fields arrays (both end up as JSON in a CSV cell);
/// TIMESTAMPs (seconds since 1970, as text) become RFC 3339 UTC; other values stay text.
fn bigquery_value(field: &BqField, value: &Value) -> Value {
    if field.repeated {
        let items = value.as_array().map_or(&[][..], Vec::as_slice);
        return Value::Array(
            items
                .iter()
                .map(|item| bigquery_scalar(field, item.get("v").unwrap_or(&Value::Null)))
                .collect(),
        );
    }
    bigquery_scalar(field, value)
}

/// One value of a field (an element, for a REPEATED one).
fn bigquery_scalar(field: &BqField, value: &Value) -> Value {
    match field.kind.as_str() {
        "RECORD" | "STRUCT" => bigquery_record(&field.fields, value),
        "TIMESTAMP" => value
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .and_then(|secs| {
                chrono::DateTime::from_timestamp_micros((secs * 1_000_000.0).round() as i64)
            })
            .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .unwrap_or_else(|| value.clone()),
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bigquery_columns_are_typed_by_the_result_schema() {
        let page = json!({"schema": {"fields": [
            {"name": "n", "type": "INTEGER"}, {"name": "x", "type": "FLOAT"},
            {"name": "ok", "type": "BOOLEAN"}, {"name": "at", "type": "TIMESTAMP"},
            {"name": "day", "type": "DATE"}, {"name": "amount", "type": "NUMERIC"},
            {"name": "tags", "type": "STRING", "mode": "REPEATED"}]}});
        use crate::records::schema::ColumnType::*;
        assert_eq!(
            BigQueryRows.column_types(&page),
            Some(vec![Integer, Number, Boolean, DateTime, Date, Text, Text])
        );
        assert_eq!(
            BigQueryRows.column_types(&json!({"jobComplete": false})),
            None
        );
    }

    #[test]
    fn bigquery_errors_beside_the_rows_are_warnings() {
        let page = json!({"rows": [], "errors": [
            {"reason": "invalidQuery", "location": "query", "message": "Field x is deprecated"},
            {"message": "partial results"}]});
        let said: Vec<String> = BigQueryRows
            .caveats(&page)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            said,
            [
                "warning: invalidQuery at query: Field x is deprecated (errors)",
                "warning: partial results (errors)",
            ]
        );
        assert!(BigQueryRows.caveats(&json!({"errors": []})).is_empty());
    }

    #[test]
    fn bigquery_cells_are_decoded() {
        let page = json!({
            "schema": {"fields": [
                {"name": "name", "type": "STRING"},
                {"name": "at", "type": "TIMESTAMP"},
                {"name": "tags", "type": "STRING", "mode": "REPEATED"},
                {"name": "owner", "type": "RECORD", "fields": [{"name": "email", "type": "STRING"}]}
            ]},
            "rows": [{"f": [{"v": "a"}, {"v": "1.7040672E9"}, {"v": [{"v": "x"}, {"v": "y"}]},
                            {"v": {"f": [{"v": "p@x"}]}}]}]
        });
        assert_eq!(
            BigQueryRows.decode(page),
            [
                json!({"name": "a", "at": "2024-01-01T00:00:00Z", "tags": ["x", "y"], "owner": {"email": "p@x"}})
            ]
        );
    }

    /// The first page names the job; later requests are its getQueryResults, with the page size
    /// and location carried over.
    #[test]
    fn a_running_job_continues_with_get_query_results() {
        let first = RequestSpec {
            http_method: http::Method::POST,
            url: "https://h/bigquery/v2/projects/p/queries".into(),
            query: vec![],
            body: Some(json!({"query": "SELECT 1", "maxResults": 2})),
        };
        let page =
            json!({"jobComplete": false, "jobReference": {"jobId": "j/1", "location": "EU"}});
        let next = JobResults.next(&page, &first, true).unwrap().unwrap();
        assert_eq!(next.token, None);
        assert_eq!(next.request.http_method, http::Method::GET);
        assert_eq!(
            next.request.url,
            "https://h/bigquery/v2/projects/p/queries/j%2F1"
        );
        assert_eq!(
            next.request.query,
            [
                ("location".to_owned(), "EU".to_owned()),
                ("maxResults".to_owned(), "2".to_owned())
            ]
        );
        let page = json!({"jobComplete": true, "pageToken": "t2"});
        let later = JobResults
            .next(&page, &next.request, false)
            .unwrap()
            .unwrap();
        assert_eq!(later.request.url, next.request.url);
        assert_eq!(later.token.as_deref(), Some("t2"));
        let last = json!({"jobComplete": true});
        assert!(JobResults
            .next(&last, &later.request, false)
            .unwrap()
            .is_none());
    }
}
