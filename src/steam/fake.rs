//! A stand-in for the Steam Web API, for tests and offline development. It
//! answers with Steam's real JSON shapes and error answers (an HTML 403 for a
//! bad key, `{"response":{}}` for a private library, 400/403 JSON from
//! GetPlayerAchievements, `{"game":{}}` for a game without stats, 429 when
//! told to), with configurable latency.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;

/// One achievement of a fake game.
#[derive(Debug, Clone)]
pub struct FakeAchievement {
    pub api_name: String,
    pub display_name: String,
    pub description: Option<String>,
    pub hidden: bool,
    pub global_percent: f64,
}

/// A fake game; no achievements means "no stats".
#[derive(Debug, Clone)]
pub struct FakeGame {
    pub name: String,
    pub achievements: Vec<FakeAchievement>,
}

/// A game in a fake player's library, with their unlocks (api name, unix time).
#[derive(Debug, Clone)]
pub struct FakeOwned {
    pub appid: i64,
    pub playtime_minutes: i32,
    pub unlocked: Vec<(String, i64)>,
}

/// A fake player.
#[derive(Debug, Clone)]
pub struct FakePlayer {
    pub persona: String,
    pub public: bool,
    pub games: Vec<FakeOwned>,
}

/// A broken answer for one game's GetPlayerAchievements, as Steam sends now
/// and then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameFault {
    /// The JSON stops half-way (a dropped connection behind a proxy).
    Truncated,
    /// `{"playerstats":{"error":"Profile is not public","success":false}}`
    /// with 403, for this game only.
    Private,
    /// An HTML error page with this status.
    Status(u16),
    /// Every achievement listed twice (Steam has sent that).
    Duplicated,
}

/// Everything the fake server knows; tests change it while it runs.
#[derive(Debug, Default)]
pub struct FakeState {
    pub keys: HashSet<String>,
    pub players: HashMap<u64, FakePlayer>,
    pub games: HashMap<i64, FakeGame>,
    /// Added to every answer.
    pub latency: Duration,
    /// Status codes (429, 500, 503) to answer with, one per request, before
    /// answering normally again.
    pub failures: VecDeque<u16>,
    /// Requests served, by method name (for asserting what a sync fetched).
    pub calls: HashMap<String, u64>,
    /// Games whose player achievements answer badly, until removed.
    pub game_faults: HashMap<i64, GameFault>,
    /// Extra latency for one game's player achievements.
    pub slow_games: HashMap<i64, Duration>,
    /// Sent as `Retry-After` with every injected 429.
    pub retry_after: Option<String>,
    /// Games whose global percentages answer badly, until removed.
    pub global_faults: HashMap<i64, GameFault>,
    /// Achievements (API names) left out of their game's percentages.
    pub unlisted_percentages: std::collections::HashSet<String>,
    /// The owned list comes back this many games short of the count it
    /// gives (a list cut off on its way).
    pub owned_games_short_by: usize,
    /// The owned list's JSON stops half-way.
    pub owned_games_truncated: bool,
    /// `check_authentication` answers `is_valid:false` whatever it is asked.
    pub openid_refuses: bool,
}

/// A running fake server.
pub struct FakeSteam {
    pub state: Arc<Mutex<FakeState>>,
    pub port: u16,
}

impl FakeSteam {
    /// Starts on a free loopback port, on the current actix runtime.
    pub fn start(state: FakeState) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        Self::start_on(state, listener)
    }

    pub fn start_on(state: FakeState, listener: TcpListener) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(state));
        let data = web::Data::from(state.clone());
        let own = web::Data::new(FakeBase(format!("http://127.0.0.1:{port}")));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(own.clone())
                .route("/steamcommunity/public/images/apps/{appid}/{file}", web::get().to(icon))
                .route("/avatars/{file}", web::get().to(avatar))
                .route("/IPlayerService/GetOwnedGames/v1/", web::get().to(owned_games))
                .route("/ISteamUserStats/GetPlayerAchievements/v1/", web::get().to(player_achievements))
                .route("/ISteamUserStats/GetSchemaForGame/v2/", web::get().to(schema))
                .route("/ISteamUserStats/GetGlobalAchievementPercentagesForApp/v2/", web::get().to(global))
                .route("/ISteamUser/GetPlayerSummaries/v2/", web::get().to(summaries))
                .route(OPENID_PATH, web::get().to(openid_page))
                .route(OPENID_PATH, web::post().to(openid_check))
                .route("/openid/approve", web::get().to(openid_approve))
        })
        .workers(1)
        .listen(listener)?
        .run();
        actix_web::rt::spawn(server);
        Ok(FakeSteam { state, port })
    }

    /// The base URL to configure as `STEAM_API_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The address to configure as `STEAM_OPENID_URL`.
    pub fn openid_url(&self) -> String {
        format!("{}{OPENID_PATH}", self.base_url())
    }

    /// A positive assertion for `steam_id`, signed as the fake provider signs
    /// (the fields in `openid.signed`), as `(name, value)` pairs of the
    /// query string the provider sends the browser back with. Tests change
    /// fields and call [`sign`] again to forge answers the provider vouches
    /// for, or leave them unsigned to forge ones it does not.
    pub fn assertion(
        &self,
        steam_id: u64,
        return_to: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<(String, String)> {
        positive_assertion(&self.openid_url(), steam_id, return_to, at)
    }

    /// How many times a method was called.
    pub fn calls(&self, method: &str) -> u64 {
        self.state.lock().unwrap().calls.get(method).copied().unwrap_or(0)
    }
}

/// The fake server's own address, for the icon URLs it hands out.
struct FakeBase(String);

/// Any icon: a 32x32 PNG in a colour of its own name (real icons are
/// JPEGs; browsers go by the bytes).
async fn icon(path: web::Path<(i64, String)>) -> HttpResponse {
    let (appid, file) = path.into_inner();
    let seed = file.bytes().fold(appid as u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    let colour = image::Rgb([(seed >> 16) as u8 | 0x40, (seed >> 8) as u8 | 0x40, seed as u8 | 0x40]);
    let img = image::RgbImage::from_pixel(32, 32, colour);
    let mut png = std::io::Cursor::new(Vec::new());
    if img.write_to(&mut png, image::ImageFormat::Png).is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("cache-control", "max-age=86400"))
        .body(png.into_inner())
}

/// A player's avatar, in the shape of Steam's avatar host's URLs; it stands
/// in for `avatars.steamstatic.com`, which tests cannot reach.
async fn avatar(file: web::Path<String>) -> HttpResponse {
    icon(web::Path::from((0, file.into_inner()))).await
}

#[derive(Deserialize)]
struct Query {
    key: Option<String>,
    steamid: Option<String>,
    steamids: Option<String>,
    appid: Option<i64>,
    gameid: Option<i64>,
}

fn bad_request_html() -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/html")
        .body("<html><head><title>Bad Request</title></head><body><h1>Bad Request</h1></body></html>")
}

fn forbidden_html() -> HttpResponse {
    HttpResponse::Forbidden().content_type("text/html").body(
        "<html><head><title>Forbidden</title></head><body><h1>Forbidden</h1>Access is denied. \
         Retrying will not help. Please verify your <pre>key=</pre> parameter.</body></html>",
    )
}

/// Latency, injected failures and the key check, common to every method.
async fn gate(state: &Mutex<FakeState>, method: &str, q: &Query) -> Result<(), HttpResponse> {
    let (latency, failure, key_ok, retry_after) = {
        let mut s = state.lock().unwrap();
        *s.calls.entry(method.to_owned()).or_default() += 1;
        let key_ok = q.key.as_ref().is_some_and(|k| s.keys.contains(k));
        (s.latency, s.failures.pop_front(), key_ok, s.retry_after.clone())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(code) = failure {
        let status = actix_web::http::StatusCode::from_u16(code).unwrap();
        let mut res = HttpResponse::build(status);
        if let (429, Some(after)) = (code, retry_after) {
            res.insert_header(("Retry-After", after));
        }
        return Err(res.content_type("text/html").body("<html><body>Error</body></html>"));
    }
    if !key_ok {
        return Err(forbidden_html());
    }
    Ok(())
}

fn player_id(q: &Query) -> Option<u64> {
    q.steamid.as_deref().or(q.steamids.as_deref()).and_then(|s| s.parse().ok())
}

async fn owned_games(state: web::Data<Mutex<FakeState>>, q: web::Query<Query>) -> HttpResponse {
    if let Err(r) = gate(&state, "GetOwnedGames", &q).await {
        return r;
    }
    let s = state.lock().unwrap();
    let Some(player) = player_id(&q).and_then(|id| s.players.get(&id)) else {
        // Steam's answer for a SteamID no account has.
        return bad_request_html();
    };
    if !player.public {
        return HttpResponse::Ok().json(json!({"response": {}}));
    }
    let games: Vec<_> = player
        .games
        .iter()
        .map(|g| {
            let game = s.games.get(&g.appid);
            json!({
                "appid": g.appid,
                "name": game.map(|x| x.name.clone()).unwrap_or_default(),
                "playtime_forever": g.playtime_minutes,
                "img_icon_url": format!("{:040x}", g.appid),
                "has_community_visible_stats": game.is_some_and(|x| !x.achievements.is_empty()),
                "playtime_windows_forever": g.playtime_minutes,
                "rtime_last_played": 1_700_000_000,
            })
        })
        .collect();
    if s.owned_games_truncated {
        return HttpResponse::Ok()
            .content_type("application/json; charset=UTF-8")
            .body(r#"{"response":{"game_count":3,"games":[{"appid":400,"name":"Por"#);
    }
    let count = games.len();
    let games = &games[..count.saturating_sub(s.owned_games_short_by)];
    HttpResponse::Ok().json(json!({"response": {"game_count": count, "games": games}}))
}

async fn player_achievements(state: web::Data<Mutex<FakeState>>, q: web::Query<Query>) -> HttpResponse {
    if let Err(r) = gate(&state, "GetPlayerAchievements", &q).await {
        return r;
    }
    let appid = q.appid.unwrap_or(0);
    let slow = state.lock().unwrap().slow_games.get(&appid).copied();
    if let Some(delay) = slow {
        tokio::time::sleep(delay).await;
    }
    let s = state.lock().unwrap();
    match s.game_faults.get(&appid) {
        Some(GameFault::Truncated) => {
            return HttpResponse::Ok()
                .content_type("application/json; charset=UTF-8")
                .body(r#"{"playerstats":{"steamID":"1","gameName":"x","achievements":[{"apiname":"A"#)
        }
        Some(GameFault::Private) => {
            return HttpResponse::Forbidden()
                .json(json!({"playerstats": {"error": "Profile is not public", "success": false}}))
        }
        Some(GameFault::Status(code)) => {
            let status = actix_web::http::StatusCode::from_u16(*code).unwrap();
            return HttpResponse::build(status).content_type("text/html").body("<html><body>Error</body></html>");
        }
        Some(GameFault::Duplicated) | None => {}
    }
    let duplicated = s.game_faults.get(&appid) == Some(&GameFault::Duplicated);
    let player = player_id(&q).and_then(|id| s.players.get(&id));
    let Some(player) = player.filter(|p| p.public) else {
        return HttpResponse::Forbidden()
            .json(json!({"playerstats": {"error": "Profile is not public", "success": false}}));
    };
    let game = s.games.get(&appid).filter(|g| !g.achievements.is_empty());
    let owned = player.games.iter().find(|g| g.appid == appid);
    let (Some(game), Some(owned)) = (game, owned) else {
        return HttpResponse::BadRequest()
            .json(json!({"playerstats": {"error": "Requested app has no stats", "success": false}}));
    };
    let mut achievements: Vec<_> = game
        .achievements
        .iter()
        .map(|a| {
            let unlock = owned.unlocked.iter().find(|(n, _)| *n == a.api_name);
            json!({
                "apiname": a.api_name,
                "achieved": if unlock.is_some() { 1 } else { 0 },
                "unlocktime": unlock.map(|u| u.1).unwrap_or(0),
            })
        })
        .collect();
    // Steam's player answer can name achievements its schema does not
    // (removed or not yet published ones): they come after the rest.
    for (name, time) in &owned.unlocked {
        if !game.achievements.iter().any(|a| a.api_name == *name) {
            achievements.push(json!({"apiname": name, "achieved": 1, "unlocktime": time}));
        }
    }
    if duplicated {
        achievements.extend(achievements.clone());
    }
    HttpResponse::Ok().json(json!({"playerstats": {
        "steamID": player_id(&q).unwrap().to_string(), "gameName": game.name, "achievements": achievements, "success": true
    }}))
}

async fn schema(state: web::Data<Mutex<FakeState>>, own: web::Data<FakeBase>, q: web::Query<Query>) -> HttpResponse {
    if let Err(r) = gate(&state, "GetSchemaForGame", &q).await {
        return r;
    }
    let s = state.lock().unwrap();
    let Some(game) = q.appid.and_then(|a| s.games.get(&a)).filter(|g| !g.achievements.is_empty()) else {
        return HttpResponse::Ok().json(json!({"game": {}}));
    };
    let achievements: Vec<_> = game
        .achievements
        .iter()
        .map(|a| {
            let mut v = json!({
                "name": a.api_name, "defaultvalue": 0, "displayName": a.display_name,
                "hidden": if a.hidden { 1 } else { 0 },
                "icon": format!("{}/steamcommunity/public/images/apps/{}/{}.jpg", own.0, q.appid.unwrap(), a.api_name),
                "icongray": format!("{}/steamcommunity/public/images/apps/{}/{}_gray.jpg", own.0, q.appid.unwrap(), a.api_name),
            });
            // Steam leaves the description out of hidden achievements.
            if let (Some(d), false) = (&a.description, a.hidden) {
                v["description"] = json!(d);
            }
            v
        })
        .collect();
    HttpResponse::Ok().json(json!({"game": {"gameName": game.name, "gameVersion": "1", "availableGameStats": {"achievements": achievements}}}))
}

async fn global(state: web::Data<Mutex<FakeState>>, q: web::Query<Query>) -> HttpResponse {
    if let Err(r) = gate(&state, "GetGlobalAchievementPercentagesForApp", &q).await {
        return r;
    }
    let s = state.lock().unwrap();
    let Some(game) = q.gameid.and_then(|a| s.games.get(&a)) else {
        return HttpResponse::Forbidden().content_type("text/html").body("<html><body>Forbidden</body></html>");
    };
    match q.gameid.and_then(|a| s.global_faults.get(&a)) {
        Some(GameFault::Truncated) => {
            return HttpResponse::Ok()
                .content_type("application/json; charset=UTF-8")
                .body(r#"{"achievementpercentages":{"achievements":[{"name":"A"#)
        }
        Some(GameFault::Status(code)) => {
            let status = actix_web::http::StatusCode::from_u16(*code).unwrap();
            return HttpResponse::build(status).content_type("text/html").body("<html><body>Error</body></html>");
        }
        _ => {}
    }
    // Steam sends percentages as strings for some games and numbers for others.
    let achievements: Vec<_> = game
        .achievements
        .iter()
        .filter(|a| !s.unlisted_percentages.contains(&a.api_name))
        .enumerate()
        .map(|(i, a)| {
            let p = if i % 2 == 0 { json!(format!("{:.1}", a.global_percent)) } else { json!(a.global_percent) };
            json!({"name": a.api_name, "percent": p})
        })
        .collect();
    HttpResponse::Ok().json(json!({"achievementpercentages": {"achievements": achievements}}))
}

async fn summaries(state: web::Data<Mutex<FakeState>>, own: web::Data<FakeBase>, q: web::Query<Query>) -> HttpResponse {
    if let Err(r) = gate(&state, "GetPlayerSummaries", &q).await {
        return r;
    }
    let s = state.lock().unwrap();
    if player_id(&q).is_some_and(|id| !s.players.contains_key(&id)) {
        // What Steam answers for a SteamID that no account has.
        return bad_request_html();
    }
    let players: Vec<_> = player_id(&q)
        .and_then(|id| s.players.get(&id).map(|p| (id, p)))
        .map(|(id, p)| {
            json!({
                "steamid": id.to_string(), "personaname": p.persona,
                "communityvisibilitystate": if p.public { 3 } else { 1 },
                "avatarfull": format!("{}/avatars/fef49e7fa7e1997310d705b2a6158ff8dc1cdfeb_full.jpg", own.0),
            })
        })
        .into_iter()
        .collect();
    HttpResponse::Ok().json(json!({"response": {"players": players}}))
}

/// A generated library: `games` games, every `achievement_every`-th with
/// `per_game` achievements, about a third of them unlocked. Deterministic.
pub fn generated_player(state: &mut FakeState, steam_id: u64, games: usize, per_game: usize) {
    let mut owned = Vec::with_capacity(games);
    for i in 0..games {
        let appid = 10_000 + i as i64 * 10;
        let achievements: Vec<FakeAchievement> = (0..per_game)
            .map(|j| FakeAchievement {
                api_name: format!("ACH_{appid}_{j}"),
                display_name: format!("Achievement {j} of game {i}"),
                description: Some(format!("Do thing {j}")),
                hidden: j % 10 == 9,
                global_percent: ((j * 37 + i) % 1000) as f64 / 10.0,
            })
            .collect();
        let unlocked: Vec<(String, i64)> = achievements
            .iter()
            .enumerate()
            .filter(|(j, _)| (i + j) % 3 == 0)
            .map(|(j, a)| (a.api_name.clone(), 1_600_000_000 + (i * 1000 + j) as i64 * 3600))
            .collect();
        state.games.entry(appid).or_insert(FakeGame { name: format!("Game {i}"), achievements });
        owned.push(FakeOwned { appid, playtime_minutes: ((i * 97) % 6000) as i32, unlocked });
    }
    state.players.insert(steam_id, FakePlayer { persona: format!("player{steam_id}"), public: true, games: owned });
}

/// Where the fake's OpenID provider answers, as Steam's does at
/// `https://steamcommunity.com/openid/login`.
pub const OPENID_PATH: &str = "/openid/login";
/// The fake provider's signing secret (it has one association, like a
/// provider in stateless mode).
const OPENID_SECRET: &[u8] = b"questline fake steam openid association";

fn openid_nonce(at: chrono::DateTime<chrono::Utc>) -> String {
    let mut bytes = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("{}{}", at.format("%Y-%m-%dT%H:%M:%SZ"), hex::encode(bytes))
}

/// The fields Steam signs, in its order.
const SIGNED: &str = "signed,op_endpoint,claimed_id,identity,return_to,response_nonce,assoc_handle";

fn positive_assertion(
    endpoint: &str,
    steam_id: u64,
    return_to: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let id = format!("{}{steam_id}", crate::infra::openid::CLAIMED_ID_PREFIX);
    let mut fields: Vec<(String, String)> = [
        ("ns", crate::infra::openid::NS.to_owned()),
        ("mode", "id_res".to_owned()),
        ("op_endpoint", endpoint.to_owned()),
        ("claimed_id", id.clone()),
        ("identity", id),
        ("return_to", return_to.to_owned()),
        ("response_nonce", openid_nonce(at)),
        ("assoc_handle", "1234567890".to_owned()),
        ("signed", SIGNED.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("openid.{k}"), v))
    .collect();
    sign(&mut fields);
    fields
}

fn signature(fields: &[(String, String)]) -> String {
    use hmac::Mac;
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(OPENID_SECRET).expect("HMAC takes any key");
    for name in get("openid.signed").unwrap_or_default().split(',') {
        // OpenID's key-value form: "name:value\n" per signed field.
        mac.update(format!("{name}:{}\n", get(&format!("openid.{name}")).unwrap_or_default()).as_bytes());
    }
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, mac.finalize().into_bytes())
}

/// (Re)signs an assertion over the fields its `openid.signed` names.
pub fn sign(fields: &mut Vec<(String, String)>) {
    let sig = signature(fields);
    fields.retain(|(k, _)| k != "openid.sig");
    fields.push(("openid.sig".into(), sig));
}

/// `return_to` with the assertion's fields added to its query, as the
/// provider sends the browser back.
pub fn return_url(return_to: &str, fields: &[(String, String)]) -> String {
    let mut url = url::Url::parse(return_to).expect("return_to is a URL");
    url.query_pairs_mut().extend_pairs(fields);
    url.to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Steam's sign-in page, reduced to what matters: pick one of the fake's
/// players (Steam would ask for a password), or cancel.
async fn openid_page(
    state: web::Data<Mutex<FakeState>>,
    q: web::Query<std::collections::BTreeMap<String, String>>,
) -> HttpResponse {
    if q.get("openid.mode").map(String::as_str) != Some("checkid_setup") {
        return bad_request_html();
    }
    let Some(return_to) = q.get("openid.return_to").filter(|r| r.starts_with("http")) else {
        return bad_request_html();
    };
    let mut players: Vec<(u64, String)> = {
        let s = state.lock().unwrap();
        s.players.iter().map(|(id, p)| (*id, p.persona.clone())).collect()
    };
    players.sort();
    let buttons: String = players
        .iter()
        .take(50)
        .map(|(id, persona)| {
            let href = format!(
                "/openid/approve?player={id}&return_to={}",
                url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
            );
            format!(
                "<li><a class=\"player\" data-steamid=\"{id}\" href=\"{}\">{}</a> <small>{id}</small></li>",
                escape(&href),
                escape(persona)
            )
        })
        .collect();
    let cancel = return_url(
        return_to,
        &[("openid.ns".into(), crate::infra::openid::NS.into()), ("openid.mode".into(), "cancel".into())],
    );
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
        "<!doctype html><html><head><meta name=\"viewport\" content=\"width=device-width\"><title>Sign In (fake Steam)</title><link rel=\"icon\" href=\"data:,\">\
         <style>body{{font-family:sans-serif;background:#1b2838;color:#c7d5e0;max-width:32rem;margin:2rem auto;padding:0 1rem}}\
         a{{color:#66c0f4}}li{{margin:.6rem 0}}</style></head>\
         <body><h1>Sign in through Steam</h1><p>The fake Steam: choose who you are.</p><ul>{buttons}</ul>\
         <p><a id=\"cancel\" href=\"{}\">Cancel</a></p></body></html>",
        escape(&cancel)
    ))
}

#[derive(Deserialize)]
struct Approve {
    player: u64,
    return_to: String,
}

/// The positive assertion: back to `return_to` with the signed fields.
async fn openid_approve(own: web::Data<FakeBase>, q: web::Query<Approve>) -> HttpResponse {
    if url::Url::parse(&q.return_to).is_err() {
        return bad_request_html();
    }
    let fields = positive_assertion(&format!("{}{OPENID_PATH}", own.0), q.player, &q.return_to, chrono::Utc::now());
    HttpResponse::Found().insert_header(("location", return_url(&q.return_to, &fields))).finish()
}

/// `check_authentication`: whether the signature over the signed fields is
/// the fake's own (and nothing else: nonces are the relying party's job,
/// which is what the tests check).
async fn openid_check(state: web::Data<Mutex<FakeState>>, form: web::Form<Vec<(String, String)>>) -> HttpResponse {
    let refuses = {
        let mut s = state.lock().unwrap();
        *s.calls.entry("check_authentication".into()).or_default() += 1;
        s.openid_refuses
    };
    let fields = form.into_inner();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let valid = !refuses
        && get("openid.mode").as_deref() == Some("check_authentication")
        && get("openid.sig").is_some_and(|sig| sig == signature(&fields));
    HttpResponse::Ok().content_type("text/plain").body(format!("ns:{}\nis_valid:{valid}\n", crate::infra::openid::NS))
}
