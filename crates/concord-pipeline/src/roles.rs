//! The embed and cluster roles of the distributed mode (`concord serve --role embed|
//! cluster`): each follows the article log and writes to the shared PostgreSQL store.
//! The api role is [`crate::Pipeline::start_api`]. ARCHITECTURE.md, "Beyond one
//! machine", has the flow and why each step is safe to repeat.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use concord_cluster::ClusterInput;
use concord_core::{ArticleId, Config, Embedding, UnitVector};
use concord_embed::{EmbedHandle, EmbedWorker, Encoders};
use concord_log::{
    ArticleLog, CLUSTER_RPC_SUBJECT, Delivery, EMBED_RPC_SUBJECT, LogConfig, Request,
};
use concord_metrics::Metrics;
use concord_store::{ArticleRecord, ArticleState, Store};
use jiff::Timestamp;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    IngestError,
    pipeline::{ClusterParts, open_store, start_clusterer},
    wire::{ClusterAnswer, ClusterCall, EmbedAnswer, EmbedCall, WireError, WireHit},
    worker::{Msg, ask, ask_now},
};

/// The advisory-lock key of the clusterer's lease ("concord" in ASCII, as a number).
pub const CLUSTER_LEASE_KEY: i64 = 0x0063_6f6e_636f_7264;
/// The store's `meta` keys where embed workers record their model.
const META_MODEL: &str = "model";
const META_DIM: &str = "model_dim";
/// How long a failed store step waits before its notice is delivered again.
const RETRY: Duration = Duration::from_secs(2);
/// How long a role waits for the NATS server at start.
pub const CONNECT_PATIENCE: Duration = Duration::from_secs(60);
/// The pause after a feed error before asking again.
const FEED_RETRY: Duration = Duration::from_millis(200);
/// How often the clusterer looks again while it waits for an earlier article.
const REORDER_POLL: Duration = Duration::from_millis(50);
/// An article unfinished this long holds no later one back (the sweep sees to it).
const STUCK_AFTER: Duration = Duration::from_secs(60);
/// The most unfinished articles one sweep announces again.
const SWEEP_LIMIT: usize = 1000;

/// The article log's settings from `[distributed]`.
pub fn log_config(config: &Config) -> LogConfig {
    let d = &config.distributed;
    LogConfig {
        replicas: d.replicas,
        duplicate_window: Duration::from_secs(d.duplicate_window_secs),
        embed_ack_wait: Duration::from_secs(d.embed_ack_wait_secs),
        embed_max_deliver: d.embed_max_deliver,
        embed_prefetch: d.embed_prefetch,
        cluster_ack_wait: Duration::from_secs(d.cluster_ack_wait_secs),
        cluster_max_deliver: d.cluster_max_deliver,
        cluster_in_flight: d.cluster_window,
        ..LogConfig::default()
    }
}

/// Connects to the article log named by `[distributed] nats_url`, trying again for up to
/// [`CONNECT_PATIENCE`] while the server is not up yet (roles and NATS often start
/// together); then the error (the process exits and its supervisor restarts it).
pub async fn connect_log(config: &Config) -> Result<ArticleLog, IngestError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match ArticleLog::connect(&config.distributed.nats_url, log_config(config)).await {
            Ok(log) => return Ok(log),
            Err(error) if started.elapsed() < CONNECT_PATIENCE => {
                tracing::warn!(%error, retry_ms = pause.as_millis() as u64, "the article log is not reachable yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Opens the shared store off the async workers (PostgreSQL's client blocks).
pub async fn open_shared_store(config: &Config) -> Result<Store, IngestError> {
    let config = config.clone();
    blocking(move || Ok(open_store(&config)?)).await
}

/// The shared store and the article log, or `None` when `stop` came first.
async fn connect(
    config: &Config,
    stop: &CancellationToken,
) -> Result<Option<(Store, ArticleLog)>, IngestError> {
    let store = open_shared_store(config).await?;
    tokio::select! {
        log = connect_log(config) => Ok(Some((store, log?))),
        () = stop.cancelled() => Ok(None),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IngestError> + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| IngestError::ShuttingDown)?
}

async fn load(store: &Store, id: ArticleId) -> Result<Option<ArticleRecord>, IngestError> {
    let store = store.clone();
    blocking(move || Ok(store.connect_read_only()?.article(id)?)).await
}

/// Answers `delivery` (a failed answer only means it comes back: idempotent work).
async fn answer(delivery: Delivery, done: bool) {
    let id = delivery.notice().article_id;
    let result = if done {
        delivery.ack().await
    } else {
        delivery.nak(RETRY).await
    };
    if let Err(error) = result {
        tracing::warn!(article = %id, %error, "notice not answered; it will be delivered again");
    }
}

/// Role `embed`: one model, fed with the stored notices it shares with every other
/// embed worker; also answers search queries' texts. Returns when `stop` is cancelled
/// (after the notices in hand are answered) or the log ends.
pub async fn run_embed(
    config: &Config,
    models: Encoders,
    metrics: Metrics,
    stop: CancellationToken,
) -> Result<(), IngestError> {
    let Some((store, log)) = connect(config, &stop).await? else {
        return Ok(());
    };
    let (name, dim) = (models.text.name().to_owned(), models.text.dim());
    {
        let (store, name) = (store.clone(), name.clone());
        blocking(move || {
            let db = store.connect()?;
            db.set_meta(META_MODEL, &name)?;
            db.set_meta(META_DIM, &dim.to_string())?;
            Ok(())
        })
        .await?;
    }
    let observer = Arc::new(crate::pipeline::EmbedMetrics(metrics));
    let (worker, embed) = EmbedWorker::spawn_observed(models, &config.embed, observer)
        .map_err(|e| IngestError::Embed(concord_embed::EmbedError::Inference(e.to_string())))?;
    let mut queries = log.serve(EMBED_RPC_SUBJECT).await?;
    let query_embed = embed.clone();
    let query_task = tokio::spawn(async move {
        while let Some(request) = queries.next().await {
            tokio::spawn(answer_query(query_embed.clone(), request));
        }
    });
    tracing::info!(model = %name, dim, "embed worker following the stored articles");
    let in_hand = config.distributed.embed_prefetch;
    let permits = Arc::new(Semaphore::new(in_hand));
    let mut work = log.embed_work().await?;
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p.map_err(|_| IngestError::ShuttingDown)?,
            () = stop.cancelled() => break,
        };
        let delivery = tokio::select! {
            d = work.next() => d,
            () = stop.cancelled() => break,
        };
        match delivery {
            None => {
                tracing::error!("the stored-articles feed ended");
                break;
            }
            Some(Err(error)) => {
                // Passing (a reconnect): go on, without spinning on a broken connection.
                tracing::warn!(%error, "stored-articles feed");
                tokio::time::sleep(FEED_RETRY).await;
            }
            Some(Ok(delivery)) => {
                let (store, log, embed, name) =
                    (store.clone(), log.clone(), embed.clone(), name.clone());
                tokio::spawn(async move {
                    embed_one(&store, &log, &embed, &name, delivery).await;
                    drop(permit);
                });
            }
        }
    }
    query_task.abort();
    // The notices in hand finish (or go back after their ack wait if this is cut short).
    let _ = tokio::time::timeout(
        Duration::from_secs(config.server.shutdown_deadline_secs),
        permits.acquire_many(in_hand as u32),
    )
    .await;
    drop(embed);
    tokio::task::spawn_blocking(move || worker.join())
        .await
        .map_err(|_| IngestError::ShuttingDown)?;
    tracing::info!("embed worker stopped");
    Ok(())
}

async fn answer_query(embed: EmbedHandle, request: Request) {
    let answer = match serde_json::from_slice::<EmbedCall>(request.payload()) {
        Ok(call) => match embed.try_submit_query(call.text) {
            Ok(rx) => match rx.await {
                Ok(Ok(e)) => EmbedAnswer::Vector(e.vector.as_slice().to_vec()),
                Ok(Err(e)) => EmbedAnswer::Failed(WireError::from(IngestError::from(e))),
                Err(_) => EmbedAnswer::Failed(WireError::ShuttingDown),
            },
            Err(e) => EmbedAnswer::Failed(WireError::from(IngestError::from(e))),
        },
        Err(e) => EmbedAnswer::Failed(WireError::Failed(format!("unreadable call: {e}"))),
    };
    reply(request, &answer).await;
}

async fn reply(request: Request, answer: &impl serde::Serialize) {
    match serde_json::to_vec(answer) {
        Ok(bytes) => {
            if let Err(error) = request.reply(bytes).await {
                tracing::warn!(%error, "answer not sent");
            }
        }
        Err(error) => tracing::error!(%error, "answer not encodable"),
    }
}

/// One stored notice: embed the article unless that is done or moot, store the vector,
/// announce it to the clusterer, then ack. Every step is safe to repeat.
#[tracing::instrument(level = "debug", name = "embed", skip_all, fields(article = %d.notice().article_id))]
async fn embed_one(store: &Store, log: &ArticleLog, embed: &EmbedHandle, model: &str, d: Delivery) {
    let notice = d.notice().clone();
    let id = notice.article_id;
    let article = match load(store, id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::warn!(article = %id, "notice for an article the store does not have; dropped");
            return answer(d, true).await;
        }
        Err(error) => {
            tracing::warn!(article = %id, %error, "cannot read the article; retrying");
            return answer(d, false).await;
        }
    };
    let current = article.content_hash == notice.content_hash;
    match article.state {
        // Updated since (its own notice follows), deleted, or clustered already.
        _ if !current => return answer(d, true).await,
        ArticleState::Deleted | ArticleState::Clustered => return answer(d, true).await,
        // Stored by a worker that died before announcing it.
        ArticleState::Embedded => {
            let announced = log.publish_embedded(id, &notice.content_hash).await;
            return answer(d, announced.is_ok()).await;
        }
        ArticleState::Queued => {}
    }
    let vector = match embed.reserve().await {
        Ok(permit) => {
            let headline = concord_text::headline(&article.prepared_text).to_owned();
            permit.submit(article.prepared_text, Some(headline)).await
        }
        Err(_) => return answer(d, false).await,
    };
    let embedding = match vector {
        Ok(Ok(embedding)) => embedding,
        Ok(Err(error)) => {
            tracing::warn!(article = %id, %error, "embedding failed; retrying");
            return answer(d, false).await;
        }
        Err(_) => return answer(d, false).await,
    };
    let stored = {
        let (store, hash, model) = (store.clone(), notice.content_hash.clone(), model.to_owned());
        blocking(move || {
            Ok(store
                .connect()?
                .transaction(|tx| tx.set_embedding(id, &hash, &model, &embedding))?)
        })
        .await
    };
    match stored {
        // Stored here: announce it. Not stored: changed meanwhile, or another worker
        // stored it (and announces it).
        Ok(true) => {
            let announced = log.publish_embedded(id, &notice.content_hash).await;
            if let Err(error) = &announced {
                tracing::warn!(article = %id, %error, "announcing the vector failed; retrying");
            }
            answer(d, announced.is_ok()).await;
        }
        Ok(false) => answer(d, true).await,
        Err(error) => {
            tracing::warn!(article = %id, %error, "storing the vector failed; retrying");
            answer(d, false).await;
        }
    }
}

/// Role `cluster`: waits for the lease (standby), then is the one clusterer: rebuilds
/// its state from the store as one process does at restart, follows the embedded
/// notices in order, answers the api nodes' index queries, corrections and deletes, and
/// sweeps for articles whose notice was lost. Returns when `stop` is cancelled (having
/// drained and dumped the index) or with an error when the lease is lost.
pub async fn run_cluster(
    config: &Config,
    metrics: Metrics,
    outbox: Arc<Notify>,
    active: Arc<AtomicBool>,
    stop: CancellationToken,
) -> Result<(), IngestError> {
    let Some((store, log)) = connect(config, &stop).await? else {
        return Ok(());
    };
    let poll = Duration::from_millis(config.distributed.lease_poll_ms);
    let mut waiting_since = None;
    let mut lease = loop {
        let s = store.clone();
        if let Some(lease) = blocking(move || Ok(s.try_lease(CLUSTER_LEASE_KEY)?)).await? {
            break lease;
        }
        if waiting_since.is_none() {
            tracing::info!("standby: another clusterer holds the lease");
            waiting_since = Some(Instant::now());
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = stop.cancelled() => return Ok(()),
        }
    };
    let took_over = Instant::now();
    tracing::info!(
        waited_ms = waiting_since.map(|t| t.elapsed().as_millis() as u64),
        "took the clusterer lease"
    );
    let (model, dim) = loop {
        let s = store.clone();
        let meta = blocking(move || {
            let db = s.connect_read_only()?;
            Ok((db.meta(META_MODEL)?, db.meta(META_DIM)?))
        })
        .await?;
        if let (Some(model), Some(dim)) = (meta.0, meta.1.and_then(|d| d.parse::<usize>().ok())) {
            break (model, dim);
        }
        tracing::info!("waiting for an embed worker to record the model");
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = stop.cancelled() => return Ok(()),
        }
    };
    let parts = {
        let (config, store, metrics, outbox, model) = (
            config.clone(),
            store.clone(),
            metrics.clone(),
            Arc::clone(&outbox),
            model.clone(),
        );
        blocking(move || start_clusterer(&config, &store, dim, &model, &metrics, &outbox, None))
            .await?
    };
    let ClusterParts {
        cluster_tx,
        query_tx,
        index,
        thread,
    } = parts;
    let indexed = || index.read().map_or(0, |i| i.len());
    metrics.indexed_articles(indexed());
    active.store(true, Ordering::Relaxed);
    tracing::info!(
        indexed = indexed(),
        millis = took_over.elapsed().as_millis() as u64,
        "clusterer active"
    );
    // The lease must stay ours: a holder that cannot confirm it stops at once.
    let lost = CancellationToken::new();
    let release = Arc::new(AtomicBool::new(false));
    let confirming = {
        let (lost, release) = (lost.clone(), Arc::clone(&release));
        tokio::task::spawn_blocking(move || {
            while !release.load(Ordering::Relaxed) {
                std::thread::sleep(poll);
                if let Err(error) = lease.confirm() {
                    tracing::error!(%error, "the clusterer lease is lost; stopping");
                    lost.cancel();
                    return;
                }
            }
            if let Err(error) = lease.release() {
                tracing::warn!(%error, "releasing the clusterer lease failed; it goes with the session");
            }
        })
    };
    let mut requests = log.serve(CLUSTER_RPC_SUBJECT).await?;
    let rpc = {
        let (cluster_tx, query_tx) = (cluster_tx.clone(), query_tx.clone());
        tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                tokio::spawn(serve_call(cluster_tx.clone(), query_tx.clone(), request));
            }
        })
    };
    let sweep = tokio::spawn(sweep(config.clone(), store.clone(), log.clone()));
    let mut feed = log.cluster_feed().await?;
    let window = usize::try_from(config.distributed.cluster_window.max(1)).unwrap_or(1);
    let reorder_wait = Duration::from_millis(config.distributed.reorder_wait_ms);
    // Notices in hand, earliest-arrived article first (then publish order).
    let mut held: BTreeMap<(ArticleId, u64), (Delivery, Instant)> = BTreeMap::new();
    let outcome = loop {
        while let Some((id, since)) = held.first_key_value().map(|(k, (_, t))| (k.0, *t)) {
            let go = held.len() >= window
                || since.elapsed() >= reorder_wait
                || !earlier_on_its_way(&store, id).await;
            if !go {
                break;
            }
            if let Some((_, (delivery, _))) = held.pop_first() {
                cluster_one(&store, &cluster_tx, &model, delivery).await;
                metrics.indexed_articles(indexed());
            }
        }
        // Look again soon while something waits for an earlier article.
        let recheck = if held.is_empty() {
            Duration::from_secs(3600)
        } else {
            REORDER_POLL
        };
        let delivery = tokio::select! {
            d = feed.next() => d,
            () = tokio::time::sleep(recheck) => continue,
            () = stop.cancelled() => break Ok(()),
            () = lost.cancelled() => break Err(IngestError::Store(concord_store::StoreError::LeaseLost(CLUSTER_LEASE_KEY))),
        };
        match delivery {
            None => {
                break Err(IngestError::Remote(
                    "the embedded-articles feed ended".into(),
                ));
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "embedded-articles feed");
                tokio::time::sleep(FEED_RETRY).await;
            }
            Some(Ok(delivery)) => {
                let key = (delivery.notice().article_id, delivery.sequence());
                held.insert(key, (delivery, Instant::now()));
            }
        }
    };
    // Notices still held go to the next clusterer after their ack wait.
    drop(held);
    active.store(false, Ordering::Relaxed);
    rpc.abort();
    sweep.abort();
    drop((cluster_tx, query_tx));
    // The cluster thread drains what it holds and dumps the index; the lease goes last.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    release.store(true, Ordering::Relaxed);
    let _ = confirming.await;
    tracing::info!("clusterer stopped");
    outcome
}

/// Whether an article that arrived before `id` (within the last minute) is still on its
/// way to the clusterer (not yet embedded, or its notice not here yet). A store error
/// counts as no: order is a preference, progress is a must.
async fn earlier_on_its_way(store: &Store, id: ArticleId) -> bool {
    let store = store.clone();
    let Ok(since) = Timestamp::now().checked_sub(STUCK_AFTER) else {
        return false;
    };
    let earliest = blocking(move || {
        Ok(store
            .connect_read_only()?
            .earliest_unfinished_since(since)?)
    })
    .await;
    match earliest {
        Ok(Some(earliest)) => earliest < id,
        Ok(None) => false,
        Err(error) => {
            tracing::warn!(%error, "cannot read what is on its way; deciding now");
            false
        }
    }
}

/// One embedded notice: cluster the article unless that is done or moot, then ack
/// (after the decision is committed).
#[tracing::instrument(level = "debug", name = "decide", skip_all, fields(article = %d.notice().article_id))]
async fn cluster_one(store: &Store, cluster_tx: &mpsc::Sender<Msg>, model: &str, d: Delivery) {
    let notice = d.notice().clone();
    let id = notice.article_id;
    let found = {
        let store = store.clone();
        blocking(move || {
            let db = store.connect_read_only()?;
            let Some(a) = db.article(id)? else {
                return Ok(None);
            };
            let embedding = db.embedding(id)?;
            Ok(Some((a, embedding)))
        })
        .await
    };
    let (article, vector) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return answer(d, true).await,
        Err(error) => {
            tracing::warn!(article = %id, %error, "cannot read the article; retrying");
            return answer(d, false).await;
        }
    };
    let embedding: Embedding = match (article.state, vector) {
        (ArticleState::Embedded, Some(v)) if article.content_hash == notice.content_hash => v,
        // Clustered already (a repeat), updated since, deleted: nothing to do.
        _ => return answer(d, true).await,
    };
    let (done, rx) = oneshot::channel();
    let input = ClusterInput {
        id,
        content_hash: article.content_hash,
        published_at: article.published_at,
        lang: article.lang,
        title: article.title,
        text: article.prepared_text,
        embedding,
        model: model.to_owned(),
    };
    if cluster_tx
        .send(Msg::Ready {
            input,
            done: Some(done),
        })
        .await
        .is_err()
    {
        return answer(d, false).await;
    }
    match rx.await {
        Ok(Ok(_)) => answer(d, true).await,
        Ok(Err(error)) => {
            tracing::warn!(article = %id, %error, "clustering failed; retrying");
            answer(d, false).await;
        }
        Err(_) => answer(d, false).await,
    }
}

/// Answers one api node's call on the cluster thread (queries on their priority lane).
async fn serve_call(cluster_tx: mpsc::Sender<Msg>, query_tx: mpsc::Sender<Msg>, request: Request) {
    let call = match serde_json::from_slice::<ClusterCall>(request.payload()) {
        Ok(call) => call,
        Err(e) => {
            let answer = ClusterAnswer::Failed(WireError::Failed(format!("unreadable call: {e}")));
            return reply(request, &answer).await;
        }
    };
    let answer = match call {
        ClusterCall::Search { vector, lang, k } => match UnitVector::normalize(vector) {
            Ok(vector) => hits(
                ask_now(&query_tx, |done| Msg::Search {
                    vector,
                    lang,
                    k,
                    done,
                })
                .await
                .and_then(|r| r),
            ),
            Err(e) => ClusterAnswer::Failed(WireError::Failed(format!("query vector: {e}"))),
        },
        ClusterCall::Similar { article, k } => hits(
            ask_now(&query_tx, |done| Msg::Similar { article, k, done })
                .await
                .and_then(|r| r),
        ),
        ClusterCall::Related { cluster, n } => {
            match ask_now(&query_tx, |done| Msg::Related { cluster, n, done })
                .await
                .and_then(|r| r)
            {
                Ok(r) => ClusterAnswer::Related(r),
                Err(e) => ClusterAnswer::Failed(e.into()),
            }
        }
        ClusterCall::Correct { correction, actor } => {
            match ask(&cluster_tx, |done| Msg::Correct {
                correction,
                actor,
                done,
            })
            .await
            .and_then(|r| r)
            {
                Ok(c) => ClusterAnswer::Corrected(c),
                Err(e) => ClusterAnswer::Failed(e.into()),
            }
        }
        ClusterCall::Delete { id } => {
            match ask(&cluster_tx, |done| Msg::Delete { id, done })
                .await
                .and_then(|r| r)
            {
                Ok(c) => ClusterAnswer::Deleted(c),
                Err(e) => ClusterAnswer::Failed(e.into()),
            }
        }
    };
    reply(request, &answer).await;
}

fn hits(found: Result<Vec<crate::SearchHit>, IngestError>) -> ClusterAnswer {
    match found {
        Ok(h) => ClusterAnswer::Hits(h.into_iter().map(WireHit::from).collect()),
        Err(e) => ClusterAnswer::Failed(e.into()),
    }
}

/// Every `sweep_every_secs`, announces again the articles left `queued` or `embedded`
/// for `sweep_after_secs`: their notice was lost (a publish that failed after the
/// commit) or ran out of deliveries. Repeats are dropped by JetStream inside its
/// duplicate window and ignored by the consumers after it.
async fn sweep(config: Config, store: Store, log: ArticleLog) {
    let every = Duration::from_secs(config.distributed.sweep_every_secs);
    let after = Duration::from_secs(config.distributed.sweep_after_secs);
    loop {
        tokio::time::sleep(every).await;
        let Ok(cutoff) = Timestamp::now().checked_sub(after) else {
            continue;
        };
        let s = store.clone();
        let found = blocking(move || {
            let db = s.connect_read_only()?;
            Ok((
                db.unfinished_before(ArticleState::Queued, cutoff, SWEEP_LIMIT)?,
                db.unfinished_before(ArticleState::Embedded, cutoff, SWEEP_LIMIT)?,
            ))
        })
        .await;
        let (queued, embedded) = match found {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "sweep could not read the store");
                continue;
            }
        };
        let (mut announced, mut repeats) = (0, 0);
        for (id, hash) in &queued {
            match log.publish_stored(*id, hash).await {
                Ok(p) if p.duplicate => repeats += 1,
                Ok(_) => announced += 1,
                Err(error) => tracing::warn!(article = %id, %error, "sweep: announce failed"),
            }
        }
        for (id, hash) in &embedded {
            match log.publish_embedded(*id, hash).await {
                Ok(p) if p.duplicate => repeats += 1,
                Ok(_) => announced += 1,
                Err(error) => tracing::warn!(article = %id, %error, "sweep: announce failed"),
            }
        }
        if announced > 0 {
            tracing::info!(
                announced,
                repeats,
                "sweep announced unfinished articles again"
            );
        }
    }
}
