use std::net::TcpListener;

use diesel::prelude::*;
use questline::jobs::model::{Job, JobStatus};
use questline::schema::jobs;

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

    // Mail is a `send_email` job on the one job queue.
    let row = |conn: &mut diesel::PgConnection| -> Job {
        jobs::table.filter(jobs::kind.eq("send_email")).select(Job::as_select()).first(conn).unwrap()
    };
    let failed = app
        .wait_for("the first failed attempt", move |conn| {
            Some(row(conn)).filter(|r| r.attempts >= 1 && r.last_error.is_some())
        })
        .await;
    assert_eq!(failed.status, JobStatus::Queued);
    assert!(failed.run_after > chrono::Utc::now(), "a retry is scheduled with backoff");
    assert!(failed.payload.get("text").is_some_and(|t| t.is_string()), "the message is kept until sent");

    // The server comes back on that port; the retry falls due.
    let mail = MailServer::start_on(port);
    diesel::update(jobs::table.filter(jobs::kind.eq("send_email")))
        .set(jobs::run_after.eq(chrono::Utc::now()))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    let delivered = mail.next_email().await;
    assert_eq!(delivered.to, "alice@example.com");

    let sent = app
        .wait_for("the message to be sent", move |conn| Some(row(conn)).filter(|r| r.status == JobStatus::Done))
        .await;
    assert!(sent.payload.get("text").is_none(), "bodies with links are cleared once sent");
    assert!(sent.finished_at.is_some());
}
