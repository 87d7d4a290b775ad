//! Pagination: which style a method uses — detected from its Discovery document, given by the
//! module of an API that pages differently (`crate::apis`), or set by a query's `[paginate]`
//! table — and a cursor that moves from page to page and refuses to loop.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::RequestSpec;
use crate::discovery::{Document, Location, Method, Schema};
use crate::records::FieldPath;
use crate::redact::Quoted;

/// Response fields (dotted paths) in which APIs report the size of the whole result.
pub const TOTAL_FIELDS: &[&str] = &[
    "resultSizeEstimate",
    "rowCount",
    "totalRows",
    "totalItems",
    "totalResults",
    "totalSize",
    "pageInfo.totalResults",
];

/// A request field: a query parameter or a top-level property of the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestField {
    Query(String),
    Body(String),
}

impl RequestField {
    fn describe(&self) -> String {
        match self {
            RequestField::Query(name) => format!("query parameter `{name}`"),
            RequestField::Body(name) => format!("body field `{name}`"),
        }
    }

    /// The value the request already has in this field.
    pub fn get(&self, request: &RequestSpec) -> Option<String> {
        match self {
            RequestField::Query(name) => request
                .query
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone()),
            RequestField::Body(name) => match request.body.as_ref()?.get(name)? {
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            },
        }
    }

    fn set(&self, request: &mut RequestSpec, value: Value) {
        match self {
            RequestField::Query(name) => {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                request.set_query(name, text);
            }
            RequestField::Body(name) => {
                let body = request
                    .body
                    .get_or_insert_with(|| Value::Object(Default::default()));
                if let Value::Object(map) = body {
                    map.insert(name.clone(), value);
                }
            }
        }
    }
}

/// When an offset-paged result ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetEnd {
    /// A page shorter than the page size is the last.
    ShortPage,
    /// The response says how many rows there are in all (GA4 `rowCount`).
    Total(FieldPath),
    /// The response names the next offset (Custom Search `queries.nextPage[0].startIndex`).
    NextOffset(FieldPath),
}

/// Offset and page-size paging (`startRow`/`rowLimit`, `startIndex`/`maxResults`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetPaging {
    pub offset: RequestField,
    pub limit: RequestField,
    /// The offset of the first row: 0, or 1 for 1-based APIs.
    pub first: u64,
    /// The page size sent when the query sets none.
    pub page_size: u64,
    /// The numbers travel as JSON strings (int64 fields in bodies).
    pub as_string: bool,
    pub end: OffsetEnd,
}

/// Page-number paging: `page=1, 2, ...` until a short or empty page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageNumberPaging {
    pub page: RequestField,
    pub first: u64,
    /// The page-size field and the size sent when the query sets none.
    pub limit: Option<(RequestField, u64)>,
}

/// Paging that no generic style describes, given by an API's module (`crate::apis`).
pub trait ApiPaging: std::fmt::Debug + Send + Sync {
    /// A short human description, for `describe`.
    fn describe(&self) -> String;
    /// Reads a page fetched by `request` (`first`: the chain's first page): the next page's
    /// request, or `None` after the last.
    fn next(
        &self,
        page: &Value,
        request: &RequestSpec,
        first: bool,
    ) -> Result<Option<ApiNext>, PaginationError>;
}

/// The next page of an [`ApiPaging`]: its request, and the continuation token it carries (the
/// cursor refuses one seen before).
#[derive(Debug, Clone)]
pub struct ApiNext {
    pub token: Option<String>,
    pub request: RequestSpec,
}

/// How a method's results continue on further pages.
#[derive(Debug, Clone)]
pub enum Pagination {
    /// One response is everything.
    None,
    /// Send the token found at `response` in the last page as `request`, until it is absent.
    Token {
        request: RequestField,
        response: FieldPath,
    },
    Offset(OffsetPaging),
    PageNumber(PageNumberPaging),
    /// An API's own paging.
    Api(Arc<dyn ApiPaging>),
}

/// A built-in response path.
pub fn path(text: &str) -> FieldPath {
    FieldPath::parse(text).expect("a valid built-in path")
}

impl Pagination {
    /// The pagination Discovery shows for `method`: the standard page token (`pageToken` in
    /// the query or the body, `nextPageToken` or `pageToken` in the response), else a common
    /// offset pattern.
    pub fn detect(doc: &Document, method: &Method) -> Pagination {
        let response = method
            .response
            .as_ref()
            .and_then(|r| doc.schema(&r.reference));
        let request_schema = method
            .request
            .as_ref()
            .and_then(|r| doc.schema(&r.reference));
        let body_has = |name: &str| request_schema.is_some_and(|s| s.properties.contains_key(name));
        let query_has = |name: &str| {
            method
                .parameters
                .get(name)
                .is_some_and(|p| p.location == Location::Query)
        };
        let response_at = |path_text: &str| {
            let mut keys = path_text.split('.');
            let first = keys.next().unwrap_or_default();
            let mut schema = response.and_then(|s| s.properties.get(first));
            for key in keys {
                schema = schema
                    .map(|s| crate::discovery::schema::resolve(doc, s))
                    .and_then(|s| s.properties.get(key));
            }
            schema.is_some()
        };
        // (request token, response path of the next one), most common first.
        const TOKENS: &[(&str, &str)] = &[
            ("pageToken", "nextPageToken"),
            ("pageToken", "pageToken"),
            ("token", "tokenPagination.nextPageToken"),
            ("continue", "metadata.continue"),
        ];
        for (sent, next) in TOKENS {
            if !response_at(next) {
                continue;
            }
            if query_has(sent) {
                return Pagination::Token {
                    request: RequestField::Query((*sent).into()),
                    response: path(next),
                };
            }
            if body_has(sent) {
                return Pagination::Token {
                    request: RequestField::Body((*sent).into()),
                    response: path(next),
                };
            }
        }
        // Common offset/page-size pairs, until a short page (first offset: 1 or 0).
        let short_pages = |offset: RequestField, limit: RequestField, first, as_string| {
            Pagination::Offset(OffsetPaging {
                offset,
                limit,
                first,
                page_size: 1000,
                as_string,
                end: OffsetEnd::ShortPage,
            })
        };
        for (offset, limit, first) in [
            ("startIndex", "maxResults", 1),
            ("start-index", "max-results", 1),
            ("start", "num", 1),
            ("offset", "limit", 0),
        ] {
            if query_has(offset) && query_has(limit) {
                let (offset, limit) = (
                    RequestField::Query(offset.into()),
                    RequestField::Query(limit.into()),
                );
                return short_pages(offset, limit, first, false);
            }
        }
        for (offset, limit) in [("offset", "limit"), ("startRow", "rowLimit")] {
            if body_has(offset) && body_has(limit) {
                let as_string = is_int64_string(request_schema, offset);
                let (offset, limit) = (
                    RequestField::Body(offset.into()),
                    RequestField::Body(limit.into()),
                );
                return short_pages(offset, limit, 0, as_string);
            }
        }
        Pagination::None
    }

    pub fn is_paginated(&self) -> bool {
        !matches!(self, Pagination::None)
    }

    /// The response fields the cursor reads to find the next page: a partial response must
    /// keep them, or the first page looks like the last.
    pub fn response_fields(&self) -> Vec<&FieldPath> {
        match self {
            Pagination::Token { response, .. } => vec![response],
            Pagination::Offset(OffsetPaging {
                end: OffsetEnd::Total(path) | OffsetEnd::NextOffset(path),
                ..
            }) => vec![path],
            Pagination::None
            | Pagination::Offset(_)
            | Pagination::PageNumber(_)
            | Pagination::Api(_) => Vec::new(),
        }
    }

    /// A short human description, for `describe`.
    pub fn describe(&self) -> String {
        match self {
            Pagination::None => "none (one response)".to_owned(),
            Pagination::Token { request, response } => {
                format!("page token: response `{response}` → {}", request.describe())
            }
            Pagination::Offset(o) => {
                let end = match &o.end {
                    OffsetEnd::ShortPage => "until a short page".to_owned(),
                    OffsetEnd::Total(total) => format!("until the response's `{total}`"),
                    OffsetEnd::NextOffset(next) => {
                        format!("next offset from the response's `{next}`")
                    }
                };
                format!(
                    "offset: {} from {} by {} (default {}), {end}",
                    o.offset.describe(),
                    o.first,
                    o.limit.describe(),
                    o.page_size
                )
            }
            Pagination::PageNumber(p) => {
                format!(
                    "page number: {} from {}, until a short or empty page",
                    p.page.describe(),
                    p.first
                )
            }
            Pagination::Api(paging) => paging.describe(),
        }
    }
}

/// True when `field` of `schema` is an int64 sent as a JSON string.
pub fn is_int64_string(schema: Option<&Schema>, field: &str) -> bool {
    schema
        .and_then(|s| s.properties.get(field))
        .is_some_and(|p| {
            p.kind.as_deref() == Some("string") && p.format.as_deref() == Some("int64")
        })
}

/// The longest next-page token a cursor sends on: Google's are a few hundred bytes, and a URL
/// must stay well under 64 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a cursor stopped: a fault of the server's, in the middle of a run. What it quotes of a
/// page is [`Quoted`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaginationError {
    #[error("the API returned the page token {token:?} a second time (after {pages} pages); stopped to avoid an endless loop")]
    RepeatedToken { token: Quoted, pages: u64 },
    /// An API's paging could not go on (its module says why).
    #[error("{0}")]
    Api(String),
    #[error("the next-page token `{path}` is {found}, not a string; stopped rather than guess where the next page starts")]
    BadToken { path: String, found: Quoted },
    #[error("the next-page token `{path}` is {len} bytes long, more than a page token can be ({MAX_TOKEN_BYTES} at most): stopped rather than send it")]
    LongToken { path: String, len: usize },
}

/// Where the next page starts.
#[derive(Debug, Clone)]
enum Next {
    Token(String),
    Offset(u64),
    /// The request an API's paging made.
    Api(RequestSpec),
}

/// Moves through the pages of one request chain.
#[derive(Debug)]
pub struct Cursor {
    pagination: Pagination,
    seen: HashSet<String>,
    pages: u64,
    /// The page size in force (offset and page-number styles).
    page_size: Option<u64>,
    offset: u64,
    next: Option<Next>,
}

/// Where a cursor stands between pages, as a checkpoint keeps it (the next page's request is
/// kept beside it, whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CursorState {
    pub pages: u64,
    pub page_size: Option<u64>,
    pub offset: u64,
}

impl Cursor {
    /// Where this cursor stands.
    pub fn state(&self) -> CursorState {
        CursorState {
            pages: self.pages,
            page_size: self.page_size,
            offset: self.offset,
        }
    }

    /// A cursor that goes on from `state` (tokens seen before it are not known again).
    pub fn resume(pagination: Pagination, state: CursorState) -> Self {
        Cursor {
            pagination,
            seen: HashSet::new(),
            pages: state.pages,
            page_size: state.page_size,
            offset: state.offset,
            next: None,
        }
    }

    pub fn new(pagination: Pagination) -> Self {
        Cursor {
            pagination,
            seen: HashSet::new(),
            pages: 0,
            page_size: None,
            offset: 0,
            next: None,
        }
    }

    /// Prepares the first request: the page size and first offset, unless the query set them.
    pub fn begin(&mut self, request: &mut RequestSpec) {
        match &self.pagination {
            Pagination::Offset(o) => {
                let size = o.limit.get(request).and_then(|v| v.parse().ok());
                let size = size.unwrap_or_else(|| {
                    o.limit.set(request, number(o.page_size, o.as_string));
                    o.page_size
                });
                self.page_size = Some(size);
                self.offset = o
                    .offset
                    .get(request)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| {
                        o.offset.set(request, number(o.first, o.as_string));
                        o.first
                    });
            }
            Pagination::PageNumber(p) => {
                if let Some((field, default)) = &p.limit {
                    let size = field.get(request).and_then(|v| v.parse().ok());
                    self.page_size = Some(size.unwrap_or_else(|| {
                        field.set(request, number(*default, false));
                        *default
                    }));
                }
                self.offset = p
                    .page
                    .get(request)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| {
                        p.page.set(request, number(p.first, false));
                        p.first
                    });
            }
            Pagination::None | Pagination::Token { .. } | Pagination::Api(_) => {}
        }
    }

    /// Reads a received page holding `records` records: true when another page follows.
    /// `request` is the request that fetched it (an API's paging builds the next from it).
    pub fn advance(
        &mut self,
        page: &Value,
        records: usize,
        request: &RequestSpec,
    ) -> Result<bool, PaginationError> {
        self.pages += 1;
        let records = records as u64;
        self.next = match &self.pagination {
            Pagination::None => None,
            Pagination::Token { response, .. } => match token_at(page, response)? {
                Some(token) => Some(Next::Token(self.remember(token)?)),
                None => None,
            },
            Pagination::Offset(o) => {
                let next = self.offset + records;
                let more = match &o.end {
                    _ if records == 0 => false,
                    OffsetEnd::ShortPage => self.page_size.is_none_or(|size| records >= size),
                    OffsetEnd::Total(total) => {
                        number_at(page, total).is_some_and(|total| next - o.first < total)
                    }
                    OffsetEnd::NextOffset(at) => match number_at(page, at) {
                        Some(offset) if offset > self.offset => {
                            self.offset = offset;
                            return Ok(self.set(Some(Next::Offset(offset))));
                        }
                        _ => false,
                    },
                };
                self.offset = next;
                more.then_some(Next::Offset(next))
            }
            Pagination::PageNumber(_) => {
                let more = records > 0 && self.page_size.is_none_or(|size| records >= size);
                self.offset += 1;
                more.then_some(Next::Offset(self.offset))
            }
            Pagination::Api(paging) => match paging.next(page, request, self.pages == 1)? {
                Some(ApiNext { token, request }) => {
                    if let Some(token) = token {
                        self.remember(&token)?;
                    }
                    Some(Next::Api(request))
                }
                None => None,
            },
        };
        Ok(self.next.is_some())
    }

    fn set(&mut self, next: Option<Next>) -> bool {
        self.next = next;
        self.next.is_some()
    }

    fn remember(&mut self, token: &str) -> Result<String, PaginationError> {
        if !self.seen.insert(token.to_owned()) {
            return Err(PaginationError::RepeatedToken {
                token: token.into(),
                pages: self.pages,
            });
        }
        Ok(token.to_owned())
    }

    /// Turns `request` into the request of the next page.
    pub fn apply(&self, request: &mut RequestSpec) {
        match (&self.pagination, &self.next) {
            (Pagination::Token { request: field, .. }, Some(Next::Token(token))) => {
                field.set(request, Value::String(token.clone()));
            }
            (Pagination::Offset(o), Some(Next::Offset(offset))) => {
                o.offset.set(request, number(*offset, o.as_string));
            }
            (Pagination::PageNumber(p), Some(Next::Offset(page))) => {
                p.page.set(request, number(*page, false));
            }
            (Pagination::Api(_), Some(Next::Api(next))) => *request = next.clone(),
            _ => {}
        }
    }
}

fn number(n: u64, as_string: bool) -> Value {
    if as_string {
        Value::String(n.to_string())
    } else {
        Value::from(n)
    }
}

/// The next-page token at `path`: none when absent, null or empty; an error when it is not a
/// string (a number or an object would end the export early, or loop), or longer than any
/// page token ([`MAX_TOKEN_BYTES`]: no request could carry it).
pub fn token_at<'a>(page: &'a Value, path: &FieldPath) -> Result<Option<&'a str>, PaginationError> {
    match path.lookup(page) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(token)) if token.is_empty() => Ok(None),
        Some(Value::String(token)) if token.len() > MAX_TOKEN_BYTES => {
            Err(PaginationError::LongToken {
                path: path.to_string(),
                len: token.len(),
            })
        }
        Some(Value::String(token)) => Ok(Some(token)),
        Some(other) => Err(PaginationError::BadToken {
            path: path.to_string(),
            found: crate::records::json_kind(other).into(),
        }),
    }
}

/// A number, also when sent as a string (int64).
fn number_at(page: &Value, path: &FieldPath) -> Option<u64> {
    let value = path.lookup(page)?;
    value.as_u64().or_else(|| value.as_str()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Option<Value>) -> RequestSpec {
        RequestSpec {
            http_method: http::Method::POST,
            url: "https://h/v1/x".into(),
            query: vec![],
            body,
        }
    }

    #[test]
    fn a_repeated_token_stops_the_cursor() {
        let mut cursor = Cursor::new(Pagination::Token {
            request: RequestField::Query("pageToken".into()),
            response: path("nextPageToken"),
        });
        let r = request(None);
        assert_eq!(
            cursor.advance(&json!({"nextPageToken": "a"}), 1, &r),
            Ok(true)
        );
        assert_eq!(
            cursor.advance(&json!({"nextPageToken": "b"}), 1, &r),
            Ok(true)
        );
        assert!(cursor
            .advance(&json!({"nextPageToken": "a"}), 1, &r)
            .is_err());
        assert_eq!(
            cursor.advance(&json!({"nextPageToken": ""}), 1, &r),
            Ok(false)
        );
    }

    #[test]
    fn a_token_no_request_could_carry_stops_the_cursor() {
        let mut cursor = Cursor::new(Pagination::Token {
            request: RequestField::Query("pageToken".into()),
            response: path("nextPageToken"),
        });
        let long = "t".repeat(MAX_TOKEN_BYTES + 1);
        let err = cursor
            .advance(&json!({ "nextPageToken": long }), 1, &request(None))
            .unwrap_err();
        assert_eq!(
            err,
            PaginationError::LongToken {
                path: "nextPageToken".into(),
                len: MAX_TOKEN_BYTES + 1
            }
        );
        let repeated = PaginationError::RepeatedToken {
            token: "r".repeat(MAX_TOKEN_BYTES).into(),
            pages: 2,
        };
        assert!(repeated.to_string().len() < 500, "{repeated}");
    }

    #[test]
    fn body_tokens_go_into_the_body() {
        let mut cursor = Cursor::new(Pagination::Token {
            request: RequestField::Body("pageToken".into()),
            response: path("nextPageToken"),
        });
        let mut r = request(Some(json!({"q": 1})));
        assert_eq!(
            cursor.advance(&json!({"nextPageToken": "t2"}), 1, &r),
            Ok(true)
        );
        cursor.apply(&mut r);
        assert_eq!(r.body, Some(json!({"q": 1, "pageToken": "t2"})));
    }

    #[test]
    fn offsets_count_up_until_the_total() {
        let mut cursor = Cursor::new(Pagination::Offset(OffsetPaging {
            offset: RequestField::Body("offset".into()),
            limit: RequestField::Body("limit".into()),
            first: 0,
            page_size: 100,
            as_string: true,
            end: OffsetEnd::Total(path("rowCount")),
        }));
        let mut r = request(Some(json!({"limit": "2"})));
        cursor.begin(&mut r);
        assert_eq!(r.body, Some(json!({"limit": "2", "offset": "0"})));
        assert_eq!(cursor.advance(&json!({"rowCount": 5}), 2, &r), Ok(true));
        cursor.apply(&mut r);
        assert_eq!(r.body.as_ref().unwrap()["offset"], "2");
        assert_eq!(cursor.advance(&json!({"rowCount": 5}), 2, &r), Ok(true));
        cursor.apply(&mut r);
        assert_eq!(cursor.advance(&json!({"rowCount": 5}), 1, &r), Ok(false));
    }

    #[test]
    fn page_numbers_count_up_until_a_short_page() {
        let mut cursor = Cursor::new(Pagination::PageNumber(PageNumberPaging {
            page: RequestField::Query("page".into()),
            first: 1,
            limit: Some((RequestField::Query("per_page".into()), 2)),
        }));
        let mut r = request(None);
        cursor.begin(&mut r);
        assert_eq!(
            r.query,
            [
                ("per_page".to_owned(), "2".to_owned()),
                ("page".to_owned(), "1".to_owned())
            ]
        );
        assert_eq!(cursor.advance(&json!({}), 2, &r), Ok(true));
        cursor.apply(&mut r);
        assert!(r.query.contains(&("page".to_owned(), "2".to_owned())));
        assert_eq!(cursor.advance(&json!({}), 1, &r), Ok(false));
    }

    #[test]
    fn one_based_offsets_stop_on_a_short_page() {
        let mut cursor = Cursor::new(Pagination::Offset(OffsetPaging {
            offset: RequestField::Query("startIndex".into()),
            limit: RequestField::Query("maxResults".into()),
            first: 1,
            page_size: 3,
            as_string: false,
            end: OffsetEnd::ShortPage,
        }));
        let mut r = request(None);
        cursor.begin(&mut r);
        assert_eq!(
            r.query,
            [
                ("maxResults".to_owned(), "3".to_owned()),
                ("startIndex".to_owned(), "1".to_owned())
            ]
        );
        assert_eq!(cursor.advance(&json!({}), 3, &r), Ok(true));
        cursor.apply(&mut r);
        assert!(r.query.contains(&("startIndex".to_owned(), "4".to_owned())));
        assert_eq!(cursor.advance(&json!({}), 2, &r), Ok(false));
    }
}
