use crate::helpers::{html, spawn_app, text_of};

#[actix_web::test]
async fn a_post_without_the_token_is_refused() {
    let app = spawn_app().await;
    app.get("/login").await;
    let res = app.client.post(app.url("/login")).form(&[("login", "a"), ("password", "b")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let doc = html(res).await;
    assert!(text_of(&doc, ".error-detail").unwrap().contains("expired"));
}

#[actix_web::test]
async fn a_token_from_another_session_is_refused() {
    let app = spawn_app().await;
    let other = crate::helpers::new_client();
    let doc = html(other.get(app.url("/login")).send().await.unwrap()).await;
    let foreign = crate::helpers::csrf_token(&doc).unwrap();
    app.get("/login").await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("login", "a"), ("password", "b"), ("csrf_token", &foreign)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[actix_web::test]
async fn the_token_is_also_accepted_from_a_header() {
    let app = spawn_app().await;
    let doc = html(app.get("/login").await).await;
    let token = crate::helpers::csrf_token(&doc).unwrap();
    let res = app
        .client
        .post(app.url("/login"))
        .header("x-csrf-token", token)
        .form(&[("login", "a"), ("password", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "past the CSRF check, refused as a bad login");
}
