//! Partial responses: the `fields` parameter in Google's selector syntax (`a,b/c,d(e,f)`, `*`).
//!
//! Google sends only a default set of fields for many methods unless `fields` asks for more
//! (Drive's `files.list`: `kind, id, name, mimeType` per file), and a `fields` that forgets
//! `nextPageToken` makes the first page look like the last. So gscrape builds the selection
//! from what a query writes, and checks one written by hand.

use std::fmt;

use indexmap::IndexMap;

/// A set of selected fields: a tree in which a leaf selects the whole field (all its
/// subfields), and `*` selects every field of its level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMask {
    children: IndexMap<String, FieldMask>,
}

/// Why a `fields` text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`fields = {text:?}` is not a field selection: {why} at character {at} (write it as `a,b/c,d(e,f)`)")]
pub struct FieldsSyntaxError {
    pub text: String,
    pub why: &'static str,
    pub at: usize,
}

impl FieldMask {
    /// Reads Google's selector syntax.
    pub fn parse(text: &str) -> Result<FieldMask, FieldsSyntaxError> {
        let mut parser = Parser {
            text,
            bytes: text.as_bytes(),
            at: 0,
        };
        let mut mask = FieldMask::default();
        parser.list(&mut mask)?;
        if parser.at < parser.bytes.len() {
            return Err(parser.error(match parser.bytes[parser.at] {
                b')' => "a `)` without its `(`",
                _ => "unexpected character (separate fields with `,`)",
            }));
        }
        Ok(mask)
    }

    /// True when nothing is selected (no `fields` to send).
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Selects the whole field at `path` (its subfields included). A path inside a field that
    /// is already whole adds nothing; a path above selected subfields makes the field whole.
    pub fn insert<'a>(&mut self, path: impl IntoIterator<Item = &'a str>) {
        let mut node = self;
        let mut path = path.into_iter().peekable();
        while let Some(key) = path.next() {
            let fresh = !node.children.contains_key(key);
            let child = node.children.entry(key.to_owned()).or_default();
            if path.peek().is_none() {
                child.children.clear();
                return;
            }
            if !fresh && child.children.is_empty() {
                return; // already whole
            }
            node = child;
        }
    }

    /// Adds every field `other` selects.
    pub fn merge(&mut self, other: &FieldMask) {
        for (key, theirs) in &other.children {
            match self.children.get_mut(key) {
                None => {
                    self.children.insert(key.clone(), theirs.clone());
                }
                Some(ours) if ours.children.is_empty() => {}
                Some(ours) if theirs.children.is_empty() => ours.children.clear(),
                Some(ours) => ours.merge(theirs),
            }
        }
    }

    /// True when the field at `path` comes back whole (it, or a field holding it, or `*` at
    /// its level, is selected).
    pub fn covers<'a>(&self, path: impl IntoIterator<Item = &'a str>) -> bool {
        let mut node = self;
        for key in path {
            if node.children.is_empty() {
                return true;
            }
            match node.children.get(key).or_else(|| node.children.get("*")) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.children.is_empty()
    }

    fn write(&self, out: &mut String) {
        for (i, (key, child)) in self.children.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            match child.children.len() {
                0 => {}
                1 => {
                    out.push('/');
                    child.write(out);
                }
                _ => {
                    out.push('(');
                    child.write(out);
                    out.push(')');
                }
            }
        }
    }
}

impl fmt::Display for FieldMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out);
        f.write_str(&out)
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, why: &'static str) -> FieldsSyntaxError {
        FieldsSyntaxError {
            text: self.text.to_owned(),
            why,
            at: self.at + 1,
        }
    }

    fn skip_spaces(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    /// `item (',' item)*`, each added to `into`.
    fn list(&mut self, into: &mut FieldMask) -> Result<(), FieldsSyntaxError> {
        loop {
            self.item(into)?;
            self.skip_spaces();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                _ => return Ok(()),
            }
        }
    }

    /// `name ('/' name)* ('(' list ')')?`
    fn item(&mut self, into: &mut FieldMask) -> Result<(), FieldsSyntaxError> {
        let mut path = vec![self.name()?];
        while self.bytes.get(self.at) == Some(&b'/') {
            self.at += 1;
            path.push(self.name()?);
        }
        self.skip_spaces();
        if self.bytes.get(self.at) != Some(&b'(') {
            into.insert(path);
            return Ok(());
        }
        self.at += 1;
        let mut inner = FieldMask::default();
        self.list(&mut inner)?;
        self.skip_spaces();
        if self.bytes.get(self.at) != Some(&b')') {
            return Err(self.error("missing `)`"));
        }
        self.at += 1;
        let mut nested = FieldMask::default();
        let (last, parents) = path.split_last().expect("a path has a name");
        let mut node = &mut nested;
        for key in parents {
            node = node.children.entry((*key).to_owned()).or_default();
        }
        node.children.insert((*last).to_owned(), inner);
        into.merge(&nested);
        Ok(())
    }

    fn name(&mut self) -> Result<&'a str, FieldsSyntaxError> {
        self.skip_spaces();
        let start = self.at;
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"_-.*@$".contains(b))
        {
            self.at += 1;
        }
        if start == self.at {
            return Err(self.error("a field name is missing"));
        }
        Ok(&self.text[start..self.at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(text: &str) -> FieldMask {
        FieldMask::parse(text).unwrap()
    }

    #[test]
    fn reads_and_writes_google_syntax() {
        assert_eq!(
            mask("nextPageToken,files(id,owners/emailAddress)").to_string(),
            "nextPageToken,files(id,owners/emailAddress)"
        );
        assert_eq!(mask("a/b/c,a/d").to_string(), "a(b/c,d)");
        assert_eq!(mask(" a ( b , c ) ").to_string(), "a(b,c)");
        assert_eq!(mask("*").to_string(), "*");
        assert_eq!(mask("a(b(c,d),e)").to_string(), "a(b(c,d),e)");
    }

    #[test]
    fn a_whole_field_absorbs_its_subfields() {
        let mut m = mask("files(id)");
        m.insert(["files"]);
        assert_eq!(m.to_string(), "files");
        m.insert(["files", "name"]);
        assert_eq!(m.to_string(), "files");
        assert_eq!(mask("files,files/id").to_string(), "files");
        assert_eq!(mask("files/id,files").to_string(), "files");
    }

    #[test]
    fn coverage() {
        let m = mask("nextPageToken,files(id,owners/emailAddress,properties)");
        assert!(m.covers(["files", "id"]));
        assert!(m.covers(["files", "owners", "emailAddress"]));
        assert!(m.covers(["files", "properties", "anything"]));
        assert!(!m.covers(["files", "owners"]));
        assert!(!m.covers(["files", "name"]));
        assert!(!m.covers(["kind"]));
        assert!(mask("*").covers(["files", "size"]));
        assert!(mask("files/*").covers(["files", "size"]));
        assert!(!mask("files/*").covers(["nextPageToken"]));
    }

    #[test]
    fn merging() {
        let mut m = mask("files(id)");
        m.merge(&mask("files(name),nextPageToken"));
        assert_eq!(m.to_string(), "files(id,name),nextPageToken");
        m.merge(&mask("files"));
        assert_eq!(m.to_string(), "files,nextPageToken");
    }

    #[test]
    fn syntax_errors_point_at_the_text() {
        for bad in ["", "a,", "a(b", "a)", "a//b", "a(,b)"] {
            let err = FieldMask::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("is not a field selection"),
                "{bad}: {err}"
            );
        }
    }
}
