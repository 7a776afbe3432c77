//! Custom and shared achievements, with their images.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use diesel::prelude::*;
use serde_json::Value;

use super::context::{Run, TxError};
use super::source::{opt_text, parse_time, IMAGE_DIR};
use crate::achievements::model::{self as custom, NewCustomAchievement};
use crate::achievements::shared::model::{self as community, ImportedShare};
use crate::achievements::Condition;
use crate::images::{model as images, process, Processed, MAX_UPLOAD_BYTES};

/// Legacy counters of the shared achievements this run added, put back
/// after evaluation (which would count imported copies met today).
pub(crate) struct Restore {
    ids: Vec<i64>,
    tries: Vec<i32>,
    completions: Vec<i32>,
}

/// Images by file name: checked once, stored on first use.
struct ImageCache {
    checked: HashMap<String, Option<Arc<Processed>>>,
    /// Time spent checking and storing images (the report's steps).
    spent: std::time::Duration,
}

impl ImageCache {
    /// The processed image for `name`, or `None` (reported once) when it is
    /// missing, too large or not an image.
    fn get(&mut self, run: &mut Run<'_>, name: &str, src: &str) -> Option<Arc<Processed>> {
        if let Some(found) = self.checked.get(name) {
            return found.clone();
        }
        let result = check_image(&run.opts.dir, name);
        run.report.counts("images").read += 1;
        let out = match result {
            Ok(p) => {
                run.report.counts("images").imported += 1;
                Some(Arc::new(p))
            }
            Err(reason) => {
                run.report.skip(
                    "images",
                    format!("`{name}` not imported: {reason}; the achievement has no image"),
                    src,
                );
                None
            }
        };
        self.checked.insert(name.to_owned(), out.clone());
        out
    }
}

fn check_image(dir: &Path, name: &str) -> Result<Processed, String> {
    if name.contains('/') || name.contains('\\') || name == ".." || name == "." {
        return Err("not a plain file name".into());
    }
    let path = dir.join(IMAGE_DIR).join(name);
    let meta = std::fs::metadata(&path).map_err(|_| "the file is missing".to_owned())?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    if meta.len() > MAX_UPLOAD_BYTES as u64 {
        return Err("larger than the 5 MB upload limit".into());
    }
    let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
    process(&bytes).map_err(|e| e.to_string())
}

fn store_image(
    run: &mut Run<'_>,
    cache: &mut ImageCache,
    name: Option<String>,
    owner: Option<i64>,
    src: &str,
) -> Result<Option<i64>, TxError> {
    let Some(name) = name else { return Ok(None) };
    let started = std::time::Instant::now();
    let stored = store_checked(run, cache, &name, owner, src);
    cache.spent += started.elapsed();
    stored
}

fn store_checked(
    run: &mut Run<'_>,
    cache: &mut ImageCache,
    name: &str,
    owner: Option<i64>,
    src: &str,
) -> Result<Option<i64>, TxError> {
    let Some(p) = cache.get(run, name, src) else { return Ok(None) };
    if run.opts.dry_run {
        // Checked and counted; a dry run stores no file and no row.
        return Ok(None);
    }
    let storage = run.storage.clone();
    match images::store(run.conn, storage.as_ref(), owner, &p, None) {
        Ok(record) => Ok(Some(record.image.id)),
        Err(images::StoreError::Db(e)) => Err(e.into()),
        Err(e) => Err(TxError::Other(e.to_string())),
    }
}

/// A custom achievement read and checked, waiting for its batch.
struct PendingGoal {
    id: Option<i64>,
    owner: i64,
    name: String,
    description: String,
    kind: String,
    data: Value,
    needs_edit: bool,
    image: Option<i64>,
    imported_from: Option<i64>,
    created_at: chrono::DateTime<chrono::Utc>,
    legacy_id: String,
}

/// The condition, or the data kept as it was and marked for its owner.
fn condition(run: &mut Run<'_>, kind: &'static str, v: &Value, src: &str) -> (String, Value, bool) {
    let raw_kind = v.get("condition_type").and_then(Value::as_str).unwrap_or("").to_owned();
    let raw_data = v.get("condition_data").cloned().unwrap_or(Value::Null);
    match Condition::parse(&raw_kind, &raw_data) {
        Ok(c) => (c.kind().to_owned(), c.to_json(), false),
        Err(e) => {
            run.report.change(kind, format!("condition kept as it was and marked as needing an edit: {e}"), src);
            (raw_kind, raw_data, true)
        }
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn count(v: &Value, key: &str) -> i32 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0).clamp(0, i32::MAX as i64) as i32
}

/// A custom achievement's key: its legacy id, or its place in its
/// owner's list when it has none.
fn goal_key(username: &str, i: usize, v: &Value) -> String {
    opt_text(v.get("id")).unwrap_or_else(|| format!("{username}#{}", i + 1))
}

/// The goals of accounts from earlier runs that the directory brings
/// goals for, by (owner, legacy key): what is already present.
pub(crate) type KnownGoals = HashMap<(i64, String), i64>;

/// [`KnownGoals`] in one query.
pub(crate) fn known_goals(run: &mut Run<'_>, custom: &[(String, Vec<Value>)]) -> Result<KnownGoals, TxError> {
    let owners: Vec<i64> = custom
        .iter()
        .filter(|(u, _)| !run.new_users.contains(u))
        .filter_map(|(u, _)| run.user_ids.get(u).copied())
        .collect();
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(custom::legacy_ids_of(run.conn, &owners)?.into_iter().map(|(o, key, id)| ((o, key), id)).collect())
}

/// Accounts from earlier runs the directory brings goals for that they do
/// not hold yet, in id order.
pub(crate) fn bringing_new_goals(run: &Run<'_>, custom: &[(String, Vec<Value>)], known: &KnownGoals) -> Vec<i64> {
    let mut out: Vec<i64> = custom
        .iter()
        .filter(|(u, _)| !run.new_users.contains(u))
        .filter_map(|(u, list)| {
            let owner = *run.user_ids.get(u)?;
            list.iter().enumerate().any(|(i, v)| !known.contains_key(&(owner, goal_key(u, i, v)))).then_some(owner)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

pub(crate) fn import(
    run: &mut Run<'_>,
    custom: &[(String, Vec<Value>)],
    shared: &[Value],
    known: &KnownGoals,
) -> Result<Restore, TxError> {
    let mut cache = ImageCache { checked: HashMap::new(), spent: std::time::Duration::ZERO };
    let mut restore = Restore { ids: Vec::new(), tries: Vec::new(), completions: Vec::new() };

    // Shared achievements first: custom ones refer to them.
    let mut shared_ids: HashMap<String, i64> = community::ids_by_legacy_id(run.conn)?;
    // (community id, original_id, creator id) to link once customs exist.
    let mut links = Vec::new();
    for (i, v) in shared.iter().enumerate() {
        const KIND: &str = "shared_achievements";
        run.report.counts(KIND).read += 1;
        let Some(legacy_id) = opt_text(v.get("id")) else {
            run.report.skip(KIND, "no id", format!("shared_achievements.json: entry {}", i + 1));
            continue;
        };
        let src = format!("shared_achievements.json: {legacy_id}");
        if shared_ids.contains_key(&legacy_id) {
            run.report.counts(KIND).already_present += 1;
            continue;
        }
        let creator_name = opt_text(v.get("creator"));
        let creator = creator_name.as_ref().and_then(|c| run.user_ids.get(c).copied());
        if creator.is_none() {
            let who = creator_name.as_deref().unwrap_or("(none)");
            run.report.change(KIND, format!("creator `{who}` is not in users.json: shown as a deleted user"), &src);
        }
        let (kind, data, needs_edit) = condition(run, KIND, v, &src);
        let image = store_image(run, &mut cache, opt_text(v.get("image")), None, &src)?;
        let shared_at = opt_text(v.get("shared_at")).and_then(|t| parse_time(&t)).unwrap_or_else(chrono::Utc::now);
        let (tries, completions) = (count(v, "tries_count"), count(v, "completions_count"));
        let fresh = run.fresh_id();
        let id = community::insert_imported(
            run.conn,
            &ImportedShare {
                id: fresh,
                creator_id: creator,
                name: text(v, "name"),
                description: text(v, "description"),
                condition_type: kind.to_owned(),
                condition: data,
                needs_edit,
                image_id: image,
                tries_count: tries,
                completions_count: completions,
                shared_at,
                is_active: v.get("is_active").and_then(Value::as_bool).unwrap_or(true),
                legacy_id: legacy_id.clone(),
                import_run_id: run.run_id,
            },
        )?;
        restore.ids.push(id);
        restore.tries.push(tries);
        restore.completions.push(completions);
        shared_ids.insert(legacy_id.clone(), id);
        run.report.counts(KIND).imported += 1;
        links.push((id, opt_text(v.get("original_id")), creator, src));
    }

    // Custom achievements, owner by owner, inserted a thousand at a time.
    let mut custom_ids: HashMap<(i64, String), i64> = HashMap::new();
    let mut pending: Vec<PendingGoal> = Vec::new();
    let mut planned: std::collections::HashSet<(i64, String)> = std::collections::HashSet::new();
    for (username, list) in custom {
        const KIND: &str = "custom_achievements";
        let owner = run.user_ids.get(username).copied();
        for (i, v) in list.iter().enumerate() {
            run.report.counts(KIND).read += 1;
            let legacy_id = goal_key(username, i, v);
            let src = format!("custom_achievements.json: {username}/{legacy_id}");
            let Some(owner) = owner else {
                run.report.skip(KIND, format!("no user `{username}` in users.json"), src);
                continue;
            };
            if let Some(&id) = known.get(&(owner, legacy_id.clone())) {
                run.report.counts(KIND).already_present += 1;
                custom_ids.insert((owner, legacy_id), id);
                continue;
            }
            let key = (owner, legacy_id.clone());
            if custom_ids.contains_key(&key) || planned.contains(&key) {
                run.report.skip(KIND, "the same id appears twice for this user: kept the first", src);
                continue;
            }
            let (kind, data, needs_edit) = condition(run, KIND, v, &src);
            let imported_from = match opt_text(v.get("imported_from")) {
                None => None,
                Some(from) => match shared_ids.get(&from) {
                    Some(id) => Some(*id),
                    None => {
                        run.report.change(
                            KIND,
                            format!("imported_from `{from}` matches no shared achievement: cleared"),
                            &src,
                        );
                        None
                    }
                },
            };
            let image = store_image(run, &mut cache, opt_text(v.get("image")), Some(owner), &src)?;
            let created_at =
                opt_text(v.get("created_at")).and_then(|t| parse_time(&t)).unwrap_or_else(chrono::Utc::now);
            planned.insert(key);
            pending.push(PendingGoal {
                id: run.fresh_id(),
                owner,
                name: text(v, "name"),
                description: text(v, "description"),
                kind,
                data,
                needs_edit,
                image,
                imported_from,
                created_at,
                legacy_id,
            });
            run.report.counts(KIND).imported += 1;
        }
    }
    for chunk in pending.chunks(1000) {
        let rows: Vec<NewCustomAchievement<'_>> = chunk
            .iter()
            .map(|g| NewCustomAchievement {
                id: g.id,
                owner_id: g.owner,
                name: &g.name,
                description: &g.description,
                condition_type: &g.kind,
                condition: &g.data,
                needs_edit: g.needs_edit,
                image_id: g.image,
                imported_from: g.imported_from,
                created_at: Some(g.created_at),
                legacy_id: Some(&g.legacy_id),
                import_run_id: Some(run.run_id),
            })
            .collect();
        for (id, owner, legacy_id) in custom::insert_many(run.conn, &rows)? {
            custom_ids.insert((owner, legacy_id.unwrap_or_default()), id);
        }
    }

    // Link each new share to the achievement it was shared from.
    for (id, original, creator, src) in links {
        let Some(original) = original else { continue };
        let source = creator.and_then(|c| custom_ids.get(&(c, original.clone())).copied());
        let taken = match source {
            Some(s) => community::source_taken(run.conn, s)?,
            None => false,
        };
        match source {
            Some(s) if !taken => {
                community::link_source(run.conn, id, s)?;
            }
            _ => run.report.change(
                "shared_achievements",
                format!("original_id `{original}` matches no custom achievement of its creator: imported unlinked"),
                src,
            ),
        }
    }

    // Files nothing references are left alone, and counted.
    let referenced: std::collections::HashSet<String> = custom
        .iter()
        .flat_map(|(_, l)| l.iter())
        .chain(shared.iter())
        .filter_map(|v| opt_text(v.get("image")))
        .collect();
    // Images only present records use were imported by an earlier run.
    let mut earlier: Vec<&String> = referenced.iter().filter(|n| !cache.checked.contains_key(*n)).collect();
    earlier.sort();
    for name in earlier {
        run.report.counts("images").read += 1;
        match check_image(&run.opts.dir, name) {
            Ok(_) => run.report.counts("images").already_present += 1,
            Err(reason) => run.report.skip("images", format!("`{name}` not imported: {reason}"), IMAGE_DIR),
        }
    }
    run.report.unreferenced_images = std::fs::read_dir(run.opts.dir.join(IMAGE_DIR))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| !e.file_name().to_str().is_some_and(|n| referenced.contains(n)))
                .count() as u64
        })
        .unwrap_or(0);
    run.report.steps.push(("goals: images", cache.spent.as_secs_f64()));
    Ok(restore)
}

/// Puts back the legacy tries and completions counters.
pub(crate) fn restore_counts(conn: &mut PgConnection, r: &Restore) -> QueryResult<usize> {
    community::set_counts(conn, &r.ids, &r.tries, &r.completions)
}
