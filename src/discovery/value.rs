//! What a Discovery document says a value must look like: its `format` (`date`, `int64`,
//! `google-duration`, ...) and its `pattern`, each with the form and an example to show.
//!
//! Discovery patterns are RE2/JavaScript-style expressions. They are parsed by
//! `regex-syntax` and matched here by a small backtracking matcher over the bytes (values
//! are short, and a step budget bounds the work). A pattern that does not parse, or uses
//! what this matcher does not know, is skipped: it never makes a value wrong.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// `Err` with the expected form and an example when `text` is not of `format`; formats
/// gscrape does not know pass.
pub fn check_format(format: &str, text: &str) -> Result<(), String> {
    let ok = match format {
        "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() && text.len() == 10,
        "date-time" | "google-datetime" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "int64" | "int32" => match text.parse::<i64>() {
            Ok(n) => format == "int64" || i32::try_from(n).is_ok(),
            Err(_) => false,
        },
        "uint64" | "uint32" => match text.parse::<u64>() {
            Ok(n) => format == "uint64" || u32::try_from(n).is_ok(),
            Err(_) => false,
        },
        "google-duration" => is_duration(text),
        "google-fieldmask" => is_field_mask(text),
        "byte" => is_base64(text),
        _ => true,
    };
    match ok {
        true => Ok(()),
        false => Err(format!(
            "expected {}, found {:?}",
            format_form(format).unwrap_or("a valid value"),
            crate::redact::shorten(text, 60)
        )),
    }
}

/// The expected form of a format, with an example, for messages.
pub fn format_form(format: &str) -> Option<&'static str> {
    Some(match format {
        "date" => "a date YYYY-MM-DD such as \"2025-01-31\"",
        "date-time" | "google-datetime" => {
            "a date-time (RFC 3339) such as \"2025-01-01T00:00:00Z\""
        }
        "int64" => "an integer such as \"42\"",
        "int32" => "a 32-bit integer such as \"42\"",
        "uint64" => "a non-negative integer such as \"42\"",
        "uint32" => "a non-negative 32-bit integer such as \"42\"",
        "google-duration" => "a duration in seconds such as \"3.5s\"",
        "google-fieldmask" => "a field mask such as \"name,owner.email\"",
        "byte" => "base64 text such as \"aGVsbG8=\"",
        _ => return None,
    })
}

/// An example value of a format, for scaffolds and messages.
pub fn format_example(format: &str) -> Option<&'static str> {
    Some(match format {
        "date" => "2025-01-31",
        "date-time" | "google-datetime" => "2025-01-01T00:00:00Z",
        "int64" | "int32" | "uint64" | "uint32" => "42",
        "google-duration" => "3.5s",
        "google-fieldmask" => "name,owner.email",
        "byte" => "aGVsbG8=",
        _ => return None,
    })
}

/// `3s`, `-1.5s`, `0.000000001s`.
fn is_duration(text: &str) -> bool {
    let Some(number) = text.strip_suffix('s') else {
        return false;
    };
    let number = number.strip_prefix('-').unwrap_or(number);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction) && fraction.len() <= 9
}

/// Comma-separated dotted paths of field names (`*` allowed as a segment).
fn is_field_mask(text: &str) -> bool {
    !text.is_empty()
        && text.split(',').all(|path| {
            path.trim().split('.').all(|segment| {
                segment == "*"
                    || (!segment.is_empty()
                        && segment
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'`'))
            })
        })
}

fn is_base64(text: &str) -> bool {
    use base64::Engine;
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().any(|e| e.decode(text).is_ok())
}

/// `Err` with the pattern and an example when `text` does not match `pattern`; a pattern
/// this module cannot read passes every value.
pub fn check_pattern(pattern: &str, text: &str) -> Result<(), String> {
    let Some(compiled) = compiled(pattern) else {
        return Ok(());
    };
    if compiled.matches(text.as_bytes()) != Some(false) {
        return Ok(());
    }
    let shown = crate::redact::shorten(text, 60);
    // The value with the pattern's fixed start (`properties/`) before it, if that fits.
    let prefix = compiled.literal_prefix();
    if !prefix.is_empty() && !text.starts_with(&prefix) {
        let fixed = format!("{prefix}{text}");
        if compiled.matches(fixed.as_bytes()) == Some(true) {
            return Err(format!(
                "{shown:?} does not match the pattern {pattern}; did you mean {fixed:?}?"
            ));
        }
    }
    match compiled.example() {
        Some(example) => Err(format!(
            "{shown:?} does not match the pattern {pattern} (a value such as {example:?})"
        )),
        None => Err(format!("{shown:?} does not match the pattern {pattern}")),
    }
}

/// An example value of a pattern (`^properties/[^/]+$` → `properties/1`), when it has one.
pub fn pattern_example(pattern: &str) -> Option<String> {
    compiled(pattern)?.example()
}

/// The form a pattern asks for with `placeholder` in each part that varies
/// (`^properties/[^/]+$` → `properties/REPLACE_ME`); `None` for a pattern with no fixed text.
pub fn pattern_placeholder(pattern: &str, placeholder: &str) -> Option<String> {
    let compiled = compiled(pattern)?;
    let items: Vec<&Hir> = match compiled.hir.kind() {
        HirKind::Concat(items) => items.iter().collect(),
        _ => vec![&compiled.hir],
    };
    let mut out = String::new();
    let mut fixed = false;
    for item in items {
        match item.kind() {
            HirKind::Look(_) | HirKind::Empty => {}
            HirKind::Literal(lit) => {
                out.push_str(std::str::from_utf8(&lit.0).ok()?);
                fixed = true;
            }
            _ if out.ends_with(placeholder) => {}
            _ => out.push_str(placeholder),
        }
    }
    fixed.then_some(out)
}

/// A parsed pattern, compiled once per process.
fn compiled(pattern: &str) -> Option<Arc<Pattern>> {
    static CACHE: Mutex<Option<HashMap<String, Option<Arc<Pattern>>>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    cache
        .entry(pattern.to_owned())
        .or_insert_with(|| Pattern::parse(pattern).map(Arc::new))
        .clone()
}

/// A pattern ready to match.
#[derive(Debug)]
struct Pattern {
    hir: Hir,
}

/// How many steps one match may take before it gives up (and the value passes).
const STEP_BUDGET: usize = 200_000;

impl Pattern {
    fn parse(pattern: &str) -> Option<Pattern> {
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .ok()?;
        supported(&hir).then_some(Pattern { hir })
    }

    /// Whether the pattern is found in `input` (as JavaScript's `test`); `None` when the
    /// step budget ran out.
    fn matches(&self, input: &[u8]) -> Option<bool> {
        let mut steps = 0;
        for start in 0..=input.len() {
            let mut m = Matcher {
                input,
                steps: &mut steps,
            };
            if m.at(&self.hir, start, &mut |_, _| true) {
                return Some(true);
            }
            if steps > STEP_BUDGET {
                return None;
            }
        }
        Some(false)
    }

    /// The fixed text an anchored pattern starts with (`^properties/` → `properties/`).
    fn literal_prefix(&self) -> String {
        let items: Vec<&Hir> = match self.hir.kind() {
            HirKind::Concat(items) => items.iter().collect(),
            _ => vec![&self.hir],
        };
        let mut prefix = Vec::new();
        let mut anchored = false;
        for item in items {
            match item.kind() {
                HirKind::Look(Look::Start) if prefix.is_empty() => anchored = true,
                HirKind::Literal(lit) if anchored => prefix.extend_from_slice(&lit.0),
                _ => break,
            }
        }
        String::from_utf8(prefix).unwrap_or_default()
    }

    fn example(&self) -> Option<String> {
        let mut out = Vec::new();
        example_of(&self.hir, &mut out);
        let text = String::from_utf8(out).ok()?;
        (self.matches(text.as_bytes()) == Some(true)).then_some(text)
    }
}

/// Every look-around the matcher knows; word boundaries are not needed by Discovery.
fn supported(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Look(look) => matches!(
            look,
            Look::Start | Look::End | Look::StartLF | Look::EndLF | Look::StartCRLF | Look::EndCRLF
        ),
        HirKind::Repetition(rep) => supported(&rep.sub),
        HirKind::Capture(cap) => supported(&cap.sub),
        HirKind::Concat(items) | HirKind::Alternation(items) => items.iter().all(supported),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => true,
    }
}

fn example_of(hir: &Hir, out: &mut Vec<u8>) {
    match hir.kind() {
        HirKind::Literal(lit) => out.extend_from_slice(&lit.0),
        HirKind::Class(class) => {
            let fits = |b: u8| class_has(class, b);
            if let Some(b) = [b'1', b'a', b'A', b'-', b'_']
                .into_iter()
                .chain(0x21..0x7f)
                .find(|&b| fits(b))
            {
                out.push(b);
            }
        }
        HirKind::Repetition(rep) => {
            for _ in 0..rep.min.clamp(1, 64) {
                example_of(&rep.sub, out);
            }
        }
        HirKind::Capture(cap) => example_of(&cap.sub, out),
        HirKind::Concat(items) => items.iter().for_each(|h| example_of(h, out)),
        HirKind::Alternation(items) => {
            if let Some(first) = items.first() {
                example_of(first, out);
            }
        }
        HirKind::Empty | HirKind::Look(_) => {}
    }
}

fn class_has(class: &Class, byte: u8) -> bool {
    match class {
        Class::Bytes(bytes) => bytes
            .ranges()
            .iter()
            .any(|r| r.start() <= byte && byte <= r.end()),
        Class::Unicode(chars) => chars
            .ranges()
            .iter()
            .any(|r| r.start() <= byte as char && byte as char <= r.end()),
    }
}

struct Matcher<'a> {
    input: &'a [u8],
    steps: &'a mut usize,
}

type Next<'n> = dyn FnMut(&mut Matcher<'_>, usize) -> bool + 'n;

impl Matcher<'_> {
    /// Whether `hir` matches at `pos` with `next` matching what follows.
    fn at(&mut self, hir: &Hir, pos: usize, next: &mut Next<'_>) -> bool {
        *self.steps += 1;
        if *self.steps > STEP_BUDGET {
            return false;
        }
        let input = self.input;
        match hir.kind() {
            HirKind::Empty => next(self, pos),
            HirKind::Literal(lit) => {
                input[pos..].starts_with(&lit.0) && next(self, pos + lit.0.len())
            }
            HirKind::Class(class) => match class {
                Class::Bytes(_) => {
                    pos < input.len() && class_has(class, input[pos]) && next(self, pos + 1)
                }
                Class::Unicode(chars) => {
                    let Some(c) = std::str::from_utf8(&input[pos..])
                        .ok()
                        .and_then(|s| s.chars().next())
                        .or_else(|| {
                            let end = (pos + 4).min(input.len());
                            (pos + 1..=end).find_map(|e| {
                                std::str::from_utf8(&input[pos..e]).ok()?.chars().next()
                            })
                        })
                    else {
                        return false;
                    };
                    chars
                        .ranges()
                        .iter()
                        .any(|r| r.start() <= c && c <= r.end())
                        && next(self, pos + c.len_utf8())
                }
            },
            HirKind::Look(look) => {
                let fits = match look {
                    Look::Start => pos == 0,
                    Look::End => pos == input.len(),
                    Look::StartLF | Look::StartCRLF => {
                        pos == 0 || matches!(input[pos - 1], b'\n' | b'\r')
                    }
                    Look::EndLF | Look::EndCRLF => {
                        pos == input.len() || matches!(input[pos], b'\n' | b'\r')
                    }
                    _ => true,
                };
                fits && next(self, pos)
            }
            HirKind::Capture(cap) => self.at(&cap.sub, pos, next),
            HirKind::Concat(items) => self.concat(items, pos, next),
            HirKind::Alternation(items) => items.iter().any(|item| self.at(item, pos, next)),
            HirKind::Repetition(rep) => self.repeat(rep, 0, pos, next),
        }
    }

    fn concat(&mut self, items: &[Hir], pos: usize, next: &mut Next<'_>) -> bool {
        match items.split_first() {
            None => next(self, pos),
            Some((first, rest)) => self.at(first, pos, &mut |m: &mut Matcher<'_>, p| {
                m.concat(rest, p, next)
            }),
        }
    }

    fn repeat(
        &mut self,
        rep: &regex_syntax::hir::Repetition,
        count: u32,
        pos: usize,
        next: &mut Next<'_>,
    ) -> bool {
        let enough = count >= rep.min;
        let more = rep.max.is_none_or(|max| count < max);
        let again = |m: &mut Matcher<'_>, next: &mut Next<'_>| {
            more && m.at(&rep.sub, pos, &mut |m: &mut Matcher<'_>, p| {
                // An empty repetition once the minimum is met would loop for ever.
                (p != pos || !enough) && m.repeat(rep, count + 1, p, next)
            })
        };
        // Only whether it matches is asked, so lazy and greedy repetitions try in one order.
        again(self, next) || (enough && next(self, pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fits(pattern: &str, text: &str) -> bool {
        compiled(pattern).unwrap().matches(text.as_bytes()).unwrap()
    }

    #[test]
    fn discovery_patterns_match_as_javascript_would() {
        assert!(fits("^properties/[^/]+$", "properties/123"));
        assert!(!fits("^properties/[^/]+$", "123456789"));
        assert!(!fits("^properties/[^/]+$", "properties/1/x"));
        assert!(fits("^[^/]+$", "abc"));
        assert!(fits(
            "^projects/[^/]+/datasets/[^/]+$",
            "projects/p/datasets/d"
        ));
        assert!(fits("[a-z]+", "12ab"));
        assert!(!fits("^(a|b)*c$", "ababd"));
        assert!(fits("^(a|b)*?c$", "ababc"));
        assert!(fits("^\\d{4}-\\d{2}$", "2025-01"));
        assert!(!fits("^\\d{4}-\\d{2}$", "2025-1"));
        assert!(fits("^.*$", "héllo"));
    }

    #[test]
    fn a_value_missing_the_fixed_start_is_shown_with_it() {
        assert_eq!(
            check_pattern("^properties/[^/]+$", "123456789").unwrap_err(),
            "\"123456789\" does not match the pattern ^properties/[^/]+$; \
             did you mean \"properties/123456789\"?"
        );
        assert_eq!(
            pattern_example("^properties/[^/]+$").as_deref(),
            Some("properties/1")
        );
        assert!(check_pattern("(?<bad", "x").is_ok());
    }

    #[test]
    fn formats_say_the_form_they_expect() {
        assert!(check_format("date", "2025-01-31").is_ok());
        assert!(check_format("date", "03/31/2024").is_err());
        assert!(check_format("date-time", "2025-01-01T00:00:00Z").is_ok());
        assert_eq!(
            check_format("date-time", "2025-01-01").unwrap_err(),
            "expected a date-time (RFC 3339) such as \"2025-01-01T00:00:00Z\", found \"2025-01-01\""
        );
        assert!(check_format("int64", "-12").is_ok());
        assert!(check_format("uint64", "-12").is_err());
        assert!(check_format("int32", "3000000000").is_err());
        assert!(check_format("google-duration", "3.5s").is_ok());
        assert!(check_format("google-duration", "3 s").is_err());
        assert!(check_format("google-fieldmask", "name,owner.email").is_ok());
        assert!(check_format("google-fieldmask", "name owner").is_err());
        assert!(check_format("byte", "aGVsbG8=").is_ok());
        assert!(check_format("byte", "not base64!").is_err());
        assert!(check_format("something-new", "x").is_ok());
    }
}
