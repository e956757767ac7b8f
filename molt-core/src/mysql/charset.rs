//! Per-column character sets.
//!
//! MySQL stores each text column in its own character set, and a database
//! that has lived long enough holds several (a `latin1` table from 2006 next
//! to a `utf8mb4` one). Letting the server convert everything to one
//! connection charset would replace unconvertible bytes with `?` silently,
//! so the dump asks for the stored bytes as they are
//! (`character_set_results = NULL`) and decodes each column here, strictly:
//! bytes that are not valid in the declared charset are an error, never a
//! replacement character.
//!
//! GBK is WHATWG's decoder with one difference: the codes it maps to the
//! Private Use Area are invalid here, as MySQL's own GBK table has no
//! character for them.
//!
//! MySQL's `latin1` is really Windows-1252 (with the five undefined bytes
//! mapped to the C1 controls), which is exactly WHATWG's `windows-1252` as
//! implemented by `encoding_rs`; every byte decodes.

use encoding_rs::Encoding;

/// How to turn a column's stored bytes into Unicode text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// utf8mb3 / utf8mb4: validated UTF-8, borrowed without copying.
    Utf8,
    /// 7-bit ASCII: any byte above 0x7F is invalid.
    Ascii,
    /// UTF-32 big-endian (MySQL `utf32`), decoded by hand.
    Utf32,
    /// Any other charset `encoding_rs` knows.
    Other(&'static Encoding),
}

impl Charset {
    /// The decoder for a MySQL character set name, or `None` when molt does
    /// not know how to decode it (the caller reports it, naming the column).
    pub fn from_mysql(name: &str) -> Option<Charset> {
        let enc = |label: &str| Encoding::for_label(label.as_bytes()).map(Charset::Other);
        match name.to_ascii_lowercase().as_str() {
            "utf8" | "utf8mb3" | "utf8mb4" => Some(Charset::Utf8),
            "ascii" => Some(Charset::Ascii),
            "utf32" => Some(Charset::Utf32),
            // MySQL's latin1 is cp1252.
            "latin1" | "cp1252" => enc("windows-1252"),
            "latin2" => enc("iso-8859-2"),
            "latin5" => enc("windows-1254"),
            "latin7" => enc("iso-8859-13"),
            "cp1250" => enc("windows-1250"),
            "cp1251" => enc("windows-1251"),
            "cp1256" => enc("windows-1256"),
            "cp1257" => enc("windows-1257"),
            "cp866" => enc("ibm866"),
            "greek" => enc("iso-8859-7"),
            "hebrew" => enc("iso-8859-8"),
            "koi8r" => enc("koi8-r"),
            "koi8u" => enc("koi8-u"),
            "tis620" => enc("windows-874"),
            "macroman" => enc("macintosh"),
            // GB2312 is a subset of GBK: every valid GB2312 byte string
            // decodes the same under GBK.
            "gbk" | "gb2312" => enc("gbk"),
            "gb18030" => enc("gb18030"),
            "big5" => enc("big5"),
            "sjis" | "cp932" => enc("shift_jis"),
            "ujis" | "eucjpms" => enc("euc-jp"),
            "euckr" => enc("euc-kr"),
            "ucs2" | "utf16" => enc("utf-16be"),
            "utf16le" => enc("utf-16le"),
            _ => None,
        }
    }

    /// Decodes `bytes`, or `None` when they are not valid in this charset.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match self {
            Charset::Utf8 => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
            Charset::Ascii => {
                if bytes.is_ascii() {
                    std::str::from_utf8(bytes).ok().map(Cow::Borrowed)
                } else {
                    None
                }
            }
            Charset::Utf32 => {
                if bytes.len() % 4 != 0 {
                    return None;
                }
                bytes
                    .chunks_exact(4)
                    .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                    .collect::<Option<String>>()
                    .map(Cow::Owned)
            }
            Charset::Other(enc) if *enc == encoding_rs::GBK => {
                // WHATWG's GBK decodes the user-defined areas and a few
                // unassigned codes (0xAAA1, 0xFEFE, 0xA2A0...) to Private Use
                // Area characters; MySQL's own GBK table has no mapping for
                // them (it converts them to '?'), so they are not text in any
                // sense the source's users see, and are refused like any
                // other invalid bytes.
                let text = enc.decode_without_bom_handling_and_without_replacement(bytes)?;
                if text.chars().any(|c| ('\u{E000}'..='\u{F8FF}').contains(&c)) {
                    None
                } else {
                    Some(text)
                }
            }
            Charset::Other(enc) => enc.decode_without_bom_handling_and_without_replacement(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_cp1252_and_total() {
        let cs = Charset::from_mysql("latin1").unwrap();
        assert_eq!(cs.decode(b"caf\xe9").unwrap(), "café");
        assert_eq!(cs.decode(b"\x80").unwrap(), "€");
        for b in 0..=255u8 {
            assert!(cs.decode(&[b]).is_some(), "byte {b:#x}");
        }
    }

    #[test]
    fn invalid_bytes_are_refused() {
        assert!(Charset::from_mysql("utf8mb4")
            .unwrap()
            .decode(b"\xff\xfe")
            .is_none());
        assert!(Charset::from_mysql("ascii")
            .unwrap()
            .decode(b"\xe9")
            .is_none());
        assert!(Charset::from_mysql("gbk")
            .unwrap()
            .decode(b"\x81")
            .is_none());
        assert_eq!(
            Charset::from_mysql("gbk")
                .unwrap()
                .decode(b"\xc4\xe3\xba\xc3")
                .unwrap(),
            "你好"
        );
        assert_eq!(
            Charset::from_mysql("utf32")
                .unwrap()
                .decode(b"\x00\x01\xf6\x00")
                .unwrap(),
            "😀"
        );
        let utf16 = Charset::from_mysql("utf16").unwrap();
        assert_eq!(utf16.decode(b"\x00a\xd8\x3d\xde\x00").unwrap(), "a😀");
        assert!(utf16.decode(b"\xd8\x3d").is_none(), "a lone surrogate");
        assert_eq!(
            Charset::from_mysql("ucs2")
                .unwrap()
                .decode(b"\x00\xe9")
                .unwrap(),
            "é"
        );
        assert!(Charset::from_mysql("swe7").is_none());
        // Codes MariaDB's GBK cannot convert (they would be PUA characters).
        let gbk = Charset::from_mysql("gbk").unwrap();
        for code in [
            b"\xa3\x80",
            b"\xaa\xa1",
            b"\xa2\xa0",
            b"\xfe\xfe",
            b"\xa1\xa0",
            b"\xd7\xfa",
        ] {
            assert!(gbk.decode(code).is_none(), "{code:x?}");
        }
    }
}
