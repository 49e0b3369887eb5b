//! Evaluation: dataset readers, replay, and clustering-quality metrics.
//!
//! Owns: reading the labelled evaluation data (OG2021, the seed articles, the rated
//! article pairs) into one [`Dataset`] shape (the pairs also into their [`pairs::ScoredPair`]
//! list, scored by [`pairs::score`]), seeded samples that match Python's
//! ([`sample::Sample`]), replaying it through the service's own pipeline ([`replay`]:
//! store, model, index, clusterer; gold labels are never submitted), and scoring the
//! predicted clustering against gold labels ([`metrics`]), and the fitting behind
//! `concord fit-join` ([`logistic`], the join model's per-language intercepts in
//! [`intercepts`], and the boosted trees in [`boost`]).
//! Must not: be used by the server or anything on the product path. It exists for offline
//! measurement and tuning; the product never sees gold labels, and evaluation data never
//! enters the repository.

pub mod boost;
mod dataset;
mod error;
pub mod intercepts;
pub mod logistic;
pub mod metrics;
// The OG2021 reader (Tokyo 2021 Olympics titles). Only the reader lives here: the data
// is read from ../shared and never copied into the repository.
#[path = "olympics_titles.rs"]
pub mod og2021;
pub mod pairs;
pub mod replay;
pub mod sample;
pub mod seeds;

pub use dataset::{Dataset, Item};
pub use error::EvalError;
pub use metrics::{LangPairStats, PairStats, Prf, Scores, score};
pub use og2021::OG2021_TUNE_UNTIL;
