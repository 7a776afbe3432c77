//! The admin console's operations pages, metrics, and backup/restore.

use diesel::prelude::*;
use questline::schema::{audit_log, jobs, users};

use crate::helpers::{html, location, new_client, text_of, TestApp};
use crate::two_factor::{app, enrol, PASSWORD};

/// Alice: an admin with 2FA, signed in on `app.client`.
async fn admin() -> TestApp {
    let app = app().await;
    enrol(&app).await;
    let mut conn = app.pool.get().unwrap();
    diesel::update(users::table.filter(users::username.eq("alice")))
        .set(users::role.eq("admin"))
        .execute(&mut conn)
        .unwrap();
    app
}

#[actix_web::test]
async fn the_audit_log_filters_pages_and_exports_csv() {
    let app = admin().await;
    // Failed sign-ins from a stranger, to filter on.
    for _ in 0..2 {
        app.login_with(&new_client(), "alice", "wrong password here").await;
    }
    let page = html(app.get("/admin/audit?event_type=auth&success=no").await).await;
    let rows = text_of(&page, "#audit tbody").unwrap();
    assert_eq!(rows.matches("auth/login").count(), 2, "{rows}");
    assert!(!rows.contains("ok"), "only failures: {rows}");
    let by_actor = html(app.get("/admin/audit?actor=alice&event_type=auth&success=yes").await).await;
    assert!(text_of(&by_actor, "#audit tbody").unwrap().contains("auth/login"));
    let future = html(app.get("/admin/audit?from=2999-01-01").await).await;
    assert_eq!(text_of(&future, "#audit tbody").unwrap().trim(), "");
    assert_eq!(app.get("/admin/audit?from=yesterday").await.status(), 400);

    let csv = app.get("/admin/audit.csv?event_type=auth&success=no").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let body = csv.text().await.unwrap();
    let mut lines = body.lines();
    assert!(lines.next().unwrap().starts_with("id,occurred_at,event_type,action,actor"));
    assert_eq!(lines.filter(|l| l.contains(",auth,login,")).count(), 2);
}

#[actix_web::test]
async fn entries_past_the_retention_period_are_deleted() {
    let app = admin().await;
    let mut conn = app.pool.get().unwrap();
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::occurred_at.eq(chrono::Utc::now() - chrono::Duration::days(400)),
            audit_log::event_type.eq("auth"),
            audit_log::action.eq("login"),
            audit_log::success.eq(true),
            audit_log::details.eq(serde_json::json!({})),
        ))
        .execute(&mut conn)
        .unwrap();
    let before: i64 = audit_log::table.count().get_result(&mut conn).unwrap();
    assert_eq!(questline::audit::purge_older_than(&mut conn, app.settings.audit_retention_days).unwrap(), 1);
    let after: i64 = audit_log::table.count().get_result(&mut conn).unwrap();
    assert_eq!(after, before - 1);
}

#[actix_web::test]
async fn the_security_page_counts_failures_by_day_and_ranks_addresses() {
    let app = admin().await;
    for _ in 0..3 {
        app.login_with(&new_client(), "alice", "wrong password here").await;
    }
    let page = html(app.get("/admin/security").await).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let days = text_of(&page, "#by-day tbody").unwrap();
    assert!(days.contains(&today), "{days}");
    let ips = text_of(&page, "#top-ips tbody").unwrap();
    assert!(ips.contains("127.0.0.1") && ips.contains('3'), "{ips}");
}

#[actix_web::test]
async fn failed_jobs_and_emails_are_listed_with_their_errors_and_can_be_retried() {
    let app = admin().await;
    let mut conn = app.pool.get().unwrap();
    let alice: i64 = users::table.select(users::id).first(&mut conn).unwrap();
    let job: i64 = diesel::insert_into(jobs::table)
        .values((
            jobs::kind.eq("steam_sync"),
            jobs::user_id.eq(alice),
            jobs::status.eq("failed"),
            jobs::last_error.eq("Steam refused the Web API key"),
        ))
        .returning(jobs::id)
        .get_result(&mut conn)
        .unwrap();
    let mail: i64 = diesel::insert_into(jobs::table)
        .values((
            jobs::kind.eq("send_email"),
            jobs::payload.eq(serde_json::json!({ "to": "nobody@example.com", "subject": "Hello" })),
            jobs::status.eq("failed"),
            jobs::last_error.eq("550 no such user"),
        ))
        .returning(jobs::id)
        .get_result(&mut conn)
        .unwrap();
    let page = html(app.get("/admin/jobs").await).await;
    assert!(text_of(&page, "#failed-jobs").unwrap().contains("Steam refused the Web API key"));
    assert!(text_of(&page, "#failed-emails").unwrap().contains("550 no such user"));

    let res = app.submit("/admin/jobs", &format!("/admin/jobs/{job}/retry"), &[]).await;
    assert_eq!(location(&res), "/admin/jobs");
    let status: String = jobs::table.find(job).select(jobs::status).first(&mut conn).unwrap();
    assert_ne!(status, "failed", "queued again (a worker may already have picked it up)");
    app.submit("/admin/jobs", &format!("/admin/emails/{mail}/retry"), &[]).await;
    let status: String = jobs::table.find(mail).select(jobs::status).first(&mut conn).unwrap();
    assert_ne!(status, "failed");
}

#[actix_web::test]
async fn metrics_are_served_to_loopback_with_routes_not_raw_paths() {
    let app = admin().await;
    app.get("/library/12345").await;
    let body = new_client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("questline_http_requests_total{method=\"GET\",route=\"/library/{appid}\""), "{body}");
    assert!(!body.contains("/library/12345"));
    assert!(body.contains("questline_logins_total{result=\"success\"}"));
    assert!(body.contains("questline_queue_items{queue=\"email\",state=\"pending\"}"));
    assert!(body.contains("questline_db_pool_connections{state=\"open\"}"));
    assert!(body.contains("questline_http_request_duration_seconds_bucket"));
}

#[actix_web::test]
async fn with_a_token_configured_metrics_need_it_even_from_loopback() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("METRICS_TOKEN".into(), "s3cret-scrape-token".into());
    })
    .await;
    let url = app.url("/metrics");
    assert_eq!(new_client().get(&url).send().await.unwrap().status(), 404);
    let wrong = new_client().get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 404);
    let ok = new_client().get(&url).bearer_auth("s3cret-scrape-token").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("questline_users"));
}

#[actix_web::test]
async fn clearing_the_cache_is_audited_and_resets_the_hit_rate() {
    let app = admin().await;
    app.get("/stats").await;
    app.get("/stats").await;
    let dash = html(app.get("/admin").await).await;
    assert_eq!(text_of(&dash, "#hit-rate").as_deref(), Some("50%"), "one miss, then one hit");
    let res = app.submit("/admin", "/admin/cache/clear", &[]).await;
    assert_eq!(location(&res), "/admin");
    let dash = html(app.get("/admin").await).await;
    assert_eq!(text_of(&dash, "#hit-rate").as_deref(), Some("n/a"));
    let mut conn = app.pool.get().unwrap();
    let n: i64 = audit_log::table.filter(audit_log::action.eq("clear_cache")).count().get_result(&mut conn).unwrap();
    assert_eq!(n, 1);
}

#[actix_web::test]
async fn a_backup_restores_what_was_lost() {
    let app = admin().await;
    app.register_verified_with(&new_client(), "bob", "bob@example.com", PASSWORD).await;
    let mut env = crate::helpers::test_env();
    env.insert("DATABASE_URL".into(), secrecy::ExposeSecret::expose_secret(&app.settings.database_url).to_owned());
    let file = std::env::temp_dir().join(format!("questline-backup-{}.dump", uuid::Uuid::new_v4().simple()));
    let bin = env!("CARGO_BIN_EXE_questline");
    let out = std::process::Command::new(bin).arg("backup").arg(&file).envs(&env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut conn = app.pool.get().unwrap();
    diesel::delete(users::table.filter(users::username.eq("bob"))).execute(&mut conn).unwrap();
    let out = std::process::Command::new(bin).arg("restore").arg(&file).envs(&env).output().unwrap();
    assert!(!out.status.success(), "restore without --yes is refused");
    let out = std::process::Command::new(bin).args(["restore", "--yes"]).arg(&file).envs(&env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<String> = users::table.select(users::username).order(users::username).load(&mut conn).unwrap();
    assert_eq!(names, ["alice", "bob"]);
    std::fs::remove_file(file).unwrap();
}
