//! The router driven without a socket, on the real model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use concord_core::Config;
use concord_embed::Model;
use concord_pipeline::Pipeline;
use concord_server::{AppState, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn state(data: &Path) -> AppState {
    let mut config = Config::embedded_default().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    config.model.dir = root.join(&config.model.dir);
    config.model.ort_dylib = root.join(&config.model.ort_dylib);
    config.data.dir = data.to_path_buf();
    let model = Model::load(&config.model).unwrap();
    AppState::new(Pipeline::start(&config, model).unwrap())
}

async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let data = tempfile::tempdir().unwrap();
    let response = app(state(data.path()))
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn healthz_answers_ok_with_a_request_id() {
    let (status, headers, body) = get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
    assert!(headers.contains_key("x-request-id"), "{headers:?}");
}

#[tokio::test]
async fn readyz_reports_the_loaded_model() {
    let (status, _, body) = get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["model"], "use-m-v3");
    assert_eq!(body["dim"], 512);
    assert_eq!(body["indexed_articles"], 0);
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let (status, _, _) = get("/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
