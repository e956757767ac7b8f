//! CSV for one table, for tools that do not speak the stream.
//!
//! RFC 4180 with a header row of column names. SQL NULL is written as the
//! marker `\N`; so that no text value can be mistaken for it, a value that
//! starts with a backslash gets one more in front (`\N` as text is written
//! `\\N`). Reading undoes exactly that. Arrays are written as their JSON text.

use std::borrow::Cow;
use std::io::{Read, Write};

use super::reader::{Field, RowBuf, StreamError};

/// The NULL marker.
pub const NULL_MARKER: &str = "\\N";

/// Encodes one value for a CSV field.
pub fn encode_field(value: Option<&str>) -> Cow<'_, str> {
    match value {
        None => Cow::Borrowed(NULL_MARKER),
        Some(text) if text.starts_with('\\') => Cow::Owned(format!("\\{text}")),
        Some(text) => Cow::Borrowed(text),
    }
}

/// Decodes one CSV field; `None` is NULL.
pub fn decode_field(field: &str) -> Option<&str> {
    if field == NULL_MARKER {
        None
    } else if let Some(rest) = field.strip_prefix('\\') {
        Some(rest)
    } else {
        Some(field)
    }
}

/// Writes one table's rows as CSV.
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<W>,
    record: Vec<String>,
}

impl<W: Write> CsvWriter<W> {
    /// Starts the CSV with a header row of `columns`.
    pub fn new(out: W, columns: &[&str]) -> csv::Result<Self> {
        let mut inner = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(out);
        inner.write_record(columns)?;
        Ok(CsvWriter {
            inner,
            record: Vec::new(),
        })
    }

    pub fn write_row(&mut self, row: &RowBuf) -> csv::Result<()> {
        self.record.clear();
        for field in row.iter() {
            self.record.push(encode_field(field.as_text()).into_owned());
        }
        self.inner.write_record(&self.record)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads CSV rows written by [`CsvWriter`] (or any RFC 4180 CSV using the
/// same NULL marker).
pub struct CsvReader<R: Read> {
    inner: csv::Reader<R>,
    record: csv::StringRecord,
    headers: Vec<String>,
}

impl<R: Read> CsvReader<R> {
    pub fn new(input: R) -> Result<Self, StreamError> {
        let mut inner = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(input);
        let headers = inner
            .headers()
            .map_err(|e| StreamError {
                line: 1,
                message: format!("CSV header: {e}"),
            })?
            .iter()
            .map(str::to_string)
            .collect();
        Ok(CsvReader {
            inner,
            record: csv::StringRecord::new(),
            headers,
        })
    }

    /// Column names from the header row.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Reads the next row; `Ok(None)` at the end.
    pub fn next_row(&mut self) -> Result<Option<Vec<Field<'_>>>, StreamError> {
        match self.inner.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(
                self.record
                    .iter()
                    .map(|f| decode_field(f).map_or(Field::Null, Field::Str))
                    .collect(),
            )),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                Err(StreamError {
                    line,
                    message: format!("CSV: {e}"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_backslashes_round_trip() {
        for value in [
            None,
            Some(""),
            Some("\\N"),
            Some("\\"),
            Some("a,b\"c\nd"),
            Some("N"),
        ] {
            let encoded = encode_field(value);
            assert_eq!(decode_field(&encoded), value, "{value:?}");
        }
        assert_ne!(encode_field(None), encode_field(Some("")));
    }
}
