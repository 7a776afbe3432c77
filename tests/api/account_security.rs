use diesel::prelude::*;

use crate::helpers::{html, location, new_client, spawn_app, text_of, TestApp};

const PASSWORD: &str = "violet tractor pebble moonlight";
const NEW_PASSWORD: &str = "saffron glacier whistle 1987";

async fn signed_in(app: &TestApp) {
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
}

#[actix_web::test]
async fn changing_the_password_asks_for_the_current_one_first() {
    let app = spawn_app().await;
    signed_in(&app).await;
    let res = app.get("/account/password").await;
    assert_eq!(location(&res), "/account/reauth?next=%2Faccount%2Fpassword");

    let res = app
        .submit(
            "/account/reauth?next=/account/password",
            "/account/reauth",
            &[("password", "wrong one entirely"), ("next", "/account/password")],
        )
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(location(&app.get("/account/password").await), "/account/reauth?next=%2Faccount%2Fpassword");

    let res = app
        .submit(
            "/account/reauth?next=/account/password",
            "/account/reauth",
            &[("password", PASSWORD), ("next", "/account/password")],
        )
        .await;
    assert_eq!(location(&res), "/account/password");
    assert_eq!(app.get("/account/password").await.status(), 200);
}

#[actix_web::test]
async fn a_password_change_signs_out_other_sessions_and_sends_a_notice() {
    let app = spawn_app().await;
    signed_in(&app).await;
    let other = new_client();
    app.login_with(&other, "alice", PASSWORD).await;
    app.submit("/account/reauth", "/account/reauth", &[("password", PASSWORD), ("next", "/account/password")]).await;

    let res = app
        .submit("/account/password", "/account/password", &[("password", "short"), ("password_confirmation", "short")])
        .await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#password-error").is_some());

    let res = app
        .submit(
            "/account/password",
            "/account/password",
            &[("password", NEW_PASSWORD), ("password_confirmation", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(location(&res), "/account/security");
    assert_eq!(app.get("/account").await.status(), 200, "this session stays");
    assert_eq!(other.get(app.url("/account")).send().await.unwrap().status(), 303, "the other one ended");
    let mail = app.mail.next_email().await;
    assert!(mail.subject.contains("password was changed"));
    assert_eq!(app.login_with(&new_client(), "alice", NEW_PASSWORD).await.status(), 303);
}

#[actix_web::test]
async fn a_new_email_takes_effect_only_once_confirmed_and_the_old_one_is_told() {
    let app = spawn_app().await;
    signed_in(&app).await;
    app.submit("/account/reauth", "/account/reauth", &[("password", PASSWORD), ("next", "/account/email")]).await;
    let res = app.submit("/account/email", "/account/email", &[("email", "New@Example.com")]).await;
    assert_eq!(location(&res), "/account/security");

    let mut mails = [app.mail.next_email().await, app.mail.next_email().await];
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    assert_eq!(mails[0].to, "alice@example.com");
    assert!(mails[0].text.contains("new@example.com"));
    assert_eq!(mails[1].to, "new@example.com");

    let doc = html(app.get("/account").await).await;
    assert_eq!(text_of(&doc, "#email").as_deref(), Some("alice@example.com"), "unchanged until confirmed");

    let link = mails[1].link("/verify-email/");
    let token = link.rsplit('/').next().unwrap().to_owned();
    app.submit(&link, "/verify-email", &[("token", &token)]).await;
    let doc = html(app.get("/account").await).await;
    assert_eq!(text_of(&doc, "#email").as_deref(), Some("new@example.com"));
}

#[actix_web::test]
async fn an_email_used_by_another_account_is_not_taken_and_the_page_does_not_say_so() {
    let app = spawn_app().await;
    app.register_verified("bob", "bob@example.com", PASSWORD).await;
    signed_in(&app).await;
    app.submit("/account/reauth", "/account/reauth", &[("password", PASSWORD), ("next", "/account/email")]).await;
    let res = app.submit("/account/email", "/account/email", &[("email", "bob@example.com")]).await;
    // Answered as a free address would be (an oracle otherwise); Bob keeps it.
    assert_eq!(location(&res), "/account/security");
    let mut conn = app.pool.get().unwrap();
    let pending: Option<String> = questline::schema::users::table
        .filter(questline::schema::users::username.eq("alice"))
        .select(questline::schema::users::pending_email)
        .first(&mut conn)
        .unwrap();
    assert_eq!(pending, None);
}
