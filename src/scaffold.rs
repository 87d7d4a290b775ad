//! `gscrape new`: a commented query file for one method, to edit rather than to write from the
//! Discovery document by hand. Required parameters get the placeholder `REPLACE_ME` (or an
//! enum's first value), which `validate` and `run` refuse until it is replaced; everything
//! else is a comment. A method that writes gets `allow_writes = true` (asked for with
//! `--allow-writes`).

use std::fmt::Write;

use crate::discovery::{Document, Method, Parameter};
use crate::plan::{
    default_columns, first_sentence, infer_records, left_out_columns, method_pagination,
    record_schema, RecordsGuess,
};

/// Default columns listed in the comment; a wide record says how many more there are.
const SHOWN_COLUMNS: usize = 40;

use crate::query::PLACEHOLDER;

/// The query file of `method`, named `name` when given.
pub fn query_file(doc: &Document, method: &Method, name: Option<&str>) -> String {
    let mut out = String::new();
    for line in wrap(&method.description, 96) {
        let _ = writeln!(out, "# {line}");
    }
    let file = name.unwrap_or("this_query");
    let _ = writeln!(out, "# Run: gscrape run queries/{file}.toml");
    let _ = writeln!(out, "api = {:?}", doc.name);
    let _ = writeln!(out, "version = {:?}", doc.version);
    let _ = writeln!(out, "method = {:?}", method.id);
    if let Some(name) = name {
        let _ = writeln!(out, "name = {name:?}");
    }
    if let crate::discovery::Access::Write(why) = method.access() {
        let _ = writeln!(out, "# This method changes data in the account: {why}.");
        let _ = writeln!(out, "allow_writes = true");
    }
    write_records_and_columns(&mut out, doc, method);
    let _ = writeln!(out, "\n[params]");
    let mut names: Vec<&String> = method.parameter_order.iter().collect();
    let mut rest: Vec<&String> = method
        .parameters
        .keys()
        .filter(|n| !method.parameter_order.contains(n))
        .collect();
    rest.sort();
    names.extend(rest);
    for name in names {
        let Some(parameter) = method.parameters.get(name) else {
            continue;
        };
        let about = about(parameter);
        if let Some(value) = special_value(parameter) {
            let value = match parameter.repeated {
                true => format!("[{value:?}]"),
                false => format!("{value:?}"),
            };
            let required = if parameter.required { "required, " } else { "" };
            let _ = writeln!(out, "{name} = {value}    # {required}{about}");
        } else if parameter.required {
            let _ = writeln!(
                out,
                "{name} = {}    # required, {about}",
                placeholder(parameter)
            );
        } else {
            let _ = writeln!(out, "# {name} = {}    # {about}", example(parameter));
        }
    }
    if let Some(body) = &method.request {
        write_body(&mut out, doc, method, &body.reference);
    }
    out
}

/// Bodies that run as written, for the report methods whose body is the whole question.
fn known_body(method_id: &str) -> Option<&'static str> {
    Some(match method_id {
        "analyticsdata.properties.runReport" => {
            "dimensions = [{ name = \"date\" }]\n\
             metrics = [{ name = \"activeUsers\" }]\n\
             dateRanges = [{ startDate = \"{{ days_ago(28) }}\", endDate = \"{{ today }}\" }]\n"
        }
        "analyticsdata.properties.runRealtimeReport" => {
            "dimensions = [{ name = \"country\" }]\nmetrics = [{ name = \"activeUsers\" }]\n"
        }
        "searchconsole.searchanalytics.query" | "webmasters.searchanalytics.query" => {
            "startDate = \"{{ days_ago(28) }}\"\nendDate = \"{{ today }}\"\ndimensions = [\"date\"]\n"
        }
        _ => return None,
    })
}

/// Fields of the body listed as comments (the rest: `gscrape describe`).
const SHOWN_BODY_FIELDS: usize = 30;

/// `[body]`: a skeleton that runs for a known report, else the required fields as
/// placeholders; every other field of the body's first level as a comment.
fn write_body(out: &mut String, doc: &Document, method: &Method, reference: &str) {
    let fields = crate::describe::body_fields(doc, method);
    let top: Vec<_> = fields.iter().filter(|f| f.depth == 0).collect();
    let schema = doc.schema(reference);
    let property = |name: &str| schema.and_then(|s| s.properties.get(name.trim_end_matches("[]")));
    let known = known_body(&method.id);
    let required: Vec<_> = top.iter().filter(|f| f.required).collect();
    let describe = format!(
        "gscrape describe {} {} {}",
        doc.name, doc.version, method.id
    );
    if known.is_none() && required.is_empty() {
        let _ = writeln!(
            out,
            "\n# [body]    # a {reference} (all its fields: `{describe}`)"
        );
    } else {
        let _ = writeln!(
            out,
            "\n[body]    # a {reference} (all its fields: `{describe}`)"
        );
    }
    let mut written: Vec<String> = Vec::new();
    if let Some(text) = known {
        out.push_str(text);
        written.extend(
            text.lines()
                .filter_map(|l| l.split_once(" ="))
                .map(|(k, _)| k.to_owned()),
        );
    } else {
        for field in &required {
            let name = field.name.trim_end_matches("[]");
            let Some(prop) = property(&field.name) else {
                continue;
            };
            let value = body_placeholder(doc, method, prop, 0);
            let _ = writeln!(
                out,
                "{name} = {value}    # required, {}: {}",
                field.kind, field.about
            );
            written.push(name.to_owned());
        }
    }
    let rest: Vec<_> = top
        .iter()
        .filter(|f| !written.iter().any(|w| w == f.name.trim_end_matches("[]")))
        .collect();
    for field in rest.iter().take(SHOWN_BODY_FIELDS) {
        let name = field.name.trim_end_matches("[]");
        let example = property(&field.name)
            .map(|p| crate::plan::body_example(doc, p))
            .unwrap_or_else(|| "\"...\"".to_owned());
        let about = format!("{}: {}", field.kind, field.about).replace('\n', " ");
        let _ = writeln!(
            out,
            "# {name} = {example}    # {}",
            about.trim_end_matches([' ', ':'])
        );
    }
    if rest.len() > SHOWN_BODY_FIELDS {
        let _ = writeln!(
            out,
            "#   ... and {} more: {describe}",
            rest.len() - SHOWN_BODY_FIELDS
        );
    }
}

/// A required body value: the placeholder for a string (in the form its pattern asks), an
/// object of its own required fields, a list of one such value.
fn body_placeholder(
    doc: &Document,
    method: &Method,
    schema: &crate::discovery::Schema,
    depth: usize,
) -> String {
    use crate::discovery::schema::resolve;
    let resolved = resolve(doc, schema);
    match resolved.kind.as_deref() {
        // Deeper than three levels, an empty list or object (to fill in by hand).
        Some("array") => match (&resolved.items, depth < 3) {
            (Some(items), true) => format!("[{}]", body_placeholder(doc, method, items, depth + 1)),
            _ => "[]".to_owned(),
        },
        _ if !resolved.properties.is_empty() && depth >= 3 => "{}".to_owned(),
        _ if !resolved.properties.is_empty() => {
            let fields: Vec<String> = resolved
                .properties
                .iter()
                .filter(|(_, p)| p.required_by(&method.id))
                .map(|(name, p)| {
                    format!("{name} = {}", body_placeholder(doc, method, p, depth + 1))
                })
                .collect();
            match fields.is_empty() {
                true => "{}".to_owned(),
                false => format!("{{ {} }}", fields.join(", ")),
            }
        }
        Some("integer") | Some("number") => "0".to_owned(),
        // An int64 travels as a string.
        _ if matches!(
            resolved.format.as_deref(),
            Some("int64" | "uint64" | "int32" | "uint32")
        ) =>
        {
            "\"0\"".to_owned()
        }
        Some("boolean") => "false".to_owned(),
        _ => match resolved.enum_values.first() {
            Some(first) => format!("{first:?}"),
            None => format!(
                "{:?}",
                resolved
                    .pattern
                    .as_deref()
                    .and_then(|p| crate::discovery::value::pattern_placeholder(p, PLACEHOLDER))
                    .unwrap_or_else(|| PLACEHOLDER.to_owned())
            ),
        },
    }
}

/// The value a parameter's description names for the caller's own (`me`, `primary`,
/// `my_customer`), when it names one.
fn special_value(parameter: &Parameter) -> Option<&'static str> {
    const SPECIAL: &[&str] = &["me", "primary", "my_customer"];
    let text = &parameter.description;
    SPECIAL
        .iter()
        .copied()
        .find(|v| {
            [format!("`{v}`"), format!("\"{v}\""), format!("'{v}'")]
                .iter()
                .any(|quoted| text.contains(quoted.as_str()))
        })
        .filter(|v| {
            parameter.kind == "string"
                && (parameter.pattern.as_deref())
                    .is_none_or(|p| crate::discovery::value::check_pattern(p, v).is_ok())
        })
}

/// `records` when the query must choose, and the default columns as a comment.
fn write_records_and_columns(out: &mut String, doc: &Document, method: &Method) {
    if crate::apis::for_method(&method.id)
        .report(&method.id, None, true)
        .is_some()
    {
        let _ = writeln!(
            out,
            "\n# The report names its columns; list `columns` to choose and order them."
        );
        return;
    }
    let pagination = method_pagination(doc, method);
    let records = match infer_records(doc, method, &pagination) {
        RecordsGuess::Array(path) => Some(path),
        RecordsGuess::Whole => None,
        RecordsGuess::Ambiguous(candidates) => {
            let _ = writeln!(
                out,
                "# The response has several arrays of records: {}.",
                candidates.join(", ")
            );
            let _ = writeln!(out, "records = {:?}", candidates[0]);
            crate::records::FieldPath::parse(&candidates[0]).ok()
        }
    };
    let Some(record) = record_schema(doc, method, records.as_ref()) else {
        let _ = writeln!(
            out,
            "# The Discovery document gives no schema for the response: name the fields."
        );
        let _ = writeln!(out, "columns = [{PLACEHOLDER:?}]");
        return;
    };
    let columns = match default_columns(doc, &record, None) {
        Ok(columns) if !columns.is_empty() => columns,
        Ok(_) => {
            let _ = writeln!(
                out,
                "# The record schema names no fields: name what to export."
            );
            let _ = writeln!(out, "columns = [{PLACEHOLDER:?}]");
            return;
        }
        Err(_) => {
            let _ = writeln!(out, "# The record has too many fields for default columns.");
            let _ = writeln!(out, "columns = [{PLACEHOLDER:?}]");
            return;
        }
    };
    let _ = writeln!(
        out,
        "\n# Without `columns`, these are the columns ({}). To choose:",
        columns.len()
    );
    let shown: Vec<String> = columns
        .iter()
        .take(SHOWN_COLUMNS)
        .map(|c| format!("{:?}", c.header))
        .collect();
    let _ = writeln!(out, "# columns = [{}]", shown.join(", "));
    if columns.len() > SHOWN_COLUMNS {
        let _ = writeln!(
            out,
            "#   ... and {} more: gscrape describe {} {} {}",
            columns.len() - SHOWN_COLUMNS,
            doc.name,
            doc.version,
            method.id
        );
    }
    let left_out = left_out_columns(doc, &record, None);
    if !left_out.is_empty() {
        let _ = writeln!(
            out,
            "#   left out (only flags or links; list one to add it): {}",
            left_out.join(", ")
        );
    }
}

/// `integer (int32), one of: a, b: The maximum ...`
fn about(parameter: &Parameter) -> String {
    let mut text = match &parameter.format {
        Some(format) => format!("{} ({format})", parameter.kind),
        None => parameter.kind.clone(),
    };
    if parameter.repeated {
        text.push_str(", repeated");
    }
    if parameter.deprecated {
        text.push_str(", deprecated");
    }
    if !parameter.enum_values.is_empty() {
        let _ = write!(text, ", one of: {}", parameter.enum_values.join(", "));
    }
    if let Some(pattern) = &parameter.pattern {
        let _ = write!(text, ", pattern {pattern}");
    }
    let summary = first_sentence(&parameter.description);
    if !summary.is_empty() {
        let _ = write!(text, ": {summary}");
    }
    text.replace('\n', " ")
}

/// A value of the parameter's type, for a commented example.
fn example(parameter: &Parameter) -> String {
    let one = match (parameter.enum_values.first(), parameter.kind.as_str()) {
        (Some(first), _) => format!("{first:?}"),
        (None, "integer") => "100".to_owned(),
        (None, "number") => "1.0".to_owned(),
        (None, "boolean") => "true".to_owned(),
        (None, _) => "\"...\"".to_owned(),
    };
    match parameter.repeated {
        true => format!("[{one}]"),
        false => one,
    }
}

/// A value plainly not meant to stay (refused until replaced), or a boolean's `false`.
fn placeholder(parameter: &Parameter) -> String {
    let one = match (parameter.enum_values.first(), parameter.kind.as_str()) {
        (Some(first), _) => format!("{first:?}"),
        (None, "boolean") => "false".to_owned(),
        (None, _) => format!(
            "{:?}",
            (parameter.pattern.as_deref())
                .and_then(|p| crate::discovery::value::pattern_placeholder(p, PLACEHOLDER))
                .unwrap_or_else(|| PLACEHOLDER.to_owned())
        ),
    };
    match parameter.repeated {
        true => format!("[{one}]"),
        false => one,
    }
}

/// `text` as lines of at most about `width` characters (words kept whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
