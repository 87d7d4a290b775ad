//! Building the HTTP request of a method: `rootUrl + servicePath + expand(path)`, query
//! parameters (repeated ones repeated), and the JSON body.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (simple `{name}`
/// expansion and query values).
const ENCODE_ALL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Reserved expansion (`{+name}`): reserved characters such as `/` and `:` stay as they are.
const ENCODE_RESERVED: &AsciiSet = &ENCODE_ALL
    .remove(b':')
    .remove(b'/')
    .remove(b'?')
    .remove(b'#')
    .remove(b'[')
    .remove(b']')
    .remove(b'@')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=');

/// One path segment, fully percent-encoded.
pub fn encode_path_segment(text: &str) -> String {
    utf8_percent_encode(text, ENCODE_ALL).to_string()
}

/// One request, before credentials are added.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    pub http_method: http::Method,
    /// Base URL and expanded path, without the query string.
    pub url: String,
    /// Query parameters in order; a repeated parameter appears once per value.
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl RequestSpec {
    /// The full URL with the percent-encoded query string.
    pub fn full_url(&self) -> String {
        let mut url = self.url.clone();
        for (i, (name, value)) in self.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.extend(utf8_percent_encode(name, ENCODE_ALL));
            url.push('=');
            url.extend(utf8_percent_encode(value, ENCODE_ALL));
        }
        url
    }

    /// Sets a query parameter, replacing any value it had.
    pub fn set_query(&mut self, name: &str, value: String) {
        self.query.retain(|(n, _)| n != name);
        self.query.push((name.to_owned(), value));
    }
}

/// Expands a Discovery `path` template. `{+name}` keeps reserved characters (`/`), `{name}` is
/// fully percent-encoded. `value_of` returns the value of a path parameter.
pub fn expand_path<'a>(
    template: &str,
    value_of: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in the path template {template:?}"))?
            + open;
        let expression = &rest[open + 1..close];
        let (reserved, name) = match expression.strip_prefix('+') {
            Some(name) => (true, name),
            None => (false, expression),
        };
        let name = name.trim_end_matches('*');
        let value = value_of(name).ok_or_else(|| format!("missing path parameter `{name}`"))?;
        let set = if reserved {
            ENCODE_RESERVED
        } else {
            ENCODE_ALL
        };
        out.extend(utf8_percent_encode(value, set));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(template: &str, pairs: &[(&'static str, &'static str)]) -> String {
        expand_path(template, |n| {
            pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
        })
        .unwrap()
    }

    #[test]
    fn reserved_expansion_keeps_slashes() {
        assert_eq!(
            expand(
                "v1beta/{+property}:runReport",
                &[("property", "properties/123")]
            ),
            "v1beta/properties/123:runReport"
        );
    }

    #[test]
    fn simple_expansion_encodes_everything() {
        assert_eq!(
            expand("sites/{siteUrl}/q", &[("siteUrl", "https://example.com/")]),
            "sites/https%3A%2F%2Fexample.com%2F/q"
        );
        assert_eq!(
            expand("v/{range}", &[("range", "Sheet 1!A1:C")]),
            "v/Sheet%201%21A1%3AC"
        );
    }

    #[test]
    fn query_values_are_encoded_and_repeated() {
        let spec = RequestSpec {
            http_method: http::Method::GET,
            url: "https://h/p".into(),
            query: vec![
                ("q".into(), "name = 'a&b'".into()),
                ("part".into(), "id".into()),
                ("part".into(), "snippet".into()),
            ],
            body: None,
        };
        assert_eq!(
            spec.full_url(),
            "https://h/p?q=name%20%3D%20%27a%26b%27&part=id&part=snippet"
        );
    }
}

/// A method's request with its parameter values as written in the query: rendered into a
/// [`RequestSpec`] once for a plain query, or once per parent record in a fan-out.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTemplate {
    pub http_method: http::Method,
    /// `rootUrl + servicePath`.
    pub base_url: String,
    /// The Discovery `path` template.
    pub path: String,
    pub path_params: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    /// What each templated parameter must render to, by name: checked after rendering, as a
    /// written value is checked before the run.
    pub rules: Vec<(String, ValueRule)>,
}

/// The Discovery type and allowed values of a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRule {
    pub kind: ValueKind,
    pub allowed: Vec<String>,
    /// Discovery's `format` (`date`, `date-time`, `int64`, ...) of a string parameter.
    pub format: Option<String>,
    /// Discovery's `pattern` of a string parameter.
    pub pattern: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Integer,
    Number,
    Boolean,
    Text,
}

impl ValueRule {
    /// `Err` with a message when `value`, rendered for `name`, is not of the rule.
    pub fn check(&self, name: &str, value: &str) -> Result<(), String> {
        let (fits, expected) = match self.kind {
            ValueKind::Integer => (
                value.parse::<i64>().is_ok() || value.parse::<u64>().is_ok(),
                "an integer",
            ),
            ValueKind::Number => (value.parse::<f64>().is_ok_and(f64::is_finite), "a number"),
            ValueKind::Boolean => (value == "true" || value == "false", "true or false"),
            ValueKind::Text => (true, "text"),
        };
        let shown = crate::redact::shorten(value, 100);
        if !fits {
            return Err(format!(
                "`{name}` rendered {shown:?}, which is not {expected}"
            ));
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a == value) {
            return Err(format!(
                "`{name}` rendered {shown:?}, which is not an allowed value; use one of: {}",
                self.allowed.join(", ")
            ));
        }
        let known =
            crate::discovery::value::check_format(self.format.as_deref().unwrap_or(""), value)
                .and_then(|()| match &self.pattern {
                    Some(pattern) => crate::discovery::value::check_pattern(pattern, value),
                    None => Ok(()),
                });
        known.map_err(|why| format!("`{name}` rendered {shown:?}: {why}"))
    }
}

impl RequestTemplate {
    /// The request, each value passed through `render` (templates are rendered; plain values
    /// come back as they are).
    pub fn render(
        &self,
        render: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<RequestSpec, String> {
        // A parameter's value, rendered and checked against its rule.
        let value = |name: &str, text: &str| -> Result<String, String> {
            let rendered = render(text)?;
            match self.rules.iter().find(|(n, _)| n == name) {
                Some((_, rule)) if rendered != text => rule.check(name, &rendered)?,
                _ => {}
            }
            Ok(rendered)
        };
        let path_values: Vec<(&str, String)> = self
            .path_params
            .iter()
            .map(|(name, text)| Ok((name.as_str(), value(name, text)?)))
            .collect::<Result<_, String>>()?;
        let path = expand_path(&self.path, |name| {
            path_values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        })?;
        let query = self
            .query
            .iter()
            .map(|(name, text)| Ok((name.clone(), value(name, text)?)))
            .collect::<Result<_, String>>()?;
        let body = self
            .body
            .as_ref()
            .map(|b| render_json(b, render))
            .transpose()?;
        Ok(RequestSpec {
            http_method: self.http_method.clone(),
            url: format!("{}{}", self.base_url, path),
            query,
            body,
        })
    }
}

/// Renders every string inside a JSON value.
fn render_json(
    value: &Value,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(render(s)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_json(v, render))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, render)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}
