//! The record of a run: what each query asked of Google (its file and that file's SHA-256,
//! the Discovery document, the request as rendered, the columns, every variable and where it
//! came from, "today"), beside what it got (the summary's counts, outputs and SHA-256s). Every
//! run leaves one under its state directory (`runs/`, the newest `--keep-runs` kept), and at
//! `--summary-json` when asked: a researcher can cite it and `gscrape rerun` can repeat it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::plan::QueryPlan;
use crate::template::Templates;

/// The format of the manifest (`manifest_version`), described by `docs/manifest.schema.json`.
pub const MANIFEST_VERSION: u32 = 1;

/// The folder of the state directory runs' manifests are kept in.
pub const RUNS_FOLDER: &str = "runs";

/// What one query asked.
#[derive(Debug, Clone, Serialize)]
pub struct Asked {
    /// The query file, as the run named it.
    pub file: String,
    /// SHA-256 of its bytes when the run read it.
    pub file_sha256: Option<String>,
    pub api: String,
    pub version: String,
    pub method: String,
    pub discovery: DiscoveryUsed,
    pub request: RequestAsked,
    /// The columns' headers, in order.
    pub columns: Vec<String>,
    /// Every template variable the query had, and where its value came from.
    pub vars: BTreeMap<String, VarUsed>,
    /// The date `{{ today }}` was (`GSCRAPE_TODAY`, else the local date).
    pub today: String,
    /// The credential the requests were authorized with: what it is and where it came from
    /// (`service account … (key sa.json from --credentials)`), never a secret.
    pub credential: Option<String>,
    /// The account the requests acted as (a delegated subject, else the credential's own),
    /// when known.
    pub acting_as: Option<String>,
    /// The project its requests were billed to (`x-goog-user-project`).
    pub quota_project: Option<String>,
}

/// The Discovery document a query was planned against.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveryUsed {
    pub revision: String,
    pub etag: Option<String>,
    /// SHA-256 of the document's bytes.
    pub sha256: String,
    /// True when `gscrape.lock` pinned it.
    pub pinned: bool,
    /// The query's own document (`discovery = "path"`), when it has one.
    pub file: Option<String>,
}

/// The request as sent: a root query's first request rendered, a fan-out's as templates
/// (rendered once per parent record).
#[derive(Debug, Clone, Serialize)]
pub struct RequestAsked {
    pub http_method: String,
    pub url: String,
    /// Query parameters in order, as `[name, value]` pairs.
    pub params: Vec<(String, String)>,
    pub body: Option<Value>,
    /// False for a fan-out, whose values are the templates.
    pub rendered: bool,
}

/// A variable and where its value came from: `vars` (the query's `[vars]`), `--var`,
/// `window` (a backfill's), `since` (an incremental query's cursor).
#[derive(Debug, Clone, Serialize)]
pub struct VarUsed {
    pub value: Value,
    pub from: &'static str,
}

/// What `plan` asks: its request rendered as a run renders it (`templates`), its variables
/// with `given` the run's `--var`s.
pub fn asked(
    plan: &QueryPlan,
    templates: &Templates,
    given: &[(String, String)],
    lock: Option<&crate::discovery::lock::Lock>,
) -> Asked {
    let query = &plan.query;
    let file_sha256 = std::fs::read(&query.file)
        .ok()
        .map(|bytes| crate::util::sha256_hex(&bytes));
    let vars = (query.vars.value.iter())
        .map(|(name, value)| {
            let from = match name.as_str() {
                _ if given.iter().any(|(n, _)| n == name) => "--var",
                "window" => "window",
                "since" if query.incremental.is_some() => "since",
                _ => "vars",
            };
            let value = value.clone();
            (name.clone(), VarUsed { value, from })
        })
        .collect();
    let context = plan.context(None);
    let fan_out = query.for_each.is_some();
    let rendered = (!fan_out)
        .then(|| {
            plan.request
                .render(&|text| templates.render(text, &context))
                .ok()
        })
        .flatten();
    let request = match rendered {
        Some(spec) => RequestAsked {
            http_method: spec.http_method.to_string(),
            url: spec.url,
            params: spec.query,
            body: spec.body,
            rendered: true,
        },
        None => RequestAsked {
            http_method: plan.request.http_method.to_string(),
            url: format!("{}{}", plan.request.base_url, plan.request.path),
            params: (plan.request.path_params.iter())
                .chain(&plan.request.query)
                .cloned()
                .collect(),
            body: plan.request.body.clone(),
            rendered: false,
        },
    };
    let doc = &plan.doc;
    let pinned = query.discovery.is_none()
        && lock
            .and_then(|l| l.pinned(&query.api, &query.version))
            .is_some_and(|p| p.sha256 == doc.sha256);
    Asked {
        file: query.file.display().to_string(),
        file_sha256,
        api: query.api.clone(),
        version: query.version.clone(),
        method: plan.method.id.clone(),
        discovery: DiscoveryUsed {
            revision: doc.revision.clone(),
            etag: doc.etag.clone(),
            sha256: doc.sha256.clone(),
            pinned,
            file: query.discovery.as_ref().map(|p| p.display().to_string()),
        },
        request,
        columns: plan.columns.iter().map(|c| c.header.clone()).collect(),
        vars,
        today: templates
            .render("{{ today }}", &minijinja::Value::UNDEFINED)
            .unwrap_or_default(),
        credential: None,
        acting_as: None,
        quota_project: None,
    }
}

/// The manifest's name under `runs/`: its UTC start time, to the microsecond, and the run id,
/// so that names sort by time (`20261208T031500.123456Z-3f9a1c2b.json`).
pub fn file_name(started_at: chrono::DateTime<chrono::Utc>, run_id: &str) -> String {
    format!("{}-{run_id}.json", started_at.format("%Y%m%dT%H%M%S%.6fZ"))
}

/// A random run id: 8 hex digits.
pub fn run_id() -> String {
    format!("{:08x}", fastrand::u32(..))
}

/// Keeps the newest `keep` manifests of `names` (file names under `runs/`, which sort by
/// time): the names to remove.
pub fn beyond(mut names: Vec<String>, keep: usize) -> Vec<String> {
    names.retain(|n| n.ends_with(".json"));
    names.sort();
    let extra = names.len().saturating_sub(keep);
    names.truncate(extra);
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_manifests_beyond_the_kept_number_are_removed() {
        let names = vec![
            "20261208T030000.000001Z-bbbbbbbb.json".to_owned(),
            "20261207T030000.000000Z-aaaaaaaa.json".to_owned(),
            "20261208T030000.000002Z-0ccccccc.json".to_owned(),
            "20261208T030000.000002Z-0ccccccc.json.tmp".to_owned(),
        ];
        assert_eq!(
            beyond(names.clone(), 2),
            ["20261207T030000.000000Z-aaaaaaaa.json"]
        );
        assert!(beyond(names, 3).is_empty());
    }
}
