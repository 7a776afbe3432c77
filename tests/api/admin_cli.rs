use diesel::prelude::*;
use questline::admin_cli::{create_admin, AdminOutcome};
use questline::models::user::{Role, User};

use crate::helpers::{location, spawn_app};

const PASSWORD: &str = "violet tractor pebble moonlight";

#[actix_web::test]
async fn create_admin_makes_a_verified_admin_who_can_sign_in() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    assert_eq!(create_admin(&mut conn, "root", "Root@Example.com", PASSWORD).unwrap(), AdminOutcome::Created);
    let user = User::find_by_login(&mut conn, "root").unwrap().unwrap();
    assert_eq!(user.role, Role::Admin);
    assert_eq!(user.email.as_deref(), Some("root@example.com"));
    assert!(user.email_verified_at.is_some());
    let res = app.login_with(&app.client, "root", PASSWORD).await;
    assert_eq!(location(&res), "/dashboard");

    assert_eq!(create_admin(&mut conn, "ROOT", "x@example.com", PASSWORD).unwrap(), AdminOutcome::AlreadyAdmin);
}

#[actix_web::test]
async fn create_admin_promotes_an_existing_user_and_records_it() {
    let app = spawn_app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    let mut conn = app.pool.get().unwrap();
    assert_eq!(create_admin(&mut conn, "alice", "ignored@example.com", "unused").unwrap(), AdminOutcome::Promoted);
    assert!(User::find_by_login(&mut conn, "alice").unwrap().unwrap().is_admin());
    use questline::schema::audit_log;
    let n: i64 = audit_log::table.filter(audit_log::action.eq("role_change")).count().get_result(&mut conn).unwrap();
    assert_eq!(n, 1);
}

#[actix_web::test]
async fn create_admin_refuses_a_weak_password_and_writes_nothing() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    let err = create_admin(&mut conn, "root", "root@example.com", "password1234").unwrap_err();
    assert!(err.to_string().contains("too weak"), "{err}");
    assert!(User::find_by_login(&mut conn, "root").unwrap().is_none());
}
