use std::path::PathBuf;

use crate::INSTALL_HINT;

/// Everything that can go wrong between a text and its vector.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("model file missing: {path} ({hint})", hint = INSTALL_HINT)]
    MissingFile { path: PathBuf },
    #[error("model file unreadable: {path}: {source} ({hint})", hint = INSTALL_HINT)]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("onnx runtime library could not be loaded from {path}: {reason} ({hint})", hint = INSTALL_HINT)]
    Runtime { path: PathBuf, reason: String },
    #[error("model in {dir} could not be loaded: {reason} ({hint})", hint = INSTALL_HINT)]
    Load { dir: PathBuf, reason: String },
    #[error("model produced {got} vectors for {expected} texts")]
    Arity { expected: usize, got: usize },
    #[error("model produced an unusable vector: {0}")]
    Vector(#[from] concord_core::VectorError),
    #[error("model inference failed: {0}")]
    Inference(String),
    #[error("embed queue is full")]
    QueueFull,
    #[error("embed worker has stopped")]
    WorkerGone,
}
