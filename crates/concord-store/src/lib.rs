//! The durable truth: SQLite (WAL, the embedded default) or PostgreSQL (a shared
//! server), holding articles, their vectors, clusters, memberships, cluster events,
//! analyst corrections, and the webhook outbox, subscriptions and delivery log.
//!
//! Owns: the schema and its versioned migrations (one list per engine, the same
//! meaning), every SQL statement (written once; `sql.rs` runs it on either engine and
//! says where the dialects differ), and the transactions that make one clustering
//! decision atomic (membership, cluster rows, events and the article's state change
//! together or not at all).
//! Must not: decide anything about clusters or interpret vectors; the index
//! and the clusterer are caches and deciders built on top of what is here.

mod article;
mod cluster;
mod db;
mod error;
mod migrations;
mod sql;
#[cfg(test)]
mod testing;
mod webhook;

pub use article::{
    ArticleRecord, ArticleState, ClusteredArticle, NewArticle, PendingArticle, UpsertOutcome,
    content_hash,
};
pub use cluster::{
    ClusterEventKind, ClusterOrder, ClusterQuery, ClusterRecord, ClusterStatus, Correction,
    EventRecord, ExportRow, MembershipRecord,
};
pub use db::{Db, Engine, Lease, Store, Synchronous, Tx};
pub use error::StoreError;
pub use webhook::{
    AttemptOutcome, Delivery, DeliveryQuery, DeliveryStatus, DueDelivery, EventType,
    NewSubscription, OutboxEvent, Pruned, Subscription, SubscriptionUpdate, UnknownEventType,
    webhook_id,
};
