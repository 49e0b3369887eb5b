use concord_core::ArticleId;

/// Why an article was not accepted, or not clustered.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("article text is unusable: {0}")]
    Text(#[from] concord_text::PrepareError),
    #[error("{queue} queue is full")]
    Busy { queue: &'static str },
    #[error("store: {0}")]
    Store(#[from] concord_store::StoreError),
    #[error("embedding failed: {0}")]
    Embed(concord_embed::EmbedError),
    #[error("clustering failed: {0}")]
    Cluster(#[from] concord_cluster::ClusterError),
    #[error("article {0} not found")]
    NotFound(ArticleId),
    #[error("pipeline is shutting down")]
    ShuttingDown,
    /// Distributed mode: no process of `role` answered (none running, or the active
    /// clusterer died and a standby is taking over). Worth retrying shortly.
    #[error("no {role} answered")]
    Unavailable { role: &'static str },
    /// Distributed mode: the process that served the call failed (its message).
    #[error("{0}")]
    Remote(String),
    /// Distributed mode: the article log (NATS) failed.
    #[error("article log: {0}")]
    Log(#[from] concord_log::LogError),
}

impl From<concord_embed::EmbedError> for IngestError {
    fn from(e: concord_embed::EmbedError) -> Self {
        match e {
            concord_embed::EmbedError::QueueFull => Self::Busy { queue: "embed" },
            concord_embed::EmbedError::WorkerGone => Self::ShuttingDown,
            other => Self::Embed(other),
        }
    }
}
