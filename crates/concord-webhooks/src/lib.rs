//! Webhooks, both ways: verifying signed inbound webhooks, and delivering the store's
//! outbox to subscribers as signed POSTs (Standard Webhooks, <https://www.standardwebhooks.com>).
//!
//! Owns: the signature scheme ([`signature`]: `whsec_` secrets, `v1` HMAC-SHA256
//! signatures, timestamp tolerance), the target address policy against request forgery
//! ([`policy`], checked at subscription time and, resolved, at every attempt), and the
//! [`dispatcher`]: fan-out, claims, bounded concurrent attempts, retries with backoff and
//! jitter, 410 handling, outcome counters, graceful stop.
//! Must not: touch clustering or decide what an event says (the clusterer writes outbox
//! rows in its own transactions; the store renders payloads); know HTTP routes (the
//! server calls [`signature::verify_headers`] and [`policy::TargetPolicy::check_url`]);
//! log secrets, signatures or target URLs (they may carry tokens).

pub mod dispatcher;
pub mod policy;
pub mod signature;

pub use dispatcher::{
    Backoff, CounterSnapshot, DeliveryCounters, DispatchError, Dispatcher, DispatcherConfig,
};
pub use policy::{AddressClass, PolicyError, PolicyResolver, TargetPolicy};
pub use signature::{Secret, SecretError, VerifyError, sign, verify, verify_headers};
