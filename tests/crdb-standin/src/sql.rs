//! Just enough SQL to find the statements CockroachDB treats differently: a
//! lexer that knows PostgreSQL's strings, quoted identifiers, dollar quotes and
//! comments, and the per-statement rules built on its tokens.

use crate::crdb;
use crate::proto::PgError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Word,
    QIdent,
    Str,
    Num,
    Param,
    Op,
    Punct(u8),
}

#[derive(Clone, Copy, Debug)]
pub struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

const OP_CHARS: &[u8] = b"+-*/<>=~!@#%^&|`?:";

/// Scans a single-quoted string starting at the quote; `escapes` for E'' strings.
fn scan_string(b: &[u8], mut i: usize, escapes: bool) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            b'\'' => {
                if b.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

pub fn lex(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            continue;
        }
        let kind = if c == b'\'' {
            i = scan_string(b, i, false);
            Kind::Str
        } else if c == b'"' {
            i += 1;
            while i < b.len() {
                if b[i] == b'"' {
                    if b.get(i + 1) == Some(&b'"') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            Kind::QIdent
        } else if c == b'$' {
            if b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                Kind::Param
            } else {
                // Dollar quote: $tag$ ... $tag$
                let mut j = i + 1;
                while j < b.len() && is_word_char(b[j]) && b[j] != b'$' {
                    j += 1;
                }
                if b.get(j) == Some(&b'$') {
                    let tag = &b[i..=j];
                    let body = j + 1;
                    let end = b[body..].windows(tag.len()).position(|w| w == tag);
                    i = match end {
                        Some(p) => body + p + tag.len(),
                        None => b.len(),
                    };
                    Kind::Str
                } else {
                    i += 1;
                    Kind::Op
                }
            }
        } else if is_word_start(c) {
            // E'...', B'...', X'...', N'...' strings.
            if b.get(i + 1) == Some(&b'\'')
                && matches!(c, b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'n' | b'N')
            {
                i = scan_string(b, i + 1, matches!(c, b'e' | b'E'));
                Kind::Str
            } else {
                while i < b.len() && is_word_char(b[i]) {
                    i += 1;
                }
                Kind::Word
            }
        } else if c.is_ascii_digit()
            || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < b.len() {
                let d = b[i];
                if d.is_ascii_digit() || d == b'.' || d == b'_' {
                    i += 1;
                } else if (d == b'e' || d == b'E') && i + 1 < b.len() {
                    i += 1;
                    if b[i] == b'+' || b[i] == b'-' {
                        i += 1;
                    }
                } else {
                    break;
                }
            }
            Kind::Num
        } else if matches!(c, b'(' | b')' | b'[' | b']' | b',' | b';' | b'.') {
            i += 1;
            Kind::Punct(c)
        } else if OP_CHARS.contains(&c) {
            while i < b.len() && OP_CHARS.contains(&b[i]) {
                if b[i] == b'-' && b.get(i + 1) == Some(&b'-') {
                    break;
                }
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    break;
                }
                i += 1;
            }
            if i == start {
                i += 1;
            }
            Kind::Op
        } else {
            i += 1;
            Kind::Op
        };
        toks.push(Tok {
            kind,
            start,
            end: i.min(b.len()),
        });
    }
    toks
}

/// A lexed statement with helpers to look at its words.
pub struct Stmt<'a> {
    pub text: &'a str,
    pub toks: Vec<Tok>,
    words: Vec<String>,
}

impl<'a> Stmt<'a> {
    pub fn new(text: &'a str) -> Self {
        let toks = lex(text);
        let words = toks
            .iter()
            .map(|t| {
                if t.kind == Kind::Word {
                    text[t.start..t.end].to_ascii_lowercase()
                } else {
                    String::new()
                }
            })
            .collect();
        Stmt { text, toks, words }
    }

    /// The lower-cased word at token `i` ("" when it is not a bare word or out of range).
    pub fn w(&self, i: usize) -> &str {
        self.words.get(i).map(String::as_str).unwrap_or("")
    }

    pub fn is(&self, i: usize, kind: Kind) -> bool {
        self.toks.get(i).is_some_and(|t| t.kind == kind)
    }

    pub fn src(&self, i: usize) -> &'a str {
        let t = self.toks[i];
        &self.text[t.start..t.end]
    }

    /// Text from the start of token `a` to the end of token `b` (inclusive).
    pub fn span(&self, a: usize, b: usize) -> &'a str {
        &self.text[self.toks[a].start..self.toks[b].end]
    }

    /// Index of the token closing the bracket opened at `open` (or the last token).
    pub fn matching(&self, open: usize) -> usize {
        let mut depth = 0i32;
        for i in open..self.toks.len() {
            match self.toks[i].kind {
                Kind::Punct(b'(') | Kind::Punct(b'[') => depth += 1,
                Kind::Punct(b')') | Kind::Punct(b']') => {
                    depth -= 1;
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            }
        }
        self.toks.len().saturating_sub(1)
    }

    /// Splits tokens `from..to` at commas that are not inside brackets.
    pub fn split_commas(&self, from: usize, to: usize) -> Vec<(usize, usize)> {
        let mut parts = Vec::new();
        let mut depth = 0i32;
        let mut start = from;
        for i in from..to {
            match self.toks[i].kind {
                Kind::Punct(b'(') | Kind::Punct(b'[') => depth += 1,
                Kind::Punct(b')') | Kind::Punct(b']') => depth -= 1,
                Kind::Punct(b',') if depth == 0 => {
                    parts.push((start, i));
                    start = i + 1;
                }
                _ => {}
            }
        }
        if start < to {
            parts.push((start, to));
        }
        parts
    }

    /// Index of the first bare word in `names` at bracket depth 0 at or after `from`.
    pub fn find_top(&self, from: usize, names: &[&str]) -> Option<usize> {
        let mut depth = 0i32;
        for i in from..self.toks.len() {
            match self.toks[i].kind {
                Kind::Punct(b'(') | Kind::Punct(b'[') => depth += 1,
                Kind::Punct(b')') | Kind::Punct(b']') => depth -= 1,
                Kind::Word if depth == 0 && names.contains(&self.w(i)) => return Some(i),
                _ => {}
            }
        }
        None
    }

    /// Skips a possibly qualified name (`a`, `a.b`, `"A".b`) starting at `i`,
    /// returning the index after it.
    pub fn skip_name(&self, mut i: usize) -> usize {
        loop {
            if !(self.is(i, Kind::Word) || self.is(i, Kind::QIdent)) {
                return i;
            }
            i += 1;
            if self.is(i, Kind::Punct(b'.')) {
                i += 1;
            } else {
                return i;
            }
        }
    }
}

/// Byte spans of the statements in a query string (split at top-level `;`).
pub fn split_statements(sql: &str) -> Vec<(usize, usize)> {
    let toks = lex(sql);
    let mut spans = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    for t in &toks {
        if t.kind == Kind::Punct(b';') {
            if let Some(s) = start.take() {
                spans.push((s, end));
            }
        } else {
            if start.is_none() {
                start = Some(t.start);
            }
            end = t.end;
        }
    }
    if let Some(s) = start {
        spans.push((s, end));
    }
    spans
}

/// An identifier as PostgreSQL folds it: unquoted lower-cased, quoted verbatim.
pub fn ident(src: &str) -> String {
    if let Some(inner) = src.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        inner.replace("\"\"", "\"")
    } else {
        src.to_ascii_lowercase()
    }
}

/// The value of a string-literal token ('..', E'..', $$..$$).
pub fn string_value(src: &str) -> Vec<u8> {
    if let Some(rest) = src.strip_prefix(['e', 'E']) {
        let inner = rest
            .strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .unwrap_or(rest);
        let b = inner.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() {
                i += 1;
                match b[i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'x' => {
                        let mut v = 0u8;
                        let mut n = 0;
                        while n < 2 && i + 1 < b.len() && b[i + 1].is_ascii_hexdigit() {
                            i += 1;
                            v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0) as u8;
                            n += 1;
                        }
                        out.push(v);
                    }
                    d @ b'0'..=b'7' => {
                        let mut v = (d - b'0') as u32;
                        let mut n = 1;
                        while n < 3 && i + 1 < b.len() && (b'0'..=b'7').contains(&b[i + 1]) {
                            i += 1;
                            v = v * 8 + (b[i] - b'0') as u32;
                            n += 1;
                        }
                        out.push(v as u8);
                    }
                    other => out.push(other),
                }
                i += 1;
            } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\'') {
                out.push(b'\'');
                i += 2;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        return out;
    }
    if let Some(inner) = src.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return inner.replace("''", "'").into_bytes();
    }
    if let Some(after) = src.strip_prefix('$') {
        if let Some(p) = after.find('$') {
            let tag = &src[..p + 2];
            if let Some(inner) = src[tag.len()..].strip_suffix(tag) {
                return inner.as_bytes().to_vec();
            }
        }
    }
    src.as_bytes().to_vec()
}

/// Quotes text as a standard SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
}

#[derive(Clone, Debug)]
pub struct CopyInfo {
    pub from: bool,
    pub stdin: bool,
    /// The table as written (None for `COPY (query) TO`).
    pub table: Option<String>,
    pub columns: Option<Vec<String>>,
    pub format: CopyFormat,
    pub delimiter: u8,
    pub null: Vec<u8>,
}

/// Reads a COPY statement.
pub fn copy_info(text: &str) -> Option<CopyInfo> {
    let s = Stmt::new(text);
    if s.w(0) != "copy" {
        return None;
    }
    let mut i;
    let mut table = None;
    if s.is(1, Kind::Punct(b'(')) {
        i = s.matching(1) + 1;
    } else {
        let end = s.skip_name(1);
        if end == 1 {
            return None;
        }
        table = Some(s.span(1, end - 1).to_string());
        i = end;
    }
    let mut columns = None;
    if s.is(i, Kind::Punct(b'(')) {
        let close = s.matching(i);
        columns = Some(
            (i + 1..close)
                .filter(|&k| s.is(k, Kind::Word) || s.is(k, Kind::QIdent))
                .map(|k| ident(s.src(k)))
                .collect(),
        );
        i = close + 1;
    }
    let from = match s.w(i) {
        "from" => true,
        "to" => false,
        _ => return None,
    };
    let stdin = matches!(s.w(i + 1), "stdin" | "stdout");
    let mut info = CopyInfo {
        from,
        stdin,
        table,
        columns,
        format: CopyFormat::Text,
        delimiter: b'\t',
        null: b"\\N".to_vec(),
    };
    let mut k = i + 2;
    while k < s.toks.len() {
        match s.w(k) {
            "binary" => info.format = CopyFormat::Binary,
            "csv" => {
                info.format = CopyFormat::Csv;
                info.delimiter = b',';
                info.null = Vec::new();
            }
            "format" => {
                let v = if s.is(k + 1, Kind::Str) {
                    String::from_utf8_lossy(&string_value(s.src(k + 1))).to_ascii_lowercase()
                } else {
                    s.w(k + 1).to_string()
                };
                match v.as_str() {
                    "csv" => {
                        info.format = CopyFormat::Csv;
                        info.delimiter = b',';
                        info.null = Vec::new();
                    }
                    "binary" => info.format = CopyFormat::Binary,
                    _ => info.format = CopyFormat::Text,
                }
            }
            w @ ("delimiter" | "null") => {
                let mut v = k + 1;
                if s.w(v) == "as" {
                    v += 1;
                }
                if s.is(v, Kind::Str) {
                    let val = string_value(s.src(v));
                    if w == "delimiter" {
                        if let Some(&d) = val.first() {
                            info.delimiter = d;
                        }
                    } else {
                        info.null = val;
                    }
                }
            }
            _ => {}
        }
        k += 1;
    }
    Some(info)
}

/// Session settings the stand-in keeps on CockroachDB's behalf.
#[derive(Clone, Debug)]
pub struct Session {
    /// `experimental_enable_temp_tables` (default off).
    pub temp_tables: bool,
    /// `copy_from_atomic_enabled` (default on; docs set-vars.md).
    pub copy_atomic: bool,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            temp_tables: false,
            copy_atomic: true,
        }
    }
}

/// Settings the stand-in translates to `crdb_standin.<name>` placeholders.
/// Both are CockroachDB session variables (docs src/current/v25.2/set-vars.md;
/// the temp-table one is named in the hint of the temporary-table error).
const TRANSLATED_VARS: &[&str] = &[
    "experimental_enable_temp_tables",
    "copy_from_atomic_enabled",
];

/// CockroachDB-only session variables (docs set-vars.md) the stand-in cannot emulate.
const CRDB_ONLY_VARS: &[&str] = &[
    "copy_fast_path_enabled",
    "copy_from_retries_enabled",
    "copy_num_retries_per_batch",
    "copy_transaction_quality_of_service",
    "copy_write_pipelining_enabled",
    "expect_and_ignore_not_visible_columns_in_copy",
    "inject_retry_errors_enabled",
    "sql_safe_updates",
    "default_int_size",
    "serial_normalization",
    "autocommit_before_ddl",
    "vectorize",
    "distsql",
    "use_declarative_schema_changer",
    "enable_implicit_select_for_update",
    "disallow_full_table_scans",
    "large_full_scan_rows",
    "transaction_rows_read_err",
    "transaction_rows_written_err",
    "enable_multiregion_placement_policy",
    "enable_experimental_stream_replication",
    "enable_inspect_command",
    "strict_ddl_atomicity",
    "default_transaction_use_follower_reads",
    "null_ordered_last",
    "results_buffer_size",
];

/// `SHOW` forms of CockroachDB (docs show-*.md) that PostgreSQL would read as a setting name.
const CRDB_SHOW: &[&str] = &[
    "ranges",
    "range",
    "zone",
    "zones",
    "jobs",
    "job",
    "create",
    "tables",
    "databases",
    "schemas",
    "columns",
    "indexes",
    "index",
    "keys",
    "constraints",
    "users",
    "roles",
    "grants",
    "sessions",
    "queries",
    "statistics",
    "trace",
    "regions",
    "survival",
    "backup",
    "backups",
    "schedules",
    "changefeed",
    "types",
    "functions",
    "sequences",
    "partitions",
    "locality",
    "full",
    "experimental_fingerprints",
    "statements",
    "transactions",
    "default",
    "commit",
    "session_id",
    "savepoint",
    "enums",
    "triggers",
    "policies",
    "hba",
];

/// A rule that fired while analysing a query, for the events file.
#[derive(Clone, Debug)]
pub struct Fired {
    pub rule: &'static str,
    pub extra: Vec<(&'static str, String)>,
}

fn fired(rule: &'static str) -> Fired {
    Fired {
        rule,
        extra: Vec::new(),
    }
}

fn fired_with(rule: &'static str, key: &'static str, value: impl Into<String>) -> Fired {
    Fired {
        rule,
        extra: vec![(key, value.into())],
    }
}

pub enum Outcome {
    Pass,
    Rewrite(String),
    Refuse(PgError),
}

pub struct Analysis {
    pub outcome: Outcome,
    pub fired: Vec<Fired>,
    /// The session settings after the query, when it is not refused.
    pub session: Session,
}

pub struct Rules<'a> {
    pub version: &'a str,
}

enum StmtOutcome {
    Pass,
    Rewrite(String),
    Refuse(PgError),
}

/// Applies the CockroachDB rules to a query string (several statements for a
/// simple-protocol Query, one for a Parse).
pub fn analyze(sql: &str, session: &Session, rules: &Rules, extended: bool) -> Analysis {
    let mut sess = session.clone();
    let mut fired_all = Vec::new();
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    let mut changed = false;
    for (a, b) in split_statements(sql) {
        match analyze_stmt(&sql[a..b], &mut sess, rules, extended, &mut fired_all) {
            StmtOutcome::Pass => {}
            StmtOutcome::Rewrite(new) => {
                out.push_str(&sql[last..a]);
                out.push_str(&new);
                last = b;
                changed = true;
            }
            StmtOutcome::Refuse(e) => {
                return Analysis {
                    outcome: Outcome::Refuse(e),
                    fired: fired_all,
                    session: session.clone(),
                };
            }
        }
    }
    let outcome = if changed {
        out.push_str(&sql[last..]);
        Outcome::Rewrite(out)
    } else {
        Outcome::Pass
    };
    Analysis {
        outcome,
        fired: fired_all,
        session: sess,
    }
}

fn analyze_stmt(
    text: &str,
    sess: &mut Session,
    rules: &Rules,
    extended: bool,
    log: &mut Vec<Fired>,
) -> StmtOutcome {
    let s = Stmt::new(text);
    if s.toks.is_empty() {
        return StmtOutcome::Pass;
    }
    let first = s.w(0).to_string();

    // COPY FROM over the extended protocol: pkg/sql/pgwire/conn.go handleParse.
    if extended && first == "copy" && copy_info(text).is_some_and(|c| c.from) {
        log.push(fired("copy-extended-refused"));
        return StmtOutcome::Refuse(crdb::copy_from_extended());
    }

    if let Some(name) = pg_only_function(&s) {
        log.push(fired_with(
            "pg-only-function-refused",
            "function",
            name.clone(),
        ));
        return StmtOutcome::Refuse(crdb::unknown_function(&name));
    }

    if let Some(form) = crdb_only_form(&s) {
        log.push(fired_with("crdb-only-refused", "form", form.clone()));
        return StmtOutcome::Refuse(crdb::not_translated(&form, text));
    }

    if matches!(first.as_str(), "set" | "reset" | "show") {
        if let Some(out) = session_var(&s, sess, log) {
            return out;
        }
    }

    if first == "create" && is_create_temp(&s) && !sess.temp_tables {
        log.push(fired("temp-table-refused"));
        return StmtOutcome::Refuse(crdb::temp_tables_disabled());
    }

    if matches!(first.as_str(), "create" | "alter") {
        if let Some((e, name)) = check_types(&s) {
            log.push(fired_with("unsupported-type-refused", "type", name));
            return StmtOutcome::Refuse(e);
        }
    }

    let mut current = std::borrow::Cow::Borrowed(text);
    if let Some(t) = rewrite_version(&s, rules.version) {
        log.push(fired("version-rewritten"));
        current = std::borrow::Cow::Owned(t);
    }
    if first == "delete" {
        match delete_limit(&current) {
            Some(Ok(t)) => {
                log.push(fired("delete-limit-translated"));
                current = std::borrow::Cow::Owned(t);
            }
            Some(Err(form)) => {
                log.push(fired_with("crdb-only-refused", "form", form.clone()));
                return StmtOutcome::Refuse(crdb::not_translated(&form, text));
            }
            None => {}
        }
    }
    match current {
        std::borrow::Cow::Borrowed(_) => StmtOutcome::Pass,
        std::borrow::Cow::Owned(t) => StmtOutcome::Rewrite(t),
    }
}

/// PostgreSQL functions a CockroachDB v25 lacks, which PostgreSQL would run
/// (a denylist; each names its source). Called as `name(`.
const PG_ONLY_FUNCTIONS: &[&str] = &[
    // Added to CockroachDB only by cockroachdb/cockroach#168827 (2026-04,
    // "sql: add PostgreSQL-parity math builtins"), after v25.
    "trim_scale",
    "min_scale",
    "scale",
    // PostgreSQL's internal hash support functions: not in CockroachDB's
    // builtins (docs functions-and-operators.md lists none of them).
    "hashtextextended",
    "hash_record_extended",
    "jsonb_hash_extended",
    "hashint8extended",
    "hashtext",
    // PostgreSQL 10's partition catalog function; CockroachDB has no
    // pg_partition_tree (docs functions-and-operators.md).
    "pg_partition_tree",
];

fn pg_only_function(s: &Stmt) -> Option<String> {
    (0..s.toks.len()).find_map(|i| {
        let w = s.w(i);
        (PG_ONLY_FUNCTIONS.contains(&w) && s.is(i + 1, Kind::Punct(b'('))).then(|| w.to_string())
    })
}

/// CockroachDB-only statement forms (a denylist; each names its docs page).
fn crdb_only_form(s: &Stmt) -> Option<String> {
    let first = s.w(0);
    let second = s.w(1);
    match first {
        // docs upsert.md
        "upsert" => return Some("UPSERT".into()),
        // docs import-into.md, export.md, backup.md, restore.md
        "import" | "export" | "backup" | "restore" => return Some(first.to_ascii_uppercase()),
        // docs create-changefeed.md, changefeed-for.md
        "create" if second == "changefeed" || (second == "schedule" && s.w(2) == "for") => {
            return Some(format!("CREATE {}", second.to_ascii_uppercase()))
        }
        "experimental" if second == "changefeed" => return Some("EXPERIMENTAL CHANGEFEED".into()),
        // docs cancel-job.md, pause-job.md, resume-job.md
        "cancel" | "pause" | "resume"
            if matches!(second, "job" | "jobs" | "schedule" | "schedules" | "all") =>
        {
            return Some(format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            ))
        }
        _ => {}
    }
    // docs cluster-settings.md, set-cluster-setting.md, show-cluster-setting.md
    if matches!(first, "set" | "reset" | "show")
        && second == "cluster"
        && matches!(s.w(2), "setting" | "settings")
    {
        return Some(format!("{} CLUSTER SETTING", first.to_ascii_uppercase()));
    }
    // docs show-ranges.md, show-zone-configurations.md, show-jobs.md, show-tables.md, ...
    if first == "show" && CRDB_SHOW.contains(&second) {
        return Some(format!("SHOW {}", second.to_ascii_uppercase()));
    }
    for i in 0..s.toks.len() {
        let w = s.w(i);
        if w.is_empty() {
            continue;
        }
        // docs as-of-system-time.md
        if w == "as" && s.w(i + 1) == "of" && s.w(i + 2) == "system" && s.w(i + 3) == "time" {
            return Some("AS OF SYSTEM TIME".into());
        }
        // docs crdb-internal.md
        if w == "crdb_internal" && s.is(i + 1, Kind::Punct(b'.')) {
            return Some("crdb_internal.".into());
        }
        // docs functions-and-operators.md (ID generation / cluster functions)
        if matches!(
            w,
            "unique_rowid" | "cluster_logical_timestamp" | "crdb_version"
        ) && s.is(i + 1, Kind::Punct(b'('))
        {
            return Some(format!("{w}()"));
        }
        if w.starts_with("experimental_") && s.is(i + 1, Kind::Punct(b'(')) {
            return Some(format!("{w}()"));
        }
        if first == "alter" {
            // docs alter-table.md / alter-index.md (SPLIT AT, UNSPLIT AT, SCATTER,
            // CONFIGURE ZONE, EXPERIMENTAL_RELOCATE), configure-replication-zones.md
            if matches!(w, "split" | "unsplit") && s.w(i + 1) == "at" {
                return Some(format!("{} AT", w.to_ascii_uppercase()));
            }
            if matches!(w, "scatter" | "experimental_relocate" | "relocate") {
                return Some(w.to_ascii_uppercase());
            }
            if w == "configure" && s.w(i + 1) == "zone" {
                return Some("CONFIGURE ZONE".into());
            }
        }
    }
    None
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Some(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// SET / RESET / SHOW of CockroachDB session variables.
fn session_var(s: &Stmt, sess: &mut Session, log: &mut Vec<Fired>) -> Option<StmtOutcome> {
    let first = s.w(0);
    let mut i = 1;
    if first == "set" && matches!(s.w(1), "session" | "local") {
        i = 2;
    }
    if first == "reset" && s.w(1) == "all" {
        *sess = Session::default();
        return None;
    }
    if !s.is(i, Kind::Word) || s.is(i + 1, Kind::Punct(b'.')) {
        return None;
    }
    let name = s.w(i).to_string();
    if TRANSLATED_VARS.contains(&name.as_str()) {
        let set_value = |sess: &mut Session, v: bool| {
            if name == "experimental_enable_temp_tables" {
                sess.temp_tables = v;
            } else {
                sess.copy_atomic = v;
            }
        };
        let default = name != "experimental_enable_temp_tables";
        match first {
            "set" => {
                let mut v = i + 1;
                if s.w(v) == "to" || s.is(v, Kind::Op) {
                    v += 1;
                }
                if v >= s.toks.len() {
                    return None;
                }
                let raw = s.span(v, s.toks.len() - 1);
                let value = if s.is(v, Kind::Str) {
                    String::from_utf8_lossy(&string_value(raw)).into_owned()
                } else {
                    raw.to_string()
                };
                if value.eq_ignore_ascii_case("default") {
                    set_value(sess, default);
                } else {
                    match parse_bool(value.trim()) {
                        Some(b) => set_value(sess, b),
                        None => {
                            let form = format!("SET {name} = {value} (not a boolean)");
                            log.push(fired_with("crdb-only-refused", "form", form.clone()));
                            return Some(StmtOutcome::Refuse(crdb::not_translated(&form, s.text)));
                        }
                    }
                }
            }
            "reset" => set_value(sess, default),
            _ => {
                let on = if name == "experimental_enable_temp_tables" {
                    sess.temp_tables
                } else {
                    sess.copy_atomic
                };
                log.push(fired_with("session-var-translated", "var", name.clone()));
                return Some(StmtOutcome::Rewrite(format!(
                    "SELECT {}::text AS {name}",
                    literal(if on { "on" } else { "off" })
                )));
            }
        }
        log.push(fired_with("session-var-translated", "var", name.clone()));
        let t = s.toks[i];
        let rewritten = format!(
            "{}crdb_standin.{}{}",
            &s.text[..t.start],
            name,
            &s.text[t.end..]
        );
        return Some(StmtOutcome::Rewrite(rewritten));
    }
    if name.starts_with("experimental_") || CRDB_ONLY_VARS.contains(&name.as_str()) {
        let form = format!("{} {name}", first.to_ascii_uppercase());
        log.push(fired_with("crdb-only-refused", "form", form.clone()));
        return Some(StmtOutcome::Refuse(crdb::not_translated(&form, s.text)));
    }
    None
}

/// CREATE [OR REPLACE] [GLOBAL|LOCAL] TEMP|TEMPORARY TABLE|VIEW|SEQUENCE.
fn is_create_temp(s: &Stmt) -> bool {
    let mut i = 1;
    if s.w(i) == "or" && s.w(i + 1) == "replace" {
        i += 2;
    }
    if matches!(s.w(i), "global" | "local") {
        i += 1;
    }
    matches!(s.w(i), "temp" | "temporary") && matches!(s.w(i + 1), "table" | "view" | "sequence")
}

const COLUMN_END: &[&str] = &[
    "not",
    "null",
    "default",
    "constraint",
    "primary",
    "unique",
    "check",
    "references",
    "collate",
    "generated",
    "using",
    "compression",
    "storage",
];

/// Checks the column type written in tokens `from..to`.
fn check_type_region(s: &Stmt, from: usize, to: usize) -> Option<(PgError, String)> {
    if from >= to {
        return None;
    }
    let end = (from..to)
        .find(|&k| COLUMN_END.contains(&s.w(k)))
        .unwrap_or(to);
    if end <= from {
        return None;
    }
    let mut name_at = from;
    if s.is(from + 1, Kind::Punct(b'.')) && from + 2 < end {
        name_at = from + 2;
    }
    if s.is(name_at, Kind::Word) || s.is(name_at, Kind::QIdent) {
        let name = ident(s.src(name_at));
        if let Some(refusal) = crdb::lookup_type(&name) {
            let label = match (refusal, refusal.issue()) {
                (_, Some(n)) => format!("{name} (cockroachdb/cockroach#{n})"),
                (crdb::TypeRefusal::UndefinedBefore(v), None) => format!("{name} (added in {v})"),
                _ => name.clone(),
            };
            return Some((crdb::unsupported_type(&name, refusal, s.text), label));
        }
    }
    let mut dims = 0;
    let mut depth = 0i32;
    for k in from..end {
        match s.toks[k].kind {
            Kind::Punct(b'[') => {
                if depth == 0 {
                    dims += 1;
                }
                depth += 1;
            }
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b']') | Kind::Punct(b')') => depth -= 1,
            Kind::Word if depth == 0 && s.w(k) == "array" => dims += 1,
            _ => {}
        }
    }
    if dims >= 2 {
        let text = s.span(from, end - 1).to_string();
        return Some((
            crdb::nested_array(&text),
            "multidimensional array (cockroachdb/cockroach#32552)".into(),
        ));
    }
    None
}

const TABLE_ELEMENT_NOT_COLUMN: &[&str] = &[
    "constraint",
    "primary",
    "unique",
    "check",
    "foreign",
    "exclude",
    "like",
];

/// Column types in CREATE TABLE, ALTER TABLE ... ADD COLUMN / ALTER COLUMN TYPE.
fn check_types(s: &Stmt) -> Option<(PgError, String)> {
    if s.w(0) == "create" {
        let table_at = (1..s.toks.len().min(6)).find(|&k| s.w(k) == "table")?;
        let mut i = table_at + 1;
        if s.w(i) == "if" && s.w(i + 1) == "not" && s.w(i + 2) == "exists" {
            i += 3;
        }
        i = s.skip_name(i);
        if !s.is(i, Kind::Punct(b'(')) {
            return None;
        }
        let close = s.matching(i);
        for (a, b) in s.split_commas(i + 1, close) {
            if TABLE_ELEMENT_NOT_COLUMN.contains(&s.w(a)) {
                continue;
            }
            if let Some(hit) = check_type_region(s, a + 1, b) {
                return Some(hit);
            }
        }
        return None;
    }
    if s.w(0) == "alter" && s.w(1) == "table" {
        let mut i = 2;
        if s.w(i) == "if" && s.w(i + 1) == "exists" {
            i += 2;
        }
        if s.w(i) == "only" {
            i += 1;
        }
        i = s.skip_name(i);
        for (a, b) in s.split_commas(i, s.toks.len()) {
            match s.w(a) {
                "add" => {
                    let mut j = a + 1;
                    if s.w(j) == "column" {
                        j += 1;
                    }
                    if s.w(j) == "if" && s.w(j + 1) == "not" && s.w(j + 2) == "exists" {
                        j += 3;
                    }
                    if TABLE_ELEMENT_NOT_COLUMN.contains(&s.w(j)) {
                        continue;
                    }
                    if let Some(hit) = check_type_region(s, j + 1, b) {
                        return Some(hit);
                    }
                }
                "alter" => {
                    let mut j = a + 1;
                    if s.w(j) == "column" {
                        j += 1;
                    }
                    j += 1;
                    if s.w(j) == "set" && s.w(j + 1) == "data" {
                        j += 2;
                    }
                    if s.w(j) == "type" {
                        if let Some(hit) = check_type_region(s, j + 1, b) {
                            return Some(hit);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    None
}

/// Replaces calls of `version()` / `pg_catalog.version()` with CockroachDB's string.
fn rewrite_version(s: &Stmt, version: &str) -> Option<String> {
    let mut edits = Vec::new();
    for i in 0..s.toks.len() {
        if s.w(i) != "version" || !s.is(i + 1, Kind::Punct(b'(')) || !s.is(i + 2, Kind::Punct(b')'))
        {
            continue;
        }
        let mut start = s.toks[i].start;
        if i >= 1 && s.is(i - 1, Kind::Punct(b'.')) {
            if i >= 2 && s.w(i - 2) == "pg_catalog" {
                start = s.toks[i - 2].start;
            } else {
                continue;
            }
        }
        if i >= 1 && matches!(s.w(i - 1), "function" | "procedure" | "routine") {
            continue;
        }
        edits.push((start, s.toks[i + 2].end));
    }
    if edits.is_empty() {
        return None;
    }
    let replacement = format!("(SELECT {}::text AS version)", literal(version));
    let mut out = String::with_capacity(s.text.len() + 100);
    let mut last = 0;
    for (a, b) in edits {
        out.push_str(&s.text[last..a]);
        out.push_str(&replacement);
        last = b;
    }
    out.push_str(&s.text[last..]);
    Some(out)
}

/// CockroachDB's `DELETE FROM t [WHERE p] [ORDER BY o] LIMIT n [RETURNING r]`
/// (docs delete.md: `limit_clause`), in PostgreSQL terms. `Err` names a form
/// that is not translated.
fn delete_limit(text: &str) -> Option<Result<String, String>> {
    let s = Stmt::new(text);
    if s.w(0) != "delete" || s.w(1) != "from" {
        return None;
    }
    let limit = s.find_top(2, &["limit"])?;
    if s.find_top(2, &["using"]).is_some() {
        return Some(Err("DELETE ... USING ... LIMIT".into()));
    }
    let where_at = s.find_top(2, &["where"]);
    let order_at = s.find_top(2, &["order"]);
    let returning_at = s.find_top(2, &["returning"]);
    let clause_starts: Vec<usize> = [where_at, order_at, Some(limit), returning_at]
        .into_iter()
        .flatten()
        .collect();
    let target_end = *clause_starts.iter().min()?;
    if target_end <= 2 {
        return None;
    }
    let end_of = |start: usize| -> usize {
        clause_starts
            .iter()
            .copied()
            .filter(|&c| c > start)
            .min()
            .unwrap_or(s.toks.len())
    };
    let clause = |at: Option<usize>| -> String {
        match at {
            Some(a) => format!(" {}", s.span(a, end_of(a) - 1)),
            None => String::new(),
        }
    };
    let target = s.span(2, target_end - 1);
    Some(Ok(format!(
        "DELETE FROM {target} WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM {target}{}{}{}){}",
        clause(where_at),
        clause(order_at),
        clause(Some(limit)),
        clause(returning_at)
    )))
}

/// Statements outside the retry injector's reach: transaction control, settings, COPY.
pub fn is_control(text: &str) -> bool {
    let s = Stmt::new(text);
    matches!(
        s.w(0),
        "" | "begin"
            | "start"
            | "commit"
            | "end"
            | "rollback"
            | "abort"
            | "savepoint"
            | "release"
            | "set"
            | "reset"
            | "show"
            | "deallocate"
            | "discard"
            | "copy"
            | "listen"
            | "unlisten"
            | "prepare"
    )
}

/// A plain COMMIT (not COMMIT PREPARED).
pub fn is_commit(text: &str) -> bool {
    let spans = split_statements(text);
    if spans.len() != 1 {
        return false;
    }
    let s = Stmt::new(text);
    matches!(s.w(0), "commit" | "end")
        && s.toks.len() <= 3
        && !(1..s.toks.len()).any(|k| s.w(k) == "prepared" || s.w(k) == "and")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sql: &str, sess: &Session) -> Analysis {
        analyze(
            sql,
            sess,
            &Rules {
                version: "CockroachDB CCL v25.2.4",
            },
            false,
        )
    }

    fn rewritten(sql: &str) -> String {
        match run(sql, &Session::default()).outcome {
            Outcome::Rewrite(t) => t,
            Outcome::Pass => sql.to_string(),
            Outcome::Refuse(e) => panic!("refused: {}", e.message),
        }
    }

    fn refused(sql: &str) -> PgError {
        match run(sql, &Session::default()).outcome {
            Outcome::Refuse(e) => e,
            _ => panic!("not refused: {sql}"),
        }
    }

    #[test]
    fn lexer_skips_strings_and_comments() {
        let s = Stmt::new(
            "SELECT 'version()' -- version()\n, /* version() */ \"version\"(), $$version()$$",
        );
        assert!(rewrite_version(&s, "x").is_none());
    }

    #[test]
    fn version_call_is_replaced() {
        assert_eq!(
            rewritten("SELECT version()"),
            "SELECT (SELECT 'CockroachDB CCL v25.2.4'::text AS version)"
        );
        assert_eq!(
            rewritten("select pg_catalog.version() as v"),
            "select (SELECT 'CockroachDB CCL v25.2.4'::text AS version) as v"
        );
    }

    #[test]
    fn delete_limit_translates() {
        assert_eq!(
            rewritten("DELETE FROM t WHERE a > 1 LIMIT 5"),
            "DELETE FROM t WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM t WHERE a > 1 LIMIT 5)"
        );
        assert_eq!(
            rewritten("DELETE FROM s.t AS x ORDER BY id LIMIT $1 RETURNING id"),
            "DELETE FROM s.t AS x WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM s.t AS x ORDER BY id LIMIT $1) RETURNING id"
        );
        assert_eq!(
            rewritten("DELETE FROM t WHERE a IN (SELECT b FROM u LIMIT 1)"),
            "DELETE FROM t WHERE a IN (SELECT b FROM u LIMIT 1)"
        );
    }

    #[test]
    fn temp_tables_follow_the_session_setting() {
        assert_eq!(refused("CREATE TEMP TABLE t (a int)").code, "XCEXF");
        let a = run(
            "SET experimental_enable_temp_tables = 'on'",
            &Session::default(),
        );
        assert!(a.session.temp_tables);
        match a.outcome {
            Outcome::Rewrite(t) => {
                assert_eq!(t, "SET crdb_standin.experimental_enable_temp_tables = 'on'")
            }
            _ => panic!(),
        }
        assert!(matches!(
            run("CREATE TEMPORARY TABLE t (a int)", &a.session).outcome,
            Outcome::Pass
        ));
        let r = run("RESET experimental_enable_temp_tables", &a.session);
        assert!(!r.session.temp_tables);
    }

    #[test]
    fn unsupported_types() {
        assert_eq!(refused("CREATE TABLE t (a int, b xml)").code, "0A000");
        assert_eq!(refused("CREATE TABLE t (a money NOT NULL)").code, "0A000");
        assert_eq!(refused("CREATE TABLE t (a citext)").code, "42704");
        assert_eq!(
            refused("create table t (r pg_catalog.int4range)").code,
            "42704"
        );
        assert_eq!(
            refused("ALTER TABLE t ADD COLUMN r tstzrange").code,
            "42704"
        );
        assert_eq!(
            refused("ALTER TABLE t ALTER COLUMN r TYPE daterange").code,
            "42704"
        );
        assert_eq!(
            refused("ALTER TABLE t ALTER r SET DATA TYPE numeric(10,2)[][]").code,
            "XXUUU"
        );
        assert!(matches!(
            run(
                "CREATE TABLE t (money numeric(10,2), xml text[], CHECK (money > 0))",
                &Session::default()
            )
            .outcome,
            Outcome::Pass
        ));
    }

    #[test]
    fn crdb_only_forms() {
        for sql in [
            "UPSERT INTO t VALUES (1)",
            "SELECT * FROM t AS OF SYSTEM TIME '-1s'",
            "SHOW RANGES FROM TABLE t",
            "SELECT * FROM crdb_internal.ranges",
            "ALTER TABLE t SPLIT AT VALUES (1)",
            "SET CLUSTER SETTING kv.rangefeed.enabled = true",
            "SET experimental_something = on",
            "SET sql_safe_updates = false",
        ] {
            assert_eq!(refused(sql).code, "XX000", "{sql}");
        }
        assert!(matches!(
            run("SHOW TRANSACTION ISOLATION LEVEL", &Session::default()).outcome,
            Outcome::Pass
        ));
    }

    #[test]
    fn pg_only_functions() {
        for (sql, name) in [
            ("SELECT trim_scale(d)::text FROM t", "trim_scale"),
            (
                "SELECT sum(hashtextextended(t::text, 0)) FROM t",
                "hashtextextended",
            ),
            (
                "SELECT HASH_RECORD_EXTENDED(ROW(a), 0) FROM t",
                "hash_record_extended",
            ),
        ] {
            let e = refused(sql);
            assert_eq!(e.code, "42883", "{sql}");
            assert_eq!(e.message, format!("unknown function: {name}()"), "{sql}");
        }
        // A column named like one, or the name in a string, passes.
        for sql in ["SELECT scale FROM t", "SELECT 'trim_scale(x)'"] {
            assert!(
                matches!(run(sql, &Session::default()).outcome, Outcome::Pass),
                "{sql}"
            );
        }
    }

    #[test]
    fn copy_statements() {
        let c = copy_info("COPY public.\"T\" (a, \"B\") FROM STDIN WITH (FORMAT csv, NULL 'x')")
            .unwrap();
        assert!(c.from && c.stdin);
        assert_eq!(c.table.as_deref(), Some("public.\"T\""));
        assert_eq!(c.columns, Some(vec!["a".to_string(), "B".to_string()]));
        assert_eq!(c.format, CopyFormat::Csv);
        assert_eq!(c.null, b"x");
        let c = copy_info("copy t from stdin delimiter E'\\x01'").unwrap();
        assert_eq!(c.delimiter, 1);
        let c = copy_info("COPY (SELECT 1) TO STDOUT").unwrap();
        assert!(!c.from);
        assert!(matches!(
            analyze(
                "COPY t FROM STDIN",
                &Session::default(),
                &Rules { version: "v" },
                true
            )
            .outcome,
            Outcome::Refuse(_)
        ));
        assert!(matches!(
            analyze(
                "COPY t TO STDOUT",
                &Session::default(),
                &Rules { version: "v" },
                true
            )
            .outcome,
            Outcome::Pass
        ));
    }

    #[test]
    fn commit_detection() {
        assert!(is_commit("COMMIT"));
        assert!(is_commit("end transaction;"));
        assert!(!is_commit("COMMIT PREPARED 'x'"));
        assert!(!is_commit("COMMIT; SELECT 1"));
    }
}
