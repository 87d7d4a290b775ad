//! The report APIs of the fake Google, with deterministic data: GA4 `runReport`, Search Console
//! `searchanalytics.query`, YouTube Analytics `reports.query`, BigQuery `jobs.query` and
//! `getQueryResults`, Sheets `values.get`, Custom Search `cse.list` — each paging its own way.

use std::collections::HashMap;

use hyper::StatusCode;
use serde_json::{json, Value};

/// How many rows each report has.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    pub ga4_rows: usize,
    /// A GA4 page from this offset on is answered with GA4's daily-token exhaustion (429
    /// `RESOURCE_EXHAUSTED`: a quota wall).
    pub ga4_quota_from: Option<usize>,
    pub gsc_rows: usize,
    pub youtube_rows: usize,
    pub bigquery_rows: usize,
    /// `jobs.query` answers "not complete yet" first, and results come from polling.
    pub bigquery_pending: bool,
    pub search_results: usize,
    /// GA4's `metadata` on every page (sampling, thresholding, "(other)", ...).
    pub ga4_metadata: Option<Value>,
    /// Search Console's `metadata` (as with `dataState = "all"`: `firstIncompleteDate`).
    pub gsc_metadata: Option<Value>,
    /// BigQuery's `errors` beside the rows (warnings of a job that completed).
    pub bigquery_errors: Option<Value>,
    /// YouTube Analytics' `errors` beside the rows.
    pub youtube_errors: Option<Value>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            ga4_rows: 7,
            ga4_quota_from: None,
            gsc_rows: 5,
            youtube_rows: 5,
            bigquery_rows: 5,
            bigquery_pending: false,
            search_results: 25,
            ga4_metadata: None,
            gsc_metadata: None,
            bigquery_errors: None,
            youtube_errors: None,
        }
    }
}

/// Answers a report request, or `None` when `parts` is no report endpoint.
pub fn route(
    method: &str,
    parts: &[&str],
    query: &HashMap<String, String>,
    body: &str,
    config: &ReportConfig,
) -> Option<(StatusCode, Value)> {
    let body: Value = serde_json::from_str(body).unwrap_or(json!({}));
    Some(match (method, parts) {
        ("POST", ["v1beta", "properties", call]) if call.ends_with(":runReport") => {
            ga4(&body, config)
        }
        ("POST", ["webmasters", "v3", "sites", _site, "searchAnalytics", "query"]) => {
            search_console(&body, config)
        }
        ("GET", ["v2", "reports"]) => youtube(query, config),
        ("POST", ["bigquery", "v2", "projects", _project, "queries"]) => {
            bigquery_query(&body, config)
        }
        ("GET", ["bigquery", "v2", "projects", _project, "queries", job]) => {
            bigquery_results(job, query, config)
        }
        ("GET", ["v4", "spreadsheets", _id, "values", _range]) => sheets(query),
        ("GET", ["customsearch", "v1"]) => custom_search(query, config),
        _ => return None,
    })
}

fn number(value: Option<&Value>) -> Option<usize> {
    let value = value?;
    value
        .as_u64()
        .map(|n| n as usize)
        .or_else(|| value.as_str()?.parse().ok())
}

fn bad_request(message: &str) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}),
    )
}

/// GA4 row `i`: the date, a country, active users and sessions.
pub fn ga4_row(i: usize) -> (String, &'static str, usize, usize) {
    let countries = ["France", "Côte d'Ivoire", "United States", "Japan"];
    (
        format!("202401{:02}", i + 1),
        countries[i % 4],
        10 + i * 3,
        20 + i,
    )
}

fn ga4(body: &Value, config: &ReportConfig) -> (StatusCode, Value) {
    // int64 fields of the body travel as strings.
    for key in ["offset", "limit"] {
        if body.get(key).is_some_and(|v| !v.is_string()) {
            return bad_request(&format!("{key} must be an int64 string"));
        }
    }
    let offset = number(body.get("offset")).unwrap_or(0);
    let limit = number(body.get("limit")).unwrap_or(10_000);
    if config.ga4_quota_from.is_some_and(|from| offset >= from) {
        // As GA4 says it: 429 and a status, no legacy `errors[].reason`.
        return (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                             "message": "Exhausted property tokens per day. Property tokens reset at midnight Pacific Time."}}),
        );
    }
    let names = |key: &str| -> Vec<String> {
        body.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (dimensions, metrics) = (names("dimensions"), names("metrics"));
    let end = (offset + limit).min(config.ga4_rows);
    let rows: Vec<Value> = (offset.min(end)..end)
        .map(|i| {
            let (date, country, users, sessions) = ga4_row(i);
            let dimension = |name: &String| match name.as_str() {
                "date" => json!({"value": date}),
                "country" => json!({"value": country}),
                other => json!({"value": format!("{other}-{i}")}),
            };
            let metric = |name: &String| match name.as_str() {
                "activeUsers" => json!({"value": users.to_string()}),
                "sessions" => json!({"value": sessions.to_string()}),
                _ => json!({"value": "0"}),
            };
            json!({"dimensionValues": dimensions.iter().map(dimension).collect::<Vec<_>>(),
                   "metricValues": metrics.iter().map(metric).collect::<Vec<_>>()})
        })
        .collect();
    let mut out = json!({
        "dimensionHeaders": dimensions.iter().map(|d| json!({"name": d})).collect::<Vec<_>>(),
        "metricHeaders": metrics.iter().map(|m| json!({"name": m, "type": "TYPE_INTEGER"})).collect::<Vec<_>>(),
        "rowCount": config.ga4_rows,
        "kind": "analyticsData#runReport"
    });
    if !rows.is_empty() {
        out["rows"] = json!(rows);
    }
    if let Some(metadata) = &config.ga4_metadata {
        out["metadata"] = metadata.clone();
    }
    (StatusCode::OK, out)
}

/// Search Console row `i`: its keys for `dimensions` and its metrics.
pub fn gsc_row(i: usize, dimension: &str) -> String {
    match dimension {
        "query" => format!("how to export, part {i}"),
        "page" => format!("https://example.com/p/{i}"),
        "date" => format!("2024-01-{:02}", i + 1),
        other => format!("{other}-{i}"),
    }
}

/// The countries of [`gsc_daily_row`]'s rows, one row per date and country.
pub const GSC_DAILY_COUNTRIES: [&str; 2] = ["fra", "usa"];

/// Search Console's row for `date` and `country` as a request ending on `as_of` sees it:
/// Google revises a day's clicks for three days, so its clicks are `10 × day + the days since
/// it, up to 3` (final from `date + 3` on), its impressions fixed.
pub fn gsc_daily_row(date: chrono::NaiveDate, country: &str, as_of: chrono::NaiveDate) -> Value {
    use chrono::Datelike;
    let settled = (as_of - date).num_days().clamp(0, 3);
    let base = 10 * i64::from(date.ordinal()) + i64::from(country == "usa");
    json!({"keys": [date.to_string(), country], "clicks": (base + settled) as f64,
           "impressions": (100 + base) as f64, "ctr": 0.1, "position": 2.0})
}

/// A report by `["date", "country"]` from `startDate` to `endDate`: one row per date and
/// country, as of `endDate` (what a daily run sees of the days it asks for again).
fn search_console_daily(body: &Value, start: usize, limit: usize) -> Option<(StatusCode, Value)> {
    let dimensions = body.get("dimensions")?.as_array()?;
    if dimensions != &[json!("date"), json!("country")] {
        return None;
    }
    let date = |key: &str| body.get(key)?.as_str()?.parse::<chrono::NaiveDate>().ok();
    let (from, to) = (date("startDate")?, date("endDate")?);
    let rows: Vec<Value> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .flat_map(|d| GSC_DAILY_COUNTRIES.map(|c| gsc_daily_row(d, c, to)))
        .skip(start)
        .take(limit)
        .collect();
    let mut out = json!({"responseAggregationType": "byProperty"});
    if !rows.is_empty() {
        out["rows"] = json!(rows);
    }
    Some((StatusCode::OK, out))
}

fn search_console(body: &Value, config: &ReportConfig) -> (StatusCode, Value) {
    let start = number(body.get("startRow")).unwrap_or(0);
    let limit = number(body.get("rowLimit")).unwrap_or(1000);
    if limit > 25_000 {
        return bad_request("rowLimit must be at most 25000");
    }
    if let Some(answer) = search_console_daily(body, start, limit) {
        return answer;
    }
    let dimensions: Vec<String> = body
        .get("dimensions")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let end = (start + limit).min(config.gsc_rows);
    let rows: Vec<Value> = (start.min(end)..end)
        .map(|i| {
            json!({"keys": dimensions.iter().map(|d| gsc_row(i, d)).collect::<Vec<_>>(),
                   "clicks": i as f64, "impressions": (10 * i + 10) as f64,
                   "ctr": i as f64 / (10 * i + 10) as f64, "position": 1.5 + i as f64})
        })
        .collect();
    let mut out = json!({"responseAggregationType": "byPage"});
    if !rows.is_empty() {
        out["rows"] = json!(rows);
    }
    if let Some(metadata) = &config.gsc_metadata {
        out["metadata"] = metadata.clone();
    }
    (StatusCode::OK, out)
}

fn youtube(query: &HashMap<String, String>, config: &ReportConfig) -> (StatusCode, Value) {
    let start: usize = query
        .get("startIndex")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let max: usize = query
        .get("maxResults")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    if start == 0 {
        return bad_request("startIndex is 1-based");
    }
    let split = |key: &str| -> Vec<String> {
        query
            .get(key)
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (dimensions, metrics) = (split("dimensions"), split("metrics"));
    let from = start - 1;
    let end = (from + max).min(config.youtube_rows);
    let rows: Vec<Value> = (from.min(end)..end)
        .map(|i| {
            let mut row: Vec<Value> = dimensions
                .iter()
                .map(|_| json!(format!("2024-02-{:02}", i + 1)))
                .collect();
            row.extend(
                metrics
                    .iter()
                    .enumerate()
                    .map(|(m, _)| json!((i + 1) * 100 + m)),
            );
            Value::Array(row)
        })
        .collect();
    let headers: Vec<Value> = dimensions
        .iter()
        .map(|d| json!({"name": d, "columnType": "DIMENSION", "dataType": "STRING"}))
        .chain(
            metrics
                .iter()
                .map(|m| json!({"name": m, "columnType": "METRIC", "dataType": "INTEGER"})),
        )
        .collect();
    let mut out =
        json!({"kind": "youtubeAnalytics#resultTable", "columnHeaders": headers, "rows": rows});
    if let Some(errors) = &config.youtube_errors {
        out["errors"] = errors.clone();
    }
    (StatusCode::OK, out)
}

fn bigquery_schema() -> Value {
    json!({"fields": [
        {"name": "name", "type": "STRING", "mode": "NULLABLE"},
        {"name": "visits", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "at", "type": "TIMESTAMP", "mode": "NULLABLE"},
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {"name": "owner", "type": "RECORD", "mode": "NULLABLE",
         "fields": [{"name": "email", "type": "STRING"}]}
    ]})
}

/// The TIMESTAMP of BigQuery row `i`, in seconds since 1970.
pub fn bigquery_seconds(i: usize) -> i64 {
    1_700_000_000 + i as i64 * 86_400
}

/// BigQuery row `i`.
fn bigquery_row(i: usize) -> Value {
    let visits = if i == 2 {
        Value::Null
    } else {
        json!((i * 7).to_string())
    };
    json!({"f": [
        {"v": format!("row, {i}")},
        {"v": visits},
        {"v": format!("{:E}", bigquery_seconds(i) as f64)},
        {"v": (0..i % 3).map(|t| json!({"v": format!("t{t}")})).collect::<Vec<_>>()},
        {"v": {"f": [{"v": format!("u{i}@example.com")}]}}
    ]})
}

fn bigquery_page(from: usize, max: usize, config: &ReportConfig) -> Value {
    let end = (from + max).min(config.bigquery_rows);
    let mut out = json!({
        "kind": "bigquery#getQueryResultsResponse",
        "jobComplete": true,
        "jobReference": {"projectId": "proj", "jobId": "job_1", "location": "EU"},
        "schema": bigquery_schema(),
        "totalRows": config.bigquery_rows.to_string(),
        "rows": (from.min(end)..end).map(bigquery_row).collect::<Vec<_>>()
    });
    if end < config.bigquery_rows {
        out["pageToken"] = json!(format!("bq-{end}"));
    }
    if let Some(errors) = &config.bigquery_errors {
        out["errors"] = errors.clone();
    }
    out
}

fn bigquery_query(body: &Value, config: &ReportConfig) -> (StatusCode, Value) {
    if body.get("query").and_then(Value::as_str).is_none() {
        return bad_request("query is required");
    }
    if config.bigquery_pending {
        return (
            StatusCode::OK,
            json!({"kind": "bigquery#queryResponse", "jobComplete": false,
                   "jobReference": {"projectId": "proj", "jobId": "job_1", "location": "EU"}}),
        );
    }
    let max = number(body.get("maxResults")).unwrap_or(100);
    (StatusCode::OK, bigquery_page(0, max, config))
}

fn bigquery_results(
    job: &str,
    query: &HashMap<String, String>,
    config: &ReportConfig,
) -> (StatusCode, Value) {
    if job != "job_1" || query.get("location").map(String::as_str) != Some("EU") {
        return (
            StatusCode::NOT_FOUND,
            json!({"error": {"code": 404, "message": "Not found: Job proj:job_1", "status": "NOT_FOUND"}}),
        );
    }
    let from = query
        .get("pageToken")
        .and_then(|t| t.strip_prefix("bq-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let max = query
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(100);
    (StatusCode::OK, bigquery_page(from, max, config))
}

fn sheets(query: &HashMap<String, String>) -> (StatusCode, Value) {
    let formatted = query.get("valueRenderOption").map(String::as_str) == Some("FORMATTED_VALUE");
    let date = |serial: u32, text: &str| {
        if formatted {
            json!(text)
        } else {
            json!(serial)
        }
    };
    (
        StatusCode::OK,
        json!({
            "range": "Sheet1!A1:D4",
            "majorDimension": "ROWS",
            "values": [
                ["Name", "Joined", "Score"],
                ["Ann", date(45293, "2024-01-02"), "3"],
                ["Bob, Jr.", date(45324, "2024-02-02")],
                ["=Cy", date(45353, "2024-03-02"), "5", "extra"]
            ]
        }),
    )
}

fn custom_search(query: &HashMap<String, String>, config: &ReportConfig) -> (StatusCode, Value) {
    let start: usize = query.get("start").and_then(|s| s.parse().ok()).unwrap_or(1);
    let num: usize = query.get("num").and_then(|s| s.parse().ok()).unwrap_or(10);
    if num > 10 {
        return bad_request("num must be between 1 and 10");
    }
    let total = config.search_results.min(100);
    let from = start - 1;
    let end = (from + num).min(total);
    let items: Vec<Value> = (from.min(end)..end)
        .map(|i| {
            json!({"kind": "customsearch#result", "title": format!("Result {}", i + 1),
                        "link": format!("https://example.com/r/{}", i + 1)})
        })
        .collect();
    let mut queries = json!({"request": [{"startIndex": start, "count": items.len()}]});
    if end < total {
        queries["nextPage"] = json!([{"startIndex": end + 1, "count": num}]);
    }
    (
        StatusCode::OK,
        json!({"kind": "customsearch#search", "queries": queries, "items": items,
               "searchInformation": {"totalResults": total.to_string()}}),
    )
}
