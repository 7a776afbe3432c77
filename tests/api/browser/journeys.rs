//! The journeys, each a test: every page on the way is checked by
//! [`Browser::check`].

use diesel::prelude::*;
use questline::schema::users;

use super::Browser;
use crate::helpers::{spawn_app, spawn_app_with, TestApp};
use crate::steam::{portal_state, sync_finished, KEY, PASSWORD, STEAM_ID};
use crate::two_factor::{enrol, totp};

/// Signs in through the form; lands wherever the form sends us.
async fn sign_in(b: &Browser, login: &str, password: &str) {
    b.goto("/login").await;
    b.fill("input[name=login]", login).await;
    b.fill("input[name=password]", password).await;
    b.click("form.auth-form button[type=submit]").await;
}

/// Links the fake Steam's player by signing in through Steam from the
/// Steam settings page.
async fn link_steam(b: &Browser) {
    b.goto("/settings/steam").await;
    b.click("#link-form button[type=submit]").await;
    // A sign-in method is a sensitive change: the password first, then
    // the button again.
    if b.path().await.starts_with("/account/reauth") {
        b.fill("input[name=password]", PASSWORD).await;
        b.click("form.auth-form button[type=submit]").await;
        b.click("#link-form button[type=submit]").await;
    }
    pick_on_steam(b, STEAM_ID).await;
}

/// On the (fake) Steam's sign-in page: chooses who to be.
async fn pick_on_steam(b: &Browser, steam_id: u64) {
    b.click(&format!("a.player[data-steamid='{steam_id}']")).await;
}

async fn sign_out(b: &Browser) {
    b.click("#logout").await;
}

#[actix_web::test]
async fn a_visitor_sees_the_home_page_the_community_and_a_clear_404() {
    let app = spawn_app().await;
    let mut b = Browser::start(&app).await;
    b.goto("/").await;
    assert!(b.has("a.skip-link[href='#main']").await, "a skip link");
    b.check("home").await;
    b.goto("/community").await;
    b.check("community-visitor").await;
    b.goto("/login").await;
    b.check("login").await;
    b.goto("/register").await;
    b.check("register").await;
    b.goto("/no/such/page").await;
    assert!(b.text("h1").await.contains("not found"), "{}", b.text("h1").await);
    b.check("error-404").await;
    b.finish().await;
}

#[actix_web::test]
async fn a_new_user_registers_confirms_by_the_mailed_link_and_signs_in_to_a_dashboard() {
    let app = spawn_app().await;
    let mut b = Browser::start(&app).await;
    b.goto("/register").await;
    b.fill("input[name=username]", "alice").await;
    b.fill("input[name=email]", "alice@example.com").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.fill("input[name=password_confirmation]", PASSWORD).await;
    b.click("form.auth-form button[type=submit]").await;
    assert_eq!(b.path().await, "/login");
    b.check("registered").await;

    let link = app.mail.next_email().await.link("/verify");
    b.goto(&link).await;
    b.check("confirm-email").await;
    b.click("form.auth-form button[type=submit]").await;
    assert_eq!(b.path().await, "/login");

    sign_in(&b, "alice", PASSWORD).await;
    assert_eq!(b.path().await, "/dashboard");
    assert!(b.text("#next-step").await.contains("Link your Steam account"), "{}", b.text("main").await);
    b.check("dashboard-new-user").await;
    b.goto("/settings/steam").await;
    b.check("settings-steam-unlinked").await;
    b.goto("/achievements").await;
    b.check("achievements-empty").await;
    b.goto("/library").await;
    b.check("library-empty").await;
    b.finish().await;
}

async fn steam_app() -> (TestApp, questline::steam::fake::FakeSteam) {
    let fake = questline::steam::fake::FakeSteam::start(portal_state()).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_BASE_URL".into(), base.clone());
        env.insert("STEAM_MEDIA_URL".into(), base);
        env.insert("STEAM_API_KEY".into(), KEY.into());
        env.insert("RATE_LIMIT_LOGIN_PER_MINUTE".into(), "1000".into());
    })
    .await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    (app, fake)
}

#[actix_web::test]
async fn a_visitor_joins_through_steam_sees_their_library_and_signs_back_in_through_steam() {
    let (app, _fake) = steam_app().await;
    let mut b = Browser::start(&app).await;
    b.goto("/register").await;
    b.click("#steam-sign-up button[type=submit]").await;
    pick_on_steam(&b, STEAM_ID).await;
    assert_eq!(b.path().await, "/register/steam");
    assert_eq!(b.eval("return document.querySelector('input[name=username]').value").await, "Gabe");
    b.check("register-through-steam").await;
    b.fill("input[name=email]", "gabe@example.com").await;
    b.click("form.auth-form button[type=submit]").await;
    assert_eq!(b.path().await, "/settings/steam");
    assert_eq!(sync_finished(&app).await, "done");
    b.wait_for_text("#sync-progress", "Sync finished").await;
    assert!(b.has("#steam-verified").await);
    b.check("settings-steam-joined").await;
    b.goto("/library").await;
    assert!(b.text("#game-count").await.contains("3 games"), "{}", b.text("#game-count").await);
    sign_out(&b).await;

    b.goto("/login").await;
    b.click("#steam-sign-in button[type=submit]").await;
    pick_on_steam(&b, STEAM_ID).await;
    assert_eq!(b.path().await, "/dashboard");
    // An answer that is not this browser's is explained, not a bare error.
    b.goto("/auth/steam/return?state=stale").await;
    assert!(b.text("#steam-error").await.contains("another browser"), "{}", b.text("main").await);
    b.check("steam-sign-in-refused").await;
    b.finish().await;
}

#[actix_web::test]
async fn signing_in_through_steam_asks_an_account_with_2fa_for_its_code() {
    let (app, _fake) = steam_app().await;
    // Alice (registered by steam_app) signs in, links through Steam and
    // turns 2FA on, all over HTTP.
    app.login_with(&app.client, "alice", PASSWORD).await;
    crate::steam::link_with(&app, &app.client, &STEAM_ID.to_string(), "").await;
    // Linking asked for the password again: setting 2FA up needs no more.
    let res = app.submit("/account/security", "/account/2fa/start", &[]).await;
    assert_eq!(crate::helpers::location(&res), "/account/2fa/setup");
    let page = crate::helpers::html(app.get("/account/2fa/setup").await).await;
    let secret = crate::helpers::text_of(&page, "#totp-secret").unwrap();
    let code = totp(&secret).generate(crate::two_factor::now());
    app.submit("/account/2fa/setup", "/account/2fa/confirm", &[("code", &code)]).await;

    let mut b = Browser::start(&app).await;
    b.goto("/login").await;
    b.click("#steam-sign-in button[type=submit]").await;
    pick_on_steam(&b, STEAM_ID).await;
    assert_eq!(b.path().await, "/login/2fa");
    b.check("sign-in-steam-second-step").await;
    b.fill("input[name=code]", &totp(&secret).generate(crate::two_factor::now() + 30)).await;
    b.click("form.auth-form button[type=submit]").await;
    assert_eq!(b.path().await, "/dashboard");
    b.finish().await;
}

#[actix_web::test]
async fn an_unverified_link_is_explained_and_fixed_with_one_button() {
    let (app, _fake) = steam_app().await;
    {
        let mut conn = app.pool.get().unwrap();
        let id: i64 = users::table.filter(users::username.eq("alice")).select(users::id).first(&mut conn).unwrap();
        let cipher = questline::crypto::Cipher::from_settings(&app.settings);
        questline::steam::model::SteamAccount::keep_unproven(&mut conn, &cipher, id, Some(STEAM_ID), None).unwrap();
        questline::jobs::model::enqueue(&mut conn, questline::jobs::STEAM_SYNC, id).unwrap();
    }
    assert_eq!(sync_finished(&app).await, "done");
    let mut b = Browser::start(&app).await;
    sign_in(&b, "alice", PASSWORD).await;
    b.goto("/settings/profile").await;
    b.click("input[name=profile_public]").await;
    b.click("#profile-settings button[type=submit]").await;
    b.goto("/settings/steam").await;
    assert!(b.text("#verify-notice").await.contains("not on leaderboards or compare"));
    b.check("settings-steam-unverified").await;
    b.goto("/u/alice").await;
    assert!(b.has("#profile-unverified").await && b.has("#profile-not-verified-own").await);
    b.check("profile-unverified-own").await;
    b.goto("/settings/steam").await;
    b.click("#verify-form button[type=submit]").await;
    assert!(b.path().await.starts_with("/account/reauth"), "the password first");
    b.fill("input[name=password]", PASSWORD).await;
    b.click("form.auth-form button[type=submit]").await;
    b.click("#verify-form button[type=submit]").await;
    pick_on_steam(&b, STEAM_ID).await;
    assert_eq!(b.path().await, "/settings/steam");
    assert!(b.has("#steam-verified").await, "{}", b.text("main").await);
    b.check("settings-steam-verified").await;
    b.finish().await;
}

#[actix_web::test]
async fn a_user_links_steam_watches_the_sync_and_browses_library_game_and_stats() {
    let (app, _fake) = steam_app().await;
    let mut b = Browser::start(&app).await;
    sign_in(&b, "alice", PASSWORD).await;
    link_steam(&b).await;
    assert_eq!(b.path().await, "/settings/steam");
    assert_eq!(sync_finished(&app).await, "done");
    // The page follows the sync to its end by itself.
    b.wait_for_text("#sync-progress", "Sync finished").await;
    b.check("settings-steam-synced").await;

    b.goto("/dashboard").await;
    b.check("dashboard").await;
    b.goto("/library").await;
    assert!(b.text("#game-count").await.contains("3 games"), "{}", b.text("#game-count").await);
    assert!(b.has("nav a[href='/library'][aria-current=page]").await, "the menu marks the current page");
    assert!(
        b.text("select[name=filter]").await.contains("Not started: none unlocked yet"),
        "defined where it is offered"
    );
    b.check("library").await;
    b.goto("/library?sort=completion&filter=started").await;
    b.check("library-sorted-filtered").await;
    b.goto("/library?q=portal").await;
    assert!(b.text("#game-count").await.contains("2 games"), "{}", b.text("#game-count").await);
    b.goto("/library?page=99").await;
    assert!(b.text("main").await.contains("no games on page 99"), "{}", b.text("main").await);
    b.check("library-past-the-end").await;
    b.goto("/library/400").await;
    b.check("game").await;
    b.goto("/library/570").await;
    assert!(b.text("main").await.contains("has no achievements"), "{}", b.text("main").await);
    b.check("game-without-achievements").await;
    b.goto("/stats").await;
    b.check("stats").await;
    b.finish().await;
}

#[actix_web::test]
async fn a_user_creates_and_shares_an_achievement_and_another_user_adds_it() {
    let (app, _fake) = steam_app().await;
    let mut b = Browser::start(&app).await;
    sign_in(&b, "alice", PASSWORD).await;
    link_steam(&b).await;
    assert_eq!(sync_finished(&app).await, "done");

    b.goto("/achievements/new").await;
    b.check("achievement-new").await;
    b.fill("input[name=name]", "Thinking with portals").await;
    b.fill("textarea[name=description]", "Finish both Portal games.").await;
    b.click("input[name=condition_type][value=complete_games]").await;
    b.select_all("select[name=games]", &["400", "620"]).await;
    let image = std::env::temp_dir().join(format!("questline-browser-{}.png", std::process::id()));
    std::fs::write(&image, crate::images::png(64, 64, 120)).unwrap();
    b.upload("input[name=image]", &image).await;
    b.click("#save-achievement").await;
    assert_eq!(b.path().await, "/achievements");
    b.check("achievements").await;
    b.click("form.share button[type=submit]").await;
    b.check("achievement-shared").await;
    sign_out(&b).await;

    app.register_verified("bob", "bob@example.com", PASSWORD).await;
    sign_in(&b, "bob", PASSWORD).await;
    b.goto("/community?q=portals").await;
    b.check("community").await;
    b.click("form.add button[type=submit]").await;
    assert_eq!(b.path().await, "/achievements");
    assert!(b.text("main").await.contains("Thinking with portals"));
    b.check("achievements-imported").await;
    b.finish().await;
}

#[actix_web::test]
async fn a_user_turns_on_two_factor_authentication_and_keeps_the_backup_codes() {
    let app = crate::two_factor::app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    let mut b = Browser::start(&app).await;
    sign_in(&b, "alice", PASSWORD).await;
    b.goto("/account/security").await;
    b.check("security").await;
    b.click("#tfa-start button[type=submit]").await;
    assert!(b.path().await.starts_with("/account/reauth"));
    b.check("reauth").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.click("form.auth-form button[type=submit]").await;
    b.click("#tfa-start button[type=submit]").await;
    assert_eq!(b.path().await, "/account/2fa/setup");
    b.check("two-factor-setup").await;
    let secret = b.text("#totp-secret").await;
    let code = totp(&secret).generate(chrono::Utc::now().timestamp() as u64);
    b.fill("input[name=code]", &code).await;
    b.click("#tfa-confirm button[type=submit]").await;
    assert_eq!(b.driver.find_all(thirtyfour::By::Css("#backup-codes code")).await.unwrap().len(), 10);
    let download = b.driver.find(thirtyfour::By::Css("#download-codes")).await.unwrap();
    assert!(
        download.attr("href").await.unwrap().unwrap().starts_with("data:text/plain"),
        "the codes can be downloaded"
    );
    assert!(b.has("button[data-action=print]").await, "and printed");
    b.check("backup-codes").await;
    b.finish().await;
}

#[actix_web::test]
async fn an_admin_runs_the_console() {
    let app = crate::two_factor::app().await;
    let (_, codes) = enrol(&app).await;
    let mut conn = app.pool.get().unwrap();
    diesel::update(users::table.filter(users::username.eq("alice")))
        .set(users::role.eq("admin"))
        .execute(&mut conn)
        .unwrap();
    app.register_verified("bob", "bob@example.com", PASSWORD).await;
    let bob: i64 = users::table.filter(users::username.eq("bob")).select(users::id).first(&mut conn).unwrap();

    let mut b = Browser::start(&app).await;
    sign_in(&b, "alice", PASSWORD).await;
    assert_eq!(b.path().await, "/login/2fa");
    b.check("sign-in-second-step").await;
    b.fill("input[name=code]", &codes[0]).await;
    b.click("form.auth-form button[type=submit]").await;
    for (path, name) in [
        ("/admin".to_owned(), "admin-dashboard"),
        ("/admin/users".to_owned(), "admin-users"),
        (format!("/admin/users/{bob}"), "admin-user"),
        ("/admin/audit".to_owned(), "admin-audit"),
        ("/admin/security".to_owned(), "admin-security"),
        ("/admin/jobs".to_owned(), "admin-jobs"),
        ("/admin/community".to_owned(), "admin-community"),
        ("/admin/rarity".to_owned(), "admin-rarity"),
        ("/admin/steam".to_owned(), "admin-steam"),
    ] {
        b.goto(&path).await;
        b.check(name).await;
    }
    // Locking asks for a confirmation first, and the buttons follow the
    // account's state.
    b.goto(&format!("/admin/users/{bob}")).await;
    assert!(!b.has("button[value=unlock]").await, "Unlock is not offered for an active account");
    b.click("button[value=lock]").await;
    b.check("admin-confirm-lock").await;
    b.click("#confirm button[type=submit]").await;
    assert_eq!(b.text("#status").await, "locked");
    assert!(!b.has("button[value=lock]").await && b.has("button[value=unlock]").await);
    b.check("admin-user-locked").await;

    // Maintenance mode, as a visitor sees it.
    b.goto("/admin").await;
    b.click("#maintenance button[type=submit]").await;
    // A sensitive switch: the password again first, then back to it.
    assert!(b.path().await.starts_with("/account/reauth"), "{}", b.path().await);
    b.check("admin-reauth").await;
    b.fill("input[name=password]", PASSWORD).await;
    b.fill("input[name=code]", &codes[1]).await;
    b.click("form.auth-form button[type=submit]").await;
    b.click("#maintenance button[type=submit]").await;
    assert!(b.text("#maintenance").await.contains("off"), "{}", b.text("#maintenance").await);
    sign_out(&b).await;
    b.goto("/").await;
    assert!(b.text("h1").await.contains("maintenance"), "{}", b.text("main").await);
    assert!(!b.has("main a[href='/']").await, "no link back into the closed site");
    b.check("maintenance").await;
    b.finish().await;
}

#[actix_web::test]
async fn the_demo_account_syncs_its_realistic_library_and_every_page_reads_well() {
    use questline::steam::demo;
    let fake = questline::steam::fake::FakeSteam::start(demo::demo_state()).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_BASE_URL".into(), base.clone());
        env.insert("STEAM_MEDIA_URL".into(), base);
    })
    .await;
    {
        let mut conn = app.pool.get().unwrap();
        let cipher = questline::crypto::Cipher::from_settings(&app.settings);
        assert!(demo::seed(&mut conn, &cipher).unwrap(), "created");
        assert!(!demo::seed(&mut conn, &cipher).unwrap(), "a second run changes nothing");
    }
    assert_eq!(sync_finished(&app).await, "done");

    let mut b = Browser::start(&app).await;
    sign_in(&b, demo::DEMO_USER, demo::DEMO_PASSWORD).await;
    assert_eq!(b.path().await, "/dashboard");
    b.check("demo-dashboard").await;
    b.goto("/library").await;
    assert!(b.text("#game-count").await.contains("320 games"), "{}", b.text("#game-count").await);
    b.check("demo-library").await;
    b.goto("/library?sort=completion&page=2").await;
    b.check("demo-library-page-2").await;
    b.goto("/dashboard").await;
    b.click("#closest-games a").await;
    assert!(b.path().await.starts_with("/library/"));
    b.check("demo-game").await;
    b.goto("/stats").await;
    b.check("demo-stats").await;
    b.goto("/settings/steam").await;
    assert!(b.text("#unsynced-games").await.contains("1 game(s) not synced"), "the private game is named");
    b.check("demo-steam").await;
    b.finish().await;
}

#[actix_web::test]
async fn a_user_tracks_rarity_points_and_goals_shares_a_profile_and_takes_their_data() {
    let (app, _fake) = steam_app().await;
    let mut b = Browser::start(&app).await;
    sign_in(&b, "alice", PASSWORD).await;
    link_steam(&b).await;
    assert_eq!(sync_finished(&app).await, "done");

    b.goto("/help/points").await;
    b.check("help-points").await;
    // Pin an achievement from its game's page.
    b.goto("/library/400?sort=rarity").await;
    b.click("#achievements form.pin-form button[value=pin]").await;
    assert!(b.text("main").await.contains("Pinned"), "{}", b.text("main").await);

    // A rarity goal, then a goal combining it with another.
    b.goto("/achievements/new").await;
    b.fill("input[name=name]", "A rare one").await;
    b.click("input[name=condition_type][value=rare_achievements]").await;
    b.fill("input[name=count]", "1").await;
    b.fill("input[name=rarer_than]", "5").await;
    b.click("#save-achievement").await;
    b.goto("/achievements/new").await;
    b.fill("input[name=name]", "Centurion").await;
    b.click("input[name=condition_type][value=playtime]").await;
    b.fill("input[name=hours]", "100").await;
    b.click("#save-achievement").await;
    b.goto("/achievements/new").await;
    b.fill("input[name=name]", "Rare and devoted").await;
    b.click("input[name=condition_type][value=combined]").await;
    let parts: Vec<String> = {
        let mut conn = app.pool.get().unwrap();
        questline::schema::custom_achievements::table
            .select(questline::schema::custom_achievements::id)
            .load::<i64>(&mut conn)
            .unwrap()
            .iter()
            .map(i64::to_string)
            .collect()
    };
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    b.select_all("#combine-parts", &parts).await;
    b.check("achievement-new-combined").await;
    b.click("#save-achievement").await;
    assert_eq!(b.path().await, "/achievements");
    assert!(b.text("#achievements").await.contains("conditions met"), "{}", b.text("#achievements").await);
    b.click("#achievements li:first-child form.share button[value=pin]").await;
    b.check("achievements-with-pins").await;
    b.goto("/dashboard").await;
    assert!(b.text("#pinned").await.contains("Rare and devoted"));
    b.check("dashboard-pinned").await;
    b.goto("/achievements/import").await;
    b.fill("textarea[name=json]", "{ not a goal").await;
    b.click("#import-form button[type=submit]").await;
    assert!(b.text("#import-error").await.contains("not valid JSON"));
    b.check("achievement-import-refused").await;

    // Share the profile and join the leaderboards.
    b.goto("/settings/profile").await;
    b.check("settings-profile").await;
    b.click("input[name=profile_public]").await;
    b.click("input[name=show_library]").await;
    b.click("input[name=show_goals]").await;
    b.click("input[name=on_leaderboard]").await;
    b.click("#profile-settings button[type=submit]").await;
    b.goto("/u/alice").await;
    b.check("profile").await;
    b.goto("/leaderboards").await;
    assert!(b.text("#own-rank").await.contains("#1"));
    b.check("leaderboards").await;
    b.goto("/achievements").await;
    b.click("#achievements li:last-child form.share button").await;
    sign_out(&b).await;

    // Bob compares his library with Alice's and looks at her shared goal.
    let bob = crate::helpers::new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    {
        use questline::schema::{library_entries, users};
        let mut conn = app.pool.get().unwrap();
        let id: i64 = users::table.filter(users::username.eq("bob")).select(users::id).first(&mut conn).unwrap();
        diesel::insert_into(library_entries::table)
            .values((
                library_entries::user_id.eq(id),
                library_entries::appid.eq(620),
                library_entries::playtime_minutes.eq(30),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    sign_in(&b, "bob", PASSWORD).await;
    b.goto("/u/alice").await;
    b.click("#compare-link").await;
    assert!(b.text("#common-count").await.contains("1 game in common"));
    b.check("compare").await;
    b.goto("/community").await;
    b.click(".achievement-name a").await;
    assert!(b.text("#your-progress").await.contains("Where you stand"));
    b.check("community-goal").await;

    // Bob takes his data, then leaves.
    b.goto("/account/data").await;
    b.check("your-data").await;
    b.fill("input[name=confirm]", "bob").await;
    b.click("#delete button[type=submit]").await;
    assert!(b.path().await.starts_with("/account/reauth"), "{}", b.path().await);
    b.fill("input[name=password]", PASSWORD).await;
    b.click("form.auth-form button[type=submit]").await;
    b.fill("input[name=confirm]", "bob").await;
    b.click("#delete button[type=submit]").await;
    assert_eq!(b.path().await, "/");
    assert!(b.text("main").await.contains("Your account is deleted"), "{}", b.text("main").await);
    b.check("account-deleted").await;

    // The digest's unsubscribe page, opened from a mail by someone signed out.
    let token: String = {
        use questline::schema::user_preferences;
        let mut conn = app.pool.get().unwrap();
        user_preferences::table.select(user_preferences::unsubscribe_token).first(&mut conn).unwrap()
    };
    b.goto(&format!("/unsubscribe/{token}")).await;
    b.check("unsubscribe").await;
    b.click("#unsubscribe-button").await;
    assert!(b.text("#unsubscribed").await.contains("alice"));
    b.check("unsubscribed").await;
    b.finish().await;
}

#[actix_web::test]
async fn a_user_at_the_goal_limit_pages_through_goals_and_is_told_why_more_are_refused() {
    let fake = questline::steam::fake::FakeSteam::start(portal_state()).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_KEY".into(), KEY.into());
        env.insert("STEAM_API_BASE_URL".into(), base.clone());
        env.insert("STEAM_MEDIA_URL".into(), base);
        env.insert("GOALS_PER_ACCOUNT".into(), "30".into());
    })
    .await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    let mut b = Browser::start(&app).await;
    sign_in(&b, "alice", PASSWORD).await;
    link_steam(&b).await;
    assert_eq!(sync_finished(&app).await, "done");
    {
        use questline::schema::custom_achievements;
        let mut conn = app.pool.get().unwrap();
        let owner: i64 = users::table.filter(users::username.eq("alice")).select(users::id).first(&mut conn).unwrap();
        for i in 1..=30 {
            diesel::insert_into(custom_achievements::table)
                .values((
                    custom_achievements::owner_id.eq(owner),
                    custom_achievements::name.eq(format!("Play Dota 2 for {i}0 hours")),
                    custom_achievements::description.eq("A long road, one match at a time."),
                    custom_achievements::condition_type.eq("playtime"),
                    custom_achievements::condition.eq(serde_json::json!({ "hours": i * 10, "games": ["570"] })),
                ))
                .execute(&mut conn)
                .unwrap();
        }
        questline::achievements::model::evaluate(&mut conn, &[owner]).unwrap();
    }
    b.goto("/achievements").await;
    assert!(b.text("#goal-count").await.contains("30 of the 30"), "{}", b.text("#goal-count").await);
    assert!(b.has("#goals-full").await);
    b.check("achievements-full").await;
    b.goto("/achievements?page=2").await;
    assert!(b.text(".pagination").await.contains("Page 2 of 2"));
    b.check("achievements-page-two").await;

    b.goto("/achievements/import").await;
    b.check("goal-import").await;
    let file = r#"{"format": "questline-goal", "version": 1, "name": "One more",
                   "condition_type": "playtime", "condition": {"hours": 5}}"#;
    b.fill("textarea[name=json]", file).await;
    b.click("#import-form button[type=submit]").await;
    assert!(b.text("#import-error").await.contains("as many as one account may"));
    b.check("goal-import-refused").await;

    b.goto("/achievements/new").await;
    b.fill("input[name=name]", "Thirty-first").await;
    b.click("input[name=condition_type][value=playtime]").await;
    b.fill("input[name=hours]", "3").await;
    b.click("#save-achievement").await;
    assert!(b.text("main").await.contains("as many as one account may"));
    b.check("achievement-new-refused").await;

    b.goto("/settings/profile").await;
    b.click("input[name=profile_public]").await;
    b.click("input[name=show_goals]").await;
    b.click("#profile-settings button[type=submit]").await;
    sign_out(&b).await;
    b.goto("/u/alice").await;
    assert!(b.text("#profile-goals .pagination").await.contains("Page 1 of 2"));
    b.check("profile-goals-paged").await;
    b.finish().await;
}

#[actix_web::test]
async fn what_steam_removed_and_a_wait_steam_asked_for_are_shown_on_the_steam_and_game_pages() {
    let (app, fake) = steam_app().await;
    let mut b = Browser::start(&app).await;
    sign_in(&b, "alice", PASSWORD).await;
    link_steam(&b).await;
    assert_eq!(sync_finished(&app).await, "done");
    {
        let mut s = fake.state.lock().unwrap();
        // Portal's developer removes A2 (which Alice had); Portal 2 leaves
        // her library.
        s.games.get_mut(&400).unwrap().achievements.retain(|a| a.api_name != "A2");
        s.players.get_mut(&STEAM_ID).unwrap().games.retain(|g| g.appid != 620);
    }
    b.goto("/settings/steam").await;
    b.click("form[action='/settings/steam/resync-all'] button").await;
    assert_eq!(sync_finished(&app).await, "done");
    b.goto("/settings/steam").await;
    assert!(b.text("#removed-games summary").await.contains("1 game(s) no longer in your library"));
    b.click("#removed-games summary").await;
    b.check("settings-steam-removed-games").await;
    b.goto("/library/400").await;
    assert!(b.text("#achievements").await.contains("Removed from the game on Steam"));
    b.check("game-removed-achievement").await;
    {
        let mut s = fake.state.lock().unwrap();
        s.failures.push_back(429);
        s.retry_after = Some("900".into());
    }
    crate::steam_exactness::clear_throttles(&app);
    b.goto("/settings/steam").await;
    b.click("form[action='/settings/steam/sync'] button").await;
    app.wait_for("the sync to wait for Steam", |conn| {
        use questline::schema::jobs;
        jobs::table
            .filter(jobs::status.eq("queued"))
            .filter(jobs::last_error.is_not_null())
            .select(jobs::id)
            .first::<i64>(conn)
            .optional()
            .unwrap()
    })
    .await;
    b.goto("/settings/steam").await;
    assert!(b.text("#sync-waiting").await.contains("Steam asked us to wait until"));
    b.check("settings-steam-waiting").await;
    b.finish().await;
}
