//! The CSV reader fed arbitrary bytes, and the NULL-marker encoding of one
//! field round-tripped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_core::stream::csv::{decode_field, encode_field, CsvReader};

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = CsvReader::new(data) {
        let columns = reader.headers().len();
        loop {
            match reader.next_row() {
                Ok(Some(row)) => assert_eq!(row.len(), columns, "rows are not flexible"),
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_string();
                    break;
                }
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    for value in [None, Some(text.as_ref())] {
        let encoded = encode_field(value);
        assert_eq!(decode_field(&encoded), value, "NULL marker round trip");
    }
});
