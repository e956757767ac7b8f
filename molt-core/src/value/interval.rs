//! Intervals as PostgreSQL and CockroachDB store them: months, days and
//! microseconds, three fields that do not convert into each other (a month
//! is not 30 days, a day is not 24 hours across a DST change).

/// An interval's three independent fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interval {
    pub months: i64,
    pub days: i64,
    pub micros: i64,
}

impl Interval {
    /// Writes the ISO 8601 form exactly as PostgreSQL's `iso_8601` interval
    /// style does: each component truncated toward zero and carrying its own
    /// sign, zero components left out, `PT0S` for zero.
    pub fn to_iso(&self) -> String {
        if self.months == 0 && self.days == 0 && self.micros == 0 {
            return "PT0S".to_string();
        }
        let mut out = String::from("P");
        push_part(&mut out, self.months / 12, 'Y');
        push_part(&mut out, self.months % 12, 'M');
        push_part(&mut out, self.days, 'D');
        let hours = self.micros / 3_600_000_000;
        let minutes = (self.micros / 60_000_000) % 60;
        let sec_micros = self.micros % 60_000_000;
        if self.micros != 0 {
            out.push('T');
        }
        push_part(&mut out, hours, 'H');
        push_part(&mut out, minutes, 'M');
        if sec_micros != 0 {
            if sec_micros < 0 {
                out.push('-');
            }
            let abs = sec_micros.unsigned_abs();
            out.push_str(&(abs / 1_000_000).to_string());
            let frac = abs % 1_000_000;
            if frac != 0 {
                let digits = format!("{frac:06}");
                out.push('.');
                out.push_str(digits.trim_end_matches('0'));
            }
            out.push('S');
        }
        out
    }

    /// Parses the ISO 8601 duration-with-designators form (`P1Y2M3W4DT5H6M7.5S`),
    /// with signed components. Returns `None` when it is not one.
    pub fn parse_iso(text: &str) -> Option<Interval> {
        let (negate_all, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let body = body.strip_prefix('P')?;
        if body.is_empty() {
            return None;
        }
        let mut iv = Interval::default();
        let mut in_time = false;
        let mut rest = body;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('T') {
                in_time = true;
                rest = r;
                continue;
            }
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let number = &rest[..end];
            let designator = rest[end..].chars().next()?;
            rest = &rest[end + 1..];
            match (in_time, designator) {
                (false, 'Y') => {
                    iv.months = iv
                        .months
                        .checked_add(number.parse::<i64>().ok()?.checked_mul(12)?)?
                }
                (false, 'M') => iv.months = iv.months.checked_add(number.parse().ok()?)?,
                (false, 'W') => {
                    iv.days = iv
                        .days
                        .checked_add(number.parse::<i64>().ok()?.checked_mul(7)?)?
                }
                (false, 'D') => iv.days = iv.days.checked_add(number.parse().ok()?)?,
                (true, 'H') => {
                    iv.micros = iv
                        .micros
                        .checked_add(number.parse::<i64>().ok()?.checked_mul(3_600_000_000)?)?
                }
                (true, 'M') => {
                    iv.micros = iv
                        .micros
                        .checked_add(number.parse::<i64>().ok()?.checked_mul(60_000_000)?)?
                }
                (true, 'S') => iv.micros = iv.micros.checked_add(parse_seconds(number)?)?,
                _ => return None,
            }
        }
        if negate_all {
            // `-P-9223372036854775808M` has no negation in an i64.
            iv = Interval {
                months: iv.months.checked_neg()?,
                days: iv.days.checked_neg()?,
                micros: iv.micros.checked_neg()?,
            };
        }
        Some(iv)
    }

    /// An interval of `micros` microseconds only (MySQL TIME, Oracle
    /// INTERVAL DAY TO SECOND without days).
    pub fn from_micros(micros: i64) -> Interval {
        Interval {
            months: 0,
            days: 0,
            micros,
        }
    }
}

fn push_part(out: &mut String, value: i64, designator: char) {
    if value != 0 {
        out.push_str(&value.to_string());
        out.push(designator);
    }
}

/// `-7.5` seconds as microseconds, exactly (no float rounding).
fn parse_seconds(text: &str) -> Option<i64> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac_micros: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let micros = whole.checked_mul(1_000_000)?.checked_add(frac_micros)?;
    Some(if neg { -micros } else { micros })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_postgres_iso_8601_style() {
        let iv = Interval {
            months: 14,
            days: 3,
            micros: 4 * 3_600_000_000 + 5 * 60_000_000 + 6_000_007,
        };
        assert_eq!(iv.to_iso(), "P1Y2M3DT4H5M6.000007S");
        assert_eq!(
            Interval::from_micros(-(838 * 3600 + 59 * 60 + 59) * 1_000_000).to_iso(),
            "PT-838H-59M-59S"
        );
        assert_eq!(Interval::default().to_iso(), "PT0S");
        assert_eq!(
            Interval {
                months: -1,
                days: 0,
                micros: -500_000
            }
            .to_iso(),
            "P-1MT-0.5S"
        );
    }

    #[test]
    fn parses_what_it_writes() {
        for text in [
            "P1Y2M3DT4H5M6.000007S",
            "PT-838H-59M-59S",
            "PT0S",
            "P-1MT-0.5S",
            "P1W",
            "PT36H",
        ] {
            let iv = Interval::parse_iso(text).unwrap();
            assert_eq!(Interval::parse_iso(&iv.to_iso()), Some(iv), "{text}");
        }
        assert_eq!(Interval::parse_iso("PT36H").unwrap().to_iso(), "PT36H");
        assert!(Interval::parse_iso("1 day").is_none());
    }

    #[test]
    fn a_negation_beyond_i64_is_not_an_interval() {
        assert_eq!(Interval::parse_iso("-P-9223372036854775808M"), None);
        assert_eq!(Interval::parse_iso("-P-9223372036854775808D"), None);
        assert_eq!(
            Interval::parse_iso("-P-9223372036854775807M")
                .unwrap()
                .months,
            i64::MAX
        );
    }
}
