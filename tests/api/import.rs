use std::collections::HashMap;
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use questline::import::{self, Options, Report};
use questline::schema::{steam_accounts, users};

use crate::helpers::{location, new_client, spawn_app, TestApp};

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("questline-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the repository's copy of generate.py; returns the directory and
/// the counts a correct import must report.
pub(crate) fn generate(users: u32) -> (PathBuf, HashMap<String, u64>) {
    let out = temp_dir("legacy").join("data");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy/generate.py");
    let status = std::process::Command::new("python3")
        .args([script, "--out", out.to_str().unwrap(), "--users", &users.to_string(), "--games", "60"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs generate.py");
    assert!(status.success());
    let expected = std::fs::read(out.with_extension("expected.json")).unwrap();
    (out, serde_json::from_slice(&expected).unwrap())
}

fn import(app: &TestApp, dir: &Path, dry_run: bool) -> Report {
    let mut conn = app.pool.get().unwrap();
    import::run(
        &mut conn,
        &app.settings,
        &Options { dir: dir.to_owned(), dry_run, progress: false, loading: Default::default() },
    )
    .unwrap()
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Rows in `table`.
#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(app: &TestApp, table: &str) -> i64 {
    let mut conn = app.pool.get().unwrap();
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result::<N>(&mut conn).unwrap().n
}

async fn login(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    app.login_with(&new_client(), name, password).await
}

fn stored_hash(app: &TestApp, name: &str) -> Option<String> {
    let mut conn = app.pool.get().unwrap();
    users::table.filter(users::username.eq(name)).select(users::password_hash).first(&mut conn).unwrap()
}

#[actix_web::test]
async fn a_generated_directory_imports_with_the_expected_counts_reruns_as_a_no_op_and_rolls_back() {
    let app = spawn_app().await;
    let (dir, expected) = generate(40);
    let report = import(&app, &dir, false);
    for (kind, n) in &expected {
        assert_eq!(report.counts[kind.as_str()].imported, *n, "{kind}: {report}");
        assert_eq!(report.counts[kind.as_str()].skipped, 0, "{kind}: {report}");
    }
    assert!(report.events.iter().all(|e| e.kind == "games"), "only game-name changes in generated data: {report}");
    assert_eq!(count(&app, "users"), expected["users"] as i64);
    assert_eq!(count(&app, "library_entries"), expected["library_entries"] as i64);
    assert_eq!(count(&app, "custom_achievements"), expected["custom_achievements"] as i64);
    assert_eq!(count(&app, "community_achievements"), expected["shared_achievements"] as i64);
    assert!(count(&app, "user_achievements") > 0);
    let mut conn = app.pool.get().unwrap();
    let keys: Vec<Vec<u8>> =
        steam_accounts::table.select(steam_accounts::api_key_enc.assume_not_null()).load(&mut conn).unwrap();
    assert!(!keys.is_empty());

    // Old passwords work (PBKDF2 and scrypt), and are replaced by argon2id.
    let mut names = Vec::new();
    for prefix in ["pbkdf2:%", "scrypt:%"] {
        let mut some: Vec<String> = users::table
            .filter(users::password_hash.like(prefix))
            .select(users::username)
            .order(users::id)
            .limit(2)
            .load(&mut conn)
            .unwrap();
        assert_eq!(some.len(), 2, "the generated set has {prefix} hashes");
        names.append(&mut some);
    }
    for name in &names {
        let res = login(&app, name, &format!("pw-{name}")).await;
        assert_eq!(location(&res), "/dashboard", "{name} signs in with the old password");
        assert!(stored_hash(&app, name).unwrap().starts_with("$argon2id$"), "{name}'s hash was upgraded");
    }
    assert_eq!(login(&app, &names[0], "wrong password entirely").await.status(), 401);

    let again = import(&app, &dir, false);
    assert!(again.imported_nothing(), "{again}");
    for (kind, n) in &expected {
        assert_eq!(again.counts[kind.as_str()].already_present, *n, "{kind} on the second run");
    }
    assert_eq!(count(&app, "users"), expected["users"] as i64);

    let files_before = app.stored_files().len();
    assert!(files_before > 0);
    let run_id = report.run_id.unwrap();
    // Some imported users signed in above: their owners' use is named, and
    // nothing goes without --force.
    let refused = import::rollback(&mut conn, &app.settings, run_id, false).unwrap_err().to_string();
    assert!(
        refused.contains("used since") && refused.contains("signed in") && refused.contains("--force"),
        "{refused}"
    );
    assert_eq!(count(&app, "users"), expected["users"] as i64, "nothing was done");
    let done = import::rollback(&mut conn, &app.settings, run_id, true).unwrap();
    let forced: i64 = diesel::sql_query("SELECT count(*) AS n FROM audit_log WHERE action = 'rollback_forced'")
        .get_result::<Count>(&mut app.pool.get().unwrap())
        .unwrap()
        .n;
    assert_eq!(forced, 1, "a forced rollback is audited");
    assert_eq!(done.users as u64, expected["users"]);
    for (table, n) in [
        ("users", count(&app, "users")),
        ("games", count(&app, "games")),
        ("custom", count(&app, "custom_achievements")),
        ("shared", count(&app, "community_achievements")),
        ("unlocks", count(&app, "user_achievements")),
        ("blobs", count(&app, "image_blobs")),
    ] {
        assert_eq!(n, 0, "{table} after rollback");
    }
    assert!(app.stored_files().is_empty(), "image files removed");
    assert!(import::rollback(&mut conn, &app.settings, run_id, false).is_err(), "a run rolls back once");
    // The second run added nothing, so rolling it back removes nothing.
    let nothing = import::rollback(&mut conn, &app.settings, again.run_id.unwrap(), false).unwrap();
    assert_eq!(nothing.users, 0);
}

#[actix_web::test]
async fn a_dry_run_reports_what_a_real_run_does_and_writes_nothing() {
    let app = spawn_app().await;
    let (dir, _) = generate(15);
    let dry = import(&app, &dir, true);
    assert!(dry.dry_run && dry.run_id.is_none());
    assert_eq!(count(&app, "users"), 0);
    assert_eq!(count(&app, "import_runs"), 0);
    assert!(app.stored_files().is_empty());
    let real = import(&app, &dir, false);
    assert_eq!(dry.counts, real.counts);
    assert_eq!(dry.events, real.events);
}

#[actix_web::test]
async fn a_failure_midway_leaves_nothing_behind_and_a_rerun_completes() {
    let app = spawn_app().await;
    let (dir, expected) = generate(12);
    // Make the last step (shared achievements) fail, after users and
    // libraries were written inside the transaction.
    let mut conn = app.pool.get().unwrap();
    diesel::sql_query("ALTER TABLE community_achievements ADD CONSTRAINT test_boom CHECK (tries_count < 0)")
        .execute(&mut conn)
        .unwrap();
    let err = import::run(
        &mut conn,
        &app.settings,
        &Options { dir: dir.clone(), dry_run: false, progress: false, loading: Default::default() },
    );
    assert!(err.is_err());
    assert_eq!(count(&app, "users"), 0);
    assert_eq!(count(&app, "library_entries"), 0);
    assert_eq!(count(&app, "import_runs"), 0);
    diesel::sql_query("ALTER TABLE community_achievements DROP CONSTRAINT test_boom").execute(&mut conn).unwrap();
    let report = import(&app, &dir, false);
    assert_eq!(report.counts["users"].imported, expected["users"]);
    assert_eq!(count(&app, "users"), expected["users"] as i64);
}

#[actix_web::test]
async fn the_command_exits_non_zero_when_the_directory_cannot_be_imported_and_writes_a_json_report() {
    let app = spawn_app().await;
    let mut env = crate::helpers::test_env();
    env.insert("DATABASE_URL".into(), secrecy::ExposeSecret::expose_secret(&app.settings.database_url).to_owned());
    env.insert("UPLOAD_DIR".into(), app.settings.upload_dir.to_string_lossy().into_owned());
    let bin = env!("CARGO_BIN_EXE_questline");
    let empty = temp_dir("empty");
    let out = std::process::Command::new(bin).arg("import-legacy").arg(&empty).envs(&env).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("users.json is missing"));

    let (dir, expected) = generate(5);
    let report = temp_dir("report").join("report.json");
    let out = std::process::Command::new(bin)
        .arg("import-legacy")
        .arg(&dir)
        .arg("--report")
        .arg(&report)
        .envs(&env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("users") && text.contains("run "), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["counts"]["users"]["imported"], expected["users"]);
    let run_id = json["run_id"].as_i64().unwrap();
    let out = std::process::Command::new(bin)
        .args(["import-legacy", "--rollback", &run_id.to_string()])
        .envs(&env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(count(&app, "users"), 0);
}

#[actix_web::test]
async fn an_import_a_dry_run_or_a_rollback_is_refused_while_another_runs() {
    use diesel::Connection;
    let app = spawn_app().await;
    let (dir, _) = generate(5);
    let first = import(&app, &dir, false);
    let mut running = app.pool.get().unwrap();
    let mut other = app.pool.get().unwrap();
    running
        .transaction::<_, diesel::result::Error, _>(|running| {
            // Another run holds the lock for its whole transaction.
            assert!(import::model::try_lock_imports(running)?);
            for dry_run in [false, true] {
                let err = import::run(
                    &mut other,
                    &app.settings,
                    &Options { dir: dir.clone(), dry_run, progress: false, loading: Default::default() },
                )
                .unwrap_err();
                assert!(err.to_string().contains("in progress"), "{err}");
            }
            let err = import::rollback(&mut other, &app.settings, first.run_id.unwrap(), false).unwrap_err();
            assert!(err.to_string().contains("in progress"), "{err}");
            Ok(())
        })
        .unwrap();
    assert_eq!(count(&app, "import_runs"), 1, "the refused runs left nothing");
    // Once it has finished, the next one goes ahead.
    let rolled = import::rollback(&mut other, &app.settings, first.run_id.unwrap(), false).unwrap();
    assert_eq!(rolled.users, 5);
}
