use diesel::prelude::*;
use questline::models::game::{Game, NewGame};
use questline::schema::{community_achievements, library_entries, users};

use crate::achievements::{create, synced_alice};
use crate::helpers::{html, location, new_client, text_of, TestApp};
use crate::images::png;
use crate::steam::PASSWORD;

/// Bob, in his own browser, with 150 hours of Dota 2 in his library.
async fn bob(app: &TestApp) -> reqwest::Client {
    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&bob, "bob", PASSWORD).await;
    let mut conn = app.pool.get().unwrap();
    Game::upsert_many(&mut conn, &[NewGame { appid: 570, name: "Dota 2", icon_hash: None }]).unwrap();
    let bob_id: i64 = users::table.filter(users::username.eq("bob")).select(users::id).first(&mut conn).unwrap();
    diesel::insert_into(library_entries::table)
        .values((
            library_entries::user_id.eq(bob_id),
            library_entries::appid.eq(570),
            library_entries::playtime_minutes.eq(9000),
        ))
        .execute(&mut conn)
        .unwrap();
    bob
}

fn counts(app: &TestApp, id: i64) -> (i32, i32) {
    let mut conn = app.pool.get().unwrap();
    community_achievements::table
        .find(id)
        .select((community_achievements::tries_count, community_achievements::completions_count))
        .first(&mut conn)
        .unwrap()
}

fn community_id(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    community_achievements::table
        .select(community_achievements::id)
        .order(community_achievements::id.desc())
        .first(&mut conn)
        .unwrap()
}

async fn share(app: &TestApp, id: i64) {
    let res = app.submit("/achievements", &format!("/achievements/{id}/share"), &[]).await;
    assert_eq!(location(&res), "/achievements");
}

#[actix_web::test]
async fn importing_counts_a_try_and_meeting_it_counts_a_completion() {
    let (app, _fake) = synced_alice().await;
    let id = create(&app, &[("name", "Centurion"), ("condition_type", "playtime"), ("hours", "100"), ("games", "570")])
        .await;
    share(&app, id).await;
    let shared = community_id(&app);
    assert_eq!(counts(&app, shared), (0, 0), "the creator meeting it is not a community completion");

    // Visitors may browse, not import.
    let visitor = html(new_client().get(app.url("/community")).send().await.unwrap()).await;
    let listing = text_of(&visitor, "#community").unwrap();
    assert!(listing.contains("Centurion") && listing.contains("Sign in to add it"), "{listing}");

    let bob = bob(&app).await;
    let page = html(bob.get(app.url("/community")).send().await.unwrap()).await;
    let listing = text_of(&page, "#community").unwrap();
    assert!(listing.contains("Centurion") && listing.contains("by alice"), "{listing}");
    let res = app.submit_with(&bob, "/community", &format!("/community/{shared}/import"), &[]).await;
    assert_eq!(location(&res), "/achievements");
    assert_eq!(counts(&app, shared), (1, 1), "bob's 150 hours meet it at once");
    let mine = bob.get(app.url("/achievements")).send().await.unwrap().text().await.unwrap();
    assert!(mine.contains("Centurion") && mine.contains("150 of 100 hours") || mine.contains("Achieved"), "{mine}");

    // A second import is refused and counts nothing.
    let res = app.submit_with(&bob, "/community", &format!("/community/{shared}/import"), &[]).await;
    assert_eq!(location(&res), "/community");
    assert_eq!(counts(&app, shared), (1, 1));
    // Alice cannot import her own.
    app.submit("/community", &format!("/community/{shared}/import"), &[]).await;
    assert_eq!(counts(&app, shared), (1, 1));
}

#[actix_web::test]
async fn sharing_needs_a_verified_email() {
    let (app, _fake) = synced_alice().await;
    let id = create(&app, &[("name", "Ten"), ("condition_type", "playtime"), ("hours", "10")]).await;
    let mut conn = app.pool.get().unwrap();
    diesel::update(users::table)
        .set(users::email_verified_at.eq(None::<chrono::DateTime<chrono::Utc>>))
        .execute(&mut conn)
        .unwrap();
    let list = html(app.get("/achievements").await).await;
    assert!(text_of(&list, "#verify-to-share").is_some());
    let res = app.submit("/achievements", &format!("/achievements/{id}/share"), &[]).await;
    assert_eq!(location(&res), "/achievements");
    assert_eq!(community_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
}

#[actix_web::test]
async fn text_is_stored_as_written_and_always_shown_escaped() {
    let (app, _fake) = synced_alice().await;
    let name = "<script>alert('x')</script> & <b>bold</b>";
    let id = create(&app, &[("name", name), ("condition_type", "playtime"), ("hours", "10")]).await;
    share(&app, id).await;
    let mut conn = app.pool.get().unwrap();
    let stored: String = community_achievements::table.select(community_achievements::name).first(&mut conn).unwrap();
    assert_eq!(stored, name);
    for page in ["/achievements", "/community"] {
        let body = app.get(page).await.text().await.unwrap();
        assert!(!body.contains("<script>alert") && !body.contains("<b>bold"), "{page} escapes the name");
        let doc = scraper::Html::parse_document(&body);
        assert_eq!(text_of(&doc, ".achievement-name").as_deref(), Some(name), "{page} shows it as text");
    }
}

#[actix_web::test]
async fn the_list_searches_sorts_and_pages() {
    let (app, _fake) = synced_alice().await;
    for i in 0..23 {
        let id =
            create(&app, &[("name", &format!("Goal {i:02}")), ("condition_type", "playtime"), ("hours", "1")]).await;
        share(&app, id).await;
    }
    let mut conn = app.pool.get().unwrap();
    let tried = community_achievements::table
        .filter(community_achievements::name.eq("Goal 05"))
        .select(community_achievements::id)
        .first::<i64>(&mut conn)
        .unwrap();
    diesel::update(community_achievements::table.find(tried))
        .set(community_achievements::tries_count.eq(9))
        .execute(&mut conn)
        .unwrap();

    let names = |doc: &scraper::Html| -> Vec<String> {
        doc.select(&scraper::Selector::parse("#community .achievement-name").unwrap())
            .map(|n| n.text().collect())
            .collect()
    };
    let first = html(app.get("/community").await).await;
    assert_eq!(text_of(&first, "#shared-count").as_deref(), Some("23 shared achievement(s)"));
    let list = names(&first);
    assert_eq!((list.len(), list[0].as_str()), (20, "Goal 22"), "newest first, 20 a page");
    let second = html(app.get("/community?sort=newest&page=2").await).await;
    assert_eq!(names(&second), ["Goal 02", "Goal 01", "Goal 00"]);
    let by_tries = html(app.get("/community?sort=tried").await).await;
    assert_eq!(names(&by_tries)[0], "Goal 05");
    let found = html(app.get("/community?q=goal+1").await).await;
    assert_eq!(names(&found).len(), 10, "Goal 10 to Goal 19");
    let literal = html(app.get("/community?q=%25").await).await;
    assert!(names(&literal).is_empty(), "a typed % is a literal character");
}

#[actix_web::test]
async fn unsharing_hides_it_and_a_deleted_creator_shows_as_a_deleted_user() {
    let (app, _fake) = synced_alice().await;
    let one = create(&app, &[("name", "Kept"), ("condition_type", "playtime"), ("hours", "1")]).await;
    let two = create(&app, &[("name", "Withdrawn"), ("condition_type", "playtime"), ("hours", "1")]).await;
    let img = app
        .submit_multipart(
            "/achievements/new",
            "/achievements",
            &[("name", "Pictured"), ("condition_type", "playtime"), ("hours", "1")],
            Some(("image", "p.png", png(32, 32, 9))),
        )
        .await;
    assert_eq!(img.status(), 303);
    let three = crate::achievements::newest_id(&app);
    for id in [one, two, three] {
        share(&app, id).await;
    }
    app.submit("/achievements", &format!("/achievements/{two}/unshare"), &[]).await;
    let listing = text_of(&html(app.get("/community").await).await, "#community").unwrap();
    assert!(listing.contains("Kept") && !listing.contains("Withdrawn"));

    let visitor_thumb = {
        let doc = html(app.get("/community").await).await;
        let sel = scraper::Selector::parse("#community img.badge").unwrap();
        doc.select(&sel).next().unwrap().value().attr("src").unwrap().to_owned()
    };
    let bob = bob(&app).await;
    assert_eq!(bob.get(app.url(&visitor_thumb)).send().await.unwrap().status(), 200, "shared images are public");

    let mut conn = app.pool.get().unwrap();
    diesel::delete(users::table.filter(users::username.eq("alice"))).execute(&mut conn).unwrap();
    let page = html(bob.get(app.url("/community")).send().await.unwrap()).await;
    let listing = text_of(&page, "#community").unwrap();
    assert!(listing.contains("Kept") && listing.contains("by deleted user"), "{listing}");
    assert_eq!(
        bob.get(app.url(&visitor_thumb)).send().await.unwrap().status(),
        200,
        "the shared copy outlives its creator"
    );
}
