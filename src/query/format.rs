//! The file format of a query's output: from its name (`.csv`, `.tsv`, `.ndjson`/`.jsonl`,
//! `.xlsx`, `.parquet`, `.gz` after the first three), or from the `format` key, which must agree with a
//! name that says a format; another extension (`.xls`, `.txt`) needs `format`, so that no
//! file is written in a format its name does not say.

use std::fmt;
use std::path::Path;

/// A file format gscrape writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Ndjson,
    Xlsx,
    Parquet,
}

impl Format {
    pub const NAMES: &'static str = r#""csv", "tsv", "ndjson", "xlsx" or "parquet""#;

    /// `csv`, `tsv`, `ndjson` (or `jsonl`), `xlsx`, `parquet`.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "xlsx" => Some(Format::Xlsx),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Ndjson => "ndjson",
            Format::Xlsx => "xlsx",
            Format::Parquet => "parquet",
        }
    }
}

/// What a format can do. [`Format::can`] is the one place each format says it: a new format
/// is one row there (and its sink, and one line in `sink::open`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abilities {
    /// "a" or "an", before its name.
    pub article: &'static str,
    /// Rows go out as they come: it can be written to standard output (xlsx and Parquet need
    /// their end written last).
    pub streams: bool,
    /// Takes `.gz` (xlsx and Parquet are compressed already).
    pub gzips: bool,
    /// A plain file of it is appended to (`append`).
    pub appendable: bool,
    /// A plain file of it is checkpointed and taken up mid-way (`--resume`).
    pub resumable: bool,
    /// Its parts join into one by their bytes (`gscrape compose`, `--shard`).
    pub concatenable: bool,
    /// It is read back row by row and merged into (`merge_key`).
    pub mergeable: bool,
    /// It takes every CSV option (`delimiter`, `bom`, `excel_safe`, `null`, `append`,
    /// `header`), and its parts start with a header row.
    pub csv_options: bool,
    /// Its delimiter, when it has one of its own (TSV's tab).
    pub delimiter: Option<u8>,
    /// It keeps a cell from being read as a formula (`excel_safe`).
    pub excel_safe: bool,
    /// Its cells are typed from the columns' types.
    pub typed: bool,
    /// Its rows need their record's JSON text: `Always` (NDJSON writes it), or for the
    /// columns that hold JSON (`JsonColumns`: Parquet's JSON columns).
    pub record_text: RecordText,
}

/// When a format's rows carry their record's JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordText {
    Never,
    Always,
    JsonColumns,
}

impl Format {
    /// What this format can do: the table of formats.
    pub const fn can(self) -> Abilities {
        const TEXT: Abilities = Abilities {
            article: "a",
            streams: true,
            gzips: true,
            appendable: true,
            resumable: true,
            concatenable: true,
            mergeable: true,
            csv_options: true,
            delimiter: None,
            excel_safe: true,
            typed: false,
            record_text: RecordText::Never,
        };
        const WHOLE: Abilities = Abilities {
            article: "a",
            streams: false,
            gzips: false,
            appendable: false,
            resumable: false,
            concatenable: false,
            mergeable: false,
            csv_options: false,
            delimiter: None,
            excel_safe: false,
            typed: true,
            record_text: RecordText::Never,
        };
        match self {
            Format::Csv => TEXT,
            Format::Tsv => Abilities {
                delimiter: Some(b'\t'),
                ..TEXT
            },
            Format::Ndjson => Abilities {
                article: "an",
                appendable: false,
                csv_options: false,
                excel_safe: false,
                record_text: RecordText::Always,
                ..TEXT
            },
            Format::Xlsx => Abilities {
                article: "an",
                excel_safe: true,
                ..WHOLE
            },
            Format::Parquet => Abilities {
                record_text: RecordText::JsonColumns,
                ..WHOLE
            },
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How one output is written: its format, gzip-compressed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFormat {
    pub format: Format,
    pub gzip: bool,
}

impl Default for OutputFormat {
    fn default() -> Self {
        OutputFormat {
            format: Format::Csv,
            gzip: false,
        }
    }
}

impl OutputFormat {
    /// The format of the output `name`, `key` (the query's `format`) first. A name whose
    /// extension is another format than `key`, and a compressed xlsx, are errors.
    pub fn resolve(name: &Path, key: Option<Format>) -> Result<OutputFormat, String> {
        let file = name
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let (stem, gzip) = match file.strip_suffix(".gz") {
            Some(stem) => (stem, true),
            None => (file.as_str(), false),
        };
        let extension = stem.rsplit_once('.').map(|(_, ext)| ext);
        let by_name = extension.and_then(Format::parse);
        if let (Some(extension), None, None) = (extension, by_name, key) {
            return Err(format!(
                "{:?}: gscrape does not write .{extension} files; name it .csv, .tsv, .ndjson \
                 or .jsonl (each may end in .gz), .xlsx or .parquet, or set `format` to {}",
                name.display().to_string(),
                Format::NAMES
            ));
        }
        let format = match (by_name, key) {
            (Some(named), Some(key)) if named != key => {
                return Err(format!(
                    "{:?} names a {named} file but `format = \"{key}\"`; make them agree (or drop `format`)",
                    name.display().to_string()
                ))
            }
            (_, Some(key)) => key,
            (Some(named), None) => named,
            (None, None) => Format::Csv,
        };
        if gzip && !format.can().gzips {
            return Err(format!(
                "{:?}: {} {format} file is compressed already; drop the `.gz`",
                name.display().to_string(),
                format.can().article,
            ));
        }
        Ok(OutputFormat { format, gzip })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str, key: Option<Format>) -> Result<(Format, bool), String> {
        OutputFormat::resolve(Path::new(name), key).map(|f| (f.format, f.gzip))
    }

    #[test]
    fn formats_by_name_and_key() {
        assert_eq!(of("a.csv", None), Ok((Format::Csv, false)));
        assert_eq!(of("d/a.TSV", None), Ok((Format::Tsv, false)));
        assert_eq!(of("a.jsonl", None), Ok((Format::Ndjson, false)));
        assert_eq!(of("a.ndjson.gz", None), Ok((Format::Ndjson, true)));
        assert_eq!(of("a.csv.gz", None), Ok((Format::Csv, true)));
        assert_eq!(of("a.gz", None), Ok((Format::Csv, true)));
        assert_eq!(of("a", None), Ok((Format::Csv, false)));
        let xls = of("a.xls", None).unwrap_err();
        assert!(
            xls.starts_with("\"a.xls\": gscrape does not write .xls files; name it .csv"),
            "{xls}"
        );
        assert!(of("a.txt", None).is_err());
        assert_eq!(of("a.xlsx", None), Ok((Format::Xlsx, false)));
        assert_eq!(
            of("a.txt", Some(Format::Ndjson)),
            Ok((Format::Ndjson, false))
        );
        assert_eq!(
            of("a.jsonl", Some(Format::Ndjson)),
            Ok((Format::Ndjson, false))
        );
        assert!(of("a.csv", Some(Format::Ndjson)).is_err());
        assert!(of("a.xlsx.gz", None).is_err());
        assert!(of("a.gz", Some(Format::Xlsx)).is_err());
        assert_eq!(of("d/a.Parquet", None), Ok((Format::Parquet, false)));
        assert_eq!(
            of("export", Some(Format::Parquet)),
            Ok((Format::Parquet, false))
        );
        assert!(of("a.parquet.gz", None).is_err());
        assert!(of("a.parquet", Some(Format::Csv)).is_err());
    }
}
