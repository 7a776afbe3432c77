//! Your data: the export and deleting your own account.

use std::io::Read;

use diesel::prelude::*;
use questline::schema::{community_achievements, users};

use crate::achievements::{create, synced_alice};

/// Signs out and in again: the password confirmed while linking Steam
/// counts for that session only.
async fn fresh_session(app: &TestApp) {
    app.submit("/dashboard", "/logout", &[]).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
}
use crate::helpers::{location, TestApp};
use crate::steam::PASSWORD;

fn read_zip(bytes: Vec<u8>) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP file");
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).unwrap();
        out.insert(f.name().unwrap().into_owned(), buf);
    }
    out
}

/// The signed-in user's data export, password confirmed, as its files.
pub(crate) async fn export(app: &TestApp) -> std::collections::BTreeMap<String, Vec<u8>> {
    confirm_password(app, "/account/data/export").await;
    let res = app.get("/account/data/export").await;
    assert_eq!(res.status(), 200);
    read_zip(res.bytes().await.unwrap().to_vec())
}

async fn confirm_password(app: &TestApp, next: &str) {
    let res = crate::two_factor::reauth(app, &app.client, next, &[("password", PASSWORD)]).await;
    assert_eq!(res.status(), 303);
}

#[actix_web::test]
async fn the_export_needs_the_password_and_holds_the_library_unlocks_goals_and_images() {
    let (app, _fake) = synced_alice().await;
    // Linking asked for the password; a new session has not.
    fresh_session(&app).await;
    let res = crate::images::create_with_image(&app, "badge.png", crate::images::png(64, 64, 7)).await;
    assert_eq!(res.status(), 303);
    create(
        &app,
        &[("name", "Portal Master"), ("condition_type", "complete_games"), ("games", "400"), ("games", "620")],
    )
    .await;

    let res = app.get("/account/data/export").await;
    assert!(location(&res).starts_with("/account/reauth"), "the password first: {}", location(&res));
    confirm_password(&app, "/account/data/export").await;
    let res = app.get("/account/data/export").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let disposition = res.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment") && disposition.contains("questline-alice-"), "{disposition}");
    let files = read_zip(res.bytes().await.unwrap().to_vec());

    let doc: serde_json::Value = serde_json::from_slice(&files["questline.json"]).unwrap();
    assert_eq!(doc["format"], "questline-export");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["account"]["username"], "alice");
    assert_eq!(doc["steam"]["steam_id"], crate::steam::STEAM_ID.to_string());
    assert_eq!(doc["library"].as_array().unwrap().len(), 3);
    assert_eq!(doc["unlocks"].as_array().unwrap().len(), 4);
    assert_eq!(doc["totals"]["points"], 165 + 1286 + 464 + 9050);
    let goals = doc["goals"].as_array().unwrap();
    assert_eq!(goals.len(), 2);
    let with_image = goals.iter().find(|g| !g["image"].is_null()).expect("a goal with its image");
    let image = with_image["image"].as_str().unwrap();
    assert!(files.contains_key(image), "{image} is in the archive");
    assert!(files[image].len() > 100, "the image's bytes");
    let raw = String::from_utf8_lossy(&files["questline.json"]);
    assert!(!raw.contains(crate::steam::KEY), "no Steam key");
    assert!(!raw.contains("argon2"), "no password hash");

    let library = String::from_utf8(files["library.csv"].clone()).unwrap();
    let mut lines = library.lines();
    assert_eq!(
        lines.next(),
        Some("appid,name,playtime_minutes,unlocked,achievements,points,last_played_at,last_unlock_at")
    );
    assert_eq!(lines.count(), 3);
    let unlocks = String::from_utf8(files["unlocks.csv"].clone()).unwrap();
    assert!(unlocks.starts_with("appid,game,api_name,achievement,unlocked_at,global_percent,points\n"));
    assert!(unlocks.contains("620,Portal 2,B2,B2 title,2022-04-15T"));
    assert_eq!(unlocks.lines().count(), 5);
}

#[actix_web::test]
async fn deleting_your_account_needs_the_password_and_your_username_and_keeps_shared_goals() {
    let (app, _fake) = synced_alice().await;
    // Linking asked for the password; a new session has not.
    fresh_session(&app).await;
    let id = create(&app, &[("name", "Centurion"), ("condition_type", "playtime"), ("hours", "100"), ("games", "570")])
        .await;
    app.submit("/achievements", &format!("/achievements/{id}/share"), &[]).await;

    let res = app.submit("/account/data", "/account/delete", &[("confirm", "alice")]).await;
    assert!(location(&res).starts_with("/account/reauth"), "the password first");
    confirm_password(&app, "/account/data").await;
    let res = app.submit("/account/data", "/account/delete", &[("confirm", "Alice ")]).await;
    assert_eq!(location(&res), "/account/data", "a wrong username deletes nothing");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(users::table.filter(users::username.eq("alice")).count().get_result::<i64>(&mut conn).unwrap(), 1);

    let res = app.submit("/account/data", "/account/delete", &[("confirm", "alice")]).await;
    assert_eq!(location(&res), "/");
    assert_eq!(users::table.filter(users::username.eq("alice")).count().get_result::<i64>(&mut conn).unwrap(), 0);
    assert!(location(&app.get("/dashboard").await).starts_with("/login"), "signed out");
    let creators: Vec<Option<i64>> =
        community_achievements::table.select(community_achievements::creator_id).load(&mut conn).unwrap();
    assert_eq!(creators, [None], "the shared goal stays, by a deleted user");
    let community = app.get("/community").await.text().await.unwrap();
    assert!(community.contains("Centurion"));
    let mail = loop {
        let mail = app.mail.next_email().await;
        if mail.subject.contains("deleted") {
            break mail;
        }
    };
    assert_eq!(mail.to, "alice@example.com");
    assert!(mail.subject.contains("deleted"), "{}", mail.subject);
    assert!(mail.text.contains("shared with the community stay"));
    // The name and address are free again.
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
}
