//! One redactor for everything gscrape prints or writes besides the data: stderr lines, `-v`
//! logs, the summary (table and JSON). It knows every secret value in use — access and
//! refresh tokens, client secrets, API keys, private-key lines, proxy passwords — because the
//! code that obtains one registers it, and replaces each with `REDACTED`. Servers do echo
//! headers and request bodies in their error messages; this is what keeps those out of logs.

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Shorter values are not redacted: they would hit ordinary words, and no real secret is so
/// short.
const MIN_LEN: usize = 8;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Makes `secret` known: from now on it never appears in what gscrape prints. A PEM private
/// key is registered line by line (a server or a message may quote any one of them).
pub fn register(secret: &str) {
    let mut known = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    let pieces = match secret.contains("-----BEGIN") {
        true => secret.lines().map(str::trim).collect(),
        false => vec![secret.trim()],
    };
    for piece in pieces {
        if piece.len() >= MIN_LEN
            && !piece.starts_with("-----")
            && !known.iter().any(|k| k == piece)
        {
            known.push(piece.to_owned());
        }
    }
    // Longest first, so that a secret holding another is replaced whole.
    known.sort_by_key(|k| std::cmp::Reverse(k.len()));
}

/// `text` with every registered secret replaced.
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut text = Cow::Borrowed(text);
    for secret in known.iter() {
        if text.contains(secret.as_str()) {
            text = Cow::Owned(text.replace(secret.as_str(), REDACTED));
        }
    }
    text
}

/// `text` cut to at most `max` characters (an ellipsis says so): a URL, a token or a server's
/// message quoted in one line of a message stays readable.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
        None => Cow::Borrowed(text),
    }
}

/// True when `text` holds a registered secret.
pub fn holds_secret(text: &str) -> bool {
    let known = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    known.iter().any(|secret| text.contains(secret.as_str()))
}

/// Writes `text` to stderr, redacted. A closed or full stderr is ignored: there is nowhere
/// left to say so, and a message must never panic.
pub fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(redact(text).as_bytes());
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
    fn shortening_counts_characters() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc…");
        assert_eq!(shorten("ünïcode", 2), "ün…");
    }
}
