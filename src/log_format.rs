//! `--log-format json` (`GSCRAPE_LOG_FORMAT=json`): every line gscrape writes to stderr as one
//! JSON object, for log platforms — `severity` in Cloud Logging's words (`DEBUG`, `INFO`,
//! `NOTICE`, `WARNING`, `ERROR`), `time` (RFC 3339, UTC), `message`, and `query` when the line
//! is about one; the run's final summary as one object with `summary` (the `--summary-json`
//! record). The plain format's bytes are not changed.
//!
//! Every stderr write goes through [`crate::redact::to_stderr`], which redacts first and then
//! hands the text here: a JSON line holds nothing a plain line would not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// How stderr is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines as a person reads them (`error: …`, `warning: …`).
    #[default]
    Plain,
    /// One JSON object per line: `severity`, `time`, `message`, `query`.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// The names of the running queries, longest first: a line starting with one is about it.
static QUERIES: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Makes `format` the process's log format.
pub fn install(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// True when stderr is written as JSON lines.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Names the queries of the run, so that their lines carry `query`.
pub fn set_queries<'a>(names: impl IntoIterator<Item = &'a str>) {
    let mut names: Vec<String> = names.into_iter().map(str::to_owned).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    if let Ok(mut queries) = QUERIES.write() {
        *queries = names;
    }
}

/// Now, as `time` says it.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The severity of a plain line and its message without the prefix that said it.
fn severity(line: &str) -> (&'static str, &str) {
    const PREFIXES: &[(&str, &str)] = &[
        ("error: ", "ERROR"),
        ("warning: ", "WARNING"),
        ("info: ", "INFO"),
        ("debug: ", "DEBUG"),
        ("note: ", "NOTICE"),
    ];
    for (prefix, severity) in PREFIXES {
        if let Some(rest) = line.strip_prefix(prefix) {
            return (severity, rest);
        }
    }
    if line.starts_with("interrupted: ") {
        return ("WARNING", line);
    }
    ("INFO", line)
}

/// The query `message` is about, if it starts with a running query's name (`files: …`, or in
/// a backfill `files 2024-03-01: …`).
fn query_of(message: &str) -> Option<String> {
    let queries = QUERIES.read().ok()?;
    queries
        .iter()
        .find(|name| {
            message
                .strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(' '))
        })
        .cloned()
}

/// One JSON line (with its newline): `severity`, `time`, `message`, `query`, and `extra`'s
/// fields.
pub fn line(severity: &str, message: &str, extra: Option<(&str, serde_json::Value)>) -> String {
    let mut object = serde_json::Map::new();
    object.insert("severity".into(), severity.into());
    object.insert("time".into(), now().into());
    object.insert("message".into(), message.into());
    if let Some(query) = query_of(message) {
        object.insert("query".into(), query.into());
    }
    if let Some((key, value)) = extra {
        object.insert(key.into(), value);
    }
    let mut text = serde_json::Value::Object(object).to_string();
    text.push('\n');
    text
}

/// `text` (redacted already), one or more plain lines, as JSON lines: a line that starts with
/// a blank (the rest of a message over several lines) joins the one before; empty lines are
/// dropped.
pub fn lines(text: &str) -> String {
    let mut entries: Vec<(&'static str, String)> = Vec::new();
    for raw in text.lines() {
        let raw = raw.trim_end();
        if raw.is_empty() {
            continue;
        }
        match entries.last_mut() {
            Some((_, message)) if raw.starts_with([' ', '\t']) => {
                message.push('\n');
                message.push_str(raw);
            }
            _ => {
                let (severity, message) = severity(raw);
                entries.push((severity, message.to_owned()));
            }
        }
    }
    entries
        .iter()
        .map(|(severity, message)| line(severity, message, None))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_become_json_lines_with_their_severity() {
        let out = lines("error: files: HTTP 500\n  more\n\nwarning: careful\nfiles: 3 rows\n");
        let values: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(values.len(), 3, "{out}");
        assert_eq!(values[0]["severity"], "ERROR");
        assert_eq!(values[0]["message"], "files: HTTP 500\n  more");
        assert_eq!(values[1]["severity"], "WARNING");
        assert_eq!(values[2]["severity"], "INFO");
        assert!(values[2]["time"].as_str().unwrap().ends_with('Z'));
    }
}
