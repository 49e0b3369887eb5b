use concord_core::{ArticleId, ClusterId};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Store(#[from] concord_store::StoreError),
    #[error(transparent)]
    Index(#[from] concord_index::IndexError),
    #[error("article {0} not found")]
    UnknownArticle(ArticleId),
    #[error("cluster {0} not found or not active")]
    UnknownCluster(ClusterId),
    #[error("article {article} is not in cluster {cluster}")]
    NotAMember {
        article: ArticleId,
        cluster: ClusterId,
    },
    #[error("{0}")]
    Invalid(String),
}

impl ClusterError {
    /// The store or index failed (memory may be ahead of the store), as opposed
    /// to a request that was refused before anything changed.
    pub fn is_store_failure(&self) -> bool {
        match self {
            Self::Store(_) | Self::Index(_) => true,
            Self::UnknownArticle(_)
            | Self::UnknownCluster(_)
            | Self::NotAMember { .. }
            | Self::Invalid(_) => false,
        }
    }
}
