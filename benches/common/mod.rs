//! Set-up shared by the benchmarks that need a database of their own.

use std::collections::HashMap;

use questline::settings;

/// `DATABASE_URL` (or the local default) pointed at database `db`.
pub fn server_url(db: &str) -> String {
    let raw = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut url = url::Url::parse(&raw).unwrap();
    url.set_path(db);
    url.query_pairs_mut().append_pair("sslmode", "disable");
    url.to_string()
}

/// A fresh environment for the app: new secrets, and `DATABASE_URL` on `db`.
pub fn app_env(db: &str) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = settings::generate_secrets()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    env.insert("DATABASE_URL".into(), server_url(db));
    env
}
