//! Integration tests for concord-index: one binary, one module per concern.

// Test helpers outside `#[test]` functions may panic too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backlog;
mod common;
mod dump;
mod props;
mod search;
mod tombstones;
mod window;
