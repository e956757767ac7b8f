//! Choosing tables by name: the shell globs of `--table` and plan entries,
//! and the exclusions (`--exclude`, `--exclude-regex`, a plan's `exclude`).
//!
//! molt-slice, molt-dump and molt-verify must agree on which tables a phase
//! holds: a table molt-slice's audit counts but the dump leaves out would be
//! a phase that verifies clean with rows missing. So all three match names
//! here, the same way, and apply exclusions *after* expanding globs, so that
//! `--table 'public.*' --exclude 'public.audit_*'` means what it reads as.
//!
//! An exclusion is a glob (`audit_*`, any schema; `public.audit_*`, one
//! schema) or a regular expression matched against the whole of
//! `schema.table` (`--exclude-regex '.*_(tmp|old)'`), anchored at both ends
//! so that `log` never excludes `catalog` by accident. MOLT's
//! `--table-exclusion-filter` and pgloader's `EXCLUDING TABLE NAMES
//! MATCHING` are the models.

use crate::stream::TableName;

/// True when a name holds glob characters (`*`, `?`).
pub fn has_glob(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// Shell-style matching of a whole name: `*` any run of characters, `?`
/// any one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        // The wildcard first: a `*` in the pattern is never matched
        // literally against a `*` in the name (found by fuzzing: `*` did not
        // match `*b`).
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// An exclusion that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("{origin}: {pattern:?} is not a regular expression: {reason}")]
    Regex {
        origin: &'static str,
        pattern: String,
        reason: String,
    },
    #[error("{origin}: an empty pattern would exclude nothing, or everything")]
    Empty { origin: &'static str },
}

#[derive(Clone, Debug)]
enum Pattern {
    /// `schema` is `None` for a pattern without one (any schema).
    Glob {
        schema: Option<String>,
        name: String,
        text: String,
    },
    Regex(regex::Regex, String),
}

/// Tables to leave out, from globs and regular expressions (see the module
/// documentation).
#[derive(Clone, Debug, Default)]
pub struct Exclusions {
    patterns: Vec<Pattern>,
}

impl Exclusions {
    /// From globs and regular expressions. `origin` names where they came
    /// from in errors (`--exclude/--exclude-regex`, `the plan's exclude`).
    pub fn new(
        globs: &[String],
        regexes: &[String],
        origin: &'static str,
    ) -> Result<Exclusions, SelectError> {
        let mut patterns = Vec::new();
        for glob in globs {
            if glob.trim().is_empty() {
                return Err(SelectError::Empty { origin });
            }
            let (schema, name) = match glob.split_once('.') {
                Some((s, n)) => (Some(s.to_string()), n.to_string()),
                None => (None, glob.clone()),
            };
            patterns.push(Pattern::Glob {
                schema,
                name,
                text: glob.clone(),
            });
        }
        for re in regexes {
            if re.is_empty() {
                return Err(SelectError::Empty { origin });
            }
            let anchored =
                regex::Regex::new(&format!("^(?:{re})$")).map_err(|e| SelectError::Regex {
                    origin,
                    pattern: re.clone(),
                    reason: e.to_string(),
                })?;
            patterns.push(Pattern::Regex(anchored, re.clone()));
        }
        Ok(Exclusions { patterns })
    }

    /// Both lists together: what either excludes is excluded.
    pub fn and(mut self, other: Exclusions) -> Exclusions {
        self.patterns.extend(other.patterns);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The pattern that excludes `table`, as written, if any.
    pub fn excluding(&self, table: &TableName) -> Option<&str> {
        self.patterns.iter().find_map(|p| match p {
            Pattern::Glob { schema, name, text } => (schema
                .as_deref()
                .map_or(true, |s| glob_match(s, &table.schema))
                && glob_match(name, &table.name))
            .then_some(text.as_str()),
            Pattern::Regex(re, text) => re
                .is_match(&format!("{}.{}", table.schema, table.name))
                .then_some(text.as_str()),
        })
    }

    /// Keeps the items whose table no pattern excludes; returns the
    /// excluded tables (each once, in order), for the operator's log.
    pub fn retain<T>(
        &self,
        items: &mut Vec<T>,
        table: impl Fn(&T) -> &TableName,
    ) -> Vec<TableName> {
        let mut dropped: Vec<TableName> = Vec::new();
        items.retain(|item| {
            let t = table(item);
            if self.excluding(t).is_none() {
                return true;
            }
            if !dropped.contains(t) {
                dropped.push(t.clone());
            }
            false
        });
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("order*", "order_items"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("order", "orders"));
        assert!(!glob_match("a*z", "abc"));
        assert!(glob_match("*", "a*b"));
        assert!(glob_match("a*", "a*b"));
        assert!(glob_match("*b", "**b"));
        assert!(glob_match("*b", "*b"));
        assert!(glob_match("*_p2022_*", "payment_p2022_01"));
    }

    #[test]
    fn exclusions_match_globs_per_schema_and_whole_regexes() {
        let t = |s: &str| TableName::parse(s, "public");
        let ex = Exclusions::new(
            &["audit_*".into(), "app.tmp?".into()],
            &[r".*\.(log|old)_\d+".into()],
            "--exclude",
        )
        .unwrap();
        assert_eq!(ex.excluding(&t("public.audit_2024")), Some("audit_*"));
        assert_eq!(ex.excluding(&t("app.audit_x")), Some("audit_*"));
        assert_eq!(ex.excluding(&t("app.tmp1")), Some("app.tmp?"));
        assert_eq!(ex.excluding(&t("public.tmp1")), None);
        assert_eq!(
            ex.excluding(&t("public.log_12")),
            Some(r".*\.(log|old)_\d+")
        );
        // Anchored: `log` is not `catalog_12`.
        assert_eq!(ex.excluding(&t("public.catalog_12")), None);
        assert_eq!(ex.excluding(&t("public.log_12x")), None);

        let mut tables = vec![t("a"), t("audit_1"), t("audit_1"), t("b")];
        assert_eq!(ex.retain(&mut tables, |x| x), vec![t("audit_1")]);
        assert_eq!(tables, vec![t("a"), t("b")]);

        let err = Exclusions::new(&[], &["(".into()], "--exclude-regex").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--exclude-regex: \"(\" is not a regular expression"),
            "{err}"
        );
        assert!(Exclusions::new(&["".into()], &[], "--exclude").is_err());
    }
}
