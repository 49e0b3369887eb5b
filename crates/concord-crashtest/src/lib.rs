//! The crash harness: proves that nothing Concord acknowledged is lost when the
//! process is killed at random points.
//!
//! Owns: driving the real `concord serve` binary as a child process (start,
//! SIGKILL, SIGTERM, restart on the same data directory), a seeded synthetic
//! multilingual article stream sent over HTTP at a steady rate, damage to the
//! index dump between restarts, and the end-of-run checks (every acknowledged
//! article stored, clustered, in exactly one cluster and in the index; every
//! cluster id a client was given still resolving).
//! Must not: link any service crate or read the data directory's store: it sees
//! only what a client sees (HTTP answers) and what an operator sees (the log,
//! the exit status, the files of the index dump it damages).

mod check;
mod client;
mod corpus;
mod damage;
mod error;
mod logs;
mod rng;
mod run;
mod server;

pub use check::{Round, settle, verify};
pub use client::{Accepted, Answer, Api, ArticleOut, BatchAnswer, BatchItem, DEV_KEY};
pub use corpus::{Article, corpus};
pub use damage::Damage;
pub use error::Error;
pub use logs::{IndexPath, StartupLog, messages};
pub use rng::Rng;
pub use run::{Options, Report, Startup, run};
pub use server::{Launch, Server, free_port};
