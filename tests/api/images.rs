use std::io::Cursor;

use diesel::prelude::*;
use questline::audit::AuditEntry;
use questline::schema::{audit_log, custom_achievements, image_blobs, images};

use crate::achievements::{newest_id, synced_alice};
use crate::helpers::{html, location, new_client, spawn_app_with, text_of, TestApp};
use crate::steam::PASSWORD;

pub(crate) fn png(width: u32, height: u32, shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([shade, 40, 90]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

const FIELDS: [(&str, &str); 3] = [("name", "Badge"), ("condition_type", "playtime"), ("hours", "5")];

pub(crate) async fn create_with_image(app: &TestApp, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    app.submit_multipart("/achievements/new", "/achievements", &FIELDS, Some(("image", name, bytes))).await
}

/// The list's thumbnail URL for the newest achievement.
async fn thumb_url(app: &TestApp) -> String {
    let doc = html(app.get("/achievements").await).await;
    let img = doc.select(&scraper::Selector::parse("#achievements img.badge").unwrap()).next().expect("a badge");
    img.value().attr("src").unwrap().to_owned()
}

fn image_audit(app: &TestApp) -> Vec<AuditEntry> {
    let mut conn = app.pool.get().unwrap();
    audit_log::table
        .filter(audit_log::event_type.eq("image"))
        .order(audit_log::id)
        .select(AuditEntry::as_select())
        .load(&mut conn)
        .unwrap()
}

#[actix_web::test]
async fn an_uploaded_image_is_reencoded_thumbnailed_served_with_its_type_and_audited() {
    let (app, _fake) = synced_alice().await;
    let res = create_with_image(&app, "photo.PNG", png(300, 200, 10)).await;
    assert_eq!(location(&res), "/achievements");

    let thumb = thumb_url(&app).await;
    assert!(thumb.ends_with("/thumb"));
    let res = app.get(&thumb).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.contains("max-age=31536000") && cache.contains("immutable") && cache.contains("private"), "{cache}");
    let small = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (128, 85));
    let full = app.get(thumb.trim_end_matches("/thumb")).await;
    let full = image::load_from_memory(&full.bytes().await.unwrap()).unwrap();
    assert_eq!((full.width(), full.height()), (300, 200));

    let entries = image_audit(&app);
    assert_eq!(entries.len(), 1);
    let d = &entries[0].details;
    assert_eq!(entries[0].action, "upload");
    assert_eq!(d["content_type"], "image/png");
    assert!(d["size"].as_u64().unwrap() > 0 && d["duration_ms"].is_u64());
    let mut conn = app.pool.get().unwrap();
    let sha: String = image_blobs::table.select(image_blobs::sha256).first(&mut conn).unwrap();
    assert_eq!(d["sha256"], sha.as_str());
    // Stored under random names, not the uploaded one.
    let files = app.stored_files();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| !f.to_string_lossy().contains("photo")));
}

#[actix_web::test]
async fn a_file_over_five_megabytes_gets_the_form_back_with_a_message_and_nothing_is_saved() {
    let (app, _fake) = synced_alice().await;
    let mut big = png(10, 10, 1);
    big.resize(5 * 1024 * 1024 + 10, 0);
    let res = create_with_image(&app, "big.png", big).await;
    assert_eq!(res.status(), 422, "the form, with what was typed, not an error page");
    let errors = text_of(&html(res).await, "#form-errors").unwrap();
    assert!(errors.contains("larger than 5 MB"), "{errors}");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(custom_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
    assert!(app.stored_files().is_empty());
}

#[actix_web::test]
async fn a_file_that_is_not_really_an_image_is_refused_whatever_its_name() {
    let (app, _fake) = synced_alice().await;
    let res = create_with_image(&app, "evil.png", b"<html><script>alert(1)</script></html>".to_vec()).await;
    assert_eq!(res.status(), 422);
    let errors = text_of(&html(res).await, "#form-errors").unwrap();
    assert!(errors.contains("not an image Questline accepts"), "{errors}");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(custom_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
    assert!(app.stored_files().is_empty());
}

#[actix_web::test]
async fn the_same_image_uploaded_twice_is_stored_once() {
    let (app, _fake) = synced_alice().await;
    create_with_image(&app, "a.png", png(50, 50, 7)).await;
    create_with_image(&app, "b.png", png(50, 50, 7)).await;
    let mut conn = app.pool.get().unwrap();
    assert_eq!(images::table.count().get_result::<i64>(&mut conn).unwrap(), 2);
    assert_eq!(image_blobs::table.count().get_result::<i64>(&mut conn).unwrap(), 1);
    assert_eq!(app.stored_files().len(), 2, "one image and one thumbnail");
}

#[actix_web::test]
async fn replacing_then_removing_an_image_deletes_the_unused_files_and_audits_both() {
    let (app, _fake) = synced_alice().await;
    create_with_image(&app, "a.png", png(40, 40, 1)).await;
    let id = newest_id(&app);
    let old_thumb = thumb_url(&app).await;
    let (page, action) = (format!("/achievements/{id}/edit"), format!("/achievements/{id}"));
    let res = app.submit_multipart(&page, &action, &FIELDS, Some(("image", "b.png", png(40, 40, 2)))).await;
    assert_eq!(location(&res), "/achievements");
    assert_eq!(app.get(&old_thumb).await.status(), 404, "the old image is gone");
    assert_eq!(app.stored_files().len(), 2, "only the new image and its thumbnail remain");

    let mut fields = FIELDS.to_vec();
    fields.push(("remove_image", "1"));
    app.submit_multipart(&page, &action, &fields, None).await;
    assert!(app.stored_files().is_empty());
    let entries = image_audit(&app);
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["upload", "replace", "delete"]);
    for e in &entries {
        for key in ["size", "content_type", "sha256", "duration_ms"] {
            assert!(!e.details[key].is_null(), "{} records {key}: {}", e.action, e.details);
        }
    }
    assert!(!entries[1].details["replaced_sha256"].is_null());
}

#[actix_web::test]
async fn another_user_cannot_fetch_a_private_image_even_with_its_address() {
    let (app, _fake) = synced_alice().await;
    create_with_image(&app, "a.png", png(40, 40, 3)).await;
    let thumb = thumb_url(&app).await;
    let bob = new_client();
    app.register_verified_with(&bob, "bob", "bob@example.com", PASSWORD).await;
    app.login_with(&bob, "bob", PASSWORD).await;
    assert_eq!(bob.get(app.url(&thumb)).send().await.unwrap().status(), 404);
    assert_eq!(new_client().get(app.url(&thumb)).send().await.unwrap().status(), 404, "nor can a visitor");
    assert_eq!(app.get("/media/00000000000000000000000000000000").await.status(), 404);
}

#[actix_web::test]
async fn uploads_past_the_quota_are_refused_with_a_message() {
    let fake = questline::steam::fake::FakeSteam::start(crate::steam::portal_state()).unwrap();
    let base = fake.base_url();
    let app = spawn_app_with(|env| {
        env.insert("STEAM_API_BASE_URL".into(), base);
        env.insert("UPLOAD_QUOTA_BYTES".into(), "4000".into());
    })
    .await;
    app.register_verified("alice", "alice@example.com", PASSWORD).await;
    app.login_with(&app.client, "alice", PASSWORD).await;
    // Noise does not compress: this PNG is well over 4000 bytes.
    let noisy = {
        let mut seed: u32 = 12345;
        let img = image::RgbImage::from_fn(64, 64, |_, _| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let b = seed.to_be_bytes();
            image::Rgb([b[0], b[1], b[2]])
        });
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let res = create_with_image(&app, "a.png", noisy.clone()).await;
    assert_eq!(res.status(), 422);
    assert!(text_of(&html(res).await, "#form-errors").unwrap().contains("quota"));
    let mut conn = app.pool.get().unwrap();
    assert_eq!(custom_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
    assert_eq!(image_blobs::table.count().get_result::<i64>(&mut conn).unwrap(), 0);

    // An edit refused for the quota changes nothing, not even the name.
    let res = app.submit_multipart("/achievements/new", "/achievements", &FIELDS, None).await;
    assert_eq!(res.status(), 303);
    let id = newest_id(&app);
    let renamed = [("name", "Renamed"), ("condition_type", "playtime"), ("hours", "5")];
    let (page, action) = (format!("/achievements/{id}/edit"), format!("/achievements/{id}"));
    let res = app.submit_multipart(&page, &action, &renamed, Some(("image", "a.png", noisy))).await;
    assert_eq!(res.status(), 422);
    let name: String = custom_achievements::table.find(id).select(custom_achievements::name).first(&mut conn).unwrap();
    assert_eq!(name, "Badge");
}

#[actix_web::test]
async fn an_upload_without_its_csrf_token_is_refused() {
    let (app, _fake) = synced_alice().await;
    let form = reqwest::multipart::Form::new()
        .text("name", "Forged")
        .text("condition_type", "playtime")
        .text("hours", "1")
        .part("image", reqwest::multipart::Part::bytes(png(8, 8, 1)).file_name("x.png"));
    let res = app.client.post(app.url("/achievements")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let mut conn = app.pool.get().unwrap();
    assert_eq!(custom_achievements::table.count().get_result::<i64>(&mut conn).unwrap(), 0);
}

#[actix_web::test]
async fn files_no_row_refers_to_are_swept_once_past_the_grace_period() {
    let (app, _fake) = synced_alice().await;
    create_with_image(&app, "a.png", png(20, 20, 4)).await;
    let storage = questline::images::LocalStorage::new(app.settings.upload_dir.clone());
    // What a killed import or a failed upload transaction leaves behind.
    questline::images::Storage::put(&storage, "0123456789abcdef0123456789abcdef.png", b"stray").unwrap();
    assert_eq!(app.stored_files().len(), 3);
    let mut conn = app.pool.get().unwrap();
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(questline::images::model::sweep_stray_files(&mut conn, &storage, hour).unwrap(), 0, "too recent");
    let removed = questline::images::model::sweep_stray_files(&mut conn, &storage, std::time::Duration::ZERO).unwrap();
    assert_eq!(removed, 1);
    assert_eq!(app.stored_files().len(), 2, "the referenced image and thumbnail stay");
    assert_eq!(app.get(&thumb_url(&app).await).await.status(), 200);
}
