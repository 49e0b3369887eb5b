use std::path::PathBuf;

use concord_core::ArticleId;

/// Why an index operation failed.
///
/// The dump variants (`DumpMissing`, `DumpCorrupt`, `DumpVersion`) all mean
/// the same thing to a caller: rebuild the index from the store.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("invalid index parameters: {0}")]
    InvalidParams(String),
    #[error("vector has dimension {got}, index has {expected}")]
    DimensionMismatch { expected: usize, got: usize },
    #[error("article {0} is already indexed")]
    DuplicateId(ArticleId),
    #[error("the index is full ({0} slots); a rebuild drops the tombstones")]
    Full(usize),
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no index dump in {0}")]
    DumpMissing(PathBuf),
    #[error("index dump in {path} is corrupt: {reason}")]
    DumpCorrupt { path: PathBuf, reason: String },
    #[error("index dump format version {found} is not supported (expected {expected})")]
    DumpVersion { found: u32, expected: u32 },
    #[error("hnsw graph error: {0}")]
    Graph(String),
}

impl IndexError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::DumpCorrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// True when the error says the dump cannot be used and the index must
    /// be rebuilt from the store (as opposed to a programming error).
    pub fn is_unusable_dump(&self) -> bool {
        matches!(
            self,
            Self::DumpMissing(_)
                | Self::DumpCorrupt { .. }
                | Self::DumpVersion { .. }
                | Self::Io { .. }
        )
    }
}
