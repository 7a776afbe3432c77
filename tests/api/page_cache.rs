//! The page cache: a page's data is kept while the user's version is the
//! same, and any committed write to what the page shows, by this process or
//! another, moves that version.

use diesel::prelude::*;
use questline::schema::{instance_settings, library_entries, user_versions, users};

use crate::achievements::synced_alice;
use crate::helpers::{html, new_client, text_of, TestApp};

fn alice_id(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    users::table.filter(users::username.eq("alice")).select(users::id).first(&mut conn).unwrap()
}

fn version_of(app: &TestApp, user_id: i64) -> i64 {
    let mut conn = app.pool.get().unwrap();
    user_versions::table.find(user_id).select(user_versions::version).first(&mut conn).optional().unwrap().unwrap_or(0)
}

/// This process's page cache hits and misses, from /metrics.
async fn lookups(app: &TestApp) -> (u64, u64) {
    let body = new_client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let read = |result: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("questline_cache_lookups{{result=\"{result}\"}} ")))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    (read("hit"), read("miss"))
}

/// The hours column of Portal's row (app 400) in the library.
fn hours_of_portal(doc: &scraper::Html) -> String {
    let row = scraper::Selector::parse("#library tbody tr").unwrap();
    let link = scraper::Selector::parse("a[href='/library/400']").unwrap();
    let hours = scraper::Selector::parse("td[data-label=Hours]").unwrap();
    let portal = doc.select(&row).find(|r| r.select(&link).next().is_some()).expect("Portal is listed");
    portal.select(&hours).next().unwrap().text().collect::<String>().trim().to_owned()
}

#[actix_web::test]
async fn a_second_view_of_an_unchanged_page_is_served_from_memory() {
    let (app, _fake) = synced_alice().await;
    let before = lookups(&app).await;
    let first = app.get("/library?sort=playtime").await.text().await.unwrap();
    let second = app.get("/library?sort=playtime").await.text().await.unwrap();
    let after = lookups(&app).await;
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "one miss, then one hit");
    let rows = |page: &str| html_rows(page);
    assert_eq!(rows(&first), rows(&second));
    assert!(!rows(&first).is_empty());
}

fn html_rows(page: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(page);
    let sel = scraper::Selector::parse("#library tbody tr").unwrap();
    doc.select(&sel).map(|e| e.text().collect::<String>()).collect()
}

#[actix_web::test]
async fn a_write_from_another_process_shows_at_the_next_request() {
    let (app, _fake) = synced_alice().await;
    let alice = alice_id(&app);
    let before = hours_of_portal(&html(app.get("/library").await).await);
    // What a worker process or an import on another node would commit.
    let mut conn = app.pool.get().unwrap();
    diesel::update(library_entries::table.find((alice, 400)))
        .set(library_entries::playtime_minutes.eq(6000))
        .execute(&mut conn)
        .unwrap();
    let after = hours_of_portal(&html(app.get("/library").await).await);
    assert_ne!(before, after);
    assert_eq!(after, "100.0", "6,000 minutes played");
}

#[actix_web::test]
async fn a_version_moves_once_per_committed_transaction_and_never_for_a_rolled_back_one() {
    let (app, _fake) = synced_alice().await;
    let alice = alice_id(&app);
    let start = version_of(&app, alice);
    let mut conn = app.pool.get().unwrap();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        diesel::update(library_entries::table.filter(library_entries::user_id.eq(alice)))
            .set(library_entries::playtime_minutes.eq(library_entries::playtime_minutes + 1))
            .execute(conn)?;
        diesel::update(library_entries::table.filter(library_entries::user_id.eq(alice)))
            .set(library_entries::playtime_minutes.eq(library_entries::playtime_minutes + 1))
            .execute(conn)
    })
    .unwrap();
    assert_eq!(version_of(&app, alice), start + 1, "three rows twice, one transaction: one step");
    let rolled_back = conn.transaction::<(), _, _>(|conn| {
        diesel::update(library_entries::table.filter(library_entries::user_id.eq(alice)))
            .set(library_entries::playtime_minutes.eq(0))
            .execute(conn)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    assert_eq!(version_of(&app, alice), start + 1);
}

#[actix_web::test]
async fn clearing_cached_pages_moves_the_epoch_every_instance_reads() {
    let (app, _bob, _) = crate::admin::admin_and_bob().await;
    app.get("/dashboard").await;
    let res = app.submit("/admin", "/admin/cache/clear", &[]).await;
    assert_eq!(res.status(), 303);
    let mut conn = app.pool.get().unwrap();
    let epoch: i64 = instance_settings::table.select(instance_settings::cache_epoch).first(&mut conn).unwrap();
    assert_eq!(epoch, 1);
    let doc = html(app.get("/admin").await).await;
    assert!(text_of(&doc, ".flash").unwrap_or_default().contains("cleared on every instance"));
}

/// Every page kept under versions, worked out for a synced user with a
/// goal and a pin, for a second user and for a visitor. Test builds run
/// every versioned read through `versions::checked_read`, which refuses a
/// read of any table whose changes move no version: each page answering
/// 200 says everything it reads is watched (or listed with its reason).
#[actix_web::test]
async fn every_kept_page_reads_only_tables_whose_changes_move_a_version() {
    let (app, _fake) = synced_alice().await;
    crate::achievements::create(
        &app,
        &[("name", "Centurion"), ("condition_type", "playtime"), ("hours", "100"), ("games", "570")],
    )
    .await;
    let game = html(app.get("/library/400").await).await;
    let sel = scraper::Selector::parse("#achievements form.pin-form input[name=achievement]").unwrap();
    let first = game.select(&sel).next().unwrap().value().attr("value").unwrap().to_owned();
    app.submit("/library/400", "/pins", &[("achievement", &first), ("action", "pin"), ("next", "/library/400")]).await;
    let public = [("profile_public", "1"), ("show_stats", "1"), ("show_library", "1"), ("on_leaderboard", "1")];
    let res = app.submit("/settings/profile", "/settings/profile", &public).await;
    assert_eq!(crate::helpers::location(&res), "/settings/profile");
    for path in [
        "/dashboard",
        "/library",
        "/library?sort=playtime&page=2",
        "/library/400",
        "/stats",
        "/achievements",
        "/u/alice",
        "/community",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}: {}", res.text().await.unwrap_or_default());
    }
    let visitor = new_client();
    for path in ["/u/alice", "/community"] {
        assert_eq!(visitor.get(app.url(path)).send().await.unwrap().status(), 200, "{path} for a visitor");
    }
}

/// The check itself: with the pins table's version trigger gone, the game
/// page (which shows pins) is refused, where it would otherwise be kept
/// and shown stale after the next pin.
#[actix_web::test]
async fn a_kept_page_that_reads_an_unwatched_table_is_refused_in_test_builds() {
    let (app, _fake) = synced_alice().await;
    assert_eq!(app.get("/library/400").await.status(), 200);
    let mut conn = app.pool.get().unwrap();
    for op in ["ins", "upd", "del"] {
        diesel::sql_query(format!("DROP TRIGGER pins_versions_{op} ON pins")).execute(&mut conn).unwrap();
    }
    // A new version, so the page is worked out again rather than served.
    diesel::sql_query("UPDATE instance_settings SET cache_epoch = cache_epoch + 1").execute(&mut conn).unwrap();
    assert_eq!(app.get("/library/400").await.status(), 500);
}
