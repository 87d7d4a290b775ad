//! Writing a query's rows to a Google Sheet (`[sheet]`) through the Sheets REST API, with the
//! run's [`ApiClient`] (credentials, retries, gzip and rate limits as for every request).
//!
//! Values go with `valueInputOption=RAW`, so nothing is parsed as a formula or a number: each
//! cell is typed here ([`cell_value`]). Rows are sent in requests of about [`CHUNK_BYTES`],
//! far below Google's 10 MB limit, and the spreadsheet's 10,000,000 cells are checked before
//! each write.
//!
//! Replace is atomic for readers: the rows go to a new tab, then one `batchUpdate` deletes the
//! old tab and gives the new one its title. Any failure before that removes the new tab; the
//! old one is never touched. Every write into the new tab names its range, so a retried
//! request cannot duplicate rows. Append adds after the tab's rows (`values.append`).
//!
//! The [`Sink`] calls are synchronous; [`SheetSink`] runs its requests on the run's runtime
//! ([`block`]) when a request's worth of rows is held, at commit, and when dropped uncommitted
//! (a failure or an interrupt), which removes the new tab.

use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::cells::{typed, Cell, ColumnSchema, ColumnType};
use super::{hex, Sink, SinkError, Written};
use crate::api::request::encode_path_segment;
use crate::api::{Accepts, ApiClient, ApiError, Call, RequestSpec};
use crate::discovery::Document;
use crate::error::Failure;
use crate::plan::QueryPlan;
use crate::query::{SheetMode, SheetTarget, Spreadsheet};
use crate::records::{Column, Row};

/// The payload of one values request: Google recommends about 2 MB, and refuses above 10 MB.
pub const CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// Google's limit of cells per spreadsheet (every tab's grid counts).
pub const MAX_CELLS: u64 = 10_000_000;

/// The title of the tab being filled in replace mode. Fixed, so a run killed half-way leaves
/// at most one such tab, which the next run removes before it starts.
fn new_tab_title(tab: &str) -> String {
    format!("{tab} (gscrape new)")
}

/// The Sheets number format that shows a column's serial numbers as dates.
fn number_format(kind: ColumnType) -> Option<&'static str> {
    match kind {
        ColumnType::DateTime | ColumnType::LocalDateTime => Some("DATE_TIME"),
        ColumnType::Date => Some("DATE"),
        _ => None,
    }
}

/// The format of a column that gets a cell of `kind`: a number format is set per column, so
/// one holding dates and date-times (a fallback column) shows date-times, a date at 00:00.
fn widen(format: &mut Option<&'static str>, kind: ColumnType) {
    match (*format, number_format(kind)) {
        (None, Some(new)) | (Some(_), Some(new @ "DATE_TIME")) => *format = Some(new),
        _ => {}
    }
}

/// One cell as the Sheets API takes it: numbers, booleans, dates as serial numbers (days since
/// 1899-12-30 UTC, the fraction the time of day), the rest text (with RAW, never a formula).
pub fn cell_value(text: &str, kind: ColumnType) -> Value {
    let number = |n: f64| {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.to_owned()))
    };
    match typed(text, kind) {
        Cell::Text(text) => Value::String(text.to_owned()),
        Cell::Integer(n) => Value::from(n),
        Cell::Number(n) => number(n),
        Cell::Boolean(b) => Value::Bool(b),
        Cell::DateTime(at) => number(serial(at)),
        Cell::Date(day) => number(serial(day.and_time(chrono::NaiveTime::MIN))),
    }
}

/// Days since the spreadsheet epoch, 1899-12-30 00:00 UTC.
fn serial(at: chrono::NaiveDateTime) -> f64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
        .unwrap_or_default()
        .and_time(chrono::NaiveTime::MIN);
    let elapsed = at - epoch;
    elapsed.num_milliseconds() as f64 / 86_400_000.0
}

#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("Google Sheets: {0}")]
    Api(Box<ApiError>),
    #[error("Google Sheets: {url}: {why}")]
    BadResponse { url: String, why: String },
    #[error("Google Sheets: writing would make {url} {cells} cells, above Google's limit of {MAX_CELLS}; export fewer rows or columns, or to another spreadsheet")]
    TooManyCells { url: String, cells: u64 },
    #[error("Google Sheets: the Sheets API's Discovery document (sheets v4) was not loaded")]
    NoEndpoint,
    #[error("Google Sheets: the sheet is written from gscrape's multi-threaded runtime only")]
    NoRuntime,
    #[error("Google Sheets: one row is {bytes} bytes of JSON, more than a request may carry ({CHUNK_BYTES})")]
    RowTooLarge { bytes: usize },
}

impl SheetError {
    /// What kind of failure this is (for the exit code and the summary).
    pub fn kind(&self) -> Failure {
        match self {
            SheetError::Api(err) => err.kind(),
            _ => Failure::Remote,
        }
    }
}

impl From<ApiError> for SheetError {
    fn from(err: ApiError) -> Self {
        SheetError::Api(Box::new(err))
    }
}

/// Where the Sheets API is: `rootUrl + servicePath` of its Discovery document (so tests and
/// private endpoints are reached as for any API).
#[derive(Debug, Clone)]
pub struct SheetsApi {
    base_url: String,
    /// The scopes its writes accept (those of `spreadsheets.batchUpdate`, as of every write).
    accepts: Arc<Accepts>,
}

impl SheetsApi {
    pub fn new(doc: &Document) -> SheetsApi {
        let writes = doc.method("sheets.spreadsheets.batchUpdate");
        SheetsApi {
            base_url: doc.base_url(),
            accepts: Arc::new(writes.map(Accepts::of).unwrap_or_else(|| Accepts {
                method: "sheets.spreadsheets.batchUpdate".to_owned(),
                scopes: vec![crate::auth::scopes::SHEETS_WRITE.to_owned()],
            })),
        }
    }

    /// The scopes its writes accept, for the message of a token granted none of them.
    pub fn accepts(&self) -> Arc<Accepts> {
        self.accepts.clone()
    }

    fn url(&self, id: Option<&str>, tail: &str) -> String {
        match id {
            None => format!("{}v4/spreadsheets{tail}", self.base_url),
            Some(id) => format!(
                "{}v4/spreadsheets/{}{tail}",
                self.base_url,
                encode_path_segment(id)
            ),
        }
    }
}

/// A tab as `spreadsheets.get` describes it.
#[derive(Debug, Clone)]
struct TabInfo {
    id: i64,
    title: String,
    cells: u64,
}

/// The spreadsheet once it is known: where rows go now.
struct Opened {
    id: String,
    url: String,
    /// The tab being written: the new tab (replace) or the tab itself (append).
    tab: TabInfo,
    /// The tab the new one replaces.
    old: Option<TabInfo>,
    /// Cells of every tab but the one being written.
    other_cells: u64,
    /// Rows in the tab being written, header included.
    rows: u64,
    /// Rows the grid of the new tab has (replace mode grows it before each write).
    grid_rows: u64,
}

/// Rows on their way to one sheet.
struct SheetWriter {
    api: ApiClient,
    call: Call,
    endpoint: SheetsApi,
    target: SheetTarget,
    /// The query's name: the title of a new spreadsheet.
    title: String,
    header: Vec<String>,
    /// Each column's number format, from the types of the cells written into it.
    formats: Vec<Option<&'static str>>,
    opened: Option<Opened>,
    pending: Vec<Value>,
    pending_bytes: usize,
    /// The values requests sent: their bodies' bytes and SHA-256 (the summary's proof).
    sent: u64,
    hash: Sha256,
}

impl SheetWriter {
    fn new(
        api: ApiClient,
        call: Call,
        endpoint: SheetsApi,
        target: SheetTarget,
        title: &str,
    ) -> SheetWriter {
        SheetWriter {
            api,
            call,
            endpoint,
            target,
            title: title.to_owned(),
            header: Vec::new(),
            formats: Vec::new(),
            opened: None,
            pending: Vec::new(),
            pending_bytes: 0,
            sent: 0,
            hash: Sha256::new(),
        }
    }

    /// The columns (names and number formats), once known; called before any row.
    fn set_columns(&mut self, header: Vec<String>, formats: Vec<Option<&'static str>>) {
        self.header = header;
        self.formats = formats;
    }

    /// Adds one row: its cells as text, each typed by its `kinds`.
    fn push(&mut self, cells: &[String], kinds: &[ColumnType]) -> Result<(), SheetError> {
        let row: Vec<Value> = cells
            .iter()
            .zip(kinds)
            .enumerate()
            .map(|(i, (text, &kind))| match text.is_empty() {
                true => Value::String(String::new()),
                false => {
                    if let Some(format) = self.formats.get_mut(i) {
                        widen(format, kind);
                    }
                    cell_value(text, kind)
                }
            })
            .collect();
        let row = Value::Array(row);
        let bytes = row.to_string().len() + 1;
        if bytes > CHUNK_BYTES {
            return Err(SheetError::RowTooLarge { bytes });
        }
        self.pending_bytes += bytes;
        self.pending.push(row);
        Ok(())
    }

    /// True when the rows held make a request's worth.
    fn is_full(&self) -> bool {
        self.pending_bytes >= CHUNK_BYTES
    }

    /// Puts the rows in place (replace: the one `batchUpdate` that swaps the tabs), and
    /// returns the spreadsheet's URL.
    async fn commit(&mut self) -> Result<String, SheetError> {
        self.flush().await?;
        let Some(opened) = &self.opened else {
            return Err(SheetError::BadResponse {
                url: self.endpoint.url(None, ""),
                why: "the spreadsheet was never opened".to_owned(),
            });
        };
        let mut requests: Vec<Value> = self
            .formats
            .iter()
            .enumerate()
            .filter_map(|(i, format)| {
                let format = (*format)?;
                Some(json!({"repeatCell": {
                    "range": {"sheetId": opened.tab.id, "startRowIndex": 1,
                              "startColumnIndex": i, "endColumnIndex": i + 1},
                    "cell": {"userEnteredFormat": {"numberFormat": {"type": format}}},
                    "fields": "userEnteredFormat.numberFormat"}}))
            })
            .collect();
        if self.target.mode == SheetMode::Replace {
            if let Some(old) = &opened.old {
                requests.push(json!({"deleteSheet": {"sheetId": old.id}}));
            }
            requests.push(json!({"updateSheetProperties": {
                "properties": {"sheetId": opened.tab.id, "title": self.target.tab},
                "fields": "title"}}));
        }
        let (id, url) = (opened.id.clone(), opened.url.clone());
        if !requests.is_empty() {
            self.batch_update(&id, requests).await?;
        }
        Ok(url)
    }

    /// After a failure: removes the new tab of a replace, so the spreadsheet is as it was.
    /// Rows appended already stay (append is not atomic).
    async fn abort(&mut self) {
        let Some(opened) = &self.opened else {
            return;
        };
        if self.target.mode != SheetMode::Replace {
            return;
        }
        let (id, tab) = (opened.id.clone(), opened.tab.id);
        let delete = vec![json!({"deleteSheet": {"sheetId": tab}})];
        if let Err(err) = self.batch_update(&id, delete).await {
            crate::say!(
                "warning: could not remove the unfinished tab {:?} of {}: {err}",
                new_tab_title(&self.target.tab),
                opened.url
            );
        }
    }

    async fn flush(&mut self) -> Result<(), SheetError> {
        if self.opened.is_none() {
            self.open().await?;
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        self.write(rows).await
    }

    /// Finds or creates the spreadsheet, and the tab the rows go to.
    async fn open(&mut self) -> Result<(), SheetError> {
        let id = match &self.target.spreadsheet {
            Spreadsheet::Id(id) => id.clone(),
            Spreadsheet::New => {
                let body = json!({"properties": {"title": self.title},
                                  "sheets": [{"properties": {"title": self.target.tab}}]});
                let url = self.endpoint.url(None, "");
                let made = self
                    .send(http::Method::POST, url.clone(), vec![], Some(body))
                    .await?;
                made["spreadsheetId"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| SheetError::BadResponse {
                        url,
                        why: "spreadsheets.create answered no spreadsheetId".to_owned(),
                    })?
            }
        };
        let (url, mut tabs) = self.describe(&id).await?;
        let new_title = new_tab_title(&self.target.tab);
        let mut header = true;
        let (tab, old) = match self.target.mode {
            SheetMode::Replace => {
                if let Some(stale) = tabs.iter().position(|t| t.title == new_title) {
                    let stale = tabs.remove(stale);
                    tracing::info!("removing {new_title:?}, left in {url} by an unfinished run");
                    self.batch_update(&id, vec![json!({"deleteSheet": {"sheetId": stale.id}})])
                        .await?;
                }
                let old = tabs.iter().find(|t| t.title == self.target.tab).cloned();
                let grid = json!({"rowCount": 1, "columnCount": self.header.len().max(1)});
                let tab = self.add_tab(&id, &new_title, Some(grid)).await?;
                (tab, old)
            }
            SheetMode::Append => match tabs.iter().position(|t| t.title == self.target.tab) {
                Some(at) => {
                    let tab = tabs.remove(at);
                    header = self.first_row_is_empty(&id).await?;
                    (tab, None)
                }
                None => (
                    self.add_tab(&id, &self.target.tab.clone(), None).await?,
                    None,
                ),
            },
        };
        let other_cells = tabs.iter().map(|t| t.cells).sum();
        self.opened = Some(Opened {
            id,
            url,
            rows: 0,
            grid_rows: 1,
            other_cells,
            old,
            tab,
        });
        if header {
            let header = Value::Array(self.header.iter().map(|h| json!(h)).collect());
            self.pending.insert(0, header);
        }
        Ok(())
    }

    /// The spreadsheet's URL and its tabs.
    async fn describe(&self, id: &str) -> Result<(String, Vec<TabInfo>), SheetError> {
        let url = self.endpoint.url(Some(id), "");
        let fields =
            "spreadsheetUrl,sheets.properties(sheetId,title,gridProperties(rowCount,columnCount))";
        let query = vec![("fields".to_owned(), fields.to_owned())];
        let sheet = self
            .send(http::Method::GET, url.clone(), query, None)
            .await?;
        let bad = |why: &str| SheetError::BadResponse {
            url: url.clone(),
            why: why.to_owned(),
        };
        let link = sheet["spreadsheetUrl"]
            .as_str()
            .ok_or_else(|| bad("spreadsheets.get answered no spreadsheetUrl"))?;
        let tabs = sheet["sheets"]
            .as_array()
            .ok_or_else(|| bad("spreadsheets.get answered no sheets"))?
            .iter()
            .map(|s| {
                tab_info(&s["properties"]).ok_or_else(|| bad("a sheet without sheetId or title"))
            })
            .collect::<Result<_, _>>()?;
        Ok((link.to_owned(), tabs))
    }

    async fn add_tab(
        &self,
        id: &str,
        title: &str,
        grid: Option<Value>,
    ) -> Result<TabInfo, SheetError> {
        let mut properties = json!({"title": title});
        if let Some(grid) = grid {
            properties["gridProperties"] = grid;
        }
        let reply = self
            .batch_update(id, vec![json!({"addSheet": {"properties": properties}})])
            .await?;
        tab_info(&reply["replies"][0]["addSheet"]["properties"]).ok_or_else(|| {
            SheetError::BadResponse {
                url: self.endpoint.url(Some(id), ":batchUpdate"),
                why: "addSheet answered no sheetId".to_owned(),
            }
        })
    }

    /// True when the tab's first row holds nothing (a header is written then).
    async fn first_row_is_empty(&self, id: &str) -> Result<bool, SheetError> {
        let range = format!("{}!1:1", quoted(&self.target.tab));
        let url = self.endpoint.url(
            Some(id),
            &format!("/values/{}", encode_path_segment(&range)),
        );
        let row = self.send(http::Method::GET, url, vec![], None).await?;
        Ok(row["values"].as_array().is_none_or(Vec::is_empty))
    }

    async fn write(&mut self, rows: Vec<Value>) -> Result<(), SheetError> {
        let Some(opened) = &self.opened else {
            return Ok(());
        };
        let (id, count) = (opened.id.clone(), rows.len() as u64);
        let width = (self.header.len().max(1) as u64).max(1);
        let rows_after = opened.rows + count;
        let cells = opened.other_cells
            + opened.old.as_ref().map_or(0, |t| t.cells)
            + match self.target.mode {
                SheetMode::Replace => rows_after * width,
                SheetMode::Append => opened.tab.cells + count * width,
            };
        if cells > MAX_CELLS {
            return Err(SheetError::TooManyCells {
                url: opened.url.clone(),
                cells,
            });
        }
        let body = json!({"majorDimension": "ROWS", "values": rows});
        let text = body.to_string();
        self.sent += text.len() as u64;
        self.hash.update(text.as_bytes());
        let raw = ("valueInputOption".to_owned(), "RAW".to_owned());
        match self.target.mode {
            SheetMode::Replace => {
                if rows_after > opened.grid_rows {
                    // values.update does not grow the grid; the tab is sized first.
                    let grow = json!({"updateSheetProperties": {
                        "properties": {"sheetId": opened.tab.id,
                                       "gridProperties": {"rowCount": rows_after, "columnCount": width}},
                        "fields": "gridProperties.rowCount,gridProperties.columnCount"}});
                    self.batch_update(&id, vec![grow]).await?;
                }
                let Some(opened) = &self.opened else {
                    return Ok(());
                };
                let range = format!("{}!A{}", quoted(&opened.tab.title), opened.rows + 1);
                let url = self.endpoint.url(
                    Some(&id),
                    &format!("/values/{}", encode_path_segment(&range)),
                );
                self.send(http::Method::PUT, url, vec![raw], Some(body))
                    .await?;
            }
            SheetMode::Append => {
                let range = format!("{}!A1", quoted(&opened.tab.title));
                let url = self.endpoint.url(
                    Some(&id),
                    &format!("/values/{}:append", encode_path_segment(&range)),
                );
                let insert = ("insertDataOption".to_owned(), "INSERT_ROWS".to_owned());
                self.send(http::Method::POST, url, vec![raw, insert], Some(body))
                    .await?;
            }
        }
        if let Some(opened) = &mut self.opened {
            opened.rows = rows_after;
            opened.grid_rows = opened.grid_rows.max(rows_after);
            if self.target.mode == SheetMode::Append {
                opened.tab.cells += count * width;
            }
        }
        Ok(())
    }

    async fn batch_update(&self, id: &str, requests: Vec<Value>) -> Result<Value, SheetError> {
        let url = self.endpoint.url(Some(id), ":batchUpdate");
        let body = json!({ "requests": requests });
        self.send(http::Method::POST, url, vec![], Some(body)).await
    }

    async fn send(
        &self,
        method: http::Method,
        url: String,
        query: Vec<(String, String)>,
        body: Option<Value>,
    ) -> Result<Value, SheetError> {
        let spec = RequestSpec {
            http_method: method,
            url,
            query,
            body,
        };
        Ok(self.api.fetch(&spec, &self.call).await?.json()?)
    }
}

/// What a sheet's sink needs from the run: the client, credentials and counters of its
/// requests, where the Sheets API is, and where to leave the sheet's URL for the summary
/// (a [`Sink`] commits without a result).
#[derive(Clone)]
pub struct SheetContext {
    pub api: ApiClient,
    pub call: Call,
    pub endpoint: SheetsApi,
    pub url: Arc<OnceLock<String>>,
}

/// A [`SheetWriter`] behind the synchronous [`Sink`] calls.
pub struct SheetSink {
    writer: SheetWriter,
    /// The types of the plan's columns (a report's, named by its response, are text until
    /// its response types them).
    types: ColumnSchema,
    width: usize,
    /// Rows written.
    rows: u64,
    cells: Vec<String>,
    /// The type of each cell of the row being written.
    kinds: Vec<ColumnType>,
    url: Arc<OnceLock<String>>,
    committed: bool,
}

impl SheetSink {
    pub fn new(plan: &QueryPlan, target: SheetTarget, context: SheetContext) -> SheetSink {
        let writer = SheetWriter::new(
            context.api,
            context.call,
            context.endpoint,
            target,
            &plan.query.name,
        );
        SheetSink {
            writer,
            types: plan.column_schema(),
            width: 0,
            rows: 0,
            cells: Vec::new(),
            kinds: Vec::new(),
            url: context.url,
            committed: false,
        }
    }
}

impl Sink for SheetSink {
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError> {
        let header = columns.iter().map(|c| c.header.clone()).collect();
        if self.types.len() != columns.len() {
            self.types = ColumnSchema::text(columns.len());
        }
        // A column whose paths disagree (a fallback) takes its format from its cells.
        let formats = (0..columns.len())
            .map(|i| self.types.common(i).and_then(number_format))
            .collect();
        self.writer.set_columns(header, formats);
        self.width = columns.len();
        Ok(())
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        self.cells.resize(self.width, String::new());
        self.cells.iter_mut().for_each(String::clear);
        self.kinds.resize(self.width, ColumnType::Text);
        for (column, text, answered) in row.cells_answered() {
            if let (Some(cell), Some(kind)) =
                (self.cells.get_mut(column), self.kinds.get_mut(column))
            {
                cell.push_str(text);
                *kind = self.types.of(column, answered);
            }
        }
        self.writer.push(&self.cells, &self.kinds)?;
        self.rows += 1;
        if self.writer.is_full() {
            block(self.writer.flush())?;
        }
        Ok(())
    }

    /// A report's own types for its columns, before its first row (a column's number format
    /// follows the cells written into it).
    fn report_types(&mut self, types: &[ColumnType]) {
        if self.rows == 0 {
            self.types.complete(types);
        }
    }

    /// What was written: the URL (left for the summary), and the bytes and SHA-256 of the
    /// values requests' bodies.
    fn commit(mut self: Box<Self>) -> Result<Written, SinkError> {
        let url = block(self.writer.commit())?;
        self.committed = true;
        let _ = self.url.set(url);
        Ok(Written {
            bytes: self.writer.sent,
            sha256: hex(&self.writer.hash.clone().finalize()),
            object: None,
            formula_cells: 0,
        })
    }
}

impl Drop for SheetSink {
    /// A sink dropped before its commit removes the new tab of a replace.
    fn drop(&mut self) {
        if !self.committed && !std::thread::panicking() {
            let writer = &mut self.writer;
            let _ = block(async {
                writer.abort().await;
                Ok(())
            });
        }
    }
}

/// Runs Sheets requests from the synchronous [`Sink`] calls (see [`super::block`]).
fn block<T>(
    work: impl std::future::Future<Output = Result<T, SheetError>>,
) -> Result<T, SheetError> {
    super::block(work, SheetError::NoRuntime)
}

/// A tab title as a range names it: quoted, quotes doubled.
fn quoted(title: &str) -> String {
    format!("'{}'", title.replace('\'', "''"))
}

fn tab_info(properties: &Value) -> Option<TabInfo> {
    let grid = &properties["gridProperties"];
    Some(TabInfo {
        id: properties["sheetId"].as_i64()?,
        title: properties["title"].as_str()?.to_owned(),
        cells: grid["rowCount"].as_u64().unwrap_or(0) * grid["columnCount"].as_u64().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_typed_by_their_column() {
        use ColumnType::*;
        assert_eq!(
            cell_value("123456789012345", Integer),
            json!(123456789012345i64)
        );
        assert_eq!(
            cell_value("100000136831429012345", Integer),
            json!("100000136831429012345")
        );
        assert_eq!(cell_value("00123", Text), json!("00123"));
        assert_eq!(cell_value("=SUM(A1)", Text), json!("=SUM(A1)"));
        assert_eq!(cell_value("2.5", Number), json!(2.5));
        assert_eq!(cell_value("true", Boolean), json!(true));
        assert_eq!(cell_value("1900-01-01", Date), json!(2.0));
        assert_eq!(cell_value("2024-03-15T12:00:00Z", DateTime), json!(45366.5));
        assert_eq!(
            cell_value("2024-03-15T14:00:00+02:00", DateTime),
            json!(45366.5)
        );
        assert_eq!(cell_value("soon", DateTime), json!("soon"));
    }

    #[test]
    fn a_column_of_dates_and_date_times_shows_date_times() {
        let mut format = None;
        widen(&mut format, ColumnType::Text);
        assert_eq!(format, None);
        widen(&mut format, ColumnType::Date);
        assert_eq!(format, Some("DATE"));
        widen(&mut format, ColumnType::DateTime);
        assert_eq!(format, Some("DATE_TIME"));
        widen(&mut format, ColumnType::Date);
        assert_eq!(format, Some("DATE_TIME"));
    }

    #[test]
    fn tab_titles_are_quoted_for_ranges() {
        assert_eq!(quoted("It's"), "'It''s'");
    }
}
