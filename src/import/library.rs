//! The per-user library files: games, their achievements, playtime and
//! unlocks. Read twice, streaming: a scan for games (and every report line)
//! before the transaction, then the user's rows, copied in large batches.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::DateTime;
use diesel::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use super::context::{Loading, Run, TxError};
use super::report::Report;
use super::source::{read_library, CsvFile, LegacyUser};
use crate::models::game::{Game, GameAchievement, ImportedDefinitions};
use crate::models::library::{self, EntryRow, UnlockRow};

/// Rows buffered before a COPY.
const UNLOCK_BATCH: usize = 200_000;
const ENTRY_BATCH: usize = 20_000;

/// What the scan learnt.
#[derive(Debug, Default)]
pub struct Scan {
    /// Per appid: each name and how many files use it.
    names: HashMap<i64, HashMap<String, u32>>,
    /// Per appid: api_name → (display name, description), first seen.
    defs: HashMap<i64, BTreeMap<String, (String, String)>>,
    /// Per file (same order as the listing): (games, distinct
    /// achievements), or `None` for a file that is not imported.
    per_file: Vec<Option<(u64, u64)>>,
}

pub(crate) fn progress(show: bool, total: u64, what: &'static str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:40}] {bytes}/{total_bytes} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}

/// Threads that parse library files (the second pass leaves a core to
/// PostgreSQL's COPY).
const READERS: usize = 2;

/// First pass, before any write: reads every file once (on two threads,
/// each a contiguous half, merged in file order), counts, and notes every
/// skip and change.
pub fn scan(files: &[CsvFile], users: &[LegacyUser], report: &mut Report, show: bool) -> Scan {
    let known: HashSet<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let bar = progress(show, files.iter().map(|f| f.size).sum(), "checking files");
    let half = files.len().div_ceil(READERS).max(1);
    let parts: Vec<(Scan, Report)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files.chunks(half).map(|part| scope.spawn(|| scan_part(part, &known, &bar))).collect();
        // A panic in a reader is a bug: it surfaces here as one.
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    bar.finish_and_clear();
    let mut scan = Scan::default();
    for (part, events) in parts {
        report.absorb(events);
        for (appid, votes) in part.names {
            let mine = scan.names.entry(appid).or_default();
            for (name, n) in votes {
                *mine.entry(name).or_default() += n;
            }
        }
        for (appid, defs) in part.defs {
            let mine = scan.defs.entry(appid).or_default();
            for (api, def) in defs {
                // The first file to name it, in file order.
                mine.entry(api).or_insert(def);
            }
        }
        scan.per_file.extend(part.per_file);
    }
    report.counts("games").read += scan.names.len() as u64;
    scan
}

/// [`scan`] of consecutive files, with a report of their own.
fn scan_part(files: &[CsvFile], known: &HashSet<&str>, bar: &ProgressBar) -> (Scan, Report) {
    let mut report = Report::default();
    let mut scan = Scan::default();
    for f in files {
        bar.inc(f.size);
        if !known.contains(f.username.as_str()) {
            report.skip("library_entries", format!("no user `{}` in users.json", f.username), &f.file_name);
            scan.per_file.push(None);
            continue;
        }
        let lib = match read_library(&f.path) {
            Ok(lib) => lib,
            Err(reason) => {
                report.skip("library_entries", format!("file not imported: {reason}"), &f.file_name);
                scan.per_file.push(None);
                continue;
            }
        };
        for (line, reason) in &lib.skipped {
            report.skip("library_entries", reason.clone(), format!("{}:{line}", f.file_name));
        }
        for (line, _, what) in &lib.game_merges {
            report.change("library_entries", what.clone(), format!("{}:{line}", f.file_name));
        }
        for (line, appid, api) in &lib.duplicates {
            report.skip(
                "achievements",
                format!("duplicate of ({appid}, {api}): kept one, unlocked if either was, earliest unlock time"),
                format!("{}:{line}", f.file_name),
            );
        }
        let mut distinct = 0;
        let games = lib.games.len() as u64;
        for (appid, game) in lib.games {
            *scan.names.entry(appid).or_default().entry(game.name).or_default() += 1;
            let defs = scan.defs.entry(appid).or_default();
            distinct += game.achievements.len() as u64;
            for (api, a) in game.achievements {
                defs.entry(api).or_insert((a.display_name, a.description));
            }
        }
        report.counts("library_entries").read += games;
        report.counts("achievements").read += lib.achievement_rows;
        scan.per_file.push(Some((games, distinct)));
    }
    (scan, report)
}

/// The name most files use; ties go to the first in byte order.
fn majority(names: &HashMap<String, u32>) -> (&str, Vec<&str>) {
    let mut all: Vec<(&String, &u32)> = names.iter().collect();
    all.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    (all[0].0, all[1..].iter().map(|(n, _)| n.as_str()).collect())
}

/// The definitions the rows refer to: id by (appid, api_name), and the
/// ids that existed before this run.
pub(crate) struct Definitions {
    ids: HashMap<i64, HashMap<String, i64>>,
    before: HashSet<i64>,
}

/// Games and achievement definitions Questline lacks; returns every
/// definition's id and the games whose achievement count this run changed.
pub(crate) fn import_games(run: &mut Run<'_>, scan: &Scan) -> Result<(Definitions, Vec<i64>), TxError> {
    // Games: the ones Questline lacks are added under the majority name.
    let appids: Vec<i64> = scan.names.keys().copied().collect();
    let present: HashSet<i64> = crate::schema::games::table
        .filter(crate::schema::games::appid.eq_any(&appids))
        .select(crate::schema::games::appid)
        .load::<i64>(run.conn)?
        .into_iter()
        .collect();
    let (mut ids, mut names) = (Vec::new(), Vec::new());
    let mut sorted: Vec<_> = scan.names.iter().collect();
    sorted.sort_by_key(|(a, _)| **a);
    for (appid, votes) in sorted {
        if present.contains(appid) {
            run.report.counts("games").already_present += 1;
            continue;
        }
        let (name, others) = majority(votes);
        if !others.is_empty() {
            run.report.change(
                "games",
                format!("named `{name}`, the name most files use; also seen as {}", others.join(", ")),
                format!("appid {appid}"),
            );
        }
        ids.push(*appid);
        names.push(name.to_owned());
    }
    Game::insert_imported(run.conn, &ids, &names, run.run_id)?;
    run.report.counts("games").imported += ids.len() as u64;

    // Achievement definitions Questline lacks, then every id at once.
    let (mut d_app, mut d_api, mut d_name, mut d_desc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // In one order every time: the same directory gets the same ids.
    let mut by_game: Vec<_> = scan.defs.iter().collect();
    by_game.sort_unstable_by_key(|(appid, _)| **appid);
    for (appid, defs) in by_game {
        for (api, (name, desc)) in defs {
            d_app.push(*appid);
            d_api.push(api.clone());
            d_name.push(name.clone());
            d_desc.push(desc.clone());
        }
    }
    let before: HashSet<i64> = GameAchievement::ids_of(run.conn, &appids)?.into_iter().map(|d| d.id).collect();
    let d_ids = run.fresh_ids(d_app.len());
    let defs =
        ImportedDefinitions { ids: &d_ids, appids: &d_app, api_names: &d_api, names: &d_name, descriptions: &d_desc };
    GameAchievement::insert_imported(run.conn, &defs, run.run_id)?;
    // Games that existed before this run keep what they were in
    // `import_game_counts`, so a rollback can put it back exactly.
    super::model::record_game_counts(run.conn, &appids, run.run_id)?;
    Game::recount_achievements(run.conn, &appids)?;
    let changed = super::model::changed_games(run.conn, run.run_id)?;
    let mut ids: HashMap<i64, HashMap<String, i64>> = HashMap::new();
    for d in GameAchievement::ids_of(run.conn, &appids)? {
        ids.entry(d.appid).or_default().insert(d.api_name, d.id);
    }
    Ok((Definitions { ids, before }, changed))
}

/// The tables a large run loads without their indexes and foreign keys.
const BULK_TABLES: [&str; 2] = ["user_achievements", "library_entries"];

/// Below this many rows, index maintenance costs less than a rebuild.
const BULK_MIN_ROWS: u64 = 200_000;

/// How long a run waits for the tables' lock before it loads row by row.
const BULK_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Files parsed ahead of the rows being copied.
const READ_AHEAD: usize = 8;

/// Accounts from earlier runs looked up (and their rows kept in the undo
/// log) together: at most this many, with at most about
/// [`EARLIER_BATCH_ROWS`] achievements between them (what a batch holds
/// in memory).
const EARLIER_BATCH: usize = 500;
const EARLIER_BATCH_ROWS: u64 = 200_000;

/// The users' own rows, file by file, copied in large batches, the files
/// read on other threads while the rows before them are copied.
///
/// Accounts from earlier runs come first, while the tables have their
/// indexes, in batches in the order of their ids (the order every writer
/// locks accounts in): a user from an earlier run gets what that run did
/// not write (games it skipped, and unlocks of rows it skipped), which
/// means looking up what they hold, and keeping the images of the rows of
/// those it changes in the undo log before changing them. The new
/// accounts' rows follow, loaded in bulk (see [`crate::db::bulk`]) when
/// they are at least four times as many as the unlocks already stored: an
/// instance's first import.
pub(crate) fn import_rows(
    run: &mut Run<'_>,
    files: &[CsvFile],
    scan: &Scan,
    defs: &Definitions,
) -> Result<(), TxError> {
    let total: u64 = files.iter().zip(&scan.per_file).filter(|(_, s)| s.is_some()).map(|(f, _)| f.size).sum();
    let bar = progress(run.opts.progress, total, "importing libraries");
    let (mut earlier, new): (Vec<_>, Vec<_>) = files
        .iter()
        .zip(&scan.per_file)
        .filter_map(|(f, s)| s.map(|(games, distinct)| (f, games, distinct)))
        .partition(|(f, ..)| run.user_ids.contains_key(&f.username) && !run.new_users.contains(&f.username));
    earlier.sort_by_key(|(f, ..)| run.user_ids[&f.username]);
    let incoming: u64 =
        new.iter().filter(|(f, ..)| run.user_ids.contains_key(&f.username)).map(|(.., distinct)| distinct).sum();
    let order: Vec<&CsvFile> = earlier.iter().chain(&new).map(|(f, ..)| *f).collect();
    let mut load = Load::default();
    std::thread::scope(|scope| -> Result<(), TxError> {
        // Reader k parses files k, k + READERS, …; taking from each in
        // turn gives the files back in order.
        let readers: Vec<_> = (0..READERS)
            .map(|k| {
                let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD);
                let mine: Vec<&CsvFile> = order.iter().skip(k).step_by(READERS).copied().collect();
                // Ends when its files are read, or at the first send after
                // the receiver is gone (this run failed).
                scope.spawn(move || {
                    for f in mine {
                        if tx.send(read_library(&f.path)).is_err() {
                            break;
                        }
                    }
                });
                rx
            })
            .collect();
        let mut turn = 0;
        let mut next = || {
            let got = readers[turn % READERS].recv();
            turn += 1;
            got.map_err(|_| TxError::Other("a library file reader stopped".into()))
        };
        for batch in batches(&earlier) {
            let looked = std::time::Instant::now();
            let mut users: Vec<i64> = batch.iter().map(|(f, ..)| run.user_ids[&f.username]).collect();
            users.sort_unstable();
            if !run.opts.dry_run {
                // Locked before they are read, in the order every writer
                // locks accounts in (totals, then entries): a sync cannot
                // change what the batch decides on before it writes.
                crate::models::score::lock(run.conn, &users, &[])?;
                library::lock_entries(run.conn, &users)?;
            }
            let mut held: HashMap<i64, Held> = HashMap::new();
            for (user, appid, legacy) in library::appids_of_many(run.conn, &users)? {
                let h = held.entry(user).or_default();
                h.present.insert(appid);
                if legacy {
                    h.from_legacy.insert(appid);
                }
            }
            for (user, achievement) in library::unlocks_of_many(run.conn, &users)? {
                held.entry(user).or_default().unlocked.insert(achievement);
            }
            load.looking += looked.elapsed();
            let empty = Held::default();
            for (f, games, _) in batch {
                bar.inc(f.size);
                let user = run.user_ids[&f.username];
                load.file(run, f, *games, next()?, defs, held.get(&user).unwrap_or(&empty))?;
            }
            // Only now, before the batch writes anything: the images of the
            // rows of the accounts it changes.
            let changed: Vec<i64> = std::mem::take(&mut load.changed);
            let fresh: Vec<i64> = changed.into_iter().filter(|u| !run.kept.contains(u)).collect();
            if !fresh.is_empty() && !run.opts.dry_run {
                super::undo::keep_before(run.conn, run.run_id, &super::undo::Touched::accounts(&fresh))?;
            }
            run.kept.extend(fresh);
            load.write_late(run)?;
            load.flush(run.conn)?;
        }
        let existing = crate::db::bulk::estimated_rows(run.conn, BULK_TABLES[0])?;
        let bulk = match run.opts.loading {
            Loading::Auto => {
                incoming >= BULK_MIN_ROWS && incoming >= u64::try_from(existing).unwrap_or(0).saturating_mul(4)
            }
            Loading::RowByRow => false,
            Loading::Bulk => true,
        };
        let stripped = if bulk { crate::db::bulk::strip(run.conn, &BULK_TABLES, BULK_LOCK_WAIT)? } else { None };
        if stripped.is_some() {
            // Every account loaded now is new, and its library entries note
            // its version in this transaction.
            library::note_inserted_unlocks(run.conn, false)?;
        }
        let nothing = Held::default();
        for (f, games, _) in &new {
            bar.inc(f.size);
            load.file(run, f, *games, next()?, defs, &nothing)?;
            if load.entries.len() >= ENTRY_BATCH || load.unlocks.len() >= UNLOCK_BATCH {
                load.flush(run.conn)?;
            }
        }
        load.flush(run.conn)?;
        if let Some(stripped) = stripped {
            run.report.loaded_in_bulk = true;
            // Points and totals while the entries have no indexes to keep
            // up: one statement for every new account instead of one per
            // thousand, each writing every index of every entry.
            let started = std::time::Instant::now();
            let mut fresh: Vec<i64> = run.new_users.iter().filter_map(|u| run.user_ids.get(u).copied()).collect();
            fresh.sort_unstable();
            // The planner must know the tables are no longer empty.
            crate::db::analyze(run.conn, &BULK_TABLES)?;
            crate::rarity::rescore_users(run.conn, &fresh)?;
            run.scored.extend(fresh);
            run.report.steps.push(("libraries: points", started.elapsed().as_secs_f64()));
            library::note_inserted_unlocks(run.conn, true)?;
            let started = std::time::Instant::now();
            stripped.put_back(run.conn, 256)?;
            run.report.steps.push(("libraries: indexes rebuilt", started.elapsed().as_secs_f64()));
        }
        Ok(())
    })?;
    run.report.steps.push(("libraries: copy", load.copying.as_secs_f64()));
    run.report.steps.push(("libraries: look-ups", load.looking.as_secs_f64()));
    bar.finish_and_clear();
    Ok(())
}

/// Consecutive runs of files of at most [`EARLIER_BATCH`] accounts and
/// about [`EARLIER_BATCH_ROWS`] achievements (one file may exceed it alone).
fn batches<'a, 'f>(files: &'a [(&'f CsvFile, u64, u64)]) -> Vec<&'a [(&'f CsvFile, u64, u64)]> {
    let mut out = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for (i, (.., distinct)) in files.iter().enumerate() {
        if i > start && (i - start >= EARLIER_BATCH || rows + distinct > EARLIER_BATCH_ROWS) {
            out.push(&files[start..i]);
            (start, rows) = (i, 0);
        }
        rows += distinct;
    }
    if start < files.len() {
        out.push(&files[start..]);
    }
    out
}

/// What an account from an earlier run holds.
#[derive(Default)]
struct Held {
    present: HashSet<i64>,
    /// Games whose legacy data is still their source (Steam has not synced
    /// them since: a synced game shows what Steam says).
    from_legacy: HashSet<i64>,
    /// Achievement ids unlocked (only those of `from_legacy` games count).
    unlocked: HashSet<i64>,
}

/// Rows waiting for their COPY, and where the step's time went.
#[derive(Default)]
struct Load {
    entries: Vec<EntryRow>,
    unlocks: Vec<UnlockRow>,
    /// Unlocks of rows an earlier run skipped, in games it wrote.
    late: Vec<UnlockRow>,
    /// Accounts from earlier runs this batch changes.
    changed: Vec<i64>,
    copying: std::time::Duration,
    looking: std::time::Duration,
}

impl Load {
    fn flush(&mut self, conn: &mut PgConnection) -> Result<(), TxError> {
        let started = std::time::Instant::now();
        library::copy_imported(conn, &mut self.entries, &mut self.unlocks)?;
        self.copying += started.elapsed();
        Ok(())
    }

    /// The late unlocks, each recorded in the undo log.
    fn write_late(&mut self, run: &mut Run<'_>) -> Result<(), TxError> {
        if self.late.is_empty() {
            return Ok(());
        }
        let added = library::add_unlocks(run.conn, &self.late)?;
        self.late.clear();
        let keys: Vec<String> =
            added.iter().map(|(u, a)| serde_json::json!({"user_id": u, "achievement_id": a}).to_string()).collect();
        super::undo::record_inserted(run.conn, run.run_id, &keys)?;
        Ok(())
    }

    /// One user's file: its rows join the batch, written by the caller.
    fn file(
        &mut self,
        run: &mut Run<'_>,
        f: &CsvFile,
        games: u64,
        lib: Result<super::source::Library, String>,
        defs: &Definitions,
        held: &Held,
    ) -> Result<(), TxError> {
        let def_ids = &defs.ids;
        let Some(&user_id) = run.user_ids.get(&f.username) else {
            // The user was skipped (the report says why): so is their file.
            run.report.skip(
                "library_entries",
                format!("user `{}` was not imported; {games} game(s) left out", f.username),
                &f.file_name,
            );
            return Ok(());
        };
        let lib = lib.map_err(|e| TxError::Other(format!("{} changed during the import: {e}", f.file_name)))?;
        // "Present" means present: a user from an earlier run gets the
        // games that run did not write (its file was skipped then and fixed
        // since), and in the games it wrote, the unlocks of rows it skipped.
        let existing = !run.new_users.contains(&f.username);
        let (mut added_games, mut added_achievements) = (0u64, 0u64);
        let late_before = self.late.len();
        for (appid, game) in &lib.games {
            if held.present.contains(appid) {
                run.report.counts("library_entries").already_present += 1;
                for (api, a) in &game.achievements {
                    let id = def_ids.get(appid).and_then(|m| m.get(api.as_str())).copied();
                    let known = id.is_some_and(|id| defs.before.contains(&id));
                    match id {
                        Some(id) if a.achieved && held.from_legacy.contains(appid) && !held.unlocked.contains(&id) => {
                            let at = a.unlocked_at.and_then(|t| DateTime::from_timestamp(t, 0));
                            self.late.push(UnlockRow { user_id, achievement_id: id, unlocked_at: at });
                            added_achievements += 1;
                        }
                        _ if known => run.report.counts("achievements").already_present += 1,
                        _ => added_achievements += 1,
                    }
                }
                continue;
            }
            added_games += 1;
            added_achievements += game.achievements.len() as u64;
            let mut unlocked_here = 0;
            let mut last = None;
            for (api, a) in &game.achievements {
                if !a.achieved {
                    continue;
                }
                let Some(id) = def_ids.get(appid).and_then(|m| m.get(api.as_str())) else { continue };
                let at = a.unlocked_at.and_then(|t| DateTime::from_timestamp(t, 0));
                last = last.max(at);
                unlocked_here += 1;
                self.unlocks.push(UnlockRow { user_id, achievement_id: *id, unlocked_at: at });
            }
            self.entries.push(EntryRow {
                user_id,
                appid: *appid,
                playtime_minutes: game.playtime_minutes as i32,
                unlocked_count: unlocked_here,
                last_unlock_at: last,
                import_run_id: Some(run.run_id),
            });
        }
        if (added_games > 0 || self.late.len() > late_before) && existing {
            run.touched_users.insert(user_id);
            self.changed.push(user_id);
        }
        run.report.counts("library_entries").imported += added_games;
        run.report.counts("achievements").imported += added_achievements;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: usize) -> CsvFile {
        CsvFile { username: format!("u{n}"), file_name: format!("u{n}.csv"), path: "x".into(), size: 1 }
    }

    #[test]
    fn batches_hold_at_most_so_many_accounts_and_about_so_many_rows_and_lose_no_file() {
        let files: Vec<CsvFile> = (0..1300).map(file).collect();
        let small: Vec<(&CsvFile, u64, u64)> = files.iter().map(|f| (f, 1, 10)).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [500, 500, 300]);

        // 150,000 rows each: one file per batch; one over the limit alone.
        let big: Vec<(&CsvFile, u64, u64)> =
            files[..3].iter().zip([150_000, 150_000, 900_000]).map(|(f, d)| (f, 1, d)).collect();
        let sizes: Vec<usize> = batches(&big).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(batches(&[]).is_empty());
    }
}
