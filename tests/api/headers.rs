use crate::helpers::{spawn_app, spawn_app_with};

const PATHS: [&str; 4] = ["/", "/no/such/page", "/healthz", "/static/css/app.css"];

#[actix_web::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in PATHS {
        let res = app.get(path).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        assert!(h["permissions-policy"].to_str().unwrap().contains("camera=()"), "{path}");
        assert!(h.get("strict-transport-security").is_none(), "{path}: no HSTS over plain http");
    }
}

#[actix_web::test]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let app = spawn_app_with(|env| {
        env.insert("PUBLIC_BASE_URL".into(), "https://questline.example".into());
    })
    .await;
    let res = app.get("/").await;
    let hsts = res.headers()["strict-transport-security"].to_str().unwrap();
    assert!(hsts.starts_with("max-age="), "{hsts}");
}

#[actix_web::test]
async fn each_response_has_its_own_request_id() {
    let app = spawn_app().await;
    let a = app.get("/").await.headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = app.get("/").await.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(a.len(), 36, "a UUID: {a}");
    assert_ne!(a, b);
}

#[actix_web::test]
async fn pages_shown_to_nobody_in_particular_may_be_cached_but_static_files_are() {
    let app = spawn_app().await;
    let page = app.get("/").await;
    assert!(page.headers().get("cache-control").is_none());
    let css = app.get("/static/css/app.css").await;
    assert_eq!(css.headers()["cache-control"], "public, max-age=86400");
}

#[actix_web::test]
async fn no_page_contains_inline_script_or_style() {
    let app = spawn_app().await;
    for path in ["/", "/no/such/page"] {
        let body = app.get(path).await.text().await.unwrap();
        assert!(!body.contains("<script>"), "{path}");
        assert!(!body.contains("<style"), "{path}");
        assert!(!body.contains(" style="), "{path}");
        assert!(!body.contains(" onclick="), "{path}");
    }
}
