//! Years before the common era.
//!
//! The stream writes dates with astronomical year numbers (ISO 8601): year
//! `0000` is 1 BC and `-0001` is 2 BC. PostgreSQL and CockroachDB write and
//! read the same dates as `0001-01-01 BC` and `0002-01-01 BC`. These two
//! functions convert a date or timestamp text between the two forms and
//! leave every common-era value untouched (the fast path).

/// PostgreSQL text (`YYYY-MM-DD[ ...] BC`) to stream text (astronomical year).
pub fn from_pg_era(text: &str) -> Option<String> {
    let body = text.strip_suffix(" BC")?;
    let dash = body.find('-')?;
    let year: i64 = body[..dash].parse().ok()?;
    let astronomical = 1i64.checked_sub(year)?;
    Some(format!("{}{}", format_year(astronomical), &body[dash..]))
}

/// Stream text with a year `<= 0` to PostgreSQL text with a `BC` suffix.
/// Returns `None` when the value is in the common era (nothing to convert).
pub fn to_pg_era(text: &str) -> Option<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) if r.as_bytes().first().is_some_and(u8::is_ascii_digit) => (true, r),
        _ => (false, text),
    };
    let dash = rest.find('-')?;
    let digits = &rest[..dash];
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = digits.parse().ok()?;
    let astronomical = if negative { -year } else { year };
    if astronomical > 0 {
        return None;
    }
    Some(format!(
        "{:04}{} BC",
        1i64.checked_sub(astronomical)?,
        &rest[dash..]
    ))
}

fn format_year(year: i64) -> String {
    if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("{year:04}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways() {
        assert_eq!(from_pg_era("0001-01-01 BC").unwrap(), "0000-01-01");
        assert_eq!(
            from_pg_era("0044-03-15 12:00:00 BC").unwrap(),
            "-0043-03-15 12:00:00"
        );
        assert_eq!(to_pg_era("0000-01-01").unwrap(), "0001-01-01 BC");
        assert_eq!(
            to_pg_era("-0043-03-15 12:00:00").unwrap(),
            "0044-03-15 12:00:00 BC"
        );
        assert_eq!(to_pg_era("2020-01-01"), None);
        assert_eq!(from_pg_era("2020-01-01"), None);
        assert_eq!(to_pg_era("infinity"), None);
        // A year whose BC number is beyond i64 is not converted, rather
        // than overflowing.
        assert_eq!(to_pg_era("-9223372036854775807-01-01"), None);
        assert_eq!(
            from_pg_era("9223372036854775807-01-01 BC").unwrap(),
            "-9223372036854775806-01-01"
        );
    }
}
