//! Goal files: a goal as versioned JSON, to carry it to another Questline
//! instance. Export writes the condition plus the names of the games and
//! achievements it names (for a human and for the importer); import reads
//! strictly and checks against what this instance knows.

use chrono::Utc;
use diesel::prelude::*;
use serde_json::{json, Value};

use super::condition::Condition;
use super::form::{DESCRIPTION_MAX, NAME_MAX};
use super::model::{self, NewCustomAchievement};
use crate::audit::{AuditEvent, RequestMeta};
use crate::db;
use crate::error::AppError;
use crate::models::game;

/// `format` of a goal file.
pub const FORMAT: &str = "questline-goal";
/// Raised when a field changes meaning; older files stay readable.
pub const VERSION: u64 = 1;
/// Goal files larger than this are refused.
const MAX_BYTES: usize = 256 * 1024;

/// The goal `id` of `owner` as a goal file.
pub fn export(conn: &mut PgConnection, owner: i64, id: i64, source: &str) -> Result<(String, Value), AppError> {
    let row = model::find_owned(conn, id, owner)?.ok_or(AppError::NotFound)?;
    let condition =
        row.parsed().ok_or_else(|| AppError::BadRequest("Fix this goal's condition before exporting it.".into()))?;
    let names = game::game_names(conn, &condition.appids())?;
    let achievements = condition.achievements();
    let ach_names = game::achievement_names(conn, &achievements)?;
    let doc = json!({
        "format": FORMAT,
        "version": VERSION,
        "exported_at": Utc::now(),
        "source": source,
        "name": row.name,
        "description": row.description,
        "condition_type": condition.kind(),
        "condition": condition.to_json(),
        "games": condition.appids().iter().map(|a| json!({ "appid": a, "name": names.get(a) })).collect::<Vec<_>>(),
        "achievements": achievements.iter().map(|(a, n)| json!({
            "appid": a, "api_name": n, "name": ach_names.get(&(*a, n.clone())),
        })).collect::<Vec<_>>(),
    });
    let slug: String = row
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    Ok((format!("{}.questline-goal.json", if slug.is_empty() { "goal" } else { &slug }), doc))
}

/// A goal file read and checked, before it is stored.
#[derive(Debug)]
pub struct Incoming {
    pub name: String,
    pub description: String,
    pub condition: Condition,
}

/// Reads a goal file; the error says what is wrong with it.
pub fn read(bytes: &[u8]) -> Result<Incoming, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!("The file is larger than {} KB: it is not a goal file.", MAX_BYTES / 1024));
    }
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("The file is not valid JSON ({e})."))?;
    if doc.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err("This is not a Questline goal file (its `format` is not \"questline-goal\").".into());
    }
    match doc.get("version").and_then(Value::as_u64) {
        Some(v) if (1..=VERSION).contains(&v) => {}
        Some(v) => return Err(format!("This goal file is version {v}; this Questline reads up to version {VERSION}.")),
        None => return Err("The goal file has no `version`.".into()),
    }
    let name = doc.get("name").and_then(Value::as_str).unwrap_or("").trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(format!("The goal needs a name of 1 to {NAME_MAX} characters."));
    }
    // A JSON escape such as \u0000 decodes to a character no page shows
    // and PostgreSQL cannot even store: refused by name, like a raw NUL.
    if name.chars().any(char::is_control) {
        return Err("The goal's name contains a control character (such as \\u0000); remove it.".into());
    }
    let description = doc.get("description").and_then(Value::as_str).unwrap_or("").trim().to_owned();
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(format!("The description is longer than {DESCRIPTION_MAX} characters."));
    }
    if description.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err("The description contains a control character (such as \\u0000); remove it.".into());
    }
    let kind = doc.get("condition_type").and_then(Value::as_str).unwrap_or("");
    let condition = Condition::parse(kind, doc.get("condition").unwrap_or(&Value::Null))
        .map_err(|e| format!("The goal's condition cannot be used: {e}."))?;
    Ok(Incoming { name, description, condition })
}

/// What importing found about the games and achievements the goal names.
#[derive(Debug, Default)]
pub struct Checked {
    pub id: i64,
    /// Games this instance has never seen (no one here owns them yet).
    pub unknown_games: Vec<i64>,
    /// Achievements this instance does not know, as `appid/api_name`.
    pub unknown_achievements: Vec<String>,
}

/// What storing an imported goal came to.
#[derive(Debug)]
pub enum Stored {
    Imported(Checked),
    /// The account already keeps as many goals as it may.
    Full,
}

/// Stores an imported goal for `owner`, unless they keep `limit` goals
/// already, and evaluates it (it alone: the other goals did not change).
fn store(conn: &mut PgConnection, owner: i64, incoming: &Incoming, limit: i64) -> Result<Stored, AppError> {
    if !model::has_room(conn, owner, 1, limit)? {
        return Ok(Stored::Full);
    }
    let appids = incoming.condition.appids();
    let known_games = game::game_names(conn, &appids)?;
    let achievements = incoming.condition.achievements();
    let known_achievements = game::achievement_names(conn, &achievements)?;
    let condition = incoming.condition.to_json();
    let id = model::insert(
        conn,
        &NewCustomAchievement {
            owner_id: owner,
            name: &incoming.name,
            description: &incoming.description,
            condition_type: incoming.condition.kind(),
            condition: &condition,
            needs_edit: false,
            image_id: None,
            imported_from: None,
            created_at: None,
            legacy_id: None,
            import_run_id: None,
            id: None,
        },
    )?;
    model::evaluate_goals(conn, owner, &[id])?;
    Ok(Stored::Imported(Checked {
        id,
        unknown_games: appids.into_iter().filter(|a| !known_games.contains_key(a)).collect(),
        unknown_achievements: achievements
            .into_iter()
            .filter(|k| !known_achievements.contains_key(k))
            .map(|(a, n)| format!("{a}/{n}"))
            .collect(),
    }))
}

/// Stores goal file `incoming` for `owner` (unless they keep `limit` goals
/// already), evaluates it and audits it, in one transaction.
pub async fn import(
    pool: &db::PgPool,
    owner: i64,
    incoming: Incoming,
    limit: i64,
    meta: &RequestMeta,
) -> Result<Stored, AppError> {
    let meta = meta.clone();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let stored = store(conn, owner, &incoming, limit)?;
            if let Stored::Imported(checked) = &stored {
                AuditEvent::new("achievement", "import_file", &meta)
                    .actor(owner)
                    .target_text(checked.id.to_string())
                    .record(conn)?;
            }
            Ok(stored)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_files_are_read_strictly_with_a_reason_for_each_refusal() {
        let ok = json!({"format": "questline-goal", "version": 1, "name": "Both Portals",
            "condition_type": "complete_games", "condition": {"games": ["400", "620"]}});
        let read_ok = read(ok.to_string().as_bytes()).unwrap();
        assert_eq!(read_ok.condition.appids(), [400, 620]);
        let cases = [
            (b"not json".to_vec(), "not valid JSON"),
            (json!({"format": "other"}).to_string().into_bytes(), "not a Questline goal file"),
            (json!({"format": "questline-goal", "version": 9}).to_string().into_bytes(), "version 9"),
            (json!({"format": "questline-goal", "version": 1, "name": ""}).to_string().into_bytes(), "needs a name"),
            (
                json!({"format": "questline-goal", "version": 1, "name": "x", "condition_type": "playtime",
                       "condition": {"hours": -5}})
                .to_string()
                .into_bytes(),
                "cannot be used",
            ),
            (vec![b' '; MAX_BYTES + 1], "larger than"),
        ];
        for (bytes, why) in cases {
            let e = read(&bytes).unwrap_err();
            assert!(e.contains(why), "{e} should say {why}");
        }
    }
}
