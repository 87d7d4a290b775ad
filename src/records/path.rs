//! Field paths into JSON records: `id`, `owners.emailAddress`, `owners[0].emailAddress`, and
//! an element picked by a field's value: `payload.headers[name=Subject].value`.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object property; on an array, applied to every element.
    Key(String),
    /// One element of an array.
    Index(usize),
    /// The first element of an array whose field `key` has the text `value`
    /// (`headers[name=Subject]`).
    Match { key: String, value: String },
}

/// A parsed path. Its text form is kept for headers and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {text:?}: {why} (write it as `a.b`, `a[0].b`, `a[name=value].b`)")]
pub struct PathError {
    pub text: String,
    pub why: &'static str,
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let err = |why| PathError {
            text: text.to_owned(),
            why,
        };
        let mut segments = Vec::new();
        for part in split_outside_brackets(text) {
            let (key, mut rest) = match part.find('[') {
                Some(at) => part.split_at(at),
                None => (part, ""),
            };
            if key.is_empty() && (segments.is_empty() || rest.is_empty()) {
                return Err(err("empty field name"));
            }
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_owned()));
            }
            while let Some(inner) = rest.strip_prefix('[') {
                let close = inner.find(']').ok_or_else(|| err("unclosed `[`"))?;
                let inside = &inner[..close];
                segments.push(match inside.split_once('=') {
                    Some((key, value)) if !key.trim().is_empty() => Segment::Match {
                        key: key.trim().to_owned(),
                        value: value.trim().to_owned(),
                    },
                    Some(_) => return Err(err("a `[field=value]` needs a field name")),
                    None => Segment::Index(
                        inside
                            .parse()
                            .map_err(|_| err("an index must be a whole number"))?,
                    ),
                });
                rest = &inner[close + 1..];
            }
            if !rest.is_empty() {
                return Err(err("unexpected text after `]`"));
            }
        }
        Ok(FieldPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// True when a step picks an element by a field's value (read on the general path).
    pub fn has_match(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Match { .. }))
    }

    /// A path of one key, taken as written (a report column such as `ga:date` or `a.b`).
    pub fn key(name: &str) -> Self {
        FieldPath {
            text: name.to_owned(),
            segments: vec![Segment::Key(name.to_owned())],
        }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path in `value` (a key on an array is not followed: that is the
    /// cell renderer's business).
    pub fn lookup<'a>(&self, value: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.segments
            .iter()
            .try_fold(value, |node, segment| match segment {
                Segment::Key(key) => node.get(key.as_str()),
                Segment::Index(i) => node.get(*i),
                Segment::Match { key, value } => matching(node, key, value),
            })
    }

    /// The keys of the path, indexes left out (for walking schemas, where an index is the array's
    /// element).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) | Segment::Match { .. } => None,
        })
    }

    /// The keys a partial response must name for this path: up to an array whose element is
    /// picked by a field's value, which comes back whole (the field must come back too).
    pub fn selection_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        for segment in &self.segments {
            match segment {
                Segment::Key(key) => keys.push(key.as_str()),
                Segment::Index(_) => {}
                Segment::Match { .. } => break,
            }
        }
        keys
    }
}

/// The first element of the array `node` whose field `key` reads `value` (a string as it is,
/// a number or boolean as its JSON text).
pub fn matching<'a>(
    node: &'a serde_json::Value,
    key: &str,
    value: &str,
) -> Option<&'a serde_json::Value> {
    node.as_array()?.iter().find(|item| match item.get(key) {
        Some(serde_json::Value::String(text)) => text == value,
        Some(serde_json::Value::Number(number)) => number.to_string() == value,
        Some(serde_json::Value::Bool(flag)) => value == if *flag { "true" } else { "false" },
        _ => false,
    })
}

/// `text` split at the dots that are not inside `[...]` (a matched value may hold a dot).
fn split_outside_brackets(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                parts.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Segment::*;

    #[test]
    fn parses_keys_and_indexes() {
        let p = FieldPath::parse("owners[0].emailAddress").unwrap();
        assert_eq!(
            p.segments(),
            [Key("owners".into()), Index(0), Key("emailAddress".into())]
        );
        assert_eq!(
            FieldPath::parse("rows[1][2]").unwrap().segments(),
            [Key("rows".into()), Index(1), Index(2)]
        );
    }

    #[test]
    fn picks_an_element_by_a_field() {
        let p = FieldPath::parse("payload.headers[name=Subject].value").unwrap();
        assert_eq!(
            p.segments(),
            [
                Key("payload".into()),
                Key("headers".into()),
                Match {
                    key: "name".into(),
                    value: "Subject".into()
                },
                Key("value".into())
            ]
        );
        let record = serde_json::json!({"payload": {"headers": [
            {"name": "From", "value": "a@x"}, {"name": "Subject", "value": "Hi"},
            {"name": "Subject", "value": "second"}]}});
        assert_eq!(p.lookup(&record), Some(&serde_json::json!("Hi")));
        let dotted = FieldPath::parse("items[host=a.example].port").unwrap();
        assert_eq!(dotted.segments().len(), 3);
        assert!(FieldPath::parse("a[=x]").is_err());
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["", "a..b", "a[x]", "a[1", "a[1]b", ".a"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad}");
        }
    }
}
