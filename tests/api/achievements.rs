use diesel::prelude::*;
use questline::schema::custom_achievements;

use crate::helpers::{html, location, new_client, text_of, TestApp};
use crate::steam::{app_with_steam, link, portal_state, sync_finished, KEY, PASSWORD, STEAM_ID};

/// Alice, linked and synced: Portal (2 of 3 unlocked, 10 h), Portal 2 (2 of
/// 2, 20 h) and Dota 2 (no achievements, 100 h).
pub(crate) async fn synced_alice() -> (TestApp, questline::steam::fake::FakeSteam) {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    (app, fake)
}

/// Creates an achievement through the form; returns its id.
pub(crate) async fn create(app: &TestApp, fields: &[(&str, &str)]) -> i64 {
    let res = app.submit_multipart("/achievements/new", "/achievements", fields, None).await;
    assert_eq!(res.status(), 303, "created: {}", res.text().await.unwrap_or_default());
    newest_id(app)
}

pub(crate) fn newest_id(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    custom_achievements::table
        .select(custom_achievements::id)
        .order(custom_achievements::id.desc())
        .first(&mut conn)
        .unwrap()
}

/// The list entry of achievement `id` as text.
async fn entry(app: &TestApp, id: i64) -> String {
    let doc = html(app.get("/achievements").await).await;
    text_of(&doc, &format!("li[data-id=\"{id}\"]")).unwrap_or_else(|| panic!("achievement {id} is listed"))
}

#[actix_web::test]
async fn every_condition_type_shows_its_progress_and_the_date_it_was_met() {
    let (app, _fake) = synced_alice().await;
    let portal = create(
        &app,
        &[("name", "Portal Master"), ("condition_type", "complete_games"), ("games", "400"), ("games", "620")],
    )
    .await;
    let dota =
        create(&app, &[("name", "Centurion"), ("condition_type", "playtime"), ("hours", "100"), ("games", "570")])
            .await;
    let count = create(&app, &[("name", "Collector"), ("condition_type", "achievement_count"), ("count", "80")]).await;
    let specific = create(
        &app,
        &[
            ("name", "Both halves"),
            ("condition_type", "specific_achievements"),
            ("achievements", "620:B1"),
            ("achievements", "620:B2"),
        ],
    )
    .await;
    let rate = create(&app, &[("name", "Most of it"), ("condition_type", "completion_rate"), ("percent", "60")]).await;

    let e = entry(&app, portal).await;
    assert!(e.contains("4/5 achievements") && !e.contains("Achieved"), "{e}");
    let e = entry(&app, dota).await;
    assert!(e.contains("100 of 100 hours") && e.contains("Achieved "), "{e}");
    let e = entry(&app, count).await;
    assert!(e.contains("4/80 achievements") && !e.contains("Achieved"), "{e}");
    let e = entry(&app, specific).await;
    assert!(e.contains("2/2 achievements") && e.contains("Achieved "), "{e}");
    let e = entry(&app, rate).await;
    assert!(e.contains("60% of 60%") && e.contains("Achieved "), "past the goal reads as the goal: {e}");
}

#[actix_web::test]
async fn a_sync_reevaluates_every_achievement_and_stamps_the_first_time_it_is_met() {
    let (app, fake) = synced_alice().await;
    let portal = create(
        &app,
        &[("name", "Portal Master"), ("condition_type", "complete_games"), ("games", "400"), ("games", "620")],
    )
    .await;
    assert!(entry(&app, portal).await.contains("4/5 achievements"));
    {
        let mut state = fake.state.lock().unwrap();
        let player = state.players.get_mut(&STEAM_ID).unwrap();
        let game = player.games.iter_mut().find(|g| g.appid == 400).unwrap();
        game.unlocked.push(("SECRET".into(), 1_700_000_000));
        game.playtime_minutes += 30;
    }
    let res = app.submit("/settings/steam", "/settings/steam/sync", &[]).await;
    assert_eq!(location(&res), "/settings/steam");
    app.wait_for("the second sync to end", |conn| {
        use questline::schema::jobs;
        let done: i64 = jobs::table
            .filter(jobs::kind.eq("steam_sync"))
            .filter(jobs::status.eq("done"))
            .count()
            .get_result(conn)
            .unwrap();
        (done >= 2).then_some(())
    })
    .await;
    let e = entry(&app, portal).await;
    assert!(e.contains("5/5 achievements") && e.contains("Achieved "), "{e}");
    let mut conn = app.pool.get().unwrap();
    let met: Option<chrono::DateTime<chrono::Utc>> =
        custom_achievements::table.find(portal).select(custom_achievements::met_at).first(&mut conn).unwrap();
    assert!(met.is_some());
}

#[actix_web::test]
async fn the_form_refuses_games_outside_the_library_and_bad_numbers_saving_nothing() {
    let (app, _fake) = synced_alice().await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("name", "Cheat"), ("condition_type", "complete_games"), ("games", "999999")], "synced library"),
        (&[("name", "Lots"), ("condition_type", "playtime"), ("hours", "lots")], "hours as a number"),
        (&[("name", ""), ("condition_type", "playtime"), ("hours", "5")], "Give the achievement a name"),
        (&[("name", "Rate"), ("condition_type", "completion_rate"), ("percent", "150")], "percent"),
    ];
    for (fields, message) in cases {
        let res = app.submit_multipart("/achievements/new", "/achievements", fields, None).await;
        assert_eq!(res.status(), 422);
        let doc = html(res).await;
        let errors = text_of(&doc, "#form-errors").unwrap();
        assert!(errors.contains(message), "{errors} should mention {message}");
    }
    let bad_specific = [("name", "X"), ("condition_type", "specific_achievements"), ("achievements", "400:NOPE")];
    let res = app.submit_multipart("/achievements/new", "/achievements", &bad_specific, None).await;
    assert_eq!(res.status(), 422);
    let mut conn = app.pool.get().unwrap();
    assert_eq!(custom_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
}

#[actix_web::test]
async fn picking_games_then_showing_their_achievements_offers_only_those() {
    let (app, _fake) = synced_alice().await;
    let page = html(app.get("/achievements/new?name=Two&condition_type=specific_achievements&games=620").await).await;
    let options: Vec<String> = page
        .select(&scraper::Selector::parse("#achievement-options option").unwrap())
        .map(|o| o.value().attr("value").unwrap().to_owned())
        .collect();
    assert_eq!(options, vec!["620:B1", "620:B2"]);
    let name = page.select(&scraper::Selector::parse("input[name=name]").unwrap()).next().unwrap();
    assert_eq!(name.value().attr("value"), Some("Two"), "typed values are kept");
}

#[actix_web::test]
async fn editing_a_condition_clears_the_old_met_date_and_reevaluates() {
    let (app, _fake) = synced_alice().await;
    let id = create(&app, &[("name", "Ten hours"), ("condition_type", "playtime"), ("hours", "10")]).await;
    assert!(entry(&app, id).await.contains("Achieved"));
    let res = app
        .submit_multipart(
            &format!("/achievements/{id}/edit"),
            &format!("/achievements/{id}"),
            &[
                ("name", "Thousand hours"),
                ("description", "A long way"),
                ("condition_type", "playtime"),
                ("hours", "1000"),
            ],
            None,
        )
        .await;
    assert_eq!(location(&res), "/achievements");
    let e = entry(&app, id).await;
    assert!(e.contains("Thousand hours") && e.contains("130 of 1000 hours") && !e.contains("Achieved"), "{e}");

    let res = app.submit("/achievements", &format!("/achievements/{id}/delete"), &[]).await;
    assert_eq!(location(&res), "/achievements");
    let doc = html(app.get("/achievements").await).await;
    assert!(text_of(&doc, "#no-achievements").is_some());
}

#[actix_web::test]
async fn an_unreadable_condition_is_kept_marked_and_never_evaluated_until_fixed() {
    let (app, _fake) = synced_alice().await;
    let user_id: i64 = {
        use questline::schema::users;
        let mut conn = app.pool.get().unwrap();
        users::table.select(users::id).first(&mut conn).unwrap()
    };
    {
        let mut conn = app.pool.get().unwrap();
        diesel::insert_into(custom_achievements::table)
            .values((
                custom_achievements::owner_id.eq(user_id),
                custom_achievements::name.eq("Speedrun"),
                custom_achievements::condition_type.eq("speedrun"),
                custom_achievements::condition.eq(serde_json::json!({"minutes": 5})),
                custom_achievements::needs_edit.eq(true),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let id = newest_id(&app);
    // A sync-time evaluation skips it rather than failing for everyone.
    create(&app, &[("name", "Ten hours"), ("condition_type", "playtime"), ("hours", "10")]).await;
    let e = entry(&app, id).await;
    assert!(e.contains("could not be read"), "{e}");
    let page = html(app.get(&format!("/achievements/{id}/edit")).await).await;
    assert!(text_of(&page, "#form-errors").unwrap().contains("speedrun"));
    app.submit_multipart(
        &format!("/achievements/{id}/edit"),
        &format!("/achievements/{id}"),
        &[("name", "Speedrun"), ("condition_type", "playtime"), ("hours", "1")],
        None,
    )
    .await;
    let e = entry(&app, id).await;
    assert!(!e.contains("could not be read") && e.contains("Achieved"), "{e}");
}

#[actix_web::test]
async fn another_user_can_neither_see_nor_change_your_achievements() {
    let (app, _fake) = synced_alice().await;
    let id = create(&app, &[("name", "Alice's secret goal"), ("condition_type", "playtime"), ("hours", "10")]).await;

    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&bob, "bob", PASSWORD).await;
    let get = |path: String| bob.get(app.url(&path)).send();
    assert_eq!(get(format!("/achievements/{id}/edit")).await.unwrap().status(), 404);
    let list = get("/achievements".into()).await.unwrap().text().await.unwrap();
    assert!(!list.contains("Alice's secret goal"));

    let fields = [("name", "Bob's now"), ("condition_type", "playtime"), ("hours", "1")];
    let res = app.submit_multipart_with(&bob, "/achievements/new", &format!("/achievements/{id}"), &fields, None).await;
    assert_eq!(res.status(), 404);
    for action in ["delete", "share", "unshare"] {
        let res = app.submit_with(&bob, "/achievements", &format!("/achievements/{id}/{action}"), &[]).await;
        assert_eq!(res.status(), 404, "{action}");
    }
    assert!(entry(&app, id).await.contains("Alice's secret goal"), "untouched");
}
