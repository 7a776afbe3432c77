use crate::helpers::{html, spawn_app, text_of};

#[actix_web::test]
async fn an_unknown_page_gets_the_templated_404() {
    let app = spawn_app().await;
    let res = app.get("/no/such/page").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let doc = html(res).await;
    assert_eq!(text_of(&doc, "h1").as_deref(), Some("Page not found"));
    assert_eq!(text_of(&doc, ".error-code").as_deref(), Some("404"));
    assert!(text_of(&doc, "nav").is_some(), "error pages keep the site navigation");
}

#[actix_web::test]
async fn a_wrong_method_gets_the_templated_405() {
    let app = spawn_app().await;
    // With a valid CSRF token, so the request gets as far as routing.
    let token = crate::helpers::csrf_token(&html(app.get("/login").await).await).unwrap();
    let res = app.client.delete(app.url("/")).header("x-csrf-token", token).send().await.unwrap();
    assert_eq!(res.status(), 405);
    let doc = html(res).await;
    assert_eq!(text_of(&doc, "h1").as_deref(), Some("Method not allowed"));
}

#[actix_web::test]
async fn a_body_over_the_limit_gets_the_413_page_before_any_handler_reads_it() {
    let app = spawn_app_with_small_limit().await;
    let res = app
        .client
        .post(app.url("/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let doc = html(res).await;
    assert_eq!(text_of(&doc, "h1").as_deref(), Some("Upload too large"));
}

async fn spawn_app_with_small_limit() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(|env| {
        env.insert("MAX_BODY_BYTES".into(), "1024".into());
    })
    .await
}

#[actix_web::test]
async fn a_missing_static_file_is_a_404_page_not_a_server_error() {
    let app = spawn_app().await;
    let res = app.get("/static/css/nope.css").await;
    assert_eq!(res.status(), 404);
    let doc = html(res).await;
    assert_eq!(text_of(&doc, "h1").as_deref(), Some("Page not found"));
}

#[actix_web::test]
async fn a_path_escaping_the_static_directory_is_refused() {
    let app = spawn_app().await;
    let res = app.get("/static/..%2f..%2fCargo.toml").await;
    assert!(res.status().is_client_error(), "got {}", res.status());
    assert!(!res.text().await.unwrap().contains("[package]"));
}
