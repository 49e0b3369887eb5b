//! Analyst corrections: merge clusters, split members out, move one article.
//! Each is applied by the clusterer (the single writer) and recorded with the
//! caller's key name and the time; `GET /v1/corrections` lists them.

use axum::{
    Extension, Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_cluster::{Corrected, Correction};
use concord_core::{ArticleId, ClusterId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    AppState,
    auth::Caller,
    clusters,
    input::{ApiId, JsonBody, Params, PathId, page_size, schema},
    problem::{Problem, responses as r},
};

/// Most clusters one merge or articles one split may name.
const MAX_NAMED: usize = 200;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeIn {
    /// Clusters to fold into the one in the path (1 to 200).
    #[schema(schema_with = schema::cluster_ids)]
    pub clusters: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitIn {
    /// Members to move out into a new cluster (1 to 200).
    #[schema(schema_with = schema::article_ids)]
    pub articles: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveIn {
    /// The cluster the article moves to.
    #[schema(schema_with = schema::cluster_id)]
    pub cluster: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CorrectionOut {
    /// The correction's id.
    pub id: u64,
    pub kind: &'static str,
    /// Where to look next: the merge's survivor, the split's new cluster, the move's target.
    pub cluster: String,
    /// Every cluster whose membership changed.
    pub changed: Vec<String>,
    pub actor: String,
}

fn out(kind: &'static str, done: Corrected, actor: String) -> CorrectionOut {
    CorrectionOut {
        id: done.id,
        kind,
        cluster: done.cluster.to_string(),
        changed: done.changed.iter().map(ToString::to_string).collect(),
        actor,
    }
}

fn ids<T: ApiId>(raw: &[String], field: &str) -> Result<Vec<T>, Problem> {
    if raw.is_empty() {
        return Err(Problem::invalid(field, "must name at least one"));
    }
    if raw.len() > MAX_NAMED {
        return Err(Problem::invalid(field, format!("at most {MAX_NAMED}")));
    }
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            T::parse(r)
                .map_err(|p| Problem::invalid(format!("{field}[{i}]"), p.body().detail.clone()))
        })
        .collect()
}

/// The active cluster a (possibly merged) id resolves to.
async fn resolve(
    state: &AppState,
    id: ClusterId,
    field: &'static str,
) -> Result<ClusterId, Problem> {
    state
        .read(move |db| match clusters::resolve(db, id) {
            Ok(c) => Ok(c.id),
            Err(p) if p.body().status == 404 => Err(p.with_field(field)),
            Err(p) => Err(p),
        })
        .await
}

async fn apply(
    state: &AppState,
    caller: Caller,
    correction: Correction,
    status: StatusCode,
) -> Result<Response, Problem> {
    let kind = correction.kind();
    let done = state.pipeline().correct(correction, &caller.name).await?;
    Ok((status, Json(out(kind, done, caller.name))).into_response())
}

/// `POST /v1/clusters/{id}/merge`: fold other clusters into this one (it keeps its id;
/// theirs resolve to it from now on).
#[utoipa::path(
    post, path = "/v1/clusters/{id}/merge", tag = "corrections",
    params(PathId<ClusterId>),
    request_body = MergeIn,
    responses(
        (status = 200, description = "merged", body = CorrectionOut),
        r::BadJson, r::Unauthorized, r::Forbidden, r::NotFound, r::Conflict, r::TooLarge,
        r::Invalid, r::ShuttingDown
    )
)]
pub async fn merge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathId(into): PathId<ClusterId>,
    JsonBody(body): JsonBody<MergeIn>,
) -> Result<Response, Problem> {
    let named: Vec<ClusterId> = ids(&body.clusters, "clusters")?;
    let into = resolve(&state, into, "id").await?;
    let mut from = Vec::with_capacity(named.len());
    for (i, c) in named.into_iter().enumerate() {
        let field: &'static str = if i == 0 { "clusters[0]" } else { "clusters" };
        let c = resolve(&state, c, field).await?;
        if c != into {
            from.push(c);
        }
    }
    if from.is_empty() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "correction_refused",
            "Correction refused",
            format!("every named cluster is already {into}"),
        )
        .with_field("clusters"));
    }
    apply(
        &state,
        caller,
        Correction::Merge { into, from },
        StatusCode::OK,
    )
    .await
}

/// `POST /v1/clusters/{id}/split`: move the named members into a new cluster,
/// which is never merged back automatically.
#[utoipa::path(
    post, path = "/v1/clusters/{id}/split", tag = "corrections",
    params(PathId<ClusterId>),
    request_body = SplitIn,
    responses(
        (status = 201, description = "split: `cluster` is the new one", body = CorrectionOut),
        r::BadJson, r::Unauthorized, r::Forbidden, r::NotFound, r::Conflict, r::TooLarge,
        r::Invalid, r::ShuttingDown
    )
)]
pub async fn split(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathId(from): PathId<ClusterId>,
    JsonBody(body): JsonBody<SplitIn>,
) -> Result<Response, Problem> {
    let articles: Vec<ArticleId> = ids(&body.articles, "articles")?;
    let from = resolve(&state, from, "id").await?;
    apply(
        &state,
        caller,
        Correction::Split { from, articles },
        StatusCode::CREATED,
    )
    .await
}

/// `POST /v1/articles/{id}/move`: put one article into another cluster; it stays there.
#[utoipa::path(
    post, path = "/v1/articles/{id}/move", tag = "corrections",
    params(PathId<ArticleId>),
    request_body = MoveIn,
    responses(
        (status = 200, description = "moved", body = CorrectionOut),
        r::BadJson, r::Unauthorized, r::Forbidden, r::NotFound, r::Conflict, r::TooLarge,
        r::Invalid, r::ShuttingDown
    )
)]
pub async fn move_article(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathId(article): PathId<ArticleId>,
    JsonBody(body): JsonBody<MoveIn>,
) -> Result<Response, Problem> {
    let to = ClusterId::parse(&body.cluster).map_err(|p| p.with_field("cluster"))?;
    let to = resolve(&state, to, "cluster").await?;
    apply(
        &state,
        caller,
        Correction::Move { article, to },
        StatusCode::OK,
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CorrectionsQuery {
    /// Corrections per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = schema::corrections_cursor)]
    pub cursor: Option<u64>,
    /// Only corrections that name this cluster (as the merge's survivor or one merged
    /// into it, a split's source or new cluster, a move's source or target). One page
    /// looks at no more than 2,000 corrections: it may hold fewer than `limit` while
    /// `next_cursor` is set, so follow the cursor to the end to see them all.
    #[param(schema_with = schema::cluster_id)]
    pub cluster: Option<String>,
}

/// Most corrections one filtered page looks at.
const FILTER_SCAN: usize = 2_000;

/// Whether a rendered correction names cluster `id` (`c3`) in a cluster field.
fn names_cluster(data: &serde_json::Value, id: &str) -> bool {
    use serde_json::Value;
    let Value::Object(map) = data else {
        return false;
    };
    map.iter()
        .filter(|(k, _)| !k.starts_with("article"))
        .any(|(_, v)| match v {
            Value::String(s) => s == id,
            Value::Array(items) => items.iter().any(|i| i.as_str() == Some(id)),
            _ => false,
        })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CorrectionRecordOut {
    pub id: u64,
    pub kind: String,
    pub actor: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// What was corrected: cluster and article ids as the API writes them.
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CorrectionPage {
    pub corrections: Vec<CorrectionRecordOut>,
    pub next_cursor: Option<u64>,
}

/// Store data holds raw numbers; the API shows `c3` / `a12`.
fn render(data: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let Value::Object(map) = data else {
        return data.clone();
    };
    let id = |key: &str, v: &Value| -> Value {
        let prefix = if key.starts_with("article") { 'a' } else { 'c' };
        match v {
            Value::Number(n) => Value::String(format!("{prefix}{n}")),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| match i {
                        Value::Number(n) => Value::String(format!("{prefix}{n}")),
                        other => other.clone(),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    };
    Value::Object(map.iter().map(|(k, v)| (k.clone(), id(k, v))).collect())
}

/// `GET /v1/corrections`: every correction, newest first, with who and when.
#[utoipa::path(
    get, path = "/v1/corrections", tag = "corrections",
    params(CorrectionsQuery),
    responses(
        (status = 200, description = "corrections, newest first", body = CorrectionPage),
        r::Unauthorized, r::Invalid
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Params(q): Params<CorrectionsQuery>,
) -> Result<Json<CorrectionPage>, Problem> {
    let limit = page_size(q.limit, 50, "limit")?;
    let cluster = q
        .cluster
        .as_deref()
        .map(|raw| ClusterId::parse_as(raw, "cluster").map(|c| c.to_string()))
        .transpose()?;
    state
        .read(move |db| {
            let record = |(id, c): (u64, concord_store::Correction)| CorrectionRecordOut {
                id,
                data: render(&c.data),
                kind: c.kind,
                actor: c.actor,
                at: c.at,
            };
            let Some(cluster) = cluster else {
                let mut rows = db.corrections(q.cursor, limit + 1)?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                let next_cursor = more.then(|| rows.last().map(|(id, _)| *id)).flatten();
                return Ok(Json(CorrectionPage {
                    corrections: rows.into_iter().map(record).collect(),
                    next_cursor,
                }));
            };
            // Keyset scan, newest first, keeping those that name the cluster.
            let mut corrections = Vec::new();
            let mut before = q.cursor;
            let mut scanned = 0;
            let next_cursor = loop {
                let batch = (FILTER_SCAN - scanned).min(200);
                let rows = db.corrections(before, batch)?;
                let exhausted = rows.len() < batch;
                for (id, c) in rows {
                    scanned += 1;
                    before = Some(id);
                    let out = record((id, c));
                    if names_cluster(&out.data, &cluster) {
                        corrections.push(out);
                        if corrections.len() == limit {
                            break;
                        }
                    }
                }
                if corrections.len() == limit || scanned >= FILTER_SCAN {
                    // More may follow unless the store ran out at this very row.
                    let more = !db.corrections(before, 1)?.is_empty();
                    break more.then_some(before).flatten();
                }
                if exhausted {
                    break None;
                }
            };
            Ok(Json(CorrectionPage {
                corrections,
                next_cursor,
            }))
        })
        .await
}
