//! `questline import-legacy DIR`: brings the Flask app's users and data
//! across (FORMAT.md is the contract), all in one transaction so a failure
//! or a kill leaves nothing half-done, recorded as a run that can be rolled
//! back.

pub mod achievements;
mod context;
mod files;
pub mod library;
pub mod model;
pub mod report;
pub mod source;
mod undo;
pub mod users;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use diesel::prelude::*;

use context::{DryRunDone, Run, TxError};
pub use context::{Loading, Options};
pub use report::Report;
pub use source::SourceError;

use crate::crypto::Cipher;
use crate::infra::storage::Storage;
use crate::models::game::{Game, GameAchievement};
use crate::models::library as libraries;
use crate::models::user::User;
use crate::settings::Settings;

/// Why an import could not run at all (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("{0}")]
    Other(String),
}

/// Stores nothing: a dry run checks images without writing files.
struct NullStorage;

impl Storage for NullStorage {
    fn put(&self, _: &str, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn get(&self, _: &str) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "dry run"))
    }
    fn delete(&self, _: &str) -> std::io::Result<()> {
        Ok(())
    }
    fn list(&self) -> std::io::Result<Vec<(String, std::time::SystemTime)>> {
        Ok(Vec::new())
    }
}

/// The answer to an import, dry run or rollback while another one runs.
pub const BUSY: &str =
    "another import-legacy run (an import, a dry run or a rollback) is in progress on this database: \
                        nothing was done; run this again once it has finished";

/// The tables a run fills, analysed inside the run (for its own queries)
/// and again after its commit (for everyone's).
const ANALYZED: [&str; 8] = [
    "users",
    "games",
    "game_achievements",
    "library_entries",
    "user_achievements",
    "custom_achievements",
    "community_achievements",
    "user_scores",
];

/// Runs an import (or a dry run) and returns its report.
pub fn run(conn: &mut PgConnection, settings: &Settings, opts: &Options) -> Result<Report, ImportError> {
    let started = Instant::now();
    let source = opts.dir.display().to_string();
    // Everything the directory says is read and checked before the
    // database is touched, so a broken directory writes nothing.
    let legacy_users = source::read_users(&opts.dir)?;
    let custom = source::read_custom(&opts.dir)?;
    let shared = source::read_shared(&opts.dir)?;
    let files = source::list_csv(&opts.dir)?;
    let mut report = Report::new(source.clone(), opts.dry_run);
    let mut step = report.step("read", started);
    let scan = library::scan(&files, &legacy_users, &mut report, opts.progress);
    step = report.step("scan", step);

    let storage: Arc<dyn Storage> = if opts.dry_run {
        Arc::new(NullStorage)
    } else {
        Arc::new(crate::images::LocalStorage::new(settings.upload_dir.clone()))
    };
    let cipher = Cipher::from_settings(settings);
    let mut started_run = None;
    let mut committing = None;
    let outcome = conn.transaction::<Report, TxError, _>(|conn| {
        if !model::try_lock_imports(conn)? {
            return Err(TxError::Other(BUSY.into()));
        }
        let run_id = model::begin(conn, &source, opts.dry_run)?;
        started_run = Some(run_id);
        let storage: Arc<dyn Storage> = if opts.dry_run {
            storage
        } else {
            // Files an earlier run wrote and never committed go first.
            files::sweep_abandoned(conn, storage.as_ref(), None)?;
            Arc::new(files::RecordingStorage::new(storage, settings.database_url.clone(), run_id))
        };
        let mut run = Run {
            conn,
            report,
            run_id,
            opts,
            cipher,
            storage,
            user_ids: HashMap::new(),
            new_users: HashSet::new(),
            touched_users: HashSet::new(),
            scored: HashSet::new(),
            kept: HashSet::new(),
            dry_ids: opts.dry_run.then_some(0),
        };
        users::import(&mut run, &legacy_users)?;
        step = run.report.step("users", step);
        let (defs, changed) = library::import_games(&mut run, &scan)?;
        step = run.report.step("games", step);
        // The accounts here before the run whose rows it may change: the
        // owners of games whose achievement count it changed (a perfect
        // game may be no longer) and those it brings new goals for, kept
        // in the undo log now; those whose libraries it adds to, batch by
        // batch as the library step finds them.
        let owners = crate::models::library::owners_of(run.conn, &changed)?;
        let known_goals = achievements::known_goals(&mut run, &custom)?;
        let goal_accounts = achievements::bringing_new_goals(&run, &custom, &known_goals);
        if !opts.dry_run {
            undo::keep_before(
                run.conn,
                run_id,
                &undo::Touched { accounts: &goal_accounts, owners: &owners, games: &changed },
            )?;
            step = run.report.step("undo log", step);
        }
        run.kept.extend(goal_accounts);
        library::import_rows(&mut run, &files, &scan, &defs)?;
        step = run.report.step("libraries", step);
        let restore = achievements::import(&mut run, &custom, &shared, &known_goals)?;
        step = run.report.step("goals", step);
        // The planner has not seen the rows this transaction wrote: without
        // statistics it scans whole tables once per batch of users below,
        // and the run grows with the square of its size.
        crate::db::analyze(run.conn, &ANALYZED)?;
        step = run.report.step("analyse", step);
        evaluate(&mut run, &changed, &owners)?;
        achievements::restore_counts(run.conn, &restore)?;
        step = run.report.step("evaluate", step);
        if !opts.dry_run {
            let mut accounts: Vec<i64> = run.kept.iter().copied().collect();
            accounts.sort_unstable();
            undo::keep_after(
                run.conn,
                run_id,
                &undo::Touched { accounts: &accounts, owners: &owners, games: &changed },
            )?;
            run.report.step("undo log after", step);
        }
        let mut report = run.report;
        report.seconds = started.elapsed().as_secs_f64();
        if opts.dry_run {
            return Err(TxError::DryRun(Box::new(DryRunDone(report))));
        }
        report.run_id = Some(run_id);
        let json = serde_json::to_value(&report).unwrap_or_default();
        model::finish(run.conn, run_id, json)?;
        committing = Some(Instant::now());
        Ok(report)
    });
    let commit_seconds = committing.map(|c: Instant| c.elapsed().as_secs_f64()).unwrap_or_default();
    let analysed = Instant::now();
    if outcome.is_ok() && !opts.dry_run {
        // Fresh statistics, or the first page views plan for empty tables.
        crate::db::analyze(conn, &ANALYZED).map_err(ImportError::Db)?;
    }
    let analyse_seconds = analysed.elapsed().as_secs_f64();
    if !opts.dry_run {
        // Committed: the run's files are named by rows now. Failed: they
        // are named by none. Either way its record of them goes (this run's
        // only: another import may have started since).
        if let Some(run_id) = outcome.as_ref().ok().and_then(|r| r.run_id).or(started_run) {
            let local = crate::images::LocalStorage::new(settings.upload_dir.clone());
            if let Err(e) = files::sweep_abandoned(conn, &local, Some(run_id)) {
                tracing::warn!(error = %e, "could not forget the import's files; the next run will");
            }
        }
    }
    match outcome {
        Ok(mut report) => {
            // The wall time, commit included (the run's stored report was
            // written before its commit and cannot hold it).
            report.seconds = started.elapsed().as_secs_f64();
            report.commit_seconds = commit_seconds;
            report.steps.push(("commit", commit_seconds));
            report.steps.push(("analyse after", analyse_seconds));
            Ok(report)
        }
        Err(TxError::DryRun(done)) => Ok(done.0),
        Err(TxError::Db(e)) => Err(ImportError::Db(e)),
        Err(TxError::Other(e)) => Err(ImportError::Other(e)),
    }
}

/// Progress toward every imported user's achievements, set-based, a
/// thousand users per statement; then the totals and goals of the other
/// owners of games whose achievement count the run changed.
fn evaluate(run: &mut Run<'_>, changed: &[i64], owners: &[i64]) -> Result<(), TxError> {
    let mut ids: Vec<i64> = run.new_users.iter().filter_map(|u| run.user_ids.get(u).copied()).collect();
    ids.extend(run.touched_users.iter().copied());
    let (mut points, mut goals) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    ids.sort_unstable();
    for chunk in ids.chunks(1000) {
        let started = Instant::now();
        let unscored: Vec<i64> = chunk.iter().copied().filter(|id| !run.scored.contains(id)).collect();
        if !unscored.is_empty() {
            crate::rarity::rescore_users(run.conn, &unscored)?;
        }
        let scored = Instant::now();
        crate::achievements::evaluate(run.conn, chunk)?;
        points += scored - started;
        goals += scored.elapsed();
    }
    run.report.steps.push(("evaluate: points", points.as_secs_f64()));
    run.report.steps.push(("evaluate: goals", goals.as_secs_f64()));
    let done: HashSet<i64> = ids.into_iter().collect();
    let others: Vec<i64> = owners.iter().copied().filter(|o| !done.contains(o)).collect();
    // A dry run reports the same without them (and locks no one's totals).
    if !others.is_empty() && !run.opts.dry_run {
        crate::rarity::rescore_owners(run.conn, changed, &others)?;
        for chunk in others.chunks(1000) {
            crate::achievements::evaluate(run.conn, chunk)?;
        }
    }
    Ok(())
}

/// The `import-legacy` command: migrates the database, runs the import (or
/// the rollback), prints the report and writes it as JSON when asked.
pub fn command(
    settings: &Settings,
    dir: Option<PathBuf>,
    dry_run: bool,
    report_file: Option<PathBuf>,
    rollback_id: Option<i64>,
    force: bool,
    loading: Loading,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::IsTerminal;
    let mut conn = PgConnection::establish(secrecy::ExposeSecret::expose_secret(&settings.database_url))
        .context("connecting to PostgreSQL (DATABASE_URL)")?;
    if dry_run {
        // A dry run writes nothing, the schema included: it needs a
        // database that is already up to date.
        let pending = crate::db::pending_migrations(&mut conn)?;
        anyhow::ensure!(
            pending.is_empty(),
            "the database lacks {} migration(s) ({}): run `questline migrate` first; a dry run changes nothing, \
             not even the schema",
            pending.len(),
            pending.join(", ")
        );
    } else {
        crate::models::migrate(&mut conn)?;
    }
    if let Some(id) = rollback_id {
        let started = Instant::now();
        let done = rollback(&mut conn, settings, id, force)?;
        println!(
            "rolled back run {id}: removed {} user(s), {} shared achievement(s), {} game(s), {} achievement definition(s) in {:.1} s",
            done.users,
            done.shared_achievements,
            done.games,
            done.achievements,
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let dir = dir.context("give the legacy data directory")?;
    let opts = Options { dir, dry_run, progress: std::io::stderr().is_terminal(), loading };
    let report = run(&mut conn, settings, &opts)?;
    print!("{report}");
    if let Some(path) = report_file {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(&path, json).with_context(|| format!("writing the report to {}", path.display()))?;
    }
    Ok(())
}

/// What a rollback removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolledBack {
    pub users: usize,
    pub shared_achievements: usize,
    pub games: usize,
    pub achievements: usize,
}

/// Removes exactly what run `id` added, in one transaction. Refused when
/// accounts it brought were used since (their owners' work would go with
/// them), unless `force`, which the audit log records.
pub fn rollback(conn: &mut PgConnection, settings: &Settings, id: i64, force: bool) -> Result<RolledBack, ImportError> {
    let done = conn.transaction::<RolledBack, ImportError, _>(|conn| {
        if !model::try_lock_imports(conn)? {
            return Err(ImportError::Other(BUSY.into()));
        }
        match model::lock_for_rollback(conn, id)? {
            None => return Err(ImportError::Other(format!("there is no import run {id}"))),
            Some(Some(at)) => return Err(ImportError::Other(format!("run {id} was already rolled back at {at}"))),
            Some(None) => {}
        }
        let (used, total) = model::used_accounts(conn, id)?;
        if total > 0 && !force {
            let list: Vec<String> = used.iter().map(|u| format!("  {}: {}", u.username, u.what)).collect();
            let more = if total > used.len() as i64 {
                format!("\n  … and {} more", total - used.len() as i64)
            } else {
                String::new()
            };
            return Err(ImportError::Other(format!(
                "run {id} brought {total} account(s) that were used since; rolling back would delete their owners' \
                 work with them. Nothing was done. Add --force to roll back anyway:\n{}{more}",
                list.join("\n")
            )));
        }
        if total > 0 {
            let meta = crate::audit::RequestMeta {
                ip: None,
                user_agent: Some("questline import-legacy --rollback --force".into()),
            };
            crate::audit::AuditEvent::new("import", "rollback_forced", &meta)
                .details(serde_json::json!({
                    "run": id,
                    "used_accounts": total,
                    "first": used.iter().map(|u| format!("{}: {}", u.username, u.what)).collect::<Vec<_>>(),
                }))
                .record(conn)?;
        }
        files::sweep_abandoned(conn, &crate::images::LocalStorage::new(settings.upload_dir.clone()), None)?;
        // Shared copies of images belong to no user: delete them by hand.
        let (shared, community_images) = crate::achievements::shared::model::delete_imported(conn, id)?;
        crate::images::model::delete(conn, &community_images)?;
        // Their library, unlocks, Steam account, achievements and images
        // follow by cascade.
        let users = User::delete_imported(conn, id)?;
        // Goals the run gave accounts that were here before it.
        let goal_images = crate::achievements::model::delete_imported(conn, id)?;
        crate::images::model::delete(conn, &goal_images)?;
        // Entries the run added to accounts that existed before it, with
        // their unlocks.
        libraries::delete_imported(conn, id)?;
        // Every row the run changed goes back to what it was, where nothing
        // changed it since; the owners of rows that did change are worked
        // out again below.
        let restored = undo::restore(conn, id)?;
        let achievements = GameAchievement::delete_imported(conn, id)?;
        // Games that existed before the run get their count back, and
        // owners the log does not know (they got the game since) their
        // totals and goals for it.
        let changed = model::changed_games(conn, id)?;
        Game::restore_imported_counts(conn, id)?;
        model::forget_game_counts(conn, id)?;
        let newer: Vec<i64> = libraries::owners_of(conn, &changed)?
            .into_iter()
            .filter(|o| restored.logged.binary_search(o).is_err() && restored.drifted.binary_search(o).is_err())
            .collect();
        for chunk in restored.drifted.chunks(1000).chain(newer.chunks(1000)) {
            crate::rarity::rescore_users(conn, chunk)?;
            crate::achievements::evaluate(conn, chunk)?;
        }
        let games = Game::delete_imported(conn, id)?;
        model::mark_rolled_back(conn, id)?;
        Ok(RolledBack { users, shared_achievements: shared, games, achievements })
    })?;
    let storage = crate::images::LocalStorage::new(settings.upload_dir.clone());
    crate::images::model::sweep_orphans(conn, &storage, None);
    Ok(done)
}
