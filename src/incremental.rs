//! Incremental queries (`[incremental]`): each run asks only for what is new since the last
//! successful one. Templates read `{{ since }}`; the greatest value of the query's `cursor`
//! field among the records a successful run wrote is kept in the run's state directory
//! (`cursors/`, [`crate::state`]: written whole), and a failed run leaves it where it was.
//! A run from the kept cursor never replaces an output: what it holds, no later run asks for.

use std::path::Path;

use crate::plan::QueryPlan;
use crate::query::{CsvSettings, Problem};

/// Where the cursor of query `name` is kept, in the run's state directory.
fn cursor_file(name: &str) -> String {
    format!("cursors/{name}.txt")
}

/// The cursor the last successful run of `name` kept, if any.
pub fn saved(out_dir: &Path, name: &str) -> Option<String> {
    let bytes = crate::state::of(out_dir).read(&cursor_file(name)).ok()??;
    let text = String::from_utf8(bytes).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Keeps `value` as the cursor of `name`.
pub fn save(out_dir: &Path, name: &str, value: &str) -> std::io::Result<()> {
    crate::state::of(out_dir).write(&cursor_file(name), value.as_bytes())
}

/// Moves the cursors of the queries that succeeded (`(name, newest)`); one that did not
/// leaves its cursor.
pub fn keep<'a>(out_dir: &Path, succeeded: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (name, newest) in succeeded {
        if let Err(err) = save(out_dir, name, newest) {
            crate::say!(
                "warning: {name}: cannot keep its cursor {:?}: {err}",
                crate::redact::quote(newest)
            );
        }
    }
}

/// True when `output` (a file, or a Cloud Storage object) exists now.
fn output_exists(output: &crate::plan::Output) -> bool {
    let Some(object) = output.object().cloned() else {
        return output.path().exists();
    };
    // (Unknown, when Cloud Storage cannot be asked: the export then says why.)
    crate::gcs::io::get().is_ok_and(|gcs| {
        gcs.block(move |s| async move { s.meta(&object).await })
            .is_ok_and(|meta| meta.is_some())
    })
}

/// The outputs that a run from the kept cursors (neither `--full` nor `--since`) would replace
/// and so lose: the file of an incremental query, or of a fan-out below one (its parent hands it
/// only the newer records), that exists and is not appended to (`csv`: the run's defaults). Any
/// file there holds records the cursor has passed, or none: its existence is the whole test, so
/// it needs no state of its own, and holds for cursors kept before this check.
pub fn replaced_records(out_dir: &Path, plans: &[QueryPlan], csv: &CsvSettings) -> Vec<Problem> {
    let mut problems = Vec::new();
    for plan in plans {
        // (A merge keeps the old rows whose keys this run does not have.)
        let appends = plan.query.csv.or(csv).append.unwrap_or(false) || plan.query.merge.is_some();
        let Some(output) = plan.output.as_ref().filter(|o| !o.is_stdout()) else {
            continue;
        };
        let target = output.path();
        if appends || !output_exists(output) {
            continue;
        }
        let Some((source, cursor)) = cursor_behind(out_dir, plan, plans) else {
            continue;
        };
        let asks = match source == plan.query.name {
            true => "asks only for what is newer than the cursor its last run kept".to_owned(),
            false => format!(
                "gets only the records of `{source}` newer than the cursor that query's last run kept"
            ),
        };
        problems.push(plan.query.problem(
            None,
            Some("output".to_owned()),
            format!(
                "{} exists, and this run {asks} ({:?}): replacing the file would lose the records \
                 it holds; set `append = true` (or --append), give each run an output of its own, \
                 or re-export on purpose with --full or --since VALUE",
                target.display(),
                crate::redact::quote(&cursor)
            ),
        ));
    }
    problems
}

/// The incremental query whose kept cursor decides what `plan` gets, and that cursor: `plan`
/// itself, or the parent it fans out from, the parent's parent, ...
fn cursor_behind(
    out_dir: &Path,
    plan: &QueryPlan,
    plans: &[QueryPlan],
) -> Option<(String, String)> {
    let mut at = plan;
    // (A cycle is a validation error; the bound only makes sure of it.)
    for _ in 0..=plans.len() {
        if at.query.incremental.is_some() {
            let cursor = saved(out_dir, &at.query.name)?;
            return Some((at.query.name.clone(), cursor));
        }
        let parent = at.query.for_each.as_ref()?;
        at = plans.iter().find(|p| p.query.name == parent.value)?;
    }
    None
}

/// True when `candidate` is later than `current`: as instants when both are RFC 3339
/// timestamps, as numbers when both are, else as text.
pub fn is_later(candidate: &str, current: &str) -> bool {
    let time = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    if let (Some(a), Some(b)) = (time(candidate), time(current)) {
        return a > b;
    }
    if let (Ok(a), Ok(b)) = (candidate.parse::<f64>(), current.parse::<f64>()) {
        return a > b;
    }
    candidate > current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(name: &str, text: &str, out_dir: &Path) -> QueryPlan {
        let doc = include_str!("../tests/fixtures/discovery/drive.v3.json");
        let doc = std::sync::Arc::new(crate::discovery::Document::from_json(doc).unwrap());
        let text =
            format!("api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n{text}");
        let file = std::path::PathBuf::from(format!("queries/{name}.toml"));
        let query = crate::query::parse(&file, &text).unwrap();
        let templates = crate::template::Templates::for_date(
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        );
        crate::plan::plan_in(&query, doc, &templates, out_dir).unwrap()
    }

    /// A fan-out below an incremental query gets only the newer parent records: its file is
    /// kept as the parent's would be.
    #[test]
    fn a_fan_out_below_an_incremental_query_does_not_replace_its_file() {
        let out = tempfile::tempdir().unwrap();
        let parent = plan_of(
            "changes",
            "output = false\n[incremental]\ncursor = \"modifiedTime\"\ninitial = \"2000-01-01T00:00:00Z\"\n",
            out.path(),
        );
        let child = |extra: &str| {
            plan_of(
                "children",
                &format!("for_each = \"changes\"\n{extra}[params]\nq = \"'{{{{ changes.id }}}}' in parents\"\n"),
                out.path(),
            )
        };
        let said = |plans: &[QueryPlan]| -> Vec<String> {
            replaced_records(out.path(), plans, &CsvSettings::default())
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        std::fs::write(out.path().join("children.csv"), "id\r\nc1\r\n").unwrap();
        let plans = [parent.clone(), child("")];
        assert!(said(&plans).is_empty(), "no cursor kept: from `initial`");
        save(out.path(), "changes", "2026-11-30T00:00:00Z").unwrap();
        let refused = said(&plans);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with(&format!(
                "queries/children.toml: output: {} exists, and this run gets only the records of \
                 `changes` newer than the cursor that query's last run kept (\"2026-11-30T00:00:00Z\")",
                out.path().join("children.csv").display()
            )),
            "{refused:?}"
        );
        assert!(said(&[parent.clone(), child("append = true\n")]).is_empty());
        std::fs::remove_file(out.path().join("children.csv")).unwrap();
        assert!(said(&plans).is_empty(), "no file to replace");
    }

    #[test]
    fn later_values() {
        assert!(is_later(
            "2024-03-02T00:00:00Z",
            "2024-03-01T21:00:00-02:00"
        ));
        assert!(!is_later(
            "2024-03-01T22:00:00-02:00",
            "2024-03-02T00:00:00Z"
        ));
        assert!(is_later("10", "9"), "numbers as numbers");
        assert!(is_later("b", "a"));
    }
}
