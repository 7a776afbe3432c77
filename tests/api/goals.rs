//! Richer goals: rarity conditions, combined conditions, pins, the shared
//! goal's page, and goals carried between instances as JSON.

use diesel::prelude::*;
use questline::schema::custom_achievements;

use crate::achievements::{create, synced_alice};
use crate::helpers::{html, text_of, TestApp};

fn progress(app: &TestApp, id: i64) -> (f64, f64, Option<chrono::DateTime<chrono::Utc>>) {
    let mut conn = app.pool.get().unwrap();
    custom_achievements::table
        .find(id)
        .select((
            custom_achievements::progress_current,
            custom_achievements::progress_target,
            custom_achievements::met_at,
        ))
        .first(&mut conn)
        .unwrap()
}

#[actix_web::test]
async fn a_rarity_goal_counts_unlocks_rarer_than_its_percentage_and_dates_the_one_that_met_it() {
    let (app, _fake) = synced_alice().await;
    // Alice's unlocks: 80.5 %, 20 %, 50 %, 1 %. Only B2 (1 %) is rarer than 5 %.
    let two = create(
        &app,
        &[("name", "Two rare ones"), ("condition_type", "rare_achievements"), ("count", "2"), ("rarer_than", "5")],
    )
    .await;
    assert_eq!(progress(&app, two), (1.0, 2.0, None));
    let one = create(
        &app,
        &[("name", "A rare one"), ("condition_type", "rare_achievements"), ("count", "1"), ("rarer_than", "5")],
    )
    .await;
    let (current, target, met) = progress(&app, one);
    assert_eq!((current, target), (1.0, 1.0));
    assert_eq!(met.unwrap().timestamp(), 1_650_000_100, "met when B2 was unlocked");
    let in_portal = create(
        &app,
        &[
            ("name", "Rare in Portal"),
            ("condition_type", "rare_achievements"),
            ("count", "1"),
            ("rarer_than", "25"),
            ("games", "400"),
        ],
    )
    .await;
    assert_eq!(progress(&app, in_portal).0, 1.0, "A2 (20 %) in Portal; B2 is in another game");
    let list = html(app.get("/achievements").await).await;
    assert!(text_of(&list, "#achievements").unwrap().contains("1/2 rare achievements"));

    let res = app
        .submit_multipart(
            "/achievements/new",
            "/achievements",
            &[("name", "Bad"), ("condition_type", "rare_achievements"), ("count", "2"), ("rarer_than", "lots")],
            None,
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#form-errors").unwrap().contains("rarity percentage"));
}

#[actix_web::test]
async fn combined_goals_are_met_by_all_any_or_n_of_their_parts() {
    let (app, _fake) = synced_alice().await;
    let portal = create(
        &app,
        &[("name", "Portal Master"), ("condition_type", "complete_games"), ("games", "400"), ("games", "620")],
    )
    .await;
    let dota =
        create(&app, &[("name", "Centurion"), ("condition_type", "playtime"), ("hours", "100"), ("games", "570")])
            .await;
    let rare = create(
        &app,
        &[("name", "A rare one"), ("condition_type", "rare_achievements"), ("count", "1"), ("rarer_than", "5")],
    )
    .await;
    let (p, d, r) = (portal.to_string(), dota.to_string(), rare.to_string());
    let combined = |name: &'static str, mode: &'static str, n: &'static str, parts: Vec<String>| {
        let mut fields: Vec<(String, String)> = vec![
            ("name".into(), name.into()),
            ("condition_type".into(), "combined".into()),
            ("combine_mode".into(), mode.into()),
            ("combine_n".into(), n.into()),
        ];
        fields.extend(parts.into_iter().map(|id| ("parts".to_owned(), id)));
        fields
    };
    let submit = |fields: Vec<(String, String)>| {
        let app = &app;
        async move {
            let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            app.submit_multipart("/achievements/new", "/achievements", &refs, None).await
        }
    };
    assert_eq!(submit(combined("All", "all", "", vec![p.clone(), d.clone()])).await.status(), 303);
    let all = crate::achievements::newest_id(&app);
    assert_eq!(progress(&app, all).0..=progress(&app, all).1, 1.0..=2.0, "Dota's hours, not Portal 2's perfect");
    assert!(progress(&app, all).2.is_none());
    assert_eq!(submit(combined("Any", "any", "", vec![p.clone(), d.clone()])).await.status(), 303);
    let any = crate::achievements::newest_id(&app);
    assert!(progress(&app, any).2.is_some(), "one is enough");
    assert_eq!(submit(combined("Two", "at_least", "2", vec![p.clone(), d.clone(), r.clone()])).await.status(), 303);
    let two = crate::achievements::newest_id(&app);
    let (current, target, met) = progress(&app, two);
    assert_eq!((current, target), (2.0, 2.0));
    assert!(met.is_some());
    let list = html(app.get("/achievements").await).await;
    assert!(text_of(&list, "#achievements").unwrap().contains("1 of 2 conditions met"));

    let res = submit(combined("One part", "all", "", vec![p.clone()])).await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#form-errors").unwrap().contains("at least two"));
    let res = submit(combined("Too many", "at_least", "5", vec![p.clone(), d.clone()])).await;
    assert_eq!(res.status(), 422);
    let res = submit(combined("Nested", "all", "", vec![all.to_string(), p.clone()])).await;
    assert_eq!(res.status(), 422, "a combined goal is not a part");
}

fn goal_count(app: &TestApp, owner: &str) -> i64 {
    use questline::schema::users;
    let mut conn = app.pool.get().unwrap();
    custom_achievements::table
        .inner_join(users::table.on(users::id.eq(custom_achievements::owner_id)))
        .filter(users::username.eq(owner))
        .count()
        .get_result(&mut conn)
        .unwrap()
}

#[actix_web::test]
async fn pinned_achievements_and_goals_show_on_the_dashboard_until_unpinned() {
    let (app, _fake) = synced_alice().await;
    let goal =
        create(&app, &[("name", "Centurion"), ("condition_type", "playtime"), ("hours", "100"), ("games", "570")])
            .await;
    let game = html(app.get("/library/400").await).await;
    let sel = scraper::Selector::parse("#achievements form.pin-form input[name=achievement]").unwrap();
    let first: String = game.select(&sel).next().unwrap().value().attr("value").unwrap().to_owned();
    let res = app
        .submit("/library/400", "/pins", &[("achievement", &first), ("action", "pin"), ("next", "/library/400")])
        .await;
    assert_eq!(crate::helpers::location(&res), "/library/400");
    let res = app
        .submit("/achievements", "/pins", &[("goal", &goal.to_string()), ("action", "pin"), ("next", "/achievements")])
        .await;
    assert_eq!(crate::helpers::location(&res), "/achievements");
    let dash = html(app.get("/dashboard").await).await;
    let pinned = text_of(&dash, "#pinned").unwrap();
    assert!(pinned.contains("Centurion") && pinned.contains("in Portal"), "{pinned}");
    let game = html(app.get("/library/400").await).await;
    assert!(text_of(&game, "#achievements").unwrap().contains("Unpin"));

    app.submit("/dashboard", "/pins", &[("goal", &goal.to_string()), ("action", "unpin"), ("next", "/dashboard")])
        .await;
    app.submit("/dashboard", "/pins", &[("achievement", &first), ("action", "unpin"), ("next", "/dashboard")]).await;
    assert!(text_of(&html(app.get("/dashboard").await).await, "#pinned").is_none());

    // Not yours: somebody else's goal, a game outside your library, odd input.
    let bob = crate::profiles::bob_with_portal(&app).await;
    let res = app.submit_with(&bob, "/dashboard", "/pins", &[("goal", &goal.to_string()), ("action", "pin")]).await;
    assert_eq!(res.status(), 404);
    let res = app.submit_with(&bob, "/dashboard", "/pins", &[("achievement", "999999"), ("action", "pin")]).await;
    assert_eq!(res.status(), 404);
    let res = app.submit_with(&bob, "/dashboard", "/pins", &[("action", "pin")]).await;
    assert_eq!(res.status(), 400);
    let res = app.submit_with(&bob, "/dashboard", "/pins", &[("goal", &goal.to_string()), ("action", "explode")]).await;
    assert_eq!(res.status(), 400);
    let res = app
        .submit_with(
            &bob,
            "/dashboard",
            "/pins",
            &[("goal", "1"), ("action", "unpin"), ("next", "https://evil.example/")],
        )
        .await;
    assert_eq!(crate::helpers::location(&res), "/dashboard", "no open redirect");
}

#[actix_web::test]
async fn a_shared_goal_has_a_page_with_its_games_and_the_viewers_progress_before_adding_it() {
    use questline::schema::community_achievements;
    let (app, _fake) = synced_alice().await;
    let id = create(
        &app,
        &[("name", "Portal Master"), ("condition_type", "complete_games"), ("games", "400"), ("games", "620")],
    )
    .await;
    app.submit("/achievements", &format!("/achievements/{id}/share"), &[]).await;
    let shared: i64 = {
        let mut conn = app.pool.get().unwrap();
        community_achievements::table.select(community_achievements::id).first(&mut conn).unwrap()
    };
    let bob = crate::profiles::bob_with_portal(&app).await;
    let page = html(bob.get(app.url(&format!("/community/{shared}"))).send().await.unwrap()).await;
    assert_eq!(text_of(&page, "#goal-condition").unwrap().trim(), "Complete every achievement of 2 games");
    let games = text_of(&page, "#goal-games").unwrap();
    assert!(games.contains("Portal") && games.contains("Portal 2"));
    assert!(
        text_of(&page, "#your-progress").unwrap().contains("1/5 achievements"),
        "A1 of Portal's 3 and Portal 2's 2"
    );
    assert!(text_of(&page, "#goal-tries").unwrap().contains("0 tried"));
    assert_eq!(goal_count(&app, "bob"), 0, "the preview keeps nothing");
    let visitor =
        html(crate::helpers::new_client().get(app.url(&format!("/community/{shared}"))).send().await.unwrap()).await;
    assert!(text_of(&visitor, "#your-progress").is_none());
    assert!(text_of(&visitor, "#goal-summary").unwrap().contains("Sign in"));
    assert_eq!(app.get("/community/987654").await.status(), 404);
    let browse = html(app.get("/community").await).await;
    let link = scraper::Selector::parse(".achievement-name a").unwrap();
    assert_eq!(
        browse.select(&link).next().unwrap().value().attr("href"),
        Some(format!("/community/{shared}").as_str())
    );
}

#[actix_web::test]
async fn a_goal_exported_as_json_imports_elsewhere_checked_against_what_that_instance_knows() {
    let (app, _fake) = synced_alice().await;
    let id = create(
        &app,
        &[("name", "Portal Master"), ("condition_type", "complete_games"), ("games", "400"), ("games", "620")],
    )
    .await;
    let res = app.get(&format!("/achievements/{id}/export")).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("portal-master.questline-goal.json"));
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["format"], "questline-goal");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["games"][0]["name"], "Portal");
    let bob = crate::profiles::bob_with_portal(&app).await;
    assert_eq!(bob.get(app.url(&format!("/achievements/{id}/export"))).send().await.unwrap().status(), 404);

    let json = doc.to_string();
    let res =
        app.submit_multipart_with(&bob, "/achievements/import", "/achievements/import", &[("json", &json)], None).await;
    assert_eq!(crate::helpers::location(&res), "/achievements");
    assert_eq!(goal_count(&app, "bob"), 1);
    let list = html(bob.get(app.url("/achievements")).send().await.unwrap()).await;
    assert!(text_of(&list, "#achievements").unwrap().contains("1/5 achievements"), "evaluated at once");

    let mut unknown = doc.clone();
    unknown["condition"]["games"] = serde_json::json!(["400", "999999"]);
    let res = app
        .submit_multipart_with(
            &bob,
            "/achievements/import",
            "/achievements/import",
            &[],
            Some(("file", "goal.json", unknown.to_string().into_bytes())),
        )
        .await;
    assert_eq!(crate::helpers::location(&res), "/achievements");
    let list = bob.get(app.url("/achievements")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("does not know 1 game(s)"), "the flash names what is unknown");

    let res = app
        .submit_multipart_with(
            &bob,
            "/achievements/import",
            "/achievements/import",
            &[("json", "{\"format\": 1")],
            None,
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = html(res).await;
    assert!(text_of(&page, "#import-error").unwrap().contains("not valid JSON"));
    assert_eq!(goal_count(&app, "bob"), 2, "nothing saved by a refused file");
}
