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
