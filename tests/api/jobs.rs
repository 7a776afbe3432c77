use diesel::prelude::*;
use questline::jobs::kind::Backoff;
use questline::jobs::model::{self as jobs, JobStatus};
use questline::jobs::schedule::Election;

use crate::helpers::{create_empty_database, spawn_app};

#[actix_web::test]
async fn only_one_process_leads_the_scheduled_work_and_another_takes_over_when_it_goes() {
    // A database of its own: a running app would take part in the election.
    let url = create_empty_database();
    let (first, second) = tokio::task::spawn_blocking(move || {
        let mut first = Election::new(&url);
        let mut second = Election::new(&url);
        let led = (first.try_lead(), second.try_lead());
        assert_eq!(led, (true, false), "one leader at a time");
        assert!(first.try_lead(), "the leader keeps leading");
        assert!(!second.try_lead(), "and the other keeps waiting");
        // The leader's process ends: its connection, and so its lock, go.
        drop(first);
        let taken_over = second.try_lead();
        (led, taken_over)
    })
    .await
    .unwrap();
    assert_eq!(first, (true, false));
    assert!(second, "another process takes the lead once the leader is gone");
}

#[actix_web::test]
async fn a_job_that_keeps_failing_is_retried_with_its_kinds_backoff_then_given_up() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    // A kind no worker runs, so only this test touches the job.
    let kind = "test_kind";
    jobs::enqueue_payload(&mut conn, kind, &serde_json::json!({ "n": 1 })).unwrap();
    let backoff = Backoff { base_secs: 60, max_secs: 120, max_attempts: 2 };

    let job = jobs::claim(&mut conn, kind).unwrap().expect("the job is due");
    assert_eq!((job.status, job.attempts), (JobStatus::Running, 1));
    assert!(jobs::fail(&mut conn, job.lease(), "first try failed", backoff.delay(job.attempts)).unwrap());
    let row = jobs::find(&mut conn, job.id).unwrap();
    assert_eq!(row.status, JobStatus::Queued);
    assert!(row.run_after > chrono::Utc::now() + chrono::Duration::seconds(50), "waits its backoff");
    assert!(jobs::claim(&mut conn, kind).unwrap().is_none(), "not due before its backoff");

    diesel::update(questline::schema::jobs::table.find(job.id))
        .set(questline::schema::jobs::run_after.eq(chrono::Utc::now()))
        .execute(&mut conn)
        .unwrap();
    let again = jobs::claim(&mut conn, kind).unwrap().expect("due again");
    assert_eq!(again.attempts, 2);
    assert!(!jobs::fail(&mut conn, job.lease(), "a stale run", None).unwrap(), "the first claim no longer holds it");
    assert!(jobs::fail(&mut conn, again.lease(), "second try failed", backoff.delay(again.attempts)).unwrap());
    let row = jobs::find(&mut conn, job.id).unwrap();
    assert_eq!(row.status, JobStatus::Failed, "out of tries");
    assert_eq!(row.last_error.as_deref(), Some("second try failed"));
    assert_eq!(row.payload["n"], 1, "kept for a retry by an admin");

    assert!(jobs::retry(&mut conn, job.id).unwrap());
    let row = jobs::find(&mut conn, job.id).unwrap();
    assert_eq!((row.status, row.attempts), (JobStatus::Queued, 0));
}
