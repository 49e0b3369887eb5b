//! The models: loading them offline, owning each on a thread, batching.
//!
//! Owns: the model files on disk, the sentence model's and the optional headline
//! model's (checked at start-up with one clear error that names the install
//! command), ONNX Runtime initialisation, the embed worker thread and its bounded
//! queue, the headline model's thread for the clusterer's second look, and the
//! tokenizer-backed token budget used by text preparation.
//! Must not: know about HTTP, SQL, clusters, or prepare text itself.

mod budget;
mod error;
mod headline;
mod model;
mod worker;

pub use budget::TokenizerBudget;
pub use error::EmbedError;
pub use headline::{HeadlineLane, HeadlineWorker};
pub use model::{Encoders, HeadlineModel, Model, ModelFiles};
pub use worker::{
    BatchObserver, EmbedHandle, EmbedPermit, EmbedReceiver, EmbedWorker, WorkerStats,
};

/// The command that installs (or repairs) the model and runtime files.
pub const INSTALL_HINT: &str = "run `models/install.sh` from the repository root";
