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
