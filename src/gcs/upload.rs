//! Cloud Storage's side of Google's resumable upload protocol ([`crate::api::upload`], shared
//! with BigQuery's loads): a session for an object under a generation precondition, and its
//! answers read as Cloud Storage gives them (the object, `412`). An unfinished session is
//! invisible: the object appears only when the last chunk lands.

use bytes::Bytes;
use http::{header, Method, StatusCode};

use super::{Call, ObjectMeta, ObjectUrl, Precondition, Storage, StorageError};
pub use crate::api::upload::QUANTUM;
use crate::api::upload::{self as protocol, ChunkError};

/// An upload session of an object.
#[derive(Debug, Clone)]
pub struct Session {
    session: protocol::Session,
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
        let session = protocol::Session::of(&response).ok_or_else(|| StorageError::BadAnswer {
            url: shown.clone(),
            why: "the upload session has no Location".to_owned(),
        })?;
        Ok(Session {
            session,
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
        let mut extra = Vec::new();
        if let (Some(crc), Some(_)) = (crc32c, total) {
            extra.push((
                header::HeaderName::from_static("x-goog-hash"),
                format!("crc32c={}", super::crc32c_text(crc)),
            ));
        }
        let progress = self
            .api
            .put_chunk(&self.call, &session.session, offset, bytes, total, &extra)
            .await;
        self.progress(session, progress, total)
    }

    /// The protocol's answer as Cloud Storage's: the object (checked to have `total` bytes),
    /// or the error that says why not.
    fn progress(
        &self,
        session: &Session,
        progress: Result<protocol::Progress, ChunkError>,
        total: Option<u64>,
    ) -> Result<Progress, StorageError> {
        let shown = session.object.to_string();
        let bad = |why: String| StorageError::BadAnswer {
            url: shown.clone(),
            why,
        };
        match progress {
            Ok(protocol::Progress::Holds(held)) => Ok(Progress::Holds(held)),
            Ok(protocol::Progress::Done(response)) => {
                let meta: ObjectMeta = serde_json::from_slice(&response.body)
                    .map_err(|e| bad(format!("the finished upload's object: {e}")))?;
                if total.is_some_and(|t| t != meta.size) {
                    return Err(bad(format!(
                        "the object has {} bytes, but {} were sent",
                        meta.size,
                        total.unwrap_or_default()
                    )));
                }
                Ok(Progress::Done(Box::new(meta)))
            }
            Err(ChunkError::Api(err, retries)) => Err(self.failed(shown.clone(), *err, retries)),
            Err(ChunkError::Refused(response)) => match response.status.as_u16() {
                412 => Err(StorageError::Changed { url: shown }),
                status if response.status.is_server_error() || status == 429 => {
                    Err(StorageError::Refused {
                        url: shown,
                        what: "cannot upload a chunk".to_owned(),
                        status: response.status,
                        google: crate::http::GoogleError::from_body(&response.body),
                    })
                }
                _ => Err(super::refused(&shown, "upload a chunk", &response)),
            },
            Err(ChunkError::BadRange(value)) => Err(bad(format!(
                "an upload Range header gscrape cannot read: {value:?}"
            ))),
            Err(ChunkError::Outside { held, offset, end }) => Err(bad(format!(
                "the upload session says it holds {held} bytes, but {offset} to {end} were sent: it is not continued"
            ))),
            Err(ChunkError::Stuck { from }) => Err(bad(format!(
                "the upload session takes none of the bytes from {from}"
            ))),
        }
    }
}
