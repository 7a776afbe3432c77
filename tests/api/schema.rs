use diesel::prelude::*;
use questline::models::game::{Game, GameAchievement, LibraryEntry, NewGame, NewGameAchievement, UserAchievement};
use questline::models::user::{NewUser, Role, Status, User};
use questline::schema::{library_entries, user_achievements};

use crate::helpers::spawn_app;

fn new_user<'a>(username: &'a str, email: Option<&'a str>) -> NewUser<'a> {
    NewUser { username, email, password_hash: None, role: Role::User }
}

#[actix_web::test]
async fn every_model_reads_back_what_it_wrote() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();

    let user = User::insert(&mut conn, &new_user("Alice", Some("alice@example.com"))).unwrap();
    assert_eq!(user.role, Role::User);
    assert_eq!(user.status, Status::Active);
    assert!(user.password_hash.is_none());

    Game::upsert_many(&mut conn, &[NewGame { appid: 400, name: "Portal", icon_hash: None }]).unwrap();
    let ach = [
        NewGameAchievement {
            appid: 400,
            api_name: "PORTAL_BEAT_GAME",
            display_name: "Lab Rat",
            description: None,
            hidden: true,
            icon_url: None,
            icon_gray_url: None,
        },
        NewGameAchievement {
            appid: 400,
            api_name: "PORTAL_TRANSMISSION",
            display_name: "Transmission Received",
            description: Some("Hear all the radios"),
            hidden: false,
            icon_url: None,
            icon_gray_url: None,
        },
    ];
    GameAchievement::replace_schema(&mut conn, 400, &ach).unwrap();
    let game = Game::find(&mut conn, 400).unwrap().unwrap();
    assert_eq!(game.achievement_count, 2);
    assert!(game.schema_fetched_at.is_some());

    let schema = GameAchievement::for_game(&mut conn, 400).unwrap();
    assert_eq!(schema.len(), 2);
    assert_eq!(schema[0].description, None);

    diesel::insert_into(library_entries::table)
        .values((
            library_entries::user_id.eq(user.id),
            library_entries::appid.eq(400),
            library_entries::playtime_minutes.eq(125),
            library_entries::unlocked_count.eq(1),
        ))
        .execute(&mut conn)
        .unwrap();
    diesel::insert_into(user_achievements::table)
        .values(&UserAchievement { user_id: user.id, achievement_id: schema[0].id, unlocked_at: None })
        .execute(&mut conn)
        .unwrap();
    let entries: Vec<LibraryEntry> = library_entries::table.select(LibraryEntry::as_select()).load(&mut conn).unwrap();
    assert_eq!(entries[0].playtime_minutes, 125);
    let unlocks: Vec<UserAchievement> =
        user_achievements::table.select(UserAchievement::as_select()).load(&mut conn).unwrap();
    assert_eq!(unlocks.len(), 1);
}

#[actix_web::test]
async fn usernames_are_unique_without_regard_to_case() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    User::insert(&mut conn, &new_user("Alice", None)).unwrap();
    let err = User::insert(&mut conn, &new_user("aLICE", None)).unwrap_err();
    assert!(matches!(err, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)));
}

#[actix_web::test]
async fn users_are_found_by_username_in_any_case_or_by_email() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    let alice = User::insert(&mut conn, &new_user("Alice", Some("alice@example.com"))).unwrap();
    assert_eq!(User::find_by_login(&mut conn, "ALICE").unwrap().unwrap().id, alice.id);
    assert_eq!(User::find_by_login(&mut conn, " Alice@Example.com ").unwrap().unwrap().id, alice.id);
    assert!(User::find_by_login(&mut conn, "bob").unwrap().is_none());
}

#[actix_web::test]
async fn the_database_refuses_an_email_that_is_not_lower_case() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    let err = User::insert(&mut conn, &new_user("bob", Some("Bob@Example.com"))).unwrap_err();
    assert!(matches!(err, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::CheckViolation, _)));
}

#[actix_web::test]
async fn deleting_a_user_removes_their_library_and_unlocks_but_keeps_the_shared_catalogue() {
    let app = spawn_app().await;
    let mut conn = app.pool.get().unwrap();
    let user = User::insert(&mut conn, &new_user("carol", None)).unwrap();
    Game::upsert_many(&mut conn, &[NewGame { appid: 620, name: "Portal 2", icon_hash: None }]).unwrap();
    GameAchievement::replace_schema(
        &mut conn,
        620,
        &[NewGameAchievement {
            appid: 620,
            api_name: "A",
            display_name: "A",
            description: None,
            hidden: false,
            icon_url: None,
            icon_gray_url: None,
        }],
    )
    .unwrap();
    let ach = GameAchievement::for_game(&mut conn, 620).unwrap();
    diesel::insert_into(library_entries::table)
        .values((library_entries::user_id.eq(user.id), library_entries::appid.eq(620)))
        .execute(&mut conn)
        .unwrap();
    diesel::insert_into(user_achievements::table)
        .values(&UserAchievement { user_id: user.id, achievement_id: ach[0].id, unlocked_at: None })
        .execute(&mut conn)
        .unwrap();

    diesel::delete(questline::schema::users::table.find(user.id)).execute(&mut conn).unwrap();

    let left: i64 = user_achievements::table.count().get_result(&mut conn).unwrap();
    assert_eq!(left, 0);
    let entries: i64 = library_entries::table.count().get_result(&mut conn).unwrap();
    assert_eq!(entries, 0);
    assert!(Game::find(&mut conn, 620).unwrap().is_some());
    assert_eq!(GameAchievement::for_game(&mut conn, 620).unwrap().len(), 1);
}
