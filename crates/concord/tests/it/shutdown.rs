//! SIGTERM: stop accepting, drain the queues, dump the index, exit 0; the next
//! start has nothing to recover; a request still in flight does not hold the exit
//! past `server.shutdown_deadline_secs`.

use std::{
    collections::BTreeMap,
    io::Write,
    net::TcpStream,
    time::{Duration, Instant},
};

use concord_crashtest::{
    Accepted, Api, Article, BatchAnswer, BatchItem, DEV_KEY, IndexPath, Server, corpus, messages,
    settle,
};

/// Submits without waiting for clusters: a batch, then the rest one by one.
/// Returns external id -> article id for each acknowledged article.
fn post_all(api: &Api, articles: &[Article], batch: usize) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    let (first, rest) = articles.split_at(batch.min(articles.len()));
    let body = serde_json::json!({
        "articles": first.iter().map(Article::to_json).collect::<Vec<_>>()
    });
    let answer = api.post("/v1/articles/batch", &body).unwrap();
    assert_eq!(answer.status, 202, "{}", answer.text());
    let batch: BatchAnswer = answer.json("batch").unwrap();
    for item in batch.results {
        match item {
            BatchItem::Accepted(a) => {
                ids.insert(a.external_id, a.id);
            }
            BatchItem::Refused { problem } => panic!("refused: {problem:?}"),
        }
    }
    for a in rest {
        let answer = api.post("/v1/articles", &a.to_json()).unwrap();
        assert_eq!(answer.status, 202, "{}", answer.text());
        let accepted: Accepted = answer.json("article").unwrap();
        ids.insert(accepted.external_id, accepted.id);
    }
    ids
}

/// Exit 0, the index dumped, neither the deadline nor a leftover handle in the way.
fn assert_clean_stop(server: Server) {
    let (status, log) = server.terminate(super::EXIT).unwrap();
    let said = messages(&log);
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert!(
        said.iter().any(|m| m == "index dumped"),
        "no dump; log:\n{log}"
    );
    assert!(
        !said
            .iter()
            .any(|m| m.starts_with("shutdown deadline passed")
                || m.starts_with("pipeline still shared")),
        "did not drain; log:\n{log}"
    );
}

#[test]
fn sigterm_right_after_ingest_drains_dumps_and_leaves_nothing_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let launch = super::launch(&data, &[]);
    let articles = corpus(11, 80);

    let mut server = Server::spawn(&launch, &dir.path().join("first.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let ids = post_all(server.api(), &articles, 60);
    assert_eq!(ids.len(), articles.len());
    // at once: most articles are still waiting for the model
    assert_clean_stop(server);

    let mut server = Server::spawn(&launch, &dir.path().join("second.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let start = server.startup_log();
    assert_eq!(start.requeued, 0, "the stop left work behind");
    assert_eq!(start.index, IndexPath::Loaded);
    assert_eq!(start.dump_entries, Some(articles.len() as u64));
    assert_eq!(start.index_repaired, Some(0));
    let api = server.api().clone();
    // clustered before this start: no waiting
    for (external_id, id) in &ids {
        let a = api.article(id).unwrap().expect("stored");
        assert_eq!(&a.external_id, external_id);
        assert_eq!(a.state, "clustered", "{id}");
        assert!(a.cluster.is_some());
    }
    assert_eq!(api.ready().unwrap().indexed_articles, Some(articles.len()));
    assert_clean_stop(server);
}

#[test]
fn sigterm_during_recovery_stops_cleanly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let articles = corpus(12, 120);

    // 1. a crash with most of a batch unclustered
    let mut server =
        Server::spawn(&super::launch(&data, &[]), &dir.path().join("first.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let ids = post_all(server.api(), &articles, 120);
    server.kill().unwrap();

    // 2. queues too small for the backlog, so recovery is still feeding them
    //    when SIGTERM arrives
    let small = [
        ("CONCORD_EMBED__QUEUE_CAPACITY", "2"),
        ("CONCORD_EMBED__MAX_BATCH", "2"),
        ("CONCORD_CLUSTER__QUEUE_CAPACITY", "2"),
    ];
    let mut server = Server::spawn(
        &super::launch(&data, &small),
        &dir.path().join("second.log"),
    )
    .unwrap();
    server.wait_ready(super::READY).unwrap();
    assert_clean_stop(server);

    // 3. whatever the stop left queued is recovered; nothing is lost
    let mut server =
        Server::spawn(&super::launch(&data, &[]), &dir.path().join("third.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let api = server.api().clone();
    settle(&api, ids.values(), Duration::from_secs(120)).unwrap();
    for (external_id, id) in &ids {
        let a = api.article(id).unwrap().expect("stored");
        assert_eq!(&a.external_id, external_id);
        assert_eq!(a.state, "clustered");
    }
    assert_eq!(api.ready().unwrap().indexed_articles, Some(articles.len()));
    assert_clean_stop(server);
}

/// A client that sends its headers and half its body, then nothing: the handler waits
/// for the rest, and a graceful drain alone would wait with it forever. Returns once the
/// request is in the router (tower-http's "started processing request", which needs
/// `tower_http=debug` in the log filter); the stream must stay alive meanwhile.
fn stall_a_post(server: &Server) -> TcpStream {
    let addr = server.api().base().trim_start_matches("http://").to_owned();
    let mut stalled = TcpStream::connect(&addr).unwrap();
    write!(
        stalled,
        "POST /v1/articles HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {DEV_KEY}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"external_id\": "
    )
    .unwrap();
    stalled.flush().unwrap();
    let start = Instant::now();
    while !server.log().lines().any(|l| {
        l.contains("started processing request") && l.contains("\"path\":\"/v1/articles\"")
    }) {
        assert!(start.elapsed() < super::READY, "the request never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    stalled
}

#[test]
fn a_request_still_in_flight_cannot_hold_the_stop_past_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let launch = super::launch(
        &data,
        &[
            ("CONCORD_SERVER__SHUTDOWN_DEADLINE_SECS", "2"),
            // tower-http's "started processing request": the request is in the router
            ("CONCORD_LOG__FILTER", "info,hnsw_rs=warn,tower_http=debug"),
        ],
    );
    let mut server = Server::spawn(&launch, &dir.path().join("log")).unwrap();
    server.wait_ready(super::READY).unwrap();

    let _stalled = stall_a_post(&server);

    let (status, log) = server.terminate(super::EXIT).unwrap();
    assert!(status.success(), "exit {status}; log:\n{log}");
    let said = messages(&log);
    assert!(
        said.iter()
            .any(|m| m == "shutdown deadline passed while requests were in flight"),
        "the drain did not wait for the stalled request; log:\n{log}"
    );
    // (the pipeline's own warning, from another thread, may be written after it)
    assert!(said.iter().any(|m| m == "stopped"), "log:\n{log}");
}

/// Ctrl-c twice: the second signal does not wait for the drain (held here by a stalled
/// request and a long deadline); it exits at once with 128 + SIGTERM, as a crash would,
/// and the next start finds everything acknowledged.
#[test]
fn a_second_signal_exits_at_once_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let launch = super::launch(
        &data,
        &[
            ("CONCORD_SERVER__SHUTDOWN_DEADLINE_SECS", "600"),
            ("CONCORD_LOG__FILTER", "info,hnsw_rs=warn,tower_http=debug"),
        ],
    );
    let mut server = Server::spawn(&launch, &dir.path().join("first.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let articles = corpus(13, 20);
    let ids = post_all(server.api(), &articles, 10);

    let _stalled = stall_a_post(&server);
    let start = Instant::now();
    let first = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(first.success());
    while !messages(&server.log())
        .iter()
        .any(|m| m == "shutdown requested")
    {
        assert!(
            start.elapsed() < super::READY,
            "the first signal was not heard"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The drain would wait 600 s for the stalled request; the second signal does not.
    let (status, log) = server.terminate(super::EXIT).unwrap();
    assert_eq!(status.code(), Some(143), "log:\n{log}");
    assert!(
        messages(&log)
            .iter()
            .any(|m| m.starts_with("second signal: exiting now")),
        "log:\n{log}"
    );

    let mut server = Server::spawn(&launch, &dir.path().join("second.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let api = server.api().clone();
    for id in ids.values() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let a = api.article(id).unwrap().expect("acknowledged, so stored");
            if a.state == "clustered" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} never clustered");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_clean_stop(server);
}
