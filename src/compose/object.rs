//! Composing parts in Cloud Storage (`gscrape compose gs://BUCKET/NAME`): the parts are the
//! objects beside the output; Cloud Storage's `compose` joins them server-side (32 sources at
//! a time, a tree of composes beyond, [`crate::gcs::Storage::compose`]) into the output, which
//! it replaces only if nobody wrote it since the compose started (`ifGenerationMatch`).
//!
//! Compose joins whole objects, and every part a shard writes is a whole file (its header
//! included: a part alone is a valid CSV, and a `*-part-*` wildcard load that skips one
//! leading row skips a header, never a record). So:
//! - every part is read once, streamed a range at a time ([`PartReader`], flat memory), for
//!   what a byte-level join cannot check by itself and the local compose checks — the same
//!   header in every part, each ending with a line break (else two rows would fuse), valid
//!   gzip — and for the line that proves the output (its rows, size and SHA-256, the same as
//!   the local compose prints; Cloud Storage's size and CRC-32C are checked against them);
//! - the first part that starts the output is a compose source as it is; a later part that
//!   must lose something (its header, a byte order mark) is written without it to a scratch
//!   object beside the output (`.NAME.XXXXXX.tmp.part-IIIII`, gzip: compressed again as a
//!   member of its own), which is composed in its place and removed after; a part that loses
//!   nothing (NDJSON, parts without a header) is composed as it is. Only the CSV/TSV parts past
//!   the first go up again; nothing is held in memory beyond a chunk.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{select_parts, ComposeError, Joined, Joiner, Layout, Parts, BOM};
use crate::gcs::io::Gcs;
use crate::gcs::{ObjectMeta, ObjectUrl, Precondition, StorageError};
use crate::sink::object::{chunk_size, content_type, random_letters, ObjectWriter};

/// The bytes read of a part before deciding whether it starts with a byte order mark.
const PEEK: usize = 64 << 10;

/// What a compose put in place: the join's proof, and the object as Cloud Storage describes it.
#[derive(Debug, Clone)]
pub struct Composed {
    pub joined: Joined,
    pub object: ObjectMeta,
}

fn storage(output: &str) -> impl Fn(StorageError) -> ComposeError + '_ {
    move |source| match source {
        StorageError::Changed { .. } => ComposeError::Changed {
            output: output.to_owned(),
        },
        source => ComposeError::Storage {
            output: output.to_owned(),
            source: Box::new(source),
        },
    }
}

/// The object beside `url` that names the run that wrote it: `.NAME.run`.
pub fn run_record(url: &ObjectUrl) -> ObjectUrl {
    url.sibling(&format!(".{}.run", url.file_name()))
}

/// The run recorded beside `url` (`None`: none).
pub fn recorded_run(gcs: &Gcs, url: &ObjectUrl) -> Result<Option<String>, StorageError> {
    let record = run_record(url);
    let read = gcs.block(move |s| async move { s.read(&record).await })?;
    Ok(read.and_then(|(bytes, _)| {
        Some(String::from_utf8_lossy(&bytes).trim().to_owned()).filter(|t| !t.is_empty())
    }))
}

/// Records `run` beside `url` (`None`: removes any record).
pub fn record_run(gcs: &Gcs, url: &ObjectUrl, run: Option<&str>) -> Result<(), StorageError> {
    let record = run_record(url);
    match run {
        Some(run) => {
            let bytes = Bytes::from(format!("{run}\n"));
            gcs.block(move |s| async move {
                s.write(&record, bytes, "text/plain", Precondition::Any)
                    .await
            })
            .map(drop)
        }
        None => gcs.block(move |s| async move { s.delete(&record, None).await }),
    }
}

/// The run of `parts` (each recorded beside it, `.NAME.run`): [`super::check_runs`].
pub fn check_runs(
    gcs: &Gcs,
    parts: &[ObjectMeta],
    run: Option<&str>,
    output: &ObjectUrl,
) -> Result<Option<String>, ComposeError> {
    let shown = output.to_string();
    let mut recorded = Vec::with_capacity(parts.len());
    for part in parts {
        let url = part.url();
        recorded.push(super::RecordedRun {
            part: url.to_string(),
            run: recorded_run(gcs, &url).map_err(storage(&shown))?,
            record: run_record(&url).file_name().to_owned(),
        });
    }
    super::check_runs(&recorded, run, &shown)
}

/// The parts of `output` beside it ([`select_parts`]), as Cloud Storage lists them, in index
/// order.
pub fn find(
    gcs: &Gcs,
    output: &ObjectUrl,
    count: Option<u32>,
) -> Result<(Parts, Vec<ObjectMeta>), ComposeError> {
    let shown = output.to_string();
    let name = output.file_name().to_owned();
    let folder = output.sibling("").name;
    // Only the names that start as a part's does (`files-part-`).
    let example = crate::shard::part_path(Path::new(&name), 0, 1)
        .display()
        .to_string();
    let stem = match example.find("-part-00000-of-00001") {
        Some(at) => &example[..at + "-part-".len()],
        None => "",
    };
    let (bucket, prefix) = (output.bucket.clone(), format!("{folder}{stem}"));
    let listed = gcs
        .block(move |s| async move { s.list(&bucket, &prefix).await })
        .map_err(storage(&shown))?;
    let beside: Vec<&ObjectMeta> = listed
        .iter()
        .filter(|m| {
            m.name
                .strip_prefix(&folder)
                .is_some_and(|n| !n.contains('/'))
        })
        .collect();
    let names = beside.iter().map(|m| m.url().file_name().to_owned());
    let parts = select_parts(&name, &shown, names, count)?;
    let metas = parts
        .names
        .iter()
        .filter_map(|n| beside.iter().find(|m| m.url().file_name() == n))
        .map(|m| (*m).clone())
        .collect();
    Ok((parts, metas))
}

/// Joins `parts` (in this order) into `output` with Cloud Storage's `compose` (see the
/// module's doc): the output replaced only if it is still the generation it was when this
/// started, the scratch objects removed whatever happens.
pub fn compose(
    gcs: &Gcs,
    parts: &[ObjectMeta],
    output: &ObjectUrl,
    layout: Layout,
) -> Result<Composed, ComposeError> {
    let shown = output.to_string();
    let url = output.clone();
    let existing = gcs
        .block(move |s| async move { s.meta(&url).await })
        .map_err(storage(&shown))?;
    let precondition = Precondition::replacing(existing.as_ref());
    // What a compose killed on the way left (its scratch objects), over a minute old.
    crate::sink::object::remove_stale_parts(output, &[]);

    let stem = format!(".{}.{}.tmp", output.file_name(), random_letters());
    let totals = RefCell::new(Totals::default());
    let mut joiner = Joiner::new(layout, &shown);
    let mut sources = Vec::new();
    let mut scratches = Vec::new();
    let read = read_parts(
        gcs,
        parts,
        output,
        &stem,
        layout,
        &totals,
        &mut joiner,
        &mut sources,
        &mut scratches,
    );
    let result = read.and_then(|()| {
        let (target, content_type) = (output.clone(), content_type(&output.name));
        let scratch_of = {
            let (target, stem) = (output.clone(), stem.clone());
            move |n: usize| target.sibling(&format!("{stem}.compose-{n:05}"))
        };
        let sources = std::mem::take(&mut sources);
        gcs.block(move |s| async move {
            match sources.is_empty() {
                // Every part empty (an export that named no columns): an empty output.
                true => {
                    s.write(&target, Bytes::new(), content_type, precondition)
                        .await
                }
                false => {
                    s.compose(&target, &sources, content_type, precondition, &scratch_of)
                        .await
                }
            }
        })
        .map_err(storage(&shown))
    });
    if !scratches.is_empty() {
        let scratches = std::mem::take(&mut scratches);
        gcs.block(move |s| async move {
            for meta in scratches {
                let _ = s.delete(&meta.url(), Some(meta.generation)).await;
            }
        });
    }
    let object = result?;
    let totals = totals.into_inner();
    if object.size != totals.bytes {
        return Err(ComposeError::Mismatch {
            output: shown,
            what: format!("{} bytes, but its parts make {}", object.size, totals.bytes),
        });
    }
    let ours = crate::gcs::crc32c_text(totals.crc);
    if let Some(theirs) = object.crc32c.as_ref().filter(|c| **c != ours) {
        return Err(ComposeError::Mismatch {
            output: shown,
            what: format!("an object of CRC-32C {theirs}, but its parts make {ours}"),
        });
    }
    Ok(Composed {
        joined: Joined {
            parts: joiner.parts(),
            rows: joiner.rows(),
            bytes: totals.bytes,
            sha256: crate::sink::hex(&totals.sha.finalize()),
        },
        object,
    })
}

/// Reads every part through `joiner`: the compose sources, in order, into `sources` (a part
/// as it is, or the scratch object written without what it must lose, also in `scratches`).
#[allow(clippy::too_many_arguments)]
fn read_parts(
    gcs: &Gcs,
    parts: &[ObjectMeta],
    output: &ObjectUrl,
    stem: &str,
    layout: Layout,
    totals: &RefCell<Totals>,
    joiner: &mut Joiner,
    sources: &mut Vec<ObjectMeta>,
    scratches: &mut Vec<ObjectMeta>,
) -> Result<(), ComposeError> {
    let shown = output.to_string();
    for (index, part) in parts.iter().enumerate() {
        let name = part.url().to_string();
        let read_error = |source| ComposeError::Read {
            output: shown.clone(),
            part: name.clone(),
            source,
        };
        let mut raw = PartReader {
            gcs: gcs.clone(),
            meta: part.clone(),
            offset: 0,
            buf: Bytes::new(),
        };
        // A part past the first loses its header; without headers, only a byte order mark.
        let (whole, reader): (bool, Box<dyn Read + '_>) = match (joiner.started(), layout.header) {
            (false, _) => (true, Box::new(raw)),
            (true, true) => (false, Box::new(raw)),
            (true, false) => {
                let mut prefix = Vec::with_capacity(PEEK);
                (&mut raw)
                    .take(PEEK as u64)
                    .read_to_end(&mut prefix)
                    .map_err(read_error)?;
                let bom = starts_with_bom(&prefix, layout.gzip).unwrap_or(true);
                (!bom, Box::new(std::io::Cursor::new(prefix).chain(raw)))
            }
        };
        if whole {
            let before = totals.borrow().bytes;
            let tee = Tee {
                inner: reader,
                totals,
            };
            joiner.part(&name, Box::new(tee), &mut std::io::sink())?;
            let read = totals.borrow().bytes - before;
            if read != part.size {
                return Err(ComposeError::Format {
                    output: shown.clone(),
                    why: format!(
                        "{name}: {read} of its {} bytes are what it holds (bytes after its end): \
                         not a part gscrape wrote whole; run its task again ({shown} left as it \
                         was)",
                        part.size
                    ),
                });
            }
            if part.size > 0 {
                sources.push(part.clone());
            }
        } else {
            let mut scratch = Scratch {
                gcs,
                target: output.sibling(&format!("{stem}.part-{index:05}")),
                gzip: layout.gzip,
                totals,
                open: None,
            };
            joiner.part(&name, reader, &mut scratch)?;
            if let Some(meta) = scratch.finish(&shown)? {
                scratches.push(meta.clone());
                sources.push(meta);
            }
        }
    }
    Ok(())
}

/// Deletes the parts (after a compose that put the output in place), each at the generation
/// that was composed.
pub fn remove(gcs: &Gcs, parts: &[ObjectMeta], output: &ObjectUrl) -> Result<(), ComposeError> {
    let shown = output.to_string();
    let parts = parts.to_vec();
    gcs.block(move |s| async move {
        for part in parts {
            s.delete(&part.url(), Some(part.generation)).await?;
            let _ = s.delete(&run_record(&part.url()), None).await;
        }
        Ok(())
    })
    .map_err(|source| ComposeError::Storage {
        output: shown,
        source: Box::new(source),
    })
}

/// True when the part whose first bytes (as stored) are `prefix` starts with a byte order
/// mark; `None` when they do not say (a gzip part whose first member is longer).
fn starts_with_bom(prefix: &[u8], gzip: bool) -> Option<bool> {
    if !gzip {
        return Some(prefix.starts_with(BOM));
    }
    let mut first = Vec::with_capacity(BOM.len());
    let mut decoder = flate2::read::MultiGzDecoder::new(prefix).take(BOM.len() as u64);
    match decoder.read_to_end(&mut first) {
        Ok(_) if first.len() == BOM.len() => Some(first == BOM),
        _ => None,
    }
}

/// The output's bytes as stored, in order: counted, and hashed as the summary and Cloud
/// Storage hash them.
struct Totals {
    bytes: u64,
    sha: Sha256,
    crc: u32,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            bytes: 0,
            sha: Sha256::new(),
            crc: 0,
        }
    }
}

impl Totals {
    fn add(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        self.sha.update(bytes);
        self.crc = crc32c::crc32c_append(self.crc, bytes);
    }
}

/// One part's bytes at the generation listed, a range at a time.
struct PartReader {
    gcs: Gcs,
    meta: ObjectMeta,
    offset: u64,
    buf: Bytes,
}

impl Read for PartReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            if self.offset >= self.meta.size || out.is_empty() {
                return Ok(0);
            }
            let len = (chunk_size() as u64).min(self.meta.size - self.offset);
            let (object, generation, start) = (self.meta.url(), self.meta.generation, self.offset);
            let got = self
                .gcs
                .block(move |s| async move { s.read_range(&object, generation, start, len).await })
                .map_err(std::io::Error::other)?;
            let Some(bytes) = got else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "it was removed or replaced since it was listed",
                ));
            };
            if bytes.is_empty() || bytes.len() as u64 > len {
                return Err(std::io::Error::other(format!(
                    "Cloud Storage sent {} bytes for a range of {len}",
                    bytes.len()
                )));
            }
            self.offset += bytes.len() as u64;
            self.buf = bytes;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// A reader whose bytes are added to the output's totals (a part composed as it is).
struct Tee<'t, R> {
    inner: R,
    totals: &'t RefCell<Totals>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.totals.borrow_mut().add(&buf[..n]);
        Ok(n)
    }
}

/// The upload of a scratch object, its bytes (as stored) added to the output's totals.
struct Hashed<'t> {
    inner: ObjectWriter,
    bytes: u64,
    totals: &'t RefCell<Totals>,
}

impl Write for Hashed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.totals.borrow_mut().add(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Both boxed: the writer and its hash state are large, and a scratch object is opened once.
enum Open<'t> {
    Plain(Box<Hashed<'t>>),
    Gzip(Box<flate2::write::GzEncoder<Hashed<'t>>>),
}

/// A part rewritten without what it loses: the scratch object is started by its first byte
/// (a part with nothing left, a header only, makes none).
struct Scratch<'t> {
    gcs: &'t Gcs,
    target: ObjectUrl,
    gzip: bool,
    totals: &'t RefCell<Totals>,
    open: Option<Open<'t>>,
}

impl Scratch<'_> {
    /// The scratch object, once its last bytes are up (`None`: nothing was written).
    fn finish(self, output: &str) -> Result<Option<ObjectMeta>, ComposeError> {
        let hashed = match self.open {
            None => return Ok(None),
            Some(Open::Plain(hashed)) => *hashed,
            Some(Open::Gzip(encoder)) => encoder.finish().map_err(|source| ComposeError::Io {
                what: format!("write {}", self.target),
                source,
            })?,
        };
        let total = hashed.bytes;
        hashed
            .inner
            .finish(total)
            .map(Some)
            .map_err(storage(output))
    }
}

impl Write for Scratch<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let open = match &mut self.open {
            Some(open) => open,
            None => {
                let writer = ObjectWriter::create(self.gcs, self.target.clone(), false)
                    .map_err(std::io::Error::other)?;
                let hashed = Hashed {
                    inner: writer,
                    bytes: 0,
                    totals: self.totals,
                };
                self.open.insert(match self.gzip {
                    true => Open::Gzip(Box::new(flate2::write::GzEncoder::new(
                        hashed,
                        flate2::Compression::default(),
                    ))),
                    false => Open::Plain(Box::new(hashed)),
                })
            }
        };
        match open {
            Open::Plain(out) => out.write(buf),
            Open::Gzip(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.open {
            Some(Open::Plain(out)) => out.flush(),
            Some(Open::Gzip(out)) => out.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_seen_through_gzip() {
        assert_eq!(starts_with_bom(b"\xEF\xBB\xBFid\r\n", false), Some(true));
        assert_eq!(starts_with_bom(b"id\r\n", false), Some(false));
        let gz = |text: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(starts_with_bom(&gz(b"\xEF\xBB\xBF{}\n"), true), Some(true));
        assert_eq!(starts_with_bom(&gz(b"{}\n"), true), Some(false));
        // Too little to say: rewritten, which is always right.
        assert_eq!(starts_with_bom(&gz(b"{}\n")[..8], true), None);
    }
}
