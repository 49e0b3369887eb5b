//! Neighbourhoods: clusters related to a cluster, articles similar to an article.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use concord_core::{ArticleId, ClusterId, Lang};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    AppState,
    problem::{Problem, ProblemBody},
    routes::{SearchHitOut, hit_out, page_size, parse_id, read_store},
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CountQuery {
    /// How many to return (default 10).
    pub k: Option<usize>,
}

fn count(
    q: Result<Query<CountQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<usize, Problem> {
    let Query(q) = q.map_err(|e| Problem::invalid("query", e.body_text()))?;
    page_size(q.k, 10, "k")
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RelatedOut {
    pub id: String,
    /// Cosine of this cluster's closest member to the asked cluster's centroid.
    pub similarity: f32,
    pub size: u64,
    #[schema(value_type = Vec<String>)]
    pub languages: Vec<Lang>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_seen: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<Timestamp>,
    pub label: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RelatedPage {
    /// The cluster asked about (a merged id resolves to its survivor).
    pub cluster: String,
    pub related: Vec<RelatedOut>,
}

/// `GET /v1/clusters/{id}/related?k=`: other clusters nearest to this one's centroid
/// (same topic, often another event), best first.
#[utoipa::path(
    get, path = "/v1/clusters/{id}/related", tag = "clusters",
    params(("id" = String, Path, description = "cluster id, e.g. c3"), CountQuery),
    responses(
        (status = 200, description = "nearest other clusters", body = RelatedPage),
        (status = 401, description = "no or unknown API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "invalid field (see `field`)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "query queue full: retry after Retry-After seconds", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub async fn related(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    query: Result<Query<CountQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RelatedPage>, Problem> {
    let id = ClusterId(parse_id(&raw, 'c', "cluster id")?);
    let k = count(query)?;
    let id = read_store(&state, move |db| {
        db.resolve_cluster(id)?
            .map(|c| c.id)
            .ok_or_else(|| Problem::not_found(format!("cluster {id} not found")))
    })
    .await?;
    let near = state.pipeline().related(id, k).await?;
    read_store(&state, move |db| {
        let mut related = Vec::with_capacity(near.len());
        for (c, similarity) in near {
            let Some(r) = db.cluster(c)? else { continue };
            let label = match r.label_article {
                Some(a) => db.article(a)?.map(|a| a.title),
                None => None,
            };
            related.push(RelatedOut {
                id: r.id.to_string(),
                similarity,
                size: r.size,
                languages: r.languages,
                first_seen: r.first_published,
                last_seen: r.last_published,
                label,
            });
        }
        Ok(Json(RelatedPage {
            cluster: id.to_string(),
            related,
        }))
    })
    .await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SimilarOut {
    pub article: String,
    pub hits: Vec<SearchHitOut>,
}

/// `GET /v1/articles/{id}/similar?k=`: the articles nearest to a stored one, any language.
#[utoipa::path(
    get, path = "/v1/articles/{id}/similar", tag = "search",
    params(("id" = String, Path, description = "article id, e.g. a12"), CountQuery),
    responses(
        (status = 200, description = "nearest articles to a stored one", body = SimilarOut),
        (status = 401, description = "no or unknown API key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "not found", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "invalid field (see `field`)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "query queue full: retry after Retry-After seconds", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub async fn similar(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    query: Result<Query<CountQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SimilarOut>, Problem> {
    let id = ArticleId(parse_id(&raw, 'a', "article id")?);
    let k = count(query)?;
    let hits = state.pipeline().similar_to(id, k).await?;
    read_store(&state, move |db| {
        let mut out = Vec::with_capacity(hits.len());
        for hit in &hits {
            out.extend(hit_out(db, hit)?);
        }
        Ok(Json(SimilarOut {
            article: id.to_string(),
            hits: out,
        }))
    })
    .await
}
