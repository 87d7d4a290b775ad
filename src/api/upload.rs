//! Google's resumable upload protocol, for Cloud Storage objects and BigQuery load jobs alike:
//! a session (`uploadType=resumable`, its URI from `Location`), chunks `PUT` with
//! `Content-Range: bytes A-B/*` (each a multiple of [`QUANTUM`] but the last, which names the
//! total), `308` + `Range: bytes=0-N` for what the server holds, and the final `200`/`201`.
//!
//! Written here, not with google-apis-common's `ResumableUploadHelper`: that one needs the
//! whole content as a `Read + Seek` of known length up front (an export is a stream whose
//! length is known only at its end), panics on a `Range` header it cannot parse, and retries
//! through its delegate rather than the run's policy. Here a hostile `Range` is an error, and
//! a failed chunk (5xx, 429, a dropped connection) asks the session what it holds and sends
//! the rest, in the one retry loop.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, StatusCode};

use super::{ApiClient, ApiError, Call, Outgoing, RESUME_INCOMPLETE};
use crate::http::retry::{self, Try};
use crate::http::Response;

/// Chunks other than the last are multiples of this (256 KiB, the protocol's rule).
pub const QUANTUM: usize = 256 * 1024;

/// An upload session. Its URI lets anyone holding it write, without a token: it is registered
/// as a secret, so that no message or log shows it.
#[derive(Debug, Clone)]
pub struct Session {
    uri: String,
}

impl Session {
    /// The session an initiating request's answer names in `Location` (an http(s) URI).
    pub fn of(response: &Response) -> Option<Session> {
        let uri = response
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|uri| uri.starts_with("https://") || uri.starts_with("http://"))?
            .to_owned();
        crate::redact::register(&uri);
        if let Some((_, id)) = uri.split_once("upload_id=") {
            crate::redact::register(id.split('&').next().unwrap_or(id));
        }
        Some(Session { uri })
    }
}

/// Where a session stands after a chunk.
#[derive(Debug)]
pub enum Progress {
    /// The server holds this many bytes.
    Holds(u64),
    /// The last chunk landed: the final answer (its body is the object, the job).
    Done(Response),
}

/// Why a chunk did not land.
#[derive(Debug)]
pub enum ChunkError {
    /// No answer (after `retries` retries), or no request could be made.
    Api(Box<ApiError>, u32),
    /// A status that is neither progress nor done (an expired session, a precondition, a
    /// permission, a 5xx out of tries): the caller words it.
    Refused(Box<Response>),
    /// A `Range` that is not `bytes=0-N`.
    BadRange(HeaderValue),
    /// The session claims more than was sent, or lost what was sent before this chunk.
    Outside { held: u64, offset: u64, end: u64 },
    /// The session takes none of the bytes from here, try after try.
    Stuck { from: u64 },
}

impl ApiClient {
    /// Sends `bytes` at `offset` of `session` (`total`: this is the last chunk and the whole
    /// has that many bytes), with `extra` headers on the chunk. A chunk that fails in a way
    /// another try may fix is taken up where the session says it stands, by the run's policy.
    pub async fn put_chunk(
        &self,
        call: &Call,
        session: &Session,
        offset: u64,
        bytes: &Bytes,
        total: Option<u64>,
        extra: &[(HeaderName, String)],
    ) -> Result<Progress, ChunkError> {
        let end = offset + bytes.len() as u64;
        let from = AtomicU64::new(offset);
        let ask = AtomicBool::new(false);
        let within = |held: u64| {
            (offset..=end)
                .contains(&held)
                .then_some(held)
                .ok_or(ChunkError::Outside { held, offset, end })
        };
        let (from, ask, within) = (&from, &ask, &within);
        let attempt = move || async move {
            if ask.swap(false, Relaxed) {
                match self.upload_status(call, session, total).await {
                    Ok(Progress::Holds(held)) => match within(held) {
                        Ok(held) => from.store(held, Relaxed),
                        Err(err) => return Try::Done(Err(err)),
                    },
                    done => return Try::Done(done),
                }
            }
            let chunk = bytes.slice((from.load(Relaxed) - offset) as usize..);
            // The last chunk names the total; every other is done once the session holds it.
            let last = total == Some(end);
            let range = match (chunk.is_empty(), total) {
                (true, Some(total)) if last => format!("bytes */{total}"),
                (true, _) => return Try::Done(Ok(Progress::Holds(from.load(Relaxed)))),
                (false, total) => format!(
                    "bytes {}-{}/{}",
                    from.load(Relaxed),
                    end - 1,
                    total.map_or("*".to_owned(), |t| t.to_string())
                ),
            };
            let mut out = Outgoing::new(Method::PUT, session.uri.as_str())
                .header(header::CONTENT_RANGE, range)
                .body(chunk);
            out.headers.extend_from_slice(extra);
            let (why, failed) = match self.exchange(&out, call, 0).await {
                (Err(ApiError::Http(error)), _) if error.is_transient() => (
                    error.to_string(),
                    ChunkError::Api(Box::new(ApiError::Http(error)), 0),
                ),
                (Err(error), retries) => {
                    return Try::Done(Err(ChunkError::Api(Box::new(error), retries)))
                }
                (Ok(response), _) => match progress(&response) {
                    Some(Ok(Progress::Holds(held))) if held == end && !last => {
                        return Try::Done(Ok(Progress::Holds(end)))
                    }
                    Some(Ok(Progress::Holds(held))) => {
                        let held = match within(held) {
                            Ok(held) => held,
                            Err(err) => return Try::Done(Err(err)),
                        };
                        // Took part of the chunk: the rest follows at once. A session that
                        // takes nothing, again and again, counts as failing.
                        let stuck = held <= from.load(Relaxed);
                        from.store(held, Relaxed);
                        if !stuck {
                            return Try::Again;
                        }
                        return Try::Transient {
                            why: format!("the upload session takes none of the bytes from {held}"),
                            last: Err(ChunkError::Stuck { from: held }),
                            retry_after: None,
                        };
                    }
                    Some(answer) => return Try::Done(answer),
                    None if response.status.is_server_error()
                        || response.status == StatusCode::TOO_MANY_REQUESTS =>
                    {
                        let why = format!("a chunk answered HTTP {}", response.status.as_u16());
                        (why, ChunkError::Refused(Box::new(response)))
                    }
                    None => return Try::Done(Err(ChunkError::Refused(Box::new(response)))),
                },
            };
            // Ask the session what it holds before the next try, and go on from there.
            ask.store(true, Relaxed);
            Try::Transient {
                why: format!("{why}; asking the session where it stands"),
                last: Err(failed),
                retry_after: None,
            }
        };
        retry::retrying(self.retry_policy(), attempt, || call.counters.retry())
            .await
            .0
    }

    /// What `session` holds now (a `PUT` of no bytes, `Content-Range: bytes */TOTAL`).
    pub async fn upload_status(
        &self,
        call: &Call,
        session: &Session,
        total: Option<u64>,
    ) -> Result<Progress, ChunkError> {
        let range = format!(
            "bytes */{}",
            total.map_or("*".to_owned(), |t| t.to_string())
        );
        let out =
            Outgoing::new(Method::PUT, session.uri.as_str()).header(header::CONTENT_RANGE, range);
        let max_retries = self.retry_policy().max_retries;
        match self.exchange(&out, call, max_retries).await {
            (Err(error), retries) => Err(ChunkError::Api(Box::new(error), retries)),
            (Ok(response), _) => match progress(&response) {
                Some(answer) => answer,
                None => Err(ChunkError::Refused(Box::new(response))),
            },
        }
    }
}

/// An answer of the session: `308` (holds so much), `200`/`201` (done); `None` for another.
fn progress(response: &Response) -> Option<Result<Progress, ChunkError>> {
    match response.status {
        RESUME_INCOMPLETE => Some(match response.headers.get(header::RANGE) {
            None => Ok(Progress::Holds(0)),
            Some(value) => match value.to_str().ok().and_then(parse_range) {
                Some(held) => Ok(Progress::Holds(held)),
                None => Err(ChunkError::BadRange(value.clone())),
            },
        }),
        StatusCode::OK | StatusCode::CREATED => Some(Ok(Progress::Done(Response {
            status: response.status,
            headers: response.headers.clone(),
            body: response.body.clone(),
        }))),
        _ => None,
    }
}

/// `bytes=0-N` → `N + 1` bytes held. Anything else (another start, no dash, not a number) is
/// not read.
fn parse_range(text: &str) -> Option<u64> {
    let last = text.trim().strip_prefix("bytes=0-")?;
    last.parse::<u64>().ok()?.checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_hostile_or_not() {
        assert_eq!(parse_range("bytes=0-262143"), Some(262_144));
        assert_eq!(parse_range("bytes=0-0"), Some(1));
        for hostile in [
            "",
            "bytes=",
            "bytes=5-10",
            "bytes=0-",
            "bytes=0-x",
            "bytes=0-18446744073709551615",
            "0-10",
            "bytes=0--1",
        ] {
            assert_eq!(parse_range(hostile), None, "{hostile:?}");
        }
    }
}
