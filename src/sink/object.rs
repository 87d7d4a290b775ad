//! Outputs that are Cloud Storage objects (`gs://BUCKET/NAME`), as atomic as local files: the
//! object appears, or replaces the one there, only once the export is complete, and only if
//! nobody wrote it since the export started (`ifGenerationMatch`: a second writer gets a loud
//! `412`, never a silent overwrite). A failed or interrupted export leaves the old object as it
//! was.
//!
//! Bytes go up while pages arrive, in chunks of [`CHUNK`] (a multiple of the resumable
//! protocol's 256 KiB), one chunk uploading while the next fills: memory stays at two chunks
//! whatever the export's size.
//!
//! Two ways to the object:
//! - **direct** (gzip, xlsx: outputs that cannot be taken up mid-way): one resumable upload
//!   to the object itself, finished at the end;
//! - **parts** (plain CSV, TSV, NDJSON: checkpointed): uploads to temporary objects beside the
//!   target (`.NAME.XXXXXX.tmp.part-00001`, …), one finished at each checkpoint so that a
//!   `--resume` on another machine finds what the dead one wrote; at the end one `compose`
//!   (a tree of them beyond 32 parts) makes the object, and the parts are removed. Parts a
//!   killed run left are removed by the next run, but those a checkpoint names.

use std::sync::mpsc::Receiver;

use bytes::Bytes;

use crate::gcs::io::Gcs;
use crate::gcs::upload::{Progress, Session, QUANTUM};
use crate::gcs::{ObjectMeta, ObjectUrl, Precondition, StorageError};

/// The bytes of one upload request: 8 MiB (32 × 256 KiB), Google's suggested minimum for
/// throughput; `GSCRAPE_UPLOAD_CHUNK_KIB` (a multiple of 256) changes it, for less memory or
/// (in tests) more chunks.
pub const CHUNK: usize = 32 * QUANTUM;

/// [`CHUNK`], or what `GSCRAPE_UPLOAD_CHUNK_KIB` says (read once).
pub(crate) fn chunk_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("GSCRAPE_UPLOAD_CHUNK_KIB")
            .ok()
            .and_then(|kib| kib.trim().parse::<usize>().ok())
            .map(|kib| kib * 1024 / QUANTUM * QUANTUM)
            .filter(|&bytes| bytes >= QUANTUM)
            .unwrap_or(CHUNK)
    })
}

/// One finished part of an export, as a checkpoint names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    pub name: String,
    pub generation: i64,
    pub size: u64,
}

/// Where an object export stands at a checkpoint: the parts finished (all its bytes so far),
/// the generation it replaces, and the running CRC-32C.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMark {
    /// The parts' common name (`.NAME.XXXXXX.tmp`), beside the target.
    pub stem: String,
    pub parts: Vec<Part>,
    /// The generation of the object it replaces when it started (`None`: there was none).
    pub replaces: Option<i64>,
    pub crc32c: u32,
}

/// The proof of a written object, as Cloud Storage describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectProof {
    pub bucket: String,
    pub name: String,
    pub generation: i64,
    pub size: u64,
    pub crc32c: Option<String>,
    pub md5: Option<String>,
}

impl From<&ObjectMeta> for ObjectProof {
    fn from(meta: &ObjectMeta) -> Self {
        ObjectProof {
            bucket: meta.bucket.clone(),
            name: meta.name.clone(),
            generation: meta.generation,
            size: meta.size,
            crc32c: meta.crc32c.clone(),
            md5: meta.md5_hash.clone(),
        }
    }
}

enum Mode {
    Direct,
    Parts { stem: String, parts: Vec<Part> },
}

/// The upload being filled: its session and the bytes it holds.
struct Open {
    session: Session,
    sent: u64,
}

/// Writes one object.
pub struct ObjectWriter {
    gcs: Gcs,
    target: ObjectUrl,
    content_type: &'static str,
    replaces: Precondition,
    mode: Mode,
    open: Option<Open>,
    /// The chunk being filled: never more than [`chunk_size`], so it is never reallocated.
    buffer: Vec<u8>,
    /// The buffer of the last chunk sent, back once its upload is done, for the next: two
    /// buffers are all the memory an upload holds, and the allocator is not handed (and left
    /// holding) 8 MiB for every chunk.
    spare: Option<Vec<u8>>,
    /// The chunk uploading now: its answer, and its bytes back.
    in_flight: Option<Receiver<(Result<Progress, StorageError>, Bytes)>>,
    /// CRC-32C of every byte written, and of the current part's.
    crc: u32,
    part_crc: u32,
    /// Once finished or checkpointed, parts are not removed when it is dropped.
    keep_parts: bool,
}

/// The `Content-Type` of an object, by its name's extension.
pub fn content_type(name: &str) -> &'static str {
    let name = name.to_ascii_lowercase();
    match name.rsplit('.').next().unwrap_or_default() {
        "gz" => "application/gzip",
        "csv" => "text/csv; charset=utf-8",
        "tsv" => "text/tab-separated-values; charset=utf-8",
        "ndjson" | "jsonl" => "application/x-ndjson",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "parquet" => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

impl ObjectWriter {
    /// A writer of `target`: `checkpointed` writes parts (see the module's doc), otherwise one
    /// upload to the object. The object's generation now is what the export replaces.
    pub fn create(gcs: &Gcs, target: ObjectUrl, checkpointed: bool) -> Result<Self, StorageError> {
        let url = target.clone();
        let existing = gcs.block(move |s| async move { s.meta(&url).await })?;
        let replaces = Precondition::replacing(existing.as_ref());
        let mode = match checkpointed {
            true => Mode::Parts {
                stem: format!(".{}.{}.tmp", target.file_name(), random_letters()),
                parts: Vec::new(),
            },
            false => Mode::Direct,
        };
        let mut writer = ObjectWriter {
            gcs: gcs.clone(),
            content_type: content_type(&target.name),
            target,
            replaces,
            mode,
            open: None,
            buffer: Vec::with_capacity(chunk_size()),
            spare: None,
            in_flight: None,
            crc: 0,
            part_crc: 0,
            keep_parts: false,
        };
        // Started now: a bucket that cannot be written is said before any page is fetched.
        writer.open_session()?;
        Ok(writer)
    }

    /// Takes up the export `mark` left: its parts, checked to be there as they were.
    pub fn resume(gcs: &Gcs, target: ObjectUrl, mark: &ObjectMark) -> Result<Self, String> {
        let folder = target.sibling("");
        let listed = {
            let (bucket, prefix) = (
                folder.bucket.clone(),
                format!("{}{}", folder.name, mark.stem),
            );
            gcs.block(move |s| async move { s.list(&bucket, &prefix).await })
                .map_err(|e| e.to_string())?
        };
        for part in &mark.parts {
            let found = listed.iter().find(|m| m.name == part.name);
            match found {
                Some(meta) if meta.generation == part.generation && meta.size == part.size => {}
                _ => {
                    return Err(format!(
                        "its part gs://{}/{} is not as the checkpoint left it",
                        target.bucket, part.name
                    ))
                }
            }
        }
        // A part the killed attempt finished after its last checkpoint is not the export's: it
        // goes, so that the parts from here on are created where nothing is (`ifGenerationMatch=0`).
        let named = |name: &str| mark.parts.iter().any(|p| p.name == name);
        for leftover in listed.into_iter().filter(|m| !named(&m.name)) {
            let url = ObjectUrl {
                bucket: target.bucket.clone(),
                name: leftover.name.clone(),
            };
            let generation = leftover.generation;
            gcs.block(move |s| async move { s.delete(&url, Some(generation)).await })
                .map_err(|e| e.to_string())?;
        }
        let replaces = match mark.replaces {
            Some(generation) => Precondition::Generation(generation),
            None => Precondition::Absent,
        };
        Ok(ObjectWriter {
            gcs: gcs.clone(),
            content_type: content_type(&target.name),
            target,
            replaces,
            mode: Mode::Parts {
                stem: mark.stem.clone(),
                parts: mark.parts.clone(),
            },
            open: None,
            buffer: Vec::with_capacity(chunk_size()),
            spare: None,
            in_flight: None,
            crc: mark.crc32c,
            part_crc: 0,
            keep_parts: true,
        })
    }

    pub fn target(&self) -> &ObjectUrl {
        &self.target
    }

    /// The object the current upload goes to: the target, or the next part.
    fn upload_target(&self) -> (ObjectUrl, Precondition) {
        match &self.mode {
            Mode::Direct => (self.target.clone(), self.replaces),
            Mode::Parts { stem, parts } => (
                self.target
                    .sibling(&format!("{stem}.part-{:05}", parts.len() + 1)),
                Precondition::Absent,
            ),
        }
    }

    fn open_session(&mut self) -> Result<(), StorageError> {
        if self.open.is_some() {
            return Ok(());
        }
        let (object, precondition) = self.upload_target();
        let content_type = match self.mode {
            Mode::Direct => self.content_type,
            Mode::Parts { .. } => "application/octet-stream",
        };
        let session = self.gcs.block(move |s| async move {
            s.start_upload(&object, content_type, precondition).await
        })?;
        self.open = Some(Open { session, sent: 0 });
        Ok(())
    }

    /// An empty buffer for the next chunk: the spare one, or a new one.
    fn fresh_buffer(&mut self) -> Vec<u8> {
        self.spare
            .take()
            .unwrap_or_else(|| Vec::with_capacity(chunk_size()))
    }

    /// Waits for the chunk uploading now, if any.
    fn settle(&mut self) -> Result<(), StorageError> {
        let Some(answer) = self.in_flight.take() else {
            return Ok(());
        };
        let (progress, chunk) = answer.recv().unwrap_or_else(|_| {
            let dropped = "the Cloud Storage thread dropped an upload".to_owned();
            (Err(StorageError::Other(dropped)), Bytes::new())
        });
        // Its buffer, unless something still holds the bytes (then it is left to them).
        if let Ok(chunk) = chunk.try_into_mut() {
            let mut buffer = Vec::from(chunk);
            buffer.clear();
            self.spare = Some(buffer).filter(|b| b.capacity() >= chunk_size());
        }
        let progress = progress?;
        let sent = self.open.as_ref().map(|open| open.sent);
        match progress {
            Progress::Holds(held) if Some(held) == sent => Ok(()),
            // In words: a dump of the answer would say nothing a person can act on.
            Progress::Holds(held) => Err(StorageError::BadAnswer {
                url: self.target.to_string(),
                why: format!(
                    "Cloud Storage holds {held} bytes of the upload where {} were sent",
                    sent.unwrap_or_default()
                ),
            }),
            Progress::Done(_) => Err(StorageError::BadAnswer {
                url: self.target.to_string(),
                why: "Cloud Storage finished the upload before its last chunk was sent".to_owned(),
            }),
        }
    }

    /// Sends the whole 256 KiB units of the buffer (one chunk in flight at a time).
    fn send_full_chunks(&mut self) -> Result<(), StorageError> {
        self.settle()?;
        self.open_session()?;
        let whole = self.buffer.len() / QUANTUM * QUANTUM;
        if whole == 0 {
            return Ok(());
        }
        let mut next = self.fresh_buffer();
        next.extend_from_slice(&self.buffer[whole..]);
        self.buffer.truncate(whole);
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, next));
        let open = self.open.as_mut().expect("opened above");
        let (session, offset) = (open.session.clone(), open.sent);
        open.sent += chunk.len() as u64;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.gcs.spawn(move |s| async move {
            let progress = s.put_chunk(&session, offset, &chunk, None, None).await;
            let _ = tx.send((progress, chunk));
        });
        self.in_flight = Some(rx);
        Ok(())
    }

    /// Sends the rest of the buffer as the last chunk of the current upload: the object (or
    /// part) it made.
    fn finish_upload(&mut self) -> Result<ObjectMeta, StorageError> {
        self.settle()?;
        self.open_session()?;
        let open = self.open.take().expect("opened above");
        let next = self.fresh_buffer();
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, next));
        let total = open.sent + chunk.len() as u64;
        let crc = match self.mode {
            Mode::Direct => self.crc,
            Mode::Parts { .. } => self.part_crc,
        };
        let (session, offset) = (open.session, open.sent);
        let progress = self.gcs.block(move |s| async move {
            s.put_chunk(&session, offset, &chunk, Some(total), Some(crc))
                .await
        })?;
        let Progress::Done(meta) = progress else {
            return Err(StorageError::BadAnswer {
                url: self.target.to_string(),
                why: "the last chunk did not finish the upload".to_owned(),
            });
        };
        check_crc(&meta, crc)?;
        self.part_crc = 0;
        Ok(*meta)
    }

    /// Finishes the current part, for a checkpoint: everything written so far is in finished
    /// parts, which the mark names. `None` for a direct upload.
    pub fn mark(&mut self) -> Result<Option<ObjectMark>, StorageError> {
        if matches!(self.mode, Mode::Direct) {
            return Ok(None);
        }
        if !self.buffer.is_empty() || self.open.as_ref().is_some_and(|o| o.sent > 0) {
            let meta = self.finish_upload()?;
            if let Mode::Parts { parts, .. } = &mut self.mode {
                parts.push(Part {
                    name: meta.name,
                    generation: meta.generation,
                    size: meta.size,
                });
            }
        }
        self.keep_parts = true;
        let Mode::Parts { stem, parts } = &self.mode else {
            return Ok(None);
        };
        Ok(Some(ObjectMark {
            stem: stem.clone(),
            parts: parts.clone(),
            replaces: match self.replaces {
                Precondition::Generation(g) => Some(g),
                Precondition::Absent | Precondition::Any => None,
            },
            crc32c: self.crc,
        }))
    }

    /// Puts the object in place: the last chunk, or the parts composed; its description,
    /// checked against what was written (size, CRC-32C).
    pub fn finish(mut self, total: u64) -> Result<ObjectMeta, StorageError> {
        let meta = match &self.mode {
            Mode::Direct => self.finish_upload()?,
            Mode::Parts { .. } => {
                if !self.buffer.is_empty()
                    || self.open.as_ref().is_some_and(|o| o.sent > 0)
                    || matches!(&self.mode, Mode::Parts { parts, .. } if parts.is_empty())
                {
                    let part = self.finish_upload()?;
                    if let Mode::Parts { parts, .. } = &mut self.mode {
                        parts.push(Part {
                            name: part.name,
                            generation: part.generation,
                            size: part.size,
                        });
                    }
                }
                match self.compose() {
                    Ok(meta) => meta,
                    // Another writer won: these parts can never become the object.
                    Err(err @ StorageError::Changed { .. }) => {
                        self.keep_parts = false;
                        return Err(err);
                    }
                    Err(err) => return Err(err),
                }
            }
        };
        if meta.size != total {
            return Err(StorageError::BadAnswer {
                url: self.target.to_string(),
                why: format!("it holds {} bytes, but {total} were written", meta.size),
            });
        }
        check_crc(&meta, self.crc)?;
        self.keep_parts = false;
        self.remove_parts();
        Ok(meta)
    }

    fn compose(&mut self) -> Result<ObjectMeta, StorageError> {
        let Mode::Parts { stem, parts } = &self.mode else {
            unreachable!("compose is for parts")
        };
        let sources: Vec<ObjectMeta> = parts
            .iter()
            .map(|p| ObjectMeta {
                bucket: self.target.bucket.clone(),
                name: p.name.clone(),
                generation: p.generation,
                size: p.size,
                crc32c: None,
                md5_hash: None,
                updated: None,
                metadata: None,
            })
            .collect();
        let (target, content_type, precondition) =
            (self.target.clone(), self.content_type, self.replaces);
        let scratch_of = {
            let target = self.target.clone();
            let stem = stem.clone();
            move |n: usize| target.sibling(&format!("{stem}.compose-{n:05}"))
        };
        self.gcs.block(move |s| async move {
            s.compose(&target, &sources, content_type, precondition, &scratch_of)
                .await
        })
    }

    /// Removes the finished parts (best effort: the next run removes what is left).
    fn remove_parts(&mut self) {
        let Mode::Parts { parts, .. } = &mut self.mode else {
            return;
        };
        let objects: Vec<(ObjectUrl, i64)> = parts
            .drain(..)
            .map(|p| {
                let object = ObjectUrl {
                    bucket: self.target.bucket.clone(),
                    name: p.name,
                };
                (object, p.generation)
            })
            .collect();
        if objects.is_empty() {
            return;
        }
        self.gcs.block(move |s| async move {
            for (object, generation) in objects {
                let _ = s.delete(&object, Some(generation)).await;
            }
        });
    }
}

impl std::io::Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.crc = crc32c::crc32c_append(self.crc, buf);
        self.part_crc = crc32c::crc32c_append(self.part_crc, buf);
        // Up to a chunk at a time: the buffer never grows past its capacity.
        let mut rest = buf;
        while !rest.is_empty() {
            let room = chunk_size().saturating_sub(self.buffer.len()).max(1);
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buffer.extend_from_slice(now);
            rest = later;
            if self.buffer.len() >= chunk_size() {
                self.send_full_chunks().map_err(std::io::Error::other)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    /// An export dropped unfinished: its parts go, unless a checkpoint names them.
    fn drop(&mut self) {
        if !self.keep_parts {
            self.remove_parts();
        }
    }
}

fn check_crc(meta: &ObjectMeta, crc: u32) -> Result<(), StorageError> {
    let ours = crate::gcs::crc32c_text(crc);
    match &meta.crc32c {
        Some(theirs) if *theirs != ours => Err(StorageError::BadAnswer {
            url: meta.url().to_string(),
            why: format!("Cloud Storage's CRC-32C is {theirs}, but what was sent has {ours}"),
        }),
        _ => Ok(()),
    }
}

/// Six letters and digits, as a local temporary file's name has.
pub(crate) fn random_letters() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..6)
        .map(|_| char::from(LETTERS[fastrand::usize(..LETTERS.len())]))
        .collect()
}

/// Removes the parts and scratch objects beside `target` that a killed export left: those
/// whose stem no checkpoint in `keep` names (`.NAME.XXXXXX.tmp`), last changed over a minute
/// ago (a live export's are newer). Returns the objects removed.
pub fn remove_stale_parts(target: &ObjectUrl, keep: &[String]) -> Vec<String> {
    let Ok(gcs) = crate::gcs::io::get() else {
        return Vec::new();
    };
    let folder = target.sibling("");
    let (bucket, prefix) = (
        target.bucket.clone(),
        format!("{}.{}.", folder.name, target.file_name()),
    );
    let Ok(listed) = gcs.block(move |s| async move { s.list(&bucket, &prefix).await }) else {
        return Vec::new();
    };
    let minute_ago = chrono::Utc::now() - chrono::Duration::seconds(60);
    let stale: Vec<ObjectMeta> = listed
        .into_iter()
        .filter(|meta| {
            let name = meta.name.rsplit('/').next().unwrap_or_default();
            let kept = keep
                .iter()
                .any(|stem| name.starts_with(&format!("{stem}.")));
            let old = meta
                .updated
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t < minute_ago);
            is_part_name(name, target.file_name()) && !kept && old
        })
        .collect();
    gcs.block(move |s| async move {
        let mut removed = Vec::new();
        for meta in stale {
            if s.delete(&meta.url(), Some(meta.generation)).await.is_ok() {
                removed.push(meta.url().to_string());
            }
        }
        removed
    })
}

/// True when `name` (an object's last name part) is a part or scratch object of one of this
/// module's exports into `target_name`: `.TARGET.XXXXXX.tmp.part-NNNNN` / `.compose-NNNNN`.
pub fn is_part_name(name: &str, target_name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_prefix(target_name))
        .and_then(|n| n.strip_prefix('.'))
    else {
        return false;
    };
    let Some((random, tail)) = rest.split_once(".tmp.") else {
        return false;
    };
    let numbered = |t: &str, kind: &str| {
        t.strip_prefix(kind)
            .is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    random.len() == 6
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
        && (numbered(tail, "part-") || numbered(tail, "compose-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert!(is_part_name(
            ".files.csv.AbC123.tmp.part-00001",
            "files.csv"
        ));
        assert!(is_part_name(
            ".files.csv.AbC123.tmp.compose-00000",
            "files.csv"
        ));
        for other in [
            "files.csv",
            ".files.csv.AbC123.tmp",
            ".files.csv.AbC12.tmp.part-00001",
            ".files.csv.AbC123.tmp.part-1",
            ".other.csv.AbC123.tmp.part-00001",
        ] {
            assert!(!is_part_name(other, "files.csv"), "{other}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a/b.csv"), "text/csv; charset=utf-8");
        assert_eq!(content_type("b.csv.gz"), "application/gzip");
        assert_eq!(content_type("b.NDJSON"), "application/x-ndjson");
    }
}
