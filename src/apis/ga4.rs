//! Google Analytics Data API (GA4), `analyticsdata.properties.runReport`: paged by `offset` and
//! `limit` in the body (int64 strings) up to the response's `rowCount`; each row's
//! `dimensionValues` and `metricValues` are positional, named by the `dimensionHeaders` and
//! `metricHeaders` of the response (or the request's `dimensions` and `metrics`).

use std::sync::Arc;

use serde_json::Value;

use super::Api;
use crate::api::paginate::{is_int64_string, path};
use crate::api::{OffsetEnd, OffsetPaging, Pagination, RequestField};
use crate::discovery::{Document, Method};
use crate::records::decode::{header_names, named, rows, ReportRows};

const RUN_REPORT: &str = "analyticsdata.properties.runReport";

pub(super) struct Ga4;

impl Api for Ga4 {
    fn handles(&self, method_id: &str) -> bool {
        method_id == RUN_REPORT
    }

    /// Without paging a report stops at GA4's default of 10,000 rows.
    fn pagination(&self, doc: &Document, method: &Method) -> Option<Pagination> {
        let request_schema = method
            .request
            .as_ref()
            .and_then(|r| doc.schema(&r.reference));
        Some(Pagination::Offset(OffsetPaging {
            offset: RequestField::Body("offset".to_owned()),
            limit: RequestField::Body("limit".to_owned()),
            first: 0,
            page_size: 100_000,
            as_string: is_int64_string(request_schema, "offset"),
            end: OffsetEnd::Total(path("rowCount")),
        }))
    }

    fn report(&self, _: &str, _: Option<&Value>, _: bool) -> Option<Arc<dyn ReportRows>> {
        Some(Arc::new(Ga4Rows))
    }
}

#[derive(Debug)]
struct Ga4Rows;

impl ReportRows for Ga4Rows {
    fn describe(&self) -> &'static str {
        "GA4 rows: one column per requested dimension, then per metric"
    }

    fn columns_from_request(
        &self,
        body: Option<&Value>,
        _params: &[(String, String)],
    ) -> Option<Vec<String>> {
        let names = |key: &str| -> Option<Vec<String>> {
            body?.get(key)?.as_array().map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
        };
        let mut columns = names("dimensions").unwrap_or_default();
        columns.extend(names("metrics")?);
        Some(columns)
    }

    fn columns_from_response(&self, page: &Value) -> Option<Vec<String>> {
        let mut columns = header_names(page, "dimensionHeaders");
        columns.extend(header_names(page, "metricHeaders"));
        Some(columns)
    }

    fn decode(&self, page: Value) -> Vec<Value> {
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
            Ga4Rows.decode(page),
            [json!({"date": "20240101", "country": "France", "activeUsers": "12"})]
        );
    }
}
