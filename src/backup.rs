//! `questline backup FILE` and `questline restore FILE --yes`: pg_dump and
//! pg_restore in PostgreSQL's custom format, against DATABASE_URL. The
//! password travels in PGPASSWORD, never on a command line others can read.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// The connection URL without its password, and the password.
fn split_password(raw: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut url = url::Url::parse(raw).context("DATABASE_URL is not a URL")?;
    let password = url.password().map(|p| {
        url::form_urlencoded::parse(format!("p={p}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    });
    let _ = url.set_password(None);
    Ok((url.to_string(), password))
}

fn tool(name: &str, env_override: &str) -> String {
    std::env::var(env_override).unwrap_or_else(|_| name.to_owned())
}

fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {what} (is the PostgreSQL client installed?)"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Writes the whole database to `file` (custom format, compressed).
pub fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let (url, password) = split_password(settings.database_url.expose_secret())?;
    let mut cmd = Command::new(tool("pg_dump", "PG_DUMP"));
    cmd.args(["--format=custom", "--no-owner", "--file"]).arg(file).arg("--dbname").arg(url);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    run(cmd, "pg_dump")
}

/// Replaces the database's contents with the backup in `file`, in one
/// transaction: on any error nothing changes.
pub fn restore(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    if !file.is_file() {
        bail!("{} is not a backup file", file.display());
    }
    let (url, password) = split_password(settings.database_url.expose_secret())?;
    let mut cmd = Command::new(tool("pg_restore", "PG_RESTORE"));
    cmd.args(["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error", "--dbname"])
        .arg(url)
        .arg(file);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    run(cmd, "pg_restore")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        let (url, pw) = split_password("postgres://app:s%40cret@db:5432/questline?sslmode=require").unwrap();
        assert_eq!(url, "postgres://app@db:5432/questline?sslmode=require");
        assert_eq!(pw.as_deref(), Some("s@cret"));
        let (_, none) = split_password("postgres://app@db/questline").unwrap();
        assert_eq!(none, None);
    }
}
