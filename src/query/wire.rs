//! The query file exactly as written: serde's view of the TOML, with spans for messages.
//! Converted into a checked [`super::Query`] by `super::parse`, one conversion per table or key.

use std::num::{NonZeroU64, NonZeroUsize};

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueryFile {
    pub name: Option<Spanned<String>>,
    pub api: Spanned<String>,
    pub version: Spanned<String>,
    pub method: Spanned<String>,
    pub discovery: Option<Spanned<String>>,
    /// The API's root URL for this query (over every other override).
    pub endpoint: Option<Spanned<String>>,
    pub allow_writes: Option<bool>,
    #[serde(default)]
    pub params: IndexMap<Spanned<String>, Spanned<toml::Value>>,
    pub body: Option<Spanned<toml::Table>>,
    pub records: Option<Spanned<String>>,
    pub columns: Option<Vec<Spanned<ColumnEntry>>>,
    pub output: Option<Spanned<OutputSetting>>,
    pub format: Option<Spanned<String>>,
    pub max_pages: Option<Spanned<NonZeroU64>>,
    pub max_records: Option<Spanned<NonZeroU64>>,
    pub subject: Option<Spanned<String>>,
    pub for_each: Option<Spanned<String>>,
    pub concurrency: Option<Spanned<NonZeroUsize>>,
    pub qps: Option<Spanned<f64>>,
    pub quota_cost: Option<Spanned<std::num::NonZeroU32>>,
    pub max_units: Option<Spanned<NonZeroU64>>,
    pub delimiter: Option<Spanned<String>>,
    pub bom: Option<bool>,
    pub excel_safe: Option<bool>,
    pub null: Option<String>,
    pub append: Option<bool>,
    pub header: Option<bool>,
    pub vars: Option<Spanned<toml::Table>>,
    pub paginate: Option<Spanned<PaginateTable>>,
    pub explode: Option<Spanned<String>>,
    /// A row filter: a minijinja expression over the record's top-level fields.
    #[serde(rename = "where")]
    pub filter: Option<Spanned<String>>,
    pub sheet: Option<Spanned<SheetTable>>,
    pub bigquery: Option<Spanned<BigQueryTable>>,
    pub incremental: Option<Spanned<IncrementalTable>>,
    pub on_missing: Option<Spanned<String>>,
    /// Fail instead of writing numbers the report says are sampled, thresholded, ...
    pub strict: Option<bool>,
    /// List the output in its directory's `datapackage.json`.
    pub describe_tables: Option<bool>,
    /// The columns that identify a row: this run's rows replace the output's with their key.
    pub merge_key: Option<Spanned<Vec<String>>>,
    /// Which of one run's rows with one key wins (`"first"`, `"last"`; unset: an error).
    pub merge_keep: Option<Spanned<String>>,
    /// How far before the cursor (or the backfill's last window) each run asks again.
    pub lookback: Option<Spanned<toml::Value>>,
}

/// `[incremental]`: the record field whose greatest value the next run asks from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncrementalTable {
    pub cursor: String,
    pub initial: String,
    /// `lookback` written under `[incremental]` (where dlt keeps its lag): the same key.
    pub lookback: Option<Spanned<toml::Value>>,
}

/// `[sheet]`: a Google Sheet the rows go to. The spreadsheet is checked by `super::check_sheet`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SheetTable {
    /// An id, a `docs.google.com/spreadsheets/d/ID/...` URL, or `"new"`.
    pub spreadsheet: Spanned<String>,
    pub tab: Option<Spanned<String>>,
    #[serde(default)]
    pub mode: SheetMode,
}

/// `mode` of `[sheet]`: replace the tab's rows (atomically), or add after them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SheetMode {
    #[default]
    Replace,
    Append,
}

/// `[bigquery]`: a BigQuery table the rows are loaded into. Checked by `super::bigquery`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BigQueryTable {
    /// `project.dataset.table`.
    pub table: Spanned<String>,
    /// Unset: `merge` with `merge_key`, else `replace`.
    pub mode: Option<Spanned<LoadMode>>,
    pub location: Option<Spanned<String>>,
    /// The project that runs the load job (default: the table's).
    pub project: Option<Spanned<String>>,
}

/// `mode` of `[bigquery]`: replace the table (`WRITE_TRUNCATE`, atomic), add rows to it
/// (`WRITE_APPEND`), or merge them by `merge_key` (a staging table and one `MERGE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    #[default]
    Replace,
    Append,
    Merge,
}

/// `[paginate]`: how an API not known to gscrape pages, one variant per `style`; a style or a
/// key it does not know is a TOML error at the table. Which keys a style needs, and the
/// response paths, are checked by `TryFrom` for `super::Paginate` (with messages that say what
/// they are for).
#[derive(Debug, Deserialize)]
#[serde(tag = "style", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum PaginateTable {
    Token {
        /// The request field of the token (default `pageToken`).
        token: Option<String>,
        /// The response path of the next token (default `nextPageToken`).
        next: Option<String>,
        #[serde(rename = "in")]
        location: Option<RequestLocation>,
    },
    Offset {
        /// The request field of the offset.
        offset: Option<String>,
        /// The request field of the page size.
        limit: Option<String>,
        /// The first offset (default 0).
        first: Option<u64>,
        /// The page size sent when the query sets none.
        page_size: Option<NonZeroU64>,
        /// A response path holding the total number of rows.
        total: Option<String>,
        /// A response path holding the next offset.
        next_offset: Option<String>,
        #[serde(rename = "in")]
        location: Option<RequestLocation>,
    },
    Page {
        /// The request field of the page number.
        page: Option<String>,
        /// The request field of the page size.
        limit: Option<String>,
        /// The first page number (default 1).
        first: Option<u64>,
        /// The page size sent when the query sets none.
        page_size: Option<NonZeroU64>,
        #[serde(rename = "in")]
        location: Option<RequestLocation>,
    },
    None {},
}

/// `in = "query"` or `in = "body"`: where the request fields of `[paginate]` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestLocation {
    Query,
    Body,
}

/// `output = "name.csv"`, or `output = false` for a query that only feeds a fan-out.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OutputSetting {
    Name(String),
    Enabled(bool),
}

/// `"owners[0].emailAddress"`, `{ name = "Owner", path = "owners[0].emailAddress" }`, or
/// `{ name = "message", value = "{{ messages.id }}" }`.
#[derive(Debug)]
pub(super) struct ColumnEntry {
    pub name: Option<String>,
    /// One path, or several to fall back between (the first present and not empty).
    pub path: Option<Vec<String>>,
    pub value: Option<String>,
}

/// `path = "a.b"` or `path = ["a.b", "a.c"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl<'de> Deserialize<'de> for ColumnEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ColumnEntry;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    r#"a path string or a table { name = "...", path = "..." } or { name = "...", value = "{{ ... }}" }"#,
                )
            }

            fn visit_str<E: de::Error>(self, path: &str) -> Result<ColumnEntry, E> {
                Ok(ColumnEntry {
                    name: None,
                    path: Some(vec![path.to_owned()]),
                    value: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ColumnEntry, A::Error> {
                let (mut name, mut path, mut value) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => name = Some(map.next_value::<String>()?),
                        "path" => {
                            path = Some(match map.next_value::<OneOrMore>()? {
                                OneOrMore::One(one) => vec![one],
                                OneOrMore::More(paths) if !paths.is_empty() => paths,
                                OneOrMore::More(_) => {
                                    return Err(de::Error::custom("`path = []` names no field"))
                                }
                            })
                        }
                        "value" => value = Some(map.next_value::<String>()?),
                        other => {
                            return Err(de::Error::unknown_field(other, &["name", "path", "value"]))
                        }
                    }
                }
                match (&path, &value) {
                    (None, None) => return Err(de::Error::missing_field("path")),
                    (Some(_), Some(_)) => {
                        return Err(de::Error::custom(
                            "a column has either `path` or `value`, not both",
                        ))
                    }
                    (None, Some(_)) if name.is_none() => {
                        return Err(de::Error::missing_field("name"))
                    }
                    _ => {}
                }
                Ok(ColumnEntry { name, path, value })
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}
