//! The sentence model: loading it offline, owning it on one thread, batching.
//!
//! Owns: model files on disk (the sentence model and the optional headline model) (checked at start-up with one clear error that
//! names the install command), ONNX Runtime initialisation, the embed worker
//! thread and its bounded queue, and the tokenizer-backed token budget used by
//! text preparation.
//! Must not: know about HTTP, SQL, clusters, or prepare text itself.

mod budget;
mod error;
mod headline;
mod model;
mod worker;

pub use budget::TokenizerBudget;
pub use error::EmbedError;
pub use headline::{HeadlineLane, HeadlineStats, HeadlineWorker};
pub use model::{Encoders, HeadlineModel, Model, ModelFiles};
pub use worker::{
    BatchObserver, EmbedHandle, EmbedPermit, EmbedReceiver, EmbedWorker, WorkerStats,
};

/// The command that installs (or repairs) the model and runtime files.
pub const INSTALL_HINT: &str = "run `models/install.sh` from the repository root";
