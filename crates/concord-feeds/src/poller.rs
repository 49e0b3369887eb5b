//! Each feed on its interval; its state; where its items go.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use concord_core::config::{FeedSpec, FeedsConfig};
use concord_metrics::Metrics;
use concord_pipeline::ArticleSubmission;
use concord_webhooks::TargetPolicy;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::{
    fetch::{self, Fetched},
    item,
};

/// What became of one item handed to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkOutcome {
    /// Stored and queued (new, or changed since last time).
    Queued,
    /// Already stored with the same content.
    Unchanged,
    /// Not taken now (a full queue): the feed is fetched in full again next round.
    Busy,
    /// Not taken, for a reason that will not pass (unusable text).
    Refused(String),
}

/// Where articles go: in the service, the pipeline (durable, de-duplicated by
/// external id).
pub trait Sink: Send + Sync + 'static {
    fn submit(&self, article: ArticleSubmission) -> impl Future<Output = SinkOutcome> + Send;
}

impl<T: Sink> Sink for Arc<T> {
    fn submit(&self, article: ArticleSubmission) -> impl Future<Output = SinkOutcome> + Send {
        (**self).submit(article)
    }
}

/// Why a feed could not be polled this round (the others go on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("feeds configuration: {0}")]
    Config(String),
    #[error("no feed named {0:?}")]
    UnknownFeed(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("target refused: {0}")]
    Refused(String),
    #[error("fetch failed: {0}")]
    Fetch(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("body larger than {0} bytes")]
    TooLarge(u64),
    #[error("not a feed: {0}")]
    Parse(String),
}

/// One feed's state, as the metrics and logs show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    pub url: String,
    /// The validators of the last complete answer, sent with the next fetch.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub polled_at: Option<Timestamp>,
    /// The last poll that worked (a feed read, or 304).
    pub ok_at: Option<Timestamp>,
    /// The last poll's error, `None` after one that worked.
    pub error: Option<String>,
    pub items_queued: u64,
    pub items_unchanged: u64,
    pub items_refused: u64,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// 304: nothing fetched.
    pub not_modified: bool,
    pub items: usize,
    pub queued: usize,
    pub unchanged: usize,
    pub refused: usize,
    pub busy: usize,
}

/// The feeds of `[feeds]`, polled into a [`Sink`].
#[derive(Debug)]
pub struct Poller<S> {
    specs: Vec<FeedSpec>,
    config: FeedsConfig,
    policy: TargetPolicy,
    client: reqwest::Client,
    sink: S,
    metrics: Option<Metrics>,
    states: Mutex<BTreeMap<String, FeedState>>,
}

impl<S: Sink> Poller<S> {
    /// Checks the list (names non-empty, unique, of letters, digits, `.`, `_`, `-`);
    /// a URL the policy refuses is that feed's error at each poll, not a start-up failure.
    pub fn new(config: &FeedsConfig, sink: S, metrics: Option<Metrics>) -> Result<Self, FeedError> {
        let mut states = BTreeMap::new();
        for spec in &config.list {
            let ok = !spec.name.is_empty()
                && spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(FeedError::Config(format!(
                    "feed name {:?}: letters, digits, '.', '_' or '-' only",
                    spec.name
                )));
            }
            let state = FeedState {
                url: spec.url.clone(),
                ..FeedState::default()
            };
            if states.insert(spec.name.clone(), state).is_some() {
                return Err(FeedError::Config(format!(
                    "feed name {:?} appears twice",
                    spec.name
                )));
            }
        }
        let policy = TargetPolicy {
            allow_private: config.allow_private_targets,
            allow_loopback: config.allow_loopback_targets,
        };
        Ok(Self {
            specs: config.list.clone(),
            config: config.clone(),
            policy,
            client: fetch::client(policy, config.timeout())?,
            sink,
            metrics,
            states: Mutex::new(states),
        })
    }

    /// Every feed's state, by name.
    pub fn states(&self) -> BTreeMap<String, FeedState> {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn state(&self, name: &str) -> FeedState {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut FeedState)) {
        if let Some(state) = self
            .states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(name)
        {
            f(state);
        }
    }

    /// Polls feed `name` once: fetch (conditional), parse, hand each item to the sink.
    /// The error is also recorded in the feed's state, the metrics and the log.
    pub async fn poll(&self, name: &str) -> Result<PollReport, FeedError> {
        let spec = self
            .specs
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| FeedError::UnknownFeed(name.to_owned()))?;
        let result = self.poll_spec(spec).await;
        let now = Timestamp::now();
        match &result {
            Ok(report) => {
                self.update(name, |s| {
                    s.polled_at = Some(now);
                    s.ok_at = Some(now);
                    s.error = (report.busy > 0).then(|| {
                        format!(
                            "{} items not taken (busy); the whole feed again next round",
                            report.busy
                        )
                    });
                });
                tracing::info!(
                    feed = name,
                    not_modified = report.not_modified,
                    items = report.items,
                    queued = report.queued,
                    unchanged = report.unchanged,
                    refused = report.refused,
                    busy = report.busy,
                    "feed polled"
                );
            }
            Err(e) => {
                self.update(name, |s| {
                    s.polled_at = Some(now);
                    s.error = Some(e.to_string());
                });
                if let Some(m) = &self.metrics {
                    m.feed_poll(name, "error");
                }
                tracing::warn!(feed = name, error = %e, "feed poll failed");
            }
        }
        result
    }

    async fn poll_spec(&self, spec: &FeedSpec) -> Result<PollReport, FeedError> {
        let state = self.state(&spec.name);
        let fetched = fetch::fetch(
            &self.client,
            self.policy,
            &spec.url,
            state.etag.as_deref(),
            state.last_modified.as_deref(),
            self.config.max_bytes,
        )
        .await?;
        let (bytes, etag, last_modified) = match fetched {
            Fetched::NotModified => {
                if let Some(m) = &self.metrics {
                    m.feed_poll(&spec.name, "not_modified");
                }
                return Ok(PollReport {
                    not_modified: true,
                    ..PollReport::default()
                });
            }
            Fetched::Body {
                bytes,
                etag,
                last_modified,
            } => (bytes, etag, last_modified),
        };
        // No made-up ids: an item without a guid is known by its link (below), which
        // stays the same when its title is corrected (feed-rs would hash the title in).
        let feed = feed_rs::parser::Builder::new()
            .id_generator(|_, _, _| String::new())
            .build()
            .parse(&bytes[..])
            .map_err(|e| FeedError::Parse(e.to_string()))?;
        let now = Timestamp::now();
        let mut report = PollReport {
            items: feed.entries.len(),
            ..PollReport::default()
        };
        for entry in &feed.entries {
            let outcome = match item::article_of(spec, feed.language.as_deref(), entry, now) {
                Ok(article) => self.sink.submit(article).await,
                Err(reason) => SinkOutcome::Refused(reason),
            };
            match outcome {
                SinkOutcome::Queued => report.queued += 1,
                SinkOutcome::Unchanged => report.unchanged += 1,
                SinkOutcome::Busy => report.busy += 1,
                SinkOutcome::Refused(reason) => {
                    report.refused += 1;
                    tracing::warn!(feed = %spec.name, %reason, "feed item refused");
                }
            }
        }
        self.update(&spec.name, |s| {
            // With items left behind, keep the old validators: the next round fetches
            // the feed in full and offers them again (the rest are `unchanged`).
            if report.busy == 0 {
                s.etag = etag;
                s.last_modified = last_modified;
            }
            s.items_queued += report.queued as u64;
            s.items_unchanged += report.unchanged as u64;
            s.items_refused += report.refused as u64;
        });
        if let Some(m) = &self.metrics {
            m.feed_poll(&spec.name, "new");
            m.feed_items(&spec.name, "queued", report.queued as u64);
            m.feed_items(&spec.name, "unchanged", report.unchanged as u64);
            m.feed_items(&spec.name, "refused", report.refused as u64);
        }
        Ok(report)
    }

    /// Polls every feed now and then every `interval_secs`, each on its own task (a slow
    /// or failing feed delays no other), until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for spec in &self.specs {
            let (this, cancel, name) = (self.clone(), cancel.clone(), spec.name.clone());
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        _ = this.poll(&name) => {}
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(this.config.interval()) => {}
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}
