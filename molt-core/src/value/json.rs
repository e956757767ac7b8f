//! Canonical JSON: the form in which two JSON documents are equal exactly
//! when JSONB (PostgreSQL, CockroachDB) or MySQL's JSON type would call them
//! equal. Object keys are sorted and deduplicated (the last one wins, as in
//! JSONB), whitespace goes, and numbers are compared as exact decimals, so
//! `1.0` equals `1` but `0.1` never equals `0.1000000000000000055511`
//! ([`canonical_json_scaled`] keeps the scale, `1.0` ≠ `1`, for verify).
//!
//! It is hand-written rather than built on `serde_json::Value` because that
//! type rounds big numbers through `f64`, which would hide real differences.

/// The byte offset of the first `\u0000` escape in a JSON text (a NUL
/// character in a string), which `json` and MySQL's JSON hold but JSONB
/// (PostgreSQL's and so the target's) refuses; `None` when there is none.
/// A backslash that is itself escaped (`\\u0000`, the six characters) is
/// not one.
pub fn nul_escape_at(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&bytes[from..], b"\\u0000") {
        let at = from + found;
        let backslashes_before = bytes[..at]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes_before % 2 == 0 {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The refusal of a JSON value holding `\u0000` at byte `at`.
pub fn nul_escape_message(at: usize) -> String {
    format!(
        "the JSON value holds a NUL character (\\u0000, at byte {}), which the target's JSONB cannot store; remove or replace it on the source before the dump",
        at + 1
    )
}

/// Canonicalizes a JSON document; `None` when the text is not JSON.
pub fn canonical_json(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    if !canonical_json_into(text, &mut out) {
        return None;
    }
    Some(String::from_utf8(out).expect("canonical JSON is built from UTF-8"))
}

/// [`canonical_json`] with every number's scale kept, as JSONB keeps it
/// (`1.0` is not `1`; `1.5e1` is `15`): what molt-verify compares for a
/// PostgreSQL source. The section digest uses the scale-blind form.
pub fn canonical_json_scaled(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        keep_scale: true,
    };
    let ok = parser.write_value(&mut out).is_some() && {
        parser.skip_ws();
        parser.pos == parser.bytes.len()
    };
    ok.then(|| String::from_utf8(out).expect("canonical JSON is built from UTF-8"))
}

/// Appends the canonical form of a JSON document to `out`; false (with
/// `out` unchanged) when the text is not JSON.
///
/// The document is written as it is parsed, without building a tree: the
/// usual document (keys already in order, as JSONB prints them when they
/// are of equal length, or as a canonical writer left them) costs one pass
/// and no allocation. An object whose keys are out of order, repeated or
/// escaped is re-read into a tree and sorted, which gives exactly the same
/// result as sorting every object would.
pub fn canonical_json_into(text: &str, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        keep_scale: false,
    };
    let ok = parser.write_value(out).is_some() && {
        parser.skip_ws();
        parser.pos == parser.bytes.len()
    };
    if !ok {
        out.truncate(start);
    }
    ok
}

enum Node {
    Null,
    Bool(bool),
    /// Canonical decimal text.
    Number(String),
    /// The string's value, unescaped.
    String(String),
    Array(Vec<Node>),
    /// Members sorted by key, duplicates resolved (the last one wins).
    Object(Vec<(String, Node)>),
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    /// Numbers keep their scale (`1.0` stays `1.0`).
    keep_scale: bool,
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 2_000;

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        while self.pos < self.bytes.len()
            && matches!(self.bytes[self.pos], b' ' | b'\t' | b'\n' | b'\r')
        {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Option<Node> {
        self.skip_ws();
        match *self.bytes.get(self.pos)? {
            b'n' => self.literal("null", Node::Null),
            b't' => self.literal("true", Node::Bool(true)),
            b'f' => self.literal("false", Node::Bool(false)),
            b'"' => Some(Node::String(self.string()?)),
            b'[' => self.array(),
            b'{' => self.object(),
            b'-' | b'0'..=b'9' => Some(Node::Number(self.number()?.into_owned())),
            _ => None,
        }
    }

    /// Reads a number, checked against JSON's grammar, in canonical form.
    fn number(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        let bytes: &'a [u8] = self.bytes;
        let start = self.pos;
        let mut pos = start;
        let digits = |pos: &mut usize| {
            let from = *pos;
            while bytes.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos > from
        };
        if bytes.get(pos) == Some(&b'-') {
            pos += 1;
        }
        if bytes.get(pos) == Some(&b'0') {
            pos += 1;
        } else if !digits(&mut pos) {
            return None;
        }
        let mut plain_integer = true;
        if bytes.get(pos) == Some(&b'.') {
            plain_integer = false;
            pos += 1;
            if !digits(&mut pos) {
                return None;
            }
        }
        if matches!(bytes.get(pos), Some(b'e' | b'E')) {
            plain_integer = false;
            pos += 1;
            if matches!(bytes.get(pos), Some(b'+' | b'-')) {
                pos += 1;
            }
            if !digits(&mut pos) {
                return None;
            }
        }
        self.pos = pos;
        // ASCII by construction.
        let text = std::str::from_utf8(&bytes[start..pos]).ok()?;
        // The grammar allows no leading zero, so an integer is canonical
        // unless it is `-0`.
        if plain_integer && text != "-0" {
            return Some(std::borrow::Cow::Borrowed(text));
        }
        if self.keep_scale {
            Some(super::canonical::canonical_decimal_scaled(text))
        } else {
            Some(super::canonical::canonical_decimal(text))
        }
    }

    #[inline(never)]
    fn array(&mut self) -> Option<Node> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
        } else {
            loop {
                items.push(self.value()?);
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
        self.depth -= 1;
        Some(Node::Array(items))
    }

    #[inline(never)]
    fn object(&mut self) -> Option<Node> {
        self.enter()?;
        self.pos += 1;
        let mut map: Vec<(String, Node)> = Vec::new();
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
                let value = self.value()?;
                map.push((key, value));
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
        self.depth -= 1;
        // Stable sort keeps duplicates in document order; keep the last.
        map.sort_by(|a, b| a.0.cmp(&b.0));
        let mut members: Vec<(String, Node)> = Vec::with_capacity(map.len());
        for (key, value) in map {
            match members.last_mut() {
                Some(last) if last.0 == key => last.1 = value,
                _ => members.push((key, value)),
            }
        }
        Some(Node::Object(members))
    }

    /// Parses one value and writes its canonical form straight to `out`
    /// (the same grammar and output as [`Parser::value`] and [`write`]).
    fn write_value(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.skip_ws();
        match *self.bytes.get(self.pos)? {
            b'n' => self.write_literal("null", out),
            b't' => self.write_literal("true", out),
            b'f' => self.write_literal("false", out),
            b'"' => {
                let (quoted, special) = self.quoted_string()?;
                if special {
                    let literal = std::str::from_utf8(quoted).ok()?;
                    let value = serde_json::from_str::<String>(literal).ok()?;
                    crate::stream::push_json_string(out, &value);
                } else {
                    out.extend_from_slice(quoted);
                }
                Some(())
            }
            b'[' => {
                self.enter()?;
                self.pos += 1;
                out.push(b'[');
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                } else {
                    loop {
                        self.write_value(out)?;
                        self.skip_ws();
                        match *self.bytes.get(self.pos)? {
                            b',' => {
                                self.pos += 1;
                                out.push(b',');
                            }
                            b']' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                out.push(b']');
                self.depth -= 1;
                Some(())
            }
            b'{' => self.write_object(out),
            b'-' | b'0'..=b'9' => {
                out.extend_from_slice(self.number()?.as_bytes());
                Some(())
            }
            _ => None,
        }
    }

    /// An object whose keys come strictly ascending and unescaped is written
    /// as it is read; any other is re-read as a tree and sorted.
    #[inline(never)]
    fn write_object(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let (start_pos, start_len, start_depth) = (self.pos, out.len(), self.depth);
        self.enter()?;
        self.pos += 1;
        out.push(b'{');
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            let mut previous: Option<&[u8]> = None;
            loop {
                self.skip_ws();
                if self.bytes.get(self.pos) != Some(&b'"') {
                    return None;
                }
                let (quoted, escaped) = self.quoted_string()?;
                let key = &quoted[1..quoted.len() - 1];
                let in_order = previous.map_or(true, |p| p < key);
                if !in_order && !escaped {
                    // Start over, sorting this object's members.
                    out.truncate(start_len);
                    self.pos = start_pos;
                    self.depth = start_depth;
                    if self.write_unordered_object(out)? {
                        return Some(());
                    }
                }
                if !in_order || escaped {
                    // Start over with the tree, which unescapes keys, sorts
                    // and deduplicates.
                    out.truncate(start_len);
                    self.pos = start_pos;
                    self.depth = start_depth;
                    let node = self.object()?;
                    write(&node, out);
                    return Some(());
                }
                previous = Some(key);
                out.extend_from_slice(quoted);
                out.push(b':');
                self.skip_ws();
                if self.bytes.get(self.pos) != Some(&b':') {
                    return None;
                }
                self.pos += 1;
                self.write_value(out)?;
                self.skip_ws();
                match *self.bytes.get(self.pos)? {
                    b',' => {
                        self.pos += 1;
                        out.push(b',');
                    }
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        out.push(b'}');
        self.depth -= 1;
        Some(())
    }

    /// An object whose keys come out of order (MySQL's and JSONB's usual
    /// output): each member's canonical value goes to a scratch buffer, and
    /// the members are copied out sorted by key, the last of repeated keys
    /// winning. `Some(false)` (with `out` untouched) when a key holds an
    /// escape, which only the tree compares correctly; `None` for bad JSON.
    fn write_unordered_object(&mut self, out: &mut Vec<u8>) -> Option<bool> {
        self.enter()?;
        self.pos += 1;
        // Sized so that neither grows on a typical object (canonical values
        // are rarely longer than the rest of the document).
        let mut values: Vec<u8> = Vec::with_capacity(self.bytes.len() - self.pos);
        let mut members: Vec<(&'a [u8], usize, usize)> = Vec::with_capacity(8);
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.bytes.get(self.pos) != Some(&b'"') {
                    return None;
                }
                let key = self.raw_string()?;
                if key.iter().any(|&b| b == b'\\' || b < 0x20) {
                    return Some(false);
                }
                self.skip_ws();
                if self.bytes.get(self.pos) != Some(&b':') {
                    return None;
                }
                self.pos += 1;
                let from = values.len();
                self.write_value(&mut values)?;
                members.push((key, from, values.len()));
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
        self.depth -= 1;
        // Stable: repeated keys stay in document order, so the last is kept.
        members.sort_by(|a, b| a.0.cmp(b.0));
        out.push(b'{');
        let mut first = true;
        for (i, &(key, from, to)) in members.iter().enumerate() {
            if members.get(i + 1).is_some_and(|next| next.0 == key) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(key);
            out.extend_from_slice(b"\":");
            out.extend_from_slice(&values[from..to]);
        }
        out.push(b'}');
        Some(true)
    }

    fn write_literal(&mut self, word: &str, out: &mut Vec<u8>) -> Option<()> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            out.extend_from_slice(word.as_bytes());
            Some(())
        } else {
            None
        }
    }

    /// The raw content between the quotes of the string at `pos`, escapes
    /// untouched; `pos` moves past the closing quote.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.quoted_string()
            .map(|(quoted, _)| &quoted[1..quoted.len() - 1])
    }

    /// The string at `pos` with its quotes, as written, and whether it
    /// holds an escape or a control character (then it is not in canonical
    /// form as written); `pos` moves past the closing quote.
    #[inline]
    fn quoted_string(&mut self) -> Option<(&'a [u8], bool)> {
        let bytes: &'a [u8] = self.bytes;
        let start = self.pos;
        let mut pos = start + 1;
        let mut special = false;
        loop {
            match *bytes.get(pos)? {
                b'\\' => {
                    special = true;
                    pos += 2;
                }
                b'"' => break,
                b if b < 0x20 => {
                    special = true;
                    pos += 1;
                }
                _ => pos += 1,
            }
        }
        self.pos = pos + 1;
        Some((&bytes[start..=pos], special))
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn literal(&mut self, word: &str, node: Node) -> Option<Node> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Some(node)
        } else {
            None
        }
    }

    fn string(&mut self) -> Option<String> {
        // Find the closing quote, then let serde_json unescape the literal.
        let start = self.pos;
        self.pos += 1;
        loop {
            match *self.bytes.get(self.pos)? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        let literal = std::str::from_utf8(self.bytes.get(start..self.pos)?).ok()?;
        let inner = &literal[1..literal.len() - 1];
        if !inner.bytes().any(|b| b == b'\\' || b < 0x20) {
            return Some(inner.to_string());
        }
        serde_json::from_str::<String>(literal).ok()
    }
}

fn write(node: &Node, out: &mut Vec<u8>) {
    match node {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Node::Number(n) => out.extend_from_slice(n.as_bytes()),
        Node::String(s) => crate::stream::push_json_string(out, s),
        Node::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Node::Object(map) => {
            out.push(b'{');
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                crate::stream::push_json_string(out, key);
                out.push(b':');
                write(value, out);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_json as cj;

    #[test]
    fn nul_escapes_are_found_unless_the_backslash_is_escaped() {
        use super::nul_escape_at;
        assert_eq!(nul_escape_at(r#"{"a":"x\u0000"}"#), Some(7));
        assert_eq!(nul_escape_at(r#"{"a":"x\\u0000"}"#), None);
        assert_eq!(nul_escape_at(r#"{"a":"\\\u0000"}"#), Some(8));
        assert_eq!(nul_escape_at(r#"{"a":"\u00001"}"#), Some(6));
        assert_eq!(nul_escape_at(r#"{"a":1}"#), None);
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        assert_eq!(
            cj(r#"{ "b": [1, 2.0], "a": {"y": null, "x": true} }"#).unwrap(),
            r#"{"a":{"x":true,"y":null},"b":[1,2]}"#
        );
        assert_eq!(cj(r#"{"a":1,"a":2}"#).unwrap(), r#"{"a":2}"#);
        assert_eq!(cj(r#"{"b":1,"a":3,"b":2}"#).unwrap(), r#"{"a":3,"b":2}"#);
        assert_eq!(
            cj(r#"["\u00e9", "é", "a\"b"]"#).unwrap(),
            r#"["é","é","a\"b"]"#
        );
    }

    #[test]
    fn real_differences_stay() {
        assert_ne!(cj(r#"{"a":{"b":1}}"#), cj(r#"{"a":{"b":2}}"#));
        assert_ne!(cj("12345678901234567890123"), cj("12345678901234567890124"));
        assert_ne!(cj(r#""x""#), cj(r#""x ""#));
        // The scale is part of a JSONB number, where it is compared.
        use super::canonical_json_scaled as scaled;
        assert_eq!(cj("1.0"), cj("1"));
        assert_ne!(scaled("1.0"), scaled("1"));
        assert_eq!(scaled("1.50e1"), scaled("15.0"));
        assert_eq!(
            scaled(r#"{"b":[2.50],"a":1}"#).unwrap(),
            r#"{"a":1,"b":[2.50]}"#
        );
    }

    #[test]
    fn rejects_non_json() {
        assert!(cj("{").is_none());
        assert!(cj("[1,]").is_none());
        assert!(cj("nul").is_none());
        assert!(cj("1 2").is_none());
    }

    /// The tree path alone: parse everything, sort every object.
    fn by_tree(text: &str) -> Option<String> {
        let mut parser = super::Parser {
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
            keep_scale: false,
        };
        let node = parser.value()?;
        parser.skip_ws();
        if parser.pos != parser.bytes.len() {
            return None;
        }
        let mut out = Vec::new();
        super::write(&node, &mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn direct_writing_equals_sorting_a_tree() {
        let cases = [
            r#"{"qty": 5, "sku": "SKU-1", "tags": ["a", "b"]}"#,
            r#"{"a":1,"b":{"d":[1.50,2e3,-0,{"z":1,"y":2}],"c":null},"c":true}"#,
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"x":1},"b":{"y":2,"x":3},"c":[{"k":"v","j":"w"}]}"#,
            r#"{"\u0061":1,"b":2}"#,
            r#"{"a\"b":1,"a":2}"#,
            r#"{"ab":1,"a":2,"abc":3}"#,
            r#"{"b":1,"a":2,"b":3}"#,
            r#"{"b":1,"a":2,"b":3,"a":{"y":1,"x":2,"y":0}}"#,
            r#"{"c":{"z":1,"y":[{"q":1,"p":2}]},"a":1}"#,
            r#"{"b":1,"a":2,"a\u0041":3}"#,
            r#"{"b":1,"a":2,"c":}"#,
            r#"{"b":1,"a":2"#,
            r#"{"sku": "SKU-1", "qty": 2, "tags": ["a", "b"]}"#,
            r#"{"é":1,"e":2,"f":"\u00e9\n"}"#,
            r#"  [ 1 , "x" , { } , [ ] , false , null ]  "#,
            r#""just a string""#,
            "12345678901234567890123.4500",
            r#"{"a":[1,2,{"b":"c"}],}"#,
            r#"{"a" 1}"#,
            r#"{"a":1"#,
            r#"{"a":"tab	here"}"#,
            r#"{1:2}"#,
            r#"[1,]"#,
            "",
            "nul",
            r#"{"a":1} x"#,
        ];
        for case in cases {
            assert_eq!(cj(case), by_tree(case), "{case}");
            let mut out = b"prefix".to_vec();
            let ok = super::canonical_json_into(case, &mut out);
            assert_eq!(ok, by_tree(case).is_some(), "{case}");
            if !ok {
                assert_eq!(out, b"prefix", "{case}");
            }
        }
    }

    #[test]
    fn deep_nesting_is_handled() {
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(cj(&deep).unwrap(), deep);
    }
}
