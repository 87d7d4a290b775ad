//! Composing parts on the local file system: the parts are the files beside the output; the
//! output is written to a temporary file beside it (as every output is, `crate::sink`) and
//! renamed over it only when the join is complete, so that the previous output stays exactly
//! as it was on any failure.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{join, select_parts, ComposeError, Joined, Layout, Parts};

/// The parts of `output` in its directory ([`select_parts`]), and their paths in index order.
pub fn find(output: &Path, count: Option<u32>) -> Result<(Parts, Vec<PathBuf>), ComposeError> {
    let shown = output.display().to_string();
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ComposeError::Format {
            output: shown.clone(),
            why: "not a file name gscrape writes (UTF-8, with a name)".to_owned(),
        })?;
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        // No directory holds no part.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(ComposeError::Io {
                what: format!("list {}", dir.display()),
                source,
            })
        }
    };
    let parts = select_parts(name, &shown, names, count)?;
    let paths = parts
        .names
        .iter()
        .map(|n| output.with_file_name(n))
        .collect();
    Ok((parts, paths))
}

/// Joins `parts` (in this order) into `output`: a temporary file beside it, renamed over it
/// once complete (synced first). The one place a local output is composed; another store
/// (Cloud Storage) brings its own with the same inputs.
pub fn compose(parts: &[PathBuf], output: &Path, layout: Layout) -> Result<Joined, ComposeError> {
    let shown = output.display().to_string();
    let mut readers = Vec::with_capacity(parts.len());
    for part in parts {
        let file = std::fs::File::open(part).map_err(|source| ComposeError::Read {
            output: shown.clone(),
            part: part.display().to_string(),
            source,
        })?;
        let reader: Box<dyn Read> = Box::new(std::io::BufReader::with_capacity(256 << 10, file));
        readers.push((part.display().to_string(), reader));
    }
    let temp = crate::sink::temp_beside(output)?;
    let joined = {
        let mut out = BufWriter::with_capacity(256 << 10, temp.as_file());
        let joined = join(readers, &mut out, layout, &shown)?;
        out.flush().map_err(|source| ComposeError::Io {
            what: format!("write {shown}"),
            source,
        })?;
        joined
    };
    // (Dropped on an error above: the temporary file is removed, the output untouched.)
    crate::sink::persist(temp, output)?;
    Ok(joined)
}

/// The run of `parts` (each recorded beside it, `.NAME.run`, by the task that wrote it):
/// [`super::check_runs`].
pub fn check_runs(
    parts: &[PathBuf],
    run: Option<&str>,
    output: &str,
) -> Result<Option<String>, ComposeError> {
    let recorded: Vec<super::RecordedRun> = parts
        .iter()
        .map(|part| super::RecordedRun {
            part: part.display().to_string(),
            run: crate::shard::recorded_run(part),
            record: crate::shard::run_sidecar(part)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        })
        .collect();
    super::check_runs(&recorded, run, output)
}

/// Deletes the parts (after a compose that put the output in place), and the runs recorded
/// beside them.
pub fn remove(parts: &[PathBuf]) -> Result<(), ComposeError> {
    for part in parts {
        let _ = crate::shard::record_run(part, None);
        std::fs::remove_file(part).map_err(|source| ComposeError::Io {
            what: format!("remove the part {}", part.display()),
            source,
        })?;
    }
    Ok(())
}
