//! Workload identity federation: `external_account` files (a subject token from a file, a
//! URL, an executable or AWS, exchanged at STS, then optionally for a service account's token
//! through IAM Credentials) and `external_account_authorized_user` files (workforce identity).

use std::path::Path;
use std::sync::Arc;

use super::source::TokenSource;

/// The credential of an `external_account` or `external_account_authorized_user` file
/// (`value`, checked JSON of `path`), with its secrets for the redactor; what is wrong with
/// the file otherwise (one line, naming the field, never a value).
pub fn read(
    value: &serde_json::Value,
    _path: &Path,
    _origin: &'static str,
) -> Result<(Arc<dyn TokenSource>, Vec<String>), String> {
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default();
    Err(format!("credentials of type {kind} are not supported yet"))
}
