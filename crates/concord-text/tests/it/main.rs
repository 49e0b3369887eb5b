//! Integration tests of `concord-text`: one binary, one module per concern.

// Test helpers outside `#[test]` functions may panic too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod detection;
mod seeds;
