//! A test double of BigQuery's load jobs, on 127.0.0.1 (port 0; `GSCRAPE_ENDPOINT_BIGQUERY`):
//! `jobs.insert` through the upload endpoint (multipart, and resumable with `308` + `Range`
//! and status queries), `jobs.get` (RUNNING on the first ask, then DONE), and the tables the
//! jobs load (replace or append; a failed job leaves its table as it was). It records every
//! request, each job's configuration and the data it received, and can fail a job with
//! errors, answer an insert with a 503 or drop its connection once, drop a chunk's answer, or
//! answer a hostile `jobs.get`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;
use serde_json::{json, Value};

use super::loopback::Seen;

/// What goes wrong, once or always.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// The next insert is answered 503 (no job made).
    pub unavailable_once: bool,
    /// The next insert makes its job, then drops the connection without an answer.
    pub drop_once: bool,
    /// The next chunk of a resumable upload is kept, but answered 503.
    pub chunk_503_once: bool,
    /// Every job ends DONE with these `status.errors` (the first is the `errorResult`).
    pub job_errors: Option<Vec<Value>>,
    /// `jobs.get` answers a job without `status`.
    pub stateless: bool,
    /// `statistics.load.outputRows` is this many rows off.
    pub rows_off: i64,
}

/// A load job as the double received it.
#[derive(Debug, Clone)]
pub struct LoadJob {
    pub id: String,
    pub project: String,
    /// `configuration.load`.
    pub load: Value,
    pub data: String,
    /// How it was uploaded: `multipart` or `resumable`.
    pub upload: String,
    polls: usize,
}

impl LoadJob {
    /// The rows of its data, one JSON object each.
    pub fn rows(&self) -> Vec<Value> {
        self.data
            .lines()
            .map(|l| serde_json::from_str(l).expect("a line of NDJSON"))
            .collect()
    }

    /// `(name, type, mode)` of each field of its schema.
    pub fn schema(&self) -> Vec<(String, String, String)> {
        self.load["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
                (text("name"), text("type"), text("mode"))
            })
            .collect()
    }

    pub fn table(&self) -> String {
        let t = &self.load["destinationTable"];
        format!(
            "{}.{}.{}",
            t["projectId"].as_str().unwrap_or_default(),
            t["datasetId"].as_str().unwrap_or_default(),
            t["tableId"].as_str().unwrap_or_default()
        )
    }
}

struct Session {
    metadata: Value,
    project: String,
    data: Vec<u8>,
}

#[derive(Default)]
pub struct State {
    pub received: Vec<Seen>,
    /// Every job made, in order.
    pub jobs: Vec<LoadJob>,
    /// The rows of each table (`p.d.t`), as the jobs that succeeded left them.
    pub tables: HashMap<String, Vec<Value>>,
    pub faults: Faults,
    sessions: Vec<Session>,
    /// The statements of the query jobs, in order.
    pub queries: Vec<String>,
    /// The tables deleted, in order.
    pub dropped: Vec<String>,
}

pub struct FakeBigQuery {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeBigQuery {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let addr = super::loopback::serve_or_drop(move |seen| {
            let state = shared.clone();
            async move { answer(seen, &state) }
        });
        FakeBigQuery { addr, state }
    }

    /// `http://127.0.0.1:PORT/`, for `GSCRAPE_ENDPOINT_BIGQUERY`.
    pub fn root(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn jobs(&self) -> Vec<LoadJob> {
        self.with(|s| s.jobs.clone())
    }

    pub fn table(&self, name: &str) -> Option<Vec<Value>> {
        self.with(|s| s.tables.get(name).cloned())
    }

    pub fn received(&self) -> Vec<Seen> {
        self.with(|s| s.received.clone())
    }
}

type Answer = Option<Response<Full<Bytes>>>;

fn reply(status: u16, body: &Value) -> Answer {
    reply_with(status, body, &[])
}

fn reply_with(status: u16, body: &Value, headers: &[(&str, String)]) -> Answer {
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    Some(
        response
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap(),
    )
}

fn error(status: u16, reason: &str, message: &str) -> Answer {
    reply(
        status,
        &json!({"error": {"code": status, "message": message,
                          "errors": [{"reason": reason, "message": message}]}}),
    )
}

fn answer(seen: Seen, state: &Mutex<State>) -> Answer {
    let mut state = state.lock().unwrap();
    state.received.push(seen.clone());
    let bearer = format!("Bearer {}", super::TOKEN);
    if seen.header("authorization") != Some(bearer.as_str()) {
        return error(401, "authError", "Request is missing a valid access token.");
    }
    let query: HashMap<String, String> = form_urlencoded::parse(
        seen.target
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
            .as_bytes(),
    )
    .into_owned()
    .collect();
    let parts: Vec<&str> = seen.path().trim_matches('/').split('/').collect();
    match (seen.method.as_str(), parts.as_slice()) {
        ("POST", ["upload", "bigquery", "v2", "projects", project, "jobs"]) => {
            match query.get("uploadType").map(String::as_str) {
                Some("multipart") => multipart(&mut state, project, &seen),
                Some("resumable") => {
                    state.sessions.push(Session {
                        metadata: seen.json(),
                        project: (*project).to_owned(),
                        data: Vec::new(),
                    });
                    let id = state.sessions.len() - 1;
                    let host = seen.header("host").unwrap_or_default().to_owned();
                    let location = format!(
                        "http://{host}/upload/bigquery/v2/projects/{project}/jobs?uploadType=resumable&upload_id={id}"
                    );
                    reply_with(200, &json!({}), &[("location", location)])
                }
                _ => error(400, "invalid", "uploadType must be multipart or resumable"),
            }
        }
        ("PUT", ["upload", "bigquery", "v2", "projects", _, "jobs"]) => {
            let id = query.get("upload_id").and_then(|i| i.parse::<usize>().ok());
            match id.filter(|i| *i < state.sessions.len()) {
                Some(id) => chunk(&mut state, id, &seen),
                None => error(404, "notFound", "No such upload session."),
            }
        }
        ("GET", ["bigquery", "v2", "projects", _, "jobs", id]) => get(&mut state, id),
        ("POST", ["bigquery", "v2", "projects", project, "jobs"]) => {
            query_job(&mut state, project, &seen.json())
        }
        ("GET", ["bigquery", "v2", "projects", p, "datasets", d, "tables", t]) => {
            match state.tables.contains_key(&format!("{p}.{d}.{t}")) {
                true => reply(200, &json!({"kind": "bigquery#table"})),
                false => error(404, "notFound", &format!("Not found: Table {p}:{d}.{t}")),
            }
        }
        ("DELETE", ["bigquery", "v2", "projects", p, "datasets", d, "tables", t]) => {
            let name = format!("{p}.{d}.{t}");
            match state.tables.remove(&name) {
                Some(_) => {
                    state.dropped.push(name);
                    reply(200, &json!({}))
                }
                None => error(404, "notFound", &format!("Not found: Table {name}")),
            }
        }
        _ => error(404, "notFound", "Not found"),
    }
}

/// A multipart insert: the configuration, then the data.
fn multipart(state: &mut State, project: &str, seen: &Seen) -> Answer {
    let Some(boundary) = seen
        .header("content-type")
        .and_then(|t| t.strip_prefix("multipart/related; boundary="))
    else {
        return error(400, "invalid", "not multipart/related");
    };
    let delimiter = format!("--{boundary}");
    let parts: Vec<&str> = seen.body.split(&delimiter).collect();
    // "", metadata part, data part, "--\r\n"
    if parts.len() != 4 || parts[3] != "--\r\n" {
        return error(400, "invalid", "a multipart body of two parts was expected");
    }
    let body = |part: &str| -> Option<String> {
        let (_, content) = part.split_once("\r\n\r\n")?;
        Some(content.strip_suffix("\r\n")?.to_owned())
    };
    let (Some(metadata), Some(data)) = (body(parts[1]), body(parts[2])) else {
        return error(400, "invalid", "a part without headers");
    };
    let Ok(metadata) = serde_json::from_str::<Value>(&metadata) else {
        return error(400, "invalid", "the metadata part is not JSON");
    };
    if std::mem::take(&mut state.faults.unavailable_once) {
        return error(503, "backendError", "Service unavailable, try again.");
    }
    let made = create(state, project, metadata, data, "multipart");
    if std::mem::take(&mut state.faults.drop_once) && made.is_some() {
        return None;
    }
    made
}

/// A chunk of a resumable upload, or a status query (`bytes */N`).
fn chunk(state: &mut State, id: usize, seen: &Seen) -> Answer {
    let range = seen.header("content-range").unwrap_or_default().to_owned();
    let Some(spec) = range.strip_prefix("bytes ") else {
        return error(400, "invalid", "no Content-Range");
    };
    let (span, total) = spec.split_once('/').unwrap_or((spec, "*"));
    let total: Option<usize> = total.parse().ok();
    let held = state.sessions[id].data.len();
    let range_header = |held: usize| match held {
        0 => Vec::new(),
        n => vec![("range", format!("bytes=0-{}", n - 1))],
    };
    if span != "*" {
        let Some((first, last)) = span.split_once('-') else {
            return error(400, "invalid", "bad Content-Range");
        };
        let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
        if first != held || last + 1 - first != seen.body.len() {
            return error(400, "invalid", "the chunk does not follow the bytes held");
        }
        if first > 0 || last + 1 < total.unwrap_or(usize::MAX) {
            let quantum = 256 * 1024;
            if !seen.body.len().is_multiple_of(quantum) && last + 1 != total.unwrap_or(0) {
                return error(
                    400,
                    "invalid",
                    "a chunk but the last must be a multiple of 256 KiB",
                );
            }
        }
        state.sessions[id]
            .data
            .extend_from_slice(seen.body.as_bytes());
        if std::mem::take(&mut state.faults.chunk_503_once) {
            return error(503, "backendError", "Service unavailable, try again.");
        }
    }
    let held = state.sessions[id].data.len();
    if Some(held) == total {
        let session = &state.sessions[id];
        let (project, metadata) = (session.project.clone(), session.metadata.clone());
        let data = String::from_utf8(session.data.clone()).expect("UTF-8 data");
        // Finalized once: a status query after that gets the job again.
        let job_id = metadata["jobReference"]["jobId"]
            .as_str()
            .unwrap_or_default();
        if let Some(existing) = state.jobs.iter().position(|j| j.id == job_id) {
            return reply(200, &resource(state, existing));
        }
        return create(state, &project, metadata, data, "resumable");
    }
    let mut response = Response::builder().status(308);
    for (name, value) in range_header(held) {
        response = response.header(name, value);
    }
    Some(response.body(Full::new(Bytes::new())).unwrap())
}

/// Makes the job (409 when its id is taken).
fn create(state: &mut State, project: &str, metadata: Value, data: String, upload: &str) -> Answer {
    let id = metadata["jobReference"]["jobId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !id.starts_with("gscrape_") {
        return error(400, "invalid", "a job id was expected");
    }
    if state.jobs.iter().any(|j| j.id == id) {
        return error(
            409,
            "duplicate",
            &format!("Already Exists: Job {project}:US.{id}"),
        );
    }
    state.jobs.push(LoadJob {
        id,
        project: project.to_owned(),
        load: metadata["configuration"]["load"].clone(),
        data,
        upload: upload.to_owned(),
        polls: 0,
    });
    let at = state.jobs.len() - 1;
    reply(200, &resource(state, at))
}

/// `jobs.get`: RUNNING on the first ask, DONE after (the table loaded then).
fn get(state: &mut State, id: &str) -> Answer {
    let Some(at) = state.jobs.iter().position(|j| j.id == id) else {
        return error(404, "notFound", &format!("Not found: Job {id}"));
    };
    state.jobs[at].polls += 1;
    if state.jobs[at].polls == 2 && state.faults.job_errors.is_none() {
        let job = &state.jobs[at];
        let rows = job.rows();
        let table = job.table();
        let truncate = job.load["writeDisposition"] == "WRITE_TRUNCATE";
        let held = state.tables.entry(table).or_default();
        if truncate {
            held.clear();
        }
        held.extend(rows);
    }
    if state.faults.stateless {
        return reply(200, &json!({"kind": "bigquery#job", "id": id}));
    }
    reply(200, &resource(state, at))
}

/// The job resource as BigQuery answers it.
fn resource(state: &State, at: usize) -> Value {
    let job = &state.jobs[at];
    let mut resource = json!({
        "kind": "bigquery#job",
        "jobReference": {"projectId": job.project, "jobId": job.id, "location": "US"},
        "configuration": {"load": job.load},
        "status": {"state": if job.polls >= 2 { "DONE" } else { "RUNNING" }},
    });
    if job.polls >= 2 {
        match &state.faults.job_errors {
            Some(errors) => {
                resource["status"]["errorResult"] = errors[0].clone();
                resource["status"]["errors"] = json!(errors);
            }
            None => {
                let rows = job.rows().len() as i64 + state.faults.rows_off;
                resource["statistics"] = json!({"load": {"outputRows": rows.to_string()}});
            }
        }
    }
    resource
}

/// A query job: only the `MERGE` gscrape writes, checked part by part and run on the tables
/// held (a source row replaces the target's row of its key, or is inserted); done at once.
fn query_job(state: &mut State, project: &str, body: &Value) -> Answer {
    let id = body["jobReference"]["jobId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let config = &body["configuration"]["query"];
    if !id.starts_with("gscrape_") || config["useLegacySql"] != false {
        return error(400, "invalid", "a job id and standard SQL were expected");
    }
    let sql = config["query"].as_str().unwrap_or_default().to_owned();
    state.queries.push(sql.clone());
    let Some((target, staging, keys)) = parse_merge(&sql) else {
        return error(
            400,
            "invalidQuery",
            &format!("Syntax error: not a MERGE: {sql}"),
        );
    };
    let Some(source) = state.tables.get(&staging).cloned() else {
        return error(404, "notFound", &format!("Not found: Table {staging}"));
    };
    let Some(held) = state.tables.get_mut(&target) else {
        return error(404, "notFound", &format!("Not found: Table {target}"));
    };
    let (mut inserted, mut updated) = (0, 0);
    for row in source {
        let same = |old: &Value| keys.iter().all(|k| old[k] == row[k] && !row[k].is_null());
        match held.iter().position(same) {
            Some(at) => {
                held[at] = row;
                updated += 1;
            }
            None => {
                held.push(row);
                inserted += 1;
            }
        }
    }
    reply(
        200,
        &json!({"kind": "bigquery#job",
                "jobReference": {"projectId": project, "jobId": id, "location": "US"},
                "status": {"state": "DONE"},
                "statistics": {"query": {"dmlStats": {
                    "insertedRowCount": inserted.to_string(),
                    "updatedRowCount": updated.to_string(),
                    "deletedRowCount": "0"}}}}),
    )
}

/// `MERGE `T` AS target USING `S` AS source ON target.`k` = source.`k` AND … WHEN MATCHED
/// THEN UPDATE SET … WHEN NOT MATCHED THEN INSERT (…) VALUES (…)`: T, S and the keys.
fn parse_merge(sql: &str) -> Option<(String, String, Vec<String>)> {
    let rest = sql.strip_prefix("MERGE `")?;
    let (target, rest) = rest.split_once("` AS target USING `")?;
    let (staging, rest) = rest.split_once("` AS source ON ")?;
    let (on, rest) = rest.split_once(" WHEN MATCHED THEN UPDATE SET ")?;
    let (_set, rest) = rest.split_once(" WHEN NOT MATCHED THEN INSERT (")?;
    let (names, values) = rest.split_once(") VALUES (")?;
    let values = values.strip_suffix(')')?;
    let names: Vec<&str> = names.split(", ").collect();
    let sources: Vec<String> = names.iter().map(|n| format!("source.{n}")).collect();
    if values.split(", ").collect::<Vec<_>>() != sources {
        return None;
    }
    let keys = on
        .split(" AND ")
        .map(|clause| {
            let (left, right) = clause.split_once(" = ")?;
            let key = left.strip_prefix("target.`")?.strip_suffix('`')?;
            (right == format!("source.`{key}`")).then(|| key.to_owned())
        })
        .collect::<Option<Vec<_>>>()?;
    Some((target.to_owned(), staging.to_owned(), keys))
}
