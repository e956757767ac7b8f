//! The ledger as one run of molt-cutover reads it.
//!
//! A real run creates the ledger before anything else (`ledger::ensure`),
//! so every table is there to be read. A dry run must not create it: it
//! looks up which ledger tables exist, reads those, and takes a missing one
//! as empty (nothing recorded yet), which is what a real run would find
//! right after creating it. The reads themselves are `molt_core::ledger`'s,
//! so a dry run sees the same rows as a real run.

use std::collections::BTreeSet;

use anyhow::Context;
use molt_core::ledger::{self, FreezeRecord, SectionRow, StoredVerify};
use molt_core::stream::{TableHeader, TableName};
use tokio_postgres::Client;

/// Every table of the ledger (the loader's and the lifecycle's), as
/// `ledger::setup_sql` creates them.
const TABLES: [&str; 7] = [
    "tables",
    "sections",
    "phases",
    "transitions",
    "freezes",
    "verify_results",
    "routing",
];

/// The ledger in schema `schema`, with the tables a dry run found missing.
#[derive(Clone, Debug)]
pub struct LedgerView {
    pub schema: String,
    missing: BTreeSet<&'static str>,
}

impl LedgerView {
    /// A ledger that `ledger::ensure` has just created or checked.
    pub fn ensured(schema: &str) -> LedgerView {
        LedgerView {
            schema: schema.to_string(),
            missing: BTreeSet::new(),
        }
    }

    /// Looks up which ledger tables exist, creating nothing.
    pub async fn inspect(client: &Client, schema: &str) -> anyhow::Result<LedgerView> {
        let rows = client
            .query(
                "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = $1",
                &[&schema],
            )
            .await
            .map_err(|e| anyhow::anyhow!(molt_core::target::describe(&e)))
            .with_context(|| format!("looking up the ledger in schema {schema}"))?;
        let present: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(LedgerView {
            schema: schema.to_string(),
            missing: TABLES
                .into_iter()
                .filter(|t| !present.contains(*t))
                .collect(),
        })
    }

    /// Whether every ledger table exists.
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// Whether no ledger table exists (nothing has run against this target).
    pub fn absent(&self) -> bool {
        self.missing.len() == TABLES.len()
    }

    fn has(&self, table: &str) -> bool {
        !self.missing.contains(table)
    }

    pub async fn phase_state(
        &self,
        client: &Client,
        phase: &str,
    ) -> anyhow::Result<Option<String>> {
        if !self.has("phases") {
            return Ok(None);
        }
        Ok(ledger::phase_state(client, &self.schema, phase).await?)
    }

    pub async fn freezes(&self, client: &Client, phase: &str) -> anyhow::Result<Vec<FreezeRecord>> {
        if !self.has("freezes") {
            return Ok(Vec::new());
        }
        Ok(ledger::freezes(client, &self.schema, phase).await?)
    }

    pub async fn sections(&self, client: &Client, phase: &str) -> anyhow::Result<Vec<SectionRow>> {
        if !self.has("sections") {
            return Ok(Vec::new());
        }
        Ok(ledger::sections(client, &self.schema, phase).await?)
    }

    pub async fn verify_results(
        &self,
        client: &Client,
        phase: &str,
    ) -> anyhow::Result<Vec<StoredVerify>> {
        if !self.has("verify_results") {
            return Ok(Vec::new());
        }
        Ok(ledger::verify_results(client, &self.schema, phase).await?)
    }

    /// The loader's stored headers: (target table, header).
    pub async fn stored_headers(
        &self,
        client: &Client,
    ) -> anyhow::Result<Vec<(TableName, TableHeader)>> {
        if !self.has("tables") {
            return Ok(Vec::new());
        }
        Ok(molt_core::target::ledger::Ledger::new(&self.schema)
            .stored_headers(client, None)
            .await?)
    }
}
