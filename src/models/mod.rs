//! Database rows as structs, each with the queries that read and write it.

pub mod game;
pub mod history;
pub mod library;
pub mod score;
pub mod text_enum;
pub mod user;

/// Brings the schema up to date (`crate::db::run_migrations`) and fills in
/// the username keys the database cannot compute itself (`crate::names`),
/// under the migration lock; returns the migrations applied.
pub fn migrate(conn: &mut diesel::PgConnection) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    crate::db::run_migrations(conn, |conn| {
        let renamed = user::User::fill_missing_keys(conn).context("filling in username keys")?;
        for (from, to) in renamed {
            tracing::warn!(from = %from, to = %to, "renamed an account: its name equals an older one's without regard to case or Unicode form");
        }
        Ok(())
    })
}
