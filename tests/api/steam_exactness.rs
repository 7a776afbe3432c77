//! Steam data exactness: what Questline stores equals what Steam says,
//! after any sequence of answers (issue 28). Each hostile answer has an
//! example here; a model-based test then generates sequences of them,
//! runs them through the real worker against the fake Steam, and compares
//! the database with a reference model of what Steam last said, under the
//! removal policy.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use questline::schema::{
    game_achievements, games, jobs, library_entries, removed_games, steam_accounts, user_achievements, user_scores,
    users,
};
use questline::steam::fake::{FakeAchievement, FakeGame, FakeOwned, FakePlayer, FakeState, FakeSteam, GameFault};

use crate::helpers::{html, text_of, TestApp};
use crate::steam::{app_with_steam, link, portal_state, sync_finished, KEY, STEAM_ID};

/// The second player of the fake, for relinks.
const OTHER: u64 = 76561197960287931;

fn mutate(fake: &FakeSteam, f: impl FnOnce(&mut FakeState)) {
    f(&mut fake.state.lock().unwrap());
}

/// Forgets the "Sync now" throttles and any pause Steam asked for, as
/// time passing would.
pub(crate) fn clear_throttles(app: &TestApp) {
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    for pattern in ["rl:sync_now:*", "rl:resync_all:*", "rl:steam_link:*", "steam_pause:*"] {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:{pattern}", app.settings.redis_namespace)).query(&mut conn).unwrap();
        for k in keys {
            let _: () = redis::cmd("DEL").arg(k).query(&mut conn).unwrap();
        }
    }
}

/// Presses a button of the Steam page ("sync" or "resync-all") and waits
/// for the sync it queued to end.
async fn press(app: &TestApp, button: &str) -> String {
    clear_throttles(app);
    let res = app.submit("/settings/steam", &format!("/settings/steam/{button}"), &[]).await;
    assert_eq!(res.status(), 303, "{button}");
    sync_finished(app).await
}

pub(crate) fn alice(app: &TestApp) -> i64 {
    let mut conn = app.pool.get().unwrap();
    users::table.filter(users::username.eq("alice")).select(users::id).first(&mut conn).unwrap()
}

/// What one game of a library looks like: playtime and unlocks (API name,
/// unix time or 0 for none).
pub(crate) type Game = (i32, BTreeSet<(String, i64)>);

/// A user's library and totals, as the reference model or the database
/// has them.
#[derive(Debug, PartialEq)]
pub(crate) struct Library {
    pub(crate) games: BTreeMap<i64, Game>,
    /// (points, unlocked, perfect, games), as `user_scores` keeps them.
    totals: (i64, i64, i64, i64),
    /// Each owned game's achievement count, and each listed achievement's
    /// global percentage.
    counts: BTreeMap<i64, i32>,
    percents: BTreeMap<(i64, String), Option<u64>>,
}

/// A percentage as compared: to a thousandth, NaN and friends as none.
fn pct(p: Option<f64>) -> Option<u64> {
    p.filter(|p| p.is_finite() && (0.0..=100.0).contains(p)).map(|p| (p * 1000.0).round() as u64)
}

/// What Steam says about `player`, under the removal policy: the owned
/// list (each game once), unlocks only of achievements the schema lists
/// (each once, the earliest time), points from the listed percentages.
fn truth(s: &FakeState, player: u64) -> Library {
    let mut games: BTreeMap<i64, Game> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut percents = BTreeMap::new();
    let (mut points, mut unlocked, mut perfect) = (0i64, 0i64, 0i64);
    let owned = s.players.get(&player).map(|p| p.games.clone()).unwrap_or_default();
    for g in &owned {
        if let Some(entry) = games.get_mut(&g.appid) {
            // Listed twice: one game, the larger playtime.
            entry.0 = entry.0.max(g.playtime_minutes);
            continue;
        }
        let schema = s.games.get(&g.appid).map(|x| x.achievements.clone()).unwrap_or_default();
        // Unlocks of achievements the schema lists, each once (an
        // achievement unlocked twice keeps the earliest time; 0 is none).
        let mut first: BTreeMap<String, i64> = BTreeMap::new();
        for (n, t) in &g.unlocked {
            if schema.iter().any(|a| a.api_name == *n) {
                first
                    .entry(n.clone())
                    .and_modify(|e| {
                        *e = match (*e, *t) {
                            (0, t) => t,
                            (e, 0) => e,
                            (e, t) => e.min(t),
                        }
                    })
                    .or_insert(*t);
            }
        }
        let mine: BTreeSet<(String, i64)> = first.into_iter().collect();
        counts.insert(g.appid, schema.len() as i32);
        // The percentages as Steam sends them: the fake writes every other
        // one as a string with one decimal, as Steam does for some games.
        let listed = schema.iter().filter(|a| !s.unlisted_percentages.contains(&a.api_name));
        let sent: BTreeMap<String, f64> = listed
            .enumerate()
            .map(|(i, a)| {
                let p = if i % 2 == 0 {
                    format!("{:.1}", a.global_percent).parse::<f64>().unwrap_or(f64::NAN)
                } else {
                    a.global_percent
                };
                (a.api_name.clone(), p)
            })
            .collect();
        for a in &schema {
            let p = sent.get(&a.api_name).copied().filter(|p| p.is_finite() && (0.0..=100.0).contains(p));
            percents.insert((g.appid, a.api_name.clone()), pct(p));
            if mine.iter().any(|(n, _)| *n == a.api_name) {
                points += i64::from(questline::rarity::points(p));
            }
        }
        unlocked += mine.len() as i64;
        if !schema.is_empty() && mine.len() == schema.len() {
            perfect += 1;
        }
        games.insert(g.appid, (g.playtime_minutes, mine));
    }
    let n = games.len() as i64;
    Library { games, totals: (points, unlocked, perfect, n), counts, percents }
}

/// What the database says about `user`, in the same shape; each entry's
/// cached count and last unlock are checked against its unlock rows.
pub(crate) fn stored(app: &TestApp, user: i64) -> Library {
    let mut conn = app.pool.get().unwrap();
    let entries: Vec<(i64, i32, i32, Option<DateTime<Utc>>)> = library_entries::table
        .filter(library_entries::user_id.eq(user))
        .select((
            library_entries::appid,
            library_entries::playtime_minutes,
            library_entries::unlocked_count,
            library_entries::last_unlock_at,
        ))
        .load(&mut conn)
        .unwrap();
    let unlocks: Vec<(i64, String, Option<DateTime<Utc>>)> = user_achievements::table
        .inner_join(game_achievements::table)
        .filter(user_achievements::user_id.eq(user))
        .select((game_achievements::appid, game_achievements::api_name, user_achievements::unlocked_at))
        .load(&mut conn)
        .unwrap();
    let mut games = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut percents = BTreeMap::new();
    for (appid, playtime, count, last) in entries {
        let mine: BTreeSet<(String, i64)> = unlocks
            .iter()
            .filter(|(a, _, _)| *a == appid)
            .map(|(_, n, t)| (n.clone(), t.map(|t| t.timestamp()).unwrap_or(0)))
            .collect();
        assert_eq!(count as usize, mine.len(), "app {appid}: the cached count matches the rows");
        let latest = mine.iter().map(|(_, t)| *t).filter(|t| *t > 0).max();
        assert_eq!(last.map(|t| t.timestamp()), latest, "app {appid}: the last unlock");
        games.insert(appid, (playtime, mine));
        let n: i32 = games::table.find(appid).select(games::achievement_count).first(&mut conn).unwrap();
        counts.insert(appid, n);
        let listed: Vec<(String, Option<f64>)> = game_achievements::table
            .filter(game_achievements::appid.eq(appid))
            .filter(game_achievements::removed_at.is_null())
            .select((game_achievements::api_name, game_achievements::global_percent))
            .load(&mut conn)
            .unwrap();
        assert_eq!(listed.len() as i32, n, "app {appid}: the count is the listed achievements");
        for (name, p) in listed {
            percents.insert((appid, name), pct(p));
        }
    }
    let totals: (i64, i64, i64, i64) = user_scores::table
        .find(user)
        .select((user_scores::points, user_scores::unlocked, user_scores::perfect, user_scores::games))
        .first(&mut conn)
        .optional()
        .unwrap()
        .unwrap_or_default();
    Library { games, totals, counts, percents }
}

/// Every user's cached numbers equal what their rows say: each entry's
/// count and points from its unlocks of listed achievements, each total
/// from the entries. Holds for owners who did not sync too (a schema
/// change made by someone else's sync moves theirs). `Err` names the
/// first user and number that differ.
fn totals_consistent(app: &TestApp) -> Result<(), String> {
    #[derive(QueryableByName, Debug)]
    struct Off {
        #[diesel(sql_type = diesel::sql_types::Text)]
        what: String,
    }
    let mut conn = app.pool.get().unwrap();
    let off: Vec<Off> = diesel::sql_query(
        "WITH unlocks AS (
             SELECT ua.user_id, ga.appid, count(*) AS n, sum(ga.points) AS points
             FROM user_achievements ua JOIN game_achievements ga ON ga.id = ua.achievement_id
             WHERE ga.removed_at IS NULL GROUP BY ua.user_id, ga.appid
         ), entries AS (
             SELECT le.user_id, le.appid, le.unlocked_count, le.points,
                    coalesce(u.n, 0) AS want_n, coalesce(u.points, 0) AS want_points, g.achievement_count
             FROM library_entries le JOIN games g ON g.appid = le.appid
             LEFT JOIN unlocks u ON u.user_id = le.user_id AND u.appid = le.appid
         ), totals AS (
             SELECT user_id, sum(want_points) AS points, sum(want_n) AS unlocked,
                    count(*) FILTER (WHERE achievement_count > 0 AND want_n >= achievement_count) AS perfect,
                    count(*) AS games
             FROM entries GROUP BY user_id
         )
         SELECT format('user %s app %s: count %s for %s unlocks, points %s for %s',
                       user_id, appid, unlocked_count, want_n, points, want_points) AS what
         FROM entries WHERE unlocked_count <> want_n OR points <> want_points
         UNION ALL
         SELECT format('user %s totals %s/%s/%s/%s, rows say %s/%s/%s/%s', s.user_id,
                       s.points, s.unlocked, s.perfect, s.games, t.points, t.unlocked, t.perfect, t.games)
         FROM user_scores s JOIN totals t ON t.user_id = s.user_id
         WHERE (s.points, s.unlocked, s.perfect, s.games) <> (t.points, t.unlocked, t.perfect, t.games)
         UNION ALL
         SELECT format('user %s keeps an unlock of a removed achievement %s', ua.user_id, ua.achievement_id)
         FROM user_achievements ua JOIN game_achievements ga ON ga.id = ua.achievement_id
         WHERE ga.removed_at IS NOT NULL",
    )
    .load(&mut conn)
    .unwrap();
    match off.first() {
        None => Ok(()),
        Some(o) => Err(format!("{} (and {} more)", o.what, off.len() - 1)),
    }
}

fn achievement(name: &str, percent: f64) -> FakeAchievement {
    FakeAchievement {
        api_name: name.into(),
        display_name: format!("{name} title"),
        description: None,
        hidden: false,
        global_percent: percent,
    }
}

fn player_mut(s: &mut FakeState, id: u64) -> &mut FakePlayer {
    s.players.get_mut(&id).unwrap()
}

fn owned_mut(s: &mut FakeState, id: u64, appid: i64) -> &mut FakeOwned {
    player_mut(s, id).games.iter_mut().find(|g| g.appid == appid).unwrap()
}

/// Portal's state plus a second player who owns Portal 2 alone, with both
/// its achievements.
fn two_players() -> FakeState {
    let mut s = portal_state();
    s.players.insert(
        OTHER,
        FakePlayer {
            persona: "Other".into(),
            public: true,
            games: vec![FakeOwned {
                appid: 620,
                playtime_minutes: 50,
                unlocked: vec![("B1".into(), 1_690_000_000), ("B2".into(), 1_690_000_100)],
            }],
        },
    );
    s
}

fn job_rows(app: &TestApp) -> Vec<(String, Option<String>)> {
    let mut conn = app.pool.get().unwrap();
    jobs::table
        .filter(jobs::kind.eq("steam_sync"))
        .order(jobs::id)
        .select((jobs::status, jobs::last_error))
        .load(&mut conn)
        .unwrap()
}

/// Alice linked to an account of 40 slow games, its first sync part-way.
async fn linked_and_syncing() -> (TestApp, FakeSteam) {
    let (app, fake) = app_with_steam(two_players()).await;
    mutate(&fake, |s| {
        questline::steam::fake::generated_player(s, STEAM_ID, 40, 5);
        s.keys.insert(KEY.into());
        s.latency = std::time::Duration::from_millis(30);
    });
    link(&app, &STEAM_ID.to_string(), KEY).await;
    app.wait_for("the first sync to be part-way", |conn| {
        let done: Option<i32> =
            jobs::table.filter(jobs::status.eq("running")).select(jobs::progress_done).first(conn).optional().unwrap();
        done.filter(|d| *d >= 5)
    })
    .await;
    (app, fake)
}

#[actix_web::test]
async fn a_relink_while_a_sync_runs_keeps_nothing_of_the_old_account() {
    let (app, fake) = linked_and_syncing().await;
    let res = link(&app, &OTHER.to_string(), KEY).await;
    assert_eq!(res.status(), 303);
    assert_eq!(sync_finished(&app).await, "done");
    let user = alice(&app);
    let now = fake.state.lock().unwrap().players[&OTHER].games.clone();
    assert_eq!(stored(&app, user), truth(&fake.state.lock().unwrap(), OTHER), "only the new account: {now:?}");
    let rows = job_rows(&app);
    assert!(rows[0].1.as_deref().unwrap_or("").contains("Steam link changed"), "{rows:?}");
    assert_eq!(rows.last().unwrap().0, "done");
    let page = html(app.get("/stats").await).await;
    assert!(!page.html().contains("Achievement 0 of game"), "the old account's unlocks are nowhere");
}

#[actix_web::test]
async fn an_unlink_while_a_sync_runs_leaves_no_unlock_behind() {
    let (app, _fake) = linked_and_syncing().await;
    let page = app.get("/settings/steam/unlink").await;
    let status = page.status();
    let body = page.text().await.unwrap();
    assert_eq!(status, 200, "the unlink page: {body}");
    let res = app.submit("/settings/steam/unlink", "/settings/steam/unlink", &[]).await;
    assert_eq!(res.status(), 303);
    // The job loop runs one sync at a time: Bob's sync, queued after the
    // unlink, starts only once the superseded run has stopped.
    let bob = crate::helpers::new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", crate::steam::PASSWORD).await;
    app.login_with(&bob, "bob", crate::steam::PASSWORD).await;
    let res = crate::steam::link_with(&app, &bob, &OTHER.to_string(), KEY).await;
    assert_eq!(res.status(), 303);
    let bob_id: i64 =
        users::table.filter(users::username.eq("bob")).select(users::id).first(&mut app.pool.get().unwrap()).unwrap();
    app.wait_for("Bob's sync", move |conn| {
        let s: Option<String> =
            jobs::table.filter(jobs::user_id.eq(bob_id)).select(jobs::status).first(conn).optional().unwrap();
        s.filter(|s| s == "done")
    })
    .await;
    let user = alice(&app);
    let mut conn = app.pool.get().unwrap();
    let unlocks: i64 =
        user_achievements::table.filter(user_achievements::user_id.eq(user)).count().get_result(&mut conn).unwrap();
    let entries: i64 =
        library_entries::table.filter(library_entries::user_id.eq(user)).count().get_result(&mut conn).unwrap();
    assert_eq!((entries, unlocks), (0, 0), "nothing of the unlinked account came back");
    let account: i64 =
        steam_accounts::table.filter(steam_accounts::user_id.eq(user)).count().get_result(&mut conn).unwrap();
    assert_eq!(account, 0);
    let score: Option<i64> =
        user_scores::table.find(user).select(user_scores::unlocked).first(&mut conn).optional().unwrap();
    assert_eq!(score.unwrap_or(0), 0);
}

#[actix_web::test]
async fn sync_now_during_a_games_backoff_keeps_a_follow_up_for_it() {
    let (app, fake) = app_with_steam(portal_state()).await;
    mutate(&fake, |s| {
        s.game_faults.insert(620, GameFault::Status(500));
    });
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let follow_up = |app: &TestApp| -> Option<DateTime<Utc>> {
        jobs::table
            .filter(jobs::status.eq("queued"))
            .select(jobs::run_after)
            .first(&mut app.pool.get().unwrap())
            .optional()
            .unwrap()
    };
    let first = follow_up(&app).expect("a follow-up for Portal 2");
    // "Sync now" runs the follow-up early; Portal 2 is still backing off.
    assert_eq!(press(&app, "sync").await, "done");
    let second = follow_up(&app).expect("the follow-up is still there");
    assert_eq!(second.timestamp(), first.timestamp(), "due when Portal 2's backoff ends");
}

#[actix_web::test]
async fn an_achievement_steam_removed_no_longer_counts_and_comes_back_with_its_unlock() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let user = alice(&app);
    // Portal drops A2 (which Alice unlocked) and SECRET (which she did not).
    mutate(&fake, |s| s.games.get_mut(&400).unwrap().achievements.retain(|a| a.api_name == "A1"));
    assert_eq!(press(&app, "resync-all").await, "done");
    let after = stored(&app, user);
    assert_eq!(after, truth(&fake.state.lock().unwrap(), STEAM_ID));
    assert_eq!(after.counts[&400], 1);
    assert_eq!(after.totals.2, 2, "Portal is perfect now: 1 of 1");
    let page = app.get("/library/400").await.text().await.unwrap();
    assert!(page.contains("A1 title") && !page.contains("SECRET title"), "removed achievements are not listed");
    // Steam lists A2 again: the unlock Alice had comes back.
    mutate(&fake, |s| s.games.get_mut(&400).unwrap().achievements.push(achievement("A2", 20.0)));
    assert_eq!(press(&app, "resync-all").await, "done");
    assert_eq!(stored(&app, user), truth(&fake.state.lock().unwrap(), STEAM_ID));
}

#[actix_web::test]
async fn a_game_that_leaves_the_owned_list_stops_counting_and_comes_back_whole() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let user = alice(&app);
    let portal2 = mutate_take(&fake, 620);
    assert_eq!(press(&app, "sync").await, "done");
    let after = stored(&app, user);
    assert_eq!(after, truth(&fake.state.lock().unwrap(), STEAM_ID));
    assert!(!after.games.contains_key(&620));
    let mut conn = app.pool.get().unwrap();
    let kept: i64 = removed_games::table.filter(removed_games::user_id.eq(user)).count().get_result(&mut conn).unwrap();
    assert_eq!(kept, 1, "kept as no longer in the library");
    let page = html(app.get("/settings/steam").await).await;
    assert!(text_of(&page, "#removed-games").unwrap_or_default().contains("Portal 2"), "shown on the Steam page");
    mutate(&fake, |s| player_mut(s, STEAM_ID).games.push(portal2));
    assert_eq!(press(&app, "sync").await, "done");
    assert_eq!(stored(&app, user), truth(&fake.state.lock().unwrap(), STEAM_ID));
}

fn mutate_take(fake: &FakeSteam, appid: i64) -> FakeOwned {
    let mut s = fake.state.lock().unwrap();
    let games = &mut player_mut(&mut s, STEAM_ID).games;
    let i = games.iter().position(|g| g.appid == appid).unwrap();
    games.remove(i)
}

#[actix_web::test]
async fn a_retry_after_from_steam_is_honoured_once_and_shown_with_its_time() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let before = fake.calls("GetOwnedGames");
    mutate(&fake, |s| {
        s.failures.push_back(429);
        s.retry_after = Some("600".into());
    });
    clear_throttles(&app);
    app.submit("/settings/steam", "/settings/steam/sync", &[]).await;
    let (status, run_after): (String, DateTime<Utc>) = app
        .wait_for("the sync to wait for Steam", |conn| {
            jobs::table
                .filter(jobs::status.eq("queued"))
                .filter(jobs::started_at.is_not_null())
                .select((jobs::status, jobs::run_after))
                .first(conn)
                .optional()
                .unwrap()
        })
        .await;
    assert_eq!(status, "queued");
    let wait = (run_after - Utc::now()).num_seconds();
    assert!((590..=600).contains(&wait), "queued again when Steam said: {wait} s");
    assert_eq!(fake.calls("GetOwnedGames"), before + 1, "not retried before Retry-After");
    let page = html(app.get("/settings/steam").await).await;
    let shown = page.html();
    assert!(shown.contains("Steam asked us to wait until"), "the page says why it waits");
}

#[actix_web::test]
async fn a_bad_percentages_answer_is_recorded_and_retried_and_a_dropped_one_is_cleared() {
    let (app, fake) = app_with_steam(portal_state()).await;
    mutate(&fake, |s| {
        s.global_faults.insert(400, GameFault::Truncated);
    });
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done", "the game's unlocks still sync");
    let mut conn = app.pool.get().unwrap();
    let (error, retry, fetched): (Option<String>, Option<DateTime<Utc>>, Option<DateTime<Utc>>) = games::table
        .find(400)
        .select((games::stats_error, games::stats_retry_after, games::global_percentages_fetched_at))
        .first(&mut conn)
        .unwrap();
    assert!(error.unwrap_or_default().contains("GetGlobalAchievementPercentagesForApp"));
    assert!(retry.is_some() && fetched.is_none(), "retried after a backoff, not kept for a week");
    drop(conn);
    mutate(&fake, |s| {
        s.global_faults.clear();
        s.unlisted_percentages.insert("A2".into());
    });
    assert_eq!(press(&app, "resync-all").await, "done");
    assert_eq!(stored(&app, alice(&app)), truth(&fake.state.lock().unwrap(), STEAM_ID));
    let a2: Option<f64> = game_achievements::table
        .filter(game_achievements::api_name.eq("A2"))
        .select(game_achievements::global_percent)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(a2, None, "a percentage Steam dropped is not last week's");
}

#[actix_web::test]
async fn duplicates_and_nan_in_steams_answers_are_merged_or_refused_per_field() {
    let (app, fake) = app_with_steam(portal_state()).await;
    mutate(&fake, |s| {
        s.game_faults.insert(400, GameFault::Duplicated);
        let again = owned_mut(s, STEAM_ID, 620).clone();
        player_mut(s, STEAM_ID).games.push(again);
        s.games.get_mut(&400).unwrap().achievements[0].global_percent = f64::NAN;
    });
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    assert_eq!(stored(&app, alice(&app)), truth(&fake.state.lock().unwrap(), STEAM_ID));
}

#[actix_web::test]
async fn a_cut_off_owned_games_answer_is_retried_and_a_short_one_removes_nothing() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let user = alice(&app);
    let before = stored(&app, user);
    // The owned list comes back one game short of the count it gives:
    // what it lists is stored, but no game is read as removed.
    mutate(&fake, |s| s.owned_games_short_by = 1);
    assert_eq!(press(&app, "sync").await, "done");
    assert_eq!(stored(&app, user), before, "no game marked removed from a short list");
    // An answer cut off half-way is not read at all: the sync is retried.
    mutate(&fake, |s| {
        s.owned_games_short_by = 0;
        s.owned_games_truncated = true;
    });
    clear_throttles(&app);
    app.submit("/settings/steam", "/settings/steam/sync", &[]).await;
    let (status, error): (String, Option<String>) = app
        .wait_for("the sync to be queued again", |conn| {
            jobs::table
                .filter(jobs::status.eq("queued"))
                .filter(jobs::started_at.is_not_null())
                .select((jobs::status, jobs::last_error))
                .first(conn)
                .optional()
                .unwrap()
        })
        .await;
    assert_eq!(status, "queued", "retried, not failed for good");
    assert!(error.unwrap_or_default().contains("cut off"));
    assert_eq!(stored(&app, user), before);
}

#[actix_web::test]
async fn an_empty_schema_for_a_game_with_achievements_is_not_believed() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let user = alice(&app);
    let before = stored(&app, user);
    mutate(&fake, |s| s.games.get_mut(&620).unwrap().achievements.clear());
    assert_eq!(press(&app, "resync-all").await, "done");
    assert_eq!(stored(&app, user).totals, before.totals, "Portal 2 keeps its achievements");
    let error: Option<String> =
        games::table.find(620).select(games::stats_error).first(&mut app.pool.get().unwrap()).unwrap();
    assert!(error.unwrap_or_default().contains("no achievements listed"));
}

#[actix_web::test]
async fn an_unlock_of_an_achievement_added_since_the_last_schema_arrives_in_the_same_sync() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let user = alice(&app);
    // The schema was fetched more than an hour ago; an update adds an
    // achievement, and Alice unlocks it.
    diesel::update(games::table.find(400))
        .set(games::schema_fetched_at.eq(Utc::now() - chrono::Duration::hours(2)))
        .execute(&mut app.pool.get().unwrap())
        .unwrap();
    mutate(&fake, |s| {
        s.games.get_mut(&400).unwrap().achievements.push(achievement("NEW", 10.0));
        let p = owned_mut(s, STEAM_ID, 400);
        p.unlocked.push(("NEW".into(), 1_700_000_000));
        p.playtime_minutes += 30;
    });
    assert_eq!(press(&app, "sync").await, "done");
    assert_eq!(stored(&app, user), truth(&fake.state.lock().unwrap(), STEAM_ID));
}

#[actix_web::test]
async fn a_run_whose_job_was_taken_over_can_write_nothing_more() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    let mut conn = app.pool.get().unwrap();
    use questline::jobs::model as jobs_model;
    jobs_model::enqueue_payload(&mut conn, "test_kind", &serde_json::json!({})).unwrap();
    let first = jobs_model::claim(&mut conn, "test_kind").unwrap().unwrap();
    assert!(jobs_model::heartbeat(&mut conn, first.lease()).unwrap());
    // Its lease runs out (the worker hung), and another worker takes it.
    diesel::update(jobs::table.find(first.id))
        .set(jobs::locked_until.eq(Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut conn)
        .unwrap();
    let second = jobs_model::claim(&mut conn, "test_kind").unwrap().unwrap();
    assert_eq!(second.id, first.id);
    assert_ne!(second.lease(), first.lease());
    let wrote = jobs_model::fenced(&mut conn, first.lease(), |_| Ok(())).unwrap();
    assert_eq!(wrote, None, "the first run's writes are refused");
    assert!(!jobs_model::heartbeat(&mut conn, first.lease()).unwrap());
    assert!(!jobs_model::progress(&mut conn, first.lease(), 1, 2).unwrap());
    assert!(!jobs_model::finish(&mut conn, first.lease(), true).unwrap());
    assert_eq!(jobs_model::fenced(&mut conn, second.lease(), |_| Ok(7)).unwrap(), Some(7));
    assert!(jobs_model::finish(&mut conn, second.lease(), true).unwrap());
}

// ---------------------------------------------------------------------------
// The model-based test.

/// One thing Steam (or the user) does.
#[derive(Debug, Clone)]
enum Op {
    /// `player` plays `game` for `minutes` more (and owns it, if not yet).
    Play {
        player: usize,
        game: usize,
        minutes: i32,
    },
    /// The game leaves `player`'s owned list.
    Disown {
        player: usize,
        game: usize,
    },
    /// Steam lists the game twice.
    DuplicateOwned {
        player: usize,
        game: usize,
    },
    /// `player` unlocks achievement `ach` of `game` at `time` (0: no time).
    Unlock {
        player: usize,
        game: usize,
        ach: usize,
        time: i64,
    },
    /// The game's schema gains an achievement, or loses one.
    AddAchievement {
        game: usize,
        percent: f64,
    },
    RemoveAchievement {
        game: usize,
        ach: usize,
    },
    /// A global percentage moves, to anything (NaN and negatives included),
    /// or leaves Steam's list.
    SetPercent {
        game: usize,
        ach: usize,
        percent: f64,
    },
    DropPercent {
        game: usize,
        ach: usize,
    },
    /// One game's achievements answer badly for a while.
    Fault {
        game: usize,
        fault: usize,
    },
    /// Steam answers 429 once (with a `Retry-After` of a second, or none).
    RateLimit {
        with_retry_after: bool,
    },
    /// The user presses "Sync now" or "Resync everything", or relinks to
    /// another account.
    SyncNow,
    ResyncAll,
    Relink {
        player: usize,
    },
}

const GAMES: [i64; 4] = [400, 620, 570, 730];
const PLAYERS: [u64; 2] = [STEAM_ID, OTHER];

fn op() -> impl Strategy<Value = Op> {
    let player = 0..PLAYERS.len();
    let game = 0..GAMES.len();
    prop_oneof![
        (player.clone(), game.clone(), 0..500i32).prop_map(|(player, game, minutes)| Op::Play {
            player,
            game,
            minutes
        }),
        (player.clone(), game.clone()).prop_map(|(player, game)| Op::Disown { player, game }),
        (player.clone(), game.clone()).prop_map(|(player, game)| Op::DuplicateOwned { player, game }),
        (player.clone(), game.clone(), 0..6usize, prop_oneof![Just(0i64), 1_500_000_000..1_700_000_000i64])
            .prop_map(|(player, game, ach, time)| Op::Unlock { player, game, ach, time }),
        (game.clone(), 0.0..100.0f64).prop_map(|(game, percent)| Op::AddAchievement { game, percent }),
        (game.clone(), 0..6usize).prop_map(|(game, ach)| Op::RemoveAchievement { game, ach }),
        (game.clone(), 0..6usize, prop_oneof![0.0..100.0f64, Just(f64::NAN), Just(-3.0), Just(250.0)])
            .prop_map(|(game, ach, percent)| Op::SetPercent { game, ach, percent }),
        (game.clone(), 0..6usize).prop_map(|(game, ach)| Op::DropPercent { game, ach }),
        (game.clone(), 0..4usize).prop_map(|(game, fault)| Op::Fault { game, fault }),
        any::<bool>().prop_map(|with_retry_after| Op::RateLimit { with_retry_after }),
        Just(Op::SyncNow),
        Just(Op::ResyncAll),
        player.prop_map(|player| Op::Relink { player }),
    ]
}

/// The fake Steam every case starts from: four games (one without
/// achievements), two players owning some of them.
/// Bob's Steam account: the same games as [`OTHER`], on a SteamID of its
/// own (one Questline account per SteamID).
const BOB_ID: u64 = 76561197960287932;

fn start_state() -> FakeState {
    let mut s = two_players();
    let bob = s.players[&OTHER].clone();
    s.players.insert(BOB_ID, bob);
    s.games.insert(730, FakeGame { name: "Counter-Strike".into(), achievements: vec![achievement("C1", 60.0)] });
    s
}

/// Applies `op` to the fake (or presses the button); returns the player
/// now linked.
async fn apply(app: &TestApp, fake: &FakeSteam, op: &Op, linked: u64) -> u64 {
    match op.clone() {
        Op::Play { player, game, minutes } => mutate(fake, |s| {
            let appid = GAMES[game];
            let p = player_mut(s, PLAYERS[player]);
            match p.games.iter_mut().find(|g| g.appid == appid) {
                Some(g) => g.playtime_minutes += minutes,
                None => p.games.push(FakeOwned { appid, playtime_minutes: minutes, unlocked: Vec::new() }),
            }
        }),
        Op::Disown { player, game } => {
            mutate(fake, |s| player_mut(s, PLAYERS[player]).games.retain(|g| g.appid != GAMES[game]))
        }
        Op::DuplicateOwned { player, game } => mutate(fake, |s| {
            let p = player_mut(s, PLAYERS[player]);
            if let Some(g) = p.games.iter().find(|g| g.appid == GAMES[game]).cloned() {
                p.games.push(g);
            }
        }),
        Op::Unlock { player, game, ach, time } => mutate(fake, |s| {
            let names: Vec<String> = s.games[&GAMES[game]].achievements.iter().map(|a| a.api_name.clone()).collect();
            if let (Some(name), Some(g)) = (
                names.get(ach % names.len().max(1)).cloned(),
                player_mut(s, PLAYERS[player]).games.iter_mut().find(|g| g.appid == GAMES[game]),
            ) {
                if !g.unlocked.iter().any(|(n, _)| *n == name) {
                    g.unlocked.push((name, time));
                }
            }
        }),
        Op::AddAchievement { game, percent } => mutate(fake, |s| {
            let list = &mut s.games.get_mut(&GAMES[game]).unwrap().achievements;
            let name = format!("X{}", list.len() + 10 * GAMES[game] as usize);
            if !list.iter().any(|a| a.api_name == name) {
                list.push(achievement(&name, percent));
            }
        }),
        // The last one is never removed: an empty schema for a game with
        // achievements is not believed (see the example above).
        Op::RemoveAchievement { game, ach } => mutate(fake, |s| {
            let list = &mut s.games.get_mut(&GAMES[game]).unwrap().achievements;
            if list.len() > 1 {
                let i = ach % list.len();
                list.remove(i);
            }
        }),
        Op::SetPercent { game, ach, percent } => mutate(fake, |s| {
            let list = &mut s.games.get_mut(&GAMES[game]).unwrap().achievements;
            if !list.is_empty() {
                let i = ach % list.len();
                list[i].global_percent = percent;
            }
        }),
        Op::DropPercent { game, ach } => mutate(fake, |s| {
            let list = &s.games[&GAMES[game]].achievements;
            if !list.is_empty() {
                let name = list[ach % list.len()].api_name.clone();
                s.unlisted_percentages.insert(name);
            }
        }),
        Op::Fault { game, fault } => mutate(fake, |s| {
            let f = [GameFault::Status(500), GameFault::Truncated, GameFault::Private, GameFault::Duplicated][fault];
            s.game_faults.insert(GAMES[game], f);
        }),
        Op::RateLimit { with_retry_after } => mutate(fake, |s| {
            s.failures.push_back(429);
            s.retry_after = with_retry_after.then(|| "1".to_owned());
        }),
        Op::SyncNow => {
            press(app, "sync").await;
        }
        Op::ResyncAll => {
            press(app, "resync-all").await;
        }
        Op::Relink { player } => {
            // 429s injected earlier may land on the link's own call to
            // Steam (one each): the form then says so, and the user tries
            // again once the pause Steam asked for is over.
            for _ in 0..10 {
                clear_throttles(app);
                if link(app, &PLAYERS[player].to_string(), KEY).await.status() == 303 {
                    sync_finished(app).await;
                    return PLAYERS[player];
                }
            }
            panic!("the relink was refused ten times");
        }
    }
    linked
}

/// Runs one generated sequence from a fresh link; then, once Steam answers
/// well again, "Resync everything" must leave the database equal to the
/// model of what Steam says.
async fn run_case(app: &TestApp, fake: &FakeSteam, bob: &reqwest::Client, ops: &[Op]) -> Result<(), String> {
    {
        let mut s = fake.state.lock().unwrap();
        *s = start_state();
        s.keys.insert(KEY.into());
    }
    // A fresh instance for each sequence: what an earlier one taught it
    // about the games (achievements Steam has since "lost") is not this
    // one's Steam.
    {
        let mut conn = app.pool.get().unwrap();
        diesel::sql_query(
            "TRUNCATE user_achievements, removed_unlocks, library_entries, removed_games, game_achievements, games CASCADE",
        )
        .execute(&mut conn)
        .unwrap();
    }
    clear_throttles(app);
    // Bob owns some of the same games on another account, and syncs only
    // now: Alice's syncs must keep his numbers right when schemas change.
    let res = crate::steam::link_with(app, bob, &BOB_ID.to_string(), KEY).await;
    assert_eq!(res.status(), 303);
    app.wait_for("Bob's first sync", |conn| {
        let bob: i64 = users::table.filter(users::username.eq("bob")).select(users::id).first(conn).unwrap();
        let s: Option<String> = jobs::table
            .filter(jobs::user_id.eq(bob))
            .order(jobs::id.desc())
            .select(jobs::status)
            .first(conn)
            .optional()
            .unwrap();
        s.filter(|s| s == "done" || s == "failed")
    })
    .await;
    link(app, &STEAM_ID.to_string(), KEY).await;
    sync_finished(app).await;
    let mut linked = STEAM_ID;
    for op in ops {
        linked = apply(app, fake, op, linked).await;
        totals_consistent(app).map_err(|e| format!("after {op:?}: {e}"))?;
    }
    mutate(fake, |s| {
        s.game_faults.clear();
        s.failures.clear();
        s.retry_after = None;
    });
    let status = press(app, "resync-all").await;
    if status != "done" {
        return Err(format!("the final sync ended {status}"));
    }
    totals_consistent(app)?;
    let want = truth(&fake.state.lock().unwrap(), linked);
    let got = stored(app, alice(app));
    if want == got {
        Ok(())
    } else {
        Err(format!("the database differs from Steam:\nwant {want:?}\ngot  {got:?}"))
    }
}

/// How many sequences run: 120 in the suite (about 35 s), as many as
/// `QUESTLINE_MODEL_CASES` says otherwise (thousands, in
/// `./scripts/bench model`).
fn cases() -> u32 {
    std::env::var("QUESTLINE_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(120)
}

#[actix_web::test]
async fn after_any_sequence_of_steam_answers_the_database_equals_steam() {
    let (app, fake) = app_with_steam(start_state()).await;
    let bob = crate::helpers::new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", crate::steam::PASSWORD).await;
    app.login_with(&bob, "bob", crate::steam::PASSWORD).await;
    let strategy = proptest::collection::vec(op(), 1..8);
    // The same sequences every run, unless QUESTLINE_MODEL_RANDOM asks for
    // new ones (the benchmark's long runs).
    let mut runner = if std::env::var_os("QUESTLINE_MODEL_RANDOM").is_some() {
        TestRunner::default()
    } else {
        TestRunner::deterministic()
    };
    let started = std::time::Instant::now();
    for case in 0..cases() {
        let mut tree = strategy.new_tree(&mut runner).unwrap();
        let Err(first) = run_case(&app, &fake, &bob, &tree.current()).await else { continue };
        // Shrink: keep the smallest sequence that still fails.
        let (mut smallest, mut why) = (tree.current(), first);
        while tree.simplify() {
            if let Err(e) = run_case(&app, &fake, &bob, &tree.current()).await {
                (smallest, why) = (tree.current(), e);
            } else if !tree.complicate() {
                break;
            }
        }
        panic!("case {case} failed; smallest sequence {smallest:#?}\n{why}");
    }
    eprintln!("model-based sync test: {} sequences in {:.1} s", cases(), started.elapsed().as_secs_f64());
}
