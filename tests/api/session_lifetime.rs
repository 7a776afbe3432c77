use diesel::prelude::*;
use questline::schema::{audit_log, user_sessions};

use crate::helpers::{new_client, spawn_app, spawn_app_with, TestApp};

const PASSWORD: &str = "violet tractor pebble moonlight";

fn age_sessions(app: &TestApp, idle_minutes: i64) {
    let mut conn = app.pool.get().unwrap();
    diesel::update(user_sessions::table)
        .set(user_sessions::last_seen_at.eq(chrono::Utc::now() - chrono::Duration::minutes(idle_minutes)))
        .execute(&mut conn)
        .unwrap();
}

#[actix_web::test]
async fn a_session_idle_for_over_30_minutes_is_signed_out() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    age_sessions(&app, 29);
    assert_eq!(app.get("/account").await.status(), 200);
    age_sessions(&app, 31);
    assert_eq!(app.get("/account").await.status(), 303);
}

#[actix_web::test]
async fn remember_me_survives_idleness_but_not_its_absolute_limit() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    let res = app.submit("/login", "/login", &[("login", "alice"), ("password", PASSWORD), ("remember", "1")]).await;
    assert_eq!(res.status(), 303);
    age_sessions(&app, 60 * 24 * 3);
    assert_eq!(app.get("/account").await.status(), 200);

    let mut conn = app.pool.get().unwrap();
    diesel::update(user_sessions::table)
        .set(user_sessions::expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(app.get("/account").await.status(), 303);
}

#[actix_web::test]
async fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(|env| {
        env.insert("PUBLIC_BASE_URL".into(), "https://questline.example".into());
    })
    .await;
    let res = app.get("/login").await;
    let cookie = res.cookies().find(|c| c.name() == "questline_session").expect("a session cookie");
    assert!(cookie.secure());
    assert!(cookie.http_only());
    assert!(cookie.same_site_lax());
}

#[actix_web::test]
async fn no_password_or_token_reaches_the_audit_log() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&new_client(), "alice", "a wrong password attempt").await;
    app.submit("/password/forgot", "/password/forgot", &[("email", "alice@example.com")]).await;
    let mail = app.mail.next_email().await;
    let token = mail.link("/password/reset/").rsplit('/').next().unwrap().to_owned();

    let mut conn = app.pool.get().unwrap();
    let rows: Vec<(serde_json::Value, Option<String>, Option<String>)> =
        audit_log::table.select((audit_log::details, audit_log::error, audit_log::target)).load(&mut conn).unwrap();
    assert!(rows.len() >= 4);
    let dump = format!("{rows:?}");
    for secret in [PASSWORD, "a wrong password attempt", token.as_str()] {
        assert!(!dump.contains(secret), "{secret} leaked into the audit log");
    }
}
