use diesel::prelude::*;
use questline::schema::{audit_log, users};

use crate::helpers::{html, location, spawn_app, text_of};

const PASSWORD: &str = "violet tractor pebble moonlight";

#[actix_web::test]
async fn a_new_user_registers_confirms_the_emailed_link_and_signs_in() {
    let app = spawn_app().await;

    let res = app.register("Alice", "Alice@Example.com", PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login");
    let doc = html(app.get("/login").await).await;
    assert!(text_of(&doc, ".flash-success").unwrap().contains("alice@example.com"));

    // Signing in before confirming is refused with a way to get a new link.
    let res = app.login_with(&app.client, "alice", PASSWORD).await;
    assert_eq!(res.status(), 403);
    let doc = html(res).await;
    assert!(text_of(&doc, "#login-error").unwrap().contains("confirm your email"));

    let mail = app.mail.next_email().await;
    assert_eq!(mail.to, "alice@example.com");
    assert!(mail.subject.contains("Confirm"));
    let link = mail.link("/verify-email/");
    assert!(mail.html.contains(&link), "the HTML part has the same link");
    let full = &mail.text[mail.text.find("http").unwrap()..];
    assert!(full.starts_with(&app.settings.public_base_url.as_str().trim_end_matches('/').to_string()));

    // Opening the link changes nothing; the button does.
    let token = link.rsplit('/').next().unwrap().to_owned();
    let res = app.submit(&link, "/verify-email", &[("token", &token)]).await;
    assert_eq!(res.status(), 303);

    let res = app.login_with(&app.client, "ALICE", PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard");
    let res = app.get("/account").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let doc = html(res).await;
    assert_eq!(text_of(&doc, "#username").as_deref(), Some("Alice"));
    assert_eq!(text_of(&doc, "#email").as_deref(), Some("alice@example.com"));

    let mut conn = app.pool.get().unwrap();
    let actions: Vec<(String, bool)> =
        audit_log::table.order(audit_log::id).select((audit_log::action, audit_log::success)).load(&mut conn).unwrap();
    assert_eq!(
        actions,
        vec![("register".into(), true), ("login".into(), false), ("verify_email".into(), true), ("login".into(), true)]
    );
}

#[actix_web::test]
async fn a_confirmation_link_works_only_once() {
    let app = spawn_app().await;
    app.register("bob", "bob@example.com", PASSWORD).await;
    let link = app.mail.next_email().await.link("/verify-email/");
    let token = link.rsplit('/').next().unwrap().to_owned();
    assert_eq!(app.submit(&link, "/verify-email", &[("token", &token)]).await.status(), 303);

    // The same link again, opened or submitted, is refused.
    let res = app.get(&link).await;
    assert_eq!(res.status(), 400);
    assert!(text_of(&html(res).await, "h1").unwrap().contains("invalid or has expired"));
    let res = app.submit("/verify-email/resend", "/verify-email", &[("token", &token)]).await;
    assert_eq!(res.status(), 400);
    let mut conn = app.pool.get().unwrap();
    let verified: Option<chrono::DateTime<chrono::Utc>> =
        users::table.select(users::email_verified_at).first(&mut conn).unwrap();
    assert!(verified.is_some());
}

#[actix_web::test]
async fn a_weak_password_is_refused_with_a_reason_and_nothing_is_created() {
    let app = spawn_app().await;
    let res = app.register("carol", "carol@example.com", "password1234").await;
    assert_eq!(res.status(), 422);
    let doc = html(res).await;
    assert!(text_of(&doc, "#password-error").unwrap().contains("too weak"));
    let sel = scraper::Selector::parse("input[name=email]").unwrap();
    assert_eq!(doc.select(&sel).next().unwrap().value().attr("value"), Some("carol@example.com"), "input is kept");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(users::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
}

#[actix_web::test]
async fn bad_usernames_and_emails_are_refused_field_by_field() {
    let app = spawn_app().await;
    let res = app
        .submit(
            "/register",
            "/register",
            &[("username", "a b"), ("email", "nope"), ("password", PASSWORD), ("password_confirmation", "different")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let doc = html(res).await;
    assert!(text_of(&doc, "#username-error").is_some());
    assert!(text_of(&doc, "#email-error").is_some());
}

#[actix_web::test]
async fn a_taken_username_is_refused_in_any_case() {
    let app = spawn_app().await;
    app.register_verified("dave", "dave@example.com", PASSWORD).await;
    let other = crate::helpers::new_client();
    let res = app.register_with(&other, "DAVE", "dave2@example.com", PASSWORD).await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#username-error").unwrap().contains("taken"));
}

#[actix_web::test]
async fn registering_a_used_email_answers_as_for_a_new_one_and_creates_nothing() {
    let app = spawn_app().await;
    app.register_verified("erin", "erin@example.com", PASSWORD).await;
    let other = crate::helpers::new_client();
    let res = app.register_with(&other, "erin2", "ERIN@example.com", PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(users::table.count().get_result::<i64>(&mut conn).unwrap(), 1);
}
