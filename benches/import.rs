//! Legacy import budget: `./scripts/bench --bench import` (or `cargo bench
//! --bench import` with DATABASE_URL set).
//!
//! Generates (once, under var/bench/) the data set of `generate.py --users
//! N` (N from IMPORT_BENCH_USERS, default 10,000: about 10 million library
//! rows), imports it into a fresh database, and prints the time, the peak
//! memory of the importing process, the counts against the generator's
//! expected ones, a no-op second run, and the rollback time.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use diesel::prelude::*;
use questline::import::{self, Options};
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

fn main() {
    let users: u32 = std::env::var("IMPORT_BENCH_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("var/bench");
    let dir = root.join(format!("legacy-{users}"));
    let expected_file = root.join(format!("legacy-{users}.expected.json"));
    if !expected_file.exists() {
        eprintln!("generating the legacy data set for {users} users (once)…");
        let status = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy/generate.py"))
            .args(["--out", dir.to_str().unwrap(), "--users", &users.to_string()])
            .status()
            .expect("python3 runs generate.py");
        assert!(status.success());
    }
    let expected: HashMap<String, u64> = serde_json::from_slice(&std::fs::read(&expected_file).unwrap()).unwrap();
    let bytes: u64 =
        std::fs::read_dir(&dir).unwrap().flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();

    let db = format!("questline_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&common::server_url("postgres")).expect("PostgreSQL reachable");
    diesel::sql_query(format!("CREATE DATABASE \"{db}\"")).execute(&mut admin).unwrap();
    let uploads = std::env::temp_dir().join(&db);
    let mut env = common::app_env(&db);
    env.insert("REDIS_URL".into(), "redis://127.0.0.1:1".into());
    env.insert("UPLOAD_DIR".into(), uploads.to_string_lossy().into_owned());
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
    let mut conn = PgConnection::establish(&common::server_url(&db)).unwrap();
    questline::db::run_migrations(&mut conn).unwrap();

    let before = peak_mib();
    let opts = Options { dir: dir.clone(), dry_run: false, progress: true };
    let started = Instant::now();
    let report = import::run(&mut conn, &settings, &opts).expect("the import succeeds");
    let took = started.elapsed().as_secs_f64();
    let peak = peak_mib();

    println!("legacy import of {users} users ({:.0} MiB of files)", bytes as f64 / 1_048_576.0);
    println!("  import: {took:.1} s (budget 180 s), peak memory {peak:.0} MiB (budget 1024; {before:.0} MiB before)");
    for (kind, c) in &report.counts {
        let want = expected.get(*kind).copied().unwrap_or(0);
        let mark = if c.imported == want { "ok" } else { "MISMATCH" };
        println!("  {kind:<22} imported {:>10}  expected {want:>10}  {mark}", c.imported);
    }
    let unlocks: i64 = questline::schema::user_achievements::table.count().get_result(&mut conn).unwrap();
    println!("  unlock rows written: {unlocks}; report events: {}", report.events.len());

    let started = Instant::now();
    let again = import::run(&mut conn, &settings, &Options { progress: false, ..opts }).unwrap();
    println!("  second run: {:.1} s, imported nothing: {}", started.elapsed().as_secs_f64(), again.imported_nothing());

    let started = Instant::now();
    let done = import::rollback(&mut conn, &settings, report.run_id.unwrap(), false).unwrap();
    println!("  rollback: {:.1} s (budget 300 s), removed {} users", started.elapsed().as_secs_f64(), done.users);

    drop(conn);
    diesel::sql_query(format!("DROP DATABASE \"{db}\" WITH (FORCE)")).execute(&mut admin).unwrap();
    let _ = std::fs::remove_dir_all(uploads);
}
