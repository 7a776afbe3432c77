use crate::helpers::{html, location, new_client, spawn_app};

const PASSWORD: &str = "violet tractor pebble moonlight";

fn session_rows(doc: &scraper::Html) -> Vec<scraper::ElementRef<'_>> {
    let sel = scraper::Selector::parse("#sessions tbody tr").unwrap();
    doc.select(&sel).collect()
}

#[actix_web::test]
async fn every_signed_in_browser_is_listed_and_one_can_be_signed_out() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    let other = new_client();
    app.login_with(&other, "alice", PASSWORD).await;
    assert_eq!(other.get(app.url("/account")).send().await.unwrap().status(), 200);

    let doc = html(app.get("/account/sessions").await).await;
    let rows = session_rows(&doc);
    assert_eq!(rows.len(), 2);
    let form_sel = scraper::Selector::parse("form").unwrap();
    let action = rows
        .iter()
        .find_map(|r| r.select(&form_sel).next())
        .and_then(|f| f.value().attr("action"))
        .expect("the other session has a sign-out button")
        .to_owned();

    let res = app.submit("/account/sessions", &action, &[]).await;
    assert_eq!(res.status(), 303);

    // The revoked browser is anonymous on its very next request.
    let res = other.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login"));
    let doc = html(app.get("/account/sessions").await).await;
    assert_eq!(session_rows(&doc).len(), 1);
}

#[actix_web::test]
async fn sign_out_all_other_devices_keeps_only_this_one() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    let others = [new_client(), new_client()];
    for c in &others {
        app.login_with(c, "alice", PASSWORD).await;
    }
    let res = app.submit("/account/sessions", "/account/sessions/revoke-others", &[]).await;
    assert_eq!(res.status(), 303);
    for c in &others {
        assert_eq!(c.get(app.url("/account")).send().await.unwrap().status(), 303);
    }
    assert_eq!(app.get("/account").await.status(), 200);
}

#[actix_web::test]
async fn nobody_can_sign_out_someone_elses_session() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.register_verified("mallory", "mallory@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    let doc = html(app.get("/account/sessions").await).await;
    drop(doc);
    let mut conn = app.pool.get().unwrap();
    use diesel::prelude::*;
    let alice_sid: String =
        questline::schema::user_sessions::table.select(questline::schema::user_sessions::id).first(&mut conn).unwrap();

    let mallory = new_client();
    app.login_with(&mallory, "mallory", PASSWORD).await;
    let action = format!("/account/sessions/{alice_sid}/revoke");
    let res = app.submit_with(&mallory, "/account/sessions", &action, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.get("/account").await.status(), 200, "alice is still signed in");
}

#[actix_web::test]
async fn a_new_session_id_is_issued_at_sign_in() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    let before = app.get("/login").await;
    let cookie_before = before.cookies().find(|c| c.name() == "questline_session").map(|c| c.value().to_owned());
    let res = app.login_with(&app.client, "alice", PASSWORD).await;
    let after = res.cookies().find(|c| c.name() == "questline_session").expect("a session cookie is set");
    assert!(after.http_only());
    assert_ne!(Some(after.value().to_owned()), cookie_before);
}
