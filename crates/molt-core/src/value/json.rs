//! Canonical JSON: the form in which two JSON documents are equal exactly
//! when JSONB (PostgreSQL, CockroachDB) or MySQL's JSON type would call them
//! equal. Object keys are sorted and deduplicated (the last one wins, as in
//! JSONB), whitespace goes, and numbers are compared as exact decimals, so
//! `1.0` equals `1` but `0.1` never equals `0.1000000000000000055511`.
//!
//! It is hand-written rather than built on `serde_json::Value` because that
//! type rounds big numbers through `f64`, which would hide real differences.

use std::collections::BTreeMap;

/// Canonicalizes a JSON document; `None` when the text is not JSON.
pub fn canonical_json(text: &str) -> Option<String> {
    let mut parser = Parser { bytes: text.as_bytes(), pos: 0, depth: 0 };
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
    Object(BTreeMap<String, Node>),
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
        while self.pos < self.bytes.len() && matches!(self.bytes[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
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
            b'[' => {
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
            b'{' => {
                self.enter()?;
                self.pos += 1;
                let mut map = BTreeMap::new();
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
                        map.insert(key, value);
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
                Some(Node::Object(map))
            }
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while self.pos < self.bytes.len()
                    && matches!(self.bytes[self.pos], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
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
        serde_json::from_str::<String>(literal).ok()
    }
}

fn write(node: &Node, out: &mut String) {
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Number(n) => out.push_str(n),
        Node::String(s) => out.push_str(&serde_json::to_string(s).expect("string serializes")),
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
                out.push_str(&serde_json::to_string(key).expect("string serializes"));
                out.push(':');
                write(value, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_json as cj;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        assert_eq!(cj(r#"{ "b": [1, 2.0], "a": {"y": null, "x": true} }"#).unwrap(), r#"{"a":{"x":true,"y":null},"b":[1,2]}"#);
        assert_eq!(cj(r#"{"a":1,"a":2}"#).unwrap(), r#"{"a":2}"#);
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
