//! The log's one error type: which step failed, with the client's error as the source.

use concord_core::ArticleId;

/// The client's errors are several generic types; they are kept as the source.
type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong talking to the article log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The server could not be reached (or refused the connection) at start.
    #[error("cannot connect to nats")]
    Connect { source: async_nats::ConnectError },
    /// A stream or consumer could not be created or updated to the configured settings
    /// (the server is not running JetStream, or an existing stream differs in a setting
    /// that cannot change, such as its retention).
    #[error("cannot set up {what}")]
    Setup { what: String, source: Source },
    /// A content hash that is empty, too long or not alphanumeric: it goes into the
    /// message id and must be the store's hex digest.
    #[error("article {article_id}: invalid content hash ({len} bytes)")]
    InvalidHash { article_id: ArticleId, len: usize },
    /// A notice could not be serialised.
    #[error("cannot encode a notice")]
    Encode { source: serde_json::Error },
    /// The server did not take a publish (timed out, no stream, refused).
    #[error("publish to {subject} failed")]
    Publish {
        subject: &'static str,
        source: Source,
    },
    /// A pull consumer's stream failed (missed heartbeats, consumer deleted, the
    /// connection lost). The stream may still go on: keep calling `next`.
    #[error("receive from {consumer} failed")]
    Receive {
        consumer: &'static str,
        source: Source,
    },
    /// An ack, nak or progress signal was not confirmed by the server. The notice is
    /// delivered again after its ack wait; the consumer's idempotence makes that harmless.
    #[error("{kind} of {consumer} notice not confirmed")]
    Ack {
        kind: &'static str,
        consumer: &'static str,
        source: Source,
    },
    /// The connection failed underneath (flush).
    #[error("nats connection failed")]
    Connection { source: Source },
}

impl LogError {
    pub(crate) fn setup(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Setup {
            what: what.to_owned(),
            source: Box::new(e),
        }
    }

    pub(crate) fn connection(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Connection {
            source: Box::new(e),
        }
    }

    pub(crate) fn publish(
        subject: &'static str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Publish {
            subject,
            source: Box::new(e),
        }
    }
}
