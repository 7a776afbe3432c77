//! Steam identity: signing in and up through Steam's OpenID provider (the
//! fake Steam's), every answer that must not be believed, one account per
//! SteamID, unproven links kept off every public page, and the instance key.

use diesel::prelude::*;
use questline::schema::{steam_accounts, steam_id_conflicts, users};
use questline::steam::fake::{return_url, sign, FakeSteam};

use crate::helpers::{html, location, new_client, spawn_app_with, text_of, TestApp};
use crate::steam::{link_with, portal_state, steam_openid, steam_start, sync_finished, KEY, PASSWORD, STEAM_ID};

const OTHER_ID: u64 = 76561197960287931;

/// An app whose instance key is the fake Steam's, with nobody signed in.
async fn app_with_instance_key(vars: &[(&str, &str)]) -> (TestApp, FakeSteam) {
    let mut state = portal_state();
    state.players.insert(
        OTHER_ID,
        questline::steam::fake::FakePlayer { persona: "Robin Ü.".into(), public: true, games: vec![] },
    );
    let fake = FakeSteam::start(state).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_BASE_URL".into(), base);
        env.insert("STEAM_API_KEY".into(), KEY.into());
        for (k, v) in vars {
            env.insert((*k).into(), (*v).into());
        }
    })
    .await;
    (app, fake)
}

fn user_id(app: &TestApp, name: &str) -> i64 {
    users::table.filter(users::username.eq(name)).select(users::id).first(&mut app.pool.get().unwrap()).unwrap()
}

/// Who `client` is signed in as, by the account menu of the dashboard.
async fn signed_in_as(app: &TestApp, client: &reqwest::Client) -> Option<String> {
    let res = client.get(app.url("/account")).send().await.unwrap();
    if res.status() != 200 {
        return None;
    }
    text_of(&html(res).await, "#username")
}

/// Signs up through Steam in `client` as `steam_id` with `username`.
async fn sign_up(app: &TestApp, client: &reqwest::Client, steam_id: u64, username: &str, email: &str) {
    let res = steam_openid(app, client, "/login", "signin", steam_id).await;
    assert_eq!(location(&res), "/register/steam");
    let res = app
        .submit_with(client, "/register/steam", "/register/steam", &[("username", username), ("email", email)])
        .await;
    assert_eq!(location(&res), "/settings/steam", "the account is made");
}

/// Steam's answer for `steam_id` to a sign-in started on `client`, with
/// `change` applied to its fields; the fields are signed again by the fake
/// when `resign`, so the provider vouches for whatever `change` did.
async fn forged(
    app: &TestApp,
    fake: &FakeSteam,
    client: &reqwest::Client,
    steam_id: u64,
    resign: bool,
    change: impl FnOnce(&mut Vec<(String, String)>),
) -> reqwest::Response {
    let return_to = steam_start(app, client, "/login", "signin").await;
    let mut fields = fake.assertion(steam_id, &return_to, chrono::Utc::now());
    change(&mut fields);
    if resign {
        sign(&mut fields);
    }
    client.get(return_url(&return_to, &fields)).send().await.unwrap()
}

fn set(fields: &mut [(String, String)], name: &str, value: &str) {
    fields.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.to_owned();
}

/// Alice, registered and signed in on `app.client`; her id.
async fn signed_in_alice(app: &TestApp) -> i64 {
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    user_id(app, "alice")
}

/// A link made before proof was asked for (or brought by an import).
fn keep_unproven(app: &TestApp, user: i64, steam_id: Option<u64>, key: Option<&str>) {
    let mut conn = app.pool.get().unwrap();
    let cipher = questline::crypto::Cipher::from_settings(&app.settings);
    questline::steam::model::SteamAccount::keep_unproven(&mut conn, &cipher, user, steam_id, key).unwrap();
}

fn accounts(app: &TestApp) -> i64 {
    users::table.count().get_result(&mut app.pool.get().unwrap()).unwrap()
}

#[actix_web::test]
async fn a_new_user_joins_through_steam_and_sees_their_library_without_a_key() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    let res = steam_openid(&app, &app.client, "/login", "signin", STEAM_ID).await;
    assert_eq!(location(&res), "/register/steam", "no account has proven it: sign-up follows");
    let page = html(app.get("/register/steam").await).await;
    assert!(text_of(&page, "#proven-steam-account").unwrap().contains("Gabe"));
    let sel = scraper::Selector::parse("input[name=username]").unwrap();
    assert_eq!(page.select(&sel).next().unwrap().value().attr("value"), Some("Gabe"), "proposed from the persona");

    let res =
        app.submit("/register/steam", "/register/steam", &[("username", "gabe"), ("email", "Gabe@Example.com ")]).await;
    assert_eq!(location(&res), "/settings/steam");
    assert_eq!(signed_in_as(&app, &app.client).await.as_deref(), Some("gabe"));
    assert_eq!(sync_finished(&app).await, "done");
    let library = html(app.get("/library").await).await;
    assert_eq!(text_of(&library, "#game-count").as_deref(), Some("3 games"), "synced with the instance key");

    let mut conn = app.pool.get().unwrap();
    let (password, email, pending): (Option<String>, Option<String>, Option<String>) =
        users::table.select((users::password_hash, users::email, users::pending_email)).first(&mut conn).unwrap();
    assert_eq!(password, None, "no password: they sign in through Steam");
    assert_eq!((email, pending.as_deref()), (None, Some("gabe@example.com")), "the address waits for its proof");
    let (proven, own_key): (bool, Option<Vec<u8>>) = steam_accounts::table
        .select((steam_accounts::verified_at.is_not_null(), steam_accounts::api_key_enc))
        .first(&mut conn)
        .unwrap();
    assert!(proven && own_key.is_none());
    let mail = app.mail.next_email().await;
    assert_eq!(mail.to, "gabe@example.com");
    assert!(mail.link("/verify-email/").starts_with("/verify-email/"));

    // Signed out, the same Steam account signs back in to the same account.
    app.submit("/dashboard", "/logout", &[]).await;
    let res = steam_openid(&app, &app.client, "/login", "signin", STEAM_ID).await;
    assert_eq!(location(&res), "/dashboard");
    assert_eq!(signed_in_as(&app, &app.client).await.as_deref(), Some("gabe"));
    assert_eq!(accounts(&app), 1);
}

#[actix_web::test]
async fn a_sign_up_keeps_what_was_typed_when_the_username_is_taken_or_wrong() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    app.register_verified("Gabe", "gabe@example.com", PASSWORD).await;
    steam_openid(&app, &app.client, "/login", "signin", STEAM_ID).await;
    let page = html(app.get("/register/steam").await).await;
    let sel = scraper::Selector::parse("input[name=username]").unwrap();
    assert_eq!(page.select(&sel).next().unwrap().value().attr("value"), Some("Gabe2"), "a free name is proposed");
    let res =
        app.submit("/register/steam", "/register/steam", &[("username", "gabe"), ("email", "x@example.com")]).await;
    assert_eq!(res.status(), 422);
    let doc = html(res).await;
    assert!(text_of(&doc, "#username-error").unwrap().contains("taken"));
    let res = app.submit("/register/steam", "/register/steam", &[("username", "ok_name"), ("email", "nope")]).await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#email-error").is_some());
    assert_eq!(accounts(&app), 1, "nothing was made");
}

#[actix_web::test]
async fn signing_in_through_steam_to_an_account_with_2fa_still_asks_for_the_code() {
    let (app, _fake) = app_with_instance_key(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "1000")]).await;
    let (secret, _) = crate::two_factor::enrol(&app).await;
    link_with(&app, &app.client, &STEAM_ID.to_string(), "").await;

    let browser = new_client();
    let res = steam_openid(&app, &browser, "/login", "signin", STEAM_ID).await;
    assert_eq!(location(&res), "/login/2fa", "Steam is the first step only");
    assert_eq!(signed_in_as(&app, &browser).await, None);
    let code = crate::two_factor::totp(&secret).generate(crate::two_factor::now() + 30);
    let res = app.submit_with(&browser, "/login/2fa", "/login/2fa", &[("code", &code)]).await;
    assert_eq!(location(&res), "/dashboard");
    assert_eq!(signed_in_as(&app, &browser).await.as_deref(), Some("alice"));
    let method: String = diesel::sql_query(
        "SELECT details->>'method' AS method FROM audit_log
         WHERE action = 'login' AND details ? 'method' ORDER BY id DESC LIMIT 1",
    )
    .get_result::<Method>(&mut app.pool.get().unwrap())
    .unwrap()
    .method;
    assert_eq!(method, "steam+totp");
}

#[derive(QueryableByName)]
struct Method {
    #[diesel(sql_type = diesel::sql_types::Text)]
    method: String,
}

#[actix_web::test]
async fn a_claimed_id_changed_after_signing_is_not_believed() {
    let (app, fake) = app_with_instance_key(&[]).await;
    let forged_id = format!("https://steamcommunity.com/openid/id/{OTHER_ID}");
    let res = forged(&app, &fake, &app.client, STEAM_ID, false, |f| {
        set(f, "openid.claimed_id", &forged_id);
        set(f, "openid.identity", &forged_id);
    })
    .await;
    assert_eq!(res.status(), 400);
    assert!(text_of(&html(res).await, "#steam-error").unwrap().contains("did not vouch"));
    assert_eq!(fake.calls("check_authentication"), 1, "the provider was asked");
    assert_eq!(app.get("/register/steam").await.status(), 303, "no SteamID was taken as proven");
}

#[actix_web::test]
async fn an_answer_the_provider_does_not_vouch_for_is_refused() {
    let (app, fake) = app_with_instance_key(&[]).await;
    fake.state.lock().unwrap().openid_refuses = true;
    let res = steam_openid(&app, &app.client, "/login", "signin", STEAM_ID).await;
    assert_eq!(res.status(), 400);
    assert!(text_of(&html(res).await, "#steam-error").unwrap().contains("did not vouch"));
    assert_eq!(app.get("/register/steam").await.status(), 303);
}

#[actix_web::test]
async fn a_nonce_is_believed_once_and_only_while_fresh() {
    let (app, fake) = app_with_instance_key(&[]).await;
    sign_up(&app, &app.client, STEAM_ID, "gabe", "gabe@example.com").await;
    let used: String =
        diesel::sql_query("SELECT details->>'steam_id' AS method FROM audit_log WHERE action = 'steam_openid' LIMIT 1")
            .get_result::<Method>(&mut app.pool.get().unwrap())
            .unwrap()
            .method;
    assert_eq!(used, STEAM_ID.to_string());

    // Another browser replays the nonce in an answer the provider signs.
    let eve = new_client();
    let first = steam_start(&app, &eve, "/login", "signin").await;
    let fields = fake.assertion(STEAM_ID, &first, chrono::Utc::now());
    let nonce = fields.iter().find(|(k, _)| k == "openid.response_nonce").unwrap().1.clone();
    let res = eve.get(return_url(&first, &fields)).send().await.unwrap();
    assert_eq!(location(&res), "/dashboard", "the first use signs in");
    eve.post(app.url("/logout")).send().await.unwrap();
    let eve = new_client();
    let res = forged(&app, &fake, &eve, STEAM_ID, true, |f| set(f, "openid.response_nonce", &nonce)).await;
    assert_eq!(res.status(), 400);
    assert!(text_of(&html(res).await, "#steam-error").unwrap().contains("already used"));
    assert_eq!(signed_in_as(&app, &eve).await, None);

    // A nonce from ten minutes ago, however well signed, is too old.
    let old = (chrono::Utc::now() - chrono::Duration::minutes(10)).format("%Y-%m-%dT%H:%M:%SZold1").to_string();
    let res = forged(&app, &fake, &eve, STEAM_ID, true, |f| set(f, "openid.response_nonce", &old)).await;
    assert_eq!(res.status(), 400);
    assert!(text_of(&html(res).await, "#steam-error").unwrap().contains("too old"));
    assert_eq!(signed_in_as(&app, &eve).await, None);
}

#[actix_web::test]
async fn an_answer_for_another_return_address_or_from_another_endpoint_is_refused() {
    let (app, fake) = app_with_instance_key(&[]).await;
    sign_up(&app, &new_client(), STEAM_ID, "gabe", "gabe@example.com").await;
    let eve = new_client();
    let res = forged(&app, &fake, &eve, STEAM_ID, true, |f| {
        let elsewhere = f.iter().find(|(k, _)| k == "openid.return_to").unwrap().1.replace("127.0.0.1", "localhost");
        set(f, "openid.return_to", &elsewhere);
    })
    .await;
    assert_eq!(res.status(), 400);
    assert!(text_of(&html(res).await, "#steam-error").unwrap().contains("not meant for this sign-in"));
    let res = forged(&app, &fake, &eve, STEAM_ID, true, |f| {
        set(f, "openid.op_endpoint", "https://evil.example/openid/login")
    })
    .await;
    assert_eq!(res.status(), 400);
    assert!(text_of(&html(res).await, "#steam-error").unwrap().contains("did not come from Steam"));
    // Fields outside the signature cannot be trusted.
    let res = forged(&app, &fake, &eve, STEAM_ID, true, |f| {
        set(f, "openid.signed", "signed,op_endpoint,identity,return_to,response_nonce,assoc_handle")
    })
    .await;
    assert_eq!(res.status(), 400);
    assert!(text_of(&html(res).await, "#steam-error").unwrap().contains("not signed as a whole"));
    assert_eq!(signed_in_as(&app, &eve).await, None, "no forgery signed anyone in");
}

#[actix_web::test]
async fn an_answer_brought_to_another_browser_signs_nobody_in() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    sign_up(&app, &new_client(), STEAM_ID, "gabe", "gabe@example.com").await;
    // Eve signs in through Steam as herself and sends the way back to
    // Alice's browser (login CSRF), or Alice's answer reaches Eve.
    let eve = new_client();
    let back = crate::steam::steam_return_url(&app, &eve, "/login", "signin", STEAM_ID).await;
    let victim = new_client();
    victim.get(app.url("/login")).send().await.unwrap();
    let res = victim.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(text_of(&html(res).await, "#steam-error").unwrap().contains("another browser"));
    assert_eq!(signed_in_as(&app, &victim).await, None);
    // The browser that started it may still finish it.
    let res = eve.get(&back).send().await.unwrap();
    assert_eq!(location(&res), "/dashboard");
}

#[actix_web::test]
async fn a_cancelled_sign_in_says_so_and_changes_nothing() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    let return_to = steam_start(&app, &app.client, "/login", "signin").await;
    let cancel = return_url(
        &return_to,
        &[("openid.ns".into(), questline::infra::openid::NS.into()), ("openid.mode".into(), "cancel".into())],
    );
    let res = app.client.get(cancel).send().await.unwrap();
    assert_eq!(location(&res), "/login");
    let page = html(app.get("/login").await).await;
    assert!(page.html().contains("cancelled"));
    assert_eq!(accounts(&app), 0);
}

#[actix_web::test]
async fn a_steam_id_proven_by_one_account_is_refused_to_another_and_its_owner_told() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    sign_up(&app, &app.client, STEAM_ID, "gabe", "gabe@example.com").await;
    // Gabe confirms his address so he can be told.
    let mail = app.mail.next_email().await;
    let link = mail.link("/verify-email/");
    app.submit(&link, "/verify-email", &[("token", link.rsplit('/').next().unwrap())]).await;

    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&bob, "bob", PASSWORD).await;
    let res = link_with(&app, &bob, &STEAM_ID.to_string(), "").await;
    assert_eq!(location(&res), "/settings/steam");
    let page = html(bob.get(app.url("/settings/steam")).send().await.unwrap()).await;
    assert!(page.html().contains("linked to another Questline account"));
    assert!(text_of(&page, "#link-steam").is_some(), "Bob has nothing linked");
    let mut conn = app.pool.get().unwrap();
    let holders: Vec<i64> = steam_accounts::table
        .filter(steam_accounts::steam_id.eq(STEAM_ID as i64))
        .select(steam_accounts::user_id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(holders, vec![user_id(&app, "gabe")]);
    let outcome: String = steam_id_conflicts::table.select(steam_id_conflicts::outcome).first(&mut conn).unwrap();
    assert_eq!(outcome, "refused");
    let notice = app.mail.next_email().await;
    assert_eq!(notice.to, "gabe@example.com");
    assert!(notice.subject.contains("tried to link your Steam account"));

    // Trying again and again makes one line and one mail an hour.
    for _ in 0..3 {
        link_with(&app, &bob, &STEAM_ID.to_string(), "").await;
    }
    let lines: i64 = steam_id_conflicts::table.count().get_result(&mut conn).unwrap();
    assert_eq!(lines, 1);
    let notices: i64 = diesel::sql_query(
        "SELECT count(*) AS n FROM jobs WHERE payload->>'to' = 'gabe@example.com'
         AND payload->>'subject' LIKE '%tried to link%'",
    )
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n;
    assert_eq!(notices, 1, "the holder is not flooded");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[actix_web::test]
async fn an_unproven_link_goes_to_whoever_proves_the_steam_id() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    // Mallory typed a famous hunter's SteamID before proof was asked for.
    app.register_verified("mallory", "mallory@example.com", PASSWORD).await;
    keep_unproven(&app, user_id(&app, "mallory"), Some(STEAM_ID), None);
    let res = steam_openid(&app, &app.client, "/login", "signin", STEAM_ID).await;
    assert_eq!(location(&res), "/register/steam", "an unproven link signs nobody in");
    let page = html(app.get("/register/steam").await).await;
    assert!(text_of(&page, "#held-unproven").is_some());
    let res =
        app.submit("/register/steam", "/register/steam", &[("username", "gabe"), ("email", "gabe@example.com")]).await;
    let status = res.status();
    assert_eq!(status, 303, "{}", res.text().await.unwrap());

    let mut conn = app.pool.get().unwrap();
    let holder: i64 = steam_accounts::table
        .filter(steam_accounts::steam_id.eq(STEAM_ID as i64))
        .select(steam_accounts::user_id)
        .first(&mut conn)
        .unwrap();
    assert_eq!(holder, user_id(&app, "gabe"));
    let (outcome, claimant): (String, Option<i64>) = steam_id_conflicts::table
        .select((steam_id_conflicts::outcome, steam_id_conflicts::claimant_id))
        .first(&mut conn)
        .unwrap();
    assert_eq!((outcome.as_str(), claimant), ("released", Some(holder)));
    let mut told = Vec::new();
    for _ in 0..2 {
        told.push(app.mail.next_email().await);
    }
    assert!(told.iter().any(|m| m.to == "mallory@example.com" && m.subject.contains("unlinked")), "Mallory is told");
}

#[actix_web::test]
async fn unproven_links_stay_off_leaderboards_compare_and_public_profiles_until_proven() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    let alice = signed_in_alice(&app).await;
    keep_unproven(&app, alice, Some(STEAM_ID), None);
    {
        let mut conn = app.pool.get().unwrap();
        questline::jobs::model::enqueue(&mut conn, questline::jobs::STEAM_SYNC, alice).unwrap();
    }
    assert_eq!(sync_finished(&app).await, "done", "an unproven link keeps syncing");
    app.submit(
        "/settings/profile",
        "/settings/profile",
        &[
            ("profile_public", "1"),
            ("show_stats", "1"),
            ("show_perfect", "1"),
            ("show_library", "1"),
            ("on_leaderboard", "1"),
        ],
    )
    .await;
    let own = html(app.get("/settings/steam").await).await;
    assert!(text_of(&own, "#verify-notice").unwrap().contains("not on leaderboards or compare"));

    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&bob, "bob", PASSWORD).await;
    let board = bob.get(app.url("/leaderboards")).send().await.unwrap().text().await.unwrap();
    assert!(!board.contains("alice"), "not ranked");
    let profile = html(bob.get(app.url("/u/alice")).send().await.unwrap()).await;
    assert!(text_of(&profile, "#profile-unverified").is_some());
    assert!(text_of(&profile, "#profile-stats").is_none() && text_of(&profile, "#profile-perfect").is_none());
    assert!(!profile.html().contains("Gabe"), "not even the persona");
    assert_eq!(bob.get(app.url("/u/alice/compare")).send().await.unwrap().status(), 404);

    // Alice proves it: everything shows.
    let res = link_with(&app, &app.client, &STEAM_ID.to_string(), "").await;
    assert_eq!(location(&res), "/settings/steam");
    let profile = html(bob.get(app.url("/u/alice")).send().await.unwrap()).await;
    assert!(text_of(&profile, "#profile-verified").is_some());
    assert!(text_of(&profile, "#profile-stats").is_some(), "stats show");
    let board = bob.get(app.url("/leaderboards")).send().await.unwrap().text().await.unwrap();
    assert!(board.contains("alice"), "ranked once proven");
    assert_eq!(bob.get(app.url("/u/alice/compare")).send().await.unwrap().status(), 200);
}

#[actix_web::test]
async fn an_account_made_through_steam_cannot_unlink_until_it_has_a_password() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    sign_up(&app, &app.client, STEAM_ID, "gabe", "gabe@example.com").await;
    // Unlinking is a sensitive change: confirm first, through Steam.
    let res = app.get("/settings/steam/unlink").await;
    assert_eq!(location(&res), "/account/reauth?next=%2Fsettings%2Fsteam%2Funlink");
    let page = html(app.get("/account/reauth?next=%2Fsettings%2Fsteam%2Funlink").await).await;
    assert!(text_of(&page, "#reauth-steam").is_some(), "offered to an account without a password");
    let res = steam_openid(&app, &app.client, "/account/reauth", "reauth", STEAM_ID).await;
    assert_eq!(location(&res), "/account", "the start form carries no next; the account page");
    let res = app.submit("/settings/steam/unlink", "/settings/steam/unlink", &[]).await;
    assert_eq!(location(&res), "/settings/steam");
    let count: i64 = steam_accounts::table.count().get_result(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(count, 1, "still linked: without a password Gabe could not sign in again");
    let res = app
        .submit(
            "/account/password",
            "/account/password",
            &[("password", "amber kettle lantern harbour"), ("password_confirmation", "amber kettle lantern harbour")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let res = app.submit("/settings/steam/unlink", "/settings/steam/unlink", &[]).await;
    assert_eq!(location(&res), "/settings/steam");
    let count: i64 = steam_accounts::table.count().get_result(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(count, 0, "unlinked, and the SteamID is free again");
}

#[actix_web::test]
async fn signing_in_as_someone_else_carries_no_confirmation_over() {
    let (app, _fake) = app_with_instance_key(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "1000")]).await;
    signed_in_alice(&app).await;
    // Alice confirms her password, then Bob signs in in the same browser.
    crate::two_factor::reauth(&app, &app.client, "/account/password", &[("password", PASSWORD)]).await;
    assert_eq!(app.get("/account/password").await.status(), 200, "Alice is in sudo mode");
    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&app.client, "bob", PASSWORD).await;
    assert_eq!(location(&app.get("/account/password").await), "/account/reauth?next=%2Faccount%2Fpassword");
}

#[actix_web::test]
async fn re_confirming_through_another_steam_account_is_refused() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    sign_up(&app, &app.client, STEAM_ID, "gabe", "gabe@example.com").await;
    let res = steam_openid(&app, &app.client, "/account/reauth?next=%2Faccount%2Fpassword", "reauth", OTHER_ID).await;
    assert!(location(&res).starts_with("/account/reauth"));
    assert_eq!(location(&app.get("/account/password").await), "/account/reauth?next=%2Faccount%2Fpassword");
}

#[actix_web::test]
async fn users_without_a_key_sync_within_their_daily_share_of_the_instance_key() {
    let (app, fake) = app_with_instance_key(&[("STEAM_SHARED_CALLS_PER_USER", "3")]).await;
    sign_up(&app, &app.client, STEAM_ID, "gabe", "gabe@example.com").await;
    let error = app
        .wait_for("the share to run out", |conn| {
            use questline::schema::jobs;
            jobs::table
                .filter(jobs::kind.eq("steam_sync"))
                .select(jobs::last_error)
                .load::<Option<String>>(conn)
                .unwrap()
                .into_iter()
                .flatten()
                .find(|e| e.contains("share"))
        })
        .await;
    assert!(error.contains("resumes tomorrow"), "{error}");
    let waits_until: chrono::DateTime<chrono::Utc> = questline::schema::jobs::table
        .filter(questline::schema::jobs::last_error.like("%share%"))
        .select(questline::schema::jobs::run_after)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    let midnight = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert!(waits_until >= midnight - chrono::Duration::seconds(1), "the sync waits for the next UTC day");
    // The persona asked for at sign-up, before there is an account, and
    // then the three calls of Gabe's share.
    let calls: u64 =
        fake.state.lock().unwrap().calls.iter().filter(|(m, _)| *m != "check_authentication").map(|(_, n)| n).sum();
    assert!(calls <= 4, "no call past the share reached Steam: {calls}");
}

#[actix_web::test]
async fn the_admin_sets_the_instance_key_and_sees_its_use_and_the_conflicts() {
    let fake = FakeSteam::start(portal_state()).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_BASE_URL".into(), base);
        env.insert("RATE_LIMIT_LOGIN_PER_MINUTE".into(), "1000".into());
    })
    .await;
    crate::two_factor::enrol(&app).await;
    diesel::update(users::table.filter(users::username.eq("alice")))
        .set(users::role.eq("admin"))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    let page = html(app.get("/admin/steam").await).await;
    assert!(text_of(&page, "#instance-key-state").unwrap().contains("No instance key"));
    let res = app.submit("/admin/steam", "/admin/steam/key", &[("api_key", "not a key")]).await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#instance-key-error").is_some());
    let res = app.submit("/admin/steam", "/admin/steam/key", &[("api_key", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")]).await;
    assert_eq!(res.status(), 422, "Steam refuses it");
    let res = app.submit("/admin/steam", "/admin/steam/key", &[("api_key", &KEY.to_lowercase())]).await;
    assert_eq!(location(&res), "/admin/steam");
    let stored: Vec<u8> = questline::schema::instance_secrets::table
        .select(questline::schema::instance_secrets::value_enc)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(!stored.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "stored encrypted");

    // Bob joins through Steam without a key, syncs with the instance's,
    // and shows on the page with his calls.
    let bob = new_client();
    sign_up(&app, &bob, STEAM_ID, "bob", "bob@example.com").await;
    assert_eq!(app.mail.next_email().await.to, "bob@example.com", "his address waits for its link");
    assert_eq!(sync_finished(&app).await, "done");
    let page = html(app.get("/admin/steam").await).await;
    assert!(text_of(&page, "#instance-key-state").unwrap().contains("CDEF"));
    let top = text_of(&page, "#shared-top").unwrap();
    assert!(top.contains("bob"), "{top}");
    let calls: u64 = text_of(&page, "#shared-calls").unwrap().parse().unwrap();
    assert!(calls >= 3, "the key's calls today: {calls}");

    // A second account proving Bob's SteamID is refused and listed.
    let carol = new_client();
    app.register_verified_with(&carol, "carol", "carol@example.com", PASSWORD).await;
    app.login_with(&carol, "carol", PASSWORD).await;
    link_with(&app, &carol, &STEAM_ID.to_string(), "").await;
    let page = html(app.get("/admin/steam").await).await;
    let conflicts = text_of(&page, "#conflicts").unwrap();
    assert!(conflicts.contains("bob") && conflicts.contains("carol") && conflicts.contains("Refused"), "{conflicts}");
    assert_eq!(carol.get(app.url("/admin/steam")).send().await.unwrap().status(), 404);

    // Removed, no key is in force any more (STEAM_API_KEY is not set here).
    let res = app.submit("/admin/steam", "/admin/steam/key/remove", &[]).await;
    assert_eq!(location(&res), "/admin/steam");
    let page = html(app.get("/admin/steam").await).await;
    assert!(text_of(&page, "#instance-key-state").unwrap().contains("No instance key"));
}

#[test]
fn the_migration_keeps_a_steam_id_held_twice_for_the_first_to_link_it() {
    use diesel::connection::SimpleConnection;
    use diesel_migrations::MigrationHarness;
    let url = crate::helpers::create_empty_database();
    let mut conn = diesel::PgConnection::establish(&url).unwrap();
    conn.run_pending_migrations(questline::db::MIGRATIONS).unwrap();
    // Back to before one account per SteamID (the migrations since, then
    // that one), with the same SteamID linked three times (two with a key).
    while conn.revert_last_migration(questline::db::MIGRATIONS).unwrap().to_string().replace('-', "")
        != "20261207000004"
    {}
    conn.batch_execute(
        "INSERT INTO users (id, username, email) VALUES (1, 'first', 'a@x.test'), (2, 'keyed', 'b@x.test'), (3, 'bare', 'c@x.test');
         INSERT INTO steam_accounts (user_id, steam_id, api_key_enc, api_key_key_id, api_key_last4, linked_at) VALUES
           (1, 76561197960287930, NULL, NULL, NULL, now() - interval '2 days'),
           (2, 76561197960287930, '\\x00', 'k1', 'ABCD', now() - interval '1 day'),
           (3, 76561197960287930, NULL, NULL, NULL, now())",
    )
    .unwrap();
    conn.run_pending_migrations(questline::db::MIGRATIONS).unwrap();
    let rows: Vec<(i64, Option<i64>)> = steam_accounts::table
        .order(steam_accounts::user_id)
        .select((steam_accounts::user_id, steam_accounts::steam_id))
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows, vec![(1, Some(76561197960287930)), (2, None)], "the first keeps it; the key stays");
    let conflicts: Vec<(Option<i64>, Option<i64>, String)> = steam_id_conflicts::table
        .order(steam_id_conflicts::claimant_id)
        .select((steam_id_conflicts::holder_id, steam_id_conflicts::claimant_id, steam_id_conflicts::outcome))
        .load(&mut conn)
        .unwrap();
    assert_eq!(conflicts, vec![(Some(1), Some(2), "released".into()), (Some(1), Some(3), "released".into())]);
    let twice = diesel::sql_query("INSERT INTO steam_accounts (user_id, steam_id) VALUES (3, 76561197960287930)")
        .execute(&mut conn);
    assert!(twice.is_err(), "the database refuses a second holder");
}

#[actix_web::test]
async fn a_signature_over_a_return_address_with_newlines_cannot_be_recut_for_another_steam_id() {
    let (app, fake) = app_with_instance_key(&[]).await;
    sign_up(&app, &new_client(), STEAM_ID, "gabe", "gabe@example.com").await;
    // Eve gets Steam to sign her own SteamID with a return address shaped
    // so that the signed text, cut differently, names Gabe's.
    let eve = new_client();
    let ra = steam_start(&app, &eve, "/login", "signin").await;
    let e = app.settings.steam_openid_url.to_string();
    let id = |n: u64| format!("{}{n}", questline::infra::openid::CLAIMED_ID_PREFIX);
    let (own, victim) = (id(OTHER_ID), id(STEAM_ID));
    let nonce = format!("{}f0f0f0", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"));
    let rp = app.url("/x");
    let w1 = format!("assoc_handle\nop_endpoint:{e}\nclaimed_id:{own}\nidentity:{own}\nreturn_to:{rp}");
    let signed = format!(
        "signed,op_endpoint,claimed_id,identity,return_to,response_nonce,assoc_handle\nop_endpoint:{e}\nclaimed_id:{own}\nidentity:{own}\nreturn_to:{rp},assoc_handle"
    );
    let r = format!(
        "{rp},assoc_handle\nop_endpoint:{e}\nclaimed_id:{victim}\nidentity:{victim}\nreturn_to:{ra}\nresponse_nonce:{nonce}\n{w1}:"
    );
    let original = fake.assertion(OTHER_ID, &r, chrono::Utc::now());
    let field = |k: &str| original.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let forged: Vec<(String, String)> = vec![
        ("openid.ns".into(), field("openid.ns")),
        ("openid.mode".into(), "id_res".into()),
        ("openid.op_endpoint".into(), e.clone()),
        ("openid.claimed_id".into(), victim.clone()),
        ("openid.identity".into(), victim.clone()),
        ("openid.return_to".into(), ra.clone()),
        ("openid.response_nonce".into(), nonce.clone()),
        ("openid.assoc_handle".into(), "1234567890".into()),
        ("openid.signed".into(), signed),
        (format!("openid.{w1}"), format!("\nresponse_nonce:{}", field("openid.response_nonce"))),
        ("openid.sig".into(), field("openid.sig")),
    ];
    let checks = fake.calls("check_authentication");
    let res = eve.get(return_url(&ra, &forged)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(fake.calls("check_authentication"), checks, "refused before Steam is even asked");
    assert_eq!(signed_in_as(&app, &eve).await, None);
}

#[actix_web::test]
async fn steam_does_not_re_confirm_an_account_with_2fa() {
    let (app, _fake) = app_with_instance_key(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "1000")]).await;
    crate::two_factor::enrol(&app).await;
    link_with(&app, &app.client, &STEAM_ID.to_string(), "").await;
    // Signing in through Steam is not the password and code it takes.
    let page = html(app.get("/account/reauth?next=%2Faccount%2Fpassword").await).await;
    assert!(text_of(&page, "#reauth-steam").is_none(), "not offered");
    let res = steam_openid(&app, &app.client, "/account/reauth?next=%2Faccount%2Fpassword", "reauth", STEAM_ID).await;
    assert!(location(&res).starts_with("/account/reauth"), "{}", location(&res));
}

#[actix_web::test]
async fn linking_a_steam_account_asks_for_the_password_first() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    signed_in_alice(&app).await;
    // A stolen session cannot add its own way in.
    let res = app.submit("/settings/steam", "/auth/steam", &[("intent", "link")]).await;
    assert_eq!(location(&res), "/account/reauth?next=%2Fsettings%2Fsteam");
    let count: i64 = steam_accounts::table.count().get_result(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(count, 0);
    let res = link_with(&app, &app.client, &STEAM_ID.to_string(), "").await;
    assert_eq!(location(&res), "/settings/steam", "with the password given, the link goes through");
}

#[actix_web::test]
async fn a_proof_for_another_steam_id_replaces_a_library_nobody_proved() {
    let (app, _fake) = app_with_instance_key(&[]).await;
    let alice = signed_in_alice(&app).await;
    // A library brought without a SteamID (an import whose SteamID was
    // dropped) must not stand as proven.
    keep_unproven(&app, alice, None, Some(KEY));
    {
        use questline::schema::library_entries;
        let mut conn = app.pool.get().unwrap();
        diesel::sql_query("INSERT INTO games (appid, name) VALUES (999, 'Unproven Game')").execute(&mut conn).unwrap();
        diesel::insert_into(library_entries::table)
            .values((library_entries::user_id.eq(alice), library_entries::appid.eq(999)))
            .execute(&mut conn)
            .unwrap();
    }
    link_with(&app, &app.client, &STEAM_ID.to_string(), "").await;
    assert_eq!(sync_finished(&app).await, "done");
    let library = html(app.get("/library").await).await;
    assert_eq!(text_of(&library, "#game-count").as_deref(), Some("3 games"), "only the proven SteamID's games");
    assert!(!library.html().contains("Unproven Game"));
}
