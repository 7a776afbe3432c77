use std::net::TcpListener;

use diesel::prelude::*;
use questline::email::outbox::OutboxEmail;
use questline::schema::outbox_emails;

use crate::helpers::{spawn_app_with, MailServer};

const PASSWORD: &str = "violet tractor pebble moonlight";

#[actix_web::test]
async fn a_message_queued_during_an_smtp_outage_is_delivered_once_the_server_is_back() {
    // A port with nothing listening: the SMTP server is down.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_app_with(|env| {
        env.insert("SMTP_URL".into(), format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let res = app.register("alice", "alice@example.com", PASSWORD).await;
    assert_eq!(res.status(), 303, "registration does not wait on mail");

    let row = |conn: &mut diesel::PgConnection| -> OutboxEmail {
        outbox_emails::table.select(OutboxEmail::as_select()).first(conn).unwrap()
    };
    let failed = app
        .wait_for("the first failed attempt", move |conn| {
            Some(row(conn)).filter(|r| r.attempts >= 1 && r.last_error.is_some())
        })
        .await;
    assert_eq!(failed.status, "pending");
    assert!(failed.next_attempt_at > chrono::Utc::now(), "a retry is scheduled with backoff");
    assert!(failed.body_text.is_some(), "the message is kept until sent");

    // The server comes back on that port; the retry falls due.
    let mail = MailServer::start_on(port);
    diesel::update(outbox_emails::table)
        .set(outbox_emails::next_attempt_at.eq(chrono::Utc::now()))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    let delivered = mail.next_email().await;
    assert_eq!(delivered.to, "alice@example.com");

    let sent = app.wait_for("the message to be sent", move |conn| Some(row(conn)).filter(|r| r.status == "sent")).await;
    assert!(sent.body_text.is_none(), "bodies with links are cleared once sent");
    assert!(sent.sent_at.is_some());
}
