use crate::helpers::{html, spawn_app, spawn_app_with, text_of};

const PASSWORD: &str = "violet tractor pebble moonlight";

#[actix_web::test]
async fn in_development_mail_goes_to_files_shown_on_the_dev_mailbox_page() {
    let dir = std::env::temp_dir().join(format!("questline-mail-{}", uuid::Uuid::new_v4().simple()));
    let dir_str = dir.to_string_lossy().into_owned();
    let app = spawn_app_with(|env| {
        env.insert("QUESTLINE_ENV".into(), "development".into());
        env.remove("SMTP_URL");
        env.insert("MAIL_DIR".into(), dir_str);
    })
    .await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    // The worker writes the file after the response; wait for it to appear.
    let doc = loop {
        let doc = html(app.get("/dev/mailbox").await).await;
        if text_of(&doc, "article h2").is_some() {
            break doc;
        }
        tokio::task::yield_now().await;
    };
    assert!(text_of(&doc, "article h2").unwrap().contains("Confirm your email"));
    assert!(text_of(&doc, "article pre").unwrap().contains("/verify-email/"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn the_dev_mailbox_does_not_exist_in_production() {
    let app = spawn_app().await;
    assert_eq!(app.get("/dev/mailbox").await.status(), 404);
}

#[actix_web::test]
async fn a_new_confirmation_link_is_sent_at_most_once_a_minute() {
    let app = spawn_app_with(|env| {
        env.insert("RATE_LIMIT_RESET_PER_MINUTE".into(), "100".into());
    })
    .await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let first = app.mail.next_email().await.link("/verify-email/");
    // Registration just sent one: asking again at once sends nothing.
    let res = app.submit("/verify-email/resend", "/verify-email/resend", &[("email", "alice@example.com")]).await;
    assert_eq!(res.status(), 303);
    // Pretend the last link is older than a minute, then ask again.
    {
        use diesel::prelude::*;
        use questline::schema::email_tokens;
        let mut conn = app.pool.get().unwrap();
        diesel::update(email_tokens::table)
            .set(email_tokens::created_at.eq(chrono::Utc::now() - chrono::Duration::minutes(2)))
            .execute(&mut conn)
            .unwrap();
    }
    app.submit("/verify-email/resend", "/verify-email/resend", &[("email", "alice@example.com")]).await;
    let second = app.mail.next_email().await.link("/verify-email/");
    assert_ne!(first, second);
    assert!(app.mail.is_empty().await, "only one new link was sent");
    assert_eq!(app.get(&first).await.status(), 400, "the older link stopped working");
}
