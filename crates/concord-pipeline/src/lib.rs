//! One article's way through Concord: prepare, persist, embed, cluster.
//!
//! Owns: the ingest flow (text preparation, the durable write that makes an
//! acknowledgement true, queue reservations that turn overload into
//! [`IngestError::Busy`]), the clusterer's owning thread and its bounded
//! channel, start-up recovery (re-queueing what the store holds unfinished,
//! loading or repairing the index) and the index dump.
//! Must not: know HTTP or JSON shapes, or decide clusters itself: the server
//! and `concord eval` both drive this same path.

mod error;
mod pipeline;
mod remote;
pub mod roles;
mod wire;
mod worker;

pub use error::IngestError;
pub use pipeline::{ArticleSubmission, Pipeline, Submitted, open_store};
pub use worker::{ClusterReply, SearchHit};
