//! Webhooks in the store: subscriptions, the outbox, the delivery log and the ids of
//! inbound webhooks already accepted.
//!
//! The clusterer calls [`Tx::emit`] inside the transaction that makes the change, so an
//! event exists exactly when its change does. The dispatcher (crate `concord-webhooks`)
//! then fans each outbox row out into one delivery per interested subscription, claims
//! due deliveries and records each attempt's outcome here. Nothing here does network I/O.

use std::{fmt, str::FromStr};

use concord_core::{ArticleId, ClusterId, DeliveryId, Lang, SubscriptionId, config::SecretString};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    ClusterRecord, ClusterStatus, Db, StoreError,
    db::{Tx, from_millis, millis},
    sql::{Conn, Dialect, Row, values},
};

/// What a subscriber can ask to be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// An article was placed in a cluster.
    #[serde(rename = "article.clustered")]
    ArticleClustered,
    #[serde(rename = "cluster.created")]
    ClusterCreated,
    /// A cluster's summary changed (a member joined or left, its label changed).
    #[serde(rename = "cluster.updated")]
    ClusterUpdated,
    /// A cluster was merged into another; its id resolves to the survivor.
    #[serde(rename = "cluster.merged")]
    ClusterMerged,
    /// Articles were split out of a cluster into a new one.
    #[serde(rename = "cluster.split")]
    ClusterSplit,
}

/// An event type name that is not one of [`EventType::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl EventType {
    pub const ALL: [EventType; 5] = [
        Self::ArticleClustered,
        Self::ClusterCreated,
        Self::ClusterUpdated,
        Self::ClusterMerged,
        Self::ClusterSplit,
    ];

    /// The Standard Webhooks `type`, e.g. `cluster.updated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ArticleClustered => "article.clustered",
            Self::ClusterCreated => "cluster.created",
            Self::ClusterUpdated => "cluster.updated",
            Self::ClusterMerged => "cluster.merged",
            Self::ClusterSplit => "cluster.split",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownEventType> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One change, as the clusterer reports it; [`Tx::emit`] turns it into an outbox row.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxEvent {
    ArticleClustered {
        article: ArticleId,
        cluster: ClusterId,
        similarity: f32,
    },
    ClusterCreated {
        cluster: ClusterRecord,
    },
    ClusterUpdated {
        cluster: ClusterRecord,
    },
    ClusterMerged {
        from: ClusterId,
        into: ClusterRecord,
    },
    ClusterSplit {
        from: ClusterId,
        into: ClusterRecord,
        articles: Vec<ArticleId>,
    },
}

impl OutboxEvent {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::ArticleClustered { .. } => EventType::ArticleClustered,
            Self::ClusterCreated { .. } => EventType::ClusterCreated,
            Self::ClusterUpdated { .. } => EventType::ClusterUpdated,
            Self::ClusterMerged { .. } => EventType::ClusterMerged,
            Self::ClusterSplit { .. } => EventType::ClusterSplit,
        }
    }

    /// The body every subscriber receives, in Standard Webhooks' recommended shape
    /// `{"type", "timestamp", "data"}`. Ids are rendered as the API renders them.
    /// `data` is the cluster itself for `cluster.created`/`cluster.updated`,
    /// `{article, cluster, similarity}` for `article.clustered`, `{from, into}` for
    /// `cluster.merged` and `{from, into, articles}` for `cluster.split`.
    pub fn payload(&self, at: Timestamp) -> String {
        let data = match self {
            Self::ArticleClustered {
                article,
                cluster,
                similarity,
            } => Data::ArticleClustered {
                article: article.to_string(),
                cluster: cluster.to_string(),
                similarity: *similarity,
            },
            Self::ClusterCreated { cluster } | Self::ClusterUpdated { cluster } => {
                Data::Cluster(ClusterData::from(cluster))
            }
            Self::ClusterMerged { from, into } => Data::Merged {
                from: from.to_string(),
                into: ClusterData::from(into),
            },
            Self::ClusterSplit {
                from,
                into,
                articles,
            } => Data::Split {
                from: from.to_string(),
                into: ClusterData::from(into),
                articles: articles.iter().map(ToString::to_string).collect(),
            },
        };
        let envelope = Envelope {
            r#type: self.event_type().as_str(),
            timestamp: at,
            data,
        };
        // Plain structs of strings and numbers: serializing cannot fail (a NaN
        // similarity becomes `null`).
        serde_json::to_string(&envelope).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct Envelope {
    r#type: &'static str,
    timestamp: Timestamp,
    data: Data,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Data {
    ArticleClustered {
        article: String,
        cluster: String,
        similarity: f32,
    },
    Cluster(ClusterData),
    Merged {
        from: String,
        into: ClusterData,
    },
    Split {
        from: String,
        into: ClusterData,
        articles: Vec<String>,
    },
}

#[derive(Serialize)]
struct ClusterData {
    id: String,
    size: u64,
    languages: Vec<Lang>,
    first_published: Option<Timestamp>,
    last_published: Option<Timestamp>,
    label_article: Option<String>,
    status: ClusterStatus,
    merged_into: Option<String>,
}

impl From<&ClusterRecord> for ClusterData {
    fn from(c: &ClusterRecord) -> Self {
        Self {
            id: c.id.to_string(),
            size: c.size,
            languages: c.languages.clone(),
            first_published: c.first_published,
            last_published: c.last_published,
            label_article: c.label_article.map(|a| a.to_string()),
            status: c.status,
            merged_into: c.merged_into.map(|m| m.to_string()),
        }
    }
}

/// The `webhook-id` of an outbox event: the same on every attempt and replay, so a
/// receiver can use it as an idempotency key.
pub fn webhook_id(outbox_seq: u64) -> String {
    format!("msg_{outbox_seq}")
}

/// An endpoint and what it wants to receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub url: String,
    /// Sorted, without duplicates.
    pub event_types: Vec<EventType>,
    /// The `whsec_...` signing secret; its `Debug` is redacted.
    pub secret: SecretString,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why the dispatcher disabled it (e.g. the endpoint answered 410 Gone).
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Subscription {
    pub fn wants(&self, event_type: EventType) -> bool {
        self.event_types.contains(&event_type)
    }
}

/// A subscription to create. The URL must already have passed the target policy.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscription {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub secret: SecretString,
    pub description: Option<String>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionUpdate {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    /// Enabling clears `disabled_reason`; disabling fails its pending deliveries.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or in flight).
    Pending,
    Succeeded,
    /// Out of attempts, or its subscription was disabled.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One outbox event on its way to one subscription: the delivery log's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub subscription: SubscriptionId,
    pub outbox_seq: u64,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Attempts made so far (a replay starts again from 0).
    pub attempts: u32,
    /// When a pending delivery is next tried. While an attempt is in flight this is
    /// the end of its claim: should the process die, the delivery is tried again then.
    pub next_attempt_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    /// The HTTP status of the last attempt, when it got an answer.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Delivery {
    pub fn webhook_id(&self) -> String {
        webhook_id(self.outbox_seq)
    }
}

/// A claimed delivery with everything needed to attempt it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub id: DeliveryId,
    pub subscription: SubscriptionId,
    pub outbox_seq: u64,
    /// Attempts made before this one.
    pub attempts: u32,
    pub url: String,
    pub secret: SecretString,
    pub event_type: EventType,
    /// The exact body to send (and sign).
    pub payload: String,
}

impl DueDelivery {
    pub fn webhook_id(&self) -> String {
        webhook_id(self.outbox_seq)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Succeeded { status: u16 },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        status: Option<u16>,
        error: String,
        next_attempt_at: Timestamp,
    },
    /// Failed for good (out of attempts).
    Failed { status: Option<u16>, error: String },
    /// The endpoint asked not to be called again (410 Gone): the subscription is
    /// disabled with `reason` and its pending deliveries fail.
    DisableSubscription { status: Option<u16>, reason: String },
}

/// A page of one subscription's deliveries, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryQuery {
    pub subscription: SubscriptionId,
    pub status: Option<DeliveryStatus>,
    /// Keyset cursor: only deliveries older (smaller id) than this.
    pub before: Option<DeliveryId>,
    pub limit: usize,
}

/// What [`Db::prune_webhooks`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Outbox rows (their deliveries went with them).
    pub outbox: u64,
    pub inbound: u64,
}

fn corrupt(table: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.into(),
    }
}

fn join_types(types: &[EventType]) -> String {
    let mut types = types.to_vec();
    types.sort();
    types.dedup();
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn split_types(table: &'static str, s: &str) -> Result<Vec<EventType>, StoreError> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| EventType::parse(t).map_err(|e| corrupt(table, e.to_string())))
        .collect()
}

const SUBSCRIPTION_COLUMNS: &str = "id, url, event_types, secret, description, enabled, \
     disabled_reason, created_at, updated_at";

fn subscription_from_row(row: &Row<'_>) -> Result<Subscription, StoreError> {
    let id: i64 = row.get(0)?;
    let types: String = row.get(2)?;
    let secret: String = row.get(3)?;
    Ok(Subscription {
        id: SubscriptionId(id as u64),
        url: row.get(1)?,
        event_types: split_types("subscriptions", &types)?,
        secret: SecretString::new(secret),
        description: row.get(4)?,
        enabled: row.get(5)?,
        disabled_reason: row.get(6)?,
        created_at: from_millis("subscriptions", row.get(7)?)?,
        updated_at: from_millis("subscriptions", row.get(8)?)?,
    })
}

const DELIVERY_COLUMNS: &str = "d.id, d.subscription_id, d.outbox_seq, o.event_type, d.status, \
     d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, \
     d.created_at, d.updated_at";

fn delivery_from_row(row: &Row<'_>) -> Result<Delivery, StoreError> {
    const T: &str = "deliveries";
    let event_type: String = row.get(3)?;
    let status: String = row.get(4)?;
    let attempts: i64 = row.get(5)?;
    let last_attempt: Option<i64> = row.get(7)?;
    let last_status: Option<i64> = row.get(8)?;
    Ok(Delivery {
        id: DeliveryId(row.get::<i64>(0)? as u64),
        subscription: SubscriptionId(row.get::<i64>(1)? as u64),
        outbox_seq: row.get::<i64>(2)? as u64,
        event_type: EventType::parse(&event_type).map_err(|e| corrupt(T, e.to_string()))?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(T, format!("unknown status {status:?}")))?,
        attempts: u32::try_from(attempts).map_err(|e| corrupt(T, e.to_string()))?,
        next_attempt_at: from_millis(T, row.get(6)?)?,
        last_attempt_at: last_attempt.map(|t| from_millis(T, t)).transpose()?,
        last_status: last_status
            .map(u16::try_from)
            .transpose()
            .map_err(|e| corrupt(T, e.to_string()))?,
        last_error: row.get(9)?,
        created_at: from_millis(T, row.get(10)?)?,
        updated_at: from_millis(T, row.get(11)?)?,
    })
}

/// One subscription; `lock` holds its row until the transaction ends (PostgreSQL) when
/// what is written next depends on what was read.
fn subscription_by_id(
    conn: Conn<'_>,
    id: SubscriptionId,
    lock: bool,
) -> Result<Option<Subscription>, StoreError> {
    let lock = if lock {
        conn.dialect().for_update()
    } else {
        ""
    };
    conn.query_opt(
        &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = ?1{lock}"),
        values![id.0 as i64],
        subscription_from_row,
    )
}

fn delivery_by_id(conn: Conn<'_>, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
    conn.query_opt(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq
             WHERE d.id = ?1"
        ),
        values![id.0 as i64],
        delivery_from_row,
    )
}

fn record_inbound(
    conn: Conn<'_>,
    webhook_id: &str,
    article: ArticleId,
    at: Timestamp,
) -> Result<Option<ArticleId>, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO inbound_webhooks (webhook_id, received_at, article_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (webhook_id) DO NOTHING",
        values![webhook_id, millis(at), article.0 as i64],
    )?;
    if inserted == 1 {
        return Ok(None);
    }
    inbound_article(conn, webhook_id)
}

fn inbound_article(conn: Conn<'_>, webhook_id: &str) -> Result<Option<ArticleId>, StoreError> {
    let id: Option<i64> = conn.query_opt(
        "SELECT article_id FROM inbound_webhooks WHERE webhook_id = ?1",
        values![webhook_id],
        |r| r.get(0),
    )?;
    Ok(id.map(|a| ArticleId(a as u64)))
}

impl Tx<'_> {
    /// Writes `event` to the outbox, in the caller's transaction; returns its sequence
    /// number. The dispatcher fans it out after the commit.
    pub fn emit(&self, event: &OutboxEvent, at: Timestamp) -> Result<u64, StoreError> {
        let seq: i64 = self.conn.query_one(
            "INSERT INTO outbox (event_type, payload, created_at) VALUES (?1, ?2, ?3)
             RETURNING seq",
            values![event.event_type().as_str(), &event.payload(at), millis(at)],
            |r| r.get(0),
        )?;
        Ok(seq as u64)
    }

    pub fn create_subscription(
        &self,
        s: &NewSubscription,
        now: Timestamp,
    ) -> Result<Subscription, StoreError> {
        let id: i64 = self.conn.query_one(
            "INSERT INTO subscriptions (url, event_types, secret, description, enabled,
                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             RETURNING id",
            values![
                &s.url,
                &join_types(&s.event_types),
                s.secret.expose(),
                &s.description,
                true,
                millis(now)
            ],
            |r| r.get(0),
        )?;
        let id = SubscriptionId(id as u64);
        subscription_by_id(self.conn, id, false)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    pub fn update_subscription(
        &self,
        id: SubscriptionId,
        u: &SubscriptionUpdate,
        now: Timestamp,
    ) -> Result<Subscription, StoreError> {
        let current = subscription_by_id(self.conn, id, true)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let url = u.url.as_ref().unwrap_or(&current.url);
        let types = u.event_types.as_ref().unwrap_or(&current.event_types);
        let description = u.description.as_ref().unwrap_or(&current.description);
        let enabled = u.enabled.unwrap_or(current.enabled);
        let reason = if enabled {
            None
        } else {
            current.disabled_reason.as_deref()
        };
        self.conn.execute(
            "UPDATE subscriptions SET url = ?2, event_types = ?3, description = ?4,
                enabled = ?5, disabled_reason = ?6, updated_at = ?7
             WHERE id = ?1",
            values![
                id.0 as i64,
                url,
                &join_types(types),
                description,
                enabled,
                reason,
                millis(now)
            ],
        )?;
        if current.enabled && !enabled {
            self.fail_pending(id, "subscription disabled", now)?;
        }
        subscription_by_id(self.conn, id, false)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Deletes a subscription and its delivery log; `false` if there was none.
    pub fn delete_subscription(&self, id: SubscriptionId) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM subscriptions WHERE id = ?1",
            values![id.0 as i64],
        )? == 1)
    }

    fn fail_pending(
        &self,
        id: SubscriptionId,
        error: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.conn.execute(
            "UPDATE deliveries SET status = 'failed', last_error = ?2, updated_at = ?3
             WHERE subscription_id = ?1 AND status = 'pending'",
            values![id.0 as i64, error, millis(now)],
        )
    }

    /// One pending delivery, due now, per enabled subscription that wants the event,
    /// for every outbox row not yet fanned out; those rows are then marked fanned out.
    /// Returns how many deliveries were created.
    pub fn fan_out(&self, now: Timestamp) -> Result<u64, StoreError> {
        let wanted = self
            .conn
            .dialect()
            .list_contains("s.event_types", "o.event_type");
        match self.conn.dialect() {
            // One writer at a time: what the insert read is what the update marks.
            Dialect::Sqlite => {
                let created = self.conn.execute(
                    &format!(
                        "INSERT INTO deliveries (subscription_id, outbox_seq, status, attempts,
                            next_attempt_at, created_at, updated_at)
                         SELECT s.id, o.seq, 'pending', 0, ?1, ?1, ?1
                         FROM outbox o JOIN subscriptions s ON s.enabled AND {wanted}
                         WHERE o.fanned_out = 0
                         ORDER BY o.seq, s.id"
                    ),
                    values![millis(now)],
                )?;
                self.conn.execute(
                    "UPDATE outbox SET fanned_out = 1 WHERE fanned_out = 0",
                    values![],
                )?;
                Ok(created)
            }
            // Writers side by side: rows are claimed and fanned out in one statement, so
            // a row committed meanwhile is neither marked without its deliveries nor
            // fanned out twice by two dispatchers (the second waits for the first's
            // row locks, then finds them fanned out).
            Dialect::Postgres => self.conn.execute(
                &format!(
                    "WITH o AS (UPDATE outbox SET fanned_out = TRUE WHERE NOT fanned_out
                                RETURNING seq, event_type)
                     INSERT INTO deliveries (subscription_id, outbox_seq, status, attempts,
                        next_attempt_at, created_at, updated_at)
                     SELECT s.id, o.seq, 'pending', 0, ?1, ?1, ?1
                     FROM o JOIN subscriptions s ON s.enabled AND {wanted}
                     ORDER BY o.seq, s.id"
                ),
                values![millis(now)],
            ),
        }
    }

    /// Deletes outbox rows created before `before` (with their delivery log) once they
    /// are fanned out and none of their deliveries is pending, and inbound webhook ids
    /// received before it.
    pub fn prune_webhooks(&self, before: Timestamp) -> Result<Pruned, StoreError> {
        let outbox = self.conn.execute(
            "DELETE FROM outbox WHERE created_at < ?1 AND fanned_out
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.outbox_seq = outbox.seq AND d.status = 'pending')",
            values![millis(before)],
        )?;
        let inbound = self.conn.execute(
            "DELETE FROM inbound_webhooks WHERE received_at < ?1",
            values![millis(before)],
        )?;
        Ok(Pruned { outbox, inbound })
    }

    /// Up to `limit` pending deliveries of enabled subscriptions due at `now`, oldest
    /// due first. Each is leased until `lease_until` (its `next_attempt_at`), so it is
    /// not claimed twice, and is tried again then should its outcome never be recorded.
    /// On PostgreSQL, dispatchers claiming at the same time skip each other's rows
    /// (`FOR UPDATE SKIP LOCKED`) instead of waiting for them.
    pub fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let lock = match self.conn.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE OF d SKIP LOCKED",
        };
        let out = self.conn.query_vec(
            &format!(
                "SELECT d.id, d.subscription_id, d.outbox_seq, d.attempts, s.url, s.secret,
                        o.event_type, o.payload
                 FROM deliveries d
                 JOIN subscriptions s ON s.id = d.subscription_id
                 JOIN outbox o ON o.seq = d.outbox_seq
                 WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND s.enabled
                 ORDER BY d.next_attempt_at, d.id
                 LIMIT ?2{lock}"
            ),
            values![millis(now), limit as i64],
            |r| {
                let attempts: i64 = r.get(3)?;
                let event_type: String = r.get(6)?;
                Ok(DueDelivery {
                    id: DeliveryId(r.get::<i64>(0)? as u64),
                    subscription: SubscriptionId(r.get::<i64>(1)? as u64),
                    outbox_seq: r.get::<i64>(2)? as u64,
                    attempts: u32::try_from(attempts)
                        .map_err(|e| corrupt("deliveries", e.to_string()))?,
                    url: r.get(4)?,
                    secret: SecretString::new(r.get::<String>(5)?),
                    event_type: EventType::parse(&event_type)
                        .map_err(|e| corrupt("outbox", e.to_string()))?,
                    payload: r.get(7)?,
                })
            },
        )?;
        for d in &out {
            self.conn.execute(
                "UPDATE deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                values![d.id.0 as i64, millis(lease_until)],
            )?;
        }
        Ok(out)
    }

    /// Records one attempt of `id` made at `at`. A delivery deleted meanwhile (with its
    /// subscription) is ignored.
    pub fn record_attempt(
        &self,
        id: DeliveryId,
        at: Timestamp,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        let (status, next, code, error) = match outcome {
            AttemptOutcome::Succeeded { status } => {
                (DeliveryStatus::Succeeded, None, Some(*status), None)
            }
            AttemptOutcome::Retry {
                status,
                error,
                next_attempt_at,
            } => (
                DeliveryStatus::Pending,
                Some(*next_attempt_at),
                *status,
                Some(error.as_str()),
            ),
            AttemptOutcome::Failed { status, error } => {
                (DeliveryStatus::Failed, None, *status, Some(error.as_str()))
            }
            AttemptOutcome::DisableSubscription { status, reason } => {
                (DeliveryStatus::Failed, None, *status, Some(reason.as_str()))
            }
        };
        let subscription: Option<i64> = self.conn.query_opt(
            "UPDATE deliveries SET status = ?2, attempts = attempts + 1,
                next_attempt_at = coalesce(?3, next_attempt_at), last_attempt_at = ?4,
                last_status = ?5, last_error = ?6, updated_at = ?4
             WHERE id = ?1
             RETURNING subscription_id",
            values![
                id.0 as i64,
                status.as_str(),
                next.map(millis),
                millis(at),
                code.map(i64::from),
                error
            ],
            |r| r.get(0),
        )?;
        if let (Some(sub), AttemptOutcome::DisableSubscription { reason, .. }) =
            (subscription, outcome)
        {
            let sub = SubscriptionId(sub as u64);
            self.conn.execute(
                "UPDATE subscriptions SET enabled = ?2, disabled_reason = ?3, updated_at = ?4
                 WHERE id = ?1",
                values![sub.0 as i64, false, reason, millis(at)],
            )?;
            self.fail_pending(sub, &format!("subscription disabled: {reason}"), at)?;
        }
        Ok(())
    }

    /// Sends a delivery again: pending, due `now`, with a fresh count of attempts.
    pub fn replay_delivery(&self, id: DeliveryId, now: Timestamp) -> Result<Delivery, StoreError> {
        let n = self.conn.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?2,
                updated_at = ?2
             WHERE id = ?1",
            values![id.0 as i64, millis(now)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(id.to_string()));
        }
        delivery_by_id(self.conn, id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// New pending deliveries, due `now`, to `subscription` of every fanned-out outbox
    /// event created in `[from, to)` that it wants and has no pending delivery of.
    /// Returns how many were created.
    pub fn replay_range(
        &self,
        subscription: SubscriptionId,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        // Locked (PostgreSQL): two replays at once would both find no pending delivery.
        if subscription_by_id(self.conn, subscription, true)?.is_none() {
            return Err(StoreError::NotFound(subscription.to_string()));
        }
        let wanted = self
            .conn
            .dialect()
            .list_contains("s.event_types", "o.event_type");
        self.conn.execute(
            &format!(
                "INSERT INTO deliveries (subscription_id, outbox_seq, status, attempts,
                    next_attempt_at, created_at, updated_at)
                 SELECT s.id, o.seq, 'pending', 0, ?4, ?4, ?4
                 FROM outbox o JOIN subscriptions s ON s.id = ?1
                 WHERE o.created_at >= ?2 AND o.created_at < ?3 AND o.fanned_out
                   AND {wanted}
                   AND NOT EXISTS (SELECT 1 FROM deliveries d
                                   WHERE d.subscription_id = s.id AND d.outbox_seq = o.seq
                                     AND d.status = 'pending')
                 ORDER BY o.seq"
            ),
            values![subscription.0 as i64, millis(from), millis(to), millis(now)],
        )
    }

    /// Remembers that inbound webhook `webhook_id` created `article`. If the id was
    /// seen already, nothing is written and the article it created then is returned.
    pub fn record_inbound(
        &self,
        webhook_id: &str,
        article: ArticleId,
        at: Timestamp,
    ) -> Result<Option<ArticleId>, StoreError> {
        record_inbound(self.conn, webhook_id, article, at)
    }

    pub fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        subscription_by_id(self.conn, id, false)
    }
}

impl Db {
    pub fn create_subscription(
        &mut self,
        s: &NewSubscription,
        now: Timestamp,
    ) -> Result<Subscription, StoreError> {
        self.transaction(|tx| tx.create_subscription(s, now))
    }

    pub fn subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>, StoreError> {
        subscription_by_id(self.c(), id, false)
    }

    /// Every subscription, oldest first.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.c().query_vec(
            &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY id"),
            values![],
            subscription_from_row,
        )
    }

    pub fn update_subscription(
        &mut self,
        id: SubscriptionId,
        u: &SubscriptionUpdate,
        now: Timestamp,
    ) -> Result<Subscription, StoreError> {
        self.transaction(|tx| tx.update_subscription(id, u, now))
    }

    pub fn delete_subscription(&mut self, id: SubscriptionId) -> Result<bool, StoreError> {
        self.transaction(|tx| tx.delete_subscription(id))
    }

    pub fn fan_out(&mut self, now: Timestamp) -> Result<u64, StoreError> {
        self.transaction(|tx| tx.fan_out(now))
    }

    pub fn prune_webhooks(&mut self, before: Timestamp) -> Result<Pruned, StoreError> {
        self.transaction(|tx| tx.prune_webhooks(before))
    }

    pub fn claim_due(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.transaction(|tx| tx.claim_due(now, lease_until, limit))
    }

    /// When the earliest pending delivery of an enabled subscription is due.
    pub fn next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let ms: Option<i64> = self.c().query_one(
            "SELECT min(d.next_attempt_at) FROM deliveries d
             JOIN subscriptions s ON s.id = d.subscription_id
             WHERE d.status = 'pending' AND s.enabled",
            values![],
            |r| r.get(0),
        )?;
        ms.map(|ms| from_millis("deliveries", ms)).transpose()
    }

    pub fn record_attempt(
        &mut self,
        id: DeliveryId,
        at: Timestamp,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.record_attempt(id, at, outcome))
    }

    pub fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        delivery_by_id(self.c(), id)
    }

    /// One page of a subscription's deliveries, newest first.
    pub fn deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        self.c().query_vec(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq
                 WHERE d.subscription_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR d.status = ?2)
                   AND (CAST(?3 AS BIGINT) IS NULL OR d.id < ?3)
                 ORDER BY d.id DESC LIMIT ?4"
            ),
            values![
                q.subscription.0 as i64,
                q.status.map(DeliveryStatus::as_str),
                q.before.map(|b| b.0 as i64),
                q.limit as i64
            ],
            delivery_from_row,
        )
    }

    pub fn replay_delivery(
        &mut self,
        id: DeliveryId,
        now: Timestamp,
    ) -> Result<Delivery, StoreError> {
        self.transaction(|tx| tx.replay_delivery(id, now))
    }

    pub fn replay_range(
        &mut self,
        subscription: SubscriptionId,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.transaction(|tx| tx.replay_range(subscription, from, to, now))
    }

    /// See [`Tx::record_inbound`].
    pub fn record_inbound(
        &self,
        webhook_id: &str,
        article: ArticleId,
        at: Timestamp,
    ) -> Result<Option<ArticleId>, StoreError> {
        record_inbound(self.c(), webhook_id, article, at)
    }

    /// The article an inbound webhook id created, if it was seen (and not yet pruned).
    pub fn inbound_article(&self, webhook_id: &str) -> Result<Option<ArticleId>, StoreError> {
        inbound_article(self.c(), webhook_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{
        NewArticle, content_hash,
        testing::{Backend, on_both_backends},
    };

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ms(base: Timestamp, n: i64) -> Timestamp {
        base + jiff::SignedDuration::from_millis(n)
    }

    fn cluster(id: u64) -> ClusterRecord {
        ClusterRecord {
            id: ClusterId(id),
            status: ClusterStatus::Active,
            merged_into: None,
            created_at: t("2024-05-01T10:00:00Z"),
            updated_at: t("2024-05-01T11:00:00Z"),
            first_published: Some(t("2024-05-01T09:00:00Z")),
            last_published: Some(t("2024-05-01T10:30:00Z")),
            size: 2,
            languages: vec![Lang::parse("en").unwrap(), Lang::parse("fr").unwrap()],
            label_article: Some(ArticleId(5)),
        }
    }

    fn subscribe(db: &mut Db, types: &[EventType], now: Timestamp) -> Subscription {
        db.create_subscription(
            &NewSubscription {
                url: "https://hooks.example.com/concord".into(),
                event_types: types.to_vec(),
                secret: SecretString::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
                description: Some("test".into()),
            },
            now,
        )
        .unwrap()
    }

    fn emit(db: &mut Db, event: &OutboxEvent, at: Timestamp) -> u64 {
        db.transaction(|tx| tx.emit(event, at)).unwrap()
    }

    fn updated(id: u64) -> OutboxEvent {
        OutboxEvent::ClusterUpdated {
            cluster: cluster(id),
        }
    }

    #[test]
    fn event_types_round_trip_by_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Ok(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
            assert_eq!(t.to_string().parse::<EventType>(), Ok(t));
        }
        assert!(EventType::parse("cluster.deleted").is_err());
    }

    #[test]
    fn payloads_follow_the_standard_webhooks_shape() {
        let at = t("2024-05-01T12:00:00.250Z");
        let v: serde_json::Value = serde_json::from_str(&updated(3).payload(at)).unwrap();
        assert_eq!(v["type"], "cluster.updated");
        assert_eq!(v["timestamp"], "2024-05-01T12:00:00.25Z");
        let data = &v["data"];
        assert_eq!(data["id"], "c3");
        assert_eq!(data["size"], 2);
        assert_eq!(data["languages"], serde_json::json!(["en", "fr"]));
        assert_eq!(data["first_published"], "2024-05-01T09:00:00Z");
        assert_eq!(data["label_article"], "a5");
        assert_eq!(data["status"], "active");
        assert_eq!(data["merged_into"], serde_json::Value::Null);

        let clustered = OutboxEvent::ArticleClustered {
            article: ArticleId(7),
            cluster: ClusterId(3),
            similarity: 0.8,
        };
        let body = clustered.payload(at);
        assert!(body.contains(r#""similarity":0.8"#), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "article.clustered");
        assert_eq!(v["data"]["article"], "a7");
        assert_eq!(v["data"]["cluster"], "c3");

        let split = OutboxEvent::ClusterSplit {
            from: ClusterId(2),
            into: cluster(9),
            articles: vec![ArticleId(1), ArticleId(4)],
        };
        let v: serde_json::Value = serde_json::from_str(&split.payload(at)).unwrap();
        assert_eq!(v["type"], "cluster.split");
        assert_eq!(v["data"]["from"], "c2");
        assert_eq!(v["data"]["into"]["id"], "c9");
        assert_eq!(v["data"]["articles"], serde_json::json!(["a1", "a4"]));

        let merged = OutboxEvent::ClusterMerged {
            from: ClusterId(4),
            into: cluster(1),
        };
        assert_eq!(merged.event_type(), EventType::ClusterMerged);
        let v: serde_json::Value = serde_json::from_str(&merged.payload(at)).unwrap();
        assert_eq!(v["data"]["from"], "c4");
        assert_eq!(v["data"]["into"]["id"], "c1");
    }

    fn subscriptions_are_created_read_updated_and_deleted(b: Backend) {
        let (_scratch, mut db) = b.db("subscriptions_are_created_read");
        let now = t("2024-05-01T12:00:00Z");
        let s = subscribe(
            &mut db,
            &[
                EventType::ClusterUpdated,
                EventType::ArticleClustered,
                EventType::ClusterUpdated,
            ],
            now,
        );
        assert_eq!(
            s.event_types,
            vec![EventType::ArticleClustered, EventType::ClusterUpdated]
        );
        assert!(s.enabled && s.wants(EventType::ClusterUpdated));
        assert!(!s.wants(EventType::ClusterMerged));
        assert!(!format!("{s:?}").contains("C2FVsBQI"), "secret in Debug");
        assert_eq!(db.subscription(s.id).unwrap().as_ref(), Some(&s));

        let later = ms(now, 1000);
        let u = db
            .update_subscription(
                s.id,
                &SubscriptionUpdate {
                    url: Some("https://other.example.com/".into()),
                    event_types: Some(vec![EventType::ClusterMerged]),
                    description: Some(None),
                    enabled: Some(false),
                },
                later,
            )
            .unwrap();
        assert_eq!(u.url, "https://other.example.com/");
        assert_eq!(u.event_types, vec![EventType::ClusterMerged]);
        assert_eq!(u.description, None);
        assert!(!u.enabled);
        assert_eq!(u.updated_at, later);
        assert_eq!(u.secret, s.secret);

        let other = subscribe(&mut db, &[EventType::ClusterCreated], now);
        let ids: Vec<_> = db.subscriptions().unwrap().iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![s.id, other.id]);

        assert!(db.delete_subscription(s.id).unwrap());
        assert!(!db.delete_subscription(s.id).unwrap());
        assert_eq!(db.subscription(s.id).unwrap(), None);
        assert!(matches!(
            db.update_subscription(s.id, &SubscriptionUpdate::default(), later),
            Err(StoreError::NotFound(_))
        ));
    }

    fn fan_out_makes_one_delivery_per_enabled_subscription_that_wants_the_event(b: Backend) {
        let (_scratch, mut db) = b.db("fan_out_makes_one_delivery_per");
        let now = t("2024-05-01T12:00:00Z");
        let updates = subscribe(&mut db, &[EventType::ClusterUpdated], now);
        let clustered = subscribe(&mut db, &[EventType::ArticleClustered], now);
        let off = subscribe(&mut db, &EventType::ALL, now);
        db.update_subscription(
            off.id,
            &SubscriptionUpdate {
                enabled: Some(false),
                ..Default::default()
            },
            now,
        )
        .unwrap();

        let seq = emit(&mut db, &updated(3), now);
        emit(
            &mut db,
            &OutboxEvent::ClusterCreated {
                cluster: cluster(4),
            },
            now,
        );
        assert_eq!(db.fan_out(now).unwrap(), 1);
        assert_eq!(db.fan_out(now).unwrap(), 0, "fanned out once only");

        let page = |db: &Db, sub| {
            db.deliveries(&DeliveryQuery {
                subscription: sub,
                status: None,
                before: None,
                limit: 10,
            })
            .unwrap()
        };
        let got = page(&db, updates.id);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].outbox_seq, seq);
        assert_eq!(got[0].webhook_id(), format!("msg_{seq}"));
        assert_eq!(got[0].event_type, EventType::ClusterUpdated);
        assert_eq!(got[0].status, DeliveryStatus::Pending);
        assert_eq!(got[0].attempts, 0);
        assert!(page(&db, clustered.id).is_empty());
        assert!(page(&db, off.id).is_empty());
    }

    fn claims_lease_deliveries_and_attempts_are_recorded(b: Backend) {
        let (_scratch, mut db) = b.db("claims_lease_deliveries_and_at");
        let now = t("2024-05-01T12:00:00Z");
        let s = subscribe(&mut db, &[EventType::ClusterUpdated], now);
        let seq = emit(&mut db, &updated(3), now);
        db.fan_out(now).unwrap();
        assert_eq!(db.next_due_at().unwrap(), Some(now));

        let lease = ms(now, 30_000);
        let claimed = db.claim_due(now, lease, 10).unwrap();
        assert_eq!(claimed.len(), 1);
        let d = &claimed[0];
        assert_eq!((d.subscription, d.outbox_seq, d.attempts), (s.id, seq, 0));
        assert_eq!(d.url, s.url);
        assert_eq!(d.secret, s.secret);
        assert_eq!(d.payload, updated(3).payload(now));
        assert!(db.claim_due(now, lease, 10).unwrap().is_empty(), "leased");
        assert_eq!(db.claim_due(lease, ms(lease, 1), 10).unwrap().len(), 1);

        let retry_at = ms(now, 5000);
        db.record_attempt(
            d.id,
            ms(now, 10),
            &AttemptOutcome::Retry {
                status: Some(500),
                error: "http 500".into(),
                next_attempt_at: retry_at,
            },
        )
        .unwrap();
        let after = db.delivery(d.id).unwrap().unwrap();
        assert_eq!(after.status, DeliveryStatus::Pending);
        assert_eq!(after.attempts, 1);
        assert_eq!(after.next_attempt_at, retry_at);
        assert_eq!(after.last_status, Some(500));
        assert_eq!(after.last_error.as_deref(), Some("http 500"));
        assert!(
            db.claim_due(ms(retry_at, -1), lease, 10)
                .unwrap()
                .is_empty()
        );

        let again = db.claim_due(retry_at, lease, 10).unwrap();
        assert_eq!(again[0].attempts, 1);
        db.record_attempt(d.id, retry_at, &AttemptOutcome::Succeeded { status: 204 })
            .unwrap();
        let done = db.delivery(d.id).unwrap().unwrap();
        assert_eq!(done.status, DeliveryStatus::Succeeded);
        assert_eq!((done.attempts, done.last_status), (2, Some(204)));
        assert_eq!(done.last_error, None);
        assert_eq!(db.next_due_at().unwrap(), None);

        // Outcomes for deliveries deleted meanwhile are ignored.
        db.delete_subscription(s.id).unwrap();
        db.record_attempt(d.id, retry_at, &AttemptOutcome::Succeeded { status: 200 })
            .unwrap();
    }

    fn gone_disables_the_subscription_and_fails_its_pending_deliveries(b: Backend) {
        let (_scratch, mut db) = b.db("gone_disables_the_subscription");
        let now = t("2024-05-01T12:00:00Z");
        let s = subscribe(&mut db, &[EventType::ClusterUpdated], now);
        emit(&mut db, &updated(3), now);
        emit(&mut db, &updated(4), now);
        db.fan_out(now).unwrap();
        let claimed = db.claim_due(now, ms(now, 1000), 1).unwrap();
        db.record_attempt(
            claimed[0].id,
            now,
            &AttemptOutcome::DisableSubscription {
                status: Some(410),
                reason: "endpoint answered 410 gone".into(),
            },
        )
        .unwrap();
        let s = db.subscription(s.id).unwrap().unwrap();
        assert!(!s.enabled);
        assert_eq!(
            s.disabled_reason.as_deref(),
            Some("endpoint answered 410 gone")
        );
        let all = db
            .deliveries(&DeliveryQuery {
                subscription: s.id,
                status: Some(DeliveryStatus::Failed),
                before: None,
                limit: 10,
            })
            .unwrap();
        assert_eq!(all.len(), 2);
        assert!(
            db.claim_due(ms(now, 5000), ms(now, 6000), 10)
                .unwrap()
                .is_empty()
        );

        // New events are not fanned out to it; enabling clears the reason.
        emit(&mut db, &updated(5), now);
        assert_eq!(db.fan_out(now).unwrap(), 0);
        let s = db
            .update_subscription(
                s.id,
                &SubscriptionUpdate {
                    enabled: Some(true),
                    ..Default::default()
                },
                now,
            )
            .unwrap();
        assert!(s.enabled && s.disabled_reason.is_none());
    }

    fn deliveries_page_newest_first_with_a_status_filter(b: Backend) {
        let (_scratch, mut db) = b.db("deliveries_page_newest_first_w");
        let now = t("2024-05-01T12:00:00Z");
        let s = subscribe(&mut db, &[EventType::ClusterUpdated], now);
        for c in 0..5 {
            emit(&mut db, &updated(c), now);
        }
        db.fan_out(now).unwrap();
        let q = |status, before| DeliveryQuery {
            subscription: s.id,
            status,
            before,
            limit: 2,
        };
        let first = db.deliveries(&q(None, None)).unwrap();
        let second = db.deliveries(&q(None, Some(first[1].id))).unwrap();
        let third = db.deliveries(&q(None, Some(second[1].id))).unwrap();
        let ids: Vec<u64> = [first, second, third]
            .concat()
            .iter()
            .map(|d| d.id.0)
            .collect();
        assert_eq!(ids.len(), 5);
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

        db.record_attempt(
            DeliveryId(ids[2]),
            now,
            &AttemptOutcome::Failed {
                status: None,
                error: "connection refused".into(),
            },
        )
        .unwrap();
        let failed = db
            .deliveries(&q(Some(DeliveryStatus::Failed), None))
            .unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].id.0, ids[2]);
        assert_eq!(failed[0].last_status, None);
        let pending = db
            .deliveries(&q(Some(DeliveryStatus::Pending), Some(DeliveryId(ids[1]))))
            .unwrap();
        let pending: Vec<u64> = pending.iter().map(|d| d.id.0).collect();
        assert_eq!(pending, vec![ids[3], ids[4]]);
    }

    fn deliveries_replay_one_or_a_time_range(b: Backend) {
        let (_scratch, mut db) = b.db("deliveries_replay_one_or_a_tim");
        let t0 = t("2024-05-01T12:00:00Z");
        let s = subscribe(&mut db, &[EventType::ClusterUpdated], t0);
        for i in 0..3 {
            emit(&mut db, &updated(i), ms(t0, i as i64 * 1000));
        }
        emit(
            &mut db,
            &OutboxEvent::ClusterCreated {
                cluster: cluster(9),
            },
            ms(t0, 1500),
        );
        db.fan_out(t0).unwrap();
        let claimed = db.claim_due(t0, ms(t0, 100), 10).unwrap();
        assert_eq!(claimed.len(), 3);
        for d in &claimed {
            db.record_attempt(
                d.id,
                t0,
                &AttemptOutcome::Failed {
                    status: Some(500),
                    error: "http 500".into(),
                },
            )
            .unwrap();
        }

        let later = ms(t0, 60_000);
        let replayed = db.replay_delivery(claimed[0].id, later).unwrap();
        assert_eq!(replayed.status, DeliveryStatus::Pending);
        assert_eq!((replayed.attempts, replayed.next_attempt_at), (0, later));
        assert!(matches!(
            db.replay_delivery(DeliveryId(999), later),
            Err(StoreError::NotFound(_))
        ));

        // [t0+1s, t0+3s) holds two cluster.updated events and one cluster.created it
        // does not want.
        let n = db
            .replay_range(s.id, ms(t0, 1000), ms(t0, 3000), later)
            .unwrap();
        assert_eq!(n, 2);
        let n = db
            .replay_range(s.id, ms(t0, 0), ms(t0, 3000), later)
            .unwrap();
        assert_eq!(n, 0, "every event in range has a pending delivery already");
        let due = db.claim_due(later, ms(later, 100), 10).unwrap();
        let mut seqs: Vec<u64> = due.iter().map(|d| d.outbox_seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(due.len(), 3);
        assert_eq!(seqs.len(), 3);
        assert!(matches!(
            db.replay_range(SubscriptionId(99), t0, later, later),
            Err(StoreError::NotFound(_))
        ));
    }

    fn pruning_keeps_pending_and_recent_events_and_never_reuses_numbers(b: Backend) {
        let (_scratch, mut db) = b.db("pruning_keeps_pending_and_rece");
        let t0 = t("2024-05-01T12:00:00Z");
        let s = subscribe(&mut db, &[EventType::ClusterUpdated], t0);
        let old_done = emit(&mut db, &updated(1), t0);
        let old_pending = emit(&mut db, &updated(2), t0);
        db.fan_out(t0).unwrap();
        let claimed = db.claim_due(t0, t0, 1).unwrap();
        assert_eq!(claimed[0].outbox_seq, old_done);
        db.record_attempt(
            claimed[0].id,
            t0,
            &AttemptOutcome::Succeeded { status: 200 },
        )
        .unwrap();
        let recent = emit(&mut db, &updated(3), ms(t0, 10_000));
        let unfanned = emit(&mut db, &updated(4), t0);

        let pruned = db.prune_webhooks(ms(t0, 5000)).unwrap();
        assert_eq!(pruned.outbox, 1);
        let left: Vec<u64> = db
            .deliveries(&DeliveryQuery {
                subscription: s.id,
                status: None,
                before: None,
                limit: 10,
            })
            .unwrap()
            .iter()
            .map(|d| d.outbox_seq)
            .collect();
        assert_eq!(left, vec![old_pending]);
        assert!(recent > old_pending && unfanned > recent);

        // Pruning everything must not let a later event take an old number.
        db.fan_out(t0).unwrap();
        db.delete_subscription(s.id).unwrap();
        db.prune_webhooks(ms(t0, 60_000)).unwrap();
        let next = emit(&mut db, &updated(5), t0);
        assert!(next > unfanned, "{next} reused");
    }

    fn inbound_webhook_ids_are_remembered_once(b: Backend) {
        let (_scratch, mut db) = b.db("inbound_webhook_ids_are_rememb");
        let now = t("2024-05-01T12:00:00Z");
        let mut article = |external: &str| {
            let a = NewArticle {
                external_id: external.into(),
                source: None,
                url: None,
                lang: None,
                lang_source: "undetermined",
                model_supports_lang: true,
                published_at: now,
                title: external.into(),
                content_hash: content_hash(external, "", None, now, None),
                prepared_text: external.into(),
                truncated: false,
            };
            db.upsert_article(&a, now).unwrap().id()
        };
        let first = article("x-1");
        let second = article("x-2");
        assert_eq!(db.record_inbound("msg_1", first, now).unwrap(), None);
        assert_eq!(
            db.record_inbound("msg_1", second, ms(now, 1)).unwrap(),
            Some(first)
        );
        assert_eq!(db.inbound_article("msg_1").unwrap(), Some(first));
        assert_eq!(db.inbound_article("msg_2").unwrap(), None);
        let in_tx = db
            .transaction(|tx| tx.record_inbound("msg_2", second, now))
            .unwrap();
        assert_eq!(in_tx, None);
        assert_eq!(db.prune_webhooks(ms(now, 1)).unwrap().inbound, 2);
        assert_eq!(db.inbound_article("msg_1").unwrap(), None);
    }

    fn concurrent_claims_never_hand_one_delivery_out_twice(b: Backend) {
        let (scratch, mut db) = b.db("concurrent_claims");
        let now = t("2024-05-01T12:00:00Z");
        subscribe(&mut db, &[EventType::ClusterUpdated], now);
        for c in 0..40 {
            emit(&mut db, &updated(c), now);
        }
        db.fan_out(now).unwrap();
        let mut claimed: Vec<u64> = std::thread::scope(|s| {
            let claimers: Vec<_> = (0..4)
                .map(|_| {
                    let store = scratch.store.clone();
                    s.spawn(move || {
                        let mut db = store.connect().unwrap();
                        let mut mine = Vec::new();
                        loop {
                            let got = db.claim_due(now, ms(now, 60_000), 3).unwrap();
                            if got.is_empty() {
                                return mine;
                            }
                            mine.extend(got.iter().map(|d| d.id.0));
                        }
                    })
                })
                .collect();
            claimers
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect()
        });
        claimed.sort_unstable();
        let all = claimed.len();
        claimed.dedup();
        assert_eq!((all, claimed.len()), (40, 40));
    }

    fn fan_out_beside_writers_makes_each_delivery_once(b: Backend) {
        let (scratch, mut db) = b.db("fan_out_beside_writers");
        let now = t("2024-05-01T12:00:00Z");
        let s = subscribe(&mut db, &[EventType::ClusterUpdated], now);
        std::thread::scope(|scope| {
            let store = scratch.store.clone();
            let writer = scope.spawn(move || {
                let mut db = store.connect().unwrap();
                for c in 0..50 {
                    emit(&mut db, &updated(c), now);
                }
            });
            for _ in 0..2 {
                let store = scratch.store.clone();
                scope.spawn(move || {
                    let mut db = store.connect().unwrap();
                    for _ in 0..25 {
                        db.fan_out(now).unwrap();
                    }
                });
            }
            writer.join().unwrap();
        });
        db.fan_out(now).unwrap();
        let mut seqs: Vec<u64> = db
            .deliveries(&DeliveryQuery {
                subscription: s.id,
                status: None,
                before: None,
                limit: 1000,
            })
            .unwrap()
            .iter()
            .map(|d| d.outbox_seq)
            .collect();
        seqs.sort_unstable();
        let all = seqs.len();
        seqs.dedup();
        assert_eq!((all, seqs.len()), (50, 50));
    }

    /// Two dispatchers at once on PostgreSQL: the second claims what the first's open
    /// claim does not hold, without waiting for it (`FOR UPDATE SKIP LOCKED`).
    #[test]
    fn a_postgres_claim_skips_the_deliveries_another_claim_holds() {
        let (scratch, mut db) = Backend::Postgres.db("claim_skips_locked");
        let now = t("2024-05-01T12:00:00Z");
        subscribe(&mut db, &[EventType::ClusterUpdated], now);
        for c in 0..3 {
            emit(&mut db, &updated(c), now);
        }
        db.fan_out(now).unwrap();
        let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let (held_tx, held_rx) = held;
        let (release_tx, release_rx) = release;
        std::thread::scope(|s| {
            let store = scratch.store.clone();
            let first = s.spawn(move || {
                let mut db = store.connect().unwrap();
                db.transaction(|tx| {
                    let mine = tx.claim_due(now, ms(now, 60_000), 1)?;
                    held_tx.send(mine[0].id).unwrap();
                    // Held open until the other claim is done (bounded, should it block).
                    let _ = release_rx.recv_timeout(std::time::Duration::from_secs(10));
                    Ok(mine)
                })
                .unwrap()
            });
            let held_id = held_rx.recv().unwrap();
            let started = std::time::Instant::now();
            let other = db.claim_due(now, ms(now, 60_000), 10).unwrap();
            let waited = started.elapsed();
            release_tx.send(()).unwrap();
            first.join().unwrap();
            assert_eq!(other.len(), 2, "{other:?}");
            assert!(other.iter().all(|d| d.id != held_id));
            assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
        });
    }

    on_both_backends!(
        concurrent_claims_never_hand_one_delivery_out_twice,
        fan_out_beside_writers_makes_each_delivery_once,
        subscriptions_are_created_read_updated_and_deleted,
        fan_out_makes_one_delivery_per_enabled_subscription_that_wants_the_event,
        claims_lease_deliveries_and_attempts_are_recorded,
        gone_disables_the_subscription_and_fails_its_pending_deliveries,
        deliveries_page_newest_first_with_a_status_filter,
        deliveries_replay_one_or_a_time_range,
        pruning_keeps_pending_and_recent_events_and_never_reuses_numbers,
        inbound_webhook_ids_are_remembered_once,
    );
}
