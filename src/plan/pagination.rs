//! How a query's pages follow each other: its `[paginate]` table, else its API module's
//! paging, else what the Discovery document shows.

use crate::api::{OffsetPaging, PageNumberPaging, Pagination, RequestField};
use crate::discovery::{Document, Method};
use crate::query::{Paginate, PaginateStyle, RequestLocation};

/// The pagination of `method` when no `[paginate]` table says: its API module's, else the
/// one Discovery shows.
pub fn method_pagination(doc: &Document, method: &Method) -> Pagination {
    crate::apis::for_method(&method.id)
        .pagination(doc, method)
        .unwrap_or_else(|| Pagination::detect(doc, method))
}

/// The pagination a query's `[paginate]` table describes.
pub(super) fn configured_pagination(method: &Method, table: &Paginate) -> Pagination {
    let field = |name: &str| {
        let in_body = match table.location {
            Some(location) => location == RequestLocation::Body,
            None => !method.parameters.contains_key(name) && method.request.is_some(),
        };
        match in_body {
            true => RequestField::Body(name.to_owned()),
            false => RequestField::Query(name.to_owned()),
        }
    };
    match &table.style {
        PaginateStyle::None => Pagination::None,
        PaginateStyle::Token { token, next } => Pagination::Token {
            request: field(token),
            response: next.clone(),
        },
        PaginateStyle::Offset {
            offset,
            limit,
            first,
            page_size,
            end,
        } => Pagination::Offset(OffsetPaging {
            offset: field(offset),
            limit: field(limit),
            first: *first,
            page_size: *page_size,
            as_string: false,
            end: end.clone(),
        }),
        PaginateStyle::Page { page, first, limit } => Pagination::PageNumber(PageNumberPaging {
            page: field(page),
            first: *first,
            limit: limit.as_ref().map(|(limit, size)| (field(limit), *size)),
        }),
    }
}
