//! Pagination: which style a method uses (detected from its Discovery document) and a cursor
//! that moves from page to page and refuses to loop.

use std::collections::HashSet;

use serde_json::Value;

use super::RequestSpec;
use crate::discovery::{Document, Method};
use crate::records::{FieldPath, Segment};

/// Where the continuation token is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenField {
    /// A query parameter (`?pageToken=`).
    Query(String),
    /// A top-level property of the JSON request body (`:search`/`:query` methods).
    Body(String),
}

/// How a method's results continue on further pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pagination {
    /// One response is everything.
    None,
    /// Send the token found at `response` in the last page as `request`, until it is absent.
    Token {
        request: TokenField,
        response: FieldPath,
    },
}

impl Pagination {
    /// Detects the standard style: `pageToken` in the query or the request body, and
    /// `nextPageToken` in the response.
    pub fn detect(doc: &Document, method: &Method) -> Pagination {
        let Some(response) = &method.response else {
            return Pagination::None;
        };
        let has_next_token = doc
            .schema(&response.reference)
            .is_some_and(|s| s.properties.contains_key("nextPageToken"));
        if !has_next_token {
            return Pagination::None;
        }
        let request = if method.parameters.contains_key("pageToken") {
            TokenField::Query("pageToken".to_owned())
        } else if method.request.as_ref().is_some_and(|r| {
            doc.schema(&r.reference)
                .is_some_and(|s| s.properties.contains_key("pageToken"))
        }) {
            TokenField::Body("pageToken".to_owned())
        } else {
            return Pagination::None;
        };
        Pagination::Token {
            request,
            response: FieldPath::parse("nextPageToken").expect("a valid path"),
        }
    }

    pub fn is_paginated(&self) -> bool {
        !matches!(self, Pagination::None)
    }

    /// A short human description, for `describe`.
    pub fn describe(&self) -> String {
        match self {
            Pagination::None => "none (one response)".to_owned(),
            Pagination::Token { request, response } => {
                let sent = match request {
                    TokenField::Query(name) => format!("query parameter `{name}`"),
                    TokenField::Body(name) => format!("body field `{name}`"),
                };
                format!("page token: response `{response}` → {sent}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaginationError {
    #[error("the API returned the page token {token:?} a second time (after {pages} pages); stopped to avoid an endless loop")]
    RepeatedToken { token: String, pages: u64 },
}

/// Moves through the pages of one query.
#[derive(Debug)]
pub struct Cursor {
    pagination: Pagination,
    seen: HashSet<String>,
    pages: u64,
}

impl Cursor {
    pub fn new(pagination: Pagination) -> Self {
        Cursor {
            pagination,
            seen: HashSet::new(),
            pages: 0,
        }
    }

    /// Puts `token` into the request for the next page.
    pub fn apply(&self, token: &str, request: &mut RequestSpec) {
        match &self.pagination {
            Pagination::None => {}
            Pagination::Token {
                request: TokenField::Query(name),
                ..
            } => request.set_query(name, token.to_owned()),
            Pagination::Token {
                request: TokenField::Body(name),
                ..
            } => {
                let body = request
                    .body
                    .get_or_insert_with(|| Value::Object(Default::default()));
                if let Value::Object(map) = body {
                    map.insert(name.clone(), Value::String(token.to_owned()));
                }
            }
        }
    }

    /// Reads a received page: the token of the next page, or `None` at the end.
    pub fn advance(&mut self, page: &Value) -> Result<Option<String>, PaginationError> {
        self.pages += 1;
        let Pagination::Token { response, .. } = &self.pagination else {
            return Ok(None);
        };
        let token = lookup(page, response)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Ok(None);
        };
        if !self.seen.insert(token.to_owned()) {
            return Err(PaginationError::RepeatedToken {
                token: token.to_owned(),
                pages: self.pages,
            });
        }
        Ok(Some(token.to_owned()))
    }
}

fn lookup<'a>(value: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.segments()
        .iter()
        .try_fold(value, |node, segment| match segment {
            Segment::Key(key) => node.get(key.as_str()),
            Segment::Index(i) => node.get(*i),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_token_stops_the_cursor() {
        let mut cursor = Cursor::new(Pagination::Token {
            request: TokenField::Query("pageToken".into()),
            response: FieldPath::parse("nextPageToken").unwrap(),
        });
        assert_eq!(
            cursor.advance(&json!({"nextPageToken": "a"})),
            Ok(Some("a".into()))
        );
        assert_eq!(
            cursor.advance(&json!({"nextPageToken": "b"})),
            Ok(Some("b".into()))
        );
        assert!(cursor.advance(&json!({"nextPageToken": "a"})).is_err());
        assert_eq!(cursor.advance(&json!({"nextPageToken": ""})), Ok(None));
    }

    #[test]
    fn body_tokens_go_into_the_body() {
        let cursor = Cursor::new(Pagination::Token {
            request: TokenField::Body("pageToken".into()),
            response: FieldPath::parse("nextPageToken").unwrap(),
        });
        let mut request = RequestSpec {
            http_method: http::Method::POST,
            url: "u".into(),
            query: vec![],
            body: Some(json!({"q": 1})),
        };
        cursor.apply("t2", &mut request);
        assert_eq!(request.body, Some(json!({"q": 1, "pageToken": "t2"})));
    }
}
