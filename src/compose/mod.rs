//! `gscrape compose`: the parts a sharded run wrote (`NAME-part-IIIII-of-CCCCC.EXT`, see
//! [`crate::shard`]) joined into the one output, once every part is there.
//!
//! Split in two so that another store (Cloud Storage) reuses what does not depend on where
//! the bytes live:
//! - this module: which of the names beside the output are its parts and whether they are
//!   all there ([`select_parts`]), what the format asks of a join ([`Layout`]; whether plain
//!   byte concatenation will do is the format's `concatenable`), and the join itself over
//!   readers and a writer ([`join`]): one header (every part's must be the same), rows
//!   counted, gzip inflated and compressed again as one stream, the bytes hashed;
//! - [`local`]: the local file system — listing the directory, the parts in index order into
//!   a temporary file beside the output, renamed over it only when complete (the previous
//!   output stays as it was on any failure), removing the parts.

pub mod local;
pub mod object;

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::Failure;
use crate::query::{Format, OutputFormat};

/// Why parts were not composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Not every part is there yet: not ready (try again once every task is done).
    #[error("{output}: {} of {count} parts missing: {}; the task of each has not finished (or failed): run it, then compose again ({output} left as it was)", .missing.len(), list(.missing))]
    Missing {
        output: String,
        count: u32,
        missing: Vec<String>,
    },
    #[error("{output}: no part of it found (none named {pattern} beside it): run the shards first, or name the output as its query does")]
    NoParts { output: String, pattern: String },
    #[error("{output}: its parts disagree on the number of shards: {counts}; remove the parts of the other run, or say which with --count")]
    Disagree { output: String, counts: String },
    #[error("{part}: its header is not the one of {first}: {found:?} against {expected:?}; the shards ran other queries: run them again alike ({output} left as it was)")]
    Header {
        output: String,
        part: String,
        first: String,
        found: String,
        expected: String,
    },
    #[error("{part}: it does not end with a line break, so it is not a part gscrape wrote whole: run its task again ({output} left as it was)")]
    Unfinished { output: String, part: String },
    /// A part of another run than the others (or than `--run-id`): stale.
    #[error("{part}: written by {found}, but the parts are of run {expected}: a stale part of another run; run its task again in run {expected} ({output} left as it was)")]
    StaleRun {
        output: String,
        part: String,
        found: String,
        expected: String,
    },
    #[error("{output}: {why}")]
    Format { output: String, why: String },
    #[error("cannot read {part}: {source} ({output} left as it was)")]
    Read {
        output: String,
        part: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    /// Cloud Storage refused or failed (listing, reading a part, composing).
    #[error("{output}: {source}")]
    Storage {
        output: String,
        #[source]
        source: Box<crate::gcs::StorageError>,
    },
    /// The output (or a part) was written by someone else between the listing and the compose.
    #[error("{output} (or one of its parts) was written by another writer while its parts were composed (HTTP 412, ifGenerationMatch): not replaced; compose again once that writer is done")]
    Changed { output: String },
    /// Cloud Storage's description of the composed object disagrees with what was read.
    #[error("{output}: Cloud Storage composed {what}: the object is not what its parts hold; compose again")]
    Mismatch { output: String, what: String },
}

impl ComposeError {
    /// What kind of failure this is (its exit code): a missing part is not ready (75), parts
    /// that cannot be joined are bad input (2), the disk failing is local I/O (1).
    pub fn kind(&self) -> Failure {
        match self {
            ComposeError::Missing { .. } => Failure::NotReady,
            ComposeError::NoParts { .. }
            | ComposeError::Disagree { .. }
            | ComposeError::Header { .. }
            | ComposeError::Unfinished { .. }
            | ComposeError::StaleRun { .. }
            | ComposeError::Format { .. } => Failure::BadInput,
            ComposeError::Read { source, .. } => match source.kind() {
                std::io::ErrorKind::InvalidData
                | std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::UnexpectedEof => Failure::BadInput,
                _ => Failure::LocalIo,
            },
            ComposeError::Io { .. } | ComposeError::Sink(_) => Failure::LocalIo,
            ComposeError::Storage { source, .. } => source.kind(),
            ComposeError::Changed { .. } | ComposeError::Mismatch { .. } => Failure::Remote,
        }
    }
}

/// A part, the run recorded beside it (`None`: none), and the name of that record.
pub struct RecordedRun {
    pub part: String,
    pub run: Option<String>,
    pub record: String,
}

/// The run of the parts: `run` when given (`--run-id`, CLOUD_RUN_EXECUTION), else the one
/// most parts record. A part that records another, or none while others do, is refused as
/// stale. `None`: no run given and none recorded — nothing to check.
pub fn check_runs(
    parts: &[RecordedRun],
    run: Option<&str>,
    output: &str,
) -> Result<Option<String>, ComposeError> {
    let expected = match run {
        Some(run) => Some(run.to_owned()),
        None => {
            let mut best: Option<(&String, usize)> = None;
            for id in parts.iter().filter_map(|p| p.run.as_ref()) {
                let n = parts.iter().filter(|p| p.run.as_ref() == Some(id)).count();
                if best.is_none_or(|(_, most)| n > most) {
                    best = Some((id, n));
                }
            }
            best.map(|(id, _)| id.clone())
        }
    };
    let Some(expected) = expected else {
        return Ok(None);
    };
    for part in parts {
        if part.run.as_deref() != Some(expected.as_str()) {
            return Err(ComposeError::StaleRun {
                output: output.to_owned(),
                part: part.part.clone(),
                found: match &part.run {
                    Some(found) => format!("run {found}"),
                    None => format!("no recorded run (no {} beside it)", part.record),
                },
                expected,
            });
        }
    }
    Ok(Some(expected))
}

/// The first names of a list, and how many more.
fn list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let shown = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// What the format of the output asks of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub format: Format,
    pub gzip: bool,
    /// CSV or TSV parts that start with a header row (kept once).
    pub header: bool,
}

impl Layout {
    /// The layout of `output`'s parts: its format by its name or `format` (as a query's
    /// output), `header` unless the parts were written without one. xlsx is refused: a
    /// workbook is not joined by its bytes.
    pub fn of(output: &Path, format: Option<Format>, header: bool) -> Result<Layout, ComposeError> {
        let name = output.display().to_string();
        let resolved =
            OutputFormat::resolve(output, format).map_err(|why| ComposeError::Format {
                output: name.clone(),
                why: why.replace("or set `format` to", "or give --format"),
            })?;
        if !resolved.format.can().concatenable {
            let what = match resolved.format {
                Format::Xlsx => {
                    "xlsx workbooks cannot be joined (a workbook is not a stream of rows)".into()
                }
                Format::Parquet => {
                    "Parquet files cannot be joined by their bytes (each has its own footer)".into()
                }
                other => format!("{other} files cannot be joined by their bytes"),
            };
            return Err(ComposeError::Format {
                output: name,
                why: format!(
                    "{what}: write the sharded query's output as .csv, .tsv or .ndjson (each \
                     may end in .gz)"
                ),
            });
        }
        Ok(Layout {
            format: resolved.format,
            gzip: resolved.gzip,
            header: header && resolved.format.can().csv_options,
        })
    }
}

/// The parts chosen among the names beside the output, in index order (their file names),
/// and the names of parts of another count that were left aside (with `--count`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub count: u32,
    pub names: Vec<String>,
    pub other_counts: Vec<String>,
}

/// Which of `names` (the file names beside the output `output_name`) are its parts, all of
/// one count (`count`, else the one they all have): every index from 0 to COUNT−1, in order.
/// `shown` is how the output is named in messages (with its directory).
pub fn select_parts(
    output_name: &str,
    shown: &str,
    names: impl IntoIterator<Item = String>,
    count: Option<u32>,
) -> Result<Parts, ComposeError> {
    let mut found: Vec<(u32, u32, String)> = names
        .into_iter()
        .filter_map(|name| {
            let (index, count) = crate::shard::part_of(output_name, &name)?;
            Some((count, index, name))
        })
        .collect();
    found.sort();
    let mut counts: Vec<u32> = found.iter().map(|(c, _, _)| *c).collect();
    counts.dedup();
    let count = match (count, counts.as_slice()) {
        (Some(count), _) => count,
        (None, [one]) => *one,
        (None, []) => {
            return Err(ComposeError::NoParts {
                output: shown.to_owned(),
                pattern: part_pattern(output_name),
            })
        }
        (None, _) => {
            let counts = counts
                .iter()
                .map(|c| {
                    let n = found.iter().filter(|(k, _, _)| k == c).count();
                    format!("{n} of {c}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ComposeError::Disagree {
                output: shown.to_owned(),
                counts,
            });
        }
    };
    let (ours, others): (Vec<_>, Vec<_>) = found.into_iter().partition(|(c, _, _)| *c == count);
    let dir = Path::new(shown)
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    let beside = |name: String| match dir {
        Some(dir) => dir.join(name).display().to_string(),
        None => name,
    };
    let missing: Vec<String> = (0..count)
        .filter(|i| !ours.iter().any(|(_, index, _)| index == i))
        .map(|i| {
            let part = crate::shard::part_path(Path::new(output_name), i, count);
            format!("{i} ({})", beside(part.display().to_string()))
        })
        .collect();
    if !missing.is_empty() {
        return Err(ComposeError::Missing {
            output: shown.to_owned(),
            count,
            missing,
        });
    }
    Ok(Parts {
        count,
        names: ours.into_iter().map(|(_, _, name)| name).collect(),
        other_counts: others.into_iter().map(|(_, _, name)| name).collect(),
    })
}

/// `files-part-NNNNN-of-MMMMM.csv`, for messages.
fn part_pattern(output_name: &str) -> String {
    let example = crate::shard::part_path(Path::new(output_name), 0, 1)
        .display()
        .to_string();
    example.replacen("-part-00000-of-00001", "-part-NNNNN-of-MMMMM", 1)
}

/// What a join wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub parts: usize,
    /// Data rows (records), the header not counted.
    pub rows: u64,
    /// The output's size and SHA-256 as stored (compressed, for gzip).
    pub bytes: u64,
    pub sha256: String,
}

/// The UTF-8 byte order mark (`bom = true`), kept once.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The longest header row taken (a part whose first line is longer is not gscrape's).
const MAX_HEADER: usize = 16 << 20;

/// Joins `parts` — each a name (for messages) and a reader of its bytes as stored, in index
/// order — into `out`, the output's bytes as stored: `layout`'s header once (each part's must
/// be the first part's; an empty part, of an export that named no columns, has none), every
/// row, a gzip output compressed again as one stream. `output` names the output in messages.
pub fn join<'a>(
    parts: impl IntoIterator<Item = (String, Box<dyn Read + 'a>)>,
    out: &mut dyn Write,
    layout: Layout,
    output: &str,
) -> Result<Joined, ComposeError> {
    let write_error = |source| ComposeError::Io {
        what: format!("write {output}"),
        source,
    };
    let mut stored = Proof {
        inner: out,
        bytes: 0,
        hash: Sha256::new(),
    };
    let (count, rows) = match layout.gzip {
        true => {
            let mut plain =
                flate2::write::GzEncoder::new(&mut stored, flate2::Compression::default());
            let joined = join_parts(parts, &mut plain, layout, output)?;
            plain.try_finish().map_err(write_error)?;
            drop(plain);
            joined
        }
        false => join_parts(parts, &mut stored, layout, output)?,
    };
    stored.flush().map_err(write_error)?;
    Ok(Joined {
        parts: count,
        rows,
        bytes: stored.bytes,
        sha256: crate::sink::hex(&stored.hash.finalize()),
    })
}

/// Every part into `out` (the output's bytes before compression): how many, and their rows.
fn join_parts<'a>(
    parts: impl IntoIterator<Item = (String, Box<dyn Read + 'a>)>,
    out: &mut dyn Write,
    layout: Layout,
    output: &str,
) -> Result<(usize, u64), ComposeError> {
    let mut joiner = Joiner::new(layout, output);
    for (name, reader) in parts {
        joiner.part(&name, reader, out)?;
    }
    out.flush().map_err(|source| ComposeError::Io {
        what: format!("write {output}"),
        source,
    })?;
    Ok((joiner.parts, joiner.rows))
}

/// A join taken one part at a time, each into a writer of its own if need be: what a store
/// that joins whole objects (Cloud Storage `compose`) uses to check every part and to make
/// the pieces that need a change (a part past the first without its header) — the checks and
/// counts of [`join`], part by part.
pub struct Joiner {
    layout: Layout,
    output: String,
    /// The part that started the output (its header, or its first bytes), and its header.
    first: Option<(String, Vec<u8>)>,
    parts: usize,
    rows: u64,
}

impl Joiner {
    /// A join of parts of `layout` into the output named `output` in messages.
    pub fn new(layout: Layout, output: &str) -> Joiner {
        Joiner {
            layout,
            output: output.to_owned(),
            first: None,
            parts: 0,
            rows: 0,
        }
    }

    /// True once a part started the output (it wrote the header, or its first bytes): every
    /// later part's header (and byte order mark) is left out of what it writes.
    pub fn started(&self) -> bool {
        self.first.is_some()
    }

    /// One part — `reader` of its bytes as stored, inflated here for gzip — into `out`, the
    /// output's bytes before compression: the header and mark only if it starts the output,
    /// its rows. Returns its rows.
    pub fn part<'a>(
        &mut self,
        name: &str,
        reader: Box<dyn Read + 'a>,
        out: &mut dyn Write,
    ) -> Result<u64, ComposeError> {
        self.parts += 1;
        let reader: Box<dyn Read + 'a> = match self.layout.gzip {
            true => Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                reader,
            ))),
            false => reader,
        };
        let rows = join_part(
            name,
            reader,
            out,
            self.layout,
            &mut self.first,
            &self.output,
        )?;
        self.rows += rows;
        Ok(rows)
    }

    /// The parts joined so far, and their rows.
    pub fn parts(&self) -> usize {
        self.parts
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }
}

/// One part into `out`: its header checked against the first part's (and written with the
/// first), its rows counted and written.
fn join_part(
    name: &str,
    mut reader: Box<dyn Read + '_>,
    out: &mut dyn Write,
    layout: Layout,
    first: &mut Option<(String, Vec<u8>)>,
    output: &str,
) -> Result<u64, ComposeError> {
    let read_error = |source| ComposeError::Read {
        output: output.to_owned(),
        part: name.to_owned(),
        source,
    };
    let write_error = |source| ComposeError::Io {
        what: format!("write {output}"),
        source,
    };
    let quoted = layout.format != Format::Ndjson;
    let mut buf = vec![0u8; 64 << 10];
    let mut scan = Scan::default();
    let mut header = Vec::new();
    let mut in_header = layout.header;
    let mut rows = 0u64;
    let mut last = None;
    let mut start = true;
    let mut bom = false;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(read_error(err)),
        };
        let mut len = n;
        if start {
            // (A mark cut across two reads is read whole first.)
            while len < BOM.len() && BOM.starts_with(&buf[..len]) {
                let more = reader.read(&mut buf[len..]).map_err(read_error)?;
                if more == 0 {
                    break;
                }
                len += more;
            }
        }
        let mut chunk = &buf[..len];
        if start {
            start = false;
            if let Some(rest) = chunk.strip_prefix(BOM) {
                bom = true;
                chunk = rest;
            }
        }
        if chunk.is_empty() {
            continue;
        }
        last = chunk.last().copied();
        if in_header {
            match scan.record_end(chunk, quoted) {
                Some(end) => {
                    header.extend_from_slice(&chunk[..=end]);
                    chunk = &chunk[end + 1..];
                    in_header = false;
                    match first {
                        None => {
                            if bom {
                                out.write_all(BOM).map_err(write_error)?;
                            }
                            out.write_all(&header).map_err(write_error)?;
                            *first = Some((name.to_owned(), header.clone()));
                        }
                        Some((first, expected)) if *expected != header => {
                            let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_owned();
                            return Err(ComposeError::Header {
                                output: output.to_owned(),
                                part: name.to_owned(),
                                first: first.clone(),
                                found: text(&header),
                                expected: text(expected),
                            });
                        }
                        Some(_) => {}
                    }
                }
                None => {
                    header.extend_from_slice(chunk);
                    if header.len() > MAX_HEADER {
                        return Err(ComposeError::Unfinished {
                            output: output.to_owned(),
                            part: name.to_owned(),
                        });
                    }
                    continue;
                }
            }
        } else if first.is_none() {
            // Without a header: the first part with bytes writes the mark.
            if bom {
                out.write_all(BOM).map_err(write_error)?;
            }
            *first = Some((name.to_owned(), Vec::new()));
        }
        rows += scan.count(chunk, quoted);
        out.write_all(chunk).map_err(write_error)?;
    }
    if last.is_some_and(|b| b != b'\n') || in_header && !header.is_empty() {
        return Err(ComposeError::Unfinished {
            output: output.to_owned(),
            part: name.to_owned(),
        });
    }
    Ok(rows)
}

/// Where records end in CSV (quotes may hold line breaks) or NDJSON (one a line).
#[derive(Debug, Default)]
struct Scan {
    in_quotes: bool,
}

impl Scan {
    /// The index of the line break that ends the current record in `chunk`, if any (the
    /// quotes before it taken into account).
    fn record_end(&mut self, chunk: &[u8], quoted: bool) -> Option<usize> {
        for (i, &b) in chunk.iter().enumerate() {
            match b {
                b'"' if quoted => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => return Some(i),
                _ => {}
            }
        }
        None
    }

    /// The records that end in `chunk`.
    fn count(&mut self, chunk: &[u8], quoted: bool) -> u64 {
        if !quoted {
            return memchr::memchr_iter(b'\n', chunk).count() as u64;
        }
        let mut ends = 0;
        let mut rest = chunk;
        while let Some(end) = self.record_end(rest, quoted) {
            ends += 1;
            rest = &rest[end + 1..];
        }
        ends
    }
}

/// A writer that counts and hashes what goes through it.
struct Proof<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
    hash: Sha256,
}

impl Write for Proof<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn csv() -> Layout {
        Layout {
            format: Format::Csv,
            gzip: false,
            header: true,
        }
    }

    fn join_all(parts: &[&[u8]], layout: Layout) -> Result<(Vec<u8>, Joined), ComposeError> {
        let mut out = Vec::new();
        let readers = parts.iter().enumerate().map(|(i, p)| {
            let reader: Box<dyn Read> = Box::new(*p);
            (format!("part{i}"), reader)
        });
        let joined = join(readers, &mut out, layout, "out.csv")?;
        Ok((out, joined))
    }

    #[test]
    fn every_part_of_one_count_in_index_order() {
        let parts = select_parts(
            "files.csv",
            "output/files.csv",
            names(&[
                "files-part-00002-of-00003.csv",
                "files.csv",
                "files-part-00000-of-00003.csv",
                "other.csv",
                "files-part-00001-of-00003.csv",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(parts.count, 3);
        assert_eq!(
            parts.names,
            names(&[
                "files-part-00000-of-00003.csv",
                "files-part-00001-of-00003.csv",
                "files-part-00002-of-00003.csv"
            ])
        );
    }

    #[test]
    fn missing_and_disagreeing_parts_are_named() {
        let err = select_parts(
            "files.csv",
            "output/files.csv",
            names(&[
                "files-part-00000-of-00003.csv",
                "files-part-00002-of-00003.csv",
            ]),
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind(), Failure::NotReady);
        assert_eq!(err.to_string(), "output/files.csv: 1 of 3 parts missing: 1 (output/files-part-00001-of-00003.csv); the task of each has not finished (or failed): run it, then compose again (output/files.csv left as it was)");

        let both = names(&[
            "files-part-00000-of-00002.csv",
            "files-part-00000-of-00003.csv",
        ]);
        let err = select_parts("files.csv", "files.csv", both.clone(), None).unwrap_err();
        assert_eq!(err.kind(), Failure::BadInput);
        assert_eq!(err.to_string(), "files.csv: its parts disagree on the number of shards: 1 of 2, 1 of 3; remove the parts of the other run, or say which with --count");
        let err = select_parts("files.csv", "files.csv", both, Some(2)).unwrap_err();
        assert!(
            err.to_string()
                .contains("1 of 2 parts missing: 1 (files-part-00001-of-00002.csv)"),
            "{err}"
        );

        let err = select_parts("f.csv.gz", "o/f.csv.gz", names(&["f.csv.gz"]), None).unwrap_err();
        assert_eq!(err.to_string(), "o/f.csv.gz: no part of it found (none named f-part-NNNNN-of-MMMMM.csv.gz beside it): run the shards first, or name the output as its query does");
        // With --count, every part is missing.
        let err = select_parts("f.csv", "f.csv", names(&[]), Some(2)).unwrap_err();
        assert_eq!(err.kind(), Failure::NotReady);
    }

    #[test]
    fn one_header_every_row() {
        let (out, joined) = join_all(
            &[
                b"id,name\r\n1,a\r\n",
                b"id,name\r\n",
                b"",
                b"id,name\r\n2,\"b\r\nc\"\r\n3,d\r\n",
            ],
            csv(),
        )
        .unwrap();
        assert_eq!(out, b"id,name\r\n1,a\r\n2,\"b\r\nc\"\r\n3,d\r\n");
        assert_eq!(joined.rows, 3);
        assert_eq!(joined.parts, 4);
        assert_eq!(joined.bytes, out.len() as u64);
        assert_eq!(joined.sha256, crate::sink::hex(&Sha256::digest(&out)));
    }

    #[test]
    fn a_header_with_a_quoted_line_break_and_a_bom() {
        let (out, joined) = join_all(
            &[
                b"\xEF\xBB\xBF\"a\nb\",c\r\n1,2\r\n",
                b"\xEF\xBB\xBF\"a\nb\",c\r\n3,4\r\n",
            ],
            csv(),
        )
        .unwrap();
        assert_eq!(out, b"\xEF\xBB\xBF\"a\nb\",c\r\n1,2\r\n3,4\r\n");
        assert_eq!(joined.rows, 2);
    }

    #[test]
    fn parts_that_cannot_be_joined_are_refused() {
        let err = join_all(&[b"id,name\r\n1,a\r\n", b"id,size\r\n2,3\r\n"], csv()).unwrap_err();
        assert_eq!(err.kind(), Failure::BadInput);
        assert_eq!(err.to_string(), "part1: its header is not the one of part0: \"id,size\" against \"id,name\"; the shards ran other queries: run them again alike (out.csv left as it was)");
        let err = join_all(&[b"id\r\n1\r\n", b"id\r\n2"], csv()).unwrap_err();
        assert!(
            matches!(err, ComposeError::Unfinished { ref part, .. } if part == "part1"),
            "{err}"
        );
        let err = join_all(&[b"id"], csv()).unwrap_err();
        assert!(matches!(err, ComposeError::Unfinished { .. }), "{err}");
    }

    #[test]
    fn ndjson_lines_and_headerless_csv_as_they_are() {
        let ndjson = Layout {
            format: Format::Ndjson,
            gzip: false,
            header: false,
        };
        let (out, joined) = join_all(
            &[b"{\"a\":\"\\\"\"}\n", b"", b"{\"a\":2}\n{\"a\":3}\n"],
            ndjson,
        )
        .unwrap();
        assert_eq!(out, b"{\"a\":\"\\\"\"}\n{\"a\":2}\n{\"a\":3}\n");
        assert_eq!(joined.rows, 3);
        let bare = Layout {
            header: false,
            ..csv()
        };
        let (out, joined) = join_all(&[b"1\r\n", b"2\r\n"], bare).unwrap();
        assert_eq!(out, b"1\r\n2\r\n");
        assert_eq!(joined.rows, 2);
    }

    #[test]
    fn gzip_parts_become_one_stream() {
        use flate2::write::GzEncoder;
        let gz = |text: &[u8]| {
            let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        };
        let parts = [gz(b"id\r\n1\r\n"), gz(b"id\r\n2\r\n")];
        let layout = Layout {
            gzip: true,
            ..csv()
        };
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let (out, joined) = join_all(&refs, layout).unwrap();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(out.as_slice())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "id\r\n1\r\n2\r\n");
        assert_eq!(joined.rows, 2);
        assert_eq!(joined.bytes, out.len() as u64);
        // A part that is not gzip is refused, as bad input.
        let err = join_all(&[b"id\r\n"], layout).unwrap_err();
        assert_eq!(err.kind(), Failure::BadInput, "{err}");
    }

    #[test]
    fn layouts_by_name() {
        let of = |name: &str| Layout::of(Path::new(name), None, true);
        assert_eq!(of("a.csv").unwrap(), csv());
        assert_eq!(
            of("a.tsv.gz").unwrap(),
            Layout {
                format: Format::Tsv,
                gzip: true,
                header: true
            }
        );
        assert!(!of("a.jsonl").unwrap().header);
        let err = of("a.xlsx").unwrap_err().to_string();
        assert!(
            err.starts_with("a.xlsx: xlsx workbooks cannot be joined"),
            "{err}"
        );
        let err = of("a.txt").unwrap_err().to_string();
        assert!(err.contains("or give --format"), "{err}");
        assert_eq!(
            Layout::of(Path::new("a.txt"), Some(Format::Ndjson), true)
                .unwrap()
                .format,
            Format::Ndjson
        );
    }
}
