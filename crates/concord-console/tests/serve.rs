#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The console's routes as a browser meets them: the page and its files with their
//! types, the policy that keeps the page to its own origin, revalidation by ETag.

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use tower::ServiceExt;

async fn get(path: &str, if_none_match: Option<&str>) -> axum::response::Response {
    let mut request = Request::get(path);
    if let Some(tag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tag);
    }
    concord_console::router::<()>()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_loads_its_script_and_styles_from_its_own_origin() {
    let page = get("/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = axum::body::to_bytes(page.into_body(), 1 << 20)
        .await
        .unwrap();
    let html = String::from_utf8(html.to_vec()).unwrap();
    // Every file the page names is served, with a type the browser will run.
    for (path, kind) in [
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
        ("/console/vendor/uPlot.iife.min.js", "text/javascript"),
        ("/console/vendor/uPlot.min.css", "text/css"),
    ] {
        assert!(html.contains(path), "{path} not in the page");
        let file = get(path, None).await;
        assert_eq!(file.status(), StatusCode::OK, "{path}");
        let served = file.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(served.starts_with(kind), "{path}: {served}");
        assert_eq!(file.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    // The module the script imports, by the path it imports it from.
    let app = axum::body::to_bytes(get("/console/app.js", None).await.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&app).contains("'./vendor/preact-htm.module.js'"));
    assert_eq!(
        get("/console/vendor/preact-htm.module.js", None)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_cached_copy_is_revalidated_by_its_etag() {
    let first = get("/console/app.js", None).await;
    assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
    let tag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
    let again = get("/console/app.js", Some(&tag)).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let body = axum::body::to_bytes(again.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(body.is_empty());
    // Another file's tag does not match this one.
    let css_tag = get("/console/style.css", None).await.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(css_tag, tag);
    assert_eq!(
        get("/console/app.js", Some(&css_tag)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn nothing_else_is_served() {
    assert_eq!(
        get("/console/../Cargo.toml", None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(get("/console/", None).await.status(), StatusCode::NOT_FOUND);
}
