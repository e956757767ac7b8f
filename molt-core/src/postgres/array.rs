//! PostgreSQL array literals (`{a,"b c",NULL}`, `{{1,2},{3,4}}`) to the
//! stream's array form: nested JSON arrays of element strings and nulls.
//!
//! Arrays with non-default lower bounds (`[0:1]={1,2}`) are refused: the
//! stream, like CockroachDB, has only 1-based arrays, and silently shifting
//! the indexes would change what `a[1]` means.

/// Appends one converted element, as a quoted JSON string, to the output.
pub type ElementFn<'a> = dyn FnMut(&str, &mut Vec<u8>) -> Result<(), String> + 'a;

/// PostgreSQL's limit on array dimensions.
const MAX_DIMS: usize = 6;

/// Converts the text output of an array into JSON, appending it to `out`.
/// `element` receives each non-NULL element (unquoted, unescaped) and
/// appends its JSON string, quotes included, to `out`. Returns a message
/// describing what is wrong with the literal.
pub fn to_json(
    text: &str,
    out: &mut Vec<u8>,
    elem_buf: &mut String,
    element: &mut ElementFn<'_>,
) -> Result<(), String> {
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b'[') {
        let bounds = text.split('=').next().unwrap_or(text);
        return Err(format!(
            "array with non-default lower bounds {bounds} is not supported (only 1-based arrays can be migrated)"
        ));
    }
    let mut parser = Parser { text, pos: 0 };
    parser.skip_ws();
    parser.array(out, elem_buf, element, 1)?;
    parser.skip_ws();
    if parser.pos != bytes.len() {
        return Err(format!(
            "unexpected text after the array at byte {}",
            parser.pos + 1
        ));
    }
    Ok(())
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn array(
        &mut self,
        out: &mut Vec<u8>,
        elem_buf: &mut String,
        element: &mut ElementFn<'_>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DIMS {
            return Err(format!("array has more than {MAX_DIMS} dimensions"));
        }
        if self.peek() != Some(b'{') {
            return Err(format!("expected '{{' at byte {}", self.pos + 1));
        }
        self.pos += 1;
        out.push(b'[');
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            out.push(b']');
            return Ok(());
        }
        let mut first = true;
        loop {
            if !first {
                out.push(b',');
            }
            first = false;
            self.skip_ws();
            match self.peek() {
                Some(b'{') => self.array(out, elem_buf, element, depth + 1)?,
                Some(b'"') => {
                    self.quoted(elem_buf)?;
                    element(elem_buf, out)?;
                }
                Some(_) => {
                    let is_null = self.unquoted(elem_buf)?;
                    if is_null {
                        out.extend_from_slice(b"null");
                    } else {
                        element(elem_buf, out)?;
                    }
                }
                None => return Err("array literal ends early".into()),
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    out.push(b']');
                    return Ok(());
                }
                Some(c) => {
                    return Err(format!(
                        "unexpected {:?} at byte {}",
                        c as char,
                        self.pos + 1
                    ))
                }
                None => return Err("array literal ends early".into()),
            }
        }
    }

    /// A double-quoted element, backslash escapes undone.
    fn quoted(&mut self, buf: &mut String) -> Result<(), String> {
        buf.clear();
        self.pos += 1;
        let rest = &self.text[self.pos..];
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(());
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => buf.push(escaped),
                    None => break,
                },
                c => buf.push(c),
            }
        }
        Err("unterminated quoted array element".into())
    }

    /// An unquoted element up to `,` or `}`; returns true for NULL.
    fn unquoted(&mut self, buf: &mut String) -> Result<bool, String> {
        buf.clear();
        let start = self.pos;
        let rest = &self.text[self.pos..];
        let mut chars = rest.char_indices();
        let mut had_escape = false;
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                ',' | '}' => {
                    end = i;
                    break;
                }
                '{' | '"' => {
                    return Err(format!(
                        "unexpected {c:?} in an unquoted array element at byte {}",
                        start + i + 1
                    ))
                }
                '\\' => {
                    had_escape = true;
                    if let Some((_, escaped)) = chars.next() {
                        buf.push(escaped);
                    }
                }
                c => buf.push(c),
            }
        }
        self.pos = start + end;
        let trimmed_len = buf.trim_end().len();
        buf.truncate(trimmed_len);
        Ok(!had_escape && buf.eq_ignore_ascii_case("NULL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<String, String> {
        let mut out = Vec::new();
        let mut buf = String::new();
        to_json(text, &mut out, &mut buf, &mut |e, out| {
            crate::stream::push_json_string(out, e);
            Ok(())
        })?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn converts_arrays() {
        assert_eq!(json("{}").unwrap(), "[]");
        assert_eq!(
            json("{a,NULL,\"NULL\",\"b \\\"c\\\\\",\"\"}").unwrap(),
            r#"["a",null,"NULL","b \"c\\",""]"#
        );
        assert_eq!(
            json("{{1,2},{3,NULL}}").unwrap(),
            r#"[["1","2"],["3",null]]"#
        );
        assert_eq!(json("{{}}").unwrap(), "[[]]");
        assert_eq!(
            json("{\"2020-01-01 00:00:00+00\"}").unwrap(),
            r#"["2020-01-01 00:00:00+00"]"#
        );
        assert_eq!(json("{😀,é}").unwrap(), r#"["😀","é"]"#);
        assert!(json("[0:1]={1,2}")
            .unwrap_err()
            .contains("lower bounds [0:1]"));
        assert!(json("{1,2").is_err());
        assert!(json("{1}x").is_err());
    }
}
