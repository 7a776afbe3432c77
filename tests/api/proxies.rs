//! Behind a reverse proxy: the client's address comes from X-Forwarded-For
//! only when the peer is a proxy listed in TRUSTED_PROXIES.

use diesel::prelude::*;
use questline::schema::audit_log;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// A browser whose requests arrive through a proxy that says they came
/// from `client` (and a client-forged entry before it).
fn through_proxy(client: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", format!("6.6.6.6, {client}").parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn failed_sign_in(app: &TestApp, client: &reqwest::Client) -> u16 {
    app.login_with(client, "whoever", "some password 123").await.status().as_u16()
}

fn audited_addresses(app: &TestApp) -> Vec<String> {
    let mut conn = app.pool.get().unwrap();
    audit_log::table
        .filter(audit_log::action.eq("login"))
        .select(audit_log::ip)
        .load::<Option<String>>(&mut conn)
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_sign_in_limit_and_address() {
    let app = spawn_app_with(|env| {
        env.insert("TRUSTED_PROXIES".into(), "127.0.0.1, ::1".into());
    })
    .await;
    let first = through_proxy("198.51.100.1");
    for _ in 0..5 {
        assert_eq!(failed_sign_in(&app, &first).await, 401);
    }
    assert_eq!(failed_sign_in(&app, &first).await, 429, "the sixth from one client");
    let second = through_proxy("198.51.100.2");
    assert_eq!(failed_sign_in(&app, &second).await, 401, "another client behind the same proxy is not limited");
    let addresses = audited_addresses(&app);
    assert!(addresses.iter().any(|a| a == "198.51.100.1"), "{addresses:?}");
    assert!(
        addresses.iter().all(|a| a.starts_with("198.51.100.")),
        "never the proxy or the forged entry: {addresses:?}"
    );
}

#[actix_web::test]
async fn without_trusted_proxies_a_forwarded_header_changes_nothing() {
    let app = spawn_app().await;
    for i in 0..5 {
        assert_eq!(failed_sign_in(&app, &through_proxy(&format!("198.51.100.{i}"))).await, 401);
    }
    assert_eq!(failed_sign_in(&app, &through_proxy("198.51.100.9")).await, 429, "one peer, one limit");
    let addresses = audited_addresses(&app);
    assert!(!addresses.is_empty());
    assert!(addresses.iter().all(|a| a == "127.0.0.1"), "{addresses:?}");
}
