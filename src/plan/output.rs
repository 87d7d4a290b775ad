//! Where a query's file goes, resolved once in planning: its [`Output`] (a target — a file
//! under the output directory, a Cloud Storage object, standard output — its format and
//! gzip, and what that format can do), its name rendered, and no two queries writing one file
//! (or replacing one sheet tab). Nothing else tells a target from its name or asks a format
//! by name: they ask the `Output`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::QueryPlan;
use crate::gcs::ObjectUrl;
use crate::query::{Abilities, OutputFormat, Problem, Query, RecordText};
use crate::template::Templates;

/// The standard-output target's name (`--output -`).
pub const STDOUT: &str = "-";

/// Where an output's bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local file (under the output directory).
    File(PathBuf),
    /// A Cloud Storage object (under a `gs://` output directory, or named by the query).
    Object(ObjectUrl),
    /// Standard output (`--output -`).
    Stdout,
}

/// One query's file output, resolved: its name as the query gives it (rendered), where it
/// goes, and its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// As the query names it (relative to the output directory, a `gs://` URL, or `-`).
    name: PathBuf,
    /// The target as a path: the file, the object's URL, or `-` (for messages, checkpoints
    /// and the summary).
    path: PathBuf,
    target: Target,
    /// Why a `gs://` name is not an object (the pre-flight says it; the target is then the
    /// path as written).
    bad_object: Option<String>,
    pub format: OutputFormat,
}

impl Output {
    /// The output `name` of a query under `out_dir` (a directory, or a `gs://` prefix), unless
    /// it is standard output or an object URL of its own, written as `format`.
    pub fn new(name: PathBuf, format: OutputFormat, out_dir: &Path) -> Output {
        let text = name.to_string_lossy();
        let stdout = name.file_name().is_some_and(|n| n == STDOUT);
        let dir = out_dir.to_string_lossy();
        let path = if stdout || crate::gcs::is_gs(&text) {
            name.clone()
        } else if crate::gcs::is_gs(&dir) {
            PathBuf::from(format!(
                "{}/{}",
                dir.trim_end_matches('/'),
                text.trim_start_matches("./")
            ))
        } else {
            out_dir.join(&name)
        };
        let mut bad_object = None;
        let target = match path.to_str().filter(|p| crate::gcs::is_gs(p)) {
            _ if stdout => Target::Stdout,
            Some(url) => match ObjectUrl::parse(url) {
                Ok(object) => Target::Object(object),
                Err(why) => {
                    bad_object = Some(why);
                    Target::File(path.clone())
                }
            },
            None => Target::File(path.clone()),
        };
        Output {
            name,
            path,
            target,
            bad_object,
            format,
        }
    }

    /// Standard output, written as `format` (`--output -`).
    pub fn stdout(format: OutputFormat) -> Output {
        Output::new(STDOUT.into(), format, Path::new(""))
    }

    /// This output under another name (`name` given the current one, e.g. a shard's part),
    /// under `out_dir`.
    pub fn renamed(&self, out_dir: &Path, name: impl FnOnce(&Path) -> PathBuf) -> Output {
        Output::new(name(&self.name), self.format, out_dir)
    }

    /// Its name as the query gives it (rendered).
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Where it goes, as a path: the file, the object's URL, or `-`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn is_stdout(&self) -> bool {
        self.target == Target::Stdout
    }

    /// The Cloud Storage object it is, if it is one.
    pub fn object(&self) -> Option<&ObjectUrl> {
        match &self.target {
            Target::Object(object) => Some(object),
            _ => None,
        }
    }

    /// Why its `gs://` name names no object, when it does not.
    pub fn bad_object(&self) -> Option<&str> {
        self.bad_object.as_deref()
    }

    /// What its format can do.
    pub fn can(&self) -> Abilities {
        self.format.format.can()
    }

    /// It is checkpointed and taken up mid-way: a plain file (or object) of a resumable
    /// format.
    pub fn resumable(&self) -> bool {
        self.can().resumable && !self.format.gzip && !self.is_stdout()
    }

    /// It is appended to when a query asks (`append`): a plain file of an appendable format.
    pub fn appendable(&self) -> bool {
        self.can().appendable && !self.format.gzip && !self.is_stdout()
    }

    /// Its rows need their record's JSON text (`json_columns`: whether some column holds
    /// the record's JSON, asked only of a format that reads those from the record).
    pub fn needs_record_text(&self, json_columns: impl FnOnce() -> bool) -> bool {
        match self.can().record_text {
            RecordText::Never => false,
            RecordText::Always => true,
            RecordText::JsonColumns => json_columns(),
        }
    }
}

/// The [`Output`] of a rendered output name under `out_dir`, written as `format`.
pub(super) fn resolve(
    name: Option<PathBuf>,
    format: OutputFormat,
    out_dir: &Path,
) -> Option<Output> {
    name.map(|name| Output::new(name, format, out_dir))
}

/// Two queries writing one file would lose one export: a problem for the later one.
pub fn shared_outputs(plans: &[QueryPlan]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let Some(output) = &plan.output else { continue };
        // (Two queries of one name are reported as such already.)
        let first = plans[..i].iter().find(|other| {
            other.output.as_ref().map(Output::name) == Some(output.name())
                && other.query.name != plan.query.name
        });
        if let Some(first) = first {
            problems.push(plan.query.problem(
                None,
                Some("output".to_owned()),
                format!(
                    "{:?} is also the output of {}; give one of them another `output`",
                    output.name().display().to_string(),
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
            Some(f) if f.format.can().delimiter == Some(b'\t') && key == "delimiter" => {
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
