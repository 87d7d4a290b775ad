//! Writable Google Sheets for the fake: spreadsheets.create / get / batchUpdate (addSheet,
//! deleteSheet, updateSheetProperties, repeatCell number formats) and values update / append /
//! get, with Google's limits (10 MB request bodies, 10,000,000 cells, at least one tab, unique
//! tab titles). Values are stored as sent (`valueInputOption=RAW`), so tests read back exactly
//! what gscrape wrote, JSON type and all.

use std::collections::HashMap;

use hyper::StatusCode;
use serde_json::{json, Value};

/// Google refuses request bodies above this.
pub const MAX_BODY: usize = 10 * 1024 * 1024;
/// Google's cell limit per spreadsheet.
pub const MAX_CELLS: u64 = 10_000_000;
/// The grid of a tab made without one: Google's 1000 × 26.
const DEFAULT_GRID: (u64, u64) = (1000, 26);

/// One tab: its cells (rows of JSON values as sent) and the number formats put on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tab {
    pub sheet_id: i64,
    pub title: String,
    pub rows: Vec<Vec<Value>>,
    /// `(first column, last column exclusive, first row, numberFormat.type)` per repeatCell.
    pub formats: Vec<(u64, u64, u64, String)>,
    grid: (u64, u64),
}

impl Tab {
    fn new(sheet_id: i64, title: &str) -> Tab {
        Tab {
            sheet_id,
            title: title.to_owned(),
            rows: Vec::new(),
            formats: Vec::new(),
            grid: DEFAULT_GRID,
        }
    }

    fn cells(&self) -> u64 {
        self.grid.0 * self.grid.1
    }

    /// Writes `values` from `row` (0-based) and `column`, growing the grid as Google does.
    fn put(&mut self, row: usize, column: usize, values: &[Vec<Value>]) {
        for (i, values) in values.iter().enumerate() {
            let at = row + i;
            if self.rows.len() <= at {
                self.rows.resize(at + 1, Vec::new());
            }
            let cells = &mut self.rows[at];
            if cells.len() < column + values.len() {
                cells.resize(column + values.len(), Value::String(String::new()));
            }
            cells[column..column + values.len()].clone_from_slice(values);
            self.grid.1 = self.grid.1.max(cells.len() as u64);
        }
        self.grid.0 = self.grid.0.max(self.rows.len() as u64);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spreadsheet {
    pub id: String,
    pub title: String,
    pub tabs: Vec<Tab>,
}

impl Spreadsheet {
    pub fn tab(&self, title: &str) -> Option<&Tab> {
        self.tabs.iter().find(|t| t.title == title)
    }

    fn cells(&self) -> u64 {
        self.tabs.iter().map(Tab::cells).sum()
    }
}

/// Every spreadsheet of the fake, and the fault mode.
#[derive(Debug, Default)]
pub struct Sheets {
    pub spreadsheets: HashMap<String, Spreadsheet>,
    next_id: usize,
    next_sheet_id: i64,
    /// Values writes (update and append) so far.
    values_writes: usize,
    /// Refuse the Nth values write (1-based) with a 400, as a failed write would end.
    pub fail_values_write: Option<usize>,
}

type Answer = (StatusCode, Value);

fn error(code: u16, status: &str, message: &str) -> Answer {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"error": {"code": code, "message": message, "status": status,
                         "errors": [{"message": message, "domain": "global", "reason": "badRequest"}]}}),
    )
}

fn too_many_cells() -> Answer {
    error(
        400,
        "INVALID_ARGUMENT",
        &format!("This action would increase the number of cells in the workbook above the limit of {MAX_CELLS} cells."),
    )
}

impl Sheets {
    /// A spreadsheet with these tabs (title, rows), for tests that start from an existing one.
    pub fn seed(&mut self, id: &str, tabs: &[(&str, Vec<Vec<Value>>)]) {
        let tabs = tabs
            .iter()
            .map(|(title, rows)| {
                self.next_sheet_id += 1;
                let mut tab = Tab::new(self.next_sheet_id, title);
                tab.put(0, 0, rows);
                tab
            })
            .collect();
        let sheet = Spreadsheet {
            id: id.to_owned(),
            title: id.to_owned(),
            tabs,
        };
        self.spreadsheets.insert(id.to_owned(), sheet);
    }

    /// Sets the grid of a seeded tab (to bring a spreadsheet near the cell limit).
    pub fn set_grid(&mut self, id: &str, title: &str, rows: u64, columns: u64) {
        let sheet = self.spreadsheets.get_mut(id).expect("a seeded spreadsheet");
        let tab = sheet
            .tabs
            .iter_mut()
            .find(|t| t.title == title)
            .expect("a seeded tab");
        tab.grid = (rows, columns);
    }

    /// The titles of a spreadsheet's tabs, in order.
    pub fn titles(&self, id: &str) -> Vec<String> {
        self.spreadsheets[id]
            .tabs
            .iter()
            .map(|t| t.title.clone())
            .collect()
    }

    /// The answer to a Sheets request, or `None` for one this fake does not own (a
    /// spreadsheet it never made: the canned `values.get` of the reports fake answers those).
    pub fn route(
        &mut self,
        method: &str,
        parts: &[&str],
        query: &HashMap<String, String>,
        body: &str,
        root_url: &str,
    ) -> Option<Answer> {
        let ["v4", "spreadsheets", rest @ ..] = parts else {
            return None;
        };
        if body.len() > MAX_BODY {
            return Some(error(
                400,
                "INVALID_ARGUMENT",
                &format!("Request payload size exceeds the limit: {MAX_BODY} bytes."),
            ));
        }
        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        if let ("POST", []) = (method, rest) {
            return Some(self.create(&body, root_url));
        }
        let (id, action) = match rest.first()?.split_once(':') {
            Some((id, action)) => (id.to_owned(), Some(action)),
            None => (rest[0].to_owned(), None),
        };
        if !self.spreadsheets.contains_key(&id) {
            return None;
        }
        let range = rest.get(2).map(|r| decode(r));
        Some(match (method, &rest[1..], action) {
            ("GET", [], None) => self.get(&id, root_url),
            ("POST", [], Some("batchUpdate")) => self.batch_update(&id, &body),
            ("GET", ["values", _], None) => self.values_get(&id, range.as_deref()?),
            ("PUT", ["values", _], None) => {
                self.values_write(&id, range.as_deref()?, query, &body, false)
            }
            ("POST", ["values", _], None) => {
                let range = range.as_deref()?.strip_suffix(":append")?.to_owned();
                self.values_write(&id, &range, query, &body, true)
            }
            _ => error(404, "NOT_FOUND", "Not Found"),
        })
    }

    fn create(&mut self, body: &Value, root_url: &str) -> Answer {
        self.next_id += 1;
        let id = format!("fake-sheet-{}", self.next_id);
        let title = body["properties"]["title"]
            .as_str()
            .unwrap_or("Untitled spreadsheet");
        let mut titles: Vec<String> = body["sheets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["properties"]["title"].as_str().map(str::to_owned))
            .collect();
        if titles.is_empty() {
            titles.push("Sheet1".to_owned());
        }
        let tabs = titles
            .iter()
            .map(|t| {
                self.next_sheet_id += 1;
                Tab::new(self.next_sheet_id, t)
            })
            .collect();
        let sheet = Spreadsheet {
            id: id.clone(),
            title: title.to_owned(),
            tabs,
        };
        self.spreadsheets.insert(id.clone(), sheet);
        self.get(&id, root_url)
    }

    fn get(&self, id: &str, root_url: &str) -> Answer {
        let sheet = &self.spreadsheets[id];
        let tabs: Vec<Value> = sheet
            .tabs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"properties": {"sheetId": t.sheet_id, "title": t.title, "index": i,
                       "gridProperties": {"rowCount": t.grid.0, "columnCount": t.grid.1}}})
            })
            .collect();
        (
            StatusCode::OK,
            json!({"spreadsheetId": id, "properties": {"title": sheet.title},
                   "spreadsheetUrl": format!("{root_url}spreadsheets/d/{id}/edit"),
                   "sheets": tabs}),
        )
    }

    /// All requests or none, as Google applies a batchUpdate.
    fn batch_update(&mut self, id: &str, body: &Value) -> Answer {
        let mut sheet = self.spreadsheets[id].clone();
        let mut replies = Vec::new();
        for request in body["requests"].as_array().into_iter().flatten() {
            let reply = if let Some(add) = request.get("addSheet") {
                let title = add["properties"]["title"].as_str().unwrap_or("Sheet");
                if sheet.tab(title).is_some() {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        &format!("Invalid requests[0].addSheet: A sheet with the name \"{title}\" already exists. Please enter another name."),
                    );
                }
                self.next_sheet_id += 1;
                let mut tab = Tab::new(self.next_sheet_id, title);
                let grid = &add["properties"]["gridProperties"];
                if let (Some(rows), Some(columns)) =
                    (grid["rowCount"].as_u64(), grid["columnCount"].as_u64())
                {
                    tab.grid = (rows, columns);
                }
                let reply =
                    json!({"addSheet": {"properties": {"sheetId": tab.sheet_id, "title": title}}});
                sheet.tabs.push(tab);
                reply
            } else if let Some(delete) = request.get("deleteSheet") {
                let sheet_id = delete["sheetId"].as_i64().unwrap_or(-1);
                let Some(at) = sheet.tabs.iter().position(|t| t.sheet_id == sheet_id) else {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        &format!("No grid with id: {sheet_id}"),
                    );
                };
                if sheet.tabs.len() == 1 {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        "Invalid requests[0].deleteSheet: You can't remove all the sheets in a document.",
                    );
                }
                sheet.tabs.remove(at);
                json!({})
            } else if let Some(update) = request.get("updateSheetProperties") {
                let properties = &update["properties"];
                let sheet_id = properties["sheetId"].as_i64().unwrap_or(-1);
                let Some(tab) = sheet.tabs.iter().position(|t| t.sheet_id == sheet_id) else {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        &format!("No grid with id: {sheet_id}"),
                    );
                };
                if update["fields"] == "gridProperties.rowCount,gridProperties.columnCount" {
                    let grid = &properties["gridProperties"];
                    let size = |key: &str| grid[key].as_u64().unwrap_or(0);
                    let tab = &mut sheet.tabs[tab];
                    if (size("rowCount") as usize) < tab.rows.len() {
                        return error(400, "INVALID_ARGUMENT", "the fake does not shrink grids");
                    }
                    tab.grid = (size("rowCount"), size("columnCount"));
                    if sheet.cells() > MAX_CELLS {
                        return too_many_cells();
                    }
                    replies.push(json!({}));
                    continue;
                }
                if update["fields"] != "title" {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        "the fake updates `title` or the grid size only",
                    );
                }
                let title = properties["title"].as_str().unwrap_or_default();
                if sheet
                    .tabs
                    .iter()
                    .any(|t| t.title == title && t.sheet_id != sheet_id)
                {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        &format!("A sheet with the name \"{title}\" already exists. Please enter another name."),
                    );
                }
                let Some(tab) = sheet.tabs.iter_mut().find(|t| t.sheet_id == sheet_id) else {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        &format!("No grid with id: {sheet_id}"),
                    );
                };
                tab.title = title.to_owned();
                json!({})
            } else if let Some(repeat) = request.get("repeatCell") {
                let range = &repeat["range"];
                let sheet_id = range["sheetId"].as_i64().unwrap_or(-1);
                let kind = repeat["cell"]["userEnteredFormat"]["numberFormat"]["type"]
                    .as_str()
                    .unwrap_or_default();
                if repeat["fields"] != "userEnteredFormat.numberFormat" {
                    return error(400, "INVALID_ARGUMENT", "the fake sets numberFormat only");
                }
                let Some(tab) = sheet.tabs.iter_mut().find(|t| t.sheet_id == sheet_id) else {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        &format!("No grid with id: {sheet_id}"),
                    );
                };
                let index = |key: &str| range[key].as_u64().unwrap_or(0);
                tab.formats.push((
                    index("startColumnIndex"),
                    index("endColumnIndex"),
                    index("startRowIndex"),
                    kind.to_owned(),
                ));
                json!({})
            } else {
                return error(400, "INVALID_ARGUMENT", "a request the fake does not know");
            };
            replies.push(reply);
        }
        self.spreadsheets.insert(id.to_owned(), sheet);
        (
            StatusCode::OK,
            json!({"spreadsheetId": id, "replies": replies}),
        )
    }

    fn values_get(&self, id: &str, range: &str) -> Answer {
        let Some((title, start)) = parse_range(range) else {
            return error(
                400,
                "INVALID_ARGUMENT",
                &format!("Unable to parse range: {range}"),
            );
        };
        let Some(tab) = self.spreadsheets[id].tab(&title) else {
            return error(
                400,
                "INVALID_ARGUMENT",
                &format!("Unable to parse range: {range}"),
            );
        };
        let rows: Vec<Value> = match start {
            // `'Tab'!1:1`: the first row only.
            Some((0, None)) => tab.rows.iter().take(1).map(|r| json!(r)).collect(),
            _ => tab.rows.iter().map(|r| json!(r)).collect(),
        };
        let rows: Vec<Value> = rows
            .into_iter()
            .filter(|r| r.as_array().is_some_and(|a| !a.is_empty()))
            .collect();
        let mut out = json!({"range": range, "majorDimension": "ROWS"});
        if !rows.is_empty() {
            out["values"] = json!(rows);
        }
        (StatusCode::OK, out)
    }

    fn values_write(
        &mut self,
        id: &str,
        range: &str,
        query: &HashMap<String, String>,
        body: &Value,
        append: bool,
    ) -> Answer {
        self.values_writes += 1;
        if self.fail_values_write == Some(self.values_writes) {
            return error(
                400,
                "INVALID_ARGUMENT",
                "fault injected: this values write fails",
            );
        }
        if query.get("valueInputOption").map(String::as_str) != Some("RAW") {
            return error(
                400,
                "INVALID_ARGUMENT",
                "gscrape must write with valueInputOption=RAW",
            );
        }
        let Some((title, start)) = parse_range(range) else {
            return error(
                400,
                "INVALID_ARGUMENT",
                &format!("Unable to parse range: {range}"),
            );
        };
        let values: Vec<Vec<Value>> =
            serde_json::from_value(body["values"].clone()).unwrap_or_default();
        let mut sheet = self.spreadsheets[id].clone();
        let Some(tab) = sheet.tabs.iter_mut().find(|t| t.title == title) else {
            return error(
                400,
                "INVALID_ARGUMENT",
                &format!("Unable to parse range: {range}"),
            );
        };
        let (row, column) = match (append, start) {
            (true, _) => (tab.rows.len(), 0),
            (false, Some((row, column))) => (row, column.unwrap_or(0)),
            (false, None) => (0, 0),
        };
        // values.update writes inside the grid; values.append grows it.
        let end = (row + values.len()) as u64;
        let width = (column + values.iter().map(Vec::len).max().unwrap_or(0)) as u64;
        if !append && (end > tab.grid.0 || width > tab.grid.1) {
            return error(
                400,
                "INVALID_ARGUMENT",
                &format!(
                    "Range ({range}) exceeds grid limits. Max rows: {}, max columns: {}",
                    tab.grid.0, tab.grid.1
                ),
            );
        }
        tab.put(row, column, &values);
        if sheet.cells() > MAX_CELLS {
            return too_many_cells();
        }
        self.spreadsheets.insert(id.to_owned(), sheet);
        let updated =
            json!({"spreadsheetId": id, "updatedRange": range, "updatedRows": values.len()});
        match append {
            true => (
                StatusCode::OK,
                json!({"spreadsheetId": id, "updates": updated}),
            ),
            false => (StatusCode::OK, updated),
        }
    }
}

/// Where a range starts: its row (0-based) and column, if it names one.
type Start = (usize, Option<usize>);

/// `'It''s'!B3` → ("It's", Some((2, Some(1)))); `Tab!1:1` → ("Tab", Some((0, None))); a bare
/// title → (title, None).
fn parse_range(range: &str) -> Option<(String, Option<Start>)> {
    let (title, cells) = match range.rsplit_once('!') {
        Some((title, cells)) => (title, Some(cells)),
        None => (range, None),
    };
    let title = match title.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(quoted) => quoted.replace("''", "'"),
        None => title.to_owned(),
    };
    let Some(cells) = cells else {
        return Some((title, None));
    };
    let first = cells.split(':').next()?;
    let letters: String = first
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    let digits = &first[letters.len()..];
    let row = match digits {
        "" => 0,
        d => d.parse::<usize>().ok()?.checked_sub(1)?,
    };
    let column = (!letters.is_empty()).then(|| {
        letters
            .to_ascii_uppercase()
            .bytes()
            .fold(0, |n, b| n * 26 + (b - b'A' + 1) as usize)
            - 1
    });
    Some((title, Some((row, column))))
}

/// A path segment, percent-decoded (`+` is a plus in a path).
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
