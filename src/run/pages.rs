//! The pages of one request chain, fetched one after another as the cursor says, by a task
//! that stays ahead of the writer.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use super::{ApiTotal, QueryError};
use crate::api::{ApiClient, ApiError, Body, Call, Cursor, CursorState, RequestSpec, TOTAL_FIELDS};
use crate::plan::QueryPlan;
use crate::records::{Page, PageError, PageReader};

/// Pages fetched ahead of the writer: enough to keep the server busy while a page is written,
/// few enough that memory stays flat.
const AHEAD: usize = 2;

/// The pages of one request chain. A fetcher task of its own requests each page as soon as the
/// one before it is read (its next-page token or offset), so the server's time overlaps with
/// the writing of earlier pages; dropping `Pages` (a query stopped) cancels it.
pub(super) struct Pages {
    reader: Arc<PageReader>,
    pages: mpsc::Receiver<Result<Fetched, QueryError>>,
    fetcher: AbortOnDropHandle<()>,
    /// What follows the last page received; `None` until the first.
    then: Option<Then>,
    fetched: u64,
    total: Option<ApiTotal>,
    /// The column names the first page declared (reports that name them only there).
    columns: Option<Vec<String>>,
    /// The types of the columns the first page declared (reports that say them).
    types: Option<Vec<crate::records::schema::ColumnType>>,
}

/// A page as the fetcher read it: its body, and the page read far enough to page on (its
/// rows are read from the body later).
pub(super) struct Fetched {
    pub body: Body,
    pub page: Page,
    then: Then,
    /// The API's total of the whole result, as the first page reported it.
    total: Option<ApiTotal>,
    /// Where the chain stands after this page, when another follows (for a checkpoint).
    pub position: Option<Position>,
}

/// Where a request chain stands between two pages: enough to go on from there.
#[derive(Debug, Clone)]
pub struct Position {
    /// The next page's request.
    pub next: RequestSpec,
    pub cursor: CursorState,
    /// Records the API returned so far (before a `where` filter).
    pub returned: u64,
}

/// What follows a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// The next page, already requested.
    More,
    /// The API has no more pages.
    End,
    /// `max_pages` was reached while the API had more.
    Capped,
    /// `max_records` was reached while the API had more: not requested.
    Held,
}

/// What the fetcher needs, owned: it runs on its own task.
struct Fetcher {
    api: ApiClient,
    call: Call,
    cursor: Cursor,
    reader: Arc<PageReader>,
    max_pages: Option<u64>,
    max_records: Option<u64>,
    /// Pages fetched, and the records they held.
    fetched: u64,
    returned: u64,
    /// The chain goes on from a checkpoint: an error on its first page says the API refused
    /// the saved position.
    resumed: bool,
    /// Whether the API's total counts: not in a fan-out, whose every chain would report its
    /// own over the others'.
    totals: bool,
    /// `strict = true`: a page with a caveat fails the query.
    strict: bool,
}

impl Fetcher {
    /// Fetches and reads pages until the last (or a cap), handing each to the writer.
    async fn run(
        mut self,
        mut request: RequestSpec,
        out: mpsc::Sender<Result<Fetched, QueryError>>,
    ) {
        loop {
            let page = self.page(&mut request).await;
            let last = !matches!(
                page,
                Ok(Fetched {
                    then: Then::More,
                    ..
                })
            );
            if out.send(page).await.is_err() || last {
                return;
            }
        }
    }

    /// Fetches the page of `request`, reads it, and turns `request` into the next page's.
    async fn page(&mut self, request: &mut RequestSpec) -> Result<Fetched, QueryError> {
        // Boxed: the request's future is large, and this task is moved whole when spawned
        // (a fan-out spawns one per parent record).
        let body = match Box::pin(self.api.fetch(request, &self.call)).await {
            Ok(body) => body,
            Err(err) if std::mem::take(&mut self.resumed) && refuses_position(&err) => {
                return Err(QueryError::ResumeRefused(Box::new(err)))
            }
            Err(err) => return Err(err.into()),
        };
        self.resumed = false;
        let page = self.reader.read(body.text()?).map_err(|e| match e {
            PageError::NotJson(e) => body.not_json(e),
            PageError::NotRecords(why) => body.bad_page(why),
        })?;
        // What a report says of its numbers (sampled, not final, ...): for the summary, or,
        // `strict`, the end of the query before a row of it is written.
        let caveats = self.reader.caveats(&page);
        if !caveats.is_empty() {
            self.call.counters.caveats(caveats.clone());
            if self.strict {
                return Err(QueryError::Strict {
                    url: body.url.clone(),
                    caveats,
                });
            }
        }
        let count = page.count();
        self.fetched += 1;
        self.returned += count as u64;
        self.call.counters.page();
        // The API's own total, for the summary and a progress bar's percentage and ETA.
        let total = match self.fetched {
            1 if self.totals => api_total(page.fields()),
            _ => None,
        };
        if let Some(total) = &total {
            self.call.counters.set_total(total.value);
        }
        let more = self.cursor.advance(page.fields(), count, request);
        let more = more.map_err(|source| QueryError::Page {
            url: body.url.clone(),
            source,
        })?;
        let then = if !more {
            Then::End
        } else if self.max_pages.is_some_and(|max| self.fetched >= max) {
            Then::Capped
        } else if self.max_records.is_some_and(|max| self.returned >= max) {
            Then::Held
        } else {
            self.cursor.apply(request);
            Then::More
        };
        let position = (then == Then::More).then(|| Position {
            next: request.clone(),
            cursor: self.cursor.state(),
            returned: self.returned,
        });
        Ok(Fetched {
            body,
            page,
            then,
            total,
            position,
        })
    }
}

impl Pages {
    /// The pages of `plan` from `first`, its first request as rendered, or from `resume`,
    /// where a checkpoint left the chain.
    pub fn new(
        plan: &QueryPlan,
        first: RequestSpec,
        resume: Option<Position>,
        api: &ApiClient,
        call: Call,
        reader: Arc<PageReader>,
    ) -> Self {
        let (cursor, first, fetched, returned) = match resume {
            Some(at) => (
                Cursor::resume(plan.pagination.clone(), at.cursor),
                at.next,
                at.cursor.pages,
                at.returned,
            ),
            None => {
                let mut first = first;
                let mut cursor = Cursor::new(plan.pagination.clone());
                cursor.begin(&mut first);
                (cursor, first, 0, 0)
            }
        };
        let resumed = fetched > 0;
        let fetcher = Fetcher {
            api: api.clone(),
            call,
            cursor,
            reader: reader.clone(),
            max_pages: plan.query.max_pages,
            max_records: plan.query.max_records,
            fetched,
            returned,
            resumed,
            totals: plan.query.for_each.is_none(),
            strict: plan.query.strict,
        };
        let (tx, rx) = mpsc::channel(AHEAD);
        let task = tokio::spawn(fetcher.run(first, tx));
        Pages {
            reader,
            pages: rx,
            fetcher: AbortOnDropHandle::new(task),
            then: None,
            fetched,
            total: None,
            columns: None,
            types: None,
        }
    }

    /// The next page, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Fetched>, QueryError> {
        if self.then.is_some_and(|then| then != Then::More) {
            return Ok(None);
        }
        let fetched = match self.pages.recv().await {
            Some(page) => page?,
            None => return Err(QueryError::Task(fetcher_end(&mut self.fetcher).await)),
        };
        self.then = Some(fetched.then);
        self.fetched += 1;
        if fetched.total.is_some() {
            self.total = fetched.total.clone();
        }
        if self.columns.is_none() {
            self.columns = self.reader.declared_columns(&fetched.page);
        }
        if self.types.is_none() {
            self.types = self.reader.declared_types(&fetched.page);
        }
        Ok(Some(fetched))
    }

    /// True while another page is to come.
    pub fn has_more(&self) -> bool {
        matches!(self.then, None | Some(Then::More | Then::Held))
    }

    /// True when `max_pages` ended the chain while the API had more.
    pub fn capped(&self) -> bool {
        self.then == Some(Then::Capped)
    }

    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    /// The column names the first page declared, if the decoder reads them there.
    pub fn columns(&self) -> Option<&[String]> {
        self.columns.as_deref()
    }

    /// The types of the columns the first page declared, if the report says them.
    pub fn types(&self) -> Option<&[crate::records::schema::ColumnType]> {
        self.types.as_deref()
    }

    /// The size of the whole result, as the first page reported it.
    pub fn api_total(&self) -> Option<&ApiTotal> {
        self.total.as_ref()
    }
}

/// The first request of `plan`'s chain: `rendered` with the page size and first offset the
/// paging style sets (unless the query set them). What a checkpoint's fingerprint covers.
pub(super) fn first_request(plan: &QueryPlan, mut rendered: RequestSpec) -> RequestSpec {
    Cursor::new(plan.pagination.clone()).begin(&mut rendered);
    rendered
}

/// True when the first request of a resumed chain failed because the API no longer takes the
/// saved position (an expired page token, a BigQuery job gone): HTTP 400, 404 or 410.
fn refuses_position(err: &ApiError) -> bool {
    matches!(err, ApiError::Status { status, .. } if matches!(status.as_u16(), 400 | 404 | 410))
}

/// Why the fetcher hung up without a last page: it panicked or was cancelled.
async fn fetcher_end(fetcher: &mut AbortOnDropHandle<()>) -> String {
    match fetcher.await {
        Err(err) => err.to_string(),
        Ok(()) => "the page fetcher stopped early".to_owned(),
    }
}

fn api_total(page: &Value) -> Option<ApiTotal> {
    TOTAL_FIELDS.iter().find_map(|field| {
        let value = field
            .split('.')
            .try_fold(page, |value, key| value.get(key))?;
        let number = value.as_u64().or_else(|| value.as_str()?.parse().ok())?;
        Some(ApiTotal {
            field: (*field).to_owned(),
            value: number,
        })
    })
}
