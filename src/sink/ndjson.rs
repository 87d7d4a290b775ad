//! NDJSON (JSON Lines): one JSON object a line, `\n` after each. Without `columns`, each line
//! is the record as the API sent it (its text, key order and numbers kept); with `columns`, an
//! object keyed by the column names, in column order, with the JSON types of the record kept
//! (a number stays a number, a nested value is JSON; a path through an array gives the array
//! of the values it reaches; a missing field is `null`; a template column is a string).

use serde_json::Value;

use super::file::{Mark, Stream, Written};
use super::{Sink, SinkError};
use crate::plan::Output;
use crate::records::{path_values, Column, ColumnSource, Row};

/// Lines are gathered into a buffer written out when it holds this much.
const WRITE_AT: usize = 256 * 1024;

pub struct NdjsonSink {
    stream: Stream,
    /// Each line is the record's own text.
    raw: bool,
    columns: Vec<Column>,
    /// Each column name as a JSON string and a colon.
    keys: Vec<String>,
    out: Vec<u8>,
}

impl NdjsonSink {
    /// Starts an export to `output`. `raw`: the records as sent.
    pub fn create(output: &Output, raw: bool) -> Result<Self, SinkError> {
        Ok(NdjsonSink {
            stream: Stream::create(output)?,
            raw,
            columns: Vec::new(),
            keys: Vec::new(),
            out: Vec::with_capacity(WRITE_AT + 64 * 1024),
        })
    }

    /// Takes up the export to `output` a checkpoint left at `mark`; why not, otherwise.
    pub fn resume(output: &Output, raw: bool, mark: &Mark) -> Result<Self, String> {
        Ok(NdjsonSink {
            stream: Stream::resume(output, mark)?,
            raw,
            columns: Vec::new(),
            keys: Vec::new(),
            out: Vec::with_capacity(WRITE_AT + 64 * 1024),
        })
    }

    /// The object of `row`'s columns, from its record (`record`) where the reader kept it.
    fn encode_columns(&mut self, row: &Row, record: Option<&Value>) {
        let mut cells = row.cells().peekable();
        self.out.push(b'{');
        for (i, (column, key)) in self.columns.iter().zip(&self.keys).enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(key.as_bytes());
            let cell = match cells.peek() {
                Some(&(at, text)) if at == i => {
                    cells.next();
                    Some(text)
                }
                _ => None,
            };
            let value = match (&column.source, record) {
                (ColumnSource::Path(path), Some(record)) => match &path_values(record, path)[..] {
                    [] => Value::Null,
                    [one] => (*one).clone(),
                    many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
                },
                _ => cell.map_or(Value::Null, |text| Value::String(text.to_owned())),
            };
            let _ = serde_json::to_writer(&mut self.out, &value);
        }
        self.out.extend_from_slice(b"}\n");
    }
}

impl Sink for NdjsonSink {
    fn begin(&mut self, columns: &[Column]) -> Result<(), SinkError> {
        self.columns = columns.to_vec();
        self.keys = columns
            .iter()
            .map(|c| format!("{}:", Value::String(c.header.clone())))
            .collect();
        Ok(())
    }

    fn write_row(&mut self, row: &Row) -> Result<(), SinkError> {
        match (self.raw, row.raw()) {
            (true, Some(raw)) => {
                // A record's text may span lines; a line of NDJSON may not.
                if raw.contains('\n') || raw.contains('\r') {
                    self.out.extend_from_slice(raw_compact(raw).as_bytes());
                } else {
                    self.out.extend_from_slice(raw.as_bytes());
                }
                self.out.push(b'\n');
            }
            (_, raw) => {
                let record = raw.and_then(|raw| serde_json::from_str::<Value>(raw).ok());
                self.encode_columns(row, record.as_ref());
            }
        }
        if self.out.len() >= WRITE_AT {
            self.stream.put(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    fn write_encoded(&mut self, line: &[u8]) -> Result<(), SinkError> {
        self.out.extend_from_slice(line);
        if self.out.len() >= WRITE_AT {
            self.stream.put(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<Option<Mark>, SinkError> {
        self.stream.put(&self.out)?;
        self.out.clear();
        self.stream.mark()
    }

    fn commit(mut self: Box<Self>) -> Result<Written, SinkError> {
        self.stream.put(&self.out)?;
        self.stream.finish()
    }
}

/// A record's text on one line: its whitespace outside strings dropped (key order and number
/// text kept; a line break inside a JSON string is always escaped, so only whitespace between
/// tokens can break a line).
fn raw_compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_over_several_lines_becomes_one() {
        let raw = "{\n  \"b\": \"x y\\n\",\n  \"a\": [1, 2.50]\n}";
        assert_eq!(raw_compact(raw), r#"{"b":"x y\n","a":[1,2.50]}"#);
    }
}
