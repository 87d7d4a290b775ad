//! Incremental queries (`[incremental]`): each run asks only for what is new since the last
//! successful one. Templates read `{{ since }}`; the greatest value of the query's `cursor`
//! field among the records a successful run wrote is kept under `<out-dir>/.gscrape/cursors/`
//! (written like an output: temp file and rename), and a failed run leaves it where it was.

use std::path::{Path, PathBuf};

/// Where the cursor of query `name` is kept.
fn cursor_file(out_dir: &Path, name: &str) -> PathBuf {
    out_dir
        .join(".gscrape")
        .join("cursors")
        .join(format!("{name}.txt"))
}

/// The cursor the last successful run of `name` kept, if any.
pub fn saved(out_dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(cursor_file(out_dir, name)).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Keeps `value` as the cursor of `name`.
pub fn save(out_dir: &Path, name: &str, value: &str) -> std::io::Result<()> {
    crate::util::write_atomically(&cursor_file(out_dir, name), value.as_bytes())
}

/// True when `candidate` is later than `current`: as instants when both are RFC 3339
/// timestamps, as numbers when both are, else as text.
pub fn is_later(candidate: &str, current: &str) -> bool {
    let time = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    if let (Some(a), Some(b)) = (time(candidate), time(current)) {
        return a > b;
    }
    if let (Ok(a), Ok(b)) = (candidate.parse::<f64>(), current.parse::<f64>()) {
        return a > b;
    }
    candidate > current
}

#[cfg(test)]
mod tests {
    use super::is_later;

    #[test]
    fn later_values() {
        assert!(is_later(
            "2024-03-02T00:00:00Z",
            "2024-03-01T21:00:00-02:00"
        ));
        assert!(!is_later(
            "2024-03-01T22:00:00-02:00",
            "2024-03-02T00:00:00Z"
        ));
        assert!(is_later("10", "9"), "numbers as numbers");
        assert!(is_later("b", "a"));
    }
}
