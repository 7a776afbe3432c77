//! Bounded cost: nothing one account or one visitor does may make a page,
//! a list or a counter grow without limit (issue 27's attacks, each as a
//! test that failed before the limits).

use diesel::prelude::*;
use questline::schema::{community_achievements, custom_achievements, games, pins, users};
use serde_json::json;

use crate::achievements::{create, synced_alice};
use crate::helpers::{html, location, new_client, spawn_app_with, text_of, TestApp};
use crate::steam::{link, portal_state, sync_finished, KEY, PASSWORD, STEAM_ID};

fn user_id(app: &TestApp, name: &str) -> i64 {
    let mut conn = app.pool.get().unwrap();
    users::table.filter(users::username.eq(name)).select(users::id).first(&mut conn).unwrap()
}

fn goal_count(app: &TestApp, name: &str) -> i64 {
    let id = user_id(app, name);
    let mut conn = app.pool.get().unwrap();
    custom_achievements::table.filter(custom_achievements::owner_id.eq(id)).count().get_result(&mut conn).unwrap()
}

/// Stores `n` playtime goals for `name` straight in the database (what the
/// form would store), named "Goal 1" … "Goal n".
fn store_goals(app: &TestApp, name: &str, n: usize) {
    let owner = user_id(app, name);
    let mut conn = app.pool.get().unwrap();
    for i in 1..=n {
        diesel::insert_into(custom_achievements::table)
            .values((
                custom_achievements::owner_id.eq(owner),
                custom_achievements::name.eq(format!("Goal {i}")),
                custom_achievements::condition_type.eq("playtime"),
                custom_achievements::condition.eq(json!({ "hours": i })),
                custom_achievements::created_at.eq(chrono::Utc::now() - chrono::Duration::seconds(i as i64)),
            ))
            .execute(&mut conn)
            .unwrap();
    }
}

fn goal_file(name: &str, games: &[&str]) -> String {
    json!({"format": "questline-goal", "version": 1, "name": name,
           "condition_type": "complete_games", "condition": {"games": games}})
    .to_string()
}

async fn import_goal(app: &TestApp, client: &reqwest::Client, json: &str) -> reqwest::Response {
    app.submit_multipart_with(client, "/achievements/import", "/achievements/import", &[("json", json)], None).await
}

fn names_on(doc: &scraper::Html, selector: &str) -> Vec<String> {
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel).map(|e| e.text().collect::<String>().trim().to_owned()).collect()
}

#[actix_web::test]
async fn the_goals_page_shows_twenty_five_at_a_time_and_says_how_many_there_are() {
    let (app, _fake) = synced_alice().await;
    store_goals(&app, "alice", 30);
    let first = html(app.get("/achievements").await).await;
    let names = names_on(&first, "#achievements .achievement-name");
    assert_eq!(names.len(), 25);
    assert_eq!(names[0], "Goal 1", "newest first");
    assert!(text_of(&first, "#goal-count").unwrap().contains("30 of the 200 goals"));
    assert!(text_of(&first, ".pagination").unwrap().contains("Page 1 of 2"));
    let second = html(app.get("/achievements?page=2").await).await;
    assert_eq!(
        names_on(&second, "#achievements .achievement-name"),
        ["Goal 26", "Goal 27", "Goal 28", "Goal 29", "Goal 30"]
    );
    let past = html(app.get("/achievements?page=999999999999").await).await;
    assert!(names_on(&past, "#achievements .achievement-name").is_empty());
    assert!(text_of(&past, "#no-achievements").is_none(), "a page past the end is not 'no goals yet'");
}

#[actix_web::test]
async fn an_account_at_its_goal_limit_is_refused_everywhere_with_what_it_typed_kept() {
    let (app, _fake) = crate::steam::app_with_steam_env(portal_state(), &[("GOALS_PER_ACCOUNT", "2")]).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    create(&app, &[("name", "One"), ("condition_type", "playtime"), ("hours", "1")]).await;
    create(&app, &[("name", "Two"), ("condition_type", "playtime"), ("hours", "2")]).await;

    let res = app
        .submit_multipart(
            "/achievements/new",
            "/achievements",
            &[("name", "Three, typed with care"), ("condition_type", "playtime"), ("hours", "3")],
            None,
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = html(res).await;
    assert!(text_of(&page, "#form-errors").unwrap().contains("as many as one account may"), "the form says why");
    let name = scraper::Selector::parse("input[name=name]").unwrap();
    assert_eq!(page.select(&name).next().unwrap().value().attr("value"), Some("Three, typed with care"));

    let file = goal_file("Portals", &["400"]);
    let res = import_goal(&app, &app.client, &file).await;
    assert_eq!(res.status(), 422);
    let page = html(res).await;
    assert!(text_of(&page, "#import-error").unwrap().contains("as many as one account may"));
    assert!(page.html().contains("Portals"), "the pasted file is kept");

    let list = html(app.get("/achievements").await).await;
    assert!(text_of(&list, "#goals-full").is_some());
    assert_eq!(goal_count(&app, "alice"), 2);

    // A goal shared by someone else cannot be taken on either.
    let bob = crate::profiles::bob_with_portal(&app).await;
    let res = import_goal(&app, &bob, &goal_file("Bob's", &["400"])).await;
    assert_eq!(location(&res), "/achievements");
    let bobs_goal: i64 = custom_achievements::table
        .filter(custom_achievements::owner_id.eq(user_id(&app, "bob")))
        .select(custom_achievements::id)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    app.submit_with(&bob, "/achievements", &format!("/achievements/{bobs_goal}/share"), &[]).await;
    let shared: i64 =
        community_achievements::table.select(community_achievements::id).first(&mut app.pool.get().unwrap()).unwrap();
    let res = app.submit(&format!("/community/{shared}"), &format!("/community/{shared}/import"), &[]).await;
    assert_eq!(location(&res), format!("/community/{shared}"));
    let page = html(app.get(&format!("/community/{shared}")).await).await;
    assert!(page.html().contains("as many as one account may"));
    assert_eq!(goal_count(&app, "alice"), 2);
}

#[actix_web::test]
async fn parallel_imports_cannot_pass_the_goal_limit_together() {
    let (app, _fake) = crate::steam::app_with_steam_env(portal_state(), &[("GOALS_PER_ACCOUNT", "3")]).await;
    let doc = html(app.get("/achievements/import").await).await;
    let token = crate::helpers::csrf_token(&doc).unwrap();
    let sends = (0..12).map(|i| {
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token.clone())
            .text("json", goal_file(&format!("Race {i}"), &["400"]));
        app.client.post(app.url("/achievements/import")).multipart(form).send()
    });
    let statuses: Vec<u16> =
        futures_util::future::join_all(sends).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 303).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 9, "{statuses:?}");
    assert_eq!(goal_count(&app, "alice"), 3);
}

#[actix_web::test]
async fn thirty_parallel_pins_from_none_leave_exactly_twenty() {
    let (app, _fake) = synced_alice().await;
    store_goals(&app, "alice", 30);
    let ids: Vec<i64> =
        custom_achievements::table.select(custom_achievements::id).load(&mut app.pool.get().unwrap()).unwrap();
    let doc = html(app.get("/achievements").await).await;
    let token = crate::helpers::csrf_token(&doc).unwrap();
    let sends = ids.iter().map(|id| {
        let (id, token) = (id.to_string(), token.clone());
        let form =
            [("csrf_token", token), ("goal", id), ("action", "pin".to_owned()), ("next", "/achievements".to_owned())];
        app.client.post(app.url("/pins")).form(&form).send()
    });
    for res in futures_util::future::join_all(sends).await {
        assert!(res.unwrap().status().is_redirection());
    }
    let pinned: i64 = pins::table.count().get_result(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(pinned, questline::pins::MAX_PINS);
}

#[actix_web::test]
async fn a_goal_file_with_an_escaped_nul_or_an_app_id_past_32_bits_is_refused_by_name_not_with_a_500() {
    let (app, _fake) = synced_alice().await;
    let base = json!({"format": "questline-goal", "version": 1, "name": "Fine",
                      "condition_type": "complete_games", "condition": {"games": ["400"]}});
    let mut cases = Vec::new();
    let mut nul_name = base.clone();
    nul_name["name"] = json!("Bad\u{0}name");
    cases.push((nul_name, "name contains a control character"));
    let mut nul_description = base.clone();
    nul_description["description"] = json!("Text\u{0}");
    cases.push((nul_description, "description contains a control character"));
    let nul_api = json!({"format": "questline-goal", "version": 1, "name": "x", "condition_type": "specific_achievements",
                         "condition": {"achievements": [{"appid": "400", "api_name": "A\u{0}1"}]}});
    cases.push((nul_api, "printable"));
    for big in [json!(9_223_372_036_854_775_807u64), json!("9223372036854775807"), json!(4_294_967_296u64)] {
        let mut file = base.clone();
        file["condition"]["games"] = json!([big]);
        cases.push((file, "is not a Steam app id"));
    }
    for (file, why) in cases {
        let text = file.to_string();
        assert!(!text.contains('\0'), "sent as the JSON escape, not a raw byte");
        let res = import_goal(&app, &app.client, &text).await;
        assert_eq!(res.status(), 422, "{text}");
        let error = text_of(&html(res).await, "#import-error").unwrap();
        assert!(error.contains(why), "{error} should say {why}");
    }
    assert_eq!(goal_count(&app, "alice"), 0);
    let mut as_number = base.clone();
    as_number["condition"]["games"] = json!([400]);
    let res = import_goal(&app, &app.client, &as_number.to_string()).await;
    assert_eq!(location(&res), "/achievements", "a small app id as a number is fine");
}

#[actix_web::test]
async fn a_public_profile_shows_a_page_of_goals_whatever_its_owner_stored() {
    let (app, _fake) = synced_alice().await;
    store_goals(&app, "alice", 45);
    let res =
        app.submit("/settings/profile", "/settings/profile", &[("profile_public", "1"), ("show_goals", "1")]).await;
    assert_eq!(location(&res), "/settings/profile");
    let visitor = new_client();
    let page = html(visitor.get(app.url("/u/alice")).send().await.unwrap()).await;
    let goals = names_on(&page, "#profile-goals li strong");
    assert_eq!(goals.len(), 20);
    assert!(text_of(&page, "#profile-goals h2").unwrap().contains("45"));
    assert!(text_of(&page, "#profile-goals .pagination").unwrap().contains("Page 1 of 3"));
    let last = html(visitor.get(app.url("/u/alice?page=3")).send().await.unwrap()).await;
    assert_eq!(names_on(&last, "#profile-goals li strong").len(), 5);
    let long = "x".repeat(5000);
    assert_eq!(visitor.get(app.url(&format!("/u/{long}"))).send().await.unwrap().status(), 404);
}

#[actix_web::test]
async fn a_profile_turned_private_leaves_the_cache_at_once() {
    let (app, _fake) = synced_alice().await;
    app.submit("/settings/profile", "/settings/profile", &[("profile_public", "1")]).await;
    let visitor = new_client();
    assert_eq!(visitor.get(app.url("/u/alice")).send().await.unwrap().status(), 200);
    assert_eq!(visitor.get(app.url("/u/alice")).send().await.unwrap().status(), 200, "now kept");
    app.submit("/settings/profile", "/settings/profile", &[]).await;
    assert_eq!(visitor.get(app.url("/u/alice")).send().await.unwrap().status(), 404);
}

#[actix_web::test]
async fn an_account_locked_by_any_path_leaves_the_cached_leaderboards_at_once() {
    let (app, _fake) = synced_alice().await;
    app.submit("/settings/profile", "/settings/profile", &[("on_leaderboard", "1")]).await;
    let visitor = new_client();
    let board = |client: reqwest::Client| {
        let url = app.url("/leaderboards");
        async move { text_of(&html(client.get(url).send().await.unwrap()).await, "#leaderboard").unwrap_or_default() }
    };
    assert!(board(visitor.clone()).await.contains("alice"));
    assert!(board(visitor.clone()).await.contains("alice"), "kept");
    let id = user_id(&app, "alice");
    diesel::update(users::table.find(id))
        .set(users::status.eq("locked"))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(!board(visitor.clone()).await.contains("alice"), "gone at once, not after a minute");
}

#[actix_web::test]
async fn taking_a_shared_goal_on_again_after_deleting_the_copy_counts_no_second_try_or_completion() {
    let (app, _fake) = synced_alice().await;
    let bob = crate::profiles::bob_with_portal(&app).await;
    // Bob shares "unlock one achievement in Portal", which Alice has met.
    let res = import_goal(
        &app,
        &bob,
        &json!({"format": "questline-goal", "version": 1, "name": "A start",
        "condition_type": "achievement_count", "condition": {"count": 1, "games": ["400"]}})
        .to_string(),
    )
    .await;
    assert_eq!(location(&res), "/achievements");
    let bobs: i64 =
        custom_achievements::table.select(custom_achievements::id).first(&mut app.pool.get().unwrap()).unwrap();
    app.submit_with(&bob, "/achievements", &format!("/achievements/{bobs}/share"), &[]).await;
    let shared: i64 =
        community_achievements::table.select(community_achievements::id).first(&mut app.pool.get().unwrap()).unwrap();
    let counts = || -> (i32, i32) {
        community_achievements::table
            .find(shared)
            .select((community_achievements::tries_count, community_achievements::completions_count))
            .first(&mut app.pool.get().unwrap())
            .unwrap()
    };
    for round in 0..3 {
        let res = app.submit("/community", &format!("/community/{shared}/import"), &[]).await;
        assert_eq!(location(&res), "/achievements");
        assert_eq!(counts(), (1, 1), "round {round}: one try and one completion, however often");
        let copy = crate::achievements::newest_id(&app);
        let res =
            app.submit(&format!("/achievements/{copy}/delete"), &format!("/achievements/{copy}/delete"), &[]).await;
        assert_eq!(location(&res), "/achievements");
    }
}

#[actix_web::test]
async fn the_data_export_writes_names_that_would_start_a_formula_as_text() {
    let (app, _fake) = synced_alice().await;
    diesel::update(games::table.find(400))
        .set(games::name.eq("=HYPERLINK(\"http://evil\",\"x\")"))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    let files = crate::your_data::export(&app).await;
    let library = String::from_utf8(files["library.csv"].clone()).unwrap();
    assert!(library.contains("\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\""), "{library}");
    let unlocks = String::from_utf8(files["unlocks.csv"].clone()).unwrap();
    assert!(unlocks.contains("'=HYPERLINK"), "{unlocks}");
    assert!(!unlocks.lines().any(|l| l.contains(",=HYPERLINK") || l.contains(",\"=HYPERLINK")));
    let doc: serde_json::Value = serde_json::from_slice(&files["questline.json"]).unwrap();
    let names: Vec<&str> = doc["library"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"=HYPERLINK(\"http://evil\",\"x\")"), "the JSON keeps the name as Steam gave it");
}

#[actix_web::test]
async fn a_hidden_achievement_not_yet_unlocked_keeps_its_name_secret_on_the_goal_form() {
    let (app, _fake) = synced_alice().await;
    let page = app
        .get("/achievements/new?condition_type=specific_achievements&games=400&games=620")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("SECRET title"), "Portal's hidden SECRET is still locked");
    assert!(page.contains("Hidden achievement"));
    assert!(page.contains("B2 title"), "Portal 2's hidden B2 is unlocked: its name shows");
    assert!(page.contains("A1 title"));
}

#[actix_web::test]
async fn a_nul_in_a_game_name_from_steam_is_dropped_and_the_sync_finishes() {
    let mut state = portal_state();
    state.games.get_mut(&400).unwrap().name = "Por\u{0}tal".into();
    let (app, _fake) = crate::steam::app_with_steam(state).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let name: String = games::table.find(400).select(games::name).first(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(name, "Portal");
}

#[actix_web::test]
async fn a_request_whose_statement_runs_past_the_time_limit_gets_a_clear_503_and_frees_its_thread() {
    let (app, _fake) =
        crate::steam::app_with_steam_env(portal_state(), &[("REQUEST_STATEMENT_TIMEOUT_MS", "300")]).await;
    // Another session holds the goals table, so the page's read waits.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let url = crate::helpers::database_url(&app.db_name);
    let locker = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::sql_query("LOCK TABLE custom_achievements IN ACCESS EXCLUSIVE MODE").execute(conn)?;
            let _ = rx.recv();
            Ok(())
        })
        .unwrap();
    });
    app.wait_for("the lock to be held", |conn| {
        #[derive(QueryableByName)]
        struct Held {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let held: Held = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'custom_achievements' AND l.mode = 'AccessExclusiveLock' AND l.granted",
        )
        .get_result(conn)
        .unwrap();
        (held.n > 0).then_some(())
    })
    .await;
    let res = app.get("/achievements").await;
    assert_eq!(res.status(), 503);
    let body = res.text().await.unwrap();
    assert!(body.contains("took longer than its time limit"), "{body}");
    tx.send(()).unwrap();
    locker.join().unwrap();
    assert_eq!(app.get("/achievements").await.status(), 200, "the next request is served as usual");
}

#[actix_web::test]
async fn importing_a_goal_evaluates_that_goal_alone() {
    let (app, _fake) = synced_alice().await;
    store_goals(&app, "alice", 3);
    let before: Vec<Option<chrono::DateTime<chrono::Utc>>> = custom_achievements::table
        .order(custom_achievements::id)
        .select(custom_achievements::evaluated_at)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(before.iter().all(Option::is_none));
    let res = import_goal(&app, &app.client, &goal_file("Portals", &["400"])).await;
    assert_eq!(location(&res), "/achievements");
    let after: Vec<Option<chrono::DateTime<chrono::Utc>>> = custom_achievements::table
        .order(custom_achievements::id)
        .select(custom_achievements::evaluated_at)
        .load(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(after.len(), 4);
    assert!(after[..3].iter().all(Option::is_none), "the other goals were not evaluated again");
    assert!(after[3].is_some(), "the imported goal was");
}

#[actix_web::test]
async fn a_cached_page_is_weighed_and_metrics_show_the_bytes_kept() {
    let app = spawn_app_with(|env| {
        env.insert("PAGE_CACHE_MB".into(), "1".into());
    })
    .await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    store_goals(&app, "alice", 25);
    assert_eq!(app.get("/achievements").await.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let bytes: f64 = metrics
        .lines()
        .find(|l| l.starts_with("questline_page_cache{what=\"bytes\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("the page cache's bytes are on /metrics:\n{metrics}"));
    assert!(bytes > 1000.0 && bytes <= 1024.0 * 1024.0, "{bytes} bytes kept");
}

/// Opens a raw connection and sends a multipart POST's head and all but
/// the last byte of a body of `declared` bytes, then keeps it open.
async fn half_sent_upload(app: &TestApp, declared: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=xx\r\nContent-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b'a'; declared - 1]).await.unwrap();
    stream
}

async fn status_of(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 512];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned()
}

#[actix_web::test]
async fn a_body_trickled_past_its_deadline_gets_a_408_and_frees_its_buffer() {
    let app = spawn_app_with(|env| {
        env.insert("BODY_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let mut stream = half_sent_upload(&app, 200_000).await;
    // The server answers by itself once the deadline passes.
    let status = status_of(&mut stream).await;
    assert!(status.contains("408"), "{status}");
}

#[actix_web::test]
async fn half_sent_uploads_beyond_the_buffer_budget_are_refused_not_held() {
    let app = spawn_app_with(|env| {
        env.insert("MAX_BODY_BYTES".into(), "1048576".into());
        env.insert("BODY_BUFFER_MB".into(), "1".into());
    })
    .await;
    // The first half-sent body takes the whole budget and holds it.
    let _first = half_sent_upload(&app, 1_000_000).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        let held: f64 = metrics
            .lines()
            .find(|l| l.starts_with("questline_body_buffer_bytes "))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if held >= 990_000.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the first body is never buffered ({held} bytes held)");
        tokio::task::yield_now().await;
    }
    let mut second = half_sent_upload(&app, 1_000_000).await;
    let status = status_of(&mut second).await;
    assert!(status.contains("503"), "the second waits for room, then is refused: {status}");
    assert_eq!(app.get("/healthz").await.status(), 200, "everything else is served");
}

#[actix_web::test]
async fn a_goal_form_padded_with_thousands_of_values_costs_what_a_normal_one_does() {
    let (app, _fake) = synced_alice().await;
    let mut fields: Vec<(String, String)> =
        vec![("name".into(), "Padded".into()), ("condition_type".into(), "specific_achievements".into())];
    fields.push(("games".into(), "400".into()));
    for i in 0..20_000 {
        fields.push(("achievements".into(), format!("400:A{}", i % 3)));
        fields.push(("achievements".into(), format!("400:NOPE_{i}")));
    }
    // Written out by hand: reqwest chains one stream per part, and 40,000
    // parts overflow the test's own stack.
    let token = crate::helpers::csrf_token(&html(app.get("/achievements/new").await).await).unwrap();
    fields.push(("csrf_token".into(), token));
    let mut body = String::new();
    for (k, v) in &fields {
        body.push_str(&format!("--xx\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    body.push_str("--xx--\r\n");
    let post = |path: &'static str| {
        app.client
            .post(app.url(path))
            .header("Content-Type", "multipart/form-data; boundary=xx")
            .body(body.clone())
            .send()
    };
    let res = post("/achievements/preview").await.unwrap();
    assert_eq!(res.status(), 200);
    let page = html(res).await;
    // The values are bounded (each once, a few past the limit) before the
    // page looks them up: the real ones are still ticked.
    let ticked = scraper::Selector::parse("#achievement-options option[selected]").unwrap();
    assert_eq!(page.select(&ticked).count(), 2, "A0 and A1 (A2 is not one of Portal's)");
    let res = post("/achievements").await.unwrap();
    assert_eq!(res.status(), 422);
    let errors = text_of(&html(res).await, "#form-errors").unwrap();
    assert!(errors.contains("1 to 200 achievements"), "too many is said, not worked through: {errors}");
}

#[actix_web::test]
async fn a_goal_name_with_a_control_character_is_refused_by_the_form_as_by_the_import() {
    let (app, _fake) = synced_alice().await;
    let res = app
        .submit_multipart(
            "/achievements/new",
            "/achievements",
            &[("name", "Bell\u{7}ringer"), ("condition_type", "playtime"), ("hours", "1")],
            None,
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#form-errors").unwrap().contains("cannot contain control characters"));
    assert_eq!(goal_count(&app, "alice"), 0);
}

#[actix_web::test]
async fn data_exports_are_limited_per_hour_and_never_take_every_connection() {
    let (app, _fake) = synced_alice().await;
    let first = crate::your_data::export(&app).await;
    assert!(first.contains_key("questline.json"));
    let mut statuses = Vec::new();
    for _ in 0..questline::account::service::EXPORTS_PER_HOUR {
        statuses.push(app.get("/account/data/export").await.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count() as u32,
        questline::account::service::EXPORTS_PER_HOUR - 1
    );
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    assert_eq!(app.get("/achievements").await.status(), 200);
}
