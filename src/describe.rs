//! `gscrape describe`: an API's methods, or everything about one method that a query file needs.

use std::fmt::Write;

use crate::discovery::{Document, Location, Method};
use crate::plan::{
    default_columns, first_sentence, infer_records, left_out_columns, method_pagination,
    record_schema, RecordsGuess,
};

/// One line per method: HTTP verb, id, whether it paginates, and whether it writes (a query
/// of it needs `allow_writes = true`).
pub fn method_list(doc: &Document) -> String {
    let methods = doc.methods();
    let width = methods.iter().map(|m| m.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for method in methods {
        let paginated = if method_pagination(doc, method).is_paginated() {
            "paginated"
        } else {
            ""
        };
        let writes = match method.access() {
            crate::discovery::Access::Read => "",
            crate::discovery::Access::Write(_) => "writes",
        };
        let line = format!(
            "{:<6} {:<width$}  {paginated:<9}  {writes}",
            method.http_method, method.id
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Everything about one method: URL, parameters, body, pagination, records, columns, scopes.
pub fn method_details(doc: &Document, method: &Method) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", method.id);
    let summary = first_sentence(&method.description);
    if !summary.is_empty() {
        let _ = writeln!(out, "  {summary}");
    }
    let _ = writeln!(
        out,
        "  {} {}{}",
        method.http_method,
        doc.base_url(),
        method.path
    );
    if let Some(origin) = crate::endpoints::origin(&doc.name) {
        let _ = writeln!(
            out,
            "  (the root URL of {origin}; the document's is {})",
            doc.root_url
        );
    }
    if let crate::discovery::Access::Write(why) = method.access() {
        let _ = writeln!(
            out,
            "  It changes data in the account: {why}; a query of it needs `allow_writes = true`."
        );
    }
    let _ = writeln!(out, "\nParameters:");
    if method.parameters.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    let mut names: Vec<&String> = method.parameter_order.iter().collect();
    names.extend(
        method
            .parameters
            .keys()
            .filter(|n| !method.parameter_order.contains(n)),
    );
    let rows: Vec<[String; 4]> = names
        .into_iter()
        .filter_map(|name| method.parameters.get(name).map(|p| (name, p)))
        .map(|(name, p)| {
            let location = match p.location {
                Location::Path => "path",
                Location::Query => "query",
            };
            let kind = match &p.format {
                Some(format) => format!("{}({format})", p.kind),
                None => p.kind.clone(),
            };
            let mut notes = Vec::new();
            if p.required {
                notes.push("required".to_owned());
            }
            if p.repeated {
                notes.push("repeated".to_owned());
            }
            if p.deprecated {
                notes.push("deprecated".to_owned());
            }
            if !p.enum_values.is_empty() {
                notes.push(format!("one of: {}", p.enum_values.join(" | ")));
            }
            let mut about = String::new();
            if !notes.is_empty() {
                let _ = write!(about, "[{}]  ", notes.join(", "));
            }
            about.push_str(&first_sentence(&p.description));
            [name.clone(), location.to_owned(), kind, about]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for [name, location, kind, about] in &rows {
        let line = format!("  {name:<w0$}  {location:<w1$}  {kind:<w2$}  {about}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let body = method
        .request
        .as_ref()
        .map_or("none", |r| r.reference.as_str());
    let response = method
        .response
        .as_ref()
        .map_or("none", |r| r.reference.as_str());
    let pagination = method_pagination(doc, method);
    let _ = writeln!(out, "\nRequest body: {body}");
    let fields = body_fields(doc, method);
    let wide = fields
        .iter()
        .map(|f| 2 * f.depth + f.name.len())
        .max()
        .unwrap_or(0);
    let kinds = fields.iter().map(|f| f.kind.len()).max().unwrap_or(0);
    for field in &fields {
        let name = format!("{}{}", "  ".repeat(field.depth), field.name);
        let line = format!("  {name:<wide$}  {:<kinds$}  {}", field.kind, field.about);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "Response: {response}");
    let _ = writeln!(out, "Pagination: {}", pagination.describe());
    if let Some(report) = crate::apis::for_method(&method.id).report(&method.id, None, true) {
        let _ = writeln!(out, "Records: {}", report.describe());
        let _ = writeln!(
            out,
            "Default columns: named by the report (list `columns` to choose)"
        );
        write_scopes(&mut out, method);
        return out;
    }
    let records = match infer_records(doc, method, &pagination) {
        RecordsGuess::Array(path) => {
            let _ = writeln!(out, "Records: {path}");
            Some(path)
        }
        RecordsGuess::Whole => {
            let _ = writeln!(out, "Records: the whole response (one record)");
            None
        }
        RecordsGuess::Ambiguous(candidates) => {
            let _ = writeln!(
                out,
                "Records: set `records` to one of: {}",
                candidates.join(", ")
            );
            None
        }
    };
    match record_schema(doc, method, records.as_ref()) {
        Some(record) => match default_columns(doc, &record, None) {
            Ok(columns) => {
                let _ = writeln!(out, "Default columns ({}):", columns.len());
                for column in columns {
                    let _ = writeln!(out, "  {}", column.header);
                }
                let left_out = left_out_columns(doc, &record, None);
                if !left_out.is_empty() {
                    let _ = writeln!(
                        out,
                        "Left out of the defaults (only flags or links; list one in `columns` to add it): {}",
                        left_out.join(", ")
                    );
                }
            }
            Err(too_many) => {
                let _ = writeln!(out, "Default columns: none ({too_many})");
            }
        },
        None => {
            let _ = writeln!(
                out,
                "Default columns: none (the response has no schema; list `columns`)"
            );
        }
    }
    let _ = writeln!(
        out,
        "Columns may name a field (`a.b`), an element (`a[0].b`), an element by a field's value \
         (`a[name=X].b`), or fallbacks (`path = [\"a.b\", \"a.c\"]`)."
    );
    write_scopes(&mut out, method);
    out
}

/// One field of a request body, as `describe` lists it.
#[derive(Debug, Clone)]
pub struct BodyField {
    /// 0 for a field of the body itself, 1 for a field of one of those, ...
    pub depth: usize,
    /// `dimensions[]` for a list.
    pub name: String,
    /// `string (date)`, `integer (int64)`, `list of Dimension`, `Dimension`, `map of string`.
    pub kind: String,
    /// `[required, one of: A | B]  First sentence of the description.`
    pub about: String,
    pub required: bool,
}

/// How deep `describe` lists a body's fields (a body's fields are depth 0).
const BODY_DEPTH: usize = 3;

/// The fields of the method's request body, to [`BODY_DEPTH`] levels; a schema met again
/// inside itself is not walked again.
pub fn body_fields(doc: &Document, method: &Method) -> Vec<BodyField> {
    let Some(request) = &method.request else {
        return Vec::new();
    };
    let Some(schema) = doc.schema(&request.reference) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut stack = vec![request.reference.as_str()];
    walk_body(doc, method, schema, 0, &mut stack, &mut out);
    out
}

fn walk_body<'a>(
    doc: &'a Document,
    method: &Method,
    schema: &'a crate::discovery::Schema,
    depth: usize,
    stack: &mut Vec<&'a str>,
    out: &mut Vec<BodyField>,
) {
    use crate::discovery::schema::resolve;
    for (name, prop) in &resolve(doc, schema).properties {
        let resolved = resolve(doc, prop);
        let is_list = resolved.kind.as_deref() == Some("array");
        let element = match (is_list, &resolved.items) {
            (true, Some(items)) => items.as_ref(),
            _ => prop,
        };
        let element_resolved = resolve(doc, element);
        let kind = type_name(element, element_resolved);
        let kind = match is_list {
            true => format!("list of {kind}"),
            false => kind,
        };
        let mut notes = Vec::new();
        let required = prop.required_by(&method.id);
        if required {
            notes.push("required".to_owned());
        }
        if !element_resolved.enum_values.is_empty() {
            let values = &element_resolved.enum_values;
            let shown: Vec<&str> = values.iter().take(8).map(String::as_str).collect();
            let more = match values.len() > 8 {
                true => format!(" | ... ({} in all)", values.len()),
                false => String::new(),
            };
            notes.push(format!("one of: {}{more}", shown.join(" | ")));
        }
        let mut about = String::new();
        if !notes.is_empty() {
            let _ = write!(about, "[{}]  ", notes.join(", "));
        }
        let description = match prop.description.is_empty() {
            true => &element_resolved.description,
            false => &prop.description,
        };
        about.push_str(&first_sentence(description).replace('\n', " "));
        out.push(BodyField {
            depth,
            name: match is_list {
                true => format!("{name}[]"),
                false => name.clone(),
            },
            kind,
            about,
            required,
        });
        let reference = element.reference.as_deref();
        let recurs = reference.is_some_and(|r| stack.contains(&r));
        if depth + 1 < BODY_DEPTH && !recurs && !element_resolved.properties.is_empty() {
            stack.extend(reference);
            walk_body(doc, method, element, depth + 1, stack, out);
            if reference.is_some() {
                stack.pop();
            }
        }
    }
}

/// `string (date)`, `Dimension` (a named object), `object`, `map of string`.
fn type_name(schema: &crate::discovery::Schema, resolved: &crate::discovery::Schema) -> String {
    if let Some(name) = &schema.reference {
        if !resolved.properties.is_empty() || resolved.kind.as_deref() == Some("object") {
            return name.clone();
        }
    }
    if let Some(values) = &resolved.additional_properties {
        return format!(
            "map of {}",
            values
                .kind
                .as_deref()
                .or(values.reference.as_deref())
                .unwrap_or("any")
        );
    }
    let kind = resolved.kind.as_deref().unwrap_or("any");
    match &resolved.format {
        Some(format) => format!("{kind} ({format})"),
        None => kind.to_owned(),
    }
}

fn write_scopes(out: &mut String, method: &Method) {
    let _ = writeln!(out, "Scopes:");
    if method.scopes.is_empty() {
        let _ = writeln!(out, "  (none listed: an API key may be enough)");
    }
    let preferred = crate::auth::scopes::least_privilege(&method.scopes);
    for scope in &method.scopes {
        let mark = if Some(scope.as_str()) == preferred {
            "  (least privilege: used by gscrape)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {scope}{mark}");
    }
}
