//! The pre-flight of a run: every check of the planned queries that needs no side effect (no
//! file, lock, credential or request), so that `run` and `validate` refuse the same things and
//! the checks are tested without the binary. Its problems are printed together, exit 2.

use std::path::{Path, PathBuf};

use crate::plan::QueryPlan;
use crate::query::{Format, OutputFormat, Problem};
use crate::template::Templates;

/// What the pre-flight knows of the command line.
#[derive(Debug, Default)]
pub(super) struct Checks<'a> {
    /// A backfill (`--from`/`--to`) sets `window`; `None`: not known (`validate`), unchecked.
    pub backfill: Option<bool>,
    /// `--output -`: the one query goes to standard output.
    pub stdout: bool,
    /// `--summary-json`, which must not be an output.
    pub summary_json: Option<&'a Path>,
    pub out_dir: PathBuf,
}

/// The problems of `plans` as the run would meet them, in order: templates that cannot render
/// (`window` outside a backfill, a parameter of the wrong type), then (when those pass) the
/// standard-output redirect, which it applies, the summary written over an output, and a
/// bearer token sent over plain http.
pub(super) fn preflight(
    plans: &mut [QueryPlan],
    checks: &Checks<'_>,
    templates: &Templates,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if checks.backfill == Some(false) {
        problems.extend(
            plans
                .iter()
                .filter_map(|plan| reads_window(plan, templates)),
        );
    }
    // A request that renders once renders now: a value of the wrong type is a usage error.
    for plan in plans.iter().filter(|p| p.query.for_each.is_none()) {
        let context = plan.context(None);
        if let Err(message) = plan
            .request
            .render(&|text| templates.render(text, &context))
        {
            problems.push(plan.query.problem(None, Some("params".to_owned()), message));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    if checks.stdout {
        if let Err(why) = to_stdout(plans, checks.backfill == Some(true)) {
            return vec![Problem::general(format!("--output - {why}"))];
        }
    }
    if let Some(summary) = checks.summary_json {
        let clash = plans.iter().find(|plan| {
            plan.output
                .as_ref()
                .is_some_and(|output| same_file(&checks.out_dir.join(output), summary))
        });
        if let Some(plan) = clash {
            problems.push(Problem::general(format!(
                "--summary-json {} is the output of {}; write the summary elsewhere",
                summary.display(),
                plan.query.file.display()
            )));
        }
    }
    problems.extend(plans.iter().filter_map(plain_http));
    problems
}

/// `{{ window.start }}` has a value only in a backfill.
fn reads_window(plan: &QueryPlan, templates: &Templates) -> Option<Problem> {
    let output = plan.query.output.as_ref().map(|o| o.to_string_lossy());
    let reads = plan
        .templates()
        .into_iter()
        .chain(output.as_deref())
        .any(|text| !templates.reads(text, "window").is_empty());
    reads.then(|| {
        plan.query.problem(
            None,
            None,
            "its templates read `window`, which a backfill sets: run it with --from DATE --to DATE",
        )
    })
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
            "{}: refusing to send a bearer token over plain http to {}{}: use https ({})",
            plan.query.name,
            plan.request.base_url,
            plan.request.path,
            crate::http::PLAIN_HTTP_RULE
        ))
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((std::path::absolute(a), std::path::absolute(b)), (Ok(a), Ok(b)) if a == b)
}

/// `--output -`: the one query of the run writes to standard output, in the format of its
/// name or `format` (CSV when it has neither). Refused for several queries, a backfill
/// (several runs) and an xlsx workbook (not a stream).
fn to_stdout(plans: &mut [QueryPlan], backfill: bool) -> Result<(), String> {
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
    if plan.output.is_none() {
        plan.format = OutputFormat {
            format: plan.query.format.unwrap_or(Format::Csv),
            gzip: false,
        };
    }
    if plan.format.format == Format::Xlsx {
        return Err(format!(
            "cannot stream {}'s xlsx workbook; write it to a file",
            plan.query.name
        ));
    }
    plan.output = Some(crate::sink::STDOUT.into());
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

    fn templates() -> Templates {
        Templates::for_date(chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap())
    }

    fn said(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn window_is_refused_outside_a_backfill_and_unchecked_when_unknown() {
        let query = "output = \"files-{{ window.start }}.csv\"\n";
        let refused = "queries/files.toml: its templates read `window`, which a backfill sets: \
                       run it with --from DATE --to DATE";
        for (backfill, expected) in [
            (Some(false), vec![refused]),
            (Some(true), vec![]),
            (None, vec![]),
        ] {
            let checks = Checks {
                backfill,
                ..Checks::default()
            };
            let mut plans = [plan_of(query)];
            assert_eq!(
                said(&preflight(&mut plans, &checks, &templates())),
                expected
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
            plans[0].output.as_deref(),
            Some(Path::new(crate::sink::STDOUT))
        );
        let mut two = [plan_of(""), plan_of("")];
        let refused = said(&preflight(&mut two, &checks, &templates()));
        assert_eq!(refused.len(), 1);
        assert!(refused[0]
            .starts_with("--output - writes one query to standard output, and this run has 2"));

        let summary = PathBuf::from("out/files.csv");
        let checks = Checks {
            summary_json: Some(&summary),
            out_dir: PathBuf::from("out"),
            ..Checks::default()
        };
        let mut plans = [plan_of("output = \"files.csv\"\n")];
        assert_eq!(
            said(&preflight(&mut plans, &checks, &templates())),
            ["--summary-json out/files.csv is the output of queries/files.toml; write the summary elsewhere"]
        );
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
