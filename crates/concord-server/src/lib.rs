//! The HTTP edge: the axum router, health and readiness, request ids and
//! request logging.
//!
//! Owns: routes, status codes, the JSON shapes clients see.
//! Must not: hold business logic (clustering, embedding, storage decisions
//! live in their own crates and are reached through handles in [`AppState`]).
//!
//! One module per resource (`articles`, `clusters`, `search`, `corrections`,
//! `webhooks`; the browser console goes beside them), each with its handlers, their
//! JSON shapes and their OpenAPI attributes. What they share: `input` (extractors
//! and parsers that refuse with a [`Problem`]), `problem` (the error shape and the
//! problem responses the spec lists), [`AppState::read`] / [`AppState::write`]
//! (store access off the async workers).

use std::sync::Arc;

mod articles;
mod auth;
mod clusters;
mod corrections;
mod feeds;
mod input;
mod openapi;
mod problem;
mod search;
mod webhooks;

pub use auth::{DEV_KEY_SHA256, Keys};

pub use articles::parse_article;
pub use feeds::{FeedOut, FeedStatus};
pub use openapi::{spec, spec_json};
pub use problem::Problem;
pub use webhooks::WebhookSettings;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use concord_pipeline::Pipeline;
use serde::Serialize;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

/// What handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pipeline: Pipeline,
    keys: Keys,
    webhooks: WebhookSettings,
    feeds: std::sync::OnceLock<feeds::FeedStatus>,
}

impl AppState {
    /// State without webhooks configured (the inbound webhook answers 404).
    pub fn new(pipeline: Pipeline, keys: Keys) -> Self {
        Self::with_webhooks(pipeline, keys, WebhookSettings::default())
    }

    pub fn with_webhooks(pipeline: Pipeline, keys: Keys, webhooks: WebhookSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                pipeline,
                keys,
                webhooks,
                feeds: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Where `GET /v1/feeds` reads the feeds' state (set once; later calls are ignored).
    pub fn set_feeds(&self, status: feeds::FeedStatus) {
        let _ = self.inner.feeds.set(status);
    }

    pub(crate) fn feeds(&self) -> Option<&feeds::FeedStatus> {
        self.inner.feeds.get()
    }

    /// The pipeline and keys back (to rebuild the state with other settings); `None`
    /// while the state is shared.
    pub fn into_parts(self) -> (Pipeline, Keys) {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => (inner.pipeline, inner.keys),
            Err(shared) => (shared.pipeline.clone(), shared.keys.clone()),
        }
    }

    pub(crate) fn webhooks(&self) -> &WebhookSettings {
        &self.inner.webhooks
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub(crate) fn pipeline(&self) -> &Pipeline {
        &self.inner.pipeline
    }

    /// Runs `f` on a read-only store connection off the async workers.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&concord_store::Db) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        let store = self.pipeline().store().clone();
        tokio::task::spawn_blocking(move || f(&store.connect_read_only()?))
            .await
            .map_err(|e| Problem::internal(e.to_string()))?
    }

    /// Runs `f` on a writing store connection off the async workers.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut concord_store::Db) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, Problem> {
        let store = self.pipeline().store().clone();
        tokio::task::spawn_blocking(move || f(&mut store.connect()?))
            .await
            .map_err(|e| Problem::internal(e.to_string()))?
    }
}

/// Largest request body accepted (an article with a long body fits many times over).
pub const MAX_BODY_BYTES: usize = 1 << 20;

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Ready {
    status: &'static str,
    /// `all` (one process) or `api` (an api node of the distributed mode, which holds
    /// no model and no index: `dim` and `indexed_articles` are then null).
    role: &'static str,
    model: String,
    dim: Option<usize>,
    embed_queue_depth: usize,
    indexed_articles: Option<usize>,
}

#[utoipa::path(
    get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "the process is up", body = Health))
)]
async fn healthz() -> impl IntoResponse {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, description = "model and index loaded", body = Ready))
)]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    // The state only exists once the model is loaded and the index is rebuilt or
    // repaired from the store, so reaching here means ready.
    let pipeline = &state.inner.pipeline;
    (
        StatusCode::OK,
        Json(Ready {
            status: "ready",
            role: pipeline.role().as_str(),
            model: pipeline.model_name().to_owned(),
            dim: pipeline.dim(),
            embed_queue_depth: pipeline.embed_queue_depth(),
            indexed_articles: pipeline.indexed_articles(),
        }),
    )
}

/// `GET /metrics`: Prometheus text exposition; scrape-time gauges are refreshed first.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let pipeline = state.pipeline();
    let m = pipeline.metrics();
    m.queue_depth("embed", pipeline.embed_queue_depth());
    m.queue_depth("cluster", pipeline.cluster_queue_depth());
    if let Some(n) = pipeline.indexed_articles() {
        m.indexed_articles(n);
    }
    if let Some(counters) = &state.webhooks().counters {
        let c = counters.snapshot();
        m.webhook_deliveries(&[
            ("succeeded", c.succeeded),
            ("retried", c.retried),
            ("failed", c.failed),
            ("disabled", c.disabled),
            ("refused", c.refused),
        ]);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}

/// Counts and times every routed request by its route pattern (never the raw path).
async fn track(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.pipeline().metrics().http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn openapi_json() -> impl IntoResponse {
    Json(openapi::spec())
}

/// The whole HTTP surface, without a socket (tests drive it with `oneshot`).
pub fn app(state: AppState) -> Router {
    let header = axum::http::HeaderName::from_static("x-request-id");
    let v1 = Router::new()
        .route("/v1/articles", post(articles::submit_article))
        .route("/v1/articles/batch", post(articles::submit_batch))
        .route(
            "/v1/articles/{id}",
            get(articles::get_article).delete(articles::delete_article),
        )
        .route("/v1/clusters", get(clusters::list_clusters))
        .route("/v1/clusters/{id}", get(clusters::get_cluster))
        .route("/v1/clusters/{id}/related", get(clusters::related))
        .route("/v1/articles/{id}/similar", get(search::similar))
        .route("/v1/search", get(search::search))
        .route("/v1/corrections", get(corrections::list))
        .route("/v1/feeds", get(feeds::list))
        .route("/v1/me", get(auth::me))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    let admin = Router::new()
        .route("/v1/clusters/{id}/merge", post(corrections::merge))
        .route("/v1/clusters/{id}/split", post(corrections::split))
        .route("/v1/articles/{id}/move", post(corrections::move_article))
        .route(
            "/v1/webhooks/subscriptions",
            post(webhooks::create_subscription).get(webhooks::list_subscriptions),
        )
        .route(
            "/v1/webhooks/subscriptions/{id}",
            get(webhooks::get_subscription)
                .patch(webhooks::update_subscription)
                .delete(webhooks::delete_subscription),
        )
        .route(
            "/v1/webhooks/subscriptions/{id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route(
            "/v1/webhooks/subscriptions/{id}/replay",
            post(webhooks::replay_range),
        )
        .route(
            "/v1/webhooks/deliveries/{id}/replay",
            post(webhooks::replay_delivery),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    let docs = swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
        uri_prefix: "/docs",
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
        title: Some("Concord API"),
    });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics))
        // Authenticated by its signature, not an API key.
        .route("/v1/webhooks/articles", post(webhooks::inbound_article))
        .merge(v1)
        .merge(admin)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .merge(docs)
        // The analyst console: static files only, a client of /v1 like any other.
        .merge(concord_console::router())
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id,
                    key = tracing::field::Empty
                )
            }),
        )
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
}
