//! Where a query's CSV goes: its output path, rendered, and no two queries writing one file
//! (or replacing one sheet tab).

use serde_json::Value;

use super::QueryPlan;
use crate::query::{Format, OutputFormat, Problem, Query};
use crate::template::Templates;

/// Two queries writing one file would lose one export: a problem for the later one.
pub fn shared_outputs(plans: &[QueryPlan]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let Some(output) = &plan.output else { continue };
        // (Two queries of one name are reported as such already.)
        let first = plans[..i].iter().find(|other| {
            other.output.as_ref() == Some(output) && other.query.name != plan.query.name
        });
        if let Some(first) = first {
            problems.push(plan.query.problem(
                None,
                Some("output".to_owned()),
                format!(
                    "{:?} is also the output of {}; give one of them another `output`",
                    output.display().to_string(),
                    first.query.file.display()
                ),
            ));
        }
    }
    problems.extend(shared_tabs(plans));
    problems
}

/// Two queries on one tab of a spreadsheet, one of them replacing it, would lose an export
/// (appending from several queries is allowed: each adds its rows).
fn shared_tabs(plans: &[QueryPlan]) -> Vec<Problem> {
    use crate::query::{SheetMode, Spreadsheet};
    let mut problems = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let Some(sheet) = &plan.query.sheet else {
            continue;
        };
        let Spreadsheet::Id(id) = &sheet.value.spreadsheet else {
            continue;
        };
        let first = plans[..i].iter().find(|other| {
            other.query.sheet.as_ref().is_some_and(|o| {
                o.value.spreadsheet == sheet.value.spreadsheet
                    && o.value.tab == sheet.value.tab
                    && (o.value.mode == SheetMode::Replace
                        || sheet.value.mode == SheetMode::Replace)
            }) && other.query.name != plan.query.name
        });
        if let Some(first) = first {
            problems.push(plan.query.problem(
                sheet.line,
                Some("sheet.tab".to_owned()),
                format!(
                    "tab {:?} of spreadsheet {id} is also written by {}; give one of them another `tab`",
                    sheet.value.tab,
                    first.query.file.display()
                ),
            ));
        }
    }
    problems
}

/// The output file name, rendered (it may use the variables and dates, not a parent record).
pub(super) fn output_path(
    query: &Query,
    templates: &Templates,
    problems: &mut Vec<Problem>,
) -> Option<std::path::PathBuf> {
    let raw = query.output.as_ref()?;
    let text = raw.to_string_lossy();
    if !crate::template::is_template(&text) {
        return Some(raw.clone());
    }
    let known: Vec<&str> = query.vars.value.keys().map(String::as_str).collect();
    let rendered = templates.check(&text, &known).and_then(|()| {
        let context = crate::template::json_value(&Value::Object(query.vars.value.clone()));
        templates.render(&text, &context)
    });
    match rendered {
        Ok(name) if crate::query::is_plain_relative(std::path::Path::new(&name)) => {
            Some(name.into())
        }
        Ok(name) => {
            problems.push(query.problem(
                None,
                Some("output".to_owned()),
                format!("{name:?} must be a relative file name under the output directory (no `..`, not absolute)"),
            ));
            None
        }
        Err(message) => {
            problems.push(query.problem(None, Some("output".to_owned()), message));
            None
        }
    }
}

/// The format of the output `name` (see [`OutputFormat::resolve`]), and the CSV options of
/// the query that it would not use ([`crate::query::CsvSettings::unfit_for`]): each is a
/// problem, never ignored (but `header` where the method's responses are read by it:
/// `reads_header`).
pub(super) fn output_format(
    query: &Query,
    name: Option<&std::path::Path>,
    reads_header: bool,
    problems: &mut Vec<Problem>,
) -> OutputFormat {
    let format = match name.map(|name| OutputFormat::resolve(name, query.format)) {
        None => None,
        Some(Ok(format)) => Some(format),
        Some(Err(message)) => {
            problems.push(query.problem(None, Some("format".to_owned()), message));
            return OutputFormat::default();
        }
    };
    let unfit = query.csv.unfit_for(format);
    for key in unfit
        .into_iter()
        .filter(|k| !(reads_header && *k == "header"))
    {
        let message = match format {
            None => {
                format!("`{key}` is an option of CSV files, and this query writes none: remove it")
            }
            Some(f) if f.format == Format::Tsv && key == "delimiter" => {
                "a TSV file is delimited by tabs; drop `delimiter`, or write a .csv".to_owned()
            }
            Some(f) if key == "append" => format!(
                "only a plain CSV or TSV file is appended to, not this {}{} file",
                f.format,
                if f.gzip { ".gz" } else { "" }
            ),
            Some(f) => format!(
                "`{key}` is an option of CSV and TSV files, and this query writes {}: remove it",
                f.format
            ),
        };
        problems.push(query.problem(None, Some(key.to_owned()), message));
    }
    format.unwrap_or_default()
}
