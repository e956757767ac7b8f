//! The order of primary-key values, as the databases sort them.
//!
//! molt-verify merge-joins two row streams that each database sorted by
//! primary key. The join is only correct when the client compares keys in
//! exactly the order the servers produced them, so the queries ask for an
//! order that has one obvious client-side equivalent (byte order for text,
//! numeric order for numbers), and [`KeyOrder`] implements it on stream
//! text. Where the two could still disagree (dates before year 0, exotic
//! types), the merge notices a key that goes backwards and stops with an
//! error instead of reporting false differences or, worse, a false pass.

use std::cmp::Ordering;

use base64::Engine as _;

use crate::value::{canonical, LogicalType};

/// How one key column's stream values compare.
#[derive(Clone, Copy, Debug)]
pub struct KeyOrder {
    pub logical: LogicalType,
    pub padded: bool,
}

impl KeyOrder {
    /// Compares two non-NULL key values in stream text form.
    pub fn cmp(&self, a: &str, b: &str) -> Ordering {
        let ca = canonical(self.logical, self.padded, a);
        let cb = canonical(self.logical, self.padded, b);
        match self.logical {
            LogicalType::Int => cmp_decimal(&ca, &cb),
            LogicalType::Decimal => cmp_decimal(&ca, &cb),
            LogicalType::Float4 | LogicalType::Float8 => {
                match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                    _ => ca.as_bytes().cmp(cb.as_bytes()),
                }
            }
            LogicalType::Bool => bool_rank(&ca).cmp(&bool_rank(&cb)),
            LogicalType::Bytes => {
                let engine = base64::engine::general_purpose::STANDARD;
                match (engine.decode(a), engine.decode(b)) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => a.as_bytes().cmp(b.as_bytes()),
                }
            }
            // Text, enum (sorted as text), uuid (lower-case hex), dates and
            // times in their fixed-width ISO forms, bit strings: byte order.
            _ => ca.as_bytes().cmp(cb.as_bytes()),
        }
    }
}

fn bool_rank(text: &str) -> u8 {
    u8::from(text == "true")
}

/// Compares two canonical decimals (plain notation, no leading zeros).
fn cmp_decimal(a: &str, b: &str) -> Ordering {
    let (na, a) = match a.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, a),
    };
    let (nb, b) = match b.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    match (na, nb) {
        (false, true) => return Ordering::Greater,
        (true, false) => return Ordering::Less,
        _ => {}
    }
    let magnitude = cmp_magnitude(a, b);
    if na {
        magnitude.reverse()
    } else {
        magnitude
    }
}

fn cmp_magnitude(a: &str, b: &str) -> Ordering {
    let (ai, af) = a.split_once('.').unwrap_or((a, ""));
    let (bi, bf) = b.split_once('.').unwrap_or((b, ""));
    ai.len()
        .cmp(&bi.len())
        .then_with(|| ai.cmp(bi))
        .then_with(|| af.cmp(bf))
}

/// Compares two whole keys, column by column. NULLs (only possible for
/// tables compared without a primary key) sort first.
pub fn cmp_keys(orders: &[KeyOrder], a: &[Option<&str>], b: &[Option<&str>]) -> Ordering {
    for ((order, x), y) in orders.iter().zip(a).zip(b) {
        let o = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => order.cmp(x, y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(logical: LogicalType) -> KeyOrder {
        KeyOrder {
            logical,
            padded: false,
        }
    }

    #[test]
    fn numbers_sort_numerically() {
        let int = k(LogicalType::Int);
        assert_eq!(int.cmp("9", "10"), Ordering::Less);
        assert_eq!(int.cmp("-10", "-9"), Ordering::Less);
        assert_eq!(int.cmp("-1", "0"), Ordering::Less);
        assert_eq!(int.cmp("007", "7"), Ordering::Equal);
        let dec = k(LogicalType::Decimal);
        assert_eq!(dec.cmp("1.5", "1.50"), Ordering::Equal);
        assert_eq!(dec.cmp("1.05", "1.5"), Ordering::Less);
        assert_eq!(dec.cmp("-1.5", "-1.05"), Ordering::Less);
    }

    #[test]
    fn text_sorts_by_bytes_and_bytes_by_content() {
        let text = k(LogicalType::Text);
        assert_eq!(text.cmp("B", "a"), Ordering::Less);
        assert_eq!(text.cmp("a", "ab"), Ordering::Less);
        let bytes = k(LogicalType::Bytes);
        // 0x00 < 0xff even though "AA==" > "/w==" in base64 text.
        assert_eq!(bytes.cmp("AA==", "/w=="), Ordering::Less);
    }

    #[test]
    fn timestamps_with_fractions() {
        let ts = k(LogicalType::Timestamp);
        assert_eq!(
            ts.cmp("2020-01-01 00:00:05", "2020-01-01 00:00:05.5"),
            Ordering::Less
        );
        assert_eq!(
            ts.cmp("2020-01-01 00:00:05.25", "2020-01-01 00:00:05.5"),
            Ordering::Less
        );
        assert_eq!(
            ts.cmp("2020-01-01 00:00:05.500", "2020-01-01 00:00:05.5"),
            Ordering::Equal
        );
    }
}
