//! Tables that describe themselves: with `--describe-tables` (or `describe-tables = true` in
//! `gscrape.toml`), each CSV or TSV file a run writes into a local output directory is listed in
//! that directory's `datapackage.json`, a Frictionless Data Package: its Table Schema (each
//! column's name, type — integer, number, boolean, datetime, date, string — and description
//! from Discovery; the primary key a `merge_key` names; the missing-value text) and its dialect
//! (delimiter, header, BOM), so pandas, R and the `frictionless` tools read the file typed.
//! Resources of other files already listed are kept while their files are there.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::plan::QueryPlan;
use crate::query::{CsvSettings, Format};
use crate::records::schema::ColumnType;

/// The descriptor's name in the output directory.
pub const DESCRIPTOR: &str = "datapackage.json";

/// One written table: its plan, its path under the output directory, its bytes and SHA-256.
pub struct Table<'a> {
    pub plan: &'a QueryPlan,
    pub path: &'a Path,
    pub bytes: u64,
    pub sha256: &'a str,
}

/// Adds `tables` to the descriptor in `out_dir` (replacing their earlier resources), with the
/// run's CSV options `csv` under each query's own; the earlier resources of the other files
/// the run `rewrote` are dropped (their hash would be stale). Returns the descriptor's path.
pub fn describe(
    out_dir: &Path,
    tables: &[Table<'_>],
    rewrote: &[&Path],
    csv: &CsvSettings,
) -> std::io::Result<std::path::PathBuf> {
    let path = out_dir.join(DESCRIPTOR);
    let mut resources: Vec<Value> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|package| package["resources"].as_array().cloned())
        .unwrap_or_default();
    let relative = |table: &Table<'_>| {
        table
            .path
            .strip_prefix(out_dir)
            .unwrap_or(table.path)
            .to_string_lossy()
            .replace('\\', "/")
    };
    // Earlier resources: kept while their file is there and this run did not rewrite it.
    resources.retain(|r| {
        let Some(p) = r["path"].as_str() else {
            return false;
        };
        let path = out_dir.join(p);
        path.is_file() && !rewrote.iter().any(|w| *w == path)
    });
    for table in tables {
        resources.push(resource(table, &relative(table), csv));
    }
    resources.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    let package = json!({
        "profile": "tabular-data-package",
        "name": "gscrape-output",
        "resources": resources,
    });
    let mut text = serde_json::to_string_pretty(&package).expect("a descriptor serializes");
    text.push('\n');
    crate::util::write_atomically_with_mode(&path, text.as_bytes(), 0o644)?;
    Ok(path)
}

/// True when `plan`'s output is a table a descriptor can describe: a local CSV or TSV file,
/// not compressed.
pub fn describable(plan: &QueryPlan) -> bool {
    plan.output.as_ref().is_some_and(|o| {
        !o.is_stdout()
            && o.object().is_none()
            && !o.format.gzip
            && matches!(o.format.format, Format::Csv | Format::Tsv)
    })
}

fn resource(table: &Table<'_>, path: &str, run_csv: &CsvSettings) -> Value {
    let plan = table.plan;
    let csv = plan.query.csv.or(run_csv);
    let tsv = plan
        .output
        .as_ref()
        .is_some_and(|o| o.format.format == Format::Tsv);
    let delimiter = match (csv.delimiter, tsv) {
        (Some(d), _) => char::from(d).to_string(),
        (None, true) => "\t".to_owned(),
        (None, false) => ",".to_owned(),
    };
    let schema = plan.column_schema();
    let record = plan.record_schema();
    let fields: Vec<Value> = (plan.columns.iter().enumerate())
        .map(|(i, column)| {
            let mut field = Map::new();
            field.insert("name".into(), json!(column.header));
            let (kind, format) = table_type(schema.kind(i));
            field.insert("type".into(), json!(kind));
            if let Some(format) = format {
                field.insert("format".into(), json!(format));
            }
            if let Some(text) = record
                .as_ref()
                .and_then(|r| description(plan, r, &column.header))
            {
                field.insert("description".into(), json!(text));
            }
            Value::Object(field)
        })
        .collect();
    let mut table_schema = Map::new();
    table_schema.insert("fields".into(), Value::Array(fields));
    table_schema.insert(
        "missingValues".into(),
        json!([csv.null.clone().unwrap_or_default()]),
    );
    if let Some(merge) = &plan.query.merge {
        table_schema.insert("primaryKey".into(), json!(merge.value.key));
    }
    let bom = csv.bom == Some(true);
    json!({
        "name": resource_name(&plan.query.name),
        "path": path,
        "profile": "tabular-data-resource",
        "format": if tsv { "tsv" } else { "csv" },
        "mediatype": if tsv { "text/tab-separated-values" } else { "text/csv" },
        "encoding": if bom { "utf-8-sig" } else { "utf-8" },
        "bytes": table.bytes,
        "hash": format!("sha256:{}", table.sha256),
        "dialect": {
            "delimiter": delimiter,
            "header": csv.header != Some(false),
            "lineTerminator": "\r\n",
            "quoteChar": "\"",
            "doubleQuote": true,
        },
        "schema": Value::Object(table_schema),
    })
}

/// The Table Schema type of a column, and its format. Dates and date-times are read with
/// `any` (Google writes `2024-06-30T09:00:00.000Z`, GA4 `20240630`); a GA4 `dateHour`, a JSON
/// value and a path through an array (`;`-joined) are strings.
fn table_type(kind: ColumnType) -> (&'static str, Option<&'static str>) {
    match kind {
        ColumnType::Integer | ColumnType::Unsigned => ("integer", None),
        ColumnType::Number => ("number", None),
        ColumnType::Boolean => ("boolean", None),
        ColumnType::DateTime => ("datetime", Some("any")),
        ColumnType::Date => ("date", Some("any")),
        ColumnType::Text | ColumnType::LocalDateTime | ColumnType::Json => ("string", None),
    }
}

/// The Discovery description of the field a column's header names (a dotted path), if any.
fn description(
    plan: &QueryPlan,
    record: &crate::discovery::Schema,
    header: &str,
) -> Option<String> {
    let keys: Vec<String> = header.split('.').map(str::to_owned).collect();
    crate::discovery::schema::schema_at(&plan.doc, record, &keys)
        .map(|s| s.description.trim().to_owned())
        .filter(|d| !d.is_empty())
}

/// A resource name as Frictionless wants it: lowercase letters, digits, `-`, `_`, `.`.
fn resource_name(query: &str) -> String {
    let name: String = query
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    match name.is_empty() {
        true => "table".to_owned(),
        false => name,
    }
}
