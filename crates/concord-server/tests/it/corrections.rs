//! Analyst corrections, related clusters and similar articles, through the router.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use concord_server::app;
use serde_json::{Value, json};

use crate::{READ_KEY, post, send, state};

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_merge_split_and_move_and_each_correction_is_recorded() {
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
        (
            "w-fr",
            "fr",
            "Fortes pluies et alertes aux inondations dans le nord de l'Angleterre ce week-end",
        ),
    ];
    let mut ids = std::collections::HashMap::new();
    let mut clusters = std::collections::HashMap::new();
    for (ext, lang, title) in articles {
        let body = json!({
            "external_id": ext, "title": title, "lang": lang,
            "published_at": "2020-09-08T10:00:00Z"
        })
        .to_string();
        let (status, _, out) = send(&router, post("/v1/articles?wait=true", &body)).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        ids.insert(ext, out["id"].as_str().unwrap().to_owned());
        clusters.insert(ext, out["cluster"].as_str().unwrap().to_owned());
    }
    let (data_c, flood_c) = (clusters["d-en"].clone(), clusters["w-en"].clone());
    assert_eq!(
        clusters["d-fr"], data_c,
        "the model groups the data-security pair"
    );
    assert_eq!(clusters["w-fr"], flood_c, "the model groups the flood pair");
    assert_ne!(data_c, flood_c);

    // Detail carries a timeline; related finds the other cluster; similar finds the translation.
    let (_, _, detail) = send(&router, get_req(&format!("/v1/clusters/{data_c}"))).await;
    assert_eq!(
        detail["timeline"],
        json!([{ "date": "2020-09-08", "articles": 2, "languages": ["en", "fr"] }])
    );
    let (status, _, related) = send(
        &router,
        get_req(&format!("/v1/clusters/{data_c}/related?k=5")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{related}");
    assert_eq!(related["related"][0]["id"], flood_c.as_str());
    let (status, _, similar) = send(
        &router,
        get_req(&format!("/v1/articles/{}/similar?k=1", ids["d-fr"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{similar}");
    assert_eq!(similar["hits"][0]["article"], ids["d-en"].as_str());

    // A read-only key may not correct.
    let mut forbidden = post(
        &format!("/v1/clusters/{data_c}/merge"),
        &json!({ "clusters": [flood_c] }).to_string(),
    );
    forbidden.headers_mut().insert(
        "authorization",
        format!("Bearer {READ_KEY}").parse().unwrap(),
    );
    let (status, _, _) = send(&router, forbidden).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Merge: the flood cluster folds into the data cluster and its id resolves there.
    let (status, _, merged) = send(
        &router,
        post(
            &format!("/v1/clusters/{data_c}/merge"),
            &json!({ "clusters": [flood_c] }).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["kind"], "merge");
    assert_eq!(merged["cluster"], data_c.as_str());
    assert_eq!(merged["actor"], "local-dev");
    let (_, _, old) = send(&router, get_req(&format!("/v1/clusters/{flood_c}"))).await;
    assert_eq!(old["id"], data_c.as_str());
    assert_eq!(old["requested"], flood_c.as_str());
    assert_eq!(old["size"], 4);

    // Split the flood pair back out: a new cluster, kept apart from now on.
    let (status, _, split) = send(
        &router,
        post(
            &format!("/v1/clusters/{data_c}/split"),
            &json!({ "articles": [ids["w-en"], ids["w-fr"]] }).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{split}");
    let new_c = split["cluster"].as_str().unwrap().to_owned();
    assert_ne!(new_c, data_c);
    let (_, _, fresh) = send(&router, get_req(&format!("/v1/clusters/{new_c}"))).await;
    assert_eq!(fresh["size"], 2);

    // Move one article into the data cluster.
    let (status, _, moved) = send(
        &router,
        post(
            &format!("/v1/articles/{}/move", ids["w-fr"]),
            &json!({ "cluster": data_c }).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let (_, _, article) = send(&router, get_req(&format!("/v1/articles/{}", ids["w-fr"]))).await;
    assert_eq!(article["cluster"], data_c.as_str());

    // Each correction is listed, newest first, with who and when.
    let (status, _, page) = send(&router, get_req("/v1/corrections?limit=2")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let kinds: Vec<&str> = page["corrections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["move", "split"]);
    assert_eq!(page["corrections"][0]["actor"], "local-dev");
    assert_eq!(page["corrections"][0]["data"]["to"], data_c.as_str());
    assert!(page["corrections"][0]["at"].as_str().is_some());
    let cursor = page["next_cursor"].as_u64().unwrap();
    let (_, _, rest) = send(
        &router,
        get_req(&format!("/v1/corrections?cursor={cursor}")),
    )
    .await;
    assert_eq!(rest["corrections"][0]["kind"], "merge");
    assert_eq!(rest["next_cursor"], Value::Null);

    // One cluster's corrections (the console's cluster page), newest first.
    let kinds_of = |page: &Value| -> Vec<String> {
        page["corrections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    for (cluster, expected) in [
        (&new_c, vec!["move", "split"]),
        (&flood_c, vec!["merge"]),
        (&data_c, vec!["move", "split", "merge"]),
    ] {
        let (status, _, page) = send(
            &router,
            get_req(&format!("/v1/corrections?cluster={cluster}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(kinds_of(&page), expected, "{cluster}: {page}");
        assert_eq!(page["next_cursor"], Value::Null);
    }
    // Paged one by one, the cursor walks the same three.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, _, page) = send(
            &router,
            get_req(&format!("/v1/corrections?cluster={data_c}&limit=1{cursor}")),
        )
        .await;
        seen.extend(kinds_of(&page));
        match page["next_cursor"].as_u64() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["move", "split", "merge"]);
    let (status, _, bad) = send(&router, get_req("/v1/corrections?cluster=a1")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(bad["field"], "cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_can_ask_its_own_name_and_role() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let (status, _, me) = send(&router, get_req("/v1/me")).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me, json!({ "name": "local-dev", "role": "admin" }));
    let mut read = get_req("/v1/me");
    read.headers_mut().insert(
        "authorization",
        format!("Bearer {READ_KEY}").parse().unwrap(),
    );
    let (_, _, me) = send(&router, read).await;
    assert_eq!(me["role"], "read");
    let mut none = get_req("/v1/me");
    none.headers_mut()
        .insert("authorization", "none".parse().unwrap());
    let (status, _, _) = send(&router, none).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_that_cannot_apply_are_problems_with_the_field() {
    let data = tempfile::tempdir().unwrap();
    let router = app(state(data.path()));
    let mut made = Vec::new();
    for (ext, title) in [
        ("x", "China proposes a global initiative on data security"),
        (
            "y",
            "Heavy rain and flood warnings across northern England this weekend",
        ),
    ] {
        let body = json!({
            "external_id": ext, "title": title, "lang": "en",
            "published_at": "2020-09-08T10:00:00Z"
        })
        .to_string();
        let (_, _, out) = send(&router, post("/v1/articles?wait=true", &body)).await;
        made.push((
            out["id"].as_str().unwrap().to_owned(),
            out["cluster"].as_str().unwrap().to_owned(),
        ));
    }
    let ((a, ca), (_, cb)) = (&made[0], &made[1]);
    let cases = [
        (
            format!("/v1/clusters/{ca}/merge"),
            json!({ "clusters": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "clusters",
        ),
        (
            format!("/v1/clusters/{ca}/merge"),
            json!({ "clusters": ["c9x"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "clusters[0]",
        ),
        (
            format!("/v1/clusters/{ca}/merge"),
            json!({ "clusters": ["c999"] }),
            StatusCode::NOT_FOUND,
            "clusters[0]",
        ),
        (
            format!("/v1/clusters/{ca}/merge"),
            json!({ "cluster": [cb] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            format!("/v1/clusters/{cb}/split"),
            json!({ "articles": [a] }),
            StatusCode::CONFLICT,
            "articles",
        ),
        (
            format!("/v1/articles/{a}/move"),
            json!({ "cluster": "c999" }),
            StatusCode::NOT_FOUND,
            "cluster",
        ),
    ];
    for (path, body, status, field) in cases {
        let (got, headers, problem) = send(&router, post(&path, &body.to_string())).await;
        assert_eq!(got, status, "{path} {body}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        if !field.is_empty() {
            assert_eq!(problem["field"], field, "{path} {body}: {problem}");
        }
    }
    // A split that would empty the cluster is refused; nothing changed.
    let (status, _, problem) = send(
        &router,
        post(
            &format!("/v1/clusters/{ca}/split"),
            &json!({ "articles": [a] }).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "correction_refused");
    let (_, _, page) = send(&router, get_req("/v1/corrections")).await;
    assert_eq!(page["corrections"], json!([]));
}
