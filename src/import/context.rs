//! What every step of an import shares: the options it was asked for, the
//! run's state (connection, report, the ids it gave out) and the error that
//! rolls the transaction back. Its own module so the steps need nothing
//! from `import`'s `mod.rs`, which calls them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use diesel::PgConnection;

use super::report::Report;
use crate::crypto::Cipher;
use crate::infra::storage::Storage;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    /// Read, check and report, writing nothing.
    pub dry_run: bool,
    /// Draw progress bars on the terminal.
    pub progress: bool,
    /// Whether the new accounts' rows may be loaded in bulk.
    pub loading: Loading,
}

/// How the new accounts' library rows are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Loading {
    /// In bulk (the unlock and library tables locked, with the tables their
    /// foreign keys point at, their indexes and foreign keys built again at
    /// the end) when the new accounts bring at least 200,000 achievement
    /// rows and at least four times as many as there are unlocks stored,
    /// and the locks come within 5 s; row by row otherwise.
    #[default]
    Auto,
    /// Row by row, whatever the size: the site keeps answering.
    RowByRow,
    /// In bulk whatever the size, when the lock comes (tests use it on
    /// small data sets).
    Bulk,
}

/// Everything the import steps share.
pub(crate) struct Run<'a> {
    pub conn: &'a mut PgConnection,
    pub report: Report,
    pub run_id: i64,
    pub opts: &'a Options,
    pub cipher: Cipher,
    pub storage: Arc<dyn Storage>,
    /// Legacy username → Questline user id, for every user in users.json
    /// that exists after the users step (new or already present).
    pub user_ids: HashMap<String, i64>,
    /// Legacy usernames imported by this run.
    pub new_users: HashSet<String>,
    /// Users from earlier runs that this run added library entries to.
    pub touched_users: HashSet<i64>,
    /// Accounts from earlier runs whose rows the undo log keeps.
    pub kept: HashSet<i64>,
    /// Users whose points and totals the library step already worked out
    /// (loaded in bulk: scored before the indexes came back).
    pub scored: HashSet<i64>,
    /// The last id a dry run gave out (they count down from -1): a dry run
    /// draws nothing from the database's sequences, which no rollback
    /// would give back.
    pub dry_ids: Option<i64>,
}

impl Run<'_> {
    /// An id for a new row: `None` (the sequence's) in a real run, the
    /// dry run's own otherwise.
    pub fn fresh_id(&mut self) -> Option<i64> {
        let last = self.dry_ids.as_mut()?;
        *last -= 1;
        Some(*last)
    }

    /// [`Self::fresh_id`] for `n` rows at once (empty in a real run).
    pub fn fresh_ids(&mut self, n: usize) -> Vec<i64> {
        (0..n).map_while(|_| self.fresh_id()).collect()
    }
}

/// A dry run ends by rolling its transaction back through this error.
#[derive(Debug)]
pub(crate) struct DryRunDone(pub Report);

/// Errors inside the import transaction (any of them rolls it back).
#[derive(Debug)]
pub(crate) enum TxError {
    Db(diesel::result::Error),
    DryRun(Box<DryRunDone>),
    Other(String),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}
