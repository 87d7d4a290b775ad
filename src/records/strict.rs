//! JSON exactly as serde_json reads it into a `Value` (RFC 8259: strings without raw control
//! characters, valid escapes with paired surrogates, numbers by the grammar, containers nested
//! at most [`MAX_DEPTH`] deep), checked in place on a page's text by the structural scan, so
//! that a page the fast path exports is one serde_json accepts. The scan only needs to know
//! *that* a page is invalid ([`Invalid`]); what is wrong, and where in the page, is what
//! serde_json says when [`page_error`] reads the whole page ([`Strict`]), so every path fails a
//! bad page with the same message.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Containers may nest this deep only by one less: serde_json refuses the 128th nested array
/// or object ("recursion limit exceeded"), and so does every path here.
pub(crate) const MAX_DEPTH: usize = 128;

/// The text is not valid JSON at this point: [`page_error`] says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Invalid;

/// The depth inside a container that opens at `depth` (the containers around it), or
/// [`Invalid`] where serde_json's recursion limit refuses it.
pub(super) fn enter(depth: usize) -> Result<usize, Invalid> {
    let inside = depth + 1;
    if inside >= MAX_DEPTH {
        Err(Invalid)
    } else {
        Ok(inside)
    }
}

/// Skips JSON whitespace (space, tab, line feed, carriage return: nothing else).
#[inline]
pub(super) fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the string that opens at `i` (`b[i]` must be `"`), and whether it has
/// escapes; [`Invalid`] for a raw control character, a bad escape, a lone surrogate or no end.
#[inline]
pub(super) fn string_end(b: &[u8], i: usize) -> Result<(usize, bool), Invalid> {
    if b.get(i) != Some(&b'"') {
        return Err(Invalid);
    }
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        j = special(b, j).ok_or(Invalid)?;
        match b[j] {
            b'"' => return Ok((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j = escape_end(b, j)?;
            }
            _ => return Err(Invalid), // a raw control character
        }
    }
}

/// The index just past the escape whose backslash is at `j`; a `\u` of a leading surrogate must
/// be followed by the `\u` of a trailing one, as serde_json requires of a string.
fn escape_end(b: &[u8], j: usize) -> Result<usize, Invalid> {
    match b.get(j + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(j + 2),
        Some(b'u') => {
            let n = hex4(b, j + 2)?;
            match n {
                0xDC00..=0xDFFF => Err(Invalid),
                0xD800..=0xDBFF => {
                    if b.get(j + 6) != Some(&b'\\') || b.get(j + 7) != Some(&b'u') {
                        return Err(Invalid);
                    }
                    match hex4(b, j + 8)? {
                        0xDC00..=0xDFFF => Ok(j + 12),
                        _ => Err(Invalid),
                    }
                }
                _ => Ok(j + 6),
            }
        }
        _ => Err(Invalid),
    }
}

fn hex4(b: &[u8], at: usize) -> Result<u16, Invalid> {
    let digits = b.get(at..at + 4).ok_or(Invalid)?;
    digits.iter().try_fold(0u16, |n, &c| {
        let digit = (c as char).to_digit(16).ok_or(Invalid)?;
        Ok(n << 4 | digit as u16)
    })
}

/// The index of the first `"`, `\\` or control character (below 0x20) at or after `from`,
/// sixteen bytes at a time (most strings end within the first or second step).
#[cfg(target_arch = "x86_64")]
#[inline]
fn special(b: &[u8], from: usize) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut j = from;
    while let Some(chunk) = b.get(j..j + 16) {
        // SAFETY: SSE2 is part of every x86_64 CPU; the load reads the 16 bytes of `chunk`
        // and needs no alignment.
        let found = unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // v <= 0x1F (unsigned) exactly when min(v, 0x1F) == v.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
        };
        if found != 0 {
            return Some(j + found.trailing_zeros() as usize);
        }
        j += 16;
    }
    special_bytewise(b, j)
}

#[cfg(not(target_arch = "x86_64"))]
fn special(b: &[u8], from: usize) -> Option<usize> {
    special_bytewise(b, from)
}

fn special_bytewise(b: &[u8], from: usize) -> Option<usize> {
    let rest = b.get(from..)?;
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|at| from + at)
}

/// The index just past the number at `i`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
/// What follows it is the caller's to check (a separator or a closing bracket).
pub(super) fn number_end(b: &[u8], i: usize) -> Result<usize, Invalid> {
    let digits = |from: usize| {
        from + b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut j = i + usize::from(b.get(i) == Some(&b'-'));
    match b.get(j) {
        Some(b'0') => j += 1,
        Some(b'1'..=b'9') => j = digits(j),
        _ => return Err(Invalid),
    }
    if b.get(j) == Some(&b'.') {
        let end = digits(j + 1);
        if end == j + 1 {
            return Err(Invalid);
        }
        j = end;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let end = digits(j);
        if end == j {
            return Err(Invalid);
        }
        j = end;
    }
    Ok(j)
}

/// The index just past `word` (`true`, `false`, `null`) at `i`.
pub(super) fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Result<usize, Invalid> {
    if b[i.min(b.len())..].starts_with(word) {
        Ok(i + word.len())
    } else {
        Err(Invalid)
    }
}

/// The index just past the scalar (string, number, literal) at `i`, checked.
pub(super) fn scalar_end(b: &[u8], i: usize) -> Result<usize, Invalid> {
    match b.get(i) {
        Some(b'"') => string_end(b, i).map(|(end, _)| end),
        Some(b't') => literal_end(b, i, b"true"),
        Some(b'f') => literal_end(b, i, b"false"),
        Some(b'n') => literal_end(b, i, b"null"),
        Some(b'-' | b'0'..=b'9') => number_end(b, i),
        _ => Err(Invalid),
    }
}

/// The index just past the value at `i`, every byte of it checked; `depth` is the number of
/// containers around it. Iterative: no input nests the call stack.
pub(super) fn value_end(b: &[u8], i: usize, depth: usize) -> Result<usize, Invalid> {
    if !matches!(b.get(i), Some(b'{' | b'[')) {
        return scalar_end(b, i);
    }
    // Bit k: the container k levels in (from `depth`) is an object. At most 127 are open.
    let mut objects: u128 = 0;
    let mut open = 0usize;
    let mut j = i;
    'value: loop {
        // A value starts at `j`.
        match b.get(j) {
            Some(&c @ (b'{' | b'[')) => {
                enter(depth + open)?;
                let is_object = c == b'{';
                objects = objects & !(1 << open) | (u128::from(is_object) << open);
                open += 1;
                j = ws(b, j + 1);
                let close = if is_object { b'}' } else { b']' };
                if b.get(j) == Some(&close) {
                    open -= 1;
                    j += 1;
                } else {
                    if is_object {
                        j = key_colon(b, j)?;
                    }
                    continue 'value;
                }
            }
            _ => j = scalar_end(b, j)?,
        }
        // After a value: separators and closing brackets, until the next value or the end.
        loop {
            if open == 0 {
                return Ok(j);
            }
            let in_object = objects >> (open - 1) & 1 == 1;
            j = ws(b, j);
            match (b.get(j), in_object) {
                (Some(b','), true) => {
                    j = key_colon(b, ws(b, j + 1))?;
                    continue 'value;
                }
                (Some(b','), false) => {
                    j = ws(b, j + 1);
                    continue 'value;
                }
                (Some(b'}'), true) | (Some(b']'), false) => {
                    open -= 1;
                    j += 1;
                }
                _ => return Err(Invalid),
            }
        }
    }
}

/// A key at `j`, its colon, and the whitespace up to its value.
fn key_colon(b: &[u8], j: usize) -> Result<usize, Invalid> {
    let (end, _) = string_end(b, j)?;
    let colon = ws(b, end);
    if b.get(colon) != Some(&b':') {
        return Err(Invalid);
    }
    Ok(ws(b, colon + 1))
}

/// What serde_json says is wrong with `text`, read as it reads a `Value` (without building
/// one, so that a large bad page costs no memory). A page it accepts, where the scan found
/// fault, is a fault of the scan's: said as such, never exported.
pub(crate) fn page_error(text: &str) -> serde_json::Error {
    match serde_json::from_str::<Strict>(text) {
        Err(err) => err,
        Ok(Strict) => serde::de::Error::custom(
            "gscrape's page scan and serde_json disagree about this page (a bug: please report it)",
        ),
    }
}

/// Any JSON value, read and dropped exactly as `serde_json::Value` reads one: strings are
/// decoded (so lone surrogates are refused, which `IgnoredAny` lets through), and containers
/// count towards the recursion limit.
pub(crate) struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        // (A number serde_json keeps as text arrives as a one-entry map of strings.)
        while map.next_entry::<Strict, Strict>()?.is_some() {}
        Ok(Strict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn agrees(text: &str) {
        let serde = serde_json::from_str::<Value>(text).is_ok();
        let b = text.as_bytes();
        let ours = value_end(b, ws(b, 0), 0).map(|end| ws(b, end) == b.len()) == Ok(true);
        assert_eq!(ours, serde, "{text:?}");
        assert_eq!(
            serde_json::from_str::<Strict>(text).is_ok(),
            serde,
            "Strict: {text:?}"
        );
        if let Err(err) = serde_json::from_str::<Value>(text) {
            assert_eq!(page_error(text).to_string(), err.to_string(), "{text:?}");
        }
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        for text in [
            "{}",
            "[]",
            "1",
            "-0",
            "0.5",
            "1e5",
            "1E+5",
            "-1.5e-3",
            "12345678901234567890123456789",
            "1e400",
            "\"\"",
            "\"a\\u00e9\\ud83d\\ude00\\n\"",
            "true",
            "false",
            "null",
            " [ 1 , { \"a\" : [ ] } ] ",
            "{\"a\":1,\"a\":2}",
            "tru",
            "nul",
            "NaN",
            "Infinity",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "[1}",
            "[1,,2]",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":}",
            "{,}",
            "{\"a\":1,}",
            "\"\\x41\"",
            "\"a\u{1}b\"",
            "\"tab\there\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\ud800x\"",
            "\"\\ud800\\n\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "[1] x",
            "\"open",
            "[\"a\"",
            "{\"a\":1",
            "\u{c}1",
            "[1 2]",
            "{1:2}",
            "[true false]",
            "truex",
            "[-]",
        ] {
            agrees(text);
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [1, 126, 127, 128, 129, 1000] {
            for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
                let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                agrees(&text);
            }
        }
        // A million levels: no stack is used for them.
        let deep = "[".repeat(1_000_000);
        assert_eq!(value_end(deep.as_bytes(), 0, 0), Err(Invalid));
        assert!(page_error(&deep)
            .to_string()
            .starts_with("recursion limit exceeded"));
        // The depth counts from the containers around the value.
        let text = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(value_end(text.as_bytes(), 0, 27).is_ok());
        assert_eq!(value_end(text.as_bytes(), 0, 28), Err(Invalid));
    }

    #[test]
    fn string_ends_are_found_across_sixteen_byte_steps() {
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..5_000 {
            let mut text = String::from("\"");
            for _ in 0..rng.usize(0..48) {
                match rng.u8(0..12) {
                    0 => text.push_str("\\\""),
                    1 => text.push_str("\\\\"),
                    2 => text.push_str("\\ud83d\\ude00"),
                    3 => text.push('é'),
                    4 => text.push('\u{7f}'),
                    5 if rng.u8(0..4) == 0 => text.push('\u{1f}'),
                    _ => text.push(rng.alphanumeric()),
                }
            }
            text.push('"');
            agrees(&text);
        }
    }
}
