//! A client for the Steam Web API calls Questline uses, with lenient models
//! of Steam's JSON and every failure turned into a [`SteamError`] a user can
//! read.

use std::time::Duration;

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use url::Url;

/// Why a Steam call failed, in terms the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SteamError {
    #[error("Steam refused the Web API key. Check that it is correct and still active.")]
    BadKey,
    #[error("This Steam profile or its game details are private. Set \"Game details\" to Public in Steam's privacy settings.")]
    Private,
    #[error("This game has no achievements or stats on Steam.")]
    NoStats,
    /// A 429. `until`: when Steam's `Retry-After` said to come back.
    #[error("{}", rate_limited_words(*until))]
    RateLimited { until: Option<chrono::DateTime<chrono::Utc>> },
    #[error("No Steam profile matches that name or link.")]
    NotFound,
    #[error("Steam did not answer in time. Please try again later.")]
    Timeout,
    #[error("Steam is having problems (status {0}). Please try again later.")]
    Unavailable(u16),
    /// The detail names the endpoint and what was wrong with the answer.
    #[error("Steam sent an answer Questline could not read ({0}).")]
    Malformed(String),
    /// The answer stopped half-way (a dropped connection): worth another
    /// try, unlike an answer that is complete but wrong.
    #[error("Steam's answer was cut off ({0}). Questline will try again.")]
    Interrupted(String),
    /// An HTML 400: Steam's answer to a request naming something that does
    /// not exist (a SteamID no account has, for one).
    #[error("Steam refused the request as invalid.")]
    BadRequest,
    #[error("Your Steam Web API key has used its daily call budget. Syncing resumes tomorrow.")]
    BudgetExhausted,
    /// The user's share of the instance key's calls for the day is spent.
    #[error(
        "You have used today's share of this site's Steam calls. Syncing resumes tomorrow (00:00 UTC); \
         with your own Web API key on the Steam page it would not wait."
    )]
    ShareExhausted,
}

impl SteamError {
    /// Worth retrying after a pause.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SteamError::RateLimited { .. }
                | SteamError::ShareExhausted
                | SteamError::Timeout
                | SteamError::Unavailable(_)
                | SteamError::Interrupted(_)
        )
    }

    /// When Steam asked to be called again, if it said.
    pub fn not_before(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            SteamError::RateLimited { until } => *until,
            // A share is per UTC day: the next one starts at midnight.
            SteamError::ShareExhausted => {
                let tomorrow = chrono::Utc::now().date_naive().succ_opt()?;
                Some(tomorrow.and_hms_opt(0, 0, 0)?.and_utc())
            }
            _ => None,
        }
    }
}

fn rate_limited_words(until: Option<chrono::DateTime<chrono::Utc>>) -> String {
    match until {
        Some(t) => format!(
            "Steam asked us to wait until {} UTC before calling again; the sync resumes then.",
            t.format("%H:%M")
        ),
        None => "Steam is limiting requests. Questline will try again later.".to_owned(),
    }
}

/// The longest `Retry-After` honoured as given; a longer one (or a date
/// far ahead) is held to this, so a bad header cannot stop syncing for days.
const MAX_RETRY_AFTER_SECS: i64 = 6 * 3600;

/// When a `Retry-After` header (seconds, or an HTTP date) says to come
/// back; `None` when it is absent or unreadable.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
    let value = value.trim();
    let at = if let Ok(secs) = value.parse::<i64>() {
        now + chrono::Duration::seconds(secs.max(0))
    } else {
        chrono::DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&chrono::Utc)
    };
    Some(at.clamp(now, now + chrono::Duration::seconds(MAX_RETRY_AFTER_SECS)))
}

/// A Web API key as a sync uses it: the user's own, or the instance's,
/// spent on behalf of a user (whose calls then count toward their share).
#[derive(Clone)]
pub struct ApiKey {
    pub secret: SecretString,
    /// The user the instance key is lent to; `None` for a user's own key.
    pub shared_with: Option<i64>,
}

impl ApiKey {
    /// A user's own key (or any key spent on nobody's behalf).
    pub fn own(secret: SecretString) -> Self {
        ApiKey { secret, shared_with: None }
    }
}

/// Counts calls per API key per UTC day in Redis (so every instance shares
/// the count) and refuses past a budget kept under Steam's 100,000 a day.
#[derive(Clone)]
pub struct KeyBudget {
    pub redis: crate::cache::Redis,
    pub per_day: u64,
    /// Calls a day each user may make with the instance key.
    pub per_user_shared: u64,
}

/// Today's calls with the instance key: in all, and the heaviest users.
#[derive(Debug, Clone, Default)]
pub struct SharedUsage {
    pub calls: u64,
    pub users: u64,
    /// (user id, calls), most first, at most ten.
    pub top: Vec<(i64, u64)>,
}

/// The key itself never becomes part of a Redis key.
fn key_id(key: &SecretString) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(key.expose_secret().as_bytes())[..12])
}

impl KeyBudget {
    /// Holds every call with `key`, on every instance, until `until`:
    /// Steam's `Retry-After` is about the key, not the one call.
    async fn pause(&self, key: &SecretString, until: chrono::DateTime<chrono::Utc>) {
        let secs = (until - chrono::Utc::now()).num_seconds();
        if secs <= 0 {
            return;
        }
        let redis_key = self.redis.key(&format!("steam_pause:{}", key_id(key)));
        let at = until.timestamp();
        let _ =
            self.redis
                .call(|mut c| {
                    let redis_key = redis_key.clone();
                    async move {
                        redis::cmd("SET").arg(&redis_key).arg(at).arg("EX").arg(secs).query_async::<()>(&mut c).await
                    }
                })
                .await;
    }

    /// When calls with `key` may start again, if Steam paused them.
    async fn paused_until(&self, key: &SecretString) -> Option<chrono::DateTime<chrono::Utc>> {
        let redis_key = self.redis.key(&format!("steam_pause:{}", key_id(key)));
        let at: Option<i64> = self
            .redis
            .call(|mut c| {
                let redis_key = redis_key.clone();
                async move { redis::cmd("GET").arg(&redis_key).query_async::<Option<i64>>(&mut c).await }
            })
            .await
            .ok()
            .flatten();
        at.and_then(|t| chrono::DateTime::from_timestamp(t, 0)).filter(|t| *t > chrono::Utc::now())
    }

    async fn spend(&self, key: &ApiKey) -> Result<(), SteamError> {
        if let Some(until) = self.paused_until(&key.secret).await {
            return Err(SteamError::RateLimited { until: Some(until) });
        }
        let day = chrono::Utc::now().format("%Y%m%d");
        if let Some(user) = key.shared_with {
            // The user's share first, so one user past it cannot spend the
            // instance's calls that others' shares count on.
            let share_key = self.redis.key(&format!("steam_share:{user}:{day}"));
            let rank_key = self.redis.key(&format!("steam_share_rank:{day}"));
            let (count,): (u64,) = self
                .redis
                .call(|mut c| {
                    let (share_key, rank_key) = (share_key.clone(), rank_key.clone());
                    async move {
                        redis::pipe()
                            .atomic()
                            .incr(&share_key, 1)
                            .expire(&share_key, 2 * 86_400)
                            .ignore()
                            .zincr(&rank_key, user, 1)
                            .ignore()
                            .expire(&rank_key, 2 * 86_400)
                            .ignore()
                            .query_async(&mut c)
                            .await
                    }
                })
                .await
                .unwrap_or((0,));
            if count > self.per_user_shared {
                return Err(SteamError::ShareExhausted);
            }
        }
        let key = &key.secret;
        let id = key_id(key);
        let redis_key = self.redis.key(&format!("steam_budget:{id}:{day}"));
        let (count,): (u64,) = self
            .redis
            .call(|mut c| {
                let redis_key = redis_key.clone();
                async move {
                    redis::pipe()
                        .atomic()
                        .incr(&redis_key, 1)
                        .expire(&redis_key, 2 * 86_400)
                        .ignore()
                        .query_async(&mut c)
                        .await
                }
            })
            .await
            // Without Redis the budget cannot be checked; Steam's own 429
            // still protects the key, so the call goes ahead.
            .unwrap_or((0,));
        if count > self.per_day {
            return Err(SteamError::BudgetExhausted);
        }
        Ok(())
    }
}

impl KeyBudget {
    /// Today's use of `key` by users it is lent to, for the admin page.
    pub async fn shared_usage(&self, key: &SecretString) -> SharedUsage {
        let day = chrono::Utc::now().format("%Y%m%d");
        let total_key = self.redis.key(&format!("steam_budget:{}:{day}", key_id(key)));
        let rank_key = self.redis.key(&format!("steam_share_rank:{day}"));
        // The key's calls today (if any), how many users spent some, the top ten.
        type Read = (Option<u64>, u64, Vec<(i64, u64)>);
        let got: Result<Read, _> = self
            .redis
            .call(|mut c| {
                let (total_key, rank_key) = (total_key.clone(), rank_key.clone());
                async move {
                    redis::pipe()
                        .get(&total_key)
                        .zcard(&rank_key)
                        .zrevrange_withscores(&rank_key, 0, 9)
                        .query_async(&mut c)
                        .await
                }
            })
            .await;
        match got {
            Ok((calls, users, top)) => SharedUsage { calls: calls.unwrap_or(0), users, top },
            Err(_) => SharedUsage::default(),
        }
    }
}

/// A game in a user's library.
#[derive(Debug, Clone, Deserialize)]
pub struct OwnedGame {
    pub appid: i64,
    #[serde(default, deserialize_with = "steam_text")]
    pub name: String,
    #[serde(default)]
    pub playtime_forever: i32,
    #[serde(default)]
    pub playtime_2weeks: i32,
    /// A hash that names the icon under Steam's media address.
    #[serde(default, deserialize_with = "steam_hash")]
    pub img_icon_url: Option<String>,
    #[serde(default)]
    pub has_community_visible_stats: Option<bool>,
    #[serde(default)]
    pub rtime_last_played: i64,
}

/// A user's owned list, and whether it is the whole of it.
#[derive(Debug, Clone)]
pub struct OwnedGames {
    pub games: Vec<OwnedGame>,
    /// False when Steam's `game_count` disagrees with the list's length.
    pub complete: bool,
}

#[derive(Deserialize)]
struct OwnedGamesEnvelope {
    response: OwnedGamesResponse,
}

#[derive(Deserialize)]
struct OwnedGamesResponse {
    /// Absent when the profile's game details are private.
    games: Option<Vec<OwnedGame>>,
    #[serde(default)]
    game_count: Option<u64>,
}

/// One achievement of a player in a game.
#[derive(Debug, Clone, Deserialize)]
pub struct PlayerAchievement {
    #[serde(deserialize_with = "steam_text")]
    pub apiname: String,
    #[serde(deserialize_with = "flexible_bool")]
    pub achieved: bool,
    #[serde(default)]
    pub unlocktime: i64,
}

#[derive(Deserialize)]
struct PlayerStatsEnvelope {
    playerstats: PlayerStats,
}

#[derive(Deserialize)]
struct PlayerStats {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    achievements: Option<Vec<PlayerAchievement>>,
}

/// One achievement of a game's schema.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaAchievement {
    #[serde(deserialize_with = "steam_text")]
    pub name: String,
    #[serde(rename = "displayName", default, deserialize_with = "steam_text")]
    pub display_name: String,
    /// Steam leaves it out for hidden achievements.
    #[serde(default, deserialize_with = "steam_text_opt")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "flexible_bool")]
    pub hidden: bool,
    #[serde(default, deserialize_with = "steam_url")]
    pub icon: Option<String>,
    #[serde(default, deserialize_with = "steam_url")]
    pub icongray: Option<String>,
}

#[derive(Deserialize)]
struct SchemaEnvelope {
    game: SchemaGame,
}

/// `{"game":{}}` means the game has no stats.
#[derive(Deserialize)]
struct SchemaGame {
    #[serde(rename = "availableGameStats", default)]
    stats: Option<SchemaStats>,
}

#[derive(Deserialize)]
struct SchemaStats {
    #[serde(default)]
    achievements: Vec<SchemaAchievement>,
}

/// A global unlock percentage.
#[derive(Debug, Clone, Deserialize)]
pub struct GlobalPercent {
    #[serde(deserialize_with = "steam_text")]
    pub name: String,
    /// `None` when Steam's value is not a percentage (NaN, negative, over
    /// 100, not a number): refused for this achievement alone.
    #[serde(default, deserialize_with = "percentage")]
    pub percent: Option<f64>,
}

#[derive(Deserialize)]
struct GlobalEnvelope {
    achievementpercentages: GlobalAchievements,
}

#[derive(Deserialize)]
struct GlobalAchievements {
    #[serde(default)]
    achievements: Vec<GlobalPercent>,
}

/// A player's public profile.
#[derive(Debug, Clone, Deserialize)]
pub struct PlayerSummary {
    pub steamid: String,
    #[serde(default, deserialize_with = "steam_text")]
    pub personaname: String,
    #[serde(default, deserialize_with = "steam_url")]
    pub avatarfull: Option<String>,
}

#[derive(Deserialize)]
struct SummariesEnvelope {
    response: SummariesResponse,
}

#[derive(Deserialize)]
struct SummariesResponse {
    #[serde(default)]
    players: Vec<PlayerSummary>,
}

/// Text from Steam as Questline keeps it: control characters other than
/// line breaks and tabs dropped. A NUL in one game's name could not even be
/// stored, and failed the whole sync; the rest of the name stays.
pub fn clean_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect()
}

/// A text field (missing or null: empty), cleaned by [`clean_text`].
fn steam_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|t| clean_text(&t)).unwrap_or_default())
}

fn steam_text_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|t| clean_text(&t)))
}

/// An image address from Steam, kept only when it is an http(s) URL: pages
/// put it in `<img src>` and `og:image`, where `javascript:` or `data:`
/// must never land. Anything else reads as no image.
pub fn image_url(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host().is_some()).then(|| url.to_string())
}

fn steam_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.as_deref().and_then(image_url))
}

/// An icon hash (hex digits, joined to Steam's media address by the
/// pages): anything else reads as no icon.
fn steam_hash<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|h| !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric())))
}

/// Steam sends 0/1, true/false, or their string forms, depending on the call.
fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flexible {
        Bool(bool),
        Number(i64),
        Text(String),
    }
    Ok(match Flexible::deserialize(d)? {
        Flexible::Bool(b) => b,
        Flexible::Number(n) => n != 0,
        Flexible::Text(s) => matches!(s.as_str(), "1" | "true" | "True"),
    })
}

/// Global percentages arrive as numbers or as strings of numbers; a value
/// that is not a percentage reads as none, never failing the answer.
fn percentage<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let n = match &value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    Ok(n.filter(|p| p.is_finite() && (0.0..=100.0).contains(p)))
}

/// Retry policy for transient failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 4, base_delay: Duration::from_millis(500) }
    }
}

/// Calls the Steam Web API at a configurable base URL.
#[derive(Clone)]
pub struct SteamClient {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    budget: Option<KeyBudget>,
}

impl SteamClient {
    pub fn new(base: Url, retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("Questline/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a plain reqwest client builds");
        SteamClient { http, base, retry, budget: None }
    }

    /// Enforces a per-key daily call budget.
    pub fn with_budget(mut self, budget: KeyBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The call budget, when one is enforced.
    pub fn budget(&self) -> Option<&KeyBudget> {
        self.budget.as_ref()
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        url
    }

    /// One GET with retries on 429, 5xx and timeouts (exponential backoff
    /// with jitter), then classification of the answer.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &ApiKey,
        query: &[(&str, String)],
    ) -> Result<(u16, T), SteamError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(budget) = &self.budget {
                budget.spend(key).await?;
            }
            let result = self.get_once::<T>(path, &key.secret, query).await;
            if let (Err(SteamError::RateLimited { until: Some(until) }), Some(budget)) = (&result, &self.budget) {
                budget.pause(&key.secret, *until).await;
            }
            match result {
                // Steam said when to come back: not before then.
                Err(SteamError::RateLimited { until: Some(_) }) => return result,
                Err(e) if e.is_transient() && attempt < self.retry.attempts => {
                    let base = self.retry.base_delay.as_millis() as u64 * (1 << (attempt - 1));
                    let jitter = rand::rng().random_range(0..=base / 2 + 1);
                    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                }
                other => return other,
            }
        }
    }

    async fn get_once<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &SecretString,
        query: &[(&str, String)],
    ) -> Result<(u16, T), SteamError> {
        let mut url = self.url(path);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("key", key.expose_secret());
            q.append_pair("format", "json");
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        let res = self.http.get(url).send().await.map_err(|e| {
            if e.is_timeout() {
                SteamError::Timeout
            } else {
                SteamError::Unavailable(0)
            }
        })?;
        let status = res.status().as_u16();
        let is_json = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        match status {
            429 => {
                let now = chrono::Utc::now();
                // "Retry-After: 0" (or a date past) says nothing to wait
                // for: the plain 429 backoff applies.
                let until = res
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, now))
                    .filter(|t| *t > now);
                return Err(SteamError::RateLimited { until });
            }
            // A bad key comes back as an HTML page, not JSON.
            401 | 403 if !is_json => return Err(SteamError::BadKey),
            s if s >= 500 => return Err(SteamError::Unavailable(s)),
            _ => {}
        }
        let endpoint = endpoint_name(path);
        if !is_json {
            if status == 400 {
                return Err(SteamError::BadRequest);
            }
            return Err(SteamError::Malformed(format!("{endpoint}: status {status}, not JSON")));
        }
        let body = res.bytes().await.map_err(|_| SteamError::Interrupted(format!("{endpoint}: the body")))?;
        serde_json::from_slice::<T>(&body).map(|v| (status, v)).map_err(|e| {
            let detail = format!("{endpoint}: {e} in a {}-byte answer", body.len());
            // Stopped half-way (a dropped connection): another try may work.
            if e.is_eof() {
                SteamError::Interrupted(detail)
            } else {
                SteamError::Malformed(detail)
            }
        })
    }

    /// The user's games, free ones played included. A private profile is
    /// [`SteamError::Private`]; a SteamID no account has, [`SteamError::NotFound`].
    pub async fn owned_games(&self, key: &ApiKey, steam_id: u64) -> Result<OwnedGames, SteamError> {
        let (_, env): (_, OwnedGamesEnvelope) = self
            .get(
                "/IPlayerService/GetOwnedGames/v1/",
                key,
                &[
                    ("steamid", steam_id.to_string()),
                    ("include_appinfo", "1".into()),
                    ("include_played_free_games", "1".into()),
                ],
            )
            .await
            .map_err(not_found_on_bad_request)?;
        let games = env.response.games.ok_or(SteamError::Private)?;
        // A list whose length is not the count Steam gives with it may be
        // cut short: its games are stored, but it is not read as the whole
        // library (which would mark the missing ones removed).
        let complete = env.response.game_count.is_none_or(|count| count == games.len() as u64);
        Ok(OwnedGames { games, complete })
    }

    /// The player's achievements in one game.
    pub async fn player_achievements(
        &self,
        key: &ApiKey,
        steam_id: u64,
        appid: i64,
    ) -> Result<Vec<PlayerAchievement>, SteamError> {
        let (status, env): (_, PlayerStatsEnvelope) = self
            .get(
                "/ISteamUserStats/GetPlayerAchievements/v1/",
                key,
                &[("steamid", steam_id.to_string()), ("appid", appid.to_string())],
            )
            .await?;
        let stats = env.playerstats;
        if stats.success {
            return Ok(stats.achievements.unwrap_or_default());
        }
        let error = stats.error.unwrap_or_default().to_lowercase();
        Err(match status {
            403 => SteamError::Private,
            _ if error.contains("not public") || error.contains("private") => SteamError::Private,
            _ if error.contains("no stats") => SteamError::NoStats,
            400 => SteamError::NoStats,
            s => SteamError::Malformed(format!("status {s}: {error}")),
        })
    }

    /// A game's achievement schema; empty when the game has none.
    pub async fn schema(&self, key: &ApiKey, appid: i64) -> Result<Vec<SchemaAchievement>, SteamError> {
        let (_, env): (_, SchemaEnvelope) =
            self.get("/ISteamUserStats/GetSchemaForGame/v2/", key, &[("appid", appid.to_string())]).await?;
        Ok(env.game.stats.map(|s| s.achievements).unwrap_or_default())
    }

    /// Global unlock percentages of a game's achievements.
    pub async fn global_percentages(&self, key: &ApiKey, appid: i64) -> Result<Vec<GlobalPercent>, SteamError> {
        let (_, env): (_, GlobalEnvelope) = self
            .get("/ISteamUserStats/GetGlobalAchievementPercentagesForApp/v2/", key, &[("gameid", appid.to_string())])
            .await?;
        Ok(env.achievementpercentages.achievements)
    }

    /// The public profile of one player; used to check a key before saving it.
    pub async fn player_summary(&self, key: &ApiKey, steam_id: u64) -> Result<PlayerSummary, SteamError> {
        let (_, env): (_, SummariesEnvelope) = self
            .get("/ISteamUser/GetPlayerSummaries/v2/", key, &[("steamids", steam_id.to_string())])
            .await
            .map_err(not_found_on_bad_request)?;
        env.response.players.into_iter().next().ok_or(SteamError::NotFound)
    }
}

/// The method name of an endpoint path (`/ISteamUserStats/GetSchemaForGame/v2/`
/// is `GetSchemaForGame`), for messages and logs.
fn endpoint_name(path: &str) -> &str {
    path.trim_matches('/').split('/').nth(1).unwrap_or(path)
}

/// For calls naming a player, Steam's HTML 400 means no such player.
fn not_found_on_bad_request(e: SteamError) -> SteamError {
    match e {
        SteamError::BadRequest => SteamError::NotFound,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_images_from_steam_are_cleaned_field_by_field() {
        let owned: OwnedGamesEnvelope = serde_json::from_str(
            r#"{"response":{"games":[{"appid":1,"name":"Bad\u0000Name\u0007","img_icon_url":"javascript:x"},
                                     {"appid":2,"name":null,"img_icon_url":"0a1b2c"}]}}"#,
        )
        .unwrap();
        let games = owned.response.games.unwrap();
        assert_eq!(games[0].name, "BadName");
        assert_eq!(games[0].img_icon_url, None);
        assert_eq!(games[1].name, "");
        assert_eq!(games[1].img_icon_url.as_deref(), Some("0a1b2c"));
        let schema: SchemaEnvelope = serde_json::from_str(
            r#"{"game":{"availableGameStats":{"achievements":[
                {"name":"A\u0000","displayName":"Line\nTwo","icon":"javascript:alert(1)","icongray":"https://cdn.example/g.jpg"},
                {"name":"B","icon":"data:image/png;base64,xx","icongray":" HTTP://cdn.example/x.jpg"}]}}}"#,
        )
        .unwrap();
        let a = schema.game.stats.unwrap().achievements;
        assert_eq!((a[0].name.as_str(), a[0].display_name.as_str()), ("A", "Line\nTwo"));
        assert_eq!(a[0].icon, None);
        assert_eq!(a[0].icongray.as_deref(), Some("https://cdn.example/g.jpg"));
        assert_eq!(a[1].icon, None);
        assert_eq!(a[1].icongray.as_deref(), Some("http://cdn.example/x.jpg"));
    }

    #[test]
    fn steam_answers_are_read_leniently() {
        let s: SchemaEnvelope = serde_json::from_str(r#"{"game":{}}"#).unwrap();
        assert!(s.game.stats.is_none());
        let s: SchemaEnvelope = serde_json::from_str(
            r#"{"game":{"availableGameStats":{"achievements":[{"name":"A","displayName":"A","hidden":1,"icon":"i","icongray":"g"}]}}}"#,
        )
        .unwrap();
        let a = &s.game.stats.unwrap().achievements[0];
        assert!(a.hidden);
        assert!(a.description.is_none());
        let g: GlobalEnvelope = serde_json::from_str(
            r#"{"achievementpercentages":{"achievements":[{"name":"A","percent":"12.5"},{"name":"B","percent":3.25},
                {"name":"C","percent":"NaN"},{"name":"D","percent":-1},{"name":"E","percent":101},{"name":"F","percent":"x"}]}}"#,
        )
        .unwrap();
        let percents: Vec<Option<f64>> = g.achievementpercentages.achievements.iter().map(|a| a.percent).collect();
        assert_eq!(percents, [Some(12.5), Some(3.25), None, None, None, None], "each bad value refused alone");
    }

    #[test]
    fn retry_after_reads_seconds_or_an_http_date_and_is_held_to_a_bound() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(retry_after("600", now), Some(now + chrono::Duration::seconds(600)));
        assert_eq!(retry_after("Mon, 07 Dec 2026 12:30:00 GMT", now), Some(now + chrono::Duration::minutes(30)));
        assert_eq!(retry_after("-5", now), Some(now), "never in the past");
        assert_eq!(retry_after("99999999", now), Some(now + chrono::Duration::hours(6)));
        assert_eq!(retry_after("soon", now), None);
    }
}
