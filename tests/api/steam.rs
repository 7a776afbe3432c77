use diesel::prelude::*;
use questline::schema::{jobs, steam_accounts};
use questline::steam::fake::{
    generated_player, FakeAchievement, FakeGame, FakeOwned, FakePlayer, FakeState, FakeSteam,
};

use crate::helpers::{html, location, spawn_app_with, text_of, TestApp};

pub(crate) const PASSWORD: &str = "violet tractor pebble moonlight";
pub(crate) const KEY: &str = "0123456789ABCDEF0123456789ABCDEF";
pub(crate) const STEAM_ID: u64 = 76561197960287930;

pub(crate) fn portal_state() -> FakeState {
    let mut s = FakeState::default();
    s.keys.insert(KEY.into());
    let ach = |n: &str, hidden: bool, pct: f64| FakeAchievement {
        api_name: n.into(),
        display_name: format!("{n} title"),
        description: Some(format!("{n} description")),
        hidden,
        global_percent: pct,
    };
    s.games.insert(
        400,
        FakeGame {
            name: "Portal".into(),
            achievements: vec![ach("A1", false, 80.5), ach("A2", false, 20.0), ach("SECRET", true, 3.5)],
        },
    );
    s.games.insert(
        620,
        FakeGame { name: "Portal 2".into(), achievements: vec![ach("B1", false, 50.0), ach("B2", true, 1.0)] },
    );
    s.games.insert(570, FakeGame { name: "Dota 2".into(), achievements: vec![] });
    s.players.insert(
        STEAM_ID,
        FakePlayer {
            persona: "Gabe".into(),
            public: true,
            games: vec![
                FakeOwned {
                    appid: 400,
                    playtime_minutes: 600,
                    unlocked: vec![("A1".into(), 1_600_000_000), ("A2".into(), 1_600_100_000)],
                },
                FakeOwned {
                    appid: 620,
                    playtime_minutes: 1200,
                    unlocked: vec![("B1".into(), 1_650_000_000), ("B2".into(), 1_650_000_100)],
                },
                FakeOwned { appid: 570, playtime_minutes: 6000, unlocked: vec![] },
            ],
        },
    );
    s
}

pub(crate) async fn app_with_steam(state: FakeState) -> (TestApp, FakeSteam) {
    app_with_steam_env(state, &[]).await
}

/// [`app_with_steam`] with more settings.
pub(crate) async fn app_with_steam_env(state: FakeState, vars: &[(&str, &str)]) -> (TestApp, FakeSteam) {
    let fake = FakeSteam::start(state).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_BASE_URL".into(), base);
        for (k, v) in vars {
            env.insert((*k).into(), (*v).into());
        }
    })
    .await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    (app, fake)
}

/// Waits for the user's newest sync job that is due (not a follow-up queued
/// for later) to end; returns its status.
pub(crate) async fn sync_finished(app: &TestApp) -> String {
    app.wait_for("the sync to end", |conn| {
        let status: Option<String> = jobs::table
            .filter(jobs::kind.eq("steam_sync"))
            .filter(jobs::started_at.is_not_null().or(jobs::run_after.le(diesel::dsl::now)))
            .order(jobs::id.desc())
            .select(jobs::status)
            .first(conn)
            .optional()
            .unwrap();
        status.filter(|s| s == "done" || s == "failed")
    })
    .await
}

/// Links the SteamID64 `profile` to the signed-in user by signing in
/// through the fake Steam, after saving `key` as their own (none when
/// empty). The app's answer to Steam's redirect (or to the key's form,
/// when that refused it).
pub(crate) async fn link(app: &TestApp, profile: &str, key: &str) -> reqwest::Response {
    link_with(app, &app.client, profile, key).await
}

/// [`link`] for another browser.
pub(crate) async fn link_with(app: &TestApp, client: &reqwest::Client, profile: &str, key: &str) -> reqwest::Response {
    if !key.is_empty() {
        // Steam may refuse the key's check (a 429 a test injected): the
        // form's answer, for the caller to try again.
        let res = app.submit_with(client, "/settings/steam", "/settings/steam/key", &[("api_key", key)]).await;
        if res.status() != 303 {
            return res;
        }
    }
    let steam_id: u64 = profile.parse().expect("a SteamID64");
    // Linking a sign-in method is a sensitive change: the password first
    // (every test user here has the same one).
    let res = app.submit_with(client, "/settings/steam", "/auth/steam", &[("intent", "link")]).await;
    if location(&res).starts_with("/account/reauth") {
        let page = location(&res);
        let res = app
            .submit_with(client, &page, "/account/reauth", &[("password", PASSWORD), ("next", "/settings/steam")])
            .await;
        assert_eq!(location(&res), "/settings/steam", "re-authenticated");
    }
    steam_openid(app, client, "/settings/steam", "link", steam_id).await
}

/// Starts a sign-in through Steam from `page` (a page with a CSRF token)
/// for `intent`, picks `steam_id` on the fake Steam's page, and brings
/// Steam's answer back to the app: the app's response to it.
pub(crate) async fn steam_openid(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    intent: &str,
    steam_id: u64,
) -> reqwest::Response {
    let back = steam_return_url(app, client, page, intent, steam_id).await;
    client.get(back).send().await.unwrap()
}

/// The address the fake Steam sends the browser back to, with its signed
/// answer, for a sign-in started from `page`.
pub(crate) async fn steam_return_url(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    intent: &str,
    steam_id: u64,
) -> String {
    let return_to = steam_start(app, client, page, intent).await;
    let provider = app.settings.steam_openid_url.clone();
    let mut approve = provider.clone();
    approve.set_path("/openid/approve");
    approve.set_query(None);
    approve.query_pairs_mut().append_pair("player", &steam_id.to_string()).append_pair("return_to", &return_to);
    let res = crate::helpers::new_client().get(approve).send().await.unwrap();
    assert_eq!(res.status(), 302, "the fake Steam answers");
    location(&res).to_owned()
}

/// Presses "Sign in through Steam" on `page`: the `openid.return_to` the
/// app asked Steam to come back to.
pub(crate) async fn steam_start(app: &TestApp, client: &reqwest::Client, page: &str, intent: &str) -> String {
    let res = app.submit_with(client, page, "/auth/steam", &[("intent", intent)]).await;
    assert_eq!(res.status(), 303, "off to Steam");
    let provider = url::Url::parse(&location(&res)).unwrap();
    assert!(provider.as_str().starts_with(app.settings.steam_openid_url.as_str()), "{provider}");
    provider.query_pairs().find(|(k, _)| k == "openid.return_to").unwrap().1.into_owned()
}

#[actix_web::test]
async fn a_bad_key_is_refused_with_a_clear_message_and_nothing_is_saved() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    let res =
        app.submit("/settings/steam", "/settings/steam/key", &[("api_key", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")]).await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#link-error").unwrap().contains("refused the Web API key"));
    let res = app.submit("/settings/steam", "/settings/steam/key", &[("api_key", "not a key!")]).await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#link-error").unwrap().contains("32 letters and digits"));
    let mut conn = app.pool.get().unwrap();
    assert_eq!(steam_accounts::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
    // A control character or a NUL is refused like any other wrong key.
    let res = app
        .submit("/settings/steam", "/settings/steam/key", &[("api_key", "0123456789ABCDEF\u{0}123456789ABCDE")])
        .await;
    assert_eq!(res.status(), 400, "refused as unstorable text, nothing saved");
}

#[actix_web::test]
async fn a_saved_key_can_be_removed_and_nothing_is_left_without_a_steam_id() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    let res = app.submit("/settings/steam", "/settings/steam/key", &[("api_key", KEY)]).await;
    assert_eq!(location(&res), "/settings/steam");
    let page = html(app.get("/settings/steam").await).await;
    assert_eq!(text_of(&page, "#key-hint").as_deref(), Some("••••CDEF"));
    let res = app.submit("/settings/steam", "/settings/steam/key/remove", &[]).await;
    assert_eq!(location(&res), "/settings/steam");
    let page = html(app.get("/settings/steam").await).await;
    assert!(text_of(&page, "#key-hint").is_none());
    let mut conn = app.pool.get().unwrap();
    assert_eq!(
        steam_accounts::table.count().get_result::<i64>(&mut conn).unwrap(),
        0,
        "a key-only row goes with its key"
    );
}

#[actix_web::test]
async fn linking_through_steam_syncs_the_library_and_achievements() {
    let (app, fake) = app_with_steam(portal_state()).await;
    let res = link(&app, &STEAM_ID.to_string(), &KEY.to_lowercase()).await;
    assert_eq!(location(&res), "/settings/steam");
    assert_eq!(sync_finished(&app).await, "done");

    let page = html(app.get("/settings/steam").await).await;
    assert_eq!(text_of(&page, "#key-hint").as_deref(), Some("••••CDEF"));
    let mut conn = app.pool.get().unwrap();
    let enc: Vec<u8> =
        steam_accounts::table.select(steam_accounts::api_key_enc.assume_not_null()).first(&mut conn).unwrap();
    assert!(!enc.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "the key is stored encrypted");

    let doc = html(app.get("/library").await).await;
    assert_eq!(text_of(&doc, "#game-count").as_deref(), Some("3 games"));
    let sel = scraper::Selector::parse("#library tbody tr").unwrap();
    let rows: Vec<String> = doc.select(&sel).map(|r| r.text().collect::<String>()).collect();
    assert!(rows[0].contains("Dota 2") && rows[0].contains("none"), "{rows:?}");
    assert!(rows[1].contains("Portal") && rows[1].contains("2 / 3"), "{rows:?}");
    assert!(rows[2].contains("Portal 2") && rows[2].contains("2 / 2") && rows[2].contains("100%"), "{rows:?}");

    let game = html(app.get("/library/400").await).await;
    assert_eq!(text_of(&game, "#unlocked").as_deref(), Some("2 / 3"));
    let list = text_of(&game, "#achievements").unwrap();
    assert!(list.contains("A1 title") && list.contains("80.5%"));
    assert!(list.contains("Hidden achievement") && !list.contains("SECRET title"), "hidden stays masked: {list}");
    // Unlocked hidden ones are shown.
    let game2 = text_of(&html(app.get("/library/620").await).await, "#achievements").unwrap();
    assert!(game2.contains("B2 title"));
    assert_eq!(fake.calls("GetSchemaForGame"), 2, "Dota 2 has no stats and is not asked for");
}

#[actix_web::test]
async fn a_second_sync_refetches_only_games_whose_playtime_changed() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, "76561197960287930", KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let before = fake.calls("GetPlayerAchievements");
    let schemas = fake.calls("GetSchemaForGame");
    {
        let mut s = fake.state.lock().unwrap();
        let p = s.players.get_mut(&STEAM_ID).unwrap();
        p.games[0].playtime_minutes += 30;
        p.games[0].unlocked.push(("SECRET".into(), 1_700_000_000));
    }
    let res = app.submit("/settings/steam", "/settings/steam/sync", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(sync_finished(&app).await, "done");
    assert_eq!(fake.calls("GetPlayerAchievements"), before + 1);
    assert_eq!(fake.calls("GetSchemaForGame"), schemas, "schemas are cached");
    let game = html(app.get("/library/400").await).await;
    assert_eq!(text_of(&game, "#unlocked").as_deref(), Some("3 / 3"));

    // "Sync now" is throttled.
    app.submit("/settings/steam", "/settings/steam/sync", &[]).await;
    let page = html(app.get("/settings/steam").await).await;
    assert!(text_of(&page, ".flash-warning").unwrap().contains("recently"));
}

#[actix_web::test]
async fn a_private_profile_fails_the_sync_with_a_message_the_user_can_act_on() {
    let mut state = portal_state();
    state.players.get_mut(&STEAM_ID).unwrap().public = false;
    let (app, _fake) = app_with_steam(state).await;
    link(&app, "76561197960287930", KEY).await;
    // A state of the link, not a failed job: nothing for an admin to retry.
    assert_eq!(sync_finished(&app).await, "done");
    let page = html(app.get("/settings/steam").await).await;
    assert!(text_of(&page, "#sync-error").unwrap().contains("private"));
    let mut conn = app.pool.get().unwrap();
    let failed: i64 = jobs::table.filter(jobs::status.eq("failed")).count().get_result(&mut conn).unwrap();
    assert_eq!(failed, 0);
}

#[actix_web::test]
async fn rate_limiting_and_server_errors_are_retried() {
    let mut state = portal_state();
    state.failures.extend([429, 503]);
    let (app, fake) = app_with_steam(state).await;
    // The key's check eats the two failures and succeeds on its third
    // try; the link then asks once for the persona.
    let res = link(&app, "76561197960287930", KEY).await;
    assert_eq!(location(&res), "/settings/steam");
    assert_eq!(fake.calls("GetPlayerSummaries"), 4);
    assert_eq!(sync_finished(&app).await, "done");
}

#[actix_web::test]
async fn the_library_filters_sorts_searches_and_pages() {
    let mut state = portal_state();
    state.players.clear();
    generated_player(&mut state, STEAM_ID, 120, 6);
    let (app, _fake) = app_with_steam(state).await;
    link(&app, "76561197960287930", KEY).await;
    assert_eq!(sync_finished(&app).await, "done");

    let rows = |doc: &scraper::Html| {
        let sel = scraper::Selector::parse("#library tbody tr").unwrap();
        doc.select(&sel).count()
    };
    let doc = html(app.get("/library").await).await;
    assert_eq!(text_of(&doc, "#game-count").as_deref(), Some("120 games"));
    assert_eq!(rows(&doc), 50);
    let doc = html(app.get("/library?page=3").await).await;
    assert_eq!(rows(&doc), 20);
    let doc = html(app.get("/library?q=Game%2011").await).await;
    assert_eq!(text_of(&doc, "#game-count").as_deref(), Some("11 games"), "Game 11 and Game 110-119");
    let doc = html(app.get("/library?q=%25").await).await;
    assert_eq!(text_of(&doc, "#game-count").as_deref(), Some("0 games"), "% is literal");
    let doc = html(app.get("/library?sort=playtime").await).await;
    let sel = scraper::Selector::parse("#library tbody tr td:nth-child(3)").unwrap();
    let hours: Vec<f64> = doc.select(&sel).map(|e| e.text().collect::<String>().parse().unwrap()).collect();
    assert!(hours.windows(2).all(|w| w[0] >= w[1]), "most played first: {hours:?}");
    let most = (0..120).map(|i| (i * 97) % 6000).max().unwrap() as f64 / 60.0;
    assert_eq!(hours[0], (most * 10.0).round() / 10.0);
    for filter in ["perfect", "started", "not_started"] {
        let doc = html(app.get(&format!("/library?filter={filter}")).await).await;
        assert!(text_of(&doc, "#game-count").is_some());
    }
    assert_eq!(app.get("/library?page=abc").await.status(), 400);
}

#[actix_web::test]
async fn sync_progress_streams_as_server_sent_events() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    link(&app, "76561197960287930", KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let res = app.get("/settings/steam/progress").await;
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let body = res.text().await.unwrap();
    assert!(body.starts_with("event: progress\ndata: "), "{body}");
    assert!(body.contains(r#""status":"done","done":2,"total":2"#), "{body}");

    let anonymous = crate::helpers::new_client();
    let res = anonymous.get(app.url("/settings/steam/progress")).send().await.unwrap();
    assert_eq!(res.status(), 303);
}

#[actix_web::test]
async fn a_game_outside_your_library_is_not_found() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    assert_eq!(app.get("/library/400").await.status(), 404);
    assert_eq!(app.get("/library").await.status(), 200);
}

#[actix_web::test]
async fn rotating_the_master_key_keeps_every_key_readable_under_the_new_one() {
    use questline::crypto::Cipher;
    use questline::steam::model::SteamAccount;
    let (app, _fake) = app_with_steam(portal_state()).await;
    link(&app, "76561197960287930", KEY).await;
    let old = Cipher::from_settings(&app.settings);
    let new = Cipher::new("k2", &[42u8; 32]);
    let mut conn = app.pool.get().unwrap();
    questline::steam::instance_key::set(&mut conn, &old, KEY, None).unwrap();
    let done = questline::rotate::rotate(&mut conn, &old, &new).unwrap();
    assert_eq!((done.steam_keys, done.instance_keys), (1, 1));
    let instance = questline::steam::instance_key::current(&mut conn, &new, &app.settings).unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&instance), KEY, "the instance key too");
    assert!(questline::steam::instance_key::current(&mut conn, &old, &app.settings).is_err());
    let user_id: i64 = steam_accounts::table.select(steam_accounts::user_id).first(&mut conn).unwrap();
    let account = SteamAccount::find(&mut conn, user_id).unwrap().unwrap();
    assert_eq!(account.api_key_key_id.as_deref(), Some("k2"));
    assert!(account.api_key(&old).is_err());
    assert_eq!(secrecy::ExposeSecret::expose_secret(&account.api_key(&new).unwrap().unwrap()), KEY);
    // A second run finds nothing left under the old key.
    assert_eq!(questline::rotate::rotate(&mut conn, &old, &new).unwrap(), questline::rotate::Rotated::default());
}

#[actix_web::test]
async fn accounts_not_synced_for_a_day_are_queued_for_a_resync() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    link(&app, "76561197960287930", KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(questline::jobs::enqueue_daily_resyncs(&mut conn).unwrap(), 0, "synced just now");
    diesel::update(steam_accounts::table)
        .set(steam_accounts::last_synced_at.eq(chrono::Utc::now() - chrono::Duration::hours(25)))
        .execute(&mut conn)
        .unwrap();
    diesel::update(jobs::table.filter(jobs::kind.eq("steam_sync")))
        .set(jobs::created_at.eq(chrono::Utc::now() - chrono::Duration::hours(25)))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(questline::jobs::enqueue_daily_resyncs(&mut conn).unwrap(), 1);
    assert_eq!(questline::jobs::enqueue_daily_resyncs(&mut conn).unwrap(), 0, "never twice");
}

#[actix_web::test]
async fn the_stats_page_sums_the_library_and_draws_the_timeline() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, "76561197960287930", KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let doc = html(app.get("/stats").await).await;
    assert_eq!(text_of(&doc, "#stat-games").as_deref(), Some("3"));
    assert_eq!(text_of(&doc, "#stat-hours").as_deref(), Some("130"));
    assert_eq!(text_of(&doc, "#stat-unlocked").as_deref(), Some("4"));
    assert_eq!(text_of(&doc, "#stat-perfect").as_deref(), Some("1"));
    // (2/3 + 2/2) / 2 over the started games.
    assert_eq!(text_of(&doc, "#stat-average").as_deref(), Some("83.3%"));
    // A true time axis: every month from the first unlock (2020-09) to
    // this one, empty months kept.
    let sel = scraper::Selector::parse("#timeline rect").unwrap();
    let now = chrono::Utc::now();
    use chrono::Datelike;
    let months = (now.year() - 2020) * 12 + now.month() as i32 - 9 + 1;
    assert_eq!(doc.select(&sel).count() as i32, months);
    let sel = scraper::Selector::parse("#months-table tbody tr").unwrap();
    let rows: Vec<String> = doc.select(&sel).map(|r| r.text().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(rows[0], "2020-09 2");
    assert_eq!(rows[1], "2020-10 0");

    // Cached until the next sync, which makes the old entry unreachable.
    {
        let mut s = fake.state.lock().unwrap();
        let p = s.players.get_mut(&STEAM_ID).unwrap();
        p.games[0].playtime_minutes += 60;
        p.games[0].unlocked.push(("SECRET".into(), 1_700_000_000));
    }
    let doc = html(app.get("/stats").await).await;
    assert_eq!(text_of(&doc, "#stat-unlocked").as_deref(), Some("4"));
    app.submit("/settings/steam", "/settings/steam/sync", &[]).await;
    assert_eq!(sync_finished(&app).await, "done");
    let doc = html(app.get("/stats").await).await;
    assert_eq!(text_of(&doc, "#stat-unlocked").as_deref(), Some("5"));
    assert_eq!(text_of(&doc, "#stat-perfect").as_deref(), Some("2"));
}

#[actix_web::test]
async fn a_key_past_its_daily_budget_stops_calling_steam_and_says_why() {
    let fake = FakeSteam::start(portal_state()).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_BASE_URL".into(), base);
        env.insert("STEAM_DAILY_CALL_BUDGET".into(), "4".into());
    })
    .await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    // The key's check and the persona are a call each; the sync gets two
    // more, then stops.
    assert_eq!(location(&link(&app, "76561197960287930", KEY).await), "/settings/steam");
    let error = app
        .wait_for("the sync error", |conn| {
            steam_accounts::table.select(steam_accounts::last_sync_error).first::<Option<String>>(conn).unwrap()
        })
        .await;
    assert!(error.contains("daily call budget"), "{error}");
    let total: u64 =
        fake.state.lock().unwrap().calls.iter().filter(|(m, _)| *m != "check_authentication").map(|(_, n)| n).sum();
    // In-flight calls are cancelled when the sync stops, so fewer may land.
    assert!((3..=4).contains(&total), "no call past the budget reached Steam: {total}");
}

#[actix_web::test]
async fn at_most_three_progress_streams_per_user_are_open_at_once() {
    let mut state = portal_state();
    // Slow answers keep the sync running while the streams are open.
    state.latency = std::time::Duration::from_millis(1500);
    let (app, _fake) = app_with_steam(state).await;
    link(&app, "76561197960287930", KEY).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let res = app.get("/settings/steam/progress").await;
        assert_eq!(res.status(), 200);
        open.push(res);
    }
    let res = app.get("/settings/steam/progress").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    drop(open);
}

#[actix_web::test]
async fn unlinking_removes_the_account_and_its_key() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    link(&app, "76561197960287930", KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let res = app.submit("/settings/steam", "/settings/steam/unlink", &[]).await;
    assert_eq!(location(&res), "/settings/steam");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(steam_accounts::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
    let page = html(app.get("/settings/steam").await).await;
    assert!(text_of(&page, "#steam-account").is_none());
    // Sync now without an account says what to do.
    let res = app.submit("/settings/steam", "/settings/steam/sync", &[]).await;
    assert_eq!(res.status(), 303);
    let page = html(app.get("/settings/steam").await).await;
    assert!(text_of(&page, ".flash-error").unwrap().contains("Link a Steam account first"));
}

#[actix_web::test]
async fn a_sync_whose_worker_died_is_taken_over_and_redoes_only_unfinished_games() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, "76561197960287930", KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let before = fake.calls("GetPlayerAchievements");
    {
        use questline::schema::library_entries;
        let mut conn = app.pool.get().unwrap();
        // As if the worker died after committing Portal but before Portal 2:
        // its job is still "running" with a lease that has run out.
        diesel::update(library_entries::table.filter(library_entries::appid.eq(620)))
            .set(library_entries::achievements_synced_at.eq(None::<chrono::DateTime<chrono::Utc>>))
            .execute(&mut conn)
            .unwrap();
        diesel::update(jobs::table.filter(jobs::kind.eq("steam_sync")))
            .set((
                jobs::status.eq("running"),
                jobs::locked_until.eq(chrono::Utc::now() - chrono::Duration::seconds(1)),
                jobs::finished_at.eq(None::<chrono::DateTime<chrono::Utc>>),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    assert_eq!(sync_finished(&app).await, "done");
    assert_eq!(fake.calls("GetPlayerAchievements"), before + 1, "only the unfinished game is fetched again");
    let mut conn = app.pool.get().unwrap();
    let attempts: i32 =
        jobs::table.filter(jobs::kind.eq("steam_sync")).select(jobs::attempts).first(&mut conn).unwrap();
    assert_eq!(attempts, 2, "the same job was taken over, not a new one queued");
    let game = html(app.get("/library/620").await).await;
    assert_eq!(text_of(&game, "#unlocked").as_deref(), Some("2 / 2"));
}

#[actix_web::test]
async fn a_legacy_account_with_only_a_key_is_completed_by_signing_in_through_steam() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    let cipher = questline::crypto::Cipher::from_settings(&app.settings);
    {
        let mut conn = app.pool.get().unwrap();
        let id: i64 = questline::schema::users::table.select(questline::schema::users::id).first(&mut conn).unwrap();
        questline::steam::model::SteamAccount::keep_unproven(&mut conn, &cipher, id, None, Some(KEY)).unwrap();
        // Never queued for a daily sync while no SteamID is linked.
        assert_eq!(questline::jobs::enqueue_daily_resyncs(&mut conn).unwrap(), 0);
    }
    let page = html(app.get("/settings/steam").await).await;
    assert!(text_of(&page, "#link-steam").is_some(), "asked to link through Steam");
    assert_eq!(text_of(&page, "#key-hint").as_deref(), Some("••••CDEF"), "the key it brought is kept");
    let res = link(&app, &STEAM_ID.to_string(), "").await;
    assert_eq!(location(&res), "/settings/steam");
    assert_eq!(sync_finished(&app).await, "done");
    let mut conn = app.pool.get().unwrap();
    let (steam_id, proven): (Option<i64>, bool) = steam_accounts::table
        .select((steam_accounts::steam_id, steam_accounts::verified_at.is_not_null()))
        .first(&mut conn)
        .unwrap();
    assert_eq!((steam_id, proven), (Some(STEAM_ID as i64), true));
}
