//! The type-map override file (`--type-map FILE`).
//!
//! The default mapping ([`super::types`]) never loses a value, so it cannot
//! guess intent: a `tinyint(1)` may hold 2, a `binary(16)` may or may not be
//! a UUID. The operator states intent per column in a TOML (or, for a
//! `.json` file, JSON) file:
//!
//! ```toml
//! [[column]]
//! table = "shop.users"      # `db.table`, `table`, or "*" for every table
//! column = "is_active"
//! target_type = "BOOL"      # 0/1 → false/true; any other value is an error
//!
//! [[column]]
//! table = "sessions"
//! column = "id"
//! target_type = "UUID"      # BINARY(16) bytes or CHAR(36) text → uuid
//!
//! [[column]]
//! table = "legacy"
//! column = "created"
//! nullable = true           # NOT NULL on the source, nullable on the target
//!                           # (so zero dates can become NULL)
//!
//! [[column]]
//! table = "t"
//! column = "note"
//! target_type = "VARCHAR(500)"  # any other type: values unchanged
//! ```
//!
//! Matching is case-insensitive. Overrides that name no existing column are
//! reported, so a typo cannot go unnoticed.

use serde::Deserialize;

use super::decode::Decoder;
use super::types::{Mapped, RawColumn};
use crate::value::LogicalType;

/// One `[[column]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnOverride {
    /// `db.table`, `table` or `*`.
    pub table: String,
    pub column: String,
    #[serde(default)]
    pub target_type: Option<String>,
    #[serde(default)]
    pub nullable: Option<bool>,
}

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeMap {
    #[serde(default)]
    pub column: Vec<ColumnOverride>,
}

#[derive(Debug, thiserror::Error)]
pub enum TypeMapError {
    #[error("reading type map {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("type map {path}: {message}")]
    Parse { path: String, message: String },
    #[error("type map: column {column} ({source_type}) cannot become {target}: {why}")]
    Incompatible {
        column: String,
        source_type: String,
        target: String,
        why: String,
    },
}

impl TypeMap {
    /// Reads a TOML file, or JSON when the name ends in `.json`.
    pub fn load(path: &std::path::Path) -> Result<TypeMap, TypeMapError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TypeMapError::Read {
            path: shown.clone(),
            source,
        })?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        TypeMap::parse(&text, &shown, json)
    }

    /// Parses the text of a type map: JSON when `json` is set, TOML
    /// otherwise. `origin` (the file's name) is what errors call it.
    pub fn parse(text: &str, origin: &str, json: bool) -> Result<TypeMap, TypeMapError> {
        let parsed = if json {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| TypeMapError::Parse {
            path: origin.to_string(),
            message,
        })
    }

    /// The override for `db.table`.`column`, if any (the most specific wins).
    pub fn find(&self, db: &str, table: &str, column: &str) -> Option<&ColumnOverride> {
        self.column
            .iter()
            .filter_map(|o| o.rank(db, table, column).map(|r| (r, o)))
            .max_by_key(|(r, _)| *r)
            .map(|(_, o)| o)
    }

    /// The overrides that name no column of `columns` (`(db, table,
    /// column)` triples of the source): typos, or tables since renamed.
    pub fn unmatched<'a>(
        &'a self,
        columns: &[(String, String, String)],
    ) -> Vec<&'a ColumnOverride> {
        self.column
            .iter()
            .filter(|o| !columns.iter().any(|(d, t, c)| o.rank(d, t, c).is_some()))
            .collect()
    }
}

impl ColumnOverride {
    /// How specifically this override names `db.table`.`column`: 3 for
    /// `db.table`, 2 for `table`, 1 for `*`, `None` when it does not.
    fn rank(&self, db: &str, table: &str, column: &str) -> Option<u8> {
        if !self.column.eq_ignore_ascii_case(column) {
            return None;
        }
        let qualified = self.table.len() == db.len() + 1 + table.len()
            && self.table.is_char_boundary(db.len())
            && self.table[..db.len()].eq_ignore_ascii_case(db)
            && self.table[db.len()..].starts_with('.')
            && self.table[db.len() + 1..].eq_ignore_ascii_case(table);
        if qualified {
            Some(3)
        } else if self.table.eq_ignore_ascii_case(table) {
            Some(2)
        } else if self.table == "*" {
            Some(1)
        } else {
            None
        }
    }
}

/// Applies an override's `target_type` to a default mapping.
pub fn apply(
    raw: &RawColumn,
    mut mapped: Mapped,
    target_type: &str,
) -> Result<Mapped, TypeMapError> {
    let upper = target_type.trim().to_ascii_uppercase();
    let incompatible = |why: &str| TypeMapError::Incompatible {
        column: raw.name.clone(),
        source_type: raw.column_type.clone(),
        target: target_type.to_string(),
        why: why.to_string(),
    };
    match upper.as_str() {
        "BOOL" | "BOOLEAN" => {
            if mapped.decoder != Decoder::Int || mapped.logical != LogicalType::Int {
                return Err(incompatible("only integer columns can become BOOL"));
            }
            mapped.decoder = Decoder::Bool;
            mapped.logical = LogicalType::Bool;
            mapped.target_type = "BOOL".into();
        }
        "UUID" => {
            let ok = match mapped.decoder {
                Decoder::Bytes => {
                    raw.char_max_length == Some(16) && raw.data_type.eq_ignore_ascii_case("binary")
                }
                Decoder::Text(_) => raw.char_max_length == Some(36),
                _ => false,
            };
            if !ok {
                return Err(incompatible(
                    "only BINARY(16) and CHAR(36)/VARCHAR(36) columns can become UUID",
                ));
            }
            mapped.decoder = Decoder::Uuid;
            mapped.logical = LogicalType::Uuid;
            mapped.padded = false;
            mapped.target_type = "UUID".into();
        }
        _ => {
            // Any other type: the values stay as they are; the target
            // rejects any that do not fit, naming the row. An ENUM's labels
            // then become plain text.
            if let Decoder::Enum(cs) | Decoder::EnumDeclaringEmpty(cs) = mapped.decoder {
                mapped.decoder = Decoder::Text(cs);
                mapped.logical = LogicalType::Text;
                mapped.enum_labels = None;
            }
            mapped.target_type = target_type.trim().to_string();
        }
    }
    Ok(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toml_and_finds_the_most_specific() {
        let map: TypeMap = toml::from_str(
            r#"
            [[column]]
            table = "*"
            column = "flag"
            target_type = "INT8"
            [[column]]
            table = "shop.Users"
            column = "FLAG"
            target_type = "BOOL"
            "#,
        )
        .unwrap();
        assert_eq!(
            map.find("shop", "users", "flag")
                .unwrap()
                .target_type
                .as_deref(),
            Some("BOOL")
        );
        assert_eq!(
            map.find("shop", "orders", "flag")
                .unwrap()
                .target_type
                .as_deref(),
            Some("INT8")
        );
        assert!(map.find("shop", "orders", "other").is_none());
        let cols = |list: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
            list.iter()
                .map(|(d, t, c)| (d.to_string(), t.to_string(), c.to_string()))
                .collect()
        };
        assert!(map
            .unmatched(&cols(&[("shop", "users", "flag")]))
            .is_empty());
        let typo = map.unmatched(&cols(&[("shop", "users", "flags")]));
        assert_eq!(typo.len(), 2, "neither override names a column");
        let other_db = map.unmatched(&cols(&[("crm", "users", "flag")]));
        assert_eq!(other_db.len(), 1);
        assert_eq!(other_db[0].table, "shop.Users");
        assert!(toml::from_str::<TypeMap>("[[column]]\ntable='t'\ncolumn='c'\ntypo=1").is_err());
    }
}
