//! Webhooks end to end on the real model: the seed articles arrive through the API
//! and through the signed inbound webhook; a subscriber (wiremock on 127.0.0.1) gets
//! signed cluster events, and one that fails first gets them on retry.

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use concord_core::config::ApiKey;
use concord_server::{AppState, Keys, WebhookSettings, app};
use concord_webhooks::{Backoff, Dispatcher, DispatcherConfig, Secret, TargetPolicy, sign};
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::{DEV_KEY, post, send};

const INBOUND: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn seed(file: &str) -> (String, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/seeds");
    let raw = std::fs::read_to_string(root.join(file)).unwrap();
    let raw = raw.trim_start();
    let (title, body) = raw.split_once('\n').unwrap_or((raw, ""));
    (title.trim().to_owned(), body.to_owned())
}

fn signed(body: &str, id: &str, at: Timestamp, secret: &Secret) -> Request<Body> {
    let mut request = post("/v1/webhooks/articles", body);
    let headers = request.headers_mut();
    headers.insert("webhook-id", id.parse().unwrap());
    headers.insert(
        "webhook-timestamp",
        at.as_second().to_string().parse().unwrap(),
    );
    headers.insert(
        "webhook-signature",
        sign(secret, id, at, body.as_bytes()).parse().unwrap(),
    );
    // No API key: the signature is the credential.
    headers.insert("authorization", "none".parse().unwrap());
    request
}

async fn wait_for(mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..3000 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_via_api_and_signed_webhook_cluster_and_subscribers_get_signed_events() {
    let data = tempfile::tempdir().unwrap();
    let mut config = concord_core::Config::embedded_default().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    config.model.dir = root.join(&config.model.dir);
    config.model.ort_dylib = root.join(&config.model.ort_dylib);
    config.data.dir = data.path().to_path_buf();
    let pipeline = concord_pipeline::Pipeline::start(
        &config,
        concord_embed::Model::load(&config.model).unwrap(),
    )
    .unwrap();
    let policy = TargetPolicy {
        allow_private: false,
        allow_loopback: true,
    };
    let dispatcher = Dispatcher::start(
        pipeline.store(),
        DispatcherConfig {
            policy,
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            backoff: Backoff {
                base: Duration::from_millis(5),
                cap: Duration::from_millis(20),
            },
            poll: Duration::from_millis(20),
            concurrency: 4,
            outbox_retention: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let inbound = Secret::parse(INBOUND).unwrap();
    let settings = WebhookSettings {
        inbound_secrets: vec![inbound.clone()],
        tolerance: Duration::from_secs(300),
        policy,
        wake: Some(dispatcher.notify_handle()),
        counters: Some(dispatcher.counters()),
    };
    let changes = pipeline.outbox_notify();
    let wake = dispatcher.notify_handle();
    tokio::spawn(async move {
        loop {
            changes.notified().await;
            wake.notify_one();
        }
    });
    let keys: Vec<ApiKey> = config.auth.keys.clone();
    let router = app(AppState::with_webhooks(
        pipeline,
        Keys::new(&keys),
        settings,
    ));

    // A subscriber that fails its first delivery, then accepts.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let (status, _, sub) = send(
        &router,
        post(
            "/v1/webhooks/subscriptions",
            &json!({
                "url": format!("{}/hook", receiver.uri()),
                "event_types": ["cluster.created", "cluster.updated"],
                "description": "test subscriber"
            })
            .to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let secret = Secret::parse(sub["secret"].as_str().unwrap()).unwrap();
    let sub_id = sub["id"].as_str().unwrap().to_owned();

    // Seeds 000 and 002 through the API, 001 and 003 through the signed webhook, 004 (2015) by API.
    let files = [
        (
            "000_9324e893e81eec0c.txt",
            "en",
            "2020-09-08T09:00:00Z",
            false,
        ),
        (
            "001_534f8ade4f14ded0.txt",
            "fr",
            "2020-09-09T09:00:00Z",
            true,
        ),
        (
            "002_54456295ff58628f.txt",
            "ar",
            "2020-09-09T12:00:00Z",
            false,
        ),
        (
            "003_3af99dfced1773ad.txt",
            "fr",
            "2020-09-14T09:00:00Z",
            true,
        ),
        (
            "004_9e1bf06b7e740873.txt",
            "en",
            "2015-06-01T09:00:00Z",
            false,
        ),
    ];
    let mut ids = Vec::new();
    for (i, (file, lang, at, webhook)) in files.iter().enumerate() {
        let (title, body) = seed(file);
        let article = json!({
            "external_id": format!("seed-{i}"), "title": title, "body": body,
            "lang": lang, "published_at": at
        })
        .to_string();
        let (status, _, out) = if *webhook {
            let id = format!("msg_seed_{i}");
            let (status, h, out) =
                send(&router, signed(&article, &id, Timestamp::now(), &inbound)).await;
            assert_eq!(out["duplicate"], false, "{out}");
            // The same delivery again is an already-accepted one.
            let (again, _, dup) =
                send(&router, signed(&article, &id, Timestamp::now(), &inbound)).await;
            assert_eq!(again, StatusCode::OK, "{dup}");
            assert_eq!(dup["duplicate"], true);
            assert_eq!(dup["article"]["id"], out["article"]["id"]);
            (status, h, out["article"].clone())
        } else {
            send(&router, post("/v1/articles", &article)).await
        };
        assert_eq!(status, StatusCode::ACCEPTED, "{out}");
        ids.push(out["id"].as_str().unwrap().to_owned());
    }

    // Everything clustered: one cluster en/fr/ar for 2020, the 2015 article elsewhere.
    let get_req = |path: String| Request::get(path).body(Body::empty()).unwrap();
    let mut clusters = Vec::new();
    for id in &ids {
        let mut cluster = Value::Null;
        wait_for(async || {
            let (_, _, a) = send(&router, get_req(format!("/v1/articles/{id}"))).await;
            cluster = a["cluster"].clone();
            a["state"] == "clustered"
        })
        .await;
        clusters.push(cluster.as_str().unwrap().to_owned());
    }
    let (_, _, c) = send(&router, get_req(format!("/v1/clusters/{}", clusters[0]))).await;
    assert_eq!(c["languages"], json!(["ar", "en", "fr"]), "{c}");
    assert_eq!(c["size"], 4, "{c}");
    assert_ne!(clusters[4], c["id"].as_str().unwrap());

    // The subscriber got signed cluster.created / cluster.updated events; the first
    // attempt failed and the same webhook-id came again.
    wait_for(async || {
        let (_, _, log) = send(
            &router,
            get_req(format!(
                "/v1/webhooks/subscriptions/{sub_id}/deliveries?status=pending"
            )),
        )
        .await;
        log["deliveries"].as_array().is_some_and(|d| d.is_empty())
            && receiver.received_requests().await.unwrap().len() >= 3
    })
    .await;
    let requests = receiver.received_requests().await.unwrap();
    let mut types = Vec::new();
    for r in &requests {
        concord_webhooks::verify_headers(
            std::slice::from_ref(&secret),
            &r.headers,
            &r.body,
            Timestamp::now(),
            Duration::from_secs(300),
        )
        .unwrap();
        let payload: Value = serde_json::from_slice(&r.body).unwrap();
        types.push(payload["type"].as_str().unwrap().to_owned());
    }
    assert!(types.iter().any(|t| t == "cluster.created"), "{types:?}");
    assert!(types.iter().any(|t| t == "cluster.updated"), "{types:?}");
    assert!(types.iter().all(|t| t.starts_with("cluster.")), "{types:?}");
    let failed_id = requests[0].headers["webhook-id"].clone();
    assert!(
        requests[1..]
            .iter()
            .any(|r| r.headers["webhook-id"] == failed_id),
        "the failed delivery is retried with the same webhook-id"
    );
    let (_, _, log) = send(
        &router,
        get_req(format!(
            "/v1/webhooks/subscriptions/{sub_id}/deliveries?limit=200"
        )),
    )
    .await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert!(
        deliveries.iter().all(|d| d["status"] == "succeeded"),
        "{log}"
    );
    assert!(deliveries.iter().any(|d| d["attempts"] == 2), "{log}");

    // Replaying a delivery sends it again.
    let first = deliveries.last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = receiver.received_requests().await.unwrap().len();
    let (status, _, _) = send(
        &router,
        post(&format!("/v1/webhooks/deliveries/{first}/replay"), ""),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_for(async || receiver.received_requests().await.unwrap().len() > before).await;
    let _ = DEV_KEY;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_and_bad_subscriptions_are_refused_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let state = crate::state(data.path());
    let (pipeline, keys) = state.into_parts();
    let inbound = Secret::parse(INBOUND).unwrap();
    let router = app(AppState::with_webhooks(
        pipeline,
        keys,
        WebhookSettings {
            inbound_secrets: vec![inbound.clone()],
            tolerance: Duration::from_secs(300),
            ..WebhookSettings::default()
        },
    ));
    let article = json!({
        "external_id": "w-1", "title": "China proposes a global initiative on data security",
        "lang": "en", "published_at": "2020-09-08T10:00:00Z"
    })
    .to_string();
    let now = Timestamp::now();
    let other = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    let stale = now - jiff::SignedDuration::from_secs(3600);
    let mut unsigned = post("/v1/webhooks/articles", &article);
    unsigned
        .headers_mut()
        .insert("authorization", "none".parse().unwrap());
    let cases = [
        (
            signed(&article, "m1", now, &other),
            "bad_signature",
            "webhook-signature",
        ),
        (
            signed(&article, "m2", stale, &inbound),
            "stale_timestamp",
            "webhook-timestamp",
        ),
        (unsigned, "missing_header", "webhook-id"),
    ];
    for (request, code, field) in cases {
        let (status, headers, problem) = send(&router, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    // A tampered body fails even with the right secret.
    let mut tampered = signed(&article, "m3", now, &inbound);
    *tampered.body_mut() = Body::from(article.replace("China", "Chine"));
    let (status, _, problem) = send(&router, tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");

    // Subscriptions: loopback and private targets are refused by default; event types checked.
    for (body, field) in [
        (
            json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["cluster.created"] }),
            "url",
        ),
        (
            json!({ "url": "http://10.1.2.3/hook", "event_types": ["cluster.created"] }),
            "url",
        ),
        (
            json!({ "url": "ftp://example.com/hook", "event_types": ["cluster.created"] }),
            "url",
        ),
        (
            json!({ "url": "https://example.com/hook", "event_types": [] }),
            "event_types",
        ),
        (
            json!({ "url": "https://example.com/hook", "event_types": ["cluster.exploded"] }),
            "event_types[0]",
        ),
    ] {
        let (status, _, problem) = send(
            &router,
            post("/v1/webhooks/subscriptions", &body.to_string()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let mut reader = post(
        "/v1/webhooks/subscriptions",
        &json!({ "url": "https://example.com/hook", "event_types": ["cluster.created"] })
            .to_string(),
    );
    reader.headers_mut().insert(
        "authorization",
        format!("Bearer {}", crate::READ_KEY).parse().unwrap(),
    );
    let (status, _, _) = send(&router, reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
