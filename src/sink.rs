//! The CSV file of one query: RFC 4180 through the csv crate, written row by row into a
//! temporary file beside the target, and renamed over it only when the export is complete.
//! A failed or interrupted export leaves the previous file untouched and no partial file.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

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
}

/// An export in progress. Dropping it without [`CsvSink::finish`] deletes the temporary file.
pub struct CsvSink {
    target: PathBuf,
    writer: csv::Writer<BufWriter<NamedTempFile>>,
    rows: u64,
}

impl CsvSink {
    /// Starts an export to `target` (its directory is created) and writes the header row.
    pub fn create(target: &Path, header: &[String]) -> Result<Self, SinkError> {
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
        let tmp = builder.tempfile_in(dir).map_err(create)?;
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(BufWriter::with_capacity(256 * 1024, tmp));
        writer
            .write_record(header)
            .map_err(|source| SinkError::Write {
                path: target.to_owned(),
                source,
            })?;
        Ok(CsvSink {
            target: target.to_owned(),
            writer,
            rows: 0,
        })
    }

    /// Appends one row.
    pub fn write_row(&mut self, row: &[String]) -> Result<(), SinkError> {
        self.rows += 1;
        self.writer
            .write_record(row)
            .map_err(|source| SinkError::Write {
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

fn sync(file: &File) -> std::io::Result<()> {
    file.sync_all()
}
