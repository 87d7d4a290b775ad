//! The pages of one request chain, fetched one after another as the cursor says.

use serde_json::Value;

use super::{ApiTotal, QueryError};
use crate::api::{ApiClient, Body, Call, Cursor, RequestSpec};
use crate::plan::QueryPlan;
use crate::records::explode;
use crate::records::stream::Selector;

/// Response fields in which APIs report the size of the whole result.
const TOTAL_FIELDS: &[&str] = &[
    "resultSizeEstimate",
    "rowCount",
    "totalRows",
    "totalItems",
    "totalResults",
    "totalSize",
];

/// The records of one page.
pub(super) enum Batch<'a> {
    /// Records as JSON values.
    Records(Vec<Value>),
    /// The page's JSON text, and the selector that takes the cells from it.
    Raw(Body, &'a Selector),
}

pub(super) struct Pages<'a> {
    plan: &'a QueryPlan,
    /// Set when the cells can be taken straight from the JSON text.
    selector: Option<&'a Selector>,
    api: &'a ApiClient,
    call: Call,
    cursor: Cursor,
    /// The next request, usually already on its way; `None` once the chain has ended.
    next: Option<(RequestSpec, Option<Ahead>)>,
    fetched: u64,
    /// Records returned so far (no page is fetched ahead past `max_records`).
    returned: u64,
    capped: bool,
    total: Option<ApiTotal>,
    /// The column names the first page declared (reports that name them only there).
    columns: Option<Vec<String>>,
}

/// A page being fetched by its own task while the previous one is written: the network and
/// the server's time overlap with gscrape's. Dropping it (a query stopped) cancels the fetch.
struct Ahead(tokio::task::JoinHandle<Result<Body, crate::api::ApiError>>);

impl Ahead {
    fn start(api: &ApiClient, request: &RequestSpec, call: &Call) -> Self {
        let (api, request, call) = (api.clone(), request.clone(), call.clone());
        Ahead(tokio::spawn(
            async move { api.fetch(&request, &call).await },
        ))
    }

    async fn page(mut self) -> Result<Body, QueryError> {
        match (&mut self.0).await {
            Ok(result) => Ok(result?),
            Err(err) => Err(QueryError::Task(err.to_string())),
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<'a> Pages<'a> {
    pub fn new(
        plan: &'a QueryPlan,
        mut first: RequestSpec,
        api: &'a ApiClient,
        call: Call,
        selector: Option<&'a Selector>,
    ) -> Self {
        let mut cursor = Cursor::new(plan.pagination.clone());
        cursor.begin(&mut first);
        let ahead = Ahead::start(api, &first, &call);
        Pages {
            plan,
            selector,
            api,
            call,
            cursor,
            next: Some((first, Some(ahead))),
            fetched: 0,
            returned: 0,
            capped: false,
            total: None,
            columns: None,
        }
    }

    /// The records of the next page, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Batch<'a>>, QueryError> {
        let Some((request, ahead)) = self.next.take() else {
            return Ok(None);
        };
        let ahead = ahead.unwrap_or_else(|| Ahead::start(self.api, &request, &self.call));
        let body = ahead.page().await?;
        // The selector reads the page without its records (they are read later, cell by cell).
        let (page, count) = match self.selector {
            Some(selector) => selector
                .outline(body.text()?)
                .map_err(|e| body.not_json(e))?,
            None => {
                let page = body.json()?;
                let count = self.plan.decoder.count(&page);
                (page, count)
            }
        };
        self.fetched += 1;
        self.call.counters.page();
        if self.fetched == 1 {
            self.total = api_total(&page);
        }
        self.returned += count as u64;
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
                let wanted = self
                    .plan
                    .query
                    .max_records
                    .is_none_or(|max| self.returned < max);
                let ahead = wanted.then(|| Ahead::start(self.api, &request, &self.call));
                self.next = Some((request, ahead));
            }
        }
        if let Some(selector) = self.selector {
            return Ok(Some(Batch::Raw(body, selector)));
        }
        if self.columns.is_none() {
            self.columns = self.plan.decoder.columns_from_response(&page);
        }
        let records = self.plan.decoder.decode(page);
        Ok(Some(Batch::Records(match &self.plan.query.explode {
            Some(path) => explode(records, &path.value),
            None => records,
        })))
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
