//! `gscrape lock`, and what a lock means for planning: a query whose API is not pinned under
//! `--locked`, and the one line that says what Google changed since the pin.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::AppError;
use crate::cli::LockArgs;
use crate::discovery::lock::{Lock, LOCK_DIR, LOCK_FILE};
use crate::discovery::{DiscoverySource, Document};
use crate::error::Exit;
use crate::http::HyperClient;
use crate::plan::{plan_in, QueryPlan};
use crate::query::{load_queries, query_files, Problem, Query};
use crate::settings::{config_from_env, retry_policy};
use crate::template::Templates;

/// `gscrape lock [PATHS] [--update]`: pins the Discovery document of each API the queries
/// use (those with a `discovery` file of their own excepted); a pinned API keeps its pin
/// unless `--update`.
pub(super) async fn lock(
    args: LockArgs,
    matches: Option<&clap::ArgMatches>,
    client: HyperClient,
) -> Result<Exit, AppError> {
    let settings = super::discovery_settings(&args.discovery, matches, &config_from_env())?;
    let files = query_files(&args.paths)?;
    let (queries, problems) = load_queries(&files, &[]);
    if !problems.is_empty() {
        return Err(AppError::Problems(problems));
    }
    let dir = PathBuf::from(".");
    let mut lock = Lock::read(&dir)
        .map_err(|e| AppError::Discovery(e.to_string()))?
        .unwrap_or(Lock {
            version: 1,
            apis: Vec::new(),
        });
    let apis: BTreeSet<(String, String)> = queries
        .iter()
        .filter(|q| q.discovery.is_none())
        .map(|q| (q.api.clone(), q.version.clone()))
        .collect();
    // Google's current documents (the cache while fresh; `--update` fetches them anew).
    let source = DiscoverySource::new(
        client,
        settings.url.clone(),
        settings.cache_dir.clone(),
        match args.update {
            true => crate::discovery::source::CachePolicy::Refresh,
            false => settings.policy,
        },
        super::DISCOVERY_TIMEOUT,
        retry_policy(None),
    );
    let mut said = String::new();
    for (api, version) in &apis {
        let before = lock.pinned(api, version).cloned();
        if before.is_some() && !args.update {
            continue;
        }
        let (doc, text) = source
            .latest_text(api, version)
            .await
            .map_err(|e| AppError::Discovery(e.to_string()))?;
        let pin = lock
            .pin(
                &dir,
                api,
                version,
                &text,
                &doc.revision,
                doc.etag.as_deref(),
            )
            .map_err(|e| AppError::Discovery(e.to_string()))?;
        let what = match before {
            Some(before) if before.sha256 == pin.sha256 => "unchanged at",
            Some(_) => "moved to",
            None => "pinned at",
        };
        said += &format!(
            "{api} {version}: {what} revision {} (sha256 {}…, {})\n",
            pin.revision,
            &pin.sha256[..12],
            pin.file.display()
        );
    }
    // Pins of APIs no query uses any more are dropped.
    lock.apis
        .retain(|p| apis.contains(&(p.name.clone(), p.version.clone())));
    lock.write(&dir)
        .map_err(|e| AppError::Discovery(e.to_string()))?;
    said += &format!(
        "{LOCK_FILE}: {} API{} pinned; commit it with {LOCK_DIR}/",
        lock.apis.len(),
        if lock.apis.len() == 1 { "" } else { "s" }
    );
    crate::say!("{said}");
    Ok(Exit::Success)
}

/// Under `--locked`: a problem for a query whose API `gscrape.lock` does not pin.
pub(super) fn unpinned(query: &Query, source: &DiscoverySource, locked: bool) -> Option<Problem> {
    let lock = source
        .lock()
        .filter(|_| locked && query.discovery.is_none())?;
    lock.pinned(&query.api, &query.version).is_none().then(|| {
        query.problem(
            None,
            Some("api".to_owned()),
            format!(
                "--locked: {LOCK_FILE} does not pin {} {}: run `gscrape lock` to add it",
                query.api, query.version
            ),
        )
    })
}

/// For each query planned against a pinned document that Google has since revised: one line
/// saying what changed for it (its columns, its method's parameters), or that nothing it uses
/// did. Google's document is read as any is (the cache while fresh); when it cannot be had
/// (offline), nothing is said.
pub(super) async fn say_drift(
    plans: &[QueryPlan],
    source: &DiscoverySource,
    templates: &Templates,
    out_dir: &Path,
) {
    let Some(lock) = source.lock() else { return };
    // Google's document of each pinned API, fetched once (`None`: it cannot be had now).
    let mut latest: HashMap<(String, String), Option<Arc<Document>>> = HashMap::new();
    for plan in plans.iter().filter(|p| p.query.discovery.is_none()) {
        let (api, version) = (&plan.query.api, &plan.query.version);
        let Some(pin) = lock.pinned(api, version) else {
            continue;
        };
        let key = (api.clone(), version.clone());
        if !latest.contains_key(&key) {
            let doc = source
                .latest_text(api, version)
                .await
                .ok()
                .map(|d| Arc::new(d.0));
            latest.insert(key.clone(), doc);
        }
        let Some(now) = latest[&key].clone() else {
            continue;
        };
        if now.sha256 == pin.sha256 {
            continue;
        }
        let changes = match plan_in(&plan.query, now.clone(), templates, out_dir) {
            Ok(replanned) => changes(plan, &replanned),
            Err(_) => vec!["the query no longer plans against it".to_owned()],
        };
        let changes = match changes.is_empty() {
            true => "nothing this query uses changed".to_owned(),
            false => changes.join("; "),
        };
        crate::say!(
            "note: {}: {api} {version} is pinned at revision {} by {LOCK_FILE}; Google's is now \
             {}: {changes} (`gscrape lock --update` moves the pin)",
            plan.query.name,
            pin.revision,
            now.revision
        );
    }
}

/// What differs between a plan and the same query planned against a newer document.
fn changes(pinned: &QueryPlan, now: &QueryPlan) -> Vec<String> {
    let mut said = Vec::new();
    let headers = |plan: &QueryPlan| -> Vec<String> {
        plan.columns.iter().map(|c| c.header.clone()).collect()
    };
    let params =
        |plan: &QueryPlan| -> Vec<String> { plan.method.parameters.keys().cloned().collect() };
    for (what, before, after) in [
        ("columns", headers(pinned), headers(now)),
        ("parameters", params(pinned), params(now)),
    ] {
        let added: Vec<&str> = (after.iter())
            .filter(|a| !before.contains(a))
            .map(String::as_str)
            .collect();
        let removed: Vec<&str> = (before.iter())
            .filter(|b| !after.contains(b))
            .map(String::as_str)
            .collect();
        if !added.is_empty() {
            said.push(format!("{what} added: {}", added.join(", ")));
        }
        if !removed.is_empty() {
            said.push(format!("{what} removed: {}", removed.join(", ")));
        }
    }
    said
}
