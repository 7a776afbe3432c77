//! What the pages say and do, fixed after a walk through them in a browser
//! (the browser journeys check the same pages for layout and accessibility).

use diesel::prelude::*;
use questline::schema::{custom_achievements, library_entries};

use crate::achievements::{create, synced_alice};
use crate::helpers::{html, location, new_client, spawn_app, spawn_app_with, text_of};
use crate::steam::{link, portal_state, sync_finished, KEY, PASSWORD, STEAM_ID};

#[actix_web::test]
async fn a_signed_in_user_sees_their_own_navigation_on_an_error_page() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    let res = app.get("/no/such/page").await;
    assert_eq!(res.status(), 404);
    let doc = html(res).await;
    assert!(text_of(&doc, "nav").unwrap().contains("Sign out"), "not Sign in / Create an account");
    assert!(text_of(&doc, "nav").unwrap().contains("Dashboard"));
    assert!(!text_of(&doc, "nav").unwrap().contains("Create an account"));
}

#[actix_web::test]
async fn the_429_page_says_how_long_to_wait() {
    let app = spawn_app_with(|env| {
        env.insert("RATE_LIMIT_LOGIN_PER_MINUTE".into(), "1".into());
    })
    .await;
    let client = new_client();
    app.login_with(&client, "nobody", "wrong password here").await;
    let res = app.login_with(&client, "nobody", "wrong password here").await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("Try again in"), "{body}");
    assert!(body.contains("seconds") || body.contains("minute"), "{body}");
    assert!(wait > 0);
}

#[actix_web::test]
async fn favicon_ico_is_served() {
    let app = spawn_app().await;
    let res = app.get("/favicon.ico").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
}

#[actix_web::test]
async fn confirming_an_address_change_while_signed_in_goes_back_to_the_account() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    crate::two_factor::reauth(&app, &app.client, "/account/email", &[("password", PASSWORD)]).await;
    let res = app.submit("/account/email", "/account/email", &[("email", "new@example.com")]).await;
    assert_eq!(location(&res), "/account/security");
    let link = loop {
        let mail = app.mail.next_email().await;
        if mail.to == "new@example.com" {
            break mail.link("/verify");
        }
    };
    let res = app.submit(&link, "/verify-email", &[("token", link.rsplit('/').next().unwrap())]).await;
    assert_eq!(location(&res), "/account", "signed in: back to the account, not the sign-in form");
    let page = html(app.get("/account").await).await;
    assert_eq!(text_of(&page, "#email").unwrap().trim(), "new@example.com");
}

#[actix_web::test]
async fn showing_the_picked_games_achievements_is_a_post_that_keeps_the_token_out_of_the_url() {
    let (app, _fake) = synced_alice().await;
    let doc = html(app.get("/achievements/new").await).await;
    let sel = scraper::Selector::parse("#show-achievements").unwrap();
    let button = doc.select(&sel).next().expect("the button");
    assert_eq!(button.value().attr("formmethod"), None, "the form's own method: POST");
    assert_eq!(button.value().attr("formaction"), Some("/achievements/preview"));
    let res = app
        .submit_multipart(
            "/achievements/new",
            "/achievements/preview",
            &[("name", "Half typed"), ("condition_type", "specific_achievements"), ("games", "400")],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let doc = html(res).await;
    assert!(text_of(&doc, "#achievement-options").unwrap().contains("A1 title"));
    let sel = scraper::Selector::parse("input[name=name]").unwrap();
    assert_eq!(doc.select(&sel).next().unwrap().value().attr("value"), Some("Half typed"), "what was typed stays");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(custom_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 0, "nothing saved");
}

#[actix_web::test]
async fn a_refused_form_says_the_chosen_image_must_be_picked_again() {
    let (app, _fake) = synced_alice().await;
    let png = crate::images::png(32, 32, 9);
    let res = app
        .submit_multipart(
            "/achievements/new",
            "/achievements",
            &[("name", ""), ("condition_type", "playtime"), ("hours", "10")],
            Some(("image", "badge.png", png)),
        )
        .await;
    assert_eq!(res.status(), 422);
    let errors = text_of(&html(res).await, "#form-errors").unwrap();
    assert!(errors.contains("Choose the image again"), "{errors}");
}

#[actix_web::test]
async fn a_goal_is_dated_by_the_last_unlock_it_needed_not_by_when_it_was_computed() {
    let (app, _fake) = synced_alice().await;
    // Portal 2's two unlocks are at 1_650_000_000 and 1_650_000_100.
    let id = create(&app, &[("name", "Portal 2 done"), ("condition_type", "complete_games"), ("games", "620")]).await;
    let mut conn = app.pool.get().unwrap();
    let met: Option<chrono::DateTime<chrono::Utc>> =
        custom_achievements::table.find(id).select(custom_achievements::met_at).first(&mut conn).unwrap();
    assert_eq!(met.unwrap().timestamp(), 1_650_000_100);
    let doc = html(app.get("/achievements").await).await;
    let entry = text_of(&doc, &format!("li[data-id=\"{id}\"]")).unwrap();
    assert!(entry.contains("Achieved 2022-04-15"), "{entry}");
}

#[actix_web::test]
async fn unlinking_asks_first_then_deletes_the_library_and_relinking_another_account_starts_clean() {
    let (app, _fake) = synced_alice().await;
    let page = html(app.get("/settings/steam/unlink").await).await;
    assert!(text_of(&page, "#confirm").unwrap().contains("3 game(s)"));
    let mut conn = app.pool.get().unwrap();
    let games = |conn: &mut diesel::PgConnection| library_entries::table.count().get_result::<i64>(conn).unwrap();
    assert_eq!(games(&mut conn), 3, "asking changed nothing");
    let res = app.submit("/settings/steam/unlink", "/settings/steam/unlink", &[]).await;
    assert_eq!(location(&res), "/settings/steam");
    assert_eq!(games(&mut conn), 0, "the library goes with the link");
    let doc = html(app.get("/library").await).await;
    assert!(text_of(&doc, "#library-empty").unwrap().contains("empty"));
}

#[actix_web::test]
async fn linking_a_different_steam_account_replaces_the_old_library() {
    let mut state = portal_state();
    let other = STEAM_ID + 1;
    state.players.insert(
        other,
        questline::steam::fake::FakePlayer {
            persona: "Other".into(),
            public: true,
            games: vec![questline::steam::fake::FakeOwned { appid: 570, playtime_minutes: 60, unlocked: vec![] }],
        },
    );
    let (app, _fake) = crate::steam::app_with_steam(state).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    link(&app, &other.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let doc = html(app.get("/library").await).await;
    assert_eq!(text_of(&doc, "#game-count").as_deref(), Some("1 game"), "only the new account's games");
}

#[actix_web::test]
async fn deleting_a_goal_asks_first_and_asking_changes_nothing() {
    let (app, _fake) = synced_alice().await;
    let id = create(&app, &[("name", "Keep me"), ("condition_type", "playtime"), ("hours", "5")]).await;
    let page = html(app.get(&format!("/achievements/{id}/delete")).await).await;
    assert!(text_of(&page, "#confirm").unwrap().contains("cannot be undone"));
    let mut conn = app.pool.get().unwrap();
    assert_eq!(custom_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 1);
    let res = app.submit(&format!("/achievements/{id}/delete"), &format!("/achievements/{id}/delete"), &[]).await;
    assert_eq!(location(&res), "/achievements");
    assert_eq!(custom_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
}
