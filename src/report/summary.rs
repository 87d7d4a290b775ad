//! The end-of-run summary: a table for people (stderr) and JSON for schedulers
//! (`--summary-json`).

use std::fmt::Write;

use serde::Serialize;

use crate::counters::Gone;
use crate::error::Failure;
use crate::run::{QueryReport, Skip, Status, Stop};

/// The table, one row per query, with a note where a cap cut an export short, where the API's
/// own total differs from what was written, or what went wrong. Quota columns (units spent,
/// requests refused for rate, time waited for quota) appear when any query was refused or
/// waited: the table of a run that met no quota stays as narrow as before.
pub fn table(reports: &[QueryReport]) -> String {
    let quota = reports.iter().any(|r| {
        let q = r.counters.quota;
        q.rejections > 0 || q.wait >= std::time::Duration::from_millis(500)
    });
    let mut header = vec!["query", "status", "records", "pages", "requests", "retries"];
    if quota {
        header.extend(["units", "refused", "waited"]);
    }
    header.extend(["seconds", "output"]);
    let numbers = 2..header.len() - 1;
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let c = r.counters;
            let mut row = vec![
                r.name.clone(),
                status_word(&r.status).to_owned(),
                c.records.to_string(),
                c.pages.to_string(),
                c.requests.to_string(),
                c.retries.to_string(),
            ];
            if quota {
                row.extend([
                    c.quota.units.to_string(),
                    c.quota.rejections.to_string(),
                    format!("{:.0}s", c.quota.wait.as_secs_f64()),
                ]);
            }
            row.extend([format!("{:.1}", r.seconds), output_cell(r), note(r)]);
            row
        })
        .collect();
    let columns = header.len();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let mut out = String::new();
    let line = |cells: &[&str], out: &mut String| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate().take(columns) {
            let w = widths[i];
            // Names and paths left, numbers right.
            if numbers.contains(&i) {
                let _ = write!(text, "{cell:>w$}  ");
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        if let Some(note) = cells.get(columns).filter(|n| !n.is_empty()) {
            text.push_str(note);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header, &mut out);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells, &mut out);
    }
    out
}

fn status_word(status: &Status) -> &'static str {
    match status {
        Status::Ok(_) => "ok",
        Status::Failed { .. } => "failed",
        Status::Interrupted => "interrupted",
        Status::Cancelled => "cancelled",
        Status::Skipped(_) => "skipped",
    }
}

fn stopped_by(status: &Status) -> Option<&'static str> {
    match status {
        Status::Ok(Stop::MaxPages(_)) => Some("max_pages"),
        Status::Ok(Stop::MaxRecords(_)) => Some("max_records"),
        _ => None,
    }
}

/// The API's total, when it differs from what was written by a complete export.
fn differing_total(report: &QueryReport) -> Option<String> {
    let total = report.api_total.as_ref()?;
    (report.status == Status::Ok(Stop::Complete) && total.value != report.counters.records)
        .then(|| format!("the API reported {} = {}", total.field, total.value))
}

fn note(report: &QueryReport) -> String {
    match &report.status {
        Status::Ok(_) => {
            let cause = match (stopped_by(&report.status), differing_total(report)) {
                (Some(cap), _) => Some(format!("cut short by {cap}")),
                (None, Some(total)) => Some(total),
                (None, None) => None,
            };
            // The proof of the output: its size, and the start of its SHA-256 (whole in the
            // JSON summary).
            let proof = report
                .written
                .as_ref()
                .map(|w| format!("{} bytes, sha256 {}", w.bytes, &w.sha256[..12]));
            let dropped = (report.counters.dropped > 0)
                .then(|| format!("{} left out by `where`", report.counters.dropped));
            let gone = report.gone.as_ref().and_then(gone_note);
            let merged = report.merged.map(|m| format!("merged: {}", m.describe()));
            [proof, cause, dropped, gone, merged]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")
        }
        Status::Skipped(Skip::InOutput) => "the window is in the file already".to_owned(),
        Status::Skipped(Skip::FeedsNone) => {
            "every query it feeds has the window already".to_owned()
        }
        Status::Skipped(Skip::OtherShard) => "shard 0 runs it".to_owned(),
        Status::Failed { .. } | Status::Interrupted | Status::Cancelled => {
            let file = match report
                .output
                .as_deref()
                .is_some_and(std::path::Path::exists)
            {
                true => "previous file kept",
                false => "no file written",
            };
            match &report.status {
                Status::Failed { kind, .. } => format!("{file} ({})", kind.label()),
                _ => file.to_owned(),
            }
        }
    }
}

/// The items a fan-out skipped as gone: how many, and the first few.
fn gone_note(gone: &Gone) -> Option<String> {
    const SHOWN: usize = 3;
    if gone.count == 0 {
        return None;
    }
    let shown: Vec<&str> = gone.items.iter().take(SHOWN).map(String::as_str).collect();
    let more = gone.count.saturating_sub(shown.len() as u64);
    let more = match more {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(format!(
        "{} skipped as gone (HTTP 404 or 410): {}{more}",
        gone.count,
        shown.join(", ")
    ))
}

/// The CSV's path, the sheet's URL and the table, whichever the query wrote.
fn output_cell(report: &QueryReport) -> String {
    let path = report.output.as_ref().map(|p| p.display().to_string());
    let table = report.loaded.as_ref().map(|l| l.table.clone());
    let outputs: Vec<String> = (path.into_iter().chain(report.sheet_url.clone()))
        .chain(table)
        .collect();
    match outputs.is_empty() {
        true => "-".to_owned(),
        false => outputs.join(" "),
    }
}

/// The run as a whole, for the summary: when, which gscrape, what it was asked for, and the
/// error that ended it before its queries ran (a usage error, a busy lock, a credential).
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// The format of this record (`docs/manifest.schema.json`).
    pub manifest_version: u32,
    /// A random id, in the name of the record kept under the state directory's `runs/`.
    pub run_id: String,
    /// gscrape's version.
    pub version: &'static str,
    /// The command line, as given (secrets redacted when written).
    pub command: Vec<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    /// `--from`, `--to`, `--step` of a backfill.
    pub backfill: Option<BackfillInfo>,
    /// `--since` (over every incremental query's kept cursor).
    pub since: Option<String>,
    /// The kind of the error that stopped the run before or between its queries.
    pub failure: Option<Failure>,
    /// Its message, as stderr shows it (redacted, bounded).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackfillInfo {
    pub from: String,
    pub to: String,
    pub step: String,
}

#[derive(Serialize)]
struct Summary<'a> {
    exit_code: u8,
    #[serde(flatten)]
    run: &'a RunInfo,
    queries: Vec<QuerySummary<'a>>,
}

#[derive(Serialize)]
struct QuerySummary<'a> {
    name: &'a str,
    status: &'static str,
    records: u64,
    pages: u64,
    requests: u64,
    retries: u64,
    /// Quota units spent (Google's published cost of each request, else one).
    quota_units: u64,
    /// Requests Google refused for rate, waited out (not retries).
    quota_rejections: u64,
    /// Time its requests waited for their quota buckets, summed over the requests.
    quota_wait_seconds: f64,
    /// Records a `where` filter left out.
    dropped: u64,
    seconds: f64,
    output: Option<String>,
    /// True when `output` was replaced by this run's export.
    written: bool,
    /// What the output holds, once written: its rows (records), bytes and SHA-256.
    rows: Option<u64>,
    bytes: Option<u64>,
    sha256: Option<&'a str>,
    /// A CSV or TSV without `excel_safe`: its cells a spreadsheet would run as a formula.
    formula_cells: Option<u64>,
    /// A Cloud Storage output as Cloud Storage describes it once written.
    object: Option<ObjectJson<'a>>,
    /// The URL of the Google Sheet written (`[sheet]`).
    sheet: Option<&'a str>,
    /// The BigQuery load job (`[bigquery]`), once done: the table, the job and the rows
    /// BigQuery says it loaded.
    bigquery: Option<BigQueryJson<'a>>,
    stopped_by: Option<&'static str>,
    api_total: Option<ApiTotalJson<'a>>,
    /// The kind of failure (`quota_wall`, `auth`, ...), for a scheduler to act on.
    failure: Option<Failure>,
    /// The message, as stderr shows it (redacted, a line of bounded length).
    error: Option<std::borrow::Cow<'a, str>>,
    /// `on_missing = "skip"`: the parent records whose item was gone, counted, the first
    /// [`Gone::LISTED`] listed.
    skipped: Option<&'a Gone>,
    /// `[incremental]`: the `since` it asked from.
    since: Option<&'a str>,
    /// What it asked of Google: the query file, the Discovery document, the request, the
    /// columns and variables (absent for a query the run did not get to plan).
    asked: Option<&'a crate::report::manifest::Asked>,
    /// In a backfill, its window.
    window: Option<WindowJson>,
    /// What the report said of its numbers (`{kind, detail}`: sampled, thresholded,
    /// other_row, truncated, restricted, incomplete, warning), each once, the first
    /// [`crate::records::Caveats::LISTED`] listed; empty for a report that said nothing and
    /// for every API that says nothing of the kind.
    caveats: &'a [crate::records::Caveat],
    /// Distinct caveats beyond those listed.
    caveats_unlisted: u64,
    /// `merge_key`: this run's rows `added` (new keys) and `replaced` (keys the output had),
    /// and the old rows `kept`.
    merge: Option<crate::sink::merge::Merged>,
}

/// What Cloud Storage says of a written object: the generation (as text, as Cloud Storage
/// gives int64s), its size, and its checksums as it reports them (base64; no MD5 for an object
/// composed of parts).
#[derive(Serialize)]
struct ObjectJson<'a> {
    bucket: &'a str,
    name: &'a str,
    generation: String,
    size: u64,
    crc32c: Option<&'a str>,
    md5: Option<&'a str>,
}

#[derive(Serialize)]
struct BigQueryJson<'a> {
    table: &'a str,
    job_id: &'a str,
    location: Option<&'a str>,
    /// `statistics.load.outputRows`.
    rows_loaded: u64,
}

#[derive(Serialize)]
struct WindowJson {
    start: String,
    end: String,
}

#[derive(Serialize)]
struct ApiTotalJson<'a> {
    field: &'a str,
    value: u64,
}

/// The summary as JSON: the run, and each query's report.
pub fn json(reports: &[QueryReport], exit_code: u8, run: &RunInfo) -> String {
    let queries = reports
        .iter()
        .map(|r| QuerySummary {
            name: &r.name,
            status: status_word(&r.status),
            records: r.counters.records,
            pages: r.counters.pages,
            requests: r.counters.requests,
            retries: r.counters.retries,
            quota_units: r.counters.quota.units,
            quota_rejections: r.counters.quota.rejections,
            quota_wait_seconds: (r.counters.quota.wait.as_secs_f64() * 1000.0).round() / 1000.0,
            dropped: r.counters.dropped,
            seconds: (r.seconds * 1000.0).round() / 1000.0,
            output: r.output.as_ref().map(|p| p.display().to_string()),
            written: matches!(r.status, Status::Ok(_)) && r.output.is_some(),
            rows: r
                .written
                .as_ref()
                .map(|_| (r.merged.and_then(|m| m.rows())).unwrap_or(r.counters.records)),
            bytes: r.written.as_ref().map(|w| w.bytes),
            sha256: r.written.as_ref().map(|w| w.sha256.as_str()),
            formula_cells: r.written.as_ref().map(|w| w.formula_cells),
            object: r
                .written
                .as_ref()
                .and_then(|w| w.object.as_ref())
                .map(|o| ObjectJson {
                    bucket: &o.bucket,
                    name: &o.name,
                    generation: o.generation.to_string(),
                    size: o.size,
                    crc32c: o.crc32c.as_deref(),
                    md5: o.md5.as_deref(),
                }),
            sheet: r.sheet_url.as_deref(),
            bigquery: r.loaded.as_ref().map(|l| BigQueryJson {
                table: &l.table,
                job_id: &l.job_id,
                location: l.location.as_deref(),
                rows_loaded: l.rows,
            }),
            stopped_by: stopped_by(&r.status),
            api_total: r.api_total.as_ref().map(|t| ApiTotalJson {
                field: &t.field,
                value: t.value,
            }),
            failure: match &r.status {
                Status::Failed { kind, .. } => Some(*kind),
                _ => None,
            },
            error: match &r.status {
                Status::Failed { message, .. } => Some(crate::redact::for_display(message)),
                _ => None,
            },
            skipped: r.gone.as_ref(),
            since: r.since.as_deref(),
            asked: r.asked.as_deref(),
            window: r.window.map(|w| WindowJson {
                start: w.start.to_string(),
                end: w.end.to_string(),
            }),
            caveats: &r.caveats.listed,
            caveats_unlisted: r.caveats.unlisted,
            merge: r.merged,
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&Summary {
        exit_code,
        run,
        queries,
    })
    .expect("the summary serializes");
    text.push('\n');
    text
}
