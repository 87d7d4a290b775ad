//! Report decoders: responses whose rows are not a list of named objects become records with
//! real field names — GA4 (`dimensionHeaders`/`metricHeaders`), Search Console (`keys` named
//! after the request's `dimensions`), YouTube Analytics (`columnHeaders`), BigQuery
//! (`schema.fields`, `f`/`v` cells), Sheets value ranges (the first row names the columns).
//! Every other method's records are the array at its records path.

use serde_json::{Map, Value};

use super::path::FieldPath;
use super::take_records;

/// How the records of a page are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoder {
    /// The array at the records path (or the whole response as one record).
    Records(Option<FieldPath>),
    /// `analyticsdata.properties.runReport`.
    Ga4,
    /// `webmasters.searchanalytics.query`, with the request's dimensions.
    SearchConsole { dimensions: Vec<String> },
    /// `youtubeAnalytics.reports.query`.
    YouTubeAnalytics,
    /// `bigquery.jobs.query` / `jobs.getQueryResults`.
    BigQuery,
    /// `sheets.spreadsheets.values.get`; `header`: the first row names the columns.
    Sheets { header: bool },
}

/// Search Console's metrics, after the dimensions.
const SEARCH_CONSOLE_METRICS: &[&str] = &["clicks", "impressions", "ctr", "position"];

impl Decoder {
    /// The decoder of a known report method, if `method_id` is one.
    pub fn for_method(method_id: &str, body: Option<&Value>, header: bool) -> Option<Decoder> {
        Some(match method_id {
            "analyticsdata.properties.runReport" => Decoder::Ga4,
            "webmasters.searchanalytics.query" => Decoder::SearchConsole {
                dimensions: body
                    .and_then(|b| b.get("dimensions"))
                    .and_then(Value::as_array)
                    .map(|d| {
                        d.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            "youtubeAnalytics.reports.query" => Decoder::YouTubeAnalytics,
            "bigquery.jobs.query" | "bigquery.jobs.getQueryResults" => Decoder::BigQuery,
            "sheets.spreadsheets.values.get" => Decoder::Sheets { header },
            _ => return None,
        })
    }

    /// How the records are made, for `describe`.
    pub fn describe(&self) -> &'static str {
        match self {
            Decoder::Records(_) => "the records array",
            Decoder::Ga4 => "GA4 rows: one column per requested dimension, then per metric",
            Decoder::SearchConsole { .. } => {
                "Search Console rows: `keys` named after the request's `dimensions`, then clicks, impressions, ctr, position"
            }
            Decoder::YouTubeAnalytics => "YouTube Analytics rows, named by `columnHeaders`",
            Decoder::BigQuery => "BigQuery rows, named by the result's schema (f/v cells decoded)",
            Decoder::Sheets { .. } => "Sheets rows: the range's first row names the columns (`header = false`: numbered)",
        }
    }

    /// The column names known from the request, before any response (GA4's requested
    /// dimensions and metrics, Search Console's, YouTube's); `None` when only a response tells.
    pub fn columns_from_request(
        &self,
        body: Option<&Value>,
        params: &[(String, String)],
    ) -> Option<Vec<String>> {
        match self {
            Decoder::Ga4 => {
                let names = |key: &str| -> Option<Vec<String>> {
                    body?.get(key)?.as_array().map(|items| {
                        items
                            .iter()
                            .filter_map(|i| {
                                i.get("name").and_then(Value::as_str).map(str::to_owned)
                            })
                            .collect()
                    })
                };
                let mut columns = names("dimensions").unwrap_or_default();
                columns.extend(names("metrics")?);
                Some(columns)
            }
            Decoder::SearchConsole { dimensions } => Some(
                dimensions
                    .iter()
                    .cloned()
                    .chain(SEARCH_CONSOLE_METRICS.iter().map(|m| m.to_string()))
                    .collect(),
            ),
            Decoder::YouTubeAnalytics => {
                let list = |key: &str| -> Vec<String> {
                    params
                        .iter()
                        .filter(|(n, _)| n == key)
                        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_owned()))
                        .filter(|s| !s.is_empty())
                        .collect()
                };
                let mut columns = list("dimensions");
                let metrics = list("metrics");
                if metrics.is_empty() {
                    return None;
                }
                columns.extend(metrics);
                Some(columns)
            }
            Decoder::Records(_) | Decoder::BigQuery | Decoder::Sheets { .. } => None,
        }
    }

    /// How many records `decode` will make of `page`.
    pub fn count(&self, page: &Value) -> usize {
        let len = |key: &str| page.get(key).and_then(Value::as_array).map_or(0, Vec::len);
        match self {
            Decoder::Records(path) => super::count_records(page, path.as_ref()),
            Decoder::Ga4
            | Decoder::SearchConsole { .. }
            | Decoder::YouTubeAnalytics
            | Decoder::BigQuery => len("rows"),
            Decoder::Sheets { header } => len("values").saturating_sub(usize::from(*header)),
        }
    }

    /// Refuses a page whose records are not JSON objects (see [`super::check_records`]).
    pub fn check(&self, page: &Value) -> Result<(), String> {
        match self {
            Decoder::Records(path) => super::check_records(page, path.as_ref()),
            _ => Ok(()),
        }
    }

    /// The column names a page declares (GA4, YouTube, BigQuery, Sheets), for reports whose
    /// request does not name them.
    pub fn columns_from_response(&self, page: &Value) -> Option<Vec<String>> {
        let names = |key: &str| -> Vec<String> {
            page.get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.get("name").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        match self {
            Decoder::Ga4 => {
                let mut columns = names("dimensionHeaders");
                columns.extend(names("metricHeaders"));
                Some(columns)
            }
            Decoder::YouTubeAnalytics => Some(names("columnHeaders")),
            Decoder::BigQuery => page
                .pointer("/schema/fields")
                .map(|_| bigquery_fields(page).into_iter().map(|f| f.name).collect()),
            Decoder::Sheets { header } => Some(sheet_columns(page, *header)),
            Decoder::Records(_) | Decoder::SearchConsole { .. } => None,
        }
    }

    /// The records of `page`, as objects keyed by column name (plain records as they are).
    pub fn decode(&self, page: Value) -> Vec<Value> {
        match self {
            Decoder::Records(path) => take_records(page, path.as_ref()),
            Decoder::Ga4 => {
                let names = self.columns_from_response(&page).unwrap_or_default();
                rows(&page)
                    .iter()
                    .map(|row| {
                        let values = ["dimensionValues", "metricValues"]
                            .iter()
                            .flat_map(|key| {
                                row.get(*key)
                                    .and_then(Value::as_array)
                                    .cloned()
                                    .unwrap_or_default()
                            })
                            .map(|cell| cell.get("value").cloned().unwrap_or(Value::Null));
                        named(&names, values)
                    })
                    .collect()
            }
            Decoder::SearchConsole { dimensions } => rows(&page)
                .iter()
                .map(|row| {
                    let keys = row
                        .get("keys")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let mut record: Map<String, Value> =
                        dimensions.iter().cloned().zip(keys).collect();
                    for metric in SEARCH_CONSOLE_METRICS {
                        record.insert(
                            metric.to_string(),
                            row.get(*metric).cloned().unwrap_or(Value::Null),
                        );
                    }
                    Value::Object(record)
                })
                .collect(),
            Decoder::YouTubeAnalytics => {
                let names = self.columns_from_response(&page).unwrap_or_default();
                rows(&page)
                    .iter()
                    .map(|row| named(&names, row.as_array().cloned().unwrap_or_default()))
                    .collect()
            }
            Decoder::BigQuery => {
                let fields = bigquery_fields(&page);
                rows(&page)
                    .iter()
                    .map(|row| bigquery_record(&fields, row))
                    .collect()
            }
            Decoder::Sheets { header } => {
                let names = sheet_columns(&page, *header);
                let values = page
                    .get("values")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                values
                    .into_iter()
                    .skip(usize::from(*header))
                    .map(|row| named(&names, row.as_array().cloned().unwrap_or_default()))
                    .collect()
            }
        }
    }
}

fn rows(page: &Value) -> &[Value] {
    page.get("rows")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// An object of `names` and `values` by position (missing values are null).
fn named(names: &[String], values: impl IntoIterator<Item = Value>) -> Value {
    let mut values = values.into_iter();
    Value::Object(
        names
            .iter()
            .map(|name| (name.clone(), values.next().unwrap_or(Value::Null)))
            .collect(),
    )
}

/// The columns of a value range: the first row's cells (blank ones `column_N`, repeats
/// suffixed `_2`, ...), widened to the longest row; numbered `1..N` without a header row.
fn sheet_columns(page: &Value, header: bool) -> Vec<String> {
    let values = page
        .get("values")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let width = values
        .iter()
        .map(|r| r.as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    let first: Vec<String> = match (header, values.first()) {
        (true, Some(row)) => row
            .as_array()
            .map(|cells| cells.iter().map(cell_text).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut names: Vec<String> = Vec::with_capacity(width);
    for i in 0..width {
        let base = match first.get(i).map(|s| s.trim()) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ if header => format!("column_{}", i + 1),
            _ => (i + 1).to_string(),
        };
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        names.push(name);
    }
    names
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
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
    fn ga4_rows_are_named_by_their_headers() {
        let page = json!({
            "dimensionHeaders": [{"name": "date"}, {"name": "country"}],
            "metricHeaders": [{"name": "activeUsers", "type": "TYPE_INTEGER"}],
            "rows": [{"dimensionValues": [{"value": "20240101"}, {"value": "France"}],
                      "metricValues": [{"value": "12"}]}],
            "rowCount": 1
        });
        assert_eq!(
            Decoder::Ga4.decode(page),
            [json!({"date": "20240101", "country": "France", "activeUsers": "12"})]
        );
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
            Decoder::BigQuery.decode(page),
            [
                json!({"name": "a", "at": "2024-01-01T00:00:00Z", "tags": ["x", "y"], "owner": {"email": "p@x"}})
            ]
        );
    }

    #[test]
    fn sheet_rows_are_padded_and_headers_made_unique() {
        let page = json!({"values": [["Name", "", "Name"], ["a", "1"], ["b", "2", "3", "extra"]]});
        let decoder = Decoder::Sheets { header: true };
        assert_eq!(
            decoder.columns_from_response(&page),
            Some(vec![
                "Name".into(),
                "column_2".into(),
                "Name_2".into(),
                "column_4".into()
            ])
        );
        assert_eq!(decoder.count(&page), 2);
        let records = decoder.decode(page);
        assert_eq!(
            records[0],
            json!({"Name": "a", "column_2": "1", "Name_2": null, "column_4": null})
        );
    }
}
