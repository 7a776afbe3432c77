//! A hand-made legacy directory with one case for each rule of FORMAT.md.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use questline::import::{self, Options, Report};
use questline::schema::{community_achievements, custom_achievements, games, library_entries, steam_accounts, users};

use crate::helpers::{location, new_client, spawn_app, TestApp};
use crate::images::png;

const KEY: &str = "0123456789abcdef0123456789ABCDEF";

fn pbkdf2(password: &str, salt: &str) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), 1000, &mut out);
    format!("pbkdf2:sha256:1000${salt}${}", hex::encode(out))
}

fn scrypt(password: &str, salt: &str) -> String {
    let params = scrypt::Params::new(14, 8, 1, 64).unwrap();
    let mut out = [0u8; 64];
    scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut out).unwrap();
    format!("scrypt:16384:8:1${salt}${}", hex::encode(out))
}

const HEADER: &str =
    "appid,game_name,playtime_forever,achievement_api_name,achievement_name,achievement_description,achieved,unlock_time";

fn write_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("questline-handmade-{}", uuid::Uuid::new_v4().simple()));
    let images = dir.join("static/achievement_images");
    std::fs::create_dir_all(&images).unwrap();
    let users = serde_json::json!({
        "alice": {"password_hash": pbkdf2("pw-alice", "s1"), "email": "alice@example.com",
                  "created_at": "2024-03-02T10:11:12Z"},
        "Alice": {"password_hash": pbkdf2("pw-Alice", "s2"), "email": "ALICE@example.com", "is_admin": true,
                  "created_at": "2024-03-02 10:11:12"},
        "bob_the_builder": {"password_hash": "sha256$abc$def", "email": "not-an-email", "steam_api_key": "xyz",
                            "steam_id": "123"},
        "dave": {"password_hash": scrypt("pw-dave", "salty"), "email": null, "steam_api_key": KEY,
                 "steam_id": "76561197960287930"},
        "erin": {"password_hash": pbkdf2("pw-erin", "s3"), "email": "", "steam_api_key": KEY}
    });
    // A byte-order mark, and all on one line.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec(&users).unwrap());
    std::fs::write(dir.join("users.json"), bytes).unwrap();

    let custom = serde_json::json!({
        "Alice": [
            {"id": "c-portal", "name": "Portal <b>Master</b>", "description": "Finish <script>both</script>",
             "condition_type": "complete_games", "condition_data": {"games": ["400", "620"]},
             "image": "portal.png", "created_at": "2024-05-01 18:00:00", "imported_from": null, "original_creator": null}
        ],
        "dave": [
            {"id": "c-speed", "name": "Speedrun", "description": "", "condition_type": "speedrun",
             "condition_data": {"minutes": 5}, "image": "missing.png", "imported_from": "sh-nope"},
            {"id": "c-fake", "name": "Fake image", "condition_type": "playtime", "condition_data": {"hours": 1},
             "image": "fake.png", "imported_from": "sh-1"}
        ],
        "ghost": [ {"id": "c-ghost", "name": "Nobody's", "condition_type": "playtime", "condition_data": {"hours": 1}} ]
    });
    std::fs::write(dir.join("custom_achievements.json"), serde_json::to_vec_pretty(&custom).unwrap()).unwrap();
    let shared = serde_json::json!([
        {"id": "sh-1", "original_id": "c-portal", "creator": "Alice", "name": "Portal <b>Master</b>",
         "description": "Finish both", "condition_type": "complete_games", "condition_data": {"games": ["400", "620"]},
         "image": "portal.png", "tries_count": 12, "completions_count": 3, "shared_at": "2024-05-02 09:30:00",
         "is_active": true},
        {"id": "sh-2", "original_id": "gone", "creator": "ghost", "name": "Orphan", "description": "",
         "condition_type": "playtime", "condition_data": {"hours": 2}, "image": null, "tries_count": 1,
         "completions_count": 0, "shared_at": "2024-05-02 09:30:00", "is_active": true}
    ]);
    std::fs::write(dir.join("shared_achievements.json"), serde_json::to_vec(&shared).unwrap()).unwrap();

    std::fs::write(images.join("portal.png"), png(16, 16, 200)).unwrap();
    std::fs::write(images.join("fake.png"), b"GIF89a but really text").unwrap();
    std::fs::write(images.join("unused.png"), png(4, 4, 1)).unwrap();

    let csv = |name: &str, body: &str| {
        std::fs::write(dir.join(format!("{name}_steam_library_with_achievements.csv")), format!("{HEADER}{body}"))
            .unwrap();
    };
    // CRLF, a quoted name with a comma, quotes and a line break, a duplicate
    // achievement (the earliest unlock wins), bad rows, a game without
    // achievements.
    csv(
        "Alice",
        "\r\n400,\"Portal\",600,A1,\"First, \"\"one\"\"\",\"multi\nline\",True,200\r\n\
         400,Portal,600,A2,Second,,False,0\r\n\
         400,Portal,600,A1,\"First, \"\"one\"\"\",,1,100\r\n\
         620,Portal 2,60,B1,B one,,1,300\r\n\
         abc,Broken,1,X,x,,1,1\r\n\
         620,Portal 2,sixty,B2,B two,,1,1\r\n\
         620,Portal 2,60\r\n\
         570,Dota 2,6000,,,,,\r\n",
    );
    csv("dave", "\n400,Portal,30,A1,First,,0,0\n");
    csv("erin", "\n400,PORTAL (old),5,A1,First,,1,50\n");
    csv("ghost", "\n400,Portal,1,A1,First,,1,1\n");
    csv("user_with_underscores", "\n10,Counter-Strike,1,,,,,\n");
    dir
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

fn said(report: &Report, source: &str, words: &str) -> bool {
    report.events.iter().any(|e| e.source.contains(source) && e.reason.contains(words))
}

#[actix_web::test]
async fn every_rule_of_the_format_is_applied_and_reported() {
    let app = spawn_app().await;
    let dir = write_dir();
    let report = run(&app, &dir);
    let text = report.to_string();
    let mut conn = app.pool.get().unwrap();

    // Collisions: "Alice" sorts before "alice" and keeps the name.
    let names: Vec<(String, Option<String>)> =
        users::table.select((users::username, users::legacy_username)).order(users::username).load(&mut conn).unwrap();
    assert!(names.contains(&("alice-2".into(), Some("alice".into()))), "{names:?}");
    assert!(names.contains(&("Alice".into(), Some("Alice".into()))));
    assert!(said(&report, "users.json: alice", "renamed to `alice-2`"), "{text}");
    // Emails: case-insensitive duplicates go to the first by username.
    let email = |name: &str| -> Option<String> {
        users::table.filter(users::username.eq(name)).select(users::email).first(&mut app.pool.get().unwrap()).unwrap()
    };
    assert_eq!(email("Alice").as_deref(), Some("alice@example.com"));
    assert_eq!(email("alice-2"), None);
    assert!(said(&report, "users.json: alice", "another account already has it"));
    assert_eq!(email("bob_the_builder"), None);
    assert!(said(&report, "bob_the_builder", "not a valid address"));
    assert_eq!(email("erin"), None, "no placeholder is invented");
    // Unknown hash: no usable password, reported.
    let bob_hash: Option<String> = users::table
        .filter(users::username.eq("bob_the_builder"))
        .select(users::password_hash)
        .first(&mut conn)
        .unwrap();
    assert_eq!(bob_hash, None);
    assert!(said(&report, "bob_the_builder", "unknown format"));
    assert!(said(&report, "bob_the_builder", "steam_api_key dropped"));
    assert!(said(&report, "bob_the_builder", "steam_id `123` dropped"));
    assert!(said(&report, "erin", "kept incomplete: no valid steam_id"));
    // Half a link is kept, the key encrypted, for the user to complete.
    let erin: (Option<i64>, Option<String>) = steam_accounts::table
        .inner_join(users::table)
        .filter(users::username.eq("erin"))
        .select((steam_accounts::steam_id, steam_accounts::api_key_last4))
        .first(&mut conn)
        .unwrap();
    assert_eq!(erin, (None, Some("CDEF".to_owned())));
    // Admin flag, and the key stored encrypted.
    let role: String = users::table.filter(users::username.eq("Alice")).select(users::role).first(&mut conn).unwrap();
    assert_eq!(role, "admin");
    let enc: Vec<Vec<u8>> = steam_accounts::table
        .filter(steam_accounts::steam_id.is_not_null())
        .select(steam_accounts::api_key_enc.assume_not_null())
        .load(&mut conn)
        .unwrap();
    assert_eq!(enc.len(), 1);
    assert!(!enc[0].windows(8).any(|w| w == &KEY.as_bytes()[..8]));

    // Library files: bad rows skipped by line, duplicates merged, unknown
    // users' files skipped, underscores in names.
    // (The file is CRLF with a quoted line break on lines 2-3: these are the
    // lines a text editor shows; earlier versions reported one too low.)
    assert!(said(&report, "Alice_steam_library_with_achievements.csv:7", "not a number"), "{text}");
    assert!(said(&report, "Alice_steam_library_with_achievements.csv:8", "not a whole number"), "{text}");
    assert!(said(&report, "Alice_steam_library_with_achievements.csv:9", "columns"), "{text}");
    assert!(said(&report, "Alice_steam_library_with_achievements.csv:5", "duplicate"), "{text}");
    assert!(said(&report, "ghost_steam_library", "no user `ghost`"));
    assert!(said(&report, "user_with_underscores_steam_library", "no user `user_with_underscores`"));
    let portal: String = games::table.find(400).select(games::name).first(&mut conn).unwrap();
    assert_eq!(portal, "Portal", "the name most files use");
    assert!(said(&report, "appid 400", "PORTAL (old)"));
    let alice_id: i64 = users::table.filter(users::username.eq("Alice")).select(users::id).first(&mut conn).unwrap();
    let entries: Vec<(i64, i32, i32)> = library_entries::table
        .filter(library_entries::user_id.eq(alice_id))
        .select((library_entries::appid, library_entries::playtime_minutes, library_entries::unlocked_count))
        .order(library_entries::appid)
        .load(&mut conn)
        .unwrap();
    assert_eq!(entries, [(400, 600, 1), (570, 6000, 0), (620, 60, 1)]);
    let first_unlock: Option<chrono::DateTime<chrono::Utc>> =
        library_entries::table.find((alice_id, 400)).select(library_entries::last_unlock_at).first(&mut conn).unwrap();
    assert_eq!(first_unlock.unwrap().timestamp(), 100, "the earliest unlock time of the duplicate");
    let a1_name: String = questline::schema::game_achievements::table
        .filter(questline::schema::game_achievements::api_name.eq("A1"))
        .select(questline::schema::game_achievements::display_name)
        .first(&mut conn)
        .unwrap();
    assert_eq!(a1_name, "First, \"one\"");

    // Achievements and images.
    let custom: Vec<(String, bool, Option<i64>, Option<i64>)> = custom_achievements::table
        .select((
            custom_achievements::name,
            custom_achievements::needs_edit,
            custom_achievements::image_id,
            custom_achievements::imported_from,
        ))
        .order(custom_achievements::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(custom.len(), 3);
    assert_eq!(custom[0].0, "Portal <b>Master</b>", "text stored as written");
    assert!(custom[0].2.is_some(), "portal.png imported");
    assert!(custom[1].1 && custom[1].2.is_none() && custom[1].3.is_none(), "speedrun: needs an edit, no image");
    assert!(custom[2].2.is_none() && custom[2].3.is_some(), "fake.png refused; imported_from sh-1 kept");
    assert!(said(&report, "dave/c-speed", "needing an edit"));
    assert!(said(&report, "dave/c-speed", "sh-nope"));
    assert!(said(&report, "dave/c-speed", "missing"));
    assert!(said(&report, "dave/c-fake", "`fake.png` not imported"));
    assert!(said(&report, "ghost/c-ghost", "no user `ghost`"));
    assert_eq!(report.unreferenced_images, 1);
    type SharedRow = (String, Option<i64>, Option<i64>, i32, i32);
    let shared: Vec<SharedRow> = community_achievements::table
        .select((
            community_achievements::name,
            community_achievements::creator_id,
            community_achievements::source_id,
            community_achievements::tries_count,
            community_achievements::completions_count,
        ))
        .order(community_achievements::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(shared[0].1, Some(alice_id));
    assert!(shared[0].2.is_some(), "linked to Alice's achievement");
    assert_eq!((shared[0].3, shared[0].4), (12, 3), "legacy counters kept");
    assert_eq!((shared[1].1, shared[1].2), (None, None), "deleted creator, unlinked");
    assert!(said(&report, "sh-2", "deleted user"));
    assert!(said(&report, "sh-2", "imported unlinked"));

    // Sign-in: scrypt and PBKDF2, an account without email, and a user with
    // an unknown hash who cannot sign in.
    let res = app.login_with(&new_client(), "dave", "pw-dave").await;
    assert_eq!(location(&res), "/dashboard");
    let res = app.login_with(&new_client(), "alice-2", "pw-alice").await;
    assert_eq!(location(&res), "/dashboard", "the renamed user signs in under the new name");
    let res = app.login_with(&new_client(), "Alice", "pw-Alice").await;
    assert_eq!(location(&res), "/dashboard", "an imported, unverified email does not block sign-in");
    assert_eq!(app.login_with(&new_client(), "bob_the_builder", "anything at all").await.status(), 401);

    // The same directory again: nothing new.
    let again = run(&app, &dir);
    assert!(again.imported_nothing(), "{again}");
}

#[actix_web::test]
async fn an_imported_user_is_asked_to_add_and_verify_an_email() {
    let app = spawn_app().await;
    run(&app, &write_dir());
    let dave = new_client();
    app.login_with(&dave, "dave", "pw-dave").await;
    let page = dave.get(app.url("/dashboard")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"add-email\""), "a prompt to add an address");
}
