//! Cloud Storage, for outputs and run state that outlive the machine (a Cloud Run or
//! Kubernetes task's disk goes with it): `gs://` URLs ([`ObjectUrl`]), the JSON API calls gscrape
//! makes ([`Storage`]: object metadata, download, uploads with generation preconditions,
//! compose, delete, list) and Google's resumable upload protocol ([`upload`]).
//!
//! Every call goes through the one call layer ([`crate::api::ApiClient`]) and is retried as
//! Google's guidance says (429, 5xx, a dropped connection), which is safe because every write names a precondition: a retried write that had landed meets a
//! `412`, never a second copy. A run's Cloud Storage work goes through one connection on a
//! thread of its own ([`io::Gcs`]), so that the synchronous sinks and state files can use it
//! from any thread without stalling the runtime's.

pub mod io;
pub mod upload;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, StatusCode};
use serde::Deserialize;

use crate::api::request::encode_path_segment;
use crate::api::{ApiClient, ApiError, Call as ApiCall, Outgoing};
use crate::auth::{AuthError, Authorizer};
use crate::error::Failure;
use crate::http::limits::Limits;
use crate::http::retry::RetryPolicy;
use crate::http::{GoogleError, HttpError, HyperClient, Response};

/// Cloud Storage's root, unless an endpoint (`STORAGE_EMULATOR_HOST`, `GSCRAPE_ENDPOINT_STORAGE`)
/// says otherwise.
pub const DEFAULT_ROOT: &str = "https://storage.googleapis.com/";

/// The scope of every Cloud Storage call gscrape makes (outputs, state, compose).
pub const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// One object: `gs://BUCKET/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectUrl {
    pub bucket: String,
    pub name: String,
}

/// True when `text` names Cloud Storage (`gs://…`) rather than a local path.
pub fn is_gs(text: &str) -> bool {
    text.starts_with("gs://")
}

impl ObjectUrl {
    /// `gs://BUCKET/NAME`, checked as Cloud Storage checks them (bucket names: 3–63 lowercase
    /// letters, digits, `-`, `_`, `.`; object names: 1–1024 bytes, no line breaks).
    pub fn parse(text: &str) -> Result<ObjectUrl, String> {
        let rest = text
            .strip_prefix("gs://")
            .ok_or_else(|| format!("{text:?} is not a gs://BUCKET/NAME URL"))?;
        let (bucket, name) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(|why| format!("{text:?}: {why}"))?;
        if name.is_empty() || name.len() > 1024 || name.contains(['\r', '\n']) {
            return Err(format!(
                "{text:?}: an object name is 1 to 1024 bytes without line breaks"
            ));
        }
        Ok(ObjectUrl {
            bucket: bucket.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The object `name` "beside" this one: the same bucket, the same folder.
    pub fn sibling(&self, name: &str) -> ObjectUrl {
        let folder = match self.name.rfind('/') {
            Some(at) => &self.name[..=at],
            None => "",
        };
        ObjectUrl {
            bucket: self.bucket.clone(),
            name: format!("{folder}{name}"),
        }
    }

    /// The last part of the name (the "file name").
    pub fn file_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

impl std::fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gs://{}/{}", self.bucket, self.name)
    }
}

/// A `gs://BUCKET/PREFIX/` location (`--out-dir`, `--state`): objects are named under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub bucket: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
}

impl Prefix {
    pub fn parse(text: &str) -> Result<Prefix, String> {
        let rest = text
            .strip_prefix("gs://")
            .ok_or_else(|| format!("{text:?} is not a gs://BUCKET/PREFIX/ URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(|why| format!("{text:?}: {why}"))?;
        let mut prefix = prefix.trim_start_matches('/').to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Prefix {
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    /// The object `relative` under this prefix.
    pub fn object(&self, relative: &str) -> ObjectUrl {
        ObjectUrl {
            bucket: self.bucket.clone(),
            name: format!("{}{}", self.prefix, relative.trim_start_matches('/')),
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gs://{}/{}", self.bucket, self.prefix)
    }
}

fn check_bucket(bucket: &str) -> Result<(), String> {
    let fits = (3..=222).contains(&bucket.len())
        && bucket.split('.').all(|part| (1..=63).contains(&part.len()))
        && bucket.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && bucket
            .bytes()
            .next()
            .zip(bucket.bytes().last())
            .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    match fits {
        true => Ok(()),
        false => Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        )),
    }
}

/// An object as Cloud Storage describes it (the fields gscrape reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub bucket: String,
    pub name: String,
    #[serde(deserialize_with = "number_text")]
    pub generation: i64,
    #[serde(deserialize_with = "number_text")]
    pub size: u64,
    /// Base64 of the big-endian CRC-32C, as Cloud Storage gives it.
    #[serde(default)]
    pub crc32c: Option<String>,
    /// Base64 of the MD5 (absent for composed objects).
    #[serde(default)]
    pub md5_hash: Option<String>,
    #[serde(default)]
    pub updated: Option<String>,
    #[serde(default)]
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
}

impl ObjectMeta {
    pub fn url(&self) -> ObjectUrl {
        ObjectUrl {
            bucket: self.bucket.clone(),
            name: self.name.clone(),
        }
    }
}

/// Cloud Storage sends int64 fields as JSON strings; a number is taken too.
fn number_text<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    let text = match &value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(serde::de::Error::custom(format!("not a number: {other}"))),
    };
    text.parse()
        .map_err(|_| serde::de::Error::custom(format!("not a number: {text:?}")))
}

/// The CRC-32C of `bytes` as Cloud Storage writes it: base64 of the big-endian value.
pub fn crc32c_text(crc: u32) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// What a write expects of the object it writes (`ifGenerationMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// It must not exist (`ifGenerationMatch=0`).
    Absent,
    /// It must be this generation: nobody wrote it since it was read.
    Generation(i64),
    /// Whatever is there (a run's own state file, which its lock keeps to one writer; a
    /// retried write writes the same bytes again).
    Any,
}

impl Precondition {
    /// The precondition that replaces what `meta` describes (absent: `None`).
    pub fn replacing(meta: Option<&ObjectMeta>) -> Precondition {
        match meta {
            Some(meta) => Precondition::Generation(meta.generation),
            None => Precondition::Absent,
        }
    }

    /// `ifGenerationMatch=…` as a query parameter after others (`&…`), or nothing.
    fn param(self) -> String {
        match self {
            Precondition::Absent => "&ifGenerationMatch=0".to_owned(),
            Precondition::Generation(g) => format!("&ifGenerationMatch={g}"),
            Precondition::Any => String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{url}: {what} (HTTP {}{})", .status.as_u16(), google_words(.google))]
    Refused {
        url: String,
        what: String,
        status: StatusCode,
        google: GoogleError,
    },
    #[error("{url} was changed by another writer since this run read it (HTTP 412, ifGenerationMatch): not replaced; run again to export over the new object, or give each writer its own name")]
    Changed { url: String },
    #[error("{url}: {source}{}", crate::http::retry::gave_up_note(*.retries))]
    Http {
        url: String,
        retries: u32,
        #[source]
        source: HttpError,
    },
    #[error("{url}: Cloud Storage answered what gscrape cannot read: {why}")]
    BadAnswer { url: String, why: String },
    #[error("Cloud Storage: {0}")]
    Auth(#[from] AuthError),
    #[error("Cloud Storage is not set up for this command (no gs:// output or state)")]
    NotConnected,
    #[error("{0}")]
    Other(String),
}

fn google_words(google: &GoogleError) -> String {
    match google.message.is_empty() {
        true => String::new(),
        false => format!(": {google}"),
    }
}

impl StorageError {
    pub fn kind(&self) -> Failure {
        match self {
            StorageError::Refused { status, google, .. } => {
                crate::api::kind_of_status(*status, google)
            }
            StorageError::Auth(err) => err.kind(),
            StorageError::NotConnected => Failure::BadInput,
            _ => Failure::Remote,
        }
    }

    /// True for "no such object" (a read of what is not there).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::Refused { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// The Cloud Storage JSON API, as one credential (the run's own, never a delegated user).
/// Its requests go through an [`ApiClient`] of its own: its connections live on the Cloud
/// Storage thread's runtime ([`io`]), which must not wait for the run's.
#[derive(Clone)]
pub struct Storage {
    api: ApiClient,
    call: ApiCall,
    /// Ends in `/`.
    root: String,
}

/// One request to make (and to make again on a retry).
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(header::HeaderName, String)>,
    pub body: Bytes,
    /// What the request does, for messages ("upload", "read the lock").
    pub what: &'a str,
}

impl Storage {
    pub fn new(
        client: HyperClient,
        auth: Authorizer,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Self {
        let root = crate::endpoints::root_url("storage", DEFAULT_ROOT);
        // Not the run's limits: the sinks wait for Cloud Storage while holding none.
        let unlimited = NonZeroUsize::new(1 << 20).expect("not zero");
        let api = ApiClient::new(client, timeout, retry, Arc::new(Limits::new(unlimited)));
        let call = ApiCall {
            auth,
            api: Arc::from("storage"),
            counters: Arc::default(),
            accepts: Arc::default(),
            quota: crate::quota::Tag::default(),
        };
        Storage { api, call, root }
    }

    fn object_url(&self, object: &ObjectUrl) -> String {
        format!(
            "{}storage/v1/b/{}/o/{}",
            self.root,
            encode_path_segment(&object.bucket),
            encode_path_segment(&object.name)
        )
    }

    /// Sends `call` through the one call layer ([`ApiClient::exchange`]): transient failures
    /// retried by the run's policy, a 401 answered once with a fresh token. Returns any final
    /// answer; the caller decides what its status means.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Response, StorageError> {
        self.send_retrying(call, self.api.retry_policy().max_retries)
            .await
    }

    /// [`Storage::send`] with at most `max_retries` retries (0: one try; the resumable upload
    /// decides itself how to go on after a failed chunk).
    pub(crate) async fn send_retrying(
        &self,
        call: &Call<'_>,
        max_retries: u32,
    ) -> Result<Response, StorageError> {
        let out = Outgoing {
            method: call.method.clone(),
            url: call.url.clone(),
            headers: call.headers.clone(),
            body: call.body.clone(),
        };
        let (result, retries) = self.api.exchange(&out, &self.call, max_retries).await;
        let shown = || {
            call.url
                .parse()
                .map(|uri| crate::http::shown_url(&uri))
                .unwrap_or_default()
        };
        result.map_err(|err| match err {
            ApiError::BadUrl { .. } => StorageError::BadAnswer {
                url: call.url.clone(),
                why: "not a URL".to_owned(),
            },
            err => self.failed(shown(), err, retries),
        })
    }

    /// A request to `url` that got no answer (after `retries` retries), as Cloud Storage's error.
    pub(crate) fn failed(&self, url: String, err: ApiError, retries: u32) -> StorageError {
        match err {
            ApiError::Http(source) => StorageError::Http {
                url,
                retries,
                source,
            },
            ApiError::Auth(err) => StorageError::Auth(err),
            ApiError::InsecureBearer { url } => {
                StorageError::Other(format!("{url}: {}", crate::http::PLAIN_HTTP_RULE))
            }
            other => StorageError::Other(other.to_string()),
        }
    }

    /// `response` as `T` when it succeeded; the error that says why otherwise.
    fn answer<T: serde::de::DeserializeOwned>(
        url: &str,
        what: &str,
        response: Response,
    ) -> Result<T, StorageError> {
        if response.status == StatusCode::PRECONDITION_FAILED {
            return Err(StorageError::Changed {
                url: url.to_owned(),
            });
        }
        if !response.status.is_success() {
            return Err(refused(url, what, &response));
        }
        serde_json::from_slice(&response.body).map_err(|e| StorageError::BadAnswer {
            url: url.to_owned(),
            why: e.to_string(),
        })
    }

    /// What Cloud Storage says of `object`; `None` when there is no such object.
    pub async fn meta(&self, object: &ObjectUrl) -> Result<Option<ObjectMeta>, StorageError> {
        let call = Call {
            method: Method::GET,
            url: self.object_url(object),
            headers: Vec::new(),
            body: Bytes::new(),
            what: "read its metadata",
        };
        let response = self.send(&call).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::answer(&object.to_string(), call.what, response).map(Some)
    }

    /// The bytes of `object` (a small one: state files) and its metadata; `None` when absent.
    pub async fn read(
        &self,
        object: &ObjectUrl,
    ) -> Result<Option<(Bytes, ObjectMeta)>, StorageError> {
        let Some(meta) = self.meta(object).await? else {
            return Ok(None);
        };
        match self.read_generation(object, meta.generation).await? {
            Some(bytes) => Ok(Some((bytes, meta))),
            // Removed in between: as if it never was.
            None => Ok(None),
        }
    }

    /// The bytes of `object` at `generation` (`None`: that generation is gone).
    pub async fn read_generation(
        &self,
        object: &ObjectUrl,
        generation: i64,
    ) -> Result<Option<Bytes>, StorageError> {
        let call = Call {
            method: Method::GET,
            url: format!(
                "{}?alt=media&generation={generation}",
                self.object_url(object)
            ),
            headers: Vec::new(),
            body: Bytes::new(),
            what: "read it",
        };
        let response = self.send(&call).await?;
        match response.status {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => Ok(Some(response.body)),
            _ => Err(refused(&object.to_string(), call.what, &response)),
        }
    }

    /// Bytes `start..start + len` of `object` at `generation` (a part read a range at a time,
    /// so that memory stays flat whatever its size); `None`: that generation is gone.
    pub async fn read_range(
        &self,
        object: &ObjectUrl,
        generation: i64,
        start: u64,
        len: u64,
    ) -> Result<Option<Bytes>, StorageError> {
        let call = Call {
            method: Method::GET,
            url: format!(
                "{}?alt=media&generation={generation}",
                self.object_url(object)
            ),
            headers: vec![(
                header::RANGE,
                format!("bytes={start}-{}", start + len.max(1) - 1),
            )],
            body: Bytes::new(),
            what: "read it",
        };
        let response = self.send(&call).await?;
        match response.status {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::PARTIAL_CONTENT => Ok(Some(response.body)),
            // The whole object (a server that ignores ranges): the range of it.
            StatusCode::OK => {
                let body = response.body;
                let from = usize::try_from(start).unwrap_or(usize::MAX).min(body.len());
                let to = usize::try_from(start + len)
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                Ok(Some(body.slice(from..to)))
            }
            _ => Err(refused(&object.to_string(), call.what, &response)),
        }
    }

    /// Writes `bytes` as `object` in one request, if `precondition` holds (else `Changed`).
    ///
    /// A multipart upload (the metadata, then the bytes), not a media one: Cloud Storage
    /// checks `ifGenerationMatch` on both, but fake-gcs-server, the emulator people develop
    /// against, only on multipart — with media uploads two runs would both "take" the run lock.
    pub async fn write(
        &self,
        object: &ObjectUrl,
        bytes: Bytes,
        content_type: &str,
        precondition: Precondition,
    ) -> Result<ObjectMeta, StorageError> {
        let metadata = serde_json::json!({"name": object.name, "contentType": content_type});
        let (boundary, body) = multipart(&metadata.to_string(), content_type, &bytes);
        let call = Call {
            method: Method::POST,
            url: format!(
                "{}upload/storage/v1/b/{}/o?uploadType=multipart{}",
                self.root,
                encode_path_segment(&object.bucket),
                precondition.param()
            ),
            headers: vec![(
                header::CONTENT_TYPE,
                format!("multipart/related; boundary={boundary}"),
            )],
            body,
            what: "write it",
        };
        let response = self.send(&call).await?;
        Self::answer(&object.to_string(), call.what, response)
    }

    /// Removes `object` (at `generation`, when given). Absent already is done.
    pub async fn delete(
        &self,
        object: &ObjectUrl,
        generation: Option<i64>,
    ) -> Result<(), StorageError> {
        let mut url = self.object_url(object);
        if let Some(generation) = generation {
            url.push_str(&format!("?ifGenerationMatch={generation}"));
        }
        let call = Call {
            method: Method::DELETE,
            url,
            headers: Vec::new(),
            body: Bytes::new(),
            what: "remove it",
        };
        let response = self.send(&call).await?;
        match response.status {
            StatusCode::NOT_FOUND => Ok(()),
            StatusCode::PRECONDITION_FAILED => Err(StorageError::Changed {
                url: object.to_string(),
            }),
            status if status.is_success() => Ok(()),
            _ => Err(refused(&object.to_string(), call.what, &response)),
        }
    }

    /// Joins `sources` (at most [`MAX_COMPOSE`], of `destination`'s bucket, each at its
    /// generation) into `destination`, if `precondition` holds.
    pub async fn compose_once(
        &self,
        destination: &ObjectUrl,
        sources: &[ObjectMeta],
        content_type: &str,
        precondition: Precondition,
    ) -> Result<ObjectMeta, StorageError> {
        let body = serde_json::json!({
            "sourceObjects": sources
                .iter()
                .map(|s| serde_json::json!({"name": s.name, "generation": s.generation.to_string()}))
                .collect::<Vec<_>>(),
            "destination": {"contentType": content_type},
        });
        let call = Call {
            method: Method::POST,
            url: format!(
                "{}/compose?alt=json{}",
                self.object_url(destination),
                precondition.param()
            ),
            headers: vec![(header::CONTENT_TYPE, "application/json".to_owned())],
            body: Bytes::from(body.to_string()),
            what: "compose it",
        };
        let response = self.send(&call).await?;
        Self::answer(&destination.to_string(), call.what, response)
    }

    /// Joins any number of `sources`, in order, into `destination` (if `precondition` holds):
    /// 32 at a time into intermediate objects named by `scratch(n)`, which are removed after.
    pub async fn compose(
        &self,
        destination: &ObjectUrl,
        sources: &[ObjectMeta],
        content_type: &str,
        precondition: Precondition,
        scratch: &(dyn Fn(usize) -> ObjectUrl + Sync),
    ) -> Result<ObjectMeta, StorageError> {
        let mut level: Vec<ObjectMeta> = sources.to_vec();
        let mut made: Vec<ObjectMeta> = Vec::new();
        let result = async {
            while level.len() > MAX_COMPOSE {
                let mut next = Vec::new();
                for group in level.chunks(MAX_COMPOSE) {
                    let name = scratch(made.len());
                    let meta = self
                        .compose_once(&name, group, content_type, Precondition::Absent)
                        .await?;
                    made.push(meta.clone());
                    next.push(meta);
                }
                level = next;
            }
            self.compose_once(destination, &level, content_type, precondition)
                .await
        }
        .await;
        for meta in &made {
            let _ = self.delete(&meta.url(), Some(meta.generation)).await;
        }
        result
    }

    /// The objects whose names start with `prefix` in `bucket`.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Listing {
            #[serde(default)]
            items: Vec<ObjectMeta>,
            next_page_token: Option<String>,
        }
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}storage/v1/b/{}/o?prefix={}",
                self.root,
                encode_path_segment(bucket),
                encode_path_segment(prefix)
            );
            if let Some(token) = &token {
                url.push_str(&format!("&pageToken={}", encode_path_segment(token)));
            }
            let call = Call {
                method: Method::GET,
                url,
                headers: Vec::new(),
                body: Bytes::new(),
                what: "list objects",
            };
            let response = self.send(&call).await?;
            let shown = format!("gs://{bucket}/{prefix}");
            let listing: Listing = Self::answer(&shown, call.what, response)?;
            found.extend(listing.items);
            match listing.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => return Ok(found),
            }
        }
    }

    pub(crate) fn upload_url(&self, object: &ObjectUrl, precondition: Precondition) -> String {
        format!(
            "{}upload/storage/v1/b/{}/o?uploadType=resumable&name={}{}",
            self.root,
            encode_path_segment(&object.bucket),
            encode_path_segment(&object.name),
            precondition.param()
        )
    }
}

/// A `multipart/related` body of the JSON `metadata` and `bytes` (of `content_type`), and its
/// boundary: random, and found in neither part.
fn multipart(metadata: &str, content_type: &str, bytes: &[u8]) -> (String, Bytes) {
    let boundary = loop {
        let boundary = format!(
            "gscrape-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let inside = |text: &[u8]| memchr::memmem::find(text, boundary.as_bytes()).is_some();
        if !inside(bytes) && !inside(metadata.as_bytes()) {
            break boundary;
        }
    };
    let mut body = Vec::with_capacity(bytes.len() + metadata.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
             --{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (boundary, Bytes::from(body))
}

/// At most this many sources per compose request (Cloud Storage's limit).
pub const MAX_COMPOSE: usize = 32;

pub(crate) fn refused(url: &str, what: &str, response: &Response) -> StorageError {
    let hint = match response.status.as_u16() {
        403 => " (the run's credential needs roles/storage.objectUser on the bucket, and the scope devstorage.read_write)",
        404 => " (no such bucket? check its name, and that the run's credential may see it)",
        _ => "",
    };
    StorageError::Refused {
        url: url.to_owned(),
        what: format!("cannot {what}{hint}"),
        status: response.status,
        google: GoogleError::from_body(&response.body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_as_cloud_storage_checks_them() {
        let url = ObjectUrl::parse("gs://my-bucket/reports/files.csv").unwrap();
        assert_eq!(url.bucket, "my-bucket");
        assert_eq!(url.name, "reports/files.csv");
        assert_eq!(url.to_string(), "gs://my-bucket/reports/files.csv");
        assert_eq!(url.file_name(), "files.csv");
        assert_eq!(
            url.sibling(".x.tmp").to_string(),
            "gs://my-bucket/reports/.x.tmp"
        );
        for bad in [
            "gs://",
            "gs://Bucket/x",
            "gs://ab/x",
            "gs://bucket",
            "gs://bucket/",
            "gs://-bucket/x",
            "s3://bucket/x",
        ] {
            assert!(ObjectUrl::parse(bad).is_err(), "{bad}");
        }
        let prefix = Prefix::parse("gs://b-1/state").unwrap();
        assert_eq!(prefix.to_string(), "gs://b-1/state/");
        assert_eq!(prefix.object("run.lock").name, "state/run.lock");
        assert_eq!(Prefix::parse("gs://b-1").unwrap().object("x").name, "x");
    }

    #[test]
    fn a_multipart_body_holds_the_metadata_then_the_bytes() {
        let (boundary, body) = multipart(r#"{"name":"a"}"#, "text/csv", b"x,y\r\n");
        let expected = format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{{\"name\":\"a\"}}\r\n\
             --{boundary}\r\nContent-Type: text/csv\r\n\r\nx,y\r\n\r\n--{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&body), expected);
    }

    #[test]
    fn crc32c_as_cloud_storage_writes_it() {
        // RFC 3720's check value of "123456789" is 0xE3069283.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_text(0xE306_9283), "4waSgw==");
    }

    #[test]
    fn int64_fields_come_as_text() {
        let meta: ObjectMeta = serde_json::from_str(
            r#"{"bucket":"b","name":"n","generation":"1700000000000001","size":"12","crc32c":"AAAAAA=="}"#,
        )
        .unwrap();
        assert_eq!(meta.generation, 1_700_000_000_000_001);
        assert_eq!(meta.size, 12);
        assert!(serde_json::from_str::<ObjectMeta>(
            r#"{"bucket":"b","name":"n","generation":"x","size":"1"}"#
        )
        .is_err());
    }
}
