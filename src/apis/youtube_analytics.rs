//! YouTube Analytics, `youtubeAnalytics.reports.query`: paged by `startIndex` (1-based) and
//! `maxResults` in the query until a short page, with no token; `rows` is a 2-D array named by
//! `columnHeaders` (or the request's `dimensions` and `metrics`).

use std::sync::Arc;

use serde_json::Value;

use super::Api;
use crate::api::{OffsetEnd, OffsetPaging, Pagination, RequestField};
use crate::discovery::{Document, Method};
use crate::records::decode::{header_names, named, rows, ReportRows};
use crate::records::schema::ColumnType;
use crate::records::Caveat;

const QUERY: &str = "youtubeAnalytics.reports.query";

pub(super) struct YouTubeAnalytics;

impl Api for YouTubeAnalytics {
    fn handles(&self, method_id: &str) -> bool {
        method_id == QUERY
    }

    fn pagination(&self, _doc: &Document, _method: &Method) -> Option<Pagination> {
        Some(Pagination::Offset(OffsetPaging {
            offset: RequestField::Query("startIndex".to_owned()),
            limit: RequestField::Query("maxResults".to_owned()),
            first: 1,
            page_size: 200,
            as_string: false,
            end: OffsetEnd::ShortPage,
        }))
    }

    fn report(&self, _: &str, _: Option<&Value>, _: bool) -> Option<Arc<dyn ReportRows>> {
        Some(Arc::new(YouTubeRows))
    }
}

#[derive(Debug)]
struct YouTubeRows;

impl ReportRows for YouTubeRows {
    fn describe(&self) -> &'static str {
        "YouTube Analytics rows, named by `columnHeaders`"
    }

    /// `dimensions=day,country` and `metrics=views` name the columns, in that order.
    fn columns_from_request(
        &self,
        _body: Option<&Value>,
        params: &[(String, String)],
    ) -> Option<Vec<String>> {
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

    fn columns_from_response(&self, page: &Value) -> Option<Vec<String>> {
        Some(header_names(page, "columnHeaders"))
    }

    fn tells_caveats(&self) -> bool {
        true
    }

    /// `columnHeaders[].dataType`: INTEGER, FLOAT, or STRING.
    fn column_types(&self, page: &Value) -> Option<Vec<ColumnType>> {
        let headers = page.get("columnHeaders")?.as_array()?;
        Some(
            headers
                .iter()
                .map(|h| match h.get("dataType").and_then(Value::as_str) {
                    Some("INTEGER") => ColumnType::Integer,
                    Some("FLOAT") => ColumnType::Number,
                    _ => ColumnType::Text,
                })
                .collect(),
        )
    }

    /// `errors` beside the rows ("when set, indicates that the operation failed"): each item
    /// of `errors.error` is a caveat. The response says nothing of how final its numbers are
    /// (YouTube's own data lags a few days, unannounced).
    fn caveats(&self, page: &Value) -> Vec<Caveat> {
        super::error_caveats(page.pointer("/errors/error"), "externalErrorMessage")
    }

    fn decode(&self, page: Value) -> Vec<Value> {
        let names = header_names(&page, "columnHeaders");
        rows(&page)
            .iter()
            .map(|row| named(&names, row.as_array().cloned().unwrap_or_default()))
            .collect()
    }
}
