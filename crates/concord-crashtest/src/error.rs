use std::{path::PathBuf, process::ExitStatus};

/// What stops a harness run (a broken invariant is not an error: it is counted
/// in the [`crate::Report`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the service exited during start-up ({status}); log tail:\n{log}")]
    ExitedEarly { status: ExitStatus, log: String },
    #[error("the service was not ready after {secs} s; log tail:\n{log}")]
    NotReady { secs: u64, log: String },
    #[error("the service did not exit {secs} s after SIGTERM; log tail:\n{log}")]
    NoExit { secs: u64, log: String },
    #[error("cannot signal the service: {0}")]
    Signal(#[from] nix::Error),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("{what}: {source}")]
    Http {
        what: String,
        source: reqwest::Error,
    },
    #[error("{what} answered {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what} answered JSON the harness does not understand: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("{pending} acknowledged articles still not clustered after {secs} s")]
    NotSettled { pending: usize, secs: u64 },
    #[error("{0} articles were never acknowledged (the service kept refusing or failing)")]
    NeverAcknowledged(usize),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
