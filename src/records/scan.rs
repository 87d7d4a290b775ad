//! A structural scan of a page's JSON text, for plain list exports: the page's outline (its
//! fields other than the records, how many records it has, and where they are) and the values
//! that the columns' paths reach in each record, found without building the rest. Strings
//! without escapes are borrowed from the text; the few values a column keeps whole (numbers,
//! arrays, objects, escaped strings) are parsed by serde_json from their slice, so cells come
//! out exactly as on the general path.
//!
//! Every byte the rows pass goes over is checked as serde_json checks it ([`super::strict`]),
//! the fields it skips too, with the page's nesting depth: a page it exports is a page
//! serde_json accepts. The outline checks the page's other fields and only counts the records
//! (64 bytes at a time); the rows pass checks them. What the scan does not take on (a key
//! repeated in a record, where serde_json keeps the last) it hands back, for the record to be
//! parsed whole.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::compact;
use super::skip;
use super::strict::{self, enter, string_end, ws, Invalid};
use super::tree::{Found, Node, Reached};

/// What the outline found: the page's other fields, its record count, and where its records
/// array opens (none for `null` or no records field).
#[derive(Debug, PartialEq)]
pub(super) struct Outline {
    pub fields: Value,
    pub count: usize,
    pub records_at: Option<usize>,
}

/// The page's outline, for records in the top-level field `records`; `None` when the page is
/// not a JSON object whose records field is an array of objects or null, or names its records
/// twice, or is not valid JSON where the outline reads it: serde_json's reading decides then.
pub(super) fn outline(json: &str, records: &str) -> Option<Outline> {
    let b = json.as_bytes();
    let mut rest = Map::new();
    let mut count = 0;
    let mut records_at = None;
    let mut seen = false;
    let mut fields = Fields::open(b, ws(b, 0))?;
    while let Some(key) = fields.next_key(json).ok()? {
        let i = fields.at;
        fields.at = if key == records {
            if std::mem::replace(&mut seen, true) {
                return None;
            }
            match b.get(i)? {
                b'[' => {
                    let (n, end) = count_elements(b, i)?;
                    count = n;
                    records_at = Some(i);
                    end
                }
                b'n' => strict::literal_end(b, i, b"null").ok()?,
                _ => return None,
            }
        } else {
            let end = strict::value_end(b, i, 1).ok()?;
            rest.insert(key.into_owned(), serde_json::from_str(&json[i..end]).ok()?);
            end
        };
    }
    (ws(b, fields.at) == b.len()).then_some(Outline {
        fields: Value::Object(rest),
        count,
        records_at,
    })
}

/// Why a row scan stopped early.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RowsError {
    /// The page is not valid JSON (serde_json says why: [`strict::page_error`]).
    Invalid,
}

impl From<Invalid> for RowsError {
    fn from(_: Invalid) -> Self {
        RowsError::Invalid
    }
}

/// Why a record's scan handed it back.
enum Scan {
    Invalid,
    /// A key the columns reach is repeated in one object: serde_json keeps the last value,
    /// which the record parsed whole gives.
    Repeated,
}

impl From<Invalid> for Scan {
    fn from(_: Invalid) -> Self {
        Scan::Invalid
    }
}

/// One record of the rows pass: what the columns reached, or the record parsed whole.
pub(super) enum Record<'a, 'de> {
    Scanned(&'a mut Reached<'de>),
    Parsed(Value),
}

/// Calls `row` with each record of the records array that opens at `records_at` (from the
/// outline), and the record's text as the page has it, until the last record or until `row`
/// returns false; the rest of the array is checked all the same.
pub(super) fn rows<'de>(
    json: &'de str,
    records_at: usize,
    root: &Node,
    found: &mut Reached<'de>,
    row: &mut dyn FnMut(Record<'_, 'de>, &'de str) -> bool,
) -> Result<(), RowsError> {
    let b = json.as_bytes();
    if b.get(records_at) != Some(&b'[') {
        return Err(RowsError::Invalid);
    }
    // Inside the page's object and its records array.
    const RECORD_DEPTH: usize = 2;
    let mut j = ws(b, records_at + 1);
    if b.get(j) == Some(&b']') {
        return Ok(());
    }
    loop {
        found.clear();
        let start = j;
        let more = match scan_record(json, j, root, found, RECORD_DEPTH) {
            Ok(end) => {
                j = end;
                row(Record::Scanned(found), &json[start..end])
            }
            Err(Scan::Invalid) => return Err(RowsError::Invalid),
            Err(Scan::Repeated) => {
                let end = strict::value_end(b, j, RECORD_DEPTH)?;
                let record = serde_json::from_str(&json[j..end]).map_err(|_| Invalid)?;
                j = end;
                row(Record::Parsed(record), &json[start..end])
            }
        };
        if !more {
            // The records left out are checked all the same: the page is valid JSON or not.
            strict::value_end(b, records_at, 1)?;
            return Ok(());
        }
        j = ws(b, j);
        match b.get(j) {
            Some(b',') => j = ws(b, j + 1),
            Some(b']') => return Ok(()),
            _ => return Err(RowsError::Invalid),
        }
    }
}

/// A record, the value at `i`, for the column tree `root`, as [`scan_node`] reads it; each
/// key is looked for first where the last record had it, so that a record with many columns
/// (default columns are every scalar of a schema) does not search them all for each field.
fn scan_record<'de>(
    json: &'de str,
    i: usize,
    root: &Node,
    found: &mut Reached<'de>,
    depth: usize,
) -> Result<usize, Scan> {
    let b = json.as_bytes();
    if !root.ends.is_empty() || b.get(i) != Some(&b'{') {
        return scan_node(json, i, root, found, Reach::All, depth);
    }
    scan_object(json, i, root, found, true, depth)
}

/// The object at `i` for the column tree `node`: each field its columns reach is read, the
/// others skipped (and checked). `memo`: look for each key first where the last record had it
/// (for the record itself, not the objects in it).
fn scan_object<'de>(
    json: &'de str,
    i: usize,
    node: &Node,
    found: &mut Reached<'de>,
    memo: bool,
    depth: usize,
) -> Result<usize, Scan> {
    let b = json.as_bytes();
    let inside = enter(depth)?;
    let mut fields = Fields::open(b, i).ok_or(Invalid)?;
    // The keys of this object that reached a child: its first 64 children by bit, the others
    // in `found` under this object's number (taken only when needed).
    let mut reached_low = 0u64;
    let mut object = None;
    let mut position = 0;
    loop {
        let hint = memo.then(|| found.order_hint(position)).flatten();
        // The key the last record had here, matched in place; any other is read and looked up.
        let expected = hint.and_then(|at| Some((at, node.keys.get(at)?)));
        let reached = match expected {
            Some((at, (key, child))) if child.plain_key && fields.next_key_is(key) => {
                Some((at, child))
            }
            _ => match fields.next_key(json)? {
                Some(key) => node.child(&key, hint),
                None => break,
            },
        };
        fields.at = match reached {
            Some((at, child)) => {
                let repeated = match 1u64.checked_shl(at as u32) {
                    Some(bit) => {
                        let before = reached_low;
                        reached_low |= bit;
                        before & bit != 0
                    }
                    None => {
                        let object = *object.get_or_insert_with(|| found.begin_object());
                        !found.first_visit(child.id, object)
                    }
                };
                if repeated {
                    return Err(Scan::Repeated);
                }
                if memo {
                    found.set_order(position, at);
                }
                scan_node(json, fields.at, child, found, Reach::All, inside)?
            }
            None => strict::value_end(b, fields.at, inside)?,
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

/// Reads the value at `i` (inside `depth` containers) for the column tree `node`, adding what
/// the columns reach to `found`; returns the index just past the value.
fn scan_node<'de>(
    json: &'de str,
    i: usize,
    node: &Node,
    found: &mut Reached<'de>,
    reach: Reach,
    depth: usize,
) -> Result<usize, Scan> {
    let b = json.as_bytes();
    if reach == Reach::All && !node.ends.is_empty() {
        return if node.is_leaf() {
            // Columns end here and none goes deeper: the value as it is.
            let (value, end) = leaf(json, i, depth)?;
            if let Some(value) = value {
                found.push_each(&node.ends, value);
            }
            Ok(end)
        } else {
            // A column ends here and others go deeper: the whole value, read by each.
            let end = strict::value_end(b, i, depth)?;
            let value: Value = serde_json::from_str(&json[i..end]).map_err(|_| Invalid)?;
            node.take_whole(value, found);
            Ok(end)
        };
    }
    match b.get(i) {
        Some(b'{') => scan_object(json, i, node, found, false, depth),
        // An index picks an element; a key applies to each element.
        Some(b'[') => {
            let inside = enter(depth)?;
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
                    end = Some(scan_node(json, j, child, found, Reach::All, inside)?);
                }
                if !node.keys.is_empty() {
                    end = Some(scan_node(json, j, node, found, Reach::Keys, inside)?);
                }
                let end = match end {
                    Some(end) => end,
                    None => strict::value_end(b, j, inside)?,
                };
                j = ws(b, end);
                match b.get(j) {
                    Some(b',') => j = ws(b, j + 1),
                    Some(b']') => return Ok(j + 1),
                    _ => return Err(Scan::Invalid),
                }
                index += 1;
            }
        }
        _ => Ok(strict::value_end(b, i, depth)?),
    }
}

/// The value at `i` (inside `depth` containers) as a [`Found`] (`None` for null), and the
/// index just past it.
fn leaf(json: &str, i: usize, depth: usize) -> Result<(Option<Found<'_>>, usize), Invalid> {
    let b = json.as_bytes();
    if b.get(i) == Some(&b'[') {
        enter(depth)?;
        if let Some((items, end)) = plain_strings(json, i)? {
            return Ok((Some(Found::Strs(items)), end));
        }
    }
    match b.get(i).ok_or(Invalid)? {
        b'"' => {
            let (end, escaped) = string_end(b, i)?;
            let text = if escaped {
                Cow::Owned(serde_json::from_str::<String>(&json[i..end]).map_err(|_| Invalid)?)
            } else {
                Cow::Borrowed(&json[i + 1..end - 1])
            };
            Ok((Some(Found::Str(text)), end))
        }
        b't' => Ok((
            Some(Found::Value(Value::Bool(true))),
            strict::literal_end(b, i, b"true")?,
        )),
        b'f' => Ok((
            Some(Found::Value(Value::Bool(false))),
            strict::literal_end(b, i, b"false")?,
        )),
        b'n' => Ok((None, strict::literal_end(b, i, b"null")?)),
        _ => {
            let end = strict::value_end(b, i, depth)?;
            let mut cell = String::new();
            if compact::render(&json[i..end], &mut cell) {
                let json = &json[i..end];
                return Ok((Some(Found::Rendered { json, cell }), end));
            }
            let value: Value = serde_json::from_str(&json[i..end]).map_err(|_| Invalid)?;
            Ok(((!value.is_null()).then_some(Found::Value(value)), end))
        }
    }
}

/// The array that opens at `i` when it holds only strings without escapes (a list of ids,
/// of labels), borrowed, and the index just past it; `None` for any other array (read
/// another way), [`Invalid`] for a string that is not valid.
fn plain_strings(json: &str, i: usize) -> Result<Option<(Vec<&str>, usize)>, Invalid> {
    let b = json.as_bytes();
    let mut items = Vec::new();
    let mut j = ws(b, i + 1);
    if b.get(j) == Some(&b']') {
        return Ok(Some((items, j + 1)));
    }
    loop {
        if b.get(j) != Some(&b'"') {
            return Ok(None);
        }
        let (end, escaped) = string_end(b, j)?;
        if escaped {
            return Ok(None);
        }
        items.push(&json[j + 1..end - 1]);
        j = ws(b, end);
        match b.get(j) {
            Some(b',') => j = ws(b, j + 1),
            Some(b']') => return Ok(Some((items, j + 1))),
            _ => return Ok(None),
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
    /// True, with `at` past the colon, when the next key is `expected` written plainly (the
    /// caller checks that `expected` has no `"`, `\\` or control character); false, nothing
    /// read, otherwise (the caller reads the key with `next_key`).
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
        let plain =
            b.get(i) == Some(&b'"') && b.get(i + 1..end) == Some(key) && b.get(end) == Some(&b'"');
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

    /// The next key (`None` at the closing brace, `at` then just past it), checked.
    fn next_key<'de>(&mut self, json: &'de str) -> Result<Option<Cow<'de, str>>, Invalid> {
        let b = self.b;
        let mut i = ws(b, self.at);
        match (b.get(i).ok_or(Invalid)?, self.first) {
            (b'}', _) => {
                self.at = i + 1;
                return Ok(None);
            }
            (b',', false) => i = ws(b, i + 1),
            (b'"', true) => {}
            _ => return Err(Invalid),
        }
        self.first = false;
        let (end, escaped) = string_end(b, i)?;
        let key = if escaped {
            Cow::Owned(serde_json::from_str::<String>(&json[i..end]).map_err(|_| Invalid)?)
        } else {
            Cow::Borrowed(&json[i + 1..end - 1])
        };
        let colon = ws(b, end);
        if b.get(colon) != Some(&b':') {
            return Err(Invalid);
        }
        self.at = ws(b, colon + 1);
        Ok(Some(key))
    }
}

/// The number of elements of the array that opens at `i`, all of them objects (records), and
/// the index just past it. Only counted: the rows pass checks them.
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
        let outline_of = |page| outline(page, "files").map(|o| (o.fields, o.count));
        let (rest, count) = outline_of(page).unwrap();
        assert_eq!(count, 5);
        let n: Value = serde_json::from_str("-1.5e3").unwrap();
        assert_eq!(
            rest,
            json!({"kind": "x", "nextPageToken": "t\"1", "n": n, "ok": true, "z": null})
        );
        assert_eq!(
            rest["n"].to_string(),
            "-1.5e+3",
            "serde_json's text of the number"
        );
        assert_eq!(outline_of(r#"{"files": []}"#).unwrap().1, 0);
        assert_eq!(outline_of(r#"{"files": null}"#).unwrap().1, 0);
        assert_eq!(outline_of("{}").unwrap(), (json!({}), 0));
        let at = page.find('[').unwrap();
        assert_eq!(outline(page, "files").unwrap().records_at, Some(at));
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
                Ok((end, escaped)),
                "{}",
                String::from_utf8_lossy(&text)
            );
        }
        assert_eq!(string_end(br#""unterminated \""#, 0), Err(Invalid));
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
            r#"{"files": [], "files": []}"#,
            r#"{"x": [1,,2], "files": []}"#,
            "{\"x\": \"raw\u{1}\", \"files\": []}",
            r#"{"x": "\ud800", "files": []}"#,
        ] {
            assert_eq!(outline(bad, "files"), None, "{bad}");
        }
    }
}
