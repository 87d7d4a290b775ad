//! `gscrape rerun RECORD`: repeats a run from its record (`runs/…json`, `--summary-json`) into
//! a directory of its own — the same command, the same "today", the query files checked to be
//! the ones it read — and says for each output whether the bytes are the same, and where they
//! first differ when not. Data that changed at Google is then a named difference.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::AppError;
use crate::cli::RerunArgs;
use crate::error::Exit;

/// Flags of the recorded command that a rerun replaces (where it writes, what it resumes).
const REPLACED: &[&str] = &["--out-dir", "--state", "--summary-json", "--keep-runs"];
/// Flags without a value that a rerun drops: it starts from nothing.
const DROPPED: &[&str] = &["--resume", "--append", "--wait-lock"];

pub(super) async fn rerun(args: RerunArgs) -> Result<Exit, AppError> {
    let record = read_record(&args.record)?;
    let command = recorded_command(&record, &args.record)?;
    check_query_files(&record)?;
    let run_id = record["run_id"].as_str().unwrap_or("run");
    let dir = args
        .out_dir
        .unwrap_or_else(|| PathBuf::from(format!("rerun-{run_id}")));
    if dir.exists() && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(AppError::Usage(format!(
            "{} is not empty: a rerun writes into a directory of its own (--out-dir DIR)",
            dir.display()
        )));
    }
    let summary = dir.join("rerun-summary.json");
    let mut argv = command;
    argv.extend([
        "--out-dir".to_owned(),
        dir.display().to_string(),
        "--summary-json".to_owned(),
        summary.display().to_string(),
    ]);
    let today = first_today(&record);
    crate::say!(
        "rerunning {run_id}: gscrape {}{}",
        argv.join(" "),
        today
            .as_ref()
            .map(|t| format!(" (today = {t})"))
            .unwrap_or_default()
    );
    let exe = std::env::current_exe().map_err(|source| AppError::Io {
        what: "the gscrape binary".to_owned(),
        source,
    })?;
    let mut child = tokio::process::Command::new(exe);
    child.args(&argv).env("GSCRAPE_KEEP_RUNS", "0");
    if let Some(today) = &today {
        child.env("GSCRAPE_TODAY", today);
    }
    let status = child.status().await.map_err(|source| AppError::Io {
        what: "running the rerun".to_owned(),
        source,
    })?;
    let again = read_record(&summary)?;
    let mut all_same = status.success();
    let mut said = String::new();
    for query in record["queries"].as_array().into_iter().flatten() {
        let name = query["name"].as_str().unwrap_or_default();
        let Some(sha256) = query["sha256"].as_str() else {
            continue;
        };
        let theirs = (again["queries"].as_array().into_iter().flatten())
            .find(|q| q["name"] == query["name"]);
        let line = match theirs.and_then(|q| q["sha256"].as_str().map(|s| (q, s))) {
            Some((_, same)) if same == sha256 => format!("same      {name}: sha256 {sha256}"),
            Some((q, other)) => {
                all_same = false;
                let at = first_difference(
                    Path::new(query["output"].as_str().unwrap_or_default()),
                    Path::new(q["output"].as_str().unwrap_or_default()),
                );
                format!("DIFFERENT {name}: sha256 {other}, the record's {sha256}{at}")
            }
            None => {
                all_same = false;
                format!("DIFFERENT {name}: the rerun wrote no output")
            }
        };
        said += &line;
        said.push('\n');
        if let Some(note) = discovery_note(query, theirs) {
            said += &note;
            said.push('\n');
        }
    }
    crate::say!("{}", said.trim_end());
    Ok(match all_same {
        true => Exit::Success,
        false => Exit::QueryFailed,
    })
}

fn read_record(path: &Path) -> Result<Value, AppError> {
    let bad = |why: String| AppError::Usage(format!("{}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let record: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a run's record (JSON: {e})")))?;
    match record["manifest_version"].as_u64() {
        Some(1) => Ok(record),
        Some(n) => Err(bad(format!(
            "manifest_version {n} is not one this gscrape reads (1)"
        ))),
        None => Err(bad(
            "not a run's record: it has no manifest_version (an older gscrape's summary)"
                .to_owned(),
        )),
    }
}

/// The recorded `gscrape run …` arguments, without those a rerun replaces.
fn recorded_command(record: &Value, path: &Path) -> Result<Vec<String>, AppError> {
    let words: Vec<String> = (record["command"].as_array().into_iter().flatten())
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    if words.get(1).map(String::as_str) != Some("run") {
        return Err(AppError::Usage(format!(
            "{}: the record is not of a `gscrape run`",
            path.display()
        )));
    }
    if words
        .iter()
        .any(|w| w == "--output" || w.starts_with("--output="))
    {
        return Err(AppError::Usage(format!(
            "{}: the run wrote to standard output (--output -): there is no file to compare",
            path.display()
        )));
    }
    let mut kept = Vec::new();
    let mut rest = words.into_iter().skip(1);
    while let Some(word) = rest.next() {
        let flag = word.split('=').next().unwrap_or_default();
        if REPLACED.contains(&flag) {
            if !word.contains('=') {
                rest.next();
            }
            continue;
        }
        if DROPPED.contains(&flag) {
            continue;
        }
        kept.push(word);
    }
    Ok(kept)
}

/// Each query file the run read must be the same bytes now.
fn check_query_files(record: &Value) -> Result<(), AppError> {
    let mut changed = Vec::new();
    for asked in (record["queries"].as_array().into_iter().flatten()).map(|q| &q["asked"]) {
        let (Some(file), Some(sha256)) = (asked["file"].as_str(), asked["file_sha256"].as_str())
        else {
            continue;
        };
        let now = std::fs::read(file)
            .ok()
            .map(|bytes| crate::util::sha256_hex(&bytes));
        if now.as_deref() != Some(sha256) {
            changed.push(format!(
                "{file} is not the file the run read (its SHA-256 was {sha256}): check out the \
                 run's version (git) to re-run it"
            ));
        }
    }
    changed.dedup();
    match changed.is_empty() {
        true => Ok(()),
        false => Err(AppError::Usage(changed.join("\nerror: "))),
    }
}

/// The "today" the run's templates had.
fn first_today(record: &Value) -> Option<String> {
    (record["queries"].as_array().into_iter().flatten())
        .find_map(|q| q["asked"]["today"].as_str().map(str::to_owned))
}

/// `; the first difference is at line N: …` between two text outputs, when both are there.
fn first_difference(original: &Path, rerun: &Path) -> String {
    let (Ok(a), Ok(b)) = (std::fs::read(original), std::fs::read(rerun)) else {
        return format!(
            " (the recorded output {} is not here to compare line by line)",
            original.display()
        );
    };
    let mut lines_a = a.split(|b| *b == b'\n');
    let mut lines_b = b.split(|b| *b == b'\n');
    for n in 1.. {
        match (lines_a.next(), lines_b.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (None, None) => break,
            (x, y) => {
                let show = |l: Option<&[u8]>| match l {
                    Some(l) => {
                        crate::redact::shorten(&String::from_utf8_lossy(l), 120).into_owned()
                    }
                    None => "(end of file)".to_owned(),
                };
                return format!(
                    "; first difference at line {n}: the record's {:?}, now {:?}",
                    show(x),
                    show(y)
                );
            }
        }
    }
    String::new()
}

/// A line when the rerun planned against another Discovery document than the run did.
fn discovery_note(query: &Value, rerun: Option<&Value>) -> Option<String> {
    let before = &query["asked"]["discovery"];
    let now = &rerun?["asked"]["discovery"];
    (before["sha256"] != now["sha256"] && before.is_object()).then(|| {
        format!(
            "          the Discovery document differs: revision {} then, {} now (`gscrape lock` pins it)",
            before["revision"], now["revision"]
        )
    })
}
