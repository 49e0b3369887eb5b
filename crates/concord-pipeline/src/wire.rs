//! What the roles of the distributed mode say to each other over the article log's
//! request/reply (JSON): the calls an api node makes, the answers, and errors carried
//! across so the API answers a remote refusal exactly as it answers a local one.

use concord_cluster::{ClusterError, Corrected, Correction};
use concord_core::{ArticleId, ClusterId, Lang};
use serde::{Deserialize, Serialize};

use crate::{IngestError, SearchHit};

/// A call to the active clusterer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ClusterCall {
    Search {
        vector: Vec<f32>,
        lang: Option<Lang>,
        k: usize,
    },
    Similar {
        article: ArticleId,
        k: usize,
    },
    Related {
        cluster: ClusterId,
        n: usize,
    },
    Correct {
        correction: Correction,
        actor: String,
    },
    Delete {
        id: ArticleId,
    },
}

/// One search hit on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireHit {
    pub article: ArticleId,
    pub similarity: f32,
    pub cluster: Option<ClusterId>,
}

impl From<SearchHit> for WireHit {
    fn from(h: SearchHit) -> Self {
        Self {
            article: h.article,
            similarity: h.similarity,
            cluster: h.cluster,
        }
    }
}

impl From<WireHit> for SearchHit {
    fn from(h: WireHit) -> Self {
        Self {
            article: h.article,
            similarity: h.similarity,
            cluster: h.cluster,
        }
    }
}

/// The clusterer's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ClusterAnswer {
    Hits(Vec<WireHit>),
    Related(Vec<(ClusterId, f32)>),
    Corrected(Corrected),
    Deleted(Option<ClusterId>),
    Failed(WireError),
}

/// A query text for any embed worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EmbedCall {
    pub text: String,
}

/// An embed worker's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum EmbedAnswer {
    Vector(Vec<f32>),
    Failed(WireError),
}

/// An [`IngestError`] as it crosses: the refusals a caller can act on keep their kind;
/// failures of the serving process arrive as their message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    UnknownArticle(ArticleId),
    UnknownCluster(ClusterId),
    NotAMember {
        article: ArticleId,
        cluster: ClusterId,
    },
    Invalid(String),
    NotFound(ArticleId),
    Busy(String),
    ShuttingDown,
    Failed(String),
}

impl From<IngestError> for WireError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Cluster(ClusterError::UnknownArticle(id)) => Self::UnknownArticle(id),
            IngestError::Cluster(ClusterError::UnknownCluster(id)) => Self::UnknownCluster(id),
            IngestError::Cluster(ClusterError::NotAMember { article, cluster }) => {
                Self::NotAMember { article, cluster }
            }
            IngestError::Cluster(ClusterError::Invalid(reason)) => Self::Invalid(reason),
            IngestError::NotFound(id) => Self::NotFound(id),
            IngestError::Busy { queue } => Self::Busy(queue.to_owned()),
            // The serving process is going away: to the caller, no answer from it.
            IngestError::ShuttingDown | IngestError::Unavailable { .. } => Self::ShuttingDown,
            other @ (IngestError::Text(_)
            | IngestError::Store(_)
            | IngestError::Embed(_)
            | IngestError::Cluster(ClusterError::Store(_) | ClusterError::Index(_))
            | IngestError::Remote(_)
            | IngestError::Log(_)) => Self::Failed(other.to_string()),
        }
    }
}

impl WireError {
    /// The error as the api node reports it; `role` is who answered.
    pub(crate) fn into_ingest(self, role: &'static str) -> IngestError {
        match self {
            Self::UnknownArticle(id) => ClusterError::UnknownArticle(id).into(),
            Self::UnknownCluster(id) => ClusterError::UnknownCluster(id).into(),
            Self::NotAMember { article, cluster } => {
                ClusterError::NotAMember { article, cluster }.into()
            }
            Self::Invalid(reason) => ClusterError::Invalid(reason).into(),
            Self::NotFound(id) => IngestError::NotFound(id),
            Self::Busy(queue) => IngestError::Busy {
                queue: match queue.as_str() {
                    "embed" => "embed",
                    "cluster" => "cluster",
                    "query" => "query",
                    _ => role,
                },
            },
            Self::ShuttingDown => IngestError::Unavailable { role },
            Self::Failed(message) => IngestError::Remote(format!("{role}: {message}")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(e: IngestError) -> IngestError {
        let wire = WireError::from(e);
        let json = serde_json::to_vec(&wire).unwrap();
        serde_json::from_slice::<WireError>(&json)
            .unwrap()
            .into_ingest("clusterer")
    }

    #[test]
    fn refusals_keep_their_kind_across_the_wire() {
        let e = round_trip(
            ClusterError::NotAMember {
                article: ArticleId(3),
                cluster: ClusterId(9),
            }
            .into(),
        );
        assert!(matches!(
            e,
            IngestError::Cluster(ClusterError::NotAMember {
                article: ArticleId(3),
                cluster: ClusterId(9)
            })
        ));
        let e = round_trip(ClusterError::UnknownCluster(ClusterId(4)).into());
        assert!(matches!(
            e,
            IngestError::Cluster(ClusterError::UnknownCluster(ClusterId(4)))
        ));
        let e = round_trip(ClusterError::Invalid("no".into()).into());
        assert!(matches!(e, IngestError::Cluster(ClusterError::Invalid(r)) if r == "no"));
        let e = round_trip(IngestError::Busy { queue: "query" });
        assert!(matches!(e, IngestError::Busy { queue: "query" }));
        let e = round_trip(IngestError::ShuttingDown);
        assert!(matches!(e, IngestError::Unavailable { role: "clusterer" }));
        let e = round_trip(IngestError::Store(concord_store::StoreError::NotFound(
            "x".into(),
        )));
        assert!(matches!(e, IngestError::Remote(m) if m.starts_with("clusterer: store")));
    }

    #[test]
    fn a_correction_call_reads_back_as_sent() {
        let call = ClusterCall::Correct {
            correction: Correction::Split {
                from: ClusterId(2),
                articles: vec![ArticleId(5), ArticleId(6)],
            },
            actor: "ops".into(),
        };
        let back: ClusterCall =
            serde_json::from_slice(&serde_json::to_vec(&call).unwrap()).unwrap();
        match back {
            ClusterCall::Correct { correction, actor } => {
                assert_eq!(actor, "ops");
                assert_eq!(
                    correction,
                    Correction::Split {
                        from: ClusterId(2),
                        articles: vec![ArticleId(5), ArticleId(6)],
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
