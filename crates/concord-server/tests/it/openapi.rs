//! The committed spec matches the code, and the served one matches both.

use std::path::Path;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use concord_server::{app, spec_json};

use crate::{send, state};

fn committed_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_committed_openapi_spec_matches_the_code() {
    let generated = spec_json();
    let path = committed_path();
    if std::env::var_os("CONCORD_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: regenerate it with \
         `cargo run -p concord -- openapi > docs/openapi.json` \
         (or CONCORD_UPDATE_OPENAPI=1 cargo test -p concord-server) and commit it"
    );
}

#[test]
fn the_spec_is_openapi_3_1_and_documents_every_v1_route() {
    let spec: serde_json::Value = serde_json::from_str(&spec_json()).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    for route in [
        "/v1/articles",
        "/v1/articles/batch",
        "/v1/articles/{id}",
        "/v1/articles/{id}/similar",
        "/v1/articles/{id}/move",
        "/v1/clusters",
        "/v1/clusters/{id}",
        "/v1/clusters/{id}/related",
        "/v1/clusters/{id}/merge",
        "/v1/clusters/{id}/split",
        "/v1/corrections",
        "/v1/search",
    ] {
        assert!(paths.contains_key(route), "{route} missing from the spec");
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    assert!(spec["components"]["schemas"]["ProblemBody"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_json_and_the_docs_page_are_served_without_a_key() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let mut request = Request::get("/openapi.json").body(Body::empty()).unwrap();
    request
        .headers_mut()
        .insert("authorization", "none".parse().unwrap());
    let (status, _, served) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    let generated: serde_json::Value = serde_json::from_str(&spec_json()).unwrap();
    assert_eq!(served, generated);
    let mut page = Request::get("/docs/").body(Body::empty()).unwrap();
    page.headers_mut()
        .insert("authorization", "none".parse().unwrap());
    let response = tower::ServiceExt::oneshot(router, page).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
