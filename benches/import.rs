//! Legacy import: `./scripts/bench --bench import` (or `cargo bench --bench
//! import` with DATABASE_URL set). Data sets are generated once under
//! var/bench/ by `generate.py`.
//!
//! 1. The commit: 10,000, 20,000 and 40,000 users (small libraries), each
//!    into a fresh database; the commit's time must grow linearly.
//! 2. 100,000 users, and 3. about 20 million achievement rows (20,000
//!    users with large libraries), each beside a plain `COPY` of the same
//!    CSV rows into one table in the same run (budget: at most 1.3x), with
//!    the peak memory, the counts against the generator's, a no-op second
//!    run and the rollback.
//!
//! `IMPORT_BENCH=commit,users,rows` picks parts (all by default);
//! `IMPORT_BENCH_SCALE` divides every size (for a quick look).

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use diesel::prelude::*;
use questline::import::{self, Options, Report};
use questline::Settings;

/// Peak resident memory of this process so far, in MiB (Linux).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The data set for `users` users and `games` games (generated once), and
/// the counts a correct import reports.
fn data_set(users: u32, games: u32) -> (PathBuf, HashMap<String, u64>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("var/bench");
    let dir = root.join(format!("legacy-{users}-{games}"));
    let expected_file = root.join(format!("legacy-{users}-{games}.expected.json"));
    if !expected_file.exists() {
        eprintln!("generating the legacy data set for {users} users, {games} games (once)…");
        let status = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy/generate.py"))
            .args(["--out", dir.to_str().unwrap(), "--users", &users.to_string(), "--games", &games.to_string()])
            .args(["--iterations", "1"])
            .status()
            .expect("python3 runs generate.py");
        assert!(status.success());
    }
    (dir, serde_json::from_slice(&std::fs::read(&expected_file).unwrap()).unwrap())
}

/// A fresh, migrated database with its settings.
struct Db {
    name: String,
    settings: Settings,
    conn: PgConnection,
    uploads: PathBuf,
}

fn fresh_db() -> Db {
    let name = format!("questline_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&common::server_url("postgres")).expect("PostgreSQL reachable");
    diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).unwrap();
    let uploads = std::env::temp_dir().join(&name);
    let mut env = common::app_env(&name);
    env.insert("REDIS_URL".into(), "redis://127.0.0.1:1".into());
    env.insert("UPLOAD_DIR".into(), uploads.to_string_lossy().into_owned());
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
    let mut conn = PgConnection::establish(&common::server_url(&name)).unwrap();
    questline::models::migrate(&mut conn).unwrap();
    Db { name, settings, conn, uploads }
}

impl Drop for Db {
    fn drop(&mut self) {
        let mut admin = PgConnection::establish(&common::server_url("postgres")).unwrap();
        let _ = diesel::sql_query(format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name)).execute(&mut admin);
        let _ = std::fs::remove_dir_all(&self.uploads);
    }
}

fn import(db: &mut Db, dir: &Path) -> (Report, f64) {
    let started = Instant::now();
    let opts = Options { dir: dir.to_owned(), dry_run: false, progress: false, loading: Default::default() };
    let report = import::run(&mut db.conn, &db.settings, &opts).expect("the import succeeds");
    (report, started.elapsed().as_secs_f64())
}

/// Every library file's rows (headers left out) through one plain
/// `\copy … FROM STDIN` into a table of text columns, the way an operator
/// would load the files by hand: the floor for writing these rows.
fn plain_copy(dir: &Path) -> (f64, u64) {
    let db = fresh_db();
    let url = common::server_url(&db.name);
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql").args([url.as_str(), "-qtAc", sql]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    psql(
        "CREATE TABLE legacy_rows (appid text, game_name text, playtime_forever text, achievement_api_name text,
                                   achievement_name text, achievement_description text, achieved text, unlock_time text)",
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("_steam_library_with_achievements.csv"))
        .collect();
    files.sort();
    let started = Instant::now();
    let mut child = std::process::Command::new("psql")
        .args([url.as_str(), "-qc", "\\copy legacy_rows FROM STDIN (FORMAT csv)"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let body = bytes.iter().position(|b| *b == b'\n').map(|i| &bytes[i + 1..]).unwrap_or(&[]);
            stdin.write_all(body).unwrap();
            if !body.is_empty() && !body.ends_with(b"\n") {
                stdin.write_all(b"\n").unwrap();
            }
        }
    }
    assert!(child.wait().unwrap().success());
    let took = started.elapsed().as_secs_f64();
    let rows: u64 = psql("SELECT count(*) FROM legacy_rows").parse().unwrap();
    (took, rows)
}

fn steps(report: &Report) -> String {
    report.steps.iter().map(|(s, t)| format!("{s} {t:.1}")).collect::<Vec<_>>().join(", ")
}

fn side_by_side(what: &str, users: u32, games: u32) {
    let (dir, expected) = data_set(users, games);
    let bytes: u64 =
        std::fs::read_dir(&dir).unwrap().flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    let (copy_s, rows) = plain_copy(&dir);
    let mut db = fresh_db();
    let before = peak_mib();
    let (report, took) = import(&mut db, &dir);
    let peak = peak_mib();
    println!("{what}: {users} users, {rows} CSV rows ({:.0} MiB of files)", bytes as f64 / 1_048_576.0);
    println!(
        "  import {took:.1} s (commit {:.2} s) vs plain \\copy of the same rows {copy_s:.1} s: {:.2}x (budget 1.3x)",
        report.commit_seconds,
        took / copy_s
    );
    println!("  peak memory {peak:.0} MiB (budget 1024; {before:.0} MiB before)");
    println!("  loaded in bulk: {}; steps (s): {}", report.loaded_in_bulk, steps(&report));
    for (kind, c) in &report.counts {
        let want = expected.get(*kind).copied().unwrap_or(0);
        let mark = if c.imported == want { "ok" } else { "MISMATCH" };
        println!("  {kind:<22} imported {:>10}  expected {want:>10}  {mark}", c.imported);
    }
    let (again, again_s) = import(&mut db, &dir);
    println!("  second run: {again_s:.1} s, imported nothing: {}", again.imported_nothing());
    println!("  its steps (s): {}", steps(&again));
    let started = Instant::now();
    let done = import::rollback(&mut db.conn, &db.settings, report.run_id.unwrap(), false).unwrap();
    println!("  rollback: {:.1} s, removed {} users", started.elapsed().as_secs_f64(), done.users);
}

fn main() {
    let parts = std::env::var("IMPORT_BENCH").unwrap_or_else(|_| "commit,users,rows".into());
    let scale: u32 = std::env::var("IMPORT_BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    if parts.contains("commit") {
        println!("commit time by number of users (small libraries, one fresh database each):");
        let mut first = None;
        for users in [10_000 / scale, 20_000 / scale, 40_000 / scale] {
            let (dir, _) = data_set(users, 3);
            let mut db = fresh_db();
            let (report, took) = import(&mut db, &dir);
            let per = report.commit_seconds / f64::from(users) * 1e6;
            let base = *first.get_or_insert(per);
            println!(
                "  {users:>6} users: import {took:.1} s, commit {:.2} s ({per:.1} µs per user, {:.2}x the first)",
                report.commit_seconds,
                per / base
            );
        }
    }
    if parts.contains("users") {
        side_by_side("many users", 100_000 / scale, 1);
    }
    if parts.contains("rows") {
        side_by_side("many achievement rows", 20_000 / scale, 60);
    }
}
