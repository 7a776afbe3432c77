use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with, RedisServer};

#[actix_web::test]
async fn healthz_answers_ok_without_touching_dependencies() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[actix_web::test]
async fn readyz_reports_postgres_and_redis_with_their_latency() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    for dep in ["postgres", "redis"] {
        assert_eq!(body[dep]["ok"], true, "{dep}: {body}");
        assert!(body[dep]["latency_ms"].as_f64().unwrap() >= 0.0);
    }
}

#[actix_web::test]
async fn readyz_is_503_naming_redis_once_redis_stops() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(|env| {
        env.insert("REDIS_URL".into(), url);
    })
    .await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    redis.stop();

    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["redis"]["ok"], false);
    assert_eq!(body["postgres"]["ok"], true);
    assert!(body["redis"]["error"].as_str().unwrap().contains("Redis"));
}

#[actix_web::test]
async fn readyz_is_503_naming_postgres_once_the_database_is_gone() {
    let app = spawn_app().await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    app.drop_database();

    // A new connection: dropping the database can take longer than the
    // server's keep-alive, and a reused idle connection may be closed under
    // the request.
    let res = crate::helpers::new_client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["postgres"]["ok"], false);
    assert_eq!(body["redis"]["ok"], true);
    // Only a summary: no connection string or server message leaks out.
    assert_eq!(body["postgres"]["error"], "PostgreSQL did not answer");
}
