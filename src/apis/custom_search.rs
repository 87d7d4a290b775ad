//! Custom Search, `search.cse.list`: paged by `start` (1-based) and `num` (at most 10) in the
//! query; the next offset is in `queries.nextPage[0].startIndex`.

use super::Api;
use crate::api::paginate::path;
use crate::api::{OffsetEnd, OffsetPaging, Pagination, RequestField};
use crate::discovery::{Document, Method};

pub(super) struct CustomSearch;

impl Api for CustomSearch {
    fn handles(&self, method_id: &str) -> bool {
        method_id == "search.cse.list"
    }

    fn pagination(&self, _doc: &Document, _method: &Method) -> Option<Pagination> {
        Some(Pagination::Offset(OffsetPaging {
            offset: RequestField::Query("start".to_owned()),
            limit: RequestField::Query("num".to_owned()),
            first: 1,
            page_size: 10,
            as_string: false,
            end: OffsetEnd::NextOffset(path("queries.nextPage[0].startIndex")),
        }))
    }
}
