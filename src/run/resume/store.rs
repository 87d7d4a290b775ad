//! Checkpoints of unfinished exports, for `gscrape run --resume`: where a plain file export
//! (CSV, TSV, NDJSON) stands, written atomically to `<out-dir>/.gscrape/checkpoints/` (when,
//! `run/resume.rs` decides): the next page's request and the cursor (or, in a fan-out, the
//! parent records done), the temporary file with its length and SHA-256, the rows so far, and
//! a fingerprint of what decides the output's bytes. A resumed export checks all of these,
//! then asks only for the pages that are missing; anything that does not match starts it over.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{CursorState, RequestSpec};
use crate::sink::{hex, is_temp_of, Mark};
use crate::state::StateDir;

/// The checkpoint format; another version is not read (the export starts over).
pub const VERSION: u32 = 1;

/// Where an unfinished export stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub query: String,
    /// [`fingerprint`] of the export: a resumed run must ask the same.
    pub request: String,
    /// The output it will replace.
    pub target: PathBuf,
    /// The temporary file holding what was written, how much of it counts, and its SHA-256.
    #[serde(flatten)]
    pub file: Mark,
    /// Rows written.
    pub rows: u64,
    pub at: Position,
    /// `[incremental]`: the greatest cursor value written so far.
    pub newest: Option<String>,
    /// The columns a report named in its first page (a resumed run may not see them again).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// `on_missing = "skip"`: the parent records skipped so far (the summary counts them all).
    #[serde(default)]
    pub gone: Option<crate::counters::Gone>,
}

/// Where the requests stand.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// One request chain, between two pages.
    Chain {
        /// The request of the next page, as it will be sent.
        next: SavedRequest,
        cursor: CursorState,
        /// Records the API returned (before a `where` filter).
        returned: u64,
    },
    /// A fan-out, between two parent records: the chains of the first `done` are written.
    Parents {
        done: u64,
        /// SHA-256 of those parent records (their JSON, one a line): a resumed run checks that
        /// its parent hands the same ones, in the same order.
        sha256: String,
    },
}

impl Position {
    /// The pages fetched so far, or parent records done: for a message.
    pub fn describe(&self) -> String {
        match self {
            Position::Chain { cursor, .. } => format!("page {}", cursor.pages),
            Position::Parents { done, .. } => format!("parent record {done}"),
        }
    }
}

/// A [`RequestSpec`] as saved (no credential is ever in one: keys and tokens are added as it
/// is sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedRequest {
    method: String,
    url: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
}

impl SavedRequest {
    pub fn of(request: &RequestSpec) -> Self {
        SavedRequest {
            method: request.http_method.to_string(),
            url: request.url.clone(),
            query: request.query.clone(),
            body: request.body.clone(),
        }
    }

    pub fn to_request(&self) -> Option<RequestSpec> {
        Some(RequestSpec {
            http_method: self.method.parse().ok()?,
            url: self.url.clone(),
            query: self.query.clone(),
            body: self.body.clone(),
        })
    }
}

/// A hash of what decides an export's bytes (gscrape's version, the rendered request and
/// templates, columns, format, options, limits, target), from their debug forms: plain data in
/// a fixed order. A form that changes with a dependency's version only starts an export over.
pub fn fingerprint(parts: &[&dyn std::fmt::Debug]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(format!("{part:?}\n").as_bytes());
    }
    hex(&hash.finalize())
}

/// The checkpoints of one run's state directory (`checkpoints/`).
#[derive(Debug, Clone)]
pub struct Store {
    state: StateDir,
}

/// The folder of the checkpoints in the state directory.
const FOLDER: &str = "checkpoints";

impl Store {
    pub fn new(out_dir: &Path) -> Self {
        Store {
            state: crate::state::of(out_dir),
        }
    }

    /// The file of the export of `query` into `target`: one per output, so that the windows of
    /// a backfill keep their own.
    fn path(&self, query: &str, target: &Path) -> String {
        let name: String = query
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    true => c,
                    false => '_',
                },
            )
            .collect();
        let digest = Sha256::digest(target.to_string_lossy().as_bytes());
        format!("{FOLDER}/{name}-{}.json", &hex(&digest)[..12])
    }

    /// The checkpoint of `query` into `target`, if one was left (one that cannot be read is
    /// reported as a reason to start over).
    pub fn load(&self, query: &str, target: &Path) -> Option<Result<Checkpoint, String>> {
        let text = match self.state.read(&self.path(query, target)) {
            Ok(text) => text?,
            Err(err) => return Some(Err(format!("its checkpoint cannot be read ({err})"))),
        };
        Some(match serde_json::from_slice::<Checkpoint>(&text) {
            Ok(c) if c.version != VERSION => {
                Err("its checkpoint is from another version of gscrape".to_owned())
            }
            Ok(c) if c.query == query && c.target == target && is_temp_of(&c.file.temp, target) => {
                Ok(c)
            }
            Ok(_) => Err("its checkpoint names another export".to_owned()),
            Err(err) => Err(format!("its checkpoint cannot be read ({err})")),
        })
    }

    /// Writes `checkpoint` whole (a local file through a temporary file renamed over the last
    /// one; an object in one upload).
    pub fn save(&self, checkpoint: &Checkpoint) -> std::io::Result<()> {
        let path = self.path(&checkpoint.query, &checkpoint.target);
        let json = serde_json::to_vec(checkpoint).map_err(std::io::Error::other)?;
        self.state.write(&path, &json)
    }

    /// Forgets the export of `query` into `target`: its checkpoint and the temporary file (or
    /// the uploaded parts) it names, unless that has become the output.
    pub fn discard(&self, query: &str, target: &Path) {
        let path = self.path(query, target);
        // Only ever a temporary file of this export, whatever the checkpoint says.
        if let Some(checkpoint) = self
            .read(&path)
            .filter(|c| is_temp_of(&c.file.temp, target))
        {
            // (A checkpoint of an object names its URL as its target.)
            let object = target.to_str().map(crate::gcs::ObjectUrl::parse);
            match (&checkpoint.file.object, object) {
                (Some(mark), Some(Ok(object))) => remove_parts(&object, mark),
                (Some(_), _) => {}
                (None, _) => {
                    let _ = std::fs::remove_file(&checkpoint.file.temp);
                }
            }
        }
        self.state.remove(&path);
    }

    /// Forgets the checkpoint of a finished export (its temporary file is the output now).
    pub fn finished(&self, query: &str, target: &Path) {
        self.state.remove(&self.path(query, target));
    }

    /// True when the export of `query` into `target` left a checkpoint.
    pub fn exists(&self, query: &str, target: &Path) -> bool {
        self.state.exists(&self.path(query, target))
    }

    /// Drops (with their temporary files) the checkpoints for which `keep` says false, given
    /// their query and target: those an export will never take up (a dated output's of an
    /// earlier day, a query now written elsewhere or no longer resumable).
    pub fn retain(&self, keep: impl Fn(&str, &Path) -> bool) {
        for checkpoint in self.all() {
            if !keep(&checkpoint.query, &checkpoint.target) {
                tracing::info!(
                    "dropped the checkpoint of {} into {}: no export of this run takes it up",
                    checkpoint.query,
                    checkpoint.target.display()
                );
                self.discard(&checkpoint.query, &checkpoint.target);
            }
        }
    }

    /// The temporary files the checkpoints name (for an object, the parts' common name):
    /// kept by the cleanup of a run that resumes.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        self.all()
            .into_iter()
            .map(|checkpoint| checkpoint.file.temp)
            .collect()
    }

    /// Every checkpoint that reads (others are left to `load`, which says what is wrong).
    fn all(&self) -> Vec<Checkpoint> {
        // (Not the temporary file of a write that a kill left: checkpoints end in `.json`.)
        self.state
            .list(FOLDER)
            .into_iter()
            .filter(|name| name.ends_with(".json"))
            .filter_map(|name| self.read(&format!("{FOLDER}/{name}")))
            .collect()
    }

    /// The checkpoint in the file `relative`, if it reads.
    fn read(&self, relative: &str) -> Option<Checkpoint> {
        serde_json::from_slice(&self.state.read(relative).ok()??).ok()
    }
}

/// Removes the uploaded parts a checkpoint of `object` names (best effort).
fn remove_parts(object: &crate::gcs::ObjectUrl, mark: &crate::sink::object::ObjectMark) {
    let Ok(gcs) = crate::gcs::io::get() else {
        return;
    };
    let parts: Vec<(crate::gcs::ObjectUrl, i64)> = mark
        .parts
        .iter()
        .map(|p| {
            let url = crate::gcs::ObjectUrl {
                bucket: object.bucket.clone(),
                name: p.name.clone(),
            };
            (url, p.generation)
        })
        .collect();
    gcs.block(move |s| async move {
        for (part, generation) in parts {
            let _ = s.delete(&part, Some(generation)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(target: &Path, temp: &Path) -> Checkpoint {
        Checkpoint {
            version: VERSION,
            query: "files".to_owned(),
            request: fingerprint(&[&"request"]),
            target: target.to_owned(),
            file: Mark {
                temp: temp.to_owned(),
                bytes: 3,
                sha256: "00".to_owned(),
                object: None,
                sha256_state: None,
            },
            rows: 1,
            at: Position::Parents {
                done: 1,
                sha256: "11".to_owned(),
            },
            newest: None,
            columns: None,
            gone: None,
        }
    }

    #[test]
    fn saved_loaded_and_discarded_with_its_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let target = dir.path().join("files.csv");
        let temp = dir.path().join(".files.csv.AbC123.tmp");
        std::fs::write(&temp, "abc").unwrap();
        store.save(&checkpoint(&target, &temp)).unwrap();
        let loaded = store.load("files", &target).unwrap().unwrap();
        assert_eq!(loaded.file.temp, temp);
        assert_eq!(store.temp_files(), std::slice::from_ref(&temp));
        // Another output of the same query has its own.
        assert!(store.load("files", &dir.path().join("other.csv")).is_none());
        store.discard("files", &target);
        assert!(!temp.exists());
        assert!(store.load("files", &target).is_none());
    }

    #[test]
    fn a_checkpoint_naming_any_other_file_is_refused_and_the_file_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let target = dir.path().join("files.csv");
        let elsewhere = dir.path().join("keep.txt");
        std::fs::write(&elsewhere, "mine").unwrap();
        store.save(&checkpoint(&target, &elsewhere)).unwrap();
        let why = store.load("files", &target).unwrap().unwrap_err();
        assert_eq!(why, "its checkpoint names another export");
        store.discard("files", &target);
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "mine");
    }
}
