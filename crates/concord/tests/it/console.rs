//! The console in a real browser: Debian's headless Chromium driven through
//! ChromeDriver (WebDriver, by fantoccini) against the real binary and model. The
//! seeds go in through `concord ingest`; an analyst finds the 2020 event in the list,
//! reads it (en/fr/ar members, the timeline), lands on it from a French search, splits
//! the Arabic report out and merges it back; a read key sees no admin action; the
//! cluster page fits a 360 px screen. `scripts/test.sh` installs `chromium` and
//! `chromium-driver` when missing; without them this test fails and says so.
//!
//! With `CONCORD_UPDATE_SCREENSHOTS=1` it also writes the README's screenshots
//! (`docs/console-clusters.png`, `docs/console-cluster.png`).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use concord_crashtest::{Api, DEV_KEY, Server};
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ADMIN_KEY: &str = "console-test-admin-key";
const READ_KEY: &str = "console-test-read-key";
const WAIT: Duration = Duration::from_secs(30);

fn sha256(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// ChromeDriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(log: &Path) -> Self {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "chromedriver not found: install Debian's chromium and chromium-driver \
                     (scripts/test.sh does: apt-get install chromium chromium-driver)"
                )
            });
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seeds as the API's article shape: title = the first line, body = the whole
/// text (page furniture and all), language, date and outlet from `labels.jsonl`.
pub(crate) fn seeds_jsonl() -> String {
    let dir = super::workspace_root().join("../shared/data/seeds");
    let labels = std::fs::read_to_string(dir.join("labels.jsonl")).unwrap();
    labels
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let label: Value = serde_json::from_str(line).unwrap();
            let file = label["file"].as_str().unwrap();
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let title: String = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap()
                .chars()
                .take(300)
                .collect();
            json!({
                "external_id": format!("seed-{}", &file[..3]),
                "title": title,
                "body": text,
                "lang": label["lang"],
                "source": label["outlet"],
                "published_at": format!("{}T12:00:00Z", label["published"].as_str().unwrap()),
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--no-first-run",
                "--window-size=1280,1000", "--lang=en-US",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

async fn wait_for(c: &Client, css: &str) -> Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(element) => element,
        Err(e) => {
            let page = c
                .execute("return document.body.innerText;", vec![])
                .await
                .unwrap_or_default();
            panic!(
                "{css}: {e}; the page reads:\n{}",
                page.as_str().unwrap_or("")
            )
        }
    }
}

/// Waits until no element matches `css`.
async fn wait_gone(c: &Client, css: &str) {
    let deadline = Instant::now() + WAIT;
    while !c.find_all(Locator::Css(css)).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "{css} is still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn click_in(parent: &Element, css: &str) {
    parent
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn sign_in(c: &Client, base: &str, key: &str) {
    c.goto(&format!("{base}/#/clusters")).await.unwrap();
    let input = wait_for(c, "input#key").await;
    input.send_keys(key).await.unwrap();
    click(c, "main.signin button[type=submit]").await;
    wait_for(c, "header.top .who").await;
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if std::env::var_os("CONCORD_UPDATE_SCREENSHOTS").is_some() {
        let path = super::workspace_root().join("docs").join(name);
        std::fs::write(&path, png).unwrap();
    }
}

/// The cluster holding `external_id`, through the API.
pub(crate) fn cluster_of(api: &Api, external_id: &str) -> String {
    let page: Value = api
        .get("/v1/clusters?limit=200")
        .unwrap()
        .expect_ok("clusters")
        .unwrap();
    for c in page["clusters"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let detail: Value = api
            .get(&format!("/v1/clusters/{id}"))
            .unwrap()
            .expect_ok("cluster")
            .unwrap();
        if detail["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["external_id"] == external_id)
        {
            return id.to_owned();
        }
    }
    panic!("{external_id} is in no cluster");
}

#[test]
fn an_analyst_finds_reads_searches_and_corrects_the_2020_event_in_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let keys = format!(
        "[{{name=\"dev\",role=\"admin\",sha256=\"{}\"}},{{name=\"analyst\",role=\"admin\",sha256=\"{}\"}},{{name=\"viewer\",role=\"read\",sha256=\"{}\"}}]",
        sha256(DEV_KEY),
        sha256(ADMIN_KEY),
        sha256(READ_KEY)
    );
    let mut server = Server::spawn(
        &super::launch(&dir.path().join("data"), &[("CONCORD_AUTH__KEYS", &keys)]),
        &dir.path().join("serve.log"),
    )
    .unwrap();
    server.wait_ready(super::READY).unwrap();
    let base = server.api().base().to_owned();

    // The seeds in through the bulk tool, as a team would load them.
    let file = dir.path().join("seeds.jsonl");
    std::fs::write(&file, seeds_jsonl()).unwrap();
    let out = super::cli(
        &["ingest", file.to_str().unwrap(), "--url", &base],
        &[("CONCORD_API_KEY", ADMIN_KEY)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = server.api().clone();
    super::wait_clustered(&api, 5);
    let event = cluster_of(&api, "seed-000");
    assert_eq!(cluster_of(&api, "seed-002"), event, "the seeds split");
    let ar_article = {
        let detail: Value = api
            .get(&format!("/v1/clusters/{event}"))
            .unwrap()
            .expect_ok("cluster")
            .unwrap();
        detail["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["external_id"] == "seed-002")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let created: Value = api
        .post(
            "/v1/webhooks/subscriptions",
            &json!({ "url": "https://hooks.example.com/concord", "description": "newsroom",
                    "event_types": ["cluster.updated", "cluster.merged", "cluster.split"] }),
        )
        .unwrap()
        .expect_ok("subscription")
        .unwrap();
    let subscription = created["id"].as_str().unwrap().to_owned();

    let driver = Driver::start(&dir.path().join("chromedriver.log"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = browser(&driver, &dir.path().join("profile")).await;

        // The list: the 2020 event is there, with its three languages.
        sign_in(&c, &base, ADMIN_KEY).await;
        let row = wait_for(&c, &format!("table.clusters tr[data-cluster='{event}']")).await;
        let langs = row
            .find(Locator::Css(".langs"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for lang in ["ar", "en", "fr"] {
            assert!(langs.contains(lang), "{langs}");
        }
        assert_eq!(count(&c, "table.clusters tbody tr").await, 2, "4 + 1 seeds");
        screenshot(&c, "console-clusters.png").await;

        // The cluster: members by language and the timeline.
        click_in(&row, "a").await;
        wait_for(&c, &format!("article.cluster[data-cluster='{event}']")).await;
        for lang in ["en", "fr", "ar"] {
            wait_for(
                &c,
                &format!("section.language[data-lang='{lang}'] tr[data-article]"),
            )
            .await;
        }
        assert_eq!(
            count(&c, "section.language[data-lang='fr'] tr[data-article]").await,
            2
        );
        wait_for(&c, "figure.timeline canvas").await;
        assert!(
            count(&c, "table.timeline-table tbody tr").await >= 2,
            "two or more days"
        );
        // Why the Arabic report is here: its decision record under its row.
        click(
            &c,
            "section.language[data-lang='ar'] tr[data-article] button.why-toggle",
        )
        .await;
        let why = wait_for(&c, "section.language[data-lang='ar'] tr.why-row .why")
            .await
            .text()
            .await
            .unwrap();
        assert!(why.contains("Rule: boosted"), "{why}");
        // It joined the event (the English report came first) and says through what.
        assert!(why.contains("Joined"), "{why}");
        assert!(why.contains("best cosine to a member"), "{why}");
        assert!(why.contains("crowded neighbourhood"), "{why}");
        c.execute(
            "document.querySelector('tr.why-row').scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .unwrap();
        screenshot(&c, "console-why.png").await;
        c.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
        screenshot(&c, "console-cluster.png").await;

        // Search in French lands on the event.
        c.goto(&format!("{base}/#/search")).await.unwrap();
        let q = wait_for(&c, "form[role=search] input[name=q]").await;
        q.send_keys("La Chine lance une initiative mondiale sur la sécurité des données")
            .await
            .unwrap();
        click(&c, "form[role=search] button[type=submit]").await;
        let first = wait_for(&c, "ol.hits li[data-article] a").await;
        first.click().await.unwrap();
        wait_for(&c, &format!("article.cluster[data-cluster='{event}']")).await;

        // Split the Arabic report out, with confirmation...
        let select = wait_for(
            &c,
            &format!("tr[data-article='{ar_article}'] input[type=checkbox]"),
        )
        .await;
        select.click().await.unwrap();
        click(&c, ".toolbar > button").await;
        let dialog = wait_for(&c, ".confirm[role=alertdialog]").await;
        assert!(dialog.text().await.unwrap().contains("Split 1 article"));
        click_in(&dialog, "button.danger").await;
        let notice = wait_for(&c, ".notice[role=status]").await;
        assert!(
            notice.text().await.unwrap().contains("split"),
            "{:?}",
            notice.text().await
        );
        wait_gone(&c, "section.language[data-lang='ar']").await;
        let split_to = tokio::task::block_in_place(|| cluster_of(&api, "seed-002"));
        assert_ne!(split_to, event);
        // Its "Why?" still tells where the model put it, and that it is elsewhere now.
        c.goto(&format!("{base}/#/clusters/{split_to}"))
            .await
            .unwrap();
        wait_for(&c, "tr[data-article] button.why-toggle").await;
        click(&c, "tr[data-article] button.why-toggle").await;
        let why = wait_for(&c, "tr.why-row .why").await.text().await.unwrap();
        assert!(why.contains(&format!("Joined {event}")), "{why}");
        assert!(why.contains(&format!("Now in {split_to}")), "{why}");
        c.goto(&format!("{base}/#/clusters/{event}")).await.unwrap();
        wait_for(&c, &format!("article.cluster[data-cluster='{event}']")).await;

        // ... and merge it back.
        let ids = wait_for(&c, ".toolbar input[name=clusters]").await;
        ids.send_keys(&split_to).await.unwrap();
        click(&c, ".toolbar form button[type=submit]").await;
        let dialog = wait_for(&c, ".confirm[role=alertdialog]").await;
        assert!(dialog.text().await.unwrap().contains(&split_to));
        click_in(&dialog, "button.danger").await;
        wait_for(&c, "section.language[data-lang='ar'] tr[data-article]").await;
        assert_eq!(
            tokio::task::block_in_place(|| cluster_of(&api, "seed-002")),
            event
        );
        let deadline = Instant::now() + WAIT;
        while count(&c, "ul.corrections li").await < 2 {
            assert!(
                Instant::now() < deadline,
                "the two corrections are not listed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Webhooks (admin): the subscription made through the API, then its delivery log;
        // feeds: none configured, and the page says where they would come from.
        c.goto(&format!("{base}/#/webhooks")).await.unwrap();
        let sub = wait_for(&c, &format!("a[href='#/webhooks/{subscription}']")).await;
        sub.click().await.unwrap();
        wait_for(&c, "nav.tabs a[aria-current=page]").await;
        let heading = wait_for(&c, "main h1").await.text().await.unwrap();
        assert_eq!(heading, format!("Deliveries of {subscription}"));
        wait_for(&c, "main table.list tbody tr").await;
        c.goto(&format!("{base}/#/feeds")).await.unwrap();
        let none = wait_for(&c, "main p code").await.text().await.unwrap();
        assert_eq!(none, "[feeds] list");
        c.goto(&format!("{base}/#/clusters/{event}")).await.unwrap();
        wait_for(&c, "section.language[data-lang='ar'] tr[data-article]").await;

        // Readable at 360 px: nothing wider than the screen.
        c.set_window_size(360, 800).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let widths = c
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .unwrap();
        let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            scroll <= inner,
            "page {scroll} px wide in a {inner} px window"
        );
        c.set_window_size(1280, 1000).await.unwrap();

        // A read key: the same pages, no admin action anywhere.
        click(&c, "button.signout").await;
        sign_in(&c, &base, READ_KEY).await;
        let who = c.find(Locator::Css("header.top .who")).await.unwrap();
        assert_eq!(
            who.attr("data-role").await.unwrap().as_deref(),
            Some("read")
        );
        c.goto(&format!("{base}/#/clusters/{event}")).await.unwrap();
        wait_for(&c, "section.language[data-lang='ar'] tr[data-article]").await;
        assert_eq!(count(&c, "input[type=checkbox]").await, 0);
        assert_eq!(count(&c, ".toolbar").await, 0);
        assert_eq!(count(&c, "header.top a[href='#/webhooks']").await, 0);
        // The key never reaches the address bar or the page's storage beyond the tab.
        let url = c.current_url().await.unwrap();
        assert!(!url.as_str().contains(READ_KEY));
        let stored = c
            .execute("return localStorage.length;", vec![])
            .await
            .unwrap();
        assert_eq!(stored, json!(0));

        c.close().await.unwrap();
    });
    drop(driver);
    server.kill().unwrap();
}
