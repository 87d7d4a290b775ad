//! `gscrape.lock`: the Discovery documents a project's queries are planned against, pinned as
//! a lockfile pins packages. Each API/version's `revision` and the SHA-256 of the document's
//! bytes are written to `gscrape.lock` in the project directory, the documents themselves to
//! `discovery-lock/` beside it (commit both). While a lock exists, `run`, `validate`,
//! `describe` and `new` plan against the pinned documents, so a scheduled job keeps its
//! columns when Google adds a field; `gscrape lock --update` moves the pins.

use std::path::{Path, PathBuf};

use crate::util::sha256_hex;
use serde::{Deserialize, Serialize};

/// The lock file's name, in the project directory (where `gscrape.toml` is read).
pub const LOCK_FILE: &str = "gscrape.lock";
/// The directory the pinned documents are kept in, beside the lock file.
pub const LOCK_DIR: &str = "discovery-lock";

/// What `gscrape.lock` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// The format of this file.
    pub version: u32,
    /// One entry per API and version, sorted.
    #[serde(default, rename = "api")]
    pub apis: Vec<Pinned>,
}

/// One pinned document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    /// The API's name and version, as queries give them (`drive`, `v3`).
    pub name: String,
    pub version: String,
    /// The document's own `revision` (`20261106`).
    pub revision: String,
    /// Its `etag`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// SHA-256 of the document's bytes, as kept in `file`.
    pub sha256: String,
    /// The document, relative to the lock file.
    pub file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: {why}", .path.display())]
    Bad { path: PathBuf, why: String },
    #[error(
        "{}: its SHA-256 is {found}, not the {wanted} that {LOCK_FILE} pins for {api}: the \
         document was changed; restore it (git checkout) or run `gscrape lock --update`",
        .path.display()
    )]
    Changed {
        path: PathBuf,
        api: String,
        wanted: String,
        found: String,
    },
}

impl Lock {
    /// The lock in `dir` (`None`: there is none).
    pub fn read(dir: &Path) -> Result<Option<Lock>, LockError> {
        let path = dir.join(LOCK_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(LockError::Bad {
                    path,
                    why: format!("cannot read it: {e}"),
                })
            }
        };
        let lock: Lock = toml::from_str(&text).map_err(|e| LockError::Bad {
            path: path.clone(),
            why: e.message().to_owned(),
        })?;
        if lock.version != 1 {
            return Err(LockError::Bad {
                path,
                why: format!(
                    "version {} is not one this gscrape reads (1): update gscrape",
                    lock.version
                ),
            });
        }
        Ok(Some(lock))
    }

    /// The pin of `api` `version`, if the lock has one.
    pub fn pinned(&self, api: &str, version: &str) -> Option<&Pinned> {
        self.apis
            .iter()
            .find(|p| p.name == api && p.version == version)
    }

    /// Pins `text`, the document of `api` `version`, keeping it under `dir`; replaces an
    /// older pin of the same API and version.
    pub fn pin(
        &mut self,
        dir: &Path,
        api: &str,
        version: &str,
        text: &str,
        revision: &str,
        etag: Option<&str>,
    ) -> Result<&Pinned, LockError> {
        let sha256 = sha256_hex(text.as_bytes());
        let safe = |s: &str| s.replace(['/', '\\', ':'], "_");
        let file = Path::new(LOCK_DIR).join(format!(
            "{}.{}.{}.json",
            safe(api),
            safe(version),
            &sha256[..16]
        ));
        let path = dir.join(&file);
        let bad = |e: std::io::Error| LockError::Bad {
            path: path.clone(),
            why: format!("cannot write it: {e}"),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(bad)?;
        }
        crate::util::write_atomically(&path, text.as_bytes()).map_err(bad)?;
        self.apis
            .retain(|p| !(p.name == api && p.version == version));
        self.apis.push(Pinned {
            name: api.to_owned(),
            version: version.to_owned(),
            revision: revision.to_owned(),
            etag: etag.map(str::to_owned),
            sha256,
            file,
        });
        self.apis
            .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        Ok(self.pinned(api, version).expect("the pin was just added"))
    }

    /// Writes the lock to `dir` (atomically), and removes the documents under `LOCK_DIR` it
    /// no longer names.
    pub fn write(&self, dir: &Path) -> Result<(), LockError> {
        let path = dir.join(LOCK_FILE);
        let mut text = String::from(
            "# The Discovery documents these queries are planned against (kept in discovery-lock/).\n\
             # Written by `gscrape lock`; `gscrape lock --update` moves it. Commit it with them.\n",
        );
        text += &toml::to_string(self).map_err(|e| LockError::Bad {
            path: path.clone(),
            why: e.to_string(),
        })?;
        crate::util::write_atomically(&path, text.as_bytes()).map_err(|e| LockError::Bad {
            path: path.clone(),
            why: format!("cannot write it: {e}"),
        })?;
        if let Ok(entries) = std::fs::read_dir(dir.join(LOCK_DIR)) {
            for entry in entries.flatten() {
                let kept = Path::new(LOCK_DIR).join(entry.file_name());
                if !self.apis.iter().any(|p| p.file == kept) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// The text of the pinned document of `pin`, checked against its SHA-256.
    pub fn document(dir: &Path, pin: &Pinned) -> Result<String, LockError> {
        let path = dir.join(&pin.file);
        let text = std::fs::read_to_string(&path).map_err(|e| LockError::Bad {
            path: path.clone(),
            why: format!(
                "cannot read the document {LOCK_FILE} pins for {} {}: {e}",
                pin.name, pin.version
            ),
        })?;
        let found = sha256_hex(text.as_bytes());
        if found != pin.sha256 {
            return Err(LockError::Changed {
                path,
                api: format!("{} {}", pin.name, pin.version),
                wanted: pin.sha256.clone(),
                found,
            });
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_written_reads_back_and_keeps_only_the_documents_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut lock = Lock {
            version: 1,
            apis: Vec::new(),
        };
        lock.pin(
            dir.path(),
            "drive",
            "v3",
            "{\"a\":1}",
            "20240101",
            Some("\"e\""),
        )
        .unwrap();
        lock.pin(dir.path(), "drive", "v3", "{\"a\":2}", "20240202", None)
            .unwrap();
        lock.pin(dir.path(), "admin", "directory_v1", "{}", "1", None)
            .unwrap();
        lock.write(dir.path()).unwrap();
        let read = Lock::read(dir.path()).unwrap().unwrap();
        assert_eq!(read, lock);
        assert_eq!(
            read.apis
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["admin", "drive"]
        );
        let drive = read.pinned("drive", "v3").unwrap();
        assert_eq!(drive.revision, "20240202");
        assert_eq!(Lock::document(dir.path(), drive).unwrap(), "{\"a\":2}");
        let kept = std::fs::read_dir(dir.path().join(LOCK_DIR))
            .unwrap()
            .count();
        assert_eq!(kept, 2, "the replaced document is removed");

        std::fs::write(dir.path().join(&drive.file), "{\"a\":3}").unwrap();
        let err = Lock::document(dir.path(), drive).unwrap_err().to_string();
        assert!(err.contains("the document was changed"), "{err}");
    }
}
