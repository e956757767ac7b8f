//! The `oracle` crate's values as stream text (cargo feature `oracle`).
//!
//! Only the taking-apart of the crate's types happens here; every decision
//! about the stream form is in [`super::value`], on plain parts. A row is
//! converted with [`convert_row`], which follows the select list of
//! [`OracleTable::select_list`] (a geometry column takes two values).

use oracle::sql_type::{IntervalDS, IntervalYM, Timestamp};
use oracle::SqlValue;

use super::catalog::OracleTable;
use super::types::ReadKind;
use super::value::{self, ConvertOptions, DateTimeParts, ValueError};
use crate::value::LogicalType;

/// A DATE/TIMESTAMP's fields, with Oracle's signed year and its offset.
pub fn timestamp_parts(ts: &Timestamp) -> DateTimeParts {
    DateTimeParts {
        year: ts.year(),
        month: ts.month(),
        day: ts.day(),
        hour: ts.hour(),
        minute: ts.minute(),
        second: ts.second(),
        nanosecond: ts.nanosecond(),
        offset_minutes: if ts.with_tz() { ts.tz_offset() / 60 } else { 0 },
    }
}

/// A DATE or TIMESTAMP as stream text; `utc` for the TIME ZONE types
/// (moved to UTC by the value's offset, `Z` suffix). Returns whether
/// sub-microsecond digits were truncated.
pub fn timestamp_text(
    ts: &Timestamp,
    utc: bool,
    opts: &ConvertOptions,
) -> Result<(String, bool), ValueError> {
    value::datetime_text(&timestamp_parts(ts), utc, opts)
}

/// INTERVAL YEAR TO MONTH as stream text.
pub fn interval_ym_text(iv: &IntervalYM) -> String {
    value::interval_ym_text(iv.years(), iv.months())
}

/// INTERVAL DAY TO SECOND as stream text (and whether nanoseconds were
/// truncated).
pub fn interval_ds_text(
    iv: &IntervalDS,
    opts: &ConvertOptions,
) -> Result<(String, bool), ValueError> {
    value::interval_ds_text(
        iv.days(),
        iv.hours(),
        iv.minutes(),
        iv.seconds(),
        iv.nanoseconds(),
        opts,
    )
}

fn get<T: oracle::sql_type::FromSql>(v: &SqlValue) -> Result<T, ValueError> {
    v.get::<T>()
        .map_err(|e| ValueError(e.to_string().lines().next().unwrap_or("").to_string()))
}

/// One fetched value as stream text (`None` for NULL), and whether it was
/// changed under the rounding policy. Not for [`ReadKind::Geometry`], which
/// needs two values (see [`convert_row`]).
pub fn value_text(
    read: ReadKind,
    logical: LogicalType,
    v: &SqlValue,
    opts: &ConvertOptions,
) -> Result<(Option<String>, bool), ValueError> {
    if v.is_null().unwrap_or(false) {
        return Ok((None, false));
    }
    let plain = |s: String| Ok((Some(s), false));
    match read {
        ReadKind::Number | ReadKind::NumberAsFloat8 => {
            plain(value::number_text(&get::<String>(v)?, logical)?)
        }
        ReadKind::BinaryFloat => plain(value::float4_text(get::<f32>(v)?)),
        ReadKind::BinaryDouble => plain(value::float8_text(get::<f64>(v)?)),
        ReadKind::Text | ReadKind::JsonText => plain(get::<String>(v)?),
        ReadKind::Bytes => plain(value::bytes_text(&get::<Vec<u8>>(v)?)),
        ReadKind::RawUuid => plain(value::uuid_text(&get::<Vec<u8>>(v)?)?),
        ReadKind::JsonBytes => plain(value::json_bytes_text(&get::<Vec<u8>>(v)?)?),
        ReadKind::Date | ReadKind::Timestamp | ReadKind::TimestampUtc => {
            let (text, changed) =
                timestamp_text(&get::<Timestamp>(v)?, read == ReadKind::TimestampUtc, opts)?;
            Ok((Some(text), changed))
        }
        ReadKind::IntervalYM => plain(interval_ym_text(&get::<IntervalYM>(v)?)),
        ReadKind::IntervalDS => {
            let (text, changed) = interval_ds_text(&get::<IntervalDS>(v)?, opts)?;
            Ok((Some(text), changed))
        }
        ReadKind::Boolean => plain(get::<bool>(v)?.to_string()),
        ReadKind::Geometry => Err(ValueError(
            "a geometry needs its WKB and SRID values".into(),
        )),
    }
}

/// A value that could not be converted, with its column (target name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct RowError {
    pub column: String,
    pub message: String,
}

/// Converts one fetched row (in [`OracleTable::select_list`] order) into
/// `out`, one value per header column. `truncated[i]` counts the values of
/// column `i` changed under the rounding policy (the `end` record's
/// `changes`, policy [`value::TRUNCATE_NANOS`]). The caller names the table
/// and the row's key in the error it reports.
pub fn convert_row(
    table: &OracleTable,
    row: &oracle::Row,
    opts: &ConvertOptions,
    out: &mut Vec<Option<String>>,
    truncated: &mut [u64],
) -> Result<(), RowError> {
    out.clear();
    let values = row.sql_values();
    let mut i = 0;
    for (n, (mapped, column)) in table.mapped.iter().zip(&table.header.columns).enumerate() {
        let fail = |e: ValueError| RowError {
            column: column.name.clone(),
            message: e.0,
        };
        let missing = || RowError {
            column: column.name.clone(),
            message: "the row has fewer values than the select list".into(),
        };
        if mapped.read == ReadKind::Geometry {
            let wkb = values.get(i).ok_or_else(missing)?;
            let srid = values.get(i + 1).ok_or_else(missing)?;
            i += 2;
            if wkb.is_null().unwrap_or(false) {
                out.push(None);
                continue;
            }
            let bytes = get::<Vec<u8>>(wkb).map_err(fail)?;
            let srid = get::<Option<u32>>(srid).map_err(fail)?;
            out.push(Some(value::geometry_text(&bytes, srid).map_err(fail)?));
            continue;
        }
        let v = values.get(i).ok_or_else(missing)?;
        i += 1;
        let (text, changed) = value_text(mapped.read, mapped.logical, v, opts).map_err(fail)?;
        if changed {
            if let Some(t) = truncated.get_mut(n) {
                *t += 1;
            }
        }
        out.push(text);
    }
    Ok(())
}
