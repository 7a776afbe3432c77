//! The raw SQL statements in `src`, checked against the migrated schema
//! before anything runs them: the text of each `sql_query("…")` (or of the
//! `const` it names, or a `format!` of such constants) is prepared on a
//! fresh copy of the template database with the parameter types of its
//! `.bind::<T, _>` chain, as diesel would send it, and the binds must
//! match the placeholders in number. A renamed column, a type that no
//! longer fits or a typo in a statement no test happens to reach fails
//! here.
//!
//! Not covered: statements built with `format!` from runtime values (a
//! sort order or table name from a fixed list), which are counted and may
//! only become fewer; `dsl::sql` fragments inside typed queries; and
//! `batch_execute` utility scripts. Those are reached by the tests of the
//! pages and commands that run them.

use std::path::Path;

use diesel::prelude::*;

use crate::helpers::{create_test_database, database_url};

/// One `sql_query` call found in the source.
#[derive(Debug)]
struct Found {
    at: String,
    /// The statement, when the source holds it whole.
    sql: Option<String>,
    /// PostgreSQL types of the binds that follow it.
    binds: Vec<String>,
}

/// Reads the Rust string literal at the start of `s` (plain or raw);
/// returns its value and the length of its source text.
fn string_literal(s: &str) -> Option<(String, usize)> {
    if let Some(rest) = s.strip_prefix('r') {
        let hashes = rest.chars().take_while(|c| *c == '#').count();
        let body = rest[hashes..].strip_prefix('"')?;
        let close = format!("\"{}", "#".repeat(hashes));
        let end = body.find(&close)?;
        return Some((body[..end].to_owned(), 1 + hashes + 1 + end + close.len()));
    }
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 2)),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                '\n' => {
                    // A line continuation skips the next line's indent.
                    while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                        chars.next();
                    }
                }
                'u' => {
                    let hex: String = chars.by_ref().map(|(_, c)| c).skip(1).take_while(|c| *c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => panic!("unexpected escape \\{other}"),
            },
            c => out.push(c),
        }
    }
    None
}

/// A diesel SQL type as PostgreSQL names it (`Array<BigInt>` → `int8[]`).
fn pg_type(diesel: &str) -> String {
    let t = diesel.trim().trim_start_matches("diesel::sql_types::");
    if let Some(inner) = t.strip_prefix("Nullable<").and_then(|r| r.strip_suffix('>')) {
        return pg_type(inner);
    }
    if let Some(inner) = t.strip_prefix("Array<").and_then(|r| r.strip_suffix('>')) {
        return format!("{}[]", pg_type(inner));
    }
    match t {
        "BigInt" => "int8",
        "Integer" => "int4",
        "SmallInt" => "int2",
        "Text" => "text",
        "Bool" => "bool",
        "Timestamptz" => "timestamptz",
        "Timestamp" => "timestamp",
        "Date" => "date",
        "Double" => "float8",
        "Float" => "float4",
        "Jsonb" => "jsonb",
        "Binary" => "bytea",
        "Uuid" => "uuid",
        other => panic!("no PostgreSQL name for the SQL type {other}: add it to pg_type"),
    }
    .to_owned()
}

/// The `.bind::<T, _>` types in `chain` (the code after a statement, up to
/// the call that runs it), in order.
fn bind_types(chain: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = chain[from..].find(".bind::<") {
        let start = from + i + ".bind::<".len();
        // The type ends at the `,` that is not inside its own `<…>`.
        let mut depth = 0;
        let mut end = start;
        for (k, c) in chain[start..].char_indices() {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                ',' if depth == 0 => {
                    end = start + k;
                    break;
                }
                _ => {}
            }
        }
        out.push(pg_type(&chain[start..end]));
        from = end;
    }
    out
}

/// `template` (a `format!` string) with each `{NAME}` replaced by the
/// value of that constant in `file` (a `&str` or an integer); `None` when
/// a placeholder is anything else (a positional `{}`, a local variable).
fn with_constants(file: &str, template: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}')?;
        let name = &rest[open + 1..close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return None;
        }
        let at = file.find(&format!("const {name}: "))?;
        let value = file[at..].split_once('=')?.1.trim_start();
        match string_literal(value) {
            Some((s, _)) => out.push_str(&s),
            None => {
                // An integer constant, as format! would print it.
                let digits: String = value.split(';').next()?.trim().replace('_', "");
                let suffixes = ["i64", "i32", "i16", "i8", "u64", "u32", "u16", "u8", "isize", "usize"];
                let digits = suffixes.iter().find_map(|t| digits.strip_suffix(t)).unwrap_or(&digits);
                let n = match digits.strip_prefix("0x") {
                    Some(hex) => i64::from_str_radix(hex, 16).ok()?,
                    None => digits.parse::<i64>().ok()?,
                };
                out.push_str(&n.to_string());
            }
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn statements() -> Vec<Found> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    for path in crate::helpers::rust_files(&root) {
        let text = std::fs::read_to_string(&path).unwrap();
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        for (i, _) in text.match_indices("sql_query(") {
            let line = text[..i].matches('\n').count() + 1;
            let after = text[i + "sql_query(".len()..].trim_start();
            let (sql, used) = match string_literal(after) {
                Some((sql, used)) => (Some(sql), used),
                None if after.starts_with("format!(") => {
                    let inner = &after["format!(".len()..];
                    match string_literal(inner.trim_start()) {
                        Some((template, n)) => {
                            let used = "format!(".len() + (inner.len() - inner.trim_start().len()) + n;
                            (with_constants(&text, &template), used)
                        }
                        None => (None, 0),
                    }
                }
                None => {
                    // A constant of this file: `sql_query(EVALUATE_SQL)`.
                    let name: String = after.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
                    let value = (!name.is_empty() && after[name.len()..].starts_with(')'))
                        .then(|| text.find(&format!("const {name}: &str =")))
                        .flatten()
                        .and_then(|at| {
                            let rest = &text[at..];
                            string_literal(rest[rest.find('=').unwrap() + 1..].trim_start()).map(|(s, _)| s)
                        });
                    (value, name.len())
                }
            };
            let rest = &after[used..];
            let end = [".execute(", ".load", ".get_result", ".first(", ";"]
                .iter()
                .filter_map(|stop| rest.find(stop))
                .min()
                .unwrap_or(rest.len());
            let binds = if sql.is_some() { bind_types(&rest[..end]) } else { Vec::new() };
            out.push(Found { at: format!("src/{rel}:{line}"), sql, binds });
        }
    }
    out
}

#[test]
fn string_literals_are_read_as_rust_reads_them() {
    let (s, n) = string_literal("\"SELECT \\\"a\\\",\\n  x \\\n      FROM t\" rest").unwrap();
    assert_eq!(s, "SELECT \"a\",\n  x FROM t");
    assert_eq!(n, "\"SELECT \\\"a\\\",\\n  x \\\n      FROM t\"".len());
    assert_eq!(string_literal("r#\"a \"b\" c\"# x").unwrap(), ("a \"b\" c".to_owned(), 12));
    assert_eq!(
        bind_types(".bind::<Array<BigInt>, _>(ids).bind::<diesel::sql_types::Nullable<Text>, _>(n)"),
        ["int8[]", "text"]
    );
}

/// The highest `$N` in `sql`: how many parameters diesel must bind.
fn highest_placeholder(sql: &str) -> usize {
    sql.match_indices('$')
        .filter_map(|(i, _)| {
            let digits: String = sql[i + 1..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// Kinds of statement PREPARE takes; the others (DDL, LOCK, ANALYZE, DO,
/// SET) are utility statements, run by the tests that reach them.
fn preparable(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
    ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "VALUES"].contains(&first.as_str())
}

#[test]
fn every_raw_statement_prepares_against_the_migrated_schema() {
    let found = statements();
    let db = create_test_database();
    let mut conn = PgConnection::establish(&database_url(&db)).unwrap();
    let mut failures = Vec::new();
    let (mut prepared, mut utility, mut built) = (0, Vec::new(), Vec::new());
    for (n, f) in found.iter().enumerate() {
        let Some(sql) = &f.sql else {
            built.push(f.at.clone());
            continue;
        };
        if !preparable(sql) {
            utility.push(f.at.clone());
            continue;
        }
        let placeholders = highest_placeholder(sql);
        if !f.binds.is_empty() && f.binds.len() != placeholders {
            failures.push(format!("{}: {} bind(s) for ${placeholders} placeholder(s)", f.at, f.binds.len()));
            continue;
        }
        let types = if f.binds.is_empty() { String::new() } else { format!("({})", f.binds.join(", ")) };
        match diesel::sql_query(format!("PREPARE raw_{n}{types} AS {sql}")).execute(&mut conn) {
            Ok(_) => prepared += 1,
            Err(e) => {
                failures.push(format!("{}: {e}\n    {}", f.at, sql.split_whitespace().collect::<Vec<_>>().join(" ")))
            }
        }
    }
    println!(
        "{} raw statements: {prepared} prepared, {} utility statements, {} built with format!:",
        found.len(),
        utility.len(),
        built.len()
    );
    for at in &built {
        println!("  built: {at}");
    }
    assert!(failures.is_empty(), "statements the schema refuses:\n{}", failures.join("\n"));
    // A ratchet: statements may move from `built` to checked, not back.
    assert!(prepared >= 108, "only {prepared} statements prepared (108 before): is one now built with format!?");
    assert!(built.len() <= 24, "{} statements built with format! (24 before): {built:?}", built.len());
    drop(conn);
    let mut admin = PgConnection::establish(&database_url("postgres")).unwrap();
    diesel::sql_query(format!("DROP DATABASE \"{db}\" WITH (FORCE)")).execute(&mut admin).unwrap();
}
