//! Google Analytics Data API (GA4), `analyticsdata.properties.runReport`: paged by `offset` and
//! `limit` in the body (int64 strings) up to the response's `rowCount`; each row's
//! `dimensionValues` and `metricValues` are positional, named by the `dimensionHeaders` and
//! `metricHeaders` of the response (or the request's `dimensions` and `metrics`).

use std::sync::Arc;

use serde_json::Value;

use super::Api;
use crate::api::paginate::{is_int64_string, path};
use crate::api::{OffsetEnd, OffsetPaging, Pagination, RequestField, RequestSpec};
use crate::discovery::{Document, Method};
use crate::quota::Hint;
use crate::records::decode::{header_names, named, rows, ReportRows};
use crate::records::schema::ColumnType;
use crate::records::{Caveat, CaveatKind};

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

    /// Each answer then says how many of the property's tokens are left (`propertyQuota`).
    fn default_body(&self, _method: &Method) -> Vec<(&'static str, Value)> {
        vec![("returnPropertyQuota", Value::Bool(true))]
    }

    /// Tokens are counted per property: one property's spent hour holds no other.
    fn quota_resource(&self, _: &str, request: &RequestSpec) -> Option<Arc<str>> {
        let at = request.url.rfind("/properties/")?;
        let name = request.url[at + 1..].split(':').next()?;
        Some(Arc::from(name))
    }

    fn quota_hints(&self, _: &str) -> Option<crate::quota::ReadHints> {
        Some(property_quota)
    }
}

/// The hourly tokens a GA4 answer's `propertyQuota` says are left: the fewer of the
/// property's (`tokensPerHour`) and the project's share of it (`tokensPerProjectPerHour`).
/// Only the `propertyQuota` object is parsed (a page can be megabytes of rows); it is found by
/// its key, which no row's value can hold unescaped at an object's top level before it.
fn property_quota(body: &[u8]) -> Option<Hint> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        consumed: Option<u64>,
        remaining: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PropertyQuota {
        tokens_per_hour: Option<Status>,
        tokens_per_project_per_hour: Option<Status>,
        concurrent_requests: Option<Status>,
    }
    let key = b"\"propertyQuota\"";
    let at = memchr::memmem::rfind(body, key)? + key.len();
    let rest = body[at..].trim_ascii_start().strip_prefix(b":")?;
    let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<PropertyQuota>();
    let quota = stream.next()?.ok()?;
    let hourly = [&quota.tokens_per_hour, &quota.tokens_per_project_per_hour];
    let remaining = hourly.iter().filter_map(|s| s.as_ref()?.remaining).min()?;
    let consumed = hourly
        .iter()
        .filter_map(|s| s.as_ref()?.consumed)
        .max()
        .unwrap_or(0);
    let concurrent = quota
        .concurrent_requests
        .and_then(|s| Some(s.consumed? + s.remaining?));
    Some(Hint {
        consumed,
        remaining,
        concurrent,
    })
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

    fn tells_caveats(&self) -> bool {
        true
    }

    /// The time dimensions are what they say (`date` `20240630` a day, `dateHour`
    /// `2024063014` and `dateHourMinute` a time of day in the property's time zone), the other
    /// dimensions strings; a metric is what its header's `type` says (`TYPE_INTEGER`, or a
    /// number of seconds, currency, ...).
    fn column_types(&self, page: &Value) -> Option<Vec<ColumnType>> {
        let headers = |key: &str| page.get(key).and_then(Value::as_array);
        let dimensions = headers("dimensionHeaders").into_iter().flatten().map(|h| {
            match h.get("name").and_then(Value::as_str) {
                Some("date") => ColumnType::Date,
                Some("dateHour" | "dateHourMinute") => ColumnType::LocalDateTime,
                _ => ColumnType::Text,
            }
        });
        let metrics =
            headers("metricHeaders")?
                .iter()
                .map(|h| match h.get("type").and_then(Value::as_str) {
                    Some("TYPE_INTEGER") => ColumnType::Integer,
                    Some(t) if t.starts_with("TYPE_") && t != "TYPE_METRIC_TYPE_UNSPECIFIED" => {
                        ColumnType::Number
                    }
                    _ => ColumnType::Text,
                });
        Some(dimensions.chain(metrics).collect())
    }

    /// The response's `metadata`: sampling (per date range), thresholding, rows folded into
    /// "(other)", truncation, metrics withheld from this credential.
    fn caveats(&self, page: &Value) -> Vec<Caveat> {
        let Some(meta) = page.get("metadata") else {
            return Vec::new();
        };
        let mut caveats = Vec::new();
        let samples = meta.get("samplingMetadatas").and_then(Value::as_array);
        for (i, sample) in samples.into_iter().flatten().enumerate() {
            let count = |key: &str| -> Option<u64> {
                let value = sample.get(key)?;
                value.as_u64().or_else(|| value.as_str()?.parse().ok())
            };
            let range = match samples.map_or(0, Vec::len) {
                1 => String::new(),
                _ => format!("date range {}: ", i + 1),
            };
            let share = match (count("samplesReadCount"), count("samplingSpaceSize")) {
                (Some(read), Some(space)) if space > 0 => format!(
                    "{read} of {space} events read ({:.2} %)",
                    read as f64 * 100.0 / space as f64
                ),
                _ => "a sample of the events read".to_owned(),
            };
            caveats.push(Caveat::new(
                CaveatKind::Sampled,
                format!("{range}{share} (samplingMetadatas)"),
            ));
        }
        if meta.get("subjectToThresholding").and_then(Value::as_bool) == Some(true) {
            caveats.push(Caveat::new(
                CaveatKind::Thresholded,
                "rows with few users may be withheld (subjectToThresholding)",
            ));
        }
        if meta.get("dataLossFromOtherRow").and_then(Value::as_bool) == Some(true) {
            caveats.push(Caveat::new(
                CaveatKind::OtherRow,
                "some rows were folded into an \"(other)\" row (dataLossFromOtherRow)",
            ));
        }
        let truncations = meta.get("dataTruncationReasons").and_then(Value::as_array);
        for reason in truncations.into_iter().flatten() {
            let text = |key: &str| reason.get(key).and_then(Value::as_str);
            let said = text("dataTruncationMessage")
                .or(text("dataTruncationType"))
                .unwrap_or("the report was truncated");
            let before = text("dataTruncationDate")
                .map(|d| format!(", data before {d}"))
                .unwrap_or_default();
            caveats.push(Caveat::new(
                CaveatKind::Truncated,
                format!("{said}{before} (dataTruncationReasons)"),
            ));
        }
        let restrictions = meta
            .pointer("/schemaRestrictionResponse/activeMetricRestrictions")
            .and_then(Value::as_array);
        let restricted: Vec<String> = restrictions
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let name = r.get("metricName")?.as_str()?;
                let types: Vec<&str> = r
                    .get("restrictedMetricTypes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                Some(match types.is_empty() {
                    true => name.to_owned(),
                    false => format!("{name} ({})", types.join(", ")),
                })
            })
            .collect();
        if !restricted.is_empty() {
            caveats.push(Caveat::new(
                CaveatKind::Restricted,
                format!(
                    "withheld from this credential: {} (schemaRestrictionResponse)",
                    restricted.join(", ")
                ),
            ));
        }
        caveats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ga4_columns_are_typed_by_their_headers_and_time_dimensions() {
        let page = json!({
            "dimensionHeaders": [{"name": "date"}, {"name": "dateHour"}, {"name": "country"}],
            "metricHeaders": [{"name": "activeUsers", "type": "TYPE_INTEGER"},
                              {"name": "userEngagementDuration", "type": "TYPE_SECONDS"},
                              {"name": "totalRevenue", "type": "TYPE_CURRENCY"},
                              {"name": "bounceRate", "type": "TYPE_FLOAT"},
                              {"name": "odd", "type": "TYPE_METRIC_TYPE_UNSPECIFIED"}]});
        use ColumnType::*;
        assert_eq!(
            Ga4Rows.column_types(&page),
            Some(vec![
                Date,
                LocalDateTime,
                Text,
                Integer,
                Number,
                Number,
                Number,
                Text
            ])
        );
    }

    #[test]
    fn property_quota_is_read_from_the_end_of_a_page() {
        let page = br#"{"rows": [{"dimensionValues": [{"value": "say \"propertyQuota\": 1"}]}],
            "rowCount": 1,
            "propertyQuota": {"tokensPerDay": {"consumed": 9, "remaining": 199000},
              "tokensPerHour": {"consumed": 9, "remaining": 120},
              "tokensPerProjectPerHour": {"consumed": 9, "remaining": 4},
              "concurrentRequests": {"consumed": 0, "remaining": 10}}}"#;
        assert_eq!(
            property_quota(page),
            Some(Hint {
                consumed: 9,
                remaining: 4,
                concurrent: Some(10)
            })
        );
        assert_eq!(property_quota(br#"{"rows": []}"#), None);
        let spec = RequestSpec {
            http_method: http::Method::POST,
            url: "https://analyticsdata.googleapis.com/v1beta/properties/1234:runReport".into(),
            query: Vec::new(),
            body: None,
        };
        assert_eq!(
            Ga4.quota_resource(RUN_REPORT, &spec).as_deref(),
            Some("properties/1234")
        );
    }

    #[test]
    fn ga4_metadata_is_read_as_caveats_each_in_words() {
        let said = |page: &Value| -> Vec<String> {
            Ga4Rows
                .caveats(page)
                .iter()
                .map(|c| c.to_string())
                .collect()
        };
        let page = json!({"rows": [], "metadata": {
            "samplingMetadatas": [{"samplesReadCount": "250", "samplingSpaceSize": "1000"}],
            "subjectToThresholding": true,
            "dataLossFromOtherRow": true,
            "dataTruncationReasons": [{"dataTruncationType": "DATA_TRUNCATION_TYPE_PROPERTY",
                                        "dataTruncationDate": "2023-01-01"}],
            "schemaRestrictionResponse": {"activeMetricRestrictions": [
                {"metricName": "purchaseRevenue", "restrictedMetricTypes": ["REVENUE_DATA"]}]},
            "currencyCode": "EUR", "timeZone": "Europe/Paris"}});
        assert_eq!(
            said(&page),
            [
                "sampled: 250 of 1000 events read (25.00 %) (samplingMetadatas)",
                "thresholded: rows with few users may be withheld (subjectToThresholding)",
                "other_row: some rows were folded into an \"(other)\" row (dataLossFromOtherRow)",
                "truncated: DATA_TRUNCATION_TYPE_PROPERTY, data before 2023-01-01 (dataTruncationReasons)",
                "restricted: withheld from this credential: purchaseRevenue (REVENUE_DATA) (schemaRestrictionResponse)",
            ]
        );
        // Two date ranges, each its own sample; false flags and a bare metadata say nothing.
        let page = json!({"metadata": {"samplingMetadatas": [
            {"samplesReadCount": "1", "samplingSpaceSize": "3"}, {}],
            "subjectToThresholding": false, "dataLossFromOtherRow": false}});
        assert_eq!(
            said(&page),
            [
                "sampled: date range 1: 1 of 3 events read (33.33 %) (samplingMetadatas)",
                "sampled: date range 2: a sample of the events read (samplingMetadatas)",
            ]
        );
        assert!(Ga4Rows
            .caveats(&json!({"metadata": {"currencyCode": "USD"}}))
            .is_empty());
        assert!(Ga4Rows.caveats(&json!({"rows": []})).is_empty());
    }

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
