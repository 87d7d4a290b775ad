//! Field paths into JSON records: `id`, `owners.emailAddress`, `owners[0].emailAddress`.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object property; on an array, applied to every element.
    Key(String),
    /// One element of an array.
    Index(usize),
}

/// A parsed path. Its text form is kept for headers and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {text:?}: {why} (write it as `a.b`, `a[0].b`)")]
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
        for part in text.split('.') {
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
                let index = inner[..close]
                    .parse()
                    .map_err(|_| err("an index must be a whole number"))?;
                segments.push(Segment::Index(index));
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
            })
    }

    /// The keys of the path, indexes left out (for walking schemas, where an index is the array's
    /// element).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
    }
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
    fn rejects_malformed_paths() {
        for bad in ["", "a..b", "a[x]", "a[1", "a[1]b", ".a"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad}");
        }
    }
}
