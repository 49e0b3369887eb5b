//! `concord ingest` into a running service, then `concord export` of its data
//! directory: every accepted article exactly once, re-running the file a no-op, each
//! refused line reported with its number.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Output,
    time::{Duration, Instant},
};

use concord_crashtest::{DEV_KEY, Server};
use serde_json::{Value, json};

fn run(args: &[&str]) -> Output {
    super::cli(args, &[("CONCORD_API_KEY", DEV_KEY)])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// external id -> (cluster, lang) of every exported member.
fn exported(data: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let out = run(&["export", "--data-dir", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut members: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in text(&out.stdout).lines() {
        let cluster: Value = serde_json::from_str(line).unwrap();
        let id = cluster["cluster"].as_str().unwrap().to_owned();
        assert_eq!(
            cluster["size"].as_u64().unwrap() as usize,
            cluster["members"].as_array().unwrap().len(),
            "{cluster}"
        );
        for m in cluster["members"].as_array().unwrap() {
            members
                .entry(m["external_id"].as_str().unwrap().to_owned())
                .or_default()
                .push((id.clone(), m["lang"].as_str().unwrap_or("").to_owned()));
        }
    }
    members
}

#[test]
fn ingest_then_export_holds_every_accepted_article_once_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server =
        Server::spawn(&super::launch(&data, &[]), &dir.path().join("serve.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let url = server.api().base().to_owned();

    let article = |id: &str, lang: &str, title: &str, at: &str| {
        json!({"external_id": id, "lang": lang, "title": title, "published_at": at,
               "body": format!("{title}. {title}.")})
        .to_string()
    };
    let jsonl = [
        article(
            "gi-fr",
            "fr",
            "La Chine lance une initiative mondiale sur la sécurité des données",
            "2020-09-08T10:00:00Z",
        ),
        article(
            "gi-en",
            "en",
            "China launches a global initiative on data security",
            "2020-09-08T12:00:00Z",
        ),
        // line 3: no title
        json!({"external_id": "broken", "published_at": "2020-09-08T12:00:00Z"}).to_string(),
        article(
            "gi-ar",
            "ar",
            "الصين تطلق مبادرة عالمية بشأن أمن البيانات",
            "2020-09-09T08:00:00Z",
        ),
        "{not json".to_owned(),
        article(
            "flood-es",
            "es",
            "Inundaciones en Valencia dejan miles de evacuados",
            "2020-09-09T09:00:00Z",
        ),
    ]
    .join("\n");
    let file = dir.path().join("articles.jsonl");
    std::fs::write(&file, jsonl).unwrap();
    let args = [
        "ingest",
        file.to_str().unwrap(),
        "--url",
        &url,
        "--batch",
        "2",
    ];

    let first = run(&args);
    let (stdout, stderr) = (text(&first.stdout), text(&first.stderr));
    assert_eq!(first.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("read 6 records: 4 accepted (4 queued, 0 unchanged), 2 refused"),
        "{stdout}"
    );
    assert!(stderr.contains("refused: line 3: 422 `title`"), "{stderr}");
    assert!(stderr.contains("refused: line 5: not JSON"), "{stderr}");

    // Clustered by the running service: the export (read while it runs) fills up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut members = exported(&data);
    while members.len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        members = exported(&data);
    }
    let ids: Vec<&str> = members.keys().map(String::as_str).collect();
    assert_eq!(ids, ["flood-es", "gi-ar", "gi-en", "gi-fr"]);
    assert!(
        members.values().all(|placed| placed.len() == 1),
        "{members:?}"
    );

    // The same file again: nothing new, the same lines refused.
    let again = run(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stdout).contains("4 accepted (0 queued, 4 unchanged), 2 refused"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(exported(&data), members);

    // CSV with the same fields as columns; everything accepted: exit 0.
    let csv = dir.path().join("more.csv");
    std::fs::write(
        &csv,
        "external_id,lang,published_at,title\n\
         gi-es,es,2020-09-09T10:00:00Z,\"China lanza una iniciativa global sobre seguridad de datos\"\n",
    )
    .unwrap();
    let out = run(&["ingest", csv.to_str().unwrap(), "--url", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // CSV export: one row per member; a date range keeps the clusters within it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while exported(&data).len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let d = data.to_str().unwrap();
    let out = run(&["export", "--data-dir", d, "--format", "csv"]);
    let rows: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert!(
        rows[0].starts_with("cluster,label,size,languages,"),
        "{}",
        rows[0]
    );
    assert_eq!(rows.len(), 1 + 5, "{rows:?}");
    // The same clusters through the API of the running service.
    let from_dir = run(&["export", "--data-dir", d]);
    let from_api = run(&["export", "--url", &url]);
    assert!(from_api.status.success(), "{}", text(&from_api.stderr));
    assert_eq!(text(&from_api.stdout), text(&from_dir.stdout));
    let out = run(&["export", "--url", &url, "--until", "2020-09-09"]);
    let early: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !early.is_empty()
            && early
                .iter()
                .all(|c| c["first_seen"].as_str().unwrap() < "2020-09-09")
    );
    let out = run(&["export", "--data-dir", d, "--until", "2020-09-01"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
    let out = run(&[
        "export",
        "--data-dir",
        &dir.path().join("none").to_string_lossy(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no concord.sqlite3"),
        "{}",
        text(&out.stderr)
    );
}
