//! A structural scan of a page's JSON text, for plain list exports: the page's outline (its
//! fields other than the records, and how many records it has) and the values that the
//! columns' paths reach in each record, found without parsing the rest. Strings without
//! escapes are borrowed from the text; the few values a column keeps whole (numbers, arrays,
//! objects, escaped strings) are parsed by serde_json from their slice, so cells come out
//! exactly as on the general path.
//!
//! The scan checks the structure (brackets, strings, separators), not every character of the
//! fields it skips. A page it cannot follow gives `None` (outline) or an error (rows); the
//! caller then lets serde_json say what is wrong.

use std::borrow::Cow;

use memchr::memchr2;
use serde_json::{Map, Value};

use super::compact;
use super::skip;
use super::tree::{Found, Node, Reached};

/// The page's other fields and its record count, for records in the top-level field `records`.
pub(super) fn outline(json: &str, records: &str) -> Option<(Value, usize)> {
    let b = json.as_bytes();
    let mut rest = Map::new();
    let mut count = 0;
    let mut fields = Fields::open(b, ws(b, 0))?;
    while let Some(key) = fields.next_key(json)? {
        let i = fields.at;
        fields.at = if key == records {
            match b.get(i)? {
                b'[' => {
                    let (n, end) = count_elements(b, i)?;
                    count = n;
                    end
                }
                b'n' if b[i..].starts_with(b"null") => i + 4,
                _ => return None,
            }
        } else {
            let end = value_end(b, i)?;
            rest.insert(key.into_owned(), serde_json::from_str(&json[i..end]).ok()?);
            end
        };
    }
    (ws(b, fields.at) == b.len()).then_some((Value::Object(rest), count))
}

/// Why a row scan stopped early.
#[derive(Debug)]
pub(super) enum RowsError {
    /// The page is not as expected (the caller asks serde_json for the details).
    Structure,
    /// A value a column keeps did not parse.
    Json(serde_json::Error),
}

impl From<serde_json::Error> for RowsError {
    fn from(err: serde_json::Error) -> Self {
        RowsError::Json(err)
    }
}

/// Calls `row` with the values the columns reach in each record of the top-level array
/// `records`, until the last record or until `row` returns false.
pub(super) fn rows<'de>(
    json: &'de str,
    records: &str,
    root: &Node,
    found: &mut Reached<'de>,
    row: &mut dyn FnMut(&mut Reached<'de>) -> bool,
) -> Result<(), RowsError> {
    use RowsError::Structure;
    let b = json.as_bytes();
    let mut fields = Fields::open(b, ws(b, 0)).ok_or(Structure)?;
    while let Some(key) = fields.next_key(json).ok_or(Structure)? {
        let i = fields.at;
        if key != records || b.get(i) != Some(&b'[') {
            fields.at = value_end(b, i).ok_or(Structure)?;
            continue;
        }
        let mut j = ws(b, i + 1);
        if b.get(j) == Some(&b']') {
            return Ok(());
        }
        loop {
            found.clear();
            j = ws(b, scan_record(json, j, root, found)?);
            if !row(found) {
                return Ok(());
            }
            match b.get(j) {
                Some(b',') => j = ws(b, j + 1),
                Some(b']') => return Ok(()),
                _ => return Err(Structure),
            }
        }
    }
    Ok(())
}

/// A record, the value at `i`, for the column tree `root`, as [`scan_node`] reads it; each
/// key is looked for first where the last record had it, so that a record with many columns
/// (default columns are every scalar of a schema) does not search them all for each field.
fn scan_record<'de>(
    json: &'de str,
    i: usize,
    root: &Node,
    found: &mut Reached<'de>,
) -> Result<usize, RowsError> {
    let b = json.as_bytes();
    if !root.ends.is_empty() || b.get(i) != Some(&b'{') {
        return scan_node(json, i, root, found, Reach::All);
    }
    scan_object(json, i, root, found, true)
}

/// The object at `i` for the column tree `node`: each field its columns reach is read, the
/// others skipped. `memo`: look for each key first where the last record had it (for the
/// record itself, not the objects in it).
fn scan_object<'de>(
    json: &'de str,
    i: usize,
    node: &Node,
    found: &mut Reached<'de>,
    memo: bool,
) -> Result<usize, RowsError> {
    let b = json.as_bytes();
    let mut fields = Fields::open(b, i).ok_or(RowsError::Structure)?;
    let mut position = 0;
    loop {
        let hint = memo.then(|| found.order_hint(position)).flatten();
        // The key the last record had here, matched in place; any other is read and looked up.
        let expected = hint.and_then(|at| Some((at, node.keys.get(at)?)));
        let reached = match expected {
            Some((at, (key, child))) if fields.next_key_is(key) => Some((at, child)),
            _ => match fields.next_key(json).ok_or(RowsError::Structure)? {
                Some(key) => node.child(&key, hint),
                None => break,
            },
        };
        fields.at = match reached {
            Some((at, child)) => {
                if memo {
                    found.set_order(position, at);
                }
                scan_node(json, fields.at, child, found, Reach::All)?
            }
            None => value_end(b, fields.at).ok_or(RowsError::Structure)?,
        };
        position += 1;
    }
    Ok(fields.at)
}

/// Which of a node's paths apply to a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// All: the value is the one at the node.
    All,
    /// Only those that go on by a key: the value is an element of the array at the node, to
    /// which a key applies as to each element (an index applies to the array itself).
    Keys,
}

/// Reads the value at `i` for the column tree `node`, adding what the columns reach to
/// `found`; returns the index just past the value.
fn scan_node<'de>(
    json: &'de str,
    i: usize,
    node: &Node,
    found: &mut Reached<'de>,
    reach: Reach,
) -> Result<usize, RowsError> {
    let b = json.as_bytes();
    if reach == Reach::All && !node.ends.is_empty() {
        return if node.is_leaf() {
            // Columns end here and none goes deeper: the value as it is.
            let (value, end) = leaf(json, i)?;
            if let Some(value) = value {
                found.push_each(&node.ends, value);
            }
            Ok(end)
        } else {
            // A column ends here and others go deeper: the whole value, read by each.
            let end = value_end(b, i).ok_or(RowsError::Structure)?;
            let value: Value = serde_json::from_str(&json[i..end])?;
            node.take_whole(value, found);
            Ok(end)
        };
    }
    match b.get(i) {
        Some(b'{') => scan_object(json, i, node, found, false),
        // An index picks an element; a key applies to each element.
        Some(b'[') => {
            let mut j = ws(b, i + 1);
            if b.get(j) == Some(&b']') {
                return Ok(j + 1);
            }
            let mut index = 0;
            loop {
                let picked = match reach {
                    Reach::All => node.index_child(index),
                    Reach::Keys => None,
                };
                let mut end = None;
                if let Some(child) = picked {
                    end = Some(scan_node(json, j, child, found, Reach::All)?);
                }
                if !node.keys.is_empty() {
                    end = Some(scan_node(json, j, node, found, Reach::Keys)?);
                }
                let end = match end {
                    Some(end) => end,
                    None => value_end(b, j).ok_or(RowsError::Structure)?,
                };
                j = ws(b, end);
                match b.get(j) {
                    Some(b',') => j = ws(b, j + 1),
                    Some(b']') => return Ok(j + 1),
                    _ => return Err(RowsError::Structure),
                }
                index += 1;
            }
        }
        _ => value_end(b, i).ok_or(RowsError::Structure),
    }
}

/// The value at `i` as a [`Found`] (`None` for null), and the index just past it.
fn leaf(json: &str, i: usize) -> Result<(Option<Found<'_>>, usize), RowsError> {
    let b = json.as_bytes();
    let literal = |text: &[u8], value: Option<Found<'static>>| {
        if b[i..].starts_with(text) {
            Ok((value, i + text.len()))
        } else {
            Err(RowsError::Structure)
        }
    };
    if b.get(i) == Some(&b'[') {
        if let Some((items, end)) = plain_strings(json, i) {
            return Ok((Some(Found::Strs(items)), end));
        }
    }
    match b.get(i).ok_or(RowsError::Structure)? {
        b'"' => {
            let (end, escaped) = string_end(b, i).ok_or(RowsError::Structure)?;
            let text = if escaped {
                Cow::Owned(serde_json::from_str::<String>(&json[i..end])?)
            } else {
                Cow::Borrowed(&json[i + 1..end - 1])
            };
            Ok((Some(Found::Str(text)), end))
        }
        b't' => literal(b"true", Some(Found::Value(Value::Bool(true)))),
        b'f' => literal(b"false", Some(Found::Value(Value::Bool(false)))),
        b'n' => literal(b"null", None),
        _ => {
            let end = value_end(b, i).ok_or(RowsError::Structure)?;
            let mut cell = String::new();
            if compact::render(&json[i..end], &mut cell) {
                let json = &json[i..end];
                return Ok((Some(Found::Rendered { json, cell }), end));
            }
            let value: Value = serde_json::from_str(&json[i..end])?;
            Ok(((!value.is_null()).then_some(Found::Value(value)), end))
        }
    }
}

/// The array that opens at `i` when it holds only strings without escapes (a list of ids,
/// of labels), borrowed, and the index just past it; `None` for any other array.
fn plain_strings(json: &str, i: usize) -> Option<(Vec<&str>, usize)> {
    let b = json.as_bytes();
    let mut items = Vec::new();
    let mut j = ws(b, i + 1);
    if b.get(j) == Some(&b']') {
        return Some((items, j + 1));
    }
    loop {
        let (end, escaped) = string_end(b, j)?;
        if escaped {
            return None;
        }
        items.push(&json[j + 1..end - 1]);
        j = ws(b, end);
        match b.get(j)? {
            b',' => j = ws(b, j + 1),
            b']' => return Some((items, j + 1)),
            _ => return None,
        }
    }
}

/// The fields of one object, key by key; `at` is where the current key's value starts, and
/// must be moved past it before the next key.
struct Fields<'b> {
    b: &'b [u8],
    at: usize,
    first: bool,
}

impl<'b> Fields<'b> {
    /// True, with `at` past the colon, when the next key is `expected` written plainly (no
    /// escapes); false, nothing read, otherwise (the caller reads the key with `next_key`).
    fn next_key_is(&mut self, expected: &str) -> bool {
        let b = self.b;
        let key = expected.as_bytes();
        let mut i = ws(b, self.at);
        match (b.get(i), self.first) {
            (Some(b','), false) => i = ws(b, i + 1),
            (Some(b'"'), true) => {}
            _ => return false,
        }
        let end = i + 1 + key.len();
        let plain = b.get(i) == Some(&b'"')
            && b.get(i + 1..end) == Some(key)
            && b.get(end) == Some(&b'"')
            && !key.iter().any(|&c| c == b'"' || c == b'\\');
        let colon = ws(b, end + 1);
        if !plain || b.get(colon) != Some(&b':') {
            return false;
        }
        self.first = false;
        self.at = ws(b, colon + 1);
        true
    }

    /// The object that opens at `i`.
    fn open(b: &'b [u8], i: usize) -> Option<Self> {
        (b.get(i) == Some(&b'{')).then_some(Fields {
            b,
            at: i + 1,
            first: true,
        })
    }

    /// The next key (`None` at the closing brace, `at` then just past it), or `None` outside
    /// when the text is not an object's.
    fn next_key<'de>(&mut self, json: &'de str) -> Option<Option<Cow<'de, str>>> {
        let b = self.b;
        let mut i = ws(b, self.at);
        match (b.get(i)?, self.first) {
            (b'}', _) => {
                self.at = i + 1;
                return Some(None);
            }
            (b',', false) => i = ws(b, i + 1),
            (b'"', true) => {}
            _ => return None,
        }
        self.first = false;
        let (end, escaped) = string_end(b, i)?;
        let key = if escaped {
            Cow::Owned(serde_json::from_str::<String>(&json[i..end]).ok()?)
        } else {
            Cow::Borrowed(&json[i + 1..end - 1])
        };
        let colon = ws(b, end);
        (b.get(colon) == Some(&b':')).then_some(())?;
        self.at = ws(b, colon + 1);
        Some(Some(key))
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the string that opens at `i`, and whether it has escapes.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        j = quote_or_backslash(b, j)?;
        if b[j] == b'"' {
            return Some((j + 1, escaped));
        }
        escaped = true;
        j += 2; // the backslash and the character after it
    }
}

/// The index of the first `"` or `\\` at or after `from`, sixteen bytes at a time (most
/// strings end within the first or second step).
#[cfg(target_arch = "x86_64")]
fn quote_or_backslash(b: &[u8], from: usize) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let mut j = from;
    while let Some(chunk) = b.get(j..j + 16) {
        // SAFETY: SSE2 is part of every x86_64 CPU; the load reads the 16 bytes of `chunk`
        // and needs no alignment.
        let found = unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(quote, backslash))
        };
        if found != 0 {
            return Some(j + found.trailing_zeros() as usize);
        }
        j += 16;
    }
    Some(j + memchr2(b'"', b'\\', b.get(j..)?)?)
}

/// The index of the first `"` or `\\` at or after `from`.
#[cfg(not(target_arch = "x86_64"))]
fn quote_or_backslash(b: &[u8], from: usize) -> Option<usize> {
    Some(from + memchr2(b'"', b'\\', b.get(from..)?)?)
}

/// The index just past the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i).map(|(end, _)| end),
        b'{' | b'[' => skip::container(b, i).map(|skipped| skipped.end),
        _ => {
            let len = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len() - i);
            (len > 0).then_some(i + len)
        }
    }
}

/// The number of elements of the array that opens at `i`, all of them objects (records), and
/// the index just past it.
fn count_elements(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let j = ws(b, i + 1);
    if b.get(j)? == &b']' {
        return Some((0, j + 1));
    }
    let skipped = skip::container(b, i)?;
    // One comma fewer than objects: anything else directly inside is not a record (serde_json
    // says what it is).
    (skipped.objects == skipped.commas + 1).then_some((skipped.objects, skipped.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_the_records_and_keeps_the_rest() {
        let page = r#" { "kind" : "x", "files" : [ {"a": "]}\"\\", "b": [1, {"c": null}]}, {"s":3}, { }, {"x": []} , {} ],
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
    fn finds_string_ends_across_sixteen_byte_steps() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..5_000 {
            // A string of plain bytes and escapes, then more text or the end of the page.
            let mut text = vec![b' '; rng.usize(0..20)];
            let start = text.len();
            text.push(b'"');
            let mut escaped = false;
            for _ in 0..rng.usize(0..60) {
                match rng.u8(0..10) {
                    0 => {
                        text.extend_from_slice(br#"\""#);
                        escaped = true;
                    }
                    1 => {
                        text.extend_from_slice(br"\\");
                        escaped = true;
                    }
                    _ => text.push(rng.alphanumeric() as u8),
                }
            }
            text.push(b'"');
            let end = text.len();
            if rng.bool() {
                text.extend_from_slice(br#", "next": "x\"y""#);
            }
            assert_eq!(
                string_end(&text, start),
                Some((end, escaped)),
                "{}",
                String::from_utf8_lossy(&text)
            );
        }
        assert_eq!(string_end(br#""unterminated \""#, 0), None);
    }

    #[test]
    fn gives_up_on_what_it_does_not_expect() {
        for bad in [
            "",
            "[]",
            r#"{"files": [1, 2}"#,
            r#"{"files": [{}, 1]}"#,
            r#"{"files": [null]}"#,
            r#"{"files": {"a": 1}}"#,
            r#"{"files": [1] "x": 1}"#,
            r#"{"files": [1]} trailing"#,
            r#"{"x": tru}"#,
            r#"{"files": ["unterminated]}"#,
            r#"{, "files": []}"#,
            r#"{"files" []}"#,
        ] {
            assert_eq!(outline(bad, "files"), None, "{bad}");
        }
    }
}
