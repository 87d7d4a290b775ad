//! Google's resumable upload protocol: a session (`uploadType=resumable`, its URI from
//! `Location`), chunks `PUT` with `Content-Range: bytes A-B/*` (each a multiple of
//! [`QUANTUM`] but the last, which names the total), `308` + `Range: bytes=0-N` for what the
//! server holds, and the final `200`/`201` with the object. An unfinished session is invisible:
//! the object appears only when the last chunk lands.
//!
//! Written here, not with google-apis-common's `ResumableUploadHelper`: that one needs the
//! whole content as a `Read + Seek` of known length up front (an export is a stream whose
//! length is known only at its end), panics on a `Range` header it cannot parse, and retries
//! through its delegate rather than the run's policy. Here a hostile `Range` is an error, and
//! a failed chunk (5xx, a dropped connection) asks the session what it holds and sends the
//! rest, by the run's retry policy.

use bytes::Bytes;
use http::{header, Method, StatusCode};

use super::{Call, ObjectMeta, ObjectUrl, Precondition, Storage, StorageError};

/// Chunks other than the last are multiples of this (256 KiB, the protocol's rule).
pub const QUANTUM: usize = 256 * 1024;

/// An upload session. Its URI lets anyone holding it write the object, without a token: it is
/// registered as a secret, so that no message or log shows it.
#[derive(Debug, Clone)]
pub struct Session {
    uri: String,
    pub object: ObjectUrl,
}

/// Where a session stands after a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The server holds this many bytes.
    Holds(u64),
    /// The last chunk landed: the object.
    Done(Box<ObjectMeta>),
}

impl Storage {
    /// Starts an upload of `object` that lands only if `precondition` still holds then (else
    /// the last chunk gets `412`: [`StorageError::Changed`]).
    pub async fn start_upload(
        &self,
        object: &ObjectUrl,
        content_type: &str,
        precondition: Precondition,
    ) -> Result<Session, StorageError> {
        let metadata = serde_json::json!({"name": object.name, "contentType": content_type});
        let call = Call {
            method: Method::POST,
            url: self.upload_url(object, precondition),
            headers: vec![
                (
                    header::CONTENT_TYPE,
                    "application/json; charset=UTF-8".to_owned(),
                ),
                (
                    header::HeaderName::from_static("x-upload-content-type"),
                    content_type.to_owned(),
                ),
            ],
            body: Bytes::from(metadata.to_string()),
            what: "start an upload",
        };
        let response = self.send(&call).await?;
        let shown = object.to_string();
        if response.status == StatusCode::PRECONDITION_FAILED {
            return Err(StorageError::Changed { url: shown });
        }
        if !response.status.is_success() {
            return Err(super::refused(&shown, call.what, &response));
        }
        let uri = response
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|uri| uri.starts_with("https://") || uri.starts_with("http://"))
            .ok_or_else(|| StorageError::BadAnswer {
                url: shown.clone(),
                why: "the upload session has no Location".to_owned(),
            })?
            .to_owned();
        crate::redact::register(&uri);
        if let Some((_, id)) = uri.split_once("upload_id=") {
            crate::redact::register(id.split('&').next().unwrap_or(id));
        }
        Ok(Session {
            uri,
            object: object.clone(),
        })
    }

    /// Sends `bytes` at `offset` of `session` (`total`: this is the last chunk and the object
    /// has that many bytes; `crc32c` of the whole object, which Cloud Storage then checks).
    /// A chunk that fails in a way another try may fix (a 5xx, 429, a dropped connection) is
    /// taken up where the session says it stands, by the run's retry policy.
    pub async fn put_chunk(
        &self,
        session: &Session,
        offset: u64,
        bytes: &Bytes,
        total: Option<u64>,
        crc32c: Option<u32>,
    ) -> Result<Progress, StorageError> {
        let end = offset + bytes.len() as u64;
        let mut from = offset;
        let mut failures = 0;
        loop {
            let chunk = bytes.slice((from - offset) as usize..);
            let range = match (chunk.is_empty(), total) {
                (true, Some(total)) => format!("bytes */{total}"),
                (true, None) => return Ok(Progress::Holds(from)),
                (false, total) => format!(
                    "bytes {from}-{}/{}",
                    end - 1,
                    total.map_or("*".to_owned(), |t| t.to_string())
                ),
            };
            let mut headers = vec![(header::CONTENT_RANGE, range)];
            if let (Some(crc), Some(_)) = (crc32c, total) {
                headers.push((
                    header::HeaderName::from_static("x-goog-hash"),
                    format!("crc32c={}", super::crc32c_text(crc)),
                ));
            }
            let call = Call {
                method: Method::PUT,
                url: session.uri.clone(),
                headers,
                body: chunk,
                what: "upload a chunk",
            };
            let failed = match self.send_retrying(&call, 0).await {
                Ok(response) => match self.progress(session, &response, total) {
                    Ok(Some(Progress::Done(meta))) => return Ok(Progress::Done(meta)),
                    Ok(Some(Progress::Holds(held))) if held == end && total.is_none() => {
                        return Ok(Progress::Holds(end))
                    }
                    // Took part of the chunk: the rest follows at once (a session that takes
                    // nothing, again and again, counts as failing).
                    Ok(Some(Progress::Holds(held))) if held > from => {
                        from = self.held_within(session, held, offset, end)?;
                        continue;
                    }
                    Ok(Some(Progress::Holds(held))) => {
                        from = self.held_within(session, held, offset, end)?;
                        failures += 1;
                        if failures > self.retry_policy().max_retries {
                            return Err(StorageError::BadAnswer {
                                url: session.object.to_string(),
                                why: format!(
                                    "the upload session takes none of the bytes from {from}"
                                ),
                            });
                        }
                        tokio::time::sleep(self.retry_policy().delay(failures, None)).await;
                        continue;
                    }
                    Ok(None) => StorageError::BadAnswer {
                        url: session.object.to_string(),
                        why: format!("HTTP {} to a chunk", response.status.as_u16()),
                    },
                    Err(err) => err,
                },
                Err(err) => err,
            };
            // Refused outright (an expired session, a precondition, a permission) or out of
            // tries: said as is. Otherwise ask the session what it holds and go on from there.
            if !is_transient(&failed) || failures >= self.retry_policy().max_retries {
                return Err(failed);
            }
            let delay = self.retry_policy().delay(failures, None);
            tracing::info!(
                "uploading {}: {failed}; asking the session where it stands in {} ms",
                session.object,
                delay.as_millis()
            );
            failures += 1;
            tokio::time::sleep(delay).await;
            match self.status(session, total).await? {
                Progress::Done(meta) => return Ok(Progress::Done(meta)),
                Progress::Holds(held) => from = self.held_within(session, held, offset, end)?,
            }
        }
    }

    /// What the session holds now (a `PUT` of no bytes, `Content-Range: bytes */TOTAL`).
    pub async fn status(
        &self,
        session: &Session,
        total: Option<u64>,
    ) -> Result<Progress, StorageError> {
        let range = format!(
            "bytes */{}",
            total.map_or("*".to_owned(), |t| t.to_string())
        );
        let call = Call {
            method: Method::PUT,
            url: session.uri.clone(),
            headers: vec![(header::CONTENT_RANGE, range)],
            body: Bytes::new(),
            what: "ask an upload where it stands",
        };
        let response = self.send(&call).await?;
        self.progress(session, &response, total)?
            .ok_or_else(|| StorageError::BadAnswer {
                url: session.object.to_string(),
                why: format!("HTTP {} to a status query", response.status.as_u16()),
            })
    }

    /// `held` as the next offset to send from, if it lies in `offset..=end` (the bytes this
    /// chunk holds); a session that claims more than it was sent, or lost what was sent
    /// before this chunk, cannot be trusted.
    fn held_within(
        &self,
        session: &Session,
        held: u64,
        offset: u64,
        end: u64,
    ) -> Result<u64, StorageError> {
        match (offset..=end).contains(&held) {
            true => Ok(held),
            false => Err(StorageError::BadAnswer {
                url: session.object.to_string(),
                why: format!(
                    "the upload session says it holds {held} bytes, but {offset} to {end} were sent: it is not continued"
                ),
            }),
        }
    }

    /// An answer of the session: `308` (holds so much), `200`/`201` (done: the object, checked
    /// to have `total` bytes), `412`, or an error; `None` for a status that says neither.
    fn progress(
        &self,
        session: &Session,
        response: &crate::http::Response,
        total: Option<u64>,
    ) -> Result<Option<Progress>, StorageError> {
        let shown = session.object.to_string();
        match response.status.as_u16() {
            308 => {
                let held = match response.headers.get(header::RANGE) {
                    None => 0,
                    Some(value) => value.to_str().ok().and_then(parse_range).ok_or_else(|| {
                        StorageError::BadAnswer {
                            url: shown.clone(),
                            why: format!("an upload Range header gscrape cannot read: {value:?}"),
                        }
                    })?,
                };
                Ok(Some(Progress::Holds(held)))
            }
            200 | 201 => {
                let meta: ObjectMeta = serde_json::from_slice(&response.body).map_err(|e| {
                    StorageError::BadAnswer {
                        url: shown.clone(),
                        why: format!("the finished upload's object: {e}"),
                    }
                })?;
                if total.is_some_and(|t| t != meta.size) {
                    return Err(StorageError::BadAnswer {
                        url: shown,
                        why: format!(
                            "the object has {} bytes, but {} were sent",
                            meta.size,
                            total.unwrap_or_default()
                        ),
                    });
                }
                Ok(Some(Progress::Done(Box::new(meta))))
            }
            412 => Err(StorageError::Changed { url: shown }),
            status if response.status.is_server_error() || status == 429 => {
                Err(StorageError::Refused {
                    url: shown,
                    what: "cannot upload a chunk".to_owned(),
                    status: response.status,
                    google: crate::http::GoogleError::from_body(&response.body),
                })
            }
            _ => Err(super::refused(&shown, "upload a chunk", response)),
        }
    }
}

/// Whether a chunk's failure may pass: a connection that dropped, a timeout, a 5xx or 429.
fn is_transient(err: &StorageError) -> bool {
    match err {
        StorageError::Http { source, .. } => source.is_transient(),
        StorageError::Refused { status, .. } => status.is_server_error() || status.as_u16() == 429,
        _ => false,
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
