//! OAuth scopes: the least-privilege scope of each method, and whether granted scopes cover the
//! methods a run calls.

use crate::discovery::Method;

/// The least-privilege scope of a method: the read-only variant of a scope the method lists
/// (`drive.readonly` beside `drive`), else any read-only scope (`.readonly`, `.read-only`),
/// else the first listed.
/// Among equals, the shortest (broadest read) wins, so `drive.meet.readonly` is not chosen
/// for Drive files.
pub fn least_privilege(scopes: &[String]) -> Option<&str> {
    let readonly: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|s| crate::discovery::is_read_only_scope(s))
        .collect();
    let paired: Vec<&str> = readonly
        .iter()
        .copied()
        .filter(|s| {
            let base = s
                .trim_end_matches(".readonly")
                .trim_end_matches(".read-only");
            scopes.iter().any(|other| other == base)
        })
        .collect();
    fn shortest<'s>(list: &[&'s str]) -> Option<&'s str> {
        list.iter().copied().min_by_key(|s| (s.len(), *s))
    }
    shortest(&paired)
        .or_else(|| shortest(&readonly))
        .or_else(|| scopes.first().map(String::as_str))
}

/// The scopes to ask for so that every method can be called: the least-privilege scope of each
/// method that does not already accept one of the chosen.
pub fn scopes_for<'a>(methods: impl IntoIterator<Item = &'a Method>) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for method in methods {
        if method.scopes.iter().any(|s| chosen.contains(s)) {
            continue;
        }
        if let Some(scope) = least_privilege(&method.scopes) {
            chosen.push(scope.to_owned());
        }
    }
    chosen.sort();
    chosen
}

/// The scope that lets a run write a Google Sheet (`[sheet]`). Asked for only by runs and
/// logins whose queries write one: a read-only export never holds write access.
pub const SHEETS_WRITE: &str = "https://www.googleapis.com/auth/spreadsheets";

/// The scope that lets a run load a BigQuery table (`[bigquery]`: a load job and the table it
/// writes). Asked for as [`SHEETS_WRITE`] is: only when a query loads one.
pub const BIGQUERY_WRITE: &str = "https://www.googleapis.com/auth/bigquery";

/// The scopes of [`scopes_for`], plus those gscrape's own destinations write with
/// (`destinations`: [`SHEETS_WRITE`], [`BIGQUERY_WRITE`], from
/// [`Query::destination_scopes`](crate::query::Query::destination_scopes)).
pub fn with_destinations<'a>(
    mut scopes: Vec<String>,
    destinations: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    for scope in destinations {
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes.sort();
    scopes
}

/// True when one of the scopes `granted` lets `method` be called.
pub fn covers(granted: &[String], method: &Method) -> bool {
    method.scopes.is_empty() || method.scopes.iter().any(|s| granted.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(scopes: &[&str]) -> Vec<String> {
        scopes
            .iter()
            .map(|s| format!("https://www.googleapis.com/auth/{s}"))
            .collect()
    }

    #[test]
    fn destinations_add_their_write_scopes_once() {
        let read = list(&["drive.readonly"]);
        assert_eq!(with_destinations(read.clone(), []), read);
        let both = with_destinations(read.clone(), [BIGQUERY_WRITE, SHEETS_WRITE, BIGQUERY_WRITE]);
        assert_eq!(both, list(&["bigquery", "drive.readonly", "spreadsheets"]));
        let text = "api = \"drive\"\nversion = \"v3\"\nmethod = \"drive.files.list\"\n";
        let parse = |extra: &str| {
            crate::query::parse(std::path::Path::new("q.toml"), &format!("{text}{extra}")).unwrap()
        };
        assert!(parse("").destination_scopes().is_empty());
        assert_eq!(
            parse("[bigquery]\ntable = \"my-project.d.t\"\n").destination_scopes(),
            [BIGQUERY_WRITE]
        );
    }

    #[test]
    fn picks_the_read_only_variant() {
        let drive = list(&[
            "drive",
            "drive.appdata",
            "drive.file",
            "drive.meet.readonly",
            "drive.metadata",
            "drive.metadata.readonly",
            "drive.photos.readonly",
            "drive.readonly",
        ]);
        assert_eq!(
            least_privilege(&drive),
            Some("https://www.googleapis.com/auth/drive.readonly")
        );
        let gmail = [
            "https://mail.google.com/".to_owned(),
            "https://www.googleapis.com/auth/gmail.modify".to_owned(),
            "https://www.googleapis.com/auth/gmail.readonly".to_owned(),
        ];
        assert_eq!(
            least_privilege(&gmail),
            Some("https://www.googleapis.com/auth/gmail.readonly")
        );
        let create = list(&["drive", "drive.file"]);
        assert_eq!(
            least_privilege(&create),
            Some("https://www.googleapis.com/auth/drive")
        );
    }
}
