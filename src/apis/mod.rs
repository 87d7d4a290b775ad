//! One module per Google API that needs more than its Discovery document tells: a report
//! decoder, its own paging, parameters sent by default. [`for_method`] finds the module of a
//! method by its id; everything else in gscrape is generic and names no API.

mod bigquery;
mod custom_search;
mod drive;
mod ga4;
mod search_console;
mod sheets;
mod youtube_analytics;

use std::sync::Arc;

use serde_json::Value;

use crate::api::{Pagination, RequestSpec};
use crate::discovery::{Document, Method};
use crate::records::decode::ReportRows;
use crate::records::{Caveat, CaveatKind};

/// What an API changes in a generic export. Each hook defaults to "nothing": the generic
/// behaviour.
pub trait Api: Sync {
    /// True for the method ids this module knows.
    fn handles(&self, method_id: &str) -> bool;

    /// The paging of `method` when Discovery cannot tell it.
    fn pagination(&self, _doc: &Document, _method: &Method) -> Option<Pagination> {
        None
    }

    /// The rows decoder of a report method: `body` is the query's request body, `header` its
    /// CSV `header` setting.
    fn report(
        &self,
        _method_id: &str,
        _body: Option<&Value>,
        _header: bool,
    ) -> Option<Arc<dyn ReportRows>> {
        None
    }

    /// True when the query's `header` key tells how to read `method_id`'s responses (so it
    /// means something whatever the output's format).
    fn reads_header(&self, _method_id: &str) -> bool {
        false
    }

    /// Parameters sent unless the query sets them, where the API's own default is a trap.
    fn default_params(&self, _method: &Method) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }

    /// Body fields sent unless the query sets them (GA4: `returnPropertyQuota`, so that the
    /// quota governor can pace by the property's tokens).
    fn default_body(&self, _method: &Method) -> Vec<(&'static str, Value)> {
        Vec::new()
    }

    /// A resource of `request` with a quota of its own (GA4: the property's hourly tokens),
    /// a bucket of the quota governor beside the project's and the user's.
    fn quota_resource(&self, _method_id: &str, _request: &RequestSpec) -> Option<Arc<str>> {
        None
    }

    /// Reads what a response says of the quota left (GA4's `propertyQuota`).
    fn quota_hints(&self, _method_id: &str) -> Option<crate::quota::ReadHints> {
        None
    }
}

/// Every API with a module of its own.
static APIS: &[&dyn Api] = &[
    &bigquery::BigQuery,
    &custom_search::CustomSearch,
    &drive::Drive,
    &ga4::Ga4,
    &search_console::SearchConsole,
    &sheets::Sheets,
    &youtube_analytics::YouTubeAnalytics,
];

/// Any other API: all generic.
struct Generic;

impl Api for Generic {
    fn handles(&self, _method_id: &str) -> bool {
        true
    }
}

/// The module of the API `method_id` belongs to (the generic one when none has a module).
pub fn for_method(method_id: &str) -> &'static dyn Api {
    APIS.iter()
        .copied()
        .find(|api| api.handles(method_id))
        .unwrap_or(&Generic)
}

/// One [`CaveatKind::Warning`] per item of an `errors` array (BigQuery's `ErrorProto`s; YouTube
/// Analytics' under `error`), its `reason` (or `code`) and its words under `text_key`.
fn error_caveats(errors: Option<&Value>, text_key: &str) -> Vec<Caveat> {
    let items = errors.and_then(Value::as_array).into_iter().flatten();
    items
        .map(|error| {
            let text = |key: &str| {
                error
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
            };
            let reason = text("reason").or(text("code"));
            let said = text(text_key).or(text("message")).unwrap_or("(no message)");
            let at = text("location")
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            let detail = match reason {
                Some(reason) => format!("{reason}{at}: {said} (errors)"),
                None => format!("{said}{at} (errors)"),
            };
            Caveat::new(CaveatKind::Warning, detail)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(method_id: &str) -> Option<&'static str> {
        for_method(method_id)
            .report(method_id, None, true)
            .map(|r| r.describe())
    }

    /// Each API's module is found by the ids of its methods, and by no other.
    #[test]
    fn the_registry_finds_each_api_by_method_id() {
        let starts = |id: &str, prefix: &str| report(id).is_some_and(|d| d.starts_with(prefix));
        assert!(starts("analyticsdata.properties.runReport", "GA4"));
        assert!(starts("webmasters.searchanalytics.query", "Search Console"));
        assert!(starts(
            "youtubeAnalytics.reports.query",
            "YouTube Analytics"
        ));
        assert!(starts("bigquery.jobs.query", "BigQuery"));
        assert!(starts("bigquery.jobs.getQueryResults", "BigQuery"));
        assert!(starts("sheets.spreadsheets.values.get", "Sheets"));
        for generic in [
            "drive.files.list",
            "sheets.spreadsheets.values.batchGet",
            "search.cse.list",
            "gmail.users.messages.list",
            "analyticsdata.properties.runPivotReport",
        ] {
            assert_eq!(report(generic), None, "{generic}");
        }
        let doc: Document = serde_json::from_value(
            serde_json::json!({"name": "x", "version": "v1", "rootUrl": "https://x/"}),
        )
        .unwrap();
        let paged = |id: &str| {
            let method: Method = serde_json::from_value(
                serde_json::json!({"id": id, "path": "p", "httpMethod": "GET"}),
            )
            .unwrap();
            for_method(id).pagination(&doc, &method).is_some()
        };
        assert!(paged("search.cse.list"));
        assert!(paged("bigquery.jobs.query"));
        assert!(!paged("bigquery.jobs.getQueryResults"));
        assert!(!paged("drive.files.list"));
    }
}
