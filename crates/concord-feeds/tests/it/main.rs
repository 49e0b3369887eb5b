#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The poller against a local server serving an RSS and an Atom file (with ETag and
//! Last-Modified) and a broken feed.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use concord_core::config::{FeedSpec, FeedsConfig};
use concord_feeds::{FeedError, Poller, Sink, SinkOutcome};
use concord_pipeline::ArticleSubmission;
use tokio_util::sync::CancellationToken;

const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Tech FR</title><language>fr-FR</language>
<item><title>La Chine lance une initiative mondiale sur la s&#233;curit&#233; des donn&#233;es</title>
<link>https://example.org/a</link><guid>tech-fr-1</guid>
<pubDate>Tue, 08 Sep 2020 10:00:00 GMT</pubDate>
<description>&lt;p&gt;P&#233;kin propose des &lt;b&gt;r&#232;gles&lt;/b&gt; mondiales.&lt;/p&gt;</description></item>
<item><title>Pékin répond aux critiques</title><link>https://example.org/b</link>
<pubDate>Wed, 09 Sep 2020 10:00:00 GMT</pubDate></item>
</channel></rss>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Arabic desk</title><id>urn:desk</id>
<updated>2020-09-09T12:00:00Z</updated>
<entry><title>الصين تطلق مبادرة عالمية بشأن أمن البيانات</title><id>urn:desk:1</id>
<link href="https://example.org/ar1"/><updated>2020-09-09T12:00:00Z</updated>
<summary>مبادرة عالمية</summary></entry>
<entry><title></title><id>urn:desk:2</id><updated>2020-09-09T13:00:00Z</updated></entry>
</feed>"#;

const LAST_MODIFIED: &str = "Wed, 09 Sep 2020 12:00:00 GMT";

#[derive(Clone, Default)]
struct Hits {
    rss_full: Arc<AtomicUsize>,
    atom_full: Arc<AtomicUsize>,
}

async fn serve(hits: Hits) -> String {
    let rss = {
        let hits = hits.clone();
        move |headers: HeaderMap| {
            let hits = hits.clone();
            async move {
                if headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v == "\"v1\"")
                {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                hits.rss_full.fetch_add(1, Ordering::SeqCst);
                (
                    [
                        (header::ETAG, "\"v1\""),
                        (header::CONTENT_TYPE, "application/rss+xml"),
                    ],
                    RSS,
                )
                    .into_response()
            }
        }
    };
    let atom = {
        let hits = hits.clone();
        move |headers: HeaderMap| {
            let hits = hits.clone();
            async move {
                if headers
                    .get(header::IF_MODIFIED_SINCE)
                    .is_some_and(|v| v == LAST_MODIFIED)
                {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                hits.atom_full.fetch_add(1, Ordering::SeqCst);
                ([(header::LAST_MODIFIED, LAST_MODIFIED)], ATOM).into_response()
            }
        }
    };
    let app = Router::new()
        .route("/rss.xml", get(rss))
        .route("/atom.xml", get(atom))
        .route("/broken.xml", get(|| async { "<rss><channel><item>" }))
        .route("/gone.xml", get(|| async { StatusCode::GONE }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Remembers what it took: a known external id again is `unchanged`; busy for the
/// first `busy` submissions.
#[derive(Default)]
struct Recorder {
    taken: Mutex<Vec<ArticleSubmission>>,
    seen: Mutex<HashSet<String>>,
    busy: AtomicUsize,
}

impl Sink for Recorder {
    async fn submit(&self, article: ArticleSubmission) -> SinkOutcome {
        if self.busy.load(Ordering::SeqCst) > 0 {
            self.busy.fetch_sub(1, Ordering::SeqCst);
            return SinkOutcome::Busy;
        }
        if !self
            .seen
            .lock()
            .unwrap()
            .insert(article.external_id.clone())
        {
            return SinkOutcome::Unchanged;
        }
        self.taken.lock().unwrap().push(article);
        SinkOutcome::Queued
    }
}

fn config(base: &str, loopback: bool) -> FeedsConfig {
    let spec = |name: &str, path: &str, lang: Option<&str>| FeedSpec {
        name: name.into(),
        url: format!("{base}{path}"),
        lang: lang.map(Into::into),
        source: None,
    };
    FeedsConfig {
        interval_secs: 3600,
        timeout_ms: 5000,
        max_bytes: 1 << 20,
        allow_private_targets: false,
        allow_loopback_targets: loopback,
        list: vec![
            spec("tech-fr", "/rss.xml", None),
            spec("desk-ar", "/atom.xml", Some("ar")),
            spec("broken", "/broken.xml", None),
            spec("gone", "/gone.xml", None),
        ],
    }
}

#[tokio::test]
async fn items_arrive_once_and_an_unchanged_feed_is_not_fetched_again() {
    let hits = Hits::default();
    let base = serve(hits.clone()).await;
    let sink = Arc::new(Recorder::default());
    let poller = Poller::new(&config(&base, true), sink.clone(), None).unwrap();

    let rss = poller.poll("tech-fr").await.unwrap();
    assert_eq!((rss.items, rss.queued, rss.refused), (2, 2, 0));
    let atom = poller.poll("desk-ar").await.unwrap();
    // The entry without a title is refused, and said so.
    assert_eq!((atom.items, atom.queued, atom.refused), (2, 1, 1));

    let taken = sink.taken.lock().unwrap().clone();
    let first = &taken[0];
    assert_eq!(first.external_id, "feed:tech-fr:tech-fr-1");
    assert_eq!(
        first.title,
        "La Chine lance une initiative mondiale sur la sécurité des données"
    );
    assert_eq!(first.body, "Pékin propose des règles mondiales.");
    assert_eq!(first.lang.map(|l| l.as_str()), Some("fr"));
    assert_eq!(first.url.as_deref(), Some("https://example.org/a"));
    assert_eq!(first.source.as_deref(), Some("tech-fr"));
    assert_eq!(first.published_at.to_string(), "2020-09-08T10:00:00Z");
    // No guid: the link is the id.
    assert_eq!(taken[1].external_id, "feed:tech-fr:https://example.org/b");
    assert_eq!(taken[2].external_id, "feed:desk-ar:urn:desk:1");
    assert_eq!(taken[2].lang.map(|l| l.as_str()), Some("ar"));

    // Second round: ETag and Last-Modified sent back, 304s, nothing new.
    assert!(poller.poll("tech-fr").await.unwrap().not_modified);
    assert!(poller.poll("desk-ar").await.unwrap().not_modified);
    assert_eq!(hits.rss_full.load(Ordering::SeqCst), 1);
    assert_eq!(hits.atom_full.load(Ordering::SeqCst), 1);
    assert_eq!(sink.taken.lock().unwrap().len(), 3);
    let states = poller.states();
    assert_eq!(states["tech-fr"].etag.as_deref(), Some("\"v1\""));
    assert_eq!(states["tech-fr"].items_queued, 2);
    assert_eq!(states["desk-ar"].items_refused, 1);
    assert_eq!(states["tech-fr"].error, None);
}

#[tokio::test]
async fn a_broken_feed_is_reported_and_does_not_stop_the_others() {
    let base = serve(Hits::default()).await;
    let sink = Arc::new(Recorder::default());
    let metrics = concord_metrics::Metrics::new();
    let poller =
        Arc::new(Poller::new(&config(&base, true), sink.clone(), Some(metrics.clone())).unwrap());
    assert!(matches!(
        poller.poll("broken").await,
        Err(FeedError::Parse(_))
    ));
    assert_eq!(poller.poll("gone").await, Err(FeedError::Status(410)));

    // All four on their own tasks: the two good ones deliver all the same.
    let cancel = CancellationToken::new();
    let run = tokio::spawn(poller.clone().run(cancel.clone()));
    for _ in 0..200 {
        if poller.states().values().all(|s| s.polled_at.is_some())
            && sink.taken.lock().unwrap().len() == 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    run.await.unwrap();
    let states = poller.states();
    assert!(
        states["broken"]
            .error
            .as_deref()
            .unwrap()
            .starts_with("not a feed")
    );
    assert_eq!(states["gone"].error.as_deref(), Some("answered HTTP 410"));
    assert_eq!(states["tech-fr"].error, None);
    assert_eq!(sink.taken.lock().unwrap().len(), 3);
    let exposed = metrics.render();
    assert!(
        exposed.contains(r#"concord_feed_polls_total{feed="broken",outcome="error"}"#),
        "{exposed}"
    );
    assert!(
        exposed.contains(r#"concord_feed_items_total{feed="tech-fr",outcome="queued"} 2"#),
        "{exposed}"
    );
}

#[tokio::test]
async fn items_not_taken_bring_the_whole_feed_back_next_round() {
    let hits = Hits::default();
    let base = serve(hits.clone()).await;
    let sink = Arc::new(Recorder::default());
    sink.busy.store(1, Ordering::SeqCst);
    let poller = Poller::new(&config(&base, true), sink.clone(), None).unwrap();
    let first = poller.poll("tech-fr").await.unwrap();
    assert_eq!((first.busy, first.queued), (1, 1));
    assert!(poller.states()["tech-fr"].error.is_some());
    // No validators kept: fetched in full, the busy item taken, the other unchanged.
    let second = poller.poll("tech-fr").await.unwrap();
    assert_eq!(
        (second.not_modified, second.queued, second.unchanged),
        (false, 1, 1)
    );
    assert_eq!(hits.rss_full.load(Ordering::SeqCst), 2);
    assert!(poller.poll("tech-fr").await.unwrap().not_modified);
}

#[tokio::test]
async fn loopback_feeds_are_refused_unless_allowed_and_names_are_checked() {
    let base = serve(Hits::default()).await;
    let poller = Poller::new(&config(&base, false), Arc::new(Recorder::default()), None).unwrap();
    let refused = poller.poll("tech-fr").await.unwrap_err();
    assert!(matches!(refused, FeedError::Refused(_)), "{refused}");
    assert_eq!(
        poller.poll("nope").await,
        Err(FeedError::UnknownFeed("nope".into()))
    );
    let mut twice = config(&base, true);
    twice.list[1].name = "tech-fr".into();
    assert!(matches!(
        Poller::new(&twice, Arc::new(Recorder::default()), None),
        Err(FeedError::Config(_))
    ));
    let mut spaced = config(&base, true);
    spaced.list[0].name = "tech fr".into();
    assert!(Poller::new(&spaced, Arc::new(Recorder::default()), None).is_err());
}
