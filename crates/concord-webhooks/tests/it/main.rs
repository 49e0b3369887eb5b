#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The dispatcher against real HTTP receivers (wiremock on 127.0.0.1, so loopback
//! targets are allowed unless a test is about refusing them). Tests wait for outcomes
//! in the store; the waits only guard against hanging, nothing asserts a duration.

use std::time::Duration;

use concord_core::{ArticleId, ClusterId, Lang, SubscriptionId, config::SecretString};
use concord_store::{
    ClusterRecord, ClusterStatus, Db, Delivery, DeliveryQuery, DeliveryStatus, EventType,
    NewSubscription, OutboxEvent, Store, Subscription, Synchronous,
};
use concord_webhooks::{
    Backoff, Dispatcher, DispatcherConfig, Secret, TargetPolicy, signature::verify_headers,
};
use jiff::Timestamp;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    db: Db,
}

fn harness() -> Harness {
    let dir = tempfile::Builder::new()
        .prefix("concord-webhooks-it-")
        .tempdir()
        .unwrap();
    let store = Store::open(dir.path(), Synchronous::Normal).unwrap();
    let db = store.connect().unwrap();
    Harness {
        _dir: dir,
        store,
        db,
    }
}

fn config(allow_loopback: bool, max_attempts: u32) -> DispatcherConfig {
    DispatcherConfig {
        policy: TargetPolicy {
            allow_private: false,
            allow_loopback,
        },
        timeout: Duration::from_secs(10),
        max_attempts,
        backoff: Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
        },
        poll: Duration::from_millis(20),
        concurrency: 4,
        outbox_retention: Duration::from_secs(7 * 24 * 3600),
    }
}

impl Harness {
    fn subscribe(&mut self, url: &str, secret: &Secret) -> Subscription {
        self.db
            .create_subscription(
                &NewSubscription {
                    url: url.to_owned(),
                    event_types: vec![EventType::ClusterUpdated, EventType::ArticleClustered],
                    secret: SecretString::new(secret.to_string()),
                    description: None,
                },
                Timestamp::now(),
            )
            .unwrap()
    }

    fn emit(&mut self, cluster: u64) -> u64 {
        let event = OutboxEvent::ClusterUpdated {
            cluster: ClusterRecord {
                id: ClusterId(cluster),
                status: ClusterStatus::Active,
                merged_into: None,
                created_at: Timestamp::now(),
                updated_at: Timestamp::now(),
                first_published: Some(Timestamp::now()),
                last_published: Some(Timestamp::now()),
                size: 2,
                languages: vec![Lang::parse("de").unwrap()],
                label_article: Some(ArticleId(1)),
            },
        };
        self.db
            .transaction(|tx| tx.emit(&event, Timestamp::now()))
            .unwrap()
    }

    fn deliveries(&self, sub: SubscriptionId) -> Vec<Delivery> {
        self.db
            .deliveries(&DeliveryQuery {
                subscription: sub,
                status: None,
                before: None,
                limit: 100,
            })
            .unwrap()
    }

    /// Waits until every delivery of `sub` is no longer pending, and there are `n`.
    async fn settled(&self, sub: SubscriptionId, n: usize) -> Vec<Delivery> {
        wait_for(|| {
            let d = self.deliveries(sub);
            (d.len() == n && d.iter().all(|d| d.status != DeliveryStatus::Pending)).then_some(d)
        })
        .await
    }
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..3000 {
        if let Some(t) = f() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 30 s");
}

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

fn header<'a>(req: &'a Request, name: &str) -> &'a str {
    req.headers.get(name).unwrap().to_str().unwrap()
}

fn verifies(req: &Request, secret: &Secret) {
    verify_headers(
        std::slice::from_ref(secret),
        &req.headers,
        &req.body,
        Timestamp::now(),
        Duration::from_secs(300),
    )
    .unwrap();
}

#[tokio::test]
async fn an_emitted_event_is_delivered_once_with_a_verifiable_signature() {
    let mut h = harness();
    let server = receiver(204).await;
    let secret = Secret::generate().unwrap();
    let sub = h.subscribe(&format!("{}/hook", server.uri()), &secret);
    let seq = h.emit(3);

    let dispatcher = Dispatcher::start(&h.store, config(true, 5)).unwrap();
    dispatcher.wake();
    let done = h.settled(sub.id, 1).await;
    let counters = dispatcher.counters();
    dispatcher.shutdown(Duration::from_secs(10)).await.unwrap();

    assert_eq!(done[0].status, DeliveryStatus::Succeeded);
    assert_eq!((done[0].attempts, done[0].last_status), (1, Some(204)));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "delivered exactly once");
    let req = &requests[0];
    verifies(req, &secret);
    assert_eq!(header(req, "webhook-id"), format!("msg_{seq}"));
    assert_eq!(header(req, "content-type"), "application/json");
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["type"], "cluster.updated");
    assert_eq!(body["data"]["id"], "c3");
    assert!(!header(req, "webhook-signature").is_empty());
    let c = counters.snapshot();
    assert_eq!((c.attempts, c.succeeded, c.retried, c.failed), (1, 1, 0, 0));
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_same_webhook_id() {
    let mut h = harness();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let secret = Secret::generate().unwrap();
    let sub = h.subscribe(&format!("{}/hook", server.uri()), &secret);
    h.emit(3);

    let dispatcher = Dispatcher::start(&h.store, config(true, 5)).unwrap();
    dispatcher.wake();
    let done = h.settled(sub.id, 1).await;
    let counters = dispatcher.counters();
    dispatcher.shutdown(Duration::from_secs(10)).await.unwrap();

    assert_eq!(done[0].status, DeliveryStatus::Succeeded);
    assert_eq!(done[0].attempts, 2);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        header(&requests[0], "webhook-id"),
        header(&requests[1], "webhook-id")
    );
    assert_eq!(requests[0].body, requests[1].body);
    for req in &requests {
        verifies(req, &secret);
    }
    let c = counters.snapshot();
    assert_eq!((c.attempts, c.succeeded, c.retried), (2, 1, 1));
}

#[tokio::test]
async fn attempts_run_out_and_the_delivery_fails() {
    let mut h = harness();
    let server = receiver(503).await;
    let secret = Secret::generate().unwrap();
    let sub = h.subscribe(&format!("{}/hook", server.uri()), &secret);
    h.emit(3);

    let dispatcher = Dispatcher::start(&h.store, config(true, 3)).unwrap();
    dispatcher.wake();
    let done = h.settled(sub.id, 1).await;
    dispatcher.shutdown(Duration::from_secs(10)).await.unwrap();

    assert_eq!(done[0].status, DeliveryStatus::Failed);
    assert_eq!((done[0].attempts, done[0].last_status), (3, Some(503)));
    assert_eq!(done[0].last_error.as_deref(), Some("http 503"));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn gone_disables_the_subscription() {
    let mut h = harness();
    let server = receiver(410).await;
    let secret = Secret::generate().unwrap();
    let sub = h.subscribe(&format!("{}/hook", server.uri()), &secret);
    h.emit(3);
    h.emit(4);

    let dispatcher = Dispatcher::start(&h.store, config(true, 5)).unwrap();
    dispatcher.wake();
    let done = h.settled(sub.id, 2).await;
    let counters = dispatcher.counters();

    let sub = h.db.subscription(sub.id).unwrap().unwrap();
    assert!(!sub.enabled);
    assert!(sub.disabled_reason.unwrap().contains("410"));
    assert!(done.iter().all(|d| d.status == DeliveryStatus::Failed));
    assert!(counters.snapshot().disabled >= 1);

    // Later events are not delivered to it.
    h.emit(5);
    dispatcher.wake();
    dispatcher.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(h.deliveries(sub.id).len(), 2);
    assert!(server.received_requests().await.unwrap().len() <= 2);
}

#[tokio::test]
async fn targets_the_policy_refuses_get_no_request() {
    let mut h = harness();
    let server = receiver(200).await;
    let port = server.address().port();
    let secret = Secret::generate().unwrap();
    let literal = h.subscribe(&format!("http://127.0.0.1:{port}/hook"), &secret);
    // A name is refused by what it resolves to, at delivery time.
    let named = h.subscribe(&format!("http://localhost:{port}/hook"), &secret);
    let private = h.subscribe("http://10.255.255.1/hook", &secret);
    h.emit(3);

    // Loopback not allowed, one attempt each so the deliveries end failed.
    let dispatcher = Dispatcher::start(&h.store, config(false, 1)).unwrap();
    dispatcher.wake();
    let literal = h.settled(literal.id, 1).await;
    let named = h.settled(named.id, 1).await;
    let private = h.settled(private.id, 1).await;
    let counters = dispatcher.counters();
    dispatcher.shutdown(Duration::from_secs(10)).await.unwrap();

    for (d, class) in [
        (&literal[0], "loopback"),
        (&named[0], "loopback"),
        (&private[0], "private"),
    ] {
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.last_status, None);
        let error = d.last_error.as_deref().unwrap();
        assert!(
            error.starts_with("refused") && error.contains(class),
            "{error}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());
    assert_eq!(counters.snapshot().refused, 3);
}

#[tokio::test]
async fn a_replayed_delivery_is_sent_again() {
    let mut h = harness();
    let server = receiver(200).await;
    let secret = Secret::generate().unwrap();
    let sub = h.subscribe(&format!("{}/hook", server.uri()), &secret);
    let started = Timestamp::now();
    h.emit(3);

    let dispatcher = Dispatcher::start(&h.store, config(true, 5)).unwrap();
    dispatcher.wake();
    let first = h.settled(sub.id, 1).await;

    let replayed = h.db.replay_delivery(first[0].id, Timestamp::now()).unwrap();
    assert_eq!(replayed.status, DeliveryStatus::Pending);
    dispatcher.wake();
    let again = h.settled(sub.id, 1).await;
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].status, DeliveryStatus::Succeeded);

    // A time range replays as new deliveries of the same events.
    let until = Timestamp::now() + jiff::SignedDuration::from_secs(1);
    assert_eq!(
        h.db.replay_range(sub.id, started, until, Timestamp::now())
            .unwrap(),
        1
    );
    dispatcher.wake();
    let all = h.settled(sub.id, 2).await;
    dispatcher.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Succeeded));

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let id = header(&requests[0], "webhook-id");
    assert!(requests.iter().all(|r| header(r, "webhook-id") == id));
    for req in &requests {
        verifies(req, &secret);
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_attempts_finish() {
    let mut h = harness();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(500)))
        .mount(&server)
        .await;
    let secret = Secret::generate().unwrap();
    let sub = h.subscribe(&format!("{}/hook", server.uri()), &secret);
    h.emit(3);

    let dispatcher = Dispatcher::start(&h.store, config(true, 5)).unwrap();
    dispatcher.wake();
    // The request has arrived; its answer has not.
    let mut arrived = false;
    for _ in 0..3000 {
        if !server.received_requests().await.unwrap().is_empty() {
            arrived = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(arrived, "request never arrived");
    dispatcher.shutdown(Duration::from_secs(20)).await.unwrap();

    let d = h.deliveries(sub.id);
    assert_eq!(d[0].status, DeliveryStatus::Succeeded);
    assert_eq!(d[0].attempts, 1);
}
