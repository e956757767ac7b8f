//! CockroachDB versus PostgreSQL: every difference in the SQL molt emits.
//!
//! CockroachDB speaks the PostgreSQL protocol and most of its SQL, and the
//! tests can only run PostgreSQL, so molt writes the common subset
//! everywhere and keeps each CockroachDB-only form here, behind
//! [`Flavour`], detected from `SELECT version()`. `docs/loading.md` lists
//! the differences and why each exists.

/// Which engine the target is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Postgres,
    Cockroach,
}

/// Rows per statement when CockroachDB deletes a slice: a single DELETE of
/// millions of rows is one huge transaction there, which it may refuse or
/// retry forever.
pub const COCKROACH_DELETE_CHUNK: u64 = 10_000;

impl Flavour {
    /// Refuses a table this engine cannot hold, before anything is created,
    /// naming the column. CockroachDB's arrays have one dimension (its
    /// `array.md`: "CockroachDB does not support nested arrays"; CREATE TABLE
    /// with `INT8[][]` fails with "nested array unsupported as column type").
    pub fn check_columns(
        self,
        header: &crate::stream::TableHeader,
        target: &crate::stream::TableName,
    ) -> Result<(), String> {
        if !self.is_cockroach() {
            return Ok(());
        }
        for column in &header.columns {
            if column.array_dims > 1 || column.target_type.contains("[][]") {
                return Err(format!(
                    "column {} of {target} ({} in {}) is a {}-dimensional array, and CockroachDB arrays have one dimension; \
                     exclude the column, or change it at the source to one dimension or to JSON",
                    column.name,
                    column.source_type,
                    header.table,
                    column.array_dims.max(2)
                ));
            }
        }
        Ok(())
    }

    /// From the text of `SELECT version()`.
    pub fn detect(version: &str) -> Flavour {
        if version.contains("CockroachDB") {
            Flavour::Cockroach
        } else {
            Flavour::Postgres
        }
    }

    pub fn is_cockroach(self) -> bool {
        self == Flavour::Cockroach
    }

    pub fn name(self) -> &'static str {
        match self {
            Flavour::Postgres => "PostgreSQL",
            Flavour::Cockroach => "CockroachDB",
        }
    }

    /// Session settings for every connection, each with whether a failure
    /// is fatal. Time zone is the one that changes how values are read
    /// (a timestamp without zone cast to timestamptz); date and interval
    /// styles change only how they are printed, and older CockroachDB
    /// versions refuse non-default styles, so there they are best-effort.
    pub fn session_settings(self) -> Vec<(&'static str, bool)> {
        let optional = self.is_cockroach();
        let mut settings = vec![
            ("SET TimeZone = 'UTC'", true),
            ("SET DateStyle = 'ISO, YMD'", !optional),
            ("SET IntervalStyle = 'iso_8601'", !optional),
        ];
        if self.is_cockroach() {
            // Keep each COPY one transaction (the default since 22.2; older
            // versions commit every 100 rows unless told otherwise, which
            // would break batch idempotency). Unknown before 22.1.
            settings.push(("SET copy_from_atomic_enabled = true", false));
            // Retry batches go through a TEMP table, which CockroachDB
            // keeps behind this switch.
            settings.push(("SET experimental_enable_temp_tables = 'on'", false));
        }
        settings
    }

    /// A DELETE limited to `chunk` rows, when the engine needs deletes in
    /// chunks ([`COCKROACH_DELETE_CHUNK`]); `None` means one statement.
    /// CockroachDB accepts `DELETE ... LIMIT n`; PostgreSQL does not.
    pub fn delete_chunk(self) -> Option<u64> {
        self.is_cockroach().then_some(COCKROACH_DELETE_CHUNK)
    }

    /// `DELETE FROM table [WHERE predicate]`, with the engine's chunking.
    pub fn delete_sql(self, table: &str, predicate: Option<&str>) -> String {
        let mut sql = format!("DELETE FROM {table}");
        if let Some(p) = predicate {
            sql.push_str(" WHERE ");
            sql.push_str(p);
        }
        if let Some(chunk) = self.delete_chunk() {
            sql.push_str(&format!(" LIMIT {chunk}"));
        }
        sql
    }
}

/// A CockroachDB release's major and minor number (`v25.3.1` → (25, 3))
/// from the text of `SELECT version()`.
pub fn cockroach_release(version: &str) -> Option<(u32, u32)> {
    let at = version.find("CockroachDB")?;
    let v = version[at..]
        .split_whitespace()
        .find_map(|w| w.strip_prefix('v'))?;
    let mut parts = v.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether the target has the `CITEXT` type. CockroachDB has it built in
/// from v25.3 (docs `src/current/v25.3/citext.md`, a page v25.2 lacks);
/// PostgreSQL once the `citext` extension is in the database.
pub async fn has_citext(target: &super::Target) -> super::Result<bool> {
    use super::DbContext;
    if target.flavour.is_cockroach() {
        return Ok(cockroach_release(&target.version).is_some_and(|release| release >= (25, 3)));
    }
    let row = target
        .client
        .query_one("SELECT to_regtype('citext') IS NOT NULL", &[])
        .await
        .ctx(|| "looking for the citext type on the target".into())?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cockroach_release() {
        let v =
            "CockroachDB CCL v25.2.4 (x86_64-pc-linux-gnu, built 2025/08/05 12:00:00, go1.23.7)";
        assert_eq!(cockroach_release(v), Some((25, 2)));
        assert_eq!(
            cockroach_release("CockroachDB OSS v25.3.0-alpha.1 (x)"),
            Some((25, 3))
        );
        assert_eq!(
            cockroach_release("PostgreSQL 15.4 on x86_64-pc-linux-gnu"),
            None
        );
    }

    #[test]
    fn detects_cockroach() {
        assert_eq!(
            Flavour::detect(
                "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27, go1.19.10)"
            ),
            Flavour::Cockroach
        );
        assert_eq!(
            Flavour::detect("PostgreSQL 15.4 on x86_64-pc-linux-gnu"),
            Flavour::Postgres
        );
        assert_eq!(
            Flavour::Postgres.delete_sql("t", Some("x")),
            "DELETE FROM t WHERE x"
        );
        assert_eq!(
            Flavour::Cockroach.delete_sql("t", None),
            "DELETE FROM t LIMIT 10000"
        );
    }
}
