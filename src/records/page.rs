//! From a page's text to its rows, for every shape of export: plain lists, default columns,
//! `explode`, reports (through the [`Decoder`]) and fan-out children (template columns, and the
//! records whole when a further fan-out reads them). A plain list of records in a top-level
//! array is read by the structural scan ([`super::stream`]), cells taken from the text; every
//! other page is parsed by serde_json. Callers see only pages and rows.
//!
//! One truth: serde_json's reading of a page (into a `Value`) is what every path writes. The
//! scan checks every byte as serde_json does ([`super::strict`]) and hands back what it does not
//! take on (a page of another shape, a repeated key), and its errors are serde_json's own,
//! positions in the page; `tests/json_truth.rs` holds it to that on generated pages.

use serde_json::value::RawValue;
use serde_json::Value;

use super::scan::Record;
use super::stream::{Selector, Stopped};
use super::strict::Strict;
use super::{explode, render_row, Column, Decoder, FieldPath, Row};

/// Reads the pages of one query.
#[derive(Debug)]
pub struct PageReader {
    decoder: Decoder,
    explode: Option<FieldPath>,
    /// The scan, when the records are a top-level array read for their cells only.
    selector: Option<Selector>,
    /// Each row comes with its record's JSON text ([`Row::raw`]).
    keep_raw: bool,
}

/// A page read far enough to page on: its fields, and how many records it holds.
#[derive(Debug)]
pub struct Page {
    /// The whole page, or (when the scan reads the records later) the page without them.
    fields: Value,
    count: usize,
    /// Where the scan reads the records (their array's first byte); `None` when the page was
    /// parsed whole (or the scan found no records in it).
    records_at: Option<usize>,
    /// The page was parsed whole: its rows come from `fields`.
    parsed: bool,
}

/// Why a page cannot be read.
#[derive(Debug)]
pub enum PageError {
    NotJson(serde_json::Error),
    /// JSON, but not records (the reason, for the message).
    NotRecords(String),
}

impl Page {
    /// The page's fields other than its records (the records too on the parsed path): the
    /// next-page token, totals, report headers.
    pub fn fields(&self) -> &Value {
        &self.fields
    }

    /// The records it holds (before `explode`).
    pub fn count(&self) -> usize {
        self.count
    }
}

impl PageReader {
    /// A reader of `decoder`'s pages into rows of `columns` (the columns as the plan gives
    /// them; a report that names its columns in its response gets rows of those instead).
    /// `keep_records`: each row comes with its record, whole (a fan-out reads them).
    /// `keep_raw`: each row carries its record's JSON text ([`Row::raw`]): as the API sent it
    /// (key order and number text kept) for a records array or a whole response; for a report
    /// or an `explode`, whose records gscrape makes, the record serialized.
    pub fn new(
        decoder: &Decoder,
        explode: Option<&FieldPath>,
        columns: &[Column],
        keep_records: bool,
        keep_raw: bool,
    ) -> Self {
        // The scan hands each record's text too, so a row that carries it stays on it.
        let selector = match (decoder, explode, keep_records) {
            (Decoder::Records(Some(records)), None, false) => Selector::new(records, columns),
            _ => None,
        };
        PageReader {
            decoder: decoder.clone(),
            explode: explode.cloned(),
            selector,
            keep_raw,
        }
    }

    /// Reads `text` far enough to page on, and checks that its records are records.
    pub fn read(&self, text: &str) -> Result<Page, PageError> {
        if let Some(selector) = &self.selector {
            if let Some(outline) = selector.outline(text) {
                return Ok(Page {
                    fields: outline.fields,
                    count: outline.count,
                    records_at: outline.records_at,
                    parsed: false,
                });
            }
            // Not a page the scan takes on: serde_json says what is wrong without building
            // anything, or reads it whole if nothing is.
            serde_json::from_str::<Strict>(text).map_err(PageError::NotJson)?;
        }
        let page: Value = serde_json::from_str(text).map_err(PageError::NotJson)?;
        self.decoder.check(&page).map_err(PageError::NotRecords)?;
        let count = self.decoder.count(&page);
        Ok(Page {
            fields: page,
            count,
            records_at: None,
            parsed: true,
        })
    }

    /// The types of the columns a report's page declares, if it says them.
    pub fn declared_types(&self, page: &Page) -> Option<Vec<super::schema::ColumnType>> {
        self.decoder.column_types(&page.fields)
    }

    /// What a report's page says about its numbers (sampled, not final, ...).
    pub fn caveats(&self, page: &Page) -> Vec<super::Caveat> {
        self.decoder.caveats(&page.fields)
    }

    /// The column names a report's page declares, for reports whose request does not.
    pub fn declared_columns(&self, page: &Page) -> Option<Vec<String>> {
        self.decoder.columns_from_response(&page.fields)
    }

    /// Calls `each` with the row of each record of `page` (read from `text`), in order, and the
    /// record itself where it was parsed whole (always when the reader keeps records); `each`
    /// returns false to skip the rest.
    /// `columns` are those given to [`PageReader::new`], or a report's declared ones;
    /// `rendered` holds the value of each template column, by column index.
    pub fn rows<E>(
        &self,
        text: &str,
        page: Page,
        columns: &[Column],
        rendered: &[String],
        mut each: impl FnMut(&Row, Option<Value>) -> Result<bool, E>,
    ) -> Result<(), Stopped<E>> {
        let mut row = Row::default();
        if let (Some(selector), false) = (&self.selector, page.parsed) {
            let Some(records_at) = page.records_at else {
                return Ok(()); // no records (`null`, or no records field)
            };
            return selector.rows(text, records_at, |record, raw| {
                match record {
                    Record::Scanned(found) => selector.render(found, rendered, &mut row),
                    Record::Parsed(record) => render_row(&record, columns, rendered, &mut row),
                }
                if self.keep_raw {
                    row.set_raw(raw);
                }
                each(&row, None)
            });
        }
        let raws = match (&self.decoder, &self.explode, self.keep_raw) {
            (Decoder::Records(path), None, true) => raw_records(text, path.as_ref()),
            _ => None,
        };
        let records = self.decoder.decode(page.fields);
        let records = match &self.explode {
            Some(path) => explode(records, path),
            None => records,
        };
        let raws = raws.filter(|raws| raws.len() == records.len());
        for (i, record) in records.into_iter().enumerate() {
            render_row(&record, columns, rendered, &mut row);
            if self.keep_raw {
                match &raws {
                    Some(raws) => row.set_raw(raws[i].get()),
                    None => row.set_raw(&record.to_string()),
                }
            }
            match each(&row, Some(record)) {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => return Err(Stopped::Row(err)),
            }
        }
        Ok(())
    }
}

/// The JSON text of each record of the page `text` (the array at `path`, or the whole page),
/// as the API sent it; `None` when the page does not hold them where the path says.
fn raw_records<'a>(text: &'a str, path: Option<&FieldPath>) -> Option<Vec<&'a RawValue>> {
    let mut node: &RawValue = serde_json::from_str(text).ok()?;
    let Some(path) = path else {
        return Some(vec![node]);
    };
    for segment in path.segments() {
        let next = match segment {
            super::Segment::Key(key) => {
                let mut map: std::collections::HashMap<String, &RawValue> =
                    serde_json::from_str(node.get()).ok()?;
                map.remove(key)
            }
            super::Segment::Index(i) => {
                let items: Vec<&RawValue> = serde_json::from_str(node.get()).ok()?;
                items.get(*i).copied()
            }
            // A records path names the array by keys and indexes only.
            super::Segment::Match { .. } => return None,
        };
        match next {
            Some(next) => node = next,
            None => return Some(Vec::new()),
        }
    }
    match node.get().trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str(node.get()).ok(),
        Some(b'n') => Some(Vec::new()),
        _ => Some(vec![node]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_records_keep_the_text() {
        let text = r#"{"next":"t","data":{"items":[{"z":1,"a":1.50},{"b":"x"}]}}"#;
        let path = FieldPath::parse("data.items").unwrap();
        let raws: Vec<&str> = raw_records(text, Some(&path))
            .unwrap()
            .iter()
            .map(|r| r.get())
            .collect();
        assert_eq!(raws, [r#"{"z":1,"a":1.50}"#, r#"{"b":"x"}"#]);
        let missing = FieldPath::parse("data.none").unwrap();
        assert!(raw_records(text, Some(&missing)).unwrap().is_empty());
        assert_eq!(
            raw_records(" {\"a\":1} ", None).unwrap()[0].get(),
            r#"{"a":1}"#
        );
    }
}
