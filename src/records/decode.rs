//! How the records of a page are found: the array at the records path (or the whole response
//! as one record), or — for a report whose rows are not a list of named objects — the rows
//! decoder its API's module gives (`crate::apis`).

use std::sync::Arc;

use serde_json::Value;

use super::caveat::Caveat;
use super::path::FieldPath;
use super::take_records;

/// How the records of a page are found.
#[derive(Debug, Clone)]
pub enum Decoder {
    /// The array at the records path (or the whole response as one record).
    Records(Option<FieldPath>),
    /// A report's rows, named by its request or its response.
    Report(Arc<dyn ReportRows>),
}

use super::schema::ColumnType;

/// A report's rows turned into records with real field names.
pub trait ReportRows: std::fmt::Debug + Send + Sync {
    /// How the records are made, for `describe`.
    fn describe(&self) -> &'static str;

    /// The column names known from the request, before any response; `None` when only a
    /// response tells.
    fn columns_from_request(
        &self,
        _body: Option<&Value>,
        _params: &[(String, String)],
    ) -> Option<Vec<String>> {
        None
    }

    /// The column names a page declares, for reports whose request does not name them.
    fn columns_from_response(&self, _page: &Value) -> Option<Vec<String>> {
        None
    }

    /// How many records `decode` will make of `page`.
    fn count(&self, page: &Value) -> usize {
        rows(page).len()
    }

    /// The records of `page`, as objects keyed by column name.
    fn decode(&self, page: Value) -> Vec<Value>;

    /// What `page` says about its own numbers (sampled, not final, ...): none by default.
    fn caveats(&self, _page: &Value) -> Vec<Caveat> {
        Vec::new()
    }

    /// True when its responses can say such things ([`ReportRows::caveats`]), so that
    /// `strict = true` means something.
    fn tells_caveats(&self) -> bool {
        false
    }

    /// The type of each column `page` declares (in the order of its columns); `None` when
    /// the report does not say.
    fn column_types(&self, _page: &Value) -> Option<Vec<ColumnType>> {
        None
    }
}

impl Decoder {
    /// How the records are made, for `describe`.
    pub fn describe(&self) -> &'static str {
        match self {
            Decoder::Records(_) => "the records array",
            Decoder::Report(report) => report.describe(),
        }
    }

    /// The column names known from the request, before any response (a report's requested
    /// dimensions and metrics); `None` when only a response tells.
    pub fn columns_from_request(
        &self,
        body: Option<&Value>,
        params: &[(String, String)],
    ) -> Option<Vec<String>> {
        match self {
            Decoder::Records(_) => None,
            Decoder::Report(report) => report.columns_from_request(body, params),
        }
    }

    /// How many records `decode` will make of `page`.
    pub fn count(&self, page: &Value) -> usize {
        match self {
            Decoder::Records(path) => super::count_records(page, path.as_ref()),
            Decoder::Report(report) => report.count(page),
        }
    }

    /// Refuses a page whose records are not JSON objects (see [`super::check_records`]).
    pub fn check(&self, page: &Value) -> Result<(), String> {
        match self {
            Decoder::Records(path) => super::check_records(page, path.as_ref()),
            Decoder::Report(_) => super::check_records(page, None),
        }
    }

    /// The column names a page declares, for reports whose request does not name them.
    pub fn columns_from_response(&self, page: &Value) -> Option<Vec<String>> {
        match self {
            Decoder::Records(_) => None,
            Decoder::Report(report) => report.columns_from_response(page),
        }
    }

    /// The types of the columns a report's `page` declares, if it declares them.
    pub fn column_types(&self, page: &Value) -> Option<Vec<ColumnType>> {
        match self {
            Decoder::Records(_) => None,
            Decoder::Report(report) => report.column_types(page),
        }
    }

    /// True when the responses can carry caveats (some reports' do).
    pub fn tells_caveats(&self) -> bool {
        match self {
            Decoder::Records(_) => false,
            Decoder::Report(report) => report.tells_caveats(),
        }
    }

    /// What a report's `page` says about its numbers (plain records say nothing).
    pub fn caveats(&self, page: &Value) -> Vec<Caveat> {
        match self {
            Decoder::Records(_) => Vec::new(),
            Decoder::Report(report) => report.caveats(page),
        }
    }

    /// The records of `page`, as objects keyed by column name (plain records as they are).
    pub fn decode(&self, page: Value) -> Vec<Value> {
        match self {
            Decoder::Records(path) => take_records(page, path.as_ref()),
            Decoder::Report(report) => report.decode(page),
        }
    }
}

/// The `rows` array of a report page (none when absent).
pub fn rows(page: &Value) -> &[Value] {
    page.get("rows")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// An object of `names` and `values` by position (missing values are null).
pub fn named(names: &[String], values: impl IntoIterator<Item = Value>) -> Value {
    let mut values = values.into_iter();
    Value::Object(
        names
            .iter()
            .map(|name| (name.clone(), values.next().unwrap_or(Value::Null)))
            .collect(),
    )
}

/// The `name`s of the header objects in the array at `key` (`columnHeaders`, ...).
pub fn header_names(page: &Value, key: &str) -> Vec<String> {
    page.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
