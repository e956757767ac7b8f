//! JSON as PostgreSQL prints JSONB, from any JSON text.
//!
//! Two readers need JSONB's printed form of a JSON text that did not come
//! from JSONB: molt-verify, to hash a MySQL or MariaDB source's JSON the way
//! the target prints it, and the MySQL dump, to give a document with
//! duplicate keys the meaning its source gives it. MariaDB stores JSON as
//! the text that was written, and its JSON functions read the *first* of
//! duplicate keys (`JSON_EXTRACT('{"k":1,"k":2}', '$.k')` is 1), where JSONB
//! keeps the last; MySQL 8 removes duplicates on insert. Printing keeps the
//! first, which is the source's meaning in every case that reaches here.

/// Prints a JSON document as PostgreSQL prints it as JSONB (`jsonb::text`):
/// object keys ordered by byte length and then bytes, the first of
/// duplicate keys kept (see the module documentation), `", "` and `": "` between items, numbers as
/// PostgreSQL's numeric prints them, strings escaped as PostgreSQL escapes
/// them. `false` when the text is not JSON or holds what JSONB refuses
/// (`\u0000`, an exponent out of range): the row then cannot match.
///
/// Every step keeps the document's value, so the printed text has the
/// same canonical form as the input, which is what makes a match sound.
pub fn jsonb_text(text: &str, out: &mut String) -> bool {
    print_jsonb(text, out).is_some()
}

/// JSONB's printed form of `text` (first of duplicate keys kept) when an
/// object in it repeats a key; `None` when none does (or it is not JSON):
/// the text then means the same to every reader as it stands.
pub fn without_duplicate_keys(text: &str) -> Option<String> {
    // A document with fewer than two keys cannot repeat one.
    memchr::memchr_iter(b':', text.as_bytes()).nth(1)?;
    let mut out = String::with_capacity(text.len());
    print_jsonb(text, &mut out).filter(|duplicates| *duplicates)?;
    Some(out)
}

/// Prints `text` into `out`; whether a key was repeated, or `None` (with
/// `out` unchanged) when the text is not JSON.
fn print_jsonb(text: &str, out: &mut String) -> Option<bool> {
    let mut p = JsonParser {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        duplicates: false,
    };
    let start = out.len();
    let ok = p.value(out).is_some() && {
        p.skip_ws();
        p.pos == p.bytes.len()
    };
    if !ok {
        out.truncate(start);
        return None;
    }
    Some(p.duplicates)
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    /// An object had a key twice (all but the first were dropped).
    duplicates: bool,
}

const MAX_JSON_DEPTH: usize = 1_000;

impl JsonParser<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, out: &mut String) -> Option<()> {
        self.skip_ws();
        match *self.bytes.get(self.pos)? {
            b'n' => self.literal("null", out),
            b't' => self.literal("true", out),
            b'f' => self.literal("false", out),
            b'"' => {
                let s = self.string()?;
                escape_json(&s, out);
                Some(())
            }
            b'[' => {
                self.enter()?;
                self.pos += 1;
                out.push('[');
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                } else {
                    let mut first = true;
                    loop {
                        if !first {
                            out.push_str(", ");
                        }
                        first = false;
                        self.value(out)?;
                        self.skip_ws();
                        match *self.bytes.get(self.pos)? {
                            b',' => self.pos += 1,
                            b']' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                out.push(']');
                self.depth -= 1;
                Some(())
            }
            b'{' => {
                self.enter()?;
                self.pos += 1;
                let mut members: Vec<(String, String)> = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_ws();
                        if self.bytes.get(self.pos) != Some(&b'"') {
                            return None;
                        }
                        let key = self.string()?;
                        self.skip_ws();
                        if self.bytes.get(self.pos) != Some(&b':') {
                            return None;
                        }
                        self.pos += 1;
                        let mut value = String::new();
                        self.value(&mut value)?;
                        members.push((key, value));
                        self.skip_ws();
                        match *self.bytes.get(self.pos)? {
                            b',' => self.pos += 1,
                            b'}' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                // JSONB's order (length first), stable so that among
                // duplicates the first one written comes first and wins.
                members.sort_by(|a, b| {
                    a.0.len()
                        .cmp(&b.0.len())
                        .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
                });
                out.push('{');
                let mut first = true;
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 && members[i - 1].0 == *key {
                        self.duplicates = true;
                        continue;
                    }
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    escape_json(key, out);
                    out.push_str(": ");
                    out.push_str(value);
                }
                out.push('}');
                self.depth -= 1;
                Some(())
            }
            b'-' | b'0'..=b'9' => self.number(out),
            _ => None,
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_JSON_DEPTH).then_some(())
    }

    fn literal(&mut self, word: &str, out: &mut String) -> Option<()> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            out.push_str(word);
            Some(())
        } else {
            None
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        self.pos += 1;
        let mut escaped = false;
        loop {
            match *self.bytes.get(self.pos)? {
                b'\\' => {
                    escaped = true;
                    self.pos += 2;
                }
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b if b < 0x20 => return None,
                _ => self.pos += 1,
            }
        }
        let literal = std::str::from_utf8(self.bytes.get(start..self.pos)?).ok()?;
        let value = if escaped {
            serde_json::from_str::<String>(literal).ok()?
        } else {
            literal[1..literal.len() - 1].to_string()
        };
        // JSONB cannot hold U+0000.
        (!value.contains('\0')).then_some(value)
    }

    /// A JSON number as PostgreSQL's numeric prints it after reading it:
    /// the digits shifted by the exponent, `max(0, fraction digits -
    /// exponent)` fractional digits, no sign on zero.
    fn number(&mut self, out: &mut String) -> Option<()> {
        let b = self.bytes;
        let start = self.pos;
        let negative = b[self.pos] == b'-';
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        while b.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        let int_digits = &b[int_start..self.pos];
        if int_digits.is_empty() || (int_digits.len() > 1 && int_digits[0] == b'0') {
            return None;
        }
        let mut frac_digits: &[u8] = &[];
        if b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            let f = self.pos;
            while b.get(self.pos).is_some_and(u8::is_ascii_digit) {
                self.pos += 1;
            }
            frac_digits = &b[f..self.pos];
            if frac_digits.is_empty() {
                return None;
            }
        }
        let mut exponent: i64 = 0;
        if matches!(b.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            let e = self.pos;
            if matches!(b.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            let digits_at = self.pos;
            while b.get(self.pos).is_some_and(u8::is_ascii_digit) {
                self.pos += 1;
            }
            if self.pos == digits_at || self.pos - digits_at > 6 {
                return None;
            }
            exponent = std::str::from_utf8(&b[e..self.pos]).ok()?.parse().ok()?;
        }
        if exponent == 0 && !(negative && is_zero(int_digits, frac_digits)) {
            // The usual number: PostgreSQL prints it as written.
            out.push_str(std::str::from_utf8(&b[start..self.pos]).ok()?);
            return Some(());
        }
        if exponent.abs() > 1000 {
            return None;
        }
        let mut digits: Vec<u8> = int_digits.iter().chain(frac_digits).copied().collect();
        let scale = (frac_digits.len() as i64 - exponent).max(0) as usize;
        // The position of the point among `digits`, after the shift.
        let mut point = int_digits.len() as i64 + exponent;
        if point < 0 {
            let mut padded = vec![b'0'; (-point) as usize];
            padded.extend_from_slice(&digits);
            digits = padded;
            point = 0;
        }
        while (digits.len() as i64) < point {
            digits.push(b'0');
        }
        let point = point as usize;
        let (int_part, frac_part) = digits.split_at(point);
        let int_part = std::str::from_utf8(int_part).ok()?.trim_start_matches('0');
        let mut frac = std::str::from_utf8(frac_part).ok()?.to_string();
        frac.truncate(scale);
        while frac.len() < scale {
            frac.push('0');
        }
        if negative && !is_zero(int_part.as_bytes(), frac.as_bytes()) {
            out.push('-');
        }
        out.push_str(if int_part.is_empty() { "0" } else { int_part });
        if !frac.is_empty() {
            out.push('.');
            out.push_str(&frac);
        }
        Some(())
    }
}

fn is_zero(a: &[u8], b: &[u8]) -> bool {
    a.iter().chain(b).all(|&d| d == b'0')
}

/// PostgreSQL's `escape_json`.
fn escape_json(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jb(text: &str) -> String {
        let mut out = String::new();
        assert!(jsonb_text(text, &mut out), "{text}");
        out
    }

    #[test]
    fn jsonb_text_matches_postgres() {
        // What PostgreSQL 15 prints for '...'::jsonb::text.
        assert_eq!(
            jb(r#"{"sku": "SKU-1", "qty": 2, "tags": ["a", "b"]}"#),
            r#"{"qty": 2, "sku": "SKU-1", "tags": ["a", "b"]}"#
        );
        // Duplicates: the first wins, as MariaDB's JSON functions read it
        // (JSONB itself would keep the last).
        assert_eq!(
            jb(r#"{"b":1,"a":[1,2.50],"b":3}"#),
            r#"{"a": [1, 2.50], "b": 1}"#
        );
        assert_eq!(jb(r#"{"aa":1,"b":2}"#), r#"{"b": 2, "aa": 1}"#);
        assert_eq!(jb("[]"), "[]");
        assert_eq!(jb(" {} "), "{}");
        assert_eq!(jb(r#""a\u0001\"\\\/é\n""#), r#""a\u0001\"\\/é\n""#);
        assert_eq!(jb("1e2"), "100");
        assert_eq!(jb("1.50E+1"), "15.0");
        assert_eq!(jb("12.5e-1"), "1.25");
        assert_eq!(jb("1e-3"), "0.001");
        assert_eq!(jb("-0"), "0");
        assert_eq!(jb("-0.00"), "0.00");
        assert_eq!(jb("-1.5"), "-1.5");
        assert_eq!(jb("100e-1"), "10.0");
        assert_eq!(jb("[true,false,null]"), "[true, false, null]");
        let mut out = String::new();
        assert!(!jsonb_text(r#"{"a":1"#, &mut out));
        assert!(!jsonb_text(r#""\u0000""#, &mut out));
        assert!(!jsonb_text("01", &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn duplicate_keys_are_rewritten_first_wins_and_only_then() {
        assert_eq!(
            without_duplicate_keys(r#"{"k":1,"k":2}"#).as_deref(),
            Some(r#"{"k": 1}"#)
        );
        assert_eq!(
            without_duplicate_keys(r#"{"a":{"x":1,"x":[2]},"b":0}"#).as_deref(),
            Some(r#"{"a": {"x": 1}, "b": 0}"#)
        );
        assert_eq!(without_duplicate_keys(r#"{"k":1,"j":2}"#), None);
        assert_eq!(without_duplicate_keys(r#"{"k":1}"#), None);
        assert_eq!(without_duplicate_keys("not json"), None);
    }
}
