//! Webhooks at the edge: the signed inbound article webhook, and the
//! subscriptions and delivery log of outbound webhooks (admin keys).
//! Signing, the target policy and delivery live in `concord-webhooks`; the
//! outbox rows are written by the clusterer in its own transactions.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use concord_core::{DeliveryId, SubscriptionId, config::SecretString};
use concord_store::{
    Delivery, DeliveryQuery, DeliveryStatus, EventType, NewSubscription, Subscription,
    SubscriptionUpdate,
};
use concord_webhooks::{DeliveryCounters, Secret, TargetPolicy, VerifyError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::{
    AppState,
    articles::{ArticleAccepted, ArticleIn, accepted, parse_article},
    input::{ApiId, JsonBody, Params, PathId, RawBody, page_size, schema},
    problem::{Problem, ProblemBody, responses as r},
};

/// What the webhook routes need from configuration and the running dispatcher.
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    /// Secrets an inbound delivery may be signed with (rotation: several); none
    /// disables the inbound webhook.
    pub inbound_secrets: Vec<Secret>,
    pub tolerance: Duration,
    pub policy: TargetPolicy,
    /// Wakes the dispatcher after a replay.
    pub wake: Option<Arc<Notify>>,
    /// The dispatcher's counters, for `/metrics`.
    pub counters: Option<Arc<DeliveryCounters>>,
}

impl WebhookSettings {
    pub fn from_config(
        config: &concord_core::config::WebhooksConfig,
    ) -> Result<Self, concord_webhooks::SecretError> {
        Ok(Self {
            inbound_secrets: config
                .secrets
                .iter()
                .map(|s| Secret::parse(s.expose()))
                .collect::<Result<_, _>>()?,
            tolerance: config.tolerance(),
            policy: TargetPolicy::from_config(config),
            wake: None,
            counters: None,
        })
    }
}

fn signature_problem(e: &VerifyError) -> Problem {
    let (code, title, field) = match e {
        VerifyError::MissingHeader(h) => ("missing_header", "Missing webhook header", Some(*h)),
        VerifyError::MalformedHeader(h) => {
            ("malformed_header", "Malformed webhook header", Some(*h))
        }
        VerifyError::TimestampTooOld | VerifyError::TimestampTooNew => (
            "stale_timestamp",
            "Webhook timestamp outside the tolerance",
            Some("webhook-timestamp"),
        ),
        VerifyError::SignatureMismatch => (
            "bad_signature",
            "Webhook signature does not verify",
            Some("webhook-signature"),
        ),
        VerifyError::NoSecrets => ("webhook_disabled", "Inbound webhook disabled", None),
    };
    let p = Problem::new(StatusCode::UNAUTHORIZED, code, title, e.to_string());
    match field {
        Some(f) => p.with_field(f),
        None => p,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundOut {
    pub webhook_id: String,
    /// True when this webhook-id was accepted before: nothing was done again.
    pub duplicate: bool,
    pub article: ArticleAccepted,
}

/// `POST /v1/webhooks/articles`: an article pushed by a feed as a Standard Webhook. The
/// signature (not an API key) authenticates it; a repeated `webhook-id` is answered as
/// already accepted.
#[utoipa::path(
    post, path = "/v1/webhooks/articles", tag = "webhooks", security(()),
    request_body = ArticleIn,
    params(
        ("webhook-id" = String, Header, description = "unique per delivery; repeats are idempotent"),
        ("webhook-timestamp" = i64, Header, description = "Unix seconds; refused outside the tolerance"),
        ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, space-separated"),
    ),
    responses(
        (status = 202, description = "stored and queued", body = InboundOut),
        (status = 200, description = "unchanged, or a repeated webhook-id", body = InboundOut),
        r::BadJson,
        (status = 401, description = "missing, malformed, stale or bad signature", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "inbound webhook not configured", body = ProblemBody, content_type = "application/problem+json"),
        r::TooLarge, r::Invalid, r::Busy, r::ShuttingDown,
    )
)]
pub async fn inbound_article(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<RawBody, Problem>,
) -> Result<Response, Problem> {
    let settings = state.webhooks();
    let RawBody(body) = body?;
    // The headers are checked even while the webhook is not configured, so that a
    // request missing one is told so (401) the same either way; a well-formed request
    // then learns that there is no webhook here (404).
    concord_webhooks::verify_headers(
        &settings.inbound_secrets,
        &headers,
        &body,
        Timestamp::now(),
        settings.tolerance,
    )
    .map_err(|e| match e {
        VerifyError::NoSecrets => {
            Problem::not_found("the inbound webhook is not configured (webhooks.secrets)")
        }
        e => signature_problem(&e),
    })?;
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let seen_id = webhook_id.clone();
    let seen = state
        .read(move |db| Ok(db.inbound_article(&seen_id)?))
        .await?;
    let submission = parse_article(&body, Timestamp::now())?;
    let external_id = submission.external_id.clone();
    if let Some(article) = seen {
        // Already accepted: answer as then, without storing anything again.
        let a = state
            .read(move |db| {
                db.article(article)?
                    .ok_or_else(|| Problem::not_found(format!("article {article} not found")))
            })
            .await?;
        return Ok((
            StatusCode::OK,
            Json(InboundOut {
                webhook_id,
                duplicate: true,
                article: ArticleAccepted {
                    id: a.id.to_string(),
                    external_id,
                    status: "unchanged",
                    lang: a.lang,
                    lang_source: concord_text::LangSource::parse(&a.lang_source)
                        .unwrap_or(concord_text::LangSource::Undetermined),
                    truncated: a.truncated,
                    cluster: None,
                    similarity: None,
                },
            }),
        )
            .into_response());
    }
    let submitted = state.pipeline().submit(submission, false).await?;
    let changed = !matches!(
        submitted.outcome,
        concord_store::UpsertOutcome::Unchanged(..)
    );
    let article = accepted(&submitted, external_id);
    let (id, at) = (submitted.id, Timestamp::now());
    let record_id = webhook_id.clone();
    state
        .write(move |db| Ok(db.record_inbound(&record_id, id, at)?))
        .await?;
    let status = if changed {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(InboundOut {
            webhook_id,
            duplicate: false,
            article,
        }),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    /// http(s) URL; private, loopback and link-local targets are refused unless configured.
    #[schema(schema_with = schema::url)]
    pub url: String,
    /// `article.clustered`, `cluster.created`, `cluster.updated`, `cluster.merged`, `cluster.split`.
    #[schema(schema_with = schema::event_types)]
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    #[schema(schema_with = schema::url_or_null)]
    pub url: Option<String>,
    #[schema(schema_with = schema::event_types_or_null)]
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// Disabling fails its pending deliveries; enabling clears the disabled reason.
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionOut {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// The signing secret: only in the answer that created the subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn subscription_out(s: Subscription, with_secret: bool) -> SubscriptionOut {
    SubscriptionOut {
        id: s.id.to_string(),
        url: s.url,
        event_types: s
            .event_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        description: s.description,
        enabled: s.enabled,
        disabled_reason: s.disabled_reason,
        created_at: s.created_at,
        updated_at: s.updated_at,
        secret: with_secret.then(|| s.secret.expose().to_owned()),
    }
}

fn event_types(raw: &[String]) -> Result<Vec<EventType>, Problem> {
    if raw.is_empty() {
        return Err(Problem::invalid(
            "event_types",
            "name at least one event type",
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, t)| {
            EventType::parse(t)
                .map_err(|e| Problem::invalid(format!("event_types[{i}]"), e.to_string()))
        })
        .collect()
}

/// Whether `url` is written as RFC 3986 allows (the spec's `format: uri`): only
/// unreserved, reserved and percent-encoded characters, `%` always followed by two hex
/// digits, at most one `#`. The WHATWG parser behind `check_url` would quietly
/// percent-encode spaces, controls and non-ASCII instead.
fn rfc3986_chars(url: &str) -> bool {
    let bytes = url.as_bytes();
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b);
    bytes.iter().filter(|&&b| b == b'#').count() <= 1
        && bytes.iter().enumerate().all(|(i, &b)| match b {
            b'%' => bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
            b => allowed(b),
        })
}

fn check_url(state: &AppState, url: &str) -> Result<String, Problem> {
    if !rfc3986_chars(url) {
        return Err(Problem::invalid(
            "url",
            "not a URI: characters other than RFC 3986's must be percent-encoded",
        ));
    }
    let url = state
        .webhooks()
        .policy
        .check_url(url)
        .map_err(|e| Problem::invalid("url", e.to_string()))?;
    // A host name is letters, digits, dots and hyphens (the spec's pattern); the parser
    // lets other sub-delimiters such as `*` through.
    if let Some(name) = url.domain()
        && !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(Problem::invalid(
            "url",
            format!("{name:?} is not a host name: letters, digits, dots and hyphens"),
        ));
    }
    Ok(url.to_string())
}

/// The subscription `id`, or 404.
fn subscription(db: &concord_store::Db, id: SubscriptionId) -> Result<Subscription, Problem> {
    db.subscription(id)?
        .ok_or_else(|| Problem::not_found(format!("subscription {id} not found")))
}

/// `POST /v1/webhooks/subscriptions`: the answer carries the signing secret, once.
#[utoipa::path(
    post, path = "/v1/webhooks/subscriptions", tag = "webhooks",
    request_body = SubscriptionIn,
    responses(
        (status = 201, description = "created; `secret` is shown only now", body = SubscriptionOut),
        r::BadJson, r::Unauthorized, r::Forbidden, r::TooLarge,
        (status = 422, description = "invalid field (a refused target address is on `url`)", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create_subscription(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<SubscriptionIn>,
) -> Result<Response, Problem> {
    let url = check_url(&state, &input.url)?;
    let event_types = event_types(&input.event_types)?;
    let secret = Secret::generate().map_err(|e| Problem::internal(e.to_string()))?;
    let new = NewSubscription {
        url,
        event_types,
        secret: SecretString::new(secret.to_string()),
        description: input.description,
    };
    let created = state
        .write(move |db| Ok(db.create_subscription(&new, Timestamp::now())?))
        .await?;
    tracing::info!(subscription = %created.id, "webhook subscription created");
    Ok((StatusCode::CREATED, Json(subscription_out(created, true))).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionOut>,
}

/// `GET /v1/webhooks/subscriptions`.
#[utoipa::path(
    get, path = "/v1/webhooks/subscriptions", tag = "webhooks",
    responses(
        (status = 200, description = "every subscription (secrets omitted)", body = SubscriptionList),
        r::Unauthorized, r::Forbidden,
    )
)]
pub async fn list_subscriptions(
    State(state): State<AppState>,
) -> Result<Json<SubscriptionList>, Problem> {
    state
        .read(|db| {
            Ok(Json(SubscriptionList {
                subscriptions: db
                    .subscriptions()?
                    .into_iter()
                    .map(|s| subscription_out(s, false))
                    .collect(),
            }))
        })
        .await
}

/// `GET /v1/webhooks/subscriptions/{id}`.
#[utoipa::path(
    get, path = "/v1/webhooks/subscriptions/{id}", tag = "webhooks",
    params(PathId<SubscriptionId>),
    responses(
        (status = 200, description = "the subscription (secret omitted)", body = SubscriptionOut),
        r::Unauthorized, r::Forbidden, r::NotFound, r::Invalid,
    )
)]
pub async fn get_subscription(
    State(state): State<AppState>,
    PathId(id): PathId<SubscriptionId>,
) -> Result<Json<SubscriptionOut>, Problem> {
    state
        .read(move |db| Ok(Json(subscription_out(subscription(db, id)?, false))))
        .await
}

/// `PATCH /v1/webhooks/subscriptions/{id}`: change the URL, event types, description, or enable/disable.
#[utoipa::path(
    patch, path = "/v1/webhooks/subscriptions/{id}", tag = "webhooks",
    params(PathId<SubscriptionId>),
    request_body = SubscriptionPatch,
    responses(
        (status = 200, description = "updated", body = SubscriptionOut),
        r::BadJson, r::Unauthorized, r::Forbidden, r::NotFound, r::TooLarge, r::Invalid,
    )
)]
pub async fn update_subscription(
    State(state): State<AppState>,
    PathId(id): PathId<SubscriptionId>,
    JsonBody(patch): JsonBody<SubscriptionPatch>,
) -> Result<Json<SubscriptionOut>, Problem> {
    let update = SubscriptionUpdate {
        url: patch
            .url
            .as_deref()
            .map(|u| check_url(&state, u))
            .transpose()?,
        event_types: patch.event_types.as_deref().map(event_types).transpose()?,
        description: patch.description.map(Some),
        enabled: patch.enabled,
    };
    state
        .write(move |db| {
            subscription(db, id)?;
            Ok(Json(subscription_out(
                db.update_subscription(id, &update, Timestamp::now())?,
                false,
            )))
        })
        .await
}

/// `DELETE /v1/webhooks/subscriptions/{id}`: no more deliveries; its log goes with it.
#[utoipa::path(
    delete, path = "/v1/webhooks/subscriptions/{id}", tag = "webhooks",
    params(PathId<SubscriptionId>),
    responses(
        (status = 204, description = "deleted"),
        r::Unauthorized, r::Forbidden, r::NotFound, r::Invalid,
    )
)]
pub async fn delete_subscription(
    State(state): State<AppState>,
    PathId(id): PathId<SubscriptionId>,
) -> Result<StatusCode, Problem> {
    state
        .write(move |db| {
            if db.delete_subscription(id)? {
                Ok(StatusCode::NO_CONTENT)
            } else {
                Err(Problem::not_found(format!("subscription {id} not found")))
            }
        })
        .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only deliveries in this state.
    #[param(schema_with = schema::delivery_status)]
    pub status: Option<String>,
    /// Deliveries per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = schema::delivery_cursor)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    pub id: String,
    pub subscription: String,
    /// The `webhook-id` header it is (re)sent with.
    pub webhook_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

fn delivery_out(d: Delivery) -> DeliveryOut {
    DeliveryOut {
        id: d.id.to_string(),
        subscription: d.subscription.to_string(),
        webhook_id: d.webhook_id(),
        event_type: d.event_type.as_str().to_owned(),
        status: d.status.as_str().to_owned(),
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_attempt_at: d.last_attempt_at,
        last_status: d.last_status,
        last_error: d.last_error,
        created_at: d.created_at,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryOut>,
    pub next_cursor: Option<String>,
}

/// `GET /v1/webhooks/subscriptions/{id}/deliveries`: the delivery log, newest first.
#[utoipa::path(
    get, path = "/v1/webhooks/subscriptions/{id}/deliveries", tag = "webhooks",
    params(PathId<SubscriptionId>, DeliveriesQuery),
    responses(
        (status = 200, description = "one page of the log", body = DeliveryPage),
        r::Unauthorized, r::Forbidden, r::NotFound, r::Invalid,
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    PathId(id): PathId<SubscriptionId>,
    Params(q): Params<DeliveriesQuery>,
) -> Result<Json<DeliveryPage>, Problem> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s)
                .ok_or_else(|| Problem::invalid("status", "expected pending, succeeded or failed"))
        })
        .transpose()?;
    let limit = page_size(q.limit, 50, "limit")?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| DeliveryId::parse_as(c, "cursor"))
        .transpose()?;
    state
        .read(move |db| {
            subscription(db, id)?;
            let mut rows = db.deliveries(&DeliveryQuery {
                subscription: id,
                status,
                before,
                limit: limit + 1,
            })?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = more
                .then(|| rows.last().map(|d| d.id.to_string()))
                .flatten();
            Ok(Json(DeliveryPage {
                deliveries: rows.into_iter().map(delivery_out).collect(),
                next_cursor,
            }))
        })
        .await
}

/// `POST /v1/webhooks/deliveries/{id}/replay`: send one delivery again (same webhook-id,
/// a fresh retry schedule).
#[utoipa::path(
    post, path = "/v1/webhooks/deliveries/{id}/replay", tag = "webhooks",
    params(PathId<DeliveryId>),
    responses(
        (status = 202, description = "queued again", body = DeliveryOut),
        r::Unauthorized, r::Forbidden, r::NotFound, r::Invalid,
    )
)]
pub async fn replay_delivery(
    State(state): State<AppState>,
    PathId(id): PathId<DeliveryId>,
) -> Result<Response, Problem> {
    let delivery = state
        .write(move |db| {
            if db.delivery(id)?.is_none() {
                return Err(Problem::not_found(format!("delivery {id} not found")));
            }
            Ok(db.replay_delivery(id, Timestamp::now())?)
        })
        .await?;
    if let Some(wake) = &state.webhooks().wake {
        wake.notify_one();
    }
    Ok((StatusCode::ACCEPTED, Json(delivery_out(delivery))).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRangeIn {
    /// RFC 3339, inclusive.
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    /// RFC 3339, exclusive; not before `from` (else 422).
    #[schema(value_type = String, format = DateTime)]
    pub to: Timestamp,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayRangeOut {
    /// New deliveries queued: one per event of the range this subscription wants.
    pub queued: u64,
}

/// `POST /v1/webhooks/subscriptions/{id}/replay`: send again every event of a time range
/// (still in the outbox) that the subscription wants.
#[utoipa::path(
    post, path = "/v1/webhooks/subscriptions/{id}/replay", tag = "webhooks",
    params(PathId<SubscriptionId>),
    request_body = ReplayRangeIn,
    responses(
        (status = 202, description = "queued", body = ReplayRangeOut),
        r::BadJson, r::Unauthorized, r::Forbidden, r::NotFound, r::TooLarge,
        (status = 422, description = "invalid field (see `field`; `to` must be after `from`)", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn replay_range(
    State(state): State<AppState>,
    PathId(id): PathId<SubscriptionId>,
    JsonBody(range): JsonBody<ReplayRangeIn>,
) -> Result<Response, Problem> {
    // [from, to) is half-open: equal ends are an empty range (nothing to queue), a `to`
    // before `from` is a mistake.
    if range.from > range.to {
        return Err(Problem::invalid("to", "must not be before from"));
    }
    let queued = state
        .write(move |db| {
            subscription(db, id)?;
            Ok(db.replay_range(id, range.from, range.to, Timestamp::now())?)
        })
        .await?;
    if let Some(wake) = &state.webhooks().wake {
        wake.notify_one();
    }
    Ok((StatusCode::ACCEPTED, Json(ReplayRangeOut { queued })).into_response())
}
