//! The online clusterer: one owner applies articles in arrival order and
//! decides, for each, whether it joins an existing event cluster or starts a
//! new one; it also applies merges and analyst corrections.
//!
//! Owns: the in-memory cluster state (centroid sums, members, languages,
//! times), the decision rule ([`rule`], with the boosted join trees it reads,
//! [`trees`]), and the composition of each decision
//! into one store transaction (membership, cluster summary, events, article
//! state) followed by the index insert.
//! Must not: do network I/O, embed text, or see gold labels. It is a single
//! writer: nothing else mutates clusters.

mod clusterer;
mod error;
pub mod rule;
mod state;
pub mod tokens;
pub mod trees;

pub use clusterer::{
    Assignment, ClusterInput, Clusterer, Corrected, Correction, HeadlineSource, Outcome,
};
pub use error::ClusterError;
pub use rule::MERGE_FEATURE_NAMES;
pub use rule::{
    Centering, JoinFeatures, JoinRule, JoinWeights, MergeRule, MergeWeights, RuleKind, RuleParams,
};
pub use state::ClusterSummary;
