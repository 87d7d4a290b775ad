//! Finding query files (files and directories given on the command line) and loading them all,
//! collecting every problem before anything runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{parse, Problem, Query};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no *.toml query files in this directory", .0.display())]
    EmptyDir(PathBuf),
}

/// The query files named by `paths`: files as given, directories as their `*.toml`, sorted.
pub fn query_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|_| LoadError::NotFound(path.clone()))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let io = |source| LoadError::Io {
            path: path.clone(),
            source,
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry_path = entry.map_err(io)?.path();
            if entry_path.extension().is_some_and(|e| e == "toml") && entry_path.is_file() {
                found.push(entry_path);
            }
        }
        if found.is_empty() {
            return Err(LoadError::EmptyDir(path.clone()));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Reads and parses every file; then checks that names are unique and that `only` names exist.
/// Returns the queries that parsed, selected by `only` (all when it is empty), and every
/// problem found, so that the caller can go on checking the good ones.
pub fn load_queries(files: &[PathBuf], only: &[String]) -> (Vec<Query>, Vec<Problem>) {
    let mut queries = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(text) => match parse(file, &text) {
                Ok(query) => queries.push(query),
                Err(found) => problems.extend(found),
            },
            Err(err) => problems.push(file_problem(file, format!("cannot read: {err}"))),
        }
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for query in &queries {
        if let Some(first) = seen.insert(&query.name, &query.file) {
            problems.push(query.problem(
                None,
                Some("name".to_owned()),
                format!(
                    "the query name {:?} is also used by {}; give one of them another `name`",
                    query.name,
                    first.display()
                ),
            ));
        }
    }
    for name in only {
        if !queries.iter().any(|q| &q.name == name) && problems.is_empty() {
            let hint = crate::discovery::nearest(name, queries.iter().map(|q| q.name.as_str()));
            let hint = match hint.first() {
                Some(h) => format!("; did you mean {h:?}?"),
                None => String::new(),
            };
            problems.push(Problem {
                file: PathBuf::from("--only"),
                line: None,
                key: None,
                message: format!("no query is named {name:?}{hint}"),
            });
        }
    }
    if !only.is_empty() {
        queries.retain(|q| only.contains(&q.name));
    }
    (queries, problems)
}

fn file_problem(file: &Path, message: String) -> Problem {
    Problem {
        file: file.to_owned(),
        line: None,
        key: None,
        message,
    }
}
