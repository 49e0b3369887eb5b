//! `GET /v1/feeds`: the configured RSS and Atom feeds and how their polls went.

use std::sync::Arc;

use axum::{Json, extract::State};
use jiff::Timestamp;
use serde::Serialize;

use crate::{AppState, problem::responses as r};

/// One feed's state, as its poller keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FeedOut {
    /// The configured name: item external ids are `feed:<name>:<guid>`.
    pub name: String,
    pub url: String,
    /// The last poll, whatever came of it.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub polled_at: Option<Timestamp>,
    /// The last poll that worked (the feed read, or unchanged: 304).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ok_at: Option<Timestamp>,
    /// Why the last poll failed (or left items for the next round); absent after one
    /// that worked.
    pub error: Option<String>,
    pub items_queued: u64,
    pub items_unchanged: u64,
    pub items_refused: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedList {
    /// In name order; empty when no feed is configured.
    pub feeds: Vec<FeedOut>,
}

/// Where the feeds' state comes from (in `serve`, the poller).
#[derive(Clone)]
pub struct FeedStatus(Arc<dyn Fn() -> Vec<FeedOut> + Send + Sync>);

impl FeedStatus {
    pub fn new(f: impl Fn() -> Vec<FeedOut> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for FeedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedStatus")
    }
}

/// `GET /v1/feeds`: every configured feed with its last poll, error and item counts.
#[utoipa::path(
    get, path = "/v1/feeds", tag = "feeds",
    responses(
        (status = 200, description = "the configured feeds, in name order", body = FeedList),
        r::Unauthorized
    )
)]
pub async fn list(State(state): State<AppState>) -> Json<FeedList> {
    let mut feeds = state.feeds().map(|f| (f.0)()).unwrap_or_default();
    feeds.sort_by(|a, b| a.name.cmp(&b.name));
    Json(FeedList { feeds })
}
