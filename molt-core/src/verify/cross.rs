//! Chunk hashes that a MySQL/MariaDB source and a PostgreSQL target compute
//! alike: the cross-engine row text.
//!
//! Each row becomes one line of text, `concat_ws('|', field, ...)`, built in
//! SQL on each side from per-column expressions chosen in pairs ([`Form`])
//! so that the two engines print equal values alike: decimals without
//! trailing fractional zeros (unless both columns have the same scale),
//! datetimes without trailing fractional zeros and with `+00` for a
//! TIMESTAMP, bytes as upper-case hex, text as its UTF-8 bytes, floats as
//! their shortest exact text (PostgreSQL's `e+` written `e`), a TINYINT(1)
//! against a BOOL as `0`/`1`. The chunk's hash is the count and the sum of
//! the first 60 bits of each row text's MD5 (`SUM(CAST(CONV(...)))` on
//! MySQL, `sum(('x' || ...)::bit(60)::int8)` on PostgreSQL): functions that
//! MySQL 5.7 to 8.4, MariaDB and PostgreSQL all have, and a sum needs no
//! sort.
//!
//! **Why a matching hash never hides a difference.** Each expression pair
//! prints, on both sides, a text from which the value's canonical form
//! (`crate::value::canonical`) follows: the MySQL text is the one the dump
//! reads (the text protocol prints what `CONCAT` prints), or a
//! value-preserving rewrite of it (trailing fractional zeros dropped), and
//! the PostgreSQL text is the target's own output, rewritten the same way.
//! NULL prints as `N`, which no value of a field prints as; free text
//! (text, enum labels) is prefixed by its byte length, so no separator
//! inside a value can shift the fields. Equal row text therefore means
//! equal canonical values, and a chunk whose hashes match is equal (up to
//! an MD5 collision). The converse need not hold: a value spelled
//! differently on the two sides (`1e-05` and `0.00001`) only makes its
//! chunk differ, and the chunk is then compared row by row in the client,
//! exactly.
//!
//! **What SQL cannot print alike** is handled in the client ([`Form::ClientJson`])
//! or, failing that, makes the whole table take the row-by-row path
//! ([`plan`] returns the reason):
//!
//! - JSON: MariaDB stores JSON as the text that was written (keys in any
//!   order), and no SQL function of MariaDB sorts keys the way JSONB does.
//!   The source's JSON values are streamed with the row text of the other
//!   columns and printed in the client exactly as PostgreSQL prints JSONB
//!   ([`jsonb_text`]); the client then hashes the row as the target does.
//!   MySQL's JSON type is treated the same way, so both engines take one
//!   tested path.
//! - TIME (an ISO 8601 interval on the target), SET with labels that JSON
//!   escapes (a SET is otherwise printed as the JSON array the dump
//!   writes), spatial types, UUID,
//!   BIT wider than 64, and text in character sets other than UTF-8 and
//!   latin1 (whose conversion in SQL could differ from the dump's decoder):
//!   the table is compared row by row.

use crate::ident::quote_mysql;
use crate::mysql::charset::Charset;
use crate::mysql::decode::Decoder;
use crate::value::LogicalType;

use super::compare::CompareColumn;
use super::pg::CatalogColumn;
use super::schema::target_family;

/// How one compared column enters the row text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// Printed in SQL on both sides; `prefixed` values are free text and
    /// carry their byte length.
    Sql {
        mysql: String,
        pg: String,
        prefixed: bool,
    },
    /// JSON: the source's value is read as it is and printed in the client
    /// as the target prints JSONB (`pg`).
    ClientJson { mysql: String, pg: String },
}

/// The row text of one table on both sides.
#[derive(Clone, Debug)]
pub struct CrossRow {
    /// One form per compared column, in compared-column order.
    pub forms: Vec<Form>,
    /// Compared-column positions in row-text order: the SQL forms first,
    /// then the client ones.
    pub order: Vec<usize>,
}

impl CrossRow {
    /// Positions of the columns printed in the client.
    pub fn client_columns(&self) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|&i| matches!(self.forms[i], Form::ClientJson { .. }))
            .collect()
    }

    /// The MySQL `CONCAT_WS` of the SQL forms.
    pub fn mysql_sql_text(&self) -> String {
        let fields: Vec<String> = self
            .order
            .iter()
            .filter_map(|&i| match &self.forms[i] {
                Form::Sql {
                    mysql,
                    prefixed: true,
                    ..
                } => Some(format!(
                    "IFNULL(CONCAT(LENGTH({mysql}), ':', {mysql}), 'N')"
                )),
                Form::Sql { mysql, .. } => Some(format!("IFNULL({mysql}, 'N')")),
                Form::ClientJson { .. } => None,
            })
            .collect();
        format!("CONCAT_WS('|', {})", fields.join(", "))
    }

    /// The MySQL select expressions of the client-printed columns.
    pub fn mysql_client_exprs(&self) -> Vec<String> {
        self.client_columns()
            .into_iter()
            .map(|i| match &self.forms[i] {
                Form::ClientJson { mysql, .. } => mysql.clone(),
                Form::Sql { .. } => unreachable!("client columns are ClientJson"),
            })
            .collect()
    }

    /// The whole row text on the PostgreSQL side.
    pub fn pg_text(&self) -> String {
        let fields: Vec<String> = self
            .order
            .iter()
            .map(|&i| match &self.forms[i] {
                Form::Sql {
                    pg, prefixed: true, ..
                } => format!("coalesce(octet_length({pg})::text || ':' || {pg}, 'N')"),
                Form::Sql { pg, .. } | Form::ClientJson { pg, .. } => {
                    format!("coalesce({pg}, 'N')")
                }
            })
            .collect();
        format!("concat_ws('|', {})", fields.join(", "))
    }

    /// The target's aggregate of a chunk whose source rows the client
    /// hashes ([`pg_text_hash`], computed by the client as PostgreSQL's
    /// `hashtextextended` computes it: much cheaper than MD5 on the target).
    pub fn pg_client_hash_sql(&self) -> String {
        format!(
            "count(*)::int8, sum(hashtextextended(({}) COLLATE \"C\", 0))::text",
            self.pg_text()
        )
    }

    /// The aggregate of a chunk on MySQL: the sum of the row texts' first
    /// 60 MD5 bits (an exact DECIMAL).
    pub fn mysql_hash_sql(&self) -> String {
        format!(
            "COUNT(*), SUM(CAST(CONV(SUBSTRING(MD5({}), 1, 15), 16, 10) AS UNSIGNED))",
            self.mysql_sql_text()
        )
    }

    /// The same aggregate on PostgreSQL (an exact numeric, as text).
    pub fn pg_hash_sql(&self) -> String {
        format!(
            "count(*)::int8, sum(('x' || substr(md5({}), 1, 15))::bit(60)::int8)::text",
            self.pg_text()
        )
    }
}

/// What [`plan`] needs to know about one compared column.
pub struct ColumnFacts<'a> {
    pub compare: &'a CompareColumn,
    /// Name on the source.
    pub source_name: &'a str,
    /// The source column's declared type (`decimal(12,2)`, `datetime(6)`).
    pub source_type: &'a str,
    pub decoder: Decoder,
    pub target: &'a CatalogColumn,
    /// The target column, quoted.
    pub target_expr: String,
}

/// Whether the target's PostgreSQL has `trim_scale` (version 13).
#[derive(Clone, Copy, Debug)]
pub struct TargetInfo {
    pub trim_scale: bool,
}

/// The row text of a table, or why its rows cannot be hashed alike.
pub fn plan(columns: &[ColumnFacts<'_>], target: TargetInfo) -> Result<CrossRow, String> {
    let mut forms = Vec::with_capacity(columns.len());
    for c in columns {
        forms.push(form(c, target).map_err(|why| format!("column {}: {why}", c.compare.name))?);
    }
    let mut order: Vec<usize> = (0..forms.len())
        .filter(|&i| matches!(forms[i], Form::Sql { .. }))
        .collect();
    if order.is_empty() {
        return Err("no column can be printed alike in SQL".into());
    }
    order.extend((0..forms.len()).filter(|&i| matches!(forms[i], Form::ClientJson { .. })));
    Ok(CrossRow { forms, order })
}

/// The `n` of `type(n)` or the `s` of `type(p,s)`.
fn paren_numbers(sql_type: &str) -> Vec<u32> {
    let Some(open) = sql_type.find('(') else {
        return Vec::new();
    };
    let Some(close) = sql_type[open..].find(')') else {
        return Vec::new();
    };
    sql_type[open + 1..open + close]
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// The scale of a decimal type: `decimal(12,2)` → 2, `decimal(10)` → 0,
/// `bigint` → 0, `numeric` (any scale) → `None`.
fn decimal_scale(sql_type: &str) -> Option<u32> {
    let lower = sql_type.to_ascii_lowercase();
    if !(lower.starts_with("decimal") || lower.starts_with("numeric")) {
        return Some(0);
    }
    match paren_numbers(&lower)[..] {
        [_, s] => Some(s),
        [_] => Some(0),
        _ => None,
    }
}

/// MySQL: a decimal text without trailing fractional zeros (the column
/// always prints `scale` digits, so there is a point to stop at).
fn mysql_trim_fraction(x: &str) -> String {
    format!("TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {x}))")
}

fn pg_trim_decimal(y: &str, target: TargetInfo) -> String {
    if target.trim_scale {
        format!("trim_scale({y})::text")
    } else {
        format!("CASE WHEN strpos(({y})::text, '.') > 0 THEN rtrim(rtrim(({y})::text, '0'), '.') ELSE ({y})::text END")
    }
}

/// A float's text with PostgreSQL's exponent sign dropped (`1e+300` →
/// `1e300`, as MySQL prints it); small numbers still differ in spelling
/// (`1e-05` against `0.00001`), which only costs a row-by-row chunk.
fn pg_float_text(y_text: &str) -> String {
    format!("replace({y_text}, 'e+', 'e')")
}

fn form(c: &ColumnFacts<'_>, target: TargetInfo) -> Result<Form, String> {
    use LogicalType as L;
    let x = quote_mysql(c.source_name);
    let y = &c.target_expr;
    let t = c.target;
    let (family, target_padded) =
        target_family(t).ok_or_else(|| format!("target type {} has no SQL form", t.sql_type))?;
    if let Decoder::Set(cs) = c.decoder {
        return set_form(c, cs, family, &x);
    }
    if t.is_array || c.compare.is_array {
        return Err(format!("target type {} is an array", t.sql_type));
    }
    let logical = c.compare.target_logical();
    // The target must hold the family the source is compared as; anything
    // else is a schema issue already, and its rows are compared exactly.
    let family_ok = match (logical, family) {
        (a, b) if a == b => true,
        (L::Int | L::Decimal, L::Int | L::Decimal) => true,
        (L::Float4 | L::Float8, L::Float4 | L::Float8) => true,
        (L::Text | L::Enum, L::Text | L::Enum) => true,
        _ => false,
    };
    if !family_ok {
        return Err(format!("target type {} is another type family", t.sql_type));
    }
    let plain = |mysql: String, pg: String| Form::Sql {
        mysql,
        pg,
        prefixed: false,
    };
    let source_type = c.source_type.to_ascii_lowercase();
    Ok(match c.decoder {
        Decoder::Int | Decoder::Bool => {
            let mysql = if source_type.contains("zerofill") {
                format!("({x} + 0)")
            } else {
                x
            };
            let pg = if family == L::Bool {
                format!("({y})::int::text")
            } else if logical == L::Decimal && decimal_scale(&t.sql_type) != Some(0) {
                pg_trim_decimal(y, target)
            } else {
                format!("({y})::text")
            };
            plain(mysql, pg)
        }
        Decoder::Decimal => {
            let source_scale = decimal_scale(&source_type).unwrap_or(0);
            if family == L::Decimal && decimal_scale(&t.sql_type) == Some(source_scale) {
                plain(x, format!("({y})::text"))
            } else {
                let mysql = if source_scale > 0 {
                    mysql_trim_fraction(&x)
                } else {
                    x
                };
                let pg = if family == L::Decimal {
                    pg_trim_decimal(y, target)
                } else {
                    format!("({y})::text")
                };
                plain(mysql, pg)
            }
        }
        // A FLOAT4 target prints its single's own shortest text, which is
        // what the target's reader gives too.
        Decoder::Float8 => plain(x, pg_float_text(&format!("({y})::text"))),
        Decoder::Float4 => {
            // The dump reads `col * 1e0`, the exact double of the single:
            // compare that with the exact double of the target's value.
            let pg = pg_float_text(&format!("({y})::float8::text"));
            plain(format!("({x} * 1e0)"), pg)
        }
        Decoder::Date => plain(x, format!("({y})::text")),
        Decoder::Datetime | Decoder::Timestamp => {
            let fsp = paren_numbers(&source_type).first().copied().unwrap_or(0);
            let mut mysql = if fsp > 0 { mysql_trim_fraction(&x) } else { x };
            if c.decoder == Decoder::Timestamp {
                mysql = format!("CONCAT({mysql}, '+00')");
            }
            plain(mysql, format!("({y})::text"))
        }
        Decoder::Bytes => plain(format!("HEX({x})"), format!("upper(encode({y}, 'hex'))")),
        Decoder::Bit { bits } if bits <= 64 => plain(
            format!("LPAD(BIN({x}), {bits}, '0')"),
            format!("({y})::text"),
        ),
        Decoder::Text(cs) | Decoder::Enum(cs) => {
            let mysql = match cs {
                Charset::Utf8 => format!("CAST({x} AS BINARY)"),
                Charset::Other(enc) if enc == encoding_rs::WINDOWS_1252 => {
                    format!("CAST(CONVERT({x} USING utf8mb4) AS BINARY)")
                }
                _ => {
                    return Err("text in this character set is converted by the client only".into())
                }
            };
            let pg = if c.compare.padded {
                if target_padded {
                    // bpchar's text drops the padding, as MySQL's CHAR does.
                    format!("({y})::text")
                } else {
                    format!("rtrim(({y})::text, ' ')")
                }
            } else if target_padded {
                return Err("the target is blank-padded but the source is not".into());
            } else {
                format!("({y})::text")
            };
            Form::Sql {
                mysql,
                pg,
                prefixed: true,
            }
        }
        Decoder::Json => Form::ClientJson {
            mysql: x,
            pg: format!("({y})::jsonb::text"),
        },
        Decoder::Set(_) => unreachable!("handled above"),
        // The flag the dump reads beside the label (see the decoder).
        Decoder::EnumDeclaringEmpty(_) => {
            return Err(
                "an ENUM declaring '' is read with its error-value flag, in the client".into(),
            )
        }
        Decoder::Bit { .. } | Decoder::Time | Decoder::Geometry | Decoder::Uuid => {
            return Err(format!(
                "{} values have no SQL text both engines print alike",
                c.source_type
            ))
        }
    })
}

/// A SET as the JSON array of its members that the dump writes
/// (`["a","b"]`), built in SQL from MySQL's `a,b`, against the target's
/// `array_to_json(text[])`. Only when no label needs escaping in JSON (the
/// labels are known from the column's type), so that the SQL-built text is
/// exactly the array's JSON.
fn set_form(
    c: &ColumnFacts<'_>,
    cs: Charset,
    family: LogicalType,
    x: &str,
) -> Result<Form, String> {
    let labels = crate::mysql::types::parse_labels(c.source_type);
    let plain_labels = !labels.is_empty()
        && labels.iter().all(|l| {
            !l.chars()
                .any(|ch| ch == '"' || ch == '\\' || ch < ' ' || ch == ',')
        });
    if !plain_labels || cs != Charset::Utf8 {
        return Err("SET labels that JSON escapes, or not in UTF-8".into());
    }
    if !c.target.is_array || family != LogicalType::Text {
        return Err(format!(
            "target type {} is not a text array",
            c.target.sql_type
        ));
    }
    Ok(Form::Sql {
        mysql: format!(
            "IF({x} = '', '[]', CONCAT('[\"', REPLACE(CAST({x} AS BINARY), ',', '\",\"'), '\"]'))"
        ),
        pg: format!("array_to_json({})::text", c.target_expr),
        prefixed: true,
    })
}

/// The first 60 bits of the MD5 of a row text, as both databases take them
/// (`substr(md5(...), 1, 15)` read as hex).
pub fn hash60(text: &[u8]) -> u64 {
    let digest = md5(text);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) >> 4
}

/// PostgreSQL's `hashtextextended(text, 0)` of a text in a deterministic
/// collation: `hash_bytes_extended` (Bob Jenkins' lookup3) over its bytes,
/// as a little-endian server computes it. The caller checks once that the
/// target agrees ([`PG_TEXT_HASH_PROBE`]); a big-endian server would not.
pub fn pg_text_hash(k: &[u8]) -> i64 {
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    }
    let word = |w: &[u8]| u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    let init = 0x9e3779b9u32
        .wrapping_add(k.len() as u32)
        .wrapping_add(3923095);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = k;
    while rest.len() >= 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    // The last 0 to 11 bytes, little-endian, the lowest byte of c unused.
    let byte = |i: usize, shift: u32| u32::from(rest[i]) << shift;
    let n = rest.len();
    if n >= 11 {
        c = c.wrapping_add(byte(10, 24));
    }
    if n >= 10 {
        c = c.wrapping_add(byte(9, 16));
    }
    if n >= 9 {
        c = c.wrapping_add(byte(8, 8));
    }
    if n >= 8 {
        b = b.wrapping_add(byte(7, 24));
    }
    if n >= 7 {
        b = b.wrapping_add(byte(6, 16));
    }
    if n >= 6 {
        b = b.wrapping_add(byte(5, 8));
    }
    if n >= 5 {
        b = b.wrapping_add(byte(4, 0));
    }
    if n >= 4 {
        a = a.wrapping_add(byte(3, 24));
    }
    if n >= 3 {
        a = a.wrapping_add(byte(2, 16));
    }
    if n >= 2 {
        a = a.wrapping_add(byte(1, 8));
    }
    if n >= 1 {
        a = a.wrapping_add(byte(0, 0));
    }
    // final(a, b, c)
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(24));
    ((u64::from(b) << 32) | u64::from(c)) as i64
}

/// A text whose `hashtextextended(..., 0)` on the target must equal
/// [`pg_text_hash`] of it before the client hashes rows that way (else
/// both sides fall back to MD5).
pub const PG_TEXT_HASH_PROBE: &str = "molt-verify: 0123456789 ÄÖÜ ✓ probe of hashtextextended";

/// MD5 (RFC 1321): the one digest MySQL, MariaDB and PostgreSQL all
/// compute in SQL, so the client can hash rows as the servers do.
pub fn md5(data: &[u8]) -> [u8; 16] {
    use ::md5::Digest as _;
    ::md5::Md5::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn md5_known_vectors() {
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(md5(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        let long = "1234567890".repeat(8);
        assert_eq!(
            hex(md5(long.as_bytes())),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
        // 55 and 56 bytes: the padding fits in one block, or needs two.
        for n in [55, 56, 63, 64, 65] {
            let a = vec![b'a'; n];
            assert_eq!(md5(&a).len(), 16);
        }
        assert_eq!(hex(md5(&[b'a'; 56])), "3b0c8ac703f828b04c6c197006d17218");
    }

    #[test]
    fn hash60_is_the_first_fifteen_hex_digits() {
        // md5('abc') = 900150983cd24fb0...
        assert_eq!(hash60(b"abc"), 0x900150983cd24fb);
    }

    #[test]
    fn decimal_scales() {
        assert_eq!(decimal_scale("decimal(12,2)"), Some(2));
        assert_eq!(decimal_scale("numeric(20,0)"), Some(0));
        assert_eq!(decimal_scale("decimal(10)"), Some(0));
        assert_eq!(decimal_scale("numeric"), None);
        assert_eq!(decimal_scale("bigint unsigned"), Some(0));
    }
}

#[cfg(test)]
mod pg_hash_tests {
    /// Values of `SELECT hashtextextended(t, 0)` on PostgreSQL 15 (x86-64).
    #[test]
    fn pg_text_hash_matches_postgres() {
        let vectors: &[(&str, i64)] = &[
            ("", -6939563903564495251),
            ("a", 3591986179850072241),
            ("ab", 2833316173711343549),
            ("abc", -6747756470228489321),
            ("abcd", -1038429303365892052),
            ("abcde", 3076356108696143428),
            ("abcdef", 290958262752763840),
            ("abcdefg", -6158032784613548338),
            ("abcdefgh", -8882191227074733005),
            ("abcdefghi", -3278210106038014113),
            ("abcdefghij", -3183301415634409076),
            ("abcdefghijk", 3112909444737856467),
            ("abcdefghijkl", -7556637188122330412),
            ("abcdefghijklm", 8871624171452417744),
            ("molt-verify: 0123456789 ÄÖÜ ✓ probe of hashtextextended", -6134717983845657229),
            ("1|2|1:B|30:customer1@example.com|0.01|4:paid|2024-01-01 00:00:01|37:note c4ca4238a0b923820dcc509a6f75849b|{\"qty\": 2, \"sku\": \"SKU-1\", \"tags\": [\"a\", \"b\"]}", -8453335402860955908)
        ];
        for &(text, want) in vectors {
            assert_eq!(super::pg_text_hash(text.as_bytes()), want, "{text:?}");
        }
    }
}
