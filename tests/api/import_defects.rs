//! The import defects found against data sets outside the repository, each
//! with the data shape that showed it.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use questline::import::{self, Options, Report};
use questline::schema::{library_entries, users};

use crate::helpers::{new_client, spawn_app, TestApp};

const HEADER: &str =
    "appid,game_name,playtime_forever,achievement_api_name,achievement_name,achievement_description,achieved,unlock_time";

fn pbkdf2(password: &str, salt: &str) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), 1000, &mut out);
    format!("pbkdf2:sha256:1000${salt}${}", hex::encode(out))
}

/// A legacy directory with `users` (name, password) and library files
/// (name, body after the header).
fn legacy_dir(users: &[(&str, &str)], files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("questline-defects-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let json: serde_json::Map<String, serde_json::Value> = users
        .iter()
        .enumerate()
        .map(|(i, (name, pw))| {
            let email = format!("user{i}@example.com");
            (name.to_string(), serde_json::json!({"password_hash": pbkdf2(pw, &format!("salt{i}")), "email": email}))
        })
        .collect();
    std::fs::write(dir.join("users.json"), serde_json::to_vec(&json).unwrap()).unwrap();
    for (name, body) in files {
        write_library(&dir, name, body);
    }
    dir
}

fn write_library(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(format!("{name}_steam_library_with_achievements.csv")), body).unwrap();
}

fn run(app: &TestApp, dir: &Path) -> Report {
    let mut conn = app.pool.get().unwrap();
    import::run(
        &mut conn,
        &app.settings,
        &Options { dir: dir.to_owned(), dry_run: false, progress: false, loading: Default::default() },
    )
    .unwrap()
}

fn sources(report: &Report, words: &str) -> Vec<String> {
    report.events.iter().filter(|e| e.reason.contains(words)).map(|e| e.source.clone()).collect()
}

#[actix_web::test]
async fn rows_in_crlf_files_are_reported_on_their_real_line_with_or_without_a_bom() {
    let app = spawn_app().await;
    let body = format!(
        "{HEADER}\r\n400,Portal,60,A1,One,,1,5\r\n400,Portal,sixty,A2,Two,,1,5\r\n400,\"Portal\",60,A3,\"3\r\nlines\r\nhere\",,0,0\r\n400,Portal,60\r\n"
    );
    let dir = legacy_dir(&[("crlf", "pw"), ("bommed", "pw")], &[("crlf", &body)]);
    write_library(&dir, "bommed", &format!("\u{feff}{body}"));
    let report = run(&app, &dir);
    let file = |name: &str, line: u32| format!("{name}_steam_library_with_achievements.csv:{line}");
    // A bad playtime on line 3; after a quoted field spanning lines 4 to 6,
    // a short row on line 7.
    assert_eq!(sources(&report, "not a whole number"), [file("bommed", 3), file("crlf", 3)], "{report}");
    assert_eq!(sources(&report, "columns instead of"), [file("bommed", 7), file("crlf", 7)], "{report}");
}

#[actix_web::test]
async fn repeated_rows_of_a_game_without_achievements_are_merged_and_every_merge_is_listed() {
    let app = spawn_app().await;
    let dir = legacy_dir(
        &[("zed", "pw")],
        &[("zed", &format!("{HEADER}\r\n556,Z,5,,,,,\r\n556,Z,5,,,,,\r\n556,Z,900,,,,,\r\n"))],
    );
    let report = run(&app, &dir);
    let playtime: i32 = library_entries::table
        .filter(library_entries::appid.eq(556))
        .select(library_entries::playtime_minutes)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(playtime, 900);
    let merges = sources(&report, "merged into one game");
    assert_eq!(merges, ["zed_steam_library_with_achievements.csv:3", "zed_steam_library_with_achievements.csv:4"]);
}

/// Every row of `table` as JSON text, in a stable order.
fn table_rows(app: &TestApp, table: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    let mut conn = app.pool.get().unwrap();
    diesel::sql_query(format!("SELECT row_to_json(t)::text AS row FROM {table} t ORDER BY 1"))
        .load::<Row>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|r| r.row)
        .collect()
}

const TABLES: [&str; 7] = [
    "users",
    "games",
    "game_achievements",
    "library_entries",
    "user_achievements",
    "custom_achievements",
    "steam_accounts",
];

fn snapshot(app: &TestApp) -> Vec<Vec<String>> {
    TABLES.iter().map(|t| table_rows(app, t)).collect()
}

fn game_rows(n: usize) -> String {
    (0..n)
        .map(|i| format!("700,Seven,60,ACH{i},Achievement {i},,{},{}\n", i % 2, if i % 2 == 1 { 1000 + i } else { 0 }))
        .collect()
}

#[actix_web::test]
async fn rolling_back_a_run_leaves_every_table_exactly_as_it_was() {
    let app = spawn_app().await;
    // An earlier run created the game with 15 achievements.
    let first = legacy_dir(&[("one", "pw")], &[("one", &format!("{HEADER}\n{}", game_rows(15)))]);
    run(&app, &first);
    let before = snapshot(&app);
    // A later run adds a sixteenth definition to that game, a new user, and
    // (below) games to the first user's library.
    let second = legacy_dir(&[("one", "pw"), ("two", "pw2")], &[("two", &format!("{HEADER}\n{}", game_rows(16)))]);
    let report = run(&app, &second);
    assert_ne!(snapshot(&app), before);
    let mut conn = app.pool.get().unwrap();
    let count: i32 = questline::schema::games::table
        .find(700)
        .select(questline::schema::games::achievement_count)
        .first(&mut conn)
        .unwrap();
    assert_eq!(count, 16);
    import::rollback(&mut conn, &app.settings, report.run_id.unwrap(), false).unwrap();
    let after = snapshot(&app);
    for (i, table) in TABLES.iter().enumerate() {
        assert_eq!(after[i], before[i], "{table} is exactly as before the run");
    }
}

#[actix_web::test]
async fn a_file_skipped_by_one_run_is_imported_by_a_later_one_once_fixed_and_rolls_back_alone() {
    let app = spawn_app().await;
    let good = format!("{HEADER}\n400,Portal,60,A1,One,,1,5\n620,Portal 2,30,B1,Bee,,0,0\n");
    let dir = legacy_dir(&[("fixme", "pw")], &[("fixme", &good.replacen("appid", "app_id", 1))]);
    let first = run(&app, &dir);
    assert!(!sources(&first, "not the expected header").is_empty());
    let before = snapshot(&app);

    write_library(&dir, "fixme", &good);
    let second = run(&app, &dir);
    assert_eq!(second.counts["library_entries"].imported, 2, "{second}");
    assert_eq!(second.counts["library_entries"].already_present, 0, "{second}");
    assert_eq!(second.counts["users"].already_present, 1);
    let mut conn = app.pool.get().unwrap();
    let n: i64 = library_entries::table.count().get_result(&mut conn).unwrap();
    assert_eq!(n, 2, "present means present");

    let third = run(&app, &dir);
    assert!(third.imported_nothing(), "{third}");
    assert_eq!(third.counts["library_entries"].already_present, 2);

    // Rolling back the second run removes its entries, not the user.
    import::rollback(&mut conn, &app.settings, second.run_id.unwrap(), false).unwrap();
    assert_eq!(snapshot(&app), before);
}

#[actix_web::test]
async fn a_rename_takes_the_first_suffix_free_of_every_name_existing_or_incoming() {
    let app = spawn_app().await;
    let dir = legacy_dir(&[("A", "pw-upper"), ("a", "pw-lower"), ("a-2", "pw-dash")], &[]);
    let report = run(&app, &dir);
    let mut conn = app.pool.get().unwrap();
    let mut names: Vec<(String, Option<String>)> =
        users::table.select((users::username, users::legacy_username)).load(&mut conn).unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            ("A".to_owned(), Some("A".to_owned())),
            ("a-2".to_owned(), Some("a-2".to_owned())),
            ("a-3".to_owned(), Some("a".to_owned()))
        ]
    );
    assert_eq!(sources(&report, "renamed to").len(), 1);
    // Each name signs in to its own account.
    for (login, password) in [("a-2", "pw-dash"), ("a-3", "pw-lower"), ("A", "pw-upper")] {
        assert_eq!(app.login_with(&new_client(), login, password).await.status(), 303, "{login}");
    }
    assert_eq!(app.login_with(&new_client(), "a-2", "pw-lower").await.status(), 401);
}

#[actix_web::test]
async fn a_dry_run_writes_nothing_not_even_the_schema_or_a_run_number() {
    let app = spawn_app().await;
    let dir = legacy_dir(&[("dry", "pw")], &[("dry", &format!("{HEADER}\n400,Portal,60,A1,One,,1,5\n"))]);
    let bin = env!("CARGO_BIN_EXE_questline");
    // On a database without the schema it stops with a clear message.
    let empty = crate::helpers::create_empty_database();
    let out = std::process::Command::new(bin)
        .args(["import-legacy", "--dry-run"])
        .arg(&dir)
        .envs(&app.env)
        .env("DATABASE_URL", &empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("questline migrate"), "{stderr}");
    let mut conn = diesel::PgConnection::establish(&empty).unwrap();
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let tables = diesel::sql_query("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'")
        .get_result::<N>(&mut conn)
        .unwrap();
    assert_eq!(tables.n, 0, "no migration was applied");

    // On a migrated one it uses up no run number.
    let out =
        std::process::Command::new(bin).args(["import-legacy", "--dry-run"]).arg(&dir).envs(&app.env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let real = run(&app, &dir);
    assert_eq!(real.run_id, Some(1));
}
