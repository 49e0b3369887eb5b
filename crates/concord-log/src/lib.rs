//! The article log of the distributed mode (issue 15): two NATS JetStream streams that
//! tell the roles which article to look at next. An api node publishes to the first after
//! the article is durably stored; embed workers share its work and publish to the second
//! after the vector is stored; the single active clusterer follows the second in order.
//!
//! ```text
//! api ──publish_stored──> CONCORD_STORED   (concord.article.stored)   work queue, file
//!                           └─ consumer `embed`: every embed worker pulls from it; each
//!                              notice goes to ONE worker, acked after the vector is stored
//! embed ─publish_embedded─> CONCORD_EMBEDDED (concord.article.embedded) limits + max age, file
//!                           └─ consumer `cluster`: the active clusterer only, one notice
//!                              in flight at a time (publish order), acked after the commit
//! ```
//!
//! **The store is the truth; the log only says "look at this id".** A message is a
//! [`Notice`] `{article_id, content_hash}`, never the article. Delivery is at least once,
//! so a consumer reads the article from the store and acts by id *and* hash: the vector
//! for that hash already stored (embed) or the article already clustered with that hash
//! (cluster) is a no-op that is acked; a stored hash different from the notice's is a stale
//! notice (the article was updated; the newer notice follows) and is acked as well.
//!
//! Both publishes carry `Nats-Msg-Id = "<article_id>:<content_hash>"`: a node that stored
//! the article (or vector), published, and crashed before the publish was acknowledged
//! publishes again after restart, and JetStream drops the copy inside
//! [`LogConfig::duplicate_window`] ([`Published::duplicate`]). Past the window a copy is
//! delivered again and the consumers' idempotence makes it harmless. So is a copy of a
//! stored notice that was already acked when the server restarted: the work queue removed
//! it, and nats-server rebuilds its window from the messages it still holds.
//!
//! Durability: the server acknowledges a publish once the notice is written to its store
//! files (not fsynced): a killed server loses nothing it acknowledged (tested with
//! SIGKILL); a machine losing power may lose the last moments, unless the streams are
//! replicated (`replicas = 3` on a three-node NATS cluster).
//!
//! Redelivery: a notice not acked within its consumer's `ack_wait` (the worker died,
//! hung, or lost its connection) goes out again, to any worker of that consumer.
//! [`Delivery::nak`] asks for it again after a delay (a transient failure such as the
//! store being unreachable); [`Delivery::in_progress`] extends the wait for slow work.
//! Each delivery counts towards `max_deliver`; after the last one JetStream stops
//! delivering that notice (it stays in its stream until `max_age`, and the server emits a
//! `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>` advisory). The article
//! is not lost: its state in the store still says it is not embedded (or not clustered),
//! and the owner of that state (a store sweep, the clusterer's start-up recovery)
//! publishes it again. A notice that cannot be read (not JSON, no id, a bad hash) is
//! terminated (`+TERM`: never redelivered) with a warning, never handed out.
//!
//! Order: the `cluster` consumer allows one unacknowledged notice (`max_ack_pending = 1`),
//! so the clusterer sees notices in publish order even across a failure: the one a dead
//! clusterer held comes back (after `cluster_ack_wait`) before anything after it. A standby
//! that takes over calls [`ArticleLog::cluster_feed`] on the same durable consumer and
//! resumes right after the last notice the dead one acked.
//!
//! Besides the streams, request and reply on core NATS between the roles ([`rpc`]): a
//! search's query text to any embed worker, index queries and corrections to the active
//! clusterer, which alone serves them.
//!
//! Must not: store or read articles, vectors or clusters (the roles do that with the store),
//! decide anything from a notice alone, or hold any state a restart would need: the
//! streams and their durable consumers live in the NATS server, created or updated by
//! [`ArticleLog::connect`] on every node, identically.

mod delivery;
mod error;
pub mod rpc;

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    message::PublishMessage,
    stream::{DiscardPolicy, RetentionPolicy, StorageType},
};
use concord_core::ArticleId;
use serde::{Deserialize, Serialize};
use tracing::{debug, instrument};

pub use delivery::{Deliveries, Delivery};
pub use error::LogError;
pub use rpc::{CLUSTER_RPC_SUBJECT, EMBED_RPC_SUBJECT, Request, Requests, Unanswered};

/// The work-queue stream of stored articles waiting for their vector.
pub const STORED_STREAM: &str = "CONCORD_STORED";
/// The subject api nodes publish a stored article's notice to.
pub const STORED_SUBJECT: &str = "concord.article.stored";
/// The durable consumer every embed worker pulls from.
pub const EMBED_CONSUMER: &str = "embed";
/// The stream of embedded articles waiting to be clustered.
pub const EMBEDDED_STREAM: &str = "CONCORD_EMBEDDED";
/// The subject embed workers publish an embedded article's notice to.
pub const EMBEDDED_SUBJECT: &str = "concord.article.embedded";
/// The durable consumer the active clusterer follows.
pub const CLUSTER_CONSUMER: &str = "cluster";

/// Notices delivered and not yet acknowledged, across all embed workers: past it the
/// server waits for acks before delivering more (the workers' prefetch must fit under it).
const EMBED_MAX_ACK_PENDING: i64 = 1024;
/// How long one pull request waits on the server before the client renews it. Short, so a
/// killed worker's outstanding request does not linger.
const PULL_EXPIRES: Duration = Duration::from_secs(10);
/// The server sends an idle heartbeat this often on a waiting pull request; two missed
/// ones are a [`LogError::Receive`].
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);
/// The longest hash accepted in a notice (the store's is 64 hex digits).
const MAX_HASH_LEN: usize = 128;

/// How the streams and consumers are set up. Every node must use the same values: each
/// one creates or updates the streams and consumers to these settings when it connects.
///
/// `Default` is the production setting, documented field by field here. When the roles are
/// wired, these become a section of the configuration (`config/default.toml`; not `[log]`,
/// which is the logging section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Copies of each stream and consumer in a NATS cluster: 1 on a single server, 3 for
    /// a cluster that survives the loss of a node. Default 1.
    pub replicas: usize,
    /// How long JetStream remembers a message id to drop a re-publish of it: covers a
    /// node's crash between its write and the publish acknowledgement, and its restart.
    /// The server keeps the ids of this window in memory. Default 10 minutes.
    pub duplicate_window: Duration,
    /// The longest a notice stays in either stream: the embedded stream's retention (it
    /// keeps acked notices), and the bound on a stored-stream notice that ran out of
    /// deliveries. Default 7 days.
    pub max_age: Duration,
    /// How long an embed worker has to ack a notice (from its delivery, so it includes the
    /// time the notice waits in the worker's prefetch) before it goes to another worker.
    /// Longer than a full batch of the slowest texts. Default 60 s.
    pub embed_ack_wait: Duration,
    /// Deliveries of one stored notice before JetStream gives up on it (see the crate
    /// doc for what happens then). Default 5.
    pub embed_max_deliver: i64,
    /// Notices one worker asks for at a time: about the model's batch, so each worker
    /// holds only what it will embed next and the others get the rest. Default 32.
    pub embed_prefetch: usize,
    /// How long the clusterer has to ack a notice before it is delivered again. It bounds
    /// a standby's wait for the notice a dead clusterer held, so it is short; slow work
    /// calls [`Delivery::in_progress`]. Default 10 s.
    pub cluster_ack_wait: Duration,
    /// Embedded notices the clusterer may hold unacknowledged at once. 1: strict publish
    /// order, redeliveries included. More lets the clusterer take a window of notices
    /// and decide them in its own order (the distributed mode puts them back in arrival
    /// order, which parallel embed workers shuffle). Default 1.
    pub cluster_in_flight: i64,
    /// Deliveries of one embedded notice before JetStream skips it (it is still in the
    /// store, not clustered, and the clusterer's recovery finds it). Default 10.
    pub cluster_max_deliver: i64,
    /// The timeout of every request to the server: stream and consumer set-up, publish
    /// acknowledgements, ack confirmations. Default 5 s.
    pub request_timeout: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            replicas: 1,
            duplicate_window: Duration::from_secs(10 * 60),
            max_age: Duration::from_secs(7 * 24 * 3600),
            embed_ack_wait: Duration::from_secs(60),
            embed_max_deliver: 5,
            embed_prefetch: 32,
            cluster_ack_wait: Duration::from_secs(10),
            cluster_in_flight: 1,
            cluster_max_deliver: 10,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// What a log message says: look at this article, in this version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub article_id: ArticleId,
    /// The store's content hash of the version this notice is about.
    pub content_hash: String,
}

impl Notice {
    /// `<article_id>:<content_hash>`, the JetStream message id (`Nats-Msg-Id`).
    pub fn message_id(&self) -> String {
        format!("{}:{}", self.article_id.get(), self.content_hash)
    }

    fn check(&self) -> Result<(), LogError> {
        let h = &self.content_hash;
        if h.is_empty() || h.len() > MAX_HASH_LEN || !h.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(LogError::InvalidHash {
                article_id: self.article_id,
                len: h.len(),
            });
        }
        Ok(())
    }
}

/// The server's answer to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The notice's sequence number in its stream (the first copy's, for a duplicate).
    pub sequence: u64,
    /// The message id was seen inside the duplicate window: nothing was added.
    pub duplicate: bool,
}

/// A connection to the article log, cheap to clone (one NATS connection underneath).
#[derive(Debug, Clone)]
pub struct ArticleLog {
    client: async_nats::Client,
    js: jetstream::Context,
    embed: PullConsumer,
    cluster: PullConsumer,
    config: LogConfig,
}

impl ArticleLog {
    /// Connects to the NATS server at `url` (`nats://host:4222`, or several separated by
    /// commas), then creates the two streams and their consumers, or updates them to
    /// `config`. Fails if the server cannot be reached now; once connected, the client
    /// reconnects by itself and requests made meanwhile fail with their timeout.
    #[instrument(skip_all)]
    pub async fn connect(url: &str, config: LogConfig) -> Result<Self, LogError> {
        let client = async_nats::ConnectOptions::new()
            .name("concord")
            .request_timeout(Some(config.request_timeout))
            .connect(url)
            .await
            .map_err(|source| LogError::Connect { source })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .build(client.clone());
        for stream in [stored_stream(&config), embedded_stream(&config)] {
            let name = stream.name.clone();
            js.create_or_update_stream(stream)
                .await
                .map_err(|e| LogError::setup(&name, e))?;
        }
        let embed = create_consumer(&js, STORED_STREAM, embed_consumer(&config)).await?;
        let cluster = create_consumer(&js, EMBEDDED_STREAM, cluster_consumer(&config)).await?;
        debug!("article log ready");
        Ok(Self {
            client,
            js,
            embed,
            cluster,
            config,
        })
    }

    /// The settings this log was set up with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// An api node's notice that an article is durably stored: call it after the store's
    /// write returned, with the stored content hash. Returns once the server has it on disk.
    #[instrument(skip_all, fields(article_id = article_id.get()))]
    pub async fn publish_stored(
        &self,
        article_id: ArticleId,
        content_hash: &str,
    ) -> Result<Published, LogError> {
        self.publish(STORED_SUBJECT, article_id, content_hash).await
    }

    /// An embed worker's notice that an article's vector is stored: call it after the
    /// store's write, before acking the stored notice that asked for it.
    #[instrument(skip_all, fields(article_id = article_id.get()))]
    pub async fn publish_embedded(
        &self,
        article_id: ArticleId,
        content_hash: &str,
    ) -> Result<Published, LogError> {
        self.publish(EMBEDDED_SUBJECT, article_id, content_hash)
            .await
    }

    async fn publish(
        &self,
        subject: &'static str,
        article_id: ArticleId,
        content_hash: &str,
    ) -> Result<Published, LogError> {
        let notice = Notice {
            article_id,
            content_hash: content_hash.to_owned(),
        };
        notice.check()?;
        let payload = serde_json::to_vec(&notice).map_err(|source| LogError::Encode { source })?;
        let message = PublishMessage::build()
            .payload(payload.into())
            .message_id(notice.message_id());
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .map_err(|e| LogError::publish(subject, e))?
            .await
            .map_err(|e| LogError::publish(subject, e))?;
        debug!(
            subject,
            sequence = ack.sequence,
            duplicate = ack.duplicate,
            "notice published"
        );
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// The stored notices for this embed worker: shared with every other worker (each
    /// notice goes to one of them), [`LogConfig::embed_prefetch`] at a time.
    pub async fn embed_work(&self) -> Result<Deliveries, LogError> {
        Deliveries::open(&self.embed, EMBED_CONSUMER, self.config.embed_prefetch).await
    }

    /// The embedded notices, in publish order, [`LogConfig::cluster_in_flight`]
    /// unacknowledged at a time. Only the active clusterer (the lease holder) calls it; a
    /// standby calls it after taking over.
    pub async fn cluster_feed(&self) -> Result<Deliveries, LogError> {
        // Asking for more than the consumer lets out only keeps a larger request waiting.
        let batch = usize::try_from(self.config.cluster_in_flight.max(1)).unwrap_or(1);
        Deliveries::open(&self.cluster, CLUSTER_CONSUMER, batch).await
    }

    /// Waits until everything sent on this connection (acks included) reached the server.
    pub async fn flush(&self) -> Result<(), LogError> {
        self.client.flush().await.map_err(LogError::connection)
    }
}

fn stored_stream(c: &LogConfig) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: STORED_STREAM.to_owned(),
        description: Some("concord: stored articles waiting for their vector".to_owned()),
        subjects: vec![STORED_SUBJECT.to_owned()],
        // One consumer (`embed`) shared by all workers; an acked notice is removed.
        retention: RetentionPolicy::WorkQueue,
        ..common_stream(c)
    }
}

fn embedded_stream(c: &LogConfig) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: EMBEDDED_STREAM.to_owned(),
        description: Some("concord: embedded articles waiting to be clustered".to_owned()),
        subjects: vec![EMBEDDED_SUBJECT.to_owned()],
        // Kept after the ack (until max_age): a consumer added later (an index replica)
        // can read the history.
        retention: RetentionPolicy::Limits,
        ..common_stream(c)
    }
}

fn common_stream(c: &LogConfig) -> jetstream::stream::Config {
    jetstream::stream::Config {
        storage: StorageType::File,
        num_replicas: c.replicas,
        duplicate_window: c.duplicate_window,
        max_age: c.max_age,
        max_bytes: -1,
        max_messages: -1,
        max_messages_per_subject: -1,
        discard: DiscardPolicy::Old,
        ..Default::default()
    }
}

fn embed_consumer(c: &LogConfig) -> pull::Config {
    pull::Config {
        durable_name: Some(EMBED_CONSUMER.to_owned()),
        description: Some("concord: every embed worker".to_owned()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: c.embed_ack_wait,
        max_deliver: c.embed_max_deliver,
        max_ack_pending: EMBED_MAX_ACK_PENDING,
        num_replicas: c.replicas,
        ..Default::default()
    }
}

fn cluster_consumer(c: &LogConfig) -> pull::Config {
    pull::Config {
        durable_name: Some(CLUSTER_CONSUMER.to_owned()),
        description: Some("concord: the active clusterer".to_owned()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: c.cluster_ack_wait,
        max_deliver: c.cluster_max_deliver,
        // 1: strict publish order, redeliveries included.
        max_ack_pending: c.cluster_in_flight.max(1),
        num_replicas: c.replicas,
        ..Default::default()
    }
}

async fn create_consumer(
    js: &jetstream::Context,
    stream: &str,
    config: pull::Config,
) -> Result<PullConsumer, LogError> {
    let name = config.durable_name.clone().unwrap_or_default();
    js.create_consumer_on_stream(config, stream)
        .await
        .map_err(|e| LogError::setup(&format!("{stream}/{name}"), e))
}
