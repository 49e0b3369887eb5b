//! Snapshots of the JSON shapes clients see. Values that differ between runs
//! (times of receipt, similarities computed in floating point) are redacted;
//! everything else, ids included, is deterministic for a fresh store.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use concord_server::app;
use serde_json::json;

use crate::{READ_KEY, post, send, state};

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::assert_json_snapshot!($name, $value, {
            ".**.received_at" => "[received_at]",
            ".**.similarity" => "[similarity]",
            ".**.at" => "[at]",
        })
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_shapes() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let article = |ext: &str, title: &str, lang: &str, at: &str| {
        json!({ "external_id": ext, "title": title, "lang": lang, "published_at": at }).to_string()
    };
    let (status, _, accepted) = send(
        &router,
        post(
            "/v1/articles?wait=true",
            &article(
                "s-fr",
                "La Chine propose une initiative mondiale sur la sécurité des données",
                "fr",
                "2020-09-08T10:00:00Z",
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    snap!("article_clustered", accepted);
    let (status, _, queued) = send(
        &router,
        post(
            "/v1/articles",
            &article(
                "s-en",
                "China proposes a global initiative on data security",
                "en",
                "2020-09-08T11:00:00Z",
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    snap!("article_queued", queued);
    let batch = json!({ "articles": [
        { "external_id": "s-flood", "title": "Heavy rain and flood warnings across northern England", "lang": "en", "published_at": "2020-09-08T12:00:00Z" },
        { "external_id": "s-bad", "title": "no date" }
    ]})
    .to_string();
    let (_, _, batch) = send(&router, post("/v1/articles/batch", &batch)).await;
    snap!("batch_partly_refused", batch);
    // Let the queued articles land.
    let wait = article(
        "s-flood-fr",
        "Fortes pluies et alertes aux inondations dans le nord de l'Angleterre",
        "fr",
        "2020-09-08T13:00:00Z",
    );
    send(&router, post("/v1/articles?wait=true", &wait)).await;

    let (_, _, a) = send(&router, get_req("/v1/articles/a1")).await;
    snap!("article", a);
    let (_, _, c) = send(&router, get_req("/v1/clusters/c1")).await;
    snap!("cluster_detail", c);
    let (_, _, page) = send(&router, get_req("/v1/clusters?sort=size&limit=1")).await;
    snap!("cluster_page", page);
    let (_, _, related) = send(&router, get_req("/v1/clusters/c1/related?k=1")).await;
    snap!("related", related);
    let (_, _, similar) = send(&router, get_req("/v1/articles/a1/similar?k=1")).await;
    snap!("similar", similar);
    let (_, _, search) = send(&router, get_req("/v1/search?q=data%20security&k=2&lang=en")).await;
    snap!("search", search);
    let (_, _, split) = send(
        &router,
        post(
            "/v1/clusters/c1/split",
            &json!({ "articles": ["a2"] }).to_string(),
        ),
    )
    .await;
    snap!("correction", split);
    let (_, _, corrections) = send(&router, get_req("/v1/corrections")).await;
    snap!("corrections", corrections);
    let (_, _, deleted) = send(
        &router,
        Request::delete("/v1/articles/a2")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    snap!("deleted", deleted);

    // Problems, one per kind of bad input.
    let (_, _, p) = send(&router, post("/v1/articles", "{not json")).await;
    snap!("problem_malformed_json", p);
    let (_, _, p) = send(
        &router,
        post(
            "/v1/articles",
            r#"{"title":"x","published_at":"2020-09-08T10:00:00Z"}"#,
        ),
    )
    .await;
    snap!("problem_missing_field", p);
    let many = json!({ "articles": vec![json!({}); 501] }).to_string();
    let (_, _, p) = send(&router, post("/v1/articles/batch", &many)).await;
    snap!("problem_batch_too_large", p);
    let mut unknown = get_req("/v1/clusters");
    unknown
        .headers_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    let (_, _, p) = send(&router, unknown).await;
    snap!("problem_unknown_key", p);
    let mut reader = post(
        "/v1/clusters/c1/merge",
        &json!({ "clusters": ["c2"] }).to_string(),
    );
    reader.headers_mut().insert(
        "authorization",
        format!("Bearer {READ_KEY}").parse().unwrap(),
    );
    let (_, _, p) = send(&router, reader).await;
    snap!("problem_wrong_role", p);
    let (_, _, p) = send(&router, get_req("/v1/clusters/c999")).await;
    snap!("problem_not_found", p);
}
