//! Corpus conformance: every Discovery document Google publishes (the copy shipped by
//! google-api-python-client; `scripts/fetch-corpus.sh` puts it in target/discovery-corpus/)
//! loads, every method describes, its pagination is classified, its default columns derive, and
//! a synthetic query for every paginated method validates.
//!
//! The corpus is fetched from PyPI when absent (a fresh clone); the test is skipped, with a
//! message on the terminal, only when that fails (no python3 with pip, no registry).

use std::path::PathBuf;
use std::sync::Arc;

use gscrape::discovery::{Document, Location, Method};
use gscrape::plan::{
    default_columns, infer_records, method_pagination, plan, record_schema, RecordsGuess,
};
use gscrape::template::Templates;

fn corpus_dir() -> PathBuf {
    std::env::var_os("GSCRAPE_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/discovery-corpus")
        })
}

/// Fetches the corpus from PyPI into target/ (`scripts/fetch-corpus.sh`), so that the README's
/// one test command runs this test on a fresh machine too; a failure leaves it absent.
fn fetch_corpus() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-corpus.sh");
    let fetched = std::process::Command::new("bash")
        .arg(&script)
        .stdout(std::process::Stdio::null())
        .status();
    if !fetched.is_ok_and(|s| s.success()) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "corpus: {} failed", script.display());
    }
}

/// True when a method pages by the marks Discovery shows: a continuation token it can both
/// send and receive (`pageToken` → `nextPageToken` and the like), or an offset and a page size.
/// (A `watch` method takes a `pageToken` but answers a channel: it does not page.)
fn looks_paginated(doc: &Document, method: &Method) -> bool {
    let response = method
        .response
        .as_ref()
        .and_then(|r| doc.schema(&r.reference));
    let request = method
        .request
        .as_ref()
        .and_then(|r| doc.schema(&r.reference));
    let sends = |name: &str| {
        method.parameters.contains_key(name)
            || request.is_some_and(|s| s.properties.contains_key(name))
    };
    let answers = |name: &str| response.is_some_and(|s| s.properties.contains_key(name));
    let nested = |outer: &str, inner: &str| {
        response
            .and_then(|s| s.properties.get(outer))
            .map(|s| gscrape::discovery::schema::resolve(doc, s))
            .is_some_and(|s| s.properties.contains_key(inner))
    };
    (sends("pageToken") && (answers("nextPageToken") || answers("pageToken")))
        || (sends("token") && nested("tokenPagination", "nextPageToken"))
        || (sends("continue") && nested("metadata", "continue"))
        || [
            ("startIndex", "maxResults"),
            ("start-index", "max-results"),
            ("start", "num"),
            ("offset", "limit"),
            ("startRow", "rowLimit"),
        ]
        .iter()
        .any(|(offset, limit)| sends(offset) && sends(limit))
}

/// A `gscrape new` query with a value of its form for each placeholder: the form its
/// comment names (a pattern's example, a format's example, a number), else "x".
fn fill_placeholders(scaffold: &str) -> String {
    let mut out = String::new();
    for line in scaffold.lines() {
        out.push_str(&fill_line(line));
        out.push('\n');
    }
    out
}

fn fill_line(line: &str) -> String {
    use gscrape::discovery::value::{format_example, pattern_example};
    let placeholder = gscrape::query::PLACEHOLDER;
    if line.starts_with('#') || !line.contains(placeholder) {
        return line.to_owned();
    }
    let (value, comment) = line.split_once("    # ").unwrap_or((line, ""));
    let about = comment.trim_start_matches("required, ");
    let kind = about.split([' ', ',', ':']).next().unwrap_or("");
    let format = about
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(" ("))
        .and_then(|rest| rest.split_once(')'))
        .map(|(format, _)| format);
    let pattern = about
        .split_once(", pattern ")
        .map(|(_, rest)| rest.split(": ").next().unwrap_or(rest));
    let filled = match (
        pattern.and_then(pattern_example),
        format.and_then(format_example),
    ) {
        _ if matches!(kind, "integer" | "number") => "1".to_owned(),
        (Some(example), _) => format!("{example:?}"),
        (None, Some(example)) => format!("{example:?}"),
        _ => "\"x\"".to_owned(),
    };
    // Every quoted string holding the placeholder.
    let mut text = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('"') {
        let Some(len) = rest[start + 1..].find('"') else {
            break;
        };
        let quoted = &rest[start..start + len + 2];
        text.push_str(&rest[..start]);
        match quoted.contains(placeholder) {
            true => text.push_str(&filled),
            false => text.push_str(quoted),
        }
        rest = &rest[start + len + 2..];
    }
    text.push_str(rest);
    match comment.is_empty() {
        true => text,
        false => format!("{text}    # {comment}"),
    }
}

/// A query file calling `method` with made-up values for its required parameters.
fn synthetic_query(doc: &Document, method: &Method) -> String {
    // A method that lists by POST without a read-only scope counts as a write.
    let allow = match method.access() {
        gscrape::discovery::Access::Read => "",
        gscrape::discovery::Access::Write(_) => "allow_writes = true\n",
    };
    let mut text = format!(
        "api = \"{}\"\nversion = \"{}\"\nmethod = \"{}\"\n{allow}[params]\n",
        doc.name, doc.version, method.id
    );
    for (name, p) in &method.parameters {
        if !p.required {
            continue;
        }
        let example = (p.pattern.as_deref())
            .and_then(gscrape::discovery::value::pattern_example)
            .or_else(|| {
                (p.format.as_deref().filter(|_| p.kind == "string"))
                    .and_then(gscrape::discovery::value::format_example)
                    .map(str::to_owned)
            });
        let value = match (p.kind.as_str(), p.enum_values.first()) {
            (_, Some(first)) => format!("{first:?}"),
            _ if example.is_some() => format!("{:?}", example.unwrap_or_default()),
            ("integer", _) | ("number", _) => "1".to_owned(),
            ("boolean", _) => "true".to_owned(),
            _ if p.location == Location::Path => "\"p1\"".to_owned(),
            _ => "\"x\"".to_owned(),
        };
        text.push_str(&format!("{name:?} = {value}\n"));
    }
    text
}

#[derive(Default)]
struct Tally {
    documents: usize,
    loaded: usize,
    methods: usize,
    described: usize,
    default_columns: usize,
    widest: (usize, String),
    paginated: usize,
    detected: usize,
    validated: usize,
    not_detected: Vec<String>,
    not_validated: Vec<String>,
    /// Methods whose `gscrape new` query validates as printed, and those whose does not.
    scaffolded: usize,
    not_scaffolded: Vec<String>,
}

#[test]
fn every_document_and_method_of_the_corpus() {
    let dir = corpus_dir();
    if !dir.join(".complete").exists() && std::env::var_os("GSCRAPE_CORPUS_DIR").is_none() {
        fetch_corpus();
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // To the terminal itself: the test harness shows what `eprintln!` says only of a
        // failing test, and a skip must not pass unnoticed.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "corpus test SKIPPED: no Discovery corpus in {} and scripts/fetch-corpus.sh could \
             not fetch it (it needs python3 with pip, and PyPI)",
            dir.display()
        );
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("index.json"))
        .collect();
    files.sort();
    let templates = Templates::new().unwrap();
    let mut t = Tally::default();
    let mut load_errors = Vec::new();
    for file in &files {
        t.documents += 1;
        let text = std::fs::read_to_string(file).unwrap();
        let doc = match Document::from_json(&text) {
            Ok(doc) => Arc::new(doc),
            Err(err) => {
                load_errors.push(format!("{}: {err}", file.display()));
                continue;
            }
        };
        t.loaded += 1;
        for method in doc.methods() {
            t.methods += 1;
            let details = gscrape::describe::method_details(&doc, method);
            if details.contains("Pagination: ") {
                t.described += 1;
            }
            let pagination = method_pagination(&doc, method);
            let records = match infer_records(&doc, method, &pagination) {
                RecordsGuess::Array(path) => Some(path),
                _ => None,
            };
            if let Some(record) = record_schema(&doc, method, records.as_ref()) {
                let columns = default_columns(&doc, &record, None).unwrap();
                if columns.len() > t.widest.0 {
                    t.widest = (columns.len(), method.id.clone());
                }
            }
            t.default_columns += 1;
            // `gscrape new` prints a query that validates once its placeholders are filled in
            // (as printed, `REPLACE_ME` is refused).
            let scaffold = gscrape::scaffold::query_file(&doc, method, Some("q"));
            let scaffold = fill_placeholders(&scaffold);
            let valid = gscrape::query::parse(std::path::Path::new("q.toml"), &scaffold)
                .map_err(|p| p[0].message.clone())
                .and_then(|query| {
                    plan(&query, doc.clone(), &templates).map_err(|p| p[0].message.clone())
                });
            match valid {
                Ok(_) => t.scaffolded += 1,
                Err(message) => t.not_scaffolded.push(format!("{}: {message}", method.id)),
            }
            if !looks_paginated(&doc, method) {
                continue;
            }
            t.paginated += 1;
            if !pagination.is_paginated() {
                t.not_detected.push(method.id.clone());
                continue;
            }
            t.detected += 1;
            let query_text = synthetic_query(&doc, method);
            let query = gscrape::query::parse(std::path::Path::new("synthetic.toml"), &query_text)
                .unwrap_or_else(|p| panic!("{}: {p:?}\n{query_text}", method.id));
            match plan(&query, doc.clone(), &templates) {
                Ok(_) => t.validated += 1,
                Err(problems) => t
                    .not_validated
                    .push(format!("{}: {}", method.id, problems[0].message)),
            }
        }
    }
    let percent = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    eprintln!(
        "corpus: {} documents, {} loaded ({:.1} %); {} methods, {} described ({:.1} %), default columns for {}; \
         widest default record {} columns ({}); {} paginated methods, {} paged with no [paginate] table ({:.1} %), \
         {} synthetic queries validated ({:.1} %)",
        t.documents,
        t.loaded,
        percent(t.loaded, t.documents),
        t.methods,
        t.described,
        percent(t.described, t.methods),
        t.default_columns,
        t.widest.0,
        t.widest.1,
        t.paginated,
        t.detected,
        percent(t.detected, t.paginated),
        t.validated,
        percent(t.validated, t.detected),
    );
    eprintln!(
        "not detected (first 20): {:?}",
        &t.not_detected[..t.not_detected.len().min(20)]
    );
    eprintln!(
        "not validated (first 20): {:#?}",
        &t.not_validated[..t.not_validated.len().min(20)]
    );
    eprintln!(
        "`gscrape new` queries: {} of {} validate; not (first 20): {:#?}",
        t.scaffolded,
        t.methods,
        &t.not_scaffolded[..t.not_scaffolded.len().min(20)]
    );
    assert!(load_errors.is_empty(), "{load_errors:#?}");
    assert_eq!(
        t.scaffolded, t.methods,
        "every method's `gscrape new` query validates once its placeholders are filled in"
    );
    assert!(
        t.documents > 500,
        "the corpus looks incomplete: {} documents",
        t.documents
    );
    assert_eq!(t.described, t.methods, "every method describes");
    assert!(
        percent(t.detected, t.paginated) >= 99.0,
        "paginated methods detected"
    );
    assert!(
        percent(t.validated, t.detected) >= 99.0,
        "synthetic queries validate"
    );
}
