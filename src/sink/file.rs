//! What every file format shares: a temporary file beside the target, locked while the export
//! runs and renamed over the target only when it is complete (a failed or interrupted export
//! leaves the previous file untouched and no partial file); the cleanup of the temporary files
//! a killed run left; the byte stream itself (optionally gzip-compressed, or standard output),
//! counted and hashed as it is written so that the summary can prove the output.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::object::{ObjectMark, ObjectProof, ObjectWriter};
use super::SinkError;
use crate::gcs::ObjectUrl;
use crate::plan::{Output, Target};

/// Where a file export stands mid-way: its temporary file, the bytes written to it, and their
/// SHA-256. An export to Cloud Storage names its finished parts instead of a file (`temp` is
/// their common name), and the SHA-256's state to go on from (its bytes cannot be read back
/// cheaply).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    pub temp: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMark>,
    /// Hex of the SHA-256 state after `bytes` (objects only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_state: Option<String>,
}

/// What an output holds, as written: its size and SHA-256, and for a Cloud Storage object
/// what Cloud Storage says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub object: Option<ObjectProof>,
    /// A CSV or TSV written without `excel_safe`: its cells a spreadsheet would run as a
    /// formula (this run's rows).
    pub formula_cells: u64,
}

pub use crate::util::hex;

/// A temporary file beside `target` (its directory created), locked while the export runs.
pub fn temp_beside(target: &Path) -> Result<NamedTempFile, SinkError> {
    let create = |source| SinkError::Create {
        path: target.to_owned(),
        source,
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(create)?;
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // NamedTempFile is 0600; an export gets the usual mode (0666 less the umask).
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let file = builder.tempfile_in(dir).map_err(create)?;
    // Held while the export runs: a later run removes only temporary files nobody holds.
    // Best effort: where the filesystem has no locks, the cleanup cannot lock them either,
    // and leaves them.
    let _ = file.as_file().lock();
    Ok(file)
}

/// Syncs `file` and renames it over `target`.
pub fn persist(file: NamedTempFile, target: &Path) -> Result<(), SinkError> {
    let persist = |source| SinkError::Persist {
        path: target.to_owned(),
        source,
    };
    file.as_file().sync_all().map_err(persist)?;
    file.persist(target).map_err(|e| persist(e.error))?;
    Ok(())
}

/// Where a stream's bytes end up.
enum Place {
    Temp(NamedTempFile),
    Stdout(io::Stdout),
    /// Boxed: its buffers' bookkeeping is large beside a file.
    Object(Box<ObjectWriter>),
}

impl Write for Place {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Place::Temp(file) => file.write(buf),
            Place::Stdout(out) => out.write(buf),
            Place::Object(object) => object.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Place::Temp(file) => file.write_all(buf),
            Place::Stdout(out) => out.write_all(buf),
            Place::Object(object) => object.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Place::Temp(file) => file.flush(),
            Place::Stdout(out) => out.flush(),
            Place::Object(object) => object.flush(),
        }
    }
}

/// A writer that counts and hashes what goes through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
    hash: Sha256,
}

impl<W: Write> Counted<W> {
    fn new(inner: W) -> Self {
        Counted {
            inner,
            bytes: 0,
            hash: Sha256::new(),
        }
    }

    fn written(&self) -> Written {
        let sha256 = hex(&self.hash.clone().finalize());
        Written {
            bytes: self.bytes,
            sha256,
            object: None,
            formula_cells: 0,
        }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Layer {
    Plain(Counted<Place>),
    /// Boxed: the encoder's state is large beside a plain stream.
    Gzip(Box<GzEncoder<Counted<Place>>>),
}

/// The bytes of one streamed output (CSV, TSV, NDJSON, Parquet): to a temporary file renamed over the
/// target at [`Stream::finish`], or to standard output; gzip-compressed when asked.
pub struct Stream {
    /// Where it goes, as a path (for messages).
    target: PathBuf,
    stdout: bool,
    layer: Layer,
}

impl Stream {
    /// A stream to `output` (gzip-compressed when its name says so).
    pub fn create(output: &Output) -> Result<Self, SinkError> {
        let gzip = output.format.gzip;
        // A plain stream is checkpointed: it goes up in parts a resumed run can take.
        Self::open(output, gzip, !gzip)
    }

    /// A plain stream to `output` that is never taken up mid-way (a Parquet file, whose
    /// footer a resumed run could not rebuild): to Cloud Storage it is one upload, as a gzip
    /// stream is, not parts.
    pub fn create_whole(output: &Output) -> Result<Self, SinkError> {
        Self::open(output, false, false)
    }

    fn open(output: &Output, gzip: bool, checkpointed: bool) -> Result<Self, SinkError> {
        let target = output.path();
        let place = match output.target() {
            Target::Stdout => Place::Stdout(io::stdout()),
            Target::Object(object) => {
                let gcs = crate::gcs::io::get().map_err(|e| SinkError::object(target, e))?;
                let writer = ObjectWriter::create(gcs, object.clone(), checkpointed)
                    .map_err(|e| SinkError::object(target, e))?;
                Place::Object(Box::new(writer))
            }
            Target::File(path) => Place::Temp(temp_beside(path)?),
        };
        let counted = Counted::new(place);
        let layer = match gzip {
            true => Layer::Gzip(Box::new(GzEncoder::new(
                counted,
                flate2::Compression::default(),
            ))),
            false => Layer::Plain(counted),
        };
        Ok(Stream {
            target: target.to_owned(),
            stdout: output.is_stdout(),
            layer,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes `bytes`, or says why it could not.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        let result = match &mut self.layer {
            Layer::Plain(out) => out.write_all(bytes),
            Layer::Gzip(out) => out.write_all(bytes),
        };
        result.map_err(|source| self.write_error(source))
    }

    /// A failed write: the error, except on standard output closed by its reader (`| head`),
    /// which ends the run quietly, as the other tools of a pipeline do.
    fn write_error(&self, source: io::Error) -> SinkError {
        if source.kind() == io::ErrorKind::BrokenPipe && self.stdout {
            std::process::exit(0);
        }
        SinkError::Write {
            path: self.target.clone(),
            source,
        }
    }

    /// Where a plain stream to a temporary file stands, for a checkpoint: its file is kept from
    /// now on if the export stops (a resumed run goes on with it; a fresh one removes it).
    /// `None` for gzip and standard output, which cannot be taken up again mid-stream.
    pub fn mark(&mut self) -> Result<Option<Mark>, SinkError> {
        let Layer::Plain(counted) = &mut self.layer else {
            return Ok(None);
        };
        let written = counted.written();
        if let Place::Object(object) = &mut counted.inner {
            let target = &self.target;
            let Some(mark) = object.mark().map_err(|e| SinkError::object(target, e))? else {
                return Ok(None);
            };
            return Ok(Some(Mark {
                temp: PathBuf::from(object.target().sibling(&mark.stem).to_string()),
                bytes: written.bytes,
                sha256: written.sha256,
                object: Some(mark),
                sha256_state: Some(hex(&counted.hash.serialize())),
            }));
        }
        let Place::Temp(file) = &mut counted.inner else {
            return Ok(None);
        };
        file.disable_cleanup(true);
        // Absolute: the cleanup of a later run compares it with the files it finds.
        let temp = std::path::absolute(file.path()).unwrap_or_else(|_| file.path().to_owned());
        Ok(Some(Mark {
            temp,
            bytes: written.bytes,
            sha256: written.sha256,
            object: None,
            sha256_state: None,
        }))
    }

    /// Takes up the plain stream to `output` that `mark` left: its temporary file, cut back to
    /// the marked length once its bytes are checked against the mark. Why not, otherwise.
    pub fn resume(output: &Output, mark: &Mark) -> Result<Self, String> {
        use std::io::{Read, Seek, SeekFrom};
        let target = output.path();
        if let Some(object) = output.object() {
            return Self::resume_object(target, object.clone(), mark);
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&mark.temp)
            .map_err(|e| {
                format!(
                    "its temporary file {} cannot be opened ({e})",
                    mark.temp.display()
                )
            })?;
        if file.try_lock().is_err() {
            return Err(format!(
                "its temporary file {} is held by another process",
                mark.temp.display()
            ));
        }
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < mark.bytes {
            return Err(format!(
                "its temporary file {} is shorter than the checkpoint says ({len} of {} bytes)",
                mark.temp.display(),
                mark.bytes
            ));
        }
        let mut counted = Counted::new(io::sink());
        let mut prefix = (&mut file).take(mark.bytes);
        std::io::copy(&mut prefix, &mut counted).map_err(|e| e.to_string())?;
        let written = counted.written();
        if written.bytes != mark.bytes || written.sha256 != mark.sha256 {
            return Err(format!(
                "its temporary file {} is not as the checkpoint left it",
                mark.temp.display()
            ));
        }
        let kept = file
            .set_len(mark.bytes)
            .and_then(|()| file.seek(SeekFrom::End(0)).map(drop));
        kept.map_err(|e| e.to_string())?;
        let path = tempfile::TempPath::try_from_path(&mark.temp).map_err(|e| e.to_string())?;
        let mut temp = NamedTempFile::from_parts(file, path);
        temp.disable_cleanup(true);
        Ok(Stream {
            target: target.to_owned(),
            stdout: false,
            layer: Layer::Plain(Counted {
                inner: Place::Temp(temp),
                bytes: counted.bytes,
                hash: counted.hash,
            }),
        })
    }

    /// Ends the stream: the gzip trailer, then the rename over the target (a flush for
    /// standard output). Returns what was written.
    pub fn finish(self) -> Result<Written, SinkError> {
        let target = self.target;
        let stdout = self.stdout;
        let fail = |source: io::Error| {
            if source.kind() == io::ErrorKind::BrokenPipe && stdout {
                std::process::exit(0);
            }
            SinkError::Write {
                path: target.clone(),
                source,
            }
        };
        let mut counted = match self.layer {
            Layer::Plain(out) => out,
            Layer::Gzip(out) => out.finish().map_err(fail)?,
        };
        counted.flush().map_err(fail)?;
        let mut written = counted.written();
        match counted.inner {
            Place::Temp(file) => persist(file, &target)?,
            Place::Stdout(_) => {}
            Place::Object(object) => {
                let meta = object
                    .finish(written.bytes)
                    .map_err(|e| SinkError::object(&target, e))?;
                written.object = Some(ObjectProof::from(&meta));
            }
        }
        Ok(written)
    }

    /// [`Stream::resume`] of an object: its parts checked, the hash taken up from its state.
    fn resume_object(target: &Path, object: ObjectUrl, mark: &Mark) -> Result<Self, String> {
        use sha2::digest::common::hazmat::SerializableState;
        let (Some(object_mark), Some(state)) = (&mark.object, &mark.sha256_state) else {
            return Err("its checkpoint names no parts".to_owned());
        };
        let bytes = unhex(state).ok_or("its checkpoint's hash state cannot be read")?;
        let hash = bytes
            .as_slice()
            .try_into()
            .ok()
            .and_then(|state| Sha256::deserialize(state).ok())
            .ok_or("its checkpoint's hash state cannot be read")?;
        if hex(&hash.clone().finalize()) != mark.sha256 {
            return Err("its checkpoint's hash state does not match its SHA-256".to_owned());
        }
        let gcs = crate::gcs::io::get().map_err(|e| e.to_string())?;
        let writer = ObjectWriter::resume(gcs, object, object_mark)?;
        Ok(Stream {
            target: target.to_owned(),
            stdout: false,
            layer: Layer::Plain(Counted {
                inner: Place::Object(Box::new(writer)),
                bytes: mark.bytes,
                hash,
            }),
        })
    }
}

/// The bytes of lowercase or uppercase hex, if it is hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.layer {
            Layer::Plain(out) => out.write(buf),
            Layer::Gzip(out) => out.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Removes the temporary files of `target` (`.NAME.XXXXXX.tmp` beside it, this module's
/// pattern) that no live export holds locked, whose last change `removable` accepts, other
/// than those in `keep` (named by checkpoints): at the start of a run those a killed run left
/// (older than a minute: a file just made is locked a moment later); at its end those it made
/// itself and no checkpoint names. Returns the paths removed.
pub fn remove_stale_temp_files(
    target: &Path,
    keep: &[PathBuf],
    removable: impl Fn(std::time::SystemTime) -> bool,
) -> Vec<PathBuf> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let Some(target_name) = target.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    remove_temps(dir, |name| is_temp_name(name, target_name), keep, removable)
}

/// Removes the temporary files in `dir` of any target (this module's pattern) that no live
/// export holds locked, that no checkpoint names (`keep`), last changed before `removable`
/// says: those a killed run left for an output no later run writes (a name with the day in
/// it, a backfill's window). Returns the paths removed.
pub fn remove_orphan_temp_files(
    dir: &Path,
    keep: &[PathBuf],
    removable: impl Fn(std::time::SystemTime) -> bool,
) -> Vec<PathBuf> {
    let any_target = |name: &str| {
        name.strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .is_some_and(|(target, _)| !target.is_empty() && is_temp_name(name, target))
    };
    remove_temps(dir, any_target, keep, removable)
}

/// Removes the files in `dir` whose name `ours` accepts, as [`remove_stale_temp_files`] says.
fn remove_temps(
    dir: &Path,
    ours: impl Fn(&str) -> bool,
    keep: &[PathBuf],
    removable: impl Fn(std::time::SystemTime) -> bool,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let old_file = entry
            .metadata()
            .is_ok_and(|m| m.is_file() && m.modified().is_ok_and(&removable));
        if !ours(name) || !old_file {
            continue;
        }
        let path = entry.path();
        if std::path::absolute(&path).is_ok_and(|p| keep.contains(&p)) {
            continue;
        }
        let unheld = File::open(&path).is_ok_and(|file| file.try_lock().is_ok());
        if unheld && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// The temporary files of `target` there are now (absolute paths, as checkpoints name them).
pub fn temp_files_of(target: &Path) -> Vec<PathBuf> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let (Some(target_name), Ok(entries)) = (
        target.file_name().and_then(|n| n.to_str()),
        std::fs::read_dir(dir),
    ) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| is_temp_name(n, target_name))
        })
        .filter_map(|e| std::path::absolute(e.path()).ok())
        .collect()
}

/// True when `temp` is one of this module's temporary files for `target`: beside it, named
/// `.TARGET.XXXXXX.tmp` (a checkpoint's file is opened, cut and removed only when it is one).
pub fn is_temp_of(temp: &Path, target: &Path) -> bool {
    let absolute = |p: &Path| std::path::absolute(p).ok();
    let beside = match (absolute(temp), absolute(target)) {
        (Some(temp), Some(target)) => temp.parent() == target.parent(),
        _ => false,
    };
    let names = temp
        .file_name()
        .and_then(|n| n.to_str())
        .zip(target.file_name().and_then(|n| n.to_str()));
    beside && names.is_some_and(|(temp, target)| is_temp_name(temp, target))
}

/// `.TARGET.XXXXXX.tmp`: a dot, the target's name, a dot, six random letters or digits.
fn is_temp_name(name: &str, target: &str) -> bool {
    let random = name
        .strip_prefix('.')
        .and_then(|n| n.strip_prefix(target))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".tmp"));
    random.is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_file_names() {
        assert!(is_temp_name(".files.csv.AbC123.tmp", "files.csv"));
        assert!(is_temp_name(".a.b.csv.000000.tmp", "a.b.csv"));
        for other in [
            "files.csv",
            ".files.csv.tmp",
            ".files.csv.AbC12.tmp",
            ".files.csv.AbC12-.tmp",
            ".other.csv.AbC123.tmp",
            ".tmpAbC123",
        ] {
            assert!(!is_temp_name(other, "files.csv"), "{other}");
        }
    }

    #[test]
    fn counted_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.csv");
        let output = Output::new(target.clone(), Default::default(), Path::new(""));
        let mut stream = Stream::create(&output).unwrap();
        stream.put(b"abc").unwrap();
        let written = stream.finish().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        assert_eq!(written.bytes, 3);
        assert_eq!(
            written.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
