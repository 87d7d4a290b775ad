//! Shards: one run split across the tasks of a Kubernetes Indexed Job or a Cloud Run Job
//! (`--shard INDEX/COUNT`, `--shard auto`). What a shard is and where it comes from
//! ([`resolve`]); which part of the run a shard does ([`role`], [`apply`], [`check`]); how a
//! fan-out's parent records are dealt out ([`owner`]: a stable hash); and how a part of an
//! output is named ([`part_path`], [`part_of`]), which `gscrape compose` reads back.
//!
//! The rules, which README's "Shards" section states for users:
//! - a fan-out query (`for_each`) is split: each shard runs the request chains of the parent
//!   records that hash to it, and writes `NAME-part-IIIII-of-CCCCC.EXT` beside its output
//!   (always, a header-only file when it got no record);
//! - a query that feeds a fan-out and has no parent of its own runs whole in every shard (each
//!   must see every record to deal them out); its own output is written by shard 0 only, whole,
//!   under its own name;
//! - any other query cannot be split: shard 0 runs it, the others leave it out.
//!
//! A fan-out below a fan-out takes all its (already dealt) parent's records: only the first
//! fan-out level deals records out.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::plan::QueryPlan;
use crate::query::Problem;
use crate::records::FieldPath;

/// The most shards a run is split into: part names have five digits.
pub const MAX_COUNT: u32 = 99_999;

/// One task's share of a run: shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A shard setting that cannot be used: one line naming the flag, variable or key and its
/// value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ShardError(pub String);

/// A value as given, with where it came from (`--shard`, `GSCRAPE_SHARD`, a config file's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub value: String,
    pub origin: String,
}

/// `--shard` and `--shard-count` as given (resolved by [`resolve`], which reads the
/// environment of `--shard auto`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardSetting {
    pub spec: Option<Given>,
    pub count: Option<Given>,
}

/// The Kubernetes Indexed Job's index of the pod.
pub const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";
/// Cloud Run Jobs' index of the task, and the number of tasks.
pub const CLOUD_RUN_INDEX: &str = "CLOUD_RUN_TASK_INDEX";
pub const CLOUD_RUN_COUNT: &str = "CLOUD_RUN_TASK_COUNT";

/// The shard of this run, if any: `INDEX/COUNT` as given, or (`auto`) from the environment
/// (`env` reads a variable): `JOB_COMPLETION_INDEX` with `--shard-count`, else
/// `CLOUD_RUN_TASK_INDEX` with `CLOUD_RUN_TASK_COUNT`.
pub fn resolve(
    setting: &ShardSetting,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Shard>, ShardError> {
    let count = match &setting.count {
        Some(given) => Some((number(given, &given.value)?, given)),
        None => None,
    };
    let Some(spec) = &setting.spec else {
        return match count {
            Some((_, given)) => Err(ShardError(format!(
                "{} {:?}: the number of shards is read only with --shard auto; give --shard \
                 auto (or INDEX/COUNT), or unset it",
                given.origin, given.value
            ))),
            None => Ok(None),
        };
    };
    let value = spec.value.trim();
    let shard = if value == "auto" {
        let shard = auto(spec, count, env)?;
        // A job of one task is not sharded: it writes the output itself, not a part of one.
        if shard.count == 1 && shard.index == 0 {
            return Ok(None);
        }
        shard
    } else {
        let Some((index, total)) = value.split_once('/') else {
            return Err(ShardError(format!(
                "{} {:?}: write INDEX/COUNT (0-based, e.g. 3/10 for the fourth of ten tasks), \
                 or auto",
                spec.origin, spec.value
            )));
        };
        let shard = Shard {
            index: number(spec, index)?,
            count: number(spec, total)?,
        };
        if let Some((n, given)) = count.filter(|(n, _)| *n != shard.count) {
            return Err(ShardError(format!(
                "{} {:?} and {} {n} disagree on the number of shards: give one of them",
                spec.origin, spec.value, given.origin
            )));
        }
        shard
    };
    check_shard(shard, &format!("{} {:?}", spec.origin, spec.value))?;
    Ok(Some(shard))
}

/// `--shard auto`: the index (and count) the job platform gives the task.
fn auto(
    spec: &Given,
    count: Option<(u32, &Given)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Shard, ShardError> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let from_var = |name: &str, text: &str| {
        let given = Given {
            value: text.to_owned(),
            origin: name.to_owned(),
        };
        number(&given, text)
    };
    if let Some(index) = var(K8S_INDEX) {
        let Some((count, _)) = count else {
            return Err(ShardError(format!(
                "{} auto: {K8S_INDEX}={index} (a Kubernetes Indexed Job) gives the index but \
                 not the number of shards: give --shard-count N (or GSCRAPE_SHARD_COUNT), the \
                 Job's spec.completions",
                spec.origin
            )));
        };
        let shard = Shard {
            index: from_var(K8S_INDEX, &index)?,
            count,
        };
        check_shard(shard, &format!("{K8S_INDEX}={index} with {count} shards"))?;
        return Ok(shard);
    }
    if let Some(index) = var(CLOUD_RUN_INDEX) {
        let Some(total) = var(CLOUD_RUN_COUNT) else {
            return Err(ShardError(format!(
                "{} auto: {CLOUD_RUN_INDEX}={index} is set but {CLOUD_RUN_COUNT} is not: \
                 Cloud Run Jobs sets both; give --shard INDEX/COUNT otherwise",
                spec.origin
            )));
        };
        let shard = Shard {
            index: from_var(CLOUD_RUN_INDEX, &index)?,
            count: from_var(CLOUD_RUN_COUNT, &total)?,
        };
        if let Some((n, given)) = count.filter(|(n, _)| *n != shard.count) {
            return Err(ShardError(format!(
                "{} {n} and {CLOUD_RUN_COUNT}={total} disagree on the number of shards: drop \
                 {}",
                given.origin, given.origin
            )));
        }
        check_shard(
            shard,
            &format!("{CLOUD_RUN_INDEX}={index} {CLOUD_RUN_COUNT}={total}"),
        )?;
        return Ok(shard);
    }
    Err(ShardError(format!(
        "{} auto: neither {K8S_INDEX} (a Kubernetes Indexed Job) nor {CLOUD_RUN_INDEX} (a Cloud \
         Run Jobs task) is set; give --shard INDEX/COUNT",
        spec.origin
    )))
}

/// A whole number of `given`'s value (`text` is its part to read).
fn number(given: &Given, text: &str) -> Result<u32, ShardError> {
    let text = text.trim();
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(n) if digits => Ok(n),
        _ => Err(ShardError(format!(
            "{} {:?}: {text:?} is not a whole number (0-based INDEX/COUNT, e.g. 3/10)",
            given.origin, given.value
        ))),
    }
}

/// INDEX below COUNT, COUNT from 1 to [`MAX_COUNT`]; `what` names the values.
fn check_shard(shard: Shard, what: &str) -> Result<(), ShardError> {
    if shard.count == 0 || shard.count > MAX_COUNT {
        return Err(ShardError(format!(
            "{what}: the number of shards must be from 1 to {MAX_COUNT}"
        )));
    }
    if shard.index >= shard.count {
        let last = shard.count - 1;
        return Err(ShardError(format!(
            "{what}: the index must be below the number of shards: the shards of {c} are 0/{c} \
             to {last}/{c} (0-based)",
            c = shard.count
        )));
    }
    Ok(())
}

/// The text a parent record is dealt out by: the canonical JSON (below) of the fields the
/// child reads, as an array in `reads`' order (a missing one `null`), or of the record whole
/// when the child reads it whole (`None`) or reads none of it. Only what the child reads: a
/// field it does not read may change between the tasks' listings (a modified time, a last
/// login) without moving the record to another shard.
pub fn key_text(record: &Value, reads: Option<&[FieldPath]>) -> String {
    let mut out = String::new();
    match reads.filter(|paths| !paths.is_empty()) {
        None => canonical(record, &mut out),
        Some(paths) => {
            out.push('[');
            for (i, path) in paths.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(path.lookup(record).unwrap_or(&Value::Null), &mut out);
            }
            out.push(']');
        }
    }
    out
}

/// JSON as serde_json writes it compactly, object keys in byte order (whatever order the API
/// sent them in, and whatever serde_json's map keeps), numbers as their text in the page.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// The shard a key text belongs to: the first 8 bytes of its SHA-256 as a big-endian u64,
/// modulo `count`. Fixed: the same on every machine and in every release (a unit test pins
/// known values), so that tasks of different builds deal alike.
pub fn owner(key: &str, count: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

impl Shard {
    /// True when the parent `record` (of a child reading `reads` of it) is this shard's.
    pub fn owns(&self, record: &Value, reads: Option<&[FieldPath]>) -> bool {
        owner(&key_text(record, reads), self.count) == self.index
    }
}

/// The name and the extension of an output file name: `files.csv` → (`files`, `.csv`),
/// `files.csv.gz` → (`files`, `.csv.gz`), `report` → (`report`, ``).
fn split_name(name: &str) -> (&str, &str) {
    let body = match name.len().checked_sub(3) {
        Some(at) if name.is_char_boundary(at) && name[at..].eq_ignore_ascii_case(".gz") => {
            &name[..at]
        }
        _ => name,
    };
    let stem_end = match body.rfind('.') {
        Some(0) | None => body.len(),
        Some(dot) => dot,
    };
    (&name[..stem_end], &name[stem_end..])
}

/// The part of `output` that shard `index` of `count` writes, beside it:
/// `files.csv` → `files-part-00003-of-00010.csv`.
pub fn part_path(output: &Path, index: u32, count: u32) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = split_name(&name);
    output.with_file_name(format!("{stem}-part-{index:05}-of-{count:05}{ext}"))
}

/// The run a part belongs to: an id the tasks of one execution share — Cloud Run's
/// `CLOUD_RUN_EXECUTION`, else `--run-id` / `GSCRAPE_RUN_ID` (`given`). `None`: parts record
/// none, and `gscrape compose` checks none.
pub fn run_id(given: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let clean = |v: String| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    env("CLOUD_RUN_EXECUTION")
        .and_then(clean)
        .or_else(|| given.map(str::to_owned).and_then(clean))
        .or_else(|| env("GSCRAPE_RUN_ID").and_then(clean))
}

/// The sidecar beside a local file that names the run that wrote it: `.NAME.run`.
pub fn run_sidecar(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.run"))
}

/// The run recorded beside a local file (`None`: none recorded, or unreadable).
pub fn recorded_run(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(run_sidecar(path)).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Records `run` beside the local file `path` (`None`: removes any record, so that an older
/// one never speaks for this file).
pub fn record_run(path: &Path, run: Option<&str>) -> std::io::Result<()> {
    let sidecar = run_sidecar(path);
    match run {
        Some(run) => {
            crate::util::write_atomically_with_mode(&sidecar, format!("{run}\n").as_bytes(), 0o644)
        }
        None => match std::fs::remove_file(&sidecar) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        },
    }
}

/// When the file name `name` is a part of the output named `output_name`: its index and
/// count (a five-digit index below a five-digit count, as [`part_path`] writes them).
pub fn part_of(output_name: &str, name: &str) -> Option<(u32, u32)> {
    let (stem, ext) = split_name(output_name);
    let middle = name
        .strip_prefix(stem)?
        .strip_suffix(ext)?
        .strip_prefix("-part-")?;
    let (index, count) = middle.split_once("-of-")?;
    let five = |t: &str| t.len() == 5 && t.bytes().all(|b| b.is_ascii_digit());
    if !five(index) || !five(count) {
        return None;
    }
    let index: u32 = index.parse().ok()?;
    let count: u32 = count.parse().ok()?;
    (index < count).then_some((index, count))
}

/// True when `theirs` is the part of another shard of `shard`'s count of the output whose
/// part `own` is (of shard `shard`): beside it, the same name but the index.
pub fn is_sibling_part(own: &Path, theirs: &Path, shard: Shard) -> bool {
    let (Some(own_name), Some(their_name)) = (
        own.file_name().and_then(|n| n.to_str()),
        theirs.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    let mark = format!("-part-{:05}-of-{:05}", shard.index, shard.count);
    let Some(at) = own_name.rfind(&mark) else {
        return false;
    };
    let digits = at + "-part-".len()..at + "-part-".len() + 5;
    let same_but_index = their_name.len() == own_name.len()
        && their_name.is_char_boundary(digits.start)
        && their_name.is_char_boundary(digits.end)
        && their_name[..digits.start] == own_name[..digits.start]
        && their_name[digits.end..] == own_name[digits.end..]
        && their_name[digits.clone()] != own_name[digits.clone()]
        && their_name[digits.clone()]
            .bytes()
            .all(|b| b.is_ascii_digit());
    same_but_index && own.parent() == theirs.parent()
}

/// What a shard does with one query of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A fan-out: its part of the output; `deals` when it takes only this shard's records of
    /// its parent (the first fan-out level), else every record its (dealt) parent hands it.
    Split { deals: bool },
    /// Feeds a fan-out and has no parent: it runs whole, and its output is written by shard 0
    /// only (`writes`).
    Feeds { writes: bool },
    /// Cannot be split: shard 0 runs it (`runs`), the others leave it out.
    Whole { runs: bool },
}

/// The role of `plan` (one of `plans`) in `shard`.
pub fn role(plans: &[QueryPlan], plan: &QueryPlan, shard: Shard) -> Role {
    let first = shard.index == 0;
    if let Some(parent) = &plan.query.for_each {
        let parent_is_root = plans
            .iter()
            .find(|p| p.query.name == parent.value)
            .is_some_and(|p| p.query.for_each.is_none());
        return Role::Split {
            deals: parent_is_root,
        };
    }
    let feeds = plans
        .iter()
        .any(|child| (child.query.for_each.as_ref()).is_some_and(|p| p.value == plan.query.name));
    match feeds {
        true => Role::Feeds { writes: first },
        false => Role::Whole { runs: first },
    }
}

/// The problems of a sharded run: what a part cannot be, and what would not be the same as
/// one unsharded run.
pub fn check(
    plans: &[QueryPlan],
    shard: Shard,
    stdout: bool,
    csv: &crate::query::CsvSettings,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if stdout {
        problems.push(Problem::general(format!(
            "--output - with --shard {shard}: each task writes its part of an output to a file; \
             compose the parts with `gscrape compose`"
        )));
    }
    for plan in plans {
        let query = &plan.query;
        if let Some(incremental) = &query.incremental {
            problems.push(query.problem(
                incremental.line,
                Some("incremental".to_owned()),
                format!(
                    "a sharded run (--shard {shard}) does not keep incremental cursors: every \
                     task must ask its parents for the same records, and each would keep a \
                     cursor of its own part; run incremental queries without --shard (leave \
                     them out with --only)"
                ),
            ));
        }
        if !matches!(role(plans, plan, shard), Role::Split { .. }) {
            continue;
        }
        let part = |key: &str, why: String| query.problem(None, Some(key.to_owned()), why);
        if query.max_records.is_some() {
            problems.push(part(
                "max_records",
                format!(
                    "a fan-out split by --shard {shard} caps each part, so the parts together \
                     would not be one run's records: drop max_records, or run it without --shard"
                ),
            ));
        }
        if query.csv.or(csv).append == Some(true) {
            problems.push(part(
                "append",
                format!(
                    "a fan-out split by --shard {shard} writes a part to compose, not a file \
                     to append to: drop append (or --append), or run it without --shard"
                ),
            ));
        }
        if query.sheet.is_some() {
            problems.push(part(
                "sheet",
                format!(
                    "a fan-out split by --shard {shard} writes parts of a file; a Google Sheet \
                     cannot be written in parts: write a CSV, or run it without --shard"
                ),
            ));
        }
        if let Some(output) = plan.output.as_ref().filter(|o| !o.can().concatenable) {
            problems.push(part(
                "output",
                format!(
                    "a fan-out split by --shard {shard} writes parts that `gscrape compose` \
                     joins, and {} files cannot be joined: write .csv, .tsv or .ndjson \
                     (each may end in .gz)",
                    output.format.format
                ),
            ));
        }
    }
    problems
}

/// What `shard` writes of `plans`: a fan-out's output becomes its part; outside shard 0, a
/// query feeding a fan-out writes nothing (shard 0 writes it whole). Queries that shard does
/// not run stay in `plans` (their role says so).
pub fn apply(plans: &mut [QueryPlan], shard: Shard, out_dir: &Path) {
    let roles: Vec<Role> = plans.iter().map(|p| role(plans, p, shard)).collect();
    for (plan, role) in plans.iter_mut().zip(roles) {
        match role {
            Role::Split { .. } => {
                plan.output = (plan.output.take())
                    .map(|o| o.renamed(out_dir, |name| part_path(name, shard.index, shard.count)));
            }
            Role::Feeds { writes: false } => {
                plan.output = None;
                plan.query.sheet = None;
            }
            Role::Feeds { writes: true } | Role::Whole { .. } => {}
        }
    }
}

/// Which of `plans` this shard runs: the queries it leaves out (shard 0 runs them) are
/// removed. Returns the fan-outs that deal their parent's records out and the names left out.
pub fn deal(plans: &mut Vec<QueryPlan>, shard: Shard) -> (Vec<String>, Vec<String>) {
    let roles: Vec<Role> = plans.iter().map(|p| role(plans, p, shard)).collect();
    let mut dealt = Vec::new();
    let mut left_out = Vec::new();
    let mut kept = Vec::new();
    for (plan, role) in plans.drain(..).zip(roles) {
        match role {
            Role::Whole { runs: false } => {
                left_out.push(plan.query.name.clone());
                continue;
            }
            Role::Split { deals: true } => dealt.push(plan.query.name.clone()),
            Role::Split { deals: false } | Role::Feeds { .. } | Role::Whole { runs: true } => {}
        }
        kept.push(plan);
    }
    *plans = kept;
    (dealt, left_out)
}

/// What `validate` says a query does in `shard`.
pub fn describe(role: Role, plan: &QueryPlan, shard: Shard) -> String {
    match role {
        Role::Split { deals: true } => format!(
            "shard {shard}: the chains of the parent records of `{}` that hash to shard {}; \
             compose the parts when every task is done",
            plan.query
                .for_each
                .as_ref()
                .map_or("", |p| p.value.as_str()),
            shard.index
        ),
        Role::Split { deals: false } => format!(
            "shard {shard}: every record its parent's part hands it; compose the parts when \
             every task is done"
        ),
        Role::Feeds { writes: true } => format!(
            "shard {shard}: runs whole (every shard deals its records out) and writes its output"
        ),
        Role::Feeds { writes: false } => {
            format!("shard {shard}: runs whole to deal its records out; shard 0 writes its output")
        }
        Role::Whole { runs: true } => {
            format!("shard {shard}: runs whole here (a query that feeds no fan-out is not split)")
        }
        Role::Whole { runs: false } => format!(
            "shard {shard}: not run (a query that feeds no fan-out is not split; shard 0 runs it)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn given(value: &str, origin: &str) -> Option<Given> {
        Some(Given {
            value: value.to_owned(),
            origin: origin.to_owned(),
        })
    }

    fn resolved(
        spec: Option<&str>,
        count: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Option<Shard>, String> {
        let setting = ShardSetting {
            spec: spec.and_then(|s| given(s, "--shard")),
            count: count.and_then(|c| given(c, "--shard-count")),
        };
        let env = |name: &str| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        resolve(&setting, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn a_shard_from_the_flag_or_the_job_platform() {
        let shard = |index, count| Ok(Some(Shard { index, count }));
        assert_eq!(resolved(None, None, &[]), Ok(None));
        assert_eq!(resolved(Some("3/10"), None, &[]), shard(3, 10));
        assert_eq!(resolved(Some("0/1"), None, &[]), shard(0, 1));
        assert_eq!(resolved(Some("3/10"), Some("10"), &[]), shard(3, 10));
        assert_eq!(
            resolved(Some("auto"), Some("4"), &[(K8S_INDEX, "2")]),
            shard(2, 4)
        );
        assert_eq!(
            resolved(
                Some("auto"),
                None,
                &[(CLOUD_RUN_INDEX, "1"), (CLOUD_RUN_COUNT, "3")]
            ),
            shard(1, 3)
        );
        // A job of one task writes its output whole: `auto` is no shard then (an explicit
        // 0/1 is taken as asked).
        assert_eq!(
            resolved(
                Some("auto"),
                None,
                &[(CLOUD_RUN_INDEX, "0"), (CLOUD_RUN_COUNT, "1")]
            ),
            Ok(None)
        );
        // Kubernetes first, when both are set.
        assert_eq!(
            resolved(
                Some("auto"),
                Some("5"),
                &[
                    (K8S_INDEX, "4"),
                    (CLOUD_RUN_INDEX, "1"),
                    (CLOUD_RUN_COUNT, "3")
                ]
            ),
            shard(4, 5)
        );
    }

    #[test]
    fn a_bad_shard_is_one_line_naming_where_it_came_from() {
        for (spec, count, env, message) in [
            (Some("3/3"), None, &[][..], "--shard \"3/3\": the index must be below the number of shards: the shards of 3 are 0/3 to 2/3 (0-based)"),
            (Some("1/0"), None, &[], "--shard \"1/0\": the number of shards must be from 1 to 99999"),
            (Some("3"), None, &[], "--shard \"3\": write INDEX/COUNT (0-based, e.g. 3/10 for the fourth of ten tasks), or auto"),
            (Some("-1/3"), None, &[], "--shard \"-1/3\": \"-1\" is not a whole number (0-based INDEX/COUNT, e.g. 3/10)"),
            (Some("1/100000"), None, &[], "--shard \"1/100000\": the number of shards must be from 1 to 99999"),
            (Some("1/3"), Some("4"), &[], "--shard \"1/3\" and --shard-count 4 disagree on the number of shards: give one of them"),
            (None, Some("4"), &[], "--shard-count \"4\": the number of shards is read only with --shard auto; give --shard auto (or INDEX/COUNT), or unset it"),
            (Some("auto"), None, &[], "--shard auto: neither JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) nor CLOUD_RUN_TASK_INDEX (a Cloud Run Jobs task) is set; give --shard INDEX/COUNT"),
            (Some("auto"), None, &[(K8S_INDEX, "2")], "--shard auto: JOB_COMPLETION_INDEX=2 (a Kubernetes Indexed Job) gives the index but not the number of shards: give --shard-count N (or GSCRAPE_SHARD_COUNT), the Job's spec.completions"),
            (Some("auto"), Some("2"), &[(K8S_INDEX, "2")], "JOB_COMPLETION_INDEX=2 with 2 shards: the index must be below the number of shards: the shards of 2 are 0/2 to 1/2 (0-based)"),
            (Some("auto"), Some("3"), &[(K8S_INDEX, "x")], "JOB_COMPLETION_INDEX \"x\": \"x\" is not a whole number (0-based INDEX/COUNT, e.g. 3/10)"),
            (Some("auto"), None, &[(CLOUD_RUN_INDEX, "1")], "--shard auto: CLOUD_RUN_TASK_INDEX=1 is set but CLOUD_RUN_TASK_COUNT is not: Cloud Run Jobs sets both; give --shard INDEX/COUNT otherwise"),
            (Some("auto"), Some("4"), &[(CLOUD_RUN_INDEX, "1"), (CLOUD_RUN_COUNT, "3")], "--shard-count 4 and CLOUD_RUN_TASK_COUNT=3 disagree on the number of shards: drop --shard-count"),
        ] {
            assert_eq!(resolved(spec, count, env), Err(message.to_owned()), "{spec:?} {count:?} {env:?}");
        }
    }

    /// The assignment is part of the format of a sharded run: tasks of different releases and
    /// machines must deal alike. These values are fixed; a change here splits runs wrongly.
    #[test]
    fn the_dealing_hash_is_pinned() {
        // (Computed apart: python3 -c 'import hashlib; d = hashlib.sha256(KEY).digest();
        // print(int.from_bytes(d[:8], "big") % COUNT)'.)
        assert_eq!(
            key_text(&json!({"b": 1, "a": "x"}), None),
            r#"{"a":"x","b":1}"#
        );
        let pinned = [
            (r#"{"a":"x","b":1}"#, 1000, 186u32),
            (r#"{"id":"m0"}"#, 10, 3),
            (r#"{"id":"m1"}"#, 10, 7),
            (r#"["a@example.com"]"#, 3, 2),
            ("", 7, 1),
            ("", 1, 0),
        ];
        for (key, count, shard) in pinned {
            assert_eq!(owner(key, count), shard, "{key} of {count}");
        }
        // The first 8 bytes, big-endian: SHA-256("") starts e3b0c44298fc1c14.
        assert_eq!(
            owner("", u32::MAX),
            (0xe3b0_c442_98fc_1c14_u64 % u64::from(u32::MAX)) as u32
        );
    }

    #[test]
    fn the_key_is_what_the_child_reads() {
        let reads = [FieldPath::parse("primaryEmail").unwrap()];
        let day1 = json!({"primaryEmail": "a@x", "lastLoginTime": "1"});
        let day2 = json!({"lastLoginTime": "2", "primaryEmail": "a@x"});
        assert_eq!(key_text(&day1, Some(&reads)), r#"["a@x"]"#);
        assert_eq!(key_text(&day1, Some(&reads)), key_text(&day2, Some(&reads)));
        assert_ne!(key_text(&day1, None), key_text(&day2, None));
        assert_eq!(key_text(&json!({}), Some(&reads)), "[null]");
        // Reading nothing of it: the record whole.
        assert_eq!(key_text(&day1, Some(&[])), key_text(&day1, None));
        // Numbers keep their text; nested keys are sorted too.
        assert_eq!(
            key_text(
                &serde_json::from_str(r#"{"o": {"z": [true, null], "a": 2}, "n": 1.50}"#).unwrap(),
                None
            ),
            r#"{"n":1.50,"o":{"a":2,"z":[true,null]}}"#
        );
    }

    #[test]
    fn every_record_has_exactly_one_shard() {
        for count in [1u32, 2, 3, 10] {
            for i in 0..200 {
                let record = json!({ "id": format!("r{i}") });
                let owners = (0..count)
                    .filter(|&index| Shard { index, count }.owns(&record, None))
                    .count();
                assert_eq!(owners, 1);
            }
        }
    }

    #[test]
    fn part_names_beside_the_output() {
        let part = |o: &str| part_path(Path::new(o), 3, 10).display().to_string();
        assert_eq!(part("files.csv"), "files-part-00003-of-00010.csv");
        assert_eq!(part("d/files.csv.gz"), "d/files-part-00003-of-00010.csv.gz");
        assert_eq!(part("a.b.ndjson"), "a.b-part-00003-of-00010.ndjson");
        assert_eq!(part("report"), "report-part-00003-of-00010");
        assert_eq!(part("x.GZ"), "x-part-00003-of-00010.GZ");
        assert_eq!(part(".hidden"), ".hidden-part-00003-of-00010");
    }

    #[test]
    fn another_shards_part_is_told_from_other_files() {
        let shard = Shard { index: 1, count: 3 };
        let own = Path::new("out/files-part-00001-of-00003.csv");
        let sibling = |p: &str| is_sibling_part(own, Path::new(p), shard);
        assert!(sibling("out/files-part-00000-of-00003.csv"));
        assert!(sibling("out/files-part-00002-of-00003.csv"));
        assert!(!sibling("out/files-part-00001-of-00003.csv"));
        assert!(!sibling("out/files-part-00000-of-00004.csv"));
        assert!(!sibling("other/files-part-00000-of-00003.csv"));
        assert!(!sibling("out/files.csv"));
        assert!(!sibling("out/filez-part-00000-of-00003.csv"));
    }

    #[test]
    fn part_names_read_back() {
        assert_eq!(
            part_of("files.csv", "files-part-00003-of-00010.csv"),
            Some((3, 10))
        );
        assert_eq!(
            part_of("files.csv.gz", "files-part-00000-of-00001.csv.gz"),
            Some((0, 1))
        );
        assert_eq!(
            part_of("report", "report-part-00002-of-00003"),
            Some((2, 3))
        );
        for not in [
            "files.csv",
            "files-part-00003-of-00010.tsv",
            "files-part-3-of-10.csv",
            "files-part-00010-of-00010.csv",
            "other-part-00001-of-00002.csv",
            "files-part-00001-of-00002.csv.gz",
            ".files-part-00001-of-00002.csv.AbC123.tmp",
            "files-part-0000a-of-00002.csv",
        ] {
            assert_eq!(part_of("files.csv", not), None, "{not}");
        }
        for (index, count) in [(0, 1), (7, 99_999), (12, 13)] {
            let name = part_path(Path::new("a.tsv.gz"), index, count);
            let name = name.to_str().unwrap();
            assert_eq!(part_of("a.tsv.gz", name), Some((index, count)));
        }
    }
}
