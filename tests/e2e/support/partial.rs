//! Google's partial responses, as the fake applies them: `fields=a,b/c,d(e,f)` keeps only the
//! named fields (`*`: every field of a level; an array: each element), and a method with a
//! default field set (Drive's `files.list`) sends only that set when no `fields` is given.
//! Written apart from gscrape's own parser, so that the two check each other.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A selection: field name → what is selected inside it (empty: the whole field).
#[derive(Debug, Default, Clone)]
pub struct Selection(BTreeMap<String, Selection>);

/// Drive v3 `files.list` without `fields`: what the real API sends.
pub const DRIVE_FILES_DEFAULT: &str =
    "kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType)";

impl Selection {
    /// Parses `fields`; `Err` with Google's message for a malformed one.
    pub fn parse(text: &str) -> Result<Selection, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        let selection = parse_list(&chars, &mut at)?;
        if at != chars.len() {
            return Err(format!("Invalid field selection {text}"));
        }
        Ok(selection)
    }

    fn add(&mut self, path: &[String], inner: Selection) {
        let (first, rest) = path.split_first().expect("a path has a name");
        match self.0.get_mut(first) {
            Some(node) if node.0.is_empty() => {} // already whole
            Some(node) if rest.is_empty() && inner.0.is_empty() => node.0.clear(),
            Some(node) if rest.is_empty() => node.0.extend(inner.0),
            Some(node) => node.add(rest, inner),
            None => {
                let mut node = Selection::default();
                match rest.is_empty() {
                    true => node = inner,
                    false => node.add(rest, inner),
                }
                self.0.insert(first.clone(), node);
            }
        }
    }

    /// The part of `value` this selection keeps.
    pub fn apply(&self, value: &Value) -> Value {
        if self.0.is_empty() {
            return value.clone();
        }
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| self.apply(v)).collect()),
            Value::Object(map) => {
                let mut out = Map::new();
                for (key, inner) in &self.0 {
                    if key == "*" {
                        for (k, v) in map {
                            out.insert(k.clone(), inner.apply(v));
                        }
                    } else if let Some(v) = map.get(key) {
                        out.insert(key.clone(), inner.apply(v));
                    }
                }
                Value::Object(out)
            }
            scalar => scalar.clone(),
        }
    }
}

fn parse_list(chars: &[char], at: &mut usize) -> Result<Selection, String> {
    let mut selection = Selection::default();
    loop {
        let mut path = Vec::new();
        loop {
            let start = *at;
            while *at < chars.len() && !",/()".contains(chars[*at]) {
                *at += 1;
            }
            let name: String = chars[start..*at]
                .iter()
                .collect::<String>()
                .trim()
                .to_owned();
            if name.is_empty() {
                return Err(format!(
                    "Invalid field selection {}",
                    chars.iter().collect::<String>()
                ));
            }
            path.push(name);
            if chars.get(*at) == Some(&'/') {
                *at += 1;
            } else {
                break;
            }
        }
        let mut inner = Selection::default();
        if chars.get(*at) == Some(&'(') {
            *at += 1;
            inner = parse_list(chars, at)?;
            if chars.get(*at) != Some(&')') {
                return Err("Invalid field selection: missing )".to_owned());
            }
            *at += 1;
        }
        selection.add(&path, inner);
        if chars.get(*at) == Some(&',') {
            *at += 1;
        } else {
            return Ok(selection);
        }
    }
}
