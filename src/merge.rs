//! What `merge_key` and `lookback` ask of a planned query, checked before any request (for
//! `validate` and `run`, exit 2): the merge itself is `sink::merge`, the kept cursor moved
//! back is `query::Lookback`, a backfill's windows asked again is [`backfill_lookback`].
//!
//! A lookback asks again for rows the output holds: appended, they would be there twice, so
//! it needs `merge_key` wherever the output is appended to (refused rather than warned: a
//! warning in a cron log is read after the duplicates are in a dashboard).

use crate::plan::QueryPlan;
use crate::query::{CsvSettings, LoadMode, Problem, SheetMode};

/// The problems of `merge_key` and `lookback` in `plans`; `backfill`: the run is one.
pub fn problems(
    plans: &[QueryPlan],
    backfill: bool,
    stdout: bool,
    csv: &CsvSettings,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for plan in plans {
        let query = &plan.query;
        let settings = query.csv.or(csv);
        if let Some(lookback) = &query.lookback {
            let problem = |message: String| {
                query.problem(lookback.line, Some("lookback".to_owned()), message)
            };
            let appends = plan.output.is_some() && settings.append == Some(true)
                || (query.bigquery.as_ref()).is_some_and(|t| t.value.mode == LoadMode::Append)
                || (query.sheet.as_ref()).is_some_and(|s| s.value.mode == SheetMode::Append);
            if query.incremental.is_none() && !backfill {
                problems.push(problem(
                    "asks again for what came before the cursor of an incremental query \
                     ([incremental]) or the last windows of a backfill (--from/--to), and this \
                     query is neither: remove it, or run it as a backfill"
                        .to_owned(),
                ));
            } else if query.merge.is_none() && appends {
                problems.push(problem(
                    "asks again for rows the output holds, and appending them would write them \
                     twice: set `merge_key = [...]` (the columns that identify a row) so that \
                     they replace the old ones"
                        .to_owned(),
                ));
            }
        }
        let Some(merge) = &query.merge else { continue };
        let problem =
            |key: &str, message: String| query.problem(merge.line, Some(key.to_owned()), message);
        if !plan.columns.is_empty() {
            let headers: Vec<&str> = plan.columns.iter().map(|c| c.header.as_str()).collect();
            for key in &merge.value.key {
                if !headers.contains(&key.as_str()) {
                    problems.push(problem(
                        "merge_key",
                        format!(
                            "`{key}` is not one of the columns ({}); name the key by the \
                             columns' headers",
                            headers.join(", ")
                        ),
                    ));
                }
            }
        }
        if query.sheet.is_some() {
            problems.push(problem(
                "merge_key",
                "a Google Sheet is not merged into yet: write its rows to a file or a table, or \
                 remove merge_key"
                    .to_owned(),
            ));
        }
        let Some(output) = &plan.output else {
            if query.bigquery.is_none() {
                problems.push(problem(
                    "merge_key",
                    "the query writes no output (output = false) to merge into: remove it"
                        .to_owned(),
                ));
            }
            continue;
        };
        if stdout || output.is_stdout() {
            problems.push(problem(
                "merge_key",
                "standard output has no old rows to merge with: write a file".to_owned(),
            ));
            continue;
        }
        if !output.can().mergeable {
            problems.push(problem(
                "merge_key",
                format!(
                    "{} is not merged into ({:?} cannot be read back row by row yet): merge \
                     into a CSV, TSV or NDJSON output",
                    output.name().display(),
                    output.format.format
                ),
            ));
        }
        if settings.append == Some(true) {
            problems.push(problem(
                "append",
                "a merge writes the output anew with the old rows kept, so it does not append: \
                 remove `append` (or --append)"
                    .to_owned(),
            ));
        }
        if settings.excel_safe == Some(true) {
            problems.push(problem(
                "excel_safe",
                "the formula guard changes the cells written, so the old rows' keys could not be \
                 read back as they were: remove `excel_safe` from a merged output"
                    .to_owned(),
            ));
        }
    }
    problems
}

/// What `validate` says of a query's merge and lookback (empty: neither).
pub fn describe(plan: &QueryPlan) -> String {
    let mut out = String::new();
    if let Some(merge) = &plan.query.merge {
        let keep = match merge.value.keep {
            None => "two rows of one run with one key fail it".to_owned(),
            Some(keep) => format!("merge_keep = \"{}\"", format!("{keep:?}").to_lowercase()),
        };
        out += &format!(
            "; merges by merge_key = [{}] (this run's rows replace the old ones with their key, \
             the others are kept; {keep})",
            merge.value.key.join(", ")
        );
    }
    if let Some(lookback) = &plan.query.lookback {
        let what = match plan.query.incremental {
            Some(_) => "before its kept cursor",
            None => "of the windows a backfill wrote last",
        };
        out += &format!("; asks again for {} {what} (lookback)", lookback.value);
    }
    out
}

/// In a backfill, whether a window ending on `end`, which the output holds already (`latest`:
/// the last day any window it holds ends), is asked for again: it ends within the query's
/// lookback of `latest` (whole days).
pub fn backfill_lookback(
    plan: &QueryPlan,
    end: chrono::NaiveDate,
    latest: chrono::NaiveDate,
) -> bool {
    let Some(lookback) = &plan.query.lookback else {
        return false;
    };
    let days = lookback.value.days();
    let from = latest
        .checked_sub_days(chrono::Days::new(days.saturating_sub(1)))
        .unwrap_or(chrono::NaiveDate::MIN);
    end >= from
}
