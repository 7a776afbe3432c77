//! Every sync converges on what Steam says: one game's failure is recorded
//! on that game and never costs the others their unlocks, unlocks without a
//! playtime change arrive by the weekly full check, and a sync killed
//! mid-way is finished exactly by the next one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use questline::schema::{jobs, library_entries};
use questline::steam::fake::{generated_player, FakeOwned, FakeState, FakeSteam, GameFault};

use crate::helpers::{html, location, spawn_app_with, text_of, TestApp, WorkerProcess};
use crate::steam::{app_with_steam, link, portal_state, sync_finished, KEY, PASSWORD, STEAM_ID};

/// What Steam says, per game: playtime and unlocks (api name, unix time),
/// counting only the achievements its schema lists.
fn steam_truth(fake: &FakeSteam) -> BTreeMap<i64, (i32, BTreeSet<(String, i64)>)> {
    let s = fake.state.lock().unwrap();
    s.players[&STEAM_ID]
        .games
        .iter()
        .map(|g: &FakeOwned| {
            let schema = s.games.get(&g.appid).map(|x| x.achievements.clone()).unwrap_or_default();
            let unlocked =
                g.unlocked.iter().filter(|(n, _)| schema.iter().any(|a| a.api_name == *n)).cloned().collect();
            (g.appid, (g.playtime_minutes, unlocked))
        })
        .collect()
}

/// What Questline stores for Alice, in the same shape (each entry's
/// cached count and last unlock checked against its unlock rows).
fn stored(app: &TestApp) -> BTreeMap<i64, (i32, BTreeSet<(String, i64)>)> {
    crate::steam_exactness::stored(app, crate::steam_exactness::alice(app)).games
}

/// Runs "Sync now" (throttle cleared first) and waits for it to end.
async fn sync_again(app: &TestApp) -> String {
    clear_sync_throttle(app);
    let res = app.submit("/settings/steam", "/settings/steam/sync", &[]).await;
    assert_eq!(res.status(), 303);
    sync_finished(app).await
}

fn clear_sync_throttle(app: &TestApp) {
    crate::steam_exactness::clear_throttles(app);
}

fn mutate(fake: &FakeSteam, f: impl FnOnce(&mut FakeState)) {
    f(&mut fake.state.lock().unwrap());
}

fn owned(s: &mut FakeState, appid: i64) -> &mut FakeOwned {
    s.players.get_mut(&STEAM_ID).unwrap().games.iter_mut().find(|g| g.appid == appid).unwrap()
}

#[actix_web::test]
async fn one_game_answering_badly_costs_the_others_nothing_and_is_retried_until_it_converges() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");

    // Both games gain unlocks and playtime; Portal 2's answer is truncated.
    mutate(&fake, |s| {
        let p = owned(s, 400);
        p.playtime_minutes += 60;
        p.unlocked.push(("SECRET".into(), 1_700_000_000));
        let p2 = owned(s, 620);
        p2.playtime_minutes += 60;
        p2.unlocked.retain(|(n, _)| n != "B2");
        s.game_faults.insert(620, GameFault::Truncated);
    });
    assert_eq!(sync_again(&app).await, "done", "one game's failure does not fail the sync");
    let truth = steam_truth(&fake);
    let now = stored(&app);
    assert_eq!(now[&400], truth[&400], "Portal converged");
    assert_ne!(now[&620].1, truth[&620].1, "Portal 2 kept its old unlocks");

    // The page says what broke: the game and the endpoint.
    let page = html(app.get("/settings/steam").await).await;
    let note = text_of(&page, "#sync-partial").expect("a partial-sync note");
    assert!(note.contains("1 game(s) not synced"), "{note}");
    let list = text_of(&page, "#unsynced-games").unwrap();
    assert!(list.contains("Portal 2") && list.contains("GetPlayerAchievements"), "{list}");

    // The failure waits out its backoff; a follow-up sync is queued for then.
    let mut conn = app.pool.get().unwrap();
    let (failures, retry_after): (i32, Option<DateTime<Utc>>) = library_entries::table
        .filter(library_entries::appid.eq(620))
        .select((library_entries::sync_failures, library_entries::retry_after))
        .first(&mut conn)
        .unwrap();
    assert_eq!(failures, 1);
    let retry_after = retry_after.expect("a retry time");
    assert!(retry_after > Utc::now() + chrono::Duration::minutes(10));
    let follow_up: DateTime<Utc> = jobs::table
        .filter(jobs::kind.eq("steam_sync"))
        .filter(jobs::status.eq("queued"))
        .select(jobs::run_after)
        .first(&mut conn)
        .unwrap();
    assert_eq!(follow_up.timestamp(), retry_after.timestamp());

    // Steam answers again; once the backoff has passed, the follow-up runs
    // and Portal 2 converges too.
    mutate(&fake, |s| {
        s.game_faults.clear();
    });
    diesel::update(library_entries::table.filter(library_entries::appid.eq(620)))
        .set(library_entries::retry_after.eq(Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut conn)
        .unwrap();
    diesel::update(jobs::table.filter(jobs::kind.eq("steam_sync")).filter(jobs::status.eq("queued")))
        .set(jobs::run_after.eq(Utc::now()))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(sync_finished(&app).await, "done");
    assert_eq!(stored(&app), steam_truth(&fake), "the whole library converged");
    let page = html(app.get("/settings/steam").await).await;
    assert!(text_of(&page, "#unsynced-games").is_none());
    assert!(text_of(&page, "#sync-partial").is_none() && text_of(&page, "#sync-error").is_none());
}

#[actix_web::test]
async fn a_game_whose_achievements_are_private_is_recorded_and_the_rest_sync() {
    let (app, fake) = app_with_steam(portal_state()).await;
    mutate(&fake, |s| {
        s.game_faults.insert(400, GameFault::Private);
    });
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let truth = steam_truth(&fake);
    let now = stored(&app);
    assert_eq!(now[&620], truth[&620]);
    assert!(now[&400].1.is_empty());
    let list = text_of(&html(app.get("/settings/steam").await).await, "#unsynced-games").unwrap();
    assert!(list.contains("Portal") && list.contains("private"), "{list}");
}

#[actix_web::test]
async fn an_unlock_without_a_playtime_change_arrives_by_the_weekly_full_check() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    // Played offline: an unlock, no playtime change.
    mutate(&fake, |s| owned(s, 400).unlocked.push(("SECRET".into(), 1_700_000_000)));
    let calls = fake.calls("GetPlayerAchievements");
    assert_eq!(sync_again(&app).await, "done");
    assert_eq!(fake.calls("GetPlayerAchievements"), calls, "nothing due yet");
    assert_ne!(stored(&app)[&400], steam_truth(&fake)[&400]);

    // A week on, the full check fetches every game once more.
    let mut conn = app.pool.get().unwrap();
    let week_ago =
        Utc::now() - chrono::Duration::days(questline::steam::sync::FULL_CHECK_DAYS) - chrono::Duration::hours(1);
    diesel::update(library_entries::table)
        .set(library_entries::achievements_synced_at.eq(week_ago))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(sync_again(&app).await, "done");
    assert_eq!(stored(&app), steam_truth(&fake));
}

#[actix_web::test]
async fn resync_everything_fetches_every_game_again_at_once() {
    let (app, fake) = app_with_steam(portal_state()).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    mutate(&fake, |s| owned(s, 400).unlocked.push(("SECRET".into(), 1_700_000_000)));
    let calls = fake.calls("GetPlayerAchievements");
    clear_sync_throttle(&app);
    let res = app.submit("/settings/steam", "/settings/steam/resync-all", &[]).await;
    assert_eq!(location(&res), "/settings/steam");
    assert_eq!(sync_finished(&app).await, "done");
    assert_eq!(fake.calls("GetPlayerAchievements"), calls + 2, "both games with stats, not Dota 2");
    assert_eq!(stored(&app), steam_truth(&fake));
}

#[actix_web::test]
async fn the_last_unlock_ignores_achievements_the_schema_does_not_list() {
    let mut state = portal_state();
    // Steam's player answer names an achievement its schema does not list,
    // unlocked "in 2027".
    state.players.get_mut(&STEAM_ID).unwrap().games[0].unlocked.push(("GHOST".into(), 1_800_000_000));
    let (app, fake) = app_with_steam(state).await;
    link(&app, &STEAM_ID.to_string(), KEY).await;
    assert_eq!(sync_finished(&app).await, "done");
    let now = stored(&app);
    assert_eq!(now[&400], steam_truth(&fake)[&400]);
    assert_eq!(now[&400].1.iter().map(|(_, t)| *t).max(), Some(1_600_100_000));
}

#[actix_web::test]
async fn a_proven_steam_id_without_a_profile_says_no_profile_matches() {
    let (app, _fake) = app_with_steam(portal_state()).await;
    let res = link(&app, "76561197960287931", KEY).await;
    assert_eq!(location(&res), "/settings/steam");
    assert_eq!(sync_finished(&app).await, "failed");
    let error = text_of(&html(app.get("/settings/steam").await).await, "#sync-error").unwrap();
    assert!(error.contains("No Steam profile matches"), "{error}");
}

/// Alice's 40-game sync under way on a separate `questline worker` process
/// (the web app only queues), with some games stored and some not: Steam
/// answers slowly. `grace` is the worker's `SHUTDOWN_GRACE_SECONDS`.
async fn sync_under_way_on_a_worker_process(grace: &str) -> (TestApp, FakeSteam, WorkerProcess, i64) {
    sync_under_way_on_a_process("worker", grace).await
}

/// The same on a separate `questline <command>` process.
async fn sync_under_way_on_a_process(command: &str, grace: &str) -> (TestApp, FakeSteam, WorkerProcess, i64) {
    let mut state = portal_state();
    state.players.clear();
    generated_player(&mut state, STEAM_ID, 40, 6);
    state.latency = std::time::Duration::from_millis(40);
    let fake = FakeSteam::start(state).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_BASE_URL".into(), base);
        env.insert("RUN_WORKER".into(), "false".into());
        env.insert("SHUTDOWN_GRACE_SECONDS".into(), grace.into());
    })
    .await;
    // The worker also delivers the confirmation mail.
    let worker = app.spawn_process(command);
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    assert_eq!(location(&link(&app, &STEAM_ID.to_string(), KEY).await), "/settings/steam");
    let synced_so_far = app
        .wait_for("some games stored", |conn| {
            let n: i64 = library_entries::table
                .filter(library_entries::achievements_synced_at.is_not_null())
                .count()
                .get_result(conn)
                .unwrap();
            (n >= 5).then_some(n)
        })
        .await;
    (app, fake, worker, synced_so_far)
}

/// The sync job's status, attempts and lease.
fn sync_job(app: &TestApp) -> (String, i32, Option<DateTime<Utc>>) {
    jobs::table
        .filter(jobs::kind.eq("steam_sync"))
        .select((jobs::status, jobs::attempts, jobs::locked_until))
        .first(&mut app.pool.get().unwrap())
        .unwrap()
}

#[actix_web::test]
async fn a_worker_stopped_by_sigterm_first_finishes_the_sync_it_is_running() {
    let (app, fake, mut worker, _) = sync_under_way_on_a_worker_process("60").await;
    let exit = worker.terminate().await;
    assert!(exit.success(), "the worker stopped cleanly: {exit}");
    // Recorded before the process ended: nothing is left for another worker.
    assert_eq!(sync_job(&app).0, "done");
    assert_eq!(stored(&app), steam_truth(&fake));
}

#[actix_web::test]
async fn a_worker_stopped_by_sigterm_past_its_grace_hands_the_sync_back_for_the_next_worker_at_once() {
    let (app, fake, mut first, _) = sync_under_way_on_a_worker_process("0").await;
    let exit = first.terminate().await;
    assert!(exit.success(), "the worker stopped cleanly: {exit}");
    let (status, attempts, lease) = sync_job(&app);
    assert_eq!(status, "queued", "handed back, not left running until its lease runs out");
    assert_eq!(attempts, 0, "the stopped attempt does not count against the job");
    assert_eq!(lease, None);
    let stored_games: i64 = library_entries::table
        .filter(library_entries::achievements_synced_at.is_not_null())
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert!(stored_games < 40, "stopped mid-sync: {stored_games} of 40 games stored");
    // No lease to wait out (the killed worker's test has to expire it).
    let _second = app.spawn_worker_process();
    assert_eq!(sync_finished(&app).await, "done");
    assert_eq!(stored(&app), steam_truth(&fake), "the database is exactly what Steam says");
}

#[actix_web::test]
async fn a_server_stopped_by_sigterm_past_its_grace_hands_back_the_sync_its_worker_runs() {
    // `serve` with its own job loops (RUN_WORKER), as a single-machine
    // install runs: the web server and the jobs stop together.
    let (app, fake, mut server, _) = sync_under_way_on_a_process("serve", "0").await;
    let exit = server.terminate().await;
    assert!(exit.success(), "the server stopped cleanly: {exit}");
    let (status, attempts, lease) = sync_job(&app);
    assert_eq!((status.as_str(), attempts, lease), ("queued", 0, None), "handed back for the next worker");
    let _worker = app.spawn_worker_process();
    assert_eq!(sync_finished(&app).await, "done");
    assert_eq!(stored(&app), steam_truth(&fake));
}

#[actix_web::test]
async fn a_sync_killed_mid_way_is_finished_exactly_by_the_next_one() {
    // A separate worker process, so it can be killed for real.
    let (app, fake, mut first, synced_so_far) = sync_under_way_on_a_worker_process("8").await;
    first.kill();
    let mut conn = app.pool.get().unwrap();
    let (status, stored_games): (String, i64) = (
        jobs::table.filter(jobs::kind.eq("steam_sync")).select(jobs::status).first(&mut conn).unwrap(),
        library_entries::table
            .filter(library_entries::achievements_synced_at.is_not_null())
            .count()
            .get_result(&mut conn)
            .unwrap(),
    );
    assert_eq!(status, "running", "killed mid-sync");
    assert!(stored_games >= synced_so_far && stored_games < 40, "{stored_games} of 40 stored at the kill");

    // Steam moves on meanwhile: every game gains an unlock and playtime.
    mutate(&fake, |s| {
        let player = s.players.get_mut(&STEAM_ID).unwrap();
        for g in player.games.iter_mut() {
            g.playtime_minutes += 5;
            let name = format!("ACH_{}_5", g.appid);
            if !g.unlocked.iter().any(|(n, _)| *n == name) {
                g.unlocked.push((name, 1_750_000_000 + g.appid));
            }
        }
    });
    // The dead worker's lease runs out; another worker takes the job over.
    diesel::update(jobs::table.filter(jobs::kind.eq("steam_sync")))
        .set(jobs::locked_until.eq(Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut conn)
        .unwrap();
    let _second = app.spawn_worker_process();
    assert_eq!(sync_finished(&app).await, "done");
    assert_eq!(stored(&app), steam_truth(&fake), "the database is exactly what Steam says");
}
