//! The condition types of a custom achievement: the five of the legacy JSON
//! shape (FORMAT.md), plus two of Questline's own (rare achievements, and
//! conditions combined with all / any / N of), parsed strictly so that
//! evaluation in SQL can trust every stored condition that is not marked
//! as needing an edit.

use serde_json::{json, Map, Value};

/// Games one goal may list, in all its parts together: nobody picks 200
/// games by hand, and evaluating a goal costs a row per game.
pub const MAX_GAMES: usize = 100;
/// Specific achievements one goal may name, in all its parts together.
pub const MAX_ACHIEVEMENTS: usize = 200;

/// Parts of a combined condition at most.
pub const MAX_PARTS: usize = 10;

/// The condition types, in the order the form lists them.
pub const TYPES: [(&str, &str); 7] = [
    ("complete_games", "Complete games (every achievement)"),
    ("playtime", "Hours played"),
    ("achievement_count", "Number of achievements"),
    ("specific_achievements", "Specific achievements"),
    ("completion_rate", "Completion rate"),
    ("rare_achievements", "Rare achievements (a number of unlocks rarer than a percentage)"),
    ("combined", "Combine goals (all, any, or a number of them)"),
];

/// How a combined condition counts its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    All,
    Any,
    /// At least this many parts.
    AtLeast(usize),
}

/// A checked condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    CompleteGames {
        games: Vec<i64>,
    },
    Playtime {
        hours: f64,
        games: Option<Vec<i64>>,
    },
    AchievementCount {
        count: i64,
        games: Option<Vec<i64>>,
    },
    SpecificAchievements {
        achievements: Vec<(i64, String)>,
    },
    CompletionRate {
        percent: f64,
        games: Option<Vec<i64>>,
    },
    /// `count` unlocks of achievements fewer than `percent` % of players have.
    RareAchievements {
        count: i64,
        percent: f64,
        games: Option<Vec<i64>>,
    },
    /// Other conditions (none of them combined), met by `mode`.
    Combined {
        mode: Mode,
        parts: Vec<Condition>,
    },
}

/// The largest Steam app id: Steam numbers apps with 32 bits.
pub const MAX_APPID: i64 = u32::MAX as i64;

/// One rule for an app id, however it is written: a whole number from 1 to
/// [`MAX_APPID`], as a JSON number or a string of digits (the legacy
/// shape). Anything else (a sign, a fraction, an exponent, a number past
/// 32 bits) is refused the same way in both forms.
pub fn appid(v: &Value) -> Result<i64, String> {
    let digits = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) if n.is_u64() => return in_range(n.as_u64().and_then(|n| i64::try_from(n).ok()), v),
        _ => return Err(format!("{} is not a Steam app id", shown(v))),
    };
    let parsed = (!digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse::<i64>().ok())
        .flatten();
    in_range(parsed, v)
}

fn in_range(id: Option<i64>, v: &Value) -> Result<i64, String> {
    match id {
        Some(id) if (1..=MAX_APPID).contains(&id) => Ok(id),
        _ => Err(format!("{} is not a Steam app id", shown(v))),
    }
}

/// A value as an error message quotes it: short, and without control
/// characters (a NUL cannot even be stored).
fn shown(v: &Value) -> String {
    let text = v.to_string();
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(40).collect();
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// An achievement's API name as a goal may name it: 1 to 200 characters,
/// none of them a control character (Steam's are letters, digits and `_`).
fn api_name(v: Option<&Value>) -> Result<String, String> {
    match v.and_then(Value::as_str) {
        Some(name) if !name.is_empty() && name.chars().count() <= 200 && !name.chars().any(char::is_control) => {
            Ok(name.to_owned())
        }
        _ => Err("each achievement needs an `api_name` of 1 to 200 printable characters".to_owned()),
    }
}

fn games(data: &Map<String, Value>, required: bool) -> Result<Option<Vec<i64>>, String> {
    match data.get("games") {
        None if !required => Ok(None),
        None | Some(Value::Null) => Err("pick at least one game".into()),
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_GAMES => {
            let mut ids = list.iter().map(appid).collect::<Result<Vec<_>, _>>()?;
            ids.sort_unstable();
            ids.dedup();
            Ok(Some(ids))
        }
        Some(Value::Array(list)) if list.is_empty() => Err("pick at least one game".into()),
        Some(_) => Err(format!("`games` must be a list of at most {MAX_GAMES} app ids")),
    }
}

fn number(data: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<f64, String> {
    match data.get(key).and_then(Value::as_f64) {
        Some(n) if n.is_finite() && n >= min && n <= max => Ok(n),
        _ => Err(format!("`{key}` must be a number from {min} to {max}")),
    }
}

impl Condition {
    /// Parses a stored or submitted condition; the error says what is wrong.
    pub fn parse(kind: &str, data: &Value) -> Result<Condition, String> {
        let data = data.as_object().ok_or("the condition data is not an object")?;
        match kind {
            "complete_games" => Ok(Condition::CompleteGames { games: games(data, true)?.unwrap_or_default() }),
            "playtime" => {
                Ok(Condition::Playtime { hours: number(data, "hours", 0.1, 1_000_000.0)?, games: games(data, false)? })
            }
            "achievement_count" => {
                let count = number(data, "count", 1.0, 10_000_000.0)?;
                if count.fract() != 0.0 {
                    return Err("`count` must be a whole number".into());
                }
                Ok(Condition::AchievementCount { count: count as i64, games: games(data, false)? })
            }
            "completion_rate" => Ok(Condition::CompletionRate {
                percent: number(data, "percent", 0.1, 100.0)?,
                games: games(data, false)?,
            }),
            "rare_achievements" => {
                let count = number(data, "count", 1.0, 1_000_000.0)?;
                if count.fract() != 0.0 {
                    return Err("`count` must be a whole number".into());
                }
                Ok(Condition::RareAchievements {
                    count: count as i64,
                    percent: number(data, "percent", 0.01, 100.0)?,
                    games: games(data, false)?,
                })
            }
            "combined" => {
                let list = match data.get("conditions") {
                    Some(Value::Array(l)) if l.len() >= 2 && l.len() <= MAX_PARTS => l,
                    _ => return Err(format!("combine from 2 to {MAX_PARTS} conditions")),
                };
                let parts = list
                    .iter()
                    .map(|part| {
                        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                        if kind == "combined" {
                            return Err("a combined condition cannot hold another".to_owned());
                        }
                        let data = part.get("data").unwrap_or(&Value::Null);
                        Condition::parse(kind, data)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // The limits hold for the goal as a whole, not per part: ten
                // parts of 200 achievements each would cost ten times what
                // one goal may.
                let achievements: usize = parts.iter().map(|p| p.achievements().len()).sum();
                if achievements > MAX_ACHIEVEMENTS {
                    return Err(format!(
                        "its parts name {achievements} achievements; a goal may name at most {MAX_ACHIEVEMENTS} in all"
                    ));
                }
                let games: usize = parts.iter().map(Condition::listed_games).sum();
                if games > MAX_GAMES {
                    return Err(format!("its parts list {games} games; a goal may list at most {MAX_GAMES} in all"));
                }
                let mode = match data.get("mode").and_then(Value::as_str) {
                    Some("all") => Mode::All,
                    Some("any") => Mode::Any,
                    Some("at_least") => {
                        let n = number(data, "n", 1.0, parts.len() as f64)?;
                        if n.fract() != 0.0 {
                            return Err("`n` must be a whole number".into());
                        }
                        Mode::AtLeast(n as usize)
                    }
                    _ => return Err("`mode` must be all, any or at_least".into()),
                };
                Ok(Condition::Combined { mode, parts })
            }
            "specific_achievements" => {
                let list = match data.get("achievements") {
                    Some(Value::Array(l)) if !l.is_empty() && l.len() <= MAX_ACHIEVEMENTS => l,
                    _ => return Err(format!("pick from 1 to {MAX_ACHIEVEMENTS} achievements")),
                };
                let mut achievements = list
                    .iter()
                    .map(|a| {
                        let app = appid(a.get("appid").unwrap_or(&Value::Null))?;
                        Ok::<_, String>((app, api_name(a.get("api_name"))?))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                achievements.sort();
                achievements.dedup();
                Ok(Condition::SpecificAchievements { achievements })
            }
            other => Err(format!("unknown condition type `{other}`")),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Condition::CompleteGames { .. } => "complete_games",
            Condition::Playtime { .. } => "playtime",
            Condition::AchievementCount { .. } => "achievement_count",
            Condition::SpecificAchievements { .. } => "specific_achievements",
            Condition::CompletionRate { .. } => "completion_rate",
            Condition::RareAchievements { .. } => "rare_achievements",
            Condition::Combined { .. } => "combined",
        }
    }

    /// The stored shape: app ids as strings, as the legacy app wrote them.
    pub fn to_json(&self) -> Value {
        let ids = |g: &[i64]| Value::from(g.iter().map(|id| id.to_string()).collect::<Vec<_>>());
        let with_games = |mut v: Value, g: &Option<Vec<i64>>| {
            if let Some(g) = g {
                v["games"] = ids(g);
            }
            v
        };
        match self {
            Condition::CompleteGames { games } => json!({ "games": ids(games) }),
            Condition::Playtime { hours, games } => with_games(json!({ "hours": hours }), games),
            Condition::AchievementCount { count, games } => with_games(json!({ "count": count }), games),
            Condition::CompletionRate { percent, games } => with_games(json!({ "percent": percent }), games),
            Condition::SpecificAchievements { achievements } => json!({
                "achievements": achievements.iter()
                    .map(|(a, n)| json!({ "appid": a.to_string(), "api_name": n }))
                    .collect::<Vec<_>>()
            }),
            Condition::RareAchievements { count, percent, games } => {
                with_games(json!({ "count": count, "percent": percent }), games)
            }
            Condition::Combined { mode, parts } => {
                let mut v = json!({
                    "conditions": parts.iter().map(|p| json!({ "type": p.kind(), "data": p.to_json() })).collect::<Vec<_>>(),
                });
                match mode {
                    Mode::All => v["mode"] = json!("all"),
                    Mode::Any => v["mode"] = json!("any"),
                    Mode::AtLeast(n) => {
                        v["mode"] = json!("at_least");
                        v["n"] = json!(n);
                    }
                }
                v
            }
        }
    }

    /// The condition in one sentence: "Play 100 hours in 1 game".
    pub fn describe(&self) -> String {
        let scope = |g: &Option<Vec<i64>>| match g {
            Some(g) if g.len() == 1 => " in 1 game".to_owned(),
            Some(g) => format!(" in {} games", g.len()),
            None => " over all games".to_owned(),
        };
        match self {
            Condition::CompleteGames { games } if games.len() == 1 => "Complete every achievement of 1 game".into(),
            Condition::CompleteGames { games } => format!("Complete every achievement of {} games", games.len()),
            Condition::Playtime { hours, games } => format!("Play {} hours{}", trim(*hours), scope(games)),
            Condition::AchievementCount { count, games } => format!("Unlock {}{}", plural(*count), scope(games)),
            Condition::SpecificAchievements { achievements } => {
                format!("Unlock {} chosen achievement(s)", achievements.len())
            }
            Condition::CompletionRate { percent, games } => {
                format!("Reach {}% completion{}", trim(*percent), scope(games))
            }
            Condition::RareAchievements { count, percent, games } => {
                format!("Unlock {} rarer than {}%{}", plural(*count), trim(*percent), scope(games))
            }
            Condition::Combined { mode, parts } => {
                let head = match mode {
                    Mode::All => "All of".to_owned(),
                    Mode::Any => "Any of".to_owned(),
                    Mode::AtLeast(n) => format!("At least {n} of"),
                };
                let list: Vec<String> = parts.iter().map(|p| p.describe().to_lowercase()).collect();
                format!("{head}: {}", list.join("; "))
            }
        }
    }

    /// Every achievement the condition names, by game and API name.
    pub fn achievements(&self) -> Vec<(i64, String)> {
        match self {
            Condition::SpecificAchievements { achievements } => achievements.clone(),
            Condition::Combined { parts, .. } => parts.iter().flat_map(Condition::achievements).collect(),
            _ => Vec::new(),
        }
    }

    /// How many games the condition lists (its `games`; 0 for "all games").
    fn listed_games(&self) -> usize {
        match self {
            Condition::CompleteGames { games } => games.len(),
            Condition::Playtime { games, .. }
            | Condition::AchievementCount { games, .. }
            | Condition::CompletionRate { games, .. }
            | Condition::RareAchievements { games, .. } => games.as_ref().map_or(0, Vec::len),
            Condition::SpecificAchievements { .. } => 0,
            Condition::Combined { parts, .. } => parts.iter().map(Condition::listed_games).sum(),
        }
    }

    /// Every game the condition names (empty when it means "all games").
    pub fn appids(&self) -> Vec<i64> {
        let mut ids = match self {
            Condition::CompleteGames { games } => games.clone(),
            Condition::Playtime { games, .. }
            | Condition::AchievementCount { games, .. }
            | Condition::CompletionRate { games, .. }
            | Condition::RareAchievements { games, .. } => games.clone().unwrap_or_default(),
            Condition::SpecificAchievements { achievements } => achievements.iter().map(|(a, _)| *a).collect(),
            Condition::Combined { parts, .. } => parts.iter().flat_map(Condition::appids).collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// How far along an achievement is, in words: "61/80 achievements",
/// "72 of 100 hours", "43% of 60%".
pub fn describe_progress(kind: &str, current: f64, target: f64) -> String {
    // Past the goal is the goal met: "100 of 100 hours", never "175 of 100".
    let current = if target > 0.0 { current.min(target) } else { current };
    match kind {
        "playtime" => format!("{} of {} hours", trim(current.floor()), trim(target)),
        "completion_rate" => format!("{}% of {}%", trim((current * 10.0).floor() / 10.0), trim(target)),
        "rare_achievements" => format!("{}/{} rare achievements", current as i64, target as i64),
        "combined" => format!("{} of {} conditions met", current as i64, target as i64),
        _ => format!("{}/{} achievements", current as i64, target as i64),
    }
}

/// The fraction done, 0 to 100, for a progress bar.
pub fn percent_done(current: f64, target: f64) -> u32 {
    if target <= 0.0 {
        0
    } else {
        ((current / target) * 100.0).clamp(0.0, 100.0).floor() as u32
    }
}

/// "1 achievement", "10 achievements".
fn plural(n: i64) -> String {
    if n == 1 {
        "1 achievement".to_owned()
    } else {
        format!("{n} achievements")
    }
}

fn trim(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        format!("{n:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_never_reads_past_the_goal() {
        assert_eq!(describe_progress("playtime", 175.0, 100.0), "100 of 100 hours");
        assert_eq!(describe_progress("specific_achievements", 500.0, 5.0), "5/5 achievements");
        assert_eq!(describe_progress("completion_rate", 92.3, 60.0), "60% of 60%");
        assert_eq!(describe_progress("playtime", 12.6, 100.0), "12 of 100 hours");
        assert_eq!(percent_done(175.0, 100.0), 100);
    }

    #[test]
    fn every_legacy_example_parses_and_round_trips() {
        let cases = [
            ("complete_games", json!({"games": ["400", "620"]})),
            ("playtime", json!({"hours": 100})),
            ("playtime", json!({"hours": 2.5, "games": ["570"]})),
            ("achievement_count", json!({"count": 80, "games": ["400"]})),
            ("specific_achievements", json!({"achievements": [{"appid": "400", "api_name": "PORTAL_BEAT_GAME"}]})),
            ("completion_rate", json!({"percent": 60})),
            ("rare_achievements", json!({"count": 10, "percent": 5})),
            ("rare_achievements", json!({"count": 1, "percent": 0.5, "games": ["400"]})),
            (
                "combined",
                json!({"mode": "at_least", "n": 2, "conditions": [
                    {"type": "playtime", "data": {"hours": 100, "games": ["570"]}},
                    {"type": "complete_games", "data": {"games": ["400", "620"]}},
                    {"type": "rare_achievements", "data": {"count": 10, "percent": 5}},
                ]}),
            ),
            (
                "combined",
                json!({"mode": "any", "conditions": [
                    {"type": "playtime", "data": {"hours": 1}}, {"type": "completion_rate", "data": {"percent": 50}},
                ]}),
            ),
        ];
        for (kind, data) in cases {
            let c = Condition::parse(kind, &data).unwrap_or_else(|e| panic!("{kind} {data}: {e}"));
            assert_eq!(c.kind(), kind);
            assert_eq!(Condition::parse(kind, &c.to_json()).unwrap(), c);
        }
    }

    #[test]
    fn data_that_does_not_fit_its_type_is_refused_with_a_reason() {
        let bad = [
            ("complete_games", json!({})),
            ("complete_games", json!({"games": []})),
            ("complete_games", json!({"games": ["portal"]})),
            ("playtime", json!({"hours": "lots"})),
            ("playtime", json!({"hours": -1})),
            ("achievement_count", json!({"count": 2.5})),
            ("completion_rate", json!({"percent": 150})),
            ("specific_achievements", json!({"achievements": [{"appid": "400"}]})),
            ("speedrun", json!({"minutes": 5})),
            ("playtime", json!(["hours", 5])),
            ("rare_achievements", json!({"count": 3})),
            ("combined", json!({"mode": "all", "conditions": [{"type": "playtime", "data": {"hours": 1}}]})),
            (
                "combined",
                json!({"mode": "at_least", "n": 3, "conditions": [
                {"type": "playtime", "data": {"hours": 1}}, {"type": "playtime", "data": {"hours": 2}}]}),
            ),
            (
                "combined",
                json!({"mode": "all", "conditions": [
                {"type": "playtime", "data": {"hours": 1}},
                {"type": "combined", "data": {"mode": "any", "conditions": []}}]}),
            ),
        ];
        for (kind, data) in bad {
            assert!(Condition::parse(kind, &data).is_err(), "{kind} {data} should be refused");
        }
    }

    #[test]
    fn progress_reads_as_the_issue_describes() {
        assert_eq!(describe_progress("achievement_count", 61.0, 80.0), "61/80 achievements");
        assert_eq!(describe_progress("playtime", 72.4, 100.0), "72 of 100 hours");
        assert_eq!(describe_progress("completion_rate", 43.46, 60.0), "43.4% of 60%");
        assert_eq!(percent_done(72.0, 100.0), 72);
        assert_eq!(percent_done(5.0, 0.0), 0);
        assert_eq!(percent_done(150.0, 100.0), 100);
    }

    #[test]
    fn an_app_id_follows_one_rule_whether_written_as_a_number_or_a_string() {
        for ok in [json!(400), json!("400"), json!(4_294_967_295u64), json!("4294967295")] {
            assert!(appid(&ok).is_ok(), "{ok} is an app id");
        }
        for bad in [
            json!(0),
            json!("0"),
            json!(-5),
            json!(4_294_967_296u64),
            json!("4294967296"),
            json!(9_223_372_036_854_775_807u64),
            json!("9223372036854775807"),
            json!(400.5),
            json!("4e2"),
            json!(" 400"),
            json!(null),
        ] {
            assert!(appid(&bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn a_combined_goal_is_held_to_the_limits_as_a_whole() {
        let part = |n: usize| {
            let list: Vec<Value> = (0..n).map(|i| json!({"appid": "400", "api_name": format!("A{i}")})).collect();
            json!({"type": "specific_achievements", "data": {"achievements": list}})
        };
        let within = json!({"mode": "all", "conditions": [part(100), part(100)]});
        assert!(Condition::parse("combined", &within).is_ok());
        let past = json!({"mode": "all", "conditions": [part(200), part(200)]});
        let e = Condition::parse("combined", &past).unwrap_err();
        assert!(e.contains("at most 200"), "{e}");
        let games = |n: usize| json!({"type": "complete_games", "data": {"games": (1..=n).map(|g| g.to_string()).collect::<Vec<_>>()}});
        let many = json!({"mode": "any", "conditions": [games(60), games(60)]});
        assert!(Condition::parse("combined", &many).unwrap_err().contains("at most 100"));
    }

    #[test]
    fn api_names_with_control_characters_are_refused_not_stored() {
        let with = |name: &str| json!({"achievements": [{"appid": "400", "api_name": name}]});
        assert!(Condition::parse("specific_achievements", &with("ACH_WIN")).is_ok());
        for bad in ["A\u{0}B", "\u{0}", "line\nbreak", ""] {
            let e = Condition::parse("specific_achievements", &with(bad)).unwrap_err();
            assert!(e.contains("printable"), "{bad:?}: {e}");
        }
    }
}
