//! The first request of a query: its parameters checked against the method (type, allowed
//! values, repetition, required ones), its body against the request schema, and the parameters
//! its API's module sends by default.

use serde_json::Value;

use super::{first_sentence, strings_in, Check};
use crate::api::{RequestTemplate, ValueKind, ValueRule};
use crate::discovery::value::{check_format, check_pattern};
use crate::discovery::{Document, Location, Method, Parameter};
use crate::query::{Param, Problem, Query};
use crate::template::is_template;
use crate::util::nearest;

pub(super) fn build_request(
    query: &Query,
    doc: &Document,
    method: &Method,
    check: &Check<'_>,
    problems: &mut Vec<Problem>,
) -> RequestTemplate {
    let mut path_values: Vec<(String, String)> = Vec::new();
    let mut query_values = Vec::new();
    let mut rules = Vec::new();
    for param in &query.params {
        let key = Some(format!("params.{}", param.name));
        let Some(spec) = method.parameter(doc, &param.name) else {
            if crate::query::TOP_LEVEL_KEYS.contains(&param.name.as_str()) {
                problems.push(query.problem(
                    param.line,
                    key,
                    format!(
                        "`{}` is a top-level key, not a parameter: move it above [params] \
                         (in TOML every key after a [table] header belongs to that table)",
                        param.name
                    ),
                ));
                continue;
            }
            if let Some(request) = method.request.as_ref().filter(|_| {
                super::body::request_schema(doc, method)
                    .is_some_and(|s| s.properties.contains_key(&param.name))
            }) {
                problems.push(query.problem(
                    param.line,
                    key,
                    format!(
                        "`{}` is a field of the request body {}, not a parameter: put it under [body]",
                        param.name, request.reference
                    ),
                ));
                continue;
            }
            let names = method.parameters.keys().chain(doc.parameters.keys());
            let hint = match nearest(&param.name, names.map(String::as_str)).first() {
                Some(h) => format!("did you mean `{h}`?"),
                None => format!(
                    "see `gscrape describe {} {} {}`",
                    query.api, query.version, method.id
                ),
            };
            problems.push(query.problem(
                param.line,
                key,
                format!("unknown parameter of {}; {hint}", method.id),
            ));
            continue;
        };
        if has_template(&param.value) {
            rules.push((param.name.clone(), value_rule(spec)));
        }
        match param_values(param, spec, check) {
            Ok(values) if spec.location == Location::Path => {
                path_values.extend(values.into_iter().map(|v| (param.name.clone(), v)));
            }
            Ok(values) => {
                query_values.extend(values.into_iter().map(|v| (param.name.clone(), v)));
            }
            Err(message) => problems.push(query.problem(param.line, key, message)),
        }
    }
    for (name, spec) in &method.parameters {
        if spec.required && !query.params.iter().any(|p| &p.name == name) {
            let location = match spec.location {
                Location::Path => "path",
                Location::Query => "query",
            };
            problems.push(query.problem(
                None,
                Some(format!("params.{name}")),
                format!(
                    "missing required {location} parameter of {}: add `{name} = ...` under [params] ({})",
                    method.id,
                    first_sentence(&spec.description)
                ),
            ));
        }
    }
    let body = match (&query.body, &method.request) {
        (Some(body), None) => {
            problems.push(query.problem(
                body.line,
                Some("body".to_owned()),
                format!(
                    "{} takes no request body (it is {} {}); remove [body] or use [params]",
                    method.id, method.http_method, method.path
                ),
            ));
            None
        }
        (Some(body), Some(request)) => {
            super::body::check_body(
                query,
                doc,
                method,
                &body.value,
                &request.reference,
                problems,
            );
            for text in strings_in(&body.value) {
                if let Err(message) = check(text) {
                    problems.push(query.problem(body.line, Some("body".to_owned()), message));
                }
            }
            Some(body.value.clone())
        }
        (None, _) => None,
    };
    let api = crate::apis::for_method(&method.id);
    let defaults = api.default_body(method);
    let body = match body {
        _ if defaults.is_empty() => body,
        None => Some(Value::Object(
            defaults
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )),
        Some(Value::Object(mut fields)) => {
            for (key, value) in defaults {
                fields.entry(key).or_insert(value);
            }
            Some(Value::Object(fields))
        }
        Some(other) => Some(other),
    };
    for (name, value) in api.default_params(method) {
        if !query.params.iter().any(|p| p.name == name) {
            query_values.push((name.to_owned(), value.to_owned()));
        }
    }
    RequestTemplate {
        http_method: method.http_method.parse().unwrap_or(http::Method::GET),
        // A query's `endpoint` goes over every other root (`Document::base_url` applies those).
        base_url: match &query.endpoint {
            Some(root) => format!("{}{}", root.value, doc.service_path),
            None => doc.base_url(),
        },
        path: method.path.clone(),
        path_params: path_values,
        query: query_values,
        body,
        rules,
    }
}

/// True when a parameter's value (or one of its values) is a template.
fn has_template(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(text) => is_template(text),
        toml::Value::Array(items) => items.iter().any(has_template),
        _ => false,
    }
}

/// What a templated value of `spec` must render to.
fn value_rule(spec: &Parameter) -> ValueRule {
    let int_format = matches!(
        spec.format.as_deref(),
        Some("int64" | "uint64" | "int32" | "uint32")
    );
    let kind = match spec.kind.as_str() {
        "integer" => ValueKind::Integer,
        "number" => ValueKind::Number,
        "boolean" => ValueKind::Boolean,
        "string" if int_format => ValueKind::Integer,
        _ => ValueKind::Text,
    };
    ValueRule {
        kind,
        allowed: spec.enum_values.clone(),
        format: spec.format.clone().filter(|_| spec.kind == "string"),
        pattern: spec.pattern.clone(),
    }
}

/// The string values of a parameter, checked against its declared type, enum and repetition.
/// A template is checked for the variables it uses; its value is known only when it runs.
fn param_values(param: &Param, spec: &Parameter, check: &Check<'_>) -> Result<Vec<String>, String> {
    let items = match &param.value {
        toml::Value::Array(items) if spec.repeated => items.as_slice(),
        toml::Value::Array(_) => {
            return Err("takes one value, not a list (the parameter is not repeated)".to_owned())
        }
        one => std::slice::from_ref(one),
    };
    items
        .iter()
        .map(|value| match value {
            toml::Value::String(text) if is_template(text) => check(text).map(|()| text.clone()),
            value => scalar_value(value, spec),
        })
        .collect()
}

fn scalar_value(value: &toml::Value, spec: &Parameter) -> Result<String, String> {
    let int_format = matches!(
        spec.format.as_deref(),
        Some("int64" | "uint64" | "int32" | "uint32")
    );
    let text = match (spec.kind.as_str(), value) {
        ("integer", toml::Value::Integer(i)) => i.to_string(),
        ("number", toml::Value::Integer(i)) => i.to_string(),
        ("number", toml::Value::Float(f)) => f.to_string(),
        ("boolean", toml::Value::Boolean(b)) => b.to_string(),
        ("string", toml::Value::String(s)) => s.clone(),
        ("string", toml::Value::Integer(i)) if int_format => i.to_string(),
        ("string", toml::Value::Datetime(d)) => d.to_string(),
        ("any", toml::Value::String(s)) => s.clone(),
        ("any", toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)) => {
            value.to_string()
        }
        (kind, other) => {
            let expected = match kind {
                "integer" => "an integer",
                "number" => "a number",
                "boolean" => "a boolean (true or false)",
                "string" if int_format => "a string or an integer",
                _ => "a string",
            };
            return Err(format!(
                "expected {expected}, found {}",
                describe_toml(other)
            ));
        }
    };
    if !spec.enum_values.is_empty() && !spec.enum_values.contains(&text) {
        return Err(format!(
            "{text:?} is not an allowed value; use one of: {}",
            spec.enum_values.join(", ")
        ));
    }
    if spec.kind == "string" {
        if let Some(format) = &spec.format {
            check_format(format, &text)?;
        }
    }
    if let Some(pattern) = &spec.pattern {
        check_pattern(pattern, &text)?;
    }
    Ok(text)
}

fn describe_toml(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(f) => format!("the number {f}"),
        toml::Value::Boolean(b) => format!("the boolean {b}"),
        toml::Value::Datetime(d) => format!("the date {d}"),
        toml::Value::Array(_) => "a list".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

/// The keys above the first table that are no query key: each parameter of the method or
/// field of its body is said to belong in its table; any other key is unknown.
pub(super) fn stray_keys(query: &Query, doc: &Document, method: &Method) -> Vec<Problem> {
    let body = super::body::request_schema(doc, method);
    (query.stray.iter())
        .map(|key| {
            let name = &key.name;
            let message = if method.parameter(doc, name).is_some() {
                format!(
                    "`{name}` is a parameter of {}: put it under [params]",
                    method.id
                )
            } else if let Some(request) = method
                .request
                .as_ref()
                .filter(|_| body.is_some_and(|s| s.properties.contains_key(name)))
            {
                format!(
                    "`{name}` is a field of the request body {}: put it under [body]",
                    request.reference
                )
            } else {
                crate::query::unknown_top_level_key(name)
            };
            query.problem(key.line, Some(name.clone()), message)
        })
        .collect()
}
