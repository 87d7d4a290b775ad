//! One row of an export as the records make it and the sinks write it.

use std::io::{self, Read, Write};

/// The cells one record has, in column order. A column without a cell is a field the record
/// lacks (missing or null): the sink writes its null text there. Holding only the cells that
/// exist keeps a row's cost with the fields its record has, not with the columns of the file
/// (default columns are every scalar of a schema, most of them empty in any one record).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Row {
    text: String,
    /// Each cell's column and the end of its text in `text`, columns increasing.
    cells: Vec<(u32, u32)>,
    /// The record's JSON text as the API sent it, when the reader keeps it (NDJSON).
    raw: Option<String>,
    /// For each cell of a fallback column that a path but the first filled: its column and
    /// which path, columns increasing (the typed sinks type the cell by that path).
    answered: Vec<(u32, u32)>,
}

impl Row {
    pub fn clear(&mut self) {
        self.text.clear();
        self.cells.clear();
        self.raw = None;
        self.answered.clear();
    }

    /// Keeps `json`, the record's text, with the row.
    pub fn set_raw(&mut self, json: &str) {
        self.raw = Some(json.to_owned());
    }

    /// The record's JSON text, when the reader kept it.
    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    /// Adds the cell of `column` (after every column already added) that `fill` writes; none
    /// when `fill` returns false (the field is missing or null). True when it added one.
    pub fn push_with(&mut self, column: usize, fill: impl FnOnce(&mut String) -> bool) -> bool {
        let start = self.text.len();
        if fill(&mut self.text) {
            self.cells.push((column as u32, self.text.len() as u32));
            true
        } else {
            self.text.truncate(start);
            false
        }
    }

    /// Notes that the last cell added, of a fallback column, came from its path number `path`.
    pub fn answered_by(&mut self, path: usize) {
        if let (Some(&(column, _)), true) = (self.cells.last(), path > 0) {
            self.answered.push((column, path as u32));
        }
    }

    /// Adds `text` as the cell of `column` (after every column already added).
    pub fn push(&mut self, column: usize, text: &str) {
        self.push_with(column, |cell| {
            cell.push_str(text);
            true
        });
    }

    /// The cells, as (column, text), in column order.
    pub fn cells(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        let mut start = 0;
        self.cells.iter().map(move |&(column, end)| {
            let text = &self.text[start..end as usize];
            start = end as usize;
            (column as usize, text)
        })
    }

    /// The cells, as (column, text, the path that answered: its index among a fallback
    /// column's paths, else 0), in column order.
    pub fn cells_answered(&self) -> impl Iterator<Item = (usize, &str, usize)> + '_ {
        let mut answered = self.answered.iter().peekable();
        self.cells().map(move |(column, text)| {
            let path = answered
                .next_if(|(at, _)| *at as usize == column)
                .map_or(0, |&(_, path)| path as usize);
            (column, text, path)
        })
    }

    /// The row in memory, roughly, in bytes (for buffers that hold rows up to a bound).
    pub fn footprint(&self) -> usize {
        self.text.len()
            + (self.cells.len() + self.answered.len()) * 8
            + self.raw.as_ref().map_or(0, String::len)
            + 96
    }

    /// Writes the row in a compact binary form that [`Row::read_from`] reads back (a fan-out's
    /// spill file).
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&(self.cells.len() as u32).to_le_bytes())?;
        for (column, end) in &self.cells {
            out.write_all(&column.to_le_bytes())?;
            out.write_all(&end.to_le_bytes())?;
        }
        out.write_all(self.text.as_bytes())?;
        match &self.raw {
            Some(raw) => {
                out.write_all(&(raw.len() as u32).to_le_bytes())?;
                out.write_all(raw.as_bytes())?
            }
            None => out.write_all(&u32::MAX.to_le_bytes())?,
        }
        out.write_all(&(self.answered.len() as u32).to_le_bytes())?;
        for (column, path) in &self.answered {
            out.write_all(&column.to_le_bytes())?;
            out.write_all(&path.to_le_bytes())?;
        }
        Ok(())
    }

    /// Reads back a row [`Row::write_to`] wrote.
    pub fn read_from(input: &mut impl Read) -> io::Result<Row> {
        let mut row = Row::default();
        let count = read_u32(input)? as usize;
        row.cells.reserve(count);
        for _ in 0..count {
            row.cells.push((read_u32(input)?, read_u32(input)?));
        }
        let len = row.cells.last().map_or(0, |&(_, end)| end as usize);
        let mut text = vec![0; len];
        input.read_exact(&mut text)?;
        let utf8 = |bytes| {
            String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        };
        row.text = utf8(text)?;
        let raw_len = read_u32(input)?;
        if raw_len != u32::MAX {
            let mut raw = vec![0; raw_len as usize];
            input.read_exact(&mut raw)?;
            row.raw = Some(utf8(raw)?);
        }
        let answered = read_u32(input)? as usize;
        row.answered.reserve(answered.min(row.cells.len()));
        for _ in 0..answered {
            row.answered.push((read_u32(input)?, read_u32(input)?));
        }
        Ok(row)
    }
}

fn read_u32(input: &mut impl Read) -> io::Result<u32> {
    let mut bytes = [0; 4];
    input.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_in_order_and_back_from_their_binary_form() {
        let mut row = Row::default();
        row.push(0, "a");
        row.push_with(1, |_| false);
        row.push(2, "");
        row.push_with(5, |cell| {
            cell.push_str("ünï");
            true
        });
        row.answered_by(1);
        row.set_raw(r#"{"b":1,"a":"ünï"}"#);
        let cells: Vec<(usize, &str)> = row.cells().collect();
        assert_eq!(cells, [(0, "a"), (2, ""), (5, "ünï")]);
        let answered: Vec<(usize, &str, usize)> = row.cells_answered().collect();
        assert_eq!(answered, [(0, "a", 0), (2, "", 0), (5, "ünï", 1)]);
        let mut bytes = Vec::new();
        row.write_to(&mut bytes).unwrap();
        Row::default().write_to(&mut bytes).unwrap();
        let mut input = &bytes[..];
        assert_eq!(Row::read_from(&mut input).unwrap(), row);
        assert_eq!(Row::read_from(&mut input).unwrap(), Row::default());
        assert!(input.is_empty());
    }
}
