//! Prometheus metrics: the process's registry and the typed handles every
//! stage records into, rendered in the text exposition format for `/metrics`.
//!
//! Owns: metric names, help texts, label sets and histogram buckets, in one
//! place, so the exposition is reviewable as a whole.
//! Must not: know about HTTP frameworks, the model or the store; callers
//! record values, this crate only counts and renders.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The matched route pattern (`/v1/clusters/{id}`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    /// The feed's configured name.
    pub feed: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: &'static str,
}

/// Every metric Concord exports. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    ingest: Family<OutcomeLabels, Counter>,
    embed_batch_size: Histogram,
    embed_batch_seconds: Histogram,
    queue_depth: Family<QueueLabels, Gauge>,
    assign_seconds: Histogram,
    articles_clustered: Counter,
    clusters_created: Counter,
    clusters_merged: Counter,
    corrections: Family<OutcomeLabels, Counter>,
    indexed_articles: Gauge,
    webhook_deliveries: Family<OutcomeLabels, Counter>,
    feed_polls: Family<FeedLabels, Counter>,
    feed_items: Family<FeedLabels, Counter>,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // 0.5 ms .. ~16 s, doubling.
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("concord");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(seconds_buckets())
        });
        registry.register(
            "http_request_seconds",
            "Time to answer an HTTP request, by route",
            http_seconds.clone(),
        );
        let ingest = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ingest_articles",
            "Articles submitted, by outcome (queued, unchanged, busy)",
            ingest.clone(),
        );
        let embed_batch_size = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]);
        registry.register(
            "embed_batch_size",
            "Texts per model batch",
            embed_batch_size.clone(),
        );
        let embed_batch_seconds = Histogram::new(seconds_buckets());
        registry.register(
            "embed_batch_seconds",
            "Model time per batch",
            embed_batch_seconds.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Items waiting in a bounded queue (embed, cluster), at scrape time",
            queue_depth.clone(),
        );
        let assign_seconds = Histogram::new(seconds_buckets());
        registry.register(
            "cluster_assign_seconds",
            "Time to cluster one embedded article (decision, store transaction, index insert)",
            assign_seconds.clone(),
        );
        let articles_clustered = Counter::default();
        registry.register(
            "articles_clustered",
            "Articles assigned to a cluster",
            articles_clustered.clone(),
        );
        let clusters_created = Counter::default();
        registry.register(
            "clusters_created",
            "Clusters created by arriving articles or splits",
            clusters_created.clone(),
        );
        let clusters_merged = Counter::default();
        registry.register(
            "clusters_merged",
            "Clusters merged into another (automatically or by an analyst)",
            clusters_merged.clone(),
        );
        let corrections = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "corrections",
            "Analyst corrections, by kind (merge, split, move) or refused",
            corrections.clone(),
        );
        let indexed_articles = Gauge::default();
        registry.register(
            "indexed_articles",
            "Articles in the vector index, at scrape time",
            indexed_articles.clone(),
        );
        let webhook_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Outbound webhook delivery attempts, by outcome",
            webhook_deliveries.clone(),
        );
        let feed_polls = Family::<FeedLabels, Counter>::default();
        registry.register(
            "feed_polls",
            "Feed fetches, by feed and outcome (new, not_modified, error)",
            feed_polls.clone(),
        );
        let feed_items = Family::<FeedLabels, Counter>::default();
        registry.register(
            "feed_items",
            "Feed items, by feed and outcome (queued, unchanged, refused)",
            feed_items.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            http_requests,
            http_seconds,
            ingest,
            embed_batch_size,
            embed_batch_seconds,
            queue_depth,
            assign_seconds,
            articles_clustered,
            clusters_created,
            clusters_merged,
            corrections,
            indexed_articles,
            webhook_deliveries,
            feed_polls,
            feed_items,
        }))
    }

    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.0
            .http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.0
            .http_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// `outcome`: `queued`, `unchanged` or `busy`.
    pub fn ingest(&self, outcome: &'static str) {
        self.0
            .ingest
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn embed_batch(&self, size: usize, elapsed: Duration) {
        self.0.embed_batch_size.observe(size as f64);
        self.0.embed_batch_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn queue_depth(&self, queue: &'static str, depth: usize) {
        self.0
            .queue_depth
            .get_or_create(&QueueLabels { queue })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// One article clustered: whether it created a cluster and how many clusters it merged.
    pub fn assigned(&self, elapsed: Duration, created: bool, merged: usize) {
        self.0.assign_seconds.observe(elapsed.as_secs_f64());
        self.0.articles_clustered.inc();
        if created {
            self.0.clusters_created.inc();
        }
        self.0.clusters_merged.inc_by(merged as u64);
    }

    /// `kind`: `merge`, `split`, `move` or `refused`; `created`/`merged` as in [`Metrics::assigned`].
    pub fn correction(&self, kind: &'static str, created: bool, merged: usize) {
        self.0
            .corrections
            .get_or_create(&OutcomeLabels { outcome: kind })
            .inc();
        if created {
            self.0.clusters_created.inc();
        }
        self.0.clusters_merged.inc_by(merged as u64);
    }

    pub fn indexed_articles(&self, n: usize) {
        self.0
            .indexed_articles
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Delivery attempt totals by outcome, as the dispatcher counts them (set at scrape
    /// time: the dispatcher owns the counts, this mirrors them).
    pub fn webhook_deliveries(&self, totals: &[(&'static str, u64)]) {
        for (outcome, n) in totals {
            self.0
                .webhook_deliveries
                .get_or_create(&OutcomeLabels { outcome })
                .inner()
                .store(*n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// One fetch of feed `feed`: `new` (a changed feed), `not_modified` (304), `error`.
    pub fn feed_poll(&self, feed: &str, outcome: &'static str) {
        self.0
            .feed_polls
            .get_or_create(&FeedLabels {
                feed: feed.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Items of feed `feed` handed to ingest: `queued`, `unchanged` or `refused`.
    pub fn feed_items(&self, feed: &str, outcome: &'static str, n: u64) {
        self.0
            .feed_items
            .get_or_create(&FeedLabels {
                feed: feed.to_owned(),
                outcome,
            })
            .inc_by(n);
    }

    /// The text exposition format (`text/plain; version=0.0.4` compatible OpenMetrics).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.0.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_in_the_exposition() {
        let m = Metrics::new();
        m.http_request("GET", "/v1/clusters/{id}", 200, Duration::from_millis(3));
        m.ingest("queued");
        m.ingest("queued");
        m.embed_batch(8, Duration::from_millis(40));
        m.queue_depth("embed", 5);
        m.assigned(Duration::from_millis(2), true, 1);
        m.correction("split", true, 0);
        m.webhook_deliveries(&[("succeeded", 3)]);
        let text = m.render();
        for needle in [
            r#"concord_http_requests_total{method="GET",route="/v1/clusters/{id}",status="200"} 1"#,
            r#"concord_ingest_articles_total{outcome="queued"} 2"#,
            "concord_embed_batch_size_count 1",
            r#"concord_queue_depth{queue="embed"} 5"#,
            "concord_clusters_created_total 2",
            "concord_clusters_merged_total 1",
            r#"concord_corrections_total{outcome="split"} 1"#,
            r#"concord_webhook_deliveries_total{outcome="succeeded"} 3"#,
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
