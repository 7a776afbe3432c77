//! Tracker depth: rarity tiers, points, history, profiles and your data.

use diesel::prelude::*;
use questline::models::score;
use questline::schema::{game_achievements, library_entries, users};

use crate::achievements::synced_alice;
use crate::helpers::{html, text_of, TestApp};

fn alice_id(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    users::table.filter(users::username.eq("alice")).select(users::id).first(&mut conn).unwrap()
}

fn texts(doc: &scraper::Html, selector: &str) -> Vec<String> {
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel).map(|e| e.text().flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ")).collect()
}

// Portal: A1 80.5 % (165 points), A2 20 % (1286), SECRET 3.5 % (locked);
// Portal 2: B1 50 % (464), B2 1 % (9050). Alice has A1, A2, B1, B2.
const ALICE_POINTS: i64 = 165 + 1286 + 464 + 9050;

#[actix_web::test]
async fn each_achievement_shows_its_rarity_tier_and_points_and_the_game_its_totals() {
    let (app, _fake) = synced_alice().await;
    let doc = html(app.get("/library/400?sort=rarity").await).await;
    let tiers = texts(&doc, "#achievements .tier");
    assert_eq!(tiers, ["Ultra rare", "Rare", "Common"], "rarest first: 3.5 %, 20 %, 80.5 %");
    assert_eq!(texts(&doc, "#achievements .points"), ["4395 pts", "1286 pts", "165 pts"]);
    assert_eq!(text_of(&doc, "#game-points").unwrap().trim(), "1451 / 5846 points");
    let doc = html(app.get("/library/400?sort=common").await).await;
    assert_eq!(texts(&doc, "#achievements .tier"), ["Common", "Rare", "Ultra rare"]);
}

#[actix_web::test]
async fn the_library_shows_each_games_rarest_unlock_and_points_and_sorts_by_points() {
    let (app, _fake) = synced_alice().await;
    let doc = html(app.get("/library?sort=points").await).await;
    let games = texts(&doc, "#library tbody td[data-label=Game]");
    assert_eq!(games, ["Portal 2", "Portal", "Dota 2"]);
    let rarest = texts(&doc, "#library tbody td.rarest");
    assert_eq!(rarest, ["Ultra rare B2 title 1.0%", "Rare A2 title 20.0%", "–"]);
    assert_eq!(texts(&doc, "#library tbody td[data-label=Points]"), ["9514", "1451", "0"]);
    let mut conn = app.pool.get().unwrap();
    let s = score::of(&mut conn, alice_id(&app)).unwrap();
    assert_eq!((s.points, s.unlocked, s.perfect, s.games), (ALICE_POINTS, 4, 1, 3));
}

#[actix_web::test]
async fn new_global_percentages_move_every_owners_points_by_the_difference_in_one_pass() {
    let (app, _fake) = synced_alice().await;
    let alice = alice_id(&app);
    let mut conn = app.pool.get().unwrap();
    // A2 falls from 20 % to 1 %: 1286 points become 9050. Steam's list is
    // the game's whole list, so it names all three.
    let names = vec!["A2".to_owned(), "A1".to_owned(), "SECRET".to_owned()];
    let percents = [Some(1.0), Some(80.5), Some(3.5)];
    let changed =
        questline::models::game::GameAchievement::set_global_percentages(&mut conn, 400, &names, &percents).unwrap();
    assert_eq!(changed, 1, "only the percentage that moved counts");
    assert_eq!(questline::rarity::rescore_games(&mut conn, &[400]).unwrap(), 1, "one owner's total moved");
    let moved = score::of(&mut conn, alice).unwrap().points;
    assert_eq!(moved, ALICE_POINTS - 1286 + 9050);
    let entry: i32 =
        library_entries::table.find((alice, 400)).select(library_entries::points).first(&mut conn).unwrap();
    assert_eq!(entry, 165 + 9050);
    // The running total agrees with a sum from scratch.
    questline::rarity::rescore_users(&mut conn, &[alice]).unwrap();
    assert_eq!(score::of(&mut conn, alice).unwrap().points, moved);
    let points: i32 = game_achievements::table
        .filter(game_achievements::api_name.eq("A2"))
        .select(game_achievements::points)
        .first(&mut conn)
        .unwrap();
    assert_eq!(points, questline::rarity::points(Some(1.0)), "SQL and Rust agree on the formula");
}

#[actix_web::test]
async fn admins_change_the_rarity_thresholds_and_nonsense_is_refused_with_nothing_saved() {
    let (app, bob, _) = crate::admin::admin_and_bob().await;
    let doc = html(app.get("/help/points").await).await;
    assert!(text_of(&doc, "#tier-legend").unwrap().contains("Ultra rare 5 % of players or fewer"));

    let res =
        app.submit("/admin/rarity", "/admin/rarity", &[("ultra_rare", "30"), ("rare", "20"), ("uncommon", "50")]).await;
    assert_eq!(res.status(), 422);
    let doc = html(res).await;
    assert!(text_of(&doc, "#rarity-error").unwrap().contains("higher than the one before"));
    let sel = scraper::Selector::parse("input[name=ultra_rare]").unwrap();
    assert_eq!(doc.select(&sel).next().unwrap().value().attr("value"), Some("30"), "what was typed comes back");
    let res = app
        .submit("/admin/rarity", "/admin/rarity", &[("ultra_rare", "abc"), ("rare", "20"), ("uncommon", "50")])
        .await;
    assert_eq!(res.status(), 422);

    let res = app
        .submit("/admin/rarity", "/admin/rarity", &[("ultra_rare", "2.5"), ("rare", "10%"), ("uncommon", "40")])
        .await;
    assert_eq!(res.status(), 303);
    let doc = html(app.get("/help/points").await).await;
    let legend = text_of(&doc, "#tier-legend").unwrap();
    assert!(legend.contains("2.5 % of players or fewer") && legend.contains("over 10 % up to 40 %"), "{legend}");

    let page = bob.get(app.url("/admin/rarity")).send().await.unwrap();
    assert_eq!(page.status(), 404, "not for users");
}

#[actix_web::test]
async fn the_stats_page_tells_the_history_streaks_spread_rarity_and_perfect_games() {
    let (app, _fake) = synced_alice().await;
    let doc = html(app.get("/stats").await).await;
    assert_eq!(text_of(&doc, "#stat-points").unwrap().trim(), ALICE_POINTS.to_string());
    // Unlock days: 2020-09-13, 2020-09-14 and 2022-04-15.
    assert!(text_of(&doc, "#stat-longest").unwrap().contains("2 days"));
    assert!(text_of(&doc, "#stat-longest").unwrap().contains("ended 2020-09-14"));
    assert_eq!(text_of(&doc, "#stat-streak").unwrap().trim(), "0 days");
    let years = texts(&doc, "#per-year tbody tr");
    assert_eq!(&years[..3], ["2020 2", "2021 0", "2022 2"], "empty years kept");
    let spread = texts(&doc, "#spread tbody tr");
    assert_eq!(spread, ["Not started (0 %) 0", "1–24 % 0", "25–49 % 0", "50–74 % 1", "75–99 % 0", "Perfect (100 %) 1"]);
    assert!(text_of(&doc, "#spread").unwrap().contains("1 game(s) without achievements"));
    let tiers = texts(&doc, "#by-tier tbody tr");
    assert_eq!(tiers.len(), 4);
    assert!(tiers.iter().all(|t| t.ends_with(" 1")), "one unlock in each tier: {tiers:?}");
    let rarest = texts(&doc, "#rarest li strong");
    assert_eq!(rarest, ["B2 title", "A2 title", "B1 title", "A1 title"]);
    let perfect = texts(&doc, "#perfect-games li");
    assert_eq!(perfect, ["Portal 2 2 achievements · perfected 2022-04-15"]);
    let recent = texts(&doc, "#recent-feed li strong");
    assert_eq!(recent[0], "B2 title");
    let summary = text_of(&doc, "#timeline-summary").unwrap();
    assert!(summary.contains("from 2020-09"), "{summary}");
}

#[actix_web::test]
async fn a_new_user_sees_empty_stats_that_say_what_comes_next() {
    let app = crate::helpers::spawn_app().await;
    app.register_verified("carol", "carol@example.com", crate::steam::PASSWORD).await;
    app.login_with(&app.client, "carol", crate::steam::PASSWORD).await;
    let res = app.get("/stats").await;
    assert_eq!(res.status(), 200);
    let doc = html(res).await;
    assert!(text_of(&doc, "#no-history").unwrap().contains("No dated unlocks yet"));
    assert_eq!(text_of(&doc, "#stat-points").unwrap().trim(), "0");
    assert!(text_of(&doc, "#perfect-games").unwrap().contains("No perfect game yet"));
}
