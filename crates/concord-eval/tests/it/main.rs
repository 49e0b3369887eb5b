#![allow(clippy::unwrap_used, clippy::expect_used)]
mod data;
mod metrics;
mod og2021;
mod readers;
mod seeds;
