#![allow(clippy::unwrap_used, clippy::expect_used)]
mod data;
mod metrics;
mod olympics_titles;
mod pairs;
mod readers;
mod sample;
mod seeds;
