//! `concord serve` on PostgreSQL (`store.backend = "postgres"`, a throwaway server from
//! `concord-testpg`): the seeds sent as one batch and acknowledged, the process killed
//! with SIGKILL at once, restarted: every acknowledged seed is clustered, 000-003 in one
//! cluster and 004 apart as on SQLite; the data directory holds no SQLite file (only the
//! index dump); `concord export` reads the same database; SIGTERM stops it cleanly.

use concord_crashtest::Server;
use serde_json::{Value, json};

use super::console::{cluster_of, seeds_jsonl};

#[test]
fn on_postgresql_what_was_acknowledged_survives_a_kill_and_the_seeds_group_as_on_sqlite() {
    let url = concord_testpg::database("serve_on_postgres").unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [
        ("CONCORD_STORE__BACKEND", "postgres"),
        ("CONCORD_STORE__POSTGRES_URL", url.as_str()),
    ];
    let launch = super::launch(&data, &env);

    let mut server = Server::spawn(&launch, &dir.path().join("first.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let articles: Vec<Value> = seeds_jsonl()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let answer = server
        .api()
        .post("/v1/articles/batch", &json!({ "articles": articles }))
        .unwrap();
    assert!(answer.ok(), "{}", String::from_utf8_lossy(&answer.body));
    // Acknowledged: now kill it, whatever it was doing.
    server.kill().unwrap();
    assert!(
        !data.join("concord.sqlite3").exists(),
        "the articles went to SQLite, not PostgreSQL"
    );

    let mut server = Server::spawn(&launch, &dir.path().join("second.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let api = server.api().clone();
    super::wait_clustered(&api, 5);
    let event = cluster_of(&api, "seed-000");
    for seed in ["seed-001", "seed-002", "seed-003"] {
        assert_eq!(cluster_of(&api, seed), event, "{seed}");
    }
    assert_ne!(cluster_of(&api, "seed-004"), event);

    // Export reads the database the configuration names.
    let out = super::cli(&["export", "--data-dir", data.to_str().unwrap()], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let members: usize = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["members"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(members, 5);
    // A graceful stop on PostgreSQL: drained, index dumped, exit 0.
    let (status, log) = server.terminate(super::EXIT).unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        data.join("index").exists(),
        "no index dump in the data directory"
    );
}
