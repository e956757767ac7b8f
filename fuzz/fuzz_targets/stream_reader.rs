//! The NDJSON stream reader fed arbitrary bytes: every input ends in
//! `Ok(None)` or an `Err` naming a line, never in a panic. The same input is
//! read three ways: with the default options (digests checked), with a tiny
//! line cap and no digest checks, and with digests recomputed as well.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_core::stream::{Item, ReaderOptions, StreamReader};

fn read_all(data: &[u8], options: ReaderOptions) {
    let mut reader = StreamReader::with_options(data, options);
    let mut last_line = 0;
    loop {
        match reader.next() {
            Ok(Some(Item::Row(row))) => {
                for field in row.iter() {
                    let _ = field.as_text();
                }
            }
            Ok(Some(Item::Record(record))) => {
                // A record read back serializes again.
                serde_json::to_string(&record).expect("a record read serializes");
            }
            Ok(None) => break,
            Err(e) => {
                assert!(!e.message.is_empty());
                let _ = e.to_string();
                break;
            }
        }
        assert!(reader.line_number() >= last_line, "line numbers go forward");
        last_line = reader.line_number();
        let _ = reader.section();
    }
    assert!(reader.bytes_read() <= data.len() as u64);
}

fuzz_target!(|data: &[u8]| {
    read_all(data, ReaderOptions::default());
    read_all(
        data,
        ReaderOptions {
            max_line_bytes: 64,
            check_digests: false,
            recompute_digests: false,
        },
    );
    read_all(
        data,
        ReaderOptions {
            recompute_digests: true,
            ..ReaderOptions::default()
        },
    );
});
