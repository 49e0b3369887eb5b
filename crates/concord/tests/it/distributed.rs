//! The distributed mode on real processes (issue 15): a throwaway PostgreSQL
//! (`concord-testpg`) and nats-server (`concord-testnats`), two api nodes, two embed
//! workers, an active clusterer and a standby, each its own `concord serve --role ...`.
//! The seeds go in through both api nodes and group as in one process (000-003 together,
//! 004 apart); a search in French goes api → embed worker → clusterer; the active
//! clusterer is killed with SIGKILL, the standby takes the lease, clusters what arrives
//! next and applies a correction; every process stops cleanly on SIGTERM.

use std::time::{Duration, Instant};

use concord_crashtest::{Launch, Server};
use concord_testnats::NatsServer;
use serde_json::{Value, json};

use super::console::{cluster_of, seeds_jsonl};

struct Cluster {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    database: String,
}

impl Cluster {
    fn new(name: &str, nats: &NatsServer) -> Self {
        let url = concord_testpg::database(name).unwrap_or_else(|e| panic!("{e}"));
        let env = [
            ("CONCORD_STORE__BACKEND", "postgres"),
            ("CONCORD_STORE__POSTGRES_URL", url.as_str()),
            ("CONCORD_DISTRIBUTED__NATS_URL", nats.url().as_str()),
            // Quick takeover for a test: the standby polls often, and the notice a
            // killed clusterer held comes back after 2 s.
            ("CONCORD_DISTRIBUTED__LEASE_POLL_MS", "200"),
            ("CONCORD_DISTRIBUTED__CLUSTER_ACK_WAIT_SECS", "2"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        Self {
            dir: tempfile::tempdir().unwrap(),
            env,
            database: url,
        }
    }

    /// `concord serve --role <role>` (by its setting) with a data directory of its own.
    fn spawn(&self, role: &str, name: &str) -> Server {
        let mut env = self.env.clone();
        env.push(("CONCORD_DISTRIBUTED__ROLE".into(), role.into()));
        let launch = Launch {
            env,
            ..super::launch(&self.dir.path().join(name), &[])
        };
        Server::spawn(&launch, &self.dir.path().join(format!("{name}.log"))).unwrap()
    }
}

/// Waits until `server`'s log has a line whose message is `message`.
fn wait_log(server: &Server, message: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if concord_crashtest::messages(&server.log())
            .iter()
            .any(|m| m == message)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "no \"{message}\" in time:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn active(server: &Server) -> bool {
    concord_crashtest::messages(&server.log())
        .iter()
        .any(|m| m == "clusterer active")
}

#[test]
fn the_roles_on_their_own_processes_group_the_seeds_as_one_process_does_and_survive_losing_the_clusterer()
 {
    let nats = NatsServer::start();
    let cluster = Cluster::new("distributed", &nats);
    let mut api1 = cluster.spawn("api", "api1");
    let mut api2 = cluster.spawn("api", "api2");
    let embed1 = cluster.spawn("embed", "embed1");
    let embed2 = cluster.spawn("embed", "embed2");
    let first = cluster.spawn("cluster", "cluster1");
    api1.wait_ready(super::READY).unwrap();
    api2.wait_ready(super::READY).unwrap();
    let ready: Value = api1
        .api()
        .get("/readyz")
        .unwrap()
        .expect_ok("readyz")
        .unwrap();
    assert_eq!(ready["role"], "api");
    assert!(ready["indexed_articles"].is_null());
    wait_log(&first, "clusterer active", super::READY);
    let mut second = cluster.spawn("cluster", "cluster2");
    wait_log(
        &second,
        "standby: another clusterer holds the lease",
        super::READY,
    );
    for worker in [&embed1, &embed2] {
        wait_log(
            worker,
            "embed worker following the stored articles",
            super::READY,
        );
    }
    // The roles without the API still answer probes and scrapes on server.listen.
    let probe = |s: &Server| -> Value { s.api().get("/readyz").unwrap().json("readyz").unwrap() };
    second.wait_ready(super::READY).unwrap();
    assert_eq!(probe(&first)["state"], "active");
    assert_eq!(probe(&second)["state"], "standby");
    assert_eq!(probe(&embed1)["role"], "embed");

    // The seeds through both api nodes.
    let articles: Vec<Value> = seeds_jsonl()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, article) in articles.iter().enumerate() {
        let api = if i % 2 == 0 { api1.api() } else { api2.api() };
        let answer = api.post("/v1/articles", article).unwrap();
        assert_eq!(answer.status, 202, "{}", answer.text());
    }
    let (a1, a2) = (api1.api().clone(), api2.api().clone());
    super::wait_clustered(&a1, 5);
    let event = cluster_of(&a2, "seed-000");
    for seed in ["seed-001", "seed-002", "seed-003"] {
        assert_eq!(cluster_of(&a1, seed), event, "{seed}");
    }
    assert_ne!(cluster_of(&a1, "seed-004"), event);
    let scrape =
        |s: &Server| String::from_utf8_lossy(&s.api().get("/metrics").unwrap().body).into_owned();
    assert!(
        scrape(&first).contains("concord_articles_clustered_total 5"),
        "{}",
        scrape(&first)
    );
    assert!(scrape(&first).contains("concord_indexed_articles 5"));
    let embedded: u64 = [&embed1, &embed2]
        .iter()
        .map(|w| {
            scrape(w)
                .lines()
                .find_map(|l| l.strip_prefix("concord_embed_batch_size_sum "))
                .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
        })
        .sum();
    assert_eq!(embedded, 5, "each seed embedded once across the workers");
    // A search: its text to an embed worker, its vector to the clusterer's index.
    let hits: Value = a2
        .get("/v1/search?q=initiative%20mondiale%20sur%20la%20s%C3%A9curit%C3%A9%20des%20donn%C3%A9es&k=5")
        .unwrap()
        .expect_ok("search")
        .unwrap();
    let top = &hits["hits"][0];
    assert_eq!(top["cluster"].as_str(), Some(event.as_str()), "{hits}");

    // The active clusterer dies; the standby takes the lease and goes on.
    let killed_at = Instant::now();
    first.kill().unwrap();
    let takeover = wait_log(&second, "clusterer active", Duration::from_secs(60));
    let late = json!({
        "external_id": "late-1",
        "title": "Chine : une initiative mondiale sur la sécurité des données",
        "body": "Pékin a présenté une initiative mondiale sur la sécurité des données.",
        "lang": "fr",
        "published_at": "2020-09-09T08:00:00Z"
    });
    let answer = a1.post("/v1/articles?wait=true", &late).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let placed: Value = answer.json("accepted").unwrap();
    assert_eq!(placed["status"], "clustered", "{placed}");
    eprintln!(
        "failover: standby active {} ms after the kill; the next article clustered {} ms after the kill",
        takeover.as_millis(),
        killed_at.elapsed().as_millis()
    );
    // A correction through an api node reaches the new clusterer (and its refusals come
    // back as they would from one process).
    let joined = placed["cluster"].as_str().unwrap() == event;
    let corrected = if joined {
        a2.post(
            &format!("/v1/clusters/{event}/split"),
            &json!({ "articles": [placed["id"]] }),
        )
    } else {
        a2.post(
            &format!("/v1/articles/{}/move", placed["id"].as_str().unwrap()),
            &json!({ "cluster": event }),
        )
    }
    .unwrap();
    assert!(corrected.ok(), "{}", corrected.text());
    assert_eq!(cluster_of(&a1, "late-1") == event, !joined);
    let refused = a1
        .post(
            &format!("/v1/clusters/{event}/split"),
            &json!({ "articles": ["a999"] }),
        )
        .unwrap();
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(active(&second));
    assert_eq!(probe(&second)["state"], "active");
    // The other index queries and a delete go to the new clusterer too.
    let related = a1.get(&format!("/v1/clusters/{event}/related")).unwrap();
    assert!(related.ok(), "{}", related.text());
    let seed4 = a1
        .get("/v1/articles/a5")
        .unwrap()
        .json::<Value>("a5")
        .unwrap();
    assert_eq!(seed4["external_id"], "seed-004");
    let gone = a2.delete("/v1/articles/a5").unwrap();
    assert!(gone.ok(), "{}", gone.text());
    let after = a1
        .get("/v1/articles/a5")
        .unwrap()
        .json::<Value>("a5")
        .unwrap();
    assert_eq!(after["state"], "deleted", "{after}");
    assert!(after["cluster"].is_null(), "{after}");

    for (name, server) in [
        ("api1", api1),
        ("api2", api2),
        ("embed1", embed1),
        ("embed2", embed2),
        ("cluster2", second),
    ] {
        let (status, log) = server.terminate(super::EXIT).unwrap();
        assert!(status.success(), "{name}: {status:?}\n{log}");
    }
}

/// Roles often start beside their NATS server: an api node that finds it not yet up keeps
/// trying (for up to a minute), then serves once it is.
#[test]
fn an_api_node_started_before_the_nats_server_waits_for_it() {
    let mut nats = NatsServer::start();
    let cluster = Cluster::new("late_nats", &nats);
    nats.stop();
    let mut api = cluster.spawn("api", "api");
    std::thread::sleep(Duration::from_millis(1500));
    nats.restart();
    api.wait_ready(super::READY).unwrap();
    assert!(
        concord_crashtest::messages(&api.log())
            .iter()
            .any(|m| m == "the article log is not reachable yet"),
        "{}",
        api.log()
    );
    let (status, log) = api.terminate(super::EXIT).unwrap();
    assert!(status.success(), "{status:?}\n{log}");
}

/// A clusterer cut off from the database (its lease session ended, as a partition or a
/// database failover would) stops at once rather than deciding beside its successor; the
/// standby takes the lease and clusters what comes next.
#[test]
fn a_clusterer_that_loses_its_lease_stops_and_the_standby_takes_over() {
    let nats = NatsServer::start();
    let cluster = Cluster::new("lease_lost", &nats);
    let mut api = cluster.spawn("api", "api");
    let embed = cluster.spawn("embed", "embed");
    let mut first = cluster.spawn("cluster", "cluster1");
    wait_log(&first, "clusterer active", super::READY);
    let second = cluster.spawn("cluster", "cluster2");
    wait_log(
        &second,
        "standby: another clusterer holds the lease",
        super::READY,
    );
    api.wait_ready(super::READY).unwrap();

    let mut admin = ::postgres::Client::connect(&cluster.database, ::postgres::NoTls).unwrap();
    let ended = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
            &[],
        )
        .unwrap();
    assert_eq!(ended, 1, "one session holds the lease");
    let status = first
        .wait_exit(Duration::from_secs(30))
        .unwrap()
        .expect("the clusterer stops");
    assert!(!status.success(), "{status:?}");
    assert!(
        concord_crashtest::messages(&first.log())
            .iter()
            .any(|m| m == "the clusterer lease is lost; stopping"),
        "{}",
        first.log()
    );
    wait_log(&second, "clusterer active", Duration::from_secs(30));
    let article = seeds_jsonl()
        .lines()
        .next()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .unwrap();
    let answer = api.api().post("/v1/articles?wait=true", &article).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json::<Value>("accepted").unwrap()["status"],
        "clustered"
    );
    for s in [api, embed, second] {
        let (status, log) = s.terminate(super::EXIT).unwrap();
        assert!(status.success(), "{status:?}\n{log}");
    }
}

/// Records every webhook delivery (its `webhook-id` and body) POSTed to it; answers 204.
struct Receiver {
    port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = std::sync::Arc::clone(&sink);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    let (mut id, mut length) = (String::new(), 0usize);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            match k.trim().to_ascii_lowercase().as_str() {
                                "webhook-id" => id = v.trim().to_owned(),
                                "content-length" => length = v.trim().parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                        sink.lock().unwrap().push((id, v));
                    }
                    let _ = reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
                });
            }
        });
        Self { port, got }
    }

    /// Distinct webhook ids of `article.clustered` deliveries, per article id.
    fn clustered(&self) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut by_article =
            std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
        for (id, v) in self.got.lock().unwrap().iter() {
            if v["type"] == "article.clustered" {
                let article = v["data"]["article"].as_str().unwrap_or_default().to_owned();
                by_article.entry(article).or_default().insert(id.clone());
            }
        }
        by_article
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The crash harness in the distributed mode: while articles go in through an api node,
/// SIGKILL an embed worker or the active clusterer every ten articles (24 kills), each
/// killed process started again (a killed clusterer comes back as the standby). Then:
/// every acknowledged article is stored, clustered, in exactly one cluster, findable by
/// `similar` (the active clusterer's index); every cluster id handed out resolves; every
/// article's `article.clustered` webhook arrived, under exactly one webhook id.
#[test]
fn killing_embed_workers_and_the_active_clusterer_loses_nothing_acknowledged() {
    const ARTICLES: usize = 240;
    const EVERY: usize = 10;
    let nats = NatsServer::start();
    let mut cluster = Cluster::new("distributed_crash", &nats);
    for (k, v) in [
        ("CONCORD_WEBHOOKS__ALLOW_LOOPBACK_TARGETS", "true"),
        ("CONCORD_WEBHOOKS__POLL_MS", "200"),
        ("CONCORD_DISTRIBUTED__SWEEP_AFTER_SECS", "5"),
        ("CONCORD_DISTRIBUTED__SWEEP_EVERY_SECS", "2"),
        ("CONCORD_DISTRIBUTED__EMBED_ACK_WAIT_SECS", "3"),
    ] {
        cluster.env.push((k.into(), v.into()));
    }
    let receiver = Receiver::start();
    let mut api = cluster.spawn("api", "api");
    api.wait_ready(super::READY).unwrap();
    let client = api.api().clone();
    let sub = client
        .post(
            "/v1/webhooks/subscriptions",
            &json!({ "url": format!("http://127.0.0.1:{}/hook", receiver.port), "event_types": ["article.clustered"] }),
        )
        .unwrap();
    assert!(sub.ok(), "{}", sub.text());

    let mut starts = 0usize;
    let mut spawn = |role: &str| {
        starts += 1;
        cluster.spawn(role, &format!("{role}-{starts}"))
    };
    let mut embeds = vec![spawn("embed"), spawn("embed")];
    let mut clusterers = vec![spawn("cluster")];
    wait_log(&clusterers[0], "clusterer active", super::READY);
    clusterers.push(spawn("cluster"));
    wait_log(
        &clusterers[1],
        "standby: another clusterer holds the lease",
        super::READY,
    );

    let articles = concord_crashtest::corpus(15, ARTICLES);
    let mut rng = concord_crashtest::Rng::new(15);
    let mut acked = std::collections::BTreeMap::new();
    let mut cluster_ids = std::collections::BTreeSet::new();
    let (mut embed_kills, mut cluster_kills, mut failovers) = (0, 0, Vec::new());
    for (i, chunk) in articles.chunks(EVERY).enumerate() {
        for article in chunk {
            let answer = client.post("/v1/articles", &article.to_json()).unwrap();
            assert_eq!(answer.status, 202, "{}", answer.text());
            let a: Value = answer.json("accepted").unwrap();
            acked.insert(
                article.external_id.clone(),
                a["id"].as_str().unwrap().to_owned(),
            );
        }
        // Cluster ids handed out so far must resolve at the end, merged or not.
        // The round before this one is clustered by now (a kill lands on work in
        // flight, not on an idle system); its cluster ids must resolve at the end.
        if i > 0 {
            let previous = &articles[(i - 1) * EVERY..i * EVERY];
            concord_crashtest::settle(
                &client,
                previous.iter().map(|a| &acked[&a.external_id]),
                Duration::from_secs(120),
            )
            .unwrap();
            for c in client.all_clusters().unwrap() {
                cluster_ids.insert(c.id);
            }
        }
        // Alternate: the active clusterer every other round, an embed worker otherwise.
        if i % 2 == 0 {
            let at = clusterers
                .iter()
                .position(active)
                .expect("an active clusterer");
            let killed = clusterers.remove(at);
            let killed_at = Instant::now();
            killed.kill().unwrap();
            cluster_kills += 1;
            // The standby takes over; the killed one comes back as the next standby.
            failovers.push(
                killed_at.elapsed()
                    + wait_log(&clusterers[0], "clusterer active", Duration::from_secs(60)),
            );
            clusterers.push(spawn("cluster"));
        } else {
            let at = rng.below(embeds.len());
            embeds.remove(at).kill().unwrap();
            embed_kills += 1;
            embeds.push(spawn("embed"));
        }
    }
    assert!(embed_kills + cluster_kills >= 20);
    let ids: Vec<&String> = acked.values().collect();
    concord_crashtest::settle(&client, ids, Duration::from_secs(180)).unwrap();
    let round = concord_crashtest::verify("distributed", &client, &acked, &cluster_ids).unwrap();
    assert_eq!(
        (
            round.lost,
            round.unclustered,
            round.duplicates,
            round.inconsistent,
            round.unacknowledged_members,
            round.not_indexed,
            round.stale_index,
            round.unresolved_cluster_ids
        ),
        (0, 0, 0, 0, 0, 0, 0, 0),
        "{round:?}"
    );
    // Every article's event, once (at least once delivered, one id). A dispatcher killed
    // with its clusterer mid-attempt leaves that delivery claimed until its lease ends
    // (webhooks.timeout_ms + 60 s), then another sends it: allow for that.
    let deadline = Instant::now() + Duration::from_secs(150);
    let events = loop {
        let events = receiver.clustered();
        if events.len() >= acked.len() || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let missing: Vec<&String> = acked
        .values()
        .filter(|id| !events.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "no article.clustered for {missing:?}");
    let twice: Vec<_> = events.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(twice.is_empty(), "events sent under two ids: {twice:?}");
    failovers.sort();
    eprintln!(
        "distributed crash harness: kills {} (embed {embed_kills}, active clusterer {cluster_kills}), acknowledged {}, lost {}, clusters {}, cluster ids checked {}, webhook events {}, failover p50 {} ms max {} ms",
        embed_kills + cluster_kills,
        acked.len(),
        round.lost,
        round.clusters,
        round.cluster_ids_checked,
        events.len(),
        percentile(&failovers, 0.5).as_millis(),
        percentile(&failovers, 1.0).as_millis(),
    );
    for s in embeds.into_iter().chain(clusterers) {
        let (status, log) = s.terminate(super::EXIT).unwrap();
        assert!(status.success(), "{status:?}\n{log}");
    }
    let (status, log) = api.terminate(super::EXIT).unwrap();
    assert!(status.success(), "{status:?}\n{log}");
}
