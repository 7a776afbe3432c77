//! Legacy import fidelity: one rule for names (Unicode case folding and
//! normal forms), a dry run that leaves the database as it was, a rollback
//! that puts back every row the run changed, rows fixed after a skip, and
//! no image files left by a run that did not commit.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use questline::import::{self, Options, Report};
use questline::schema::{custom_achievements, library_entries, user_scores, users};
use serde_json::json;

use crate::helpers::{new_client, spawn_app, TestApp};

const HEADER: &str =
    "appid,game_name,playtime_forever,achievement_api_name,achievement_name,achievement_description,achieved,unlock_time";

fn pbkdf2(password: &str) -> String {
    let salt = "fidelity";
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), 1000, &mut out);
    format!("pbkdf2:sha256:1000${salt}${}", hex::encode(out))
}

/// A legacy directory: users.json as given, library files (name, rows
/// after the header), and optional custom and shared achievements.
fn legacy_dir(
    users: serde_json::Value,
    files: &[(&str, &str)],
    custom: Option<serde_json::Value>,
    shared: Option<serde_json::Value>,
) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("questline-fidelity-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("static/achievement_images")).unwrap();
    std::fs::write(dir.join("users.json"), users.to_string()).unwrap();
    for (name, rows) in files {
        write_library(&dir, name, rows);
    }
    if let Some(c) = custom {
        std::fs::write(dir.join("custom_achievements.json"), c.to_string()).unwrap();
    }
    if let Some(s) = shared {
        std::fs::write(dir.join("shared_achievements.json"), s.to_string()).unwrap();
    }
    dir
}

fn write_library(dir: &Path, name: &str, rows: &str) {
    std::fs::write(dir.join(format!("{name}_steam_library_with_achievements.csv")), format!("{HEADER}\n{rows}"))
        .unwrap();
}

fn user(password: &str) -> serde_json::Value {
    json!({ "password_hash": pbkdf2(password) })
}

fn run(app: &TestApp, dir: &Path, dry_run: bool) -> Report {
    let mut conn = app.pool.get().unwrap();
    import::run(
        &mut conn,
        &app.settings,
        &Options { dir: dir.to_owned(), dry_run, progress: false, loading: Default::default() },
    )
    .unwrap_or_else(|e| panic!("import of {}: {e}", dir.display()))
}

fn said(report: &Report, words: &str) -> Vec<String> {
    report.events.iter().filter(|e| e.reason.contains(words)).map(|e| format!("{}: {}", e.source, e.reason)).collect()
}

fn stored_names(app: &TestApp) -> Vec<String> {
    let mut conn = app.pool.get().unwrap();
    users::table.select(users::username).order(users::username).load(&mut conn).unwrap()
}

#[derive(QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
}

fn texts(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql).load::<Text>(conn).unwrap().into_iter().map(|r| r.t).collect()
}

/// Every table's rows (as JSON text, sorted) and, when `sequences`, every
/// sequence's position; `except` tables are left out.
fn database(app: &TestApp, sequences: bool, except: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut conn = app.pool.get().unwrap();
    let tables = texts(
        &mut conn,
        "SELECT table_name::text AS t FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    let mut out = Vec::new();
    for table in tables.iter().filter(|t| !except.contains(&t.as_str())) {
        let rows = texts(&mut conn, &format!("SELECT row_to_json(x)::text AS t FROM \"{table}\" x ORDER BY 1"));
        out.push((table.clone(), rows));
    }
    if sequences {
        let seqs = texts(
            &mut conn,
            "SELECT sequencename || '=' || coalesce(last_value::text, 'unused') AS t FROM pg_sequences
             WHERE schemaname = 'public' ORDER BY 1",
        );
        out.push(("sequences".into(), seqs));
    }
    out
}

fn assert_same(before: &[(String, Vec<String>)], after: &[(String, Vec<String>)]) {
    assert_eq!(before.len(), after.len());
    for ((table, a), (_, b)) in before.iter().zip(after) {
        assert_eq!(a, b, "{table} is as it was");
    }
}

#[actix_web::test]
async fn names_equal_under_unicode_case_folding_are_renamed_and_every_one_signs_in() {
    let app = spawn_app().await;
    let dir = legacy_dir(
        json!({
            "σασ": user("pw-small"), "ΣΑΣ": user("pw-capital"),
            "i": user("pw-i"), "İ": user("pw-dotted"),
            "ΟΔΥΣΣΕΑΣ": user("pw-odysseus"),
        }),
        &[],
        None,
        None,
    );
    // The dry run used to stop on the unique index; now it reports what
    // the real run does.
    let dry = run(&app, &dir, true);
    let real = run(&app, &dir, false);
    assert_eq!(dry.counts, real.counts);
    assert_eq!(dry.events, real.events);
    assert_eq!(real.counts["users"].imported, 5, "{real}");
    // `ΣΑΣ` sorts first by bytes and keeps its name; `σασ` is renamed.
    assert_eq!(said(&real, "renamed to `σασ-2`").len(), 1, "{real}");
    let names = stored_names(&app);
    assert!(names.contains(&"ΣΑΣ".to_owned()) && names.contains(&"σασ-2".to_owned()), "{names:?}");
    // Under full case folding `İ` is `i̇`, not `i`: both keep their names.
    assert!(names.contains(&"i".to_owned()) && names.contains(&"İ".to_owned()), "{names:?}");

    // Through the sign-in form (a few: it is rate limited per address)...
    for (login, password) in [("σας", "pw-capital"), ("ΣΑΣ-2", "pw-small"), ("οδυσσεας", "pw-odysseus")] {
        assert_eq!(app.login_with(&new_client(), login, password).await.status(), 303, "{login} signs in");
    }
    // ...and every other spelling by the same look-up.
    let mut conn = app.pool.get().unwrap();
    for (login, owner) in [
        ("ΣΑΣ", "ΣΑΣ"),
        ("σασ", "ΣΑΣ"),
        ("σασ-2", "σασ-2"),
        ("i", "i"),
        ("I", "i"),
        ("İ", "İ"),
        ("i\u{307}", "İ"),
        ("ΟΔΥΣΣΕΑΣ", "ΟΔΥΣΣΕΑΣ"),
        ("οδυσσεασ", "ΟΔΥΣΣΕΑΣ"),
    ] {
        let found = questline::models::user::User::find_by_login(&mut conn, login).unwrap().map(|u| u.username);
        assert_eq!(found.as_deref(), Some(owner), "{login}");
    }
    // Registration refuses a name that folds to a taken one.
    assert!(questline::models::user::User::username_taken(&mut conn, "οδυσσεασ").unwrap());
    assert!(!questline::models::user::User::username_taken(&mut conn, "σασ-3").unwrap());
}

#[actix_web::test]
async fn composed_and_decomposed_forms_of_a_name_or_an_address_are_one() {
    let app = spawn_app().await;
    let nfc = "Zo\u{eb}";
    let nfd = "Zoe\u{308}";
    let mut users = serde_json::Map::new();
    users.insert(nfc.into(), user("pw-composed"));
    users.insert(nfd.into(), json!({ "password_hash": pbkdf2("pw-decomposed"), "email": "Jose\u{301}@Example.com" }));
    let dir = legacy_dir(serde_json::Value::Object(users), &[], None, None);
    let report = run(&app, &dir, false);
    assert_eq!(report.counts["users"].imported, 2, "{report}");
    // The decomposed name sorts first by bytes, keeps the name (stored
    // composed), and the report says so; the other one is renamed.
    assert_eq!(said(&report, "NFC").len(), 2, "name and email: {report}");
    assert_eq!(said(&report, "renamed to `Zoë-2`").len(), 1, "{report}");
    let names = stored_names(&app);
    assert_eq!(names, [nfc.to_owned(), format!("{nfc}-2")]);
    let mut conn = app.pool.get().unwrap();
    let email: Option<String> =
        users::table.filter(users::username.eq(nfc)).select(users::email).first(&mut conn).unwrap();
    assert_eq!(email.as_deref(), Some("jos\u{e9}@example.com"), "the address is kept, composed");
    // Typing either form signs in the same account.
    for typed in [nfc, nfd] {
        assert_eq!(app.login_with(&new_client(), typed, "pw-decomposed").await.status(), 303, "{typed:?}");
    }
    assert_eq!(app.login_with(&new_client(), "jos\u{e9}@example.com", "pw-decomposed").await.status(), 303);
    assert_eq!(app.login_with(&new_client(), "jose\u{301}@example.com", "pw-decomposed").await.status(), 303);
}

#[actix_web::test]
async fn names_stored_without_a_key_get_one_at_start_up_and_a_clash_is_renamed() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    // Written by an older node, which knew nothing of keys.
    diesel::sql_query("INSERT INTO users (username, role) VALUES ('σας', 'user'), ('σασ', 'user'), ('Plain', 'user')")
        .execute(&mut conn)
        .unwrap();
    assert!(questline::models::user::User::find_by_login(&mut conn, "plain").unwrap().is_some(), "found the old way");
    questline::models::migrate(&mut conn).unwrap();
    let rows: Vec<(String, Option<String>)> =
        users::table.select((users::username, users::username_key)).order(users::id).load(&mut conn).unwrap();
    assert_eq!(
        rows,
        [
            ("σας".to_owned(), Some("σασ".to_owned())),
            ("σασ-2".to_owned(), Some("σασ-2".to_owned())),
            ("Plain".to_owned(), Some("plain".to_owned())),
        ]
    );
}

#[actix_web::test]
async fn a_dry_run_leaves_every_table_and_every_sequence_as_it_was() {
    let app = spawn_app().await;
    let (dir, _) = crate::import::generate(12);
    // Something here already, so the run has rows to collide with.
    let first = crate::import::generate(4).0;
    run(&app, &first, false);
    let before = database(&app, true, &[]);
    let dry = run(&app, &dir, true);
    assert!(dry.counts["users"].imported > 0 && dry.counts["images"].imported > 0, "{dry}");
    assert_same(&before, &database(&app, true, &[]));
    // And twice over the same directory: still nothing.
    run(&app, &dir, true);
    assert_same(&before, &database(&app, true, &[]));
}

/// Alice was imported by a first run with a goal (3 unlocks), a shared
/// goal, and the only perfect game; a second run brings Carol, raises the
/// game's achievement count, takes the shared goal and meets it, and adds a
/// game to Alice's library that meets her goal.
fn two_runs() -> (PathBuf, PathBuf) {
    let first = legacy_dir(
        json!({ "alice": user("pw-a"), "bob": user("pw-b") }),
        &[
            ("alice", "400,Portal,600,A1,One,,1,1400000000\n400,Portal,600,A2,Two,,1,1400000100\n"),
            ("bob", "400,Portal,60,A1,One,,1,1400000200\n400,Portal,60,A2,Two,,1,1400000300\n"),
        ],
        Some(json!({
            "alice": [{"id": "g-1", "name": "Three", "description": "", "condition_type": "achievement_count",
                       "condition_data": {"count": 3}, "created_at": "2024-01-01 00:00:00"},
                      {"id": "g-2", "name": "Portal", "description": "", "condition_type": "complete_games",
                       "condition_data": {"games": ["400"]}, "created_at": "2024-01-01 00:00:00"}],
            "bob": [{"id": "b-1", "name": "Portal", "description": "", "condition_type": "complete_games",
                     "condition_data": {"games": ["400"]}, "imported_from": "sh-1"}]
        })),
        Some(json!([{ "id": "sh-1", "original_id": "g-2", "creator": "alice", "name": "Portal",
                      "description": "", "condition_type": "complete_games", "condition_data": {"games": ["400"]},
                      "tries_count": 7, "completions_count": 2, "shared_at": "2024-02-01 00:00:00", "is_active": true }])),
    );
    let second = legacy_dir(
        json!({ "alice": user("pw-a"), "carol": user("pw-c") }),
        &[
            ("alice", "620,Portal 2,30,B1,Bee,,1,1500000000\n620,Portal 2,30,B2,Bee two,,0,0\n"),
            (
                "carol",
                "400,Portal,90,A1,One,,1,1600000000\n400,Portal,90,A2,Two,,1,1600000001\n400,Portal,90,A3,Three,,1,1600000002\n",
            ),
        ],
        Some(json!({
            "carol": [{"id": "c-1", "name": "Portal", "description": "", "condition_type": "complete_games",
                       "condition_data": {"games": ["400"]}, "imported_from": "sh-1"}]
        })),
        None,
    );
    (first, second)
}

fn id_of(conn: &mut PgConnection, name: &str) -> i64 {
    users::table.filter(users::username.eq(name)).select(users::id).first(conn).unwrap()
}

#[actix_web::test]
async fn a_rollback_puts_back_every_row_the_run_changed_and_only_keeps_what_the_contract_says() {
    let app = spawn_app().await;
    let (first, second) = two_runs();
    run(&app, &first, false);
    // What a rollback keeps: the run's record (marked rolled back), the
    // ids it used, and version numbers, which only move forward.
    let except = ["import_runs", "user_versions"];
    let before = database(&app, false, &except);
    let mut conn = app.pool.get().unwrap();
    let (alice, bob) = (id_of(&mut conn, "alice"), id_of(&mut conn, "bob"));
    let perfect_of = |conn: &mut PgConnection, id: i64| -> i64 {
        user_scores::table.find(id).select(user_scores::perfect).first(conn).unwrap()
    };
    assert_eq!((perfect_of(&mut conn, alice), perfect_of(&mut conn, bob)), (1, 1));

    let report = run(&app, &second, false);
    assert_eq!(report.counts["users"].imported, 1, "{report}");
    // Portal has a third achievement now: neither Alice's Portal nor Bob's
    // is perfect any more, though the run brought no Portal rows of theirs
    // (and nothing at all of Bob's).
    assert_eq!(
        (perfect_of(&mut conn, alice), perfect_of(&mut conn, bob)),
        (0, 0),
        "perfect games follow the new achievement count"
    );
    let goal: (Option<chrono::DateTime<chrono::Utc>>, f64) = custom_achievements::table
        .filter(custom_achievements::owner_id.eq(alice))
        .filter(custom_achievements::legacy_id.eq("g-1"))
        .select((custom_achievements::met_at, custom_achievements::progress_current))
        .first(&mut conn)
        .unwrap();
    assert!(goal.0.is_some() && goal.1 == 3.0, "the run met Alice's goal: {goal:?}");
    assert_ne!(database(&app, false, &except), before);

    // From a session in another time zone: images still compare equal.
    diesel::sql_query("SET TimeZone = 'Pacific/Auckland'").execute(&mut conn).unwrap();
    import::rollback(&mut conn, &app.settings, report.run_id.unwrap(), false).unwrap();
    assert_same(&before, &database(&app, false, &except));
    // Version rows: the same users; the run's own user's went with them.
    let versions: Vec<i64> = questline::schema::user_versions::table
        .select(questline::schema::user_versions::user_id)
        .order(questline::schema::user_versions::user_id)
        .load(&mut conn)
        .unwrap();
    let mut all: Vec<i64> = users::table.select(users::id).order(users::id).load(&mut conn).unwrap();
    all.retain(|id| versions.contains(id));
    assert_eq!(versions, all, "no version row outlives its user");
}

#[actix_web::test]
async fn a_row_changed_after_the_run_is_worked_out_again_not_overwritten() {
    let app = spawn_app().await;
    let (first, second) = two_runs();
    run(&app, &first, false);
    let report = run(&app, &second, false);
    let mut conn = app.pool.get().unwrap();
    let alice = id_of(&mut conn, "alice");
    // Since the run, Alice's Portal 2 playtime moved (a sync would).
    diesel::update(library_entries::table.find((alice, 620)))
        .set(library_entries::playtime_minutes.eq(45))
        .execute(&mut conn)
        .unwrap();
    diesel::update(library_entries::table.find((alice, 400)))
        .set(library_entries::playtime_minutes.eq(700))
        .execute(&mut conn)
        .unwrap();
    import::rollback(&mut conn, &app.settings, report.run_id.unwrap(), false).unwrap();
    // The Portal entry keeps its new playtime (not the run's before-image),
    // and Alice's numbers are those of what she has now.
    let minutes: i32 =
        library_entries::table.find((alice, 400)).select(library_entries::playtime_minutes).first(&mut conn).unwrap();
    assert_eq!(minutes, 700);
    let (perfect, unlocked): (i64, i64) =
        user_scores::table.find(alice).select((user_scores::perfect, user_scores::unlocked)).first(&mut conn).unwrap();
    assert_eq!((perfect, unlocked), (1, 2));
    let met: Option<chrono::DateTime<chrono::Utc>> = custom_achievements::table
        .filter(custom_achievements::owner_id.eq(alice))
        .filter(custom_achievements::legacy_id.eq("g-1"))
        .select(custom_achievements::met_at)
        .first(&mut conn)
        .unwrap();
    assert_eq!(met, None, "two unlocks do not meet a goal of three");
}

#[actix_web::test]
async fn a_row_skipped_once_and_fixed_later_is_imported_and_the_counts_are_true() {
    let app = spawn_app().await;
    let broken = "400,Portal,600,A1,One,,1,1400000000\n400,Portal,six hundred,A2,Two,,1,1400000100\n400,Portal,600,A3,Three,,0,0\n";
    let dir = legacy_dir(json!({ "dana": user("pw-d") }), &[("dana", broken)], None, None);
    let first = run(&app, &dir, false);
    assert_eq!(first.counts["library_entries"].skipped, 1, "{first}");
    let before = database(&app, false, &["import_runs", "user_versions"]);

    write_library(&dir, "dana", &broken.replace("six hundred", "600"));
    let second = run(&app, &dir, false);
    assert_eq!(second.counts["achievements"].read, 3, "{second}");
    assert_eq!(second.counts["achievements"].already_present, 2, "A1 and A3 were there: {second}");
    assert_eq!(second.counts["achievements"].imported, 1, "A2 was not: {second}");
    let mut conn = app.pool.get().unwrap();
    let dana = id_of(&mut conn, "dana");
    let unlocked: i32 =
        library_entries::table.find((dana, 400)).select(library_entries::unlocked_count).first(&mut conn).unwrap();
    assert_eq!(unlocked, 2);
    let third = run(&app, &dir, false);
    assert!(third.imported_nothing(), "{third}");
    assert_eq!(third.counts["achievements"].already_present, 3, "{third}");

    import::rollback(&mut conn, &app.settings, second.run_id.unwrap(), false).unwrap();
    assert_same(&before, &database(&app, false, &["import_runs", "user_versions"]));
}

#[actix_web::test]
async fn image_files_of_a_run_that_never_committed_are_removed() {
    let app = spawn_app().await;
    let (dir, _) = crate::import::generate(10);
    let mut conn = app.pool.get().unwrap();
    // The last step fails after the images were written.
    diesel::sql_query("ALTER TABLE community_achievements ADD CONSTRAINT test_boom CHECK (tries_count < 0)")
        .execute(&mut conn)
        .unwrap();
    let failed = import::run(
        &mut conn,
        &app.settings,
        &Options { dir: dir.clone(), dry_run: false, progress: false, loading: Default::default() },
    );
    assert!(failed.is_err());
    assert!(app.stored_files().is_empty(), "the failed run's files went with it");
    diesel::sql_query("ALTER TABLE community_achievements DROP CONSTRAINT test_boom").execute(&mut conn).unwrap();

    // A run killed before its commit cannot clean up: the next one does.
    let storage = questline::images::LocalStorage::new(app.settings.upload_dir.clone());
    questline::infra::storage::Storage::put(&storage, "abkilled.png", b"half an import").unwrap();
    diesel::sql_query("INSERT INTO import_files (run_id, storage_key) VALUES (999, 'abkilled.png')")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(app.stored_files().len(), 1);
    let report = run(&app, &dir, false);
    let files = app.stored_files();
    assert!(!files.iter().any(|f| f.ends_with("killed.png")), "{files:?}");
    let mut conn = app.pool.get().unwrap();
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let blobs = diesel::sql_query("SELECT count(*) * 2 AS n FROM image_blobs").get_result::<N>(&mut conn).unwrap().n;
    assert_eq!(files.len() as i64, blobs, "every stored file is named by a row: {report}");
    let records = diesel::sql_query("SELECT count(*) AS n FROM import_files").get_result::<N>(&mut conn).unwrap().n;
    assert_eq!(records, 0, "a committed run forgets its record of files");
}

#[actix_web::test]
async fn many_rows_for_many_users_move_each_users_version_once_per_transaction() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    diesel::sql_query(
        "INSERT INTO users (username, username_key, role)
         SELECT 'v' || i, 'v' || i, 'user' FROM generate_series(1, 300) i",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("INSERT INTO games (appid, name) SELECT g, 'G' || g FROM generate_series(1, 20) g")
        .execute(&mut conn)
        .unwrap();
    let shared_before = texts(&mut conn, "SELECT shared_version()::text AS t");
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        // Two statements over the same users, and one in a savepoint that
        // is rolled back.
        diesel::sql_query(
            "INSERT INTO library_entries (user_id, appid) SELECT u.id, g FROM users u, generate_series(1, 20) g",
        )
        .execute(conn)?;
        diesel::sql_query("UPDATE library_entries SET playtime_minutes = 5").execute(conn)?;
        let _ = conn.transaction::<(), _, _>(|conn| {
            diesel::sql_query("INSERT INTO user_scores (user_id) SELECT id FROM users").execute(conn)?;
            Err(diesel::result::Error::RollbackTransaction)
        });
        Ok(())
    })
    .unwrap();
    let versions =
        texts(&mut conn, "SELECT count(*)::text || ':' || min(version) || ':' || max(version) AS t FROM user_versions");
    assert_eq!(versions, ["300:1:1"], "each user once, whatever the number of rows and statements");
    assert_eq!(texts(&mut conn, "SELECT shared_version()::text AS t"), shared_before, "nothing shared was kept");
    let left = texts(
        &mut conn,
        "SELECT (SELECT count(*) FROM version_pending) || ',' || (SELECT count(*) FROM version_flush) AS t",
    );
    assert_eq!(left, ["0,0"], "nothing is left over after the commit");
    // A shared table moves the shared number once.
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        diesel::sql_query("INSERT INTO user_scores (user_id) SELECT id FROM users").execute(conn)?;
        diesel::sql_query("UPDATE user_scores SET points = 1").execute(conn)
    })
    .unwrap();
    let shared_after: i64 = texts(&mut conn, "SELECT shared_version()::text AS t")[0].parse().unwrap();
    assert_eq!(shared_after, shared_before[0].parse::<i64>().unwrap() + 1);
    let versions =
        texts(&mut conn, "SELECT count(*)::text || ':' || min(version) || ':' || max(version) AS t FROM user_versions");
    assert_eq!(versions, ["300:2:2"]);
}

#[actix_web::test]
async fn an_account_deleted_after_the_run_does_not_stop_its_rollback() {
    let app = spawn_app().await;
    let (first, second) = two_runs();
    run(&app, &first, false);
    let report = run(&app, &second, false);
    let mut conn = app.pool.get().unwrap();
    // Bob (whose perfect Portal the run changed) and Alice (whose library
    // it changed) leave.
    diesel::delete(users::table.filter(users::username.eq_any(["bob", "alice"]))).execute(&mut conn).unwrap();
    import::rollback(&mut conn, &app.settings, report.run_id.unwrap(), false).unwrap();
    let scores: i64 = user_scores::table.count().get_result(&mut conn).unwrap();
    assert_eq!(scores, 0, "no totals are made up for accounts that are gone");
    let names = stored_names(&app);
    assert!(names.is_empty(), "{names:?}");
}

fn run_loading(app: &TestApp, dir: &Path, loading: import::Loading) -> Report {
    let mut conn = app.pool.get().unwrap();
    let opts = Options { dir: dir.to_owned(), dry_run: false, progress: false, loading };
    import::run(&mut conn, &app.settings, &opts).unwrap_or_else(|e| panic!("import of {}: {e}", dir.display()))
}

/// Every index and constraint of the schema, with whether it is valid.
fn catalog(app: &TestApp) -> Vec<String> {
    let mut conn = app.pool.get().unwrap();
    texts(
        &mut conn,
        "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated AS t
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace
         UNION ALL
         SELECT i.indexrelid::regclass || ' ' || pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'public'::regnamespace
         ORDER BY 1",
    )
}

/// What users see of the libraries, scores and goals, without the times
/// rows were written at.
fn what_users_see(app: &TestApp) -> Vec<String> {
    let mut conn = app.pool.get().unwrap();
    let mut out = Vec::new();
    for (table, order) in [
        ("library_entries", "user_id, appid"),
        ("user_achievements", "user_id, achievement_id"),
        ("user_scores", "user_id"),
        ("custom_achievements", "id"),
        ("game_achievements", "id"),
        ("games", "appid"),
    ] {
        out.extend(texts(
            &mut conn,
            &format!(
                "SELECT '{table} ' || (to_jsonb(x) - '{{created_at,updated_at,computed_at,evaluated_at}}'::text[])::text AS t
                 FROM {table} x ORDER BY {order}"
            ),
        ));
    }
    out
}

#[actix_web::test]
async fn a_bulk_load_ends_with_the_schemas_own_indexes_and_the_rows_a_row_by_row_load_writes() {
    let (bulk, rows) = (spawn_app().await, spawn_app().await);
    let schema = catalog(&bulk);
    let (first, second) = two_runs();
    // The second run brings an account from the first (loaded first, with
    // the indexes) and a new one (loaded in bulk).
    for app in [&bulk, &rows] {
        run_loading(app, &first, import::Loading::RowByRow);
    }
    let b = run_loading(&bulk, &second, import::Loading::Bulk);
    let r = run_loading(&rows, &second, import::Loading::RowByRow);
    assert!(b.loaded_in_bulk && !r.loaded_in_bulk, "{b}\n{r}");
    assert_eq!(b.counts, r.counts);
    assert_eq!(catalog(&bulk), schema, "every index and constraint is back, as the migrations made it, and valid");
    assert_eq!(what_users_see(&bulk), what_users_see(&rows));

    // The foreign keys hold again.
    let mut conn = bulk.pool.get().unwrap();
    let orphan = diesel::sql_query("INSERT INTO user_achievements (user_id, achievement_id) VALUES (1, 987654321)")
        .execute(&mut conn);
    assert!(orphan.is_err(), "an unlock of an achievement that does not exist is refused");

    // And a rollback of a bulk run is as exact as any.
    for (app, report) in [(&bulk, &b), (&rows, &r)] {
        let mut conn = app.pool.get().unwrap();
        import::rollback(&mut conn, &app.settings, report.run_id.unwrap(), false).unwrap();
    }
    assert_eq!(what_users_see(&bulk), what_users_see(&rows));
}

#[actix_web::test]
async fn a_bulk_load_that_would_wait_for_someone_elses_lock_loads_row_by_row() {
    // The unlocks themselves, or `users`, which dropping a foreign key to
    // it would lock too.
    for table in ["user_achievements", "users"] {
        let app = spawn_app().await;
        let (first, _) = two_runs();
        // A reader in the middle of a long transaction.
        let mut reader = app.pool.get().unwrap();
        diesel::sql_query("BEGIN ISOLATION LEVEL REPEATABLE READ").execute(&mut reader).unwrap();
        let seen = format!("SELECT count(*)::text AS t FROM {table}");
        let before = texts(&mut reader, &seen);

        let report = run_loading(&app, &first, import::Loading::Bulk);
        assert!(!report.loaded_in_bulk, "reader of {table}: {report}");
        assert_eq!(report.counts["achievements"].imported, 4, "{report}");
        // The reader was never blocked, and its transaction is still usable.
        assert_eq!(texts(&mut reader, &seen), before, "the reader's snapshot predates the import");
        diesel::sql_query("ROLLBACK").execute(&mut reader).unwrap();
        let mut conn = app.pool.get().unwrap();
        assert_eq!(texts(&mut conn, "SELECT count(*)::text AS t FROM user_achievements"), ["4"]);
    }
}
