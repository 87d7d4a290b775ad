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

/// The largest query file read (a query is a few hundred bytes; this is a wrong file).
pub const MAX_QUERY_FILE: u64 = 4 << 20;

/// Reads a query file: a regular file (a symlink to one is fine) of at most
/// [`MAX_QUERY_FILE`] bytes, so that `/dev/zero` or a huge file is refused, not read.
fn read_query_file(file: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(file).map_err(|err| format!("cannot read: {err}"))?;
    if !meta.is_file() {
        return Err("is not a regular file; name a .toml query file".to_owned());
    }
    let too_big = || {
        format!(
            "is larger than {} MiB; a query file is a few lines of TOML",
            MAX_QUERY_FILE >> 20
        )
    };
    if meta.len() > MAX_QUERY_FILE {
        return Err(too_big());
    }
    let opened = std::fs::File::open(file).map_err(|err| format!("cannot read: {err}"))?;
    let mut bytes = Vec::new();
    opened
        .take(MAX_QUERY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read: {err}"))?;
    if bytes.len() as u64 > MAX_QUERY_FILE {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text; save it as UTF-8".to_owned())
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
        match read_query_file(file) {
            Ok(text) => match parse(file, &text) {
                Ok(query) => queries.push(query),
                Err(found) => problems.extend(found),
            },
            Err(message) => problems.push(file_problem(file, message)),
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
            let hint = crate::util::nearest(name, queries.iter().map(|q| q.name.as_str()));
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
    problems.extend(fan_out_problems(&queries));
    set_ancestors(&mut queries);
    if !only.is_empty() {
        // A fan-out query needs its parent (and the parent's parent) to run too.
        let mut wanted: Vec<&str> = only.iter().map(String::as_str).collect();
        let mut i = 0;
        while i < wanted.len() {
            let parent = queries
                .iter()
                .find(|q| q.name == wanted[i])
                .and_then(|q| q.for_each.as_ref())
                .map(|p| p.value.as_str());
            if let Some(parent) = parent.filter(|p| !wanted.contains(p)) {
                wanted.push(parent);
            }
            i += 1;
        }
        let wanted: Vec<String> = wanted.into_iter().map(str::to_owned).collect();
        queries.retain(|q| wanted.contains(&q.name));
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

/// Notes in each fan-out query the queries above its parent (its parent's parent first), as
/// far as they are named and do not come around (a cycle is a problem of its own).
fn set_ancestors(queries: &mut [Query]) {
    let parent_of = |queries: &[Query], name: &str| {
        queries
            .iter()
            .find(|q| q.name == name)
            .and_then(|q| q.for_each.as_ref())
            .map(|p| p.value.clone())
    };
    for i in 0..queries.len() {
        let Some(parent) = queries[i].for_each.as_ref().map(|p| p.value.clone()) else {
            continue;
        };
        let mut above: Vec<String> = Vec::new();
        let mut next = parent_of(queries, &parent);
        while let Some(name) = next {
            if name == queries[i].name || name == parent || above.contains(&name) {
                break;
            }
            next = parent_of(queries, &name);
            above.push(name);
        }
        queries[i].ancestors = above;
    }
}

/// `for_each` must name another query, and following parents must never come back around.
fn fan_out_problems(queries: &[Query]) -> Vec<Problem> {
    let parent_of = |name: &str| {
        queries
            .iter()
            .find(|q| q.name == name)
            .and_then(|q| q.for_each.as_ref())
            .map(|p| p.value.as_str())
    };
    let mut problems = Vec::new();
    for query in queries {
        let Some(parent) = &query.for_each else {
            continue;
        };
        if !queries.iter().any(|q| q.name == parent.value) {
            let hint = crate::util::nearest(&parent.value, queries.iter().map(|q| q.name.as_str()));
            let hint = match hint.first() {
                Some(h) => format!("; did you mean {h:?}?"),
                None => String::new(),
            };
            problems.push(query.problem(
                parent.line,
                Some("for_each".to_owned()),
                format!("no query is named {:?}{hint}", parent.value),
            ));
            continue;
        }
        let mut chain = vec![query.name.as_str()];
        let mut next = Some(parent.value.as_str());
        while let Some(name) = next {
            if name == query.name {
                chain.push(name);
                problems.push(query.problem(
                    parent.line,
                    Some("for_each".to_owned()),
                    format!("a fan-out cycle: {}", chain.join(" → ")),
                ));
                break;
            }
            if chain.contains(&name) {
                break; // a cycle further up; reported at its own queries
            }
            chain.push(name);
            next = parent_of(name);
        }
    }
    problems
}
