//! Where a run keeps what must outlive it — checkpoints, incremental cursors, a backfill's
//! notes, the run lock: `<out-dir>/.gscrape/` by default, or `--state DIR | gs://BUCKET/PREFIX/`
//! (`state` in gscrape.toml, `GSCRAPE_STATE`). In Cloud Storage it outlives the machine: a
//! Cloud Run Job's retry or another pod resumes, and overlapping runs on two machines see one
//! lock ([`crate::lock`]).
//!
//! The files are small and written whole: a local one through a temporary file renamed over
//! it, an object in one upload (Cloud Storage replaces an object atomically). The `--state`
//! of the running command is installed once per process ([`install`]), as the endpoints are.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;

use crate::gcs::{Precondition, Prefix};

/// A run's state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDir {
    Local(PathBuf),
    Cloud(Prefix),
}

static STATE: OnceLock<Option<String>> = OnceLock::new();

/// Makes `state` (`--state`; `None`: beside the outputs) the process's state location.
pub fn install(state: Option<String>) {
    let _ = STATE.set(state);
}

/// Checks a `--state` value: a directory, or a `gs://BUCKET/PREFIX/` location.
pub fn check(text: &str) -> Result<(), String> {
    match crate::gcs::is_gs(text) {
        true => Prefix::parse(text).map(drop),
        false if text.trim().is_empty() => Err("an empty --state".to_owned()),
        false => Ok(()),
    }
}

/// The state directory of a run writing under `out_dir`.
pub fn of(out_dir: &Path) -> StateDir {
    let installed = STATE.get().and_then(Option::as_deref);
    let text = match installed {
        Some(state) => state.to_owned(),
        None => {
            let dir = out_dir.to_string_lossy();
            match crate::gcs::is_gs(&dir) {
                true => format!("{}/.gscrape/", dir.trim_end_matches('/')),
                false => return StateDir::Local(out_dir.join(".gscrape")),
            }
        }
    };
    match crate::gcs::is_gs(&text) {
        // Checked when the setting was read.
        true => Prefix::parse(&text)
            .map(StateDir::Cloud)
            .unwrap_or_else(|_| StateDir::Local(PathBuf::from(&text))),
        false => StateDir::Local(PathBuf::from(text)),
    }
}

/// True when the state of a run under `out_dir` is in Cloud Storage.
pub fn in_cloud(out_dir: &Path) -> bool {
    matches!(of(out_dir), StateDir::Cloud(_))
}

fn cloud_error(err: crate::gcs::StorageError) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

/// Replaces the JSON object `object` with `bytes` in one upload (Cloud Storage replaces an
/// object whole), through the process's connection: the state's files, a run's summary.
pub fn write_object(object: crate::gcs::ObjectUrl, bytes: &[u8]) -> std::io::Result<()> {
    let bytes = Bytes::copy_from_slice(bytes);
    let gcs = crate::gcs::io::get().map_err(cloud_error)?;
    gcs.block(move |s| async move {
        s.write(&object, bytes, "application/json", Precondition::Any)
            .await
    })
    .map(drop)
    .map_err(cloud_error)
}

impl StateDir {
    /// Where `relative` is, for messages.
    pub fn show(&self, relative: &str) -> String {
        match self {
            StateDir::Local(dir) => dir.join(relative).display().to_string(),
            StateDir::Cloud(prefix) => prefix.object(relative).to_string(),
        }
    }

    /// The bytes of `relative`; `None` when there is no such file.
    pub fn read(&self, relative: &str) -> std::io::Result<Option<Vec<u8>>> {
        match self {
            StateDir::Local(dir) => match std::fs::read(dir.join(relative)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err),
            },
            StateDir::Cloud(prefix) => {
                let object = prefix.object(relative);
                let gcs = crate::gcs::io::get().map_err(cloud_error)?;
                let read = gcs.block(move |s| async move { s.read(&object).await });
                Ok(read.map_err(cloud_error)?.map(|(bytes, _)| bytes.to_vec()))
            }
        }
    }

    /// Replaces `relative` with `bytes`, whole.
    pub fn write(&self, relative: &str, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            StateDir::Local(dir) => crate::util::write_atomically(&dir.join(relative), bytes),
            StateDir::Cloud(prefix) => write_object(prefix.object(relative), bytes),
        }
    }

    /// Removes `relative` (absent already is done).
    pub fn remove(&self, relative: &str) {
        match self {
            StateDir::Local(dir) => {
                let _ = std::fs::remove_file(dir.join(relative));
            }
            StateDir::Cloud(prefix) => {
                let object = prefix.object(relative);
                if let Ok(gcs) = crate::gcs::io::get() {
                    let _ = gcs.block(move |s| async move { s.delete(&object, None).await });
                }
            }
        }
    }

    /// True when `relative` exists.
    pub fn exists(&self, relative: &str) -> bool {
        match self {
            StateDir::Local(dir) => dir.join(relative).is_file(),
            StateDir::Cloud(_) => self.read(relative).is_ok_and(|b| b.is_some()),
        }
    }

    /// The names of the files in the folder `relative` (not below it).
    pub fn list(&self, relative: &str) -> Vec<String> {
        match self {
            StateDir::Local(dir) => std::fs::read_dir(dir.join(relative))
                .map(|entries| {
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            StateDir::Cloud(prefix) => {
                let folder = format!("{}{}/", prefix.prefix, relative.trim_matches('/'));
                let bucket = prefix.bucket.clone();
                let Ok(gcs) = crate::gcs::io::get() else {
                    return Vec::new();
                };
                let listed = {
                    let folder = folder.clone();
                    gcs.block(move |s| async move { s.list(&bucket, &folder).await })
                };
                listed
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.name.strip_prefix(&folder).map(str::to_owned))
                    .filter(|name| !name.contains('/'))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_files_read_written_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::Local(dir.path().join(".gscrape"));
        assert_eq!(state.read("cursors/a.txt").unwrap(), None);
        state.write("cursors/a.txt", b"2024").unwrap();
        assert_eq!(state.read("cursors/a.txt").unwrap().unwrap(), b"2024");
        assert!(state.exists("cursors/a.txt"));
        assert_eq!(state.list("cursors"), ["a.txt"]);
        state.remove("cursors/a.txt");
        assert!(!state.exists("cursors/a.txt"));
        assert!(check("gs://Bad/x").is_err());
        assert!(check("gs://good-bucket/state/").is_ok());
    }
}
