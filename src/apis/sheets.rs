//! Sheets value ranges: `sheets.spreadsheets.values.get` answers a ragged 2-D `values` array
//! whose first row usually names the columns; dates and numbers are asked for as the sheet
//! shows them (the API's default sends dates as serial numbers).

use std::sync::Arc;

use serde_json::Value;

use super::Api;
use crate::discovery::Method;
use crate::records::decode::{named, ReportRows};

pub(super) struct Sheets;

impl Api for Sheets {
    fn handles(&self, method_id: &str) -> bool {
        method_id.starts_with("sheets.spreadsheets.values.")
    }

    fn report(
        &self,
        method_id: &str,
        _body: Option<&Value>,
        header: bool,
    ) -> Option<Arc<dyn ReportRows>> {
        (method_id == "sheets.spreadsheets.values.get")
            .then(|| Arc::new(SheetRows { header }) as Arc<dyn ReportRows>)
    }

    fn reads_header(&self, method_id: &str) -> bool {
        method_id == "sheets.spreadsheets.values.get"
    }

    fn default_params(&self, method: &Method) -> Vec<(&'static str, &'static str)> {
        [
            ("valueRenderOption", "FORMATTED_VALUE"),
            ("dateTimeRenderOption", "FORMATTED_STRING"),
        ]
        .into_iter()
        .filter(|(name, _)| method.parameters.contains_key(*name))
        .collect()
    }
}

/// A value range's rows; `header`: the first row names the columns.
#[derive(Debug)]
struct SheetRows {
    header: bool,
}

impl ReportRows for SheetRows {
    fn describe(&self) -> &'static str {
        "Sheets rows: the range's first row names the columns (`header = false`: numbered)"
    }

    fn columns_from_response(&self, page: &Value) -> Option<Vec<String>> {
        Some(sheet_columns(page, self.header))
    }

    fn count(&self, page: &Value) -> usize {
        let rows = page
            .get("values")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        rows.saturating_sub(usize::from(self.header))
    }

    fn decode(&self, page: Value) -> Vec<Value> {
        let names = sheet_columns(&page, self.header);
        let values = page
            .get("values")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        values
            .into_iter()
            .skip(usize::from(self.header))
            .map(|row| named(&names, row.as_array().cloned().unwrap_or_default()))
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sheet_rows_are_padded_and_headers_made_unique() {
        let page = json!({"values": [["Name", "", "Name"], ["a", "1"], ["b", "2", "3", "extra"]]});
        let rows = SheetRows { header: true };
        assert_eq!(
            rows.columns_from_response(&page),
            Some(vec![
                "Name".into(),
                "column_2".into(),
                "Name_2".into(),
                "column_4".into()
            ])
        );
        assert_eq!(rows.count(&page), 2);
        let records = rows.decode(page);
        assert_eq!(
            records[0],
            json!({"Name": "a", "column_2": "1", "Name_2": null, "column_4": null})
        );
    }

    #[test]
    fn value_ranges_ask_for_formatted_values() {
        let method: Method = serde_json::from_value(json!({
            "id": "sheets.spreadsheets.values.get", "path": "p", "httpMethod": "GET",
            "parameters": {"valueRenderOption": {"type": "string", "location": "query"}}
        }))
        .unwrap();
        assert_eq!(
            Sheets.default_params(&method),
            [("valueRenderOption", "FORMATTED_VALUE")]
        );
    }
}
