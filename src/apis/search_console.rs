//! Search Console, `webmasters.searchanalytics.query` (document searchconsole:v1): paged by
//! `startRow` and `rowLimit` (at most 25,000) in the body until a short page; each row's `keys`
//! are positional against the request's `dimensions`, followed by four fixed metrics.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Api;
use crate::api::{OffsetEnd, OffsetPaging, Pagination, RequestField};
use crate::discovery::{Document, Method};
use crate::records::decode::{rows, ReportRows};
use crate::records::schema::ColumnType;
use crate::records::{Caveat, CaveatKind};

const QUERY: &str = "webmasters.searchanalytics.query";

/// The metrics of every row, after the dimensions.
const METRICS: &[&str] = &["clicks", "impressions", "ctr", "position"];

pub(super) struct SearchConsole;

impl Api for SearchConsole {
    fn handles(&self, method_id: &str) -> bool {
        method_id == QUERY
    }

    fn pagination(&self, _doc: &Document, _method: &Method) -> Option<Pagination> {
        Some(Pagination::Offset(OffsetPaging {
            offset: RequestField::Body("startRow".to_owned()),
            limit: RequestField::Body("rowLimit".to_owned()),
            first: 0,
            page_size: 25_000,
            as_string: false,
            end: OffsetEnd::ShortPage,
        }))
    }

    fn report(&self, _: &str, body: Option<&Value>, _: bool) -> Option<Arc<dyn ReportRows>> {
        Some(Arc::new(SearchConsoleRows {
            dimensions: body_strings(body, "dimensions").unwrap_or_default(),
        }))
    }
}

/// Rows named after the request's dimensions.
#[derive(Debug)]
struct SearchConsoleRows {
    dimensions: Vec<String>,
}

impl ReportRows for SearchConsoleRows {
    fn describe(&self) -> &'static str {
        "Search Console rows: `keys` named after the request's `dimensions`, then clicks, impressions, ctr, position"
    }

    fn tells_caveats(&self) -> bool {
        true
    }

    /// The keys are strings; clicks, impressions, ctr and position numbers.
    fn column_types(&self, _page: &Value) -> Option<Vec<ColumnType>> {
        let keys = std::iter::repeat_n(ColumnType::Text, self.dimensions.len());
        Some(
            keys.chain(METRICS.iter().map(|_| ColumnType::Number))
                .collect(),
        )
    }

    /// `metadata` comes with `dataState = "all"` (or `"hourly_all"`): the rows from its first
    /// incomplete date (or hour) on may still change.
    fn caveats(&self, page: &Value) -> Vec<Caveat> {
        let meta = |key: &str| page.get("metadata")?.get(key)?.as_str();
        let mut caveats = Vec::new();
        if let Some(date) = meta("firstIncompleteDate") {
            caveats.push(Caveat::new(
                CaveatKind::Incomplete,
                format!("the rows from {date} on are not final and may still change (firstIncompleteDate)"),
            ));
        }
        if let Some(hour) = meta("firstIncompleteHour") {
            caveats.push(Caveat::new(
                CaveatKind::Incomplete,
                format!("the rows from {hour} on are not final and may still change (firstIncompleteHour)"),
            ));
        }
        caveats
    }

    fn columns_from_request(
        &self,
        _body: Option<&Value>,
        _params: &[(String, String)],
    ) -> Option<Vec<String>> {
        Some(
            self.dimensions
                .iter()
                .cloned()
                .chain(METRICS.iter().map(|m| m.to_string()))
                .collect(),
        )
    }

    fn decode(&self, page: Value) -> Vec<Value> {
        rows(&page)
            .iter()
            .map(|row| {
                let keys = row
                    .get("keys")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut record: Map<String, Value> =
                    self.dimensions.iter().cloned().zip(keys).collect();
                for metric in METRICS {
                    record.insert(
                        metric.to_string(),
                        row.get(*metric).cloned().unwrap_or(Value::Null),
                    );
                }
                Value::Object(record)
            })
            .collect()
    }
}

/// The values of a string array in a request body (`dimensions = ["query", "page"]`).
fn body_strings(body: Option<&Value>, key: &str) -> Option<Vec<String>> {
    body?.get(key)?.as_array().map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}
