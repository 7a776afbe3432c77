//! Regression tests for what a penetration test found: each drives the
//! attack through HTTP against the real app.

use diesel::prelude::*;
use questline::schema::{audit_log, jobs, users};

use crate::helpers::{html, location, new_client, spawn_app_with, text_of, TestApp};
use crate::two_factor::{enrol, reauth, PASSWORD};

/// Per-IP limits out of the way, for tests about other rules.
async fn app() -> TestApp {
    spawn_app_with(|env| {
        env.insert("RATE_LIMIT_LOGIN_PER_MINUTE".into(), "1000".into());
        env.insert("RATE_LIMIT_RESET_PER_MINUTE".into(), "1000".into());
    })
    .await
}

async fn alice_signed_in(app: &TestApp) {
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    assert_eq!(app.login_with(&app.client, "alice", PASSWORD).await.status(), 303);
}

/// `next` values a browser would follow to another site, or that break a
/// `Location` header.
const HOSTILE_NEXT: [&str; 9] = [
    "/\t/evil.example",
    "/.//evil.example",
    "/\n/evil.example",
    "/\r\nSet-Cookie: stolen=1",
    "/\\evil.example",
    "//evil.example",
    "https://evil.example/",
    "/a\u{1}b",
    "javascript:alert(1)",
];

#[actix_web::test]
async fn sign_in_never_follows_a_next_that_leaves_the_site_or_breaks_the_header() {
    let app = app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    for next in HOSTILE_NEXT {
        let res = app
            .submit_with(
                &new_client(),
                "/login",
                "/login",
                &[("login", "alice"), ("password", PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(res.status(), 303, "{next:?}");
        assert_eq!(location(&res), "/dashboard", "{next:?}");
    }
    // The tab arrives percent-encoded in a link; the form must not carry it on.
    let doc = html(app.client.get(app.url("/login?next=/%09/evil.example")).send().await.unwrap()).await;
    let sel = scraper::Selector::parse("input[name=next]").unwrap();
    assert_eq!(doc.select(&sel).next().unwrap().value().attr("value"), Some("/dashboard"));
    // A local page with a query string is still followed.
    let res = app
        .submit_with(
            &new_client(),
            "/login",
            "/login",
            &[("login", "alice"), ("password", PASSWORD), ("next", "/library?sort=playtime")],
        )
        .await;
    assert_eq!(location(&res), "/library?sort=playtime");
}

#[actix_web::test]
async fn the_second_step_and_re_authentication_never_follow_a_foreign_next() {
    let app = app().await;
    let (secret, _) = enrol(&app).await;
    // Re-authentication, by a user without 2FA (one code per step otherwise).
    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&bob, "bob", PASSWORD).await;
    for next in HOSTILE_NEXT {
        let res = reauth(&app, &bob, next, &[("password", PASSWORD)]).await;
        assert_eq!(res.status(), 303, "{next:?}");
        assert_eq!(location(&res), "/dashboard", "{next:?}");
    }
    let laptop = new_client();
    let res = app
        .submit_with(
            &laptop,
            "/login",
            "/login",
            &[("login", "alice"), ("password", PASSWORD), ("next", "/\t/evil.example")],
        )
        .await;
    assert_eq!(location(&res), "/login/2fa");
    let code = crate::two_factor::totp(&secret).generate(crate::two_factor::now() + 30);
    let res = app.submit_with(&laptop, "/login/2fa", "/login/2fa", &[("code", &code)]).await;
    assert_eq!(location(&res), "/dashboard");
}

async fn assert_nul_refused(res: reqwest::Response) {
    assert_eq!(res.status(), 400);
    let doc = html(res).await;
    assert_eq!(text_of(&doc, "h1").as_deref(), Some("Bad request"));
    assert!(doc.root_element().text().collect::<String>().contains("NUL"));
}

#[actix_web::test]
async fn a_nul_byte_in_any_input_is_a_clear_400_never_a_500() {
    let app = app().await;
    // A visitor's search.
    assert_nul_refused(new_client().get(app.url("/community?q=a%00b")).send().await.unwrap()).await;
    // A sign-in field.
    assert_nul_refused(
        app.submit_with(&new_client(), "/login", "/login", &[("login", "al\0ice"), ("password", PASSWORD)]).await,
    )
    .await;
    alice_signed_in(&app).await;
    // A signed-in search, and a NUL in the path.
    assert_nul_refused(app.get("/library?q=a%00b").await).await;
    assert_nul_refused(app.get("/library/%00").await).await;
    // An achievement name, in a multipart form.
    let res = app
        .submit_multipart(
            "/achievements/new",
            "/achievements",
            &[("name", "Bad\0name"), ("condition_type", "playtime"), ("hours", "5")],
            None,
        )
        .await;
    assert_nul_refused(res).await;
    // Image bytes may hold NULs: a file field is not text.
    let res = app
        .submit_multipart(
            "/achievements/new",
            "/achievements",
            &[("name", "Fine name"), ("condition_type", "playtime"), ("hours", "5")],
            Some(("image", "x.png", crate::images::png(4, 4, 0))),
        )
        .await;
    assert_ne!(res.status(), 400);
}

#[actix_web::test]
async fn page_numbers_of_any_size_are_clamped_instead_of_overflowing() {
    let app = app().await;
    for path in ["/community?page=9223372036854775807", "/community?page=-9223372036854775808"] {
        assert_eq!(new_client().get(app.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
    alice_signed_in(&app).await;
    for path in
        ["/library?page=9223372036854775807", "/library?page=-9223372036854775808&sort=completion", "/library?page=0"]
    {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    // A number past i64 is a clear 400, not a panic.
    assert_eq!(app.get("/library?page=99999999999999999999999").await.status(), 400);
}

fn lock_state(app: &TestApp) -> (Option<chrono::DateTime<chrono::Utc>>, i64) {
    let mut conn = app.pool.get().unwrap();
    let locked = users::table.filter(users::username.eq("alice")).select(users::locked_until).first(&mut conn).unwrap();
    let lockouts = audit_log::table.filter(audit_log::action.eq("lockout")).count().get_result(&mut conn).unwrap();
    (locked, lockouts)
}

#[actix_web::test]
async fn wrong_passwords_at_re_authentication_lock_the_account_as_at_sign_in() {
    let app = app().await;
    alice_signed_in(&app).await;
    for _ in 0..5 {
        let res = reauth(&app, &app.client, "/account/password", &[("password", "not my password at all")]).await;
        assert_eq!(res.status(), 401);
    }
    let (locked, lockouts) = lock_state(&app);
    assert!(locked.is_some_and(|t| t > chrono::Utc::now()), "the account is locked");
    assert_eq!(lockouts, 1);
    let mail = app.mail.next_email().await;
    assert_eq!(mail.to, "alice@example.com");
    assert!(mail.subject.contains("locked"), "{}", mail.subject);
    // While locked, even the right password does not re-authenticate.
    let res = reauth(&app, &app.client, "/account/password", &[("password", PASSWORD)]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(app.login_with(&new_client(), "alice", PASSWORD).await.status(), 401);
}

#[actix_web::test]
async fn wrong_passwords_when_turning_2fa_off_lock_the_account_as_at_sign_in() {
    let app = app().await;
    enrol(&app).await;
    for _ in 0..5 {
        let res = app
            .submit("/account/security", "/account/2fa/disable", &[("password", "not it at all"), ("code", "000000")])
            .await;
        assert_eq!(res.status(), 303);
    }
    let (locked, lockouts) = lock_state(&app);
    assert!(locked.is_some_and(|t| t > chrono::Utc::now()), "the account is locked");
    assert_eq!(lockouts, 1);
    let failures: i64 = audit_log::table
        .filter(audit_log::action.eq("login"))
        .filter(audit_log::success.eq(false))
        .count()
        .get_result(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(failures, 5, "each wrong answer is audited as a failure");
}

#[actix_web::test]
async fn the_email_change_form_answers_a_taken_address_as_a_free_one_and_tells_its_owner() {
    let app = app().await;
    app.register_verified_with(&new_client(), "bob", "bob@example.com", PASSWORD).await;
    alice_signed_in(&app).await;
    reauth(&app, &app.client, "/account/email", &[("password", PASSWORD)]).await;

    let taken = app.submit("/account/email", "/account/email", &[("email", "bob@example.com")]).await;
    let taken_flash = text_of(&html(app.client.get(app.url(&location(&taken))).send().await.unwrap()).await, ".flash");
    let free = app.submit("/account/email", "/account/email", &[("email", "carol@example.com")]).await;
    let free_flash = text_of(&html(app.client.get(app.url(&location(&free))).send().await.unwrap()).await, ".flash");
    assert_eq!((taken.status(), location(&taken)), (free.status(), location(&free)));
    assert_eq!(
        taken_flash.map(|f| f.replace("bob@example.com", "X")),
        free_flash.map(|f| f.replace("carol@example.com", "X"))
    );

    // Bob hears of it; Alice's pending address is the free one.
    let mut mails = [app.mail.next_email().await, app.mail.next_email().await, app.mail.next_email().await];
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    let to_bob = mails.iter().find(|m| m.to == "bob@example.com").expect("bob is told");
    assert!(to_bob.subject.contains("tried to use your email"), "{}", to_bob.subject);
    let pending: Option<String> = users::table
        .filter(users::username.eq("alice"))
        .select(users::pending_email)
        .first(&mut app.pool.get().unwrap())
        .unwrap();
    assert_eq!(pending.as_deref(), Some("carol@example.com"));

    // And the form is limited: five an hour.
    for i in 0..3 {
        let res = app.submit("/account/email", "/account/email", &[("email", &format!("x{i}@example.com"))]).await;
        assert_eq!(res.status(), 303);
    }
    let res = app.submit("/account/email", "/account/email", &[("email", "y@example.com")]).await;
    assert_eq!(res.status(), 429);
}

#[actix_web::test]
async fn reset_mails_to_one_address_are_limited_per_hour_whatever_the_client() {
    let app = app().await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    for _ in 0..6 {
        let res = app
            .submit_with(&new_client(), "/password/forgot", "/password/forgot", &[("email", "Alice@Example.com")])
            .await;
        assert_eq!(location(&res), "/login", "the same answer every time");
    }
    let mut conn = app.pool.get().unwrap();
    let queued: i64 = jobs::table
        .filter(jobs::kind.eq("send_email"))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("payload->>'to' = 'alice@example.com'"))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("payload->>'subject' LIKE 'Reset%'"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(queued, 3);
    let refused: i64 = audit_log::table
        .filter(audit_log::action.eq("reset_request"))
        .filter(audit_log::success.eq(false))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(refused, 3);
}

#[actix_web::test]
async fn a_chunked_form_over_the_limit_gets_413() {
    let app = app().await;
    let chunk = actix_web::web::Bytes::from(vec![b'a'; 64 * 1024]);
    let stream = futures_util::stream::iter((0..160).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let res = new_client()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(text_of(&html(res).await, "h1").as_deref(), Some("Upload too large"));
}

#[actix_web::test]
async fn head_is_answered_wherever_get_is() {
    let app = app().await;
    for path in ["/", "/login", "/community", "/healthz", "/static/css/app.css"] {
        let get = new_client().get(app.url(path)).send().await.unwrap();
        let head = new_client().head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(head.status().as_u16(), 200, "{path}");
        assert_eq!(head.headers().get("content-type"), get.headers().get("content-type"), "{path}");
        assert!(head.bytes().await.unwrap().is_empty(), "{path}: HEAD has no body");
    }
    // A page that needs a session answers HEAD as it answers GET.
    assert_eq!(new_client().head(app.url("/library")).send().await.unwrap().status(), 303);
}

fn session_keys(app: &TestApp) -> Vec<(String, i64)> {
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}:session:*", app.settings.redis_namespace)).query(&mut conn).unwrap();
    keys.into_iter()
        .map(|k| {
            let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut conn).unwrap();
            (k, ttl)
        })
        .collect()
}

#[actix_web::test]
async fn a_visitors_session_lives_hours_and_every_session_key_carries_the_namespace() {
    let app = app().await;
    app.register_verified_with(&new_client(), "alice", "alice@example.com", PASSWORD).await;
    let visitor = new_client();
    let before = session_keys(&app).len();
    visitor.get(app.url("/login")).send().await.unwrap();
    let keys = session_keys(&app);
    assert_eq!(keys.len(), before + 1, "the visitor's session is under the namespace");
    assert!(keys.iter().all(|(_, ttl)| (1..=2 * 3600).contains(ttl)), "{keys:?}");

    app.login_with(&visitor, "alice", PASSWORD).await;
    let longest = session_keys(&app).into_iter().map(|(_, ttl)| ttl).max().unwrap();
    assert!(longest > 24 * 3600, "a signed-in session keeps its long life: {longest}");
}

#[actix_web::test]
async fn post_only_admin_addresses_are_a_404_for_everyone_who_gets_them() {
    let app = app().await;
    alice_signed_in(&app).await;
    for path in ["/admin/cache/clear", "/admin/users/1/lock", "/admin/maintenance/on", "/admin/jobs/1/retry"] {
        assert_eq!(app.get(path).await.status(), 404, "signed in: {path}");
        assert_eq!(new_client().get(app.url(path)).send().await.unwrap().status(), 404, "visitor: {path}");
    }
}

#[actix_web::test]
async fn an_image_that_would_decode_past_the_memory_budget_is_refused_with_a_message() {
    let (app, _fake) = crate::achievements::synced_alice().await;
    // A PNG header declaring 4096×4096 RGBA at 16 bits a channel, no pixels.
    let mut data = Vec::new();
    let mut encoder = png::Encoder::new(&mut data, 4096, 4096);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_color(png::ColorType::Rgba);
    let mut writer = encoder.write_header().unwrap();
    writer.write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]).unwrap();
    drop(writer);
    let res = crate::images::create_with_image(&app, "big.png", data).await;
    assert_eq!(res.status(), 422);
    let errors = text_of(&html(res).await, "#form-errors").unwrap();
    assert!(errors.contains("too large to process"), "{errors}");
}
