//! Domain vocabulary shared by every Concord crate: language codes, unit
//! vectors and the configuration types.
//!
//! Owns: types that carry invariants (a [`Lang`] is always a known ISO 639-1
//! code, a [`UnitVector`] always has length 1) and the [`config::Config`] struct.
//! Must not: do I/O, know about HTTP, SQL or how vectors are produced.

pub mod config;
pub mod ids;
pub mod lang;
pub mod vector;

pub use config::Config;
pub use ids::{ArticleId, ClusterId, DeliveryId, SubscriptionId};
pub use lang::{Lang, LangError};
pub use vector::{Embedding, UnitVector, VectorError};
