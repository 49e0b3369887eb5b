#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ingest client against a stand-in service (wiremock): batching, retries,
//! splitting, refusals by line.

mod ingest;
