use diesel::prelude::*;
use questline::schema::{audit_log, community_achievements, users};

use crate::helpers::{html, location, new_client, text_of, TestApp};
use crate::two_factor::{app, enrol, PASSWORD};

/// Alice, an admin with 2FA, signed in on `app.client` (her password was
/// confirmed during enrolment, so sensitive actions need nothing more);
/// Bob, a regular user, signed in on the returned client. Returns Bob's
/// client and Alice's backup codes.
pub(crate) async fn admin_and_bob() -> (TestApp, reqwest::Client, Vec<String>) {
    let app = app().await;
    let (_, codes) = enrol(&app).await;
    let mut conn = app.pool.get().unwrap();
    diesel::update(users::table.filter(users::username.eq("alice")))
        .set(users::role.eq("admin"))
        .execute(&mut conn)
        .unwrap();
    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&bob, "bob", PASSWORD).await;
    (app, bob, codes)
}

fn user_id(app: &TestApp, name: &str) -> i64 {
    let mut conn = app.pool.get().unwrap();
    users::table.filter(users::username.eq(name)).select(users::id).first(&mut conn).unwrap()
}

fn admin_events(app: &TestApp) -> Vec<String> {
    let mut conn = app.pool.get().unwrap();
    audit_log::table
        .filter(audit_log::event_type.eq("admin"))
        .order(audit_log::id)
        .select(audit_log::action)
        .load(&mut conn)
        .unwrap()
}

#[actix_web::test]
async fn only_admins_with_2fa_reach_the_console() {
    let (app, bob, _) = admin_and_bob().await;
    assert_eq!(bob.get(app.url("/admin")).send().await.unwrap().status(), 404, "not advertised to users");
    assert_eq!(location(&new_client().get(app.url("/admin")).send().await.unwrap()), "/login?next=%2Fadmin");
    let mut conn = app.pool.get().unwrap();
    diesel::update(users::table.filter(users::username.eq("bob")))
        .set(users::role.eq("admin"))
        .execute(&mut conn)
        .unwrap();
    let res = bob.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("two-factor"));

    let dash = html(app.get("/admin").await).await;
    assert_eq!(text_of(&dash, "#users-total").as_deref(), Some("2"));
    assert!(text_of(&dash, "#services").unwrap().contains("Redis: up"));
}

#[actix_web::test]
async fn locking_signs_the_user_out_and_keeps_them_out_until_unlocked() {
    let (app, bob, _) = admin_and_bob().await;
    let id = user_id(&app, "bob");
    let page = format!("/admin/users/{id}");
    let res = app.submit(&page, &format!("/admin/users/{id}/lock"), &[]).await;
    assert_eq!(location(&res), page);
    assert_eq!(location(&bob.get(app.url("/account")).send().await.unwrap()), "/login?next=%2Faccount");
    assert_eq!(app.login_with(&new_client(), "bob", PASSWORD).await.status(), 401);

    app.submit(&page, &format!("/admin/users/{id}/unlock"), &[]).await;
    assert_eq!(location(&app.login_with(&new_client(), "bob", PASSWORD).await), "/dashboard");
    app.submit(&page, &format!("/admin/users/{id}/end-sessions"), &[]).await;
    app.submit(&page, &format!("/admin/users/{id}/make-admin"), &[]).await;
    assert_eq!(text_of(&html(app.get(&page).await).await, "#role").as_deref(), Some("admin"));
    assert_eq!(admin_events(&app), ["lock", "unlock", "end_sessions", "change_role"]);

    let list = html(app.get("/admin/users?q=bo").await).await;
    assert_eq!(text_of(&list, "#user-count").as_deref(), Some("1 user(s)"));
}

#[actix_web::test]
async fn a_role_change_needs_a_fresh_password_on_a_new_sign_in() {
    let (app, _bob, codes) = admin_and_bob().await;
    let fresh = new_client();
    let res = app.login_with(&fresh, "alice", PASSWORD).await;
    assert_eq!(location(&res), "/login/2fa");
    let res = app.submit_with(&fresh, "/login/2fa", "/login/2fa", &[("code", &codes[0])]).await;
    assert_eq!(res.status(), 303);
    let id = user_id(&app, "bob");
    let page = format!("/admin/users/{id}");
    let res = app.submit_with(&fresh, &page, &format!("/admin/users/{id}/make-admin"), &[]).await;
    assert!(location(&res).starts_with("/account/reauth"), "{}", location(&res));
    let role: String = users::table.find(id).select(users::role).first(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(role, "user");
    // Harmless actions need no re-authentication.
    let res = app.submit_with(&fresh, &page, &format!("/admin/users/{id}/verify"), &[]).await;
    assert_eq!(location(&res), page);
}

#[actix_web::test]
async fn deleting_a_user_needs_their_name_typed_and_removes_their_data() {
    let (app, bob, _) = admin_and_bob().await;
    let fields = [("name", "Bob's goal"), ("condition_type", "playtime"), ("hours", "5")];
    let image = Some(("image", "b.png", crate::images::png(24, 24, 7)));
    let res = app.submit_multipart_with(&bob, "/achievements/new", "/achievements", &fields, image).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.stored_files().len(), 2, "bob's image and thumbnail");
    let id = user_id(&app, "bob");
    let page = format!("/admin/users/{id}");
    app.submit(&page, &format!("/admin/users/{id}/delete"), &[("confirm", "bobby")]).await;
    assert!(users::table.find(id).select(users::id).first::<i64>(&mut app.pool.get().unwrap()).is_ok());
    let res = app.submit(&page, &format!("/admin/users/{id}/delete"), &[("confirm", "bob")]).await;
    assert_eq!(location(&res), "/admin/users");
    assert!(users::table.find(id).select(users::id).first::<i64>(&mut app.pool.get().unwrap()).is_err());
    assert!(app.stored_files().is_empty(), "their images are gone too");
    let left: i64 =
        questline::schema::custom_achievements::table.count().get_result(&mut app.pool.get().unwrap()).unwrap();
    assert_eq!(left, 0);
    assert_eq!(admin_events(&app), ["delete_user"]);
}

#[actix_web::test]
async fn maintenance_mode_shows_everyone_but_admins_the_503_page() {
    let (app, bob, _) = admin_and_bob().await;
    let res = app.submit("/admin", "/admin/maintenance/on", &[]).await;
    assert_eq!(location(&res), "/admin");
    assert_eq!(bob.get(app.url("/library")).send().await.unwrap().status(), 503);
    assert_eq!(new_client().get(app.url("/")).send().await.unwrap().status(), 503);
    assert_eq!(new_client().get(app.url("/healthz")).send().await.unwrap().status(), 200, "probes stay open");
    assert_eq!(new_client().get(app.url("/login")).send().await.unwrap().status(), 200, "admins can sign in");
    assert_eq!(app.get("/library").await.status(), 200, "admins work on");
    app.submit("/admin", "/admin/maintenance/off", &[]).await;
    assert_eq!(bob.get(app.url("/library")).send().await.unwrap().status(), 200);
    assert_eq!(admin_events(&app), ["maintenance_on", "maintenance_off"]);
}

#[actix_web::test]
async fn a_hidden_shared_achievement_leaves_the_community_list_until_restored() {
    let (app, bob, _) = admin_and_bob().await;
    let bob_id = user_id(&app, "bob");
    let mut conn = app.pool.get().unwrap();
    let id: i64 = diesel::insert_into(community_achievements::table)
        .values((
            community_achievements::creator_id.eq(bob_id),
            community_achievements::name.eq("Spammy"),
            community_achievements::condition_type.eq("playtime"),
            community_achievements::condition.eq(serde_json::json!({"hours": 1})),
        ))
        .returning(community_achievements::id)
        .get_result(&mut conn)
        .unwrap();
    let listed =
        || async { bob.get(app.url("/community")).send().await.unwrap().text().await.unwrap().contains("Spammy") };
    assert!(listed().await);
    app.submit("/admin/community", &format!("/admin/community/{id}/hide"), &[]).await;
    assert!(!listed().await);
    app.submit("/admin/community", &format!("/admin/community/{id}/restore"), &[]).await;
    assert!(listed().await);
    assert_eq!(admin_events(&app), ["hide_shared", "restore_shared"]);
}
