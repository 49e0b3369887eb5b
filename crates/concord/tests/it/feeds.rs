//! `concord serve` with feeds in its configuration, against a local server holding
//! an RSS file (with an ETag) and a broken feed: the items are ingested once, later
//! rounds are 304s, the broken feed is reported in /metrics and stops nothing.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use concord_crashtest::Server;

const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Tech FR</title><language>fr</language>
<item><title>La Chine lance une initiative mondiale sur la sécurité des données</title>
<link>https://example.org/a</link><guid>tech-fr-1</guid>
<pubDate>Tue, 08 Sep 2020 10:00:00 GMT</pubDate>
<description>Pékin propose des règles mondiales pour la sécurité des données.</description></item>
<item><title>Pékin présente son initiative sur les données à Genève</title>
<link>https://example.org/b</link><guid>tech-fr-2</guid>
<pubDate>Wed, 09 Sep 2020 10:00:00 GMT</pubDate></item>
</channel></rss>"#;

/// Serves `/rss.xml` (304 when If-None-Match is its ETag) and `/broken.xml` on a
/// thread; counts the full answers of the RSS file.
fn feed_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let full = Arc::new(AtomicUsize::new(0));
    let counter = full.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut etag_matches = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                etag_matches |= lower.starts_with("if-none-match:") && line.contains("\"v1\"");
            }
            let (status, extra, body) = if request_line.starts_with("GET /rss.xml") {
                if etag_matches {
                    ("304 Not Modified", "ETag: \"v1\"\r\n", "")
                } else {
                    counter.fetch_add(1, Ordering::SeqCst);
                    (
                        "200 OK",
                        "ETag: \"v1\"\r\nContent-Type: application/rss+xml\r\n",
                        RSS,
                    )
                }
            } else if request_line.starts_with("GET /broken.xml") {
                ("200 OK", "", "<rss><channel><item>")
            } else {
                ("404 Not Found", "", "")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, full)
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn feed_items_are_ingested_once_and_a_broken_feed_stops_nothing() {
    let (base, full) = feed_server();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("feeds.toml");
    std::fs::write(
        &config,
        format!(
            "[feeds]\ninterval_secs = 1\nallow_loopback_targets = true\n\
             [[feeds.list]]\nname = \"tech-fr\"\nurl = \"{base}/rss.xml\"\n\
             [[feeds.list]]\nname = \"broken\"\nurl = \"{base}/broken.xml\"\n"
        ),
    )
    .unwrap();
    let launch = super::launch(
        &dir.path().join("data"),
        &[("CONCORD_CONFIG", config.to_str().unwrap())],
    );
    let mut server = Server::spawn(&launch, &dir.path().join("serve.log")).unwrap();
    server.wait_ready(super::READY).unwrap();
    let api = server.api().clone();

    // Several rounds: the first brings both items, the later ones are 304s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = String::from_utf8(api.get("/metrics").unwrap().body).unwrap();
        if metric(
            &text,
            r#"concord_feed_polls_total{feed="tech-fr",outcome="not_modified"} "#,
        ) >= 2
            && metric(
                &text,
                r#"concord_feed_polls_total{feed="broken",outcome="error"} "#,
            ) >= 2
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        metric(
            &text,
            r#"concord_feed_items_total{feed="tech-fr",outcome="queued"} "#
        ),
        2,
        "{text}"
    );
    assert!(
        metric(
            &text,
            r#"concord_feed_polls_total{feed="tech-fr",outcome="not_modified"} "#
        ) >= 2,
        "{text}"
    );
    assert!(
        metric(
            &text,
            r#"concord_feed_polls_total{feed="broken",outcome="error"} "#
        ) >= 2,
        "{text}"
    );
    assert_eq!(
        full.load(Ordering::SeqCst),
        1,
        "the unchanged feed was fetched again"
    );
    // Their state through the API.
    let feeds: serde_json::Value = api.get("/v1/feeds").unwrap().json("feeds").unwrap();
    let feeds = feeds["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), 2, "{feeds:?}");
    assert_eq!(feeds[0]["name"], "broken");
    assert!(
        feeds[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("not a feed"),
        "{feeds:?}"
    );
    assert_eq!(feeds[1]["name"], "tech-fr");
    assert_eq!(feeds[1]["error"], serde_json::Value::Null);
    assert_eq!(feeds[1]["items_queued"], 2);

    // The items are articles like any other, clustered, with their feed's id and language.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut clusters = api.all_clusters().unwrap();
    while clusters.iter().map(|c| c.size).sum::<u64>() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        clusters = api.all_clusters().unwrap();
    }
    assert_eq!(
        clusters.iter().map(|c| c.size).sum::<u64>(),
        2,
        "{clusters:?}"
    );
    let log = server.log();
    assert!(
        log.contains("feed poll failed"),
        "the broken feed is not in the log"
    );
    let (status, _) = server.terminate(super::EXIT).unwrap();
    assert!(status.success());
}
