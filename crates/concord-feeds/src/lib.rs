//! RSS and Atom feeds named in `[feeds]`, polled into the pipeline: each item
//! becomes an article as if an upstream feed had pushed it through the API.
//!
//! Owns: fetching each feed on its interval with a conditional GET (If-None-Match,
//! If-Modified-Since from its previous answer), under the same target policy as
//! outbound webhooks (policy-checked URL, resolved addresses and redirects), with a
//! time and size limit; parsing it (feed-rs: RSS 0.9-2.0, Atom, JSON Feed); turning an
//! item into an article (external id `feed:<name>:<guid, else link>`, title and text
//! reduced to plain text, publication time, the feed's language); each feed's state
//! (last answer, error, counts) and its metrics.
//! Must not: store articles itself (it hands them to a [`Sink`], in the service the
//! pipeline, which stores them durably and de-duplicates by external id), let one
//! feed's failure stop another's polling, or reach an address the policy refuses.

mod fetch;
mod item;
mod poller;

pub use item::{article_of, plain_text};
pub use poller::{FeedError, FeedState, PollReport, Poller, Sink, SinkOutcome};
