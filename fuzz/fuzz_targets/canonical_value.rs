//! The canonical-value code that the section digest and molt-verify share:
//! `canonical` for every logical type, arrays, JSON, intervals, BC years and
//! the digest itself. The first byte picks the type (and CHAR padding), the
//! rest is the value's text.
//!
//! Besides "no panic": the canonical form is a fixed point (canonicalizing
//! it again changes nothing) for the types whose rules promise one, and an
//! interval's ISO text reads back to the same interval.
#![no_main]

use libfuzzer_sys::fuzz_target;
use molt_core::digest::{DigestColumn, RowHasher, SectionDigest};
use molt_core::value::era::{from_pg_era, to_pg_era};
use molt_core::value::{canonical, canonical_array, canonical_json, canonical_json_into};
use molt_core::value::{Interval, LogicalType};

const TYPES: [LogicalType; 18] = [
    LogicalType::Bool,
    LogicalType::Int,
    LogicalType::Decimal,
    LogicalType::Float4,
    LogicalType::Float8,
    LogicalType::Text,
    LogicalType::Bytes,
    LogicalType::Date,
    LogicalType::Time,
    LogicalType::Timetz,
    LogicalType::Timestamp,
    LogicalType::Timestamptz,
    LogicalType::Interval,
    LogicalType::Json,
    LogicalType::Uuid,
    LogicalType::Bit,
    LogicalType::Enum,
    LogicalType::Geometry,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let ty = TYPES[usize::from(selector & 0x7f) % TYPES.len()];
    let padded = selector & 0x80 != 0;

    let once = canonical(ty, padded, text);
    let twice = canonical(ty, padded, &once);
    if matches!(
        ty,
        LogicalType::Bool
            | LogicalType::Int
            | LogicalType::Decimal
            | LogicalType::Float4
            | LogicalType::Float8
            | LogicalType::Text
            | LogicalType::Enum
            | LogicalType::Interval
            | LogicalType::Json
            | LogicalType::Uuid
            | LogicalType::Geometry
    ) {
        assert_eq!(
            once, twice,
            "canonical({ty}) is not a fixed point for {text:?}"
        );
    }
    let array = canonical_array(ty, padded, text);
    let _ = canonical_array(ty, padded, &array);

    let json = canonical_json(text);
    let mut out = b"prefix".to_vec();
    let ok = canonical_json_into(text, &mut out);
    assert_eq!(ok, json.is_some());
    if let Some(json) = &json {
        assert_eq!(&out[6..], json.as_bytes());
        assert_eq!(
            canonical_json(json).as_ref(),
            Some(json),
            "canonical JSON is a fixed point"
        );
    } else {
        assert_eq!(out, b"prefix");
    }

    if let Some(iv) = Interval::parse_iso(text) {
        let iso = iv.to_iso();
        assert_eq!(Interval::parse_iso(&iso), Some(iv), "{text:?} -> {iso:?}");
    }
    let _ = from_pg_era(text);
    let _ = to_pg_era(text);
    let _ = SectionDigest::parse_hex(text);

    let mut hasher = RowHasher::default();
    for is_array in [false, true] {
        let column = DigestColumn {
            logical: ty,
            padded,
            is_array,
        };
        hasher.value(column, Some(text));
        hasher.value(column, None);
    }
    let mut digest = SectionDigest::default();
    digest.add_row(hasher.finish_row());
    assert_eq!(SectionDigest::parse_hex(&digest.hex()), Some(digest.sum));
});
