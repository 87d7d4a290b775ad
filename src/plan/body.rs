//! A request body checked against its Discovery schema at every depth: the keys each object
//! may have, the fields a request of the method must set, the shape of each value (object,
//! list or scalar) and a scalar's type, allowed values, `format` and `pattern`. A template is
//! checked once rendered (see [`check_rendered_body`]).

use serde_json::Value;

use crate::discovery::schema::resolve;
use crate::discovery::value::{check_format, check_pattern};
use crate::discovery::{Document, Method, Schema};
use crate::query::{Problem, Query};
use crate::template::is_template;
use crate::util::nearest;

/// Nesting below this depth is not checked (the value is taken as it is).
const MAX_DEPTH: usize = 12;

/// The schema of the method's request body, when it has one the document describes.
pub(super) fn request_schema<'a>(doc: &'a Document, method: &Method) -> Option<&'a Schema> {
    doc.schema(&method.request.as_ref()?.reference)
}

/// The problems of a body as written; templated strings are left for the rendered check.
pub(super) fn check_body(
    query: &Query,
    doc: &Document,
    method: &Method,
    body: &Value,
    schema_name: &str,
    problems: &mut Vec<Problem>,
) {
    let Some(schema) = doc.schema(schema_name) else {
        return;
    };
    let mut found = Vec::new();
    let walk = Walk {
        doc,
        method,
        templates: Templates::Skip,
    };
    walk.object_keys(body, schema, schema_name, &mut found);
    walk.value(body, schema, "", 0, &mut found);
    let mut found: Vec<Problem> = (found.into_iter())
        .map(|(path, message)| located(query, &path, message))
        .collect();
    // In the order written (a body's keys are walked sorted).
    found.sort_by_key(|p| p.line);
    problems.extend(found);
}

/// The problems of a rendered body: what its templates rendered to, checked as a written
/// value is (a written value passed [`check_body`] already).
pub fn check_rendered_body(
    query: &Query,
    doc: &Document,
    method: &Method,
    written: Option<&Value>,
    rendered: &Value,
) -> Vec<Problem> {
    let (Some(schema), Some(written)) = (request_schema(doc, method), written) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let walk = Walk {
        doc,
        method,
        templates: Templates::Rendered(written),
    };
    walk.value(rendered, schema, "", 0, &mut found);
    let mut found: Vec<Problem> = (found.into_iter())
        .map(|(path, message)| located(query, &path, message))
        .collect();
    found.sort_by_key(|p| p.line);
    found
}

/// A problem at `path` (`dimensions[0].name`), on the line of its top-level key.
fn located(query: &Query, path: &str, message: String) -> Problem {
    let top = path.split(['.', '[']).next().unwrap_or_default();
    let line = (query.body_lines.iter())
        .find(|(key, _)| key == top)
        .map(|(_, line)| *line)
        .or(query.body.as_ref().and_then(|b| b.line));
    let key = match path {
        "" => "body".to_owned(),
        _ => format!("body.{path}"),
    };
    query.problem(line, Some(key), message)
}

#[derive(Clone, Copy)]
enum Templates<'a> {
    /// Templated strings are not checked (their value is known when they render).
    Skip,
    /// Only values that were templates in this written body are checked.
    Rendered(&'a Value),
}

struct Walk<'a> {
    doc: &'a Document,
    method: &'a Method,
    templates: Templates<'a>,
}

impl Walk<'_> {
    /// The top-level keys of the body: a key that is a parameter belongs in [params].
    fn object_keys(&self, body: &Value, schema: &Schema, name: &str, found: &mut Found) {
        let (Value::Object(map), false) = (body, schema.properties.is_empty()) else {
            return;
        };
        for key in map.keys() {
            if schema.properties.contains_key(key) {
                continue;
            }
            let message = match self.method.parameter(self.doc, key) {
                None if crate::query::TOP_LEVEL_KEYS.contains(&key.as_str()) => format!(
                    "`{key}` is a top-level key, not a body field: move it above [body] \
                     (in TOML every key after a [table] header belongs to that table)"
                ),
                Some(_) => format!(
                    "`{key}` is a parameter of {}, not a body field: put it under [params]",
                    self.method.id
                ),
                None => {
                    let hint = nearest(key, schema.properties.keys().map(String::as_str));
                    let hint = match hint.first() {
                        Some(h) => format!("; did you mean `{h}`?"),
                        None => String::new(),
                    };
                    format!("not a field of the request body {name}{hint}")
                }
            };
            found.push((key.clone(), message));
        }
    }

    /// Whether the value at `path` is to be checked (always, but for templates).
    fn checked(&self, value: &Value, path: &str) -> bool {
        match self.templates {
            Templates::Skip => !matches!(value, Value::String(s) if is_template(s)),
            Templates::Rendered(written) => at_path(written, path)
                .is_some_and(|w| matches!(w, Value::String(s) if is_template(s))),
        }
    }

    fn value(&self, value: &Value, schema: &Schema, path: &str, depth: usize, found: &mut Found) {
        if depth > MAX_DEPTH {
            return;
        }
        let resolved = resolve(self.doc, schema);
        let kind = kind_of(resolved);
        let rendered_only = matches!(self.templates, Templates::Rendered(_));
        if matches!(value, Value::String(s) if is_template(s))
            && matches!(self.templates, Templates::Skip)
        {
            return;
        }
        match (kind, value) {
            (Kind::Object, Value::Object(map)) => {
                let name = schema.reference.as_deref().unwrap_or("the object");
                for (key, item) in map {
                    let child = join(path, key);
                    match resolved.properties.get(key) {
                        Some(prop) => self.value(item, prop, &child, depth + 1, found),
                        None if !resolved.properties.is_empty() => {
                            if depth > 0 && !rendered_only {
                                let hint =
                                    nearest(key, resolved.properties.keys().map(String::as_str));
                                let hint = match hint.first() {
                                    Some(h) => format!("; did you mean `{h}`?"),
                                    None => String::new(),
                                };
                                found.push((child, format!("not a field of {name}{hint}")));
                            }
                        }
                        None => {
                            if let Some(extra) = &resolved.additional_properties {
                                self.value(item, extra, &child, depth + 1, found);
                            }
                        }
                    }
                }
                if !rendered_only {
                    for (key, prop) in &resolved.properties {
                        if prop.required_by(&self.method.id) && !map.contains_key(key) {
                            found.push((
                                join(path, key),
                                format!(
                                    "missing required field `{key}` of {name}: add `{key} = {}`",
                                    example(self.doc, prop, None, 0)
                                ),
                            ));
                        }
                    }
                }
            }
            (Kind::Array, Value::Array(items)) => {
                if let Some(item_schema) = &resolved.items {
                    for (i, item) in items.iter().enumerate() {
                        let child = format!("{path}[{i}]");
                        self.value(item, item_schema, &child, depth + 1, found);
                    }
                }
            }
            (Kind::Any, _) => {}
            (Kind::Object | Kind::Array, _) => {
                if self.checked(value, path) {
                    found.push((
                        path.to_owned(),
                        format!(
                            "expected {} such as {}, found {}",
                            kind.noun(),
                            example(self.doc, schema, Some(value), 0),
                            describe(value)
                        ),
                    ));
                }
            }
            (scalar, _) => {
                if self.checked(value, path) {
                    if let Err(why) = scalar_fits(scalar, resolved, value) {
                        found.push((path.to_owned(), why));
                    }
                }
            }
        }
    }
}

type Found = Vec<(String, String)>;

fn join(path: &str, key: &str) -> String {
    match path {
        "" => key.to_owned(),
        _ => format!("{path}.{key}"),
    }
}

/// The value at a `a.b[0].c` path of a body.
fn at_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = value;
    if path.is_empty() {
        return Some(current);
    }
    for part in path.split('.') {
        let (key, indexes) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            current = current.get(key)?;
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            current = current.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(current)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
    Any,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Object => "a table",
            Kind::Array => "a list",
            Kind::String => "a string",
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean (true or false)",
            Kind::Any => "a value",
        }
    }
}

fn kind_of(schema: &Schema) -> Kind {
    match schema.kind.as_deref() {
        Some("object") => Kind::Object,
        Some("array") => Kind::Array,
        Some("string") => Kind::String,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        _ if !schema.properties.is_empty() => Kind::Object,
        _ => Kind::Any,
    }
}

/// A scalar against its schema: type, allowed values, format and pattern.
fn scalar_fits(kind: Kind, schema: &Schema, value: &Value) -> Result<(), String> {
    let int_format = matches!(
        schema.format.as_deref(),
        Some("int64" | "uint64" | "int32" | "uint32")
    );
    let text = match (kind, value) {
        (Kind::String, Value::String(s)) => s.clone(),
        (Kind::String, Value::Number(n)) if int_format && (n.is_i64() || n.is_u64()) => {
            n.to_string()
        }
        // A number or boolean for a plain string is sent as written, and taken as its text.
        (Kind::String, Value::Number(_) | Value::Bool(_)) if schema.format.is_none() => {
            value.to_string()
        }
        (Kind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        (Kind::Integer, Value::String(s)) if s.parse::<i64>().is_ok() => s.clone(),
        (Kind::Number, Value::Number(n)) => n.to_string(),
        (Kind::Boolean, Value::Bool(b)) => b.to_string(),
        _ => {
            let expected = match (kind, int_format) {
                (Kind::String, true) => "a string or an integer",
                _ => kind.noun(),
            };
            return Err(format!("expected {expected}, found {}", describe(value)));
        }
    };
    // Case aside: Search Console takes `query` for `QUERY`, as its own examples write it.
    if !schema.enum_values.is_empty()
        && !schema
            .enum_values
            .iter()
            .any(|v| v.eq_ignore_ascii_case(&text))
    {
        return Err(format!(
            "{text:?} is not an allowed value; use one of: {}",
            schema.enum_values.join(", ")
        ));
    }
    if let (Kind::String, Some(format)) = (kind, &schema.format) {
        check_format(format, &text)?;
    }
    if let Some(pattern) = &schema.pattern {
        check_pattern(pattern, &text)?;
    }
    Ok(())
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {:?}", crate::redact::shorten(s, 60)),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a table".to_owned(),
        Value::Null => "nothing".to_owned(),
    }
}

/// A TOML example of a value of `schema`: for an object, its `name` (or first string) field
/// set to `found` when that is a string (`{ name = "date" }`); for a list, one such item.
pub(crate) fn example(
    doc: &Document,
    schema: &Schema,
    found: Option<&Value>,
    depth: usize,
) -> String {
    let resolved = resolve(doc, schema);
    let found_text = found.and_then(|v| v.as_str());
    match kind_of(resolved) {
        Kind::Object if depth < 3 => {
            let field = resolved
                .properties
                .get_key_value("name")
                .filter(|(_, p)| kind_of(resolve(doc, p)) == Kind::String)
                .or_else(|| {
                    resolved
                        .properties
                        .iter()
                        .find(|(_, p)| kind_of(resolve(doc, p)) == Kind::String)
                })
                .or_else(|| resolved.properties.first());
            match field {
                Some((key, prop)) => {
                    let inner = match (found_text, kind_of(resolve(doc, prop))) {
                        (Some(text), Kind::String) => format!("{text:?}"),
                        _ => example(doc, prop, None, depth + 1),
                    };
                    format!("{{ {key} = {inner} }}")
                }
                None => "{ }".to_owned(),
            }
        }
        Kind::Object => "{ }".to_owned(),
        Kind::Array => match &resolved.items {
            Some(items) => format!("[{}]", example(doc, items, found, depth + 1)),
            None => "[]".to_owned(),
        },
        Kind::String => {
            let text = (resolved.enum_values.iter())
                .find(|v| !v.ends_with("_UNSPECIFIED"))
                .or(resolved.enum_values.first())
                .cloned()
                .or_else(|| {
                    (resolved.format.as_deref())
                        .and_then(crate::discovery::value::format_example)
                        .map(str::to_owned)
                })
                .or_else(|| {
                    (resolved.pattern.as_deref()).and_then(crate::discovery::value::pattern_example)
                })
                .or_else(|| found_text.map(str::to_owned))
                .unwrap_or_else(|| "...".to_owned());
            format!("{text:?}")
        }
        Kind::Integer => "1".to_owned(),
        Kind::Number => "1.0".to_owned(),
        Kind::Boolean => "true".to_owned(),
        Kind::Any => "\"...\"".to_owned(),
    }
}
