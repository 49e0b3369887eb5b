mod data;
mod metrics;
mod og2021;
mod readers;
mod seeds;
