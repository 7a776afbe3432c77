//! The demo: a realistic library on the fake Steam server, and an account
//! linked to it, so a newcomer sees every page without a Steam key
//! (`./scripts/dev --demo`).

use diesel::prelude::*;

use super::fake::{FakeAchievement, FakeGame, FakeOwned, FakePlayer, FakeState, GameFault};
use crate::crypto::Cipher;
use crate::infra::password;
use crate::jobs::model as jobs;
use crate::jobs::STEAM_SYNC;
use crate::models::user::{NewUser, Role, User};
use crate::steam::model::SteamAccount;

/// The demo player's SteamID64.
pub const DEMO_STEAM_ID: u64 = 76_561_198_000_000_042;
/// The Web API key the fake server accepts for the demo.
pub const DEMO_KEY: &str = "DE40DE40DE40DE40DE40DE40DE40DE40";
/// The demo account's name and password.
pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "questline demo password";

const WORDS: [&str; 24] = [
    "Iron",
    "Hollow",
    "Crimson",
    "Starfall",
    "Quiet",
    "Neon",
    "Ember",
    "Frost",
    "Lost",
    "Clockwork",
    "Solar",
    "Abyssal",
    "Wild",
    "Silent",
    "Broken",
    "Golden",
    "Shadow",
    "Paper",
    "Echo",
    "Last",
    "Drift",
    "Thunder",
    "Velvet",
    "Glass",
];
const NOUNS: [&str; 20] = [
    "Frontier",
    "Kingdom",
    "Protocol",
    "Harbor",
    "Legacy",
    "Garden",
    "Odyssey",
    "Station",
    "Citadel",
    "Tides",
    "Engine",
    "Horizon",
    "Dungeon",
    "Circuit",
    "Outpost",
    "Archive",
    "Colony",
    "Voyage",
    "Arena",
    "Labyrinth",
];

/// A small deterministic generator, so every demo looks the same.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// 320 games over fourteen years: most started, some perfect, rarities
/// from 0.1 % to 90 %, one game whose achievements are private, and a few
/// without achievements at all.
pub fn demo_state() -> FakeState {
    let mut s = FakeState::default();
    s.keys.insert(DEMO_KEY.into());
    let mut rng = Lcg(42);
    let mut owned = Vec::new();
    // 2012-01-01 to 2026-11-01.
    let (start, end) = (1_325_376_000_i64, 1_793_491_200_i64);
    for i in 0..320_i64 {
        let appid = 200_000 + i * 10;
        // 24 x 20 names: each of the 320 games has its own.
        let name = format!("{} {}", WORDS[i as usize % WORDS.len()], NOUNS[(i as usize / WORDS.len()) % NOUNS.len()]);
        let count = if i % 37 == 5 { 0 } else { 5 + rng.below(60) as usize };
        let achievements: Vec<FakeAchievement> = (0..count)
            .map(|j| {
                // Early achievements are common, late ones rare.
                let base = 90.0 * (1.0 - j as f64 / count as f64).powi(2) + 0.1;
                FakeAchievement {
                    api_name: format!("ACH_{appid}_{j}"),
                    display_name: format!(
                        "{} {}",
                        WORDS[(j * 5 + i as usize) % WORDS.len()],
                        NOUNS[(j * 3) % NOUNS.len()]
                    ),
                    description: Some(format!("Milestone {} of {name}.", j + 1)),
                    hidden: j % 9 == 8,
                    global_percent: (base * (0.6 + rng.below(80) as f64 / 100.0)).clamp(0.1, 95.0),
                }
            })
            .collect();
        let played = rng.below(10) < 8;
        let share = match rng.below(10) {
            0 => 1.0,
            1..=5 => rng.below(100) as f64 / 100.0,
            _ => 0.0,
        };
        let unlocked_n = if played { (count as f64 * share).round() as usize } else { 0 };
        let first = start + rng.below((end - start) as u64) as i64;
        let unlocked: Vec<(String, i64)> = achievements
            .iter()
            .take(unlocked_n)
            .enumerate()
            .map(|(k, a)| (a.api_name.clone(), (first + k as i64 * (3_600 + rng.below(400_000) as i64)).min(end)))
            .collect();
        let minutes = if played { 30 + rng.below(9_000) as i32 } else { 0 };
        s.games.insert(appid, FakeGame { name, achievements });
        owned.push(FakeOwned { appid, playtime_minutes: minutes, unlocked });
    }
    // One game's achievements are private on Steam.
    s.game_faults.insert(200_000 + 13 * 10, GameFault::Private);
    s.players.insert(DEMO_STEAM_ID, FakePlayer { persona: "Questline Demo".into(), public: true, games: owned });
    s
}

/// The SteamID64 of extra demo player `n` (1-based).
pub fn player_steam_id(n: u32) -> u64 {
    DEMO_STEAM_ID + u64::from(n)
}

/// The account name of extra demo player `n`.
pub fn player_name(n: u32) -> String {
    format!("player{n}")
}

/// [`demo_state`] with `players` more players, for load and fault tests
/// with many accounts: each owns 25 of the demo's games, with some of
/// their achievements unlocked, and is reached with the demo key.
pub fn demo_state_with_players(players: u32) -> FakeState {
    let mut s = demo_state();
    let mut appids: Vec<i64> = s.games.keys().copied().collect();
    appids.sort_unstable();
    let mut rng = Lcg(7);
    for n in 1..=players {
        let start = (n as usize * 7) % appids.len();
        let games = (0..25)
            .map(|k| {
                let appid = appids[(start + k * 3) % appids.len()];
                let achievements = &s.games[&appid].achievements;
                let unlocked_n = rng.below(achievements.len() as u64 + 1) as usize;
                let unlocked = achievements
                    .iter()
                    .take(unlocked_n)
                    .enumerate()
                    .map(|(j, a)| (a.api_name.clone(), 1_700_000_000 + n as i64 * 86_400 + j as i64 * 3_600))
                    .collect();
                FakeOwned { appid, playtime_minutes: 60 + rng.below(6_000) as i32, unlocked }
            })
            .collect();
        s.players.insert(player_steam_id(n), FakePlayer { persona: format!("Demo Player {n}"), public: true, games });
    }
    s
}

/// Creates the accounts of extra demo players 1 to `players` (those not
/// there yet), each verified and linked (as proven) to its fake player,
/// with the demo password, without a sync queued; they sync with the demo
/// key as the instance's. Returns how many were made.
pub fn seed_players(conn: &mut PgConnection, cipher: &Cipher, players: u32) -> anyhow::Result<u32> {
    super::instance_key::set_if_absent(conn, cipher, DEMO_KEY)?;
    let hash = password::hash_now(DEMO_PASSWORD)?;
    let mut made = 0;
    for n in 1..=players {
        let name = player_name(n);
        if User::find_by_login(conn, &name)?.is_some() {
            continue;
        }
        let email = format!("{name}@questline.invalid");
        conn.transaction(|conn| -> anyhow::Result<()> {
            let user = User::insert(
                conn,
                &NewUser { username: &name, email: Some(&email), password_hash: Some(&hash), role: Role::User },
            )?;
            User::mark_email_verified(conn, user.id)?;
            SteamAccount::link_proven(conn, user.id, player_steam_id(n), Some(&format!("Demo Player {n}")), None)?;
            Ok(())
        })?;
        made += 1;
    }
    Ok(made)
}

/// Creates the demo account (once) linked to the demo player, and queues
/// its first sync. True when the account was created now.
pub fn seed(conn: &mut PgConnection, cipher: &Cipher) -> anyhow::Result<bool> {
    // The demo's accounts sync with the fake Steam's key, lent as the
    // instance's, as a real instance lends its own.
    super::instance_key::set_if_absent(conn, cipher, DEMO_KEY)?;
    if User::find_by_login(conn, DEMO_USER)?.is_some() {
        return Ok(false);
    }
    let hash = password::hash_now(DEMO_PASSWORD)?;
    conn.transaction(|conn| -> anyhow::Result<()> {
        let user = User::insert(
            conn,
            &NewUser {
                username: DEMO_USER,
                email: Some("demo@questline.invalid"),
                password_hash: Some(&hash),
                role: Role::User,
            },
        )?;
        User::mark_email_verified(conn, user.id)?;
        SteamAccount::link_proven(conn, user.id, DEMO_STEAM_ID, Some("Questline Demo"), None)?;
        jobs::enqueue(conn, STEAM_SYNC, user.id)?;
        Ok(())
    })?;
    Ok(true)
}
