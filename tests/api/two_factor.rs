use diesel::prelude::*;
use questline::schema::users;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::helpers::{html, location, new_client, spawn_app_with, text_of, TestApp};

pub(crate) const PASSWORD: &str = "violet tractor pebble moonlight";

pub(crate) fn totp(secret_b32: &str) -> TOTP {
    let bytes = Secret::Encoded(secret_b32.to_owned()).to_bytes().unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, "test".into()).unwrap()
}

/// These tests sign in many times; the per-IP limit is tested elsewhere.
pub(crate) async fn app() -> TestApp {
    spawn_app_with(|env| {
        env.insert("RATE_LIMIT_LOGIN_PER_MINUTE".into(), "1000".into());
    })
    .await
}

pub(crate) fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

pub(crate) async fn reauth(
    app: &TestApp,
    client: &reqwest::Client,
    next: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = format!("/account/reauth?next={next}");
    let mut all = vec![("next", next)];
    all.extend_from_slice(fields);
    app.submit_with(client, &page, "/account/reauth", &all).await
}

/// Signs alice in on `app.client` and turns 2FA on; returns the secret and
/// the backup codes.
pub(crate) async fn enrol(app: &TestApp) -> (String, Vec<String>) {
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;

    // Starting set-up asks for the password first.
    let res = app.submit("/account/security", "/account/2fa/start", &[]).await;
    assert_eq!(location(&res), "/account/reauth?next=%2Faccount%2Fsecurity");
    let res = reauth(app, &app.client, "/account/security", &[("password", PASSWORD)]).await;
    assert_eq!(location(&res), "/account/security");

    let res = app.submit("/account/security", "/account/2fa/start", &[]).await;
    assert_eq!(location(&res), "/account/2fa/setup");
    let page = html(app.get("/account/2fa/setup").await).await;
    let secret = text_of(&page, "#totp-secret").unwrap();
    let sel = scraper::Selector::parse("img.qr").unwrap();
    assert!(page.select(&sel).next().unwrap().value().attr("src").unwrap().starts_with("data:image/png;base64,"));

    let res = app.submit("/account/2fa/setup", "/account/2fa/confirm", &[("code", "000000")]).await;
    assert_eq!(res.status(), 422);

    let code = totp(&secret).generate(now());
    let res = app.submit("/account/2fa/setup", "/account/2fa/confirm", &[("code", &code)]).await;
    assert_eq!(res.status(), 200);
    let doc = html(res).await;
    let sel = scraper::Selector::parse("#backup-codes code").unwrap();
    let codes: Vec<String> = doc.select(&sel).map(|e| e.text().collect()).collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

#[actix_web::test]
async fn with_2fa_on_a_sign_in_needs_a_fresh_code_and_a_code_works_once() {
    let app = app().await;
    let (secret, _) = enrol(&app).await;

    let laptop = new_client();
    let res = app.login_with(&laptop, "alice", PASSWORD).await;
    assert_eq!(location(&res), "/login/2fa");
    assert_eq!(laptop.get(app.url("/account")).send().await.unwrap().status(), 303, "not signed in yet");

    let res = app.submit_with(&laptop, "/login/2fa", "/login/2fa", &[("code", "123456")]).await;
    assert_eq!(res.status(), 401);

    // The enrolment used this step's code; the next step's is still fresh.
    let code = totp(&secret).generate(now() + 30);
    let res = app.submit_with(&laptop, "/login/2fa", "/login/2fa", &[("code", &code)]).await;
    assert_eq!(location(&res), "/dashboard");
    assert_eq!(laptop.get(app.url("/account")).send().await.unwrap().status(), 200);

    // The same code again, from another browser: refused.
    let phone = new_client();
    app.login_with(&phone, "alice", PASSWORD).await;
    let res = app.submit_with(&phone, "/login/2fa", "/login/2fa", &[("code", &code)]).await;
    assert_eq!(res.status(), 401);
}

#[actix_web::test]
async fn each_backup_code_signs_in_once() {
    let app = app().await;
    let (_, codes) = enrol(&app).await;
    let first = new_client();
    app.login_with(&first, "alice", PASSWORD).await;
    let res = app.submit_with(&first, "/login/2fa", "/login/2fa", &[("code", &codes[3].to_uppercase())]).await;
    assert_eq!(location(&res), "/dashboard");

    let second = new_client();
    app.login_with(&second, "alice", PASSWORD).await;
    let res = app.submit_with(&second, "/login/2fa", "/login/2fa", &[("code", &codes[3])]).await;
    assert_eq!(res.status(), 401);
}

#[actix_web::test]
async fn the_second_step_cannot_be_reached_without_the_password() {
    let app = app().await;
    let res = app.get("/login/2fa").await;
    assert_eq!(location(&res), "/login");
}

#[actix_web::test]
async fn the_totp_secret_is_stored_encrypted_with_its_key_id() {
    let app = app().await;
    let (secret, _) = enrol(&app).await;
    let raw = Secret::Encoded(secret).to_bytes().unwrap();
    let mut conn = app.pool.get().unwrap();
    let (enc, key_id): (Option<Vec<u8>>, Option<String>) =
        users::table.select((users::totp_secret_enc, users::totp_key_id)).first(&mut conn).unwrap();
    let enc = enc.unwrap();
    assert_eq!(key_id.as_deref(), Some("k1"));
    assert!(enc.len() >= raw.len() + 28, "nonce and tag are stored");
    assert!(!enc.windows(raw.len()).any(|w| w == raw.as_slice()));
}

#[actix_web::test]
async fn turning_2fa_off_needs_the_password_and_a_code() {
    let app = app().await;
    let (secret, _) = enrol(&app).await;
    let res =
        app.submit("/account/security", "/account/2fa/disable", &[("password", PASSWORD), ("code", "000000")]).await;
    assert_eq!(res.status(), 303);
    let doc = html(app.get("/account/security").await).await;
    assert!(text_of(&doc, "#tfa-status").unwrap().starts_with("On"));

    let code = totp(&secret).generate(now() + 30);
    app.submit("/account/security", "/account/2fa/disable", &[("password", PASSWORD), ("code", &code)]).await;
    let doc = html(app.get("/account/security").await).await;
    assert!(text_of(&doc, "#tfa-status").unwrap().starts_with("Off"));
    assert_eq!(app.login_with(&new_client(), "alice", PASSWORD).await.status(), 303);
    let res = app.login_with(&new_client(), "alice", PASSWORD).await;
    assert_eq!(location(&res), "/dashboard");
}
