//! The achievement form: what the browser sends (multipart, for the image),
//! what the page shows again after a mistake, and the checks against the
//! user's own library.

use std::collections::HashSet;

use actix_multipart::form::bytes::Bytes as FileField;
use actix_multipart::form::text::Text;
use actix_multipart::form::MultipartForm;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text as SqlText};
use serde_json::{json, Map, Value};

use super::condition::{Condition, MAX_ACHIEVEMENTS, MAX_GAMES, MAX_PARTS};
use super::model::{AchievementInput, AchievementRow};
use crate::schema::{games, library_entries};

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 2000;

/// Each value once, in the order sent, and one more than `limit` at most:
/// enough for the form to say "too many", never a list as long as the
/// body one request may carry (75,000 values made one page cost a second).
fn bounded<T: Eq + std::hash::Hash + Clone>(values: impl IntoIterator<Item = T>, limit: usize) -> Vec<T> {
    let mut seen = HashSet::new();
    values.into_iter().filter(|v| seen.insert(v.clone())).take(limit + 1).collect()
}

/// The submitted form. Unknown fields (the CSRF token) are ignored here.
#[derive(MultipartForm)]
pub struct AchievementForm {
    pub name: Option<Text<String>>,
    pub description: Option<Text<String>>,
    pub condition_type: Option<Text<String>>,
    #[multipart(rename = "games")]
    pub games: Vec<Text<String>>,
    pub hours: Option<Text<String>>,
    pub count: Option<Text<String>>,
    pub percent: Option<Text<String>>,
    pub rarer_than: Option<Text<String>>,
    pub combine_mode: Option<Text<String>>,
    pub combine_n: Option<Text<String>>,
    #[multipart(rename = "parts")]
    pub parts: Vec<Text<String>>,
    #[multipart(rename = "achievements")]
    pub achievements: Vec<Text<String>>,
    /// Read up to the body limit, so a file over 5 MB gets the form back
    /// with a message rather than an error page.
    #[multipart(limit = "6 MiB")]
    pub image: Option<FileField>,
    pub remove_image: Option<Text<String>>,
}

/// The form's values as typed, to show them again.
#[derive(Debug, Clone, Default)]
pub struct FormValues {
    pub name: String,
    pub description: String,
    pub condition_type: String,
    pub games: Vec<i64>,
    pub hours: String,
    pub count: String,
    pub percent: String,
    pub achievements: Vec<String>,
    /// Rare achievements: the percentage they must be rarer than.
    pub rarer_than: String,
    /// Combined: `all`, `any` or `at_least`, with `n`, over the user's goals
    /// picked in `parts`.
    pub combine_mode: String,
    pub combine_n: String,
    pub parts: Vec<i64>,
    /// The picked goals' conditions (`{type, data}`), loaded by the service
    /// before [`FormValues::parse`]; a combined goal keeps copies, so it
    /// stands alone when exported or shared.
    pub part_conditions: Vec<Value>,
}

fn text(t: Option<Text<String>>) -> String {
    t.map(|t| t.into_inner()).unwrap_or_default()
}

impl FormValues {
    /// Splits the form into its values and the uploaded file, if any (an
    /// empty file input arrives as an empty part without a name).
    pub fn from_form(form: AchievementForm) -> (FormValues, Option<Vec<u8>>, bool) {
        let image = form.image.filter(|f| !f.data.is_empty()).map(|f| f.data.to_vec());
        let values = FormValues {
            name: text(form.name).trim().to_owned(),
            description: text(form.description).trim().to_owned(),
            condition_type: text(form.condition_type),
            games: bounded(form.games.into_iter().filter_map(|g| g.into_inner().trim().parse().ok()), MAX_GAMES),
            hours: text(form.hours).trim().to_owned(),
            count: text(form.count).trim().to_owned(),
            percent: text(form.percent).trim().to_owned(),
            achievements: bounded(form.achievements.into_iter().map(|a| a.into_inner()), MAX_ACHIEVEMENTS),
            rarer_than: text(form.rarer_than).trim().to_owned(),
            combine_mode: text(form.combine_mode),
            combine_n: text(form.combine_n).trim().to_owned(),
            parts: bounded(form.parts.into_iter().filter_map(|g| g.into_inner().trim().parse().ok()), MAX_PARTS),
            part_conditions: Vec::new(),
        };
        (values, image, form.remove_image.is_some())
    }

    /// The values typed so far, sent back by the form's "Show achievements"
    /// button; `None` when the query string carries no form.
    pub fn from_query(query: &str) -> Option<FormValues> {
        let mut v = FormValues::default();
        let mut any = false;
        for (k, val) in url::form_urlencoded::parse(query.as_bytes()) {
            any = true;
            let val = val.into_owned();
            match k.as_ref() {
                "name" => v.name = val,
                "description" => v.description = val,
                "condition_type" => v.condition_type = val,
                "games" => v.games.extend(val.trim().parse::<i64>().ok()),
                "hours" => v.hours = val,
                "count" => v.count = val,
                "percent" => v.percent = val,
                "achievements" => v.achievements.push(val),
                "rarer_than" => v.rarer_than = val,
                "combine_mode" => v.combine_mode = val,
                "combine_n" => v.combine_n = val,
                "parts" => v.parts.extend(val.trim().parse::<i64>().ok()),
                _ => {}
            }
        }
        v.games = bounded(v.games, MAX_GAMES);
        v.achievements = bounded(v.achievements, MAX_ACHIEVEMENTS);
        v.parts = bounded(v.parts, MAX_PARTS);
        any.then_some(v)
    }

    /// The values of a saved achievement, for its edit page.
    pub fn from_row(row: &AchievementRow) -> FormValues {
        let c = &row.condition;
        let num = |k: &str| c.get(k).map(|v| v.to_string().trim_matches('"').to_owned()).unwrap_or_default();
        let games = c
            .get("games")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|g| g.as_str().and_then(|s| s.parse().ok()).or(g.as_i64())).collect())
            .unwrap_or_default();
        let achievements: Vec<String> = c
            .get("achievements")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|a| {
                        let app = a.get("appid")?;
                        let app = app.as_str().map(str::to_owned).unwrap_or_else(|| app.to_string());
                        Some(format!("{app}:{}", a.get("api_name")?.as_str()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut games: Vec<i64> = games;
        games.extend(achievements.iter().filter_map(|a| a.split_once(':').and_then(|(g, _)| g.parse::<i64>().ok())));
        games.sort_unstable();
        games.dedup();
        let rare = row.condition_type == "rare_achievements";
        FormValues {
            name: row.name.clone(),
            description: row.description.clone(),
            condition_type: row.condition_type.clone(),
            games,
            hours: num("hours"),
            count: num("count"),
            percent: if rare { String::new() } else { num("percent") },
            achievements,
            rarer_than: if rare { num("percent") } else { String::new() },
            combine_mode: c.get("mode").and_then(Value::as_str).unwrap_or("").to_owned(),
            combine_n: num("n"),
            // The parts are copies: editing picks goals afresh.
            parts: Vec::new(),
            part_conditions: Vec::new(),
        }
    }

    /// Checks the values on their own; the library checks follow in
    /// [`check_ownership`].
    pub fn parse(&self) -> Result<AchievementInput, Vec<String>> {
        let mut errors = Vec::new();
        let name_len = self.name.chars().count();
        if name_len == 0 {
            errors.push("Give the achievement a name.".to_owned());
        } else if name_len > NAME_MAX {
            errors.push(format!("The name can be at most {NAME_MAX} characters."));
        }
        if self.name.chars().any(char::is_control) {
            errors.push("The name cannot contain control characters.".to_owned());
        }
        if self.description.chars().count() > DESCRIPTION_MAX {
            errors.push(format!("The description can be at most {DESCRIPTION_MAX} characters."));
        }
        if self.description.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            errors.push("The description cannot contain control characters other than line breaks.".to_owned());
        }
        let mut data = Map::new();
        let games: Vec<Value> = self.games.iter().map(|g| Value::from(g.to_string())).collect();
        if !games.is_empty() {
            data.insert("games".into(), Value::from(games));
        }
        let number = |raw: &str, what: &str, errors: &mut Vec<String>| -> Option<Value> {
            match raw.replace(',', ".").parse::<f64>() {
                Ok(n) if n.is_finite() => Some(json!(n)),
                _ => {
                    errors.push(format!("Enter the {what} as a number."));
                    None
                }
            }
        };
        match self.condition_type.as_str() {
            "playtime" => {
                if let Some(v) = number(&self.hours, "hours", &mut errors) {
                    data.insert("hours".into(), v);
                }
            }
            "achievement_count" => {
                if let Some(v) = number(&self.count, "number of achievements", &mut errors) {
                    data.insert("count".into(), v);
                }
            }
            "completion_rate" => {
                if let Some(v) = number(&self.percent, "percentage", &mut errors) {
                    data.insert("percent".into(), v);
                }
            }
            "rare_achievements" => {
                if let Some(v) = number(&self.count, "number of achievements", &mut errors) {
                    data.insert("count".into(), v);
                }
                if let Some(v) = number(&self.rarer_than, "rarity percentage", &mut errors) {
                    data.insert("percent".into(), v);
                }
            }
            "combined" => {
                data.remove("games");
                if self.part_conditions.len() < 2 {
                    errors.push("Pick at least two of your goals to combine.".to_owned());
                    return Err(errors);
                }
                data.insert("conditions".into(), Value::from(self.part_conditions.clone()));
                let mode = match self.combine_mode.as_str() {
                    "any" | "at_least" => self.combine_mode.as_str(),
                    _ => "all",
                };
                data.insert("mode".into(), json!(mode));
                if mode == "at_least" {
                    if let Some(v) = number(&self.combine_n, "number of goals to meet", &mut errors) {
                        data.insert("n".into(), v);
                    }
                }
            }
            "specific_achievements" => {
                data.remove("games");
                let picked: Vec<Value> = self
                    .achievements
                    .iter()
                    .filter_map(|a| a.split_once(':'))
                    .map(|(app, name)| json!({ "appid": app, "api_name": name }))
                    .collect();
                if picked.is_empty() {
                    errors.push(
                        "Pick the achievements: choose their games and press \"Show achievements\", then tick them."
                            .to_owned(),
                    );
                    return Err(errors);
                }
                data.insert("achievements".into(), Value::from(picked));
            }
            _ => {}
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let condition = Condition::parse(&self.condition_type, &Value::Object(data)).map_err(|e| {
            let mut e = e;
            if let Some(first) = e.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            errors.push(format!("{e}."));
            errors.clone()
        })?;
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AchievementInput { name: self.name.clone(), description: self.description.clone(), condition })
    }
}

/// A game the form offers.
#[derive(Debug, Clone, Queryable)]
pub struct GameOption {
    pub appid: i64,
    pub name: String,
}

/// An achievement the form offers, from the games picked.
#[derive(Debug, Clone, QueryableByName)]
pub struct AchievementOption {
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = SqlText)]
    pub api_name: String,
    #[diesel(sql_type = SqlText)]
    pub label: String,
}

impl AchievementOption {
    pub fn value(&self) -> String {
        format!("{}:{}", self.appid, self.api_name)
    }
}

/// The user's synced games, by name.
pub fn game_options(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<GameOption>> {
    library_entries::table
        .inner_join(games::table)
        .filter(library_entries::user_id.eq(user_id))
        .select((games::appid, games::name))
        .order((games::name.asc(), games::appid.asc()))
        .load(conn)
}

/// The achievements of the picked games that the user owns. A hidden
/// achievement the user has not unlocked keeps its secret here as on the
/// game page: its label says only that it is hidden, and it sorts last.
pub fn achievement_options(
    conn: &mut PgConnection,
    user_id: i64,
    appids: &[i64],
) -> QueryResult<Vec<AchievementOption>> {
    diesel::sql_query(
        "SELECT ga.appid, ga.api_name,
                g.name || ' — ' || CASE WHEN s.secret THEN 'Hidden achievement (unlock it to see its name)'
                                        ELSE ga.display_name END AS label
         FROM game_achievements ga
         JOIN games g ON g.appid = ga.appid
         JOIN library_entries le ON le.appid = ga.appid AND le.user_id = $1
         CROSS JOIN LATERAL (SELECT ga.hidden AND NOT EXISTS (
             SELECT 1 FROM user_achievements ua WHERE ua.user_id = $1 AND ua.achievement_id = ga.id) AS secret) s
         WHERE ga.appid = ANY($2) AND ga.removed_at IS NULL
         ORDER BY g.name, ga.appid, s.secret, CASE WHEN s.secret THEN '' ELSE ga.display_name END, ga.id",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Array<BigInt>, _>(appids)
    .load(conn)
}

/// Every game and achievement the condition names must be in the user's
/// synced library: the form only offers those, and the server does not
/// trust the form.
pub fn check_ownership(conn: &mut PgConnection, user_id: i64, condition: &Condition) -> QueryResult<Vec<String>> {
    let wanted = condition.appids();
    let owned: HashSet<i64> = library_entries::table
        .filter(library_entries::user_id.eq(user_id))
        .filter(library_entries::appid.eq_any(&wanted))
        .select(library_entries::appid)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut errors = Vec::new();
    if wanted.iter().any(|a| !owned.contains(a)) {
        errors.push("Pick games from your synced library.".to_owned());
    }
    let achievements = condition.achievements();
    if !achievements.is_empty() {
        let known: HashSet<(i64, String)> =
            achievement_options(conn, user_id, &wanted)?.into_iter().map(|o| (o.appid, o.api_name)).collect();
        if achievements.iter().any(|a| !known.contains(a)) {
            errors.push("Pick achievements from the games in your library.".to_owned());
        }
    }
    Ok(errors)
}
