//! Public profiles, leaderboards, compare, and the weekly digest.

use diesel::prelude::*;
use questline::schema::{game_achievements, library_entries, user_achievements, user_preferences, users};

use crate::achievements::synced_alice;
use crate::helpers::{html, location, new_client, text_of, TestApp};
use crate::steam::PASSWORD;

fn id_of(app: &TestApp, name: &str) -> i64 {
    let mut conn = app.pool.get().unwrap();
    users::table.filter(users::username.eq(name)).select(users::id).first(&mut conn).unwrap()
}

async fn save_preferences(app: &TestApp, client: &reqwest::Client, ticked: &[&str]) {
    let fields: Vec<(&str, &str)> = ticked.iter().map(|t| (*t, "1")).collect();
    let res = app.submit_with(client, "/settings/profile", "/settings/profile", &fields).await;
    assert_eq!(location(&res), "/settings/profile");
}

/// Bob, signed in on his own client, who owns Portal with one unlock.
pub(crate) async fn bob_with_portal(app: &TestApp) -> reqwest::Client {
    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&bob, "bob", PASSWORD).await;
    let id = id_of(app, "bob");
    let mut conn = app.pool.get().unwrap();
    diesel::insert_into(library_entries::table)
        .values((
            library_entries::user_id.eq(id),
            library_entries::appid.eq(400),
            library_entries::playtime_minutes.eq(90),
            library_entries::unlocked_count.eq(1),
        ))
        .execute(&mut conn)
        .unwrap();
    let a1: i64 = game_achievements::table
        .filter(game_achievements::api_name.eq("A1"))
        .select(game_achievements::id)
        .first(&mut conn)
        .unwrap();
    diesel::insert_into(user_achievements::table)
        .values((user_achievements::user_id.eq(id), user_achievements::achievement_id.eq(a1)))
        .execute(&mut conn)
        .unwrap();
    // A Steam account of his own, proven (only those rank).
    questline::steam::model::SteamAccount::link_proven(&mut conn, id, 76561197960287931, Some("Bob"), None).unwrap();
    questline::rarity::rescore_users(&mut conn, &[id]).unwrap();
    bob
}

#[actix_web::test]
async fn a_profile_is_private_until_its_owner_turns_it_on_and_shows_only_what_they_pick() {
    let (app, _fake) = synced_alice().await;
    let visitor = new_client();
    assert_eq!(visitor.get(app.url("/u/alice")).send().await.unwrap().status(), 404);
    assert_eq!(visitor.get(app.url("/u/nobody")).send().await.unwrap().status(), 404, "the same answer");
    let own = html(app.get("/u/alice").await).await;
    assert!(text_of(&own, "#profile-private").unwrap().contains("Only you can see this page"));

    save_preferences(&app, &app.client, &["profile_public", "show_stats", "show_library"]).await;
    let res = visitor.get(app.url("/u/ALICE")).send().await.unwrap();
    assert_eq!(res.status(), 200, "any case");
    let doc = html(res).await;
    assert!(text_of(&doc, "#profile-private").is_none());
    assert!(text_of(&doc, "#profile-stats").unwrap().contains("10965"));
    assert!(text_of(&doc, "#profile-library").unwrap().contains("Portal 2"));
    assert!(text_of(&doc, "#profile-perfect").is_none(), "perfect games were unticked");
    assert!(text_of(&doc, "#profile-goals").is_none());
    let meta = |p: &str| {
        let sel = scraper::Selector::parse(&format!("meta[property='{p}']")).unwrap();
        doc.select(&sel).next().and_then(|m| m.value().attr("content")).map(str::to_owned)
    };
    assert_eq!(meta("og:title").as_deref(), Some("alice on Questline"));
    assert!(meta("og:description").unwrap().contains("10965 points"));
    assert!(meta("og:url").unwrap().ends_with("/u/alice"));
}

#[actix_web::test]
async fn leaderboards_list_only_those_who_opt_in_and_show_your_own_rank() {
    let (app, _fake) = synced_alice().await;
    let bob = bob_with_portal(&app).await;
    let carol = new_client();
    app.register_verified_with(&carol, "carol", "carol@example.com", PASSWORD).await;
    app.login_with(&carol, "carol", PASSWORD).await;

    let page = html(new_client().get(app.url("/leaderboards")).send().await.unwrap()).await;
    assert!(text_of(&page, "#board-empty").is_some());

    save_preferences(&app, &app.client, &["on_leaderboard"]).await;
    save_preferences(&app, &bob, &["on_leaderboard", "profile_public"]).await;
    let page = html(new_client().get(app.url("/leaderboards?by=points")).send().await.unwrap()).await;
    let sel = scraper::Selector::parse("#leaderboard tbody tr").unwrap();
    let rows: Vec<String> =
        page.select(&sel).map(|r| r.text().flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(rows, ["1 alice 10965", "2 bob 165"]);
    let link = scraper::Selector::parse("#leaderboard a").unwrap();
    let links: Vec<&str> = page.select(&link).map(|a| a.value().attr("href").unwrap()).collect();
    assert_eq!(links, ["/u/bob"], "only public profiles are linked");

    let own = html(bob.get(app.url("/leaderboards?by=perfect")).send().await.unwrap()).await;
    assert!(text_of(&own, "#own-rank").unwrap().contains("#2"));
    let not_listed = html(carol.get(app.url("/leaderboards")).send().await.unwrap()).await;
    assert!(text_of(&not_listed, "#join-hint").is_some());
    assert!(!text_of(&not_listed, "#leaderboard").unwrap().contains("carol"));
    let junk = new_client().get(app.url("/leaderboards?by=%00%27")).send().await.unwrap();
    assert!(junk.status() == 200 || junk.status() == 400, "odd input is no 500: {}", junk.status());
}

#[actix_web::test]
async fn comparing_shows_the_games_in_common_only_when_the_library_is_shared() {
    let (app, _fake) = synced_alice().await;
    let bob = bob_with_portal(&app).await;
    assert_eq!(bob.get(app.url("/u/alice/compare")).send().await.unwrap().status(), 404);
    save_preferences(&app, &app.client, &["profile_public", "show_stats"]).await;
    assert_eq!(bob.get(app.url("/u/alice/compare")).send().await.unwrap().status(), 404, "the library is not shared");
    save_preferences(&app, &app.client, &["profile_public", "show_library"]).await;
    let profile = html(bob.get(app.url("/u/alice")).send().await.unwrap()).await;
    assert!(text_of(&profile, "#compare-link").is_some());
    let doc = html(bob.get(app.url("/u/alice/compare")).send().await.unwrap()).await;
    assert_eq!(text_of(&doc, "#common-count").unwrap().trim(), "1 game in common");
    let row = text_of(&doc, "#compare tbody tr").unwrap();
    assert!(row.contains("Portal") && row.contains("1 / 3") && row.contains("2 / 3"), "{row}");
    assert!(location(&new_client().get(app.url("/u/alice/compare")).send().await.unwrap()).starts_with("/login"));
}

#[actix_web::test]
async fn the_weekly_digest_is_opt_in_tells_the_week_and_unsubscribes_in_one_click_without_signing_in() {
    let (app, _fake) = synced_alice().await;
    let alice = id_of(&app, "alice");
    let mut conn = app.pool.get().unwrap();
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    diesel::update(user_achievements::table.filter(user_achievements::user_id.eq(alice)))
        .set(user_achievements::unlocked_at.eq(yesterday))
        .execute(&mut conn)
        .unwrap();
    diesel::update(library_entries::table.filter(library_entries::user_id.eq(alice)))
        .set(library_entries::last_unlock_at.eq(yesterday))
        .execute(&mut conn)
        .unwrap();
    let now = chrono::Utc::now();
    assert_eq!(questline::profiles::digest::queue_due(&mut conn, &app.settings, now).unwrap(), 0, "off by default");

    save_preferences(&app, &app.client, &["weekly_digest"]).await;
    assert_eq!(questline::profiles::digest::queue_due(&mut conn, &app.settings, now).unwrap(), 1);
    assert_eq!(questline::profiles::digest::queue_due(&mut conn, &app.settings, now).unwrap(), 0, "once a week");
    let mail = loop {
        let m = app.mail.next_email().await;
        if m.subject.contains("Your week") {
            break m;
        }
    };
    assert!(mail.subject.contains("4 unlock(s)"), "{}", mail.subject);
    assert!(mail.text.contains("B2 title in Portal 2 (1.0% of players)"), "{}", mail.text);
    assert!(mail.text.replace("\r\n", "\n").contains("Games perfected:\n  - Portal 2"), "{}", mail.text);
    let start = mail.text.find("/unsubscribe/").unwrap();
    let path: String = mail.text[start..].split_whitespace().next().unwrap().to_owned();

    let visitor = new_client();
    let res = visitor.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let subscribed: bool =
        user_preferences::table.find(alice).select(user_preferences::weekly_digest).first(&mut conn).unwrap();
    assert!(subscribed, "a GET changes nothing (mail scanners open links)");
    let res = app.submit_with(&visitor, &path, &path, &[]).await;
    assert_eq!(res.status(), 200);
    assert!(text_of(&html(res).await, "#unsubscribed").unwrap().contains("alice"));
    let subscribed: bool =
        user_preferences::table.find(alice).select(user_preferences::weekly_digest).first(&mut conn).unwrap();
    assert!(!subscribed);
    assert_eq!(visitor.get(app.url("/unsubscribe/not-a-token")).send().await.unwrap().status(), 404);
}
