//! The pages of one request chain, fetched one after another as the cursor says.

use serde_json::Value;

use super::{ApiTotal, QueryError};
use crate::api::{ApiClient, Call, Cursor, RequestSpec};
use crate::plan::QueryPlan;
use crate::records::explode;

/// Response fields in which APIs report the size of the whole result.
const TOTAL_FIELDS: &[&str] = &[
    "resultSizeEstimate",
    "rowCount",
    "totalRows",
    "totalItems",
    "totalResults",
    "totalSize",
];

pub(super) struct Pages<'a> {
    plan: &'a QueryPlan,
    api: &'a ApiClient,
    call: Call<'a>,
    cursor: Cursor,
    /// The next request; `None` once the chain has ended.
    next: Option<RequestSpec>,
    fetched: u64,
    capped: bool,
    total: Option<ApiTotal>,
    /// The column names the first page declared (reports that name them only there).
    columns: Option<Vec<String>>,
}

impl<'a> Pages<'a> {
    pub fn new(
        plan: &'a QueryPlan,
        mut first: RequestSpec,
        api: &'a ApiClient,
        call: Call<'a>,
    ) -> Self {
        let mut cursor = Cursor::new(plan.pagination.clone());
        cursor.begin(&mut first);
        Pages {
            plan,
            api,
            call,
            cursor,
            next: Some(first),
            fetched: 0,
            capped: false,
            total: None,
            columns: None,
        }
    }

    /// The records of the next page, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<Value>>, QueryError> {
        let Some(request) = self.next.take() else {
            return Ok(None);
        };
        let page = self.api.fetch(&request, self.call).await?;
        self.fetched += 1;
        self.call.counters.page();
        if self.fetched == 1 {
            self.total = api_total(&page);
        }
        let count = self.plan.decoder.count(&page);
        if self.cursor.advance(&page, count, &request)? {
            if self
                .plan
                .query
                .max_pages
                .is_some_and(|max| self.fetched >= max)
            {
                self.capped = true;
            } else {
                let mut request = request;
                self.cursor.apply(&mut request);
                self.next = Some(request);
            }
        }
        if self.columns.is_none() {
            self.columns = self.plan.decoder.columns_from_response(&page);
        }
        let records = self.plan.decoder.decode(page);
        Ok(Some(match &self.plan.query.explode {
            Some(path) => explode(records, &path.value),
            None => records,
        }))
    }

    /// True while another page is to come.
    pub fn has_more(&self) -> bool {
        self.next.is_some()
    }

    /// True when `max_pages` ended the chain while the API had more.
    pub fn capped(&self) -> bool {
        self.capped
    }

    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    /// The column names the first page declared, if the decoder reads them there.
    pub fn columns(&self) -> Option<&[String]> {
        self.columns.as_deref()
    }

    /// The size of the whole result, as the first page reported it.
    pub fn api_total(&self) -> Option<&ApiTotal> {
        self.total.as_ref()
    }
}

fn api_total(page: &Value) -> Option<ApiTotal> {
    let candidates = TOTAL_FIELDS
        .iter()
        .map(|f| (f.to_string(), page.get(f)))
        .chain([(
            "pageInfo.totalResults".to_owned(),
            page.pointer("/pageInfo/totalResults"),
        )]);
    candidates.into_iter().find_map(|(field, value)| {
        let value = value?;
        let number = value.as_u64().or_else(|| value.as_str()?.parse().ok())?;
        Some(ApiTotal {
            field,
            value: number,
        })
    })
}
