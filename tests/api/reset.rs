use crate::helpers::{html, location, new_client, spawn_app, text_of};

const PASSWORD: &str = "violet tractor pebble moonlight";
const NEW_PASSWORD: &str = "saffron glacier whistle 1987";

#[actix_web::test]
async fn known_and_unknown_addresses_get_the_same_answer() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;

    let mut answers = Vec::new();
    for email in ["alice@example.com", "nobody@example.com"] {
        let client = new_client();
        let res = app.submit_with(&client, "/password/forgot", "/password/forgot", &[("email", email)]).await;
        assert_eq!(res.status(), 303);
        let page = html(client.get(app.url(&location(&res))).send().await.unwrap()).await;
        answers.push(text_of(&page, ".flash"));
    }
    assert!(answers[0].is_some());
    assert_eq!(answers[0], answers[1]);
    let mail = app.mail.next_email().await;
    assert_eq!(mail.to, "alice@example.com");
    assert!(app.mail.is_empty().await, "nothing is sent for the unknown address");
}

#[actix_web::test]
async fn a_reset_changes_the_password_ends_every_session_and_does_not_sign_in() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    let laptop = new_client();
    assert_eq!(app.login_with(&laptop, "alice", PASSWORD).await.status(), 303);
    assert_eq!(laptop.get(app.url("/account")).send().await.unwrap().status(), 200);

    app.submit("/password/forgot", "/password/forgot", &[("email", "alice@example.com")]).await;
    let mail = app.mail.next_email().await;
    let link = mail.link("/password/reset/");
    let token = link.rsplit('/').next().unwrap().to_owned();

    // A weak choice is refused and the link stays usable.
    let res = app
        .submit(
            &link,
            "/password/reset",
            &[("token", &token), ("password", "alicealice12"), ("password_confirmation", "alicealice12")],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#password-error").is_some());

    let res = app
        .submit(
            &link,
            "/password/reset",
            &[("token", &token), ("password", NEW_PASSWORD), ("password_confirmation", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login");
    assert_eq!(app.get("/account").await.status(), 303, "no automatic sign-in");

    // The laptop's session ended with the reset.
    let res = laptop.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303);

    let notice = app.mail.next_email().await;
    assert!(notice.subject.contains("password was changed"), "{}", notice.subject);

    assert_eq!(app.login_with(&new_client(), "alice", PASSWORD).await.status(), 401);
    assert_eq!(app.login_with(&new_client(), "alice", NEW_PASSWORD).await.status(), 303);

    // The link is spent.
    assert_eq!(app.get(&link).await.status(), 400);
    let res = app
        .submit(
            "/password/forgot",
            "/password/reset",
            &[("token", &token), ("password", NEW_PASSWORD), ("password_confirmation", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 400);
}

#[actix_web::test]
async fn only_the_newest_reset_link_works() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.submit("/password/forgot", "/password/forgot", &[("email", "alice@example.com")]).await;
    let first = app.mail.next_email().await.link("/password/reset/");
    app.submit("/password/forgot", "/password/forgot", &[("email", "alice@example.com")]).await;
    let second = app.mail.next_email().await.link("/password/reset/");
    assert_ne!(first, second);
    assert_eq!(app.get(&first).await.status(), 400);
    assert_eq!(app.get(&second).await.status(), 200);
}
