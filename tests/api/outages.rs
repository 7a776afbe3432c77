//! Outages of Redis and PostgreSQL, each on a server of the test's own that
//! it stops and starts: what still works, what answers a fast 503, and that
//! everything comes back without restarting Questline.

use std::time::{Duration, Instant};

use crate::helpers::{new_client, spawn_app_with, PostgresServer, RedisServer, TestApp};

const PASSWORD: &str = "violet tractor pebble moonlight";

/// Polls `path` with `client` until `check` accepts the answer; returns how
/// long that took. Fails after 20 seconds.
async fn poll_until(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    what: &str,
    check: impl Fn(u16, &str) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(res) = client.get(app.url(path)).timeout(Duration::from_secs(3)).send().await {
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            if check(status, &body) {
                return started.elapsed();
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "waited 20 s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records a measured figure where `./scripts/bench outage` prints it.
fn record(line: &str) {
    use std::io::Write;
    eprintln!("{line}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/outage-recovery.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

async fn status_of(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let res = client.get(app.url(path)).timeout(Duration::from_secs(3)).send().await.expect("an answer in time");
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The app on a Redis of the test's own, with Alice signed in.
async fn alice_on_her_own_redis() -> (RedisServer, TestApp) {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(|env| {
        env.insert("REDIS_URL".into(), url);
    })
    .await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    assert_eq!(app.get("/library").await.status(), 200);
    (redis, app)
}

#[actix_web::test]
async fn when_redis_stops_public_pages_serve_signed_in_pages_say_503_and_all_recovers_without_a_restart() {
    let (mut redis, app) = alice_on_her_own_redis().await;
    let port = redis.port;

    redis.stop();
    let detected = poll_until(&app, &new_client(), "/readyz", "readiness to name Redis", |s, body| {
        s == 503 && body.contains("\"redis\":{\"ok\":false")
    })
    .await;
    record(&format!("redis stopped: /readyz said 503 after {} ms", detected.as_millis()));

    // For its first seconds, requests wait for a restarting Redis (see the
    // next test); after that, failing is fast.
    poll_until(&app, &app.client, "/library", "the fast 503 after the ride-through", |s, body| {
        s == 503 && body.contains("Signing in is briefly unavailable")
    })
    .await;
    // Pages that need no session keep serving, for visitors and for Alice.
    let visitor = new_client();
    for client in [&visitor, &app.client] {
        for path in ["/", "/community", "/login", "/healthz", "/static/css/app.css"] {
            let started = Instant::now();
            let (status, _) = status_of(client, &app, path).await;
            assert_eq!(status, 200, "{path} while Redis is down");
            record(&format!("redis down: {path} -> {status} in {} ms", started.elapsed().as_millis()));
        }
    }
    // Signed-in pages: a 503 page saying sign-in is briefly unavailable.
    for path in ["/library", "/account", "/achievements"] {
        let started = Instant::now();
        let (status, body) = status_of(&app.client, &app, path).await;
        assert_eq!(status, 503, "{path} while Redis is down");
        assert!(body.contains("Signing in is briefly unavailable"), "{path}: {body}");
        record(&format!("redis down: signed-in {path} -> {status} in {} ms", started.elapsed().as_millis()));
    }
    // A form post cannot be checked against a session: 503, not a CSRF error.
    let res = visitor.post(app.url("/login")).form(&[("login", "alice"), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(res.status(), 503);

    // Redis comes back (empty: it keeps nothing on disk here).
    let restarted = Instant::now();
    let _redis = RedisServer::start_on(port);
    let recovered = poll_until(&app, &new_client(), "/readyz", "readiness after Redis is back", |s, _| s == 200).await;
    record(&format!("redis back: /readyz 200 after {} ms", recovered.as_millis()));
    let login_page = poll_until(&app, &new_client(), "/login", "a sign-in form with a token", |s, body| {
        s == 200 && body.contains("name=\"csrf_token\" value=\"") && !body.contains("name=\"csrf_token\" value=\"\"")
    })
    .await;
    record(&format!("redis back: sign-in form with a token after {} ms", login_page.as_millis()));
    // Alice's session went with Redis's memory: she signs in again, and
    // everything works with no restart of Questline.
    let res = app.get("/library").await;
    assert_eq!(res.status(), 303, "signed out: the session was in the Redis that restarted empty");
    assert!(crate::helpers::location(&res).starts_with("/login"));
    assert_eq!(app.login_with(&app.client, "alice", PASSWORD).await.status(), 303);
    assert_eq!(app.get("/library").await.status(), 200);
    record(&format!("redis back: signed in and served within {} ms of the restart", restarted.elapsed().as_millis()));
}

/// Stops `redis`, waits until the app notices, then sends `request` and
/// starts Redis again on the same port while it waits; the request's
/// result and the new server (kept running while the caller holds it).
async fn sent_while_redis_restarts<T: Send + 'static>(
    app: &TestApp,
    mut redis: RedisServer,
    request: impl std::future::Future<Output = T> + Send + 'static,
) -> (T, RedisServer) {
    let port = redis.port;
    redis.stop();
    poll_until(app, &new_client(), "/readyz", "the outage to be noticed", |s, _| s == 503).await;
    let waiting = tokio::spawn(request);
    let restarted = RedisServer::start_on(port);
    (waiting.await.unwrap(), restarted)
}

#[actix_web::test]
async fn a_request_made_while_redis_restarts_waits_for_it_instead_of_failing() {
    let (redis, app) = alice_on_her_own_redis().await;
    let request = app.client.get(app.url("/library")).send();
    let (res, _redis) = sent_while_redis_restarts(&app, redis, request).await;
    // This Redis keeps nothing on disk, so the session is gone: the page
    // asks Alice to sign in again rather than saying the site is down.
    assert_eq!(res.expect("an answer").status(), 303, "the request waited for Redis rather than failing");
}

#[actix_web::test]
async fn a_visitor_who_opens_the_sign_in_form_while_redis_restarts_gets_a_token_that_signs_in() {
    let (redis, app) = alice_on_her_own_redis().await;
    // A browser with no session cookie reads no session, so only the page
    // itself can wait for Redis; without that wait its form had no token
    // and the sign-in after it got 503 (the cluster's fault test saw it).
    let visitor = new_client();
    let request = visitor.get(app.url("/login")).send();
    let (res, _redis) = sent_while_redis_restarts(&app, redis, request).await;
    let form = res.expect("an answer").text().await.unwrap();
    let token = crate::helpers::csrf_token(&scraper::Html::parse_document(&form)).unwrap_or_default();
    assert!(!token.is_empty(), "the sign-in form has a CSRF token");
    let res = visitor
        .post(app.url("/login"))
        .form(&[("login", "alice"), ("password", PASSWORD), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in with the form shown during the restart");
    assert_eq!(status_of(&visitor, &app, "/library").await.0, 200);
}

#[actix_web::test]
async fn when_postgresql_stops_pages_answer_a_fast_503_and_recover_with_sessions_intact() {
    let pg = PostgresServer::start();
    let database = pg.url("questline");
    let app = spawn_app_with(|env| {
        env.insert("DATABASE_URL".into(), database);
    })
    .await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    assert_eq!(app.get("/library").await.status(), 200);

    pg.stop();
    let detected = poll_until(&app, &new_client(), "/readyz", "readiness to name PostgreSQL", |s, body| {
        s == 503 && body.contains("\"postgres\":{\"ok\":false")
    })
    .await;
    record(&format!("postgres stopped: /readyz said 503 after {} ms", detected.as_millis()));
    let (status, _) = status_of(&new_client(), &app, "/").await;
    assert_eq!(status, 200, "the home page keeps serving visitors");
    for path in ["/library", "/account", "/stats"] {
        let started = Instant::now();
        let (status, body) = status_of(&app.client, &app, path).await;
        assert_eq!(status, 503, "{path} while PostgreSQL is down: the back-soon page, never a 500");
        assert!(body.contains("Temporarily unavailable"), "{path}: {body}");
        record(&format!("postgres down: signed-in {path} -> {status} in {} ms", started.elapsed().as_millis()));
    }

    let restarted = Instant::now();
    pg.start_again();
    let recovered =
        poll_until(&app, &app.client, "/library", "Alice's library after PostgreSQL is back", |s, _| s == 200).await;
    record(&format!(
        "postgres back: /library 200 for the same session {} ms after the server accepted connections \
         ({} ms after the restart began)",
        recovered.as_millis(),
        restarted.elapsed().as_millis()
    ));
    assert_eq!(app.get("/account").await.status(), 200, "still signed in");
}
