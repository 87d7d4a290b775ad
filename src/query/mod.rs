//! Query files: one TOML file is one saved query. [`parse`] turns the text into a [`Query`]
//! (syntax, keys and types); [`crate::plan`] then checks it against its Discovery document.

pub mod bigquery;
mod format;
mod load;
mod merge;
mod wire;

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use toml::Spanned;

use crate::records::{Column, ColumnSource, FieldPath};

pub use bigquery::{BigQueryTarget, LoadMode, TableRef};
pub use format::{Abilities, Format, OutputFormat, RecordText};
pub use load::{load_queries, query_files, LoadError};
pub use merge::{Lookback, Merge, MergeKeep};
pub use wire::{RequestLocation, SheetMode};

/// The keys a query file may have at its top level (kept in step with `wire::QueryFile`).
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "api",
    "version",
    "method",
    "discovery",
    "endpoint",
    "allow_writes",
    "params",
    "body",
    "records",
    "columns",
    "output",
    "format",
    "max_pages",
    "max_records",
    "subject",
    "for_each",
    "concurrency",
    "qps",
    "quota_cost",
    "max_units",
    "delimiter",
    "bom",
    "excel_safe",
    "null",
    "append",
    "header",
    "vars",
    "paginate",
    "explode",
    "where",
    "sheet",
    "bigquery",
    "incremental",
    "on_missing",
    "strict",
    "describe_tables",
    "merge_key",
    "merge_keep",
    "lookback",
];

/// The top-level keys whose strings are rendered as templates (of `columns`, only the
/// `value`s); a template anywhere else would be used with its braces, so it is an error.
pub const TEMPLATE_KEYS: &[&str] = &["params", "body", "output", "subject", "columns"];

/// A value and the line of the query file it was written on (1-based).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub line: Option<usize>,
}

/// One `[params]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub value: toml::Value,
    pub line: Option<usize>,
}

/// A saved query, checked for syntax, keys and types (not yet against Discovery).
#[derive(Debug, Clone)]
pub struct Query {
    /// `name`, or the file stem.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    pub api: String,
    pub version: String,
    pub method: Located<String>,
    /// A local Discovery document, resolved against the query file's directory.
    pub discovery: Option<PathBuf>,
    /// `endpoint`: the root URL (ending in `/`) this query's requests go to instead of the
    /// document's `rootUrl` (and over `GSCRAPE_ENDPOINT_*` and `[endpoints]`).
    pub endpoint: Option<Located<String>>,
    /// `allow_writes = true`: the method may change data in the account (an export only
    /// reads otherwise; see [`crate::discovery::Access`]).
    pub allow_writes: bool,
    pub params: Vec<Param>,
    pub body: Option<Located<Value>>,
    /// The line of each top-level key of the body, for messages about what is under it.
    pub body_lines: Vec<(String, usize)>,
    /// Keys above the first table that are no query key (`q = ...` above `[params]`): the
    /// plan says which table each belongs in, as only the method's document knows.
    pub stray: Vec<Param>,
    pub records: Option<Located<FieldPath>>,
    pub columns: Option<Vec<Located<Column>>>,
    /// Relative path of the CSV under the output directory; `None` for `output = false`.
    pub output: Option<PathBuf>,
    /// `format`: the output's format whatever its name says.
    pub format: Option<Format>,
    pub max_pages: Option<u64>,
    pub max_records: Option<u64>,
    /// The Workspace user a service account acts as (domain-wide delegation).
    pub subject: Option<String>,
    /// Run once per record of this other query (fan-out).
    pub for_each: Option<Located<String>>,
    /// In a fan-out below a fan-out: the queries above the parent, its parent first, up to
    /// the query that is no fan-out. Their records are read by their names too (filled in
    /// by [`load_queries`]; empty in a query parsed alone).
    pub ancestors: Vec<String>,
    /// At most this many request chains of this query at once (fan-out instances).
    pub concurrency: Option<std::num::NonZeroUsize>,
    /// At most this many requests a second to this query's API.
    pub qps: Option<Located<f64>>,
    /// Quota units one request costs, over Google's published figure and `[quota.costs]`.
    pub quota_cost: Option<u32>,
    /// The most quota units this query may spend in a run.
    pub max_units: Option<u64>,
    /// CSV options set by the query (the rest come from the run's flags).
    pub csv: CsvSettings,
    /// Template variables: the `[vars]` table, then `--var` overrides.
    pub vars: Located<serde_json::Map<String, Value>>,
    /// How the API pages, when the query says.
    pub paginate: Option<Located<Paginate>>,
    /// One CSV row per element of this nested array of each record.
    pub explode: Option<Located<FieldPath>>,
    /// `where`: only the records for which this expression is true are written.
    pub filter: Option<Located<String>>,
    /// `[sheet]`: the Google Sheet the rows are written to.
    pub sheet: Option<Located<SheetTarget>>,
    /// `[bigquery]`: the BigQuery table the rows are loaded into.
    pub bigquery: Option<Located<BigQueryTarget>>,
    /// `[incremental]`: templates read `{{ since }}`, the greatest `cursor` of the last
    /// successful run (or `initial`).
    pub incremental: Option<Located<Incremental>>,
    /// `on_missing`: what a fan-out does with a parent record whose item is gone (404, 410).
    pub on_missing: OnMissing,
    /// `strict = true`: a caveat of the report's response (sampled, thresholded, rows folded
    /// into "(other)", not final, ...) fails the query before anything is written.
    pub strict: bool,
    /// `describe_tables`: its CSV or TSV output listed in `datapackage.json` (`None`: as the
    /// run says, `--describe-tables`).
    pub describe_tables: Option<bool>,
    /// `merge_key` (and `merge_keep`): the output keeps one row per key.
    pub merge: Option<Located<Merge>>,
    /// `lookback`: how far before the cursor (or a backfill's last window) a run asks again.
    pub lookback: Option<Located<Lookback>>,
}

/// `on_missing`: a fan-out child's request answered 404 or 410 — its item deleted between the
/// parent's list and this request — fails the export (the default), or is skipped and listed
/// in the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnMissing {
    #[default]
    Fail,
    Skip,
}

impl OnMissing {
    /// `"fail"` or `"skip"`; `"skip"` only in a fan-out (`fans_out`): a query of its own has one
    /// request, and skipping it would replace its file with an empty one.
    fn parse(text: &str, fans_out: bool) -> Result<OnMissing, String> {
        match text {
            "fail" => Ok(OnMissing::Fail),
            "skip" if fans_out => Ok(OnMissing::Skip),
            "skip" => Err(
                "\"skip\" is for a fan-out query (for_each), one of whose many requests \
                 may find its item gone; a query of its own that gets 404 or 410 fails and keeps \
                 its previous file: remove the key"
                    .to_owned(),
            ),
            other => Err(format!(
                "{other:?} is not a choice: use \"fail\" (the default) or \"skip\""
            )),
        }
    }
}

/// `[incremental]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incremental {
    /// The record field whose values only grow (`modifiedTime`).
    pub cursor: FieldPath,
    /// `since` of the first run.
    pub initial: String,
}

impl TryFrom<wire::IncrementalTable> for Incremental {
    type Error = String;

    fn try_from(table: wire::IncrementalTable) -> Result<Self, String> {
        let cursor = FieldPath::parse(&table.cursor).map_err(|err| err.to_string())?;
        Ok(Incremental {
            cursor,
            initial: table.initial,
        })
    }
}

/// `[sheet]`, checked: which spreadsheet and tab, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetTarget {
    pub spreadsheet: Spreadsheet,
    /// The tab's title (default: the query name).
    pub tab: String,
    pub mode: SheetMode,
}

/// The spreadsheet of `[sheet]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spreadsheet {
    /// One made by the run, titled after the query.
    New,
    Id(String),
}

impl Spreadsheet {
    /// `"new"`, an id, or a `https://docs.google.com/spreadsheets/d/ID/...` URL (its id).
    pub fn parse(text: &str) -> Result<Spreadsheet, String> {
        let text = text.trim();
        if text == "new" {
            return Ok(Spreadsheet::New);
        }
        let id = match text.split_once("/spreadsheets/d/") {
            Some((site, rest)) if site.ends_with("docs.google.com") => {
                rest.split(['/', '?', '#']).next().unwrap_or_default()
            }
            Some(_) => "",
            None if text.contains('/') => "",
            None => text,
        };
        let usable = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        match usable {
            true => Ok(Spreadsheet::Id(id.to_owned())),
            false => Err(format!(
                "{text:?} is not a spreadsheet: give its id, its https://docs.google.com/spreadsheets/d/ID URL, or \"new\""
            )),
        }
    }
}

/// `[paginate]`, checked: how an API gscrape does not know pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paginate {
    pub style: PaginateStyle,
    /// Where the request fields go; unset: a query parameter of that name if the method has
    /// one, else the body.
    pub location: Option<RequestLocation>,
}

/// A `[paginate]` style with its fields, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaginateStyle {
    None,
    /// The request field of the token, and the response path of the next one.
    Token {
        token: String,
        next: FieldPath,
    },
    Offset {
        offset: String,
        limit: String,
        first: u64,
        page_size: u64,
        end: crate::api::OffsetEnd,
    },
    /// The request field of the page number, its first value, and the page-size field with
    /// the size sent when the query sets none.
    Page {
        page: String,
        first: u64,
        limit: Option<(String, u64)>,
    },
}

/// The page size of a `[paginate]` table that sets none.
const PAGINATE_PAGE_SIZE: u64 = 100;

impl TryFrom<wire::PaginateTable> for Paginate {
    type Error = String;

    /// Checks what the style needs and parses the response paths.
    fn try_from(table: wire::PaginateTable) -> Result<Self, String> {
        use wire::PaginateTable as T;
        let response_path = |text: &str| FieldPath::parse(text).map_err(|e| e.to_string());
        let page_size =
            |size: Option<std::num::NonZeroU64>| size.map_or(PAGINATE_PAGE_SIZE, |n| n.get());
        let (style, location) = match table {
            T::None {} => (PaginateStyle::None, None),
            T::Token {
                token,
                next,
                location,
            } => {
                let next = response_path(next.as_deref().unwrap_or("nextPageToken"))
                    .map_err(|message| format!("next: {message}"))?;
                let token = token.unwrap_or_else(|| "pageToken".to_owned());
                (PaginateStyle::Token { token, next }, location)
            }
            T::Offset {
                offset,
                limit,
                first,
                page_size: size,
                total,
                next_offset,
                location,
            } => {
                let (Some(offset), Some(limit)) = (offset, limit) else {
                    return Err("the offset style needs `offset` and `limit` (the request fields of the offset and the page size)".to_owned());
                };
                let end = match (&total, &next_offset) {
                    (Some(total), _) => crate::api::OffsetEnd::Total(response_path(total)?),
                    (None, Some(next)) => crate::api::OffsetEnd::NextOffset(response_path(next)?),
                    (None, None) => crate::api::OffsetEnd::ShortPage,
                };
                let style = PaginateStyle::Offset {
                    offset,
                    limit,
                    first: first.unwrap_or(0),
                    page_size: page_size(size),
                    end,
                };
                (style, location)
            }
            T::Page {
                page,
                limit,
                first,
                page_size: size,
                location,
            } => {
                let Some(page) = page else {
                    return Err(
                        "the page style needs `page` (the request field of the page number)"
                            .to_owned(),
                    );
                };
                let style = PaginateStyle::Page {
                    page,
                    first: first.unwrap_or(1),
                    limit: limit.map(|limit| (limit, page_size(size))),
                };
                (style, location)
            }
        };
        Ok(Paginate { style, location })
    }
}

/// CSV options as a query or the command line sets them; unset ones fall back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvSettings {
    pub delimiter: Option<u8>,
    pub bom: Option<bool>,
    pub excel_safe: Option<bool>,
    /// The text of a missing or null field.
    pub null: Option<String>,
    pub append: Option<bool>,
    pub header: Option<bool>,
}

impl CsvSettings {
    /// These settings, with `defaults` where unset.
    pub fn or(&self, defaults: &CsvSettings) -> CsvSettings {
        CsvSettings {
            delimiter: self.delimiter.or(defaults.delimiter),
            bom: self.bom.or(defaults.bom),
            excel_safe: self.excel_safe.or(defaults.excel_safe),
            null: self.null.clone().or_else(|| defaults.null.clone()),
            append: self.append.or(defaults.append),
            header: self.header.or(defaults.header),
        }
    }
}

/// The CSV options a query or the command line can set, by key name (the flags are
/// `--delimiter`, `--bom`, `--excel-safe`, `--null`, `--append`, `--no-header`).
pub const CSV_OPTION_KEYS: [&str; 6] =
    ["delimiter", "bom", "excel_safe", "null", "append", "header"];

impl CsvSettings {
    /// The keys of the options set here that an output of `format` (`None`: no file, only a
    /// sheet or nothing) would not use, so that none is ignored in silence. CSV takes them all
    /// (a compressed one is not appended to); TSV too, its delimiter being a tab; NDJSON none;
    /// xlsx only `excel_safe`, which its cells fulfil (text is never a formula there).
    pub fn unfit_for(&self, format: Option<OutputFormat>) -> Vec<&'static str> {
        self.keys_set()
            .into_iter()
            .filter(|key| !fits(key, self, format))
            .collect()
    }

    /// These settings without the keys an output of `format` would not use.
    pub fn fit_for(&self, format: Option<OutputFormat>) -> CsvSettings {
        let unfit = self.unfit_for(format);
        let keep = |key| !unfit.contains(&key);
        CsvSettings {
            delimiter: self.delimiter.filter(|_| keep("delimiter")),
            bom: self.bom.filter(|_| keep("bom")),
            excel_safe: self.excel_safe.filter(|_| keep("excel_safe")),
            null: self.null.clone().filter(|_| keep("null")),
            append: self.append.filter(|_| keep("append")),
            header: self.header.filter(|_| keep("header")),
        }
    }

    /// The keys of the options set here.
    pub fn keys_set(&self) -> Vec<&'static str> {
        let set = [
            self.delimiter.is_some(),
            self.bom.is_some(),
            self.excel_safe.is_some(),
            self.null.is_some(),
            self.append.is_some(),
            self.header.is_some(),
        ];
        CSV_OPTION_KEYS
            .into_iter()
            .zip(set)
            .filter_map(|(key, set)| set.then_some(key))
            .collect()
    }
}

/// Whether an output of `format` uses the option `key` as `csv` sets it.
fn fits(key: &str, csv: &CsvSettings, format: Option<OutputFormat>) -> bool {
    let Some(format) = format else { return false };
    let can = format.format.can();
    match key {
        "append" if can.appendable => !format.gzip || csv.append == Some(false),
        "delimiter" if can.delimiter.is_some() => csv.delimiter == can.delimiter,
        _ if can.csv_options => true,
        "excel_safe" if can.excel_safe => true,
        // A `false` asks for what the format does anyway.
        "append" | "bom" | "excel_safe" => {
            let value = match key {
                "append" => csv.append,
                "bom" => csv.bom,
                _ => csv.excel_safe,
            };
            value == Some(false)
        }
        _ => false,
    }
}

/// A delimiter is one ASCII character other than a quote or a line break.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text.as_bytes() {
        [byte] if byte.is_ascii() && !matches!(byte, b'"' | b'\r' | b'\n') => Ok(*byte),
        _ => Err(format!(
            "{text:?} cannot be a delimiter: use one ASCII character such as \",\", \";\" or \"\\t\" (not a quote or line break)"
        )),
    }
}

/// A problem in a query file: where it is and what to do about it. Displays as one line:
/// `queries/x.toml:4: params.pageSize: expected an integer, found a string`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl Problem {
    /// A problem of the run as a whole (its flags), not of one file: said as `message` alone.
    pub fn general(message: impl Into<String>) -> Problem {
        Problem {
            file: PathBuf::new(),
            line: None,
            key: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.as_os_str().is_empty() {
            return f.write_str(&self.message);
        }
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Query {
    /// The scopes gscrape's own destinations of this query write with (`[sheet]`,
    /// `[bigquery]`, a `gs://` output), asked for only when a query has one.
    pub fn destination_scopes(&self) -> Vec<&'static str> {
        let sheet = self
            .sheet
            .as_ref()
            .map(|_| crate::auth::scopes::SHEETS_WRITE);
        let bigquery = (self.bigquery.as_ref()).map(|_| crate::auth::scopes::BIGQUERY_WRITE);
        let object = (self.output.as_ref())
            .filter(|o| crate::gcs::is_gs(&o.to_string_lossy()))
            .map(|_| crate::gcs::SCOPE);
        sheet.into_iter().chain(bigquery).chain(object).collect()
    }

    /// A problem in this query's file.
    pub fn problem(
        &self,
        line: Option<usize>,
        key: impl Into<Option<String>>,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            file: self.file.clone(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Parses the text of a query file. Every problem found is returned, not just the first.
pub fn parse(file: &Path, text: &str) -> Result<Query, Vec<Problem>> {
    let src = Source::new(file, text);
    // Unknown top-level keys are set aside (all of them), and the rest read without them.
    let (stray, without) = stray_keys(text);
    let stray_problems = || -> Vec<Problem> {
        (stray.iter())
            .map(|p| src.problem(p.line, &p.name, unknown_key_message(&p.name)))
            .collect()
    };
    let raw: wire::QueryFile =
        toml::from_str(without.as_deref().unwrap_or(text)).map_err(|err| {
            let mut problems = stray_problems();
            problems.push(src.toml_problem(&err));
            problems
        })?;
    // Checked in the order `validate` lists the problems.
    let mut found = Problems::default();
    found.0.extend(stray_problems());
    let name = query_name(raw.name.as_ref(), file);
    found.keep(check_name(&name, raw.name.as_ref(), &src));
    let records = found.keep(src.check("records", raw.records, field_path));
    let columns = found.keep(check_columns(raw.columns, &src));
    let destination = raw.sheet.is_some() || raw.bigquery.is_some();
    let output = found.keep(check_output(raw.output, destination, &name, &src));
    let format = found.keep(src.check("format", raw.format, format_named));
    let explode = found.keep(src.check("explode", raw.explode, explode_path));
    let vars = found.keep(check_vars(raw.vars, &src));
    let delimiter = found.keep(src.check("delimiter", raw.delimiter, |d| parse_delimiter(&d)));
    let qps = found.keep(src.check("qps", raw.qps, requests_a_second));
    let paginate = found.keep(src.check("paginate", raw.paginate, Paginate::try_from));
    let sheet = found.keep(check_sheet(raw.sheet, &name, &src));
    let merge = found.keep(merge::check_merge(raw.merge_key, raw.merge_keep, &src));
    let bigquery = found.keep(bigquery::check(raw.bigquery, merge.is_some(), &src));
    let endpoint = found.keep(src.check("endpoint", raw.endpoint, |root| {
        crate::endpoints::check_root(&root)
    }));
    found.keep(unrendered_templates(&src));
    found.keep(placeholders(&src));
    let (incremental, inner_lookback) = match raw.incremental {
        Some(table) => {
            let span = table.span();
            let mut table = table.into_inner();
            let inner = table.lookback.take();
            (Some(Spanned::new(span, table)), inner)
        }
        None => (None, None),
    };
    let lookback = found.keep(merge::check_lookback(raw.lookback, inner_lookback, &src));
    let incremental =
        found.keep(src.check("incremental.cursor", incremental, Incremental::try_from));
    let fans_out = raw.for_each.is_some();
    let on_missing = found.keep(src.check("on_missing", raw.on_missing, |text| {
        OnMissing::parse(&text, fans_out)
    }));
    // Alone, the unknown keys are said by the plan, which knows where each belongs.
    if found.0.len() == stray.len() {
        found.0.clear();
    }
    found.finish()?;
    let body_lines = body_lines(text);
    Ok(Query {
        name,
        file: file.to_owned(),
        api: raw.api.into_inner(),
        version: raw.version.into_inner(),
        method: src.located(raw.method),
        discovery: raw
            .discovery
            .map(|d| file.parent().unwrap_or(Path::new(".")).join(d.into_inner())),
        endpoint,
        allow_writes: raw.allow_writes.unwrap_or(false),
        params: params(raw.params, &src),
        body: raw
            .body
            .map(|body| src.located(body).map(|t| Value::Object(table_to_json(&t)))),
        body_lines,
        stray,
        records,
        columns,
        output,
        format: format.map(|f| f.value),
        max_pages: raw.max_pages.map(|n| n.into_inner().get()),
        max_records: raw.max_records.map(|n| n.into_inner().get()),
        subject: raw.subject.map(Spanned::into_inner),
        for_each: raw.for_each.map(|f| src.located(f)),
        ancestors: Vec::new(),
        concurrency: raw.concurrency.map(Spanned::into_inner),
        qps,
        quota_cost: raw.quota_cost.map(|n| n.into_inner().get()),
        max_units: raw.max_units.map(|n| n.into_inner().get()),
        csv: CsvSettings {
            delimiter: delimiter.map(|d| d.value),
            bom: raw.bom,
            excel_safe: raw.excel_safe,
            null: raw.null,
            append: raw.append,
            header: raw.header,
        },
        vars,
        paginate,
        explode,
        filter: raw.filter.map(|f| src.located(f)),
        sheet,
        bigquery,
        incremental,
        on_missing: on_missing.map(|o| o.value).unwrap_or_default(),
        strict: raw.strict.unwrap_or(false),
        describe_tables: raw.describe_tables,
        merge,
        lookback,
    })
}

/// The query file being parsed: what a problem's line and key are found from.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
    lines: LineIndex,
}

impl<'a> Source<'a> {
    fn new(file: &'a Path, text: &'a str) -> Self {
        let lines = LineIndex::new(text);
        Source { file, text, lines }
    }

    fn at(&self, span: std::ops::Range<usize>) -> Option<usize> {
        Some(self.lines.line(span.start))
    }

    fn located<T>(&self, spanned: Spanned<T>) -> Located<T> {
        Located {
            line: self.at(spanned.span()),
            value: spanned.into_inner(),
        }
    }

    fn problem(&self, line: Option<usize>, key: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.to_owned(),
            line,
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// A key's value through `convert`, whose one problem is said at the key's line.
    fn check<W, T>(
        &self,
        key: &str,
        value: Option<Spanned<W>>,
        convert: impl FnOnce(W) -> Result<T, String>,
    ) -> Result<Option<Located<T>>, Vec<Problem>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let line = self.at(value.span());
        match convert(value.into_inner()) {
            Ok(value) => Ok(Some(Located { value, line })),
            Err(message) => Err(vec![self.problem(line, key, message)]),
        }
    }

    /// The file does not deserialize: one problem, at the key serde stopped on.
    fn toml_problem(&self, err: &toml::de::Error) -> Problem {
        // A missing top-level key has no place of its own (its span is the whole file).
        let top_level_missing = ["api", "version", "method"]
            .iter()
            .any(|k| err.message() == format!("missing field `{k}`"));
        let span = err.span().filter(|_| !top_level_missing);
        Problem {
            file: self.file.to_owned(),
            line: span.as_ref().map(|s| self.lines.line(s.start)),
            key: span
                .as_ref()
                .and_then(|s| self.lines.key_at(self.text, s.start)),
            message: explain_toml_error(err.message()),
        }
    }
}

/// The problems of every check so far, in the order the checks ran.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    /// A checked value, or its default once its problems are kept: with any, `parse` returns
    /// them and builds no `Query`, so the default is never used.
    fn keep<T: Default>(&mut self, checked: Result<T, Vec<Problem>>) -> T {
        checked.unwrap_or_else(|problems| {
            self.0.extend(problems);
            T::default()
        })
    }

    fn finish(self) -> Result<(), Vec<Problem>> {
        all_or_nothing((), self.0)
    }
}

/// `value` if no problem was found.
fn all_or_nothing<T>(value: T, problems: Vec<Problem>) -> Result<T, Vec<Problem>> {
    match problems.is_empty() {
        true => Ok(value),
        false => Err(problems),
    }
}

impl<T> Located<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Located<U> {
        Located {
            value: f(self.value),
            line: self.line,
        }
    }
}

/// `name`, else the file's stem.
fn query_name(name: Option<&Spanned<String>>, file: &Path) -> String {
    match name {
        Some(name) => name.get_ref().clone(),
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// The name is the default output file and tab title, so it must be usable as one (checked
/// even when it comes from the file's stem).
fn check_name(
    name: &str,
    written: Option<&Spanned<String>>,
    src: &Source,
) -> Result<(), Vec<Problem>> {
    if name.is_empty()
        || name.contains(['/', '\\'])
        || name.trim() != name
        || name.chars().any(char::is_control)
    {
        return Err(vec![src.problem(
            written.and_then(|n| src.at(n.span())),
            "name",
            format!("{name:?} is not a usable query name: use letters, digits, `_`, `-` or `.`"),
        )]);
    }
    Ok(())
}

/// `[params]`, in the order written, each at its line.
fn params(
    params: indexmap::IndexMap<Spanned<String>, Spanned<toml::Value>>,
    src: &Source,
) -> Vec<Param> {
    params
        .into_iter()
        .map(|(key, value)| Param {
            line: src.at(key.span()),
            name: key.into_inner(),
            value: value.into_inner(),
        })
        .collect()
}

fn field_path(text: String) -> Result<FieldPath, String> {
    FieldPath::parse(&text).map_err(|err| err.to_string())
}

/// `columns`: each entry checked at its line, then the list's length.
fn check_columns(
    entries: Option<Vec<Spanned<wire::ColumnEntry>>>,
    src: &Source,
) -> Result<Option<Vec<Located<Column>>>, Vec<Problem>> {
    let Some(entries) = entries else {
        return Ok(None);
    };
    let count = entries.len();
    let mut problems = Vec::new();
    let mut columns = Vec::new();
    for entry in entries {
        let line = src.at(entry.span());
        match Column::try_from(entry.into_inner()) {
            Ok(value) => columns.push(Located { value, line }),
            Err(message) => problems.push(src.problem(line, "columns", message)),
        }
    }
    if count > MAX_COLUMNS {
        problems.push(src.problem(
            None,
            "columns",
            format!("lists {count} columns; at most {MAX_COLUMNS} are allowed"),
        ));
    }
    if count == 0 {
        problems.push(src.problem(
            None,
            "columns",
            "is empty: list at least one column, or remove the key for the default columns",
        ));
    }
    all_or_nothing(Some(columns), problems)
}

impl TryFrom<wire::ColumnEntry> for Column {
    type Error = String;

    /// A `value` is a template, rendered later; the paths are parsed, and head the column
    /// unless it has a `name`.
    fn try_from(entry: wire::ColumnEntry) -> Result<Self, String> {
        if let Some(value) = entry.value {
            return Ok(Column {
                header: entry.name.unwrap_or_default(),
                source: ColumnSource::Template(value),
            });
        }
        let texts = entry.path.unwrap_or_default();
        let mut paths = texts
            .iter()
            .map(|text| FieldPath::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| err.to_string())?;
        let header = entry.name.unwrap_or_else(|| texts.join("|"));
        let source = match paths.len() {
            1 => ColumnSource::Path(paths.remove(0)),
            _ => ColumnSource::FirstOf(paths),
        };
        Ok(Column { header, source })
    }
}

/// `output`: a file under the output directory, `NAME.csv` when not named; none for
/// `output = false`, or when a `[sheet]` or `[bigquery]` takes the rows and `output` is not
/// set.
fn check_output(
    output: Option<Spanned<wire::OutputSetting>>,
    sheet: bool,
    name: &str,
    src: &Source,
) -> Result<Option<PathBuf>, Vec<Problem>> {
    let default = || Ok(Some(PathBuf::from(format!("{name}.csv"))));
    let Some(output) = output else {
        return if sheet { Ok(None) } else { default() };
    };
    let line = src.at(output.span());
    let file = match output.into_inner() {
        wire::OutputSetting::Enabled(true) => return default(),
        wire::OutputSetting::Enabled(false) => return Ok(None),
        wire::OutputSetting::Name(file) => file,
    };
    let path = PathBuf::from(&file);
    let message = if file.chars().any(char::is_control) {
        format!("{file:?} holds a control character; name the file without one")
    } else if !is_plain_relative(&path) {
        format!(
            "{file:?} must be a relative file name under the output directory (no `..`, not absolute)"
        )
    } else {
        return Ok(Some(path));
    };
    Err(vec![src.problem(line, "output", message)])
}

fn format_named(name: String) -> Result<Format, String> {
    Format::parse(&name).ok_or_else(|| {
        format!(
            "{name:?} is not a format gscrape writes: use {}",
            Format::NAMES
        )
    })
}

/// `explode`: an array named by field names alone.
fn explode_path(text: String) -> Result<FieldPath, String> {
    let path = field_path(text)?;
    match path
        .segments()
        .iter()
        .all(|s| matches!(s, crate::records::Segment::Key(_)))
    {
        true => Ok(path),
        false => {
            Err("names an array by its field names (`payload.headers`), without [n]".to_owned())
        }
    }
}

/// `[vars]` (empty when absent): no variable may take a built-in template name.
fn check_vars(
    vars: Option<Spanned<toml::Table>>,
    src: &Source,
) -> Result<Located<serde_json::Map<String, Value>>, Vec<Problem>> {
    let vars = match vars {
        Some(vars) => src.located(vars).map(|t| table_to_json(&t)),
        None => Located {
            value: serde_json::Map::new(),
            line: None,
        },
    };
    let problems = vars
        .value
        .keys()
        .filter(|name| crate::template::BUILTINS.contains(&name.as_str()))
        .map(|name| {
            src.problem(
                vars.line,
                "vars",
                format!("`{name}` is a built-in template name; call the variable something else"),
            )
        })
        .collect();
    all_or_nothing(vars, problems)
}

fn requests_a_second(qps: f64) -> Result<f64, String> {
    match qps > 0.0 && qps.is_finite() {
        true => Ok(qps),
        false => Err(
            "must be a number of requests a second above 0, e.g. `qps = 5` or `qps = 0.5`"
                .to_owned(),
        ),
    }
}

/// `[sheet]`: the spreadsheet, then the tab (the query's name unless set), each problem at its
/// own key.
fn check_sheet(
    sheet: Option<Spanned<wire::SheetTable>>,
    name: &str,
    src: &Source,
) -> Result<Option<Located<SheetTarget>>, Vec<Problem>> {
    let Some(sheet) = sheet else {
        return Ok(None);
    };
    let Located { value: table, line } = src.located(sheet);
    let spreadsheet = Spreadsheet::parse(table.spreadsheet.get_ref()).map_err(|message| {
        let line = src.at(table.spreadsheet.span());
        vec![src.problem(line, "sheet.spreadsheet", message)]
    })?;
    let tab = table
        .tab
        .as_ref()
        .map_or(name.to_owned(), |t| t.get_ref().clone());
    if tab.trim().is_empty() || tab.chars().any(char::is_control) || tab.chars().count() > 90 {
        let line = table.tab.as_ref().and_then(|t| src.at(t.span())).or(line);
        return Err(vec![src.problem(
            line,
            "sheet.tab",
            format!("{tab:?} cannot be a tab title: use 1 to 90 characters, no control characters"),
        )]);
    }
    let value = SheetTarget {
        spreadsheet,
        tab,
        mode: table.mode,
    };
    Ok(Some(Located { value, line }))
}

/// A problem for each top-level key whose value holds `{{`/`{%` where gscrape does not render
/// templates (`api = "{{ x }}"`, a `[vars]` default, a column `path` or `name`).
fn unrendered_templates(src: &Source) -> Result<(), Vec<Problem>> {
    type TopLevel = indexmap::IndexMap<String, toml::Spanned<toml::Value>>;
    let text = src.text;
    let Ok(top) = toml::from_str::<TopLevel>(text) else {
        return Ok(());
    };
    let mut found = Vec::new();
    for (key, value) in &top {
        let rendered = TEMPLATE_KEYS.contains(&key.as_str());
        let mut strings = Vec::new();
        match value.get_ref() {
            // Column `value`s are rendered; their `name`s and `path`s are not.
            toml::Value::Array(columns) if key == "columns" => {
                for column in columns {
                    match column {
                        toml::Value::Table(table) => table
                            .iter()
                            .filter(|(field, _)| *field != "value")
                            .for_each(|(_, v)| strings_of(v, &mut strings)),
                        other => strings_of(other, &mut strings),
                    }
                }
            }
            _ if rendered => {}
            other => strings_of(other, &mut strings),
        }
        if let Some(template) = strings
            .into_iter()
            .find(|s| crate::template::is_template(s))
        {
            // The line of the string itself, inside a table (unless escapes hide it).
            let start = value.span().start;
            let at = text
                .get(start..)
                .and_then(|rest| rest.find(template))
                .map_or(start, |offset| start + offset);
            found.push(src.problem(
                Some(src.lines.line(at)),
                key,
                format!(
                    "{template:?} is used as written here, braces and all: templates are \
                     rendered only in [params], [body], `output`, `subject` and column `value`s; \
                     write the value out"
                ),
            ));
        }
    }
    all_or_nothing((), found)
}

/// What `gscrape new` writes for a value only the user knows (`calendarId = "REPLACE_ME"`):
/// a query file that still holds it is refused. Kept here, by the rule that refuses it, so that
/// query files need nothing of the scaffold that writes them.
pub const PLACEHOLDER: &str = "REPLACE_ME";

/// A problem for each value still holding the placeholder `gscrape new` writes for what only
/// the user knows: run as is, it would be sent to Google.
fn placeholders(src: &Source) -> Result<(), Vec<Problem>> {
    type TopLevel = indexmap::IndexMap<String, toml::Spanned<toml::Value>>;
    let text = src.text;
    if !text.contains(PLACEHOLDER) {
        return Ok(());
    }
    let Ok(top) = toml::from_str::<TopLevel>(text) else {
        return Ok(());
    };
    let mut found = Vec::new();
    // A `[vars]` value may be set by `--var`: the run checks it (`placeholder_vars`).
    for (key, value) in top.iter().filter(|(key, _)| *key != "vars") {
        // A table's entries are named (`params.calendarId`).
        let entries: Vec<(String, &toml::Value)> = match value.get_ref() {
            toml::Value::Table(table) => table
                .iter()
                .map(|(name, v)| (format!("{key}.{name}"), v))
                .collect(),
            other => vec![(key.clone(), other)],
        };
        for (name, value) in entries {
            let mut strings = Vec::new();
            strings_of(value, &mut strings);
            if strings.iter().any(|s| s.contains(PLACEHOLDER)) {
                let line = text
                    .get(top[key].span().start..)
                    .and_then(|rest| {
                        let entry = name.rsplit('.').next().unwrap_or(&name);
                        rest.lines()
                            .position(|l| l.contains(PLACEHOLDER) && l.contains(entry))
                    })
                    .map(|offset| src.lines.line(top[key].span().start) + offset);
                found.push(src.problem(
                    line,
                    &name,
                    format!(
                        "still {PLACEHOLDER:?}, the placeholder `gscrape new` wrote: put the value in"
                    ),
                ));
            }
        }
    }
    all_or_nothing((), found)
}

/// A problem for each `[vars]` value still holding the placeholder that no `--var` (`set`)
/// replaces: a shipped example needs the user's own id, and would otherwise send ours.
pub fn placeholder_vars(query: &Query, set: &[(String, String)]) -> Vec<Problem> {
    query
        .vars
        .value
        .iter()
        .filter(|(name, value)| {
            value.as_str().is_some_and(|v| v.contains(PLACEHOLDER))
                && !set.iter().any(|(given, _)| given == *name)
        })
        .map(|(name, _)| {
            query.problem(
                query.vars.line,
                Some(format!("vars.{name}")),
                format!("still {PLACEHOLDER:?}: put your value in, or run with --var {name}=VALUE"),
            )
        })
        .collect()
}

/// Every string inside a TOML value.
fn strings_of<'a>(value: &'a toml::Value, out: &mut Vec<&'a str>) {
    match value {
        toml::Value::String(s) => out.push(s),
        toml::Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        toml::Value::Table(table) => table.values().for_each(|v| strings_of(v, out)),
        _ => {}
    }
}

pub fn is_plain_relative(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_))) && path.components().count() > 0
}

/// The most columns a query may list (as many as default columns may be).
pub const MAX_COLUMNS: usize = crate::discovery::schema::MAX_DEFAULT_COLUMNS;

fn table_to_json(table: &toml::Table) -> serde_json::Map<String, Value> {
    table
        .iter()
        .map(|(k, v)| (k.clone(), toml_to_json(v)))
        .collect()
}

/// TOML to JSON, with dates and times as their TOML text.
pub fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(table_to_json(table)),
    }
}

/// The TOML parser's message on one line; an unknown key gets the nearest known one as a hint.
fn explain_toml_error(message: &str) -> String {
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(key) = message.strip_prefix("missing field `") {
        let key = key.trim_end_matches('`');
        return match key {
            "api" | "version" | "method" => format!(
                "missing required key `{key}` (every query names `api`, `version` and `method`)"
            ),
            _ => format!("missing required key `{key}`"),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((unknown, expected)) = rest.split_once("`, expected ") {
            let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            return format!("`{unknown}` is not one of: {}", allowed.join(", "));
        }
    }
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((unknown, expected)) = rest.split_once("`, expected one of ") else {
        return message;
    };
    let known: Vec<&str> = expected.split(", ").map(|k| k.trim_matches('`')).collect();
    let hint = match crate::util::nearest(unknown, known.iter().copied()).first() {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("known keys: {}", known.join(", ")),
    };
    format!("unknown key `{unknown}`; {hint}")
}

/// The message for a top-level key that is no query key, when nothing better is known.
pub fn unknown_key_message(key: &str) -> String {
    match crate::util::nearest(key, TOP_LEVEL_KEYS.iter().copied()).first() {
        Some(near) => format!(
            "unknown key `{key}`; did you mean `{near}`? (a parameter goes under [params], \
             a body field under [body])"
        ),
        None => format!(
            "unknown key `{key}` (a parameter goes under [params], a body field under [body])"
        ),
    }
}

/// The message for a top-level key known to be no key of another table either.
pub fn unknown_top_level_key(key: &str) -> String {
    match crate::util::nearest(key, TOP_LEVEL_KEYS.iter().copied()).first() {
        Some(near) => format!("unknown key `{key}`; did you mean `{near}`?"),
        None => format!(
            "unknown key `{key}`; known keys: {}",
            TOP_LEVEL_KEYS.join(", ")
        ),
    }
}

/// The top-level keys that are no query key, each at its line, and the text with them
/// blanked out (same offsets and lines), if there are any. A text that does not parse has
/// none here (its syntax error is said instead).
fn stray_keys(text: &str) -> (Vec<Param>, Option<String>) {
    type Top = indexmap::IndexMap<Spanned<String>, Spanned<toml::Value>>;
    let Ok(top) = toml::from_str::<Top>(text) else {
        return (Vec::new(), None);
    };
    let lines = LineIndex::new(text);
    let mut stray = Vec::new();
    let mut blanked = text.as_bytes().to_vec();
    for (key, value) in top {
        if TOP_LEVEL_KEYS.contains(&key.get_ref().as_str()) {
            continue;
        }
        let start = key.span().start.min(value.span().start);
        let end = key.span().end.max(value.span().end).min(blanked.len());
        for byte in &mut blanked[start..end] {
            if *byte != b'\n' && *byte != b'\r' {
                *byte = b' ';
            }
        }
        stray.push(Param {
            line: Some(lines.line(key.span().start)),
            name: key.into_inner(),
            value: value.into_inner(),
        });
    }
    match stray.is_empty() {
        true => (stray, None),
        // Whole characters are blanked (a multi-byte one byte by byte, each a space).
        false => (stray, String::from_utf8(blanked).ok()),
    }
}

/// The line of each top-level key of `[body]` (written `key = ...` under `[body]`, or as a
/// `[body.key]` / `[[body.key]]` table).
fn body_lines(text: &str) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    let mut in_body = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            let header = line.trim_matches(|c| c == '[' || c == ']').trim();
            in_body = header == "body";
            if let Some(rest) = header.strip_prefix("body.") {
                let key = rest
                    .split('.')
                    .next()
                    .unwrap_or(rest)
                    .trim()
                    .trim_matches('"');
                if !out.iter().any(|(k, _)| k == key) {
                    out.push((key.to_owned(), i + 1));
                }
            }
            continue;
        }
        if !in_body {
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key
                .split('.')
                .next()
                .unwrap_or(key)
                .trim()
                .trim_matches('"');
            if !key.is_empty() && !key.starts_with('#') && !out.iter().any(|(k, _)| k == key) {
                out.push((key.to_owned(), i + 1));
            }
        }
    }
    out
}

/// Byte offset → line number, and the key written on a line.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    /// `key` for a line `key = value`, to name the key in a type error; `table` for a line
    /// `[table]` (an error in the table as a whole, such as `[paginate]`'s keys).
    fn key_at(&self, text: &str, offset: usize) -> Option<String> {
        let start = self.starts[self.line(offset) - 1];
        let line = text[start..].lines().next()?;
        if let Some(table) = line
            .trim()
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
        {
            let table = table.trim();
            return (!table.is_empty() && !table.starts_with('[')).then(|| table.to_owned());
        }
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Query, Vec<Problem>> {
        parse(Path::new("q/files.toml"), text)
    }

    #[test]
    fn minimal_query_gets_defaults() {
        let q = parse_str("api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n")
            .unwrap();
        assert_eq!(q.name, "files");
        assert_eq!(q.output, Some(PathBuf::from("files.csv")));
        assert_eq!(q.method.line, Some(3));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        // Alone, unknown keys are kept for the plan (which knows the method's parameters).
        let query =
            parse_str("api = \"drive\"\nversion = \"v3\"\nmethod = \"m\"\nmax_page = 3\nq = 1\n")
                .unwrap();
        let stray: Vec<_> = query
            .stray
            .iter()
            .map(|p| (p.name.as_str(), p.line))
            .collect();
        assert_eq!(stray, [("max_page", Some(4)), ("q", Some(5))]);
        // With another problem, each is said with both tables named.
        let err = parse_str(
            "api = \"drive\"\nversion = \"v3\"\nmethod = \"m\"\nmax_page = 3\nq = 1\nqps = -1\n",
        )
        .unwrap_err();
        let text: Vec<String> = err.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            text[0],
            "q/files.toml:4: max_page: unknown key `max_page`; did you mean `max_pages`? \
             (a parameter goes under [params], a body field under [body])"
        );
        assert_eq!(text.len(), 3, "{text:?}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err =
            parse_str("api = \"drive\"\nversion = \"v3\"\nmethod = \"m\"\nmax_pages = \"x\"\n")
                .unwrap_err();
        assert_eq!(err[0].line, Some(4));
        assert_eq!(err[0].key.as_deref(), Some("max_pages"));
    }

    /// `[paginate]` is typed by the wire layer: a style or key it does not know is an error at
    /// its line, a style's missing field an error at the table, and plan gets typed values.
    #[test]
    fn a_paginate_table_is_typed_by_its_style() {
        let head = "api = \"a\"\nversion = \"v\"\nmethod = \"m\"\n[paginate]\n";
        let problem =
            |table: &str| parse_str(&format!("{head}{table}")).unwrap_err()[0].to_string();
        assert_eq!(
            problem("style = \"tokn\"\n"),
            "q/files.toml:5: style: `tokn` is not one of: token, offset, page, none"
        );
        assert_eq!(
            problem("style = \"token\"\noffset = \"o\"\n"),
            "q/files.toml:4: paginate: unknown key `offset`; known keys: token, next, in"
        );
        assert_eq!(
            problem("style = \"page\"\n"),
            "q/files.toml:4: paginate: the page style needs `page` (the request field of the page number)"
        );
        let query = parse_str(&format!(
            "{head}style = \"offset\"\noffset = \"start\"\nlimit = \"num\"\nin = \"body\"\ntotal = \"rowCount\"\n"
        ))
        .unwrap();
        let paginate = query.paginate.unwrap();
        assert_eq!(paginate.line, Some(4));
        assert_eq!(
            paginate.value,
            Paginate {
                style: PaginateStyle::Offset {
                    offset: "start".into(),
                    limit: "num".into(),
                    first: 0,
                    page_size: 100,
                    end: crate::api::OffsetEnd::Total(FieldPath::parse("rowCount").unwrap()),
                },
                location: Some(RequestLocation::Body),
            }
        );
    }

    #[test]
    fn a_spreadsheet_is_new_an_id_or_a_docs_url() {
        let id = |text| Spreadsheet::parse(text);
        assert_eq!(id("new"), Ok(Spreadsheet::New));
        assert_eq!(id("1Bxi-_9"), Ok(Spreadsheet::Id("1Bxi-_9".into())));
        assert_eq!(
            id("https://docs.google.com/spreadsheets/d/1Bxi/edit#gid=0"),
            Ok(Spreadsheet::Id("1Bxi".into()))
        );
        assert!(id("https://example.com/spreadsheets/d/1Bxi").is_err());
        assert!(id("").is_err());
    }

    /// With `[sheet]`, no CSV unless `output` names one.
    #[test]
    fn a_sheet_replaces_the_default_csv() {
        let head = "api = \"a\"\nversion = \"v\"\nmethod = \"m\"\n";
        let q = parse_str(&format!("{head}[sheet]\nspreadsheet = \"new\"\n")).unwrap();
        assert_eq!(q.output, None);
        let sheet = q.sheet.unwrap().value;
        assert_eq!(
            (sheet.tab.as_str(), sheet.mode),
            ("files", SheetMode::Replace)
        );
        let q = parse_str(&format!(
            "{head}output = \"f.csv\"\n[sheet]\nspreadsheet = \"x\"\nmode = \"append\"\n"
        ))
        .unwrap();
        assert_eq!(q.output, Some(PathBuf::from("f.csv")));
    }

    /// Every check runs, whatever an earlier one found, and their problems keep its order.
    #[test]
    fn every_problem_is_listed_in_check_order() {
        let text = concat!(
            "name = \"a/b\"\napi = \"{{ x }}\"\nversion = \"v\"\nmethod = \"m\"\n",
            "records = \"a[\"\ncolumns = [\"x[\", \"ok\", \"y[\"]\noutput = \"../o.csv\"\n",
            "format = \"xls\"\nexplode = \"a[0]\"\ndelimiter = \"ab\"\nqps = 0\n",
            "[vars]\ntoday = 1\nenv = 2\n[paginate]\nstyle = \"page\"\n",
            "[sheet]\nspreadsheet = \"new\"\ntab = \"\"\n",
            "[incremental]\ncursor = \"c[\"\ninitial = \"\"\n",
        );
        let problems = parse_str(text).unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_deref().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "name",
                "records",
                "columns",
                "columns",
                "output",
                "format",
                "explode",
                "vars",
                "vars",
                "delimiter",
                "qps",
                "paginate",
                "sheet.tab",
                "api",
                "incremental.cursor",
            ]
        );
        let lines: Vec<_> = problems.iter().map(|p| p.line.unwrap()).collect();
        assert_eq!(lines, [1, 5, 6, 6, 7, 8, 9, 12, 12, 10, 11, 15, 19, 2, 20]);
    }

    #[test]
    fn on_missing_is_fail_or_skip_and_skip_only_in_a_fan_out() {
        let head = "api = \"a\"\nversion = \"v\"\nmethod = \"m\"\n";
        let fan_out = format!("{head}for_each = \"ids\"\n");
        assert_eq!(parse_str(head).unwrap().on_missing, OnMissing::Fail);
        let q = parse_str(&format!("{fan_out}on_missing = \"skip\"\n")).unwrap();
        assert_eq!(q.on_missing, OnMissing::Skip);
        for (text, starts) in [
            (
                format!("{head}on_missing = \"skip\"\n"),
                "\"skip\" is for a fan-out",
            ),
            (
                format!("{fan_out}on_missing = \"Skip\"\n"),
                "\"Skip\" is not a choice",
            ),
        ] {
            let problems = parse_str(&text).unwrap_err();
            assert_eq!(problems[0].key.as_deref(), Some("on_missing"));
            assert!(problems[0].message.starts_with(starts), "{problems:?}");
        }
    }

    #[test]
    fn an_endpoint_is_a_root_url() {
        let head = "api = \"a\"\nversion = \"v\"\nmethod = \"m\"\n";
        let query = parse_str(&format!("{head}endpoint = \"http://127.0.0.1:8/p\"\n")).unwrap();
        assert_eq!(
            query.endpoint.map(|e| (e.value, e.line)),
            Some(("http://127.0.0.1:8/p/".to_owned(), Some(4)))
        );
        let err = parse_str(&format!("{head}endpoint = \"drive.example.com\"\n")).unwrap_err();
        assert_eq!(err[0].key.as_deref(), Some("endpoint"));
        assert_eq!(err[0].line, Some(4));
        assert!(err[0].message.contains("is not a root URL"), "{err:?}");
    }

    #[test]
    fn output_must_stay_under_the_out_dir() {
        let err =
            parse_str("api = \"a\"\nversion = \"v\"\nmethod = \"m\"\noutput = \"../x.csv\"\n")
                .unwrap_err();
        assert_eq!(err[0].key.as_deref(), Some("output"));
    }
}

#[cfg(test)]
mod key_list_tests {
    use super::*;

    /// `TOP_LEVEL_KEYS` must name exactly the keys the wire type accepts.
    #[test]
    fn top_level_keys_match_the_wire_type() {
        let err = toml::from_str::<wire::QueryFile>("zzz = 1").unwrap_err();
        let expected: Vec<String> = TOP_LEVEL_KEYS.iter().map(|k| format!("`{k}`")).collect();
        assert!(
            err.message()
                .ends_with(&format!("expected one of {}", expected.join(", "))),
            "{}",
            err.message()
        );
    }
}
