#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The article log against a real nats-server (JetStream, file storage), one server per
//! test: the work queue shared by embed workers, de-duplication by message id,
//! redelivery after a worker dies, the cluster feed's order and a standby's takeover,
//! and the streams and consumers surviving a server restart.

use std::{collections::BTreeSet, time::Duration};

use concord_core::ArticleId;
use concord_log::{ArticleLog, Deliveries, Delivery, LogConfig, LogError};
use concord_testnats::NatsServer;
use tokio::time::{Instant, timeout};

/// Settings for tests: short ack waits so redelivery is seen in about a second.
fn config() -> LogConfig {
    LogConfig {
        embed_ack_wait: Duration::from_secs(1),
        cluster_ack_wait: Duration::from_secs(1),
        ..LogConfig::default()
    }
}

/// A content hash shaped like the store's (64 hex digits), distinct per `n`.
fn hash(n: u64) -> String {
    format!("{n:064x}")
}

async fn connect(server: &NatsServer, config: LogConfig) -> ArticleLog {
    ArticleLog::connect(&server.url(), config)
        .await
        .expect("connect to the test server")
}

/// The next delivery, failing the test if none comes within `wait`.
async fn next(deliveries: &mut Deliveries, wait: Duration) -> Delivery {
    timeout(wait, deliveries.next())
        .await
        .expect("a delivery in time")
        .expect("the stream goes on")
        .expect("a readable delivery")
}

/// Nothing is delivered within `wait`.
async fn nothing(deliveries: &mut Deliveries, wait: Duration) {
    if let Ok(got) = timeout(wait, deliveries.next()).await {
        panic!("expected no delivery, got {got:?}");
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_stored_notice_reaches_one_embed_worker_and_its_ack_removes_it() {
    let server = NatsServer::start();
    let log = connect(&server, config()).await;
    let published = log.publish_stored(ArticleId(7), &hash(1)).await.unwrap();
    assert_eq!((published.sequence, published.duplicate), (1, false));

    let mut work = log.embed_work().await.unwrap();
    let d = next(&mut work, WAIT).await;
    assert_eq!(d.notice().article_id, ArticleId(7));
    assert_eq!(d.notice().content_hash, hash(1));
    assert_eq!(d.notice().message_id(), format!("7:{}", hash(1)));
    assert_eq!((d.sequence(), d.attempt()), (1, 1));
    d.ack().await.unwrap();

    // Work queue: the acked notice is gone from the stream, and never comes back.
    assert_eq!(stream_messages(&server, "CONCORD_STORED").await, 0);
    nothing(&mut work, Duration::from_millis(2500)).await;
}

#[tokio::test]
async fn two_workers_share_the_work_queue_each_notice_to_exactly_one() {
    let server = NatsServer::start();
    let cfg = LogConfig {
        embed_prefetch: 2,
        ..config()
    };
    let api = connect(&server, cfg.clone()).await;
    for id in 1..=40 {
        api.publish_stored(ArticleId(id), &hash(id)).await.unwrap();
    }
    let mut workers = Vec::new();
    for _ in 0..2 {
        // Each worker its own connection, as a separate process would have.
        let log = connect(&server, cfg.clone()).await;
        workers.push(tokio::spawn(async move {
            let mut work = log.embed_work().await.unwrap();
            let mut got = Vec::new();
            while let Ok(Some(d)) = timeout(Duration::from_millis(1500), work.next()).await {
                let d = d.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await; // "embedding"
                got.push(d.notice().article_id.get());
                d.ack().await.unwrap();
            }
            got
        }));
    }
    let mut all = Vec::new();
    let mut counts = Vec::new();
    for w in workers {
        let got = w.await.unwrap();
        counts.push(got.len());
        all.extend(got);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=40).collect::<Vec<_>>(),
        "each notice to exactly one worker"
    );
    assert!(
        counts.iter().all(|&c| c > 0),
        "both workers got work: {counts:?}"
    );
    assert_eq!(stream_messages(&server, "CONCORD_STORED").await, 0);
}

#[tokio::test]
async fn a_republished_notice_inside_the_duplicate_window_is_dropped() {
    let server = NatsServer::start();
    let log = connect(&server, config()).await;
    let first = log.publish_stored(ArticleId(3), &hash(1)).await.unwrap();
    // The api node crashed before it saw the ack, and publishes again after restart.
    let again = connect(&server, config()).await;
    let copy = again.publish_stored(ArticleId(3), &hash(1)).await.unwrap();
    assert!(!first.duplicate);
    assert!(copy.duplicate);
    assert_eq!(copy.sequence, first.sequence);
    // New content is a new notice.
    let updated = log.publish_stored(ArticleId(3), &hash(2)).await.unwrap();
    assert!(!updated.duplicate);
    // The same on the embedded stream.
    let e1 = log.publish_embedded(ArticleId(3), &hash(2)).await.unwrap();
    let e2 = log.publish_embedded(ArticleId(3), &hash(2)).await.unwrap();
    assert!(!e1.duplicate && e2.duplicate);

    let mut work = log.embed_work().await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let d = next(&mut work, WAIT).await;
        seen.push(d.notice().content_hash.clone());
        d.ack().await.unwrap();
    }
    assert_eq!(seen, [hash(1), hash(2)]);
    nothing(&mut work, Duration::from_millis(1500)).await;
    let mut feed = log.cluster_feed().await.unwrap();
    next(&mut feed, WAIT).await.ack().await.unwrap();
    nothing(&mut feed, Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn a_notice_a_killed_worker_held_goes_to_another_after_ack_wait() {
    let server = NatsServer::start();
    let api = connect(&server, config()).await;
    api.publish_stored(ArticleId(11), &hash(11)).await.unwrap();

    let doomed = connect(&server, config()).await;
    let mut work = doomed.embed_work().await.unwrap();
    let held = next(&mut work, WAIT).await;
    let delivered_at = Instant::now();
    assert_eq!(held.attempt(), 1);
    // Killed mid-embedding: no ack, the connection gone.
    drop((held, work, doomed));

    let survivor = connect(&server, config()).await;
    let mut work = survivor.embed_work().await.unwrap();
    let d = next(&mut work, WAIT).await;
    let waited = delivered_at.elapsed();
    assert_eq!(d.notice().article_id, ArticleId(11));
    assert_eq!(d.attempt(), 2, "the second delivery of the same notice");
    assert!(
        waited >= Duration::from_millis(900),
        "redelivered after ack_wait (1 s), not before: {waited:?}"
    );
    d.ack().await.unwrap();
    nothing(&mut work, Duration::from_millis(2500)).await;
}

#[tokio::test]
async fn nak_redelivers_after_its_delay_and_max_deliver_stops_redelivery() {
    let server = NatsServer::start();
    let cfg = LogConfig {
        embed_max_deliver: 2,
        ..config()
    };
    let log = connect(&server, cfg).await;
    log.publish_stored(ArticleId(5), &hash(5)).await.unwrap();
    let mut work = log.embed_work().await.unwrap();
    let d = next(&mut work, WAIT).await;
    let t = Instant::now();
    d.nak(Duration::from_millis(300)).await.unwrap();
    let d = next(&mut work, WAIT).await;
    assert_eq!(d.attempt(), 2);
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    // The last allowed delivery is dropped: JetStream gives up on the notice (the
    // article's store state is what brings it back), it stays in the stream unacked.
    drop(d);
    nothing(&mut work, Duration::from_millis(3000)).await;
    assert_eq!(stream_messages(&server, "CONCORD_STORED").await, 1);
}

#[tokio::test]
async fn the_cluster_feed_is_in_order_and_a_standby_resumes_after_the_last_ack() {
    let server = NatsServer::start();
    let embed = connect(&server, config()).await;
    for id in 1..=8 {
        embed
            .publish_embedded(ArticleId(id), &hash(id))
            .await
            .unwrap();
    }

    let active = connect(&server, config()).await;
    let mut feed = active.cluster_feed().await.unwrap();
    for id in 1..=3 {
        let d = next(&mut feed, WAIT).await;
        assert_eq!(d.notice().article_id, ArticleId(id));
        d.ack().await.unwrap();
    }
    // 4 is being clustered when the active clusterer dies: not acked.
    let held = next(&mut feed, WAIT).await;
    assert_eq!(held.notice().article_id, ArticleId(4));
    drop((held, feed, active));
    // More arrive meanwhile; they must not overtake 4.
    for id in 9..=10 {
        embed
            .publish_embedded(ArticleId(id), &hash(id))
            .await
            .unwrap();
    }

    let standby = connect(&server, config()).await;
    let mut feed = standby.cluster_feed().await.unwrap();
    let mut order = Vec::new();
    for _ in 4..=10 {
        let d = next(&mut feed, WAIT).await;
        order.push((d.notice().article_id.get(), d.attempt()));
        d.ack().await.unwrap();
    }
    assert_eq!(
        order,
        [(4, 2), (5, 1), (6, 1), (7, 1), (8, 1), (9, 1), (10, 1)],
        "4 again first, then the rest in publish order"
    );
    nothing(&mut feed, Duration::from_millis(1500)).await;
    // Limits retention: the clustered notices stay in the stream (until max_age).
    assert_eq!(stream_messages(&server, "CONCORD_EMBEDDED").await, 10);
}

#[tokio::test]
async fn one_notice_at_a_time_on_the_cluster_feed() {
    let server = NatsServer::start();
    let cfg = LogConfig {
        cluster_ack_wait: Duration::from_secs(2),
        ..config()
    };
    let log = connect(&server, cfg.clone()).await;
    for id in 1..=2 {
        log.publish_embedded(ArticleId(id), &hash(id))
            .await
            .unwrap();
    }
    let mut feed = log.cluster_feed().await.unwrap();
    let first = next(&mut feed, WAIT).await;
    let delivered_at = Instant::now();
    // A second feed (a standby that wrongly started) gets nothing while 1 is in flight.
    let other = connect(&server, cfg).await;
    let mut other_feed = other.cluster_feed().await.unwrap();
    nothing(&mut other_feed, Duration::from_millis(600)).await;
    // Slow work keeps its notice past ack_wait (2 s) by saying so.
    tokio::time::sleep_until(delivered_at + Duration::from_millis(1500)).await;
    first.in_progress().await.unwrap();
    tokio::time::sleep_until(delivered_at + Duration::from_millis(2600)).await;
    assert_eq!(first.notice().article_id, ArticleId(1));
    first.ack().await.unwrap();
    let second = timeout(WAIT, async {
        tokio::select! {
            d = feed.next() => d,
            d = other_feed.next() => d,
        }
    })
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(
        (second.notice().article_id, second.attempt()),
        (ArticleId(2), 1)
    );
    second.ack().await.unwrap();
}

#[tokio::test]
async fn notices_and_consumer_positions_survive_a_server_restart() {
    let mut server = NatsServer::start();
    let log = connect(&server, config()).await;
    for id in 1..=3 {
        log.publish_stored(ArticleId(id), &hash(id)).await.unwrap();
        log.publish_embedded(ArticleId(id), &hash(id))
            .await
            .unwrap();
    }
    let mut work = log.embed_work().await.unwrap();
    next(&mut work, WAIT).await.ack().await.unwrap();
    let mut feed = log.cluster_feed().await.unwrap();
    next(&mut feed, WAIT).await.ack().await.unwrap();
    drop((work, feed, log));

    server.stop();
    server.restart();
    let log = connect(&server, config()).await;
    assert_stored_and_embedded_resume(&log, &[2, 3], &[2, 3]).await;

    // The same after a crash of the server (SIGKILL): what it acknowledged was written.
    for id in 4..=5 {
        log.publish_stored(ArticleId(id), &hash(id)).await.unwrap();
        log.publish_embedded(ArticleId(id), &hash(id))
            .await
            .unwrap();
    }
    drop(log);
    server.kill();
    server.restart();
    let log = connect(&server, config()).await;
    assert_stored_and_embedded_resume(&log, &[4, 5], &[4, 5]).await;
    // The duplicate window's ids of notices still in a stream survived too. (The work
    // queue's acked notices are removed, and their ids with them at a restart: a copy
    // is delivered again, which the embed worker's idempotence absorbs.)
    let copy = log.publish_embedded(ArticleId(5), &hash(5)).await.unwrap();
    assert!(copy.duplicate);
}

async fn assert_stored_and_embedded_resume(log: &ArticleLog, stored: &[u64], embedded: &[u64]) {
    let mut work = log.embed_work().await.unwrap();
    let mut got = BTreeSet::new();
    for _ in stored {
        let d = next(&mut work, WAIT).await;
        got.insert(d.notice().article_id.get());
        d.ack().await.unwrap();
    }
    assert_eq!(got, stored.iter().copied().collect());
    nothing(&mut work, Duration::from_millis(1500)).await;
    let mut feed = log.cluster_feed().await.unwrap();
    for &id in embedded {
        let d = next(&mut feed, WAIT).await;
        assert_eq!(d.notice().article_id.get(), id);
        d.ack().await.unwrap();
    }
    nothing(&mut feed, Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn an_unreadable_message_is_terminated_and_skipped() {
    let server = NatsServer::start();
    let log = connect(&server, config()).await;
    let raw = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    for junk in [
        &b"not json"[..],
        br#"{"article_id":1}"#,
        br#"{"article_id":1,"content_hash":"a:b"}"#,
    ] {
        raw.publish("concord.article.stored", junk.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    log.publish_stored(ArticleId(2), &hash(2)).await.unwrap();
    let mut work = log.embed_work().await.unwrap();
    let d = next(&mut work, WAIT).await;
    assert_eq!(d.notice().article_id, ArticleId(2));
    d.ack().await.unwrap();
    nothing(&mut work, Duration::from_millis(2500)).await;
}

#[tokio::test]
async fn bad_hashes_are_refused_before_publishing() {
    let server = NatsServer::start();
    let log = connect(&server, config()).await;
    for bad in ["", "a:b", "a b", "ab\r\nNats-Msg-Id: x", &"f".repeat(129)] {
        let err = log.publish_stored(ArticleId(1), bad).await.unwrap_err();
        assert!(
            matches!(err, LogError::InvalidHash { .. }),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(stream_messages(&server, "CONCORD_STORED").await, 0);
}

#[tokio::test]
async fn connect_fails_fast_without_a_server_and_updates_settings_with_one() {
    let mut server = NatsServer::start();
    // Every node sets the streams and consumers up; a changed setting is applied.
    connect(&server, config()).await;
    let longer = LogConfig {
        embed_ack_wait: Duration::from_secs(42),
        ..config()
    };
    connect(&server, longer).await;
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let info = js
        .get_stream("CONCORD_STORED")
        .await
        .unwrap()
        .consumer_info("embed")
        .await
        .unwrap();
    assert_eq!(info.config.ack_wait, Duration::from_secs(42));
    assert_eq!(info.config.max_deliver, 5);

    server.stop();
    let t = Instant::now();
    let err = ArticleLog::connect(&server.url(), config())
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::Connect { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// How many messages a stream holds now, asked on a connection of its own.
async fn stream_messages(server: &NatsServer, stream: &str) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let mut stream = js.get_stream(stream).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn a_nak_on_the_cluster_feed_keeps_publish_order() {
    let server = NatsServer::start();
    let log = connect(&server, config()).await;
    for id in 1..=2 {
        log.publish_embedded(ArticleId(id), &hash(id))
            .await
            .unwrap();
    }
    let mut feed = log.cluster_feed().await.unwrap();
    let first = next(&mut feed, WAIT).await;
    assert_eq!(first.notice().article_id, ArticleId(1));
    first.nak(Duration::from_millis(400)).await.unwrap();
    let again = next(&mut feed, WAIT).await;
    assert_eq!(
        (again.notice().article_id, again.attempt()),
        (ArticleId(1), 2)
    );
    again.ack().await.unwrap();
    let second = next(&mut feed, WAIT).await;
    assert_eq!(second.notice().article_id, ArticleId(2));
    second.ack().await.unwrap();
}

#[tokio::test]
async fn a_request_is_answered_by_one_server_of_its_subject_and_unserved_subjects_say_so() {
    use concord_log::{CLUSTER_RPC_SUBJECT, EMBED_RPC_SUBJECT, Unanswered};
    let server = NatsServer::start();
    let log = connect(&server, config()).await;
    let nobody = log
        .request(CLUSTER_RPC_SUBJECT, b"status".to_vec(), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(nobody, Ok(Unanswered::NoResponders)), "{nobody:?}");
    // Two embed workers serve the subject: each request is answered exactly once.
    let mut workers = Vec::new();
    for name in ["a", "b"] {
        let mut requests = log.serve(EMBED_RPC_SUBJECT).await.unwrap();
        workers.push(tokio::spawn(async move {
            let mut served = 0;
            while let Some(request) = requests.next().await {
                let answer = [name.as_bytes(), b":", request.payload()].concat();
                request.reply(answer).await.unwrap();
                served += 1;
            }
            served
        }));
    }
    log.flush().await.unwrap();
    for i in 0..20 {
        let text = format!("q{i}");
        let answer = log
            .request(EMBED_RPC_SUBJECT, text.clone().into_bytes(), WAIT)
            .await
            .unwrap();
        let answer = String::from_utf8(answer.to_vec()).unwrap();
        assert!(
            answer == format!("a:{text}") || answer == format!("b:{text}"),
            "{answer}"
        );
    }
    // A server that takes a request and never answers: the caller times out.
    let mut silent = log.serve(CLUSTER_RPC_SUBJECT).await.unwrap();
    let hold = tokio::spawn(async move {
        let held = silent.next().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(held);
    });
    log.flush().await.unwrap();
    let late = log
        .request(
            CLUSTER_RPC_SUBJECT,
            b"x".to_vec(),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(matches!(late, Ok(Unanswered::TimedOut)), "{late:?}");
    hold.abort();
    for w in workers {
        w.abort();
    }
}
