//! The image files an import writes. Each key is recorded, and committed
//! on a connection of its own, before its file is written: a run killed
//! or failed before its commit leaves files that no row names, and the
//! next import or rollback (which hold the import lock, so no run is
//! writing) removes exactly those.

use std::io;
use std::sync::{Arc, Mutex};

use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};

use crate::infra::storage::Storage;

/// Storage that records every key it is asked to write under run `run_id`.
pub(crate) struct RecordingStorage {
    inner: Arc<dyn Storage>,
    database_url: SecretString,
    journal: Mutex<Option<PgConnection>>,
    run_id: i64,
}

impl RecordingStorage {
    pub fn new(inner: Arc<dyn Storage>, database_url: SecretString, run_id: i64) -> Self {
        RecordingStorage { inner, database_url, journal: Mutex::new(None), run_id }
    }

    fn record(&self, key: &str) -> io::Result<()> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        if journal.is_none() {
            let mut conn = PgConnection::establish(self.database_url.expose_secret())
                .map_err(|e| io::Error::other(e.to_string()))?;
            // Each record is committed before its file is written, so a
            // killed import leaves nothing unrecorded; waiting for the disk
            // on each of them (tens of thousands of images) would only
            // guard against PostgreSQL itself crashing in that instant.
            diesel::sql_query("SET synchronous_commit = off")
                .execute(&mut conn)
                .map_err(|e| io::Error::other(e.to_string()))?;
            *journal = Some(conn);
        }
        let conn = journal.as_mut().expect("opened above");
        super::model::record_file(conn, self.run_id, key).map_err(|e| io::Error::other(e.to_string()))
    }
}

impl Storage for RecordingStorage {
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.record(key)?;
        self.inner.put(key, bytes)
    }
    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        self.inner.get(key)
    }
    fn delete(&self, key: &str) -> io::Result<()> {
        self.inner.delete(key)
    }
    fn list(&self) -> io::Result<Vec<(String, std::time::SystemTime)>> {
        self.inner.list()
    }
}

/// Removes the files runs recorded (all runs, or only `run_id`) that no
/// image row names, and forgets every recorded key. Only under the import
/// lock for all runs: a running import's keys are not yet named by rows.
pub(crate) fn sweep_abandoned(
    conn: &mut PgConnection,
    storage: &dyn Storage,
    run_id: Option<i64>,
) -> QueryResult<usize> {
    let orphans = super::model::forget_files(conn, run_id)?;
    for key in &orphans {
        if let Err(e) = storage.delete(key) {
            tracing::warn!(key = %key, error = %e, "could not remove a file an interrupted import wrote");
        }
    }
    Ok(orphans.len())
}
