//! A page's outline by a structural scan: its fields other than the records, parsed, and the
//! number of records, counted without parsing them. The records are parsed (and so checked)
//! when their cells are read; this scan only has to be right for valid JSON, and it gives up
//! (`None`) on anything it does not expect, so that the caller can let serde_json say what is
//! wrong.

use memchr::memchr2;
use serde_json::{Map, Value};

/// The page's other fields and its record count, for records in the top-level field `records`.
pub fn outline(json: &str, records: &str) -> Option<(Value, usize)> {
    let b = json.as_bytes();
    let mut rest = Map::new();
    let mut count = 0;
    let mut i = expect(b, ws(b, 0), b'{')?;
    i = ws(b, i);
    if b.get(i) == Some(&b'}') {
        return (ws(b, i + 1) == b.len()).then_some((Value::Object(rest), 0));
    }
    loop {
        let key_end = string_end(b, i)?;
        let key = key_text(&json[i..key_end])?;
        i = ws(b, expect(b, ws(b, key_end), b':')?);
        if key == records {
            match b.get(i)? {
                b'[' => (count, i) = count_elements(b, i)?,
                b'n' if b[i..].starts_with(b"null") => (count, i) = (0, i + 4),
                _ => return None,
            }
        } else {
            let end = value_end(b, i)?;
            rest.insert(key.into_owned(), serde_json::from_str(&json[i..end]).ok()?);
            i = end;
        }
        i = ws(b, i);
        match b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => break,
            _ => return None,
        }
    }
    (ws(b, i + 1) == b.len()).then_some((Value::Object(rest), count))
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn expect(b: &[u8], i: usize, byte: u8) -> Option<usize> {
    (b.get(i) == Some(&byte)).then_some(i + 1)
}

/// A key's text (its quoted form at `quoted`), unescaped only when it has escapes.
fn key_text(quoted: &str) -> Option<std::borrow::Cow<'_, str>> {
    let inner = &quoted[1..quoted.len() - 1];
    if inner.contains('\\') {
        serde_json::from_str::<String>(quoted).ok().map(Into::into)
    } else {
        Some(inner.into())
    }
}

/// The index just past the string that opens at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        j += memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        j += 2; // an escape: the backslash and the character after it
    }
}

/// The index just past the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len() - i);
            (len > 0).then_some(i + len)
        }
    }
}

/// The number of elements of the array that opens at `i`, and the index just past it.
fn count_elements(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = ws(b, i + 1);
    if b.get(j)? == &b']' {
        return Some((0, j + 1));
    }
    let mut count = 0;
    loop {
        j = ws(b, value_end(b, j)?);
        count += 1;
        match b.get(j)? {
            b',' => j = ws(b, j + 1),
            b']' => return Some((count, j + 1)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_the_records_and_keeps_the_rest() {
        let page = r#" { "kind" : "x", "files" : [ {"a": "]}\"\\", "b": [1, {"c": null}]}, "s", 3, [] , {} ],
            "next\u0050ageToken": "t\"1", "n": -1.5e3, "ok": true, "z": null } "#;
        let (rest, count) = outline(page, "files").unwrap();
        assert_eq!(count, 5);
        assert_eq!(
            rest,
            json!({"kind": "x", "nextPageToken": "t\"1", "n": -1.5e3, "ok": true, "z": null})
        );
        assert_eq!(outline(r#"{"files": []}"#, "files").unwrap().1, 0);
        assert_eq!(outline(r#"{"files": null}"#, "files").unwrap().1, 0);
        assert_eq!(outline("{}", "files").unwrap(), (json!({}), 0));
    }

    #[test]
    fn gives_up_on_what_it_does_not_expect() {
        for bad in [
            "",
            "[]",
            r#"{"files": [1, 2}"#,
            r#"{"files": {"a": 1}}"#,
            r#"{"files": [1] "x": 1}"#,
            r#"{"files": [1]} trailing"#,
            r#"{"x": tru}"#,
            r#"{"files": ["unterminated]}"#,
        ] {
            assert_eq!(outline(bad, "files"), None, "{bad}");
        }
    }
}
