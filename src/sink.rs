//! The CSV file of one query: RFC 4180 through the csv crate, written row by row into a
//! temporary file beside the target, and renamed over it only when the export is complete.
//! A failed or interrupted export leaves the previous file untouched and no partial file —
//! also when appending: the old file is copied, the copy appended to, and the copy renamed.
//!
//! The options that make a file open cleanly in a spreadsheet live here too: delimiter, BOM,
//! the formula guard (`excel_safe`), no header.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// The UTF-8 byte order mark: tells Excel the file is UTF-8.
const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("cannot replace {}: {source}", .path.display())]
    Persist {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot append to {}: its header is {existing:?} but this query writes {new:?}; remove `append`, or move the old file away", .path.display())]
    HeaderMismatch {
        path: PathBuf,
        existing: Vec<String>,
        new: Vec<String>,
    },
}

/// How the CSV is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    pub delimiter: u8,
    /// Start a new file with a UTF-8 BOM (for Excel).
    pub bom: bool,
    /// Cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) get
    /// a leading `'`; numbers are left alone.
    pub excel_safe: bool,
    /// Add to the existing file instead of replacing it (header only when it is new or empty).
    pub append: bool,
    /// Write a header row.
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            bom: false,
            excel_safe: false,
            append: false,
            header: true,
        }
    }
}

/// An export in progress. Dropping it without [`CsvSink::finish`] deletes the temporary file.
pub struct CsvSink {
    target: PathBuf,
    writer: csv::Writer<BufWriter<NamedTempFile>>,
    excel_safe: bool,
    guarded: Vec<String>,
    rows: u64,
}

impl CsvSink {
    /// Starts an export to `target` (its directory is created) and writes the header row.
    pub fn create(
        target: &Path,
        header: &[String],
        options: &CsvOptions,
    ) -> Result<Self, SinkError> {
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
        let mut tmp = builder.tempfile_in(dir).map_err(create)?;
        // Held while the export runs: a later run removes only temporary files nobody holds.
        // Best effort: where the filesystem has no locks, the cleanup cannot lock them either,
        // and leaves them.
        let _ = tmp.as_file().lock();

        let existing = if options.append {
            existing_content(target).map_err(create)?
        } else {
            None
        };
        let fresh = existing.is_none();
        if let Some(mut old) = existing {
            if options.header {
                check_header(target, &mut old, header, options.delimiter)?;
            }
            old.seek(SeekFrom::Start(0)).map_err(create)?;
            std::io::copy(&mut old, tmp.as_file_mut()).map_err(create)?;
            ensure_line_end(tmp.as_file_mut()).map_err(create)?;
        } else if options.bom {
            tmp.write_all(BOM).map_err(create)?;
        }
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .delimiter(options.delimiter)
            .from_writer(BufWriter::with_capacity(256 * 1024, tmp));
        if fresh && options.header {
            writer
                .write_record(header)
                .map_err(|source| SinkError::Write {
                    path: target.to_owned(),
                    source,
                })?;
        }
        Ok(CsvSink {
            target: target.to_owned(),
            writer,
            excel_safe: options.excel_safe,
            guarded: Vec::new(),
            rows: 0,
        })
    }

    /// Appends one row.
    pub fn write_row(&mut self, row: &[String]) -> Result<(), SinkError> {
        self.rows += 1;
        let result = if self.excel_safe && row.iter().any(|c| needs_guard(c)) {
            self.guarded.clear();
            self.guarded.extend(row.iter().map(|cell| {
                if needs_guard(cell) {
                    format!("'{cell}")
                } else {
                    cell.clone()
                }
            }));
            self.writer.write_record(&self.guarded)
        } else {
            self.writer.write_record(row)
        };
        result.map_err(|source| SinkError::Write {
            path: self.target.clone(),
            source,
        })
    }

    /// Rows written so far (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes, syncs and renames the temporary file over the target.
    pub fn finish(self) -> Result<PathBuf, SinkError> {
        let target = self.target;
        let persist = |source| SinkError::Persist {
            path: target.clone(),
            source,
        };
        let buffered = self
            .writer
            .into_inner()
            .map_err(|e| persist(e.into_error()))?;
        let tmp = buffered.into_inner().map_err(|e| persist(e.into_error()))?;
        sync(tmp.as_file()).map_err(persist)?;
        tmp.persist(&target).map_err(|e| persist(e.error))?;
        Ok(target)
    }
}

/// Removes the temporary files of `target` that a killed run left (`.NAME.XXXXXX.tmp`
/// beside it, this module's pattern): those no live export holds locked and older than a
/// minute (a file just made is locked a moment later). Returns the paths removed.
pub fn remove_stale_temp_files(target: &Path) -> Vec<PathBuf> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let Some(target_name) = target.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let old_file = entry
            .metadata()
            .is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|t| t < minute_ago));
        if !is_temp_name(name, target_name) || !old_file {
            continue;
        }
        let path = entry.path();
        let unheld = File::open(&path).is_ok_and(|file| file.try_lock().is_ok());
        if unheld && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
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

/// The existing file, when it has content to append to.
fn existing_content(target: &Path) -> std::io::Result<Option<File>> {
    match File::open(target) {
        Ok(file) if file.metadata()?.len() > 0 => Ok(Some(file)),
        Ok(_) => Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// The first record of `old` must be `header`.
fn check_header(
    target: &Path,
    old: &mut File,
    header: &[String],
    delimiter: u8,
) -> Result<(), SinkError> {
    let mut start = [0u8; 3];
    let read = old.read(&mut start).unwrap_or(0);
    let skip = if read == 3 && start == *BOM { 3 } else { 0 };
    let _ = old.seek(SeekFrom::Start(skip));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(&mut *old);
    let existing: Vec<String> = reader
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    if existing == header {
        Ok(())
    } else {
        Err(SinkError::HeaderMismatch {
            path: target.to_owned(),
            existing,
            new: header.to_vec(),
        })
    }
}

/// An old file that does not end its last line gets a line end before new rows.
fn ensure_line_end(file: &mut File) -> std::io::Result<()> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    file.seek(SeekFrom::End(0))?;
    if last[0] != b'\n' {
        file.write_all(b"\r\n")?;
    }
    Ok(())
}

/// True for a cell a spreadsheet would read as a formula (numbers such as `-1.5` excepted).
pub fn needs_guard(cell: &str) -> bool {
    matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    ) && cell.trim().parse::<f64>().is_err()
}

fn sync(file: &File) -> std::io::Result<()> {
    file.sync_all()
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
    fn formula_guard_leaves_numbers_alone() {
        for cell in ["=SUM(A1)", "+1 555", "-x", "@user", "\tx", "\rx", "-"] {
            assert!(needs_guard(cell), "{cell:?}");
        }
        for cell in ["-12.5", "+3", "1e5", "plain", "", "a=b"] {
            assert!(!needs_guard(cell), "{cell:?}");
        }
    }
}
