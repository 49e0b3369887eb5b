use std::{
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use concord_cluster::{
    ClusterInput, ClusterSummary, Clusterer, Corrected, Correction, HeadlineSource,
};
use concord_core::{
    ArticleId, ClusterId, Config, Lang, UnitVector,
    config::{HeadlineEmbed, ProcessRole, StoreBackend},
};
use concord_embed::{
    BatchObserver, EmbedHandle, EmbedWorker, Encoders, HeadlineLane, HeadlineWorker,
    TokenizerBudget,
};
use concord_index::{IndexParams, VectorIndex};
use concord_metrics::Metrics;
use concord_store::{ArticleState, Db, NewArticle, Store, UpsertOutcome, content_hash};
use concord_text::{ArticleInput, LangSource, PreparedText, Preparer, TitleAffixes};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::{
    IngestError,
    remote::Remote,
    worker::{self, ClusterReply, ClusterWorker, Msg, Queued, SearchHit, refused},
};
use concord_log::ArticleLog;

/// An article as a caller submits it.
#[derive(Debug, Clone)]
pub struct ArticleSubmission {
    pub external_id: String,
    pub source: Option<String>,
    pub url: Option<String>,
    pub lang: Option<Lang>,
    pub published_at: Timestamp,
    pub title: String,
    pub body: String,
}

impl ArticleSubmission {
    /// The same article without U+0000 (NUL) in any text field: never meaningful in
    /// text, and PostgreSQL's `text` cannot hold it. Every entry point applies this, so
    /// both store engines keep the same article.
    pub fn without_nul(mut self) -> Self {
        fn strip(s: &mut String) {
            if s.contains('\0') {
                s.retain(|c| c != '\0');
            }
        }
        strip(&mut self.external_id);
        strip(&mut self.title);
        strip(&mut self.body);
        for field in [&mut self.source, &mut self.url].into_iter().flatten() {
            strip(field);
        }
        self
    }
}

/// What ingest did with a submission. When this is returned the article is durable.
#[derive(Debug)]
pub struct Submitted {
    pub id: ArticleId,
    pub outcome: UpsertOutcome,
    pub prepared: PreparedText,
    /// Resolves when the article is clustered (absent when nothing changed).
    pub clustered: Option<oneshot::Receiver<ClusterReply>>,
}

/// How ingest treats a full queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Refuse at once (the API's 429).
    Refuse,
    /// Wait for room (replays and recovery).
    Wait,
}

/// Handles to the pipeline's stages. Cheap to clone; see [`Pipeline::shutdown`].
#[derive(Debug, Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// Shared with the blocking upsert alone, so a request abandoned mid-write never
    /// holds the whole pipeline (which would keep it from draining at shutdown).
    ingest_db: Arc<Mutex<Db>>,
    preparer: Preparer,
    /// Publisher affixes learned from every title received, left out of the
    /// text the model reads (`model.title_affix_min`).
    affixes: Mutex<TitleAffixes>,
    model_name: String,
    /// Whether titles go to the headline model on arrival (`[headline_model] embed`).
    headline_embed: HeadlineEmbed,
    metrics: Metrics,
    outbox: Arc<tokio::sync::Notify>,
    engine: Engine,
}

/// Where stored articles go next.
#[derive(Debug)]
enum Engine {
    /// This process embeds and clusters them (role `all`).
    Local(Local),
    /// The article log does: embed workers and the active clusterer elsewhere (role `api`).
    Remote(Box<Remote>),
}

#[derive(Debug)]
struct Local {
    embed: EmbedHandle,
    cluster_tx: mpsc::Sender<Msg>,
    /// The cluster thread's lane for read-only queries, served before articles.
    query_tx: mpsc::Sender<Msg>,
    index: Arc<RwLock<VectorIndex>>,
    workers: Mutex<Option<Workers>>,
}

/// The threads a local engine joins at shutdown, in this order: the cluster thread
/// (it drains its queue, asking the models for what it waits on), then the model
/// threads.
#[derive(Debug)]
struct Workers {
    cluster: JoinHandle<()>,
    embed: EmbedWorker,
    /// The headline model's own thread (`[headline_model] embed = "doubtful"`).
    headline: Option<HeadlineWorker>,
}

/// Feeds the model's batches into the metrics.
pub(crate) struct EmbedMetrics(pub(crate) Metrics);

impl BatchObserver for EmbedMetrics {
    fn batch(&self, size: usize, elapsed: std::time::Duration) {
        self.0.embed_batch(size, elapsed);
    }
}

fn index_dir(config: &Config) -> PathBuf {
    config.data.dir.join("index")
}

fn store_sync(config: &Config) -> concord_store::Synchronous {
    match config.store.synchronous {
        concord_core::config::Synchronous::Normal => concord_store::Synchronous::Normal,
        concord_core::config::Synchronous::Full => concord_store::Synchronous::Full,
    }
}

/// The store `config` names: SQLite in the data directory, or PostgreSQL.
pub fn open_store(config: &Config) -> Result<Store, concord_store::StoreError> {
    match config.store.backend {
        StoreBackend::Sqlite => Store::open(&config.data.dir, store_sync(config)),
        StoreBackend::Postgres => Store::open_postgres(
            config.store.postgres_url.expose(),
            config.store.postgres_max_connections,
        ),
    }
}

/// The clusterer's owning thread and the handles that feed it: what role `all` and the
/// active clusterer of the distributed mode both run.
pub(crate) struct ClusterParts {
    pub cluster_tx: mpsc::Sender<Msg>,
    pub query_tx: mpsc::Sender<Msg>,
    pub index: Arc<RwLock<VectorIndex>>,
    pub thread: JoinHandle<()>,
}

/// Loads (or rebuilds) the index, rebuilds cluster state from `store`, and starts the
/// cluster thread.
pub(crate) fn start_clusterer(
    config: &Config,
    store: &Store,
    dim: usize,
    model_name: &str,
    metrics: &Metrics,
    outbox: &Arc<tokio::sync::Notify>,
    headlines: Option<HeadlineLane>,
) -> Result<ClusterParts, IngestError> {
    let dump_dir = index_dir(config);
    let index = match VectorIndex::load(&dump_dir).map(|(index, _)| index) {
        Ok(index) if index.params().dim == dim => {
            tracing::info!(entries = index.len(), "index dump loaded");
            index
        }
        Ok(_) => {
            tracing::warn!("index dump has another dimension; rebuilding from the store");
            VectorIndex::new(index_params(config, dim))
                .map_err(concord_cluster::ClusterError::from)?
        }
        Err(e) => {
            tracing::info!(reason = %e, "no usable index dump; rebuilding from the store");
            VectorIndex::new(index_params(config, dim))
                .map_err(concord_cluster::ClusterError::from)?
        }
    };
    let index = Arc::new(RwLock::new(index));
    let mut clusterer = Clusterer::open(
        config.cluster.rule.clone(),
        dim,
        store.connect()?.without_auto_checkpoint()?,
        Arc::clone(&index),
    )?;
    if let Some(lane) = headlines {
        clusterer.set_headline_source(Box::new(LaneSource(lane)));
    }
    let (cluster_tx, cluster_rx) = mpsc::channel(config.cluster.queue_capacity);
    let (query_tx, query_rx) = mpsc::channel(config.cluster.query_queue_capacity);
    let worker = ClusterWorker {
        clusterer,
        model: model_name.to_owned(),
        index: Arc::clone(&index),
        dump_dir,
        dump_every: config.index.dump_every_inserts,
        metrics: metrics.clone(),
        outbox: Arc::clone(outbox),
        since_dump: 0,
    };
    let thread = std::thread::Builder::new()
        .name("concord-cluster".into())
        .spawn(move || worker.run(cluster_rx, query_rx))
        .map_err(|e| IngestError::Embed(concord_embed::EmbedError::Inference(e.to_string())))?;
    Ok(ClusterParts {
        cluster_tx,
        query_tx,
        index,
        thread,
    })
}

/// The clusterer's [`HeadlineSource`]: the embed worker's headline lane.
struct LaneSource(HeadlineLane);

impl HeadlineSource for LaneSource {
    fn headlines(&mut self, titles: Vec<String>) -> Result<Vec<UnitVector>, String> {
        self.0.embed_blocking(titles).map_err(|e| e.to_string())
    }
}

/// What ingest needs in either engine: the store, the text preparation (the model's
/// tokenizer budget) and the publisher affixes learned from every stored title, so a
/// restart strips what the last run did.
fn open_ingest(config: &Config) -> Result<(Store, Preparer, TitleAffixes), IngestError> {
    let store = open_store(config)?;
    let budget = TokenizerBudget::load(&config.model.dir, config.model.max_tokens)?;
    let preparer = Preparer::new(config.model.languages.clone(), budget);
    let mut affixes = TitleAffixes::new(config.model.title_affix_min);
    if config.model.title_affix_min > 0 {
        store.connect()?.titles(|t| affixes.observe(t))?;
    }
    Ok((store, preparer, affixes))
}

impl Pipeline {
    /// Opens the store, loads (or rebuilds) the index, rebuilds cluster state,
    /// and starts the embed and cluster workers. Call [`Pipeline::recover`]
    /// next to finish what a previous run left unfinished.
    pub fn start(config: &Config, models: impl Into<Encoders>) -> Result<Self, IngestError> {
        let models: Encoders = models.into();
        let (store, preparer, affixes) = open_ingest(config)?;
        let dim = models.text.dim();
        let model_name = models.text.name().to_owned();
        let metrics = Metrics::new();
        let outbox = Arc::new(tokio::sync::Notify::new());
        let spawn_failed = |e: std::io::Error| {
            IngestError::Embed(concord_embed::EmbedError::Inference(e.to_string()))
        };
        // Titles embedded only for doubtful decisions: the headline model gets a thread
        // of its own, which the cluster thread asks; else the embed worker embeds every
        // article's title with its text.
        let (models, headline_worker, headlines) = match (models, config.headline_model.embed) {
            (
                Encoders {
                    text,
                    headline: Some(headline),
                },
                HeadlineEmbed::Doubtful,
            ) => {
                let (worker, lane) = HeadlineWorker::spawn(headline).map_err(spawn_failed)?;
                (Encoders::from(text), Some(worker), Some(lane))
            }
            (models, _) => (models, None, None),
        };
        let observer = Arc::new(EmbedMetrics(metrics.clone()));
        let (embed_worker, embed) =
            EmbedWorker::spawn_observed(models, &config.embed, observer).map_err(spawn_failed)?;
        let parts = start_clusterer(
            config,
            &store,
            dim,
            &model_name,
            &metrics,
            &outbox,
            headlines,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                ingest_db: Arc::new(Mutex::new(store.connect()?)),
                store,
                preparer,
                affixes: Mutex::new(affixes),
                model_name,
                headline_embed: config.headline_model.embed,
                metrics,
                outbox,
                engine: Engine::Local(Local {
                    embed,
                    cluster_tx: parts.cluster_tx,
                    query_tx: parts.query_tx,
                    index: parts.index,
                    workers: Mutex::new(Some(Workers {
                        embed: embed_worker,
                        cluster: parts.thread,
                        headline: headline_worker,
                    })),
                }),
            }),
        })
    }

    /// An api node of the distributed mode (role `api`): the store and the article
    /// log, no model and no index. Articles are stored, then announced on the log;
    /// searches, corrections and deletes go to the embed workers and the active
    /// clusterer over it. The model directory is still read, for its tokenizer (the
    /// text is prepared and its truncation reported here, before the 2xx).
    pub fn start_api(config: &Config, log: ArticleLog) -> Result<Self, IngestError> {
        let (store, preparer, affixes) = open_ingest(config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                ingest_db: Arc::new(Mutex::new(store.connect()?)),
                store,
                preparer,
                affixes: Mutex::new(affixes),
                model_name: config.model.name.clone(),
                headline_embed: config.headline_model.embed,
                metrics: Metrics::new(),
                outbox: Arc::new(tokio::sync::Notify::new()),
                engine: Engine::Remote(Box::new(Remote::new(config, log))),
            }),
        })
    }

    fn local(&self) -> Option<&Local> {
        match &self.inner.engine {
            Engine::Local(local) => Some(local),
            Engine::Remote(_) => None,
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Articles in this process's index (`None` on an api node, which has none).
    pub fn indexed_articles(&self) -> Option<usize> {
        self.local()
            .map(|l| l.index.read().map_or(0, |index| index.len()))
    }

    /// The model's dimension (`None` on an api node, which loads no model).
    pub fn dim(&self) -> Option<usize> {
        self.local().map(|l| l.embed.dim())
    }

    /// Texts waiting for this process's model (0 on an api node).
    pub fn embed_queue_depth(&self) -> usize {
        self.local().map_or(0, |l| l.embed.queue_depth())
    }

    /// The process's metrics; the caller updates scrape-time gauges and renders them.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Notified after the cluster thread commits changes (and so webhook outbox rows).
    pub fn outbox_notify(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.outbox)
    }

    /// Messages waiting for this process's cluster thread (0 on an api node).
    pub fn cluster_queue_depth(&self) -> usize {
        self.local()
            .map_or(0, |l| l.cluster_tx.max_capacity() - l.cluster_tx.capacity())
    }

    /// [`ProcessRole::All`] for one process, [`ProcessRole::Api`] for an api node of the
    /// distributed mode.
    pub fn role(&self) -> ProcessRole {
        match self.inner.engine {
            Engine::Local(_) => ProcessRole::All,
            Engine::Remote(_) => ProcessRole::Api,
        }
    }

    pub fn model_name(&self) -> &str {
        &self.inner.model_name
    }

    /// Prepares the text the way ingest does (also for search queries).
    pub fn prepare(
        &self,
        title: &str,
        body: &str,
        lang: Option<Lang>,
    ) -> Result<PreparedText, IngestError> {
        Ok(self
            .inner
            .preparer
            .prepare(&ArticleInput { title, body, lang })?)
    }

    /// The headline for the headline model on arrival (`[headline_model] embed =
    /// "every"`); `None` when the second look asks for it only if it needs it.
    fn headline_now(&self, prepared_text: &str) -> Option<String> {
        (self.inner.headline_embed == HeadlineEmbed::Every)
            .then(|| concord_text::headline(prepared_text).to_owned())
    }

    /// An arriving title without the publisher affixes learned so far (its
    /// own counted first): what the model reads of it.
    fn headline(&self, title: &str) -> String {
        let mut affixes = self
            .inner
            .affixes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        affixes.observe(title);
        affixes.strip(title).to_owned()
    }

    /// Ingest for callers that must not wait: a full queue is [`IngestError::Busy`].
    pub async fn submit(
        &self,
        a: ArticleSubmission,
        want_reply: bool,
    ) -> Result<Submitted, IngestError> {
        let result = self.submit_with(a, Admission::Refuse, want_reply).await;
        match &result {
            Ok(s) if matches!(s.outcome, UpsertOutcome::Unchanged(..)) => {
                self.inner.metrics.ingest("unchanged");
            }
            Ok(_) => self.inner.metrics.ingest("queued"),
            Err(IngestError::Busy { .. }) => self.inner.metrics.ingest("busy"),
            Err(_) => {}
        }
        result
    }

    /// Ingest that waits for room in the queues (replays, batch loads).
    pub async fn submit_waiting(
        &self,
        a: ArticleSubmission,
        want_reply: bool,
    ) -> Result<Submitted, IngestError> {
        self.submit_with(a, Admission::Wait, want_reply).await
    }

    async fn submit_with(
        &self,
        a: ArticleSubmission,
        admission: Admission,
        want_reply: bool,
    ) -> Result<Submitted, IngestError> {
        let a = a.without_nul();
        let headline = self.headline(&a.title);
        let prepared = self.prepare(&headline, &a.body, a.lang)?;
        let local = match &self.inner.engine {
            Engine::Local(local) => local,
            Engine::Remote(remote) => {
                let new = new_article(a, &prepared);
                let hash = new.content_hash.clone();
                let outcome = self.upsert(new).await?;
                let clustered = match outcome {
                    UpsertOutcome::Unchanged(..) => None,
                    UpsertOutcome::Inserted(id) | UpsertOutcome::Updated(id) => {
                        remote.announce(id, &hash).await;
                        want_reply.then(|| remote.watch(self.inner.store.clone(), id, hash))
                    }
                };
                tracing::debug!(article = %outcome.id(), outcome = ?outcome, "article stored");
                return Ok(Submitted {
                    id: outcome.id(),
                    outcome,
                    prepared,
                    clustered,
                });
            }
        };
        // Room in both queues first, so an acknowledged article is never stuck behind a refusal.
        let (cluster_permit, embed_permit) = match admission {
            Admission::Refuse => (
                local
                    .cluster_tx
                    .clone()
                    .try_reserve_owned()
                    .map_err(|e| refused("cluster", e))?,
                local.embed.try_reserve()?,
            ),
            Admission::Wait => (
                local
                    .cluster_tx
                    .clone()
                    .reserve_owned()
                    .await
                    .map_err(|_| IngestError::ShuttingDown)?,
                local.embed.reserve().await?,
            ),
        };
        let new = new_article(a, &prepared);
        let (hash, lang, title, published_at) = (
            new.content_hash.clone(),
            new.lang,
            new.title.clone(),
            new.published_at,
        );
        let outcome = self.upsert(new).await?;
        let id = outcome.id();
        let clustered = match outcome {
            UpsertOutcome::Unchanged(..) => None,
            UpsertOutcome::Inserted(_) | UpsertOutcome::Updated(_) => {
                let vector =
                    embed_permit.submit(prepared.text.clone(), self.headline_now(&prepared.text));
                let (done, rx) = if want_reply {
                    let (tx, rx) = oneshot::channel();
                    (Some(tx), Some(rx))
                } else {
                    (None, None)
                };
                cluster_permit.send(Msg::Embedded {
                    article: Queued {
                        id,
                        content_hash: hash,
                        published_at,
                        lang,
                        title,
                        text: prepared.text.clone(),
                    },
                    vector,
                    done,
                });
                rx
            }
        };
        tracing::debug!(article = %id, outcome = ?outcome, "article stored");
        Ok(Submitted {
            id,
            outcome,
            prepared,
            clustered,
        })
    }

    /// Stores an article (durable when this returns).
    async fn upsert(&self, new: NewArticle) -> Result<UpsertOutcome, IngestError> {
        let ingest_db = Arc::clone(&self.inner.ingest_db);
        tokio::task::spawn_blocking(move || {
            let mut db = ingest_db.lock().map_err(|_| IngestError::ShuttingDown)?;
            db.upsert_article(&new, Timestamp::now())
                .map_err(IngestError::from)
        })
        .await
        .map_err(|_| IngestError::ShuttingDown)?
    }

    /// Re-queues what the store holds unfinished (after a crash or restart),
    /// oldest first. Returns how many articles were re-queued. Nothing to do on an api
    /// node: the active clusterer's sweep announces what was left unfinished.
    pub async fn recover(&self) -> Result<usize, IngestError> {
        let Some(local) = self.local() else {
            return Ok(0);
        };
        let store = self.inner.store.clone();
        let pending = tokio::task::spawn_blocking(move || store.connect()?.pending_articles())
            .await
            .map_err(|_| IngestError::ShuttingDown)??;
        let n = pending.len();
        if n > 0 {
            tracing::info!(articles = n, "re-queueing unfinished articles");
        }
        for p in pending {
            let permit = local
                .cluster_tx
                .clone()
                .reserve_owned()
                .await
                .map_err(|_| IngestError::ShuttingDown)?;
            let hash = self.content_hash_of(p.id).await?;
            match (p.state, p.embedding) {
                (ArticleState::Embedded, Some(embedding)) => {
                    permit.send(Msg::Ready {
                        input: ClusterInput {
                            id: p.id,
                            content_hash: hash,
                            published_at: p.published_at,
                            lang: p.lang,
                            title: p.title,
                            text: p.prepared_text,
                            embedding,
                            model: self.inner.model_name.clone(),
                        },
                        done: None,
                    });
                }
                _ => {
                    let embed = local.embed.reserve().await?;
                    let vector =
                        embed.submit(p.prepared_text.clone(), self.headline_now(&p.prepared_text));
                    permit.send(Msg::Embedded {
                        article: Queued {
                            id: p.id,
                            content_hash: hash,
                            published_at: p.published_at,
                            lang: p.lang,
                            title: p.title,
                            text: p.prepared_text,
                        },
                        vector,
                        done: None,
                    });
                }
            }
        }
        Ok(n)
    }

    async fn content_hash_of(&self, id: ArticleId) -> Result<String, IngestError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || {
            store
                .connect_read_only()?
                .article(id)?
                .map(|a| a.content_hash)
                .ok_or(IngestError::NotFound(id))
        })
        .await
        .map_err(|_| IngestError::ShuttingDown)?
    }

    /// This process's clusterer (an api node has none: the active one is asked remotely).
    fn local_clusterer(&self) -> Result<&Local, IngestError> {
        self.local()
            .ok_or(IngestError::Unavailable { role: "clusterer" })
    }

    /// Sends the cluster thread a message carrying a reply channel, and waits for the reply.
    async fn ask<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<T>) -> Msg,
    ) -> Result<T, IngestError> {
        worker::ask(&self.local_clusterer()?.cluster_tx, message).await
    }

    /// Sends the cluster thread a read-only query on its priority lane and waits
    /// for the answer. A full lane is [`IngestError::Busy`] (429), never a wait.
    async fn ask_query<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<T>) -> Msg,
    ) -> Result<T, IngestError> {
        worker::ask_now(&self.local_clusterer()?.query_tx, message).await
    }

    /// Removes an article from its cluster and the index; the cluster updates.
    pub async fn delete(&self, id: ArticleId) -> Result<Option<ClusterId>, IngestError> {
        if let Engine::Remote(remote) = &self.inner.engine {
            return remote.delete(id).await;
        }
        self.ask(|done| Msg::Delete { id, done }).await?
    }

    /// Waits until everything submitted before this call is clustered (this process's
    /// clusterer; an api node has none).
    pub async fn flush(&self) -> Result<(), IngestError> {
        self.ask(Msg::Flush).await
    }

    /// The clusterer's view of every active cluster (this process's clusterer).
    pub async fn summaries(&self) -> Result<Vec<ClusterSummary>, IngestError> {
        self.ask(Msg::Summaries).await
    }

    /// The `k` articles nearest to a free-text query (any language), with their clusters.
    /// A full embed queue is [`IngestError::Busy`].
    pub async fn search_text(
        &self,
        query: &str,
        lang: Option<Lang>,
        k: usize,
    ) -> Result<Vec<SearchHit>, IngestError> {
        let prepared = self.prepare(query, "", lang)?;
        let lang = prepared.lang;
        let local = match &self.inner.engine {
            Engine::Local(local) => local,
            Engine::Remote(remote) => return remote.search(prepared.text, lang, k).await,
        };
        let vector = local
            .embed
            .try_submit_query(prepared.text)?
            .await
            .map_err(|_| IngestError::ShuttingDown)??
            .vector;
        self.ask_query(|done| Msg::Search {
            vector,
            lang,
            k,
            done,
        })
        .await?
    }

    /// The `k` articles nearest to a stored article (itself excluded), with their clusters.
    pub async fn similar_to(
        &self,
        article: ArticleId,
        k: usize,
    ) -> Result<Vec<SearchHit>, IngestError> {
        if let Engine::Remote(remote) = &self.inner.engine {
            return remote.similar(article, k).await;
        }
        self.ask_query(|done| Msg::Similar { article, k, done })
            .await?
    }

    /// Up to `n` other clusters nearest to an active cluster's centroid.
    pub async fn related(
        &self,
        cluster: ClusterId,
        n: usize,
    ) -> Result<Vec<(ClusterId, f32)>, IngestError> {
        if let Engine::Remote(remote) = &self.inner.engine {
            return remote.related(cluster, n).await;
        }
        self.ask_query(|done| Msg::Related { cluster, n, done })
            .await?
    }

    /// Applies an analyst's correction on the cluster thread, recorded with `actor`.
    pub async fn correct(
        &self,
        correction: Correction,
        actor: &str,
    ) -> Result<Corrected, IngestError> {
        if let Engine::Remote(remote) = &self.inner.engine {
            return remote.correct(correction, actor).await;
        }
        let actor = actor.to_owned();
        self.ask(|done| Msg::Correct {
            correction,
            actor,
            done,
        })
        .await?
    }

    /// Stops both workers once their queues drain (the clusterer dumps the
    /// index on its way out). Other clones of this pipeline must be dropped
    /// first, or their queues stay open; returns `false` when they were not.
    pub fn shutdown(self) -> bool {
        self.shutdown_within(Duration::ZERO)
    }

    /// [`Pipeline::shutdown`], after waiting up to `wait` for the other clones to be
    /// dropped: a server's connection tasks may still be letting go of theirs just
    /// after the server has stopped.
    pub fn shutdown_within(self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut shared = self.inner;
        let inner = loop {
            match Arc::try_unwrap(shared) {
                Ok(inner) => break inner,
                Err(still) if Instant::now() < deadline => {
                    shared = still;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => {
                    tracing::warn!(
                        "pipeline still shared at shutdown; workers stop when the last handle drops"
                    );
                    return false;
                }
            }
        };
        let workers = match &inner.engine {
            Engine::Local(local) => local.workers.lock().ok().and_then(|mut w| w.take()),
            Engine::Remote(_) => None,
        };
        drop(inner);
        if let Some(workers) = workers {
            if workers.cluster.join().is_err() {
                tracing::error!("cluster worker panicked");
            }
            workers.embed.join();
            // Its lane went with the cluster thread.
            if let Some(headline) = workers.headline {
                headline.join();
            }
        }
        true
    }
}

/// The row to store for a submission.
fn new_article(a: ArticleSubmission, prepared: &PreparedText) -> NewArticle {
    let hash = content_hash(&a.title, &a.body, a.url.as_deref(), a.published_at, a.lang);
    NewArticle {
        external_id: a.external_id,
        source: a.source,
        url: a.url,
        lang: prepared.lang,
        lang_source: match prepared.lang_source {
            LangSource::Given => "given",
            LangSource::Detected => "detected",
            LangSource::Undetermined => "undetermined",
        },
        model_supports_lang: prepared.model_supports_lang,
        published_at: a.published_at,
        title: a.title,
        content_hash: hash,
        prepared_text: prepared.text.clone(),
        truncated: prepared.truncated,
    }
}

fn index_params(config: &Config, dim: usize) -> IndexParams {
    let mut p = IndexParams::new(dim);
    p.m = config.index.m;
    p.ef_construction = config.index.ef_construction;
    p.ef_search = config.index.ef_search;
    p.exact_scan_below = config.index.exact_scan_below;
    p.rebuild_tombstone_ratio = config.index.rebuild_tombstone_ratio;
    p
}
