//! A strict Cloud Storage double on 127.0.0.1 (port 0): what fake-gcs-server (the emulator the
//! other tests use) does not enforce, Google does, and this one does too —
//! - generation preconditions (`ifGenerationMatch`) on simple, multipart and resumable uploads (checked at
//!   the start and when the last chunk lands), compose and delete: `412` otherwise;
//! - the resumable protocol's rules: chunks other than the last a multiple of 256 KiB, `308` +
//!   `Range: bytes=0-N`, the object only once the last chunk lands, the last chunk's
//!   `X-Goog-Hash: crc32c=…` checked (`400` when it differs);
//! - a bearer token on every request (`401` otherwise).
//!
//! And it can misbehave on cue: a chunk answered `503` after keeping only part of it, a hostile
//! `Range` header, a `429` first.
//!
//! It records every request (method, path and query, headers; not the chunk bytes).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;
use serde_json::{json, Value};

use super::loopback::{serve, Seen};

const QUANTUM: usize = 256 * 1024;

/// What the double should do wrong, set before running the binary.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The chunk PUT number N (1-based, over all sessions) keeps only this many of its bytes,
    /// then answers 503.
    pub chunk_503: Option<(usize, usize)>,
    /// Every 308 carries `Range: bytes=0-banana`.
    pub hostile_range: bool,
    /// The first request is answered 429 (rate limit).
    pub first_429: bool,
    /// Every request is refused 403, as for a credential without a role on the bucket.
    pub forbidden: bool,
    /// Another writer replaces this object (bucket, name) just before the first compose
    /// request into it is answered.
    pub write_before_compose: Option<(String, String)>,
}

/// One compose request, as the double saw it.
#[derive(Debug, Clone)]
pub struct Compose {
    pub destination: String,
    pub sources: Vec<String>,
    /// Its `ifGenerationMatch`, if any.
    pub precondition: Option<i64>,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub data: Vec<u8>,
    pub generation: i64,
    pub content_type: String,
    pub composite: bool,
}

#[derive(Debug)]
struct Upload {
    bucket: String,
    name: String,
    precondition: Option<i64>,
    content_type: String,
    data: Vec<u8>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<(String, String), Object>,
    uploads: HashMap<String, Upload>,
    next_generation: i64,
    chunks: usize,
    requests: Vec<Seen>,
    composes: Vec<Compose>,
    faults: Faults,
}

/// The double; cheap to clone.
#[derive(Clone)]
pub struct FakeGcs {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeGcs {
    pub fn start(token: &str) -> FakeGcs {
        let state = Arc::new(Mutex::new(State {
            next_generation: 1_700_000_000_000_001,
            ..State::default()
        }));
        let token = format!("Bearer {token}");
        let shared = state.clone();
        let base = Arc::new(Mutex::new(String::new()));
        let base_in = base.clone();
        let addr = serve(move |seen: Seen| {
            let state = shared.clone();
            let token = token.clone();
            let base = base_in.lock().unwrap().clone();
            async move { answer(&state, &token, &base, seen) }
        });
        let url = format!("http://{addr}");
        *base.lock().unwrap() = url.clone();
        FakeGcs { url, state }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().unwrap().faults = faults;
    }

    /// Puts an object there, as another writer would.
    pub fn put(&self, bucket: &str, name: &str, data: &[u8]) -> i64 {
        let mut state = self.state.lock().unwrap();
        let generation = state.next_generation;
        state.next_generation += 1;
        state.objects.insert(
            (bucket.to_owned(), name.to_owned()),
            Object {
                data: data.to_vec(),
                generation,
                content_type: "text/csv".to_owned(),
                composite: false,
            },
        );
        generation
    }

    pub fn object(&self, bucket: &str, name: &str) -> Option<Object> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .get(&(bucket.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The names of the objects in `bucket`, in order.
    pub fn names(&self, bucket: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// The upload session ids handed out (secrets: none may be printed).
    pub fn session_ids(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| {
                r.target
                    .split_once("upload_id=")
                    .map(|(_, id)| id.to_owned())
            })
            .collect()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Every compose request, in order.
    pub fn composes(&self) -> Vec<Compose> {
        self.state.lock().unwrap().composes.clone()
    }
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn error(status: u16, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        json!({"error": {"code": status, "message": message, "errors": [{"message": message}]}}),
    )
}

fn meta(bucket: &str, name: &str, object: &Object) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut meta = json!({
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "generation": object.generation.to_string(),
        "size": object.data.len().to_string(),
        "contentType": object.content_type,
        "crc32c": b64.encode(crc32c::crc32c(&object.data).to_be_bytes()),
        "updated": "2024-03-15T00:00:00.000Z",
    });
    if object.composite {
        meta["componentCount"] = json!(2);
    } else {
        // Not an MD5 (no MD5 crate here): a stand-in the summary must pass on as given.
        meta["md5Hash"] = json!(b64.encode(format!("md5-of-{}", object.data.len())));
    }
    meta
}

fn query(target: &str) -> HashMap<String, String> {
    let q = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether `precondition` (an `ifGenerationMatch` value) holds for what is there now.
fn holds(precondition: Option<i64>, existing: Option<&Object>) -> bool {
    match precondition {
        None => true,
        Some(0) => existing.is_none(),
        Some(g) => existing.is_some_and(|o| o.generation == g),
    }
}

/// The metadata (JSON), media bytes and media type of a `multipart/related` upload.
fn multipart(seen: &Seen) -> Option<(Value, Vec<u8>, String)> {
    let content_type = seen.header("content-type")?;
    let boundary = content_type
        .strip_prefix("multipart/related; boundary=")?
        .trim_matches('"');
    let body: &[u8] = &seen.bytes;
    let delimiter = format!("--{boundary}");
    let find = |from: usize, what: &[u8]| {
        body[from..]
            .windows(what.len())
            .position(|w| w == what)
            .map(|at| at + from)
    };
    // --B CRLF headers CRLF CRLF metadata CRLF --B CRLF headers CRLF CRLF media CRLF --B-- CRLF
    let part = |from: usize| -> Option<(String, usize)> {
        let start = find(from, delimiter.as_bytes())? + delimiter.len() + 2;
        let head_end = find(start, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&body[start..head_end]).to_ascii_lowercase();
        let media_type = head
            .lines()
            .find_map(|l| l.strip_prefix("content-type:"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        Some((media_type, head_end + 4))
    };
    let (_, metadata_at) = part(0)?;
    let metadata_end = find(metadata_at, format!("\r\n{delimiter}").as_bytes())?;
    let metadata: Value = serde_json::from_slice(&body[metadata_at..metadata_end]).ok()?;
    let (media_type, media_at) = part(metadata_end + 2)?;
    let closing = format!("\r\n{delimiter}--\r\n");
    let media_end = body.len().checked_sub(closing.len())?;
    (body.get(media_end..)? == closing.as_bytes() && media_end >= media_at).then_some(())?;
    Some((metadata, body[media_at..media_end].to_vec(), media_type))
}

fn answer(state: &Mutex<State>, token: &str, base: &str, seen: Seen) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap();
    let mut recorded = seen.clone();
    recorded.bytes = Bytes::new();
    recorded.body = String::new();
    state.requests.push(recorded);
    if state.faults.first_429 && state.requests.len() == 1 {
        return error(429, "rate limited (the double's first answer)");
    }
    if seen.header("authorization") != Some(token) {
        return error(401, "no or wrong bearer token");
    }
    if state.faults.forbidden {
        return error(
            403,
            "runner@p.iam.gserviceaccount.com does not have storage.objects.get access",
        );
    }
    let path = seen.path().to_owned();
    let q = query(&seen.target);
    let precondition = q
        .get("ifGenerationMatch")
        .and_then(|g| g.parse::<i64>().ok());
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (seen.method.as_str(), segments.as_slice()) {
        // Simple, multipart and resumable uploads.
        ("POST", ["upload", "storage", "v1", "b", bucket, "o"]) => {
            let bucket = decode(bucket);
            let multipart = match q.get("uploadType").map(String::as_str) {
                Some("multipart") => match multipart(&seen) {
                    Some(parts) => Some(parts),
                    None => {
                        return error(400, "not a multipart/related body of metadata and media")
                    }
                },
                _ => None,
            };
            let name = match &multipart {
                Some((metadata, _, _)) => metadata["name"].as_str().unwrap_or_default().to_owned(),
                None => q.get("name").cloned().unwrap_or_default(),
            };
            let key = (bucket.clone(), name.clone());
            if !holds(precondition, state.objects.get(&key)) {
                return error(412, "conditionNotMet");
            }
            match q.get("uploadType").map(String::as_str) {
                Some("media") => {
                    let generation = state.next_generation;
                    state.next_generation += 1;
                    let object = Object {
                        data: seen.bytes.to_vec(),
                        generation,
                        content_type: seen.header("content-type").unwrap_or_default().to_owned(),
                        composite: false,
                    };
                    let body = meta(&bucket, &name, &object);
                    state.objects.insert(key, object);
                    reply(200, body)
                }
                Some("multipart") => {
                    let (metadata, data, media_type) = multipart.unwrap_or_default();
                    let generation = state.next_generation;
                    state.next_generation += 1;
                    let object = Object {
                        data,
                        generation,
                        content_type: metadata["contentType"]
                            .as_str()
                            .map_or(media_type, str::to_owned),
                        composite: false,
                    };
                    let body = meta(&bucket, &name, &object);
                    state.objects.insert(key, object);
                    reply(200, body)
                }
                Some("resumable") => {
                    let id = format!("session-{}", state.uploads.len() + state.chunks + 1);
                    let id = format!("{id}-{}", fastrand::u64(..));
                    let content_type = seen
                        .header("x-upload-content-type")
                        .unwrap_or_default()
                        .to_owned();
                    state.uploads.insert(
                        id.clone(),
                        Upload {
                            bucket,
                            name,
                            precondition,
                            content_type,
                            data: Vec::new(),
                        },
                    );
                    Response::builder()
                        .status(200)
                        .header("location", format!("{base}/upload/session?upload_id={id}"))
                        .body(Full::new(Bytes::new()))
                        .unwrap()
                }
                _ => error(400, "uploadType"),
            }
        }
        ("PUT", ["upload", "session"]) => {
            let Some(id) = q.get("upload_id").cloned() else {
                return error(404, "no such session");
            };
            chunk(&mut state, &id, &seen)
        }
        ("GET", ["storage", "v1", "b", bucket, "o"]) => {
            let bucket = decode(bucket);
            let prefix = q.get("prefix").cloned().unwrap_or_default();
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|((b, n), _)| *b == bucket && n.starts_with(&prefix))
                .map(|((b, n), o)| meta(b, n, o))
                .collect();
            reply(200, json!({"kind": "storage#objects", "items": items}))
        }
        ("GET", ["storage", "v1", "b", bucket, "o", name]) => {
            let key = (decode(bucket), decode(name));
            let Some(object) = state.objects.get(&key) else {
                return error(404, "No such object");
            };
            if q.get("alt").map(String::as_str) == Some("media") {
                if q.get("generation")
                    .is_some_and(|g| *g != object.generation.to_string())
                {
                    return error(404, "No such object (generation)");
                }
                // `Range: bytes=A-B` (inclusive), as Cloud Storage reads a part of an object.
                if let Some(range) = seen.header("range") {
                    let size = object.data.len();
                    let span = range.strip_prefix("bytes=").and_then(|r| {
                        let (a, b) = r.split_once('-')?;
                        let a: usize = a.parse().ok()?;
                        let b: usize = b.parse::<usize>().ok()?.min(size.saturating_sub(1));
                        (a <= b && a < size).then_some((a, b))
                    });
                    let Some((a, b)) = span else {
                        return error(416, "range not satisfiable");
                    };
                    return Response::builder()
                        .status(206)
                        .header("x-goog-generation", object.generation.to_string())
                        .header("content-range", format!("bytes {a}-{b}/{size}"))
                        .body(Full::new(Bytes::from(object.data[a..=b].to_vec())))
                        .unwrap();
                }
                return Response::builder()
                    .status(200)
                    .header("x-goog-generation", object.generation.to_string())
                    .body(Full::new(Bytes::from(object.data.clone())))
                    .unwrap();
            }
            reply(200, meta(&key.0, &key.1, object))
        }
        ("DELETE", ["storage", "v1", "b", bucket, "o", name]) => {
            let key = (decode(bucket), decode(name));
            if !state.objects.contains_key(&key) {
                return error(404, "No such object");
            }
            if !holds(precondition, state.objects.get(&key)) {
                return error(412, "conditionNotMet");
            }
            state.objects.remove(&key);
            Response::builder()
                .status(204)
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
        ("POST", ["storage", "v1", "b", bucket, "o", name, "compose"]) => {
            let key = (decode(bucket), decode(name));
            let body = seen.json();
            let sources = body["sourceObjects"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let writer = state.faults.write_before_compose.clone();
            if writer.as_ref() == Some(&key) {
                state.faults.write_before_compose = None;
                let generation = state.next_generation;
                state.next_generation += 1;
                state.objects.insert(
                    key.clone(),
                    Object {
                        data: b"another writer's\r\n".to_vec(),
                        generation,
                        content_type: "text/csv".to_owned(),
                        composite: false,
                    },
                );
            }
            let mut log = Compose {
                destination: key.1.clone(),
                sources: sources
                    .iter()
                    .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
                    .collect(),
                precondition,
                status: 200,
            };
            let response = compose(&mut state, &key, &sources, &body, precondition);
            log.status = response.status().as_u16();
            state.composes.push(log);
            response
        }
        _ => error(
            404,
            &format!("the double has no route for {} {path}", seen.method),
        ),
    }
}

/// One compose into `key`, by Cloud Storage's rules.
fn compose(
    state: &mut State,
    key: &(String, String),
    sources: &[Value],
    body: &Value,
    precondition: Option<i64>,
) -> Response<Full<Bytes>> {
    if sources.is_empty() || sources.len() > 32 {
        return error(400, "compose takes 1 to 32 sources");
    }
    let mut data = Vec::new();
    for source in sources {
        let source_key = (
            key.0.clone(),
            source["name"].as_str().unwrap_or_default().to_owned(),
        );
        let Some(object) = state.objects.get(&source_key) else {
            return error(404, "a source object is missing");
        };
        if let Some(g) = source["generation"].as_str() {
            if g != object.generation.to_string() {
                return error(412, "a source generation does not match");
            }
        }
        data.extend_from_slice(&object.data);
    }
    if !holds(precondition, state.objects.get(key)) {
        return error(412, "conditionNotMet");
    }
    let generation = state.next_generation;
    state.next_generation += 1;
    let object = Object {
        data,
        generation,
        content_type: body["destination"]["contentType"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        composite: true,
    };
    let answer = meta(&key.0, &key.1, &object);
    state.objects.insert(key.clone(), object);
    reply(200, answer)
}

/// One `PUT` to an upload session.
fn chunk(state: &mut State, id: &str, seen: &Seen) -> Response<Full<Bytes>> {
    let Some(range) = seen.header("content-range").map(str::to_owned) else {
        return error(400, "no Content-Range");
    };
    let Some(spec) = range.strip_prefix("bytes ") else {
        return error(400, "Content-Range");
    };
    let (span, total) = spec.split_once('/').unwrap_or((spec, "*"));
    let total: Option<usize> = total.parse().ok();
    let hostile = state.faults.hostile_range;
    let held_reply = |held: usize| {
        let mut builder = Response::builder().status(308);
        if hostile {
            builder = builder.header("range", "bytes=0-banana");
        } else if held > 0 {
            builder = builder.header("range", format!("bytes=0-{}", held - 1));
        }
        builder.body(Full::new(Bytes::new())).unwrap()
    };
    let Some(upload) = state.uploads.get(id) else {
        return error(404, "no such upload session");
    };
    let held = upload.data.len();
    if span != "*" {
        let Some((start, end)) = span
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        else {
            return error(400, "Content-Range span");
        };
        if start > held || end + 1 != start + seen.bytes.len() {
            return error(400, "the chunk does not follow what the session holds");
        }
        let last = total.is_some_and(|t| t == end + 1);
        if !last && !seen.bytes.len().is_multiple_of(QUANTUM) {
            return error(
                400,
                "a chunk other than the last must be a multiple of 256 KiB",
            );
        }
        state.chunks += 1;
        let fault = state.faults.chunk_503.filter(|(n, _)| *n == state.chunks);
        let upload = state.uploads.get_mut(id).unwrap();
        let new = &seen.bytes[held - start..];
        if let Some((_, keep)) = fault {
            upload.data.extend_from_slice(&new[..keep.min(new.len())]);
            return error(503, "backend error (the double kept part of the chunk)");
        }
        upload.data.extend_from_slice(new);
    }
    let upload = state.uploads.get(id).unwrap();
    let held = upload.data.len();
    if total != Some(held) {
        return held_reply(held);
    }
    // The last chunk: the object appears now, if its precondition still holds.
    let key = (upload.bucket.clone(), upload.name.clone());
    if !holds(upload.precondition, state.objects.get(&key)) {
        state.uploads.remove(id);
        return error(412, "conditionNotMet");
    }
    let crc = base64::engine::general_purpose::STANDARD
        .encode(crc32c::crc32c(&upload.data).to_be_bytes());
    if let Some(hash) = seen.header("x-goog-hash") {
        if hash.strip_prefix("crc32c=") != Some(crc.as_str()) {
            return error(400, "the CRC-32C sent does not match the data");
        }
    }
    let upload = state.uploads.remove(id).unwrap();
    let generation = state.next_generation;
    state.next_generation += 1;
    let object = Object {
        data: upload.data,
        generation,
        content_type: upload.content_type,
        composite: false,
    };
    let body = meta(&key.0, &key.1, &object);
    state.objects.insert(key, object);
    reply(200, body)
}
