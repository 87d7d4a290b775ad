//! What gscrape prints besides the data — stderr lines, `-v` logs, the summary (table and
//! JSON) — goes through this module, which keeps two promises.
//!
//! **No secret in use leaves.** The redactor knows every secret value — access and refresh
//! tokens, client secrets, API keys, private-key lines, proxy passwords — because the code that
//! obtains one [`register`]s it, and replaces each with `REDACTED` in every form it travels in:
//! as is, percent-encoded (`%2F` or `%2f`, `+` for a space, encoded twice), JSON-escaped (`\/`,
//! `\u002F`), and base64 or base64url, alone or inside a longer value such as HTTP Basic's
//! `client_id:client_secret`. Servers do echo headers and request bodies in their error
//! messages, in whichever of these forms they received them; this is what keeps those out of
//! logs.
//!
//! **No message quotes more than [`QUOTE_MAX`] characters of input.** A URL, a token, a value,
//! a file's text or a server's words are quoted through [`quote`] (or [`Quoted`], the owned
//! form, for error types that keep what they quote): on one line, redacted, cut with `…` and
//! the full length. As a last guard, a line written to stderr longer than [`LINE_MAX`]
//! characters is cut too, so that a message that quoted input some other way stays a line.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::RwLock;

use base64::Engine;

/// What a secret is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Shorter values are not redacted: they would hit ordinary words, and no real secret is so
/// short.
const MIN_LEN: usize = 8;

/// The most characters of one piece of input that a message quotes.
pub const QUOTE_MAX: usize = 300;

/// The longest line [`to_stderr`] writes: a message quotes a few pieces of input at most.
pub const LINE_MAX: usize = 2000;

/// Every form of every registered secret, longest first.
static SECRETS: RwLock<Vec<Form>> = RwLock::new(Vec::new());

/// One form of a secret.
#[derive(PartialEq, Eq)]
struct Form {
    text: String,
    /// Base64 that ends inside a character: the character that follows (it holds the
    /// secret's last bits) and the padding go with it.
    tail: bool,
}

/// Makes `secret` known: from now on it never appears in what gscrape prints, in any form it
/// travels in. A PEM private key is registered line by line (a server or a message may quote
/// any one of them).
pub fn register(secret: &str) {
    let pem = secret.contains("-----BEGIN");
    let pieces = match pem {
        true => secret.lines().map(str::trim).collect(),
        false => vec![secret.trim()],
    };
    let mut known = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for piece in pieces {
        if piece.len() < MIN_LEN || piece.starts_with("-----") {
            continue;
        }
        let mut forms = vec![Form {
            text: piece.to_owned(),
            tail: false,
        }];
        if !pem {
            forms.extend(base64_forms(piece));
        }
        for form in forms {
            if form.text.len() >= MIN_LEN && !known.contains(&form) {
                known.push(form);
            }
        }
    }
    // Longest first, so that a secret holding another is replaced whole.
    known.sort_by_key(|k| std::cmp::Reverse(k.text.len()));
}

/// The base64 and base64url text of `secret` (and of its form-urlencoded text, which HTTP
/// Basic encodes): at each of the three alignments it can have inside a longer value, the
/// characters that only its bytes decide.
fn base64_forms(secret: &str) -> Vec<Form> {
    let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let mut sources = vec![secret.as_bytes()];
    if encoded != secret {
        sources.push(encoded.as_bytes());
    }
    let mut forms = Vec::new();
    for bytes in sources {
        for offset in 0..3 {
            let mut padded = vec![0; offset];
            padded.extend_from_slice(bytes);
            let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&padded);
            // Character i holds bits 6i..6i+6 of the padded bytes: the secret's are 8·offset
            // up to 8·(offset + len).
            let bits = 8 * (offset + bytes.len());
            let Some(part) = text.get((8 * offset).div_ceil(6)..bits / 6) else {
                continue;
            };
            let tail = bits % 6 != 0;
            for part in [part.to_owned(), part.replace('+', "-").replace('/', "_")] {
                forms.push(Form { text: part, tail });
            }
        }
    }
    forms
}

/// `text` with every registered secret replaced, in whichever form it appears.
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut text = Cow::Borrowed(text);
    for secret in known.iter() {
        let form = secret.text.as_bytes();
        let Some((start, end)) = find(text.as_bytes(), form, 0) else {
            continue;
        };
        let mut out = String::with_capacity(text.len());
        let (mut from, mut found) = (0, Some((start, end)));
        while let Some((start, mut end)) = found {
            if secret.tail {
                end = past_base64_tail(text.as_bytes(), end);
            }
            out.push_str(&text[from..start]);
            out.push_str(REDACTED);
            from = end;
            found = find(text.as_bytes(), form, end);
        }
        out.push_str(&text[from..]);
        text = Cow::Owned(out);
    }
    text
}

/// True when `text` holds a registered secret, in any form.
pub fn holds_secret(text: &str) -> bool {
    let known = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    known
        .iter()
        .any(|secret| find(text.as_bytes(), secret.text.as_bytes(), 0).is_some())
}

/// Past the base64 character at `at` (when there is one) and the padding after it.
fn past_base64_tail(text: &[u8], mut at: usize) -> usize {
    let base64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
    if text.get(at).copied().is_some_and(base64) {
        at += 1;
    }
    for _ in 0..2 {
        if text.get(at) == Some(&b'=') {
            at += 1;
        }
    }
    at
}

/// The first place at or after `from` where `text` carries `secret`: each of its bytes as is,
/// percent-encoded, `+` for a space, or JSON-escaped (see [`carried`]).
fn find(text: &[u8], secret: &[u8], from: usize) -> Option<(usize, usize)> {
    let first = *secret.first()?;
    let mut at = from;
    while let Some(offset) = memchr::memchr3(first, b'%', b'\\', text.get(at..)?) {
        let start = at + offset;
        if let Some(end) = carries(text, start, secret) {
            // Matches start and end on whole characters (UTF-8 text); anything else is not
            // the secret.
            if std::str::from_utf8(&text[start..end]).is_ok() {
                return Some((start, end));
            }
        }
        at = start + 1;
    }
    None
}

/// Where the text at `at` ends if it carries `secret`.
fn carries(text: &[u8], mut at: usize, secret: &[u8]) -> Option<usize> {
    for (i, &byte) in secret.iter().enumerate() {
        match carried(text, at, byte) {
            (Some(raw), Some(encoded)) => {
                // Both readings fit (a `%` or `\` in the secret itself): try the other first.
                if let Some(end) = carries(text, encoded, &secret[i + 1..]) {
                    return Some(end);
                }
                at = raw;
            }
            (Some(end), None) | (None, Some(end)) => at = end,
            (None, None) => return None,
        }
    }
    Some(at)
}

/// Where the text at `at` ends if it carries `byte`: as is, and encoded — `%2F` in either
/// case (also encoded twice, `%252F`), `+` for a space, or a JSON escape (`\/`, `\"`,
/// `\u002F`) behind any number of backslashes (JSON in JSON).
fn carried(text: &[u8], at: usize, byte: u8) -> (Option<usize>, Option<usize>) {
    let raw = (text.get(at) == Some(&byte)).then_some(at + 1);
    let encoded = match text.get(at) {
        Some(b'%') => {
            let mut hex = at + 1;
            loop {
                match hex_value(text.get(hex..hex + 2)) {
                    Some(value) if value == u32::from(byte) => break Some(hex + 2),
                    Some(0x25) => hex += 2,
                    _ => break None,
                }
            }
        }
        Some(b'+') if byte == b' ' => Some(at + 1),
        Some(b'\\') => {
            let mut escaped = at;
            while text.get(escaped) == Some(&b'\\') {
                escaped += 1;
            }
            match text.get(escaped) {
                Some(&c) if c == byte && matches!(byte, b'/' | b'"') => Some(escaped + 1),
                Some(b'u') if byte.is_ascii() => hex_value(text.get(escaped + 1..escaped + 5))
                    .filter(|&value| value == u32::from(byte))
                    .map(|_| escaped + 5),
                _ => None,
            }
        }
        _ => None,
    };
    (raw, encoded)
}

/// The value of hexadecimal digits (either case).
fn hex_value(digits: Option<&[u8]>) -> Option<u32> {
    let digits = std::str::from_utf8(digits?).ok()?;
    match digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => u32::from_str_radix(digits, 16).ok(),
        false => None,
    }
}

/// The longest registered form of a secret, in bytes.
fn longest_secret() -> usize {
    let known = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    known.first().map_or(0, |form| form.text.len())
}

/// Input quoted in a message, the one way every message quotes it: see [`Quoted`].
pub fn quote(text: &str) -> Quote<'_> {
    Quote {
        text,
        max: QUOTE_MAX,
    }
}

/// A piece of input (a URL, a token, a value, a file's text, a server's words) as a message
/// shows it: on one line (control characters become spaces), with its secrets redacted, and
/// at most [`QUOTE_MAX`] characters — a longer text is cut, and an ellipsis and its full
/// length say so: `abc…(1048576 bytes)`. `{}` shows it bare, `{:?}` in quotes
/// (`"abc"…(1048576 bytes)`).
#[derive(Clone, Copy)]
pub struct Quote<'a> {
    text: &'a str,
    max: usize,
}

impl Quote<'_> {
    /// The text shown, and the full length when it is cut.
    fn shown(&self) -> (String, Option<usize>) {
        let text = self.text;
        let head = text
            .char_indices()
            .nth(self.max)
            .map_or(text.len(), |(at, _)| at);
        // Room after the head for any secret that starts in it (encoded, a secret's byte
        // takes at most a few), so that no cut leaves part of one unredacted.
        let mut window = text.len().min(head + 8 * longest_secret() + 8);
        while !text.is_char_boundary(window) {
            window -= 1;
        }
        let redacted = redact(&text[..window]);
        let mut shown = String::with_capacity(head.min(redacted.len()));
        let mut chars = redacted.chars();
        for c in chars.by_ref().take(self.max) {
            shown.push(if c.is_control() { ' ' } else { c });
        }
        let cut = chars.next().is_some() || window < text.len();
        (shown, cut.then_some(text.len()))
    }
}

impl fmt::Display for Quote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shown() {
            (shown, None) => f.write_str(&shown),
            (shown, Some(len)) => write!(f, "{shown}…({len} bytes)"),
        }
    }
}

impl fmt::Debug for Quote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shown() {
            (shown, None) => write!(f, "{shown:?}"),
            (shown, Some(len)) => write!(f, "{shown:?}…({len} bytes)"),
        }
    }
}

/// Input kept by an error to quote in its message: displays as [`quote`] shows it, so that a
/// field of this type cannot be printed whole. (The text itself stays whole, for code.)
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Quoted(pub String);

impl Quoted {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Quoted {
    fn from(text: String) -> Self {
        Quoted(text)
    }
}

impl From<&str> for Quoted {
    fn from(text: &str) -> Self {
        Quoted(text.to_owned())
    }
}

impl fmt::Display for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&quote(&self.0), f)
    }
}

impl fmt::Debug for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&quote(&self.0), f)
    }
}

/// `text` as [`quote`] shows it, at most `max` characters (and never more than
/// [`QUOTE_MAX`]). Prefer [`quote`]: one length for every message.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    let quoted = Quote {
        text,
        max: max.min(QUOTE_MAX),
    };
    match quoted.shown() {
        (shown, None) if shown == text => Cow::Borrowed(text),
        (shown, None) => Cow::Owned(shown),
        (shown, Some(len)) => Cow::Owned(format!("{shown}…({len} bytes)")),
    }
}

/// `text` redacted, each line at most [`LINE_MAX`] characters: a longer one keeps its start
/// and its end, and says how long it was (`…(1048576 bytes)…`).
pub fn for_display(text: &str) -> Cow<'_, str> {
    let text = redact(text);
    if !text.lines().any(|line| line.len() > LINE_MAX) {
        return text;
    }
    let mut out = String::with_capacity(text.len().min(4 * LINE_MAX));
    for piece in text.split_inclusive('\n') {
        let line = piece.trim_end_matches('\n');
        let chars = line.chars().count();
        if chars <= LINE_MAX {
            out.push_str(piece);
            continue;
        }
        let head = LINE_MAX * 3 / 4;
        let tail = LINE_MAX / 5;
        out.extend(line.chars().take(head));
        out.push_str(&format!("…({} bytes)…", line.len()));
        out.extend(line.chars().skip(chars - tail));
        out.push_str(&piece[line.len()..]);
    }
    Cow::Owned(out)
}

/// Writes `text` to stderr, redacted and each line cut to [`LINE_MAX`] characters. A closed or
/// full stderr is ignored: there is nowhere left to say so, and a message must never panic.
pub fn to_stderr(text: &str) {
    let text = for_display(text);
    let _ = match crate::log_format::json() {
        true => std::io::stderr()
            .lock()
            .write_all(crate::log_format::lines(&text).as_bytes()),
        false => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// `text` as JSON log lines (`--log-format json`) to stderr, whatever the process's format.
pub fn to_stderr_json(text: &str) {
    let text = for_display(text);
    let _ = std::io::stderr()
        .lock()
        .write_all(crate::log_format::lines(&text).as_bytes());
}

/// One JSON log line (`--log-format json`) with `severity`, `message` (redacted) and `key`'s
/// value (redacted as text), written to stderr.
pub fn json_to_stderr(severity: &str, message: &str, key: &str, value: &serde_json::Value) {
    let value = redact(&value.to_string()).into_owned();
    let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
    let line = crate::log_format::line(severity, &redact(message), Some((key, value)));
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `eprintln!`, redacted and never panicking.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::redact::to_stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// A writer for `tracing`: one event's text, written to stderr redacted when dropped.
#[derive(Default)]
pub struct StderrEvent(Vec<u8>);

impl Write for StderrEvent {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrEvent {
    fn drop(&mut self) {
        to_stderr(&String::from_utf8_lossy(&self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_replaced() {
        register("ya29.unit-test-token-abc");
        register("short");
        register(
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASC\n-----END PRIVATE KEY-----\n",
        );
        assert_eq!(
            redact("Bearer ya29.unit-test-token-abc; short; MIIEvQIBADANBgkqhkiG9w0B"),
            "Bearer REDACTED; short; REDACTED"
        );
        assert!(holds_secret("x AQEFAASC y"));
        assert!(!holds_secret("-----BEGIN PRIVATE KEY-----"));
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn every_form_of_a_secret_is_replaced() {
        let refresh = "1//0unit-abc/def+ghi=";
        let secret = "unit-se/cr+et with space";
        register(refresh);
        register(secret);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for form in [
            "1%2F%2F0unit-abc%2Fdef%2Bghi%3D".to_owned(),
            "1%2f%2f0unit-abc%2fdef%2bghi%3d".to_owned(),
            "1%252F%252F0unit-abc%252Fdef%252Bghi%253D".to_owned(),
            "1\\/\\/0unit-abc\\/def+ghi=".to_owned(),
            "1\\\\/\\\\/0unit-abc\\\\/def+ghi=".to_owned(),
            "1\\u002F\\u002f0unit\\u002Dabc\\u002fdef\\u002Bghi\\u003d".to_owned(),
            "unit-se%2Fcr%2Bet+with+space".to_owned(),
            "unit-se%2Fcr%2Bet%20with%20space".to_owned(),
            b64(refresh),
            b64url(refresh),
            b64(secret),
        ] {
            let text = format!("before {form} after");
            assert_eq!(redact(&text), "before REDACTED after", "{form}");
            assert!(holds_secret(&text), "{form}");
        }
        // Inside a longer base64 value, at any alignment: HTTP Basic of `id:secret`.
        for id in ["a", "ab", "abc"] {
            let basic = b64(&format!("{id}:{secret}"));
            let redacted = redact(&basic);
            assert!(redacted.contains(REDACTED), "{id}: {redacted}");
            // What is left: the id's characters, and a few that hold bits of both.
            let id_chars = (id.len() + 1).div_ceil(3) * 4;
            assert!(
                redacted.len() <= id_chars + REDACTED.len(),
                "{id}: {redacted}"
            );
            assert!(redacted.ends_with(REDACTED), "{id}: {redacted}");
        }
        assert!(!holds_secret("1//0unit-abc/def+gh"));
        assert_eq!(redact("100% sure \\ not"), "100% sure \\ not");
    }

    #[test]
    fn quotes_are_short_single_lines() {
        assert_eq!(quote("abc").to_string(), "abc");
        assert_eq!(format!("{:?}", quote("a\"b")), "\"a\\\"b\"");
        let long = "x".repeat(1 << 20);
        let shown = quote(&long).to_string();
        assert_eq!(shown, format!("{}…(1048576 bytes)", "x".repeat(QUOTE_MAX)));
        assert_eq!(
            format!("{:?}", quote(&long)),
            format!("\"{}\"…(1048576 bytes)", "x".repeat(QUOTE_MAX))
        );
        assert_eq!(quote("two\nlines\r\n").to_string(), "two lines  ");
        assert_eq!(
            format!("{}", Quoted::from("x".repeat(301))).chars().count(),
            312
        );
    }

    #[test]
    fn a_cut_never_leaves_part_of_a_secret() {
        register("unit-cut-secret-0123456789");
        let text = format!(
            "{}unit-cut-secret-0123456789 and more",
            "y".repeat(QUOTE_MAX - 5)
        );
        let shown = quote(&text).to_string();
        assert!(!shown.contains("unit-"), "{shown}");
        assert!(shown.ends_with("REDAC…(330 bytes)"), "{shown}");
    }

    #[test]
    fn shortening_counts_characters() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…(4 bytes)");
        assert_eq!(shorten("ünïcode", 2), "ün…(9 bytes)");
        assert_eq!(shorten(&"z".repeat(600), 500).chars().count(), 300 + 12);
    }

    #[test]
    fn long_lines_are_cut_for_display() {
        let line = "w".repeat(5000);
        let shown = for_display(&format!("short\n{line}\nend\n")).into_owned();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "short");
        assert!(lines[1].chars().count() <= LINE_MAX, "{}", lines[1].len());
        assert!(lines[1].contains("…(5000 bytes)…"));
        assert_eq!(lines[2], "end");
        assert!(shown.ends_with('\n'));
    }
}
