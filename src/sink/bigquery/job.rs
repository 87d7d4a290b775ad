//! One load job: the staged NDJSON uploaded with the job's configuration, then `jobs.get`
//! until BigQuery says it is done.
//!
//! A file that fits in one chunk ([`chunk_bytes`], 8 MiB) goes in one multipart request; a
//! larger one by Google's resumable protocol, a chunk at a time (so memory holds one chunk,
//! whatever the export's size), a chunk answered by a 5xx or a dropped connection asked for
//! the upload's status and resumed where the server says it stands. The job's id is chosen
//! here (`gscrape_<query>_<random>`), so a retried insert whose first attempt did create the
//! job gets `409 duplicate` and that job is followed instead of loading the rows twice.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use http::{header, HeaderName, Method, StatusCode};
use serde_json::{json, Value};

use super::BigQueryError;
use crate::api::request::encode_path_segment;
use crate::api::upload::{ChunkError, Progress, Session, QUANTUM};
use crate::api::{ApiClient, Call, Outgoing, RequestSpec};
use crate::query::{BigQueryTarget, LoadMode, TableRef};

/// The chunk of a resumable upload (a multiple of 256 KiB, as the protocol requires), and the
/// largest file sent in one multipart request. `GSCRAPE_BIGQUERY_CHUNK_KIB` sets it (tests).
pub fn chunk_bytes() -> usize {
    let kib = std::env::var("GSCRAPE_BIGQUERY_CHUNK_KIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(8 * 1024);
    (kib * 1024).div_ceil(QUANTUM).max(1) * QUANTUM
}

/// The most errors of a failed job said, one line each.
const SHOWN_ERRORS: usize = 10;

/// `jobs.get` answers without a state before the job is taken for broken.
const MAX_STATELESS: u32 = 3;

/// Where BigQuery is: its root URL (`bigquery` in the endpoint overrides).
#[derive(Debug, Clone)]
pub struct BigQueryApi {
    root: String,
}

impl BigQueryApi {
    pub fn new(root: String) -> Self {
        BigQueryApi { root }
    }

    /// The installed root (`GSCRAPE_ENDPOINT_BIGQUERY`, `[endpoints] bigquery`, the default).
    pub fn installed() -> Self {
        BigQueryApi::new(crate::endpoints::of(crate::endpoints::BIGQUERY))
    }

    fn upload_url(&self, project: &str, kind: &str) -> String {
        format!(
            "{}upload/bigquery/v2/projects/{}/jobs?uploadType={kind}",
            self.root,
            encode_path_segment(project)
        )
    }

    fn job_url(&self, project: &str, id: &str) -> String {
        format!(
            "{}bigquery/v2/projects/{}/jobs/{}",
            self.root,
            encode_path_segment(project),
            encode_path_segment(id)
        )
    }
}

/// What a finished job says it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub table: String,
    pub job_id: String,
    pub location: Option<String>,
    /// `statistics.load.outputRows`.
    pub rows: u64,
    /// A merge (`merge_key`): the rows it inserted and updated (its `dmlStats`).
    pub merged: Option<(u64, u64)>,
}

/// A job id for `query`: a fixed prefix (to find gscrape's jobs) and 16 random hex digits.
pub fn job_id(query: &str) -> String {
    let name: String = query
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                true => c,
                false => '_',
            },
        )
        .take(900)
        .collect();
    format!("gscrape_{name}_{:016x}", fastrand::u64(..))
}

/// A load job on its way.
pub struct Job<'a> {
    pub api: &'a ApiClient,
    pub call: &'a Call,
    pub endpoint: &'a BigQueryApi,
    pub target: &'a BigQueryTarget,
    pub id: String,
}

impl Job<'_> {
    /// Loads the `size` bytes of `file` (NDJSON, `rows` lines) with `schema`, and waits for
    /// the job to end.
    pub async fn run(
        &self,
        schema: Value,
        file: &mut std::fs::File,
        size: u64,
        rows: u64,
    ) -> Result<Loaded, BigQueryError> {
        let metadata = self.configuration(schema);
        let chunk = chunk_bytes() as u64;
        let job = match size <= chunk {
            true => {
                let mut data = String::with_capacity(size as usize);
                file.seek(SeekFrom::Start(0))
                    .and_then(|_| file.read_to_string(&mut data))
                    .map_err(BigQueryError::Stage)?;
                self.insert_multipart(&metadata, &data).await?
            }
            false => self.insert_resumable(&metadata, file, size, chunk).await?,
        };
        let job = self.wait(job).await?;
        self.outcome(&job, rows)
    }

    fn configuration(&self, schema: Value) -> Value {
        let t = &self.target.table;
        let mut load = json!({
            "destinationTable": {"projectId": t.project, "datasetId": t.dataset, "tableId": t.table},
            "sourceFormat": "NEWLINE_DELIMITED_JSON",
            "schema": schema,
            "createDisposition": "CREATE_IF_NEEDED",
            "writeDisposition": match self.target.mode {
                // (A merge loads a staging table of its own, replaced whole.)
                LoadMode::Replace | LoadMode::Merge => "WRITE_TRUNCATE",
                LoadMode::Append => "WRITE_APPEND",
            },
        });
        if self.target.mode == LoadMode::Append {
            // A column the query gained is added to the table (as dlt and `bq load` do).
            load["schemaUpdateOptions"] = json!(["ALLOW_FIELD_ADDITION"]);
        }
        let mut reference = json!({"projectId": self.target.project, "jobId": self.id});
        if let Some(location) = &self.target.location {
            reference["location"] = json!(location);
        }
        json!({"jobReference": reference, "configuration": {"load": load}})
    }

    /// One request holding the configuration and the data.
    async fn insert_multipart(&self, metadata: &Value, data: &str) -> Result<Value, BigQueryError> {
        let mut boundary = format!("gscrape_{:016x}", fastrand::u64(..));
        while data.contains(&boundary) {
            boundary = format!("gscrape_{:016x}", fastrand::u64(..));
        }
        let body = format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
             --{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n{data}\r\n--{boundary}--\r\n"
        );
        let out = Outgoing::new(
            Method::POST,
            self.endpoint.upload_url(&self.target.project, "multipart"),
        )
        .header(
            header::CONTENT_TYPE,
            format!("multipart/related; boundary={boundary}"),
        )
        .body(body);
        self.insert(&out).await
    }

    /// Sends a job's insert: the job it made, or the job an earlier try made (its answer lost
    /// on the way: `409 duplicate`).
    async fn insert(&self, out: &Outgoing) -> Result<Value, BigQueryError> {
        let r = self
            .api
            .send(out, self.call, &[StatusCode::CONFLICT])
            .await?;
        match r.status {
            StatusCode::CONFLICT => self.get().await,
            _ => self.job_of(&r.body, &out.url),
        }
    }

    /// The configuration first, then the data a chunk at a time, by Google's resumable
    /// protocol ([`crate::api::upload`]). A session that is gone (a week old, or never known)
    /// is started again once, with the same job id.
    async fn insert_resumable(
        &self,
        metadata: &Value,
        file: &mut std::fs::File,
        size: u64,
        chunk: u64,
    ) -> Result<Value, BigQueryError> {
        let url = self.endpoint.upload_url(&self.target.project, "resumable");
        let start = Outgoing::new(Method::POST, url.as_str())
            .header(header::CONTENT_TYPE, "application/json; charset=UTF-8")
            .header(
                HeaderName::from_static("x-upload-content-type"),
                "application/octet-stream",
            )
            .header(
                HeaderName::from_static("x-upload-content-length"),
                size.to_string(),
            )
            .body(metadata.to_string());
        let mut restarted = false;
        'session: loop {
            let r = self
                .api
                .send(&start, self.call, &[StatusCode::CONFLICT])
                .await?;
            if r.status == StatusCode::CONFLICT {
                return self.get().await;
            }
            let session = Session::of(&r).ok_or_else(|| {
                self.bad(&url, "the resumable upload was started without a Location")
            })?;
            let mut offset = 0u64;
            loop {
                let end = (offset + chunk).min(size);
                let mut data = Vec::new();
                file.seek(SeekFrom::Start(offset))
                    .and_then(|_| file.by_ref().take(end - offset).read_to_end(&mut data))
                    .map_err(BigQueryError::Stage)?;
                let sent = self
                    .api
                    .put_chunk(self.call, &session, offset, &data.into(), Some(size), &[])
                    .await;
                offset = match sent {
                    Ok(Progress::Done(r)) => return self.job_of(&r.body, &url),
                    Ok(Progress::Holds(held)) => held,
                    Err(ChunkError::Api(error, retries)) => {
                        return Err(crate::api::gave_up(Err::<(), _>(*error), retries)
                            .unwrap_err()
                            .into())
                    }
                    Err(ChunkError::Refused(r))
                        if matches!(r.status.as_u16(), 404 | 410) && !restarted =>
                    {
                        restarted = true;
                        continue 'session;
                    }
                    Err(ChunkError::Refused(r)) => {
                        return Err(ApiClient::refusal(&r, &Method::PUT, &url, self.call).into())
                    }
                    Err(ChunkError::BadRange(value)) => {
                        return Err(self.bad(
                            &url,
                            &format!(
                                "the upload's Range {} is not bytes=0-N",
                                crate::redact::quote(&String::from_utf8_lossy(value.as_bytes()))
                            ),
                        ))
                    }
                    Err(ChunkError::Outside { held, end, .. }) => {
                        return Err(self.bad(
                            &url,
                            &format!(
                            "the upload's Range (bytes=0-{}) is not a part of what was sent (0-{})",
                            held.saturating_sub(1),
                            end.saturating_sub(1)
                        ),
                        ))
                    }
                    Err(ChunkError::Stuck { from }) => {
                        return Err(self.bad(
                            &url,
                            &format!("the upload session takes none of the bytes from {from}"),
                        ))
                    }
                };
            }
        }
    }

    /// `jobs.get` of this job, where it runs.
    async fn get(&self) -> Result<Value, BigQueryError> {
        self.get_at(self.target.location.as_deref()).await
    }

    async fn get_at(&self, location: Option<&str>) -> Result<Value, BigQueryError> {
        let url = self.endpoint.job_url(&self.target.project, &self.id);
        let query = location
            .map(|l| vec![("location".to_owned(), l.to_owned())])
            .unwrap_or_default();
        let spec = RequestSpec {
            http_method: Method::GET,
            url: url.clone(),
            query,
            body: None,
        };
        let body = self.api.fetch(&spec, self.call).await?;
        self.job_of(&body.bytes, &url)
    }

    /// A job resource from a response body.
    fn job_of(&self, body: &[u8], url: &str) -> Result<Value, BigQueryError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(job) if job.is_object() => Ok(job),
            _ => Err(self.bad(url, "the answer is not a job resource (JSON object)")),
        }
    }

    /// Polls the job until its state is `DONE`, with a growing pause (0.5 s to 10 s).
    async fn wait(&self, mut job: Value) -> Result<Value, BigQueryError> {
        let scale = self.api.retry_policy().scale;
        let mut pause = Duration::from_millis(500);
        let mut stateless = 0;
        let location = job["jobReference"]["location"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| self.target.location.clone());
        loop {
            match job["status"]["state"].as_str() {
                Some("DONE") => return Ok(job),
                Some(state) => tracing::debug!("load job {}: {state}", self.id),
                None => {
                    stateless += 1;
                    if stateless > MAX_STATELESS {
                        let url = self.endpoint.job_url(&self.target.project, &self.id);
                        return Err(self.bad(&url, "jobs.get answers a job without status.state"));
                    }
                }
            }
            tokio::time::sleep(pause.mul_f64(scale)).await;
            pause = (pause.mul_f64(1.5)).min(Duration::from_secs(10));
            job = self.get_at(location.as_deref()).await?;
        }
    }

    /// What a finished job did: its errors, or the rows it loaded (which must be the rows
    /// sent).
    fn outcome(&self, job: &Value, sent: u64) -> Result<Loaded, BigQueryError> {
        self.failed(job)?;
        let table = self.target.table.to_string();
        let load = &job["statistics"]["load"]["outputRows"];
        let loaded = match load {
            Value::String(n) => n.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            Value::Null if sent == 0 => Some(0),
            _ => None,
        };
        let location = job["jobReference"]["location"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| self.target.location.clone());
        match loaded {
            Some(rows) if rows == sent => Ok(Loaded {
                table,
                job_id: self.id.clone(),
                location,
                rows,
                merged: None,
            }),
            Some(rows) => Err(BigQueryError::RowCount {
                job: self.id.clone(),
                table,
                loaded: rows,
                sent,
            }),
            None => Err(self.bad(
                &self.endpoint.job_url(&self.target.project, &self.id),
                "the job is done but says no statistics.load.outputRows",
            )),
        }
    }

    /// The errors of a finished job, as one error; none: `Ok`.
    fn failed(&self, job: &Value) -> Result<(), BigQueryError> {
        let table = self.target.table.to_string();
        let status = &job["status"];
        let mut errors: Vec<&Value> = status["errors"]
            .as_array()
            .map(|e| e.iter().collect())
            .unwrap_or_default();
        if errors.is_empty() && status["errorResult"].is_object() {
            errors.push(&status["errorResult"]);
        }
        if !errors.is_empty() {
            let mut lines: Vec<String> = errors
                .iter()
                .take(SHOWN_ERRORS)
                .map(|e| error_line(e))
                .collect();
            if errors.len() > SHOWN_ERRORS {
                lines.push(format!("and {} more", errors.len() - SHOWN_ERRORS));
            }
            return Err(BigQueryError::JobFailed {
                job: self.id.clone(),
                table,
                lines: lines.join("\n"),
            });
        }
        Ok(())
    }

    fn bad(&self, url: &str, why: &str) -> BigQueryError {
        BigQueryError::BadResponse {
            url: crate::redact::quote(url).to_string(),
            why: why.to_owned(),
        }
    }
}

/// One error of a job: `reason at location: message`.
fn error_line(error: &Value) -> String {
    let text = |key: &str| error[key].as_str().filter(|t| !t.is_empty());
    let mut line = String::from("  ");
    line.push_str(text("reason").unwrap_or("error"));
    if let Some(location) = text("location") {
        line.push_str(&format!(" at {}", crate::redact::quote(location)));
    }
    let message = text("message")
        .unwrap_or("(no message)")
        .replace(['\n', '\r'], " ");
    line.push_str(&format!(": {}", crate::redact::shorten(&message, 500)));
    line
}

/// A merge by key (`merge_key`): the rows loaded into a staging table beside the target, then
/// one `MERGE` query job, then the staging table dropped (also when the merge failed). A table
/// that is not there yet is loaded directly (every row is new).
pub struct MergeJob<'a> {
    pub api: &'a ApiClient,
    pub call: &'a Call,
    pub endpoint: &'a BigQueryApi,
    pub target: &'a BigQueryTarget,
    pub query: &'a str,
    /// The key's column names in the table.
    pub key: Vec<String>,
}

impl MergeJob<'_> {
    /// Merges the `size` bytes of `file` (`rows` lines) into the target: what was loaded, and
    /// the rows the merge inserted and updated.
    pub async fn run(
        &self,
        schema: Value,
        file: &mut std::fs::File,
        size: u64,
        rows: u64,
    ) -> Result<(Loaded, u64, u64), BigQueryError> {
        if !self.table_exists(&self.target.table).await? {
            let direct = BigQueryTarget {
                mode: LoadMode::Append,
                ..self.target.clone()
            };
            let job = Job {
                api: self.api,
                call: self.call,
                endpoint: self.endpoint,
                target: &direct,
                id: job_id(self.query),
            };
            let loaded = job.run(schema, file, size, rows).await?;
            let merged = Some((rows, 0));
            return Ok((Loaded { merged, ..loaded }, rows, 0));
        }
        let staging = BigQueryTarget {
            table: TableRef {
                table: format!(
                    "{}_gscrape_staging_{:016x}",
                    self.target.table.table,
                    fastrand::u64(..)
                ),
                ..self.target.table.clone()
            },
            mode: LoadMode::Replace,
            ..self.target.clone()
        };
        let load = Job {
            api: self.api,
            call: self.call,
            endpoint: self.endpoint,
            target: &staging,
            id: job_id(self.query),
        };
        let columns: Vec<String> = schema["fields"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let loaded = load.run(schema, file, size, rows).await;
        let merged = match loaded {
            Ok(loaded) => {
                let sql = merge_sql(&self.target.table, &staging.table, &self.key, &columns);
                self.merge(&sql).await.map(|(inserted, updated)| {
                    let loaded = Loaded {
                        table: self.target.table.to_string(),
                        merged: Some((inserted, updated)),
                        ..loaded
                    };
                    (loaded, inserted, updated)
                })
            }
            Err(err) => Err(err),
        };
        // Dropped whatever happened (a load that failed may have made it).
        if let Err(err) = self.drop_table(&staging.table).await {
            crate::say!(
                "warning: {}: cannot drop the staging table {} ({err}); remove it by hand",
                self.query,
                staging.table
            );
        }
        merged
    }

    fn table_url(&self, table: &TableRef) -> String {
        format!(
            "{}bigquery/v2/projects/{}/datasets/{}/tables/{}",
            self.endpoint.root,
            encode_path_segment(&table.project),
            encode_path_segment(&table.dataset),
            encode_path_segment(&table.table)
        )
    }

    async fn table_exists(&self, table: &TableRef) -> Result<bool, BigQueryError> {
        let out = Outgoing::new(Method::GET, self.table_url(table));
        let response = self
            .api
            .send(&out, self.call, &[StatusCode::NOT_FOUND])
            .await?;
        Ok(response.status != StatusCode::NOT_FOUND)
    }

    async fn drop_table(&self, table: &TableRef) -> Result<(), BigQueryError> {
        let out = Outgoing::new(Method::DELETE, self.table_url(table));
        self.api
            .send(&out, self.call, &[StatusCode::NOT_FOUND])
            .await?;
        Ok(())
    }

    /// Runs `sql` as one query job and waits for it: the rows it inserted and updated.
    async fn merge(&self, sql: &str) -> Result<(u64, u64), BigQueryError> {
        let job = Job {
            api: self.api,
            call: self.call,
            endpoint: self.endpoint,
            target: self.target,
            id: job_id(self.query),
        };
        let mut reference = json!({"projectId": self.target.project, "jobId": job.id});
        if let Some(location) = &self.target.location {
            reference["location"] = json!(location);
        }
        let body = json!({"jobReference": reference,
                          "configuration": {"query": {"query": sql, "useLegacySql": false}}})
        .to_string();
        let url = format!(
            "{}bigquery/v2/projects/{}/jobs",
            self.endpoint.root,
            encode_path_segment(&self.target.project)
        );
        let out = Outgoing::new(Method::POST, url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        let answer = job.insert(&out).await?;
        let done = job.wait(answer).await?;
        job.failed(&done)?;
        let count = |key: &str| {
            let value = &done["statistics"]["query"]["dmlStats"][key];
            value
                .as_str()
                .and_then(|n| n.parse::<u64>().ok())
                .or_else(|| value.as_u64())
                .unwrap_or(0)
        };
        Ok((count("insertedRowCount"), count("updatedRowCount")))
    }
}

/// A name between backticks, as GoogleSQL quotes one (a backtick or backslash escaped).
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// The `MERGE` of `staging` into `target` by `key`: a row of a key the table has is updated
/// in every column, a row of another key inserted; rows of the table not in `staging` stay.
pub fn merge_sql(
    target: &TableRef,
    staging: &TableRef,
    key: &[String],
    columns: &[String],
) -> String {
    let on: Vec<String> = key
        .iter()
        .map(|k| format!("target.{0} = source.{0}", quoted(k)))
        .collect();
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{0} = source.{0}", quoted(c)))
        .collect();
    let names: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
    let values: Vec<String> = columns
        .iter()
        .map(|c| format!("source.{}", quoted(c)))
        .collect();
    format!(
        "MERGE {} AS target USING {} AS source ON {} WHEN MATCHED THEN UPDATE SET {} WHEN NOT \
         MATCHED THEN INSERT ({}) VALUES ({})",
        quoted(&target.to_string()),
        quoted(&staging.to_string()),
        on.join(" AND "),
        set.join(", "),
        names.join(", "),
        values.join(", ")
    )
}
