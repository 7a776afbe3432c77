//! A read replica (DATABASE_REPLICA_URL): pages that only read use it while
//! it holds the viewer's own writes, and the primary otherwise; a replica
//! that is down costs no page.

use std::time::{Duration, Instant};

use crate::helpers::{create_test_database, database_url, html, new_client, spawn_app_with, text_of, TestApp};

const PASSWORD: &str = "violet tractor pebble moonlight";

/// A figure from /metrics: the first line starting with `prefix`.
async fn metric(app: &TestApp, prefix: &str) -> f64 {
    let body = new_client().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    body.lines().find_map(|l| l.strip_prefix(prefix)).map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn served_by_replica(app: &TestApp) -> f64 {
    metric(app, "questline_replica_reads{reason=\"\",served_by=\"replica\"} ").await
}

async fn fell_back(app: &TestApp, reason: &str) -> f64 {
    metric(app, &format!("questline_replica_reads{{reason=\"{reason}\",served_by=\"primary\"}} ")).await
}

/// Waits for the replica probe's verdict (it runs twice a second).
async fn until_usable(app: &TestApp, usable: bool) {
    let started = Instant::now();
    let want = if usable { 1.0 } else { 0.0 };
    while metric(app, "questline_replica_usable ").await != want {
        assert!(started.elapsed() < Duration::from_secs(20), "the replica's state never became {usable}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn signed_in_with_a_goal(app: &TestApp, goal: &str) {
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    let res = app
        .submit_multipart(
            "/achievements/new",
            "/achievements",
            &[("name", goal), ("condition_type", "playtime"), ("hours", "10")],
            None,
        )
        .await;
    assert_eq!(res.status(), 303, "the goal is saved: {}", res.text().await.unwrap_or_default());
}

async fn goals_listed(app: &TestApp) -> String {
    let res = app.get("/achievements").await;
    assert_eq!(res.status(), 200);
    text_of(&html(res).await, "main").unwrap_or_default()
}

#[actix_web::test]
async fn a_replica_without_the_viewers_own_write_is_passed_over_while_visitors_read_from_it() {
    // A copy taken before anyone signed up: a replica far behind.
    let replica = create_test_database();
    let app = spawn_app_with(|env| {
        env.insert("DATABASE_REPLICA_URL".into(), database_url(&replica));
    })
    .await;
    until_usable(&app, true).await;

    let before = served_by_replica(&app).await;
    let res = new_client().get(app.url("/leaderboards")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(served_by_replica(&app).await, before + 1.0, "a visitor's leaderboard is read on the replica");

    signed_in_with_a_goal(&app, "Written a moment ago").await;
    let behind = fell_back(&app, "behind").await;
    assert!(goals_listed(&app).await.contains("Written a moment ago"), "the writer sees their write at once");
    assert_eq!(fell_back(&app, "behind").await, behind + 1.0, "the page was read on the primary");
}

#[actix_web::test]
async fn when_the_replica_is_unreachable_every_page_reads_the_primary_and_the_fallback_is_counted() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_app_with(|env| {
        env.insert("DATABASE_REPLICA_URL".into(), format!("postgres://questline@127.0.0.1:{closed}/gone"));
    })
    .await;
    signed_in_with_a_goal(&app, "Saved with the replica down").await;
    until_usable(&app, false).await;
    let down = fell_back(&app, "down").await;
    assert!(goals_listed(&app).await.contains("Saved with the replica down"));
    for path in ["/library", "/dashboard", "/stats", "/community", "/leaderboards"] {
        assert_eq!(app.get(path).await.status(), 200, "{path} answers with the replica down");
    }
    assert!(fell_back(&app, "down").await >= down + 6.0, "every read was counted as a fallback");
    assert_eq!(served_by_replica(&app).await, 0.0);
}
