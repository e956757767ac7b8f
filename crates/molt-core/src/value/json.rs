//! Canonical JSON: the form in which two JSON documents are equal exactly
//! when JSONB (PostgreSQL, CockroachDB) or MySQL's JSON type would call them
//! equal. Object keys are sorted and deduplicated (the last one wins, as in
//! JSONB), whitespace goes, and numbers are compared as exact decimals, so
//! `1.0` equals `1` but `0.1` never equals `0.1000000000000000055511`.
//!
//! It is hand-written rather than built on `serde_json::Value` because that
//! type rounds big numbers through `f64`, which would hide real differences.

/// Canonicalizes a JSON document; `None` when the text is not JSON.
pub fn canonical_json(text: &str) -> Option<String> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let node = parser.value()?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    write(&node, &mut out);
    Some(out)
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
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 2_000;

impl Parser<'_> {
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
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while self.pos < self.bytes.len()
                    && matches!(
                        self.bytes[self.pos],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.pos]).ok()?;
                let canon = super::canonical::canonical_decimal(text);
                if canon.as_ref() == text && text.parse::<f64>().is_err() {
                    return None;
                }
                Some(Node::Number(canon.into_owned()))
            }
            _ => None,
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

fn write(node: &Node, out: &mut String) {
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Number(n) => out.push_str(n),
        Node::String(s) => push_string(s, out),
        Node::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Node::Object(map) => {
            out.push('{');
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(key, out);
                out.push(':');
                write(value, out);
            }
            out.push('}');
        }
    }
}

fn push_string(s: &str, out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    crate::stream::push_json_string(&mut bytes, s);
    *out = String::from_utf8(bytes).expect("JSON escaping keeps UTF-8");
}

#[cfg(test)]
mod tests {
    use super::canonical_json as cj;

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
    }

    #[test]
    fn rejects_non_json() {
        assert!(cj("{").is_none());
        assert!(cj("[1,]").is_none());
        assert!(cj("nul").is_none());
        assert!(cj("1 2").is_none());
    }

    #[test]
    fn deep_nesting_is_handled() {
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(cj(&deep).unwrap(), deep);
    }
}
