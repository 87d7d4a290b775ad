//! The pre-flight of a run: every check of the planned queries that needs no side effect (no
//! file, lock, credential or request), so that `run` and `validate` refuse the same things and
//! the checks are tested without the binary. Its problems are printed together, exit 2.

use std::collections::BTreeSet;
use std::path::Path;

use crate::plan::QueryPlan;
use crate::query::{CsvSettings, Format, LoadMode, OutputFormat, Problem};
use crate::template::Templates;

/// What the pre-flight knows of the command line.
#[derive(Debug, Default)]
pub(super) struct Checks<'a> {
    /// A backfill (`--from`/`--to`) of this many windows sets `window`; `None`: no backfill.
    pub windows: Option<usize>,
    /// `--output -`: the one query goes to standard output.
    pub stdout: bool,
    /// `--summary-json`, which must not be an output.
    pub summary_json: Option<&'a Path>,
    /// The CSV flags, for every query whose output uses them.
    pub csv: CsvSettings,
}

/// The problems of `plans` as the run would meet them, in order: a backfill's `window` read
/// outside one, or not read in one (or an output each window would replace), templates that
/// cannot render (a parameter of the wrong type), then (when those pass) the standard-output
/// redirect, which it applies, CSV flags an output would not use, the summary written over an
/// output, and a bearer token sent over plain http.
pub(super) fn preflight(
    plans: &mut [QueryPlan],
    checks: &Checks<'_>,
    templates: &Templates,
) -> Vec<Problem> {
    let mut problems = window_problems(plans, checks, templates);
    // A request that renders once renders now: a value of the wrong type is a usage error.
    for plan in plans.iter().filter(|p| p.query.for_each.is_none()) {
        let context = plan.context(None);
        match plan
            .request
            .render(&|text| templates.render(text, &context))
        {
            Err(message) => {
                problems.push(plan.query.problem(None, Some("params".to_owned()), message));
            }
            // What the body's templates rendered to, against its schema.
            Ok(spec) => problems.extend(spec.body.as_ref().map_or_else(Vec::new, |body| {
                crate::plan::check_rendered_body(
                    &plan.query,
                    &plan.doc,
                    &plan.method,
                    plan.query.body.as_ref().map(|b| &b.value),
                    body,
                )
            })),
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    if checks.stdout {
        if let Err(why) = to_stdout(plans, checks.windows.is_some(), &checks.csv) {
            return vec![Problem::general(format!("--output - {why}"))];
        }
    }
    problems.extend(unfit_csv_flags(plans, &checks.csv));
    if let Some(summary) = checks.summary_json {
        let clash = plans.iter().find(|plan| {
            (plan.output.as_ref()).is_some_and(|output| same_file(output.path(), summary))
        });
        if let Some(plan) = clash {
            problems.push(Problem {
                key: Some(SUMMARY_CLASH.to_owned()),
                ..Problem::general(format!(
                    "--summary-json {} is the output of {}; write the summary elsewhere",
                    summary.display(),
                    plan.query.file.display()
                ))
            });
        }
    }
    problems.extend(plans.iter().filter_map(plain_http));
    problems.extend(plain_http_sheets(plans));
    problems.extend(object_problems(plans, checks));
    problems.extend(bigquery_problems(plans, checks.windows));
    problems.extend(crate::merge::problems(
        plans,
        checks.windows.is_some(),
        checks.stdout,
        &checks.csv,
    ));
    problems
}

/// What an output in Cloud Storage cannot do: be appended to (an object is written whole; a
/// run's object is named per run instead, or the runs' objects composed), or name an object
/// that is not a `gs://BUCKET/NAME`.
fn object_problems(plans: &[QueryPlan], checks: &Checks<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for plan in plans {
        let Some(output) = &plan.output else { continue };
        if let Some(why) = output.bad_object() {
            problems.push(plan.query.problem(None, Some("output".to_owned()), why));
            continue;
        }
        if output.object().is_none() {
            continue;
        }
        let text = output.path().to_string_lossy();
        if plan.query.csv.or(&checks.csv).append == Some(true) {
            problems.push(plan.query.problem(
                None,
                Some("append".to_owned()),
                format!(
                    "{text} is a Cloud Storage object, which is written whole: it cannot be \
                     appended to. Name each run's object (output = \"…-{{{{ today }}}}.csv\"), \
                     or join them with `gscrape compose`"
                ),
            ));
        }
    }
    problems
}

/// An incremental query run from its cursor exports what changed since: replacing its table
/// with that would drop the rest (`--full` and `--since` re-export on purpose).
pub(super) fn replaced_tables(plans: &[QueryPlan]) -> Vec<Problem> {
    plans
        .iter()
        .filter(|plan| plan.query.incremental.is_some())
        .filter_map(|plan| {
            let target = plan.query.bigquery.as_ref()?;
            (target.value.mode == LoadMode::Replace).then(|| {
                plan.query.problem(
                    target.line,
                    Some("bigquery.mode".to_owned()),
                    format!(
                        "an incremental run exports only the records since its cursor, and \
                         replacing the table {} with them would drop the others: set \
                         `mode = \"append\"` (or re-export all with --full)",
                        target.value.table
                    ),
                )
            })
        })
        .collect()
}

/// `[bigquery]` as the run would meet it: columns that cannot be a table's, a per-record
/// subject (a table is loaded with one account), a replace in each window of a backfill, two
/// queries loading one table, a token over plain http to BigQuery.
fn bigquery_problems(plans: &[QueryPlan], windows: Option<usize>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for plan in plans {
        let Some(target) = &plan.query.bigquery else {
            continue;
        };
        let (table, line) = (&target.value.table, target.line);
        if !plan.columns.is_empty() {
            if let Err(why) = crate::sink::bigquery::table_columns(plan, &plan.columns) {
                let columns = plan.query.columns.as_ref();
                let at = columns
                    .and_then(|c| c.first())
                    .and_then(|c| c.line)
                    .or(line);
                problems.push(plan.query.problem(at, Some("columns".to_owned()), why));
            }
        }
        let per_record = plan.query.for_each.is_some()
            && (plan.query.subject.as_deref())
                .is_some_and(|s| s.contains("{{") || s.contains("{%"));
        if per_record {
            problems.push(plan.query.problem(
                line,
                Some("subject".to_owned()),
                format!(
                    "the table {table} is loaded with one account, but `subject` is a \
                     per-record template: name one subject, or write a file"
                ),
            ));
        }
        if windows.is_some_and(|w| w > 1) && target.value.mode == LoadMode::Replace {
            problems.push(plan.query.problem(
                line,
                Some("bigquery.mode".to_owned()),
                format!(
                    "every window of the backfill would replace the table {table}, keeping \
                     only the last: set `mode = \"append\"`"
                ),
            ));
        }
        problems.extend(table_shared(plans, plan));
    }
    problems.extend(bigquery_over_http(plans));
    problems
}

/// Another query loading `plan`'s table, unless both append: a replace would undo its rows.
fn table_shared(plans: &[QueryPlan], plan: &QueryPlan) -> Option<Problem> {
    let target = plan.query.bigquery.as_ref()?;
    let (table, line) = (&target.value.table, target.line);
    let other = plans.iter().find(|other| {
        !std::ptr::eq(*other, plan)
            && (other.query.bigquery.as_ref()).is_some_and(|o| o.value.table == *table)
    });
    let both_append = |a: &QueryPlan, b: &QueryPlan| {
        [a, b]
            .iter()
            .all(|p| (p.query.bigquery.as_ref()).is_some_and(|t| t.value.mode == LoadMode::Append))
    };
    let other = other.filter(|other| !both_append(plan, other))?;
    Some(plan.query.problem(
        line,
        Some("bigquery.table".to_owned()),
        format!(
            "{} loads the table {table} too, and a replace would undo the other's \
             rows: load another table, or set `mode = \"append\"` in both",
            other.query.file.display()
        ),
    ))
}

/// A token that would go to BigQuery over plain http (said once, for the first query).
fn bigquery_over_http(plans: &[QueryPlan]) -> Option<Problem> {
    let plan = plans.iter().find(|plan| plan.query.bigquery.is_some())?;
    let root = crate::endpoints::of(crate::endpoints::BIGQUERY);
    let insecure = root
        .parse()
        .map(|uri| !crate::http::may_carry_bearer(&uri))
        .unwrap_or(true);
    if !insecure {
        return None;
    }
    let origin = crate::endpoints::origin("bigquery")
        .map(|o| format!(" (the root URL of {o})"))
        .unwrap_or_default();
    Some(Problem::general(format!(
        "{}: refusing to send a bearer token over plain http to BigQuery at {root}{origin}: \
         use https ({})",
        plan.query.name,
        crate::http::PLAIN_HTTP_RULE
    )))
}

/// The key of the problem of a summary that would be written over an output (a general
/// problem: said without it).
const SUMMARY_CLASH: &str = "--summary-json";

/// True when `problems` refuse the summary's file as an output: the summary is then not written
/// there either.
pub(super) fn summary_clash(problems: &[Problem]) -> bool {
    problems
        .iter()
        .any(|p| p.key.as_deref() == Some(SUMMARY_CLASH))
}

/// Whether `plan`'s templates (its requests, columns, subject and output name) read `root`.
fn reads(plan: &QueryPlan, templates: &Templates, root: &str) -> bool {
    let output = plan.query.output.as_ref().map(|o| o.to_string_lossy());
    plan.templates()
        .into_iter()
        .chain(output.as_deref())
        .any(|text| !templates.reads(text, root).is_empty())
}

/// A query that reads `window` outside a backfill.
const WINDOW_OUTSIDE_BACKFILL: &str =
    "its templates read `window`, which a backfill sets: run it with --from DATE --to DATE";

/// `{{ window.start }}` has a value only in a backfill; in one, every query must read it (a
/// fan-out child through its parent), or each window would ask the same again; and with more
/// than one window, an output each window would replace keeps only the last.
fn window_problems(
    plans: &[QueryPlan],
    checks: &Checks<'_>,
    templates: &Templates,
) -> Vec<Problem> {
    let reads_window = |plan: &QueryPlan| reads(plan, templates, "window");
    let Some(windows) = checks.windows else {
        return (plans.iter().filter(|plan| reads_window(plan)))
            .map(|plan| plan.query.problem(None, None, WINDOW_OUTSIDE_BACKFILL))
            .collect();
    };
    let mut problems = Vec::new();
    for plan in plans {
        // A child runs once per record of its parent: it asks anew when the parent does.
        let mut asks_per_window = reads_window(plan);
        let mut parent = plan.query.for_each.as_ref();
        while let (false, Some(name)) = (asks_per_window, parent) {
            let found = plans.iter().find(|p| p.query.name == name.value);
            asks_per_window = found.is_some_and(&reads_window);
            parent = found.and_then(|p| p.query.for_each.as_ref());
        }
        if !asks_per_window {
            problems.push(plan.query.problem(
                None,
                None,
                "its templates do not read `window`, so every window of the backfill would ask \
                 for the same records: use {{ window.start }} and {{ window.end }} in its \
                 [params] or [body], or leave it out of the backfill (--only NAME)",
            ));
            continue;
        }
        let output = plan.query.output.as_ref().map(|o| o.to_string_lossy());
        let named_per_window = output
            .as_deref()
            .is_some_and(|name| !templates.reads(name, "window").is_empty());
        // (A merge keeps what the other windows wrote.)
        let appends =
            plan.query.csv.or(&checks.csv).append == Some(true) || plan.query.merge.is_some();
        if windows > 1 && plan.output.is_some() && !named_per_window && !appends {
            problems.push(plan.query.problem(
                None,
                Some("output".to_owned()),
                format!(
                    "every window of the backfill would replace {:?}, keeping only the \
                     last: name it per window (\"…{{{{ window.start }}}}.csv\") or set \
                     `append = true`",
                    (plan.output.as_ref()).map_or(Path::new(""), |o| o.name()).display().to_string()
                ),
            ));
        }
    }
    problems
}

/// `--var NAME=VALUE` for a name that no query of the run declares in `[vars]` (`declared`,
/// as the files have them) or reads: it would change nothing, and the default would run.
pub(super) fn unknown_vars(
    vars: &[(String, String)],
    declared: &BTreeSet<String>,
    plans: &[QueryPlan],
    templates: &Templates,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (name, _) in vars {
        if declared.contains(name) || plans.iter().any(|plan| reads(plan, templates, name)) {
            continue;
        }
        let mut names: BTreeSet<String> = declared.clone();
        for plan in plans {
            let output = plan.query.output.as_ref().map(|o| o.to_string_lossy());
            for text in plan.templates().into_iter().chain(output.as_deref()) {
                names.extend(templates.variables(text));
            }
        }
        let hint = match crate::util::nearest(name, names.iter().map(String::as_str)).first() {
            Some(near) => format!("did you mean `{near}`?"),
            None if names.is_empty() => "the queries have no variables".to_owned(),
            None => format!(
                "their variables: {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        problems.push(Problem::general(format!(
            "--var {name}: no query of this run declares `{name}` in [vars] or reads it, so it \
             would change nothing; {hint}"
        )));
    }
    problems
}

/// The flags of CSV options (`--null`, ...) that a query's output would not use: refused,
/// naming the query, rather than ignored for it.
fn unfit_csv_flags(plans: &[QueryPlan], csv: &CsvSettings) -> Vec<Problem> {
    let mut problems = Vec::new();
    for key in crate::query::CSV_OPTION_KEYS {
        let unfit: Vec<String> = plans
            .iter()
            .filter(|plan| {
                let format = plan.output.as_ref().map(|o| o.format);
                // A query's own key wins over the flag: the flag is not used there.
                !plan.query.csv.keys_set().contains(&key) && csv.unfit_for(format).contains(&key)
            })
            .map(|plan| match &plan.output {
                Some(output) => format!("{} writes {}", plan.query.name, written(output.format)),
                None => format!("{} writes no file", plan.query.name),
            })
            .collect();
        if unfit.is_empty() {
            continue;
        }
        let flag = match key {
            "header" => "--no-header".to_owned(),
            other => format!("--{}", other.replace('_', "-")),
        };
        problems.push(Problem::general(format!(
            "{flag} is an option of CSV and TSV files, and {}: set `{key}` in the queries \
             that need it instead, or run the others apart (--only NAME)",
            unfit.join(", ")
        )));
    }
    problems
}

/// `csv`, `ndjson.gz`, ...
fn written(format: OutputFormat) -> String {
    format!("{}{}", format.format, if format.gzip { ".gz" } else { "" })
}

/// A bearer token goes only over https, or plain http to loopback.
fn plain_http(plan: &QueryPlan) -> Option<Problem> {
    let insecure = plan
        .request
        .base_url
        .parse()
        .map(|uri| !crate::http::may_carry_bearer(&uri))
        .unwrap_or(true);
    insecure.then(|| {
        Problem::general(format!(
            "{}: refusing to send a bearer token over plain http to {}{}{}: use https ({})",
            plan.query.name,
            plan.request.base_url,
            plan.request.path,
            root_origin(plan),
            crate::http::PLAIN_HTTP_RULE
        ))
    })
}

/// A `[sheet]` goes to the Sheets API, whose root only an override can make plain http (its
/// document is loaded after the pre-flight).
fn plain_http_sheets(plans: &[QueryPlan]) -> Option<Problem> {
    let plan = plans.iter().find(|plan| plan.query.sheet.is_some())?;
    let origin = crate::endpoints::origin("sheets")?;
    let root = crate::endpoints::root_url("sheets", "https://sheets.googleapis.com/");
    let insecure = root
        .parse()
        .map(|uri| !crate::http::may_carry_bearer(&uri))
        .unwrap_or(true);
    insecure.then(|| {
        Problem::general(format!(
            "{}: refusing to send a bearer token over plain http to the Sheets API at {root} \
             (the root URL of {origin}): use https ({})",
            plan.query.name,
            crate::http::PLAIN_HTTP_RULE
        ))
    })
}

/// ` (the root URL of OVERRIDE)` when the root is not the document's own.
fn root_origin(plan: &QueryPlan) -> String {
    let origin = match &plan.query.endpoint {
        Some(_) => Some(format!("{}: endpoint", plan.query.file.display())),
        None => crate::endpoints::origin(&plan.doc.name).map(|o| o.to_string()),
    };
    origin
        .map(|o| format!(" (the root URL of {o})"))
        .unwrap_or_default()
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((std::path::absolute(a), std::path::absolute(b)), (Ok(a), Ok(b)) if a == b)
}

/// `--output -`: the one query of the run writes to standard output, in the format of its
/// name or `format` (CSV when it has neither). Refused for several queries, a backfill
/// (several runs) and an xlsx workbook (not a stream).
fn to_stdout(plans: &mut [QueryPlan], backfill: bool, csv: &CsvSettings) -> Result<(), String> {
    let [plan] = plans else {
        let names: Vec<&str> = plans.iter().map(|p| p.query.name.as_str()).collect();
        return Err(format!(
            "writes one query to standard output, and this run has {} ({}); pick one with --only NAME",
            plans.len(),
            names.join(", ")
        ));
    };
    if backfill {
        return Err("writes one export; a backfill (--from, --to) makes one per window".into());
    }
    if let Some(target) = &plan.query.bigquery {
        return Err(format!(
            "shows one query's rows, and {} also loads the BigQuery table {}: run it without \
             --output - (`gscrape validate` says what it would do)",
            plan.query.name, target.value.table
        ));
    }
    let format = match &plan.output {
        Some(output) => output.format,
        None => OutputFormat {
            format: plan.query.format.unwrap_or(Format::Csv),
            gzip: false,
        },
    };
    if !format.format.can().streams {
        return Err(match format.format {
            Format::Xlsx => format!(
                "cannot stream {}'s xlsx workbook; write it to a file",
                plan.query.name
            ),
            Format::Parquet => format!(
                "does not stream {}'s Parquet file (a reader needs its footer, at the end); write it to a file",
                plan.query.name
            ),
            other => format!(
                "does not stream {}'s {other} file; write it to a file",
                plan.query.name
            ),
        });
    }
    if plan.query.csv.or(csv).append == Some(true) {
        return Err(format!(
            "cannot append {}'s rows to a file: drop `append` (or --append) to write them to standard output",
            plan.query.name
        ));
    }
    plan.output = Some(crate::plan::Output::stdout(format));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::discovery::Document;

    fn plan_of(text: &str) -> QueryPlan {
        let doc = include_str!("../../tests/fixtures/discovery/drive.v3.json");
        let doc = Arc::new(Document::from_json(doc).unwrap());
        let text =
            format!("api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n{text}");
        let query = crate::query::parse(Path::new("queries/files.toml"), &text).unwrap();
        crate::plan::plan(&query, doc, &templates()).unwrap()
    }

    /// [`plan_of`], its output under `out_dir`.
    fn plan_under(text: &str, out_dir: &str) -> QueryPlan {
        let doc = include_str!("../../tests/fixtures/discovery/drive.v3.json");
        let doc = Arc::new(Document::from_json(doc).unwrap());
        let text =
            format!("api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n{text}");
        let query = crate::query::parse(Path::new("queries/files.toml"), &text).unwrap();
        crate::plan::plan_in(&query, doc, &templates(), Path::new(out_dir)).unwrap()
    }

    fn templates() -> Templates {
        Templates::for_date(chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap())
    }

    fn said(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn window_is_read_in_a_backfill_and_only_there() {
        let query =
            "output = \"files-{{ window.start }}.csv\"\n[params]\nq = \"'{{ window.end }}'\"\n";
        let refused = "queries/files.toml: its templates read `window`, which a backfill sets: \
                       run it with --from DATE --to DATE";
        let ignored = "queries/files.toml: its templates do not read `window`, so every window \
                       of the backfill would ask for the same records: use {{ window.start }} \
                       and {{ window.end }} in its [params] or [body], or leave it out of the \
                       backfill (--only NAME)";
        let replaced = "queries/files.toml: output: every window of the backfill would \
                        replace \"files.csv\", keeping only the last: name it per window \
                        (\"…{{ window.start }}.csv\") or set `append = true`";
        for (query, windows, expected) in [
            (query, None, vec![refused]),
            (query, Some(2), vec![]),
            ("", Some(2), vec![ignored]),
            ("", Some(1), vec![ignored]),
            (
                "[params]\nq = \"{{ window.start }}\"\n",
                Some(2),
                vec![replaced],
            ),
            ("[params]\nq = \"{{ window.start }}\"\n", Some(1), vec![]),
            (
                "append = true\n[params]\nq = \"{{ window.start }}\"\n",
                Some(2),
                vec![],
            ),
        ] {
            let checks = Checks {
                windows,
                ..Checks::default()
            };
            let mut plans = [plan_of(query)];
            assert_eq!(
                said(&preflight(&mut plans, &checks, &templates())),
                expected,
                "{query} in {windows:?}"
            );
        }
    }

    #[test]
    fn a_parameter_that_renders_to_the_wrong_type_is_refused() {
        let mut plans = [plan_of("[params]\npageSize = \"{{ today }}\"\n")];
        let problems = preflight(&mut plans, &Checks::default(), &templates());
        let said = said(&problems);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("queries/files.toml: params: "),
            "{said:?}"
        );
        assert!(said[0].contains("pageSize"), "{said:?}");
    }

    #[test]
    fn standard_output_takes_one_query_and_the_summary_no_output() {
        let checks = Checks {
            stdout: true,
            ..Checks::default()
        };
        let mut plans = [plan_of("")];
        assert!(preflight(&mut plans, &checks, &templates()).is_empty());
        assert_eq!(
            plans[0].output.as_ref().map(|o| o.name()),
            Some(Path::new(crate::plan::STDOUT))
        );
        let mut two = [plan_of(""), plan_of("")];
        let refused = said(&preflight(&mut two, &checks, &templates()));
        assert_eq!(refused.len(), 1);
        assert!(refused[0]
            .starts_with("--output - writes one query to standard output, and this run has 2"));

        let summary = std::path::PathBuf::from("out/files.csv");
        let checks = Checks {
            summary_json: Some(&summary),
            ..Checks::default()
        };
        let mut plans = [plan_under("output = \"files.csv\"\n", "out")];
        assert_eq!(
            said(&preflight(&mut plans, &checks, &templates())),
            ["--summary-json out/files.csv is the output of queries/files.toml; write the summary elsewhere"]
        );
    }

    #[test]
    fn a_bigquery_table_is_loaded_by_one_query_and_replaced_once_a_run() {
        let table = "[bigquery]\ntable = \"my-project.d.files\"\n";
        let mut two = [plan_of(table), plan_of(table)];
        let refused = said(&preflight(&mut two, &Checks::default(), &templates()));
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(
            refused[0].starts_with("queries/files.toml:4: bigquery.table: queries/files.toml loads the table my-project.d.files too"),
            "{refused:?}"
        );
        let append = format!("{table}mode = \"append\"\n");
        let mut two = [plan_of(&append), plan_of(&append)];
        assert!(preflight(&mut two, &Checks::default(), &templates()).is_empty());

        let windowed = format!("[params]\nq = \"{{{{ window.start }}}}\"\n{table}");
        let checks = Checks {
            windows: Some(2),
            ..Checks::default()
        };
        let refused = said(&preflight(&mut [plan_of(&windowed)], &checks, &templates()));
        assert_eq!(
            refused,
            ["queries/files.toml:6: bigquery.mode: every window of the backfill would replace the table my-project.d.files, keeping only the last: set `mode = \"append\"`"]
        );
        let windowed = format!("{windowed}mode = \"append\"\n");
        assert!(preflight(&mut [plan_of(&windowed)], &checks, &templates()).is_empty());
    }

    #[test]
    fn a_bearer_token_never_goes_over_plain_http_but_to_loopback() {
        let mut plans = [plan_of("")];
        plans[0].request.base_url = "http://drive.example.com/".to_owned();
        let said = said(&preflight(&mut plans, &Checks::default(), &templates()));
        assert_eq!(said.len(), 1);
        assert!(said[0].starts_with("files: refusing to send a bearer token over plain http to http://drive.example.com/"), "{said:?}");
        plans[0].request.base_url = "http://127.0.0.1:8080/".to_owned();
        assert!(preflight(&mut plans, &Checks::default(), &templates()).is_empty());
    }
}
