//! Library budget: `./scripts/bench` (or `cargo bench --bench library` with
//! DATABASE_URL and REDIS_URL set).
//!
//! Builds a user with 2,000 games and 50,000 achievements on the fake Steam
//! server, times the sync through the real app, then measures the library
//! page: SQL statements per request (counted by diesel instrumentation) and
//! latency over loopback, sequential and under concurrent load.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use questline::steam::fake::{generated_player, FakeState, FakeSteam};
use questline::{Application, Settings};

static QUERIES: AtomicU64 = AtomicU64::new(0);

fn counting() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(|event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { .. } = event {
            QUERIES.fetch_add(1, Ordering::Relaxed);
        }
    }))
}

const KEY: &str = "0123456789ABCDEF0123456789ABCDEF";
const STEAM_ID: u64 = 76561197960287930;
const GAMES: usize = 2000;
const PER_GAME: usize = 25;

/// The app's own time for a response, from its `Server-Timing` header.
fn server_time(res: &reqwest::Response) -> Duration {
    let v = res.headers()["server-timing"].to_str().unwrap();
    let ms: f64 = v.trim_start_matches("app;dur=").parse().unwrap();
    Duration::from_secs_f64(ms / 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

async fn csrf(client: &reqwest::Client, url: &str) -> String {
    let body = client.get(url).send().await.unwrap().text().await.unwrap();
    let doc = scraper::Html::parse_document(&body);
    let sel = scraper::Selector::parse("input[name=csrf_token]").unwrap();
    doc.select(&sel).next().unwrap().value().attr("value").unwrap().to_owned()
}

fn main() {
    set_default_instrumentation(counting).unwrap();
    actix_web::rt::System::new().block_on(async {
        let db = format!("questline_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&common::server_url("postgres")).expect("PostgreSQL reachable");
        diesel::sql_query(format!("CREATE DATABASE \"{db}\"")).execute(&mut admin).unwrap();

        let mut state = FakeState::default();
        state.keys.insert(KEY.into());
        generated_player(&mut state, STEAM_ID, GAMES, PER_GAME);
        let fake = FakeSteam::start(state).unwrap();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mail_dir = std::env::temp_dir().join(&db);
        let mut env = common::app_env(&db);
        env.insert("DATABASE_POOL_SIZE".into(), "16".into());
        env.insert("REDIS_URL".into(), std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()));
        env.insert("REDIS_NAMESPACE".into(), db.clone());
        env.insert("PUBLIC_BASE_URL".into(), format!("http://127.0.0.1:{port}"));
        env.insert("STEAM_API_BASE_URL".into(), fake.base_url());
        env.insert("MAIL_DIR".into(), mail_dir.to_string_lossy().into_owned());
        env.insert("STATIC_DIR".into(), concat!(env!("CARGO_MANIFEST_DIR"), "/static").into());
        let settings = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
        let app = Application::build_with_listener(settings, listener).await.unwrap();
        let pool = app.pool().clone();
        actix_web::rt::spawn(app.run_until_stopped());
        let base = format!("http://127.0.0.1:{port}");

        {
            let mut conn = pool.get().unwrap();
            questline::admin_cli::create_admin(&mut conn, "bench", "bench@example.com", "violet tractor pebble moonlight")
                .unwrap();
        }
        let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let token = csrf(&client, &format!("{base}/login")).await;
        let res = client
            .post(format!("{base}/login"))
            .form(&[("login", "bench"), ("password", "violet tractor pebble moonlight"), ("csrf_token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);

        let token = csrf(&client, &format!("{base}/settings/steam")).await;
        let started = Instant::now();
        let res = client
            .post(format!("{base}/settings/steam"))
            .form(&[("profile", &STEAM_ID.to_string()), ("api_key", &KEY.to_owned()), ("csrf_token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "linking works");
        loop {
            let p = pool.clone();
            let status: String = actix_web::web::block(move || {
                let mut conn = p.get().unwrap();
                questline::schema::jobs::table
                    .order(questline::schema::jobs::id.desc())
                    .select(questline::schema::jobs::status)
                    .first::<String>(&mut conn)
                    .unwrap()
            })
            .await
            .unwrap();
            if status == "done" || status == "failed" {
                assert_eq!(status, "done");
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        let sync_time = started.elapsed();
        let (entries, unlocks, achievements) = {
            let mut conn = pool.get().unwrap();
            use questline::schema::*;
            (
                library_entries::table.count().get_result::<i64>(&mut conn).unwrap(),
                user_achievements::table.count().get_result::<i64>(&mut conn).unwrap(),
                game_achievements::table.count().get_result::<i64>(&mut conn).unwrap(),
            )
        };
        println!("library: {entries} games, {achievements} achievements in their schemas, {unlocks} unlocked");
        println!("first sync through the app against the fake Steam server: {:.1} s", sync_time.as_secs_f64());

        // Custom achievements: 20 of each condition type over this library,
        // evaluated as after a sync (one statement for the user, whatever
        // the number of achievements).
        {
            let mut conn = pool.get().unwrap();
            use questline::schema::{custom_achievements as ca, users};
            let user_id: i64 = users::table.select(users::id).first(&mut conn).unwrap();
            let games: Vec<String> = (0..10).map(|i| (10_000 + i).to_string()).collect();
            let kinds = [
                ("complete_games", serde_json::json!({ "games": games })),
                ("playtime", serde_json::json!({ "hours": 500 })),
                ("achievement_count", serde_json::json!({ "count": 1000, "games": games })),
                ("completion_rate", serde_json::json!({ "percent": 50 })),
                ("specific_achievements", serde_json::json!({ "achievements": [{ "appid": "10000", "api_name": "ACH_0" }] })),
            ];
            for i in 0..20 {
                for (kind, data) in &kinds {
                    diesel::insert_into(ca::table)
                        .values((
                            ca::owner_id.eq(user_id),
                            ca::name.eq(format!("{kind} {i}")),
                            ca::condition_type.eq(*kind),
                            ca::condition.eq(data),
                        ))
                        .execute(&mut conn)
                        .unwrap();
                }
            }
            let mut times = Vec::new();
            for _ in 0..20 {
                let before = QUERIES.load(Ordering::Relaxed);
                let t = Instant::now();
                let done = questline::achievements::evaluate(&mut conn, &[user_id]).unwrap();
                times.push(t.elapsed());
                assert_eq!(done.evaluated, 100);
                assert_eq!(QUERIES.load(Ordering::Relaxed) - before, 1, "one statement");
            }
            times.sort();
            println!(
                "evaluating 100 custom achievements (5 types) over the 2,000-game library: 1 statement, median {:.1} ms",
                times[times.len() / 2].as_secs_f64() * 1000.0
            );
        }

        let pages = [
            ("/library", "library, by name"),
            ("/library?sort=completion&page=7", "library, by completion, page 7"),
            ("/library?filter=started&q=Game%201", "library, filtered and searched"),
            ("/library/10000", "game page (25 achievements)"),
        ];
        for (path, label) in pages {
            let url = format!("{base}{path}");
            for _ in 0..20 {
                client.get(&url).send().await.unwrap().bytes().await.unwrap();
            }
            // Statements per request: the most common count over many
            // requests (background workers add an occasional poll).
            let mut counts: HashMap<u64, u32> = HashMap::new();
            let mut times = Vec::new();
            let mut server = Vec::new();
            for _ in 0..200 {
                let before = QUERIES.load(Ordering::Relaxed);
                let t = Instant::now();
                let res = client.get(&url).send().await.unwrap();
                assert_eq!(res.status(), 200, "{path}");
                server.push(server_time(&res));
                res.bytes().await.unwrap();
                times.push(t.elapsed());
                *counts.entry(QUERIES.load(Ordering::Relaxed) - before).or_default() += 1;
            }
            times.sort();
            server.sort();
            let queries = counts.iter().max_by_key(|(_, n)| **n).map(|(q, _)| *q).unwrap();
            println!(
                "{label:<36} {queries} SQL statements; server median {:.2} ms (p95 {:.2}); round trip median {:.2} ms",
                percentile(&server, 0.5),
                percentile(&server, 0.95),
                percentile(&times, 0.5),
            );
        }

        // Load: N clients at once on the library page. The clients share
        // the 2 cores with the app and PostgreSQL, so server time includes
        // waiting for a core.
        let url = format!("{base}/library?sort=playtime");
        for clients in [1usize, 2, 4, 8] {
            let started = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|_| {
                    let client = client.clone();
                    let url = url.clone();
                    actix_web::rt::spawn(async move {
                        let mut times = Vec::new();
                        for _ in 0..(800 / clients) {
                            let res = client.get(&url).send().await.unwrap();
                            times.push(server_time(&res));
                            res.bytes().await.unwrap();
                        }
                        times
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all.sort();
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "library under load, {clients} concurrent client(s), {} requests: server median {:.2} ms, p95 {:.2} ms, {:.0} req/s",
                all.len(),
                percentile(&all, 0.5),
                percentile(&all, 0.95),
                all.len() as f64 / elapsed
            );
        }

        drop(pool);
        diesel::sql_query(format!("DROP DATABASE \"{db}\" WITH (FORCE)")).execute(&mut admin).unwrap();
        let _ = std::fs::remove_dir_all(&mail_dir);
        std::process::exit(0);
    });
}
