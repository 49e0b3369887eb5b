use std::{io, path::PathBuf};

/// Why a dataset could not be read. Every variant names the file; row-level problems also
/// name the 1-based line.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error,
        }
    }

    pub(crate) fn malformed(
        path: impl Into<PathBuf>,
        line: u64,
        reason: impl Into<String>,
    ) -> Self {
        Self::Malformed {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
