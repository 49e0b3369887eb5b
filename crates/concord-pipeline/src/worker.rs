//! The clusterer's owning thread: applies messages strictly in arrival order.

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
};

use concord_cluster::{ClusterInput, ClusterSummary, Clusterer, Corrected, Correction, Outcome};
use concord_core::{ArticleId, ClusterId, Lang, UnitVector};
use concord_embed::EmbedReceiver;
use concord_index::VectorIndex;
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::IngestError;

/// What the submitter of an article learns once it is clustered.
pub type ClusterReply = Result<Outcome, IngestError>;

/// An article whose vector is on its way.
#[derive(Debug)]
pub(crate) struct Queued {
    pub id: ArticleId,
    pub content_hash: String,
    pub published_at: Timestamp,
    pub lang: Option<Lang>,
    pub title: String,
    /// The prepared text the model read (title and body).
    pub text: String,
}

#[derive(Debug)]
pub(crate) enum Msg {
    /// Wait for the vector, then cluster.
    Embedded {
        article: Queued,
        vector: EmbedReceiver,
        done: Option<oneshot::Sender<ClusterReply>>,
    },
    /// Already has a vector (recovery after a restart).
    Ready {
        input: ClusterInput,
        done: Option<oneshot::Sender<ClusterReply>>,
    },
    Delete {
        id: ArticleId,
        done: oneshot::Sender<Result<Option<ClusterId>, IngestError>>,
    },
    /// Answers once everything sent before it has been applied.
    Flush(oneshot::Sender<()>),
    Summaries(oneshot::Sender<Vec<ClusterSummary>>),
    Search {
        vector: UnitVector,
        lang: Option<Lang>,
        k: usize,
        done: oneshot::Sender<Result<Vec<SearchHit>, IngestError>>,
    },
    /// Articles nearest to a stored one.
    Similar {
        article: ArticleId,
        k: usize,
        done: oneshot::Sender<Result<Vec<SearchHit>, IngestError>>,
    },
    Related {
        cluster: ClusterId,
        n: usize,
        done: oneshot::Sender<Result<Vec<(ClusterId, f32)>, IngestError>>,
    },
    Correct {
        correction: Correction,
        actor: String,
        done: oneshot::Sender<Result<Corrected, IngestError>>,
    },
}

/// One article found by a search, with the cluster it is in.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub article: ArticleId,
    pub similarity: f32,
    pub cluster: Option<ClusterId>,
}

fn hits(
    found: Result<Vec<(ArticleId, f32, Option<ClusterId>)>, concord_cluster::ClusterError>,
) -> Result<Vec<SearchHit>, IngestError> {
    found
        .map(|hits| {
            hits.into_iter()
                .map(|(article, similarity, cluster)| SearchHit {
                    article,
                    similarity,
                    cluster,
                })
                .collect()
        })
        .map_err(IngestError::from)
}

/// A bounded queue that refused a message: full is [`IngestError::Busy`] (429), closed
/// means the pipeline is shutting down.
pub(crate) fn refused<T>(queue: &'static str, e: mpsc::error::TrySendError<T>) -> IngestError {
    match e {
        mpsc::error::TrySendError::Full(_) => IngestError::Busy { queue },
        mpsc::error::TrySendError::Closed(_) => IngestError::ShuttingDown,
    }
}

/// Sends the cluster thread `message` (waiting for room in `tx`), then waits for its reply.
pub(crate) async fn ask<T>(
    tx: &mpsc::Sender<Msg>,
    message: impl FnOnce(oneshot::Sender<T>) -> Msg,
) -> Result<T, IngestError> {
    let (done, rx) = oneshot::channel();
    tx.send(message(done))
        .await
        .map_err(|_| IngestError::ShuttingDown)?;
    rx.await.map_err(|_| IngestError::ShuttingDown)
}

/// [`ask`] on the query lane: a full lane is [`IngestError::Busy`] (429), never a wait.
pub(crate) async fn ask_now<T>(
    tx: &mpsc::Sender<Msg>,
    message: impl FnOnce(oneshot::Sender<T>) -> Msg,
) -> Result<T, IngestError> {
    let (done, rx) = oneshot::channel();
    tx.try_send(message(done))
        .map_err(|e| refused("query", e))?;
    rx.await.map_err(|_| IngestError::ShuttingDown)
}

/// What the cluster thread woke up for.
enum Next {
    Query(Msg),
    Main(Option<Msg>),
}

/// Waits for the next message, a query first when both are there.
async fn next(
    rx: &mut mpsc::Receiver<Msg>,
    queries: &mut mpsc::Receiver<Msg>,
    queries_open: &mut bool,
) -> Next {
    loop {
        tokio::select! {
            biased;
            query = queries.recv(), if *queries_open => match query {
                Some(query) => return Next::Query(query),
                None => *queries_open = false,
            },
            msg = rx.recv() => return Next::Main(msg),
        }
    }
}

pub(crate) struct ClusterWorker {
    pub clusterer: Clusterer,
    pub model: String,
    pub index: Arc<RwLock<VectorIndex>>,
    pub dump_dir: PathBuf,
    pub dump_every: u64,
    pub metrics: concord_metrics::Metrics,
    /// Poked after every change, so the webhook dispatcher sends its outbox rows promptly.
    pub outbox: Arc<tokio::sync::Notify>,
    /// Articles clustered since the last index dump.
    pub since_dump: u64,
}

impl ClusterWorker {
    /// Applies messages until every sender of `rx` is gone. Read-only queries
    /// (`queries`: search, similar, related) go first whenever any wait: a
    /// person waits for them, and they would otherwise queue behind up to
    /// `cluster.queue_capacity` articles. Articles and everything else keep
    /// their arrival order.
    pub fn run(mut self, mut rx: mpsc::Receiver<Msg>, mut queries: mpsc::Receiver<Msg>) {
        let runtime = match tokio::runtime::Builder::new_current_thread().build() {
            Ok(rt) => rt,
            Err(error) => {
                tracing::error!(%error, "cluster worker could not start its runtime");
                return;
            }
        };
        let mut queries_open = true;
        loop {
            while let Ok(query) = queries.try_recv() {
                self.handle(query);
            }
            let msg = match rx.try_recv() {
                Ok(msg) => msg,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match runtime.block_on(next(&mut rx, &mut queries, &mut queries_open)) {
                        Next::Query(query) => {
                            self.handle(query);
                            continue;
                        }
                        Next::Main(Some(msg)) => msg,
                        Next::Main(None) => break,
                    }
                }
            };
            self.handle(msg);
            // Every committed change wrote outbox rows in its transaction.
            self.outbox.notify_one();
            if self.dump_every > 0 && self.since_dump >= self.dump_every {
                self.dump();
                self.since_dump = 0;
            }
        }
        // Every sender is gone: the queue is drained. Leave a fresh dump behind.
        self.dump();
        tracing::info!("clusterer stopped");
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Embedded {
                article,
                vector,
                done,
            } => {
                let reply = match vector.blocking_recv() {
                    Ok(Ok(embedding)) => self.assign(ClusterInput {
                        id: article.id,
                        content_hash: article.content_hash,
                        published_at: article.published_at,
                        lang: article.lang,
                        title: article.title,
                        text: article.text,
                        embedding,
                        model: self.model.clone(),
                    }),
                    Ok(Err(e)) => {
                        tracing::warn!(article = %article.id, error = %e, "embedding failed; article stays queued");
                        Err(IngestError::from(e))
                    }
                    Err(_) => Err(IngestError::ShuttingDown),
                };
                self.since_dump += u64::from(reply.is_ok());
                if let Some(done) = done {
                    let _ = done.send(reply);
                }
            }
            Msg::Ready { input, done } => {
                let reply = self.assign(input);
                self.since_dump += u64::from(reply.is_ok());
                if let Some(done) = done {
                    let _ = done.send(reply);
                }
            }
            Msg::Delete { id, done } => {
                let _ = done.send(self.clusterer.delete_article(id).map_err(IngestError::from));
            }
            Msg::Flush(done) => {
                let _ = done.send(());
            }
            Msg::Summaries(done) => {
                let _ = done.send(self.clusterer.summaries());
            }
            Msg::Search {
                vector,
                lang,
                k,
                done,
            } => {
                let _ = done.send(hits(self.clusterer.search(&vector, lang, k)));
            }
            Msg::Similar { article, k, done } => {
                let _ = done.send(hits(self.clusterer.similar_to(article, k)));
            }
            Msg::Related { cluster, n, done } => {
                let _ = done.send(
                    self.clusterer
                        .related(cluster, n)
                        .map_err(IngestError::from),
                );
            }
            Msg::Correct {
                correction,
                actor,
                done,
            } => {
                let span =
                    tracing::info_span!("correction", kind = correction.kind(), actor = %actor);
                let _guard = span.enter();
                let result = self.clusterer.correct(&correction, &actor);
                match &result {
                    Ok(c) => {
                        tracing::info!(id = c.id, cluster = %c.cluster, "correction applied")
                    }
                    Err(e) => tracing::info!(error = %e, "correction refused"),
                }
                let _ = done.send(result.map_err(IngestError::from));
            }
        }
    }

    fn assign(&mut self, input: ClusterInput) -> ClusterReply {
        let id = input.id;
        let span = tracing::debug_span!("cluster", article = %id);
        let _guard = span.enter();
        let started = std::time::Instant::now();
        let outcome = self.clusterer.assign(&input).map_err(IngestError::from);
        if let Ok(Outcome::Assigned(a)) = &outcome {
            self.metrics
                .assigned(started.elapsed(), a.created, a.merged.len());
        }
        match &outcome {
            Ok(Outcome::Assigned(a)) => tracing::debug!(
                cluster = %a.cluster,
                created = a.created,
                similarity = a.similarity,
                merged = a.merged.len(),
                "clustered"
            ),
            Ok(Outcome::Stale) => tracing::debug!("vector is stale; newer content queued"),
            Err(e) => tracing::error!(error = %e, "clustering failed"),
        }
        outcome
    }

    fn dump(&self) {
        let started = std::time::Instant::now();
        let result = match self.index.read() {
            Ok(index) => index.dump(&self.dump_dir, 0).map_err(|e| e.to_string()),
            Err(_) => Err("index lock poisoned".to_owned()),
        };
        match result {
            Ok(()) => tracing::info!(millis = started.elapsed().as_millis(), "index dumped"),
            Err(error) => tracing::error!(%error, "index dump failed"),
        }
    }
}
