//! `[bigquery]`, checked: the table a query's rows are loaded into (`project.dataset.table`,
//! each part by BigQuery's naming rules, so that a typo is exit 2 before any request rather
//! than a failed job), how (`mode`), and where the job runs (`location`, `project`).

use std::fmt;

use toml::Spanned;

use super::{wire, Located, Problem, Source};
pub use wire::LoadMode;

/// `[bigquery]`: the destination table and the load job's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigQueryTarget {
    pub table: TableRef,
    pub mode: LoadMode,
    /// The job's location (`US`, `EU`, `europe-west1`); `None`: the dataset's, as BigQuery
    /// picks it.
    pub location: Option<String>,
    /// The project that runs (and pays for) the load job: `project`, else the table's.
    pub project: String,
}

/// A table as BigQuery names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub project: String,
    pub dataset: String,
    pub table: String,
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.project, self.dataset, self.table)
    }
}

impl TableRef {
    /// `project.dataset.table`. The project may be domain-scoped (`example.com:my-project`),
    /// so the dataset and the table are the last two parts.
    pub fn parse(text: &str) -> Result<TableRef, String> {
        let mut parts = text.rsplitn(3, '.');
        let (Some(table), Some(dataset), Some(project)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{text:?} is not a table: name it `project.dataset.table` (e.g. \"my-project.exports.drive_files\")"
            ));
        };
        check_project(project).map_err(|why| format!("{text:?}: the project {why}"))?;
        check_dataset(dataset).map_err(|why| format!("{text:?}: the dataset {why}"))?;
        check_table(table).map_err(|why| format!("{text:?}: the table {why}"))?;
        Ok(TableRef {
            project: project.to_owned(),
            dataset: dataset.to_owned(),
            table: table.to_owned(),
        })
    }
}

/// A Google Cloud project id: 6 to 30 lowercase letters, digits and hyphens, starting with a
/// letter and not ending with a hyphen; optionally after a domain (`example.com:`).
pub fn check_project(text: &str) -> Result<(), String> {
    let id = match text.rsplit_once(':') {
        Some((domain, id)) => {
            let domain_ok = !domain.is_empty()
                && domain
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c));
            if !domain_ok {
                return Err(format!(
                    "{text:?} has a domain prefix that is not a domain name"
                ));
            }
            id
        }
        None => text,
    };
    let ok = (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{text:?} is not a project id: 6 to 30 lowercase letters, digits and hyphens, starting with a letter"
        )),
    }
}

/// A dataset id: 1 to 1,024 letters, digits and underscores.
fn check_dataset(text: &str) -> Result<(), String> {
    let ok = (1..=1024).contains(&text.len())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{text:?} is not a dataset id: 1 to 1,024 letters, digits and underscores"
        )),
    }
}

/// A table id: up to 1,024 bytes of letters, numbers, underscores, dashes and spaces (no
/// partition decorator or wildcard).
fn check_table(text: &str) -> Result<(), String> {
    let ok = (1..=1024).contains(&text.len())
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{text:?} is not a table id: up to 1,024 bytes of letters, numbers, underscores, dashes and spaces"
        )),
    }
}

/// A location: `US`, `EU` or a region (`europe-west1`).
fn check_location(text: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&text.len())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{text:?} is not a BigQuery location: give `US`, `EU` or a region such as \"europe-west1\""
        )),
    }
}

/// `[bigquery]`: each problem at its own key.
pub(super) fn check(
    table: Option<Spanned<wire::BigQueryTable>>,
    merging: bool,
    src: &Source,
) -> Result<Option<Located<BigQueryTarget>>, Vec<Problem>> {
    let Some(table) = table else {
        return Ok(None);
    };
    let Located { value: raw, line } = src.located(table);
    let mut problems = Vec::new();
    let at = |span: std::ops::Range<usize>| src.at(span).or(line);
    let parsed = TableRef::parse(raw.table.get_ref())
        .map_err(|message| {
            problems.push(src.problem(at(raw.table.span()), "bigquery.table", message))
        })
        .ok();
    if let Some(location) = &raw.location {
        if let Err(message) = check_location(location.get_ref()) {
            problems.push(src.problem(at(location.span()), "bigquery.location", message));
        }
    }
    if let Some(project) = &raw.project {
        if let Err(why) = check_project(project.get_ref()) {
            let message = format!("the project that runs the load job: {why}");
            problems.push(src.problem(at(project.span()), "bigquery.project", message));
        }
    }
    let mode = match (&raw.mode, merging) {
        (None, true) => LoadMode::Merge,
        (None, false) => LoadMode::Replace,
        (Some(mode), _) => *mode.get_ref(),
    };
    let mode_line = raw.mode.as_ref().and_then(|m| at(m.span()));
    match (mode, merging) {
        (LoadMode::Merge, false) => problems.push(src.problem(
            mode_line,
            "bigquery.mode",
            "\"merge\" needs `merge_key`, the columns that identify a row: add              `merge_key = [...]` above the tables",
        )),
        (LoadMode::Replace | LoadMode::Append, true) => problems.push(src.problem(
            mode_line,
            "bigquery.mode",
            "with `merge_key` the table is merged (a staging table and one MERGE): remove              `mode`, or set `mode = \"merge\"`",
        )),
        _ => {}
    }
    let Some(table) = parsed.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    let value = BigQueryTarget {
        project: raw
            .project
            .map_or_else(|| table.project.clone(), Spanned::into_inner),
        location: raw.location.map(Spanned::into_inner),
        mode,
        table,
    };
    Ok(Some(Located { value, line }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_three_parts_named_as_bigquery_names_them() {
        let t = TableRef::parse("my-project.exports.drive_files").unwrap();
        assert_eq!(
            (t.project.as_str(), t.dataset.as_str(), t.table.as_str()),
            ("my-project", "exports", "drive_files")
        );
        assert_eq!(t.to_string(), "my-project.exports.drive_files");
        let scoped = TableRef::parse("example.com:my-project.d.t").unwrap();
        assert_eq!(scoped.project, "example.com:my-project");
        assert!(TableRef::parse("Täble 1").is_err());
        for bad in [
            "exports.drive_files",
            "My-Project.d.t",
            "p.d.t",
            "my-project.ex-ports.t",
            "my-project.d.t$20240101",
            "my-project.d.t*",
            "my-project..t",
            "my-project.d.",
        ] {
            assert!(TableRef::parse(bad).is_err(), "{bad}");
        }
        assert!(TableRef::parse("my-project.d.Tab le-1_ü").is_ok());
    }
}
