use crate::helpers::{html, spawn_app, text_of};

#[actix_web::test]
async fn the_home_page_renders_inside_the_layout() {
    let app = spawn_app().await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let doc = html(res).await;
    assert_eq!(text_of(&doc, "title").as_deref(), Some("Home · Questline"));
    assert_eq!(text_of(&doc, "nav .brand").as_deref(), Some("Questline"));
    assert!(text_of(&doc, "h1").unwrap().contains("Every achievement"));
}

#[actix_web::test]
async fn the_stylesheet_the_layout_links_is_served_as_css() {
    let app = spawn_app().await;
    let doc = html(app.get("/").await).await;
    let sel = scraper::Selector::parse("link[rel=stylesheet]").unwrap();
    let href = doc.select(&sel).next().unwrap().value().attr("href").unwrap().to_owned();
    let css = app.get(&href).await;
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    assert!(css.text().await.unwrap().contains(".flash"));
}

#[actix_web::test]
async fn a_visitor_on_a_page_without_forms_gets_no_session() {
    let app = spawn_app().await;
    let res = app.get("/").await;
    assert!(res.cookies().all(|c| c.name() != "questline_session"), "no session for the home page");
    let res = app.get("/login").await;
    assert!(res.cookies().any(|c| c.name() == "questline_session"), "the sign-in form starts one");
}
