//! An api node's side of the distributed mode: announce stored articles on the article
//! log, ask the embed workers and the active clusterer for what needs them, and learn
//! from the store when an article is clustered.

use std::time::Duration;

use concord_cluster::{Assignment, Corrected, Correction, Outcome};
use concord_core::{ArticleId, ClusterId, Config, Lang};
use concord_log::{ArticleLog, CLUSTER_RPC_SUBJECT, EMBED_RPC_SUBJECT, Unanswered};
use concord_store::{ArticleState, Store};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use crate::{
    IngestError, SearchHit,
    wire::{ClusterAnswer, ClusterCall, EmbedAnswer, EmbedCall},
    worker::ClusterReply,
};

/// How often a `?wait=true` request looks at the store for its article.
const WATCH_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub(crate) struct Remote {
    log: ArticleLog,
    timeout: Duration,
    wait: Duration,
}

impl Remote {
    pub(crate) fn new(config: &Config, log: ArticleLog) -> Self {
        Self {
            log,
            timeout: Duration::from_secs(config.distributed.request_timeout_secs),
            wait: Duration::from_secs(config.distributed.wait_secs),
        }
    }

    /// Announces a stored article to the embed workers. The article is durable already:
    /// a publish that fails is logged, and the active clusterer's sweep announces the
    /// article again (`distributed.sweep_after_secs`).
    pub(crate) async fn announce(&self, id: ArticleId, hash: &str) {
        if let Err(error) = self.log.publish_stored(id, hash).await {
            tracing::warn!(article = %id, %error, "announcing a stored article failed; the sweep will announce it");
        }
    }

    /// Resolves once the store says `id` is clustered with content `hash` (or holds
    /// newer content: [`Outcome::Stale`]), or with [`Outcome::Stale`] after
    /// `distributed.wait_secs` (the caller then reports the article as queued).
    pub(crate) fn watch(
        &self,
        store: Store,
        id: ArticleId,
        hash: String,
    ) -> oneshot::Receiver<ClusterReply> {
        let (tx, rx) = oneshot::channel();
        let wait = self.wait;
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + wait;
            let reply = loop {
                let (store, hash) = (store.clone(), hash.clone());
                let seen = tokio::task::spawn_blocking(move || clustered(&store, id, &hash))
                    .await
                    .map_err(|_| IngestError::ShuttingDown)
                    .and_then(|r| r);
                match seen {
                    Ok(Some(outcome)) => break Ok(outcome),
                    Ok(None) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(WATCH_EVERY).await;
                    }
                    Ok(None) => break Ok(Outcome::Stale),
                    Err(e) => break Err(e),
                }
                if tx.is_closed() {
                    return;
                }
            };
            let _ = tx.send(reply);
        });
        rx
    }

    async fn call<A: DeserializeOwned>(
        &self,
        subject: &'static str,
        role: &'static str,
        call: &impl Serialize,
    ) -> Result<A, IngestError> {
        let payload =
            serde_json::to_vec(call).map_err(|e| IngestError::Remote(format!("encode: {e}")))?;
        match self.log.request(subject, payload, self.timeout).await {
            Ok(answer) => serde_json::from_slice(&answer)
                .map_err(|e| IngestError::Remote(format!("{role} answered unreadably: {e}"))),
            Err(Ok(Unanswered::NoResponders | Unanswered::TimedOut)) => {
                Err(IngestError::Unavailable { role })
            }
            Err(Err(error)) => {
                tracing::warn!(%error, role, "request to another role failed");
                Err(IngestError::Unavailable { role })
            }
        }
    }

    async fn cluster(&self, call: ClusterCall) -> Result<ClusterAnswer, IngestError> {
        match self.call(CLUSTER_RPC_SUBJECT, "clusterer", &call).await? {
            ClusterAnswer::Failed(e) => Err(e.into_ingest("clusterer")),
            answer => Ok(answer),
        }
    }

    pub(crate) async fn search(
        &self,
        text: String,
        lang: Option<Lang>,
        k: usize,
    ) -> Result<Vec<SearchHit>, IngestError> {
        let vector = match self
            .call(EMBED_RPC_SUBJECT, "embed worker", &EmbedCall { text })
            .await?
        {
            EmbedAnswer::Vector(v) => v,
            EmbedAnswer::Failed(e) => return Err(e.into_ingest("embed worker")),
        };
        hits(
            self.cluster(ClusterCall::Search { vector, lang, k })
                .await?,
        )
    }

    pub(crate) async fn similar(
        &self,
        article: ArticleId,
        k: usize,
    ) -> Result<Vec<SearchHit>, IngestError> {
        hits(self.cluster(ClusterCall::Similar { article, k }).await?)
    }

    pub(crate) async fn related(
        &self,
        cluster: ClusterId,
        n: usize,
    ) -> Result<Vec<(ClusterId, f32)>, IngestError> {
        match self.cluster(ClusterCall::Related { cluster, n }).await? {
            ClusterAnswer::Related(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn correct(
        &self,
        correction: Correction,
        actor: &str,
    ) -> Result<Corrected, IngestError> {
        let call = ClusterCall::Correct {
            correction,
            actor: actor.to_owned(),
        };
        match self.cluster(call).await? {
            ClusterAnswer::Corrected(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn delete(&self, id: ArticleId) -> Result<Option<ClusterId>, IngestError> {
        match self.cluster(ClusterCall::Delete { id }).await? {
            ClusterAnswer::Deleted(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }
}

fn hits(answer: ClusterAnswer) -> Result<Vec<SearchHit>, IngestError> {
    match answer {
        ClusterAnswer::Hits(h) => Ok(h.into_iter().map(SearchHit::from).collect()),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(answer: &ClusterAnswer) -> IngestError {
    IngestError::Remote(format!("clusterer answered out of turn: {answer:?}"))
}

/// Where the store says `id` is, when it is clustered with `hash` (or has moved on).
fn clustered(store: &Store, id: ArticleId, hash: &str) -> Result<Option<Outcome>, IngestError> {
    let db = store.connect_read_only()?;
    let Some(article) = db.article(id)? else {
        return Err(IngestError::NotFound(id));
    };
    if article.content_hash != hash || article.state == ArticleState::Deleted {
        return Ok(Some(Outcome::Stale));
    }
    if article.state != ArticleState::Clustered {
        return Ok(None);
    }
    Ok(db.membership(id)?.map(|m| {
        Outcome::Assigned(Assignment {
            article: id,
            cluster: m.cluster,
            created: false,
            similarity: m.similarity,
            merged: Vec::new(),
        })
    }))
}
