//! Bulk load into Concord and export out of it: the everyday tools around ingest
//! (`concord ingest`, `concord export`).
//!
//! Owns: reading article files (JSONL in the API's article shape, or CSV with the
//! same fields as columns) record by record with their line numbers; sending them to
//! a running service's batch endpoint as its HTTP client (batches, 429/503 retried
//! after Retry-After, oversized batches split, each refusal reported with its line);
//! writing clusters with their members as NDJSON or CSV from rows of the store.
//! Must not: validate articles itself (the API is the one judge of what it accepts,
//! so the tool and the service cannot disagree), write to the store, or decide
//! anything about clusters.

mod error;
pub mod export;
pub mod ingest;
pub mod source;

pub use error::BulkError;
