use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use concord_bulk::{
    BulkError,
    ingest::{Client, Options, Refusal, Tally},
    source::{Format, Records},
};
use serde_json::{Value, json};
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

/// A stand-in for `POST /v1/articles/batch`: answers each article by its external id
/// (`dup-*` unchanged, `bad-*` refused on `published_at`, `busy-*` refused 429 the
/// first time it is seen), and records the batch sizes it was sent.
#[derive(Clone, Default)]
struct Batch {
    seen_busy: Arc<Mutex<HashSet<String>>>,
    sizes: Arc<Mutex<Vec<usize>>>,
}

impl Respond for Batch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let articles = body["articles"].as_array().unwrap();
        self.sizes.lock().unwrap().push(articles.len());
        let mut refused = 0;
        let results: Vec<Value> = articles
            .iter()
            .map(|a| {
                let id = a["external_id"].as_str().unwrap().to_owned();
                if id.starts_with("bad") {
                    refused += 1;
                    json!({"problem": {"type": "about:blank", "title": "Invalid field", "status": 422,
                        "detail": "not RFC 3339", "code": "invalid_field", "field": "articles[2].published_at"}})
                } else if id.starts_with("busy") && self.seen_busy.lock().unwrap().insert(id.clone()) {
                    refused += 1;
                    json!({"problem": {"type": "about:blank", "title": "Busy", "status": 429,
                        "detail": "queue full", "code": "queue_full"}})
                } else {
                    let status = if id.starts_with("dup") { "unchanged" } else { "queued" };
                    json!({"id": "a1", "external_id": id, "status": status, "lang": "fr",
                        "lang_source": "given", "truncated": false})
                }
            })
            .collect();
        let status = if refused == 0 { 202 } else { 200 };
        ResponseTemplate::new(status).set_body_json(
            json!({"accepted": articles.len() - refused, "refused": refused, "results": results}),
        )
    }
}

/// Matches batches of more than `0` articles.
struct MoreThan(usize);

impl Match for MoreThan {
    fn matches(&self, request: &Request) -> bool {
        serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|b| b["articles"].as_array().map(|a| a.len() > self.0))
            .unwrap_or(false)
    }
}

fn jsonl(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| {
            json!({"external_id": id, "title": format!("Titre {id}"), "published_at": "2020-09-08T10:00:00Z"})
                .to_string()
                + "\n"
        })
        .collect()
}

fn client(server: &MockServer, batch: usize) -> Client {
    Client::new(Options {
        url: server.uri().parse().unwrap(),
        key: "k".into(),
        batch,
        attempts: 4,
        max_wait: Duration::from_millis(20),
    })
    .unwrap()
}

async fn load(client: &Client, input: &str) -> (Result<Tally, BulkError>, Vec<Refusal>) {
    let mut refusals = Vec::new();
    let records = Records::new(input.as_bytes(), Format::Jsonl).unwrap();
    let tally = client
        .load(records, |r| refusals.push(r.clone()), |_, _| {})
        .await;
    (tally, refusals)
}

#[tokio::test]
async fn articles_go_in_batches_with_the_key_and_each_refusal_names_its_line() {
    let server = MockServer::start().await;
    let batch = Batch::default();
    Mock::given(matchers::method("POST"))
        .and(matchers::path("/v1/articles/batch"))
        .and(matchers::header("authorization", "Bearer k"))
        .respond_with(batch.clone())
        .mount(&server)
        .await;
    let mut input = jsonl(&["a", "dup-b", "bad-c"]);
    input.push_str("not json\n");
    input.push_str(&jsonl(&["d", "e"]));
    let (tally, refusals) = load(&client(&server, 2), &input).await;
    assert_eq!(
        tally.unwrap(),
        Tally {
            read: 6,
            queued: 3,
            unchanged: 1,
            refused: 2
        }
    );
    assert_eq!(*batch.sizes.lock().unwrap(), [2, 2, 1]);
    // Reported as found: a line that holds no article before its batch goes out.
    let mut said: Vec<String> = refusals.iter().map(ToString::to_string).collect();
    said.sort();
    assert_eq!(said[0], "line 3: 422 `published_at`: not RFC 3339");
    assert!(said[1].starts_with("line 4: not JSON"), "{}", said[1]);
}

#[tokio::test]
async fn an_article_refused_as_busy_is_sent_again_alone() {
    let server = MockServer::start().await;
    let batch = Batch::default();
    Mock::given(matchers::method("POST"))
        .respond_with(batch.clone())
        .mount(&server)
        .await;
    let (tally, refusals) = load(&client(&server, 10), &jsonl(&["a", "busy-b", "c"])).await;
    assert_eq!(tally.unwrap().queued, 3);
    assert!(refusals.is_empty());
    assert_eq!(*batch.sizes.lock().unwrap(), [3, 1]);
}

#[tokio::test]
async fn a_busy_service_is_waited_for_and_an_oversized_batch_is_halved() {
    let server = MockServer::start().await;
    let batch = Batch::default();
    // The first request meets a full queue; batches of more than 2 are too large.
    Mock::given(matchers::method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(MoreThan(2))
        .respond_with(ResponseTemplate::new(413))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(matchers::method("POST"))
        .respond_with(batch.clone())
        .with_priority(3)
        .mount(&server)
        .await;
    let (tally, _) = load(&client(&server, 5), &jsonl(&["a", "b", "c", "d", "e"])).await;
    assert_eq!(tally.unwrap().queued, 5);
    assert_eq!(*batch.sizes.lock().unwrap(), [2, 1, 2]);
}

#[tokio::test]
async fn a_refused_key_or_a_service_busy_for_good_stops_the_load_with_the_reason() {
    let server = MockServer::start().await;
    Mock::given(matchers::header("authorization", "Bearer k"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"status": 403, "detail": "role read"})),
        )
        .mount(&server)
        .await;
    let (tally, _) = load(&client(&server, 5), &jsonl(&["a"])).await;
    let err = tally.unwrap_err();
    assert!(
        matches!(err, BulkError::Unauthorized { status: 403, ref detail } if detail == "role read"),
        "{err}"
    );

    let busy = MockServer::start().await;
    Mock::given(matchers::method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&busy)
        .await;
    let (tally, _) = load(&client(&busy, 5), &jsonl(&["a"])).await;
    assert!(matches!(
        tally.unwrap_err(),
        BulkError::Busy {
            attempts: 4,
            status: 503
        }
    ));
}
