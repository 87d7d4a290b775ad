//! The cell of an array or object value written straight from the page's text, exactly as the
//! general path prints it after serde_json parsed it (an array of scalars joined with
//! [`LIST_SEPARATOR`]; anything else as compact JSON with object keys sorted), without building
//! a `serde_json::Value`. Only plain forms are taken: strings without escapes, integers,
//! literals. Anything else (an escape, a float, a duplicate key, invalid JSON) answers `false`
//! and the caller parses the value, so that the cell and any error stay serde_json's.

use memchr::memchr2;

use super::LIST_SEPARATOR;

/// Writes the cell of `text`, an array or object value, to `out`; false (and `out` as it was)
/// when `text` is not in the plain forms this writes.
pub(super) fn render(text: &str, out: &mut String) -> bool {
    write_whole(text, out, |w, start| match text.as_bytes().first() {
        Some(b'[') => w.joined(0).or_else(|| {
            w.out.truncate(start);
            w.json(0)
        }),
        Some(b'{') => w.json(0),
        _ => None,
    })
}

/// Writes `text`, an array or object value, to `out` as compact JSON (what `render` writes for
/// anything but an array of scalars); false (and `out` as it was) when it is not plain.
pub(super) fn write_json(text: &str, out: &mut String) -> bool {
    write_whole(text, out, |w, _| w.json(0))
}

/// Runs `write` (given the writer and where `out` started) over the whole of `text`: false,
/// and `out` as it was, unless it wrote all of it.
fn write_whole(
    text: &str,
    out: &mut String,
    write: impl FnOnce(&mut Writer<'_, '_>, usize) -> Option<usize>,
) -> bool {
    let start = out.len();
    let b = text.as_bytes();
    let mut w = Writer {
        text,
        out,
        scratch: String::new(),
    };
    if write(&mut w, start).map(|end| ws(b, end)) == Some(b.len()) {
        true
    } else {
        out.truncate(start);
        false
    }
}

struct Writer<'t, 'o> {
    text: &'t str,
    out: &'o mut String,
    /// Where an object's fields are put in key order.
    scratch: String,
}

impl Writer<'_, '_> {
    /// An array of scalars at `i`, its items joined; `None` when an item is an array or object
    /// (or not plain). Returns the index just past the array.
    fn joined(&mut self, i: usize) -> Option<usize> {
        let b = self.text.as_bytes();
        let mut j = ws(b, i + 1);
        if b.get(j) == Some(&b']') {
            return Some(j + 1);
        }
        let mut first = true;
        loop {
            if !first {
                self.out.push_str(LIST_SEPARATOR);
            }
            first = false;
            j = match b.get(j)? {
                b'"' => {
                    let end = plain_string_end(b, j)?;
                    self.out.push_str(&self.text[j + 1..end - 1]);
                    end
                }
                b'n' => literal(b, j, b"null")?,
                _ => {
                    let end = self.scalar(j)?;
                    self.out.push_str(&self.text[j..end]);
                    end
                }
            };
            j = ws(b, j);
            match b.get(j)? {
                b',' => j = ws(b, j + 1),
                b']' => return Some(j + 1),
                _ => return None,
            }
        }
    }

    /// The value at `i` as compact JSON; returns the index just past it.
    fn json(&mut self, i: usize) -> Option<usize> {
        let b = self.text.as_bytes();
        match b.get(i)? {
            b'"' => {
                let end = plain_string_end(b, i)?;
                self.out.push_str(&self.text[i..end]);
                Some(end)
            }
            b'n' => {
                let end = literal(b, i, b"null")?;
                self.out.push_str("null");
                Some(end)
            }
            b'[' => {
                self.out.push('[');
                let mut j = ws(b, i + 1);
                if b.get(j) != Some(&b']') {
                    loop {
                        j = ws(b, self.json(j)?);
                        match b.get(j)? {
                            b',' => {
                                self.out.push(',');
                                j = ws(b, j + 1);
                            }
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
                self.out.push(']');
                Some(j + 1)
            }
            b'{' => self.object(i),
            _ => {
                let end = self.scalar(i)?;
                self.out.push_str(&self.text[i..end]);
                Some(end)
            }
        }
    }

    /// The object at `i` as compact JSON, its keys in order (serde_json's map is sorted).
    fn object(&mut self, i: usize) -> Option<usize> {
        let b = self.text.as_bytes();
        self.out.push('{');
        let fields_start = self.out.len();
        // Each field's key and where its `"key":value` text ends in `out`.
        let mut fields: Vec<(&str, usize)> = Vec::new();
        let mut j = ws(b, i + 1);
        if b.get(j) != Some(&b'}') {
            loop {
                let key_end = plain_string_end(b, j)?;
                let key = &self.text[j + 1..key_end - 1];
                if !fields.is_empty() {
                    self.out.push(',');
                }
                self.out.push_str(&self.text[j..key_end]);
                self.out.push(':');
                j = ws(b, key_end);
                if b.get(j) != Some(&b':') {
                    return None;
                }
                j = ws(b, self.json(ws(b, j + 1))?);
                fields.push((key, self.out.len()));
                match b.get(j)? {
                    b',' => j = ws(b, j + 1),
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        if fields.windows(2).any(|w| w[0].0 >= w[1].0) {
            self.sort_fields(fields_start, &mut fields)?;
        }
        self.out.push('}');
        Some(j + 1)
    }

    /// Rewrites the fields written from `start` on in key order; `None` for a repeated key
    /// (serde_json keeps the last one: the caller parses).
    fn sort_fields(&mut self, start: usize, fields: &mut [(&str, usize)]) -> Option<()> {
        self.scratch.clear();
        self.scratch.push_str(&self.out[start..]);
        // Each field's text in `scratch`: after the previous one's end and its comma.
        let mut spans = Vec::with_capacity(fields.len());
        let mut from = 0;
        for (key, end) in fields.iter() {
            let end = end - start;
            spans.push((*key, from, end));
            from = end + 1;
        }
        spans.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if spans.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        self.out.truncate(start);
        for (n, (_, from, end)) in spans.iter().enumerate() {
            if n > 0 {
                self.out.push(',');
            }
            self.out.push_str(&self.scratch[*from..*end]);
        }
        Some(())
    }

    /// The end of the scalar at `i` (`true`, `false` or an integer serde_json prints as it
    /// is written), other than a string or null.
    fn scalar(&self, i: usize) -> Option<usize> {
        let b = self.text.as_bytes();
        match b.get(i)? {
            b't' => literal(b, i, b"true"),
            b'f' => literal(b, i, b"false"),
            _ => integer_end(b, i),
        }
    }
}

/// The end of the integer at `i`, which serde_json keeps as written (its text, for any number
/// of digits, `-0` too): no fraction or exponent (an exponent is printed its own way).
fn integer_end(b: &[u8], i: usize) -> Option<usize> {
    let digits_at = i + usize::from(b.get(i) == Some(&b'-'));
    let digits = b[digits_at.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let end = digits_at + digits;
    let leading_zero = digits > 1 && b[digits_at] == b'0';
    let not_integer = matches!(b.get(end), Some(b'.' | b'e' | b'E'));
    (digits > 0 && !leading_zero && !not_integer).then_some(end)
}

/// The end of the string at `i` when it has no escape and no control character (which JSON
/// forbids unescaped).
fn plain_string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let close = i + 1 + memchr2(b'"', b'\\', &b[i + 1..])?;
    (b[close] == b'"' && !b[i + 1..close].iter().any(|&c| c < 0x20)).then_some(close + 1)
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The cell by this module, and by the general path on the parsed value.
    fn both(text: &str) -> (Option<String>, String) {
        let mut fast = String::from("before|");
        let ok = render(text, &mut fast);
        let mut general = String::new();
        let value: Value = serde_json::from_str(text).unwrap();
        super::super::render_value(&value, &mut general);
        (ok.then(|| fast["before|".len()..].to_owned()), general)
    }

    #[test]
    fn plain_values_print_as_serde_json_prints_them_parsed() {
        for text in [
            r#"[{"displayName":"Owner 0","emailAddress":"o@example.com","kind":"drive#user","me":true}]"#,
            r#"[ { "z": 1, "a": [ 2, null, "x" ], "m": { "b": false, "a": {} } } ]"#,
            r#"{"b": -12, "a": "ünï", "ab": [], "a0": 0}"#,
            r#"["a", 1, true, null, "b"]"#,
            r#"[[1, 2], ["a"]]"#,
            "[\n  1,\n  2\n]",
            r#"[123456789012345678, -5]"#,
            r#"[-0, 1234567890123456789012, 0]"#,
        ] {
            let (fast, general) = both(text);
            assert_eq!(fast.as_deref(), Some(general.as_str()), "{text}");
        }
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        for text in [
            r#"[{"a": 1.5}]"#,
            r#"[1e3]"#,
            r#"["a\"b"]"#,
            r#"[{"a\u0062": 1}]"#,
            r#"{"a": 1, "a": 2}"#,
            "[\"tab\there\"]",
        ] {
            let mut out = String::from("kept");
            assert!(!render(text, &mut out), "{text}");
            assert_eq!(out, "kept");
        }
        for invalid in [
            r#"[1, x]"#,
            r#"{"a" 1}"#,
            r#"[01]"#,
            r#"[1,]"#,
            r#"{"a":1} x"#,
        ] {
            let mut out = String::new();
            assert!(!render(invalid, &mut out), "{invalid}");
            assert!(out.is_empty());
        }
    }
}
