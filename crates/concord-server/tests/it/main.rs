//! The router driven without a socket, on the real model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

mod corrections;
mod openapi;
mod shapes;
mod webhooks;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use concord_core::Config;
use concord_core::config::{ApiKey, Role};
use concord_embed::Model;
use concord_pipeline::Pipeline;
use concord_server::{AppState, Keys, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn state(data: &Path) -> AppState {
    let mut config = Config::embedded_default().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    config.model.dir = root.join(&config.model.dir);
    config.model.ort_dylib = root.join(&config.model.ort_dylib);
    config.data.dir = data.to_path_buf();
    // CONCORD_TEST_STORE=postgres: the same tests on PostgreSQL, a fresh database each
    // (scripts/test.sh runs them both ways).
    if std::env::var("CONCORD_TEST_STORE").as_deref() == Ok("postgres") {
        let hint = data
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("server");
        let url = tokio::task::block_in_place(|| concord_testpg::database(hint))
            .unwrap_or_else(|e| panic!("{e}"));
        config.store.backend = concord_core::config::StoreBackend::Postgres;
        config.store.postgres_url = concord_core::config::PostgresUrl::new(url);
    }
    let model = Model::load(&config.model).unwrap();
    let mut keys = config.auth.keys.clone();
    keys.push(ApiKey {
        name: "reader".into(),
        role: Role::Read,
        sha256: sha256_hex(READ_KEY),
    });
    // Blocking start-up (a PostgreSQL client must not run on an async worker).
    let pipeline = tokio::task::block_in_place(|| Pipeline::start(&config, model)).unwrap();
    AppState::new(pipeline, Keys::new(&keys))
}

/// The README's local key (admin) is in the default config; tests add a read-only one.
pub(crate) const DEV_KEY: &str = "concord-dev-key";
pub(crate) const READ_KEY: &str = "test-read-key";

fn sha256_hex(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

async fn send(
    router: &axum::Router,
    mut request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    // Requests carry the admin key unless the test set one (or "none").
    let headers = request.headers_mut();
    if headers.get("authorization").is_none() {
        headers.insert(
            "authorization",
            format!("Bearer {DEV_KEY}").parse().unwrap(),
        );
    } else if headers["authorization"] == "none" {
        headers.remove("authorization");
    }
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    send(&router, Request::get(path).body(Body::empty()).unwrap()).await
}

fn post(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_article_posted_with_wait_is_clustered_and_readable() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let body = serde_json::json!({
        "external_id": "feed-1",
        "title": "La Chine lance une initiative mondiale sur la sécurité des données",
        "body": "Le ministre Wang Yi a présenté mardi l'initiative à Pékin.",
        "published_at": "2020-09-08T10:00:00Z",
        "lang": "fr"
    })
    .to_string();
    let (status, _, out) = send(&router, post("/v1/articles?wait=true", &body)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "clustered");
    assert_eq!(out["lang"], "fr");
    assert_eq!(out["lang_source"], "given");
    let id = out["id"].as_str().unwrap().to_owned();
    let cluster = out["cluster"].as_str().unwrap().to_owned();

    let (status, _, again) = send(&router, post("/v1/articles", &body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "unchanged");
    assert_eq!(again["id"], id.as_str());

    let get_req = |path: String| Request::get(path).body(Body::empty()).unwrap();
    let (status, _, article) = send(&router, get_req(format!("/v1/articles/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(article["external_id"], "feed-1");
    assert_eq!(article["state"], "clustered");
    assert_eq!(article["cluster"], cluster.as_str());

    let (status, _, c) = send(&router, get_req(format!("/v1/clusters/{cluster}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["size"], 1);
    assert_eq!(c["languages"], serde_json::json!(["fr"]));
    assert_eq!(c["members"][0]["id"], id.as_str());
    assert!(c["label"].as_str().unwrap().contains("initiative"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_problem_json_with_the_field() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let t = r#""published_at":"2020-09-08T10:00:00Z""#;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases = [
        (
            "{not json".to_owned(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            format!(r#"{{"title":"x",{t}}}"#),
            unprocessable,
            "invalid_field",
            Some("external_id"),
        ),
        (
            r#"{"external_id":"a","title":"x","published_at":"yesterday"}"#.to_owned(),
            unprocessable,
            "invalid_field",
            Some("published_at"),
        ),
        (
            format!(r#"{{"external_id":"a","title":"Titre",{t},"lang":"klingon"}}"#),
            unprocessable,
            "invalid_field",
            Some("lang"),
        ),
        (
            format!(r#"{{"external_id":" ","title":"Titre",{t}}}"#),
            unprocessable,
            "invalid_field",
            Some("external_id"),
        ),
        (
            format!(r#"{{"external_id":"a","title":"...","body":"!!",{t}}}"#),
            unprocessable,
            "unusable_text",
            Some("title"),
        ),
        (
            format!(r#"{{"external_id":"a","title":"x",{t},"extra":1}}"#),
            unprocessable,
            "invalid_field",
            Some("extra"),
        ),
        (
            format!(r#"{{"external_id":"a","title":"","body":"",{t}}}"#),
            unprocessable,
            "unusable_text",
            Some("title"),
        ),
        (
            format!(r#"{{"external_id":"a","title":"\u0000","body":"\u0000 \u200b",{t}}}"#),
            unprocessable,
            "unusable_text",
            Some("title"),
        ),
        // A raw NUL byte inside a JSON string is not JSON (escaped, it is: above).
        (
            format!("{{\"external_id\":\"a\",\"title\":\"x\0y\",{t}}}"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        // 10,000 nested arrays: refused at the first bracket, not recursed into.
        (
            format!(
                r#"{{"external_id":"a","title":{}{},{t}}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            ),
            unprocessable,
            "invalid_field",
            Some("title"),
        ),
        (
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            unprocessable,
            "invalid_field",
            None,
        ),
        // Publication dates: refused outside [1900-01-01, now + 24 h].
        (
            r#"{"external_id":"a","title":"Titre","published_at":"9999-01-01T00:00:00Z"}"#
                .to_owned(),
            unprocessable,
            "invalid_field",
            Some("published_at"),
        ),
        (
            r#"{"external_id":"a","title":"Titre","published_at":"0001-01-01T00:00:00Z"}"#
                .to_owned(),
            unprocessable,
            "invalid_field",
            Some("published_at"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, headers, problem) = send(&router, post("/v1/articles", &body)).await;
        assert_eq!(got, status, "{body}: {problem}");
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{body}"
        );
        assert_eq!(problem["code"], code, "{body}: {problem}");
        assert_eq!(problem["status"], status.as_u16());
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{body}: {problem}");
        }
    }
    let huge = format!(
        r#"{{"external_id":"h","title":"t",{t},"body":"{}"}}"#,
        "x".repeat(concord_server::MAX_BODY_BYTES)
    );
    let (status, headers, problem) = send(&router, post("/v1/articles", &huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["code"], "body_too_large");
    // Not UTF-8 at all: malformed JSON.
    let mut invalid_utf8 = br#"{"external_id":"a","title":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend_from_slice(format!(r#"",{t}}}"#).as_bytes());
    let request = Request::post("/v1/articles")
        .header("content-type", "application/json")
        .body(Body::from(invalid_utf8))
        .unwrap();
    let (status, headers, problem) = send(&router, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["code"], "malformed_json");
    let missing = Request::get("/v1/articles/a999")
        .body(Body::empty())
        .unwrap();
    let (status, headers, problem) = send(&router, missing).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_but_valid_articles_are_accepted() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let t = r#""published_at":"2020-09-08T10:00:00Z""#;

    // A body just under the limit: accepted, and cut to the model's budget.
    let head = format!(
        r#"{{"external_id":"big","title":"Seoul hosts talks on data security",{t},"body":""#
    );
    let sentence = "Officials met in Seoul on Tuesday to discuss the security of data. ";
    let room = concord_server::MAX_BODY_BYTES - 1 - head.len() - r#""}"#.len();
    let mut text = sentence.repeat(room / sentence.len() + 1);
    text.truncate(room);
    let big = format!(r#"{head}{text}"}}"#);
    assert_eq!(big.len(), concord_server::MAX_BODY_BYTES - 1);
    let (status, _, out) = send(&router, post("/v1/articles", &big)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    assert_eq!(out["truncated"], true);
    assert_eq!(out["lang"], "en");

    // Mixed scripts, escaped NUL bytes and stray controls in strings, punctuation
    // around real words, and an old but plausible date.
    for (id, title, body, published_at) in [
        (
            "mixed",
            "Seoul 서울 Сеул سيول 首尔 talks on data security",
            "Officials met. 관계자들이 만났다. Чиновники встретились. التقى المسؤولون.",
            "2020-09-08T10:00:00Z",
        ),
        (
            "nul",
            r"Seoul\u0000 hosts\u0007 talks on data security",
            r"\u0000\u0000",
            "2020-09-08T10:00:00Z",
        ),
        (
            "punct",
            "!!! Seoul hosts talks on data security ???",
            r"---\n***\n...",
            "2020-09-08T10:00:00Z",
        ),
        (
            "old",
            "Armistice signed, guns fall silent on the Western Front",
            "",
            "1918-11-11T11:00:00Z",
        ),
    ] {
        let body = format!(
            r#"{{"external_id":"{id}","title":"{title}","body":"{body}","published_at":"{published_at}"}}"#
        );
        let (status, _, out) = send(&router, post("/v1/articles", &body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{id}: {out}");
        assert_eq!(out["external_id"], id);
    }
    // NUL is removed from every string (PostgreSQL's text cannot hold it), on both engines
    // alike; the answer shows the id as stored.
    let body = r#"{"external_id":"n\u0000ul-id","title":"Seoul\u0000 talks","published_at":"2020-09-08T10:00:00Z"}"#;
    let (status, _, out) = send(&router, post("/v1/articles?wait=true", body)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["external_id"], "nul-id");
    let path = format!("/v1/articles/{}", out["id"].as_str().unwrap());
    let (_, _, article) = send(&router, Request::get(path).body(Body::empty()).unwrap()).await;
    assert_eq!(article["title"], "Seoul talks", "{article}");
    let only_nul =
        r#"{"external_id":"\u0000","title":"Seoul talks","published_at":"2020-09-08T10:00:00Z"}"#;
    let (status, _, out) = send(&router, post("/v1/articles", only_nul)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(out["field"], "external_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_deep_batches_are_refused_whole() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    // 10,000 small articles fit the byte limit but not the batch limit.
    let item = r#"{"external_id":"x","title":"t","published_at":"2020-09-08T10:00:00Z"}"#;
    let body = format!(r#"{{"articles":[{}]}}"#, vec![item; 10_000].join(","));
    assert!(body.len() < concord_server::MAX_BODY_BYTES);
    let (status, headers, problem) = send(&router, post("/v1/articles/batch", &body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["code"], "batch_too_large");
    assert_eq!(problem["field"], "articles");

    // Items are read as any JSON first: 10,000 nested arrays stop at serde_json's
    // recursion limit instead of the stack.
    let body = format!(
        r#"{{"articles":[{}{}]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (status, _, problem) = send(&router, post("/v1/articles/batch", &body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "malformed_json");

    // Dates are checked per item, with the item's path.
    let batch = serde_json::json!({ "articles": [
        { "external_id": "f", "title": "Titre", "published_at": "9999-01-01T00:00:00Z" },
        { "external_id": "p", "title": "Titre", "published_at": "0001-01-01T00:00:00Z" },
    ]})
    .to_string();
    let (status, _, out) = send(&router, post("/v1/articles/batch", &batch)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["refused"], 2);
    assert_eq!(
        out["results"][0]["problem"]["field"],
        "articles[0].published_at"
    );
    assert_eq!(
        out["results"][1]["problem"]["field"],
        "articles[1].published_at"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_ok_with_a_request_id() {
    let (status, headers, body) = get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
    assert!(headers.contains_key("x-request-id"), "{headers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_the_loaded_model() {
    let (status, _, body) = get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["model"], "use-m-v3");
    assert_eq!(body["dim"], 512);
    assert_eq!(body["indexed_articles"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_problems() {
    let (status, headers, body) = get("/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_listed_filtered_paginated_and_searchable() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let articles = [
        (
            "d-fr",
            "fr",
            "La Chine propose une initiative mondiale sur la sécurité des données",
        ),
        (
            "d-en",
            "en",
            "China proposes a global initiative on data security",
        ),
        (
            "w-en",
            "en",
            "Heavy rain and flood warnings across northern England this weekend",
        ),
    ];
    for (id, lang, title) in articles {
        let body = serde_json::json!({
            "external_id": id, "title": title, "lang": lang,
            "published_at": "2020-09-08T10:00:00Z"
        })
        .to_string();
        let (status, _, out) = send(&router, post("/v1/articles?wait=true", &body)).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    let get_req = |path: &str| Request::get(path).body(Body::empty()).unwrap();

    let (status, _, page) = send(&router, get_req("/v1/clusters?sort=size&limit=200")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let clusters = page["clusters"].as_array().unwrap();
    let total: u64 = clusters.iter().map(|c| c["size"].as_u64().unwrap()).sum();
    assert_eq!(total, 3, "{page}");
    let sizes: Vec<u64> = clusters
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect();
    assert!(
        sizes.windows(2).all(|w| w[0] >= w[1]),
        "not sorted by size: {sizes:?}"
    );
    assert!(page["next_cursor"].is_null());

    // Keyset pagination walks every cluster exactly once.
    let mut seen = Vec::new();
    let mut path = "/v1/clusters?limit=1".to_owned();
    loop {
        let (status, _, page) = send(&router, get_req(&path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for c in page["clusters"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/clusters?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), clusters.len(), "{seen:?}");

    let (_, _, none) = send(&router, get_req("/v1/clusters?lang=ar")).await;
    assert_eq!(none["clusters"].as_array().unwrap().len(), 0);
    let (_, _, fr) = send(&router, get_req("/v1/clusters?lang=fr")).await;
    assert_eq!(fr["clusters"].as_array().unwrap().len(), 1);
    let (_, _, later) = send(&router, get_req("/v1/clusters?from=2021-01-01T00:00:00Z")).await;
    assert_eq!(later["clusters"].as_array().unwrap().len(), 0);
    let (status, _, problem) = send(&router, get_req("/v1/clusters?sort=oldest")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "sort");
    let (status, _, problem) = send(&router, get_req("/v1/clusters?cursor=bogus")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "cursor");
    // A text query (any language) keeps the clusters of the articles it finds.
    let (status, _, rain) = send(
        &router,
        get_req("/v1/clusters?q=inondations%20et%20fortes%20pluies%20en%20Angleterre"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rain}");
    let labels: Vec<&str> = rain["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 1, "{rain}");
    assert!(labels[0].contains("flood"), "{rain}");

    // Search in another language finds the data-security reports first.
    let (status, _, found) = send(
        &router,
        get_req("/v1/search?q=seguridad%20de%20los%20datos%20China&k=3"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let first = found["hits"][0]["title"].as_str().unwrap();
    assert!(
        first.contains("data security") || first.contains("sécurité"),
        "{found}"
    );
    assert!(!found["clusters"].as_array().unwrap().is_empty());
    let (status, _, problem) = send(&router, get_req("/v1/search?q=%20")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "q");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_per_item_and_deletes_update_the_cluster() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let batch = serde_json::json!({ "articles": [
        { "external_id": "b-1", "title": "Seoul hosts talks on data security", "published_at": "2020-09-08T10:00:00Z" },
        { "external_id": "b-2", "title": "Titre", "lang": "klingon", "published_at": "2020-09-08T10:00:00Z" },
        { "external_id": "b-3", "title": "No date" },
    ]})
    .to_string();
    let (status, _, out) = send(&router, post("/v1/articles/batch", &batch)).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["accepted"], 1);
    assert_eq!(out["refused"], 2);
    assert_eq!(out["results"][0]["status"], "queued");
    assert_eq!(out["results"][1]["problem"]["field"], "articles[1].lang");
    assert_eq!(
        out["results"][2]["problem"]["field"],
        "articles[2].published_at"
    );

    let too_many: Vec<serde_json::Value> = (0..501)
        .map(|i| serde_json::json!({ "external_id": format!("x-{i}"), "title": "t", "published_at": "2020-09-08T10:00:00Z" }))
        .collect();
    let body = serde_json::json!({ "articles": too_many }).to_string();
    let (status, _, problem) = send(&router, post("/v1/articles/batch", &body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["code"], "batch_too_large");

    // Delete: the article leaves its cluster and is gone for searches.
    let one = serde_json::json!({ "external_id": "del-1", "title": "Seoul hosts talks on data security", "published_at": "2020-09-08T11:00:00Z" }).to_string();
    let (_, _, posted) = send(&router, post("/v1/articles?wait=true", &one)).await;
    let id = posted["id"].as_str().unwrap().to_owned();
    let cluster = posted["cluster"].as_str().unwrap().to_owned();
    let delete = |path: String| Request::delete(path).body(Body::empty()).unwrap();
    let (status, _, deleted) = send(&router, delete(format!("/v1/articles/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["left_cluster"], cluster.as_str());
    let get_req = |path: String| Request::get(path).body(Body::empty()).unwrap();
    let (_, _, article) = send(&router, get_req(format!("/v1/articles/{id}"))).await;
    assert_eq!(article["state"], "deleted");
    assert!(article["cluster"].is_null());
    let (status, _, _) = send(&router, delete(format!("/v1/articles/{id}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_roles_guard_every_v1_route() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let with = |method: &str, path: &str, key: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", key)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"external_id":"k","title":"Titre","published_at":"2020-09-08T10:00:00Z"}"#,
            ))
            .unwrap()
    };
    let (status, headers, problem) = send(&router, with("GET", "/v1/clusters", "none")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(problem["code"], "unauthorized");
    let (status, _, _) = send(&router, with("GET", "/v1/clusters", "Bearer not-a-key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reader = format!("Bearer {READ_KEY}");
    let (status, _, _) = send(&router, with("GET", "/v1/clusters", &reader)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, problem) = send(&router, with("POST", "/v1/articles", &reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["code"], "forbidden");
    let x_api_key = Request::get("/v1/clusters")
        .header("authorization", "none")
        .header("x-api-key", DEV_KEY)
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = send(&router, x_api_key).await;
    assert_eq!(status, StatusCode::OK);
    // Health needs no key.
    let (status, _, _) = send(&router, with("GET", "/healthz", "none")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_ingest_batches_and_clustering_without_a_key() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let body = serde_json::json!({
        "external_id": "m-1",
        "title": "China proposes a global initiative on data security",
        "published_at": "2020-09-08T10:00:00Z",
        "lang": "en"
    })
    .to_string();
    let (status, _, _) = send(&router, post("/v1/articles?wait=true", &body)).await;
    assert_eq!(status, StatusCode::OK);
    send(&router, post("/v1/articles", &body)).await;
    let mut scrape = Request::get("/metrics").body(Body::empty()).unwrap();
    scrape
        .headers_mut()
        .insert("authorization", "none".parse().unwrap());
    let response = router.clone().oneshot(scrape).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for needle in [
        r#"concord_http_requests_total{method="POST",route="/v1/articles",status="200"} 2"#,
        r#"concord_ingest_articles_total{outcome="queued"} 1"#,
        r#"concord_ingest_articles_total{outcome="unchanged"} 1"#,
        "concord_embed_batch_size_count 1",
        "concord_articles_clustered_total 1",
        "concord_clusters_created_total 1",
        r#"concord_queue_depth{queue="embed"} 0"#,
        "concord_indexed_articles 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

/// What the spec's patterns and enums say, the server enforces: ids are a prefix and
/// 1 to 19 digits (no sign), cursors likewise, bodies are objects, webhook URLs are
/// RFC 3986 URIs naming a host; and an empty replay range is no mistake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_are_refused_exactly_as_the_spec_says() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    for (path, status, field) in [
        ("/v1/articles/a1", StatusCode::NOT_FOUND, None),
        ("/v1/articles/1", StatusCode::NOT_FOUND, None),
        (
            "/v1/articles/a9999999999999999999",
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "/v1/articles/a+1",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("article id"),
        ),
        (
            "/v1/articles/a-1",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("article id"),
        ),
        (
            "/v1/articles/a",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("article id"),
        ),
        (
            "/v1/articles/a10000000000000000000",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("article id"),
        ),
        (
            "/v1/clusters/c1/related?k=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("k"),
        ),
        (
            "/v1/clusters?cursor=recent:%2B1:1",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cursor"),
        ),
        (
            "/v1/clusters?cursor=size:1:1",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cursor"),
        ),
        ("/v1/clusters?cursor=recent:-1:1", StatusCode::OK, None),
        (
            "/v1/clusters?sort=oldest",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("sort"),
        ),
    ] {
        let (got, headers, problem) = send(&router, get(path)).await;
        assert_eq!(got, status, "{path}: {problem}");
        if let Some(field) = field {
            assert_eq!(
                headers["content-type"], "application/problem+json",
                "{path}"
            );
            assert_eq!(problem["field"], field, "{path}: {problem}");
        }
    }
    // A struct is not read from an array of its fields.
    let t = "2020-09-08T10:00:00Z";
    let (status, _, problem) = send(
        &router,
        post("/v1/articles", &format!(r#"["a","Titre","",null,"{t}"]"#)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], ".");
    let batch = format!(r#"{{"articles":[["a","Titre","",null,"{t}"]]}}"#);
    let (status, _, answer) = send(&router, post("/v1/articles/batch", &batch)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"][0]["problem"]["field"], "articles[0]");
    // A bad query parameter is a problem, like any other.
    let (status, headers, _) = send(&router, post("/v1/articles?wait=maybe", "{}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(headers["content-type"], "application/problem+json");
    // Webhook URLs: RFC 3986 characters only, host names of letters, digits, dots, hyphens.
    let subscribe = |url: &str| {
        post(
            "/v1/webhooks/subscriptions",
            &serde_json::json!({ "url": url, "event_types": ["cluster.created"] }).to_string(),
        )
    };
    for url in [
        "https://exa*mple.com/hook",
        "https://example.com/h\u{fc}k",
        "https://example.com/a b",
        "https://example.com/%zz",
        "https://example.com/#a#b",
    ] {
        let (status, _, problem) = send(&router, subscribe(url)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {problem}");
        assert_eq!(problem["field"], "url", "{url}");
    }
    let (status, _, created) = send(&router, subscribe("HTTPS://example.com/h%C3%BCk?x=1#f")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let replay = |from: &str, to: &str| {
        post(
            &format!("/v1/webhooks/subscriptions/{id}/replay"),
            &serde_json::json!({ "from": from, "to": to }).to_string(),
        )
    };
    let (status, _, answer) = send(&router, replay(t, t)).await;
    assert_eq!(
        (status, answer["queued"].as_u64()),
        (StatusCode::ACCEPTED, Some(0))
    );
    let (status, _, problem) = send(&router, replay(t, "2020-09-08T09:00:00Z")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_list_what_the_poller_reports_to_any_key() {
    let data = tempfile::tempdir().unwrap();
    let state = state(data.path());
    let router = app(state.clone());
    let read = |path: &str| {
        Request::get(path)
            .header("authorization", format!("Bearer {READ_KEY}"))
            .body(Body::empty())
            .unwrap()
    };
    // No feeds configured: an empty list.
    let (status, _, out) = send(&router, read("/v1/feeds")).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out, serde_json::json!({"feeds": []}));
    state.set_feeds(concord_server::FeedStatus::new(|| {
        let feed = |name: &str, error: Option<&str>| concord_server::FeedOut {
            name: name.into(),
            url: format!("https://example.org/{name}.xml"),
            polled_at: Some("2026-12-06T10:00:00Z".parse().unwrap()),
            ok_at: None,
            error: error.map(Into::into),
            items_queued: 2,
            items_unchanged: 0,
            items_refused: 1,
        };
        vec![
            feed("zz-broken", Some("not a feed: no root element")),
            feed("lemonde", None),
        ]
    }));
    let (status, _, out) = send(&router, read("/v1/feeds")).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = out["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lemonde", "zz-broken"]);
    assert_eq!(out["feeds"][1]["error"], "not a feed: no root element");
    assert_eq!(out["feeds"][0]["polled_at"], "2026-12-06T10:00:00Z");
    let (status, _, _) = send(
        &router,
        Request::get("/v1/feeds")
            .header("authorization", "none")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
